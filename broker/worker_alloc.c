/*
 * worker_alloc.c - the worker's malloc family, on jemalloc (built with
 * SHMDEMUX_WORKER_JEMALLOC; README, "Dependencies and why").
 *
 * Defined in the executable, these come first in the link map and serve
 * every library in the process, libavformat's packet allocations included
 * (of the set glibc lets a program replace, every one that allocates:
 * malloc, calloc, realloc, aligned_alloc, memalign, posix_memalign,
 * pvalloc, valloc; free and malloc_usable_size are jemalloc's own, its
 * fast path). They add one thing to jemalloc: a request the address-space
 * limit refuses ends the worker with WORKER_EXIT_NOMEM, which the broker
 * reports as memory-limit. libavformat and its parsers do not pass every
 * failed allocation on (an H.264 parser that cannot allocate logs "Error
 * splitting the input into NAL units" and goes on), so without this a
 * worker at its limit could end as eof though allocations failed on the
 * way (isolation_memory's did), its readers never told that what they got
 * may lack what those allocations were for. Only a
 * request below WORKER_ALLOC_FATAL is taken as the limit reached: a larger
 * one is usually a size read from hostile input, and fails with ENOMEM as
 * before, for the demuxer to handle.
 */
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include <jemalloc/jemalloc.h>

#include "worker_abi.h"

#define WORKER_ALLOC_FATAL ((size_t)64 << 20)

static void *
failed(size_t size)
{
	static const char msg[] = "shmdemux-worker: out of memory (address "
		"space limit)\n";

	if (size < WORKER_ALLOC_FATAL) {
		(void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
		_exit(WORKER_EXIT_NOMEM);
	}
	errno = ENOMEM;
	return NULL;
}

/* jemalloc leaves a request for 0 bytes undefined; C asks for a unique
 * pointer, which glibc gives. */
static void *
alloc(size_t size, int flags)
{
	void *p = mallocx(size != 0 ? size : 1, flags);

	return p != NULL ? p : failed(size);
}

static int
pow2(size_t v)
{
	return v != 0 && (v & (v - 1)) == 0;
}

void *
malloc(size_t size)
{
	return alloc(size, 0);
}

void *
calloc(size_t n, size_t size)
{
	size_t total;

	if (__builtin_mul_overflow(n, size, &total)) {
		errno = ENOMEM;
		return NULL;
	}
	return alloc(total, MALLOCX_ZERO);
}

/* glibc's: realloc(p, 0) frees p and returns NULL. */
void *
realloc(void *p, size_t size)
{
	void *q;

	if (p == NULL)
		return alloc(size, 0);
	if (size == 0) {
		free(p);
		return NULL;
	}
	q = rallocx(p, size, 0);
	return q != NULL ? q : failed(size);
}

int
posix_memalign(void **out, size_t align, size_t size)
{
	void *p;

	if (!pow2(align) || align % sizeof(void *) != 0)
		return EINVAL;
	p = alloc(size, MALLOCX_ALIGN(align));
	if (p == NULL)
		return ENOMEM;
	*out = p;
	return 0;
}

/* glibc's memalign rounds an alignment that is no power of two up to
 * one. */
void *
memalign(size_t align, size_t size)
{
	size_t a = sizeof(void *);

	while (a < align && a <= SIZE_MAX / 2)
		a <<= 1;
	if (a < align) {
		errno = EINVAL;
		return NULL;
	}
	return alloc(size, MALLOCX_ALIGN(a));
}

void *
aligned_alloc(size_t align, size_t size)
{
	if (!pow2(align)) {
		errno = EINVAL;
		return NULL;
	}
	return memalign(align, size);
}

void *
valloc(size_t size)
{
	return memalign((size_t)sysconf(_SC_PAGESIZE), size);
}

void *
pvalloc(size_t size)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);

	if (size > SIZE_MAX - page) {
		errno = ENOMEM;
		return NULL;
	}
	return memalign(page, (size + page - 1) & ~(page - 1));
}
