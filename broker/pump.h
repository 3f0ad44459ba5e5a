/*
 * pump.h - copy a non-seekable source into a worker's input pipe from the
 * event loop, without ever blocking it.
 */
#ifndef SHMDEMUXD_PUMP_H
#define SHMDEMUXD_PUMP_H

#include <stdint.h>

struct pump;

/* Take over src (any readable fd) and dst (the write end of the worker's
 * input pipe); both are made non-blocking. Returns 0 or -errno (then both
 * fds have been closed). */
struct stream;
int pump_start(struct pump **out, int src, int dst,
	       const struct stream *owner);
/* Stop pumping (closing both fds), free the pump. Accepts NULL. */
void pump_free(struct pump **p);
/* Bytes moved into the pipe so far. */
uint64_t pump_bytes(const struct pump *p);
/* errno of a failed source read, 0 if none (yet). */
int pump_error(const struct pump *p);

#endif
