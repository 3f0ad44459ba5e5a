/*
 * cli.c - the admin CLI `shmdemux`: the command table and the global
 * options, open, close, kill (probe is in cli_probe.c, dump and its
 * output formats in cli_dump.c, ls, top and stats in cli_ls.c, cat in
 * cli_cat.c).
 *
 * Contract (scripts depend on it): exit 0 on success, 1 on a runtime
 * failure with one line "shmdemux: <cause>" on stderr, 2 on a usage error.
 * Only the public client API is used, plus the shared CSV line formatter
 * (cli_dump.c).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "ffversion.h"
#include "parse_size.h"
#include "proto.h"
#include "shmdemux.h"
#include "version.h"
#include "strescape.h"

#define EXIT_USAGE 2

static const char *socket_path; /* NULL: library default */

int __attribute__((format(printf, 1, 2)))
fail(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fputs("shmdemux: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return EXIT_FAILURE;
}

int
usage_error(const char *cmd, const char *what)
{
	fprintf(stderr, "shmdemux: %s (see 'shmdemux %s--help')\n", what,
		cmd != NULL ? cmd : "");
	return EXIT_USAGE;
}

/* getopt's complaint is silenced (opterr = 0): this is the one line. */
int
unknown_option(const char *cmd, char **argv)
{
	char what[160];

	snprintf(what, sizeof(what), "unknown option or missing value: %s",
		 argv[optind - 1]);
	return usage_error(cmd, what);
}

/* Connect, naming the broker's socket in the failure line. */
int
connect_broker(shmdemux_conn **conn, unsigned flags)
{
	int ret = shmdemux_connect(conn, socket_path, flags);

	if (ret == SHMDEMUX_EUNTRUSTED || (ret < 0 &&
	    shmdemux_connect_error()[0] != '\0'))
		return fail("cannot connect to the broker: %s",
			    shmdemux_connect_error());
	if (ret < 0)
		return fail("cannot connect to the broker%s%s: %s",
			    socket_path ? " at " : "",
			    socket_path ? socket_path : "",
			    shmdemux_strerror(ret));
	return 0;
}

/* A failed request: the broker's own words when it gave some. */
int
request_failed(shmdemux_conn *conn, const char *what, int code)
{
	const char *msg = shmdemux_conn_last_error(conn);
	char text[4 * 256], name[4 * 256];

	/* what (a path, a stream name) and the broker's message may carry
	 * anything: shown as text, never as terminal codes */
	str_text(name, sizeof(name), what);
	if (msg[0] != '\0')
		return fail("%s: %s", name, str_text(text, sizeof(text), msg));
	return fail("%s: %s", name, shmdemux_strerror(code));
}

/* STREAM is a numeric id or a name. */
static void
parse_ref(const char *s, uint32_t *id, const char **name)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (*s >= '0' && *s <= '9' && *end == '\0' && errno == 0 &&
	    v <= UINT32_MAX) {
		*id = (uint32_t)v;
		*name = NULL;
	} else {
		*id = 0;
		*name = s;
	}
}

/* The one STREAM operand left after the options, parsed into *id or
 * *name, and a connection to the broker. 0 or the exit status. */
int
stream_operand(const char *cmd, int argc, char **argv, uint32_t *id,
	       const char **name, shmdemux_conn **conn)
{
	if (optind != argc - 1)
		return usage_error(cmd, optind == argc ? "missing STREAM" :
				   "too many arguments");
	parse_ref(argv[optind], id, name);
	return connect_broker(conn, 0);
}

int
parse_from(const char *cmd, const char *arg, int *start)
{
	if (strcmp(arg, "start") == 0)
		*start = SHMDEMUX_START_OLDEST;
	else if (strcmp(arg, "keyframe") == 0)
		*start = SHMDEMUX_START_KEYFRAME;
	else if (strcmp(arg, "live") == 0)
		*start = SHMDEMUX_START_LIVE;
	else
		return usage_error(cmd, "--from: start, keyframe or live");
	return 0;
}

