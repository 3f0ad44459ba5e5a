#!/bin/bash
# libshmdemux exports its public API and nothing else, in the shared and the
# static library alike: the defined global symbols of each (nm) are exactly
# the functions client/shmdemux.h declares SHMDEMUX_API (plus, in the shared
# library, the version nodes of client/libshmdemux.map). An internal name
# (ring_map, conn_open, ctl_send...) exported by either would clash with a
# program's own function of that name.
# usage: test_exported_symbols.sh HEADER MAP LIBSHMDEMUX_A LIBSHMDEMUX_SO
header=${1:?usage: test_exported_symbols.sh HEADER MAP LIB.a LIB.so}
map=${2:?} liba=${3:?} libso=${4:?}
command -v nm >/dev/null || { echo "SKIP: nm (binutils) not installed"; exit 77; }
for f in "$header" "$map" "$liba" "$libso"; do
	[ -r "$f" ] || { echo "FAIL: cannot read $f"; exit 1; }
done
T=$(mktemp -d "${TMPDIR:-/tmp}/shmdemux-syms.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT
failed=0
fail() { echo "FAIL: $*"; failed=1; }

# The public API: each SHMDEMUX_API declaration's function name (the
# marker stands on the line before the declaration, or on the same line).
awk '
	pending && match($0, /shmdemux_[a-z0-9_]+[ \t]*\(/) {
		s = substr($0, RSTART, RLENGTH); sub(/[ \t]*\($/, "", s)
		print s; pending = 0; next
	}
	/^[ \t]*SHMDEMUX_API([ \t]|$)/ {
		pending = 1
		if (match($0, /shmdemux_[a-z0-9_]+[ \t]*\(/)) {
			s = substr($0, RSTART, RLENGTH); sub(/[ \t]*\($/, "", s)
			print s; pending = 0
		}
	}' "$header" | sort -u >"$T/api"
napi=$(wc -l <"$T/api")
[ "$napi" -ge 10 ] || fail "only $napi SHMDEMUX_API functions found in $header"
# The version script exports by pattern (shmdemux_*): every API name must
# match one of its global patterns, and its version nodes are the only
# other names the shared library defines.
globs=$(awk '/global:/ { on = 1; next } /local:/ { on = 0 }
	on { gsub(/[ \t;]/, ""); if ($0 != "") print }' "$map")
[ -n "$globs" ] || fail "no global: patterns in $map"
while read -r name; do
	hit=0
	for g in $globs; do
		# shellcheck disable=SC2053
		[[ $name == $g ]] && hit=1
	done
	[ $hit = 1 ] || fail "$name (SHMDEMUX_API) is not exported by $map"
done <"$T/api"
awk '/^[A-Za-z_][A-Za-z0-9_.]*[ \t]*\{/ { print $1 }' "$map" | sort -u >"$T/nodes"

check() { # WHAT ALLOWED SYMBOLS
	local what=$1 extra
	extra=$(comm -13 "$2" "$3")
	[ -z "$extra" ] ||
		fail "$what exports $(wc -l <<<"$extra") symbol(s) outside the public API: $(tr '\n' ' ' <<<"$extra")"
	missing=$(comm -23 "$T/api" "$3")
	[ -z "$missing" ] ||
		fail "$what lacks public function(s): $(tr '\n' ' ' <<<"$missing")"
	[ -n "$extra$missing" ] ||
		echo "ok $what: $(wc -l <"$3") defined global symbols, all of the public API"
}

# Static: every defined global or weak symbol of every member.
nm -g --defined-only "$liba" | awk 'NF == 3 { print $3 }' | sort -u >"$T/a"
check "$(basename "$liba")" "$T/api" "$T/a"
# Shared: the dynamic symbol table, version suffixes dropped.
nm -D --defined-only "$libso" | awk 'NF == 3 { sub(/@.*/, "", $3); print $3 }' |
	sort -u >"$T/so"
sort -u "$T/api" "$T/nodes" >"$T/api+nodes"
check "$(basename "$libso")" "$T/api+nodes" "$T/so"
exit $failed
