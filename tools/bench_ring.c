/*
 * bench_ring.c - `shmdemux-bench ring [--json]`: ring throughput (records/s,
 * GB/s) for several record sizes with 1 and 4 consumer processes in lossless
 * mode, and the publish-to-wake latency of a consumer blocked in futex_wait
 * beside that of a consumer asleep in poll(2) on its wake pipe (the
 * stream fd of a SHMDEMUX_ATTACH_POLL reader).
 *
 * Consumers read every payload byte (a word sum). The producer writes only
 * a stamp word per record, so the numbers are the transport's, not a
 * memcpy's. Time runs from the producer's first reserve (stamped in record
 * 0) to the last record of the slowest consumer.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "clock.h"
#include "futex.h"
#include "ring_admin.h"
#include "ring_consumer.h"
#include "ring_producer.h"

#define RING_BYTES (64u << 20)
#define LAT_SAMPLES 20000
#define MAX_CONS 4

struct bring {
	int dfd;
	int asock, psock;  /* the admin channel: ours, the producer's */
	struct ring *admin;
	int lat_page;      /* latency run: the consumer's page, watched */
	int lat_wake[2];   /* latency run through a wake pipe, else -1 */
};

struct result {
	uint64_t records;
	uint64_t ns;
	uint64_t sum;
};

