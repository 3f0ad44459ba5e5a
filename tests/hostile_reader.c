/*
 * hostile_reader.c - a consumer of a hostile worker's stream that uses
 * every helper of libshmdemux and checks what it gets.
 *
 *   hostile_reader SOCKET STREAM SCENARIO
 *
 * SCENARIO is what the worker was told to do (tests/hostile_cases.h):
 * wrapped, tracks, sidedata or frames, whose every record has a known
 * verdict, checked one by one; or any (the random and struct damage), for
 * which only the library's promises are checked: strings NUL-terminated and
 * valid UTF-8, no TRUSTED flag, enums in range, time bases positive, views
 * that can be copied and hashed, AVPackets and AVFrames that FFmpeg takes.
 *
 * Exit status: 0 every check held (whatever code the stream ended with),
 * 1 a check failed (each printed), 2 no record and no end for 30 s.
 * It must never die from a signal: tests/test_hostile.sh checks that.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavutil/imgutils.h>
#include <libavutil/md5.h>
#include <libavutil/pixdesc.h>
#include <libavutil/samplefmt.h>

#include "hostile_cases.h"
#include "shmdemux.h"
#include "utf8.h"

#define SAFE_FLAGS (SHMDEMUX_PKT_KEY | SHMDEMUX_PKT_CORRUPT | \
		    SHMDEMUX_PKT_DISCARD | SHMDEMUX_PKT_DISPOSABLE)
#define READ_TIMEOUT_MS 30000
#define SHMDEMUX_MAX_TRACKS 64 /* the ring's RING_MAX_TRACKS */
/* Corrupt records in a row after which the reader gives up: a damaged
 * record header cannot be stepped over (its length is unknown), so the
 * ring returns it again and again. */
#define MAX_CORRUPT_RUN 1000

static int failures;
static const char *scenario;

#define EXPECT(cond, ...) do {						\
		if (!(cond)) {						\
			fprintf(stderr, "hostile_reader: %s: ", scenario); \
			fprintf(stderr, __VA_ARGS__);			\
			fputc('\n', stderr);				\
			failures++;					\
		}							\
	} while (0)

/* Strict UTF-8 (common/utf8.c): no overlong forms, no surrogates, nothing
 * past U+10FFFF. */
static int
utf8_valid(const char *s)
{
	size_t left = strlen(s), n;

	for (; left > 0; s += n, left -= n)
		if ((n = utf8_char_len(s, left, NULL)) == 0)
			return 0;
	return 1;
}

static void
check_string(const char *what, int i, const char *s, size_t cap)
{
	EXPECT(memchr(s, '\0', cap) != NULL, "track %d: %s not terminated",
	       i, what);
	if (memchr(s, '\0', cap) != NULL)
		EXPECT(utf8_valid(s), "track %d: %s not valid UTF-8", i, what);
}

