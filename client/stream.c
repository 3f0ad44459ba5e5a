/*
 * stream.c - an attached stream: the ring mapping, its lifeline connection,
 * the validated copy of the track table, and packet reading.
 *
 * Just over 800 lines: attach, the reading path and the copy of the track
 * table stay together so that each value read from the worker's ring is
 * checked on the path that uses it (validate.c holds the record checks).
 * The wake-up side (stream fd, epoll) is what moves out next.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "internal.h"

_Static_assert(SHMDEMUX_MAX_SIDE_DATA == SD_MAX_SIDE_DATA, "side data cap");
_Static_assert(SHMDEMUX_NOPTS == SD_NOPTS, "nopts");

struct shmdemux_stream {
	shmdemux_conn *conn;        /* lifeline: closing it frees our slot */
	struct ring *ring;
	uint32_t id;
	unsigned flags;             /* SHMDEMUX_ATTACH_* */
	/* SHMDEMUX_ATTACH_POLL: the read end of the wake pipe the broker
	 * made, and the epoll fd handed out (the pipe, and the lifeline's
	 * hang-up); -1 otherwise */
	int wake_fd;
	int poll_fd;
	int live;                   /* RING_MODE_LIVE, fixed at attach */
	/* track table copy, validated; count 0 until one validates */
	void *tbuf;
	size_t tbuf_size;
	uint32_t gen;
	uint32_t count;
	uint8_t track_ok[RING_MAX_TRACKS]; /* 0: refused by valid_table() */
	uint64_t side_data_dropped;        /* entries valid_side_data() refused */
	/* the view handed out by the last read */
	struct ring_rd held;
	int holding;
	struct shmdemux_frame frame; /* the held record, if it is a frame */
	int frame_held;
	uint64_t lost_views;        /* views found overwritten (live) */
	/* Frames lent as AVFrames (lossless mode). Freed from any thread,
	 * so guarded by hold_lock; the object is freed by whichever of
	 * detach and the last unhold comes second. */
	pthread_mutex_t hold_lock;
	struct frame_hold {
		shmdemux_stream *s;
		uint64_t pos;       /* record position; UINT64_MAX: free */
	} holds[SHMDEMUX_MAX_HELD_FRAMES];
	unsigned nholds;
	int detached;
};

/* ---- track table ---- */

static const struct ring_tracks *
table(const shmdemux_stream *s)
{
	return s->tbuf;
}

/* Copy the table if its generation moved since our copy. */
static int
tracks_refresh(shmdemux_stream *s)
{
	struct ring_tracks *t = s->tbuf;
	int64_t g;
	int ret;

	if (ring_tracks_gen(s->ring) == s->gen)
		return 0;
	for (int tries = 0; tries < 8; tries++) {
		g = ring_tracks_copy(s->ring, s->tbuf, s->tbuf_size);
		if (g != -EAGAIN)
			break;
	}
	if (g < 0) {
		s->count = 0;
		return g == -EAGAIN ? -EAGAIN : SHMDEMUX_ECORRUPT;
	}
	/* Checked once here, on our private copy, which the worker cannot
	 * change afterwards (validate.c). */
	ret = valid_table(t, s->tbuf_size, s->track_ok);
	s->gen = (uint32_t)g;
	if (ret < 0) {
		s->count = 0;
		return ret;
	}
	s->count = t->count;
	return 0;
}

int
shmdemux_track_count(shmdemux_stream *s)
{
	tracks_refresh(s);
	return (int)s->count;
}

uint32_t
shmdemux_track_generation(shmdemux_stream *s)
{
	tracks_refresh(s);
	return s->gen;
}

const char *
shmdemux_format_name(shmdemux_stream *s)
{
	tracks_refresh(s);
	return s->count > 0 ? table(s)->format_name : "";
}

int
stream_track(shmdemux_stream *s, int i, const struct sd_track **kp,
	     const uint8_t **extradata)
{
	const struct ring_tracks *t;
	const struct sd_track *k;

	tracks_refresh(s);
	if (i < 0 || (uint32_t)i >= s->count)
		return -EINVAL;
	if (!s->track_ok[i])
		return SHMDEMUX_ECORRUPT;
	t = table(s);
	k = &t->tracks[i];
	*extradata = k->extradata_len == 0 ? NULL :
	    (const uint8_t *)(t + 1) + k->extradata_off;
	*kp = k;
	return 0;
}

