/*
 * ring_layout.h - the bytes of a ring, as every process sees them.
 *
 * This is ABI: a change to any struct here bumps RING_ABI_VERSION.
 * All integers are in host byte order (the ring never leaves the machine).
 * Fields marked (A) are accessed only with C11 atomics; see docs/RING.md for
 * the ordering each access needs.
 *
 * Data segment:
 *   [0, 4096)                      struct ring_hdr
 *   [hdr.tracks_off, +tracks_size) struct ring_tracks + extradata pool
 *   [hdr.data_off, +data_size)     records, each 64-byte aligned
 *   [hdr.pool_off, +pool_size)     decoded-frame pool (0 bytes unless the
 *                                  stream decodes): pooled RING_REC_FRAME
 *                                  records point into it
 * Cursor pages: one struct ring_page (RING_PAGE_SIZE bytes, its own memfd)
 *   per attached consumer, shared by that consumer, the producer and the
 *   broker only.
 * Admin channel: struct ring_admin_msg datagrams from the broker to the
 *   producer (a SOCK_SEQPACKET socketpair).
 */
#ifndef SHMDEMUX_RING_LAYOUT_H
#define SHMDEMUX_RING_LAYOUT_H

#include <stdatomic.h>
#include <stdint.h>

#include "media.h"

#define RING_MAGIC       UINT64_C(0x31474e52444d4853) /* "SHMDRNG1" */
#define RING_PAGE_MAGIC  UINT64_C(0x3147504444444d53) /* "SMDDPG1" */
#define RING_ABI_VERSION 3u
#define RING_ALIGN       64u
#define RING_HDR_SIZE    4096u
#define RING_MAX_SLOTS   256u
#define RING_MIN_DATA    (64u * 1024u)
#define RING_MAX_DATA    (UINT64_C(1) << 36) /* 64 GiB */
#define RING_MAX_POOL    (UINT64_C(1) << 36) /* 64 GiB */
#define RING_WAIT_SLICE_MS 100

enum ring_mode {
	RING_MODE_LOSSLESS = 0,
	RING_MODE_LIVE = 1,
};

/* Record types. */
enum {
	RING_REC_PAD = 0,    /* filler up to the end of the area; skipped */
	RING_REC_PACKET = 1, /* meta: struct sd_pkt_meta + side data */
	RING_REC_FRAME = 2,  /* meta: struct sd_frame_meta (decode) */
	RING_REC_TRACKS = 3, /* the track table changed; meta: uint32 gen */
};

/* Record flags (generic to the ring). */
enum {
	RING_RF_SYNC = 1u << 0, /* a consumer may start or resync here */
};

/* Stream state (hdr.state). */
enum {
	RING_STATE_STARTING = 0, /* worker not running yet */
	RING_STATE_OPENING = 1,  /* worker is probing the input */
	RING_STATE_RUNNING = 2,  /* track table valid, records flowing */
	RING_STATE_ENDED = 3,    /* terminal; end_* fields are final */
};

/* Why a stream ended (hdr.end_reason, hdr.worker_reason). */
enum {
	SD_END_NONE = 0,
	SD_END_EOF = 1,          /* input fully demuxed */
	SD_END_OPEN_FAILED = 2,  /* libavformat could not open it (averror) */
	SD_END_DEMUX_ERROR = 3,  /* read error mid-stream (averror) */
	SD_END_CRASHED = 4,      /* worker killed by a signal (end_signal) */
	SD_END_SANDBOX = 5,      /* forbidden syscall (SIGSYS) */
	SD_END_MEMORY = 6,       /* memory limit */
	SD_END_WATCHDOG = 7,     /* no progress; killed */
	SD_END_KILLED = 8,       /* killed by an operator */
	SD_END_CLOSED = 9,       /* closed by an operator before EOF */
	SD_END_EXITED = 10,      /* worker exited with an unexpected code */
	SD_END_INPUT_ERROR = 11, /* the source failed (read error, producer died) */
	SD_END_RING_ERROR = 12,  /* record too large for the ring, ... */
	SD_END_EXEC_FAILED = 13, /* the worker could not be started */
	SD_END_SPOOL_LIMIT = 14, /* a non-seekable input needed more spool
	                            than its limit (moov after mdat) */
	SD_END_MAX
};

