/*
 * bench_demux.c - `shmdemux-bench demux FILE`: the same bytes through
 *   (a) an in-process libavformat loop reading a pipe, and
 *   (b) broker -> worker -> ring -> N consumer processes,
 * both touching every payload byte, runs interleaved, medians reported.
 *
 * Both sides read the input from a pipe fed by the same writer process
 * (bench_writer.c), which holds the whole file in memory, so neither
 * measures the disk.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libavformat/avformat.h>
#include <libavutil/mem.h>

#include "bench.h"
#include "parse_size.h"
#include "strescape.h"
#include "shmdemux.h"

struct demux_conf {
	const char *file;
	int consumers;
	int runs;
	int json;
	const char *socket;
	uint64_t ring_size;
};

/* Read every byte, as a consumer that looks at the payload would: 32
 * bytes per step into four independent sums, so the loop runs at the speed
 * of the loads rather than of one chain of dependent additions. */
uint64_t
touch(const uint8_t *p, size_t n)
{
	uint64_t s[4] = { 0, 0, 0, 0 }, w[4];
	size_t i = 0;

	for (; i + sizeof(w) <= n; i += sizeof(w)) {
		memcpy(w, p + i, sizeof(w));
		s[0] += w[0];
		s[1] += w[1];
		s[2] += w[2];
		s[3] += w[3];
	}
	for (; i < n; i++)
		s[0] += p[i];
	return s[0] + s[1] + s[2] + s[3];
}

int
slurp(const char *path, uint8_t **buf, size_t *len)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t got = 0;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -EINVAL;
	}
	*buf = malloc((size_t)st.st_size + 1);
	if (*buf == NULL) {
		close(fd);
		return -ENOMEM;
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, *buf + got, (size_t)st.st_size - got);

		if (n <= 0) {
			int err = n < 0 ? -errno : -EIO;

			free(*buf);
			close(fd);
			return err;
		}
		got += (size_t)n;
	}
	close(fd);
	*len = got;
	return 0;
}

void
reap(pid_t pid)
{
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}

/* ---- (a) in-process ---- */

int
read_cb(void *opaque, uint8_t *buf, int size)
{
	int fd = *(int *)opaque;
	ssize_t n;

	do
		n = read(fd, buf, (size_t)size);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return AVERROR(errno);
	return n == 0 ? AVERROR_EOF : (int)n;
}

int
bench_input_open(struct bench_input *in, AVDictionary **opts)
{
	uint8_t *iobuf;
	int p[2];

	in->fd = -1;
	in->fed = 0;
	in->pb = NULL;
	in->fmt = NULL;
	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	if (writer_feed(p[1]) < 0) {
		close(p[0]);
		close(p[1]);
		return -1;
	}
	close(p[1]);
	in->fd = p[0];
	in->fed = 1;
	if ((iobuf = av_malloc(32768)) == NULL)
		return -1;
	in->pb = avio_alloc_context(iobuf, 32768, 0, &in->fd, read_cb, NULL,
				    NULL);
	if (in->pb == NULL) {
		av_free(iobuf);
		return -1;
	}
	if ((in->fmt = avformat_alloc_context()) == NULL)
		return -1;
	in->fmt->pb = in->pb;
	in->fmt->flags |= AVFMT_FLAG_CUSTOM_IO;
	if (avformat_open_input(&in->fmt, NULL, NULL, opts) < 0 ||
	    avformat_find_stream_info(in->fmt, NULL) < 0)
		return -1;
	return 0;
}

int
bench_input_close(struct bench_input *in)
{
	int rc = 0;

	avformat_close_input(&in->fmt);
	if (in->pb != NULL) {
		av_freep(&in->pb->buffer);
		avio_context_free(&in->pb);
	}
	if (in->fd >= 0)
		close(in->fd);
	in->fd = -1;
	if (in->fed && writer_wait() < 0)
		rc = -1;
	in->fed = 0;
	return rc;
}

