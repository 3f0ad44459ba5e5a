/*
 * avhelpers.c - bridges to FFmpeg types: AVCodecParameters from a track,
 * AVPacket from a packet view.
 *
 * What reaches FFmpeg here was written by a worker that may be compromised:
 * a track comes from the library's checked copy of the table (validate.c),
 * and what is copied out of the ring (packet flags, side data) is checked
 * again on the copy, which the worker cannot change afterwards.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavcodec/codec_par.h>
#include <libavutil/channel_layout.h>
#include <libavutil/mem.h>

#include "internal.h"

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
	const struct sd_track *k;
	int ret = stream_track(s, i, &k, &ed);

	av_freep(&par->extradata);
	par->extradata_size = 0;
	av_channel_layout_uninit(&par->ch_layout);
	if (ret < 0)
		return ret;
	if ((ret = valid_decodable(k)) < 0)
		return ret;
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

/* One side data entry, copied, checked on the copy, then attached. */
static int
add_side_data(AVPacket *out, const struct shmdemux_side_data *sd)
{
	uint8_t *copy;

	if (!valid_side_data(sd->type, NULL, sd->size))
		return 0;
	copy = av_malloc((size_t)sd->size + AV_INPUT_BUFFER_PADDING_SIZE);
	if (copy == NULL)
		return -ENOMEM;
	memcpy(copy, sd->data, sd->size);
	memset(copy + sd->size, 0, AV_INPUT_BUFFER_PADDING_SIZE);
	if (!valid_side_data(sd->type, copy, sd->size)) {
		av_free(copy);
		return 0;
	}
	if (av_packet_add_side_data(out, (enum AVPacketSideDataType)sd->type,
				    copy, sd->size) < 0) {
		av_free(copy);
		return -ENOMEM;
	}
	return 0;
}

int
shmdemux_packet_to_avpacket(const struct shmdemux_packet *p, AVPacket *out)
{
	int ret;

	if (p->size > INT_MAX - AV_INPUT_BUFFER_PADDING_SIZE ||
	    p->nb_side_data > SHMDEMUX_MAX_SIDE_DATA)
		return -EINVAL;
	ret = av_new_packet(out, (int)p->size);
	if (ret < 0)
		return ret;
	if (p->size > 0)
		memcpy(out->data, p->data, p->size);
	for (unsigned i = 0; i < p->nb_side_data; i++) {
		if (add_side_data(out, &p->side_data[i]) < 0) {
			av_packet_unref(out);
			return -ENOMEM;
		}
	}
	out->pts = p->pts;
	out->dts = p->dts;
	out->duration = p->duration;
	out->pos = p->pos;
	out->flags = (int)valid_pkt_flags(p->flags);
	out->stream_index = p->track;
	return 0;
}
