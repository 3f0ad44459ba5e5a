/*
 * test_live.c - live streams paced at the media's rate (--realtime), and a
 * decoding worker's failure reported like any other worker failure.
 *
 * usage: test_live SHMDEMUXD WORKER BIN_DIR MEDIA_DIR FFPROBE_PACKETS CASE
 *   CASE: keyframe        a reader attaching late at the newest keyframe
 *                         gets ffprobe's packets from that keyframe on
 *         overrun         a slow reader on a small ring is lapped: it gets
 *                         SHMDEMUX_EOVERRUN, resumes at a keyframe, never
 *                         accepts a packet that differs from ffprobe's, and
 *                         the broker counts the drops
 *         decode-segv     --decode all and a SIGSEGV in the worker: the
 *                         reader gets the frames published, then
 *                         SHMDEMUX_ECRASHED (needs SHMDEMUX_FAULT_INJECTION)
 *         decode-syscall  same with a forbidden syscall: SHMDEMUX_ESANDBOX
 *
 * Every wait is on an event: a blocking read, a condition variable the
 * fast reader signals, the end of the stream. Each case runs its own broker
 * in its own directory (broker_testlib cleans up on every path).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libavutil/md5.h>

#include "broker_testlib.h"
#include "client_testlib.h"
#include "shmdemux.h"

#define MAX_REF 4096

static const char *worker_bin, *bin_dir, *ffprobe_packets;
static char media_file[512];

/* One line of ffprobe-packets: track,pts,dts,duration,size,flags,MD5:x */
struct ref_pkt {
	int track;
	char pts[24], dts[24];
	long size;
	int key;
	char md5[33];
};

static struct ref_pkt ref[MAX_REF];
static int nref;

static void
load_ref(void)
{
	char cmd[2048], line[512], flags[8], dur[24];
	FILE *f;

	snprintf(cmd, sizeof(cmd), "'%s' '%s'", ffprobe_packets, media_file);
	f = popen(cmd, "r");
	CHECK(f != NULL);
	while (fgets(line, sizeof(line), f) != NULL) {
		struct ref_pkt *r = &ref[nref];

		CHECK(nref < MAX_REF);
		CHECK(sscanf(line, "%d,%23[^,],%23[^,],%23[^,],%ld,%7[^,],MD5:%32s",
			     &r->track, r->pts, r->dts, dur, &r->size, flags,
			     r->md5) == 7);
		r->key = flags[0] == 'K';
		nref++;
	}
	CHECK(pclose(f) == 0);
	CHECK(nref > 50);
}

/* A packet as the reference describes one; the payload is hashed while
 * the view is held. */
static void
describe(const struct shmdemux_packet *p, struct ref_pkt *out)
{
	uint8_t d[16];

	memset(out, 0, sizeof(*out));
	out->track = p->track;
	if (p->pts == SHMDEMUX_NOPTS)
		snprintf(out->pts, sizeof(out->pts), "N/A");
	else
		snprintf(out->pts, sizeof(out->pts), "%" PRId64, p->pts);
	if (p->dts == SHMDEMUX_NOPTS)
		snprintf(out->dts, sizeof(out->dts), "N/A");
	else
		snprintf(out->dts, sizeof(out->dts), "%" PRId64, p->dts);
	out->size = (long)p->size;
	out->key = (p->flags & SHMDEMUX_PKT_KEY) != 0;
	av_md5_sum(d, p->data, p->size);
	for (int i = 0; i < 16; i++)
		snprintf(out->md5 + 2 * i, 3, "%02x", d[i]);
}

static int
same_pkt(const struct ref_pkt *a, const struct ref_pkt *b)
{
	return a->track == b->track && strcmp(a->pts, b->pts) == 0 &&
	       strcmp(a->dts, b->dts) == 0 && a->size == b->size &&
	       a->key == b->key && strcmp(a->md5, b->md5) == 0;
}

/* Index of the reference packet equal to p at or after from, or -1. */
static int
find_ref(const struct ref_pkt *p, int from)
{
	for (int i = from; i < nref; i++)
		if (same_pkt(&ref[i], p))
			return i;
	return -1;
}

static void
print_pkt(const char *what, const struct ref_pkt *p)
{
	fprintf(stderr, "%s: %d,%s,%s,%ld,%c,%s\n", what, p->track, p->pts,
		p->dts, p->size, p->key ? 'K' : '_', p->md5);
}

/* ---- broker and streams ---- */

static uint32_t
open_media(shmdemux_conn *c, const struct shmdemux_open_opts *o)
{
	return tl_open_path(c, media_file, o);
}

