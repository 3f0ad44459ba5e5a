/*
 * ring.h - the shared-memory broadcast ring (one producer, many consumers).
 *
 * A ring is one memfd-backed data segment plus one small cursor page per
 * attached consumer:
 *
 *   data segment   header page, track table, circular record area (and the
 *                  frame pool). Written only by the producer (the worker)
 *                  and the broker (terminal status, slot generation).
 *                  Consumers map it PROT_READ from a read-only file
 *                  description, so they cannot write it.
 *   cursor page    one per consumer, a memfd of its own that only that
 *                  consumer, the broker and the producer map. The consumer
 *                  writes its cursor there; the producer maps it read-only
 *                  and treats every value as untrusted (clamped, privately
 *                  monotonic).
 *   admin channel  a SOCK_SEQPACKET socketpair from the broker to the
 *                  producer: ADD (slot, attach id, start, the page's fd,
 *                  and the write end of the consumer's wake pipe if it
 *                  has one) and DEL (slot, attach id). The producer adopts
 *                  a consumer from its ADD and keeps its own slot table.
 *   wake pipe      optional, per consumer (ring_slot_alloc_wake): the
 *                  broker makes it; the consumer polls the read end, the
 *                  producer and the broker write one byte to wake it when
 *                  it said it sleeps (docs/RING.md, "Wake pipes").
 *
 * docs/RING.md describes the layout, every field, the memory ordering of each
 * publish and cursor update, and the two flow-control modes.
 *
 * All functions return 0 (or a non-negative value where stated) or a negative
 * errno code:
 *   -EAGAIN     nothing to read / no space yet (timeout expired or timeout 0)
 *   -EPIPE      the stream has ended and every retained record was read;
 *               ring_status() tells why it ended
 *   -EOVERFLOW  (live mode) the consumer was lapped; its cursor has been moved
 *               to a sync record, the next ring_next() continues from there
 *   -EBADMSG    the ring's contents are corrupt (failed validation)
 *   -EPROTO     wrong magic / ABI version / inconsistent sizes in the header
 *   -EMSGSIZE   a record larger than the ring can ever hold
 *   -ECONNRESET this consumer was evicted (lag timeout)
 *   -ETIMEDOUT  (producer) still no space after the timeout
 */
#ifndef SHMDEMUX_RING_H
#define SHMDEMUX_RING_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ring_layout.h"

struct ring;

/* Who maps the ring decides which protections are used. */
enum ring_role {
	RING_ROLE_PRODUCER = 1, /* data RW; consumer pages RO (admin channel) */
	RING_ROLE_CONSUMER = 2, /* data RO; its own page RW (ring_attach) */
	RING_ROLE_ADMIN = 3,    /* the broker: data RW (status, slot_gen),
	                           the pages it makes RW */
};

enum ring_start {
	RING_START_OLDEST = 0, /* oldest record still retained */
	RING_START_SYNC = 1,   /* newest sync (key) record, else oldest */
	RING_START_LIVE = 2,   /* the next record published */
};

struct ring_params {
	uint64_t data_size;      /* bytes of record area (rounded up to 4 KiB) */
	uint64_t pool_size;      /* bytes of frame pool after the record area
	                            (rounded up to 4 KiB); 0 = none */
	uint32_t max_consumers;  /* consumer slots, 1..RING_MAX_SLOTS */
	uint32_t mode;           /* RING_MODE_LOSSLESS or RING_MODE_LIVE */
	uint32_t wait_consumers; /* hold reclaim until this many attached */
	uint32_t lag_timeout_ms; /* lossless: evict a consumer that holds the
	                            producer back longer than this (lag age,
	                            docs/RING.md); 0 = never */
};

/* Size of the data segment for these parameters; 0 if the parameters are
 * out of range. */
uint64_t ring_data_seg_size(const struct ring_params *p);

/* Size the data fd (ftruncate), seal its size and write a fresh header.
 * Broker side. */
int ring_create(int data_fd, const struct ring_params *p);

