/*
 * fuzz_ctl.c - libFuzzer target for the broker's request intake: the bytes
 * and descriptors a client can put on the control socket, as the broker
 * reads them (ctl_recv(), which calls ctl_validate()).
 *
 * Input: byte 0 picks how many descriptors ride along (0..4, more than the
 * protocol accepts), the rest is the datagram. Each run sends it over a
 * SOCK_SEQPACKET socketpair and checks what the broker relies on:
 *   - a message accepted has exactly its type's size, a known request or
 *     reply type, and NUL-terminated strings;
 *   - at most CTL_MAX_FDS descriptors come back, none on a rejected
 *     message, and none is leaked: the lowest free descriptor is the same
 *     before and after every run.
 * ctl_validate() is also called directly on the raw bytes, which need not
 * survive the socket unchanged (an empty datagram, for one).
 *
 * Built with clang -fsanitize=fuzzer,address (tests/CMakeLists.txt).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int sv[2] = { -1, -1 };
static int devnull = -1;
static int lowest_free = -1;

static int
setup(void)
{
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -1;
	devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (devnull < 0)
		return -1;
	lowest_free = dup(devnull);
	if (lowest_free < 0)
		return -1;
	close(lowest_free);
	return 0;
}

/* What an accepted message promises the broker's dispatch. */
static void
check_accepted(const union ctl_msg *m, size_t n)
{
	if (n < sizeof(struct ctl_hdr) || ctl_msg_size(m->hdr.type) != n ||
	    m->hdr.len != n || m->hdr.magic != CTL_MAGIC)
		abort();
	switch (m->hdr.type) {
	case CTL_OPEN:
		if (!ctl_str_ok(m->open.name, sizeof(m->open.name)) ||
		    !ctl_str_ok(m->open.format, sizeof(m->open.format)) ||
		    !ctl_str_ok(m->open.path, sizeof(m->open.path)) ||
		    !ctl_str_ok(m->open.format_whitelist,
				sizeof(m->open.format_whitelist)) ||
		    m->open.opts_len > sizeof(m->open.opts))
			abort();
		break;
	case CTL_ATTACH:
		if (!ctl_str_ok(m->attach.ref.name, sizeof(m->attach.ref.name)))
			abort();
		break;
	case CTL_CLOSE:
	case CTL_KILL:
		if (!ctl_str_ok(m->close.ref.name, sizeof(m->close.ref.name)))
			abort();
		break;
	default:
		break;
	}
}

static void
send_raw(const uint8_t *msg, size_t len, int nfds)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * 4)];
	} cbuf;
	struct iovec iov = { .iov_base = (void *)msg, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *c;
	int fds[4];

	if (nfds > 0) {
		for (int i = 0; i < nfds; i++)
			fds[i] = devnull;
		memset(&cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
	}
	if (sendmsg(sv[0], &mh, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static union {
		union ctl_msg m;
		char raw[CTL_MAX_MSG];
	} buf;
	int fds[CTL_MAX_FDS], nfds, probe;
	ssize_t n;

	if (sv[0] < 0 && setup() < 0)
		abort();
	if (size < 1 || size - 1 > CTL_MAX_MSG)
		return 0;
	/* Receivers hand ctl_validate() an aligned buffer, as here. */
	memcpy(buf.raw, data + 1, size - 1);
	if (ctl_validate(buf.raw, size - 1) == 0)
		check_accepted(&buf.m, size - 1);

	send_raw(data + 1, size - 1, data[0] % 5);
	n = ctl_recv(sv[1], &buf, fds, &nfds);
	if (nfds < 0 || nfds > CTL_MAX_FDS || (n <= 0 && nfds != 0))
		abort();
	if (n > 0) {
		if ((size_t)n != size - 1)
			abort();
		check_accepted(&buf.m, (size_t)n);
	} else if (n != 0 && n != -EBADMSG && n != -EPROTO) {
		abort();
	}
	for (int i = 0; i < nfds; i++)
		close(fds[i]);
	/* Every descriptor that came in is closed by now. */
	probe = dup(devnull);
	if (probe != lowest_free)
		abort();
	close(probe);
	return 0;
}