int
shmdemux_get_track(shmdemux_stream *s, int i, struct shmdemux_track *o)
{
	const uint8_t *ed;
	const struct sd_track *k;
	int ret = stream_track(s, i, &k, &ed);

	if (ret < 0)
		return ret;
	memset(o, 0, sizeof(*o));
	o->index = k->index;
	o->id = k->id;
	o->media_type = k->media_type;
	o->codec_id = k->codec_id;
	o->codec_tag = k->codec_tag;
	o->format = k->format;
	o->profile = k->profile;
	o->level = k->level;
	o->bit_rate = k->bit_rate;
	o->bits_per_coded_sample = k->bits_per_coded_sample;
	o->bits_per_raw_sample = k->bits_per_raw_sample;
	o->width = k->width;
	o->height = k->height;
	o->sar_num = k->sar_num;
	o->sar_den = k->sar_den;
	o->field_order = k->field_order;
	o->color_range = k->color_range;
	o->color_primaries = k->color_primaries;
	o->color_trc = k->color_trc;
	o->color_space = k->color_space;
	o->chroma_location = k->chroma_location;
	o->video_delay = k->video_delay;
	o->sample_rate = k->sample_rate;
	o->ch_order = k->ch_order;
	o->channels = k->channels;
	o->ch_mask = k->ch_mask;
	o->block_align = k->block_align;
	o->frame_size = k->frame_size;
	o->initial_padding = k->initial_padding;
	o->trailing_padding = k->trailing_padding;
	o->seek_preroll = k->seek_preroll;
	o->tb_num = k->tb_num;
	o->tb_den = k->tb_den;
	o->avg_fr_num = k->avg_fr_num;
	o->avg_fr_den = k->avg_fr_den;
	o->r_fr_num = k->r_fr_num;
	o->r_fr_den = k->r_fr_den;
	o->st_sar_num = k->st_sar_num;
	o->st_sar_den = k->st_sar_den;
	o->start_time = k->start_time;
	o->duration = k->duration;
	o->nb_frames = k->nb_frames;
	o->disposition = k->disposition;
	o->extradata = ed;
	o->extradata_size = k->extradata_len;
	memcpy(o->codec_name, k->codec_name, sizeof(o->codec_name));
	memcpy(o->language, k->language, sizeof(o->language));
	memcpy(o->title, k->title, sizeof(o->title));
	return 0;
}

int
shmdemux_track_time_base(shmdemux_stream *s, int i, int *num, int *den)
{
	const uint8_t *ed;
	const struct sd_track *k;
	int ret = stream_track(s, i, &k, &ed);

	if (ret < 0)
		return ret;
	*num = k->tb_num;
	*den = k->tb_den;
	return 0;
}

/* ---- attach / detach ---- */

static int
send_attach(shmdemux_conn *c, uint32_t id, const char *name, int start,
	    unsigned flags, struct ctl_attached *out, int fds[CTL_MAX_FDS])
{
	struct ctl_attach req;
	union ctl_msg *reply;
	int nfds = 0, want, ret;

	memset(&req, 0, sizeof(req));
	if (name != NULL) {
		if (*name == '\0' ||
		    strlcpy(req.ref.name, name, sizeof(req.ref.name)) >=
		    sizeof(req.ref.name))
			return -EINVAL;
	} else {
		req.ref.stream_id = id;
	}
	req.start = (uint32_t)start;
	req.flags = (flags & SHMDEMUX_ATTACH_OBSERVER) ? CTL_ATTACH_OBSERVER : 0;
	if (flags & SHMDEMUX_ATTACH_POLL)
		req.flags |= CTL_ATTACH_WAKE;
	/* the data segment, our cursor page unless we observe, our wake
	 * pipe if we poll */
	want = (flags & SHMDEMUX_ATTACH_OBSERVER) ? 1 :
	    (flags & SHMDEMUX_ATTACH_POLL) ? 3 : 2;
	reply = malloc(CTL_MAX_MSG);
	if (reply == NULL)
		return -ENOMEM;
	ret = conn_request(c, &req, CTL_ATTACH, NULL, 0, reply, fds, &nfds);
	if (ret < 0)
		goto out;
	if (ret != CTL_ATTACHED || nfds != want) {
		ret = -EBADMSG;
		goto out;
	}
	*out = reply->attached;
	ret = 0;
out:
	if (ret < 0) {
		for (int i = 0; i < nfds; i++)
			close(fds[i]);
	}
	free(reply);
	return ret;
}

