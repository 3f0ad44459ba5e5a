/*
 * bench_broker.c - the broker side of the file benchmarks: N consumer
 * processes wait for a stream id, attach, read to the end touching every
 * byte they consume and report over a pipe; the stream is opened over a
 * pipe fed by the writer process (bench_writer.c). What a consumer counts per record
 * (packets, frames) and how the stream is opened (decoding or not) are
 * the caller's.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libavutil/log.h>

#include "bench.h"

struct consumer_report {
	uint64_t count, bytes;
	int32_t status;
};

/* A consumer process: waits for the stream id on idfd, attaches, hands
 * every read result to consume until it stops, reports on repfd. */
static void
consumer_main(const char *sock, bench_consume_fn *consume, int idfd,
	      int repfd)
{
	struct consumer_report rep = { 0, 0, 0 };
	struct bench_result r = { 0, 0, 0 };
	struct shmdemux_packet pkt;
	shmdemux_conn *conn = NULL;
	shmdemux_stream *s = NULL;
	volatile uint64_t sink = 0;
	uint32_t id;
	int rc;

	if (read(idfd, &id, sizeof(id)) != (ssize_t)sizeof(id))
		_exit(1);
	rc = shmdemux_connect(&conn, sock, 0);
	if (rc == 0)
		rc = shmdemux_attach(conn, id, NULL, SHMDEMUX_START_OLDEST, 0,
				     &s);
	while (rc == 0)
		rc = consume(s, shmdemux_read(s, &pkt, -1), &pkt, &r, &sink);
	rep.count = r.count;
	rep.bytes = r.bytes;
	rep.status = rc == SHMDEMUX_EOF ? 0 : rc;
	shmdemux_detach(&s);
	shmdemux_disconnect(&conn);
	if (write(repfd, &rep, sizeof(rep)) != (ssize_t)sizeof(rep))
		_exit(1);
	(void)sink;
	_exit(0);
}

/* Every consumer's report; they must all have seen the same. */
static int
collect(int consumers, int repfd, struct bench_result *r)
{
	int rc = 0;

	r->count = r->bytes = 0;
	for (int i = 0; i < consumers; i++) {
		struct consumer_report rep;

		if (read(repfd, &rep, sizeof(rep)) != (ssize_t)sizeof(rep))
			return rc ? rc : -EIO;
		if (rep.status != 0)
			rc = rc ? rc : rep.status;
		if (i > 0 && (rep.count != r->count || rep.bytes != r->bytes))
			rc = rc ? rc : -EPROTO;
		r->count = rep.count;
		r->bytes = rep.bytes;
	}
	return rc;
}

int
bench_broker_run(shmdemux_conn *conn, const struct bench_broker_conf *bc,
		 struct bench_result *r)
{
	struct shmdemux_open_opts o = *bc->opts;
	pid_t kids[BENCH_MAX_CONSUMERS];
	int idp[2], repp[2], in[2], crc, rc;
	uint32_t id = 0;
	double t0;

	if (pipe2(idp, O_CLOEXEC) < 0 || pipe2(repp, O_CLOEXEC) < 0)
		return -errno;
	/* consumers are forked before the clock starts */
	for (int i = 0; i < bc->consumers; i++)
		if ((kids[i] = fork()) == 0)
			consumer_main(bc->socket, bc->consume, idp[0],
				      repp[1]);
	o.wait_consumers = (uint32_t)bc->consumers;
	/* the input pipe is made after the consumers are forked so none of
	 * them holds its write end open (the worker would never see EOF) */
	if (pipe2(in, O_CLOEXEC) < 0)
		return -errno;
	t0 = now_s();
	rc = writer_feed(in[1]);
	close(in[1]);
	if (rc == 0)
		rc = shmdemux_open_fd(conn, in[0], &o, &id);
	close(in[0]);
	for (int i = 0; i < bc->consumers; i++)
		if (write(idp[1], &id, sizeof(id)) != (ssize_t)sizeof(id))
			rc = rc ? rc : -EIO;
	close(repp[1]);
	crc = collect(bc->consumers, repp[0], r);
	rc = rc ? rc : crc;
	r->secs = now_s() - t0;
	for (int i = 0; i < bc->consumers; i++)
		reap(kids[i]);
	crc = writer_wait();
	rc = rc ? rc : crc;
	close(idp[0]);
	close(idp[1]);
	close(repp[0]);
	if (id != 0)
		shmdemux_close_stream(conn, id, NULL);
	return rc;
}

/* What both file benchmarks run against: the file in memory and a
 * connection to a broker. Zero-initialise before bench_env_open(). */
