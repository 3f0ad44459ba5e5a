#!/bin/bash
# Generate the small, deterministic test media set with the ffmpeg CLI.
# usage: gen.sh OUTDIR          generate what is missing, write OUTDIR/MANIFEST.tsv
#        gen.sh --list          print the manifest (name, container, tracks)
# Outputs are cached: a file is only encoded when it is missing, and the whole
# set is dropped when this script or ffmpeg changes (OUTDIR/.stamp). Every
# encode is bit-exact with a fixed duration so the same bytes come out on every
# machine with the same ffmpeg; the fidelity tests compare shmdemux against
# ffprobe on these bytes, so the set covers one codec or container quirk per
# file rather than realistic content.
set -euo pipefail

DUR=2
SRC_V="-f lavfi -i testsrc2=s=320x240:r=25:d=$DUR"
SRC_VODD="-f lavfi -i testsrc2=s=322x182:r=30000/1001:d=$DUR"
SRC_A="-f lavfi -i sine=f=440:r=48000:d=$DUR"
SRC_A44="-f lavfi -i sine=f=1000:r=44100:d=$DUR"
# Noise barely compresses: 2 s of FLAC well over 160 KiB, in small frames.
SRC_NOISE="-f lavfi -i anoisesrc=d=$DUR:c=white:r=48000:a=0.5:seed=1"
BITEXACT="-fflags +bitexact -flags:v +bitexact -flags:a +bitexact -map_metadata -1"
X264="-c:v libx264 -preset ultrafast -bf 3 -g 25 -threads 1 -pix_fmt yuv420p"
X265="-c:v libx265 -preset ultrafast -x265-params log-level=error:pools=none:frame-threads=1 -pix_fmt yuv420p"
VP9="-c:v libvpx-vp9 -deadline realtime -cpu-used 8 -b:v 300k -threads 1 -g 25"
AV1="-c:v libsvtav1 -preset 12 -g 25"
MPEG2="-c:v mpeg2video -bf 2 -g 12 -q:v 4"
MPEG4="-c:v mpeg4 -bf 1 -g 25 -q:v 4"
STEREO="-ac 2"

# name|container|tracks|ffmpeg arguments (inputs, codecs, muxer options)
# $SUBS is an SRT file written next to the outputs.
MANIFEST='
h264_aac.mkv|matroska|video:h264(B-frames),audio:aac|$SRC_V $SRC_A $X264 -c:a aac $STEREO
h264_aac_srt.mkv|matroska|video:h264,audio:aac,subtitle:subrip|$SRC_V $SRC_A -i $SUBS -map 0 -map 1 -map 2 $X264 -c:a aac -c:s srt
h264_ass.mkv|matroska|video:h264,subtitle:ass|$SRC_V -i $SUBS -map 0 -map 1 $X264 -c:s ass
hevc_ac3.mkv|matroska|video:hevc(322x182),audio:ac3|$SRC_VODD $SRC_A $X265 -c:a ac3 $STEREO
av1_opus.mkv|matroska|video:av1,audio:opus|$SRC_V $SRC_A $AV1 -c:a libopus
flac.mka|matroska|audio:flac|$SRC_A -c:a flac
vp9_opus.webm|webm|video:vp9,audio:opus|$SRC_V $SRC_A $VP9 -c:a libopus $STEREO
vp9_vorbis_vtt.webm|webm|video:vp9,audio:vorbis,subtitle:webvtt|$SRC_V $SRC_A -i $SUBS -map 0 -map 1 -map 2 $VP9 -c:a libvorbis -c:s webvtt
h264_aac_faststart.mp4|mp4 (moov first)|video:h264(B-frames),audio:aac|$SRC_V $SRC_A $X264 -c:a aac -movflags +faststart
h264_aac_moovend.mp4|mp4 (moov at end)|video:h264(B-frames),audio:aac|$SRC_V $SRC_A $X264 -c:a aac
h264_aac_frag.mp4|fragmented mp4|video:h264,audio:aac|$SRC_V $SRC_A $X264 -c:a aac -movflags +frag_keyframe+empty_moov+default_base_moof
hevc_aac_text.mp4|mp4|video:hevc(hvc1),audio:aac,subtitle:mov_text|$SRC_V $SRC_A -i $SUBS -map 0 -map 1 -map 2 $X265 -tag:v hvc1 -c:a aac -c:s mov_text -movflags +faststart
av1_opus.mp4|mp4|video:av1,audio:opus|$SRC_V $SRC_A $AV1 -c:a libopus -strict -2
h264_pcm.mov|mov|video:h264,audio:pcm_s16le|$SRC_V $SRC_A $X264 -c:a pcm_s16le
h264_aac.ts|mpegts|video:h264(B-frames),audio:aac|$SRC_V $SRC_A $X264 -c:a aac
hevc_ac3.ts|mpegts|video:hevc(322x182),audio:ac3|$SRC_VODD $SRC_A $X265 -c:a ac3
mpeg2_mp2.ts|mpegts|video:mpeg2video,audio:mp2|$SRC_V $SRC_A $MPEG2 -c:a mp2
mpeg2_mp2.mpg|mpeg-ps|video:mpeg2video,audio:mp2|$SRC_V $SRC_A $MPEG2 -c:a mp2 -f vob
h264_mp3.flv|flv|video:h264,audio:mp3|$SRC_V $SRC_A44 $X264 -c:a libmp3lame
h264_aac.flv|flv|video:h264,audio:aac|$SRC_V $SRC_A $X264 -c:a aac
mpeg4_mp3.avi|avi|video:mpeg4(322x182,B-frames),audio:mp3|$SRC_VODD $SRC_A44 $MPEG4 -c:a libmp3lame
h264_ac3.avi|avi|video:h264,audio:ac3|$SRC_V $SRC_A $X264 -c:a ac3
vorbis.ogg|ogg|audio:vorbis|$SRC_A44 -c:a libvorbis $STEREO
opus.ogg|ogg|audio:opus|$SRC_A -c:a libopus
flac.ogg|ogg|audio:flac|$SRC_A -c:a flac
pcm_s16le.wav|wav|audio:pcm_s16le|$SRC_A44 -c:a pcm_s16le $STEREO
mpeg4_pcm.nut|nut|video:mpeg4,audio:pcm_s16le|$SRC_V $SRC_A $MPEG4 -c:a pcm_s16le
h264_opus.nut|nut|video:h264,audio:opus|$SRC_V $SRC_A $X264 -c:a libopus
aac.adts|adts|audio:aac|$SRC_A -c:a aac -f adts
mp3.mp3|mp3|audio:mp3|$SRC_A44 -c:a libmp3lame -write_xing 0
flac.flac|flac|audio:flac|$SRC_A -c:a flac
flac_noise.flac|flac|audio:flac(noise, 290 KB in 1 KB packets)|$SRC_NOISE -c:a flac -frame_size 576
ac3.ac3|ac3|audio:ac3|$SRC_A -c:a ac3 $STEREO
h264.h264|h264 (raw Annex B)|video:h264|$SRC_V $X264 -f h264
truncated.mp4|mp4 cut at 100000 bytes|damaged: partial mdat|@head -c 100000 "$out/h264_aac_faststart.mp4"
truncated.ts|mpegts cut mid-packet|damaged: last TS packet partial|@head -c 100001 "$out/h264_aac.ts"
garbage.bin|none|not media: ffprobe fails|@yes "not media at all" | head -c 65536
empty.bin|none|empty: ffprobe fails|@true
'