/* Room for our copy of the track table. Where the table lies in the
 * segment, ring_map() checked against the segment's real size. */
static int
alloc_table(shmdemux_stream *s)
{
	s->tbuf_size = ring_tracks_size(s->ring);
	if (s->tbuf_size < sizeof(struct ring_tracks))
		return SHMDEMUX_ECORRUPT;
	s->tbuf = calloc(1, s->tbuf_size);
	return s->tbuf == NULL ? -ENOMEM : 0;
}

/* What makes the data segment safe to map and read in place: its size
 * can never change (a shrink would turn our reads into SIGBUS), nobody can
 * write it any more but the producer and the broker, whose mappings
 * predate the seal (another consumer, even root through /proc/self/fd,
 * gets EPERM), and the seals themselves are final. The size is the one the
 * broker announced. A fake or broken broker handing anything else is
 * refused before the first mapping. */
static int
check_data_fd(int fd, uint64_t announced)
{
	const int need = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_FUTURE_WRITE |
		F_SEAL_SEAL;
	struct stat st;
	int seals = fcntl(fd, F_GET_SEALS);

	/* EINVAL: not a memfd (a regular file, a pipe) */
	if (seals < 0 || (seals & need) != need)
		return SHMDEMUX_EUNSEALED;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode) || st.st_size < 0 ||
	    (uint64_t)st.st_size != announced)
		return SHMDEMUX_EUNSEALED;
	return 0;
}

/* The read end of a pipe, as the broker makes it: anything else from a
 * fake broker is refused (a regular file or a socket would read as data
 * or block). Non-blocking on our side: we empty it without waiting. */
static int
check_wake_fd(int fd)
{
	struct stat st;
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISFIFO(st.st_mode) || (fl & O_ACCMODE) != O_RDONLY)
		return -EPROTO;
	return fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ? -errno : 0;
}

/* One fd for the caller's poll loop: an epoll set of the wake pipe
 * (readable when a record, the end or an eviction came after an empty
 * read) and of the lifeline, for its hang-up only (the broker is gone:
 * the next read says so). The pipe is the stream's from here on. */
static int
make_poll_fd(shmdemux_stream *s, int *wake)
{
	struct epoll_event ev = { .events = EPOLLIN };
	int ret = check_wake_fd(*wake);

	if (ret < 0)
		return ret;
	s->wake_fd = *wake;
	*wake = -1;
	if ((s->poll_fd = epoll_create1(EPOLL_CLOEXEC)) < 0)
		return -errno;
	ev.data.fd = s->wake_fd;
	if (epoll_ctl(s->poll_fd, EPOLL_CTL_ADD, s->wake_fd, &ev) < 0)
		return -errno;
	ev.events = EPOLLRDHUP;
	ev.data.fd = s->conn->fd;
	if (epoll_ctl(s->poll_fd, EPOLL_CTL_ADD, s->conn->fd, &ev) < 0)
		return -errno;
	return ring_set_wake_fd(s->ring, s->wake_fd);
}

static int
map_ring(shmdemux_stream *s, const struct ctl_attached *a,
	 int fds[CTL_MAX_FDS], int start)
{
	int ret;

	ret = check_data_fd(fds[0], a->data_size);
	if (ret < 0)
		return ret;
	ret = ring_map(&s->ring, fds[0], -1, RING_ROLE_CONSUMER);
	if (ret < 0)
		return err_from_ring(ret);
	ret = alloc_table(s);
	if (ret < 0)
		return ret;
	/* the mode ring_map() validated, which the ring itself goes by */
	s->live = ring_mode(s->ring) == RING_MODE_LIVE;
	if (s->flags & SHMDEMUX_ATTACH_OBSERVER)
		return 0;
	if (a->slot < 0 || fds[1] < 0)
		return -EBADMSG;
	ret = ring_attach(s->ring, fds[1], (enum ring_start)start);
	if (ret == 0 && ring_slot(s->ring) != a->slot)
		ret = -EPROTO;
	if (ret < 0)
		return err_from_ring(ret);
	if (s->flags & SHMDEMUX_ATTACH_POLL)
		return make_poll_fd(s, &fds[2]);
	return 0;
}

