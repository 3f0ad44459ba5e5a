/*
 * pktcsv.h - one packet as a line of `shmdemux dump --csv`, the format of
 * ffprobe's "-show_entries packet=stream_index,pts,dts,duration,size,flags,
 * data_hash -show_data_hash MD5 -of csv=p=0" in FFmpeg 5.1:
 *   stream_index,pts,dts,duration,size,flags,MD5:<hex>
 * with N/A for unset timestamps and zero durations, flags as K/_ then D/_.
 */
#ifndef SHMDEMUX_PKTCSV_H
#define SHMDEMUX_PKTCSV_H

#include <stddef.h>
#include <stdint.h>

#define SD_PKT_CSV_MAX 160

/* Format one line (no newline) into buf (SD_PKT_CSV_MAX bytes is always
 * enough). Returns its length, or -ENOSPC. */
int sd_pkt_csv(char *buf, size_t cap, int track, int64_t pts, int64_t dts,
	       int64_t duration, uint32_t flags, const void *data, size_t size);

#endif
