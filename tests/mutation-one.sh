#!/bin/bash
# A batch of mutants of the robustness campaign (test_mutation.sh) against the
# running broker ($SHMDEMUX_SOCKET), one after another.
# usage: mutation-one.sh INDEX...
# Environment: MUT_TOOL (the mutate binary), MUT_SEED, MUT_FILES (a file
# listing the inputs, one per line), MUT_BROKER_PID, and lib.sh's variables.
#
# Mutant INDEX: kind INDEX % 4 (see mutate.c); source INDEX / 4 % 2: 0 opens
# the file by path, 1 feeds it on stdin (`open - < FILE`, every second time
# through a real pipe, `cat FILE | open -`).
# Prints one line per mutant on stdout:
#   INDEX KIND INPUT SOURCE STATUS DUMP-EXIT MS ok|FAIL[:why]
# where STATUS is the end reason `ls` shows (eof, demux-error, ...) or
# "refused" when `open` itself failed cleanly, and MS the time it took.
. "$(dirname "$0")/lib.sh"
SHM_TEST=mutation
shm_init

mapfile -t files <"$MUT_FILES"

# One mutant. Never exits: every outcome is a result line.
one() { # INDEX
	local idx=$1 m=$SHM_TMP/m err=$SHM_TMP/err derr=$SHM_TMP/derr
	local kind input src id= rc status line cat_pid= t0=${EPOCHREALTIME/[.,]/}
	read -r kind input < <("$MUT_TOOL" "$MUT_SEED" "$idx" "$m" "${files[@]}")
	[ -n "$kind" ] || { echo "$idx - - - - - 0 FAIL:mutate"; return; }

	case $(( idx / 4 % 2 )):$(( idx / 8 % 2 )) in
	0:*) src=file; id=$(shm_cli open "$m" 2>"$err"); rc=$? ;;
	1:0) src=stdin; id=$(shm_cli open - <"$m" 2>"$err"); rc=$? ;;
	1:1)
		# The reader end must be running before the id is known: read the
		# id from a process substitution, cat goes on feeding the pipe.
		src=pipe
		exec {fd}< <(cat "$m" 2>/dev/null | shm_cli open - 2>"$err"
			     echo "rc ${PIPESTATUS[1]}")
		cat_pid=$!
		read -r id rc <&$fd
		if [ "$id" = rc ]; then
			id=
		else
			read -r _ rc <&$fd
		fi
		exec {fd}<&-
		;;
	esac
	set -- "$idx" "$kind" "$input" "$src"
	if ! kill -0 "$MUT_BROKER_PID" 2>/dev/null; then
		echo "$* - - 0 FAIL:broker-died"; return
	fi
	if [ -z "$id" ]; then
		# A refusal is fine if it is the CLI's clean failure.
		if [ "${rc:-1}" -eq 1 ] && shm_one_line "$err"; then
			echo "$* refused 1 0 ok"
		else
			echo "$* - ${rc:-?} 0 FAIL:open-exit-${rc:-?}:$(head -c 200 "$err" | tr '\n ' '|_')"
		fi
		return
	fi

	timeout -k 5 "$SHMDEMUX_TEST_DEADLINE" "$SHMDEMUX" dump "$id" --csv \
		>/dev/null 2>"$derr"
	rc=$?
	[ -n "$cat_pid" ] && wait "$cat_pid" 2>/dev/null
	line=$(shm_ls_line "$id")
	status=$(printf '%s\n' "$line" | grep -o 'ended:[a-z-]*' | head -n 1)
	status=${status#ended:}
	shm_cli close "$id" >/dev/null 2>&1
	set -- "$@" "${status:--}" "$rc" $(( (${EPOCHREALTIME/[.,]/} - t0) / 1000 ))
	if ! kill -0 "$MUT_BROKER_PID" 2>/dev/null; then
		echo "$* FAIL:broker-died"
	elif [ $rc -ne 0 ] && [ $rc -ne 1 ]; then
		echo "$* FAIL:dump-exit-$rc:$(head -c 200 "$derr" | tr '\n ' '|_')"
	elif [ $rc -eq 1 ] && ! shm_one_line "$derr"; then
		echo "$* FAIL:dump-stderr:$(head -c 200 "$derr" | tr '\n ' '|_')"
	elif [ -z "$status" ]; then
		echo "$* FAIL:not-ended:$(printf '%s' "$line" | tr -s ' ' '_')"
	elif [ $rc -eq 0 ] && [ "$status" != eof ]; then
		echo "$* FAIL:dump-0-but-$status"
	else
		echo "$* ok"
	fi
}

for i in "$@"; do
	one "$i"
done