int
shmdemux_attach(shmdemux_conn *conn, uint32_t id, const char *name,
		int start, unsigned flags, shmdemux_stream **out)
{
	shmdemux_stream *s;
	struct ctl_attached a;
	int fds[CTL_MAX_FDS] = { -1, -1, -1 };
	int ret;

	*out = NULL;
	if (start < SHMDEMUX_START_OLDEST || start > SHMDEMUX_START_LIVE ||
	    (flags & ~(SHMDEMUX_ATTACH_OBSERVER | SHMDEMUX_ATTACH_TRACK_EVENTS |
		       SHMDEMUX_ATTACH_POLL)) ||
	    ((flags & SHMDEMUX_ATTACH_OBSERVER) &&
	     (flags & SHMDEMUX_ATTACH_POLL)))
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	s->flags = flags;
	s->wake_fd = -1;
	s->poll_fd = -1;
	pthread_mutex_init(&s->hold_lock, NULL);
	for (unsigned i = 0; i < SHMDEMUX_MAX_HELD_FRAMES; i++) {
		s->holds[i].s = s;
		s->holds[i].pos = UINT64_MAX;
	}
	conn->last_error[0] = '\0';
	ret = conn_open(&s->conn, conn->path);
	if (ret < 0)
		goto out;
	ret = send_attach(s->conn, id, name, start, flags, &a, fds);
	if (ret < 0) {
		memcpy(conn->last_error, s->conn->last_error,
		       sizeof(conn->last_error));
		goto out;
	}
	s->id = a.stream_id;
	ret = map_ring(s, &a, fds, start);
out:
	for (int i = 0; i < CTL_MAX_FDS; i++) {
		if (fds[i] >= 0)
			close(fds[i]);
	}
	if (ret < 0) {
		shmdemux_detach(&s);
		return ret;
	}
	*out = s;
	return 0;
}

static void
stream_free(shmdemux_stream *s)
{
	ring_unmap(&s->ring);
	if (s->poll_fd >= 0)
		close(s->poll_fd);
	if (s->wake_fd >= 0)
		close(s->wake_fd);
	shmdemux_disconnect(&s->conn);
	free(s->tbuf);
	pthread_mutex_destroy(&s->hold_lock);
	free(s);
}

/* With frames still lent, the mapping and the lifeline (our reader slot)
 * stay until the last is freed: the cursor stays at the oldest hold, so a
 * lossless producer cannot overwrite them, and nothing is unmapped under
 * them. The view we read last is released, so only the holds bind the
 * producer. */
void
shmdemux_detach(shmdemux_stream **sp)
{
	shmdemux_stream *s;
	unsigned n;

	if (sp == NULL || *sp == NULL)
		return;
	s = *sp;
	*sp = NULL;
	if (s->ring != NULL && !(s->flags & SHMDEMUX_ATTACH_OBSERVER))
		shmdemux_release(s);
	pthread_mutex_lock(&s->hold_lock);
	s->detached = 1;
	n = s->nholds;
	pthread_mutex_unlock(&s->hold_lock);
	if (n == 0)
		stream_free(s);
}

uint32_t
shmdemux_stream_id(const shmdemux_stream *s)
{
	return s->id;
}

int
shmdemux_stream_fd(shmdemux_stream *s)
{
	return s->poll_fd >= 0 ? s->poll_fd : -EINVAL;
}

/* ---- state ---- */

/* The code for an ended stream (ring_next() said so: the end fields are
 * final, ring_status() reads them). */
static int
end_code(const shmdemux_stream *s)
{
	struct ring_status rs;

	ring_status(s->ring, &rs);
	return shmdemux_end_code((int)rs.end_reason);
}

