/*
 * test_confine.c - the worker gets only what it needs: no terminal, no
 * fd it may read but its input, no growing files, and a log that the
 * broker reads, bounds and escapes.
 *
 *   log   (fault injection) a worker floods its stderr: one 8 MiB line
 *         without a newline, a line of control characters and invalid
 *         UTF-8, 20000 lines in a burst, then demuxes on to its end. Its
 *         lines arrive in the broker's log prefixed "stream N (victim): ",
 *         escaped (no byte below 0x20 but the newline, valid UTF-8, the
 *         exact escaped line checked), long lines cut, the excess dropped
 *         and counted; the broker's RSS peak stays within 4 MiB of where
 *         it was, the log within 256 KiB; a stream beside it is dumped
 *         exactly as ffprobe, and the flooding stream ends eof.
 *   fds   the broker's stderr is a terminal (a pty): neither a stream's
 *         worker nor the idle spare holds any terminal; the worker's fd 1
 *         (readiness) is closed once it runs (a copy of fd 0 takes its
 *         number), its fd 2 is a pipe of its
 *         own, and its RLIMIT_FSIZE is 0. (The fd table is read in /proc,
 *         which a non-dumpable worker shows only to root; without root
 *         that part says so and is skipped.)
 *
 * usage: test_confine SHMDEMUXD WORKER BIN_DIR MEDIA_DIR FFPROBE_PACKETS CASE
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "broker_testlib.h"
#include "client_testlib.h"
#include "shmdemux.h"

static struct tl_media_env env;

/* A "Name:   N kB" field of /proc/PID/status, in kB. */
static long
status_kb(pid_t pid, const char *name)
{
	char path[64], line[256];
	size_t len = strlen(name);
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	CHECK(f != NULL);
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, name, len) == 0 && line[len] == ':')
			kb = strtol(line + len + 1, NULL, 10);
	fclose(f);
	CHECK(kb >= 0);
	return kb;
}

static char *
slurp(const char *path, size_t *len)
{
	struct tl_text t = { 0 };
	char buf[65536];
	FILE *f = fopen(path, "r");
	size_t n;

	CHECK(f != NULL);
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		tl_text_append(&t, buf, n);
	fclose(f);
	tl_text_append(&t, "", 0);
	*len = t.len;
	return t.buf;
}

/* ---- log ---- */

struct reader {
	shmdemux_stream *st;
	long count;
	int code;
	pthread_t thr;
};

static void *
reader_main(void *arg)
{
	struct reader *r = arg;
	struct shmdemux_packet pkt;

	while ((r->code = shmdemux_read(r->st, &pkt, 60000)) == 0)
		r->count++;
	return NULL;
}

/* Nothing a terminal would act on: no control byte but the newline, no
 * DEL, valid UTF-8 (no overlong form, no surrogate, nothing past
 * U+10FFFF). Returns the offset of the first bad byte, or -1. */
