/*
 * bench_short.c - `shmdemux-bench short CLIP...`: the thumbnailer's load,
 * many short files each opened, probed and read to its end, through
 *   (a) libavformat in the reading process (open, find_stream_info, every
 *       packet), each of C readers doing it for itself, and
 *   (b) the broker: one open, one worker, C readers attached to its ring,
 * by P processes at once, each taking every P-th clip; rounds of (a) then
 * (b) interleaved, medians reported. What the broker path adds per stream
 * (the request, the worker's hand-off, the attaches, the teardown) is what
 * this measures: time to first packet per reader (p50, p99) and clips per
 * second.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libavformat/avformat.h>

#include "bench.h"
#include "shmdemux.h"

#define SHORT_MAX_PAR 64
#define SHORT_MAX_CONS 16

struct short_conf {
	char **clips;
	int nclips;
	int repeat;          /* opens of each clip per round and arm */
	int rounds;
	int json;
	const char *socket;
};

/* What one reader of one clip saw. */
struct reader {
	const char *path;          /* (a) */
	shmdemux_conn *conn;       /* (b) */
	uint32_t id;               /* (b) */
	double t0, first;          /* job start; first packet (s), 0 = none */
	uint64_t packets, bytes;
	volatile uint64_t sink;
	int err;
};

/* Totals of one process's share, sent to the parent, then its first
 * packet latencies (ms), count of them. */
struct share {
	uint64_t packets, bytes;
	int32_t err;
	uint32_t nlat;
};

/* ---- (a) in-process ---- */

static void *
inproc_reader(void *arg)
{
	struct reader *r = arg;
	AVFormatContext *fmt = NULL;
	AVPacket *pkt = av_packet_alloc();
	int ret;

	if (pkt == NULL) {
		r->err = -ENOMEM;
		return NULL;
	}
	ret = avformat_open_input(&fmt, r->path, NULL, NULL);
	if (ret >= 0)
		ret = avformat_find_stream_info(fmt, NULL);
	while (ret >= 0 && (ret = av_read_frame(fmt, pkt)) >= 0) {
		if (r->first == 0)
			r->first = now_s();
		r->sink += touch(pkt->data, (size_t)pkt->size);
		r->packets++;
		r->bytes += (uint64_t)pkt->size;
		av_packet_unref(pkt);
	}
	if (ret != AVERROR_EOF)
		r->err = ret < 0 ? ret : -EIO;
	av_packet_free(&pkt);
	avformat_close_input(&fmt);
	return NULL;
}

/* ---- (b) broker ---- */

static void *
broker_reader(void *arg)
{
	struct reader *r = arg;
	struct shmdemux_packet p;
	shmdemux_stream *s = NULL;
	int ret;

	ret = shmdemux_attach(r->conn, r->id, NULL, SHMDEMUX_START_OLDEST, 0,
			      &s);
	while (ret >= 0 && (ret = shmdemux_read(s, &p, 30000)) >= 0) {
		if (r->first == 0)
			r->first = now_s();
		r->sink += touch(p.data, p.size);
		r->packets++;
		r->bytes += p.size;
	}
	if (ret != SHMDEMUX_EOF)
		r->err = ret < 0 ? ret : -EIO;
	shmdemux_detach(&s);
	return NULL;
}

/* One clip read by n readers, threads beyond the first. */
static void
run_readers(struct reader *rd, int n, void *(*fn)(void *))
{
	pthread_t th[SHORT_MAX_CONS];
	int started[SHORT_MAX_CONS] = { 0 };

	for (int i = 1; i < n; i++)
		started[i] = pthread_create(&th[i], NULL, fn, &rd[i]) == 0;
	fn(&rd[0]);
	for (int i = 1; i < n; i++) {
		if (started[i])
			pthread_join(th[i], NULL);
		else
			rd[i].err = -EAGAIN;
	}
}

