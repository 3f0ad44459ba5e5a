/*
 * spare.c - the pre-started worker (spare.h, worker_abi.h spare mode).
 *
 * One spare at a time: its pid, a pidfd in the loop (an idle death is
 * noticed and reaped like a stream's worker), and the broker's end of the
 * socketpair, non-blocking so a handoff never waits. A handoff sets the
 * spare's scheduling group back from SPARE_GROUP_NICE to 0, then sends the
 * argv spawn_args() builds for spawn_worker() plus the four fds in one
 * message; from then on the pid is the stream's, and the spare's own
 * pidfd and socket are dropped.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "autogroup.h"
#include "log.h"
#include "shmdemuxd.h"
#include "spare.h"
#include "wlog.h"
#include "worker_abi.h"

_Static_assert(SPAWN_MAX_ARGS <= WORKER_ASSIGN_MAX_ARGC,
	       "a worker's argv must fit an assignment");

static struct {
	pid_t pid;             /* 0: no spare */
	int sock;              /* our end of its socketpair */
	struct wlog *log;      /* its stderr; goes to its stream */
	struct ev pid_ev;      /* its pidfd */
	struct ev retry_ev;    /* backoff timerfd */
	int start_queued;      /* a start is deferred or the timer armed */
	int stopped;           /* shutdown: no more spares */
	unsigned failures;     /* idle deaths and failed starts in a row */
	uint64_t started_ms;
} sp = {
	.sock = -1,
	.pid_ev = { .fd = -1 },
	.retry_ev = { .fd = -1 },
};

static void schedule_start(void);

/* Forget the spare (already reaped or handed off, with its log). */
static void
drop(void)
{
	int pfd = sp.pid_ev.fd;

	wlog_finish(&sp.log);
	ev_del(&sp.pid_ev);
	if (pfd >= 0)
		close(pfd);
	if (sp.sock >= 0)
		close(sp.sock);
	sp.sock = -1;
	sp.pid = 0;
}

/* A dead spare: log how it ended, count the failure, plan a new one. */
static void
spare_died(const siginfo_t *si)
{
	if (now_ms() - sp.started_ms >= SPARE_BACKOFF_MAX_MS)
		sp.failures = 0; /* it lived long enough: not a loop */
	if (si->si_code == CLD_EXITED)
		log_warnx("spare worker %d exited with status %d while idle",
			  (int)sp.pid, si->si_status);
	else
		log_warnx("spare worker %d killed by signal %d while idle",
			  (int)sp.pid, si->si_status);
	drop();
	sp.failures++;
	schedule_start();
}

static void
on_spare_pidfd(struct ev *ev, uint32_t events)
{
	siginfo_t si;
	int ret;

	(void)ev;
	(void)events;
	ret = spawn_reap(sp.pid, &si);
	if (ret == 0)
		return;
	if (ret < 0) {
		log_errno(LOG_LVL_ERROR, ret, "spare worker %d: waitid",
			  (int)sp.pid);
		si.si_code = CLD_KILLED;
		si.si_status = SIGKILL;
	}
	spare_died(&si);
}

static int
watch(pid_t pid)
{
	int pfd = spawn_pidfd(pid), ret;

	if (pfd < 0)
		return pfd;
	ret = ev_add(&sp.pid_ev, pfd, EPOLLIN, on_spare_pidfd, NULL);
	if (ret < 0)
		close(pfd);
	return ret;
}

