/*
 * autostart.c - start a per-user broker when nobody listens, the way tmux
 * and gpg-agent do: spawn `shmdemuxd --daemon`, whose first process exits
 * once the socket listens, and wait for that exit.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"

extern char **environ;

/* The broker binary: $SHMDEMUX_BROKER, else shmdemuxd beside the calling
 * executable (a build tree or an install prefix keeps them together), else
 * "shmdemuxd" for a $PATH lookup (*use_path set). */
static int
broker_binary(char *buf, size_t cap, int *use_path)
{
	const char *env = getenv("SHMDEMUX_BROKER");
	char self[PATH_MAX];
	ssize_t n;
	char *slash;

	*use_path = 0;
	if (env != NULL && env[0] != '\0')
		return strlcpy(buf, env, cap) < cap ? 0 : -ENAMETOOLONG;
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		slash = strrchr(self, '/');
		if (slash != NULL) {
			slash[1] = '\0';
			if (strlcpy(buf, self, cap) < cap &&
			    strlcat(buf, "shmdemuxd", cap) < cap &&
			    access(buf, X_OK) == 0)
				return 0;
		}
	}
	*use_path = 1;
	return strlcpy(buf, "shmdemuxd", cap) < cap ? 0 : -ENAMETOOLONG;
}

/* The last line the failed broker wrote, from its program name on (its
 * lines start with the time), NUL-forced, control bytes blanked. */
static void
last_line(char *out, size_t cap, char *buf, size_t n)
{
	char *line, *p;

	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		n--;
	buf[n] = '\0';
	line = strrchr(buf, '\n');
	line = line != NULL ? line + 1 : buf;
	if ((p = strstr(line, "shmdemuxd: ")) != NULL)
		line = p + strlen("shmdemuxd: ");
	for (p = line; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
	strlcpy(out, line, cap);
}

/* Read what the starting broker writes on its stderr until it lets go of
 * it (its first process exits, the daemon detaches): the last 4 KiB. */
static size_t
read_errors(int fd, char *buf, size_t cap)
{
	size_t n = 0;
	ssize_t r;

	for (;;) {
		if (n == cap - 1) {
			/* keep the tail: the last line says why */
			memmove(buf, buf + cap / 2, n - cap / 2);
			n -= cap / 2;
		}
		r = read(fd, buf + n, cap - 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	buf[n] = '\0';
	return n;
}

int
autostart_broker(const char *path, char *err, size_t errcap)
{
	char bin[PATH_MAX], out[4096];
	char *argv[] = { bin, "--daemon", "--syslog", "--socket", (char *)path,
			 "--idle-exit", "600", NULL };
	posix_spawn_file_actions_t fa;
	int use_path, ret, st, p[2];
	size_t n;
	pid_t pid;

	ret = broker_binary(bin, sizeof(bin), &use_path);
	if (ret < 0)
		return ret;
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	ret = posix_spawn_file_actions_init(&fa);
	if (ret != 0) {
		close(p[0]);
		close(p[1]);
		return -ret;
	}
	/* The daemon must not hold the caller's stdio: a script reading our
	 * output through a pipe would otherwise wait for the daemon too. Its
	 * stderr is ours to read until it listens (--syslog then lets go of
	 * it), so a failed start says why. */
	for (int fd = 0; fd <= 1 && ret == 0; fd++)
		ret = posix_spawn_file_actions_addopen(&fa, fd, "/dev/null",
		    fd == 0 ? O_RDONLY : O_WRONLY, 0);
	if (ret == 0)
		ret = posix_spawn_file_actions_adddup2(&fa, p[1], 2);
	if (ret == 0)
		ret = use_path ?
		    posix_spawnp(&pid, bin, &fa, NULL, argv, environ) :
		    posix_spawn(&pid, bin, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(p[1]);
	if (ret != 0) {
		close(p[0]);
		if ((ret == ENOENT || ret == EACCES) &&
		    getenv("SHMDEMUX_BROKER") != NULL)
			snprintf(err, errcap, "cannot start the broker: "
				 "$SHMDEMUX_BROKER (%s) %s", bin,
				 ret == ENOENT ? "does not exist" :
				 "is not executable");
		else if (ret == ENOENT || ret == EACCES)
			snprintf(err, errcap, "cannot start the broker: %s %s "
				 "(looked beside this program, then in $PATH; "
				 "$SHMDEMUX_BROKER names another)", bin,
				 ret == ENOENT ? "not found" :
				 "is not executable");
		else
			snprintf(err, errcap, "cannot start the broker %s: %s",
				 bin, strerror(ret));
		return -ret;
	}
	n = read_errors(p[0], out, sizeof(out));
	close(p[0]);

	do {
		ret = waitpid(pid, &st, 0);
	} while (ret < 0 && errno == EINTR);
	if (ret < 0)
		return -errno; /* SIGCHLD ignored: nothing to wait for */
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		char why[1024];

		if (n > 0)
			last_line(why, sizeof(why), out, n);
		else if (WIFEXITED(st))
			snprintf(why, sizeof(why), "it exited with status %d "
				 "and said nothing", WEXITSTATUS(st));
		else
			snprintf(why, sizeof(why), "it was killed by signal "
				 "%d", WTERMSIG(st));
		snprintf(err, errcap, "cannot start the broker (%s): %s", bin,
			 why);
		return -ECONNREFUSED;
	}
	return 0;
}
