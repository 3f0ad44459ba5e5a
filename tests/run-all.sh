#!/bin/bash
# Build and test everything, as CI does:
#   build/          the test build (fault-injection switches): every test
#   build-asan/     the same under AddressSanitizer + UBSan: every test
#   build-release/  Release (-O3), as a user or a packager builds it: the
#                   core tests that need no fault switch ($RELEASE_TESTS)
#   build-clang/    the test build with clang: built, not tested
# Every build has -Werror (SHMDEMUX_WERROR=ON). After each ctest run a line
# says how many tests ran, passed, failed and were skipped, and why each
# skipped one did (tests/ctest-summary.sh): ctest counts a skip as a pass.
# usage: tests/run-all.sh            (from anywhere; as root it installs deps)
# Environment:
#   SHMDEMUX_NO_APT=1      do not run apt-get even as root
#   SHMDEMUX_NO_ASAN=1     skip the sanitizer build
#   SHMDEMUX_NO_RELEASE=1  skip the Release build
#   SHMDEMUX_NO_CLANG=1    skip the clang build
#   SHMDEMUX_CORPUS=DIR    real-world media corpus, extra cases (default:
#                          ../shared/corpus beside the tree, if there)
# Exit status: 0 only when every configure, build and test step passed.
set -uo pipefail

src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
jobs=$(nproc 2>/dev/null || echo 2)
declare -a summary=()
failed=0

# The Release build's tests: the core promise (rings, broker, isolation,
# client, spare worker, decoding), none needing a fault switch (a Release
# build has none), none of the long campaigns. About two minutes.
RELEASE_TESTS='^(media_generate|sandbox|worker_alloc|ring_.*|broker_(start|proto|streams|e2e|sigkill)|client_(api|cli)|isolation_(killed|memory|open-failed|whitelist|open-timeout|idle-source|full-ring|evict|consumers|watchdog_rule)|live_(keyframe|overrun)|spare_(handoff|malformed)|decode_frame_hold|frame_pool.*|exported_symbols|static_link|broker_links)$'

step() { # LABEL COMMAND...
	local label=$1 t0=$SECONDS rc
	shift
	echo "==> $label"
	"$@"
	rc=$?
	if [ $rc -eq 0 ]; then
		summary+=("ok     $label ($((SECONDS - t0)) s)")
	else
		summary+=("FAILED $label (exit $rc, $((SECONDS - t0)) s)")
		failed=1
	fi
	return $rc
}

# ctest, then what really ran: the counts and every skip with its reason.
run_ctest() { # BUILD-DIR LABEL [CTEST-ARGS...]
	local dir=$1 label=$2 junit=$1/Testing/run-all.junit.xml rc line
	shift 2
	rm -f "$junit"
	ctest --test-dir "$dir" --output-on-failure -j2 --output-junit "$junit" "$@"
	rc=$?
	"$src/tests/ctest-summary.sh" "$junit" "$label" > "$dir/Testing/run-all.summary" ||
		rc=1
	cat "$dir/Testing/run-all.summary"
	while IFS= read -r line; do
		summary+=("       $line")
	done < "$dir/Testing/run-all.summary"
	return $rc
}

build() { # BUILD-DIR LABEL CMAKE-ARGS...
	local dir=$1 label=$2
	shift 2
	step "$label: configure" cmake -S "$src" -B "$src/$dir" -DSHMDEMUX_WERROR=ON "$@" ||
		return 1
	step "$label: build" cmake --build "$src/$dir" -j "$jobs"
}

step "install dependencies" "$src/tests/install-deps.sh" || {
	echo "dependency installation failed" >&2
	exit 1
}
# Test builds carry the worker's fault-injection switches (never releases).
# The other builds share build/'s generated media (tests/media/gen.sh keeps
# it consistent under a lock): made once, not three times.
media=$src/build/media
build build "normal build" -DSHMDEMUX_FAULT_INJECTION=ON &&
	step "normal build: ctest" run_ctest "$src/build" "normal build"
if [ "${SHMDEMUX_NO_ASAN:-0}" != 1 ]; then
	build build-asan "sanitizer build" -DSHMDEMUX_SANITIZE=ON \
		-DSHMDEMUX_FAULT_INJECTION=ON -DSHMDEMUX_TEST_MEDIA="$media" &&
		# Stop at the first sanitizer report so the test that hit it fails.
		ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1} \
		UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
		step "sanitizer build: ctest" run_ctest "$src/build-asan" "sanitizer build"
fi
if [ "${SHMDEMUX_NO_RELEASE:-0}" != 1 ]; then
	build build-release "release build" -DCMAKE_BUILD_TYPE=Release \
		-DSHMDEMUX_TEST_MEDIA="$media" &&
		step "release build: ctest (core subset)" run_ctest \
			"$src/build-release" "release build" -R "$RELEASE_TESTS"
fi
if [ "${SHMDEMUX_NO_CLANG:-0}" != 1 ]; then
	if command -v clang > /dev/null; then
		CC=clang build build-clang "clang build" -DSHMDEMUX_FAULT_INJECTION=ON
	else
		summary+=("FAILED clang build: clang not installed (SHMDEMUX_NO_CLANG=1 skips it)")
		failed=1
	fi
fi

echo
echo "==> summary"
printf '  %s\n' "${summary[@]}"
if [ $failed -ne 0 ]; then
	echo "run-all: FAILED"
	exit 1
fi
echo "run-all: all passed"
