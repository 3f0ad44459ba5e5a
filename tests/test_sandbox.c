/*
 * test_sandbox.c - the worker sandbox really forbids what it says.
 *
 * Each case runs in a forked child that enters the sandbox and then tries
 * one thing; the parent checks how the child ended. The child may read one
 * pipe (its input), write fd 2 and recvmsg on one socket (the ring's admin
 * channel), as the worker may, and write (not writev) the fds from
 * WAKE_FROM up (the worker's received wake pipes); any other read, write
 * or receive, executable memory and file growth are forbidden.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "sandbox.h"

static int32_t *report;

static void *
thread_main(void *arg)
{
	size_t n = 4u << 20;
	char *p = malloc(n);

	(void)arg;
	if (p == NULL)
		return (void *)1;
	memset(p, 0x5a, n);
	free(p);
	return NULL;
}

enum what {
	DO_NOTHING, DO_THREAD, DO_SOCKET, DO_OPEN, DO_EXEC, DO_WRITE_STDOUT,
	DO_BIG_ALLOC, DO_KILL_PARENT, DO_FORK, DO_READ_INPUT, DO_READ_OTHER,
	DO_READV_OTHER, DO_PREAD_OTHER, DO_READ_STDERR, DO_WRITE_LOG,
	DO_MMAP_EXEC, DO_MPROTECT_EXEC, DO_MMAP_RW, DO_FSIZE, DO_RECV_ADMIN,
	DO_RECV_OTHER, DO_READ_ADMIN, DO_WRITE_WAKE, DO_WRITEV_WAKE,
	DO_WRITE_BELOW,
};

/* Two pipes with a byte waiting in each: the first is the sandboxed
 * child's input (readable), the second is not its to read. */
static int input_fd = -1, other_fd = -1;

static int
pipe_with_byte(void)
{
	int p[2];

	if (pipe(p) < 0 || write(p[1], "x", 1) != 1)
		return -1;
	close(p[1]);
	return p[0];
}

/* DO_FSIZE: stderr becomes a regular file before the sandbox; the write
 * the filter allows there must then hit RLIMIT_FSIZE (SIGXFSZ). */
static int
stderr_to_file(void)
{
	char path[] = "/tmp/test_sandbox.XXXXXX";
	int fd = mkstemp(path);

	if (fd < 0)
		return -1;
	unlink(path);
	if (dup2(fd, STDERR_FILENO) < 0)
		return -1;
	close(fd);
	return 0;
}

/* The ring's admin channel as the worker has it (recvmsg only), and
 * another socket, both made before the sandbox. */
#define ADMIN_FD 9
#define OTHER_FD 10
#define WAKE_FROM 12 /* a pipe's write end is put there */
#define BELOW_FD 11  /* and another's just below */

