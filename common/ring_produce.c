/*
 * ring_produce.c - the producer (the worker): room for a record (reserve,
 * reclaim, the early wrap), publishing it, the wake batches, the track
 * table's seqlock, the stream's state and the worker's own status. What
 * the producer knows of its consumers (adoption, cursor scans, waits, lag
 * eviction, wakes) is in ring_produce_slots.c. See ring_producer.h for the
 * API and docs/RING.md for the orderings.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "futex.h"
#include "ring_internal.h"
#include "ring_producer.h"

/* Room in the length log for n more records. */
static int
lens_reserve(struct ring *r, uint64_t n)
{
	uint64_t cap = r->p_lens_cap ? r->p_lens_cap : 1024, i;
	uint32_t *nl;

	if (r->p_lens_n + n <= r->p_lens_cap)
		return 0;
	while (cap < r->p_lens_n + n)
		cap *= 2;
	if ((nl = malloc(cap * sizeof(*nl))) == NULL)
		return -ENOMEM;
	for (i = 0; i < r->p_lens_n; i++)
		nl[i] = r->p_lens[(r->p_lens_first + i) & (r->p_lens_cap - 1)];
	free(r->p_lens);
	r->p_lens = nl;
	r->p_lens_cap = cap;
	r->p_lens_first = 0;
	return 0;
}

/* Log a record published at p_head (lens_reserve() made room). */
static void
lens_push(struct ring *r, uint64_t len)
{
	r->p_lens[(r->p_lens_first + r->p_lens_n++) & (r->p_lens_cap - 1)] =
		(uint32_t)(len / RING_ALIGN);
}

/* The n oldest records were reclaimed. */
static void
lens_drop(struct ring *r, uint64_t n)
{
	r->p_lens_first = (r->p_lens_first + n) & (r->p_lens_cap - 1);
	r->p_lens_n -= n;
}

/* Records already between tail and head when the producer maps the ring
 * (its own from an earlier mapping): their lengths come from the headers
 * this once, checked like everything else read from shared memory. */
static int
lens_load(struct ring *r)
{
	const struct ring_rec *rec;
	uint64_t t = r->p_tail, len;
	int ret;

	while (t < r->p_head) {
		rec = (const struct ring_rec *)(r->area + t % r->ds);
		len = rec->len;
		if (rec->pos != t || len < RING_ALIGN || len % RING_ALIGN ||
		    len > r->p_head - t || len > r->ds)
			return -EPROTO;
		if ((ret = lens_reserve(r, 1)) < 0)
			return ret;
		lens_push(r, len);
		t += len;
	}
	return 0;
}

/* The producer resumes from the published state; it is its own (or the
 * broker's fresh header), but a bad value must not send it walking. The
 * consumers it adopted in an earlier mapping are not known to this one:
 * a producer maps its ring once. */
