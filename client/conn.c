/*
 * conn.c - the control connection: connect (with autostart), requests and
 * replies, and the admin calls (open, list, close, kill).
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "internal.h"
#include "rundir.h"

/* Why the last shmdemux_connect() of this thread failed, when the library
 * has more to say than its code. */
static __thread char connect_err[CTL_MSG_LEN + PATH_MAX];

const char *
shmdemux_connect_error(void)
{
	return connect_err;
}

/* Whoever listens on the socket gets our requests, paths and fds, and
 * hands back the fds we map: it must be our own user's process, or root's.
 * Checked before the first byte is sent (SO_PEERCRED: the credentials of
 * the process that called listen()). */
static int
peer_check(int fd, const char *path)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
		snprintf(connect_err, sizeof(connect_err), "cannot tell who "
			 "listens on %s: %s", path, strerror(errno));
		return SHMDEMUX_EUNTRUSTED;
	}
	if (cred.uid == geteuid() || cred.uid == 0)
		return 0;
	snprintf(connect_err, sizeof(connect_err), "the socket %s is served "
		 "by uid %u (pid %d), not by your uid %u or root: refusing to "
		 "talk to it (another user's process may have taken the "
		 "path)", path, (unsigned)cred.uid, (int)cred.pid, (unsigned)geteuid());
	return SHMDEMUX_EUNTRUSTED;
}

static int
sock_connect(const char *path)
{
	struct sockaddr_un sun;
	int fd, ret;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path))
		return -ENAMETOOLONG;
	strcpy(sun.sun_path, path);

	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	do {
		ret = connect(fd, (struct sockaddr *)&sun, sizeof(sun));
	} while (ret < 0 && errno == EINTR);
	if (ret < 0) {
		ret = -errno;
		close(fd);
		return ret;
	}
	if ((ret = peer_check(fd, path)) < 0) {
		close(fd);
		return ret;
	}
	return fd;
}

int
conn_open(shmdemux_conn **out, const char *path)
{
	shmdemux_conn *c;
	int fd;

	*out = NULL;
	connect_err[0] = '\0';
	if (strlen(path) >= sizeof(c->path))
		return -ENAMETOOLONG;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return -ENOMEM;
	fd = sock_connect(path);
	if (fd < 0) {
		free(c);
		return fd;
	}
	c->fd = fd;
	c->next_id = 1;
	strcpy(c->path, path);
	*out = c;
	return 0;
}

int
shmdemux_connect(shmdemux_conn **conn, const char *socket_path,
		 unsigned flags)
{
	char def[PATH_MAX], dir[PATH_MAX];
	int ret;

	*conn = NULL;
	connect_err[0] = '\0';
	if (flags & ~SHMDEMUX_CONNECT_AUTOSTART)
		return -EINVAL;
	if (socket_path == NULL) {
		ret = rundir_default_socket(def, sizeof(def));
		if (ret < 0)
			return ret;
		socket_path = def;
	}
	/* The default directory must be private before anything in it is
	 * trusted, a broker started there included; missing is fine: the
	 * broker makes it. */
	if (rundir_holds(socket_path) && rundir_path(dir, sizeof(dir)) == 0) {
		ret = rundir_check(dir, 0, connect_err, sizeof(connect_err));
		if (ret == -EPERM)
			return SHMDEMUX_EUNTRUSTED;
		if (ret < 0 && ret != -ENOENT)
			return ret;
		connect_err[0] = '\0';
	}
	ret = conn_open(conn, socket_path);
	if ((ret == -ENOENT || ret == -ECONNREFUSED) &&
	    (flags & SHMDEMUX_CONNECT_AUTOSTART)) {
		/* A broker that lost a start race against another client
		 * exits non-zero; the winner listens all the same, so the
		 * connect decides, not the start. */
		char why[sizeof(connect_err)] = "";
		int st = autostart_broker(socket_path, why, sizeof(why));

		ret = conn_open(conn, socket_path);
		if (ret < 0 && st < 0) {
			ret = st;
			strlcpy(connect_err, why, sizeof(connect_err));
		}
		if (ret == 0 && st == 0)
			(*conn)->autostarted = 1;
	}
	return ret;
}

