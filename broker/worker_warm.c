/*
 * worker_warm.c - what a spare worker does while it waits for a stream:
 * the one-time set-up that the first open in a process pays, done ahead
 * on bytes of its own (never on input), so the stream handed to it starts
 * without. libavformat's first probe runs every demuxer's probe function
 * (some build tables on first use); avformat_find_stream_info() opens
 * the decoders of the tracks it meets, and a decoder's first open builds
 * its static tables (pthread_once in libavcodec). Measured on short clips
 * (720p H.264 + AAC): the first open + probe + first packet in a process
 * takes 15-30 ms more than the next.
 */
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>

#include "worker.h"

/* The decoders probing meets in the containers on the default whitelist. */
static const enum AVCodecID warm_codecs[] = {
	AV_CODEC_ID_H264, AV_CODEC_ID_HEVC, AV_CODEC_ID_MPEG2VIDEO,
	AV_CODEC_ID_MPEG4, AV_CODEC_ID_VP9, AV_CODEC_ID_AAC, AV_CODEC_ID_MP3,
	AV_CODEC_ID_MP2, AV_CODEC_ID_AC3, AV_CODEC_ID_EAC3, AV_CODEC_ID_OPUS,
	AV_CODEC_ID_VORBIS, AV_CODEC_ID_FLAC,
};

void
worker_warm(void)
{
	uint8_t buf[2048 + AVPROBE_PADDING_SIZE] = { 0 };
	AVProbeData pd = { .filename = "", .buf = buf, .buf_size = 2048 };
	AVCodecParserContext *parser;
	const AVCodec *codec;
	AVCodecContext *ctx;

	(void)av_probe_input_format(&pd, 1);
	for (size_t i = 0; i < sizeof(warm_codecs) / sizeof(warm_codecs[0]);
	     i++) {
		codec = avcodec_find_decoder(warm_codecs[i]);
		if (codec == NULL)
			continue;
		ctx = avcodec_alloc_context3(codec);
		if (ctx != NULL) {
			/* no decoder threads: none may outlive this */
			ctx->thread_count = 1;
			(void)avcodec_open2(ctx, codec, NULL);
			avcodec_free_context(&ctx);
		}
		parser = av_parser_init((int)warm_codecs[i]);
		if (parser != NULL)
			av_parser_close(parser);
	}
}
