/*
 * worker_tracks.c - the ring's track table, written from the AVFormatContext.
 *
 * The table is rewritten whole under the ring's seqlock (ring_tracks_begin/
 * end) each time it changes: after avformat_find_stream_info, and when
 * streams appear mid-stream (MPEG-TS programs) or a packet carries new codec
 * parameters. Every rewrite is announced by a RING_REC_TRACKS record, placed
 * before the first packet that needs the new table.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavutil/channel_layout.h>
#include <libavutil/dict.h>

#include "worker.h"

static void
copy_str(char *dst, size_t cap, const char *src)
{
	if (!src)
		src = "";
	/* Truncation is fine: these are labels; the table keeps them bounded
	 * and NUL-terminated for readers. */
	snprintf(dst, cap, "%s", src);
}

static const char *
meta_value(const AVStream *st, const char *key)
{
	const AVDictionaryEntry *e = av_dict_get(st->metadata, key, NULL, 0);

	return e ? e->value : NULL;
}

static void
fill_codec(struct sd_track *t, const AVCodecParameters *par)
{
	t->media_type = par->codec_type;
	t->codec_id = par->codec_id;
	t->codec_tag = par->codec_tag;
	t->format = par->format;
	t->profile = par->profile;
	t->level = par->level;
	t->bit_rate = par->bit_rate;
	t->bits_per_coded_sample = par->bits_per_coded_sample;
	t->bits_per_raw_sample = par->bits_per_raw_sample;
	t->width = par->width;
	t->height = par->height;
	t->sar_num = par->sample_aspect_ratio.num;
	t->sar_den = par->sample_aspect_ratio.den;
	t->field_order = par->field_order;
	t->color_range = par->color_range;
	t->color_primaries = par->color_primaries;
	t->color_trc = par->color_trc;
	t->color_space = par->color_space;
	t->chroma_location = par->chroma_location;
	t->video_delay = par->video_delay;
	t->sample_rate = par->sample_rate;
	t->ch_order = par->ch_layout.order;
	t->channels = par->ch_layout.nb_channels;
	/* Only the native order has a mask; custom/ambisonic maps have no
	 * place in the table and are described by order + count alone. */
	t->ch_mask = par->ch_layout.order == AV_CHANNEL_ORDER_NATIVE ?
		     par->ch_layout.u.mask : 0;
	t->block_align = par->block_align;
	t->frame_size = par->frame_size;
	t->initial_padding = par->initial_padding;
	t->trailing_padding = par->trailing_padding;
	t->seek_preroll = par->seek_preroll;
	copy_str(t->codec_name, sizeof(t->codec_name),
		 avcodec_get_name(par->codec_id));
}

static void
fill_stream(struct sd_track *t, const AVStream *st)
{
	t->index = st->index;
	t->id = st->id;
	t->tb_num = st->time_base.num;
	t->tb_den = st->time_base.den;
	t->avg_fr_num = st->avg_frame_rate.num;
	t->avg_fr_den = st->avg_frame_rate.den;
	t->r_fr_num = st->r_frame_rate.num;
	t->r_fr_den = st->r_frame_rate.den;
	t->st_sar_num = st->sample_aspect_ratio.num;
	t->st_sar_den = st->sample_aspect_ratio.den;
	t->start_time = st->start_time;
	t->duration = st->duration;
	t->nb_frames = st->nb_frames;
	t->disposition = st->disposition;
	copy_str(t->language, sizeof(t->language), meta_value(st, "language"));
	copy_str(t->title, sizeof(t->title), meta_value(st, "title"));
}

/* Append extradata to the pool; a track whose extradata does not fit gets
 * none (and a log line) rather than a truncated blob. */
static void
fill_extradata(const struct worker *w, struct ring_tracks *tt,
	       struct sd_track *t, const AVCodecParameters *par)
{
	uint8_t *pool = (uint8_t *)(tt + 1);
	uint32_t len;

	t->extradata_off = 0;
	t->extradata_len = 0;
	if (!par->extradata || par->extradata_size <= 0)
		return;
	len = (uint32_t)par->extradata_size;
	if (len > RING_EXTRADATA_POOL - tt->pool_used) {
		worker_log(w, "track %d: extradata (%u bytes) does not fit the "
			   "track table pool", t->index, len);
		return;
	}
	memcpy(pool + tt->pool_used, par->extradata, len);
	t->extradata_off = tt->pool_used;
	t->extradata_len = len;
	tt->pool_used += (len + 7u) & ~7u;
	if (tt->pool_used > RING_EXTRADATA_POOL)
		tt->pool_used = RING_EXTRADATA_POOL;
}

/* The track whose keyframes are sync points: the first video track, since a
 * consumer joining there can decode pictures; without video any keyframe. */
static int
pick_sync_track(const AVFormatContext *fmt, unsigned count)
{
	for (unsigned i = 0; i < count; i++)
		if (fmt->streams[i]->codecpar->codec_type == AVMEDIA_TYPE_VIDEO)
			return (int)i;
	return -1;
}

static void
write_table(struct worker *w, struct ring_tracks *tt, unsigned count)
{
	const AVFormatContext *fmt = w->fmt;

	tt->count = 0; /* readers see an empty table if we stop half-way */
	tt->pool_used = 0;
	copy_str(tt->format_name, sizeof(tt->format_name),
		 fmt->iformat ? fmt->iformat->name : NULL);
	tt->start_time = fmt->start_time;
	tt->duration = fmt->duration;
	tt->bit_rate = fmt->bit_rate;
	for (unsigned i = 0; i < count; i++) {
		struct sd_track *t = &tt->tracks[i];
		const AVStream *st = fmt->streams[i];

		memset(t, 0, sizeof(*t));
		fill_stream(t, st);
		fill_codec(t, st->codecpar);
		fill_extradata(w, tt, t, st->codecpar);
	}
	tt->count = count;
}

int
worker_tracks_publish(struct worker *w)
{
	struct ring_tracks *tt;
	struct ring_wr wr;
	unsigned count = w->fmt->nb_streams;
	uint32_t gen;
	int ret;

	if (count > RING_MAX_TRACKS) {
		if (!w->overflow_logged)
			worker_log(w, "%u streams, the track table holds %u; "
				   "packets of the others are dropped", count,
				   RING_MAX_TRACKS);
		w->overflow_logged = 1;
		count = RING_MAX_TRACKS;
	}
	tt = ring_tracks_begin(w->ring);
	if (!tt)
		return -EINVAL;
	write_table(w, tt, count);
	gen = ring_tracks_end(w->ring);

	w->nb_published = w->fmt->nb_streams;
	w->track_gen = gen;
	w->sync_track = pick_sync_track(w->fmt, count);

	ret = worker_reserve(w, sizeof(gen), 0, &wr);
	if (ret < 0)
		return ret;
	memcpy(wr.meta, &gen, sizeof(gen));
	return ring_publish(w->ring, &wr, RING_REC_TRACKS, 0);
}