/* --timeout MS: -1 (wait forever) up to INT_MAX. 0 or the exit status. */
int
parse_timeout(const char *cmd, const char *arg, int *timeout)
{
	char *end;
	long v = strtol(arg, &end, 10);

	if (*end != '\0' || v < -1 || v > INT_MAX)
		return usage_error(cmd, "--timeout: bad MS");
	*timeout = (int)v;
	return 0;
}

void
json_ts(FILE *f, int64_t v)
{
	if (v == SHMDEMUX_NOPTS)
		fputs("null", f);
	else
		fprintf(f, "%" PRId64, v);
}

const char *
signame(int sig, char *buf, size_t cap)
{
	const char *abbrev = sigabbrev_np(sig);

	if (abbrev == NULL)
		snprintf(buf, cap, "signal %d", sig);
	else
		snprintf(buf, cap, "SIG%s", abbrev);
	return buf;
}

/* "worker crashed (signal 11, SIGSEGV)", "input could not be opened:
 * <broker message>", ... for a stream's end. */
void
describe_end(const struct shmdemux_status *st, char *buf, size_t cap)
{
	char sig[32];
	int n;

	if (st->code == SHMDEMUX_ECRASHED || st->code == SHMDEMUX_ESANDBOX ||
	    (st->signal > 0 && st->code == SHMDEMUX_EKILLED)) {
		n = snprintf(buf, cap, "%s (signal %d, %s)",
			     shmdemux_strerror(st->code), st->signal,
			     signame(st->signal, sig, sizeof(sig)));
	} else if (st->code == SHMDEMUX_EEXITED) {
		n = snprintf(buf, cap, "%s (exit code %d)",
			     shmdemux_strerror(st->code), st->exit_code);
	} else {
		n = snprintf(buf, cap, "%s", shmdemux_strerror(st->code));
	}
	/* the message is the worker's word: text, never terminal codes */
	if (st->message[0] != '\0' && n >= 0 && (size_t)n + 2 < cap) {
		snprintf(buf + n, cap - (size_t)n, ": ");
		str_text(buf + n + 2, cap - (size_t)n - 2, st->message);
	}
}

/* ---- open ---- */

static void
open_help(FILE *f)
{
	fprintf(f,
"usage: shmdemux open [OPTIONS] SOURCE\n"
"Open SOURCE (a file path, or - for standard input read as a pipe) in a new\n"
"stream and print its id. Starts a per-user broker if none is running.\n"
"  --name N               unique stream name (usable instead of the id)\n"
"  --mode lossless|live   lossless (default): the worker waits for slow\n"
"                         readers; live: it never waits, slow readers lose\n"
"                         packets and resync at a keyframe\n"
"  --ring-size SIZE       ring size in bytes, suffix K/M/G allowed\n"
"                         (default: the broker's)\n"
"  --wait-consumers N     hold the stream until N readers attached\n"
"                         (default: 1 in lossless mode, 0 in live mode)\n"
"  --format FMT           force the input format (e.g. mpegts)\n"
"  --probesize BYTES      libavformat probesize (suffix K/M/G allowed)\n"
"  --analyzeduration USEC libavformat analyzeduration in microseconds\n"
"  --demux-opt KEY=VALUE  demuxer option, repeatable (as ffprobe's own)\n"
"  --realtime             publish packets at the media's pace\n"
"  --spool-limit SIZE     most bytes of a non-seekable MP4/MOV with the moov\n"
"                         after the mdat that may be held to demux it as a\n"
"                         file (suffix K/M/G allowed; default 512M); past it\n"
"                         the stream ends with spool-limit\n"
"  --fd N                 read the input from this process's fd N (SOURCE\n"
"                         is then an optional label)\n"
"  --mem-limit SIZE       the worker's address space besides its ring,\n"
"                         suffix K/M/G (default: the broker's, 3G); over\n"
"                         it the stream ends as memory\n"
"  --watchdog MS          kill the worker when it makes no progress this\n"
"                         long while input waits (default: the broker's,\n"
"                         10000); the stream ends as watchdog\n"
"  --format-whitelist L   demuxers allowed, comma-separated libavformat\n"
"                         names (e.g. mov,matroska; default: the usual\n"
"                         containers, no playlists or image sequences)\n"
"  --decode video|audio|all  decode these tracks in the worker: readers\n"
"                         get frames instead of their packets (the\n"
"                         default ring grows to 64M)\n"
"  --decode-threads N     decoder threads (default: suited to the machine)\n"
"  --decode-strict        a decoding error ends the stream (default: it\n"
"                         is counted and decoding goes on)\n"
"  --timeout MS           wait at most MS ms (default 10000, -1 forever)\n"
"                         for the worker to open and probe the input; an\n"
"                         input it cannot open (empty, not media, a format\n"
"                         outside the whitelist, a bad --demux-opt) or, with\n"
"                         --decode, decoders it refuses (a ring too small\n"
"                         for two frames) make open fail with the worker's\n"
"                         reason, the stream closed. A stream still probing\n"
"                         then (a slow live source) is kept: its id is\n"
"                         printed with a warning, except with --decode\n"
"  --no-wait              print the id as soon as the broker has the stream\n"
"                         (its failures then show in ls and dump)\n"
"  --help                 this text\n"
"A broker started for an open that fails is stopped again.\n");
}

