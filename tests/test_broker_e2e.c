/*
 * test_broker_e2e.c - shmdemuxd with the real shmdemux-worker: OPEN files
 * (by path, and as a passed pipe), ATTACH, read every record with the ring
 * API and compare the packets with ffprobe's on the same bytes; KILL a
 * worker held mid-stream by a full ring. The generated media always; the
 * same kinds of file from the real-world corpus too where there is one
 * ($SHMDEMUX_CORPUS or $SHMDEMUX_CORPUS_DEFAULT, tl_corpus()).
 *
 * usage: test_broker_e2e SHMDEMUXD WORKER MEDIA-DIR FFPROBE-PACKETS
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "broker_testlib.h"
#include "media.h"

static struct tl_broker b;
static const char *ffprobe_packets;

static void
compare(const char *dir, const char *name, int piped)
{
	struct ctl_stream_info info;
	struct ctl_open o;
	struct tl_text got = { 0 }, want = { 0 };
	char file[1024], err[CTL_MSG_LEN];
	int fd = tl_connect(b.sock), in = -1, id;
	pid_t feed = -1;
	long recs;

	CHECK(fd >= 0);
	snprintf(file, sizeof(file), "%s/%s", dir, name);
	if (access(file, R_OK) < 0) {
		fprintf(stderr, "FAIL: %s: %s\n", file, strerror(errno));
		exit(1);
	}
	tl_reference(ffprobe_packets, file, piped, &want);
	if (piped) {
		in = tl_feeder(file, NULL, &feed);
		tl_open_init(&o, CTL_SRC_FD, "stdin", "");
	} else {
		tl_open_init(&o, CTL_SRC_PATH, file, "");
	}
	o.wait_consumers = 1; /* hold every record for our consumer */
	id = tl_open(fd, &o, in, NULL, err, sizeof(err));
	if (id < 0)
		fprintf(stderr, "open %s: %s\n", name, err);
	CHECK(id > 0);
	if (in >= 0)
		close(in);
	recs = tl_consume(b.sock, (uint32_t)id, 20000, tl_csv_record, &got);
	CHECK(recs > 0);
	if (feed > 0)
		CHECK(tl_wait_child(feed, 10000) == 0);
	CHECK(tl_info(b.sock, (uint32_t)id, &info) == 1);
	CHECK(info.end_reason == SD_END_EOF);
	CHECK(info.tracks > 0 && info.packets > 0);
	if (got.len != want.len || memcmp(got.buf, want.buf, got.len) != 0) {
		fprintf(stderr, "%s%s: packets differ from ffprobe "
			"(%zu vs %zu bytes of CSV)\n", name,
			piped ? " (piped)" : "", got.len, want.len);
		CHECK(0);
	}
	CHECK(tl_simple(fd, CTL_CLOSE, (uint32_t)id) == 0);
	close(fd);
	printf("%s%s: %lu packets identical\n", name, piped ? " (piped)" : "",
	       (unsigned long)info.packets);
	free(got.buf);
	free(want.buf);
}

