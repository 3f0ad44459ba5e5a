/*
 * test_seal.c - no consumer can change what the others read: the ring's
 * data segment is sealed against every write but the worker's and the
 * broker's own mappings (F_SEAL_FUTURE_WRITE), before any consumer gets it,
 * and the library refuses a segment that is not.
 *
 *   forge     a consumer reopens its read-only data fd read-write through
 *             /proc/self/fd (root: mode bits do not stop it) and tries every
 *             way to write: write, pwrite, a writable shared mapping,
 *             mprotect of a read-only one, fchmod and a new open, hole
 *             punching, MADV_REMOVE, ftruncate. Each must fail with EPERM or
 *             EACCES (one that succeeds forges the end status and a payload
 *             byte, as an attacker would); then another consumer (the CLI)
 *             reads exactly ffprobe's packets and the true end (dump exits
 *             0, not "crashed").
 *   defer     ATTACH sent right behind OPEN, with a spare and with an exec
 *             per stream: every data fd received already carries the seals
 *             and the announced size; OPEN-to-ATTACHED times printed. A
 *             worker that exits without mapping its ring (/bin/false) and
 *             one that never maps it (it sleeps; a pushed source that never
 *             gets a byte, so only the start deadline ends it) still have
 *             their consumers answered, sealed, with the stream's end; a
 *             consumer that leaves while it waits is forgotten.
 *   client    a fake broker hands libshmdemux data fds without the seals,
 *             with only some, of the wrong size, or a regular file:
 *             shmdemux_attach() refuses each with SHMDEMUX_EUNSEALED; a
 *             properly sealed one is accepted.
 *
 * usage: test_seal SHMDEMUXD WORKER BIN_DIR MEDIA_DIR FFPROBE_PACKETS CASE
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "broker_testlib.h"
#include "client_testlib.h"
#include "shmdemux.h"

#define SEALS_WANTED (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_FUTURE_WRITE | \
		      F_SEAL_SEAL)

static struct tl_media_env env;

/* ---- forge ---- */

struct target {
	int ro_fd;            /* what the broker handed us */
	size_t len;           /* the segment's size */
	off_t status_off;     /* ring_hdr.end_reason */
	off_t payload_off;    /* first byte of the first packet */
	uint8_t forged_byte;  /* what an attacker writes there */
	unsigned refused, succeeded;
};

static const uint32_t forged_reason = SD_END_CRASHED;

static void
verdict(struct target *t, const char *what, int ok, int err)
{
	if (ok) {
		fprintf(stderr, "%s: succeeded: the ring was written\n", what);
		t->succeeded++;
	} else if (err != EPERM && err != EACCES) {
		fprintf(stderr, "%s: failed with %s, not EPERM/EACCES\n", what,
			strerrorname_np(err));
		t->succeeded++;
	} else {
		printf("%-44s refused (%s)\n", what, strerrorname_np(err));
		t->refused++;
	}
}

/* Forge through a mapping that turned out writable. */
static void
forge_mapped(const struct target *t, uint8_t *m)
{
	memcpy(m + t->status_off, &forged_reason, sizeof(forged_reason));
	m[t->payload_off] = t->forged_byte;
}

static int
reopen_rw(const struct target *t)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/self/fd/%d", t->ro_fd);
	return open(path, O_RDWR | O_CLOEXEC);
}

static void
try_pwrite(struct target *t, int rw, const char *what)
{
	ssize_t a = pwrite(rw, &forged_reason, sizeof(forged_reason),
			   t->status_off);
	int e = errno;
	ssize_t b = pwrite(rw, &t->forged_byte, 1, t->payload_off);

	verdict(t, what, a > 0 || b > 0, a > 0 ? e : errno);
}

static void
try_write(struct target *t, int rw)
{
	ssize_t n = -1;

	if (lseek(rw, t->status_off, SEEK_SET) == t->status_off)
		n = write(rw, &forged_reason, sizeof(forged_reason));
	if (n > 0 && lseek(rw, t->payload_off, SEEK_SET) == t->payload_off)
		(void)!write(rw, &t->forged_byte, 1);
	verdict(t, "write() through the read-write reopen", n > 0, errno);
}

