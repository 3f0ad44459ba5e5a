/*
 * ffversion.h - the FFmpeg line of --version, for the binaries that link
 * FFmpeg (the worker, the CLI, the benchmarks). A header of its own so that
 * common/ (and so the broker) links no FFmpeg.
 */
#ifndef SHMDEMUX_FFVERSION_H
#define SHMDEMUX_FFVERSION_H

#include <stdio.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/avutil.h>

static inline void
sd_version_print_ffmpeg_lib(FILE *f, const char *name, unsigned v,
			    const char *sep)
{
	fprintf(f, "%s %u.%u.%u%s", name, AV_VERSION_MAJOR(v),
		AV_VERSION_MINOR(v), AV_VERSION_MICRO(v), sep);
}

/* "FFmpeg libavformat X.Y.Z, libavcodec X.Y.Z, libavutil X.Y.Z": the
 * libraries this process runs with. */
static inline void
sd_version_print_ffmpeg(FILE *f)
{
	fputs("FFmpeg ", f);
	sd_version_print_ffmpeg_lib(f, "libavformat", avformat_version(), ", ");
	sd_version_print_ffmpeg_lib(f, "libavcodec", avcodec_version(), ", ");
	sd_version_print_ffmpeg_lib(f, "libavutil", avutil_version(), "\n");
}

#endif
