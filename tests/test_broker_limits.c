/*
 * test_broker_limits.c - the broker's own resources (memory, descriptors,
 * the open deadline) against clients and sources that would exhaust them.
 *
 * usage: test_broker_limits SHMDEMUXD FAKECHILD WORKER CLI CASE
 *   slow-clients    200 clients send LIST in a loop and never read, with
 *                   100 streams listed: the broker's RSS stays bounded,
 *                   each of them is dropped after --reply-timeout, other
 *                   clients are served meanwhile, and the memory goes back
 *   fd-raise        soft fd limit 128, hard 4096: the broker raises its
 *                   soft limit and runs 200 streams at once
 *   fd-limit        soft = hard = 128: the OPEN the limit cannot take is
 *                   refused with a message naming the limit, the broker
 *                   keeps serving, and opens again once streams are closed
 *   fd-release      streams opened, read and ended in a loop under a limit
 *                   of 128: with --keep-ended 0 the broker's fd count stays
 *                   flat over 60 (3 fds each if kept: 180); by default
 *                   ended rings are released when descriptors run short
 *                   (32 stay free), so 40 all open; an ended stream nobody
 *                   has read keeps its records
 *   fd-readers      soft = hard = 128: streams that wait for 4 readers
 *                   each are admitted only with room for those readers'
 *                   descriptors: every one attaches, and the refusal
 *                   names the readers awaited
 *   fd-hard-worker  soft = hard = 128 with the real WORKER: a stream of a
 *                   WAV file runs to its end (eof, every packet read);
 *                   the worker's sandbox takes the hard limit it was
 *                   given instead of asking for more (a room for a wake
 *                   pipe per consumer slot) and failing
 *   never-readable  a FIFO without a writer, an eventfd, a pty master and a
 *                   pty slave with nothing to read each end open-failed "no
 *                   input within N ms" at --open-timeout; a source that
 *                   gave a few bytes and went quiet while opening ends
 *                   watchdog
 *   conn-cap        --max-connections 4 held by idle clients: one more
 *                   client is told why through the library (list, attach:
 *                   SHMDEMUX_EREFUSED, "broker refused the connection: too
 *                   many connections (4)") and the CLI (ls, open: exit 1,
 *                   that line on stderr); once an idle client leaves, the
 *                   next is served
 *
 * FAKECHILD (broker_fakechild) stands in for the worker where the media
 * does not matter; fd-hard-worker and never-readable run the real WORKER;
 * CLI is the shmdemux command.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "broker_testlib.h"
#include "shmdemux.h"

#define NLISTED 100
#define NSLOW   200

static char small[300]; /* a 4 KiB file */

/* A number from a /proc/PID file: the field after the line's key. */
static long
proc_field(pid_t pid, const char *file, const char *key, int skip)
{
	char path[64], line[512];
	long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
	f = fopen(path, "r");
	CHECK(f != NULL);
	while (fgets(line, sizeof(line), f) != NULL) {
		const char *p = line;

		if (strncmp(line, key, strlen(key)) != 0)
			continue;
		p += strlen(key);
		for (int i = 0; i <= skip; i++) {
			char *end;

			v = strtol(p, &end, 10);
			p = end;
		}
		break;
	}
	fclose(f);
	return v;
}

static long
rss_kib(pid_t pid)
{
	return proc_field(pid, "status", "VmRSS:", 0);
}

static long
nofile_soft(pid_t pid)
{
	return proc_field(pid, "limits", "Max open files", 0);
}

/* OPEN of small by path with the fake child doing mode; the id, or -code
 * with the broker's message in err. */
static int
open_small(int c, const char *mode, char *err, size_t cap)
{
	struct ctl_open o;

	tl_open_init(&o, CTL_SRC_PATH, small, mode);
	o.ring_size = 64 * 1024;
	return tl_open(c, &o, -1, NULL, err, cap);
}

static uint32_t
open_ok(int c, const char *mode)
{
	char err[CTL_MSG_LEN];
	int id = open_small(c, mode, err, sizeof(err));

	if (id <= 0)
		fprintf(stderr, "open: %s\n", err);
	CHECK(id > 0);
	return (uint32_t)id;
}

