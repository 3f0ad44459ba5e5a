/*
 * test_ring_corrupt.c - a consumer against rings whose bytes (header,
 * records, track table, its own cursor page) were overwritten at random
 * must only ever return error codes: no crash, no out-of-bounds view, no
 * hang.
 *
 *   test_ring_corrupt [SEEDS]   (default 2000)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ring_testlib.h"

#define DATA (64u << 10)
#define MAX_CALLS 100000

static unsigned tally[4]; /* records read, -EBADMSG, -EPROTO, -EOVERFLOW */

struct image {
	uint8_t *data;
	size_t dlen;
	uint64_t recs[DATA / 64]; /* offsets of record headers */
	unsigned nrecs;
};

/* A ring with a few laps of records, ended; the producer is gone (its end
 * of the admin channel closed), so readers come and go freely. */
static void
build(struct tring *t, uint32_t mode, struct image *img)
{
	struct ring_params rp = { .data_size = DATA, .max_consumers = 3,
				  .mode = mode };
	struct ring *p, *c;
	struct ring_wr w;
	struct ring_rd v;
	uint64_t i, rng = 7, len;
	int slot;

	TCHECK(tring_create(t, &rp) == 0, "create");
	TCHECK(tring_map_producer(t, &p) == 0, "producer");
	c = tring_consumer(t, RING_START_OLDEST, &slot);
	for (i = 0; i < 400; i++) {
		len = tlogsize(&rng, 1, 3000);
		if (ring_reserve(p, sizeof(struct tmeta), len, &w, 0) != 0) {
			/* lossless and full: drain the helper consumer */
			while (ring_next(c, &v, 0) == 0)
				ring_release(c, &v);
			TCHECK(ring_reserve(p, sizeof(struct tmeta), len, &w,
					    0) == 0, "reserve");
		}
		((struct tmeta *)w.meta)->seq = i;
		tfill(w.payload, len, i);
		ring_publish(p, &w, RING_REC_PACKET,
			     i % 7 ? 0 : RING_RF_SYNC);
	}
	ring_tracks_begin(p)->count = 3;
	ring_tracks_end(p);
	ring_unmap(&c);
	ring_unmap(&p);
	ring_slot_free(t->admin, (unsigned)slot);
	close(t->psock);
	t->psock = -1;
	ring_set_end(t->admin, SD_END_EOF, 0, 0, 0, "end");
	img->dlen = ring_data_seg_size(&rp);
	img->data = malloc(img->dlen);
	TCHECK(img->data, "malloc");
	memcpy(img->data, ring_hdr(t->admin), img->dlen);
	img->nrecs = 0;
	for (i = 0; i < DATA; i += 64) {
		const struct ring_rec *rec = (const struct ring_rec *)
			(img->data + RING_HDR_SIZE + RING_TRACKS_SIZE + i);

		if (rec->magic == RING_REC_MAGIC && rec->pos % DATA == i)
			img->recs[img->nrecs++] = i;
	}
	TCHECK(img->nrecs > 10, "records in the image");
}

static void
restore(struct tring *t, const struct image *img)
{
	memcpy((void *)ring_hdr(t->admin), img->data, img->dlen);
}

/* Overwrite a few spots: a byte, a word, or a nasty value, anywhere that
 * matters (header, records, tracks, the reader's own page c). */
static void
corrupt(struct tring *t, const struct image *img, uint8_t *c, uint64_t *rng)
{
	uint8_t *d = (uint8_t *)ring_hdr(t->admin);
	static const uint64_t nasty[] = { 0, 1, 63, 64, UINT64_MAX,
		UINT64_MAX - 63, DATA, DATA - 64, DATA + 64, 1u << 31,
		UINT32_MAX };
	unsigned n = 1 + trand(rng) % 8, i;

	for (i = 0; i < n; i++) {
		uint64_t r = trand(rng), off, v;
		uint8_t *base;

		switch (r % 5) {
		case 4: /* a record header */
			base = d + RING_HDR_SIZE + RING_TRACKS_SIZE;
			off = img->recs[trand(rng) % img->nrecs] +
			      trand(rng) % 64;
			break;
		case 0: /* header fields */
			base = d;
			off = trand(rng) % 512;
			break;
		case 1: /* track table head */
			base = d + RING_HDR_SIZE;
			off = trand(rng) % 256;
			break;
		case 2: /* the reader's cursor page */
			base = c;
			off = trand(rng) % 512;
			break;
		default: /* records */
			base = d + RING_HDR_SIZE + RING_TRACKS_SIZE;
			off = trand(rng) % DATA;
			break;
		}
		off &= (r >> 8) & 1 ? ~(uint64_t)7 : ~(uint64_t)0;
		if (off + 8 > (base == c ? RING_PAGE_SIZE : DATA))
			off = 0;
		v = (r >> 9) & 1 ? nasty[trand(rng) % 11] : trand(rng);
		if ((r >> 10) & 1)
			memcpy(base + off, &v, 8);
		else
			base[off] = (uint8_t)v;
	}
}

