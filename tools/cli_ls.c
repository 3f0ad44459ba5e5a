/*
 * cli_ls.c - the CLI's views of the broker's table: ls (one listing), top
 * (a refreshing one, with rates) and stats (totals, or the Prometheus text
 * format for a metrics collector).
 *
 * At ~800 lines: the three views share the LIST reading and the column
 * formats; `top` is what moves out if it grows.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "clock.h"
#include "strescape.h"

struct info_list {
	struct shmdemux_stream_info *v;
	size_t n;
};


static int
collect(const struct shmdemux_stream_info *i, void *ctx)
{
	struct info_list *l = ctx;
	struct shmdemux_stream_info *v;

	v = realloc(l->v, (l->n + 1) * sizeof(*v));
	if (v == NULL)
		return -ENOMEM;
	l->v = v;
	l->v[l->n++] = *i;
	return 0;
}

/* The call named in the broker's "forbidden syscall 41 (socket)", or
 * NULL. The broker wrote the message; it is still only text to show. */
static const char *
syscall_name(const char *msg, char *buf, size_t cap)
{
	const char *open = strrchr(msg, '(');
	size_t n;

	if (strncmp(msg, "forbidden syscall ", 18) != 0 || open == NULL)
		return NULL;
	n = strcspn(open + 1, ")");
	if (n == 0 || n >= cap || open[1 + n] != ')')
		return NULL;
	memcpy(buf, open + 1, n);
	buf[n] = '\0';
	return buf;
}

/* running, ended:eof, ended:crashed(SIGSEGV), ended:exited(3),
 * ended:sandbox(socket), ended:watchdog, ended:killed */
static void
state_str(const struct shmdemux_stream_info *i, char *buf, size_t cap)
{
	const char *reason = shmdemux_end_reason_name(i->end_reason);
	char detail[32], text[32];

	if (i->state != SHMDEMUX_STATE_ENDED)
		snprintf(buf, cap, "%s", shmdemux_state_name(i->state));
	else if (i->end_reason == SHMDEMUX_END_SANDBOX &&
		 syscall_name(i->end_msg, detail, sizeof(detail)) != NULL)
		snprintf(buf, cap, "ended:%s(%s)", reason,
			 str_text(text, sizeof(text), detail));
	else if (i->end_reason == SHMDEMUX_END_CRASHED ||
		 (i->end_reason == SHMDEMUX_END_SANDBOX && i->signal > 0))
		snprintf(buf, cap, "ended:%s(%s)", reason,
			 signame(i->signal, detail, sizeof(detail)));
	else if (i->end_reason == SHMDEMUX_END_EXITED && i->exit_code >= 0)
		snprintf(buf, cap, "ended:exited(%d)", i->exit_code);
	else
		snprintf(buf, cap, "ended:%s", reason);
}

static void
human_bytes(uint64_t b, char *buf, size_t cap)
{
	static const char units[] = "KMGTPE";
	double v = (double)b;
	int u = -1;

	while (v >= 1024.0 && u < 5) {
		v /= 1024.0;
		u++;
	}
	if (u < 0)
		snprintf(buf, cap, "%" PRIu64, b);
	else
		snprintf(buf, cap, "%.1f%c", v, units[u]);
}

static void
human_uptime(uint64_t ms, char *buf, size_t cap)
{
	uint64_t s = ms / 1000;

	if (s < 60)
		snprintf(buf, cap, "%" PRIu64 "s", s);
	else if (s < 3600)
		snprintf(buf, cap, "%" PRIu64 "m%02" PRIu64 "s", s / 60, s % 60);
	else
		snprintf(buf, cap, "%" PRIu64 "h%02" PRIu64 "m", s / 3600,
			 s / 60 % 60);
}

#define LS_COLS 13

/* "12m05s", or for an ended stream "ended 3s ago" */
static void
ended_or_uptime(const struct shmdemux_stream_info *i, char *buf, size_t cap)
{
	char t[32];

	if (i->state != SHMDEMUX_STATE_ENDED) {
		human_uptime(i->uptime_ms, buf, cap);
		return;
	}
	human_uptime(i->ended_ago_ms, t, sizeof(t));
	snprintf(buf, cap, "ended %s ago", t);
}