/* A small lossless ring nobody reads holds the worker mid-stream. */
static void
kill_mid_stream(const char *media)
{
	struct ctl_stream_info info;
	struct ctl_open o;
	char file[1024], err[CTL_MSG_LEN];
	int fd = tl_connect(b.sock), cfd, fds[2], slot, ret, id;
	struct ring *r = NULL;
	struct ring_rd v;
	long n = 0;

	CHECK(fd >= 0);
	tl_media_path(file, sizeof(file), media, "mpeg2_mp2.ts");
	tl_open_init(&o, CTL_SRC_PATH, file, "");
	o.ring_size = 192 << 10;
	o.wait_consumers = 1;
	id = tl_open(fd, &o, -1, NULL, err, sizeof(err));
	CHECK(id > 0);
	cfd = tl_connect(b.sock);
	CHECK(cfd >= 0);
	slot = tl_attach(cfd, (uint32_t)id, 0, fds, NULL);
	CHECK(slot >= 0);
	CHECK(ring_map(&r, fds[0], -1, RING_ROLE_CONSUMER) == 0);
	CHECK(ring_attach(r, fds[1], RING_START_OLDEST) == 0);
	close(fds[0]);
	close(fds[1]);
	/* Ten records in, with most of the 400 kB input still to go and a
	 * 192 kB ring, the worker is mid-stream (lossless: it cannot finish
	 * before we read on). */
	for (int k = 0; k < 10; k++) {
		do
			ret = ring_next(r, &v, 5000);
		while (ret == -EAGAIN);
		CHECK(ret == 0);
		if (k < 9)
			ring_release(r, &v);
	}
	CHECK(tl_info(b.sock, (uint32_t)id, &info) == 1);
	CHECK(info.state != RING_STATE_ENDED && info.worker_pid > 0);
	CHECK(tl_simple(fd, CTL_KILL, (uint32_t)id) == 0);
	ring_release(r, &v);
	do {
		ret = ring_next(r, &v, 5000);
		if (ret == 0) {
			ring_release(r, &v);
			n++;
		}
	} while (ret == 0 || ret == -EAGAIN);
	CHECK(ret == -EPIPE);
	CHECK(ring_hdr(r)->end_reason == SD_END_KILLED);
	ring_unmap(&r);
	close(cfd);
	CHECK(tl_info(b.sock, (uint32_t)id, &info) == 1);
	CHECK(info.end_reason == SD_END_KILLED && info.end_signal == SIGKILL);
	CHECK(tl_simple(fd, CTL_CLOSE, (uint32_t)id) == 0);
	close(fd);
	printf("kill mid-stream: %ld records retained after the kill, "
	       "%" PRIu64 " packets in all\n", n, info.packets);
}

/* The same kinds of input, generated and from the corpus. */
static const char *const generated_files[] = {
	"h264_aac.mkv", "h264_aac_faststart.mp4", "h264_aac.ts", "flac.flac",
	"h264_aac_frag.mp4", "vorbis.ogg", "h264_aac.flv",
};
static const char *const generated_piped[] = {
	"h264_aac.mkv", "h264_aac.ts", "aac.adts",
};
static const char *const corpus_files[] = {
	"sample.mkv", "sample.mp4", "sample_h264.ts", "bear.flac",
	"sample_fragmented.mp4", "bear_vorbis.ogg", "sample.flv",
};
static const char *const corpus_piped[] = {
	"sample.mkv", "sample_h264.ts", "sample.adts",
};

#define COUNT(a) (sizeof(a) / sizeof(*(a)))

int
main(int argc, char **argv)
{
	const char *media, *corpus = tl_corpus();

	if (argc != 5) {
		fprintf(stderr, "usage: test_broker_e2e SHMDEMUXD WORKER "
			"MEDIA-DIR FFPROBE-PACKETS\n");
		return 2;
	}
	media = argv[3];
	ffprobe_packets = argv[4];
	CHECK(access(argv[2], X_OK) == 0);
	CHECK(access(ffprobe_packets, X_OK) == 0);
	tl_init(argv[1], 240);
	CHECK(tl_broker_start(&b, "s", argv[2], NULL) == 0);
	for (size_t i = 0; i < COUNT(generated_files); i++)
		compare(media, generated_files[i], 0);
	for (size_t i = 0; i < COUNT(generated_piped); i++)
		compare(media, generated_piped[i], 1);
	if (corpus != NULL) {
		for (size_t i = 0; i < COUNT(corpus_files); i++)
			compare(corpus, corpus_files[i], 0);
		for (size_t i = 0; i < COUNT(corpus_piped); i++)
			compare(corpus, corpus_piped[i], 1);
	} else {
		printf("no corpus: generated media only\n");
	}
	kill_mid_stream(media);
	CHECK(tl_broker_stop(&b) == 0);
	tl_check_shm();
	printf("test_broker_e2e: ok\n");
	return 0;
}
