/*
 * control.c - the control socket: a UNIX SOCK_SEQPACKET listener, one
 * connection per client, one request per datagram.
 *
 * Every peer is checked with SO_PEERCRED (same euid as the broker, or root)
 * before anything it sends is read. Requests are validated by ctl_recv();
 * an invalid one gets CTL_ERROR, and a connection that keeps sending them is
 * dropped.
 *
 * What a client makes the broker hold is bounded, whatever it does:
 * replies that do not fit its socket right away wait in a per-connection
 * queue of at most CONN_QUEUE_BYTES and CONN_QUEUE_FDS, sized at the
 * message's own length; while anything waits, further requests are not
 * read (the client has to read its replies first). A LIST is answered one
 * record at a time as the socket takes them (the connection remembers the
 * last stream id sent), never queued whole. A client that leaves its
 * replies unread for --reply-timeout, or would overflow its queue, is
 * dropped, counted and logged.
 *
 * Over 800 lines on purpose, for now: the connection's life (peer check,
 * bounded reply queue, LIST cursor, reply timeout) and the request
 * handlers share the per-connection state and its invariants, and each
 * handler is short. The handlers are what moves out next (behind a
 * control-internal header, as stream.c was split) when one more request
 * comes.
 */
#include <bsd/sys/queue.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <unistd.h>

#include "ended.h"
#include "log.h"
#include "version.h"
#include "ring_admin.h"
#include "shmdemuxd.h"

#define MAX_BAD_MSGS  16   /* invalid requests tolerated per connection */
/* One request's replies wait at most (requests are not read meanwhile, and
 * a LIST goes out a record at a time): room for the largest message. */
#define CONN_QUEUE_BYTES CTL_MAX_MSG
#define CONN_QUEUE_FDS   (2 * CTL_MAX_FDS)
/* The kernel's share: replies sent but unread sit in the broker's socket
 * send buffer; 64 KiB (the kernel doubles it) holds a LIST of ~100
 * streams. */
#define CONN_SNDBUF      (64 * 1024)

struct outmsg {
	STAILQ_ENTRY(outmsg) entry;
	size_t len;
	int fds[CTL_MAX_FDS];
	int nfds;
	unsigned char msg[];  /* len bytes */
};

struct conn {
	TAILQ_ENTRY(conn) entry;
	struct ev ev;
	pid_t pid;
	uid_t uid;
	unsigned bad;
	struct stream *att;   /* attached stream, or NULL */
	int slot;             /* its consumer slot, -1 for observers */
	/* An ATTACH waiting for its stream's seal (one per connection: no
	 * request is read meanwhile, so at most --max-connections wait), with
	 * a reference on the stream. */
	struct stream *waiting;
	struct ctl_attach wait_req;
	STAILQ_HEAD(, outmsg) outq;
	size_t out_bytes;     /* queued, bounded by CONN_QUEUE_BYTES */
	unsigned out_fds;     /* queued, bounded by CONN_QUEUE_FDS */
	uint64_t stalled_ms;  /* since when replies wait; 0 if none */
	/* A LIST in progress: records go out as the socket takes them. */
	int listing;
	uint32_t list_req;    /* its request id */
	uint32_t list_after;  /* the last stream id sent */
	uint32_t list_count;
	uint32_t list_flags;  /* CTL_LIST_* */
	uint64_t list_hist;   /* then the last history entry sent (ended.h) */
	int closing;
};

static TAILQ_HEAD(, conn) conns = TAILQ_HEAD_INITIALIZER(conns);
static unsigned nconns;
static struct ev listen_ev = { .fd = -1 };
static int listen_paused;
static char listen_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
/* Ticks while a connection's replies wait, to drop those that stay unread
 * past --reply-timeout. */
static struct ev stall_ev = { .fd = -1 };
static int stall_armed;
static unsigned long slow_dropped;   /* clients dropped for not reading */

static void conn_close(struct conn *c);
static void list_pump(struct conn *c);

/* ---- replies ---- */

/* A client that does not read its replies costs the broker memory and
 * descriptors: it goes, and the count of those that went is logged (once
 * per timer tick for a crowd: quiet lets the caller sum them up). */