static int
start(void)
{
	int sv[2], lp[2] = { -1, -1 }, ret;
	char prefix[WLOG_PREFIX_MAX];
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	/* Ours only: O_NONBLOCK on the spare's end would be shared with
	 * its fd 3 and turn its blocking wait into EAGAIN. */
	if (fcntl(sv[0], F_SETFL, O_NONBLOCK) < 0 ||
	    pipe2(lp, O_CLOEXEC) < 0) {
		ret = -errno;
		goto out;
	}
	pid = spawn_spare(conf.worker_path, sv[1], lp[1]);
	if (pid < 0) {
		ret = (int)pid;
		goto out;
	}
	snprintf(prefix, sizeof(prefix), "spare worker %d: ", (int)pid);
	sp.log = wlog_start(lp[0], prefix);
	lp[0] = -1; /* taken over */
	/* Lowered once it has exec'd, not by the child before: spawn_spare
	 * waits for the exec, which a lowered child on a busy machine could
	 * hold up. Its loading runs at the normal share only for the moment
	 * between. No autogroups: it is never lowered (spare_take). */
	(void)autogroup_set(pid, SPARE_GROUP_NICE);
	ret = watch(pid);
	if (ret < 0) {
		kill(pid, SIGKILL);
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		wlog_finish(&sp.log);
		goto out;
	}
	sp.pid = pid;
	sp.sock = sv[0];
	sv[0] = -1;
	sp.started_ms = now_ms();
	log_debug("spare worker %d started", (int)pid);
out:
	if (sv[0] >= 0)
		close(sv[0]);
	close(sv[1]);
	if (lp[0] >= 0)
		close(lp[0]);
	if (lp[1] >= 0)
		close(lp[1]);
	return ret;
}

/* SPARE_BACKOFF_MIN_MS doubling per failure in a row, capped; 0 after a
 * success. */
static unsigned
backoff_ms(void)
{
	unsigned ms = SPARE_BACKOFF_MIN_MS;

	if (sp.failures == 0)
		return 0;
	for (unsigned i = 1; i < sp.failures && ms < SPARE_BACKOFF_MAX_MS; i++)
		ms *= 2;
	return ms < SPARE_BACKOFF_MAX_MS ? ms : SPARE_BACKOFF_MAX_MS;
}

static void
start_now(void *arg)
{
	int ret;

	(void)arg;
	sp.start_queued = 0;
	if (sp.stopped || broker_stopping || sp.pid != 0)
		return;
	ret = start();
	if (ret < 0) {
		log_errno(LOG_LVL_WARN, ret, "cannot start a spare worker %s",
			  conf.worker_path);
		sp.failures++;
		schedule_start();
	}
}

static void
on_retry(struct ev *ev, uint32_t events)
{
	uint64_t exp;

	(void)events;
	(void)!read(ev->fd, &exp, sizeof(exp));
	start_now(NULL);
}

/* A start after the current batch (a stream's OPEN is answered first), or
 * after the backoff. */
static void
schedule_start(void)
{
	unsigned ms = backoff_ms();
	int ret;

	if (sp.start_queued || sp.stopped || broker_stopping)
		return;
	sp.start_queued = 1;
	if (ms == 0) {
		loop_defer_run(start_now, NULL);
		return;
	}
	log_info("next spare worker in %u ms", ms);
	ret = timer_arm(sp.retry_ev.fd, ms);
	if (ret < 0) {
		sp.start_queued = 0;
		log_errno(LOG_LVL_WARN, ret, "spare worker retry timer");
	}
}

/* The assignment message (worker_abi.h) into buf. Returns its length or
 * -E2BIG. */
static ssize_t
pack(const struct spawn_args *a, char *buf, size_t cap)
{
	struct worker_assign_hdr h = {
		.magic = WORKER_ASSIGN_MAGIC,
		.version = WORKER_ASSIGN_VERSION,
		.argc = (uint32_t)a->argc,
	};
	size_t used = sizeof(h);

	if (cap < sizeof(h) + WORKER_ASSIGN_MAX_LEN)
		return -E2BIG;
	for (int i = 0; i < a->argc; i++) {
		size_t n = strlen(a->argv[i]) + 1;

		if (n > WORKER_ASSIGN_MAX_LEN - (used - sizeof(h)))
			return -E2BIG;
		memcpy(buf + used, a->argv[i], n);
		used += n;
	}
	h.len = (uint32_t)(used - sizeof(h));
	memcpy(buf, &h, sizeof(h));
	return (ssize_t)used;
}

