# Shared helpers for the shell tests. Source it, then call shm_init.
#
# Environment (set by ctest from tests/CMakeLists.txt; defaults suit a manual
# run from the source tree after `cmake -B build`):
#   SHMDEMUX_BIN     directory holding shmdemuxd, shmdemux-worker, shmdemux
#   SHMDEMUX_SRC     source tree
#   SHMDEMUX_MEDIA   where tests/media/gen.sh caches the generated media
#   SHMDEMUX_CORPUS  real-world corpus: extra cases where a test has them
#                    (default: SHMDEMUX_CORPUS_DEFAULT, set by ctest to what
#                    CMake found beside the tree, else ../shared/corpus or
#                    ../../shared/corpus if there; none is fine)
#   SHMDEMUX_FFPROBE_PACKETS  reference packet dumper (default: the project's
#                    own tests/ffprobe-packets)
#   SHMDEMUX_TEST_DEADLINE    seconds any one CLI call may take (default 60)
#
# Every process a test starts is stopped and every file it made is removed on
# every exit path: shm_init installs an EXIT trap and turns the usual fatal
# signals into an exit so the trap runs.

SHM_SKIP=77

shm_log() { printf '%s: %s\n' "${SHM_TEST:-test}" "$*" >&2; }
shm_die() { shm_log "FAIL: $*"; exit 1; }
shm_skip() { shm_log "SKIP: $*"; exit $SHM_SKIP; }

# First existing entry of a list of candidate paths.
shm_first_existing() {
	local p
	for p in "$@"; do
		[ -n "$p" ] && [ -e "$p" ] && { printf '%s\n' "$p"; return 0; }
	done
	return 1
}

# Resolve the tree, the binaries and the reference tool; start the temp dir.
shm_init() {
	SHM_TEST=${SHM_TEST:-$(basename "$0" .sh)}
	local here
	here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
	SHMDEMUX_SRC=${SHMDEMUX_SRC:-$(dirname "$here")}
	SHMDEMUX_BIN=${SHMDEMUX_BIN:-$SHMDEMUX_SRC/build/bin}
	SHMDEMUX_MEDIA=${SHMDEMUX_MEDIA:-$(dirname "$SHMDEMUX_BIN")/media}
	SHMDEMUX_TEST_DEADLINE=${SHMDEMUX_TEST_DEADLINE:-60}
	export SHMDEMUX_SRC SHMDEMUX_BIN SHMDEMUX_MEDIA SHMDEMUX_TEST_DEADLINE

	local b
	for b in shmdemuxd shmdemux-worker shmdemux; do
		[ -x "$SHMDEMUX_BIN/$b" ] ||
			shm_die "$SHMDEMUX_BIN/$b is missing (build first, or set SHMDEMUX_BIN)"
	done
	SHMDEMUXD=$SHMDEMUX_BIN/shmdemuxd
	SHMDEMUX=$SHMDEMUX_BIN/shmdemux

	SHMDEMUX_FFPROBE_PACKETS=${SHMDEMUX_FFPROBE_PACKETS:-$SHMDEMUX_SRC/tests/ffprobe-packets}
	command -v ffprobe >/dev/null || shm_skip "ffprobe not installed"
	# A corpus asked for by name must be there: its cases are not optional.
	[ -z "${SHMDEMUX_CORPUS:-}" ] || [ -d "$SHMDEMUX_CORPUS" ] ||
		shm_die "SHMDEMUX_CORPUS=$SHMDEMUX_CORPUS is not a directory"
	export SHMDEMUX_FFPROBE_PACKETS

	SHM_TMP=$(mktemp -d "${TMPDIR:-/tmp}/shmdemux-test.XXXXXX") ||
		shm_die "mktemp failed"
	export SHM_TMP
	trap shm_cleanup EXIT
	trap 'exit 129' HUP
	trap 'exit 130' INT
	trap 'exit 143' TERM
}

# The real-world corpus directory, or nothing (status 1): it only adds cases.
# The repository normally sits next to shared/; a git worktree one level
# deeper. SHMDEMUX_CORPUS overrides; ctest sets SHMDEMUX_CORPUS_DEFAULT.
shm_corpus_find() {
	local d
	d=${SHMDEMUX_CORPUS:-${SHMDEMUX_CORPUS_DEFAULT:-$(shm_first_existing \
		"$SHMDEMUX_SRC/../shared/corpus" \
		"$SHMDEMUX_SRC/../../shared/corpus")}} || return 1
	[ -d "$d" ] || return 1
	printf '%s\n' "$d"
}

# The corpus directory, or skip the test: for tests whose only purpose is
# the corpus.
shm_corpus_dir() {
	shm_corpus_find ||
		shm_skip "no corpus (this test only checks the real-world corpus; set SHMDEMUX_CORPUS or put it at ../shared/corpus beside the tree)"
}

# Generate (or reuse) the media set; prints its directory.
shm_media_dir() {
	"$SHMDEMUX_SRC/tests/media/gen.sh" "$SHMDEMUX_MEDIA" >&2 ||
		shm_die "generating test media in $SHMDEMUX_MEDIA failed"
	printf '%s\n' "$SHMDEMUX_MEDIA"
}

