/*
 * proto.h - the control protocol between clients (library, CLI) and the
 * broker, over a UNIX SOCK_SEQPACKET socket: one message per datagram, file
 * descriptors attached with SCM_RIGHTS.
 *
 * Every message starts with struct ctl_hdr; each type has one fixed size
 * (ctl_msg_size()), and a receiver drops a message whose length, magic,
 * version or type does not match exactly. Strings are fixed arrays that must
 * contain a NUL (ctl_str_ok()). Replies echo the request id.
 *
 * Requests and their replies:
 *   OPEN    -> OPENED (+1 fd, the pipe's write end, for SRC_PUSH) | ERROR
 *              (SRC_FD: the request carries the input fd)
 *   ATTACH  -> ATTACHED (+1 fd, the data segment read-only, and for a
 *              reader +1 more: its own cursor page, read-write, made for
 *              this attach only; with CTL_ATTACH_WAKE +1 more: the read
 *              end of its wake pipe) | ERROR. An ATTACH carries no fd (one
 *              that does is refused). The connection then stays the
 *              consumer's lifeline: when it closes the broker frees the
 *              slot.
 *   LIST    -> STREAM_INFO x n, then LIST_END | ERROR. With CTL_LIST_ENDED
 *              the streams reaped lately come after the listed ones
 *              (CTL_INFO_REAPED set in their flags).
 *   CLOSE   -> OK | ERROR
 *   KILL    -> OK | ERROR
 *   PUSH_END -> OK | ERROR. Only on the connection that opened the SRC_PUSH
 *              stream (the producer's): the input ended cleanly (error 0)
 *              or failed (error > 0, an errno value). Until it arrives the
 *              broker holds the pipe open, so the worker sees no EOF; if the
 *              producer's connection closes first, the input ended in error.
 *   QUIT_IDLE -> OK | ERROR (-EBUSY): the broker stops if it has no stream
 *              and no other connection, decided in one step (a client that
 *              started a broker for an open that failed leaves none behind
 *              without racing another client's open).
 *
 * An ERROR with id 0 answers no request. Either the broker could not read
 * one (code -EBADMSG, -EMSGSIZE or -EPROTO; the connection stays), or it
 * turned the connection away at accept for a cause other than who the
 * peer is (any other code: -EUSERS at its --max-connections, -ENOMEM, ...;
 * msg names it): it sends that one message without waiting and closes. A
 * peer of another uid is closed without a word. The client may see its
 * send fail (EPIPE) or ECONNRESET before the message: it reads on to find
 * it (the library's SHMDEMUX_EREFUSED).
 *
 * Versions: a receiver drops a message of another CTL_VERSION, and the
 * broker answers it with an ERROR (-EPROTO) in its own version whose msg
 * names both versions; the library reports SHMDEMUX_EABI with that text.
 */
#ifndef SHMDEMUX_PROTO_H
#define SHMDEMUX_PROTO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define CTL_MAGIC   0x584d4453u /* "SDMX" */
#define CTL_VERSION 2u
#define CTL_MAX_MSG 16384u
#define CTL_MAX_FDS 3

#define CTL_NAME_LEN   64
#define CTL_FORMAT_LEN 32
#define CTL_PATH_LEN   4096
#define CTL_OPTS_LEN   2048
#define CTL_MAX_OPTS   64   /* demuxer options ("k=v" entries of
                               ctl_open.opts) one OPEN may carry */
#define CTL_MSG_LEN    256

enum ctl_type {
	CTL_OPEN = 1,
	CTL_ATTACH = 2,
	CTL_LIST = 3,
	CTL_CLOSE = 4,
	CTL_KILL = 5,
	CTL_PUSH_END = 6,
	CTL_QUIT_IDLE = 7,

	CTL_OK = 64,
	CTL_ERROR = 65,
	CTL_OPENED = 66,
	CTL_ATTACHED = 67,
	CTL_STREAM_INFO = 68,
	CTL_LIST_END = 69,
};

struct ctl_hdr {
	uint32_t magic;   /* CTL_MAGIC */
	uint16_t version; /* CTL_VERSION */
	uint16_t type;    /* enum ctl_type */
	uint32_t len;     /* whole message, == ctl_msg_size(type) */
	uint32_t id;      /* request id, echoed in replies */
};

