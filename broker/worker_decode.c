/*
 * worker_decode.c - --decode: packets of the chosen tracks go through
 * libavcodec in the worker, and each decoded frame becomes one
 * RING_REC_FRAME record (media.h: struct sd_frame_meta, its planes, then
 * the planes' bytes). Tracks not decoded still go out as packets.
 *
 * The decoders run inside the sandbox, threads included (sandbox.c allows
 * clone(CLONE_THREAD) and sched_getaffinity, which av_cpu_count() uses).
 * A decoder error is counted in hdr.decode_errors and decoding goes on, as
 * ffmpeg does, unless --decode-strict.
 *
 * Video frames of a lossless stream are decoded straight into the ring's
 * frame pool (worker_pool.c) and published as records that name their
 * slot; a frame that got no slot is copied into its record.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavutil/imgutils.h>
#include <libavutil/pixdesc.h>

#include "worker.h"
#include "worker_pool.h"

_Static_assert(SD_FRAME_MAX_PLANES >= 4, "video planes");

/* Plane offsets in the payload are aligned so a consumer can hand them to
 * SIMD code (and to AVFrame) as they are. */
#define PLANE_ALIGN 64u

struct worker_dec {
	AVCodecContext *ctx[RING_MAX_TRACKS];
	uint8_t failed[RING_MAX_TRACKS];  /* no decoder: stays packets */
	AVFrame *frame;
	struct frame_pool *pool;          /* NULL: every frame is copied */
};

static uint64_t
align_up(uint64_t n)
{
	return (n + PLANE_ALIGN - 1) & ~(uint64_t)(PLANE_ALIGN - 1);
}

static int
wanted(const struct worker *w, enum AVMediaType t)
{
	return (t == AVMEDIA_TYPE_VIDEO && (w->decode & WORKER_DECODE_VIDEO)) ||
	       (t == AVMEDIA_TYPE_AUDIO && (w->decode & WORKER_DECODE_AUDIO));
}

static void
count_error(struct worker *w)
{
	ring_count(w->ring, RING_CNT_DECODE_ERRORS, 1);
}

static int
open_decoder(struct worker *w, unsigned i)
{
	const AVStream *st = w->fmt->streams[i];
	const AVCodec *codec = avcodec_find_decoder(st->codecpar->codec_id);
	AVCodecContext *ctx;
	int ret;

	if (codec == NULL) {
		worker_log(w, "track %u: no decoder for %s; kept as packets", i,
			   avcodec_get_name(st->codecpar->codec_id));
		w->dec->failed[i] = 1;
		return 0;
	}
	if ((ctx = avcodec_alloc_context3(codec)) == NULL)
		return AVERROR(ENOMEM);
	if ((ret = avcodec_parameters_to_context(ctx, st->codecpar)) < 0)
		goto fail;
	ctx->pkt_timebase = st->time_base;
	/* 0 lets libavcodec pick from av_cpu_count(), as ffmpeg does */
	ctx->thread_count = w->decode_threads;
	wpool_use(w->dec->pool, ctx);
	if ((ret = avcodec_open2(ctx, codec, NULL)) < 0)
		goto fail;
	w->dec->ctx[i] = ctx;
	return 0;
fail:
	wpool_forget(w->dec->pool, ctx);
	avcodec_free_context(&ctx);
	worker_log(w, "track %u: cannot open the %s decoder: %s; kept as "
		   "packets", i, codec->name, av_err2str(ret));
	w->dec->failed[i] = 1;
	return ret == AVERROR(ENOMEM) ? ret : 0;
}

/* The decoder for the packet's track, opened on first use (a TS track may
 * appear mid-stream); NULL when the track stays packets. */
static int
decoder_for(struct worker *w, int idx, AVCodecContext **out)
{
	int ret;

	*out = NULL;
	if (w->dec == NULL || idx < 0 || (unsigned)idx >= RING_MAX_TRACKS ||
	    (unsigned)idx >= w->fmt->nb_streams || w->dec->failed[idx] ||
	    !wanted(w, w->fmt->streams[idx]->codecpar->codec_type))
		return 0;
	if (w->dec->ctx[idx] == NULL &&
	    (ret = open_decoder(w, (unsigned)idx)) < 0)
		return ret;
	*out = w->dec->ctx[idx];
	return 0;
}

/* ---- frame -> plane table ---- */

