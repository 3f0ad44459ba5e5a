/*
 * stream_input.c - how a stream's source reaches its worker: a regular
 * file as it is (seekable), an anonymous pipe directly, anything else
 * through a pipe the broker feeds (pump.c), and SRC_PUSH through a pipe
 * whose write end goes to the client, the producer, which says how its
 * input ended.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "pump.h"
#include "stream_internal.h"

/* A pipe whose read end goes to the worker; wr is ours or the client's. */
static int
make_pipe(struct input *in, int *wr)
{
	int p[2];

	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	in->worker_fd = p[0];
	*wr = p[1];
	return 0;
}

/* A terminal or other device is reopened through /proc so O_NONBLOCK lands
 * on a file description of our own, not on the one the client's shell
 * shares. FIFOs are not: a reopened FIFO whose writer has already gone
 * would never report the hang-up that tells EOF apart from "no writer yet"
 * (pump.c); anonymous pipes bypass the pump (direct_pipe); sockets cannot
 * be reopened. */
static int
own_description(int fd, const struct stat *st)
{
	char path[64];
	int nfd;

	if (!S_ISCHR(st->st_mode))
		return fd;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	/* O_NOCTTY: the broker leads its own session; a terminal it opened
	 * without it would become its controlling one, and the client's ^C
	 * or hang-up its SIGINT or SIGHUP. */
	nfd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (nfd < 0)
		return fd;
	close(fd);
	return nfd;
}

/* An anonymous pipe goes to the worker directly, without the pump: one
 * process and one wakeup per chunk fewer on the data path. It is reopened
 * through /proc for a file description of our own (the worker makes it
 * non-blocking; opening a pipe, unlike a FIFO, never waits). Unlike a named
 * FIFO, an anonymous pipe cannot be waiting for its first writer: a read of
 * 0 is the end. Returns the new fd, or -1 to pump it. */
static int
direct_pipe(int fd)
{
	char path[64], link[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 5 || memcmp(link, "pipe:", 5) != 0)
		return -1;
	/* Best effort, as for the pump's pipe: a writer that can get 1 MiB
	 * ahead rarely finds the worker asleep on an empty pipe, and each
	 * sleep and wakeup costs more than the copy it waits for. */
	(void)fcntl(fd, F_SETPIPE_SZ, 1 << 20);
	return open(path, O_RDONLY | O_CLOEXEC);
}

/* Decide how the source reaches the worker. src is taken over. */
static int
setup_input(const struct ctl_open *req, int src, struct input *in, char *msg,
	    size_t cap)
{
	struct stat st;
	int ret;

	if (req->source == CTL_SRC_PUSH) {
		ret = make_pipe(in, &in->push_wr);
		if (ret == 0) {
			in->push_hold = fcntl(in->push_wr, F_DUPFD_CLOEXEC, 3);
			if (in->push_hold < 0)
				ret = -errno;
		}
		if (ret < 0)
			snprintf(msg, cap, "pipe: %s", strerror(-ret));
		return ret;
	}
	if (fstat(src, &st) < 0) {
		ret = -errno;
		snprintf(msg, cap, "source: %s", strerror(errno));
		close(src);
		return ret;
	}
	if (S_ISDIR(st.st_mode)) {
		snprintf(msg, cap, "cannot read %s: %s", req->path,
			 strerror(EISDIR));
		close(src);
		return -EISDIR;
	}
	if (S_ISREG(st.st_mode) && !(req->flags & CTL_OPEN_NOSEEK)) {
		in->worker_fd = src;
		in->seekable = 1;
		return 0;
	}
	if (S_ISFIFO(st.st_mode) && (in->worker_fd = direct_pipe(src)) >= 0) {
		close(src);
		return 0;
	}
	ret = make_pipe(in, &in->pump_dst);
	if (ret < 0) {
		snprintf(msg, cap, "pipe: %s", strerror(-ret));
		close(src);
		return ret;
	}
	in->pump_src = own_description(src, &st);
	return 0;
}

