/*
 * worker_hostile.c - test builds only (SHMDEMUX_FAULT_INJECTION): a worker
 * that turns on its readers, as one compromised by its input would.
 *
 * The worker writes its ring, its track table and its records; a worker
 * that libavformat's bugs have handed to an attacker can write any bytes
 * there at any time. These faults do exactly that, so the tests can check
 * that every consumer still ends with an error code, never a signal, and
 * that the broker lives and reports the stream's end. The scripted kinds
 * write the cases of tests/hostile_cases.c (the consumer side knows what
 * each must yield) and end the stream; the corrupting kinds keep demuxing
 * the real input and damage the ring between packets.
 *
 *   wrapped   the CVE-class attack: a wrapped_avframe track and TRUSTED
 *             packets whose payload is an AVFrame full of wild pointers
 *   tracks    a table of hostile tracks (codec ids, types, formats, sizes,
 *             time bases, strings), one packet each; ends demux-error with
 *             a message full of escapes
 *   sidedata  packets with side data of every kind, right and wrong sizes,
 *             then malformed packet metas
 *   frames    FRAME records with bogus planes, formats and sizes
 *   random=S  random bytes over records, the track table and the header's
 *             status fields while the input is demuxed (seed S)
 *   struct=S  the same, field by field with values chosen to hurt
 */
#include <errno.h>
#include <stdatomic.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavutil/frame.h>
#include <libavutil/pixfmt.h>

#include "hostile_cases.h"
#include "worker.h"
#include "worker_abi.h"

/* ---- publishing crafted records ---- */

static int
publish(struct worker *w, uint16_t type, const void *meta, uint32_t meta_len,
	const void *payload, uint64_t payload_len, uint16_t rflags)
{
	struct ring_wr wr;
	int ret = worker_reserve(w, meta_len, payload_len, &wr);

	if (ret < 0)
		return ret;
	if (meta_len > 0)
		memcpy(wr.meta, meta, meta_len);
	if (payload_len > 0 && payload != NULL)
		memcpy(wr.payload, payload, payload_len);
	else if (payload_len > 0)
		memset(wr.payload, 0x5a, payload_len);
	return ring_publish(w->ring, &wr, type, rflags);
}

/* Replace the track table (a new generation) and announce it. */
static int
publish_table(struct worker *w, const struct sd_track *tracks, unsigned n,
	      const char *format_name)
{
	struct ring_tracks *tt = ring_tracks_begin(w->ring);
	uint32_t gen;

	if (tt == NULL)
		return -EINVAL;
	tt->count = 0;
	tt->pool_used = 0;
	memcpy(tt->format_name, format_name, sizeof(tt->format_name));
	for (unsigned i = 0; i < n; i++)
		tt->tracks[i] = tracks[i];
	tt->count = n;
	gen = ring_tracks_end(w->ring);
	w->track_gen = gen;
	return publish(w, RING_REC_TRACKS, &gen, sizeof(gen), NULL, 0, 0);
}

static int
publish_packet(struct worker *w, int track, const void *sd, uint32_t sd_len,
	       uint32_t nb_sd, const void *data, uint64_t size)
{
	uint8_t *meta = av_malloc(sizeof(struct sd_pkt_meta) + sd_len);
	struct sd_pkt_meta m;
	int ret;

	if (meta == NULL)
		return AVERROR(ENOMEM);
	memset(&m, 0, sizeof(m));
	m.pts = m.dts = (int64_t)w->published;
	m.duration = 40;
	m.pos = -1;
	m.track = track;
	m.flags = HOSTILE_PKT_FLAGS;
	m.nb_side_data = nb_sd;
	m.side_data_len = sd_len;
	m.track_gen = w->track_gen;
	memcpy(meta, &m, sizeof(m));
	if (sd_len > 0)
		memcpy(meta + sizeof(m), sd, sd_len);
	ret = publish(w, RING_REC_PACKET, meta, (uint32_t)sizeof(m) + sd_len,
		      data, size, RING_RF_SYNC);
	av_free(meta);
	w->published++;
	return ret;
}

/* ---- scripted scenarios ---- */

static void
real_format_name(char *dst, size_t cap)
{
	memset(dst, 0, cap);
	memcpy(dst, "matroska,webm", 13);
}

