#!/bin/bash
# test_worker_fidelity.sh WORKER_RUN WORKER
# For every corpus file, the worker's packets (through a real ring, read by a
# consumer) must equal ffprobe-packets on the same bytes: the file handed over
# seekable vs `ffprobe-packets FILE`, and a pipe vs `ffprobe-packets - < FILE`.
# Inputs ffprobe cannot open must make the worker exit WORKER_EXIT_OPEN_FAILED.
# Corpus: $SHMDEMUX_CORPUS, else ../shared/corpus next to the source tree.
# Reference: $SHMDEMUX_FFPROBE_PACKETS, else ../shared/tools/ffprobe-packets.
run=${1:?usage: $0 WORKER_RUN WORKER}
worker=${2:?usage: $0 WORKER_RUN WORKER}
corpus=${SHMDEMUX_CORPUS:-$SHMDEMUX_CORPUS_DEFAULT}
ffpp=${SHMDEMUX_FFPROBE_PACKETS:-$SHMDEMUX_FFPROBE_PACKETS_DEFAULT}
EXIT_EOF=0 EXIT_OPEN_FAILED=10 EXIT_DEMUX_ERROR=11   # broker/worker_abi.h
LIMIT=60 # seconds per run: a hang is a failure, not a stuck test

if [ -z "$corpus" ] || [ ! -d "$corpus" ]; then
	echo "SKIP: corpus folder '$corpus' missing"; exit 77
fi
if [ -z "$ffpp" ] || [ ! -x "$ffpp" ]; then
	echo "SKIP: ffprobe-packets '$ffpp' missing"; exit 77
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
	if [ "$mode" = pipe ]; then
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

for f in "$corpus"/* "$tmp/empty" "$tmp/zeros"; do
	[ -f "$f" ] || continue
	check "$f" file
	check "$f" pipe
done

echo "worker fidelity: $ran runs, $matched match ffprobe, $refused refused" \
     "like ffprobe, $failed failed"
[ $ran -gt 0 ] || exit 77
[ $failed -eq 0 ]
