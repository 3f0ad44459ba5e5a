/*
 * test_spare.c - the workers started ahead of time (shmdemuxd
 * --worker-start spare|fork, worker_abi.h).
 *
 *   handoff    (--worker-start spare) the stream's worker is the spare seen
 *              before the OPEN, a new
 *              spare follows, the packets equal ffprobe's; each leads its
 *              own session, an idle spare's group at SPARE_GROUP_NICE, the
 *              worker's back at 0 once it has its stream; a SIGKILLed idle
 *              spare is reaped by the broker (no zombie) and the next OPEN
 *              still works; SIGTERM leaves no worker behind
 *   fork       (the default) each stream's worker is a new child of the
 *              broker's, cloned by the fork server, which stays; it leads
 *              its own session at the normal priority, shares the server's
 *              address layout (libavformat at the same address), and its
 *              packets equal ffprobe's, also for two streams at once; a
 *              SIGKILLed idle server is reaped by the broker, the next OPEN
 *              still works, and a new server follows and is used; with
 *              --fork-server-renew 2 the third stream comes from a new
 *              server with another layout
 *   malformed  assignments with a wrong magic, version, length, argument
 *              count or fd count, sent to `shmdemux-worker --spare` and
 *              `--fork-server` started here, make it exit
 *              WORKER_EXIT_USAGE without touching the ring; a valid one
 *              demuxes (for the server: in the child it names, a child of
 *              ours); a closed socket exits 0
 *   latency    OPEN to first packet, --spare-workers 0 vs 1 with the spare
 *              idle, and back-to-back OPENs (the spare may still be
 *              loading); printed, not asserted
 *
 * usage: test_spare SHMDEMUXD WORKER MEDIA-DIR FFPROBE-PACKETS MODE
 *   MEDIA-DIR: the generated media (tests/media/gen.sh)
 *
 * One program for the four modes (over 800 lines): they share the
 * broker, media and /proc helpers above them.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "autogroup.h"
#include "broker_testlib.h"
#include "media.h"
#include "spare.h"
#include "worker_abi.h"

static const char *worker, *media, *ffprobe_packets;

/* ---- helpers ---- */

/* The broker's idle spare or fork server: the child whose argv is
 * `WORKER MODE` and leads its own session (a fork server's waiting child
 * has its argv, in its session). */
static pid_t
find_ahead(pid_t broker, const char *mode)
{
	char buf[4096], want[4096];
	size_t wlen;
	pid_t found = 0, kids[64];
	int n = tl_children(broker, kids, 64);

	CHECK(n >= 0);
	wlen = (size_t)snprintf(want, sizeof(want), "%s%c%s", worker, 0,
				mode) + 1;
	for (int i = 0; i < n; i++) {
		size_t len = tl_cmdline(kids[i], buf, sizeof(buf));

		if (len == wlen && memcmp(buf, want, wlen) == 0 &&
		    getsid(kids[i]) == kids[i]) {
			CHECK(found == 0); /* one at most */
			found = kids[i];
		}
	}
	return found;
}

static pid_t
find_spare(pid_t broker)
{
	return find_ahead(broker, "--spare");
}

/* The nice value of pid's scheduling group, or INT_MIN if it has none (a
 * kernel without autogroups, or a cpu cgroup: autogroup.h). */
static int
group_nice(pid_t pid)
{
	int nice, ret = autogroup_get(pid, &nice);

	if (ret == -ENOENT || ret == -EPROTO)
		return INT_MIN;
	CHECK(ret == 0);
	return nice;
}

/* Every worker leads a session of its own; an idle spare's group runs at
 * the lowest priority, a stream's worker's at the normal one. */
static void
check_group(pid_t pid, int want, const char *what)
{
	int nice = group_nice(pid);

	CHECK(getsid(pid) == pid);
	if (nice == INT_MIN) {
		printf("%s %d: own session; no autogroup in effect (kernel "
		       "without them, or a cpu cgroup), priority not "
		       "checked\n", what, (int)pid);
		return;
	}
	if (nice != want)
		fprintf(stderr, "%s %d: group nice %d, want %d\n", what,
			(int)pid, nice, want);
	CHECK(nice == want);
}

/* Wait, 20 s at most, for pid's title to name its stream. */
static void
wait_title(pid_t pid, char *title, size_t cap)
{
	const struct timespec nap = { .tv_nsec = 1000000 };

	for (int i = 0; i < 20000; i++) {
		size_t n = tl_cmdline(pid, title, cap - 1);

		CHECK(n > 0);
		title[n] = '\0';
		if (strstr(title, "stream") != NULL)
			return;
		nanosleep(&nap, NULL);
	}
	fprintf(stderr, "worker %d never took its stream\n", (int)pid);
	CHECK(0);
}