static void
ls_row(const struct shmdemux_stream_info *i, char cell[LS_COLS][64])
{
	snprintf(cell[0], 64, "%" PRIu32, i->id);
	str_text(cell[1], 64, i->name[0] ? i->name : "-");
	state_str(i, cell[2], 64);
	str_text(cell[3], 64, i->source);
	if (i->worker_pid > 0)
		snprintf(cell[4], 64, "%d", i->worker_pid);
	else
		snprintf(cell[4], 64, "-");
	snprintf(cell[5], 64, "%" PRIu32, i->tracks);
	snprintf(cell[6], 64, "%" PRIu64, i->packets);
	if (i->frames > 0)
		snprintf(cell[7], 64, "%" PRIu64, i->frames);
	else
		snprintf(cell[7], 64, "-");
	human_bytes(i->bytes, cell[8], 64);
	snprintf(cell[9], 64, "%" PRIu32, i->consumers);
	snprintf(cell[10], 64, "%u.%u%%", i->fill_permille / 10,
		 i->fill_permille % 10);
	snprintf(cell[11], 64, "%" PRIu64, i->drops);
	ended_or_uptime(i, cell[12], 64);
}

static void
ls_table(const struct info_list *l)
{
	static const char *const head[LS_COLS] = {
		"ID", "NAME", "STATE", "SOURCE", "PID", "TRACKS", "PACKETS",
		"FRAMES", "BYTES", "CONS", "FILL", "DROPS", "UPTIME",
	};
	/* numbers right-aligned, text left-aligned */
	static const int right[LS_COLS] = {
		1, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 0,
	};
	char (*cells)[LS_COLS][64] = calloc(l->n + 1, sizeof(*cells));
	int w[LS_COLS] = { 0 };

	if (cells == NULL)
		return;
	for (int c = 0; c < LS_COLS; c++)
		snprintf(cells[0][c], 64, "%s", head[c]);
	for (size_t r = 0; r < l->n; r++)
		ls_row(&l->v[r], cells[r + 1]);
	for (size_t r = 0; r <= l->n; r++)
		for (int c = 0; c < LS_COLS; c++)
			if ((int)strlen(cells[r][c]) > w[c])
				w[c] = (int)strlen(cells[r][c]);
	for (size_t r = 0; r <= l->n; r++) {
		for (int c = 0; c < LS_COLS; c++) {
			const char *sep = c + 1 < LS_COLS ? "  " : "\n";

			if (c + 1 == LS_COLS && !right[c])
				printf("%s%s", cells[r][c], sep);
			else
				printf(right[c] ? "%*s%s" : "%-*s%s", w[c],
				       cells[r][c], sep);
		}
	}
	free(cells);
}

static void
ls_json(const struct info_list *l)
{
	char st[96];

	putchar('[');
	for (size_t r = 0; r < l->n; r++) {
		const struct shmdemux_stream_info *i = &l->v[r];

		state_str(i, st, sizeof(st));
		printf("%s{\"id\":%" PRIu32 ",\"name\":", r ? "," : "", i->id);
		str_json(stdout, i->name);
		printf(",\"state\":");
		str_json(stdout, st);
		printf(",\"end_reason\":");
		str_json(stdout, i->state == SHMDEMUX_STATE_ENDED ?
			 shmdemux_end_reason_name(i->end_reason) : "");
		printf(",\"exit_code\":%d,\"signal\":%d,\"end_msg\":",
		       i->exit_code, i->signal);
		str_json(stdout, i->end_msg);
		printf(",\"source\":");
		str_json(stdout, i->source);
		printf(",\"mode\":\"%s\",\"worker_pid\":%d,\"tracks\":%" PRIu32
		       ",\"packets\":%" PRIu64 ",\"bytes\":%" PRIu64
		       ",\"input_bytes\":%" PRIu64 ",\"consumers\":%" PRIu32
		       ",\"ring_size\":%" PRIu64 ",\"fill_permille\":%" PRIu32
		       ",\"drops\":%" PRIu64 ",\"uptime_ms\":%" PRIu64,
		       i->mode == SHMDEMUX_MODE_LIVE ? "live" : "lossless",
		       i->worker_pid, i->tracks, i->packets, i->bytes,
		       i->input_bytes, i->consumers, i->ring_size,
		       i->fill_permille, i->drops, i->uptime_ms);
		printf(",\"frames\":%" PRIu64 ",\"lag_bytes\":%" PRIu64
		       ",\"worker_cpu_ms\":%" PRIu64 ",\"worker_rss\":%" PRIu64
		       ",\"ended_ago_ms\":%" PRIu64 ",\"reaped\":%s"
		       ",\"ring_released\":%s}", i->frames, i->lag_bytes,
		       i->worker_cpu_ms, i->worker_rss, i->ended_ago_ms,
		       i->flags & SHMDEMUX_INFO_REAPED ? "true" : "false",
		       i->flags & SHMDEMUX_INFO_RELEASED ? "true" : "false");
	}
	printf("]\n");
}

