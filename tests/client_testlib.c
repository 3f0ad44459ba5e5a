/*
 * client_testlib.c - helpers for tests that drive a broker through
 * libshmdemux.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

int
tl_media_main(int argc, char **argv, const char *probe, unsigned timeout_s,
	      const struct tl_case *cases, struct tl_media_env *env)
{
	char path[1024];
	const char *prog = strrchr(argv[0], '/');

	prog = prog != NULL ? prog + 1 : argv[0];
	if (argc != 7) {
		fprintf(stderr, "usage: %s SHMDEMUXD WORKER BIN_DIR MEDIA_DIR "
			"FFPROBE_PACKETS CASE\n", prog);
		return 2;
	}
	env->worker = argv[2];
	env->bin_dir = argv[3];
	env->media = argv[4];
	env->ffprobe_packets = argv[5];
	snprintf(path, sizeof(path), "%s/%s", env->media, probe);
	if (access(env->worker, X_OK) < 0 || access(path, R_OK) < 0 ||
	    access(env->ffprobe_packets, X_OK) < 0) {
		fprintf(stderr, "SKIP: worker, test media or ffprobe-packets "
			"missing\n");
		return 77;
	}
	for (; cases->name != NULL; cases++)
		if (strcmp(cases->name, argv[6]) == 0)
			break;
	if (cases->name == NULL) {
		fprintf(stderr, "%s: unknown case %s\n", prog, argv[6]);
		return 2;
	}
	tl_init(argv[1], timeout_s);
	cases->run();
	tl_check_shm();
	printf("%s %s: ok\n", prog, argv[6]);
	return 0;
}
