/*
 * test_broker_streams.c - stream life cycles with a stand-in worker
 * (broker_fakechild): every way a worker can end and how LIST reports it,
 * the three kinds of source (file, passed fd, pushed bytes) and the pump,
 * KILL and CLOSE (with SIGKILL escalation), consumer slots, read-only data
 * fds, sealed segments, exec failure, and shutdown with running workers.
 *
 * usage: test_broker_streams SHMDEMUXD FAKECHILD
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "broker_testlib.h"

static struct tl_broker b;
static const char *fake;

static int
open_path(const char *path, const char *mode, uint32_t flags)
{
	struct ctl_open o;
	char err[CTL_MSG_LEN];
	int fd = tl_connect(b.sock), id;

	CHECK(fd >= 0);
	tl_open_init(&o, CTL_SRC_PATH, path, mode);
	o.flags = flags;
	id = tl_open(fd, &o, -1, NULL, err, sizeof(err));
	if (id < 0)
		fprintf(stderr, "open %s: %s\n", path, err);
	CHECK(id > 0);
	close(fd);
	return id;
}

/* Wait for the end, then return the LIST record. */
static struct ctl_stream_info
ended(uint32_t id)
{
	struct ctl_stream_info info;

	CHECK(tl_consume(b.sock, id, 10000, NULL, NULL) >= 0);
	CHECK(tl_info(b.sock, id, &info) == 1);
	CHECK(info.state == RING_STATE_ENDED);
	CHECK(info.worker_pid == 0);
	return info;
}

static void
test_endings(void)
{
	struct ctl_stream_info i;
	const char *file = "/etc/passwd";

	i = ended(open_path(file, "eof", 0));
	CHECK(i.end_reason == SD_END_EOF && i.end_exit_code == 0);
	CHECK(strcmp(i.source, file) == 0);

	i = ended(open_path(file, "crash", 0));
	CHECK(i.end_reason == SD_END_CRASHED && i.end_signal == SIGSEGV);
	CHECK(i.end_exit_code == -1);
	CHECK(strstr(i.end_msg, "SIGSEGV") != NULL);

	i = ended(open_path(file, "sigsys", 0));
	CHECK(i.end_reason == SD_END_SANDBOX && i.end_signal == SIGSYS);

	i = ended(open_path(file, "exit13", 0));
	CHECK(i.end_reason == SD_END_EXITED && i.end_exit_code == 13);

	/* The worker's message is kept, made one printable line. */
	i = ended(open_path(file, "openfail", 0));
	CHECK(i.end_reason == SD_END_OPEN_FAILED && i.end_exit_code == 10);
	CHECK(strcmp(i.end_msg, "Invalid data found when processing "
		     "input??[31m") == 0);
}

/* Deterministic bytes, and the FNV-1a hash the fake child computes. */
static void
fill(char *buf, size_t n, uint64_t *fnv)
{
	for (size_t i = 0; i < n; i++) {
		buf[i] = (char)(i * 7 + (i >> 12));
		*fnv ^= (unsigned char)buf[i];
		*fnv *= UINT64_C(1099511628211);
	}
}

static void
write_all(int fd, const char *buf, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, buf, n);

		CHECK(w > 0);
		buf += w;
		n -= (size_t)w;
	}
}

static void
check_sum(uint32_t id, uint64_t bytes, uint64_t fnv, int pumped)
{
	struct ctl_stream_info i = ended(id);
	char want[64];

	snprintf(want, sizeof(want), "bytes=%" PRIu64 " fnv=%016" PRIx64,
		 bytes, fnv);
	if (strcmp(i.end_msg, want) != 0) {
		fprintf(stderr, "stream %u: %s, expected %s\n", id, i.end_msg,
			want);
		CHECK(0);
	}
	CHECK(i.end_reason == SD_END_DEMUX_ERROR);
	if (pumped)
		CHECK(i.input_bytes == bytes);
}

#define BIG (5u << 20)

