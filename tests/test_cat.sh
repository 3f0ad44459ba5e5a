#!/bin/bash
# `shmdemux cat`: a stream remuxed for other media tools.
#  - every packet of every track comes out with the same payload (MD5),
#    size, key flag and timestamps (in seconds, up to one constant shift the
#    muxer may apply, within a millisecond) as ffprobe reads from the
#    source, for nut, matroska and mpegts, to stdout and to a file;
#  - piped into ffmpeg (`cat | ffmpeg -i -`) it decodes without an error;
#  - a live stream joined mid-way starts at a keyframe;
#  - MPEG-TS over UDP on the loopback address reaches an ffmpeg receiver
#    with every packet (paced with --realtime);
#  - usage errors exit 2, failures exit 1 with one line naming the cause, a
#    reader that goes away ends cat with 0.
. "$(dirname "$0")/lib.sh"
shm_init
media=$(shm_media_dir) || exit $?
shm_broker_start

passed=0 failed=0
ok() { echo "PASS $*"; passed=$((passed + 1)); }
ko() { echo "FAIL $*"; failed=$((failed + 1)); }

# One line per packet: stream,pts_time,dts_time,size,flags,md5. ffprobe
# starts a new line for a packet's side data; those begin with a comma and
# belong to the packet above.
packets() { # FILE
	ffprobe -v error -show_entries \
		packet=stream_index,pts_time,dts_time,size,flags,data_hash \
		-show_data_hash MD5 -of csv=p=0 "$1" |
		awk -F, '
			function out() { if (line != "") { split(line, f, ","); md5 = ""
				for (i in f) if (f[i] ~ /^MD5:/) md5 = f[i]
				print f[1] "," f[2] "," f[3] "," f[4] "," f[5] "," md5 } }
			/^,/ { line = line $0; next }
			{ out(); line = $0 }
			END { out() }'
}

# Compare two packet lists per track: same count, sizes, MD5s, key flags;
# timestamps equal within 1.1 ms up to one shift per track (a muxer may
# move a whole track: negative timestamps made non-negative, Opus's codec
# delay in Matroska).
# Prints nothing and succeeds when they match, else the first difference.
same_packets() { # SRC OUT [TRACK-MAP "0=0 2=1"] [no-times]
	packets "$1" >"$SHM_TMP/a" || return 1
	packets "$2" >"$SHM_TMP/b" || return 1
	awk -F, -v map="${3:-}" -v last=$([ "${4:-}" = no-times ] && echo 1 || echo 3) '
		function ts(x) { return x == "N/A" ? "" : x + 0 }
		BEGIN {
			n = split(map, m, " ")
			for (i = 1; i <= n; i++) { split(m[i], kv, "="); tr[kv[1]] = kv[2]; mapped = 1 }
		}
		NR == FNR {
			s = $1
			if (mapped) { if (!(s in tr)) next; s = tr[s] }
			a[s, ++na[s]] = $0; next
		}
		{ b[$1, ++nb[$1]] = $0 }
		END {
			for (s in na) if (na[s] != nb[s]) { printf "track %s: %d packets, %d out\n", s, na[s], nb[s]; exit 1 }
			for (s in nb) if (!(s in na)) { printf "track %s only in the output\n", s; exit 1 }
			for (s in na) for (i = 1; i <= na[s]; i++) {
				if (i == 1) shift = ""
				split(a[s, i], x, ","); split(b[s, i], y, ",")
				if (x[4] != y[4] || x[6] != y[6] || substr(x[5], 1, 1) != substr(y[5], 1, 1)) {
					printf "track %s packet %d: %s / %s\n", s, i, a[s, i], b[s, i]; exit 1
				}
				for (k = 2; k <= last; k++) {
					if ((x[k] == "N/A") != (y[k] == "N/A")) {
						if (k == 3) continue  # a muxer may fill in dts
						printf "track %s packet %d: %s / %s\n", s, i, a[s, i], b[s, i]; exit 1
					}
					if (x[k] == "N/A") continue
					d = ts(y[k]) - ts(x[k])
					if (shift == "") shift = d
					if (d - shift > 0.0011 || shift - d > 0.0011) {
						printf "track %s packet %d: time shifted by %.6f, not %.6f: %s / %s\n", s, i, d, shift, a[s, i], b[s, i]; exit 1
					}
				}
			}
		}' "$SHM_TMP/a" "$SHM_TMP/b"
}

