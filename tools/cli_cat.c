/*
 * cli_cat.c - `shmdemux cat`: remux a stream's packets with libavformat's
 * muxers, to stdout, a file or an FFmpeg output URL, so that ffmpeg,
 * ffplay, GStreamer or a recorder on another host can take the stream.
 *
 * Everything handed to the muxer came from a worker that may be
 * compromised: codec parameters go through shmdemux_track_to_codecpar()
 * and packets through shmdemux_packet_to_avpacket() (the library's checks:
 * codec ids and types, formats, side data, flags), and on top of that this
 * file drops what a muxer would refuse or misread: packets of tracks it
 * did not map, timestamps out of order (a dts not after the previous one,
 * a pts before its dts), and anything before a track's first keyframe (a
 * stream joined mid-way starts decodable).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/log.h>
#include <libavutil/mathematics.h>

#include "cli.h"

#define CAT_MAX_TRACKS 64 /* the ring's track table limit */

struct cat_track {
	int out;          /* output stream index, -1 not written */
	int tb_num, tb_den;
	int keyed;        /* a keyframe was written (or seen) */
	int64_t last_dts; /* in the track's time base, SHMDEMUX_NOPTS none */
};

struct cat {
	const char *ref;      /* STREAM as given */
	const char *url;      /* -o, or NULL for stdout */
	const char *format;   /* --format, or NULL to guess */
	const char *tracks;   /* --tracks, or NULL for every track */
	AVFormatContext *oc;
	struct cat_track t[CAT_MAX_TRACKS];
	int ntracks;
	uint64_t written, dropped_ts, dropped_key, frames, overruns;
	int reader_gone;      /* stdout's reader closed the pipe */
};

static void
cat_help(FILE *f)
{
	fprintf(f,
"usage: shmdemux cat STREAM [--format FMT] [-o FILE|URL] [--tracks LIST]\n"
"                   [--from start|keyframe|live] [--timeout MS]\n"
"Attach to STREAM (an id or a name) as a reader and remux its packets,\n"
"unchanged, into a container written to standard output (default), a file\n"
"or an FFmpeg output URL, until the stream ends:\n"
"  shmdemux cat cam1 | ffplay -\n"
"  shmdemux cat cam1 | ffmpeg -i - -c copy out.mp4\n"
"  shmdemux cat cam1 --format mpegts -o udp://192.0.2.7:5000\n"
"  --format FMT     an FFmpeg muxer: nut (default on standard output),\n"
"                   matroska, mpegts, ...; default for -o: guessed from\n"
"                   the name (.mkv, .ts, .nut, ...), mpegts for udp://,\n"
"                   rtp_mpegts for rtp://, mpegts for srt://\n"
"  -o FILE|URL      write there instead of standard output (a URL's\n"
"                   protocol must be in the linked FFmpeg)\n"
"  --tracks LIST    comma-separated track indices (see 'shmdemux probe');\n"
"                   default: every track the muxer can store (others are\n"
"                   named on stderr and left out)\n"
"  --from start     from the oldest packet still in the ring (default)\n"
"  --from keyframe  from the newest keyframe\n"
"  --from live      from the next packet published\n"
"  --timeout MS     fail if no packet arrives for MS ms (default: wait)\n"
"  --help           this text\n"
"Each track starts at its first keyframe. Packets a muxer would refuse\n"
"(timestamps out of order) are dropped and counted on stderr; decoded\n"
"frames (open --decode) are not written: cat copies packets. Exit 0 when\n"
"the stream ended cleanly (EOF) or the reader of standard output went\n"
"away; 1, with one line on stderr, when the stream failed or the output\n"
"could not be written.\n");
}

/* fail()'s line, for the helpers that return -1. */
#define cat_fail(...) (fail(__VA_ARGS__), -1)

static const char *
averr(int err, char *buf, size_t cap)
{
	av_strerror(err, buf, cap);
	return buf;
}

/* The muxer: --format, else guessed from the output name. */
static const char *
default_format(const char *url)
{
	if (url == NULL)
		return "nut";
	if (strncmp(url, "udp://", 6) == 0 || strncmp(url, "srt://", 6) == 0)
		return "mpegts";
	if (strncmp(url, "rtp://", 6) == 0)
		return "rtp_mpegts";
	return NULL;
}

