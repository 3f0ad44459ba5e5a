/*
 * cli_dump.c - `shmdemux dump`: a stream's packets and decoded frames
 * printed until its end, one line each, in one of four formats: human,
 * CSV (ffprobe's packet line, common to the tests), JSON, framemd5
 * (ffmpeg's per-frame hashes, decoded streams only).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavutil/imgutils.h>
#include <libavutil/md5.h>
#include <libavutil/pixdesc.h>
#include <libavutil/samplefmt.h>

#include "cli.h"
#include "pktcsv.h"
#include "shmdemux.h"
#include "strescape.h"

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

int
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
