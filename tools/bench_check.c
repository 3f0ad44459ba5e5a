/*
 * bench_check.c - what the stream benchmarks (scale, soak) check and
 * measure: a running hash of every packet a reader sees, the same over an
 * in-process demux of the file, and what the broker holds, from /proc
 * (descriptors, the memfds of its rings) and /dev/shm.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libavformat/avformat.h>

#include "bench.h"

/* One value into the hash, mixed so that order matters. */
static uint64_t
mix(uint64_t h, uint64_t v)
{
	h ^= v + 0x9e3779b97f4a7c15u + (h << 6) + (h >> 2);
	return h * 0xff51afd7ed558ccdu;
}

void
tally_add(struct tally *t, int track, int64_t pts, int64_t dts,
	  const uint8_t *data, size_t size)
{
	uint64_t h = mix(t->hash, (uint64_t)track);
	size_t i = 0;
	uint64_t w;

	h = mix(h, (uint64_t)pts);
	h = mix(h, (uint64_t)dts);
	h = mix(h, size);
	for (; i + 8 <= size; i += 8) {
		memcpy(&w, data + i, 8);
		h = mix(h, w);
	}
	for (w = 0; i < size; i++)
		w = w << 8 | data[i];
	t->hash = mix(h, w);
	t->count++;
	t->bytes += size;
}

void
tally_demux_file(const char *path, struct tally *t)
{
	AVFormatContext *fmt = NULL;
	AVPacket *pkt = av_packet_alloc();
	int ret = pkt != NULL ? 0 : AVERROR(ENOMEM);

	memset(t, 0, sizeof(*t));
	if (ret == 0)
		ret = avformat_open_input(&fmt, path, NULL, NULL);
	if (ret >= 0)
		ret = avformat_find_stream_info(fmt, NULL);
	while (ret >= 0 && (ret = av_read_frame(fmt, pkt)) >= 0) {
		tally_add(t, pkt->stream_index, pkt->pts, pkt->dts, pkt->data,
			  (size_t)pkt->size);
		av_packet_unref(pkt);
	}
	t->err = ret == AVERROR_EOF ? 0 : ret;
	av_packet_free(&pkt);
	avformat_close_input(&fmt);
}

int
tally_same(const struct tally *a, const struct tally *ref)
{
	return a->count == ref->count && a->bytes == ref->bytes &&
		a->hash == ref->hash;
}

int
proc_count_fds(pid_t pid)
{
	char path[64];
	struct dirent *e;
	DIR *d;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	if ((d = opendir(path)) == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

#define MEMFD_MAX_SEEN 8192

void
proc_memfds(pid_t pid, struct memfd_use *u)
{
	char dir[64], path[64 + 256], link[256];
	static ino_t seen[MEMFD_MAX_SEEN];
	size_t nseen = 0;
	struct dirent *e;
	struct stat st;
	ssize_t n;
	DIR *d;

	memset(u, 0, sizeof(*u));
	snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
	if ((d = opendir(dir)) == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		size_t i;

		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		n = readlink(path, link, sizeof(link) - 1);
		if (n <= 0)
			continue;
		link[n] = '\0';
		if (strncmp(link, "/memfd:shmdemux-", 16) != 0 ||
		    stat(path, &st) < 0)
			continue;
		for (i = 0; i < nseen && seen[i] != st.st_ino; i++)
			;
		if (i < nseen)
			continue;
		if (nseen < MEMFD_MAX_SEEN)
			seen[nseen++] = st.st_ino;
		u->files++;
		u->kb += (uint64_t)st.st_blocks / 2;
	}
	closedir(d);
}

void
devshm_use(struct memfd_use *u)
{
	char path[300];
	struct dirent *e;
	struct stat st;
	DIR *d;

	memset(u, 0, sizeof(*u));
	if ((d = opendir("/dev/shm")) == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		u->files++;
		snprintf(path, sizeof(path), "/dev/shm/%s", e->d_name);
		if (lstat(path, &st) == 0)
			u->kb += (uint64_t)st.st_blocks / 2;
	}
	closedir(d);
}
