/*
 * broker_testlib.c - see broker_testlib.h.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "broker_testlib.h"
#include "media.h"
#include "pktcsv.h"

static const char *daemon_path;
static char dir[64];
static pid_t brokers[TL_MAX_BROKERS];
static char shm_before[8192];
static pid_t self;

static void
list_shm(char *buf, size_t cap)
{
	DIR *d = opendir("/dev/shm");
	struct dirent *e;
	size_t n = 0;

	buf[0] = '\0';
	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		int w = snprintf(buf + n, cap - n, "%s\n", e->d_name);

		if (w < 0 || (size_t)w >= cap - n)
			break;
		n += (size_t)w;
	}
	closedir(d);
}

/* Names sorted would be nicer; readdir order is stable for an unchanged
 * directory, which is what is checked. */
void
tl_check_shm(void)
{
	char now[sizeof(shm_before)];

	list_shm(now, sizeof(now));
	if (strcmp(now, shm_before) != 0) {
		fprintf(stderr, "/dev/shm changed:\nbefore:\n%safter:\n%s",
			shm_before, now);
		exit(1);
	}
}

static int
rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP)
		rmdir(p);
	else
		unlink(p);
	return 0;
}

/* Depth first, not following links: tests make nested directories and
 * symbolic links to places outside. */
static void
rm_dir(void)
{
	if (dir[0] != '\0')
		nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int
tl_children(pid_t pid, pid_t *out, int max)
{
	char path[64];
	FILE *f;
	int n = 0, kid;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)pid,
		 (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return -errno;
	while (n < max && fscanf(f, "%d", &kid) == 1)
		out[n++] = kid;
	fclose(f);
	return n;
}

size_t
tl_cmdline(pid_t pid, char *buf, size_t cap)
{
	char path[64];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, cap);
	close(fd);
	return n > 0 ? (size_t)n : 0;
}

int
tl_argv_ends(pid_t pid, const char *tail)
{
	char buf[4096];
	size_t t = strlen(tail) + 1, n = tl_cmdline(pid, buf, sizeof(buf));

	return n >= t && memcmp(buf + n - t, tail, t) == 0;
}

int
tl_in_recvmsg(pid_t pid)
{
	char path[64], buf[64];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/syscall", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	return atoi(buf) == SYS_recvmsg;
}

/* A child of the broker's with argv `WORKER --fork-server` in session
 * sid, blocked in recvmsg, then two LIST round trips (the words it sent
 * before it blocked are read by the broker in the batch that reads our
 * first request). */
static pid_t
fork_child(const struct tl_broker *b, pid_t sid, int timeout_ms)
{
	struct ctl_stream_info info;
	pid_t kids[64];

	for (int t = 0; t < timeout_ms; t += 2) {
		int n = tl_children(b->pid, kids, 64);

		for (int i = 0; i < n; i++) {
			if (getsid(kids[i]) != (sid ? sid : kids[i]) ||
			    (sid != 0 && kids[i] == sid) ||
			    !tl_argv_ends(kids[i], "--fork-server") ||
			    !tl_in_recvmsg(kids[i]))
				continue;
			(void)tl_info(b->sock, 0, &info);
			(void)tl_info(b->sock, 0, &info);
			return kids[i];
		}
		poll(NULL, 0, 2);
	}
	return -1;
}

pid_t
tl_fork_server(const struct tl_broker *b, int timeout_ms)
{
	return fork_child(b, 0, timeout_ms);
}

pid_t
tl_fork_waiting(const struct tl_broker *b, pid_t server, int timeout_ms)
{
	return fork_child(b, server, timeout_ms);
}

/* SIGKILL every child still running: a feeder a failed check left waiting
 * on its gate would otherwise block the reaping below forever. */
static void
kill_children(void)
{
	pid_t kids[256];
	int n = tl_children(self, kids, 256);

	for (int i = 0; i < n; i++)
		kill(kids[i], SIGKILL);
}

/* Kill what we started, reap every child (orphaned workers included: we are
 * their subreaper), remove the directory. */
