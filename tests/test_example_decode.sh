#!/bin/bash
# The example consumer decodes from the ring exactly what ffmpeg decodes from
# the file: its per-frame MD5s equal the hash column of
# `ffmpeg -i FILE -map 0:X:0 -f framemd5 -`, with audio muxed as packed PCM
# of the decoder's own sample format (what the example hashes).
# usage: test_example_decode.sh BIN_DIR
command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null ||
	{ echo "SKIP: no ffmpeg"; exit 77; }
source "$(dirname "$0")/cli_env.sh" "$1"

vcodec=mpeg4
ffmpeg -hide_banner -encoders 2>/dev/null | grep -q ' libx264 ' && vcodec=libx264
ffmpeg -v error -f lavfi -i testsrc=size=320x240:rate=25:duration=3 \
	-pix_fmt yuv420p -c:v $vcodec -g 20 -bf 2 "$T/v.mp4" || exit 1
ffmpeg -v error -f lavfi -i sine=frequency=440:duration=2 -ac 2 -c:a aac \
	"$T/a.m4a" || exit 1
ffmpeg -v error -f lavfi -i sine=frequency=300:duration=2 -c:a flac \
	"$T/a.flac" || exit 1

# the PCM codec ffmpeg must mux to keep the decoder's format, packed
pcm_for() {
	case $(ffprobe -v error -select_streams a:0 -show_entries \
		stream=sample_fmt -of csv=p=0 "$1") in
	flt|fltp) echo pcm_f32le ;; dbl|dblp) echo pcm_f64le ;;
	s16|s16p) echo pcm_s16le ;; s32|s32p) echo pcm_s32le ;;
	u8|u8p) echo pcm_u8 ;; *) echo unknown ;;
	esac
}

check() { # FILE TYPE(v|a)
	local f=$1 type=$2 id
	local -a enc=()
	[ "$type" = a ] && enc=(-c:a "$(pcm_for "$f")")
	ffmpeg -v error -i "$f" -map 0:$type:0 "${enc[@]}" -f framemd5 - |
		grep -v '^#' | awk -F', *' '{print $6}' > "$T/ref"
	id=$("$SD" open "$f") || { fail "open $f"; return; }
	"$BIN/shmdemux-example-decode" "$id" > "$T/out" 2> "$T/err" ||
		{ fail "${f##*/}: decode failed: $(cat "$T/err")"; return; }
	awk -F, '$1 == 0 { print $3 }' "$T/out" > "$T/md5"
	if [ ! -s "$T/ref" ] || ! cmp -s "$T/ref" "$T/md5"; then
		fail "${f##*/}: frames differ from ffmpeg framemd5" \
		    "($(wc -l < "$T/ref") vs $(wc -l < "$T/md5"))"
		diff "$T/ref" "$T/md5" | head -4
	else
		echo "ok ${f##*/}: $(wc -l < "$T/ref") frames match"
	fi
}

check "$T/v.mp4" v
check "$T/a.m4a" a
check "$T/a.flac" a
finish
