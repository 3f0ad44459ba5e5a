/*
 * log.c - logging for shmdemuxd: stderr, the journal or syslog.
 *
 * Each line is formatted completely first and written with one write(2), so
 * lines never interleave mid-line with another process sharing stderr. The
 * workers' own lines come through here too (wlog.c), prefixed with their
 * stream. When stderr is the journal's stream ($JOURNAL_STREAM names its
 * device and inode, as systemd sets it), each line starts with its syslog
 * priority ("<3>") instead of the program name, which the journal records
 * already; once --daemon has detached from a stderr that is /dev/null,
 * lines go to syslog(3). On plain stderr each line starts with the local
 * time to the millisecond (ISO 8601, with its UTC offset), then the
 * program and the level; the journal and syslog stamp lines themselves.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static enum log_level max_level = LOG_LVL_INFO;
static enum { OUT_STDERR, OUT_JOURNAL, OUT_SYSLOG } out = OUT_STDERR;

static const int priorities[] = {
	[LOG_LVL_ERROR] = LOG_ERR,
	[LOG_LVL_WARN] = LOG_WARNING,
	[LOG_LVL_INFO] = LOG_INFO,
	[LOG_LVL_DEBUG] = LOG_DEBUG,
};

static const char *const level_names[] = {
	[LOG_LVL_ERROR] = "error: ",
	[LOG_LVL_WARN] = "warning: ",
	[LOG_LVL_INFO] = "info: ",
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

void
log_init(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	int n = 0;

	if (js != NULL && sscanf(js, "%llu:%llu%n", &dev, &ino, &n) == 2 &&
	    js[n] == '\0' && fstat(STDERR_FILENO, &st) == 0 &&
	    (unsigned long long)st.st_dev == dev &&
	    (unsigned long long)st.st_ino == ino)
		out = OUT_JOURNAL;
}

void
log_to_syslog(void)
{
	openlog("shmdemuxd", LOG_PID | LOG_NDELAY, LOG_DAEMON);
	out = OUT_SYSLOG;
}

/* "2026-12-04T19:30:01.123+0100 " */
static size_t
stamp(char *buf, size_t cap)
{
	struct timespec ts;
	struct tm tm;
	char date[32], zone[8];

	if (clock_gettime(CLOCK_REALTIME, &ts) < 0 ||
	    localtime_r(&ts.tv_sec, &tm) == NULL ||
	    strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm) == 0 ||
	    strftime(zone, sizeof(zone), "%z", &tm) == 0)
		return 0;
	return (size_t)snprintf(buf, cap, "%s.%03ld%s ", date,
				ts.tv_nsec / 1000000, zone);
}

static void
vlog(enum log_level lvl, int err, const char *fmt, va_list ap)
{
	char line[2048];  /* a worker's line, escaped (wlog.h), fits */
	size_t n;
	int r;

	if (!log_enabled(lvl))
		return;
	if (out == OUT_STDERR) {
		n = stamp(line, 64);
		r = snprintf(line + n, sizeof(line) - n, "shmdemuxd: %s",
			     level_names[lvl]);
		r = r > 0 ? r + (int)n : (int)n;
	} else if (out == OUT_JOURNAL)
		r = snprintf(line, sizeof(line), "<%d>%s", priorities[lvl],
			     level_names[lvl]);
	else
		r = snprintf(line, sizeof(line), "%s", level_names[lvl]);
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
	if (out == OUT_SYSLOG) {
		line[n] = '\0';
		syslog(priorities[lvl], "%s", line);
		return;
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
