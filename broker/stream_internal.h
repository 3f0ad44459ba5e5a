/*
 * stream_internal.h - what the broker's stream files share; no other file
 * includes it (shmdemuxd.h is their face to control.c and the loop):
 *   stream.c           the table: ids and names, lookup, LIST records,
 *                      references, the consumers' slots
 *   stream_open.c      OPEN: the request's checks, the descriptor budget,
 *                      the ring objects, the worker's start
 *   stream_input.c     how the source reaches the worker: a regular file, a
 *                      pipe, the pump, a push producer
 *   stream_life.c      the worker's life after its start: the seal, its end
 *                      and end reason, CLOSE and KILL, then the ended ring
 *                      kept for late readers and the stream reaped
 *   stream_watchdog.c  a running worker sampled for the hung-worker rule
 *                      (watchdog.h), and killed when it says so
 */
#ifndef SHMDEMUXD_STREAM_INTERNAL_H
#define SHMDEMUXD_STREAM_INTERNAL_H

#include <bsd/sys/queue.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "proto.h"
#include "ring_layout.h"
#include "shmdemuxd.h"
#include "spawn.h"
#include "watchdog.h"

struct pump;
struct ring;
struct ring_params;
struct wlog;

struct stream {
	TAILQ_ENTRY(stream) entry;
	uint32_t id;
	int listed;                /* in the table (until CLOSE) */
	unsigned refs;             /* table + attached connections */
	char name[CTL_NAME_LEN];
	char source[256];
	uint32_t mode;
	uint64_t ring_size;
	uint64_t data_seg_size;
	int data_fd;               /* read-write, the worker gets it */
	int ro_data_fd;            /* read-only reopen, for consumers */
	int admin_fd;              /* our end of the ring's admin channel */
	int wadmin_fd;             /* the worker's end, until it has it */
	struct ev admin_ev;        /* EPOLLOUT while DELs wait for room */
	uint64_t admin_full_ms;    /* since when (now_ms), 0: not full */
	struct ring *ring;         /* RING_ROLE_ADMIN mapping */
	uint64_t opened_ms;
	/* The data segment is handed to consumers only once sealed against
	 * every new writer (worker_abi.h): on the readiness pipe's hang-up,
	 * or when the worker is gone. Until then ATTACHes wait (control.c). */
	struct ev ready_ev;        /* the readiness pipe's read end */
	struct ev start_ev;        /* deadline for the worker to be ready */
	int sealed;                /* F_SEAL_FUTURE_WRITE is on */
	int seal_err;              /* errno of a failed seal, 0 if none */
	struct timespec start_ts;  /* when the worker was handed its stream */
	struct wlog *log;          /* the worker's stderr (wlog.h) */

	pid_t pid;                 /* worker, 0 once reaped */
	struct ev pid_ev;          /* its pidfd */
	struct ev timer_ev;        /* CLOSE: SIGKILL after the grace time */
	uint32_t stop_reason;      /* SD_END_CLOSED/KILLED once asked */
	int closing;               /* CLOSE asked: unlist once reaped */
	struct pump *pump;
	uint64_t input_bytes;      /* pumped bytes, kept after the pump ends */
	int pumped;
	int seekable;              /* the worker reads a regular file */
	int in_peek_fd;            /* pipes: our copy of the worker's read end,
	                              to see whether input waits (poll) */
	struct ev wd_ev;           /* the watchdog's periodic timerfd */
	struct wd wd;
	uint64_t wd_last_ms;
	char wd_msg[RING_MSG_LEN]; /* why the watchdog killed it */
	/* SRC_PUSH: our own write end of the worker's pipe, held until the
	 * producer says how the input ended, so the worker never mistakes a
	 * dead producer's closed pipe for a clean EOF. */
	int push_hold;
	const void *producer;      /* its control connection, until it ends */
	int push_err;              /* errno of a failed push, 0 if none */

	unsigned consumers;        /* attached with a slot */
	int ended;
	struct worker_end end;
	uint64_t ended_ms;         /* now_ms() at the end */
	uint64_t cpu_ms;           /* the worker's, final once reaped */
	/* Reaping: an ended stream no connection holds leaves the table
	 * --retain-ended after its end or its last connection (idle_ms). */
	uint64_t idle_ms;

