/*
 * shmdemux.h - client library of the shmdemux broker.
 *
 * A consumer connects to the broker's control socket, opens sources (the
 * broker starts a sandboxed demux worker per source) and attaches to
 * streams. An attached stream is a read-only mapping of the stream's
 * shared-memory ring: packets are read in place, with no copy.
 *
 * Conventions:
 *  - Every function returning int returns 0 (or a documented non-negative
 *    value) on success, else a negative code: either a negative errno value
 *    (-ENOMEM, -EINVAL, -ENOENT, ...) or one of the SHMDEMUX_E* codes below,
 *    which live below -4096 so they never collide with errno values.
 *    shmdemux_strerror() names both kinds.
 *  - The library never prints, never exits and never raises signals; it
 *    does not install signal handlers. Sockets are close-on-exec.
 *  - A handle is used by one thread at a time; distinct handles are
 *    independent.
 *  - Everything read from a ring is validated before it is returned: a
 *    corrupt or hostile ring yields SHMDEMUX_ECORRUPT, never an out-of-bounds
 *    access. The worker that writes a ring parses hostile input and is
 *    assumed compromised by it: values are checked for meaning against this
 *    process's own FFmpeg (codec ids, types, formats, sizes, time bases,
 *    side data), not only for bounds; docs/CLIENT.md lists every check.
 *
 * Link with -lshmdemux (pkg-config shmdemux). The AVCodecParameters and
 * AVPacket helpers need libavcodec in the caller only if it uses them.
 */
#ifndef SHMDEMUX_H
#define SHMDEMUX_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct AVCodecParameters;
struct AVPacket;

/* What the library exports: it is built with hidden visibility, and only
 * the functions declared here with SHMDEMUX_API are seen outside it, in
 * libshmdemux.so as in libshmdemux.a (tests/test_exported_symbols.sh). */
#if defined(__GNUC__) || defined(__clang__)
#define SHMDEMUX_API __attribute__((visibility("default")))
#else
#define SHMDEMUX_API
#endif

typedef struct shmdemux_conn shmdemux_conn;
typedef struct shmdemux_stream shmdemux_stream;

/* ---- version ---- */

/* The version of this header (CMake's project version is read from here). */
#define SHMDEMUX_VERSION_MAJOR 0
#define SHMDEMUX_VERSION_MINOR 2
#define SHMDEMUX_VERSION_PATCH 0
/* The library's ABI: its soname is libshmdemux.so.SHMDEMUX_ABI_VERSION.
 * Raised on any incompatible change of this header. */
#define SHMDEMUX_ABI_VERSION 0

/* The version of the library linked at run time, "MAJOR.MINOR.PATCH";
 * static storage. */
SHMDEMUX_API
const char *shmdemux_version(void);
/* Its ABI version; a program compiled against this header may compare it
 * with SHMDEMUX_ABI_VERSION. */
SHMDEMUX_API
int shmdemux_abi_version(void);

/* ---- error codes (negative, below -4096) ---- */

enum {
	SHMDEMUX_EOF = -4201,       /* the stream ended cleanly: all read */
	SHMDEMUX_EOPEN = -4202,     /* the worker could not open the input */
	SHMDEMUX_EDEMUX = -4203,    /* demux error mid-stream */
	SHMDEMUX_ECRASHED = -4204,  /* the worker died from a signal */
	SHMDEMUX_ESANDBOX = -4205,  /* the worker made a forbidden syscall */
	SHMDEMUX_EMEMORY = -4206,   /* the worker hit its memory limit */
	SHMDEMUX_EWATCHDOG = -4207, /* the worker made no progress; killed */
	SHMDEMUX_EKILLED = -4208,   /* killed by an operator */
	SHMDEMUX_ECLOSED = -4209,   /* closed by an operator before its end */
	SHMDEMUX_EEXITED = -4210,   /* the worker exited unexpectedly */
	SHMDEMUX_EINPUT = -4211,    /* the source failed (read error, ...) */
	SHMDEMUX_ERING = -4212,     /* a packet or frame did not fit the ring */
	SHMDEMUX_EEXEC = -4213,     /* the worker could not be started */
	SHMDEMUX_EUNKNOWN = -4214,  /* ended for a reason this library does
	                               not know */
	SHMDEMUX_ESPOOL = -4215,    /* a non-seekable input needed more
	                               spool than its limit (moov at end) */
	SHMDEMUX_EOVERRUN = -4220,  /* live mode: the reader was lapped and
	                               lost packets; reading continues at a
	                               keyframe (not fatal) */
	SHMDEMUX_EEVICTED = -4221,  /* lossless mode: the reader fell too far
	                               behind and was detached (fatal) */
	SHMDEMUX_ECORRUPT = -4222,  /* the ring or a record failed validation */
	SHMDEMUX_EABI = -4223,      /* ring or protocol version mismatch */
	SHMDEMUX_EBROKER = -4224,   /* the broker connection is gone */
	SHMDEMUX_EUNTRUSTED = -4225, /* the socket is served by another user,
	                               or its directory is not private to us:
	                               refused before anything was sent
	                               (shmdemux_connect_error() says why) */
	SHMDEMUX_EUNSEALED = -4226, /* the ring's data segment handed over at
	                               attach is not sealed against writes
	                               and resizing, or not of the announced
	                               size: refused (a foreign or broken
	                               broker) */
	SHMDEMUX_EREFUSED = -4227,  /* the broker turned the connection away
	                               (at its --max-connections, or out of
	                               memory): the first request on it fails
	                               so, its cause in the connection's last
	                               error; the broker still runs */
};

