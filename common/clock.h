/*
 * clock.h - the monotonic clock (CLOCK_MONOTONIC) in the units its users
 * count in: the one reader of it for the broker, the worker, the client,
 * the tools and the tests. Header only: the client library compiles it in
 * without exporting anything.
 */
#ifndef SHMDEMUX_CLOCK_H
#define SHMDEMUX_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Nanoseconds since an arbitrary start (boot); never goes back. */
static inline uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The same in milliseconds (deadlines, timeouts, uptimes). */
static inline uint64_t
now_ms(void)
{
	return now_ns() / 1000000u;
}

/* The same in seconds, as a double (measurements). */
static inline double
now_s(void)
{
	return (double)now_ns() / 1e9;
}

#endif