static long
first_unsafe(const unsigned char *s, size_t len)
{
	for (size_t i = 0; i < len;) {
		unsigned c = s[i], n, cp;

		if (c < 0x80) {
			if ((c < 0x20 && c != '\n') || c == 0x7f)
				return (long)i;
			i++;
			continue;
		}
		n = c >= 0xf0 ? 3 : c >= 0xe0 ? 2 : c >= 0xc2 ? 1 : 0;
		if (n == 0 || c > 0xf4 || i + n >= len)
			return (long)i;
		cp = c & (0x3fu >> n);
		for (unsigned k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return (long)i;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
		    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
			return (long)i;
		i += n + 1;
	}
	return -1;
}

static void
expect_in_log(const char *log, const char *what)
{
	if (strstr(log, what) == NULL) {
		fprintf(stderr, "not in the broker's log: \"%s\"\nthe log "
			"(8 KiB at most):\n%.8192s\n", what, log);
		CHECK(0);
	}
}

static void
test_log(void)
{
	struct shmdemux_stream_info vi;
	struct tl_broker b;
	struct reader r = { 0 };
	shmdemux_conn *c = NULL;
	struct shmdemux_open_opts o;
	char victim[1024], bystander[1024], logpath[512], cmd[4096], want[512];
	char *log;
	size_t loglen;
	uint32_t vid, bid;
	long rss0, hwm1, bad;
	double t0, by_ms;
	int logfd;

#ifndef SHMDEMUX_FAULT_INJECTION
	fprintf(stderr, "SKIP: built without SHMDEMUX_FAULT_INJECTION\n");
	exit(77);
#endif
	snprintf(victim, sizeof(victim), "%s/h264_aac.ts", env.media);
	snprintf(bystander, sizeof(bystander), "%s/h264_aac.mkv", env.media);
	snprintf(logpath, sizeof(logpath), "%s/broker.log", tl_dir());
	logfd = open(logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	CHECK(logfd >= 0);
	CHECK(setenv("SHMDEMUX_FAULT", "flood:2:victim", 1) == 0);
	CHECK(tl_broker_start_err(&b, "s", env.worker, NULL, logfd) == 0);
	unsetenv("SHMDEMUX_FAULT");
	close(logfd);
	CHECK(shmdemux_connect(&c, b.sock, 0) == 0);

	shmdemux_open_opts_init(&o);
	o.name = "bystander";
	bid = tl_open_path(c, bystander, &o);
	o.name = "victim";
	vid = tl_open_path(c, victim, &o);
	/* lossless: the victim waits for its reader, the flood has not
	 * begun */
	rss0 = status_kb(b.pid, "VmRSS");
	CHECK(shmdemux_attach(c, vid, NULL, SHMDEMUX_START_OLDEST, 0,
			      &r.st) == 0);
	CHECK(pthread_create(&r.thr, NULL, reader_main, &r) == 0);

	/* the bystander, while the victim floods */
	t0 = (double)now_ns() / 1e6;
	snprintf(cmd, sizeof(cmd),
		 "'%s' '%s' > '%s/ref.csv' && "
		 "'%s/shmdemux' --socket '%s' dump %u --csv > '%s/out.csv' && "
		 "cmp '%s/ref.csv' '%s/out.csv'",
		 env.ffprobe_packets, bystander, tl_dir(), env.bin_dir,
		 b.sock, bid, tl_dir(), tl_dir(), tl_dir());
	CHECK(tl_run(cmd) == 0);
	by_ms = (double)now_ns() / 1e6 - t0;

	CHECK(pthread_join(r.thr, NULL) == 0);
	vi = tl_info_of(c, vid);
	hwm1 = status_kb(b.pid, "VmHWM");
	printf("victim: %ld packets, then %s; bystander identical to ffprobe "
	       "in %.0f ms; broker RSS %ld kB before the flood, peak %ld kB "
	       "after\n", r.count, shmdemux_strerror(r.code), by_ms, rss0,
	       hwm1);
	CHECK(r.code == SHMDEMUX_EOF);
	CHECK(vi.end_reason == SHMDEMUX_END_EOF);
	CHECK(vi.packets == (uint64_t)r.count && r.count > 2);
	CHECK(hwm1 - rss0 < 4096);
	shmdemux_detach(&r.st);
	shmdemux_disconnect(&c);
	CHECK(tl_broker_stop(&b) == 0);

	log = slurp(logpath, &loglen);
	printf("broker log: %zu bytes\n", loglen);
	snprintf(want, sizeof(want), "shmdemuxd: info: stream %u (victim): fault "
		 "injection: flood after 2 packets\n", vid);
	expect_in_log(log, want);
	snprintf(want, sizeof(want), "shmdemuxd: info: stream %u (victim): evil "
		 "\\x1b[31mred\\x1b[0m \\x07bell \\xff\\xfe bad "
		 "\xc3\xa9t\xc3\xa9 \\xed\\xa0\\x80 surrogate \\\\ \\x0d\n",
		 vid);
	expect_in_log(log, want);
	snprintf(want, sizeof(want), "shmdemuxd: info: stream %u (victim): "
		 "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", vid);
	expect_in_log(log, want);
	expect_in_log(log, "AAAA [cut]\n");
	snprintf(want, sizeof(want), "shmdemuxd: warning: stream %u (victim): "
		 "worker output: ", vid);
	expect_in_log(log, want);
	expect_in_log(log, " dropped");
	bad = first_unsafe((const unsigned char *)log, loglen);
	if (bad >= 0)
		fprintf(stderr, "unsafe byte 0x%02x at %ld of the log\n",
			(unsigned char)log[bad], bad);
	CHECK(bad < 0);
	CHECK(loglen < 256 * 1024);
	free(log);
}

/* ---- fds ---- */

/* fd's target in /proc/PID/fd, "" if it has none. */
static void
fd_link(pid_t pid, int fd, char *buf, size_t cap)
{
	char path[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)pid, fd);
	n = readlink(path, buf, cap - 1);
	buf[n > 0 ? n : 0] = '\0';
}

static int
is_terminal(const char *target)
{
	return strncmp(target, "/dev/pts/", 9) == 0 ||
	       strncmp(target, "/dev/tty", 8) == 0 ||
	       strcmp(target, "/dev/ptmx") == 0 ||
	       strcmp(target, "/dev/console") == 0;
}

/* Every fd of pid: none a terminal, none the broker's stderr. Returns 0
 * if /proc does not show them to us (a non-dumpable process, not root). */
static int
check_fds(pid_t pid, const char *broker_err, const char *what)
{
	char path[64], target[512];
	struct dirent *e;
	DIR *d;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	d = opendir(path);
	if (d == NULL && errno == EACCES)
		return 0;
	CHECK(d != NULL);
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		fd_link(pid, atoi(e->d_name), target, sizeof(target));
		printf("%s %d: fd %s -> %s\n", what, (int)pid, e->d_name,
		       target);
		if (is_terminal(target) || strcmp(target, broker_err) == 0)
			fprintf(stderr, "%s %d holds fd %s -> %s\n", what,
				(int)pid, e->d_name, target);
		CHECK(!is_terminal(target));
		CHECK(strcmp(target, broker_err) != 0);
		n++;
	}
	closedir(d);
	CHECK(n > 0);
	return 1;
}

