/*
 * test_hostile_consumer.c - a consumer cannot evict, block, freeze or
 * misdirect the others.
 *
 *   test_hostile_consumer SHMDEMUXD WORKER FFPROBE-PACKETS
 *
 * One lossless stream of generated media (a few thousand small packets, a
 * 64 KiB ring, wait_consumers 3, a 500 ms lag timeout). While two honest
 * consumers read it, hostile ones, each through the control protocol and
 * the fds it hands out, as a consumer process can:
 *   scribbler  attaches first (one of the three the stream waits for),
 *              maps every fd it received, and a read-write reopen of each
 *              through /proc/self/fd, writably wherever the kernel lets it,
 *              and writes over every byte it can reach: first where it
 *              hurts (magic, slot states, other cursors, the attach count,
 *              its own cursor and counters), then at random, until the
 *              end; it also tries to resize every object;
 *   looper     attaches and detaches 300 times (every third an observer),
 *              reading a record each time it can;
 *   jiggler    reads a little, then moves its cursor back and forth;
 *   staller    attaches and never reads.
 * The honest consumers must get exactly ffprobe's packets within a bounded
 * time, the jiggler must be evicted, every attach must succeed, `ls` must
 * report sane numbers, the broker must live, and attach/detach in a loop
 * must leave the broker's descriptor count where it was.
 *
 * The data segment's own write protection (F_SEAL_FUTURE_WRITE) is checked
 * only when the segment carries that seal: the scribbler never writes a
 * writable mapping of it, only reports one.
 *
 * The attacks are written against both cursor layouts: the shared cursor
 * segment of ring ABI 2 (where each of them succeeds) and the per-consumer
 * pages of ABI 3.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "broker_testlib.h"
#include "futex.h"

#if RING_ABI_VERSION >= 3
#define PAGES 1 /* a cursor page per consumer */
#endif

#define LAG_MS 500
#define DEADLINE_MS 90000   /* a hung consumer gives up */
#define HONEST_MS 30000     /* the honest ones' bound (~2 s unloaded) */
#define LOOPS 300

static struct tl_broker b;
static uint32_t sid;

static void
say(int fd)
{
	char c = 'x';

	CHECK(write(fd, &c, 1) == 1);
}

static int
heard(int fd)
{
	char c;

	return read(fd, &c, 1) == 1;
}

/* ---- reading ---- */

/* Map the ring as a consumer and attach at the oldest record. */
static int
reader(int fds[2], int slot, struct ring **r)
{
	int ret;

	*r = NULL;
#ifdef PAGES
	(void)slot;
	ret = ring_map(r, fds[0], -1, RING_ROLE_CONSUMER);
	if (ret == 0)
		ret = ring_attach(*r, fds[1], RING_START_OLDEST);
#else
	ret = ring_map(r, fds[0], fds[1], RING_ROLE_CONSUMER);
	if (ret == 0)
		ret = ring_attach(*r, (unsigned)slot, RING_START_OLDEST);
#endif
	if (ret < 0)
		ring_unmap(r);
	return ret;
}

/* An honest consumer: attach, tell the parent, read every record to the
 * end, write the packets as ffprobe-packets CSV to out. */
static int
honest(int note, const char *out)
{
	struct tl_text csv = { 0 };
	struct ring *r;
	struct ring_rd v;
	uint64_t t0;
	int fd, fds[2], slot, ret;
	FILE *f;

	fd = tl_connect(b.sock);
	if (fd < 0 || (slot = tl_attach(fd, sid, 0, fds, NULL)) < 0)
		return 10;
	ret = reader(fds, slot, &r);
	close(fds[0]);
	close(fds[1]);
	if (ret < 0)
		return 11;
	say(note);
	t0 = now_ms();
	for (;;) {
		ret = ring_next(r, &v, 100);
		if (ret == -EAGAIN && now_ms() - t0 < DEADLINE_MS)
			continue;
		if (ret != 0)
			break;
		tl_csv_record(&v, &csv);
		ring_release(r, &v);
	}
	if (ret != -EPIPE) {
		fprintf(stderr, "honest consumer: %s after %llu ms\n",
			strerror(-ret), (unsigned long long)(now_ms() - t0));
		return 12;
	}
	f = fopen(out, "w");
	if (f == NULL || fwrite(csv.buf, 1, csv.len, f) != csv.len ||
	    fclose(f) != 0)
		return 13;
	ring_unmap(&r);
	close(fd);
	return 0;
}

