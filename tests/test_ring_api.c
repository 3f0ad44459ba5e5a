/*
 * test_ring_api.c - single-process checks of the ring API: header
 * validation, start positions, end status (-EPIPE), timeouts, -EMSGSIZE,
 * consumers adopted and dropped over the admin channel (and every
 * malformed admin message dropped with its fds), pad records at
 * the lap end, the track table
 * seqlock, that a consumer's data mapping is really read-only, and the
 * frame pool area (geometry checks, ring_pool) with ring_reclaim(), and
 * early wraps (a lossless producer going back to the start of the area
 * once its consumers have released it).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ring_testlib.h"

static void
put(struct ring *p, uint64_t seq, uint64_t len, uint16_t flags)
{
	struct ring_wr w;
	struct tmeta *m;
	int ret;

	ret = ring_reserve(p, sizeof(*m), len, &w, 0);
	TCHECK(ret == 0, "reserve: %s", strerror(-ret));
	m = w.meta;
	m->seq = seq;
	m->len = len;
	m->sum = tfill(w.payload, len, seq);
	TCHECK(ring_publish(p, &w, RING_REC_PACKET, flags) == 0, "publish");
}

static uint64_t
get(struct ring *c, int timeout_ms)
{
	struct ring_rd v;
	struct tmeta m;
	int ret;

	ret = ring_next(c, &v, timeout_ms);
	TCHECK(ret == 0, "next: %s", strerror(-ret));
	TCHECK(v.meta_len == sizeof(m), "meta_len");
	memcpy(&m, v.meta, sizeof(m));
	TCHECK(m.seq == v.seq && m.len == v.payload_len &&
	       tsum(v.payload, v.payload_len) == m.sum, "record %llu",
	       (unsigned long long)v.seq);
	ring_release(c, &v);
	return v.seq;
}

static struct ring *
consumer_at(struct tring *t, enum ring_start start)
{
	return tring_consumer(t, start, NULL);
}

static void
test_starts_and_end(void)
{
	struct ring_params rp = { .data_size = 64u << 10, .max_consumers = 4,
				  .mode = RING_MODE_LOSSLESS };
	struct tring t;
	struct ring *p, *c0, *c1, *c2;
	struct ring_rd v;
	uint64_t i;

	TCHECK(tring_create(&t, &rp) == 0, "create");
	TCHECK(tring_map_producer(&t, &p) == 0, "map producer");
	for (i = 0; i < 10; i++)
		put(p, i, 100, i == 0 || i == 5 ? RING_RF_SYNC : 0);
	c0 = consumer_at(&t, RING_START_OLDEST);
	c1 = consumer_at(&t, RING_START_SYNC);
	c2 = consumer_at(&t, RING_START_LIVE);
	TCHECK(get(c0, 0) == 0, "oldest starts at 0");
	TCHECK(get(c1, 0) == 5, "sync starts at the newest sync record");
	TCHECK(ring_next(c2, &v, 0) == -EAGAIN, "live: nothing yet");
	TCHECK(ring_next(c2, &v, 30) == -EAGAIN, "live: timeout");
	put(p, 10, 100, 0);
	TCHECK(get(c2, 0) == 10, "live gets the next record");
	for (i = 1; i <= 10; i++)
		TCHECK(get(c0, 0) == i, "oldest in order");
	/* the wait slice loop notices the end while blocked */
	ring_set_worker_status(p, SD_END_EOF, 0, "done");
	ring_set_end(t.admin, SD_END_EOF, 0, 0, 0, NULL);
	TCHECK(ring_next(c0, &v, -1) == -EPIPE, "end");
	for (i = 6; i <= 10; i++)
		TCHECK(get(c1, 0) == i, "records before the end still read");
	TCHECK(ring_next(c1, &v, 0) == -EPIPE, "end after the last record");
	TCHECK(ring_hdr(c1)->end_reason == SD_END_EOF &&
	       strcmp(ring_hdr(c1)->end_msg, "done") == 0, "status");
	/* a freed slot: the producer drops the consumer at its next check
	 * of the admin channel */
	TCHECK(ring_admin_poll(p) == 0 && ring_adopted(p) == 3, "adopted %u",
	       ring_adopted(p));
	TCHECK(ring_slot_free(t.admin, (unsigned)ring_slot(c2)) == 0, "DEL");
	TCHECK(ring_reclaim(p, &i) == 0 && ring_adopted(p) == 2, "dropped");
	ring_unmap(&c0);
	ring_unmap(&c1);
	ring_unmap(&c2);
	ring_unmap(&p);
	tring_destroy(&t);
}

