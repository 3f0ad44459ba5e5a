/*
 * spawn.c - fork/exec of shmdemux-worker with the fd layout of worker_abi.h,
 * and the mapping of its wait status to a stream's end reason.
 *
 * The child runs only async-signal-safe calls between fork and exec: argv is
 * built before the fork. Exec failure comes back through a close-on-exec
 * pipe: EOF means exec succeeded, an int is the errno.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <seccomp.h>

#include "proto.h"
#include "spawn.h"
#include "worker_abi.h"

/* Build argv into a->argv (pointers into ws's strings and a->buf).
 * Returns 0 or -E2BIG. */
int
spawn_args(const struct worker_start *ws, struct spawn_args *a)
{
	char **args = a->argv, *buf = a->buf;
	const size_t cap = sizeof(a->buf);
	size_t used = 0;
	int n = 0;

#define PUSH(s) do { if (n >= SPAWN_MAX_ARGS - 1) return -E2BIG; args[n++] = (char *)(s); } while (0)
#define PUSHF(...) do {						\
		int w_ = snprintf(buf + used, cap - used, __VA_ARGS__);	\
		if (w_ < 0 || (size_t)w_ >= cap - used)			\
			return -E2BIG;					\
		PUSH(buf + used);					\
		used += (size_t)w_ + 1;					\
	} while (0)

	PUSH(ws->path);
	PUSH("--stream-id");
	PUSHF("%" PRIu32, ws->stream_id);
	if (ws->seekable)
		PUSH("--seekable");
	if (ws->format[0] != '\0') {
		PUSH("--format");
		PUSH(ws->format);
	}
	if (ws->probesize > 0) {
		PUSH("--probesize");
		PUSHF("%" PRId64, ws->probesize);
	}
	if (ws->analyzeduration > 0) {
		PUSH("--analyzeduration");
		PUSHF("%" PRId64, ws->analyzeduration);
	}
	for (uint32_t off = 0; off < ws->opts_len;) {
		const char *kv = ws->opts + off;
		size_t len = strnlen(kv, ws->opts_len - off);

		if (len > 0) {
			PUSH("--demux-opt");
			PUSH(kv);
		}
		off += (uint32_t)len + 1;
	}
	if (ws->realtime)
		PUSH("--realtime");
	if (ws->mem_limit > 0) {
		PUSH("--mem-limit");
		PUSHF("%" PRIu64, ws->mem_limit);
	}
	if (ws->spool_limit > 0) {
		PUSH("--spool-limit");
		PUSHF("%" PRIu64, ws->spool_limit);
	}
	if (ws->decode != 0) {
		PUSH("--decode");
		PUSH(ws->decode == (CTL_DECODE_VIDEO | CTL_DECODE_AUDIO) ?
		     "all" : ws->decode == CTL_DECODE_VIDEO ? "video" : "audio");
	}
	if (ws->decode_threads > 0) {
		PUSH("--decode-threads");
		PUSHF("%" PRIu32, ws->decode_threads);
	}
	if (ws->decode_strict)
		PUSH("--decode-strict");
	if (ws->format_whitelist != NULL && ws->format_whitelist[0] != '\0') {
		PUSH("--format-whitelist");
		PUSH(ws->format_whitelist);
	}
#ifdef SHMDEMUX_FAULT_INJECTION
	if (ws->fault != NULL) {
		const char *colon = strchr(ws->fault, ':');

		if (colon == NULL)
			return -EINVAL;
		PUSH("--fault");
		PUSHF("%.*s", (int)(colon - ws->fault), ws->fault);
		PUSH("--fault-after");
		PUSH(colon + 1);
	}
#endif
	args[n] = NULL;
	a->argc = n;
	return 0;
#undef PUSH
#undef PUSHF
}

/* In the child: move fds to >= 10 first so the dup2s below cannot clobber
 * a source that happens to sit on 0..5. */
static int
hi_dup(int fd)
{
	return fcntl(fd, F_DUPFD_CLOEXEC, 10);
}

/* Where the child's fds come from: input, ready, log, data and admin go
 * to 0, 1, 2, 3 and 4; input, ready or log -1 is /dev/null, admin -1
 * leaves fd 4 closed. Nothing of the broker's own stdio reaches a
 * worker. */
struct placement {
	int input, data, admin, ready, log;
};

