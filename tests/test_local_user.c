/*
 * test_local_user.c - another local user against a user's broker.
 *
 * usage: test_local_user SHMDEMUXD SHMDEMUX_CLI CASE
 *   socket   a process of another uid (65534) listens where the client
 *            looks for its broker, at a path given to the client and at
 *            the default location: the client refuses it before sending a
 *            byte, and says whose process answered and where
 *   dir      the default directory ($XDG_RUNTIME_DIR/shmdemux) owned by
 *            another uid, writable by others, or a symbolic link: the
 *            broker and the client refuse it and say why; a missing one is
 *            made private (0700) and used; without XDG_RUNTIME_DIR the
 *            default is /tmp/shmdemux-UID/shmdemux.sock
 *   stale    the socket and pidfile a SIGKILLed broker leaves do not stop
 *            the next broker, started by hand or by a client's autostart
 *   pidfile  a pidfile path that is a symbolic link, a hard link, a file
 *            of another uid, a FIFO or a directory is refused with the
 *            cause, and the file behind it is left as it was
 *
 * Playing the other user needs root (a forked child drops to uid 65534);
 * without it those parts skip (exit 77 when nothing else is left).
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "broker_testlib.h"
#include "rundir.h"
#include "shmdemux.h"

#define OTHER_UID 65534u /* nobody */

static const char *cli_bin, *broker_bin;
static char top[128]; /* inside tl_dir(), removed with it */

static void
need_root(const char *what)
{
	if (geteuid() == 0)
		return;
	fprintf(stderr, "SKIP: %s needs root (a child plays another user by "
		"switching to uid %u)\n", what, OTHER_UID);
	exit(77);
}

static void
path_in(char *buf, size_t cap, const char *rel)
{
	int n = snprintf(buf, cap, "%s/%s", top, rel);

	CHECK(n > 0 && (size_t)n < cap);
}

static void
make_dir(const char *p, mode_t mode)
{
	CHECK(mkdir(p, 0700) == 0);
	CHECK(chmod(p, mode) == 0); /* past the umask */
}

static void
become_other_user(void)
{
	if (setgroups(0, NULL) < 0 || setgid(OTHER_UID) < 0 ||
	    setuid(OTHER_UID) < 0)
		_exit(120);
}

static int
read_file(const char *p, char *buf, size_t cap)
{
	int fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, cap - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return (int)n;
}

static void
write_file(const char *p, const char *s)
{
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	CHECK(fd >= 0);
	CHECK(write(fd, s, strlen(s)) == (ssize_t)strlen(s));
	close(fd);
}

static int
exists(const char *p)
{
	struct stat st;

	return lstat(p, &st) == 0;
}

/* ---- a fake broker run by another uid ---- */

struct fake {
	pid_t pid;
	int stop;    /* closing it tells the fake to report and exit */
	int result;  /* bytes it received, as text */
};

/* Listen on each path as OTHER_UID (making mkdir_first first, its own,
 * mode 0777, when not NULL); count every byte any client sends; drop each
 * connection after its first message, so that a client that does talk
 * gets an error instead of waiting for a reply. */