/* What the library promises of a track it hands out. */
static void
check_track_promises(const struct shmdemux_track *t, int i)
{
	const AVCodecDescriptor *d;

	check_string("codec_name", i, t->codec_name, sizeof(t->codec_name));
	check_string("language", i, t->language, sizeof(t->language));
	check_string("title", i, t->title, sizeof(t->title));
	d = avcodec_descriptor_get(t->codec_id);
	EXPECT(strcmp(t->codec_name, d != NULL ? d->name : t->codec_id == 0 ?
		      "none" : "unknown_codec") == 0,
	       "track %d: codec_name '%s' is not the name of codec %d", i,
	       t->codec_name, t->codec_id);
	EXPECT(t->codec_id != AV_CODEC_ID_WRAPPED_AVFRAME,
	       "track %d: wrapped_avframe handed out", i);
	EXPECT(t->index == i, "track %d: index %d", i, t->index);
	EXPECT(t->tb_num > 0 && t->tb_den > 0, "track %d: time base %d/%d", i,
	       t->tb_num, t->tb_den);
	EXPECT(t->width >= 0 && t->height >= 0, "track %d: size %dx%d", i,
	       t->width, t->height);
	EXPECT(t->sar_num >= 0 && t->sar_den >= 0 && t->st_sar_num >= 0 &&
	       t->st_sar_den >= 0 && t->avg_fr_num >= 0 &&
	       t->avg_fr_den >= 0 && t->r_fr_num >= 0 && t->r_fr_den >= 0,
	       "track %d: negative rational", i);
	EXPECT(av_color_range_name(t->color_range) != NULL &&
	       av_color_primaries_name(t->color_primaries) != NULL &&
	       av_color_transfer_name(t->color_trc) != NULL &&
	       av_color_space_name(t->color_space) != NULL &&
	       av_chroma_location_name(t->chroma_location) != NULL,
	       "track %d: color value without a name", i);
	EXPECT(t->field_order >= AV_FIELD_UNKNOWN &&
	       t->field_order <= AV_FIELD_BT, "track %d: field order %d", i,
	       t->field_order);
	EXPECT(t->video_delay >= 0 && t->video_delay <= 16,
	       "track %d: video delay %d", i, t->video_delay);
	EXPECT(t->channels >= 0 && t->channels <= 512 && t->sample_rate >= 0,
	       "track %d: %d channels at %d Hz", i, t->channels,
	       t->sample_rate);
	EXPECT(t->ch_order >= AV_CHANNEL_ORDER_UNSPEC &&
	       t->ch_order <= AV_CHANNEL_ORDER_AMBISONIC,
	       "track %d: channel order %d", i, t->ch_order);
	if (t->media_type == SHMDEMUX_MEDIA_VIDEO && t->format != -1) {
		const AVPixFmtDescriptor *pd = av_pix_fmt_desc_get(t->format);

		EXPECT(pd != NULL && !(pd->flags & AV_PIX_FMT_FLAG_HWACCEL),
		       "track %d: pixel format %d", i, t->format);
	}
	if (t->media_type == SHMDEMUX_MEDIA_AUDIO && t->format != -1)
		EXPECT(av_get_sample_fmt_name(t->format) != NULL,
		       "track %d: sample format %d", i, t->format);
}

static int
verdict_of(int ret)
{
	if (ret == 0)
		return HV_OK;
	if (ret == SHMDEMUX_ECORRUPT)
		return HV_CORRUPT;
	if (ret == -ENOTSUP)
		return HV_NOTSUP;
	return -1;
}

/* Every track through every track helper; returns how many were refused. */
static int
walk_tracks(shmdemux_stream *s, const struct hostile_track_case *cases,
	    unsigned ncases)
{
	AVCodecParameters *par = avcodec_parameters_alloc();
	struct shmdemux_track t;
	int n = shmdemux_track_count(s), refused = 0, num, den, rt, rp;

	check_string("format_name", -1, shmdemux_format_name(s), 32);
	for (int i = 0; i < n && par != NULL; i++) {
		rt = shmdemux_get_track(s, i, &t);
		rp = shmdemux_track_to_codecpar(s, i, par);
		EXPECT(rt == 0 || rt == SHMDEMUX_ECORRUPT, "track %d: get %d",
		       i, rt);
		EXPECT(rp == 0 || rp == SHMDEMUX_ECORRUPT || rp == -ENOTSUP,
		       "track %d: codecpar %d", i, rp);
		EXPECT(rt == 0 || rp == rt, "track %d: refused (%d) but "
		       "codecpar %d", i, rt, rp);
		EXPECT((shmdemux_track_time_base(s, i, &num, &den) == 0) ==
		       (rt == 0), "track %d: time base vs track", i);
		if (cases != NULL && (unsigned)i < ncases) {
			EXPECT(verdict_of(rt) == cases[i].track,
			       "track %d (%s): get_track %s", i, cases[i].name,
			       shmdemux_strerror(rt));
			EXPECT(verdict_of(rp) == cases[i].par,
			       "track %d (%s): codecpar %s", i, cases[i].name,
			       shmdemux_strerror(rp));
		}
		if (rt != 0) {
			refused++;
			continue;
		}
		check_track_promises(&t, i);
		if (rp == 0) {
			EXPECT((int)par->codec_id == t.codec_id &&
			       (int)par->codec_type == t.media_type,
			       "track %d: codecpar ids", i);
			EXPECT(par->extradata_size >= 0 &&
			       (size_t)par->extradata_size == t.extradata_size,
			       "track %d: extradata", i);
			if (par->extradata_size > 0) {
				uint8_t d[16];

				av_md5_sum(d, par->extradata,
					   par->extradata_size);
			}
		}
	}
	if (cases != NULL)
		EXPECT(n == (int)ncases, "%d tracks, %u cases", n, ncases);
	avcodec_parameters_free(&par);
	return refused;
}

