/*
 * bench.h - subcommands of shmdemux-bench. Each lives in its own
 * bench_<name>.c and is listed in the table in bench.c.
 */
#ifndef SHMDEMUX_BENCH_H
#define SHMDEMUX_BENCH_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

/* argv[0] is the subcommand name. Returns the process exit status. */
int bench_ring(int argc, char **argv);
int bench_demux(int argc, char **argv);
int bench_decode(int argc, char **argv);

/* Helpers of bench_demux.c the other file-based benchmarks share. */
double now_s(void);
/* Sum of the bytes: reads every byte, as a consumer looking at them. */
uint64_t touch(const uint8_t *p, size_t n);
/* The whole regular file in a malloc'd buffer. 0 or -errno. */
int slurp(const char *path, uint8_t **buf, size_t *len);
/* A child that writes buf into wfd (closing rfd first) and exits. */
pid_t start_writer(const uint8_t *buf, size_t len, int wfd, int rfd);
void reap(pid_t pid);
/* AVIOContext read callback over the fd *opaque points to. */
int read_cb(void *opaque, uint8_t *buf, int size);
/* A private `shmdemuxd --daemon` (next to this binary) in a fresh
 * directory; stop_broker() ends it and removes the directory. */
int start_broker(char *dir, size_t dircap, char *sock, size_t sockcap);
void stop_broker(const char *dir, const char *sock);
void json_str(FILE *f, const char *s);
/* Median of v[0..n) (sorts v). */
double median(double *v, int n);

#endif
