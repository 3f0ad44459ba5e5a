/*
 * worker_run.c - drive one shmdemux-worker the way the broker does, without
 * the broker: create a memfd ring and its admin channel, start the worker
 * on fds 0/2/3/4 (2: a pipe relayed to our stderr), read every record as a
 * consumer and print each packet as an ffprobe-compatible CSV line
 * (tools/pktcsv.h), so the output can be diffed with ffprobe-packets.
 *
 * usage: worker_run [--worker PATH] [--pipe] [--tracks] FILE
 *                   [-- WORKER-OPTIONS...]
 *   --pipe    feed FILE through a pipe (non-seekable) instead of handing the
 *             worker the file itself with --seekable
 *   --tracks  print the track table to stderr at every TRACKS record
 *   --count   print no packets, only a rate summary on stderr (packets/s
 *             and MB/s from worker start to end of stream, and the
 *             worker's CPU time)
 *   --term-after N
 *             SIGTERM the worker once N packets were read (0: once it
 *             has its signal handler, i.e. state OPENING); with --pipe the
 *             pipe is then held open after the file, so the worker is
 *             blocked in read(2) when the signal comes (stop test)
 * Exit status: the worker's exit code (128+N if killed by signal N), or 2.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "media.h"
#include "pktcsv.h"
#include "ring_admin.h"
#include "ring_consumer.h"
#include "worker_abi.h"

#define RUN_RING_SIZE (UINT64_C(64) << 20)
#define RUN_SLICE_MS 20

struct run {
	const char *worker;
	const char *file;
	int pipe_mode;
	int show_tracks;
	int count_only;
	uint64_t bytes;
	long term_after;            /* -1: never */
	int termed;
	char **wargs;
	int nwargs;
	int data_fd;
	int asock, wsock;           /* the admin channel: ours, the worker's */
	struct ring *admin, *cons;
	pid_t worker_pid, feeder_pid, relay_pid;
	int ended;
	int exit_code;
	uint64_t packets;
	struct rusage worker_ru;     /* the worker's, once reaped */
};

static void
die(const char *what, int err)
{
	fprintf(stderr, "worker_run: %s: %s\n", what, strerror(err));
	exit(2);
}

static void
default_worker(char *buf, size_t cap)
{
	ssize_t n = readlink("/proc/self/exe", buf, cap - 1);
	char *slash;

	if (n <= 0)
		die("readlink /proc/self/exe", errno);
	buf[n] = '\0';
	slash = strrchr(buf, '/');
	snprintf(slash + 1, cap - (size_t)(slash + 1 - buf), "shmdemux-worker");
}

static void
parse(struct run *r, int argc, char **argv, char *wbuf, size_t wcap)
{
	int i;

	for (i = 1; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
		if (!strcmp(argv[i], "--pipe"))
			r->pipe_mode = 1;
		else if (!strcmp(argv[i], "--tracks"))
			r->show_tracks = 1;
		else if (!strcmp(argv[i], "--count"))
			r->count_only = 1;
		else if (!strcmp(argv[i], "--worker") && i + 1 < argc)
			r->worker = argv[++i];
		else if (!strcmp(argv[i], "--term-after") && i + 1 < argc)
			r->term_after = strtol(argv[++i], NULL, 10);
		else
			goto usage;
	}
	if (i >= argc)
		goto usage;
	r->file = argv[i++];
	if (i < argc) {
		if (strcmp(argv[i], "--"))
			goto usage;
		r->wargs = argv + i + 1;
		r->nwargs = argc - i - 1;
	}
	if (!r->worker) {
		default_worker(wbuf, wcap);
		r->worker = wbuf;
	}
	return;
usage:
	fprintf(stderr, "usage: worker_run [--worker PATH] [--pipe] [--tracks] "
		"FILE [-- WORKER-OPTIONS...]\n");
	exit(2);
}

