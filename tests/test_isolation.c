/*
 * test_isolation.c - every way a worker can end is contained and reported
 * for what it is; the broker survives misbehaving consumers.
 *
 * usage: test_isolation SHMDEMUXD WORKER BIN_DIR MEDIA_DIR FFPROBE_PACKETS CASE
 *   MEDIA_DIR: the generated media (tests/media/gen.sh)
 *   CASE: a fault (segv abort kill syscall readfd mmapexec mprotexec alloc
 *         spin exit), or killed,
 *         memory, open-failed, whitelist, open-timeout, idle-source,
 *         held-input, ended-input, full-ring, evict, consumers
 *
 * Fault cases need a build with SHMDEMUX_FAULT_INJECTION (else exit 77):
 * the broker gets SHMDEMUX_FAULT=KIND:N:victim, so only the stream named
 * "victim" misbehaves after N packets. A reader thread blocks in
 * shmdemux_read() while the worker dies; it must get every packet
 * published before (counted against the broker's LIST) and then the typed
 * error within a second of the worker's death (its pidfd). A second stream
 * on the same broker is dumped in full with the CLI and compared with
 * ffprobe. Every wait is on a real event: a blocking read, a pidfd, a
 * child's exit; the broker is stopped and the directory removed on every
 * path (broker_testlib).
 *
 * One program for every case (over 800 lines): the cases share the
 * broker and consumer fixtures.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "broker_testlib.h"
#include "client_testlib.h"
#include "shmdemux.h"

#define WAKE_LIMIT_MS 1000

static const char *worker_bin, *bin_dir, *ffprobe_packets;
/* The victim is Matroska (off the "mov,mpegts" allow-list of the whitelist
 * case) and under 116 KiB (the held-input case: it and 144 KiB of zeros
 * fit the worker's pipe read-ahead); the bystander is an MP4 several times
 * the 64 KiB rings of the full-ring, evict and consumers cases. */
#define VICTIM_MEDIA "hevc_ac3.mkv"
#define BYSTANDER_MEDIA "h264_aac_faststart.mp4"
static char victim_file[512], bystander_file[512];

struct fault_case {
	const char *kind;
	unsigned after;
	int code;            /* SHMDEMUX_E* the reader gets */
	int reason;          /* SHMDEMUX_END_* in LIST */
	const char *ls;      /* state shown by `shmdemux ls` */
	long syscall_nr;     /* SHMDEMUX_ESANDBOX: the trapped call */
};

static const struct fault_case faults[] = {
	{ "segv", 3, SHMDEMUX_ECRASHED, SHMDEMUX_END_CRASHED,
	  "ended:crashed(SIGSEGV)", 0 },
	{ "abort", 2, SHMDEMUX_ECRASHED, SHMDEMUX_END_CRASHED,
	  "ended:crashed(SIGABRT)", 0 },
	{ "kill", 4, SHMDEMUX_ECRASHED, SHMDEMUX_END_CRASHED,
	  "ended:crashed(SIGKILL)", 0 },
	{ "syscall", 5, SHMDEMUX_ESANDBOX, SHMDEMUX_END_SANDBOX,
	  "ended:sandbox(socket)", SYS_socket },
	/* reading anything but its input: fd 1, fd 2 (once the broker's
	 * stderr, maybe a terminal), the ring */
	{ "readfd", 2, SHMDEMUX_ESANDBOX, SHMDEMUX_END_SANDBOX,
	  "ended:sandbox(read)", SYS_read },
	/* executable memory: where shellcode would run */
	{ "mmapexec", 2, SHMDEMUX_ESANDBOX, SHMDEMUX_END_SANDBOX,
	  "ended:sandbox(mmap)", SYS_mmap },
	{ "mprotexec", 2, SHMDEMUX_ESANDBOX, SHMDEMUX_END_SANDBOX,
	  "ended:sandbox(mprotect)", SYS_mprotect },
	{ "alloc", 4, SHMDEMUX_EMEMORY, SHMDEMUX_END_MEMORY,
	  "ended:memory-limit", 0 },
	{ "spin", 3, SHMDEMUX_EWATCHDOG, SHMDEMUX_END_WATCHDOG,
	  "ended:watchdog", 0 },
	{ "exit", 1, SHMDEMUX_EEXITED, SHMDEMUX_END_EXITED,
	  "ended:exited(3)", 0 },
};

