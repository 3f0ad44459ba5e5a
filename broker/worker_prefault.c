/*
 * worker_prefault.c - the page faults of a stream's start, taken ahead
 * (worker_prefault.h).
 *
 * What is touched, and what it saves, measured on the worker's probe of
 * a 4 s 720p H.264 + AAC MP4 (jemalloc build, 2-vCPU VM): ~1,400 faults
 * from the assignment to the end of the probe without, 85% of them in
 * memset on fresh memory (the decoders' contexts and frames that probing
 * opens), the rest the code of libavcodec and libavformat; ~80 with.
 * Each pass, in the waiting child: the resident pages it shares with the
 * server, ~650, 15-20 ms (each saves a copy-on-write fault to the stream);
 * 16 MiB of fresh memory in huge pages, 77 faults, ~3 ms (4,096 faults and
 * 43 ms in small pages); the libraries' code and read-only data, ~300
 * faults (fault-around maps 16 pages each), 11-13 ms. Touching every
 * library's (all ~140) costs 100-130 ms for nothing more.
 */
#include <malloc.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "worker_prefault.h"

/* Pages touched between two looks at the socket (~0.2-1 ms). */
#define CHECK_EVERY 64u

#define HUGE_PAGE (2ul << 20)

/* Anonymous mappings larger than this are reservations (a sanitizer's
 * shadow, an allocator's address space), not the server's memory: the
 * largest a loaded server has is jemalloc's 8 MiB. */
#define ANON_MAX (64ul << 20)

/* Fresh memory is faulted one huge page at a time: aligned, so that the
 * kernel can back it with one (a fault per 2 MiB instead of 512), and
 * below jemalloc's oversize threshold (8 MiB), whose extents it keeps
 * apart from the arena that serves everything else. */
#define FRESH_CHUNK HUGE_PAGE
#define FRESH_CHUNKS (WORKER_PREFAULT_HEAP / FRESH_CHUNK)

/* Whose code probing and demuxing run (basename prefixes). */
static const char *const code_of[] = {
	"libavcodec.so", "libavformat.so", "libavutil.so", "libc.so",
	"libjemalloc.so",
};

/* jemalloc's control interface, when the worker is linked with it (the
 * default build): freed memory stays resident only for its dirty decay
 * time (10 s by default, counted while the process allocates), so a child
 * that waits longer would find its fresh memory purged at its stream's
 * first allocations. */
extern int mallctl(const char *name, void *oldp, size_t *oldlenp,
		   void *newp, size_t newlen) __attribute__((weak));

static char decay_name[64];
static ssize_t saved_decay;
static int decay_held;

/* Keep freed memory resident until worker_prefault_release(). */
static void
hold_dirty(void)
{
	unsigned arena;
	size_t len = sizeof(arena), olen = sizeof(saved_decay);
	ssize_t never = -1;

	if (mallctl == NULL ||
	    mallctl("thread.arena", &arena, &len, NULL, 0) != 0)
		return;
	snprintf(decay_name, sizeof(decay_name), "arena.%u.dirty_decay_ms",
		 arena);
	if (mallctl(decay_name, &saved_decay, &olen, &never,
		    sizeof(never)) == 0)
		decay_held = 1;
}

struct toucher {
	int sock;
	int stop;             /* the stream arrived (or the socket closed) */
	uintptr_t page;
	unsigned long pages;
};

static void
look(struct toucher *t)
{
	struct pollfd p = { .fd = t->sock, .events = POLLIN };

	if (poll(&p, 1, 0) != 0)
		t->stop = 1;
}

/* Read every page of [lo, hi), or write each back as it was. These are
 * the process's own pages, whatever a sanitizer thinks of their bytes;
 * one thread, so a write back cannot undo another's. */
__attribute__((no_sanitize_address)) static void
touch(struct toucher *t, uintptr_t lo, uintptr_t hi, int write)
{
	for (uintptr_t a = lo; a < hi && !t->stop; a += t->page) {
		volatile unsigned char *p = (volatile unsigned char *)a;

		if (write)
			*p = *p;
		else
			(void)*p;
		if (++t->pages % CHECK_EVERY == 0)
			look(t);
	}
}