static void
drop_slow(struct conn *c, const char *why, int quiet)
{
	slow_dropped++;
	log_msg(quiet ? LOG_LVL_DEBUG : LOG_LVL_WARN, "connection from pid %d "
		"dropped: %s (%zu bytes and %u fds of replies waiting; %lu "
		"such clients dropped so far)", (int)c->pid, why, c->out_bytes,
		c->out_fds, slow_dropped);
	conn_close(c);
}

static void
stall_arm(void)
{
	unsigned period;
	struct itimerspec its = { 0 };

	if (stall_armed || stall_ev.fd < 0)
		return;
	period = conf.reply_timeout_ms / 4;
	period = period < 20 ? 20 : period > 1000 ? 1000 : period;
	its.it_value.tv_sec = its.it_interval.tv_sec = period / 1000;
	its.it_value.tv_nsec = its.it_interval.tv_nsec =
		(long)(period % 1000) * 1000000L;
	if (timerfd_settime(stall_ev.fd, 0, &its, NULL) == 0)
		stall_armed = 1;
}

static void
on_stall_timer(struct ev *ev, uint32_t events)
{
	struct conn *c, *tmp;
	uint64_t exp, now = now_ms();
	int waiting = 0, dropped = 0;

	(void)events;
	(void)!read(ev->fd, &exp, sizeof(exp));
	TAILQ_FOREACH_SAFE(c, &conns, entry, tmp) {
		if (c->stalled_ms == 0)
			continue;
		if (now - c->stalled_ms < conf.reply_timeout_ms) {
			waiting = 1;
			continue;
		}
		drop_slow(c, "it left its replies unread", 1);
		dropped++;
	}
	if (!waiting && timer_arm(ev->fd, 0) == 0)
		stall_armed = 0;
	if (dropped == 0)
		return;
	log_warnx("dropped %d connection(s) that left their replies unread "
		  "for %u ms (%lu such clients dropped so far)", dropped,
		  conf.reply_timeout_ms, slow_dropped);
	/* glibc keeps freed memory in its arenas; a burst of queued
	 * replies freed at once would stay in the RSS. */
	malloc_trim(0);
}

static int
queue_msg(struct conn *c, const void *msg, size_t len, const int *fds,
	  int nfds)
{
	struct outmsg *o;

	if (c->out_bytes + len > CONN_QUEUE_BYTES ||
	    c->out_fds + (unsigned)nfds > CONN_QUEUE_FDS)
		return -ENOBUFS;
	o = calloc(1, sizeof(*o) + len);
	if (o == NULL)
		return -ENOMEM;
	memcpy(o->msg, msg, len);
	o->len = len;
	o->nfds = 0;
	for (int i = 0; i < nfds; i++) {
		o->fds[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 0);
		if (o->fds[i] < 0) {
			int ret = -errno;

			while (i-- > 0)
				close(o->fds[i]);
			free(o);
			return ret;
		}
		o->nfds++;
	}
	STAILQ_INSERT_TAIL(&c->outq, o, entry);
	c->out_bytes += len;
	c->out_fds += (unsigned)nfds;
	if (c->stalled_ms == 0) {
		c->stalled_ms = now_ms();
		stall_arm();
	}
	/* Stop reading requests until the replies have gone out. */
	return ev_mod(&c->ev, EPOLLOUT);
}

/* Send a reply, or queue it if the socket is full. A failure closes the
 * connection (marked; the caller stops using it). fds are the caller's. */
static void
reply(struct conn *c, const void *msg, size_t len, const int *fds, int nfds)
{
	int ret = -EAGAIN;

	if (c->closing)
		return;
	if (STAILQ_EMPTY(&c->outq))
		ret = ctl_send(c->ev.fd, msg, len, fds, nfds);
	if (ret == -EAGAIN)
		ret = queue_msg(c, msg, len, fds, nfds);
	if (ret == -ENOBUFS) {
		drop_slow(c, "its reply queue is full", 0);
	} else if (ret < 0) {
		log_errno(LOG_LVL_DEBUG, ret, "connection from pid %d: reply",
			  (int)c->pid);
		conn_close(c);
	}
}

