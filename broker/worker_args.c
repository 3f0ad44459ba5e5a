/*
 * worker_args.c - shmdemux-worker's command line (worker_abi.h): every
 * option checked for what it means before the worker uses it. The broker
 * builds this argv (spawn_args()), but the worker takes it as it would
 * anyone's.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libavutil/dict.h>

#include "worker.h"

void
worker_usage(void)
{
	fprintf(stderr, "usage: shmdemux-worker --stream-id N [--seekable] "
		"[--format FMT] [--probesize BYTES] [--analyzeduration USEC] "
		"[--realtime] [--verbose] [--demux-opt KEY=VALUE]...\n"
		"       [--mem-limit BYTES] [--format-whitelist LIST] "
		"[--spool-limit BYTES]\n"
		"       [--decode video|audio|all] [--decode-threads N] "
		"[--decode-strict]\n"
		"       shmdemux-worker --spare | --fork-server   (started by "
		"shmdemuxd: streams arrive on fd 3)\n");
}

static int
parse_i64(const char *s, int64_t *out)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || end == s || *end || v < 0)
		return -1;
	*out = v;
	return 0;
}

static int
add_demux_opt(struct worker *w, const char *kv)
{
	const char *eq = strchr(kv, '=');
	char key[128];

	if (!eq || eq == kv || (size_t)(eq - kv) >= sizeof(key))
		return -1;
	memcpy(key, kv, (size_t)(eq - kv));
	key[eq - kv] = '\0';
	return av_dict_set(&w->demux_opts, key, eq + 1, 0) < 0 ? -1 : 0;
}

static int
parse_decode(const char *s, unsigned *out)
{
	if (strcmp(s, "video") == 0)
		*out = WORKER_DECODE_VIDEO;
	else if (strcmp(s, "audio") == 0)
		*out = WORKER_DECODE_AUDIO;
	else if (strcmp(s, "all") == 0)
		*out = WORKER_DECODE_VIDEO | WORKER_DECODE_AUDIO;
	else
		return -1;
	return 0;
}

/* Strings kept from argv are copied: setproctitle() reuses argv's memory. */
int
worker_parse_args(struct worker *w, int argc, char **argv)
{
	enum { O_ID = 256, O_SEEK, O_FMT, O_PROBE, O_ANALYZE, O_RT, O_OPT,
	       O_VERBOSE, O_MEM, O_WHITELIST, O_FAULT, O_FAULT_AFTER,
	       O_SPOOL, O_DEC, O_DEC_THREADS, O_DEC_STRICT };
	static const struct option opts[] = {
		{ "stream-id", required_argument, NULL, O_ID },
		{ "seekable", no_argument, NULL, O_SEEK },
		{ "format", required_argument, NULL, O_FMT },
		{ "probesize", required_argument, NULL, O_PROBE },
		{ "analyzeduration", required_argument, NULL, O_ANALYZE },
		{ "realtime", no_argument, NULL, O_RT },
		{ "demux-opt", required_argument, NULL, O_OPT },
		{ "verbose", no_argument, NULL, O_VERBOSE },
		{ "mem-limit", required_argument, NULL, O_MEM },
		{ "format-whitelist", required_argument, NULL, O_WHITELIST },
#ifdef SHMDEMUX_FAULT_INJECTION
		{ "fault", required_argument, NULL, O_FAULT },
		{ "fault-after", required_argument, NULL, O_FAULT_AFTER },
#endif
		{ "spool-limit", required_argument, NULL, O_SPOOL },
		{ "decode", required_argument, NULL, O_DEC },
		{ "decode-threads", required_argument, NULL, O_DEC_THREADS },
		{ "decode-strict", no_argument, NULL, O_DEC_STRICT },
		{ NULL, 0, NULL, 0 },
	};
	int64_t id = -1;
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case O_ID:
			if (parse_i64(optarg, &id) < 0 || id > LONG_MAX)
				return -1;
			break;
		case O_SEEK: w->seekable = 1; break;
		case O_RT: w->realtime = 1; break;
		case O_VERBOSE: w->verbose = 1; break;
		case O_FMT:
			free((char *)w->format);
			if (!(w->format = strdup(optarg)))
				return -1;
			break;
		case O_PROBE:
			if (parse_i64(optarg, &w->probesize) < 0)
				return -1;
			break;
		case O_ANALYZE:
			if (parse_i64(optarg, &w->analyzeduration) < 0)
				return -1;
			break;
		case O_OPT:
			if (add_demux_opt(w, optarg) < 0)
				return -1;
			break;
		case O_MEM: {
			int64_t v;

			if (parse_i64(optarg, &v) < 0 || v < 0)
				return -1;
			w->mem_limit = (uint64_t)v;
			break;
		}
		case O_WHITELIST:
			free((char *)w->format_whitelist);
			if (!(w->format_whitelist = strdup(optarg)))
				return -1;
			break;
#ifdef SHMDEMUX_FAULT_INJECTION
		case O_FAULT:
			if (worker_fault_parse(w, optarg) < 0)
				return -1;
			break;
		case O_FAULT_AFTER: {
			int64_t v;

			if (parse_i64(optarg, &v) < 0)
				return -1;
			w->fault_after = (uint64_t)v;
			break;
		}
#endif
		case O_SPOOL: {
			int64_t v;

			if (parse_i64(optarg, &v) < 0 || v <= 0)
				return -1;
			w->spool.limit = (uint64_t)v;
			break;
		}
		case O_DEC:
			if (parse_decode(optarg, &w->decode) < 0)
				return -1;
			break;
		case O_DEC_THREADS: {
			int64_t v;

			if (parse_i64(optarg, &v) < 0 || v > 1024)
				return -1;
			w->decode_threads = (int)v;
			break;
		}
		case O_DEC_STRICT: w->decode_strict = 1; break;
		default:
			return -1;
		}
	}
	if (optind != argc || id < 0)
		return -1;
	w->stream_id = (long)id;
	return 0;
}
