/*
 * autogroup.c - read and write /proc/PID/autogroup (autogroup.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "autogroup.h"

static void
path_of(char *path, size_t cap, pid_t pid)
{
	snprintf(path, cap, "/proc/%d/autogroup", (int)pid);
}

int
autogroup_set(pid_t pid, int nice)
{
	char path[48], buf[8];
	ssize_t n;
	int fd, len, e = 0;

	if (nice < -20 || nice > 19)
		return -EINVAL;
	path_of(path, sizeof(path), pid);
	len = snprintf(buf, sizeof(buf), "%d", nice);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = write(fd, buf, (size_t)len);
	if (n < 0)
		e = -errno;
	else if (n != len)
		e = -EIO;
	close(fd);
	return e;
}

int
autogroup_get(pid_t pid, int *nice)
{
	char path[48], buf[64], *p;
	ssize_t n;
	long v;
	int fd;

	path_of(path, sizeof(path), pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	/* "/autogroup-ID nice N\n", or empty */
	if ((p = strstr(buf, " nice ")) == NULL)
		return -EPROTO;
	v = strtol(p + 6, NULL, 10);
	if (v < -20 || v > 19)
		return -EPROTO;
	*nice = (int)v;
	return 0;
}