/* A static, thread-safe description of any code this library returns:
 * ours, or an errno value (strerror text). Never NULL. */
SHMDEMUX_API
const char *shmdemux_strerror(int code);
/* 1 if code is a terminal status of a stream (SHMDEMUX_EOF ..
 * SHMDEMUX_EUNKNOWN, SHMDEMUX_ESPOOL), else 0. */
SHMDEMUX_API
int shmdemux_is_end(int code);

/* ---- connection ---- */

/* If nobody listens on the socket, start a per-user broker (as tmux or
 * gpg-agent do): `shmdemuxd --daemon --socket PATH --idle-exit 600`, the
 * binary being $SHMDEMUX_BROKER, else shmdemuxd next to the calling
 * executable, else shmdemuxd from $PATH. Its stdio is /dev/null. */
#define SHMDEMUX_CONNECT_AUTOSTART 0x1u

/* Connect to the broker at socket_path (NULL: $SHMDEMUX_SOCKET, else
 * shmdemux.sock in the private directory $XDG_RUNTIME_DIR/shmdemux, else
 * /tmp/shmdemux-<uid>). Whoever listens must run as the caller's effective
 * uid or as root (SO_PEERCRED, checked before a byte is sent); the default
 * directory, when it exists, must be a real directory of the caller's,
 * writable by nobody else.
 * On success *conn is a new handle owned by the caller (free it with
 * shmdemux_disconnect()). On failure *conn is NULL and the return is
 * -ENOENT / -ECONNREFUSED (no broker), SHMDEMUX_EUNTRUSTED (another user's
 * socket or directory), -ENAMETOOLONG, -ENOMEM, or another -errno from
 * socket/connect/spawn. A broker that turns the connection away (too many
 * connections) still lets the connect succeed: the first request then
 * fails with SHMDEMUX_EREFUSED, the broker's reason in
 * shmdemux_conn_last_error(). */
SHMDEMUX_API
int shmdemux_connect(shmdemux_conn **conn, const char *socket_path,
		     unsigned flags);
/* One line saying why the calling thread's last shmdemux_connect() (or
 * shmdemux_attach(), which connects too) was refused with
 * SHMDEMUX_EUNTRUSTED: whose process answered where, or what is wrong with
 * the directory; or why a broker it had to start did not start (its
 * binary not found, or the broker's own error: a pidfile or directory it
 * cannot write, ...); "" otherwise. Thread-local, valid until the thread's
 * next connect. */
SHMDEMUX_API
const char *shmdemux_connect_error(void);
/* Close the connection and free it. NULL-safe; sets *conn to NULL. Streams
 * attached through it are not affected (each has its own connection). */
SHMDEMUX_API
void shmdemux_disconnect(shmdemux_conn **conn);
/* The broker's message for the last request that failed on this
 * connection ("" if none). Owned by conn, valid until its next request. */
SHMDEMUX_API
const char *shmdemux_conn_last_error(const shmdemux_conn *conn);
/* 1 if the shmdemux_connect() that made conn started the broker
 * (SHMDEMUX_CONNECT_AUTOSTART), 0 if the broker was running (since 0.2). */
SHMDEMUX_API
int shmdemux_conn_autostarted(const shmdemux_conn *conn);
/* Ask the broker to stop if nothing would be lost: no stream, no other
 * connection (decided by the broker in one step). A program that started
 * a broker for a request that failed leaves none behind this way. Returns
 * 0 (the broker stops), -EBUSY (in use: it stays), SHMDEMUX_EBROKER
 * (since 0.2). */
SHMDEMUX_API
int shmdemux_broker_quit_idle(shmdemux_conn *conn);
/* The socket path this connection uses. Owned by conn. */
SHMDEMUX_API
const char *shmdemux_conn_socket_path(const shmdemux_conn *conn);

/* ---- opening sources ---- */

enum {
	SHMDEMUX_MODE_LOSSLESS = 0, /* the worker waits for slow readers */
	SHMDEMUX_MODE_LIVE = 1,     /* the worker never waits; laps readers */
};

#define SHMDEMUX_WAIT_DEFAULT UINT32_MAX

/* shmdemux_open_opts.decode */
#define SHMDEMUX_DECODE_VIDEO 0x1u
#define SHMDEMUX_DECODE_AUDIO 0x2u

