/*
 * procstat.c - a process's CPU time and resident memory (procstat.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "procstat.h"

int
procstat_read(pid_t pid, struct procstat *ps)
{
	char path[64], buf[1024], *p, *end;
	unsigned long long v[22];
	long hz = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return n < 0 ? -errno : -ENODATA;
	buf[n] = '\0';
	/* The command name (field 2) is in parentheses and may hold any
	 * byte the process chose, ')' and spaces included; the kernel's own
	 * numbers follow the last ')'. */
	p = strrchr(buf, ')');
	if (p == NULL || p[1] != ' ')
		return -EBADMSG;
	p += 2;
	/* field 3 is the state letter; 4..24 are numbers (v[0] = field 4) */
	if (*p == '\0' || p[1] != ' ')
		return -EBADMSG;
	p += 2;
	for (int i = 0; i < 21; i++) {
		errno = 0;
		v[i] = strtoull(p, &end, 10);
		if (end == p || errno != 0)
			return -EBADMSG;
		p = end;
	}
	if (hz <= 0 || page <= 0)
		return -EINVAL;
	/* utime is field 14, stime 15, cutime 16, cstime 17, rss (pages) 24 */
	ps->cpu_ms = (v[10] + v[11]) * 1000 / (unsigned long long)hz;
	ps->children_cpu_ms = (v[12] + v[13]) * 1000 /
		(unsigned long long)hz;
	ps->rss_bytes = v[20] * (unsigned long long)page;
	return 0;
}