static void
fake_start(struct fake *f, const char *const *paths, int npaths,
	   const char *mkdir_first)
{
	int ready[2], stop[2], res[2];
	char b;

	CHECK(pipe2(ready, O_CLOEXEC) == 0 && pipe2(stop, O_CLOEXEC) == 0 &&
	      pipe2(res, O_CLOEXEC) == 0);
	f->pid = fork();
	CHECK(f->pid >= 0);
	if (f->pid == 0) {
		struct pollfd p[8];
		unsigned long total = 0;
		char msg[CTL_MAX_MSG], out[32];

		become_other_user();
		close(ready[0]);
		close(stop[1]);
		close(res[0]);
		if (mkdir_first != NULL && (mkdir(mkdir_first, 0777) < 0 ||
		    chmod(mkdir_first, 0777) < 0))
			_exit(121);
		for (int i = 0; i < npaths && i < 7; i++) {
			struct sockaddr_un sun = { .sun_family = AF_UNIX };

			p[i].fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
			p[i].events = POLLIN;
			snprintf(sun.sun_path, sizeof(sun.sun_path), "%s",
				 paths[i]);
			if (p[i].fd < 0 || bind(p[i].fd,
			    (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
			    chmod(paths[i], 0777) < 0 ||
			    listen(p[i].fd, 16) < 0)
				_exit(122);
		}
		p[npaths].fd = stop[0];
		p[npaths].events = POLLIN;
		if (write(ready[1], "R", 1) != 1)
			_exit(123);
		for (;;) {
			if (poll(p, (nfds_t)npaths + 1, -1) < 0)
				continue;
			if (p[npaths].revents != 0)
				break;
			for (int i = 0; i < npaths; i++) {
				int c;
				ssize_t n;

				if (!(p[i].revents & POLLIN))
					continue;
				c = accept(p[i].fd, NULL, NULL);
				if (c < 0)
					continue;
				/* until the client sends or goes away */
				n = recv(c, msg, sizeof(msg), 0);
				if (n > 0)
					total += (unsigned long)n;
				close(c);
			}
		}
		snprintf(out, sizeof(out), "%lu", total);
		(void)!write(res[1], out, strlen(out));
		_exit(0);
	}
	close(ready[1]);
	close(stop[0]);
	close(res[1]);
	CHECK(read(ready[0], &b, 1) == 1);
	close(ready[0]);
	f->stop = stop[1];
	f->result = res[0];
}

/* Stop the fake; the bytes clients sent it. */
static unsigned long
fake_stop(struct fake *f)
{
	char buf[32];
	ssize_t n;
	int st;

	close(f->stop);
	n = read(f->result, buf, sizeof(buf) - 1);
	close(f->result);
	CHECK(n > 0);
	buf[n] = '\0';
	CHECK(waitpid(f->pid, &st, 0) == f->pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	return strtoul(buf, NULL, 10);
}

static int
list_cb(const struct shmdemux_stream_info *i, void *arg)
{
	(void)i;
	(void)arg;
	return 0;
}

/* The library's verdict on a socket: connect, and if that worked, talk. */
static int
lib_connect(const char *path, unsigned flags)
{
	shmdemux_conn *c = NULL;
	int ret = shmdemux_connect(&c, path, flags);

	if (ret == 0) {
		fprintf(stderr, "connected to %s; sending LIST\n",
			path != NULL ? path : "the default socket");
		ret = shmdemux_list(c, list_cb, NULL);
		shmdemux_disconnect(&c);
		return ret == 0 ? 1 : ret; /* 1: a broker answered */
	}
	fprintf(stderr, "connect %s: %s: %s\n", path != NULL ? path :
		"(default)", shmdemux_strerror(ret), shmdemux_connect_error());
	return ret;
}

static void
check_refusal(const char *err, const char *what)
{
	char uid[32];

	snprintf(uid, sizeof(uid), "uid %u", OTHER_UID);
	fprintf(stderr, "refused: %s", err);
	CHECK(strstr(err, uid) != NULL);
	CHECK(strstr(err, what) != NULL);
}

static void
test_socket(void)
{
	char pub[256], sock[256], xdg_sock[256], old_default[256], dir[256];
	char err[4096];
	const char *ls_at[] = { "--socket", sock, "ls", NULL };
	const char *ls[] = { "ls", NULL };
	const char *both[2];
	struct fake f;
	pid_t kids[8];

	need_root("playing another user");
	path_in(pub, sizeof(pub), "pub");
	make_dir(pub, 01777); /* like /tmp */
	path_in(sock, sizeof(sock), "pub/squat.sock");

	/* 1. A path the client was given. */
	both[0] = sock;
	fake_start(&f, both, 1, NULL);
	CHECK(lib_connect(sock, 0) == SHMDEMUX_EUNTRUSTED);
	check_refusal(shmdemux_connect_error(), sock);
	CHECK(tl_run_capture(cli_bin, ls_at, err, sizeof(err)) == 1);
	check_refusal(err, sock);
	CHECK(fake_stop(&f) == 0);

	/* 2. The default location, XDG_RUNTIME_DIR shared with the other
	 * user: it made the directory the default socket lives in, and also
	 * listens where the default used to be. */
	path_in(dir, sizeof(dir), "pub/shmdemux");
	path_in(xdg_sock, sizeof(xdg_sock), "pub/shmdemux/shmdemux.sock");
	path_in(old_default, sizeof(old_default), "pub/shmdemux.sock");
	both[0] = xdg_sock;
	both[1] = old_default;
	unsetenv("SHMDEMUX_SOCKET");
	CHECK(setenv("XDG_RUNTIME_DIR", pub, 1) == 0);
	fake_start(&f, both, 2, dir);
	CHECK(lib_connect(NULL, SHMDEMUX_CONNECT_AUTOSTART) ==
	      SHMDEMUX_EUNTRUSTED);
	check_refusal(shmdemux_connect_error(), dir);
	CHECK(tl_run_capture(cli_bin, ls, err, sizeof(err)) == 1);
	check_refusal(err, dir);
	CHECK(fake_stop(&f) == 0);
	/* no broker was started there */
	CHECK(tl_children(getpid(), kids, 8) == 0);
	unsetenv("XDG_RUNTIME_DIR");
}

/* `shmdemuxd --daemon ARGS...`: the status of its first process, which
 * exits once the socket listens or setup failed; stderr in err. The
 * daemon, if it started, keeps the file, not a pipe the caller would wait
 * on. */
static int
run_daemon(const char *const *args, char *err, size_t cap)
{
	const char *argv[16];
	char path[300];
	int fd, n = 0, st;
	pid_t pid;

	argv[n++] = broker_bin;
	argv[n++] = "--daemon";
	for (int i = 0; args[i] != NULL && n < 15; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	snprintf(path, sizeof(path), "%s/stderr", tl_dir());
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	CHECK(fd >= 0);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		dup2(fd, 2);
		execv(broker_bin, (char **)argv);
		_exit(127);
	}
	close(fd);
	st = tl_wait_child(pid, 30000);
	CHECK(st >= 0 && WIFEXITED(st));
	CHECK(read_file(path, err, cap) >= 0);
	unlink(path);
	if (WEXITSTATUS(st) != 0)
		fprintf(stderr, "shmdemuxd exited %d: %s", WEXITSTATUS(st),
			err);
	return WEXITSTATUS(st);
}

/* Start the broker at its default location. */
static int
broker_default(char *err, size_t cap)
{
	const char *args[] = { NULL };

	return run_daemon(args, err, cap);
}

static pid_t
pid_in(const char *pidfile)
{
	char buf[32];

	CHECK(read_file(pidfile, buf, sizeof(buf)) > 0);
	return (pid_t)atoi(buf);
}

/* Signal the broker whose pid is in pidfile and reap it: SIGTERM must
 * end it cleanly, SIGKILL leaves what a crash leaves. */
static void
end_broker(const char *pidfile, int sig)
{
	pid_t pid = pid_in(pidfile);
	int st;

	CHECK(kill(pid, sig) == 0);
	st = tl_wait_child(pid, 40000);
	if (sig == SIGTERM)
		CHECK(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	else
		CHECK(st >= 0 && WIFSIGNALED(st) && WTERMSIG(st) == sig);
}

static void
dir_refused(const char *xdg, const char *why)
{
	char err[4096], sock[512], old[512];

	CHECK(setenv("XDG_RUNTIME_DIR", xdg, 1) == 0);
	CHECK(broker_default(err, sizeof(err)) == 1);
	CHECK(strstr(err, xdg) != NULL && strstr(err, why) != NULL);
	snprintf(sock, sizeof(sock), "%s/shmdemux/shmdemux.sock", xdg);
	snprintf(old, sizeof(old), "%s/shmdemux.sock", xdg);
	CHECK(!exists(sock) && !exists(old));
	CHECK(lib_connect(NULL, 0) == SHMDEMUX_EUNTRUSTED);
	CHECK(strstr(shmdemux_connect_error(), why) != NULL);
}

static void
test_dir(void)
{
	char x[256], d[512], real[512], sock[1024], pidfile[1100], err[4096];
	struct stat st;

	unsetenv("SHMDEMUX_SOCKET");
	CHECK(setenv("SHMDEMUX_BROKER", tl_dir(), 1) == 0); /* never used */

	/* Without XDG_RUNTIME_DIR: a directory of the user's own in /tmp. */
	unsetenv("XDG_RUNTIME_DIR");
	CHECK(rundir_default_socket(sock, sizeof(sock)) == 0);
	snprintf(d, sizeof(d), "/tmp/shmdemux-%u/shmdemux.sock",
		 (unsigned)geteuid());
	CHECK(strcmp(sock, d) == 0);

	/* Writable by others, by the group, a symbolic link. */
	path_in(x, sizeof(x), "x-world");
	make_dir(x, 0700);
	snprintf(d, sizeof(d), "%s/shmdemux", x);
	make_dir(d, 0777);
	dir_refused(x, "writable");
	path_in(x, sizeof(x), "x-group");
	make_dir(x, 0700);
	snprintf(d, sizeof(d), "%s/shmdemux", x);
	make_dir(d, 0770);
	dir_refused(x, "writable");
	path_in(x, sizeof(x), "x-link");
	make_dir(x, 0700);
	snprintf(real, sizeof(real), "%s/real", x);
	make_dir(real, 0700);
	snprintf(d, sizeof(d), "%s/shmdemux", x);
	CHECK(symlink(real, d) == 0);
	dir_refused(x, "symbolic link");
	snprintf(sock, sizeof(sock), "%s/shmdemux.sock", real);
	CHECK(!exists(sock));
	/* Not a directory at all. */
	path_in(x, sizeof(x), "x-file");
	make_dir(x, 0700);
	snprintf(d, sizeof(d), "%s/shmdemux", x);
	write_file(d, "");
	dir_refused(x, "not a directory");

	/* Another user's. */
	if (geteuid() == 0) {
		path_in(x, sizeof(x), "x-other");
		make_dir(x, 0700);
		snprintf(d, sizeof(d), "%s/shmdemux", x);
		make_dir(d, 0700);
		CHECK(chown(d, OTHER_UID, OTHER_UID) == 0);
		dir_refused(x, "uid 65534");
	} else {
		fprintf(stderr, "not root: the case of a directory owned by "
			"another uid is left out\n");
	}

	/* Missing: made private, then used by broker and client alike. */
	path_in(x, sizeof(x), "x-new");
	make_dir(x, 0700);
	CHECK(setenv("XDG_RUNTIME_DIR", x, 1) == 0);
	CHECK(broker_default(err, sizeof(err)) == 0);
	snprintf(d, sizeof(d), "%s/shmdemux", x);
	CHECK(lstat(d, &st) == 0 && S_ISDIR(st.st_mode));
	CHECK((st.st_mode & 07777) == 0700 && st.st_uid == geteuid());
	snprintf(sock, sizeof(sock), "%s/shmdemux.sock", d);
	CHECK(lstat(sock, &st) == 0 && S_ISSOCK(st.st_mode));
	CHECK((st.st_mode & 0777) == 0600);
	snprintf(pidfile, sizeof(pidfile), "%s.pid", sock);
	CHECK(lstat(pidfile, &st) == 0 && S_ISREG(st.st_mode));
	CHECK((st.st_mode & 0777) == 0600);
	CHECK(lib_connect(NULL, 0) == 1);
	end_broker(pidfile, SIGTERM);
	CHECK(!exists(sock) && !exists(pidfile));
	unsetenv("XDG_RUNTIME_DIR");
}

static void
test_stale(const char *shmdemuxd)
{
	char x[256], sock[512], pidfile[600], err[4096];
	pid_t first, second;

	unsetenv("SHMDEMUX_SOCKET");
	CHECK(setenv("SHMDEMUX_BROKER", shmdemuxd, 1) == 0);
	path_in(x, sizeof(x), "stale");
	make_dir(x, 0700);
	CHECK(setenv("XDG_RUNTIME_DIR", x, 1) == 0);
	snprintf(sock, sizeof(sock), "%s/shmdemux/shmdemux.sock", x);
	snprintf(pidfile, sizeof(pidfile), "%s.pid", sock);

	CHECK(broker_default(err, sizeof(err)) == 0);
	first = pid_in(pidfile);
	end_broker(pidfile, SIGKILL);
	CHECK(exists(sock) && exists(pidfile)); /* what a SIGKILL leaves */
	CHECK(lib_connect(NULL, 0) == -ECONNREFUSED);

	/* by hand */
	CHECK(broker_default(err, sizeof(err)) == 0);
	second = pid_in(pidfile);
	CHECK(second != first);
	CHECK(lib_connect(NULL, 0) == 1);
	end_broker(pidfile, SIGKILL);

	/* by a client's autostart */
	CHECK(lib_connect(NULL, SHMDEMUX_CONNECT_AUTOSTART) == 1);
	CHECK(pid_in(pidfile) != second);
	end_broker(pidfile, SIGTERM);
	unsetenv("XDG_RUNTIME_DIR");
}

/* The broker given pidfile p must refuse it, naming why, and leave target
 * as it was. */
static void
pidfile_refused(const char *p, const char *why, const char *target,
		const char *content)
{
	char sock[300], err[4096], now[256];
	const char *args[] = { "--socket", sock, "--pidfile", p, NULL };

	path_in(sock, sizeof(sock), "pf.sock");
	CHECK(run_daemon(args, err, sizeof(err)) == 1);
	CHECK(strstr(err, p) != NULL && strstr(err, why) != NULL);
	CHECK(!exists(sock));
	if (target != NULL) {
		CHECK(read_file(target, now, sizeof(now)) >= 0);
		CHECK(strcmp(now, content) == 0);
	}
}

static void
test_pidfile(void)
{
	static const char precious[] = "not the broker's: keep me\n";
	char target[256], p[256], nowhere[256];

	path_in(target, sizeof(target), "target");
	write_file(target, precious);

	path_in(p, sizeof(p), "sym.pid");
	CHECK(symlink(target, p) == 0);
	pidfile_refused(p, "symbolic link", target, precious);
	/* a dangling one is not created through either */
	path_in(p, sizeof(p), "dangling.pid");
	path_in(nowhere, sizeof(nowhere), "nowhere");
	CHECK(symlink(nowhere, p) == 0);
	pidfile_refused(p, "symbolic link", NULL, NULL);
	CHECK(!exists(nowhere));

	path_in(p, sizeof(p), "hard.pid");
	CHECK(link(target, p) == 0);
	pidfile_refused(p, "link", target, precious);

	path_in(p, sizeof(p), "fifo.pid");
	CHECK(mkfifo(p, 0600) == 0);
	pidfile_refused(p, "not a regular file", NULL, NULL);

	path_in(p, sizeof(p), "dir.pid");
	make_dir(p, 0700);
	pidfile_refused(p, "not a regular file", NULL, NULL);

	if (geteuid() == 0) {
		path_in(p, sizeof(p), "other.pid");
		write_file(p, "12345\n");
		CHECK(chown(p, OTHER_UID, OTHER_UID) == 0);
		pidfile_refused(p, "uid 65534", p, "12345\n");
	} else {
		fprintf(stderr, "not root: the case of a pidfile owned by "
			"another uid is left out\n");
	}
}

int
main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: test_local_user SHMDEMUXD SHMDEMUX_CLI "
			"socket|dir|stale|pidfile\n");
		return 2;
	}
	broker_bin = argv[1];
	cli_bin = argv[2];
	tl_init(argv[1], 100);
	/* The other user must reach directories inside the private one. */
	CHECK(chmod(tl_dir(), 0711) == 0);
	snprintf(top, sizeof(top), "%s/t", tl_dir());
	CHECK(mkdir(top, 0711) == 0);
	if (strcmp(argv[3], "socket") == 0)
		test_socket();
	else if (strcmp(argv[3], "dir") == 0)
		test_dir();
	else if (strcmp(argv[3], "stale") == 0)
		test_stale(argv[1]);
	else if (strcmp(argv[3], "pidfile") == 0)
		test_pidfile();
	else
		return 2;
	tl_check_shm();
	printf("test_local_user %s: ok\n", argv[3]);
	return 0;
}
