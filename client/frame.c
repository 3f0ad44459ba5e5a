/*
 * frame.c - decoded frames (RING_REC_FRAME): validating a record into a
 * struct shmdemux_frame view, and lending it (held in the ring) or copying
 * it as an AVFrame.
 *
 * The record comes from the worker, which parses hostile input: every plane
 * is checked against the payload and against what the pixel or sample
 * format implies before a pointer is handed out.
 */
#include <errno.h>
#include <string.h>

#include <libavutil/frame.h>
#include <libavutil/imgutils.h>
#include <libavutil/pixdesc.h>
#include <libavutil/samplefmt.h>

#include "internal.h"

_Static_assert(SHMDEMUX_FRAME_MAX_PLANES == SD_FRAME_MAX_PLANES, "planes");
_Static_assert((int)SHMDEMUX_FRAME_KEY == (int)SD_FRAME_KEY &&
	       (int)SHMDEMUX_FRAME_INTERLACED == (int)SD_FRAME_INTERLACED &&
	       (int)SHMDEMUX_FRAME_TOP_FIELD_FIRST == (int)SD_FRAME_TFF &&
	       (int)SHMDEMUX_FRAME_CORRUPT == (int)SD_FRAME_CORRUPT,
	       "frame flags");

/* Far beyond any real picture; keeps size arithmetic in range. */
#define MAX_DIM 32768

static int
check_video(const struct shmdemux_frame *f)
{
	const AVPixFmtDescriptor *d = av_pix_fmt_desc_get(f->format);
	ptrdiff_t ls[4] = { 0 };
	size_t sizes[4];
	int n = 0;

	if (d == NULL || (d->flags & (AV_PIX_FMT_FLAG_HWACCEL |
				      AV_PIX_FMT_FLAG_BITSTREAM)) ||
	    f->width <= 0 || f->height <= 0 || f->width > MAX_DIM ||
	    f->height > MAX_DIM || f->nb_planes > 4 ||
	    !valid_image_size(f->width, f->height))
		return SHMDEMUX_ECORRUPT;
	/* every plane the format has (a palette is one more), no fewer:
	 * sizes computed from the linesizes given would not notice a
	 * missing one, and a consumer would follow its NULL pointer */
	n = av_pix_fmt_count_planes(f->format) +
	    ((d->flags & AV_PIX_FMT_FLAG_PAL) ? 1 : 0);
	if (n <= 0 || n != f->nb_planes)
		return SHMDEMUX_ECORRUPT;
	for (int i = 0; i < n; i++)
		ls[i] = f->linesize[i];
	if (av_image_fill_plane_sizes(sizes, f->format, f->height, ls) < 0)
		return SHMDEMUX_ECORRUPT;
	for (int i = 0; i < n; i++) {
		int row = av_image_get_linesize(f->format, f->width, i);

		/* the palette plane of PAL8 has no row width */
		if ((row > 0 && f->linesize[i] < row) || sizes[i] == 0 ||
		    sizes[i] != f->plane_size[i])
			return SHMDEMUX_ECORRUPT;
	}
	return 0;
}

static int
check_audio(const struct shmdemux_frame *f)
{
	int bps = av_get_bytes_per_sample(f->format);
	int planar = av_sample_fmt_is_planar(f->format);
	uint64_t size;

	if (bps <= 0 || !valid_frame_audio_limits(f) ||
	    f->nb_planes != (planar ? f->channels : 1))
		return SHMDEMUX_ECORRUPT;
	size = (uint64_t)f->nb_samples * (uint64_t)bps *
	       (uint64_t)(planar ? 1 : f->channels);
	/* the whole frame's bytes fit an int, as AVFrame users count them */
	if (size * (uint64_t)f->nb_planes > INT32_MAX)
		return SHMDEMUX_ECORRUPT;
	for (int i = 0; i < f->nb_planes; i++)
		if (f->plane_size[i] != size ||
		    (uint64_t)f->linesize[i] != size)
			return SHMDEMUX_ECORRUPT;
	return 0;
}