enum ctl_source {
	CTL_SRC_PATH = 1, /* path[]; the broker opens it (regular files are
	                     handed to the worker as a seekable read-only fd) */
	CTL_SRC_FD = 2,   /* fd attached to the request */
	CTL_SRC_PUSH = 3, /* the reply carries a pipe write end */
};

enum {
	CTL_OPEN_REALTIME = 1u << 0, /* publish at the media's pace (-re) */
	CTL_OPEN_NOSEEK = 1u << 1,   /* read the source as a byte stream even
	                                if it is a regular file (open -) */
	CTL_OPEN_DECODE_STRICT = 1u << 2, /* a decoder error ends the stream */
};

/* Tracks the worker decodes (ctl_open.decode); others stay packets. */
enum {
	CTL_DECODE_VIDEO = 1u << 0,
	CTL_DECODE_AUDIO = 1u << 1,
};

struct ctl_open {
	struct ctl_hdr hdr;
	uint32_t source;          /* enum ctl_source */
	uint32_t mode;            /* RING_MODE_* */
	uint64_t ring_size;       /* record area bytes; 0 = broker default */
	uint32_t wait_consumers;  /* UINT32_MAX = default for the mode */
	uint32_t flags;           /* CTL_OPEN_* */
	int64_t probesize;        /* 0 = libavformat default */
	int64_t analyzeduration;  /* microseconds, 0 = default */
	uint32_t lag_timeout_ms;  /* 0 = broker default */
	uint32_t opts_len;        /* bytes used in opts[] */
	uint64_t mem_limit;       /* worker address space; 0 = broker default */
	uint64_t spool_limit;     /* spool for non-seekable inputs that need
	                             seeking (moov at end); 0 = default */
	uint32_t watchdog_ms;     /* no-progress kill; 0 = broker default */
	uint32_t decode;          /* CTL_DECODE_* */
	uint32_t decode_threads;  /* 0 = default for the machine */
	uint32_t pad;
	char format_whitelist[256]; /* demuxers allowed, "a,b,c"; "" = the
	                               worker's default list */
	char name[CTL_NAME_LEN];     /* optional, unique among streams */
	char format[CTL_FORMAT_LEN]; /* forced input format, or "" */
	char path[CTL_PATH_LEN];     /* SRC_PATH: the file; else a label */
	char opts[CTL_OPTS_LEN];     /* demuxer options "k=v\0k=v\0" */
};

struct ctl_opened {
	struct ctl_hdr hdr;
	uint32_t stream_id;
	uint32_t pad;
};

/* Which stream: by id (name[0] == 0), or by name (stream_id == 0). */
struct ctl_ref {
	uint32_t stream_id;
	char name[CTL_NAME_LEN];
};

enum {
	CTL_ATTACH_OBSERVER = 1u << 0, /* no slot, no cursor page: header/tracks
	                                  only, never holds the producer */
	CTL_ATTACH_WAKE = 1u << 1,     /* a reader that polls: the broker makes
	                                  a wake pipe, keeps and forwards the
	                                  write end (to the producer, with the
	                                  cursor page) and replies with the
	                                  read end (docs/RING.md) */
};

struct ctl_attach {
	struct ctl_hdr hdr;
	struct ctl_ref ref;
	uint32_t start;   /* RING_START_* */
	uint32_t flags;   /* CTL_ATTACH_* */
};

struct ctl_attached {
	struct ctl_hdr hdr;
	uint32_t stream_id;
	int32_t slot;          /* consumer slot, -1 for observers */
	uint64_t data_size;    /* expected size of the data segment */
	uint64_t page_size;    /* RING_PAGE_SIZE; 0 for observers (no page) */
};

#define CTL_LIST_ENDED 1u   /* also the streams reaped lately */

struct ctl_list {
	struct ctl_hdr hdr;
	uint32_t flags;          /* CTL_LIST_* */
	uint32_t pad;
};

struct ctl_quit_idle {
	struct ctl_hdr hdr;
};

struct ctl_close {        /* CTL_CLOSE and CTL_KILL */
	struct ctl_hdr hdr;
	struct ctl_ref ref;
};

struct ctl_push_end {
	struct ctl_hdr hdr;
	uint32_t stream_id;
	int32_t error;           /* 0: clean end of input; > 0: errno */
};

struct ctl_ok {
	struct ctl_hdr hdr;
};