	/* Once ended and read by the consumers it waited for, the ring goes
	 * (fds, mapping); LIST then reports the numbers kept in `final`. */
	uint32_t wait_consumers;   /* the ring's hold: read by this many */
	unsigned attached_ever;    /* consumers with a slot, ever */
	uint64_t spent_ms;         /* when it last became releasable */
	int released;
	struct ctl_stream_info final;
};

TAILQ_HEAD(stream_list, stream);

/* ---- stream.c: the table ---- */

/* Every stream, listed or still referenced, in id order. */
extern struct stream_list streams;

/* Readers the streams still wait for (each ring's hold not yet reached),
 * the descriptors they will cost the broker counted at admission. */
unsigned streams_readers_awaited(void);

/* A new stream, not yet in the table (stream_list_add()); NULL if out of
 * memory. */
struct stream *stream_new(const struct ctl_open *req);
/* Into the table, with the table's reference. */
void stream_list_add(struct stream *s);
/* Frees s and everything it holds (its worker is gone or never was). */
void stream_free(struct stream *s);
/* Listed stream named name, or NULL. */
struct stream *stream_find_name(const char *name);
/* Out of the table, logged with why; an ended stream's last report goes to
 * the history (ended.h). Drops the table's reference. */
void stream_unlist(struct stream *s, const char *why);
/* info's uptime and end age, from s's clock. */
void stream_times(const struct stream *s, struct ctl_stream_info *info);

/* ---- stream_open.c: OPEN ---- */

/* The broker's mapping and every descriptor of the ring; NULL/-1 after. */
void stream_ring_close(struct stream *s);

/* ---- stream_input.c: the source ---- */

struct input {
	int worker_fd;   /* becomes the worker's fd 0 */
	int seekable;
	int pump_src;    /* pump from here into pump_dst, or -1 */
	int pump_dst;
	int push_wr;     /* SRC_PUSH: for the client */
	int push_hold;   /* SRC_PUSH: the broker's copy of the write end */
};

/* The source named by req (req_fd, the passed descriptor or -1, is taken
 * over) set up for the worker in *in: 0, or -errno with the reason in
 * msg. */
int stream_input_open(const struct ctl_open *req, int req_fd,
		      struct input *in, char *msg, size_t cap);
/* The worker started (or has ended already): in's ends go where they
 * belong (the pump, the push producer in *push_wr, s's hold). */
void stream_input_start(struct stream *s, struct input *in, int *push_wr);
/* Closes whatever in still holds. */
void stream_input_close(struct input *in);
/* The pump stops; its byte count stays in s->input_bytes. */
void stream_stop_pump(struct stream *s);
/* SRC_PUSH: our write end goes, and with it the producer. */
void stream_release_push(struct stream *s);

/* ---- stream_life.c: the worker's life ---- */

/* Watch the read end of the readiness pipe (taken over): the data segment
 * is sealed when the worker has mapped it, or at the open deadline. */
void stream_watch_start(struct stream *s, int ready_rd);
/* The started worker pid is s's from now on: watched through its pidfd
 * and by the watchdog (whose start may fail, logged). 0 or -errno. */
int stream_watch_worker(struct stream *s, pid_t pid,
			const struct ctl_open *req, int input_fd);
/* The end, once: sealed, published in the ring, logged. */
void stream_set_ended(struct stream *s, const struct worker_end *end);
/* Stop waiting for the worker to map its ring. */
void stream_stop_start_watch(struct stream *s);
/* sig to the worker through its pidfd: 0, or -errno (-ESRCH once gone). */
int stream_signal(struct stream *s, int sig);
/* s may have become spent or reapable (ended, or left by a connection). */
void stream_release_check(struct stream *s);
/* LIST's record of a stream whose ring was released. */
void stream_released_info(const struct stream *s,
			  struct ctl_stream_info *info);

/* ---- stream_watchdog.c: the hung-worker rule applied ---- */

/* in_fd is the worker's input; a pipe's read end is kept to peek at.
 * 0 or -errno. */
int stream_watchdog_start(struct stream *s, const struct ctl_open *req,
			  int in_fd);
void stream_watchdog_stop(struct stream *s);
/* What the worker and its input look like now. */
void stream_watchdog_sample(const struct stream *s, struct wd_sample *ws);
/* The end reason of a verdict, its message in s->wd_msg. */
uint32_t stream_watchdog_verdict(struct stream *s, int verdict);

#endif