static int
recv_one(int fd)
{
	char b;
	struct iovec iov = { .iov_base = &b, .iov_len = 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	return (int)recvmsg(fd, &mh, MSG_DONTWAIT);
}

static int
child(enum what w)
{
	struct sandbox_conf c = {
		.mem_limit = UINT64_C(1) << 30, .max_fds = 16,
		.allow_threads = 1,
	};
	struct iovec iov;
	char err[256], byte;
	pthread_t t;
	void *res, *p;
	int sv[2];

#ifdef SHMDEMUX_SANITIZE_BUILD
	c.mem_limit = 0; /* the sanitizer runtime reserves terabytes */
#endif
	/* The admin channel first, on its fixed number, so that no pipe
	 * below lands there. */
	if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) < 0 ||
	    dup2(sv[0], ADMIN_FD) < 0 || dup2(sv[1], OTHER_FD) < 0)
		return 89;
	close(sv[0]);
	close(sv[1]);
	input_fd = pipe_with_byte();
	other_fd = pipe_with_byte();
	if (pipe(sv) < 0 || dup2(sv[1], WAKE_FROM) < 0 ||
	    dup2(sv[1], BELOW_FD) < 0)
		return 89;
	close(sv[0]);
	close(sv[1]);
	c.wake_fds_from = WAKE_FROM;
	if (input_fd < 0 || other_fd < 0 ||
	    (w == DO_FSIZE && stderr_to_file() < 0))
		return 89;
	c.fds[c.nfds++] = (struct sandbox_fd_rule){ input_fd,
						    SANDBOX_FD_READ };
	c.fds[c.nfds++] = (struct sandbox_fd_rule){ STDERR_FILENO,
						    SANDBOX_FD_WRITE };
	c.fds[c.nfds++] = (struct sandbox_fd_rule){ ADMIN_FD,
						    SANDBOX_FD_RECV };
	iov = (struct iovec){ .iov_base = &byte, .iov_len = 1 };
	if (sandbox_enter(&c, report, err, sizeof(err)) < 0) {
		fprintf(stderr, "sandbox_enter: %s\n", err);
		return 90;
	}
	if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1)
		return 91;
	switch (w) {
	case DO_NOTHING:
		return 0;
	case DO_THREAD:
		if (pthread_create(&t, NULL, thread_main, NULL) != 0)
			return 92;
		pthread_join(t, &res);
		return res == NULL ? 0 : 93;
	case DO_SOCKET:
		socket(AF_UNIX, SOCK_STREAM, 0);
		return 94;
	case DO_OPEN:
		/* refused without killing: libc probes files on benign input */
		if (syscall(SYS_openat, AT_FDCWD, "/etc/passwd", O_RDONLY) >= 0 ||
		    errno != EACCES)
			return 95;
		return 0;
	case DO_EXEC:
		execl("/bin/true", "true", (char *)NULL);
		return 96;
	case DO_WRITE_STDOUT:
		syscall(SYS_write, 1, "x", 1);
		return 97;
	case DO_BIG_ALLOC:
		/* beyond RLIMIT_AS: must fail cleanly, not kill */
		p = malloc((size_t)2 << 30);
		return p == NULL ? 0 : 98;
	case DO_KILL_PARENT:
		syscall(SYS_kill, getppid(), 0);
		return 99;
	case DO_FORK:
		syscall(SYS_fork);
		return 100;
	case DO_READ_INPUT:
		return syscall(SYS_read, input_fd, &byte, 1) == 1 ? 0 : 102;
	case DO_READ_OTHER:
		syscall(SYS_read, other_fd, &byte, 1);
		return 103;
	case DO_READV_OTHER:
		syscall(SYS_readv, other_fd, &iov, 1);
		return 104;
	case DO_PREAD_OTHER:
		syscall(SYS_pread64, other_fd, &byte, 1, 0);
		return 105;
	case DO_READ_STDERR:
		/* a terminal on fd 2 would be the operator's keyboard */
		syscall(SYS_read, STDERR_FILENO, &byte, 1);
		return 106;
	case DO_WRITE_LOG:
		return syscall(SYS_write, STDERR_FILENO, "", 0) == 0 ? 0 : 107;
	case DO_MMAP_EXEC:
		/* where shellcode would go */
		p = (void *)syscall(SYS_mmap, NULL, 4096,
				    PROT_READ | PROT_WRITE | PROT_EXEC,
				    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		return p == MAP_FAILED ? 108 : 109;
	case DO_MPROTECT_EXEC:
		p = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			return 110;
		syscall(SYS_mprotect, p, 4096, PROT_READ | PROT_EXEC);
		return 111;
	case DO_MMAP_RW:
		/* what allocators do: still allowed */
		p = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED ||
		    mprotect(p, 4096, PROT_NONE) < 0 ||
		    mprotect(p, 4096, PROT_READ | PROT_WRITE) < 0)
			return 112;
		return munmap(p, 1 << 20) == 0 ? 0 : 113;
	case DO_FSIZE:
		syscall(SYS_write, STDERR_FILENO, "x", 1);
		return 114;
	case DO_RECV_ADMIN:
		/* nothing waiting: EAGAIN, not a trap */
		return recv_one(ADMIN_FD) < 0 && errno == EAGAIN ? 0 : 115;
	case DO_RECV_OTHER:
		recv_one(OTHER_FD);
		return 116;
	case DO_READ_ADMIN:
		/* recvmsg is the admin channel's only call */
		syscall(SYS_read, ADMIN_FD, &byte, 1);
		return 117;
	case DO_WRITE_WAKE:
		/* its reader is gone: EPIPE, not a trap (SIGPIPE ignored) */
		signal(SIGPIPE, SIG_IGN);
		return syscall(SYS_write, WAKE_FROM, "x", 1) < 0 &&
		    errno == EPIPE ? 0 : 118;
	case DO_WRITEV_WAKE:
		iov.iov_base = "x";
		syscall(SYS_writev, WAKE_FROM, &iov, 1);
		return 119;
	case DO_WRITE_BELOW:
		syscall(SYS_write, BELOW_FD, "x", 1);
		return 120;
	}
	return 101;
}

