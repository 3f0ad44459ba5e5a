/*
 * hostile_cases.c - the cases of hostile_cases.h: what each hostile track,
 * packet and frame record looks like, and the verdict a consumer owes it.
 */
#include <errno.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavcodec/defs.h>
#include <libavutil/channel_layout.h>
#include <libavutil/pixfmt.h>
#include <libavutil/samplefmt.h>

#include "hostile_cases.h"

/* ---- strings ---- */

const char hostile_end_msg[] =
	"\033[2J\033]0;owned\007\033[31mred \"quoted\" back\\slash "
	"\xc3\x28 \xff\xfe \xe2\x82 \xc2\x9b tab\tnl\n";

void
hostile_label(char *dst, size_t cap)
{
	static const char seed[] = "\033[1;31m\"x\\y\"\xc0\xaf\xed\xa0\x80"
				   "\xc2\x9b\x01\x7f\xf4\x90\x80\x80\xe2\x82";

	for (size_t i = 0; i < cap; i++)
		dst[i] = seed[i % (sizeof(seed) - 1)];
}

void
hostile_format_name(char *dst, size_t cap)
{
	hostile_label(dst, cap);
	memcpy(dst, "mkv", 3);
}

/* ---- tracks ---- */

void
hostile_track_base(struct sd_track *t, int base, int index)
{
	memset(t, 0, sizeof(*t));
	t->index = index;
	t->id = index + 1;
	t->format = -1;
	t->tb_num = 1;
	t->tb_den = 1000;
	t->start_time = 0;
	t->duration = 2000;
	t->profile = -99;
	t->level = -99;
	t->color_range = AVCOL_RANGE_UNSPECIFIED;
	t->color_primaries = AVCOL_PRI_UNSPECIFIED;
	t->color_trc = AVCOL_TRC_UNSPECIFIED;
	t->color_space = AVCOL_SPC_UNSPECIFIED;
	switch (base) {
	case HB_VIDEO:
		t->media_type = AVMEDIA_TYPE_VIDEO;
		t->codec_id = AV_CODEC_ID_H264;
		t->format = AV_PIX_FMT_YUV420P;
		t->width = 320;
		t->height = 240;
		t->sar_num = 1;
		t->sar_den = 1;
		t->avg_fr_num = 25;
		t->avg_fr_den = 1;
		t->r_fr_num = 25;
		t->r_fr_den = 1;
		t->video_delay = 2;
		break;
	case HB_AUDIO:
		t->media_type = AVMEDIA_TYPE_AUDIO;
		t->codec_id = AV_CODEC_ID_AAC;
		t->format = AV_SAMPLE_FMT_FLTP;
		t->sample_rate = 48000;
		t->ch_order = AV_CHANNEL_ORDER_NATIVE;
		t->channels = 2;
		t->ch_mask = AV_CH_LAYOUT_STEREO;
		t->frame_size = 1024;
		t->initial_padding = 1024;
		break;
	case HB_DATA:
		t->media_type = AVMEDIA_TYPE_DATA;
		t->codec_id = AV_CODEC_ID_BIN_DATA;
		break;
	case HB_SUBTITLE:
		t->media_type = AVMEDIA_TYPE_SUBTITLE;
		t->codec_id = AV_CODEC_ID_SUBRIP;
		break;
	default:
		t->media_type = AVMEDIA_TYPE_ATTACHMENT;
		t->codec_id = AV_CODEC_ID_TTF;
		break;
	}
	snprintf(t->codec_name, sizeof(t->codec_name), "%s",
		 avcodec_get_name((enum AVCodecID)t->codec_id));
	snprintf(t->language, sizeof(t->language), "und");
}

#define SET(fn, field, value) \
	static void fn(struct sd_track *t) { t->field = (value); }