static void
check_packet(const struct shmdemux_packet *p, AVPacket *pkt)
{
	uint8_t d[16];
	int ret;

	EXPECT((p->flags & ~(uint32_t)SAFE_FLAGS) == 0,
	       "packet %" PRIu64 ": flags %#x", p->seq, p->flags);
	/* checked against the table of its read; the worker may have
	 * replaced the table since */
	EXPECT(p->track >= 0 && p->track < SHMDEMUX_MAX_TRACKS,
	       "packet %" PRIu64 ": track %d", p->seq, p->track);
	EXPECT(p->nb_side_data <= SHMDEMUX_MAX_SIDE_DATA,
	       "packet %" PRIu64 ": %u side data", p->seq, p->nb_side_data);
	av_md5_sum(d, p->data, (int)(p->size > INT32_MAX ? 0 : p->size));
	for (unsigned i = 0; i < p->nb_side_data &&
	     i < SHMDEMUX_MAX_SIDE_DATA; i++)
		av_md5_sum(d, p->side_data[i].data, (int)p->side_data[i].size);
	ret = shmdemux_packet_to_avpacket(p, pkt);
	EXPECT(ret == 0 || ret == -ENOMEM || ret == -EINVAL,
	       "packet %" PRIu64 ": avpacket %d", p->seq, ret);
	if (ret == 0)
		EXPECT(!(pkt->flags & AV_PKT_FLAG_TRUSTED) &&
		       (pkt->flags & ~SAFE_FLAGS) == 0,
		       "packet %" PRIu64 ": AVPacket flags %#x", p->seq,
		       pkt->flags);
}

/* What a consumer does with an AVFrame: pack and hash its pixels (as
 * framemd5), or every sample of every channel. */
static void
hash_avframe(const AVFrame *fr, uint64_t seq, const char *how)
{
	uint8_t d[16];

	if (fr->nb_samples == 0) {
		int sz = av_image_get_buffer_size(fr->format, fr->width,
						  fr->height, 1);
		uint8_t *buf = sz > 0 ? av_malloc((size_t)sz) : NULL;

		EXPECT(buf != NULL, "frame %" PRIu64 " (%s): buffer size %d",
		       seq, how, sz);
		if (buf != NULL && av_image_copy_to_buffer(buf, sz,
		    (const uint8_t *const *)fr->data, fr->linesize,
		    fr->format, fr->width, fr->height, 1) < 0)
			EXPECT(0, "frame %" PRIu64 " (%s): image copy", seq,
			       how);
		if (buf != NULL)
			av_md5_sum(d, buf, sz);
		av_free(buf);
		return;
	}
	int ch = fr->ch_layout.nb_channels;
	int planar = av_sample_fmt_is_planar(fr->format);
	int bytes = av_get_bytes_per_sample(fr->format) * fr->nb_samples *
		    (planar ? 1 : ch);

	EXPECT(bytes > 0 && ch > 0, "frame %" PRIu64 " (%s): %d bytes", seq,
	       how, bytes);
	for (int c = 0; bytes > 0 && c < (planar ? ch : 1); c++)
		av_md5_sum(d, fr->extended_data[c], bytes);
}

