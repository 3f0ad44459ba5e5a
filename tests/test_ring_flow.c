/*
 * test_ring_flow.c - the ring with real processes and real shared memory:
 * one producer process, consumer processes, this process as the broker.
 *
 *   test_ring_flow lossless   4 consumers see every record intact, in order
 *   test_ring_flow live       slow consumers: overruns, resync at RING_RF_SYNC
 *   test_ring_flow kill       a SIGKILLed consumer freed by the broker
 *   test_ring_flow evict      a stuck consumer evicted after lag_timeout_ms
 *   test_ring_flow lag        lag age: a consumer jiggling its cursor and
 *                             one releasing a record per (timeout - 50 ms)
 *                             are evicted after about the timeout; an
 *                             honest slow one and a fast one are not
 *   test_ring_flow wait       wait_consumers: late consumers still see seq 0
 *   test_ring_flow wake       wake batching: a sleeping consumer wakes
 *                             promptly after ring_flush(), and after
 *                             RING_WAKE_BATCH_RECS records without one
 *   test_ring_flow api        start positions, end status, timeouts, tracks
 */
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "futex.h"
#include "ring_testlib.h"

#define NCONS_MAX 8

/* What the producer helper does. */
struct prod {
	struct tring *t;
	uint64_t nsmall, nbig;   /* records: small ones first, then big */
	uint64_t small_max, big_max;
	unsigned sync_every;
	int timeout_ms;          /* per reserve; 0 = must never wait */
};

struct cons {
	struct tring *t;
	unsigned slot;
	int page_fd;             /* its cursor page, from tring_add() */
	struct prod *p;          /* to re-derive sizes and count */
	int live;
	unsigned dawdle;         /* live: extra passes over each payload */
	int notify_fd;           /* write one byte after stop_after records */
	int go_fd;               /* then wait here (evict) or stop (kill) */
	uint64_t stop_after;
	int expect_reset;        /* after go: ring_next must say -ECONNRESET */
	unsigned pace_us;        /* honest but slow: this long per record */
	int misbehave;           /* lag test: LAG_JIGGLE or LAG_TRICKLE */
};

static uint64_t
rec_size(const struct prod *p, uint64_t seq, uint64_t *rng)
{
	if (seq < p->nsmall)
		return tlogsize(rng, 1, p->small_max);
	return tlogsize(rng, p->small_max, p->big_max);
}

static int
producer(void *arg)
{
	struct prod *p = arg;
	struct ring *r;
	struct ring_wr w;
	struct tmeta *m;
	uint64_t seq, rng = 0x1234567, n = p->nsmall + p->nbig, len;
	int ret;

	TCHECK(tring_map_producer(p->t, &r) == 0, "map");
	ring_set_state(r, RING_STATE_RUNNING);
	for (seq = 0; seq < n; seq++) {
		len = rec_size(p, seq, &rng);
		ret = ring_reserve(r, sizeof(*m), len, &w, p->timeout_ms);
		TCHECK(ret == 0, "reserve seq %llu: %s", (unsigned long long)seq,
		       strerror(-ret));
		m = w.meta;
		m->seq = seq;
		m->len = len;
		m->sum = tfill(w.payload, len, seq);
		ret = ring_publish(r, &w, RING_REC_PACKET,
				   seq % p->sync_every ? 0 : RING_RF_SYNC);
		TCHECK(ret == 0, "publish");
	}
	ring_unmap(&r);
	return 0;
}

static void
notify(int fd)
{
	char c = 'x';

	TCHECK(write(fd, &c, 1) == 1, "notify");
}

static void
await(int fd)
{
	char c;

	TCHECK(read(fd, &c, 1) == 1, "await");
}

