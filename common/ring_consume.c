/*
 * ring_consume.c - a consumer (the client library): binding to its cursor
 * page (ring_attach), reading records in place and checking their framing
 * (ring_next), releasing them and holds (ring_release, ring_set_floor),
 * sleeping on the futex or announcing itself for its wake pipe, and the
 * consistent copy of the track table. Everything read from the data
 * segment is untrusted: copied once, then checked. See ring_consumer.h and
 * docs/RING.md.
 */
#include <errno.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "futex.h"
#include "ring_consumer.h"
#include "ring_internal.h"

#define TRACKS_RETRIES 1000

void
ring_cons_init(struct ring *r)
{
	r->slot = -1;
	r->c_floor = UINT64_MAX;
	r->c_wfd = -1;
	pthread_mutex_init(&r->c_lock, NULL);
}

void
ring_cons_free(struct ring *r)
{
	if (r->c_page != NULL)
		munmap(r->c_page, RING_PAGE_SIZE);
	r->c_page = NULL;
	pthread_mutex_destroy(&r->c_lock);
}

/* Wake a producer blocked for space on our page's futex word. */
static void
wake_producer(struct ring_page *pg)
{
	atomic_fetch_add_explicit(&pg->release_seq, 1, memory_order_release);
	futex_wake(&pg->release_seq, 1);
}

/* Store the cursor in our page. Release: our reads of the bytes below it
 * are done before the producer (acquire load in slot_pos) may overwrite
 * them. */
static void
store_slot_pos(struct ring *r, uint64_t pos)
{
	atomic_store_explicit(&r->c_page->pos, pos, memory_order_release);
}

/* With holds: publish min(read position, floor) unless that is below what
 * was already published. Under c_lock. 1 if the cursor moved. */
static int
store_held_pos(struct ring *r, uint64_t pos)
{
	uint64_t t = pos < r->c_floor ? pos : r->c_floor;

	r->c_mirror = pos;
	if (t <= r->c_pub)
		return 0;
	r->c_pub = t;
	store_slot_pos(r, t);
	return 1;
}

/* Publish our cursor; returns the value the producer now sees. Relaxed
 * load of c_holds: only this thread turns it on (its first hold), and a
 * floor raised by another thread needs c_lock, which we then take too. */
static uint64_t
store_pos(struct ring *r)
{
	uint64_t pub;

	if (!atomic_load_explicit(&r->c_holds, memory_order_relaxed)) {
		store_slot_pos(r, r->c_pos);
		return r->c_pos;
	}
	pthread_mutex_lock(&r->c_lock);
	store_held_pos(r, r->c_pos);
	pub = r->c_pub;
	pthread_mutex_unlock(&r->c_lock);
	return pub;
}

/* In lossless mode, wake the producer if it waits for a cursor at or past
 * want. The seq_cst fence between our pos store and the prod_waiting load
 * pairs with the producer's prod_waiting store + fence + slot scan. A
 * producer waiting for room sleeps on the word of the consumer holding it
 * back, so bumping our own word wakes it exactly when that is us. */
static void
check_producer(struct ring *r, uint64_t pub, uint64_t want)
{
	if (r->mode == RING_MODE_LIVE)
		return; /* a live producer never waits */
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&r->hdr->prod_waiting, memory_order_relaxed) &&
	    pub >= want)
		wake_producer(r->c_page);
}

/* Publish our cursor and, in lossless mode, wake the producer if it waits
 * for us to get past prod_want. */
static void
publish_pos(struct ring *r)
{
	uint64_t pub = store_pos(r);

	r->c_checked_at = r->c_pos;
	r->c_unchecked = 0;
	check_producer(r, pub, atomic_load_explicit(&r->hdr->prod_want,
						    memory_order_relaxed));
}