static int
is_code_of_interest(const char *path)
{
	const char *base = strrchr(path, '/');

	base = base != NULL ? base + 1 : path;
	for (size_t i = 0; i < sizeof(code_of) / sizeof(code_of[0]); i++)
		if (strncmp(base, code_of[i], strlen(code_of[i])) == 0)
			return 1;
	return 0;
}

/* Write back the pages of [lo, hi) that are resident, shared with the
 * server until now: never one the process has not got (a reservation,
 * a guard). */
static void
touch_resident(struct toucher *t, uintptr_t lo, uintptr_t hi)
{
	unsigned char vec[256];
	const uintptr_t span = sizeof(vec) * t->page;

	for (uintptr_t a = lo; a < hi && !t->stop; a += span) {
		uintptr_t end = hi - a < span ? hi : a + span;

		if (mincore((void *)a, end - a, vec) != 0)
			return;
		for (uintptr_t p = a; p < end && !t->stop; p += t->page)
			if (vec[(p - a) / t->page] & 1)
				touch(t, p, p + t->page, 1);
	}
}

/* One pass over /proc/self/maps: the process's own memory, the part it
 * shares with the server (pass 0), the libraries' data (1) and their
 * code and read-only data (2). */
static void
touch_maps(struct toucher *t, int pass)
{
	char line[512], perms[8];
	unsigned long lo, hi;
	FILE *f = fopen("/proc/self/maps", "re");
	int off;

	if (f == NULL)
		return;
	while (!t->stop && fgets(line, sizeof(line), f) != NULL) {
		const char *path;

		off = 0;
		if (sscanf(line, "%lx-%lx %7s %*s %*s %*s %n", &lo, &hi, perms,
			   &off) != 3 || off == 0 || lo >= hi)
			continue;
		path = line + off;
		line[strcspn(line, "\n")] = '\0';
		if (perms[0] != 'r' || perms[3] != 'p')
			continue;
		if (pass == 0 && perms[1] == 'w' && hi - lo <= ANON_MAX &&
		    (path[0] == '\0' || strcmp(path, "[heap]") == 0))
			touch_resident(t, lo, hi);
		else if (pass > 0 && path[0] == '/' &&
			 is_code_of_interest(path) &&
			 (perms[1] == 'w') == (pass == 1))
			touch(t, lo, hi, pass == 1);
	}
	fclose(f);
}

/* Fresh memory from the allocator, in huge pages where the kernel gives
 * them (a fault per 2 MiB), then freed: glibc keeps it at the top of its
 * heap (worker_prefault_setup), jemalloc among its dirty extents
 * (hold_dirty), and the allocations of the stream reuse it. */
static void
touch_fresh_heap(struct toucher *t)
{
	unsigned char *m[FRESH_CHUNKS];
	unsigned n;

	hold_dirty();
	for (n = 0; n < FRESH_CHUNKS && !t->stop; n++) {
		m[n] = aligned_alloc(HUGE_PAGE, FRESH_CHUNK);
		if (m[n] == NULL)
			break;
		(void)madvise(m[n], FRESH_CHUNK, MADV_HUGEPAGE);
		touch(t, (uintptr_t)m[n], (uintptr_t)m[n] + FRESH_CHUNK, 1);
	}
	while (n > 0)
		free(m[--n]);
}

void
worker_prefault_setup(void)
{
	(void)mallopt(M_MMAP_THRESHOLD, 32 << 20);
	(void)mallopt(M_TRIM_THRESHOLD, 2 * WORKER_PREFAULT_HEAP);
}

unsigned long
worker_prefault(int sock)
{
	struct toucher t = { .sock = sock };
	struct pollfd p = { .fd = sock, .events = POLLIN };
	long page = sysconf(_SC_PAGESIZE);

	t.page = page > 0 ? (uintptr_t)page : 4096;
	if (poll(&p, 1, WORKER_PREFAULT_DELAY_MS) != 0)
		return 0;
	touch_maps(&t, 0);
	if (!t.stop)
		touch_fresh_heap(&t);
	touch_maps(&t, 1);
	touch_maps(&t, 2);
	return t.pages;
}

void
worker_prefault_release(void)
{
	if (mallctl == NULL) {
		(void)malloc_trim(0);
		return;
	}
	if (decay_held) {
		/* the next decay purges what has been dirty since the wait */
		(void)mallctl(decay_name, NULL, NULL, &saved_decay,
			      sizeof(saved_decay));
		decay_held = 0;
	}
}