/* Process k of par: its share of the clips, then the report on fd. */
static void
share_run(const struct short_conf *c, int broker, int k, int par, int cons,
	  int start_fd, int fd)
{
	int jobs = c->nclips * c->repeat;
	struct share sh = { 0 };
	shmdemux_conn *conn = NULL;
	struct shmdemux_open_opts o;
	double *lat = calloc((size_t)jobs * (size_t)cons, sizeof(*lat));
	struct reader rd[SHORT_MAX_CONS];
	char go;

	if (lat == NULL)
		sh.err = -ENOMEM;
	if (broker && sh.err == 0)
		sh.err = shmdemux_connect(&conn, c->socket, 0);
	/* all processes start together, once the parent says so */
	if (read(start_fd, &go, 1) < 0)
		sh.err = -errno;
	shmdemux_open_opts_init(&o);
	o.wait_consumers = (uint32_t)cons;
	for (int j = k; j < jobs && sh.err == 0; j += par) {
		const char *path = c->clips[j % c->nclips];
		double t0 = now_s();

		memset(rd, 0, sizeof(rd));
		for (int i = 0; i < cons; i++) {
			rd[i].path = path;
			rd[i].conn = conn;
			rd[i].t0 = t0;
		}
		if (broker) {
			uint32_t id;

			sh.err = shmdemux_open_path(conn, path, &o, &id);
			if (sh.err < 0)
				break;
			for (int i = 0; i < cons; i++)
				rd[i].id = id;
			run_readers(rd, cons, broker_reader);
			(void)shmdemux_close_stream(conn, id, NULL);
		} else {
			run_readers(rd, cons, inproc_reader);
		}
		for (int i = 0; i < cons && sh.err == 0; i++) {
			sh.err = rd[i].err;
			sh.packets += rd[i].packets;
			sh.bytes += rd[i].bytes;
			if (rd[i].first > 0)
				lat[sh.nlat++] = (rd[i].first - t0) * 1e3;
		}
	}
	shmdemux_disconnect(&conn);
	/* a blocking pipe of our own: the parent reads it all */
	if (write(fd, &sh, sizeof(sh)) != (ssize_t)sizeof(sh) ||
	    (sh.nlat > 0 && write(fd, lat, sh.nlat * sizeof(*lat)) !=
	     (ssize_t)(sh.nlat * sizeof(*lat))))
		_exit(1);
	_exit(0);
}

static int
read_full(int fd, void *buf, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = read(fd, (char *)buf + got, n - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -EIO;
		got += (size_t)r;
	}
	return 0;
}

/* One arm of one round: par processes, cons readers per clip. The
 * latencies are appended to lat (room for every job's readers). */
static int
arm_run(const struct short_conf *c, int broker, int par, int cons,
	double *secs, uint64_t *packets, double *lat, size_t *nlat)
{
	int start[2], rep[SHORT_MAX_PAR], rc = 0, n = 0;
	pid_t pid[SHORT_MAX_PAR];
	double t0;

	*packets = 0;
	if (pipe(start) < 0)
		return -errno;
	/* a pipe per process: reports longer than PIPE_BUF would interleave
	 * in a shared one */
	for (; n < par; n++) {
		int p[2];

		if (pipe(p) < 0) {
			rc = -errno;
			break;
		}
		pid[n] = fork();
		if (pid[n] == 0) {
			close(start[1]);
			close(p[0]);
			share_run(c, broker, n, par, cons, start[0], p[1]);
		}
		close(p[1]);
		if (pid[n] < 0) {
			rc = -errno;
			close(p[0]);
			break;
		}
		rep[n] = p[0];
	}
	close(start[0]);
	t0 = now_s();
	close(start[1]); /* go (or, after a failure, EOF: they end at once) */
	for (int k = 0; k < n; k++) {
		struct share sh;
		size_t want;

		if (read(rep[k], &sh, sizeof(sh)) != (ssize_t)sizeof(sh)) {
			rc = rc ? rc : -EIO;
			continue;
		}
		if (sh.err < 0 && rc == 0)
			rc = sh.err;
		*packets += sh.packets;
		want = sh.nlat * sizeof(*lat);
		if (sh.nlat > (size_t)c->nclips * (size_t)c->repeat *
		    (size_t)cons || read_full(rep[k], lat + *nlat, want) < 0)
			rc = rc ? rc : -EIO;
		else
			*nlat += sh.nlat;
	}
	*secs = now_s() - t0;
	for (int k = 0; k < n; k++) {
		close(rep[k]);
		reap(pid[k]);
	}
	return rc;
}