/* LIST requests, never read, until the socket takes no more. */
static int
flood(int fd)
{
	struct ctl_list l;
	int n = 0;

	memset(&l, 0, sizeof(l));
	ctl_hdr_init(&l.hdr, CTL_LIST, 5);
	while (n < 256 && send(fd, &l, sizeof(l), MSG_DONTWAIT) ==
	       (ssize_t)sizeof(l))
		n++;
	CHECK(n > 0 && (errno == EAGAIN || n == 256));
	return n;
}

/* 1 once the broker has closed fd's connection, 0 at the deadline. */
static int
hung_up(int fd, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = 0 };

	return poll(&p, 1, timeout_ms) == 1 && (p.revents & POLLHUP);
}

static void
test_slow_clients(const char *fake)
{
	static const char *const args[] = { "--spare-workers", "0",
		"--reply-timeout", "1000", NULL };
	static struct ctl_stream_info info[NLISTED + 8];
	struct tl_broker b;
	int c, c2, slow[NSLOW], sent = 0;
	long rss0, rss1, rss2;

	CHECK(tl_broker_start(&b, "s", fake, args) == 0);
	c = tl_connect(b.sock);
	CHECK(c >= 0);
	for (int i = 0; i < NLISTED; i++)
		open_ok(c, "eof");
	CHECK(tl_list(c, info, NLISTED + 8) == NLISTED);
	rss0 = rss_kib(b.pid);

	for (int i = 0; i < NSLOW; i++) {
		slow[i] = tl_connect(b.sock);
		CHECK(slow[i] >= 0);
		sent += flood(slow[i]);
	}
	/* Every slow client's requests were readable before this one's: the
	 * broker has dealt with them all when its reply arrives. */
	CHECK(tl_list(c, info, NLISTED + 8) == NLISTED);
	CHECK(tl_list(c, info, NLISTED + 8) == NLISTED);
	rss1 = rss_kib(b.pid);
	fprintf(stderr, "slow-clients: %d clients sent %d LIST requests and "
		"read nothing: broker RSS %ld KiB -> %ld KiB\n", NSLOW, sent,
		rss0, rss1);
	CHECK(rss1 - rss0 < 16 * 1024);

	/* Others are served meanwhile, new connections included. */
	c2 = tl_connect(b.sock);
	CHECK(c2 >= 0);
	CHECK(tl_list(c2, info, NLISTED + 8) == NLISTED);
	open_ok(c2, "eof");
	close(c2);

	/* ... and the slow ones are dropped. */
	for (int i = 0; i < NSLOW; i++) {
		CHECK(hung_up(slow[i], 15000));
		close(slow[i]);
	}
	CHECK(tl_list(c, info, NLISTED + 8) == NLISTED + 1);
	rss2 = rss_kib(b.pid);
	fprintf(stderr, "slow-clients: all dropped; broker RSS %ld KiB\n",
		rss2);
	CHECK(rss2 - rss0 < 8 * 1024);
	close(c);
	CHECK(tl_broker_stop(&b) == 0);
}

/* A broker over the fake, started under RLIMIT_NOFILE soft/hard, no spare.
 * The fake's "hang" makes no progress on a file that is all input: no
 * watchdog that would not wait for 200 slow starts (sanitizer builds). */
static int
start_limited(struct tl_broker *b, const char *fake, unsigned long soft,
	      unsigned long hard)
{
	static const char *const args[] = { "--spare-workers", "0",
		"--watchdog", "600000", NULL };
	int c;

	tl_broker_nofile(soft, hard);
	CHECK(tl_broker_start(b, "s", fake, args) == 0);
	tl_broker_nofile(0, 0);
	c = tl_connect(b->sock);
	CHECK(c >= 0);
	return c;
}