static int
allowed(int ret)
{
	return ret == 0 || ret == -EAGAIN || ret == -EPIPE ||
	       ret == -EBADMSG || ret == -EOVERFLOW || ret == -ECONNRESET ||
	       ret == -EPROTO;
}

/* A reader's slot and page, as the broker makes them; with rng, the
 * page is corrupted (and the ring, with img) before the reader maps it. */
static int
new_reader(struct tring *t, const struct image *img, uint64_t *rng,
	   int *slot)
{
	uint8_t *pg;
	int fd;

	*slot = tring_add(t, &fd);
	TCHECK(*slot >= 0, "slot: %d", *slot);
	if (rng != NULL) {
		pg = mmap(NULL, RING_PAGE_SIZE, PROT_READ | PROT_WRITE,
			  MAP_SHARED, fd, 0);
		TCHECK(pg != MAP_FAILED, "map page");
		corrupt(t, img, pg, rng);
		munmap(pg, RING_PAGE_SIZE);
	}
	return fd;
}

/* Read until an error; every view must lie inside the record area. */
static void
read_all(struct tring *t, int page_fd, enum ring_start start)
{
	static uint8_t tracks[RING_TRACKS_SIZE];
	struct ring *c;
	struct ring_rd v;
	const uint8_t *lo, *hi;
	int64_t gen;
	int ret, calls;

	ret = tring_map_consumer(t, &c);
	TCHECK(ret == 0 || ret == -EPROTO, "map: %d", ret);
	if (ret < 0) {
		tally[2]++;
		return;
	}
	gen = ring_tracks_copy(c, tracks, sizeof(tracks));
	TCHECK(gen >= 0 || gen == -EBADMSG || gen == -EAGAIN, "tracks %lld",
	       (long long)gen);
	ret = ring_attach(c, page_fd, start);
	TCHECK(ret == 0 || ret == -EBADMSG || ret == -ECONNRESET ||
	       ret == -EPROTO, "attach %d", ret);
	lo = (const uint8_t *)ring_hdr(c) + RING_HDR_SIZE + RING_TRACKS_SIZE;
	hi = lo + DATA;
	for (calls = 0; ret == 0 && calls < MAX_CALLS; calls++) {
		ret = ring_next(c, &v, 0);
		TCHECK(allowed(ret), "next returned %d", ret);
		if (ret == -EOVERFLOW) {
			tally[3]++;
			ret = 0;
			continue;
		}
		if (ret < 0)
			break;
		TCHECK((const uint8_t *)v.meta >= lo &&
		       (const uint8_t *)v.meta + v.meta_len <= hi &&
		       (const uint8_t *)v.payload >= lo &&
		       v.payload_len <= (uint64_t)(hi - (const uint8_t *)
						   v.payload), "view bounds");
		(void)tsum(v.meta, v.meta_len);
		(void)tsum(v.payload, v.payload_len);
		(void)ring_view_valid(c, &v);
		ring_release(c, &v);
	}
	TCHECK(calls < MAX_CALLS, "no progress");
	tally[0] += (unsigned)calls;
	tally[1] += ret == -EBADMSG;
	ring_unmap(&c);
}

int
main(int argc, char **argv)
{
	unsigned seeds = argc > 1 ? (unsigned)atoi(argv[1]) : 2000, s, m;
	struct tring t[2];
	struct image img[2];
	int fd, slot;

	twatchdog(280);
	build(&t[0], RING_MODE_LOSSLESS, &img[0]);
	build(&t[1], RING_MODE_LIVE, &img[1]);
	/* pristine rings read to the end */
	for (m = 0; m < 2; m++) {
		fd = new_reader(&t[m], &img[m], NULL, &slot);
		read_all(&t[m], fd, RING_START_OLDEST);
		close(fd);
		ring_slot_free(t[m].admin, (unsigned)slot);
	}
	for (s = 0; s < seeds; s++) {
		uint64_t rng = 0x9e3779b9u + s * 7919u;

		m = s & 1;
		restore(&t[m], &img[m]);
		fd = new_reader(&t[m], &img[m], &rng, &slot);
		read_all(&t[m], fd, (enum ring_start)(s / 2 % 3));
		close(fd);
		ring_slot_free(t[m].admin, (unsigned)slot);
	}
	for (m = 0; m < 2; m++) {
		tring_destroy(&t[m]);
		free(img[m].data);
	}
	printf("ring corrupt: %u seeds ok (%u calls, %u EBADMSG, %u EPROTO, "
	       "%u EOVERFLOW)\n", seeds, tally[0], tally[1], tally[2],
	       tally[3]);
	return 0;
}
