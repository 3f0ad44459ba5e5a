/*
 * push.c - example producer: open a push stream and write a file into it
 * in chunks of random size (1 byte to 1 MiB, from a seeded generator, so a
 * run can be repeated), as an async byte source would deliver them.
 *
 * usage: shmdemux-example-push [--socket PATH] [--seed N] [--nonblock]
 *                              [--hold-after BYTES] [--max-chunk BYTES] FILE
 *
 * Prints the new stream's id on stdout (flushed) before the first byte is
 * pushed, so a consumer can attach while it runs; the stream starts once a
 * reader is attached (lossless mode). The end is explicit:
 * shmdemux_push_end() after the last byte, shmdemux_push_abort() if reading
 * FILE fails.
 *   --nonblock          the pipe is set O_NONBLOCK and fed from a poll(2)
 *                       loop (EAGAIN when full, POLLOUT when it has room)
 *   --max-chunk BYTES   largest chunk (1 .. 1 MiB, default 1 MiB)
 *   --hold-after BYTES  after pushing at least BYTES, print "held N" on
 *                       stdout and wait without ending the input (to be
 *                       killed: the stream then ends input-error)
 * Exit status: 0 when the input was pushed and ended, 1 on a failure (one
 * line on stderr), 2 on a usage error.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shmdemux.h"

#define MAX_CHUNK (1u << 20)

struct push_args {
	const char *socket;
	uint64_t seed;
	int nonblock;
	long long hold_after; /* -1: never */
	size_t max_chunk;
	const char *file;
};

/* xorshift64*: a small, seedable generator, the same on every libc. */
static uint64_t
next_rand(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * UINT64_C(2685821657736338717);
}

/* Write all of buf; a non-blocking fd waits for POLLOUT on EAGAIN. */
static int
write_all(int fd, const uint8_t *buf, size_t len)
{
	struct pollfd pfd = { .fd = fd, .events = POLLOUT };
	ssize_t n;

	while (len > 0) {
		n = write(fd, buf, len);
		if (n > 0) {
			buf += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
				return -errno;
			continue;
		}
		return n < 0 ? -errno : -EIO;
	}
	return 0;
}

/* Read up to len bytes of the file (short only at its end). */
static ssize_t
read_full(int fd, uint8_t *buf, size_t len)
{
	size_t got = 0;
	ssize_t n;

	while (got < len) {
		n = read(fd, buf + got, len - got);
		if (n == 0)
			break;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

static void
hold(unsigned long long pushed)
{
	printf("held %llu\n", pushed);
	fflush(stdout);
	for (;;)
		pause();
}

/* Push the file; returns 0, or a positive errno for an abort. */
static int
push_file(const struct push_args *a, int in, int out)
{
	static uint8_t buf[MAX_CHUNK];
	uint64_t rng = a->seed != 0 ? a->seed : 1;
	unsigned long long pushed = 0;
	ssize_t n;
	int ret;

	for (;;) {
		size_t want = (size_t)(next_rand(&rng) % a->max_chunk) + 1;

		n = read_full(in, buf, want);
		if (n < 0) {
			fprintf(stderr, "shmdemux-example-push: %s: %s\n",
				a->file, strerror((int)-n));
			return (int)-n;
		}
		if (n == 0)
			return 0;
		ret = write_all(out, buf, (size_t)n);
		if (ret < 0) {
			fprintf(stderr, "shmdemux-example-push: writing the "
				"stream: %s\n", strerror(-ret));
			return -ret;
		}
		pushed += (unsigned long long)n;
		if (a->hold_after >= 0 &&
		    pushed >= (unsigned long long)a->hold_after)
			hold(pushed);
	}
}

static int
parse_args(int argc, char **argv, struct push_args *a)
{
	static const struct option lo[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "seed", required_argument, NULL, 'r' },
		{ "nonblock", no_argument, NULL, 'n' },
		{ "hold-after", required_argument, NULL, 'H' },
		{ "max-chunk", required_argument, NULL, 'm' },
		{ NULL, 0, NULL, 0 },
	};
	char *end;
	int c;

	a->hold_after = -1;
	a->seed = 1;
	a->max_chunk = MAX_CHUNK;
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 's': a->socket = optarg; break;
		case 'n': a->nonblock = 1; break;
		case 'r':
			a->seed = strtoull(optarg, &end, 10);
			if (*end != '\0' || end == optarg)
				return -1;
			break;
		case 'm':
			a->max_chunk = strtoull(optarg, &end, 10);
			if (*end != '\0' || end == optarg || a->max_chunk == 0 ||
			    a->max_chunk > MAX_CHUNK)
				return -1;
			break;
		case 'H':
			a->hold_after = strtoll(optarg, &end, 10);
			if (*end != '\0' || end == optarg || a->hold_after < 0)
				return -1;
			break;
		default:
			return -1;
		}
	}
	if (optind + 1 != argc)
		return -1;
	a->file = argv[optind];
	return 0;
}

int
main(int argc, char **argv)
{
	struct push_args a = { 0 };
	struct shmdemux_open_opts o;
	shmdemux_conn *conn = NULL;
	uint32_t id;
	int in = -1, wr = -1, ret, err, code = 1;

	if (parse_args(argc, argv, &a) < 0) {
		fprintf(stderr, "usage: shmdemux-example-push [--socket PATH] "
			"[--seed N] [--nonblock] [--hold-after BYTES] "
			"[--max-chunk BYTES] FILE\n");
		return 2;
	}
	/* A stream that ended early shows as EPIPE from write(), not death. */
	signal(SIGPIPE, SIG_IGN);
	in = open(a.file, O_RDONLY | O_CLOEXEC);
	if (in < 0) {
		fprintf(stderr, "shmdemux-example-push: %s: %s\n", a.file,
			strerror(errno));
		goto out;
	}
	ret = shmdemux_connect(&conn, a.socket, SHMDEMUX_CONNECT_AUTOSTART);
	if (ret < 0) {
		fprintf(stderr, "shmdemux-example-push: connect: %s\n",
			shmdemux_strerror(ret));
		goto out;
	}
	shmdemux_open_opts_init(&o);
	o.label = a.file;
	ret = shmdemux_open_push(conn, &o, &id, &wr);
	if (ret < 0) {
		fprintf(stderr, "shmdemux-example-push: open: %s\n",
			shmdemux_conn_last_error(conn)[0] != '\0' ?
			shmdemux_conn_last_error(conn) : shmdemux_strerror(ret));
		goto out;
	}
	printf("%" PRIu32 "\n", id);
	fflush(stdout);
	if (a.nonblock &&
	    fcntl(wr, F_SETFL, fcntl(wr, F_GETFL) | O_NONBLOCK) < 0) {
		fprintf(stderr, "shmdemux-example-push: O_NONBLOCK: %s\n",
			strerror(errno));
		goto out;
	}
	err = push_file(&a, in, wr);
	ret = err == 0 ? shmdemux_push_end(conn, id, &wr) :
	    shmdemux_push_abort(conn, id, &wr, err);
	if (ret < 0)
		fprintf(stderr, "shmdemux-example-push: ending the input: %s\n",
			shmdemux_strerror(ret));
	else if (err == 0)
		code = 0;
out:
	if (wr >= 0)
		close(wr);
	if (in >= 0)
		close(in);
	shmdemux_disconnect(&conn);
	return code;
}
