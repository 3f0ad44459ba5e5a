/*
 * rundir.c - the private runtime directory (rundir.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rundir.h"

int
rundir_path(char *buf, size_t cap)
{
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	int n;

	if (xdg != NULL && xdg[0] == '/')
		n = snprintf(buf, cap, "%s/shmdemux", xdg);
	else
		n = snprintf(buf, cap, "/tmp/shmdemux-%u",
			     (unsigned)geteuid());
	if (n < 0 || (size_t)n >= cap)
		return -ENAMETOOLONG;
	return 0;
}

int
rundir_default_socket(char *buf, size_t cap)
{
	const char *env = getenv("SHMDEMUX_SOCKET");
	char dir[4096];
	int n;

	if (env != NULL && env[0] != '\0')
		n = snprintf(buf, cap, "%s", env);
	else if (rundir_path(dir, sizeof(dir)) == 0)
		n = snprintf(buf, cap, "%s/shmdemux.sock", dir);
	else
		return -ENAMETOOLONG;
	if (n < 0 || (size_t)n >= cap)
		return -ENAMETOOLONG;
	return 0;
}

int
rundir_holds(const char *sock)
{
	char dir[4096];
	const char *slash = strrchr(sock, '/');
	size_t n;

	if (slash == NULL || rundir_path(dir, sizeof(dir)) < 0)
		return 0;
	n = (size_t)(slash - sock);
	return strlen(dir) == n && memcmp(dir, sock, n) == 0;
}

/* Why an existing dir cannot be opened as one: a symbolic link, or not a
 * directory at all. */
static int
not_a_dir(const char *dir, char *msg, size_t cap)
{
	struct stat st;

	if (lstat(dir, &st) == 0 && S_ISLNK(st.st_mode))
		snprintf(msg, cap, "%s is a symbolic link: refusing it (the "
			 "socket's directory must be a real one, private to "
			 "its owner)", dir);
	else
		snprintf(msg, cap, "%s is not a directory: refusing it", dir);
	return -EPERM;
}

int
rundir_check(const char *dir, int create, char *msg, size_t cap)
{
	struct stat st;
	int fd, ret;

	msg[0] = '\0';
	if (create && mkdir(dir, 0700) < 0 && errno != EEXIST) {
		ret = -errno;
		snprintf(msg, cap, "cannot make the directory %s: %s", dir,
			 strerror(-ret));
		return ret;
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		if (ret == -ELOOP || ret == -ENOTDIR)
			return not_a_dir(dir, msg, cap);
		snprintf(msg, cap, "cannot open the directory %s: %s", dir,
			 strerror(-ret));
		return ret;
	}
	ret = fstat(fd, &st) < 0 ? -errno : 0;
	close(fd);
	if (ret < 0) {
		snprintf(msg, cap, "cannot check the directory %s: %s", dir,
			 strerror(-ret));
		return ret;
	}
	if (st.st_uid != geteuid()) {
		snprintf(msg, cap, "%s belongs to uid %u, not to uid %u: "
			 "refusing it (another user may have made it to catch "
			 "the socket; remove it, or set XDG_RUNTIME_DIR)", dir,
			 (unsigned)st.st_uid, (unsigned)geteuid());
		return -EPERM;
	}
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		snprintf(msg, cap, "%s is writable by %s (mode %04o): refusing "
			 "it (it must be private: chmod 700)", dir,
			 (st.st_mode & S_IWOTH) ? "others" : "its group",
			 (unsigned)(st.st_mode & 07777));
		return -EPERM;
	}
	return 0;
}
