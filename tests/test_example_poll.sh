#!/bin/bash
# The epoll example reads two streams in one loop (one of them paced at
# the media's rate, so the loop sleeps between its packets) and prints
# exactly ffprobe's packets of each file.
# usage: test_example_poll.sh BIN_DIR MEDIA_DIR FFPROBE_PACKETS
command -v ffprobe >/dev/null || { echo "SKIP: no ffprobe"; exit 77; }
MEDIA=$2
FFPROBE_PACKETS=$3
source "$(dirname "$0")/cli_env.sh" "$1"

a=$MEDIA/h264_aac.mkv
b=$MEDIA/flac_noise.flac
"$FFPROBE_PACKETS" "$a" > "$T/ref0" || fail "ffprobe $a"
"$FFPROBE_PACKETS" "$b" > "$T/ref1" || fail "ffprobe $b"
ida=$("$SD" open --realtime "$a") || fail "open $a"
idb=$("$SD" open "$b") || fail "open $b"
timeout 60 "$BIN/shmdemux-example-poll" "$ida" "$idb" > "$T/out" \
	2> "$T/err" || fail "example failed: $(cat "$T/err")"
for n in 0 1; do
	sed -n "s/^$n,//p" "$T/out" > "$T/got$n"
	if [ ! -s "$T/ref$n" ] || ! cmp -s "$T/ref$n" "$T/got$n"; then
		fail "stream $n differs from ffprobe" \
		    "($(wc -l < "$T/ref$n") vs $(wc -l < "$T/got$n") packets)"
		diff "$T/ref$n" "$T/got$n" | head -4
	else
		echo "ok stream $n: $(wc -l < "$T/ref$n") packets match"
	fi
done
finish