static int
run_wrapped(struct worker *w)
{
	struct sd_track t[2];
	AVFrame fake;
	char fmt[32];
	int ret;

	hostile_track_base(&t[0], HB_VIDEO, 0);
	hostile_track_base(&t[1], HB_AUDIO, 1);
	t[0].codec_id = AV_CODEC_ID_WRAPPED_AVFRAME;
	snprintf(t[0].codec_name, sizeof(t[0].codec_name), "wrapped_avframe");
	t[0].format = AV_PIX_FMT_YUV420P;
	real_format_name(fmt, sizeof(fmt));
	if ((ret = publish_table(w, t, 2, fmt)) < 0)
		return ret;
	/* What the wrapped_avframe decoder takes for a frame: plausible
	 * enough that libavcodec hands it out, with every data pointer at an
	 * address the attacker chose. */
	memset(&fake, 0, sizeof(fake));
	fake.format = AV_PIX_FMT_YUV420P;
	fake.width = 320;
	fake.height = 240;
	fake.key_frame = 1;
	fake.pts = 0;
	for (int i = 0; i < 3; i++) {
		fake.data[i] = (uint8_t *)(uintptr_t)HOSTILE_WILD_ADDR;
		fake.linesize[i] = i == 0 ? 320 : 160;
	}
	fake.extended_data = (uint8_t **)(uintptr_t)HOSTILE_WILD_ADDR;
	fake.buf[0] = (AVBufferRef *)(uintptr_t)HOSTILE_WILD_ADDR;
	for (int i = 0; i < HOSTILE_WRAPPED_PACKETS; i++) {
		ret = publish_packet(w, 0, NULL, 0, 0, &fake, sizeof(fake));
		if (ret < 0)
			return ret;
	}
	return 0;
}

static int
run_tracks(struct worker *w)
{
	struct sd_track t[RING_MAX_TRACKS];
	char fmt[32];
	uint8_t payload[64];
	int ret;

	for (unsigned i = 0; i < hostile_ntracks && i < RING_MAX_TRACKS;
	     i++) {
		hostile_track_base(&t[i], hostile_tracks[i].base, (int)i);
		if (hostile_tracks[i].apply != NULL)
			hostile_tracks[i].apply(&t[i]);
	}
	hostile_format_name(fmt, sizeof(fmt));
	if ((ret = publish_table(w, t, hostile_ntracks, fmt)) < 0)
		return ret;
	memset(payload, 0, sizeof(payload));
	for (unsigned i = 0; i < hostile_ntracks; i++) {
		ret = publish_packet(w, (int)i, NULL, 0, 0, payload,
				     sizeof(payload));
		if (ret < 0)
			return ret;
	}
	return 0;
}

static uint32_t
pad8(uint32_t n)
{
	return (n + 7u) & ~7u;
}

static int
sd_packet(struct worker *w, const struct hostile_sd_case *c)
{
	uint32_t count = c->count ? c->count : 1, one, len;
	uint8_t *sd, *p;
	int ret;

	one = (uint32_t)sizeof(struct sd_side_data) + pad8(c->size);
	len = one * count;
	if ((sd = av_mallocz(len)) == NULL)
		return AVERROR(ENOMEM);
	p = sd;
	for (uint32_t i = 0; i < count; i++, p += one) {
		struct sd_side_data e = { c->type, c->size };

		memcpy(p, &e, sizeof(e));
		if (c->fill != NULL && c->size > 0)
			c->fill(p + sizeof(e), c->size);
		else
			for (uint32_t k = 0; k < c->size; k++)
				p[sizeof(e) + k] = (uint8_t)(k * 7 + 1);
	}
	ret = publish_packet(w, 0, sd, len, count, "pkt", 3);
	av_free(sd);
	return ret;
}

/* The table the side data and frame scenarios use: video, audio. */
static int
publish_av_table(struct worker *w)
{
	struct sd_track t[2];
	char fmt[32];

	hostile_track_base(&t[0], HB_VIDEO, 0);
	hostile_track_base(&t[1], HB_AUDIO, 1);
	real_format_name(fmt, sizeof(fmt));
	return publish_table(w, t, 2, fmt);
}

