/*
 * stream.c - the stream table: one input, one worker, one ring per stream.
 *
 * A stream is created by OPEN (stream_open.c), listed until CLOSE, and
 * freed when it is neither listed nor referenced by an attached
 * connection. Here: ids and names, lookup, LIST records, references and
 * the consumers' slots. LIST reports the broker's own copy of the end
 * status (stream_life.c), never the worker-writable header fields.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "ended.h"
#include "log.h"
#include "procstat.h"
#include "pump.h"
#include "ring_admin.h"
#include "stream_internal.h"
#include "wlog.h"

struct stream_list streams = TAILQ_HEAD_INITIALIZER(streams);
static unsigned nstreams;
static uint32_t next_id = 1;

static void stream_unref(struct stream *s);

/* ---- logging ---- */

void
stream_log(const struct stream *s, enum log_level lvl, int err,
	   const char *fmt, ...)
{
	char text[1024];
	va_list ap;

	if (!log_enabled(lvl))
		return;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (s->name[0] != '\0')
		log_errno(lvl, err, "stream %" PRIu32 " (%s): %s", s->id,
			  s->name, text);
	else
		log_errno(lvl, err, "stream %" PRIu32 ": %s", s->id, text);
}

/* ---- new, in the table, freed ---- */

static void
fill_labels(struct stream *s, const struct ctl_open *req)
{
	snprintf(s->name, sizeof(s->name), "%s", req->name);
	if (req->path[0] != '\0')
		snprintf(s->source, sizeof(s->source), "%.*s",
			 (int)sizeof(s->source) - 1, req->path);
	else if (req->source == CTL_SRC_PUSH)
		snprintf(s->source, sizeof(s->source), "push");
	else
		snprintf(s->source, sizeof(s->source), "fd");
}

void
stream_free(struct stream *s)
{
	stream_stop_start_watch(s);
	wlog_finish(&s->log);
	stream_watchdog_stop(s);
	pump_free(&s->pump);
	stream_release_push(s);
	stream_ring_close(s);
	loop_defer_free(s);
}

struct stream *
stream_new(const struct ctl_open *req)
{
	struct stream *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	s->id = next_id++;
	s->data_fd = s->ro_data_fd = s->in_peek_fd = -1;
	s->admin_fd = s->wadmin_fd = -1;
	s->push_hold = -1;
	ev_init(&s->admin_ev);
	ev_init(&s->pid_ev);
	ev_init(&s->timer_ev);
	ev_init(&s->wd_ev);
	ev_init(&s->ready_ev);
	ev_init(&s->start_ev);
	s->mode = req->mode;
	s->opened_ms = now_ms();
	fill_labels(s, req);
	return s;
}

void
stream_list_add(struct stream *s)
{
	s->listed = 1;
	s->refs = 1;
	TAILQ_INSERT_TAIL(&streams, s, entry);
	nstreams++;
}

/* ---- lookups, LIST ---- */

struct stream *
stream_find_name(const char *name)
{
	struct stream *s;

	TAILQ_FOREACH(s, &streams, entry)
		if (s->listed && strcmp(s->name, name) == 0)
			return s;
	return NULL;
}

uint32_t
stream_id(const struct stream *s)
{
	return s->id;
}

struct stream *
stream_find(const struct ctl_ref *ref)
{
	struct stream *s;

	if (ref->name[0] != '\0')
		return stream_find_name(ref->name);
	TAILQ_FOREACH(s, &streams, entry)
		if (s->listed && s->id == ref->stream_id)
			return s;
	return NULL;
}

unsigned
streams_readers_awaited(void)
{
	struct stream *s;
	unsigned n = 0;

	TAILQ_FOREACH(s, &streams, entry)
		if (!s->released && s->attached_ever < s->wait_consumers)
			n += s->wait_consumers - s->attached_ever;
	return n;
}

int
stream_is_worker(pid_t pid)
{
	struct stream *s;

	TAILQ_FOREACH(s, &streams, entry)
		if (s->pid == pid)
			return 1;
	return 0;
}

struct stream *
stream_next(struct stream *prev)
{
	struct stream *s = prev == NULL ? TAILQ_FIRST(&streams) :
		TAILQ_NEXT(prev, entry);

	while (s != NULL && !s->listed)
		s = TAILQ_NEXT(s, entry);
	return s;
}

/* Uptime stops at the end; the end's age counts from it. */
void
stream_times(const struct stream *s, struct ctl_stream_info *info)
{
	uint64_t now = now_ms();

	info->uptime_ms = (s->ended ? s->ended_ms : now) - s->opened_ms;
	info->ended_ago_ms = s->ended ? now - s->ended_ms : 0;
}

/* Track count from the worker-written table, bounds-checked against the
 * segment size the broker itself chose. */
static uint32_t
track_count(const struct stream *s)
{
	const struct ring_hdr *h = ring_hdr(s->ring);
	uint64_t off = *(const volatile uint64_t *)&h->tracks_off;
	const struct ring_tracks *t;
	uint32_t n;

	if (off < RING_HDR_SIZE || off > s->data_seg_size ||
	    s->data_seg_size - off < sizeof(struct ring_tracks) ||
	    off % 8 != 0)
		return 0;
	t = (const struct ring_tracks *)((const char *)h + off);
	n = *(const volatile uint32_t *)&t->count;
	return n > RING_MAX_TRACKS ? RING_MAX_TRACKS : n;
}

