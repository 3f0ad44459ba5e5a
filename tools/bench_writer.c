/*
 * bench_writer.c - the process that feeds every benchmark run its input.
 *
 * One writer for the whole benchmark, forked once the input is in memory.
 * Before the first run it reads every page of the buffer, so that no run
 * pays for faulting the source into a fresh process (on a VM a first touch
 * costs microseconds per page: a forked writer per run spent ~0.2 s of CPU
 * on a 148 MB input, on two cores, during the measurement). That is also
 * how cat(1) feeds a pipe from a cached file: its bytes are mapped already
 * and it copies them in 128 KiB writes. Each run hands it the write end of
 * its pipe over a socket; the writer writes the whole buffer into it,
 * closes it and reports.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "proto.h"

/* What a producer such as cat(1) writes per call. One write() of the
 * whole file would hold the pipe's lock while it copies a full pipe's worth,
 * and the reader would spin on that lock instead of reading. */
#define WRITER_CHUNK (128 * 1024)

static struct {
	pid_t pid;
	int sock;     /* ours; the writer's end is its fd of the pair */
	int busy;     /* a feed is being written */
} wr = { .sock = -1 };

static int
write_all(int fd, const uint8_t *buf, size_t len)
{
	for (size_t off = 0; off < len;) {
		size_t want = len - off < WRITER_CHUNK ? len - off :
							 WRITER_CHUNK;
		ssize_t n = write(fd, buf + off, want);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno; /* EPIPE: the reader went away */
		}
		off += (size_t)n;
	}
	return 0;
}

/* Receives one fd, or returns -1 at EOF / on a malformed message. */
static int
recv_fd(int sock)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} cbuf;
	char b;
	struct iovec iov = { .iov_base = &b, .iov_len = 1 };
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cbuf.buf, .msg_controllen = sizeof(cbuf.buf),
	};
	struct cmsghdr *c;
	ssize_t n;
	int fd;

	do
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	c = CMSG_FIRSTHDR(&mh);
	if (n != 1 || c == NULL || c->cmsg_level != SOL_SOCKET ||
	    c->cmsg_type != SCM_RIGHTS || c->cmsg_len != CMSG_LEN(sizeof(int)))
		return -1;
	memcpy(&fd, CMSG_DATA(c), sizeof(fd));
	return fd;
}

static void
writer_main(const uint8_t *buf, size_t len, int sock)
{
	volatile uint8_t sink = 0;
	int fd;

	for (size_t i = 0; i < len; i += 4096)
		sink += buf[i];
	(void)sink;
	while ((fd = recv_fd(sock)) >= 0) {
		char st = write_all(fd, buf, len) == 0 ? 0 : 1;

		close(fd);
		if (write(sock, &st, 1) != 1)
			break;
	}
	_exit(0);
}

int
writer_start(const uint8_t *buf, size_t len)
{
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	wr.pid = fork();
	if (wr.pid < 0) {
		int err = -errno;

		close(sv[0]);
		close(sv[1]);
		return err;
	}
	if (wr.pid == 0) {
		close(sv[0]);
		writer_main(buf, len, sv[1]);
	}
	close(sv[1]);
	wr.sock = sv[0];
	return 0;
}

int
writer_feed(int wfd)
{
	int ret;

	if (wr.sock < 0 || wr.busy)
		return -EINVAL;
	if ((ret = ctl_send(wr.sock, "w", 1, &wfd, 1)) < 0)
		return ret;
	wr.busy = 1;
	return 0;
}

int
writer_wait(void)
{
	char st;
	ssize_t n;

	if (!wr.busy)
		return 0;
	wr.busy = 0;
	do
		n = read(wr.sock, &st, 1);
	while (n < 0 && errno == EINTR);
	if (n != 1)
		return -EIO;
	return st == 0 ? 0 : -EPIPE;
}

void
writer_stop(void)
{
	if (wr.sock >= 0) {
		close(wr.sock); /* the writer sees EOF and exits */
		wr.sock = -1;
	}
	if (wr.pid > 0) {
		reap(wr.pid);
		wr.pid = 0;
	}
}