/* ---- the scribbler ---- */

struct wmap {
	uint8_t *p;
	size_t len;
	ino_t ino;
};

/* Writable shared mappings of fd, and of a read-write reopen through
 * /proc/self/fd, whatever the kernel allows. */
static int
map_writable(int fd, struct wmap *out, int n, ino_t data_ino)
{
	char path[64];
	struct stat st;
	int fds[2] = { fd, -1 };

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	fds[1] = open(path, O_RDWR | O_CLOEXEC);
	for (int i = 0; i < 2; i++) {
		void *p;

		if (fds[i] < 0 || fstat(fds[i], &st) < 0 || st.st_size == 0)
			continue;
		/* no object may be resized under its other users */
		CHECK(ftruncate(fds[i], 0) < 0);
		CHECK(ftruncate(fds[i], st.st_size + 4096) < 0);
		p = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE,
			 MAP_SHARED, fds[i], 0);
		if (p == MAP_FAILED)
			continue;
		if (st.st_ino == data_ino) {
			/* the data segment: another boundary (its seals) */
			fprintf(stderr, "scribbler: the data segment is "
				"writable through %s\n", i ? path : "its fd");
			munmap(p, (size_t)st.st_size);
			continue;
		}
		out[n].p = p;
		out[n].len = (size_t)st.st_size;
		out[n].ino = st.st_ino;
		n++;
	}
	if (fds[1] >= 0)
		close(fds[1]);
	return n;
}

/* Where it hurts, in the mapping of our cursor object. */
static void
aim(uint8_t *m, size_t len, int slot)
{
#ifdef PAGES
	struct ring_page *pg = (struct ring_page *)m;

	(void)len;
	(void)slot;
	pg->magic = 0;
	pg->slot = 7;
	pg->id ^= 1;
	atomic_store(&pg->pos, UINT64_MAX - 63);
	atomic_store(&pg->overruns, UINT64_MAX);
	atomic_store(&pg->sleep_seq, UINT64_MAX);
	atomic_fetch_add(&pg->release_seq, 1);
	futex_wake(&pg->release_seq, INT32_MAX);
#else
	struct ring_cursors *c = (struct ring_cursors *)m;
	struct ring_slot *s = (struct ring_slot *)(m + RING_CURSORS_HDR_SIZE);
	unsigned n = (unsigned)((len - RING_CURSORS_HDR_SIZE) / sizeof(*s));

	(void)slot;
	/* the wait_consumers hold ends at once */
	atomic_fetch_add(&c->attached_total, 100);
	/* every other cursor past what it read, every slot taken */
	for (unsigned i = 0; i < n; i++) {
		atomic_store(&s[i].pos, UINT64_MAX - 63);
		atomic_store(&s[i].state, RING_SLOT_ACTIVE);
	}
	/* and nobody maps it any more */
	c->magic = 0;
#endif
}

static uint64_t
xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static int
scribbler(int note, int stop)
{
	struct wmap maps[8];
	struct stat st;
	uint64_t rng = 0x5eed;
	int fd, fds[2], slot, n = 0, rounds = 0;

	fd = tl_connect(b.sock);
	if (fd < 0 || (slot = tl_attach(fd, sid, 0, fds, NULL)) < 0)
		return 20;
	CHECK(fstat(fds[0], &st) == 0);
	for (int i = 0; i < 2; i++)
		n = map_writable(fds[i], maps, n, st.st_ino);
	say(note);
	fprintf(stderr, "scribbler: %d writable mappings\n", n);
	for (int i = 0; i < n; i++)
		aim(maps[i].p, maps[i].len, slot);
	/* then anything, anywhere, until told to stop (EOF) */
	fcntl(stop, F_SETFL, O_NONBLOCK);
	for (;;) {
		char c;

		if (read(stop, &c, 1) >= 0 || errno != EAGAIN)
			break;
		for (int i = 0; i < n; i++) {
			for (int k = 0; k < 64; k++) {
				uint64_t r = xorshift(&rng);

				maps[i].p[r % maps[i].len] = (uint8_t)(r >> 32);
			}
			if (rounds % 16 == 0)
				memset(maps[i].p, (int)(rng & 0xff),
				       maps[i].len);
		}
		rounds++;
		usleep(200);
	}
	return 0;
}

/* ---- the others ---- */