static int
bring_create(struct bring *b, uint32_t wait_consumers)
{
	struct ring_params p = {
		.data_size = RING_BYTES, .max_consumers = MAX_CONS,
		.mode = RING_MODE_LOSSLESS, .wait_consumers = wait_consumers,
	};
	int sv[2], ret;

	b->admin = NULL;
	b->lat_page = -1;
	b->lat_wake[0] = b->lat_wake[1] = -1;
	b->dfd = memfd_create("bench-data", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (b->dfd < 0 ||
	    socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	b->asock = sv[0];
	b->psock = sv[1];
	if (fcntl(b->asock, F_SETFL, O_NONBLOCK) < 0)
		return -errno;
	if ((ret = ring_create(b->dfd, &p)) < 0)
		return ret;
	return ring_map(&b->admin, b->dfd, b->asock, RING_ROLE_ADMIN);
}

static void
bring_destroy(struct bring *b)
{
	ring_unmap(&b->admin);
	close(b->dfd);
	close(b->asock);
	close(b->psock);
	if (b->lat_page >= 0)
		close(b->lat_page);
	for (int i = 0; i < 2; i++)
		if (b->lat_wake[i] >= 0)
			close(b->lat_wake[i]);
}

/* A consumer as the broker makes one: its cursor page's fd, or -1. With
 * a wake pipe (lat_wake) when the broker's pipe2 was made. */
static int
bring_add(struct bring *b)
{
	int fd;

	return ring_slot_alloc_wake(b->admin, 0, b->lat_wake[1], &fd) < 0 ?
	    -1 : fd;
}

static int
map_consumer(const struct bring *b, struct ring **r)
{
	char path[64];
	int fd, ret;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", b->dfd);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -errno;
	ret = ring_map(r, fd, -1, RING_ROLE_CONSUMER);
	close(fd);
	return ret;
}

static pid_t
spawn(void (*fn)(const struct bring *, uint64_t, int), const struct bring *b,
      uint64_t arg, int fd)
{
	pid_t pid = fork();

	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		fn(b, arg, fd);
		_exit(0);
	}
	return pid;
}

static uint64_t
sum_words(const void *p, uint64_t n)
{
	const uint64_t *w = p;
	uint64_t a = 0, c = 0, i;

	for (i = 0; i + 2 <= n / 8; i += 2) {
		a += w[i];
		c += w[i + 1];
	}
	for (; i < n / 8; i++)
		a += w[i];
	return a + c + (n & 7 ? ((const uint8_t *)p)[n - 1] : 0);
}

/* Producer: n records of size bytes; only the stamp word is written. */
static void
produce(const struct bring *b, uint64_t n, int size)
{
	struct ring *r;
	struct ring_wr w;
	uint64_t i;

	if (ring_map(&r, b->dfd, b->psock, RING_ROLE_PRODUCER) < 0)
		_exit(1);
	for (i = 0; i < n; i++) {
		if (ring_reserve(r, 0, (uint64_t)size, &w, -1) < 0)
			_exit(1);
		/* record 0 carries the start time every consumer times
		 * from; the others a sequence word */
		*(uint64_t *)w.payload = i ? i : now_ns();
		ring_publish(r, &w, RING_REC_PACKET, 0);
	}
	ring_flush(r); /* the end of the stream: wake every sleeper */
	ring_unmap(&r);
}

static void
consume(const struct bring *b, uint64_t page, int fd)
{
	struct result res = { 0 };
	struct ring *r;
	struct ring_rd v;
	uint64_t t0 = 0;
	int ret;

	if (map_consumer(b, &r) < 0 ||
	    ring_attach(r, (int)page, RING_START_OLDEST) < 0)
		_exit(1);
	while ((ret = ring_next(r, &v, -1)) == 0) {
		if (res.records++ == 0)
			t0 = *(const uint64_t *)v.payload;
		res.sum += sum_words(v.payload, v.payload_len);
		ring_release(r, &v);
	}
	res.ns = now_ns() - t0;
	if (ret != -EPIPE || write(fd, &res, sizeof(res)) != sizeof(res))
		_exit(1);
	ring_unmap(&r);
}

/* One throughput run. Returns 0 and the slowest consumer's rate. */
static int
throughput(uint64_t size, unsigned ncons, double *rps)
{
	uint64_t n = (UINT64_C(3) << 30) / size;
	struct bring b;
	struct result res;
	pid_t pids[MAX_CONS + 1];
	int fds[2], ret = 0;
	unsigned i;

	if (n > 6000000)
		n = 6000000;
	if (bring_create(&b, ncons) < 0 || pipe(fds) < 0)
		return -1;
	for (i = 0; i < ncons; i++) {
		int page = bring_add(&b);

		pids[i] = spawn(consume, &b, (uint64_t)page, fds[1]);
		close(page);
	}
	pids[ncons] = spawn(produce, &b, n, (int)size);
	if (waitpid(pids[ncons], &ret, 0) < 0 || ret != 0)
		ret = -1;
	ring_set_end(b.admin, SD_END_EOF, 0, 0, 0, NULL);
	*rps = 1e300;
	for (i = 0; i < ncons; i++) {
		int st;

		if (read(fds[0], &res, sizeof(res)) != sizeof(res) ||
		    res.records != n)
			ret = -1;
		else if ((double)n * 1e9 / (double)res.ns < *rps)
			*rps = (double)n * 1e9 / (double)res.ns;
		waitpid(pids[i], &st, 0);
	}
	close(fds[0]);
	close(fds[1]);
	bring_destroy(&b);
	return ret;
}

/* Latency producer: wait until the consumer's page says it sleeps on the
 * current wake word, give it time to enter the kernel, stamp, publish. */
static void
lat_produce(const struct bring *b, uint64_t n, int unused)
{
	const struct ring_page *pg;
	const struct ring_hdr *h;
	struct ring *r;
	struct ring_wr w;
	uint64_t i, t;

	(void)unused;
	if (ring_map(&r, b->dfd, b->psock, RING_ROLE_PRODUCER) < 0)
		_exit(1);
	pg = mmap(NULL, RING_PAGE_SIZE, PROT_READ, MAP_SHARED, b->lat_page, 0);
	if (pg == MAP_FAILED)
		_exit(1);
	h = ring_hdr(r);
	for (i = 0; i < n; i++) {
		while (atomic_load_explicit(&pg->sleep_seq,
					    memory_order_acquire) !=
		       (RING_SLEEPING | atomic_load_explicit(&h->wake_seq,
						memory_order_relaxed)))
			;
		t = now_ns();
		while (now_ns() - t < 30000)
			;
		if (ring_reserve(r, 0, 64, &w, -1) < 0)
			_exit(1);
		*(uint64_t *)w.payload = now_ns();
		ring_publish(r, &w, RING_REC_PACKET, 0);
		/* a live producer flushes before it waits for its next
		 * input; the wait here is for the consumer to sleep again */
		ring_flush(r);
	}
	ring_unmap(&r);
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void
lat_consume(const struct bring *b, uint64_t page, int fd)
{
	static uint64_t lat[LAT_SAMPLES];
	uint64_t q[2], n = 0;
	struct ring *r;
	struct ring_rd v;

	struct pollfd pfd = { .fd = -1, .events = POLLIN };
	struct epoll_event ev = { .events = EPOLLIN };
	int ret;

	if (map_consumer(b, &r) < 0 ||
	    ring_attach(r, (int)page, RING_START_OLDEST) < 0)
		_exit(1);
	/* the pipe inside an epoll set, polled: a stream fd's shape */
	if (b->lat_wake[0] >= 0 &&
	    ((pfd.fd = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
	     epoll_ctl(pfd.fd, EPOLL_CTL_ADD, b->lat_wake[0], &ev) < 0 ||
	     ring_set_wake_fd(r, b->lat_wake[0]) < 0))
		_exit(1);
	/* a poll loop: an empty read arms the pipe, poll sleeps on it */
	while ((ret = ring_next(r, &v, pfd.fd >= 0 ? 0 : -1)) == 0 ||
	       (ret == -EAGAIN && poll(&pfd, 1, -1) >= 0)) {
		uint64_t t = now_ns();

		if (ret != 0)
			continue;
		if (n < LAT_SAMPLES)
			lat[n++] = t - *(const uint64_t *)v.payload;
		ring_release(r, &v);
	}
	if (n == 0)
		_exit(1);
	qsort(lat, n, sizeof(lat[0]), cmp_u64);
	q[0] = lat[n / 2];
	q[1] = lat[n * 99 / 100];
	if (write(fd, q, sizeof(q)) != sizeof(q))
		_exit(1);
	if (pfd.fd >= 0)
		close(pfd.fd);
	ring_unmap(&r);
}

/* Publish-to-wake latency of a consumer asleep in futex_wait, or with
 * poll_fd in poll(2) on its wake pipe. */
static int
latency(int poll_fd, double *p50, double *p99)
{
	struct bring b;
	uint64_t q[2];
	pid_t pc, pp;
	int fds[2], st, ret = 0;

	if (bring_create(&b, 1) < 0 || pipe(fds) < 0 ||
	    (poll_fd && pipe2(b.lat_wake, O_NONBLOCK | O_CLOEXEC) < 0) ||
	    (b.lat_page = bring_add(&b)) < 0)
		return -1;
	pc = spawn(lat_consume, &b, (uint64_t)b.lat_page, fds[1]);
	pp = spawn(lat_produce, &b, LAT_SAMPLES, 0);
	waitpid(pp, &st, 0);
	ring_set_end(b.admin, SD_END_EOF, 0, 0, 0, NULL);
	if (st != 0 || read(fds[0], q, sizeof(q)) != sizeof(q))
		ret = -1;
	waitpid(pc, &st, 0);
	*p50 = (double)q[0] / 1000.0;
	*p99 = (double)q[1] / 1000.0;
	close(fds[0]);
	close(fds[1]);
	bring_destroy(&b);
	return ret;
}

/* The same wake without the ring: a futex word in a shared anonymous page,
 * the same pause before the wake. It is what this machine charges to wake
 * a sleeping process (on a VM, an idle vCPU's halt and wake-up); the ring's
 * figure is read against it. The parent sleeps, a child wakes it. */
struct lat_base {
	_Atomic uint32_t word;
	_Atomic uint32_t sleeping;
	_Atomic uint64_t stamp;
};

static int
latency_baseline(double *p50, double *p99)
{
	static uint64_t lat[LAT_SAMPLES];
	struct lat_base *s;
	uint64_t i, t;
	pid_t pid;
	int st;

	s = mmap(NULL, sizeof(*s), PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (s == MAP_FAILED)
		return -1;
	pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		for (i = 0; i < LAT_SAMPLES; i++) {
			while (atomic_load(&s->sleeping) == 0)
				;
			t = now_ns();
			while (now_ns() - t < 30000)
				;
			atomic_store(&s->sleeping, 0);
			atomic_store(&s->stamp, now_ns());
			atomic_fetch_add(&s->word, 1);
			futex_wake(&s->word, 1);
		}
		_exit(0);
	}
	if (pid < 0) {
		munmap(s, sizeof(*s));
		return -1;
	}
	for (i = 0; i < LAT_SAMPLES; i++) {
		uint32_t w = atomic_load(&s->word);

		atomic_store(&s->sleeping, 1);
		while (atomic_load(&s->word) == w)
			futex_wait(&s->word, w, 1000);
		lat[i] = now_ns() - atomic_load(&s->stamp);
	}
	waitpid(pid, &st, 0);
	munmap(s, sizeof(*s));
	qsort(lat, LAT_SAMPLES, sizeof(lat[0]), cmp_u64);
	*p50 = (double)lat[LAT_SAMPLES / 2] / 1000.0;
	*p99 = (double)lat[LAT_SAMPLES * 99 / 100] / 1000.0;
	return 0;
}

int
bench_ring(int argc, char **argv)
{
	static const uint64_t sizes[] = { 64, 1024, 65536, 1u << 20 };
	static const unsigned cons[] = { 1, 4 };
	double rps, p50, p99, b50, b99, f50, f99;
	int json = argc == 2 && strcmp(argv[1], "--json") == 0;
	size_t i, j;

	if (argc == 2 && (strcmp(argv[1], "--help") == 0 ||
			  strcmp(argv[1], "-h") == 0)) {
		printf("usage: shmdemux-bench ring [--json]\n"
		       "The ring alone, in one process: records/s and GB/s "
		       "for 64 B to 1 MiB\nrecords and 1 or 4 consumers, "
		       "then the publish-to-wake latency of a\nsleeping "
		       "consumer (p50/p99) beside a bare futex wake's, and of "
		       "a\nconsumer asleep in poll(2) on its wake pipe (a "
		       "stream fd).\n");
		return 0;
	}
	if (argc > 2 || (argc == 2 && !json)) {
		fprintf(stderr, "usage: shmdemux-bench ring [--json] "
			"(see --help)\n");
		return 2;
	}
	/* latency first: measured on a quiet machine, printed last */
	if (latency(0, &p50, &p99) < 0 || latency(1, &f50, &f99) < 0 ||
	    latency_baseline(&b50, &b99) < 0) {
		fprintf(stderr, "latency bench failed\n");
		return 1;
	}
	if (!json)
		printf("%12s %9s %14s %10s\n", "record_bytes", "consumers",
		       "records/s", "GB/s");
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		for (j = 0; j < sizeof(cons) / sizeof(cons[0]); j++) {
			if (throughput(sizes[i], cons[j], &rps) < 0) {
				fprintf(stderr, "ring bench failed\n");
				return 1;
			}
			if (json)
				printf("{\"kind\":\"throughput\",\"record_bytes\":"
				       "%llu,\"consumers\":%u,\"records_per_s\":"
				       "%.0f,\"gbytes_per_s\":%.3f}\n",
				       (unsigned long long)sizes[i], cons[j],
				       rps, rps * (double)sizes[i] / 1e9);
			else
				printf("%12llu %9u %14.0f %10.3f\n",
				       (unsigned long long)sizes[i], cons[j],
				       rps, rps * (double)sizes[i] / 1e9);
			fflush(stdout);
		}
	if (json) {
		printf("{\"kind\":\"latency\",\"p50_us\":%.2f,\"p99_us\":%.2f}\n",
		       p50, p99);
		printf("{\"kind\":\"latency_baseline\",\"p50_us\":%.2f,"
		       "\"p99_us\":%.2f}\n", b50, b99);
		printf("{\"kind\":\"latency_fd\",\"p50_us\":%.2f,"
		       "\"p99_us\":%.2f,\"p50_ratio\":%.2f}\n", f50, f99,
		       f50 / p50);
	} else {
		printf("publish-to-wake latency: p50 %.2f us, p99 %.2f us\n",
		       p50, p99);
		printf("bare futex wake, same pattern: p50 %.2f us, p99 %.2f "
		       "us\n", b50, b99);
		printf("publish-to-wake through the stream fd (poll): p50 "
		       "%.2f us, p99 %.2f us (p50 %.2fx the futex wait's)\n",
		       f50, f99, f50 / p50);
	}
	return 0;
}
