/*
 * shmdemuxd.h - what the broker's modules share: configuration, the event
 * loop, and the stream and connection objects.
 *
 * Modules (one job each, like bgpd's parent/control/session split):
 *   shmdemuxd.c  options, daemonizing, pidfile, the epoll loop, signals,
 *                orderly shutdown
 *   control.c    the control socket: listening, peer checks, per-connection
 *                state and the request dispatch
 *   stream*.c    the streams: the table and LIST records (stream.c), OPEN
 *                (stream_open.c), sources (stream_input.c), a worker's
 *                life and end, CLOSE/KILL, reaping (stream_life.c), the
 *                watchdog (stream_watchdog.c); what they share is in
 *                stream_internal.h, this header is their face
 *   spawn.c      starting a worker (fork/exec with fixed fds), reaping it and
 *                turning its wait status into an end reason
 *   spare.c      one worker exec'd ahead of time, handed the next stream
 *   pump.c       copying a non-seekable source into the worker's input pipe
 *   log.c        stderr logging
 *   wlog.c       the workers' stderr pipes, read, bounded, escaped, logged
 *
 * Single-threaded: everything runs from the epoll loop; no call blocks
 * except the short read of the exec-status pipe right after fork and the
 * reaping of a spare worker just sent SIGKILL (spare.c).
 */
#ifndef SHMDEMUXD_H
#define SHMDEMUXD_H

#include <limits.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/un.h>

#include "clock.h"
#include "log.h"
#include "proto.h"
#include "ring_layout.h"

/* Control connections held at once (--max-connections): the default, and
 * the most that may be asked for. One past it is told so and closed. */
#define BROKER_MAX_CONNS   4096u
#define BROKER_MAX_CONNS_LIMIT 65536u
#define BROKER_MAX_STREAMS 1024u
/* Default ring when decoding: five 4K yuv420p frames (12 MiB each), twenty
 * 1080p ones. Larger costs more than it buys: every page of a fresh ring is
 * faulted in during its first lap, which at 256 MiB took a quarter of the
 * time of a 10 s 1080p decode. */
#define BROKER_DECODE_RING (UINT64_C(64) << 20)
/* Default frame pool of a lossless decoding stream (docs/RING.md, "Frame
 * pool"): the decoder writes video frames there and consumers read them in
 * place. A pooled frame still takes its copy's room in the ring, so while
 * the producer runs ahead the ring's worth of frames holds slots; the pool
 * needs that much plus what the decoder itself keeps (references, frame
 * threads), or frames get copied: the ring's size plus 32 MiB (ten 1080p
 * pictures). */
#define BROKER_POOL_AUTO        UINT64_MAX
#define BROKER_DECODE_POOL_MORE (UINT64_C(32) << 20)
#define BROKER_MAX_POOL         (UINT64_C(4) << 30) /* --decode-pool */
#define BROKER_MAX_RING    (UINT64_C(4) << 30) /* 4 GiB per stream */
#define BROKER_STOP_GRACE_MS 2000u  /* CLOSE: SIGTERM, then SIGKILL */
#define BROKER_RETAIN_FOREVER UINT32_MAX

/* conf.worker_start: how a stream's worker starts (spare.h) */
enum {
	BROKER_START_EXEC,    /* fork + exec at open */
	BROKER_START_SPARE,   /* one worker exec'd ahead, taken at open */
	BROKER_START_FORK,    /* a child of the loaded fork server */
	BROKER_START_COUNT,
};
/* Streams gone from the table that LIST with CTL_LIST_ENDED still reports
 * (ls --all), the latest first out: a fixed cost, ~600 bytes each. */
#define BROKER_ENDED_HISTORY 64u
#define BROKER_SHUTDOWN_GRACE_MS 2000u