static void
cleanup(void)
{
	if (getpid() != self)
		return;
	for (int i = 0; i < TL_MAX_BROKERS; i++)
		if (brokers[i] > 0)
			kill(brokers[i], SIGKILL);
	kill_children();
	/* Workers die with their broker (PR_SET_PDEATHSIG). */
	while (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
		;
	rm_dir();
}

static void
on_fatal(int sig)
{
	static const char msg[] = "test: killed by a signal or timed out\n";

	(void)!write(2, msg, sizeof(msg) - 1);
	signal(sig, SIG_DFL);
	cleanup();
	_exit(1);
}

void
tl_init(const char *shmdemuxd, unsigned timeout_s)
{
	self = getpid();
	daemon_path = shmdemuxd;
	if (access(shmdemuxd, X_OK) < 0) {
		fprintf(stderr, "FAIL: cannot execute %s\n", shmdemuxd);
		exit(1);
	}
	CHECK(prctl(PR_SET_CHILD_SUBREAPER, 1) == 0);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGALRM, on_fatal);
	signal(SIGINT, on_fatal);
	signal(SIGTERM, on_fatal);
	alarm(timeout_s);
	snprintf(dir, sizeof(dir), "/tmp/shmdemuxd-test.XXXXXX");
	CHECK(mkdtemp(dir) != NULL);
	atexit(cleanup);
	list_shm(shm_before, sizeof(shm_before));
}

void
tl_media_path(char *out, size_t cap, const char *media, const char *name)
{
	int n = snprintf(out, cap, "%s/%s", media, name);

	CHECK(n > 0 && (size_t)n < cap);
	if (access(out, R_OK) < 0) {
		fprintf(stderr, "FAIL: %s: %s (the media_generate test, or "
			"tests/media/gen.sh %s, makes it)\n", out,
			strerror(errno), media);
		exit(1);
	}
}

static int
is_dir(const char *path)
{
	struct stat st;

	return path != NULL && path[0] != '\0' && stat(path, &st) == 0 &&
	       S_ISDIR(st.st_mode);
}

const char *
tl_corpus(void)
{
	const char *d = getenv("SHMDEMUX_CORPUS");

	if (d != NULL && d[0] != '\0') {
		if (!is_dir(d)) {
			fprintf(stderr, "FAIL: SHMDEMUX_CORPUS=%s is not a "
				"directory\n", d);
			exit(1);
		}
		return d;
	}
	d = getenv("SHMDEMUX_CORPUS_DEFAULT");
	return is_dir(d) ? d : NULL;
}

const char *
tl_dir(void)
{
	return dir;
}

static void
track_broker(pid_t pid, int add)
{
	for (int i = 0; i < TL_MAX_BROKERS; i++) {
		if (add && brokers[i] <= 0) {
			brokers[i] = pid;
			return;
		}
		if (!add && brokers[i] == pid) {
			brokers[i] = 0;
			return;
		}
	}
}

int
tl_wait_child(pid_t pid, int timeout_ms)
{
	int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
	struct pollfd p;
	int st;

	if (pfd < 0)
		return -1;
	p.fd = pfd;
	p.events = POLLIN;
	while (poll(&p, 1, timeout_ms) < 0 && errno == EINTR)
		;
	close(pfd);
	if (!(p.revents & POLLIN))
		return -1;
	while (waitpid(pid, &st, 0) < 0) {
		if (errno != EINTR)
			return -1;
	}
	track_broker(pid, 0);
	return st;
}

static struct rlimit broker_nofile;

void
tl_broker_nofile(unsigned long soft, unsigned long hard)
{
	broker_nofile.rlim_cur = soft;
	broker_nofile.rlim_max = hard;
}

static pid_t
run(const char *bin, const char *const *argv, const char *worker, int errfd)
{
	pid_t pid = fork();

	CHECK(pid >= 0);
	if (pid == 0) {
		if (broker_nofile.rlim_max != 0 &&
		    setrlimit(RLIMIT_NOFILE, &broker_nofile) < 0)
			_exit(126);
		if (worker != NULL)
			setenv("SHMDEMUX_WORKER", worker, 1);
		if (errfd >= 0)
			dup2(errfd, 2);
		execv(bin, (char **)argv);
		_exit(127);
	}
	return pid;
}

int
tl_broker_start(struct tl_broker *b, const char *name, const char *worker,
		const char *const *args)
{
	return tl_broker_start_err(b, name, worker, args, -1);
}