/* LIST over c: exactly n streams, every one with its worker running. */
static void
all_running(int c, int n)
{
	static struct ctl_stream_info info[256];

	CHECK(tl_list(c, info, 256) == n);
	for (int i = 0; i < n; i++) {
		if (info[i].end_reason != SD_END_NONE)
			fprintf(stderr, "stream %u: %s: %s\n",
				info[i].stream_id,
				sd_end_reason_name(info[i].end_reason),
				info[i].end_msg);
		CHECK(info[i].end_reason == SD_END_NONE &&
		      info[i].worker_pid > 0);
	}
}

static void
test_fd_raise(const char *fake)
{
	struct tl_broker b;
	int c = start_limited(&b, fake, 128, 4096);

	fprintf(stderr, "fd-raise: broker soft fd limit %ld\n",
		nofile_soft(b.pid));
	CHECK(nofile_soft(b.pid) == 4096);
	for (int i = 0; i < 200; i++)
		open_ok(c, "hang");
	all_running(c, 200);
	fprintf(stderr, "fd-raise: 200 streams running, broker holds %d "
		"fds\n", tl_count_fds(b.pid));
	close(c);
	CHECK(tl_broker_stop(&b) == 0);
}

/* Until the broker no longer lists stream id (10 s at most). */
static void
wait_unlisted(const char *sock, uint32_t id)
{
	struct ctl_stream_info x;
	int i;

	for (i = 0; i < 1000 && tl_info(sock, id, &x) == 1; i++)
		poll(NULL, 0, 10);
	CHECK(i < 1000);
}

static void
wait_exit(pid_t pid)
{
	int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
	struct pollfd p;

	if (pfd < 0) {
		CHECK(errno == ESRCH);
		return;
	}
	p.fd = pfd;
	p.events = POLLIN;
	CHECK(poll(&p, 1, 10000) == 1);
	close(pfd);
}

static void
test_fd_limit(const char *fake)
{
	static struct ctl_stream_info info[256];
	struct tl_broker b;
	char err[CTL_MSG_LEN] = "";
	int c, c2, n, id = 0, ids[200];

	c = start_limited(&b, fake, 128, 128);
	for (n = 0; n < 200; n++) {
		id = open_small(c, "hang", err, sizeof(err));
		if (id < 0)
			break;
		ids[n] = id;
	}
	fprintf(stderr, "fd-limit: open %d refused: %s (broker holds %d "
		"fds)\n", n + 1, err, tl_count_fds(b.pid));
	CHECK(n >= 5 && n < 200);
	CHECK(id == -EMFILE);
	CHECK(strstr(err, "too many open files (fd limit 128)") != NULL);
	/* every stream it took runs */
	all_running(c, n);
	/* it serves: this connection, and a new one */
	c2 = tl_connect(b.sock);
	CHECK(c2 >= 0);
	CHECK(tl_list(c2, info, 256) == n);
	close(c2);
	/* closing streams makes room */
	for (int i = 0; i < 3; i++) {
		CHECK(tl_info(b.sock, (uint32_t)ids[i], &info[0]) == 1);
		CHECK(tl_simple(c, CTL_CLOSE, (uint32_t)ids[i]) == 0);
		wait_exit(info[0].worker_pid);
		/* the broker unlists it once it has reaped the worker: an
		 * event that may come after our next request */
		wait_unlisted(b.sock, (uint32_t)ids[i]);
	}
	CHECK(tl_list(c, info, 256) == n - 3);
	open_ok(c, "hang");
	close(c);
	CHECK(tl_broker_stop(&b) == 0);
}

/* Streams that each wait for 4 readers, opened under soft = hard = 128
 * until one is refused: the refusal names the readers awaited, and every
 * stream taken gets its 4 readers, each holding a connection and a wake
 * pipe in the broker (admitted on its own descriptors alone, a stream
 * left some of its readers unable to attach: "Too many open files"). */
