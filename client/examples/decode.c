/*
 * decode.c - example consumer: attach to a stream, build a decoder per
 * video/audio track from the ring's track table, decode every packet read
 * from the ring, and print one line per decoded frame:
 *
 *   TRACK,PTS,MD5
 *
 * PTS is the frame's best-effort timestamp in the track's time base (NOPTS
 * if unknown). MD5 is the hash `ffmpeg -f framemd5` prints when the frame
 * is muxed raw in the decoder's own format: video planes packed without
 * padding (rawvideo), audio samples interleaved (the packed form of the
 * decoder's sample format, e.g. fltp -> flt, s16p -> s16).
 *
 * usage: shmdemux-example-decode [--socket PATH] STREAM [--track N]...
 * Exit status: 0 when the stream ended cleanly, 1 on a failure (one line on
 * stderr), 2 on a usage error.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavutil/imgutils.h>
#include <libavutil/md5.h>
#include <libavutil/samplefmt.h>

#include "shmdemux.h"

#define MAX_TRACKS 64

struct dec {
	AVCodecContext *ctx;
	int wanted;
	int failed; /* no decoder for it: its packets are skipped */
};

static struct dec decs[MAX_TRACKS];
static int only_selected;
static AVFrame *frame;
static uint8_t *scratch;
static size_t scratch_size;

static uint8_t *
scratch_get(size_t n)
{
	if (n > scratch_size) {
		uint8_t *p = realloc(scratch, n);

		if (p == NULL)
			return NULL;
		scratch = p;
		scratch_size = n;
	}
	return scratch;
}

/* The frame's bytes as rawvideo / packed PCM would carry them. */
static int
frame_bytes(const AVFrame *f, enum AVMediaType type, uint8_t **out, size_t *n)
{
	if (type == AVMEDIA_TYPE_VIDEO) {
		int sz = av_image_get_buffer_size(f->format, f->width,
						  f->height, 1);
		if (sz < 0 || (*out = scratch_get((size_t)sz)) == NULL)
			return sz < 0 ? sz : AVERROR(ENOMEM);
		*n = (size_t)sz;
		return av_image_copy_to_buffer(*out, sz,
		    (const uint8_t *const *)f->data, f->linesize, f->format,
		    f->width, f->height, 1);
	}
	int bps = av_get_bytes_per_sample(f->format);
	int ch = f->ch_layout.nb_channels;
	size_t total = (size_t)bps * (size_t)ch * (size_t)f->nb_samples;

	if (bps <= 0 || ch <= 0 || (*out = scratch_get(total)) == NULL)
		return AVERROR(EINVAL);
	*n = total;
	if (!av_sample_fmt_is_planar(f->format)) {
		memcpy(*out, f->extended_data[0], total);
		return 0;
	}
	for (int s = 0; s < f->nb_samples; s++)
		for (int c = 0; c < ch; c++)
			memcpy(*out + ((size_t)s * ch + c) * bps,
			       f->extended_data[c] + (size_t)s * bps, bps);
	return 0;
}

static int
print_frame(int track, const AVFrame *f, enum AVMediaType type)
{
	uint8_t digest[16], *buf;
	size_t n;
	int ret = frame_bytes(f, type, &buf, &n);

	if (ret < 0)
		return ret;
	av_md5_sum(digest, buf, n);
	printf("%d,", track);
	if (f->best_effort_timestamp == AV_NOPTS_VALUE)
		printf("NOPTS,");
	else
		printf("%" PRId64 ",", f->best_effort_timestamp);
	for (int i = 0; i < 16; i++)
		printf("%02x", digest[i]);
	putchar('\n');
	return 0;
}

static int
drain(int track)
{
	AVCodecContext *ctx = decs[track].ctx;
	int ret;

	for (;;) {
		ret = avcodec_receive_frame(ctx, frame);
		if (ret == AVERROR(EAGAIN) || ret == AVERROR_EOF)
			return 0;
		if (ret < 0)
			return 0; /* a broken frame is skipped, as ffmpeg does */
		ret = print_frame(track, frame, ctx->codec_type);
		av_frame_unref(frame);
		if (ret < 0)
			return ret;
	}
}

