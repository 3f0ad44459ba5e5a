/*
 * stream_life.c - a stream's worker from its start to its end, and the
 * stream after: the data segment sealed once the worker has mapped it,
 * the worker's exit read from its pidfd and turned into the end reason
 * (written once, with ring_set_end()), CLOSE and KILL, then an ended
 * stream's ring kept for late readers and released, and the stream reaped.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "ended.h"
#include "log.h"
#include "procstat.h"
#include "pump.h"
#include "ring_admin.h"
#include "stream_internal.h"
#include "utf8.h"
#include "wlog.h"

static unsigned nrunning;

/* ---- sealing the data segment ---- */

void
stream_stop_start_watch(struct stream *s)
{
	ev_close(&s->ready_ev);
	ev_close(&s->start_ev);
}

/* No new writer from now on, root included: write(2), pwrite, hole
 * punching and writable shared mappings of the data segment fail with
 * EPERM, whoever opens it and however (a consumer reopening its read-only
 * fd through /proc/self/fd, say). The worker's mapping and our own (the
 * end status) were made before and keep working. F_SEAL_SEAL last: the
 * set is final. Idempotent; the caller answers waiting consumers. */
static void
seal_data(struct stream *s)
{
	stream_stop_start_watch(s);
	if (s->sealed || s->seal_err != 0)
		return;
	if (fcntl(s->data_fd, F_ADD_SEALS,
		  F_SEAL_FUTURE_WRITE | F_SEAL_SEAL) < 0) {
		s->seal_err = errno;
		stream_log(s, LOG_LVL_ERROR, errno, "cannot seal the ring "
			   "against writes, no consumer can attach");
		return;
	}
	s->sealed = 1;
}

/* The worker closed its end of the readiness pipe, or died, or (a worker
 * that wrote to it) says so: it has mapped the ring. */
static void
on_ready(struct ev *ev, uint32_t events)
{
	struct stream *s = ev->arg;
	struct timespec now;

	(void)events;
	seal_data(s);
	clock_gettime(CLOCK_MONOTONIC, &now);
	stream_log(s, LOG_LVL_DEBUG, 0, "the worker has mapped its ring, "
		   "sealed %.3f ms after its start",
		   (double)(now.tv_sec - s->start_ts.tv_sec) * 1e3 +
		   (double)(now.tv_nsec - s->start_ts.tv_nsec) / 1e6);
	control_attach_resume(s);
}

/* A worker that never maps its ring would keep its consumers waiting:
 * after the open timeout it is killed, as the watchdog does, and its end
 * answers them. */
static void
on_start_deadline(struct ev *ev, uint32_t events)
{
	struct stream *s = ev->arg;
	struct wd_sample ws;
	uint64_t exp;

	(void)events;
	(void)!read(ev->fd, &exp, sizeof(exp));
	if (s->sealed || s->pid == 0 || s->stop_reason != SD_END_NONE)
		return;
	/* Both deadlines are the open timeout, and the two timers race: the
	 * end reason must not depend on which fires first. A worker that
	 * has not mapped its ring is still opening, so the watchdog's own
	 * verdict for an opening worker answers (open-failed when the
	 * source never gave a byte, watchdog otherwise). */
	stream_watchdog_sample(s, &ws);
	if (ws.input > 0 || ws.input_waiting)
		s->wd.input_seen = 1;
	s->stop_reason = stream_watchdog_verdict(s, s->wd.input_seen ?
					  WD_OPEN_TIMEOUT : WD_NO_INPUT);
	stream_log(s, LOG_LVL_INFO, 0, "the worker has not mapped its ring: "
		   "%s, killing it", s->wd_msg);
	stream_signal(s, SIGKILL);
}

/* Watch the read end of the readiness pipe (taken over) and arm the start
 * deadline. On failure the segment is sealed at once: the worker's mapping
 * then fails and its stream ends, instead of consumers waiting. */
void
stream_watch_start(struct stream *s, int ready_rd)
{
	int tfd, ret;

	ret = ev_add(&s->ready_ev, ready_rd, EPOLLIN, on_ready, s);
	if (ret < 0) {
		close(ready_rd);
		goto fail;
	}
	tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (tfd < 0) {
		ret = -errno;
		goto fail;
	}
	ret = ev_add(&s->start_ev, tfd, EPOLLIN, on_start_deadline, s);
	if (ret < 0) {
		close(tfd);
		goto fail;
	}
	ret = timer_arm(tfd, conf.open_timeout_ms);
	if (ret < 0) {
		ev_close(&s->start_ev);
		goto fail;
	}
	return;
fail:
	stream_log(s, LOG_LVL_WARN, ret, "cannot wait for the worker to map "
		   "its ring; sealing now");
	seal_data(s);
}