static void
flush(struct conn *c)
{
	struct outmsg *o;
	int ret;

	while ((o = STAILQ_FIRST(&c->outq)) != NULL) {
		ret = ctl_send(c->ev.fd, o->msg, o->len, o->fds, o->nfds);
		if (ret == -EAGAIN)
			return;
		if (ret < 0) {
			conn_close(c);
			return;
		}
		STAILQ_REMOVE_HEAD(&c->outq, entry);
		c->out_bytes -= o->len;
		c->out_fds -= (unsigned)o->nfds;
		for (int i = 0; i < o->nfds; i++)
			close(o->fds[i]);
		free(o);
	}
	c->stalled_ms = 0;
	list_pump(c);
	if (c->closing || !STAILQ_EMPTY(&c->outq))
		return;
	if (ev_mod(&c->ev, EPOLLIN) < 0)
		conn_close(c);
}

static void
reply_error(struct conn *c, uint32_t id, int code, const char *msg)
{
	struct ctl_error e;

	memset(&e, 0, sizeof(e));
	ctl_hdr_init(&e.hdr, CTL_ERROR, id);
	e.code = code;
	snprintf(e.msg, sizeof(e.msg), "%s",
		 msg != NULL && msg[0] != '\0' ? msg : strerror(-code));
	reply(c, &e, sizeof(e), NULL, 0);
}

static void
reply_ok(struct conn *c, uint32_t id)
{
	struct ctl_ok ok;

	memset(&ok, 0, sizeof(ok));
	ctl_hdr_init(&ok.hdr, CTL_OK, id);
	reply(c, &ok, sizeof(ok), NULL, 0);
}

/* ---- requests ---- */

static void
do_open(struct conn *c, const struct ctl_open *req, int fd)
{
	struct ctl_opened r;
	struct stream *s;
	char msg[CTL_MSG_LEN];
	int push_wr, ret;

	ret = stream_open(req, fd, &s, &push_wr, msg, sizeof(msg));
	if (ret < 0) {
		log_info("open %s refused: %s", req->path, msg);
		reply_error(c, req->hdr.id, ret, msg);
		return;
	}
	memset(&r, 0, sizeof(r));
	ctl_hdr_init(&r.hdr, CTL_OPENED, req->hdr.id);
	r.stream_id = stream_id(s);
	reply(c, &r, sizeof(r), &push_wr, push_wr >= 0 ? 1 : 0);
	if (push_wr >= 0) {
		close(push_wr); /* the client has its copy now */
		stream_set_producer(s, c);
	}
}


static struct stream *
find_or_reply(struct conn *c, uint32_t id, const struct ctl_ref *ref)
{
	struct stream *s = stream_find(ref);
	char msg[CTL_MSG_LEN];

	if (s != NULL)
		return s;
	if (ref->name[0] != '\0')
		snprintf(msg, sizeof(msg), "no stream named %s", ref->name);
	else
		snprintf(msg, sizeof(msg), "no stream %u", ref->stream_id);
	reply_error(c, id, -ENOENT, msg);
	return NULL;
}

static void
do_push_end(struct conn *c, const struct ctl_push_end *req)
{
	struct ctl_ref ref = { .stream_id = req->stream_id };
	struct stream *s;
	int ret;

	if (req->error < 0 || req->error > 4095) {
		reply_error(c, req->hdr.id, -EINVAL, "invalid error code");
		return;
	}
	s = find_or_reply(c, req->hdr.id, &ref);
	if (s == NULL)
		return;
	ret = stream_push_end(s, c, req->error);
	if (ret < 0)
		reply_error(c, req->hdr.id, ret, ret == -EPERM ?
			    "not the producer of this stream" :
			    "the input has already ended");
	else
		reply_ok(c, req->hdr.id);
}

/* Until s is ready for it (control_attach_resume): read nothing more
 * from this client (a hang-up still closes it, on_conn). */
static void
attach_park(struct conn *c, const struct ctl_attach *req, struct stream *s,
	    const char *what)
{
	if (ev_mod(&c->ev, 0) < 0) {
		conn_close(c);
		return;
	}
	stream_hold(s);
	c->waiting = s;
	c->wait_req = *req;
	stream_log(s, LOG_LVL_DEBUG, 0, "pid %d waits for %s", (int)c->pid,
		   what);
}

