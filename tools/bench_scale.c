/*
 * bench_scale.c - `shmdemux-bench scale FILE`: N streams at once.
 *   (a) N libavformat demuxers of FILE, one process each, in parallel;
 *   (b) N streams of FILE through the broker, each read by C consumers
 *       (threads spread over a few processes), all at once.
 * Every reader's packets are checked: their count and a running hash of
 * each packet (track, timestamps, size, payload) equal one in-process
 * demux of FILE. Reported: packets/s delivered, CPU per packet (readers,
 * broker and workers together), and what a stream costs the broker:
 * descriptors, resident ring memory, the broker's own RSS.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libavformat/avformat.h>

#include "bench.h"
#include "procstat.h"
#include "shmdemux.h"

#define SCALE_MAX_STREAMS 4096
#define SCALE_MAX_PROCS 32

/* ---- (b) readers: threads in a few processes ---- */

/* The readers of a process share its connection (an attached stream
 * has a connection of its own, its lifeline: the broker's connections,
 * at most 4096, are one per reader plus one per process), one attach at
 * a time. */
struct reader_job {
	shmdemux_conn *conn;
	pthread_mutex_t *lock;
	uint32_t id;
	struct tally t;
};

static void *
reader_thread(void *arg)
{
	struct reader_job *j = arg;
	struct shmdemux_packet p;
	shmdemux_stream *s = NULL;
	int rc;

	pthread_mutex_lock(j->lock);
	rc = shmdemux_attach(j->conn, j->id, NULL, SHMDEMUX_START_OLDEST, 0,
			     &s);
	pthread_mutex_unlock(j->lock);
	while (rc == 0 && (rc = shmdemux_read(s, &p, 60000)) >= 0) {
		tally_add(&j->t, p.track, p.pts, p.dts, p.data, p.size);
		rc = 0;
	}
	j->t.err = rc == SHMDEMUX_EOF ? 0 : rc;
	shmdemux_detach(&s);
	return NULL;
}

/* Process k of nproc: reads the stream ids, runs its readers (reader r
 * of all n*cons goes to process r % nproc, on stream r / cons), writes a
 * tally per reader. */
static void
readers_main(const char *sock, int k, int nproc, int n, int cons,
	     int idfd, int repfd)
{
	uint32_t *ids = calloc((size_t)n, sizeof(*ids));
	pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	int total = n * cons, mine = 0, r, rc;
	shmdemux_conn *conn = NULL;
	struct reader_job *jobs;
	pthread_t *th;
	int *started;

	for (r = k; r < total; r += nproc)
		mine++;
	jobs = calloc((size_t)mine + 1, sizeof(*jobs));
	th = calloc((size_t)mine + 1, sizeof(*th));
	started = calloc((size_t)mine + 1, sizeof(*started));
	if (ids == NULL || jobs == NULL || th == NULL || started == NULL ||
	    read(idfd, ids, (size_t)n * sizeof(*ids)) !=
	    (ssize_t)((size_t)n * sizeof(*ids)))
		_exit(1);
	rc = shmdemux_connect(&conn, sock, 0);
	for (int i = 0; i < mine; i++) {
		jobs[i].conn = conn;
		jobs[i].lock = &lock;
		jobs[i].id = ids[(k + i * nproc) / cons];
		started[i] = rc == 0 && pthread_create(&th[i], NULL,
							reader_thread,
							&jobs[i]) == 0;
		if (!started[i])
			jobs[i].t.err = rc < 0 ? rc : -EAGAIN;
	}
	for (int i = 0; i < mine; i++) {
		if (started[i])
			pthread_join(th[i], NULL);
		if (write(repfd, &jobs[i].t, sizeof(jobs[i].t)) !=
		    (ssize_t)sizeof(jobs[i].t))
			_exit(1);
	}
	_exit(0);
}

/* ---- the broker's costs, from /proc ---- */