void
ring_set_floor(struct ring *r, uint64_t floor)
{
	int moved;

	if (r->role != RING_ROLE_CONSUMER || r->slot < 0)
		return;
	pthread_mutex_lock(&r->c_lock);
	if (!atomic_load_explicit(&r->c_holds, memory_order_relaxed)) {
		/* First use, on the reading thread (only it adds holds):
		 * the plain stores published at most c_pos. */
		r->c_pub = r->c_pos;
		r->c_mirror = r->c_pos;
		atomic_store_explicit(&r->c_holds, true, memory_order_relaxed);
	}
	r->c_floor = floor;
	moved = store_held_pos(r, r->c_mirror);
	pthread_mutex_unlock(&r->c_lock);
	/* A freed hold is rare next to releases: wake a waiting producer
	 * whenever the cursor moved, not only past prod_want. */
	if (moved)
		check_producer(r, 0, 0);
}

/* After a release: the cursor store itself is cheap and always done; the
 * fence and the check for a waiting producer run once per batch (the same
 * thresholds as the producer's wake batching) and whenever we are about to
 * sleep (wait_data). A producer blocked for space asks to be woken only a
 * sixteenth of the ring later (prod_want), so checking every 1/32 of the
 * ring or RING_WAKE_BATCH_RECS records delays it by at most one batch. */
static void
released(struct ring *r)
{
	if (++r->c_unchecked < RING_WAKE_BATCH_RECS &&
	    r->c_pos - r->c_checked_at < r->ds / RING_WAKE_BATCH_DIV) {
		store_pos(r);
		return;
	}
	publish_pos(r);
}

/* Our cursor page, as the broker made it: a regular file of exactly
 * RING_PAGE_SIZE bytes sealed against resizing (so our mapping cannot be
 * made to fault), with the identity the broker wrote, copied once. */
static int
map_page_rw(struct ring *r, int fd)
{
	struct ring_page *pg;
	struct stat st;
	uint64_t magic;
	uint32_t abi, slot;
	int seals;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode) || st.st_size != (off_t)RING_PAGE_SIZE ||
	    (seals = fcntl(fd, F_GET_SEALS)) < 0 ||
	    (seals & PAGE_SEALS) != PAGE_SEALS)
		return -EPROTO;
	pg = mmap(NULL, RING_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
		  fd, 0);
	if (pg == MAP_FAILED)
		return -errno;
	magic = pg->magic;
	abi = pg->abi_version;
	slot = pg->slot;
	r->c_id = pg->id;
	if (magic != RING_PAGE_MAGIC || abi != RING_ABI_VERSION ||
	    slot >= r->nslots || r->c_id == 0) {
		munmap(pg, RING_PAGE_SIZE);
		return -EPROTO;
	}
	r->c_page = pg;
	r->slot = (int)slot;
	return 0;
}

/* Were we evicted? Our slot's entry holds our own attach id. Acquire:
 * pairs with the producer's release store in evict(). */
static bool
evicted(const struct ring *r)
{
	return atomic_load_explicit(&r->hdr->evicted[r->slot],
				    memory_order_acquire) == r->c_id;
}

int
ring_attach(struct ring *r, int page_fd, enum ring_start start)
{
	uint64_t h, t, p, ls;
	int i, ret;

	if (r->role != RING_ROLE_CONSUMER || r->slot >= 0)
		return -EINVAL;
	if ((ret = map_page_rw(r, page_fd)) < 0)
		return ret;
	ret = -EBADMSG;
	if (evicted(r)) {
		ret = -ECONNRESET;
		goto fail;
	}
	/* Acquire on tail, then head: tail <= head as the producer stores
	 * tail before the head that follows it. */
	t = atomic_load_explicit(&r->hdr->tail, memory_order_acquire);
	h = atomic_load_explicit(&r->hdr->head, memory_order_acquire);
	if (t > h || h - t > r->ds || t % RING_ALIGN || h % RING_ALIGN)
		goto fail;
	/* The broker set pos to the tail; forward only. */
	p = atomic_load_explicit(&r->c_page->pos, memory_order_relaxed);
	if (p < t || p > h || p % RING_ALIGN)
		p = t;
	if (start == RING_START_SYNC) {
		ls = atomic_load_explicit(&r->hdr->last_sync,
					  memory_order_acquire);
		if (ls != UINT64_MAX && ls >= p && ls < h &&
		    ls % RING_ALIGN == 0)
			p = ls;
	} else if (start == RING_START_LIVE) {
		p = h;
	}
	/* Store pos, seq_cst fence, re-load tail: if the producer reclaimed
	 * past p (it may not have adopted us yet: the broker's raise covers
	 * what it stored before our ADD was sent), we see its tail and move
	 * up to it; bounded as tail only grows. */
	for (i = 0; i < 1000; i++) {
		r->c_pos = p;
		store_pos(r);
		atomic_thread_fence(memory_order_seq_cst);
		t = atomic_load_explicit(&r->hdr->tail, memory_order_relaxed);
		if (t <= p)
			break;
		p = t;
	}
	if (i == 1000 || p % RING_ALIGN)
		goto fail;
	r->c_head = p;
	r->c_checked_at = p;
	r->c_unchecked = 0;
	r->c_need_sync = false;
	return 0;
fail:
	munmap(r->c_page, RING_PAGE_SIZE);
	r->c_page = NULL;
	r->slot = -1;
	return ret;
}

