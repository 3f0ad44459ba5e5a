/*
 * cli.c - the admin CLI `shmdemux`: the command table and the global
 * options, open, probe, dump, close, kill (ls, top and stats are in
 * cli_ls.c, cat in cli_cat.c). Over 1,200 lines because dump's four
 * output formats (human, CSV, JSON, framemd5) live here; they are the
 * next to move out, to cli_dump.c.
 *
 * Contract (scripts depend on it): exit 0 on success, 1 on a runtime
 * failure with one line "shmdemux: <cause>" on stderr, 2 on a usage error.
 * Only the public client API is used, plus the shared CSV line formatter.
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

#include <libavcodec/avcodec.h>
#include <libavutil/channel_layout.h>
#include <libavutil/imgutils.h>
#include <libavutil/md5.h>
#include <libavutil/pixdesc.h>
#include <libavutil/samplefmt.h>

#include "cli.h"
#include "ffversion.h"
#include "parse_size.h"
#include "pktcsv.h"
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

static void
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

/* ---- probe ---- */

static const char *
media_name(int t)
{
	const char *s = av_get_media_type_string((enum AVMediaType)t);

	return s != NULL ? s : "unknown";
}

static void
track_details(shmdemux_stream *s, int i, const struct shmdemux_track *t,
	      char *buf, size_t cap)
{
	AVCodecParameters *par = avcodec_parameters_alloc();
	char layout[64] = "";
	const char *fmt;

	buf[0] = '\0';
	if (t->media_type == SHMDEMUX_MEDIA_VIDEO) {
		fmt = av_get_pix_fmt_name((enum AVPixelFormat)t->format);
		snprintf(buf, cap, "%dx%d %s", t->width, t->height,
			 fmt ? fmt : "-");
		if (t->avg_fr_num > 0 && t->avg_fr_den > 0)
			snprintf(buf + strlen(buf), cap - strlen(buf),
				 " %.3g fps",
				 (double)t->avg_fr_num / t->avg_fr_den);
	} else if (t->media_type == SHMDEMUX_MEDIA_AUDIO) {
		if (par != NULL && shmdemux_track_to_codecpar(s, i, par) == 0)
			av_channel_layout_describe(&par->ch_layout, layout,
						   sizeof(layout));
		fmt = av_get_sample_fmt_name((enum AVSampleFormat)t->format);
		snprintf(buf, cap, "%d Hz %s %s", t->sample_rate,
			 layout[0] ? layout : "-", fmt ? fmt : "-");
	}
	avcodec_parameters_free(&par);
}

static void
probe_table(shmdemux_stream *s, int n)
{
	struct shmdemux_track t;
	char det[128], text[128], lang[64], codec[128];
	int ret;

	printf("format: %s\n", str_text(text, sizeof(text),
					 shmdemux_format_name(s)));
	printf("%-5s  %-8s  %-12s  %-36s  %-12s  %-10s  %-10s  %-4s  %s\n",
	       "INDEX", "TYPE", "CODEC", "DETAILS", "TIMEBASE", "START",
	       "DURATION", "LANG", "EXTRADATA");
	for (int i = 0; i < n; i++) {
		char tb[32], st[24], du[24];

		if ((ret = shmdemux_get_track(s, i, &t)) < 0) {
			printf("%-5d  refused: %s\n", i, shmdemux_strerror(ret));
			continue;
		}
		track_details(s, i, &t, det, sizeof(det));
		snprintf(tb, sizeof(tb), "%d/%d", t.tb_num, t.tb_den);
		if (t.start_time == SHMDEMUX_NOPTS)
			snprintf(st, sizeof(st), "-");
		else
			snprintf(st, sizeof(st), "%" PRId64, t.start_time);
		if (t.duration == SHMDEMUX_NOPTS)
			snprintf(du, sizeof(du), "-");
		else
			snprintf(du, sizeof(du), "%" PRId64, t.duration);
		printf("%-5d  %-8s  %-12s  %-36s  %-12s  %-10s  %-10s  %-4s  "
		       "%zu\n", t.index, media_name(t.media_type),
		       str_text(codec, sizeof(codec),
				t.codec_name[0] ? t.codec_name : "-"), det, tb,
		       st, du, str_text(lang, sizeof(lang),
					t.language[0] ? t.language : "-"),
		       t.extradata_size);
	}
}