static int
run_sidedata(struct worker *w)
{
	uint8_t meta[HOSTILE_META_MAX];
	int ret;

	if ((ret = publish_av_table(w)) < 0)
		return ret;
	for (unsigned i = 0; i < hostile_nsds; i++)
		if ((ret = sd_packet(w, &hostile_sds[i])) < 0)
			return ret;
	for (unsigned i = 0; i < hostile_nmetas; i++) {
		uint32_t n = hostile_meta(&hostile_metas[i], meta,
					  w->track_gen);

		if ((ret = publish(w, RING_REC_PACKET, meta, n, "x", 1,
				   0)) < 0)
			return ret;
	}
	/* reading goes on after the malformed ones */
	return publish_packet(w, 1, NULL, 0, 0, "end", 3);
}

static int
run_frames(struct worker *w)
{
	struct hostile_frame f;
	uint8_t meta[sizeof(f.m) + sizeof(f.p) + 64];
	int ret;

	if ((ret = publish_av_table(w)) < 0)
		return ret;
	for (unsigned i = 0; i < hostile_nframes; i++) {
		const struct hostile_frame_case *c = &hostile_frames[i];
		uint32_t n;

		hostile_frame_base(&f, c->base);
		if (c->apply != NULL)
			c->apply(&f);
		f.m.track_gen = w->track_gen;
		/* the meta as long as the case says, whatever nb_planes
		 * claims */
		n = f.meta_len < sizeof(meta) ? f.meta_len : sizeof(meta);
		memset(meta, 0, sizeof(meta));
		memcpy(meta, &f.m, sizeof(f.m));
		memcpy(meta + sizeof(f.m), f.p, sizeof(f.p));
		ret = publish(w, RING_REC_FRAME, meta, n, NULL, f.payload_len,
			      RING_RF_SYNC);
		if (ret < 0)
			return ret;
		w->published++;
	}
	return 0;
}

/* The scenario's records are out: end the stream as the scenario says. */
static int
finish_script(struct worker *w, int ret, int fail)
{
	ring_flush(w->ring);
	if (ret < 0) {
		ring_set_worker_status(w->ring, SD_END_RING_ERROR, 0,
				       "hostile: publishing failed");
		return WORKER_EXIT_RING_ERROR;
	}
	if (fail) {
		ring_set_worker_status(w->ring, SD_END_DEMUX_ERROR, 0,
				       hostile_end_msg);
		return WORKER_EXIT_DEMUX_ERROR;
	}
	ring_set_worker_status(w->ring, SD_END_EOF, 0, "end of input");
	return WORKER_EXIT_EOF;
}

int
worker_hostile_script(struct worker *w)
{
	worker_log(w, "hostile worker: %s", worker_fault_name(w->fault));
	switch (w->fault) {
	case WORKER_FAULT_WRAPPED:
		return finish_script(w, run_wrapped(w), 0);
	case WORKER_FAULT_TRACKS:
		return finish_script(w, run_tracks(w), 1);
	case WORKER_FAULT_SIDEDATA:
		return finish_script(w, run_sidedata(w), 0);
	case WORKER_FAULT_FRAMES:
		return finish_script(w, run_frames(w), 0);
	default:
		return WORKER_EXIT_USAGE;
	}
}

/* ---- corruption while the input is demuxed ---- */

/* The layout as it was before we damaged anything: the header fields that
 * say where things are may be among the victims. */
static struct {
	int init;
	struct ring_hdr *hdr; /* the data segment (ring_segment) */
	uint8_t *base;        /* the same, as bytes */
	uint8_t *area;        /* the record area */
	uint64_t data_size;
	struct ring_tracks *tracks;
	uint64_t rng;
	uint64_t quiet;       /* steps left before the first damage */
	uint64_t rate;        /* about one step in this many does damage */
} hs;

static uint64_t
rnd(void)
{
	/* xorshift64*: reproducible from the seed, no syscall */
	hs.rng ^= hs.rng >> 12;
	hs.rng ^= hs.rng << 25;
	hs.rng ^= hs.rng >> 27;
	return hs.rng * UINT64_C(2685821657736338717);
}

static uint64_t
nasty(void)
{
	static const uint64_t v[] = {
		0, 1, 2, 7, 8, 63, 64, 65, 4095, 4096, 65536, INT32_MAX,
		(uint64_t)INT32_MAX + 1, UINT32_MAX, (uint64_t)UINT32_MAX + 1,
		INT64_MAX, UINT64_MAX, UINT64_MAX - 63, UINT64_MAX - 7,
		(uint64_t)-1000, 0x8000000000000000ull, 0xffffff00u,
	};

	return v[rnd() % (sizeof(v) / sizeof(v[0]))];
}

