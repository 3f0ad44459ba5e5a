/*
 * test_parse_size.c - the one size grammar of the broker's and the CLI's
 * options (common/parse_size.h): every form either accepted before the
 * two parsers became one (the daemon's 64mb, the CLI's 64KiB), the
 * refusals, the 64-bit edge and the caller's maximum.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>

#include "check.h"
#include "parse_size.h"

struct tcase {
	const char *s;
	uint64_t max;
	int ret;
	uint64_t want;
};

#define K (UINT64_C(1) << 10)
#define M (UINT64_C(1) << 20)
#define G (UINT64_C(1) << 30)

static const struct tcase cases[] = {
	{ "0", UINT64_MAX, 0, 0 },
	{ "64", UINT64_MAX, 0, 64 },
	{ "007", UINT64_MAX, 0, 7 },
	{ "64k", UINT64_MAX, 0, 64 * K },
	{ "64K", UINT64_MAX, 0, 64 * K },
	{ "64KB", UINT64_MAX, 0, 64 * K },
	{ "64kb", UINT64_MAX, 0, 64 * K },
	{ "64Ki", UINT64_MAX, 0, 64 * K },
	{ "64KiB", UINT64_MAX, 0, 64 * K },
	{ "64kib", UINT64_MAX, 0, 64 * K },
	{ "64mb", UINT64_MAX, 0, 64 * M },
	{ "64M", UINT64_MAX, 0, 64 * M },
	{ "64MiB", UINT64_MAX, 0, 64 * M },
	{ "2G", UINT64_MAX, 0, 2 * G },
	{ "2gib", UINT64_MAX, 0, 2 * G },
	{ "512B", UINT64_MAX, 0, 512 },
	{ "512b", UINT64_MAX, 0, 512 },
	{ "18446744073709551615", UINT64_MAX, 0, UINT64_MAX },
	{ "17179869183G", UINT64_MAX, 0, UINT64_C(17179869183) << 30 },
	/* not a size */
	{ "", UINT64_MAX, -EINVAL, 0 },
	{ "-1", UINT64_MAX, -EINVAL, 0 },
	{ "+1", UINT64_MAX, -EINVAL, 0 },
	{ " 1", UINT64_MAX, -EINVAL, 0 },
	{ "1 ", UINT64_MAX, -EINVAL, 0 },
	{ "K", UINT64_MAX, -EINVAL, 0 },
	{ "0x10", UINT64_MAX, -EINVAL, 0 },
	{ "1x", UINT64_MAX, -EINVAL, 0 },
	{ "1KK", UINT64_MAX, -EINVAL, 0 },
	{ "1T", UINT64_MAX, -EINVAL, 0 },
	{ "1i", UINT64_MAX, -EINVAL, 0 },
	{ "1iB", UINT64_MAX, -EINVAL, 0 },
	{ "1KBi", UINT64_MAX, -EINVAL, 0 },
	{ "1KiBB", UINT64_MAX, -EINVAL, 0 },
	{ "1.5M", UINT64_MAX, -EINVAL, 0 },
	{ "18446744073709551616", UINT64_MAX, -EINVAL, 0 },
	/* more than 64 bits with the multiple, or than the caller's max */
	{ "17179869184G", UINT64_MAX, -ERANGE, 0 },
	{ "1024", 1024, 0, 1024 },
	{ "1K", 1024, 0, 1024 },
	{ "1025", 1024, -ERANGE, 0 },
	{ "2K", 2047, -ERANGE, 0 },
	{ "1M", 1024, -ERANGE, 0 },
	{ "4294967295", UINT32_MAX, 0, UINT32_MAX },
	{ "4G", UINT32_MAX, -ERANGE, 0 },
};

int
main(void)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct tcase *c = &cases[i];
		uint64_t v = 12345;
		int ret = parse_size(c->s, c->max, &v);

		EXPECT(ret == c->ret, "\"%s\" (max %" PRIu64 "): %d, want %d",
		       c->s, c->max, ret, c->ret);
		if (c->ret == 0)
			EXPECT(v == c->want, "\"%s\": %" PRIu64 ", want %"
			       PRIu64, c->s, v, c->want);
		else
			EXPECT(v == 12345, "\"%s\": *out changed on failure",
			       c->s);
	}
	if (check_failures == 0)
		printf("parse_size: %zu cases\n",
		       sizeof(cases) / sizeof(cases[0]));
	return check_status();
}