/* Attach c to s, whose data segment is sealed. */
static void
finish_attach(struct conn *c, const struct ctl_attach *req, struct stream *s)
{
	struct ctl_attached r;
	int fds[3], slot, page_fd, wake[2] = { -1, -1 };

	memset(&r, 0, sizeof(r));
	/* Checked by the caller; a segment anyone could still map writable
	 * is never handed out, whatever happens. */
	if (stream_consumer_fds(s, &fds[0], &r.data_size) < 0) {
		reply_error(c, req->hdr.id, -EAGAIN, NULL);
		return;
	}
	/* A consumer that polls gets only the read end of its wake pipe:
	 * the write end's file flags (O_NONBLOCK) are shared by the broker
	 * and the producer alone, so no consumer can make the producer's
	 * write block. */
	if ((req->flags & CTL_ATTACH_WAKE) &&
	    pipe2(wake, O_NONBLOCK | O_CLOEXEC) < 0) {
		reply_error(c, req->hdr.id, -errno, NULL);
		return;
	}
	/* Readable at first: the reader's first wake-up is its first read,
	 * which arms the pipe (ring_set_wake_fd). */
	if (wake[1] >= 0)
		(void)!write(wake[1], "", 1);
	slot = stream_attach(s, c->pid, req->flags & CTL_ATTACH_OBSERVER,
			     wake[1], &page_fd);
	if (wake[1] >= 0)
		close(wake[1]);
	if (slot < 0 && wake[0] >= 0)
		close(wake[0]);
	if (slot == -ENODATA) {
		char msg[CTL_MSG_LEN];

		snprintf(msg, sizeof(msg), "stream %u has ended and was read; "
			 "its records are gone", stream_id(s));
		reply_error(c, req->hdr.id, slot, msg);
		return;
	}
	if (slot == -EAGAIN && stream_attach_ready(s) == 0) {
		attach_park(c, req, s, "room in the worker's admin channel");
		return;
	}
	if (slot == -EAGAIN) {
		reply_error(c, req->hdr.id, -EBUSY, "the stream's worker has "
			    "not taken new consumers for the reply timeout "
			    "(its admin channel is full)");
		return;
	}
	if (slot < -1) {
		reply_error(c, req->hdr.id, slot, slot == -EBUSY ?
			    "too many consumers" : NULL);
		return;
	}
	c->att = s;
	c->slot = slot;
	ctl_hdr_init(&r.hdr, CTL_ATTACHED, req->hdr.id);
	r.stream_id = stream_id(s);
	r.slot = slot;
	/* Its cursor page: this consumer's alone (observers get none). It
	 * stays writable by that consumer: nobody else reads it but the
	 * producer, which trusts nothing in it. */
	fds[1] = page_fd;
	fds[2] = wake[0];
	r.page_size = page_fd >= 0 ? RING_PAGE_SIZE : 0;
	stream_log(s, LOG_LVL_DEBUG, 0, "pid %d attached (slot %d%s)",
		   (int)c->pid, slot, wake[0] >= 0 ? ", polls" : "");
	reply(c, &r, sizeof(r), fds, page_fd < 0 ? 1 : wake[0] < 0 ? 2 : 3);
	if (page_fd >= 0)
		close(page_fd);
	if (wake[0] >= 0)
		close(wake[0]);
}

/* The seal decides: attach now, wait for it, or refuse. */
static void
attach_or_wait(struct conn *c, const struct ctl_attach *req,
	       struct stream *s)
{
	char msg[CTL_MSG_LEN];
	int ready = stream_attach_ready(s);

	if (ready > 0) {
		finish_attach(c, req, s);
		return;
	}
	if (ready < 0) {
		snprintf(msg, sizeof(msg), "stream %u: its ring could not be "
			 "sealed against writes: %s", stream_id(s),
			 strerror(-ready));
		reply_error(c, req->hdr.id, ready, msg);
		return;
	}
	attach_park(c, req, s, "the ring's seal");
}

static void
do_attach(struct conn *c, const struct ctl_attach *req, int nfds)
{
	struct stream *s;

	if (c->att != NULL) {
		reply_error(c, req->hdr.id, -EISCONN,
			    "this connection is already attached to a stream");
		return;
	}
	if (req->start > RING_START_LIVE ||
	    (req->flags & ~(uint32_t)(CTL_ATTACH_OBSERVER |
				      CTL_ATTACH_WAKE)) != 0 ||
	    (req->flags & CTL_ATTACH_OBSERVER &&
	     req->flags & CTL_ATTACH_WAKE)) {
		reply_error(c, req->hdr.id, -EINVAL, "invalid attach options");
		return;
	}
	/* The broker makes every descriptor it hands on: a consumer's own
	 * (an eventfd, a pipe, a memfd) never reaches the producer. */
	if (nfds > 0) {
		reply_error(c, req->hdr.id, -EINVAL, "an attach request "
			    "carries no file descriptor");
		return;
	}
	s = find_or_reply(c, req->hdr.id, &req->ref);
	if (s == NULL)
		return;
	attach_or_wait(c, req, s);
}