static void
test_fd_readers(const char *fake)
{
	enum { READERS = 4, MAX = 64 };
	static int conns[MAX * READERS];
	struct tl_broker b;
	char err[CTL_MSG_LEN] = "";
	int c, n, nconn = 0, ids[MAX + 1];

	c = start_limited(&b, fake, 128, 128);
	for (n = 0; n < MAX; n++) {
		struct ctl_open o;

		tl_open_init(&o, CTL_SRC_PATH, small, "hang");
		o.ring_size = 64 * 1024;
		o.wait_consumers = READERS;
		ids[n] = tl_open(c, &o, -1, NULL, err, sizeof(err));
		if (ids[n] < 0)
			break;
	}
	fprintf(stderr, "fd-readers: open %d refused: %s\n", n + 1, err);
	CHECK(n >= 2 && n < MAX);
	CHECK(ids[n] == -EMFILE);
	CHECK(strstr(err, "readers awaited") != NULL);
	for (int i = 0; i < n; i++) {
		for (int k = 0; k < READERS; k++) {
			int fds[CTL_MAX_FDS], fd = tl_connect(b.sock), slot;

			CHECK(fd >= 0);
			slot = tl_attach_all(fd, (uint32_t)ids[i],
					     CTL_ATTACH_WAKE, fds, NULL);
			if (slot < 0)
				fprintf(stderr, "fd-readers: stream %d, reader "
					"%d: error %d\n", ids[i], k + 1, slot);
			CHECK(slot >= 0);
			for (int f = 0; f < CTL_MAX_FDS; f++)
				if (fds[f] >= 0)
					close(fds[f]);
			conns[nconn++] = fd;
		}
	}
	printf("fd-readers: %d streams waiting for %d readers each taken "
	       "under a limit of 128, every reader attached; the next "
	       "refused (%s)\n", n, READERS, err);
	for (int i = 0; i < nconn; i++)
		close(conns[i]);
	close(c);
	CHECK(tl_broker_stop(&b) == 0);
}

/* Stream id's LIST record, over connection c. */
static struct ctl_stream_info
info_of(int c, uint32_t id)
{
	static struct ctl_stream_info all[512];
	int n = tl_list(c, all, 512);

	for (int i = 0; i < n; i++)
		if (all[i].stream_id == id)
			return all[i];
	CHECK(!"stream listed");
	return all[0];
}

/* Read stream id to its end (the fake's "eof" publishes nothing); then a
 * LIST round trip, so the broker has seen the reader's connection close. */
static void
read_to_end(const struct tl_broker *b, int c, uint32_t id)
{
	static struct ctl_stream_info info[512];

	CHECK(tl_consume(b->sock, id, 10000, NULL, NULL) == 0);
	CHECK(tl_list(c, info, 512) >= 1);
}

/* A stream of the fake's "eof", opened and read to its end. */
static void
open_read(const struct tl_broker *b, int c)
{
	read_to_end(b, c, open_ok(c, "eof"));
}

static void
test_fd_release(const char *fake)
{
	static const char *const now[] = { "--spare-workers", "0",
		"--keep-ended", "0", NULL };
	static const char *const dflt[] = { "--spare-workers", "0", NULL };
	static struct ctl_stream_info info[512];
	struct ctl_stream_info one;
	struct tl_broker b;
	char err[CTL_MSG_LEN];
	int c, base = 0, fds[2], n;

	/* Released as soon as read. */
	tl_broker_nofile(128, 128);
	CHECK(tl_broker_start(&b, "s", fake, now) == 0);
	c = tl_connect(b.sock);
	CHECK(c >= 0);
	for (int i = 0; i < 60; i++) {
		open_read(&b, c);
		if (i == 10)
			base = tl_count_fds(b.pid);
		if (i > 10)
			CHECK(tl_count_fds(b.pid) <= base);
	}
	fprintf(stderr, "fd-release: 60 streams opened, read, ended: broker "
		"fds %d at the 10th, %d at the 60th\n", base,
		tl_count_fds(b.pid));
	/* LIST still reports them all, and how each ended */
	n = tl_list(c, info, 512);
	CHECK(n == 60);
	for (int i = 0; i < n; i++)
		CHECK(info[i].state == RING_STATE_ENDED &&
		      info[i].end_reason == SD_END_EOF);
	/* a released stream cannot be attached */
	{
		int a = tl_connect(b.sock);

		CHECK(tl_attach(a, info[0].stream_id, 0, fds, NULL) ==
		      -ENODATA);
		close(a);
	}
	/* One nobody has read keeps its records, ended or not. */
	{
		int id = open_small(c, "eof", err, sizeof(err));

		CHECK(id > 0);
		one = info_of(c, (uint32_t)id);
		if (one.worker_pid > 0)
			wait_exit(one.worker_pid);
		one = info_of(c, (uint32_t)id);
		CHECK(one.state == RING_STATE_ENDED);
		read_to_end(&b, c, (uint32_t)id);
	}
	close(c);
	CHECK(tl_broker_stop(&b) == 0);

	/* By default, ended rings stay for late readers while descriptors
	 * allow, and go when an OPEN needs them. */
	CHECK(tl_broker_start(&b, "s", fake, dflt) == 0);
	tl_broker_nofile(0, 0);
	c = tl_connect(b.sock);
	CHECK(c >= 0);
	for (int i = 0; i < 40; i++) {
		open_read(&b, c);
		CHECK(tl_count_fds(b.pid) <= 128);
	}
	fprintf(stderr, "fd-release: default: 40 streams under a limit of "
		"128, broker fds %d\n", tl_count_fds(b.pid));
	close(c);
	CHECK(tl_broker_stop(&b) == 0);
}