static int
run_inproc(const void *ctx, struct bench_result *r)
{
	struct bench_input in;
	AVDictionary *opts = NULL;
	AVPacket *pkt = av_packet_alloc();
	volatile uint64_t sink = 0;
	int rc = -1;
	double t0;

	(void)ctx; /* no settings: the worker's defaults */
	if (pkt == NULL)
		return -1;
	/* the worker's defaults */
	av_dict_set(&opts, "fflags", "+discardcorrupt+genpts", 0);
	av_dict_set(&opts, "err_detect", "ignore_err", 0);
	av_dict_set(&opts, "scan_all_pmts", "1", 0);
	t0 = now_s();
	if (bench_input_open(&in, &opts) < 0)
		goto out;
	r->count = r->bytes = 0;
	while (av_read_frame(in.fmt, pkt) >= 0) {
		sink += touch(pkt->data, (size_t)pkt->size);
		r->count++;
		r->bytes += (uint64_t)pkt->size;
		av_packet_unref(pkt);
	}
	r->secs = now_s() - t0;
	rc = 0;
out:
	if (bench_input_close(&in) < 0)
		rc = -1;
	av_packet_free(&pkt);
	av_dict_free(&opts);
	(void)sink;
	return rc;
}

/* ---- (b) through the broker ---- */

static int
consume_packet(shmdemux_stream *s, int rc, const struct shmdemux_packet *pkt,
	       struct bench_result *r, volatile uint64_t *sink)
{
	(void)s;
	if (rc != 0)
		return rc;
	*sink += touch(pkt->data, pkt->size);
	r->count++;
	r->bytes += pkt->size;
	return 0;
}

static int
run_broker(const void *ctx, shmdemux_conn *conn, struct bench_result *r)
{
	const struct demux_conf *c = ctx;
	struct shmdemux_open_opts o;
	struct bench_broker_conf bc = {
		.socket = c->socket,
		.consumers = c->consumers,
		.consume = consume_packet,
		.opts = &o,
	};

	shmdemux_open_opts_init(&o);
	o.noseek = 1;
	o.ring_size = c->ring_size;
	o.label = "bench";
	return bench_broker_run(conn, &bc, r);
}

/* ---- a private broker for the run ---- */

int
start_broker(char *dir, size_t dircap, char *sock, size_t sockcap)
{
	return start_broker_args(dir, dircap, sock, sockcap, NULL);
}

int
start_broker_args(char *dir, size_t dircap, char *sock, size_t sockcap,
		  const char *const *extra)
{
	const char *args[24] = { "shmdemuxd", "--daemon", "--socket", sock,
				 "--log-level", "warning" };
	char exe[PATH_MAX], bin[PATH_MAX + 32], *slash;
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	pid_t pid;
	int st, na = 6;

	for (; extra != NULL && extra[0] != NULL && na < 22; extra++)
		args[na++] = extra[0];
	if (n < 0)
		return -errno;
	exe[n] = '\0';
	slash = strrchr(exe, '/');
	if (slash == NULL)
		return -ENOENT;
	*slash = '\0';
	snprintf(bin, sizeof(bin), "%s/shmdemuxd", exe);
	snprintf(dir, dircap, "/tmp/shmdemux-bench.XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -errno;
	snprintf(sock, sockcap, "%s/sock", dir);
	pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);

		dup2(null, 1);
		/* its warnings and errors only: a stream's every start and
		 * end would bury the benchmark's own lines */
		execv(bin, (char *const *)args);
		_exit(127);
	}
	/* --daemon returns once the socket listens */
	if (pid < 0 || waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) ||
	    WEXITSTATUS(st) != 0)
		return -ECHILD;
	return 0;
}

pid_t
bench_broker_pid(const char *sock)
{
	char path[PATH_MAX + 8];
	long pid = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s.pid", sock);
	if ((f = fopen(path, "r")) != NULL) {
		if (fscanf(f, "%ld", &pid) != 1)
			pid = 0;
		fclose(f);
	}
	return (pid_t)pid;
}

