/*
 * bench.h - subcommands of shmdemux-bench. Each lives in its own
 * bench_<name>.c and is listed in the table in bench.c.
 */
#ifndef SHMDEMUX_BENCH_H
#define SHMDEMUX_BENCH_H

/* argv[0] is the subcommand name. Returns the process exit status. */
int bench_ring(int argc, char **argv);
int bench_demux(int argc, char **argv);

#endif
