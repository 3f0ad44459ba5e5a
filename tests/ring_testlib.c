/*
 * ring_testlib.c - see ring_testlib.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ring_testlib.h"

#define MAX_CHILDREN 64

static pid_t children[MAX_CHILDREN];

int
tring_create(struct tring *t, const struct ring_params *p)
{
	int sv[2], ret;

	t->admin = NULL;
	t->asock = t->psock = -1;
	t->dfd = memfd_create("ring-data", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (t->dfd < 0 ||
	    socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		ret = -errno;
		goto fail;
	}
	t->asock = sv[0];
	t->psock = sv[1];
	if (fcntl(t->asock, F_SETFL, O_NONBLOCK) < 0) {
		ret = -errno;
		goto fail;
	}
	if ((ret = ring_create(t->dfd, p)) < 0 ||
	    (ret = ring_map(&t->admin, t->dfd, t->asock, RING_ROLE_ADMIN)) < 0)
		goto fail;
	return 0;
fail:
	tring_destroy(t);
	return ret;
}

void
tring_destroy(struct tring *t)
{
	ring_unmap(&t->admin);
	if (t->dfd >= 0)
		close(t->dfd);
	if (t->asock >= 0)
		close(t->asock);
	if (t->psock >= 0)
		close(t->psock);
	t->dfd = t->asock = t->psock = -1;
}

int
tring_add(struct tring *t, int *page_fd)
{
	return ring_slot_alloc(t->admin, getpid(), page_fd);
}

struct ring *
tring_consumer(struct tring *t, enum ring_start start, int *slot)
{
	struct ring *c;
	int s, fd, ret;

	s = tring_add(t, &fd);
	TCHECK(s >= 0, "slot: %s", strerror(-s));
	TCHECK(tring_map_consumer(t, &c) == 0, "map consumer");
	ret = ring_attach(c, fd, start);
	TCHECK(ret == 0, "attach: %s", strerror(-ret));
	close(fd);
	if (slot != NULL)
		*slot = s;
	return c;
}

int
tring_map_consumer(const struct tring *t, struct ring **out)
{
	char path[64];
	int rfd, ret;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", t->dfd);
	if ((rfd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -errno;
	ret = ring_map(out, rfd, -1, RING_ROLE_CONSUMER);
	close(rfd);
	return ret;
}

int
tring_map_producer(const struct tring *t, struct ring **out)
{
	return ring_map(out, t->dfd, t->psock, RING_ROLE_PRODUCER);
}

static void
on_alarm(int sig)
{
	static const char msg[] = "watchdog: test took too long\n";
	int i;

	(void)sig;
	for (i = 0; i < MAX_CHILDREN; i++)
		if (children[i] > 0)
			kill(children[i], SIGKILL);
	(void)!write(2, msg, sizeof(msg) - 1);
	_exit(1);
}

void
twatchdog(unsigned secs)
{
	signal(SIGALRM, on_alarm);
	alarm(secs);
}

pid_t
tchild(int (*fn)(void *), void *arg)
{
	pid_t pid, parent = getpid();
	int i;

	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		alarm(0);
		signal(SIGALRM, SIG_DFL);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(1);
		exit(fn(arg));
	}
	for (i = 0; i < MAX_CHILDREN; i++)
		if (children[i] <= 0) {
			children[i] = pid;
			break;
		}
	return pid;
}

int
twait(pid_t pid)
{
	int st, i;

	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -errno;
	for (i = 0; i < MAX_CHILDREN; i++)
		if (children[i] == pid)
			children[i] = 0;
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	return 128 + WTERMSIG(st);
}

#define K1 UINT64_C(0x9e3779b97f4a7c15)
#define K2 UINT64_C(0xc2b2ae3d27d4eb4f)

static inline uint64_t
rd64(const uint8_t *p)
{
	uint64_t w;

	memcpy(&w, p, 8);
	return w;
}

/* Four independent multiply lanes so the hash runs near memory speed. */
uint64_t
tsum(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint64_t a = K1, c = K2, d = ~K1, e = ~K2, w = 0;
	size_t i = 0;

	for (; i + 32 <= n; i += 32) {
		a = (a ^ rd64(b + i)) * K1;
		c = (c ^ rd64(b + i + 8)) * K1;
		d = (d ^ rd64(b + i + 16)) * K1;
		e = (e ^ rd64(b + i + 24)) * K1;
	}
	for (; i + 8 <= n; i += 8)
		a = (a ^ rd64(b + i)) * K2;
	if (i < n)
		memcpy(&w, b + i, n - i);
	a = (a ^ w ^ n) * K2;
	return a ^ (c >> 7) ^ (d << 13) ^ (e >> 29) ^ (c * K2) ^ (e * K1);
}

uint64_t
tfill(void *p, size_t n, uint64_t seed)
{
	uint8_t *b = p;
	uint64_t x = seed * K1 + K2, w;
	size_t i;

	for (i = 0; i + 8 <= n; i += 8) {
		w = x ^ (i * K2);
		memcpy(b + i, &w, 8);
	}
	if (i < n) {
		w = x ^ (i * K2);
		memcpy(b + i, &w, n - i);
	}
	return tsum(p, n);
}

uint64_t
trand(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

uint64_t
tlogsize(uint64_t *rng, uint64_t lo, uint64_t hi)
{
	double u = (double)(trand(rng) >> 11) / (double)(UINT64_C(1) << 53);
	uint64_t v = (uint64_t)exp(log((double)lo) +
				   u * (log((double)hi + 1) - log((double)lo)));

	return v < lo ? lo : v > hi ? hi : v;
}

void
tfail(const char *file, int line, const char *cond, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "[%d] %s:%d: check failed: %s: ", (int)getpid(),
		file, line, cond);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}
