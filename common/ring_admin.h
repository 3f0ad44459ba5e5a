/*
 * ring_admin.h - the broker's side of the ring: creating the data segment,
 * consumer slots and their cursor pages, the final status, counters for
 * `ls`.
 * Errors are ring.h's (negative errno codes).
 */
#ifndef SHMDEMUX_RING_ADMIN_H
#define SHMDEMUX_RING_ADMIN_H

#include "ring.h"

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
/* Replace the worker's word in hdr.end_syscall (its SIGSYS handler's) with
 * the broker's checked value, before ring_set_end() publishes it. */
void ring_set_end_syscall(struct ring *r, int32_t nr);
/* Live counters for `ls`: fill in per-mille of data_size between the oldest
 * retained record and head, attached consumers (the broker's count), total
 * overruns (each consumer's word clamped to the records published). */
struct ring_stats {
	uint64_t records, bytes, head, tail;
	uint32_t fill_permille, consumers;
	uint64_t overruns, evictions, producer_waits;
	uint64_t lag_bytes;  /* the slowest reader's unread bytes */
	uint32_t state, reason;
};
void ring_stats(const struct ring *r, struct ring_stats *st);

#endif
