/*
 * stream_open.c - OPEN: the request checked (it comes from any local
 * user), a descriptor budget kept for control connections, the ring's
 * objects made (data segment, admin channel), the source set up
 * (stream_input.c) and the worker started, from the spare or spawned.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "ring_admin.h"
#include "spare.h"
#include "stream_internal.h"
#include "wlog.h"

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
	if (req->name[0] != '\0' && stream_find_name(req->name) != NULL) {
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

/* ---- descriptor limits ---- */

/* The most descriptors one OPEN holds at once while it is set up (source,
 * pipes, memfds, the read-only reopen, pidfd, timers, a spare's
 * replacement), what stays free for control connections, and what each
 * reader a stream waits for will hold once attached (its lifeline
 * connection and the duplicate of its wake pipe). */
#define STREAM_FDS_MAX  16u
#define STREAM_FDS_KEEP 16u
#define READER_FDS      2u

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

/* Room for one more stream's descriptors and its readers', with those
 * of the readers other streams still wait for, keeping STREAM_FDS_KEEP
 * for connections: admitted, a stream can be read by the readers it waits
 * for. 0, or -EMFILE with the reason in msg. Ended rings already read go
 * first (streams_release_spent()). */
static int
fd_room_left(int used, unsigned readers)
{
	if (used == -EMFILE || used == -ENFILE)
		return 0; /* not even one to count them with */
	return used < 0 || (uint64_t)used + STREAM_FDS_MAX + STREAM_FDS_KEEP +
	    (uint64_t)READER_FDS * readers <= conf.nofile;
}

static int
fd_room(uint32_t wait_consumers, char *msg, size_t cap)
{
	unsigned awaited = streams_readers_awaited();
	int used = broker_fds_in_use();

	if (fd_room_left(used, awaited + wait_consumers))
		return 0;
	streams_release_spent();
	awaited = streams_readers_awaited();
	used = broker_fds_in_use();
	if (fd_room_left(used, awaited + wait_consumers))
		return 0;
	if (used < 0)
		used = (int)conf.nofile;
	snprintf(msg, cap, "too many open files (fd limit %u): %d in use, "
		 "%u readers awaited need %u, this stream up to %u more and "
		 "its %" PRIu32 " readers %u, and %u stay free for control "
		 "connections", conf.nofile, used, awaited,
		 READER_FDS * awaited, STREAM_FDS_MAX, wait_consumers,
		 READER_FDS * wait_consumers, STREAM_FDS_KEEP);
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
void
stream_ring_close(struct stream *s)
{
	ev_del(&s->admin_ev);
	ring_unmap(&s->ring);
	close_fd(&s->data_fd);
	close_fd(&s->ro_data_fd);
	close_fd(&s->admin_fd);
	close_fd(&s->wadmin_fd);
}

/* ---- the worker ---- */

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
	int ready[2], ret;

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
		stream_watch_start(s, ready[0]);
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
		stream_set_ended(s, &end);
		return 0; /* the stream exists and says why it ended */
	}
	ret = stream_watch_worker(s, pid, req, input_fd);
	if (ret < 0)
		goto fail;
	stream_log(s, LOG_LVL_INFO, 0, "worker %d (%s) started for %s",
		   (int)pid, how, s->source);
	return 0;
fail:
	snprintf(msg, cap, "cannot watch the worker: %s", strerror(-ret));
	spawn_kill_reap(pid);
	return ret;
}

int
stream_open(const struct ctl_open *req, int req_fd, struct stream **out,
	    int *push_wr, char *msg, size_t cap)
{
	struct ring_params params;
	struct input in = { -1, 0, -1, -1, -1, -1 };
	struct stream *s = NULL;
	int ret;

	*out = NULL;
	*push_wr = -1;
	msg[0] = '\0';
	if (broker_stopping) {
		snprintf(msg, cap, "the broker is shutting down");
		ret = -ESHUTDOWN;
		goto out;
	}
	if (stream_count() >= BROKER_MAX_STREAMS) {
		snprintf(msg, cap, "too many streams (%u)", stream_count());
		ret = -EMFILE;
		goto out;
	}
	ret = validate(req, &params, msg, cap);
	if (ret < 0)
		goto out;
	ret = fd_room(params.wait_consumers, msg, cap);
	if (ret < 0)
		goto out;
	ret = stream_input_open(req, req_fd, &in, msg, cap);
	req_fd = -1; /* taken over */
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
	stream_input_start(s, &in, push_wr);
	stream_list_add(s);
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
	stream_input_close(&in);
	if (s != NULL)
		stream_free(s);
	return ret;
}
