/*
 * validate.c - what the library checks of what a worker wrote, before any
 * of it reaches a consumer or FFmpeg.
 *
 * The worker parses hostile input and is assumed compromised by it: every
 * byte of its ring, track table and records may be chosen by an attacker.
 * The ring code checks the framing of records (common/ring_consume.c);
 * this file checks their meaning, by the consumer's own knowledge (its
 * libavcodec's codec descriptors, pixel and sample format tables), never
 * by the worker's word:
 *
 *  - the track table, on the library's private copy (stable: the worker
 *    cannot change it after the check): structure, then each track;
 *  - packet flags and side data (type allow-list, size per type, and on
 *    copies the contents FFmpeg would parse);
 *  - the strings: NUL-terminated in their field, valid UTF-8.
 *
 * Values no demuxer produces make a track refused (SHMDEMUX_ECORRUPT from
 * the track calls); values that are merely out of an enum's range are made
 * "unspecified", as FFmpeg's own parsers do. docs/CLIENT.md, "What the
 * library checks", lists every rule.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavcodec/codec_desc.h>
#include <libavcodec/codec_par.h>
#include <libavutil/channel_layout.h>
#include <libavutil/dovi_meta.h>
#include <libavutil/imgutils.h>
#include <libavutil/mastering_display_metadata.h>
#include <libavutil/pixdesc.h>
#include <libavutil/replaygain.h>
#include <libavutil/samplefmt.h>
#include <libavutil/spherical.h>
#include <libavutil/stereo3d.h>

#include "internal.h"
#include "utf8.h"

/* ---- strings ---- */

void
valid_string(char *s, size_t cap)
{
	static const char repl[] = "\xef\xbf\xbd"; /* U+FFFD */
	char out[256];
	size_t in = 0, o = 0, end;

	if (cap == 0)
		return;
	if (cap > sizeof(out))
		cap = sizeof(out); /* our fields are shorter */
	end = strnlen(s, cap - 1);
	while (in < end) {
		size_t n = utf8_char_len(s + in, end - in, NULL);
		const char *src = n > 0 ? s + in : repl;
		size_t len = n > 0 ? n : 3;

		if (o + len > cap - 1)
			break; /* a whole character or nothing */
		memcpy(out + o, src, len);
		o += len;
		in += n > 0 ? n : 1;
	}
	memset(s, 0, cap);
	memcpy(s, out, o);
}

/* ---- tracks ---- */

#define MAX_CHANNELS 512          /* FFmpeg's own sane limit */
#define MAX_SAMPLE_RATE (1 << 28) /* far above any audio, DSD included */
#define MAX_FIELD (1 << 24)       /* block_align, frame_size */
#define MAX_PADDING (1 << 28)     /* samples of padding / preroll */
#define MAX_BITS 255              /* bits_per_{coded,raw}_sample */
#define MAX_VIDEO_DELAY 16        /* libavcodec's MAX_DELAYED_PIC_COUNT */

/* Ids libavformat uses for streams it cannot or need not decode. Some have
 * no descriptor; a demuxer may still produce them. */
static int
pseudo_codec(int id)
{
	switch (id) {
	case AV_CODEC_ID_NONE:
	case AV_CODEC_ID_PROBE:
	case AV_CODEC_ID_MPEG2TS:
	case AV_CODEC_ID_MPEG4SYSTEMS:
	case AV_CODEC_ID_FFMETADATA:
	case AV_CODEC_ID_FFWAVESYNTH:
		return 1;
	default:
		return 0;
	}
}

/* A codec id a demuxer can produce for a track of this type. */
static int
codec_ok(int id, int type)
{
	const AVCodecDescriptor *d;

	/* AVFrames passed through in packets: only lavfi and devices make
	 * it, and its decoder follows the pointers in the payload */
	if (id == AV_CODEC_ID_WRAPPED_AVFRAME)
		return 0;
	if (pseudo_codec(id))
		return 1;
	d = avcodec_descriptor_get((enum AVCodecID)id);
	if (d == NULL)
		return 0;
	/* attachments (fonts, ...) carry data-typed codecs */
	return (int)d->type == type ||
	       (type == AVMEDIA_TYPE_ATTACHMENT &&
		d->type == AVMEDIA_TYPE_DATA);
}