static void
try_mmap_shared(struct target *t, int rw)
{
	void *m = mmap(NULL, t->len, PROT_READ | PROT_WRITE, MAP_SHARED, rw, 0);
	int e = errno;

	if (m != MAP_FAILED) {
		forge_mapped(t, m);
		munmap(m, t->len);
	}
	verdict(t, "mmap(PROT_WRITE, MAP_SHARED)", m != MAP_FAILED, e);
}

static void
try_mprotect(struct target *t, int fd, const char *what)
{
	void *m = mmap(NULL, t->len, PROT_READ, MAP_SHARED, fd, 0);
	int r, e;

	CHECK(m != MAP_FAILED);
	r = mprotect(m, t->len, PROT_READ | PROT_WRITE);
	e = errno;
	if (r == 0)
		forge_mapped(t, m);
	munmap(m, t->len);
	verdict(t, what, r == 0, e);
}

/* Zeroing the pages that hold a payload is a write too. */
static void
try_punch(struct target *t, int rw)
{
	off_t page = t->payload_off & ~(off_t)4095;
	int r = fallocate(rw, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			  page, 4096);

	verdict(t, "fallocate(PUNCH_HOLE) over a payload", r == 0, errno);
}

static void
try_madv_remove(struct target *t, int fd)
{
	void *m = mmap(NULL, t->len, PROT_READ, MAP_SHARED, fd, 0);
	off_t page = t->payload_off & ~(off_t)4095;
	int r, e;

	CHECK(m != MAP_FAILED);
	r = madvise((char *)m + page, 4096, MADV_REMOVE);
	e = errno;
	munmap(m, t->len);
	verdict(t, "madvise(MADV_REMOVE) over a payload", r == 0, e);
}

static void
try_truncate(struct target *t, int rw)
{
	int r = ftruncate(rw, 4096);

	verdict(t, "ftruncate() to one page", r == 0, errno);
}

static void
attack(struct target *t)
{
	int rw = reopen_rw(t), rw2;

	/* Opening is not writing: root may always open, so what matters is
	 * that nothing written through it lands. */
	if (rw < 0) {
		verdict(t, "open(/proc/self/fd/N, O_RDWR)", 0, errno);
		try_mprotect(t, t->ro_fd,
			     "mprotect(+PROT_WRITE), read-only fd");
		try_madv_remove(t, t->ro_fd);
		return;
	}
	printf("reopened the data fd read-write through /proc/self/fd\n");
	try_pwrite(t, rw, "pwrite() through the read-write reopen");
	try_write(t, rw);
	try_mmap_shared(t, rw);
	try_mprotect(t, rw, "mprotect(+PROT_WRITE) of a shared mapping");
	try_mprotect(t, t->ro_fd, "mprotect(+PROT_WRITE), read-only fd");
	try_punch(t, rw);
	try_madv_remove(t, rw);
	try_truncate(t, rw);
	(void)fchmod(rw, 0666);
	rw2 = reopen_rw(t);
	if (rw2 >= 0) {
		try_pwrite(t, rw2, "pwrite() after fchmod 0666 and a reopen");
		close(rw2);
	}
	close(rw);
}

/* Read the stream to its end as a consumer; note where the first packet's
 * payload lies. */
static void
read_to_end(struct target *t, int fds[2])
{
	struct ring *r = NULL;
	struct ring_rd v;
	long n = 0;
	int ret;

	CHECK(ring_map(&r, fds[0], -1, RING_ROLE_CONSUMER) == 0);
	CHECK(ring_attach(r, fds[1], RING_START_OLDEST) == 0);
	t->payload_off = -1;
	while ((ret = ring_next(r, &v, 20000)) == 0) {
		if (v.type == RING_REC_PACKET && t->payload_off < 0 &&
		    v.payload_len > 0) {
			t->payload_off = (const char *)v.payload -
				(const char *)ring_hdr(r);
			t->forged_byte = (uint8_t)~*(const uint8_t *)v.payload;
		}
		n++;
		ring_release(r, &v);
	}
	CHECK(ret == -EPIPE);
	CHECK(t->payload_off > 0);
	CHECK(ring_hdr(r)->end_reason == SD_END_EOF);
	printf("attacker read %ld records, end eof; first payload at %lld\n",
	       n, (long long)t->payload_off);
	ring_unmap(&r);
}

