/*
 * poll.c - example consumer: read several streams in one epoll loop,
 * without a thread per stream and without ever blocking in a read.
 *
 * usage: shmdemux-example-poll [--socket PATH] STREAM_ID...
 *
 * Each stream is attached with SHMDEMUX_ATTACH_POLL; its descriptor
 * (shmdemux_stream_fd) goes into one epoll set. When one is readable, its
 * stream is read with timeout 0 until -EAGAIN: the descriptor then becomes
 * readable again exactly when there is more. The same loop could watch
 * sockets, timers or a GUI's descriptors besides.
 *
 * Prints one line per packet: the stream's position in the arguments
 * (0-based), then the packet as ffprobe-packets prints it:
 *   N,track,pts,dts,duration,size,flags,MD5:hex
 * Exit status: 0 when every stream ended cleanly, 1 otherwise (a line on
 * stderr for each stream that did not), 2 on a usage error.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include <libavutil/md5.h>

#include "shmdemux.h"

#define MAX_STREAMS 16

struct input {
	shmdemux_stream *s;
	uint32_t id;
	int done;     /* 0 while reading; then the code that ended it */
};

/* ffprobe writes N/A for an unset timestamp and a zero duration. */
static void
put_ts(FILE *out, int64_t v, int unset)
{
	if (unset)
		fputs(",N/A", out);
	else
		fprintf(out, ",%" PRId64, v);
}

static void
print_packet(FILE *out, unsigned n, const struct shmdemux_packet *p)
{
	uint8_t md5[16];

	av_md5_sum(md5, p->data, (int)p->size);
	fprintf(out, "%u,%d", n, p->track);
	put_ts(out, p->pts, p->pts == SHMDEMUX_NOPTS);
	put_ts(out, p->dts, p->dts == SHMDEMUX_NOPTS);
	put_ts(out, p->duration, p->duration == 0);
	fprintf(out, ",%zu,%c%c,MD5:", p->size,
		(p->flags & SHMDEMUX_PKT_KEY) ? 'K' : '_',
		(p->flags & SHMDEMUX_PKT_DISCARD) ? 'D' : '_');
	for (int i = 0; i < 16; i++)
		fprintf(out, "%02x", md5[i]);
	fputc('\n', out);
}

/* Everything the stream has now. Returns 1 once it has ended. */
static int
drain(struct input *in, unsigned n)
{
	struct shmdemux_packet p;
	int ret;

	while ((ret = shmdemux_read(in->s, &p, 0)) >= 0)
		if (ret == 0)
			print_packet(stdout, n, &p);
	if (ret == -EAGAIN || ret == SHMDEMUX_EOVERRUN ||
	    ret == SHMDEMUX_ECORRUPT)
		return 0; /* wait for more; a lost or bad packet is skipped */
	in->done = ret;
	return 1;
}

int
main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "socket", required_argument, NULL, 's' },
		{ NULL, 0, NULL, 0 },
	};
	struct input in[MAX_STREAMS] = { 0 };
	struct epoll_event ev;
	const char *sock = NULL;
	shmdemux_conn *conn = NULL;
	unsigned n = 0, left, bad = 0;
	int ep, c, ret;

	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		if (c != 's')
			goto usage;
		sock = optarg;
	}
	if (optind >= argc || argc - optind > MAX_STREAMS)
		goto usage;
	for (; optind < argc; optind++, n++) {
		char *end;
		unsigned long v = strtoul(argv[optind], &end, 10);

		if (*end != '\0' || v == 0 || v > UINT32_MAX)
			goto usage;
		in[n].id = (uint32_t)v;
	}
	if ((ret = shmdemux_connect(&conn, sock, 0)) < 0) {
		fprintf(stderr, "shmdemux-example-poll: connect: %s\n",
			shmdemux_strerror(ret));
		return 1;
	}
	if ((ep = epoll_create1(EPOLL_CLOEXEC)) < 0) {
		perror("shmdemux-example-poll: epoll_create1");
		return 1;
	}
	for (unsigned i = 0; i < n; i++) {
		ret = shmdemux_attach(conn, in[i].id, NULL,
				      SHMDEMUX_START_OLDEST,
				      SHMDEMUX_ATTACH_POLL, &in[i].s);
		if (ret < 0) {
			fprintf(stderr, "shmdemux-example-poll: stream %u: "
				"%s\n", in[i].id, shmdemux_strerror(ret));
			return 1;
		}
		ev.events = EPOLLIN;
		ev.data.u32 = i;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, shmdemux_stream_fd(in[i].s),
			      &ev) < 0) {
			perror("shmdemux-example-poll: epoll_ctl");
			return 1;
		}
	}
	for (left = n; left > 0;) {
		struct epoll_event evs[MAX_STREAMS];
		int k = epoll_wait(ep, evs, MAX_STREAMS, -1);

		if (k < 0 && errno != EINTR) {
			perror("shmdemux-example-poll: epoll_wait");
			return 1;
		}
		for (int j = 0; j < k; j++) {
			unsigned i = evs[j].data.u32;

			if (in[i].done || !drain(&in[i], i))
				continue;
			epoll_ctl(ep, EPOLL_CTL_DEL,
				  shmdemux_stream_fd(in[i].s), NULL);
			left--;
		}
	}
	for (unsigned i = 0; i < n; i++) {
		if (in[i].done != SHMDEMUX_EOF) {
			fprintf(stderr, "shmdemux-example-poll: stream %u: "
				"%s\n", in[i].id, shmdemux_strerror(in[i].done));
			bad++;
		}
		shmdemux_detach(&in[i].s);
	}
	shmdemux_disconnect(&conn);
	return bad ? 1 : 0;
usage:
	fprintf(stderr, "usage: shmdemux-example-poll [--socket PATH] "
		"STREAM_ID...\n");
	return 2;
}
