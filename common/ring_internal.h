/*
 * ring_internal.h - what the ring's files share, and nothing else: the
 * state of one mapping (struct ring) and the few functions one role's file
 * calls in another's. Not for any caller of the ring: they include ring.h
 * and the header of their side (ring_producer.h, ring_consumer.h,
 * ring_admin.h).
 *
 * The files, one role each:
 *   ring_map.c           mapping and validating the data segment
 *   ring_produce.c       the producer: records (reserve, publish, reclaim,
 *                        wrap), the track table, state and status
 *   ring_produce_slots.c the producer's consumers: the admin channel,
 *                        cursor scans and waits, lag eviction, wakes
 *   ring_consume.c       a consumer: attach, read, release, holds, waits
 *   ring_admin.c         the broker: creation, slots and cursor pages,
 *                        the end status, stats
 *
 * Conventions in every one of them:
 *  - The producer keeps the authoritative head/tail/seq in struct ring and
 *    only publishes them; it never reads back a value a consumer can write
 *    without clamping it, and keeps its own table of the consumers it
 *    adopted (their positions privately monotonic).
 *  - A consumer copies every shared value once into a local and checks it
 *    before using it; a failed check is -EBADMSG.
 *  - Every atomic access names its ordering and why.
 */
#ifndef SHMDEMUX_RING_INTERNAL_H
#define SHMDEMUX_RING_INTERNAL_H

#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "ring.h"

#define ALIGN_UP(x, a) (((x) + ((a) - 1)) & ~((uint64_t)(a) - 1))
#define PAGE 4096u
/* Lag checkpoints kept (ring_produce_slots.c). */
#define CP_MAX 128u
/* The seals every cursor page carries. */
#define PAGE_SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)

/* The producer's own record of one slot. pos is the consumer's cursor as
 * the producer counts it: clamped to [tail, head] and never lowered, so a
 * cursor moved backwards is no progress and one moved past what was read
 * hurts only its consumer. Nothing else is read from the page but its
 * sleep_seq and its futex word. */
enum { PS_FREE = 0, PS_LIVE, PS_EVICTED };

struct pslot {
	const struct ring_page *pg;  /* its page while LIVE (read-only) */
	void *map;                   /* the same mapping, for munmap */
	int wfd;                     /* its wake pipe's write end (the ADD's
	                                second fd) while LIVE, or -1 */
	uint64_t id;                 /* attach id from the ADD */
	uint64_t pos;
	uint32_t state;
};

/* The broker's record of one slot: its page (read-write, for the raise at
 * attach, the futex bumps and `ls`) until the DEL went out. */
enum { AS_FREE = 0, AS_USED, AS_DEL };

struct aslot {
	struct ring_page *pg;
	int wfd;                     /* its wake pipe's write end, or -1 */
	uint64_t id;
	uint32_t state;
};

/* Lag eviction: since ns, the producer has waited for every consumer to
 * get past pos (docs/RING.md, "Lag eviction"). */
struct lagcp {
	uint64_t pos, ns;
};

struct ring {
	enum ring_role role;
	void *dmap;
	size_t dlen;
	struct ring_hdr *hdr;
	uint8_t *tracks;
	uint8_t *area;
	uint8_t *pool;
	int admin_fd;          /* producer, broker: the admin channel, or -1 */
	/* validated copies of the header geometry: never re-read */
	uint64_t ds;
	uint64_t ps;           /* frame pool bytes, 0 = none */
	uint64_t tracks_size;
	uint32_t nslots, mode, wait_consumers, lag_ms;

	/* producer: authoritative state, published to the header */
	uint64_t p_head, p_tail, p_seq;
	uint64_t p_limit;      /* every live cursor was >= this (p_slots) */
	uint32_t p_slot_gen;   /* slot_gen when the channel was last drained */
	bool p_hold_done;      /* wait_consumers reached (sticky) */
	bool p_admin_closed;   /* the broker closed the channel */
	uint32_t p_adopted;    /* consumers ever adopted (wait_consumers) */
	struct pslot *p_slots; /* nslots */
	uint16_t *p_live;      /* indices of the LIVE slots */
	uint32_t p_nlive;
	int p_blocker;         /* the slowest live slot at the last scan, -1 */
	struct lagcp p_cp[CP_MAX];
	uint32_t p_cp_first, p_cp_n;
	uint64_t p_packets, p_frames, p_bytes, p_waits, p_evictions;
	/* Private log of the record lengths in [p_tail, p_head) (in units of
	 * RING_ALIGN), oldest first, in a power-of-two circular array: the
	 * tail walk reads it instead of record headers written a lap ago
	 * (cache misses, and memory the broker can also write). */
	uint32_t *p_lens;
	uint64_t p_lens_cap, p_lens_first, p_lens_n;
	/* Early wrap (wrap_early). Record bytes are counted without pads,
	 * which make positions run ahead of the data. */
	uint64_t p_last_sync;  /* newest RING_RF_SYNC record, UINT64_MAX: none */
	uint64_t p_rec_bytes;  /* record bytes published, pads excluded */
	uint64_t p_sync_bytes; /* p_rec_bytes at the newest sync record */
	uint64_t p_gop;        /* record bytes between the last two of them */
	uint64_t p_wrap_at;    /* lossless: offset from which to wrap early */
	uint64_t p_wrap_next;  /* head before which no early wrap is tried */
	uint64_t p_wrapped;    /* start of the last lap begun early, or
	                          UINT64_MAX */
	uint32_t p_unwoken;    /* records published since the last wake check */
	uint64_t p_unwoken_at; /* p_head at the last wake check */
	uint64_t p_unwoken_pad; /* pad bytes since then (no byte threshold) */
	uint64_t p_wake_bytes; /* wake after this many bytes (ds / 32) */

