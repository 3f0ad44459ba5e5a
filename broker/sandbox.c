/*
 * sandbox.c - resource limits, privilege drop and the seccomp allow-list
 * of the demux worker.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <seccomp.h>

#include "sandbox.h"

static int32_t *volatile trap_report;

/*
 * SIGSYS from SECCOMP_RET_TRAP: note the syscall number, then die by SIGSYS
 * so the broker sees the real cause. Only async-signal-safe calls, all of
 * them on the allow-list.
 */
static void
on_sigsys(int sig, siginfo_t *si, void *uctx)
{
	struct sigaction dfl;
	sigset_t set;

	(void)uctx;
	if (trap_report != NULL)
		*(volatile int32_t *)trap_report = si->si_syscall;
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	sigaction(sig, &dfl, NULL);
	/* SIGSYS is blocked while its handler runs: unblock it, then the
	 * re-raise at default disposition terminates us */
	sigemptyset(&set);
	sigaddset(&set, SIGSYS);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	syscall(SYS_tgkill, getpid(), syscall(SYS_gettid), SIGSYS);
	_exit(128 + SIGSYS);
}

/* Soft and hard limit to v, or to the hard limit already in force if
 * that is lower: raising it needs CAP_SYS_RESOURCE, and a worker started
 * under `ulimit -Hn 256` is held tighter than asked, not refused. */
static int
set_limit(int res, rlim_t v)
{
	struct rlimit rl;

	if (getrlimit(res, &rl) == 0 && rl.rlim_max != RLIM_INFINITY &&
	    rl.rlim_max < v)
		v = rl.rlim_max;
	rl.rlim_cur = v;
	rl.rlim_max = v;
	return setrlimit(res, &rl) < 0 ? -errno : 0;
}

static int
drop_root(char *err, size_t errlen)
{
	const struct passwd *pw;
	pid_t parent = getppid();
	uid_t uid;
	gid_t gid;

	if (geteuid() != 0)
		return 0;
	pw = getpwnam("nobody");
	uid = pw != NULL ? pw->pw_uid : 65534;
	gid = pw != NULL ? pw->pw_gid : 65534;
	if (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 ||
	    setresuid(uid, uid, uid) < 0) {
		snprintf(err, errlen, "dropping root to uid %u: %s",
			 (unsigned)uid, strerror(errno));
		return -errno;
	}
	/* Changing credentials clears the parent-death signal: set it again,
	 * or a worker outlives a broker killed outright. The parent check
	 * covers a broker that died while it was cleared. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent) {
		snprintf(err, errlen, "the broker is gone");
		return -ESRCH;
	}
	return 0;
}

/* Syscalls a demuxer (and decoder threads) needs once its input and ring
 * are in place. Anything else traps. Reads and writes are allowed per fd
 * (fd_calls), mmap and mprotect without PROT_EXEC only (build_filter). */
static const int allowed[] = {
	SCMP_SYS(lseek), SCMP_SYS(fstat), SCMP_SYS(close),
	SCMP_SYS(munmap), SCMP_SYS(mremap), SCMP_SYS(brk), SCMP_SYS(madvise),
	SCMP_SYS(futex), SCMP_SYS(clock_gettime), SCMP_SYS(clock_nanosleep),
	SCMP_SYS(nanosleep), SCMP_SYS(gettimeofday), SCMP_SYS(time),
	SCMP_SYS(clock_getres),
	SCMP_SYS(rt_sigreturn), SCMP_SYS(rt_sigprocmask),
	SCMP_SYS(rt_sigaction), SCMP_SYS(sigaltstack),
	SCMP_SYS(exit), SCMP_SYS(exit_group), SCMP_SYS(restart_syscall),
	SCMP_SYS(getpid), SCMP_SYS(gettid), SCMP_SYS(getppid),
	SCMP_SYS(sched_yield), SCMP_SYS(sched_getaffinity),
	SCMP_SYS(getrandom), SCMP_SYS(set_robust_list), SCMP_SYS(rseq),
	SCMP_SYS(getrusage), SCMP_SYS(prlimit64), SCMP_SYS(membarrier),
	SCMP_SYS(ppoll), SCMP_SYS(poll),
};

/* The calls each SANDBOX_FD_* kind allows, on the named fd only (their
 * first argument). What libavformat, glibc and jemalloc call once the
 * worker runs, traced: read on the input (AVIO), write and writev on
 * stderr (av_log, fprintf); recvmsg on the ring's admin channel (new
 * consumers' cursor pages, ring_admin_poll). */
static const struct {
	unsigned op;
	int nr;
} fd_calls[] = {
	{ SANDBOX_FD_READ, SCMP_SYS(read) },
	{ SANDBOX_FD_READ, SCMP_SYS(readv) },
	{ SANDBOX_FD_READ, SCMP_SYS(pread64) },
	{ SANDBOX_FD_WRITE, SCMP_SYS(write) },
	{ SANDBOX_FD_WRITE, SCMP_SYS(writev) },
	{ SANDBOX_FD_RECV, SCMP_SYS(recvmsg) },
};

static int
add_fd_rules(scmp_filter_ctx ctx, const struct sandbox_conf *c)
{
	int rc = 0;

	if (c->nfds > SANDBOX_MAX_FD_RULES)
		return -EINVAL;
	for (unsigned i = 0; i < c->nfds; i++) {
		const struct sandbox_fd_rule *r = &c->fds[i];

		if (r->fd < 0)
			return -EINVAL;
		for (size_t k = 0; k < sizeof(fd_calls) / sizeof(fd_calls[0]);
		     k++) {
			if (!(r->ops & fd_calls[k].op))
				continue;
			rc = rc ? rc : seccomp_rule_add(ctx, SCMP_ACT_ALLOW,
			    fd_calls[k].nr, 1,
			    SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)r->fd, 0));
		}
	}
	return rc;
}

