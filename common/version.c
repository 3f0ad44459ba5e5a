/*
 * version.c - --version for every binary.
 */
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/avutil.h>

#include "proto.h"
#include "ring_layout.h"
#include "version.h"

static void
print_lib(FILE *f, const char *name, unsigned v, const char *sep)
{
	fprintf(f, "%s %u.%u.%u%s", name, AV_VERSION_MAJOR(v),
		AV_VERSION_MINOR(v), AV_VERSION_MICRO(v), sep);
}

const char *
sd_version_string(void)
{
	return SHMDEMUX_VERSION;
}

void
sd_version_print(FILE *f, const char *prog)
{
	fprintf(f, "%s %s\n", prog, SHMDEMUX_VERSION);
	fprintf(f, "libshmdemux ABI %d, ring ABI %u, control protocol %u\n",
		SHMDEMUX_ABI, RING_ABI_VERSION, CTL_VERSION);
	fputs("FFmpeg ", f);
	print_lib(f, "libavformat", avformat_version(), ", ");
	print_lib(f, "libavcodec", avcodec_version(), ", ");
	print_lib(f, "libavutil", avutil_version(), "\n");
}