/* Map an existing ring. The header is validated (magic, ABI, sizes against
 * the object's real size via fstat) before anything else is touched.
 * admin_fd is this side's end of the admin channel: the producer's
 * (received from, SOCK_SEQPACKET) or the broker's (sent to, non-blocking);
 * -1 for a consumer (ignored). data_fd is not kept; admin_fd stays the
 * caller's and must stay open while the ring is mapped. On failure *out
 * is NULL. */
int ring_map(struct ring **out, int data_fd, int admin_fd,
	     enum ring_role role);
/* Unmap and free (every page mapping too); accepts NULL / *r == NULL and
 * clears *r. */
void ring_unmap(struct ring **r);

/* Header and track table, for reading fields directly (status, counters).
 * For a consumer these point into read-only, untrusted memory: copy a field
 * once, then check it. */
const struct ring_hdr *ring_hdr(const struct ring *r);
/* The frame pool area (docs/RING.md) and its size in *size; NULL and 0 when
 * the ring has none. Read-only memory for a consumer, and untrusted. */
void *ring_pool(const struct ring *r, uint64_t *size);

/* ---- producer (worker) ---- */

struct ring_wr {
	void *meta;           /* meta_len bytes, 8-byte aligned */
	void *payload;        /* payload_len bytes, 8-byte aligned */
	uint32_t meta_len;
	uint64_t payload_len;
	uint64_t pos;         /* internal: record position */
	uint64_t len;         /* internal: total record length */
};

/* Reserve room for one record. Lossless mode: waits (futex, bounded slices)
 * until every adopted consumer has released enough, and until
 * wait_consumers consumers have been adopted; evicts consumers whose lag
 * age exceeds lag_timeout_ms (docs/RING.md). Live mode: never waits,
 * reclaims the oldest records. timeout_ms < 0 waits forever, 0 does not
 * wait. Returns 0, -ETIMEDOUT/-EAGAIN, -EMSGSIZE. */
int ring_reserve(struct ring *r, uint32_t meta_len, uint64_t payload_len,
		 struct ring_wr *w, int timeout_ms);
/* Publish the reserved record (release store of head). type is RING_REC_*,
 * flags RING_RF_*. meta_len and payload_len in w may have been lowered
 * since ring_reserve(): the record keeps the room reserved (a frame decoded
 * in the frame pool reserves the room its copy would take, to keep the
 * ring's flow control unchanged). Sleeping consumers are woken in
 * batches, not per record: once RING_WAKE_BATCH_RECS records or
 * 1/RING_WAKE_BATCH_DIV of the ring have been published since the last
 * wake check, or at ring_flush(). A consumer that is not sleeping sees
 * every record as soon as it is published either way. */
int ring_publish(struct ring *r, struct ring_wr *w, uint16_t type,
		 uint16_t flags);
/* Wake consumers sleeping on records published since the last wake check.
 * A producer must call it before it blocks for any reason other than
 * ring_reserve() (which flushes by itself before it waits for space):
 * waiting for input, pacing sleeps, and at the end of its stream. Cheap when
 * nothing is pending or nobody sleeps. Returns 0 or -EPERM (not the
 * producer). */
int ring_flush(struct ring *r);
#define RING_WAKE_BATCH_RECS 1024u
#define RING_WAKE_BATCH_DIV  32u
/* Lossless rings of at least RING_WRAP_EARLY_MIN_RING bytes wrap back to
 * their start from RING_WRAP_EARLY_AT bytes on when every consumer has
 * released it (ring.c, wrap_early; docs/RING.md). */
#define RING_WRAP_EARLY_AT       (2u << 20)
#define RING_WRAP_EARLY_MIN_RING (8u << 20)
#define RING_WRAP_EARLY_RETRY    (256u << 10)

