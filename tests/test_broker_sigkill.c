/*
 * test_broker_sigkill.c - the broker SIGKILLed under load.
 *
 * usage: test_broker_sigkill SHMDEMUXD MEDIA_FILE
 *
 * A private broker serves two pushed streams, each fed only the first part
 * of MEDIA_FILE so that its worker waits for more input while a consumer
 * thread per stream, having read what there is, blocks in shmdemux_read().
 * Then the broker is SIGKILLed. Asserted: every worker dies (parent-death
 * signal; watched through pidfds, as they are not our children), both
 * consumers get SHMDEMUX_EBROKER within a second, nothing new is left in
 * /dev/shm, and a new broker on the same socket path replaces the stale
 * socket and serves a stream to its end.
 *
 * This process is a child subreaper, so the daemonized brokers and the
 * orphaned workers are reaped here and nothing outlives the test.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "shmdemux.h"

#define NSTREAMS   2
#define PUSH_BYTES (60 * 1024) /* < a pipe's 64 KiB: written before any reader
                                  attaches; some packets, then the worker
                                  waits for more */

static const char *brokerbin, *media;
static char dir[64], sock[128], pidpath[160];
static int failures;

#define CHECK(cond, ...) do { \
	if (!(cond)) { \
		fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
		fprintf(stderr, __VA_ARGS__); \
		fputc('\n', stderr); \
		failures++; \
	} \
} while (0)

struct consumer {
	pthread_t th;
	shmdemux_stream *s;
	pthread_mutex_t *mu;
	pthread_cond_t *cv;
	int packets;      /* under mu */
	int done;         /* under mu */
	int ret;          /* the read that ended the loop */
	struct timespec end;
};

static long
ms_between(const struct timespec *a, const struct timespec *b)
{
	return (b->tv_sec - a->tv_sec) * 1000 +
	       (b->tv_nsec - a->tv_nsec) / 1000000;
}

/* Start a broker in the background; returns its pid (from the pidfile). */
static pid_t
start_broker(void)
{
	char buf[32] = "";
	pid_t pid;
	int st, fd;
	ssize_t n;

	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		execl(brokerbin, brokerbin, "--daemon", "--socket", sock,
		      "--pidfile", pidpath, "--idle-exit", "60", (char *)NULL);
		_exit(127);
	}
	/* --daemon returns once the socket listens. */
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) ||
	    WEXITSTATUS(st) != 0)
		return -1;
	fd = open(pidpath, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	return n > 0 ? (pid_t)atoi(buf) : -1;
}

/* Wait until a pidfd says its process exited; reap it if it is ours. */
static int
wait_pidfd(int pfd, pid_t pid, int timeout_ms)
{
	struct pollfd p = { .fd = pfd, .events = POLLIN };
	int ret = poll(&p, 1, timeout_ms);

	if (ret == 1)
		(void)waitpid(pid, NULL, WNOHANG);
	return ret == 1 ? 0 : -1;
}