SET(t_wrapped, codec_id, AV_CODEC_ID_WRAPPED_AVFRAME)
SET(t_unknown_id, codec_id, 0x7ffff)
SET(t_negative_id, codec_id, -5)
SET(t_type_audio, media_type, AVMEDIA_TYPE_AUDIO)
SET(t_type_video, media_type, AVMEDIA_TYPE_VIDEO)
SET(t_type_42, media_type, 42)
SET(t_type_neg, media_type, -7)
SET(t_type_data, media_type, AVMEDIA_TYPE_DATA)
SET(t_none, codec_id, AV_CODEC_ID_NONE)
SET(t_probe, codec_id, AV_CODEC_ID_PROBE)
SET(t_mpeg2ts, codec_id, AV_CODEC_ID_MPEG2TS)
SET(t_mpeg4sys, codec_id, AV_CODEC_ID_MPEG4SYSTEMS)
SET(t_ffmetadata, codec_id, AV_CODEC_ID_FFMETADATA)
SET(t_wavesynth, codec_id, AV_CODEC_ID_FFWAVESYNTH)
SET(t_vaapi, format, AV_PIX_FMT_VAAPI)
SET(t_cuda, format, AV_PIX_FMT_CUDA)
SET(t_pix_9999, format, 9999)
SET(t_pix_neg, format, -5)
SET(t_smp_99, format, 99)
SET(t_width_neg, width, -1)
SET(t_tb_den_neg, tb_den, -1)
SET(t_tb_num_neg, tb_num, -1)
SET(t_channels_big, channels, 100000)
SET(t_channels_neg, channels, -2)
SET(t_rate_neg, sample_rate, -1)
SET(t_rate_big, sample_rate, 0x7fffffff)
SET(t_block_align_neg, block_align, -1)
SET(t_frame_size_neg, frame_size, -1)
SET(t_padding_neg, initial_padding, -1)
SET(t_index_40, index, 40)
SET(t_bpcs_neg, bits_per_coded_sample, -1)
SET(t_delay_1000, video_delay, 1000)
SET(t_field_99, field_order, 99)
SET(t_ch_order_77, ch_order, 77)
SET(t_mask_mismatch, ch_mask, AV_CH_LAYOUT_5POINT1)

static void
t_huge(struct sd_track *t)
{
	t->width = 100000;
	t->height = 100000;
}

static void
t_tb_zero(struct sd_track *t)
{
	t->tb_num = 0;
	t->tb_den = 0;
}

static void
t_rationals(struct sd_track *t)
{
	t->sar_num = -1;
	t->sar_den = -1;
	t->st_sar_num = 5;
	t->st_sar_den = -3;
	t->avg_fr_num = -25;
	t->r_fr_den = -1;
}

static void
t_colors(struct sd_track *t)
{
	t->color_range = 999;
	t->color_primaries = -4;
	t->color_trc = 1000;
	t->color_space = 77;
	t->chroma_location = -1;
}

static void
t_strings(struct sd_track *t)
{
	hostile_label(t->codec_name, sizeof(t->codec_name));
	hostile_label(t->language, sizeof(t->language));
	hostile_label(t->title, sizeof(t->title));
}

