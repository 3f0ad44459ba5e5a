/*
 * worker_pool.c - pool slots as decoder picture buffers (worker_pool.h).
 *
 * The slot size is fixed by the first picture the decoder asks for: the
 * layout avcodec_default_get_buffer2() would use (dimensions aligned with
 * avcodec_align_dimensions2(), linesizes widened until every one is a
 * multiple of the stride alignment), each plane 64-byte aligned and
 * followed by the over-read padding libavcodec's own buffers have. A later
 * picture that does not fit (a resolution change) and any request while no
 * slot is free get libavcodec's default buffer, and the frame is copied
 * into the ring as without a pool: the decoder never waits for consumers.
 *
 * Threads: get_buffer2 runs on the decoder's frame threads and a buffer's
 * last unref may happen on any of them, so the slot states are under a
 * mutex. The FIFO of published records is the main thread's alone.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <libavutil/imgutils.h>
#include <libavutil/pixdesc.h>

#include "worker_pool.h"

#define PLANE_ALIGN 64u
/* After each plane: libavcodec pads its picture buffers by 16 bytes plus
 * the stride alignment for SIMD over-reads. */
#define PLANE_PAD (16u + 64u)
#define SLOT_ALIGN 4096u
#define MAX_SLOTS 65536u

struct pending {
	uint64_t end;  /* the record's end position in the ring */
	uint32_t slot;
};

struct layout {
	int linesize[4];
	uint64_t off[4];
	uint64_t size;
};

struct frame_pool {
	uint8_t *base;
	uint64_t area;          /* bytes of the pool area */
	AVCodecContext *owner;  /* the decoder served */

	pthread_mutex_t lock;   /* everything below, up to the FIFO */
	uint64_t slot_size;     /* 0 until the first picture */
	uint32_t nslots;
	uint32_t nfree;
	uint32_t *free;         /* LIFO: the hottest slot is reused first */
	uint8_t *dec_ref;       /* the decoder's AVBuffer is alive */
	uint32_t *ring_refs;    /* published records not yet reclaimed */

	/* main thread only: published records, oldest first */
	struct pending *fifo;
	size_t fifo_cap, fifo_first, fifo_n;
};

static uint64_t
align_to(uint64_t n, uint64_t a)
{
	return (n + a - 1) & ~(a - 1);
}

int
wpool_create(struct ring *r, struct frame_pool **out)
{
	struct frame_pool *p;
	uint64_t size;
	uint8_t *base = ring_pool_write(r, &size);

	*out = NULL;
	if (base == NULL || size == 0 || ring_mode(r) != RING_MODE_LOSSLESS)
		return 0;
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return -ENOMEM;
	p->base = base;
	p->area = size;
	pthread_mutex_init(&p->lock, NULL);
	*out = p;
	return 0;
}

void
wpool_free(struct frame_pool **pp)
{
	struct frame_pool *p = *pp;

	if (p == NULL)
		return;
	pthread_mutex_destroy(&p->lock);
	free(p->free);
	free(p->dec_ref);
	free(p->ring_refs);
	free(p->fifo);
	free(p);
	*pp = NULL;
}

/* The layout avcodec_default_get_buffer2() would give f, in one block. */
static int
picture_layout(AVCodecContext *ctx, const AVFrame *f, struct layout *l)
{
	const AVPixFmtDescriptor *d = av_pix_fmt_desc_get(f->format);
	int w = f->width, h = f->height, align[AV_NUM_DATA_POINTERS];
	ptrdiff_t ls[4];
	size_t sizes[4];
	uint64_t pos = 0;
	int tries, bad = 1;

	if (d == NULL || w <= 0 || h <= 0 ||
	    (d->flags & (AV_PIX_FMT_FLAG_PAL | AV_PIX_FMT_FLAG_HWACCEL |
			 AV_PIX_FMT_FLAG_BITSTREAM)))
		return -1;
	memset(align, 0, sizeof(align));
	avcodec_align_dimensions2(ctx, &w, &h, align);
	for (tries = 0; tries < 16 && bad; tries++) {
		if (av_image_fill_linesizes(l->linesize, f->format, w) < 0)
			return -1;
		bad = 0;
		for (int i = 0; i < 4; i++)
			if (align[i] > 0 && l->linesize[i] % align[i])
				bad = 1;
		w += w & ~(w - 1); /* next try: the lowest set bit doubled */
	}
	if (bad)
		return -1;
	for (int i = 0; i < 4; i++)
		ls[i] = l->linesize[i];
	if (av_image_fill_plane_sizes(sizes, f->format, h, ls) < 0)
		return -1;
	for (int i = 0; i < 4; i++) {
		l->off[i] = pos;
		if (sizes[i] > 0)
			pos = align_to(pos + sizes[i] + PLANE_PAD, PLANE_ALIGN);
	}
	l->size = pos;
	return pos > 0 ? 0 : -1;
}