/* --tracks "0,2": marks wanted[] and returns 0, or -1 when malformed. */
static int
parse_tracks(const char *list, int wanted[CAT_MAX_TRACKS])
{
	const char *p = list;

	while (*p != '\0') {
		char *end;
		long v;

		if (*p < '0' || *p > '9')
			return -1;
		v = strtol(p, &end, 10);
		if (v < 0 || v >= CAT_MAX_TRACKS)
			return -1;
		wanted[v] = 1;
		p = end;
		if (*p == ',' && p[1] != '\0')
			p++;
		else if (*p != '\0')
			return -1;
	}
	return 0;
}

/* One output stream for track i, or a reason it cannot have one. Returns
 * 1 added, 0 left out (named on stderr), -1 failed (said why). */
static int
add_track(struct cat *c, shmdemux_stream *s, int i, int asked)
{
	struct shmdemux_track tr;
	AVCodecParameters *par;
	AVStream *st;
	int ret;

	if (shmdemux_get_track(s, i, &tr) < 0)
		return cat_fail("stream %s: track %d: no such track", c->ref,
				i);
	if (tr.tb_num <= 0 || tr.tb_den <= 0) {
		if (asked)
			return cat_fail("stream %s: track %d has no valid time "
				    "base", c->ref, i);
		return 0;
	}
	if (avformat_query_codec(c->oc->oformat, tr.codec_id,
				 FF_COMPLIANCE_NORMAL) == 0) {
		if (asked)
			return cat_fail("stream %s: track %d (%s): the %s muxer "
				    "cannot store it", c->ref, i,
				    tr.codec_name, c->oc->oformat->name);
		fprintf(stderr, "shmdemux: stream %s: track %d (%s) left "
			"out: the %s muxer cannot store it\n", c->ref, i,
			tr.codec_name, c->oc->oformat->name);
		return 0;
	}
	st = avformat_new_stream(c->oc, NULL);
	if (st == NULL)
		return cat_fail("out of memory");
	par = st->codecpar;
	ret = shmdemux_track_to_codecpar(s, i, par);
	if (ret < 0)
		return cat_fail("stream %s: track %d: %s", c->ref, i,
			    shmdemux_strerror(ret));
	/* The source container's tag means nothing to another container. */
	par->codec_tag = 0;
	st->time_base = (AVRational){ tr.tb_num, tr.tb_den };
	st->disposition = tr.disposition;
	if (tr.language[0] != '\0')
		av_dict_set(&st->metadata, "language", tr.language, 0);
	if (tr.title[0] != '\0')
		av_dict_set(&st->metadata, "title", tr.title, 0);
	c->t[i].out = st->index;
	c->t[i].tb_num = tr.tb_num;
	c->t[i].tb_den = tr.tb_den;
	return 1;
}

static int
setup_output(struct cat *c, shmdemux_stream *s)
{
	int wanted[CAT_MAX_TRACKS] = { 0 };
	const char *fmt = c->format ? c->format : default_format(c->url);
	const char *url = c->url ? c->url : "pipe:1";
	char e[AV_ERROR_MAX_STRING_SIZE];
	int n = shmdemux_track_count(s), added = 0, ret;

	if (c->tracks != NULL && parse_tracks(c->tracks, wanted) < 0)
		return usage_error("cat ", "--tracks: comma-separated track "
				   "indices");
	ret = avformat_alloc_output_context2(&c->oc, NULL, fmt, url);
	if (ret < 0 || c->oc == NULL)
		return fail("no muxer %s%s%s: %s", fmt ? "named " : "for ",
			    fmt ? fmt : url, fmt ? "" : " (use --format)",
			    averr(ret, e, sizeof(e)));
	c->ntracks = n < CAT_MAX_TRACKS ? n : CAT_MAX_TRACKS;
	for (int i = 0; i < CAT_MAX_TRACKS; i++) {
		c->t[i].out = -1;
		c->t[i].last_dts = SHMDEMUX_NOPTS;
		if (wanted[i] && i >= c->ntracks)
			return fail("stream %s: no track %d (it has %d)",
				    c->ref, i, n);
	}
	for (int i = 0; i < c->ntracks; i++) {
		if (c->tracks != NULL && !wanted[i])
			continue;
		ret = add_track(c, s, i, c->tracks != NULL);
		if (ret < 0)
			return EXIT_FAILURE;
		added += ret;
	}
	if (added == 0)
		return fail("stream %s: no track the %s muxer can store",
			    c->ref, c->oc->oformat->name);
	if (!(c->oc->oformat->flags & AVFMT_NOFILE)) {
		ret = avio_open2(&c->oc->pb, url, AVIO_FLAG_WRITE, NULL, NULL);
		if (ret < 0)
			return fail("cannot open %s for writing: %s",
				    c->url ? c->url : "standard output",
				    averr(ret, e, sizeof(e)));
	}
	ret = avformat_write_header(c->oc, NULL);
	if (ret < 0)
		return fail("the %s muxer refused the stream's tracks: %s",
			    c->oc->oformat->name, averr(ret, e, sizeof(e)));
	return 0;
}