static void
test_sources(void)
{
	static char buf[BIG];
	struct ctl_open o;
	char path[300], err[CTL_MSG_LEN];
	uint64_t fnv = UINT64_C(14695981039346656037);
	struct ctl_push_end pe;
	union ctl_msg rep;
	int fd, p[2], push, id;

	fill(buf, sizeof(buf), &fnv);
	snprintf(path, sizeof(path), "%s/input.bin", tl_dir());
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0);
	write_all(fd, buf, sizeof(buf));
	close(fd);

	/* A regular file: handed over seekable (the child checks). */
	check_sum((uint32_t)open_path(path, "sum", 0), BIG, fnv, 0);
	/* The same file read as a stream: pumped from an unpollable fd. */
	check_sum((uint32_t)open_path(path, "sum", CTL_OPEN_NOSEEK), BIG, fnv,
		  1);

	/* A passed pipe: pumped. */
	fd = tl_connect(b.sock);
	CHECK(fd >= 0 && pipe2(p, O_CLOEXEC) == 0);
	tl_open_init(&o, CTL_SRC_FD, "stdin", "sum");
	id = tl_open(fd, &o, p[0], NULL, err, sizeof(err));
	CHECK(id > 0);
	close(p[0]);
	write_all(p[1], buf, sizeof(buf));
	close(p[1]);
	check_sum((uint32_t)id, BIG, fnv, 1);

	/* A passed pipe whose writer finished before the OPEN. */
	{
		uint64_t small = UINT64_C(14695981039346656037);

		CHECK(pipe2(p, O_CLOEXEC) == 0);
		fill(buf, 4096, &small);
		write_all(p[1], buf, 4096);
		close(p[1]);
		tl_open_init(&o, CTL_SRC_FD, "stdin", "sum");
		id = tl_open(fd, &o, p[0], NULL, err, sizeof(err));
		CHECK(id > 0);
		close(p[0]);
		check_sum((uint32_t)id, 4096, small, 1);
		fnv = UINT64_C(14695981039346656037);
		fill(buf, sizeof(buf), &fnv);
	}

	/* A passed regular file: reopened read-only, seekable. */
	p[0] = open(path, O_RDWR | O_CLOEXEC);
	CHECK(p[0] >= 0);
	tl_open_init(&o, CTL_SRC_FD, "", "sum");
	id = tl_open(fd, &o, p[0], NULL, err, sizeof(err));
	CHECK(id > 0);
	close(p[0]);
	check_sum((uint32_t)id, BIG, fnv, 0);

	/* A named FIFO opened before its writer exists. */
	snprintf(path, sizeof(path), "%s/fifo", tl_dir());
	CHECK(mkfifo(path, 0600) == 0);
	id = open_path(path, "sum", 0);
	p[1] = open(path, O_WRONLY | O_CLOEXEC);
	CHECK(p[1] >= 0);
	write_all(p[1], buf, sizeof(buf));
	close(p[1]);
	check_sum((uint32_t)id, BIG, fnv, 1);
	unlink(path);
	snprintf(path, sizeof(path), "%s/input.bin", tl_dir());

	/* Pushed bytes: the reply carries the pipe's write end. */
	tl_open_init(&o, CTL_SRC_PUSH, "", "sum");
	push = -1;
	id = tl_open(fd, &o, -1, &push, err, sizeof(err));
	CHECK(id > 0 && push >= 0);
	write_all(push, buf, sizeof(buf));
	close(push);
	/* The producer's verdict: until it, the broker holds the pipe. */
	memset(&pe, 0, sizeof(pe));
	ctl_hdr_init(&pe.hdr, CTL_PUSH_END, 12);
	pe.stream_id = (uint32_t)id;
	CHECK(tl_request(fd, &pe, sizeof(pe), NULL, 0, &rep, NULL) == CTL_OK);
	check_sum((uint32_t)id, BIG, fnv, 0);
	close(fd);
	unlink(path);
}

/* CLOSE with a consumer attached: it sees the end (CLOSED, by signal sig)
 * no sooner than min_ms, and the stream is no longer listed by then. */
