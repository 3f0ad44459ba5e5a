/*
 * ring_admin.c - the broker's side of a ring: it creates the data segment
 * (ring_create), makes each consumer's cursor page and tells the producer
 * about it over the admin channel (ring_slot_alloc, ring_slot_free), writes
 * the final status (ring_set_end) and reads the counters for `ls`
 * (ring_stats). See ring_admin.h for the API and docs/RING.md, "New
 * consumers", for the protocol.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include "futex.h"
#include "ring_admin.h"
#include "ring_internal.h"

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

int
ring_admin_init(struct ring *r)
{
	if ((r->a_slots = calloc(r->nslots, sizeof(*r->a_slots))) == NULL)
		return -ENOMEM;
	for (uint32_t i = 0; i < r->nslots; i++)
		r->a_slots[i].wfd = -1;
	return 0;
}

void
ring_admin_free(struct ring *r)
{
	for (unsigned i = 0; r->a_slots != NULL && i < r->nslots; i++) {
		if (r->a_slots[i].pg != NULL)
			munmap(r->a_slots[i].pg, RING_PAGE_SIZE);
		close_wfd(&r->a_slots[i].wfd);
	}
	free(r->a_slots);
	r->a_slots = NULL;
}

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
	ring_wake_consumers(r, true);
	/* The producer is gone: the broker pokes every wake pipe itself. */
	for (unsigned i = 0; r->a_slots != NULL && i < r->nslots; i++)
		poke(r->a_slots[i].wfd);
}

void
ring_set_end_syscall(struct ring *r, int32_t nr)
{
	/* Plain store: published by ring_set_end()'s release. */
	if (r->role == RING_ROLE_ADMIN)
		r->hdr->end_syscall = nr;
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