/* Lossless reader: every record, in order, intact. */
static int
consumer(void *arg)
{
	struct cons *c = arg;
	struct ring *r;
	struct ring_rd v;
	struct tmeta m;
	uint64_t seq = 0, rng = 0x1234567, n = c->p->nsmall + c->p->nbig;
	int ret;

	TCHECK(tring_map_consumer(c->t, &r) == 0, "map");
	TCHECK(ring_attach(r, c->page_fd, RING_START_OLDEST) == 0, "attach");
	for (;;) {
		if (c->stop_after && seq == c->stop_after) {
			notify(c->notify_fd);
			await(c->go_fd);
			if (c->expect_reset) {
				ret = ring_next(r, &v, 1000);
				TCHECK(ret == -ECONNRESET, "evicted: %d", ret);
				ring_unmap(&r);
				return 0;
			}
		}
		ret = ring_next(r, &v, 30000);
		if (ret == -EPIPE)
			break;
		TCHECK(ret == 0, "next at seq %llu: %s",
		       (unsigned long long)seq, strerror(-ret));
		TCHECK(v.meta_len == sizeof(m) && v.type == RING_REC_PACKET,
		       "meta_len %u", v.meta_len);
		memcpy(&m, v.meta, sizeof(m));
		TCHECK(m.seq == seq && v.seq == seq, "seq %llu want %llu",
		       (unsigned long long)m.seq, (unsigned long long)seq);
		TCHECK(m.len == v.payload_len &&
		       m.len == rec_size(c->p, seq, &rng), "len");
		TCHECK(tsum(v.payload, v.payload_len) == m.sum,
		       "checksum at seq %llu", (unsigned long long)seq);
		TCHECK(ring_view_valid(r, &v) == 0, "view valid");
		if (c->pace_us != 0)
			usleep(c->pace_us);
		ring_release(r, &v);
		seq++;
	}
	TCHECK(seq == n, "got %llu of %llu", (unsigned long long)seq,
	       (unsigned long long)n);
	ring_unmap(&r);
	return 0;
}

/* Live reader that dawdles so it is lapped. Accepts a record only if its
 * checksum was computed while ring_view_valid() still said intact. */
static int
live_consumer(void *arg)
{
	struct cons *c = arg;
	struct ring *r;
	struct ring_rd v;
	struct tmeta m;
	uint64_t sum = 0, last = UINT64_MAX, accepted = 0, torn = 0;
	unsigned i;
	int ret, resync = 0;

	TCHECK(tring_map_consumer(c->t, &r) == 0, "map");
	TCHECK(ring_attach(r, c->page_fd, RING_START_OLDEST) == 0, "attach");
	for (;;) {
		ret = ring_next(r, &v, 30000);
		if (ret == -EPIPE)
			break;
		if (ret == -EOVERFLOW) {
			resync = 1;
			continue;
		}
		TCHECK(ret == 0, "next: %s", strerror(-ret));
		if (v.meta_len != sizeof(m)) {
			TCHECK(ring_view_valid(r, &v) != 0, "bad meta_len");
			torn++;
			continue;
		}
		memcpy(&m, v.meta, sizeof(m));
		for (i = 0; i <= c->dawdle; i++)
			sum = tsum(v.payload, v.payload_len);
		sched_yield();
		if (ring_view_valid(r, &v) != 0) {
			torn++;
			continue; /* the next ring_next reports the overrun */
		}
		TCHECK(sum == m.sum && m.len == v.payload_len &&
		       m.seq == v.seq, "accepted a corrupt record, seq %llu",
		       (unsigned long long)v.seq);
		TCHECK(last == UINT64_MAX || v.seq > last, "order");
		if (resync)
			TCHECK(v.flags & RING_RF_SYNC,
			       "first record after overrun lacks SYNC");
		resync = 0;
		last = v.seq;
		accepted++;
		ring_release(r, &v);
	}
	TCHECK(accepted > 0, "accepted nothing");
	printf("live consumer slot %u: accepted %llu, torn %llu, "
	       "overruns %llu\n", c->slot, (unsigned long long)accepted,
	       (unsigned long long)torn,
	       (unsigned long long)ring_overruns(r));
	ring_unmap(&r);
	return 0;
}