void
stream_info(struct stream *s, struct ctl_stream_info *info)
{
	struct procstat ps;
	const struct ring_hdr *h;
	struct ring_stats st;
	uint32_t state;

	if (s->released) {
		stream_released_info(s, info);
		return;
	}
	h = ring_hdr(s->ring);
	memset(info, 0, sizeof(*info));
	ctl_hdr_init(&info->hdr, CTL_STREAM_INFO, 0);
	ring_stats(s->ring, &st);
	state = atomic_load_explicit(&h->state, memory_order_acquire);
	if (s->ended)
		state = RING_STATE_ENDED;
	else if (state >= RING_STATE_ENDED)
		state = RING_STATE_RUNNING; /* only the broker ends a stream */
	info->stream_id = s->id;
	info->state = state;
	info->end_reason = s->ended ? s->end.reason : SD_END_NONE;
	info->end_exit_code = s->ended ? s->end.exit_code : -1;
	info->end_signal = s->ended ? s->end.sig : 0;
	info->worker_pid = (int32_t)s->pid;
	info->mode = s->mode;
	info->tracks = track_count(s);
	info->consumers = s->consumers;
	info->fill_permille = st.fill_permille > 1000 ? 1000 : st.fill_permille;
	info->packets = atomic_load_explicit(&h->packets, memory_order_relaxed);
	info->bytes = atomic_load_explicit(&h->payload_bytes,
					   memory_order_relaxed);
	if (s->pumped)
		info->input_bytes = s->pump != NULL ? pump_bytes(s->pump) :
			s->input_bytes;
	else
		info->input_bytes = atomic_load_explicit(&h->input_bytes,
							 memory_order_relaxed);
	info->drops = st.overruns + st.evictions;
	info->frames = atomic_load_explicit(&h->frames, memory_order_relaxed);
	info->lag_bytes = st.lag_bytes;
	info->ring_size = s->ring_size;
	if (s->pid > 0 && procstat_read(s->pid, &ps) == 0) {
		s->cpu_ms = ps.cpu_ms;
		info->worker_rss = ps.rss_bytes;
	}
	info->worker_cpu_ms = s->cpu_ms;
	stream_times(s, info);
	snprintf(info->name, sizeof(info->name), "%s", s->name);
	snprintf(info->source, sizeof(info->source), "%s", s->source);
	if (s->ended)
		snprintf(info->end_msg, sizeof(info->end_msg), "%s",
			 s->end.msg);
}

/* Out of the table; an ended stream's last report goes to the history
 * (ended.h). */
void
stream_unlist(struct stream *s, const char *why)
{
	struct ctl_stream_info info;

	if (!s->listed)
		return;
	if (s->ended) {
		stream_info(s, &info);
		ended_add(&info, s->ended_ms);
	}
	s->listed = 0;
	TAILQ_REMOVE(&streams, s, entry);
	nstreams--;
	stream_log(s, LOG_LVL_INFO, 0, "%s", why);
	stream_unref(s);
}

/* ---- consumers ---- */

/* DELs the admin channel could not take yet: sent once it is writable.
 * A worker gone for good shows as an error: ring_admin_flush() then drops
 * them (nobody left to tell). */
static void
on_admin(struct ev *ev, uint32_t events)
{
	struct stream *s = ev->arg;

	(void)events;
	if (ring_admin_flush(s->ring) == 0) {
		ev_del(&s->admin_ev);
		s->admin_full_ms = 0;
		/* attaches that waited for room */
		control_attach_resume(s);
	}
}

static void
watch_admin(struct stream *s)
{
	int ret;

	if (s->admin_ev.fd >= 0)
		return;
	s->admin_full_ms = now_ms();
	ret = ev_add(&s->admin_ev, s->admin_fd, EPOLLOUT, on_admin, s);
	if (ret < 0)
		stream_log(s, LOG_LVL_WARN, ret, "admin channel");
}

int
stream_attach(struct stream *s, pid_t pid, int observer, int wake_fd,
	      int *page_fd)
{
	int slot = -1;

	*page_fd = -1;
	if (s->released)
		return -ENODATA;
	if (!observer) {
		slot = ring_slot_alloc_wake(s->ring, pid, wake_fd, page_fd);
		if (slot == -EAGAIN) {
			/* DELs and this ADD wait for a worker slow to take
			 * its messages: the DELs are kept, the attach waits
			 * for room (stream_attach_ready), up to a bound. */
			watch_admin(s);
			stream_log(s, LOG_LVL_DEBUG, 0, "the worker's admin "
				   "channel is full; attaches wait");
		}
		if (slot < 0)
			return slot;
		s->consumers++;
		s->attached_ever++;
	}
	s->refs++;
	return slot;
}

void
stream_detach(struct stream *s, int slot)
{
	if (slot >= 0) {
		if (ring_slot_free(s->ring, (unsigned)slot) > 0)
			watch_admin(s);
		s->consumers--;
	}
	stream_unref(s);
}

int
stream_consumer_fds(const struct stream *s, int *data_fd, uint64_t *data_size)
{
	if (!s->sealed)
		return -EAGAIN; /* never an unsealed segment */
	*data_fd = s->ro_data_fd;
	*data_size = s->data_seg_size;
	return 0;
}

static void
stream_unref(struct stream *s)
{
	if (--s->refs == 0)
		stream_free(s);
	else
		stream_release_check(s);
}

void
stream_hold(struct stream *s)
{
	s->refs++;
}

void
stream_put(struct stream *s)
{
	stream_unref(s);
}

/* ---- table-wide ---- */

unsigned
stream_count(void)
{
	return nstreams;
}
