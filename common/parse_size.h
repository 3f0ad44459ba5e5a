/*
 * parse_size.h - a size given on a command line or in a configuration
 * file: the one grammar of the broker's and the CLI's options.
 *
 *   SIZE  = DIGITS [ MULT [ "i" ] ] [ "B" | "b" ]
 *   MULT  = "k" | "K" (1024) | "m" | "M" (1024^2) | "g" | "G" (1024^3)
 *
 * Decimal digits only (no sign, space or base prefix); the multiples are
 * binary whichever way they are written: 64k, 64K, 64KB, 64kb, 64Ki,
 * 64KiB all mean 65536, and 64mb, 64M, 64MiB 64 MiB. A trailing B or b
 * alone means bytes (512B).
 */
#ifndef SHMDEMUX_PARSE_SIZE_H
#define SHMDEMUX_PARSE_SIZE_H

#include <stdint.h>

/* s as a SIZE of at most max: 0 and *out set, -EINVAL if s is not a SIZE
 * (or its digits overflow 64 bits), -ERANGE if its value exceeds max.
 * *out is left alone on failure. */
int parse_size(const char *s, uint64_t max, uint64_t *out);

#endif
