/*
 * watchdog.h - deciding that a worker is hung, from periodic samples.
 *
 * A worker is hung only when input is waiting for it and nothing moves:
 *   - progress is the worker's progress clock (hdr.progress_ns: bumped per
 *     packet, per input read, and every slice it waits for ring room) or
 *     the input bytes consumed;
 *   - input waits when the source is a regular file (always) or the
 *     worker's input pipe holds unread bytes. An empty pipe means the
 *     source is idle (a live feed between bursts): a worker blocked on it
 *     is waiting, not hung;
 *   - a worker blocked because the ring is full (slow lossless consumers)
 *     keeps bumping its clock, so it is never hung.
 * Stall time accumulates over samples where input waited and nothing
 * moved; any progress resets it; idle samples neither add nor reset.
 * Opening (state STARTING/OPENING) is bounded separately, by wall time:
 * the stream may not spend longer than the open timeout opening, whatever
 * its source does - a probe that reads forever, a source that gave a few
 * bytes and went quiet, or one that never gives any (a FIFO nobody opens
 * for writing, an eventfd, a silent terminal). When no input was ever
 * seen (none consumed, none waiting at any sample) the verdict is
 * WD_NO_INPUT: the source's doing, not the worker's. A worker still
 * opening whose clock reads 0 has not started (exec, dynamic loading, the
 * sandbox: slow on a loaded machine, and not the media's doing): no stall
 * accumulates until its first input read sets the clock; the open timeout
 * bounds that time. Once running, a clock stuck at any value, 0 included,
 * is a stall.
 */
#ifndef SHMDEMUXD_WATCHDOG_H
#define SHMDEMUXD_WATCHDOG_H

#include <stdint.h>

struct wd_sample {
	uint64_t progress;    /* worker's progress clock (untrusted, compared
	                         for change only) */
	uint64_t input;       /* input bytes consumed */
	int opening;          /* the worker has not published its tracks */
	int input_waiting;    /* input available and not consumed */
};

struct wd {
	uint32_t limit_ms;      /* no-progress limit */
	uint32_t open_limit_ms; /* opening limit */
	int primed;             /* last holds a sample */
	struct wd_sample last;
	uint64_t stalled_ms;
	uint64_t opening_ms;
	int input_seen;         /* some input consumed or waiting, ever */
};

enum {
	WD_OK = 0,
	WD_HUNG = 1,          /* no progress for limit_ms */
	WD_OPEN_TIMEOUT = 2,  /* still opening after open_limit_ms */
	WD_NO_INPUT = 3,      /* still opening after open_limit_ms, and the
	                         source never gave a byte */
};

void wd_init(struct wd *wd, uint32_t limit_ms, uint32_t open_limit_ms);
/* One sample, elapsed_ms after the previous one. Returns WD_*. */
int wd_tick(struct wd *wd, const struct wd_sample *s, uint64_t elapsed_ms);
/* How often to sample for a limit: a quarter of it, within [20, 1000] ms. */
unsigned wd_period_ms(uint32_t limit_ms);

#endif