int
shmdemux_wait_running(shmdemux_stream *s, int timeout_ms)
{
	uint64_t deadline = now_ms() + (uint64_t)(timeout_ms < 0 ? 0 : timeout_ms);
	uint32_t st = ring_state(s->ring);

	for (;;) {
		int slice = RING_WAIT_SLICE_MS;
		uint64_t now;

		if (st >= RING_STATE_RUNNING)
			return (int)(st > RING_STATE_ENDED ? RING_STATE_ENDED : st);
		if (conn_broker_gone(s->conn))
			return SHMDEMUX_EBROKER;
		now = now_ms();
		if (timeout_ms >= 0 && now >= deadline)
			return -ETIMEDOUT;
		if (timeout_ms >= 0 && deadline - now < RING_WAIT_SLICE_MS)
			slice = (int)(deadline - now);
		/* No wake-up is guaranteed (ring_wait_state): the wait is
		 * sliced, and the state is checked again after each slice. */
		st = ring_wait_state(s->ring, RING_STATE_RUNNING, slice);
	}
}

int
shmdemux_status(shmdemux_stream *s, struct shmdemux_status *st)
{
	struct ring_status rs;

	ring_status(s->ring, &rs);
	memset(st, 0, sizeof(*st));
	st->state = (int)rs.state;
	st->worker_pid = rs.worker_pid;
	st->packets = rs.packets;
	st->bytes = rs.payload_bytes;
	st->overruns = ((s->flags & SHMDEMUX_ATTACH_OBSERVER) ? 0 :
	    ring_overruns(s->ring)) + s->lost_views;
	st->track_gen = s->gen;
	st->frames = rs.frames;
	st->decode_errors = rs.decode_errors;
	st->frames_pooled = rs.frames_pooled;
	st->frames_copied = rs.frames_copied;
	st->side_data_dropped = s->side_data_dropped;
	st->exit_code = -1;
	st->syscall = -1;
	if (rs.state != RING_STATE_ENDED)
		return 0;
	st->end_reason = (int)rs.end_reason;
	st->code = shmdemux_end_code(st->end_reason);
	st->exit_code = rs.end_exit_code;
	st->signal = rs.end_signal;
	st->averror = rs.end_averror;
	st->syscall = rs.end_syscall;
	/* the worker can write the header too: a string like the others */
	_Static_assert(sizeof(st->message) <= sizeof(rs.end_msg), "message");
	memcpy(st->message, rs.end_msg, sizeof(st->message) - 1);
	st->message[sizeof(st->message) - 1] = '\0';
	valid_string(st->message, sizeof(st->message));
	return 0;
}

/* ---- reading ---- */

/* Framing first (any entry past the meta: the record is corrupt), then
 * meaning: an entry of a type or size no demuxer emits is dropped and
 * counted (valid_side_data()). */
static int
parse_side_data(shmdemux_stream *s, struct shmdemux_packet *p,
		const uint8_t *sd, uint32_t len, uint32_t nb)
{
	uint64_t off = 0, dropped = 0;
	unsigned kept = 0;

	for (uint32_t i = 0; i < nb; i++) {
		struct sd_side_data e;

		if (len - off < sizeof(e))
			return SHMDEMUX_ECORRUPT;
		memcpy(&e, sd + off, sizeof(e));
		off += sizeof(e);
		if (e.size > len - off)
			return SHMDEMUX_ECORRUPT;
		if (valid_side_data(e.type, sd + off, e.size)) {
			p->side_data[kept].type = e.type;
			p->side_data[kept].size = e.size;
			p->side_data[kept].data = sd + off;
			kept++;
		} else {
			dropped++;
		}
		off += ((uint64_t)e.size + 7u) & ~UINT64_C(7);
		if (off > len)
			off = len; /* last entry's padding may be cut */
	}
	p->nb_side_data = kept;
	s->side_data_dropped += dropped;
	return 0;
}

static int
parse_packet(shmdemux_stream *s, const struct ring_rd *v,
	     struct shmdemux_packet *p)
{
	struct sd_pkt_meta m;

