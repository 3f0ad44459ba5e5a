/*
 * stream.c - the stream table: one input, one worker, one ring per stream.
 *
 * A stream is created by OPEN, listed until CLOSE, and freed when it is
 * neither listed nor referenced by an attached connection. Its end status is
 * decided here, from the worker's wait status, and written once with
 * ring_set_end(); LIST reports the broker's own copy of it, never the
 * worker-writable header fields.
 *
 * Why one file of ~1,900 lines: every part here (OPEN's validation and
 * input set-up, the worker's start and end, ATTACH support, the seal,
 * the watchdog's sampling, reaping) reads and writes struct stream, which
 * is private to it. It is to be split by job behind a stream-internal
 * header: open (validation, inputs, ring objects), life (worker, seal,
 * watchdog, end) and table (LIST, reaping, history).
 */
#include <bsd/sys/queue.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ended.h"
#include "log.h"
#include "procstat.h"
#include "pump.h"
#include "ring_admin.h"
#include "shmdemuxd.h"
#include "spare.h"
#include "spawn.h"
#include "utf8.h"
#include "watchdog.h"
#include "wlog.h"

struct stream {
	TAILQ_ENTRY(stream) entry;
	uint32_t id;
	int listed;                /* in the table (until CLOSE) */
	unsigned refs;             /* table + attached connections */
	char name[CTL_NAME_LEN];
	char source[256];
	uint32_t mode;
	uint64_t ring_size;
	uint64_t data_seg_size;
	int data_fd;               /* read-write, the worker gets it */
	int ro_data_fd;            /* read-only reopen, for consumers */
	int admin_fd;              /* our end of the ring's admin channel */
	int wadmin_fd;             /* the worker's end, until it has it */
	struct ev admin_ev;        /* EPOLLOUT while DELs wait for room */
	uint64_t admin_full_ms;    /* since when (now_ms), 0: not full */
	struct ring *ring;         /* RING_ROLE_ADMIN mapping */
	uint64_t opened_ms;
	/* The data segment is handed to consumers only once sealed against
	 * every new writer (worker_abi.h): on the readiness pipe's hang-up,
	 * or when the worker is gone. Until then ATTACHes wait (control.c). */
	struct ev ready_ev;        /* the readiness pipe's read end */
	struct ev start_ev;        /* deadline for the worker to be ready */
	int sealed;                /* F_SEAL_FUTURE_WRITE is on */
	int seal_err;              /* errno of a failed seal, 0 if none */
	struct timespec start_ts;  /* when the worker was handed its stream */
	struct wlog *log;          /* the worker's stderr (wlog.h) */

	pid_t pid;                 /* worker, 0 once reaped */
	struct ev pid_ev;          /* its pidfd */
	struct ev timer_ev;        /* CLOSE: SIGKILL after the grace time */
	uint32_t stop_reason;      /* SD_END_CLOSED/KILLED once asked */
	int closing;               /* CLOSE asked: unlist once reaped */
	struct pump *pump;
	uint64_t input_bytes;      /* pumped bytes, kept after the pump ends */
	int pumped;
	int seekable;              /* the worker reads a regular file */
	int in_peek_fd;            /* pipes: our copy of the worker's read end,
	                              to see whether input waits (poll) */
	struct ev wd_ev;           /* the watchdog's periodic timerfd */
	struct wd wd;
	uint64_t wd_last_ms;
	char wd_msg[RING_MSG_LEN]; /* why the watchdog killed it */
	/* SRC_PUSH: our own write end of the worker's pipe, held until the
	 * producer says how the input ended, so the worker never mistakes a
	 * dead producer's closed pipe for a clean EOF. */
	int push_hold;
	const void *producer;      /* its control connection, until it ends */
	int push_err;              /* errno of a failed push, 0 if none */

	unsigned consumers;        /* attached with a slot */
	int ended;
	struct worker_end end;
	uint64_t ended_ms;         /* now_ms() at the end */
	uint64_t cpu_ms;           /* the worker's, final once reaped */
	/* Reaping: an ended stream no connection holds leaves the table
	 * --retain-ended after its end or its last connection (idle_ms). */
	uint64_t idle_ms;

	/* Once ended and read by the consumers it waited for, the ring goes
	 * (fds, mapping); LIST then reports the numbers kept in `final`. */
	uint32_t wait_consumers;   /* the ring's hold: read by this many */
	unsigned attached_ever;    /* consumers with a slot, ever */
	uint64_t spent_ms;         /* when it last became releasable */
	int released;
	struct ctl_stream_info final;
};

static TAILQ_HEAD(, stream) streams = TAILQ_HEAD_INITIALIZER(streams);
static unsigned nstreams, nrunning;
static uint32_t next_id = 1;

static void stream_unref(struct stream *s);
static void unlist(struct stream *s);
static void ring_release_check(struct stream *s);
static void ring_released_info(const struct stream *s,
			       struct ctl_stream_info *info);
static void on_keep_timer(struct ev *ev, uint32_t events);
static void watchdog_sample(const struct stream *s, struct wd_sample *ws);
static uint32_t watchdog_verdict(struct stream *s, int verdict);