/* The p-quantile of v[0..n), sorted. */
static double
pct(const double *v, size_t n, double p)
{
	size_t i;

	if (n == 0)
		return 0;
	i = (size_t)(p * (double)(n - 1) + 0.5);
	return v[i < n ? i : n - 1];
}

struct combo_result {
	double clips_a, clips_b, ratio, pair_ratio;
	double p50_a, p99_a, p50_b, p99_b;
};

static int
combo(const struct short_conf *c, int par, int cons, struct combo_result *cr)
{
	size_t cap = (size_t)c->nclips * (size_t)c->repeat * (size_t)cons *
		(size_t)c->rounds;
	double *lat_a = calloc(cap, sizeof(double));
	double *lat_b = calloc(cap, sizeof(double));
	double ra[BENCH_MAX_RUNS], rb[BENCH_MAX_RUNS], pr[BENCH_MAX_RUNS];
	double jobs = (double)c->nclips * c->repeat;
	size_t na = 0, nb = 0;
	uint64_t pa, pb;
	double sa, sb;
	int rc = 0;

	if (lat_a == NULL || lat_b == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	for (int r = 0; r < c->rounds; r++) {
		rc = arm_run(c, 0, par, cons, &sa, &pa, lat_a, &na);
		if (rc == 0)
			rc = arm_run(c, 1, par, cons, &sb, &pb, lat_b, &nb);
		if (rc == 0 && pa != pb) {
			fprintf(stderr, "shmdemux-bench: in-process read %" PRIu64
				" packets, the broker's readers %" PRIu64 "\n",
				pa, pb);
			rc = -EPROTO;
		}
		if (rc < 0)
			goto out;
		ra[r] = jobs / sa;
		rb[r] = jobs / sb;
		pr[r] = rb[r] / ra[r];
		if (!c->json)
			printf("  round %d: in-process %.1f clips/s, broker %.1f "
			       "clips/s (%" PRIu64 " packets each)\n", r + 1,
			       ra[r], rb[r], pa);
	}
	cr->clips_a = median(ra, c->rounds);
	cr->clips_b = median(rb, c->rounds);
	cr->ratio = cr->clips_b / cr->clips_a;
	cr->pair_ratio = median(pr, c->rounds);
	if (na > 0)
		median(lat_a, (int)na); /* sorts */
	if (nb > 0)
		median(lat_b, (int)nb);
	cr->p50_a = pct(lat_a, na, 0.50);
	cr->p99_a = pct(lat_a, na, 0.99);
	cr->p50_b = pct(lat_b, nb, 0.50);
	cr->p99_b = pct(lat_b, nb, 0.99);
out:
	free(lat_a);
	free(lat_b);
	return rc;
}

static void
usage(FILE *f)
{
	fprintf(f,
"usage: shmdemux-bench short [--parallel P,...] [--consumers C,...]\n"
"                            [--repeat K] [--rounds R] [--json]\n"
"                            [--socket PATH] CLIP...\n"
"Opens each CLIP K times (default 4) and reads it to its end, (a) with\n"
"libavformat in the reading process (open, find_stream_info, every\n"
"packet; each of C readers for itself) and (b) through the broker (one\n"
"open, C readers attached), from P processes at once (every P-th clip\n"
"each); for every P and C given (default P 1,8 and C 1,4), R rounds\n"
"(default 3) of (a) then (b). Prints clips/s (median over the rounds),\n"
"the ratio b/a and the median of each round's own b/a, and the time from\n"
"a clip's start to each reader's first packet (p50, p99 over every\n"
"reader of every round). Both arms must read the same packets.\n"
"tests/media/gen-bench.sh makes a set of short clips (short_*).\n"
"--socket uses a running broker instead of starting a private one.\n");
}

int
bench_int_list(const char *s, int *v, int max, int limit)
{
	int n = 0;
	char *end;

	while (*s != '\0' && n < max) {
		long x = strtol(s, &end, 10);

		if (end == s || x < 1 || x > limit ||
		    (*end != ',' && *end != '\0'))
			return -1;
		v[n++] = (int)x;
		s = *end == ',' ? end + 1 : end;
	}
	return *s == '\0' && n > 0 ? n : -1;
}

int
bench_short(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "parallel", required_argument, NULL, 'p' },
		{ "consumers", required_argument, NULL, 'c' },
		{ "repeat", required_argument, NULL, 'k' },
		{ "rounds", required_argument, NULL, 'r' },
		{ "json", no_argument, NULL, 'j' },
		{ "socket", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct short_conf c = { .repeat = 4, .rounds = 3 };
	int par[8] = { 1, 8 }, cons[8] = { 1, 4 }, npar = 2, ncons = 2;
	char dir[64] = "", sock[128] = "";
	int opt, rc = 0, first = 1;

	while ((opt = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (opt) {
		case 'p':
			npar = bench_int_list(optarg, par, 8, SHORT_MAX_PAR);
			break;
		case 'c':
			ncons = bench_int_list(optarg, cons, 8, SHORT_MAX_CONS);
			break;
		case 'k': c.repeat = atoi(optarg); break;
		case 'r': c.rounds = atoi(optarg); break;
		case 'j': c.json = 1; break;
		case 's': c.socket = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	c.clips = argv + optind;
	c.nclips = argc - optind;
	if (npar < 0 || ncons < 0 || c.nclips < 1 || c.repeat < 1 ||
	    c.repeat > 10000 || c.rounds < 1 || c.rounds > BENCH_MAX_RUNS) {
		usage(stderr);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	av_log_set_level(AV_LOG_QUIET);
	if (c.socket == NULL) {
		if ((rc = start_broker(dir, sizeof(dir), sock, sizeof(sock)))) {
			fprintf(stderr, "shmdemux-bench: cannot start a broker: "
				"%s\n", strerror(-rc));
			return 1;
		}
		c.socket = sock;
	}
	if (c.json)
		printf("[");
	for (int i = 0; i < npar && rc == 0; i++) {
		for (int j = 0; j < ncons && rc == 0; j++) {
			struct combo_result cr;

			if (!c.json)
				printf("P=%d C=%d, %d clips x %d:\n", par[i],
				       cons[j], c.nclips, c.repeat);
			rc = combo(&c, par[i], cons[j], &cr);
			if (rc < 0)
				break;
			if (c.json) {
				printf("%s{\"parallel\":%d,\"consumers\":%d,"
				       "\"inproc_clips_s\":%.2f,"
				       "\"broker_clips_s\":%.2f,\"ratio\":%.3f,"
				       "\"pair_ratio\":%.3f,\"inproc_first_ms_p50\""
				       ":%.3f,\"inproc_first_ms_p99\":%.3f,"
				       "\"broker_first_ms_p50\":%.3f,"
				       "\"broker_first_ms_p99\":%.3f}",
				       first ? "" : ",", par[i], cons[j],
				       cr.clips_a, cr.clips_b, cr.ratio,
				       cr.pair_ratio, cr.p50_a, cr.p99_a,
				       cr.p50_b, cr.p99_b);
				first = 0;
			} else {
				printf("  clips/s: in-process %.1f, broker %.1f, "
				       "ratio %.2f (pair median %.2f)\n"
				       "  first packet ms: in-process p50 %.2f "
				       "p99 %.2f, broker p50 %.2f p99 %.2f "
				       "(p50 %+.2f)\n", cr.clips_a, cr.clips_b,
				       cr.ratio, cr.pair_ratio, cr.p50_a,
				       cr.p99_a, cr.p50_b, cr.p99_b,
				       cr.p50_b - cr.p50_a);
			}
			fflush(stdout);
		}
	}
	if (c.json)
		printf("]\n");
	if (rc < 0)
		fprintf(stderr, "shmdemux-bench: %s\n", shmdemux_strerror(rc));
	if (dir[0] != '\0')
		stop_broker(dir, sock);
	return rc < 0 ? 1 : 0;
}