static uint64_t
value(void)
{
	return rnd() % 2 ? nasty() : rnd();
}

static void
put(void *dst, size_t width, uint64_t v)
{
	memcpy(dst, &v, width); /* little-endian: the low bytes */
}

/* Records between the producer's tail and head, found by their headers
 * (a damaged header is stepped over 64 bytes at a time). */
static unsigned
records(struct worker *w, uint64_t *pos, unsigned max)
{
	uint64_t p = ring_prod_tail(w->ring);
	uint64_t head = atomic_load_explicit(&hs.hdr->head,
					     memory_order_relaxed);
	unsigned n = 0, steps = 0;

	if (head < p || head - p > hs.data_size)
		return 0;
	while (p < head && n < max && steps++ < 8192) {
		const struct ring_rec *r = (const struct ring_rec *)
			(hs.area + p % hs.data_size);

		if (r->magic == RING_REC_MAGIC && r->pos == p &&
		    r->len >= sizeof(*r) && r->len % RING_ALIGN == 0 &&
		    r->len <= head - p) {
			pos[n++] = p;
			p += r->len;
		} else {
			p += RING_ALIGN;
		}
	}
	return n;
}

static struct ring_rec *
rec_at(uint64_t p)
{
	return (struct ring_rec *)(hs.area + p % hs.data_size);
}

/* Random bytes anywhere in a record: header, meta or payload. */
static void
random_record(struct ring_rec *r)
{
	uint64_t len = r->len, off;

	/* mostly past the header: a broken header stops readers for good */
	if (len <= sizeof(*r) || len > hs.data_size || rnd() % 8 == 0)
		off = rnd() % sizeof(*r);
	else
		off = sizeof(*r) + rnd() % (len - sizeof(*r));
	if (off + 8 > hs.data_size - (uint64_t)((uint8_t *)r - hs.area))
		return;
	if (rnd() % 2)
		((uint8_t *)r)[off] = (uint8_t)rnd();
	else
		put((uint8_t *)r + (off & ~UINT64_C(7)), 8, value());
}

static void
random_table(struct worker *w)
{
	size_t span = sizeof(struct ring_tracks) + 256;
	uint8_t *t = (uint8_t *)hs.tracks;
	uint64_t off = 4 + rnd() % (span - 12); /* gen itself stays ours */
	int sealed = rnd() % 2;

	if (sealed)
		ring_tracks_begin(w->ring);
	if (rnd() % 2)
		t[off] = (uint8_t)rnd();
	else
		put(t + (off & ~UINT64_C(3)), 4, value());
	if (sealed)
		ring_tracks_end(w->ring);
}

/* The header from the state line on: state, end fields, the message,
 * counters. */
static void
random_status(void)
{
	uint8_t *h = hs.base;
	size_t lo = offsetof(struct ring_hdr, state);
	size_t hi = sizeof(struct ring_hdr);
	uint64_t off = lo + rnd() % (hi - lo - 8);

	if (rnd() % 2)
		h[off] = (uint8_t)rnd();
	else
		put(h + (off & ~UINT64_C(3)), 4, value());
}

static void
corrupt_random(struct worker *w)
{
	uint64_t pos[256];
	unsigned n = records(w, pos, 256);

	switch (rnd() % 10) {
	case 0: case 1: case 2: case 3:
		if (n > 0)
			random_record(rec_at(pos[rnd() % n]));
		break;
	case 4: case 5:
		random_table(w);
		break;
	case 6: case 7:
		random_status();
		break;
	case 8:
		/* the newest record's header, a word at random */
		if (n > 0) {
			struct ring_rec *r = rec_at(pos[n - 1]);

			put((uint8_t *)r + 8 * (rnd() % 8), 8, value());
		}
		break;
	default:
		/* now and then the publish line: head, tail, last_sync,
		 * next_seq (the next publish rewrites head) */
		if (rnd() % 2 == 0)
			put(hs.base + offsetof(struct ring_hdr, head) +
			    8 * (rnd() % 4), 8, value());
		else if (n > 0)
			random_record(rec_at(pos[rnd() % n]));
		break;
	}
}

/* ---- field by field ---- */