static int
format_ok(int format, int type)
{
	const AVPixFmtDescriptor *d;

	if (format == -1)
		return 1;
	if (type == AVMEDIA_TYPE_VIDEO) {
		d = av_pix_fmt_desc_get((enum AVPixelFormat)format);
		return d != NULL && !(d->flags & AV_PIX_FMT_FLAG_HWACCEL);
	}
	if (type == AVMEDIA_TYPE_AUDIO)
		return av_get_sample_fmt_name((enum AVSampleFormat)format) !=
		       NULL;
	return 1;
}

static int
in_range(int v, int lo, int hi)
{
	return v >= lo && v <= hi;
}

/* av_image_check_size()'s bound, without its log line: the library never
 * prints. */
int
valid_image_size(int w, int h)
{
	return w > 0 && h > 0 &&
	       (uint64_t)(w + 128) * (uint64_t)(h + 128) < INT_MAX / 8;
}

/* avcodec_get_name() without its log line for ids it has no descriptor
 * for. */
static const char *
codec_name(int id)
{
	const AVCodecDescriptor *d = avcodec_descriptor_get((enum AVCodecID)id);

	if (d != NULL)
		return d->name;
	return id == AV_CODEC_ID_NONE ? "none" : "unknown_codec";
}

/* Values no demuxer produces: the track is refused. */
static int
track_ok(const struct sd_track *k, uint32_t i)
{
	if (k->index < 0 || (uint32_t)k->index != i ||
	    !in_range(k->media_type, AVMEDIA_TYPE_UNKNOWN,
		      AVMEDIA_TYPE_NB - 1) ||
	    !codec_ok(k->codec_id, k->media_type) ||
	    !format_ok(k->format, k->media_type))
		return 0;
	if (k->tb_num <= 0 || k->tb_den <= 0)
		return 0;
	if (k->width < 0 || k->height < 0 ||
	    (k->width > 0 && k->height > 0 &&
	     !valid_image_size(k->width, k->height)))
		return 0;
	if (!in_range(k->sample_rate, 0, MAX_SAMPLE_RATE) ||
	    !in_range(k->channels, 0, MAX_CHANNELS) ||
	    !in_range(k->block_align, 0, MAX_FIELD) ||
	    !in_range(k->frame_size, 0, MAX_FIELD) ||
	    !in_range(k->initial_padding, 0, MAX_PADDING) ||
	    !in_range(k->trailing_padding, 0, MAX_PADDING) ||
	    !in_range(k->seek_preroll, 0, MAX_PADDING) ||
	    !in_range(k->bits_per_coded_sample, 0, MAX_BITS) ||
	    !in_range(k->bits_per_raw_sample, 0, MAX_BITS))
		return 0;
	return 1;
}

/* A rational that is negative, or has a zero denominator under a non-zero
 * numerator, means nothing: unknown instead. */
static void
fix_rational(int32_t *num, int32_t *den, int32_t unknown_den)
{
	if (*num < 0 || *den < 0 || (*den == 0 && *num != 0)) {
		*num = 0;
		*den = unknown_den;
	}
}

/* Color values without a name become unspecified. */
static void
fix_colors(int *range, int *primaries, int *trc, int *space, int *loc)
{
	if (av_color_range_name(*range) == NULL)
		*range = AVCOL_RANGE_UNSPECIFIED;
	if (av_color_primaries_name(*primaries) == NULL)
		*primaries = AVCOL_PRI_UNSPECIFIED;
	if (av_color_transfer_name(*trc) == NULL)
		*trc = AVCOL_TRC_UNSPECIFIED;
	if (av_color_space_name(*space) == NULL)
		*space = AVCOL_SPC_UNSPECIFIED;
	if (av_chroma_location_name(*loc) == NULL)
		*loc = AVCHROMA_LOC_UNSPECIFIED;
}

/* Values merely out of range become "unspecified", as FFmpeg's own
 * bitstream parsers do with reserved values. */