struct bench_env {
	uint8_t *buf;
	size_t len;
	shmdemux_conn *conn;
	char dir[64], sock[128];	/* a private broker's, else "" */
};

/* Reads file, ignores SIGPIPE, quiets libav's log, and connects to
 * *socket; when *socket is NULL, to a private broker it starts (and points
 * *socket at). 0 or a negative code, the failure printed. Call
 * bench_env_close() whatever it returns. */
static int
bench_env_open(struct bench_env *e, const char *file, const char **socket)
{
	int rc;

	if ((rc = slurp(file, &e->buf, &e->len)) < 0) {
		fprintf(stderr, "shmdemux-bench: %s: %s\n", file,
			strerror(-rc));
		e->buf = NULL; /* slurp() freed it */
		return rc;
	}
	signal(SIGPIPE, SIG_IGN);
	/* before the broker and the connection, so it holds neither */
	if ((rc = writer_start(e->buf, e->len)) < 0) {
		fprintf(stderr, "shmdemux-bench: cannot start the writer: "
			"%s\n", strerror(-rc));
		return rc;
	}
	av_log_set_level(AV_LOG_ERROR);
	if (*socket == NULL) {
		if ((rc = start_broker(e->dir, sizeof(e->dir), e->sock,
				       sizeof(e->sock))) < 0) {
			fprintf(stderr, "shmdemux-bench: cannot start a "
				"broker: %s\n", strerror(-rc));
			return rc;
		}
		*socket = e->sock;
	}
	if ((rc = shmdemux_connect(&e->conn, *socket, 0)) < 0) {
		fprintf(stderr, "shmdemux-bench: connect %s: %s\n", *socket,
			shmdemux_strerror(rc));
		return rc;
	}
	return 0;
}

static void
bench_env_close(struct bench_env *e)
{
	shmdemux_disconnect(&e->conn);
	if (e->dir[0] != '\0')
		stop_broker(e->dir, e->sock);
	writer_stop();
	free(e->buf);
}

/* Interleaved pairs of (a) and (b) over e's bytes, their medians into *m
 * (bench_compare()). */
static int
bench_interleave(const struct bench_arms *arms, struct bench_env *e,
		 const char *file, int runs, int quiet, struct bench_medians *m)
{
	double ar[BENCH_MAX_RUNS], br[BENCH_MAX_RUNS];
	double am[BENCH_MAX_RUNS], bm[BENCH_MAX_RUNS], pr[BENCH_MAX_RUNS];
	int rc;

	for (int i = 0; i < runs; i++) {
		struct bench_result a = { 0, 0, 0 }, b = { 0, 0, 0 };

		if ((rc = arms->inproc(arms->ctx, &a)) < 0) {
			fprintf(stderr, "shmdemux-bench: in-process %s of %s "
				"failed\n", arms->what, file);
			return rc;
		}
		if ((rc = arms->broker(arms->ctx, e->conn, &b)) < 0) {
			fprintf(stderr, "shmdemux-bench: broker run: %s\n",
				shmdemux_strerror(rc));
			return rc;
		}
		if (a.count != b.count || a.bytes != b.bytes) {
			fprintf(stderr, "shmdemux-bench: %s counts differ: "
				"in-process %" PRIu64 "/%" PRIu64 " B, broker %"
				PRIu64 "/%" PRIu64 " B\n", arms->unit, a.count,
				a.bytes, b.count, b.bytes);
			return -EPROTO;
		}
		ar[i] = (double)a.count / a.secs;
		br[i] = (double)b.count / b.secs;
		am[i] = (double)a.bytes / a.secs / 1e6;
		bm[i] = (double)b.bytes / b.secs / 1e6;
		pr[i] = br[i] / ar[i];
		if (!quiet)
			printf("run %d: %" PRIu64 " %s, in-process %.1f %s/s, "
			       "broker %.1f %s/s\n", i + 1, a.count,
			       arms->unit, ar[i], arms->unit, br[i],
			       arms->unit);
	}
	m->a_rate = median(ar, runs);
	m->b_rate = median(br, runs);
	m->a_mbs = median(am, runs);
	m->b_mbs = median(bm, runs);
	m->pair_ratio = median(pr, runs);
	return 0;
}

int
bench_compare(const struct bench_arms *arms, const char *file,
	      const char **socket, int runs, int quiet, struct bench_medians *m)
{
	struct bench_env e = { 0 };
	int rc = bench_env_open(&e, file, socket);

	if (rc == 0)
		rc = bench_interleave(arms, &e, file, runs, quiet, m);
	bench_env_close(&e);
	return rc;
}