/* The table, and with `all` the streams reaped lately. */
static int
list_streams(shmdemux_conn *conn, int all, struct info_list *l,
	     const char *what)
{
	int c;

	l->v = NULL;
	l->n = 0;
	c = shmdemux_list_flags(conn, all ? SHMDEMUX_LIST_ENDED : 0, collect,
				l);
	if (c < 0) {
		free(l->v);
		l->v = NULL;
		l->n = 0;
		return request_failed(conn, what, c);
	}
	return 0;
}

static const char state_doc[] =
"States: starting (a worker is being given the stream), opening (probing\n"
"the input), running, and ended:REASON, one of eof, open-failed,\n"
"demux-error, crashed(SIGNAL), sandbox(CALL) (the forbidden call),\n"
"memory-limit, watchdog, killed, closed, exited(CODE), input-error,\n"
"ring-error, exec-failed, spool-limit.\n";

static void
ls_help(FILE *f)
{
	fprintf(f,
"usage: shmdemux ls [--all] [--json]\n"
"List the broker's streams: id, name, state, source, worker pid, tracks,\n"
"packets, decoded frames, payload bytes, attached consumers, ring fill,\n"
"drops (overruns + evictions), uptime (for an ended stream: how long\n"
"ago it ended). An ended stream stays listed until it is closed, or until\n"
"no one has held it for the broker's --retain-ended time.\n"
"%s"
"`dump` names the cause when a stream fails.\n"
"  --all   also the streams the broker reaped or closed lately (its last\n"
"          64), with their end status\n"
"  --json  one JSON array of objects (one per stream) on one line, with\n"
"          raw numbers (bytes, uptime_ms, fill_permille, frames,\n"
"          lag_bytes, worker_cpu_ms, worker_rss, ended_ago_ms, ...)\n"
"  --help  this text\n", state_doc);
}

int
cmd_ls(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "all", no_argument, NULL, 'a' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct info_list l;
	shmdemux_conn *conn = NULL;
	int c, json = 0, all = 0, ret;

	while ((c = getopt_long(argc, argv, "ah", lo, NULL)) != -1) {
		if (c == 'h') {
			ls_help(stdout);
			return 0;
		}
		if (c == 'j')
			json = 1;
		else if (c == 'a')
			all = 1;
		else
			return unknown_option("ls ", argv);
	}
	if (optind != argc)
		return usage_error("ls ", "too many arguments");
	if ((ret = connect_broker(&conn, 0)) != 0)
		return ret;
	ret = list_streams(conn, all, &l, "ls");
	if (ret == 0 && json)
		ls_json(&l);
	else if (ret == 0)
		ls_table(&l);
	free(l.v);
	shmdemux_disconnect(&conn);
	return ret;
}

/* ---- top ---- */

static const struct shmdemux_stream_info *
find_id(const struct info_list *l, uint32_t id, int reaped)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->v[i].id == id &&
		    !(l->v[i].flags & SHMDEMUX_INFO_REAPED) == !reaped)
			return &l->v[i];
	return NULL;
}

#define TOP_COLS 12

/* One row; rates from the previous sample of the same stream (dt > 0),
 * "-" on the first. */