struct shmdemux_open_opts {
	const char *name;          /* unique stream name, or NULL */
	int mode;                  /* SHMDEMUX_MODE_* (default lossless) */
	uint64_t ring_size;        /* record area bytes; 0 = broker default */
	uint32_t wait_consumers;   /* hold the stream's start until this many
	                              readers attached; SHMDEMUX_WAIT_DEFAULT:
	                              1 in lossless mode, 0 in live mode */
	uint32_t lag_timeout_ms;   /* lossless: evict a stuck reader after
	                              this long; 0 = broker default */
	const char *format;        /* forced input format (e.g. "mpegts"), or
	                              NULL to probe */
	int64_t probesize;         /* bytes; 0 = libavformat default */
	int64_t analyzeduration;   /* microseconds; 0 = default */
	const char *const *demux_opts; /* NULL-terminated "key=value" list of
	                                  demuxer options (at most 64), or
	                                  NULL */
	int realtime;              /* publish at the media's pace (-re) */
	int noseek;                /* read a regular file as a byte stream,
	                              as a pipe is read */
	uint64_t mem_limit;        /* the worker's address-space limit in
	                              bytes; 0 = the broker's default */
	uint64_t spool_limit;      /* bytes a non-seekable input may be
	                              spooled when the demuxer must seek
	                              (MP4 with the moov at the end); 0 =
	                              default */
	uint32_t watchdog_ms;      /* kill a worker making no progress this
	                              long; 0 = the broker's default */
	unsigned decode;           /* SHMDEMUX_DECODE_* tracks decoded in the
	                              worker (frames instead of packets) */
	unsigned decode_threads;   /* decoder threads; 0 = suited to the
	                              machine */
	int decode_strict;         /* a decoding error ends the stream */
	const char *format_whitelist; /* demuxers allowed ("mov,matroska");
	                                 NULL = the worker's default list */
	const char *label;         /* source label shown by `ls` for fd and
	                              push sources; NULL = "fd"/"push" */
};

/* Fill opts with the defaults above. */
SHMDEMUX_API
void shmdemux_open_opts_init(struct shmdemux_open_opts *opts);

/* Ask the broker to open the file at path (it opens the file itself, so
 * the path is resolved by the broker; pass an absolute path). opts may be
 * NULL for defaults. On success *stream_id is the new stream's id. On
 * failure *stream_id is untouched; the broker's reason is in
 * shmdemux_conn_last_error(). Returns 0, -EINVAL (strings too long or
 * options too large), -ENAMETOOLONG, SHMDEMUX_EBROKER, or the broker's
 * negative code (e.g. -ENOENT, -EEXIST for a duplicate name). */
SHMDEMUX_API
int shmdemux_open_path(shmdemux_conn *conn, const char *path,
		       const struct shmdemux_open_opts *opts,
		       uint32_t *stream_id);
/* Same, reading from fd (pipe, socket, fifo or file), which is passed to
 * the broker with SCM_RIGHTS; the caller keeps its own fd and may close it
 * afterwards. */
SHMDEMUX_API
int shmdemux_open_fd(shmdemux_conn *conn, int fd,
		     const struct shmdemux_open_opts *opts,
		     uint32_t *stream_id);
/* Same, with the bytes pushed by the caller (the seed's async byte
 * stream, across processes). On success *push_fd is the write end of the
 * stream's input pipe, owned by the caller, and conn becomes the stream's
 * producer connection: keep it open until the input has ended.
 *
 * Writing: write(2) the container bytes to *push_fd in chunks of any size.
 * The pipe is the backpressure: a blocking write waits while the worker
 * (or, in lossless mode, a slow reader behind it) has not caught up. The
 * fd may be set O_NONBLOCK (fcntl F_SETFL); a write then fails with EAGAIN
 * when the pipe is full, and poll(2) POLLOUT says when it has room again,
 * so an event loop can feed it. A write failing with EPIPE (SIGPIPE unless
 * ignored) means the stream has already ended.
 *
 * Ending: shmdemux_push_end() for a clean end of input (EOF), or
 * shmdemux_push_abort() when the source failed. Until one of them, the
 * broker keeps the pipe open, so a producer that dies, or closes conn,
 * mid-stream ends the stream with SHMDEMUX_EINPUT (ls: input-error) once
 * the bytes already pushed are demuxed, never with a clean EOF. */
SHMDEMUX_API
int shmdemux_open_push(shmdemux_conn *conn,
		       const struct shmdemux_open_opts *opts,
		       uint32_t *stream_id, int *push_fd);
/* Close *push_fd (set to -1) and tell the broker the input ended cleanly:
 * the stream ends with SHMDEMUX_EOF after the last pushed byte. Returns 0,
 * -EPERM (conn is not the stream's producer), -EALREADY (the input has
 * already ended), -ENOENT, or SHMDEMUX_EBROKER. *push_fd is closed in
 * every case. */
SHMDEMUX_API
int shmdemux_push_end(shmdemux_conn *conn, uint32_t stream_id,
		      int *push_fd);
/* Same, for an input that failed: error is a positive errno value naming
 * why (e.g. EIO; 0 is taken as EIO). The bytes already pushed are still
 * demuxed; the stream then ends with SHMDEMUX_EINPUT. */
SHMDEMUX_API
int shmdemux_push_abort(shmdemux_conn *conn, uint32_t stream_id,
			int *push_fd, int error);

/* ---- admin ---- */