static int
pidfd_of(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

static void *
consume(void *arg)
{
	struct consumer *c = arg;
	struct shmdemux_packet p;
	int ret;

	while ((ret = shmdemux_read(c->s, &p, -1)) == 0) {
		pthread_mutex_lock(c->mu);
		c->packets++;
		pthread_cond_broadcast(c->cv);
		pthread_mutex_unlock(c->mu);
	}
	clock_gettime(CLOCK_MONOTONIC, &c->end);
	pthread_mutex_lock(c->mu);
	c->ret = ret;
	c->done = 1;
	pthread_cond_broadcast(c->cv);
	pthread_mutex_unlock(c->mu);
	return NULL;
}

/* Open a push stream fed with the first PUSH_BYTES of the media. */
static int
open_partial(shmdemux_conn *conn, uint32_t *id, int *push)
{
	struct shmdemux_open_opts o;
	char buf[PUSH_BYTES];
	ssize_t n;
	int fd, ret;

	/* A short probe, so the partial input starts the packets flowing. */
	shmdemux_open_opts_init(&o);
	o.probesize = 32 * 1024;
	o.analyzeduration = 100000;
	ret = shmdemux_open_push(conn, &o, id, push);
	if (ret < 0)
		return ret;
	fd = open(media, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n <= 0 || write(*push, buf, (size_t)n) != n)
		return -EIO;
	return 0;
}

static int
info_pid(const struct shmdemux_stream_info *i, void *ctx)
{
	pid_t *pids = ctx;

	if (i->id >= 1 && i->id <= NSTREAMS)
		pids[i->id - 1] = i->worker_pid;
	return 0;
}

/* Names in /dev/shm, as one string, to compare before and after. */
static void
shm_names(char *buf, size_t cap)
{
	DIR *d = opendir("/dev/shm");
	struct dirent *e;
	size_t off = 0;

	buf[0] = '\0';
	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL && off + 2 < cap) {
		if (strstr(e->d_name, "shmdemux") == NULL)
			continue;
		off += (size_t)snprintf(buf + off, cap - off, "%s ",
					e->d_name);
	}
	closedir(d);
}

/* The new broker serves: a whole file read to its end. */
static void
check_serves(void)
{
	shmdemux_conn *conn = NULL;
	shmdemux_stream *s = NULL;
	struct shmdemux_packet p;
	uint32_t id;
	int ret, n = 0;

	ret = shmdemux_connect(&conn, sock, 0);
	CHECK(ret == 0, "connect to the new broker: %s", shmdemux_strerror(ret));
	if (ret < 0)
		return;
	ret = shmdemux_open_path(conn, media, NULL, &id);
	CHECK(ret == 0, "open on the new broker: %s", shmdemux_strerror(ret));
	if (ret == 0)
		ret = shmdemux_attach(conn, id, NULL, SHMDEMUX_START_OLDEST, 0,
				      &s);
	CHECK(ret == 0, "attach on the new broker: %s", shmdemux_strerror(ret));
	while (s != NULL && (ret = shmdemux_read(s, &p, 30000)) == 0)
		n++;
	CHECK(ret == SHMDEMUX_EOF && n > 0, "read to the end: %d packets, %s",
	      n, shmdemux_strerror(ret));
	shmdemux_detach(&s);
	shmdemux_disconnect(&conn);
}

static void
stop_broker(pid_t pid)
{
	int fd = open(pidpath, O_RDONLY | O_CLOEXEC);

	kill(pid, SIGTERM);
	if (fd >= 0) {
		flock(fd, LOCK_EX); /* held by the broker until it exits */
		close(fd);
	}
	(void)waitpid(pid, NULL, 0);
}

