#!/bin/bash
# Robustness campaign: hostile media never crashes or hangs the broker or a
# consumer.
#
# Seeded mutants (truncated, bit-flipped, spliced, header-corrupted; see
# mutate.c) of the real-world corpus and the generated media go through one
# private broker, SHMDEMUX_MUTATION_JOBS (4) at a time, half opened by path,
# half fed on stdin or a pipe, each dumped by `shmdemux dump --csv` under a
# deadline (mutation-one.sh). Asserted:
#   - the broker never dies and still answers `ls` at the end;
#   - every dump exits 0 (then the stream ended with eof) or 1 with a
#     one-line cause: never a signal, never the deadline;
#   - every stream shows a terminal state (ended:*) once its dump returns;
#   - once closed, no worker is left (no child of the broker) and no
#     /dev/shm object appeared.
# Prints a table of terminal statuses per mutation kind.
#
# usage: test_mutation.sh [--long]
#   SHMDEMUX_MUTANTS=N        mutants to run (default 1000; --long: 50000)
#   SHMDEMUX_MUTATION_SEED=S  campaign seed (default 1); a failing line names
#                             its index, so `MUT_FIRST=I SHMDEMUX_MUTANTS=1`
#                             replays one mutant
#   SHMDEMUX_CORPUS=DIR       real-world corpus, mutated too (default: the
#                             one beside the tree; without one, a note says
#                             only the generated media are mutated)
. "$(dirname "$0")/lib.sh"
shm_init

count=${SHMDEMUX_MUTANTS:-1000}
[ "${1:-}" = --long ] && count=${SHMDEMUX_MUTANTS_LONG:-50000}
first=${MUT_FIRST:-0}
jobs=${SHMDEMUX_MUTATION_JOBS:-4}
export MUT_SEED=${SHMDEMUX_MUTATION_SEED:-1}
export MUT_TOOL=${MUT_TOOL:-$SHMDEMUX_BIN/mutate}
[ -x "$MUT_TOOL" ] || shm_die "$MUT_TOOL is missing (build the mutate target)"

# Inputs, in a fixed order so a seed always means the same mutants.
export MUT_FILES=$SHM_TMP/files
media=$(shm_media_dir)
{
	find "$media" -maxdepth 1 -type f ! -name '.*' ! -name MANIFEST.tsv \
		-size +0 | LC_ALL=C sort
	if corpus=$(shm_corpus_find); then
		find "$corpus" -maxdepth 1 -type f ! -name MANIFEST.tsv \
			! -name NOTICE -size +0 | LC_ALL=C sort
	else
		shm_log "no corpus (set SHMDEMUX_CORPUS): mutating the generated media only" >&2
	fi
} >"$MUT_FILES"
[ -s "$MUT_FILES" ] || shm_die "no input files"

shm_broker_start
export MUT_BROKER_PID=$SHM_BROKER_PID
shm_before=$(ls /dev/shm 2>/dev/null | LC_ALL=C sort)

shm_log "$count mutants (seed $MUT_SEED, from $first) of $(wc -l <"$MUT_FILES") files, $jobs at a time"
results=$SHM_TMP/results
t0=$SECONDS
seq "$first" $((first + count - 1)) |
	xargs -n 8 -P "$jobs" "$SHMDEMUX_SRC/tests/mutation-one.sh" >"$results"
elapsed=$((SECONDS - t0))

# ---- verdicts ----
fails=0
done_n=$(wc -l <"$results")
if [ "$done_n" -ne "$count" ]; then
	shm_log "FAIL: $done_n results for $count mutants"
	fails=1
fi
if grep -v ' ok$' "$results" >"$SHM_TMP/failed"; then
	shm_log "FAIL: $(wc -l <"$SHM_TMP/failed") mutants failed (INDEX KIND INPUT SOURCE STATUS DUMP-EXIT MS):"
	head -n 30 "$SHM_TMP/failed" >&2
	fails=1
fi
kill -0 "$SHM_BROKER_PID" 2>/dev/null || shm_die "the broker died"
left=$(shm_cli ls) || shm_die "the broker does not answer ls"

# Every stream was closed: once its worker is reaped it is unlisted. Wait
# (bounded) for each remaining stream worker of the broker, a zombie
# included (the idle spare has no stream).
for pid in $(shm_stream_workers); do
	shm_wait_gone "$pid" 10 || {
		shm_log "FAIL: worker $pid still alive after its stream was closed"
		fails=1
	}
done
left=$(shm_cli ls | awk 'NR > 1') || shm_die "the broker does not answer ls"
if [ -n "$left" ]; then
	shm_log "FAIL: streams still listed after close:"
	printf '%s\n' "$left" | head -n 10 >&2
	fails=1
fi
shm_after=$(ls /dev/shm 2>/dev/null | LC_ALL=C sort)
new_shm=$(comm -13 <(printf '%s\n' "$shm_before") <(printf '%s\n' "$shm_after") |
	grep -i 'shmdemux\|ring' || true)
if [ -n "$new_shm" ]; then
	shm_log "FAIL: new /dev/shm objects: $new_shm"
	fails=1
fi

# ---- summary: terminal status x kind ----
echo "mutation campaign: $done_n mutants in ${elapsed}s (seed $MUT_SEED)"
awk '{ n[$5 " " $2]++; st[$5]++; k[$2]++; src[$4]++ }
END {
	printf "%-14s", "status"
	for (j in k) printf " %10s", j
	printf " %8s\n", "total"
	for (s in st) {
		printf "%-14s", s
		for (j in k) printf " %10d", n[s " " j]
		printf " %8d\n", st[s]
	}
	printf "sources:"
	for (x in src) printf " %s=%d", x, src[x]
	printf "\n"
}' "$results"
echo "slowest (INDEX KIND INPUT SOURCE STATUS DUMP-EXIT MS):"
sort -k7,7nr "$results" | head -n 5 | sed 's/^/  /'
[ $fails -eq 0 ] || exit 1
echo "mutation campaign: all passed"
