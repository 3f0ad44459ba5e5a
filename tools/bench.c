/*
 * bench.c - shmdemux-bench: dispatch to a benchmark subcommand.
 */
#include <stdio.h>
#include <string.h>

#include "bench.h"

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
};

int
main(int argc, char **argv)
{
	size_t i;

	if (argc >= 2)
		for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
			if (strcmp(argv[1], cmds[i].name) == 0)
				return cmds[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "usage: shmdemux-bench COMMAND [options]\n");
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		fprintf(stderr, "  %-8s %s\n", cmds[i].name, cmds[i].help);
	return 2;
}