static void
top_row(const struct shmdemux_stream_info *i,
	const struct shmdemux_stream_info *was, double dt,
	char cell[TOP_COLS][64])
{
	snprintf(cell[0], 64, "%" PRIu32, i->id);
	str_text(cell[1], 64, i->name[0] ? i->name : "-");
	state_str(i, cell[2], 64);
	if (was != NULL && dt > 0 && i->packets >= was->packets &&
	    i->bytes >= was->bytes) {
		snprintf(cell[3], 64, "%.0f",
			 (double)(i->packets - was->packets) / dt);
		snprintf(cell[4], 64, "%.2f",
			 (double)(i->bytes - was->bytes) / dt / 1e6);
	} else {
		snprintf(cell[3], 64, "-");
		snprintf(cell[4], 64, "-");
	}
	snprintf(cell[5], 64, "%u.%u%%", i->fill_permille / 10,
		 i->fill_permille % 10);
	snprintf(cell[6], 64, "%" PRIu32, i->consumers);
	human_bytes(i->lag_bytes, cell[7], 64);
	snprintf(cell[8], 64, "%" PRIu64, i->drops);
	if (was != NULL && dt > 0 && i->worker_cpu_ms >= was->worker_cpu_ms)
		snprintf(cell[9], 64, "%.1f",
			 (double)(i->worker_cpu_ms - was->worker_cpu_ms) /
			 10.0 / dt);
	else
		snprintf(cell[9], 64, "-");
	if (i->worker_rss > 0)
		human_bytes(i->worker_rss, cell[10], 64);
	else
		snprintf(cell[10], 64, "-");
	ended_or_uptime(i, cell[11], 64);
}

static void
top_frame(const struct info_list *now, const struct info_list *was,
	  double dt, int batch)
{
	static const char *const head[TOP_COLS] = {
		"ID", "NAME", "STATE", "PKT/S", "MB/S", "FILL", "CONS", "LAG",
		"DROPS", "CPU%", "RSS", "UPTIME",
	};
	static const int right[TOP_COLS] = {
		1, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 0,
	};
	char (*cells)[TOP_COLS][64] = calloc(now->n + 1, sizeof(*cells));
	unsigned running = 0, ended = 0, cons = 0;
	uint64_t rss = 0;
	double pkts = 0, bytes = 0;
	int w[TOP_COLS] = { 0 };
	char clock[16], rssh[32];
	time_t t = time(NULL);
	struct tm tm;

	if (cells == NULL)
		return;
	for (int c = 0; c < TOP_COLS; c++)
		snprintf(cells[0][c], 64, "%s", head[c]);
	for (size_t r = 0; r < now->n; r++) {
		const struct shmdemux_stream_info *i = &now->v[r];
		const struct shmdemux_stream_info *p =
			was != NULL ? find_id(was, i->id, i->flags &
					      SHMDEMUX_INFO_REAPED) : NULL;

		top_row(i, p, dt, cells[r + 1]);
		if (i->state == SHMDEMUX_STATE_ENDED)
			ended++;
		else
			running++;
		cons += i->consumers;
		rss += i->worker_rss;
		if (p != NULL && dt > 0 && i->packets >= p->packets &&
		    i->bytes >= p->bytes) {
			pkts += (double)(i->packets - p->packets) / dt;
			bytes += (double)(i->bytes - p->bytes) / dt;
		}
	}
	for (size_t r = 0; r <= now->n; r++)
		for (int c = 0; c < TOP_COLS; c++)
			if ((int)strlen(cells[r][c]) > w[c])
				w[c] = (int)strlen(cells[r][c]);
	if (!batch)
		fputs("\033[H\033[2J", stdout);
	localtime_r(&t, &tm);
	strftime(clock, sizeof(clock), "%H:%M:%S", &tm);
	human_bytes(rss, rssh, sizeof(rssh));
	printf("shmdemux top - %s  streams: %u running, %u ended  consumers: "
	       "%u  %.0f packets/s  %.2f MB/s  workers' RSS %s\n\n", clock,
	       running, ended, cons, pkts, bytes / 1e6, rssh);
	for (size_t r = 0; r <= now->n; r++)
		for (int c = 0; c < TOP_COLS; c++)
			printf(right[c] ? "%*s%s" : "%-*s%s",
			       c + 1 < TOP_COLS ? w[c] : 0, cells[r][c],
			       c + 1 < TOP_COLS ? "  " : "\n");
	if (batch)
		putchar('\n');
	fflush(stdout);
	free(cells);
}

static volatile sig_atomic_t top_quit;

static void
on_top_signal(int sig)
{
	(void)sig;
	top_quit = 1;
}

/* Wait `secs`, or less if 'q' is typed (interactive) or a signal comes.
 * Returns 1 to go on, 0 to quit. */