/* ---- logging ---- */

void
stream_log(const struct stream *s, enum log_level lvl, int err,
	   const char *fmt, ...)
{
	char text[1024];
	va_list ap;

	if (!log_enabled(lvl))
		return;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (s->name[0] != '\0')
		log_errno(lvl, err, "stream %" PRIu32 " (%s): %s", s->id,
			  s->name, text);
	else
		log_errno(lvl, err, "stream %" PRIu32 ": %s", s->id, text);
}

/* ---- validation ---- */

static int
name_ok(const char *name)
{
	int digits_only = 1;

	for (const char *c = name; *c != '\0'; c++) {
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		      (*c >= '0' && *c <= '9') || *c == '.' || *c == '_' ||
		      *c == '-'))
			return 0;
		if (*c < '0' || *c > '9')
			digits_only = 0;
	}
	/* An all-digit name would be ambiguous with stream ids. */
	return !digits_only;
}

static int
format_ok(const char *fmt)
{
	for (const char *c = fmt; *c != '\0'; c++) {
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		      (*c >= '0' && *c <= '9') || *c == '_' || *c == ',' ||
		      *c == '-'))
			return 0;
	}
	return fmt[0] != '-';
}

/* "k=v\0k=v\0": every entry has a non-empty key, at most CTL_MAX_OPTS. */
static int
opts_ok(const char *opts, uint32_t len)
{
	unsigned count = 0;

	for (uint32_t off = 0; off < len;) {
		size_t n = strnlen(opts + off, len - off);
		const char *eq = memchr(opts + off, '=', n);

		if (n == 0 || eq == NULL || eq == opts + off ||
		    ++count > CTL_MAX_OPTS)
			return 0;
		off += (uint32_t)n + 1;
	}
	return 1;
}

static struct stream *
find_name(const char *name)
{
	struct stream *s;

	TAILQ_FOREACH(s, &streams, entry)
		if (s->listed && strcmp(s->name, name) == 0)
			return s;
	return NULL;
}

static int
validate(const struct ctl_open *req, struct ring_params *p, char *msg,
	 size_t cap)
{
	if (req->source < CTL_SRC_PATH || req->source > CTL_SRC_PUSH) {
		snprintf(msg, cap, "unknown source type %" PRIu32, req->source);
		return -EINVAL;
	}
	if (req->mode != RING_MODE_LOSSLESS && req->mode != RING_MODE_LIVE) {
		snprintf(msg, cap, "unknown ring mode %" PRIu32, req->mode);
		return -EINVAL;
	}
	if (req->name[0] != '\0' && !name_ok(req->name)) {
		snprintf(msg, cap, "invalid stream name (letters, digits, "
			 "'.', '_', '-'; not only digits)");
		return -EINVAL;
	}
	if (req->name[0] != '\0' && find_name(req->name) != NULL) {
		snprintf(msg, cap, "a stream named %s exists", req->name);
		return -EEXIST;
	}
	if (!format_ok(req->format)) {
		snprintf(msg, cap, "invalid format name");
		return -EINVAL;
	}
	if (!format_ok(req->format_whitelist)) {
		snprintf(msg, cap, "invalid format allow-list (demuxer names "
			 "separated by ',')");
		return -EINVAL;
	}
	if (!opts_ok(req->opts, req->opts_len)) {
		snprintf(msg, cap, "invalid demuxer options (KEY=VALUE, at "
			 "most %d)", CTL_MAX_OPTS);
		return -EINVAL;
	}
	if (req->probesize < 0 || req->analyzeduration < 0) {
		snprintf(msg, cap, "negative probe size or analyze duration");
		return -EINVAL;
	}
	if (req->source == CTL_SRC_PATH && req->path[0] == '\0') {
		snprintf(msg, cap, "empty path");
		return -EINVAL;
	}

	memset(p, 0, sizeof(*p));
	p->data_size = req->ring_size != 0 ? req->ring_size : conf.ring_size;
	/* Decoded frames are large (a 4K yuv420p frame is 12 MiB): the
	 * default must hold several. An explicit size the worker finds too
	 * small for its frames is refused by the worker (ring-error). */
	if (req->ring_size == 0 && req->decode != 0 &&
	    p->data_size < BROKER_DECODE_RING)
		p->data_size = BROKER_DECODE_RING;
	p->max_consumers = conf.max_consumers;
	p->mode = req->mode;
	/* Video frames decoded in place: lossless only, since a live reader
	 * can be lapped and a pool slot would be reused under it. */
	if (req->decode != 0 && req->mode == RING_MODE_LOSSLESS)
		p->pool_size = conf.decode_pool != BROKER_POOL_AUTO ?
		    conf.decode_pool : p->data_size + BROKER_DECODE_POOL_MORE;
	/* Default: a lossless stream keeps its records until its first
	 * consumer attached, so `open FILE` then `dump` loses nothing even
	 * when the file is larger than the ring; a live one never waits. */
	if (req->wait_consumers == UINT32_MAX)
		p->wait_consumers = req->mode == RING_MODE_LOSSLESS ? 1 : 0;
	else
		p->wait_consumers = req->wait_consumers;
	p->lag_timeout_ms = req->lag_timeout_ms != 0 ?
		req->lag_timeout_ms : conf.lag_timeout_ms;
	if (p->data_size < RING_MIN_DATA || p->data_size > BROKER_MAX_RING) {
		snprintf(msg, cap, "ring size %" PRIu64 " out of range "
			 "[%u, %" PRIu64 "]", p->data_size, RING_MIN_DATA,
			 BROKER_MAX_RING);
		return -ERANGE;
	}
	if (p->wait_consumers > p->max_consumers) {
		snprintf(msg, cap, "cannot wait for %" PRIu32 " consumers: at "
			 "most %" PRIu32 " can attach", p->wait_consumers,
			 p->max_consumers);
		return -ERANGE;
	}
	if (ring_data_seg_size(p) == 0) {
		snprintf(msg, cap, "ring parameters out of range");
		return -ERANGE;
	}
	return 0;
}