int
stream_attach_ready(const struct stream *s)
{
	if (s->seal_err != 0)
		return -s->seal_err;
	if (s->sealed && s->admin_full_ms != 0 &&
	    now_ms() - s->admin_full_ms < conf.reply_timeout_ms)
		return 0;
	return s->sealed;
}

/* ---- the end of a stream ---- */

void
stream_set_ended(struct stream *s, const struct worker_end *end)
{
	/* No worker maps the ring any more (or ever will). */
	seal_data(s);
	s->end = *end;
	s->ended = 1;
	s->ended_ms = now_ms();
	/* Consumers read the call's number from the header: replace the
	 * worker's word with the checked one (-1 unless ended by SIGSYS);
	 * ring_set_end() below publishes it with the end. */
	ring_set_end_syscall(s->ring, end->reason == SD_END_SANDBOX ?
			     end->syscall_nr : -1);
	ring_set_end(s->ring, end->reason, end->exit_code, end->sig,
		     end->averror, end->msg);
	if (end->reason == SD_END_EOF)
		stream_log(s, LOG_LVL_INFO, 0, "worker ended: eof");
	else
		stream_log(s, LOG_LVL_INFO, 0, "worker ended: %s%s%s",
			   sd_end_reason_name(end->reason),
			   end->msg[0] != '\0' ? ": " : "", end->msg);
}

/* What the worker wrote about its own end; copied once and NUL-forced, it
 * is untrusted. */
static void
read_worker_word(const struct stream *s, struct worker_word *ww)
{
	const struct ring_hdr *h = ring_hdr(s->ring);

	memset(ww, 0, sizeof(*ww));
	ww->reason = *(const volatile uint32_t *)&h->worker_reason;
	ww->averror = *(const volatile int32_t *)&h->worker_averror;
	ww->syscall_nr = *(const volatile int32_t *)&h->end_syscall;
	/* x86-64 and arm64 number their calls well below this */
	if (ww->syscall_nr < 0 || ww->syscall_nr >= 4096)
		ww->syscall_nr = -1;
	memcpy(ww->msg, h->end_msg, sizeof(ww->msg));
	ww->msg[sizeof(ww->msg) - 1] = '\0';
	/* one line of printable UTF-8, in our log and in ls: controls (C0,
	 * DEL, C1) and invalid bytes become '?' */
	for (char *c = ww->msg; *c != '\0';) {
		unsigned cp;
		size_t n = utf8_char_len(c, strlen(c), &cp);

		if (n == 0 || cp < 0x20 || (cp >= 0x7f && cp <= 0x9f)) {
			memset(c, '?', n > 0 ? n : 1);
			n = n > 0 ? n : 1;
		}
		c += n;
	}
}

static void
worker_gone(struct stream *s, const siginfo_t *si)
{
	struct worker_word ww;
	struct worker_end end;
	int input_err = s->push_err;

	if (s->pump != NULL)
		input_err = pump_error(s->pump);
	stream_stop_pump(s);
	stream_release_push(s);
	if (s->pid_ev.fd >= 0) {
		int pfd = s->pid_ev.fd;

		ev_del(&s->pid_ev);
		close(pfd);
	}
	if (s->timer_ev.fd >= 0) {
		int tfd = s->timer_ev.fd;

		ev_del(&s->timer_ev);
		close(tfd);
	}
	stream_watchdog_stop(s);
	/* its last lines before the news of its end */
	wlog_finish(&s->log);
	s->pid = 0;
	nrunning--;
	read_worker_word(s, &ww);
	spawn_map_end(si, s->stop_reason, &ww, input_err, &end);
	if (s->wd_msg[0] != '\0' && (end.reason == SD_END_WATCHDOG ||
	    (end.reason == SD_END_OPEN_FAILED &&
	     s->stop_reason == SD_END_OPEN_FAILED)))
		snprintf(end.msg, sizeof(end.msg), "%s", s->wd_msg);
	else if (s->push_err != 0 && end.reason == SD_END_INPUT_ERROR)
		snprintf(end.msg, sizeof(end.msg), "%s",
			 s->push_err == EPIPE ? "the producer went away "
			 "before ending its input" : "the producer aborted "
			 "its input");
	stream_set_ended(s, &end);
	control_attach_resume(s);
	if (s->closing)
		stream_unlist(s, "closed");
	else
		stream_release_check(s);
}