struct broker_conf {
	char socket_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char pidfile[PATH_MAX];
	char worker_path[PATH_MAX];
	uint64_t ring_size;        /* default record area per stream */
	uint64_t decode_pool;      /* frame pool of lossless decoding
	                              streams; 0 = none, BROKER_POOL_AUTO =
	                              the ring's size + 32 MiB */
	uint32_t max_consumers;    /* consumer slots per stream */
	uint32_t lag_timeout_ms;   /* default lossless lag eviction */
	uint64_t worker_mem_limit; /* address space a worker may use besides
	                              its ring mapping; 0 = no limit */
	uint32_t watchdog_ms;      /* default no-progress kill (watchdog.h) */
	uint32_t open_timeout_ms;  /* longest a worker may spend opening */
	uint32_t reply_timeout_ms; /* drop a client that leaves its replies
	                              unread this long */
	uint32_t max_conns;        /* control connections held at once */
	uint32_t keep_ended_ms;    /* an ended, read stream's ring stays this
	                              long for late readers */
	uint32_t retain_ended_s;   /* an ended stream nobody holds leaves the
	                              table after this long (0 = at once,
	                              BROKER_RETAIN_FOREVER = until CLOSE) */
	unsigned nofile;           /* RLIMIT_NOFILE (soft), after raising it */
	unsigned idle_exit_s;      /* 0 = never */
	unsigned worker_start;     /* BROKER_START_* (spare.h) */
	unsigned fork_renew;       /* a new fork server after this many
	                              streams; 0 = never */
	int daemonize;
	int syslog_detached;  /* --syslog: once detached, log to syslog and
	                         let go of stderr, whatever it is */
	int log_level;        /* enum log_level */
};

extern struct broker_conf conf;
extern int broker_stopping; /* set once shutdown has begun */
/* Shut down as on SIGTERM (after the current batch of events). */
void broker_request_stop(void);

/* ---- settings (options.c) ---- */

/* Fill conf from the configuration files and the command line (the
 * socket a service manager passed, if any, is the default socket); prints
 * and exits 0 for --help, --version and --check-config, exits 2 on an
 * error. */
void broker_options(int argc, char **argv, int inherited_fd,
		    const char *inherited_path);
/* conf.worker_path: $SHMDEMUX_WORKER, else beside this binary, else the
 * installed paths. Returns 0 or -errno. */
int broker_worker_path(void);

/* ---- event loop (shmdemuxd.c) ---- */

struct ev;
typedef void (*ev_cb)(struct ev *ev, uint32_t events);

/* One registered fd. The owner embeds it; data.ptr in epoll points here.
 * After ev_del() a callback already fetched in the same epoll batch is
 * skipped (cb is cleared), so owners free their memory with
 * loop_defer_free(), never directly while the loop may still see it. */
struct ev {
	int fd;      /* -1 when not registered */
	ev_cb cb;
	void *arg;
};

void ev_init(struct ev *ev);
int ev_add(struct ev *ev, int fd, uint32_t events, ev_cb cb, void *arg);
int ev_mod(struct ev *ev, uint32_t events);
void ev_del(struct ev *ev);
/* ev_del(), then close the fd it watched (if any). */
void ev_close(struct ev *ev);
/* free(p) after the current batch of events has been dispatched. */
void loop_defer_free(void *p);
/* Run fn(arg) after this batch, with a zero epoll timeout (used by the pump
 * to yield after a bounded amount of work). */
void loop_defer_run(void (*fn)(void *), void *arg);
/* A new timerfd (disarmed) registered on ev with cb and arg. Returns 0
 * or -errno. */
int timer_new(struct ev *ev, ev_cb cb, void *arg);
/* Arm (ms > 0) or disarm (ms == 0) a timerfd, one shot. */
int timer_arm(int tfd, unsigned ms);
/* Descriptors the broker has open (from /proc/self/fd), or -errno. */
int broker_fds_in_use(void);

/* ---- control socket (control.c) ---- */

struct stream;

/* Listen on path (bound here, 0600, a stale socket replaced), or serve
 * inherited, a listening socket a service manager bound at path. */
int control_listen(const char *path, int inherited);
/* Stop accepting (close the listening socket; unlink its path if we bound
 * it). */
void control_stop_listening(void);
/* Close every connection, freeing their consumer slots. */
void control_close_all(void);
unsigned control_conn_count(void);
/* s's data segment has been sealed (or could not be, or s has ended):
 * answer the ATTACHes that wait for it. */
