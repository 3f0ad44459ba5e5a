/*
 * gen_ctl_seeds.c - seed corpus for fuzz_ctl: one valid message of every
 * kind a client sends (and the replies), each prefixed with the count of
 * descriptors fuzz_ctl attaches to it.
 *
 *   gen_ctl_seeds DIR
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "proto.h"

static int
put(const char *dir, const char *name, int nfds, const void *msg, size_t len)
{
	char path[4096];
	unsigned char pre = (unsigned char)nfds;
	FILE *f;
	int ok;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wbe");
	if (f == NULL)
		return -errno;
	ok = fwrite(&pre, 1, 1, f) == 1 && fwrite(msg, 1, len, f) == len;
	return fclose(f) == 0 && ok ? 0 : -EIO;
}

static int
opens(const char *dir)
{
	static struct ctl_open o;
	static const char opts[] = "fflags=+genpts\0probesize=1000";
	int ret;

	memset(&o, 0, sizeof(o));
	ctl_hdr_init(&o.hdr, CTL_OPEN, 1);
	o.source = CTL_SRC_PATH;
	o.wait_consumers = UINT32_MAX;
	snprintf(o.path, sizeof(o.path), "/tmp/media.mkv");
	ret = put(dir, "open-path", 0, &o, sizeof(o));
	o.source = CTL_SRC_FD;
	o.mode = 1;
	o.flags = CTL_OPEN_NOSEEK | CTL_OPEN_REALTIME;
	snprintf(o.name, sizeof(o.name), "cam");
	snprintf(o.format, sizeof(o.format), "mpegts");
	memcpy(o.opts, opts, sizeof(opts));
	o.opts_len = sizeof(opts);
	ret |= put(dir, "open-fd", 1, &o, sizeof(o));
	o.source = CTL_SRC_PUSH;
	o.decode = CTL_DECODE_VIDEO | CTL_DECODE_AUDIO;
	snprintf(o.format_whitelist, sizeof(o.format_whitelist), "mov,matroska");
	ret |= put(dir, "open-push", 0, &o, sizeof(o));
	return ret;
}

static int
requests(const char *dir)
{
	struct ctl_attach a;
	struct ctl_list l;
	struct ctl_close c;
	int ret;

	memset(&a, 0, sizeof(a));
	ctl_hdr_init(&a.hdr, CTL_ATTACH, 2);
	a.ref.stream_id = 1;
	ret = put(dir, "attach-id", 0, &a, sizeof(a));
	a.ref.stream_id = 0;
	snprintf(a.ref.name, sizeof(a.ref.name), "cam");
	a.flags = CTL_ATTACH_OBSERVER;
	a.start = 2;
	ret |= put(dir, "attach-name", 2, &a, sizeof(a));
	memset(&l, 0, sizeof(l));
	memset(&l, 0, sizeof(l));
	ctl_hdr_init(&l.hdr, CTL_LIST, 3);
	ret |= put(dir, "list", 0, &l, sizeof(l));
	memset(&c, 0, sizeof(c));
	ctl_hdr_init(&c.hdr, CTL_CLOSE, 4);
	c.ref.stream_id = 7;
	ret |= put(dir, "close", 0, &c, sizeof(c));
	ctl_hdr_init(&c.hdr, CTL_KILL, 5);
	ret |= put(dir, "kill", 3, &c, sizeof(c));
	return ret;
}

static int
replies(const char *dir)
{
	static struct ctl_stream_info i;
	struct ctl_error e;
	struct ctl_opened o;
	int ret;

	memset(&e, 0, sizeof(e));
	ctl_hdr_init(&e.hdr, CTL_ERROR, 6);
	e.code = -ENOENT;
	snprintf(e.msg, sizeof(e.msg), "no stream 7");
	ret = put(dir, "error", 0, &e, sizeof(e));
	memset(&o, 0, sizeof(o));
	ctl_hdr_init(&o.hdr, CTL_OPENED, 1);
	o.stream_id = 1;
	ret |= put(dir, "opened", 1, &o, sizeof(o));
	memset(&i, 0, sizeof(i));
	ctl_hdr_init(&i.hdr, CTL_STREAM_INFO, 3);
	snprintf(i.source, sizeof(i.source), "/tmp/media.mkv");
	ret |= put(dir, "info", 0, &i, sizeof(i));
	return ret;
}

int
main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: gen_ctl_seeds DIR\n");
		return 2;
	}
	if (opens(argv[1]) | requests(argv[1]) | replies(argv[1])) {
		fprintf(stderr, "gen_ctl_seeds: writing %s failed\n", argv[1]);
		return 1;
	}
	return 0;
}