/* `shmdemux ls` shows the stream with this state. */
static void
check_ls_state(const struct tl_broker *b, uint32_t id, const char *state)
{
	char cmd[2048];

	snprintf(cmd, sizeof(cmd),
		 "'%s/shmdemux' --socket '%s' ls | grep -q '^ *%u .* %s ' || "
		 "{ '%s/shmdemux' --socket '%s' ls >&2; exit 1; }",
		 bin_dir, b->sock, id, state, bin_dir, b->sock);
	CHECK(tl_run(cmd) == 0);
}

static int
video_track(shmdemux_stream *st)
{
	struct shmdemux_track t;
	int n;

	CHECK(shmdemux_wait_running(st, 20000) >= SHMDEMUX_STATE_RUNNING);
	n = shmdemux_track_count(st);
	for (int i = 0; i < n; i++) {
		CHECK(shmdemux_get_track(st, i, &t) == 0);
		if (t.media_type == SHMDEMUX_MEDIA_VIDEO)
			return i;
	}
	CHECK(!"no video track");
	return -1;
}

static void
live_opts(struct shmdemux_open_opts *o, uint32_t readers)
{
	shmdemux_open_opts_init(o);
	o->mode = SHMDEMUX_MODE_LIVE;
	o->realtime = 1;
	o->wait_consumers = readers;
}

/* ---- keyframe: a late reader starts at the newest keyframe ---- */

static void
test_keyframe(void)
{
	struct tl_broker b;
	struct shmdemux_open_opts o;
	struct shmdemux_packet p;
	struct ref_pkt d;
	shmdemux_stream *early = NULL, *late = NULL;
	shmdemux_conn *c = NULL;
	int vt, ret, keys = 0, first = -1, next = 0, got = 0, seen_video = 0;
	uint32_t id;

	CHECK(tl_broker_start(&b, "s", worker_bin, NULL) == 0);
	CHECK(shmdemux_connect(&c, b.sock, 0) == 0);
	live_opts(&o, 1);
	id = open_media(c, &o);
	CHECK(shmdemux_attach(c, id, NULL, SHMDEMUX_START_OLDEST, 0,
			      &early) == 0);
	vt = video_track(early);
	/* the early reader sees the second video keyframe and a few packets
	 * after it published: the late one attaches mid-stream */
	for (int after = 0; keys < 2 || after < 4;) {
		CHECK(shmdemux_read(early, &p, 20000) == 0);
		if (p.track == vt && (p.flags & SHMDEMUX_PKT_KEY))
			keys++;
		else if (keys >= 2)
			after++;
	}
	CHECK(shmdemux_attach(c, id, NULL, SHMDEMUX_START_KEYFRAME, 0,
			      &late) == 0);
	while ((ret = shmdemux_read(late, &p, 20000)) == 0) {
		describe(&p, &d);
		if (first < 0) {
			first = next = find_ref(&d, 0);
			if (first < 0)
				print_pkt("not in the reference", &d);
			CHECK(first >= 0);
		}
		if (d.track == vt && !seen_video) {
			seen_video = 1;
			if (!d.key)
				print_pkt("first video packet", &d);
			CHECK(d.key);
		}
		if (next >= nref || !same_pkt(&ref[next], &d)) {
			print_pkt("got", &d);
			if (next < nref)
				print_pkt("want", &ref[next]);
			CHECK(!"late reader differs from ffprobe");
		}
		next++;
		got++;
	}
	fprintf(stderr, "keyframe: late reader started at reference packet "
		"%d of %d, read %d, then %s\n", first, nref, got,
		shmdemux_strerror(ret));
	CHECK(ret == SHMDEMUX_EOF);
	CHECK(seen_video);
	/* late, and to the end of the reference */
	CHECK(first > 0);
	CHECK(next == nref);
	shmdemux_detach(&late);
	shmdemux_detach(&early);
	shmdemux_disconnect(&c);
	CHECK(tl_broker_stop(&b) == 0);
}

/* ---- overrun: a slow reader on a small ring is lapped ---- */

/* The fast reader counts video keyframes; the slow one waits for it. */
struct pace {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int keys;
	int done;
	int code;
	shmdemux_stream *st;
	int vt;
	pthread_t thr;
};