struct open_args {
	struct shmdemux_open_opts o;
	const char **dopts;
	size_t ndopts;
	int fd;
	int timeout;               /* wait for running, ms */
	int timeout_set;
	int no_wait;
};

static int
open_option(struct open_args *a, int c, const char *arg)
{
	uint64_t v;
	const char **p;

	switch (c) {
	case 'n':
		if (*arg == '\0')
			return usage_error("open ", "--name: an empty name "
					   "(leave --name out for none)");
		a->o.name = arg;
		return 0;
	case 'f': a->o.format = arg; return 0;
	case 'r': a->o.realtime = 1; return 0;
	case 'm':
		if (strcmp(arg, "lossless") == 0)
			a->o.mode = SHMDEMUX_MODE_LOSSLESS;
		else if (strcmp(arg, "live") == 0)
			a->o.mode = SHMDEMUX_MODE_LIVE;
		else
			return usage_error("open ", "--mode: lossless or live");
		return 0;
	case 's':
		if (parse_size(arg, UINT64_MAX, &a->o.ring_size) < 0)
			return usage_error("open ", "--ring-size: bad size");
		return 0;
	case 'w':
		if (parse_size(arg, UINT32_MAX - 1, &v) < 0)
			return usage_error("open ", "--wait-consumers: bad count");
		a->o.wait_consumers = (uint32_t)v;
		return 0;
	case 'p':
		if (parse_size(arg, INT64_MAX, &v) < 0)
			return usage_error("open ", "--probesize: bad size");
		a->o.probesize = (int64_t)v;
		return 0;
	case 'a':
		if (parse_size(arg, INT64_MAX, &v) < 0)
			return usage_error("open ",
					   "--analyzeduration: bad duration");
		a->o.analyzeduration = (int64_t)v;
		return 0;
	case 'o':
		if (strchr(arg, '=') == NULL || arg[0] == '=')
			return usage_error("open ", "--demux-opt: KEY=VALUE");
		if (a->ndopts >= CTL_MAX_OPTS) { /* the protocol's limit */
			char what[64];

			snprintf(what, sizeof(what), "--demux-opt: at most %d",
				 CTL_MAX_OPTS);
			return usage_error("open ", what);
		}
		p = realloc(a->dopts, (a->ndopts + 2) * sizeof(*p));
		if (p == NULL)
			return fail("out of memory");
		a->dopts = p;
		p[a->ndopts++] = arg;
		p[a->ndopts] = NULL;
		a->o.demux_opts = p;
		return 0;
	case 'S':
		if (parse_size(arg, INT64_MAX, &a->o.spool_limit) < 0 ||
		    a->o.spool_limit == 0)
			return usage_error("open ", "--spool-limit: bad size");
		return 0;
	case 'd':
		if (parse_size(arg, INT_MAX, &v) < 0)
			return usage_error("open ", "--fd: bad descriptor");
		a->fd = (int)v;
		return 0;
	case 'M':
		if (parse_size(arg, UINT64_MAX, &a->o.mem_limit) < 0 ||
		    a->o.mem_limit == 0)
			return usage_error("open ", "--mem-limit: bad size");
		return 0;
	case 'W':
		if (parse_size(arg, UINT32_MAX, &v) < 0 || v == 0)
			return usage_error("open ", "--watchdog: bad MS");
		a->o.watchdog_ms = (uint32_t)v;
		return 0;
	case 'F':
		if (arg[0] == '\0')
			return usage_error("open ", "--format-whitelist: empty");
		a->o.format_whitelist = arg;
		return 0;
	case 'D':
		if (strcmp(arg, "video") == 0)
			a->o.decode = SHMDEMUX_DECODE_VIDEO;
		else if (strcmp(arg, "audio") == 0)
			a->o.decode = SHMDEMUX_DECODE_AUDIO;
		else if (strcmp(arg, "all") == 0)
			a->o.decode = SHMDEMUX_DECODE_VIDEO |
				      SHMDEMUX_DECODE_AUDIO;
		else
			return usage_error("open ", "--decode: video, audio "
					   "or all");
		return 0;
	case 'T':
		if (parse_size(arg, 1024, &v) < 0)
			return usage_error("open ", "--decode-threads: bad "
					   "count");
		a->o.decode_threads = (unsigned)v;
		return 0;
	case 'X': a->o.decode_strict = 1; return 0;
	case 't':
		a->timeout_set = 1;
		return parse_timeout("open ", arg, &a->timeout);
	case 'N': a->no_wait = 1; return 0;
	default:
		return -1; /* the caller names the option */
	}
}

