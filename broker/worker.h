/*
 * worker.h - internals of shmdemux-worker, the per-stream demux process.
 *
 * worker.c        startup (argv, parent-death, title, signals), main loop,
 *                 exit status
 * worker_io.c     the custom AVIOContext over fd 0 (read, optional seek)
 * worker_tracks.c the track table in the ring and its TRACKS records
 * worker_pkt.c    one AVPacket -> one RING_REC_PACKET record, pacing
 * worker_spool.c  non-seekable MP4/MOV with the moov at the end
 * worker_decode.c --decode: packets -> libavcodec -> RING_REC_FRAME records
 * worker_pool.c   video pictures decoded in the ring's frame pool
 *                 (worker_pool.h)
 */
#ifndef SHMDEMUX_WORKER_H
#define SHMDEMUX_WORKER_H

#include <signal.h>
#include <stdint.h>
#include <time.h>

#include <libavformat/avformat.h>

#include "clock.h"
#include "ring_producer.h"

/* Set by the SIGTERM handler; the AVIO interrupt callback and the ring wait
 * loops return as soon as they see it. */
extern volatile sig_atomic_t worker_stop;

#define WORKER_SPOOL_DEFAULT (UINT64_C(512) << 20)

/* Bytes of a non-seekable input read ahead of libavformat: the prefix the
 * box walk read, or the whole input (complete) when it must be seekable. */
struct worker_spool {
	uint8_t **chunks;           /* 1 MiB each */
	uint64_t nchunks;
	uint64_t len;               /* bytes held */
	uint64_t pos;               /* libavformat's read position */
	uint64_t limit;             /* --spool-limit */
	int complete;               /* len is the whole input */
};

struct worker {
	/* from argv */
	long stream_id;
	int seekable;
	int realtime;
	int verbose;
	const char *format;
	const char *label;          /* shown by ps: the input's name */
	int64_t probesize;          /* -1: libavformat's default */
	int64_t analyzeduration;    /* -1: libavformat's default */
	AVDictionary *demux_opts;   /* --demux-opt KEY=VALUE */
	uint64_t mem_limit;         /* --mem-limit: address space, 0 = none */
	const char *format_whitelist; /* --format-whitelist, NULL = default */
	int fault;                  /* WORKER_FAULT_*, test builds only */
	uint64_t fault_after;       /* packets published before the fault */
	uint64_t fault_seed;        /* --fault KIND=SEED (hostile kinds) */
	struct worker_spool spool;
	/* pipe read-ahead (worker_io.c): [ra_off, ra_len) of ra_buf unread */
	uint8_t *ra_buf;
	size_t ra_off, ra_len;
	unsigned decode;            /* --decode: WORKER_DECODE_* */
	int decode_threads;         /* --decode-threads, 0 = libavcodec auto */
	int decode_strict;          /* --decode-strict: an error is fatal */

	struct ring *ring;
	int admin_closed;           /* the broker closed the admin channel */
	AVFormatContext *fmt;
	AVIOContext *avio;
	struct worker_dec *dec;     /* decoders (worker_decode.c), or NULL */
	char decode_msg[RING_MSG_LEN]; /* why decoding stopped the stream */

	/* track table state */
	unsigned nb_published;      /* AVStreams described in the table */
	uint32_t track_gen;         /* generation of the last table written */
	int sync_track;             /* RING_RF_SYNC on its keyframes; -1 any */
	int overflow_logged;        /* more than RING_MAX_TRACKS streams */
	uint64_t progress_pkts;     /* packets published, for progress_ns */

	uint64_t published;         /* packets published so far */

	/* --realtime pacing */
	int64_t rt_base_us;         /* first dts, AV_TIME_BASE units */
	int64_t rt_start_ns;        /* CLOCK_MONOTONIC when it was published */
};

enum {
	WORKER_DECODE_VIDEO = 1u << 0,
	WORKER_DECODE_AUDIO = 1u << 1,
};