/* ---- sources ---- */

struct input {
	int worker_fd;   /* becomes the worker's fd 0 */
	int seekable;
	int pump_src;    /* pump from here into pump_dst, or -1 */
	int pump_dst;
	int push_wr;     /* SRC_PUSH: for the client */
	int push_hold;   /* SRC_PUSH: the broker's copy of the write end */
};

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

	in->worker_fd = in->pump_src = in->pump_dst = in->push_wr = -1;
	in->push_hold = -1;
	in->seekable = 0;
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

/* ---- descriptor limits ---- */

/* The most descriptors one OPEN holds at once while it is set up (source,
 * pipes, memfds, the read-only reopen, pidfd, timers, a spare's
 * replacement), and what stays free for control connections. */
#define STREAM_FDS_MAX  16u
#define STREAM_FDS_KEEP 16u

/* msg = "<cause>: what" where the cause is the fd limit when one was hit:
 * "too many open files (fd limit N): what". Never an empty cause. */
static void
fail_msg(char *msg, size_t cap, int err, const char *what)
{
	const char *desc = strerrordesc_np(err < 0 ? -err : err);

	if (err == -EMFILE)
		snprintf(msg, cap, "too many open files (fd limit %u): %s",
			 conf.nofile, what);
	else if (err == -ENFILE)
		snprintf(msg, cap, "too many open files in the system: %s",
			 what);
	else if (desc != NULL)
		snprintf(msg, cap, "%s: %s", what, desc);
	else
		snprintf(msg, cap, "%s: error %d", what, err);
}

static void
ring_fail_msg(char *msg, size_t cap, uint64_t size, int err)
{
	char what[64];

	snprintf(what, sizeof(what), "cannot create the ring (%" PRIu64
		 " bytes)", size);
	fail_msg(msg, cap, err, what);
}

/* Room for one more stream's descriptors, keeping STREAM_FDS_KEEP for
 * connections: 0, or -EMFILE with the reason in msg. Ended rings already
 * read go first (ring_release_spent()). */
static int
fd_room_left(int used)
{
	if (used == -EMFILE || used == -ENFILE)
		return 0; /* not even one to count them with */
	return used < 0 || (unsigned)used + STREAM_FDS_MAX + STREAM_FDS_KEEP <=
	    conf.nofile;
}

static int
fd_room(char *msg, size_t cap)
{
	int used = broker_fds_in_use();

	if (fd_room_left(used))
		return 0;
	streams_release_spent();
	used = broker_fds_in_use();
	if (fd_room_left(used))
		return 0;
	if (used < 0)
		used = (int)conf.nofile;
	snprintf(msg, cap, "too many open files (fd limit %u): %d in use, a "
		 "stream needs up to %u more and %u stay free for control "
		 "connections", conf.nofile, used, STREAM_FDS_MAX,
		 STREAM_FDS_KEEP);
	return -EMFILE;
}

/* ---- ring objects ---- */

static int
make_memfd(uint32_t id, const char *what)
{
	char name[64];
	int fd;

	snprintf(name, sizeof(name), "shmdemux-%" PRIu32 "-%s", id, what);
	fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	return fd < 0 ? -errno : fd;
}

/* Fixed sizes from now on: a worker or consumer that shrank an object
 * would make every other mapping fault (SIGBUS) on access. The data
 * segment is left open to one more seal (seal_data). */
static int
seal_size(int fd, int more)
{
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | more) < 0)
		return -errno;
	return 0;
}

/* The ring's admin channel: ADD and DEL go from us to the worker (our end
 * non-blocking, so a worker that does not take them never blocks the
 * loop); nothing is ever read from the worker on it, and shutting down our
 * reading side makes the worker's sends fail instead of queueing (fds
 * included) in our end. */
static int
make_admin_channel(struct stream *s)
{
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	s->admin_fd = sv[0];
	s->wadmin_fd = sv[1];
	if (fcntl(s->admin_fd, F_SETFL, O_NONBLOCK) < 0 ||
	    shutdown(s->admin_fd, SHUT_RD) < 0)
		return -errno;
	return 0;
}