/* Open a never-readable source (fd, or path when fd < 0); it must end
 * reason with msg in its end message. */
static void
ends_as(const struct tl_broker *b, int c, const char *what, int fd,
	const char *path, uint32_t reason, const char *msg)
{
	struct ctl_stream_info i;
	struct ctl_open o;
	char err[CTL_MSG_LEN];
	long n;
	int id;

	tl_open_init(&o, fd >= 0 ? CTL_SRC_FD : CTL_SRC_PATH, path, NULL);
	id = tl_open(c, &o, fd, NULL, err, sizeof(err));
	if (id <= 0)
		fprintf(stderr, "%s: open: %s\n", what, err);
	CHECK(id > 0);
	n = tl_consume(b->sock, (uint32_t)id, 20000, NULL, NULL);
	CHECK(tl_info(b->sock, (uint32_t)id, &i) == 1);
	fprintf(stderr, "never-readable: %s: %s, %s: %s\n", what,
		n >= 0 ? "ended" : strerror((int)-n),
		sd_end_reason_name(i.end_reason), i.end_msg);
	CHECK(n == 0);
	CHECK(i.end_reason == reason);
	CHECK(strstr(i.end_msg, msg) != NULL);
}

/* A WAV file of 1 s of 8 kHz mono 16-bit silence at path. */
static void
write_wav(const char *path)
{
	static unsigned char w[44 + 16000];
	static const unsigned char hdr[44] = {
		'R', 'I', 'F', 'F', 0xa4, 0x3e, 0, 0, 'W', 'A', 'V', 'E',
		'f', 'm', 't', ' ', 16, 0, 0, 0, 1, 0, 1, 0,
		0x40, 0x1f, 0, 0, 0x80, 0x3e, 0, 0, 2, 0, 16, 0,
		'd', 'a', 't', 'a', 0x80, 0x3e, 0, 0,
	};
	FILE *f = fopen(path, "w");

	memcpy(w, hdr, sizeof(hdr));
	CHECK(f != NULL && fwrite(w, 1, sizeof(w), f) == sizeof(w));
	CHECK(fclose(f) == 0);
}