static void
close_and_wait(int fd, uint32_t id, int sig, long min_ms)
{
	struct ctl_stream_info i;
	uint64_t t0;
	struct ring *r = NULL;
	struct ring_rd v;
	int cfd = tl_connect(b.sock), fds[2], slot, ret;

	CHECK(cfd >= 0);
	slot = tl_attach(cfd, id, 0, fds, NULL);
	CHECK(slot >= 0);
	CHECK(ring_map(&r, fds[0], -1, RING_ROLE_CONSUMER) == 0);
	CHECK(ring_attach(r, fds[1], RING_START_OLDEST) == 0);
	close(fds[0]);
	close(fds[1]);
	/* The child's one record: its signal handling is set up. */
	do
		ret = ring_next(r, &v, 5000);
	while (ret == -EAGAIN);
	CHECK(ret == 0);
	ring_release(r, &v);
	t0 = now_ns();
	CHECK(tl_simple(fd, CTL_CLOSE, id) == 0);
	do
		ret = ring_next(r, &v, 5000);
	while (ret == -EAGAIN);
	CHECK(ret == -EPIPE);
	CHECK((long)((now_ns() - t0) / 1000000) >= min_ms);
	CHECK(ring_hdr(r)->end_reason == SD_END_CLOSED);
	CHECK(ring_hdr(r)->end_signal == sig);
	ring_unmap(&r);
	close(cfd);
	CHECK(tl_info(b.sock, id, &i) == 0);
}

static void
test_kill_close(void)
{
	struct ctl_stream_info i;
	int fd = tl_connect(b.sock), id;

	CHECK(fd >= 0);
	id = open_path("/etc/passwd", "hang", 0);
	CHECK(tl_info(b.sock, (uint32_t)id, &i) == 1);
	CHECK(i.state != RING_STATE_ENDED && i.worker_pid > 0);
	CHECK(tl_simple(fd, CTL_KILL, (uint32_t)id) == 0);
	i = ended((uint32_t)id);
	CHECK(i.end_reason == SD_END_KILLED && i.end_signal == SIGKILL);
	/* Killing an ended stream is an error; it stays listed until CLOSE. */
	CHECK(tl_simple(fd, CTL_KILL, (uint32_t)id) == -ESRCH);
	CHECK(tl_info(b.sock, (uint32_t)id, &i) == 1);
	CHECK(tl_simple(fd, CTL_CLOSE, (uint32_t)id) == 0);
	CHECK(tl_info(b.sock, (uint32_t)id, &i) == 0);

	/* CLOSE of a running worker: SIGTERM, then unlisted once reaped. */
	id = open_path("/etc/passwd", "hang", 0);
	close_and_wait(fd, (uint32_t)id, SIGTERM, 0);

	/* A worker ignoring SIGTERM is killed after the grace time. */
	id = open_path("/etc/passwd", "stubborn", 0);
	close_and_wait(fd, (uint32_t)id, SIGKILL, 1500);
	CHECK(tl_info(b.sock, (uint32_t)id, &i) == 0);
	close(fd);
}

static void
test_consumers(void)
{
	struct ctl_attached att;
	struct ctl_stream_info i;
	struct stat st0, st1;
	int c[4], fds[2], page0, id, slot;
	void *p;

	id = open_path("/etc/passwd", "hang", 0);
	for (int k = 0; k < 4; k++) {
		c[k] = tl_connect(b.sock);
		CHECK(c[k] >= 0);
	}
	/* This broker has two slots per stream. */
	CHECK(tl_attach(c[0], (uint32_t)id, 0, fds, &att) >= 0);
	CHECK(att.stream_id == (uint32_t)id && att.data_size > 0);
	/* The data fd is read-only: no writable shared mapping, no resize. */
	CHECK((fcntl(fds[0], F_GETFL) & O_ACCMODE) == O_RDONLY);
	p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fds[0], 0);
	CHECK(p == MAP_FAILED && errno == EACCES);
	/* The consumer's own cursor page is writable, but one page, sealed
	 * against resizing, and nobody else's. */
	CHECK(att.page_size == RING_PAGE_SIZE);
	CHECK(fstat(fds[1], &st0) == 0 && st0.st_size == RING_PAGE_SIZE);
	CHECK(ftruncate(fds[1], 0) < 0 && errno == EPERM);
	CHECK(fcntl(fds[1], F_GET_SEALS) ==
	      (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL));
	close(fds[0]);
	page0 = fds[1];
	CHECK(tl_attach(c[0], (uint32_t)id, 0, fds, NULL) == -EISCONN);

	CHECK(tl_attach(c[1], (uint32_t)id, 0, fds, NULL) >= 0);
	/* a page of its own: another object */
	CHECK(fstat(fds[1], &st1) == 0 && st1.st_ino != st0.st_ino);
	close(fds[0]);
	close(fds[1]);
	close(page0);
	CHECK(tl_attach(c[2], (uint32_t)id, 0, fds, NULL) == -EBUSY);
	/* Observers need no slot, and get no page. */
	slot = tl_attach(c[3], (uint32_t)id, CTL_ATTACH_OBSERVER, fds, NULL);
	CHECK(slot == -1 && fds[1] == -1);
	close(fds[0]);
	CHECK(tl_info(b.sock, (uint32_t)id, &i) == 1 && i.consumers == 2);

	/* A consumer that goes away frees its slot. */
	close(c[0]);
	slot = -EBUSY;
	for (int k = 0; k < 50 && slot == -EBUSY; k++)
		slot = tl_attach(c[2], (uint32_t)id, 0, fds, NULL);
	CHECK(slot >= 0);
	close(fds[0]);
	close(fds[1]);
	for (int k = 1; k < 4; k++)
		close(c[k]);
	CHECK((c[0] = tl_connect(b.sock)) >= 0);
	CHECK(tl_simple(c[0], CTL_KILL, (uint32_t)id) == 0);
	close(c[0]);
	CHECK(tl_consume(b.sock, (uint32_t)id, 5000, NULL, NULL) >= 0);
}

