/*
 * ring_produce_slots.c - what the producer knows of its consumers: the
 * ADD and DEL messages of the admin channel (adopt, drop), each adopted
 * consumer's cursor as the producer counts it (clamped, never lowered),
 * the reclaim limit and the wait for room on the slowest consumer's futex
 * word, lag eviction, and waking consumers that said they sleep. Every
 * value read from a cursor page is untrusted. See ring_producer.h and
 * docs/RING.md ("New consumers", "Lag eviction", "Wake pipes").
 */
#include <errno.h>
#include <limits.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "futex.h"
#include "proto.h"
#include "ring_internal.h"
#include "ring_producer.h"

/* Lag checkpoints: how close in time two of them may be. */
#define CP_SPACING_DIV 32u
/* Admin messages taken per drain; more wait for the next one. */
#define ADMIN_DRAIN_MAX (4u * RING_MAX_SLOTS)

/* ---- the admin channel, producer side ---- */

/* The page of an ADD: a regular file of exactly RING_PAGE_SIZE bytes,
 * sealed against resizing (nobody can shrink it under our mapping, which
 * would SIGBUS us), opened read-only. Mapped read-only: we only read it,
 * and futex waits work on a read-only shared mapping. The fd is closed
 * here whatever happens (a worker has few). */
static void *
map_page_ro(int fd)
{
	struct stat st;
	void *m = MAP_FAILED;
	int seals, fl;

	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
	    st.st_size == (off_t)RING_PAGE_SIZE &&
	    (seals = fcntl(fd, F_GET_SEALS)) >= 0 &&
	    (seals & PAGE_SEALS) == PAGE_SEALS &&
	    (fl = fcntl(fd, F_GETFL)) >= 0 && (fl & O_ACCMODE) == O_RDONLY)
		m = mmap(NULL, RING_PAGE_SIZE, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	return m == MAP_FAILED ? NULL : m;
}

static uint64_t
clamp_pos(const struct ring *r, uint64_t p)
{
	return p < r->p_tail ? r->p_tail : p > r->p_head ? r->p_head : p;
}

/* ADD: a new consumer. A slot still taken (no DEL came for it) keeps its
 * consumer; the broker never reuses a slot before its DEL. */
static void
adopt(struct ring *r, const struct ring_admin_msg *m, int fd, int wfd)
{
	struct pslot *s = &r->p_slots[m->slot];
	void *pg;

	if (s->state != PS_FREE) {
		close(fd);
		close_wfd(&wfd);
		return;
	}
	if ((pg = map_page_ro(fd)) == NULL) {
		close_wfd(&wfd);
		return;
	}
	s->pg = pg;
	s->map = pg;
	s->wfd = wfd;
	s->id = m->id;
	s->state = PS_LIVE;
	/* Its cursor starts no lower than the broker said, whatever the
	 * page says now; scans raise it from the page. */
	s->pos = clamp_pos(r, m->start);
	r->p_live[r->p_nlive++] = (uint16_t)m->slot;
	r->p_adopted++;
	if (s->pos < r->p_limit)
		r->p_limit = s->pos;
}

static void
unlive(struct ring *r, unsigned slot)
{
	struct pslot *s = &r->p_slots[slot];

	for (uint32_t k = 0; k < r->p_nlive; k++)
		if (r->p_live[k] == slot) {
			r->p_live[k] = r->p_live[--r->p_nlive];
			break;
		}
	munmap(s->map, RING_PAGE_SIZE);
	s->map = NULL;
	s->pg = NULL;
	close_wfd(&s->wfd);
	if (r->p_blocker == (int)slot)
		r->p_blocker = -1;
}

/* DEL: the consumer left (or was evicted and has now left). */
static void
drop(struct ring *r, const struct ring_admin_msg *m)
{
	struct pslot *s = &r->p_slots[m->slot];

	if (s->state == PS_FREE || s->id != m->id)
		return;
	if (s->state == PS_LIVE)
		unlive(r, m->slot);
	s->state = PS_FREE;
}

/* The second fd of an ADD: the write end of a pipe, non-blocking (a
 * write never waits for the consumer). */
