#!/bin/bash
# End-to-end fidelity on the generated media set (tests/media/gen.sh): for each
# file, opened by path, as stdin and through a pipe, `shmdemux dump --csv` must equal
# `ffprobe-packets` on the same bytes (see fidelity-one.sh). Then:
#  - three consumers started together on a --wait-consumers 3 stream all print
#    exactly ffprobe's packets;
#  - a moov-at-end MP4 through `open -` is spooled and prints what ffprobe
#    prints for the file.
. "$(dirname "$0")/lib.sh"
shm_init
media=$(shm_media_dir) || exit $?
mapfile -t files < <(awk -F'\t' -v d="$media" '{ print d "/" $1 }' "$media/MANIFEST.tsv")
[ ${#files[@]} -gt 0 ] || shm_die "no media listed in $media/MANIFEST.tsv"
shm_broker_start

shm_fidelity_all "${files[@]}"
passed=$SHM_PASSED failed=$SHM_FAILED

# N consumers attached at once, each must see the whole stream.
check_consumers() { # N FILE
	local n=$1 f=$2 id i rc label why= pids=()
	label="$n consumers $(basename "$f")"
	"$SHMDEMUX_FFPROBE_PACKETS" "$f" >"$SHM_TMP/c.ref" 2>/dev/null
	if ! id=$(shm_cli open --wait-consumers "$n" "$f" 2>"$SHM_TMP/c.err"); then
		why="open failed: $(head -c 200 "$SHM_TMP/c.err")"
	else
		for ((i = 0; i < n; i++)); do
			shm_cli dump "$id" --csv >"$SHM_TMP/c.$i" 2>"$SHM_TMP/c.$i.err" &
			pids+=($!)
		done
		for ((i = 0; i < n; i++)); do
			wait "${pids[i]}" || { rc=$?; why="consumer $i exited $rc: $(head -c 200 "$SHM_TMP/c.$i.err")"; }
		done
		for ((i = 0; i < n; i++)); do
			cmp -s "$SHM_TMP/c.ref" "$SHM_TMP/c.$i" ||
				why="${why:+$why; }consumer $i: $(wc -l <"$SHM_TMP/c.$i") lines, ffprobe $(wc -l <"$SHM_TMP/c.ref")"
		done
		shm_cli close "$id" >/dev/null 2>&1 || why="${why:+$why; }close failed"
	fi
	if [ -z "$why" ]; then
		echo "PASS $label ($(wc -l <"$SHM_TMP/c.ref") packets each)"
		passed=$((passed + 1))
	else
		echo "FAIL $label: $why"
		failed=$((failed + 1))
	fi
}
check_consumers 3 "$media/h264_aac.mkv"
check_consumers 3 "$media/h264_aac_frag.mp4"

# Explicitly, even though the loop above covers it: a moov-at-end MP4 on a
# pipe is spooled and must print what ffprobe prints for the file (ffprobe
# itself, on a pipe, cannot seek back to the moov and prints nothing).
if out=$("$SHMDEMUX_SRC/tests/fidelity-one.sh" pipe "$media/h264_aac_moovend.mp4"); then
	passed=$((passed + 1))
else
	failed=$((failed + 1))
fi
echo "${out/ h264_aac_moovend.mp4/ moov-at-end h264_aac_moovend.mp4}"

echo "summary: $passed passed, $failed failed (${#files[@]} generated files)"
[ "$failed" -eq 0 ]