# FILE FORMAT WHERE(stdout|file): open, cat, compare.
check() {
	local f=$media/$1 fmt=$2 where=$3 id out=$SHM_TMP/out.$2 why
	id=$(shm_cli open "$f") || { ko "$1 $fmt $where: open failed"; return; }
	if [ "$where" = stdout ]; then
		shm_cli cat "$id" --format "$fmt" >"$out" 2>"$SHM_TMP/err"
	else
		shm_cli cat "$id" --format "$fmt" -o "$out" 2>"$SHM_TMP/err"
	fi || { ko "$1 $fmt $where: cat exited $?: $(head -c 300 "$SHM_TMP/err")"; return; }
	if why=$(same_packets "$f" "$out" "${4:-}"); then
		ok "$1 -> $fmt ($where)"
	else
		ko "$1 -> $fmt ($where): $why"
	fi
	shm_cli close "$id" >/dev/null 2>&1
}

check h264_aac.mkv nut stdout
check h264_aac.mkv matroska stdout
check h264_aac_faststart.mp4 matroska file
check h264_aac.ts mpegts stdout
check h264_aac.ts nut file
check mpeg2_mp2.ts mpegts file
check vp9_opus.webm matroska stdout
check flac.ogg nut stdout
# Subtitles: matroska stores them; --tracks picks and renumbers.
check h264_aac_srt.mkv matroska file
tracks_sub() {
	local f=$media/h264_aac_srt.mkv id why
	id=$(shm_cli open "$f") || { ko "--tracks: open failed"; return; }
	if shm_cli cat "$id" --tracks 0,2 --format matroska -o "$SHM_TMP/t.mkv" 2>"$SHM_TMP/err" &&
		why=$(same_packets "$f" "$SHM_TMP/t.mkv" "0=0 2=1"); then
		ok "--tracks 0,2 (video and subtitles)"
	else
		ko "--tracks 0,2: ${why:-$(head -c 300 "$SHM_TMP/err")}"
	fi
}
tracks_sub

# Into ffmpeg through a pipe, as a user would.
pipe_ffmpeg() {
	local id n
	id=$(shm_cli open "$media/h264_aac.mkv") || { ko "pipe: open failed"; return; }
	if shm_cli cat "$id" 2>"$SHM_TMP/err" |
		timeout 60 ffmpeg -v error -xerror -i - -f framemd5 "$SHM_TMP/fm" 2>"$SHM_TMP/ff"; then
		n=$(grep -vc '^#' "$SHM_TMP/fm")
		ffmpeg -v error -i "$media/h264_aac.mkv" -f framemd5 "$SHM_TMP/fm.ref"
		if cmp -s <(grep -v '^#' "$SHM_TMP/fm" | cut -d, -f1,6) \
			<(grep -v '^#' "$SHM_TMP/fm.ref" | cut -d, -f1,6); then
			ok "cat | ffmpeg -i -: $n decoded frames, same MD5s as the file"
		else
			ko "cat | ffmpeg -i -: decoded frames differ from the file's"
		fi
	else
		ko "cat | ffmpeg -i -: $(head -c 300 "$SHM_TMP/ff" "$SHM_TMP/err")"
	fi
}
pipe_ffmpeg

# A live stream joined mid-way: the first packet of each track is a key
# packet, and packets before the join are not there.
live_join() {
	local src=$SHM_TMP/live.ts id total got first
	ffmpeg -v error -f lavfi -i testsrc2=s=160x120:r=25:d=4 -c:v libx264 \
		-preset ultrafast -g 10 -bf 0 -threads 1 -pix_fmt yuv420p \
		-fflags +bitexact -flags:v +bitexact -map_metadata -1 -f mpegts "$src" ||
		{ ko "live: ffmpeg failed"; return; }
	id=$(shm_cli open --mode live --realtime "$src") || { ko "live: open failed"; return; }
	# Returns once 15 packets were published after it attached (dump
	# writes out what it has whenever it would wait): the stream is under
	# way, no clock involved.
	shm_cli dump "$id" --from live --csv 2>/dev/null | head -n 15 >/dev/null
	if ! shm_cli cat "$id" --from live -o "$SHM_TMP/live.nut" 2>"$SHM_TMP/err"; then
		ko "live: cat exited $?: $(head -c 300 "$SHM_TMP/err")"
		return
	fi
	total=$(packets "$src" | wc -l)
	got=$(packets "$SHM_TMP/live.nut" | wc -l)
	first=$(packets "$SHM_TMP/live.nut" | head -n 1)
	if [ "$got" -gt 0 ] && [ "$got" -lt "$total" ] && [ "$(cut -d, -f5 <<<"$first" | cut -c1)" = K ]; then
		ok "live join: $got of $total packets, starting at a keyframe"
	else
		ko "live join: $got of $total packets, first: $first"
	fi
}
live_join