/* Attach and detach LOOPS times; each non-observer reads a record when
 * one is there. Every attach must succeed. A reader may find itself
 * evicted as soon as it maps the ring: it starts at the oldest record,
 * and while the jiggler holds the producer back that record may already
 * be older than the lag timeout (eviction is by the age of the record a
 * cursor holds, whoever holds it: docs/RING.md). That is counted, not a
 * failure. */
static int
looper(void)
{
	int evicted = 0;

	for (int i = 0; i < LOOPS; i++) {
		struct ring *r = NULL;
		struct ring_rd v;
		int fd = tl_connect(b.sock), fds[2], slot;
		uint32_t flags = i % 3 == 2 ? CTL_ATTACH_OBSERVER : 0;

		if (fd < 0)
			return 30;
		slot = tl_attach(fd, sid, flags, fds, NULL);
		if (slot < -1) {
			fprintf(stderr, "looper: attach %d: %s\n", i,
				strerror(-slot));
			return 31;
		}
		if (slot >= 0) {
			int ret = reader(fds, slot, &r);

			if (ret == -ECONNRESET) {
				evicted++;
				close(fds[0]);
				if (fds[1] >= 0)
					close(fds[1]);
				close(fd);
				continue;
			}
			if (ret < 0) {
				fprintf(stderr, "looper: map %d: %s\n", i,
					strerror(-ret));
				return 32;
			}
			if (ring_next(r, &v, 0) == 0)
				ring_release(r, &v);
			ring_unmap(&r);
		}
		close(fds[0]);
		if (fds[1] >= 0)
			close(fds[1]);
		close(fd);
	}
	printf("looper: %d attaches, %d evicted at once (behind the lag "
	       "timeout)\n", LOOPS, evicted);
	return 0;
}

/* Our own cursor in the mapping of our cursor object. */
static _Atomic uint64_t *
own_pos(void *m, int slot)
{
#ifdef PAGES
	(void)slot;
	return &((struct ring_page *)m)->pos;
#else
	return &((struct ring_slot *)((uint8_t *)m + RING_CURSORS_HDR_SIZE))
		[slot].pos;
#endif
}

/* Read some, then move the cursor back and forth inside the record it
 * holds (every 64 bytes of it, one a millisecond), so that a producer
 * that took any change for progress would never see it stay, and never
 * get past the record either. 0 once evicted. */
static int
jiggler(int note)
{
	struct ring *r;
	struct ring_rd v;
	struct stat st;
	_Atomic uint64_t *pos;
	uint64_t t0, p0, steps;
	void *m;
	int fd, fds[2], slot, ret, k = 0;

	fd = tl_connect(b.sock);
	if (fd < 0 || (slot = tl_attach(fd, sid, 0, fds, NULL)) < 0)
		return 40;
	if (reader(fds, slot, &r) < 0 || fstat(fds[1], &st) < 0)
		return 41;
	m = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		 fds[1], 0);
	if (m == MAP_FAILED)
		return 42;
	pos = own_pos(m, slot);
	say(note);
	for (int i = 0; i < 20; i++) {
		if (ring_next(r, &v, 10000) != 0)
			return 43;
		ring_release(r, &v);
	}
	if (ring_next(r, &v, 10000) != 0)
		return 43;
	p0 = v.pos;
	steps = (v.end - v.pos) / 64;
	t0 = now_ms();
	while ((ret = ring_next(r, &v, 0)) != -ECONNRESET) {
		uint64_t on = 64u * ((uint64_t)k++ % steps);

		if (now_ms() - t0 > DEADLINE_MS / 2) {
			fprintf(stderr, "jiggler: never evicted\n");
			return 44;
		}
		atomic_store(pos, p0 + on);
		usleep(1000);
	}
	fprintf(stderr, "jiggler: evicted %llu ms after it stopped\n",
		(unsigned long long)(now_ms() - t0));
	return 0;
}

/* Attach, never read, hold on until told to stop. */
static int
staller(int note, int stop)
{
	int fd = tl_connect(b.sock), fds[2];

	if (fd < 0 || tl_attach(fd, sid, 0, fds, NULL) < 0)
		return 50;
	say(note);
	heard(stop);
	return 0;
}

/* ---- the parent ---- */

struct kid {
	pid_t pid;
	int note, stop;  /* our ends: it says it attached; we say stop */
};