/* ---- a reader thread ---- */

struct reader {
	shmdemux_stream *st;
	unsigned stop_after;  /* >0: return after this many packets */
	long count;
	int code;
	uint64_t end_ms;
	pthread_t thr;
};

static void *
reader_main(void *arg)
{
	struct reader *r = arg;
	struct shmdemux_packet pkt;
	int ret;

	for (;;) {
		ret = shmdemux_read(r->st, &pkt, -1);
		if (ret != 0)
			break;
		r->count++;
		if (r->stop_after > 0 && (unsigned)r->count == r->stop_after)
			break;
	}
	r->code = ret;
	r->end_ms = now_ms();
	return NULL;
}

static void
reader_start(struct reader *r, shmdemux_conn *c, uint32_t id,
	     unsigned stop_after)
{
	memset(r, 0, sizeof(*r));
	r->stop_after = stop_after;
	CHECK(shmdemux_attach(c, id, NULL, SHMDEMUX_START_OLDEST, 0,
			      &r->st) == 0);
	CHECK(pthread_create(&r->thr, NULL, reader_main, r) == 0);
}

static void
reader_join(struct reader *r)
{
	CHECK(pthread_join(r->thr, NULL) == 0);
}

/* ---- broker and streams ---- */

static uint32_t
open_file(shmdemux_conn *c, const char *path, const char *name,
	  const struct shmdemux_open_opts *base)
{
	struct shmdemux_open_opts o;

	if (base != NULL)
		o = *base;
	else
		shmdemux_open_opts_init(&o);
	o.name = name;
	return tl_open_path(c, path, &o);
}

/* The bystander, dumped by the CLI, equals ffprobe's packets. */
static void
check_bystander(const struct tl_broker *b, const char *name)
{
	char cmd[2048];

	snprintf(cmd, sizeof(cmd),
		 "'%s' '%s' > '%s/ref.csv' && "
		 "'%s/shmdemux' --socket '%s' dump %s --csv > '%s/out.csv' && "
		 "cmp -s '%s/ref.csv' '%s/out.csv'",
		 ffprobe_packets, bystander_file, tl_dir(), bin_dir, b->sock,
		 name, tl_dir(), tl_dir(), tl_dir());
	CHECK(tl_run(cmd) == 0);
}

/* `shmdemux ls` shows the state, and `dump` exits 1 with one line that
 * names the cause. */
static void
check_cli(const struct tl_broker *b, uint32_t id, const char *state,
	  const char *cause)
{
	char cmd[2048];

	snprintf(cmd, sizeof(cmd),
		 "'%s/shmdemux' --socket '%s' ls | grep -q '^ *%u .* %s '",
		 bin_dir, b->sock, id, state);
	if (tl_run(cmd) != 0) {
		snprintf(cmd, sizeof(cmd), "'%s/shmdemux' --socket '%s' ls >&2",
			 bin_dir, b->sock);
		(void)!system(cmd);
		CHECK(!"ls state");
	}
	snprintf(cmd, sizeof(cmd),
		 "'%s/shmdemux' --socket '%s' dump %u > /dev/null "
		 "2> '%s/dump.err'; rc=$?; "
		 "if test $rc -eq 1 && test $(wc -l < '%s/dump.err') -eq 1 && "
		 "grep -q -- '%s' '%s/dump.err'; then exit 0; fi; "
		 "cat '%s/dump.err' >&2; exit 1",
		 bin_dir, b->sock, id, tl_dir(), tl_dir(), cause, tl_dir(),
		 tl_dir());
	CHECK(tl_run(cmd) == 0);
}

/* The end of a test with one reader: its stream as the CLI shows it, then
 * the connection and the broker go. */
static void
finish(struct tl_broker *b, shmdemux_conn **c, struct reader *r, uint32_t id,
       const char *state, const char *cause)
{
	shmdemux_detach(&r->st);
	check_cli(b, id, state, cause);
	shmdemux_disconnect(c);
	CHECK(tl_broker_stop(b) == 0);
}

