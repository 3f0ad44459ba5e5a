/*
 * control.c - the control socket: a UNIX SOCK_SEQPACKET listener, one
 * connection per client, one request per datagram.
 *
 * Every peer is checked with SO_PEERCRED (same euid as the broker, or root)
 * before anything it sends is read. Requests are validated by ctl_recv();
 * an invalid one gets CTL_ERROR, and a connection that keeps sending them is
 * dropped. Replies that do not fit the socket right away wait in a bounded
 * per-connection queue, during which further requests are not read (the
 * client has to read its replies first).
 */
#include <bsd/sys/queue.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "ring.h"
#include "shmdemuxd.h"

#define MAX_BAD_MSGS  16   /* invalid requests tolerated per connection */
#define MAX_QUEUED    (BROKER_MAX_STREAMS + 16)

struct outmsg {
	STAILQ_ENTRY(outmsg) entry;
	size_t len;
	int fds[CTL_MAX_FDS];
	int nfds;
	union ctl_msg msg;
};

struct conn {
	TAILQ_ENTRY(conn) entry;
	struct ev ev;
	pid_t pid;
	uid_t uid;
	unsigned bad;
	struct stream *att;   /* attached stream, or NULL */
	int slot;             /* its consumer slot, -1 for observers */
	STAILQ_HEAD(, outmsg) outq;
	unsigned nout;
	int closing;
};

static TAILQ_HEAD(, conn) conns = TAILQ_HEAD_INITIALIZER(conns);
static unsigned nconns;
static struct ev listen_ev = { .fd = -1 };
static int listen_paused;
static char listen_path[sizeof(((struct sockaddr_un *)0)->sun_path)];

static void conn_close(struct conn *c);

/* ---- replies ---- */