void
control_attach_resume(struct stream *s)
{
	struct conn *c, *next;

	TAILQ_FOREACH_SAFE(c, &conns, entry, next) {
		if (c->waiting != s || c->closing)
			continue;
		c->waiting = NULL;
		attach_or_wait(c, &c->wait_req, s);
		stream_put(s);
		/* Requests are read again once the reply has gone out. */
		if (!c->closing && c->waiting == NULL &&
		    STAILQ_EMPTY(&c->outq) && ev_mod(&c->ev, EPOLLIN) < 0)
			conn_close(c);
	}
}

/* The first listed stream after id `after` (streams are kept in id
 * order); NULL past the last. */
static struct stream *
list_from(uint32_t after)
{
	struct stream *s = NULL;

	while ((s = stream_next(s)) != NULL && stream_id(s) <= after)
		;
	return s;
}

/* Send LIST records while the socket takes them: each is built when it
 * goes out, so a reader that stops holds at most one, queued. Streams
 * opened or closed meanwhile are listed or not as they are when their
 * turn comes; the end counts what was sent. */
static void
list_pump(struct conn *c)
{
	struct ctl_stream_info info;
	struct ctl_list_end end;
	struct stream *s;

	while (c->listing && !c->closing && STAILQ_EMPTY(&c->outq)) {
		s = c->list_after == UINT32_MAX ? NULL :
			list_from(c->list_after);
		if (s == NULL && (c->list_flags & CTL_LIST_ENDED) &&
		    (c->list_hist = ended_next(c->list_hist, &info)) != 0) {
			/* the table is done: its last id stands for all */
			c->list_after = UINT32_MAX;
			info.hdr.id = c->list_req;
			c->list_count++;
			reply(c, &info, sizeof(info), NULL, 0);
			continue;
		}
		if (s == NULL) {
			c->listing = 0;
			memset(&end, 0, sizeof(end));
			ctl_hdr_init(&end.hdr, CTL_LIST_END, c->list_req);
			end.count = c->list_count;
			reply(c, &end, sizeof(end), NULL, 0);
			return;
		}
		stream_info(s, &info);
		info.hdr.id = c->list_req;
		c->list_after = stream_id(s);
		c->list_count++;
		reply(c, &info, sizeof(info), NULL, 0);
	}
}

static void
do_list(struct conn *c, const struct ctl_list *req)
{
	c->listing = 1;
	c->list_req = req->hdr.id;
	c->list_after = 0;
	c->list_count = 0;
	c->list_flags = req->flags;
	c->list_hist = 0;
	list_pump(c);
}

static void
do_close(struct conn *c, const struct ctl_close *req, int kill)
{
	struct stream *s = find_or_reply(c, req->hdr.id, &req->ref);
	char msg[CTL_MSG_LEN];
	int ret;

	if (s == NULL)
		return;
	if (!kill) {
		stream_log(s, LOG_LVL_INFO, 0, "close requested");
		stream_close(s);
		reply_ok(c, req->hdr.id);
		return;
	}
	ret = stream_kill(s);
	if (ret == -ESRCH) {
		snprintf(msg, sizeof(msg), "stream %u has already ended",
			 stream_id(s));
		reply_error(c, req->hdr.id, ret, msg);
		return;
	}
	if (ret < 0) {
		reply_error(c, req->hdr.id, ret, NULL);
		return;
	}
	stream_log(s, LOG_LVL_INFO, 0, "kill requested");
	reply_ok(c, req->hdr.id);
}

/* Close the other connections whose peers have hung up with nothing left
 * to read: they are gone, only their hang-up is not handled yet (the
 * stream connection a client closed just before this request). */
static void
close_hung_up(const struct conn *keep)
{
	struct conn *o, *tmp;
	char b;

	TAILQ_FOREACH_SAFE(o, &conns, entry, tmp) {
		if (o != keep && !o->closing &&
		    recv(o->ev.fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) == 0)
			conn_close(o);
	}
}

