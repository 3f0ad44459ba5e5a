/*
 * sandbox.h - what the worker gives up before it reads a byte of input.
 *
 * Order (each step only narrows what the process can do):
 *   1. parent-death signal (SIGKILL), checked against a parent that
 *      already died;
 *   2. resource limits: address space, no core dumps, few descriptors;
 *   3. when running as root: drop to an unprivileged user (nobody);
 *   4. PR_SET_NO_NEW_PRIVS, not dumpable;
 *   5. a seccomp-bpf allow-list: memory, futex, time, read on the input,
 *      write on stderr, threads. No open/openat, socket/connect, exec,
 *      ptrace, kill of other processes... A call outside the list traps:
 *      the handler stores the syscall number where the broker can read it
 *      and the process dies by SIGSYS.
 */
#ifndef SHMDEMUX_SANDBOX_H
#define SHMDEMUX_SANDBOX_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct sandbox_conf {
	uint64_t mem_limit;     /* RLIMIT_AS bytes; 0 = no limit */
	unsigned max_fds;       /* RLIMIT_NOFILE; must exceed the highest fd */
	int allow_threads;      /* decoders may start threads */
};

/* Parent-death signal; returns -ESRCH if the parent is already gone
 * (expected_ppid no longer our parent). */
int sandbox_bind_to_parent(pid_t expected_ppid);

/* Steps 2-5. syscall_report, if not NULL, receives the number of a trapped
 * syscall (a word in the ring header the broker reads after the worker
 * died). On failure returns a negative errno and describes the step in err;
 * the caller must then exit without touching input. */
int sandbox_enter(const struct sandbox_conf *c, int32_t *syscall_report,
		  char *err, size_t errlen);

#endif
