#!/bin/bash
# Consumers in other containers, made with unshare(1): the broker runs here,
# the consumer in its own mount and pid namespaces (its /dev/shm and the
# media directory covered by empty tmpfs mounts, so the socket is all it
# shares with the broker), then in a user namespace as well (its root mapped
# to the broker's uid). Each reads a stream exactly as ffprobe does: the
# ring's descriptors pass across the namespaces, and the peer credentials
# both sides check are translated into each one's own namespace. A consumer
# whose user namespace maps it to another uid gets nothing (exit 1).
# Needs root (mounts); skips, saying why, where the kernel refuses
# namespaces.
. "$(dirname "$0")/lib.sh"
shm_init
media=$(shm_media_dir) || exit $?
[ "$(id -u)" -eq 0 ] || shm_skip "not root: mount namespaces need CAP_SYS_ADMIN"
command -v unshare >/dev/null || shm_skip "unshare (util-linux) not installed"
unshare --mount --pid --fork true 2>/dev/null ||
	shm_skip "the kernel refuses mount and pid namespaces here"

passed=0 failed=0
ok() { echo "PASS $*"; passed=$((passed + 1)); }
ko() { echo "FAIL $*"; failed=$((failed + 1)); }

T=$SHM_TMP
f=$media/h264_aac.mkv
"$SHMDEMUX_FFPROBE_PACKETS" "$f" >"$T/ref.csv" || shm_die "ffprobe-packets $f"
want=$(wc -l <"$T/ref.csv")
shm_broker_start

# NAME UNSHARE-ARGS...: open the file here, dump it from inside.
ns_dump() {
	local name=$1 id
	shift
	id=$(shm_cli open --name "$name" "$f") || { ko "$name: open"; return 1; }
	# exit 97: the namespace was not what the test meant it to be
	timeout -k 5 "$SHMDEMUX_TEST_DEADLINE" unshare "$@" --fork -- /bin/sh -c '
		{ mount -t tmpfs ns-shm /dev/shm && mount -t tmpfs ns-media "$1" &&
		  [ -z "$(ls -A "$1")" ] && [ ! -e "$5" ]; } || exit 97
		exec "$2" --socket "$3" dump "$4" --csv' \
		sh "$media" "$SHMDEMUX" "$SHMDEMUX_SOCKET" "$id" "$f" \
		>"$T/$name.csv" 2>"$T/$name.err"
}

check_dump() { # NAME WHAT RC
	if [ "$3" -eq 0 ] && cmp -s "$T/ref.csv" "$T/$1.csv"; then
		ok "$2: every packet as ffprobe ($want)"
	else
		ko "$2: exit $3, $(wc -l <"$T/$1.csv") of $want packets: $(head -c 300 "$T/$1.err")"
	fi
}

ns_dump mnt --mount --pid
check_dump mnt "mount + pid namespaces" $?

if unshare --user --map-root-user --mount --pid --fork true 2>/dev/null; then
	ns_dump usr --user --map-root-user --mount --pid
	check_dump usr "user + mount + pid namespaces (root inside = our uid)" $?
else
	echo "NOTE the kernel refuses user namespaces here: that case was not run"
fi

# A consumer whose namespace maps it to another uid (nobody): refused, no
# packet (the socket's mode stops it before the broker's own peer check).
if command -v setpriv >/dev/null &&
	setpriv --reuid 65534 --regid 65534 --clear-groups -- \
		unshare --user --map-root-user --fork true 2>/dev/null; then
	id=$(shm_cli open --name other "$f") || ko "other: open"
	timeout -k 5 "$SHMDEMUX_TEST_DEADLINE" \
		setpriv --reuid 65534 --regid 65534 --clear-groups -- \
		unshare --user --map-root-user --fork -- \
		"$SHMDEMUX" --socket "$SHMDEMUX_SOCKET" dump "$id" --csv \
		>"$T/other.csv" 2>"$T/other.err"
	rc=$?
	if [ $rc -eq 1 ] && [ ! -s "$T/other.csv" ] && shm_one_line "$T/other.err"; then
		ok "another uid in its own user namespace: refused ($(cat "$T/other.err"))"
	else
		ko "another uid: exit $rc, $(wc -l <"$T/other.csv") packets"
	fi
	shm_cli close "$id" >/dev/null 2>&1
else
	echo "NOTE setpriv or unprivileged user namespaces missing: the other-uid case was not run"
fi

echo "containers: $passed passed, $failed failed"
[ $failed -eq 0 ]