/* The CLI, another consumer, dumps the stream: ffprobe's packets, exit 0
 * (a forged end would make it exit 1 naming a crash). */
static void
check_honest(const struct tl_broker *b, const char *file, uint32_t id)
{
	char cmd[4096];

	snprintf(cmd, sizeof(cmd),
		 "'%s' '%s' > '%s/ref.csv' && "
		 "'%s/shmdemux' --socket '%s' dump %u --csv > '%s/out.csv' && "
		 "cmp '%s/ref.csv' '%s/out.csv'",
		 env.ffprobe_packets, file, tl_dir(), env.bin_dir, b->sock,
		 id, tl_dir(), tl_dir(), tl_dir());
	CHECK(tl_run(cmd) == 0);
	printf("another consumer read exactly ffprobe's packets, end eof\n");
}

static void
test_forge(void)
{
	struct tl_broker b;
	struct ctl_attached att;
	struct ctl_open o;
	struct target t = {
		.status_off = offsetof(struct ring_hdr, end_reason),
	};
	char file[1024], err[CTL_MSG_LEN];
	int fd, id, slot, fds[2];

	snprintf(file, sizeof(file), "%s/h264_aac.ts", env.media);
	CHECK(tl_broker_start(&b, "s", env.worker, NULL) == 0);
	fd = tl_connect(b.sock);
	CHECK(fd >= 0);
	tl_open_init(&o, CTL_SRC_PATH, file, "");
	id = tl_open(fd, &o, -1, NULL, err, sizeof(err));
	CHECK(id > 0);
	slot = tl_attach(fd, (uint32_t)id, 0, fds, &att);
	CHECK(slot >= 0);
	t.ro_fd = fds[0];
	t.len = (size_t)att.data_size;
	/* The whole file fits the ring: nothing is reclaimed, a consumer
	 * attaching later reads every record the attacker saw. */
	read_to_end(&t, fds);
	attack(&t);
	close(fds[0]);
	close(fds[1]);
	printf("%u attacks refused, %u succeeded\n", t.refused, t.succeeded);
	check_honest(&b, file, (uint32_t)id);
	CHECK(t.succeeded == 0);
	close(fd);
	CHECK(tl_broker_stop(&b) == 0);
}

/* ---- defer ---- */