#define RING_MSG_LEN 160

struct ring_hdr {
	/* identity: written once by ring_create(), validated by ring_map() */
	uint64_t magic;
	uint32_t abi_version;
	uint32_t hdr_size;        /* RING_HDR_SIZE */
	uint64_t total_size;      /* data segment size */
	uint64_t tracks_off;
	uint64_t tracks_size;
	uint64_t data_off;
	uint64_t data_size;       /* multiple of 4096 */
	uint32_t max_consumers;
	uint32_t mode;            /* RING_MODE_* */
	uint32_t wait_consumers;
	uint32_t lag_timeout_ms;
	uint64_t pool_off;        /* data_off + data_size */
	uint64_t pool_size;       /* multiple of 4096; 0 = no frame pool */

	/* producer publish line */
	_Alignas(64) _Atomic uint64_t head;      /* (A) end of last published record */
	_Atomic uint64_t tail;                   /* (A) oldest retained record */
	_Atomic uint64_t last_sync;              /* (A) newest RING_RF_SYNC record,
	                                            UINT64_MAX if none */
	_Atomic uint64_t next_seq;               /* (A) records published */

	/* consumer wake line: the futex word consumers sleep on */
	_Alignas(64) _Atomic uint32_t wake_seq;  /* (A) futex: bumped on publish
	                                            when a consumer's page says
	                                            it sleeps, on state changes
	                                            and evictions */
	uint32_t pad0;

	/* producer wait line: written by the producer, read by consumers */
	_Alignas(64) _Atomic uint32_t prod_waiting; /* (A) producer waits for
	                                               room (about to sleep) */
	uint32_t pad2;
	_Atomic uint64_t prod_want;              /* (A) position the cursor it
	                                            waits for must reach before
	                                            a release wakes it */

	/* slot line: written by the broker */
	_Alignas(64) _Atomic uint32_t slot_gen;  /* (A) futex: bumped after every
	                                            admin message (ADD, DEL) */
	uint32_t pad3;

	/* state and status */
	_Alignas(64) _Atomic uint32_t state;     /* (A) RING_STATE_* */
	uint32_t end_reason;                     /* SD_END_*, final once ENDED */
	int32_t end_exit_code;                   /* worker exit status, or -1 */
	int32_t end_signal;                      /* terminating signal, or 0 */
	int32_t end_averror;                     /* libavformat error, or 0 */
	int32_t end_syscall;                     /* SIGSYS syscall nr, or -1 */
	int32_t worker_pid;
	uint32_t worker_reason;                  /* what the worker itself said */
	int32_t worker_averror;
	uint32_t pad1;
	char end_msg[RING_MSG_LEN];              /* NUL-terminated, untrusted */

	/* counters, written by the producer (relaxed atomics), read by anyone */
	_Alignas(64) _Atomic uint64_t packets;
	_Atomic uint64_t frames;
	_Atomic uint64_t payload_bytes;
	_Atomic uint64_t input_bytes;
	_Atomic uint64_t producer_waits;         /* times the producer blocked */
	_Atomic uint64_t evictions;              /* consumers evicted for lag */
	_Atomic uint64_t corrupt_packets;
	_Atomic uint64_t progress_ns;            /* CLOCK_MONOTONIC of last
	                                            progress (watchdog) */
	_Atomic uint64_t decode_errors;          /* decoder errors counted
	                                            (--decode), not fatal */
	_Atomic uint64_t frames_pooled;          /* video frames published in
	                                            place in the frame pool */
	_Atomic uint64_t frames_copied;          /* video frames copied into
	                                            the ring (no pool slot) */
	_Atomic uint64_t input_held;             /* input bytes the worker has
	                                            read from its pipe and not
	                                            yet demuxed (watchdog) */

	/* evictions, written by the producer: the attach id of the consumer
	 * it evicted from each slot (0: none). A consumer is evicted when the
	 * entry of its slot holds its own id. */
	_Alignas(64) _Atomic uint64_t evicted[RING_MAX_SLOTS]; /* (A) */
};
_Static_assert(sizeof(struct ring_hdr) <= RING_HDR_SIZE, "ring_hdr too big");

/* Track table. Extradata lives in the pool that follows tracks[]; each track
 * names its bytes by (extradata_off, extradata_len) relative to the pool. */