const struct hostile_track_case hostile_tracks[] = {
	{ "h264 video", HB_VIDEO, NULL, HV_OK, HV_OK },
	{ "aac audio", HB_AUDIO, NULL, HV_OK, HV_OK },
	{ "wrapped_avframe", HB_VIDEO, t_wrapped, HV_CORRUPT, HV_CORRUPT },
	{ "unknown codec id", HB_VIDEO, t_unknown_id, HV_CORRUPT, HV_CORRUPT },
	{ "negative codec id", HB_AUDIO, t_negative_id, HV_CORRUPT,
	  HV_CORRUPT },
	{ "h264 typed audio", HB_VIDEO, t_type_audio, HV_CORRUPT, HV_CORRUPT },
	{ "aac typed video", HB_AUDIO, t_type_video, HV_CORRUPT, HV_CORRUPT },
	{ "h264 typed data", HB_VIDEO, t_type_data, HV_CORRUPT, HV_CORRUPT },
	{ "media type 42", HB_VIDEO, t_type_42, HV_CORRUPT, HV_CORRUPT },
	{ "media type -7", HB_VIDEO, t_type_neg, HV_CORRUPT, HV_CORRUPT },
	{ "codec none", HB_VIDEO, t_none, HV_OK, HV_NOTSUP },
	{ "codec probe", HB_VIDEO, t_probe, HV_OK, HV_NOTSUP },
	{ "codec mpeg2ts", HB_DATA, t_mpeg2ts, HV_OK, HV_NOTSUP },
	{ "codec mpeg4systems", HB_DATA, t_mpeg4sys, HV_OK, HV_NOTSUP },
	{ "codec ffmetadata", HB_DATA, t_ffmetadata, HV_OK, HV_NOTSUP },
	{ "codec ffwavesynth", HB_AUDIO, t_wavesynth, HV_OK, HV_NOTSUP },
	{ "pixel format vaapi", HB_VIDEO, t_vaapi, HV_CORRUPT, HV_CORRUPT },
	{ "pixel format cuda", HB_VIDEO, t_cuda, HV_CORRUPT, HV_CORRUPT },
	{ "pixel format 9999", HB_VIDEO, t_pix_9999, HV_CORRUPT, HV_CORRUPT },
	{ "pixel format -5", HB_VIDEO, t_pix_neg, HV_CORRUPT, HV_CORRUPT },
	{ "sample format 99", HB_AUDIO, t_smp_99, HV_CORRUPT, HV_CORRUPT },
	{ "width -1", HB_VIDEO, t_width_neg, HV_CORRUPT, HV_CORRUPT },
	{ "100000x100000", HB_VIDEO, t_huge, HV_CORRUPT, HV_CORRUPT },
	{ "time base 0/0", HB_VIDEO, t_tb_zero, HV_CORRUPT, HV_CORRUPT },
	{ "time base 1/-1", HB_AUDIO, t_tb_den_neg, HV_CORRUPT, HV_CORRUPT },
	{ "time base -1/1000", HB_VIDEO, t_tb_num_neg, HV_CORRUPT,
	  HV_CORRUPT },
	{ "100000 channels", HB_AUDIO, t_channels_big, HV_CORRUPT,
	  HV_CORRUPT },
	{ "-2 channels", HB_AUDIO, t_channels_neg, HV_CORRUPT, HV_CORRUPT },
	{ "sample rate -1", HB_AUDIO, t_rate_neg, HV_CORRUPT, HV_CORRUPT },
	{ "sample rate INT_MAX", HB_AUDIO, t_rate_big, HV_CORRUPT,
	  HV_CORRUPT },
	{ "block align -1", HB_AUDIO, t_block_align_neg, HV_CORRUPT,
	  HV_CORRUPT },
	{ "frame size -1", HB_AUDIO, t_frame_size_neg, HV_CORRUPT,
	  HV_CORRUPT },
	{ "initial padding -1", HB_AUDIO, t_padding_neg, HV_CORRUPT,
	  HV_CORRUPT },
	{ "index field 40, not its slot", HB_VIDEO, t_index_40, HV_CORRUPT,
	  HV_CORRUPT },
	{ "bits per coded sample -1", HB_VIDEO, t_bpcs_neg, HV_CORRUPT,
	  HV_CORRUPT },
	{ "negative rationals", HB_VIDEO, t_rationals, HV_OK, HV_OK },
	{ "colors out of range", HB_VIDEO, t_colors, HV_OK, HV_OK },
	{ "video delay 1000", HB_VIDEO, t_delay_1000, HV_OK, HV_OK },
	{ "field order 99", HB_VIDEO, t_field_99, HV_OK, HV_OK },
	{ "channel order 77", HB_AUDIO, t_ch_order_77, HV_OK, HV_OK },
	{ "mask of 6 for 2 channels", HB_AUDIO, t_mask_mismatch, HV_OK,
	  HV_OK },
	{ "strings", HB_AUDIO, t_strings, HV_OK, HV_OK },
	{ "data bin_data", HB_DATA, NULL, HV_OK, HV_OK },
	{ "subtitle subrip", HB_SUBTITLE, NULL, HV_OK, HV_OK },
	{ "attachment ttf", HB_ATTACHMENT, NULL, HV_OK, HV_OK },
};
const unsigned hostile_ntracks = sizeof(hostile_tracks) /
				 sizeof(hostile_tracks[0]);

