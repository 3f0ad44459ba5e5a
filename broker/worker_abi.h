/*
 * worker_abi.h - how the broker starts shmdemux-worker.
 *
 * The broker forks, places the worker's descriptors on fixed numbers, closes
 * everything else, and execs the worker binary (found next to shmdemuxd):
 *
 *   fd 0  WORKER_FD_INPUT   input bytes: a pipe read end (non-seekable) or a
 *                           read-only regular file (seekable, --seekable)
 *   fd 1  WORKER_FD_READY   the write end of the readiness pipe: the worker
 *                           closes it once it has mapped the ring, before
 *                           it reads a byte of input. Nothing is written.
 *   fd 2  WORKER_FD_LOG     stderr: the write end of a pipe of its own,
 *                           which the broker reads and logs line by line
 *                           behind "stream N (name): ", bounded and escaped
 *                           (wlog.h). No fd of the broker's own stdio, nor
 *                           any terminal, reaches a worker. It must not be
 *                           a regular file: RLIMIT_FSIZE is 0 (SIGXFSZ).
 *   fd 3  WORKER_FD_DATA    ring data segment (memfd, read-write; sealed
 *                           against new writes once fd 1 is closed)
 *   fd 4  WORKER_FD_ADMIN   the ring's admin channel: the worker's end of a
 *                           SOCK_SEQPACKET socketpair on which the broker
 *                           sends ADD (a new consumer's cursor page, one
 *                           read-only fd, and for a polling consumer the
 *                           write end of its wake pipe) and DEL; the
 *                           worker only
 *                           receives (ring_admin_poll, common/ring.h), and
 *                           checks every message as untrusted input
 *   fd 1 again, once the worker has closed the readiness pipe: a copy of
 *                           fd 0, so that fds 0-4 stay taken until it
 *                           exits
 *   fd 5 and up             WORKER_FD_WAKE_FROM: only what the admin
 *                           channel brings lands there: cursor pages
 *                           (read-only, closed once mapped) and the write
 *                           ends of consumers' wake pipes, which the
 *                           broker made (non-blocking) and which the
 *                           sandbox lets the worker write(2), and nothing
 *                           else from fd 5 up: it has no dup call
 *
 * The data segment reaches consumers only once it carries
 * F_SEAL_FUTURE_WRITE: every write(2) and every new writable shared
 * mapping is then refused by the kernel, for root too, while the mappings
 * made before keep working. So the worker maps it read-write first and
 * closes fd 1; the broker, on the pipe's hang-up (a worker that dies
 * first closes it too), adds FUTURE_WRITE and SEAL and only then answers
 * its consumers. A worker that closes fd 1 early only makes its own
 * mapping fail.
 *
 * argv: shmdemux-worker --stream-id N [--seekable] [--format FMT]
 *         [--probesize BYTES] [--analyzeduration USEC] [--realtime]
 *         [--demux-opt KEY=VALUE]... [--mem-limit BYTES]
 *         [--format-whitelist LIST] [--spool-limit BYTES]
 *         [--decode video|audio|all] [--decode-threads N] [--decode-strict]
 *         [--verbose]
 *       test builds (SHMDEMUX_FAULT_INJECTION) also:
 *         [--fault KIND[=SEED] --fault-after N]
 *
 * The ring was created (ring_create) and sized by the broker before the
 * fork. The worker writes the track table, records, state OPENING/RUNNING and
 * its own status (ring_set_worker_status), then exits with one of the codes
 * below. The broker reaps it and writes the final status (ring_set_end):
 * the worker's word is taken only for a clean exit code; a signal or an
 * unexpected code is reported as what it is.
 *
 * Started ahead of time (shmdemuxd --worker-start spare|fork, broker/spare.c):
 * to take the dynamic loader and static constructors off a stream's start,
 * the broker keeps one worker exec'd ahead of time as
 *
 *   shmdemux-worker --spare         takes one stream, then is its worker
 *   shmdemux-worker --fork-server   a child per stream, loaded once
 *
 *   fd 0, 1            /dev/null
 *   fd 2               its own log pipe
 *   fd 3  WORKER_FD_SPARE  the worker's end of a SOCK_SEQPACKET socketpair
 *
 * with the same parent-death signal and signal state as above. Both first
 * do FFmpeg's one-time set-up (worker_warm.c); a fork server then sends
 * one struct worker_assign_reply WORKER_REPLY_LOADED. Each blocks in
 * recvmsg() on fd 3 for an assignment, a single message:
 *
 *   struct worker_assign_hdr, then hdr.len bytes: hdr.argc NUL-terminated
 *   strings, exactly (the argv above, argv[0] included)
 *   SCM_RIGHTS: exactly WORKER_ASSIGN_NFDS fds, in this order: input,
 *   data, ready, admin, log
 *
 * The receiver checks every field and the exact length (no MSG_TRUNC, no
 * MSG_CTRUNC, one SCM_RIGHTS of exactly five fds). A spare places them on
 * 0, 3, 1, 4 and 2 (closing the socket, its first log and every fd it
 * received) and runs as if exec'd with that argv: options, sandbox, first
 * input byte. A fork server clones a child with CLONE_PARENT, so the
 * broker is the child's parent (it reaps it and gets its exit status
 * exactly as for an exec'd worker); the child sets its parent-death
 * signal, checks its parent is still the broker, leads a session of its
 * own, places the fds as a spare does and runs; the server closes its
 * copies and answers with one struct worker_assign_reply
 * WORKER_REPLY_CHILD: the child's pid, or -errno if it could not clone.
 * It then waits for the next assignment.
 *
 * A fork server also keeps one child cloned ahead of its stream (a
 * waiting child), which takes its stream's page faults while it waits
 * (worker_prefault.h). It announces each with WORKER_REPLY_WAITING and
 * its pid (before "loaded" for the first) so that the broker, its parent,
 * can reap it should it die unused. The server hands that child the
 * next assignment as it received it, over a socketpair of their own that
 * the child holds on fd 3 (the broker's socket is not the child's); the
 * child checks it as above, and the server answers with its pid. A
 * waiting child exits 0 when the server closes their socket.
 * A malformed assignment makes either exit WORKER_EXIT_USAGE, closing
 * every fd it was sent unused; EOF on fd 3 (the broker closed it) exits 0.
 */