static int
open_decoder(shmdemux_stream *s, int track)
{
	struct dec *d = &decs[track];
	AVCodecParameters *par = avcodec_parameters_alloc();
	const AVCodec *codec;
	int num, den, ret = AVERROR(ENOMEM);

	d->failed = 1;
	if (par == NULL)
		goto out;
	ret = shmdemux_track_to_codecpar(s, track, par);
	if (ret == -ENOTSUP) {
		/* a valid track that carries nothing to decode (codec none,
		 * a libavformat pseudo-codec): skipped like one we have no
		 * decoder for. A refused track (SHMDEMUX_ECORRUPT) is an
		 * error: its worker wrote values no demuxer produces. */
		fprintf(stderr, "shmdemux-example-decode: track %d: not a "
			"bitstream to decode\n", track);
		ret = 0;
		goto out;
	}
	if (ret < 0)
		goto out;
	if (par->codec_type != AVMEDIA_TYPE_VIDEO &&
	    par->codec_type != AVMEDIA_TYPE_AUDIO) {
		ret = 0;
		goto out;
	}
	codec = avcodec_find_decoder(par->codec_id);
	if (codec == NULL) {
		fprintf(stderr, "shmdemux-example-decode: track %d: no decoder "
			"for %s\n", track, avcodec_get_name(par->codec_id));
		ret = 0;
		goto out;
	}
	d->ctx = avcodec_alloc_context3(codec);
	if (d->ctx == NULL ||
	    (ret = avcodec_parameters_to_context(d->ctx, par)) < 0)
		goto out;
	if (shmdemux_track_time_base(s, track, &num, &den) == 0)
		d->ctx->pkt_timebase = (AVRational){ num, den };
	ret = avcodec_open2(d->ctx, codec, NULL);
	if (ret < 0)
		goto out;
	d->failed = 0;
out:
	avcodec_parameters_free(&par);
	if (d->failed)
		avcodec_free_context(&d->ctx);
	return ret;
}

static int
decode_packet(shmdemux_stream *s, const struct shmdemux_packet *p,
	      AVPacket *pkt)
{
	struct dec *d;
	int ret;

	if (p->track >= MAX_TRACKS)
		return 0;
	d = &decs[p->track];
	if (only_selected && !d->wanted)
		return 0;
	if (d->ctx == NULL && !d->failed) {
		ret = open_decoder(s, p->track);
		if (ret < 0)
			return ret;
	}
	if (d->ctx == NULL)
		return 0;
	ret = shmdemux_packet_to_avpacket(p, pkt);
	if (ret < 0)
		return ret;
	ret = avcodec_send_packet(d->ctx, pkt);
	av_packet_unref(pkt);
	/* Invalid data is skipped like ffmpeg does; the next packet may
	 * decode again. */
	if (ret < 0 && ret != AVERROR_INVALIDDATA)
		return ret;
	return drain(p->track);
}

static int
flush_all(void)
{
	for (int i = 0; i < MAX_TRACKS; i++) {
		if (decs[i].ctx == NULL)
			continue;
		avcodec_send_packet(decs[i].ctx, NULL);
		if (drain(i) < 0)
			return -1;
	}
	return 0;
}

static int
run(shmdemux_stream *s)
{
	struct shmdemux_packet p;
	AVPacket *pkt = av_packet_alloc();
	int ret;

	if (pkt == NULL)
		return AVERROR(ENOMEM);
	while ((ret = shmdemux_read(s, &p, -1)) >= 0) {
		if (ret == 0 && (ret = decode_packet(s, &p, pkt)) < 0)
			break;
	}
	av_packet_free(&pkt);
	if (ret == SHMDEMUX_EOF && flush_all() == 0)
		return 0;
	return ret;
}

static void
usage(FILE *f)
{
	fprintf(f,
"usage: shmdemux-example-decode [--socket PATH] STREAM [--track N]...\n"
"Decode a stream's video and audio tracks from its ring and print one line\n"
"per frame: TRACK,PTS,MD5 (MD5 of the raw frame, as ffmpeg -f framemd5).\n"
"  --socket PATH  broker socket (default $SHMDEMUX_SOCKET or per-user)\n"
"  --track N      decode only track N (repeatable); default: all\n"
"  STREAM         stream id or name\n");
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "track", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *sock = NULL, *ref;
	shmdemux_conn *conn = NULL;
	shmdemux_stream *s = NULL;
	char *end;
	unsigned long id;
	int c, ret;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			sock = optarg;
			break;
		case 't':
			id = strtoul(optarg, &end, 10);
			if (*end != '\0' || id >= MAX_TRACKS) {
				fprintf(stderr, "shmdemux-example-decode: bad "
					"track: %s\n", optarg);
				return 2;
			}
			decs[id].wanted = 1;
			only_selected = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		return 2;
	}
	ref = argv[optind];
	id = strtoul(ref, &end, 10);
	frame = av_frame_alloc();
	if (frame == NULL)
		return 1;
	ret = shmdemux_connect(&conn, sock, 0);
	if (ret == 0)
		ret = shmdemux_attach(conn, (uint32_t)id,
				      *end == '\0' ? NULL : ref,
				      SHMDEMUX_START_OLDEST, 0, &s);
	if (ret == 0)
		ret = run(s);
	if (ret < 0) {
		fflush(stdout);
		fprintf(stderr, "shmdemux-example-decode: stream %s: %s\n", ref,
			shmdemux_strerror(ret));
	}
	for (int i = 0; i < MAX_TRACKS; i++)
		avcodec_free_context(&decs[i].ctx);
	shmdemux_detach(&s);
	shmdemux_disconnect(&conn);
	av_frame_free(&frame);
	free(scratch);
	return ret < 0 ? 1 : 0;
}
