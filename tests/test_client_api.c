/*
 * test_client_api.c - libshmdemux against a real broker and worker.
 *
 * usage: test_client_api SHMDEMUXD MEDIA_FILE AUDIO_FILE
 *   AUDIO_FILE: more than 160 KiB in small packets, and packets out of
 *   its first 64 KiB read on a pipe (FLAC: generated flac_noise.flac)
 *
 * Starts a private broker through the library's autostart (so that path is
 * tested too) on a socket in the test's private directory (tl_init(),
 * tests/broker_testlib.h), then exercises the API: error paths, open +
 * attach + read to EOF with validation, observers, kill, and the broker
 * dying under a blocked reader. The test is the broker's subreaper: the
 * test library's cleanup stops it and removes the directory on every exit
 * path.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include <libavcodec/avcodec.h>

#include "broker_testlib.h"
#include "shmdemux.h"

static char sock[128];
static char pidpath[160];

/* Stop the broker named by the pidfile and wait until it has exited: its
 * pidfile lock is held for its whole life. */
static void
stop_broker(int sig)
{
	char buf[32] = "";
	int fd = open(pidpath, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return;
	n = read(fd, buf, sizeof(buf) - 1);
	if (n > 0) {
		pid_t pid = (pid_t)atoi(buf);

		if (pid > 1)
			kill(pid, sig);
		flock(fd, LOCK_EX);
	}
	close(fd);
}

static void
test_errors(void)
{
	shmdemux_conn *c = (shmdemux_conn *)1;
	char path[200], longpath[300];

	snprintf(path, sizeof(path), "%s/nobody.sock", tl_dir());
	EXPECT(shmdemux_connect(&c, path, 0) == -ENOENT, "no broker");
	EXPECT(c == NULL, "conn cleared on failure");
	memset(longpath, 'x', sizeof(longpath) - 1);
	longpath[sizeof(longpath) - 1] = '\0';
	EXPECT(shmdemux_connect(&c, longpath, 0) == -ENAMETOOLONG, "long path");
	shmdemux_disconnect(&c);
	shmdemux_disconnect(NULL);

	EXPECT(strstr(shmdemux_strerror(SHMDEMUX_ECRASHED), "crash") != NULL,
	       "%s", shmdemux_strerror(SHMDEMUX_ECRASHED));
	EXPECT(strcmp(shmdemux_strerror(-ENOENT), strerror(ENOENT)) == 0,
	       "errno text");
	EXPECT(strcmp(shmdemux_strerror(SHMDEMUX_EOF), "end of stream") == 0,
	       "eof text");
	for (int code = SHMDEMUX_EBROKER; code <= SHMDEMUX_EOF; code++) {
		const char *s = shmdemux_strerror(code);

		if (code < SHMDEMUX_EUNKNOWN && code > SHMDEMUX_EOVERRUN)
			continue; /* gap between end codes and reader codes */
		EXPECT(s != NULL && strncmp(s, "unknown shmdemux", 16) != 0,
		       "code %d named", code);
	}
	EXPECT(shmdemux_is_end(SHMDEMUX_EKILLED) && !shmdemux_is_end(-EAGAIN) &&
	       !shmdemux_is_end(SHMDEMUX_EOVERRUN), "is_end");
	EXPECT(shmdemux_end_code(SHMDEMUX_END_CRASHED) == SHMDEMUX_ECRASHED,
	       "end code");
}

static void
test_unknown_stream(shmdemux_conn *c)
{
	shmdemux_stream *s = (shmdemux_stream *)1;
	int ret;

	ret = shmdemux_attach(c, 9999, NULL, SHMDEMUX_START_OLDEST, 0, &s);
	EXPECT(ret == -ENOENT, "attach unknown id: %s", shmdemux_strerror(ret));
	EXPECT(s == NULL, "stream cleared on failure");
	EXPECT(shmdemux_conn_last_error(c)[0] != '\0', "broker message kept");
	ret = shmdemux_attach(c, 0, "no-such-name", SHMDEMUX_START_OLDEST, 0,
			      &s);
	EXPECT(ret == -ENOENT, "attach unknown name: %s",
	       shmdemux_strerror(ret));
	EXPECT(shmdemux_kill_stream(c, 9999, NULL) == -ENOENT, "kill unknown");
	EXPECT(shmdemux_close_stream(c, 0, "nope") == -ENOENT, "close unknown");
	EXPECT(shmdemux_attach(c, 1, NULL, 7, 0, &s) == -EINVAL, "bad start");
}

static int
count_stream(const struct shmdemux_stream_info *i, void *ctx)
{
	(void)i;
	(*(int *)ctx)++;
	return 0;
}

static void
check_tracks(shmdemux_stream *s)
{
	AVCodecParameters *par = avcodec_parameters_alloc();
	struct shmdemux_track t;
	int n = shmdemux_track_count(s);

	EXPECT(n > 0, "tracks: %d", n);
	EXPECT(shmdemux_track_generation(s) % 2 == 0, "even generation");
	for (int i = 0; i < n; i++) {
		EXPECT(shmdemux_get_track(s, i, &t) == 0, "get_track %d", i);
		EXPECT(t.index == i, "index %d", t.index);
		EXPECT(t.tb_num > 0 && t.tb_den > 0, "time base");
		EXPECT(shmdemux_track_to_codecpar(s, i, par) == 0, "codecpar");
		EXPECT((int)par->codec_id == t.codec_id &&
		       (int)par->codec_type == t.media_type, "codecpar ids");
		EXPECT((size_t)par->extradata_size == t.extradata_size,
		       "extradata size");
		if (t.media_type == SHMDEMUX_MEDIA_AUDIO)
			EXPECT(par->ch_layout.nb_channels == t.channels,
			       "channels");
	}
	EXPECT(shmdemux_get_track(s, n, &t) == -EINVAL, "out of range");
	EXPECT(shmdemux_track_to_codecpar(s, -1, par) == -EINVAL,
	       "codecpar out of range");
	avcodec_parameters_free(&par);
}

static void
read_all(shmdemux_conn *c, uint32_t id)
{
	struct shmdemux_packet p;
	struct shmdemux_status st;
	shmdemux_stream *s;
	AVPacket *pkt = av_packet_alloc();
	uint64_t packets = 0, last_seq = 0;
	uint8_t buf[1];
	int ret;

	ret = shmdemux_attach(c, id, NULL, SHMDEMUX_START_OLDEST, 0, &s);
	EXPECT(ret == 0, "attach: %s", shmdemux_strerror(ret));
	if (ret < 0)
		return;
	while ((ret = shmdemux_read(s, &p, 5000)) == 0) {
		EXPECT(p.track >= 0 && p.track < shmdemux_track_count(s),
		       "track %d", p.track);
		EXPECT(packets == 0 || p.seq > last_seq, "seq increases");
		last_seq = p.seq;
		if (packets == 0)
			check_tracks(s);
		if (p.size > sizeof(buf))
			EXPECT(shmdemux_packet_copy(&p, buf, sizeof(buf)) ==
			       -ENOSPC, "copy too small");
		EXPECT(shmdemux_packet_to_avpacket(&p, pkt) == 0 &&
		       pkt->size == (int)p.size && pkt->pts == p.pts &&
		       pkt->stream_index == p.track, "avpacket");
		av_packet_unref(pkt);
		packets++;
	}
	EXPECT(ret == SHMDEMUX_EOF, "end: %s", shmdemux_strerror(ret));
	EXPECT(shmdemux_read(s, &p, 0) == SHMDEMUX_EOF, "EOF stays");
	EXPECT(shmdemux_status(s, &st) == 0, "status");
	EXPECT(st.state == SHMDEMUX_STATE_ENDED && st.code == SHMDEMUX_EOF &&
	       st.end_reason == SHMDEMUX_END_EOF, "status EOF");
	EXPECT(st.packets == packets, "packets %llu vs %llu",
	       (unsigned long long)st.packets, (unsigned long long)packets);
	shmdemux_detach(&s);
	EXPECT(s == NULL, "detach clears");
	av_packet_free(&pkt);
}

static void
test_file(shmdemux_conn *c, const char *media)
{
	struct shmdemux_open_opts o;
	const char *bad_opts[] = { "=x", NULL };
	uint32_t id = 0;
	int n = 0, ret;

	shmdemux_open_opts_init(&o);
	o.demux_opts = bad_opts;
	EXPECT(shmdemux_open_path(c, media, &o, &id) == -EINVAL, "bad opt");
	o.demux_opts = NULL;
	o.name = "api-file";
	ret = shmdemux_open_path(c, media, &o, &id);
	EXPECT(ret == 0 && id > 0, "open: %s (%s)", shmdemux_strerror(ret),
	       shmdemux_conn_last_error(c));
	ret = shmdemux_open_path(c, media, &o, &id);
	EXPECT(ret == -EEXIST, "duplicate name: %s", shmdemux_strerror(ret));
	EXPECT(shmdemux_list(c, count_stream, &n) == 0 && n >= 1, "list");
	read_all(c, id);
}

/* A stream fed through a pipe we keep open: it never ends by itself. */
static int
open_pipe_stream(shmdemux_conn *c, const char *media, uint32_t *id,
		 int *wr)
{
	struct shmdemux_open_opts o;
	int p[2], ret;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	shmdemux_open_opts_init(&o);
	ret = shmdemux_open_fd(c, p[0], &o, id);
	close(p[0]);
	(void)media;
	if (ret < 0) {
		close(p[1]);
		return ret;
	}
	*wr = p[1];
	return 0;
}

static void
test_kill(shmdemux_conn *c, const char *media)
{
	struct shmdemux_packet p;
	struct shmdemux_status st;
	shmdemux_stream *obs = NULL, *s = NULL;
	uint32_t id;
	int wr, ret;

	ret = open_pipe_stream(c, media, &id, &wr);
	EXPECT(ret == 0, "open fd: %s", shmdemux_strerror(ret));
	if (ret < 0)
		return;
	ret = shmdemux_attach(c, id, NULL, 0, SHMDEMUX_ATTACH_OBSERVER, &obs);
	EXPECT(ret == 0, "observer: %s", shmdemux_strerror(ret));
	if (ret == 0) {
		/* no input yet: the worker is still probing */
		EXPECT(shmdemux_wait_running(obs, 200) == -ETIMEDOUT,
		       "not running yet");
		EXPECT(shmdemux_read(obs, &p, 0) == -EINVAL, "observer read");
	}
	ret = shmdemux_attach(c, id, NULL, 0, 0, &s);
	EXPECT(ret == 0, "attach: %s", shmdemux_strerror(ret));
	EXPECT(shmdemux_read(s, &p, 0) == -EAGAIN, "nothing yet");
	EXPECT(shmdemux_kill_stream(c, id, NULL) == 0, "kill");
	ret = shmdemux_read(s, &p, 5000);
	EXPECT(ret == SHMDEMUX_EKILLED, "killed: %s", shmdemux_strerror(ret));
	shmdemux_status(s, &st);
	EXPECT(st.code == SHMDEMUX_EKILLED, "status killed");
	if (obs != NULL)
		EXPECT(shmdemux_wait_running(obs, 1000) == SHMDEMUX_STATE_ENDED,
		       "observer sees the end");
	shmdemux_detach(&s);
	shmdemux_detach(&obs);
	close(wr);
}

/* Write bytes [from, to) of path (to < 0: to the end) into out. */
static int
copy_range(const char *path, int out, off_t from, off_t to)
{
	char buf[16384];
	int in = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = 0;

	if (in < 0 || lseek(in, from, SEEK_SET) < 0)
		n = -1;
	while (n >= 0 && (to < 0 || from < to)) {
		size_t want = sizeof(buf);

		if (to >= 0 && (off_t)want > to - from)
			want = (size_t)(to - from);
		n = read(in, buf, want);
		if (n <= 0)
			break;
		if (write(out, buf, (size_t)n) != n)
			n = -1;
		from += n;
	}
	if (in >= 0)
		close(in);
	return n < 0 ? -EIO : 0;
}

static int
copy_file(const char *path, int out)
{
	return copy_range(path, out, 0, -1);
}

static int
read_to_end(shmdemux_stream *s, uint64_t *packets, uint64_t *overruns)
{
	struct shmdemux_packet p;
	int ret;

	while ((ret = shmdemux_read(s, &p, 5000)) == 0 ||
	       ret == SHMDEMUX_EOVERRUN) {
		if (ret == 0)
			(*packets)++;
		else
			(*overruns)++;
	}
	return ret;
}

/* Bytes pushed through the pipe the broker hands out. */
static void
test_push(shmdemux_conn *c, const char *media)
{
	shmdemux_stream *s = NULL;
	uint64_t packets = 0, overruns = 0;
	uint32_t id;
	int wr = -1, ret;

	ret = shmdemux_open_push(c, NULL, &id, &wr);
	EXPECT(ret == 0 && wr >= 0, "open push: %s", shmdemux_strerror(ret));
	if (ret < 0)
		return;
	ret = shmdemux_attach(c, id, NULL, 0, 0, &s);
	EXPECT(ret == 0, "attach push: %s", shmdemux_strerror(ret));
	EXPECT(copy_file(media, wr) == 0, "push bytes");
	ret = shmdemux_push_end(c, id, &wr);
	EXPECT(ret == 0 && wr == -1, "push end: %s", shmdemux_strerror(ret));
	if (s != NULL) {
		ret = read_to_end(s, &packets, &overruns);
		EXPECT(ret == SHMDEMUX_EOF && packets > 0 && overruns == 0,
		       "push: %s after %llu packets", shmdemux_strerror(ret),
		       (unsigned long long)packets);
	}
	shmdemux_detach(&s);
}

/* Live mode: a reader holding a packet while the producer laps it learns
 * the view was overwritten, counts the overrun and reads on to the end.
 * media must be larger than 160 KiB, with small packets (an audio file). */
static void
test_live_overrun(shmdemux_conn *c, const char *media)
{
	struct shmdemux_open_opts o;
	struct shmdemux_packet p;
	struct shmdemux_status st;
	shmdemux_stream *slow = NULL, *fast = NULL;
	uint64_t packets = 0, overruns = 0;
	uint32_t id;
	int wr, ret, pfd[2];

	if (pipe2(pfd, O_CLOEXEC) < 0)
		return;
	shmdemux_open_opts_init(&o);
	o.mode = SHMDEMUX_MODE_LIVE;
	o.ring_size = 64 * 1024;
	ret = shmdemux_open_fd(c, pfd[0], &o, &id);
	close(pfd[0]);
	wr = pfd[1];
	EXPECT(ret == 0, "open live: %s", shmdemux_strerror(ret));
	if (ret < 0)
		goto out;
	EXPECT(shmdemux_attach(c, id, NULL, 0, 0, &slow) == 0, "attach slow");
	EXPECT(shmdemux_attach(c, id, NULL, 0, 0, &fast) == 0, "attach fast");
	if (slow == NULL || fast == NULL)
		goto out;
	/* The slow reader takes a packet from the first 64 KiB of input and
	 * holds it while the rest, more than the ring, goes through. */
	EXPECT(copy_range(media, wr, 0, 65536) == 0, "feed start");
	do
		ret = shmdemux_read(slow, &p, 5000);
	while (ret == SHMDEMUX_EOVERRUN);
	EXPECT(ret == 0, "slow first packet: %s", shmdemux_strerror(ret));
	EXPECT(copy_range(media, wr, 65536, -1) == 0, "feed rest");
	close(wr);
	wr = -1;
	/* the fast reader reaching the end means the producer is done */
	ret = read_to_end(fast, &packets, &overruns);
	EXPECT(ret == SHMDEMUX_EOF, "fast end: %s", shmdemux_strerror(ret));
	EXPECT(shmdemux_release(slow) == SHMDEMUX_EOVERRUN, "held view lapped");
	packets = overruns = 0;
	ret = read_to_end(slow, &packets, &overruns);
	EXPECT(ret == SHMDEMUX_EOF, "slow end: %s", shmdemux_strerror(ret));
	shmdemux_status(slow, &st);
	EXPECT(st.overruns >= 1, "overruns counted: %llu",
	       (unsigned long long)st.overruns);
out:
	shmdemux_detach(&slow);
	shmdemux_detach(&fast);
	if (wr >= 0)
		close(wr);
}

/* The broker dies while a reader waits: the reader learns it. */
static void
test_broker_death(shmdemux_conn *c, const char *media)
{
	struct shmdemux_packet p;
	shmdemux_stream *s = NULL;
	uint64_t t0;
	uint32_t id;
	int wr, ret;

	if (open_pipe_stream(c, media, &id, &wr) < 0)
		return;
	ret = shmdemux_attach(c, id, NULL, 0, 0, &s);
	EXPECT(ret == 0, "attach: %s", shmdemux_strerror(ret));
	if (ret < 0)
		goto out;
	stop_broker(SIGKILL);
	t0 = now_ms();
	ret = shmdemux_read(s, &p, -1);
	EXPECT(ret == SHMDEMUX_EBROKER, "broker gone: %s",
	       shmdemux_strerror(ret));
	EXPECT(now_ms() - t0 < 2000, "noticed quickly");
out:
	shmdemux_detach(&s);
	close(wr);
}

int
main(int argc, char **argv)
{
	shmdemux_conn *c = NULL;
	int ret;

	if (argc != 4) {
		fprintf(stderr, "usage: test_client_api SHMDEMUXD MEDIA AUDIO_MEDIA\n");
		return 2;
	}
	if (access(argv[2], R_OK) != 0 || access(argv[3], R_OK) != 0) {
		fprintf(stderr, "FAIL: %s or %s not readable (the media_generate "
			"test makes them)\n", argv[2], argv[3]);
		return 1;
	}
	tl_init(argv[1], 110);
	snprintf(sock, sizeof(sock), "%s/s.sock", tl_dir());
	snprintf(pidpath, sizeof(pidpath), "%s.pid", sock);
	setenv("SHMDEMUX_BROKER", argv[1], 1);

	test_errors();
	ret = shmdemux_connect(&c, sock, SHMDEMUX_CONNECT_AUTOSTART);
	if (ret < 0) {
		fprintf(stderr, "FAIL: autostart: %s\n", shmdemux_strerror(ret));
		return 1;
	}
	EXPECT(strcmp(shmdemux_conn_socket_path(c), sock) == 0, "path kept");
	EXPECT(access(pidpath, R_OK) == 0, "broker pidfile");
	test_unknown_stream(c);
	test_file(c, argv[2]);
	test_kill(c, argv[2]);
	test_push(c, argv[2]);
	test_live_overrun(c, argv[3]);
	test_broker_death(c, argv[2]);
	shmdemux_disconnect(&c);
	tl_check_shm();
	if (check_failures == 0)
		printf("client api: all checks passed\n");
	return check_status();
}
