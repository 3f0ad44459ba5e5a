#!/bin/bash
# Build and test everything: the normal build (build/) and the ASan+UBSan
# build (build-asan/), each with its own ctest run.
# usage: tests/run-all.sh            (from anywhere; as root it installs deps)
# Environment:
#   SHMDEMUX_NO_APT=1     do not run apt-get even as root
#   SHMDEMUX_NO_ASAN=1    skip the sanitizer build
#   SHMDEMUX_CORPUS=DIR   real-world media corpus (default ../shared/corpus)
# Exit status: 0 only when every configure, build and test step passed.
set -uo pipefail

src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
jobs=$(nproc 2>/dev/null || echo 2)
declare -a summary=()
failed=0

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

build_and_test() { # BUILD-DIR LABEL CMAKE-ARGS...
	local dir=$1 label=$2
	shift 2
	step "$label: configure" cmake -S "$src" -B "$src/$dir" "$@" || return 1
	step "$label: build" cmake --build "$src/$dir" -j "$jobs" || return 1
	step "$label: ctest" ctest --test-dir "$src/$dir" --output-on-failure -j2
}

step "install dependencies" "$src/tests/install-deps.sh" || {
	echo "dependency installation failed" >&2
	exit 1
}
# Test builds carry the worker's fault-injection switches (never releases).
build_and_test build "normal build" -DSHMDEMUX_FAULT_INJECTION=ON
if [ "${SHMDEMUX_NO_ASAN:-0}" != 1 ]; then
	# Stop at the first sanitizer report so the test that hit it fails.
	ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1} \
	UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
		build_and_test build-asan "sanitizer build" -DSHMDEMUX_SANITIZE=ON \
			-DSHMDEMUX_FAULT_INJECTION=ON
fi

echo
echo "==> summary"
printf '  %s\n' "${summary[@]}"
if [ $failed -ne 0 ]; then
	echo "run-all: FAILED"
	exit 1
fi
echo "run-all: all passed"
