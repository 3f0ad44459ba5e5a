/*
 * version.h - what every binary prints for --version.
 */
#ifndef SHMDEMUX_VERSION_H
#define SHMDEMUX_VERSION_H

#include <stdio.h>

/* "PROG VERSION", then the ABI versions it speaks (library, ring, control
 * protocol) and the FFmpeg libraries it runs with, one line each. */
void sd_version_print(FILE *f, const char *prog);
/* The project's version, "MAJOR.MINOR.PATCH". */
const char *sd_version_string(void);

#endif
