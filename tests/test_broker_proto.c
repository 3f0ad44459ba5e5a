/*
 * test_broker_proto.c - the control socket under hostile clients: garbage,
 * truncated, oversized and wrong-version messages, reply types sent as
 * requests, unexpected fds, invalid OPEN/ATTACH fields, clients that vanish,
 * many connections at once. The broker must answer every time, stay up,
 * and hold no more descriptors afterwards than before.
 *
 * usage: test_broker_proto SHMDEMUXD FAKECHILD
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "broker_testlib.h"

static struct tl_broker b;

static void
still_answers(void)
{
	struct ctl_stream_info info[8];
	int fd = tl_connect(b.sock);

	CHECK(fd >= 0);
	CHECK(tl_list(fd, info, 8) >= 0);
	close(fd);
}

/* Send raw bytes; expect CTL_ERROR with code, or the connection closed. */
static void
expect_error(const void *buf, size_t len, const int *fds, int nfds,
	     int code)
{
	union ctl_msg rep;
	int fd = tl_connect(b.sock), t;

	CHECK(fd >= 0);
	if (len > CTL_MAX_MSG) {
		/* ctl_send refuses these; a hostile client would not. */
		int rf[CTL_MAX_FDS], nr;
		ssize_t r;

		CHECK(send(fd, buf, len, MSG_NOSIGNAL) == (ssize_t)len);
		r = tl_recv(fd, &rep, rf, &nr);
		t = r > 0 ? rep.hdr.type : r == 0 ? -ECONNRESET : (int)r;
	} else {
		t = tl_request(fd, buf, len, fds, nfds, &rep, NULL);
	}
	if (t == CTL_ERROR) {
		if (code != 0 && rep.error.code != code) {
			fprintf(stderr, "got %d (%s), expected %d\n",
				rep.error.code, rep.error.msg, code);
			CHECK(0);
		}
	} else {
		CHECK(t == -ECONNRESET);
	}
	close(fd);
	still_answers();
}

static void
test_framing(void)
{
	union ctl_msg m;
	char big[CTL_MAX_MSG + 512];
	struct ctl_list l;

	memset(big, 0xa5, sizeof(big));
	expect_error(big, 100, NULL, 0, -EBADMSG);          /* garbage */
	expect_error(big, sizeof(big), NULL, 0, -EMSGSIZE); /* oversized */

	/* A header claiming OPEN, without the body. */
	memset(&m, 0, sizeof(m));
	ctl_hdr_init(&m.hdr, CTL_OPEN, 1);
	expect_error(&m, sizeof(struct ctl_hdr), NULL, 0, -EBADMSG);
	/* Exact size but a length field that lies. */
	m.hdr.len = 20;
	expect_error(&m, sizeof(struct ctl_open), NULL, 0, -EBADMSG);

	memset(&l, 0, sizeof(l));
	ctl_hdr_init(&l.hdr, CTL_LIST, 1);
	l.hdr.version = CTL_VERSION + 1;
	expect_error(&l, sizeof(l), NULL, 0, -EPROTO);
	memset(&l, 0, sizeof(l));
	ctl_hdr_init(&l.hdr, CTL_LIST, 1);
	l.hdr.magic ^= 1;
	expect_error(&l, sizeof(l), NULL, 0, -EBADMSG);
	ctl_hdr_init(&l.hdr, 999, 1);
	l.hdr.len = sizeof(l);
	expect_error(&l, sizeof(l), NULL, 0, -EBADMSG);

	/* A reply type sent as a request. */
	memset(&m, 0, sizeof(m));
	ctl_hdr_init(&m.hdr, CTL_OK, 1);
	expect_error(&m, sizeof(struct ctl_ok), NULL, 0, -EBADMSG);

	/* Strings without a NUL. */
	memset(&m, 'x', sizeof(m));
	ctl_hdr_init(&m.hdr, CTL_ATTACH, 1);
	expect_error(&m, sizeof(struct ctl_attach), NULL, 0, -EBADMSG);
}