/* A worker built with jemalloc has it mapped: the link order put it before
 * libc, so it serves libavformat's packet allocations too (CMakeLists.txt,
 * SHMDEMUX_WORKER_JEMALLOC). */
static void
check_allocator(pid_t pid)
{
#ifdef SHMDEMUX_WORKER_JEMALLOC
	char path[64], line[4096];
	int found = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	f = fopen(path, "r");
	CHECK(f != NULL);
	while (!found && fgets(line, sizeof(line), f) != NULL)
		found = strstr(line, "/libjemalloc.so") != NULL;
	fclose(f);
	if (!found)
		fprintf(stderr, "worker %d: no libjemalloc mapped\n",
			(int)pid);
	CHECK(found);
	printf("worker %d: allocator jemalloc\n", (int)pid);
#else
	printf("worker %d: built without jemalloc, allocator not "
	       "checked\n", (int)pid);
#endif
}

/* 1 if pid has been reaped (no /proc entry, not even a zombie). */
static int
reaped(pid_t pid)
{
	return kill(pid, 0) < 0 && errno == ESRCH;
}

static void
check_same(const char *what, const struct tl_text *got,
	   const struct tl_text *want)
{
	if (got->len != want->len ||
	    memcmp(got->buf, want->buf, got->len) != 0) {
		fprintf(stderr, "%s: packets differ from ffprobe (%zu vs %zu "
			"bytes of CSV)\n", what, got->len, want->len);
		CHECK(0);
	}
}

/* Open file by path, read every packet, compare with ffprobe. */
static void
open_compare(const struct tl_broker *b, const char *file, const char *what)
{
	struct ctl_stream_info info;
	struct tl_text got = { 0 }, want = { 0 };
	struct ctl_open o;
	char err[CTL_MSG_LEN];
	int fd = tl_connect(b->sock), id;

	CHECK(fd >= 0);
	tl_reference(ffprobe_packets, file, 0, &want);
	tl_open_init(&o, CTL_SRC_PATH, file, "");
	o.wait_consumers = 1;
	id = tl_open(fd, &o, -1, NULL, err, sizeof(err));
	CHECK(id > 0);
	CHECK(tl_consume(b->sock, (uint32_t)id, 20000, tl_csv_record, &got) > 0);
	CHECK(tl_info(b->sock, (uint32_t)id, &info) == 1);
	CHECK(info.end_reason == SD_END_EOF);
	check_same(what, &got, &want);
	CHECK(tl_simple(fd, CTL_CLOSE, (uint32_t)id) == 0);
	close(fd);
	printf("%s: %" PRIu64 " packets identical to ffprobe\n", what,
	       info.packets);
	free(got.buf);
	free(want.buf);
}

/* ---- handoff ---- */

/* A stream on a pipe whose feeder holds the input back until piped_go(),
 * so its worker is still running while the test looks at it. */
struct piped {
	int fd, gate, id;
	pid_t feed;
	struct tl_text want;
	struct ctl_stream_info info;
};

static void
piped_open(const struct tl_broker *b, const char *file, struct piped *p)
{
	struct ctl_open o;
	char err[CTL_MSG_LEN];
	int in;

	memset(p, 0, sizeof(*p));
	p->fd = tl_connect(b->sock);
	CHECK(p->fd >= 0);
	tl_reference(ffprobe_packets, file, 1, &p->want);
	in = tl_feeder(file, &p->gate, &p->feed);
	tl_open_init(&o, CTL_SRC_FD, "stdin", "");
	o.wait_consumers = 1;
	p->id = tl_open(p->fd, &o, in, NULL, err, sizeof(err));
	CHECK(p->id > 0);
	close(in);
	CHECK(tl_info(b->sock, (uint32_t)p->id, &p->info) == 1);
	CHECK(p->info.worker_pid > 0);
}

/* Let the input flow, read every packet, compare with ffprobe. */
static void
piped_finish(const struct tl_broker *b, struct piped *p, const char *what)
{
	struct tl_text got = { 0 };

	CHECK(write(p->gate, "g", 1) == 1);
	close(p->gate);
	CHECK(tl_consume(b->sock, (uint32_t)p->id, 20000, tl_csv_record,
			 &got) > 0);
	CHECK(tl_wait_child(p->feed, 10000) == 0);
	CHECK(tl_info(b->sock, (uint32_t)p->id, &p->info) == 1);
	CHECK(p->info.end_reason == SD_END_EOF);
	check_same(what, &got, &p->want);
	CHECK(tl_simple(p->fd, CTL_CLOSE, (uint32_t)p->id) == 0);
	close(p->fd);
	free(got.buf);
	free(p->want.buf);
}

