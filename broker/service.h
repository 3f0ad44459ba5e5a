/*
 * service.h - what a service manager (systemd, or anything speaking its
 * documented protocol) hands the broker: an inherited listening socket
 * (socket activation: $LISTEN_PID, $LISTEN_FDS, fds from 3) and a socket
 * for state notifications ($NOTIFY_SOCKET: READY=1, STATUS=..., STOPPING=1).
 * No libsystemd: both protocols are a few lines and stable.
 */
#ifndef SHMDEMUXD_SERVICE_H
#define SHMDEMUXD_SERVICE_H

#include <stddef.h>

/* The socket passed to this process, if one was. Returns 0 when none was
 * (no $LISTEN_FDS, or $LISTEN_PID names another process: the variables
 * were meant for a parent), 1 with *fd a listening AF_UNIX SOCK_SEQPACKET
 * socket (made close-on-exec and non-blocking) and path its address,
 * or -1 with msg saying why the passed fds are unusable (more than one,
 * not a socket, the wrong family or type, not listening, unnamed). */
int service_listen_fd(int *fd, char *path, size_t path_len, char *msg,
		      size_t msg_len);

/* Take $NOTIFY_SOCKET for service_notify() and remove it from the
 * environment, with the socket activation variables: workers inherit the
 * environment and have no business with either. Call first thing. */
void service_init(void);

/* Send one notification (e.g. "READY=1\nSTATUS=...") to the $NOTIFY_SOCKET
 * service_init() took, if there was one; a no-op otherwise. Returns 0, or a negative errno when
 * the socket is set but cannot be reached. */
int service_notify(const char *msg);

#endif
