/*
 * worker_input.c - fd 0, the worker's only source of bytes: read (a pipe
 * through a 256 KiB read-ahead, waiting in a way SIGTERM ends), counted
 * for `ls` and the watchdog. The spool (worker_spool.c) and the
 * AVIOContext (worker_io.c) read through it.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <libavutil/error.h>
#include <libavutil/mem.h>

#include "worker.h"
#include "worker_abi.h"

/* A pipe is read this much at a time and AVIO served from the copy: one
 * read, and one wakeup of a writer blocked on a full pipe, per 256 KiB
 * instead of per 32 KiB. A read returns what the pipe holds, so a live
 * source waits no longer. Larger requests (the spool's) read directly. */
#define WORKER_READ_AHEAD (256 * 1024)

/* Input bytes and the progress clock, for `ls` and the watchdog; written
 * only by this process: relaxed load + store, nothing is ordered after
 * them. A read is also where a worker busy with its input (probing a
 * file, which never waits) takes the ring's admin messages, so attaches
 * and detaches do not pile up in the broker's channel meanwhile. */
static void
count_input(struct worker *w, ssize_t n)
{
	if (!w->admin_closed && ring_admin_pending(w->ring) &&
	    ring_admin_poll(w->ring) < 0)
		w->admin_closed = 1;
	ring_count(w->ring, RING_CNT_INPUT_BYTES, (uint64_t)n);
	ring_set_progress(w->ring, now_ns());
}

/* One read(2) of the input. A pipe input is non-blocking
 * (worker_input_prepare): the read is tried first, and only when the pipe is
 * empty do we publish pending ring wakes (the consumers may be sleeping on
 * records we have not woken them for) and then wait, in a way SIGTERM
 * ends. A busy pipe costs one read per buffer, not a poll and a read. A
 * regular file never blocks for long. */
static ssize_t
read_input(struct worker *w, uint8_t *buf, size_t size)
{
	ssize_t n;
	int ret;

	for (;;) {
		if (worker_stop)
			return AVERROR_EXIT;
		n = read(WORKER_FD_INPUT, buf, size);
		if (n >= 0)
			break;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN || w->seekable)
			return AVERROR(errno);
		ring_flush(w->ring);
		ret = worker_wait(w, WORKER_FD_INPUT, NULL);
		if (ret == -EINTR)
			return AVERROR_EXIT;
		if (ret < 0)
			return AVERROR(-ret);
	}
	if (n == 0)
		return AVERROR_EOF;
	count_input(w, n);
	return n;
}

int
worker_input_read(struct worker *w, uint8_t *buf, int size)
{
	size_t n;
	ssize_t got;

	if (w->seekable)
		return (int)read_input(w, buf, (size_t)size);
	/* what is read ahead goes first, whatever the request */
	if (w->ra_off == w->ra_len) {
		if ((size_t)size >= WORKER_READ_AHEAD)
			return (int)read_input(w, buf, (size_t)size);
		if (!w->ra_buf && !(w->ra_buf = av_malloc(WORKER_READ_AHEAD)))
			return AVERROR(ENOMEM);
		got = read_input(w, w->ra_buf, WORKER_READ_AHEAD);
		if (got < 0)
			return (int)got;
		w->ra_off = 0;
		w->ra_len = (size_t)got;
	}
	n = w->ra_len - w->ra_off < (size_t)size ? w->ra_len - w->ra_off :
						   (size_t)size;
	memcpy(buf, w->ra_buf + w->ra_off, n);
	w->ra_off += n;
	/* Input we hold is input waiting, for the watchdog: the pipe may be
	 * empty while we sit on its last bytes. Relaxed: a hint. */
	ring_set_input_held(w->ring, w->ra_len - w->ra_off);
	return (int)n;
}

int
worker_input_prepare(const struct worker *w)
{
	int fl;

	/* read_input() tries the pipe before it waits for it. The broker keeps a
	 * copy of the read end only to peek at it (poll, watchdog), so
	 * O_NONBLOCK on the shared description changes nothing for it. */
	if (w->seekable)
		return 0;
	if ((fl = fcntl(WORKER_FD_INPUT, F_GETFL)) < 0 ||
	    fcntl(WORKER_FD_INPUT, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

void
worker_input_free(struct worker *w)
{
	av_freep(&w->ra_buf);
	w->ra_off = w->ra_len = 0;
}
