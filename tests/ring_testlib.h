/*
 * ring_testlib.h - helpers shared by the ring tests and the ring benchmark:
 * memfd-backed rings, forked helper processes with a watchdog, and a
 * deterministic payload generator with a fast word-at-a-time checksum.
 */
#ifndef SHMDEMUX_RING_TESTLIB_H
#define SHMDEMUX_RING_TESTLIB_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ring_admin.h"
#include "ring_consumer.h"
#include "ring_producer.h"

/* A ring as the broker holds it: the data fd, both ends of the admin
 * channel (ours non-blocking; the producer's end for the producer, which
 * forked helpers inherit) and an ADMIN mapping. */
struct tring {
	int dfd;
	int asock, psock;
	struct ring *admin;
};

/* What the test producer puts in each record's meta. */
struct tmeta {
	uint64_t seq;
	uint64_t len;
	uint64_t sum;
	uint64_t stamp_ns; /* CLOCK_MONOTONIC before publish (benchmark) */
};

int tring_create(struct tring *t, const struct ring_params *p);
void tring_destroy(struct tring *t);
/* Map as a consumer through a read-only reopen of the data fd. */
int tring_map_consumer(const struct tring *t, struct ring **out);
int tring_map_producer(const struct tring *t, struct ring **out);
/* A new consumer as the broker makes one: its slot (or -errno) and its
 * cursor page's fd in *page_fd (the caller's to pass on and close). */
int tring_add(struct tring *t, int *page_fd);
/* tring_add, map as a consumer and attach at start; the page fd is
 * closed. Exits on failure. *slot (if not NULL) gets the slot. */
struct ring *tring_consumer(struct tring *t, enum ring_start start,
			    int *slot);

/* Fork a helper that runs fn(arg) and exits with its return value. It dies
 * with the parent (PR_SET_PDEATHSIG) and is killed by the watchdog. */
pid_t tchild(int (*fn)(void *), void *arg);
/* Reap a helper; returns its exit code, or 128 + signal. */
int twait(pid_t pid);
/* Kill every helper still registered and exit(1) after secs seconds. */
void twatchdog(unsigned secs);

uint64_t tsum(const void *p, size_t n);
/* Fill n bytes deterministically from seed; returns tsum() of them. */
uint64_t tfill(void *p, size_t n, uint64_t seed);
/* Log-uniform size in [lo, hi] from a xorshift state. */
uint64_t tlogsize(uint64_t *rng, uint64_t lo, uint64_t hi);
uint64_t trand(uint64_t *rng);

/* Exit the current process with a message when cond is false. */
#define TCHECK(cond, ...) do {                                           \
	if (!(cond)) {                                                   \
		tfail(__FILE__, __LINE__, #cond, __VA_ARGS__);            \
	}                                                                \
} while (0)
void tfail(const char *file, int line, const char *cond, const char *fmt,
	   ...) __attribute__((noreturn, format(printf, 4, 5)));

#endif
