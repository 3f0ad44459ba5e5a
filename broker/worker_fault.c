/*
 * worker_fault.c - test-only misbehaviour on command (built only with
 * SHMDEMUX_FAULT_INJECTION): the worker crashes, spins, leaks or makes a
 * forbidden call after a given number of published packets, so the tests
 * can check that each end is contained and reported for what it is; or it
 * turns on its readers (worker_hostile.c).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
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
	[WORKER_FAULT_READFD] = "readfd",
	[WORKER_FAULT_MMAPEXEC] = "mmapexec",
	[WORKER_FAULT_MPROTEXEC] = "mprotexec",
	[WORKER_FAULT_FLOOD] = "flood",
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

/* Descriptors that are not the input: fd 1 (once /dev/null, now closed
 * after the ring is mapped), fd 2 (once the broker's stderr, possibly the
 * operator's terminal; now the write end of a log pipe), fd 3 (the ring).
 * Any read that returns is a read the sandbox let through. */
static int
fault_readfd(void)
{
	static const int fds[] = { 1, 2, 3 };
	char byte;

	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (read(fds[i], &byte, 1) >= 0)
			return WORKER_EXIT_USAGE;
	return WORKER_EXIT_USAGE;
}

static void
write_all(const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(STDERR_FILENO, buf, len);

		if (n <= 0)
			return;
		buf += n;
		len -= (size_t)n;
	}
}

/* What a chatty or hostile demuxer could write to its log: one line of
 * 8 MiB, control characters and invalid UTF-8, then lines far faster than
 * anyone reads them. The broker must stay small, escape what it logs and
 * keep serving other streams; the stream itself goes on. */
static void
fault_flood(void)
{
	static const char evil[] = "evil \x1b[31mred\x1b[0m \x07" "bell "
		"\xff\xfe bad \xc3\xa9t\xc3\xa9 \xed\xa0\x80 surrogate \\ "
		"\r\n";
	static char big[65536];
	char line[64];

	memset(big, 'A', sizeof(big));
	for (int i = 0; i < 128; i++)
		write_all(big, sizeof(big));
	write_all("\n", 1);
	write_all(evil, sizeof(evil) - 1);
	for (int i = 0; i < 20000; i++) {
		int n = snprintf(line, sizeof(line), "flood line %d\n", i);

		write_all(line, (size_t)n);
	}
	write_all("flood: done\n", 12);
}

static int
worker_fault_fire(struct worker *w)
{
	volatile int *ro;
	void *p;

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
	case WORKER_FAULT_READFD:
		return fault_readfd();
	case WORKER_FAULT_MMAPEXEC:
		p = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p != MAP_FAILED)
			munmap(p, 4096);
		break;
	case WORKER_FAULT_MPROTEXEC:
		p = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p != MAP_FAILED &&
		    mprotect(p, 4096, PROT_READ | PROT_EXEC) == 0)
			munmap(p, 4096);
		break;
	case WORKER_FAULT_FLOOD:
		fault_flood();
		return -1;
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