	if (v->meta_len < sizeof(m) || v->meta == NULL)
		return SHMDEMUX_ECORRUPT;
	memcpy(&m, v->meta, sizeof(m));
	if (m.nb_side_data > SD_MAX_SIDE_DATA ||
	    m.side_data_len != v->meta_len - sizeof(m))
		return SHMDEMUX_ECORRUPT;
	if (m.track_gen != s->gen || m.track < 0 ||
	    (uint32_t)m.track >= s->count)
		tracks_refresh(s);
	if (m.track < 0 || (uint32_t)m.track >= s->count)
		return SHMDEMUX_ECORRUPT;
	memset(p, 0, offsetof(struct shmdemux_packet, side_data));
	p->data = v->payload;
	p->size = (size_t)v->payload_len;
	p->track = m.track;
	p->pts = m.pts;
	p->dts = m.dts;
	p->duration = m.duration;
	p->pos = m.pos;
	p->flags = valid_pkt_flags(m.flags);
	p->track_gen = m.track_gen;
	p->seq = v->seq;
	return parse_side_data(s, p, (const uint8_t *)v->meta + sizeof(m),
			       m.side_data_len, m.nb_side_data);
}

static int
parse_frame(shmdemux_stream *s, const struct ring_rd *v)
{
	struct shmdemux_frame *f = &s->frame;
	uint64_t pool_size;
	const uint8_t *pool = ring_pool(s->ring, &pool_size);
	/* Live consumers can be lapped: the worker never pools there, and a
	 * pooled record in a live ring is treated as corrupt. */
	int ret = frame_parse(v, s->live ? NULL : pool, pool_size, f);

	if (ret < 0)
		return ret;
	if (f->track_gen != s->gen || f->track < 0 ||
	    (uint32_t)f->track >= s->count)
		tracks_refresh(s);
	if (f->track < 0 || (uint32_t)f->track >= s->count ||
	    !s->track_ok[f->track] ||
	    table(s)->tracks[f->track].media_type != f->media_type)
		return SHMDEMUX_ECORRUPT;
	return 0;
}

int
shmdemux_release(shmdemux_stream *s)
{
	int ret = 0;

	if (!s->holding)
		return 0;
	if (s->live && ring_view_valid(s->ring, &s->held) < 0) {
		s->lost_views++;
		ret = SHMDEMUX_EOVERRUN;
	}
	ring_release(s->ring, &s->held);
	s->holding = 0;
	s->frame_held = 0;
	return ret;
}

/* take_record()'s "read on": distinct from every code it returns
 * (SHMDEMUX_TRACKS_CHANGED is 1). */
#define TAKE_NEXT INT_MAX

/* Handle one record from ring_next(): 0 with *p filled and the view held,
 * TAKE_NEXT to go on reading, or a code for the caller. */
static int
take_record(shmdemux_stream *s, struct ring_rd *v, struct shmdemux_packet *p)
{
	int ret;

	if (v->type == RING_REC_TRACKS) {
		ring_release(s->ring, v);
		tracks_refresh(s);
		return (s->flags & SHMDEMUX_ATTACH_TRACK_EVENTS) ?
		    SHMDEMUX_TRACKS_CHANGED : TAKE_NEXT;
	}
	if (v->type == RING_REC_FRAME) {
		ret = parse_frame(s, v);
	} else if (v->type != RING_REC_PACKET) {
		ring_release(s->ring, v);
		return TAKE_NEXT;
	} else {
		ret = parse_packet(s, v, p);
	}
	/* Live mode: what was parsed may have been overwritten meanwhile;
	 * only a view still valid after parsing is handed out. */
	if (s->live && ring_view_valid(s->ring, v) < 0) {
		s->lost_views++;
		ret = SHMDEMUX_EOVERRUN;
	}
	if (ret < 0) {
		ring_release(s->ring, v);
		return ret;
	}
	s->held = *v;
	s->holding = 1;
	s->frame_held = v->type == RING_REC_FRAME;
	return s->frame_held ? SHMDEMUX_FRAME : 0;
}

const struct shmdemux_frame *
stream_frame_view(shmdemux_stream *s)
{
	return s->holding && s->frame_held ? &s->frame : NULL;
}

int
stream_is_live(const shmdemux_stream *s)
{
	return s->live;
}

