/*
 * worker_spare.h - the worker's side of spare mode (worker_abi.h): wait on
 * fd WORKER_FD_SPARE for one assignment, check it, put its fds in place.
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

/* 1 if argv asks for spare mode (exactly "--spare"). */
int worker_spare_requested(int argc, char **argv);

/* Block until the broker sends an assignment. Returns 1 with *a filled and
 * the fds on WORKER_FD_INPUT/DATA/READY/ADMIN (the socket closed), 0 if the
 * broker closed the socket, -1 for a failed receive or a malformed
 * assignment (every received fd closed, nothing placed; why in err). */
int worker_spare_wait(struct worker_assign *a, char *err, size_t cap);

void worker_assign_free(struct worker_assign *a);

#endif
