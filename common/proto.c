/*
 * proto.c - control protocol framing: exact-size validation, fd passing.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proto.h"
#include "ring_layout.h"

size_t
ctl_msg_size(uint16_t type)
{
	switch (type) {
	case CTL_OPEN:		return sizeof(struct ctl_open);
	case CTL_ATTACH:	return sizeof(struct ctl_attach);
	case CTL_LIST:		return sizeof(struct ctl_list);
	case CTL_CLOSE:		return sizeof(struct ctl_close);
	case CTL_KILL:		return sizeof(struct ctl_close);
	case CTL_PUSH_END:	return sizeof(struct ctl_push_end);
	case CTL_QUIT_IDLE:	return sizeof(struct ctl_quit_idle);
	case CTL_OK:		return sizeof(struct ctl_ok);
	case CTL_ERROR:		return sizeof(struct ctl_error);
	case CTL_OPENED:	return sizeof(struct ctl_opened);
	case CTL_ATTACHED:	return sizeof(struct ctl_attached);
	case CTL_STREAM_INFO:	return sizeof(struct ctl_stream_info);
	case CTL_LIST_END:	return sizeof(struct ctl_list_end);
	default:		return 0;
	}
}

void
ctl_hdr_init(struct ctl_hdr *h, uint16_t type, uint32_t id)
{
	h->magic = CTL_MAGIC;
	h->version = CTL_VERSION;
	h->type = type;
	h->len = (uint32_t)ctl_msg_size(type);
	h->id = id;
}

int
ctl_str_ok(const char *s, size_t cap)
{
	return memchr(s, '\0', cap) != NULL;
}

static int
ref_ok(const struct ctl_ref *r)
{
	return ctl_str_ok(r->name, sizeof(r->name));
}

int
ctl_validate(const void *buf, size_t n)
{
	struct ctl_hdr h;
	const union ctl_msg *m = buf;
	size_t want;

	if (n < sizeof(h))
		return -EBADMSG;
	memcpy(&h, buf, sizeof(h));
	if (h.magic != CTL_MAGIC)
		return -EBADMSG;
	if (h.version != CTL_VERSION)
		return -EPROTO;
	want = ctl_msg_size(h.type);
	if (want == 0 || h.len != want || n != want)
		return -EBADMSG;

	switch (h.type) {
	case CTL_OPEN:
		if (!ctl_str_ok(m->open.name, sizeof(m->open.name)) ||
		    !ctl_str_ok(m->open.format, sizeof(m->open.format)) ||
		    !ctl_str_ok(m->open.path, sizeof(m->open.path)) ||
		    !ctl_str_ok(m->open.format_whitelist,
				sizeof(m->open.format_whitelist)) ||
		    m->open.opts_len > sizeof(m->open.opts))
			return -EBADMSG;
		/* options are NUL-terminated k=v strings filling opts_len */
		if (m->open.opts_len > 0 &&
		    m->open.opts[m->open.opts_len - 1] != '\0')
			return -EBADMSG;
		break;
	case CTL_ATTACH:
		if (!ref_ok(&m->attach.ref))
			return -EBADMSG;
		break;
	case CTL_CLOSE:
	case CTL_KILL:
		if (!ref_ok(&m->close.ref))
			return -EBADMSG;
		break;
	case CTL_ERROR:
		if (!ctl_str_ok(m->error.msg, sizeof(m->error.msg)))
			return -EBADMSG;
		break;
	case CTL_LIST:
		if ((m->list.flags & ~CTL_LIST_ENDED) != 0 || m->list.pad != 0)
			return -EBADMSG;
		break;
	case CTL_STREAM_INFO:
		if (!ctl_str_ok(m->info.name, sizeof(m->info.name)) ||
		    !ctl_str_ok(m->info.source, sizeof(m->info.source)) ||
		    !ctl_str_ok(m->info.end_msg, sizeof(m->info.end_msg)))
			return -EBADMSG;
		break;
	default:
		break;
	}
	return 0;
}

