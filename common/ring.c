/*
 * ring.c - the shared-memory broadcast ring. See ring.h for the API and
 * docs/RING.md for the layout, the protocol and the memory orderings.
 *
 * Conventions in this file:
 *  - The producer keeps the authoritative head/tail/seq in struct ring and
 *    only publishes them; it never reads back a value a consumer can write
 *    without clamping it, and keeps its own table of the consumers it
 *    adopted (their positions privately monotonic).
 *  - A consumer copies every shared value once into a local and checks it
 *    before using it; a failed check is -EBADMSG.
 *  - Every atomic access names its ordering and why.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>

#include "futex.h"
#include "proto.h"
#include "ring.h"

#define ALIGN_UP(x, a) (((x) + ((a) - 1)) & ~((uint64_t)(a) - 1))
#define PAGE 4096u
#define TRACKS_RETRIES 1000
/* Lag checkpoints kept, and how close in time two of them may be. */
#define CP_MAX 128u
#define CP_SPACING_DIV 32u
/* Admin messages taken per drain; more wait for the next one. */
#define ADMIN_DRAIN_MAX (4u * RING_MAX_SLOTS)
/* The seals every cursor page carries. */
#define PAGE_SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)

/* The producer's own record of one slot. pos is the consumer's cursor as
 * the producer counts it: clamped to [tail, head] and never lowered, so a
 * cursor moved backwards is no progress and one moved past what was read
 * hurts only its consumer. Nothing else is read from the page but its
 * sleep_seq and its futex word. */
enum { PS_FREE = 0, PS_LIVE, PS_EVICTED };

struct pslot {
	const struct ring_page *pg;  /* read-only mapping while LIVE */
	int wfd;                     /* its wake pipe's write end (the ADD's
	                                second fd) while LIVE, or -1 */
	uint64_t id;                 /* attach id from the ADD */
	uint64_t pos;
	uint32_t state;
};

/* The broker's record of one slot: its page (read-write, for the raise at
 * attach, the futex bumps and `ls`) until the DEL went out. */
enum { AS_FREE = 0, AS_USED, AS_DEL };

struct aslot {
	struct ring_page *pg;
	int wfd;                     /* its wake pipe's write end, or -1 */
	uint64_t id;
	uint32_t state;
};

/* Lag eviction: since ns, the producer has waited for every consumer to
 * get past pos (docs/RING.md, "Lag eviction"). */
struct lagcp {
	uint64_t pos, ns;
};

struct ring {
	enum ring_role role;
	void *dmap;
	size_t dlen;
	struct ring_hdr *hdr;
	uint8_t *tracks;
	uint8_t *area;
	uint8_t *pool;
	int admin_fd;          /* producer, broker: the admin channel, or -1 */
	/* validated copies of the header geometry: never re-read */
	uint64_t ds;
	uint64_t ps;           /* frame pool bytes, 0 = none */
	uint64_t tracks_size;
	uint32_t nslots, mode, wait_consumers, lag_ms;

	/* producer: authoritative state, published to the header */
	uint64_t p_head, p_tail, p_seq;
	uint64_t p_limit;      /* every live cursor was >= this (p_slots) */
	uint32_t p_slot_gen;   /* slot_gen when the channel was last drained */
	bool p_hold_done;      /* wait_consumers reached (sticky) */
	bool p_admin_closed;   /* the broker closed the channel */
	uint32_t p_adopted;    /* consumers ever adopted (wait_consumers) */
	struct pslot *p_slots; /* nslots */
	uint16_t *p_live;      /* indices of the LIVE slots */
	uint32_t p_nlive;
	int p_blocker;         /* the slowest live slot at the last scan, -1 */
	struct lagcp p_cp[CP_MAX];
	uint32_t p_cp_first, p_cp_n;
	uint64_t p_packets, p_frames, p_bytes, p_waits, p_evictions;
	/* Private log of the record lengths in [p_tail, p_head) (in units of
	 * RING_ALIGN), oldest first, in a power-of-two circular array: the
	 * tail walk reads it instead of record headers written a lap ago
	 * (cache misses, and memory the broker can also write). */
	uint32_t *p_lens;
	uint64_t p_lens_cap, p_lens_first, p_lens_n;
	/* Early wrap (wrap_early). Record bytes are counted without pads,
	 * which make positions run ahead of the data. */
	uint64_t p_last_sync;  /* newest RING_RF_SYNC record, UINT64_MAX: none */
	uint64_t p_rec_bytes;  /* record bytes published, pads excluded */
	uint64_t p_sync_bytes; /* p_rec_bytes at the newest sync record */
	uint64_t p_gop;        /* record bytes between the last two of them */
	uint64_t p_wrap_at;    /* lossless: offset from which to wrap early */
	uint64_t p_wrap_next;  /* head before which no early wrap is tried */
	uint64_t p_wrapped;    /* start of the last lap begun early, or
	                          UINT64_MAX */
	uint32_t p_unwoken;    /* records published since the last wake check */
	uint64_t p_unwoken_at; /* p_head at the last wake check */
	uint64_t p_unwoken_pad; /* pad bytes since then (no byte threshold) */
	uint64_t p_wake_bytes; /* wake after this many bytes (ds / 32) */

	/* broker */
	struct aslot *a_slots; /* nslots */
	uint64_t a_next_id;
	uint32_t a_used, a_pending;
	bool a_dead;           /* the producer's end is closed */

	/* consumer */
	int slot;              /* -1 until ring_attach() */
	uint64_t c_id;         /* our attach id */
	struct ring_page *c_page;
	uint64_t c_pos;        /* next record to read */
	uint64_t c_head;       /* cached head, <= the real head */
	uint64_t c_overruns;
	uint64_t c_checked_at; /* c_pos when the producer was last checked */
	uint32_t c_unchecked;  /* releases since then */
	bool c_need_sync;      /* skip to the next RING_RF_SYNC record */
	/* Holds (ring_set_floor): once used, the published cursor is
	 * min(c_pos, c_floor), never moving backwards, and every publish
	 * runs under c_lock because a floor may be raised from any thread.
	 * c_mirror is c_pos as last published, for those threads. */
	_Atomic bool c_holds;
	pthread_mutex_t c_lock;
	uint64_t c_floor;      /* under c_lock; UINT64_MAX: nothing held */
	uint64_t c_mirror;     /* under c_lock */
	uint64_t c_pub;        /* under c_lock: the value last published */
	int c_wfd;             /* read end of our wake pipe, or -1 */
	bool c_armed;          /* sleep_seq announced by arm_wake() */
};

static int
params_ok(const struct ring_params *p, uint64_t *ds, uint64_t *ps)
{
	uint64_t d;

	if (p == NULL || p->data_size > RING_MAX_DATA ||
	    p->pool_size > RING_MAX_POOL)
		return 0;
	*ps = ALIGN_UP(p->pool_size, PAGE);
	d = ALIGN_UP(p->data_size, PAGE);
	if (d < RING_MIN_DATA || d > RING_MAX_DATA)
		return 0;
	if (p->max_consumers < 1 || p->max_consumers > RING_MAX_SLOTS)
		return 0;
	if (p->mode != RING_MODE_LOSSLESS && p->mode != RING_MODE_LIVE)
		return 0;
	if (p->wait_consumers > p->max_consumers)
		return 0;
	*ds = d;
	return 1;
}

static uint64_t
data_seg_size(uint64_t ds, uint64_t ps)
{
	return RING_HDR_SIZE + RING_TRACKS_SIZE + ds + ps;
}

uint64_t
ring_data_seg_size(const struct ring_params *p)
{
	uint64_t ds, ps;

	return params_ok(p, &ds, &ps) ? data_seg_size(ds, ps) : 0;
}

/* Size an fd from scratch (truncating first zeroes any old contents) and
 * seal its size when the memfd allows it, so no holder of a writable fd can
 * shrink it under another process's mapping (SIGBUS). */
static int
size_fd(int fd, uint64_t size)
{
	if (ftruncate(fd, 0) < 0 || ftruncate(fd, (off_t)size) < 0)
		return -errno;
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) < 0 &&
	    errno != EINVAL && errno != EPERM)
		return -errno;
	return 0;
}

static void
init_hdr(struct ring_hdr *h, const struct ring_params *p, uint64_t ds,
	 uint64_t ps)
{
	h->abi_version = RING_ABI_VERSION;
	h->hdr_size = RING_HDR_SIZE;
	h->total_size = data_seg_size(ds, ps);
	h->tracks_off = RING_HDR_SIZE;
	h->tracks_size = RING_TRACKS_SIZE;
	h->data_off = RING_HDR_SIZE + RING_TRACKS_SIZE;
	h->data_size = ds;
	h->pool_off = RING_HDR_SIZE + RING_TRACKS_SIZE + ds;
	h->pool_size = ps;
	h->max_consumers = p->max_consumers;
	h->mode = p->mode;
	h->wait_consumers = p->wait_consumers;
	h->lag_timeout_ms = p->lag_timeout_ms;
	/* Nobody maps the ring before ring_create() returns: relaxed. */
	atomic_store_explicit(&h->last_sync, UINT64_MAX, memory_order_relaxed);
	h->end_exit_code = -1;
	h->end_syscall = -1;
	h->magic = RING_MAGIC;
}

int
ring_create(int data_fd, const struct ring_params *p)
{
	uint64_t ds, ps, dlen;
	void *d;
	int ret;

	if (!params_ok(p, &ds, &ps))
		return -EINVAL;
	dlen = data_seg_size(ds, ps);
	if ((ret = size_fd(data_fd, dlen)) < 0)
		return ret;
	/* Only the header page is written; the rest is zero from ftruncate. */
	d = mmap(NULL, RING_HDR_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
		 data_fd, 0);
	if (d == MAP_FAILED)
		return -errno;
	init_hdr(d, p, ds, ps);
	munmap(d, RING_HDR_SIZE);
	return 0;
}

/* Check the header against the object's real size. Every field is read
 * once into the ring struct; later code uses only those copies. */