static void __attribute__((noreturn))
child(const char *path, char **argv, const struct placement *p, int errfd,
      pid_t parent)
{
	sigset_t none;
	int in, data, adm = -1, ready, log, err, devnull;
	int e;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (int sig = 1; sig < NSIG; sig++)
		signal(sig, SIG_DFL); /* EINVAL for KILL/STOP is fine */

	/* A worker must not outlive the broker; the check after the prctl
	 * closes the race with a broker that died before it. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent) {
		e = ESRCH;
		goto fail;
	}
	/* Its own session, so its own scheduling group (autogroup): a busy
	 * worker shares the CPU with other groups as one of them, and a
	 * spare's group can be made to yield while it loads (spare.c).
	 * A forked child is never a group leader: setsid cannot fail here. */
	if (setsid() < 0) {
		e = errno;
		goto fail;
	}

	devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	in = p->input >= 0 ? hi_dup(p->input) : devnull;
	ready = p->ready >= 0 ? hi_dup(p->ready) : devnull;
	log = p->log >= 0 ? hi_dup(p->log) : devnull;
	data = hi_dup(p->data);
	if (p->admin >= 0)
		adm = hi_dup(p->admin);
	err = hi_dup(errfd);
	if (in < 0 || ready < 0 || log < 0 || data < 0 ||
	    (p->admin >= 0 && adm < 0) || err < 0 || devnull < 0) {
		e = errno;
		goto fail;
	}
	errfd = err;
	/* dup2 clears FD_CLOEXEC on the targets: these survive exec. */
	if (dup2(in, WORKER_FD_INPUT) < 0 || dup2(ready, WORKER_FD_READY) < 0 ||
	    dup2(log, WORKER_FD_LOG) < 0 || dup2(data, WORKER_FD_DATA) < 0 ||
	    (adm >= 0 && dup2(adm, WORKER_FD_ADMIN) < 0) ||
	    dup3(errfd, 5, O_CLOEXEC) < 0) {
		e = errno;
		goto fail;
	}
	errfd = 5;
	if (adm < 0)
		close(WORKER_FD_ADMIN);
	closefrom(6);
	execv(path, argv);
	e = errno;
fail:
	(void)!write(errfd, &e, sizeof(e));
	_exit(127);
}

