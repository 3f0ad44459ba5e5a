#!/bin/bash
# Generate the benchmark inputs (not used by the default test run).
# usage: gen-bench.sh OUTDIR
#   bench_1080p_h264.mkv   10 s 1920x1080 H.264 + AAC: large packets, MB/s
#   bench_small_aac.adts   120 s AAC in ADTS: ~5600 packets of a few hundred
#                          bytes, packets/s and per-packet overhead
#   bench_small_mp2.ts     60 s MP2 audio in MPEG-TS, small packets in a
#                          container with per-packet framing cost
# Cached like gen.sh: a file is only encoded when missing.
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: gen-bench.sh OUTDIR" >&2; exit 2; }
command -v ffmpeg >/dev/null || { echo "gen-bench.sh: ffmpeg not found" >&2; exit 1; }
out=$1
mkdir -p "$out"
exec 9>"$out/.lock-bench"
flock 9

BITEXACT="-fflags +bitexact -flags:v +bitexact -flags:a +bitexact -map_metadata -1"

make() { # NAME DURATION ARGS...
	local name=$1 dur=$2
	shift 2
	[ -e "$out/$name" ] && return 0
	# shellcheck disable=SC2086
	ffmpeg -nostdin -hide_banner -loglevel error -y "$@" $BITEXACT -t "$dur" \
		"$out/.tmp.$name" || { rm -f "$out/.tmp.$name"; return 1; }
	mv -f "$out/.tmp.$name" "$out/$name"
}

make bench_1080p_h264.mkv 10 \
	-f lavfi -i testsrc2=s=1920x1080:r=25:d=10 \
	-f lavfi -i sine=f=440:r=48000:d=10 \
	-c:v libx264 -preset ultrafast -bf 3 -g 50 -b:v 8M -pix_fmt yuv420p \
	-c:a aac -ac 2
make bench_small_aac.adts 120 \
	-f lavfi -i sine=f=440:r=48000:d=120 -c:a aac -b:a 96k -ac 2 -f adts
make bench_small_mp2.ts 60 \
	-f lavfi -i sine=f=440:r=48000:d=60 -c:a mp2 -b:a 64k
ls -l "$out"/bench_*
