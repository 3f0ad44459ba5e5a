/*
 * worker_spool.c - a non-seekable MP4/MOV whose moov comes after its mdat.
 *
 * libavformat's mov demuxer finds the sample tables in the moov; on a pipe
 * it cannot seek back to the mdat it skipped, so such a file yields no
 * packets. Before libavformat reads a byte, the worker walks the top-level
 * boxes itself, keeping every byte it reads in the spool:
 *   - not a box structure, or moov first (faststart, fragmented): nothing
 *     more is spooled; the bytes read so far are served first, then the pipe;
 *   - mdat before moov: the whole input is read to EOF into the spool and
 *     demuxed from there, seekable, exactly as from the file.
 * The spool is memory in 1 MiB chunks (no copy on growth), bounded by
 * --spool-limit; past it the stream ends with SD_END_SPOOL_LIMIT.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <libavutil/error.h>

#include "worker.h"

#define CHUNK_SHIFT 20
#define CHUNK_SIZE  (1u << CHUNK_SHIFT)

/* Box types that may open an MP4/MOV file (ISO 14496-12, QuickTime). */
static int
known_top_box(const uint8_t t[4])
{
	static const char *const types[] = {
		"ftyp", "moov", "mdat", "free", "skip", "wide", "pnot", "uuid",
		"styp", "sidx", "PICT",
	};

	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (memcmp(t, types[i], 4) == 0)
			return 1;
	return 0;
}

static uint64_t
be(const uint8_t *p, int n)
{
	uint64_t v = 0;

	for (int i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

/* Append up to want bytes from the input. Returns bytes added, 0 at EOF,
 * or a negative AVERROR (AVERROR(EFBIG) past the limit). */
static int
spool_fill(struct worker *w, uint64_t want)
{
	struct worker_spool *sp = &w->spool;
	uint64_t idx = sp->len >> CHUNK_SHIFT;
	uint32_t off = (uint32_t)(sp->len & (CHUNK_SIZE - 1));
	uint8_t **chunks;
	int n;

	if (sp->len >= sp->limit)
		return AVERROR(EFBIG);
	if (idx >= sp->nchunks) {
		chunks = realloc(sp->chunks, (size_t)(idx + 1) * sizeof(*chunks));
		if (chunks == NULL)
			return AVERROR(ENOMEM);
		sp->chunks = chunks;
		if ((chunks[idx] = malloc(CHUNK_SIZE)) == NULL)
			return AVERROR(ENOMEM);
		sp->nchunks = idx + 1;
	}
	if (want > CHUNK_SIZE - off)
		want = CHUNK_SIZE - off;
	if (want > sp->limit - sp->len)
		want = sp->limit - sp->len;
	n = worker_input_read(w, sp->chunks[idx] + off, (int)want);
	if (n == AVERROR_EOF)
		return 0;
	if (n > 0)
		sp->len += (uint64_t)n;
	return n;
}

/* Spool until at least end bytes are held. 1 done, 0 EOF first, < 0. */
static int
spool_until(struct worker *w, uint64_t end)
{
	int n;

	while (w->spool.len < end) {
		n = spool_fill(w, end - w->spool.len);
		if (n <= 0)
			return n;
	}
	return 1;
}

static int
spool_all(struct worker *w)
{
	int n;

	do
		n = spool_fill(w, CHUNK_SIZE);
	while (n > 0);
	if (n < 0)
		return n;
	w->spool.complete = 1;
	worker_log(w, "moov after mdat on a non-seekable input: spooled %llu "
		   "bytes", (unsigned long long)w->spool.len);
	return 1;
}

/* Copy spooled bytes [pos, pos + size) out; the caller bounds them. */
static void
spool_copy(const struct worker_spool *sp, uint64_t pos, uint8_t *buf,
	   int size)
{
	while (size > 0) {
		uint32_t off = (uint32_t)(pos & (CHUNK_SIZE - 1));
		int n = (int)(CHUNK_SIZE - off) < size ?
		    (int)(CHUNK_SIZE - off) : size;

		memcpy(buf, sp->chunks[pos >> CHUNK_SHIFT] + off, (size_t)n);
		buf += n;
		pos += (uint64_t)n;
		size -= n;
	}
}

int
worker_spool_prepare(struct worker *w)
{
	uint8_t h[16];
	uint64_t pos = 0, size;
	int ret;

	for (;;) {
		if ((ret = spool_until(w, pos + 8)) <= 0)
			return ret;
		spool_copy(&w->spool, pos, h, 8);
		if ((pos == 0 && !known_top_box(h + 4)) ||
		    memcmp(h + 4, "moov", 4) == 0)
			return 0;
		size = be(h, 4);
		if (size == 1) {
			if ((ret = spool_until(w, pos + 16)) <= 0)
				return ret;
			spool_copy(&w->spool, pos + 8, h + 8, 8);
			size = be(h + 8, 8);
			if (size < 16)
				return 0;
		} else if (size < 8) {
			return 0; /* 0 = to the end: no moov can follow */
		}
		if (memcmp(h + 4, "mdat", 4) == 0)
			return spool_all(w);
		if (size > UINT64_MAX - pos)
			return 0;
		pos += size;
	}
}

int
worker_spool_read(struct worker *w, uint8_t *buf, int size)
{
	struct worker_spool *sp = &w->spool;
	uint64_t left;

	if (sp->pos >= sp->len) {
		if (sp->complete)
			return AVERROR_EOF;
		return worker_input_read(w, buf, size);
	}
	left = sp->len - sp->pos;
	if ((uint64_t)size > left)
		size = (int)left;
	spool_copy(sp, sp->pos, buf, size);
	sp->pos += (uint64_t)size;
	return size;
}

int64_t
worker_spool_seek(struct worker *w, int64_t offset, int whence)
{
	struct worker_spool *sp = &w->spool;
	int64_t base;

	switch (whence) {
	case SEEK_SET: base = 0; break;
	case SEEK_CUR: base = (int64_t)sp->pos; break;
	case SEEK_END: base = (int64_t)sp->len; break;
	default: return AVERROR(EINVAL);
	}
	if ((offset < 0 && -offset > base) ||
	    (offset > 0 && offset > INT64_MAX - base))
		return AVERROR(EINVAL);
	/* Past the end is allowed, as for a file: reads there return EOF. */
	sp->pos = (uint64_t)(base + offset);
	return (int64_t)sp->pos;
}

void
worker_spool_free(struct worker_spool *sp)
{
	for (uint64_t i = 0; i < sp->nchunks; i++)
		free(sp->chunks[i]);
	free(sp->chunks);
	memset(sp, 0, sizeof(*sp));
}
