/*
 * test_frame_pool_parse.c - the client's checks of pooled frame records
 * (SD_FRAME_POOLED: planes are offsets into the frame pool area), which
 * come from a worker that parses hostile input.
 *
 * A valid 64x48 yuv420p pooled record is accepted with its data pointers
 * inside the pool; then each plane field is pushed out of bounds (offset
 * past the pool, size past its end, sizes that wrap, zero or short
 * linesizes), the record is offered in live mode (no pool), as audio, with
 * a payload, and finally thousands of random mutations of the meta bytes:
 * every result is either SHMDEMUX_ECORRUPT or a frame whose every plane
 * lies inside the pool (or, for a copied record, inside the payload).
 *
 *   test_frame_pool_parse [SEEDS]   (default 20000)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libavutil/pixfmt.h>

#include "check.h"
#include "internal.h"

#define POOL_SIZE (256u << 10)
#define W 64
#define H 48

struct rec {
	struct sd_frame_meta m;
	struct sd_frame_plane pl[3];
};

static uint8_t pool[POOL_SIZE];

static void
valid(struct rec *r, uint64_t base)
{
	memset(r, 0, sizeof(*r));
	r->m.media_type = SHMDEMUX_MEDIA_VIDEO;
	r->m.format = AV_PIX_FMT_YUV420P;
	r->m.width = W;
	r->m.height = H;
	r->m.flags = SD_FRAME_POOLED | SD_FRAME_KEY;
	r->m.pool_slot = 1;
	r->m.nb_planes = 3;
	r->pl[0] = (struct sd_frame_plane){ base, 64 * H, 64, 0 };
	r->pl[1] = (struct sd_frame_plane){ base + 4096, 32 * H / 2, 32, 0 };
	r->pl[2] = (struct sd_frame_plane){ base + 8192, 32 * H / 2, 32, 0 };
}

static int
parse(const struct rec *r, const uint8_t *p, uint64_t psize,
      struct shmdemux_frame *f)
{
	struct ring_rd v = {
		.type = RING_REC_FRAME,
		.meta = r,
		.meta_len = sizeof(*r),
		.payload = NULL,
		.payload_len = 0,
	};

	return frame_parse(&v, p, psize, f);
}

/* Every plane of an accepted frame lies inside [lo, lo + size). */
static void
inside(const struct shmdemux_frame *f, const uint8_t *lo, uint64_t size)
{
	for (int i = 0; i < f->nb_planes; i++) {
		CHECK(f->data[i] >= lo && f->data[i] <= lo + size);
		CHECK(f->plane_size[i] <= (size_t)(lo + size - f->data[i]));
	}
}

static void
bounds(void)
{
	struct shmdemux_frame f;
	struct rec r;

	valid(&r, POOL_SIZE - 16384);
	CHECK(parse(&r, pool, POOL_SIZE, &f) == 0);
	CHECK(f.data[0] == pool + POOL_SIZE - 16384 && f.linesize[1] == 32);
	inside(&f, pool, POOL_SIZE);

	valid(&r, 0);
	r.pl[2].offset = POOL_SIZE;           /* past the end */
	CHECK(parse(&r, pool, POOL_SIZE, &f) == SHMDEMUX_ECORRUPT);
	valid(&r, 0);
	r.pl[2].offset = POOL_SIZE - 100;     /* runs past the end */
	CHECK(parse(&r, pool, POOL_SIZE, &f) == SHMDEMUX_ECORRUPT);
	valid(&r, 0);
	r.pl[0].offset = UINT64_MAX - 100;    /* offset + size wraps */
	CHECK(parse(&r, pool, POOL_SIZE, &f) == SHMDEMUX_ECORRUPT);
	valid(&r, 0);
	r.pl[1].size = UINT64_MAX;
	CHECK(parse(&r, pool, POOL_SIZE, &f) == SHMDEMUX_ECORRUPT);
	valid(&r, 0);
	r.pl[0].linesize = 0;
	CHECK(parse(&r, pool, POOL_SIZE, &f) == SHMDEMUX_ECORRUPT);
	valid(&r, 0);
	r.pl[0].linesize = W - 1;             /* shorter than a row */
	r.pl[0].size = (uint64_t)(W - 1) * H;
	CHECK(parse(&r, pool, POOL_SIZE, &f) == SHMDEMUX_ECORRUPT);
	valid(&r, 0);
	r.pl[1].size -= 1;                    /* not linesize x rows */
	CHECK(parse(&r, pool, POOL_SIZE, &f) == SHMDEMUX_ECORRUPT);
	/* a pool smaller than the offsets claim */
	valid(&r, 0);
	CHECK(parse(&r, pool, 8192, &f) == SHMDEMUX_ECORRUPT);
	/* no pool (live mode): pooled records are refused */
	valid(&r, 0);
	CHECK(parse(&r, NULL, 0, &f) == SHMDEMUX_ECORRUPT);
	CHECK(parse(&r, NULL, POOL_SIZE, &f) == SHMDEMUX_ECORRUPT);
	/* only video is pooled */
	valid(&r, 0);
	r.m.media_type = SHMDEMUX_MEDIA_AUDIO;
	CHECK(parse(&r, pool, POOL_SIZE, &f) == SHMDEMUX_ECORRUPT);
}

