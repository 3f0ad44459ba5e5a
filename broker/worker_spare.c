/*
 * worker_spare.c - receive and check one assignment on the spare socket.
 *
 * The message comes from the broker, but a spare treats it like any other
 * input: every count and length is checked against the exact number of
 * bytes received before anything is used, and the fds are placed only once
 * the whole message has been accepted.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proto.h"
#include "worker_abi.h"
#include "worker_spare.h"

/* Room for one fd more than allowed, so that "too many" is seen as such
 * rather than as MSG_CTRUNC. */
#define CMSG_ROOM CMSG_SPACE(sizeof(int) * (WORKER_ASSIGN_NFDS + 1))

int
worker_spare_requested(int argc, char **argv)
{
	return argc == 2 && strcmp(argv[1], "--spare") == 0;
}

static void
close_all(const int *fds, int n)
{
	for (int i = 0; i < n; i++)
		close(fds[i]);
}

/* The strings: exactly argc of them, each NUL-terminated, filling len. */
static int
split_argv(struct worker_assign *a, char *s, uint32_t argc, uint32_t len)
{
	uint32_t n = 0;

	if (s[len - 1] != '\0')
		return -1;
	for (uint32_t i = 0; i < len; i++)
		n += s[i] == '\0';
	if (n != argc)
		return -1;
	a->argv = calloc((size_t)argc + 1, sizeof(*a->argv));
	if (a->argv == NULL)
		return -1;
	for (uint32_t i = 0, off = 0; i < argc; i++) {
		a->argv[i] = s + off;
		off += (uint32_t)strlen(s + off) + 1;
	}
	a->argc = (int)argc;
	return 0;
}

static const char *
check_msg(struct worker_assign *a, ssize_t n, int flags, int nfds)
{
	struct worker_assign_hdr h;

	if (flags & (MSG_TRUNC | MSG_CTRUNC))
		return "truncated message";
	if (nfds != (int)WORKER_ASSIGN_NFDS)
		return "wrong number of descriptors";
	if ((size_t)n < sizeof(h))
		return "short header";
	memcpy(&h, a->buf, sizeof(h));
	if (h.magic != WORKER_ASSIGN_MAGIC)
		return "bad magic";
	if (h.version != WORKER_ASSIGN_VERSION)
		return "unknown version";
	if (h.argc == 0 || h.argc > WORKER_ASSIGN_MAX_ARGC)
		return "bad argument count";
	if (h.len == 0 || h.len > WORKER_ASSIGN_MAX_LEN ||
	    (size_t)n != sizeof(h) + h.len)
		return "bad length";
	if (split_argv(a, a->buf + sizeof(h), h.argc, h.len) < 0)
		return "malformed arguments";
	return NULL;
}

/* Received fds are placed by way of numbers >= 10, so that one received
 * on 4 is not overwritten before it is moved. dup2 onto 3 closes the
 * socket. */
static int
place_fds(const int *fds)
{
	static const int target[WORKER_ASSIGN_NFDS] = {
		WORKER_FD_INPUT, WORKER_FD_DATA, WORKER_FD_READY,
		WORKER_FD_ADMIN,
	};
	int hi[WORKER_ASSIGN_NFDS], ret = 0;

	for (unsigned i = 0; i < WORKER_ASSIGN_NFDS; i++) {
		hi[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 10);
		if (hi[i] < 0)
			ret = -1;
		close(fds[i]);
	}
	for (unsigned i = 0; i < WORKER_ASSIGN_NFDS && ret == 0; i++)
		if (dup2(hi[i], target[i]) < 0)
			ret = -1;
	for (unsigned i = 0; i < WORKER_ASSIGN_NFDS; i++)
		if (hi[i] >= 0)
			close(hi[i]);
	return ret;
}

int
worker_spare_wait(struct worker_assign *a, char *err, size_t cap)
{
	const size_t room = sizeof(struct worker_assign_hdr) +
		WORKER_ASSIGN_MAX_LEN + 1;
	union {
		char buf[CMSG_ROOM];
		struct cmsghdr align;
	} cbuf;
	struct iovec iov;
	struct msghdr mh;
	int fds[WORKER_ASSIGN_NFDS + 1], nfds, bad;
	const char *why;
	ssize_t n;

	memset(a, 0, sizeof(*a));
	a->buf = malloc(room);
	if (a->buf == NULL) {
		snprintf(err, cap, "out of memory");
		return -1;
	}
	iov = (struct iovec){ .iov_base = a->buf, .iov_len = room };
	mh = (struct msghdr){ .msg_iov = &iov, .msg_iovlen = 1,
			      .msg_control = cbuf.buf,
			      .msg_controllen = sizeof(cbuf.buf) };
	do
		n = recvmsg(WORKER_FD_SPARE, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n <= 0) {
		if (n < 0)
			snprintf(err, cap, "recvmsg: %s", strerror(errno));
		worker_assign_free(a);
		return n == 0 ? 0 : -1;
	}
	nfds = ctl_take_fds(&mh, fds, (int)WORKER_ASSIGN_NFDS + 1, &bad);
	why = bad ? "unexpected control message" :
		check_msg(a, n, mh.msg_flags, nfds);
	if (why != NULL)
		close_all(fds, nfds);
	else if (place_fds(fds) < 0)
		why = "cannot place the descriptors";
	if (why != NULL) {
		snprintf(err, cap, "bad assignment: %s", why);
		worker_assign_free(a);
		return -1;
	}
	return 1;
}

void
worker_assign_free(struct worker_assign *a)
{
	free(a->argv);
	free(a->buf);
	a->argv = NULL;
	a->buf = NULL;
	a->argc = 0;
}
