/*
 * mutate.c - deterministic mutants of media files for the robustness
 * campaign (test_mutation.sh).
 *
 *   mutate SEED INDEX OUT FILE...
 *
 * Mutant INDEX of campaign SEED is a function of (SEED, INDEX, the FILE
 * list) only, so a failure is reproduced by rerunning one index. The kind
 * cycles with INDEX: truncated, bit-flipped, spliced, header-corrupted.
 * Prints "KIND BASENAME" on stdout.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define HEADER_BYTES 4096

struct buf {
	unsigned char *p;
	size_t len;
};

/* splitmix64: tiny, fast, and good enough to spread mutations. */
static uint64_t
rnd(uint64_t *st)
{
	uint64_t z = (*st += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Uniform-ish in [0, n); n == 0 yields 0. */
static size_t
below(uint64_t *st, size_t n)
{
	return n == 0 ? 0 : (size_t)(rnd(st) % n);
}

static int
load(const char *path, struct buf *b)
{
	struct stat st;
	ssize_t n;
	size_t off = 0;
	int fd, ret = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		ret = -errno;
		goto out;
	}
	b->len = (size_t)st.st_size;
	b->p = malloc(b->len + 1);
	if (b->p == NULL) {
		ret = -ENOMEM;
		goto out;
	}
	while (off < b->len) {
		n = read(fd, b->p + off, b->len - off);
		if (n <= 0) {
			ret = n < 0 ? -errno : -EIO;
			goto out;
		}
		off += (size_t)n;
	}
out:
	if (fd >= 0)
		close(fd);
	return ret;
}

static void
truncate_buf(uint64_t *st, struct buf *b)
{
	b->len = below(st, b->len);
}

/* A few flips most of the time, sometimes hundreds. */
static void
flip_bits(uint64_t *st, struct buf *b)
{
	size_t n = below(st, 4) == 0 ? 1 + below(st, 512) : 1 + below(st, 8);

	if (b->len == 0)
		return;
	while (n-- > 0)
		b->p[below(st, b->len)] ^= (unsigned char)(1u << below(st, 8));
}

/* A chunk of another file inserted at, or written over, a random offset. */
static int
splice_buf(uint64_t *st, struct buf *b, const struct buf *o)
{
	size_t from = below(st, o->len);
	size_t n = below(st, o->len - from) + 1;
	size_t at = below(st, b->len + 1);
	unsigned char *p;

	if (o->len == 0)
		return 0;
	if (below(st, 2) == 0) { /* overwrite, growing the file if needed */
		if (at + n > b->len) {
			p = realloc(b->p, at + n);
			if (p == NULL)
				return -ENOMEM;
			b->p = p;
			b->len = at + n;
		}
		memcpy(b->p + at, o->p + from, n);
		return 0;
	}
	p = realloc(b->p, b->len + n);
	if (p == NULL)
		return -ENOMEM;
	memmove(p + at + n, p + at, b->len - at);
	memcpy(p + at, o->p + from, n);
	b->p = p;
	b->len += n;
	return 0;
}

/* Random bytes over the first 4 KiB: container headers, probe data. */
static void
corrupt_header(uint64_t *st, struct buf *b)
{
	size_t n = b->len < HEADER_BYTES ? b->len : HEADER_BYTES;
	size_t i = 0;

	/* Keep a random prefix intact half of the time, so the probe still
	 * recognises the format and the damage reaches the demuxer. */
	if (below(st, 2) == 0)
		i = below(st, n);
	for (; i < n; i++)
		b->p[i] = (unsigned char)rnd(st);
}

static int
write_out(const char *path, const struct buf *b)
{
	FILE *f = fopen(path, "wbe");
	int ret = 0;

	if (f == NULL)
		return -errno;
	if (b->len > 0 && fwrite(b->p, 1, b->len, f) != b->len)
		ret = -EIO;
	if (fclose(f) != 0 && ret == 0)
		ret = -errno;
	return ret;
}

int
main(int argc, char **argv)
{
	static const char *const kinds[] = {
		"truncated", "bitflip", "splice", "header",
	};
	struct buf in = { 0 }, other = { 0 };
	uint64_t seed, idx, st;
	const char *src, *base;
	char *end;
	int nfiles, kind, ret;

	if (argc < 5) {
		fprintf(stderr, "usage: mutate SEED INDEX OUT FILE...\n");
		return 2;
	}
	seed = strtoull(argv[1], &end, 0);
	if (*end != '\0')
		return 2;
	idx = strtoull(argv[2], &end, 0);
	if (*end != '\0')
		return 2;
	nfiles = argc - 4;
	st = seed ^ (idx * 0xd1342543de82ef95ull);
	(void)rnd(&st);
	kind = (int)(idx % 4);
	src = argv[4 + below(&st, (size_t)nfiles)];
	ret = load(src, &in);
	if (ret == 0 && kind == 2)
		ret = load(argv[4 + below(&st, (size_t)nfiles)], &other);
	if (ret < 0) {
		fprintf(stderr, "mutate: reading %s: %s\n", src,
			strerror(-ret));
		goto out;
	}
	switch (kind) {
	case 0:
		truncate_buf(&st, &in);
		break;
	case 1:
		flip_bits(&st, &in);
		break;
	case 2:
		ret = splice_buf(&st, &in, &other);
		break;
	default:
		corrupt_header(&st, &in);
		break;
	}
	if (ret == 0)
		ret = write_out(argv[3], &in);
	if (ret < 0) {
		fprintf(stderr, "mutate: %s: %s\n", argv[3], strerror(-ret));
		goto out;
	}
	base = strrchr(src, '/');
	printf("%s %s\n", kinds[kind], base != NULL ? base + 1 : src);
out:
	free(in.p);
	free(other.p);
	return ret < 0 ? 1 : 0;
}
