/*
 * test_pollfd.c - a stream driven by a poll loop (shmdemux_stream_fd).
 *
 * usage: test_pollfd SHMDEMUXD WORKER BIN_DIR MEDIA_DIR FFPROBE_PACKETS CASE
 *   CASE: epoll   one epoll loop feeds a push stream and reads it through
 *                 the stream's fd: exactly ffprobe's packets, and almost
 *                 every wake-up brings something (no busy loop), with a
 *                 spare worker and with a worker exec'd for the stream
 *         worker  the worker SIGKILLed while the reader waits: the fd
 *                 becomes readable and the read returns SHMDEMUX_ECRASHED
 *         broker  the broker SIGKILLed while the reader waits: the fd
 *                 becomes readable within a bound and the read returns
 *                 SHMDEMUX_EBROKER
 *         attach  ATTACH carrying a descriptor (a pipe, a memfd, an
 *                 eventfd) is refused, so is a polling observer; a polling
 *                 reader gets the read end of a pipe the broker made,
 *                 readable at first, that it cannot write
 *
 * Every wait is an epoll_wait on an event, bounded by a timeout that only
 * a failure reaches; every process and file goes at exit (broker_testlib).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "broker_testlib.h"
#include "client_testlib.h"
#include "pktcsv.h"
#include "shmdemux.h"

/* far above any wait that succeeds; only a failure reaches it */
#define WAIT_MS 20000
#define CHUNK 4096
/* Wake-ups with nothing to read: the state changes (opening, running),
 * pads, the end; never one per record. */
#define EMPTY_SLACK 16

static struct tl_media_env env;

static const char *const exec_opt[] = { "--spare-workers", "0", NULL };

static void
media(char *out, size_t cap, const char *name)
{
	tl_media_path(out, cap, env.media, name);
}

/* ffprobe's packets of file, read as a pipe (as the worker reads a push
 * stream) or not, one CSV line each. */
static void
reference(const char *file, int piped, struct tl_text *t)
{
	char cmd[2048], buf[4096];
	size_t n;
	FILE *f;

	snprintf(cmd, sizeof(cmd), "'%s' %s '%s'", env.ffprobe_packets,
		 piped ? "- <" : "", file);
	f = popen(cmd, "r");
	CHECK(f != NULL);
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		tl_text_append(t, buf, n);
	CHECK(pclose(f) == 0);
	CHECK(t->len > 0);
}

static void
csv_line(struct tl_text *t, const struct shmdemux_packet *p)
{
	char line[512];
	int n = sd_pkt_csv(line, sizeof(line) - 1, p->track, p->pts, p->dts,
			   p->duration, p->flags, p->data, p->size);

	CHECK(n > 0);
	line[n++] = '\n';
	tl_text_append(t, line, (size_t)n);
}

struct reader {
	shmdemux_stream *s;
	struct tl_text got;
	long records, wakes, empty;
	int end;               /* the code that ended the reading, 0 before */
};

/* Read until -EAGAIN or an end; after one wake-up. */
static void
drain(struct reader *r)
{
	struct shmdemux_packet p;
	int ret, n = 0;

	r->wakes++;
	while ((ret = shmdemux_read(r->s, &p, 0)) == 0) {
		csv_line(&r->got, &p);
		r->records++;
		n++;
	}
	if (n == 0 && ret == -EAGAIN)
		r->empty++;
	if (ret != -EAGAIN)
		r->end = ret;
}

static void
attach_poll(shmdemux_conn *c, uint32_t id, struct reader *r)
{
	int ret;

	memset(r, 0, sizeof(*r));
	ret = shmdemux_attach(c, id, NULL, SHMDEMUX_START_OLDEST,
			      SHMDEMUX_ATTACH_POLL, &r->s);
	if (ret != 0)
		fprintf(stderr, "attach: %d %s\n", ret,
			shmdemux_conn_last_error(c));
	CHECK(ret == 0);
	CHECK(shmdemux_stream_fd(r->s) >= 0);
}

/* One epoll loop: the push fd while there is input left (EPOLLOUT), the
 * stream's fd until the stream ended. paced: the broker opens the file
 * and publishes at the media's pace instead, so the reader sleeps before
 * almost every record. */
