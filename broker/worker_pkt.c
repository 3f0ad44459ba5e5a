/*
 * worker_pkt.c - one AVPacket becomes one RING_REC_PACKET record; before
 * it (or before its frames, for a decoded track: worker_decode.c) the
 * track table is brought up to date and --realtime paces the packet.
 *
 * Record meta: struct sd_pkt_meta, then the packet's side data entries
 * (struct sd_side_data + bytes, each padded to 8). Record payload: the packet
 * data, copied once, straight from the AVPacket into the ring.
 */
#include <errno.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include <libavutil/mathematics.h>

#include "worker.h"

/* Side data is small in practice (skip samples, new extradata, palettes);
 * anything beyond this per packet is dropped rather than bloat the ring. */
#define SIDE_DATA_MAX (1u << 24)
/* --realtime: a timestamp further ahead than this is a discontinuity (live
 * TS wrap, splice), not a reason to stall; pacing restarts from it. */
#define RT_MAX_AHEAD_US INT64_C(10000000)

/* media.h promises FFmpeg's values; the copy below relies on it. */
_Static_assert(SD_NOPTS == AV_NOPTS_VALUE, "SD_NOPTS");
_Static_assert(SD_PKT_KEY == AV_PKT_FLAG_KEY &&
	       SD_PKT_CORRUPT == AV_PKT_FLAG_CORRUPT &&
	       SD_PKT_DISCARD == AV_PKT_FLAG_DISCARD &&
	       SD_PKT_TRUSTED == AV_PKT_FLAG_TRUSTED &&
	       SD_PKT_DISPOSABLE == AV_PKT_FLAG_DISPOSABLE, "SD_PKT_*");

static uint32_t
pad8(uint32_t n)
{
	return (n + 7u) & ~7u;
}

int
worker_reserve(struct worker *w, uint32_t meta_len, uint64_t payload_len,
	       struct ring_wr *wr)
{
	int ret;

	for (;;) {
		ret = ring_reserve(w->ring, meta_len, payload_len, wr,
				   RING_WAIT_SLICE_MS);
		if (ret != -ETIMEDOUT && ret != -EAGAIN)
			return ret;
		if (worker_stop)
			return -EINTR;
		/* Waiting on slow consumers is not a hang: keep the
		 * watchdog's progress clock moving (relaxed: a hint). */
		ring_set_progress(w->ring, now_ns());
	}
}

/* How many side data entries fit and how many meta bytes they take. */
static uint32_t
side_data_len(const struct worker *w, const AVPacket *pkt, unsigned *nb)
{
	uint32_t total = 0;
	unsigned n = 0;

	for (int i = 0; i < pkt->side_data_elems; i++) {
		const AVPacketSideData *sd = &pkt->side_data[i];
		uint64_t need = sizeof(struct sd_side_data) +
				((sd->size + 7u) & ~(size_t)7u);

		if (n == SD_MAX_SIDE_DATA || need > SIDE_DATA_MAX - total) {
			worker_log(w, "packet side data beyond %u entries / "
				   "%u bytes dropped", SD_MAX_SIDE_DATA,
				   SIDE_DATA_MAX);
			break;
		}
		total += (uint32_t)need;
		n++;
	}
	*nb = n;
	return total;
}

static void
write_side_data(uint8_t *dst, const AVPacket *pkt, unsigned nb)
{
	for (unsigned i = 0; i < nb; i++) {
		const AVPacketSideData *sd = &pkt->side_data[i];
		struct sd_side_data h = {
			.type = (uint32_t)sd->type,
			.size = (uint32_t)sd->size,
		};
		uint32_t padded = pad8(h.size);

		memcpy(dst, &h, sizeof(h));
		dst += sizeof(h);
		memcpy(dst, sd->data, h.size);
		/* zero the padding: consumers must never see stale bytes */
		memset(dst + h.size, 0, padded - h.size);
		dst += padded;
	}
}

#define PROGRESS_EVERY 64u

