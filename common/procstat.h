/*
 * procstat.h - what a process costs, from /proc/PID/stat: the CPU time it
 * has used (user + system), that of the children it has reaped, and its
 * resident memory (for a worker, the ring pages it has touched included).
 * Readable until the process is reaped: a zombie's line keeps its final
 * times. The broker reads its workers' (LIST); the benchmarks the
 * broker's.
 */
#ifndef SHMDEMUX_PROCSTAT_H
#define SHMDEMUX_PROCSTAT_H

#include <stdint.h>
#include <sys/types.h>

struct procstat {
	uint64_t cpu_ms;           /* utime + stime */
	uint64_t children_cpu_ms;  /* cutime + cstime: reaped children */
	uint64_t rss_bytes;
};

/* Returns 0 with *ps filled, or -errno. */
int procstat_read(pid_t pid, struct procstat *ps);

#endif
