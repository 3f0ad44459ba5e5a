/*
 * error.c - the library's codes and names, and its version.
 */
#include <errno.h>
#include <string.h>

#include "internal.h"

/* Our codes are a dense range; the table is indexed by SHMDEMUX_EOF - code
 * so that strerror stays a lookup in static memory (thread-safe). */
static const char *const messages[] = {
	[SHMDEMUX_EOF - SHMDEMUX_EOF] = "end of stream",
	[SHMDEMUX_EOF - SHMDEMUX_EOPEN] = "input could not be opened",
	[SHMDEMUX_EOF - SHMDEMUX_EDEMUX] = "demux error",
	[SHMDEMUX_EOF - SHMDEMUX_ECRASHED] = "worker crashed",
	[SHMDEMUX_EOF - SHMDEMUX_ESANDBOX] =
	    "worker killed by the sandbox (forbidden syscall)",
	[SHMDEMUX_EOF - SHMDEMUX_EMEMORY] = "worker exceeded its memory limit",
	[SHMDEMUX_EOF - SHMDEMUX_EWATCHDOG] =
	    "worker stalled and was killed by the watchdog",
	[SHMDEMUX_EOF - SHMDEMUX_EKILLED] = "stream killed by an operator",
	[SHMDEMUX_EOF - SHMDEMUX_ECLOSED] = "stream closed by an operator",
	[SHMDEMUX_EOF - SHMDEMUX_EEXITED] = "worker exited unexpectedly",
	[SHMDEMUX_EOF - SHMDEMUX_EINPUT] = "input source failed",
	[SHMDEMUX_EOF - SHMDEMUX_ERING] = "ring too small for a record",
	[SHMDEMUX_EOF - SHMDEMUX_EEXEC] = "worker could not be started",
	[SHMDEMUX_EOF - SHMDEMUX_EUNKNOWN] = "stream ended for an unknown reason",
	[SHMDEMUX_EOF - SHMDEMUX_ESPOOL] =
	    "spool limit exceeded (non-seekable input that needs seeking)",
	[SHMDEMUX_EOF - SHMDEMUX_EOVERRUN] =
	    "reader overrun: packets were lost (live mode)",
	[SHMDEMUX_EOF - SHMDEMUX_EEVICTED] =
	    "reader evicted: it fell too far behind",
	[SHMDEMUX_EOF - SHMDEMUX_ECORRUPT] = "corrupt ring data",
	[SHMDEMUX_EOF - SHMDEMUX_EABI] = "ring or protocol version mismatch",
	[SHMDEMUX_EOF - SHMDEMUX_EBROKER] = "connection to the broker lost",
	[SHMDEMUX_EOF - SHMDEMUX_EUNTRUSTED] =
	    "the broker socket or its directory is not safe to use (another user's, or not private)",
	[SHMDEMUX_EOF - SHMDEMUX_EUNSEALED] =
	    "ring memory not sealed read-only or not of the announced size "
	    "(refused)",
	[SHMDEMUX_EOF - SHMDEMUX_EREFUSED] =
	    "the broker refused the connection (too many connections, or out "
	    "of memory)",
};

const char *
shmdemux_strerror(int code)
{
	const char *s;

	if (code <= SHMDEMUX_EOF && code >= SHMDEMUX_EREFUSED) {
		s = messages[SHMDEMUX_EOF - code];
		return s != NULL ? s : "unknown shmdemux error";
	}
	if (code == 0)
		return "success";
	if (code < 0 && code >= -4095) {
		s = strerrordesc_np(-code);
		if (s != NULL)
			return s;
	}
	return "unknown error";
}

int
shmdemux_is_end(int code)
{
	return (code <= SHMDEMUX_EOF && code >= SHMDEMUX_EUNKNOWN) ||
	       code == SHMDEMUX_ESPOOL;
}

int
shmdemux_end_code(int reason)
{
	switch (reason) {
	case SD_END_EOF:		return SHMDEMUX_EOF;
	case SD_END_OPEN_FAILED:	return SHMDEMUX_EOPEN;
	case SD_END_DEMUX_ERROR:	return SHMDEMUX_EDEMUX;
	case SD_END_CRASHED:		return SHMDEMUX_ECRASHED;
	case SD_END_SANDBOX:		return SHMDEMUX_ESANDBOX;
	case SD_END_MEMORY:		return SHMDEMUX_EMEMORY;
	case SD_END_WATCHDOG:		return SHMDEMUX_EWATCHDOG;
	case SD_END_KILLED:		return SHMDEMUX_EKILLED;
	case SD_END_CLOSED:		return SHMDEMUX_ECLOSED;
	case SD_END_EXITED:		return SHMDEMUX_EEXITED;
	case SD_END_INPUT_ERROR:	return SHMDEMUX_EINPUT;
	case SD_END_RING_ERROR:		return SHMDEMUX_ERING;
	case SD_END_EXEC_FAILED:	return SHMDEMUX_EEXEC;
	case SD_END_SPOOL_LIMIT:	return SHMDEMUX_ESPOOL;
	default:			return SHMDEMUX_EUNKNOWN;
	}
}

const char *
shmdemux_state_name(int state)
{
	return sd_state_name((uint32_t)state);
}

const char *
shmdemux_end_reason_name(int reason)
{
	return sd_end_reason_name((uint32_t)reason);
}

int
err_from_ring(int rc)
{
	switch (rc) {
	case -EOVERFLOW:	return SHMDEMUX_EOVERRUN;
	case -ECONNRESET:	return SHMDEMUX_EEVICTED;
	case -EBADMSG:		return SHMDEMUX_ECORRUPT;
	case -EPROTO:		return SHMDEMUX_EABI;
	default:		return rc;
	}
}

_Static_assert((int)SHMDEMUX_END_SPOOL_LIMIT == (int)SD_END_SPOOL_LIMIT &&
	       (int)SHMDEMUX_END_EXEC_FAILED == (int)SD_END_EXEC_FAILED &&
	       (int)SHMDEMUX_END_EOF == (int)SD_END_EOF,
	       "end reasons mirror the ring");
_Static_assert((int)SHMDEMUX_STATE_ENDED == (int)RING_STATE_ENDED,
	       "states mirror the ring");
_Static_assert((int)SHMDEMUX_START_LIVE == (int)RING_START_LIVE &&
	       (int)SHMDEMUX_START_KEYFRAME == (int)RING_START_SYNC,
	       "start positions mirror the ring");

#define STR_(x) #x
#define STR(x) STR_(x)

const char *
shmdemux_version(void)
{
	return STR(SHMDEMUX_VERSION_MAJOR) "." STR(SHMDEMUX_VERSION_MINOR) "."
	    STR(SHMDEMUX_VERSION_PATCH);
}

int
shmdemux_abi_version(void)
{
	return SHMDEMUX_ABI_VERSION;
}