static void
on_pidfd(struct ev *ev, uint32_t events)
{
	struct stream *s = ev->arg;
	struct procstat ps;
	siginfo_t si;
	int ret;

	(void)events;
	/* Its CPU time, final now that it has exited and readable until it
	 * is reaped. */
	if (s->pid > 0 && procstat_read(s->pid, &ps) == 0)
		s->cpu_ms = ps.cpu_ms;
	ret = spawn_reap(s->pid, &si);
	if (ret == 0)
		return;
	if (ret < 0) {
		/* Not our child any more (cannot happen unless someone reaped
		 * it); report it as crashed rather than spin on the pidfd. */
		stream_log(s, LOG_LVL_ERROR, ret, "waitid");
		memset(&si, 0, sizeof(si));
		si.si_code = CLD_KILLED;
		si.si_status = SIGKILL;
	}
	worker_gone(s, &si);
}

int
stream_watch_worker(struct stream *s, pid_t pid, const struct ctl_open *req,
		    int input_fd)
{
	int pfd, ret;

	pfd = spawn_pidfd(pid);
	if (pfd < 0)
		return pfd;
	ret = ev_add(&s->pid_ev, pfd, EPOLLIN, on_pidfd, s);
	if (ret < 0) {
		close(pfd);
		return ret;
	}
	s->pid = pid;
	nrunning++;
	ret = stream_watchdog_start(s, req, input_fd);
	if (ret < 0)
		stream_log(s, LOG_LVL_WARN, ret, "no watchdog");
	return 0;
}

int
stream_signal(struct stream *s, int sig)
{
	if (s->pid_ev.fd < 0)
		return -ESRCH;
	if (syscall(SYS_pidfd_send_signal, s->pid_ev.fd, sig, NULL, 0) < 0)
		return -errno;
	return 0;
}

/* ---- CLOSE, KILL ---- */

static void
on_stop_timer(struct ev *ev, uint32_t events)
{
	struct stream *s = ev->arg;
	uint64_t exp;

	(void)events;
	(void)!read(ev->fd, &exp, sizeof(exp));
	if (s->pid != 0) {
		stream_log(s, LOG_LVL_INFO, 0, "worker did not stop in %u ms, "
			   "killing it", BROKER_STOP_GRACE_MS);
		stream_signal(s, SIGKILL);
	}
}

static int
arm_stop_timer(struct stream *s)
{
	int tfd, ret;

	if (s->timer_ev.fd >= 0)
		return 0;
	tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (tfd < 0)
		return -errno;
	ret = ev_add(&s->timer_ev, tfd, EPOLLIN, on_stop_timer, s);
	if (ret == 0)
		ret = timer_arm(tfd, BROKER_STOP_GRACE_MS);
	if (ret < 0) {
		ev_del(&s->timer_ev);
		close(tfd);
	}
	return ret;
}

void
stream_close(struct stream *s)
{
	int ret;

	if (s->pid == 0) {
		stream_unlist(s, "closed");
		return;
	}
	s->closing = 1;
	if (s->stop_reason == SD_END_NONE)
		s->stop_reason = SD_END_CLOSED;
	/* Input stops now: no point feeding a worker that is going away. */
	stream_stop_pump(s);
	stream_release_push(s);
	stream_signal(s, SIGTERM);
	ret = arm_stop_timer(s);
	if (ret < 0) {
		stream_log(s, LOG_LVL_WARN, ret, "stop timer");
		stream_signal(s, SIGKILL);
	}
}

int
stream_kill(struct stream *s)
{
	if (s->pid == 0)
		return -ESRCH;
	s->stop_reason = SD_END_KILLED;
	return stream_signal(s, SIGKILL);
}

/* ---- an ended stream's ring: kept for late readers, then released ----
 *
 * An ended stream stays listed until CLOSE, so `ls` says how it ended. Its
 * ring (three descriptors, a mapping, the memfd's pages) is worth keeping
 * only while someone may still read it: once the consumers the stream
 * waited for (wait_consumers, at least one) have attached and every
 * connection has left it, the ring is released after --keep-ended, at once
 * when an OPEN needs descriptors. LIST reports the numbers it had; ATTACH
 * is refused (-ENODATA). A stream nobody has read keeps its ring. */

static struct ev keep_ev = { .fd = -1 };
static uint64_t keep_due;  /* now_ms() the timer is armed for, 0: not */

