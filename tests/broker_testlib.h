/*
 * broker_testlib.h - helpers for the shmdemuxd tests: start a broker on a
 * private socket, speak the control protocol, wait for streams to end, and
 * clean up every process and file on every exit path.
 */
#ifndef BROKER_TESTLIB_H
#define BROKER_TESTLIB_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>

#include "check.h"
#include "clock.h"
#include "proto.h"
#include "ring_admin.h"
#include "ring_consumer.h"
#include "ring_producer.h"

#define TL_MAX_BROKERS 8

struct tl_broker {
	pid_t pid;
	char sock[256];
	char pidfile[300];
};

/* Call first: becomes a child subreaper (a daemonized broker and its
 * workers stay our children), installs cleanup for exit and signals, arms
 * a watchdog alarm, creates the private directory, notes /dev/shm. */
void tl_init(const char *shmdemuxd, unsigned timeout_s);
const char *tl_dir(void);
/* Fault tests: a sanitized worker must die by the signal itself, not by the
 * sanitizer's report (which would also make calls the sandbox traps):
 * append handle_segv=0:handle_abort=0 to ASAN_OPTIONS, which the broker and
 * its workers inherit. Call before starting the broker. */
void tl_let_faults_through(void);

/* Verify /dev/shm holds what it held at tl_init(). */
void tl_check_shm(void);

/* ---- test inputs ---- */
/* MEDIA/NAME into out (cap bytes), which must be a readable file: the
 * generated media (tests/media/gen.sh, made by the media_generate test)
 * are always there, so a missing one is a failure, not a skip. */
void tl_media_path(char *out, size_t cap, const char *media,
		   const char *name);
/* The real-world corpus, which only adds cases: $SHMDEMUX_CORPUS (a
 * failure if it is not a directory), else $SHMDEMUX_CORPUS_DEFAULT (set by
 * ctest to what CMake found beside the tree) if it is a directory, else
 * NULL. */
const char *tl_corpus(void);

/* Start `shmdemuxd --daemon --socket DIR/NAME [args...]` with $SHMDEMUX_WORKER
 * set to worker (unless NULL); returns 0 once it listens, else the daemon
 * parent's exit status. */
int tl_broker_start(struct tl_broker *b, const char *name, const char *worker,
		    const char *const *args);
/* Brokers started from now on get this RLIMIT_NOFILE (set between fork
 * and exec); hard 0 (the default) leaves the limit alone. */
void tl_broker_nofile(unsigned long soft, unsigned long hard);
/* The same with the broker's stderr on errfd (its log), unless -1. */
int tl_broker_start_err(struct tl_broker *b, const char *name,
			const char *worker, const char *const *args,
			int errfd);
/* Run shmdemuxd in the foreground with args (NULL-terminated), capture its
 * stderr into err (cap bytes) and return its exit status. For failures that
 * are expected to exit at once. */
int tl_run_broker(const char *const *args, char *err, size_t cap);
/* The same for any program bin (args without argv[0]). */
int tl_run_capture(const char *bin, const char *const *args, char *err,
		   size_t cap);
/* SIGTERM and wait (bounded); returns the exit status or -1. */
int tl_broker_stop(struct tl_broker *b);
/* Wait for a child to exit, up to timeout_ms: returns its wait status, or
 * -1 on timeout. */
int tl_wait_child(pid_t pid, int timeout_ms);
/* pid's children (its main thread's), at most max of them, into out: the
 * count, or -errno. */
int tl_children(pid_t pid, pid_t *out, int max);

/* /proc/PID/cmdline into buf (NUL-separated); its length, 0 if gone. */
size_t tl_cmdline(pid_t pid, char *buf, size_t cap);

/* 1 if the argv of pid ends with the string tail. */
int tl_argv_ends(pid_t pid, const char *tail);

/* pid is blocked in recvmsg (/proc/PID/syscall names the call). */
int tl_in_recvmsg(pid_t pid);

/* The broker's fork server once it is loaded and the broker knows it
 * (worker_abi.h): its child `WORKER --fork-server` leading its own
 * session, blocked in recvmsg, then two LIST round trips. -1 after
 * timeout_ms. */
pid_t tl_fork_server(const struct tl_broker *b, int timeout_ms);

/* The child the fork server `server` made ahead of the next stream, once
 * it waits for it (done with its page faults) and the broker knows it:
 * a child of the broker's with the server's argv, in the server's
 * session, blocked in recvmsg, then two LIST round trips. -1 after
 * timeout_ms. */
pid_t tl_fork_waiting(const struct tl_broker *b, pid_t server,
		      int timeout_ms);
/* Open fds of a process. */
int tl_count_fds(pid_t pid);

/* ---- protocol ---- */
int tl_connect(const char *sock);
/* ctl_recv into a buffer of the size it needs, then copy out what came;
 * the rest of rep is zeroed. */
ssize_t tl_recv(int fd, union ctl_msg *rep, int *fds, int *nfds);
/* Send msg (+fds), receive one reply into rep (+fds). Returns the reply
 * type, or -errno (rep is then all zeros). */
int tl_request(int fd, const void *msg, size_t len, const int *fds, int nfds,
	       union ctl_msg *rep, int *rfds);
void tl_open_init(struct ctl_open *o, uint32_t source, const char *path,
		  const char *format);
/* OPEN: returns the stream id (> 0), or -code with the message in err. */
int tl_open(int fd, const struct ctl_open *o, int in_fd, int *push_wr,
	    char *err, size_t cap);
/* LIST: up to max records into out; returns the count or -errno. */
int tl_list(int fd, struct ctl_stream_info *out, int max);
/* The LIST record of stream id over a new connection: 1 found, 0 not. */
int tl_info(const char *sock, uint32_t id, struct ctl_stream_info *out);
/* CLOSE or KILL: 0 or the error code. */
int tl_simple(int fd, uint16_t type, uint32_t id);

/* ATTACH: returns the slot (>= -1) and the fds (the data segment, and the
 * cursor page unless observing: fds[1] -1 then), or -code. */
int tl_attach(int fd, uint32_t id, uint32_t flags, int fds[2],
	      struct ctl_attached *att);
/* The same with every fd of the reply (the wake pipe's read end third,
 * with CTL_ATTACH_WAKE; -1 where none came). */
int tl_attach_all(int fd, uint32_t id, uint32_t flags, int fds[CTL_MAX_FDS],
		  struct ctl_attached *att);
/* Attach a consumer, map the ring and read records until the stream has
 * ended (ring_next: -EPIPE). Calls fn on every record if not NULL. Returns
 * the number of records, or -errno. */
typedef void (*tl_rec_fn)(const struct ring_rd *v, void *arg);
long tl_consume(const char *sock, uint32_t id, int timeout_ms, tl_rec_fn fn,
		void *arg);

/* A child copying file into a pipe; returns the read end. With gate not
 * NULL it starts only once a byte arrives on *gate (the write end of a
 * second pipe, the caller's to write and close). */
int tl_feeder(const char *file, int *gate, pid_t *pid);

/* A growing NUL-terminated text; free(buf) when done. */
struct tl_text {
	char *buf;
	size_t len, cap;
};
void tl_text_append(struct tl_text *t, const char *s, size_t n);
/* A tl_rec_fn: appends the ffprobe-packets CSV line of every packet record
 * to arg, a struct tl_text. */
void tl_csv_record(const struct ring_rd *v, void *arg);
/* What the ffprobe-packets tool at tool prints for file, read by path or
 * (piped) from its standard input, appended to out. */
void tl_reference(const char *tool, const char *file, int piped,
		  struct tl_text *out);

#endif
