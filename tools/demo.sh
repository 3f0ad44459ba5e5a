#!/bin/bash
# Demonstration on a fresh machine: install dependencies (as root), build,
# start a broker, open a real media file, read it with two consumers at once,
# and show that both saw exactly the packets ffprobe reports for that file.
# usage: tools/demo.sh [MEDIA-FILE]
# Default file: sample.mp4 from the corpus (${SHMDEMUX_CORPUS:-../shared/corpus})
# when present, else a generated H.264/AAC Matroska file.
set -uo pipefail
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

say() { printf '\n== %s\n' "$*"; }

say "dependencies"
"$src/tests/install-deps.sh" || exit 1
say "build (build/)"
cmake -S "$src" -B "$src/build" >/dev/null &&
	cmake --build "$src/build" -j "$(nproc 2>/dev/null || echo 2)" || exit 1

# The test helpers start and always stop a private broker.
. "$src/tests/lib.sh"
SHM_TEST=demo
shm_init

file=${1:-}
if [ -z "$file" ]; then
	corpus=${SHMDEMUX_CORPUS:-$(shm_first_existing "$src/../shared/corpus" \
		"$src/../../shared/corpus")}
	if [ -n "$corpus" ] && [ -f "$corpus/sample.mp4" ]; then
		file=$corpus/sample.mp4
	else
		file=$(shm_media_dir)/h264_aac.mkv || exit 1
	fi
fi
[ -r "$file" ] || shm_die "cannot read $file"
file=$(realpath "$file")

say "broker"
shm_broker_start
echo "shmdemuxd pid $SHM_BROKER_PID, socket $SHMDEMUX_SOCKET"

say "open $file (two consumers will attach)"
id=$("$SHMDEMUX" open --wait-consumers 2 "$file") || shm_die "open failed"
echo "stream id: $id"

say "two consumers read the stream concurrently"
"$SHMDEMUX" dump "$id" --csv >"$SHM_TMP/consumer1.csv" &
c1=$!
"$SHMDEMUX" dump "$id" --csv >"$SHM_TMP/consumer2.csv" &
c2=$!
wait $c1 || shm_die "consumer 1 failed"
wait $c2 || shm_die "consumer 2 failed"
"$SHMDEMUX_FFPROBE_PACKETS" "$file" >"$SHM_TMP/ffprobe.csv" ||
	shm_die "ffprobe-packets failed on $file"
head -n 3 "$SHM_TMP/consumer1.csv"
echo "..."
for f in consumer1 consumer2 ffprobe; do
	printf '%-10s %6d packets  md5 of the listing %s\n' "$f" \
		"$(wc -l <"$SHM_TMP/$f.csv")" "$(md5sum <"$SHM_TMP/$f.csv" | cut -d' ' -f1)"
done

say "broker view"
"$SHMDEMUX" ls
"$SHMDEMUX" probe "$id"
"$SHMDEMUX" close "$id" || shm_die "close failed"

if cmp -s "$SHM_TMP/consumer1.csv" "$SHM_TMP/ffprobe.csv" &&
	cmp -s "$SHM_TMP/consumer2.csv" "$SHM_TMP/ffprobe.csv"; then
	say "OK: both consumers saw exactly ffprobe's packets; stopping the broker"
	exit 0
fi
say "MISMATCH: the consumers' packets differ from ffprobe's"
diff "$SHM_TMP/ffprobe.csv" "$SHM_TMP/consumer1.csv" | head -n 5
exit 1