static void *
fast_main(void *arg)
{
	struct pace *f = arg;
	struct shmdemux_packet p;
	int ret;

	/* only the slow reader is under test: on a loaded machine the fast
	 * one may be lapped too, and goes on */
	while ((ret = shmdemux_read(f->st, &p, 20000)) == 0 ||
	       ret == SHMDEMUX_EOVERRUN) {
		if (ret != 0 || p.track != f->vt || !(p.flags & SHMDEMUX_PKT_KEY))
			continue;
		pthread_mutex_lock(&f->mu);
		f->keys++;
		pthread_cond_broadcast(&f->cv);
		pthread_mutex_unlock(&f->mu);
	}
	pthread_mutex_lock(&f->mu);
	f->done = 1;
	f->code = ret;
	pthread_cond_broadcast(&f->cv);
	pthread_mutex_unlock(&f->mu);
	return NULL;
}

/* Accept p if it is one of ffprobe's packets, hashed while held and still
 * intact once released. Returns 1 accepted, 0 overwritten while held. */
static int
accept_pkt(shmdemux_stream *st, const struct shmdemux_packet *p,
	   struct ref_pkt *d)
{
	int ret;

	describe(p, d);
	ret = shmdemux_release(st);
	if (ret == SHMDEMUX_EOVERRUN)
		return 0;
	CHECK(ret == 0);
	if (find_ref(d, 0) < 0) {
		print_pkt("accepted packet not in the reference", d);
		CHECK(!"accepted packet differs from ffprobe");
	}
	return 1;
}

static void
test_overrun(void)
{
	struct tl_broker b;
	struct shmdemux_open_opts o;
	struct shmdemux_stream_info info;
	struct shmdemux_status sst;
	struct shmdemux_packet p;
	struct ref_pkt d;
	struct pace f = { .mu = PTHREAD_MUTEX_INITIALIZER,
			  .cv = PTHREAD_COND_INITIALIZER };
	shmdemux_stream *slow = NULL;
	shmdemux_conn *c = NULL;
	char cmd[2048];
	int ret, overruns = 0, accepted = 0, lost = 0, after_overrun = 0;
	uint32_t id;

	CHECK(tl_broker_start(&b, "s", worker_bin, NULL) == 0);
	CHECK(shmdemux_connect(&c, b.sock, 0) == 0);
	live_opts(&o, 2);
	o.ring_size = 64u << 10; /* the smallest ring the broker takes */
	id = open_media(c, &o);
	CHECK(shmdemux_attach(c, id, NULL, SHMDEMUX_START_OLDEST, 0,
			      &f.st) == 0);
	CHECK(shmdemux_attach(c, id, NULL, SHMDEMUX_START_OLDEST, 0,
			      &slow) == 0);
	f.vt = video_track(f.st);
	CHECK(pthread_create(&f.thr, NULL, fast_main, &f) == 0);

	/* one packet, then stall until the fast reader has seen the second
	 * video keyframe: more than the ring's bytes were published since */
	CHECK(shmdemux_read(slow, &p, 20000) == 0);
	accepted += accept_pkt(slow, &p, &d);
	pthread_mutex_lock(&f.mu);
	while (f.keys < 2 && !f.done)
		pthread_cond_wait(&f.cv, &f.mu);
	pthread_mutex_unlock(&f.mu);

	for (;;) {
		ret = shmdemux_read(slow, &p, 20000);
		if (ret == SHMDEMUX_EOVERRUN) {
			overruns++;
			after_overrun = 1;
			continue;
		}
		if (ret != 0)
			break;
		if (after_overrun && p.track == f.vt) {
			after_overrun = 0;
			if (!(p.flags & SHMDEMUX_PKT_KEY)) {
				describe(&p, &d);
				print_pkt("first video packet after overrun",
					  &d);
				CHECK(!"no keyframe after an overrun");
			}
		}
		if (accept_pkt(slow, &p, &d))
			accepted++;
		else
			lost++;
	}
	CHECK(pthread_join(f.thr, NULL) == 0);
	CHECK(shmdemux_status(slow, &sst) == 0);
	info = tl_info_of(c, id);
	fprintf(stderr, "overrun: slow reader: %d overruns (status %" PRIu64
		"), %d packets accepted, %d overwritten while held, then %s; "
		"fast reader: %s; broker drops %" PRIu64 "\n", overruns,
		sst.overruns, accepted, lost, shmdemux_strerror(ret),
		shmdemux_strerror(f.code), info.drops);
	CHECK(ret == SHMDEMUX_EOF && f.code == SHMDEMUX_EOF);
	CHECK(overruns >= 1);
	CHECK(sst.overruns >= 1);
	CHECK(accepted > 1 && accepted < nref);
	CHECK(info.drops > 0);
	/* `ls --json` shows the drops too */
	snprintf(cmd, sizeof(cmd),
		 "'%s/shmdemux' --socket '%s' ls --json | "
		 "grep -q '\"id\":%u,.*\"drops\":[1-9]' || "
		 "{ '%s/shmdemux' --socket '%s' ls >&2; exit 1; }",
		 bin_dir, b.sock, id, bin_dir, b.sock);
	CHECK(tl_run(cmd) == 0);
	shmdemux_detach(&slow);
	shmdemux_detach(&f.st);
	shmdemux_disconnect(&c);
	CHECK(tl_broker_stop(&b) == 0);
}

