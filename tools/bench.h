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

#include "clock.h"
#include "shmdemux.h"

/* argv[0] is the subcommand name. Returns the process exit status. */
int bench_ring(int argc, char **argv);
int bench_demux(int argc, char **argv);
int bench_decode(int argc, char **argv);
int bench_short(int argc, char **argv);
int bench_scale(int argc, char **argv);
int bench_soak(int argc, char **argv);
/* "1,8" into v (at most max values, each in [1, limit]): their count, or
 * -1. */
int bench_int_list(const char *s, int *v, int max, int limit);

/* Helpers of bench_demux.c the other file-based benchmarks share. */
/* Sum of the bytes: reads every byte, as a consumer looking at them. */
uint64_t touch(const uint8_t *p, size_t n);
/* The whole regular file in a malloc'd buffer. 0 or -errno. */
int slurp(const char *path, uint8_t **buf, size_t *len);
void reap(pid_t pid);

/* ---- bench_check.c: what the stream benchmarks verify and sample ---- */

/* What a reader saw: packets, payload bytes, and a running hash of each
 * packet (track, timestamps, size, every payload byte), so a reader that
 * lost, repeated or garbled one ends with another value. err: how its
 * read ended (0 = a clean end). */
struct tally {
	uint64_t count, bytes, hash;
	int32_t err;
	int32_t pad;
};

void tally_add(struct tally *t, int track, int64_t pts, int64_t dts,
	       const uint8_t *data, size_t size);
/* *t over an in-process libavformat demux of path (open,
 * find_stream_info, every packet); t->err is its libavformat error, 0 at
 * a clean end. */
void tally_demux_file(const char *path, struct tally *t);
/* Same packets as ref (count, bytes, hash). */
int tally_same(const struct tally *a, const struct tally *ref);

/* Open descriptors of pid (/proc/PID/fd), or -1. */
int proc_count_fds(pid_t pid);
/* Files and their allocated kB (st_blocks), each file once. */
struct memfd_use {
	uint64_t files;
	uint64_t kb;
};
/* The memfds pid holds (rings, cursor pages: "memfd:shmdemux-*"). */
void proc_memfds(pid_t pid, struct memfd_use *u);
/* The POSIX shared memory objects in /dev/shm (all of them: shmdemux
 * puts none there, its rings are memfds). */
void devshm_use(struct memfd_use *u);

/* ---- bench_writer.c: one writer process feeds every run ---- */

/* Forks the writer, which reads every page of buf once and then waits
 * for pipes to fill with it. 0 or -errno. */
int writer_start(const uint8_t *buf, size_t len);
/* Hands wfd to the writer, which writes the whole buffer into it and
 * closes it; returns at once (the caller closes its own copy). 0 or
 * -errno. */
int writer_feed(int wfd);
/* Waits until the last feed was written: 0, or -EPIPE if the reader went
 * away first, -EIO if the writer is gone. */
int writer_wait(void);
/* Ends and reaps the writer. */
void writer_stop(void);
/* AVIOContext read callback over the fd *opaque points to. */
int read_cb(void *opaque, uint8_t *buf, int size);
/* A private `shmdemuxd --daemon` (next to this binary) in a fresh
 * directory; stop_broker() ends it and removes the directory. */
int start_broker(char *dir, size_t dircap, char *sock, size_t sockcap);
/* Same, with more options for shmdemuxd (NULL-terminated, at most 16). */
int start_broker_args(char *dir, size_t dircap, char *sock, size_t sockcap,
		      const char *const *extra);
void stop_broker(const char *dir, const char *sock);
/* The pid in SOCK.pid (a broker's pidfile), or 0. */
pid_t bench_broker_pid(const char *sock);
/* Median of v[0..n) (sorts v). */
double median(double *v, int n);

/* ---- bench_broker.c: a stream read by N consumer processes ---- */

#define BENCH_MAX_CONSUMERS 64

/* One side of a run: how long it took and what it read. count is packets
 * or frames, bytes the bytes touched. */
struct bench_result {
	double secs;
	uint64_t count;
	uint64_t bytes;
};

/* What a consumer does with the result rc of one shmdemux_read() (the
 * record in *pkt): touches the bytes it consumes into *sink, counts them
 * in *r, and returns 0 to read on or the code that ends the read loop. */
typedef int bench_consume_fn(shmdemux_stream *s, int rc,
			     const struct shmdemux_packet *pkt,
			     struct bench_result *r, volatile uint64_t *sink);

struct bench_broker_conf {
	const char *socket;
	int consumers;		/* 1..BENCH_MAX_CONSUMERS */
	bench_consume_fn *consume;
	/* how to open the stream; wait_consumers is set to consumers */
	const struct shmdemux_open_opts *opts;
};

/* Forks the consumers, opens buf as a stream over a pipe fed by a writer
 * process, and collects the consumers' reports into *r (timed from the
 * writer's start to the last report). 0 or a negative code; -EPROTO when
 * consumers disagree. */
int bench_broker_run(shmdemux_conn *conn, const struct bench_broker_conf *bc,
		     struct bench_result *r);

/* The two arms of a comparison; ctx is the benchmark's own settings. */
struct bench_arms {
	const char *unit;	/* what is counted: "packets", "frames" */
	const char *what;	/* the in-process work: "demux", "decode" */
	int (*inproc)(const void *ctx, struct bench_result *r);
	int (*broker)(const void *ctx, shmdemux_conn *conn,
		      struct bench_result *r);
	const void *ctx;
};

#define BENCH_MAX_RUNS 64

/* Medians over the runs, per second: counted units and payload MB. */
struct bench_medians {
	double a_rate, b_rate, a_mbs, b_mbs;
	/* median over the runs of b/a within each interleaved pair: both
	 * arms of a pair share the machine's state of the moment (on a
	 * shared VM whole pairs run slow or fast), so this moves less than
	 * the ratio of the medians, which is the reported "ratio" */
	double pair_ratio;
};

/* A whole comparison: reads file into memory, starts the writer, connects
 * to *socket (when NULL, to a private broker it starts, and points *socket
 * at it), then runs interleaved pairs of (a) in-process and (b) broker
 * runs over the file's bytes; both arms must count the same units and
 * bytes. A line per run unless quiet. Everything it started is stopped
 * before it returns 0, or a negative code after a one-line message. */
int bench_compare(const struct bench_arms *arms, const char *file,
		  const char **socket, int runs, int quiet,
		  struct bench_medians *m);

/* ---- bench_demux.c: the in-process arm's input ---- */

struct AVDictionary;
struct AVFormatContext;
struct AVIOContext;

/* A libavformat demuxer reading a new pipe that the writer feeds with the
 * file (the in-process arm of the file benchmarks). */
struct bench_input {
	int fd;				/* the pipe's read end, or -1 */
	int fed;			/* the writer was handed the pipe */
	struct AVIOContext *pb;
	struct AVFormatContext *fmt;	/* open, stream info found */
};

/* Opens *in with opts (NULL: none; see avformat_open_input()). 0 or -1;
 * call bench_input_close() whatever it returns. */
int bench_input_open(struct bench_input *in, struct AVDictionary **opts);
/* Closes the demuxer and the pipe and waits for the writer's feed: 0, or
 * -1 if the writer failed. */
int bench_input_close(struct bench_input *in);

#endif