enum {
	SHMDEMUX_STATE_STARTING = 0, /* the worker is not running yet */
	SHMDEMUX_STATE_OPENING = 1,  /* the worker is probing the input */
	SHMDEMUX_STATE_RUNNING = 2,  /* tracks known, packets flowing */
	SHMDEMUX_STATE_ENDED = 3,    /* terminal */
};

/* Why a stream ended (same values as the ring's end reasons). */
enum {
	SHMDEMUX_END_NONE = 0,
	SHMDEMUX_END_EOF = 1,
	SHMDEMUX_END_OPEN_FAILED = 2,
	SHMDEMUX_END_DEMUX_ERROR = 3,
	SHMDEMUX_END_CRASHED = 4,
	SHMDEMUX_END_SANDBOX = 5,
	SHMDEMUX_END_MEMORY = 6,
	SHMDEMUX_END_WATCHDOG = 7,
	SHMDEMUX_END_KILLED = 8,
	SHMDEMUX_END_CLOSED = 9,
	SHMDEMUX_END_EXITED = 10,
	SHMDEMUX_END_INPUT_ERROR = 11,
	SHMDEMUX_END_RING_ERROR = 12,
	SHMDEMUX_END_EXEC_FAILED = 13,
	SHMDEMUX_END_SPOOL_LIMIT = 14,
};

/* Short lowercase names ("running", "eof", "crashed", ...). Never NULL. */
SHMDEMUX_API
const char *shmdemux_state_name(int state);
SHMDEMUX_API
const char *shmdemux_end_reason_name(int reason);
/* The SHMDEMUX_E* code for an end reason (SHMDEMUX_EOF for END_EOF). */
SHMDEMUX_API
int shmdemux_end_code(int reason);

struct shmdemux_stream_info {
	uint32_t id;
	int state;               /* SHMDEMUX_STATE_* */
	int end_reason;          /* SHMDEMUX_END_* */
	int exit_code;           /* worker exit status, -1 if none */
	int signal;              /* signal that ended the worker, or 0 */
	int worker_pid;          /* 0 once reaped */
	int mode;                /* SHMDEMUX_MODE_* */
	uint32_t tracks;
	uint32_t consumers;      /* attached readers */
	uint32_t fill_permille;  /* ring fill */
	uint64_t packets;
	uint64_t bytes;          /* payload bytes published */
	uint64_t input_bytes;
	uint64_t drops;          /* overruns of live readers + evictions */
	uint64_t uptime_ms;      /* from open to the end, or to now */
	uint64_t ring_size;
	char name[64];
	char source[256];
	char end_msg[160];
	/* since 0.2 (appended: the library fills this struct, callers only
	 * read it) */
	unsigned flags;          /* SHMDEMUX_INFO_* */
	uint64_t frames;         /* decoded frames published (--decode) */
	uint64_t lag_bytes;      /* unread bytes of the slowest reader */
	uint64_t worker_cpu_ms;  /* the worker's CPU time, user + system */
	uint64_t worker_rss;     /* its resident bytes (ring pages it has
	                            touched included); 0 once it is gone */
	uint64_t ended_ago_ms;   /* time since the end; 0 while running */
};

/* shmdemux_stream_info.flags */
enum {
	/* no longer in the broker's table (closed, or ended and reaped
	 * after its retention time); listed by SHMDEMUX_LIST_ENDED only */
	SHMDEMUX_INFO_REAPED = 1,
	/* ended and read: its ring is released, the counters are final and
	 * attaching fails with -ENODATA */
	SHMDEMUX_INFO_RELEASED = 2,
};

/* shmdemux_list_flags() flags */
enum {
	/* after the broker's table, the streams it reaped lately (the
	 * latest 64, oldest first), SHMDEMUX_INFO_REAPED set */
	SHMDEMUX_LIST_ENDED = 1,
};

/* Call cb once per stream the broker knows (in its order), with info
 * valid only during the call. A non-zero return from cb stops the walk
 * (the remaining replies are still drained) and is returned. Returns 0,
 * cb's value, SHMDEMUX_EBROKER, or the broker's code. */
SHMDEMUX_API
int shmdemux_list(shmdemux_conn *conn,
		  int (*cb)(const struct shmdemux_stream_info *info, void *ctx),
		  void *ctx);
/* shmdemux_list() with SHMDEMUX_LIST_* flags (since 0.2). -EINVAL for an
 * unknown flag. */
SHMDEMUX_API
int shmdemux_list_flags(shmdemux_conn *conn, unsigned flags,
			int (*cb)(const struct shmdemux_stream_info *info,
				  void *ctx),
			void *ctx);
/* Stop a stream: close asks the worker to stop (end reason "closed"), kill
 * sends it SIGKILL (end reason "killed"). The stream is named by id, or by
 * name when name is non-NULL (then id is ignored). Returns 0, -ENOENT if
 * no such stream, SHMDEMUX_EBROKER, or the broker's code. */
SHMDEMUX_API
int shmdemux_close_stream(shmdemux_conn *conn, uint32_t id, const char *name);
SHMDEMUX_API
int shmdemux_kill_stream(shmdemux_conn *conn, uint32_t id, const char *name);

/* ---- attaching ---- */

