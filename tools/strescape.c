/*
 * strescape.c - JSON and terminal escaping of strings we did not write.
 */
#include <stdio.h>
#include <string.h>

#include "strescape.h"
#include "utf8.h"

/* Characters printed as escapes even when valid: they move the cursor,
 * start terminal sequences or reorder the text a terminal shows. */
static int
is_control(unsigned cp)
{
	return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) ||
	       cp == 0x2028 || cp == 0x2029 ||          /* separators */
	       cp == 0x200e || cp == 0x200f ||          /* LRM, RLM */
	       (cp >= 0x202a && cp <= 0x202e) ||        /* embeddings */
	       (cp >= 0x2066 && cp <= 0x2069);          /* isolates */
}

/* The short escape both forms share, or 0. */
static char
short_escape(unsigned cp)
{
	switch (cp) {
	case '\\': return '\\';
	case '\n': return 'n';
	case '\r': return 'r';
	case '\t': return 't';
	case '\b': return 'b';
	case '\f': return 'f';
	default: return 0;
	}
}

void
str_json(FILE *f, const char *s)
{
	size_t left = strlen(s);

	fputc('"', f);
	while (left > 0) {
		unsigned cp;
		size_t n = utf8_char_len(s, left, &cp);
		char e;

		if (n == 0) {
			fputs("\\ufffd", f);
			n = 1;
		} else if (cp == '"') {
			fputs("\\\"", f);
		} else if ((e = short_escape(cp)) != 0) {
			fprintf(f, "\\%c", e);
		} else if (is_control(cp)) {
			fprintf(f, "\\u%04x", cp);
		} else {
			fwrite(s, 1, n, f);
		}
		s += n;
		left -= n;
	}
	fputc('"', f);
}

char *
str_text(char *dst, size_t cap, const char *s)
{
	size_t left = strlen(s), o = 0;

	while (left > 0) {
		char unit[16];
		const char *out = unit;
		unsigned cp;
		size_t n = utf8_char_len(s, left, &cp), len;
		char e;

		if (n == 0) {
			len = (size_t)snprintf(unit, sizeof(unit), "\\x%02x",
					       (unsigned char)*s);
			n = 1;
		} else if (cp == 0x1b) {
			len = (size_t)snprintf(unit, sizeof(unit), "\\e");
		} else if ((e = short_escape(cp)) != 0) {
			len = (size_t)snprintf(unit, sizeof(unit), "\\%c", e);
		} else if (cp == '\a' || cp == '\v') {
			len = (size_t)snprintf(unit, sizeof(unit), "\\%c",
					       cp == '\a' ? 'a' : 'v');
		} else if (cp < 0x80 && is_control(cp)) {
			len = (size_t)snprintf(unit, sizeof(unit), "\\x%02x",
					       cp);
		} else if (is_control(cp)) {
			len = (size_t)snprintf(unit, sizeof(unit), "\\u%04x",
					       cp);
		} else {
			out = s;
			len = n;
		}
		if (o + len >= cap)
			break; /* a whole unit or nothing */
		memcpy(dst + o, out, len);
		o += len;
		s += n;
		left -= n;
	}
	dst[o] = '\0';
	return dst;
}
