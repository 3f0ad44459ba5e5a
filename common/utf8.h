/*
 * utf8.h - strict UTF-8: what the client library makes of worker-written
 * strings and what the CLI escapes.
 */
#ifndef SHMDEMUX_UTF8_H
#define SHMDEMUX_UTF8_H

#include <stddef.h>

/* Length (1-4) of the valid UTF-8 character at s, of which n bytes may be
 * read (n >= 1), or 0 when the bytes there are not one: an invalid lead
 * byte, a truncated or overlong sequence, a UTF-16 surrogate or a code
 * point past U+10FFFF. *cp gets the code point when not NULL. */
size_t utf8_char_len(const char *s, size_t n, unsigned *cp);

#endif
