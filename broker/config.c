/*
 * config.c - shmdemuxd's configuration files, turned into the long options
 * they stand for and put before the command line's (config.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"

#define CONFIG_MAX_BYTES (64 * 1024)

struct builder {
	char **argv;
	const char **origin;
	int n, cap;
};

static int
push(struct builder *b, char *arg, const char *origin)
{
	if (b->n + 2 > b->cap) {
		int cap = b->cap ? b->cap * 2 : 32;
		char **a = realloc(b->argv, sizeof(*a) * (size_t)cap);

		if (a == NULL)
			return -1;
		b->argv = a;
		const char **o = realloc(b->origin, sizeof(*o) * (size_t)cap);

		if (o == NULL)
			return -1;
		b->origin = o;
		b->cap = cap;
	}
	b->argv[b->n] = arg;
	b->origin[b->n] = origin;
	b->n++;
	b->argv[b->n] = NULL;
	b->origin[b->n] = NULL;
	return 0;
}

/* An allocated token from the file at origin (also allocated). */
static int
push_copy(struct builder *b, const char *arg, const char *where)
{
	char *a = strdup(arg), *o = strdup(where);

	if (a == NULL || o == NULL || push(b, a, o) < 0) {
		free(a);
		free(o);
		return -1;
	}
	return 0;
}

static char *
trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

static const struct option *
find_opt(const struct option *opts, const char *const *skip,
	 const char *name)
{
	for (const char *const *k = skip; *k != NULL; k++)
		if (strcmp(*k, name) == 0)
			return NULL;
	for (const struct option *o = opts; o->name != NULL; o++)
		if (strcmp(o->name, name) == 0)
			return o;
	return NULL;
}

/* One line: nothing, a comment, or `name = value`. */
static int
parse_line(struct builder *b, char *line, const char *where,
	   const struct option *opts, const char *const *skip, char *msg,
	   size_t msg_len)
{
	char *hash, *eq, *name, *value, flag[PATH_MAX];
	const struct option *o;
	size_t vl;

	for (hash = line; (hash = strchr(hash, '#')) != NULL; hash++)
		if (hash == line || hash[-1] == ' ' || hash[-1] == '\t') {
			*hash = '\0';
			break;
		}
	line = trim(line);
	if (*line == '\0')
		return 0;
	eq = strchr(line, '=');
	if (eq == NULL) {
		snprintf(msg, msg_len, "%s: expected `name = value`, not `%s`",
			 where, line);
		return -1;
	}
	*eq = '\0';
	name = trim(line);
	value = trim(eq + 1);
	vl = strlen(value);
	if (vl >= 2 && value[0] == '"' && value[vl - 1] == '"') {
		value[vl - 1] = '\0';
		value++;
	}
	o = find_opt(opts, skip, name);
	if (o == NULL) {
		snprintf(msg, msg_len, "%s: unknown setting `%s` (the long "
			 "options of shmdemuxd --help, without dashes)", where,
			 name);
		return -1;
	}
	snprintf(flag, sizeof(flag), "--%s", name);
	if (o->has_arg == no_argument) {
		if (strcmp(value, "yes") == 0 || strcmp(value, "true") == 0)
			return push_copy(b, flag, where);
		if (strcmp(value, "no") == 0 || strcmp(value, "false") == 0)
			return 0;
		snprintf(msg, msg_len, "%s: `%s` is a switch: yes or no, not "
			 "`%s`", where, name, value);
		return -1;
	}
	if (*value == '\0') {
		snprintf(msg, msg_len, "%s: `%s` needs a value", where, name);
		return -1;
	}
	if (push_copy(b, flag, where) < 0 || push_copy(b, value, where) < 0) {
		snprintf(msg, msg_len, "%s: out of memory", where);
		return -1;
	}
	return 0;
}

/* Read one file into b. A missing file is skipped (returns 0) unless it
 * must exist; returns 1 when the file was read. */