/* Whether a packet of track k may go to the muxer: a keyframe first, then
 * strictly increasing dts and no pts before its dts. */
static int
packet_ok(struct cat *c, struct cat_track *k, const struct shmdemux_packet *p)
{
	if (!k->keyed) {
		if (!(p->flags & SHMDEMUX_PKT_KEY)) {
			c->dropped_key++;
			return 0;
		}
		k->keyed = 1;
	}
	if (p->dts != SHMDEMUX_NOPTS) {
		if ((k->last_dts != SHMDEMUX_NOPTS && p->dts <= k->last_dts) ||
		    (p->pts != SHMDEMUX_NOPTS && p->pts < p->dts)) {
			c->dropped_ts++;
			return 0;
		}
		k->last_dts = p->dts;
	}
	return 1;
}

/* Returns 0, or a negative AVERROR from the muxer. */
static int
write_packet(struct cat *c, const struct shmdemux_packet *p, AVPacket *pkt)
{
	struct cat_track *k;
	AVStream *st;
	int ret;

	if (p->track < 0 || p->track >= c->ntracks || c->t[p->track].out < 0)
		return 0;
	k = &c->t[p->track];
	if (!packet_ok(c, k, p))
		return 0;
	ret = shmdemux_packet_to_avpacket(p, pkt);
	if (ret < 0)
		return ret;
	st = c->oc->streams[k->out];
	pkt->stream_index = k->out;
	pkt->pos = -1;
	av_packet_rescale_ts(pkt, (AVRational){ k->tb_num, k->tb_den },
			     st->time_base);
	/* Takes the packet's reference, leaves pkt blank. */
	ret = av_interleaved_write_frame(c->oc, pkt);
	if (ret >= 0)
		c->written++;
	return ret;
}

/* Read until the end. Returns the shmdemux_read() code that ended it, or
 * 1 when the output failed (said so) or its reader went away. */
static int
copy_packets(struct cat *c, shmdemux_stream *s, int timeout)
{
	struct shmdemux_packet p;
	char e[AV_ERROR_MAX_STRING_SIZE];
	AVPacket *pkt = av_packet_alloc();
	int ret, wret;

	if (pkt == NULL) {
		fail("out of memory");
		return 1;
	}
	for (;;) {
		/* Flush the output before waiting, so that a live stream
		 * reaches its reader now and bulk output in big writes. */
		ret = shmdemux_read(s, &p, 0);
		if (ret == -EAGAIN && timeout != 0) {
			if (c->oc->pb != NULL)
				avio_flush(c->oc->pb);
			ret = shmdemux_read(s, &p, timeout);
		}
		if (ret == SHMDEMUX_EOVERRUN) {
			c->overruns++;
			continue;
		}
		if (ret == SHMDEMUX_FRAME) {
			c->frames++;
			continue;
		}
		if (ret < 0)
			break;
		wret = write_packet(c, &p, pkt);
		if (wret == AVERROR(EPIPE) && c->url == NULL) {
			c->reader_gone = 1;
			ret = 1;
			break;
		}
		if (wret < 0) {
			fail("stream %s: writing %s: %s", c->ref,
			     c->url ? c->url : "standard output",
			     averr(wret, e, sizeof(e)));
			ret = 1;
			break;
		}
	}
	av_packet_free(&pkt);
	return ret;
}

static void
report_drops(const struct cat *c)
{
	if (c->dropped_key > 0)
		fprintf(stderr, "shmdemux: stream %s: %" PRIu64 " packets "
			"before their track's first keyframe left out\n",
			c->ref, c->dropped_key);
	if (c->dropped_ts > 0)
		fprintf(stderr, "shmdemux: stream %s: %" PRIu64 " packets "
			"with timestamps out of order dropped\n", c->ref,
			c->dropped_ts);
	if (c->frames > 0)
		fprintf(stderr, "shmdemux: stream %s: %" PRIu64 " decoded "
			"frames not written (cat copies packets)\n", c->ref,
			c->frames);
	if (c->overruns > 0)
		fprintf(stderr, "shmdemux: stream %s: %" PRIu64 " overruns "
			"(packets lost)\n", c->ref, c->overruns);
}

