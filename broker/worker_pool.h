/*
 * worker_pool.h - the frame pool allocator of a decoding worker
 * (worker_pool.c; docs/RING.md, "Frame pool").
 *
 * The video decoder gets its pictures from pool slots (get_buffer2), so a
 * decoded frame is published as a record that only points at its slot. A
 * slot is reused once neither the decoder (its AVBuffer was freed) nor the
 * ring (every record naming it was reclaimed) refers to it. Nothing the
 * consumers write is read here: the ring's tail is the producer's own.
 */
#ifndef SHMDEMUX_WORKER_POOL_H
#define SHMDEMUX_WORKER_POOL_H

#include <stdint.h>

#include <libavcodec/avcodec.h>

#include "media.h"
#include "ring_producer.h"

struct frame_pool;

/* A pool over the ring's pool area, or NULL (*out) when the ring has none
 * or is in live mode. Returns 0 or -ENOMEM. */
int wpool_create(struct ring *r, struct frame_pool **out);
/* Free the pool; every decoder using it must be freed first. */
void wpool_free(struct frame_pool **p);
/* Let ctx (before avcodec_open2) take its pictures from the pool: only a
 * video decoder with AV_CODEC_CAP_DR1, and only the first one. */
void wpool_use(struct frame_pool *p, AVCodecContext *ctx);
/* ctx failed to open and is freed: the next video decoder may have it. */
void wpool_forget(struct frame_pool *p, const AVCodecContext *ctx);
/* If f's pictures are in a pool slot, fill pl[i].offset (pool offsets; the
 * sizes are already set) and *slot, and return 1; else 0. Then, before
 * reserving the record, wpool_prepare() (0 or -ENOMEM: copy instead). */
int wpool_frame_slot(struct frame_pool *p, const AVFrame *f,
		     struct sd_frame_plane *pl, unsigned nb, uint32_t *slot);
int wpool_prepare(struct frame_pool *p);
/* A record naming slot was published and ends at end: the ring holds the
 * slot until its tail passes end. */
void wpool_published(struct frame_pool *p, uint32_t slot, uint64_t end);
/* Release the slots of reclaimed records; when few slots are free, reclaim
 * what every consumer has passed first (ring_reclaim). */
void wpool_collect(struct frame_pool *p, struct ring *r);

#endif
