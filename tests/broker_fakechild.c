/*
 * broker_fakechild.c - a stand-in for shmdemux-worker in the broker tests.
 *
 * Started by shmdemuxd with the worker's fds and argv (worker_abi.h); the
 * "format" argument selects a behaviour, so one broker can run streams that
 * end in every way:
 *   sum       read fd 0 to EOF, report "bytes=N fnv=HEX" as a demux error
 *             (exit 11) so the broker keeps the message
 *   eof       read fd 0 to EOF, report EOF, exit 0
 *   crash     SIGSEGV
 *   sigsys    SIGSYS (what the seccomp filter does)
 *   exit13    exit 13 (usage)
 *   openfail  report an open failure with an AVERROR, exit 10
 *   hang      publish one record, wait for a signal (SIGTERM ends it)
 *   stubborn  ignore SIGTERM, publish one record, wait for SIGKILL
 * Before anything it checks the fd layout: 0, 1, 2, 3, 4 open, 5..63 closed,
 * fd 1 the write end of a pipe (readiness, closed once the ring is mapped),
 * fd 4 a socket (the ring's admin channel),
 * --seekable only with a regular file; a violation exits 99.
 * Started as `--spare` or `--fork-server` it takes its stream the way
 * shmdemux-worker does (worker_spare.c, the same code), and the same
 * checks follow.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/sched.h>

#include "proto.h"
#include "ring_producer.h"
#include "worker_abi.h"
#include "worker_spare.h"

static int
layout_ok(int seekable)
{
	struct stat st;

	for (int fd = 0; fd <= 4; fd++)
		if (fcntl(fd, F_GETFD) < 0)
			return 0;
	for (int fd = 5; fd < 64; fd++)
		if (fcntl(fd, F_GETFD) >= 0)
			return 0;
	if (fstat(WORKER_FD_READY, &st) < 0 || !S_ISFIFO(st.st_mode) ||
	    (fcntl(WORKER_FD_READY, F_GETFL) & O_ACCMODE) != O_WRONLY)
		return 0;
	if (fstat(WORKER_FD_ADMIN, &st) < 0 || !S_ISSOCK(st.st_mode))
		return 0;
	if (fstat(WORKER_FD_INPUT, &st) < 0)
		return 0;
	return seekable == S_ISREG(st.st_mode);
}

static void
read_all(uint64_t *bytes, uint64_t *fnv)
{
	char buf[65536];
	ssize_t n;

	*bytes = 0;
	*fnv = UINT64_C(14695981039346656037);
	while ((n = read(WORKER_FD_INPUT, buf, sizeof(buf))) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			exit(98);
		}
		for (ssize_t i = 0; i < n; i++) {
			*fnv ^= (unsigned char)buf[i];
			*fnv *= UINT64_C(1099511628211);
		}
		*bytes += (uint64_t)n;
	}
}

/* One record says "signal handlers are in place" to a test consuming the
 * stream, so it can send signals without racing our start-up. */
static void
ready(struct ring *r)
{
	struct sd_pkt_meta m;
	struct ring_wr w;

	memset(&m, 0, sizeof(m));
	if (ring_reserve(r, sizeof(m), 1, &w, 1000) < 0)
		exit(95);
	memcpy(w.meta, &m, sizeof(m));
	memset(w.payload, 0, 1);
	ring_publish(r, &w, RING_REC_PACKET, RING_RF_SYNC);
}

/* Default action, even in a sanitizer build that catches SIGSEGV. */
static void
die_by(int sig)
{
	signal(sig, SIG_DFL);
	raise(sig);
}

/* Act out one ending; returns the exit code. */
static int
behave(struct ring *r, const char *mode)
{
	uint64_t bytes, fnv;
	char msg[RING_MSG_LEN];

	if (strcmp(mode, "sum") == 0) {
		read_all(&bytes, &fnv);
		/* as the real worker does: what the broker reports for an
		 * input it does not pump (relaxed: read after we are reaped) */
		ring_count(r, RING_CNT_INPUT_BYTES, bytes);
		snprintf(msg, sizeof(msg), "bytes=%" PRIu64 " fnv=%016" PRIx64,
			 bytes, fnv);
		ring_set_worker_status(r, SD_END_DEMUX_ERROR, -5, msg);
		return WORKER_EXIT_DEMUX_ERROR;
	}
	if (strcmp(mode, "eof") == 0) {
		read_all(&bytes, &fnv);
		ring_set_worker_status(r, SD_END_EOF, 0, "");
		return WORKER_EXIT_EOF;
	}
	if (strcmp(mode, "crash") == 0)
		die_by(SIGSEGV);
	if (strcmp(mode, "sigsys") == 0)
		die_by(SIGSYS);
	if (strcmp(mode, "exit13") == 0)
		return 13;
	if (strcmp(mode, "openfail") == 0) {
		ring_set_worker_status(r, SD_END_OPEN_FAILED, -1094995529,
				       "Invalid data found when processing "
				       "input\n\x1b[31m");
		return WORKER_EXIT_OPEN_FAILED;
	}
	if (strcmp(mode, "stubborn") == 0)
		signal(SIGTERM, SIG_IGN);
	if (strcmp(mode, "hang") == 0 || strcmp(mode, "stubborn") == 0) {
		ready(r);
		for (;;)
			pause();
	}
	return 96;
}