static int
setup_ring(struct stream *s, const struct ring_params *p, char *msg,
	   size_t cap)
{
	char path[64];
	int ret;

	s->data_fd = make_memfd(s->id, "data");
	if (s->data_fd < 0) {
		ret = s->data_fd;
		goto fail;
	}
	ret = ring_create(s->data_fd, p);
	if (ret < 0)
		goto fail;
	if ((ret = seal_size(s->data_fd, 0)) < 0 ||
	    (ret = make_admin_channel(s)) < 0)
		goto fail;
	ret = ring_map(&s->ring, s->data_fd, s->admin_fd, RING_ROLE_ADMIN);
	if (ret < 0)
		goto fail;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", s->data_fd);
	s->ro_data_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (s->ro_data_fd < 0) {
		ret = -errno;
		goto fail;
	}
	s->data_seg_size = ring_data_seg_size(p);
	return 0;
fail:
	ring_fail_msg(msg, cap, p->data_size, ret);
	return ret;
}

static void
close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* The broker's mapping and every descriptor of the ring (the data segment
 * and both ends of the admin channel; the consumers' cursor pages are
 * theirs and the worker's, not kept here); NULL/-1 after. DELs still
 * waiting for the channel are dropped with it. */
static void
ring_close(struct stream *s)
{
	ev_del(&s->admin_ev);
	ring_unmap(&s->ring);
	close_fd(&s->data_fd);
	close_fd(&s->ro_data_fd);
	close_fd(&s->admin_fd);
	close_fd(&s->wadmin_fd);
}

static int pidfd_signal(struct stream *s, int sig);

/* ---- sealing the data segment ---- */

static void
stop_start_watch(struct stream *s)
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
	stop_start_watch(s);
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
	watchdog_sample(s, &ws);
	if (ws.input > 0 || ws.input_waiting)
		s->wd.input_seen = 1;
	s->stop_reason = watchdog_verdict(s, s->wd.input_seen ?
					  WD_OPEN_TIMEOUT : WD_NO_INPUT);
	stream_log(s, LOG_LVL_INFO, 0, "the worker has not mapped its ring: "
		   "%s, killing it", s->wd_msg);
	pidfd_signal(s, SIGKILL);
}

/* Watch the read end of the readiness pipe (taken over) and arm the start
 * deadline. On failure the segment is sealed at once: the worker's mapping
 * then fails and its stream ends, instead of consumers waiting. */
static void
watch_start(struct stream *s, int ready_rd)
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

static void
set_ended(struct stream *s, const struct worker_end *end)
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
stop_pump(struct stream *s)
{
	if (s->pump == NULL)
		return;
	s->input_bytes = pump_bytes(s->pump);
	pump_free(&s->pump);
}

/* ---- watchdog (the rule is in watchdog.h) ---- */

static void
watchdog_stop(struct stream *s)
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

static void
watchdog_sample(const struct stream *s, struct wd_sample *ws)
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
static uint32_t
watchdog_verdict(struct stream *s, int verdict)
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
	watchdog_sample(s, &ws);
	verdict = wd_tick(&s->wd, &ws, now - s->wd_last_ms);
	s->wd_last_ms = now;
	if (verdict == WD_OK)
		return;
	s->stop_reason = watchdog_verdict(s, verdict);
	stream_log(s, LOG_LVL_INFO, 0, "watchdog: %s, killing the worker",
		   s->wd_msg);
	pidfd_signal(s, SIGKILL);
}

/* in_fd is the worker's input; a pipe's read end is kept to peek at. */
static int
watchdog_start(struct stream *s, const struct ctl_open *req, int in_fd)
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

static void
release_push(struct stream *s)
{
	if (s->push_hold >= 0)
		close(s->push_hold);
	s->push_hold = -1;
	s->producer = NULL;
}

static void
worker_gone(struct stream *s, const siginfo_t *si)
{
	struct worker_word ww;
	struct worker_end end;
	int input_err = s->push_err;

	if (s->pump != NULL)
		input_err = pump_error(s->pump);
	stop_pump(s);
	release_push(s);
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
	watchdog_stop(s);
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
	set_ended(s, &end);
	control_attach_resume(s);
	if (s->closing)
		unlist(s);
	else
		ring_release_check(s);
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

static int
pidfd_signal(struct stream *s, int sig)
{
	if (s->pid_ev.fd < 0)
		return -ESRCH;
	if (syscall(SYS_pidfd_send_signal, s->pid_ev.fd, sig, NULL, 0) < 0)
		return -errno;
	return 0;
}

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
		pidfd_signal(s, SIGKILL);
	}
}

/* ---- OPEN ---- */

