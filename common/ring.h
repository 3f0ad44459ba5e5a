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
 * The API is split by side: this header is what every side shares
 * (mapping, validation, the header's fields); the worker includes
 * ring_producer.h, the client library ring_consumer.h, the broker
 * ring_admin.h. The code follows the same split (ring_internal.h lists
 * the files).
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

/* Where a consumer starts reading (ring_attach; the broker checks an
 * attach request's value). */
enum ring_start {
	RING_START_OLDEST = 0, /* oldest record still retained */
	RING_START_SYNC = 1,   /* newest sync (key) record, else oldest */
	RING_START_LIVE = 2,   /* the next record published */
};

/* Wake batches (ring_producer.h, ring_publish; ring_consumer.h,
 * ring_release): every RING_WAKE_BATCH_RECS records or 1/
 * RING_WAKE_BATCH_DIV of the ring. */
#define RING_WAKE_BATCH_RECS 1024u
#define RING_WAKE_BATCH_DIV  32u

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

/* The header, for reading fields the functions below do not cover (the
 * broker's watchdog and `ls`, tests). For a consumer it is read-only,
 * untrusted memory: copy a field once, then check it. */
const struct ring_hdr *ring_hdr(const struct ring *r);
/* The frame pool area (docs/RING.md) and its size in *size; NULL and 0 when
 * the ring has none. Read-only, and untrusted for a consumer (the producer
 * writes it through ring_pool_write()). */
const void *ring_pool(const struct ring *r, uint64_t *size);

/* The geometry ring_map() validated, as it copied it then (never re-read
 * from the header, which the producer can rewrite): bytes of record area,
 * and RING_MODE_LOSSLESS or RING_MODE_LIVE. */
uint64_t ring_data_size(const struct ring *r);
uint32_t ring_mode(const struct ring *r);

/* The stream's state (hdr.state, RING_STATE_*), acquire: what was written
 * before it was stored (the track table, the end fields) is visible. As
 * written: a consumer must not trust it to be a known state. */
uint32_t ring_state(const struct ring *r);

/* A snapshot of the header's status and counters, each field copied once:
 * state as ring_state(); worker_pid and the counters as they are (relaxed:
 * for display, not a consistent cut); the end fields only when state is
 * RING_STATE_ENDED (final then), else end_exit_code and end_syscall -1 and
 * the rest 0. Untrusted on the consumer side like everything the worker can
 * write: end_msg is NUL-terminated within its field, nothing more. */
struct ring_status {
	uint32_t state;
	uint32_t end_reason;
	int32_t end_exit_code, end_signal, end_averror, end_syscall;
	int32_t worker_pid;
	uint64_t packets, frames, payload_bytes;
	uint64_t decode_errors, frames_pooled, frames_copied;
	char end_msg[RING_MSG_LEN];
};
void ring_status(const struct ring *r, struct ring_status *st);

#endif
