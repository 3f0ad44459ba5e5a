#!/bin/bash
# A compromised worker against every kind of consumer.
#
# The worker is assumed fully compromised by its input: it may write any
# bytes into its ring, its track table and its records at any time. The
# fault-injection build lets the broker make a worker do exactly that
# (SHMDEMUX_FAULT=KIND:N[:NAME], broker/worker_hostile.c). For each case,
# every consumer must end with an error code, never a signal, a sanitizer
# report or a hang; the broker must live and report the stream's end; and
# what the CLI prints must stay text: no control byte but newline and tab
# in human output, valid JSON with --json.
#
# usage: test_hostile.sh CASE
#   wrapped   wrapped_avframe track + TRUSTED packets carrying an AVFrame of
#             wild pointers: the decode example must refuse, not crash
#   tracks    hostile track table (codec ids, types, formats, sizes, time
#             bases, strings) and an end message full of escapes
#   sidedata  side data of every kind, right and wrong sizes; bad metas
#   frames    FRAME records with bogus planes, formats and sizes
#   escape    metadata with escapes, quotes, backslashes and invalid UTF-8
#             from a real file (ffmpeg -metadata), a hostile name and path
#   random    random damage to records, track table and status fields
#             while four readers read (SHMDEMUX_HOSTILE_STREAMS streams,
#             default 12; SHMDEMUX_HOSTILE_SEED, default 1)
#   struct    the same, field by field with values chosen to hurt
# Consumers: hostile_reader (every libshmdemux helper, each verdict
# checked), shmdemux dump --csv/--json/--framemd5/human, probe [--json],
# ls [--json], shmdemux-example-decode.
. "$(dirname "$0")/lib.sh"
SHM_TEST=hostile-${1:-}
shm_init

what=${1:?usage: test_hostile.sh CASE}
[ "${SHMDEMUX_FAULT_INJECTION:-0}" = 1 ] ||
	shm_skip "built without -DSHMDEMUX_FAULT_INJECTION=ON (no hostile worker)"
CONSUMER=$SHMDEMUX_BIN/hostile_reader
DECODE=$SHMDEMUX_BIN/shmdemux-example-decode
[ -x "$CONSUMER" ] && [ -x "$DECODE" ] || shm_die "hostile_reader or the decode example is not built"
command -v python3 >/dev/null || shm_skip "python3 is needed to check the output"

# A sanitizer report must end a consumer with a signal, not with exit 1,
# which would pass for an error code.
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}abort_on_error=1
export UBSAN_OPTIONS=${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}halt_on_error=1:abort_on_error=1

fails=0
ko() { shm_log "FAIL: $*"; fails=$((fails + 1)); }

# run LABEL ALLOWED CMD...: run a consumer under the deadline; its status
# must be one of ALLOWED ("0 1"); output in $SHM_TMP/LABEL.{out,err}.
run() {
	local label=$1 allowed=$2 rc
	shift 2
	timeout -k 5 "$SHMDEMUX_TEST_DEADLINE" "$@" \
		>"$SHM_TMP/$label.out" 2>"$SHM_TMP/$label.err"
	rc=$?
	case " $allowed " in
	*" $rc "*) return 0 ;;
	esac
	if [ $rc -gt 128 ] && [ $rc -ne 124 ]; then
		ko "$label: killed by signal $((rc - 128)) (allowed: $allowed)"
	elif [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
		ko "$label: no end within ${SHMDEMUX_TEST_DEADLINE}s"
	else
		ko "$label: exit $rc (allowed: $allowed)"
	fi
	sed 's/^/    /' "$SHM_TMP/$label.err" | head -n 20 >&2
	return 1
}

# What the CLI printed (tests/check_output.py, one run for many files):
# text: valid UTF-8, no control character (C0, DEL, C1) but newline and
# tab; json: one document; jsonl: one per line.
check_output() { # LABEL KIND:FILE...
	local label=$1
	shift
	"$SHMDEMUX_SRC/tests/check_output.py" "$@" 2>"$SHM_TMP/check.err" ||
		ko "$label: $(cat "$SHM_TMP/check.err")"
}

# One line on stderr naming the cause: the CLI's failure contract.
check_fail_line() { # LABEL
	local f=$SHM_TMP/$1.err
	if [ -s "$f" ] && ! shm_one_line "$f" &&
		! grep -qv 'overruns (packets lost)' "$f"; then
		ko "$1: more than one line on stderr"
	fi
}