static void
fill_labels(struct stream *s, const struct ctl_open *req)
{
	snprintf(s->name, sizeof(s->name), "%s", req->name);
	if (req->path[0] != '\0')
		snprintf(s->source, sizeof(s->source), "%.*s",
			 (int)sizeof(s->source) - 1, req->path);
	else if (req->source == CTL_SRC_PUSH)
		snprintf(s->source, sizeof(s->source), "push");
	else
		snprintf(s->source, sizeof(s->source), "fd");
}

static void
stream_free(struct stream *s)
{
	stop_start_watch(s);
	wlog_finish(&s->log);
	watchdog_stop(s);
	pump_free(&s->pump);
	release_push(s);
	ring_close(s);
	loop_defer_free(s);
}

static struct stream *
stream_new(const struct ctl_open *req)
{
	struct stream *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	s->id = next_id++;
	s->data_fd = s->ro_data_fd = s->in_peek_fd = -1;
	s->admin_fd = s->wadmin_fd = -1;
	s->push_hold = -1;
	ev_init(&s->admin_ev);
	ev_init(&s->pid_ev);
	ev_init(&s->timer_ev);
	ev_init(&s->wd_ev);
	ev_init(&s->ready_ev);
	ev_init(&s->start_ev);
	s->mode = req->mode;
	s->opened_ms = now_ms();
	fill_labels(s, req);
	return s;
}

/* RLIMIT_AS covers every mapping: the ring's (its data segment and one
 * page per consumer) comes on top of what the worker may use for itself.
 * 0 means no limit. */
static uint64_t
worker_mem_limit(const struct stream *s, const struct ctl_open *req)
{
	uint64_t own = req->mem_limit != 0 ? req->mem_limit :
	    conf.worker_mem_limit;

	if (own == 0)
		return 0;
	return own + s->data_seg_size +
		(uint64_t)conf.max_consumers * RING_PAGE_SIZE;
}

#ifdef SHMDEMUX_FAULT_INJECTION
/* Test builds only: SHMDEMUX_FAULT="KIND:N[:NAME]" makes the worker of
 * every stream (or only of the stream named NAME) misbehave after N
 * packets (worker_fault.c). Returns "KIND:N" in buf, or NULL. */
static const char *
fault_for(const struct stream *s, char *buf, size_t cap)
{
	const char *env = getenv("SHMDEMUX_FAULT"), *name;
	int n;

	if (env == NULL || env[0] == '\0')
		return NULL;
	name = strchr(env, ':');
	name = name != NULL ? strchr(name + 1, ':') : NULL;
	if (name != NULL && strcmp(name + 1, s->name) != 0)
		return NULL;
	n = snprintf(buf, cap, "%.*s", name != NULL ? (int)(name - env) :
		     (int)strlen(env), env);
	return n > 0 && (size_t)n < cap ? buf : NULL;
}
#endif

/* "stream 3 (name): " before each line the worker logs. */
static void
set_log_prefix(struct stream *s)
{
	char prefix[WLOG_PREFIX_MAX];

	if (s->name[0] != '\0')
		snprintf(prefix, sizeof(prefix), "stream %" PRIu32 " (%.*s): ",
			 s->id, (int)sizeof(prefix) - 32, s->name);
	else
		snprintf(prefix, sizeof(prefix), "stream %" PRIu32 ": ", s->id);
	wlog_set_prefix(s->log, prefix);
}

/* spawn_worker() with a log pipe of the worker's own on its fd 2. */
static pid_t
spawn_logged(struct stream *s, struct worker_start *ws)
{
	int lp[2];
	pid_t pid;

	if (pipe2(lp, O_CLOEXEC) < 0)
		return -errno;
	ws->log_fd = lp[1];
	pid = spawn_worker(ws);
	close(lp[1]);
	ws->log_fd = -1;
	if (pid < 0)
		close(lp[0]);
	else
		s->log = wlog_start(lp[0], "worker: ");
	return pid;
}