/* Copy and hash the frame's planes, then lend it and copy it as AVFrames. */
static void
check_frame(shmdemux_stream *s, int hashed_ok)
{
	struct shmdemux_frame f;
	AVFrame *av = av_frame_alloc(), *cp = av_frame_alloc();
	uint8_t d[16];
	int ret;

	EXPECT(shmdemux_get_frame(s, &f) == 0, "get_frame");
	for (int i = 0; i < f.nb_planes && i < SHMDEMUX_FRAME_MAX_PLANES; i++)
		av_md5_sum(d, f.data[i], (int)f.plane_size[i]);
	EXPECT(f.nb_planes > 0 && f.nb_planes <= SHMDEMUX_FRAME_MAX_PLANES,
	       "frame %" PRIu64 ": %d planes", f.seq, f.nb_planes);
	EXPECT((f.flags & ~(uint32_t)(SHMDEMUX_FRAME_KEY |
	       SHMDEMUX_FRAME_INTERLACED | SHMDEMUX_FRAME_TOP_FIELD_FIRST |
	       SHMDEMUX_FRAME_CORRUPT)) == 0, "frame %" PRIu64 ": flags %#x",
	       f.seq, f.flags);
	if (f.media_type == SHMDEMUX_MEDIA_VIDEO) {
		const AVPixFmtDescriptor *pd = av_pix_fmt_desc_get(f.format);

		EXPECT(pd != NULL && !(pd->flags & AV_PIX_FMT_FLAG_HWACCEL) &&
		       av_image_check_size((unsigned)f.width, (unsigned)f.height, 0, NULL) == 0,
		       "frame %" PRIu64 ": %dx%d format %d", f.seq, f.width,
		       f.height, f.format);
		EXPECT(av_color_range_name(f.color_range) != NULL &&
		       av_color_primaries_name(f.color_primaries) != NULL &&
		       av_color_transfer_name(f.color_trc) != NULL &&
		       av_color_space_name(f.color_space) != NULL &&
		       av_chroma_location_name(f.chroma_location) != NULL &&
		       f.sar_num >= 0 && f.sar_den >= 0 &&
		       f.pict_type >= AV_PICTURE_TYPE_NONE &&
		       f.pict_type <= AV_PICTURE_TYPE_BI,
		       "frame %" PRIu64 ": enums out of range", f.seq);
	} else {
		EXPECT(av_get_sample_fmt_name(f.format) != NULL &&
		       f.channels > 0 && f.channels <= 512 &&
		       f.nb_samples > 0 && f.sample_rate > 0,
		       "frame %" PRIu64 ": audio %d ch %d samples fmt %d",
		       f.seq, f.channels, f.nb_samples, f.format);
	}
	if (av == NULL || cp == NULL)
		goto out;
	ret = shmdemux_frame_to_avframe(s, av);
	EXPECT(ret == 0 || ret == -ENOBUFS || ret == SHMDEMUX_EOVERRUN,
	       "frame %" PRIu64 ": lend %s", f.seq, shmdemux_strerror(ret));
	if (ret == 0)
		hash_avframe(av, f.seq, "lent");
	ret = shmdemux_frame_to_avframe_copy(&f, cp);
	EXPECT(ret == 0 || (!hashed_ok && ret == -ENOMEM),
	       "frame %" PRIu64 ": copy %s", f.seq, shmdemux_strerror(ret));
	if (ret == 0)
		hash_avframe(cp, f.seq, "copied");
out:
	av_frame_free(&av);
	av_frame_free(&cp);
}

static int
expect_read(shmdemux_stream *s, struct shmdemux_packet *p, int want,
	    const char *what)
{
	int ret;

	do
		ret = shmdemux_read(s, p, READ_TIMEOUT_MS);
	while (ret == SHMDEMUX_TRACKS_CHANGED);
	EXPECT(ret == want, "%s: read %s, want %s", what,
	       shmdemux_strerror(ret), shmdemux_strerror(want));
	return ret;
}