static void
probe_json_track(const struct shmdemux_track *t)
{
	printf("{\"index\":%d,\"id\":%d,\"type\":", t->index, t->id);
	str_json(stdout, media_name(t->media_type));
	printf(",\"codec\":");
	str_json(stdout, t->codec_name);
	printf(",\"codec_id\":%d,\"codec_tag\":%" PRIu32 ",\"format\":%d,"
	       "\"profile\":%d,\"level\":%d,\"bit_rate\":%" PRId64 ","
	       "\"bits_per_coded_sample\":%d,\"bits_per_raw_sample\":%d,"
	       "\"width\":%d,\"height\":%d,\"sar\":[%d,%d],\"field_order\":%d,"
	       "\"color_range\":%d,\"color_primaries\":%d,\"color_trc\":%d,"
	       "\"color_space\":%d,\"chroma_location\":%d,\"video_delay\":%d,"
	       "\"sample_rate\":%d,\"ch_order\":%d,\"channels\":%d,"
	       "\"ch_mask\":%" PRIu64 ",\"block_align\":%d,\"frame_size\":%d,"
	       "\"initial_padding\":%d,\"trailing_padding\":%d,"
	       "\"seek_preroll\":%d,\"time_base\":[%d,%d],"
	       "\"avg_frame_rate\":[%d,%d],\"r_frame_rate\":[%d,%d],"
	       "\"stream_sar\":[%d,%d],\"start_time\":",
	       t->codec_id, t->codec_tag, t->format, t->profile, t->level,
	       t->bit_rate, t->bits_per_coded_sample, t->bits_per_raw_sample,
	       t->width, t->height, t->sar_num, t->sar_den, t->field_order,
	       t->color_range, t->color_primaries, t->color_trc,
	       t->color_space, t->chroma_location, t->video_delay,
	       t->sample_rate, t->ch_order, t->channels, t->ch_mask,
	       t->block_align, t->frame_size, t->initial_padding,
	       t->trailing_padding, t->seek_preroll, t->tb_num, t->tb_den,
	       t->avg_fr_num, t->avg_fr_den, t->r_fr_num, t->r_fr_den,
	       t->st_sar_num, t->st_sar_den);
	json_ts(stdout, t->start_time);
	printf(",\"duration\":");
	json_ts(stdout, t->duration);
	printf(",\"nb_frames\":%" PRId64 ",\"disposition\":%d,\"language\":",
	       t->nb_frames, t->disposition);
	str_json(stdout, t->language);
	printf(",\"title\":");
	str_json(stdout, t->title);
	printf(",\"extradata_size\":%zu}", t->extradata_size);
}

static void
probe_json(shmdemux_stream *s, int n)
{
	struct shmdemux_track t;
	int first = 1;

	printf("{\"stream\":%" PRIu32 ",\"format\":", shmdemux_stream_id(s));
	str_json(stdout, shmdemux_format_name(s));
	printf(",\"tracks\":[");
	for (int i = 0; i < n; i++) {
		int ret = shmdemux_get_track(s, i, &t);

		if (!first)
			putchar(',');
		first = 0;
		if (ret < 0) {
			printf("{\"index\":%d,\"refused\":", i);
			str_json(stdout, shmdemux_strerror(ret));
			putchar('}');
			continue;
		}
		probe_json_track(&t);
	}
	printf("]}\n");
}