void
shmdemux_disconnect(shmdemux_conn **conn)
{
	if (conn == NULL || *conn == NULL)
		return;
	close((*conn)->fd);
	free(*conn);
	*conn = NULL;
}

const char *
shmdemux_conn_last_error(const shmdemux_conn *conn)
{
	return conn->last_error;
}

const char *
shmdemux_conn_socket_path(const shmdemux_conn *conn)
{
	return conn->path;
}

static void
close_fds(int *fds, int n)
{
	for (int i = 0; i < n; i++) {
		if (fds[i] >= 0)
			close(fds[i]);
		fds[i] = -1;
	}
}

/* An ERROR that answers no request (id 0) and is not about a message the
 * broker could not read: the broker turned this connection away at accept
 * (proto.h). Its reason goes to last_error. */
static int
refusal(shmdemux_conn *c, const void *msg)
{
	const struct ctl_error *e = msg;

	if (e->hdr.type != CTL_ERROR || e->hdr.id != 0 ||
	    e->code == -EBADMSG || e->code == -EMSGSIZE || e->code == -EPROTO)
		return 0;
	/* ctl_recv() checked that msg holds a NUL */
	strlcpy(c->last_error, "broker refused the connection: ",
		sizeof(c->last_error));
	strlcat(c->last_error, e->msg, sizeof(c->last_error));
	return 1;
}

/* The connection failed under a request: the send with EPIPE, the
 * receive with ECONNRESET or EOF. A broker that turned it away at accept
 * left its reason in the socket, behind the reset when our request went
 * unread: read on, never waiting, before calling the broker gone. buf
 * holds CTL_MAX_MSG bytes. */
static int
broker_lost(shmdemux_conn *c, void *buf)
{
	int fds[CTL_MAX_FDS], nfds;
	ssize_t n;

	for (int i = 0; i < 4; i++) {
		struct pollfd p = { .fd = c->fd, .events = POLLIN };

		if (poll(&p, 1, 0) != 1)
			break;
		n = ctl_recv(c->fd, buf, fds, &nfds);
		close_fds(fds, CTL_MAX_FDS);
		if (n == -ECONNRESET || n == -EINTR)
			continue;
		if (n <= 0)
			break;
		if (refusal(c, buf))
			return SHMDEMUX_EREFUSED;
	}
	return SHMDEMUX_EBROKER;
}

int
conn_recv(shmdemux_conn *c, void *reply, int *rfds, int *nrfds)
{
	int fds[CTL_MAX_FDS] = { -1, -1, -1 }, nfds = 0;
	const struct ctl_hdr *h = reply;
	ssize_t n;

	n = ctl_recv(c->fd, reply, fds, &nfds);
	if (n == 0 || n == -ECONNRESET || n == -EPIPE)
		return broker_lost(c, reply);
	if (n == -EPROTO) {
		/* A broker of another version: it answered in its own. */
		snprintf(c->last_error, sizeof(c->last_error), "the broker "
			 "speaks control protocol version %d, this library "
			 "(%s) version %u: restart the broker after an "
			 "upgrade, or use the client installed with it",
			 ctl_peer_version(reply, sizeof(struct ctl_hdr)),
			 shmdemux_version(), CTL_VERSION);
		return SHMDEMUX_EABI;
	}
	if (n < 0)
		return (int)n;
	if (h->id != c->next_id - 1) {
		close_fds(fds, CTL_MAX_FDS);
		return refusal(c, reply) ? SHMDEMUX_EREFUSED : -EBADMSG;
	}
	if (h->type == CTL_ERROR) {
		const struct ctl_error *e = reply;
		int code = e->code;

		close_fds(fds, CTL_MAX_FDS);
		strlcpy(c->last_error, e->msg, sizeof(c->last_error));
		/* Only errno values and our own codes are meaningful; a code
		 * outside both would be mistaken for success or garbage. */
		if (!(code < 0 && code >= -4095) &&
		    !(code <= SHMDEMUX_EOF && code >= SHMDEMUX_EBROKER))
			code = -EPROTO;
		return code;
	}
	if (rfds != NULL) {
		memcpy(rfds, fds, sizeof(fds));
		*nrfds = nfds;
	} else {
		close_fds(fds, CTL_MAX_FDS);
	}
	return h->type;
}

