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
 * This process is a child subreaper (tl_init(), tests/broker_testlib.h), so
 * the daemonized brokers and the orphaned workers are reaped here and
 * nothing outlives the test.
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

#include "broker_testlib.h"
#include "shmdemux.h"

#define NSTREAMS   2
#define PUSH_BYTES (60 * 1024) /* < a pipe's 64 KiB: written before any reader
                                  attaches; some packets, then the worker
                                  waits for more */

static const char *media;
static struct tl_broker b;

struct consumer {
	pthread_t th;
	shmdemux_stream *s;
	pthread_mutex_t *mu;
	pthread_cond_t *cv;
	int packets;      /* under mu */
	int done;         /* under mu */
	int ret;          /* the read that ended the loop */
	uint64_t end_ms;
};

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
	c->end_ms = now_ms();
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

/* The new broker serves: a whole file read to its end. */
static void
check_serves(void)
{
	shmdemux_conn *conn = NULL;
	shmdemux_stream *s = NULL;
	struct shmdemux_packet p;
	uint32_t id;
	int ret, n = 0;

	ret = shmdemux_connect(&conn, b.sock, 0);
	EXPECT(ret == 0, "connect to the new broker: %s",
	       shmdemux_strerror(ret));
	if (ret < 0)
		return;
	ret = shmdemux_open_path(conn, media, NULL, &id);
	EXPECT(ret == 0, "open on the new broker: %s", shmdemux_strerror(ret));
	if (ret == 0)
		ret = shmdemux_attach(conn, id, NULL, SHMDEMUX_START_OLDEST, 0,
				      &s);
	EXPECT(ret == 0, "attach on the new broker: %s",
	       shmdemux_strerror(ret));
	while (s != NULL && (ret = shmdemux_read(s, &p, 30000)) == 0)
		n++;
	EXPECT(ret == SHMDEMUX_EOF && n > 0, "read to the end: %d packets, %s",
	       n, shmdemux_strerror(ret));
	shmdemux_detach(&s);
	shmdemux_disconnect(&conn);
}

static void
run(void)
{
	static const char *const args[] = { "--idle-exit", "60", NULL };
	pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
	struct consumer c[NSTREAMS];
	shmdemux_conn *conn = NULL;
	pid_t workers[NSTREAMS] = { 0 };
	int push[NSTREAMS], ret, started = 0;
	uint64_t killed;
	uint32_t id[NSTREAMS];

	CHECK(tl_broker_start(&b, "s.sock", NULL, args) == 0);
	ret = shmdemux_connect(&conn, b.sock, 0);
	EXPECT(ret == 0, "connect: %s", shmdemux_strerror(ret));
	memset(c, 0, sizeof(c));
	for (int i = 0; i < NSTREAMS && ret == 0; i++) {
		push[i] = -1;
		ret = open_partial(conn, &id[i], &push[i]);
		EXPECT(ret == 0, "open %d: %s", i, shmdemux_strerror(ret));
		if (ret == 0)
			ret = shmdemux_attach(conn, id[i], NULL,
					      SHMDEMUX_START_OLDEST, 0, &c[i].s);
		EXPECT(ret == 0, "attach %d: %s", i, shmdemux_strerror(ret));
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
	EXPECT(!c[0].done && !c[1].done, "consumers still reading");
	EXPECT(shmdemux_list(conn, info_pid, workers) == 0, "list");
	for (int i = 0; i < NSTREAMS; i++)
		EXPECT(workers[i] > 0, "worker %d running", i);

	killed = now_ms();
	EXPECT(kill(b.pid, SIGKILL) == 0, "kill the broker");
	EXPECT(tl_wait_child(b.pid, 5000) >= 0, "broker gone");
	/* Its workers are ours now (subreaper), not yet reaped: each must
	 * exit by itself (parent-death signal). */
	for (int i = 0; i < NSTREAMS; i++)
		EXPECT(workers[i] > 0 && tl_wait_child(workers[i], 5000) >= 0,
		       "worker %d (pid %d) died with the broker", i,
		       (int)workers[i]);
	for (int i = 0; i < NSTREAMS; i++) {
		pthread_join(c[i].th, NULL);
		EXPECT(c[i].ret == SHMDEMUX_EBROKER, "consumer %d: %s", i,
		       shmdemux_strerror(c[i].ret));
		EXPECT(c[i].end_ms - killed < 1000,
		       "consumer %d noticed in %llu ms", i,
		       (unsigned long long)(c[i].end_ms - killed));
		shmdemux_detach(&c[i].s);
		close(push[i]);
	}
	started = 0;
	shmdemux_disconnect(&conn);
	tl_check_shm();

	/* The socket file is stale now; a new broker replaces it. */
	ret = tl_broker_start(&b, "s.sock", NULL, args);
	EXPECT(ret == 0, "a new broker on the same socket: %d", ret);
	if (ret == 0) {
		check_serves();
		EXPECT(tl_broker_stop(&b) == 0, "the new broker stops");
	}
out:
	if (started > 0) {
		/* Setup failed half-way: unblock the readers by stopping the
		 * broker, then join them. */
		kill(b.pid, SIGKILL);
		for (int i = 0; i < started; i++) {
			pthread_join(c[i].th, NULL);
			shmdemux_detach(&c[i].s);
		}
	}
	shmdemux_disconnect(&conn);
}

int
main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: test_broker_sigkill SHMDEMUXD MEDIA\n");
		return 2;
	}
	media = argv[2];
	if (access(media, R_OK) != 0) {
		fprintf(stderr, "SKIP: %s is not readable\n", media);
		return 77;
	}
	tl_init(argv[1], 110);
	run();
	if (check_failures == 0)
		printf("test_broker_sigkill: ok\n");
	return check_status();
}