/* The descriptor of the source named by the request, or -errno. */
static int
source_fd(const struct ctl_open *req, int req_fd, char *msg, size_t cap)
{
	char path[64];
	int fd;

	switch (req->source) {
	case CTL_SRC_PATH:
		fd = open(req->path, O_RDONLY | O_CLOEXEC | O_NOCTTY |
			  O_NONBLOCK);
		if (fd < 0) {
			fd = -errno;
			snprintf(msg, cap, "cannot open %s: %s", req->path,
				 strerror(errno));
		}
		return fd;
	case CTL_SRC_FD:
		if (req_fd < 0) {
			snprintf(msg, cap, "no file descriptor was passed");
			return -EBADF;
		}
		/* A passed regular file is reopened read-only: the worker must
		 * not write it, nor move the client's file offset. */
		snprintf(path, sizeof(path), "/proc/self/fd/%d", req_fd);
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
		if (fd >= 0) {
			struct stat st;

			if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
				close(req_fd);
				return fd;
			}
			close(fd);
		}
		return req_fd;
	default:
		return -1;
	}
}

int
stream_input_open(const struct ctl_open *req, int req_fd, struct input *in,
		  char *msg, size_t cap)
{
	int src;

	in->worker_fd = in->pump_src = in->pump_dst = in->push_wr = -1;
	in->push_hold = -1;
	in->seekable = 0;
	src = source_fd(req, req_fd, msg, cap);
	if (src < 0 && req->source != CTL_SRC_PUSH)
		return src;
	return setup_input(req, src, in, msg, cap);
}

void
stream_input_start(struct stream *s, struct input *in, int *push_wr)
{
	close(in->worker_fd);
	in->worker_fd = -1;
	if (in->pump_src >= 0) {
		s->pumped = 1;
		if (!s->ended) {
			int ret = pump_start(&s->pump, in->pump_src,
					     in->pump_dst, s);

			if (ret < 0)
				stream_log(s, LOG_LVL_WARN, ret,
					   "cannot pump the source");
		} else {
			close(in->pump_src);
			close(in->pump_dst);
		}
		in->pump_src = in->pump_dst = -1;
	}
	*push_wr = in->push_wr;
	in->push_wr = -1;
	if (!s->ended) {
		s->push_hold = in->push_hold;
		in->push_hold = -1;
	}
}

void
stream_input_close(struct input *in)
{
	int *fds[] = { &in->worker_fd, &in->pump_src, &in->pump_dst,
		       &in->push_wr, &in->push_hold };

	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
		if (*fds[i] >= 0)
			close(*fds[i]);
		*fds[i] = -1;
	}
}

void
stream_stop_pump(struct stream *s)
{
	if (s->pump == NULL)
		return;
	s->input_bytes = pump_bytes(s->pump);
	pump_free(&s->pump);
}

/* ---- push producers ---- */

void
stream_release_push(struct stream *s)
{
	if (s->push_hold >= 0)
		close(s->push_hold);
	s->push_hold = -1;
	s->producer = NULL;
}

void
stream_set_producer(struct stream *s, const void *producer)
{
	if (s->push_hold >= 0)
		s->producer = producer;
}

int
stream_push_end(struct stream *s, const void *producer, int error)
{
	if (s->producer == NULL)
		return s->push_hold >= 0 ? -EPERM : -EALREADY;
	if (s->producer != producer)
		return -EPERM;
	s->push_err = error;
	if (error != 0)
		stream_log(s, LOG_LVL_INFO, 0, "the producer aborted its input "
			   "(%s)", strerror(error));
	stream_release_push(s);
	return 0;
}

void
streams_producer_gone(const void *producer)
{
	struct stream *s;

	TAILQ_FOREACH(s, &streams, entry) {
		if (s->producer != producer)
			continue;
		stream_log(s, LOG_LVL_INFO, 0, "the producer left before "
			   "ending its input");
		s->push_err = EPIPE;
		stream_release_push(s);
	}
}