static int
start_worker(struct stream *s, const struct ctl_open *req, int input_fd,
	     int seekable, char *msg, size_t cap)
{
	struct worker_start ws = {
		.path = conf.worker_path,
		.stream_id = s->id,
		.input_fd = input_fd,
		.data_fd = s->data_fd,
		.admin_fd = s->wadmin_fd,
		.ready_fd = -1,
		.log_fd = -1,
		.seekable = seekable,
		.realtime = (req->flags & CTL_OPEN_REALTIME) != 0,
		.format = req->format,
		.probesize = req->probesize,
		.analyzeduration = req->analyzeduration,
		.opts = req->opts,
		.opts_len = req->opts_len,
		.mem_limit = worker_mem_limit(s, req),
		.spool_limit = req->spool_limit,
		.decode = req->decode,
		.decode_threads = req->decode_threads,
		.decode_strict = (req->flags & CTL_OPEN_DECODE_STRICT) != 0,
		.format_whitelist = req->format_whitelist,
	};
	const char *how;
	pid_t pid;
	int pfd, ready[2], ret;

#ifdef SHMDEMUX_FAULT_INJECTION
	char fault[64];

	ws.fault = fault_for(s, fault, sizeof(fault));
#endif
	s->seekable = seekable;
	if (pipe2(ready, O_CLOEXEC) < 0) {
		ret = -errno;
		fail_msg(msg, cap, ret, "cannot start the worker: pipe");
		return ret;
	}
	ws.ready_fd = ready[1];
	clock_gettime(CLOCK_MONOTONIC, &s->start_ts);
	/* The spare or the fork server, when there is one, is this worker
	 * minus the exec (-EPROTO: see spare.h). */
	pid = spare_take(&ws, &s->log);
	how = conf.worker_start == BROKER_START_FORK ? "forked" : "spare";
	if (pid < 0 && pid != -EPROTO) {
		pid = spawn_logged(s, &ws);
		how = "exec'd";
	}
	/* The worker holds the only write end now: its close is the news. */
	close(ready[1]);
	/* The worker has its end of the admin channel (or never will): ours
	 * must go, so its exit shows as EPIPE on our end. */
	close_fd(&s->wadmin_fd);
	if (pid == -EMFILE || pid == -ENFILE) {
		close(ready[0]);
		fail_msg(msg, cap, pid, "cannot start the worker");
		return pid; /* the broker's limit, not the worker's fault */
	}
	set_log_prefix(s);
	if (pid >= 0)
		watch_start(s, ready[0]);
	else
		close(ready[0]);
	if (pid < 0) {
		struct worker_end end = {
			.reason = SD_END_EXEC_FAILED, .exit_code = -1,
		};

		if (pid == -EPROTO)
			snprintf(end.msg, sizeof(end.msg), "the fork server "
				 "did not confirm this stream's worker");
		else
			snprintf(end.msg, sizeof(end.msg),
				 "cannot execute %.100s: %s",
				 conf.worker_path, strerror((int)-pid));
		set_ended(s, &end);
		return 0; /* the stream exists and says why it ended */
	}
	pfd = spawn_pidfd(pid);
	if (pfd < 0) {
		ret = pfd;
		goto fail;
	}
	ret = ev_add(&s->pid_ev, pfd, EPOLLIN, on_pidfd, s);
	if (ret < 0) {
		close(pfd);
		goto fail;
	}
	s->pid = pid;
	nrunning++;
	ret = watchdog_start(s, req, input_fd);
	if (ret < 0)
		stream_log(s, LOG_LVL_WARN, ret, "no watchdog");
	stream_log(s, LOG_LVL_INFO, 0, "worker %d (%s) started for %s",
		   (int)pid, how, s->source);
	return 0;
fail:
	snprintf(msg, cap, "cannot watch the worker: %s", strerror(-ret));
	kill(pid, SIGKILL);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	return ret;
}

int
stream_open(const struct ctl_open *req, int req_fd, struct stream **out,
	    int *push_wr, char *msg, size_t cap)
{
	struct ring_params params;
	struct input in = { -1, 0, -1, -1, -1, -1 };
	struct stream *s = NULL;
	int src = -1, ret;

	*out = NULL;
	*push_wr = -1;
	msg[0] = '\0';
	if (broker_stopping) {
		snprintf(msg, cap, "the broker is shutting down");
		ret = -ESHUTDOWN;
		goto out;
	}
	if (nstreams >= BROKER_MAX_STREAMS) {
		snprintf(msg, cap, "too many streams (%u)", nstreams);
		ret = -EMFILE;
		goto out;
	}
	ret = validate(req, &params, msg, cap);
	if (ret < 0)
		goto out;
	ret = fd_room(msg, cap);
	if (ret < 0)
		goto out;
	src = source_fd(req, req_fd, msg, cap);
	req_fd = -1; /* taken over by source_fd */
	if (src < 0 && req->source != CTL_SRC_PUSH) {
		ret = src;
		goto out;
	}
	ret = setup_input(req, src, &in, msg, cap);
	src = -1;
	if (ret < 0)
		goto out;
	s = stream_new(req);
	if (s == NULL) {
		ret = -ENOMEM;
		snprintf(msg, cap, "out of memory");
		goto out;
	}
	ret = setup_ring(s, &params, msg, cap);
	if (ret < 0)
		goto out;
	s->ring_size = params.data_size;
	s->wait_consumers = params.wait_consumers;
	ret = start_worker(s, req, in.worker_fd, in.seekable, msg, cap);
	if (ret < 0)
		goto out;
	close(in.worker_fd);
	in.worker_fd = -1;
	if (in.pump_src >= 0) {
		s->pumped = 1;
		if (!s->ended) {
			ret = pump_start(&s->pump, in.pump_src, in.pump_dst,
					 s);
			if (ret < 0)
				stream_log(s, LOG_LVL_WARN, ret,
					   "cannot pump the source");
		} else {
			close(in.pump_src);
			close(in.pump_dst);
		}
		in.pump_src = in.pump_dst = -1;
	}
	*push_wr = in.push_wr;
	in.push_wr = -1;
	if (!s->ended) {
		s->push_hold = in.push_hold;
		in.push_hold = -1;
	}
	s->listed = 1;
	s->refs = 1;
	TAILQ_INSERT_TAIL(&streams, s, entry);
	nstreams++;
	*out = s;
	s = NULL;
	ret = 0;
out:
	if ((ret == -EMFILE || ret == -ENFILE) &&
	    strncmp(msg, "too many open files", 19) != 0) {
		char what[CTL_MSG_LEN];

		snprintf(what, sizeof(what), "%s", msg[0] != '\0' ? msg :
			 "cannot open the stream");
		fail_msg(msg, cap, ret, what);
	}
	if (req_fd >= 0)
		close(req_fd);
	if (src >= 0)
		close(src);
	if (in.worker_fd >= 0)
		close(in.worker_fd);
	if (in.pump_src >= 0)
		close(in.pump_src);
	if (in.pump_dst >= 0)
		close(in.pump_dst);
	if (in.push_wr >= 0)
		close(in.push_wr);
	if (in.push_hold >= 0)
		close(in.push_hold);
	if (s != NULL)
		stream_free(s);
	return ret;
}

