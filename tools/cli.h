/*
 * cli.h - what the shmdemux CLI's command files share (tools/cli.c
 * holds these helpers and the command table; each cli_*.c a family of
 * commands).
 *
 * Exit statuses: 0 success, 1 (EXIT_FAILURE) a runtime failure reported
 * by fail() as one line "shmdemux: <cause>", 2 (CLI_EXIT_USAGE) a usage
 * error reported by usage_error().
 */
#ifndef SHMDEMUX_CLI_H
#define SHMDEMUX_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "shmdemux.h"

#define CLI_EXIT_USAGE 2

/* One line on stderr; returns EXIT_FAILURE. */
int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "shmdemux: WHAT (see 'shmdemux CMD--help')"; returns CLI_EXIT_USAGE.
 * cmd is "" or the command name followed by a space. */
int usage_error(const char *cmd, const char *what);
/* The option getopt_long() just refused (opterr is 0). */
int unknown_option(const char *cmd, char **argv);
/* A failed request: the broker's message if it sent one. */
int request_failed(shmdemux_conn *conn, const char *what, int code);
/* The single STREAM operand at optind into *id or *name, and a connection
 * to the broker in *conn. Returns 0 or the exit status. */
int stream_operand(const char *cmd, int argc, char **argv, uint32_t *id,
		   const char **name, shmdemux_conn **conn);
/* --timeout MS (-1 waits forever). Returns 0 or the exit status. */
int parse_timeout(const char *cmd, const char *arg, int *timeout);
/* --from start|keyframe|live: SHMDEMUX_START_*. 0 or the exit status. */
int parse_from(const char *cmd, const char *arg, int *start);
/* How a stream ended, in words: "worker crashed (signal 11, SIGSEGV)". */
void describe_end(const struct shmdemux_status *st, char *buf, size_t cap);

/* Connect to the broker (the --socket path or the default), naming the
 * socket and the cause in the failure line. Returns 0 or the exit status. */
int connect_broker(shmdemux_conn **conn, unsigned flags);
/* "SIGSEGV", or "signal N" for one without a name. */
const char *signame(int sig, char *buf, size_t cap);
/* A timestamp in JSON: the number, or null for SHMDEMUX_NOPTS. */
void json_ts(FILE *f, int64_t v);

int cmd_cat(int argc, char **argv);
int cmd_dump(int argc, char **argv);
int cmd_probe(int argc, char **argv);
int cmd_ls(int argc, char **argv);
int cmd_top(int argc, char **argv);
int cmd_stats(int argc, char **argv);

#endif
