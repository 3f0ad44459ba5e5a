/*
 * internal.h - what the client library's files share. Not installed.
 */
#ifndef SHMDEMUX_INTERNAL_H
#define SHMDEMUX_INTERNAL_H

#include <limits.h>
#include <stdint.h>

#include <bsd/string.h>

#include "proto.h"
#include "ring.h"
#include "shmdemux.h"

struct shmdemux_conn {
	int fd;
	uint32_t next_id;          /* request ids, echoed by replies */
	char path[PATH_MAX];
	char last_error[CTL_MSG_LEN];
};

/* Connect a new handle to path (already resolved), without autostart. */
int conn_open(shmdemux_conn **out, const char *path);
/* Send a request (hdr filled here) with optional fds and receive its
 * reply into reply (CTL_MAX_MSG bytes). A CTL_ERROR reply is turned into
 * its code, its message kept in last_error. rfds/nrfds may be NULL when no
 * fd is expected (any received is closed). Returns the reply type (> 0) or
 * a negative code. */
int conn_request(shmdemux_conn *c, void *req, uint16_t type,
		 const int *fds, int nfds, void *reply, int *rfds, int *nrfds);
/* Receive one more reply to the current request (LIST). Same returns. */
int conn_recv(shmdemux_conn *c, void *reply, int *rfds, int *nrfds);
/* 1 if the broker closed the connection (checked without blocking). */
int conn_broker_gone(const shmdemux_conn *c);

/* Start the broker for path and wait until it listens. */
int autostart_broker(const char *path);

/* The validated track i of the stream's current table copy (extradata
 * pointer into that copy, NULL if none), or NULL if i is out of range. */
const struct sd_track *stream_track(shmdemux_stream *s, int i,
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

/* Map a ring error (-EPIPE excluded) to the public code. */
int err_from_ring(int rc);

#endif
