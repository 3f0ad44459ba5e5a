/*
 * bench_soak.c - `shmdemux-bench soak FILE...`: streams opened and closed
 * continuously against a private broker for --duration seconds, with
 * readers attaching, reading, detaching early and being SIGKILLed in the
 * middle of a read, and streams closed or killed early or run to their
 * end. Every reader that reads to the end is checked against an
 * in-process demux of its file (count and running hash, bench_check.c).
 * Once a second the broker's RSS, descriptors, the memfds it holds (its
 * rings) and /dev/shm are sampled; at the end each gets a least-squares
 * slope per minute, and once every stream is closed and reaped the
 * broker's descriptors, memfds and /dev/shm must be back to what they
 * were before the first stream, exactly.
 *
 * One driver process (this one) opens the streams and forks every reader
 * (a process each, so that it can be killed); readers report over one
 * pipe in messages shorter than PIPE_BUF, so their writes never mix.
 *
 * Over 800 lines: the driver (streams, readers, their churn), the sampling
 * and the slopes share its state; bench_check.c holds what other
 * benchmarks use too.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libavformat/avformat.h>

#include "bench.h"
#include "procstat.h"
#include "shmdemux.h"

#define SOAK_MAX_FILES 32
#define SOAK_MAX_ACTIVE 64     /* streams at once */
#define SOAK_MAX_READERS 5     /* per stream */
#define SOAK_READ_TIMEOUT_MS 20000
#define SOAK_STREAM_DEADLINE_S 60.0 /* a stream not done by then: stuck */
#define SOAK_DRAIN_S 30.0      /* after --duration: streams still open */
#define SOAK_SETTLE_S 20.0     /* for the table to empty, fds to return */
#define SOAK_RETAIN_S "2"      /* the broker's --retain-ended */
#define SOAK_DETACHED 1        /* tally.err of a reader that left early */

/* What a reader does. */
enum reader_kind {
	R_VERIFY,       /* reads to the end; counted by wait_consumers */
	R_DETACH,       /* reads a few packets, then detaches */
	R_KILL_MID,     /* reads a few packets, says so, waits holding its
	                   place in the stream, is SIGKILLed */
	R_KILL_ANY,     /* SIGKILLed at a random moment (attach included) */
};

/* What happens to a stream. */
enum stream_fate {
	F_END_CLOSE,    /* read to its end, then closed */
	F_END_LEAVE,    /* read to its end, left to the broker's reaping */
	F_CLOSE_EARLY,  /* closed while it is read */
	F_KILL_EARLY,   /* its worker killed while it is read, then closed */
};

static const char *const fate_names[] = {
	"end+close", "end+reap", "closed early", "killed early",
};

enum { MSG_MID = 1, MSG_DONE = 2 };

struct msg {
	int32_t slot, idx, type, overrun;
	struct tally t;
};

struct reader {
	pid_t pid;             /* 0: never started or reaped */
	int kind;
	int limit;             /* packets before detaching / saying MID */
	int done;              /* its MSG_DONE arrived */
	int overrun;
	int killed;            /* we sent SIGKILL */
	double kill_at;        /* R_KILL_ANY: when (0: not planned) */
	struct tally t;
};

struct soak_stream {
	int used;
	uint32_t id;
	int file, live, realtime, fate;
	double opened, stop_at;  /* stop_at: early close or kill, 0: none */
	int stopped;
	int nreaders;
	struct reader r[SOAK_MAX_READERS];
};

struct sample {
	double t;              /* seconds since the first stream */
	double rss_kb, fds, memfds, memfd_kb, shm, shm_kb;
	int streams, readers;
};

enum { S_RSS, S_FDS, S_MEMFDS, S_MEMFD_KB, S_SHM, S_SHM_KB, S_N };

static const struct {
	const char *name, *unit;
	/* a slope is flat within max(3 standard errors, one granule over
	 * the run) per minute of 0: the churn's own noise, or less growth
	 * than one step of the value (the broker's allocator grows its heap
	 * by 128 KiB steps and trims it back; a leak repeats them) */
	double granule;
} metric[S_N] = {
	{ "broker RSS", "kB", 128.0 },
	{ "broker fds", "fds", 1.0 },
	{ "ring memfds", "files", 1.0 },
	{ "ring memory", "kB", 1024.0 },
	{ "/dev/shm objects", "files", 0.0 },
	{ "/dev/shm size", "kB", 0.0 },
};

