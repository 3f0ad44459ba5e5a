#!/bin/bash
# Bounded libFuzzer run of the control-protocol intake (fuzz_ctl.c) from a
# seed corpus of valid messages (gen_ctl_seeds.c).
# usage: test_fuzz_ctl.sh FUZZER SEED-GENERATOR [ARTIFACT-DIR]
#   SHMDEMUX_FUZZ_SECONDS  run time (default 30)
# A crash input is kept in ARTIFACT-DIR (default: the temp dir, printed).
fuzzer=$1 gen=$2 art=${3:-}
if [ ! -x "$fuzzer" ]; then
	echo "SKIP: $fuzzer not built (needs clang with libFuzzer)"
	exit 77
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/sdfuzz.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
art=${art:-$tmp}
mkdir -p "$tmp/corpus" "$art" || exit 1
"$gen" "$tmp/corpus" || exit 1
# Leak detection on: a descriptor or buffer leaked per message would add up
# in a broker that runs for months.
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} \
"$fuzzer" -max_total_time="${SHMDEMUX_FUZZ_SECONDS:-30}" -timeout=10 \
	-rss_limit_mb=2048 -max_len=16385 -print_final_stats=1 \
	-artifact_prefix="$art/" "$tmp/corpus"
rc=$?
[ $rc -eq 0 ] && exit 0
# Never 77: ctest would read that as a skip.
echo "FAIL: fuzz_ctl exit $rc; crash input in $art"
exit 1
