/*
 * log.c - stderr logging for shmdemuxd.
 *
 * Each line is formatted completely first and written with one write(2), so
 * lines never interleave mid-line with another process sharing stderr. The
 * workers' own lines come through here too (wlog.c), prefixed with their
 * stream.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

static enum log_level max_level = LOG_LVL_INFO;

static const char *const level_names[] = {
	[LOG_LVL_ERROR] = "error: ",
	[LOG_LVL_WARN] = "warning: ",
	[LOG_LVL_INFO] = "",
	[LOG_LVL_DEBUG] = "debug: ",
};

void
log_set_level(enum log_level lvl)
{
	max_level = lvl;
}

int
log_enabled(enum log_level lvl)
{
	return lvl <= max_level;
}

static void
vlog(enum log_level lvl, int err, const char *fmt, va_list ap)
{
	char line[2048];  /* a worker's line, escaped (wlog.h), fits */
	size_t n;
	int r;

	if (!log_enabled(lvl))
		return;
	r = snprintf(line, sizeof(line), "shmdemuxd: %s", level_names[lvl]);
	n = r > 0 ? (size_t)r : 0;
	r = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	if (r > 0)
		n += (size_t)r;
	if (n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	if (err != 0) {
		r = snprintf(line + n, sizeof(line) - n, ": %s",
			     strerror(err < 0 ? -err : err));
		if (r > 0)
			n += (size_t)r;
		if (n > sizeof(line) - 2)
			n = sizeof(line) - 2;
	}
	line[n++] = '\n';
	/* A log line that cannot be written is dropped: nowhere to report it. */
	(void)!write(STDERR_FILENO, line, n);
}

void
log_msg(enum log_level lvl, const char *fmt, ...)
{
	va_list ap;
	int saved = errno;

	va_start(ap, fmt);
	vlog(lvl, 0, fmt, ap);
	va_end(ap);
	errno = saved;
}

void
log_errno(enum log_level lvl, int err, const char *fmt, ...)
{
	va_list ap;
	int saved = errno;

	va_start(ap, fmt);
	vlog(lvl, err, fmt, ap);
	va_end(ap);
	errno = saved;
}