static int
open_source(shmdemux_conn *conn, struct open_args *a, const char *src,
	    uint32_t *id)
{
	char real[PATH_MAX];

	if (a->fd >= 0) {
		a->o.label = src;
		return shmdemux_open_fd(conn, a->fd, &a->o, id);
	}
	if (strcmp(src, "-") == 0) {
		/* stdin is read as a pipe even when it is a file, as
		 * ffprobe -i pipe:0 reads it */
		a->o.noseek = 1;
		a->o.label = "stdin";
		return shmdemux_open_fd(conn, STDIN_FILENO, &a->o, id);
	}
	/* The broker resolves the path in its own directory. */
	if (realpath(src, real) == NULL)
		return -errno;
	return shmdemux_open_path(conn, real, &a->o, id);
}

/* Options that cannot go together, or one that needs another. */
static int
open_conflicts(const struct open_args *a)
{
	const char *f = a->o.format, *wl = a->o.format_whitelist;
	size_t n;

	if (a->o.decode == 0 && (a->o.decode_threads != 0 ||
				 a->o.decode_strict))
		return usage_error("open ", "--decode-threads and "
				   "--decode-strict need --decode");
	if (a->no_wait && a->timeout_set)
		return usage_error("open ", "--no-wait and --timeout exclude "
				   "each other");
	if (a->no_wait && a->o.decode != 0)
		return usage_error("open ", "--decode waits for the worker to "
				   "accept its decoders: no --no-wait");
	/* --format must be one of the whitelist's names */
	if (f != NULL && wl != NULL) {
		n = strlen(f);
		for (const char *p = wl; p != NULL && *p != '\0';) {
			size_t k = strcspn(p, ",");

			if (k == n && strncmp(p, f, n) == 0)
				return 0;
			p = p[k] == ',' ? p + k + 1 : NULL;
		}
		return usage_error("open ", "--format is not in "
				   "--format-whitelist");
	}
	return 0;
}

/* Wait until the worker has opened and probed the input. With --decode
 * it also checks the ring against its decoders before it publishes the
 * track table. A stream that ends without a track table was refused:
 * report why and close it, rather than leave a dead stream. */
