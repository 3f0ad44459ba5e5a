/*
 * worker_abi.h - how the broker starts shmdemux-worker.
 *
 * The broker forks, places the worker's descriptors on fixed numbers, closes
 * everything else, and execs the worker binary (found next to shmdemuxd):
 *
 *   fd 0  WORKER_FD_INPUT   input bytes: a pipe read end (non-seekable) or a
 *                           read-only regular file (seekable, --seekable)
 *   fd 1  /dev/null
 *   fd 2  stderr            the broker's stderr (log lines "worker[ID]: ...")
 *   fd 3  WORKER_FD_DATA    ring data segment (memfd, read-write)
 *   fd 4  WORKER_FD_CURSOR  ring cursor segment (memfd, read-write)
 *
 * argv: shmdemux-worker --stream-id N [--seekable] [--format FMT]
 *         [--probesize BYTES] [--analyzeduration USEC] [--realtime]
 *         [--demux-opt KEY=VALUE]... [--mem-limit BYTES]
 *         [--format-whitelist LIST] [--spool-limit BYTES]
 *         [--decode video|audio|all] [--decode-threads N] [--decode-strict]
 *         [--verbose]
 *       test builds (SHMDEMUX_FAULT_INJECTION) also:
 *         [--fault KIND --fault-after N]
 *
 * The ring was created (ring_create) and sized by the broker before the
 * fork. The worker writes the track table, records, state OPENING/RUNNING and
 * its own status (ring_set_worker_status), then exits with one of the codes
 * below. The broker reaps it and writes the final status (ring_set_end):
 * the worker's word is taken only for a clean exit code; a signal or an
 * unexpected code is reported as what it is.
 */
#ifndef SHMDEMUX_WORKER_ABI_H
#define SHMDEMUX_WORKER_ABI_H

#define WORKER_FD_INPUT  0
#define WORKER_FD_DATA   3
#define WORKER_FD_CURSOR 4

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