static void on_keep_timer(struct ev *ev, uint32_t events);

static int
ring_spent(const struct stream *s)
{
	uint32_t want = s->wait_consumers > 0 ? s->wait_consumers : 1;

	return s->ended && s->listed && !s->released && s->refs == 1 &&
	    s->attached_ever >= want;
}

/* Ended, in the table, held by no connection, and not being closed: it
 * leaves the table --retain-ended after idle_ms. */
static int
reapable(const struct stream *s)
{
	return s->ended && s->listed && !s->closing && s->refs == 1 &&
	    conf.retain_ended_s != BROKER_RETAIN_FOREVER;
}

static uint64_t
reap_due(const struct stream *s)
{
	return s->idle_ms + (uint64_t)conf.retain_ended_s * 1000;
}

static void
ring_drop(struct stream *s)
{
	stream_info(s, &s->final);
	stream_ring_close(s);
	s->released = 1;
	stream_log(s, LOG_LVL_DEBUG, 0, "ended and read; its ring is released");
}

void
stream_released_info(const struct stream *s, struct ctl_stream_info *info)
{
	*info = s->final;
	ended_info_idle(info);
	info->flags |= CTL_INFO_RELEASED;
	stream_times(s, info);
}

/* The timer fires at `due` at the latest (now_ms() clock); an earlier
 * deadline moves it. Always through the timer, never from the caller's
 * stack: a reap frees the stream its caller may still be looking at. */
static void
keep_arm(uint64_t due)
{
	uint64_t now = now_ms(), ms;

	if (keep_due != 0 && keep_due <= due)
		return;
	/* Without a timer, kept until CLOSE, or until fds run short. */
	if (keep_ev.fd < 0 && timer_new(&keep_ev, on_keep_timer, NULL) < 0)
		return;
	ms = due > now ? due - now : 1;
	if (timer_arm(keep_ev.fd, ms > UINT32_MAX ? UINT32_MAX :
		      (unsigned)ms) == 0)
		keep_due = due;
}

static void
on_keep_timer(struct ev *ev, uint32_t events)
{
	struct stream *s, *tmp;
	uint64_t exp, now = now_ms(), next = UINT64_MAX;

	(void)events;
	(void)!read(ev->fd, &exp, sizeof(exp));
	keep_due = 0;
	TAILQ_FOREACH_SAFE(s, &streams, entry, tmp) {
		if (ring_spent(s)) {
			if (now - s->spent_ms >= conf.keep_ended_ms)
				ring_drop(s);
			else if (s->spent_ms + conf.keep_ended_ms < next)
				next = s->spent_ms + conf.keep_ended_ms;
		}
		if (reapable(s)) {
			if (now >= reap_due(s))
				stream_unlist(s, "reaped: ended, and no one "
					   "has held it since");
			else if (reap_due(s) < next)
				next = reap_due(s);
		}
	}
	if (next != UINT64_MAX)
		keep_arm(next);
}

/* A stream that may have just become spent or reapable (ended, or left by
 * a connection). */
void
stream_release_check(struct stream *s)
{
	if (reapable(s)) {
		s->idle_ms = now_ms();
		keep_arm(reap_due(s));
	}
	if (!ring_spent(s))
		return;
	if (conf.keep_ended_ms == 0) {
		ring_drop(s);
		return;
	}
	s->spent_ms = now_ms();
	keep_arm(s->spent_ms + conf.keep_ended_ms);
}

unsigned
streams_release_spent(void)
{
	struct stream *s;
	unsigned n = 0;

	TAILQ_FOREACH(s, &streams, entry) {
		if (ring_spent(s)) {
			ring_drop(s);
			n++;
		}
	}
	return n;
}

/* ---- table-wide ---- */

unsigned
stream_running_count(void)
{
	return nrunning;
}

void
streams_signal_all(int sig)
{
	struct stream *s;

	TAILQ_FOREACH(s, &streams, entry) {
		if (s->pid == 0)
			continue;
		if (s->stop_reason == SD_END_NONE)
			s->stop_reason = SD_END_CLOSED;
		stream_stop_pump(s);
		stream_release_push(s);
		stream_signal(s, sig);
	}
}

void
streams_free_all(void)
{
	struct stream *s;
	int tfd = keep_ev.fd;

	while ((s = TAILQ_FIRST(&streams)) != NULL)
		stream_unlist(s, "closed");
	if (tfd >= 0) {
		ev_del(&keep_ev);
		close(tfd);
	}
}