/* The spare takes a piped stream; returns its pid. */
static pid_t
handoff_piped(const struct tl_broker *b, const char *file)
{
	struct piped p;
	char title[4096];
	pid_t spare = find_spare(b->pid), next;

	CHECK(spare > 0);
	check_group(spare, SPARE_GROUP_NICE, "idle spare");
	piped_open(b, file, &p);
	if (p.info.worker_pid != spare)
		fprintf(stderr, "worker %d, spare was %d\n",
			(int)p.info.worker_pid, (int)spare);
	CHECK(p.info.worker_pid == spare);
	/* It takes its stream: the title replaces `--spare` once it has read
	 * the assignment, which a spare still loading (at the lowest
	 * priority, on a busy machine) does only after the handoff. */
	wait_title(spare, title, sizeof(title));
	check_group(spare, 0, "stream worker (was the spare)");
	check_allocator(spare);
	/* The replacement is started after the OPEN's batch, before the
	 * LIST above was read. */
	next = find_spare(b->pid);
	CHECK(next > 0 && next != spare);
	check_group(next, SPARE_GROUP_NICE, "replacement spare");
	piped_finish(b, &p, "handoff (piped)");
	printf("handoff: spare %d ran stream %d, %" PRIu64 " packets "
	       "identical to ffprobe; replacement spare %d\n", (int)spare,
	       p.id, p.info.packets, (int)next);
	return next;
}

/* SIGKILL the idle spare; the broker must reap it. Once the spare is dead
 * (its pidfd readable), each LIST round trip is read by the broker in a
 * batch after the one that saw the pidfd: two cover its reaping. */
static void
kill_idle_spare(const struct tl_broker *b, pid_t spare)
{
	struct ctl_stream_info info;
	struct pollfd p = { .events = POLLIN };
	int trips = 0;

	p.fd = (int)syscall(SYS_pidfd_open, spare, 0);
	CHECK(p.fd >= 0);
	CHECK(kill(spare, SIGKILL) == 0);
	CHECK(poll(&p, 1, 10000) == 1);
	close(p.fd);
	while (!reaped(spare) && trips < 2) {
		(void)tl_info(b->sock, 0, &info);
		trips++;
	}
	CHECK(reaped(spare));
	printf("idle spare %d SIGKILLed: reaped by the broker (%d round "
	       "trip(s) after its death)\n", (int)spare, trips);
}

static void
shutdown_check(struct tl_broker *b)
{
	pid_t kids[64];
	int n = tl_children(b->pid, kids, 64);

	CHECK(n >= 1); /* the spare at least */
	CHECK(tl_broker_stop(b) == 0);
	/* Reaped by the broker before it exited: orphans would be our
	 * zombies now (we are their subreaper). */
	for (int i = 0; i < n; i++) {
		if (!reaped(kids[i]))
			fprintf(stderr, "process %d outlived the broker\n",
				kids[i]);
		CHECK(reaped(kids[i]));
	}
	printf("SIGTERM: the broker reaped its %d child(ren) itself\n", n);
}

static void
test_handoff(void)
{
	static const char *const spare_opt[] = { "--worker-start", "spare",
						 NULL };
	struct tl_broker b;
	char file[1024];
	pid_t next;

	CHECK(tl_broker_start(&b, "s", worker, spare_opt) == 0);
	tl_media_path(file, sizeof(file), media, "h264_aac.mkv");
	next = handoff_piped(&b, file);
	kill_idle_spare(&b, next);
	tl_media_path(file, sizeof(file), media, "h264_aac.ts");
	open_compare(&b, file, "open after the spare's death");
	tl_media_path(file, sizeof(file), media, "flac.flac");
	open_compare(&b, file, "next open");
	shutdown_check(&b);
}

/* ---- fork server ---- */

/* pid's parent, from /proc/PID/stat (after the parenthesised name). */
static pid_t
parent_of(pid_t pid)
{
	char path[64], buf[1024], *p;
	int fd, ppid = -1;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	CHECK(fd >= 0);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	CHECK(n > 0);
	buf[n] = '\0';
	p = strrchr(buf, ')');
	CHECK(p != NULL && sscanf(p + 1, " %*c %d", &ppid) == 1);
	return (pid_t)ppid;
}

/* Where pid has libavformat mapped (its first mapping), 0 if nowhere. */
static unsigned long
avformat_base(pid_t pid)
{
	char path[64], line[4096];
	unsigned long base = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	f = fopen(path, "r");
	CHECK(f != NULL);
	while (base == 0 && fgets(line, sizeof(line), f) != NULL)
		if (strstr(line, "/libavformat.so") != NULL)
			CHECK(sscanf(line, "%lx-", &base) == 1);
	fclose(f);
	return base;
}