struct soak {
	const char *sock;
	pid_t broker;
	shmdemux_conn *conn;
	char **files;
	int nfiles;
	struct tally ref[SOAK_MAX_FILES];
	int max_active;
	double rate, t0;
	uint64_t rnd;
	int msg_rd, msg_wr;
	struct soak_stream s[SOAK_MAX_ACTIVE];
	struct sample *samples;
	size_t nsamples, cap;
	size_t w0, nwindow;    /* the slopes' samples: [w0, nwindow), from
	                          the end of the ramp-up to --duration */
	int verbose;
	/* counts */
	uint64_t opened, open_failed, fates[4];
	uint64_t readers, verified, wrong, lossy, detached, killed;
	uint64_t refused, cut, errors;
};

static uint64_t
rnd(struct soak *k)
{
	/* xorshift64* */
	k->rnd ^= k->rnd >> 12;
	k->rnd ^= k->rnd << 25;
	k->rnd ^= k->rnd >> 27;
	return k->rnd * 0x2545f4914f6cdd1du;
}

/* Uniform in [a, b). */
static double
rnd_in(struct soak *k, double a, double b)
{
	return a + (b - a) * (double)(rnd(k) >> 11) / 9007199254740992.0;
}

static void
soak_error(struct soak *k, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
soak_error(struct soak *k, const char *fmt, ...)
{
	va_list ap;

	k->errors++;
	if (k->errors > 20)
		return;
	va_start(ap, fmt);
	fprintf(stderr, "shmdemux-bench soak: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
}

/* ---- a reader: its own process ---- */

static void
send_msg(int fd, int slot, int idx, int type, int overrun,
	 const struct tally *t)
{
	struct msg m = { .slot = slot, .idx = idx, .type = type,
			 .overrun = overrun, .t = *t };

	(void)!write(fd, &m, sizeof(m));
}

static void
reader_main(const struct soak *k, int slot, int idx, pid_t parent)
{
	const struct soak_stream *st = &k->s[slot];
	const struct reader *me = &st->r[idx];
	struct shmdemux_packet p;
	shmdemux_conn *c = NULL;
	shmdemux_stream *s = NULL;
	struct tally t = { 0, 0, 0, 0, 0 };
	int rc, overrun = 0, n = 0;

	/* a driver that dies takes its readers along */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(0);
	close(k->msg_rd);
	rc = shmdemux_connect(&c, k->sock, 0);
	if (rc == 0)
		rc = shmdemux_attach(c, st->id, NULL, SHMDEMUX_START_OLDEST, 0,
				     &s);
	while (rc == 0) {
		rc = shmdemux_read(s, &p, SOAK_READ_TIMEOUT_MS);
		if (rc == SHMDEMUX_EOVERRUN) {
			overrun = 1;
			rc = 0;
			continue;
		}
		if (rc < 0)
			break;
		tally_add(&t, p.track, p.pts, p.dts, p.data, p.size);
		rc = 0;
		if (++n != me->limit)
			continue;
		if (me->kind == R_DETACH) {
			rc = SOAK_DETACHED;
			break;
		}
		if (me->kind == R_KILL_MID) {
			/* attached, its cursor mid-stream: the driver
			 * SIGKILLs it on this message */
			send_msg(k->msg_wr, slot, idx, MSG_MID, 0, &t);
			for (;;)
				pause();
		}
	}
	t.err = rc == SHMDEMUX_EOF ? 0 : rc;
	send_msg(k->msg_wr, slot, idx, MSG_DONE, overrun, &t);
	shmdemux_detach(&s);
	shmdemux_disconnect(&c);
	_exit(0);
}

/* ---- the driver ---- */

static void
open_stream(struct soak *k, double now)
{
	struct shmdemux_open_opts o;
	struct soak_stream *st = NULL;
	int slot, nverify, extra, rc;
	double f;

	for (slot = 0; slot < k->max_active && k->s[slot].used; slot++)
		;
	if (slot == k->max_active)
		return;
	st = &k->s[slot];
	memset(st, 0, sizeof(*st));
	st->file = (int)(rnd(k) % (uint64_t)k->nfiles);
	st->live = rnd(k) % 3 == 0;
	st->realtime = rnd(k) % 2 == 0;
	f = rnd_in(k, 0, 1);
	st->fate = f < 0.45 ? F_END_CLOSE : f < 0.65 ? F_END_LEAVE :
		f < 0.9 ? F_CLOSE_EARLY : F_KILL_EARLY;
	nverify = 1 + (int)(rnd(k) % 2);
	extra = (int)(rnd(k) % 3);
	shmdemux_open_opts_init(&o);
	o.mode = st->live ? SHMDEMUX_MODE_LIVE : SHMDEMUX_MODE_LOSSLESS;
	o.wait_consumers = st->live ? 0 : (uint32_t)nverify;
	o.realtime = st->realtime;
	rc = shmdemux_open_path(k->conn, k->files[st->file], &o, &st->id);
	if (rc < 0) {
		k->open_failed++;
		soak_error(k, "open %s: %s (%s)", k->files[st->file],
			   shmdemux_strerror(rc),
			   shmdemux_conn_last_error(k->conn));
		return;
	}
	k->opened++;
	k->fates[st->fate]++;
	st->used = 1;
	st->opened = now;
	if (st->fate == F_CLOSE_EARLY || st->fate == F_KILL_EARLY)
		st->stop_at = now + rnd_in(k, 0.02, st->realtime ? 1.5 : 0.3);
	st->nreaders = nverify + extra;
	for (int i = 0; i < st->nreaders; i++) {
		struct reader *r = &st->r[i];
		int count = (int)k->ref[st->file].count;

		r->kind = i < nverify ? R_VERIFY :
			(int)(R_DETACH + rnd(k) % 3);
		r->limit = 1 + (int)(rnd(k) % (uint64_t)(count > 2 ?
							 count - 1 : 1));
		if (r->kind == R_KILL_ANY)
			r->kill_at = now + rnd_in(k, 0, 0.4);
	}
	for (int i = 0; i < st->nreaders; i++) {
		pid_t parent = getpid(), pid = fork();

		if (pid == 0)
			reader_main(k, slot, i, parent);
		if (pid < 0) {
			soak_error(k, "fork: %s", strerror(errno));
			continue;
		}
		st->r[i].pid = pid;
		k->readers++;
	}
}

/* A reader's report: was it right, and was its end one it may have? */
static void
judge(struct soak *k, struct soak_stream *st, struct reader *r)
{
	const struct tally *ref = &k->ref[st->file];
	int32_t e = r->t.err;
	int early = st->fate == F_CLOSE_EARLY || st->fate == F_KILL_EARLY;

	if (e == 0 && !r->overrun) {
		/* it read to the end: every packet, in order */
		if (tally_same(&r->t, ref)) {
			k->verified++;
			return;
		}
		k->wrong++;
		soak_error(k, "WRONG: a reader of %s (stream %u) read %" PRIu64
			   " packets, %" PRIu64 " bytes, hash %016" PRIx64
			   "; in-process %" PRIu64 ", %" PRIu64 ", %016" PRIx64,
			   k->files[st->file], st->id, r->t.count, r->t.bytes,
			   r->t.hash, ref->count, ref->bytes, ref->hash);
		return;
	}
	if (e == 0) {
		/* a live reader lapped by the writer lost packets: said so */
		k->lossy++;
		if (!st->live)
			soak_error(k, "a lossless reader of stream %u saw an "
				   "overrun", st->id);
		return;
	}
	if (e == SOAK_DETACHED) {
		k->detached++;
		return;
	}
	if (early && (e == SHMDEMUX_ECLOSED || e == SHMDEMUX_EKILLED ||
		      e == -ENOENT || e == -ENODATA)) {
		k->cut++;
		return;
	}
	/* a reader that was not counted on may come after the end: the
	 * ring released (-ENODATA) or the stream gone (-ENOENT) */
	if (r->kind != R_VERIFY && (e == -ENOENT || e == -ENODATA)) {
		k->refused++;
		return;
	}
	soak_error(k, "a reader of stream %u (%s, %s%s) ended with %s",
		   st->id, fate_names[st->fate], st->live ? "live" : "lossless",
		   st->realtime ? ", realtime" : "", shmdemux_strerror(e));
}

static struct reader *
find_reader(struct soak *k, pid_t pid, struct soak_stream **stp)
{
	for (int i = 0; i < k->max_active; i++)
		for (int j = 0; k->s[i].used && j < k->s[i].nreaders; j++)
			if (k->s[i].r[j].pid == pid) {
				*stp = &k->s[i];
				return &k->s[i].r[j];
			}
	return NULL;
}

static void
read_msgs(struct soak *k)
{
	struct msg m;

	while (read(k->msg_rd, &m, sizeof(m)) == (ssize_t)sizeof(m)) {
		struct soak_stream *st;
		struct reader *r;

		if (m.slot < 0 || m.slot >= k->max_active ||
		    m.idx < 0 || m.idx >= SOAK_MAX_READERS)
			continue;
		st = &k->s[m.slot];
		r = &st->r[m.idx];
		if (!st->used || r->pid == 0)
			continue;
		if (m.type == MSG_MID && !r->killed && !r->done) {
			kill(r->pid, SIGKILL);
			r->killed = 1;
		} else if (m.type == MSG_DONE && !r->done) {
			r->done = 1;
			r->overrun = m.overrun;
			r->t = m.t;
		}
	}
}

static void
reap_readers(struct soak *k)
{
	struct soak_stream *st;
	struct reader *r;
	pid_t pid;
	int status;

	/* reports first: a reader writes before it exits */
	read_msgs(k);
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if ((r = find_reader(k, pid, &st)) == NULL)
			continue;
		/* all it wrote is in the pipe now: taken while its pid
		 * still marks it as running, before its slot can be reused */
		read_msgs(k);
		r->pid = 0;
		if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL &&
		    r->killed) {
			k->killed++;
			continue;
		}
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			soak_error(k, "a reader of stream %u died (status %#x)",
				   st->id, status);
			continue;
		}
		if (!r->done) {
			soak_error(k, "a reader of stream %u exited without "
				   "its report", st->id);
			continue;
		}
		judge(k, st, r);
	}
}

