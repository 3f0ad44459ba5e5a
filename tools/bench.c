/*
 * bench.c - shmdemux-bench: dispatch to a benchmark subcommand.
 */
#include <stdio.h>
#include <string.h>

#include "bench.h"
#include "ffversion.h"
#include "version.h"

static const struct {
	const char *name;
	int (*fn)(int, char **);
	const char *help;
} cmds[] = {
	{ "ring", bench_ring, "ring throughput and wake latency [--json]" },
	{ "demux", bench_demux,
	  "FILE: in-process demux vs broker+ring [--consumers N] [--json]" },
	{ "decode", bench_decode,
	  "FILE: in-process decode vs decoding worker+ring [--consumers N] "
	  "[--threads N] [--json]" },
	{ "short", bench_short,
	  "CLIP...: many short inputs, in-process vs broker, P at once, C "
	  "readers [--parallel P,...] [--consumers C,...] [--json]" },
	{ "scale", bench_scale,
	  "FILE: N streams at once, in-process vs broker, C readers each "
	  "[--streams N,...] [--consumers C,...] [--json]" },
	{ "soak", bench_soak,
	  "FILE...: streams opened, read, killed and closed for minutes; "
	  "broker RSS, fds, rings, /dev/shm slopes [--duration SEC]" },
};

int
main(int argc, char **argv)
{
	int help = argc == 2 && (strcmp(argv[1], "--help") == 0 ||
				 strcmp(argv[1], "-h") == 0);
	FILE *f = help ? stdout : stderr;
	size_t i;

	if (argc == 2 && strcmp(argv[1], "--version") == 0) {
		sd_version_print(stdout, "shmdemux-bench");
		sd_version_print_ffmpeg(stdout);
		return 0;
	}
	if (argc >= 2)
		for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
			if (strcmp(argv[1], cmds[i].name) == 0)
				return cmds[i].fn(argc - 1, argv + 1);
	fprintf(f, "usage: shmdemux-bench COMMAND [options]\n"
		"       shmdemux-bench COMMAND --help\n");
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		fprintf(f, "  %-8s %s\n", cmds[i].name, cmds[i].help);
	fprintf(f, "  --version  versions of shmdemux and FFmpeg\n");
	return help ? 0 : 2;
}
