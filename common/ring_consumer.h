/*
 * ring_consumer.h - a consumer's side of the ring (the client library): attaching
 * to its cursor page, reading and releasing records, holds, waiting, and
 * the track table.
 * Errors are ring.h's (negative errno codes).
 */
#ifndef SHMDEMUX_RING_CONSUMER_H
#define SHMDEMUX_RING_CONSUMER_H

#include "ring.h"

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
/* The table's generation now (acquire; odd while the producer rewrites
 * it): when it equals what ring_tracks_copy() returned, the copy is
 * current. One load, for every record that names a generation. */
uint32_t ring_tracks_gen(const struct ring *r);

/* Wait for the state (ring_state()) to reach at least min: returns at once
 * when it has, else sleeps on the consumers' futex word at most timeout_ms
 * (>= 0) and returns the state then, reached or not. A reader that has not
 * attached (or waits before reading) does not announce that it sleeps, so
 * no wake is guaranteed: callers wait in slices and decide on the state
 * returned. */
uint32_t ring_wait_state(const struct ring *r, uint32_t min, int timeout_ms);

#endif