static void
make_ring(struct run *r)
{
	struct ring_params p = {
		.data_size = RUN_RING_SIZE,
		.max_consumers = 4,
		.mode = RING_MODE_LOSSLESS,
		.wait_consumers = 1,
		.lag_timeout_ms = 0,
	};
	char path[64];
	int ro, slot, page, sv[2], ret;

	r->data_fd = memfd_create("shmdemux-data",
				  MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (r->data_fd < 0)
		die("memfd_create", errno);
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		die("socketpair", errno);
	r->asock = sv[0];
	r->wsock = sv[1];
	if (fcntl(r->asock, F_SETFL, O_NONBLOCK) < 0)
		die("O_NONBLOCK", errno);
	if ((ret = ring_create(r->data_fd, &p)) < 0)
		die("ring_create", -ret);
	if ((ret = ring_map(&r->admin, r->data_fd, r->asock,
			    RING_ROLE_ADMIN)) < 0)
		die("ring_map admin", -ret);
	if ((slot = ring_slot_alloc(r->admin, getpid(), &page)) < 0)
		die("ring_slot_alloc", -slot);

	/* A consumer maps the data through a read-only file description, as
	 * the client library does with the fd the broker passes. */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", r->data_fd);
	if ((ro = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		die("reopen data read-only", errno);
	if ((ret = ring_map(&r->cons, ro, -1, RING_ROLE_CONSUMER)) < 0)
		die("ring_map consumer", -ret);
	close(ro);
	if ((ret = ring_attach(r->cons, page, RING_START_OLDEST)) < 0)
		die("ring_attach", -ret);
	close(page);
}

/* Copy the file into a pipe from a child process; returns the read end. */
static int
start_feeder(struct run *r, int in)
{
	static char buf[1 << 16];
	int p[2];

	if (pipe2(p, O_CLOEXEC) < 0)
		die("pipe2", errno);
	if ((r->feeder_pid = fork()) < 0)
		die("fork", errno);
	if (r->feeder_pid == 0) {
		ssize_t n;

		signal(SIGPIPE, SIG_IGN); /* the worker may stop reading */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(p[0]);
		while ((n = read(in, buf, sizeof(buf))) > 0)
			for (ssize_t off = 0; off < n;) {
				ssize_t m = write(p[1], buf + off,
						  (size_t)(n - off));
				if (m < 0 && errno == EINTR)
					continue;
				if (m < 0)
					_exit(0);
				off += m;
			}
		/* --term-after: no EOF, the worker must be stopped */
		while (r->term_after >= 0 && n == 0)
			pause();
		_exit(n < 0 ? 1 : 0);
	}
	close(p[1]);
	return p[0];
}

/* The worker's stderr is a pipe, as under the broker (worker_abi.h): with
 * RLIMIT_FSIZE 0 a write to a regular file (our stderr redirected) would
 * kill it. A child copies the pipe to our stderr until the worker is gone.
 * Returns the write end, for the worker. */
static int
start_log_relay(struct run *r)
{
	char buf[4096];
	int p[2];
	ssize_t n;

	if (pipe2(p, O_CLOEXEC) < 0)
		die("pipe", errno);
	if ((r->relay_pid = fork()) < 0)
		die("fork", errno);
	if (r->relay_pid == 0) {
		close(p[1]);
		while ((n = read(p[0], buf, sizeof(buf))) != 0) {
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 || write(STDERR_FILENO, buf, (size_t)n) != n)
				_exit(1);
		}
		_exit(0);
	}
	close(p[0]);
	return p[1];
}

/* In the child: put fd on target (via a high temporary so that sources and
 * targets may overlap), without close-on-exec. */
static void
place_fds(int in, int data, int admin, int log)
{
	int src[4] = { in, data, admin, log }, dst[4] = { WORKER_FD_INPUT,
		WORKER_FD_DATA, WORKER_FD_ADMIN, WORKER_FD_LOG }, tmp[4];
	int null = open("/dev/null", O_WRONLY);

	for (int i = 0; i < 4; i++)
		if ((tmp[i] = fcntl(src[i], F_DUPFD_CLOEXEC, 10)) < 0)
			_exit(127);
	for (int i = 0; i < 4; i++)
		if (dup2(tmp[i], dst[i]) < 0)
			_exit(127);
	if (null < 0 || dup2(null, 1) < 0)
		_exit(127);
	closefrom(WORKER_FD_ADMIN + 1);
}

static void
start_worker(struct run *r, int in)
{
	char *argv[16 + 64];
	int n = 0, log;

	if (r->nwargs > 64)
		die("too many worker options", E2BIG);
	argv[n++] = (char *)r->worker;
	argv[n++] = "--stream-id";
	argv[n++] = "1";
	if (!r->pipe_mode)
		argv[n++] = "--seekable";
	for (int i = 0; i < r->nwargs; i++)
		argv[n++] = r->wargs[i];
	argv[n] = NULL;

	log = start_log_relay(r);
	if ((r->worker_pid = fork()) < 0)
		die("fork", errno);
	if (r->worker_pid == 0) {
		place_fds(in, r->data_fd, r->wsock, log);
		execv(r->worker, argv);
		fprintf(stderr, "worker_run: exec %s: %s\n", r->worker,
			strerror(errno));
		_exit(127);
	}
	close(log);
	close(r->wsock);
	r->wsock = -1;
}

/* What the broker does after reaping: the final status. */
static void
end_stream(struct run *r, int status)
{
	const struct ring_hdr *h = ring_hdr(r->admin);
	uint32_t reason = h->worker_reason;
	int32_t averror = h->worker_averror;
	char msg[RING_MSG_LEN];

	/* keep the worker's own words for a clean exit */
	memcpy(msg, h->end_msg, sizeof(msg));
	msg[sizeof(msg) - 1] = '\0';

	if (WIFSIGNALED(status)) {
		r->exit_code = 128 + WTERMSIG(status);
		ring_set_end(r->admin, SD_END_CRASHED, -1, WTERMSIG(status), 0,
			     "worker killed by a signal");
	} else {
		r->exit_code = WEXITSTATUS(status);
		if (reason == SD_END_NONE || reason >= SD_END_MAX)
			reason = SD_END_EXITED;
		ring_set_end(r->admin, reason, r->exit_code, 0, averror,
			     msg[0] ? msg : "worker exited");
	}
	r->ended = 1;
}

static double
tv_ms(const struct timeval *tv)
{
	return (double)tv->tv_sec * 1e3 + (double)tv->tv_usec / 1e3;
}

static void
poll_worker(struct run *r)
{
	int status;
	pid_t p = wait4(r->worker_pid, &status, WNOHANG, &r->worker_ru);

	if (p == r->worker_pid)
		end_stream(r, status);
	else if (p < 0 && errno != EINTR)
		die("waitpid", errno);
}

static void
print_tracks(const struct run *r)
{
	size_t size = ring_tracks_size(r->cons);
	struct ring_tracks *tt = malloc(size);
	int64_t gen;

	if (!tt)
		die("malloc", ENOMEM);
	gen = ring_tracks_copy(r->cons, tt, size);
	if (gen < 0) {
		fprintf(stderr, "tracks: %s\n", strerror((int)-gen));
		free(tt);
		return;
	}
	fprintf(stderr, "tracks gen %" PRId64 ": %u, format %.32s\n", gen,
		tt->count < RING_MAX_TRACKS ? tt->count : RING_MAX_TRACKS,
		tt->format_name);
	for (uint32_t i = 0; i < tt->count && i < RING_MAX_TRACKS; i++) {
		const struct sd_track *t = &tt->tracks[i];

		fprintf(stderr, "  #%d type %d %.32s %dx%d %d Hz %d ch tb "
			"%d/%d extradata %u\n", t->index, t->media_type,
			t->codec_name, t->width, t->height, t->sample_rate,
			t->channels, t->tb_num, t->tb_den, t->extradata_len);
	}
	free(tt);
}

static void
print_packet(struct run *r, const struct ring_rd *v)
{
	struct sd_pkt_meta m;
	char line[SD_PKT_CSV_MAX];

	if (v->meta_len < sizeof(m)) {
		fprintf(stderr, "worker_run: short packet meta (%u)\n",
			v->meta_len);
		exit(2);
	}
	memcpy(&m, v->meta, sizeof(m));
	if ((uint64_t)m.side_data_len + sizeof(m) != v->meta_len) {
		fprintf(stderr, "worker_run: side data length mismatch\n");
		exit(2);
	}
	r->bytes += v->payload_len;
	if (r->count_only) {
		r->packets++;
		return;
	}
	if (sd_pkt_csv(line, sizeof(line), m.track, m.pts, m.dts, m.duration,
		       m.flags, v->payload, v->payload_len) < 0)
		die("pktcsv", EINVAL);
	puts(line);
	r->packets++;
}

static void
maybe_term(struct run *r)
{
	uint32_t state;

	if (r->termed || r->term_after < 0 ||
	    r->packets < (uint64_t)r->term_after)
		return;
	/* The worker sets OPENING after installing its SIGTERM handler;
	 * acquire pairs with that release store. */
	state = atomic_load_explicit(&ring_hdr(r->admin)->state,
				     memory_order_acquire);
	if (state < RING_STATE_OPENING)
		return;
	kill(r->worker_pid, SIGTERM);
	r->termed = 1;
}

static void
read_all(struct run *r)
{
	struct ring_rd v;
	int ret;

	for (;;) {
		ret = ring_next(r->cons, &v, RUN_SLICE_MS);
		maybe_term(r);
		if (ret == -EAGAIN) {
			if (!r->ended)
				poll_worker(r);
			continue;
		}
		if (ret == -EPIPE)
			return;
		if (ret < 0)
			die("ring_next", -ret);
		if (v.type == RING_REC_PACKET)
			print_packet(r, &v);
		else if (v.type == RING_REC_TRACKS && r->show_tracks)
			print_tracks(r);
		ring_release(r->cons, &v);
	}
}

int
main(int argc, char **argv)
{
	struct run r = { .data_fd = -1, .asock = -1, .wsock = -1,
			 .term_after = -1 };
	char wbuf[PATH_MAX];
	uint64_t t0, t1;
	int in, status;

	parse(&r, argc, argv, wbuf, sizeof(wbuf));
	if ((in = open(r.file, O_RDONLY | O_CLOEXEC)) < 0)
		die(r.file, errno);
	make_ring(&r);
	if (r.pipe_mode) {
		int p = start_feeder(&r, in);

		close(in);
		in = p;
	}
	t0 = now_ns();
	start_worker(&r, in);
	close(in);
	read_all(&r);
	t1 = now_ns();
	if (r.count_only) {
		double s = (double)(t1 - t0) / 1e9;

		fprintf(stderr, "%" PRIu64 " packets, %" PRIu64 " bytes in "
			"%.3f s: %.0f packets/s, %.1f MB/s; worker CPU %.0f ms "
			"user + %.0f ms system\n", r.packets, r.bytes, s,
			(double)r.packets / s, (double)r.bytes / s / 1e6,
			tv_ms(&r.worker_ru.ru_utime),
			tv_ms(&r.worker_ru.ru_stime));
	}
	if (fflush(stdout) != 0)
		die("stdout", errno);
	if (r.feeder_pid > 0) {
		if (r.term_after >= 0)
			kill(r.feeder_pid, SIGKILL);
		waitpid(r.feeder_pid, &status, 0);
	}
	if (r.relay_pid > 0)
		waitpid(r.relay_pid, &status, 0); /* EOF: the worker is gone */
	if (r.exit_code != 0)
		fprintf(stderr, "worker_run: worker exit %d (%.*s), %" PRIu64
			" packets\n", r.exit_code, RING_MSG_LEN,
			ring_hdr(r.admin)->end_msg, r.packets);
	ring_unmap(&r.cons);
	ring_unmap(&r.admin);
	close(r.data_fd);
	close(r.asock);
	return r.exit_code;
}