int
ring_slot(const struct ring *r)
{
	return r->slot;
}

/* Lapped (live mode): count it and jump to the newest sync record if it is
 * still retained, else to the tail and skip to the next sync record. */
static int
overrun(struct ring *r)
{
	uint64_t t, h, ls, np;

	t = atomic_load_explicit(&r->hdr->tail, memory_order_acquire);
	h = atomic_load_explicit(&r->hdr->head, memory_order_acquire);
	ls = atomic_load_explicit(&r->hdr->last_sync, memory_order_acquire);
	if (t <= r->c_pos || t > h || t % RING_ALIGN || h % RING_ALIGN)
		return -EBADMSG;
	np = t;
	if (ls != UINT64_MAX && ls >= t && ls < h && ls % RING_ALIGN == 0)
		np = ls;
	r->c_pos = np;
	r->c_head = h;
	r->c_need_sync = true;
	/* Relaxed: a statistic only this consumer writes. */
	atomic_store_explicit(&r->c_page->overruns, ++r->c_overruns,
			      memory_order_relaxed);
	store_pos(r);
	return -EOVERFLOW;
}

/* Load head into c_head. 1 if there is something to read. */
static int
refresh_head(struct ring *r)
{
	/* Acquire: pairs with the producer's release store of head, so the
	 * record bytes below it are visible. */
	uint64_t h = atomic_load_explicit(&r->hdr->head, memory_order_acquire);

	if (h < r->c_pos || h % RING_ALIGN)
		return -EBADMSG;
	if (h - r->c_pos > r->ds)
		return r->mode == RING_MODE_LIVE ? overrun(r) : -EBADMSG;
	r->c_head = h;
	return h != r->c_pos;
}

/* Has the record at pos possibly been overwritten? (seqlock reader: data
 * read before, acquire fence, then tail). */
static bool
reclaimed(const struct ring *r, uint64_t pos)
{
	atomic_thread_fence(memory_order_acquire);
	return atomic_load_explicit(&r->hdr->tail, memory_order_relaxed) > pos;
}

/* The record at c_pos failed a check. Lossless: if we were evicted the
 * producer may have reused the bytes, so that is what to report. */
static int
bad_rec(const struct ring *r)
{
	return evicted(r) ? -ECONNRESET : -EBADMSG;
}

/* Check the record at c_pos. 0: v filled; 1: skipped (pad, or not a sync
 * record while resyncing), call again; <0: error. */