/* Kills due, early stops due, streams whose readers are all gone. With
 * drain set, every reader still running is stuck: killed, an error. */
static void
tend_streams(struct soak *k, double now, int drain)
{
	for (int i = 0; i < k->max_active; i++) {
		struct soak_stream *st = &k->s[i];
		int alive = 0, stuck = drain, rc;

		if (!st->used)
			continue;
		if (now - st->opened > SOAK_STREAM_DEADLINE_S)
			stuck = 1;
		for (int j = 0; j < st->nreaders; j++) {
			struct reader *r = &st->r[j];

			if (r->pid == 0)
				continue;
			alive++;
			if (r->killed)
				continue;
			if (stuck)
				soak_error(k, "a reader of stream %u still runs "
					   "after %.0f s: killed", st->id,
					   now - st->opened);
			if (stuck || (r->kill_at > 0 && now >= r->kill_at)) {
				kill(r->pid, SIGKILL);
				r->killed = 1;
			}
		}
		if (!st->stopped && st->stop_at > 0 && now >= st->stop_at) {
			st->stopped = 1;
			rc = st->fate == F_KILL_EARLY ?
				shmdemux_kill_stream(k->conn, st->id, NULL) :
				shmdemux_close_stream(k->conn, st->id, NULL);
			if (rc < 0 && rc != -ENOENT && rc != -ESRCH)
				soak_error(k, "stopping stream %u: %s", st->id,
					   shmdemux_strerror(rc));
		}
		if (alive > 0 || (st->stop_at > 0 && !st->stopped))
			continue;
		if (st->fate != F_END_LEAVE) {
			rc = shmdemux_close_stream(k->conn, st->id, NULL);
			if (rc < 0 && rc != -ENOENT)
				soak_error(k, "close stream %u: %s", st->id,
					   shmdemux_strerror(rc));
		}
		st->used = 0;
	}
}