#define RING_MAX_TRACKS 64u
#define RING_EXTRADATA_POOL (1024u * 1024u)

struct ring_tracks {
	_Atomic uint32_t gen;   /* (A) seqlock: odd while being written */
	uint32_t count;         /* tracks valid, <= RING_MAX_TRACKS */
	uint32_t pool_used;     /* bytes of pool in use */
	uint32_t pad;
	char format_name[32];   /* AVInputFormat.name */
	int64_t start_time;     /* AVFormatContext, AV_TIME_BASE units */
	int64_t duration;
	int64_t bit_rate;
	struct sd_track tracks[RING_MAX_TRACKS];
	/* uint8_t pool[RING_EXTRADATA_POOL] follows */
};

#define RING_TRACKS_SIZE \
	((sizeof(struct ring_tracks) + RING_EXTRADATA_POOL + 4095u) & ~4095ull)

/* Record header, at every 64-byte aligned record position. */
#define RING_REC_MAGIC 0x5244u /* "DR" */

struct ring_rec {
	uint16_t magic;         /* RING_REC_MAGIC */
	uint16_t type;          /* RING_REC_* */
	uint16_t flags;         /* RING_RF_* */
	uint16_t pad;
	uint32_t meta_len;      /* bytes of meta after this header */
	uint32_t pad2;
	uint64_t len;           /* whole record, aligned: next = pos + len */
	uint64_t seq;           /* record number */
	uint64_t payload_len;   /* payload after meta (meta padded to 8) */
	uint64_t pos;           /* this record's own position (validation) */
	uint64_t reserved[2];
};
_Static_assert(sizeof(struct ring_rec) == 64, "ring_rec must be 64 bytes");

/* Cursor page: one per attached consumer (not observers), a memfd of
 * RING_PAGE_SIZE bytes sealed against resizing. The broker creates it,
 * fills in the identity, and hands it to that consumer only (read-write)
 * and to the producer (read-only, over the admin channel). The producer
 * treats every value in it as untrusted and reads only pos, sleep_seq and
 * release_seq (futex); the broker only overruns (clamped, for `ls`). */
#define RING_PAGE_SIZE 4096u

struct ring_page {
	/* identity: written by the broker before the fd leaves it */
	uint64_t magic;                      /* RING_PAGE_MAGIC */
	uint32_t abi_version;
	uint32_t slot;                       /* index in hdr.evicted[] */
	uint64_t id;                         /* attach id, > 0, never reused
	                                        in this ring */
	int32_t pid;                         /* diagnostics only */
	uint32_t pad;

	/* consumer line: written by the consumer */
	_Alignas(64) _Atomic uint64_t pos;   /* (A) released up to here (the
	                                        broker sets the start) */
	_Atomic uint64_t overruns;           /* (A) live-mode laps */
	_Atomic uint64_t sleep_seq;          /* (A) RING_SLEEPING | the
	                                        wake_seq value the consumer is
	                                        about to sleep on; 0 awake */
	_Atomic uint32_t release_seq;        /* (A) futex the producer sleeps on
	                                        while this consumer holds it
	                                        back; bumped by the consumer
	                                        (and by the broker on slot
	                                        changes) */
};
_Static_assert(sizeof(struct ring_page) <= RING_PAGE_SIZE, "ring_page");

#define RING_SLEEPING (UINT64_C(1) << 32)

/* Admin channel: one datagram per message, broker to producer. ADD carries
 * the new consumer's page (SCM_RIGHTS, a read-only fd), then, for a
 * consumer that polls, the write end of its wake pipe (one or two fds);
 * DEL carries none. */
#define RING_ADMIN_MAGIC 0x4d445352u /* "RSDM" */

enum {
	RING_ADMIN_ADD = 1,
	RING_ADMIN_DEL = 2,
};

struct ring_admin_msg {
	uint32_t magic;   /* RING_ADMIN_MAGIC */
	uint32_t op;      /* RING_ADMIN_* */
	uint32_t slot;    /* < hdr.max_consumers */
	uint32_t pad;
	uint64_t id;      /* the attach id (ring_page.id) */
	uint64_t start;   /* ADD: the tail when the page was made; the
	                     consumer's cursor never starts below it */
};

#endif
