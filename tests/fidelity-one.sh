#!/bin/bash
# One fidelity check against a running broker ($SHMDEMUX_SOCKET), used by the
# test_fidelity_*.sh scripts (several run in parallel).
# usage: fidelity-one.sh file|stdin|pipe|push MEDIA-FILE
#   file:  `shmdemux open FILE`            vs `ffprobe-packets FILE`
#   stdin: `shmdemux open - < FILE`        vs `ffprobe-packets - < FILE`
#   pipe:  `cat FILE | shmdemux open -`    vs `ffprobe-packets - < FILE`
#   push:  `shmdemux-example-push FILE`    vs `ffprobe-packets - < FILE`
# (ffprobe reads `-` as pipe:0, never seeking, whatever stdin is; shmdemux must
# treat `-` the same way, so stdin, pipe and push compare with that.)
# Except an MP4/MOV whose top-level mdat precedes its moov: on a pipe
# ffprobe finds no packets, shmdemux spools it and must print exactly what
# ffprobe prints for the file.
# When ffprobe reads the packets, `shmdemux dump --csv` must print the same
# bytes and exit 0. When ffprobe fails, shmdemux must fail cleanly: either
# `open` refuses with a one-line message, or `dump` prints what ffprobe printed
# and exits non-zero with a one-line message, and `ls` shows the failure.
# Prints one PASS or FAIL line on stdout; exits 0 on PASS.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/moov_at_end.sh"
SHM_TEST="fidelity $1"
shm_init
[ $# -eq 2 ] || shm_die "usage: fidelity-one.sh file|stdin|pipe|push FILE"
mode=$1 media=$2 label="$1 $(basename "$2")"
[ -n "${SHMDEMUX_SOCKET:-}" ] || shm_die "SHMDEMUX_SOCKET is not set"

id= ref=$SHM_TMP/ref.csv got=$SHM_TMP/got.csv err=$SHM_TMP/err

pass() { printf 'PASS %s%s\n' "$label" "${1:+ ($1)}"; exit 0; }
fail() {
	printf "FAIL %s: %s\n" "$label" "$*"
	# Leave nothing open in the shared broker.
	[ -z "${id:-}" ] || shm_cli close "$id" >/dev/null 2>&1
	[ -z "${push_pid:-}" ] || kill -9 "$push_pid" 2>/dev/null
	exit 1
}

# The first differing packet line, so a failure says what is wrong.
first_diff() {
	diff "$ref" "$got" | awk '
		/^[0-9]/ && !where { where = $0 }
		/^</ && !want { want = substr($0, 3) }
		/^>/ && !have { have = substr($0, 3) }
		END { printf "at %s: ffprobe [%s] shmdemux [%s]", where, want, have }'
}

# Bounded so a hung source can never hang the test.
case $mode in
file)
	timeout -k 5 "$SHMDEMUX_TEST_DEADLINE" "$SHMDEMUX_FFPROBE_PACKETS" "$media" \
		>"$ref" 2>/dev/null
	ref_rc=$?
	shm_cli open "$media" >"$SHM_TMP/id" 2>"$err"
	open_rc=$?
	;;
stdin | pipe | push)
	if moov_at_end "$media"; then
		label="$label (moov at end, spooled)"
		timeout -k 5 "$SHMDEMUX_TEST_DEADLINE" \
			"$SHMDEMUX_FFPROBE_PACKETS" "$media" >"$ref" 2>/dev/null
	else
		timeout -k 5 "$SHMDEMUX_TEST_DEADLINE" \
			"$SHMDEMUX_FFPROBE_PACKETS" - <"$media" >"$ref" 2>/dev/null
	fi
	ref_rc=$?
	if [ "$mode" = push ]; then
		# The producer prints the id, then blocks on the pipe until the
		# dump below attaches; its chunk sizes follow the file's size.
		exec {push_out}< <(exec timeout -k 5 "$SHMDEMUX_TEST_DEADLINE" \
			"$SHMDEMUX_BIN/shmdemux-example-push" \
			--seed "$(stat -c %s "$media")" "$media" 2>"$err.push")
		push_pid=$!
		read -r push_id <&"$push_out"
		printf '%s\n' "$push_id" >"$SHM_TMP/id"
		[ -n "$push_id" ] || cp "$err.push" "$err"
		[ -n "$push_id" ]
		open_rc=$?
	elif [ "$mode" = stdin ]; then
		shm_cli open - <"$media" >"$SHM_TMP/id" 2>"$err"
		open_rc=$?
	else
		# cat may die of SIGPIPE if open refuses early; only open's status counts.
		cat "$media" | shm_cli open - >"$SHM_TMP/id" 2>"$err"
		open_rc=${PIPESTATUS[1]}
	fi
	;;
*) shm_die "unknown mode $mode" ;;
esac
[ $ref_rc -ne 124 ] || fail "ffprobe-packets timed out"

if [ $open_rc -ne 0 ]; then
	[ $ref_rc -ne 0 ] || fail "open exited $open_rc: $(head -c 300 "$err")"
	shm_one_line "$err" || fail "open failed (exit $open_rc) without a one-line message"
	pass "refused at open: $(head -c 120 "$err")"
fi
id=$(head -n 1 "$SHM_TMP/id")
case $id in
'' | *[[:space:]]*) fail "open printed no stream id: [$(head -c 100 "$SHM_TMP/id")]" ;;
esac

shm_cli dump "$id" --csv >"$got" 2>"$err"
dump_rc=$?
[ $dump_rc -ne 124 ] && [ $dump_rc -ne 137 ] ||
	fail "dump did not finish within ${SHMDEMUX_TEST_DEADLINE}s"
if [ -n "${push_pid:-}" ]; then
	# The producer ends when its input is pushed (or the stream ended
	# first and refused the rest): its status is not the stream's.
	wait "$push_pid"
	[ $? -ne 124 ] || fail "the producer did not finish"
	push_pid=
	exec {push_out}<&-
fi

if [ $ref_rc -eq 0 ]; then
	cmp -s "$ref" "$got" ||
		fail "$(wc -l <"$ref") ffprobe packets, $(wc -l <"$got") from dump; $(first_diff)"
	why="$(wc -l <"$ref") packets"
	if [ $dump_rc -ne 0 ]; then
		# ffprobe stops at the first read error and still exits 0, so its
		# status cannot tell a read error from EOF. Reporting the error is
		# right as long as the packets up to it are ffprobe's; anything
		# else (a crash, a ring error) after the last packet is a failure.
		shm_one_line "$err" && shm_ls_line "$id" | grep -qw demux-error ||
			fail "dump exited $dump_rc: $(head -c 300 "$err")"
		why="$why, then demux-error where ffprobe stops silently"
	fi
else
	[ $dump_rc -ne 0 ] || fail "ffprobe exits $ref_rc but dump exited 0"
	shm_one_line "$err" ||
		fail "dump exited $dump_rc without a one-line message: $(head -c 300 "$err")"
	cmp -s "$ref" "$got" ||
		fail "before failing, dump printed other packets than ffprobe; $(first_diff)"
	shm_stream_failed "$id" ||
		fail "ls does not show the failure: [$(shm_ls_line "$id")]"
	why="fails like ffprobe: $(head -c 120 "$err")"
fi

shm_cli close "$id" >/dev/null 2>"$err" ||
	fail "close $id failed: $(head -c 300 "$err")"
pass "$why"