/* A data fd as a consumer gets it: every seal, the announced size. */
static void
check_sealed(int fd, uint64_t size, const char *what)
{
	int seals = fcntl(fd, F_GET_SEALS);
	struct stat st;

	CHECK(fstat(fd, &st) == 0);
	if (seals < 0 || (seals & SEALS_WANTED) != SEALS_WANTED ||
	    (uint64_t)st.st_size != size) {
		fprintf(stderr, "%s: data fd with seals 0x%x (want 0x%x), "
			"size %lld (announced %" PRIu64 ")\n", what, seals,
			SEALS_WANTED, (long long)st.st_size, size);
		CHECK(0);
	}
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* OPEN, then ATTACH (one per connection) on the heels of its reply, runs
 * times. */
static void
attach_behind_open(const struct tl_broker *b, const char *file, int runs,
		   const char *label)
{
	double ms[32];

	CHECK(runs <= 32);
	for (int i = 0; i < runs; i++) {
		struct ctl_attached att;
		struct ctl_open o;
		char err[CTL_MSG_LEN];
		double t0 = (double)now_ns() / 1e6;
		int fd = tl_connect(b->sock), id, fds[2] = { -1, -1 };

		CHECK(fd >= 0);
		tl_open_init(&o, CTL_SRC_PATH, file, "");
		id = tl_open(fd, &o, -1, NULL, err, sizeof(err));
		CHECK(id > 0);
		CHECK(tl_attach(fd, (uint32_t)id, CTL_ATTACH_OBSERVER, fds,
				&att) == -1);
		ms[i] = (double)now_ns() / 1e6 - t0;
		check_sealed(fds[0], att.data_size, label);
		/* an observer gets the data segment and no cursor page */
		CHECK(fds[1] < 0 && att.page_size == 0);
		close(fds[0]);
		CHECK(tl_simple(fd, CTL_CLOSE, (uint32_t)id) == 0);
		close(fd);
	}
	qsort(ms, (size_t)runs, sizeof(ms[0]), cmp_double);
	printf("%s: %d attaches behind their OPEN, all sealed; OPEN to "
	       "ATTACHED min %.1f ms, median %.1f ms, max %.1f ms\n", label,
	       runs, ms[0], ms[runs / 2], ms[runs - 1]);
}

/* A consumer that sends ATTACH and leaves without its answer: the broker
 * forgets it (checked by the clean stop that follows). */
static void
leave_waiting(const struct tl_broker *b, uint32_t id)
{
	struct ctl_attach a;
	int fd = tl_connect(b->sock);

	CHECK(fd >= 0);
	memset(&a, 0, sizeof(a));
	ctl_hdr_init(&a.hdr, CTL_ATTACH, 5);
	a.ref.stream_id = id;
	CHECK(ctl_send(fd, &a, sizeof(a), NULL, 0) == 0);
	close(fd);
}

/* A worker binary that never maps its ring: its stream's consumers are
 * answered, sealed, once the broker gives up on it (or it dies). Returns
 * the stream's end reason. */
static uint32_t
attach_to_unready(const char *fake, const char *const *args, int push)
{
	struct ctl_stream_info info;
	struct ctl_attached att;
	struct ctl_open o;
	struct tl_broker b;
	char err[CTL_MSG_LEN], file[1024];
	int fd, id, slot, fds[2], push_wr = -1;
	struct ring *r = NULL;
	struct ring_rd v;
	double t0;

	snprintf(file, sizeof(file), "%s/h264_aac.ts", env.media);
	CHECK(tl_broker_start(&b, "u", fake, args) == 0);
	fd = tl_connect(b.sock);
	CHECK(fd >= 0);
	tl_open_init(&o, push ? CTL_SRC_PUSH : CTL_SRC_PATH,
		     push ? "" : file, "");
	t0 = (double)now_ns() / 1e6;
	id = tl_open(fd, &o, -1, push ? &push_wr : NULL, err, sizeof(err));
	CHECK(id > 0);
	leave_waiting(&b, (uint32_t)id);
	slot = tl_attach(fd, (uint32_t)id, 0, fds, &att);
	CHECK(slot >= 0);
	check_sealed(fds[0], att.data_size, fake);
	/* answered once the worker's fd 1 closed, which may be before the
	 * broker has reaped it: the end follows in the ring */
	CHECK(ring_map(&r, fds[0], -1, RING_ROLE_CONSUMER) == 0);
	CHECK(ring_attach(r, fds[1], RING_START_OLDEST) == 0);
	CHECK(ring_next(r, &v, 20000) == -EPIPE);
	ring_unmap(&r);
	close(fds[0]);
	close(fds[1]);
	CHECK(tl_info(b.sock, (uint32_t)id, &info) == 1);
	printf("%s: ATTACH answered after %.0f ms, sealed; stream %s: %s\n",
	       fake, (double)now_ns() / 1e6 - t0,
	       sd_end_reason_name(info.end_reason), info.end_msg);
	if (push_wr >= 0)
		close(push_wr);
	close(fd);
	CHECK(tl_broker_stop(&b) == 0);
	return info.end_reason;
}

static void
test_defer(void)
{
	static const char *const exec_opt[] = { "--spare-workers", "0", NULL };
	static const char *const hung_opt[] = {
		"--spare-workers", "0", "--open-timeout", "500", NULL,
	};
	struct tl_broker b;
	char file[1024], script[512];
	FILE *f;

	snprintf(file, sizeof(file), "%s/h264_aac.ts", env.media);
	CHECK(tl_broker_start(&b, "s1", env.worker, NULL) == 0);
	attach_behind_open(&b, file, 11, "spare");
	CHECK(tl_broker_stop(&b) == 0);
	CHECK(tl_broker_start(&b, "s0", env.worker, exec_opt) == 0);
	attach_behind_open(&b, file, 11, "exec per stream");
	CHECK(tl_broker_stop(&b) == 0);

	/* dies at once: its end of the readiness pipe closes with it */
	CHECK(attach_to_unready("/bin/false", exec_opt, 0) ==
	      SD_END_EXITED);
	/* never maps and never dies: the open deadline ends it, and since
	 * the pushed source never gave a byte the end is the source's
	 * (open-failed), whichever of the start deadline and the watchdog
	 * fires first */
	snprintf(script, sizeof(script), "%s/sleeper", tl_dir());
	f = fopen(script, "w");
	CHECK(f != NULL);
	fprintf(f, "#!/bin/sh\nexec sleep 60\n");
	CHECK(fclose(f) == 0);
	CHECK(chmod(script, 0755) == 0);
	CHECK(attach_to_unready(script, hung_opt, 1) == SD_END_OPEN_FAILED);
	/* a file is input waiting: the worker's doing, a watchdog end */
	CHECK(attach_to_unready(script, hung_opt, 0) == SD_END_WATCHDOG);
}

/* ---- client: a fake broker ---- */

enum fake_case {
	FAKE_OK, FAKE_NONE, FAKE_SIZE_SEALS, FAKE_NO_SEAL_SEAL,
	FAKE_NO_SHRINK, FAKE_WRONG_SIZE, FAKE_FILE, FAKE_COUNT,
};

static const char *const fake_names[] = {
	"all seals, announced size", "no seals",
	"shrink+grow+seal (no future-write)", "no F_SEAL_SEAL",
	"no F_SEAL_SHRINK", "announced size off by a page", "a regular file",
};

struct fake {
	int listen_fd;
	int quit[2];
	int data_fd;
	uint64_t announce;
	unsigned attaches;
};

static void
fake_reply(struct fake *f, int c)
{
	union ctl_msg m;
	struct ctl_attached a;
	int fds[CTL_MAX_FDS], nfds = 0;
	const int out[1] = { f->data_fd };

	if (tl_recv(c, &m, fds, &nfds) <= 0)
		return;
	for (int i = 0; i < nfds; i++)
		close(fds[i]);
	if (m.hdr.type != CTL_ATTACH)
		return;
	memset(&a, 0, sizeof(a));
	ctl_hdr_init(&a.hdr, CTL_ATTACHED, m.hdr.id);
	a.stream_id = 1;
	a.slot = -1;
	a.data_size = f->announce;
	/* an observer's answer: the data segment alone, no cursor page */
	CHECK(ctl_send(c, &a, sizeof(a), out, 1) == 0);
	f->attaches++;
}

/* Serve every connection until told to quit: answer ATTACH. */
static void *
fake_main(void *arg)
{
	struct fake *f = arg;
	struct pollfd p[10];
	int n = 2;

	p[0] = (struct pollfd){ .fd = f->quit[0], .events = POLLIN };
	p[1] = (struct pollfd){ .fd = f->listen_fd, .events = POLLIN };
	for (;;) {
		CHECK(poll(p, (nfds_t)n, 30000) > 0);
		if (p[0].revents)
			break;
		if ((p[1].revents & POLLIN) && n < 10) {
			int c = accept4(f->listen_fd, NULL, NULL, SOCK_CLOEXEC);

			CHECK(c >= 0);
			p[n++] = (struct pollfd){ .fd = c, .events = POLLIN };
		}
		for (int i = 2; i < n; i++) {
			if (p[i].revents == 0)
				continue;
			if (p[i].revents & POLLIN)
				fake_reply(f, p[i].fd);
			if (p[i].revents & (POLLHUP | POLLERR)) {
				close(p[i].fd);
				p[i--] = p[--n];
			}
		}
	}
	for (int i = 2; i < n; i++)
		close(p[i].fd);
	return NULL;
}

static void
copy_fd(int from, int to, size_t len)
{
	char buf[65536];

	for (size_t off = 0; off < len;) {
		ssize_t n = pread(from, buf, sizeof(buf), (off_t)off);

		CHECK(n > 0);
		CHECK(pwrite(to, buf, (size_t)n, (off_t)off) == n);
		off += (size_t)n;
	}
}

/* A valid ring, its data segment sealed (or not) as the case says. */
static void
fake_ring(struct fake *f, enum fake_case k)
{
	const struct ring_params p = {
		.data_size = 1 << 20, .max_consumers = 2,
		.mode = RING_MODE_LIVE,
	};
	int seals = SEALS_WANTED, plain, data;
	char path[512];
	struct stat st;

	plain = memfd_create("fake-plain", MFD_CLOEXEC);
	CHECK(plain >= 0);
	CHECK(ring_create(plain, &p) == 0);
	CHECK(fstat(plain, &st) == 0 && st.st_size > 0);
	f->announce = (uint64_t)st.st_size;
	if (k == FAKE_FILE) {
		snprintf(path, sizeof(path), "%s/fake-ring", tl_dir());
		data = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	} else {
		data = memfd_create("fake-data", MFD_CLOEXEC |
				    (k == FAKE_NONE ? 0 : MFD_ALLOW_SEALING));
	}
	CHECK(data >= 0);
	CHECK(ftruncate(data, st.st_size) == 0);
	copy_fd(plain, data, (size_t)st.st_size);
	close(plain);
	if (k == FAKE_SIZE_SEALS)
		seals = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;
	else if (k == FAKE_NO_SEAL_SEAL)
		seals &= ~F_SEAL_SEAL;
	else if (k == FAKE_NO_SHRINK)
		seals &= ~F_SEAL_SHRINK;
	else if (k == FAKE_WRONG_SIZE)
		f->announce += 4096;
	if (k != FAKE_NONE && k != FAKE_FILE)
		CHECK(fcntl(data, F_ADD_SEALS, seals) == 0);
	f->data_fd = data;
}

static void
test_client(void)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char sock[sizeof(sun.sun_path)];
	int w = snprintf(sock, sizeof(sock), "%s/fake", tl_dir());

	CHECK(w > 0 && (size_t)w < sizeof(sock));
	memcpy(sun.sun_path, sock, (size_t)w + 1);
	for (int k = 0; k < FAKE_COUNT; k++) {
		struct fake f = { .listen_fd = -1 };
		shmdemux_conn *c = NULL;
		shmdemux_stream *s = NULL;
		pthread_t thr;
		int ret;

		fake_ring(&f, (enum fake_case)k);
		f.listen_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
		CHECK(f.listen_fd >= 0);
		unlink(sock);
		CHECK(bind(f.listen_fd, (struct sockaddr *)&sun,
			   sizeof(sun)) == 0);
		CHECK(listen(f.listen_fd, 8) == 0);
		CHECK(pipe2(f.quit, O_CLOEXEC) == 0);
		CHECK(pthread_create(&thr, NULL, fake_main, &f) == 0);

		CHECK(shmdemux_connect(&c, sock, 0) == 0);
		ret = shmdemux_attach(c, 1, NULL, SHMDEMUX_START_OLDEST,
				      SHMDEMUX_ATTACH_OBSERVER, &s);
		printf("%-36s attach: %s\n", fake_names[k],
		       ret == 0 ? "accepted" : shmdemux_strerror(ret));
		if (k == FAKE_OK)
			CHECK(ret == 0 && s != NULL);
		else
			CHECK(ret == SHMDEMUX_EUNSEALED && s == NULL);
		shmdemux_detach(&s);
		shmdemux_disconnect(&c);

		CHECK(write(f.quit[1], "q", 1) == 1);
		CHECK(pthread_join(thr, NULL) == 0);
		CHECK(f.attaches == 1);
		close(f.quit[0]);
		close(f.quit[1]);
		close(f.listen_fd);
		close(f.data_fd);
		unlink(sock);
	}
	CHECK(strstr(shmdemux_strerror(SHMDEMUX_EUNSEALED), "seal") != NULL);
}

int
main(int argc, char **argv)
{
	static const struct tl_case cases[] = {
		{ "forge", test_forge },
		{ "defer", test_defer },
		{ "client", test_client },
		{ NULL, NULL },
	};
	return tl_media_main(argc, argv, "h264_aac.ts", 120, cases, &env);
}
