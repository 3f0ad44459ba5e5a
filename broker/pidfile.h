/*
 * pidfile.h - the broker's pidfile: created or reused only when it is a
 * plain file of the broker's own, locked (flock) for the broker's lifetime,
 * truncated only once the lock is held.
 *
 * The path comes from the operator, or lies in the private runtime
 * directory (rundir.h); either way it is opened with O_NOFOLLOW and checked
 * on the open fd before a byte is changed: a symbolic link, a hard link to
 * another name (more than one link), another owner's file or anything but
 * a regular file is refused, so a planted name can never make the broker
 * truncate or write a file that is not its pidfile. A pidfile left by a
 * broker that died holds no lock and is simply taken over.
 */
#ifndef SHMDEMUXD_PIDFILE_H
#define SHMDEMUXD_PIDFILE_H

#include <limits.h>
#include <sys/types.h>

struct pidfile {
	int fd;                /* -1 when not held */
	dev_t dev;             /* the file held, to remove only it */
	ino_t ino;
	char path[PATH_MAX];
};

/* Open, check and lock path (created mode 0600), then empty it. Returns 0;
 * -EEXIST with *other set (0 if unreadable) when a live broker holds it;
 * -EPERM when the path is not safe to write (see above); or another
 * -errno. On failure msg holds one line naming the path and the cause, and
 * pf->fd is -1. */
int pidfile_lock(struct pidfile *pf, const char *path, pid_t *other,
		 char *msg, size_t cap);
/* Write our pid into the locked file. Returns 0 or -errno. */
int pidfile_store(struct pidfile *pf);
/* Remove the file if the path still names the one we hold, close it.
 * Safe on a pidfile never locked. */
void pidfile_drop(struct pidfile *pf);

#endif
