/*
 * version.c - --version for every binary.
 */
#include "proto.h"
#include "ring_layout.h"
#include "version.h"

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
}