# MPEG-TS over UDP on the loopback address, paced by the stream.
udp_egress() {
	local port out=$SHM_TMP/udp.ts rp id why i
	port=$((20000 + RANDOM % 20000))
	timeout 60 ffmpeg -v error -y -i "udp://127.0.0.1:$port?timeout=3000000" \
		-c copy -f mpegts "$out" 2>"$SHM_TMP/rx.err" &
	rp=$!
	# ffmpeg says nothing when it listens: wait for its socket to exist.
	for i in $(seq 200); do
		ss -Hlun "sport = :$port" 2>/dev/null | grep -q . && break
		kill -0 "$rp" 2>/dev/null || break
		sleep 0.05
	done
	id=$(shm_cli open --realtime "$media/h264_aac.ts") || { ko "udp: open failed"; return; }
	if ! shm_cli cat "$id" --format mpegts -o "udp://127.0.0.1:$port?pkt_size=1316" 2>"$SHM_TMP/err"; then
		ko "udp: cat exited $?: $(head -c 300 "$SHM_TMP/err")"
		return
	fi
	wait "$rp"
	if why=$(same_packets "$media/h264_aac.ts" "$out"); then
		ok "udp://127.0.0.1: every packet received"
	else
		ko "udp://127.0.0.1: $why ($(head -c 200 "$SHM_TMP/rx.err"))"
	fi
}
if command -v ss >/dev/null; then udp_egress; else ko "udp: ss (iproute2) is not installed"; fi

# GStreamer reads it (fdsrc ! matroskademux) and remuxes it to a file
# whose packets are the source's: count, sizes, MD5s, key flags (its
# matroskamux retimes blocks in its own way, so times are not compared).
gstreamer() {
	local id out=$SHM_TMP/gst.mkv why
	id=$(shm_cli open "$media/h264_aac.mkv") || { ko "gstreamer: open failed"; return; }
	if shm_cli cat "$id" --format matroska 2>"$SHM_TMP/err" |
		timeout 60 gst-launch-1.0 -q -e fdsrc fd=0 ! matroskademux name=d \
			matroskamux name=m ! filesink location="$out" \
			d.video_0 ! queue ! m.video_0 d.audio_0 ! queue ! m.audio_0 \
			>"$SHM_TMP/gst.err" 2>&1 &&
		why=$(same_packets "$media/h264_aac.mkv" "$out" "" no-times); then
		ok "cat | gst-launch-1.0 fdsrc ! matroskademux: every payload"
	else
		ko "gstreamer: ${why:-$(head -c 300 "$SHM_TMP/gst.err" "$SHM_TMP/err")}"
	fi
}
skipped=0
if command -v gst-launch-1.0 >/dev/null; then
	gstreamer
else
	echo "SKIP gstreamer: gst-launch-1.0 is not installed (gstreamer1.0-tools, gstreamer1.0-plugins-good)"
	skipped=$((skipped + 1))
fi

# Errors.
expect() { # STATUS WHAT ARGS...
	local want=$1 what=$2 rc
	shift 2
	shm_cli "$@" >/dev/null 2>"$SHM_TMP/err"
	rc=$?
	if [ "$rc" -eq "$want" ] && shm_one_line "$SHM_TMP/err"; then
		ok "$what: exit $rc: $(cat "$SHM_TMP/err")"
	else
		ko "$what: exit $rc (want $want): $(head -c 300 "$SHM_TMP/err")"
	fi
}
id=$(shm_cli open "$media/h264_aac.mkv") || shm_die "open failed"
expect 2 "unknown muxer" cat "$id" --format nosuchmuxer
expect 2 "bad --tracks" cat "$id" --tracks 0,x
expect 1 "missing track" cat "$id" --tracks 7
expect 1 "no such stream" cat nosuchstream
expect 1 "unwritable output" cat "$id" -o "$SHM_TMP/no/such/dir/out.mkv"
expect 1 "track the muxer cannot store" cat "$id" --format wav --tracks 0
shm_cli cat "$id" --help | grep -q '^usage: shmdemux cat' && ok "cat --help" || ko "cat --help"
# The reader goes away after 1000 bytes: an ordinary end.
shm_cli cat "$id" 2>"$SHM_TMP/err" | head -c 1000 >/dev/null
rc=${PIPESTATUS[0]}
if [ "$rc" -eq 0 ] && ! [ -s "$SHM_TMP/err" ]; then
	ok "reader gone: exit 0, nothing on stderr"
else
	ko "reader gone: exit $rc: $(head -c 300 "$SHM_TMP/err")"
fi
# A stream that fails: its packets, then the cause.
id=$(shm_cli open --realtime "$SHM_TMP/live.ts") || shm_die "open failed"
shm_cli kill "$id" >/dev/null 2>&1
expect 1 "killed stream" cat "$id"

echo "cat: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