static void
test_names(void)
{
	struct ctl_open o;
	char err[CTL_MSG_LEN];
	int fd = tl_connect(b.sock), id;
	struct ctl_close c;
	union ctl_msg rep;

	CHECK(fd >= 0);
	tl_open_init(&o, CTL_SRC_PATH, "/etc/passwd", "hang");
	snprintf(o.name, sizeof(o.name), "cam-1.main_");
	id = tl_open(fd, &o, -1, NULL, err, sizeof(err));
	CHECK(id > 0);
	CHECK(tl_open(fd, &o, -1, NULL, err, sizeof(err)) == -EEXIST);
	memset(&c, 0, sizeof(c));
	ctl_hdr_init(&c.hdr, CTL_KILL, 77);
	snprintf(c.ref.name, sizeof(c.ref.name), "cam-1.main_");
	CHECK(tl_request(fd, &c, sizeof(c), NULL, 0, &rep, NULL) == CTL_OK);
	CHECK(rep.hdr.id == 77);
	close(fd);
	CHECK(tl_consume(b.sock, (uint32_t)id, 5000, NULL, NULL) >= 0);
}

static void
test_exec_failure(void)
{
	struct tl_broker e;
	struct ctl_stream_info i;
	char path[300];
	int fd, id;

	snprintf(path, sizeof(path), "%s/not-executable", tl_dir());
	fd = open(path, O_WRONLY | O_CREAT, 0644);
	CHECK(fd >= 0);
	close(fd);
	CHECK(tl_broker_start(&e, "e", path, NULL) == 0);
	fd = tl_connect(e.sock);
	CHECK(fd >= 0);
	{
		struct ctl_open o;
		char err[CTL_MSG_LEN];

		tl_open_init(&o, CTL_SRC_PATH, "/etc/passwd", "");
		id = tl_open(fd, &o, -1, NULL, err, sizeof(err));
		CHECK(id > 0);
	}
	close(fd);
	CHECK(tl_info(e.sock, (uint32_t)id, &i) == 1);
	CHECK(i.state == RING_STATE_ENDED);
	CHECK(i.end_reason == SD_END_EXEC_FAILED);
	CHECK(strstr(i.end_msg, "Permission denied") != NULL);
	CHECK(tl_broker_stop(&e) == 0);
	unlink(path);
}

/* The broker's first fork server, once it is gone: it is waited for
 * through a pidfd (the broker kills and reaps it). */
static pid_t
first_server(const struct tl_broker *l)
{
	struct pollfd p = { .fd = -1, .events = POLLIN };
	pid_t kids[16], server = 0;

	for (int t = 0; t < 10000 && server == 0; t += 2) {
		int n = tl_children(l->pid, kids, 16);

		for (int i = 0; i < n && server == 0; i++)
			if (tl_argv_ends(kids[i], "--fork-server"))
				server = kids[i];
		if (server == 0)
			poll(NULL, 0, 2);
	}
	if (server == 0)
		return -1;
	p.fd = (int)syscall(SYS_pidfd_open, server, 0);
	if (p.fd < 0)
		return errno == ESRCH ? server : -1; /* already reaped */
	CHECK(poll(&p, 1, 10000) == 1);
	close(p.fd);
	return server;
}

