/*
 * rundir.h - the private directory the default control socket and pidfile
 * live in: $XDG_RUNTIME_DIR/shmdemux, else /tmp/shmdemux-<euid>.
 *
 * Another local user can create names in /tmp (and in a runtime directory
 * that is not private): a socket or pidfile there could be theirs. Inside a
 * directory that only its owner can write, nobody else can bind, replace or
 * plant anything. The directory is made mode 0700 and checked on an fd
 * opened with O_NOFOLLOW | O_DIRECTORY: a real directory (not a symbolic
 * link), owned by the effective uid, writable by nobody else. The broker
 * makes and checks it before it binds; the client checks it before it
 * connects (and still checks who answers, proto.h ctl_peer_check()).
 */
#ifndef SHMDEMUX_RUNDIR_H
#define SHMDEMUX_RUNDIR_H

#include <stddef.h>

/* The directory's path into buf. Returns 0 or -ENAMETOOLONG. */
int rundir_path(char *buf, size_t cap);

/* The default socket path: $SHMDEMUX_SOCKET, else shmdemux.sock in the
 * directory above. Returns 0 or -ENAMETOOLONG. */
int rundir_default_socket(char *buf, size_t cap);

/* 1 if the socket path sock lies directly in the directory rundir_path()
 * names (the default location, or a --socket pointing there), else 0. */
int rundir_holds(const char *sock);

/* Check dir, making it first (mode 0700) when create is set. Returns 0;
 * -EPERM when it is not safe to use (a symbolic link, not a directory,
 * another owner, writable by group or others); -ENOENT when it does not
 * exist and create is 0; or another -errno. On failure msg holds one line
 * naming the path and the cause. */
int rundir_check(const char *dir, int create, char *msg, size_t cap);

#endif