int
tl_broker_start_err(struct tl_broker *b, const char *name, const char *worker,
		    const char *const *args, int errfd)
{
	const char *argv[32];
	int n = 0, st;
	pid_t pid;
	FILE *f;

	memset(b, 0, sizeof(*b));
	snprintf(b->sock, sizeof(b->sock), "%s/%s", dir, name);
	snprintf(b->pidfile, sizeof(b->pidfile), "%s.pid", b->sock);
	argv[n++] = daemon_path;
	argv[n++] = "--daemon";
	argv[n++] = "--socket";
	argv[n++] = b->sock;
	for (int i = 0; args != NULL && args[i] != NULL && n < 30; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	pid = run(daemon_path, argv, worker, errfd);
	st = tl_wait_child(pid, 10000);
	if (st < 0 || !WIFEXITED(st))
		return -1;
	if (WEXITSTATUS(st) != 0)
		return WEXITSTATUS(st);
	f = fopen(b->pidfile, "r");
	CHECK(f != NULL);
	CHECK(fscanf(f, "%d", &b->pid) == 1);
	fclose(f);
	track_broker(b->pid, 1);
	return 0;
}

int
tl_run_capture(const char *bin, const char *const *args, char *err,
	       size_t cap)
{
	const char *argv[32];
	int p[2], n = 0, st;
	size_t got = 0;
	ssize_t r;
	pid_t pid;

	argv[n++] = bin;
	for (int i = 0; args[i] != NULL && n < 30; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	CHECK(pipe2(p, O_CLOEXEC) == 0);
	pid = run(bin, argv, NULL, p[1]);
	close(p[1]);
	while (got + 1 < cap && (r = read(p[0], err + got, cap - 1 - got)) > 0)
		got += (size_t)r;
	err[got] = '\0';
	close(p[0]);
	st = tl_wait_child(pid, 10000);
	if (st < 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return -1;
	}
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int
tl_run_broker(const char *const *args, char *err, size_t cap)
{
	return tl_run_capture(daemon_path, args, err, cap);
}

void
tl_let_faults_through(void)
{
	const char *asan = getenv("ASAN_OPTIONS");
	char opts[512];

	snprintf(opts, sizeof(opts), "%s%shandle_segv=0:handle_abort=0",
		 asan != NULL ? asan : "",
		 asan != NULL && asan[0] != '\0' ? ":" : "");
	setenv("ASAN_OPTIONS", opts, 1);
}

int
tl_broker_stop(struct tl_broker *b)
{
	int st;

	if (kill(b->pid, SIGTERM) < 0)
		return -1;
	/* generous: a sanitizer build's leak check at exit is slow on a
	 * loaded machine */
	st = tl_wait_child(b->pid, 40000);
	if (st < 0)
		return -1;
	track_broker(b->pid, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int
tl_count_fds(pid_t pid)
{
	char p[64];
	DIR *d;
	struct dirent *e;
	int n = 0;

	snprintf(p, sizeof(p), "/proc/%d/fd", (int)pid);
	d = opendir(p);
	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/* ---- protocol ---- */

int
tl_connect(const char *sock)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	CHECK(fd >= 0);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", sock);
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		close(fd);
		return -errno;
	}
	return fd;
}

ssize_t
tl_recv(int fd, union ctl_msg *rep, int *fds, int *nfds)
{
	union {
		union ctl_msg m;
		char raw[CTL_MAX_MSG];
	} buf;
	ssize_t r = ctl_recv(fd, &buf, fds, nfds);

	/* Only the bytes received are copied; the rest of rep is zero, so
	 * no field of it is ever indeterminate, whatever the reply. */
	memset(rep, 0, sizeof(*rep));
	if (r > 0)
		memcpy(rep, &buf, (size_t)r < sizeof(*rep) ? (size_t)r :
		       sizeof(*rep));
	return r;
}

int
tl_request(int fd, const void *msg, size_t len, const int *fds, int nfds,
	   union ctl_msg *rep, int *rfds)
{
	int tmp[CTL_MAX_FDS], n, ret;
	ssize_t r;

	memset(rep, 0, sizeof(*rep)); /* on the failure paths too */
	ret = ctl_send(fd, msg, len, fds, nfds);
	if (ret < 0)
		return ret;
	r = tl_recv(fd, rep, rfds != NULL ? rfds : tmp, &n);
	if (rfds == NULL)
		for (int i = 0; i < n; i++)
			close(tmp[i]);
	if (r < 0)
		return (int)r;
	if (r == 0)
		return -ECONNRESET;
	return rep->hdr.type;
}

void
tl_open_init(struct ctl_open *o, uint32_t source, const char *path,
	     const char *format)
{
	memset(o, 0, sizeof(*o));
	ctl_hdr_init(&o->hdr, CTL_OPEN, 7);
	o->source = source;
	o->mode = RING_MODE_LOSSLESS;
	o->wait_consumers = UINT32_MAX;
	snprintf(o->path, sizeof(o->path), "%s", path != NULL ? path : "");
	snprintf(o->format, sizeof(o->format), "%s",
		 format != NULL ? format : "");
}

int
tl_open(int fd, const struct ctl_open *o, int in_fd, int *push_wr, char *err,
	size_t cap)
{
	union ctl_msg rep;
	int rfds[CTL_MAX_FDS], t;

	t = tl_request(fd, o, sizeof(*o), &in_fd, in_fd >= 0 ? 1 : 0, &rep,
		       rfds);
	if (t < 0)
		return t;
	if (t == CTL_ERROR) {
		if (err != NULL)
			snprintf(err, cap, "%s", rep.error.msg);
		return rep.error.code < 0 ? rep.error.code : -EPROTO;
	}
	CHECK(t == CTL_OPENED);
	CHECK(rep.hdr.id == o->hdr.id);
	if (push_wr != NULL)
		*push_wr = rfds[0];
	else if (rfds[0] >= 0)
		close(rfds[0]);
	return (int)rep.opened.stream_id;
}

int
tl_list(int fd, struct ctl_stream_info *out, int max)
{
	struct ctl_list l;
	union ctl_msg rep;
	int fds[CTL_MAX_FDS], nfds, n = 0;
	ssize_t r;

	memset(&l, 0, sizeof(l));
	ctl_hdr_init(&l.hdr, CTL_LIST, 9);
	r = ctl_send(fd, &l, sizeof(l), NULL, 0);
	if (r < 0)
		return (int)r;
	for (;;) {
		r = tl_recv(fd, &rep, fds, &nfds);
		if (r <= 0)
			return r < 0 ? (int)r : -ECONNRESET;
		CHECK(nfds == 0);
		if (rep.hdr.type == CTL_LIST_END) {
			CHECK(rep.list_end.count == (uint32_t)n ||
			      n == max);
			return n;
		}
		if (rep.hdr.type != CTL_STREAM_INFO)
			return -EPROTO;
		if (n < max)
			out[n++] = rep.info;
	}
}

int
tl_info(const char *sock, uint32_t id, struct ctl_stream_info *out)
{
	static struct ctl_stream_info all[64];
	int fd = tl_connect(sock), n, found = 0;

	CHECK(fd >= 0);
	n = tl_list(fd, all, 64);
	close(fd);
	CHECK(n >= 0);
	for (int i = 0; i < n; i++) {
		if (all[i].stream_id == id) {
			*out = all[i];
			found = 1;
		}
	}
	return found;
}

int
tl_simple(int fd, uint16_t type, uint32_t id)
{
	struct ctl_close c;
	union ctl_msg rep;
	int t;

	memset(&c, 0, sizeof(c));
	ctl_hdr_init(&c.hdr, type, 11);
	c.ref.stream_id = id;
	t = tl_request(fd, &c, sizeof(c), NULL, 0, &rep, NULL);
	if (t < 0)
		return t;
	if (t == CTL_OK)
		return 0;
	CHECK(t == CTL_ERROR);
	return rep.error.code;
}

int
tl_attach(int fd, uint32_t id, uint32_t flags, int fds[2],
	  struct ctl_attached *att)
{
	int all[CTL_MAX_FDS] = { -1, -1, -1 }, ret;

	ret = tl_attach_all(fd, id, flags, all, att);
	fds[0] = all[0];
	fds[1] = all[1];
	for (int i = 2; i < CTL_MAX_FDS; i++)
		if (all[i] >= 0)
			close(all[i]);
	return ret;
}

int
tl_attach_all(int fd, uint32_t id, uint32_t flags, int fds[CTL_MAX_FDS],
	      struct ctl_attached *att)
{
	struct ctl_attach a;
	union ctl_msg rep;
	int t;

	memset(&a, 0, sizeof(a));
	ctl_hdr_init(&a.hdr, CTL_ATTACH, 13);
	a.ref.stream_id = id;
	a.start = RING_START_OLDEST;
	a.flags = flags;
	t = tl_request(fd, &a, sizeof(a), NULL, 0, &rep, fds);
	if (t < 0)
		return t;
	if (t == CTL_ERROR)
		return rep.error.code;
	CHECK(t == CTL_ATTACHED);
	if (att != NULL)
		*att = rep.attached;
	return rep.attached.slot;
}

long
tl_consume(const char *sock, uint32_t id, int timeout_ms, tl_rec_fn fn,
	   void *arg)
{
	struct ring *r = NULL;
	struct ring_rd v;
	int fd, fds[2], slot, ret;
	long n = 0;
	uint64_t t0;

	fd = tl_connect(sock);
	CHECK(fd >= 0);
	slot = tl_attach(fd, id, 0, fds, NULL);
	if (slot < 0) {
		close(fd);
		return slot;
	}
	ret = ring_map(&r, fds[0], -1, RING_ROLE_CONSUMER);
	if (ret == 0)
		ret = ring_attach(r, fds[1], RING_START_OLDEST);
	close(fds[0]);
	close(fds[1]);
	t0 = now_ns();
	while (ret == 0) {
		ret = ring_next(r, &v, 100);
		if (ret == -EAGAIN) {
			if ((int64_t)((now_ns() - t0) / 1000000) > timeout_ms)
				break;
			ret = 0;
			continue;
		}
		if (ret < 0)
			break;
		if (fn != NULL)
			fn(&v, arg);
		ring_release(r, &v);
		n++;
	}
	ring_unmap(&r);
	close(fd);
	if (ret == -EPIPE)
		return n;
	return ret < 0 ? ret : -ETIMEDOUT;
}

void
tl_text_append(struct tl_text *t, const char *s, size_t n)
{
	if (t->len + n + 1 > t->cap) {
		t->cap = (t->len + n + 1) * 2;
		t->buf = realloc(t->buf, t->cap);
		CHECK(t->buf != NULL);
	}
	memcpy(t->buf + t->len, s, n);
	t->len += n;
	t->buf[t->len] = '\0';
}

void
tl_csv_record(const struct ring_rd *v, void *arg)
{
	struct sd_pkt_meta m;
	char line[SD_PKT_CSV_MAX + 1];
	int n;

	if (v->type != RING_REC_PACKET)
		return;
	CHECK(v->meta_len >= sizeof(m));
	memcpy(&m, v->meta, sizeof(m));
	n = sd_pkt_csv(line, sizeof(line) - 1, m.track, m.pts, m.dts,
		       m.duration, m.flags, v->payload, v->payload_len);
	CHECK(n > 0);
	line[n++] = '\n';
	tl_text_append(arg, line, (size_t)n);
}

void
tl_reference(const char *tool, const char *file, int piped,
	     struct tl_text *out)
{
	char cmd[2200], buf[65536];
	size_t n;
	FILE *p;

	snprintf(cmd, sizeof(cmd), piped ? "'%s' - < '%s'" : "'%s' '%s'",
		 tool, file);
	p = popen(cmd, "r");
	CHECK(p != NULL);
	while ((n = fread(buf, 1, sizeof(buf), p)) > 0)
		tl_text_append(out, buf, n);
	CHECK(pclose(p) == 0);
}

int
tl_feeder(const char *file, int *gate, pid_t *pid)
{
	int p[2], g[2] = { -1, -1 }, in;
	char buf[65536];
	ssize_t n;

	CHECK(pipe2(p, O_CLOEXEC) == 0);
	if (gate != NULL)
		CHECK(pipe2(g, O_CLOEXEC) == 0);
	*pid = fork();
	CHECK(*pid >= 0);
	if (*pid == 0) {
		if (gate != NULL && read(g[0], buf, 1) != 1)
			_exit(1);
		in = open(file, O_RDONLY);
		if (in < 0)
			_exit(1);
		while ((n = read(in, buf, sizeof(buf))) > 0)
			if (write(p[1], buf, (size_t)n) != n)
				_exit(1);
		_exit(n == 0 ? 0 : 1);
	}
	close(p[1]);
	if (gate != NULL) {
		close(g[0]);
		*gate = g[1];
	}
	return p[0];
}
