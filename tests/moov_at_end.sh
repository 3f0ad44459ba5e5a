# Sourced by the fidelity scripts.
# 0 if FILE's top-level boxes put an mdat before the moov (shmdemux spools
# such an input; broker/worker_spool.c walks the boxes the same way).
moov_at_end() {
	local f=$1 pos=0 len size type hdr
	len=$(stat -c %s "$f")
	while [ $((pos + 8)) -le "$len" ]; do
		hdr=$(od -An -tx1 -j "$pos" -N 16 "$f" | tr -d ' \n')
		size=$((16#${hdr:0:8})) type=${hdr:8:8}
		case $type in
		6d6f6f76) return 1 ;; # moov
		6d646174) return 0 ;; # mdat
		esac
		# the first box must be one an MP4/MOV may start with
		[ "$pos" -ne 0 ] || case $type in
		66747970 | 66726565 | 736b6970 | 77696465 | 706e6f74 | 75756964 | 73747970 | 73696478 | 50494354) ;;
		*) return 1 ;;
		esac
		[ "$size" -ne 1 ] || size=$((16#${hdr:16:16}))
		[ "$size" -ge 8 ] || return 1
		pos=$((pos + size))
	done
	return 1
}