int
conn_request(shmdemux_conn *c, void *req, uint16_t type, const int *fds,
	     int nfds, void *reply, int *rfds, int *nrfds)
{
	int ret;

	c->last_error[0] = '\0';
	if (c->next_id == 0)	/* id 0 answers no request (proto.h) */
		c->next_id = 1;
	ctl_hdr_init(req, type, c->next_id++);
	ret = ctl_send(c->fd, req, ctl_msg_size(type), fds, nfds);
	if (ret == -EPIPE || ret == -ECONNRESET || ret == -ENOTCONN)
		return broker_lost(c, reply);
	if (ret < 0)
		return ret;
	return conn_recv(c, reply, rfds, nrfds);
}

int
conn_broker_gone(const shmdemux_conn *c)
{
	struct pollfd p = { .fd = c->fd, .events = POLLIN };
	char b;

	if (poll(&p, 1, 0) <= 0)
		return 0;
	if (p.revents & (POLLHUP | POLLERR | POLLNVAL))
		return 1;
	/* Readable: EOF means the broker went away; a stray message is left
	 * for nobody and does not mean anything here. */
	return recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

/* ---- open ---- */

void
shmdemux_open_opts_init(struct shmdemux_open_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->mode = SHMDEMUX_MODE_LOSSLESS;
	o->wait_consumers = SHMDEMUX_WAIT_DEFAULT;
}

static int
copy_str(char *dst, size_t cap, const char *s)
{
	if (s == NULL) {
		dst[0] = '\0';
		return 0;
	}
	if (strlcpy(dst, s, cap) >= cap)
		return -EINVAL;
	return 0;
}

static int
pack_opts(struct ctl_open *m, const char *const *list)
{
	size_t used = 0;

	for (; list != NULL && *list != NULL; list++) {
		size_t n = strlen(*list) + 1;

		if (strchr(*list, '=') == NULL || **list == '=')
			return -EINVAL;
		if (n > sizeof(m->opts) - used)
			return -EINVAL;
		memcpy(m->opts + used, *list, n);
		used += n;
	}
	m->opts_len = (uint32_t)used;
	return 0;
}

static int
fill_open(struct ctl_open *m, uint32_t source, const char *path,
	  const struct shmdemux_open_opts *o)
{
	struct shmdemux_open_opts def;
	int ret;

	if (o == NULL) {
		shmdemux_open_opts_init(&def);
		o = &def;
	}
	if (o->mode != SHMDEMUX_MODE_LOSSLESS && o->mode != SHMDEMUX_MODE_LIVE)
		return -EINVAL;
	if (o->probesize < 0 || o->analyzeduration < 0)
		return -EINVAL;
	memset(m, 0, sizeof(*m));
	m->source = source;
	m->mode = (uint32_t)o->mode;
	m->ring_size = o->ring_size;
	m->wait_consumers = o->wait_consumers;
	m->lag_timeout_ms = o->lag_timeout_ms;
	m->probesize = o->probesize;
	m->analyzeduration = o->analyzeduration;
	m->flags = (o->realtime ? CTL_OPEN_REALTIME : 0) |
	    (o->noseek ? CTL_OPEN_NOSEEK : 0) |
	    (o->decode_strict ? CTL_OPEN_DECODE_STRICT : 0);
	m->mem_limit = o->mem_limit;
	m->spool_limit = o->spool_limit;
	m->watchdog_ms = o->watchdog_ms;
	m->decode = o->decode & (CTL_DECODE_VIDEO | CTL_DECODE_AUDIO);
	m->decode_threads = o->decode_threads;
	if (source != CTL_SRC_PATH)
		path = o->label != NULL ? o->label :
		    source == CTL_SRC_FD ? "fd" : "push";
	if (strlen(path) >= sizeof(m->path))
		return -ENAMETOOLONG;
	strcpy(m->path, path);
	if ((ret = copy_str(m->name, sizeof(m->name), o->name)) < 0 ||
	    (ret = copy_str(m->format, sizeof(m->format), o->format)) < 0 ||
	    (ret = copy_str(m->format_whitelist, sizeof(m->format_whitelist),
			    o->format_whitelist)) < 0)
		return ret;
	return pack_opts(m, o->demux_opts);
}

static int
do_open(shmdemux_conn *c, uint32_t source, const char *path, int fd,
	const struct shmdemux_open_opts *o, uint32_t *id, int *push_fd)
{
	struct ctl_open *m;
	union ctl_msg *reply;
	int rfds[CTL_MAX_FDS], nr = 0, ret;

	m = malloc(sizeof(*m));
	reply = malloc(CTL_MAX_MSG);
	if (m == NULL || reply == NULL) {
		ret = -ENOMEM;
		goto out;
	}
	ret = fill_open(m, source, path, o);
	if (ret < 0)
		goto out;
	ret = conn_request(c, m, CTL_OPEN, &fd, fd >= 0 ? 1 : 0, reply,
			   rfds, &nr);
	if (ret < 0)
		goto out;
	if (ret != CTL_OPENED ||
	    (push_fd != NULL && (nr < 1 || rfds[0] < 0))) {
		close_fds(rfds, nr);
		ret = -EBADMSG;
		goto out;
	}
	if (push_fd != NULL) {
		*push_fd = rfds[0];
		rfds[0] = -1;
	}
	close_fds(rfds, nr);
	*id = reply->opened.stream_id;
	ret = 0;
out:
	free(m);
	free(reply);
	return ret;
}

int
shmdemux_open_path(shmdemux_conn *conn, const char *path,
		   const struct shmdemux_open_opts *opts, uint32_t *stream_id)
{
	if (path == NULL || *path == '\0')
		return -EINVAL;
	return do_open(conn, CTL_SRC_PATH, path, -1, opts, stream_id, NULL);
}

int
shmdemux_open_fd(shmdemux_conn *conn, int fd,
		 const struct shmdemux_open_opts *opts, uint32_t *stream_id)
{
	if (fd < 0)
		return -EBADF;
	return do_open(conn, CTL_SRC_FD, NULL, fd, opts, stream_id, NULL);
}

int
shmdemux_open_push(shmdemux_conn *conn, const struct shmdemux_open_opts *opts,
		   uint32_t *stream_id, int *push_fd)
{
	return do_open(conn, CTL_SRC_PUSH, NULL, -1, opts, stream_id, push_fd);
}

/* ---- admin ---- */

static void
info_from_msg(struct shmdemux_stream_info *i, const struct ctl_stream_info *m)
{
	memset(i, 0, sizeof(*i));
	i->id = m->stream_id;
	i->state = (int)m->state;
	i->end_reason = (int)m->end_reason;
	i->exit_code = m->end_exit_code;
	i->signal = m->end_signal;
	i->worker_pid = m->worker_pid;
	i->mode = (int)m->mode;
	i->tracks = m->tracks;
	i->consumers = m->consumers;
	i->fill_permille = m->fill_permille;
	i->packets = m->packets;
	i->bytes = m->bytes;
	i->input_bytes = m->input_bytes;
	i->drops = m->drops;
	i->uptime_ms = m->uptime_ms;
	i->ring_size = m->ring_size;
	i->flags = m->flags & (CTL_INFO_REAPED | CTL_INFO_RELEASED);
	i->frames = m->frames;
	i->lag_bytes = m->lag_bytes;
	i->worker_cpu_ms = m->worker_cpu_ms;
	i->worker_rss = m->worker_rss;
	i->ended_ago_ms = m->ended_ago_ms;
	/* ctl_validate() checked name; the others are NUL-forced here. */
	strlcpy(i->name, m->name, sizeof(i->name));
	memcpy(i->source, m->source, sizeof(i->source) - 1);
	memcpy(i->end_msg, m->end_msg, sizeof(i->end_msg) - 1);
}

int
shmdemux_list(shmdemux_conn *conn,
	      int (*cb)(const struct shmdemux_stream_info *, void *), void *ctx)
{
	return shmdemux_list_flags(conn, 0, cb, ctx);
}

int
shmdemux_list_flags(shmdemux_conn *conn, unsigned flags,
		    int (*cb)(const struct shmdemux_stream_info *, void *),
		    void *ctx)
{
	struct ctl_list req;
	struct shmdemux_stream_info info;
	union ctl_msg *reply;
	int ret, stop = 0;

	if (flags & ~(unsigned)SHMDEMUX_LIST_ENDED)
		return -EINVAL;
	memset(&req, 0, sizeof(req));
	req.flags = flags & SHMDEMUX_LIST_ENDED ? CTL_LIST_ENDED : 0;
	reply = malloc(CTL_MAX_MSG);
	if (reply == NULL)
		return -ENOMEM;
	ret = conn_request(conn, &req, CTL_LIST, NULL, 0, reply, NULL, NULL);
	while (ret == CTL_STREAM_INFO) {
		if (stop == 0) {
			info_from_msg(&info, &reply->info);
			stop = cb(&info, ctx);
		}
		ret = conn_recv(conn, reply, NULL, NULL);
	}
	if (ret == CTL_LIST_END)
		ret = stop;
	else if (ret > 0)
		ret = -EBADMSG;
	free(reply);
	return ret;
}

int
shmdemux_conn_autostarted(const shmdemux_conn *conn)
{
	return conn->autostarted;
}

int
shmdemux_broker_quit_idle(shmdemux_conn *conn)
{
	struct ctl_quit_idle req;
	union ctl_msg *reply;
	int ret;

	memset(&req, 0, sizeof(req));
	reply = malloc(CTL_MAX_MSG);
	if (reply == NULL)
		return -ENOMEM;
	ret = conn_request(conn, &req, CTL_QUIT_IDLE, NULL, 0, reply, NULL,
			   NULL);
	if (ret > 0)
		ret = ret == CTL_OK ? 0 : -EBADMSG;
	free(reply);
	return ret;
}

static int
stop_stream(shmdemux_conn *c, uint16_t type, uint32_t id, const char *name)
{
	struct ctl_close req;
	union ctl_msg *reply;
	int ret;

	memset(&req, 0, sizeof(req));
	if (name != NULL) {
		if (*name == '\0' || copy_str(req.ref.name,
		    sizeof(req.ref.name), name) < 0)
			return -EINVAL;
	} else {
		req.ref.stream_id = id;
	}
	reply = malloc(CTL_MAX_MSG);
	if (reply == NULL)
		return -ENOMEM;
	ret = conn_request(c, &req, type, NULL, 0, reply, NULL, NULL);
	if (ret > 0)
		ret = ret == CTL_OK ? 0 : -EBADMSG;
	free(reply);
	return ret;
}

/* Close the pipe first: the broker lets the worker see EOF as soon as it
 * has our verdict, and the worker must not wait for a writer still open. */
static int
push_finish(shmdemux_conn *c, uint32_t id, int *push_fd, int error)
{
	struct ctl_push_end req;
	union ctl_msg *reply;
	int ret;

	if (push_fd != NULL && *push_fd >= 0) {
		close(*push_fd);
		*push_fd = -1;
	}
	memset(&req, 0, sizeof(req));
	req.stream_id = id;
	req.error = error;
	reply = malloc(CTL_MAX_MSG);
	if (reply == NULL)
		return -ENOMEM;
	ret = conn_request(c, &req, CTL_PUSH_END, NULL, 0, reply, NULL, NULL);
	if (ret > 0)
		ret = ret == CTL_OK ? 0 : -EBADMSG;
	free(reply);
	return ret;
}

int
shmdemux_push_end(shmdemux_conn *conn, uint32_t stream_id, int *push_fd)
{
	return push_finish(conn, stream_id, push_fd, 0);
}

int
shmdemux_push_abort(shmdemux_conn *conn, uint32_t stream_id, int *push_fd,
		    int error)
{
	if (error <= 0 || error > 4095)
		error = EIO;
	return push_finish(conn, stream_id, push_fd, error);
}

int
shmdemux_close_stream(shmdemux_conn *conn, uint32_t id, const char *name)
{
	return stop_stream(conn, CTL_CLOSE, id, name);
}

int
shmdemux_kill_stream(shmdemux_conn *conn, uint32_t id, const char *name)
{
	return stop_stream(conn, CTL_KILL, id, name);
}