int
ring_prod_init(struct ring *r)
{
	struct ring_hdr *h = r->hdr;

	/* Relaxed: no other producer exists, nothing to synchronise with. */
	r->p_head = atomic_load_explicit(&h->head, memory_order_relaxed);
	r->p_tail = atomic_load_explicit(&h->tail, memory_order_relaxed);
	r->p_seq = atomic_load_explicit(&h->next_seq, memory_order_relaxed);
	if (r->p_tail > r->p_head || r->p_head - r->p_tail > r->ds ||
	    r->p_head % RING_ALIGN || r->p_tail % RING_ALIGN)
		return -EPROTO;
	r->p_limit = r->p_tail;
	/* 0, not the header's value: the first check drains the channel,
	 * where the ADDs of consumers attached before we mapped wait. */
	r->p_slot_gen = 0;
	r->p_blocker = -1;
	r->p_last_sync = atomic_load_explicit(&h->last_sync,
					      memory_order_relaxed);
	if (r->p_last_sync != UINT64_MAX && r->p_last_sync >= r->p_head)
		r->p_last_sync = r->p_tail;
	r->p_wrap_at = r->mode == RING_MODE_LOSSLESS &&
		r->ds >= RING_WRAP_EARLY_MIN_RING ? RING_WRAP_EARLY_AT : r->ds;
	r->p_wrap_next = 0;
	r->p_wrapped = UINT64_MAX;
	r->p_unwoken = 0;
	r->p_unwoken_at = r->p_head;
	r->p_unwoken_pad = 0;
	r->p_wake_bytes = r->ds / RING_WAKE_BATCH_DIV;
	r->p_packets = atomic_load_explicit(&h->packets, memory_order_relaxed);
	r->p_frames = atomic_load_explicit(&h->frames, memory_order_relaxed);
	r->p_bytes = atomic_load_explicit(&h->payload_bytes,
					  memory_order_relaxed);
	r->p_waits = atomic_load_explicit(&h->producer_waits,
					  memory_order_relaxed);
	r->p_evictions = atomic_load_explicit(&h->evictions,
					      memory_order_relaxed);
	r->p_slots = calloc(r->nslots, sizeof(*r->p_slots));
	r->p_live = calloc(r->nslots, sizeof(*r->p_live));
	if (r->p_slots == NULL || r->p_live == NULL)
		return -ENOMEM;
	for (uint32_t i = 0; i < r->nslots; i++)
		r->p_slots[i].wfd = -1;
	return lens_load(r);
}

void
ring_prod_free(struct ring *r)
{
	for (unsigned i = 0; r->p_slots != NULL && i < r->nslots; i++) {
		if (r->p_slots[i].map != NULL)
			munmap(r->p_slots[i].map, RING_PAGE_SIZE);
		close_wfd(&r->p_slots[i].wfd);
	}
	free(r->p_slots);
	free(r->p_live);
	free(r->p_lens);
	r->p_slots = NULL;
	r->p_live = NULL;
	r->p_lens = NULL;
}

/* Wake batching: a publish only counts the record; the wake check above
 * runs once RING_WAKE_BATCH_RECS records or a 1/RING_WAKE_BATCH_DIV of the
 * ring have been published since the last one, or when the producer is
 * about to block (ring_flush). A consumer that catches up and sleeps after
 * every record would otherwise cost one FUTEX_WAKE per record, and a shared
 * futex wake is not cheap (it resolves the page of the word every time). */
static void
note_published(struct ring *r)
{
	if (++r->p_unwoken < RING_WAKE_BATCH_RECS &&
	    r->p_head - r->p_unwoken_at - r->p_unwoken_pad < r->p_wake_bytes)
		return;
	ring_wake_consumers(r, false);
}

int
ring_flush(struct ring *r)
{
	if (r->role != RING_ROLE_PRODUCER)
		return -EPERM;
	if (r->p_head != r->p_unwoken_at)
		ring_wake_consumers(r, false);
	return 0;
}

static struct ring_rec *
rec_at(const struct ring *r, uint64_t pos)
{
	return (struct ring_rec *)(r->area + pos % r->ds);
}

/* First record boundary >= need, walking the producer's private length
 * log from the current tail, then further on while the next boundary stays
 * <= more (reclaiming ahead; more <= need walks no further). *n is the
 * number of records walked. need and more are <= p_head, so the walk stays
 * among published records. */
static int
walk_tail(const struct ring *r, uint64_t need, uint64_t more, uint64_t *out,
	  uint64_t *n)
{
	uint64_t t = r->p_tail, len, i = 0;

	while (t < need || t < more) {
		if (i == r->p_lens_n)
			return -EBADMSG; /* cannot happen: head is logged */
		len = lens_at(r, i);
		if (t >= need && t + len > more)
			break;
		t += len;
		i++;
	}
	*out = t;
	*n = i;
	return 0;
}

/* Lossless: move tail to t (the start of the n-th logged record) once
 * every live cursor is at or past it. */
