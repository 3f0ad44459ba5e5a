/*
 * spare.h - one worker exec'd ahead of time (worker_abi.h), so a stream
 * starts without waiting for the dynamic loader: with --worker-start fork
 * (the default) a fork server that makes a child of the broker's for each
 * stream, with --worker-start spare a spare that becomes the next
 * stream's worker and is replaced.
 *
 * Started at broker start (and a spare again after every handoff), at the
 * lowest priority while it loads (SPARE_GROUP_NICE); one that dies idle is
 * reaped through its pidfd and replaced after a backoff that grows with
 * each failure in a row (a broken worker binary cannot make the broker
 * fork in a loop). Callers fall back to spawn_worker() whenever there is
 * none to take.
 */
#ifndef SHMDEMUXD_SPARE_H
#define SHMDEMUXD_SPARE_H

#include <sys/types.h>

#include "spawn.h"

/* The nice value of a spare's scheduling group (autogroup.h) from just
 * after its exec until its handoff: the replacement started when a stream
 * takes the spare loads (the dynamic loader maps and relocates libavformat and its
 * dependencies: ~100 ms of CPU on a small VM) only on CPU time no running
 * stream wants, instead of preempting that stream's worker and readers. */
#define SPARE_GROUP_NICE 19

/* How long the broker waits for a fork server's answer to an assignment
 * (a clone: well under a millisecond on an idle machine). */
#define FORK_SERVER_ANSWER_MS 5000u

#define SPARE_BACKOFF_MIN_MS 100u
#define SPARE_BACKOFF_MAX_MS 30000u

/* Start the first spare or the fork server unless conf.worker_start is
 * BROKER_START_EXEC; 0 or -errno (only for the broker's own resources: a
 * worker that cannot start is retried). */
int spare_init(void);

/* Hand the stream described by ws (its log_fd is not used: the stream's
 * log pipe is made here) to the spare or the fork server. Returns the
 * worker's pid, which is then the caller's child exactly as
 * spawn_worker()'s (a pidfd, reaping), with *log its log reader (wlog.h;
 * the caller's to finish, NULL if it could not be watched), or -errno
 * when there is none ready or the handoff failed: the caller starts the
 * worker with spawn_worker(). But -EPROTO: the fork server had the
 * assignment and did not answer with a child of ours: a worker may be
 * running for it, so the caller must not start another. A replacement
 * follows a spare's handoff and any failure. */
struct wlog;
pid_t spare_take(const struct worker_start *ws, struct wlog **log);

/* Shutdown: kill and reap the spare, start no other. Idempotent. */
void spare_stop(void);

#endif
