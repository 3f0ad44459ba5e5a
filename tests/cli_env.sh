# cli_env.sh - sourced by the CLI tests: a private broker on a private
# socket in a fresh temporary directory, stopped (and waited for) on every
# exit path, with every background job of the test.
#   source cli_env.sh BIN_DIR
# Sets: BIN, T (temp dir), S (socket), SD (the CLI); exports SHMDEMUX_SOCKET.
BIN=$1
T=$(mktemp -d /tmp/sdcli.XXXXXX) || exit 1
S=$T/s.sock
SD=$BIN/shmdemux
export SHMDEMUX_SOCKET=$S

stop_broker() {
	local pid
	# The broker holds a lock on its pidfile for its whole life: hold the
	# file open, signal, then wait for the lock.
	exec 9<"$S.pid" 2>/dev/null || return 0
	pid=$(cat <&9)
	[ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && flock 9
	exec 9<&-
}

cli_cleanup() {
	local jobs_left
	jobs_left=$(jobs -p)
	[ -n "$jobs_left" ] && kill $jobs_left 2>/dev/null
	wait 2>/dev/null
	stop_broker
	rm -rf "$T"
}
trap cli_cleanup EXIT
trap 'exit 1' INT TERM HUP

# --daemon returns once the socket listens: no polling needed.
"$BIN/shmdemuxd" --daemon --socket "$S" 2>"$T/broker.log" || {
	echo "cannot start the broker:"; cat "$T/broker.log"; exit 1; }

fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
finish() {
	if [ "$fails" -gt 0 ]; then echo "$fails failures"; exit 1; fi
	echo "all passed"; exit 0
}