enum {
	SHMDEMUX_START_OLDEST = 0,   /* oldest packet still in the ring */
	SHMDEMUX_START_KEYFRAME = 1, /* newest keyframe (else oldest) */
	SHMDEMUX_START_LIVE = 2,     /* the next packet published */
};

/* No reader slot: track table and status only; shmdemux_read() is not
 * available and the stream's producer is never held by this reader. */
#define SHMDEMUX_ATTACH_OBSERVER 0x1u
/* shmdemux_read() returns SHMDEMUX_TRACKS_CHANGED when the track table
 * changes instead of consuming that event silently. */
#define SHMDEMUX_ATTACH_TRACK_EVENTS 0x2u
/* A reader driven by a poll loop: shmdemux_stream_fd() gives a descriptor
 * to wait on. Not with SHMDEMUX_ATTACH_OBSERVER. */
#define SHMDEMUX_ATTACH_POLL 0x4u

/* Attach to a stream by id, or by name when name is non-NULL. Opens a new
 * connection to conn's socket, which stays the stream's lifeline: the
 * broker frees the reader slot when it closes (so a crashed reader never
 * holds the stream). conn itself stays free for other requests.
 * On success *stream is owned by the caller (free with shmdemux_detach()).
 * On failure *stream is NULL; returns -ENOENT (no such stream), -EBUSY (no
 * reader slot left, or the stream's worker is not taking new readers),
 * SHMDEMUX_EABI / SHMDEMUX_ECORRUPT (bad ring),
 * SHMDEMUX_EBROKER, or another negative code; the broker's message is in
 * shmdemux_conn_last_error(conn). */
SHMDEMUX_API
int shmdemux_attach(shmdemux_conn *conn, uint32_t id, const char *name,
		    int start, unsigned flags, shmdemux_stream **stream);
/* Detach and free. NULL-safe; sets *stream to NULL. A held packet view
 * becomes invalid. Frames lent by shmdemux_frame_to_avframe() stay valid:
 * the mapping and the reader slot are kept until the last is freed. */
SHMDEMUX_API
void shmdemux_detach(shmdemux_stream **stream);
SHMDEMUX_API
uint32_t shmdemux_stream_id(const shmdemux_stream *stream);
/* A descriptor for poll(2), epoll, libuv, GLib or asyncio, for a stream
 * attached with SHMDEMUX_ATTACH_POLL (else -EINVAL). It is the stream's:
 * do not read it nor close it; shmdemux_detach() closes it. Wait for it to
 * be readable (POLLIN / EPOLLIN, level-triggered), then call
 * shmdemux_read() with timeout 0 until it returns -EAGAIN (or the end, or
 * an error). After an -EAGAIN it becomes readable again exactly when
 * something new can be read: a packet, the end of the stream (the worker
 * died too: the broker writes the end), an eviction, or the broker's
 * death (the read then returns SHMDEMUX_EBROKER). Readable with nothing to
 * read is rare and harmless: the read returns -EAGAIN and re-arms it.
 * It stays readable once the stream has ended or the broker is gone. The
 * wake costs no thread: the producer writes the stream's wake pipe itself
 * (docs/CLIENT.md, "Poll loops"). */
SHMDEMUX_API
int shmdemux_stream_fd(shmdemux_stream *stream);

/* Wait until the stream is at least RUNNING (track table valid) or ENDED.
 * timeout_ms < 0 waits forever. Returns the state reached (>= 0),
 * -ETIMEDOUT, or SHMDEMUX_EBROKER. Works for observers.
 * With opts.decode, the worker checks the ring against its decoders'
 * largest frames before it publishes the track table: RUNNING means the
 * decoders were accepted, and a stream refused (ring too small, no
 * decoder) is ENDED before RUNNING, with the reason in
 * shmdemux_status().message. Call it after opening to learn that. */
SHMDEMUX_API
int shmdemux_wait_running(shmdemux_stream *stream, int timeout_ms);

/* ---- tracks ---- */

enum {
	SHMDEMUX_MEDIA_UNKNOWN = -1,
	SHMDEMUX_MEDIA_VIDEO = 0,
	SHMDEMUX_MEDIA_AUDIO = 1,
	SHMDEMUX_MEDIA_DATA = 2,
	SHMDEMUX_MEDIA_SUBTITLE = 3,
	SHMDEMUX_MEDIA_ATTACHMENT = 4,
};

#define SHMDEMUX_NOPTS INT64_MIN /* == AV_NOPTS_VALUE */

/* One track (elementary stream). Integer values are FFmpeg's enums
 * (AVMediaType, AVCodecID, AVPixelFormat / AVSampleFormat, AVColor*, ...),
 * checked: the codec id is one this process's libavcodec knows for the
 * media type, formats are known (never a hardware format), the time base
 * is positive, sizes, rates and counts are in range, enum values out of
 * range read as unspecified, rationals are non-negative. Strings are
 * NUL-terminated, valid UTF-8 (invalid bytes read as U+FFFD) and may hold
 * control characters: escape them before printing. codec_name is this
 * library's name for codec_id. */