int
ctl_peer_version(const void *buf, size_t n)
{
	struct ctl_hdr h;

	if (n < sizeof(h))
		return -1;
	memcpy(&h, buf, sizeof(h));
	return h.magic == CTL_MAGIC ? h.version : -1;
}

int
ctl_send(int sock, const void *msg, size_t len, const int *fds, int nfds)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * CTL_MAX_FDS)];
	} cbuf;
	struct iovec iov = { .iov_base = (void *)msg, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;

	if (nfds < 0 || nfds > CTL_MAX_FDS || len > CTL_MAX_MSG)
		return -EINVAL;
	if (nfds > 0) {
		struct cmsghdr *c;

		memset(&cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
	}
	do
		n = sendmsg(sock, &mh, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if ((size_t)n != len)
		return -EMSGSIZE;
	return 0;
}

int
ctl_take_fds(struct msghdr *mh, int *fds, int max, int *bad)
{
	int n = 0;

	*bad = 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c != NULL;
	     c = CMSG_NXTHDR(mh, c)) {
		size_t k;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
		    c->cmsg_len < CMSG_LEN(0)) {
			*bad = 1;
			continue;
		}
		k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(fd));
			if (n < max)
				fds[n++] = fd;
			else
				close(fd);
		}
	}
	return n;
}

ssize_t
ctl_recv(int sock, void *buf, int *fds, int *nfds)
{
	union {
		struct cmsghdr align;
		/* room for more than we accept, so extras are seen and closed */
		char buf[CMSG_SPACE(sizeof(int) * 16)];
	} cbuf;
	struct iovec iov = { .iov_base = buf, .iov_len = CTL_MAX_MSG };
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cbuf.buf, .msg_controllen = sizeof(cbuf.buf),
	};
	int got, bad, err;
	ssize_t n;

	for (int i = 0; i < CTL_MAX_FDS; i++)
		fds[i] = -1;
	*nfds = 0;
	do
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;

	/* Collect fds; anything beyond CTL_MAX_FDS is closed so a hostile
	 * peer cannot make us leak descriptors (other control messages carry
	 * none). */
	got = ctl_take_fds(&mh, fds, CTL_MAX_FDS, &bad);
	*nfds = got;

	err = 0;
	if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))
		err = -EMSGSIZE;
	else if (n > 0)
		err = ctl_validate(buf, (size_t)n);
	/* An empty datagram reads as end of stream, yet a peer can attach
	 * descriptors to it: close them, or each one leaks. */
	if (err < 0 || n == 0) {
		for (int i = 0; i < got; i++) {
			close(fds[i]);
			fds[i] = -1;
		}
		*nfds = 0;
		return err;
	}
	return n;
}

const char *
sd_state_name(uint32_t state)
{
	switch (state) {
	case RING_STATE_STARTING:	return "starting";
	case RING_STATE_OPENING:	return "opening";
	case RING_STATE_RUNNING:	return "running";
	case RING_STATE_ENDED:		return "ended";
	default:			return "unknown";
	}
}

const char *
sd_end_reason_name(uint32_t reason)
{
	static const char *const names[SD_END_MAX] = {
		[SD_END_NONE] = "none",
		[SD_END_EOF] = "eof",
		[SD_END_OPEN_FAILED] = "open-failed",
		[SD_END_DEMUX_ERROR] = "demux-error",
		[SD_END_CRASHED] = "crashed",
		[SD_END_SANDBOX] = "sandbox",
		[SD_END_MEMORY] = "memory-limit",
		[SD_END_WATCHDOG] = "watchdog",
		[SD_END_KILLED] = "killed",
		[SD_END_CLOSED] = "closed",
		[SD_END_EXITED] = "exited",
		[SD_END_INPUT_ERROR] = "input-error",
		[SD_END_RING_ERROR] = "ring-error",
		[SD_END_EXEC_FAILED] = "exec-failed",
		[SD_END_SPOOL_LIMIT] = "spool-limit",
	};

	if (reason >= SD_END_MAX || names[reason] == NULL)
		return "unknown";
	return names[reason];
}