static int
check_hdr(struct ring *r, const volatile struct ring_hdr *h, uint64_t fsize)
{
	uint64_t ds = h->data_size, ps = h->pool_size;

	if (h->magic != RING_MAGIC || h->abi_version != RING_ABI_VERSION ||
	    h->hdr_size != RING_HDR_SIZE || h->total_size != fsize ||
	    h->tracks_off != RING_HDR_SIZE ||
	    h->tracks_size != RING_TRACKS_SIZE ||
	    h->data_off != RING_HDR_SIZE + RING_TRACKS_SIZE)
		return -EPROTO;
	if (ds % PAGE || ds < RING_MIN_DATA || ds > RING_MAX_DATA ||
	    ps % PAGE || ps > RING_MAX_POOL ||
	    h->pool_off != RING_HDR_SIZE + RING_TRACKS_SIZE + ds ||
	    data_seg_size(ds, ps) != fsize)
		return -EPROTO;
	r->ds = ds;
	r->ps = ps;
	r->tracks_size = RING_TRACKS_SIZE;
	r->nslots = h->max_consumers;
	r->mode = h->mode;
	r->wait_consumers = h->wait_consumers;
	r->lag_ms = h->lag_timeout_ms;
	if (r->nslots < 1 || r->nslots > RING_MAX_SLOTS ||
	    (r->mode != RING_MODE_LOSSLESS && r->mode != RING_MODE_LIVE))
		return -EPROTO;
	return 0;
}
/* Room in the length log for n more records. */
static int
lens_reserve(struct ring *r, uint64_t n)
{
	uint64_t cap = r->p_lens_cap ? r->p_lens_cap : 1024, i;
	uint32_t *nl;

	if (r->p_lens_n + n <= r->p_lens_cap)
		return 0;
	while (cap < r->p_lens_n + n)
		cap *= 2;
	if ((nl = malloc(cap * sizeof(*nl))) == NULL)
		return -ENOMEM;
	for (i = 0; i < r->p_lens_n; i++)
		nl[i] = r->p_lens[(r->p_lens_first + i) & (r->p_lens_cap - 1)];
	free(r->p_lens);
	r->p_lens = nl;
	r->p_lens_cap = cap;
	r->p_lens_first = 0;
	return 0;
}

/* Log a record published at p_head (lens_reserve() made room). */
static void
lens_push(struct ring *r, uint64_t len)
{
	r->p_lens[(r->p_lens_first + r->p_lens_n++) & (r->p_lens_cap - 1)] =
		(uint32_t)(len / RING_ALIGN);
}

/* Length of the i-th oldest logged record, in bytes. */
static uint64_t
lens_at(const struct ring *r, uint64_t i)
{
	return (uint64_t)r->p_lens[(r->p_lens_first + i) &
				   (r->p_lens_cap - 1)] * RING_ALIGN;
}

/* The n oldest records were reclaimed. */
static void
lens_drop(struct ring *r, uint64_t n)
{
	r->p_lens_first = (r->p_lens_first + n) & (r->p_lens_cap - 1);
	r->p_lens_n -= n;
}

/* Records already between tail and head when the producer maps the ring
 * (its own from an earlier mapping): their lengths come from the headers
 * this once, checked like everything else read from shared memory. */
static int
lens_load(struct ring *r)
{
	const struct ring_rec *rec;
	uint64_t t = r->p_tail, len;
	int ret;

	while (t < r->p_head) {
		rec = (const struct ring_rec *)(r->area + t % r->ds);
		len = rec->len;
		if (rec->pos != t || len < RING_ALIGN || len % RING_ALIGN ||
		    len > r->p_head - t || len > r->ds)
			return -EPROTO;
		if ((ret = lens_reserve(r, 1)) < 0)
			return ret;
		lens_push(r, len);
		t += len;
	}
	return 0;
}

/* The producer resumes from the published state; it is its own (or the
 * broker's fresh header), but a bad value must not send it walking. The
 * consumers it adopted in an earlier mapping are not known to this one:
 * a producer maps its ring once. */
static int
load_producer_state(struct ring *r)
{
	struct ring_hdr *h = r->hdr;

	/* Relaxed: no other producer exists, nothing to synchronise with. */
	r->p_head = atomic_load_explicit(&h->head, memory_order_relaxed);
	r->p_tail = atomic_load_explicit(&h->tail, memory_order_relaxed);
	r->p_seq = atomic_load_explicit(&h->next_seq, memory_order_relaxed);
	if (r->p_tail > r->p_head || r->p_head - r->p_tail > r->ds ||
	    r->p_head % RING_ALIGN || r->p_tail % RING_ALIGN)
		return -EPROTO;
	r->p_limit = r->p_tail;
	/* 0, not the header's value: the first check drains the channel,
	 * where the ADDs of consumers attached before we mapped wait. */
	r->p_slot_gen = 0;
	r->p_blocker = -1;
	r->p_last_sync = atomic_load_explicit(&h->last_sync,
					      memory_order_relaxed);
	if (r->p_last_sync != UINT64_MAX && r->p_last_sync >= r->p_head)
		r->p_last_sync = r->p_tail;
	r->p_wrap_at = r->mode == RING_MODE_LOSSLESS &&
		r->ds >= RING_WRAP_EARLY_MIN_RING ? RING_WRAP_EARLY_AT : r->ds;
	r->p_wrap_next = 0;
	r->p_wrapped = UINT64_MAX;
	r->p_unwoken = 0;
	r->p_unwoken_at = r->p_head;
	r->p_unwoken_pad = 0;
	r->p_wake_bytes = r->ds / RING_WAKE_BATCH_DIV;
	r->p_packets = atomic_load_explicit(&h->packets, memory_order_relaxed);
	r->p_frames = atomic_load_explicit(&h->frames, memory_order_relaxed);
	r->p_bytes = atomic_load_explicit(&h->payload_bytes,
					  memory_order_relaxed);
	r->p_waits = atomic_load_explicit(&h->producer_waits,
					  memory_order_relaxed);
	r->p_evictions = atomic_load_explicit(&h->evictions,
					      memory_order_relaxed);
	r->p_slots = calloc(r->nslots, sizeof(*r->p_slots));
	r->p_live = calloc(r->nslots, sizeof(*r->p_live));
	if (r->p_slots == NULL || r->p_live == NULL)
		return -ENOMEM;
	for (uint32_t i = 0; i < r->nslots; i++)
		r->p_slots[i].wfd = -1;
	return lens_load(r);
}

static void
close_wfd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* One byte into a consumer's wake pipe: its poll loop wakes. The pipe is
 * non-blocking on our side (the broker made it, and the consumer holds
 * only the read end, so it cannot change that); a full pipe is already
 * readable, so EAGAIN loses nothing. */
static void
poke(int fd)
{
	static const char one = 1;

	if (fd >= 0)
		(void)!write(fd, &one, 1);
}

static int
map_fd(int fd, int prot, void **out, size_t *len)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (st.st_size < (off_t)PAGE ||
	    (uint64_t)st.st_size > RING_MAX_DATA + RING_MAX_POOL +
				   RING_HDR_SIZE + RING_TRACKS_SIZE)
		return -EPROTO;
	*out = mmap(NULL, (size_t)st.st_size, prot, MAP_SHARED, fd, 0);
	if (*out == MAP_FAILED) {
		*out = NULL;
		return -errno;
	}
	*len = (size_t)st.st_size;
	return 0;
}

int
ring_map(struct ring **out, int data_fd, int admin_fd, enum ring_role role)
{
	struct ring *r;
	int dprot = PROT_READ | PROT_WRITE, ret;

	*out = NULL;
	if (role != RING_ROLE_PRODUCER && role != RING_ROLE_CONSUMER &&
	    role != RING_ROLE_ADMIN)
		return -EINVAL;
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return -ENOMEM;
	r->role = role;
	r->slot = -1;
	r->admin_fd = role == RING_ROLE_CONSUMER ? -1 : admin_fd;
	r->c_floor = UINT64_MAX;
	r->c_wfd = -1;
	pthread_mutex_init(&r->c_lock, NULL);
	if (role == RING_ROLE_CONSUMER)
		dprot = PROT_READ;
	if ((ret = map_fd(data_fd, dprot, &r->dmap, &r->dlen)) < 0)
		goto out;
	r->hdr = r->dmap;
	if ((ret = check_hdr(r, r->hdr, r->dlen)) < 0)
		goto out;
	r->tracks = (uint8_t *)r->dmap + RING_HDR_SIZE;
	r->area = r->tracks + RING_TRACKS_SIZE;
	r->pool = r->ps ? r->area + r->ds : NULL;
	if (role == RING_ROLE_PRODUCER && (ret = load_producer_state(r)) < 0)
		goto out;
	if (role == RING_ROLE_ADMIN &&
	    (r->a_slots = calloc(r->nslots, sizeof(*r->a_slots))) == NULL) {
		ret = -ENOMEM;
		goto out;
	}
	for (uint32_t i = 0; r->a_slots != NULL && i < r->nslots; i++)
		r->a_slots[i].wfd = -1;
	*out = r;
	return 0;
out:
	ring_unmap(&r);
	return ret;
}

void
ring_unmap(struct ring **rp)
{
	struct ring *r;
	unsigned i;

	if (rp == NULL || (r = *rp) == NULL)
		return;
	if (r->dmap)
		munmap(r->dmap, r->dlen);
	for (i = 0; r->p_slots != NULL && i < r->nslots; i++) {
		if (r->p_slots[i].pg != NULL)
			munmap((void *)r->p_slots[i].pg, RING_PAGE_SIZE);
		close_wfd(&r->p_slots[i].wfd);
	}
	for (i = 0; r->a_slots != NULL && i < r->nslots; i++) {
		if (r->a_slots[i].pg != NULL)
			munmap(r->a_slots[i].pg, RING_PAGE_SIZE);
		close_wfd(&r->a_slots[i].wfd);
	}
	if (r->c_page != NULL)
		munmap(r->c_page, RING_PAGE_SIZE);
	free(r->p_slots);
	free(r->p_live);
	free(r->a_slots);
	free(r->p_lens);
	pthread_mutex_destroy(&r->c_lock);
	free(r);
	*rp = NULL;
}

const struct ring_hdr *
ring_hdr(const struct ring *r)
{
	return r->hdr;
}

void *
ring_pool(const struct ring *r, uint64_t *size)
{
	*size = r->ps;
	return r->pool;
}

/* ---- the admin channel, producer side ---- */

/* The page of an ADD: a regular file of exactly RING_PAGE_SIZE bytes,
 * sealed against resizing (nobody can shrink it under our mapping, which
 * would SIGBUS us), opened read-only. Mapped read-only: we only read it,
 * and futex waits work on a read-only shared mapping. The fd is closed
 * here whatever happens (a worker has few). */
static const struct ring_page *
map_page_ro(int fd)
{
	struct stat st;
	void *m = MAP_FAILED;
	int seals, fl;

	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
	    st.st_size == (off_t)RING_PAGE_SIZE &&
	    (seals = fcntl(fd, F_GET_SEALS)) >= 0 &&
	    (seals & PAGE_SEALS) == PAGE_SEALS &&
	    (fl = fcntl(fd, F_GETFL)) >= 0 && (fl & O_ACCMODE) == O_RDONLY)
		m = mmap(NULL, RING_PAGE_SIZE, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	return m == MAP_FAILED ? NULL : m;
}

static uint64_t
clamp_pos(const struct ring *r, uint64_t p)
{
	return p < r->p_tail ? r->p_tail : p > r->p_head ? r->p_head : p;
}