static void
test_wrap_and_limits(void)
{
	struct ring_params rp = { .data_size = 64u << 10, .max_consumers = 2,
				  .mode = RING_MODE_LOSSLESS };
	struct tring t;
	struct ring *p, *c;
	struct ring_wr w;
	uint64_t i, rng = 99, seq = 0, got = 0;
	int ret;

	TCHECK(tring_create(&t, &rp) == 0, "create");
	TCHECK(tring_map_producer(&t, &p) == 0, "map producer");
	c = consumer_at(&t, RING_START_OLDEST);
	TCHECK(ring_reserve(p, 0, 64u << 10, &w, 0) == -EMSGSIZE, "EMSGSIZE");
	/* odd sizes over many laps: pads at every lap end */
	for (i = 0; i < 20000; i++) {
		uint64_t len = tlogsize(&rng, 1, 20000);

		ret = ring_reserve(p, sizeof(struct tmeta), len, &w, 0);
		if (ret == -EAGAIN) {
			while (got < seq)
				TCHECK(get(c, 0) == got++, "order");
			ret = ring_reserve(p, sizeof(struct tmeta), len, &w, 0);
		}
		TCHECK(ret == 0, "reserve: %s", strerror(-ret));
		((struct tmeta *)w.meta)->seq = seq;
		((struct tmeta *)w.meta)->len = len;
		((struct tmeta *)w.meta)->sum = tfill(w.payload, len, seq);
		TCHECK(ring_publish(p, &w, RING_REC_PACKET, 0) == 0, "publish");
		seq++;
	}
	/* a full ring: a bounded wait then -ETIMEDOUT */
	do {
		ret = ring_reserve(p, 0, 30000, &w, 0);
		if (ret == 0)
			ring_publish(p, &w, RING_REC_PACKET, 0);
	} while (ret == 0);
	TCHECK(ret == -EAGAIN, "full: %d", ret);
	TCHECK(ring_reserve(p, 0, 30000, &w, 50) == -ETIMEDOUT, "timeout");
	ring_unmap(&c);
	ring_unmap(&p);
	tring_destroy(&t);
}

static sigjmp_buf jb;

static void
on_segv(int sig)
{
	siglongjmp(jb, sig);
}

static void
test_readonly_and_tracks(void)
{
	struct ring_params rp = { .data_size = 64u << 10, .max_consumers = 1,
				  .mode = RING_MODE_LIVE };
	static uint8_t copy[RING_TRACKS_SIZE];
	struct tring t;
	struct ring *p, *c;
	struct ring_tracks *tr;
	volatile struct ring_hdr *h;
	int64_t g;

	TCHECK(tring_create(&t, &rp) == 0, "create");
	TCHECK(tring_map_producer(&t, &p) == 0, "map producer");
	TCHECK(tring_map_consumer(&t, &c) == 0, "map consumer");
	TCHECK(ring_tracks_size(c) == RING_TRACKS_SIZE, "tracks size");
	tr = ring_tracks_begin(p);
	tr->count = 2;
	strcpy(tr->format_name, "matroska");
	tr->tracks[1].codec_id = 27;
	TCHECK(ring_tracks_end(p) == 2, "gen");
	g = ring_tracks_copy(c, copy, sizeof(copy));
	TCHECK(g == 2, "copy gen %lld", (long long)g);
	tr = (struct ring_tracks *)copy;
	TCHECK(tr->count == 2 && tr->tracks[1].codec_id == 27 &&
	       strcmp(tr->format_name, "matroska") == 0, "copy contents");
	/* a write through the consumer's mapping faults */
	h = (volatile struct ring_hdr *)ring_hdr(c);
	signal(SIGSEGV, on_segv);
	if (sigsetjmp(jb, 1) == 0) {
		h->end_reason = 1;
		TCHECK(0, "consumer could write the data segment");
	}
	signal(SIGSEGV, SIG_DFL);
	ring_unmap(&c);
	ring_unmap(&p);
	tring_destroy(&t);
}