static void
struct_packet_meta(const struct ring_rec *r, uint8_t *meta)
{
	struct sd_pkt_meta *m = (struct sd_pkt_meta *)meta;

	switch (rnd() % 7) {
	case 0: put(&m->track, 4, value()); break;
	case 1: put(&m->flags, 4, value()); break;
	case 2: put(&m->nb_side_data, 4, value()); break;
	case 3: put(&m->side_data_len, 4, value()); break;
	case 4: put(&m->track_gen, 4, value()); break;
	case 5: put(&m->pts, 8, value()); break;
	default:
		/* a side data entry's type or size */
		if (m->side_data_len >= 8 && r->meta_len >= sizeof(*m) + 8)
			put(meta + sizeof(*m) + 4 * (rnd() % 2), 4, value());
		break;
	}
}

static void
struct_frame_meta(const struct ring_rec *r, uint8_t *meta)
{
	struct sd_frame_meta *m = (struct sd_frame_meta *)meta;
	struct sd_frame_plane *p = (struct sd_frame_plane *)(m + 1), *q;

	switch (rnd() % 10) {
	case 0: put(&m->format, 4, value()); break;
	case 1: put(&m->width, 4, value()); break;
	case 2: put(&m->height, 4, value()); break;
	case 3: put(&m->nb_planes, 4, value()); break;
	case 4: put(&m->flags, 4, value()); break;
	case 5: put(&m->channels, 4, value()); break;
	case 6: put(&m->nb_samples, 4, value()); break;
	case 7: put(&m->media_type, 4, value()); break;
	default:
		/* a plane's offset, size or linesize */
		if (m->nb_planes == 0 || m->nb_planes > 4 ||
		    r->meta_len < sizeof(*m) + m->nb_planes * sizeof(*p))
			break;
		q = &p[rnd() % m->nb_planes];
		if (rnd() % 3 == 0)
			put(&q->offset, 8, value());
		else if (rnd() % 2 == 0)
			put(&q->size, 8, value());
		else
			put(&q->linesize, 4, value());
		break;
	}
}

static void
struct_record(struct ring_rec *r)
{
	uint8_t *meta = (uint8_t *)(r + 1);

	/* A broken header stops a reader for good (its length is unknown):
	 * mostly the meta, so that readers get on to later damage. */
	switch (rnd() % 32) {
	case 0: put(&r->magic, 2, value()); break;
	case 1: put(&r->type, 2, rnd() % 6); break;
	case 2: put(&r->flags, 2, value()); break;
	case 3: put(&r->meta_len, 4, value()); break;
	case 4: put(&r->len, 8, value()); break;
	case 5: put(&r->seq, 8, value()); break;
	case 6: put(&r->payload_len, 8, value()); break;
	case 7: put(&r->pos, 8, value()); break;
	default:
		/* the meta: bytes beyond it would be another record's */
		if (r->meta_len < 8 || r->meta_len > 4096)
			break;
		if (r->type == RING_REC_PACKET &&
		    r->meta_len >= sizeof(struct sd_pkt_meta))
			struct_packet_meta(r, meta);
		else if (r->type == RING_REC_FRAME &&
			 r->meta_len >= sizeof(struct sd_frame_meta))
			struct_frame_meta(r, meta);
		else
			put(meta + 4 * (rnd() % (r->meta_len / 4)), 4,
			    value());
		break;
	}
}

static void
struct_track(struct sd_track *k)
{
	switch (rnd() % 16) {
	case 0: put(&k->codec_id, 4, rnd() % 2 ?
		    AV_CODEC_ID_WRAPPED_AVFRAME : value()); break;
	case 1: put(&k->media_type, 4, value()); break;
	case 2: put(&k->format, 4, rnd() % 2 ? AV_PIX_FMT_VAAPI : value());
		break;
	case 3: put(&k->width, 4, value()); break;
	case 4: put(&k->height, 4, value()); break;
	case 5: put(&k->tb_num, 4, value()); break;
	case 6: put(&k->tb_den, 4, value()); break;
	case 7: put(&k->extradata_off, 4, value()); break;
	case 8: put(&k->extradata_len, 4, value()); break;
	case 9: put(&k->channels, 4, value()); break;
	case 10: put(&k->sample_rate, 4, value()); break;
	case 11: put(&k->ch_mask, 8, value()); break;
	case 12: put(&k->index, 4, value()); break;
	case 13: hostile_label(k->codec_name, sizeof(k->codec_name)); break;
	case 14: hostile_label(k->title, sizeof(k->title)); break;
	default: put(&k->block_align, 4, value()); break;
	}
}