struct ctl_error {
	struct ctl_hdr hdr;
	int32_t code;            /* negative errno-style code */
	uint32_t pad;
	char msg[CTL_MSG_LEN];   /* one line naming the cause */
};

struct ctl_stream_info {
	struct ctl_hdr hdr;
	uint32_t stream_id;
	uint32_t state;          /* RING_STATE_* */
	uint32_t end_reason;     /* SD_END_* */
	int32_t end_exit_code;
	int32_t end_signal;
	int32_t worker_pid;      /* 0 once reaped */
	uint32_t mode;
	uint32_t tracks;
	uint32_t consumers;
	uint32_t fill_permille;
	uint64_t packets;
	uint64_t bytes;          /* payload bytes published */
	uint64_t input_bytes;
	uint64_t drops;          /* overruns of live consumers + evictions */
	uint64_t uptime_ms;      /* open to end, or to now while running */
	uint64_t ring_size;
	char name[CTL_NAME_LEN];
	char source[256];
	char end_msg[160];
	/* version 2 */
	uint32_t flags;          /* CTL_INFO_* */
	uint32_t pad;
	uint64_t frames;         /* decoded frames published */
	uint64_t lag_bytes;      /* the slowest reader's unread bytes */
	uint64_t worker_cpu_ms;  /* user + system, final once reaped */
	uint64_t worker_rss;     /* bytes resident now, 0 once reaped */
	uint64_t ended_ago_ms;   /* since the end, 0 while running */
};
#define CTL_INFO_REAPED    1u  /* gone from the table, kept in history */
#define CTL_INFO_RELEASED  2u  /* ring released; counters as it ended */

struct ctl_list_end {
	struct ctl_hdr hdr;
	uint32_t count;
	uint32_t pad;
};

/* The union of all messages, for receive buffers. */
union ctl_msg {
	struct ctl_hdr hdr;
	struct ctl_open open;
	struct ctl_opened opened;
	struct ctl_attach attach;
	struct ctl_attached attached;
	struct ctl_list list;
	struct ctl_close close;
	struct ctl_push_end push_end;
	struct ctl_quit_idle quit_idle;
	struct ctl_ok ok;
	struct ctl_error error;
	struct ctl_stream_info info;
	struct ctl_list_end list_end;
};
_Static_assert(sizeof(union ctl_msg) <= CTL_MAX_MSG, "message too large");

/* The version a datagram of n bytes says it speaks (one that ctl_validate()
 * refused with -EPROTO), or -1 if it is not ours at all. */
int ctl_peer_version(const void *buf, size_t n);
/* Exact size of a message of this type, 0 if the type is unknown. */
size_t ctl_msg_size(uint16_t type);
/* Fill a header for a message of this type. */
void ctl_hdr_init(struct ctl_hdr *h, uint16_t type, uint32_t id);
/* Validate a received datagram of n bytes: magic, version, known type,
 * exact length, NUL-terminated strings. Returns 0 or -EBADMSG / -EPROTO
 * (version mismatch). */
int ctl_validate(const void *buf, size_t n);
/* 1 if a NUL appears within the array. */
int ctl_str_ok(const char *s, size_t cap);

/* Send one message with up to CTL_MAX_FDS fds (nfds may be 0). Retries EINTR.
 * Returns 0 or -errno. */
int ctl_send(int sock, const void *msg, size_t len, const int *fds, int nfds);
/* Receive one message into buf (CTL_MAX_MSG bytes) and up to CTL_MAX_FDS fds
 * (set to -1 when absent; extra or unexpected fds are closed). Returns the
 * message length, 0 on orderly shutdown, or -errno (-EMSGSIZE if truncated,
 * -EBADMSG if invalid). Received fds are close-on-exec. */
ssize_t ctl_recv(int sock, void *buf, int *fds, int *nfds);
struct msghdr;
/* Every SCM_RIGHTS fd of a message received with recvmsg(): the first max
 * into fds, any beyond closed, so that all can be closed on rejection.
 * *bad is set for a control message of another kind or a malformed one.
 * Returns how many are in fds. */
int ctl_take_fds(struct msghdr *mh, int *fds, int max, int *bad);

/* Names for enums, for messages and `ls`. Never NULL. */
const char *sd_state_name(uint32_t state);
const char *sd_end_reason_name(uint32_t reason);

#endif