static int
reclaim_lossless(struct ring *r, uint64_t t, uint64_t n, struct budget *b)
{
	uint64_t lo = r->p_tail;
	int ret;

	for (;;) {
		if (t <= r->p_limit) {
			/* Store tail, then (seq_cst fence) check that no
			 * consumer was attached since the channel was last
			 * drained. The broker sends the ADD, increments
			 * slot_gen (seq_cst) and then re-loads tail, raising
			 * the new page's pos up to it: either it sees this
			 * tail or we see its increment, drain the channel
			 * and adopt the consumer before anything is
			 * overwritten. */
			atomic_store_explicit(&r->hdr->tail, t,
					      memory_order_relaxed);
			atomic_thread_fence(memory_order_seq_cst);
			if (atomic_load_explicit(&r->hdr->slot_gen,
					memory_order_relaxed) == r->p_slot_gen) {
				r->p_tail = t;
				return 0;
			}
		}
		if ((ret = ring_wait_cursors(r, lo, t, n, b)) < 0)
			return ret;
	}
}
/* Live: advance tail past what will be overwritten, never waiting. */
static void
reclaim_live(struct ring *r, uint64_t t)
{
	/* Relaxed store then release fence, before any byte is overwritten
	 * (seqlock writer side): a consumer that reads an overwritten byte and
	 * then (acquire fence) loads tail is guaranteed to see this value or a
	 * later one, and so discards what it read. */
	atomic_store_explicit(&r->hdr->tail, t, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
	r->p_tail = t;
}

/* Make [p_head, end) writable: tail must reach end - ds. Lossless mode
 * reclaims ahead, up to 1/RING_WAKE_BATCH_DIV of the ring past that when the
 * cached limit already allows it (nothing a consumer still needs is
 * reclaimed), so the tail store and its fence run once per chunk rather
 * than once per record. Live mode reclaims only what it must: consumers
 * there may still read what lies behind the tail. */
static int
make_room(struct ring *r, uint64_t end, struct budget *b)
{
	uint64_t t, need, more = 0, n;
	int ret;

	if (end <= r->p_tail + r->ds)
		return 0;
	need = end - r->ds;
	if (r->mode == RING_MODE_LOSSLESS) {
		more = need + r->ds / RING_WAKE_BATCH_DIV;
		if (more > r->p_limit)
			more = r->p_limit;
	}
	if ((ret = walk_tail(r, need, more, &t, &n)) < 0)
		return ret;
	if (r->mode == RING_MODE_LIVE)
		reclaim_live(r, t);
	else if ((ret = reclaim_lossless(r, t, n, b)) < 0)
		return ret;
	lens_drop(r, n);
	return 0;
}

int
ring_reclaim(struct ring *r, uint64_t *tail)
{
	struct budget b = { .ms = 0, .reclaim = true };
	uint64_t t, n;
	int ret;

	if (r->role != RING_ROLE_PRODUCER)
		return -EPERM;
	if (r->mode == RING_MODE_LOSSLESS && r->p_tail < r->p_head) {
		/* The last record boundary every live cursor has passed
		 * (walk_tail from the tail, no further than the limit). */
		ring_scan_limit(r, r->p_tail, r->p_head, 0, 0);
		if ((ret = walk_tail(r, r->p_tail, r->p_limit, &t, &n)) < 0)
			return ret;
		if (t > r->p_tail) {
			ret = reclaim_lossless(r, t, n, &b);
			if (ret == 0)
				lens_drop(r, n);
			else if (ret != -EAGAIN)
				return ret;
		}
	}
	*tail = r->p_tail;
	return 0;
}

uint64_t
ring_prod_tail(const struct ring *r)
{
	return r->p_tail;
}

static void
fill_rec(struct ring_rec *rec, uint64_t pos, uint64_t len, uint16_t type,
	 uint16_t flags, uint32_t meta_len, uint64_t payload_len, uint64_t seq)
{
	rec->magic = RING_REC_MAGIC;
	rec->type = type;
	rec->flags = flags;
	rec->pad = 0;
	rec->meta_len = meta_len;
	rec->pad2 = 0;
	rec->len = len;
	rec->seq = seq;
	rec->payload_len = payload_len;
	rec->pos = pos;
	rec->reserved[0] = rec->reserved[1] = 0;
}

/* Publish head = end. Release: the record bytes written before (header,
 * meta, payload) are visible to a consumer that acquires head. */
static void
publish_head(struct ring *r, uint64_t end)
{
	r->p_head = end;
	atomic_store_explicit(&r->hdr->head, end, memory_order_release);
}

/* Fill the rest of the area with a pad record, so the next record starts at
 * offset 0. Published on its own: a consumer caught up at p_head then moves
 * to the lap boundary, and the next record's room never includes it. */
static int
pad_to_end(struct ring *r, struct budget *b)
{
	uint64_t len = r->ds - r->p_head % r->ds;
	int ret;

	if ((ret = make_room(r, r->p_head + len, b)) < 0)
		return ret;
	lens_push(r, len);
	fill_rec(rec_at(r, r->p_head), r->p_head, len, RING_REC_PAD, 0, 0, 0,
		 r->p_seq);
	publish_head(r, r->p_head + len);
	/* A pad counts toward neither batch threshold (with early wraps it
	 * is most of a lap's bytes), but ring_flush() still wakes for it: a
	 * producer waiting for room may need a sleeping consumer to walk
	 * over it. */
	r->p_unwoken_pad += len;
	return 0;
}

/* Lossless: go back to the start of the area before its end, once
 * RING_WRAP_EARLY_AT bytes into it, when that needs no wait: every live
 * cursor has released the first len bytes of this lap, where the record
 * will go. Consumers that keep up then read, and the producer writes, a
 * few MiB that stay mapped and in cache instead of the whole ring: every
 * page costs each process a fault the first time it touches it, and the
 * lines of a record written a lap ago are long gone from the cache.
 * Consumers that fall behind have the rest of the ring as before: the
 * producer goes on past RING_WRAP_EARLY_AT whenever the start is in use.
 *
 * What stays retained for a consumer that attaches later shrinks to what
 * lies behind the head in the window, so the window also keeps the newest
 * sync record (a consumer starting at a keyframe finds one): it is at least
 * twice the record bytes between the last two sync records, and a wrap
 * that would reclaim the newest one is not made.
 *
 * A consumer that stalls right after an early wrap has only the window's
 * worth of room behind it, not the ring's: each time the producer has to
 * wait for room in a lap it began early, the window doubles (grow_window),
 * up to the whole ring, so consumers that need the ring's buffering get it
 * back after a few waits. With no consumer attached
 * (or before wait_consumers attached) nothing is wrapped early: the whole
 * ring stays history for the next one. A check that fails is not repeated
 * for RING_WRAP_EARLY_RETRY bytes (it may scan every slot). */
/* Every live cursor is at or past t: the cached limit while no consumer
 * was attached since the channel was drained, else a scan (which drains
 * it and refreshes the limit). */
static bool
cursors_past(struct ring *r, uint64_t t)
{
	if (t <= r->p_limit &&
	    atomic_load_explicit(&r->hdr->slot_gen,
				 memory_order_relaxed) == r->p_slot_gen)
		return true;
	return ring_scan_limit(r, r->p_tail, t, 0, 0) >= t;
}

/* The caller has checked that the record fits before the end of the area. */
static bool
wrap_early(struct ring *r, uint64_t len)
{
	uint64_t off = r->p_head % r->ds, reuse;

	/* the common case, and the whole test when early wraps are off */
	if (off < r->p_wrap_at || off < 2 * r->p_gop ||
	    r->p_head < r->p_wrap_next)
		return false;
	reuse = r->p_head - off + len;
	/* the newest sync record, and what reclaim-ahead may take with the
	 * reused bytes (make_room), must lie past them */
	if (r->p_last_sync != UINT64_MAX &&
	    reuse + r->ds / RING_WAKE_BATCH_DIV > r->p_last_sync)
		goto no;
	if (!cursors_past(r, reuse) || r->p_nlive == 0)
		goto no;
	return true;
no:
	r->p_wrap_next = r->p_head + RING_WRAP_EARLY_RETRY;
	return false;
}

static void
grow_window(struct ring *r)
{
	if (r->p_wrapped == UINT64_MAX || r->p_head >= r->p_wrapped + r->ds ||
	    r->p_wrap_at >= r->ds)
		return;
	r->p_wrap_at = r->p_wrap_at >= r->ds / 2 ? r->ds : 2 * r->p_wrap_at;
	r->p_wrapped = UINT64_MAX;
}

int
ring_reserve(struct ring *r, uint32_t meta_len, uint64_t payload_len,
	     struct ring_wr *w, int timeout_ms)
{
	struct budget b = { .ms = timeout_ms };
	uint64_t len;
	uint8_t *p;
	int ret;

	if (r->role != RING_ROLE_PRODUCER)
		return -EPERM;
	if (payload_len > r->ds || meta_len > r->ds)
		return -EMSGSIZE;
	len = ALIGN_UP(sizeof(struct ring_rec) + ALIGN_UP(meta_len, 8) +
		       payload_len, RING_ALIGN);
	if (len > r->ds)
		return -EMSGSIZE;
	/* room to log a pad and this record (grows rarely; before anything
	 * is published, so a failure leaves the ring as it was) */
	if ((ret = lens_reserve(r, 2)) < 0)
		return ret;
	if (r->p_head % r->ds + len > r->ds) {
		if ((ret = pad_to_end(r, &b)) < 0)
			return ret;
	} else if (wrap_early(r, len)) {
		/* cannot wait: wrap_early saw the room free */
		if ((ret = pad_to_end(r, &b)) < 0)
			return ret;
		r->p_wrapped = r->p_head;
	}
	ret = make_room(r, r->p_head + len, &b);
	if (b.waited)
		grow_window(r);
	if (ret < 0)
		return ret;
	p = (uint8_t *)rec_at(r, r->p_head);
	w->pos = r->p_head;
	w->len = len;
	w->meta_len = meta_len;
	w->payload_len = payload_len;
	w->meta = p + sizeof(struct ring_rec);
	w->payload = p + sizeof(struct ring_rec) + ALIGN_UP(meta_len, 8);
	return 0;
}

int
ring_publish(struct ring *r, struct ring_wr *w, uint16_t type,
	     uint16_t flags)
{
	struct ring_hdr *h = r->hdr;

	if (r->role != RING_ROLE_PRODUCER)
		return -EPERM;
	if (w->pos != r->p_head || w->len > r->ds ||
	    w->pos + w->len > r->p_tail + r->ds ||
	    w->payload_len > w->len ||
	    sizeof(struct ring_rec) + ALIGN_UP((uint64_t)w->meta_len, 8) >
	    w->len - w->payload_len)
		return -EINVAL;
	if (type != RING_REC_PACKET && type != RING_REC_FRAME &&
	    type != RING_REC_TRACKS)
		return -EINVAL;
	fill_rec(rec_at(r, w->pos), w->pos, w->len, type, flags, w->meta_len,
		 w->payload_len, r->p_seq);
	lens_push(r, w->len);
	publish_head(r, w->pos + w->len);
	/* Release, after head: a consumer that jumps to last_sync finds the
	 * record already below head. */
	if (flags & RING_RF_SYNC) {
		if (r->p_last_sync != UINT64_MAX)
			r->p_gop = r->p_rec_bytes - r->p_sync_bytes;
		r->p_sync_bytes = r->p_rec_bytes;
		r->p_last_sync = w->pos;
		atomic_store_explicit(&h->last_sync, w->pos,
				      memory_order_release);
	}
	r->p_rec_bytes += w->len;
	/* Counters: relaxed, single writer, read only for display. */
	atomic_store_explicit(&h->next_seq, ++r->p_seq, memory_order_relaxed);
	if (type == RING_REC_PACKET)
		atomic_store_explicit(&h->packets, ++r->p_packets,
				      memory_order_relaxed);
	else if (type == RING_REC_FRAME)
		atomic_store_explicit(&h->frames, ++r->p_frames,
				      memory_order_relaxed);
	r->p_bytes += w->payload_len;
	atomic_store_explicit(&h->payload_bytes, r->p_bytes,
			      memory_order_relaxed);
	note_published(r);
	return 0;
}

struct ring_tracks *
ring_tracks_begin(struct ring *r)
{
	struct ring_tracks *t = (struct ring_tracks *)r->tracks;
	uint32_t g = atomic_load_explicit(&t->gen, memory_order_relaxed);

	/* Odd gen first, then a release fence before the table is written
	 * (seqlock writer): a reader that sees any new table byte and then
	 * re-loads gen after its acquire fence sees it changed. */
	atomic_store_explicit(&t->gen, g | 1u, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
	return t;
}

uint32_t
ring_tracks_end(struct ring *r)
{
	struct ring_tracks *t = (struct ring_tracks *)r->tracks;
	uint32_t g = atomic_load_explicit(&t->gen, memory_order_relaxed);

	g = (g | 1u) + 1u;
	/* Release: the table is complete before readers see an even gen. */
	atomic_store_explicit(&t->gen, g, memory_order_release);
	return g;
}

void
ring_set_state(struct ring *r, uint32_t state)
{
	/* Release: fields written before (tracks, status) are visible to a
	 * consumer that acquires the new state. */
	atomic_store_explicit(&r->hdr->state, state, memory_order_release);
	ring_wake_consumers(r, true);
}


void
ring_set_worker_pid(struct ring *r, int32_t pid)
{
	/* Plain store: published by the next state store (release). */
	if (r->role == RING_ROLE_PRODUCER)
		r->hdr->worker_pid = pid;
}

int32_t *
ring_syscall_word(struct ring *r)
{
	return r->role == RING_ROLE_PRODUCER ? &r->hdr->end_syscall : NULL;
}

static _Atomic uint64_t *
counter(struct ring_hdr *h, enum ring_counter c)
{
	switch (c) {
	case RING_CNT_CORRUPT_PACKETS:
		return &h->corrupt_packets;
	case RING_CNT_DECODE_ERRORS:
		return &h->decode_errors;
	case RING_CNT_FRAMES_POOLED:
		return &h->frames_pooled;
	case RING_CNT_FRAMES_COPIED:
		return &h->frames_copied;
	case RING_CNT_INPUT_BYTES:
		return &h->input_bytes;
	}
	return NULL;
}

void
ring_count(struct ring *r, enum ring_counter c, uint64_t n)
{
	_Atomic uint64_t *w;

	if (r->role != RING_ROLE_PRODUCER || (w = counter(r->hdr, c)) == NULL)
		return;
	/* Relaxed load + store: an exact increment, the producer being the
	 * only writer; readers need no ordering with anything else. */
	atomic_store_explicit(w, atomic_load_explicit(w, memory_order_relaxed) +
			      n, memory_order_relaxed);
}

void
ring_set_progress(struct ring *r, uint64_t ns)
{
	/* Relaxed: a hint for the watchdog. */
	if (r->role == RING_ROLE_PRODUCER)
		atomic_store_explicit(&r->hdr->progress_ns, ns,
				      memory_order_relaxed);
}

void
ring_set_input_held(struct ring *r, uint64_t bytes)
{
	/* Relaxed: a hint for the watchdog. */
	if (r->role == RING_ROLE_PRODUCER)
		atomic_store_explicit(&r->hdr->input_held, bytes,
				      memory_order_relaxed);
}

void *
ring_pool_write(struct ring *r, uint64_t *size)
{
	*size = r->role == RING_ROLE_PRODUCER ? r->ps : 0;
	return r->role == RING_ROLE_PRODUCER ? r->pool : NULL;
}

void *
ring_segment(struct ring *r, size_t *len)
{
	*len = r->role == RING_ROLE_PRODUCER ? r->dlen : 0;
	return r->role == RING_ROLE_PRODUCER ? r->dmap : NULL;
}

void
ring_set_worker_status(struct ring *r, uint32_t reason, int32_t averror,
		       const char *msg)
{
	/* Plain stores: published by the next state store (release). */
	r->hdr->worker_reason = reason;
	r->hdr->worker_averror = averror;
	set_msg(r->hdr, msg);
}