/* ADD: a new consumer. A slot still taken (no DEL came for it) keeps its
 * consumer; the broker never reuses a slot before its DEL. */
static void
adopt(struct ring *r, const struct ring_admin_msg *m, int fd, int wfd)
{
	struct pslot *s = &r->p_slots[m->slot];
	const struct ring_page *pg;

	if (s->state != PS_FREE) {
		close(fd);
		close_wfd(&wfd);
		return;
	}
	if ((pg = map_page_ro(fd)) == NULL) {
		close_wfd(&wfd);
		return;
	}
	s->pg = pg;
	s->wfd = wfd;
	s->id = m->id;
	s->state = PS_LIVE;
	/* Its cursor starts no lower than the broker said, whatever the
	 * page says now; scans raise it from the page. */
	s->pos = clamp_pos(r, m->start);
	r->p_live[r->p_nlive++] = (uint16_t)m->slot;
	r->p_adopted++;
	if (s->pos < r->p_limit)
		r->p_limit = s->pos;
}

static void
unlive(struct ring *r, unsigned slot)
{
	struct pslot *s = &r->p_slots[slot];

	for (uint32_t k = 0; k < r->p_nlive; k++)
		if (r->p_live[k] == slot) {
			r->p_live[k] = r->p_live[--r->p_nlive];
			break;
		}
	munmap((void *)s->pg, RING_PAGE_SIZE);
	s->pg = NULL;
	close_wfd(&s->wfd);
	if (r->p_blocker == (int)slot)
		r->p_blocker = -1;
}

/* DEL: the consumer left (or was evicted and has now left). */
static void
drop(struct ring *r, const struct ring_admin_msg *m)
{
	struct pslot *s = &r->p_slots[m->slot];

	if (s->state == PS_FREE || s->id != m->id)
		return;
	if (s->state == PS_LIVE)
		unlive(r, m->slot);
	s->state = PS_FREE;
}

/* The second fd of an ADD: the write end of a pipe, non-blocking (a
 * write never waits for the consumer). */
static bool
wake_end_ok(int fd)
{
	struct stat st;
	int fl = fcntl(fd, F_GETFL);

	return fl >= 0 && (fl & O_ACCMODE) == O_WRONLY && (fl & O_NONBLOCK) &&
	       fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode);
}

/* One message from the broker, checked like any input: exact size, magic,
 * a known op, slot and id in range, exactly the fds the op carries. A
 * malformed one is dropped (its fds closed). 1: one taken; 0: none
 * waiting; -EPIPE: the broker closed the channel. */
