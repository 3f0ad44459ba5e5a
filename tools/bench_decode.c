/*
 * bench_decode.c - `shmdemux-bench decode FILE`: the same bytes decoded
 *   (a) by an in-process libavformat + libavcodec loop reading a pipe, and
 *   (b) by the worker (--decode all), frames read from the ring by N
 *       consumer processes,
 * with the same decoder thread count, both touching every byte of every
 * frame plane; runs interleaved, medians reported.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/imgutils.h>

#include "bench.h"
#include "strescape.h"
#include "shmdemux.h"

struct dec_conf {
	const char *file;
	const char *socket;
	int consumers;
	int runs;
	int threads;
	int json;
};

/* ---- (a) in-process ---- */

/* Every byte of the frame's planes, as the worker copies them. */
static uint64_t
touch_frame(const AVFrame *f, enum AVMediaType type, uint64_t *bytes)
{
	uint64_t s = 0;

	if (type == AVMEDIA_TYPE_VIDEO) {
		size_t sizes[4];
		ptrdiff_t ls[4];

		for (int i = 0; i < 4; i++)
			ls[i] = f->linesize[i];
		if (av_image_fill_plane_sizes(sizes, f->format, f->height,
					      ls) < 0)
			return 0;
		for (int i = 0; i < 4 && sizes[i] > 0; i++) {
			s += touch(f->data[i], sizes[i]);
			*bytes += sizes[i];
		}
		return s;
	}
	int planar = av_sample_fmt_is_planar(f->format);
	int ch = f->ch_layout.nb_channels;
	size_t n = (size_t)f->nb_samples *
		   (size_t)av_get_bytes_per_sample(f->format) *
		   (size_t)(planar ? 1 : ch);

	for (int i = 0; i < (planar ? ch : 1); i++) {
		s += touch(f->extended_data[i], n);
		*bytes += n;
	}
	return s;
}

static int
open_decoders(AVFormatContext *fmt, AVCodecContext **ctx, int threads)
{
	for (unsigned i = 0; i < fmt->nb_streams && i < 64; i++) {
		const AVCodecParameters *par = fmt->streams[i]->codecpar;
		const AVCodec *codec;

		if (par->codec_type != AVMEDIA_TYPE_VIDEO &&
		    par->codec_type != AVMEDIA_TYPE_AUDIO)
			continue;
		if ((codec = avcodec_find_decoder(par->codec_id)) == NULL ||
		    (ctx[i] = avcodec_alloc_context3(codec)) == NULL ||
		    avcodec_parameters_to_context(ctx[i], par) < 0)
			return -1;
		ctx[i]->pkt_timebase = fmt->streams[i]->time_base;
		ctx[i]->thread_count = threads;
		if (avcodec_open2(ctx[i], codec, NULL) < 0)
			return -1;
	}
	return 0;
}

static void
drain(AVCodecContext *ctx, AVFrame *f, struct bench_result *r,
      volatile uint64_t *sink)
{
	while (avcodec_receive_frame(ctx, f) == 0) {
		*sink += touch_frame(f, ctx->codec_type, &r->bytes);
		r->count++;
		av_frame_unref(f);
	}
}

static void
decode_all(AVFormatContext *fmt, AVCodecContext **ctx, struct bench_result *r)
{
	AVPacket *pkt = av_packet_alloc();
	AVFrame *f = av_frame_alloc();
	volatile uint64_t sink = 0;

	if (pkt == NULL || f == NULL)
		goto out;
	while (av_read_frame(fmt, pkt) >= 0) {
		AVCodecContext *c = pkt->stream_index < 64 ?
				    ctx[pkt->stream_index] : NULL;

		if (c != NULL) {
			while (avcodec_send_packet(c, pkt) == AVERROR(EAGAIN))
				drain(c, f, r, &sink);
			drain(c, f, r, &sink);
		}
		av_packet_unref(pkt);
	}
	for (int i = 0; i < 64; i++)
		if (ctx[i] != NULL && avcodec_send_packet(ctx[i], NULL) >= 0)
			drain(ctx[i], f, r, &sink);
out:
	av_packet_free(&pkt);
	av_frame_free(&f);
	(void)sink;
}

static int
run_inproc(const void *conf, struct bench_result *r)
{
	const struct dec_conf *c = conf;
	AVCodecContext *ctx[64] = { NULL };
	struct bench_input in;
	int rc = -1;
	double t0;

	t0 = now_s();
	if (bench_input_open(&in, NULL) < 0 ||
	    open_decoders(in.fmt, ctx, c->threads) < 0)
		goto out;
	r->count = r->bytes = 0;
	decode_all(in.fmt, ctx, r);
	r->secs = now_s() - t0;
	rc = 0;
out:
	for (int i = 0; i < 64; i++)
		avcodec_free_context(&ctx[i]);
	if (bench_input_close(&in) < 0)
		rc = -1;
	return rc;
}