static struct ring_params
params(uint64_t size, uint32_t mode, uint32_t wait, uint32_t lag)
{
	struct ring_params p = {
		.data_size = size, .max_consumers = NCONS_MAX, .mode = mode,
		.wait_consumers = wait, .lag_timeout_ms = lag,
	};
	return p;
}

/* A fresh slot and cursor page for c, as the broker makes them. */
static void
add_consumer(struct tring *t, struct cons *c)
{
	int ret = tring_add(t, &c->page_fd);

	TCHECK(ret >= 0, "slot alloc: %s", strerror(-ret));
	c->slot = (unsigned)ret;
}

/* Fork n consumers on fresh slots, then the producer; reap all and end the
 * stream when the producer is done. Returns nonzero on failure. */
static int
run(struct tring *t, struct prod *p, struct cons *c, unsigned n,
    int (*fn)(void *))
{
	pid_t cp[NCONS_MAX], pp;
	unsigned i;
	int ret, fail = 0;

	for (i = 0; i < n; i++) {
		c[i].t = t;
		c[i].p = p;
		add_consumer(t, &c[i]);
		cp[i] = tchild(fn, &c[i]);
		close(c[i].page_fd);
	}
	pp = tchild(producer, p);
	if ((ret = twait(pp)) != 0) {
		fprintf(stderr, "producer failed: %d\n", ret);
		fail = 1;
	}
	ring_set_end(t->admin, SD_END_EOF, 0, 0, 0, NULL);
	for (i = 0; i < n; i++)
		if ((ret = twait(cp[i])) != 0) {
			fprintf(stderr, "consumer %u failed: %d\n", i, ret);
			fail = 1;
		}
	return fail;
}

static int
test_lossless(void)
{
	struct tring t;
	struct ring_params rp = params(64u << 20, RING_MODE_LOSSLESS, 4, 0);
	struct prod p = {
		.t = &t, .nsmall = 1000000, .nbig = 1000, .small_max = 65536,
		.big_max = 16u << 20, .sync_every = 16, .timeout_ms = -1,
	};
	struct cons c[4] = { 0 };
	struct ring_stats st;
	int fail;

	TCHECK(tring_create(&t, &rp) == 0, "create");
	fail = run(&t, &p, c, 4, consumer);
	ring_stats(t.admin, &st);
	printf("lossless: %llu records, %llu payload bytes, producer waits "
	       "%llu\n", (unsigned long long)st.records,
	       (unsigned long long)st.bytes,
	       (unsigned long long)st.producer_waits);
	TCHECK(st.records == p.nsmall + p.nbig, "records");
	tring_destroy(&t);
	return fail;
}

static int
test_live(void)
{
	struct tring t;
	struct ring_params rp = params(1u << 20, RING_MODE_LIVE, 0, 0);
	struct prod p = {
		.t = &t, .nsmall = 300000, .nbig = 0, .small_max = 16384,
		.big_max = 16384, .sync_every = 32, .timeout_ms = 0,
	};
	struct cons c[2] = { { .dawdle = 4 }, { .dawdle = 8 } };
	struct ring_stats st;
	int fail;

	TCHECK(tring_create(&t, &rp) == 0, "create");
	fail = run(&t, &p, c, 2, live_consumer);
	ring_stats(t.admin, &st);
	printf("live: %llu records, overruns %llu, producer waits %llu\n",
	       (unsigned long long)st.records,
	       (unsigned long long)st.overruns,
	       (unsigned long long)st.producer_waits);
	TCHECK(st.overruns > 0, "no overrun counted");
	TCHECK(st.producer_waits == 0, "live producer waited");
	tring_destroy(&t);
	return fail;
}

/* One consumer stops mid-stream; the broker kills (kill) or the producer
 * evicts (evict) it; the other one must still get everything. */