/* Run case w; return the raw wait status. */
static int
run(enum what w)
{
	pid_t pid;
	int st;

	*report = -1;
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		perror("fork");
		exit(1);
	}
	if (pid == 0)
		_exit(child(w));
	while (waitpid(pid, &st, 0) < 0) {
		if (errno != EINTR) {
			perror("waitpid");
			exit(1);
		}
	}
	return st;
}

static void
expect_exit0(enum what w, const char *name)
{
	int st = run(w);

	EXPECT(WIFEXITED(st) && WEXITSTATUS(st) == 0,
	       "%s: expected clean exit, got status 0x%x", name, st);
}

static void
expect_signal(enum what w, const char *name, int sig)
{
	int st = run(w);

	EXPECT(WIFSIGNALED(st) && WTERMSIG(st) == sig,
	       "%s: expected %s, got status 0x%x", name, sigabbrev_np(sig), st);
}

static void
expect_sigsys(enum what w, const char *name, long nr)
{
	int st = run(w);

	EXPECT(WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS,
	       "%s: expected SIGSYS, got status 0x%x", name, st);
	EXPECT(*report == nr, "%s: reported syscall %d, expected %ld", name,
	       *report, nr);
}

int
main(void)
{
	report = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (report == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	alarm(60); /* a bug must not hang the test run */

	expect_exit0(DO_NOTHING, "nothing");
	expect_exit0(DO_THREAD, "thread");
	expect_sigsys(DO_SOCKET, "socket", SYS_socket);
	expect_exit0(DO_OPEN, "openat refused");
	expect_sigsys(DO_EXEC, "execve", SYS_execve);
	expect_sigsys(DO_WRITE_STDOUT, "write(1)", SYS_write);
	expect_sigsys(DO_KILL_PARENT, "kill", SYS_kill);
	expect_sigsys(DO_FORK, "fork", SYS_fork);
	expect_exit0(DO_RECV_ADMIN, "recvmsg on the admin channel");
	expect_sigsys(DO_RECV_OTHER, "recvmsg on another socket", SYS_recvmsg);
	expect_sigsys(DO_READ_ADMIN, "read(admin channel)", SYS_read);
#ifndef SHMDEMUX_SANITIZE_BUILD
	expect_exit0(DO_BIG_ALLOC, "allocation beyond the limit");
#endif
	expect_exit0(DO_READ_INPUT, "read(input)");
	expect_sigsys(DO_READ_OTHER, "read(another fd)", SYS_read);
	expect_sigsys(DO_READV_OTHER, "readv(another fd)", SYS_readv);
	expect_sigsys(DO_PREAD_OTHER, "pread64(another fd)", SYS_pread64);
	expect_sigsys(DO_READ_STDERR, "read(2)", SYS_read);
	expect_exit0(DO_WRITE_LOG, "write(2)");
	expect_exit0(DO_WRITE_WAKE, "write(wake fd range)");
	expect_sigsys(DO_WRITEV_WAKE, "writev(wake fd range)", SYS_writev);
	expect_sigsys(DO_WRITE_BELOW, "write(below the wake fd range)",
		      SYS_write);
	expect_sigsys(DO_MMAP_EXEC, "mmap(PROT_EXEC)", SYS_mmap);
	expect_sigsys(DO_MPROTECT_EXEC, "mprotect(PROT_EXEC)", SYS_mprotect);
	expect_exit0(DO_MMAP_RW, "mmap/mprotect without PROT_EXEC");
	expect_signal(DO_FSIZE, "write to a regular file (RLIMIT_FSIZE 0)",
		      SIGXFSZ);
	munmap(report, 4096);
	if (check_failures == 0)
		printf("sandbox: all cases passed\n");
	return check_status();
}