static void
test_fds(void)
{
	struct ctl_list l;
	union ctl_msg rep;
	int p[2], fd, fds[2], rfds[CTL_MAX_FDS], nr;

	CHECK(pipe(p) == 0);
	fds[0] = p[0];
	fds[1] = p[1];
	/* LIST does not take fds: they must be closed, not kept. */
	fd = tl_connect(b.sock);
	CHECK(fd >= 0);
	memset(&l, 0, sizeof(l));
	ctl_hdr_init(&l.hdr, CTL_LIST, 3);
	for (int i = 0; i < 50; i++) {
		CHECK(ctl_send(fd, &l, sizeof(l), fds, 2) == 0);
		do {
			CHECK(tl_recv(fd, &rep, rfds, &nr) > 0);
			CHECK(nr == 0);
		} while (rep.hdr.type != CTL_LIST_END);
	}
	close(fd);
	/* Garbage with fds attached. */
	expect_error("garbage", 7, fds, 2, -EBADMSG);
	close(p[0]);
	close(p[1]);
}

static void
test_open_fields(void)
{
	struct ctl_open o;
	char err[CTL_MSG_LEN];
	int fd = tl_connect(b.sock);

	CHECK(fd >= 0);
	tl_open_init(&o, CTL_SRC_PATH, "/nonexistent/file.mkv", "eof");
	CHECK(tl_open(fd, &o, -1, NULL, err, sizeof(err)) == -ENOENT);
	CHECK(strcmp(err, "cannot open /nonexistent/file.mkv: "
		     "No such file or directory") == 0);

	tl_open_init(&o, CTL_SRC_PATH, "/", "eof");
	CHECK(tl_open(fd, &o, -1, NULL, err, sizeof(err)) == -EISDIR);

	tl_open_init(&o, CTL_SRC_FD, "", "eof");
	CHECK(tl_open(fd, &o, -1, NULL, err, sizeof(err)) == -EBADF);

	tl_open_init(&o, 42, "", "eof");
	CHECK(tl_open(fd, &o, -1, NULL, err, sizeof(err)) == -EINVAL);

	tl_open_init(&o, CTL_SRC_PUSH, "", "eof");
	o.mode = 7;
	CHECK(tl_open(fd, &o, -1, NULL, err, sizeof(err)) == -EINVAL);

	tl_open_init(&o, CTL_SRC_PUSH, "", "eof");
	o.ring_size = 4096;
	CHECK(tl_open(fd, &o, -1, NULL, err, sizeof(err)) == -ERANGE);
	o.ring_size = UINT64_C(1) << 40;
	CHECK(tl_open(fd, &o, -1, NULL, err, sizeof(err)) == -ERANGE);

	tl_open_init(&o, CTL_SRC_PUSH, "", "eof");
	snprintf(o.name, sizeof(o.name), "bad/name");
	CHECK(tl_open(fd, &o, -1, NULL, err, sizeof(err)) == -EINVAL);
	snprintf(o.name, sizeof(o.name), "123");
	CHECK(tl_open(fd, &o, -1, NULL, err, sizeof(err)) == -EINVAL);

	tl_open_init(&o, CTL_SRC_PUSH, "", "--help");
	CHECK(tl_open(fd, &o, -1, NULL, err, sizeof(err)) == -EINVAL);

	tl_open_init(&o, CTL_SRC_PUSH, "", "eof");
	memcpy(o.opts, "=v\0", 3);
	o.opts_len = 3;
	CHECK(tl_open(fd, &o, -1, NULL, err, sizeof(err)) == -EINVAL);

	/* one demuxer option more than the protocol allows */
	tl_open_init(&o, CTL_SRC_PUSH, "", "eof");
	for (int i = 0; i <= CTL_MAX_OPTS; i++)
		o.opts_len += (uint32_t)snprintf(o.opts + o.opts_len,
		    sizeof(o.opts) - o.opts_len, "k%d=v", i) + 1;
	CHECK(o.opts_len < sizeof(o.opts));
	CHECK(tl_open(fd, &o, -1, NULL, err, sizeof(err)) == -EINVAL);
	CHECK(strstr(err, "at most 64") != NULL);

	tl_open_init(&o, CTL_SRC_PUSH, "", "eof");
	o.probesize = -1;
	CHECK(tl_open(fd, &o, -1, NULL, err, sizeof(err)) == -EINVAL);

	tl_open_init(&o, CTL_SRC_PUSH, "", "eof");
	o.wait_consumers = 100000;
	CHECK(tl_open(fd, &o, -1, NULL, err, sizeof(err)) == -ERANGE);
	close(fd);
}