/* Lossless: move the tail up to the newest record boundary every adopted
 * cursor (and the wait_consumers hold) allows, without waiting; ring_reserve
 * reclaims only when it needs room, which for small records can be a long
 * time. Live mode: no-op. *tail is the tail afterwards: every record that
 * ends at or below it is reclaimed and no consumer can read it any more.
 * Returns 0, -EPERM (not the producer) or -EBADMSG (its own record log is
 * inconsistent; cannot happen). */
int ring_reclaim(struct ring *r, uint64_t *tail);
/* The producer's current tail (see ring_reclaim); no shared access. */
uint64_t ring_prod_tail(const struct ring *r);
/* Take the admin channel's pending messages now (adopt and drop
 * consumers) without waiting. The ring does it by itself wherever it must
 * (before it overwrites anything, at wake checks, before it sleeps); a
 * producer blocked on something else (its input, a pacing sleep) calls
 * this when the channel is readable, so a consumer that left stops
 * holding it and the broker's queue drains. Returns 0, or -EPIPE once
 * the broker closed the channel (stop polling it). */
int ring_admin_poll(struct ring *r);
/* 1 when the broker sent something since the channel was last drained
 * (one load: cheap enough for every input read of a busy producer, which
 * then calls ring_admin_poll()). */
int ring_admin_pending(const struct ring *r);
/* Consumers adopted and not evicted (diagnostics, tests). */
unsigned ring_adopted(const struct ring *r);
/* Lag eviction looks this many records past what the producer waits for:
 * a consumer holding it back must release them within lag_timeout_ms of
 * the producer first needing the room (docs/RING.md, "Lag eviction"). */
#define RING_LAG_RECS 8u

/* Track table updates (seqlock on tracks->gen). Begin makes gen odd; end
 * makes it even, publishes it to readers and returns the new (even) gen. */
struct ring_tracks *ring_tracks_begin(struct ring *r);
uint32_t ring_tracks_end(struct ring *r);

/* Producer-side state changes (RING_STATE_*), and its own end status
 * (worker_reason etc. in the header). A state change always wakes consumers
 * (and so also flushes pending record wakes). */
void ring_set_state(struct ring *r, uint32_t state);
void ring_set_worker_status(struct ring *r, uint32_t reason, int32_t averror,
			    const char *msg);

/* ---- consumer (client library) ---- */

struct ring_rd {
	uint16_t type;        /* RING_REC_* */
	uint16_t flags;       /* RING_RF_* */
	uint64_t seq;         /* record number, 0-based, no gaps from producer */
	const void *meta;
	uint32_t meta_len;
	const void *payload;
	uint64_t payload_len;
	uint64_t pos;         /* internal */
	uint64_t end;         /* internal: position after the record */
};

/* Bind this mapping to the cursor page the broker made for us (page_fd:
 * checked for its size, seals and identity, mapped read-write; not kept)
 * and choose where reading starts. Must be called once before
 * ring_next(). */
int ring_attach(struct ring *r, int page_fd, enum ring_start start);
/* Poll instead of sleeping: fd is the read end of this consumer's wake
 * pipe (non-blocking, still the caller's). From then on, a ring_next()
 * that has to return -EAGAIN without waiting (timeout 0, or its timeout
 * expired) first empties the pipe and leaves the consumer announced as
 * sleeping, so the pipe becomes readable exactly when a record, the end
 * or an eviction arrives after that -EAGAIN. */
int ring_set_wake_fd(struct ring *r, int fd);

/* Next record. Blocks up to timeout_ms (<0 forever, 0 never) using the
 * futex; wakes at most every RING_WAIT_SLICE_MS to let the caller notice a
 * dead peer (returns -EAGAIN then only if timeout expired).
 * The view stays valid until ring_release(); in live mode the producer may
 * overwrite it regardless, so check ring_view_valid() after using it. */
int ring_next(struct ring *r, struct ring_rd *v, int timeout_ms);
/* 0 if the record in v has not been reclaimed (it was intact while it was
 * read), -EOVERFLOW if it may have been overwritten. */