/* First picture: fix the slot size and make every slot free. Under lock. */
static int
setup_slots(struct frame_pool *p, uint64_t need)
{
	uint64_t ss = align_to(need, SLOT_ALIGN), n = p->area / ss;

	if (n > MAX_SLOTS)
		n = MAX_SLOTS;
	if (n == 0)
		return -1;
	p->free = calloc(n, sizeof(*p->free));
	p->dec_ref = calloc(n, sizeof(*p->dec_ref));
	p->ring_refs = calloc(n, sizeof(*p->ring_refs));
	if (p->free == NULL || p->dec_ref == NULL || p->ring_refs == NULL) {
		free(p->free);
		free(p->dec_ref);
		free(p->ring_refs);
		p->free = NULL;
		p->dec_ref = NULL;
		p->ring_refs = NULL;
		return -1;
	}
	/* slot 0 on top of the stack */
	for (uint32_t i = 0; i < n; i++)
		p->free[i] = (uint32_t)(n - 1 - i);
	p->nfree = (uint32_t)n;
	p->nslots = (uint32_t)n;
	p->slot_size = ss;
	return 0;
}

/* Under lock: the slot becomes free when nobody refers to it. */
static void
maybe_free(struct frame_pool *p, uint32_t slot)
{
	if (!p->dec_ref[slot] && p->ring_refs[slot] == 0)
		p->free[p->nfree++] = slot;
}

/* The decoder's last reference to a slot's picture is gone (any thread). */
static void
slot_buf_free(void *opaque, uint8_t *data)
{
	struct frame_pool *p = opaque;
	uint32_t slot = (uint32_t)((uint64_t)(data - p->base) / p->slot_size);

	pthread_mutex_lock(&p->lock);
	p->dec_ref[slot] = 0;
	maybe_free(p, slot);
	pthread_mutex_unlock(&p->lock);
}

/* A free slot that fits l, taken for the decoder; -1 if none. */
static int64_t
take_slot(struct frame_pool *p, const struct layout *l)
{
	int64_t slot = -1;

	pthread_mutex_lock(&p->lock);
	if (p->slot_size == 0 && setup_slots(p, l->size) < 0)
		p->slot_size = UINT64_MAX; /* too small a pool: never again */
	if (l->size <= p->slot_size && p->nfree > 0) {
		slot = p->free[--p->nfree];
		p->dec_ref[slot] = 1;
	}
	pthread_mutex_unlock(&p->lock);
	return slot;
}

static void
untake_slot(struct frame_pool *p, uint32_t slot)
{
	pthread_mutex_lock(&p->lock);
	p->dec_ref[slot] = 0;
	maybe_free(p, slot);
	pthread_mutex_unlock(&p->lock);
}

/* AVCodecContext.get_buffer2 (frame threads call it concurrently). */
static int
pool_get_buffer(AVCodecContext *ctx, AVFrame *f, int flags)
{
	struct frame_pool *p = ctx->opaque;
	struct layout l;
	int64_t slot;
	uint8_t *sb;

	if (ctx->codec_type != AVMEDIA_TYPE_VIDEO ||
	    picture_layout(ctx, f, &l) < 0 || (slot = take_slot(p, &l)) < 0)
		return avcodec_default_get_buffer2(ctx, f, flags);
	sb = p->base + (uint64_t)slot * p->slot_size;
	f->buf[0] = av_buffer_create(sb, (size_t)p->slot_size, slot_buf_free,
				     p, 0);
	if (f->buf[0] == NULL) {
		untake_slot(p, (uint32_t)slot);
		return avcodec_default_get_buffer2(ctx, f, flags);
	}
	for (int i = 0; i < 4; i++) {
		if (l.linesize[i] == 0)
			break;
		f->data[i] = sb + l.off[i];
		f->linesize[i] = l.linesize[i];
	}
	f->extended_data = f->data;
	return 0;
}