static int
queue_msg(struct conn *c, const void *msg, size_t len, const int *fds,
	  int nfds)
{
	struct outmsg *o;

	if (c->nout >= MAX_QUEUED)
		return -ENOBUFS;
	o = calloc(1, sizeof(*o));
	if (o == NULL)
		return -ENOMEM;
	memcpy(&o->msg, msg, len);
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
	c->nout++;
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
	if (ret < 0) {
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
		ret = ctl_send(c->ev.fd, &o->msg, o->len, o->fds, o->nfds);
		if (ret == -EAGAIN)
			return;
		if (ret < 0) {
			conn_close(c);
			return;
		}
		STAILQ_REMOVE_HEAD(&c->outq, entry);
		c->nout--;
		for (int i = 0; i < o->nfds; i++)
			close(o->fds[i]);
		free(o);
	}
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

static void
do_attach(struct conn *c, const struct ctl_attach *req)
{
	struct ctl_attached r;
	struct stream *s;
	int fds[2], slot, page_fd;

	if (c->att != NULL) {
		reply_error(c, req->hdr.id, -EISCONN,
			    "this connection is already attached to a stream");
		return;
	}
	if (req->start > RING_START_LIVE ||
	    (req->flags & ~(uint32_t)CTL_ATTACH_OBSERVER) != 0) {
		reply_error(c, req->hdr.id, -EINVAL, "invalid attach options");
		return;
	}
	s = find_or_reply(c, req->hdr.id, &req->ref);
	if (s == NULL)
		return;
	slot = stream_attach(s, c->pid, req->flags & CTL_ATTACH_OBSERVER,
			     &page_fd);
	if (slot == -EAGAIN) {
		reply_error(c, req->hdr.id, -EBUSY, "the stream's worker is "
			    "not accepting consumers (its admin channel is "
			    "full)");
		return;
	}
	if (slot < -1) {
		reply_error(c, req->hdr.id, slot, slot == -EBUSY ?
			    "too many consumers" : NULL);
		return;
	}
	c->att = s;
	c->slot = slot;
	memset(&r, 0, sizeof(r));
	ctl_hdr_init(&r.hdr, CTL_ATTACHED, req->hdr.id);
	r.stream_id = stream_id(s);
	r.slot = slot;
	stream_consumer_fds(s, &fds[0], &r.data_size);
	/* Its cursor page: this consumer's alone (observers get none). */
	fds[1] = page_fd;
	r.page_size = page_fd >= 0 ? RING_PAGE_SIZE : 0;
	log_debug("stream %u: pid %d attached (slot %d)", stream_id(s),
		  (int)c->pid, slot);
	reply(c, &r, sizeof(r), fds, page_fd >= 0 ? 2 : 1);
	if (page_fd >= 0)
		close(page_fd);
}

static void
do_list(struct conn *c, const struct ctl_list *req)
{
	struct ctl_stream_info info;
	struct ctl_list_end end;
	struct stream *s = NULL;
	uint32_t n = 0;

	while ((s = stream_next(s)) != NULL && !c->closing) {
		stream_info(s, &info);
		info.hdr.id = req->hdr.id;
		reply(c, &info, sizeof(info), NULL, 0);
		n++;
	}
	memset(&end, 0, sizeof(end));
	ctl_hdr_init(&end.hdr, CTL_LIST_END, req->hdr.id);
	end.count = n;
	reply(c, &end, sizeof(end), NULL, 0);
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
		log_info("stream %u: close requested", stream_id(s));
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
	log_info("stream %u: kill requested", stream_id(s));
	reply_ok(c, req->hdr.id);
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
		do_attach(c, &m->attach);
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
	default:
		reply_error(c, m->hdr.id, -EBADMSG, "not a request");
		break;
	}
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

	/* Bounded per wakeup, and not past a full reply queue. */
	for (int i = 0; i < 32 && !c->closing && STAILQ_EMPTY(&c->outq); i++) {
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
			reply_error(c, 0, (int)n, n == -EPROTO ?
				    "control protocol version mismatch" :
				    "invalid message");
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
	if (c->att != NULL) {
		log_debug("stream %u: pid %d detached", stream_id(c->att),
			  (int)c->pid);
		stream_detach(c->att, c->slot);
		c->att = NULL;
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

static void
accept_one(int fd)
{
	struct ucred cred;
	struct conn *c;

	if (!peer_ok(fd, &cred)) {
		log_warnx("refused a connection from uid %u pid %d",
			  (unsigned)cred.uid, (int)cred.pid);
		close(fd);
		return;
	}
	if (nconns >= BROKER_MAX_CONNS) {
		log_warnx("too many connections (%u), refusing pid %d",
			  nconns, (int)cred.pid);
		close(fd);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		close(fd);
		return;
	}
	ev_init(&c->ev);
	c->pid = cred.pid;
	c->uid = cred.uid;
	c->slot = -1;
	STAILQ_INIT(&c->outq);
	if (ev_add(&c->ev, fd, EPOLLIN, on_conn, c) < 0) {
		close(fd);
		free(c);
		return;
	}
	TAILQ_INSERT_TAIL(&conns, c, entry);
	nconns++;
	log_debug("connection from pid %d", (int)cred.pid);
}

static void
on_listen(struct ev *ev, uint32_t events)
{
	int fd;

	(void)events;
	for (int i = 0; i < 64; i++) {
		fd = accept4(ev->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd >= 0) {
			accept_one(fd);
			continue;
		}
		if (errno == EINTR || errno == ECONNABORTED)
			continue;
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
 * leftover of a broker that died, and is removed. */
static int
check_existing(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct stat st;
	int fd, ret;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode)) {
		log_error("%s exists and is not a socket", path);
		return -EEXIST;
	}
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	memcpy(sun.sun_path, path, strlen(path) + 1);
	ret = connect(fd, (struct sockaddr *)&sun, sizeof(sun));
	close(fd);
	if (ret == 0) {
		log_error("a broker is already running on %s", path);
		return -EADDRINUSE;
	}
	log_info("removing stale socket %s", path);
	if (unlink(path) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

int
control_listen(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	mode_t old;
	int fd, ret;

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
	ev_init(&listen_ev);
	ret = ev_add(&listen_ev, fd, EPOLLIN, on_listen, NULL);
	if (ret < 0) {
		unlink(path);
		listen_path[0] = '\0';
		goto fail;
	}
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

	while ((c = TAILQ_FIRST(&conns)) != NULL)
		conn_close(c);
}

unsigned
control_conn_count(void)
{
	return nconns;
}