int
stream_view_valid(const shmdemux_stream *s)
{
	return s->holding ? ring_view_valid(s->ring, &s->held) : -ENOENT;
}

/* The oldest held position, UINT64_MAX for none. Under hold_lock. */
static uint64_t
hold_floor(const shmdemux_stream *s)
{
	uint64_t m = UINT64_MAX;

	for (unsigned i = 0; i < SHMDEMUX_MAX_HELD_FRAMES; i++)
		if (s->holds[i].pos < m)
			m = s->holds[i].pos;
	return m;
}

/* Runs on the reading thread while the view is current: the ring's
 * cursor is still at the record, so the floor set here is never below
 * what was published. */
int
stream_hold(shmdemux_stream *s, struct frame_hold **out)
{
	struct frame_hold *h = NULL;

	if (stream_frame_view(s) == NULL)
		return -ENOENT;
	pthread_mutex_lock(&s->hold_lock);
	for (unsigned i = 0; i < SHMDEMUX_MAX_HELD_FRAMES && h == NULL; i++)
		if (s->holds[i].pos == UINT64_MAX)
			h = &s->holds[i];
	if (h != NULL) {
		h->pos = s->held.pos;
		s->nholds++;
		ring_set_floor(s->ring, hold_floor(s));
	}
	pthread_mutex_unlock(&s->hold_lock);
	*out = h;
	return h != NULL ? 0 : -ENOBUFS;
}

/* Any thread. The floor is set under hold_lock, so floors reach the ring
 * in the order the table changed. */
void
stream_unhold(struct frame_hold *h)
{
	shmdemux_stream *s = h->s;
	int last;

	pthread_mutex_lock(&s->hold_lock);
	h->pos = UINT64_MAX;
	s->nholds--;
	last = s->detached && s->nholds == 0;
	if (!last)
		ring_set_floor(s->ring, hold_floor(s));
	pthread_mutex_unlock(&s->hold_lock);
	if (last)
		stream_free(s);
}

int
shmdemux_get_frame(shmdemux_stream *s, struct shmdemux_frame *out)
{
	if (!s->holding || !s->frame_held)
		return -ENOENT;
	*out = s->frame;
	return 0;
}

/* The first attempt does not wait, so a record that is already there costs
 * no clock read and no broker check. Only once the ring is empty is the
 * deadline computed and the wait done in slices; after each slice (and on
 * every empty poll with timeout 0) the lifeline tells whether the broker is
 * still there to end the stream. */
int
shmdemux_read(shmdemux_stream *s, struct shmdemux_packet *p, int timeout_ms)
{
	uint64_t deadline = 0, now;
	struct ring_rd v;
	int ret, slice = 0;

	if (s->flags & SHMDEMUX_ATTACH_OBSERVER)
		return -EINVAL;
	shmdemux_release(s);
	for (;;) {
		ret = ring_next(s->ring, &v, slice);
		if (ret == 0) {
			ret = take_record(s, &v, p);
			if (ret == TAKE_NEXT)
				continue;
			return ret;
		}
		if (ret == -EPIPE)
			return end_code(s);
		if (ret != -EAGAIN && ret != -ETIMEDOUT && ret != -EINTR)
			return err_from_ring(ret);
		/* Nothing to read: everything published was drained, so a
		 * dead broker now means nobody will ever end this stream. */
		if ((slice > 0 || timeout_ms == 0) &&
		    conn_broker_gone(s->conn))
			return SHMDEMUX_EBROKER;
		if (timeout_ms == 0)
			return -EAGAIN;
		slice = RING_WAIT_SLICE_MS;
		if (timeout_ms < 0)
			continue;
		now = now_ms();
		if (deadline == 0)
			deadline = now + (uint64_t)timeout_ms;
		else if (now >= deadline)
			return -EAGAIN;
		if (deadline - now < (uint64_t)slice)
			slice = (int)(deadline - now);
	}
}

int64_t
shmdemux_packet_copy(const struct shmdemux_packet *p, void *buf, size_t cap)
{
	if (p->size > cap)
		return -ENOSPC;
	if (p->size > 0)
		memcpy(buf, p->data, p->size);
	return (int64_t)p->size;
}