/* ---- side data ---- */

static void
f_strings(uint8_t *d, uint32_t size)
{
	memset(d, 'a', size);
	d[1] = '\0';
	d[size - 1] = '\0';
}

static void
f_unterminated(uint8_t *d, uint32_t size)
{
	memset(d, 'a', size);
	d[1] = '\0';
}

static void
le32(uint8_t *d, uint32_t v)
{
	d[0] = (uint8_t)v;
	d[1] = (uint8_t)(v >> 8);
	d[2] = (uint8_t)(v >> 16);
	d[3] = (uint8_t)(v >> 24);
}

static void
be32(uint8_t *d, uint32_t v)
{
	d[0] = (uint8_t)(v >> 24);
	d[1] = (uint8_t)(v >> 16);
	d[2] = (uint8_t)(v >> 8);
	d[3] = (uint8_t)v;
}

/* Zeros, then little-endian words: PARAM_CHANGE (flags, then the fields
 * they name), S12M_TIMECODE (a count, then timecodes). */
#define LE_FILL(fn, w0, w1) \
	static void fn(uint8_t *d, uint32_t size) \
	{ memset(d, 0, size); le32(d, w0); if (size >= 8) le32(d + 4, w1); }

LE_FILL(f_param_rate, AV_SIDE_DATA_PARAM_CHANGE_SAMPLE_RATE, 44100)
LE_FILL(f_param_unknown, 0x100, 0)
LE_FILL(f_s12m, 2, 0)
LE_FILL(f_s12m_9, 9, 0)

/* ENCRYPTION_INFO: 6 big-endian words (scheme, crypt and skip blocks, key
 * id size, iv size, subsamples), then key id, iv, 8 bytes per subsample */
static void
crypt_fill(uint8_t *d, uint32_t size, uint32_t key_size)
{
	memset(d, 0, size);
	be32(d + 12, key_size);
	be32(d + 16, 8);
	be32(d + 20, 1);
}

static void
f_crypt(uint8_t *d, uint32_t size)
{
	crypt_fill(d, size, 16);
}

static void
f_crypt_huge(uint8_t *d, uint32_t size)
{
	crypt_fill(d, size, 0xffffffffu);
}

#define SD(name, type, size, fill, count, view, avpkt) \
	{ name, type, size, fill, count, view, avpkt }