/* The fork server, loaded, and known to be by the broker. */
static pid_t
server_loaded(const struct tl_broker *b)
{
	pid_t server = tl_fork_server(b, 20000);

	CHECK(server > 0);
	return server;
}

/* A worker the server cloned for a stream: the broker's child, in a
 * session of its own at the normal priority, not the server, with the
 * server's libavformat address (sbase, read while the server lives). */
static void
check_clone(const struct tl_broker *b, pid_t server, unsigned long sbase,
	    pid_t w)
{
	unsigned long wbase;
	char title[4096];

	if (w == server || parent_of(w) != b->pid)
		fprintf(stderr, "worker %d (parent %d), server %d, broker "
			"%d\n", (int)w, (int)parent_of(w), (int)server,
			(int)b->pid);
	CHECK(w != server);
	CHECK(parent_of(w) == b->pid);
	wait_title(w, title, sizeof(title));
	check_group(w, 0, "stream worker (cloned)");
	check_allocator(w);
	/* Loaded once: the same address layout as the server's (what an
	 * exec'd worker would not have with ASLR on: docs/SECURITY.md). */
	wbase = avformat_base(w);
	CHECK(sbase != 0 && wbase == sbase);
}

/* 1 if the kernel randomizes address layouts (randomize_va_space). */
static int
aslr_on(void)
{
	FILE *f = fopen("/proc/sys/kernel/randomize_va_space", "r");
	int v = 0;

	if (f == NULL)
		return 0;
	if (fscanf(f, "%d", &v) != 1)
		v = 0;
	fclose(f);
	return v != 0;
}

/* Every child of the broker's is the fork server or its waiting child:
 * nothing left over, not even a zombie. */
static void
no_strays(const struct tl_broker *b, pid_t server)
{
	pid_t kids[64];
	int n = tl_children(b->pid, kids, 64);

	CHECK(n >= 1);
	for (int i = 0; i < n; i++) {
		if (kids[i] != server && getsid(kids[i]) != server)
			fprintf(stderr, "child %d of the broker: neither the "
				"server %d nor its waiting child\n",
				(int)kids[i], (int)server);
		CHECK(kids[i] == server || getsid(kids[i]) == server);
	}
}

/* --fork-server-renew 2: the third stream's worker comes from a new
 * server, with a new layout. */
static void
test_renew(const char *file)
{
	static const char *const renew[] = { "--fork-server-renew", "2",
					     NULL };
	struct tl_broker b;
	struct piped p;
	pid_t first, second, w;
	unsigned long base;

	CHECK(tl_broker_start(&b, "r", worker, renew) == 0);
	first = server_loaded(&b);
	base = avformat_base(first);
	(void)tl_fork_waiting(&b, first, 20000);
	for (int i = 0; i < 2; i++) {
		piped_open(&b, file, &p);
		check_clone(&b, first, base, p.info.worker_pid);
		piped_finish(&b, &p, "renew (first server)");
	}
	second = server_loaded(&b);
	CHECK(second != first);
	CHECK(kill(first, 0) < 0 && errno == ESRCH); /* reaped */
	no_strays(&b, second);
	piped_open(&b, file, &p);
	w = p.info.worker_pid;
	check_clone(&b, second, avformat_base(second), w);
	if (aslr_on())
		CHECK(avformat_base(second) != base);
	piped_finish(&b, &p, "renew (second server)");
	printf("renew: after 2 streams server %d gave way to %d (libavformat "
	       "at %s address), whose worker %d ran the third\n",
	       (int)first, (int)second, aslr_on() ? "another" : "the same "
	       "(ASLR off)", (int)w);
	CHECK(tl_broker_stop(&b) == 0);
}