static void
spawn(struct kid *k, int what, const char *arg)
{
	int n[2], s[2];

	CHECK(pipe2(n, O_CLOEXEC) == 0 && pipe2(s, O_CLOEXEC) == 0);
	k->pid = fork();
	CHECK(k->pid >= 0);
	if (k->pid == 0) {
		int ret = 99;

		/* only our own ends: the others' must see EOF when the
		 * parent closes theirs */
		for (int f = 3; f < 1024; f++)
			if (f != n[1] && f != s[0])
				close(f);
		alarm(DEADLINE_MS / 1000 + 30);
		switch (what) {
		case 'h': ret = honest(n[1], arg); break;
		case 's': ret = scribbler(n[1], s[0]); break;
		case 'l': ret = looper(); break;
		case 'j': ret = jiggler(n[1]); break;
		case 't': ret = staller(n[1], s[0]); break;
		}
		fflush(stderr);
		_exit(ret);
	}
	close(n[1]);
	close(s[0]);
	k->note = n[0];
	k->stop = s[1];
}

static int
reap(struct kid *k, const char *name)
{
	int st = tl_wait_child(k->pid, DEADLINE_MS);

	close(k->note);
	if (k->stop >= 0)
		close(k->stop);
	if (st < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "%s: status 0x%x\n", name, st);
		return 1;
	}
	return 0;
}

static void
gen_media(const char *path)
{
	char cmd[1024];

	/* 30 s of 64x64 MPEG-2 at 50 fps and 16 kHz MP2: ~1900 packets of
	 * a few hundred bytes */
	snprintf(cmd, sizeof(cmd), "ffmpeg -v error -nostdin "
		 "-f lavfi -i testsrc2=s=64x64:r=50:d=30 "
		 "-f lavfi -i sine=f=440:r=16000:d=30 "
		 "-c:v mpeg2video -q:v 8 -g 25 -c:a mp2 -b:a 32k "
		 "-fflags +bitexact -flags:v +bitexact -flags:a +bitexact "
		 "-map_metadata -1 -y '%s'", path);
	if (system(cmd) != 0) {
		fprintf(stderr, "skip: ffmpeg could not make the media\n");
		exit(77);
	}
}

/* Until the producer has had to wait (the ring is full): the header seen
 * through an observer's read-only mapping, in slices of the wake word. */
static void
await_producer_waiting(int fd)
{
	const struct ring_hdr *h;
	int fds[2];

	CHECK(tl_attach(fd, sid, CTL_ATTACH_OBSERVER, fds, NULL) == -1);
	h = mmap(NULL, RING_HDR_SIZE, PROT_READ, MAP_SHARED, fds[0], 0);
	CHECK(h != MAP_FAILED);
	for (int i = 0; i < DEADLINE_MS / RING_WAIT_SLICE_MS; i++) {
		uint32_t w = atomic_load(&h->wake_seq);

		if (atomic_load(&h->producer_waits) != 0)
			break;
		futex_wait((_Atomic uint32_t *)&h->wake_seq, w,
			   RING_WAIT_SLICE_MS);
	}
	CHECK(atomic_load(&h->producer_waits) != 0);
	munmap((void *)h, RING_HDR_SIZE);
	close(fds[0]);
	if (fds[1] >= 0)
		close(fds[1]);
}

/* Lines of /proc/PID/maps. */
static int
count_maps(pid_t pid)
{
	char path[64], line[512];
	FILE *f;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	f = fopen(path, "r");
	CHECK(f != NULL);
	while (fgets(line, sizeof(line), f) != NULL)
		n += strchr(line, '\n') != NULL;
	fclose(f);
	return n;
}

static int
same_file(const char *path, const struct tl_text *want)
{
	struct tl_text got = { 0 };
	char buf[65536];
	size_t n;
	FILE *f = fopen(path, "r");
	int same;

	if (f == NULL)
		return 0;
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		tl_text_append(&got, buf, n);
	fclose(f);
	same = got.len == want->len && memcmp(got.buf, want->buf, got.len) == 0;
	if (!same)
		fprintf(stderr, "%s: %zu bytes, the reference %zu\n", path,
			got.len, want->len);
	free(got.buf);
	return same;
}

