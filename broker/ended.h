/*
 * ended.h - the streams the broker reaped lately, for `ls --all`.
 *
 * A stream leaves the table when it is closed, or when it has ended and no
 * connection has held it for --retain-ended; its last report stays here,
 * the latest BROKER_ENDED_HISTORY of them, the oldest dropped first. Each
 * entry has a sequence number, so a LIST that goes out a record at a time
 * resumes where it was even while entries come and go.
 */
#ifndef SHMDEMUX_ENDED_H
#define SHMDEMUX_ENDED_H

#include <stdint.h>

#include "proto.h"

/* What no longer holds once nothing runs or reads: no consumers, no
 * worker (pid, RSS), no lag; the counters stay as they ended. */
void ended_info_idle(struct ctl_stream_info *info);
/* Keep info (the stream's last report; ended_ms its end, now_ms() clock). */
void ended_add(const struct ctl_stream_info *info, uint64_t ended_ms);
/* The first entry after sequence number `after` (0: from the oldest),
 * filled in for now (ended_ago_ms, CTL_INFO_REAPED); returns its sequence
 * number, or 0 when there is none. */
uint64_t ended_next(uint64_t after, struct ctl_stream_info *info);

#endif