static void
test_fd_hard_worker(const char *worker)
{
	struct tl_broker b;
	struct ctl_stream_info i;
	struct ctl_open o;
	char wav[300], err[CTL_MSG_LEN];
	long n;
	int c, id;

	snprintf(wav, sizeof(wav), "%s/silence.wav", tl_dir());
	write_wav(wav);
	tl_broker_nofile(128, 128);
	CHECK(tl_broker_start(&b, "s", worker, NULL) == 0);
	tl_broker_nofile(0, 0);
	c = tl_connect(b.sock);
	CHECK(c >= 0);
	/* the first from the spare, the next ones too or exec'd */
	for (int k = 0; k < 3; k++) {
		tl_open_init(&o, CTL_SRC_PATH, wav, NULL);
		id = tl_open(c, &o, -1, NULL, err, sizeof(err));
		if (id <= 0)
			fprintf(stderr, "fd-hard-worker: open: %s\n", err);
		CHECK(id > 0);
		n = tl_consume(b.sock, (uint32_t)id, 20000, NULL, NULL);
		CHECK(tl_info(b.sock, (uint32_t)id, &i) == 1);
		fprintf(stderr, "fd-hard-worker: stream %d: %ld records, %s: "
			"%s\n", id, n, sd_end_reason_name(i.end_reason),
			i.end_msg);
		CHECK(n > 0);
		CHECK(i.end_reason == SD_END_EOF && i.packets > 0);
	}
	close(c);
	CHECK(tl_broker_stop(&b) == 0);
}

/* The tty_nr field of /proc/PID/stat: 0 without a controlling terminal. */
static long
ctty_of(pid_t pid)
{
	char path[64], buf[1024], *p;
	long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	CHECK(f != NULL && fgets(buf, sizeof(buf), f) != NULL);
	fclose(f);
	p = strrchr(buf, ')'); /* past the command name */
	CHECK(p != NULL);
	CHECK(sscanf(p + 1, " %*c %*d %*d %*d %ld", &v) == 1);
	return v;
}

/* A pty, both ends open, nothing written either way. */
static void
pty_pair(int *master, int *slave)
{
	*master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	CHECK(*master >= 0 && grantpt(*master) == 0 &&
	      unlockpt(*master) == 0);
	*slave = open(ptsname(*master), O_RDWR | O_NOCTTY | O_CLOEXEC);
	CHECK(*slave >= 0);
}

static void
test_never_readable(const char *worker)
{
	static const char *const args[] = { "--open-timeout", "300", NULL };
	static unsigned char nullpkt[188] = { 0x47, 0x1f, 0xff, 0x10 };
	struct tl_broker b;
	struct ctl_open o;
	char fifo[300], err[CTL_MSG_LEN];
	int c, efd, m1, s1, m2, s2, push = -1, id;
	struct ctl_stream_info i;

	CHECK(tl_broker_start(&b, "s", worker, args) == 0);
	c = tl_connect(b.sock);
	CHECK(c >= 0);

	snprintf(fifo, sizeof(fifo), "%s/fifo", tl_dir());
	CHECK(mkfifo(fifo, 0600) == 0);
	ends_as(&b, c, "FIFO without a writer", -1, fifo,
		SD_END_OPEN_FAILED, "no input within 300 ms");

	efd = eventfd(0, EFD_CLOEXEC);
	CHECK(efd >= 0);
	ends_as(&b, c, "eventfd", efd, "eventfd", SD_END_OPEN_FAILED,
		"no input within 300 ms");
	close(efd);

	pty_pair(&m1, &s1);
	ends_as(&b, c, "pty master", m1, "pty-master", SD_END_OPEN_FAILED,
		"no input within 300 ms");
	pty_pair(&m2, &s2);
	ends_as(&b, c, "pty slave", s2, "pty-slave", SD_END_OPEN_FAILED,
		"no input within 300 ms");
	/* The broker reopened the terminals; none became its controlling
	 * terminal (whose hang-up or ^C would signal it). */
	CHECK(ctty_of(b.pid) == 0);
	close(m1);
	close(s1);
	close(m2);
	close(s2);

	/* One MPEG-TS packet, then nothing: the worker has input to open
	 * but not enough, and waits on an open, empty pipe. */
	tl_open_init(&o, CTL_SRC_PUSH, "", "mpegts");
	id = tl_open(c, &o, -1, &push, err, sizeof(err));
	CHECK(id > 0 && push >= 0);
	memset(nullpkt + 4, 0xff, sizeof(nullpkt) - 4);
	CHECK(write(push, nullpkt, sizeof(nullpkt)) == sizeof(nullpkt));
	CHECK(tl_consume(b.sock, (uint32_t)id, 20000, NULL, NULL) == 0);
	CHECK(tl_info(b.sock, (uint32_t)id, &i) == 1);
	fprintf(stderr, "never-readable: 188 bytes, then quiet: %s: %s\n",
		sd_end_reason_name(i.end_reason), i.end_msg);
	CHECK(i.end_reason == SD_END_WATCHDOG);
	CHECK(strstr(i.end_msg, "still opening the input after 300 ms") !=
	      NULL);
	close(push);

	/* the broker serves on */
	CHECK(tl_list(c, &i, 1) == 1);
	close(c);
	CHECK(tl_broker_stop(&b) == 0);
}

