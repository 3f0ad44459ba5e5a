/*
 * internal.h - what the client library's files share. Not installed.
 */
#ifndef SHMDEMUX_INTERNAL_H
#define SHMDEMUX_INTERNAL_H

#include <limits.h>
#include <stdint.h>

#include <bsd/string.h>

#include "proto.h"
#include "ring_consumer.h"
#include "shmdemux.h"

struct shmdemux_conn {
	int fd;
	uint32_t next_id;          /* request ids, echoed by replies */
	char path[PATH_MAX];
	char last_error[CTL_MSG_LEN];
	int autostarted;           /* this connect started the broker */
};

/* Connect a new handle to path (already resolved), without autostart. */
int conn_open(shmdemux_conn **out, const char *path);
/* Send a request (hdr filled here) with optional fds and receive its
 * reply into reply (CTL_MAX_MSG bytes). A CTL_ERROR reply is turned into
 * its code, its message kept in last_error. rfds/nrfds may be NULL when no
 * fd is expected (any received is closed). Returns the reply type (> 0) or
 * a negative code: SHMDEMUX_EREFUSED when the broker turned the connection
 * away (its reason in last_error), SHMDEMUX_EBROKER when it is gone. */
int conn_request(shmdemux_conn *c, void *req, uint16_t type,
		 const int *fds, int nfds, void *reply, int *rfds, int *nrfds);
/* Receive one more reply to the current request (LIST). Same returns. */
int conn_recv(shmdemux_conn *c, void *reply, int *rfds, int *nrfds);
/* 1 if the broker closed the connection (checked without blocking). */
int conn_broker_gone(const shmdemux_conn *c);

/* Start `shmdemuxd --daemon` on path; returns 0 once it listens, else
 * -errno with why in err (the broker's own last line when it said one). */
int autostart_broker(const char *path, char *err, size_t errcap);

/* Track i of the stream's current table copy in *k (its extradata, a
 * pointer into that copy or NULL, in *extradata). Returns 0, -EINVAL (i
 * out of range) or SHMDEMUX_ECORRUPT (the track failed validation). */
int stream_track(shmdemux_stream *s, int i, const struct sd_track **k,
		 const uint8_t **extradata);

/* Validate a RING_REC_FRAME record into a view (frame.c). pool is the
 * ring's frame pool (pool_size bytes), NULL where pooled frames are not
 * allowed (live mode, or no pool). The track index is the caller's to check
 * against its table. Returns 0 or SHMDEMUX_ECORRUPT. */
int frame_parse(const struct ring_rd *v, const uint8_t *pool,
		uint64_t pool_size, struct shmdemux_frame *f);

/* Frames lent as AVFrames (stream.c). A hold keeps the record of the
 * current frame view from being reclaimed, and the stream object (mapping
 * and lifeline) alive, until stream_unhold(), which any thread may call. */
struct frame_hold;
/* The current frame view, or NULL when none is held. */
const struct shmdemux_frame *stream_frame_view(shmdemux_stream *s);
int stream_is_live(const shmdemux_stream *s);
/* 0 if the current view is intact, <0 if it may have been overwritten. */
int stream_view_valid(const shmdemux_stream *s);
/* Hold the current view's record. Returns 0, -ENOENT (no frame view) or
 * -ENOBUFS (SHMDEMUX_MAX_HELD_FRAMES already held). */
int stream_hold(shmdemux_stream *s, struct frame_hold **out);
void stream_unhold(struct frame_hold *h);

/* ---- validate.c: the meaning of what the worker wrote ---- */

/* Make s (a field of cap bytes) NUL-terminated within the field and valid
 * UTF-8: each invalid byte becomes U+FFFD, and what no longer fits is cut
 * at a character boundary. */
void valid_string(char *s, size_t cap);
/* Check the private copy of a track table, in place: SHMDEMUX_ECORRUPT if
 * its structure is broken (count, pool, extradata bounds); else 0, with
 * ok[i] 1 for each track that holds only values a demuxer produces and 0
 * for a refused one, values out of an enum's range made unspecified,
 * strings made safe and codec_name our own name for the codec id. */
int valid_table(struct ring_tracks *t, size_t bufsize, uint8_t *ok);
/* 0, or -ENOTSUP for a codec id that names no bitstream to decode (none,
 * or one of libavformat's pseudo-codecs). */
int valid_decodable(const struct sd_track *k);
/* Packet flags a reader may see: KEY, CORRUPT, DISCARD, DISPOSABLE. */
uint32_t valid_pkt_flags(uint32_t flags);
/* 1 if a side data entry of this type and size may reach a consumer (a
 * type a demuxer emits, the size that type has); with d not NULL, also
 * the contents FFmpeg would parse. Bytes in the ring can change after the
 * check: what goes to FFmpeg is checked again on a private copy. */
int valid_side_data(uint32_t type, const uint8_t *d, uint32_t size);
/* 1 if a w x h picture is within av_image_check_size()'s bound (checked
 * without its log line). */
int valid_image_size(int w, int h);
/* Enum values of a frame out of range made unspecified, rationals safe. */
void valid_frame_fix(struct shmdemux_frame *f);
/* 1 if an audio frame's channels, samples and rate are in range. */
int valid_frame_audio_limits(const struct shmdemux_frame *f);

/* Map a ring error (-EPIPE excluded) to the public code. */
int err_from_ring(int rc);

#endif