/* ---- (b) through the broker ---- */

static int
consume_frame(shmdemux_stream *s, int rc, const struct shmdemux_packet *pkt,
	      struct bench_result *r, volatile uint64_t *sink)
{
	struct shmdemux_frame f;

	(void)pkt;
	if (rc != SHMDEMUX_FRAME || shmdemux_get_frame(s, &f) != 0)
		return rc;
	for (int i = 0; i < f.nb_planes; i++) {
		*sink += touch(f.data[i], f.plane_size[i]);
		r->bytes += f.plane_size[i];
	}
	r->count++;
	return 0;
}

static int
run_broker(const void *ctx, shmdemux_conn *conn, struct bench_result *r)
{
	const struct dec_conf *c = ctx;
	struct shmdemux_open_opts o;
	struct bench_broker_conf bc = {
		.socket = c->socket,
		.consumers = c->consumers,
		.consume = consume_frame,
		.opts = &o,
	};

	shmdemux_open_opts_init(&o);
	o.noseek = 1;
	o.decode = SHMDEMUX_DECODE_VIDEO | SHMDEMUX_DECODE_AUDIO;
	o.decode_threads = (unsigned)c->threads;
	o.label = "bench-decode";
	return bench_broker_run(conn, &bc, r);
}

static void
report(const struct dec_conf *c, const struct bench_medians *m)
{
	double af = m->a_rate, bf = m->b_rate, am = m->a_mbs, bm = m->b_mbs;

	if (c->json) {
		printf("{\"file\":");
		str_json(stdout, c->file);
		printf(",\"consumers\":%d,\"threads\":%d,\"runs\":%d,"
		       "\"inproc_frames_per_s\":%.1f,"
		       "\"broker_frames_per_s\":%.1f,"
		       "\"inproc_mb_per_s\":%.1f,\"broker_mb_per_s\":%.1f,"
		       "\"ratio\":%.3f,\"pair_ratio\":%.3f}\n", c->consumers,
		       c->threads, c->runs, af, bf, am, bm, bf / af,
		       m->pair_ratio);
		return;
	}
	printf("%-12s %14s %10s\n%-12s %14.1f %10.1f\n%-12s %14.1f %10.1f\n"
	       "ratio b/a: %.3f (%d consumer%s, %d decoder threads (0 = "
	       "auto), median of %d runs)\nmedian of the runs' own b/a: "
	       "%.3f\n", "", "frames/s", "MB/s", "in-process", af, am,
	       "broker", bf, bm, bf / af, c->consumers,
	       c->consumers > 1 ? "s" : "", c->threads, c->runs,
	       m->pair_ratio);
}

static void
usage(FILE *f)
{
	fprintf(f,
"usage: shmdemux-bench decode FILE [--consumers N] [--threads N] [--runs N]\n"
"                             [--json] [--socket PATH]\n"
"Decode every audio and video track of FILE (a) in this process and\n"
"(b) in the broker's worker (--decode all), read by N consumer processes\n"
"(default 1); both touch every frame byte and use the same decoder thread\n"
"count (default 0: libavcodec's choice for the machine).\n");
}

static int
parse(int argc, char **argv, struct dec_conf *c)
{
	static const struct option lo[] = {
		{ "consumers", required_argument, NULL, 'c' },
		{ "threads", required_argument, NULL, 't' },
		{ "runs", required_argument, NULL, 'r' },
		{ "json", no_argument, NULL, 'j' },
		{ "socket", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int opt;

	while ((opt = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (opt) {
		case 'c': c->consumers = atoi(optarg); break;
		case 't': c->threads = atoi(optarg); break;
		case 'r': c->runs = atoi(optarg); break;
		case 'j': c->json = 1; break;
		case 's': c->socket = optarg; break;
		case 'h': usage(stdout); exit(0);
		default: return -1;
		}
	}
	if (optind + 1 != argc || c->consumers < 1 ||
	    c->consumers > BENCH_MAX_CONSUMERS || c->runs < 1 || c->runs > 64 ||
	    c->threads < 0 || c->threads > 1024)
		return -1;
	c->file = argv[optind];
	return 0;
}

int
bench_decode(int argc, char **argv)
{
	struct dec_conf c = { .consumers = 1, .runs = 3 };
	struct bench_arms arms = {
		.unit = "frames", .what = "decode",
		.inproc = run_inproc, .broker = run_broker, .ctx = &c,
	};
	struct bench_medians m;

	if (parse(argc, argv, &c) < 0) {
		usage(stderr);
		return 2;
	}
	if (bench_compare(&arms, c.file, &c.socket, c.runs, c.json, &m) < 0)
		return 1;
	report(&c, &m);
	return 0;
}