# Start a private broker on a private socket. `--daemon` returns only once the
# socket listens, so no readiness polling is needed. --idle-exit is a backstop:
# if this shell is SIGKILLed before its trap runs, the broker still goes away.
shm_broker_start() {
	SHMDEMUX_SOCKET=$SHM_TMP/ctl.sock
	SHM_BROKER_PIDFILE=$SHM_TMP/broker.pid
	export SHMDEMUX_SOCKET
	"$SHMDEMUXD" --daemon --socket "$SHMDEMUX_SOCKET" \
		--pidfile "$SHM_BROKER_PIDFILE" --idle-exit 120 \
		</dev/null >>"$SHM_TMP/broker.log" 2>&1 ||
		shm_die "shmdemuxd --daemon failed: $(tail -n 3 "$SHM_TMP/broker.log")"
	SHM_BROKER_PID=$(cat "$SHM_BROKER_PIDFILE" 2>/dev/null)
	case $SHM_BROKER_PID in
	'' | *[!0-9]*) shm_die "broker wrote no pid to $SHM_BROKER_PIDFILE" ;;
	esac
	[ -S "$SHMDEMUX_SOCKET" ] || shm_die "broker returned but $SHMDEMUX_SOCKET is no socket"
}

# Wait (bounded) for a process that is not our child to exit. tail --pid
# checks every 50 ms; it only covers the last instant after the broker has
# dropped its pidfile lock (see shm_broker_stop).
shm_wait_gone() { # PID SECONDS
	kill -0 "$1" 2>/dev/null || return 0
	timeout "$2" tail --pid="$1" -s 0.05 -f /dev/null 2>/dev/null
	! kill -0 "$1" 2>/dev/null
}

# The broker holds an flock on its pidfile for its whole life and releases it
# as the very last thing before exiting, so taking that lock is the wait.
shm_broker_stop() {
	[ -n "${SHM_BROKER_PID:-}" ] || return 0
	local pid=$SHM_BROKER_PID
	SHM_BROKER_PID=
	kill -TERM "$pid" 2>/dev/null || return 0
	flock -w 10 "$SHM_BROKER_PIDFILE" true 2>/dev/null
	# Past its lock the broker is exiting; a sanitizer build still runs
	# its leak check then, which is slow on a loaded machine.
	shm_wait_gone "$pid" 30 && return 0
	shm_log "broker $pid did not exit within 40 s of SIGTERM; killing it"
	kill -KILL "$pid" 2>/dev/null
	shm_wait_gone "$pid" 5
	return 1
}

shm_cleanup() {
	local rc=$? pids
	trap - EXIT HUP INT TERM
	# Our own background jobs (consumers) first, then the broker.
	pids=$(jobs -p)
	if [ -n "$pids" ]; then
		# shellcheck disable=SC2086
		kill -KILL $pids 2>/dev/null
		wait 2>/dev/null
	fi
	shm_broker_stop || rc=1
	if [ -n "${SHM_TMP:-}" ] && [ -d "$SHM_TMP" ]; then
		if [ $rc -ne 0 ] && [ $rc -ne $SHM_SKIP ] && [ -s "$SHM_TMP/broker.log" ]; then
			shm_log "broker log (last lines):"
			tail -n 20 "$SHM_TMP/broker.log" >&2
		fi
		rm -rf "$SHM_TMP"
	fi
	exit $rc
}

# shmdemux with the per-call deadline. A hang becomes exit 124.
shm_cli() {
	timeout -k 5 "$SHMDEMUX_TEST_DEADLINE" "$SHMDEMUX" "$@"
}

# The `shmdemux ls` line of a stream (first column is the id), or nothing.
shm_ls_line() { # ID
	shm_cli ls 2>/dev/null | awk -v id="$1" '$1 == id { print; exit }'
}

# True when `ls` shows the stream ended with a failure: any end reason but
# eof and closed (sd_end_reason_name() in common/proto.c).
shm_stream_failed() { # ID
	shm_ls_line "$1" | grep -Eqw 'open-failed|demux-error|crashed|sandbox|memory-limit|watchdog|killed|exited|input-error|ring-error|exec-failed'
}

# Children of the broker that were given a stream: every child but the idle
# spare worker or the fork server, whose command line is still
# `shmdemux-worker --spare` or `--fork-server` (a worker that took a stream
# shows it in its title instead).
shm_stream_workers() {
	local pid
	for pid in $(pgrep -P "$SHM_BROKER_PID"); do
		tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null |
			grep -Eq -- ' --(spare|fork-server) $' && continue
		printf '%s\n' "$pid"
	done
}

# Exactly one non-empty line in a file: the CLI's error contract.
shm_one_line() { # FILE
	awk 'NF { n++ } END { exit !(NR == 1 && n == 1) }' "$1"
}

# Fidelity of every FILE, by path, as stdin and through a pipe, against the running
# broker, SHMDEMUX_TEST_JOBS (2) checks at a time. Prints one PASS/FAIL line
# per check; sets SHM_PASSED and SHM_FAILED (a check that printed nothing
# counts as failed).
shm_fidelity_all() { # FILE...
	local results=$SHM_TMP/fidelity.results f
	: >"$results"
	for f in "$@"; do printf 'file\0%s\0stdin\0%s\0pipe\0%s\0' "$f" "$f" "$f"; done |
		xargs -0 -n 2 -P "${SHMDEMUX_TEST_JOBS:-2}" \
			"$SHMDEMUX_SRC/tests/fidelity-one.sh" | tee -a "$results"
	SHM_PASSED=$(grep -c '^PASS' "$results")
	SHM_FAILED=$(($# * 3 - SHM_PASSED))
}