static void
copy_meta(const struct sd_frame_meta *m, struct shmdemux_frame *f)
{
	f->track = m->track;
	f->media_type = m->media_type;
	f->pts = m->pts;
	f->best_effort_timestamp = m->best_effort_timestamp;
	f->pkt_dts = m->pkt_dts;
	f->duration = m->duration;
	f->flags = m->flags & (SD_FRAME_KEY | SD_FRAME_INTERLACED |
			       SD_FRAME_TFF | SD_FRAME_CORRUPT);
	f->pict_type = m->pict_type;
	f->format = m->format;
	f->track_gen = m->track_gen;
	f->width = m->width;
	f->height = m->height;
	f->sar_num = m->sar_num;
	f->sar_den = m->sar_den;
	f->color_range = m->color_range;
	f->color_primaries = m->color_primaries;
	f->color_trc = m->color_trc;
	f->color_space = m->color_space;
	f->chroma_location = m->chroma_location;
	f->sample_rate = m->sample_rate;
	f->ch_order = m->ch_order;
	f->channels = m->channels;
	f->ch_mask = m->ch_mask;
	f->nb_samples = m->nb_samples;
	f->nb_planes = (int)m->nb_planes;
}

int
frame_parse(const struct ring_rd *v, const uint8_t *pool, uint64_t pool_size,
	    struct shmdemux_frame *f)
{
	struct sd_frame_meta m;
	const uint8_t *base = v->payload;
	uint64_t limit = v->payload_len;
	int ret;

	if (v->meta == NULL || v->meta_len < sizeof(m))
		return SHMDEMUX_ECORRUPT;
	memcpy(&m, v->meta, sizeof(m));
	if (m.nb_planes == 0 || m.nb_planes > SD_FRAME_MAX_PLANES ||
	    v->meta_len != sizeof(m) + m.nb_planes *
			   sizeof(struct sd_frame_plane))
		return SHMDEMUX_ECORRUPT;
	/* Pooled: the planes are in the pool area, which only a lossless
	 * stream may use (the caller passes no pool otherwise). */
	if (m.flags & SD_FRAME_POOLED) {
		if (pool == NULL || m.media_type != SHMDEMUX_MEDIA_VIDEO ||
		    v->payload_len != 0)
			return SHMDEMUX_ECORRUPT;
		base = pool;
		limit = pool_size;
	}
	memset(f, 0, sizeof(*f));
	copy_meta(&m, f);
	f->seq = v->seq;
	for (uint32_t i = 0; i < m.nb_planes; i++) {
		struct sd_frame_plane p;

		memcpy(&p, (const uint8_t *)v->meta + sizeof(m) +
		       i * sizeof(p), sizeof(p));
		if (p.offset > limit || p.size > limit - p.offset ||
		    p.size > INT32_MAX || p.linesize <= 0)
			return SHMDEMUX_ECORRUPT;
		f->data[i] = base + p.offset;
		f->linesize[i] = p.linesize;
		f->plane_size[i] = (size_t)p.size;
	}
	if (m.media_type == SHMDEMUX_MEDIA_VIDEO)
		ret = check_video(f);
	else if (m.media_type == SHMDEMUX_MEDIA_AUDIO)
		ret = check_audio(f);
	else
		ret = SHMDEMUX_ECORRUPT;
	if (ret == 0)
		valid_frame_fix(f);
	return ret;
}

/* ---- AVFrame helpers ---- */

static int
set_props(const struct shmdemux_frame *f, AVFrame *out)
{
	out->format = f->format;
	out->pts = f->pts;
	out->best_effort_timestamp = f->best_effort_timestamp;
	out->pkt_dts = f->pkt_dts;
	out->pkt_duration = f->duration;
	out->key_frame = (f->flags & SHMDEMUX_FRAME_KEY) != 0;
	out->interlaced_frame = (f->flags & SHMDEMUX_FRAME_INTERLACED) != 0;
	out->top_field_first = (f->flags & SHMDEMUX_FRAME_TOP_FIELD_FIRST) != 0;
	if (f->flags & SHMDEMUX_FRAME_CORRUPT)
		out->flags |= AV_FRAME_FLAG_CORRUPT;
	out->pict_type = f->pict_type;
	if (f->media_type == SHMDEMUX_MEDIA_VIDEO) {
		out->width = f->width;
		out->height = f->height;
		out->sample_aspect_ratio = (AVRational){ f->sar_num, f->sar_den };
		out->color_range = f->color_range;
		out->color_primaries = f->color_primaries;
		out->color_trc = f->color_trc;
		out->colorspace = f->color_space;
		out->chroma_location = f->chroma_location;
		return 0;
	}
	out->sample_rate = f->sample_rate;
	out->nb_samples = f->nb_samples;
	if (f->ch_order == AV_CHANNEL_ORDER_NATIVE &&
	    av_popcount64(f->ch_mask) == f->channels)
		return av_channel_layout_from_mask(&out->ch_layout, f->ch_mask);
	av_channel_layout_default(&out->ch_layout, f->channels);
	if (out->ch_layout.order != AV_CHANNEL_ORDER_NATIVE ||
	    f->ch_order != AV_CHANNEL_ORDER_NATIVE) {
		av_channel_layout_uninit(&out->ch_layout);
		out->ch_layout.order = AV_CHANNEL_ORDER_UNSPEC;
		out->ch_layout.nb_channels = f->channels;
	}
	return 0;
}

