/*
 * spare.c - the worker started ahead of time (spare.h, worker_abi.h):
 * a spare, or a fork server.
 *
 * One at a time: its pid, a pidfd in the loop (an idle death is noticed
 * and reaped like a stream's worker), and the broker's end of the
 * socketpair, non-blocking so a handoff never waits on a send. An
 * assignment is the argv spawn_args() builds for spawn_worker() plus the
 * five fds in one message, the fifth the write end of a new log pipe,
 * the stream's.
 *
 * A spare's scheduling group goes back from SPARE_GROUP_NICE to 0 before
 * its handoff; from then on its pid is the stream's, and its own pidfd,
 * socket and log are dropped. A fork server loads at the normal priority
 * and says when it is loaded (until then a stream starts with
 * spawn_worker()); for each stream it answers with the pid of the child
 * it made, which the broker takes only if waitid() agrees the process is
 * its own child: the broker then reaps and reports it as any other
 * worker. The broker waits for that answer (FORK_SERVER_ANSWER_MS at
 * most, a clone's time in practice) rather than take the next request
 * first. The child the server keeps cloned ahead of the next stream is
 * watched too, from its announcement (its own pidfd: reaped if it dies
 * unused, killed with its server) until the answer names it.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
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
	pid_t pid;             /* 0: none */
	int sock;              /* our end of its socketpair */
	int fork;              /* a fork server, not a spare */
	int loaded;            /* a fork server that said so */
	pid_t waiting;         /* its child waiting for a stream, 0: none */
	struct ev wait_ev;     /* that child's pidfd */
	struct wlog *log;      /* its own stderr */
	struct ev pid_ev;      /* its pidfd */
	struct ev sock_ev;     /* a fork server's socket */
	struct ev retry_ev;    /* backoff timerfd */
	int start_queued;      /* a start is deferred or the timer armed */
	int stopped;           /* shutdown: no more spares */
	unsigned failures;     /* idle deaths and failed starts in a row */
	unsigned streams;      /* the fork server's children */
	uint64_t started_ms;
} sp = {
	.sock = -1,
	.pid_ev = { .fd = -1 },
	.sock_ev = { .fd = -1 },
	.wait_ev = { .fd = -1 },
	.retry_ev = { .fd = -1 },
};

static void schedule_start(void);

static const char *
what(void)
{
	return sp.fork ? "fork server" : "spare worker";
}

/* 1 if pid is a child of ours not yet reaped (so its pid cannot be
 * reused before we reap it). */
static int
is_child(pid_t pid)
{
	siginfo_t si;

	memset(&si, 0, sizeof(si));
	return waitid(P_PID, (id_t)pid, &si,
		      WEXITED | WNOHANG | WNOWAIT) == 0;
}

/* Stop watching the fork server's waiting child: it is a stream's
 * worker now, or reaped. */
static void
forget_waiting(void)
{
	int pfd = sp.wait_ev.fd;

	ev_del(&sp.wait_ev);
	if (pfd >= 0)
		close(pfd);
	sp.waiting = 0;
}

/* Kill the waiting child and reap it (it is ours, unreaped: its pid is
 * not reused before). */
static void
discard_waiting(void)
{
	if (sp.waiting == 0)
		return;
	spawn_kill_reap(sp.waiting);
	forget_waiting();
}

/* Kill and reap every child of ours that nobody tracks, but keep (a
 * stream's worker not yet registered): children a fork server cloned
 * ahead of their stream and did not live to announce. Every other child
 * of the broker is a stream's worker or the server, reaped through its
 * pidfd. Without /proc/PID/task/PID/children: none is found. */
static void
sweep_strays(pid_t keep)
{
	char path[64], buf[4096];
	long pid = 0;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/self/task/%d/children",
		 (int)getpid());
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		for (ssize_t i = 0; i < n; i++) {
			if (buf[i] >= '0' && buf[i] <= '9') {
				pid = pid * 10 + (buf[i] - '0');
				if (pid > INT32_MAX)
					pid = 0;
				continue;
			}
			if (pid > 0 && pid != keep && pid != sp.pid &&
			    !stream_is_worker((pid_t)pid) &&
			    is_child((pid_t)pid)) {
				log_info("fork server: reaping its child %ld, "
					 "made for no stream", pid);
				spawn_kill_reap((pid_t)pid);
			}
			pid = 0;
		}
	}
	close(fd);
}

/* Forget the spare (already reaped or handed off, with its log); a fork
 * server's children made for no stream go with it, but keep. */