struct shmdemux_track {
	int index;                 /* AVStream.index == packet track */
	int id;                    /* AVStream.id (e.g. MPEG-TS PID) */
	int media_type;            /* SHMDEMUX_MEDIA_* (AVMediaType) */
	int codec_id;              /* AVCodecID */
	uint32_t codec_tag;
	int format;                /* pixel / sample format, -1 unknown */
	int profile, level;
	int64_t bit_rate;
	int bits_per_coded_sample, bits_per_raw_sample;
	int width, height;
	int sar_num, sar_den;      /* codec sample aspect ratio */
	int field_order;
	int color_range, color_primaries, color_trc, color_space;
	int chroma_location;
	int video_delay;
	int sample_rate;
	int ch_order;              /* AVChannelOrder */
	int channels;
	uint64_t ch_mask;          /* native order channel mask */
	int block_align, frame_size;
	int initial_padding, trailing_padding, seek_preroll;
	int tb_num, tb_den;        /* time base of pts/dts/duration */
	int avg_fr_num, avg_fr_den;
	int r_fr_num, r_fr_den;
	int st_sar_num, st_sar_den; /* container sample aspect ratio */
	int64_t start_time;        /* time base units, SHMDEMUX_NOPTS unset */
	int64_t duration;          /* time base units, SHMDEMUX_NOPTS unset */
	int64_t nb_frames;
	int disposition;           /* AV_DISPOSITION_* */
	const uint8_t *extradata;  /* NULL if none; owned by the stream,
	                              valid until the next shmdemux_read(),
	                              track call or detach */
	size_t extradata_size;
	char codec_name[32];
	char language[16];
	char title[64];
};

/* Number of tracks in the current table (0 before the stream is running).
 * Refreshes the library's copy if the table changed. Never fails: a table
 * that does not validate counts as empty. */
SHMDEMUX_API
int shmdemux_track_count(shmdemux_stream *stream);
/* The current track table generation (even; 0 before the first table). */
SHMDEMUX_API
uint32_t shmdemux_track_generation(shmdemux_stream *stream);
/* Copy track i into *out. Returns 0, -EINVAL (i out of range) or
 * SHMDEMUX_ECORRUPT (the track holds values no demuxer produces, e.g. a
 * pseudo-codec that is not a bitstream, a hardware pixel format, a zero
 * time base: it is refused, and so is every other call about it; its
 * packets still read, as bytes). */
SHMDEMUX_API
int shmdemux_get_track(shmdemux_stream *stream, int i,
		       struct shmdemux_track *out);
/* The container's format name ("matroska,webm", ...), "" before running.
 * Owned by stream, valid like shmdemux_track.extradata. */
SHMDEMUX_API
const char *shmdemux_format_name(shmdemux_stream *stream);
/* Time base of track i (pts, dts and duration units). Returns 0, -EINVAL
 * or SHMDEMUX_ECORRUPT (as shmdemux_get_track()). */
SHMDEMUX_API
int shmdemux_track_time_base(shmdemux_stream *stream, int i, int *num,
			     int *den);
/* Fill par (allocated by the caller, e.g. avcodec_parameters_alloc()) with
 * every codec parameter of track i: type, id, tag, format, bit rate,
 * profile, level, size, aspect ratio, color properties, channel layout,
 * sample rate, frame size, padding, and a copy of the extradata (allocated
 * with av_mallocz including AV_INPUT_BUFFER_PADDING_SIZE). Previous
 * extradata and channel layout in par are freed first. Meant for decoding:
 * returns 0, -EINVAL (i out of range), SHMDEMUX_ECORRUPT (a refused track,
 * as shmdemux_get_track()), -ENOTSUP (a valid track whose codec is no
 * bitstream to decode: none, or one of libavformat's pseudo-codecs such
 * as mpegts, mpeg4systems, ffmetadata, ffwavesynth, probe), -ENOMEM; on
 * failure par holds no extradata. */
SHMDEMUX_API
int shmdemux_track_to_codecpar(shmdemux_stream *stream, int i,
			       struct AVCodecParameters *par);

/* ---- reading ---- */

/* Packet flags: same bits as AV_PKT_FLAG_*. The library returns only
 * KEY, CORRUPT, DISCARD and DISPOSABLE: TRUSTED (which tells a decoder the
 * payload holds pointers) and unknown bits are never set. */
enum {
	SHMDEMUX_PKT_KEY = 0x0001,
	SHMDEMUX_PKT_CORRUPT = 0x0002,
	SHMDEMUX_PKT_DISCARD = 0x0004,
	SHMDEMUX_PKT_TRUSTED = 0x0008, /* never returned */
	SHMDEMUX_PKT_DISPOSABLE = 0x0010,
};

#define SHMDEMUX_MAX_SIDE_DATA 32

struct shmdemux_side_data {
	uint32_t type;             /* AVPacketSideDataType */
	uint32_t size;
	const uint8_t *data;       /* into the ring, like the payload */
};

/* A zero-copy view of one packet. data and side data point into the
 * read-only ring and stay valid until the next shmdemux_read(),
 * shmdemux_release() or shmdemux_detach() on the stream. Side data holds
 * only the types a demuxer emits, each of the size its type has (e.g. a
 * palette of exactly AVPALETTE_SIZE bytes); other entries are dropped and
 * counted (shmdemux_status().side_data_dropped). The ring's bytes are the
 * worker's to change: copy before relying on contents. */
