/*
 * pump.c - source fd -> worker input pipe.
 *
 * splice(2) moves pages without a copy where both ends allow it; sources
 * without splice support (EINVAL: datagram sockets, some devices) fall back
 * to read/write through a 64 KiB buffer. Both fds are registered
 * edge-triggered: splice's EAGAIN does not say which side is not ready, so
 * any edge (source readable, pipe drained) retries until EAGAIN again.
 * A source epoll cannot watch (a regular file read as a stream) is always
 * ready, and only the pipe is waited on.
 *
 * Each run moves at most PUMP_BUDGET bytes, then yields to the rest of the
 * loop (loop_defer_run) so one fast source cannot starve the others.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "pump.h"
#include "shmdemuxd.h"

#define PUMP_CHUNK  (1u << 20)
#define PUMP_BUDGET (8u << 20)
#define PUMP_BUF    (64u * 1024u)
#define PUMP_PIPE_SIZE (1 << 20)

struct pump {
	struct ev src_ev;
	struct ev dst_ev;
	int src, dst;
	const struct stream *owner; /* for its log lines */
	int src_fifo;      /* a pipe or FIFO: 0 bytes may mean "no writer yet" */
	int use_rw;        /* splice unsupported: read/write */
	int scheduled;     /* a deferred run is pending */
	int done;
	int err;           /* source errno */
	uint64_t bytes;
	char *buf;         /* read/write fallback */
	size_t buf_off, buf_len;
};

static void pump_run(struct pump *p);

static void
close_fds(struct pump *p)
{
	ev_del(&p->src_ev);
	ev_del(&p->dst_ev);
	if (p->src >= 0)
		close(p->src);
	if (p->dst >= 0)
		close(p->dst);
	p->src = p->dst = -1;
	p->done = 1;
}

/* Source at EOF or failed: closing the pipe's write end lets the worker see
 * EOF after the bytes already in the pipe. */
static void
finish(struct pump *p, int err)
{
	if (err != 0) {
		p->err = err;
		stream_log(p->owner, LOG_LVL_WARN, err, "reading the source");
	} else {
		stream_log(p->owner, LOG_LVL_DEBUG, 0, "source at EOF after "
			   "%llu bytes", (unsigned long long)p->bytes);
	}
	close_fds(p);
}

/* Returns >0 bytes moved, 0 at EOF, -EAGAIN to wait, other -errno. A
 * destination failure (EPIPE: the worker is gone) is reported as -EPIPE. */
static ssize_t
move_rw(struct pump *p)
{
	ssize_t n;

	if (p->buf_off == p->buf_len) {
		n = read(p->src, p->buf, PUMP_BUF);
		if (n <= 0)
			return n < 0 ? -errno : 0;
		p->buf_off = 0;
		p->buf_len = (size_t)n;
	}
	n = write(p->dst, p->buf + p->buf_off, p->buf_len - p->buf_off);
	if (n < 0)
		return -errno;
	p->buf_off += (size_t)n;
	return n;
}

static ssize_t
move_splice(struct pump *p)
{
	ssize_t n = splice(p->src, NULL, p->dst, NULL, PUMP_CHUNK,
			   SPLICE_F_NONBLOCK | SPLICE_F_MOVE);

	return n < 0 ? -errno : n;
}

/* A FIFO read returns 0 both at EOF and before any writer has opened it.
 * Only the first reports POLLHUP (the kernel remembers whether a writer
 * came since this reader opened), so a named FIFO can be opened before its
 * producer starts. */
static int
at_eof(const struct pump *p)
{
	struct pollfd pfd = { .fd = p->src, .events = POLLIN };

	if (!p->src_fifo)
		return 1;
	if (poll(&pfd, 1, 0) < 0)
		return 1;
	return (pfd.revents & (POLLHUP | POLLERR)) != 0 &&
		!(pfd.revents & POLLIN);
}

static void
deferred_run(void *arg)
{
	struct pump *p = arg;

	p->scheduled = 0;
	if (!p->done)
		pump_run(p);
}

static void
pump_run(struct pump *p)
{
	uint64_t moved = 0;
	ssize_t n;

	while (!p->done) {
		if (moved >= PUMP_BUDGET) {
			if (!p->scheduled) {
				p->scheduled = 1;
				loop_defer_run(deferred_run, p);
			}
			return;
		}
		n = p->use_rw ? move_rw(p) : move_splice(p);
		if (n == -EINVAL && !p->use_rw) {
			p->buf = malloc(PUMP_BUF);
			if (p->buf == NULL) {
				finish(p, ENOMEM);
				return;
			}
			p->use_rw = 1;
			continue;
		}
		if (n == -EINTR)
			continue;
		if (n == -EAGAIN)
			return; /* an edge on either fd runs us again */
		if (n == -EPIPE) {
			stream_log(p->owner, LOG_LVL_DEBUG, 0, "worker closed "
				   "its input");
			close_fds(p);
			return;
		}
		if (n < 0) {
			finish(p, (int)-n);
			return;
		}
		if (n == 0) {
			if (at_eof(p))
				finish(p, 0);
			return; /* else an edge comes with the first writer */
		}
		p->bytes += (uint64_t)n;
		moved += (uint64_t)n;
	}
}

static void
on_event(struct ev *ev, uint32_t events)
{
	(void)events;
	pump_run(ev->arg);
}

int
pump_start(struct pump **out, int src, int dst, const struct stream *owner)
{
	struct pump *p;
	struct stat st;
	int ret;

	*out = NULL;
	p = calloc(1, sizeof(*p));
	if (p == NULL) {
		close(src);
		close(dst);
		return -ENOMEM;
	}
	ev_init(&p->src_ev);
	ev_init(&p->dst_ev);
	if (fstat(src, &st) == 0 && S_ISFIFO(st.st_mode))
		p->src_fifo = 1;
	p->src = src;
	p->dst = dst;
	p->owner = owner;
	if (fcntl(src, F_SETFL, fcntl(src, F_GETFL) | O_NONBLOCK) < 0 ||
	    fcntl(dst, F_SETFL, fcntl(dst, F_GETFL) | O_NONBLOCK) < 0) {
		ret = -errno;
		goto fail;
	}
	/* Best effort: a larger pipe means fewer wakeups per MiB. */
	(void)fcntl(dst, F_SETPIPE_SZ, PUMP_PIPE_SIZE);

	ret = ev_add(&p->dst_ev, dst, EPOLLOUT | EPOLLET, on_event, p);
	if (ret < 0)
		goto fail;
	ret = ev_add(&p->src_ev, src, EPOLLIN | EPOLLET, on_event, p);
	if (ret == -EPERM)
		ret = 0; /* not pollable: a file, always ready */
	if (ret < 0)
		goto fail;
	*out = p;
	pump_run(p);
	return 0;
fail:
	close_fds(p);
	free(p);
	return ret;
}

void
pump_free(struct pump **pp)
{
	struct pump *p = *pp;

	if (p == NULL)
		return;
	*pp = NULL;
	if (!p->done)
		close_fds(p);
	free(p->buf);
	p->buf = NULL;
	/* A deferred run or an event of this batch may still name p. */
	loop_defer_free(p);
}

uint64_t
pump_bytes(const struct pump *p)
{
	return p->bytes;
}

int
pump_error(const struct pump *p)
{
	return p->err;
}