static void
drop(pid_t keep)
{
	int pfd = sp.pid_ev.fd;
	int server = sp.fork && sp.pid != keep;

	discard_waiting();
	wlog_finish(&sp.log);
	ev_del(&sp.pid_ev);
	ev_del(&sp.sock_ev);
	if (pfd >= 0)
		close(pfd);
	if (sp.sock >= 0)
		close(sp.sock);
	sp.sock = -1;
	sp.pid = 0;
	sp.loaded = 0;
	sp.streams = 0;
	if (server)
		sweep_strays(keep);
}

/* A dead spare: log how it ended, count the failure, plan a new one. */
static void
spare_died(const siginfo_t *si)
{
	if (now_ms() - sp.started_ms >= SPARE_BACKOFF_MAX_MS)
		sp.failures = 0; /* it lived long enough: not a loop */
	if (si->si_code == CLD_EXITED)
		log_warnx("%s %d exited with status %d while idle", what(),
			  (int)sp.pid, si->si_status);
	else
		log_warnx("%s %d killed by signal %d while idle", what(),
			  (int)sp.pid, si->si_status);
	drop(0);
	sp.failures++;
	schedule_start();
}

/* Reap pid (whose pidfd is readable): 1 with how it ended in *si (a
 * failed waitid is reported as a kill), 0 if it still runs. */
static int
reap_idle(pid_t pid, siginfo_t *si)
{
	int ret = spawn_reap(pid, si);

	if (ret == 0)
		return 0;
	if (ret < 0) {
		log_errno(LOG_LVL_ERROR, ret, "%s %d: waitid", what(),
			  (int)pid);
		si->si_code = CLD_KILLED;
		si->si_status = SIGKILL;
	}
	return 1;
}

static void
on_spare_pidfd(struct ev *ev, uint32_t events)
{
	siginfo_t si;

	(void)ev;
	(void)events;
	if (reap_idle(sp.pid, &si))
		spare_died(&si);
}

static void discard(pid_t keep);
static void fail(void);

/* pid's scheduling group is seen at a nice value other than 0. */
static int
still_lowered(pid_t pid)
{
	int nice;

	return autogroup_get(pid, &nice) == 0 && nice != 0;
}

/* Back to a normal share. No autogroups, or a /proc we cannot write: it
 * was never lowered. Only one seen left below the normal share is
 * dropped (-errno). */
static int
restore_priority(void)
{
	int ret = autogroup_set(sp.pid, 0);

	if (ret < 0 && ret != -ENOENT && still_lowered(sp.pid)) {
		log_errno(LOG_LVL_WARN, ret, "%s %d: cannot restore its "
			  "priority", what(), (int)sp.pid);
		fail();
		return ret;
	}
	return 0;
}

/* One message from the fork server into *r: 1, 0 for its end (EOF),
 * -EAGAIN for none yet, -EPROTO for anything but one whole message of a
 * known kind. */
static int
read_reply(struct worker_assign_reply *r)
{
	ssize_t n;

	do
		n = recv(sp.sock, r, sizeof(*r), MSG_DONTWAIT | MSG_TRUNC);
	while (n < 0 && errno == EINTR);
	if (n < 0 && errno == EAGAIN)
		return -EAGAIN;
	if (n == 0)
		return 0;
	if (n != (ssize_t)sizeof(*r) || r->magic != WORKER_ASSIGN_MAGIC ||
	    (r->kind != WORKER_REPLY_LOADED && r->kind != WORKER_REPLY_CHILD &&
	     r->kind != WORKER_REPLY_WAITING))
		return -EPROTO;
	return 1;
}

static void
on_waiting_pidfd(struct ev *ev, uint32_t events)
{
	siginfo_t si;

	(void)ev;
	(void)events;
	if (!reap_idle(sp.waiting, &si))
		return;
	if (si.si_code == CLD_EXITED)
		log_warnx("fork server %d: child %d exited with status %d "
			  "while it waited for a stream", (int)sp.pid,
			  (int)sp.waiting, si.si_status);
	else
		log_warnx("fork server %d: child %d killed by signal %d "
			  "while it waited for a stream", (int)sp.pid,
			  (int)sp.waiting, si.si_status);
	forget_waiting();
}

/* The fork server's word that it cloned pid ahead of a stream: taken
 * only for a child of ours, not yet reaped, that the broker knows for no
 * other role (the server itself, a stream's worker). One waits at a time:
 * an earlier one, which should be dead, is killed and reaped. 0, or
 * -EPROTO for an announcement that fails those checks. */