static int
top_wait(double secs, int keys)
{
	double end = now_s() + secs, left;
	struct pollfd pfd = { .fd = STDIN_FILENO, .events = POLLIN };
	char ch;

	while (!top_quit && (left = end - now_s()) > 0) {
		int r = poll(keys ? &pfd : NULL, keys ? 1 : 0,
			     (int)ceil(left * 1000));

		if (r > 0 && read(STDIN_FILENO, &ch, 1) == 1 &&
		    (ch == 'q' || ch == 'Q'))
			return 0;
		if (r > 0 && (pfd.revents & (POLLHUP | POLLERR)))
			keys = 0;
	}
	return !top_quit;
}

static void
top_help(FILE *f)
{
	fprintf(f,
"usage: shmdemux top [-d SECONDS] [-n COUNT] [-b] [--all]\n"
"A refreshing view of the broker's streams, like top(1): per stream its\n"
"state, packets/s and MB/s (payload) since the last refresh, ring fill,\n"
"consumers, LAG (unread bytes of its slowest consumer), drops, its\n"
"worker's CPU (%% of one core since the last refresh) and resident\n"
"memory (ring pages it touched included), and uptime; above, the totals.\n"
"Rates need two refreshes: the first shows \"-\". q or Ctrl-C quits.\n"
"%s"
"  -d, --delay SECONDS  time between refreshes (default 1, at least 0.05)\n"
"  -n, --iterations N   stop after N refreshes (default: until quit)\n"
"  -b, --batch          plain text, one block per refresh, no screen\n"
"                       control (the default when stdout is not a\n"
"                       terminal)\n"
"  --all                also the streams reaped lately\n"
"  --help               this text\n", state_doc);
}

int
cmd_top(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "delay", required_argument, NULL, 'd' },
		{ "iterations", required_argument, NULL, 'n' },
		{ "batch", no_argument, NULL, 'b' },
		{ "all", no_argument, NULL, 'a' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct info_list now = { NULL, 0 }, was = { NULL, 0 };
	shmdemux_conn *conn = NULL;
	struct termios saved, raw;
	struct sigaction sa;
	double delay = 1.0, t_now, t_was = 0;
	long iters = -1;
	int c, batch = !isatty(STDOUT_FILENO), all = 0, keys = 0, ret;
	char *end;

	while ((c = getopt_long(argc, argv, "d:n:bh", lo, NULL)) != -1) {
		switch (c) {
		case 'h':
			top_help(stdout);
			return 0;
		case 'd':
			errno = 0;
			delay = strtod(optarg, &end);
			if (errno != 0 || end == optarg || *end != '\0' ||
			    !(delay >= 0.05 && delay <= 86400))
				return usage_error("top ", "invalid --delay "
						   "(0.05 to 86400 seconds)");
			break;
		case 'n':
			errno = 0;
			iters = strtol(optarg, &end, 10);
			if (errno != 0 || end == optarg || *end != '\0' ||
			    iters < 1)
				return usage_error("top ", "invalid "
						   "--iterations (at least 1)");
			break;
		case 'b': batch = 1; break;
		case 'a': all = 1; break;
		default: return unknown_option("top ", argv);
		}
	}
	if (optind != argc)
		return usage_error("top ", "too many arguments");
	if ((ret = connect_broker(&conn, 0)) != 0)
		return ret;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_top_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	/* q without Enter: the terminal unbuffered, without echo, while we
	 * run (restored on every way out) */
	if (!batch && isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO,
							&saved) == 0) {
		raw = saved;
		raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
		raw.c_cc[VMIN] = 1;
		raw.c_cc[VTIME] = 0;
		keys = tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0;
	}
	for (long k = 0; iters < 0 || k < iters; k++) {
		if (k > 0 && !top_wait(delay, keys))
			break;
		t_now = now_s();
		if ((ret = list_streams(conn, all, &now, "top")) != 0)
			break;
		top_frame(&now, k > 0 ? &was : NULL, t_now - t_was, batch);
		free(was.v);
		was = now;
		now.v = NULL;
		now.n = 0;
		t_was = t_now;
	}
	if (keys)
		tcsetattr(STDIN_FILENO, TCSANOW, &saved);
	free(was.v);
	shmdemux_disconnect(&conn);
	return ret;
}

/* ---- stats ---- */

/* A Prometheus label value: \ " and newline escaped; the rest is UTF-8
 * text already (str_text() made it printable). */