static void
probe_help(FILE *f)
{
	fprintf(f,
"usage: shmdemux probe STREAM [--json] [--timeout MS]\n"
"Print the track table of STREAM (an id or a name) without reading its\n"
"packets: index, type, codec, details (size, pixel format, frame rate /\n"
"sample rate, channel layout, sample format), time base, start, duration\n"
"(time base units), language, extradata size.\n"
"  --json        one JSON object with every track field (a refused\n"
"                track: index and why)\n"
"  --timeout MS  wait at most MS ms for the stream to be probed\n"
"                (default 10000; -1 waits forever)\n"
"  --help        this text\n");
}

static int
probe_stream(shmdemux_stream *s, const char *ref, int json, int timeout)
{
	struct shmdemux_status st;
	char why[768];
	int n, ret;

	ret = shmdemux_wait_running(s, timeout);
	if (ret == -ETIMEDOUT)
		return fail("stream %s: not probed within %d ms", ref, timeout);
	if (ret < 0)
		return fail("stream %s: %s", ref, shmdemux_strerror(ret));
	n = shmdemux_track_count(s);
	shmdemux_status(s, &st);
	if (n == 0 && st.state == SHMDEMUX_STATE_ENDED &&
	    st.code != SHMDEMUX_EOF) {
		describe_end(&st, why, sizeof(why));
		return fail("stream %s failed: %s", ref, why);
	}
	if (json)
		probe_json(s, n);
	else
		probe_table(s, n);
	return 0;
}

static int
cmd_probe(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	shmdemux_conn *conn = NULL;
	shmdemux_stream *s = NULL;
	const char *name;
	uint32_t id;
	int c, json = 0, timeout = 10000, ret;

	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case 'h':
			probe_help(stdout);
			return 0;
		case 'j':
			json = 1;
			break;
		case 't':
			if ((ret = parse_timeout("probe ", optarg,
						 &timeout)) != 0)
				return ret;
			break;
		default:
			return unknown_option("probe ", argv);
		}
	}
	if ((ret = stream_operand("probe ", argc, argv, &id, &name,
				  &conn)) != 0)
		return ret;
	c = shmdemux_attach(conn, id, name, SHMDEMUX_START_OLDEST,
			    SHMDEMUX_ATTACH_OBSERVER, &s);
	if (c < 0)
		ret = request_failed(conn, argv[optind], c);
	else
		ret = probe_stream(s, argv[optind], json, timeout);
	shmdemux_detach(&s);
	shmdemux_disconnect(&conn);
	return ret;
}

/* ---- dump ---- */

enum dump_fmt { DUMP_HUMAN, DUMP_CSV, DUMP_JSON, DUMP_FRAMEMD5 };

