/*
 * worker_spare.c - a worker started ahead of its stream (worker_abi.h):
 * receive and check an assignment on the spare socket; a spare places its
 * fds and runs it, a fork server runs it in a child of the broker.
 *
 * The message comes from the broker, but it is treated like any other
 * input: every count and length is checked against the exact number of
 * bytes received before anything is used, and the fds are placed only once
 * the whole message has been accepted.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "proto.h"
#include "worker_abi.h"
#include "worker_prefault.h"
#include "worker_spare.h"

/* Room for one fd more than allowed, so that "too many" is seen as such
 * rather than as MSG_CTRUNC. */
#define CMSG_ROOM CMSG_SPACE(sizeof(int) * (WORKER_ASSIGN_NFDS + 1))

enum worker_start
worker_start_mode(int argc, char **argv)
{
	if (argc != 2)
		return WORKER_START_EXEC;
	if (strcmp(argv[1], "--spare") == 0)
		return WORKER_START_SPARE;
	if (strcmp(argv[1], "--fork-server") == 0)
		return WORKER_START_FORK;
	return WORKER_START_EXEC;
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
 * socket, onto 2 the log the process had while it waited. */
static int
place_fds(const int *fds)
{
	static const int target[WORKER_ASSIGN_NFDS] = {
		WORKER_FD_INPUT, WORKER_FD_DATA, WORKER_FD_READY,
		WORKER_FD_ADMIN, WORKER_FD_LOG,
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

/* One assignment, checked, its fds in fds[] (not placed). Returns 1, 0 if
 * the broker closed the socket, -1 with why in err. */
static int
receive(int sock, struct worker_assign *a, int *fds, char *err, size_t cap)
{
	const size_t room = sizeof(struct worker_assign_hdr) +
		WORKER_ASSIGN_MAX_LEN + 1;
	union {
		char buf[CMSG_ROOM];
		struct cmsghdr align;
	} cbuf;
	struct iovec iov;
	struct msghdr mh;
	int nfds, bad;
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
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
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
	if (why != NULL) {
		close_all(fds, nfds);
		snprintf(err, cap, "bad assignment: %s", why);
		worker_assign_free(a);
		return -1;
	}
	return 1;
}

/* Place the assignment's fds; first lead a session of our own if asked
 * (a fork server's child: a scheduling group of its own, as an exec'd
 * worker). 1, or -1 with why in err and *a freed. */
static int
take_fds(struct worker_assign *a, int *fds, int own_session, char *err,
	 size_t cap)
{
	if ((own_session && setsid() < 0) || place_fds(fds) < 0) {
		snprintf(err, cap, "cannot take the stream's descriptors: %s",
			 strerror(errno));
		worker_assign_free(a);
		return -1;
	}
	return 1;
}

/* An assignment on WORKER_FD_SPARE, its fds placed. */
static int
take_assignment(struct worker_assign *a, int own_session, char *err,
		size_t cap)
{
	int fds[WORKER_ASSIGN_NFDS + 1];
	int ret = receive(WORKER_FD_SPARE, a, fds, err, cap);

	return ret <= 0 ? ret : take_fds(a, fds, own_session, err, cap);
}

int
worker_spare_wait(struct worker_assign *a, char *err, size_t cap)
{
	return take_assignment(a, 0, err, cap);
}

/* A process like fork()'s child, but the broker's child: its parent is
 * ours (CLONE_PARENT). clone3 first; a seccomp profile that answers
 * ENOSYS for it (container runtimes' defaults do) gets clone. */
static pid_t
clone_sibling(void)
{
	struct clone_args ca = { .flags = CLONE_PARENT };
	long pid = syscall(SYS_clone3, &ca, sizeof(ca));

	if (pid >= 0 || errno != ENOSYS)
		return (pid_t)pid;
#if defined(__s390__) || defined(__CRIS__)
	return (pid_t)syscall(SYS_clone, 0L, (long)(CLONE_PARENT | SIGCHLD));
#else
	return (pid_t)syscall(SYS_clone, (long)(CLONE_PARENT | SIGCHLD), 0L,
			      0L, 0L, 0L);
#endif
}

/* A failed send: the broker letting us go (0), or an error (-1). */
static int
send_failed(char *err, size_t cap)
{
	if (errno == EPIPE)
		return 0;
	snprintf(err, cap, "send: %s", strerror(errno));
	return -1;
}

static int
reply(uint32_t kind, int32_t pid)
{
	const struct worker_assign_reply r = {
		.magic = WORKER_ASSIGN_MAGIC, .kind = kind, .pid = pid,
	};
	ssize_t n;

	do
		n = send(WORKER_FD_SPARE, &r, sizeof(r), MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	return n == (ssize_t)sizeof(r) ? 0 : -1;
}

/* In a child: die with the broker (the setting is not inherited, and the
 * check closes the race with a broker that died before it: we then die as
 * the signal would have made us, before a word to a log nobody reads). */
static int
die_with(pid_t broker)
{
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
		return -1;
	if (getppid() != broker)
		raise(SIGKILL);
	return 0;
}

/* The message as received, to the waiting child. */
static int
forward(int sock, const struct worker_assign *a, const int *fds)
{
	struct worker_assign_hdr h;
	union {
		char buf[CMSG_SPACE(sizeof(int) * WORKER_ASSIGN_NFDS)];
		struct cmsghdr align;
	} cbuf;
	struct iovec iov;
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cbuf.buf, .msg_controllen = sizeof(cbuf.buf),
	};
	struct cmsghdr *c;
	ssize_t n;

	memcpy(&h, a->buf, sizeof(h)); /* checked by receive() */
	iov = (struct iovec){ .iov_base = a->buf,
			      .iov_len = sizeof(h) + h.len };
	memset(&cbuf, 0, sizeof(cbuf));
	c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int) * WORKER_ASSIGN_NFDS);
	memcpy(CMSG_DATA(c), fds, sizeof(int) * WORKER_ASSIGN_NFDS);
	do
		n = sendmsg(sock, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	return n == (ssize_t)iov.iov_len ? 0 : -1;
}

/* The child cloned ahead of its stream: in the server, its pid (or
 * -errno) and our end of their socket in *sock; 0 in the child, which
 * then holds its end on WORKER_FD_SPARE (the broker's socket is the
 * server's alone) and has taken its page faults (worker_prefault.h)
 * unless its assignment came first. */
static pid_t
clone_waiting(pid_t broker, int *sock)
{
	int sv[2], e;
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	pid = clone_sibling();
	e = errno;
	if (pid == 0) {
		close(sv[0]);
		if (die_with(broker) < 0 ||
		    dup2(sv[1], WORKER_FD_SPARE) < 0)
			_exit(WORKER_EXIT_USAGE);
		close(sv[1]);
		(void)worker_prefault(WORKER_FD_SPARE);
		return 0;
	}
	close(sv[1]);
	if (pid < 0) {
		close(sv[0]);
		return -e;
	}
	*sock = sv[0];
	return pid;
}

/* A new waiting child, announced. Returns 0 in the child, 1 in the
 * server (*wpid 0 if none could be made), -1 if the broker is gone. */
static int
renew_waiting(pid_t broker, pid_t *wpid, int *wsock)
{
	pid_t pid = clone_waiting(broker, wsock);

	if (pid == 0)
		return 0;
	*wpid = pid > 0 ? pid : 0;
	if (pid > 0 && reply(WORKER_REPLY_WAITING, (int32_t)pid) < 0)
		return -1;
	return 1;
}

int
worker_fork_server(struct worker_assign *a, char *err, size_t cap)
{
	const pid_t broker = getppid();
	int fds[WORKER_ASSIGN_NFDS + 1], ret, e, wsock = -1;
	pid_t pid, wpid = 0;

	if ((ret = renew_waiting(broker, &wpid, &wsock)) == 0)
		return take_assignment(a, 1, err, cap);
	if (ret < 0 || reply(WORKER_REPLY_LOADED, 0) < 0)
		return send_failed(err, cap);
	for (;;) {
		ret = receive(WORKER_FD_SPARE, a, fds, err, cap);
		if (ret <= 0)
			return ret;
		pid = wpid > 0 && forward(wsock, a, fds) == 0 ? wpid : 0;
		if (wsock >= 0)
			close(wsock);
		wsock = -1;
		wpid = 0;
		if (pid == 0) {
			/* none waiting, or it died: clone one now */
			pid = clone_sibling();
			e = errno;
			if (pid == 0 && die_with(broker) < 0) {
				snprintf(err, cap, "prctl: %s",
					 strerror(errno));
				close_all(fds, (int)WORKER_ASSIGN_NFDS);
				worker_assign_free(a);
				return -1;
			}
			if (pid == 0)
				return take_fds(a, fds, 1, err, cap);
			if (pid < 0)
				pid = -e;
		}
		close_all(fds, (int)WORKER_ASSIGN_NFDS);
		worker_assign_free(a);
		if (reply(WORKER_REPLY_CHILD, (int32_t)pid) < 0)
			return send_failed(err, cap);
		if ((ret = renew_waiting(broker, &wpid, &wsock)) == 0)
			return take_assignment(a, 1, err, cap);
		if (ret < 0)
			return send_failed(err, cap);
	}
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
