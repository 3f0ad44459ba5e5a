/*
 * wlog.c - a worker's stderr, read by the broker (wlog.h).
 *
 * One fixed-size object per worker: the line being assembled, the drop
 * counters and a token bucket. Nothing grows with what the worker writes.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "log.h"
#include "shmdemuxd.h"
#include "utf8.h"
#include "wlog.h"

#define REPORT_MS 1000u

struct wlog {
	struct ev ev;
	char prefix[WLOG_PREFIX_MAX];
	char line[WLOG_LINE_MAX];
	size_t len;
	int skipping;              /* the line was cut: skip to its newline */
	uint64_t tokens;           /* lines allowed now, in thousandths */
	uint64_t refill_ms;        /* when tokens were last topped up */
	uint64_t dropped_lines, dropped_bytes, cut_bytes; /* since the report */
	uint64_t report_ms;
};

size_t
wlog_escape(const char *in, size_t n, char *out, size_t cap)
{
	const unsigned char *s = (const unsigned char *)in;
	size_t i = 0, o = 0;

	while (i < n) {
		unsigned c = s[i];
		size_t len = c >= 0x80 ? utf8_char_len(in + i, n - i, NULL) : 1;

		if (c == '\\' || (c < 0x80 && (c < 0x20 || c == 0x7f)) ||
		    len == 0) {
			/* "\\" or "\xNN", whole or not at all */
			if (o + 4 >= cap)
				break;
			if (c == '\\')
				o += (size_t)snprintf(out + o, cap - o, "\\\\");
			else
				o += (size_t)snprintf(out + o, cap - o,
						      "\\x%02x", c);
			i++;
			continue;
		}
		/* printable ASCII, or one valid UTF-8 sequence */
		if (o + len >= cap)
			break;
		memcpy(out + o, s + i, len);
		o += len;
		i += len;
	}
	out[o] = '\0';
	return i;
}

/* Token bucket: WLOG_BURST lines back to back, then WLOG_RATE a second. */
static int
take_token(struct wlog *l, uint64_t now)
{
	const uint64_t cap = (uint64_t)WLOG_BURST * 1000u;

	l->tokens += (now - l->refill_ms) * WLOG_RATE;
	if (l->tokens > cap)
		l->tokens = cap;
	l->refill_ms = now;
	if (l->tokens < 1000u)
		return 0;
	l->tokens -= 1000u;
	return 1;
}

static void
emit(struct wlog *l, int cut, uint64_t now)
{
	char esc[WLOG_LINE_MAX * 4 + 1];

	if (!take_token(l, now)) {
		l->dropped_lines++;
		l->dropped_bytes += l->len;
		return;
	}
	wlog_escape(l->line, l->len, esc, sizeof(esc));
	log_info("%s%s%s", l->prefix, esc, cut ? " [cut]" : "");
}

/* What was dropped since the last word on it, once a second at most
 * (always when final). */
static void
report(struct wlog *l, uint64_t now, int final)
{
	char cut[64] = "";

	if (l->dropped_lines == 0 && l->cut_bytes == 0)
		return;
	if (!final && now - l->report_ms < REPORT_MS)
		return;
	if (l->cut_bytes > 0)
		snprintf(cut, sizeof(cut), "; %" PRIu64 " bytes cut from long "
			 "lines", l->cut_bytes);
	log_warnx("%sworker output: %" PRIu64 " lines (%" PRIu64 " bytes) "
		  "dropped, more than %u a second after %u%s", l->prefix,
		  l->dropped_lines, l->dropped_bytes, WLOG_RATE, WLOG_BURST,
		  cut);
	l->dropped_lines = l->dropped_bytes = l->cut_bytes = 0;
	l->report_ms = now;
}

static void
take(struct wlog *l, const char *buf, size_t n, uint64_t now)
{
	for (size_t i = 0; i < n; i++) {
		char c = buf[i];

		if (c == '\n') {
			if (!l->skipping)
				emit(l, 0, now);
			l->len = 0;
			l->skipping = 0;
			continue;
		}
		if (l->skipping) {
			l->cut_bytes++;
			continue;
		}
		l->line[l->len++] = c;
		if (l->len == sizeof(l->line)) {
			emit(l, 1, now);
			l->len = 0;
			l->skipping = 1;
		}
	}
}

enum { RD_MORE, RD_EMPTY, RD_EOF, RD_ERROR };

/* One read into buf, taken in. */
static int
read_some(struct wlog *l, char *buf, size_t cap)
{
	ssize_t n;

	do
		n = read(l->ev.fd, buf, cap);
	while (n < 0 && errno == EINTR);
	if (n > 0) {
		take(l, buf, (size_t)n, now_ms());
		return RD_MORE;
	}
	if (n == 0)
		return RD_EOF;
	return errno == EAGAIN ? RD_EMPTY : RD_ERROR;
}

static void
on_readable(struct ev *ev, uint32_t events)
{
	static char buf[WLOG_READ_MAX];
	struct wlog *l = ev->arg;
	int ret;

	(void)events;
	/* One read a wakeup: the loop serves everyone else before the next
	 * (level-triggered, it comes back while bytes wait). */
	ret = read_some(l, buf, sizeof(buf));
	report(l, now_ms(), 0);
	if (ret == RD_EOF || ret == RD_ERROR)
		ev_close(&l->ev); /* every writer gone (or a broken pipe): done */
}

struct wlog *
wlog_start(int rd, const char *prefix)
{
	struct wlog *l;
	int fl = fcntl(rd, F_GETFL);

	if (fl < 0 || fcntl(rd, F_SETFL, fl | O_NONBLOCK) < 0 ||
	    (l = calloc(1, sizeof(*l))) == NULL) {
		close(rd);
		return NULL;
	}
	ev_init(&l->ev);
	wlog_set_prefix(l, prefix);
	l->tokens = (uint64_t)WLOG_BURST * 1000u;
	l->refill_ms = l->report_ms = now_ms();
	if (ev_add(&l->ev, rd, EPOLLIN, on_readable, l) < 0) {
		close(rd);
		free(l);
		return NULL;
	}
	return l;
}

void
wlog_set_prefix(struct wlog *l, const char *prefix)
{
	if (l != NULL)
		snprintf(l->prefix, sizeof(l->prefix), "%s", prefix);
}

void
wlog_finish(struct wlog **lp)
{
	static char buf[WLOG_READ_MAX];
	struct wlog *l;
	int ret;

	if (lp == NULL || (l = *lp) == NULL)
		return;
	*lp = NULL;
	/* The writer is dead: a pipe's worth at most is left (bounded all
	 * the same, should one still write), and the reads are
	 * non-blocking. */
	for (int i = 0; i < 16 && l->ev.fd >= 0; i++) {
		ret = read_some(l, buf, sizeof(buf));
		if (ret != RD_MORE)
			break;
	}
	if (l->len > 0 && !l->skipping)
		emit(l, 0, now_ms()); /* a last line without its newline */
	report(l, now_ms(), 1);
	ev_close(&l->ev);
	loop_defer_free(l);
}