static int
test_stuck(int evict)
{
	struct tring t;
	struct ring_params rp = params(1u << 20, RING_MODE_LOSSLESS, 2,
				       evict ? 300 : 0);
	struct prod p = {
		.t = &t, .nsmall = 20000, .nbig = 0, .small_max = 8192,
		.big_max = 8192, .sync_every = 16, .timeout_ms = -1,
	};
	struct cons c[2] = { 0 };
	int note[2], go[2], fail = 0, ret;
	pid_t cp[2], pp;
	unsigned i;

	TCHECK(pipe(note) == 0 && pipe(go) == 0, "pipe");
	TCHECK(tring_create(&t, &rp) == 0, "create");
	c[0].notify_fd = note[1];
	c[0].go_fd = go[0];
	c[0].stop_after = 1000;
	c[0].expect_reset = evict;
	for (i = 0; i < 2; i++) {
		c[i].t = &t;
		c[i].p = &p;
		add_consumer(&t, &c[i]);
		cp[i] = tchild(consumer, &c[i]);
		close(c[i].page_fd);
	}
	pp = tchild(producer, &p);
	await(note[0]); /* consumer 0 is mid-stream and stops reading */
	if (!evict) {
		kill(cp[0], SIGKILL);
		TCHECK(twait(cp[0]) == 128 + SIGKILL, "kill");
		ring_slot_free(t.admin, c[0].slot);
	}
	if ((ret = twait(pp)) != 0) {
		fprintf(stderr, "producer failed: %d\n", ret);
		fail = 1;
	}
	ring_set_end(t.admin, SD_END_EOF, 0, 0, 0, NULL);
	if (evict) {
		notify(go[1]);
		if (twait(cp[0]) != 0)
			fail = 1;
		TCHECK(ring_hdr(t.admin)->evictions == 1, "evictions");
		TCHECK(ring_hdr(t.admin)->producer_waits > 0, "waits");
	}
	if (twait(cp[1]) != 0)
		fail = 1;
	tring_destroy(&t);
	for (i = 0; i < 2; i++) {
		close(note[i]);
		close(go[i]);
	}
	return fail;
}

/* ---- lag age ---- */

#define LAG_MS 300
enum { LAG_JIGGLE = 1, LAG_TRICKLE = 2 };

/* A consumer that reads a while, then holds the producer back: it either
 * moves its cursor back and forth in its own page (the cursor never goes
 * past where it stopped), or releases one record every LAG_MS - 50 ms.
 * Either way it must be evicted once the producer has waited about
 * LAG_MS for it, and not before it stopped reading. */
static int
lag_consumer(void *arg)
{
	struct cons *c = arg;
	_Atomic uint64_t *pos;
	struct ring_page *pg;
	struct ring *r;
	struct ring_rd v;
	uint64_t seq = 0, t0, t, last = 0, p0;
	int ret;

	TCHECK(tring_map_consumer(c->t, &r) == 0, "map");
	TCHECK(ring_attach(r, c->page_fd, RING_START_OLDEST) == 0, "attach");
	pg = mmap(NULL, RING_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
		  c->page_fd, 0);
	TCHECK(pg != MAP_FAILED, "map own page");
	pos = &pg->pos;
	for (; seq < c->stop_after; seq++) {
		TCHECK(ring_next(r, &v, 30000) == 0, "next");
		ring_release(r, &v);
	}
	t0 = now_ns();
	p0 = atomic_load(pos);
	for (;;) {
		ret = ring_next(r, &v, 0);
		if (ret == -ECONNRESET)
			break;
		TCHECK(ret == 0 || ret == -EAGAIN, "next: %d", ret);
		t = now_ns();
		TCHECK(t - t0 < 20ull * LAG_MS * 1000000u,
		       "not evicted after %llu ms",
		       (unsigned long long)(t - t0) / 1000000u);
		if (c->misbehave == LAG_JIGGLE) {
			/* back and forth around where it stopped */
			atomic_store(pos, (t / 1000000u) & 1 ? p0 - 64 : p0);
			usleep(1000);
		} else if (ret == 0 && t - last >= (LAG_MS - 50) * 1000000ull) {
			ring_release(r, &v);
			last = t;
		} else {
			usleep(5000);
		}
	}
	t = now_ns() - t0;
	printf("%s consumer evicted %llu ms after it stopped\n",
	       c->misbehave == LAG_JIGGLE ? "jiggling" : "trickling",
	       (unsigned long long)t / 1000000u);
	TCHECK(t >= LAG_MS * 1000000ull, "evicted too early");
	munmap(pg, RING_PAGE_SIZE);
	ring_unmap(&r);
	return 0;
}