struct shmdemux_packet {
	const uint8_t *data;
	size_t size;
	int track;                 /* index into the track table */
	int64_t pts, dts;          /* SHMDEMUX_NOPTS when unset */
	int64_t duration;          /* 0 if unknown */
	int64_t pos;               /* byte position in the input, -1 unknown */
	uint32_t flags;            /* SHMDEMUX_PKT_* */
	uint32_t track_gen;        /* track table generation of the packet */
	uint64_t seq;              /* record number in the stream */
	unsigned nb_side_data;
	struct shmdemux_side_data side_data[SHMDEMUX_MAX_SIDE_DATA];
};

/* Returned (positive) by shmdemux_read() with SHMDEMUX_ATTACH_TRACK_EVENTS
 * when the track table changed; pkt is not filled. */
#define SHMDEMUX_TRACKS_CHANGED 1

/* Read the next packet. The previously returned view is released first.
 * timeout_ms < 0 blocks until a packet or the end, 0 never blocks.
 * Returns:
 *   0                       *pkt is a view (see struct shmdemux_packet)
 *   SHMDEMUX_FRAME          a decoded frame (opts.decode); see
 *                           shmdemux_get_frame()
 *   SHMDEMUX_TRACKS_CHANGED (with SHMDEMUX_ATTACH_TRACK_EVENTS only)
 *   -EAGAIN                 nothing within the timeout
 *   SHMDEMUX_EOF            the stream ended cleanly and all was read
 *   SHMDEMUX_E<reason>      it ended otherwise (see shmdemux_status());
 *                           every packet published before was returned
 *   SHMDEMUX_EOVERRUN       live mode: packets were lost (counted);
 *                           call again to continue at a keyframe
 *   SHMDEMUX_ECORRUPT       a record failed validation; it is skipped
 *   SHMDEMUX_EEVICTED, SHMDEMUX_EBROKER, SHMDEMUX_EABI, -EINVAL (observer)
 * On failure *pkt is unspecified and no view is held. */
SHMDEMUX_API
int shmdemux_read(shmdemux_stream *stream, struct shmdemux_packet *pkt,
		  int timeout_ms);
/* Release the view returned by the last read (optional: the next read does
 * it). Returns 0, or SHMDEMUX_EOVERRUN in live mode if the packet may have
 * been overwritten while it was held (what was read from it is garbage). */
SHMDEMUX_API
int shmdemux_release(shmdemux_stream *stream);

/* Copy the payload into buf (cap bytes). Returns the size, or -ENOSPC
 * (nothing copied) when cap is too small. */
SHMDEMUX_API
int64_t shmdemux_packet_copy(const struct shmdemux_packet *pkt, void *buf,
			     size_t cap);
/* Fill an AVPacket (allocated by the caller, fields unreferenced, e.g.
 * fresh from av_packet_alloc() or after av_packet_unref()) with a
 * reference-counted copy of payload, side data, timestamps, flags, pos
 * and stream_index. The copies are checked again (flags masked as in the
 * view; side data by type, size and the contents FFmpeg parses: a
 * NUL-terminated dictionary, a parameter change that holds the fields
 * its flags name, ...): an entry that fails is left out. Returns 0,
 * -EINVAL (size) or -ENOMEM; on failure out is unreferenced. */
SHMDEMUX_API
int shmdemux_packet_to_avpacket(const struct shmdemux_packet *pkt,
				struct AVPacket *out);

/* ---- decoded frames (streams opened with opts.decode) ---- */

/* Returned (positive) by shmdemux_read() when the next record is a frame
 * the worker decoded: pkt is not filled; shmdemux_get_frame() returns the
 * frame's view, which is held like a packet view. */
#define SHMDEMUX_FRAME 2

/* Frame flags. */
enum {
	SHMDEMUX_FRAME_KEY = 0x0001,
	SHMDEMUX_FRAME_INTERLACED = 0x0002,
	SHMDEMUX_FRAME_TOP_FIELD_FIRST = 0x0004,
	SHMDEMUX_FRAME_CORRUPT = 0x0008,
};

#define SHMDEMUX_FRAME_MAX_PLANES 64

/* A zero-copy view of one decoded frame: plane i is plane_size[i] bytes at
 * data[i] in the read-only ring (rows linesize[i] apart for video; one
 * plane per channel for planar audio, else one), valid until the next
 * shmdemux_read(), shmdemux_release() or shmdemux_detach(). Every value was
 * checked: planes lie within the record, and for video each plane holds
 * linesize x its height rows of at least the row width of format. Integer
 * values are FFmpeg's enums; timestamps are in the track's time base. */