static int
active_streams(const struct soak *k, int *readers)
{
	int n = 0;

	*readers = 0;
	for (int i = 0; i < k->max_active; i++) {
		n += k->s[i].used;
		for (int j = 0; k->s[i].used && j < k->s[i].nreaders; j++)
			*readers += k->s[i].r[j].pid != 0;
	}
	return n;
}

struct baseline {
	int fds;
	uint64_t rss_kb;       /* sampled and reported, not compared */
	struct memfd_use mem, shm;
};

static void
measure(const struct soak *k, struct baseline *b)
{
	struct procstat ps;

	b->fds = proc_count_fds(k->broker);
	b->rss_kb = procstat_read(k->broker, &ps) == 0 ?
		ps.rss_bytes / 1024 : 0;
	proc_memfds(k->broker, &b->mem);
	devshm_use(&b->shm);
}

static void
take_sample(struct soak *k, double now)
{
	struct baseline now_b;
	struct sample *sm;

	if (k->nsamples == k->cap) {
		size_t cap = k->cap ? 2 * k->cap : 256;
		struct sample *p = realloc(k->samples, cap * sizeof(*p));

		if (p == NULL)
			return;
		k->samples = p;
		k->cap = cap;
	}
	sm = &k->samples[k->nsamples++];
	memset(sm, 0, sizeof(*sm));
	sm->t = now - k->t0;
	measure(k, &now_b);
	sm->rss_kb = (double)now_b.rss_kb;
	sm->fds = now_b.fds;
	sm->memfds = (double)now_b.mem.files;
	sm->memfd_kb = (double)now_b.mem.kb;
	sm->shm = (double)now_b.shm.files;
	sm->shm_kb = (double)now_b.shm.kb;
	sm->streams = active_streams(k, &sm->readers);
	if (k->verbose)
		printf("t=%6.1f streams %2d readers %2d | RSS %.0f kB, fds %.0f, "
		       "memfds %.0f (%.0f kB), /dev/shm %.0f (%.0f kB)\n",
		       sm->t, sm->streams, sm->readers, sm->rss_kb, sm->fds,
		       sm->memfds, sm->memfd_kb, sm->shm, sm->shm_kb);
}