static void
track_fix(struct sd_track *k)
{
	fix_rational(&k->sar_num, &k->sar_den, 1);
	fix_rational(&k->st_sar_num, &k->st_sar_den, 1);
	fix_rational(&k->avg_fr_num, &k->avg_fr_den, 0);
	fix_rational(&k->r_fr_num, &k->r_fr_den, 0);
	if (!in_range(k->field_order, AV_FIELD_UNKNOWN, AV_FIELD_BT))
		k->field_order = AV_FIELD_UNKNOWN;
	fix_colors(&k->color_range, &k->color_primaries, &k->color_trc,
		   &k->color_space, &k->chroma_location);
	if (k->video_delay < 0)
		k->video_delay = 0;
	if (k->video_delay > MAX_VIDEO_DELAY)
		k->video_delay = MAX_VIDEO_DELAY;
	if (k->bit_rate < 0)
		k->bit_rate = 0;
	/* only a native order has a mask, and it counts the channels */
	if (k->ch_order != AV_CHANNEL_ORDER_NATIVE ||
	    av_popcount64(k->ch_mask) != k->channels)
		k->ch_mask = 0;
	if (!in_range(k->ch_order, AV_CHANNEL_ORDER_UNSPEC,
		      AV_CHANNEL_ORDER_AMBISONIC) ||
	    (k->ch_order == AV_CHANNEL_ORDER_NATIVE && k->ch_mask == 0))
		k->ch_order = AV_CHANNEL_ORDER_UNSPEC;
	if (k->ch_order == AV_CHANNEL_ORDER_CUSTOM)
		k->ch_order = AV_CHANNEL_ORDER_UNSPEC; /* no map in the table */
}

int
valid_table(struct ring_tracks *t, size_t bufsize, uint8_t *ok)
{
	size_t pool_cap = bufsize - sizeof(*t);

	if (pool_cap > RING_EXTRADATA_POOL)
		pool_cap = RING_EXTRADATA_POOL;
	if (t->count > RING_MAX_TRACKS || t->pool_used > pool_cap)
		return SHMDEMUX_ECORRUPT;
	valid_string(t->format_name, sizeof(t->format_name));
	for (uint32_t i = 0; i < t->count; i++) {
		struct sd_track *k = &t->tracks[i];

		if ((uint64_t)k->extradata_off + k->extradata_len >
		    t->pool_used)
			return SHMDEMUX_ECORRUPT;
		ok[i] = (uint8_t)track_ok(k, i);
		track_fix(k);
		/* our own name for the codec, not the worker's */
		snprintf(k->codec_name, sizeof(k->codec_name), "%s",
			 ok[i] ? codec_name(k->codec_id) : "");
		valid_string(k->language, sizeof(k->language));
		valid_string(k->title, sizeof(k->title));
	}
	return 0;
}

int
valid_decodable(const struct sd_track *k)
{
	return pseudo_codec(k->codec_id) ? -ENOTSUP : 0;
}

/* ---- packets ---- */

uint32_t
valid_pkt_flags(uint32_t flags)
{
	/* never TRUSTED: it tells a decoder the payload is not a bitstream
	 * but something it may dereference (wrapped_avframe) */
	return flags & (SD_PKT_KEY | SD_PKT_CORRUPT | SD_PKT_DISCARD |
			SD_PKT_DISPOSABLE);
}

#define SD_BIG (1u << 20)   /* extradata, ICC profiles, text */
#define SD_HUGE (1u << 24)  /* the worker's own cap (block additions) */

static uint32_t
rd_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static uint32_t
rd_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* PARAM_CHANGE: flags, then exactly the fields they name (packet.h). */
static int
param_change_ok(const uint8_t *d, uint32_t size)
{
	uint32_t f, want = 4;

	if (size < 4)
		return 0;
	if (d == NULL)
		return size <= 28;
	f = rd_le32(d);
	if (f & ~(uint32_t)0xf)
		return 0;
	want += (f & 1) ? 4 : 0;  /* channel count */
	want += (f & 2) ? 8 : 0;  /* channel layout */
	want += (f & 4) ? 4 : 0;  /* sample rate */
	want += (f & 8) ? 8 : 0;  /* width, height */
	return size == want;
}

/* ENCRYPTION_INFO (libavutil/encryption_info.c): six big-endian words,
 * then key id, iv and 8 bytes per subsample, nothing more. */
static int
encryption_info_ok(const uint8_t *d, uint32_t size)
{
	uint64_t want;

	if (size < 24 || size > SD_BIG)
		return 0;
	if (d == NULL)
		return 1;
	want = 24 + (uint64_t)rd_be32(d + 12) + rd_be32(d + 16) +
	       (uint64_t)rd_be32(d + 20) * 8;
	return want == size;
}

/* STRINGS_METADATA, METADATA_UPDATE: key\0value\0 pairs. */
static int
dict_ok(const uint8_t *d, uint32_t size)
{
	return size > 0 && size <= SD_BIG && (d == NULL || d[size - 1] == 0);
}