#ifndef SHMDEMUX_WORKER_ABI_H
#define SHMDEMUX_WORKER_ABI_H

#include <stdint.h>

#define WORKER_FD_INPUT  0
#define WORKER_FD_READY  1
#define WORKER_FD_LOG    2
#define WORKER_FD_DATA   3
#define WORKER_FD_ADMIN  4
#define WORKER_FD_SPARE  3  /* spare mode, until the assignment arrives */
#define WORKER_FD_WAKE_FROM 5 /* received wake pipes: write(2) allowed */

#define WORKER_ASSIGN_MAGIC    0x57534d44u /* "DMSW" little-endian */
#define WORKER_ASSIGN_VERSION  4u
#define WORKER_ASSIGN_NFDS     5u      /* input, data, ready, admin, log */
#define WORKER_ASSIGN_MAX_ARGC 256u    /* argv[0] included */
#define WORKER_ASSIGN_MAX_LEN  16384u  /* string bytes after the header */

struct worker_assign_hdr {
	uint32_t magic;    /* WORKER_ASSIGN_MAGIC */
	uint32_t version;  /* WORKER_ASSIGN_VERSION */
	uint32_t argc;     /* 1..WORKER_ASSIGN_MAX_ARGC strings */
	uint32_t len;      /* 1..WORKER_ASSIGN_MAX_LEN bytes that follow */
};

/* A fork server's messages: LOADED once (pid 0), CHILD once per
 * assignment (the child's pid, or -errno), WAITING for each child it
 * clones ahead of its stream (its pid). */
enum {
	WORKER_REPLY_LOADED = 1,
	WORKER_REPLY_CHILD = 2,
	WORKER_REPLY_WAITING = 3,
};

struct worker_assign_reply {
	uint32_t magic;    /* WORKER_ASSIGN_MAGIC */
	uint32_t kind;     /* WORKER_REPLY_* */
	int32_t pid;
};

enum {
	WORKER_EXIT_EOF = 0,          /* demuxed to the end */
	WORKER_EXIT_OPEN_FAILED = 10, /* avformat_open_input/find_stream_info */
	WORKER_EXIT_DEMUX_ERROR = 11, /* av_read_frame error other than EOF */
	WORKER_EXIT_RING_ERROR = 12,  /* ring rejected a record (too large, ...) */
	WORKER_EXIT_USAGE = 13,       /* bad arguments or fds */
	WORKER_EXIT_STOPPED = 14,     /* asked to stop (SIGTERM) */
	WORKER_EXIT_NOMEM = 15,       /* allocation failed (memory limit) */
	WORKER_EXIT_SPOOL_LIMIT = 16, /* input needed more than --spool-limit */
};

#endif