static bool
wake_end_ok(int fd)
{
	struct stat st;
	int fl = fcntl(fd, F_GETFL);

	return fl >= 0 && (fl & O_ACCMODE) == O_WRONLY && (fl & O_NONBLOCK) &&
	       fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode);
}

/* One message from the broker, checked like any input: exact size, magic,
 * a known op, slot and id in range, exactly the fds the op carries. A
 * malformed one is dropped (its fds closed). 1: one taken; 0: none
 * waiting; -EPIPE: the broker closed the channel. */
static int
admin_recv(struct ring *r)
{
	struct ring_admin_msg m;
	char extra;
	struct iovec iov[2] = {
		{ .iov_base = &m, .iov_len = sizeof(m) },
		{ .iov_base = &extra, .iov_len = 1 },
	};
	union {
		char buf[CMSG_SPACE(2 * sizeof(int))];
		struct cmsghdr align;
	} cb;
	struct msghdr mh = {
		.msg_iov = iov, .msg_iovlen = 2,
		.msg_control = cb.buf, .msg_controllen = sizeof(cb.buf),
	};
	int fds[2], nfds, bad;
	bool ok;
	ssize_t n;

	do
		n = recvmsg(r->admin_fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -EPIPE;
	nfds = ctl_take_fds(&mh, fds, 2, &bad);
	if (n == 0 && nfds == 0)
		return -EPIPE; /* the broker never sends an empty message */
	ok = !bad && !(mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) &&
	     n == (ssize_t)sizeof(m) && m.magic == RING_ADMIN_MAGIC &&
	     m.slot < r->nslots && m.id != 0 && m.pad == 0;
	if (ok && m.op == RING_ADMIN_ADD &&
	    (nfds == 1 || (nfds == 2 && wake_end_ok(fds[1])))) {
		adopt(r, &m, fds[0], nfds == 2 ? fds[1] : -1);
		return 1;
	}
	if (ok && m.op == RING_ADMIN_DEL && nfds == 0)
		drop(r, &m);
	for (int i = 0; i < nfds; i++)
		close(fds[i]);
	return 1;
}

/* Take every waiting message. false if some may be left (the bound was
 * reached), so the caller does not count the channel as drained. */
static bool
admin_drain(struct ring *r)
{
	int ret = 1;

	for (unsigned i = 0; i < ADMIN_DRAIN_MAX && ret == 1; i++)
		ret = admin_recv(r);
	if (ret < 0)
		r->p_admin_closed = true;
	return ret != 1;
}

/* If slot_gen moved since the last drain, drain. Acquire: pairs with the
 * broker's seq_cst increment, made after it sent the message, so the
 * message is in the channel. slot_gen is loaded before the drain: an
 * increment during it is seen by the next check. */
static void
admin_check(struct ring *r)
{
	uint32_t g = atomic_load_explicit(&r->hdr->slot_gen,
					  memory_order_acquire);

	if (g == r->p_slot_gen)
		return;
	/* No channel (or no broker any more): nothing can be waiting. */
	if (r->admin_fd < 0 || r->p_admin_closed || admin_drain(r))
		r->p_slot_gen = g;
}

int
ring_admin_poll(struct ring *r)
{
	uint32_t g;

	if (r->role != RING_ROLE_PRODUCER || r->admin_fd < 0)
		return -EPERM;
	if (r->p_admin_closed)
		return -EPIPE;
	g = atomic_load_explicit(&r->hdr->slot_gen, memory_order_acquire);
	if (admin_drain(r))
		r->p_slot_gen = g;
	return r->p_admin_closed ? -EPIPE : 0;
}

int
ring_admin_pending(const struct ring *r)
{
	/* Relaxed: a hint; ring_admin_poll() loads it again with acquire. */
	return r->role == RING_ROLE_PRODUCER && r->admin_fd >= 0 &&
	       !r->p_admin_closed &&
	       atomic_load_explicit(&r->hdr->slot_gen, memory_order_relaxed) !=
	       r->p_slot_gen;
}

unsigned
ring_adopted(const struct ring *r)
{
	return r->p_nlive;
}

/* ---- wakeups ---- */

/* Does an adopted consumer say it is about to sleep on the current
 * wake_seq? Its sleep_seq holds RING_SLEEPING | the value it read; an
 * older value means it was woken since (or its wait fails at once). The
 * caller's seq_cst fence orders its head or state stores before these
 * loads (see ring_wake_consumers). A consumer with a wake pipe that still
 * announces an older value did not wait: it announced itself before we
 * adopted it and a state change moved wake_seq on meanwhile (only
 * adopted consumers are poked). Its pipe is poked here; it drops the
 * announcement once it reads a record, so this is once per miss. */
static bool
sleeper(const struct ring *r)
{
	uint64_t want = RING_SLEEPING |
		atomic_load_explicit(&r->hdr->wake_seq, memory_order_relaxed);
	bool found = false;

	for (uint32_t k = 0; k < r->p_nlive; k++) {
		const struct pslot *s = &r->p_slots[r->p_live[k]];
		uint64_t v = atomic_load_explicit(&s->pg->sleep_seq,
						  memory_order_relaxed);

		if (v == want)
			found = true;
		else if (s->wfd >= 0 && (v & RING_SLEEPING))
			poke(s->wfd);
	}
	return found;
}

/* After wake_seq moved on from w: poke the wake pipe of every consumer
 * that said it sleeps on w. Only after the increment: a consumer that
 * re-arms once it was poked must arm on the new value, or the next check
 * would not count it as a sleeper. One that armed on the new value before
 * this scan re-checks head after arming and finds the records. */
static void
poke_sleepers(struct ring *r, uint32_t w)
{
	for (uint32_t k = 0; k < r->p_nlive; k++) {
		const struct pslot *s = &r->p_slots[r->p_live[k]];

		if (s->wfd >= 0 &&
		    atomic_load_explicit(&s->pg->sleep_seq,
					 memory_order_relaxed) ==
		    (RING_SLEEPING | w))
			poke(s->wfd);
	}
}

/* Wake consumers sleeping on wake_seq. The caller has stored head (for one
 * or, with wake batching, several records) or state. The seq_cst fence
 * orders every one of those stores before the loads of the consumers'
 * sleep_seq; a consumer stores sleep_seq (seq_cst) before re-loading head,
 * so either it sees the new head or we see its word (store-load Dekker
 * pairing; release/acquire alone would let both miss each other). Its word
 * names the wake_seq value it sleeps on, so once we bumped wake_seq later
 * checks skip the syscall until it sleeps again: one wake per sleep, not
 * one per record, and without the producer writing consumer pages. The
 * channel is checked after the fence too (the same pairing with the
 * broker's slot_gen increment): a consumer attached since is scanned. */
void
ring_wake_consumers(struct ring *r, bool always)
{
	uint32_t w;

	if (r->role == RING_ROLE_PRODUCER) {
		/* Every record published so far is covered by this check. */
		r->p_unwoken = 0;
		r->p_unwoken_at = r->p_head;
		r->p_unwoken_pad = 0;
	}
	atomic_thread_fence(memory_order_seq_cst);
	if (!always) {
		admin_check(r);
		if (!sleeper(r))
			return;
	}
	/* Release: a woken consumer that sees the new wake_seq also sees the
	 * head/state stored before it. */
	w = atomic_fetch_add_explicit(&r->hdr->wake_seq, 1,
				      memory_order_release);
	futex_wake(&r->hdr->wake_seq, INT_MAX);
	if (r->role == RING_ROLE_PRODUCER)
		poke_sleepers(r, w);
}

/* ---- lag eviction ---- */

static struct lagcp *
cp_at(struct ring *r, uint32_t i)
{
	return &r->p_cp[(r->p_cp_first + i) % CP_MAX];
}

/* The producer starts waiting for room at now, for every cursor to pass
 * goal (RING_LAG_RECS records past what it needs). Checkpoints are kept in
 * order of position and time; one already past goal covers it (the room
 * was needed earlier). Two closer than lag/CP_SPACING_DIV in time are
 * merged by moving the newer one up to (goal, now): the records it covered
 * then count as needed later than they were, which only ever makes a lag
 * age smaller. At most CP_MAX are kept; the oldest go first, and what lies
 * below the oldest one left is then older than (CP_MAX - 2) spacings,
 * several times the timeout. */
static void
cp_note(struct ring *r, uint64_t goal, uint64_t now)
{
	uint64_t gap = (uint64_t)r->lag_ms * (1000000u / CP_SPACING_DIV);
	struct lagcp *c;

	while (r->p_cp_n > 0 && cp_at(r, 0)->pos <= r->p_tail) {
		r->p_cp_first = (r->p_cp_first + 1) % CP_MAX;
		r->p_cp_n--;
	}
	if (r->p_cp_n > 0 && goal <= cp_at(r, r->p_cp_n - 1)->pos)
		return;
	if (r->p_cp_n >= 2 && now - cp_at(r, r->p_cp_n - 2)->ns < gap) {
		c = cp_at(r, r->p_cp_n - 1);
		c->pos = goal;
		c->ns = now;
		return;
	}
	if (r->p_cp_n == CP_MAX) {
		r->p_cp_first = (r->p_cp_first + 1) % CP_MAX;
		r->p_cp_n--;
	}
	c = cp_at(r, r->p_cp_n++);
	c->pos = goal;
	c->ns = now;
}

/* How long the producer has been waiting for a cursor at pos to move on:
 * since the first checkpoint past pos (0 when none is). */
static uint64_t
lag_age(struct ring *r, uint64_t pos, uint64_t now)
{
	for (uint32_t i = 0; i < r->p_cp_n; i++) {
		const struct lagcp *c = cp_at(r, i);

		if (c->pos > pos)
			return now > c->ns ? now - c->ns : 0;
	}
	return 0;
}

/* The position RING_LAG_RECS records past t, the start of the n-th logged
 * record (capped at head). */
static uint64_t
lag_goal(const struct ring *r, uint64_t t, uint64_t n)
{
	for (uint32_t k = 0; k < RING_LAG_RECS && n + k < r->p_lens_n; k++)
		t += lens_at(r, n + k);
	return t;
}

/* Evict slot i: privately first, then published in hdr.evicted[] under the
 * consumer's attach id, so only that consumer reads it as its own; every
 * consumer is woken (the evicted one gets -ECONNRESET now). The slot stays
 * taken until the broker's DEL. */
static void
evict(struct ring *r, unsigned i)
{
	struct pslot *s = &r->p_slots[i];

	/* Release: a consumer that sees its id also sees everything we wrote
	 * before (nothing it needs; it stops reading). Stored before the
	 * poke: the consumer's poll loop wakes to read -ECONNRESET (the pipe
	 * write and read order the two). The pipe goes with the slot. */
	atomic_store_explicit(&r->hdr->evicted[i], s->id, memory_order_release);
	poke(s->wfd);
	unlive(r, i);
	s->state = PS_EVICTED;
	atomic_store_explicit(&r->hdr->evictions, ++r->p_evictions,
			      memory_order_relaxed);
	ring_wake_consumers(r, true);
}

/* ---- the producer's view of the cursors ---- */

/* A consumer's cursor as we count it: the page's value (untrusted) capped
 * at head, taken only when above what we had (never lowered), and at
 * least lo. Acquire: pairs with the consumer's release store of pos, so
 * its reads of the bytes below pos are done before we overwrite them. */
static uint64_t
slot_pos(const struct ring *r, struct pslot *s, uint64_t lo)
{
	uint64_t p = atomic_load_explicit(&s->pg->pos, memory_order_acquire);

	if (p > r->p_head)
		p = r->p_head;
	if (p > s->pos)
		s->pos = p;
	if (s->pos < lo)
		s->pos = lo;
	return s->pos;
}



/* Recompute the reclaim limit: the lowest live cursor, or lo before
 * wait_consumers consumers were adopted. Also notes the slowest one in
 * p_blocker (-1: none holds us). Caches the result in p_limit. */
uint64_t
ring_scan_limit(struct ring *r, uint64_t lo, uint64_t want, unsigned flags,
		uint64_t now)
{
	uint64_t limit = r->p_head, p, lag = (uint64_t)r->lag_ms * 1000000u;
	int blocker = -1;
	uint32_t k;

	if (!(flags & SCAN_QUIET))
		admin_check(r);
	if (!r->p_hold_done) {
		if (r->p_adopted < r->wait_consumers) {
			r->p_blocker = -1;
			return r->p_limit = lo;
		}
		r->p_hold_done = true;
	}
	for (k = 0; k < r->p_nlive;) {
		unsigned i = r->p_live[k];

		p = slot_pos(r, &r->p_slots[i], lo);
		if ((flags & SCAN_LAG) && p < want && lag_age(r, p, now) >= lag) {
			evict(r, i); /* takes p_live[k] out */
			continue;
		}
		if (p < limit) {
			limit = p;
			blocker = (int)i;
		}
		k++;
	}
	r->p_blocker = blocker;
	return r->p_limit = limit;
}

static uint64_t
budget_deadline(struct budget *b)
{
	if (!b->set) {
		b->deadline = b->ms == 0 ? 0 : deadline_after(b->ms);
		b->set = true;
	}
	return b->deadline;
}

/* Block until the cursors allow tail = t (the start of the n-th logged
 * record), or the deadline. Once we have to sleep, we sleep on the futex
 * word of the consumer holding us back (the slowest; with none, the
 * wait_consumers hold, on slot_gen, which the broker bumps for every new
 * consumer), and a consumer wakes us only when it is a sixteenth of the
 * ring past t (prod_want), so a producer faster than its consumers sleeps
 * once per batch of records rather than once per record. */
int
ring_wait_cursors(struct ring *r, uint64_t lo, uint64_t t, uint64_t n,
		  struct budget *b)
{
	uint64_t deadline = budget_deadline(b);
	const _Atomic uint32_t *word;
	uint64_t goal = t + r->ds / 16, now;
	uint32_t seq;
	int ms, blocker;

	if (ring_scan_limit(r, lo, t, 0, 0) >= t)
		return 0;
	/* We may sleep: consumers must see every record published so far, or
	 * one of them could sleep on data we have not woken it for while we
	 * wait for it to release space. */
	ring_flush(r);
	if (!b->waited) {
		b->waited = true;
		atomic_store_explicit(&r->hdr->producer_waits, ++r->p_waits,
				      memory_order_relaxed);
	}
	/* A reserve needs the room (ring_reclaim only takes what is free) */
	if (r->lag_ms != 0 && r->p_hold_done && !b->reclaim) {
		now = now_ns();
		cp_note(r, lag_goal(r, t, n), now);
		if (ring_scan_limit(r, lo, t, SCAN_LAG, now) >= t)
			return 0;
	}
	blocker = r->p_blocker;
	if (blocker >= 0) {
		/* A read-only mapping: futex waits only read the word. */
		word = &r->p_slots[blocker].pg->release_seq;
		/* Acquire: read the futex word before announcing ourselves,
		 * so a release that happens after our re-scan changes it and
		 * the futex call returns at once. */
		seq = atomic_load_explicit(word, memory_order_acquire);
	} else {
		word = &r->hdr->slot_gen;
		seq = r->p_slot_gen;
	}
	/* Relaxed stores, then a seq_cst fence before re-checking the
	 * channel and re-scanning: pairs with the consumer's pos store +
	 * seq_cst fence + load of prod_waiting (Dekker): either we see its
	 * new pos or it sees us waiting and bumps its word; and with the
	 * broker's slot_gen increment + tail load: either we see a new
	 * consumer's ADD or its bump of every page's word comes after our
	 * load of seq. The re-scan takes no message, so the page we sleep
	 * on stays mapped; a different slowest consumer means re-scanning
	 * rather than sleeping on a word it will not bump. */
	atomic_store_explicit(&r->hdr->prod_want,
			      goal < r->p_head ? goal : r->p_head,
			      memory_order_relaxed);
	atomic_store_explicit(&r->hdr->prod_waiting, 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&r->hdr->slot_gen, memory_order_relaxed) ==
	    r->p_slot_gen && ring_scan_limit(r, lo, t, SCAN_QUIET, 0) < t &&
	    r->p_blocker == blocker) {
		ms = slice_until(deadline, RING_WAIT_SLICE_MS);
		if (ms == 0) {
			atomic_store_explicit(&r->hdr->prod_waiting, 0,
					      memory_order_relaxed);
			return deadline == 0 ? -EAGAIN : -ETIMEDOUT;
		}
		futex_wait(word, seq, ms);
	}
	/* Relaxed: only suppresses wakeups; a stale 1 costs a syscall. */
	atomic_store_explicit(&r->hdr->prod_waiting, 0, memory_order_relaxed);
	return 0;
}
