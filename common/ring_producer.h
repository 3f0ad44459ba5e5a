/*
 * ring_producer.h - the producer's side of the ring (the worker): writing records,
 * the track table, the stream's state and status, and the admin channel's
 * messages about consumers.
 * Errors are ring.h's (negative errno codes).
 */
#ifndef SHMDEMUX_RING_PRODUCER_H
#define SHMDEMUX_RING_PRODUCER_H

#include "ring.h"

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
/* Lossless rings of at least RING_WRAP_EARLY_MIN_RING bytes wrap back to
 * their start from RING_WRAP_EARLY_AT bytes on when every consumer has
 * released it (ring_produce.c, wrap_early; docs/RING.md). */
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
/* The worker's pid, for the header (published by the next state change). */
void ring_set_worker_pid(struct ring *r, int32_t pid);
/* Where the worker's SIGSYS handler stores the number of the call the
 * sandbox refused (hdr.end_syscall): an address, because a signal handler
 * can do no more than one store. NULL unless the producer. */
int32_t *ring_syscall_word(struct ring *r);

/* The worker's counters in the header, for `ls`, the watchdog and the
 * consumers' status (packets, frames and payload bytes are counted by
 * ring_publish()). The producer is their only writer: each is a relaxed
 * load and store, no locked instruction. No-ops unless the producer. */
enum ring_counter {
	RING_CNT_CORRUPT_PACKETS, /* packets demuxed with the CORRUPT flag */
	RING_CNT_DECODE_ERRORS,   /* decoder errors (--decode), not fatal */
	RING_CNT_FRAMES_POOLED,   /* frames published in the frame pool */
	RING_CNT_FRAMES_COPIED,   /* frames copied into the ring */
	RING_CNT_INPUT_BYTES,     /* bytes read from the input */
};
void ring_count(struct ring *r, enum ring_counter c, uint64_t n);
/* The watchdog's progress clock (CLOCK_MONOTONIC ns of the last progress)
 * and the input bytes the worker holds read but not demuxed yet. */
void ring_set_progress(struct ring *r, uint64_t ns);
void ring_set_input_held(struct ring *r, uint64_t bytes);

/* The frame pool, writable (ring_pool() is the read-only view): NULL and
 * 0 unless the producer of a ring that has one. */
void *ring_pool_write(struct ring *r, uint64_t *size);

/* The whole data segment, writable, *len bytes: for the fault injection
 * that plays a compromised worker (broker/worker_hostile.c, test builds)
 * and nothing else; everything else goes through the functions above.
 * NULL unless the producer. */
void *ring_segment(struct ring *r, size_t *len);

#endif
