/*
 * hostile_cases.h - what a compromised worker writes into its ring, case by
 * case, and what a consumer must make of each case.
 *
 * Two sides share these tables: the hostile worker (broker/worker_hostile.c,
 * linked into shmdemux-worker only in fault-injection builds) writes one
 * track, one packet or one frame record per case, in table order; the
 * reader of the hostile stream (tests/hostile_reader.c) reads them back in the same
 * order and checks the verdict of each. Test code: none of this is in a
 * release build.
 */
#ifndef SHMDEMUX_HOSTILE_CASES_H
#define SHMDEMUX_HOSTILE_CASES_H

#include <stddef.h>
#include <stdint.h>

#include "media.h"

/* What the library must answer for a case. */
enum hostile_verdict {
	HV_OK = 0,      /* accepted (possibly with values made safe) */
	HV_CORRUPT = 1, /* SHMDEMUX_ECORRUPT */
	HV_NOTSUP = 2,  /* -ENOTSUP: valid, but not a bitstream to decode */
};

/* ---- track table ("tracks" scenario): track i is case i ---- */

enum hostile_base {
	HB_VIDEO,      /* h264 320x240 yuv420p */
	HB_AUDIO,      /* aac 48 kHz stereo fltp */
	HB_DATA,       /* bin_data */
	HB_SUBTITLE,   /* subrip */
	HB_ATTACHMENT, /* ttf */
};

struct hostile_track_case {
	const char *name;
	int base;                              /* HB_* */
	void (*apply)(struct sd_track *t);     /* NULL: the base as is */
	int track;                             /* shmdemux_get_track() */
	int par;                               /* shmdemux_track_to_codecpar() */
};

extern const struct hostile_track_case hostile_tracks[];
extern const unsigned hostile_ntracks;

/* A valid track of the given kind at position index. */
void hostile_track_base(struct sd_track *t, int base, int index);
/* Bytes written into the table's format_name: no NUL in the field, an
 * escape sequence and invalid UTF-8. */
void hostile_format_name(char *dst, size_t cap);
/* A string for a label field of cap bytes: filled to the last byte (no
 * NUL), with terminal escapes, C1 controls, quotes, backslashes and
 * invalid UTF-8. */
void hostile_label(char *dst, size_t cap);
/* The end message the "tracks" worker leaves (escapes, invalid UTF-8). */
extern const char hostile_end_msg[];

/* ---- packet side data ("sidedata" scenario): packet i is case i ---- */

struct hostile_sd_case {
	const char *name;
	uint32_t type;                         /* AVPacketSideDataType */
	uint32_t size;
	void (*fill)(uint8_t *d, uint32_t size); /* NULL: a byte pattern */
	uint32_t count;                        /* entries of this kind (1 if 0) */
	int view;                              /* kept in the packet view */
	int avpacket;                          /* kept in the AVPacket */
};

extern const struct hostile_sd_case hostile_sds[];
extern const unsigned hostile_nsds;

/* Packets whose meta is malformed: each read is SHMDEMUX_ECORRUPT. They
 * follow the side data cases, then one good packet ends the scenario. */
struct hostile_meta_case {
	const char *name;
	void (*apply)(struct sd_pkt_meta *m);  /* on a valid header */
	uint32_t len;                          /* meta bytes; 0: the header */
};

extern const struct hostile_meta_case hostile_metas[];
extern const unsigned hostile_nmetas;

#define HOSTILE_META_MAX 256
/* Write case c's meta into buf (HOSTILE_META_MAX bytes); returns its
 * length. */
uint32_t hostile_meta(const struct hostile_meta_case *c, uint8_t *buf,
		      uint32_t track_gen);

/* Packet flags every hostile packet carries: TRUSTED and unknown bits,
 * which no reader may ever see. */
#define HOSTILE_PKT_FLAGS (SD_PKT_KEY | SD_PKT_TRUSTED | 0x4000u | \
			   0x80000000u)
/* The flags a reader may see of them. */
#define HOSTILE_PKT_SAFE SD_PKT_KEY

/* ---- decoded frames ("frames" scenario): record i is case i ---- */

/* The scenario's table: track 0 video (h264, yuv420p), track 1 audio. */
#define HOSTILE_FRAME_W 64
#define HOSTILE_FRAME_H 48
#define HOSTILE_FRAME_SAMPLES 256

enum hostile_frame_base {
	HF_VIDEO,        /* yuv420p 64x48 */
	HF_AUDIO_PLANAR, /* fltp, 2 channels */
	HF_AUDIO_PACKED, /* s16, 2 channels */
};

struct hostile_frame {
	struct sd_frame_meta m;
	struct sd_frame_plane p[SD_FRAME_MAX_PLANES];
	uint32_t meta_len;      /* sizeof(m) + nb_planes planes, unless a
	                           case lies about it */
	uint64_t payload_len;   /* bytes of payload the record carries */
};

struct hostile_frame_case {
	const char *name;
	int base;                              /* HF_* */
	void (*apply)(struct hostile_frame *f);
	int verdict;                           /* HV_OK or HV_CORRUPT */
};

extern const struct hostile_frame_case hostile_frames[];
extern const unsigned hostile_nframes;

/* A valid frame record of the given kind, planes packed in its payload. */
void hostile_frame_base(struct hostile_frame *f, int base);

/* ---- the "wrapped" scenario ---- */

/* The address the fake AVFrame's data pointers hold: canonical, never
 * mapped, so a consumer that follows them dies with SIGSEGV there. */
#define HOSTILE_WILD_ADDR UINT64_C(0x0000414141414000)
#define HOSTILE_WRAPPED_PACKETS 4

#endif