const struct hostile_sd_case hostile_sds[] = {
	SD("palette 1024", AV_PKT_DATA_PALETTE, 1024, NULL, 0, 1, 1),
	SD("palette 5", AV_PKT_DATA_PALETTE, 5, NULL, 0, 0, 0),
	SD("palette 2048", AV_PKT_DATA_PALETTE, 2048, NULL, 0, 0, 0),
	SD("skip samples 10", AV_PKT_DATA_SKIP_SAMPLES, 10, NULL, 0, 1, 1),
	SD("skip samples 3", AV_PKT_DATA_SKIP_SAMPLES, 3, NULL, 0, 0, 0),
	SD("type 9999", 9999, 16, NULL, 0, 0, 0),
	SD("type NB", AV_PKT_DATA_NB, 16, NULL, 0, 0, 0),
	SD("h263 mb info (an encoder's)", AV_PKT_DATA_H263_MB_INFO, 12, NULL,
	   0, 0, 0),
	SD("quality stats (an encoder's)", AV_PKT_DATA_QUALITY_STATS, 8, NULL,
	   0, 0, 0),
	SD("new extradata 64", AV_PKT_DATA_NEW_EXTRADATA, 64, NULL, 0, 1, 1),
	SD("new extradata 0", AV_PKT_DATA_NEW_EXTRADATA, 0, NULL, 0, 0, 0),
	SD("new extradata 2 MiB", AV_PKT_DATA_NEW_EXTRADATA, 2u << 20, NULL,
	   0, 0, 0),
	SD("display matrix 36", AV_PKT_DATA_DISPLAYMATRIX, 36, NULL, 0, 1, 1),
	SD("display matrix 35", AV_PKT_DATA_DISPLAYMATRIX, 35, NULL, 0, 0, 0),
	SD("strings metadata", AV_PKT_DATA_STRINGS_METADATA, 6, f_strings, 0,
	   1, 1),
	SD("strings metadata unterminated", AV_PKT_DATA_STRINGS_METADATA, 6,
	   f_unterminated, 0, 0, 0),
	SD("metadata update", AV_PKT_DATA_METADATA_UPDATE, 4, f_strings, 0, 1,
	   1),
	SD("param change sample rate", AV_PKT_DATA_PARAM_CHANGE, 8,
	   f_param_rate, 0, 1, 1),
	SD("param change unknown flag", AV_PKT_DATA_PARAM_CHANGE, 4,
	   f_param_unknown, 0, 0, 0),
	SD("param change too long", AV_PKT_DATA_PARAM_CHANGE, 12,
	   f_param_rate, 0, 0, 0),
	SD("s12m 2 timecodes", AV_PKT_DATA_S12M_TIMECODE, 16, f_s12m, 0, 1, 1),
	SD("s12m 9 timecodes", AV_PKT_DATA_S12M_TIMECODE, 16, f_s12m_9, 0, 0,
	   0),
	SD("s12m 12 bytes", AV_PKT_DATA_S12M_TIMECODE, 12, f_s12m, 0, 0, 0),
	SD("encryption info", AV_PKT_DATA_ENCRYPTION_INFO, 56, f_crypt, 0, 1,
	   1),
	SD("encryption info key 4 GiB", AV_PKT_DATA_ENCRYPTION_INFO, 56,
	   f_crypt_huge, 0, 0, 0),
	SD("encryption init info", AV_PKT_DATA_ENCRYPTION_INIT_INFO, 64, NULL,
	   0, 0, 0),
	SD("mastering display 88", AV_PKT_DATA_MASTERING_DISPLAY_METADATA, 88,
	   NULL, 0, 1, 1),
	SD("mastering display 87", AV_PKT_DATA_MASTERING_DISPLAY_METADATA, 87,
	   NULL, 0, 0, 0),
	SD("content light 8", AV_PKT_DATA_CONTENT_LIGHT_LEVEL, 8, NULL, 0, 1,
	   1),
	SD("content light 9", AV_PKT_DATA_CONTENT_LIGHT_LEVEL, 9, NULL, 0, 0,
	   0),
	SD("a53 cc 9", AV_PKT_DATA_A53_CC, 9, NULL, 0, 1, 1),
	SD("a53 cc 10", AV_PKT_DATA_A53_CC, 10, NULL, 0, 0, 0),
	SD("mpegts stream id 1", AV_PKT_DATA_MPEGTS_STREAM_ID, 1, NULL, 0, 1,
	   1),
	SD("mpegts stream id 2", AV_PKT_DATA_MPEGTS_STREAM_ID, 2, NULL, 0, 0,
	   0),
	SD("block additional 7", AV_PKT_DATA_MATROSKA_BLOCKADDITIONAL, 7, NULL,
	   0, 0, 0),
	SD("block additional 18", AV_PKT_DATA_MATROSKA_BLOCKADDITIONAL, 18,
	   NULL, 0, 1, 1),
	SD("replaygain 16", AV_PKT_DATA_REPLAYGAIN, 16, NULL, 0, 1, 1),
	SD("spherical 36", AV_PKT_DATA_SPHERICAL, 36, NULL, 0, 1, 1),
	SD("stereo3d 12", AV_PKT_DATA_STEREO3D, 12, NULL, 0, 1, 1),
	SD("afd 1", AV_PKT_DATA_AFD, 1, NULL, 0, 1, 1),
	SD("prft 16", AV_PKT_DATA_PRFT, 16, NULL, 0, 1, 1),
	SD("icc profile 100", AV_PKT_DATA_ICC_PROFILE, 100, NULL, 0, 1, 1),
	SD("dovi conf 8", AV_PKT_DATA_DOVI_CONF, 8, NULL, 0, 1, 1),
	SD("audio service type 4", AV_PKT_DATA_AUDIO_SERVICE_TYPE, 4, NULL, 0,
	   1, 1),
	SD("cpb properties", AV_PKT_DATA_CPB_PROPERTIES,
	   sizeof(AVCPBProperties), NULL, 0, 1, 1),
	SD("jp dual mono 1", AV_PKT_DATA_JP_DUALMONO, 1, NULL, 0, 1, 1),
	SD("subtitle position 16", AV_PKT_DATA_SUBTITLE_POSITION, 16, NULL, 0,
	   1, 1),
	SD("webvtt identifier", AV_PKT_DATA_WEBVTT_IDENTIFIER, 5, NULL, 0, 1,
	   1),
	SD("32 palettes of 5 bytes", AV_PKT_DATA_PALETTE, 5, NULL, 32, 0, 0),
};
const unsigned hostile_nsds = sizeof(hostile_sds) / sizeof(hostile_sds[0]);