/* ---- lookups, LIST ---- */

uint32_t
stream_id(const struct stream *s)
{
	return s->id;
}

struct stream *
stream_find(const struct ctl_ref *ref)
{
	struct stream *s;

	if (ref->name[0] != '\0')
		return find_name(ref->name);
	TAILQ_FOREACH(s, &streams, entry)
		if (s->listed && s->id == ref->stream_id)
			return s;
	return NULL;
}

struct stream *
stream_next(struct stream *prev)
{
	struct stream *s = prev == NULL ? TAILQ_FIRST(&streams) :
		TAILQ_NEXT(prev, entry);

	while (s != NULL && !s->listed)
		s = TAILQ_NEXT(s, entry);
	return s;
}

/* Uptime stops at the end; the end's age counts from it. */
static void
stream_times(const struct stream *s, struct ctl_stream_info *info)
{
	uint64_t now = now_ms();

	info->uptime_ms = (s->ended ? s->ended_ms : now) - s->opened_ms;
	info->ended_ago_ms = s->ended ? now - s->ended_ms : 0;
}

/* Track count from the worker-written table, bounds-checked against the
 * segment size the broker itself chose. */
static uint32_t
track_count(const struct stream *s)
{
	const struct ring_hdr *h = ring_hdr(s->ring);
	uint64_t off = *(const volatile uint64_t *)&h->tracks_off;
	const struct ring_tracks *t;
	uint32_t n;

	if (off < RING_HDR_SIZE || off > s->data_seg_size ||
	    s->data_seg_size - off < sizeof(struct ring_tracks) ||
	    off % 8 != 0)
		return 0;
	t = (const struct ring_tracks *)((const char *)h + off);
	n = *(const volatile uint32_t *)&t->count;
	return n > RING_MAX_TRACKS ? RING_MAX_TRACKS : n;
}

void
stream_info(struct stream *s, struct ctl_stream_info *info)
{
	struct procstat ps;
	const struct ring_hdr *h;
	struct ring_stats st;
	uint32_t state;

	if (s->released) {
		ring_released_info(s, info);
		return;
	}
	h = ring_hdr(s->ring);
	memset(info, 0, sizeof(*info));
	ctl_hdr_init(&info->hdr, CTL_STREAM_INFO, 0);
	ring_stats(s->ring, &st);
	state = atomic_load_explicit(&h->state, memory_order_acquire);
	if (s->ended)
		state = RING_STATE_ENDED;
	else if (state >= RING_STATE_ENDED)
		state = RING_STATE_RUNNING; /* only the broker ends a stream */
	info->stream_id = s->id;
	info->state = state;
	info->end_reason = s->ended ? s->end.reason : SD_END_NONE;
	info->end_exit_code = s->ended ? s->end.exit_code : -1;
	info->end_signal = s->ended ? s->end.sig : 0;
	info->worker_pid = (int32_t)s->pid;
	info->mode = s->mode;
	info->tracks = track_count(s);
	info->consumers = s->consumers;
	info->fill_permille = st.fill_permille > 1000 ? 1000 : st.fill_permille;
	info->packets = atomic_load_explicit(&h->packets, memory_order_relaxed);
	info->bytes = atomic_load_explicit(&h->payload_bytes,
					   memory_order_relaxed);
	if (s->pumped)
		info->input_bytes = s->pump != NULL ? pump_bytes(s->pump) :
			s->input_bytes;
	else
		info->input_bytes = atomic_load_explicit(&h->input_bytes,
							 memory_order_relaxed);
	info->drops = st.overruns + st.evictions;
	info->frames = atomic_load_explicit(&h->frames, memory_order_relaxed);
	info->lag_bytes = st.lag_bytes;
	info->ring_size = s->ring_size;
	if (s->pid > 0 && procstat_read(s->pid, &ps) == 0) {
		s->cpu_ms = ps.cpu_ms;
		info->worker_rss = ps.rss_bytes;
	}
	info->worker_cpu_ms = s->cpu_ms;
	stream_times(s, info);
	snprintf(info->name, sizeof(info->name), "%s", s->name);
	snprintf(info->source, sizeof(info->source), "%s", s->source);
	if (s->ended)
		snprintf(info->end_msg, sizeof(info->end_msg), "%s",
			 s->end.msg);
}

