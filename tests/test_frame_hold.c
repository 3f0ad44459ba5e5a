/*
 * test_frame_hold.c - decoded frames lent as AVFrames hold their bytes in
 * the ring (lossless mode).
 *
 * usage: test_frame_hold SHMDEMUXD WORKER MEDIA_DIR
 *
 * h264_aac.mkv is decoded (video) into a ring just above the worker's
 * minimum (learnt from its ring-error message), or a few times that, so
 * the 50 frames wrap the ring many times. The reader lends frames as AVFrames in a rolling
 * window and reads ahead: once the window is full it reads until a timed
 * read finds nothing (the producer is held by the lent frames), and the
 * lent frames still hash as they did when read. Every frame's hash when
 * read and when freed is the same and equals ffmpeg's framemd5; half the
 * frames are freed on another thread. Then: detach with frames still lent,
 * free them afterwards (the mapping must still be there: run under ASan),
 * and the stream goes on for a new reader.
 *
 * The broker's frame pool is small (1 MiB, a handful of 320x240 slots), so
 * frames come both ways: decoded in place in the pool (held like any
 * record: the slot is reused only once the tail passed it) and, once the
 * decoder and the lent frames hold every slot, copied into the ring; the
 * run checks that both happened, and that a copy of each frame
 * (shmdemux_frame_to_avframe_copy) hashes the same.
 *
 * No sleeps: every wait is a read with a timeout, a join, or the stream's
 * end.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libavutil/frame.h>
#include <libavutil/imgutils.h>
#include <libavutil/md5.h>

#include "broker_testlib.h"
#include "client_testlib.h"
#include "shmdemux.h"

#define MAX_FRAMES 256
#define MAX_WINDOW 16

static const char *worker_bin;
static char media_file[512];
static char ref[MAX_FRAMES][33]; /* ffmpeg's framemd5 of track 0 */
static int nref;

static void
load_ref(void)
{
	char cmd[1024], line[512];
	FILE *f;

	snprintf(cmd, sizeof(cmd), "ffmpeg -nostdin -v error -i '%s' -map 0:0 "
		 "-f framemd5 - | grep -v '^#' | awk -F', *' '{ print $6 }'",
		 media_file);
	CHECK((f = popen(cmd, "r")) != NULL);
	while (fgets(line, sizeof(line), f) != NULL) {
		CHECK(nref < MAX_FRAMES && strlen(line) == 33);
		memcpy(ref[nref], line, 32);
		ref[nref++][32] = '\0';
	}
	CHECK(pclose(f) == 0);
	CHECK(nref >= 40);
}