static int
send_assignment(const char *buf, size_t len, const struct worker_start *ws)
{
	const int fds[WORKER_ASSIGN_NFDS] = {
		/* the order of worker_abi.h */
		ws->input_fd, ws->data_fd, ws->ready_fd, ws->admin_fd,
	};
	union {
		char buf[CMSG_SPACE(sizeof(fds))];
		struct cmsghdr align;
	} cbuf;
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cbuf.buf, .msg_controllen = sizeof(cbuf.buf),
	};
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	ssize_t n;

	memset(&cbuf, 0, sizeof(cbuf));
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(fds));
	memcpy(CMSG_DATA(c), fds, sizeof(fds));
	do
		n = sendmsg(sp.sock, &mh, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	/* SOCK_SEQPACKET sends a record whole or not at all */
	return (size_t)n == len ? 0 : -EIO;
}

/* 1 if the spare has already exited (its pidfd is readable). */
static int
spare_exited(void)
{
	struct pollfd p = { .fd = sp.pid_ev.fd, .events = POLLIN };

	return poll(&p, 1, 0) == 1 && (p.revents & POLLIN) != 0;
}

/* pid's scheduling group is seen at a nice value other than 0. */
static int
still_lowered(pid_t pid)
{
	int nice;

	return autogroup_get(pid, &nice) == 0 && nice != 0;
}

static void
discard(void)
{
	kill(sp.pid, SIGKILL);
	while (waitpid(sp.pid, NULL, 0) < 0 && errno == EINTR)
		;
	drop();
}

int
spare_init(void)
{
	int tfd, ret;

	if (conf.spare_workers == 0)
		return 0;
	tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (tfd < 0)
		return -errno;
	ret = ev_add(&sp.retry_ev, tfd, EPOLLIN, on_retry, NULL);
	if (ret < 0) {
		close(tfd);
		return ret;
	}
	start_now(NULL);
	return 0;
}

pid_t
spare_take(const struct worker_start *ws, struct wlog **log)
{
	char buf[sizeof(struct worker_assign_hdr) + WORKER_ASSIGN_MAX_LEN];
	struct spawn_args a;
	pid_t pid = sp.pid;
	ssize_t len;
	int ret;

	if (pid == 0)
		return -ENOENT;
	/* A death not yet seen by the loop: reap it now, and fall back. */
	if (spare_exited()) {
		on_spare_pidfd(&sp.pid_ev, EPOLLIN);
		return -ESRCH;
	}
	ret = spawn_args(ws, &a);
	if (ret < 0)
		return ret;
	len = pack(&a, buf, sizeof(buf));
	if (len < 0)
		return (int)len;
	/* Back to a normal share before it has its stream, loaded or not.
	 * No autogroups, or a /proc we cannot write: it was never lowered.
	 * Only a spare seen left below the normal share is not used. */
	ret = autogroup_set(pid, 0);
	if (ret < 0 && ret != -ENOENT && still_lowered(pid)) {
		log_errno(LOG_LVL_WARN, ret, "spare worker %d: cannot restore "
			  "its priority", (int)pid);
		discard();
		sp.failures++;
		schedule_start();
		return ret;
	}
	ret = send_assignment(buf, (size_t)len, ws);
	if (ret < 0) {
		log_errno(LOG_LVL_WARN, ret, "spare worker %d: handoff failed",
			  (int)pid);
		discard();
		sp.failures++;
		schedule_start();
		return ret;
	}
	/* The pid is the stream's now: its reaping and its log go with the
	 * stream. */
	*log = sp.log;
	sp.log = NULL;
	drop();
	sp.failures = 0;
	schedule_start();
	return pid;
}

void
spare_stop(void)
{
	int tfd = sp.retry_ev.fd;

	sp.stopped = 1;
	if (tfd >= 0) {
		ev_del(&sp.retry_ev);
		close(tfd);
	}
	if (sp.pid != 0)
		discard();
}