/* Wait until the packet is due at the media's pace (ffmpeg -re). */
static void
pace(struct worker *w, const AVPacket *pkt)
{
	const AVStream *st = w->fmt->streams[pkt->stream_index];
	int64_t ts = pkt->dts != AV_NOPTS_VALUE ? pkt->dts : pkt->pts;
	int64_t us, ahead, now = (int64_t)now_ns();
	int64_t due_ns;

	if (ts == AV_NOPTS_VALUE)
		return;
	us = av_rescale_q(ts, st->time_base, AV_TIME_BASE_Q);
	if (w->rt_start_ns == 0 ||
	    __builtin_sub_overflow(us, w->rt_base_us, &ahead) ||
	    ahead > (now - w->rt_start_ns) / 1000 + RT_MAX_AHEAD_US) {
		w->rt_base_us = us;
		w->rt_start_ns = now;
		return;
	}
	if (ahead <= 0)
		return;
	due_ns = w->rt_start_ns + ahead * 1000;
	/* Consumers see what is already published before we sleep. */
	ring_flush(w->ring);
	/* Returns early on SIGTERM; the caller then sees worker_stop. */
	while ((now = (int64_t)now_ns()) < due_ns) {
		int64_t wait_ns = due_ns - now < 1000000000 ?
			due_ns - now : 1000000000;
		struct timespec left = {
			.tv_sec = wait_ns / 1000000000,
			.tv_nsec = wait_ns % 1000000000,
		};

		/* Waiting for the media's clock is not a hang: keep the
		 * watchdog's progress clock moving, a second at a time. */
		ring_set_progress(w->ring, (uint64_t)now);
		if (worker_wait(w, -1, &left) < 0)
			return;
	}
}

void
worker_pkt_count(struct worker *w, const AVPacket *pkt)
{
	/* packets and payload_bytes are counted by ring_publish() */
	if (pkt->flags & AV_PKT_FLAG_CORRUPT)
		ring_count(w->ring, RING_CNT_CORRUPT_PACKETS, 1);
	/* The watchdog's clock counts in seconds; a clock read every
	 * PROGRESS_EVERY packets is plenty (input reads update it too). */
	if (++w->progress_pkts % PROGRESS_EVERY == 0)
		ring_set_progress(w->ring, now_ns());
}

static int
need_new_table(const struct worker *w)
{
	return w->fmt->nb_streams != w->nb_published;
}

int
worker_pkt_admit(struct worker *w, const AVPacket *pkt)
{
	int ret;

	if (need_new_table(w) && (ret = worker_tracks_publish(w)) < 0)
		return ret;
	if (pkt->stream_index < 0 ||
	    (unsigned)pkt->stream_index >= RING_MAX_TRACKS ||
	    (unsigned)pkt->stream_index >= w->fmt->nb_streams)
		return 0; /* no table entry to describe it: logged once */
	if (w->realtime)
		pace(w, pkt);
	return 1;
}

int
worker_pkt_publish(struct worker *w, const AVPacket *pkt)
{
	struct sd_pkt_meta m;
	struct ring_wr wr;
	unsigned nb_sd;
	uint32_t sd_len;
	uint16_t rf = 0;
	int ret;

	sd_len = side_data_len(w, pkt, &nb_sd);
	ret = worker_reserve(w, (uint32_t)sizeof(m) + sd_len,
			     (uint64_t)pkt->size, &wr);
	if (ret < 0)
		return ret;

	memset(&m, 0, sizeof(m));
	m.pts = pkt->pts; /* AV_NOPTS_VALUE == SD_NOPTS, kept as such */
	m.dts = pkt->dts;
	m.duration = pkt->duration;
	m.pos = pkt->pos;
	m.track = pkt->stream_index;
	m.flags = (uint32_t)pkt->flags & (SD_PKT_KEY | SD_PKT_CORRUPT |
					  SD_PKT_DISCARD | SD_PKT_TRUSTED |
					  SD_PKT_DISPOSABLE);
	m.nb_side_data = nb_sd;
	m.side_data_len = sd_len;
	m.track_gen = w->track_gen;
	memcpy(wr.meta, &m, sizeof(m));
	write_side_data((uint8_t *)wr.meta + sizeof(m), pkt, nb_sd);
	if (pkt->size > 0)
		memcpy(wr.payload, pkt->data, (size_t)pkt->size);

	if ((pkt->flags & AV_PKT_FLAG_KEY) &&
	    (w->sync_track < 0 || w->sync_track == pkt->stream_index))
		rf |= RING_RF_SYNC;
	return ring_publish(w->ring, &wr, RING_REC_PACKET, rf);
}