void control_attach_resume(struct stream *s);

/* ---- streams (stream*.c) ---- */

/* Open a stream from a validated request; req_fd is the SRC_FD descriptor
 * (taken over, closed on failure too) or -1. For SRC_PUSH *push_wr receives
 * the pipe's write end to hand to the client (the caller closes it after
 * sending). Returns 0 or -errno with a one-line reason in msg. */
int stream_open(const struct ctl_open *req, int req_fd, struct stream **out,
		int *push_wr, char *msg, size_t msgcap);
uint32_t stream_id(const struct stream *s);
/* A log line about s: "stream ID (NAME): " then fmt; err as log_errno(). */
void stream_log(const struct stream *s, enum log_level lvl, int err,
		const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Listed stream by id or name, or NULL. */
struct stream *stream_find(const struct ctl_ref *ref);
/* Fill a LIST record. */
void stream_info(struct stream *s, struct ctl_stream_info *info);
/* 1 if pid is the worker of a stream, listed or not, not yet reaped. */
int stream_is_worker(pid_t pid);
/* Iterate listed streams in id order: first with prev == NULL. */
struct stream *stream_next(struct stream *prev);
/* CLOSE: stop the worker, unlist the stream once reaped. */
void stream_close(struct stream *s);
/* KILL: SIGKILL the worker. -ESRCH if it has already ended. */
int stream_kill(struct stream *s);

/* Push producers. The connection that opened a SRC_PUSH stream (an opaque
 * token here) is its producer: stream_push_end() records how the input
 * ended (error 0 or an errno) and lets the worker see EOF; -EPERM for
 * another connection, -EALREADY once ended. streams_producer_gone() ends,
 * with EPIPE, every input whose producer's connection closed first. */
void stream_set_producer(struct stream *s, const void *producer);
int stream_push_end(struct stream *s, const void *producer, int error);
void streams_producer_gone(const void *producer);

/* Consumers. A stream's data segment is handed out only once it is sealed
 * against every writer but the worker's and the broker's own mappings
 * (worker_abi.h): stream_attach_ready() is 1 then, 0 while the worker has
 * not mapped it yet (control_attach_resume() follows, at the latest when
 * the worker is gone or killed for missing the open timeout), -errno if it
 * could not be sealed. It is 0 as well while the ring's admin channel is
 * full (a worker slow to take its messages), for at most the reply
 * timeout: attaches wait for room rather than fail on a busy machine
 * (control_attach_resume() follows once there is room or the time is up).
 * stream_attach() is called only once ready: it
 * returns the slot (>= 0) with *page_fd the consumer's new cursor page
 * (the caller sends and closes it; a separate object the consumer writes,
 * never sealed against it), -1 for observers (no page), or -errno: -EBUSY
 * no slot left, -EAGAIN the ring's admin channel is full
 * (stream_attach_ready() then says whether to wait). wake_fd, -1 or the write end of the
 * consumer's wake pipe (the caller's; the ring keeps a duplicate), is
 * forwarded to the producer and poked at the stream's end. Each
 * successful attach holds a reference released by stream_detach(). */
int stream_attach_ready(const struct stream *s);
int stream_attach(struct stream *s, pid_t pid, int observer, int wake_fd,
		  int *page_fd);
void stream_detach(struct stream *s, int slot);
/* The consumers' read-only fd of the data segment (the stream's) and its
 * size; -EAGAIN before the seal. */
int stream_consumer_fds(const struct stream *s, int *data_fd,
			uint64_t *data_size);
/* A reference that keeps s (listed or not) until stream_put(). */
void stream_hold(struct stream *s);
void stream_put(struct stream *s);

unsigned stream_count(void);
unsigned stream_running_count(void);
/* Shutdown: SIGTERM every worker (sig == SIGTERM) or SIGKILL the rest. */
void streams_signal_all(int sig);
/* Drop every stream (after the workers are reaped and connections gone). */
void streams_free_all(void);
/* Release now the ring of every ended stream its consumers have read and
 * left (descriptors are short). Returns how many were released. */
unsigned streams_release_spent(void);

#endif