/* ---- CLOSE, KILL ---- */

/* Out of the table; an ended stream's last report goes to the history
 * (ended.h). */
static void
unlist_why(struct stream *s, const char *why)
{
	struct ctl_stream_info info;

	if (!s->listed)
		return;
	if (s->ended) {
		stream_info(s, &info);
		ended_add(&info, s->ended_ms);
	}
	s->listed = 0;
	TAILQ_REMOVE(&streams, s, entry);
	nstreams--;
	stream_log(s, LOG_LVL_INFO, 0, "%s", why);
	stream_unref(s);
}

static void
unlist(struct stream *s)
{
	unlist_why(s, "closed");
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
		unlist(s);
		return;
	}
	s->closing = 1;
	if (s->stop_reason == SD_END_NONE)
		s->stop_reason = SD_END_CLOSED;
	/* Input stops now: no point feeding a worker that is going away. */
	stop_pump(s);
	release_push(s);
	pidfd_signal(s, SIGTERM);
	ret = arm_stop_timer(s);
	if (ret < 0) {
		stream_log(s, LOG_LVL_WARN, ret, "stop timer");
		pidfd_signal(s, SIGKILL);
	}
}

int
stream_kill(struct stream *s)
{
	if (s->pid == 0)
		return -ESRCH;
	s->stop_reason = SD_END_KILLED;
	return pidfd_signal(s, SIGKILL);
}

/* ---- push producers ---- */

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
	release_push(s);
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
		release_push(s);
	}
}

/* ---- consumers ---- */

/* DELs the admin channel could not take yet: sent once it is writable.
 * A worker gone for good shows as an error: ring_admin_flush() then drops
 * them (nobody left to tell). */
static void
on_admin(struct ev *ev, uint32_t events)
{
	struct stream *s = ev->arg;

	(void)events;
	if (ring_admin_flush(s->ring) == 0) {
		ev_del(&s->admin_ev);
		s->admin_full_ms = 0;
		/* attaches that waited for room */
		control_attach_resume(s);
	}
}

static void
watch_admin(struct stream *s)
{
	int ret;

	if (s->admin_ev.fd >= 0)
		return;
	s->admin_full_ms = now_ms();
	ret = ev_add(&s->admin_ev, s->admin_fd, EPOLLOUT, on_admin, s);
	if (ret < 0)
		stream_log(s, LOG_LVL_WARN, ret, "admin channel");
}

int
stream_attach(struct stream *s, pid_t pid, int observer, int wake_fd,
	      int *page_fd)
{
	int slot = -1;

	*page_fd = -1;
	if (s->released)
		return -ENODATA;
	if (!observer) {
		slot = ring_slot_alloc_wake(s->ring, pid, wake_fd, page_fd);
		if (slot == -EAGAIN) {
			/* DELs and this ADD wait for a worker slow to take
			 * its messages: the DELs are kept, the attach waits
			 * for room (stream_attach_ready), up to a bound. */
			watch_admin(s);
			stream_log(s, LOG_LVL_DEBUG, 0, "the worker's admin "
				   "channel is full; attaches wait");
		}
		if (slot < 0)
			return slot;
		s->consumers++;
		s->attached_ever++;
	}
	s->refs++;
	return slot;
}

void
stream_detach(struct stream *s, int slot)
{
	if (slot >= 0) {
		if (ring_slot_free(s->ring, (unsigned)slot) > 0)
			watch_admin(s);
		s->consumers--;
	}
	stream_unref(s);
}

int
stream_consumer_fds(const struct stream *s, int *data_fd, uint64_t *data_size)
{
	if (!s->sealed)
		return -EAGAIN; /* never an unsealed segment */
	*data_fd = s->ro_data_fd;
	*data_size = s->data_seg_size;
	return 0;
}

static void
stream_unref(struct stream *s)
{
	if (--s->refs == 0)
		stream_free(s);
	else
		ring_release_check(s);
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
	ring_close(s);
	s->released = 1;
	stream_log(s, LOG_LVL_DEBUG, 0, "ended and read; its ring is released");
}

static void
ring_released_info(const struct stream *s, struct ctl_stream_info *info)
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
				unlist_why(s, "reaped: ended, and no one "
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
static void
ring_release_check(struct stream *s)
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

void
stream_hold(struct stream *s)
{
	s->refs++;
}

void
stream_put(struct stream *s)
{
	stream_unref(s);
}

/* ---- table-wide ---- */

unsigned
stream_count(void)
{
	return nstreams;
}

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
		stop_pump(s);
		release_push(s);
		pidfd_signal(s, sig);
	}
}

void
streams_free_all(void)
{
	struct stream *s;
	int tfd = keep_ev.fd;

	while ((s = TAILQ_FIRST(&streams)) != NULL)
		unlist(s);
	if (tfd >= 0) {
		ev_del(&keep_ev);
		close(tfd);
	}
}
