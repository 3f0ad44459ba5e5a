/*
 * check.h - the tests' assertions, one definition for every C test.
 *
 * CHECK(cond): a failed check says where and what, and ends the test
 * (exit 1); the cleanup a test registered (atexit, tl_init) runs.
 *
 * EXPECT(cond, fmt, ...): a failed expectation says where, what and the
 * formatted detail, counts itself in check_failures and lets the test go
 * on to report more; the test's main returns check_status() at its end.
 */
#ifndef SHMDEMUX_CHECK_H
#define SHMDEMUX_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond) do {						\
		if (!(cond)) {						\
			fprintf(stderr, "%s:%d: check failed: %s\n",	\
				__FILE__, __LINE__, #cond);		\
			exit(1);					\
		}							\
	} while (0)

static int check_failures __attribute__((unused));

#define EXPECT(cond, ...) do {						\
		if (!(cond)) {						\
			fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__,	\
				__LINE__, #cond);			\
			fprintf(stderr, __VA_ARGS__);			\
			fputc('\n', stderr);				\
			check_failures++;				\
		}							\
	} while (0)

/* main's exit status after EXPECTs: 0, or 1 with the count on stderr. */
static inline int
check_status(void)
{
	if (check_failures == 0)
		return 0;
	fprintf(stderr, "%d checks failed\n", check_failures);
	return 1;
}

#endif