list() {
	printf '%s\n' "$MANIFEST" | awk -F'|' 'NF >= 4 { print $1 "\t" $2 "\t" $3 }'
}

gen_one() { # OUTDIR NAME ARGS
	local out=$1 name=$2 args=$3 tmp
	[ -e "$out/$name" ] && return 0
	tmp="$out/.tmp.$name"
	if [ "${args#@}" != "$args" ]; then
		# Derived from an encoded file: damaged or non-media bytes.
		out=$out bash -c "${args#@}" > "$tmp" || { rm -f "$tmp"; return 1; }
		mv -f "$tmp" "$out/$name"
		return 0
	fi
	# The argument strings are ours (above), so word splitting is intended.
	# shellcheck disable=SC2086
	SVT_LOG=1 ffmpeg -nostdin -hide_banner -loglevel error -y \
		$(eval echo "$args") $BITEXACT -t $DUR "$tmp" \
		|| { rm -f "$tmp"; echo "gen.sh: failed to make $name" >&2; return 1; }
	mv -f "$tmp" "$out/$name"
}

write_subs() {
	cat > "$1" <<'SRT'
1
00:00:00,100 --> 00:00:00,900
first cue

2
00:00:01,000 --> 00:00:01,800
second cue, <i>styled</i>
SRT
}

main() {
	[ $# -eq 1 ] || { echo "usage: gen.sh OUTDIR | --list" >&2; exit 2; }
	[ "$1" = --list ] && { list; exit 0; }
	command -v ffmpeg >/dev/null || { echo "gen.sh: ffmpeg not found" >&2; exit 1; }
	local out=$1 stamp
	mkdir -p "$out"
	out=$(cd "$out" && pwd)
	# Serialise concurrent callers (parallel ctest): the second one waits and
	# then finds everything already made.
	exec 9>"$out/.lock"
	flock 9
	stamp="$(md5sum < "${BASH_SOURCE[0]}" | cut -d' ' -f1) $(ffmpeg -version | head -n1)"
	if [ "$(cat "$out/.stamp" 2>/dev/null)" != "$stamp" ]; then
		find "$out" -mindepth 1 -maxdepth 1 ! -name .lock -exec rm -rf {} +
		printf '%s\n' "$stamp" > "$out/.stamp"
	fi
	SUBS="$out/.subs.srt"
	write_subs "$SUBS"
	local name container tracks args pids=() rc=0 pid
	while IFS="|" read -r name container tracks args; do
		[ -n "$args" ] && [ "${args#@}" = "$args" ] || continue
		gen_one "$out" "$name" "$args" &
		pids+=($!)
		# Two encodes at a time: the encoders are single-threaded.
		if [ ${#pids[@]} -ge 2 ]; then
			wait "${pids[0]}" || rc=1
			pids=("${pids[@]:1}")
		fi
	done <<< "$MANIFEST"
	for pid in "${pids[@]}"; do wait "$pid" || rc=1; done
	while IFS="|" read -r name container tracks args; do
		[ "${args#@}" != "$args" ] || continue
		gen_one "$out" "$name" "$args" || rc=1
	done <<< "$MANIFEST"
	list > "$out/MANIFEST.tsv"
	return $rc
}

main "$@"