wait_ended() { # ID SECONDS: the broker lists the stream as ended
	local id=$1 end=$((SECONDS + $2))
	while [ $SECONDS -lt $end ]; do
		shm_ls_line "$id" | grep -q 'ended:' && return 0
		kill -0 "$SHM_BROKER_PID" 2>/dev/null || return 1
		# a bounded poll of the broker's own word: nothing to wait on
		sleep 0.1
	done
	return 1
}

broker_alive() {
	kill -0 "$SHM_BROKER_PID" 2>/dev/null || { ko "the broker died"; return 1; }
	shm_cli ls >/dev/null || { ko "the broker does not answer ls"; return 1; }
}

# Every CLI view of a stream, each checked for text and JSON.
cli_views() { # ID TAG DUMP-ALLOWED
	local id=$1 tag=$2 allowed=$3
	run "$tag-dump" "$allowed" "$SHMDEMUX" dump "$id"
	run "$tag-csv" "$allowed" "$SHMDEMUX" dump "$id" --csv
	run "$tag-json" "$allowed" "$SHMDEMUX" dump "$id" --json
	# a stream of packets has no frames to hash: exit 1, one line
	run "$tag-md5" "$allowed 1" "$SHMDEMUX" dump "$id" --framemd5
	run "$tag-probe" "0 1" "$SHMDEMUX" probe "$id" --timeout 5000
	run "$tag-probe-json" "0 1" "$SHMDEMUX" probe "$id" --json \
		--timeout 5000
	run "$tag-ls" "0" "$SHMDEMUX" ls
	run "$tag-ls-json" "0" "$SHMDEMUX" ls --json
	local t=$SHM_TMP/$tag probe_json=()
	[ -s "$t-probe-json.out" ] && probe_json=("json:$t-probe-json.out")
	check_output "$tag: dump, probe, ls" text:"$t-dump".{out,err} \
		text:"$t-csv".{out,err} text:"$t-json.err" \
		text:"$t-md5".{out,err} text:"$t-probe".{out,err} \
		text:"$t-probe-json.err" text:"$t-ls".{out,err} \
		jsonl:"$t-json.out" "${probe_json[@]}" json:"$t-ls-json.out"
	for v in dump csv json md5 probe probe-json; do
		check_fail_line "$tag-$v"
	done
}

media=$(shm_media_dir)

# ---- scripted hostile workers: every record has a known verdict ----
scripted() { # CASE END-STATE
	local kind=$1 end=$2 id
	export SHMDEMUX_FAULT=$kind:0:victim
	shm_broker_start
	unset SHMDEMUX_FAULT
	id=$(shm_cli open --name victim "$media/h264_aac.mkv") ||
		shm_die "open: $(cat "$SHM_TMP/broker.log" | tail -n 3)"
	# the library consumer reads to the stream's end, checking each case
	run consumer "0" "$CONSUMER" "$SHMDEMUX_SOCKET" victim "$kind"
	# the library never prints, whatever it is fed
	grep -v '^hostile_reader: ' "$SHM_TMP/consumer.err" >"$SHM_TMP/lib.err"
	[ -s "$SHM_TMP/lib.err" ] &&
		ko "consumer: the library printed: $(head -n 5 "$SHM_TMP/lib.err")"
	wait_ended "$id" 30 || ko "the stream did not end"
	shm_ls_line "$id" | grep -qw "ended:$end" ||
		ko "ls: want ended:$end: $(shm_ls_line "$id")"
	# then the others, over the retained records
	run decode "0 1" "$DECODE" victim
	cli_views victim "$kind" "0 1"
	broker_alive
}

case $what in
wrapped)
	scripted wrapped eof
	# The attack: a decoder fed TRUSTED wrapped AVFrames follows the
	# pointers in the packet. The example must stop at the track's
	# refusal, with its one line.
	grep -q 'corrupt ring data' "$SHM_TMP/decode.err" ||
		ko "decode example: want a refusal, got: $(cat "$SHM_TMP/decode.err")"
	[ -s "$SHM_TMP/decode.out" ] && ko "decode example printed frames"
	grep -q '^0  *video  *wrapped_avframe' "$SHM_TMP/wrapped-probe.out" &&
		ko "probe shows the refused track as usable"
	;;
tracks)
	scripted tracks demux-error
	# the escapes are visible, not interpreted
	grep -q 'ended:demux-error' "$SHM_TMP/tracks-ls.out" ||
		ko "ls: no demux-error row"
	python3 -c '
import json, sys
rows = [r for r in json.load(sys.stdin) if r["name"] == "victim"]
assert rows and rows[0]["end_reason"] == "demux-error", rows
' <"$SHM_TMP/tracks-ls-json.out" || ko "ls --json: the victim row"
	grep -q 'failed validation\|refused' "$SHM_TMP/tracks-probe.out" ||
		ko "probe does not show refused tracks: $(head -n 5 "$SHM_TMP/tracks-probe.out")"
	;;
