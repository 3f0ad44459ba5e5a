/*
 * avhelpers.c - bridges to FFmpeg types: AVCodecParameters from a track,
 * AVPacket from a packet view.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavcodec/codec_par.h>
#include <libavutil/channel_layout.h>
#include <libavutil/mem.h>

#include "internal.h"

#define MAX_CHANNELS 1024 /* far above any real layout; bounds hostile ones */

/* Reject values FFmpeg code would trust to size buffers or index tables. */
static int
track_sane(const struct sd_track *k)
{
	if (k->media_type < AVMEDIA_TYPE_UNKNOWN ||
	    k->media_type >= AVMEDIA_TYPE_NB)
		return 0;
	if (k->width < 0 || k->height < 0 || k->sample_rate < 0 ||
	    k->channels < 0 || k->channels > MAX_CHANNELS ||
	    k->block_align < 0 || k->frame_size < 0 ||
	    k->extradata_len > INT_MAX - AV_INPUT_BUFFER_PADDING_SIZE)
		return 0;
	if (k->media_type == AVMEDIA_TYPE_VIDEO &&
	    (k->format < -1 || k->format >= AV_PIX_FMT_NB))
		return 0;
	if (k->media_type == AVMEDIA_TYPE_AUDIO &&
	    (k->format < -1 || k->format >= AV_SAMPLE_FMT_NB))
		return 0;
	return 1;
}

static int
set_layout(AVChannelLayout *l, const struct sd_track *k)
{
	/* A native mask must agree with the channel count; any other layout
	 * is passed on as "unspecified order" with the count alone. */
	if (k->ch_order == AV_CHANNEL_ORDER_NATIVE && k->ch_mask != 0 &&
	    av_popcount64(k->ch_mask) == k->channels)
		return av_channel_layout_from_mask(l, k->ch_mask) < 0 ?
		    SHMDEMUX_ECORRUPT : 0;
	l->order = AV_CHANNEL_ORDER_UNSPEC;
	l->nb_channels = k->channels;
	return 0;
}

static void
set_video(AVCodecParameters *par, const struct sd_track *k)
{
	par->width = k->width;
	par->height = k->height;
	par->sample_aspect_ratio = (AVRational){ k->sar_num, k->sar_den };
	par->field_order = (enum AVFieldOrder)k->field_order;
	par->color_range = (enum AVColorRange)k->color_range;
	par->color_primaries = (enum AVColorPrimaries)k->color_primaries;
	par->color_trc = (enum AVColorTransferCharacteristic)k->color_trc;
	par->color_space = (enum AVColorSpace)k->color_space;
	par->chroma_location = (enum AVChromaLocation)k->chroma_location;
	par->video_delay = k->video_delay;
}

static void
set_audio(AVCodecParameters *par, const struct sd_track *k)
{
	par->sample_rate = k->sample_rate;
	par->block_align = k->block_align;
	par->frame_size = k->frame_size;
	par->initial_padding = k->initial_padding;
	par->trailing_padding = k->trailing_padding;
	par->seek_preroll = k->seek_preroll;
}

int
shmdemux_track_to_codecpar(shmdemux_stream *s, int i, AVCodecParameters *par)
{
	const uint8_t *ed;
	const struct sd_track *k = stream_track(s, i, &ed);

	av_freep(&par->extradata);
	par->extradata_size = 0;
	av_channel_layout_uninit(&par->ch_layout);
	if (k == NULL)
		return -EINVAL;
	if (!track_sane(k))
		return SHMDEMUX_ECORRUPT;
	par->codec_type = (enum AVMediaType)k->media_type;
	par->codec_id = (enum AVCodecID)k->codec_id;
	par->codec_tag = k->codec_tag;
	par->format = k->format;
	par->bit_rate = k->bit_rate;
	par->bits_per_coded_sample = k->bits_per_coded_sample;
	par->bits_per_raw_sample = k->bits_per_raw_sample;
	par->profile = k->profile;
	par->level = k->level;
	set_video(par, k);
	set_audio(par, k);
	if (set_layout(&par->ch_layout, k) < 0)
		return SHMDEMUX_ECORRUPT;
	if (k->extradata_len > 0) {
		par->extradata = av_mallocz(k->extradata_len +
					    AV_INPUT_BUFFER_PADDING_SIZE);
		if (par->extradata == NULL) {
			av_channel_layout_uninit(&par->ch_layout);
			return -ENOMEM;
		}
		memcpy(par->extradata, ed, k->extradata_len);
		par->extradata_size = (int)k->extradata_len;
	}
	return 0;
}

int
shmdemux_packet_to_avpacket(const struct shmdemux_packet *p, AVPacket *out)
{
	int ret;

	if (p->size > INT_MAX - AV_INPUT_BUFFER_PADDING_SIZE)
		return -EINVAL;
	ret = av_new_packet(out, (int)p->size);
	if (ret < 0)
		return ret;
	if (p->size > 0)
		memcpy(out->data, p->data, p->size);
	for (unsigned i = 0; i < p->nb_side_data; i++) {
		const struct shmdemux_side_data *sd = &p->side_data[i];
		uint8_t *dst;

		/* Unknown types from a newer worker are dropped, not passed
		 * to code that would misread them. */
		if (sd->type >= AV_PKT_DATA_NB)
			continue;
		dst = av_packet_new_side_data(out,
		    (enum AVPacketSideDataType)sd->type, sd->size);
		if (dst == NULL) {
			av_packet_unref(out);
			return -ENOMEM;
		}
		memcpy(dst, sd->data, sd->size);
	}
	out->pts = p->pts;
	out->dts = p->dts;
	out->duration = p->duration;
	out->pos = p->pos;
	out->flags = (int)(p->flags & (AV_PKT_FLAG_KEY | AV_PKT_FLAG_CORRUPT |
	    AV_PKT_FLAG_DISCARD | AV_PKT_FLAG_TRUSTED |
	    AV_PKT_FLAG_DISPOSABLE));
	out->stream_index = p->track;
	return 0;
}
