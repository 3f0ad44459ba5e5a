/*
 * service.c - socket activation and readiness notification, from the
 * protocols systemd documents (sd_listen_fds(3), sd_notify(3)): the
 * manager binds the socket and passes it as fd 3 with $LISTEN_FDS=1 and
 * $LISTEN_PID=<our pid>; it reads our state from datagrams sent to the
 * AF_UNIX socket named by $NOTIFY_SOCKET ("@name" is abstract).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "service.h"

#define LISTEN_FDS_START 3

static struct sockaddr_un notify_addr;
static socklen_t notify_len;

void
service_init(void)
{
	const char *e = getenv("NOTIFY_SOCKET");
	size_t n = e != NULL ? strlen(e) : 0;

	/* Only a path or an abstract name that fits; anything else (an
	 * AF_VSOCK address, say) is not ours to speak to. */
	if (n >= 2 && n < sizeof(notify_addr.sun_path) &&
	    (e[0] == '/' || e[0] == '@')) {
		notify_addr.sun_family = AF_UNIX;
		memcpy(notify_addr.sun_path, e, n);
		if (e[0] == '@')
			notify_addr.sun_path[0] = '\0';
		notify_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
					 n + (e[0] == '/'));
	}
	unsetenv("NOTIFY_SOCKET");
}

int
service_notify(const char *msg)
{
	ssize_t n;
	int fd, ret = 0;

	if (notify_len == 0)
		return 0;
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	n = sendto(fd, msg, strlen(msg), MSG_NOSIGNAL,
		   (const struct sockaddr *)&notify_addr, notify_len);
	if (n < 0)
		ret = -errno;
	close(fd);
	return ret;
}

/* A decimal in [0, max] spanning all of s. */
static int
parse_env_uint(const char *s, unsigned long max, unsigned long *out)
{
	char *end;

	if (s == NULL || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	*out = strtoul(s, &end, 10);
	return errno != 0 || *end != '\0' || *out > max ? -1 : 0;
}

static int
check_socket(int fd, char *path, size_t path_len, char *msg, size_t msg_len)
{
	struct sockaddr_un sun;
	socklen_t len = sizeof(sun);
	struct stat st;
	int v;
	socklen_t vl = sizeof(v);

	if (fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode)) {
		snprintf(msg, msg_len, "the inherited fd %d is not a socket", fd);
		return -1;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &v, &vl) < 0 ||
	    v != AF_UNIX) {
		snprintf(msg, msg_len, "the inherited socket is not AF_UNIX "
			 "(ListenSequentialPacket= with a path)");
		return -1;
	}
	vl = sizeof(v);
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &vl) < 0 ||
	    v != SOCK_SEQPACKET) {
		snprintf(msg, msg_len, "the inherited socket is not "
			 "SOCK_SEQPACKET (ListenSequentialPacket=, not "
			 "ListenStream=)");
		return -1;
	}
	vl = sizeof(v);
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &vl) < 0 || !v) {
		snprintf(msg, msg_len, "the inherited socket is not listening");
		return -1;
	}
	memset(&sun, 0, sizeof(sun));
	if (getsockname(fd, (struct sockaddr *)&sun, &len) < 0 ||
	    len <= offsetof(struct sockaddr_un, sun_path) ||
	    sun.sun_path[0] != '/' ||
	    memchr(sun.sun_path, '\0', sizeof(sun.sun_path)) == NULL) {
		snprintf(msg, msg_len, "the inherited socket has no path "
			 "(unnamed or abstract): clients find the broker by "
			 "path");
		return -1;
	}
	if (strlen(sun.sun_path) >= path_len) {
		snprintf(msg, msg_len, "the inherited socket's path is too "
			 "long");
		return -1;
	}
	memcpy(path, sun.sun_path, strlen(sun.sun_path) + 1);
	return 0;
}

int
service_listen_fd(int *fd, char *path, size_t path_len, char *msg,
		  size_t msg_len)
{
	const char *spid = getenv("LISTEN_PID"), *sfds = getenv("LISTEN_FDS");
	unsigned long pid, nfds;
	int ret = 0, flags;

	*fd = -1;
	if (sfds == NULL)
		goto out;
	/* Meant for another process (our parent, which exec'd us without
	 * clearing them): not ours. */
	if (parse_env_uint(spid, INT_MAX, &pid) < 0 ||
	    (pid_t)pid != getpid())
		goto out;
	if (parse_env_uint(sfds, INT_MAX - LISTEN_FDS_START, &nfds) < 0) {
		snprintf(msg, msg_len, "LISTEN_FDS=%s is not a count", sfds);
		ret = -1;
		goto out;
	}
	if (nfds == 0)
		goto out;
	if (nfds != 1) {
		snprintf(msg, msg_len, "%lu sockets passed (LISTEN_FDS); the "
			 "broker listens on exactly one", nfds);
		ret = -1;
		goto out;
	}
	if (check_socket(LISTEN_FDS_START, path, path_len, msg, msg_len) < 0) {
		ret = -1;
		goto out;
	}
	if (fcntl(LISTEN_FDS_START, F_SETFD, FD_CLOEXEC) < 0 ||
	    (flags = fcntl(LISTEN_FDS_START, F_GETFL)) < 0 ||
	    fcntl(LISTEN_FDS_START, F_SETFL, flags | O_NONBLOCK) < 0) {
		snprintf(msg, msg_len, "the inherited socket: %s",
			 strerror(errno));
		ret = -1;
		goto out;
	}
	*fd = LISTEN_FDS_START;
	ret = 1;
out:
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	return ret;
}