static void
test_fork(void)
{
	struct tl_broker b;
	struct piped p[2];
	char file[2][1024];
	pid_t server, next, w[2], waiting;

	CHECK(tl_broker_start(&b, "f", worker, NULL) == 0);
	tl_media_path(file[0], sizeof(file[0]), media, "h264_aac.mkv");
	tl_media_path(file[1], sizeof(file[1]), media, "h264_aac.ts");
	server = server_loaded(&b);
	check_group(server, 0, "fork server");
	waiting = tl_fork_waiting(&b, server, 20000);
	CHECK(waiting > 0 && parent_of(waiting) == b.pid);

	/* Two streams at once: two clones, each exact; the first is the
	 * child that waited for it. */
	for (int i = 0; i < 2; i++) {
		piped_open(&b, file[i], &p[i]);
		w[i] = p[i].info.worker_pid;
		check_clone(&b, server, avformat_base(server), w[i]);
	}
	if (w[0] != waiting)
		fprintf(stderr, "first stream's worker %d, waiting child was "
			"%d\n", (int)w[0], (int)waiting);
	CHECK(w[0] == waiting);
	CHECK(w[0] != w[1]);
	CHECK(find_ahead(b.pid, "--fork-server") == server);
	for (int i = 0; i < 2; i++)
		piped_finish(&b, &p[i], i ? "fork (2nd)" : "fork (1st)");
	printf("fork: server %d cloned workers %d (waiting since before its "
	       "stream) and %d for two streams at once, children of the "
	       "broker, same layout, packets identical to ffprobe; the "
	       "server stays\n", (int)server, (int)w[0], (int)w[1]);

	/* A waiting child's death: reaped, no zombie; the next stream's
	 * worker is cloned for it, and another waits. */
	waiting = tl_fork_waiting(&b, server, 20000);
	CHECK(waiting > 0 && waiting != w[0] && waiting != w[1]);
	kill_idle_spare(&b, waiting);
	open_compare(&b, file[0], "open after the waiting child's death");
	next = tl_fork_waiting(&b, server, 20000);
	CHECK(next > 0 && next != waiting);
	printf("fork: waiting child %d SIGKILLed: reaped; the next stream "
	       "had a worker cloned; %d waits now\n", (int)waiting,
	       (int)next);
	waiting = next;

	/* Its idle death: reaped, and its waiting child with it; the next
	 * OPEN works; a new server. */
	kill_idle_spare(&b, server);
	open_compare(&b, file[1], "open after the server's death");
	next = server_loaded(&b);
	CHECK(next != server);
	CHECK(reaped(waiting));
	piped_open(&b, file[0], &p[0]);
	w[0] = p[0].info.worker_pid;
	check_clone(&b, next, avformat_base(next), w[0]);
	piped_finish(&b, &p[0], "fork (new server)");
	printf("fork: new server %d cloned worker %d\n", (int)next,
	       (int)w[0]);
	shutdown_check(&b);
	test_renew(file[0]);
}

/* ---- malformed assignments, to a spare started here ---- */

struct direct {
	pid_t pid;
	int sock;              /* our end */
	int data_fd;
	int asock, wsock;  /* the ring's admin channel: ours, the worker's */
	int ready[2];      /* the readiness pipe (worker_abi.h) */
	struct ring *admin;
	pid_t waiting[8];  /* children a fork server announced, unused */
	int nwaiting;
};

static void
direct_start(struct direct *d, const char *mode)
{
	struct ring_params p = {
		.data_size = 1 << 20, .max_consumers = 2,
		.mode = RING_MODE_LIVE,
	};
	int sv[2];

	d->data_fd = memfd_create("test-data", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	CHECK(d->data_fd >= 0);
	CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0);
	d->asock = sv[0];
	d->wsock = sv[1];
	CHECK(fcntl(d->asock, F_SETFL, O_NONBLOCK) == 0);
	CHECK(ring_create(d->data_fd, &p) == 0);
	CHECK(ring_map(&d->admin, d->data_fd, d->asock, RING_ROLE_ADMIN) == 0);
	CHECK(pipe2(d->ready, O_CLOEXEC) == 0);
	CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0);
	d->pid = fork();
	CHECK(d->pid >= 0);
	if (d->pid == 0) {
		int null = open("/dev/null", O_RDWR);

		if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 ||
		    dup2(sv[1], WORKER_FD_SPARE) < 0)
			_exit(126);
		closefrom(WORKER_FD_SPARE + 1);
		execl(worker, worker, mode, (char *)NULL);
		_exit(127);
	}
	close(sv[1]);
	d->sock = sv[0];
	d->nwaiting = 0;
}

/* A fork server's message on d's socket (blocking, or 0 with none). Its
 * waiting children are recorded, one at a time unused. */
static int
server_msg(struct direct *d, int flags, struct worker_assign_reply *r)
{
	ssize_t n = recv(d->sock, r, sizeof(*r), flags);

	if (n < 0 && errno == EAGAIN)
		return 0;
	if (n == 0)
		return 0;
	CHECK(n == (ssize_t)sizeof(*r));
	CHECK(r->magic == WORKER_ASSIGN_MAGIC);
	if (r->kind == WORKER_REPLY_WAITING) {
		CHECK(r->pid > 0 && r->pid != d->pid);
		CHECK(d->nwaiting < 8);
		d->waiting[d->nwaiting++] = r->pid;
	}
	return 1;
}

/* 1 if the spare's copy of the readiness pipe is closed: ours is, so the
 * read end sees EOF (the spare exited, or closed it after mapping). */