#define CAP_CONNS 4
#define CAP_WHY   "broker refused the connection: too many connections (4)"

static int
count_cb(const struct shmdemux_stream_info *i, void *arg)
{
	(void)i;
	++*(int *)arg;
	return 0;
}

/* The CLI's exit status and stderr for `shmdemux --socket SOCK args...`. */
static int
cli_run(const char *cli, const char *sock, const char *a1, const char *a2,
	char *err, size_t cap)
{
	const char *args[] = { "--socket", sock, a1, a2, NULL };

	return tl_run_capture(cli, args, err, cap);
}

/* Every client the broker holds has been dealt with up to now: a LIST
 * round trip on a held connection. A hangup that came before the request
 * was seen by the broker's loop in the same round at the latest, and a
 * connection made after the reply is accepted in a later one. */
static void
broker_caught_up(int c)
{
	static struct ctl_stream_info info[4];

	CHECK(tl_list(c, info, 4) == 1);
}

/* The refusal read as the reply to the first request, the broker's side
 * still open (the library does not wait for the close): a listener of
 * our own answers the way a broker at its limit does. */
static void
refusal_first(void)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct ctl_error e;
	shmdemux_conn *conn;
	int l, a, n = 0;

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/refuser",
		 tl_dir());
	l = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	CHECK(l >= 0);
	CHECK(bind(l, (struct sockaddr *)&sun, sizeof(sun)) == 0);
	CHECK(listen(l, 4) == 0);
	CHECK(shmdemux_connect(&conn, sun.sun_path, 0) == 0);
	a = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	CHECK(a >= 0);
	memset(&e, 0, sizeof(e));
	ctl_hdr_init(&e.hdr, CTL_ERROR, 0);
	e.code = -EUSERS;
	snprintf(e.msg, sizeof(e.msg), "too many connections (4)");
	CHECK(send(a, &e, sizeof(e), 0) == (ssize_t)sizeof(e));
	CHECK(shmdemux_list(conn, count_cb, &n) == SHMDEMUX_EREFUSED);
	CHECK(strcmp(shmdemux_conn_last_error(conn), CAP_WHY) == 0);
	shmdemux_disconnect(&conn);
	close(a);
	close(l);
	CHECK(unlink(sun.sun_path) == 0);
}