static void
check_limits(pid_t pid)
{
	char path[64], line[256];
	int found = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/limits", (int)pid);
	f = fopen(path, "r");
	CHECK(f != NULL);
	while (fgets(line, sizeof(line), f) != NULL) {
		char soft[32], hard[32];

		if (strncmp(line, "Max file size", 13) != 0)
			continue;
		CHECK(sscanf(line + 13, "%31s %31s", soft, hard) == 2);
		printf("worker %d: Max file size %s %s\n", (int)pid, soft,
		       hard);
		CHECK(strcmp(soft, "0") == 0 && strcmp(hard, "0") == 0);
		found = 1;
	}
	fclose(f);
	CHECK(found);
}

/* The idle spare or fork server: the broker's child whose argv ends in
 * "--spare" or "--fork-server". */
static pid_t
find_spare(pid_t broker)
{
	pid_t kids[64];
	int n = tl_children(broker, kids, 64);

	for (int i = 0; i < n; i++)
		if (tl_argv_ends(kids[i], "--spare") ||
		    tl_argv_ends(kids[i], "--fork-server"))
			return kids[i];
	return 0;
}

static void
test_fds(void)
{
	struct shmdemux_stream_info info;
	struct shmdemux_open_opts o;
	struct shmdemux_packet pkt;
	struct tl_broker b;
	shmdemux_stream *st = NULL;
	shmdemux_conn *c = NULL;
	char file[1024], pts_path[256], target[512];
	long count = 1;
	pid_t pid, spare;
	uint32_t id;
	int master, pts, shown, ret;

	master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	CHECK(master >= 0);
	CHECK(grantpt(master) == 0 && unlockpt(master) == 0);
	CHECK(ptsname_r(master, pts_path, sizeof(pts_path)) == 0);
	pts = open(pts_path, O_RDWR | O_NOCTTY | O_CLOEXEC);
	CHECK(pts >= 0);
	/* the broker logs to a terminal, as when an operator starts it */
	CHECK(tl_broker_start_err(&b, "s", env.worker, NULL, pts) == 0);
	close(pts);
	fd_link(b.pid, 2, target, sizeof(target));
	printf("broker %d: stderr %s\n", (int)b.pid, target);
	CHECK(strcmp(target, pts_path) == 0);

	CHECK(shmdemux_connect(&c, b.sock, 0) == 0);
	snprintf(file, sizeof(file), "%s/h264_aac.mkv", env.media);
	shmdemux_open_opts_init(&o);
	o.ring_size = 64 * 1024; /* far smaller than the file */
	id = tl_open_path(c, file, &o);
	CHECK(shmdemux_attach(c, id, NULL, SHMDEMUX_START_OLDEST, 0,
			      &st) == 0);
	/* a packet read: the worker runs, sandboxed, and now waits for the
	 * ring while we hold it */
	CHECK(shmdemux_read(st, &pkt, 20000) == 0);
	info = tl_info_of(c, id);
	pid = info.worker_pid;
	CHECK(pid > 0);
	check_limits(pid);
	shown = check_fds(pid, pts_path, "worker");
	if (shown) {
		char input[512];

		/* readiness: closed once mapped; fd 1 is then a copy of the
		 * input, which keeps the numbers below the received wake
		 * pipes taken (worker_abi.h) */
		fd_link(pid, 0, input, sizeof(input));
		fd_link(pid, 1, target, sizeof(target));
		CHECK(strcmp(target, input) == 0);
		fd_link(pid, 2, target, sizeof(target));
		CHECK(strncmp(target, "pipe:", 5) == 0);
	} else {
		printf("worker %d: /proc/%d/fd not shown to this uid "
		       "(non-dumpable): fd table not checked\n", (int)pid,
		       (int)pid);
	}
	spare = find_spare(b.pid);
	CHECK(spare > 0);
	(void)check_fds(spare, pts_path, "spare or fork server");

	while ((ret = shmdemux_read(st, &pkt, 20000)) == 0)
		count++;
	CHECK(ret == SHMDEMUX_EOF);
	printf("stream read to its end: %ld packets\n", count);
	shmdemux_detach(&st);
	shmdemux_disconnect(&c);
	CHECK(tl_broker_stop(&b) == 0);
	close(master);
}

int
main(int argc, char **argv)
{
	static const struct tl_case cases[] = {
		{ "log", test_log },
		{ "fds", test_fds },
		{ NULL, NULL },
	};
	return tl_media_main(argc, argv, "h264_aac.mkv", 150, cases, &env);
}