static void
test_bad_headers(void)
{
	struct ring_params rp = { .data_size = 64u << 10, .max_consumers = 1 };
	struct tring t;
	struct ring *c;
	struct ring_hdr *h;
	int fd;

	rp.max_consumers = 0;
	TCHECK(ring_data_seg_size(&rp) == 0, "bad params");
	rp.max_consumers = 1;
	TCHECK(tring_create(&t, &rp) == 0, "create");
	h = (struct ring_hdr *)ring_hdr(t.admin);
	h->abi_version = RING_ABI_VERSION + 1;
	TCHECK(tring_map_consumer(&t, &c) == -EPROTO && c == NULL, "abi");
	h->abi_version = RING_ABI_VERSION;
	h->data_size += 4096;
	TCHECK(tring_map_consumer(&t, &c) == -EPROTO, "size vs fstat");
	h->data_size -= 4096;
	TCHECK(tring_map_consumer(&t, &c) == 0, "restored");
	ring_unmap(&c);
	/* sizes are sealed: nobody can shrink a mapped segment or page */
	TCHECK(ftruncate(t.dfd, 0) < 0 && errno == EPERM, "data sealed");
	TCHECK(tring_add(&t, &fd) >= 0, "page");
	TCHECK(ftruncate(fd, 0) < 0 && errno == EPERM &&
	       ftruncate(fd, 2 * RING_PAGE_SIZE) < 0 && errno == EPERM &&
	       fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE) < 0, "page sealed");
	close(fd);
	tring_destroy(&t);
}

/* The frame pool: rounded to pages, validated against the header and the
 * object's size, mapped read-only like the rest; ring_reclaim() moves the
 * lossless tail up to what the cursors allow without waiting, and no
 * further, and never before wait_consumers attached. */
static void
test_pool_and_reclaim(void)
{
	struct ring_params rp = { .data_size = 64u << 10, .max_consumers = 2,
				  .pool_size = 8193, .wait_consumers = 1 };
	struct tring t;
	struct ring *p, *c;
	struct ring_hdr *h;
	uint64_t size, tail, end1;
	const uint8_t *pool;

	TCHECK(ring_data_seg_size(&rp) ==
	       RING_HDR_SIZE + RING_TRACKS_SIZE + (64u << 10) + 12288,
	       "pool rounded to pages");
	TCHECK(tring_create(&t, &rp) == 0, "create");
	h = (struct ring_hdr *)ring_hdr(t.admin);
	TCHECK(h->pool_size == 12288 && h->pool_off == h->data_off +
	       h->data_size, "pool geometry");
	h->pool_off += 4096;
	TCHECK(tring_map_consumer(&t, &c) == -EPROTO, "pool_off");
	h->pool_off -= 4096;
	h->pool_size += 4096;
	TCHECK(tring_map_consumer(&t, &c) == -EPROTO, "pool_size vs fstat");
	h->pool_size -= 4096;
	TCHECK(tring_map_producer(&t, &p) == 0, "producer");
	pool = ring_pool(p, &size);
	TCHECK(pool != NULL && size == 12288 &&
	       pool == (const uint8_t *)ring_hdr(p) + h->pool_off, "ring_pool");
	/* nobody attached yet: the wait_consumers hold keeps everything */
	put(p, 0, 100, 0);
	TCHECK(ring_reclaim(p, &tail) == 0 && tail == 0, "held");
	c = consumer_at(&t, RING_START_OLDEST);
	end1 = ring_hdr(p)->head;
	put(p, 1, 100, 0);
	put(p, 2, 100, 0);
	/* attached but not read: nothing to reclaim */
	TCHECK(ring_reclaim(p, &tail) == 0 && tail == 0, "cursor at 0");
	TCHECK(get(c, 0) == 0, "read 0");
	TCHECK(ring_reclaim(p, &tail) == 0 && tail == end1 &&
	       ring_prod_tail(p) == end1 && ring_hdr(p)->tail == end1,
	       "reclaimed up to the cursor");
	TCHECK(get(c, 0) == 1 && get(c, 0) == 2, "read on");
	TCHECK(ring_reclaim(p, &tail) == 0 && tail == ring_hdr(p)->head,
	       "all reclaimed");
	ring_unmap(&c);
	ring_unmap(&p);
	tring_destroy(&t);
}

