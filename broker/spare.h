/*
 * spare.h - one worker exec'd ahead of time (worker_abi.h, spare mode), so a
 * stream starts without waiting for the dynamic loader.
 *
 * Started at broker start and again after every handoff, at the lowest
 * priority until it is handed a stream (SPARE_GROUP_NICE); a spare that dies
 * idle is reaped through its pidfd and replaced after a backoff that grows
 * with each failure in a row (a broken worker binary cannot make the broker
 * fork in a loop). Callers fall back to spawn_worker() whenever there is no
 * spare to take.
 */
#ifndef SHMDEMUXD_SPARE_H
#define SHMDEMUXD_SPARE_H

#include <sys/types.h>

#include "spawn.h"

/* The nice value of a spare's scheduling group (autogroup.h) from just
 * after its exec until its handoff: the replacement started when a stream takes the
 * spare loads (the dynamic loader maps and relocates libavformat and its
 * dependencies: ~100 ms of CPU on a small VM) only on CPU time no running
 * stream wants, instead of preempting that stream's worker and readers. */
#define SPARE_GROUP_NICE 19

#define SPARE_BACKOFF_MIN_MS 100u
#define SPARE_BACKOFF_MAX_MS 30000u

/* Start the first spare if conf.spare_workers; 0 or -errno (only for the
 * broker's own resources: a worker that cannot start is retried). */
int spare_init(void);

/* Hand the stream described by ws to the spare. Returns its pid, which is
 * then the caller's child exactly as spawn_worker()'s (a pidfd, reaping),
 * with *log its log reader (wlog.h; the caller's to finish, NULL if it
 * could not be watched), or -errno when there is no live spare or the
 * handoff failed: the caller starts the worker with spawn_worker(). A
 * replacement follows either way. */
struct wlog;
pid_t spare_take(const struct worker_start *ws, struct wlog **log);

/* Shutdown: kill and reap the spare, start no other. Idempotent. */
void spare_stop(void);

#endif
