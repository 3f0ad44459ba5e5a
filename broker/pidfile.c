/*
 * pidfile.c - the broker's pidfile (pidfile.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pidfile.h"

/* The pid a live broker wrote, 0 if there is none to read. */
static pid_t
holder(int fd)
{
	char buf[24];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	long v;

	if (n <= 0)
		return 0;
	buf[n] = '\0';
	v = strtol(buf, NULL, 10);
	return v > 0 && v < INT32_MAX ? (pid_t)v : 0;
}

/* Why fd's file may not be written as our pidfile; 0 if it may. */
static int
unsafe(int fd, const char *path, struct stat *st, char *msg, size_t cap)
{
	if (fstat(fd, st) < 0) {
		snprintf(msg, cap, "pidfile %s: %s", path, strerror(errno));
		return -errno;
	}
	if (!S_ISREG(st->st_mode)) {
		snprintf(msg, cap, "pidfile %s is not a regular file: refusing "
			 "it", path);
		return -EPERM;
	}
	if (st->st_uid != geteuid()) {
		snprintf(msg, cap, "pidfile %s belongs to uid %u, not to uid %u: "
			 "refusing to write it", path, (unsigned)st->st_uid,
			 (unsigned)geteuid());
		return -EPERM;
	}
	if (st->st_nlink != 1) {
		snprintf(msg, cap, "pidfile %s has %lu links: refusing to write "
			 "it (the same file has another name)", path,
			 (unsigned long)st->st_nlink);
		return -EPERM;
	}
	return 0;
}

int
pidfile_lock(struct pidfile *pf, const char *path, pid_t *other, char *msg,
	     size_t cap)
{
	struct stat st;
	int fd, ret;

	pf->fd = -1;
	*other = 0;
	msg[0] = '\0';
	if (strlen(path) >= sizeof(pf->path)) {
		snprintf(msg, cap, "pidfile path too long");
		return -ENAMETOOLONG;
	}
	/* O_NONBLOCK: a FIFO or device planted there must not hold us up
	 * before it is refused. */
	fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY |
		  O_CLOEXEC, 0600);
	if (fd < 0) {
		ret = -errno;
		if (ret == -ELOOP) {
			snprintf(msg, cap, "pidfile %s is a symbolic link: "
				 "refusing it (writing through it would change "
				 "the file it points to)", path);
			return -EPERM;
		}
		if (ret == -EISDIR) {
			snprintf(msg, cap, "pidfile %s is not a regular file: "
				 "refusing it", path);
			return -EPERM;
		}
		snprintf(msg, cap, "pidfile %s: %s", path, strerror(-ret));
		return ret;
	}
	if ((ret = unsafe(fd, path, &st, msg, cap)) < 0)
		goto fail;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		ret = -errno;
		if (ret == -EWOULDBLOCK) {
			*other = holder(fd);
			snprintf(msg, cap, "a broker is already running (pid %d, "
				 "%s)", (int)*other, path);
			ret = -EEXIST;
		} else {
			snprintf(msg, cap, "pidfile %s: lock: %s", path,
				 strerror(-ret));
		}
		goto fail;
	}
	/* Ours now: whatever a dead broker left goes. */
	if (ftruncate(fd, 0) < 0) {
		ret = -errno;
		snprintf(msg, cap, "pidfile %s: %s", path, strerror(-ret));
		goto fail;
	}
	pf->fd = fd;
	pf->dev = st.st_dev;
	pf->ino = st.st_ino;
	strcpy(pf->path, path);
	return 0;
fail:
	close(fd);
	return ret;
}

int
pidfile_store(struct pidfile *pf)
{
	char buf[24];
	int n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());

	if (pf->fd < 0)
		return -EBADF;
	if (ftruncate(pf->fd, 0) < 0)
		return -errno;
	if (pwrite(pf->fd, buf, (size_t)n, 0) != n)
		return errno != 0 ? -errno : -EIO;
	return 0;
}

void
pidfile_drop(struct pidfile *pf)
{
	struct stat st;

	if (pf->fd < 0)
		return;
	if (lstat(pf->path, &st) == 0 && st.st_dev == pf->dev &&
	    st.st_ino == pf->ino)
		unlink(pf->path);
	close(pf->fd);
	pf->fd = -1;
}