sidedata)
	scripted sidedata eof
	;;
frames)
	scripted frames eof
	run frames-md5 "1" "$SHMDEMUX" dump victim --framemd5
	grep -q '^0,0,' "$SHM_TMP/frames-md5.out" ||
		ko "dump --framemd5: the first good frame is missing"
	;;
escape)
	# Metadata a real file can carry: ffmpeg writes these bytes as given.
	title=$'\e[31mRED\e[0m\e]0;x\a "q" b\\s\tt\nn\x01\x7f'
	bad=$'caf\xe9 \xff\xfe'
	lang=$'e\e[2Jn'
	path="$SHM_TMP/"$'evil\e[7mname\x01'".mkv"
	ffmpeg -nostdin -v error -f lavfi -i testsrc2=s=64x48:r=5:d=1 \
		-f lavfi -i sine=d=1 -c:v mpeg4 -c:a pcm_s16le \
		-metadata:s:v:0 title="$title" -metadata:s:a:0 title="$bad" \
		-metadata:s:a:0 language="$lang" -metadata title="$title" \
		-y "$path" || shm_skip "ffmpeg cannot write the metadata"
	shm_broker_start
	# a name with an escape is refused, in one line of text
	run bad-name "1" "$SHMDEMUX" open --name "$(printf 'n\e[5mame')" "$path"
	check_output "open: refused name" text:"$SHM_TMP/bad-name.err"
	check_fail_line bad-name
	id=$(shm_cli open --name plain "$path") || shm_die "open $path"
	run escape-consumer "0" "$CONSUMER" "$SHMDEMUX_SOCKET" "$id" any
	wait_ended "$id" 30 || ko "the stream did not end"
	cli_views "$id" escape "0"
	# escapes shown as text, the strings still there
	grep -qF '\e[31mRED\e[0m' "$SHM_TMP/escape-probe.out" &&
		ko "probe shows titles (it never did)"
	grep -qF '\e[7mname' "$SHM_TMP/escape-ls.out" ||
		ko "ls: the source path's escape is not shown as \\e: $(cat "$SHM_TMP/escape-ls.out")"
	python3 - "$SHM_TMP/escape-probe-json.out" "$SHM_TMP/escape-ls-json.out" <<'EOF' || ko "JSON does not carry the strings"
import json, sys
probe = json.load(open(sys.argv[1]))
titles = [t["title"] for t in probe["tracks"]]
want = '\x1b[31mRED\x1b[0m\x1b]0;x\x07 "q" b\\s\tt\nn\x01\x7f'
assert want in titles, titles
assert any('\ufffd' in t for t in titles), titles           # invalid UTF-8
langs = [t["language"] for t in probe["tracks"]]
assert 'e\x1b[2Jn' in langs, langs
rows = json.load(open(sys.argv[2]))
assert any('evil\x1b[7mname\x01' in r["source"] for r in rows), rows
EOF
	broker_alive
	;;
