/*
 * static_link_clash.c - a program with functions of its own named like
 * libshmdemux's internal ones (ring_map, conn_open, ctl_send), linked
 * statically against libshmdemux.a. It must link (no "multiple
 * definition"), its calls must reach its own functions, and the library's
 * must reach the library's: it reads a whole stream through the public API.
 *
 *   static_link_clash               check the names only
 *   static_link_clash SOCKET ID     also read stream ID to its end; prints
 *                                   the number of packets read
 *
 * Run by tests/test_static_link.sh.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <shmdemux.h>

#include "check.h"

/* The program's own functions, with signatures of their own. */
int ring_map(int x);
const char *conn_open(void);
long ctl_send(long a, long b);

int
ring_map(int x)
{
	return x * 3 + 1;
}

const char *
conn_open(void)
{
	return "the program's conn_open";
}

long
ctl_send(long a, long b)
{
	return a - b;
}

int
main(int argc, char **argv)
{
	shmdemux_conn *c;
	shmdemux_stream *s;
	struct shmdemux_packet p;
	long n = 0;
	int ret;

	CHECK(ring_map(4) == 13);
	CHECK(strcmp(conn_open(), "the program's conn_open") == 0);
	CHECK(ctl_send(10, 3) == 7);
	CHECK(shmdemux_abi_version() == SHMDEMUX_ABI_VERSION);
	CHECK(shmdemux_version() != NULL && shmdemux_version()[0] != '\0');
	CHECK(shmdemux_strerror(SHMDEMUX_EOF) != NULL);
	if (argc == 1) {
		printf("0 %s\n", shmdemux_version());
		return 0;
	}
	CHECK(argc == 3);
	ret = shmdemux_connect(&c, argv[1], 0);
	if (ret < 0) {
		fprintf(stderr, "connect: %s\n", shmdemux_strerror(ret));
		return 1;
	}
	ret = shmdemux_attach(c, (uint32_t)strtoul(argv[2], NULL, 10), NULL,
	    SHMDEMUX_START_OLDEST, 0, &s);
	if (ret < 0) {
		fprintf(stderr, "attach: %s\n", shmdemux_strerror(ret));
		shmdemux_disconnect(&c);
		return 1;
	}
	while ((ret = shmdemux_read(s, &p, 10000)) >= 0)
		n += ret == 0;
	/* The library's own functions were used throughout; ours are intact. */
	CHECK(ring_map(4) == 13);
	printf("%ld %s\n", n, shmdemux_version());
	shmdemux_detach(&s);
	shmdemux_disconnect(&c);
	if (ret != SHMDEMUX_EOF) {
		fprintf(stderr, "read: %s\n", shmdemux_strerror(ret));
		return 1;
	}
	return 0;
}
