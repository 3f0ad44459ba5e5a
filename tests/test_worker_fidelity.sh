#!/bin/bash
# test_worker_fidelity.sh WORKER_RUN WORKER
# For every generated file (and every corpus file where there is a corpus),
# the worker's packets (through a real ring, read by a consumer) must equal
# ffprobe-packets on the same bytes: the file handed over seekable vs
# `ffprobe-packets FILE`, and a pipe vs `ffprobe-packets - < FILE` (vs
# `ffprobe-packets FILE` for a moov-at-end MP4/MOV, which is spooled).
# Inputs ffprobe cannot open must make the worker exit WORKER_EXIT_OPEN_FAILED.
# Generated media: $SHMDEMUX_MEDIA (tests/media/gen.sh, the media_generate
# test). Corpus: $SHMDEMUX_CORPUS, else $SHMDEMUX_CORPUS_DEFAULT (what CMake
# found beside the tree), else none. Reference: $SHMDEMUX_FFPROBE_PACKETS,
# else the project's own tests/ffprobe-packets.
run=${1:?usage: $0 WORKER_RUN WORKER}
worker=${2:?usage: $0 WORKER_RUN WORKER}
media=${SHMDEMUX_MEDIA:?SHMDEMUX_MEDIA: the generated media directory}
corpus=${SHMDEMUX_CORPUS:-${SHMDEMUX_CORPUS_DEFAULT:-}}
ffpp=${SHMDEMUX_FFPROBE_PACKETS:-$(dirname "$0")/ffprobe-packets}
EXIT_EOF=0 EXIT_OPEN_FAILED=10 EXIT_DEMUX_ERROR=11 EXIT_STOPPED=14 # worker_abi.h
. "$(dirname "$0")/moov_at_end.sh"
LIMIT=60 # seconds per run: a hang is a failure, not a stuck test

if [ ! -f "$media/MANIFEST.tsv" ]; then
	echo "FAIL: no generated media in $media (tests/media/gen.sh $media)"
	exit 1
fi
if [ -n "${SHMDEMUX_CORPUS:-}" ] && [ ! -d "$corpus" ]; then
	echo "FAIL: SHMDEMUX_CORPUS=$corpus is not a directory"; exit 1
fi
[ -n "$corpus" ] && [ -d "$corpus" ] || corpus=
if [ ! -x "$ffpp" ]; then
	echo "FAIL: ffprobe-packets '$ffpp' is not executable"; exit 1
fi
mapfile -t files < <(awk -F'\t' -v d="$media" '{ print d "/" $1 }' \
	"$media/MANIFEST.tsv")
if [ -n "$corpus" ]; then
	mapfile -t -O "${#files[@]}" files < <(find "$corpus" -maxdepth 1 \
		-type f ! -name MANIFEST.tsv ! -name NOTICE ! -name '.*' |
		LC_ALL=C sort)
	echo "generated media and the corpus in $corpus"
else
	echo "generated media only (no corpus: set SHMDEMUX_CORPUS to add it)"
fi

tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
: > "$tmp/empty"
head -c 65536 /dev/zero > "$tmp/zeros"

ran=0 matched=0 refused=0 failed=0