/* A child of the broker's in server's session, not the server. */
static pid_t
in_session_of(const struct tl_broker *l, pid_t server)
{
	pid_t kids[16];

	for (int t = 0; t < 10000; t += 2) {
		int n = tl_children(l->pid, kids, 16);

		for (int i = 0; i < n; i++)
			if (kids[i] != server && getsid(kids[i]) == server)
				return kids[i];
		poll(NULL, 0, 2);
	}
	CHECK(!"a child in the server's session");
	return -1;
}

/* A fork server that answers with a pid not its child's: the broker takes
 * no such pid (it would later signal and report a process not its own),
 * fails the stream rather than start a second worker for it, and kills
 * the server; the process named is untouched. A server whose clone failed
 * (nothing started) leaves the stream to an exec'd worker and stays. */
static void
test_lying_server(void)
{
	static const char *const how[] = { "victim", "broker", "garbage" };
	static const char *const waits[] = { "wait-victim", "wait-broker",
					     "wait-self" };
	struct ctl_stream_info i;
	struct tl_broker l;
	char sock[256], num[16];
	pid_t victim, server, stray;
	int id;

	victim = fork();
	CHECK(victim >= 0);
	if (victim == 0) {
		pause();
		_exit(0);
	}
	snprintf(num, sizeof(num), "%d", (int)victim);
	CHECK(setenv("SHMDEMUX_FAKE_VICTIM", num, 1) == 0);
	snprintf(sock, sizeof(sock), "%s", b.sock);
	for (size_t k = 0; k < sizeof(how) / sizeof(how[0]) + 1; k++) {
		int lie = k < sizeof(how) / sizeof(how[0]);

		CHECK(setenv("SHMDEMUX_FAKE_SERVER", lie ? how[k] :
			     "clone-fail", 1) == 0);
		CHECK(tl_broker_start(&l, "l", fake, NULL) == 0);
		server = tl_fork_server(&l, 20000);
		CHECK(server > 0);
		snprintf(b.sock, sizeof(b.sock), "%s", l.sock);
		id = open_path("/etc/passwd", "eof", 0);
		CHECK(tl_info(l.sock, (uint32_t)id, &i) == 1);
		if (lie) {
			CHECK(i.state == RING_STATE_ENDED);
			CHECK(i.end_reason == SD_END_EXEC_FAILED);
			CHECK(strstr(i.end_msg, "fork server") != NULL);
			/* killed and reaped before the OPEN was answered */
			CHECK(kill(server, 0) < 0 && errno == ESRCH);
		} else {
			CHECK(ended((uint32_t)id).end_reason == SD_END_EOF);
			CHECK(kill(server, 0) == 0);
		}
		CHECK(kill(victim, 0) == 0);
		CHECK(waitpid(victim, NULL, WNOHANG) == 0);
		CHECK(tl_broker_stop(&l) == 0);
		printf("fork server answering %s: %s\n",
		       lie ? how[k] : "a failed clone", lie ?
		       "stream failed, server killed, no other process "
		       "touched" : "stream exec'd and read to its end");
	}
	/* A server announcing as its waiting child a process not a new
	 * child of the broker's: another process, the broker, itself. The
	 * broker adopts none of them (it would later kill and reap it),
	 * kills the server, and streams still run. */
	for (size_t k = 0; k < sizeof(waits) / sizeof(waits[0]); k++) {
		CHECK(setenv("SHMDEMUX_FAKE_SERVER", waits[k], 1) == 0);
		CHECK(tl_broker_start(&l, "l", fake, NULL) == 0);
		server = first_server(&l);
		CHECK(server > 0);
		snprintf(b.sock, sizeof(b.sock), "%s", l.sock);
		id = open_path("/etc/passwd", "eof", 0);
		CHECK(ended((uint32_t)id).end_reason == SD_END_EOF);
		CHECK(kill(victim, 0) == 0);
		CHECK(waitpid(victim, NULL, WNOHANG) == 0);
		CHECK(kill(l.pid, 0) == 0);
		CHECK(tl_broker_stop(&l) == 0);
		printf("fork server announcing %s as its waiting child: server "
		       "killed, no other process touched, streams run\n",
		       waits[k] + 5);
	}
	/* A server that dies with a child it never announced (killed
	 * between its clone and its word): the broker reaps that child
	 * too, which it knows for no stream. */
	CHECK(setenv("SHMDEMUX_FAKE_SERVER", "stray", 1) == 0);
	CHECK(tl_broker_start(&l, "l", fake, NULL) == 0);
	server = tl_fork_server(&l, 20000);
	CHECK(server > 0);
	stray = in_session_of(&l, server);
	CHECK(kill(server, SIGKILL) == 0);
	for (int t = 0; t < 1000 && !(kill(stray, 0) < 0 && errno == ESRCH);
	     t++)
		(void)tl_info(l.sock, 0, &i);
	CHECK(kill(stray, 0) < 0 && errno == ESRCH);
	CHECK(tl_broker_stop(&l) == 0);
	printf("fork server killed with a child it never announced: the "
	       "broker reaped that child too\n");
	snprintf(b.sock, sizeof(b.sock), "%s", sock);
	unsetenv("SHMDEMUX_FAKE_SERVER");
	unsetenv("SHMDEMUX_FAKE_VICTIM");
	CHECK(kill(victim, SIGKILL) == 0);
	CHECK(tl_wait_child(victim, 5000) >= 0);
}