/* A pooled record never has a payload. */
static void
payload(void)
{
	static uint8_t pay[16384];
	struct shmdemux_frame f;
	struct rec r;
	struct ring_rd v = {
		.type = RING_REC_FRAME, .meta = &r, .meta_len = sizeof(r),
		.payload = pay, .payload_len = sizeof(pay),
	};

	valid(&r, 0);
	CHECK(frame_parse(&v, pool, POOL_SIZE, &f) == SHMDEMUX_ECORRUPT);
	/* the same planes as a copied record are payload offsets */
	r.m.flags &= ~(uint32_t)SD_FRAME_POOLED;
	CHECK(frame_parse(&v, pool, POOL_SIZE, &f) == 0);
	inside(&f, pay, sizeof(pay));
}

static uint64_t
rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* Random damage to the meta bytes: refused, or inside its area. */
static void
mutations(unsigned seeds)
{
	static uint8_t pay[16384];
	unsigned ok = 0, bad = 0;

	for (unsigned i = 0; i < seeds; i++) {
		uint64_t s = 0x9e3779b97f4a7c15ull ^ ((uint64_t)i << 20 | i);
		struct shmdemux_frame f;
		struct rec r;
		uint8_t *b = (uint8_t *)&r;
		struct ring_rd v = {
			.type = RING_REC_FRAME, .meta = &r,
			.meta_len = sizeof(r),
		};
		unsigned n = 1 + (unsigned)(rnd(&s) % 4);
		int pooled;

		valid(&r, (rnd(&s) % (POOL_SIZE / 4096)) * 4096);
		for (unsigned k = 0; k < n; k++) {
			size_t at = (size_t)(rnd(&s) % sizeof(r));

			/* bias towards the plane table */
			if (rnd(&s) & 1)
				at = sizeof(r.m) + at % sizeof(r.pl);
			b[at] = (uint8_t)rnd(&s);
		}
		pooled = (r.m.flags & SD_FRAME_POOLED) != 0;
		if (!pooled && (rnd(&s) & 1)) {
			v.payload = pay;
			v.payload_len = sizeof(pay);
		}
		if (frame_parse(&v, pool, POOL_SIZE, &f) == 0) {
			if (pooled)
				inside(&f, pool, POOL_SIZE);
			else
				inside(&f, pay, v.payload_len);
			ok++;
		} else {
			bad++;
		}
	}
	printf("ok %u mutations: %u accepted (inside their area), %u "
	       "refused\n", seeds, ok, bad);
	CHECK(bad > 0);
}

int
main(int argc, char **argv)
{
	unsigned seeds = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 10) :
				    20000;

	bounds();
	printf("ok pooled plane bounds\n");
	payload();
	printf("ok pooled record with a payload refused\n");
	mutations(seeds);
	return 0;
}