static void
pump(const char *file, const char *sock, int paced)
{
	struct epoll_event ev, evs[4];
	struct tl_text want = { 0 };
	struct shmdemux_open_opts o;
	shmdemux_conn *c = NULL;
	struct reader r;
	uint32_t id;
	int ep, in = -1, push = -1, sfd;
	char buf[CHUNK];
	ssize_t n = 1;

	reference(file, !paced, &want);
	CHECK(shmdemux_connect(&c, sock, 0) == 0);
	shmdemux_open_opts_init(&o);
	o.realtime = paced;
	if (paced) {
		id = tl_open_path(c, file, &o);
	} else {
		CHECK(shmdemux_open_push(c, NULL, &id, &push) == 0);
		CHECK(fcntl(push, F_SETFL, fcntl(push, F_GETFL) |
			    O_NONBLOCK) == 0);
		CHECK((in = open(file, O_RDONLY | O_CLOEXEC)) >= 0);
	}
	attach_poll(c, id, &r);
	sfd = shmdemux_stream_fd(r.s);
	CHECK((ep = epoll_create1(EPOLL_CLOEXEC)) >= 0);
	ev.events = EPOLLIN;
	ev.data.fd = sfd;
	CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev) == 0);
	ev.events = EPOLLOUT;
	ev.data.fd = push;
	CHECK(paced || epoll_ctl(ep, EPOLL_CTL_ADD, push, &ev) == 0);
	while (r.end == 0) {
		int k = epoll_wait(ep, evs, 4, WAIT_MS);

		CHECK(k > 0);
		for (int i = 0; i < k; i++) {
			if (evs[i].data.fd == sfd) {
				drain(&r);
				continue;
			}
			/* small chunks: the reader sleeps between records */
			n = read(in, buf, sizeof(buf));
			CHECK(n >= 0);
			if (n > 0) {
				CHECK(write(push, buf, (size_t)n) == n);
				continue;
			}
			CHECK(epoll_ctl(ep, EPOLL_CTL_DEL, push, NULL) == 0);
			CHECK(shmdemux_push_end(c, id, &push) == 0);
		}
	}
	printf("%s (%s): %ld records, %ld wake-ups, %ld with nothing to "
	       "read\n", file, paced ? "paced" : "pushed", r.records, r.wakes,
	       r.empty);
	if (paced)
		CHECK(r.wakes > r.records / 4); /* it did sleep */
	CHECK(r.end == SHMDEMUX_EOF);
	CHECK(r.got.len == want.len && memcmp(r.got.buf, want.buf,
					      want.len) == 0);
	CHECK(r.wakes <= r.records + EMPTY_SLACK);
	CHECK(r.empty <= EMPTY_SLACK);
	close(ep);
	if (in >= 0)
		close(in);
	shmdemux_detach(&r.s);
	shmdemux_disconnect(&c);
	free(want.buf);
	free(r.got.buf);
}

static void
test_epoll(void)
{
	struct tl_broker b;
	char file[1024];

	media(file, sizeof(file), "h264_aac.mkv");
	CHECK(tl_broker_start(&b, "spare", env.worker, NULL) == 0);
	pump(file, b.sock, 0);
	pump(file, b.sock, 1);
	CHECK(tl_broker_stop(&b) == 0);
	CHECK(tl_broker_start(&b, "exec", env.worker, exec_opt) == 0);
	pump(file, b.sock, 0);
	pump(file, b.sock, 1);
	CHECK(tl_broker_stop(&b) == 0);
}

/* Wait until the stream's fd is readable; the time it took in ms. */
static double
wait_readable(int fd)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };
	double t0 = (double)now_ns() / 1e6;
	int ep = epoll_create1(EPOLL_CLOEXEC);

	CHECK(ep >= 0 && epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == 0);
	CHECK(epoll_wait(ep, &ev, 1, WAIT_MS) == 1);
	close(ep);
	return (double)now_ns() / 1e6 - t0;
}

/* A push stream with half the file in, read until -EAGAIN: the reader
 * waits on its fd for more. */
static void
half_stream(const char *sock, shmdemux_conn **c, int *push, struct reader *r)
{
	char file[1024], buf[CHUNK];
	uint32_t id;
	off_t half;
	int in;

	media(file, sizeof(file), "h264_aac.mkv");
	CHECK((in = open(file, O_RDONLY | O_CLOEXEC)) >= 0);
	half = lseek(in, 0, SEEK_END) / 2;
	CHECK(lseek(in, 0, SEEK_SET) == 0);
	CHECK(shmdemux_connect(c, sock, 0) == 0);
	CHECK(shmdemux_open_push(*c, NULL, &id, push) == 0);
	attach_poll(*c, id, r);
	for (off_t done = 0; done < half;) {
		ssize_t n = read(in, buf, sizeof(buf));

		CHECK(n > 0 && write(*push, buf, (size_t)n) == n);
		done += n;
	}
	close(in);
	/* records come, then the reader is left waiting */
	while (r->records == 0 && r->end == 0) {
		wait_readable(shmdemux_stream_fd(r->s));
		drain(r);
	}
	CHECK(r->end == 0);
}

/* Read after the fd woke us: whatever records were left, then the end. */
static int
read_end(struct reader *r)
{
	while (r->end == 0) {
		wait_readable(shmdemux_stream_fd(r->s));
		drain(r);
	}
	return r->end;
}

