/*
 * version.h - what every binary prints for --version.
 */
#ifndef SHMDEMUX_VERSION_H
#define SHMDEMUX_VERSION_H

#include <stdio.h>

/* "PROG VERSION", then the ABI versions it speaks (library, ring, control
 * protocol), one line each. A binary that links FFmpeg adds the versions
 * it runs with (sd_version_print_ffmpeg(), ffversion.h); the broker links
 * no FFmpeg and says so. */
void sd_version_print(FILE *f, const char *prog);
/* The project's version, "MAJOR.MINOR.PATCH". */
const char *sd_version_string(void);

#endif