static int
admin_recv(struct ring *r)
{
	struct ring_admin_msg m;
	char extra;
	struct iovec iov[2] = {
		{ .iov_base = &m, .iov_len = sizeof(m) },
		{ .iov_base = &extra, .iov_len = 1 },
	};
	union {
		char buf[CMSG_SPACE(2 * sizeof(int))];
		struct cmsghdr align;
	} cb;
	struct msghdr mh = {
		.msg_iov = iov, .msg_iovlen = 2,
		.msg_control = cb.buf, .msg_controllen = sizeof(cb.buf),
	};
	int fds[2], nfds, bad;
	bool ok;
	ssize_t n;

	do
		n = recvmsg(r->admin_fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -EPIPE;
	nfds = ctl_take_fds(&mh, fds, 2, &bad);
	if (n == 0 && nfds == 0)
		return -EPIPE; /* the broker never sends an empty message */
	ok = !bad && !(mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) &&
	     n == (ssize_t)sizeof(m) && m.magic == RING_ADMIN_MAGIC &&
	     m.slot < r->nslots && m.id != 0 && m.pad == 0;
	if (ok && m.op == RING_ADMIN_ADD &&
	    (nfds == 1 || (nfds == 2 && wake_end_ok(fds[1])))) {
		adopt(r, &m, fds[0], nfds == 2 ? fds[1] : -1);
		return 1;
	}
	if (ok && m.op == RING_ADMIN_DEL && nfds == 0)
		drop(r, &m);
	for (int i = 0; i < nfds; i++)
		close(fds[i]);
	return 1;
}

/* Take every waiting message. false if some may be left (the bound was
 * reached), so the caller does not count the channel as drained. */
static bool
admin_drain(struct ring *r)
{
	int ret = 1;

	for (unsigned i = 0; i < ADMIN_DRAIN_MAX && ret == 1; i++)
		ret = admin_recv(r);
	if (ret < 0)
		r->p_admin_closed = true;
	return ret != 1;
}

/* If slot_gen moved since the last drain, drain. Acquire: pairs with the
 * broker's seq_cst increment, made after it sent the message, so the
 * message is in the channel. slot_gen is loaded before the drain: an
 * increment during it is seen by the next check. */
static void
admin_check(struct ring *r)
{
	uint32_t g = atomic_load_explicit(&r->hdr->slot_gen,
					  memory_order_acquire);

	if (g == r->p_slot_gen)
		return;
	/* No channel (or no broker any more): nothing can be waiting. */
	if (r->admin_fd < 0 || r->p_admin_closed || admin_drain(r))
		r->p_slot_gen = g;
}

int
ring_admin_poll(struct ring *r)
{
	uint32_t g;

	if (r->role != RING_ROLE_PRODUCER || r->admin_fd < 0)
		return -EPERM;
	if (r->p_admin_closed)
		return -EPIPE;
	g = atomic_load_explicit(&r->hdr->slot_gen, memory_order_acquire);
	if (admin_drain(r))
		r->p_slot_gen = g;
	return r->p_admin_closed ? -EPIPE : 0;
}

int
ring_admin_pending(const struct ring *r)
{
	/* Relaxed: a hint; ring_admin_poll() loads it again with acquire. */
	return r->role == RING_ROLE_PRODUCER && r->admin_fd >= 0 &&
	       !r->p_admin_closed &&
	       atomic_load_explicit(&r->hdr->slot_gen, memory_order_relaxed) !=
	       r->p_slot_gen;
}

unsigned
ring_adopted(const struct ring *r)
{
	return r->p_nlive;
}

/* ---- wakeups ---- */

/* Does an adopted consumer say it is about to sleep on the current
 * wake_seq? Its sleep_seq holds RING_SLEEPING | the value it read; an
 * older value means it was woken since (or its wait fails at once). The
 * caller's seq_cst fence orders its head or state stores before these
 * loads (see wake_consumers). A consumer with a wake pipe that still
 * announces an older value did not wait: it announced itself before we
 * adopted it and a state change moved wake_seq on meanwhile (only
 * adopted consumers are poked). Its pipe is poked here; it drops the
 * announcement once it reads a record, so this is once per miss. */
static bool
sleeper(const struct ring *r)
{
	uint64_t want = RING_SLEEPING |
		atomic_load_explicit(&r->hdr->wake_seq, memory_order_relaxed);
	bool found = false;

	for (uint32_t k = 0; k < r->p_nlive; k++) {
		const struct pslot *s = &r->p_slots[r->p_live[k]];
		uint64_t v = atomic_load_explicit(&s->pg->sleep_seq,
						  memory_order_relaxed);

		if (v == want)
			found = true;
		else if (s->wfd >= 0 && (v & RING_SLEEPING))
			poke(s->wfd);
	}
	return found;
}

/* After wake_seq moved on from w: poke the wake pipe of every consumer
 * that said it sleeps on w. Only after the increment: a consumer that
 * re-arms once it was poked must arm on the new value, or the next check
 * would not count it as a sleeper. One that armed on the new value before
 * this scan re-checks head after arming and finds the records. */
static void
poke_sleepers(struct ring *r, uint32_t w)
{
	for (uint32_t k = 0; k < r->p_nlive; k++) {
		const struct pslot *s = &r->p_slots[r->p_live[k]];

		if (s->wfd >= 0 &&
		    atomic_load_explicit(&s->pg->sleep_seq,
					 memory_order_relaxed) ==
		    (RING_SLEEPING | w))
			poke(s->wfd);
	}
}

/* Wake consumers sleeping on wake_seq. The caller has stored head (for one
 * or, with wake batching, several records) or state. The seq_cst fence
 * orders every one of those stores before the loads of the consumers'
 * sleep_seq; a consumer stores sleep_seq (seq_cst) before re-loading head,
 * so either it sees the new head or we see its word (store-load Dekker
 * pairing; release/acquire alone would let both miss each other). Its word
 * names the wake_seq value it sleeps on, so once we bumped wake_seq later
 * checks skip the syscall until it sleeps again: one wake per sleep, not
 * one per record, and without the producer writing consumer pages. The
 * channel is checked after the fence too (the same pairing with the
 * broker's slot_gen increment): a consumer attached since is scanned. */
static void
wake_consumers(struct ring *r, bool always)
{
	uint32_t w;

	if (r->role == RING_ROLE_PRODUCER) {
		/* Every record published so far is covered by this check. */
		r->p_unwoken = 0;
		r->p_unwoken_at = r->p_head;
		r->p_unwoken_pad = 0;
	}
	atomic_thread_fence(memory_order_seq_cst);
	if (!always) {
		admin_check(r);
		if (!sleeper(r))
			return;
	}
	/* Release: a woken consumer that sees the new wake_seq also sees the
	 * head/state stored before it. */
	w = atomic_fetch_add_explicit(&r->hdr->wake_seq, 1,
				      memory_order_release);
	futex_wake(&r->hdr->wake_seq, INT_MAX);
	if (r->role == RING_ROLE_PRODUCER)
		poke_sleepers(r, w);
}

/* Wake batching: a publish only counts the record; the wake check above
 * runs once RING_WAKE_BATCH_RECS records or a 1/RING_WAKE_BATCH_DIV of the
 * ring have been published since the last one, or when the producer is
 * about to block (ring_flush). A consumer that catches up and sleeps after
 * every record would otherwise cost one FUTEX_WAKE per record, and a shared
 * futex wake is not cheap (it resolves the page of the word every time). */
static void
note_published(struct ring *r)
{
	if (++r->p_unwoken < RING_WAKE_BATCH_RECS &&
	    r->p_head - r->p_unwoken_at - r->p_unwoken_pad < r->p_wake_bytes)
		return;
	wake_consumers(r, false);
}

int
ring_flush(struct ring *r)
{
	if (r->role != RING_ROLE_PRODUCER)
		return -EPERM;
	if (r->p_head != r->p_unwoken_at)
		wake_consumers(r, false);
	return 0;
}

/* Wake a producer blocked for space on our page's futex word. */
static void
wake_producer(struct ring_page *pg)
{
	atomic_fetch_add_explicit(&pg->release_seq, 1, memory_order_release);
	futex_wake(&pg->release_seq, 1);
}

/* ---- producer ---- */

static struct ring_rec *
rec_at(const struct ring *r, uint64_t pos)
{
	return (struct ring_rec *)(r->area + pos % r->ds);
}

/* First record boundary >= need, walking the producer's private length
 * log from the current tail, then further on while the next boundary stays
 * <= more (reclaiming ahead; more <= need walks no further). *n is the
 * number of records walked. need and more are <= p_head, so the walk stays
 * among published records. */
static int
walk_tail(const struct ring *r, uint64_t need, uint64_t more, uint64_t *out,
	  uint64_t *n)
{
	uint64_t t = r->p_tail, len, i = 0;

	while (t < need || t < more) {
		if (i == r->p_lens_n)
			return -EBADMSG; /* cannot happen: head is logged */
		len = lens_at(r, i);
		if (t >= need && t + len > more)
			break;
		t += len;
		i++;
	}
	*out = t;
	*n = i;
	return 0;
}

/* ---- lag eviction ---- */

static struct lagcp *
cp_at(struct ring *r, uint32_t i)
{
	return &r->p_cp[(r->p_cp_first + i) % CP_MAX];
}

/* The producer starts waiting for room at now, for every cursor to pass
 * goal (RING_LAG_RECS records past what it needs). Checkpoints are kept in
 * order of position and time; one already past goal covers it (the room
 * was needed earlier). Two closer than lag/CP_SPACING_DIV in time are
 * merged by moving the newer one up to (goal, now): the records it covered
 * then count as needed later than they were, which only ever makes a lag
 * age smaller. At most CP_MAX are kept; the oldest go first, and what lies
 * below the oldest one left is then older than (CP_MAX - 2) spacings,
 * several times the timeout. */
static void
cp_note(struct ring *r, uint64_t goal, uint64_t now)
{
	uint64_t gap = (uint64_t)r->lag_ms * (1000000u / CP_SPACING_DIV);
	struct lagcp *c;

	while (r->p_cp_n > 0 && cp_at(r, 0)->pos <= r->p_tail) {
		r->p_cp_first = (r->p_cp_first + 1) % CP_MAX;
		r->p_cp_n--;
	}
	if (r->p_cp_n > 0 && goal <= cp_at(r, r->p_cp_n - 1)->pos)
		return;
	if (r->p_cp_n >= 2 && now - cp_at(r, r->p_cp_n - 2)->ns < gap) {
		c = cp_at(r, r->p_cp_n - 1);
		c->pos = goal;
		c->ns = now;
		return;
	}
	if (r->p_cp_n == CP_MAX) {
		r->p_cp_first = (r->p_cp_first + 1) % CP_MAX;
		r->p_cp_n--;
	}
	c = cp_at(r, r->p_cp_n++);
	c->pos = goal;
	c->ns = now;
}

/* How long the producer has been waiting for a cursor at pos to move on:
 * since the first checkpoint past pos (0 when none is). */
static uint64_t
lag_age(struct ring *r, uint64_t pos, uint64_t now)
{
	for (uint32_t i = 0; i < r->p_cp_n; i++) {
		const struct lagcp *c = cp_at(r, i);

		if (c->pos > pos)
			return now > c->ns ? now - c->ns : 0;
	}
	return 0;
}

/* The position RING_LAG_RECS records past t, the start of the n-th logged
 * record (capped at head). */
static uint64_t
lag_goal(const struct ring *r, uint64_t t, uint64_t n)
{
	for (uint32_t k = 0; k < RING_LAG_RECS && n + k < r->p_lens_n; k++)
		t += lens_at(r, n + k);
	return t;
}

/* Evict slot i: privately first, then published in hdr.evicted[] under the
 * consumer's attach id, so only that consumer reads it as its own; every
 * consumer is woken (the evicted one gets -ECONNRESET now). The slot stays
 * taken until the broker's DEL. */
static void
evict(struct ring *r, unsigned i)
{
	struct pslot *s = &r->p_slots[i];

	/* Release: a consumer that sees its id also sees everything we wrote
	 * before (nothing it needs; it stops reading). Stored before the
	 * poke: the consumer's poll loop wakes to read -ECONNRESET (the pipe
	 * write and read order the two). The pipe goes with the slot. */
	atomic_store_explicit(&r->hdr->evicted[i], s->id, memory_order_release);
	poke(s->wfd);
	unlive(r, i);
	s->state = PS_EVICTED;
	atomic_store_explicit(&r->hdr->evictions, ++r->p_evictions,
			      memory_order_relaxed);
	wake_consumers(r, true);
}

/* ---- the producer's view of the cursors ---- */

/* A consumer's cursor as we count it: the page's value (untrusted) capped
 * at head, taken only when above what we had (never lowered), and at
 * least lo. Acquire: pairs with the consumer's release store of pos, so
 * its reads of the bytes below pos are done before we overwrite them. */
static uint64_t
slot_pos(const struct ring *r, struct pslot *s, uint64_t lo)
{
	uint64_t p = atomic_load_explicit(&s->pg->pos, memory_order_acquire);

	if (p > r->p_head)
		p = r->p_head;
	if (p > s->pos)
		s->pos = p;
	if (s->pos < lo)
		s->pos = lo;
	return s->pos;
}

#define SCAN_LAG   1u  /* evict cursors below want past their lag age */
#define SCAN_QUIET 2u  /* no admin message (every page stays mapped) */

/* Recompute the reclaim limit: the lowest live cursor, or lo before
 * wait_consumers consumers were adopted. Also notes the slowest one in
 * p_blocker (-1: none holds us). Caches the result in p_limit. */
static uint64_t
scan_limit(struct ring *r, uint64_t lo, uint64_t want, unsigned flags,
	   uint64_t now)
{
	uint64_t limit = r->p_head, p, lag = (uint64_t)r->lag_ms * 1000000u;
	int blocker = -1;
	uint32_t k;

	if (!(flags & SCAN_QUIET))
		admin_check(r);
	if (!r->p_hold_done) {
		if (r->p_adopted < r->wait_consumers) {
			r->p_blocker = -1;
			return r->p_limit = lo;
		}
		r->p_hold_done = true;
	}
	for (k = 0; k < r->p_nlive;) {
		unsigned i = r->p_live[k];

		p = slot_pos(r, &r->p_slots[i], lo);
		if ((flags & SCAN_LAG) && p < want && lag_age(r, p, now) >= lag) {
			evict(r, i); /* takes p_live[k] out */
			continue;
		}
		if (p < limit) {
			limit = p;
			blocker = (int)i;
		}
		k++;
	}
	r->p_blocker = blocker;
	return r->p_limit = limit;
}

/* A reserve's timeout, turned into a deadline only if it has to wait: the
 * common case reads no clock. */
struct budget {
	int ms;
	bool set;
	bool waited;   /* had to wait for cursors (counted in producer_waits) */
	bool reclaim;  /* ring_reclaim: takes what is free, needs nothing */
	uint64_t deadline;
};

static uint64_t
budget_deadline(struct budget *b)
{
	if (!b->set) {
		b->deadline = b->ms == 0 ? 0 : deadline_after(b->ms);
		b->set = true;
	}
	return b->deadline;
}

/* Block until the cursors allow tail = t (the start of the n-th logged
 * record), or the deadline. Once we have to sleep, we sleep on the futex
 * word of the consumer holding us back (the slowest; with none, the
 * wait_consumers hold, on slot_gen, which the broker bumps for every new
 * consumer), and a consumer wakes us only when it is a sixteenth of the
 * ring past t (prod_want), so a producer faster than its consumers sleeps
 * once per batch of records rather than once per record. */
static int
wait_cursors(struct ring *r, uint64_t lo, uint64_t t, uint64_t n,
	     struct budget *b)
{
	uint64_t deadline = budget_deadline(b);
	_Atomic uint32_t *word;
	uint64_t goal = t + r->ds / 16, now;
	uint32_t seq;
	int ms, blocker;

	if (scan_limit(r, lo, t, 0, 0) >= t)
		return 0;
	/* We may sleep: consumers must see every record published so far, or
	 * one of them could sleep on data we have not woken it for while we
	 * wait for it to release space. */
	ring_flush(r);
	if (!b->waited) {
		b->waited = true;
		atomic_store_explicit(&r->hdr->producer_waits, ++r->p_waits,
				      memory_order_relaxed);
	}
	/* A reserve needs the room (ring_reclaim only takes what is free) */
	if (r->lag_ms != 0 && r->p_hold_done && !b->reclaim) {
		now = now_ns();
		cp_note(r, lag_goal(r, t, n), now);
		if (scan_limit(r, lo, t, SCAN_LAG, now) >= t)
			return 0;
	}
	blocker = r->p_blocker;
	if (blocker >= 0) {
		/* A read-only mapping: futex waits only read the word. */
		word = (_Atomic uint32_t *)&r->p_slots[blocker].pg->release_seq;
		/* Acquire: read the futex word before announcing ourselves,
		 * so a release that happens after our re-scan changes it and
		 * the futex call returns at once. */
		seq = atomic_load_explicit(word, memory_order_acquire);
	} else {
		word = &r->hdr->slot_gen;
		seq = r->p_slot_gen;
	}
	/* Relaxed stores, then a seq_cst fence before re-checking the
	 * channel and re-scanning: pairs with the consumer's pos store +
	 * seq_cst fence + load of prod_waiting (Dekker): either we see its
	 * new pos or it sees us waiting and bumps its word; and with the
	 * broker's slot_gen increment + tail load: either we see a new
	 * consumer's ADD or its bump of every page's word comes after our
	 * load of seq. The re-scan takes no message, so the page we sleep
	 * on stays mapped; a different slowest consumer means re-scanning
	 * rather than sleeping on a word it will not bump. */
	atomic_store_explicit(&r->hdr->prod_want,
			      goal < r->p_head ? goal : r->p_head,
			      memory_order_relaxed);
	atomic_store_explicit(&r->hdr->prod_waiting, 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&r->hdr->slot_gen, memory_order_relaxed) ==
	    r->p_slot_gen && scan_limit(r, lo, t, SCAN_QUIET, 0) < t &&
	    r->p_blocker == blocker) {
		ms = slice_until(deadline, RING_WAIT_SLICE_MS);
		if (ms == 0) {
			atomic_store_explicit(&r->hdr->prod_waiting, 0,
					      memory_order_relaxed);
			return deadline == 0 ? -EAGAIN : -ETIMEDOUT;
		}
		futex_wait(word, seq, ms);
	}
	/* Relaxed: only suppresses wakeups; a stale 1 costs a syscall. */
	atomic_store_explicit(&r->hdr->prod_waiting, 0, memory_order_relaxed);
	return 0;
}

/* Lossless: move tail to t (the start of the n-th logged record) once
 * every live cursor is at or past it. */