static void
test_shutdown(void)
{
	struct ctl_stream_info i;
	pid_t w[2];

	/* Workers still running when the broker is told to stop: one
	 * leaves on SIGTERM, one has to be killed. Both are gone after. */
	CHECK(tl_info(b.sock, (uint32_t)open_path("/etc/passwd", "hang", 0),
		      &i) == 1);
	w[0] = i.worker_pid;
	CHECK(tl_info(b.sock, (uint32_t)open_path("/etc/passwd", "stubborn",
						   0), &i) == 1);
	w[1] = i.worker_pid;
	CHECK(w[0] > 0 && w[1] > 0);
	CHECK(tl_broker_stop(&b) == 0);
	for (int k = 0; k < 2; k++)
		CHECK(kill(w[k], 0) < 0 && errno == ESRCH);
}

/* A broker killed outright takes its workers with it (parent-death
 * signal); its socket file is stale and the next broker replaces it. */
static void
test_broker_killed(void)
{
	struct tl_broker k, again;
	struct ctl_stream_info i;
	char sock[256];
	int st, fd, id;

	CHECK(tl_broker_start(&k, "k", fake, NULL) == 0);
	snprintf(sock, sizeof(sock), "%s", b.sock);
	snprintf(b.sock, sizeof(b.sock), "%s", k.sock);
	id = open_path("/etc/passwd", "hang", 0);
	CHECK(tl_info(k.sock, (uint32_t)id, &i) == 1 && i.worker_pid > 0);
	CHECK(kill(k.pid, SIGKILL) == 0);
	st = tl_wait_child(k.pid, 5000);
	CHECK(st >= 0 && WIFSIGNALED(st));
	/* The orphaned worker is ours to reap now (subreaper). */
	st = tl_wait_child(i.worker_pid, 5000);
	CHECK(st >= 0 && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	CHECK(tl_broker_start(&again, "k", fake, NULL) == 0);
	fd = tl_connect(again.sock);
	CHECK(fd >= 0 && tl_list(fd, &i, 1) == 0);
	close(fd);
	CHECK(tl_broker_stop(&again) == 0);
	snprintf(b.sock, sizeof(b.sock), "%s", sock);
}

int
main(int argc, char **argv)
{
	const char *args[] = { "--max-consumers", "2", NULL };

	if (argc != 3) {
		fprintf(stderr, "usage: test_broker_streams SHMDEMUXD "
			"FAKECHILD\n");
		return 2;
	}
	fake = argv[2];
	tl_init(argv[1], 90);
	CHECK(tl_broker_start(&b, "s", fake, args) == 0);
	test_endings();
	test_sources();
	test_kill_close();
	test_consumers();
	test_names();
	test_exec_failure();
	test_lying_server();
	test_broker_killed();
	test_shutdown();
	tl_check_shm();
	printf("test_broker_streams: ok\n");
	return 0;
}
