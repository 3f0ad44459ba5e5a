/*
 * spawn.h - starting a worker and reading how it ended.
 */
#ifndef SHMDEMUXD_SPAWN_H
#define SHMDEMUXD_SPAWN_H

#include <signal.h>
#include <stdint.h>
#include <sys/types.h>

#include "proto.h"
#include "ring_layout.h"

/* A worker's argv: its fixed arguments and a --demux-opt pair for each of
 * an OPEN's demuxer options (at most CTL_MAX_OPTS, common/proto.h). */
#define SPAWN_MAX_ARGS (16 + 2 * CTL_MAX_OPTS)

struct worker_start {
	const char *path;         /* the worker binary */
	uint32_t stream_id;
	int input_fd;             /* becomes fd 0 */
	int data_fd;              /* becomes fd 3 */
	int admin_fd;             /* becomes fd 4: the ring's admin channel */
	int ready_fd;             /* becomes fd 1: the readiness pipe's write
	                             end (worker_abi.h) */
	int log_fd;               /* becomes fd 2: its log pipe's write end
	                             (spawn_worker only; a spare has its own) */
	int seekable;             /* input is a regular file */
	int realtime;
	const char *format;       /* "" = probe */
	int64_t probesize;        /* 0 = default */
	int64_t analyzeduration;  /* 0 = default */
	const char *opts;         /* "k=v\0k=v\0" */
	uint32_t opts_len;
	uint64_t mem_limit;       /* --mem-limit, 0 = none */
	uint64_t spool_limit;     /* 0 = the worker's default */
	uint32_t decode;          /* CTL_DECODE_* */
	uint32_t decode_threads;  /* 0 = default */
	int decode_strict;
	const char *format_whitelist; /* "" = the worker's default */
	const char *fault;        /* test builds: "KIND:N" or NULL */
};

/* A worker's argv as built from ws: pointers into ws's strings and buf
 * (numbers), valid while both are. */
struct spawn_args {
	int argc;
	char *argv[SPAWN_MAX_ARGS];  /* NULL-terminated */
	char buf[256];
};

/* Fill a from ws. Returns 0 or -E2BIG. The one argv for both ways of
 * starting a worker: exec (spawn_worker) and a spare's assignment. */
int spawn_args(const struct worker_start *ws, struct spawn_args *a);

/* Fork and exec a worker, in a session of its own (so a scheduling group
 * of its own: autogroup.h). Returns the child's pid, or -errno: a
 * failed exec is reported by the child through a close-on-exec pipe, the
 * child is reaped, and the errno comes back here. The caller's fds stay
 * open. */
pid_t spawn_worker(const struct worker_start *ws);

/* Fork and exec `path MODE` (MODE "--spare" or "--fork-server") with
 * sock on fd 3, log_fd (its log pipe's write end) on fd 2, fds 0 and 1
 * /dev/null (worker_abi.h). Returns the pid or -errno, as spawn_worker. */
pid_t spawn_spare(const char *path, const char *mode, int sock, int log_fd);

/* SIGKILL a child of ours not yet reaped and reap it (its pid cannot
 * have been reused: it is ours until then). */
void spawn_kill_reap(pid_t pid);

/* A pidfd for the child (readable when it exits), or -errno. */
int spawn_pidfd(pid_t pid);

/* Reap pid if it has exited: 1 with *si filled, 0 if still running,
 * -errno on error. */
int spawn_reap(pid_t pid, siginfo_t *si);

/* How a stream ended, as written with ring_set_end(). */
struct worker_end {
	uint32_t reason;          /* SD_END_* */
	int32_t exit_code;        /* -1 if killed by a signal */
	int32_t sig;              /* 0 if it exited */
	int32_t averror;
	int32_t syscall_nr;       /* SD_END_SANDBOX: the call, or -1 */
	char msg[RING_MSG_LEN];
};

/* What the worker said about itself (from the ring header, untrusted). */
struct worker_word {
	uint32_t reason;          /* SD_END_* the worker reported */
	int32_t averror;
	char msg[RING_MSG_LEN];   /* NUL forced by the caller */
	int32_t syscall_nr;       /* trapped syscall, -1 if none or invalid */
};

/* Map a wait status to an end. stop_reason is SD_END_KILLED or
 * SD_END_CLOSED when an operator stopped the worker, else SD_END_NONE;
 * input_err is the source's errno (0 if it read cleanly to the end). */
void spawn_map_end(const siginfo_t *si, uint32_t stop_reason,
		   const struct worker_word *ww, int input_err,
		   struct worker_end *end);

#endif