static int
ready_closed(struct direct *d)
{
	char c;

	return read(d->ready[0], &c, 1) == 0;
}

/* Exit status of the spare, and whether it left the ring untouched. */
static int
direct_end(struct direct *d, int *untouched)
{
	const struct ring_hdr *h = ring_hdr(d->admin);
	int st = tl_wait_child(d->pid, 60000), wst;
	struct worker_assign_reply r;

	CHECK(st >= 0);
	/* Its waiting children, told of the server's end by their socket's,
	 * exit 0 without a word. */
	while (server_msg(d, MSG_DONTWAIT, &r))
		;
	for (int i = 0; i < d->nwaiting; i++) {
		wst = tl_wait_child(d->waiting[i], 60000);
		CHECK(WIFEXITED(wst) && WEXITSTATUS(wst) == 0);
	}
	*untouched = h->worker_pid == 0;
	CHECK(ready_closed(d));
	close(d->ready[0]);
	ring_unmap(&d->admin);
	close(d->sock);
	close(d->data_fd);
	close(d->asock);
	close(d->wsock);
	return st;
}

static void
send_raw(int sock, const void *buf, size_t len, const int *fds, int nfds)
{
	union {
		char b[CMSG_SPACE(sizeof(int) * 8)];
		struct cmsghdr align;
	} c;
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (nfds > 0) {
		struct cmsghdr *cm;

		memset(&c, 0, sizeof(c));
		mh.msg_control = c.b;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
		memcpy(CMSG_DATA(cm), fds, sizeof(int) * (size_t)nfds);
	}
	CHECK(sendmsg(sock, &mh, MSG_NOSIGNAL) == (ssize_t)len);
}

enum bad {
	BAD_NONE, BAD_MAGIC, BAD_VERSION, BAD_LEN_LONG, BAD_LEN_SHORT,
	BAD_ARGC, BAD_NO_NUL, BAD_ARGC_ZERO, BAD_FDS_4, BAD_FDS_6, BAD_FDS_0,
	BAD_HDR_SHORT, BAD_TOO_BIG, BAD_COUNT,
};

static const char *const bad_names[] = {
	"valid", "magic", "version", "length > bytes", "length < bytes",
	"argc", "no final NUL", "argc 0", "4 fds", "6 fds", "no fds",
	"short header", "oversized",
};

/* An assignment for the stream of input_fd, spoiled as asked. */
static void
send_assignment(struct direct *d, int input_fd, enum bad bad)
{
	static char msg[sizeof(struct worker_assign_hdr) +
			WORKER_ASSIGN_MAX_LEN + 64];
	static const char args[] = "shmdemux-worker\0--stream-id\0007\0"
		"--seekable";
	struct worker_assign_hdr h = {
		.magic = WORKER_ASSIGN_MAGIC,
		.version = WORKER_ASSIGN_VERSION,
		.argc = 4,
		.len = sizeof(args),
	};
	int fds[6] = {
		input_fd, d->data_fd, d->ready[1], d->wsock, STDERR_FILENO,
		input_fd,
	};
	size_t len = sizeof(h) + sizeof(args);
	int nfds = 5;

	memcpy(msg + sizeof(h), args, sizeof(args));
	switch (bad) {
	case BAD_MAGIC: h.magic ^= 1; break;
	case BAD_VERSION: h.version++; break;
	case BAD_LEN_LONG: h.len++; break;
	case BAD_LEN_SHORT: h.len--; break;
	case BAD_ARGC: h.argc = 5; break;
	case BAD_NO_NUL: msg[len - 1] = 'x'; break;
	case BAD_ARGC_ZERO: h.argc = 0; break;
	case BAD_FDS_4: nfds = 4; break;
	case BAD_FDS_6: nfds = 6; break;
	case BAD_FDS_0: nfds = 0; break;
	case BAD_HDR_SHORT: len = 8; break;
	case BAD_TOO_BIG:
		len = sizeof(msg);
		memset(msg + sizeof(h), 'a', len - sizeof(h));
		msg[len - 1] = '\0';
		h.argc = 1;
		h.len = (uint32_t)(len - sizeof(h));
		break;
	default: break;
	}
	memcpy(msg, &h, sizeof(h));
	send_raw(d->sock, msg, len, fds, nfds);
	close(d->ready[1]); /* the spare holds the only write end, if any */
}

/* The fork server's next answer on d's socket. */
static int32_t
server_answer(struct direct *d, uint32_t kind)
{
	struct worker_assign_reply r;

	do
		CHECK(server_msg(d, 0, &r) == 1);
	while (r.kind == WORKER_REPLY_WAITING);
	CHECK(r.kind == kind);
	return r.pid;
}

