#!/bin/bash
# Decoding in the worker is bit-exact with FFmpeg: for every decoded track,
# the frames `shmdemux dump --framemd5` prints hash like the md5 column of
# `ffmpeg -i FILE -map 0:INDEX -f framemd5 -` (audio muxed as the packed PCM
# of the decoder's own sample format). Also: tracks not decoded stay
# packets, two readers see the same frames, a ring too small for two frames
# is refused at open with a clear message (and the stream closed), and
# damaged input only counts errors.
# usage: test_decode.sh   (SHMDEMUX_BIN, SHMDEMUX_MEDIA from the build;
#        SHMDEMUX_CORPUS or SHMDEMUX_CORPUS_DEFAULT: a corpus file is added)
command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null ||
	{ echo "SKIP: no ffmpeg"; exit 77; }
M=${SHMDEMUX_MEDIA:?}
CORPUS=${SHMDEMUX_CORPUS:-${SHMDEMUX_CORPUS_DEFAULT:-}}
[ -f "$M/MANIFEST.tsv" ] ||
	{ echo "FAIL: no generated media in $M (tests/media/gen.sh $M)"; exit 1; }
source "$(dirname "$0")/cli_env.sh" "${SHMDEMUX_BIN:?}"

# the PCM codec ffmpeg must mux to keep the decoder's format, packed
pcm_for() {
	case $1 in
	flt|fltp) echo pcm_f32le ;; dbl|dblp) echo pcm_f64le ;;
	s16|s16p) echo pcm_s16le ;; s32|s32p) echo pcm_s32le ;;
	s64|s64p) echo pcm_s64le ;; u8|u8p) echo pcm_u8 ;; *) echo unknown ;;
	esac
}

# ffmpeg's md5 column for stream INDEX of FILE
reference() { # FILE INDEX TYPE SAMPLE_FMT
	local -a enc=()
	[ "$3" = audio ] && enc=(-c:a "$(pcm_for "$4")")
	ffmpeg -nostdin -v error -i "$1" -map "0:$2" "${enc[@]}" \
		-f framemd5 - | grep -v '^#' | awk -F', *' '{ print $6 }'
}

# The sample format the worker's decoder produced for track INDEX (from a
# human-readable dump): ffprobe may name another one when the demuxer
# changed the codec id after probing (MPEG audio in TS: mp3 -> mp2).
decoded_fmt() { # INDEX
	awk -v t="$1" '$3 == t && $4 == "frame" { print $7; exit }' "$T/human"
}

# Video of the DR1 decoders (H.264, HEVC, VP9, MPEG-2, MPEG-4) is decoded
# in the frame pool: with the default pool every frame of these small files
# (docs/RING.md, "Frame pool"); others (libdav1d's AV1) are copied.
pooled_check() { # NAME STATS-FILE
	local pooled copied
	pooled=$(sed -n 's/.* pooled \([0-9]*\).*/\1/p' "$2")
	copied=$(sed -n 's/.* copied \([0-9]*\).*/\1/p' "$2")
	echo "$1: video frames pooled ${pooled:-?}, copied ${copied:-?}"
	case $1 in
	h264*|hevc*|vp9*|mpeg2*|mpeg4*)
		[ "${pooled:-0}" -gt 0 ] && [ "${copied:-1}" -eq 0 ] ||
			fail "$1: not decoded in the frame pool" ;;
	esac
}

