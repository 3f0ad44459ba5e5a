/*
 * test_worker_alloc.c - the worker's malloc family (broker/worker_alloc.c),
 * linked into this program the way it is into the worker: the C and glibc
 * semantics callers rely on, and the address-space limit ending the process
 * with WORKER_EXIT_NOMEM for an ordinary request while a huge one fails with
 * ENOMEM.
 */
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "worker_abi.h"

/* The compiler must not fold away allocations whose result it can see,
 * nor refuse arguments that are wrong on purpose (clang rejects an
 * alignment that is not a power of two when it sees a constant). */
static void *(*volatile malloc_p)(size_t) = malloc;
static void *(*volatile calloc_p)(size_t, size_t) = calloc;
static void *(*volatile realloc_p)(void *, size_t) = realloc;
static void *(*volatile memalign_p)(size_t, size_t) = memalign;
static void *(*volatile aligned_alloc_p)(size_t, size_t) = aligned_alloc;

static void
test_semantics(void)
{
	unsigned char *p, *q;
	void *a;
	long page = sysconf(_SC_PAGESIZE);

	/* malloc(0): a unique pointer that can be freed */
	p = malloc_p(0);
	q = malloc_p(0);
	CHECK(p != NULL && q != NULL && p != q);
	free(p);
	free(q);
	free(NULL);

	/* calloc zeroes, and refuses an overflowing product */
	p = calloc_p(1000, 7);
	CHECK(p != NULL);
	for (int i = 0; i < 7000; i++)
		CHECK(p[i] == 0);
	free(p);
	errno = 0;
	CHECK(calloc_p(SIZE_MAX / 2, 3) == NULL && errno == ENOMEM);

	/* realloc keeps the bytes; realloc(NULL) mallocs; realloc(p, 0)
	 * frees and returns NULL, as glibc's does */
	p = realloc_p(NULL, 10);
	CHECK(p != NULL);
	memcpy(p, "0123456789", 10);
	p = realloc_p(p, 1 << 20);
	CHECK(p != NULL && memcmp(p, "0123456789", 10) == 0);
	CHECK(malloc_usable_size(p) >= (size_t)1 << 20);
	CHECK(realloc_p(p, 0) == NULL);
	CHECK(malloc_usable_size(NULL) == 0);

	/* the aligned forms */
	CHECK(posix_memalign(&a, 4096, 100) == 0 && (uintptr_t)a % 4096 == 0);
	free(a);
	CHECK(posix_memalign(&a, 64, 0) == 0 && a != NULL);
	free(a);
	CHECK(posix_memalign(&a, 24, 100) == EINVAL);
	CHECK(posix_memalign(&a, 2, 100) == EINVAL);
	a = memalign_p(48, 100); /* rounded up to 64, as glibc does */
	CHECK(a != NULL && (uintptr_t)a % 64 == 0);
	free(a);
	a = aligned_alloc(256, 512);
	CHECK(a != NULL && (uintptr_t)a % 256 == 0);
	free(a);
	errno = 0;
	CHECK(aligned_alloc_p(48, 96) == NULL && errno == EINVAL);
	a = valloc(10);
	CHECK(a != NULL && (uintptr_t)a % (uintptr_t)page == 0);
	free(a);
	a = pvalloc(10);
	CHECK(a != NULL && (uintptr_t)a % (uintptr_t)page == 0);
	CHECK(malloc_usable_size(a) >= (size_t)page);
	free(a);
	printf("semantics: malloc(0), calloc, realloc, the aligned forms as "
	       "glibc's\n");
}

/* Under an address-space limit: a huge request fails with ENOMEM and the
 * process goes on; then ordinary requests until one is refused, which
 * must end the process with WORKER_EXIT_NOMEM. */
static void
test_limit(void)
{
	pid_t pid = fork();
	int st;

	CHECK(pid >= 0);
	if (pid == 0) {
		struct rlimit rl = { 256u << 20, 256u << 20 };

		if (setrlimit(RLIMIT_AS, &rl) < 0)
			_exit(2);
		errno = 0;
		if (malloc_p((size_t)1 << 30) != NULL || errno != ENOMEM)
			_exit(3);
		if (realloc_p(malloc_p(16), (size_t)1 << 30) != NULL)
			_exit(4);
		for (int i = 0; i < 1 << 20; i++) {
			unsigned char *p = malloc_p(1 << 20);

			if (p == NULL)
				_exit(5); /* must not return NULL */
			p[0] = 1;
		}
		_exit(6); /* 1 TiB allocated under 256 MiB? */
	}
	while (waitpid(pid, &st, 0) < 0)
		CHECK(errno == EINTR);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != WORKER_EXIT_NOMEM)
		fprintf(stderr, "child: status 0x%x\n", (unsigned)st);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == WORKER_EXIT_NOMEM);
	printf("limit: a 1 GiB request fails with ENOMEM and the process "
	       "goes on; the first 1 MiB request refused exits %d\n",
	       WORKER_EXIT_NOMEM);
}

int
main(void)
{
	test_semantics();
	test_limit();
	return 0;
}