static int
video_planes(const AVFrame *f, struct sd_frame_plane *pl, unsigned *nb)
{
	size_t sizes[4];
	ptrdiff_t ls[4];
	int ret;

	for (int i = 0; i < 4; i++)
		ls[i] = f->linesize[i];
	ret = av_image_fill_plane_sizes(sizes, f->format, f->height, ls);
	if (ret < 0)
		return ret;
	*nb = 0;
	for (int i = 0; i < 4 && sizes[i] > 0; i++) {
		if (f->data[i] == NULL || f->linesize[i] <= 0)
			return AVERROR(EINVAL);
		pl[i].size = sizes[i];
		pl[i].linesize = f->linesize[i];
		(*nb)++;
	}
	return *nb > 0 ? 0 : AVERROR(EINVAL);
}

static int
audio_planes(const AVFrame *f, struct sd_frame_plane *pl, unsigned *nb)
{
	int planar = av_sample_fmt_is_planar(f->format);
	int ch = f->ch_layout.nb_channels;
	int bps = av_get_bytes_per_sample(f->format);
	unsigned n = planar ? (unsigned)ch : 1;
	uint64_t size;

	if (ch <= 0 || bps <= 0 || f->nb_samples < 0 || n > SD_FRAME_MAX_PLANES)
		return AVERROR(EINVAL);
	size = (uint64_t)f->nb_samples * (uint64_t)bps * (planar ? 1u : (unsigned)ch);
	if (size > INT32_MAX)
		return AVERROR(EINVAL);
	for (unsigned i = 0; i < n; i++) {
		if (f->extended_data[i] == NULL)
			return AVERROR(EINVAL);
		pl[i].size = size;
		pl[i].linesize = (int32_t)size;
	}
	*nb = n;
	return 0;
}

static void
fill_meta(const struct worker *w, int track, const AVFrame *f,
	  enum AVMediaType type, unsigned nb, struct sd_frame_meta *m)
{
	memset(m, 0, sizeof(*m));
	m->track = track;
	m->media_type = type;
	m->pts = f->pts;
	m->best_effort_timestamp = f->best_effort_timestamp;
	m->pkt_dts = f->pkt_dts;
	m->duration = f->pkt_duration;
	m->flags = (f->key_frame ? SD_FRAME_KEY : 0) |
		   (f->interlaced_frame ? SD_FRAME_INTERLACED : 0) |
		   (f->top_field_first ? SD_FRAME_TFF : 0) |
		   ((f->flags & AV_FRAME_FLAG_CORRUPT) ? SD_FRAME_CORRUPT : 0);
	m->pict_type = f->pict_type;
	m->format = f->format;
	m->track_gen = w->track_gen;
	m->width = f->width;
	m->height = f->height;
	m->sar_num = f->sample_aspect_ratio.num;
	m->sar_den = f->sample_aspect_ratio.den;
	m->color_range = f->color_range;
	m->color_primaries = f->color_primaries;
	m->color_trc = f->color_trc;
	m->color_space = f->colorspace;
	m->chroma_location = f->chroma_location;
	m->sample_rate = f->sample_rate;
	m->ch_order = f->ch_layout.order;
	m->channels = f->ch_layout.nb_channels;
	if (f->ch_layout.order == AV_CHANNEL_ORDER_NATIVE)
		m->ch_mask = f->ch_layout.u.mask;
	m->nb_samples = f->nb_samples;
	m->nb_planes = nb;
}

static uint16_t
rec_flags(const struct worker *w, int track, const AVFrame *f)
{
	return f->key_frame && (w->sync_track < 0 || w->sync_track == track) ?
	       RING_RF_SYNC : 0;
}

/* A frame whose pictures are in pool slot `slot` (pl[].offset into the
 * pool): a record of meta only. It still reserves the room its copy would
 * take (`copy` bytes, never written, so never faulted in): the ring then
 * bounds how far the producer runs ahead of a reader exactly as without a
 * pool. Otherwise a reader lending a pooled frame and waiting for the next
 * one could wait forever: freeing a small record makes no room for the
 * copied frame the producer is blocked on once the pool ran dry.
 * The slot's bytes were written by the decoder before it output the frame;
 * the release store of head in ring_publish orders them before the record
 * for every consumer. */
