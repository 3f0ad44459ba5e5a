/*
 * sandbox.h - what the worker gives up before it reads a byte of input.
 *
 * Order (each step only narrows what the process can do; the parent-death
 * signal is set before exec by the broker and checked by the worker):
 *   1. resource limits: address space, no core dumps, few descriptors;
 *   2. when running as root: drop to an unprivileged user (nobody);
 *   3. PR_SET_NO_NEW_PRIVS, not dumpable;
 *   4. a seccomp-bpf allow-list: memory, futex, time, read on the input,
 *      write on stderr, recvmsg on the ring's admin channel only (cursor
 *      pages of new consumers, whose seals fcntl may read), threads.
 *      open/openat fail with EACCES (libc
 *      tries them on benign input: iconv modules). Anything else outside
 *      the list - socket/connect, exec, ptrace, fork, kill of other
 *      processes... - traps: the handler stores the syscall number where
 *      the broker can read it and the process dies by SIGSYS.
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
	int recv_fd;            /* > 0: recvmsg allowed on this fd only (the
	                           ring's admin channel); 0: not at all */
};

/* Steps 1-4. syscall_report, if not NULL, receives the number of a trapped
 * syscall (a word in the ring header the broker reads after the worker
 * died). On failure returns a negative errno and describes the step in err;
 * the caller must then exit without touching input. */
int sandbox_enter(const struct sandbox_conf *c, int32_t *syscall_report,
		  char *err, size_t errlen);

#endif
