/*
 * worker_spare.h - the worker's side of a start ahead of the stream
 * (worker_abi.h): wait on fd WORKER_FD_SPARE for an assignment, check it,
 * put its fds in place; in a fork server, in a child of the broker's.
 *
 * No libav here: the broker tests' stand-in worker links it too, so the
 * broker's handoff is tested against the same receiver.
 */
#ifndef SHMDEMUX_WORKER_SPARE_H
#define SHMDEMUX_WORKER_SPARE_H

#include <stddef.h>

struct worker_assign {
	int argc;
	char **argv;  /* argc pointers into buf, then NULL */
	char *buf;    /* the message */
};

enum worker_start {
	WORKER_START_EXEC,   /* exec'd for its stream */
	WORKER_START_SPARE,  /* exactly "--spare" */
	WORKER_START_FORK,   /* exactly "--fork-server" */
};

enum worker_start worker_start_mode(int argc, char **argv);

/* Block until the broker sends an assignment. Returns 1 with *a filled and
 * the fds on WORKER_FD_INPUT/DATA/READY/ADMIN (the socket closed), 0 if the
 * broker closed the socket, -1 for a failed receive or a malformed
 * assignment (every received fd closed, nothing placed; why in err). */
int worker_spare_wait(struct worker_assign *a, char *err, size_t cap);

/* The fork server's loop: say "loaded", then for each assignment clone a
 * child of the broker and answer with its pid. Returns 1 in a child, as
 * worker_spare_wait() does; in the server, 0 once the broker closed the
 * socket, -1 for a failed receive or send or a malformed assignment (why
 * in err). A child that cannot take its fds returns -1 too. */
int worker_fork_server(struct worker_assign *a, char *err, size_t cap);

void worker_assign_free(struct worker_assign *a);

#endif