static int
build_filter(const struct sandbox_conf *c, scmp_filter_ctx *out)
{
	scmp_filter_ctx ctx;
	int rc = 0;

	ctx = seccomp_init(SCMP_ACT_TRAP);
	if (ctx == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++)
		rc = rc ? rc : seccomp_rule_add(ctx, SCMP_ACT_ALLOW, allowed[i], 0);
	rc = rc ? rc : add_fd_rules(ctx, c);
	/* Consumers' wake pipes arrive on the admin channel at the lowest
	 * free numbers, above every fd the worker holds (it never closes
	 * them before it exits): what it can write there is what the broker
	 * sent, pipe write ends it made non-blocking, and cursor pages,
	 * which are read-only fds. No dup call is allowed, so nothing else
	 * can be moved up there. */
	if (c->wake_fds_from > 0)
		rc = rc ? rc : seccomp_rule_add(ctx, SCMP_ACT_ALLOW,
		    SCMP_SYS(write), 1, SCMP_A0(SCMP_CMP_GE,
		    (scmp_datum_t)c->wake_fds_from, 0));
	/* No executable memory: a memory-corruption exploit cannot map or
	 * turn its payload into code (nothing in a demuxer or a decoder
	 * generates code; the libraries were mapped before). */
	rc = rc ? rc : seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mmap),
	    1, SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	rc = rc ? rc : seccomp_rule_add(ctx, SCMP_ACT_ALLOW,
	    SCMP_SYS(mprotect), 1, SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	/* fstat() is newfstatat(fd, "", buf, AT_EMPTY_PATH) in glibc: allow
	 * only that form, never a path lookup. */
	rc = rc ? rc : seccomp_rule_add(ctx, SCMP_ACT_ALLOW,
	    SCMP_SYS(newfstatat), 1,
	    SCMP_A3(SCMP_CMP_MASKED_EQ, AT_EMPTY_PATH, AT_EMPTY_PATH));
	/* Opening files is refused, not trapped: libc itself tries it on
	 * benign input (iconv loading a charset module for a DVB service
	 * name, say), and the demuxer copes with the failure. The call is
	 * never executed either way. */
	rc = rc ? rc : seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES),
	    SCMP_SYS(openat), 0);
	rc = rc ? rc : seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES),
	    SCMP_SYS(open), 0);
	/* fcntl: flag queries and changes, no fd duplication games; the
	 * seals of a cursor page received on the admin channel */
	rc = rc ? rc : seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(fcntl),
	    1, SCMP_A1(SCMP_CMP_EQ, F_GETFL, 0));
	rc = rc ? rc : seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(fcntl),
	    1, SCMP_A1(SCMP_CMP_EQ, F_GETFD, 0));
	rc = rc ? rc : seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(fcntl),
	    1, SCMP_A1(SCMP_CMP_EQ, F_GET_SEALS, 0));
	/* harmless prctl queries and thread names */
	rc = rc ? rc : seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prctl),
	    1, SCMP_A0(SCMP_CMP_EQ, PR_GET_NO_NEW_PRIVS, 0));
	rc = rc ? rc : seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prctl),
	    1, SCMP_A0(SCMP_CMP_EQ, PR_SET_NAME, 0));
	/* signals only to ourselves (abort(), the SIGSYS re-raise) */
	rc = rc ? rc : seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(tgkill),
	    1, SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)getpid(), 0));
	if (c->allow_threads) {
		/* clone3 passes its flags in memory, which BPF cannot read:
		 * make it fail so glibc falls back to clone(2), whose flags
		 * must include CLONE_THREAD (a thread, not a process). */
		rc = rc ? rc : seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS),
		    SCMP_SYS(clone3), 0);
		rc = rc ? rc : seccomp_rule_add(ctx, SCMP_ACT_ALLOW,
		    SCMP_SYS(clone), 1,
		    SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD));
	}
	if (rc < 0) {
		seccomp_release(ctx);
		return rc;
	}
	*out = ctx;
	return 0;
}

int
sandbox_enter(const struct sandbox_conf *c, int32_t *syscall_report,
	      char *err, size_t errlen)
{
	struct sigaction sa;
	scmp_filter_ctx ctx = NULL;
	int rc;

	/* RLIMIT_FSIZE 0: no file it could ever write to may grow (SIGXFSZ) */
	if ((rc = set_limit(RLIMIT_CORE, 0)) < 0 ||
	    (rc = set_limit(RLIMIT_FSIZE, 0)) < 0 ||
	    (c->max_fds > 0 && (rc = set_limit(RLIMIT_NOFILE, c->max_fds)) < 0) ||
	    (c->mem_limit > 0 && (rc = set_limit(RLIMIT_AS, c->mem_limit)) < 0)) {
		snprintf(err, errlen, "resource limits: %s", strerror(-rc));
		return rc;
	}
	if ((rc = drop_root(err, errlen)) < 0)
		return rc;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
	    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) {
		rc = -errno;
		snprintf(err, errlen, "prctl: %s", strerror(errno));
		return rc;
	}

	trap_report = syscall_report;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_sigsys;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSYS, &sa, NULL) < 0) {
		rc = -errno;
		snprintf(err, errlen, "sigaction(SIGSYS): %s", strerror(errno));
		return rc;
	}

	if ((rc = build_filter(c, &ctx)) < 0 ||
	    (rc = seccomp_load(ctx)) < 0) {
		snprintf(err, errlen, "seccomp filter: %s", strerror(-rc));
		if (ctx != NULL)
			seccomp_release(ctx);
		return rc;
	}
	seccomp_release(ctx);
	return 0;
}