static void
md5_hex(const struct shmdemux_packet *p, char out[33])
{
	uint8_t d[16];

	av_md5_sum(d, p->data, p->size);
	for (int i = 0; i < 16; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static void
flags_str(uint32_t f, char out[8])
{
	out[0] = (f & SHMDEMUX_PKT_KEY) ? 'K' : '_';
	out[1] = (f & SHMDEMUX_PKT_DISCARD) ? 'D' : '_';
	out[2] = (f & SHMDEMUX_PKT_CORRUPT) ? 'C' : '_';
	out[3] = '\0';
}

static void
dump_json(const struct shmdemux_packet *p)
{
	char md5[33], fl[8];

	md5_hex(p, md5);
	flags_str(p->flags, fl);
	printf("{\"seq\":%" PRIu64 ",\"track\":%d,\"pts\":", p->seq, p->track);
	json_ts(stdout, p->pts);
	printf(",\"dts\":");
	json_ts(stdout, p->dts);
	printf(",\"duration\":%" PRId64 ",\"size\":%zu,\"pos\":%" PRId64
	       ",\"flags\":\"%s\",\"md5\":\"%s\",\"side_data\":[",
	       p->duration, p->size, p->pos, fl, md5);
	for (unsigned i = 0; i < p->nb_side_data; i++) {
		const char *n = av_packet_side_data_name(
		    (enum AVPacketSideDataType)p->side_data[i].type);

		printf("%s{\"type\":", i ? "," : "");
		str_json(stdout, n != NULL ? n : "unknown");
		printf(",\"size\":%" PRIu32 "}", p->side_data[i].size);
	}
	printf("]}\n");
}

static void
dump_human(const struct shmdemux_packet *p)
{
	char md5[33], fl[8], pts[24] = "-", dts[24] = "-";

	md5_hex(p, md5);
	flags_str(p->flags, fl);
	if (p->pts != SHMDEMUX_NOPTS)
		snprintf(pts, sizeof(pts), "%" PRId64, p->pts);
	if (p->dts != SHMDEMUX_NOPTS)
		snprintf(dts, sizeof(dts), "%" PRId64, p->dts);
	printf("#%-7" PRIu64 " track %d  pts %s  dts %s  dur %" PRId64
	       "  size %zu  pos %" PRId64 "  %s  md5 %s", p->seq, p->track,
	       pts, dts, p->duration, p->size, p->pos, fl, md5);
	for (unsigned i = 0; i < p->nb_side_data; i++) {
		const char *n = av_packet_side_data_name(
		    (enum AVPacketSideDataType)p->side_data[i].type);

		printf("  [%s: %" PRIu32 " bytes]", n != NULL ? n : "unknown",
		       p->side_data[i].size);
	}
	putchar('\n');
}

static void
dump_packet(const struct shmdemux_packet *p, enum dump_fmt fmt)
{
	char line[SD_PKT_CSV_MAX];

	switch (fmt) {
	case DUMP_CSV:
		if (sd_pkt_csv(line, sizeof(line), p->track, p->pts, p->dts,
			       p->duration, p->flags, p->data, p->size) >= 0)
			puts(line);
		break;
	case DUMP_JSON:
		dump_json(p);
		break;
	default:
		dump_human(p);
		break;
	}
}

/* The frame's bytes as ffmpeg's framemd5 muxer hashes them: video planes
 * packed as rawvideo (no line padding), audio samples interleaved (the
 * packed form of the decoder's sample format). */
static int
frame_md5(const struct shmdemux_frame *f, char out[33])
{
	static uint8_t *buf;
	static size_t cap;
	uint8_t d[16];
	uint64_t total;
	size_t n;
	int ret = 0, bps = 0, ch = 0;

	if (f->media_type == SHMDEMUX_MEDIA_VIDEO) {
		ret = av_image_get_buffer_size(f->format, f->width, f->height, 1);
		n = ret > 0 ? (size_t)ret : 0;
	} else {
		/* sized in 64 bits and checked against the planes, whatever
		 * the library let through */
		bps = av_get_bytes_per_sample(f->format);
		ch = f->channels;
		total = (uint64_t)(bps > 0 ? bps : 0) *
			(uint64_t)(ch > 0 ? ch : 0) *
			(uint64_t)(f->nb_samples > 0 ? f->nb_samples : 0);
		if (total == 0 || total > INT_MAX ||
		    (av_sample_fmt_is_planar(f->format) ?
		     f->nb_planes != ch || f->plane_size[0] * (uint64_t)ch <
		     total : f->plane_size[0] < total))
			return -EINVAL;
		n = (size_t)total;
	}
	if (n > cap) {
		uint8_t *p = realloc(buf, n);

		if (p == NULL)
			return -ENOMEM;
		buf = p;
		cap = n;
	}
	if (f->media_type == SHMDEMUX_MEDIA_VIDEO)
		ret = av_image_copy_to_buffer(buf, (int)n, f->data,
		    f->linesize, f->format, f->width, f->height, 1);
	else if (!av_sample_fmt_is_planar(f->format))
		memcpy(buf, f->data[0], n);
	else
		for (int i = 0; i < f->nb_samples; i++)
			for (int c = 0; c < ch; c++)
				memcpy(buf + ((size_t)i * ch + c) * bps,
				       f->data[c] + (size_t)i * bps, bps);
	if (ret < 0)
		return ret;
	av_md5_sum(d, buf, n);
	for (int i = 0; i < 16; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
	return 0;
}

static void
dump_frame(shmdemux_stream *s, enum dump_fmt fmt)
{
	struct shmdemux_frame f;
	char md5[33], ts[24] = "NOPTS";
	const char *name;

	if (shmdemux_get_frame(s, &f) < 0 || frame_md5(&f, md5) < 0)
		return;
	name = f.media_type == SHMDEMUX_MEDIA_VIDEO ?
	       av_get_pix_fmt_name(f.format) : av_get_sample_fmt_name(f.format);
	if (name == NULL)
		name = "-";
	if (f.best_effort_timestamp != SHMDEMUX_NOPTS)
		snprintf(ts, sizeof(ts), "%" PRId64, f.best_effort_timestamp);
	if (fmt == DUMP_FRAMEMD5) {
		printf("%d,%s,%s\n", f.track, ts, md5);
	} else if (fmt == DUMP_JSON) {
		printf("{\"seq\":%" PRIu64 ",\"track\":%d,\"frame\":\"%s\","
		       "\"pts\":", f.seq, f.track,
		       f.media_type == SHMDEMUX_MEDIA_VIDEO ? "video" : "audio");
		json_ts(stdout, f.best_effort_timestamp);
		printf(",\"format\":");
		str_json(stdout, name);
		printf(",\"md5\":\"%s\"}\n", md5);
	} else if (fmt == DUMP_CSV) {
		printf("frame,%s,%d,%s,%s,%s\n",
		       f.media_type == SHMDEMUX_MEDIA_VIDEO ? "video" : "audio",
		       f.track, ts, name, md5);
	} else {
		printf("#%-7" PRIu64 " track %d  frame  pts %s  %s  md5 %s\n",
		       f.seq, f.track, ts, name, md5);
	}
}

/* shmdemux_read(), writing out what stdout buffered before it waits: bulk
 * output goes out in big writes, a live stream's lines as they come. */
static int
read_flushing(shmdemux_stream *s, struct shmdemux_packet *p, int timeout)
{
	int ret = shmdemux_read(s, p, 0);

	if (ret == -EAGAIN && timeout != 0) {
		fflush(stdout);
		ret = shmdemux_read(s, p, timeout);
	}
	return ret;
}

static int
dump_stream(shmdemux_stream *s, const char *ref, enum dump_fmt fmt,
	    int timeout, int stats)
{
	struct shmdemux_packet p;
	struct shmdemux_status st;
	uint64_t packets = 0, frames = 0;
	char why[768];
	int ret;

	while ((ret = read_flushing(s, &p, timeout)) >= 0 ||
	       ret == SHMDEMUX_EOVERRUN) {
		if (ret == SHMDEMUX_FRAME) {
			frames++;
			dump_frame(s, fmt);
		} else if (ret == 0) {
			packets++;
			if (fmt != DUMP_FRAMEMD5)
				dump_packet(&p, fmt);
		}
	}
	if (fflush(stdout) != 0 || ferror(stdout))
		return fail("stream %s: writing the output: %s", ref,
			    strerror(errno));
	shmdemux_status(s, &st);
	if (st.overruns > 0)
		fprintf(stderr, "shmdemux: stream %s: %" PRIu64 " overruns "
			"(packets lost)\n", ref, st.overruns);
	if (stats)
		fprintf(stderr, "shmdemux: stream %s: packets %" PRIu64
			" frames %" PRIu64 " pooled %" PRIu64 " copied %"
			PRIu64 " decode-errors %" PRIu64 "\n", ref, st.packets,
			st.frames, st.frames_pooled, st.frames_copied,
			st.decode_errors);
	/* Nothing to hash is an error, not an empty output. */
	if (fmt == DUMP_FRAMEMD5 && frames == 0 && packets > 0)
		return fail("stream %s carries packets, not decoded frames: "
			    "--framemd5 needs a stream opened with --decode",
			    ref);
	if (ret == SHMDEMUX_EOF)
		return 0;
	if (ret == -EAGAIN)
		return fail("stream %s: no packet within %d ms", ref, timeout);
	if (!shmdemux_is_end(ret))
		return fail("stream %s: %s", ref, shmdemux_strerror(ret));
	describe_end(&st, why, sizeof(why));
	return fail("stream %s failed: %s", ref, why);
}

static void
dump_help(FILE *f)
{
	fprintf(f,
"usage: shmdemux dump STREAM [--from start|keyframe|live]\n"
"                    [--csv|--json|--framemd5]\n"
"                    [--timeout MS]\n"
"Attach to STREAM (an id or a name) as a reader and print its packets until\n"
"the stream ends. Exit 0 when it ended cleanly (EOF); after a failure end\n"
"every packet is printed first, then one line on stderr names the cause\n"
"and the exit status is 1.\n"
"  --from start     from the oldest packet still in the ring (default)\n"
"  --from keyframe  from the newest keyframe\n"
"  --from live      from the next packet published\n"
"  --csv            one line per packet, as ffprobe prints it:\n"
"                   stream_index,pts,dts,duration,size,flags,MD5:<md5>\n"
"                   (a decoded frame: frame,video|audio,track,pts,\n"
"                   format,md5)\n"
"  --json           one JSON object per line: seq, track, pts, dts,\n"
"                   duration, size, pos, flags, md5, side_data (a\n"
"                   decoded frame: seq, track, frame, pts, format, md5)\n"
"  --framemd5       decoded frames only (open --decode), one line each:\n"
"                   track,pts,md5 with the md5 ffmpeg -f framemd5 prints;\n"
"                   video as rawvideo, audio in the packed form of the\n"
"                   decoder's sample format (fltp hashes as ffmpeg's\n"
"                   -c:a pcm_f32le, s16p as pcm_s16le, ...); a stream of\n"
"                   packets is an error\n"
"  (default)        one human-readable line per packet or frame\n"
"  --timeout MS     fail if no packet arrives for MS ms (default: wait)\n"
"  --stats          at the end, one line on stderr: packets and frames\n"
"                   published, video frames read in place from the frame\n"
"                   pool and copied, decoder errors\n"
"  --help           this text\n");
}

static int
cmd_dump(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "from", required_argument, NULL, 'f' },
		{ "csv", no_argument, NULL, 'c' },
		{ "json", no_argument, NULL, 'j' },
		{ "framemd5", no_argument, NULL, 'M' },
		{ "timeout", required_argument, NULL, 't' },
		{ "stats", no_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	shmdemux_conn *conn = NULL;
	shmdemux_stream *s = NULL;
	enum dump_fmt fmt = DUMP_HUMAN;
	int start = SHMDEMUX_START_OLDEST, timeout = -1, stats = 0, c, ret;
	const char *name;
	uint32_t id;

	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case 'h':
			dump_help(stdout);
			return 0;
		case 'c':
			fmt = DUMP_CSV;
			break;
		case 'j':
			fmt = DUMP_JSON;
			break;
		case 'M':
			fmt = DUMP_FRAMEMD5;
			break;
		case 'S':
			stats = 1;
			break;
		case 'f':
			if ((ret = parse_from("dump ", optarg, &start)) != 0)
				return ret;
			break;
		case 't':
			if ((ret = parse_timeout("dump ", optarg,
						 &timeout)) != 0)
				return ret;
			break;
		default:
			return unknown_option("dump ", argv);
		}
	}
	if ((ret = stream_operand("dump ", argc, argv, &id, &name,
				  &conn)) != 0)
		return ret;
	/* The output can be large: full buffering, big buffer. */
	setvbuf(stdout, NULL, _IOFBF, 1 << 20);
	c = shmdemux_attach(conn, id, name, start, 0, &s);
	if (c < 0)
		ret = request_failed(conn, argv[optind], c);
	else
		ret = dump_stream(s, argv[optind], fmt, timeout, stats);
	shmdemux_detach(&s);
	shmdemux_disconnect(&conn);
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