static int
reclaim_lossless(struct ring *r, uint64_t t, uint64_t n, struct budget *b)
{
	uint64_t lo = r->p_tail;
	int ret;

	for (;;) {
		if (t <= r->p_limit) {
			/* Store tail, then (seq_cst fence) check that no
			 * consumer was attached since the channel was last
			 * drained. The broker sends the ADD, increments
			 * slot_gen (seq_cst) and then re-loads tail, raising
			 * the new page's pos up to it: either it sees this
			 * tail or we see its increment, drain the channel
			 * and adopt the consumer before anything is
			 * overwritten. */
			atomic_store_explicit(&r->hdr->tail, t,
					      memory_order_relaxed);
			atomic_thread_fence(memory_order_seq_cst);
			if (atomic_load_explicit(&r->hdr->slot_gen,
					memory_order_relaxed) == r->p_slot_gen) {
				r->p_tail = t;
				return 0;
			}
		}
		if ((ret = wait_cursors(r, lo, t, n, b)) < 0)
			return ret;
	}
}
/* Live: advance tail past what will be overwritten, never waiting. */
static void
reclaim_live(struct ring *r, uint64_t t)
{
	/* Relaxed store then release fence, before any byte is overwritten
	 * (seqlock writer side): a consumer that reads an overwritten byte and
	 * then (acquire fence) loads tail is guaranteed to see this value or a
	 * later one, and so discards what it read. */
	atomic_store_explicit(&r->hdr->tail, t, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
	r->p_tail = t;
}

/* Make [p_head, end) writable: tail must reach end - ds. Lossless mode
 * reclaims ahead, up to 1/RING_WAKE_BATCH_DIV of the ring past that when the
 * cached limit already allows it (nothing a consumer still needs is
 * reclaimed), so the tail store and its fence run once per chunk rather
 * than once per record. Live mode reclaims only what it must: consumers
 * there may still read what lies behind the tail. */
static int
make_room(struct ring *r, uint64_t end, struct budget *b)
{
	uint64_t t, need, more = 0, n;
	int ret;

	if (end <= r->p_tail + r->ds)
		return 0;
	need = end - r->ds;
	if (r->mode == RING_MODE_LOSSLESS) {
		more = need + r->ds / RING_WAKE_BATCH_DIV;
		if (more > r->p_limit)
			more = r->p_limit;
	}
	if ((ret = walk_tail(r, need, more, &t, &n)) < 0)
		return ret;
	if (r->mode == RING_MODE_LIVE)
		reclaim_live(r, t);
	else if ((ret = reclaim_lossless(r, t, n, b)) < 0)
		return ret;
	lens_drop(r, n);
	return 0;
}

int
ring_reclaim(struct ring *r, uint64_t *tail)
{
	struct budget b = { .ms = 0, .reclaim = true };
	uint64_t t, n;
	int ret;

	if (r->role != RING_ROLE_PRODUCER)
		return -EPERM;
	if (r->mode == RING_MODE_LOSSLESS && r->p_tail < r->p_head) {
		/* The last record boundary every live cursor has passed
		 * (walk_tail from the tail, no further than the limit). */
		scan_limit(r, r->p_tail, r->p_head, 0, 0);
		if ((ret = walk_tail(r, r->p_tail, r->p_limit, &t, &n)) < 0)
			return ret;
		if (t > r->p_tail) {
			ret = reclaim_lossless(r, t, n, &b);
			if (ret == 0)
				lens_drop(r, n);
			else if (ret != -EAGAIN)
				return ret;
		}
	}
	*tail = r->p_tail;
	return 0;
}

uint64_t
ring_prod_tail(const struct ring *r)
{
	return r->p_tail;
}

static void
fill_rec(struct ring_rec *rec, uint64_t pos, uint64_t len, uint16_t type,
	 uint16_t flags, uint32_t meta_len, uint64_t payload_len, uint64_t seq)
{
	rec->magic = RING_REC_MAGIC;
	rec->type = type;
	rec->flags = flags;
	rec->pad = 0;
	rec->meta_len = meta_len;
	rec->pad2 = 0;
	rec->len = len;
	rec->seq = seq;
	rec->payload_len = payload_len;
	rec->pos = pos;
	rec->reserved[0] = rec->reserved[1] = 0;
}

/* Publish head = end. Release: the record bytes written before (header,
 * meta, payload) are visible to a consumer that acquires head. */
static void
publish_head(struct ring *r, uint64_t end)
{
	r->p_head = end;
	atomic_store_explicit(&r->hdr->head, end, memory_order_release);
}

/* Fill the rest of the area with a pad record, so the next record starts at
 * offset 0. Published on its own: a consumer caught up at p_head then moves
 * to the lap boundary, and the next record's room never includes it. */
static int
pad_to_end(struct ring *r, struct budget *b)
{
	uint64_t len = r->ds - r->p_head % r->ds;
	int ret;

	if ((ret = make_room(r, r->p_head + len, b)) < 0)
		return ret;
	lens_push(r, len);
	fill_rec(rec_at(r, r->p_head), r->p_head, len, RING_REC_PAD, 0, 0, 0,
		 r->p_seq);
	publish_head(r, r->p_head + len);
	/* A pad counts toward neither batch threshold (with early wraps it
	 * is most of a lap's bytes), but ring_flush() still wakes for it: a
	 * producer waiting for room may need a sleeping consumer to walk
	 * over it. */
	r->p_unwoken_pad += len;
	return 0;
}

/* Lossless: go back to the start of the area before its end, once
 * RING_WRAP_EARLY_AT bytes into it, when that needs no wait: every live
 * cursor has released the first len bytes of this lap, where the record
 * will go. Consumers that keep up then read, and the producer writes, a
 * few MiB that stay mapped and in cache instead of the whole ring: every
 * page costs each process a fault the first time it touches it, and the
 * lines of a record written a lap ago are long gone from the cache.
 * Consumers that fall behind have the rest of the ring as before: the
 * producer goes on past RING_WRAP_EARLY_AT whenever the start is in use.
 *
 * What stays retained for a consumer that attaches later shrinks to what
 * lies behind the head in the window, so the window also keeps the newest
 * sync record (a consumer starting at a keyframe finds one): it is at least
 * twice the record bytes between the last two sync records, and a wrap
 * that would reclaim the newest one is not made.
 *
 * A consumer that stalls right after an early wrap has only the window's
 * worth of room behind it, not the ring's: each time the producer has to
 * wait for room in a lap it began early, the window doubles (grow_window),
 * up to the whole ring, so consumers that need the ring's buffering get it
 * back after a few waits. With no consumer attached
 * (or before wait_consumers attached) nothing is wrapped early: the whole
 * ring stays history for the next one. A check that fails is not repeated
 * for RING_WRAP_EARLY_RETRY bytes (it may scan every slot). */
/* Every live cursor is at or past t: the cached limit while no consumer
 * was attached since the channel was drained, else a scan (which drains
 * it and refreshes the limit). */
static bool
cursors_past(struct ring *r, uint64_t t)
{
	if (t <= r->p_limit &&
	    atomic_load_explicit(&r->hdr->slot_gen,
				 memory_order_relaxed) == r->p_slot_gen)
		return true;
	return scan_limit(r, r->p_tail, t, 0, 0) >= t;
}

/* The caller has checked that the record fits before the end of the area. */
static bool
wrap_early(struct ring *r, uint64_t len)
{
	uint64_t off = r->p_head % r->ds, reuse;

	/* the common case, and the whole test when early wraps are off */
	if (off < r->p_wrap_at || off < 2 * r->p_gop ||
	    r->p_head < r->p_wrap_next)
		return false;
	reuse = r->p_head - off + len;
	/* the newest sync record, and what reclaim-ahead may take with the
	 * reused bytes (make_room), must lie past them */
	if (r->p_last_sync != UINT64_MAX &&
	    reuse + r->ds / RING_WAKE_BATCH_DIV > r->p_last_sync)
		goto no;
	if (!cursors_past(r, reuse) || r->p_nlive == 0)
		goto no;
	return true;
no:
	r->p_wrap_next = r->p_head + RING_WRAP_EARLY_RETRY;
	return false;
}

static void
grow_window(struct ring *r)
{
	if (r->p_wrapped == UINT64_MAX || r->p_head >= r->p_wrapped + r->ds ||
	    r->p_wrap_at >= r->ds)
		return;
	r->p_wrap_at = r->p_wrap_at >= r->ds / 2 ? r->ds : 2 * r->p_wrap_at;
	r->p_wrapped = UINT64_MAX;
}

int
ring_reserve(struct ring *r, uint32_t meta_len, uint64_t payload_len,
	     struct ring_wr *w, int timeout_ms)
{
	struct budget b = { .ms = timeout_ms };
	uint64_t len;
	uint8_t *p;
	int ret;

	if (r->role != RING_ROLE_PRODUCER)
		return -EPERM;
	if (payload_len > r->ds || meta_len > r->ds)
		return -EMSGSIZE;
	len = ALIGN_UP(sizeof(struct ring_rec) + ALIGN_UP(meta_len, 8) +
		       payload_len, RING_ALIGN);
	if (len > r->ds)
		return -EMSGSIZE;
	/* room to log a pad and this record (grows rarely; before anything
	 * is published, so a failure leaves the ring as it was) */
	if ((ret = lens_reserve(r, 2)) < 0)
		return ret;
	if (r->p_head % r->ds + len > r->ds) {
		if ((ret = pad_to_end(r, &b)) < 0)
			return ret;
	} else if (wrap_early(r, len)) {
		/* cannot wait: wrap_early saw the room free */
		if ((ret = pad_to_end(r, &b)) < 0)
			return ret;
		r->p_wrapped = r->p_head;
	}
	ret = make_room(r, r->p_head + len, &b);
	if (b.waited)
		grow_window(r);
	if (ret < 0)
		return ret;
	p = (uint8_t *)rec_at(r, r->p_head);
	w->pos = r->p_head;
	w->len = len;
	w->meta_len = meta_len;
	w->payload_len = payload_len;
	w->meta = p + sizeof(struct ring_rec);
	w->payload = p + sizeof(struct ring_rec) + ALIGN_UP(meta_len, 8);
	return 0;
}

int
ring_publish(struct ring *r, struct ring_wr *w, uint16_t type,
	     uint16_t flags)
{
	struct ring_hdr *h = r->hdr;

	if (r->role != RING_ROLE_PRODUCER)
		return -EPERM;
	if (w->pos != r->p_head || w->len > r->ds ||
	    w->pos + w->len > r->p_tail + r->ds ||
	    w->payload_len > w->len ||
	    sizeof(struct ring_rec) + ALIGN_UP((uint64_t)w->meta_len, 8) >
	    w->len - w->payload_len)
		return -EINVAL;
	if (type != RING_REC_PACKET && type != RING_REC_FRAME &&
	    type != RING_REC_TRACKS)
		return -EINVAL;
	fill_rec(rec_at(r, w->pos), w->pos, w->len, type, flags, w->meta_len,
		 w->payload_len, r->p_seq);
	lens_push(r, w->len);
	publish_head(r, w->pos + w->len);
	/* Release, after head: a consumer that jumps to last_sync finds the
	 * record already below head. */
	if (flags & RING_RF_SYNC) {
		if (r->p_last_sync != UINT64_MAX)
			r->p_gop = r->p_rec_bytes - r->p_sync_bytes;
		r->p_sync_bytes = r->p_rec_bytes;
		r->p_last_sync = w->pos;
		atomic_store_explicit(&h->last_sync, w->pos,
				      memory_order_release);
	}
	r->p_rec_bytes += w->len;
	/* Counters: relaxed, single writer, read only for display. */
	atomic_store_explicit(&h->next_seq, ++r->p_seq, memory_order_relaxed);
	if (type == RING_REC_PACKET)
		atomic_store_explicit(&h->packets, ++r->p_packets,
				      memory_order_relaxed);
	else if (type == RING_REC_FRAME)
		atomic_store_explicit(&h->frames, ++r->p_frames,
				      memory_order_relaxed);
	r->p_bytes += w->payload_len;
	atomic_store_explicit(&h->payload_bytes, r->p_bytes,
			      memory_order_relaxed);
	note_published(r);
	return 0;
}

struct ring_tracks *
ring_tracks_begin(struct ring *r)
{
	struct ring_tracks *t = (struct ring_tracks *)r->tracks;
	uint32_t g = atomic_load_explicit(&t->gen, memory_order_relaxed);

	/* Odd gen first, then a release fence before the table is written
	 * (seqlock writer): a reader that sees any new table byte and then
	 * re-loads gen after its acquire fence sees it changed. */
	atomic_store_explicit(&t->gen, g | 1u, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
	return t;
}

uint32_t
ring_tracks_end(struct ring *r)
{
	struct ring_tracks *t = (struct ring_tracks *)r->tracks;
	uint32_t g = atomic_load_explicit(&t->gen, memory_order_relaxed);

	g = (g | 1u) + 1u;
	/* Release: the table is complete before readers see an even gen. */
	atomic_store_explicit(&t->gen, g, memory_order_release);
	return g;
}

void
ring_set_state(struct ring *r, uint32_t state)
{
	/* Release: fields written before (tracks, status) are visible to a
	 * consumer that acquires the new state. */
	atomic_store_explicit(&r->hdr->state, state, memory_order_release);
	wake_consumers(r, true);
}

static void
set_msg(struct ring_hdr *h, const char *msg)
{
	if (msg == NULL)
		return;
	strncpy(h->end_msg, msg, RING_MSG_LEN - 1);
	h->end_msg[RING_MSG_LEN - 1] = '\0';
}

void
ring_set_worker_status(struct ring *r, uint32_t reason, int32_t averror,
		       const char *msg)
{
	/* Plain stores: published by the next state store (release). */
	r->hdr->worker_reason = reason;
	r->hdr->worker_averror = averror;
	set_msg(r->hdr, msg);
}

/* ---- consumer ---- */

/* Store the cursor in our page. Release: our reads of the bytes below it
 * are done before the producer (acquire load in slot_pos) may overwrite
 * them. */
static void
store_slot_pos(struct ring *r, uint64_t pos)
{
	atomic_store_explicit(&r->c_page->pos, pos, memory_order_release);
}

/* With holds: publish min(read position, floor) unless that is below what
 * was already published. Under c_lock. 1 if the cursor moved. */
static int
store_held_pos(struct ring *r, uint64_t pos)
{
	uint64_t t = pos < r->c_floor ? pos : r->c_floor;

	r->c_mirror = pos;
	if (t <= r->c_pub)
		return 0;
	r->c_pub = t;
	store_slot_pos(r, t);
	return 1;
}

/* Publish our cursor; returns the value the producer now sees. Relaxed
 * load of c_holds: only this thread turns it on (its first hold), and a
 * floor raised by another thread needs c_lock, which we then take too. */
static uint64_t
store_pos(struct ring *r)
{
	uint64_t pub;

	if (!atomic_load_explicit(&r->c_holds, memory_order_relaxed)) {
		store_slot_pos(r, r->c_pos);
		return r->c_pos;
	}
	pthread_mutex_lock(&r->c_lock);
	store_held_pos(r, r->c_pos);
	pub = r->c_pub;
	pthread_mutex_unlock(&r->c_lock);
	return pub;
}

/* In lossless mode, wake the producer if it waits for a cursor at or past
 * want. The seq_cst fence between our pos store and the prod_waiting load
 * pairs with the producer's prod_waiting store + fence + slot scan. A
 * producer waiting for room sleeps on the word of the consumer holding it
 * back, so bumping our own word wakes it exactly when that is us. */
static void
check_producer(struct ring *r, uint64_t pub, uint64_t want)
{
	if (r->mode == RING_MODE_LIVE)
		return; /* a live producer never waits */
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&r->hdr->prod_waiting, memory_order_relaxed) &&
	    pub >= want)
		wake_producer(r->c_page);
}

