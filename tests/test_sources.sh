#!/bin/bash
# Every kind of input source beyond a plain file:
#  - pushed bytes (shmdemux-example-push, random chunks 1 B..1 MiB): for every
#    corpus and generated file the dump equals ffprobe's packets (see
#    fidelity-one.sh push; moov-at-end files are spooled and equal the file);
#  - a producer SIGKILLed before ending its input: the reader gets
#    SHMDEMUX_EINPUT and `ls` shows ended:input-error;
#  - a moov-at-end MP4 larger than --spool-limit on a pipe: ended:spool-limit
#    with a message naming the limit;
#  - a transport stream joined at an arbitrary byte offset (not a multiple of
#    188, no PAT/PMT first): the dump equals ffprobe on the same bytes.
. "$(dirname "$0")/lib.sh"
shm_init
media=$(shm_media_dir) || exit $?
mapfile -t files < <(awk -F'\t' -v d="$media" '{ print d "/" $1 }' "$media/MANIFEST.tsv")
# The corpus only adds files here.
corpus=$(shm_corpus_find) || corpus=
if [ -n "$corpus" ]; then
	mapfile -t -O "${#files[@]}" files < <(find "$corpus" -maxdepth 1 -type f \
		! -name MANIFEST.tsv ! -name NOTICE ! -name '.*' | LC_ALL=C sort)
fi
[ ${#files[@]} -gt 0 ] || shm_die "no media"
shm_broker_start
PUSH=$SHMDEMUX_BIN/shmdemux-example-push

results=$SHM_TMP/push.results
for f in "${files[@]}"; do printf 'push\0%s\0' "$f"; done |
	xargs -0 -n 2 -P "${SHMDEMUX_TEST_JOBS:-2}" \
		"$SHMDEMUX_SRC/tests/fidelity-one.sh" | tee "$results"
passed=$(grep -c '^PASS' "$results") failed=$((${#files[@]} - passed))

ok() { echo "PASS $*"; passed=$((passed + 1)); }
ko() { echo "FAIL $*"; failed=$((failed + 1)); }

# The producer pushes part of the file, says "held N" and waits: killed
# there, it never ends its input.
killed_producer() {
	local f=$media/mpeg4_pcm.nut id held out pp dp rc why=
	# No timeout wrapper: $! must be the producer itself. The reads are
	# bounded instead, as a backstop only.
	exec {out}< <(exec "$PUSH" --seed 3 --max-chunk 4096 --hold-after 65536 --nonblock "$f" 2>"$SHM_TMP/kp.err")
	pp=$!
	read -r -t "$SHMDEMUX_TEST_DEADLINE" id <&"$out"
	if [ -z "$id" ]; then
		kill -9 "$pp" 2>/dev/null
		ko "killed producer: no stream id: $(head -c 200 "$SHM_TMP/kp.err")"
		return
	fi
	shm_cli dump "$id" --csv >"$SHM_TMP/kp.csv" 2>"$SHM_TMP/kp.derr" &
	dp=$!
	read -r -t "$SHMDEMUX_TEST_DEADLINE" held <&"$out"
	kill -9 "$pp"
	wait "$pp"
	exec {out}<&-
	wait "$dp"
	rc=$?
	[ "$rc" -ne 0 ] || why="dump exited 0"
	grep -q "input source failed" "$SHM_TMP/kp.derr" ||
		why="${why:+$why; }dump: $(head -c 200 "$SHM_TMP/kp.derr")"
	shm_ls_line "$id" | grep -qw "ended:input-error" ||
		why="${why:+$why; }ls: $(shm_ls_line "$id")"
	shm_cli close "$id" >/dev/null 2>&1
	if [ -z "$why" ]; then
		ok "killed producer after ${held#held } bytes: input-error ($(wc -l <"$SHM_TMP/kp.csv") packets before)"
	else
		ko "killed producer: $why"
	fi
}
killed_producer

spool_limit() {
	local f=$media/h264_aac_moovend.mp4 id why= rc
	# open waits for the probe: the limit is passed then, and open says so
	shm_cli open --spool-limit 64K - <"$f" >"$SHM_TMP/sl.id" 2>"$SHM_TMP/sl.err"
	rc=$?
	if [ $rc -eq 1 ] && [ ! -s "$SHM_TMP/sl.id" ] && shm_one_line "$SHM_TMP/sl.err" &&
		grep -q "spool limit of 65536 bytes exceeded" "$SHM_TMP/sl.err"; then
		ok "spool limit 64K: open fails, naming the limit"
	else
		ko "spool limit: open exit $rc: $(head -c 200 "$SHM_TMP/sl.err")"
	fi
	# --no-wait: the stream's end says it
	id=$(shm_cli open --no-wait --spool-limit 64K - <"$f" 2>"$SHM_TMP/sl.err") || {
		ko "spool limit: open --no-wait failed: $(head -c 200 "$SHM_TMP/sl.err")"
		return
	}
	shm_cli dump "$id" --csv >/dev/null 2>"$SHM_TMP/sl.derr" && why="dump exited 0"
	grep -q "spool limit of 65536 bytes exceeded" "$SHM_TMP/sl.derr" ||
		why="${why:+$why; }dump: $(head -c 200 "$SHM_TMP/sl.derr")"
	shm_ls_line "$id" | grep -qw "ended:spool-limit" ||
		why="${why:+$why; }ls: $(shm_ls_line "$id")"
	shm_cli close "$id" >/dev/null 2>&1
	[ -z "$why" ] && ok "spool limit 64K: ended:spool-limit" || ko "spool limit: $why"
}
spool_limit

# Joined mid-stream: bytes from an offset that is not a packet boundary.
ts_midjoin() { # FILE OFFSET
	local f=$1 cut=$SHM_TMP/cut.ts id why=
	tail -c +"$2" "$f" >"$cut"
	"$SHMDEMUX_FFPROBE_PACKETS" -f mpegts - <"$cut" >"$SHM_TMP/ts.ref" 2>/dev/null
	id=$(shm_cli open --format mpegts - <"$cut" 2>"$SHM_TMP/ts.err") || {
		ko "ts joined at $2: open: $(head -c 200 "$SHM_TMP/ts.err")"
		return
	}
	shm_cli dump "$id" --csv >"$SHM_TMP/ts.got" 2>"$SHM_TMP/ts.err" ||
		why="dump: $(head -c 200 "$SHM_TMP/ts.err")"
	cmp -s "$SHM_TMP/ts.ref" "$SHM_TMP/ts.got" ||
		why="${why:+$why; }$(wc -l <"$SHM_TMP/ts.got") packets, ffprobe $(wc -l <"$SHM_TMP/ts.ref")"
	[ -s "$SHM_TMP/ts.ref" ] || why="${why:+$why; }ffprobe found no packet"
	shm_cli close "$id" >/dev/null 2>&1
	[ -z "$why" ] && ok "ts $(basename "$f") joined at byte $2 ($(wc -l <"$SHM_TMP/ts.ref") packets)" ||
		ko "ts $(basename "$f") joined at $2: $why"
}
ts_midjoin "$media/h264_aac.ts" 100001
ts_midjoin "$media/hevc_ac3.ts" 77777
[ -z "$corpus" ] || ts_midjoin "$corpus/sample_h264.ts" 12345

echo "summary: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