/* Two honest consumers (one reading at once, one slowly: 2 ms a record,
 * far more than RING_LAG_RECS records per LAG_MS) and two that hold the
 * producer back. */
static int
test_lag(void)
{
	struct tring t;
	struct ring_params rp = params(64u << 10, RING_MODE_LOSSLESS, 4,
				       LAG_MS);
	struct prod p = {
		.t = &t, .nsmall = 1500, .nbig = 0, .small_max = 1024,
		.big_max = 1024, .sync_every = 16, .timeout_ms = -1,
	};
	struct cons c[4] = {
		{ .pace_us = 0 }, { .pace_us = 2000 },
		{ .misbehave = LAG_JIGGLE, .stop_after = 100 },
		{ .misbehave = LAG_TRICKLE, .stop_after = 300 },
	};
	int (*fn[4])(void *) = { consumer, consumer, lag_consumer,
				 lag_consumer };
	pid_t cp[4], pp;
	unsigned i;
	int fail = 0;

	TCHECK(tring_create(&t, &rp) == 0, "create");
	for (i = 0; i < 4; i++) {
		c[i].t = &t;
		c[i].p = &p;
		add_consumer(&t, &c[i]);
		cp[i] = tchild(fn[i], &c[i]);
		close(c[i].page_fd);
	}
	pp = tchild(producer, &p);
	if (twait(pp) != 0)
		fail = 1;
	ring_set_end(t.admin, SD_END_EOF, 0, 0, 0, NULL);
	for (i = 0; i < 4; i++)
		if (twait(cp[i]) != 0) {
			fprintf(stderr, "consumer %u failed\n", i);
			fail = 1;
		}
	printf("lag: evictions %llu, producer waits %llu\n",
	       (unsigned long long)ring_hdr(t.admin)->evictions,
	       (unsigned long long)ring_hdr(t.admin)->producer_waits);
	TCHECK(ring_hdr(t.admin)->evictions == 2, "evictions");
	tring_destroy(&t);
	return fail;
}

/* Wait until the producer is blocked in the wait_consumers hold. It
 * flushes before it waits (a wake if any record was published), and the
 * wait slice bounds the rest; the broker has no page to announce itself
 * in, so this sleeps in slices on the wake word. */
static void
await_producer_blocked(const struct ring *admin)
{
	struct ring_hdr *h = (struct ring_hdr *)ring_hdr(admin);
	uint32_t w;

	for (;;) {
		w = atomic_load(&h->wake_seq);
		if (atomic_load(&h->producer_waits) != 0)
			return;
		futex_wait(&h->wake_seq, w, RING_WAIT_SLICE_MS);
	}
}