/* Reads the next record, checks it as get() does, returns its view. */
static struct ring_rd
get_rd(struct ring *c, uint64_t want_seq)
{
	struct ring_rd v;
	struct tmeta m;
	int ret;

	ret = ring_next(c, &v, 0);
	TCHECK(ret == 0, "next: %s", strerror(-ret));
	memcpy(&m, v.meta, sizeof(m));
	TCHECK(m.seq == want_seq && m.seq == v.seq &&
	       m.len == v.payload_len &&
	       tsum(v.payload, v.payload_len) == m.sum, "record %llu",
	       (unsigned long long)want_seq);
	ring_release(c, &v);
	return v;
}

/* Records of 4000 payload bytes take exactly 4096 (64 header, 32 meta). */
#define EW_LEN 4000u
#define EW_REC 4096u

/* One consumer reading each record as soon as it is published: the
 * producer never writes further than limit into the area, and comes back
 * to offset 0 at least min_wraps times; every record arrives, in order,
 * intact. sync_every > 0 marks every sync_every-th record RING_RF_SYNC and
 * checks that the newest one is never reclaimed and that a consumer
 * attaching at a keyframe always finds it. Returns the highest offset. */
static uint64_t
ew_keep_up(struct tring *t, struct ring *p, struct ring *c, uint64_t *seq,
	   uint64_t n, unsigned sync_every, uint64_t limit)
{
	const struct ring_hdr *h = ring_hdr(p);
	uint64_t ds = h->data_size, top = 0, wraps = 0, last_sync = UINT64_MAX;

	for (uint64_t i = 0; i < n; i++, (*seq)++) {
		int sync = sync_every == 0 || *seq % sync_every == 0;
		struct ring_rd v;

		put(p, *seq, EW_LEN, sync ? RING_RF_SYNC : 0);
		v = get_rd(c, *seq);
		if (v.pos % ds > top)
			top = v.pos % ds;
		if (v.pos % ds == 0)
			wraps++;
		if (sync)
			last_sync = v.pos;
		TCHECK(v.pos % ds + EW_REC <= limit, "record %llu at offset %llu "
		       "(limit %llu)", (unsigned long long)*seq,
		       (unsigned long long)(v.pos % ds),
		       (unsigned long long)limit);
		if (sync_every == 0)
			continue;
		TCHECK(h->last_sync == last_sync && h->tail <= last_sync,
		       "newest sync record %llu reclaimed (tail %llu)",
		       (unsigned long long)last_sync,
		       (unsigned long long)h->tail);
		if (*seq % 97 == 0) {
			/* a consumer joining at the keyframe finds it */
			int js;
			struct ring *j = tring_consumer(t, RING_START_SYNC, &js);
			uint64_t first = *seq - *seq % sync_every;
			struct ring_rd jv = get_rd(j, first);

			TCHECK(jv.flags & RING_RF_SYNC, "joined at a keyframe");
			ring_slot_free(t->admin, (unsigned)js);
			ring_unmap(&j);
		}
	}
	TCHECK(wraps >= n * EW_REC / limit - 1, "%llu wraps for %llu records",
	       (unsigned long long)wraps, (unsigned long long)n);
	return top;
}