static int
cat_stream(struct cat *c, shmdemux_stream *s, int timeout)
{
	struct shmdemux_status st;
	char why[256], e[AV_ERROR_MAX_STRING_SIZE];
	int ret, status;

	ret = shmdemux_wait_running(s, timeout);
	if (ret == -ETIMEDOUT)
		return fail("stream %s: not running within %d ms", c->ref,
			    timeout);
	if (ret < 0)
		return fail("stream %s: %s", c->ref, shmdemux_strerror(ret));
	if (shmdemux_track_count(s) == 0) {
		shmdemux_status(s, &st);
		describe_end(&st, why, sizeof(why));
		return fail("stream %s ended before it had tracks: %s", c->ref,
			    why);
	}
	status = setup_output(c, s);
	if (status != 0)
		return status;
	ret = copy_packets(c, s, timeout);
	if (ret == 1 && !c->reader_gone)
		return EXIT_FAILURE;
	if (!c->reader_gone) {
		status = av_write_trailer(c->oc);
		if (status < 0 && !(status == AVERROR(EPIPE) && c->url == NULL))
			return fail("stream %s: finishing %s: %s", c->ref,
				    c->url ? c->url : "standard output",
				    averr(status, e, sizeof(e)));
	}
	report_drops(c);
	if (c->reader_gone || ret == SHMDEMUX_EOF)
		return 0;
	if (ret == -EAGAIN)
		return fail("stream %s: no packet within %d ms", c->ref,
			    timeout);
	if (!shmdemux_is_end(ret))
		return fail("stream %s: %s", c->ref, shmdemux_strerror(ret));
	shmdemux_status(s, &st);
	describe_end(&st, why, sizeof(why));
	return fail("stream %s failed: %s", c->ref, why);
}

static void
cat_free(struct cat *c)
{
	if (c->oc == NULL)
		return;
	if (!(c->oc->oformat->flags & AVFMT_NOFILE))
		avio_closep(&c->oc->pb);
	avformat_free_context(c->oc);
	c->oc = NULL;
}

int
cmd_cat(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "format", required_argument, NULL, 'f' },
		{ "output", required_argument, NULL, 'o' },
		{ "tracks", required_argument, NULL, 'T' },
		{ "from", required_argument, NULL, 'F' },
		{ "timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct cat c = { 0 };
	shmdemux_conn *conn = NULL;
	shmdemux_stream *s = NULL;
	int start = SHMDEMUX_START_OLDEST, timeout = -1, opt, ret;
	const char *name;
	uint32_t id;

	while ((opt = getopt_long(argc, argv, "ho:", lo, NULL)) != -1) {
		switch (opt) {
		case 'h':
			cat_help(stdout);
			return 0;
		case 'f':
			c.format = optarg;
			break;
		case 'o':
			c.url = optarg;
			break;
		case 'T':
			c.tracks = optarg;
			break;
		case 'F':
			if ((ret = parse_from("cat ", optarg, &start)) != 0)
				return ret;
			break;
		case 't':
			if ((ret = parse_timeout("cat ", optarg,
						 &timeout)) != 0)
				return ret;
			break;
		default:
			return unknown_option("cat ", argv);
		}
	}
	if (c.format != NULL && av_guess_format(c.format, NULL, NULL) == NULL)
		return usage_error("cat ", "--format: not a muxer of the "
				   "linked FFmpeg (ffmpeg -muxers lists them)");
	if (c.url != NULL && c.url[0] == '\0')
		return usage_error("cat ", "-o: empty name");
	if ((ret = stream_operand("cat ", argc, argv, &id, &name,
				  &conn)) != 0)
		return ret;
	c.ref = argv[optind];
	/* The muxers' warnings (unset dts of B-frames in a copy, ...) are
	 * not the user's business; their errors come back as codes. */
	av_log_set_level(AV_LOG_ERROR);
	/* A reader of standard output that goes away is an ordinary end. */
	signal(SIGPIPE, SIG_IGN);
	if (c.url != NULL && strstr(c.url, "://") != NULL)
		avformat_network_init();
	opt = shmdemux_attach(conn, id, name, start, 0, &s);
	if (opt < 0)
		ret = request_failed(conn, c.ref, opt);
	else
		ret = cat_stream(&c, s, timeout);
	cat_free(&c);
	shmdemux_detach(&s);
	shmdemux_disconnect(&conn);
	if (c.url != NULL && strstr(c.url, "://") != NULL)
		avformat_network_deinit();
	return ret;
}