static int
adopt_waiting(pid_t pid)
{
	int pfd, ret;

	if (pid <= 0 || pid == sp.pid || pid == sp.waiting ||
	    stream_is_worker(pid) || !is_child(pid)) {
		log_warnx("fork server %d: announced %d, not a new child of "
			  "ours", (int)sp.pid, (int)pid);
		return -EPROTO;
	}
	discard_waiting();
	pfd = spawn_pidfd(pid);
	ret = pfd < 0 ? pfd :
		ev_add(&sp.wait_ev, pfd, EPOLLIN, on_waiting_pidfd, NULL);
	if (ret < 0) {
		/* Not watched, it could die unreaped: it goes, and the next
		 * stream's worker is cloned on the spot. */
		log_errno(LOG_LVL_WARN, ret, "fork server %d: cannot watch "
			  "its child %d", (int)sp.pid, (int)pid);
		if (pfd >= 0)
			close(pfd);
		spawn_kill_reap(pid);
		return 0;
	}
	sp.waiting = pid;
	return 0;
}

/* The fork server's word between assignments: loaded (once), or a child
 * cloned ahead of its stream. Anything else is a fault. */
static void
on_server_msg(struct ev *ev, uint32_t events)
{
	struct worker_assign_reply r;
	int ret;

	(void)ev;
	(void)events;
	ret = read_reply(&r);
	if (ret == -EAGAIN)
		return;
	if (ret == 0) {
		/* exiting: its pidfd tells the rest */
		ev_del(&sp.sock_ev);
		return;
	}
	if (ret == 1 && r.kind == WORKER_REPLY_WAITING) {
		if (adopt_waiting(r.pid) < 0)
			fail();
		return;
	}
	if (ret < 0 || r.kind != WORKER_REPLY_LOADED || r.pid != 0 ||
	    sp.loaded) {
		log_warnx("fork server %d: unexpected message", (int)sp.pid);
		fail();
		return;
	}
	sp.loaded = 1;
	log_debug("fork server %d loaded", (int)sp.pid);
}

static int
watch(pid_t pid, int sock)
{
	int pfd = spawn_pidfd(pid), ret;

	if (pfd < 0)
		return pfd;
	ret = ev_add(&sp.pid_ev, pfd, EPOLLIN, on_spare_pidfd, NULL);
	if (ret < 0) {
		close(pfd);
		return ret;
	}
	if (sp.fork) {
		ret = ev_add(&sp.sock_ev, sock, EPOLLIN, on_server_msg, NULL);
		if (ret < 0) {
			ev_del(&sp.pid_ev);
			close(pfd);
		}
	}
	return ret;
}

