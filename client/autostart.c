/*
 * autostart.c - start a per-user broker when nobody listens, the way tmux
 * and gpg-agent do: spawn `shmdemuxd --daemon`, whose first process exits
 * once the socket listens, and wait for that exit.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
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

int
autostart_broker(const char *path)
{
	char bin[PATH_MAX];
	char *argv[] = { bin, "--daemon", "--socket", (char *)path,
			 "--idle-exit", "600", NULL };
	posix_spawn_file_actions_t fa;
	int use_path, ret, st;
	pid_t pid;

	ret = broker_binary(bin, sizeof(bin), &use_path);
	if (ret < 0)
		return ret;
	ret = posix_spawn_file_actions_init(&fa);
	if (ret != 0)
		return -ret;
	/* The daemon must not hold the caller's stdio: a script reading our
	 * output through a pipe would otherwise wait for the daemon too. */
	for (int fd = 0; fd <= 2 && ret == 0; fd++)
		ret = posix_spawn_file_actions_addopen(&fa, fd, "/dev/null",
		    fd == 0 ? O_RDONLY : O_WRONLY, 0);
	if (ret == 0)
		ret = use_path ?
		    posix_spawnp(&pid, bin, &fa, NULL, argv, environ) :
		    posix_spawn(&pid, bin, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (ret != 0)
		return -ret;

	do {
		ret = waitpid(pid, &st, 0);
	} while (ret < 0 && errno == EINTR);
	if (ret < 0)
		return -errno; /* SIGCHLD ignored: nothing to wait for */
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		return -ECONNREFUSED;
	return 0;
}