static pid_t
fork_exec(const char *path, char **argv, const struct placement *p)
{
	int pfd[2], e = 0, ret;
	pid_t pid, parent = getpid();
	ssize_t n;

	if (pipe2(pfd, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		ret = -errno;
		close(pfd[0]);
		close(pfd[1]);
		return ret;
	}
	if (pid == 0)
		child(path, argv, p, pfd[1], parent);

	close(pfd[1]);
	/* Blocks only until the child's exec (EOF) or its failure. */
	do
		n = read(pfd[0], &e, sizeof(e));
	while (n < 0 && errno == EINTR);
	close(pfd[0]);
	if (n == (ssize_t)sizeof(e)) {
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		return -(e > 0 ? e : EIO);
	}
	return pid;
}

pid_t
spawn_worker(const struct worker_start *ws)
{
	const struct placement p = {
		ws->input_fd, ws->data_fd, ws->admin_fd, ws->ready_fd,
		ws->log_fd,
	};
	struct spawn_args a;
	int ret;

	ret = spawn_args(ws, &a);
	if (ret < 0)
		return ret;
	return fork_exec(ws->path, a.argv, &p);
}

pid_t
spawn_spare(const char *path, const char *mode, int sock, int log_fd)
{
	const struct placement p = { -1, sock, -1, -1, log_fd };
	char *argv[] = { (char *)path, (char *)mode, NULL };

	return fork_exec(path, argv, &p);
}

void
spawn_kill_reap(pid_t pid)
{
	kill(pid, SIGKILL);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}

int
spawn_pidfd(pid_t pid)
{
	int fd = (int)syscall(SYS_pidfd_open, pid, 0);

	if (fd < 0)
		return -errno;
	/* pidfd_open sets O_CLOEXEC itself. */
	return fd;
}

int
spawn_reap(pid_t pid, siginfo_t *si)
{
	memset(si, 0, sizeof(*si));
	while (waitid(P_PID, (id_t)pid, si, WEXITED | WNOHANG) < 0) {
		if (errno != EINTR)
			return -errno;
	}
	return si->si_pid == pid ? 1 : 0;
}

static void
set_msg(struct worker_end *end, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
set_msg(struct worker_end *end, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(end->msg, sizeof(end->msg), fmt, ap);
	va_end(ap);
}

/* The worker's own message if it gave one, else ours. */
static void
worker_msg(struct worker_end *end, const struct worker_word *ww,
	   const char *fallback)
{
	if (ww->msg[0] != '\0')
		set_msg(end, "%s", ww->msg);
	else
		set_msg(end, "%s", fallback);
}

static void
map_exit(int code, uint32_t stop_reason, const struct worker_word *ww,
	 int input_err, struct worker_end *end)
{
	end->exit_code = code;
	/* A truncated input often ends in an open or demux error: the failed
	 * source is the cause worth reporting. */
	if (input_err != 0 && (code == WORKER_EXIT_OPEN_FAILED ||
	    code == WORKER_EXIT_DEMUX_ERROR)) {
		end->reason = SD_END_INPUT_ERROR;
		end->averror = ww->averror;
		set_msg(end, "reading the source failed: %s",
			strerror(input_err));
		return;
	}
	switch (code) {
	case WORKER_EXIT_EOF:
		if (ww->reason != SD_END_EOF) {
			end->reason = SD_END_EXITED;
			set_msg(end, "worker exited 0 without reporting the end "
				"of the input");
		} else if (input_err != 0) {
			end->reason = SD_END_INPUT_ERROR;
			set_msg(end, "reading the source failed: %s",
				strerror(input_err));
		} else {
			end->reason = SD_END_EOF;
		}
		break;
	case WORKER_EXIT_OPEN_FAILED:
		end->reason = SD_END_OPEN_FAILED;
		end->averror = ww->averror;
		worker_msg(end, ww, "the input could not be opened");
		break;
	case WORKER_EXIT_DEMUX_ERROR:
		end->reason = SD_END_DEMUX_ERROR;
		end->averror = ww->averror;
		worker_msg(end, ww, "demuxing failed");
		break;
	case WORKER_EXIT_RING_ERROR:
		end->reason = SD_END_RING_ERROR;
		end->averror = ww->averror;
		worker_msg(end, ww, "the ring rejected a record");
		break;
	case WORKER_EXIT_SPOOL_LIMIT:
		end->reason = SD_END_SPOOL_LIMIT;
		worker_msg(end, ww, "spool limit exceeded");
		break;
	case WORKER_EXIT_NOMEM:
		end->reason = SD_END_MEMORY;
		worker_msg(end, ww, "worker ran out of memory");
		break;
	case WORKER_EXIT_STOPPED:
		if (stop_reason != SD_END_NONE) {
			end->reason = stop_reason;
			break;
		}
		end->reason = SD_END_EXITED;
		set_msg(end, "worker stopped unasked");
		break;
	case WORKER_EXIT_USAGE:
		end->reason = SD_END_EXITED;
		set_msg(end, "worker rejected its arguments (exit status %d)",
			code);
		break;
	default:
		end->reason = SD_END_EXITED;
		set_msg(end, "worker exited with status %d", code);
		break;
	}
}

/* The trapped call as "forbidden syscall 41 (socket)"; the number was
 * range-checked by the caller, the name comes from libseccomp. */
static void
sandbox_msg(int32_t nr, struct worker_end *end)
{
	char *name;

	end->syscall_nr = nr;
	if (nr < 0) {
		set_msg(end, "worker made a forbidden system call (SIGSYS)");
		return;
	}
	name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
	set_msg(end, "forbidden syscall %d (%s)", (int)nr,
		name != NULL ? name : "?");
	free(name);
}

static void
map_signal(int sig, uint32_t stop_reason, const struct worker_word *ww,
	   struct worker_end *end)
{
	const char *abbrev = sigabbrev_np(sig);

	end->exit_code = -1;
	end->sig = sig;
	if (stop_reason != SD_END_NONE && (sig == SIGKILL || sig == SIGTERM)) {
		end->reason = stop_reason;
	} else if (sig == SIGSYS) {
		end->reason = SD_END_SANDBOX;
		sandbox_msg(ww->syscall_nr, end);
	} else if (sig == SIGXCPU) {
		end->reason = SD_END_WATCHDOG;
		set_msg(end, "worker exceeded its CPU time limit (SIGXCPU)");
	} else {
		end->reason = SD_END_CRASHED;
		set_msg(end, "worker killed by signal %d (SIG%s)", sig,
			abbrev != NULL ? abbrev : "?");
	}
}

void
spawn_map_end(const siginfo_t *si, uint32_t stop_reason,
	      const struct worker_word *ww, int input_err,
	      struct worker_end *end)
{
	memset(end, 0, sizeof(*end));
	end->syscall_nr = -1;
	if (si->si_code == CLD_EXITED)
		map_exit(si->si_status, stop_reason, ww, input_err, end);
	else
		map_signal(si->si_status, stop_reason, ww, end);
}