struct broker_cost {
	int fds;
	uint64_t rss_kb;        /* resident */
	uint64_t ring_rss_kb;   /* allocated by its memfds (rings) */
	double cpu_s;           /* itself and its reaped workers */
};

static void
broker_cost(pid_t pid, struct broker_cost *bc)
{
	struct memfd_use mu;
	struct procstat ps;

	memset(bc, 0, sizeof(*bc));
	bc->fds = proc_count_fds(pid);
	proc_memfds(pid, &mu);
	bc->ring_rss_kb = mu.kb;
	if (procstat_read(pid, &ps) == 0) {
		bc->rss_kb = ps.rss_bytes / 1024;
		bc->cpu_s = (double)(ps.cpu_ms + ps.children_cpu_ms) / 1000.0;
	}
}

static double
children_cpu(void)
{
	struct rusage ru;

	getrusage(RUSAGE_CHILDREN, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
		(double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

struct scale_result {
	double secs, cpu_s;
	uint64_t packets;       /* delivered, all readers */
	int bad;                /* readers whose tally differs */
	struct broker_cost before, opened, after;
	/* how the bad broker readers ended: the first few codes, counted */
	int32_t err[4];
	int nerr[4];
};

/* Counts a bad reader's end code in r (the first 4 distinct ones). */
static void
note_err(struct scale_result *r, int32_t err)
{
	for (int i = 0; i < 4; i++) {
		if (r->nerr[i] == 0)
			r->err[i] = err;
		if (r->err[i] == err) {
			r->nerr[i]++;
			return;
		}
	}
}

static void
print_errs(const struct scale_result *r)
{
	for (int i = 0; i < 4 && r->nerr[i] > 0; i++)
		fprintf(stderr, "shmdemux-bench: %d reader(s) ended with %s\n",
			r->nerr[i], r->err[i] == 0 ? "other packets than "
			"in-process" : shmdemux_strerror(r->err[i]));
}

static int
run_inproc(const char *file, int n, const struct tally *ref,
	   struct scale_result *r)
{
	int rep[2], rc = 0, started = 0;
	double t0, c0 = children_cpu();
	pid_t *kids = calloc((size_t)n, sizeof(*kids));

	memset(r, 0, sizeof(*r));
	if (kids == NULL || pipe(rep) < 0) {
		free(kids);
		return -ENOMEM;
	}
	t0 = now_s();
	for (; started < n; started++) {
		kids[started] = fork();
		if (kids[started] == 0) {
			struct tally t;

			close(rep[0]);
			tally_demux_file(file, &t);
			_exit(write(rep[1], &t, sizeof(t)) == sizeof(t) ? 0 : 1);
		}
		if (kids[started] < 0) {
			rc = -errno;
			break;
		}
	}
	close(rep[1]);
	for (int i = 0; i < started; i++) {
		struct tally t;

		if (read(rep[0], &t, sizeof(t)) != (ssize_t)sizeof(t)) {
			rc = rc ? rc : -EIO;
			break;
		}
		r->packets += t.count;
		r->bad += t.err != 0 || !tally_same(&t, ref);
	}
	close(rep[0]);
	for (int i = 0; i < started; i++)
		reap(kids[i]);
	r->secs = now_s() - t0;
	r->cpu_s = children_cpu() - c0;
	free(kids);
	return rc;
}

static int
run_broker(shmdemux_conn *conn, const char *sock, const char *file, int n,
	   int cons, const struct tally *ref, struct scale_result *r)
{
	int nproc = n * cons < SCALE_MAX_PROCS ? n * cons : SCALE_MAX_PROCS;
	int idp[2], rep[2], rc = 0, opened = 0;
	pid_t kids[SCALE_MAX_PROCS], bpid = bench_broker_pid(sock);
	uint32_t *ids = calloc((size_t)n, sizeof(*ids));
	struct shmdemux_open_opts o;
	double t0, c0 = children_cpu();

	memset(r, 0, sizeof(*r));
	if (ids == NULL || pipe(idp) < 0 || pipe(rep) < 0) {
		free(ids);
		return -ENOMEM;
	}
	broker_cost(bpid, &r->before);
	/* readers first: forked before the clock, they wait for the ids */
	for (int k = 0; k < nproc; k++)
		if ((kids[k] = fork()) == 0) {
			close(idp[1]);
			close(rep[0]);
			readers_main(sock, k, nproc, n, cons, idp[0], rep[1]);
		}
	close(idp[0]);
	close(rep[1]);
	shmdemux_open_opts_init(&o);
	o.wait_consumers = (uint32_t)cons;
	t0 = now_s();
	for (; opened < n; opened++) {
		rc = shmdemux_open_path(conn, file, &o, &ids[opened]);
		if (rc < 0) {
			fprintf(stderr, "shmdemux-bench: stream %d of %d: %s "
				"(%s)\n", opened + 1, n, shmdemux_strerror(rc),
				shmdemux_conn_last_error(conn));
			break;
		}
	}
	broker_cost(bpid, &r->opened);
	/* every process reads all ids (a failed open leaves zeros: their
	 * readers fail and are counted bad) */
	for (int k = 0; k < nproc; k++)
		if (write(idp[1], ids, (size_t)n * sizeof(*ids)) !=
		    (ssize_t)((size_t)n * sizeof(*ids)))
			rc = rc ? rc : -EIO;
	close(idp[1]);
	for (int i = 0; i < n * cons; i++) {
		struct tally t;

		if (read(rep[0], &t, sizeof(t)) != (ssize_t)sizeof(t)) {
			rc = rc ? rc : -EIO;
			r->bad += n * cons - i;
			break;
		}
		r->packets += t.count;
		if (t.err != 0 || !tally_same(&t, ref)) {
			r->bad++;
			note_err(r, t.err);
		}
	}
	r->secs = now_s() - t0;
	close(rep[0]);
	for (int k = 0; k < nproc; k++)
		reap(kids[k]);
	broker_cost(bpid, &r->after);
	for (int i = 0; i < opened; i++)
		(void)shmdemux_close_stream(conn, ids[i], NULL);
	r->cpu_s = children_cpu() - c0 + r->after.cpu_s - r->before.cpu_s;
	free(ids);
	return rc;
}

static void
usage(FILE *f)
{
	fprintf(f,
"usage: shmdemux-bench scale FILE [--streams N,...] [--consumers C,...]\n"
"                                 [--json] [--socket PATH]\n"
"For each N (default 1,8,64,512) and C (default 1,2): (a) N libavformat\n"
"demuxers of FILE in parallel, one process each, then (b) N streams of\n"
"FILE opened at once through the broker, each read to its end by C\n"
"readers (threads in up to 32 processes). Every reader's packets are\n"
"checked against one in-process demux (count and a running hash of track,\n"
"timestamps, size and payload). Prints packets/s delivered, CPU per packet\n"
"(readers + broker + workers, from rusage and the broker's /proc), and the\n"
"broker's cost per stream: descriptors, resident ring memory after the\n"
"streams ended, its RSS. Raises this process's descriptor limit.\n"
"--socket uses a running broker instead of starting a private one.\n");
}

int
bench_scale(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "streams", required_argument, NULL, 'n' },
		{ "consumers", required_argument, NULL, 'c' },
		{ "json", no_argument, NULL, 'j' },
		{ "socket", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int ns[8] = { 1, 8, 64, 512 }, cs[8] = { 1, 2 }, nn = 4, nc = 2;
	const char *socket = NULL, *file;
	char dir[64] = "", sock[128] = "";
	shmdemux_conn *conn = NULL;
	struct rlimit rl;
	struct tally ref;
	int opt, json = 0, rc = 0, first = 1;

	while ((opt = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (opt) {
		case 'n': nn = bench_int_list(optarg, ns, 8, SCALE_MAX_STREAMS); break;
		case 'c': nc = bench_int_list(optarg, cs, 8, 64); break;
		case 'j': json = 1; break;
		case 's': socket = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (nn < 0 || nc < 0 || optind != argc - 1) {
		usage(stderr);
		return 2;
	}
	file = argv[optind];
	signal(SIGPIPE, SIG_IGN);
	av_log_set_level(AV_LOG_QUIET);
	/* readers hold a few descriptors each */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	tally_demux_file(file, &ref);
	if (ref.err != 0 || ref.count == 0) {
		fprintf(stderr, "shmdemux-bench: %s: cannot demux it\n", file);
		return 1;
	}
	if (socket == NULL) {
		if ((rc = start_broker(dir, sizeof(dir), sock, sizeof(sock)))) {
			fprintf(stderr, "shmdemux-bench: cannot start a broker: "
				"%s\n", strerror(-rc));
			return 1;
		}
		socket = sock;
	}
	rc = shmdemux_connect(&conn, socket, 0);
	if (json)
		printf("[");
	for (int i = 0; i < nn && rc == 0; i++) {
		struct scale_result a;

		rc = run_inproc(file, ns[i], &ref, &a);
		for (int j = 0; j < nc && rc == 0; j++) {
			struct scale_result b;
			double per_fd, ring_mb, rss_mb;

			rc = run_broker(conn, socket, file, ns[i], cs[j], &ref,
					&b);
			per_fd = (double)(b.opened.fds - b.before.fds) / ns[i];
			ring_mb = (double)(b.after.ring_rss_kb -
					   b.before.ring_rss_kb) / 1024.0 / ns[i];
			rss_mb = (double)b.after.rss_kb / 1024.0;
			if (json) {
				printf("%s{\"streams\":%d,\"consumers\":%d,"
				       "\"inproc_pkts_s\":%.0f,"
				       "\"broker_pkts_s\":%.0f,"
				       "\"inproc_cpu_us_per_pkt\":%.3f,"
				       "\"broker_cpu_us_per_pkt\":%.3f,"
				       "\"bad_readers\":%d,\"fds_per_stream\":%.2f,"
				       "\"ring_resident_mb_per_stream\":%.2f,"
				       "\"broker_rss_mb\":%.1f}",
				       first ? "" : ",", ns[i], cs[j],
				       (double)a.packets / a.secs,
				       (double)b.packets / b.secs,
				       a.cpu_s * 1e6 / (double)a.packets,
				       b.cpu_s * 1e6 / (double)b.packets,
				       a.bad + b.bad, per_fd, ring_mb, rss_mb);
				first = 0;
			} else {
				printf("N=%d C=%d: in-process %.0f packets/s "
				       "(%.2f us CPU each), broker %.0f packets/s "
				       "delivered (%.2f us CPU each); readers "
				       "wrong: %d in-process, %d broker\n"
				       "  per stream: %.1f broker fds, %.2f MB of "
				       "resident ring; broker RSS %.1f MB\n",
				       ns[i], cs[j], (double)a.packets / a.secs,
				       a.cpu_s * 1e6 / (double)a.packets,
				       (double)b.packets / b.secs,
				       b.cpu_s * 1e6 / (double)b.packets, a.bad,
				       b.bad, per_fd, ring_mb, rss_mb);
			}
			fflush(stdout);
			print_errs(&b);
			if (a.bad + b.bad > 0 && rc == 0)
				rc = -EPROTO;
		}
	}
	if (json)
		printf("]\n");
	if (rc < 0)
		fprintf(stderr, "shmdemux-bench: %s\n", shmdemux_strerror(rc));
	shmdemux_disconnect(&conn);
	if (dir[0] != '\0')
		stop_broker(dir, sock);
	return rc < 0 ? 1 : 0;
}
