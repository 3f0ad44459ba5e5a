/*
 * strescape.h - strings that come from elsewhere (a worker, a file's
 * metadata, a path, the broker) made safe to print: as JSON, or as text
 * for a terminal. The tools' one escaper (the CLI and the benchmarks).
 *
 * Escaped in both forms: C0 controls, DEL, C1 controls (U+0080-U+009F,
 * which terminals take for ESC sequences too), the line and paragraph
 * separators and the bidirectional controls (which reorder what a terminal
 * shows), and invalid UTF-8.
 */
#ifndef SHMDEMUX_STRESCAPE_H
#define SHMDEMUX_STRESCAPE_H

#include <stddef.h>
#include <stdio.h>

/* s as a JSON string, quotes included: \" \\ \b \f \n \r \t, \uXXXX for
 * the other characters above, U+FFFD (as \ufffd) for each invalid byte.
 * The output is valid JSON and valid UTF-8. */
void str_json(FILE *f, const char *s);

/* s for a terminal into dst (cap > 0 bytes, always NUL-terminated):
 * valid printable UTF-8 as is, \\ for a backslash, \e \n \r \t \a \b \f
 * \v, \xNN for other C0 controls, DEL and each invalid byte, \uXXXX for
 * C1 and the Unicode controls. Cut before an escape or character that
 * does not fit. Returns dst. */
char *str_text(char *dst, size_t cap, const char *s);

#endif