/* The child made for the stream was the one waiting for it: it is not
 * reaped with the other waiting ones. */
static void
waiting_took(struct direct *d, pid_t child)
{
	CHECK(d->nwaiting == 1 && d->waiting[0] == child);
	d->nwaiting = 0;
}

static void
malformed(const char *mode, const char *file)
{
	int in, st, untouched;
	struct direct d;

	for (int bad = BAD_MAGIC; bad < BAD_COUNT; bad++) {
		direct_start(&d, mode);
		in = open(file, O_RDONLY | O_CLOEXEC);
		CHECK(in >= 0);
		send_assignment(&d, in, (enum bad)bad);
		close(in);
		st = direct_end(&d, &untouched);
		if (!WIFEXITED(st) || WEXITSTATUS(st) != WORKER_EXIT_USAGE ||
		    !untouched)
			fprintf(stderr, "%s %s: status 0x%x, ring %s\n", mode,
				bad_names[bad], st,
				untouched ? "untouched" : "written");
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == WORKER_EXIT_USAGE);
		CHECK(untouched);
		printf("%s, malformed (%s): exit %d, ring untouched\n", mode,
		       bad_names[bad], WEXITSTATUS(st));
	}
}

static void
test_malformed(void)
{
	char file[1024];
	int in, st, untouched;
	pid_t child;
	struct direct d;
	struct worker_assign_reply r;

	tl_media_path(file, sizeof(file), media, "flac.flac");
	malformed("--spare", file);
	malformed("--fork-server", file);

	/* A valid assignment demuxes to the end. */
	direct_start(&d, "--spare");
	in = open(file, O_RDONLY | O_CLOEXEC);
	CHECK(in >= 0);
	send_assignment(&d, in, BAD_NONE);
	close(in);
	st = direct_end(&d, &untouched);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == WORKER_EXIT_EOF);
	CHECK(!untouched);
	printf("--spare, valid assignment: demuxed to the end, exit 0\n");

	/* The server's child does, a child of ours (CLONE_PARENT); the
	 * server answers with its pid and waits for the next. */
	direct_start(&d, "--fork-server");
	CHECK(server_answer(&d, WORKER_REPLY_LOADED) == 0);
	in = open(file, O_RDONLY | O_CLOEXEC);
	CHECK(in >= 0);
	send_assignment(&d, in, BAD_NONE);
	close(in);
	child = server_answer(&d, WORKER_REPLY_CHILD);
	CHECK(child > 0 && child != d.pid);
	waiting_took(&d, child);
	st = tl_wait_child(child, 60000);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == WORKER_EXIT_EOF);
	CHECK(kill(d.pid, 0) == 0); /* the server stays */
	/* and has the next stream's child waiting */
	CHECK(server_msg(&d, 0, &r) == 1 && r.kind == WORKER_REPLY_WAITING);
	CHECK(d.nwaiting == 1 && d.waiting[0] != child);
	shutdown(d.sock, SHUT_WR);
	st = direct_end(&d, &untouched);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0 && !untouched);
	printf("--fork-server, valid assignment: child %d (ours) demuxed to "
	       "the end, exit 0; the server exits 0 once let go\n",
	       (int)child);

	/* The broker letting either go: EOF, exit 0. */
	for (int i = 0; i < 2; i++) {
		direct_start(&d, i ? "--fork-server" : "--spare");
		close(d.ready[1]);
		shutdown(d.sock, SHUT_WR);
		st = direct_end(&d, &untouched);
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0 && untouched);
		printf("%s, closed socket: exit 0\n",
		       i ? "--fork-server" : "--spare");
	}
}

/* ---- latency ---- */