int ring_view_valid(const struct ring *r, const struct ring_rd *v);
/* Release v: the cursor moves past it (release store). Whether the producer
 * waits for space and can now go on is checked once per wake batch of
 * releases (RING_WAKE_BATCH_RECS or 1/RING_WAKE_BATCH_DIV of the ring) and
 * always before ring_next() sleeps or returns -EAGAIN. */
void ring_release(struct ring *r, const struct ring_rd *v);
/* Holds: keep records the consumer has read past from being reclaimed
 * (frames lent out by reference). floor is the position (ring_rd.pos) of
 * the oldest record still held, UINT64_MAX for none. From the first call
 * on, the published cursor is min(read position, floor) and never moves
 * backwards. The reading thread must make the first call (while the view
 * of the record it holds is current); later calls may come from any
 * thread, concurrently with ring_next()/ring_release(), but are
 * serialised by the caller. A waiting lossless producer is woken when the
 * cursor moves. Live mode: the producer ignores cursors, so a floor
 * protects nothing there. */
void ring_set_floor(struct ring *r, uint64_t floor);
/* Overruns this consumer has had (live mode). */
uint64_t ring_overruns(const struct ring *r);
/* This consumer's slot (after ring_attach), -1 before. */
int ring_slot(const struct ring *r);

/* Copy the track table consistently (seqlock retry). dst must have room for
 * ring_tracks_size() bytes. Returns the generation, or -EBADMSG/-EAGAIN. */
int64_t ring_tracks_copy(const struct ring *r, void *dst, size_t dst_size);
size_t ring_tracks_size(const struct ring *r);

/* ---- broker (admin) ---- */

/* A new consumer (pid for diagnostics): a free slot, a fresh cursor page
 * (a new memfd, never reused) with pos at the tail, an ADD on the admin
 * channel, then slot_gen bumped and the page's pos raised to the tail
 * while the producer is not told yet (docs/RING.md, "New consumers").
 * *page_fd is the consumer's fd of the page (read-write; the caller sends
 * it and closes it). Returns the slot index, -EBUSY (no free slot),
 * -EAGAIN (the producer does not take its messages: the channel is full),
 * or another -errno. With the producer gone (the channel's peer closed)
 * nothing is sent and the attach still succeeds: there is nothing left to
 * hold back. */
int ring_slot_alloc(struct ring *r, pid_t pid, int *page_fd);
/* The same for a consumer with a wake pipe: wake_fd is its write end
 * (non-blocking; the caller's, a duplicate is kept and sent with the ADD).
 * The broker pokes it at ring_set_end(); the producer when the consumer
 * sleeps and records come, or when it evicts it. -1: none. */
int ring_slot_alloc_wake(struct ring *r, pid_t pid, int wake_fd,
			 int *page_fd);
/* The consumer in slot left: DEL on the admin channel, slot_gen bumped and
 * every page's futex word bumped and woken, so a producer asleep on it
 * goes and drops it. A DEL the channel cannot take yet is kept (one per
 * slot at most; the slot is not reused before it is sent). Returns the
 * number of DELs still waiting: then call ring_admin_flush() once the
 * channel is writable. */
int ring_slot_free(struct ring *r, unsigned slot);
/* Send the DELs still waiting. Returns how many still wait (0: done). */
int ring_admin_flush(struct ring *r);
/* Final status, written by the broker after the worker has been reaped. Sets
 * state RING_STATE_ENDED and wakes every waiter. */
void ring_set_end(struct ring *r, uint32_t reason, int32_t exit_code,
		  int32_t sig, int32_t averror, const char *msg);
/* Live counters for `ls`: fill in per-mille of data_size between the oldest
 * retained record and head, attached consumers (the broker's count), total
 * overruns (each consumer's word clamped to the records published). */
struct ring_stats {
	uint64_t records, bytes, head, tail;
	uint32_t fill_permille, consumers;
	uint64_t overruns, evictions, producer_waits;
	uint64_t lag_bytes;  /* the slowest reader's unread bytes (admin) */
	uint32_t state, reason;
};
void ring_stats(const struct ring *r, struct ring_stats *st);

#endif
