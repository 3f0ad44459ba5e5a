/*
 * media.h - what the worker writes about tracks and packets, and what the
 * client library reads back. Plain integers only (no FFmpeg types), so the
 * ABI does not depend on the FFmpeg build; values are FFmpeg's enum values
 * (AVMediaType, AVCodecID, AVPixelFormat, ...) of the worker's libavcodec.
 *
 * Part of the ring ABI (RING_ABI_VERSION).
 */
#ifndef SHMDEMUX_MEDIA_H
#define SHMDEMUX_MEDIA_H

#include <stdint.h>

#define SD_NOPTS INT64_MIN /* == AV_NOPTS_VALUE */

/* Everything needed to rebuild AVCodecParameters and the AVStream fields a
 * consumer needs. Written by the worker, untrusted for readers. */
struct sd_track {
	int32_t index;            /* AVStream.index */
	int32_t id;               /* AVStream.id (e.g. TS PID) */
	int32_t media_type;       /* AVMediaType */
	int32_t codec_id;         /* AVCodecID */
	uint32_t codec_tag;
	int32_t format;           /* AVPixelFormat / AVSampleFormat, -1 unknown */
	int32_t profile;
	int32_t level;
	int64_t bit_rate;
	int32_t bits_per_coded_sample;
	int32_t bits_per_raw_sample;
	/* video */
	int32_t width, height;
	int32_t sar_num, sar_den;          /* codecpar sample_aspect_ratio */
	int32_t field_order;
	int32_t color_range, color_primaries, color_trc, color_space;
	int32_t chroma_location;
	int32_t video_delay;
	/* audio */
	int32_t sample_rate;
	int32_t ch_order;                  /* AVChannelOrder */
	int32_t channels;                  /* nb_channels */
	uint32_t pad0;
	uint64_t ch_mask;                  /* u.mask for native order */
	int32_t block_align;
	int32_t frame_size;
	int32_t initial_padding;
	int32_t trailing_padding;
	int32_t seek_preroll;
	/* stream timing */
	int32_t tb_num, tb_den;            /* AVStream.time_base */
	int32_t avg_fr_num, avg_fr_den;    /* avg_frame_rate */
	int32_t r_fr_num, r_fr_den;        /* r_frame_rate */
	int32_t st_sar_num, st_sar_den;    /* AVStream.sample_aspect_ratio */
	int64_t start_time;                /* time_base units, SD_NOPTS unset */
	int64_t duration;                  /* time_base units, SD_NOPTS unset */
	int64_t nb_frames;
	int32_t disposition;               /* AV_DISPOSITION_* */
	uint32_t extradata_off;            /* into the pool */
	uint32_t extradata_len;
	char codec_name[32];               /* avcodec_get_name() */
	char language[16];                 /* "language" metadata */
	char title[64];                    /* "title" metadata */
	uint8_t reserved[64];
};

/* Packet flags (sd_pkt_meta.flags), same bits as AV_PKT_FLAG_*. */
enum {
	SD_PKT_KEY = 0x0001,
	SD_PKT_CORRUPT = 0x0002,
	SD_PKT_DISCARD = 0x0004,
	SD_PKT_TRUSTED = 0x0008,
	SD_PKT_DISPOSABLE = 0x0010,
};

/* Meta part of a RING_REC_PACKET record. The payload is the packet data.
 * nb_side_data entries follow this struct, each a struct sd_side_data
 * header and `size` bytes padded to 8; side_data_len is the total length of
 * those entries. meta_len == sizeof(struct sd_pkt_meta) + side_data_len. */
struct sd_pkt_meta {
	int64_t pts;      /* SD_NOPTS kept as such */
	int64_t dts;
	int64_t duration;
	int64_t pos;      /* byte position in the input, -1 unknown */
	int32_t track;    /* index into the track table */
	uint32_t flags;   /* SD_PKT_* */
	uint32_t nb_side_data;
	uint32_t side_data_len;
	uint32_t track_gen; /* track table generation the packet belongs to */
	uint32_t pad;
};

struct sd_side_data {
	uint32_t type;    /* AVPacketSideDataType */
	uint32_t size;    /* bytes following, then padding to 8 */
};

#define SD_MAX_SIDE_DATA 32

/* ---- decoded frames (RING_REC_FRAME) ---- */

/* Frame flags (sd_frame_meta.flags). */
enum {
	SD_FRAME_KEY = 0x0001,         /* AVFrame.key_frame */
	SD_FRAME_INTERLACED = 0x0002,  /* AVFrame.interlaced_frame */
	SD_FRAME_TFF = 0x0004,         /* AVFrame.top_field_first */
	SD_FRAME_CORRUPT = 0x0008,     /* AV_FRAME_FLAG_CORRUPT */
	SD_FRAME_POOLED = 0x0100,      /* planes are in the frame pool */
};

/* Video: one entry per data plane (palette included), as the decoder laid
 * it out: `size` bytes at `offset` into the payload, rows `linesize` apart
 * (linesize >= the plane's row bytes; size == linesize x plane height).
 * Audio: one entry per channel (planar formats) or one for all (packed);
 * linesize == size. Offsets are 64-byte aligned within the payload.
 * A pooled frame (SD_FRAME_POOLED, video only) has no payload: offsets are
 * into the ring's frame pool area instead (docs/RING.md, "Frame pool"). */
struct sd_frame_plane {
	uint64_t offset;
	uint64_t size;
	int32_t linesize;
	uint32_t pad;
};

#define SD_FRAME_MAX_PLANES 64 /* planar audio channels included */

/* Meta part of a RING_REC_FRAME record: this struct followed by nb_planes
 * struct sd_frame_plane entries; meta_len == sizeof(struct sd_frame_meta) +
 * nb_planes * sizeof(struct sd_frame_plane). The payload holds the planes.
 * Timestamps are in the track's time base. Untrusted for readers. */
struct sd_frame_meta {
	int32_t track;            /* index into the track table */
	int32_t media_type;       /* AVMediaType */
	int64_t pts;              /* AVFrame.pts, SD_NOPTS kept as such */
	int64_t best_effort_timestamp;
	int64_t pkt_dts;
	int64_t duration;         /* AVFrame.pkt_duration, 0 unknown */
	uint32_t flags;           /* SD_FRAME_* */
	int32_t pict_type;        /* AVPictureType */
	int32_t format;           /* AVPixelFormat / AVSampleFormat */
	uint32_t track_gen;       /* track table generation of the frame */
	/* video */
	int32_t width, height;
	int32_t sar_num, sar_den;
	int32_t color_range, color_primaries, color_trc, color_space;
	int32_t chroma_location;
	/* audio */
	int32_t sample_rate;
	int32_t ch_order;         /* AVChannelOrder */
	int32_t channels;
	uint64_t ch_mask;         /* u.mask for native order */
	int32_t nb_samples;
	uint32_t nb_planes;       /* entries following, <= SD_FRAME_MAX_PLANES */
	uint32_t pool_slot;       /* SD_FRAME_POOLED: the slot (diagnostics) */
	uint8_t reserved[28];
	/* struct sd_frame_plane planes[nb_planes] follows */
};

#endif