/* Stop if nothing would be lost: no stream, no other connection. One
 * step of the loop decides, so no OPEN from elsewhere slips in between. */
static void
do_quit_idle(struct conn *c, uint32_t id)
{
	close_hung_up(c);
	if (stream_count() != 0 || control_conn_count() != 1) {
		reply_error(c, id, -EBUSY, "the broker is in use");
		return;
	}
	log_info("asked to stop by pid %d, which started it for a request "
		 "that failed; nothing else uses it", (int)c->pid);
	reply_ok(c, id);
	broker_request_stop();
}

static void
dispatch(struct conn *c, const union ctl_msg *m, int *fds, int nfds)
{
	int in_fd = -1;

	/* Only OPEN with SRC_FD carries a descriptor; any other is closed. */
	if (m->hdr.type == CTL_OPEN && m->open.source == CTL_SRC_FD &&
	    nfds > 0) {
		in_fd = fds[0];
		fds[0] = -1;
	}
	for (int i = 0; i < nfds; i++)
		if (fds[i] >= 0)
			close(fds[i]);

	switch (m->hdr.type) {
	case CTL_OPEN:
		do_open(c, &m->open, in_fd);
		break;
	case CTL_ATTACH:
		do_attach(c, &m->attach, nfds);
		break;
	case CTL_LIST:
		do_list(c, &m->list);
		break;
	case CTL_CLOSE:
		do_close(c, &m->close, 0);
		break;
	case CTL_KILL:
		do_close(c, &m->close, 1);
		break;
	case CTL_PUSH_END:
		do_push_end(c, &m->push_end);
		break;
	case CTL_QUIT_IDLE:
		do_quit_idle(c, m->hdr.id);
		break;
	default:
		reply_error(c, m->hdr.id, -EBADMSG, "not a request");
		break;
	}
}

static void
bad_message(struct conn *c, int err, const void *buf)
{
	char msg[CTL_MSG_LEN];

	if (err == -EPROTO)
		snprintf(msg, sizeof(msg), "control protocol version mismatch: "
			 "this broker (shmdemuxd %s) speaks version %u, the "
			 "client version %d; restart the broker after an "
			 "upgrade, or use the client installed with it",
			 sd_version_string(), CTL_VERSION,
			 ctl_peer_version(buf, sizeof(struct ctl_hdr)));
	else
		snprintf(msg, sizeof(msg), "invalid message");
	reply_error(c, 0, err, msg);
}

static void
conn_read(struct conn *c)
{
	/* ctl_recv fills up to CTL_MAX_MSG bytes, more than any message. */
	union {
		union ctl_msg m;
		char raw[CTL_MAX_MSG];
	} buf;
	int fds[CTL_MAX_FDS], nfds;
	ssize_t n;

	/* Bounded per wakeup, not past a full reply queue, a LIST in
	 * progress nor a waiting ATTACH. */
	for (int i = 0; i < 32 && !c->closing && STAILQ_EMPTY(&c->outq) &&
	     !c->listing && c->waiting == NULL; i++) {
		n = ctl_recv(c->ev.fd, &buf, fds, &nfds);
		if (n == -EAGAIN)
			return;
		if (n == 0 || n == -ECONNRESET) {
			conn_close(c);
			return;
		}
		if (n == -EBADMSG || n == -EPROTO || n == -EMSGSIZE) {
			log_debug("connection from pid %d: invalid message: %s",
				  (int)c->pid, strerror((int)-n));
			if (++c->bad > MAX_BAD_MSGS) {
				conn_close(c);
				return;
			}
			bad_message(c, (int)n, &buf);
			continue;
		}
		if (n < 0) {
			conn_close(c);
			return;
		}
		dispatch(c, &buf.m, fds, nfds);
	}
}

