#!/bin/bash
# A program that defines its own ring_map, conn_open and ctl_send (names of
# libshmdemux's internals) links statically against libshmdemux.a, gets its
# own functions' results, and reads every packet of a stream through the
# library (tests/static_link_clash.c): the archive defines only the public
# API (client/CMakeLists.txt).
# usage: test_static_link.sh STATIC_LINK_CLASH   (the program, built by CMake)
. "$(dirname "$0")/lib.sh"
shm_init
prog=${1:?usage: test_static_link.sh STATIC_LINK_CLASH}
media=$(shm_media_dir) || exit $?
f=$media/h264_aac.mkv

out=$("$prog" 2>&1) || shm_die "$prog (no stream): $out"
shm_log "ok: linked with its own ring_map, conn_open, ctl_send: $out"
"$SHMDEMUX_FFPROBE_PACKETS" "$f" >"$SHM_TMP/ref.csv" || shm_die "ffprobe-packets failed"
npk=$(wc -l <"$SHM_TMP/ref.csv")
shm_broker_start
id=$(shm_cli open "$f") || shm_die "open $f failed"
out=$(timeout -k 5 "$SHMDEMUX_TEST_DEADLINE" "$prog" "$SHMDEMUX_SOCKET" "$id" 2>&1) || shm_die "$prog: $out"
[ "${out%% *}" = "$npk" ] || shm_die "read '$out', want $npk packets"
shm_log "ok: read the stream to its end: $npk packets, as ffprobe"