static void
prom_label(const char *s)
{
	char text[4 * 256];

	str_text(text, sizeof(text), s);
	for (const char *p = text; *p != '\0'; p++) {
		if (*p == '\\' || *p == '"')
			printf("\\%c", *p);
		else if (*p == '\n')
			fputs("\\n", stdout);
		else
			putchar(*p);
	}
}

static void
prom_labels(const struct shmdemux_stream_info *i)
{
	printf("{id=\"%" PRIu32 "\",name=\"", i->id);
	prom_label(i->name);
	printf("\"}");
}

struct metric {
	const char *name, *type, *help;
	int (*get)(const struct shmdemux_stream_info *i, double *v);
};

#define GETTER(fn, expr) \
	static int fn(const struct shmdemux_stream_info *i, double *v) \
	{ *v = (double)(expr); return 1; }

GETTER(m_packets, i->packets)
GETTER(m_bytes, i->bytes)
GETTER(m_input, i->input_bytes)
GETTER(m_frames, i->frames)
GETTER(m_drops, i->drops)
GETTER(m_consumers, i->consumers)
GETTER(m_fill, i->fill_permille / 1000.0)
GETTER(m_ring, i->ring_size)
GETTER(m_lag, i->lag_bytes)
GETTER(m_cpu, i->worker_cpu_ms / 1000.0)
GETTER(m_uptime, i->uptime_ms / 1000.0)
GETTER(m_tracks, i->tracks)

static int
m_rss(const struct shmdemux_stream_info *i, double *v)
{
	*v = (double)i->worker_rss;
	return i->worker_pid > 0;
}

static const struct metric stream_metrics[] = {
	{ "shmdemux_stream_packets_total", "counter",
	  "Packets the stream's worker published.", m_packets },
	{ "shmdemux_stream_payload_bytes_total", "counter",
	  "Payload bytes published.", m_bytes },
	{ "shmdemux_stream_input_bytes_total", "counter",
	  "Input bytes the worker was given.", m_input },
	{ "shmdemux_stream_frames_total", "counter",
	  "Decoded frames published (streams opened with --decode).",
	  m_frames },
	{ "shmdemux_stream_drops_total", "counter",
	  "Records lost by live consumers plus consumers evicted.", m_drops },
	{ "shmdemux_stream_worker_cpu_seconds_total", "counter",
	  "CPU time of the stream's worker, user and system.", m_cpu },
	{ "shmdemux_stream_consumers", "gauge",
	  "Consumers attached.", m_consumers },
	{ "shmdemux_stream_tracks", "gauge", "Tracks published.", m_tracks },
	{ "shmdemux_stream_ring_fill_ratio", "gauge",
	  "Share of the ring holding unreleased records.", m_fill },
	{ "shmdemux_stream_ring_size_bytes", "gauge",
	  "Size of the stream's ring.", m_ring },
	{ "shmdemux_stream_lag_bytes", "gauge",
	  "Bytes the slowest consumer has not read yet.", m_lag },
	{ "shmdemux_stream_worker_resident_bytes", "gauge",
	  "Resident memory of the worker (touched ring pages included).",
	  m_rss },
	{ "shmdemux_stream_uptime_seconds", "gauge",
	  "Time since the open, up to the end.", m_uptime },
};

