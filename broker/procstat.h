/*
 * procstat.h - what a worker costs, from /proc/PID/stat: the CPU time it
 * has used (user + system) and its resident memory (the ring pages it has
 * touched included). Readable until the worker is reaped: a zombie's line
 * keeps its final times.
 */
#ifndef SHMDEMUX_PROCSTAT_H
#define SHMDEMUX_PROCSTAT_H

#include <stdint.h>
#include <sys/types.h>

/* Returns 0 with *cpu_ms and *rss_bytes, or -errno. */
int procstat_read(pid_t pid, uint64_t *cpu_ms, uint64_t *rss_bytes);

#endif
