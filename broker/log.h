/*
 * log.h - the broker's log: one line per event on stderr, prefixed with
 * the time, "shmdemuxd: " and the level (or in the journal or syslog,
 * log.c). The *_errno variants append the text of errno-style code
 * err (positive or negative), the way a daemon names a system error once,
 * where it decides what to do about it.
 */
#ifndef SHMDEMUXD_LOG_H
#define SHMDEMUXD_LOG_H

enum log_level {
	LOG_LVL_ERROR = 0,
	LOG_LVL_WARN = 1,
	LOG_LVL_INFO = 2,
	LOG_LVL_DEBUG = 3,
};

/* Where lines go: stderr, or the journal when stderr is its stream
 * ($JOURNAL_STREAM): lines then carry their priority as "<N>". */
void log_init(void);
/* From now on, to syslog (facility daemon), as a detached daemon. */
void log_to_syslog(void);

/* Lines above this level are dropped. Default LOG_LVL_INFO. */
void log_set_level(enum log_level lvl);
int log_enabled(enum log_level lvl);

void log_msg(enum log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void log_errno(enum log_level lvl, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define log_error(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warnx(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) \
	do { if (log_enabled(LOG_LVL_DEBUG)) log_msg(LOG_LVL_DEBUG, __VA_ARGS__); } while (0)

#endif