# check FILE MODE(file|pipe)
check() {
	local f=$1 mode=$2 name=${1##*/} ref_rc rc
	local -a opt=()
	if [ "$mode" = pipe ] && moov_at_end "$f"; then
		opt=(--pipe)
		timeout $LIMIT "$ffpp" "$f" > "$tmp/ref" 2>/dev/null
	elif [ "$mode" = pipe ]; then
		opt=(--pipe)
		timeout $LIMIT "$ffpp" - < "$f" > "$tmp/ref" 2>/dev/null
	else
		timeout $LIMIT "$ffpp" "$f" > "$tmp/ref" 2>/dev/null
	fi
	ref_rc=$?
	timeout $LIMIT "$run" --worker "$worker" "${opt[@]}" "$f" \
		> "$tmp/out" 2> "$tmp/err"
	rc=$?
	ran=$((ran + 1))
	if [ $ref_rc -ne 0 ]; then
		if [ $rc -eq $EXIT_OPEN_FAILED ]; then
			refused=$((refused + 1))
			echo "ok   $mode $name: refused like ffprobe"
		else
			failed=$((failed + 1))
			echo "FAIL $mode $name: ffprobe cannot open it, worker exit $rc"
			sed 's/^/     /' "$tmp/err" | head -5
		fi
		return
	fi
	if [ $rc -ne $EXIT_EOF ] && [ $rc -ne $EXIT_DEMUX_ERROR ]; then
		failed=$((failed + 1))
		echo "FAIL $mode $name: worker exit $rc"
		sed 's/^/     /' "$tmp/err" | head -5
	elif cmp -s "$tmp/ref" "$tmp/out"; then
		matched=$((matched + 1))
		echo "ok   $mode $name: $(wc -l < "$tmp/ref") packets match"
	else
		failed=$((failed + 1))
		echo "FAIL $mode $name: packets differ" \
		     "(ffprobe $(wc -l < "$tmp/ref"), worker $(wc -l < "$tmp/out"))"
		diff "$tmp/ref" "$tmp/out" | head -6 | sed 's/^/     /'
	fi
}

for f in "${files[@]}" "$tmp/empty" "$tmp/zeros"; do
	[ -f "$f" ] || continue
	check "$f" file
	check "$f" pipe
done

# expect NAME WANT_RC WORKER_RUN-ARGS...: a worker run must end with WANT_RC
expect() {
	local name=$1 want=$2 rc
	shift 2
	timeout $LIMIT "$run" --worker "$worker" "$@" > "$tmp/out" 2> "$tmp/err"
	rc=$?
	ran=$((ran + 1))
	if [ $rc -eq "$want" ]; then
		echo "ok   $name: worker exit $rc"
	else
		failed=$((failed + 1))
		echo "FAIL $name: worker exit $rc, want $want"
		sed 's/^/     /' "$tmp/err" | head -5
	fi
}

# Nested opens must not reach files: a playlist ffprobe follows is refused.
ts=$media/h264_aac.ts
printf '#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:1.0,\nfile:%s\n#EXT-X-ENDLIST\n' \
	"$ts" > "$tmp/nested.m3u8"
printf "ffconcat version 1.0\nfile '%s'\n" "$ts" > "$tmp/nested.ffconcat"
expect "hls playlist naming a file" $EXIT_OPEN_FAILED "$tmp/nested.m3u8"
expect "concat list naming a file" $EXIT_OPEN_FAILED \
	"$tmp/nested.ffconcat" -- --format concat --demux-opt safe=0
# SIGTERM while blocked reading a pipe that never ends: a clean stop,
# whether it comes while probing (TS waits for more data) or after
# packets flowed.
expect "SIGTERM while probing" $EXIT_STOPPED --pipe --term-after 0 "$ts"
expect "unknown forced format" $EXIT_OPEN_FAILED "$ts" -- --format nosuch
# a short analysis so that packets flow before the pipe runs dry
expect "SIGTERM mid-stream" $EXIT_STOPPED --pipe --term-after 1 \
	"$media/h264_aac.flv" -- --analyzeduration 1 --probesize 32

# A track appearing mid-stream (TS: a second PID after the probe window, on
# a pipe) gets a new track table generation and its packets are published.
# ffprobe prints only the streams it found at open, so compare the rest.
if command -v ffmpeg > /dev/null; then
	ffmpeg -v error -f lavfi -i testsrc=size=160x120:rate=25 -t 8 \
		-c:v mpeg2video "$tmp/v.ts" &&
	ffmpeg -v error -f lavfi -i testsrc=size=160x120:rate=25 -f lavfi \
		-i sine -t 4 -c:v mpeg2video -c:a mp2 -output_ts_offset 8 \
		-streamid 0:256 -streamid 1:300 "$tmp/av.ts" &&
	cat "$tmp/v.ts" "$tmp/av.ts" > "$tmp/grow.ts"
	"$ffpp" - < "$tmp/grow.ts" > "$tmp/ref" 2>/dev/null
	timeout $LIMIT "$run" --worker "$worker" --pipe --tracks \
		"$tmp/grow.ts" > "$tmp/out" 2> "$tmp/err"
	rc=$? ran=$((ran + 1))
	gens=$(grep -c '^tracks gen' "$tmp/err")
	if [ $rc -eq $EXIT_EOF ] && [ "$gens" -ge 2 ] &&
	   grep -q '^1,' "$tmp/out" && ! grep -q '^1,' "$tmp/ref" &&
	   grep -v '^1,' "$tmp/out" | cmp -s - "$tmp/ref"; then
		echo "ok   pipe track appearing mid-stream: $gens table generations"
	else
		failed=$((failed + 1))
		echo "FAIL pipe track appearing mid-stream (exit $rc, $gens tables)"
	fi
fi

echo "worker fidelity: $ran runs, $matched match ffprobe, $refused refused" \
     "like ffprobe, $failed failed"
[ $failed -eq 0 ]