/* OPEN to the first packet in a consumer's hands, in microseconds. */
static double
first_packet_us(const struct tl_broker *b, const char *file)
{
	struct ctl_open o;
	struct ring *r = NULL;
	struct ring_rd v;
	char err[CTL_MSG_LEN];
	int fd = tl_connect(b->sock), fds[2], slot, id, ret;
	double t0 = (double)now_ns() / 1e3, t;

	CHECK(fd >= 0);
	tl_open_init(&o, CTL_SRC_PATH, file, "");
	o.wait_consumers = 1;
	id = tl_open(fd, &o, -1, NULL, err, sizeof(err));
	CHECK(id > 0);
	slot = tl_attach(fd, (uint32_t)id, 0, fds, NULL);
	CHECK(slot >= 0);
	CHECK(ring_map(&r, fds[0], -1, RING_ROLE_CONSUMER) == 0);
	CHECK(ring_attach(r, fds[1], RING_START_OLDEST) == 0);
	close(fds[0]);
	close(fds[1]);
	for (;;) {
		do
			ret = ring_next(r, &v, 10000);
		while (ret == -EAGAIN);
		CHECK(ret == 0);
		if (v.type == RING_REC_PACKET)
			break;
		ring_release(r, &v);
	}
	t = (double)now_ns() / 1e3 - t0;
	ring_unmap(&r);
	CHECK(tl_simple(fd, CTL_CLOSE, (uint32_t)id) == 0);
	close(fd);
	return t;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Wait (bounded) until the broker's spare or fork server (mode) blocks in
 * recvmsg: loaded and idle. For the measurement only; /proc/PID/syscall
 * names the call. A spare loads at the lowest priority, so on a machine kept busy by other
 * work it may not load at all; after 2 s its group is raised to the
 * normal priority (what a handoff would do) so the series measures a
 * loaded spare. Returns 1 if it had to be raised. */
static int
wait_idle(const struct tl_broker *b, const char *mode)
{
	int raised = 0;

	for (int i = 0; i < 10000; i++) {
		pid_t spare = find_ahead(b->pid, mode);
		int idle = 0;

		if (spare > 0) {
			idle = tl_in_recvmsg(spare);
			if (!idle && !raised && i >= 1000 &&
			    group_nice(spare) > 0) {
				CHECK(autogroup_set(spare, 0) == 0);
				raised = 1;
			}
		}
		if (idle)
			return raised;
		poll(NULL, 0, 2);
	}
	CHECK(0);
	return raised;
}

static void
latency_series(const struct tl_broker *b, const char *file,
	       const char *idle, const char *label)
{
	enum { RUNS = 21 };
	double us[RUNS];
	int raised = 0;

	for (int i = 0; i < RUNS; i++) {
		if (idle != NULL)
			raised += wait_idle(b, idle);
		us[i] = first_packet_us(b, file);
	}
	qsort(us, RUNS, sizeof(*us), cmp_double);
	printf("%s: OPEN to first packet, %d runs: min %.1f ms, median "
	       "%.1f ms, max %.1f ms\n", label, RUNS, us[0] / 1e3,
	       us[RUNS / 2] / 1e3, us[RUNS - 1] / 1e3);
	if (raised)
		printf("  (%d of %d spares still loading after 2 s at the "
		       "lowest priority, machine busy: raised to normal)\n",
		       raised, RUNS);
}

static void
test_latency(void)
{
	static const char *const exec_opt[] = { "--worker-start", "exec",
						NULL };
	static const char *const spare_opt[] = { "--worker-start", "spare",
						 NULL };
	struct tl_broker b;
	char file[1024];

	tl_media_path(file, sizeof(file), media, "h264_aac.mkv");
	CHECK(tl_broker_start(&b, "s0", worker, exec_opt) == 0);
	(void)first_packet_us(&b, file); /* page cache */
	CHECK(find_spare(b.pid) == 0);
	CHECK(find_ahead(b.pid, "--fork-server") == 0);
	latency_series(&b, file, NULL, "--worker-start exec");
	CHECK(tl_broker_stop(&b) == 0);

	CHECK(tl_broker_start(&b, "s1", worker, spare_opt) == 0);
	(void)first_packet_us(&b, file);
	latency_series(&b, file, "--spare", "--worker-start spare, spare idle");
	latency_series(&b, file, NULL,
		       "--worker-start spare, back-to-back opens");
	CHECK(tl_broker_stop(&b) == 0);

	CHECK(tl_broker_start(&b, "s2", worker, NULL) == 0);
	CHECK(tl_fork_server(&b, 20000) > 0);
	(void)first_packet_us(&b, file);
	latency_series(&b, file, NULL,
		       "--worker-start fork, back-to-back opens");
	CHECK(tl_broker_stop(&b) == 0);
}

int
main(int argc, char **argv)
{
	if (argc != 6) {
		fprintf(stderr, "usage: test_spare SHMDEMUXD WORKER MEDIA-DIR "
			"FFPROBE-PACKETS handoff|fork|malformed|latency\n");
		return 2;
	}
	worker = argv[2];
	media = argv[3];
	ffprobe_packets = argv[4];
	CHECK(access(worker, X_OK) == 0);
	CHECK(access(ffprobe_packets, X_OK) == 0);
	tl_init(argv[1], 240);
	if (strcmp(argv[5], "handoff") == 0)
		test_handoff();
	else if (strcmp(argv[5], "fork") == 0)
		test_fork();
	else if (strcmp(argv[5], "malformed") == 0)
		test_malformed();
	else if (strcmp(argv[5], "latency") == 0)
		test_latency();
	else
		return 2;
	tl_check_shm();
	printf("test_spare %s: ok\n", argv[5]);
	return 0;
}