int
main(int argc, char **argv)
{
	const char *bargs[] = { "--spare-workers", "0", NULL };
	struct tl_text ref = { 0 };
	struct ctl_stream_info info;
	struct ctl_open o;
	struct kid h[2], scrib, loop, jig, stall;
	char err[CTL_MSG_LEN], path[2][300], mfile[300];
	uint64_t t0, took;
	int fd, fails = 0, fds0, fds1 = -1, maps0, maps1 = -1;

	if (argc != 4) {
		fprintf(stderr, "usage: test_hostile_consumer SHMDEMUXD WORKER "
			"FFPROBE-PACKETS\n");
		return 2;
	}
	tl_init(argv[1], (DEADLINE_MS * 2) / 1000 + 60);
	snprintf(mfile, sizeof(mfile), "%s/hostile.nut", tl_dir());
	gen_media(mfile);
	tl_reference(argv[3], mfile, 0, &ref);
	CHECK(tl_broker_start(&b, "sock", argv[2], bargs) == 0);

	fd = tl_connect(b.sock);
	CHECK(fd >= 0);
	tl_open_init(&o, CTL_SRC_PATH, mfile, "");
	o.ring_size = 64 << 10;
	o.wait_consumers = 3;
	o.lag_timeout_ms = LAG_MS;
	sid = (uint32_t)tl_open(fd, &o, -1, NULL, err, sizeof(err));
	CHECK((int)sid > 0);

	/* The scribbler is one of the three the stream waits for; the honest
	 * ones are the other two, so the records are held until both
	 * attached unless the scribbler can end the hold. Once the ring is
	 * full and the producer waits, a hold the scribbler ended would let
	 * it evict the scribbler (which never reads) and run through the
	 * stream: the honest ones come after that much time. */
	spawn(&scrib, 's', NULL);
	CHECK(heard(scrib.note));
	await_producer_waiting(fd);
	usleep(4 * LAG_MS * 1000);
	t0 = now_ms();
	for (int i = 0; i < 2; i++) {
		snprintf(path[i], sizeof(path[i]), "%s/honest%d.csv", tl_dir(),
			 i);
		spawn(&h[i], 'h', path[i]);
		CHECK(heard(h[i].note));
	}
	spawn(&jig, 'j', NULL);
	spawn(&stall, 't', NULL);
	spawn(&loop, 'l', NULL);
	CHECK(heard(stall.note));

	for (int i = 0; i < 2; i++) {
		fails += reap(&h[i], "honest consumer");
		if (!same_file(path[i], &ref)) {
			fprintf(stderr, "honest consumer %d: not ffprobe's "
				"packets\n", i);
			fails++;
		}
	}
	took = now_ms() - t0;
	fprintf(stderr, "honest consumers done in %llu ms\n",
		(unsigned long long)took);
	CHECK(took < HONEST_MS);
	fails += reap(&jig, "jiggler");
	fails += reap(&loop, "looper");
	close(scrib.stop);
	scrib.stop = -1;
	fails += reap(&scrib, "scribbler");
	close(stall.stop);
	stall.stop = -1;
	fails += reap(&stall, "staller");

	/* the broker lives, and what it reports is sane: no consumer left
	 * (their connections are gone), drops within what was published */
	CHECK(kill(b.pid, 0) == 0);
	for (int i = 0; i < 50; i++) {
		CHECK(tl_info(b.sock, sid, &info) == 1);
		if (info.consumers == 0)
			break;
		usleep(100000);
	}
	fprintf(stderr, "ls: %u consumers, %" PRIu64 " packets, %" PRIu64
		" drops\n", info.consumers, info.packets, info.drops);
	CHECK(info.consumers == 0);
	CHECK(info.drops <= 2 * info.packets + 8);

	/* attach and detach in a loop leaves nothing behind in the broker:
	 * no descriptor, no cursor page mapped (the broker takes each
	 * connection's end a moment after we close it, so the count before
	 * may still hold one of the hostile ones; its allocator may map an
	 * arena or two meanwhile; a leak would be one per attach) */
	fds0 = tl_count_fds(b.pid);
	maps0 = count_maps(b.pid);
	CHECK(looper() == 0);
	for (int i = 0; i < 500; i++) {
		fds1 = tl_count_fds(b.pid);
		maps1 = count_maps(b.pid);
		if (fds1 <= fds0 && maps1 <= maps0 + 4)
			break;
		usleep(10000);
	}
	fprintf(stderr, "broker: %d fds and %d mappings before %d attaches, "
		"%d and %d after\n", fds0, maps0, LOOPS, fds1, maps1);
	CHECK(fds1 <= fds0 && maps1 <= maps0 + 4);
	/* and a newcomer still reads what the stream retained */
	CHECK(tl_consume(b.sock, sid, 10000, NULL, NULL) >= 0);

	close(fd);
	CHECK(tl_broker_stop(&b) == 0);
	tl_check_shm();
	free(ref.buf);
	if (fails != 0)
		return 1;
	printf("hostile consumer: ok\n");
	return 0;
}