/* Publish our cursor and, in lossless mode, wake the producer if it waits
 * for us to get past prod_want. */
static void
publish_pos(struct ring *r)
{
	uint64_t pub = store_pos(r);

	r->c_checked_at = r->c_pos;
	r->c_unchecked = 0;
	check_producer(r, pub, atomic_load_explicit(&r->hdr->prod_want,
						    memory_order_relaxed));
}

void
ring_set_floor(struct ring *r, uint64_t floor)
{
	int moved;

	if (r->role != RING_ROLE_CONSUMER || r->slot < 0)
		return;
	pthread_mutex_lock(&r->c_lock);
	if (!atomic_load_explicit(&r->c_holds, memory_order_relaxed)) {
		/* First use, on the reading thread (only it adds holds):
		 * the plain stores published at most c_pos. */
		r->c_pub = r->c_pos;
		r->c_mirror = r->c_pos;
		atomic_store_explicit(&r->c_holds, true, memory_order_relaxed);
	}
	r->c_floor = floor;
	moved = store_held_pos(r, r->c_mirror);
	pthread_mutex_unlock(&r->c_lock);
	/* A freed hold is rare next to releases: wake a waiting producer
	 * whenever the cursor moved, not only past prod_want. */
	if (moved)
		check_producer(r, 0, 0);
}

/* After a release: the cursor store itself is cheap and always done; the
 * fence and the check for a waiting producer run once per batch (the same
 * thresholds as the producer's wake batching) and whenever we are about to
 * sleep (wait_data). A producer blocked for space asks to be woken only a
 * sixteenth of the ring later (prod_want), so checking every 1/32 of the
 * ring or RING_WAKE_BATCH_RECS records delays it by at most one batch. */
static void
released(struct ring *r)
{
	if (++r->c_unchecked < RING_WAKE_BATCH_RECS &&
	    r->c_pos - r->c_checked_at < r->ds / RING_WAKE_BATCH_DIV) {
		store_pos(r);
		return;
	}
	publish_pos(r);
}

/* Our cursor page, as the broker made it: a regular file of exactly
 * RING_PAGE_SIZE bytes sealed against resizing (so our mapping cannot be
 * made to fault), with the identity the broker wrote, copied once. */
static int
map_page_rw(struct ring *r, int fd)
{
	struct ring_page *pg;
	struct stat st;
	uint64_t magic;
	uint32_t abi, slot;
	int seals;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode) || st.st_size != (off_t)RING_PAGE_SIZE ||
	    (seals = fcntl(fd, F_GET_SEALS)) < 0 ||
	    (seals & PAGE_SEALS) != PAGE_SEALS)
		return -EPROTO;
	pg = mmap(NULL, RING_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
		  fd, 0);
	if (pg == MAP_FAILED)
		return -errno;
	magic = pg->magic;
	abi = pg->abi_version;
	slot = pg->slot;
	r->c_id = pg->id;
	if (magic != RING_PAGE_MAGIC || abi != RING_ABI_VERSION ||
	    slot >= r->nslots || r->c_id == 0) {
		munmap(pg, RING_PAGE_SIZE);
		return -EPROTO;
	}
	r->c_page = pg;
	r->slot = (int)slot;
	return 0;
}

/* Were we evicted? Our slot's entry holds our own attach id. Acquire:
 * pairs with the producer's release store in evict(). */
static bool
evicted(const struct ring *r)
{
	return atomic_load_explicit(&r->hdr->evicted[r->slot],
				    memory_order_acquire) == r->c_id;
}

int
ring_attach(struct ring *r, int page_fd, enum ring_start start)
{
	uint64_t h, t, p, ls;
	int i, ret;

	if (r->role != RING_ROLE_CONSUMER || r->slot >= 0)
		return -EINVAL;
	if ((ret = map_page_rw(r, page_fd)) < 0)
		return ret;
	ret = -EBADMSG;
	if (evicted(r)) {
		ret = -ECONNRESET;
		goto fail;
	}
	/* Acquire on tail, then head: tail <= head as the producer stores
	 * tail before the head that follows it. */
	t = atomic_load_explicit(&r->hdr->tail, memory_order_acquire);
	h = atomic_load_explicit(&r->hdr->head, memory_order_acquire);
	if (t > h || h - t > r->ds || t % RING_ALIGN || h % RING_ALIGN)
		goto fail;
	/* The broker set pos to the tail; forward only. */
	p = atomic_load_explicit(&r->c_page->pos, memory_order_relaxed);
	if (p < t || p > h || p % RING_ALIGN)
		p = t;
	if (start == RING_START_SYNC) {
		ls = atomic_load_explicit(&r->hdr->last_sync,
					  memory_order_acquire);
		if (ls != UINT64_MAX && ls >= p && ls < h &&
		    ls % RING_ALIGN == 0)
			p = ls;
	} else if (start == RING_START_LIVE) {
		p = h;
	}
	/* Store pos, seq_cst fence, re-load tail: if the producer reclaimed
	 * past p (it may not have adopted us yet: the broker's raise covers
	 * what it stored before our ADD was sent), we see its tail and move
	 * up to it; bounded as tail only grows. */
	for (i = 0; i < 1000; i++) {
		r->c_pos = p;
		store_pos(r);
		atomic_thread_fence(memory_order_seq_cst);
		t = atomic_load_explicit(&r->hdr->tail, memory_order_relaxed);
		if (t <= p)
			break;
		p = t;
	}
	if (i == 1000 || p % RING_ALIGN)
		goto fail;
	r->c_head = p;
	r->c_checked_at = p;
	r->c_unchecked = 0;
	r->c_need_sync = false;
	return 0;
fail:
	munmap(r->c_page, RING_PAGE_SIZE);
	r->c_page = NULL;
	r->slot = -1;
	return ret;
}

