#!/bin/bash
# The frame pool (docs/RING.md): video frames of a lossless --decode stream
# are decoded in place in the pool and read there, bit-exact with ffmpeg's
# framemd5, and `dump --stats` shows it (pooled vs copied).
#  - default pool: every H.264 frame of a small file is pooled, none copied;
#  - live mode: nothing is pooled (every frame copied), still bit-exact;
#  - a broker with a 1 MiB pool (a handful of 320x240 slots, fewer than the
#    decoder's references and threads need): frames come both ways, all
#    bit-exact; two readers of such a stream see identical frames.
#  - the same small pool at the media's pace (--realtime, so the first
#    reader reads while frames are decoded and the worker reclaims the
#    records it passed to get slots back): a late reader from the oldest
#    retained record, after the stream ended, sees a bit-exact tail of the
#    frames, shorter than the whole (slots were reused under the first
#    reader's progress, never under a record still retained).
# usage: test_frame_pool.sh   (SHMDEMUX_BIN, SHMDEMUX_MEDIA from the build)
command -v ffmpeg >/dev/null || { echo "SKIP: no ffmpeg"; exit 77; }
M=${SHMDEMUX_MEDIA:?}
[ -f "$M/h264_aac.mkv" ] ||
	{ echo "FAIL: no generated media in $M (tests/media/gen.sh $M)"; exit 1; }
source "$(dirname "$0")/cli_env.sh" "${SHMDEMUX_BIN:?}"

# A second broker with a small pool, stopped like the first.
S2=$T/small.sock
"$BIN/shmdemuxd" --daemon --socket "$S2" --decode-pool 1M \
	2> "$T/broker2.log" || { echo "cannot start the second broker"; exit 1; }
stop_small() {
	exec 8<"$S2.pid" 2>/dev/null || return 0
	local pid; pid=$(cat <&8)
	[ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && flock 8
	exec 8<&-
}
trap 'stop_small; cli_cleanup' EXIT

F=$M/h264_aac.mkv
ffmpeg -nostdin -v error -i "$F" -map 0:0 -f framemd5 - | grep -v '^#' |
	awk -F', *' '{ print $6 }' > "$T/ref"
nref=$(wc -l < "$T/ref")
[ "$nref" -gt 0 ] || { echo "no reference frames"; exit 1; }

stat_of() { # FIELD STATS-FILE
	sed -n "s/.* $1 \([0-9]*\).*/\1/p" "$2"
}

# dump SOCKET ID OUT: framemd5 md5 column of track 0, stats in OUT.stats
dump() {
	SHMDEMUX_SOCKET=$1 "$SD" dump "$2" --framemd5 --stats \
		> "$3.raw" 2> "$3.stats" || return 1
	awk -F, '$1 == 0 { print $3 }' "$3.raw" > "$3"
}

same_as_ref() { # FILE WHAT
	if [ -s "$1" ] && cmp -s "$T/ref" "$1"; then
		echo "ok $2: $(wc -l < "$1") frames match ffmpeg"
	else
		fail "$2: frames differ from ffmpeg framemd5"
		diff "$T/ref" "$1" | head -4
	fi
}

# 1. default pool: every frame in place
id=$("$SD" open --decode video "$F") || fail "open"
dump "$S" "$id" "$T/a" || fail "dump: $(cat "$T/a.stats")"
same_as_ref "$T/a" "default pool"
pooled=$(stat_of pooled "$T/a.stats"); copied=$(stat_of copied "$T/a.stats")
if [ "$pooled" = "$nref" ] && [ "$copied" = 0 ]; then
	echo "ok default pool: $pooled of $nref frames pooled, none copied"
else
	fail "default pool: pooled $pooled copied $copied of $nref"
fi

# 2. live mode: never pooled
id=$("$SD" open --decode video --mode live --wait-consumers 1 "$F") ||
	fail "open live"
dump "$S" "$id" "$T/l" || fail "live dump: $(cat "$T/l.stats")"
same_as_ref "$T/l" "live"
pooled=$(stat_of pooled "$T/l.stats"); copied=$(stat_of copied "$T/l.stats")
if [ "$pooled" = 0 ] && [ "$copied" = "$nref" ]; then
	echo "ok live: $copied frames copied, none pooled"
else
	fail "live: pooled $pooled copied $copied of $nref"
fi

# 3. small pool: both ways, two readers identical
id=$(SHMDEMUX_SOCKET=$S2 "$SD" open --decode video --wait-consumers 2 "$F") ||
	fail "open on the small pool"
dump "$S2" "$id" "$T/r1" &
p1=$!
dump "$S2" "$id" "$T/r2" || fail "second reader: $(cat "$T/r2.stats")"
wait $p1 || fail "first reader: $(cat "$T/r1.stats")"
same_as_ref "$T/r1" "small pool, reader 1"
same_as_ref "$T/r2" "small pool, reader 2"
pooled=$(stat_of pooled "$T/r1.stats"); copied=$(stat_of copied "$T/r1.stats")
if [ "${pooled:-0}" -gt 0 ] && [ "${copied:-0}" -gt 0 ] &&
   [ $((pooled + copied)) -eq "$nref" ]; then
	echo "ok small pool: $pooled pooled, $copied copied (pool exhausted)"
else
	fail "small pool: pooled $pooled copied $copied of $nref"
fi

# 4. small pool at the media's pace, then a late reader
id=$(SHMDEMUX_SOCKET=$S2 "$SD" open --decode video --realtime "$F") ||
	fail "open for a late reader"
dump "$S2" "$id" "$T/e1" || fail "early reader: $(cat "$T/e1.stats")"
same_as_ref "$T/e1" "small pool, early reader"
dump "$S2" "$id" "$T/e2" || fail "late reader: $(cat "$T/e2.stats")"
n2=$(wc -l < "$T/e2")
tail -n "$n2" "$T/ref" > "$T/reftail"
if [ "$n2" -gt 0 ] && [ "$n2" -lt "$nref" ] && cmp -s "$T/reftail" "$T/e2"
then
	echo "ok late reader: the last $n2 of $nref frames, bit-exact" \
	    "($(stat_of pooled "$T/e1.stats") pooled)"
else
	fail "late reader: $n2 of $nref frames, not a bit-exact tail of" \
	    "fewer frames"
fi
finish