int
valid_side_data(uint32_t type, const uint8_t *d, uint32_t size)
{
	switch (type) {
	case AV_PKT_DATA_PALETTE:
		return size == AVPALETTE_SIZE;
	case AV_PKT_DATA_NEW_EXTRADATA:
	case AV_PKT_DATA_ICC_PROFILE:
	case AV_PKT_DATA_WEBVTT_IDENTIFIER:
	case AV_PKT_DATA_WEBVTT_SETTINGS:
		return size > 0 && size <= SD_BIG;
	case AV_PKT_DATA_PARAM_CHANGE:
		return param_change_ok(d, size);
	case AV_PKT_DATA_REPLAYGAIN:
		return size == sizeof(AVReplayGain);
	case AV_PKT_DATA_DISPLAYMATRIX:
		return size == 9 * sizeof(int32_t);
	case AV_PKT_DATA_STEREO3D:
		return size == sizeof(AVStereo3D);
	case AV_PKT_DATA_AUDIO_SERVICE_TYPE:
		return size == sizeof(enum AVAudioServiceType);
	case AV_PKT_DATA_CPB_PROPERTIES:
		return size == sizeof(AVCPBProperties);
	case AV_PKT_DATA_SKIP_SAMPLES:
		return size == 10;
	case AV_PKT_DATA_JP_DUALMONO:
	case AV_PKT_DATA_MPEGTS_STREAM_ID:
	case AV_PKT_DATA_AFD:
		return size == 1;
	case AV_PKT_DATA_STRINGS_METADATA:
	case AV_PKT_DATA_METADATA_UPDATE:
		return dict_ok(d, size);
	case AV_PKT_DATA_SUBTITLE_POSITION:
		return size == 16;
	case AV_PKT_DATA_MATROSKA_BLOCKADDITIONAL:
		return size >= 8 && size <= SD_HUGE; /* id, then the bytes */
	case AV_PKT_DATA_MASTERING_DISPLAY_METADATA:
		return size == sizeof(AVMasteringDisplayMetadata);
	case AV_PKT_DATA_SPHERICAL:
		return size == sizeof(AVSphericalMapping);
	case AV_PKT_DATA_CONTENT_LIGHT_LEVEL:
		return size == sizeof(AVContentLightMetadata);
	case AV_PKT_DATA_A53_CC:
		return size > 0 && size <= 65535 && size % 3 == 0;
	case AV_PKT_DATA_ENCRYPTION_INFO:
		return encryption_info_ok(d, size);
	case AV_PKT_DATA_PRFT:
		return size == sizeof(AVProducerReferenceTime);
	case AV_PKT_DATA_DOVI_CONF:
		return size == sizeof(AVDOVIDecoderConfigurationRecord);
	case AV_PKT_DATA_S12M_TIMECODE:
		/* a count, then up to three timecodes */
		return size == 16 && (d == NULL || rd_le32(d) <= 3);
	default:
		/* encoders' (H263_MB_INFO, QUALITY_STATS, FALLBACK_TRACK),
		 * stream-level ones no packet carries (ENCRYPTION_INIT_INFO,
		 * DYNAMIC_HDR10_PLUS), and types this libavcodec does not
		 * know */
		return 0;
	}
}

/* ---- frames ---- */

void
valid_frame_fix(struct shmdemux_frame *f)
{
	fix_rational(&f->sar_num, &f->sar_den, 1);
	fix_colors(&f->color_range, &f->color_primaries, &f->color_trc,
		   &f->color_space, &f->chroma_location);
	if (!in_range(f->pict_type, AV_PICTURE_TYPE_NONE, AV_PICTURE_TYPE_BI))
		f->pict_type = AV_PICTURE_TYPE_NONE;
	if (f->ch_order != AV_CHANNEL_ORDER_NATIVE ||
	    av_popcount64(f->ch_mask) != f->channels) {
		f->ch_order = AV_CHANNEL_ORDER_UNSPEC;
		f->ch_mask = 0;
	}
}

int
valid_frame_audio_limits(const struct shmdemux_frame *f)
{
	return in_range(f->channels, 1, MAX_CHANNELS) && f->nb_samples > 0 &&
	       in_range(f->sample_rate, 1, MAX_SAMPLE_RATE);
}