static void
test_refs(void)
{
	struct ctl_close c;
	union ctl_msg rep;
	int fd = tl_connect(b.sock), fds[2];

	CHECK(fd >= 0);
	CHECK(tl_simple(fd, CTL_CLOSE, 12345) == -ENOENT);
	CHECK(tl_simple(fd, CTL_KILL, 12345) == -ENOENT);
	CHECK(tl_attach(fd, 12345, 0, fds, NULL) == -ENOENT);
	memset(&c, 0, sizeof(c));
	ctl_hdr_init(&c.hdr, CTL_CLOSE, 5);
	snprintf(c.ref.name, sizeof(c.ref.name), "nosuchname");
	CHECK(tl_request(fd, &c, sizeof(c), NULL, 0, &rep, NULL) == CTL_ERROR);
	CHECK(rep.error.code == -ENOENT && rep.hdr.id == 5);
	CHECK(strstr(rep.error.msg, "nosuchname") != NULL);
	close(fd);
}

static void
test_connections(void)
{
	static int many[300];
	struct ctl_list l;
	int fd;

	/* Connect and vanish, with and without a half-sent request. */
	memset(&l, 0, sizeof(l));
	ctl_hdr_init(&l.hdr, CTL_LIST, 1);
	for (int i = 0; i < 200; i++) {
		fd = tl_connect(b.sock);
		CHECK(fd >= 0);
		if (i % 2)
			CHECK(ctl_send(fd, &l, sizeof(l), NULL, 0) == 0);
		close(fd);
	}
	still_answers();

	/* A zero-length datagram. */
	fd = tl_connect(b.sock);
	CHECK(fd >= 0);
	CHECK(send(fd, "", 0, 0) == 0);
	close(fd);

	/* A stream of invalid requests ends in a closed connection. */
	fd = tl_connect(b.sock);
	CHECK(fd >= 0);
	for (int i = 0; i < 40; i++)
		if (send(fd, "junk", 4, MSG_NOSIGNAL) < 0)
			break;
	close(fd);

	for (size_t i = 0; i < sizeof(many) / sizeof(*many); i++) {
		many[i] = tl_connect(b.sock);
		CHECK(many[i] >= 0);
	}
	still_answers();
	for (size_t i = 0; i < sizeof(many) / sizeof(*many); i++)
		close(many[i]);
	still_answers();
}

int
main(int argc, char **argv)
{
	int fds_before, fds_after;
	uint64_t deadline;

	if (argc != 3) {
		fprintf(stderr, "usage: test_broker_proto SHMDEMUXD FAKECHILD\n");
		return 2;
	}
	tl_init(argv[1], 60);
	CHECK(tl_broker_start(&b, "s", argv[2], NULL) == 0);
	/* The fork server and the child it keeps ahead of the next stream
	 * (a pidfd each) are part of the baseline. */
	CHECK(tl_fork_waiting(&b, tl_fork_server(&b, 20000), 20000) > 0);
	/* The connection still_answers() used may not be closed on the
	 * broker's side yet when we count: take the smallest of a few counts
	 * as the baseline. */
	fds_before = -1;
	for (int i = 0; i < 5; i++) {
		int n;

		still_answers();
		n = tl_count_fds(b.pid);
		if (fds_before < 0 || n < fds_before)
			fds_before = n;
	}

	test_framing();
	test_fds();
	test_open_fields();
	test_refs();
	test_connections();

	/* Closed connections are noticed in the broker's own time, and a
	 * sanitizer build's runtime holds a descriptor of its own now and
	 * then: round trips until the count is back, for up to 5 s. A
	 * leaked descriptor never comes back. */
	deadline = now_ms() + 5000;
	do {
		still_answers();
		fds_after = tl_count_fds(b.pid);
	} while (fds_after > fds_before && now_ms() < deadline);
	if (fds_after > fds_before) {
		char cmd[64];

		fprintf(stderr, "broker fds: %d before, %d after\n",
			fds_before, fds_after);
		snprintf(cmd, sizeof(cmd), "ls -l /proc/%d/fd >&2", (int)b.pid);
		(void)!system(cmd);
		CHECK(0);
	}
	CHECK(tl_broker_stop(&b) == 0);
	tl_check_shm();
	printf("test_broker_proto: ok\n");
	return 0;
}