static int
read_file(struct builder *b, const char *path, int must_exist,
	  const struct option *opts, const char *const *skip, char *msg,
	  size_t msg_len)
{
	char where[PATH_MAX + 16], *text, *line, *next;
	struct stat st;
	ssize_t n;
	unsigned lineno = 0;
	int fd, ret = 1;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		if (errno == ENOENT && !must_exist)
			return 0;
		snprintf(msg, msg_len, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(msg, msg_len, "%s: not a regular file", path);
		close(fd);
		return -1;
	}
	/* Settings decide how hostile input is confined: only root or we
	 * may have written them. */
	if ((st.st_uid != 0 && st.st_uid != geteuid()) ||
	    (st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
		snprintf(msg, msg_len, "%s: refused: owned by uid %u with mode "
			 "%03o (must be root's or ours, and writable by no "
			 "one else)", path, (unsigned)st.st_uid,
			 (unsigned)(st.st_mode & 0777));
		close(fd);
		return -1;
	}
	if (st.st_size > CONFIG_MAX_BYTES) {
		snprintf(msg, msg_len, "%s: larger than %d bytes", path,
			 CONFIG_MAX_BYTES);
		close(fd);
		return -1;
	}
	text = malloc((size_t)st.st_size + 1);
	if (text == NULL) {
		snprintf(msg, msg_len, "%s: out of memory", path);
		close(fd);
		return -1;
	}
	n = read(fd, text, (size_t)st.st_size);
	close(fd);
	if (n != st.st_size) {
		snprintf(msg, msg_len, "%s: short read", path);
		free(text);
		return -1;
	}
	text[n] = '\0';
	if (memchr(text, '\0', (size_t)n) != NULL) {
		snprintf(msg, msg_len, "%s: a NUL byte: not a text file", path);
		free(text);
		return -1;
	}
	for (line = text; line != NULL && ret > 0; line = next) {
		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		lineno++;
		snprintf(where, sizeof(where), "%s:%u", path, lineno);
		if (parse_line(b, line, where, opts, skip, msg, msg_len) < 0)
			ret = -1;
	}
	free(text);
	return ret;
}

/* The files to read by default; 0 or more of out[0..1]. */
static int
default_files(char *out[2])
{
	const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
	char user[PATH_MAX];
	int n = 0, w = -1;

	out[n++] = strdup(SHMDEMUX_SYSCONF_FILE);
	if (xdg != NULL && xdg[0] == '/')
		w = snprintf(user, sizeof(user), "%s/shmdemux/shmdemuxd.conf",
			     xdg);
	else if (home != NULL && home[0] == '/')
		w = snprintf(user, sizeof(user),
			     "%s/.config/shmdemux/shmdemuxd.conf", home);
	if (w > 0 && (size_t)w < sizeof(user))
		out[n++] = strdup(user);
	for (int i = 0; i < n; i++)
		if (out[i] == NULL)
			return -1;
	return n;
}

int
config_load(struct config_args *out, int argc, char **argv,
	    const struct option *opts, const char *const *skip, char *msg,
	    size_t msg_len)
{
	struct builder b = { 0 };
	const char *explicit = NULL;
	char *files[2] = { NULL, NULL };
	int none = 0, nfiles = 0, i, ret;

	memset(out, 0, sizeof(*out));
	for (i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
		if (strcmp(argv[i], "--no-config") == 0)
			none = 1;
		else if (strncmp(argv[i], "--config=", 9) == 0)
			explicit = argv[i] + 9;
		else if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
			explicit = argv[++i];
	}
	if (push(&b, argv[0], NULL) < 0)
		goto oom;
	if (explicit != NULL && !none) {
		if ((files[0] = strdup(explicit)) == NULL)
			goto oom;
		nfiles = 1;
	} else if (!none && (nfiles = default_files(files)) < 0) {
		goto oom;
	}
	for (i = 0; i < nfiles; i++) {
		ret = read_file(&b, files[i], explicit != NULL, opts, skip,
				msg, msg_len);
		if (ret < 0)
			goto fail;
		if (ret > 0)
			out->files[i] = files[i];
		else
			free(files[i]);
		files[i] = NULL;
	}
	for (i = 1; i < argc; i++)
		if (push(&b, argv[i], NULL) < 0)
			goto oom;
	out->argc = b.n;
	out->argv = b.argv;
	out->origin = b.origin;
	return 0;
oom:
	snprintf(msg, msg_len, "configuration: out of memory");
fail:
	for (i = 0; i < 2; i++)
		free(files[i]);
	out->argc = b.n;
	out->argv = b.argv;
	out->origin = b.origin;
	config_free(out);
	return -1;
}

void
config_free(struct config_args *a)
{
	for (int i = 0; i < a->argc; i++)
		if (a->origin != NULL && a->origin[i] != NULL) {
			free(a->argv[i]);
			free((char *)a->origin[i]);
		}
	free(a->argv);
	free(a->origin);
	for (int i = 0; i < 2; i++)
		free(a->files[i]);
	memset(a, 0, sizeof(*a));
}
