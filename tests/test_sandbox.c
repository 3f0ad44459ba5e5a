/*
 * test_sandbox.c - the worker sandbox really forbids what it says.
 *
 * Each case runs in a forked child that enters the sandbox and then tries
 * one thing; the parent checks how the child ended.
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
#include <sys/wait.h>
#include <unistd.h>

#include "sandbox.h"

static int failures;
static int32_t *report;

#define CHECK(cond, ...) do { \
	if (!(cond)) { \
		fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
		fprintf(stderr, __VA_ARGS__); \
		fputc('\n', stderr); \
		failures++; \
	} \
} while (0)

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
	DO_BIG_ALLOC, DO_KILL_PARENT, DO_FORK, DO_RECV_ADMIN, DO_RECV_OTHER,
};

/* The ring's admin channel as the worker has it (recv_fd), and another
 * socket, both made before the sandbox. */
#define ADMIN_FD 9
#define OTHER_FD 10

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
		.allow_threads = 1, .recv_fd = ADMIN_FD,
	};
	char err[256];
	pthread_t t;
	void *res;
	int sv[2];

#ifdef SHMDEMUX_SANITIZE_BUILD
	c.mem_limit = 0; /* the sanitizer runtime reserves terabytes */
#endif
	if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) < 0 ||
	    dup2(sv[0], ADMIN_FD) < 0 || dup2(sv[1], OTHER_FD) < 0)
		return 89;
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
	case DO_BIG_ALLOC: {
		/* beyond RLIMIT_AS: must fail cleanly, not kill */
		void *p = malloc((size_t)2 << 30);

		return p == NULL ? 0 : 98;
	}
	case DO_KILL_PARENT:
		syscall(SYS_kill, getppid(), 0);
		return 99;
	case DO_FORK:
		syscall(SYS_fork);
		return 100;
	case DO_RECV_ADMIN:
		/* nothing waiting: EAGAIN, not a trap */
		return recv_one(ADMIN_FD) < 0 && errno == EAGAIN ? 0 : 102;
	case DO_RECV_OTHER:
		recv_one(OTHER_FD);
		return 103;
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

	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0,
	      "%s: expected clean exit, got status 0x%x", name, st);
}

static void
expect_sigsys(enum what w, const char *name, long nr)
{
	int st = run(w);

	CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS,
	      "%s: expected SIGSYS, got status 0x%x", name, st);
	CHECK(*report == nr, "%s: reported syscall %d, expected %ld", name,
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
#ifndef SHMDEMUX_SANITIZE_BUILD
	expect_exit0(DO_BIG_ALLOC, "allocation beyond the limit");
#endif
	munmap(report, 4096);
	if (failures == 0)
		printf("sandbox: all cases passed\n");
	return failures ? 1 : 0;
}