/* ---- malformed packet meta ---- */

#define MSET(fn, stmt) \
	static void fn(struct sd_pkt_meta *m) { stmt; }

MSET(m_too_many, m->nb_side_data = SD_MAX_SIDE_DATA + 1)
MSET(m_len_mismatch, m->side_data_len = 64)
MSET(m_entry_beyond, { m->nb_side_data = 1; m->side_data_len = 16; })
MSET(m_track_neg, m->track = -1)
MSET(m_track_64, m->track = 64)

const struct hostile_meta_case hostile_metas[] = {
	{ "33 side data entries", m_too_many, 0 },
	{ "side_data_len past the meta", m_len_mismatch, 0 },
	{ "entry size past the meta", m_entry_beyond,
	  sizeof(struct sd_pkt_meta) + 16 },
	{ "track -1", m_track_neg, 0 },
	{ "track 64", m_track_64, 0 },
	{ "meta shorter than its header", NULL, 16 },
};
const unsigned hostile_nmetas = sizeof(hostile_metas) /
				sizeof(hostile_metas[0]);

uint32_t
hostile_meta(const struct hostile_meta_case *c, uint8_t *buf,
	     uint32_t track_gen)
{
	struct sd_pkt_meta m;
	struct sd_side_data e = { AV_PKT_DATA_PALETTE, 0xfffffff0u };
	uint32_t len = c->len ? c->len : (uint32_t)sizeof(m);

	memset(buf, 0, HOSTILE_META_MAX);
	memset(&m, 0, sizeof(m));
	m.pos = -1;
	m.flags = HOSTILE_PKT_FLAGS;
	m.track_gen = track_gen;
	if (c->apply != NULL)
		c->apply(&m);
	memcpy(buf, &m, len < sizeof(m) ? len : sizeof(m));
	/* bytes past the header: one entry claiming far more than follows */
	if (len >= sizeof(m) + sizeof(e))
		memcpy(buf + sizeof(m), &e, sizeof(e));
	return len;
}

/* ---- frames ---- */