static int
start(void)
{
	int sv[2], lp[2] = { -1, -1 }, ret;
	char prefix[WLOG_PREFIX_MAX];
	pid_t pid;

	sp.fork = conf.worker_start == BROKER_START_FORK;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	/* Ours only: O_NONBLOCK on the spare's end would be shared with
	 * its fd 3 and turn its blocking wait into EAGAIN. */
	if (fcntl(sv[0], F_SETFL, O_NONBLOCK) < 0 ||
	    pipe2(lp, O_CLOEXEC) < 0) {
		ret = -errno;
		goto out;
	}
	pid = spawn_spare(conf.worker_path, sp.fork ? "--fork-server" :
			  "--spare", sv[1], lp[1]);
	if (pid < 0) {
		ret = (int)pid;
		goto out;
	}
	snprintf(prefix, sizeof(prefix), "%s %d: ", what(), (int)pid);
	sp.log = wlog_start(lp[0], prefix);
	lp[0] = -1; /* taken over */
	/* A spare is lowered once it has exec'd, not by the child before:
	 * spawn_spare waits for the exec, which a lowered child on a busy
	 * machine could hold up. Its loading runs at the normal share only
	 * for the moment between. No autogroups: it is never lowered
	 * (restore_priority). A fork server loads once, at the normal share:
	 * lowered, a machine kept busy by exec'd workers would starve it and
	 * every stream would be exec'd. */
	if (!sp.fork)
		(void)autogroup_set(pid, SPARE_GROUP_NICE);
	ret = watch(pid, sv[0]);
	if (ret < 0) {
		spawn_kill_reap(pid);
		wlog_finish(&sp.log);
		goto out;
	}
	sp.pid = pid;
	sp.sock = sv[0];
	sv[0] = -1;
	sp.started_ms = now_ms();
	log_debug("%s %d started", what(), (int)pid);
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
		log_errno(LOG_LVL_WARN, ret, "cannot start a %s %s", what(),
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
	log_info("next %s in %u ms", what(), ms);
	ret = timer_arm(sp.retry_ev.fd, ms);
	if (ret < 0) {
		sp.start_queued = 0;
		log_errno(LOG_LVL_WARN, ret, "%s retry timer", what());
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
		ws->log_fd,
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

/* Kill and reap it; with a fork server, its children made for no
 * stream but keep. */
static void
discard(pid_t keep)
{
	spawn_kill_reap(sp.pid);
	drop(keep);
}

/* Kill it, count a failure, plan the next. */
static void
fail(void)
{
	discard(0);
	sp.failures++;
	schedule_start();
}

/* Retire the fork server after conf.fork_renew streams: its children are
 * the broker's and carry on; the next server has a new address layout
 * (docs/SECURITY.md). Streams are exec'd while it loads. */
static void
renew(pid_t keep)
{
	log_info("fork server %d: %u streams started, starting a new one",
		 (int)sp.pid, sp.streams);
	discard(keep);
	schedule_start();
}

/* The fork server's answer to an assignment: the child's pid; -errno
 * from a clone that failed (nothing was started); -EPROTO for no answer
 * in time, a malformed one, or a pid that is not our child (a child may
 * then exist that we do not know). */
static pid_t
await_child(void)
{
	const uint64_t deadline = now_ms() + FORK_SERVER_ANSWER_MS;
	struct worker_assign_reply r;
	struct pollfd p = { .fd = sp.sock, .events = POLLIN };
	uint64_t now;
	int ret;

	for (;;) {
		now = now_ms();
		do
			ret = now < deadline ?
				poll(&p, 1, (int)(deadline - now)) : 0;
		while (ret < 0 && errno == EINTR);
		if (ret <= 0) {
			log_warnx("fork server %d: no answer in %u ms",
				  (int)sp.pid, FORK_SERVER_ANSWER_MS);
			return -EPROTO;
		}
		ret = read_reply(&r);
		if (ret == -EAGAIN)
			continue;
		if (ret == 1 && r.kind == WORKER_REPLY_WAITING) {
			if (adopt_waiting(r.pid) < 0)
				return -EPROTO;
			continue;
		}
		if (ret != 1 || r.kind != WORKER_REPLY_CHILD) {
			log_warnx("fork server %d: malformed answer",
				  (int)sp.pid);
			return -EPROTO;
		}
		break;
	}
	if (r.pid < 0 && r.pid >= -4095) {
		log_errno(LOG_LVL_WARN, r.pid, "fork server %d: clone",
			  (int)sp.pid);
		return r.pid;
	}
	if (r.pid <= 0 || r.pid == sp.pid || stream_is_worker(r.pid) ||
	    !is_child(r.pid)) {
		log_warnx("fork server %d: answered %d, not a new child of "
			  "ours", (int)sp.pid, (int)r.pid);
		return -EPROTO;
	}
	if (r.pid == sp.waiting)
		forget_waiting(); /* the stream's worker now */
	return r.pid;
}

int
spare_init(void)
{
	int tfd, ret;

	if (conf.worker_start == BROKER_START_EXEC)
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
	struct worker_start w = *ws;
	struct spawn_args a;
	pid_t pid = sp.pid;
	ssize_t len;
	int lp[2], ret;

	if (pid == 0)
		return -ENOENT;
	/* A death not yet seen by the loop: reap it now, and fall back. */
	if (spare_exited()) {
		on_spare_pidfd(&sp.pid_ev, EPOLLIN);
		return -ESRCH;
	}
	/* Still loading, at the lowest priority: exec this stream's. */
	if (sp.fork && !sp.loaded)
		return -EAGAIN;
	ret = spawn_args(ws, &a);
	if (ret < 0)
		return ret;
	len = pack(&a, buf, sizeof(buf));
	if (len < 0)
		return (int)len;
	/* A spare: back to a normal share before it has its stream, loaded
	 * or not. */
	if (!sp.fork && (ret = restore_priority()) < 0)
		return ret;
	if (pipe2(lp, O_CLOEXEC) < 0)
		return -errno;
	w.log_fd = lp[1];
	ret = send_assignment(buf, (size_t)len, &w);
	close(lp[1]);
	if (ret < 0) {
		close(lp[0]);
		log_errno(LOG_LVL_WARN, ret, "%s %d: handoff failed", what(),
			  (int)pid);
		fail();
		return ret;
	}
	if (sp.fork) {
		pid = await_child();
		if (pid == -EPROTO)
			fail();
	} else {
		drop(pid); /* the pid is the stream's now */
		sp.failures = 0;
		schedule_start();
	}
	if (pid < 0) {
		close(lp[0]);
		return pid;
	}
	sp.failures = 0;
	*log = wlog_start(lp[0], "worker: ");
	if (sp.fork && conf.fork_renew != 0 &&
	    ++sp.streams >= conf.fork_renew)
		renew(pid);
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
		discard(0);
}