int
ring_slot(const struct ring *r)
{
	return r->slot;
}

/* Lapped (live mode): count it and jump to the newest sync record if it is
 * still retained, else to the tail and skip to the next sync record. */
static int
overrun(struct ring *r)
{
	uint64_t t, h, ls, np;

	t = atomic_load_explicit(&r->hdr->tail, memory_order_acquire);
	h = atomic_load_explicit(&r->hdr->head, memory_order_acquire);
	ls = atomic_load_explicit(&r->hdr->last_sync, memory_order_acquire);
	if (t <= r->c_pos || t > h || t % RING_ALIGN || h % RING_ALIGN)
		return -EBADMSG;
	np = t;
	if (ls != UINT64_MAX && ls >= t && ls < h && ls % RING_ALIGN == 0)
		np = ls;
	r->c_pos = np;
	r->c_head = h;
	r->c_need_sync = true;
	/* Relaxed: a statistic only this consumer writes. */
	atomic_store_explicit(&r->c_page->overruns, ++r->c_overruns,
			      memory_order_relaxed);
	store_pos(r);
	return -EOVERFLOW;
}

/* Load head into c_head. 1 if there is something to read. */
static int
refresh_head(struct ring *r)
{
	/* Acquire: pairs with the producer's release store of head, so the
	 * record bytes below it are visible. */
	uint64_t h = atomic_load_explicit(&r->hdr->head, memory_order_acquire);

	if (h < r->c_pos || h % RING_ALIGN)
		return -EBADMSG;
	if (h - r->c_pos > r->ds)
		return r->mode == RING_MODE_LIVE ? overrun(r) : -EBADMSG;
	r->c_head = h;
	return h != r->c_pos;
}

/* Has the record at pos possibly been overwritten? (seqlock reader: data
 * read before, acquire fence, then tail). */
static bool
reclaimed(const struct ring *r, uint64_t pos)
{
	atomic_thread_fence(memory_order_acquire);
	return atomic_load_explicit(&r->hdr->tail, memory_order_relaxed) > pos;
}

/* The record at c_pos failed a check. Lossless: if we were evicted the
 * producer may have reused the bytes, so that is what to report. */
static int
bad_rec(const struct ring *r)
{
	return evicted(r) ? -ECONNRESET : -EBADMSG;
}

/* Check the record at c_pos. 0: v filled; 1: skipped (pad, or not a sync
 * record while resyncing), call again; <0: error. */
static int
read_rec(struct ring *r, struct ring_rd *v)
{
	uint64_t pos = r->c_pos, off = pos % r->ds, room, mpad = 0;
	struct ring_rec rec;

	memcpy(&rec, r->area + off, sizeof(rec));
	/* Live: the header may be torn; decide on tail before trusting it.
	 * Lossless: our cursor protects the bytes, no shared load needed. */
	if (r->mode == RING_MODE_LIVE && reclaimed(r, pos))
		return overrun(r);
	if (rec.magic != RING_REC_MAGIC || rec.pos != pos ||
	    rec.len < RING_ALIGN || rec.len % RING_ALIGN ||
	    rec.len > r->c_head - pos || rec.len > r->ds - off ||
	    rec.type > RING_REC_TRACKS)
		return bad_rec(r);
	if (rec.type != RING_REC_PAD) {
		room = rec.len - sizeof(rec);
		mpad = ALIGN_UP((uint64_t)rec.meta_len, 8);
		if (mpad > room || rec.payload_len > room - mpad)
			return bad_rec(r);
	}
	if (rec.type == RING_REC_PAD ||
	    (r->c_need_sync && !(rec.flags & RING_RF_SYNC))) {
		r->c_pos = pos + rec.len; /* strictly forward, <= c_head */
		return 1;
	}
	r->c_need_sync = false;
	v->type = rec.type;
	v->flags = rec.flags;
	v->seq = rec.seq;
	v->meta = r->area + off + sizeof(rec);
	v->meta_len = rec.meta_len;
	v->payload = r->area + off + sizeof(rec) + mpad;
	v->payload_len = rec.payload_len;
	v->pos = pos;
	v->end = pos + rec.len;
	return 0;
}

/* Awake again (relaxed: a stale value only costs a spurious wake). */
static void
disarm(struct ring *r)
{
	atomic_store_explicit(&r->c_page->sleep_seq, 0, memory_order_relaxed);
	r->c_armed = false;
}

/* Anything new since we last looked: records, the end, our eviction? */
static bool
news(struct ring *r)
{
	const struct ring_hdr *h = r->hdr;

	return atomic_load_explicit(&h->head, memory_order_seq_cst) !=
	       r->c_pos ||
	       atomic_load_explicit(&h->state, memory_order_seq_cst) ==
	       RING_STATE_ENDED || evicted(r);
}

/* Nothing to read and no time to wait, with a wake pipe: empty the pipe,
 * then announce that we sleep on the current wake_seq exactly as a
 * blocking wait does, and stay announced after returning, so the producer
 * pokes the pipe at its next wake check (poke_sleepers). Emptied first:
 * a poke before the announcement is stale, one after it stays readable.
 * The re-check after the announcement is the same Dekker pairing as in
 * wait_data(), and the futex's own check: wake_seq must still be the
 * value we announced. 0 to re-check (something came meanwhile), -EAGAIN. */
static int
arm_wake(struct ring *r)
{
	char buf[64];
	uint32_t w;

	while (read(r->c_wfd, buf, sizeof(buf)) == (ssize_t)sizeof(buf))
		;
	w = atomic_load_explicit(&r->hdr->wake_seq, memory_order_acquire);
	atomic_store_explicit(&r->c_page->sleep_seq, RING_SLEEPING | w,
			      memory_order_seq_cst);
	r->c_armed = true;
	/* wake_seq moved meanwhile: its scan may have missed our word (a
	 * futex_wait would return at once for the same reason); announce
	 * again on the new value. */
	if (!news(r) && atomic_load_explicit(&r->hdr->wake_seq,
					     memory_order_seq_cst) == w)
		return -EAGAIN;
	disarm(r);
	return 0;
}

int
ring_set_wake_fd(struct ring *r, int fd)
{
	if (r->role != RING_ROLE_CONSUMER)
		return -EPERM;
	r->c_wfd = fd;
	return 0;
}

/* Nothing to read: -EPIPE if the stream ended, else sleep one slice on
 * wake_seq. 0 to re-check, <0 to return. */
static int
wait_data(struct ring *r, uint64_t deadline)
{
	struct ring_hdr *h = r->hdr;
	uint32_t w;
	int ms, ret = 0;

	/* Acquire: pairs with ring_set_end's release; then re-load head
	 * (refresh_head) for records published before the end. */
	if (atomic_load_explicit(&h->state, memory_order_acquire) ==
	    RING_STATE_ENDED) {
		ret = refresh_head(r);
		return ret < 0 ? ret : ret ? 0 : -EPIPE;
	}
	/* Make our cursor current and check for a waiting producer (pads
	 * skipped and releases not checked since the last batch): a producer
	 * must not wait for us while we sleep or poll. */
	publish_pos(r);
	if ((ms = slice_until(deadline, RING_WAIT_SLICE_MS)) == 0)
		return r->c_wfd >= 0 ? arm_wake(r) : -EAGAIN;
	/* Acquire: the futex word is read before we announce ourselves, so a
	 * publish after our re-check below changes it and futex_wait returns
	 * at once. */
	w = atomic_load_explicit(&h->wake_seq, memory_order_acquire);
	/* seq_cst store, then seq_cst re-load of head: Dekker pairing with
	 * the producer's head store + seq_cst fence + load of our sleep_seq.
	 * The value names the wake_seq we sleep on, so the producer wakes us
	 * once for it, not at every check while we are still asleep. */
	atomic_store_explicit(&r->c_page->sleep_seq, RING_SLEEPING | w,
			      memory_order_seq_cst);
	if (!news(r))
		futex_wait(&h->wake_seq, w, ms);
	disarm(r);
	return 0;
}

int
ring_next(struct ring *r, struct ring_rd *v, int timeout_ms)
{
	uint64_t deadline = timeout_ms == 0 ? 0 : deadline_after(timeout_ms);
	int ret;

	if (r->slot < 0)
		return -EINVAL;
	for (;;) {
		if (evicted(r))
			return -ECONNRESET;
		if (r->c_pos == r->c_head) {
			if ((ret = refresh_head(r)) < 0)
				return ret;
			if (ret == 0) {
				if ((ret = wait_data(r, deadline)) < 0)
					return ret;
				continue;
			}
		}
		if ((ret = read_rec(r, v)) != 1) {
			/* announced by an earlier -EAGAIN, now reading */
			if (r->c_armed)
				disarm(r);
			return ret;
		}
	}
}

int
ring_view_valid(const struct ring *r, const struct ring_rd *v)
{
	return reclaimed(r, v->pos) ? -EOVERFLOW : 0;
}

void
ring_release(struct ring *r, const struct ring_rd *v)
{
	if (r->slot < 0 || v->pos != r->c_pos || v->end <= v->pos ||
	    v->end > r->c_head)
		return;
	r->c_pos = v->end;
	released(r);
}

uint64_t
ring_overruns(const struct ring *r)
{
	return r->c_overruns;
}

int64_t
ring_tracks_copy(const struct ring *r, void *dst, size_t dst_size)
{
	const struct ring_tracks *t = (const struct ring_tracks *)r->tracks;
	const struct ring_tracks *d = dst;
	uint32_t g1, g2;
	int i;

	if (dst_size < r->tracks_size)
		return -EINVAL;
	for (i = 0; i < TRACKS_RETRIES; i++) {
		/* Acquire: the table written before this (even) gen. */
		g1 = atomic_load_explicit(&t->gen, memory_order_acquire);
		if (g1 & 1u)
			continue;
		memcpy(dst, t, r->tracks_size);
		/* Acquire fence then re-load: if the copy saw any byte of a
		 * later update, gen has changed (seqlock reader). */
		atomic_thread_fence(memory_order_acquire);
		g2 = atomic_load_explicit(&t->gen, memory_order_relaxed);
		if (g1 != g2)
			continue;
		if (d->count > RING_MAX_TRACKS ||
		    d->pool_used > RING_EXTRADATA_POOL)
			return -EBADMSG;
		return g1;
	}
	return -EAGAIN;
}

size_t
ring_tracks_size(const struct ring *r)
{
	return r->tracks_size;
}

/* ---- broker ---- */

/* A fresh cursor page: a new memfd (never one a consumer held before),
 * sealed against resizing, mapped read-write for the broker. *ro is a
 * read-only reopen for the producer, who thus cannot write the page. */