void
hostile_frame_base(struct hostile_frame *f, int base)
{
	uint64_t off = 0;
	unsigned n;

	memset(f, 0, sizeof(*f));
	f->m.pts = 0;
	f->m.best_effort_timestamp = 0;
	f->m.pkt_dts = 0;
	f->m.duration = 40;
	f->m.flags = SD_FRAME_KEY;
	f->m.pict_type = AV_PICTURE_TYPE_I;
	f->m.color_range = AVCOL_RANGE_UNSPECIFIED;
	f->m.color_primaries = AVCOL_PRI_UNSPECIFIED;
	f->m.color_trc = AVCOL_TRC_UNSPECIFIED;
	f->m.color_space = AVCOL_SPC_UNSPECIFIED;
	if (base == HF_VIDEO) {
		static const int ls[3] = { HOSTILE_FRAME_W,
			HOSTILE_FRAME_W / 2, HOSTILE_FRAME_W / 2 };
		static const int h[3] = { HOSTILE_FRAME_H,
			HOSTILE_FRAME_H / 2, HOSTILE_FRAME_H / 2 };

		f->m.track = 0;
		f->m.media_type = AVMEDIA_TYPE_VIDEO;
		f->m.format = AV_PIX_FMT_YUV420P;
		f->m.width = HOSTILE_FRAME_W;
		f->m.height = HOSTILE_FRAME_H;
		f->m.sar_num = 1;
		f->m.sar_den = 1;
		n = 3;
		for (unsigned i = 0; i < n; i++) {
			f->p[i].offset = off;
			f->p[i].linesize = ls[i];
			f->p[i].size = (uint64_t)ls[i] * (uint64_t)h[i];
			off += (f->p[i].size + 63u) & ~UINT64_C(63);
		}
	} else {
		int planar = base == HF_AUDIO_PLANAR;
		uint64_t size = planar ? HOSTILE_FRAME_SAMPLES * 4u :
				HOSTILE_FRAME_SAMPLES * 2u * 2u;

		f->m.track = 1;
		f->m.media_type = AVMEDIA_TYPE_AUDIO;
		f->m.format = planar ? AV_SAMPLE_FMT_FLTP : AV_SAMPLE_FMT_S16;
		f->m.sample_rate = 48000;
		f->m.ch_order = AV_CHANNEL_ORDER_NATIVE;
		f->m.channels = 2;
		f->m.ch_mask = AV_CH_LAYOUT_STEREO;
		f->m.nb_samples = HOSTILE_FRAME_SAMPLES;
		n = planar ? 2 : 1;
		for (unsigned i = 0; i < n; i++) {
			f->p[i].offset = off;
			f->p[i].size = size;
			f->p[i].linesize = (int32_t)size;
			off += (size + 63u) & ~UINT64_C(63);
		}
	}
	f->m.nb_planes = n;
	f->meta_len = (uint32_t)(sizeof(f->m) + n * sizeof(f->p[0]));
	f->payload_len = off;
}

#define FSET(fn, stmt) \
	static void fn(struct hostile_frame *f) { stmt; }

FSET(fr_off_beyond, f->p[1].offset = f->payload_len)
FSET(fr_off_wrap, f->p[0].offset = UINT64_MAX - 10)
FSET(fr_size_wrap, f->p[2].size = UINT64_MAX - 63)
FSET(fr_ls_zero, f->p[0].linesize = 0)
FSET(fr_ls_neg, f->p[1].linesize = -64)
FSET(fr_ls_short, { f->p[0].linesize = HOSTILE_FRAME_W / 2;
		    f->p[0].size = (uint64_t)HOSTILE_FRAME_W / 2 *
				   HOSTILE_FRAME_H; })
FSET(fr_size_mismatch, f->p[0].size -= 64)
FSET(fr_planes_2, { f->m.nb_planes = 2;
		    f->meta_len -= sizeof(f->p[0]); })
FSET(fr_planes_0, { f->m.nb_planes = 0;
		    f->meta_len = sizeof(f->m); })
FSET(fr_planes_65, f->m.nb_planes = 65)
FSET(fr_vaapi, f->m.format = AV_PIX_FMT_VAAPI)
FSET(fr_pix_9999, f->m.format = 9999)
FSET(fr_pix_neg, f->m.format = -1)
FSET(fr_monow, f->m.format = AV_PIX_FMT_MONOWHITE)
FSET(fr_width_0, f->m.width = 0)
FSET(fr_width_big, f->m.width = 40000)
FSET(fr_height_neg, f->m.height = -5)
FSET(fr_pooled, f->m.flags |= SD_FRAME_POOLED)
FSET(fr_type_7, f->m.media_type = 7)
FSET(fr_track_5, f->m.track = 5)
FSET(fr_track_audio, f->m.track = 1)
FSET(fr_meta_len, f->meta_len += 8)
FSET(fr_ch_0, f->m.channels = 0)
FSET(fr_ch_big, { f->m.channels = 100000; f->m.nb_samples = 1;
		  f->p[0].size = 200000; f->p[0].linesize = 200000;
		  f->payload_len = 200000; })
