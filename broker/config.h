/*
 * config.h - shmdemuxd's configuration files: the defaults of its long
 * options, one `name = value` per line, read before the command line,
 * which overrides them.
 *
 * Files, in order (a later one overrides an earlier one): the system's
 * (SHMDEMUX_SYSCONF_FILE, /etc/shmdemux/shmdemuxd.conf for a /usr
 * install), then the user's ($XDG_CONFIG_HOME/shmdemux/shmdemuxd.conf,
 * else ~/.config/shmdemux/shmdemuxd.conf); missing ones are skipped.
 * `--config FILE` reads that file alone (it must exist); `--no-config`
 * reads none.
 *
 * Syntax: `#` starts a comment (at the start of a line or after a blank);
 * blank lines are ignored; a setting is `name = value` where name is a long
 * option without its dashes (`ring-size = 64M`); a switch takes yes/no
 * (`daemon = yes`). A file must be a regular file, at most 64 KiB, not
 * writable by group or others, and owned by root or by us.
 */
#ifndef SHMDEMUXD_CONFIG_H
#define SHMDEMUXD_CONFIG_H

#include <getopt.h>

struct config_args {
	int argc;
	char **argv;          /* argv[0], the files' options, then argv[1..] */
	const char **origin;  /* per argv entry: "FILE:LINE", or NULL for the
	                         command line */
	char *files[2];       /* the files read, in order (NULL: none) */
};

/* Merge the configuration files into the command line. opts is the
 * program's option table: a setting must name one of its entries, except
 * those listed in skip (NULL-terminated). Returns 0, or -1 with msg set
 * (the file and line, and what is wrong). */
int config_load(struct config_args *out, int argc, char **argv,
		const struct option *opts, const char *const *skip,
		char *msg, size_t msg_len);
void config_free(struct config_args *a);

#endif
