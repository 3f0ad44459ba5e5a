/*
 * client_testlib.c - helpers for tests that drive a broker through
 * libshmdemux.
 */
#include <stdio.h>
#include <stdlib.h>

#include "broker_testlib.h"
#include "client_testlib.h"

static int
find_info(const struct shmdemux_stream_info *i, void *ctx)
{
	struct shmdemux_stream_info *out = ctx;

	if (i->id != out->id)
		return 0;
	*out = *i;
	return 1;
}

struct shmdemux_stream_info
tl_info_of(shmdemux_conn *c, uint32_t id)
{
	struct shmdemux_stream_info i = { .id = id };

	CHECK(shmdemux_list(c, find_info, &i) == 1);
	return i;
}

uint32_t
tl_open_path(shmdemux_conn *c, const char *path,
	     const struct shmdemux_open_opts *opts)
{
	uint32_t id = 0;
	int ret;

	ret = shmdemux_open_path(c, path, opts, &id);
	if (ret != 0)
		fprintf(stderr, "open %s: %d %s\n", path, ret,
			shmdemux_conn_last_error(c));
	CHECK(ret == 0 && id > 0);
	return id;
}

int
tl_run(const char *cmd)
{
	int st = system(cmd);

	if (st != 0)
		fprintf(stderr, "command failed (%d): %s\n", st, cmd);
	return st;
}
