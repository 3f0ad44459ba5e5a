/*
 * worker_fault.c - test-only misbehaviour on command (built only with
 * SHMDEMUX_FAULT_INJECTION): the worker crashes, spins, leaks or makes a
 * forbidden call after a given number of published packets, so the tests
 * can check that each end is contained and reported for what it is; or it
 * turns on its readers (worker_hostile.c).
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "worker.h"
#include "worker_abi.h"

static const char *const kinds[] = {
	[WORKER_FAULT_SEGV] = "segv",
	[WORKER_FAULT_ABORT] = "abort",
	[WORKER_FAULT_KILL] = "kill",
	[WORKER_FAULT_ALLOC] = "alloc",
	[WORKER_FAULT_SPIN] = "spin",
	[WORKER_FAULT_SYSCALL] = "syscall",
	[WORKER_FAULT_EXIT] = "exit",
	[WORKER_FAULT_WRAPPED] = "wrapped",
	[WORKER_FAULT_TRACKS] = "tracks",
	[WORKER_FAULT_SIDEDATA] = "sidedata",
	[WORKER_FAULT_FRAMES] = "frames",
	[WORKER_FAULT_RANDOM] = "random",
	[WORKER_FAULT_STRUCT] = "struct",
};

int
worker_fault_parse(struct worker *w, const char *arg)
{
	size_t n = strcspn(arg, "=");
	char *end;

	for (size_t i = 1; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		if (kinds[i] == NULL || strlen(kinds[i]) != n ||
		    strncmp(arg, kinds[i], n) != 0)
			continue;
		w->fault = (int)i;
		w->fault_seed = 0;
		if (arg[n] == '\0')
			return 0;
		errno = 0;
		w->fault_seed = strtoull(arg + n + 1, &end, 10);
		return errno == 0 && end != arg + n + 1 && *end == '\0' ?
		       0 : -1;
	}
	return -1;
}

const char *
worker_fault_name(int kind)
{
	return kind > 0 && (size_t)kind < sizeof(kinds) / sizeof(kinds[0]) ?
	       kinds[kind] : "none";
}

/* Allocate and touch memory until an allocation fails (the address-space
 * limit), or until mem_limit when no limit is enforced (sanitizer builds),
 * then end the way a real allocation failure does. */
static void __attribute__((noreturn))
fault_alloc(struct worker *w)
{
	const size_t chunk = 1u << 20;
	uint64_t total = 0;
	char *p;

	while ((w->mem_limit == 0 || total < w->mem_limit) &&
	       (p = malloc(chunk)) != NULL) {
		memset(p, 0xa5, chunk); /* leaked on purpose: the worker ends */
		total += chunk;
	}
	ring_set_worker_status(w->ring, SD_END_MEMORY, 0,
			       "out of memory (fault injection)");
	/* no exit handlers: a leak checker would report the leak above */
	_exit(WORKER_EXIT_NOMEM);
}

static int
worker_fault_fire(struct worker *w)
{
	volatile int *ro;

	worker_log(w, "fault injection: %s after %lu packets",
		   kinds[w->fault], (unsigned long)w->fault_after);
	switch (w->fault) {
	case WORKER_FAULT_SEGV:
		/* a store to a read-only page: a real fault, which a NULL
		 * store would not be under UBSan (it reports and exits) */
		ro = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS,
			  -1, 0);
		if (ro != MAP_FAILED)
			*ro = 1;
		break;
	case WORKER_FAULT_ABORT:
		abort();
	case WORKER_FAULT_KILL:
		raise(SIGKILL);
		break;
	case WORKER_FAULT_ALLOC:
		fault_alloc(w);
	case WORKER_FAULT_SPIN:
		for (volatile unsigned long n = 0;; n++)
			;
	case WORKER_FAULT_SYSCALL:
		/* not on the allow-list: traps, the worker dies by SIGSYS */
		(void)!socket(AF_INET, SOCK_STREAM, 0);
		break;
	case WORKER_FAULT_EXIT:
		_exit(3);
	default:
		break;
	}
	return WORKER_EXIT_USAGE; /* the fault did not take */
}

int
worker_fault_step(struct worker *w)
{
	switch (w->fault) {
	case WORKER_FAULT_RANDOM:
	case WORKER_FAULT_STRUCT:
		worker_hostile_corrupt(w);
		return -1;
	case WORKER_FAULT_WRAPPED:
	case WORKER_FAULT_TRACKS:
	case WORKER_FAULT_SIDEDATA:
	case WORKER_FAULT_FRAMES:
		return worker_hostile_script(w);
	default:
		return w->published == w->fault_after ?
		       worker_fault_fire(w) : -1;
	}
}
