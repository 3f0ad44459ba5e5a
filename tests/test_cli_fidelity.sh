#!/bin/bash
# CLI end-to-end fidelity: for every corpus file ffprobe opens,
# `shmdemux open FILE` + `shmdemux dump ID --csv` equals ffprobe-packets FILE,
# and `shmdemux open - < FILE` + dump equals `ffprobe-packets - < FILE`.
# usage: test_cli_fidelity.sh BIN_DIR CORPUS_DIR FFPROBE_PACKETS
[ -d "$2" ] && [ -x "$3" ] || { echo "SKIP: no corpus or ffprobe-packets"; exit 77; }
command -v ffprobe >/dev/null || { echo "SKIP: no ffprobe"; exit 77; }
CORPUS=$2 FP=$3
source "$(dirname "$0")/cli_env.sh" "$1"

# ffprobe exits 0 after a read error mid-stream (it stops there); the
# worker reports that end as a demux error. Either way the packets up to
# that point must be the same.
check() { # LABEL REF ID
	local label=$1 ref=$2 id=$3
	"$SD" dump "$id" --csv > "$T/out" 2> "$T/err"
	rc=$?
	if [ $rc -ne 0 ] && ! grep -q "failed: demux error" "$T/err"; then
		fail "$label: dump exited $rc: $(cat "$T/err")"
	elif ! cmp -s "$ref" "$T/out"; then
		fail "$label: packets differ from ffprobe" \
		    "($(wc -l < "$ref") vs $(wc -l < "$T/out") lines)"
		diff "$ref" "$T/out" | head -5
	fi
}

# Input ffprobe cannot open: the dump fails naming it, in one line.
check_refused() { # LABEL ID
	"$SD" dump "$2" --csv > "$T/out" 2> "$T/err"
	rc=$?
	[ $rc -eq 1 ] && [ "$(wc -l < "$T/err")" -eq 1 ] &&
		grep -q "failed: input could not be opened" "$T/err" ||
		fail "$1: ffprobe refuses it, dump exit $rc: $(cat "$T/err")"
}

n=0 refused=0
for f in "$CORPUS"/*; do
	case ${f##*/} in MANIFEST.tsv|NOTICE) continue;; esac
	id=$("$SD" open "$f") || { fail "open $f"; continue; }
	if "$FP" "$f" > "$T/ref" 2>/dev/null; then
		check "${f##*/}" "$T/ref" "$id"
		n=$((n + 1))
	else
		check_refused "${f##*/}" "$id"
		refused=$((refused + 1))
	fi
	id=$("$SD" open - < "$f") || { fail "open - < $f"; continue; }
	if "$FP" - < "$f" > "$T/ref" 2>/dev/null; then
		check "${f##*/} (stdin)" "$T/ref" "$id"
		n=$((n + 1))
	else
		check_refused "${f##*/} (stdin)" "$id"
		refused=$((refused + 1))
	fi
done
echo "$n dumps equal to ffprobe's, $refused inputs refused like ffprobe"
[ "$n" -gt 0 ] || fail "nothing compared"
finish