static void
on_conn(struct ev *ev, uint32_t events)
{
	struct conn *c = ev->arg;

	/* A client that left while its ATTACH waited. */
	if (c->waiting != NULL && (events & (EPOLLHUP | EPOLLERR))) {
		conn_close(c);
		return;
	}
	if (events & EPOLLOUT)
		flush(c);
	if (!c->closing && (events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		conn_read(c);
}

static void
conn_close(struct conn *c)
{
	struct outmsg *o;
	int fd = c->ev.fd;

	if (c->closing)
		return;
	c->closing = 1;
	ev_del(&c->ev);
	close(fd);
	while ((o = STAILQ_FIRST(&c->outq)) != NULL) {
		STAILQ_REMOVE_HEAD(&c->outq, entry);
		for (int i = 0; i < o->nfds; i++)
			close(o->fds[i]);
		free(o);
	}
	c->out_bytes = 0;
	c->out_fds = 0;
	c->stalled_ms = 0;
	c->listing = 0;
	if (c->att != NULL) {
		stream_log(c->att, LOG_LVL_DEBUG, 0, "pid %d detached",
			   (int)c->pid);
		stream_detach(c->att, c->slot);
		c->att = NULL;
	}
	if (c->waiting != NULL) {
		stream_put(c->waiting);
		c->waiting = NULL;
	}
	streams_producer_gone(c);
	TAILQ_REMOVE(&conns, c, entry);
	nconns--;
	loop_defer_free(c);
	if (listen_paused && listen_ev.fd >= 0 &&
	    ev_mod(&listen_ev, EPOLLIN) == 0)
		listen_paused = 0;
}

/* ---- accepting ---- */

static int
peer_ok(int fd, struct ucred *cred)
{
	socklen_t len = sizeof(*cred);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, cred, &len) < 0)
		return 0;
	return cred->uid == geteuid() || cred->uid == 0;
}

/* Turn a connection away at accept for a cause that is not who the peer
 * is: one ERROR with id 0 naming it, then close (proto.h). The socket is
 * fresh, its send buffer empty; still never waited on. */
static void
refuse(int fd, pid_t pid, int code, const char *why)
{
	static uint64_t logged_ms;
	static unsigned unlogged;
	struct ctl_error e;
	uint64_t now = now_ms();

	/* a line a second at most: a crowd at the cap must not flood the
	 * log (the count of the others goes with the next line) */
	if (logged_ms == 0 || now - logged_ms >= 1000) {
		if (unlogged > 0)
			log_warnx("%s, refusing pid %d (and %u more refused "
				  "since the last such line)", why, (int)pid,
				  unlogged);
		else
			log_warnx("%s, refusing pid %d", why, (int)pid);
		logged_ms = now;
		unlogged = 0;
	} else {
		unlogged++;
	}
	memset(&e, 0, sizeof(e));
	ctl_hdr_init(&e.hdr, CTL_ERROR, 0);
	e.code = code;
	snprintf(e.msg, sizeof(e.msg), "%s", why);
	(void)send(fd, &e, sizeof(e), MSG_DONTWAIT | MSG_NOSIGNAL);
	close(fd);
}

static void
accept_one(int fd)
{
	struct ucred cred;
	struct conn *c;
	char why[96];
	int ret;

	/* Another user is told nothing, not even why. */
	if (!peer_ok(fd, &cred)) {
		log_warnx("refused a connection from uid %u pid %d",
			  (unsigned)cred.uid, (int)cred.pid);
		close(fd);
		return;
	}
	if (nconns >= conf.max_conns) {
		snprintf(why, sizeof(why), "too many connections (%u)",
			 conf.max_conns);
		refuse(fd, cred.pid, -EUSERS, why);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		refuse(fd, cred.pid, -ENOMEM, "out of memory");
		return;
	}
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &(int){ CONN_SNDBUF },
			 sizeof(int));
	ev_init(&c->ev);
	c->pid = cred.pid;
	c->uid = cred.uid;
	c->slot = -1;
	STAILQ_INIT(&c->outq);
	if ((ret = ev_add(&c->ev, fd, EPOLLIN, on_conn, c)) < 0) {
		snprintf(why, sizeof(why), "cannot watch the connection: %s",
			 strerror(-ret));
		free(c);
		refuse(fd, cred.pid, ret, why);
		return;
	}
	TAILQ_INSERT_TAIL(&conns, c, entry);
	nconns++;
	log_debug("connection from pid %d", (int)cred.pid);
}