static int
publish_pooled(struct worker *w, int track, const AVFrame *f,
	       const struct sd_frame_plane *pl, unsigned nb, uint32_t slot,
	       uint64_t copy)
{
	struct sd_frame_meta m;
	struct ring_wr wr;
	uint32_t meta_len = (uint32_t)(sizeof(m) + nb * sizeof(pl[0]));
	int ret;

	if ((ret = worker_reserve(w, meta_len, copy, &wr)) < 0)
		return ret;
	wr.payload_len = 0; /* the room stays reserved (ring.h) */
	fill_meta(w, track, f, AVMEDIA_TYPE_VIDEO, nb, &m);
	m.flags |= SD_FRAME_POOLED;
	m.pool_slot = slot;
	memcpy(wr.meta, &m, sizeof(m));
	memcpy((uint8_t *)wr.meta + sizeof(m), pl, nb * sizeof(pl[0]));
	if ((ret = ring_publish(w->ring, &wr, RING_REC_FRAME,
				rec_flags(w, track, f))) < 0)
		return ret;
	wpool_published(w->dec->pool, slot, wr.pos + wr.len);
	ring_count(w->ring, RING_CNT_FRAMES_POOLED, 1);
	return 0;
}

static int
publish_frame(struct worker *w, int track, const AVFrame *f,
	      enum AVMediaType type)
{
	struct sd_frame_plane pl[SD_FRAME_MAX_PLANES];
	struct sd_frame_meta m;
	struct ring_wr wr;
	uint64_t total = 0;
	unsigned nb = 0;
	uint32_t meta_len, slot;
	uint8_t *dst;
	int ret;

	memset(pl, 0, sizeof(pl));
	ret = type == AVMEDIA_TYPE_VIDEO ? video_planes(f, pl, &nb) :
					   audio_planes(f, pl, &nb);
	if (ret < 0)
		return ret;
	for (unsigned i = 0; i < nb; i++) {
		pl[i].offset = total;
		total = align_up(total + pl[i].size);
	}
	if (type == AVMEDIA_TYPE_VIDEO) {
		wpool_collect(w->dec->pool, w->ring);
		if (wpool_frame_slot(w->dec->pool, f, pl, nb, &slot) &&
		    wpool_prepare(w->dec->pool) == 0)
			return publish_pooled(w, track, f, pl, nb, slot, total);
		ring_count(w->ring, RING_CNT_FRAMES_COPIED, 1);
	}
	meta_len = (uint32_t)(sizeof(m) + nb * sizeof(pl[0]));
	if ((ret = worker_reserve(w, meta_len, total, &wr)) < 0)
		return ret;
	fill_meta(w, track, f, type, nb, &m);
	memcpy(wr.meta, &m, sizeof(m));
	memcpy((uint8_t *)wr.meta + sizeof(m), pl, nb * sizeof(pl[0]));
	dst = wr.payload;
	for (unsigned i = 0; i < nb; i++) {
		uint64_t end = i + 1 < nb ? pl[i + 1].offset : total;

		memcpy(dst + pl[i].offset, f->extended_data[i], pl[i].size);
		/* consumers must never see stale bytes in the gaps */
		memset(dst + pl[i].offset + pl[i].size, 0,
		       end - pl[i].offset - pl[i].size);
	}
	return ring_publish(w->ring, &wr, RING_REC_FRAME,
			    rec_flags(w, track, f));
}

/* A decoder error: counted, fatal only with --decode-strict. */
static int
decode_error(struct worker *w, int track, int err)
{
	count_error(w);
	if (w->decode_strict) {
		snprintf(w->decode_msg, sizeof(w->decode_msg),
			 "decoding track %d: %s", track, av_err2str(err));
		return -EPROTO;
	}
	return 0;
}

/* Publish every frame the decoder has ready. */
static int
drain(struct worker *w, int track, AVCodecContext *ctx)
{
	AVFrame *f = w->dec->frame;
	int ret;

	for (;;) {
		ret = avcodec_receive_frame(ctx, f);
		if (ret == AVERROR(EAGAIN) || ret == AVERROR_EOF)
			return 0;
		if (ret < 0) {
			if ((ret = decode_error(w, track, ret)) < 0)
				return ret;
			continue;
		}
		ret = publish_frame(w, track, f, ctx->codec_type);
		av_frame_unref(f);
		if (ret == AVERROR(EINVAL) || ret == AVERROR(ENOSYS)) {
			/* a layout we cannot describe: counted, skipped */
			if ((ret = decode_error(w, track, ret)) < 0)
				return ret;
			continue;
		}
		if (ret < 0)
			return ret;
	}
}