static void
struct_table(struct worker *w)
{
	struct ring_tracks *t = hs.tracks;
	int sealed = rnd() % 4 != 0;
	unsigned n = t->count < RING_MAX_TRACKS ? t->count : RING_MAX_TRACKS;

	if (sealed)
		ring_tracks_begin(w->ring);
	/* a broken count or pool empties the table for good: rarely */
	switch (rnd() % 16) {
	case 0: put(&t->count, 4, value()); break;
	case 1: put(&t->pool_used, 4, value()); break;
	case 2: hostile_format_name(t->format_name, sizeof(t->format_name));
		break;
	default:
		struct_track(&t->tracks[n > 0 ? rnd() % n : 0]);
		break;
	}
	if (sealed)
		ring_tracks_end(w->ring);
}

static void
struct_header(void)
{
	struct ring_hdr *h = (struct ring_hdr *)hs.base;

	switch (rnd() % 28) {
	case 0: put(&h->state, 4, rnd() % 8); break;
	case 1: put(&h->end_reason, 4, value()); break;
	case 2: hostile_label(h->end_msg, sizeof(h->end_msg)); break;
	case 3: put(&h->worker_pid, 4, value()); break;
	case 4: put(&h->worker_reason, 4, value()); break;
	case 5: put(&h->end_syscall, 4, value()); break;
	case 6: put(&h->last_sync, 8, value()); break;
	case 7: put(&h->next_seq, 8, value()); break;
	case 8: put(&h->wake_seq, 4, value()); break;
	case 9: put(&h->packets, 8, value()); break;
	case 10: put(&h->progress_ns, 8, value()); break;
	case 11: put(&h->tracks_off, 8, value()); break;
	case 12: put(&h->pool_size, 8, value()); break;
	case 13: put(&h->head, 8, value()); break;
	default: put(&h->frames, 8, value()); break; /* a counter */
	}
}

static void
corrupt_struct(struct worker *w)
{
	uint64_t pos[256];
	unsigned n;

	switch (rnd() % 8) {
	case 0: case 1: case 2: case 3:
		n = records(w, pos, 256);
		if (n > 0)
			struct_record(rec_at(pos[n - 1 - rnd() % (n < 8 ?
								   n : 8)]));
		break;
	case 4: case 5: case 6:
		struct_table(w);
		break;
	default:
		struct_header();
		break;
	}
}

void
worker_hostile_corrupt(struct worker *w)
{
	unsigned hits;
	size_t len;

	if (!hs.init) {
		hs.init = 1;
		/* A compromised worker writes what it likes where it likes:
		 * the raw segment, not the ring's API. */
		hs.hdr = ring_segment(w->ring, &len);
		hs.base = (uint8_t *)hs.hdr;
		hs.area = hs.base + hs.hdr->data_off;
		hs.data_size = hs.hdr->data_size;
		hs.tracks = (struct ring_tracks *)(hs.base +
						   hs.hdr->tracks_off);
		/* one campaign seed, a different stream per stream id */
		hs.rng = (w->fault_seed + 1) * UINT64_C(0x9e3779b97f4a7c15) ^
			 ((uint64_t)w->stream_id << 32 | 0x5bd1e995u);
		/* Some streams are damaged from the start (readers attach to
		 * a damaged ring), most only once readers are at work. */
		hs.quiet = rnd() % 4 == 0 ? 0 : 16 + rnd() % 96;
		hs.rate = 2 + rnd() % 30;
		worker_log(w, "hostile worker: %s, seed %llu, stream %ld, "
			   "from packet %llu", worker_fault_name(w->fault),
			   (unsigned long long)w->fault_seed, w->stream_id,
			   (unsigned long long)(w->published + hs.quiet));
	}
	if (hs.quiet > 0) {
		hs.quiet--;
		return;
	}
	/* Most packets go through untouched, so readers get far enough to
	 * meet damage in every state. */
	if (rnd() % hs.rate != 0)
		return;
	for (hits = 1 + rnd() % 3; hits > 0; hits--) {
		if (w->fault == WORKER_FAULT_RANDOM)
			corrupt_random(w);
		else
			corrupt_struct(w);
	}
}