static void
test_worker(void)
{
	struct shmdemux_status st;
	struct tl_broker b;
	shmdemux_conn *c = NULL;
	struct reader r;
	int push = -1;

	CHECK(tl_broker_start(&b, "w", env.worker, NULL) == 0);
	half_stream(b.sock, &c, &push, &r);
	CHECK(shmdemux_status(r.s, &st) == 0 && st.worker_pid > 0);
	CHECK(kill(st.worker_pid, SIGKILL) == 0);
	CHECK(read_end(&r) == SHMDEMUX_ECRASHED);
	CHECK(shmdemux_status(r.s, &st) == 0 && st.signal == SIGKILL);
	close(push);
	shmdemux_detach(&r.s);
	shmdemux_disconnect(&c);
	free(r.got.buf);
	CHECK(tl_broker_stop(&b) == 0);
}

static void
test_broker(void)
{
	struct tl_broker b;
	shmdemux_conn *c = NULL;
	struct reader r;
	double ms;
	int push = -1;

	CHECK(tl_broker_start(&b, "b", env.worker, NULL) == 0);
	half_stream(b.sock, &c, &push, &r);
	CHECK(kill(b.pid, SIGKILL) == 0);
	ms = wait_readable(shmdemux_stream_fd(r.s));
	printf("readable %.1f ms after the broker's SIGKILL\n", ms);
	CHECK(ms < 5000);
	CHECK(read_end(&r) == SHMDEMUX_EBROKER);
	CHECK(tl_wait_child(b.pid, WAIT_MS) >= 0);
	close(push);
	shmdemux_detach(&r.s);
	shmdemux_disconnect(&c);
	free(r.got.buf);
}

/* ATTACH with fds (each refused, and the connection still works), then
 * the right way. */
static void
test_attach(void)
{
	struct ctl_attached att;
	struct tl_broker b;
	shmdemux_conn *c = NULL;
	struct ctl_attach a;
	union ctl_msg rep;
	char file[1024], byte;
	int fd, p[2], mfd, efd, fds[CTL_MAX_FDS], fl;
	uint32_t id;
	struct stat sb;

	media(file, sizeof(file), "h264_aac.mkv");
	CHECK(tl_broker_start(&b, "a", env.worker, NULL) == 0);
	CHECK(shmdemux_connect(&c, b.sock, 0) == 0);
	id = tl_open_path(c, file, NULL);
	CHECK((fd = tl_connect(b.sock)) >= 0);
	CHECK(pipe2(p, O_CLOEXEC | O_NONBLOCK) == 0);
	CHECK((mfd = memfd_create("hostile", MFD_CLOEXEC)) >= 0);
	CHECK((efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) >= 0);
	memset(&a, 0, sizeof(a));
	ctl_hdr_init(&a.hdr, CTL_ATTACH, 1);
	a.ref.stream_id = id;
	a.start = RING_START_OLDEST;
	a.flags = CTL_ATTACH_WAKE;
	{
		const int offer[4] = { p[0], p[1], mfd, efd };

		for (int i = 0; i < 4; i++) {
			CHECK(tl_request(fd, &a, sizeof(a), &offer[i], 1, &rep,
					 NULL) == CTL_ERROR);
			CHECK(rep.error.code == -EINVAL);
		}
	}
	a.flags = 0;
	CHECK(tl_request(fd, &a, sizeof(a), &p[1], 1, &rep, NULL) ==
	      CTL_ERROR && rep.error.code == -EINVAL);
	/* nothing was written to what we offered */
	CHECK(read(p[0], &byte, 1) < 0 && errno == EAGAIN);
	CHECK(tl_attach(fd, id, CTL_ATTACH_WAKE | CTL_ATTACH_OBSERVER, fds,
			NULL) == -EINVAL);
	CHECK(tl_attach_all(fd, id, CTL_ATTACH_WAKE, fds, &att) >= 0);
	CHECK(fds[0] >= 0 && fds[1] >= 0 && fds[2] >= 0);
	/* a pipe's read end, readable at first (so a reader's first poll
	 * leads to its first read) */
	CHECK(fstat(fds[2], &sb) == 0 && S_ISFIFO(sb.st_mode));
	CHECK((fl = fcntl(fds[2], F_GETFL)) >= 0 &&
	      (fl & O_ACCMODE) == O_RDONLY);
	CHECK(write(fds[2], "x", 1) < 0 && errno == EBADF);
	CHECK(read(fds[2], &byte, 1) == 1);
	for (int i = 0; i < 3; i++)
		close(fds[i]);
	close(fd);
	close(p[0]);
	close(p[1]);
	close(mfd);
	close(efd);
	shmdemux_disconnect(&c);
	CHECK(tl_broker_stop(&b) == 0);
}

int
main(int argc, char **argv)
{
	static const struct tl_case cases[] = {
		{ "epoll", test_epoll },
		{ "worker", test_worker },
		{ "broker", test_broker },
		{ "attach", test_attach },
		{ NULL, NULL },
	};

	setvbuf(stdout, NULL, _IOLBF, 0);
	return tl_media_main(argc, argv, "h264_aac.mkv", 150, cases, &env);
}