int
worker_decode_packet(struct worker *w, const AVPacket *pkt)
{
	AVCodecContext *ctx;
	int ret;

	if ((ret = decoder_for(w, pkt->stream_index, &ctx)) < 0)
		return ret;
	if (ctx == NULL)
		return 0;
	for (;;) {
		ret = avcodec_send_packet(ctx, pkt);
		if (ret == AVERROR(EAGAIN)) {
			/* output first, then the same packet again */
			if ((ret = drain(w, pkt->stream_index, ctx)) < 0)
				return ret;
			continue;
		}
		if (ret < 0 && (ret = decode_error(w, pkt->stream_index,
						   ret)) < 0)
			return ret;
		break;
	}
	if ((ret = drain(w, pkt->stream_index, ctx)) < 0)
		return ret;
	ring_set_progress(w->ring, now_ns());
	return 1;
}

int
worker_decode_flush(struct worker *w)
{
	int ret;

	if (w->dec == NULL)
		return 0;
	for (unsigned i = 0; i < RING_MAX_TRACKS; i++) {
		AVCodecContext *ctx = w->dec->ctx[i];

		if (ctx == NULL)
			continue;
		ret = avcodec_send_packet(ctx, NULL);
		if (ret < 0 && ret != AVERROR_EOF &&
		    (ret = decode_error(w, (int)i, ret)) < 0)
			return ret;
		if ((ret = drain(w, (int)i, ctx)) < 0)
			return ret;
	}
	return 0;
}

/* Bytes of the largest frame track i can produce (decoder line padding
 * included), 0 when unknown before decoding. */
static uint64_t
frame_estimate(const AVCodecContext *ctx)
{
	if (ctx->codec_type == AVMEDIA_TYPE_VIDEO) {
		int n = av_image_get_buffer_size(ctx->pix_fmt, ctx->width,
						 ctx->height, (int)PLANE_ALIGN);

		return n > 0 ? (uint64_t)n + 4 * PLANE_ALIGN : 0;
	}
	if (ctx->frame_size > 0) {
		int bps = av_get_bytes_per_sample(ctx->sample_fmt);

		return (uint64_t)ctx->frame_size * (uint64_t)(bps > 0 ? bps : 0) *
		       (uint64_t)ctx->ch_layout.nb_channels +
		       (uint64_t)ctx->ch_layout.nb_channels * PLANE_ALIGN;
	}
	return 0;
}

/* The ring must hold at least two of the largest frames, or a lossless
 * producer could never get ahead of its readers. */
static int
check_ring(struct worker *w)
{
	uint64_t ds = ring_data_size(w->ring);

	for (unsigned i = 0; i < RING_MAX_TRACKS; i++) {
		const AVCodecContext *ctx = w->dec->ctx[i];
		uint64_t need;

		if (ctx == NULL || (need = frame_estimate(ctx)) == 0)
			continue;
		need = 2 * (need + sizeof(struct sd_frame_meta) +
			    SD_FRAME_MAX_PLANES * sizeof(struct sd_frame_plane) +
			    2 * sizeof(struct ring_rec));
		if (ds >= need)
			continue;
		if (ctx->codec_type == AVMEDIA_TYPE_VIDEO)
			snprintf(w->decode_msg, sizeof(w->decode_msg),
				 "ring size %" PRIu64 " too small for %dx%d "
				 "%s frames; need at least %" PRIu64, ds,
				 ctx->width, ctx->height,
				 av_get_pix_fmt_name(ctx->pix_fmt), need);
		else
			snprintf(w->decode_msg, sizeof(w->decode_msg),
				 "ring size %" PRIu64 " too small for %d-sample "
				 "audio frames; need at least %" PRIu64, ds,
				 ctx->frame_size, need);
		return -ENOSPC;
	}
	return 0;
}

int
worker_decode_open(struct worker *w)
{
	int ret;

	if (w->decode == 0)
		return 0;
	if ((w->dec = av_mallocz(sizeof(*w->dec))) == NULL ||
	    (w->dec->frame = av_frame_alloc()) == NULL ||
	    wpool_create(w->ring, &w->dec->pool) < 0)
		return AVERROR(ENOMEM);
	for (unsigned i = 0; i < w->fmt->nb_streams && i < RING_MAX_TRACKS;
	     i++) {
		if (!wanted(w, w->fmt->streams[i]->codecpar->codec_type))
			continue;
		if ((ret = open_decoder(w, i)) < 0)
			return ret;
	}
	return check_ring(w);
}

void
worker_decode_close(struct worker *w)
{
	if (w->dec == NULL)
		return;
	for (unsigned i = 0; i < RING_MAX_TRACKS; i++)
		avcodec_free_context(&w->dec->ctx[i]);
	av_frame_free(&w->dec->frame);
	/* last: the decoders' pictures are gone */
	wpool_free(&w->dec->pool);
	av_freep(&w->dec);
}