/* "shmdemux-worker[stream N]: ..." on stderr. */
void worker_log(const struct worker *w, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Wait until fd (if >= 0) is readable or the timeout (NULL: none) passes.
 * The ring's admin channel is watched too: messages that arrive meanwhile
 * are taken (ring_admin_poll), so a consumer that left stops holding the
 * ring and the broker's channel drains; that returns 0. Returns 1 ready,
 * 0 timeout, admin message or other signal, -EINTR when a stop was
 * requested (checked without a race against SIGTERM), or -errno. */
int worker_wait(struct worker *w, int fd, const struct timespec *timeout);

/* A spare's wait put to use: FFmpeg's one-time set-up (probes, decoder
 * tables) on bytes of its own, before any input (worker_warm.c). */
void worker_warm(void);

/* The flow, top-down: source (worker_input.c) -> spool (worker_spool.c)
 * -> AVIOContext (worker_io.c) -> demux (worker.c) -> (decode:
 * worker_decode.c) -> publish (worker_pkt.c, worker_tracks.c).
 * libavformat reads through the first three, each calling only those
 * before it; worker.c's loop hands each packet to the decoder or the
 * publisher, which writes records. */

/* ---- worker_input.c: fd 0 ---- */

/* Make a pipe input non-blocking, before the sandbox forbids F_SETFL.
 * Returns 0 or -errno. */
int worker_input_prepare(const struct worker *w);
/* Read up to size bytes of fd 0 (waiting, honouring the stop flag) and
 * count them; a pipe through its 256 KiB read-ahead. Returns bytes,
 * AVERROR_EOF, AVERROR_EXIT on stop, or another
 * negative AVERROR. */
int worker_input_read(struct worker *w, uint8_t *buf, int size);
/* Free the read-ahead; safe when there is none. */
void worker_input_free(struct worker *w);

/* ---- worker_spool.c: a non-seekable MP4 with its moov last ---- */

/* Walk the top-level boxes of a non-seekable input, spooling what is
 * read; spool all of it when an mdat precedes the moov (see
 * worker_spool.c). Returns 1 spooled whole, 0 not needed, AVERROR(EFBIG)
 * past the limit, or another negative AVERROR. */
int worker_spool_prepare(struct worker *w);
/* libavformat's read and seek over the spool (then fd 0 when incomplete). */
int worker_spool_read(struct worker *w, uint8_t *buf, int size);
int64_t worker_spool_seek(struct worker *w, int64_t offset, int whence);
void worker_spool_free(struct worker_spool *sp);

/* ---- worker_io.c: what libavformat reads through ---- */

/* Create the AVIOContext reading the spool or fd 0 (seeking too when
 * w->seekable or the spool holds the whole input) and attach it to
 * w->fmt. Returns 0 or a negative AVERROR. */
int worker_io_open(struct worker *w);
/* Free the context, its (possibly reallocated) buffer and the pipe
 * read-ahead; safe when none exists. */
void worker_io_close(struct worker *w);

/* Rewrite the track table from w->fmt and publish a RING_REC_TRACKS record
 * carrying the new generation. Returns 0, a negative errno from the ring, or
 * -EINTR when a stop was requested while waiting for room. */
int worker_tracks_publish(struct worker *w);

/* Wait for room (bounded slices, honouring the stop flag) and reserve a
 * record. Same returns as ring_reserve() plus -EINTR on stop. */
int worker_reserve(struct worker *w, uint32_t meta_len, uint64_t payload_len,
		   struct ring_wr *wr);

/* A demuxed packet's way in: the track table republished first when the
 * packet belongs to a stream not described yet, then --realtime pacing.
 * Returns 1 to go on (decode or publish it), 0 to drop it (a track the
 * table cannot describe), or a negative errno (-EINTR on stop). */
int worker_pkt_admit(struct worker *w, const AVPacket *pkt);
/* Publish pkt as one PACKET record. Returns 0 or a negative errno (-EINTR
 * on stop, -EMSGSIZE when it can never fit). */
int worker_pkt_publish(struct worker *w, const AVPacket *pkt);
/* An admitted packet is through (published or decoded): its counters and
 * the watchdog's progress clock. */
void worker_pkt_count(struct worker *w, const AVPacket *pkt);

/* Test builds (SHMDEMUX_FAULT_INJECTION): --fault KIND[=SEED]
 * --fault-after N. */
enum {
	WORKER_FAULT_NONE = 0,
	WORKER_FAULT_SEGV,    /* write through NULL */
	WORKER_FAULT_ABORT,   /* abort() */
	WORKER_FAULT_KILL,    /* SIGKILL itself */
	WORKER_FAULT_ALLOC,   /* allocate and touch memory without bound */
	WORKER_FAULT_SPIN,    /* busy loop, no progress */
	WORKER_FAULT_SYSCALL, /* a call outside the seccomp allow-list */
	WORKER_FAULT_EXIT,    /* exit status 3 */
	WORKER_FAULT_READFD,  /* read fds 1, 2, 3: none is its input */
	WORKER_FAULT_MMAPEXEC,  /* map memory executable */
	WORKER_FAULT_MPROTEXEC, /* make memory executable */
	WORKER_FAULT_FLOOD,   /* flood stderr, then demux on */
	/* a compromised worker (worker_hostile.c): scripted records ... */
	WORKER_FAULT_WRAPPED,  /* wrapped_avframe + TRUSTED wild AVFrames */
	WORKER_FAULT_TRACKS,   /* hostile track table */
	WORKER_FAULT_SIDEDATA, /* hostile side data and packet metas */
	WORKER_FAULT_FRAMES,   /* hostile FRAME records */
	/* ... or damage to the ring while the input is demuxed */
	WORKER_FAULT_RANDOM,   /* random bytes */
	WORKER_FAULT_STRUCT,   /* field by field */
};

#ifdef SHMDEMUX_FAULT_INJECTION
/* Parse "KIND" or "KIND=SEED" into w->fault and w->fault_seed. Returns 0
 * or -1. */
int worker_fault_parse(struct worker *w, const char *arg);
const char *worker_fault_name(int kind);
/* Called before each packet is read once fault_after packets were
 * published. Returns -1 to go on demuxing, else the worker's exit
 * status (a one-shot fault that did not take, or the end of a scripted
 * hostile scenario). */
int worker_fault_step(struct worker *w);
/* worker_hostile.c: write the scripted scenario, return the exit status */
int worker_hostile_script(struct worker *w);
/* worker_hostile.c: damage the ring a little (or not, by chance) */
void worker_hostile_corrupt(struct worker *w);
#endif
/* Open a decoder for every track --decode chose (a track without a usable
 * decoder stays packets) and check the ring can hold two of the largest
 * frames. Returns 0, a negative AVERROR, or -ENOSPC with w->decode_msg
 * saying which size is needed. No-op without --decode. */
int worker_decode_open(struct worker *w);
/* Decode pkt if its track is decoded, publishing the frames it completes.
 * Returns 1 (consumed: do not publish the packet), 0 (not decoded), or a
 * negative errno / AVERROR; -EPROTO with w->decode_msg set when a decoder
 * error ends the stream (--decode-strict). */
int worker_decode_packet(struct worker *w, const AVPacket *pkt);
/* At EOF: drain every decoder and publish the frames it still holds. */
int worker_decode_flush(struct worker *w);
void worker_decode_close(struct worker *w);

/* worker_args.c: the command line into w (-1: a bad or unknown option,
 * said on stderr), and the usage text. */
int worker_parse_args(struct worker *w, int argc, char **argv);
void worker_usage(void);

#endif
