/*
 * sandbox.h - what the worker gives up before it reads a byte of input.
 *
 * Order (each step only narrows what the process can do; the parent-death
 * signal is set before exec by the broker and checked by the worker):
 *   1. resource limits: address space, no core dumps, no file growth
 *      (RLIMIT_FSIZE 0), few descriptors;
 *   2. when running as root: drop to an unprivileged user (nobody);
 *   3. PR_SET_NO_NEW_PRIVS, not dumpable;
 *   4. a seccomp-bpf allow-list: memory (never executable: mmap and
 *      mprotect with PROT_EXEC trap), futex, time, read/readv/pread64,
 *      write/writev and recvmsg only on the fds the conf names (the
 *      worker: reads on its input, writes on its log pipe, recvmsg on the
 *      ring's admin channel, whose cursor pages' seals fcntl may read),
 *      write on the fds from wake_fds_from up (the consumers' wake pipes
 *      the worker received on that channel),
 *      threads. open/openat fail with EACCES (libc tries them on benign
 *      input: iconv modules). Anything else outside the list -
 *      socket/connect, exec, ptrace, fork, kill of other processes, a read
 *      of another fd... - traps: the handler stores the syscall number
 *      where the broker can read it and the process dies by SIGSYS.
 */
#ifndef SHMDEMUX_SANDBOX_H
#define SHMDEMUX_SANDBOX_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Calls on a descriptor the filter allows only for the descriptors named
 * in sandbox_conf.fds, compared on their fd argument (a libseccomp
 * argument comparison). A new kind is a new bit here and its calls in
 * sandbox.c's fd_calls table. */
enum {
	SANDBOX_FD_READ = 1u << 0,   /* read, readv, pread64 */
	SANDBOX_FD_WRITE = 1u << 1,  /* write, writev */
	SANDBOX_FD_RECV = 1u << 2,   /* recvmsg */
};

#define SANDBOX_MAX_FD_RULES 8

struct sandbox_fd_rule {
	int fd;
	unsigned ops;           /* SANDBOX_FD_* */
};

struct sandbox_conf {
	uint64_t mem_limit;     /* RLIMIT_AS bytes; 0 = no limit */
	unsigned max_fds;       /* RLIMIT_NOFILE; must exceed the highest fd
	                           (every limit: at most the hard one in force) */
	int allow_threads;      /* decoders may start threads */
	/* who may be read, written and received from; a call on any other fd
	 * traps */
	struct sandbox_fd_rule fds[SANDBOX_MAX_FD_RULES];
	unsigned nfds;
	/* write(2) (not writev) is also allowed on every fd >= wake_fds_from
	 * (0: on none): the worker's received wake pipes. The caller makes
	 * sure that every fd in that range is one it received from the
	 * broker (worker_abi.h, "Wake pipes"). */
	int wake_fds_from;
};

/* Steps 1-4. syscall_report, if not NULL, receives the number of a trapped
 * syscall (a word in the ring header the broker reads after the worker
 * died). On failure returns a negative errno and describes the step in err;
 * the caller must then exit without touching input. */
int sandbox_enter(const struct sandbox_conf *c, int32_t *syscall_report,
		  char *err, size_t errlen);

#endif