static int
test_wait(void)
{
	struct tring t;
	struct ring_params rp = params(256u << 10, RING_MODE_LOSSLESS, 3, 0);
	struct prod p = {
		.t = &t, .nsmall = 20000, .nbig = 0, .small_max = 4096,
		.big_max = 4096, .sync_every = 16, .timeout_ms = -1,
	};
	struct cons c[3] = { 0 };
	pid_t cp[3], pp;
	unsigned i;
	int fail = 0;

	TCHECK(tring_create(&t, &rp) == 0, "create");
	pp = tchild(producer, &p);
	await_producer_blocked(t.admin);
	TCHECK(ring_hdr(t.admin)->tail == 0, "reclaimed during the hold");
	for (i = 0; i < 3; i++) {
		c[i].t = &t;
		c[i].p = &p;
		add_consumer(&t, &c[i]);
		cp[i] = tchild(consumer, &c[i]);
		close(c[i].page_fd);
	}
	if (twait(pp) != 0)
		fail = 1;
	ring_set_end(t.admin, SD_END_EOF, 0, 0, 0, NULL);
	for (i = 0; i < 3; i++)
		if (twait(cp[i]) != 0)
			fail = 1;
	tring_destroy(&t);
	return fail;
}

/* ---- wake batching ---- */

#define WAKE_ROUNDS 20
#define WAKE_MEASURE 1u /* tmeta.len: the consumer measures this record */

struct wake_cons {
	struct tring *t;
	int page_fd;
};

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Blocks in ring_next until the end; for each marked record, the time from
 * its publish to our return from ring_next. The ring's sleep slice is
 * RING_WAIT_SLICE_MS, so a missing wake shows up as a latency near it. */
static int
wake_consumer(void *arg)
{
	struct wake_cons *c = arg;
	uint64_t lat[2 * WAKE_ROUNDS], now;
	struct ring *r;
	struct ring_rd v;
	struct tmeta m;
	unsigned n = 0, i;
	int ret;

	TCHECK(tring_map_consumer(c->t, &r) == 0, "map");
	TCHECK(ring_attach(r, c->page_fd, RING_START_OLDEST) == 0, "attach");
	while ((ret = ring_next(r, &v, -1)) == 0) {
		now = now_ns();
		TCHECK(v.meta_len == sizeof(m), "meta");
		memcpy(&m, v.meta, sizeof(m));
		if (m.len == WAKE_MEASURE && n < 2 * WAKE_ROUNDS)
			lat[n++] = now - m.stamp_ns;
		ring_release(r, &v);
	}
	TCHECK(ret == -EPIPE, "end: %d", ret);
	TCHECK(n == 2 * WAKE_ROUNDS, "measured %u", n);
	/* flush rounds first, then batch rounds */
	for (i = 0; i < 2; i++) {
		uint64_t *l = lat + i * WAKE_ROUNDS;

		qsort(l, WAKE_ROUNDS, sizeof(*l), cmp_u64);
		printf("wake after %s: median %.3f ms, max %.3f ms\n",
		       i ? "a full batch" : "ring_flush",
		       (double)l[WAKE_ROUNDS / 2] / 1e6,
		       (double)l[WAKE_ROUNDS - 1] / 1e6);
		/* A missed wake costs a whole slice. The two slowest rounds
		 * may be scheduler delays on a loaded machine. */
		TCHECK(l[WAKE_ROUNDS / 2] < 20u * 1000000u, "median too slow");
		TCHECK(l[WAKE_ROUNDS - 3] <
		       (uint64_t)(RING_WAIT_SLICE_MS - 10) * 1000000u,
		       "wakes were missed");
	}
	ring_unmap(&r);
	return 0;
}

static void
wake_publish(struct ring *r, uint64_t mark)
{
	struct ring_wr w;
	struct tmeta m = { 0 };

	TCHECK(ring_reserve(r, sizeof(m), 8, &w, -1) == 0, "reserve");
	memset(w.payload, 0, 8);
	m.len = mark;
	m.stamp_ns = now_ns();
	memcpy(w.meta, &m, sizeof(m));
	TCHECK(ring_publish(r, &w, RING_REC_PACKET, 0) == 0, "publish");
}

/* 1 if the process is in an interruptible sleep ('S' in /proc/PID/stat). */
static int
sleeping(pid_t pid)
{
	char path[64], buf[256], *p;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')');
	return p != NULL && p[1] == ' ' && p[2] == 'S';
}

