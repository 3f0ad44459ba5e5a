#!/bin/bash
# CLI behaviour: three lossless readers see identical dumps through a small
# ring; bad input and bad usage fail with one line naming the cause; kill,
# ls, probe, --help.
# usage: test_cli.sh BIN_DIR [FFPROBE_PACKETS]   (default: tests/ffprobe-packets)
command -v ffmpeg >/dev/null || { echo "SKIP: no ffmpeg"; exit 77; }
FP=${2:-$(dirname "$0")/ffprobe-packets}
[ -x "$FP" ] || { echo "FAIL: $FP is not executable"; exit 1; }
source "$(dirname "$0")/cli_env.sh" "$1"

one_line() { # FILE: exactly one line, starting "shmdemux: "
	[ "$(wc -l < "$1")" -eq 1 ] && grep -q '^shmdemux: ' "$1"
}

# A file larger than the ring, so the worker has to wait for the readers.
ffmpeg -v error -f lavfi -i testsrc=size=320x240:rate=25:duration=8 \
	-c:v mpeg4 -q:v 3 -g 25 "$T/v.avi" || { echo "SKIP: ffmpeg"; exit 77; }
"$FP" "$T/v.avi" > "$T/ref" && [ -s "$T/ref" ] ||
	{ echo "FAIL: $FP found no packet in $T/v.avi"; exit 1; }

# ---- three consumers, all from the first packet ----
id=$("$SD" open --name three --ring-size 256K --wait-consumers 3 "$T/v.avi") ||
	fail "open three"
for i in 1 2 3; do
	"$SD" dump three --csv > "$T/c$i" 2> "$T/e$i" &
	pids[$i]=$!
done
for i in 1 2 3; do
	wait "${pids[$i]}" || fail "reader $i: $(cat "$T/e$i")"
	cmp -s "$T/ref" "$T/c$i" || fail "reader $i differs from ffprobe"
done
"$SD" ls > "$T/ls" || fail "ls"
grep -q "^ *$id  three  ended:eof" "$T/ls" || { fail "ls row"; cat "$T/ls"; }

# ---- sources: a real pipe on stdin, an inherited fd ----
id=$(cat "$T/v.avi" | "$SD" open -) || fail "open - from a pipe"
"$SD" dump "$id" --csv > "$T/out" && cmp -s "$T/ref" "$T/out" || fail "pipe dump"
id=$("$SD" open --fd 5 label.avi 5< "$T/v.avi") || fail "open --fd"
"$SD" dump "$id" --csv > "$T/out" && cmp -s "$T/ref" "$T/out" || fail "fd dump"
"$SD" ls | grep -q "^ *$id .*label.avi" || fail "fd label in ls"

# ---- probe ----
"$SD" probe "$id" > "$T/probe" || fail "probe"
grep -q "^0 .*video.*mpeg4.*320x240 yuv420p 25 fps" "$T/probe" ||
	{ fail "probe table"; cat "$T/probe"; }
"$SD" probe --json three > "$T/probe.json" || fail "probe --json"
if command -v python3 >/dev/null; then
	python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["tracks"][0]["width"]==320' \
		< "$T/probe.json" || fail "probe --json content"
	"$SD" ls --json | python3 -c 'import json,sys; assert len(json.load(sys.stdin))>=1' ||
		fail "ls --json"
fi
"$SD" dump "$id" --json > "$T/dump.json" || fail "dump --json"
[ "$(wc -l < "$T/dump.json")" -eq "$(wc -l < "$T/ref")" ] || fail "json lines"
"$SD" dump "$id" > "$T/dump.txt" || fail "dump (human)"
[ "$(wc -l < "$T/dump.txt")" -eq "$(wc -l < "$T/ref")" ] || fail "human lines"

# ---- bad input: open itself fails with the worker's reason, exit 1;
# the stream is closed and `ls --all` shows how it ended ----
head -c 65536 /dev/urandom > "$T/bad.bin"
"$SD" open --name badin "$T/bad.bin" > "$T/out" 2> "$T/err"; rc=$?
[ $rc -eq 1 ] && [ ! -s "$T/out" ] || fail "open bad: exit $rc, no id expected"
one_line "$T/err" && grep -q "open refused: input could not be opened" "$T/err" ||
	{ fail "open bad message"; cat "$T/err"; }
"$SD" ls | grep -q " badin " && fail "the refused stream is still listed"
"$SD" ls --all | grep -q "^ *[0-9]*  badin .*ended:open-failed" ||
	fail "ls --all open-failed"
