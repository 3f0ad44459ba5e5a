#!/bin/bash
# The broker links no FFmpeg: only its workers parse media, and common/
# (which it links) has no FFmpeg code (tools/pktcsv.c, common/ffversion.h).
# Its ELF NEEDED entries name no libav* library.
# usage: test_broker_links.sh SHMDEMUXD
bin=${1:?usage: test_broker_links.sh SHMDEMUXD}
command -v readelf >/dev/null || { echo "SKIP: readelf (binutils) not installed"; exit 77; }
needed=$(readelf -d "$bin" | awk '/\(NEEDED\)/ { gsub(/[][]/, "", $NF); print $NF }') ||
	{ echo "FAIL: readelf -d $bin"; exit 1; }
[ -n "$needed" ] || { echo "FAIL: no NEEDED entries read from $bin"; exit 1; }
if grep -q '^libav' <<<"$needed"; then
	echo "FAIL: $(basename "$bin") links FFmpeg: $(tr '\n' ' ' <<<"$needed")"
	exit 1
fi
echo "ok $(basename "$bin") NEEDED: $(tr '\n' ' ' <<<"$needed")"