FSET(fr_ch_planes, f->m.channels = 3)
FSET(fr_samples_neg, f->m.nb_samples = -1)
FSET(fr_rate_0, f->m.sample_rate = 0)
FSET(fr_smp_99, f->m.format = 99)

static void
fr_sanitized(struct hostile_frame *f)
{
	f->m.sar_num = -1;
	f->m.sar_den = -1;
	f->m.color_range = 999;
	f->m.color_primaries = -4;
	f->m.color_trc = 1000;
	f->m.color_space = 77;
	f->m.chroma_location = -1;
	f->m.pict_type = 99;
	f->m.flags |= 0x4000;
}

const struct hostile_frame_case hostile_frames[] = {
	{ "video yuv420p", HF_VIDEO, NULL, HV_OK },
	{ "audio fltp", HF_AUDIO_PLANAR, NULL, HV_OK },
	{ "audio s16", HF_AUDIO_PACKED, NULL, HV_OK },
	{ "plane offset at the payload's end", HF_VIDEO, fr_off_beyond,
	  HV_CORRUPT },
	{ "plane offset near 2^64", HF_VIDEO, fr_off_wrap, HV_CORRUPT },
	{ "plane size near 2^64", HF_VIDEO, fr_size_wrap, HV_CORRUPT },
	{ "linesize 0", HF_VIDEO, fr_ls_zero, HV_CORRUPT },
	{ "linesize -64", HF_VIDEO, fr_ls_neg, HV_CORRUPT },
	{ "linesize below the row", HF_VIDEO, fr_ls_short, HV_CORRUPT },
	{ "plane size off by 64", HF_VIDEO, fr_size_mismatch, HV_CORRUPT },
	{ "2 planes of yuv420p", HF_VIDEO, fr_planes_2, HV_CORRUPT },
	{ "0 planes", HF_VIDEO, fr_planes_0, HV_CORRUPT },
	{ "65 planes", HF_VIDEO, fr_planes_65, HV_CORRUPT },
	{ "pixel format vaapi", HF_VIDEO, fr_vaapi, HV_CORRUPT },
	{ "pixel format 9999", HF_VIDEO, fr_pix_9999, HV_CORRUPT },
	{ "pixel format -1", HF_VIDEO, fr_pix_neg, HV_CORRUPT },
	{ "pixel format monow", HF_VIDEO, fr_monow, HV_CORRUPT },
	{ "width 0", HF_VIDEO, fr_width_0, HV_CORRUPT },
	{ "width 40000", HF_VIDEO, fr_width_big, HV_CORRUPT },
	{ "height -5", HF_VIDEO, fr_height_neg, HV_CORRUPT },
	{ "pooled without a pool", HF_VIDEO, fr_pooled, HV_CORRUPT },
	{ "media type 7", HF_VIDEO, fr_type_7, HV_CORRUPT },
	{ "track 5 (not in the table)", HF_VIDEO, fr_track_5, HV_CORRUPT },
	{ "video frame on the audio track", HF_VIDEO, fr_track_audio,
	  HV_CORRUPT },
	{ "meta_len 8 too long", HF_VIDEO, fr_meta_len, HV_CORRUPT },
	{ "0 channels", HF_AUDIO_PACKED, fr_ch_0, HV_CORRUPT },
	{ "100000 packed channels", HF_AUDIO_PACKED, fr_ch_big, HV_CORRUPT },
	{ "3 channels in 2 planes", HF_AUDIO_PLANAR, fr_ch_planes,
	  HV_CORRUPT },
	{ "-1 samples", HF_AUDIO_PACKED, fr_samples_neg, HV_CORRUPT },
	{ "sample rate 0", HF_AUDIO_PLANAR, fr_rate_0, HV_CORRUPT },
	{ "sample format 99", HF_AUDIO_PACKED, fr_smp_99, HV_CORRUPT },
	{ "enums out of range", HF_VIDEO, fr_sanitized, HV_OK },
	{ "video yuv420p again", HF_VIDEO, NULL, HV_OK },
};
const unsigned hostile_nframes = sizeof(hostile_frames) /
				 sizeof(hostile_frames[0]);