void
stop_broker(const char *dir, const char *sock)
{
	pid_t pid = bench_broker_pid(sock);

	if (pid > 0) {
		/* the broker removes its socket and pidfile on exit: wait for
		 * the process to end through a pidfd (it is not our child) */
		int pfd = (int)syscall(SYS_pidfd_open, (pid_t)pid, 0);

		kill((pid_t)pid, SIGTERM);
		if (pfd >= 0) {
			struct pollfd pf = { .fd = pfd, .events = POLLIN };

			poll(&pf, 1, 10000);
			close(pfd);
		}
	}
	rmdir(dir);
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

double
median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void
usage(FILE *f)
{
	fprintf(f,
"usage: shmdemux-bench demux FILE [--consumers N] [--runs R] [--json]\n"
"                             [--ring-size BYTES] [--socket PATH]\n"
"Demuxes FILE, fed through a pipe, (a) in process with libavformat and\n"
"(b) through broker, worker, ring and N consumer processes (default 1),\n"
"each touching every payload byte; R interleaved runs (default 5).\n"
"Prints the median packets/s and MB/s of both and the ratio b/a of the\n"
"medians, and the median of each run's own b/a; with --json the last\n"
"line is one JSON object (ratio, pair_ratio).\n"
"--socket uses a running broker instead of starting a private one.\n");
}

int
bench_demux(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "consumers", required_argument, NULL, 'c' },
		{ "runs", required_argument, NULL, 'r' },
		{ "json", no_argument, NULL, 'j' },
		{ "socket", required_argument, NULL, 's' },
		{ "ring-size", required_argument, NULL, 'z' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct demux_conf c = { .consumers = 1, .runs = 5 };
	struct bench_arms arms = {
		.unit = "packets", .what = "demux",
		.inproc = run_inproc, .broker = run_broker, .ctx = &c,
	};
	struct bench_medians m;
	int opt;

	while ((opt = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (opt) {
		case 'c': c.consumers = atoi(optarg); break;
		case 'r': c.runs = atoi(optarg); break;
		case 'j': c.json = 1; break;
		case 's': c.socket = optarg; break;
		case 'z':
			if (parse_size(optarg, UINT64_MAX, &c.ring_size) < 0) {
				usage(stderr);
				return 2;
			}
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind + 1 != argc || c.consumers < 1 ||
	    c.consumers > BENCH_MAX_CONSUMERS || c.runs < 1 || c.runs > 64) {
		usage(stderr);
		return 2;
	}
	c.file = argv[optind];
	if (bench_compare(&arms, c.file, &c.socket, c.runs, c.json, &m) < 0)
		return 1;
	{
		double ap = m.a_rate, bp = m.b_rate, am = m.a_mbs, bm = m.b_mbs;

		if (c.json) {
			printf("{\"file\":");
			str_json(stdout, c.file);
			printf(",\"consumers\":%d,"
			       "\"runs\":%d,\"inproc_pkts_per_s\":%.0f,"
			       "\"broker_pkts_per_s\":%.0f,"
			       "\"inproc_mb_per_s\":%.1f,"
			       "\"broker_mb_per_s\":%.1f,\"ratio\":%.3f,"
			       "\"pair_ratio\":%.3f}\n", c.consumers, c.runs,
			       ap, bp, am, bm, bp / ap, m.pair_ratio);
		} else
			printf("%-12s %14s %10s\n%-12s %14.0f %10.1f\n"
			       "%-12s %14.0f %10.1f\nratio b/a: %.3f "
			       "(%d consumer%s, median of %d runs)\n"
			       "median of the runs' own b/a: %.3f\n",
			       "", "packets/s", "MB/s", "in-process", ap, am,
			       "broker", bp, bm, bp / ap, c.consumers,
			       c.consumers > 1 ? "s" : "", c.runs,
			       m.pair_ratio);
	}
	return 0;
}
