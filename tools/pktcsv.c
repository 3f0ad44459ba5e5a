/*
 * pktcsv.c - ffprobe-compatible packet lines.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>

#include <libavutil/md5.h>

#include "media.h"
#include "pktcsv.h"

/* ffprobe prints N/A for an unset timestamp and for a zero duration. */
static const char *
ts_str(char *buf, size_t cap, int64_t v, int is_duration)
{
	if (is_duration ? v == 0 : v == SD_NOPTS)
		return "N/A";
	snprintf(buf, cap, "%" PRId64, v);
	return buf;
}

int
sd_pkt_csv(char *buf, size_t cap, int track, int64_t pts, int64_t dts,
	   int64_t duration, uint32_t flags, const void *data, size_t size)
{
	uint8_t md5[16];
	char hex[33], p[24], d[24], du[24];
	int n;

	/* av_md5_sum takes an int length; packets are < 2 GiB by AVPacket's
	 * own int size, so a larger size can only be a caller bug. */
	if (size > INT32_MAX)
		return -EINVAL;
	av_md5_sum(md5, data, (int)size);
	for (int i = 0; i < 16; i++)
		snprintf(hex + 2 * i, 3, "%02x", md5[i]);
	n = snprintf(buf, cap, "%d,%s,%s,%s,%zu,%c%c,MD5:%s", track,
		     ts_str(p, sizeof(p), pts, 0), ts_str(d, sizeof(d), dts, 0),
		     ts_str(du, sizeof(du), duration, 1), size,
		     (flags & SD_PKT_KEY) ? 'K' : '_',
		     (flags & SD_PKT_DISCARD) ? 'D' : '_', hex);
	if (n < 0 || (size_t)n >= cap)
		return -ENOSPC;
	return n;
}
