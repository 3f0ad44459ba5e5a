/*
 * utf8.c - strict UTF-8 decoding of one character.
 */
#include "utf8.h"

size_t
utf8_char_len(const char *str, size_t n, unsigned *cpp)
{
	const unsigned char *s = (const unsigned char *)str;
	unsigned c = s[0], len, cp;

	if (c < 0x80) {
		len = 1;
		cp = c;
		goto out;
	}
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (unsigned i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	/* overlong forms, UTF-16 surrogates, beyond U+10FFFF */
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
out:
	if (cpp != NULL)
		*cpp = cp;
	return len;
}