# --no-wait: the id at once; the dump names the cause in one line, exit 1
id=$("$SD" open --no-wait "$T/bad.bin") || fail "open --no-wait bad"
"$SD" dump "$id" --csv > "$T/out" 2> "$T/err"; rc=$?
[ $rc -eq 1 ] || fail "bad input: exit $rc"
one_line "$T/err" && grep -q "stream $id failed: input could not be opened" "$T/err" ||
	{ fail "bad input message"; cat "$T/err"; }
"$SD" ls | grep -q "^ *$id .*ended:open-failed" || fail "ls open-failed"

# ---- kill: a paced stream killed mid-way ----
id=$("$SD" open --realtime "$T/v.avi") || fail "open realtime"
"$SD" kill "$id" || fail "kill"
"$SD" dump "$id" --csv > "$T/out" 2> "$T/err"; rc=$?
[ $rc -eq 1 ] && one_line "$T/err" && grep -q "killed" "$T/err" ||
	{ fail "killed stream: exit $rc"; cat "$T/err"; }
"$SD" ls | grep -q "^ *$id .*ended:killed" || fail "ls killed"

# ---- runtime failures: exit 1, one line ----
"$SD" open "$T/missing.mp4" > /dev/null 2> "$T/err"; rc=$?
[ $rc -eq 1 ] && one_line "$T/err" && grep -q "No such file" "$T/err" ||
	{ fail "missing file: exit $rc"; cat "$T/err"; }
"$SD" dump 9999 > /dev/null 2> "$T/err"; rc=$?
[ $rc -eq 1 ] && one_line "$T/err" || { fail "unknown stream: $rc"; cat "$T/err"; }
"$SD" close nosuchname 2> "$T/err"; rc=$?
[ $rc -eq 1 ] && one_line "$T/err" || fail "close unknown: $rc"
"$SD" --socket "$T/nobody.sock" ls 2> "$T/err"; rc=$?
[ $rc -eq 1 ] && one_line "$T/err" || fail "no broker: $rc"

# ---- usage errors: exit 2 ----
for args in "" "bogus" "open" "open --mode fast x" "dump" "dump 1 --from middle" \
	"ls extra" "probe" "kill" "open --ring-size 12Q x" "--nope ls"; do
	"$SD" $args > /dev/null 2>&1; rc=$?
	[ $rc -eq 2 ] || fail "usage '$args': exit $rc"
done
# an empty name is refused before anything starts (no broker autostarted)
SHMDEMUX_SOCKET=$T/none.sock "$SD" open --name "" "$T/ref" >/dev/null 2>"$T/err"
rc=$?
if [ -e "$T/none.sock" ]; then
	# a broker was started: stop it (its pidfile beside the socket)
	kill "$(cat "$T/none.sock.pid" 2>/dev/null)" 2>/dev/null
	fail "open --name '' started a broker"
fi
[ $rc -eq 2 ] && grep -q "empty name" "$T/err" ||
	fail "open --name '': exit $rc, $(cat "$T/err")"
# more --demux-opt than an OPEN may carry (CTL_MAX_OPTS): refused the same way
dopts=()
for i in $(seq 0 64); do dopts+=(--demux-opt "k$i=v"); done
SHMDEMUX_SOCKET=$T/none.sock "$SD" open "${dopts[@]}" "$T/ref" >/dev/null 2>"$T/err"
rc=$?
if [ -e "$T/none.sock" ]; then
	kill "$(cat "$T/none.sock.pid" 2>/dev/null)" 2>/dev/null
	fail "open with 65 --demux-opt started a broker"
fi
[ $rc -eq 2 ] && grep -q -- "--demux-opt: at most 64" "$T/err" ||
	fail "open with 65 --demux-opt: exit $rc, $(cat "$T/err")"

# ---- help ----
"$SD" --help | grep -q "probe" || fail "--help"
for c in open ls probe dump close kill cat; do
	for h in --help -h; do
		"$SD" $c $h > "$T/help" || fail "$c $h exit"
		grep -q "^usage: shmdemux $c" "$T/help" || fail "$c $h text"
	done
done
for o in --name --mode --ring-size --wait-consumers --format --probesize \
	--analyzeduration --demux-opt --realtime --fd; do
	"$SD" open --help | grep -q -- "$o" || fail "open --help lacks $o"
done
finish
