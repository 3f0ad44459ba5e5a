/*
 * futex.h - shared (cross-process) futex wait/wake on 32-bit atomic words,
 * and the monotonic clock helpers the ring's bounded waits use.
 *
 * FUTEX_PRIVATE_FLAG is never used: the words live in MAP_SHARED memfd
 * mappings seen by several processes, and private futexes are keyed by
 * (mm, address), so a wake from another process would never reach us.
 */
#ifndef SHMDEMUX_FUTEX_H
#define SHMDEMUX_FUTEX_H

#include <errno.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"

/* Sleep while *w == val, at most ms milliseconds (ms >= 0). Returns 0 when
 * woken, -EAGAIN if *w already differed, -ETIMEDOUT, -EINTR. A wait only
 * reads the word: it may lie in a read-only mapping. */
static inline int
futex_wait(const _Atomic uint32_t *w, uint32_t val, int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	if (syscall(SYS_futex, (const uint32_t *)w, FUTEX_WAIT, val, &ts, NULL,
		    0) < 0)
		return -errno;
	return 0;
}

static inline void
futex_wake(_Atomic uint32_t *w, int n)
{
	(void)syscall(SYS_futex, (uint32_t *)w, FUTEX_WAKE, n, NULL, NULL, 0);
}

/* Deadline for a timeout in ms: UINT64_MAX for "forever" (ms < 0). */
static inline uint64_t
deadline_after(int ms)
{
	return ms < 0 ? UINT64_MAX : now_ns() + (uint64_t)ms * 1000000u;
}

/* Length of the next wait slice: at most slice_ms, never past the deadline.
 * Returns 0 once the deadline has passed. */
static inline int
slice_until(uint64_t deadline, int slice_ms)
{
	uint64_t now, left;

	if (deadline == UINT64_MAX)
		return slice_ms;
	now = now_ns();
	if (now >= deadline)
		return 0;
	left = (deadline - now + 999999u) / 1000000u;
	return left < (uint64_t)slice_ms ? (int)left : slice_ms;
}

#endif
