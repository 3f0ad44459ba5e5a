/*
 * wlog.h - a worker's stderr, read by the broker.
 *
 * Every worker (the spare too) writes its log into a pipe of its own
 * (worker_abi.h, fd 2); the broker reads the other end in its loop and logs
 * each line through log.c behind the worker's prefix ("stream 3 (name): ").
 * The worker is untrusted, so what it writes is bounded and made harmless:
 * a line is cut at WLOG_LINE_MAX bytes (marked " [cut]", the rest skipped
 * up to its newline), lines beyond a burst of WLOG_BURST and then
 * WLOG_RATE a second are dropped and counted (said once a second and at
 * the end), control characters, backslashes and invalid UTF-8 are escaped
 * (\xNN, \\), and one wakeup reads at most WLOG_READ_MAX bytes, so a worker
 * that floods costs a fixed amount of memory and never holds up the loop.
 */
#ifndef SHMDEMUXD_WLOG_H
#define SHMDEMUXD_WLOG_H

#include <stddef.h>

#define WLOG_LINE_MAX  384u     /* bytes of a line kept */
#define WLOG_READ_MAX  65536u   /* bytes read per wakeup */
#define WLOG_BURST     100u     /* lines logged back to back */
#define WLOG_RATE      20u      /* lines a second after the burst */
#define WLOG_PREFIX_MAX 96u

struct wlog;

/* Watch rd, a pipe's read end (taken over: closed on failure too, made
 * non-blocking), logging its lines behind prefix. Returns NULL on failure;
 * the worker's writes then fail with EPIPE, which it ignores. */
struct wlog *wlog_start(int rd, const char *prefix);

/* The prefix of the lines from now on (a spare's log becomes its
 * stream's). */
void wlog_set_prefix(struct wlog *l, const char *prefix);

/* The worker is gone: read what it left in the pipe (bounded by the pipe's
 * size, the reads are non-blocking), log it with a last word on what was
 * dropped, stop watching, free. NULL-safe; clears *l. */
void wlog_finish(struct wlog **l);

/* Escape n bytes of in for a log line: printable ASCII and valid UTF-8
 * (no overlong form, surrogate or code point past U+10FFFF) as they are,
 * a backslash as \\, any other byte as \xNN. Writes at most cap - 1 bytes
 * and a NUL, never a partial escape; returns the bytes of in consumed.
 * cap >= 4 * n + 1 always takes all of in. */
size_t wlog_escape(const char *in, size_t n, char *out, size_t cap);

#endif