random | struct)
	seed=${SHMDEMUX_HOSTILE_SEED:-1}
	streams=${SHMDEMUX_HOSTILE_STREAMS:-12}
	files=(h264_aac.mkv h264_aac.ts vp9_opus.webm mpeg2_mp2.ts
		h264_aac_srt.mkv flac.mka h264_aac_frag.mp4 mpeg4_mp3.avi)
	export SHMDEMUX_FAULT=$what=$seed:0
	shm_broker_start
	unset SHMDEMUX_FAULT
	declare -A outcome=() exits=() seen=()
	tot_p=0 tot_f=0 tot_t=0 tot_c=0
	for ((i = 0; i < streams; i++)); do
		f=$media/${files[i % ${#files[@]}]}
		opts=(--ring-size 128K --wait-consumers 4 --watchdog 3000)
		case $((i % 4)) in
		1) opts=(--mode live --ring-size 128K --watchdog 3000) ;;
		3) opts=(--decode all --ring-size 4M --wait-consumers 4
			--watchdog 3000) ;;
		esac
		id=$(shm_cli open "${opts[@]}" "$f" 2>"$SHM_TMP/open.err") || {
			# a decode open refused (ring check) is a clean refusal
			shm_one_line "$SHM_TMP/open.err" ||
				ko "stream $i: open: $(cat "$SHM_TMP/open.err")"
			continue
		}
		tag=s$i
		t0=$SECONDS
		pids=()
		bg() { # LABEL CMD...: a concurrent consumer under the deadline
			local label=$1
			shift
			timeout -k 5 "$SHMDEMUX_TEST_DEADLINE" "$@" \
				>"$SHM_TMP/$tag-$label.out" \
				2>"$SHM_TMP/$tag-$label.err" &
			pids+=($!)
		}
		bg consumer "$CONSUMER" "$SHMDEMUX_SOCKET" "$id" any
		bg csv "$SHMDEMUX" dump "$id" --csv
		bg json "$SHMDEMUX" dump "$id" --json --from keyframe
		bg decode "$DECODE" "$id"
		bg probe "$SHMDEMUX" probe "$id" --json --timeout 3000
		run "$tag-ls" "0" "$SHMDEMUX" ls
		labels=(consumer csv json decode probe)
		allowed=("0" "0 1" "0 1" "0 1" "0 1")
		for k in "${!labels[@]}"; do
			wait "${pids[k]}"
			rc=$?
			exits[${labels[k]}:$rc]=$(( ${exits[${labels[k]}:$rc]:-0} + 1 ))
			case " ${allowed[k]} " in
			*" $rc "*) ;;
			*)
				ko "stream $i (${f##*/}, ${opts[*]}): ${labels[k]} exited $rc"
				sed 's/^/    /' "$SHM_TMP/$tag-${labels[k]}.err" |
					head -n 20 >&2
				;;
			esac
		done
		how=$(sed -n 's/^hostile_reader: ended with \([^:]*\):.*/\1/p' \
			"$SHM_TMP/$tag-consumer.out")
		grep -q '^hostile_reader: gave up' "$SHM_TMP/$tag-consumer.out" &&
			how="gave up: 1000 corrupt records in a row"
		read -r np nf nt nc < <(sed -n 's/^hostile_reader: ended with [^:]*: \([0-9]*\) packets, \([0-9]*\) frames, \([0-9]*\) tables, \([0-9]*\) corrupt.*/\1 \2 \3 \4/p' \
			"$SHM_TMP/$tag-consumer.out")
		tot_p=$((tot_p + ${np:-0})); tot_f=$((tot_f + ${nf:-0}))
		tot_t=$((tot_t + ${nt:-0})); tot_c=$((tot_c + ${nc:-0}))
		[ -n "$how" ] || how=$(sed -n 's/^hostile_reader: attach: \(.*\)/attach: \1/p' \
			"$SHM_TMP/$tag-consumer.err")
		seen[${how:-?}]=$(( ${seen[${how:-?}]:-0} + 1 ))
		t_read=$SECONDS
		wait_ended "$id" 60 || ko "stream $i: did not end"
		[ -n "${SHMDEMUX_HOSTILE_VERBOSE:-}" ] &&
			shm_log "stream $i (${f##*/} ${opts[*]}): readers $((t_read - t0))s, end $((SECONDS - t_read))s"
		line=$(shm_ls_line "$id")
		st=$(printf '%s\n' "$line" | grep -o 'ended:[^ ]*' | head -n 1)
		outcome[${st:-none}]=$(( ${outcome[${st:-none}]:-0} + 1 ))
		t=$SHM_TMP/$tag
		probe_json=()
		[ -s "$t-probe.out" ] && probe_json=("json:$t-probe.out")
		check_output "stream $i" text:"$t-csv.err" text:"$t-json.err" \
			text:"$t-probe.err" text:"$t-ls.out" \
			jsonl:"$t-json.out" "${probe_json[@]}"
		# the library never prints: anything not the consumer's own
		grep -v '^hostile_reader: ' "$SHM_TMP/$tag-consumer.err" \
			>"$SHM_TMP/lib.err"
		[ -s "$SHM_TMP/lib.err" ] &&
			ko "stream $i: the library printed: $(head -n 3 "$SHM_TMP/lib.err")"
		broker_alive || break
		shm_cli close "$id" >/dev/null 2>&1
	done
	printf 'hostile %s (seed %s): %d streams\n  broker ends:' "$what" "$seed" "$streams"
	for k in "${!outcome[@]}"; do printf ' %s=%d' "$k" "${outcome[$k]}"; done
	printf '\n  library consumer ended with:'
	for k in "${!seen[@]}"; do printf ' [%s]=%d' "$k" "${seen[$k]}"; done
	printf '\n  it checked %d packets, %d frames, %d track tables; %d records refused' \
		"$tot_p" "$tot_f" "$tot_t" "$tot_c"
	printf '\n  exit statuses:'
	for k in "${!exits[@]}"; do printf ' %s=%d' "$k" "${exits[$k]}"; done
	echo
	;;
*)
	shm_die "unknown case $what"
	;;
esac

[ $fails -eq 0 ] || exit 1
echo "hostile $what: every consumer ended with a code, the broker lives"