static void
ew_ring(struct tring *t, struct ring **p, struct ring **c, uint64_t size,
	uint32_t mode)
{
	struct ring_params rp = { .data_size = size, .max_consumers = 4,
				  .mode = mode, .wait_consumers = 1 };

	TCHECK(tring_create(t, &rp) == 0, "create");
	TCHECK(tring_map_producer(t, p) == 0, "map producer");
	*c = consumer_at(t, RING_START_OLDEST);
}

static void
ew_done(struct tring *t, struct ring **p, struct ring **c)
{
	ring_unmap(c);
	ring_unmap(p);
	tring_destroy(t);
}

static void
test_early_wrap(void)
{
	const uint64_t ds = 16u << 20, lap = ds / EW_REC;
	const struct ring_hdr *h;
	struct tring t;
	struct ring *p, *c;
	struct ring_wr w;
	uint64_t seq = 0, n, top;
	int ret;

	/* keeping up, every record a sync point: a 2 MiB window */
	ew_ring(&t, &p, &c, ds, RING_MODE_LOSSLESS);
	ew_keep_up(&t, p, c, &seq, 5 * lap, 1, RING_WRAP_EARLY_AT + EW_REC);
	/* A consumer that stops right after an early wrap has the window
	 * behind it, and each wait for it doubles the window: after a few
	 * stalls it has the whole ring again, and keeps it. */
	for (uint64_t k = 0, room = 0, prev = 0; k < 5; k++, prev = room) {
		for (n = 0; (ret = ring_reserve(p, sizeof(struct tmeta),
						EW_LEN, &w, 0)) == 0; n++) {
			struct tmeta *m = w.meta;

			m->seq = seq + n;
			m->len = EW_LEN;
			m->sum = tfill(w.payload, EW_LEN, seq + n);
			TCHECK(ring_publish(p, &w, RING_REC_PACKET,
					    RING_RF_SYNC) == 0, "publish");
		}
		TCHECK(ret == -EAGAIN, "full: %s", strerror(-ret));
		room = n;
		TCHECK(room >= (k == 0 ? RING_WRAP_EARLY_AT / EW_REC - 1 :
				prev), "stall %llu: room for %llu records, "
		       "%llu before", (unsigned long long)k,
		       (unsigned long long)room, (unsigned long long)prev);
		for (top = 0; n > 0; n--, seq++) {
			struct ring_rd v = get_rd(c, seq);

			if (v.pos % ds > top)
				top = v.pos % ds;
		}
		/* read up: it goes on from where the window now ends */
		ew_keep_up(&t, p, c, &seq, lap, 1, ds);
		if (k == 4)
			TCHECK(room >= lap - 2 && top >= ds - 2 * EW_REC,
			       "the whole ring again: %llu records, offset "
			       "%llu", (unsigned long long)room,
			       (unsigned long long)top);
	}
	ew_done(&t, &p, &c);

	/* nobody attached: the whole ring stays history */
	seq = 0;
	ew_ring(&t, &p, &c, ds, RING_MODE_LOSSLESS);
	ew_keep_up(&t, p, c, &seq, 2 * lap, 1, RING_WRAP_EARLY_AT + EW_REC);
	ring_slot_free(t.admin, 0);
	h = ring_hdr(p);
	for (top = 0, n = 0; n < 2 * lap; n++, seq++) {
		if (h->head % ds > top)
			top = h->head % ds;
		put(p, seq, EW_LEN, RING_RF_SYNC);
	}
	TCHECK(top >= ds - 2 * EW_REC, "no consumer: offset %llu",
	       (unsigned long long)top);
	ew_done(&t, &p, &c);

	/* keyframes every 384 records (1.5 MiB): the window is two of
	 * those, and the newest keyframe is always there to start at */
	seq = 0;
	ew_ring(&t, &p, &c, ds, RING_MODE_LOSSLESS);
	ew_keep_up(&t, p, c, &seq, 5 * lap, 384, 2 * 384 * EW_REC + EW_REC);
	ew_done(&t, &p, &c);

	/* keyframes further apart than half the ring: no early wrap */
	seq = 0;
	ew_ring(&t, &p, &c, ds, RING_MODE_LOSSLESS);
	top = ew_keep_up(&t, p, c, &seq, 3 * lap, (unsigned)(lap / 2 + 1),
			 ds);
	TCHECK(top >= ds - 2 * EW_REC, "long GOP: offset %llu",
	       (unsigned long long)top);
	ew_done(&t, &p, &c);

	/* live rings and small rings use the whole area */
	seq = 0;
	ew_ring(&t, &p, &c, ds, RING_MODE_LIVE);
	top = ew_keep_up(&t, p, c, &seq, 2 * lap, 1, ds);
	TCHECK(top >= ds - 2 * EW_REC, "live: offset %llu",
	       (unsigned long long)top);
	ew_done(&t, &p, &c);
	seq = 0;
	ew_ring(&t, &p, &c, RING_WRAP_EARLY_MIN_RING / 2, RING_MODE_LOSSLESS);
	top = ew_keep_up(&t, p, c, &seq, 3 * lap / 2, 1, ds);
	TCHECK(top >= RING_WRAP_EARLY_MIN_RING / 2 - 2 * EW_REC,
	       "small ring: offset %llu", (unsigned long long)top);
	ew_done(&t, &p, &c);
}