static double
sample_value(const struct sample *sm, int m)
{
	switch (m) {
	case S_RSS: return sm->rss_kb;
	case S_FDS: return sm->fds;
	case S_MEMFDS: return sm->memfds;
	case S_MEMFD_KB: return sm->memfd_kb;
	case S_SHM: return sm->shm;
	default: return sm->shm_kb;
	}
}

/* Least-squares slope of metric m over the samples, per minute, and its
 * standard error. */
static void
slope(const struct soak *k, int m, double *b, double *se)
{
	double n = (double)(k->nwindow - k->w0), mt = 0, mv = 0, stt = 0, stv = 0;
	double ssr = 0;

	*b = *se = 0;
	if (k->nwindow < k->w0 + 3)
		return;
	for (size_t i = k->w0; i < k->nwindow; i++) {
		mt += k->samples[i].t / 60.0;
		mv += sample_value(&k->samples[i], m);
	}
	mt /= n;
	mv /= n;
	for (size_t i = k->w0; i < k->nwindow; i++) {
		double dt = k->samples[i].t / 60.0 - mt;

		stt += dt * dt;
		stv += dt * (sample_value(&k->samples[i], m) - mv);
	}
	if (stt <= 0)
		return;
	*b = stv / stt;
	for (size_t i = k->w0; i < k->nwindow; i++) {
		double dt = k->samples[i].t / 60.0 - mt;
		double res = sample_value(&k->samples[i], m) - mv - *b * dt;

		ssr += res * res;
	}
	*se = sqrt(ssr / (n - 2) / stt);
}

/* Prints each metric's slope; returns how many grow (metric[] says when
 * a slope is flat). A fall is no leak. */
static int
report_slopes(const struct soak *k)
{
	int growing = 0;

	double mins;

	if (k->nwindow < k->w0 + 3)
		return 0;
	mins = (k->samples[k->nwindow - 1].t - k->samples[k->w0].t) / 60.0;
	printf("slopes (least squares over the %zu samples from %.0f s to the "
	       "end, per minute; flat: within max(3 standard errors, one "
	       "granule over the %.1f min) of 0):\n", k->nwindow - k->w0,
	       k->samples[k->w0].t, mins);
	for (int m = 0; m < S_N && k->nwindow > k->w0; m++) {
		double b, se, first = sample_value(&k->samples[k->w0], m);
		double last = sample_value(&k->samples[k->nwindow - 1], m);
		double max = first, bound;
		const char *verdict = "flat";

		for (size_t i = k->w0; i < k->nwindow; i++)
			if (sample_value(&k->samples[i], m) > max)
				max = sample_value(&k->samples[i], m);
		slope(k, m, &b, &se);
		bound = mins > 0 ? metric[m].granule / mins : 0;
		if (3 * se > bound)
			bound = 3 * se;
		if (b > bound) {
			verdict = "GROWING";
			growing++;
		} else if (b < -bound) {
			verdict = "falling";
		}
		printf("  %-17s %+10.2f %s/min (+-%.2f; flat within %.2f)  "
		       "first %.0f, last %.0f, max %.0f  %s\n", metric[m].name,
		       b, metric[m].unit, se, bound, first, last, max, verdict);
	}
	return growing;
}

