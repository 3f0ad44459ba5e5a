/*
 * ring_map.c - mapping a ring's data segment and validating its header:
 * every role maps it here (ring_map), with the protections of its role,
 * and every later access uses the copies check_hdr() made. See ring.h for
 * the API, ring_internal.h for how the ring's files divide the work and
 * docs/RING.md for the layout.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "ring_internal.h"

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
	r->admin_fd = role == RING_ROLE_CONSUMER ? -1 : admin_fd;
	ring_cons_init(r);
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
	if (role == RING_ROLE_PRODUCER && (ret = ring_prod_init(r)) < 0)
		goto out;
	if (role == RING_ROLE_ADMIN && (ret = ring_admin_init(r)) < 0)
		goto out;
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

	if (rp == NULL || (r = *rp) == NULL)
		return;
	if (r->dmap)
		munmap(r->dmap, r->dlen);
	ring_prod_free(r);
	ring_admin_free(r);
	ring_cons_free(r);
	free(r);
	*rp = NULL;
}

const struct ring_hdr *
ring_hdr(const struct ring *r)
{
	return r->hdr;
}

const void *
ring_pool(const struct ring *r, uint64_t *size)
{
	*size = r->ps;
	return r->pool;
}

uint64_t
ring_data_size(const struct ring *r)
{
	return r->ds;
}

uint32_t
ring_mode(const struct ring *r)
{
	return r->mode;
}

uint32_t
ring_state(const struct ring *r)
{
	/* Acquire: pairs with every release store of the state (producer's
	 * ring_set_state, broker's ring_set_end). */
	return atomic_load_explicit(&r->hdr->state, memory_order_acquire);
}

void
ring_status(const struct ring *r, struct ring_status *st)
{
	const struct ring_hdr *h = r->hdr;

	memset(st, 0, sizeof(*st));
	st->state = ring_state(r);
	st->worker_pid = h->worker_pid;
	/* Relaxed: counters for display, written by the producer alone. */
	st->packets = atomic_load_explicit(&h->packets, memory_order_relaxed);
	st->frames = atomic_load_explicit(&h->frames, memory_order_relaxed);
	st->payload_bytes = atomic_load_explicit(&h->payload_bytes,
						 memory_order_relaxed);
	st->decode_errors = atomic_load_explicit(&h->decode_errors,
						 memory_order_relaxed);
	st->frames_pooled = atomic_load_explicit(&h->frames_pooled,
						 memory_order_relaxed);
	st->frames_copied = atomic_load_explicit(&h->frames_copied,
						 memory_order_relaxed);
	st->end_exit_code = -1;
	st->end_syscall = -1;
	if (st->state != RING_STATE_ENDED)
		return;
	/* Final: stored before ENDED, which the acquire above saw. */
	st->end_reason = h->end_reason;
	st->end_exit_code = h->end_exit_code;
	st->end_signal = h->end_signal;
	st->end_averror = h->end_averror;
	st->end_syscall = h->end_syscall;
	memcpy(st->end_msg, h->end_msg, sizeof(st->end_msg) - 1);
	st->end_msg[sizeof(st->end_msg) - 1] = '\0';
}