static int
pidfd_of(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

/* Wait for a pidfd to turn readable; returns when it did (ms). */
static uint64_t
wait_death(int pfd, int timeout_ms)
{
	struct pollfd p = { .fd = pfd, .events = POLLIN };

	CHECK(poll(&p, 1, timeout_ms) == 1);
	return now_ms();
}

static const char *
cause_of(const struct fault_case *f)
{
	static char buf[128];

	if (f->code == SHMDEMUX_ECRASHED)
		return strchr(f->ls, '(') + 1; /* "SIGSEGV)" */
	if (f->code == SHMDEMUX_ESANDBOX) {
		/* "ended:sandbox(socket)": the call's name */
		snprintf(buf, sizeof(buf), "forbidden syscall [0-9]* %s",
			 strchr(f->ls, '('));
		return buf;
	}
	if (f->code == SHMDEMUX_EMEMORY)
		return "out of memory";
	if (f->code == SHMDEMUX_EWATCHDOG)
		return "no progress for 500 ms";
	return "status 3";
}

static void
test_fault(const struct fault_case *f)
{
	struct tl_broker b;
	struct shmdemux_open_opts o;
	struct shmdemux_stream_info vi, bi;
	struct reader r;
	shmdemux_conn *c = NULL;
	char env[64];
	uint32_t vid, bid;
	uint64_t died;
	int pfd;

#ifndef SHMDEMUX_FAULT_INJECTION
	(void)f;
	fprintf(stderr, "SKIP: built without SHMDEMUX_FAULT_INJECTION\n");
	exit(77);
#endif
	snprintf(env, sizeof(env), "%s:%u:victim", f->kind, f->after);
	CHECK(setenv("SHMDEMUX_FAULT", env, 1) == 0);
	CHECK(tl_broker_start(&b, "s", worker_bin, NULL) == 0);
	unsetenv("SHMDEMUX_FAULT");
	CHECK(shmdemux_connect(&c, b.sock, 0) == 0);

	/* the bystander first: it is running when the victim fails */
	bid = open_file(c, bystander_file, "bystander", NULL);
	shmdemux_open_opts_init(&o);
	if (f->code == SHMDEMUX_EMEMORY)
		o.mem_limit = 256u << 20;
	/* short for the spinning worker only: touching 256M (alloc) makes
	 * no progress either, and may take a while on a loaded machine */
	if (f->code == SHMDEMUX_EWATCHDOG)
		o.watchdog_ms = 500;
	vid = open_file(c, victim_file, "victim", &o);
	/* A lossless stream waits for its first reader: the worker has not
	 * reached the fault yet and cannot have been reaped. */
	vi = tl_info_of(c, vid);
	CHECK(vi.worker_pid > 0);
	pfd = pidfd_of(vi.worker_pid);
	CHECK(pfd >= 0);

	reader_start(&r, c, vid, 0);
	died = wait_death(pfd, 20000);
	close(pfd);
	reader_join(&r);
	vi = tl_info_of(c, vid);
	fprintf(stderr, "%s: read %ld packets, then %s (%lld ms after the "
		"worker died): %s\n", f->kind, r.count,
		shmdemux_strerror(r.code), (long long)(r.end_ms - died),
		vi.end_msg);
	CHECK(r.code == f->code);
	CHECK(r.count == (long)f->after);
	CHECK(vi.packets == (uint64_t)r.count);
	CHECK(vi.state == SHMDEMUX_STATE_ENDED && vi.end_reason == f->reason);
	CHECK(r.end_ms < died + WAKE_LIMIT_MS);
	if (f->code == SHMDEMUX_ESANDBOX) {
		struct shmdemux_status st;

		CHECK(shmdemux_status(r.st, &st) == 0);
		CHECK(st.syscall == f->syscall_nr);
	}
	shmdemux_detach(&r.st);
	check_cli(&b, vid, f->ls, cause_of(f));

	check_bystander(&b, "bystander");
	bi = tl_info_of(c, bid);
	CHECK(bi.end_reason == SHMDEMUX_END_EOF);
	shmdemux_disconnect(&c);
	CHECK(tl_broker_stop(&b) == 0);
}

/* An operator's KILL while a reader is blocked: it reads what was
 * published, then SHMDEMUX_EKILLED. The stream is paced (--realtime) so
 * the kill lands mid-stream. */
static void
test_killed(void)
{
	struct tl_broker b;
	struct shmdemux_open_opts o;
	struct shmdemux_stream_info vi;
	struct reader r;
	shmdemux_conn *c = NULL;
	uint32_t id;
	uint64_t died;
	int pfd;

	CHECK(tl_broker_start(&b, "s", worker_bin, NULL) == 0);
	CHECK(shmdemux_connect(&c, b.sock, 0) == 0);
	shmdemux_open_opts_init(&o);
	o.realtime = 1;
	id = open_file(c, victim_file, "victim", &o);
	vi = tl_info_of(c, id);
	pfd = pidfd_of(vi.worker_pid);
	CHECK(pfd >= 0);
	/* read a few packets first, then block in the next read */
	reader_start(&r, c, id, 3);
	reader_join(&r);
	CHECK(r.count == 3 && r.code == 0);
	r.stop_after = 0;
	CHECK(pthread_create(&r.thr, NULL, reader_main, &r) == 0);
	CHECK(shmdemux_kill_stream(c, id, NULL) == 0);
	died = wait_death(pfd, 10000);
	close(pfd);
	reader_join(&r);
	vi = tl_info_of(c, id);
	CHECK(r.code == SHMDEMUX_EKILLED);
	CHECK(vi.packets == (uint64_t)r.count);
	CHECK(vi.end_reason == SHMDEMUX_END_KILLED);
	CHECK(r.end_ms < died + WAKE_LIMIT_MS);
	finish(&b, &c, &r, id, "ended:killed", "killed");
}

/* A real allocation failure inside libavformat, under a small address
 * space limit, ends the stream as memory-limit too. */
static void
test_memory(void)
{
	struct tl_broker b;
	struct shmdemux_open_opts o;
	struct shmdemux_stream_info i;
	struct reader r;
	shmdemux_conn *c = NULL;
	uint32_t id;

#ifdef SHMDEMUX_SANITIZE_BUILD
	fprintf(stderr, "SKIP: sanitized workers run without RLIMIT_AS\n");
	exit(77);
#endif
	CHECK(tl_broker_start(&b, "s", worker_bin, NULL) == 0);
	CHECK(shmdemux_connect(&c, b.sock, 0) == 0);
	shmdemux_open_opts_init(&o);
	o.mem_limit = 16u << 20; /* less than the libraries' own mappings */
	id = open_file(c, victim_file, "victim", &o);
	reader_start(&r, c, id, 0);
	reader_join(&r);
	i = tl_info_of(c, id);
	fprintf(stderr, "memory: %s\n", i.end_msg);
	CHECK(r.code == SHMDEMUX_EMEMORY);
	CHECK(i.end_reason == SHMDEMUX_END_MEMORY);
	finish(&b, &c, &r, id, "ended:memory-limit", "memory");
}

/* Not a container: open-failed with libavformat's reason. A container
 * left off the allow-list: open-failed naming the list. */
static void
test_open_failed(int whitelist)
{
	struct tl_broker b;
	struct shmdemux_open_opts o;
	struct shmdemux_stream_info i;
	struct reader r;
	shmdemux_conn *c = NULL;
	char path[600] = "";
	uint32_t id;

	CHECK(tl_broker_start(&b, "s", worker_bin, NULL) == 0);
	CHECK(shmdemux_connect(&c, b.sock, 0) == 0);
	shmdemux_open_opts_init(&o);
	if (whitelist) {
		o.format_whitelist = "mov,mpegts";
		snprintf(path, sizeof(path), "%s", victim_file);
	} else {
		/* this test's own binary: no demuxer takes an ELF file */
		CHECK(readlink("/proc/self/exe", path, sizeof(path) - 1) > 0);
	}
	id = open_file(c, path, "victim", &o);
	reader_start(&r, c, id, 0);
	reader_join(&r);
	i = tl_info_of(c, id);
	fprintf(stderr, "open-failed: %s\n", i.end_msg);
	CHECK(r.code == SHMDEMUX_EOPEN && r.count == 0);
	CHECK(i.end_reason == SHMDEMUX_END_OPEN_FAILED);
	if (whitelist)
		CHECK(strstr(i.end_msg, "whitelist") != NULL);
	shmdemux_detach(&r.st);
	check_cli(&b, id, "ended:open-failed", whitelist ?
		  "not on whitelist" : "could not be opened");
	/* the same file on the default list opens; a malformed list is
	 * refused by the broker */
	if (whitelist) {
		uint32_t bad = 0;

		o.format_whitelist = "mov;rm -rf";
		o.name = NULL;
		CHECK(shmdemux_open_path(c, victim_file, &o, &bad) == -EINVAL);
		id = open_file(c, victim_file, "allowed", NULL);
		reader_start(&r, c, id, 0);
		reader_join(&r);
		CHECK(r.code == SHMDEMUX_EOF && r.count > 0);
		shmdemux_detach(&r.st);
	}
	shmdemux_disconnect(&c);
	CHECK(tl_broker_stop(&b) == 0);
}

/* A lossless reader that stops reading is evicted after the lag timeout;
 * the other reader gets the whole stream; LIST counts the eviction. */
static void
test_evict(void)
{
	struct tl_broker b;
	struct shmdemux_open_opts o;
	struct shmdemux_stream_info i;
	struct shmdemux_packet pkt;
	struct reader full;
	shmdemux_stream *stalled = NULL;
	shmdemux_conn *c = NULL;
	uint32_t id;
	int ret;

	CHECK(tl_broker_start(&b, "s", worker_bin, NULL) == 0);
	CHECK(shmdemux_connect(&c, b.sock, 0) == 0);
	shmdemux_open_opts_init(&o);
	o.ring_size = 64 * 1024;     /* far smaller than the file */
	o.wait_consumers = 2;
	o.lag_timeout_ms = 300;
	id = open_file(c, bystander_file, "evict", &o);
	CHECK(shmdemux_attach(c, id, NULL, SHMDEMUX_START_OLDEST, 0,
			      &stalled) == 0);
	reader_start(&full, c, id, 0);
	/* one packet, then hold the view and stop reading */
	CHECK(shmdemux_read(stalled, &pkt, 10000) == 0);
	reader_join(&full);
	i = tl_info_of(c, id);
	fprintf(stderr, "evict: the reader read %ld packets, then %s; LIST: "
		"%llu packets, %llu drops, %s\n", full.count,
		shmdemux_strerror(full.code), (unsigned long long)i.packets,
		(unsigned long long)i.drops, i.end_msg);
	CHECK(full.code == SHMDEMUX_EOF);
	CHECK(i.packets == (uint64_t)full.count);
	CHECK(i.drops >= 1);
	do
		ret = shmdemux_read(stalled, &pkt, 10000);
	while (ret == 0);
	CHECK(ret == SHMDEMUX_EEVICTED);
	shmdemux_detach(&stalled);
	shmdemux_detach(&full.st);
	shmdemux_disconnect(&c);
	CHECK(tl_broker_stop(&b) == 0);
}

/* The watchdog is short here (300 ms); each case stays quiet for five
 * times that. The quiet period is the behaviour under test, not a way to
 * wait for something: it is a read that must time out. */
#define QUIET_MS 1500

static int
read_all(shmdemux_stream *st, long *count, int timeout_ms)
{
	struct shmdemux_packet pkt;
	int ret;

	while ((ret = shmdemux_read(st, &pkt, timeout_ms)) == 0)
		(*count)++;
	return ret;
}

/* A live source that goes quiet: the worker waits on an empty pipe, which
 * is not a hang. Half the file, a quiet spell, the rest: EOF. */
static void
test_idle_source(void)
{
	struct tl_broker b;
	struct shmdemux_open_opts o;
	struct shmdemux_stream_info i;
	shmdemux_conn *c = NULL;
	shmdemux_stream *st = NULL;
	static char buf[1 << 20];
	FILE *f;
	size_t n;
	long count = 0;
	uint32_t id;
	int push = -1;

	f = fopen(victim_file, "rb");
	CHECK(f != NULL);
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	CHECK(n > 2 && n < sizeof(buf));
	CHECK(tl_broker_start(&b, "s", worker_bin, NULL) == 0);
	CHECK(shmdemux_connect(&c, b.sock, 0) == 0);
	shmdemux_open_opts_init(&o);
	o.watchdog_ms = 500;
	o.name = "idle";
	CHECK(shmdemux_open_push(c, &o, &id, &push) == 0);
	CHECK(shmdemux_attach(c, id, NULL, SHMDEMUX_START_OLDEST, 0,
			      &st) == 0);
	CHECK(write(push, buf, n / 2) == (ssize_t)(n / 2));
	CHECK(read_all(st, &count, QUIET_MS) == -EAGAIN);
	i = tl_info_of(c, id);
	CHECK(i.state != SHMDEMUX_STATE_ENDED);
	CHECK(write(push, buf + n / 2, n - n / 2) == (ssize_t)(n - n / 2));
	CHECK(shmdemux_push_end(c, id, &push) == 0);
	CHECK(read_all(st, &count, 10000) == SHMDEMUX_EOF);
	i = tl_info_of(c, id);
	CHECK(i.end_reason == SHMDEMUX_END_EOF);
	CHECK(i.packets == (uint64_t)count);
	shmdemux_detach(&st);
	shmdemux_disconnect(&c);
	CHECK(tl_broker_stop(&b) == 0);
}

/* A worker that hangs on input it has read but not demuxed, with its pipe
 * empty. held: the pipe is still open (a live source gone quiet) while the
 * worker's read-ahead holds the input's last bytes; the input is the victim
 * file and 144 KiB of zeros after it (a trailer the demuxer never reaches,
 * probing stops early), written before the worker reads. ended: the writer
 * closed the pipe after the victim file; the end of input is waiting to be
 * read. Either way the input waits for the worker, which spins: the
 * watchdog kills it. */
static void
test_held_input(int ended)
{
	struct tl_broker b;
	struct shmdemux_open_opts o;
	struct shmdemux_stream_info i;
	struct reader r;
	shmdemux_conn *c = NULL;
	static char buf[1 << 20];
	FILE *f;
	size_t n;
	uint32_t id;
	int push = -1, pfd;

#ifndef SHMDEMUX_FAULT_INJECTION
	(void)ended;
	fprintf(stderr, "SKIP: built without SHMDEMUX_FAULT_INJECTION\n");
	exit(77);
#endif
	f = fopen(victim_file, "rb");
	CHECK(f != NULL);
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	CHECK(n > 0 && n < (100u << 10) + (16u << 10));
	if (!ended)
		n += 144u << 10; /* zeros: buf is static */
	CHECK(setenv("SHMDEMUX_FAULT", "spin:3:victim", 1) == 0);
	CHECK(tl_broker_start(&b, "s", worker_bin, NULL) == 0);
	unsetenv("SHMDEMUX_FAULT");
	CHECK(shmdemux_connect(&c, b.sock, 0) == 0);
	shmdemux_open_opts_init(&o);
	o.watchdog_ms = 500;
	o.name = "victim";
	if (!ended) {
		o.probesize = 32768;
		o.analyzeduration = 100000;
	}
	CHECK(shmdemux_open_push(c, &o, &id, &push) == 0);
	CHECK(fcntl(push, F_SETPIPE_SZ, 1 << 20) >= (int)n);
	CHECK(write(push, buf, n) == (ssize_t)n);
	if (ended)
		CHECK(shmdemux_push_end(c, id, &push) == 0);
	i = tl_info_of(c, id);
	CHECK(i.worker_pid > 0);
	pfd = pidfd_of(i.worker_pid);
	CHECK(pfd >= 0);
	reader_start(&r, c, id, 0);
	wait_death(pfd, 20000);
	close(pfd);
	reader_join(&r);
	i = tl_info_of(c, id);
	fprintf(stderr, "%s-input: read %ld packets, then %s: %s (%llu of "
		"%zu input bytes read)\n", ended ? "ended" : "held", r.count,
		shmdemux_strerror(r.code), i.end_msg,
		(unsigned long long)i.input_bytes, n);
	CHECK(r.code == SHMDEMUX_EWATCHDOG && r.count == 3);
	CHECK(i.input_bytes == n);
	if (push >= 0)
		close(push);
	finish(&b, &c, &r, id, "ended:watchdog", "no progress for 500 ms");
}

/* A lossless ring kept full by a reader that pauses: the worker waits for
 * room, which is not a hang either. */
static void
test_full_ring(void)
{
	struct tl_broker b;
	struct shmdemux_open_opts o;
	struct shmdemux_stream_info i;
	struct shmdemux_packet pkt;
	shmdemux_conn *c = NULL;
	shmdemux_stream *st = NULL;
	struct pollfd none = { .fd = -1 };
	long count = 1;
	uint32_t id;

	CHECK(tl_broker_start(&b, "s", worker_bin, NULL) == 0);
	CHECK(shmdemux_connect(&c, b.sock, 0) == 0);
	shmdemux_open_opts_init(&o);
	o.ring_size = 64 * 1024;     /* far smaller than the file */
	o.watchdog_ms = 500;
	o.lag_timeout_ms = 60000;    /* no eviction: the reader is slow */
	id = open_file(c, bystander_file, "full", &o);
	CHECK(shmdemux_attach(c, id, NULL, SHMDEMUX_START_OLDEST, 0,
			      &st) == 0);
	CHECK(shmdemux_read(st, &pkt, 10000) == 0);
	CHECK(poll(&none, 1, QUIET_MS) == 0);
	i = tl_info_of(c, id);
	CHECK(i.state == SHMDEMUX_STATE_RUNNING);
	CHECK(i.fill_permille > 500);
	CHECK(read_all(st, &count, 10000) == SHMDEMUX_EOF);
	i = tl_info_of(c, id);
	CHECK(i.end_reason == SHMDEMUX_END_EOF);
	CHECK(i.packets == (uint64_t)count);
	shmdemux_detach(&st);
	shmdemux_disconnect(&c);
	CHECK(tl_broker_stop(&b) == 0);
}

/* Writes MPEG-TS null packets until the pipe breaks. */
static void *
null_packets(void *arg)
{
	static unsigned char buf[188 * 64];
	int fd = *(int *)arg;

	for (size_t off = 0; off < sizeof(buf); off += 188) {
		memset(buf + off, 0xff, 188);
		memcpy(buf + off, "\x47\x1f\xff\x10", 4);
	}
	while (write(fd, buf, sizeof(buf)) > 0)
		;
	close(fd);
	return NULL;
}

/* A demuxer that reads forever without finding a program (endless null
 * packets, an unbounded probe): busy, never hung, but still opening after
 * the broker's --open-timeout. */
static void
test_open_timeout(void)
{
	static const char *const args[] = { "--open-timeout", "500", NULL };
	struct tl_broker b;
	struct shmdemux_open_opts o;
	struct shmdemux_stream_info i;
	struct reader r;
	shmdemux_conn *c = NULL;
	pthread_t writer;
	uint32_t id;
	int push = -1;

	CHECK(tl_broker_start(&b, "s", worker_bin, args) == 0);
	CHECK(shmdemux_connect(&c, b.sock, 0) == 0);
	shmdemux_open_opts_init(&o);
	o.format = "mpegts";
	o.probesize = INT64_C(1) << 40;
	o.analyzeduration = INT64_C(1) << 40;
	CHECK(shmdemux_open_push(c, &o, &id, &push) == 0);
	CHECK(pthread_create(&writer, NULL, null_packets, &push) == 0);
	reader_start(&r, c, id, 0);
	reader_join(&r);
	/* the worker is gone: its pipe breaks and the writer returns */
	CHECK(pthread_join(writer, NULL) == 0);
	i = tl_info_of(c, id);
	fprintf(stderr, "open-timeout: %s: %s\n", shmdemux_strerror(r.code),
		i.end_msg);
	CHECK(r.code == SHMDEMUX_EWATCHDOG && r.count == 0);
	CHECK(strstr(i.end_msg, "still opening") != NULL);
	finish(&b, &c, &r, id, "ended:watchdog", "still opening");
}

/* Readers that crash, and clients that connect and vanish, leave the
 * broker and the other readers unharmed. */
static void
test_consumers(void)
{
	struct tl_broker b;
	struct shmdemux_open_opts o;
	struct shmdemux_stream_info i;
	struct reader full;
	shmdemux_conn *c = NULL;
	uint32_t id;
	pid_t kids[4];
	int st;

	CHECK(tl_broker_start(&b, "s", worker_bin, NULL) == 0);
	CHECK(shmdemux_connect(&c, b.sock, 0) == 0);
	shmdemux_open_opts_init(&o);
	o.ring_size = 64 * 1024;
	o.wait_consumers = 3;
	id = open_file(c, bystander_file, "shared", &o);
	for (int k = 0; k < 4; k++) {
		kids[k] = fork();
		CHECK(kids[k] >= 0);
		if (kids[k] == 0) {
			shmdemux_conn *cc = NULL;
			shmdemux_stream *s = NULL;
			struct shmdemux_packet pkt;

			if (k >= 2) {
				/* connect and vanish */
				_exit(shmdemux_connect(&cc, b.sock, 0) == 0 ?
				      0 : 1);
			}
			if (shmdemux_connect(&cc, b.sock, 0) != 0 ||
			    shmdemux_attach(cc, id, NULL, SHMDEMUX_START_OLDEST,
					    0, &s) != 0 ||
			    shmdemux_read(s, &pkt, 10000) != 0)
				_exit(1);
			/* die holding a view: abort and SIGKILL */
			if (k == 0)
				abort();
			raise(SIGKILL);
			_exit(1);
		}
	}
	reader_start(&full, c, id, 0);
	for (int k = 0; k < 4; k++) {
		CHECK(waitpid(kids[k], &st, 0) == kids[k]);
		if (k == 0)
			CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT);
		else if (k == 1)
			CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
		else
			CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	reader_join(&full);
	i = tl_info_of(c, id);
	fprintf(stderr, "consumers: the reader read %ld packets, then %s; "
		"LIST: %llu packets, %s\n", full.count,
		shmdemux_strerror(full.code), (unsigned long long)i.packets,
		i.end_msg);
	CHECK(full.code == SHMDEMUX_EOF);
	CHECK(i.packets == (uint64_t)full.count);
	CHECK(i.end_reason == SHMDEMUX_END_EOF);
	shmdemux_detach(&full.st);
	/* the broker still serves: a second stream in full */
	open_file(c, bystander_file, "after", NULL);
	check_bystander(&b, "after");
	shmdemux_disconnect(&c);
	CHECK(tl_broker_stop(&b) == 0);
}

int
main(int argc, char **argv)
{
	const char *which;

	if (argc != 7) {
		fprintf(stderr, "usage: %s SHMDEMUXD WORKER BIN_DIR MEDIA_DIR "
			"FFPROBE_PACKETS CASE\n", argv[0]);
		return 2;
	}
	worker_bin = argv[2];
	bin_dir = argv[3];
	ffprobe_packets = argv[5];
	which = argv[6];
	tl_media_path(victim_file, sizeof(victim_file), argv[4], VICTIM_MEDIA);
	tl_media_path(bystander_file, sizeof(bystander_file), argv[4],
		      BYSTANDER_MEDIA);
	CHECK(access(ffprobe_packets, X_OK) == 0);
	tl_let_faults_through();
	tl_init(argv[1], 120);
	for (size_t k = 0; k < sizeof(faults) / sizeof(faults[0]); k++) {
		if (strcmp(which, faults[k].kind) == 0) {
			test_fault(&faults[k]);
			return 0;
		}
	}
	if (strcmp(which, "killed") == 0)
		test_killed();
	else if (strcmp(which, "memory") == 0)
		test_memory();
	else if (strcmp(which, "open-failed") == 0)
		test_open_failed(0);
	else if (strcmp(which, "whitelist") == 0)
		test_open_failed(1);
	else if (strcmp(which, "open-timeout") == 0)
		test_open_timeout();
	else if (strcmp(which, "idle-source") == 0)
		test_idle_source();
	else if (strcmp(which, "held-input") == 0)
		test_held_input(0);
	else if (strcmp(which, "ended-input") == 0)
		test_held_input(1);
	else if (strcmp(which, "full-ring") == 0)
		test_full_ring();
	else if (strcmp(which, "evict") == 0)
		test_evict();
	else if (strcmp(which, "consumers") == 0)
		test_consumers();
	else {
		fprintf(stderr, "unknown case %s\n", which);
		return 2;
	}
	return 0;
}