static int
page_new(struct ring_page **out, int *rw, int *ro)
{
	char path[64];
	void *m;
	int fd, ret;

	*rw = *ro = -1;
	fd = memfd_create("shmdemux-cursor", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, RING_PAGE_SIZE) < 0 ||
	    fcntl(fd, F_ADD_SEALS, PAGE_SEALS) < 0)
		goto fail;
	m = mmap(NULL, RING_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		 0);
	if (m == MAP_FAILED)
		goto fail;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	if ((*ro = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		ret = -errno;
		munmap(m, RING_PAGE_SIZE);
		close(fd);
		return ret;
	}
	*out = m;
	*rw = fd;
	return 0;
fail:
	ret = -errno;
	close(fd);
	return ret;
}

/* One message to the producer, with the page's fd for an ADD (and the
 * wake pipe's write end, wfd, when the consumer has one). Never blocks.
 * 0 sent, -EAGAIN the channel is full, -EPIPE the producer is gone
 * (nothing to tell), another -errno. */
static int
admin_send(struct ring *r, uint32_t op, unsigned slot, uint64_t id,
	   uint64_t start, int fd, int wfd)
{
	int fds[2] = { fd, wfd };
	int nfds = fd < 0 ? 0 : wfd < 0 ? 1 : 2;
	struct ring_admin_msg m = {
		.magic = RING_ADMIN_MAGIC, .op = op, .slot = slot, .id = id,
		.start = start,
	};
	struct iovec iov = { .iov_base = &m, .iov_len = sizeof(m) };
	union {
		char buf[CMSG_SPACE(2 * sizeof(int))];
		struct cmsghdr align;
	} cb;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *c;
	ssize_t n;

	if (r->admin_fd < 0 || r->a_dead)
		return -EPIPE;
	if (nfds > 0) {
		memset(&cb, 0, sizeof(cb));
		mh.msg_control = cb.buf;
		mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
		memcpy(CMSG_DATA(c), fds, nfds * sizeof(int));
	}
	do
		n = sendmsg(r->admin_fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n == (ssize_t)sizeof(m))
		return 0;
	if (n >= 0)
		return -EIO;
	if (errno == EAGAIN || errno == EWOULDBLOCK)
		return -EAGAIN;
	if (errno == EPIPE || errno == ECONNRESET || errno == ENOTCONN) {
		r->a_dead = true;
		return -EPIPE;
	}
	return -errno;
}

/* After messages went out and slot_gen was bumped: every page's futex
 * word, so a producer asleep on any of them, or in the wait_consumers hold
 * on slot_gen, wakes and takes them. */
static void
admin_wake(struct ring *r)
{
	for (unsigned i = 0; i < r->nslots; i++) {
		struct ring_page *pg = r->a_slots[i].pg;

		if (pg == NULL)
			continue;
		atomic_fetch_add_explicit(&pg->release_seq, 1,
					  memory_order_release);
		futex_wake(&pg->release_seq, 1);
	}
	futex_wake(&r->hdr->slot_gen, 1);
}

int
ring_slot_alloc(struct ring *r, pid_t pid, int *page_fd)
{
	return ring_slot_alloc_wake(r, pid, -1, page_fd);
}

int
ring_slot_alloc_wake(struct ring *r, pid_t pid, int wake_fd, int *page_fd)
{
	struct ring_page *pg = NULL;
	struct aslot *s = NULL;
	uint64_t t, p;
	unsigned i;
	int rw, ro, wfd = -1, ret;

	*page_fd = -1;
	if (r->role != RING_ROLE_ADMIN)
		return -EPERM;
	/* DELs go first: one still waiting means the channel is full. */
	if (ring_admin_flush(r) > 0)
		return -EAGAIN;
	for (i = 0; i < r->nslots && s == NULL; i++)
		if (r->a_slots[i].state == AS_FREE)
			s = &r->a_slots[i];
	if (s == NULL)
		return -EBUSY;
	i = (unsigned)(s - r->a_slots);
	if (wake_fd >= 0 && (wfd = fcntl(wake_fd, F_DUPFD_CLOEXEC, 0)) < 0)
		return -errno;
	if ((ret = page_new(&pg, &rw, &ro)) < 0) {
		close_wfd(&wfd);
		return ret;
	}
	/* The page's identity, before any fd leaves us. Acquire on tail:
	 * the position of a record boundary the producer published. */
	p = atomic_load_explicit(&r->hdr->tail, memory_order_acquire);
	pg->magic = RING_PAGE_MAGIC;
	pg->abi_version = RING_ABI_VERSION;
	pg->slot = i;
	pg->id = ++r->a_next_id;
	pg->pid = (int32_t)pid;
	atomic_store_explicit(&pg->pos, p, memory_order_relaxed);
	ret = admin_send(r, RING_ADMIN_ADD, i, pg->id, p, ro, wfd);
	close(ro);
	if (ret < 0 && ret != -EPIPE) {
		munmap(pg, RING_PAGE_SIZE);
		close(rw);
		close_wfd(&wfd);
		return ret;
	}
	s->pg = pg;
	s->wfd = wfd;
	s->id = pg->id;
	s->state = AS_USED;
	r->a_used++;
	/* seq_cst increment (after the send) then a seq_cst tail re-load, raising pos while the tail is past it: pairs with
	 * the producer's tail store + seq_cst fence + slot_gen load
	 * (reclaim_lossless). Either the producer drains our ADD before it
	 * overwrites anything, or we see the tail it stored and the consumer
	 * starts there. */
	atomic_fetch_add_explicit(&r->hdr->slot_gen, 1, memory_order_seq_cst);
	/* Bounded: the tail is the worker's word, and a worker gone wrong
	 * must not keep us here; the consumer raises its cursor to the tail
	 * at attach as well. */
	for (int k = 0; k < 64; k++) {
		t = atomic_load_explicit(&r->hdr->tail, memory_order_seq_cst);
		if (t <= p)
			break;
		p = t;
		atomic_store_explicit(&pg->pos, p, memory_order_seq_cst);
	}
	admin_wake(r);
	*page_fd = rw;
	return (int)i;
}

int
ring_admin_flush(struct ring *r)
{
	bool sent = false;
	int ret;

	if (r->role != RING_ROLE_ADMIN)
		return 0;
	for (unsigned i = 0; i < r->nslots && r->a_pending > 0; i++) {
		struct aslot *s = &r->a_slots[i];

		if (s->state != AS_DEL)
			continue;
		ret = admin_send(r, RING_ADMIN_DEL, i, s->id, 0, -1, -1);
		if (ret == -EAGAIN)
			break;
		/* Sent, or nobody left to tell (or an error the channel will
		 * not recover from: the producer then keeps a consumer that
		 * left until its lag age evicts it). */
		s->state = AS_FREE;
		r->a_pending--;
		r->a_used--;
		sent = true;
	}
	if (sent) {
		/* seq_cst: after the sends (the producer's acquire load
		 * finds the messages in the channel). Wake the producer while
		 * the pages are still mapped here, then let go of those whose
		 * DEL went out. */
		atomic_fetch_add_explicit(&r->hdr->slot_gen, 1,
					  memory_order_seq_cst);
		admin_wake(r);
		for (unsigned i = 0; i < r->nslots; i++) {
			struct aslot *s = &r->a_slots[i];

			if (s->state == AS_FREE && s->pg != NULL) {
				munmap(s->pg, RING_PAGE_SIZE);
				s->pg = NULL;
			}
		}
	}
	return (int)r->a_pending;
}

int
ring_slot_free(struct ring *r, unsigned slot)
{
	if (r->role != RING_ROLE_ADMIN || slot >= r->nslots ||
	    r->a_slots[slot].state != AS_USED)
		return r->role == RING_ROLE_ADMIN ? (int)r->a_pending : 0;
	r->a_slots[slot].state = AS_DEL;
	close_wfd(&r->a_slots[slot].wfd);
	r->a_pending++;
	return ring_admin_flush(r);
}

void
ring_set_end(struct ring *r, uint32_t reason, int32_t exit_code, int32_t sig,
	     int32_t averror, const char *msg)
{
	struct ring_hdr *h = r->hdr;

	if (r->role == RING_ROLE_CONSUMER)
		return;
	h->end_reason = reason;
	h->end_exit_code = exit_code;
	h->end_signal = sig;
	h->end_averror = averror;
	set_msg(h, msg);
	/* Release: the end_* fields are final before ENDED is seen. */
	atomic_store_explicit(&h->state, RING_STATE_ENDED,
			      memory_order_release);
	wake_consumers(r, true);
	/* The producer is gone: the broker pokes every wake pipe itself. */
	for (unsigned i = 0; r->a_slots != NULL && i < r->nslots; i++)
		poke(r->a_slots[i].wfd);
}

void
ring_stats(const struct ring *r, struct ring_stats *st)
{
	const struct ring_hdr *h = r->hdr;
	uint64_t o, pos;

	/* Relaxed everywhere: a display snapshot, not a consistent cut. */
	memset(st, 0, sizeof(*st));
	st->records = atomic_load_explicit(&h->next_seq, memory_order_relaxed);
	st->bytes = atomic_load_explicit(&h->payload_bytes,
					 memory_order_relaxed);
	st->head = atomic_load_explicit(&h->head, memory_order_relaxed);
	st->tail = atomic_load_explicit(&h->tail, memory_order_relaxed);
	if (st->tail <= st->head && st->head - st->tail <= r->ds)
		st->fill_permille = (uint32_t)((st->head - st->tail) * 1000 /
					       r->ds);
	st->consumers = r->role == RING_ROLE_ADMIN ? r->a_used : 0;
	/* A consumer writes its own overruns: each is taken as at most the
	 * records published (a lap loses one at least), the sum saturates. */
	for (unsigned i = 0; r->a_slots != NULL && i < r->nslots; i++) {
		if (r->a_slots[i].state != AS_USED)
			continue;
		/* a reader's own word: only ever read as a distance, from
		 * the head back at most one ring */
		pos = atomic_load_explicit(&r->a_slots[i].pg->pos,
					   memory_order_relaxed);
		if (pos <= st->head && st->head - pos > st->lag_bytes)
			st->lag_bytes = st->head - pos > r->ds ? r->ds :
				st->head - pos;
		o = atomic_load_explicit(&r->a_slots[i].pg->overruns,
					 memory_order_relaxed);
		if (o > st->records)
			o = st->records;
		st->overruns = st->overruns + o < st->overruns ? UINT64_MAX :
			st->overruns + o;
	}
	st->evictions = atomic_load_explicit(&h->evictions,
					     memory_order_relaxed);
	st->producer_waits = atomic_load_explicit(&h->producer_waits,
						  memory_order_relaxed);
	st->state = atomic_load_explicit(&h->state, memory_order_relaxed);
	st->reason = h->end_reason;
}