static void
on_listen(struct ev *ev, uint32_t events)
{
	int fd, released = 0;

	(void)events;
	for (int i = 0; i < 64; i++) {
		fd = accept4(ev->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd >= 0) {
			accept_one(fd);
			continue;
		}
		if (errno == EINTR || errno == ECONNABORTED)
			continue;
		/* Rings of ended streams already read go before clients
		 * are turned away. */
		if ((errno == EMFILE || errno == ENFILE) && !released &&
		    streams_release_spent() > 0) {
			released = 1;
			continue;
		}
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
		    errno == ENOMEM) {
			/* Out of descriptors: stop listening until a
			 * connection closes, instead of spinning. */
			log_errno(LOG_LVL_WARN, errno, "accept");
			if (ev_mod(ev, 0) == 0)
				listen_paused = 1;
		}
		return;
	}
}

/* If a broker answers on path, refuse; a socket nobody answers on is a
 * leftover of a broker that died, and is removed. Another user's socket is
 * neither: it is refused, named, and left alone (the client would refuse
 * whoever listens on it anyway, proto.h). */
static int
check_existing(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct ucred cred;
	socklen_t len = sizeof(cred);
	struct stat st;
	int fd, ret;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode)) {
		log_error("%s exists and is not a socket", path);
		return -EEXIST;
	}
	if (st.st_uid != geteuid()) {
		log_error("the socket %s belongs to uid %u, not to uid %u: "
			  "refusing it (another user's process may have taken "
			  "the path)", path, (unsigned)st.st_uid,
			  (unsigned)geteuid());
		return -EPERM;
	}
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	memcpy(sun.sun_path, path, strlen(path) + 1);
	ret = 0;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 &&
		    cred.uid != geteuid()) {
			log_error("uid %u (pid %d) listens on %s: refusing it",
				  (unsigned)cred.uid, (int)cred.pid, path);
			ret = -EPERM;
		} else {
			log_error("a broker is already running on %s", path);
			ret = -EADDRINUSE;
		}
	}
	close(fd);
	if (ret < 0)
		return ret;
	log_info("removing stale socket %s", path);
	if (unlink(path) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

int
control_listen(const char *path, int inherited)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	mode_t old;
	int fd, ret;

	/* A socket the service manager bound (service.h): it owns the path,
	 * which outlives us (listen_path stays empty: never unlinked). */
	if (inherited >= 0) {
		fd = inherited;
		goto serve;
	}
	if (strlen(path) >= sizeof(sun.sun_path)) {
		log_error("socket path too long: %s", path);
		return -ENAMETOOLONG;
	}
	ret = check_existing(path);
	if (ret < 0)
		return ret;
	memcpy(sun.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		ret = -errno;
		log_errno(LOG_LVL_ERROR, ret, "socket");
		return ret;
	}
	/* Created 0600 from the start: no window where others may connect. */
	old = umask(0177);
	ret = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
	umask(old);
	if (ret < 0) {
		ret = -errno;
		log_errno(LOG_LVL_ERROR, ret, "bind %s", path);
		goto fail;
	}
	snprintf(listen_path, sizeof(listen_path), "%s", path);
	if (chmod(path, 0600) < 0 || listen(fd, 128) < 0) {
		ret = -errno;
		log_errno(LOG_LVL_ERROR, ret, "listen %s", path);
		unlink(path);
		listen_path[0] = '\0';
		goto fail;
	}
serve:
	ev_init(&listen_ev);
	ret = ev_add(&listen_ev, fd, EPOLLIN, on_listen, NULL);
	if (ret < 0) {
		if (listen_path[0] != '\0')
			unlink(path);
		listen_path[0] = '\0';
		goto fail;
	}
	if ((ret = timer_new(&stall_ev, on_stall_timer, NULL)) < 0)
		log_errno(LOG_LVL_WARN, ret, "reply timer: clients that do not "
			  "read are not dropped");
	return 0;
fail:
	close(fd);
	return ret;
}

void
control_stop_listening(void)
{
	int fd = listen_ev.fd;

	if (fd < 0)
		return;
	ev_del(&listen_ev);
	close(fd);
	if (listen_path[0] != '\0' && unlink(listen_path) < 0)
		log_errno(LOG_LVL_WARN, errno, "unlink %s", listen_path);
	listen_path[0] = '\0';
}

void
control_close_all(void)
{
	struct conn *c;
	int tfd = stall_ev.fd;

	while ((c = TAILQ_FIRST(&conns)) != NULL)
		conn_close(c);
	if (tfd >= 0) {
		ev_del(&stall_ev);
		close(tfd);
	}
}

unsigned
control_conn_count(void)
{
	return nconns;
}