/* The picture packed as rawvideo, hashed (as ffmpeg's framemd5). */
static void
md5_planes(const uint8_t *const data[4], const int ls[4], int fmt, int w,
	   int h, char out[33])
{
	int n = av_image_get_buffer_size(fmt, w, h, 1);
	uint8_t *buf, d[16];

	CHECK(n > 0 && (buf = malloc((size_t)n)) != NULL);
	CHECK(av_image_copy_to_buffer(buf, n, data, ls, fmt, w, h, 1) == n);
	av_md5_sum(d, buf, (size_t)n);
	free(buf);
	for (int i = 0; i < 16; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static void
md5_view(const struct shmdemux_frame *f, char out[33])
{
	md5_planes(f->data, f->linesize, f->format, f->width, f->height, out);
}

static void
md5_avframe(const AVFrame *av, char out[33])
{
	md5_planes((const uint8_t *const *)av->data, av->linesize, av->format,
		   av->width, av->height, out);
}

static void *
free_main(void *arg)
{
	AVFrame *av = arg;

	av_frame_free(&av);
	return NULL;
}

/* Free on a new thread, as an encoder's thread would. */
static void
free_on_thread(AVFrame *av)
{
	pthread_t t;

	CHECK(pthread_create(&t, NULL, free_main, av) == 0);
	CHECK(pthread_join(t, NULL) == 0);
}

static void
decode_opts(struct shmdemux_open_opts *o, uint64_t ring)
{
	shmdemux_open_opts_init(o);
	o->decode = SHMDEMUX_DECODE_VIDEO;
	o->ring_size = ring;
}

/* The worker refuses a 64 KiB ring and names the size it needs. */
static uint64_t
min_ring(shmdemux_conn *c)
{
	struct shmdemux_open_opts o;
	struct shmdemux_status st;
	struct shmdemux_packet p;
	shmdemux_stream *s = NULL;
	const char *need;
	uint64_t m;

	decode_opts(&o, 64u << 10);
	CHECK(shmdemux_attach(c, tl_open_path(c, media_file, &o), NULL,
			      SHMDEMUX_START_OLDEST, 0, &s) == 0);
	CHECK(shmdemux_read(s, &p, 20000) == SHMDEMUX_ERING);
	CHECK(shmdemux_status(s, &st) == 0);
	need = strstr(st.message, "need at least ");
	CHECK(need != NULL && strstr(st.message, "too small") != NULL);
	m = strtoull(need + 14, NULL, 10);
	CHECK(m > (64u << 10));
	fprintf(stderr, "worker: %s\n", st.message);
	shmdemux_detach(&s);
	return m;
}

struct lent {
	AVFrame *av;
	int n;        /* frame number */
};

/* shmdemux_frame_to_avframe_copy() of the view hashes the same (pooled
 * and copied frames alike). */
static void
copy_matches(const struct shmdemux_frame *f, const char *md5)
{
	AVFrame *av = av_frame_alloc();
	char now[33];

	CHECK(av != NULL && shmdemux_frame_to_avframe_copy(f, av) == 0);
	md5_avframe(av, now);
	CHECK(strcmp(now, md5) == 0);
	av_frame_free(&av);
}

/* Check a lent frame against its hash at read time and free it. */
static void
give_back(struct lent *l, const char (*md5)[33], int on_thread)
{
	char now[33];

	md5_avframe(l->av, now);
	if (strcmp(now, md5[l->n]) != 0)
		fprintf(stderr, "frame %d changed while lent: %s -> %s\n",
			l->n, md5[l->n], now);
	CHECK(strcmp(now, md5[l->n]) == 0);
	if (on_thread)
		free_on_thread(l->av);
	else
		av_frame_free(&l->av);
}

/* Read ahead with the window full until a timed read finds nothing: the
 * lent frames hold the producer. Frames read meanwhile are hashed, not
 * lent. Returns the number of frames read. */
static int
read_until_held(shmdemux_stream *s, char (*md5)[33], int *n)
{
	struct shmdemux_packet p;
	struct shmdemux_frame f;
	int ret, got = 0;

	while ((ret = shmdemux_read(s, &p, 500)) >= 0) {
		if (ret != SHMDEMUX_FRAME)
			continue;
		CHECK(shmdemux_get_frame(s, &f) == 0 && *n < MAX_FRAMES);
		md5_view(&f, md5[(*n)++]);
		got++;
	}
	CHECK(ret == -EAGAIN);
	return got;
}

/* Read the whole stream with up to depth frames lent at once. */
static void
run_window(shmdemux_conn *c, uint64_t ring, int depth)
{
	static char md5[MAX_FRAMES][33];
	struct shmdemux_open_opts o;
	struct shmdemux_packet p;
	struct shmdemux_frame f;
	struct lent win[MAX_WINDOW];
	struct shmdemux_status st;
	shmdemux_stream *s = NULL;
	int ret, n = 0, nwin = 0, freed = 0, ahead = -1;

	decode_opts(&o, ring);
	CHECK(shmdemux_attach(c, tl_open_path(c, media_file, &o), NULL,
			      SHMDEMUX_START_OLDEST, 0, &s) == 0);
	while ((ret = shmdemux_read(s, &p, 20000)) >= 0) {
		if (ret != SHMDEMUX_FRAME)
			continue;
		CHECK(shmdemux_get_frame(s, &f) == 0 && n < MAX_FRAMES);
		md5_view(&f, md5[n]);
		copy_matches(&f, md5[n]);
		CHECK((win[nwin].av = av_frame_alloc()) != NULL);
		CHECK(shmdemux_frame_to_avframe(s, win[nwin].av) == 0);
		win[nwin++].n = n++;
		if (nwin < depth)
			continue;
		if (ahead < 0) {
			ahead = read_until_held(s, md5, &n);
			for (int i = 0; i < nwin; i++) {
				char now[33];

				md5_avframe(win[i].av, now);
				CHECK(strcmp(now, md5[win[i].n]) == 0);
			}
		}
		/* the oldest goes back, every other one from a thread */
		give_back(&win[0], md5, freed++ % 2);
		memmove(win, win + 1, --nwin * sizeof(win[0]));
	}
	if (ret != SHMDEMUX_EOF)
		fprintf(stderr, "read: %s\n", shmdemux_strerror(ret));
	CHECK(ret == SHMDEMUX_EOF);
	for (int i = 0; i < nwin; i++)
		give_back(&win[i], md5, freed++ % 2);
	CHECK(shmdemux_status(s, &st) == 0);
	fprintf(stderr, "ring %" PRIu64 ", %d lent at once: %d frames (%"
		PRIu64 " in the pool, %" PRIu64 " copied), %d read ahead "
		"until the producer was held, %d lent and freed\n", ring,
		depth, n, st.frames_pooled, st.frames_copied, ahead, freed);
	CHECK(ahead >= 0);
	CHECK(st.frames_pooled > 0 && st.frames_copied > 0);
	CHECK(st.frames_pooled + st.frames_copied == (uint64_t)n);
	CHECK(n == nref);
	for (int i = 0; i < n; i++) {
		if (strcmp(md5[i], ref[i]) != 0)
			fprintf(stderr, "frame %d: %s, ffmpeg %s\n", i, md5[i],
				ref[i]);
		CHECK(strcmp(md5[i], ref[i]) == 0);
	}
	shmdemux_detach(&s);
}

/* Detach with two frames lent: they stay mapped and intact, the reader
 * slot stays, and once they are freed the stream goes on. */
static void
detach_while_lent(shmdemux_conn *c, uint64_t ring)
{
	struct shmdemux_open_opts o;
	struct shmdemux_packet p;
	struct shmdemux_frame f;
	shmdemux_stream *s = NULL;
	AVFrame *av[2];
	char md5[2][33], now[33];
	uint32_t id;
	int ret, k = 0;

	decode_opts(&o, ring);
	id = tl_open_path(c, media_file, &o);
	CHECK(shmdemux_attach(c, id, NULL, SHMDEMUX_START_OLDEST, 0, &s) == 0);
	while (k < 2 && (ret = shmdemux_read(s, &p, 20000)) >= 0) {
		if (ret != SHMDEMUX_FRAME)
			continue;
		CHECK(shmdemux_get_frame(s, &f) == 0);
		md5_view(&f, md5[k]);
		CHECK((av[k] = av_frame_alloc()) != NULL);
		CHECK(shmdemux_frame_to_avframe(s, av[k]) == 0);
		k++;
	}
	CHECK(k == 2);
	shmdemux_detach(&s);
	CHECK(s == NULL);
	/* the lent frames' reader slot is still attached */
	CHECK(tl_info_of(c, id).consumers == 1);
	for (k = 0; k < 2; k++) {
		md5_avframe(av[k], now);
		CHECK(strcmp(now, md5[k]) == 0);
	}
	free_on_thread(av[0]);
	av_frame_free(&av[1]); /* the last: unmaps, frees the slot */
	/* a new reader gets the rest of the stream */
	CHECK(shmdemux_attach(c, id, NULL, SHMDEMUX_START_OLDEST, 0, &s) == 0);
	k = 0;
	while ((ret = shmdemux_read(s, &p, 20000)) >= 0)
		k += ret == SHMDEMUX_FRAME;
	CHECK(ret == SHMDEMUX_EOF && k > 0);
	fprintf(stderr, "detach with 2 frames lent: freed after detach, a "
		"new reader then read %d more frames to EOF\n", k);
	shmdemux_detach(&s);
}

/* Live mode: the frame is a copy, which holds nothing. */
static void
live_copy(shmdemux_conn *c)
{
	struct shmdemux_open_opts o;
	struct shmdemux_packet p;
	shmdemux_stream *s = NULL;
	AVFrame *av;
	int ret;

	decode_opts(&o, 0);
	o.mode = SHMDEMUX_MODE_LIVE;
	o.wait_consumers = 1;
	CHECK(shmdemux_attach(c, tl_open_path(c, media_file, &o), NULL,
			      SHMDEMUX_START_OLDEST, 0, &s) == 0);
	while ((ret = shmdemux_read(s, &p, 20000)) == 0)
		;
	CHECK(ret == SHMDEMUX_FRAME && (av = av_frame_alloc()) != NULL);
	CHECK(shmdemux_frame_to_avframe(s, av) == 0);
	/* a copy: its buffer is writable, ours alone */
	CHECK(av_frame_is_writable(av));
	shmdemux_detach(&s);
	av_frame_free(&av);
}

int
main(int argc, char **argv)
{
	struct tl_broker b;
	shmdemux_conn *c = NULL;
	static const char *const pool_args[] = { "--decode-pool", "1M", NULL };
	uint64_t m;

	if (argc != 4) {
		fprintf(stderr, "usage: test_frame_hold SHMDEMUXD WORKER "
			"MEDIA_DIR\n");
		return 2;
	}
	worker_bin = argv[2];
	tl_media_path(media_file, sizeof(media_file), argv[3], "h264_aac.mkv");
	if (system("ffmpeg -version > /dev/null 2>&1") != 0) {
		fprintf(stderr, "SKIP: ffmpeg not installed\n");
		return 77;
	}
	tl_init(argv[1], 120);
	load_ref();
	CHECK(tl_broker_start(&b, "s", worker_bin, pool_args) == 0);
	CHECK(shmdemux_connect(&c, b.sock, 0) == 0);
	m = min_ring(c);
	/* lending frames takes ring space: a frame lent while the next is
	 * read needs a ring of three frames (the worker's minimum is two) */
	run_window(c, m, 1);
	run_window(c, m * 2, 2);
	run_window(c, m * 8, 12);
	detach_while_lent(c, m * 2);
	live_copy(c);
	shmdemux_disconnect(&c);
	CHECK(tl_broker_stop(&b) == 0);
	tl_check_shm();
	return 0;
}