void
wpool_use(struct frame_pool *p, AVCodecContext *ctx)
{
	if (p == NULL || p->owner != NULL ||
	    ctx->codec_type != AVMEDIA_TYPE_VIDEO ||
	    !(ctx->codec->capabilities & AV_CODEC_CAP_DR1))
		return;
	p->owner = ctx;
	ctx->opaque = p;
	ctx->get_buffer2 = pool_get_buffer;
}

void
wpool_forget(struct frame_pool *p, const AVCodecContext *ctx)
{
	if (p != NULL && p->owner == ctx)
		p->owner = NULL;
}

int
wpool_frame_slot(struct frame_pool *p, const AVFrame *f,
		 struct sd_frame_plane *pl, unsigned nb, uint32_t *slot)
{
	uint64_t sb, ss;

	if (p == NULL || f->buf[0] == NULL ||
	    av_buffer_get_opaque(f->buf[0]) != p)
		return 0;
	/* Set before the first slot was handed out, fixed since. */
	ss = p->slot_size;
	sb = (uint64_t)(f->buf[0]->data - p->base);
	if (ss == 0 || ss == UINT64_MAX || sb % ss || sb / ss >= p->nslots)
		return 0;
	for (unsigned i = 0; i < nb; i++) {
		uint64_t off;

		if (f->data[i] < p->base + sb)
			return 0;
		off = (uint64_t)(f->data[i] - p->base);
		if (off - sb > ss || pl[i].size > ss - (off - sb))
			return 0;
		pl[i].offset = off;
	}
	*slot = (uint32_t)(sb / ss);
	return 1;
}

int
wpool_prepare(struct frame_pool *p)
{
	size_t cap;
	struct pending *nf;

	if (p->fifo_n < p->fifo_cap)
		return 0;
	cap = p->fifo_cap ? p->fifo_cap * 2 : 64;
	if ((nf = malloc(cap * sizeof(*nf))) == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < p->fifo_n; i++)
		nf[i] = p->fifo[(p->fifo_first + i) % p->fifo_cap];
	free(p->fifo);
	p->fifo = nf;
	p->fifo_cap = cap;
	p->fifo_first = 0;
	return 0;
}

void
wpool_published(struct frame_pool *p, uint32_t slot, uint64_t end)
{
	pthread_mutex_lock(&p->lock);
	p->ring_refs[slot]++;
	pthread_mutex_unlock(&p->lock);
	p->fifo[(p->fifo_first + p->fifo_n++) % p->fifo_cap] =
		(struct pending){ .end = end, .slot = slot };
}

void
wpool_collect(struct frame_pool *p, struct ring *r)
{
	uint64_t tail = ring_prod_tail(r);
	uint32_t nfree;

	if (p == NULL || p->fifo_n == 0)
		return;
	pthread_mutex_lock(&p->lock);
	nfree = p->nfree;
	pthread_mutex_unlock(&p->lock);
	/* Lossless reclaims only when it needs room, and records naming
	 * slots are small: move the tail by hand once slots run low, as far
	 * as every consumer (and a wait_consumers hold) allows. */
	if (nfree <= p->nslots / 4)
		ring_reclaim(r, &tail);
	pthread_mutex_lock(&p->lock);
	while (p->fifo_n > 0 && p->fifo[p->fifo_first].end <= tail) {
		uint32_t slot = p->fifo[p->fifo_first].slot;

		p->fifo_first = (p->fifo_first + 1) % p->fifo_cap;
		p->fifo_n--;
		p->ring_refs[slot]--;
		maybe_free(p, slot);
	}
	pthread_mutex_unlock(&p->lock);
}