/* Polls the broker's table until it is empty, up to a deadline. Returns
 * the streams still listed. */
static int
count_stream(const struct shmdemux_stream_info *info, void *ctx)
{
	(void)info;
	++*(int *)ctx;
	return 0;
}

static int
wait_table_empty(struct soak *k, double secs)
{
	double until = now_s() + secs;
	int n;

	for (;;) {
		n = 0;
		if (shmdemux_list(k->conn, count_stream, &n) < 0)
			return -1;
		if (n == 0 || now_s() >= until)
			return n;
		poll(NULL, 0, 50);
	}
}

static int
close_listed(const struct shmdemux_stream_info *info, void *ctx)
{
	struct soak *k = ctx;

	soak_error(k, "stream %u (%s) still listed", info->id,
		   shmdemux_state_name(info->state));
	return 0;
}

static int
at_baseline(const struct baseline *now, const struct baseline *base)
{
	return now->fds == base->fds && now->mem.files == base->mem.files &&
		now->shm.files == base->shm.files;
}

/* One stream of the first file read by one reader, closed and gone:
 * the broker's lazily made parts (timers) exist before the baseline. */
static int
warm_up(struct soak *k)
{
	struct soak_stream *st = &k->s[0];
	double until = now_s() + SOAK_DRAIN_S;
	pid_t parent;

	memset(st, 0, sizeof(*st));
	st->fate = F_END_CLOSE;
	if (shmdemux_open_path(k->conn, k->files[0], NULL, &st->id) < 0)
		return -1;
	st->used = 1;
	st->opened = now_s();
	st->nreaders = 1;
	st->r[0].kind = R_VERIFY;
	parent = getpid();
	st->r[0].pid = fork();
	if (st->r[0].pid == 0)
		reader_main(k, 0, 0, parent);
	while (st->used && now_s() < until) {
		struct pollfd pf = { .fd = k->msg_rd, .events = POLLIN };

		poll(&pf, 1, 50);
		reap_readers(k);
		tend_streams(k, now_s(), 0);
	}
	if (st->used || k->verified != 1 || k->errors != 0)
		return -1;
	k->verified = 0;
	return wait_table_empty(k, SOAK_SETTLE_S) == 0 ? 0 : -1;
}

static double
cpu_s(const struct rusage *ru)
{
	return (double)ru->ru_utime.tv_sec + ru->ru_utime.tv_usec / 1e6 +
		(double)ru->ru_stime.tv_sec + ru->ru_stime.tv_usec / 1e6;
}

static void
usage(FILE *f)
{
	fprintf(f,
"usage: shmdemux-bench soak FILE... [--duration SEC] [--rate R]\n"
"                                   [--streams N] [--seed N] [--verbose]\n"
"Against a private broker, for SEC seconds (default 120): opens R streams\n"
"a second (default 2), at most N at once (default 8), each of a FILE taken\n"
"at random, live or lossless, paced (realtime) or not; each read by 1-2\n"
"readers that read to the end and 0-2 that detach early or are SIGKILLed\n"
"mid-read; a stream is read to its end and closed, or left to the broker's\n"
"reaping (--retain-ended " SOAK_RETAIN_S "), or closed or killed early. "
"Every reader\n"
"that reads to the end is checked against an in-process demux (count and\n"
"running hash). Samples the broker's RSS, fds, ring memfds and /dev/shm\n"
"once a second and reports their slopes per minute; then waits for every\n"
"stream to be closed and reaped and checks fds, memfds and /dev/shm are\n"
"back to their values before the first stream. Exit 1 if a reader was\n"
"wrong, an error happened, or a value is not back; 2 for bad usage.\n");
}