	/* broker */
	struct aslot *a_slots; /* nslots */
	uint64_t a_next_id;
	uint32_t a_used, a_pending;
	bool a_dead;           /* the producer's end is closed */

	/* consumer */
	int slot;              /* -1 until ring_attach() */
	uint64_t c_id;         /* our attach id */
	struct ring_page *c_page;
	uint64_t c_pos;        /* next record to read */
	uint64_t c_head;       /* cached head, <= the real head */
	uint64_t c_overruns;
	uint64_t c_checked_at; /* c_pos when the producer was last checked */
	uint32_t c_unchecked;  /* releases since then */
	bool c_need_sync;      /* skip to the next RING_RF_SYNC record */
	/* Holds (ring_set_floor): once used, the published cursor is
	 * min(c_pos, c_floor), never moving backwards, and every publish
	 * runs under c_lock because a floor may be raised from any thread.
	 * c_mirror is c_pos as last published, for those threads. */
	_Atomic bool c_holds;
	pthread_mutex_t c_lock;
	uint64_t c_floor;      /* under c_lock; UINT64_MAX: nothing held */
	uint64_t c_mirror;     /* under c_lock */
	uint64_t c_pub;        /* under c_lock: the value last published */
	int c_wfd;             /* read end of our wake pipe, or -1 */
	bool c_armed;          /* sleep_seq announced by arm_wake() */
};

/* A reserve's timeout, turned into a deadline only if it has to wait: the
 * common case reads no clock. */
struct budget {
	int ms;
	bool set;
	bool waited;   /* had to wait for cursors (counted in producer_waits) */
	bool reclaim;  /* ring_reclaim: takes what is free, needs nothing */
	uint64_t deadline;
};

/* ring_scan_limit() flags */
#define SCAN_LAG   1u  /* evict cursors below want past their lag age */
#define SCAN_QUIET 2u  /* no admin message (every page stays mapped) */

static inline uint64_t
data_seg_size(uint64_t ds, uint64_t ps)
{
	return RING_HDR_SIZE + RING_TRACKS_SIZE + ds + ps;
}

static inline void
close_wfd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* One byte into a consumer's wake pipe: its poll loop wakes. The pipe is
 * non-blocking on our side (the broker made it, and the consumer holds
 * only the read end, so it cannot change that); a full pipe is already
 * readable, so EAGAIN loses nothing. */
static inline void
poke(int fd)
{
	static const char one = 1;

	if (fd >= 0)
		(void)!write(fd, &one, 1);
}

static inline void
set_msg(struct ring_hdr *h, const char *msg)
{
	if (msg == NULL)
		return;
	strncpy(h->end_msg, msg, RING_MSG_LEN - 1);
	h->end_msg[RING_MSG_LEN - 1] = '\0';
}

/* Length of the i-th oldest logged record, in bytes. */
static inline uint64_t
lens_at(const struct ring *r, uint64_t i)
{
	return (uint64_t)r->p_lens[(r->p_lens_first + i) &
				   (r->p_lens_cap - 1)] * RING_ALIGN;
}

/* ---- one role's functions another role's file calls ---- */

/* ring_produce.c: the producer's state, from the published header
 * (ring_map), and its release (ring_unmap). */
int ring_prod_init(struct ring *r);
void ring_prod_free(struct ring *r);

/* ring_produce_slots.c */
/* Wake consumers sleeping on wake_seq (always: whether or not one says it
 * sleeps; the producer's state changes and the broker's end). */
void ring_wake_consumers(struct ring *r, bool always);
/* Recompute the reclaim limit from the live cursors (SCAN_* flags). */
uint64_t ring_scan_limit(struct ring *r, uint64_t lo, uint64_t want,
			 unsigned flags, uint64_t now);
/* Block until the cursors allow tail = t, or the budget's deadline. */
int ring_wait_cursors(struct ring *r, uint64_t lo, uint64_t t, uint64_t n,
		      struct budget *b);

/* ring_consume.c: a mapping's consumer state (every role has one: slot
 * is -1 until ring_attach) and its release. */
void ring_cons_init(struct ring *r);
void ring_cons_free(struct ring *r);

/* ring_admin.c: the broker's slot table. */
int ring_admin_init(struct ring *r);
void ring_admin_free(struct ring *r);

#endif