static int
open_wait(shmdemux_conn *conn, uint32_t id, int timeout, int decode)
{
	struct shmdemux_status st;
	shmdemux_stream *s = NULL;
	char why[768];
	int ret;

	ret = shmdemux_attach(conn, id, NULL, SHMDEMUX_START_OLDEST,
			      SHMDEMUX_ATTACH_OBSERVER, &s);
	if (ret < 0)
		return request_failed(conn, "open", ret);
	ret = shmdemux_wait_running(s, timeout);
	if (ret == SHMDEMUX_STATE_RUNNING ||
	    (ret == SHMDEMUX_STATE_ENDED && shmdemux_track_generation(s) != 0)) {
		ret = 0;
	} else if (ret == SHMDEMUX_STATE_ENDED) {
		shmdemux_status(s, &st);
		describe_end(&st, why, sizeof(why));
		ret = fail("open refused: %s", why);
	} else if (ret == -ETIMEDOUT && !decode) {
		fprintf(stderr, "shmdemux: warning: stream %" PRIu32 " is "
			"still opening its input after %d ms; it goes on\n",
			id, timeout);
		ret = 0;
	} else if (ret == -ETIMEDOUT) {
		ret = fail("open: stream %" PRIu32 " not running within %d ms",
			   id, timeout);
	} else {
		ret = fail("open: stream %" PRIu32 ": %s", id,
			   shmdemux_strerror(ret));
	}
	shmdemux_detach(&s);
	if (ret != 0)
		shmdemux_close_stream(conn, id, NULL);
	return ret;
}