/* ---- the admin channel: every message is untrusted input ---- */

static int
count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	TCHECK(d != NULL, "opendir");
	while (readdir(d) != NULL)
		n++;
	closedir(d);
	return n;
}

/* One datagram of len bytes from m, with nfds copies of fd. Not
 * ctl_send(): the malformed cases send more fds than it allows. */
static void
send_admin(int sock, const void *m, size_t len, int fd, int nfds)
{
	union {
		char buf[CMSG_SPACE(4 * sizeof(int))];
		struct cmsghdr align;
	} cb;
	struct iovec iov = { .iov_base = (void *)m, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	int fds[4] = { fd, fd, fd, fd };

	if (nfds > 0) {
		struct cmsghdr *c;

		memset(&cb, 0, sizeof(cb));
		mh.msg_control = cb.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
	}
	TCHECK(sendmsg(sock, &mh, MSG_NOSIGNAL) == (ssize_t)len, "send");
}

/* A memfd as a forged page: size bytes, the seals asked for, reopened
 * read-only unless rw. */
static int
forged_page(size_t size, int seals, int rw)
{
	char path[64];
	int fd = memfd_create("forged", MFD_CLOEXEC | MFD_ALLOW_SEALING), ro;

	TCHECK(fd >= 0 && ftruncate(fd, (off_t)size) == 0, "memfd");
	if (seals)
		TCHECK(fcntl(fd, F_ADD_SEALS, seals) == 0, "seals");
	if (rw)
		return fd;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	ro = open(path, O_RDONLY | O_CLOEXEC);
	close(fd);
	TCHECK(ro >= 0, "reopen");
	return ro;
}

/* A producer takes only well-formed messages: exact size, magic, op, slot
 * and id in range, exactly the fds the op carries, a page of the right
 * size, sealed and read-only. Everything else is dropped with its fds;
 * the producer goes on, and the broker's consumers still work. */
static void
test_admin_channel(void)
{
	const int seals = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;
	struct ring_params rp = { .data_size = 64u << 10, .max_consumers = 4,
				  .mode = RING_MODE_LOSSLESS };
	struct ring_admin_msg ok = {
		.magic = RING_ADMIN_MAGIC, .op = RING_ADMIN_ADD, .slot = 3,
		.id = 99,
	}, m;
	struct tring t;
	struct ring *p, *c;
	char big[sizeof(ok) + 8];
	int fds0, good, page;

	TCHECK(tring_create(&t, &rp) == 0, "create");
	TCHECK(tring_map_producer(&t, &p) == 0, "map producer");
	fds0 = count_fds();
	good = forged_page(RING_PAGE_SIZE, seals, 0);
	/* each of these is dropped */
	m = ok; m.magic ^= 1;
	send_admin(t.asock, &m, sizeof(m), good, 1);
	m = ok; m.op = 7;
	send_admin(t.asock, &m, sizeof(m), good, 1);
	m = ok; m.slot = rp.max_consumers;
	send_admin(t.asock, &m, sizeof(m), good, 1);
	m = ok; m.id = 0;
	send_admin(t.asock, &m, sizeof(m), good, 1);
	m = ok; m.pad = 1;
	send_admin(t.asock, &m, sizeof(m), good, 1);
	send_admin(t.asock, &ok, sizeof(ok) - 1, good, 1);     /* short */
	memset(big, 0, sizeof(big));
	memcpy(big, &ok, sizeof(ok));
	send_admin(t.asock, big, sizeof(big), good, 1);        /* long */
	send_admin(t.asock, &ok, sizeof(ok), good, 0);         /* no fd */
	send_admin(t.asock, &ok, sizeof(ok), good, 2);         /* two */
	send_admin(t.asock, &ok, sizeof(ok), good, 4);         /* four */
	page = forged_page(RING_PAGE_SIZE, 0, 0);              /* unsealed */
	send_admin(t.asock, &ok, sizeof(ok), page, 1);
	close(page);
	page = forged_page(RING_PAGE_SIZE, F_SEAL_SHRINK, 0);  /* growable */
	send_admin(t.asock, &ok, sizeof(ok), page, 1);
	close(page);
	page = forged_page(2 * RING_PAGE_SIZE, seals, 0);      /* too big */
	send_admin(t.asock, &ok, sizeof(ok), page, 1);
	close(page);
	page = forged_page(RING_PAGE_SIZE, seals, 1);          /* writable */
	send_admin(t.asock, &ok, sizeof(ok), page, 1);
	close(page);
	send_admin(t.asock, &ok, sizeof(ok), t.dfd, 1);        /* not a page */
	m = ok; m.op = RING_ADMIN_DEL;                         /* DEL + fd */
	send_admin(t.asock, &m, sizeof(m), good, 1);
	send_admin(t.asock, &ok, 0, good, 1);                  /* empty */
	TCHECK(ring_admin_poll(p) == 0, "poll");
	TCHECK(ring_adopted(p) == 0, "adopted a bad ADD: %u", ring_adopted(p));
	/* a good one is taken; a DEL with another id is not */
	send_admin(t.asock, &ok, sizeof(ok), good, 1);
	m = ok; m.op = RING_ADMIN_DEL; m.id = 98;
	send_admin(t.asock, &m, sizeof(m), -1, 0);
	TCHECK(ring_admin_poll(p) == 0 && ring_adopted(p) == 1, "good ADD");
	/* an ADD for a taken slot is dropped too */
	send_admin(t.asock, &ok, sizeof(ok), good, 1);
	TCHECK(ring_admin_poll(p) == 0 && ring_adopted(p) == 1, "taken slot");
	m = ok; m.op = RING_ADMIN_DEL;
	send_admin(t.asock, &m, sizeof(m), -1, 0);
	TCHECK(ring_admin_poll(p) == 0 && ring_adopted(p) == 0, "DEL");
	close(good);
	/* not one descriptor kept, not one page left mapped */
	TCHECK(count_fds() == fds0, "fds: %d, were %d", count_fds(), fds0);
	/* and the broker's own consumers work as ever */
	c = consumer_at(&t, RING_START_OLDEST);
	put(p, 0, 100, 0);
	TCHECK(get(c, 0) == 0, "read");
	TCHECK(ring_admin_poll(p) == 0 && ring_adopted(p) == 1, "adopted");
	ring_unmap(&c);
	ring_unmap(&p);
	tring_destroy(&t);
}

static int
readable(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	return poll(&pfd, 1, 0);
}

/* A polling consumer's wake pipe: readable after an empty read exactly
 * when something new came (records flushed, the end), also when it
 * announced itself before the producer adopted it and a state change
 * moved wake_seq meanwhile; emptied by the next empty read. */
static void
test_wake_pipe(void)
{
	struct ring_params rp = { .data_size = 64u << 10, .max_consumers = 4,
				  .mode = RING_MODE_LOSSLESS };
	struct ring_rd v;
	struct tring t;
	struct ring *p, *c;
	int w[2], page, slot;

	TCHECK(tring_create(&t, &rp) == 0, "create");
	TCHECK(tring_map_producer(&t, &p) == 0, "map producer");
	TCHECK(pipe2(w, O_NONBLOCK | O_CLOEXEC) == 0, "pipe");
	slot = ring_slot_alloc_wake(t.admin, getpid(), w[1], &page);
	TCHECK(slot >= 0, "slot: %d", slot);
	/* the ring keeps its own copy, and sent one; w[1] stays the
	 * test's to fill the pipe below */
	TCHECK(tring_map_consumer(&t, &c) == 0 &&
	       ring_attach(c, page, RING_START_OLDEST) == 0, "attach");
	close(page);
	TCHECK(ring_set_wake_fd(c, w[0]) == 0, "wake fd");
	/* announced before the producer takes the ADD ... */
	TCHECK(ring_next(c, &v, 0) == -EAGAIN, "empty");
	TCHECK(readable(w[0]) == 0, "nothing yet");
	/* ... which a state change does not do: wake_seq moves on */
	ring_set_state(p, RING_STATE_RUNNING);
	put(p, 0, 100, 0);
	TCHECK(ring_flush(p) == 0 && ring_adopted(p) == 1, "adopted");
	TCHECK(readable(w[0]) == 1, "woken after a missed wake");
	get(c, 0);
	TCHECK(ring_next(c, &v, 0) == -EAGAIN, "read all");
	TCHECK(readable(w[0]) == 0, "emptied by the empty read");
	TCHECK(ring_flush(p) == 0 && readable(w[0]) == 0, "nothing new");
	for (int i = 1; i <= 3; i++) {
		put(p, (uint64_t)i, 100, 0);
		TCHECK(ring_flush(p) == 0 && readable(w[0]) == 1,
		       "record %d", i);
		get(c, 0);
		TCHECK(ring_next(c, &v, 0) == -EAGAIN &&
		       readable(w[0]) == 0, "re-armed %d", i);
	}
	/* unflushed: batched, no wake yet */
	put(p, 4, 100, 0);
	TCHECK(readable(w[0]) == 0, "batched");
	/* A reader that makes its end blocking and lets the pipe fill up
	 * cannot make the producer's poke (nor the broker's) block: the
	 * write end is another open file description, non-blocking. A
	 * poke that blocked would hang here until the watchdog. */
	TCHECK(fcntl(w[0], F_SETFL, 0) == 0, "blocking read end");
	TCHECK(fcntl(w[1], F_SETPIPE_SZ, 4096) >= 0, "small pipe");
	while (write(w[1], "x", 1) == 1)
		;
	TCHECK(errno == EAGAIN, "full");
	TCHECK(ring_flush(p) == 0, "poke a full pipe");
	put(p, 5, 100, 0);
	ring_set_end(t.admin, SD_END_EOF, 0, 0, 0, NULL);
	TCHECK(readable(w[0]) == 1, "the end");
	get(c, 0);
	get(c, 0);
	TCHECK(ring_next(c, &v, 0) == -EPIPE, "ended");
	close(w[0]);
	close(w[1]);
	ring_unmap(&c);
	ring_unmap(&p);
	tring_destroy(&t);
}

int
main(void)
{
	twatchdog(60);
	test_bad_headers();
	test_starts_and_end();
	test_wrap_and_limits();
	test_readonly_and_tracks();
	test_pool_and_reclaim();
	test_admin_channel();
	test_early_wrap();
	test_wake_pipe();
	printf("ring api: ok\n");
	return 0;
}