/* A fork server that lies (SHMDEMUX_FAKE_SERVER): it takes each
 * assignment, closes its fds and answers "victim" (the pid in
 * SHMDEMUX_FAKE_VICTIM), "broker" (its parent's), "garbage" (3 bytes) or
 * "clone-fail" (-EAGAIN: nothing started); or, once loaded, announces a
 * waiting child that is "wait-victim" (that pid), "wait-broker" (its
 * parent) or "wait-self" (itself); or "stray": clones a child of the
 * broker's and never says so. */
static int
lying_server(const char *how)
{
	static char buf[sizeof(struct worker_assign_hdr) +
			WORKER_ASSIGN_MAX_LEN];
	union {
		char b[CMSG_SPACE(sizeof(int) * 8)];
		struct cmsghdr align;
	} c;
	struct worker_assign_reply r = {
		.magic = WORKER_ASSIGN_MAGIC, .kind = WORKER_REPLY_LOADED,
	};
	const char *victim = getenv("SHMDEMUX_FAKE_VICTIM");
	int fds[8], bad, n;

	if (send(WORKER_FD_SPARE, &r, sizeof(r), MSG_NOSIGNAL) < 0)
		return 0;
	if (strcmp(how, "stray") == 0) {
		/* a child of the broker's it never announces, as a server
		 * killed between a clone and its word would leave */
		struct clone_args ca = { .flags = CLONE_PARENT };

		if (syscall(SYS_clone3, &ca, sizeof(ca)) == 0) {
			close(WORKER_FD_SPARE);
			for (;;)
				pause();
		}
	}
	if (strncmp(how, "wait-", 5) == 0) {
		r.kind = WORKER_REPLY_WAITING;
		if (strcmp(how, "wait-broker") == 0)
			r.pid = (int32_t)getppid();
		else if (strcmp(how, "wait-self") == 0)
			r.pid = (int32_t)getpid();
		else
			r.pid = victim != NULL ? atoi(victim) : 1;
		(void)send(WORKER_FD_SPARE, &r, sizeof(r), MSG_NOSIGNAL);
	}
	r.kind = WORKER_REPLY_CHILD;
	for (;;) {
		struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
		struct msghdr mh = {
			.msg_iov = &iov, .msg_iovlen = 1,
			.msg_control = c.b, .msg_controllen = sizeof(c.b),
		};

		if (recvmsg(WORKER_FD_SPARE, &mh, MSG_CMSG_CLOEXEC) <= 0)
			return 0;
		n = ctl_take_fds(&mh, fds, 8, &bad);
		for (int i = 0; i < n; i++)
			close(fds[i]);
		if (strcmp(how, "garbage") == 0) {
			(void)send(WORKER_FD_SPARE, "xyz", 3, MSG_NOSIGNAL);
			continue;
		}
		if (strcmp(how, "broker") == 0)
			r.pid = (int32_t)getppid();
		else if (strcmp(how, "clone-fail") == 0)
			r.pid = -EAGAIN;
		else
			r.pid = victim != NULL ? atoi(victim) : 1;
		(void)send(WORKER_FD_SPARE, &r, sizeof(r), MSG_NOSIGNAL);
	}
}

int
main(int argc, char **argv)
{
	const char *mode = "eof";
	struct worker_assign spare = { 0 };
	struct ring *r = NULL;
	int seekable = 0, ret;

	if (worker_start_mode(argc, argv) != WORKER_START_EXEC) {
		char err[128];

		if (worker_start_mode(argc, argv) == WORKER_START_FORK &&
		    getenv("SHMDEMUX_FAKE_SERVER") != NULL)
			return lying_server(getenv("SHMDEMUX_FAKE_SERVER"));
		if (worker_start_mode(argc, argv) == WORKER_START_FORK)
			ret = worker_fork_server(&spare, err, sizeof(err));
		else
			ret = worker_spare_wait(&spare, err, sizeof(err));
		if (ret <= 0) {
			if (ret < 0)
				fprintf(stderr, "broker_fakechild: %s\n", err);
			return ret == 0 ? 0 : WORKER_EXIT_USAGE;
		}
		argc = spare.argc;
		argv = spare.argv;
	}
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--seekable") == 0)
			seekable = 1;
		else if (strcmp(argv[i], "--format") == 0 && i + 1 < argc)
			mode = argv[++i];
	}
	if (!layout_ok(seekable))
		return 99;
	ret = ring_map(&r, WORKER_FD_DATA, WORKER_FD_ADMIN,
		       RING_ROLE_PRODUCER);
	close(WORKER_FD_READY); /* mapped: the broker seals the data segment */
	if (ret < 0)
		return 97;
	ring_set_state(r, RING_STATE_RUNNING);
	/* No core files from the crashes on purpose. */
	setrlimit(RLIMIT_CORE, &(struct rlimit){ 0, 0 });

	ret = behave(r, mode);
	ring_unmap(&r);
	worker_assign_free(&spare);
	return ret;
}