struct shmdemux_frame {
	int track;
	int media_type;            /* SHMDEMUX_MEDIA_VIDEO or _AUDIO */
	int64_t pts;               /* SHMDEMUX_NOPTS when unset */
	int64_t best_effort_timestamp;
	int64_t pkt_dts;
	int64_t duration;          /* 0 if unknown */
	uint32_t flags;            /* SHMDEMUX_FRAME_* */
	int pict_type;             /* AVPictureType */
	int format;                /* AVPixelFormat / AVSampleFormat */
	uint32_t track_gen;
	uint64_t seq;              /* record number in the stream */
	/* video */
	int width, height;
	int sar_num, sar_den;
	int color_range, color_primaries, color_trc, color_space;
	int chroma_location;
	/* audio */
	int sample_rate;
	int ch_order;              /* AVChannelOrder */
	int channels;
	uint64_t ch_mask;          /* native order channel mask */
	int nb_samples;
	/* planes */
	int nb_planes;
	const uint8_t *data[SHMDEMUX_FRAME_MAX_PLANES];
	int linesize[SHMDEMUX_FRAME_MAX_PLANES];
	size_t plane_size[SHMDEMUX_FRAME_MAX_PLANES];
};

struct AVFrame;

/* The view of the frame the last shmdemux_read() returned SHMDEMUX_FRAME
 * for. Returns 0, or -ENOENT when no frame view is held. */
SHMDEMUX_API
int shmdemux_get_frame(shmdemux_stream *stream, struct shmdemux_frame *out);
/* Most frames lent by shmdemux_frame_to_avframe() alive at once, per
 * attached stream. */
#define SHMDEMUX_MAX_HELD_FRAMES 64

/* Lend the frame the last shmdemux_read() returned SHMDEMUX_FRAME for as
 * an AVFrame (out fresh from av_frame_alloc() or unreferenced), without a
 * copy: its data points into the ring, through one read-only AVBufferRef.
 *
 * Lossless mode: the frame holds its record. While out, or any
 * av_frame_ref()/av_buffer_ref() of it, is alive, the reader's published
 * cursor stays at that record, so the producer cannot overwrite it; the
 * reader itself goes on reading ahead (up to SHMDEMUX_MAX_HELD_FRAMES
 * frames lent at once, e.g. a decoder's or encoder's queue). Freeing the
 * last reference (av_frame_unref/av_frame_free, on any thread) drops the
 * hold and moves the published cursor to the oldest frame still lent, or
 * to the reader's own position. Held frames count as the reader being
 * behind: the ring fills up, the producer waits, and a reader that keeps
 * the producer waiting longer than the stream's lag timeout is evicted
 * like any slow reader (the next read returns SHMDEMUX_EEVICTED); frames
 * it still holds may then be overwritten (they stay mapped, so reading
 * them is safe but yields garbage). shmdemux_detach() with frames still
 * lent returns at once, but the mapping and the reader slot (ls counts it
 * as a consumer) stay until the last of them is freed; only those frames
 * then hold the producer.
 *
 * Live mode: the producer never waits, so no hold can protect the bytes:
 * out gets a copy (as shmdemux_frame_to_avframe_copy()), taken and then
 * checked intact.
 *
 * Returns 0, -ENOENT (no frame view held), -ENOBUFS (too many frames
 * lent), -EINVAL (frame not describable), -ENOMEM, or SHMDEMUX_EOVERRUN
 * (live: the frame was overwritten while it was copied). On failure out
 * is unreferenced. */
SHMDEMUX_API
int shmdemux_frame_to_avframe(shmdemux_stream *stream, struct AVFrame *out);
/* Fill out with a copy of frame f's bytes in buffers of out's own
 * (av_frame_get_buffer), so out outlives the view and holds nothing. Returns 0, -EINVAL,
 * -ENOMEM; on failure out is unreferenced. */
SHMDEMUX_API
int shmdemux_frame_to_avframe_copy(const struct shmdemux_frame *f,
				   struct AVFrame *out);

/* ---- status ---- */

struct shmdemux_status {
	int state;                 /* SHMDEMUX_STATE_* */
	int end_reason;            /* SHMDEMUX_END_* once ENDED */
	int code;                  /* shmdemux_end_code(end_reason) once
	                              ENDED, else 0 */
	int exit_code;             /* worker exit status, -1 if none */
	int signal;                /* terminating signal, or 0 */
	int averror;               /* libavformat error (AVERROR), or 0 */
	int syscall;               /* forbidden syscall number, or -1 */
	int worker_pid;
	uint64_t packets;          /* published by the worker so far */
	uint64_t bytes;
	uint64_t overruns;         /* this reader's overruns (live mode) */
	uint32_t track_gen;
	char message[160];         /* one line about the end, or "" (valid
	                              UTF-8; may hold control characters) */
	uint64_t frames;           /* decoded frames published so far */
	uint64_t decode_errors;    /* decoder errors the worker skipped */
	uint64_t frames_pooled;    /* video frames read in place from the
	                              stream's frame pool (lossless --decode) */
	uint64_t frames_copied;    /* video frames copied into the ring
	                              (no pool slot free, live mode, ...) */
	uint64_t side_data_dropped; /* side data entries this reader dropped
	                               (a type no demuxer emits, a wrong
	                               size) */
};

/* Snapshot of the stream's state and terminal status. Returns 0. */
SHMDEMUX_API
int shmdemux_status(shmdemux_stream *stream, struct shmdemux_status *st);

#ifdef __cplusplus
}
#endif

#endif