static int
read_rec(struct ring *r, struct ring_rd *v)
{
	uint64_t pos = r->c_pos, off = pos % r->ds, room, mpad = 0;
	struct ring_rec rec;

	memcpy(&rec, r->area + off, sizeof(rec));
	/* Live: the header may be torn; decide on tail before trusting it.
	 * Lossless: our cursor protects the bytes, no shared load needed. */
	if (r->mode == RING_MODE_LIVE && reclaimed(r, pos))
		return overrun(r);
	if (rec.magic != RING_REC_MAGIC || rec.pos != pos ||
	    rec.len < RING_ALIGN || rec.len % RING_ALIGN ||
	    rec.len > r->c_head - pos || rec.len > r->ds - off ||
	    rec.type > RING_REC_TRACKS)
		return bad_rec(r);
	if (rec.type != RING_REC_PAD) {
		room = rec.len - sizeof(rec);
		mpad = ALIGN_UP((uint64_t)rec.meta_len, 8);
		if (mpad > room || rec.payload_len > room - mpad)
			return bad_rec(r);
	}
	if (rec.type == RING_REC_PAD ||
	    (r->c_need_sync && !(rec.flags & RING_RF_SYNC))) {
		r->c_pos = pos + rec.len; /* strictly forward, <= c_head */
		return 1;
	}
	r->c_need_sync = false;
	v->type = rec.type;
	v->flags = rec.flags;
	v->seq = rec.seq;
	v->meta = r->area + off + sizeof(rec);
	v->meta_len = rec.meta_len;
	v->payload = r->area + off + sizeof(rec) + mpad;
	v->payload_len = rec.payload_len;
	v->pos = pos;
	v->end = pos + rec.len;
	return 0;
}

/* Awake again (relaxed: a stale value only costs a spurious wake). */
static void
disarm(struct ring *r)
{
	atomic_store_explicit(&r->c_page->sleep_seq, 0, memory_order_relaxed);
	r->c_armed = false;
}

/* Anything new since we last looked: records, the end, our eviction? */
static bool
news(struct ring *r)
{
	const struct ring_hdr *h = r->hdr;

	return atomic_load_explicit(&h->head, memory_order_seq_cst) !=
	       r->c_pos ||
	       atomic_load_explicit(&h->state, memory_order_seq_cst) ==
	       RING_STATE_ENDED || evicted(r);
}

/* Nothing to read and no time to wait, with a wake pipe: empty the pipe,
 * then announce that we sleep on the current wake_seq exactly as a
 * blocking wait does, and stay announced after returning, so the producer
 * pokes the pipe at its next wake check (poke_sleepers). Emptied first:
 * a poke before the announcement is stale, one after it stays readable.
 * The re-check after the announcement is the same Dekker pairing as in
 * wait_data(), and the futex's own check: wake_seq must still be the
 * value we announced. 0 to re-check (something came meanwhile), -EAGAIN. */
static int
arm_wake(struct ring *r)
{
	char buf[64];
	uint32_t w;

	while (read(r->c_wfd, buf, sizeof(buf)) == (ssize_t)sizeof(buf))
		;
	w = atomic_load_explicit(&r->hdr->wake_seq, memory_order_acquire);
	atomic_store_explicit(&r->c_page->sleep_seq, RING_SLEEPING | w,
			      memory_order_seq_cst);
	r->c_armed = true;
	/* wake_seq moved meanwhile: its scan may have missed our word (a
	 * futex_wait would return at once for the same reason); announce
	 * again on the new value. */
	if (!news(r) && atomic_load_explicit(&r->hdr->wake_seq,
					     memory_order_seq_cst) == w)
		return -EAGAIN;
	disarm(r);
	return 0;
}

int
ring_set_wake_fd(struct ring *r, int fd)
{
	if (r->role != RING_ROLE_CONSUMER)
		return -EPERM;
	r->c_wfd = fd;
	return 0;
}

/* Nothing to read: -EPIPE if the stream ended, else sleep one slice on
 * wake_seq. 0 to re-check, <0 to return. */
static int
wait_data(struct ring *r, uint64_t deadline)
{
	struct ring_hdr *h = r->hdr;
	uint32_t w;
	int ms, ret = 0;

	/* Acquire: pairs with ring_set_end's release; then re-load head
	 * (refresh_head) for records published before the end. */
	if (atomic_load_explicit(&h->state, memory_order_acquire) ==
	    RING_STATE_ENDED) {
		ret = refresh_head(r);
		return ret < 0 ? ret : ret ? 0 : -EPIPE;
	}
	/* Make our cursor current and check for a waiting producer (pads
	 * skipped and releases not checked since the last batch): a producer
	 * must not wait for us while we sleep or poll. */
	publish_pos(r);
	if ((ms = slice_until(deadline, RING_WAIT_SLICE_MS)) == 0)
		return r->c_wfd >= 0 ? arm_wake(r) : -EAGAIN;
	/* Acquire: the futex word is read before we announce ourselves, so a
	 * publish after our re-check below changes it and futex_wait returns
	 * at once. */
	w = atomic_load_explicit(&h->wake_seq, memory_order_acquire);
	/* seq_cst store, then seq_cst re-load of head: Dekker pairing with
	 * the producer's head store + seq_cst fence + load of our sleep_seq.
	 * The value names the wake_seq we sleep on, so the producer wakes us
	 * once for it, not at every check while we are still asleep. */
	atomic_store_explicit(&r->c_page->sleep_seq, RING_SLEEPING | w,
			      memory_order_seq_cst);
	if (!news(r))
		futex_wait(&h->wake_seq, w, ms);
	disarm(r);
	return 0;
}