static void
prometheus(const struct info_list *l)
{
	const size_t nm = sizeof(stream_metrics) / sizeof(stream_metrics[0]);
	unsigned count[4] = { 0 }, cons = 0;
	uint64_t rss = 0;
	char st[96];
	double v;

	for (size_t r = 0; r < l->n; r++) {
		int s = l->v[r].state;

		if (s >= 0 && s < 4)
			count[s]++;
		cons += l->v[r].consumers;
		rss += l->v[r].worker_rss;
	}
	printf("# HELP shmdemux_up 1 when the broker answered.\n"
	       "# TYPE shmdemux_up gauge\nshmdemux_up 1\n");
	printf("# HELP shmdemux_streams Streams in the broker's table, by "
	       "state.\n# TYPE shmdemux_streams gauge\n");
	for (int s = 0; s < 4; s++)
		printf("shmdemux_streams{state=\"%s\"} %u\n",
		       shmdemux_state_name(s), count[s]);
	printf("# HELP shmdemux_consumers Consumers attached, all streams.\n"
	       "# TYPE shmdemux_consumers gauge\nshmdemux_consumers %u\n",
	       cons);
	printf("# HELP shmdemux_workers_resident_bytes Resident memory of all "
	       "workers.\n# TYPE shmdemux_workers_resident_bytes gauge\n"
	       "shmdemux_workers_resident_bytes %" PRIu64 "\n", rss);
	printf("# HELP shmdemux_stream_info The stream's state and end reason "
	       "(value 1).\n# TYPE shmdemux_stream_info gauge\n");
	for (size_t r = 0; r < l->n; r++) {
		const struct shmdemux_stream_info *i = &l->v[r];

		state_str(i, st, sizeof(st));
		printf("shmdemux_stream_info{id=\"%" PRIu32 "\",name=\"",
		       i->id);
		prom_label(i->name);
		printf("\",state=\"");
		prom_label(st);
		printf("\",mode=\"%s\"} 1\n", i->mode == SHMDEMUX_MODE_LIVE ?
		       "live" : "lossless");
	}
	for (size_t m = 0; m < nm; m++) {
		printf("# HELP %s %s\n# TYPE %s %s\n", stream_metrics[m].name,
		       stream_metrics[m].help, stream_metrics[m].name,
		       stream_metrics[m].type);
		for (size_t r = 0; r < l->n; r++) {
			if (!stream_metrics[m].get(&l->v[r], &v))
				continue;
			printf("%s", stream_metrics[m].name);
			prom_labels(&l->v[r]);
			printf(" %.17g\n", v);
		}
	}
}

static void
stats_text(const struct info_list *l)
{
	uint64_t packets = 0, bytes = 0, drops = 0, rss = 0, cpu = 0;
	unsigned running = 0, ended = 0, cons = 0;
	char b[32], r[32];

	for (size_t k = 0; k < l->n; k++) {
		const struct shmdemux_stream_info *i = &l->v[k];

		if (i->state == SHMDEMUX_STATE_ENDED)
			ended++;
		else
			running++;
		cons += i->consumers;
		packets += i->packets;
		bytes += i->bytes;
		drops += i->drops;
		rss += i->worker_rss;
		cpu += i->worker_cpu_ms;
	}
	human_bytes(bytes, b, sizeof(b));
	human_bytes(rss, r, sizeof(r));
	printf("streams:       %u (%u not ended, %u ended)\n"
	       "consumers:     %u\n"
	       "packets:       %" PRIu64 "\n"
	       "payload bytes: %s\n"
	       "drops:         %" PRIu64 "\n"
	       "workers' CPU:  %.3f s\n"
	       "workers' RSS:  %s\n",
	       running + ended, running, ended, cons, packets, b, drops,
	       (double)cpu / 1000.0, r);
}

static void
stats_help(FILE *f)
{
	fprintf(f,
"usage: shmdemux stats [--prometheus]\n"
"The broker's totals over the streams in its table: streams, consumers,\n"
"packets, payload bytes, drops, the workers' CPU time and resident memory.\n"
"  --prometheus  the Prometheus text exposition format instead: per-stream\n"
"                counters and gauges labelled with the stream's id and\n"
"                name (shmdemux_stream_*), and the broker's totals\n"
"                (shmdemux_streams by state, shmdemux_consumers, ...), for\n"
"                node_exporter's textfile collector or a scrape wrapper:\n"
"                shmdemux stats --prometheus > DIR/shmdemux.prom.tmp &&\n"
"                mv DIR/shmdemux.prom.tmp DIR/shmdemux.prom\n"
"  --help        this text\n");
}

int
cmd_stats(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "prometheus", no_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct info_list l;
	shmdemux_conn *conn = NULL;
	int c, prom = 0, ret;

	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		if (c == 'h') {
			stats_help(stdout);
			return 0;
		}
		if (c != 'p')
			return unknown_option("stats ", argv);
		prom = 1;
	}
	if (optind != argc)
		return usage_error("stats ", "too many arguments");
	if ((ret = connect_broker(&conn, 0)) != 0)
		return ret;
	ret = list_streams(conn, 0, &l, "stats");
	if (ret == 0 && prom)
		prometheus(&l);
	else if (ret == 0)
		stats_text(&l);
	free(l.v);
	shmdemux_disconnect(&conn);
	if (ret == 0 && (fflush(stdout) != 0 || ferror(stdout)))
		ret = fail("stats: cannot write the output");
	return ret;
}
