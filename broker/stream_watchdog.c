/*
 * stream_watchdog.c - the hung-worker rule (watchdog.h) applied to a
 * running stream: a periodic timer samples the worker's progress clock
 * and whether input waits for it, and kills it when the rule says so,
 * with the end reason and message its end will report.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "log.h"
#include "pump.h"
#include "ring_admin.h"
#include "stream_internal.h"

void
stream_watchdog_stop(struct stream *s)
{
	if (s->wd_ev.fd >= 0) {
		int tfd = s->wd_ev.fd;

		ev_del(&s->wd_ev);
		close(tfd);
	}
	if (s->in_peek_fd >= 0) {
		close(s->in_peek_fd);
		s->in_peek_fd = -1;
	}
}

/* Input waits for the worker: a regular file always; a pipe when the
 * worker says it holds bytes read from it but not yet demuxed (its
 * read-ahead: the pipe can be empty while the worker sits on its last
 * bytes; the worker's word, a hint like its clock), when it holds bytes
 * (POLLIN), or when its writers are gone (POLLHUP: the end is there to be
 * read). */
static int
input_waiting(const struct stream *s)
{
	const struct ring_hdr *h = ring_hdr(s->ring);
	struct pollfd p = { .fd = s->in_peek_fd, .events = POLLIN };

	if (s->seekable)
		return 1;
	if (s->in_peek_fd < 0)
		return 0;
	if (atomic_load_explicit(&h->input_held, memory_order_relaxed) != 0)
		return 1;
	return poll(&p, 1, 0) == 1 && (p.revents & (POLLIN | POLLHUP));
}

void
stream_watchdog_sample(const struct stream *s, struct wd_sample *ws)
{
	const struct ring_hdr *h = ring_hdr(s->ring);
	uint32_t state = atomic_load_explicit(&h->state, memory_order_relaxed);

	ws->progress = atomic_load_explicit(&h->progress_ns,
					    memory_order_relaxed);
	ws->input = s->pump != NULL ? pump_bytes(s->pump) :
		atomic_load_explicit(&h->input_bytes, memory_order_relaxed);
	ws->opening = state < RING_STATE_RUNNING;
	ws->input_waiting = input_waiting(s);
}

/* The message and the end reason of a watchdog verdict: a hung worker,
 * or one still opening at the open deadline, ends `watchdog`; a source
 * that never gave a byte ends `open-failed` (nothing to open). */
uint32_t
stream_watchdog_verdict(struct stream *s, int verdict)
{
	switch (verdict) {
	case WD_HUNG:
		snprintf(s->wd_msg, sizeof(s->wd_msg), "no progress for %u ms "
			 "with input waiting", s->wd.limit_ms);
		return SD_END_WATCHDOG;
	case WD_NO_INPUT:
		snprintf(s->wd_msg, sizeof(s->wd_msg), "no input within %u ms",
			 s->wd.open_limit_ms);
		return SD_END_OPEN_FAILED;
	default:
		snprintf(s->wd_msg, sizeof(s->wd_msg), "still opening the "
			 "input after %u ms", s->wd.open_limit_ms);
		return SD_END_WATCHDOG;
	}
}

static void
on_watchdog(struct ev *ev, uint32_t events)
{
	struct stream *s = ev->arg;
	struct wd_sample ws;
	uint64_t exp, now = now_ms();
	int verdict;

	(void)events;
	(void)!read(ev->fd, &exp, sizeof(exp));
	/* Attaches waiting for room in a full admin channel get their
	 * answer (-EBUSY) once the bound has passed. */
	if (s->admin_full_ms != 0 &&
	    now - s->admin_full_ms >= conf.reply_timeout_ms)
		control_attach_resume(s);
	if (s->pid == 0 || s->stop_reason != SD_END_NONE)
		return;
	stream_watchdog_sample(s, &ws);
	verdict = wd_tick(&s->wd, &ws, now - s->wd_last_ms);
	s->wd_last_ms = now;
	if (verdict == WD_OK)
		return;
	s->stop_reason = stream_watchdog_verdict(s, verdict);
	stream_log(s, LOG_LVL_INFO, 0, "watchdog: %s, killing the worker",
		   s->wd_msg);
	stream_signal(s, SIGKILL);
}

/* in_fd is the worker's input; a pipe's read end is kept to peek at. */
int
stream_watchdog_start(struct stream *s, const struct ctl_open *req, int in_fd)
{
	uint32_t limit = req->watchdog_ms != 0 ? req->watchdog_ms :
	    conf.watchdog_ms;
	unsigned period = wd_period_ms(limit);
	struct itimerspec its = {
		.it_interval = { period / 1000, (long)(period % 1000) * 1000000 },
		.it_value = { period / 1000, (long)(period % 1000) * 1000000 },
	};
	int tfd, ret;

	wd_init(&s->wd, limit, conf.open_timeout_ms);
	s->wd_last_ms = now_ms();
	if (!s->seekable &&
	    (s->in_peek_fd = fcntl(in_fd, F_DUPFD_CLOEXEC, 0)) < 0)
		return -errno;
	tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (tfd < 0)
		return -errno;
	ret = ev_add(&s->wd_ev, tfd, EPOLLIN, on_watchdog, s);
	if (ret == 0 && timerfd_settime(tfd, 0, &its, NULL) < 0)
		ret = -errno;
	if (ret < 0) {
		ev_del(&s->wd_ev);
		close(tfd);
	}
	return ret;
}