/* Point out at f's planes: one read-only AVBufferRef spans them, and
 * free_cb(opaque) runs when its last reference goes. On failure out is
 * unreferenced and free_cb was not and will not be called. */
static int
frame_wrap(const struct shmdemux_frame *f, AVFrame *out,
	   void (*free_cb)(void *, uint8_t *), void *opaque)
{
	const uint8_t *lo, *hi;
	int ret;

	if (f->nb_planes <= 0 || f->nb_planes > SHMDEMUX_FRAME_MAX_PLANES)
		return -EINVAL;
	lo = f->data[0];
	hi = f->data[0] + f->plane_size[0];
	for (int i = 1; i < f->nb_planes; i++) {
		if (f->data[i] < lo)
			lo = f->data[i];
		if (f->data[i] + f->plane_size[i] > hi)
			hi = f->data[i] + f->plane_size[i];
	}
	if ((ret = set_props(f, out)) < 0)
		goto fail;
	ret = AVERROR(ENOMEM);
	if (f->nb_planes > AV_NUM_DATA_POINTERS) {
		out->extended_data = av_calloc((size_t)f->nb_planes,
					       sizeof(*out->extended_data));
		if (out->extended_data == NULL)
			goto fail;
	}
	for (int i = 0; i < f->nb_planes; i++) {
		uint8_t *p = (uint8_t *)f->data[i];

		if (i < AV_NUM_DATA_POINTERS) {
			out->data[i] = p;
			out->linesize[i] = f->linesize[i];
		}
		if (out->extended_data != out->data &&
		    out->extended_data != NULL)
			out->extended_data[i] = p;
	}
	if (f->nb_planes <= AV_NUM_DATA_POINTERS)
		out->extended_data = out->data;
	/* Last, so that nothing can fail once free_cb is owned by out. */
	out->buf[0] = av_buffer_create((uint8_t *)lo, (size_t)(hi - lo),
				       free_cb, opaque,
				       AV_BUFFER_FLAG_READONLY);
	if (out->buf[0] != NULL)
		return 0;
fail:
	av_frame_unref(out);
	return ret == AVERROR(ENOMEM) ? -ENOMEM : -EINVAL;
}

/* A reference that frees nothing: the copy below outlives it. */
static void
no_free(void *opaque, uint8_t *data)
{
	(void)opaque;
	(void)data;
}

/* The last reference to a lent frame is gone (any thread). */
static void
hold_free(void *opaque, uint8_t *data)
{
	(void)data;
	stream_unhold(opaque);
}

int
shmdemux_frame_to_avframe(shmdemux_stream *s, AVFrame *out)
{
	const struct shmdemux_frame *f = stream_frame_view(s);
	struct frame_hold *h;
	int ret;

	if (f == NULL)
		return -ENOENT;
	/* Live: the producer never waits, so a hold could not keep the
	 * bytes; lend a copy, checked intact after it was taken. */
	if (stream_is_live(s)) {
		if ((ret = shmdemux_frame_to_avframe_copy(f, out)) < 0)
			return ret;
		if (stream_view_valid(s) < 0) {
			av_frame_unref(out);
			return SHMDEMUX_EOVERRUN;
		}
		return 0;
	}
	if ((ret = stream_hold(s, &h)) < 0)
		return ret;
	if ((ret = frame_wrap(f, out, hold_free, h)) < 0)
		stream_unhold(h);
	return ret;
}

int
shmdemux_frame_to_avframe_copy(const struct shmdemux_frame *f, AVFrame *out)
{
	AVFrame *view = av_frame_alloc();
	int ret;

	if (view == NULL)
		return -ENOMEM;
	if ((ret = frame_wrap(f, view, no_free, NULL)) < 0)
		goto out;
	if ((ret = set_props(f, out)) < 0 ||
	    (ret = av_frame_get_buffer(out, 0)) < 0 ||
	    (ret = av_frame_copy(out, view)) < 0 ||
	    (ret = av_frame_copy_props(out, view)) < 0) {
		av_frame_unref(out);
		ret = ret == AVERROR(ENOMEM) ? -ENOMEM : -EINVAL;
	}
out:
	av_frame_free(&view);
	return ret;
}