static void
run_wrapped(shmdemux_stream *s, AVPacket *pkt)
{
	static const struct hostile_track_case cases[] = {
		{ "wrapped_avframe", HB_VIDEO, NULL, HV_CORRUPT, HV_CORRUPT },
		{ "aac audio", HB_AUDIO, NULL, HV_OK, HV_OK },
	};
	struct shmdemux_packet p;

	for (int i = 0; i < HOSTILE_WRAPPED_PACKETS; i++) {
		if (expect_read(s, &p, 0, "wrapped packet") != 0)
			return;
		EXPECT(p.track == 0, "wrapped packet on track %d", p.track);
		check_packet(&p, pkt);
		av_packet_unref(pkt);
		if (i == 0)
			walk_tracks(s, cases, 2);
	}
	expect_read(s, &p, SHMDEMUX_EOF, "end");
}

static void
run_tracks(shmdemux_stream *s, AVPacket *pkt)
{
	struct shmdemux_packet p;
	struct shmdemux_status st;

	for (unsigned i = 0; i < hostile_ntracks; i++) {
		if (expect_read(s, &p, 0, hostile_tracks[i].name) != 0)
			return;
		EXPECT(p.track == (int)i, "packet %u on track %d", i, p.track);
		check_packet(&p, pkt);
		av_packet_unref(pkt);
		if (i == 0)
			walk_tracks(s, hostile_tracks, hostile_ntracks);
	}
	expect_read(s, &p, SHMDEMUX_EDEMUX, "end");
	shmdemux_status(s, &st);
	EXPECT(utf8_valid(st.message), "end message not valid UTF-8");
}

static void
run_sidedata(shmdemux_stream *s, AVPacket *pkt)
{
	struct shmdemux_packet p;
	struct shmdemux_status st;
	uint64_t dropped = 0;

	for (unsigned i = 0; i < hostile_nsds; i++) {
		const struct hostile_sd_case *c = &hostile_sds[i];
		unsigned count = c->count ? c->count : 1;

		if (expect_read(s, &p, 0, c->name) != 0)
			return;
		check_packet(&p, pkt);
		EXPECT(p.nb_side_data == (c->view ? count : 0),
		       "%s: %u side data in the view", c->name,
		       p.nb_side_data);
		for (unsigned k = 0; k < p.nb_side_data; k++)
			EXPECT(p.side_data[k].type == c->type &&
			       p.side_data[k].size == c->size,
			       "%s: entry %u is type %u size %u", c->name, k,
			       p.side_data[k].type, p.side_data[k].size);
		EXPECT(pkt->side_data_elems == (int)(c->avpacket ? count : 0),
		       "%s: %d side data in the AVPacket", c->name,
		       pkt->side_data_elems);
		av_packet_unref(pkt);
		if (!c->view)
			dropped += count;
	}
	for (unsigned i = 0; i < hostile_nmetas; i++)
		expect_read(s, &p, SHMDEMUX_ECORRUPT, hostile_metas[i].name);
	if (expect_read(s, &p, 0, "the packet after") == 0)
		EXPECT(p.track == 1 && p.size == 3, "the packet after: track "
		       "%d size %zu", p.track, p.size);
	expect_read(s, &p, SHMDEMUX_EOF, "end");
	shmdemux_status(s, &st);
	EXPECT(st.side_data_dropped == dropped, "%" PRIu64 " side data "
	       "dropped, want %" PRIu64, st.side_data_dropped, dropped);
}

static void
run_frames(shmdemux_stream *s)
{
	struct shmdemux_packet p;

	for (unsigned i = 0; i < hostile_nframes; i++) {
		const struct hostile_frame_case *c = &hostile_frames[i];

		if (expect_read(s, &p, c->verdict == HV_OK ? SHMDEMUX_FRAME :
				SHMDEMUX_ECORRUPT, c->name) == SHMDEMUX_FRAME)
			check_frame(s, 1);
	}
	expect_read(s, &p, SHMDEMUX_EOF, "end");
}