static void
run(void)
{
	pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
	struct consumer c[NSTREAMS];
	shmdemux_conn *conn = NULL;
	pid_t broker, workers[NSTREAMS] = { 0 };
	int pfd_broker, pfd[NSTREAMS], push[NSTREAMS], ret, started = 0;
	char shm_before[4096], shm_after[4096];
	struct timespec killed;
	uint32_t id[NSTREAMS];

	shm_names(shm_before, sizeof(shm_before));
	broker = start_broker();
	CHECK(broker > 0, "broker started");
	if (broker <= 0)
		return;
	pfd_broker = pidfd_of(broker);
	ret = shmdemux_connect(&conn, sock, 0);
	CHECK(ret == 0, "connect: %s", shmdemux_strerror(ret));
	memset(c, 0, sizeof(c));
	for (int i = 0; i < NSTREAMS && ret == 0; i++) {
		push[i] = -1;
		ret = open_partial(conn, &id[i], &push[i]);
		CHECK(ret == 0, "open %d: %s", i, shmdemux_strerror(ret));
		if (ret == 0)
			ret = shmdemux_attach(conn, id[i], NULL,
					      SHMDEMUX_START_OLDEST, 0, &c[i].s);
		CHECK(ret == 0, "attach %d: %s", i, shmdemux_strerror(ret));
		if (ret < 0)
			break;
		c[i].mu = &mu;
		c[i].cv = &cv;
		if (pthread_create(&c[i].th, NULL, consume, &c[i]) != 0)
			break;
		started++;
	}
	if (started < NSTREAMS)
		goto out;
	/* Both consumers have data flowing: they read up to what the worker
	 * could demux from the partial input, then block. */
	pthread_mutex_lock(&mu);
	while ((c[0].packets == 0 && !c[0].done) ||
	       (c[1].packets == 0 && !c[1].done))
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
	CHECK(!c[0].done && !c[1].done, "consumers still reading");
	CHECK(shmdemux_list(conn, info_pid, workers) == 0, "list");
	for (int i = 0; i < NSTREAMS; i++) {
		CHECK(workers[i] > 0, "worker %d running", i);
		pfd[i] = workers[i] > 0 ? pidfd_of(workers[i]) : -1;
	}

	clock_gettime(CLOCK_MONOTONIC, &killed);
	CHECK(kill(broker, SIGKILL) == 0, "kill the broker");
	CHECK(wait_pidfd(pfd_broker, broker, 5000) == 0, "broker gone");
	for (int i = 0; i < NSTREAMS; i++) {
		CHECK(pfd[i] >= 0 && wait_pidfd(pfd[i], workers[i], 5000) == 0,
		      "worker %d (pid %d) died with the broker", i,
		      (int)workers[i]);
		if (pfd[i] >= 0)
			close(pfd[i]);
	}
	for (int i = 0; i < NSTREAMS; i++) {
		pthread_join(c[i].th, NULL);
		CHECK(c[i].ret == SHMDEMUX_EBROKER, "consumer %d: %s", i,
		      shmdemux_strerror(c[i].ret));
		CHECK(ms_between(&killed, &c[i].end) < 1000,
		      "consumer %d noticed in %ld ms", i,
		      ms_between(&killed, &c[i].end));
		shmdemux_detach(&c[i].s);
		close(push[i]);
	}
	started = 0;
	shmdemux_disconnect(&conn);
	shm_names(shm_after, sizeof(shm_after));
	CHECK(strcmp(shm_before, shm_after) == 0, "/dev/shm: before [%s], "
	      "after [%s]", shm_before, shm_after);

	/* The socket file is stale now; a new broker replaces it. */
	broker = start_broker();
	CHECK(broker > 0, "a new broker on the same socket");
	if (broker > 0) {
		check_serves();
		stop_broker(broker);
	}
out:
	if (started > 0) {
		/* Setup failed half-way: unblock the readers by stopping the
		 * broker, then join them. */
		kill(broker, SIGKILL);
		for (int i = 0; i < started; i++) {
			pthread_join(c[i].th, NULL);
			shmdemux_detach(&c[i].s);
		}
	}
	shmdemux_disconnect(&conn);
	close(pfd_broker);
}

int
main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: test_broker_sigkill SHMDEMUXD MEDIA\n");
		return 2;
	}
	brokerbin = argv[1];
	media = argv[2];
	if (access(media, R_OK) != 0) {
		fprintf(stderr, "SKIP: %s is not readable\n", media);
		return 77;
	}
	signal(SIGPIPE, SIG_IGN);
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
		return 1;
	snprintf(dir, sizeof(dir), "/tmp/sdkill.XXXXXX");
	if (mkdtemp(dir) == NULL)
		return 1;
	snprintf(sock, sizeof(sock), "%s/s.sock", dir);
	snprintf(pidpath, sizeof(pidpath), "%s/s.pid", dir);
	run();
	/* Reap whatever is left (nothing, when all went well). */
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
	unlink(pidpath);
	unlink(sock);
	rmdir(dir);
	if (failures > 0) {
		fprintf(stderr, "test_broker_sigkill: %d failures\n", failures);
		return 1;
	}
	printf("test_broker_sigkill: ok\n");
	return 0;
}