/* ---- a decoding worker fails ---- */

static void
test_decode_fault(const char *kind, int code, const char *ls_state)
{
	struct tl_broker b;
	struct shmdemux_open_opts o;
	struct shmdemux_stream_info info;
	struct shmdemux_status sst;
	struct shmdemux_packet p;
	struct shmdemux_frame fr;
	shmdemux_stream *st = NULL;
	shmdemux_conn *c = NULL;
	char env[64];
	uint64_t frames = 0, packets = 0;
	uint32_t id;
	int ret;

	snprintf(env, sizeof(env), "%s:20:victim", kind);
	CHECK(setenv("SHMDEMUX_FAULT", env, 1) == 0);
	CHECK(tl_broker_start(&b, "s", worker_bin, NULL) == 0);
	unsetenv("SHMDEMUX_FAULT");
	CHECK(shmdemux_connect(&c, b.sock, 0) == 0);
	shmdemux_open_opts_init(&o);
	o.name = "victim";
	o.decode = SHMDEMUX_DECODE_VIDEO | SHMDEMUX_DECODE_AUDIO;
	o.decode_threads = 1;
	id = open_media(c, &o);
	CHECK(shmdemux_attach(c, id, NULL, SHMDEMUX_START_OLDEST, 0,
			      &st) == 0);
	/* lossless: the worker waits for this reader, so nothing is lost */
	for (;;) {
		ret = shmdemux_read(st, &p, 20000);
		if (ret == SHMDEMUX_FRAME) {
			CHECK(shmdemux_get_frame(st, &fr) == 0);
			CHECK(fr.nb_planes > 0 && fr.plane_size[0] > 0);
			frames++;
		} else if (ret == 0) {
			packets++;
		} else {
			break;
		}
	}
	CHECK(shmdemux_status(st, &sst) == 0);
	info = tl_info_of(c, id);
	fprintf(stderr, "decode-%s: read %" PRIu64 " frames, %" PRIu64
		" packets (worker published %" PRIu64 " frames), then %s: %s\n",
		kind, frames, packets, sst.frames, shmdemux_strerror(ret),
		info.end_msg);
	CHECK(ret == code);
	CHECK(frames > 0 && packets == 0);
	CHECK(frames == sst.frames);
	CHECK(info.state == SHMDEMUX_STATE_ENDED);
	CHECK(shmdemux_end_code(info.end_reason) == code);
	shmdemux_detach(&st);
	check_ls_state(&b, id, ls_state);
	shmdemux_disconnect(&c);
	CHECK(tl_broker_stop(&b) == 0);
}

int
main(int argc, char **argv)
{
	const char *which;

	if (argc != 7) {
		fprintf(stderr, "usage: test_live SHMDEMUXD WORKER BIN_DIR "
			"MEDIA_DIR FFPROBE_PACKETS CASE\n");
		return 2;
	}
	worker_bin = argv[2];
	bin_dir = argv[3];
	ffprobe_packets = argv[5];
	which = argv[6];
	tl_media_path(media_file, sizeof(media_file), argv[4], "h264_aac.mkv");
	CHECK(access(ffprobe_packets, X_OK) == 0);
	tl_let_faults_through();
#ifndef SHMDEMUX_FAULT_INJECTION
	if (strncmp(which, "decode-", 7) == 0) {
		fprintf(stderr, "SKIP: built without SHMDEMUX_FAULT_INJECTION\n");
		return 77;
	}
#endif
	tl_init(argv[1], 60);
	if (strcmp(which, "keyframe") == 0) {
		load_ref();
		test_keyframe();
	} else if (strcmp(which, "overrun") == 0) {
		load_ref();
		test_overrun();
	} else if (strcmp(which, "decode-segv") == 0) {
		test_decode_fault("segv", SHMDEMUX_ECRASHED,
				  "ended:crashed(SIGSEGV)");
	} else if (strcmp(which, "decode-syscall") == 0) {
		test_decode_fault("syscall", SHMDEMUX_ESANDBOX,
				  "ended:sandbox(socket)");
	} else {
		fprintf(stderr, "unknown case %s\n", which);
		return 2;
	}
	return 0;
}
