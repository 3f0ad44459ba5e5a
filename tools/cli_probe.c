/*
 * cli_probe.c - `shmdemux probe`: a stream's tracks, as a table or as
 * JSON, once the worker has probed its input.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavutil/channel_layout.h>
#include <libavutil/pixdesc.h>
#include <libavutil/samplefmt.h>

#include "cli.h"
#include "shmdemux.h"
#include "strescape.h"

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

int
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