/* Until the consumer has read everything, announced in its page that it
 * sleeps on the current wake word, and is asleep: its only blocking call
 * is the futex wait in ring_next. */
static void
await_sleeper(struct ring *prod, const struct ring_page *pg, pid_t pid)
{
	const struct ring_hdr *h = ring_hdr(prod);

	while (atomic_load(&pg->sleep_seq) !=
	       (RING_SLEEPING | atomic_load(&h->wake_seq)) ||
	       atomic_load(&pg->pos) != atomic_load(&h->head) ||
	       !sleeping(pid))
		sched_yield();
}

static int
test_wake(void)
{
	struct tring t;
	/* large enough that RING_WAKE_BATCH_RECS small records stay below
	 * the byte threshold: the record count is what is tested */
	struct ring_params rp = params(16u << 20, RING_MODE_LOSSLESS, 1, 0);
	struct wake_cons wc = { .t = &t };
	const struct ring_hdr *h;
	const struct ring_page *pg;
	struct ring *r;
	uint32_t ws;
	unsigned i, k;
	pid_t cp;

	TCHECK(tring_create(&t, &rp) == 0, "create");
	TCHECK(tring_map_producer(&t, &r) == 0, "map producer");
	h = ring_hdr(r);
	TCHECK(tring_add(&t, &wc.page_fd) >= 0, "slot");
	/* we watch the consumer's page to know when it sleeps */
	pg = mmap(NULL, RING_PAGE_SIZE, PROT_READ, MAP_SHARED, wc.page_fd, 0);
	TCHECK(pg != MAP_FAILED, "map page");
	cp = tchild(wake_consumer, &wc);
	close(wc.page_fd);
	for (i = 0; i < WAKE_ROUNDS; i++) {
		await_sleeper(r, pg, cp);
		wake_publish(r, WAKE_MEASURE);
		TCHECK(ring_flush(r) == 0, "flush");
	}
	for (i = 0; i < WAKE_ROUNDS; i++) {
		await_sleeper(r, pg, cp);
		/* Batching: no wake for the first K - 1 records... */
		ws = atomic_load(&h->wake_seq);
		for (k = 1; k < RING_WAKE_BATCH_RECS; k++)
			wake_publish(r, 0);
		TCHECK(atomic_load(&h->wake_seq) == ws, "woken before the batch");
		/* ...and always one with the K-th. */
		wake_publish(r, WAKE_MEASURE);
		TCHECK(atomic_load(&h->wake_seq) != ws, "no wake after K records");
	}
	TCHECK(ring_flush(r) == 0, "flush");
	ring_set_end(t.admin, SD_END_EOF, 0, 0, 0, NULL);
	i = (unsigned)twait(cp);
	munmap((void *)pg, RING_PAGE_SIZE);
	ring_unmap(&r);
	tring_destroy(&t);
	return i != 0;
}

static const struct {
	const char *name;
	int (*fn)(void);
} tests[] = {
	{ "lossless", test_lossless },
	{ "live", test_live },
	{ "wait", test_wait },
	{ "wake", test_wake },
	{ "lag", test_lag },
};

int
main(int argc, char **argv)
{
	size_t i;

	if (argc != 2)
		goto usage;
	setvbuf(stdout, NULL, _IOLBF, 0);
	twatchdog(280);
	if (strcmp(argv[1], "kill") == 0)
		return test_stuck(0);
	if (strcmp(argv[1], "evict") == 0)
		return test_stuck(1);
	for (i = 0; i < sizeof(tests) / sizeof(tests[0]); i++)
		if (strcmp(argv[1], tests[i].name) == 0)
			return tests[i].fn();
usage:
	fprintf(stderr, "usage: test_ring_flow lossless|live|kill|evict|wait|"
		"wake|lag\n");
	return 2;
}
