/*
 * test_broker_start.c - shmdemuxd start and stop: socket mode, pidfile,
 * SIGTERM exit, a second broker refused, stale sockets replaced, option
 * errors, --idle-exit.
 *
 * usage: test_broker_start SHMDEMUXD
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "broker_testlib.h"

static int
exists(const char *p)
{
	struct stat st;

	return lstat(p, &st) == 0;
}

static int
lines(const char *s)
{
	int n = 0;

	for (; *s != '\0'; s++)
		n += *s == '\n';
	return n;
}

static void
answers_list(const char *sock)
{
	struct ctl_stream_info info[4];
	int fd = tl_connect(sock);

	CHECK(fd >= 0);
	CHECK(tl_list(fd, info, 4) == 0);
	close(fd);
}

static void
test_start_stop(void)
{
	struct tl_broker b;
	struct stat st;
	char err[4096];
	const char *again[] = { "--socket", NULL, NULL };
	const char *other_pid[] = { "--socket", NULL, "--pidfile", NULL, NULL };
	char pf[300];

	CHECK(tl_broker_start(&b, "s", NULL, NULL) == 0);
	CHECK(stat(b.sock, &st) == 0);
	CHECK(S_ISSOCK(st.st_mode));
	CHECK((st.st_mode & 0777) == 0600);
	CHECK(stat(b.pidfile, &st) == 0);
	answers_list(b.sock);

	/* Same socket, same pidfile: the pidfile lock refuses. */
	again[1] = b.sock;
	CHECK(tl_run_broker(again, err, sizeof(err)) == 1);
	CHECK(strstr(err, "already running") != NULL);
	/* Same socket, another pidfile: the socket answers, refused. */
	snprintf(pf, sizeof(pf), "%s/other.pid", tl_dir());
	other_pid[1] = b.sock;
	other_pid[3] = pf;
	CHECK(tl_run_broker(other_pid, err, sizeof(err)) == 1);
	CHECK(strstr(err, "already running") != NULL);
	CHECK(!exists(pf));
	answers_list(b.sock);

	CHECK(tl_broker_stop(&b) == 0);
	CHECK(!exists(b.sock));
	CHECK(!exists(b.pidfile));
}

static void
test_stale(void)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct tl_broker b;
	char path[256], err[4096];
	const char *args[] = { "--socket", path, NULL };
	int fd;
	FILE *f;

	/* A socket file nobody listens on, as a killed broker leaves. */
	snprintf(path, sizeof(path), "%s/stale", tl_dir());
	CHECK(strlen(path) < sizeof(sun.sun_path));
	memcpy(sun.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	CHECK(fd >= 0);
	CHECK(bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0);
	close(fd);
	CHECK(tl_broker_start(&b, "stale", NULL, NULL) == 0);
	answers_list(b.sock);
	CHECK(tl_broker_stop(&b) == 0);
	CHECK(!exists(path));

	/* A regular file in the way is not ours to remove. */
	f = fopen(path, "w");
	CHECK(f != NULL);
	fclose(f);
	CHECK(tl_run_broker(args, err, sizeof(err)) == 1);
	CHECK(strstr(err, "not a socket") != NULL);
	CHECK(exists(path));
	unlink(path);
}

static void
test_options(void)
{
	char err[8192];
	const char *bad[] = { "--no-such-option", NULL };
	const char *badsize[] = { "--ring-size", "12X", NULL };
	const char *missing[] = { "--socket", NULL };
	const char *extra[] = { "stray", NULL };
	const char *help[] = { "--help", NULL };
	const char *version[] = { "--version", NULL };
	const char *nodir[] = { "--daemon", "--socket",
				"/nonexistent-dir/x/s", NULL };

	CHECK(tl_run_broker(bad, err, sizeof(err)) == 2);
	CHECK(lines(err) == 1 && strstr(err, "--no-such-option") != NULL);
	CHECK(tl_run_broker(badsize, err, sizeof(err)) == 2);
	CHECK(lines(err) == 1);
	CHECK(tl_run_broker(missing, err, sizeof(err)) == 2);
	CHECK(lines(err) == 1);
	CHECK(tl_run_broker(extra, err, sizeof(err)) == 2);
	CHECK(lines(err) == 1);
	/* --help and --version print on stdout (inherited), exit 0. */
	CHECK(tl_run_broker(help, err, sizeof(err)) == 0);
	CHECK(tl_run_broker(version, err, sizeof(err)) == 0);
	/* --daemon reports a setup failure through its exit status. */
	CHECK(tl_run_broker(nodir, err, sizeof(err)) == 1);
	CHECK(strstr(err, "nonexistent-dir") != NULL);
}

static void
test_help_complete(const char *shmdemuxd)
{
	static const char *const documented[] = {
		"--socket", "--daemon", "--pidfile", "--ring-size",
		"--max-consumers", "--lag-timeout", "--idle-exit", "--verbose",
		"--help", "--version",
	};
	char cmd[512], out[8192];
	size_t n;
	FILE *p;

	snprintf(cmd, sizeof(cmd), "'%s' --help", shmdemuxd);
	p = popen(cmd, "r");
	CHECK(p != NULL);
	n = fread(out, 1, sizeof(out) - 1, p);
	out[n] = '\0';
	CHECK(pclose(p) == 0);
	for (size_t i = 0; i < sizeof(documented) / sizeof(*documented); i++)
		CHECK(strstr(out, documented[i]) != NULL);
}

static void
test_idle_exit(void)
{
	struct tl_broker b;
	const char *args[] = { "--idle-exit", "2", NULL };
	int fd, st;

	CHECK(tl_broker_start(&b, "idle", NULL, args) == 0);
	/* A connection keeps it alive; the idle clock starts once it goes. */
	fd = tl_connect(b.sock);
	CHECK(fd >= 0);
	CHECK(tl_wait_child(b.pid, 2500) == -1);
	answers_list(b.sock);
	close(fd);
	st = tl_wait_child(b.pid, 6000);
	CHECK(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	CHECK(!exists(b.sock));
	CHECK(!exists(b.pidfile));
}

int
main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: test_broker_start SHMDEMUXD\n");
		return 2;
	}
	tl_init(argv[1], 60);
	test_start_stop();
	test_stale();
	test_options();
	test_help_complete(argv[1]);
	test_idle_exit();
	tl_check_shm();
	printf("test_broker_start: ok\n");
	return 0;
}