/* Whatever comes: keep reading past corrupt records, check each thing the
 * library hands out, stop at the stream's end or at a fatal code. */
static int
run_any(shmdemux_stream *s, AVPacket *pkt)
{
	struct shmdemux_packet p;
	unsigned corrupt = 0, run = 0, packets = 0, frames = 0, tables = 0;
	uint32_t gen = UINT32_MAX;
	int ret;

	for (;;) {
		ret = shmdemux_read(s, &p, READ_TIMEOUT_MS);
		if (shmdemux_track_generation(s) != gen) {
			gen = shmdemux_track_generation(s);
			walk_tracks(s, NULL, 0);
			tables++;
		}
		if (ret != SHMDEMUX_ECORRUPT)
			run = 0;
		if (ret == 0) {
			check_packet(&p, pkt);
			av_packet_unref(pkt);
			packets++;
		} else if (ret == SHMDEMUX_FRAME) {
			check_frame(s, 0);
			frames++;
		} else if (ret == SHMDEMUX_TRACKS_CHANGED ||
			   ret == SHMDEMUX_EOVERRUN) {
			continue;
		} else if (ret == SHMDEMUX_ECORRUPT) {
			corrupt++;
			if (++run >= MAX_CORRUPT_RUN) {
				ret = SHMDEMUX_ECORRUPT;
				printf("hostile_reader: gave up after %u "
				       "corrupt records in a row\n", run);
				break;
			}
		} else if (ret == -EAGAIN) {
			fprintf(stderr, "hostile_reader: no record and no "
				"end for %d ms\n", READ_TIMEOUT_MS);
			return 2;
		} else {
			break;
		}
	}
	printf("hostile_reader: ended with %s: %u packets, %u frames, "
	       "%u tables, %u corrupt records\n", shmdemux_strerror(ret),
	       packets, frames, tables, corrupt);
	return 0;
}

int
main(int argc, char **argv)
{
	shmdemux_conn *c = NULL;
	shmdemux_stream *s = NULL;
	AVPacket *pkt = av_packet_alloc();
	char *end;
	unsigned long id;
	int ret, code = 0;

	if (argc != 4 || pkt == NULL) {
		fprintf(stderr, "usage: hostile_reader SOCKET STREAM "
			"wrapped|tracks|sidedata|frames|any\n");
		return 2;
	}
	scenario = argv[3];
	id = strtoul(argv[2], &end, 10);
	ret = shmdemux_connect(&c, argv[1], 0);
	if (ret == 0)
		ret = shmdemux_attach(c, (uint32_t)id,
				      *end == '\0' ? NULL : argv[2],
				      SHMDEMUX_START_OLDEST,
				      SHMDEMUX_ATTACH_TRACK_EVENTS, &s);
	if (ret < 0) {
		/* the ring may be damaged before we attach: a code, fine */
		fprintf(stderr, "hostile_reader: attach: %s\n",
			shmdemux_strerror(ret));
		code = strcmp(scenario, "any") == 0 ? 0 : 1;
		goto out;
	}
	if (strcmp(scenario, "wrapped") == 0)
		run_wrapped(s, pkt);
	else if (strcmp(scenario, "tracks") == 0)
		run_tracks(s, pkt);
	else if (strcmp(scenario, "sidedata") == 0)
		run_sidedata(s, pkt);
	else if (strcmp(scenario, "frames") == 0)
		run_frames(s);
	else
		code = run_any(s, pkt);
	if (code == 0 && failures > 0)
		code = 1;
	if (failures == 0 && code == 0)
		printf("hostile_reader: %s: every check held\n", scenario);
out:
	shmdemux_detach(&s);
	shmdemux_disconnect(&c);
	av_packet_free(&pkt);
	return code;
}
