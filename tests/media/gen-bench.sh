#!/bin/bash
# Generate the benchmark inputs (not used by the default test run).
# usage: gen-bench.sh OUTDIR
# OUTDIR must not be the test media directory: gen.sh empties that one
# whenever its own script changes.
#
# The inputs are long enough that steady state dominates a run (each takes
# well over a second to demux in-process), so the broker's fixed start cost
# (worker exec, probing) is a small share of the measurement. A short clip is
# encoded once and then repeated with `-stream_loop K -c copy`, which costs
# only a copy, not an encode:
#   bench_1080p_h264.mkv   10 s clip x 120: ~1.2 GB 1920x1080 H.264 + AAC,
#                          large packets (MB/s)
#   bench_small_aac.adts   120 s clip x 100: ~560k AAC packets of a few
#                          hundred bytes in ADTS (packets/s, per-packet cost)
#   bench_small_mp2.ts     60 s clip x 60: MP2 audio in MPEG-TS, small
#                          packets in a container with per-packet framing cost
#   bench_1080p_h264_60s.mkv  the 1080p clip x 6: 1500 frames to decode
#                          (shmdemux-bench decode; about a second in-process)
# Cached like gen.sh: a file is only made when missing (the clips are kept
# in OUTDIR/.bench-clips so a changed loop count does not re-encode).
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: gen-bench.sh OUTDIR" >&2; exit 2; }
command -v ffmpeg >/dev/null || { echo "gen-bench.sh: ffmpeg not found" >&2; exit 1; }
out=$1
clips=$out/.bench-clips
mkdir -p "$out" "$clips"
exec 9>"$out/.lock-bench"
flock 9

BITEXACT="-fflags +bitexact -flags:v +bitexact -flags:a +bitexact -map_metadata -1"

clip() { # NAME DURATION ARGS...
	local name=$1 dur=$2
	shift 2
	[ -e "$clips/$name" ] && return 0
	# shellcheck disable=SC2086
	ffmpeg -nostdin -hide_banner -loglevel error -y "$@" $BITEXACT -t "$dur" \
		"$clips/.tmp.$name" || { rm -f "$clips/.tmp.$name"; return 1; }
	mv -f "$clips/.tmp.$name" "$clips/$name"
}

# The clip CLIP played LOOPS times in a row, stream-copied into the same
# muxer, as OUT.
loop_as() { # OUT CLIP LOOPS [MUXER ARGS...]
	local name=$1 src=$2 loops=$3
	shift 3
	[ -e "$out/$name" ] && return 0
	# shellcheck disable=SC2086
	ffmpeg -nostdin -hide_banner -loglevel error -y \
		-stream_loop $((loops - 1)) -i "$clips/$src" -map 0 -c copy \
		"$@" $BITEXACT "$out/.tmp.$name" ||
		{ rm -f "$out/.tmp.$name"; return 1; }
	mv -f "$out/.tmp.$name" "$out/$name"
}

loop() { # NAME LOOPS [MUXER ARGS...]
	loop_as "$1" "$@"
}

clip bench_1080p_h264.mkv 10 \
	-f lavfi -i testsrc2=s=1920x1080:r=25:d=10 \
	-f lavfi -i sine=f=440:r=48000:d=10 \
	-c:v libx264 -preset ultrafast -bf 3 -g 50 -b:v 8M -pix_fmt yuv420p \
	-c:a aac -ac 2
clip bench_small_aac.adts 120 \
	-f lavfi -i sine=f=440:r=48000:d=120 -c:a aac -b:a 96k -ac 2 -f adts
clip bench_small_mp2.ts 60 \
	-f lavfi -i sine=f=440:r=48000:d=60 -c:a mp2 -b:a 64k

# The thumbnailer's load (shmdemux-bench short): clips of 1 to 5 s in
# several containers, 720p H.264 + AAC or audio alone, made whole (not
# looped).
short() { # NAME SECONDS ARGS...
	local name=$1 dur=$2
	shift 2
	[ -e "$out/$name" ] && return 0
	# shellcheck disable=SC2086
	ffmpeg -nostdin -hide_banner -loglevel error -y \
		-f lavfi -i testsrc2=s=1280x720:r=25:d=$dur \
		-f lavfi -i sine=f=440:r=48000:d=$dur "$@" $BITEXACT \
		"$out/.tmp.$name" || { rm -f "$out/.tmp.$name"; return 1; }
	mv -f "$out/.tmp.$name" "$out/$name"
}
SHORT_AV="-c:v libx264 -preset veryfast -g 25 -pix_fmt yuv420p -c:a aac -ac 2"
short short_1s.mkv 1 $SHORT_AV
short short_2s.mp4 2 $SHORT_AV -movflags +faststart
short short_3s.ts 3 $SHORT_AV
short short_5s.mkv 5 $SHORT_AV
short short_4s.mp4 4 $SHORT_AV
short short_2s.m4a 2 -map 1 -c:a aac -ac 2

loop bench_1080p_h264.mkv 120
loop bench_small_aac.adts 100 -f adts
loop bench_small_mp2.ts 60
loop_as bench_1080p_h264_60s.mkv bench_1080p_h264.mkv 6
ls -l "$out"/bench_* "$out"/short_*