check() { # FILE
	local f=$1 name=${1##*/} id idx type sfmt n
	id=$("$SD" open --decode all --wait-consumers 2 "$f") ||
		{ fail "$name: open"; return; }
	"$SD" dump "$id" > "$T/human" 2>&1 &
	"$SD" dump "$id" --framemd5 --stats > "$T/out" 2> "$T/err" ||
		{ fail "$name: dump failed: $(cat "$T/err")"; wait; return; }
	wait $! || { fail "$name: second dump failed"; return; }
	pooled_check "$name" "$T/err"
	while IFS=, read -r idx type sfmt; do
		[ "$type" = video ] || [ "$type" = audio ] || continue
		[ "$type" = audio ] && sfmt=$(decoded_fmt "$idx")
		reference "$f" "$idx" "$type" "$sfmt" > "$T/ref"
		awk -F, -v t="$idx" '$1 == t { print $3 }' "$T/out" > "$T/md5"
		n=$(wc -l < "$T/ref")
		if [ "$n" -eq 0 ] || ! cmp -s "$T/ref" "$T/md5"; then
			fail "$name track $idx ($type): frames differ from" \
			    "ffmpeg framemd5 ($n vs $(wc -l < "$T/md5"))"
			diff "$T/ref" "$T/md5" | head -4
		else
			echo "ok $name track $idx ($type): $n frames match"
		fi
	done < <(ffprobe -v error -show_entries \
		stream=index,codec_type,sample_fmt -of csv=p=0 "$f" |
		awk 'NF && !seen[$0]++')
}

for f in h264_aac.mkv hevc_ac3.mkv vp9_vorbis_vtt.webm av1_opus.mkv \
	mpeg2_mp2.ts h264_pcm.mov opus.ogg flac.flac mp3.mp3 \
	pcm_s16le.wav mpeg4_mp3.avi h264_aac_moovend.mp4; do
	check "$M/$f"
done
# the corpus, where there is one, adds a file from another muxer
for f in sample.mkv; do
	[ -n "$CORPUS" ] && [ -f "$CORPUS/$f" ] && check "$CORPUS/$f"
done

# Undecoded tracks stay packets: subtitles of a decoded file, and the
# audio of a video-only decode.
id=$("$SD" open --decode video "$M/h264_aac.mkv") || fail "open --decode video"
"$SD" dump "$id" > "$T/human" || fail "dump of a video-only decode"
grep -q ' track 0  frame ' "$T/human" && grep -q ' track 1  pts ' "$T/human" ||
	fail "video decoded, audio not kept as packets"

# Two readers of one decoded stream see the same frames.
id=$("$SD" open --decode all --wait-consumers 2 "$M/h264_aac.ts") ||
	fail "open for two readers"
"$SD" dump "$id" --framemd5 > "$T/r1" &
p1=$!
"$SD" dump "$id" --framemd5 > "$T/r2" || fail "second reader"
wait $p1 || fail "first reader"
if [ -s "$T/r1" ] && cmp -s "$T/r1" "$T/r2"; then
	echo "ok two readers: $(wc -l < "$T/r1") identical frames"
else
	fail "two readers saw different frames"
fi

# --csv and --json print frames too, the same frames as --framemd5.
id=$("$SD" open --decode all --wait-consumers 2 "$M/h264_aac.mkv") ||
	fail "open for csv/json"
"$SD" dump "$id" --csv > "$T/csv" &
p1=$!
"$SD" dump "$id" --json > "$T/json" || fail "dump --json of frames"
wait $p1 || fail "dump --csv of frames"
awk -F, '$1 == "frame" { print $3 "," $4 "," $6 }' "$T/csv" > "$T/csv.f"
sed -n 's/.*"track":\([0-9]*\),"frame":"[a-z]*","pts":\([-0-9]*\),.*"md5":"\([0-9a-f]*\)".*/\1,\2,\3/p' \
	"$T/json" > "$T/json.f"
id=$("$SD" open --decode all "$M/h264_aac.mkv") &&
	"$SD" dump "$id" --framemd5 > "$T/fm" || fail "framemd5 for csv/json"
if [ -s "$T/fm" ] && cmp -s "$T/fm" "$T/csv.f" && cmp -s "$T/fm" "$T/json.f"; then
	echo "ok --csv and --json: the $(wc -l < "$T/fm") frames of --framemd5"
else
	fail "--csv/--json frames differ from --framemd5 ($(wc -l < "$T/fm") / $(wc -l < "$T/csv.f") / $(wc -l < "$T/json.f"))"
fi
# --framemd5 of a stream of packets is an error, not an empty output.
id=$("$SD" open "$M/h264_aac.mkv") || fail "open without --decode"
"$SD" dump "$id" --framemd5 > "$T/out" 2> "$T/err"; rc=$?
if [ $rc -eq 1 ] && [ ! -s "$T/out" ] && [ "$(wc -l < "$T/err")" -eq 1 ] &&
	grep -q "carries packets, not decoded frames" "$T/err"; then
	echo "ok --framemd5 of packets: $(cat "$T/err")"
else
	fail "--framemd5 of packets: exit $rc, $(cat "$T/err")"
fi

# An explicit ring too small for two frames is refused at open: exit 1,
# one line naming the size needed, and the stream is closed.
nstreams() { "$SD" ls --json | grep -o '"id":' | wc -l; }
before=$(nstreams)
if "$SD" open --decode video --ring-size 128K "$M/h264_aac.mkv" \
	> "$T/out" 2> "$T/err"; then
	fail "a ring too small for two frames was accepted: $(cat "$T/out")"
elif [ "$(wc -l < "$T/err")" -eq 1 ] && grep -q "^shmdemux: open refused: .*ring size 131072 too small for 320x240 yuv420p frames; need at least [0-9]" "$T/err"; then
	echo "ok small ring refused at open: $(cat "$T/err")"
else
	fail "small ring: unexpected message: $(cat "$T/err")"
fi
[ -s "$T/out" ] && fail "small ring: an id was printed: $(cat "$T/out")"
[ "$(nstreams)" -eq "$before" ] ||
	fail "the refused stream is still listed: $("$SD" ls)"
# ... and a ring of the size named is accepted and decodes bit-exact.
need=$(sed -n 's/.*need at least \([0-9]*\).*/\1/p' "$T/err")
if id=$("$SD" open --decode video --ring-size "${need:-0}" \
	"$M/h264_aac.mkv"); then
	"$SD" dump "$id" --framemd5 | awk -F, '$1 == 0 { print $3 }' \
		> "$T/md5" || fail "dump with a ring of $need bytes"
	reference "$M/h264_aac.mkv" 0 video > "$T/ref"
	if [ -s "$T/ref" ] && cmp -s "$T/ref" "$T/md5"; then
		echo "ok ring of $need bytes: $(wc -l < "$T/ref") frames match"
	else
		fail "ring of $need bytes: frames differ from ffmpeg framemd5"
	fi
else
	fail "open with the ring size the worker named ($need)"
fi
# stdin still works with the wait
id=$("$SD" open --decode video - < "$M/h264_aac.mkv") &&
	"$SD" dump "$id" --framemd5 > /dev/null || fail "open --decode -"

# Damaged input: decoder errors are counted, the stream still ends at EOF.
for f in truncated.ts truncated.mp4; do
	id=$("$SD" open --decode all "$M/$f") || { fail "open $f"; continue; }
	"$SD" dump "$id" --framemd5 > /dev/null 2> "$T/err" ||
		fail "$f: decoding damaged input failed: $(cat "$T/err")"
done
finish