int
bench_soak(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "duration", required_argument, NULL, 'd' },
		{ "rate", required_argument, NULL, 'r' },
		{ "streams", required_argument, NULL, 'n' },
		{ "seed", required_argument, NULL, 'S' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static const char *const broker_args[] = {
		"--retain-ended", SOAK_RETAIN_S,
		/* a broker left behind by a driver that died goes away */
		"--idle-exit", "30", NULL,
	};
	static struct soak k;
	char dir[64] = "", sock[128] = "";
	double duration = 120, next_open, next_sample, end, now;
	struct baseline base, fin;
	struct procstat ps0, ps1;
	struct rusage self0, self1, kids0, kids1;
	double wall;
	int opt, p[2], rc = 1, steep = 0, left, back;
	uint64_t seed = 1;

	k.max_active = 8;
	k.rate = 2;
	while ((opt = getopt_long(argc, argv, "hv", lo, NULL)) != -1) {
		switch (opt) {
		case 'd': duration = atof(optarg); break;
		case 'r': k.rate = atof(optarg); break;
		case 'n': k.max_active = atoi(optarg); break;
		case 'S': seed = strtoull(optarg, NULL, 10); break;
		case 'v': k.verbose = 1; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	k.nfiles = argc - optind;
	if (duration <= 0 || k.rate <= 0 || k.max_active < 1 ||
	    k.max_active > SOAK_MAX_ACTIVE || k.nfiles < 1 ||
	    k.nfiles > SOAK_MAX_FILES) {
		usage(stderr);
		return 2;
	}
	k.files = argv + optind;
	k.rnd = seed * 0x9e3779b97f4a7c15u + 1;
	signal(SIGPIPE, SIG_IGN);
	av_log_set_level(AV_LOG_QUIET);
	for (int i = 0; i < k.nfiles; i++) {
		if (k.files[i][0] != '/') {
			fprintf(stderr, "shmdemux-bench soak: %s: give an absolute "
				"path (the broker opens it)\n", k.files[i]);
			return 2;
		}
		tally_demux_file(k.files[i], &k.ref[i]);
		if (k.ref[i].err != 0 || k.ref[i].count == 0) {
			fprintf(stderr, "shmdemux-bench soak: %s: cannot demux "
				"it\n", k.files[i]);
			return 1;
		}
	}
	if (pipe2(p, O_CLOEXEC) < 0 || fcntl(p[0], F_SETFL, O_NONBLOCK) < 0) {
		perror("shmdemux-bench soak: pipe");
		return 1;
	}
	k.msg_rd = p[0];
	k.msg_wr = p[1];
	if (start_broker_args(dir, sizeof(dir), sock, sizeof(sock),
			      broker_args) < 0) {
		fprintf(stderr, "shmdemux-bench soak: cannot start a broker\n");
		return 1;
	}
	k.sock = sock;
	k.broker = bench_broker_pid(sock);
	if (k.broker <= 0 || shmdemux_connect(&k.conn, sock, 0) < 0 ||
	    warm_up(&k) < 0) {
		fprintf(stderr, "shmdemux-bench soak: the broker is not "
			"usable (warm-up stream failed)\n");
		goto out;
	}
	measure(&k, &base);
	if (procstat_read(k.broker, &ps0) < 0)
		memset(&ps0, 0, sizeof(ps0));
	getrusage(RUSAGE_SELF, &self0);
	getrusage(RUSAGE_CHILDREN, &kids0);
	printf("soak: %d file(s), %.0f s, %.1f streams/s, at most %d at once, "
	       "seed %" PRIu64 "; broker pid %d: %d fds, %" PRIu64 " memfds, "
	       "/dev/shm %" PRIu64 " objects before the first stream\n",
	       k.nfiles, duration, k.rate, k.max_active, seed, (int)k.broker,
	       base.fds, base.mem.files, base.shm.files);
	fflush(stdout);
	k.t0 = now = now_s();
	next_open = next_sample = now;
	end = now + duration;
	for (;;) {
		struct pollfd pf = { .fd = k.msg_rd, .events = POLLIN };
		double wake;
		int readers;

		now = now_s();
		if (now >= next_sample) {
			take_sample(&k, now);
			next_sample += 1.0;
		}
		if (now < end && now >= next_open) {
			open_stream(&k, now);
			/* exponential gaps: bursts and lulls */
			next_open = now - log(rnd_in(&k, 1e-6, 1)) / k.rate;
		}
		reap_readers(&k);
		tend_streams(&k, now, now > end + SOAK_DRAIN_S);
		if (now < end)
			k.nwindow = k.nsamples;
		/* the ramp-up (streams at once climbing from 0) is no
		 * trend: a quarter of the run, at most 10 s */
		if (now < k.t0 + (duration / 4 < 10 ? duration / 4 : 10))
			k.w0 = k.nsamples;
		if (now >= end && active_streams(&k, &readers) == 0)
			break;
		wake = next_sample < next_open || now >= end ? next_sample :
			next_open;
		pf.revents = 0;
		poll(&pf, 1, wake > now ? (int)((wake - now) * 1000) + 1 : 0);
	}
	wall = now_s() - k.t0;
	if (procstat_read(k.broker, &ps1) < 0)
		ps1 = ps0;
	getrusage(RUSAGE_SELF, &self1);
	getrusage(RUSAGE_CHILDREN, &kids1);
	take_sample(&k, now_s());
	/* every stream closed or ended: the broker reaps them */
	left = wait_table_empty(&k, SOAK_SETTLE_S);
	if (left != 0) {
		shmdemux_list(k.conn, close_listed, &k);
		soak_error(&k, "%d stream(s) not reaped "
			   "after %.0f s", left, SOAK_SETTLE_S);
	}
	/* then its descriptors and memfds go, the spare comes back */
	now = now_s();
	do {
		measure(&k, &fin);
		back = at_baseline(&fin, &base);
		if (!back)
			poll(NULL, 0, 50);
	} while (!back && now_s() < now + SOAK_SETTLE_S);
	printf("streams opened %" PRIu64 " (%" PRIu64 " read to the end and "
	       "closed, %" PRIu64 " left to the broker's reaping, %" PRIu64
	       " closed early, %" PRIu64 " killed early), %" PRIu64
	       " failed to open\n", k.opened, k.fates[F_END_CLOSE],
	       k.fates[F_END_LEAVE], k.fates[F_CLOSE_EARLY],
	       k.fates[F_KILL_EARLY], k.open_failed);
	printf("readers %" PRIu64 ": %" PRIu64 " verified exact, %" PRIu64
	       " WRONG, %" PRIu64 " lapped (live, said so), %" PRIu64
	       " detached early, %" PRIu64 " SIGKILLed, %" PRIu64
	       " cut by an early close or kill, %" PRIu64 " came after the "
	       "end; errors %" PRIu64 "\n", k.readers, k.verified, k.wrong,
	       k.lossy, k.detached, k.killed, k.cut, k.refused, k.errors);
	{
		double b = (double)(ps1.cpu_ms + ps1.children_cpu_ms -
				    ps0.cpu_ms - ps0.children_cpu_ms) / 1000.0;
		double r = cpu_s(&kids1) - cpu_s(&kids0);
		double d = cpu_s(&self1) - cpu_s(&self0);

		printf("CPU over %.0f s: broker %.1f s with its workers, readers "
		       "%.1f s, driver %.1f s: %.0f%% of one core\n", wall, b,
		       r, d, 100.0 * (b + r + d) / wall);
	}
	steep = report_slopes(&k);
	printf("after every stream was closed and reaped: fds %d (before "
	       "%d), memfds %" PRIu64 " (before %" PRIu64 "), /dev/shm %"
	       PRIu64 " (before %" PRIu64 "): %s; broker RSS %" PRIu64
	       " kB (before %" PRIu64 ")\n", fin.fds, base.fds,
	       fin.mem.files, base.mem.files, fin.shm.files, base.shm.files,
	       back ? "back to baseline" : "NOT BACK TO BASELINE",
	       fin.rss_kb, base.rss_kb);
	printf("result: %s; %s\n",
	       k.wrong == 0 && k.errors == 0 && back ? "PASS" : "FAIL",
	       steep == 0 ? "no value grows (slopes flat or falling)" :
	       "a value GROWS (slope above its bound)");
	rc = k.wrong == 0 && k.errors == 0 && back ? 0 : 1;
out:
	shmdemux_disconnect(&k.conn);
	stop_broker(dir, sock);
	free(k.samples);
	return rc;
}