static void
test_conn_cap(const char *fake, const char *cli)
{
	static const char *const args[] = { "--spare-workers", "0",
		"--max-connections", "4", NULL };
	static struct ctl_stream_info info[4];
	struct tl_broker b;
	shmdemux_conn *conn;
	shmdemux_stream *s;
	int idle[CAP_CONNS], n;
	uint32_t id;
	char err[1024];

	CHECK(tl_broker_start(&b, "s", fake, args) == 0);
	/* Four idle clients, each accepted (a round trip), one stream. */
	for (int i = 0; i < CAP_CONNS; i++) {
		idle[i] = tl_connect(b.sock);
		CHECK(idle[i] >= 0);
		if (i == 0)
			id = open_ok(idle[i], "hang");
		CHECK(tl_list(idle[i], info, 4) == 1);
	}

	/* The library: the connect succeeds (the kernel queues it), the
	 * first request is refused with the broker's reason. */
	CHECK(shmdemux_connect(&conn, b.sock, 0) == 0);
	n = 0;
	CHECK(shmdemux_list(conn, count_cb, &n) == SHMDEMUX_EREFUSED);
	fprintf(stderr, "conn-cap: list: %s (%s)\n",
		shmdemux_conn_last_error(conn),
		shmdemux_strerror(SHMDEMUX_EREFUSED));
	CHECK(strcmp(shmdemux_conn_last_error(conn), CAP_WHY) == 0);
	CHECK(n == 0);
	shmdemux_disconnect(&conn);
	/* Refused and closed before the request is sent: the send fails
	 * (EPIPE), the reason still waits in the socket. */
	CHECK(shmdemux_connect(&conn, b.sock, 0) == 0);
	broker_caught_up(idle[0]);
	CHECK(shmdemux_list(conn, count_cb, &n) == SHMDEMUX_EREFUSED);
	CHECK(strcmp(shmdemux_conn_last_error(conn), CAP_WHY) == 0);
	/* attach makes a connection of its own: refused as well */
	s = NULL;
	CHECK(shmdemux_attach(conn, id, NULL, SHMDEMUX_START_OLDEST, 0, &s) ==
	      SHMDEMUX_EREFUSED);
	CHECK(s == NULL);
	CHECK(strcmp(shmdemux_conn_last_error(conn), CAP_WHY) == 0);
	shmdemux_disconnect(&conn);

	/* The CLI: exit 1, the reason on stderr. */
	CHECK(cli_run(cli, b.sock, "ls", NULL, err, sizeof(err)) == 1);
	fprintf(stderr, "conn-cap: shmdemux ls: %s", err);
	CHECK(strstr(err, CAP_WHY "\n") != NULL);
	CHECK(cli_run(cli, b.sock, "open", small, err, sizeof(err)) == 1);
	fprintf(stderr, "conn-cap: shmdemux open: %s", err);
	CHECK(strstr(err, CAP_WHY "\n") != NULL);

	/* One idle client leaves: the next is served. */
	close(idle[CAP_CONNS - 1]);
	broker_caught_up(idle[0]);
	CHECK(shmdemux_connect(&conn, b.sock, 0) == 0);
	n = 0;
	CHECK(shmdemux_list(conn, count_cb, &n) == 0);
	CHECK(n == 1);
	shmdemux_disconnect(&conn);
	broker_caught_up(idle[0]);
	CHECK(cli_run(cli, b.sock, "ls", NULL, err, sizeof(err)) == 0);

	for (int i = 0; i < CAP_CONNS - 1; i++)
		close(idle[i]);
	CHECK(tl_broker_stop(&b) == 0);
	refusal_first();
}

int
main(int argc, char **argv)
{
	static char buf[4096];
	const char *cli, *name;
	FILE *f;

	if (argc != 6) {
		fprintf(stderr, "usage: test_broker_limits SHMDEMUXD FAKECHILD "
			"WORKER CLI CASE\n");
		return 2;
	}
	cli = argv[4];
	name = argv[5];
	tl_init(argv[1], 280);
	snprintf(small, sizeof(small), "%s/small", tl_dir());
	f = fopen(small, "w");
	CHECK(f != NULL && fwrite(buf, 1, sizeof(buf), f) == sizeof(buf));
	CHECK(fclose(f) == 0);
	if (strcmp(name, "slow-clients") == 0)
		test_slow_clients(argv[2]);
	else if (strcmp(name, "fd-raise") == 0)
		test_fd_raise(argv[2]);
	else if (strcmp(name, "fd-limit") == 0)
		test_fd_limit(argv[2]);
	else if (strcmp(name, "fd-release") == 0)
		test_fd_release(argv[2]);
	else if (strcmp(name, "fd-readers") == 0)
		test_fd_readers(argv[2]);
	else if (strcmp(name, "fd-hard-worker") == 0)
		test_fd_hard_worker(argv[3]);
	else if (strcmp(name, "never-readable") == 0)
		test_never_readable(argv[3]);
	else if (strcmp(name, "conn-cap") == 0)
		test_conn_cap(argv[2], cli);
	else
		return 2;
	tl_check_shm();
	printf("test_broker_limits %s: ok\n", name);
	return 0;
}