int
ring_next(struct ring *r, struct ring_rd *v, int timeout_ms)
{
	uint64_t deadline = timeout_ms == 0 ? 0 : deadline_after(timeout_ms);
	int ret;

	if (r->slot < 0)
		return -EINVAL;
	for (;;) {
		if (evicted(r))
			return -ECONNRESET;
		if (r->c_pos == r->c_head) {
			if ((ret = refresh_head(r)) < 0)
				return ret;
			if (ret == 0) {
				if ((ret = wait_data(r, deadline)) < 0)
					return ret;
				continue;
			}
		}
		if ((ret = read_rec(r, v)) != 1) {
			/* announced by an earlier -EAGAIN, now reading */
			if (r->c_armed)
				disarm(r);
			return ret;
		}
	}
}

int
ring_view_valid(const struct ring *r, const struct ring_rd *v)
{
	return reclaimed(r, v->pos) ? -EOVERFLOW : 0;
}

void
ring_release(struct ring *r, const struct ring_rd *v)
{
	if (r->slot < 0 || v->pos != r->c_pos || v->end <= v->pos ||
	    v->end > r->c_head)
		return;
	r->c_pos = v->end;
	released(r);
}

uint64_t
ring_overruns(const struct ring *r)
{
	return r->c_overruns;
}

int64_t
ring_tracks_copy(const struct ring *r, void *dst, size_t dst_size)
{
	const struct ring_tracks *t = (const struct ring_tracks *)r->tracks;
	const struct ring_tracks *d = dst;
	uint32_t g1, g2;
	int i;

	if (dst_size < r->tracks_size)
		return -EINVAL;
	for (i = 0; i < TRACKS_RETRIES; i++) {
		/* Acquire: the table written before this (even) gen. */
		g1 = atomic_load_explicit(&t->gen, memory_order_acquire);
		if (g1 & 1u)
			continue;
		memcpy(dst, t, r->tracks_size);
		/* Acquire fence then re-load: if the copy saw any byte of a
		 * later update, gen has changed (seqlock reader). */
		atomic_thread_fence(memory_order_acquire);
		g2 = atomic_load_explicit(&t->gen, memory_order_relaxed);
		if (g1 != g2)
			continue;
		if (d->count > RING_MAX_TRACKS ||
		    d->pool_used > RING_EXTRADATA_POOL)
			return -EBADMSG;
		return g1;
	}
	return -EAGAIN;
}

size_t
ring_tracks_size(const struct ring *r)
{
	return r->tracks_size;
}

uint32_t
ring_tracks_gen(const struct ring *r)
{
	const struct ring_tracks *t = (const struct ring_tracks *)r->tracks;

	/* Acquire: pairs with ring_tracks_end's release store. */
	return atomic_load_explicit(&t->gen, memory_order_acquire);
}

uint32_t
ring_wait_state(const struct ring *r, uint32_t min, int timeout_ms)
{
	/* Acquire, and before the state: a state stored after this load
	 * comes with a wake_seq bump (ring_set_state, ring_set_end), so the
	 * futex call returns at once. */
	uint32_t w = atomic_load_explicit(&r->hdr->wake_seq,
					  memory_order_acquire);
	uint32_t st = ring_state(r);

	if (st >= min || timeout_ms <= 0)
		return st;
	futex_wait(&r->hdr->wake_seq, w, timeout_ms);
	return ring_state(r);
}