static int
cmd_open(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "name", required_argument, NULL, 'n' },
		{ "mode", required_argument, NULL, 'm' },
		{ "ring-size", required_argument, NULL, 's' },
		{ "wait-consumers", required_argument, NULL, 'w' },
		{ "format", required_argument, NULL, 'f' },
		{ "probesize", required_argument, NULL, 'p' },
		{ "analyzeduration", required_argument, NULL, 'a' },
		{ "demux-opt", required_argument, NULL, 'o' },
		{ "realtime", no_argument, NULL, 'r' },
		{ "spool-limit", required_argument, NULL, 'S' },
		{ "fd", required_argument, NULL, 'd' },
		{ "mem-limit", required_argument, NULL, 'M' },
		{ "watchdog", required_argument, NULL, 'W' },
		{ "format-whitelist", required_argument, NULL, 'F' },
		{ "decode", required_argument, NULL, 'D' },
		{ "decode-threads", required_argument, NULL, 'T' },
		{ "decode-strict", no_argument, NULL, 'X' },
		{ "timeout", required_argument, NULL, 't' },
		{ "no-wait", no_argument, NULL, 'N' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct open_args a = { .fd = -1, .timeout = 10000 };
	shmdemux_conn *conn = NULL;
	const char *src;
	uint32_t id;
	int c, ret = 0;

	shmdemux_open_opts_init(&a.o);
	while (ret == 0 && (c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		if (c == 'h') {
			open_help(stdout);
			goto out;
		}
		ret = open_option(&a, c == '?' ? 0 : c, optarg);
		if (ret < 0)
			ret = unknown_option("open ", argv);
	}
	if (ret == 0)
		ret = open_conflicts(&a);
	if (ret != 0)
		goto out;
	if (optind == argc - 1)
		src = argv[optind];
	else if (optind == argc && a.fd >= 0)
		src = NULL;
	else {
		ret = usage_error("open ", optind == argc ? "missing SOURCE" :
				  "too many arguments");
		goto out;
	}
	if ((ret = connect_broker(&conn, SHMDEMUX_CONNECT_AUTOSTART)) != 0)
		goto out;
	c = open_source(conn, &a, src, &id);
	if (c < 0) {
		ret = request_failed(conn, src != NULL ? src : "open", c);
		goto out;
	}
	if (!a.no_wait &&
	    (ret = open_wait(conn, id, a.timeout, a.o.decode != 0)) != 0)
		goto out;
	printf("%" PRIu32 "\n", id);
out:
	/* A broker this open started, for nothing: it goes (unless another
	 * client has begun to use it meanwhile; the broker decides). */
	if (ret != 0 && conn != NULL && shmdemux_conn_autostarted(conn))
		(void)shmdemux_broker_quit_idle(conn);
	shmdemux_disconnect(&conn);
	free(a.dopts);
	return ret;
}

/* ---- close, kill ---- */

static int
stop_cmd(int argc, char **argv, int kill_it)
{
	static const struct option lo[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *cmd = kill_it ? "kill " : "close ";
	shmdemux_conn *conn = NULL;
	const char *name;
	uint32_t id;
	int c, ret;

	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		if (c != 'h')
			return usage_error(cmd, "unknown option");
		printf("usage: shmdemux %sSTREAM\n%s\n"
		       "  --help  this text\n", cmd, kill_it ?
		       "Kill STREAM's worker with SIGKILL (its end reason is "
		       "\"killed\")." :
		       "Stop STREAM: its worker stops reading (its end reason "
		       "is \"closed\").");
		return 0;
	}
	if ((ret = stream_operand(cmd, argc, argv, &id, &name, &conn)) != 0)
		return ret;
	c = kill_it ? shmdemux_kill_stream(conn, id, name) :
	    shmdemux_close_stream(conn, id, name);
	if (c < 0)
		ret = request_failed(conn, argv[optind], c);
	shmdemux_disconnect(&conn);
	return ret;
}

static int
cmd_close(int argc, char **argv)
{
	return stop_cmd(argc, argv, 0);
}

static int
cmd_kill(int argc, char **argv)
{
	return stop_cmd(argc, argv, 1);
}

/* ---- main ---- */

static const struct {
	const char *name;
	int (*fn)(int, char **);
	const char *summary;
} commands[] = {
	{ "open", cmd_open, "open a source in a new stream, print its id" },
	{ "ls", cmd_ls, "list streams" },
	{ "top", cmd_top, "a refreshing view of the streams, with rates" },
	{ "stats", cmd_stats, "totals, or metrics in Prometheus' format" },
	{ "probe", cmd_probe, "print a stream's track table" },
	{ "dump", cmd_dump, "print a stream's packets until its end" },
	{ "cat", cmd_cat, "remux a stream's packets to stdout or a file/URL" },
	{ "close", cmd_close, "stop a stream" },
	{ "kill", cmd_kill, "kill a stream's worker (SIGKILL)" },
};

static void
main_help(FILE *f)
{
	fprintf(f,
"usage: shmdemux [--socket PATH] COMMAND [ARGS]\n"
"Drive the shmdemux broker. STREAM arguments are a stream id or name.\n"
"  --socket PATH  broker control socket (default: $SHMDEMUX_SOCKET, else\n"
"                 shmdemux.sock in $XDG_RUNTIME_DIR/shmdemux, else in\n"
"                 /tmp/shmdemux-<uid>, a directory private to the user)\n"
"  --help         this text; 'shmdemux COMMAND --help' for a command\n"
"  --version      versions of shmdemux, its library and FFmpeg\n"
"commands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-6s %s\n", commands[i].name, commands[i].summary);
	fprintf(f,
"exit status: 0 success, 1 failure (one line on stderr), 2 usage error\n");
}

int
main(int argc, char **argv)
{
	int i = 1;

	opterr = 0;
	/* Global options stop at the command name, so the command's own
	 * options are parsed by the command. */
	while (i < argc && argv[i][0] == '-') {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			main_help(stdout);
			return 0;
		} else if (strcmp(argv[i], "--version") == 0) {
			sd_version_print(stdout, "shmdemux");
			sd_version_print_ffmpeg(stdout);
			printf("libshmdemux %s (ABI %d) linked\n",
			       shmdemux_version(), shmdemux_abi_version());
			return 0;
		} else if (strcmp(argv[i], "--socket") == 0 && i + 1 < argc) {
			socket_path = argv[i + 1];
			i += 2;
		} else if (strncmp(argv[i], "--socket=", 9) == 0) {
			socket_path = argv[i] + 9;
			i++;
		} else {
			return usage_error(NULL, "unknown global option");
		}
	}
	if (i == argc)
		return usage_error(NULL, "missing COMMAND");
	for (size_t c = 0; c < sizeof(commands) / sizeof(commands[0]); c++) {
		if (strcmp(argv[i], commands[c].name) == 0) {
			optind = 1;
			return commands[c].fn(argc - i, argv + i);
		}
	}
	fprintf(stderr, "shmdemux: unknown command '%s' (see 'shmdemux "
		"--help')\n", argv[i]);
	return EXIT_USAGE;
}
