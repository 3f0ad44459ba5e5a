#!/bin/bash
# What a user installs, run as a user runs it:
#  - `cmake --install` into a scratch prefix: the installed CLI, broker and
#    worker (libexec/shmdemux, found by the broker relative to itself) run
#    without LD_LIBRARY_PATH, and `shmdemux open` + `dump --csv` of a
#    generated file equal ffprobe's packets;
#  - a consumer built against the installed tree with find_package(shmdemux)
#    (shared and static) and with pkg-config reads every packet;
#  - the Debian package (cpack -G DEB from a Release build for /usr) has
#    the FFmpeg libraries in its Depends, and unpacked into a scratch root
#    (dpkg-deb -x, no container) its `shmdemux open` auto-starts its own
#    broker and worker and dumps the same packets;
#  - every installed binary answers --version.
# usage: test_install.sh BUILD_DIR   (the build tree to install from)
. "$(dirname "$0")/lib.sh"
shm_init
build=${1:?usage: test_install.sh BUILD_DIR}
media=$(shm_media_dir) || exit $?
f=$media/h264_aac.mkv
passed=0 failed=0
ok() { echo "PASS $*"; passed=$((passed + 1)); }
ko() { echo "FAIL $*"; failed=$((failed + 1)); }

"$SHMDEMUX_FFPROBE_PACKETS" "$f" >"$SHM_TMP/ref.csv" || shm_die "ffprobe-packets failed"
npk=$(wc -l <"$SHM_TMP/ref.csv")

# Brokers this test starts through an installed CLI, stopped on every path.
stop_autostarted() {
	local pid
	for pid in $(pgrep -f -- "--socket $SHM_TMP/" 2>/dev/null); do
		kill -TERM "$pid" 2>/dev/null
		shm_wait_gone "$pid" 20 || kill -KILL "$pid" 2>/dev/null
	done
}
trap 'stop_autostarted; shm_cleanup' EXIT

# An installed CLI (PREFIX/bin/shmdemux) auto-starts its broker on a
# private socket, opens the file and dumps it; compared with ffprobe.
run_installed() { # WHAT BINDIR
	local what=$1 bin=$2 sock=$SHM_TMP/$1.sock id
	for b in shmdemux shmdemuxd; do
		if ! env -u LD_LIBRARY_PATH "$bin/$b" --version >"$SHM_TMP/v" 2>&1 ||
			! grep -q "^$b " "$SHM_TMP/v"; then
			ko "$what: $b --version: $(head -c 200 "$SHM_TMP/v")"
			return
		fi
	done
	id=$(env -u LD_LIBRARY_PATH -u SHMDEMUX_WORKER -u SHMDEMUX_BROKER \
		SHMDEMUX_SOCKET="$sock" timeout 60 "$bin/shmdemux" open "$f" 2>"$SHM_TMP/err") ||
		{ ko "$what: open: $(head -c 300 "$SHM_TMP/err")"; return; }
	env -u LD_LIBRARY_PATH SHMDEMUX_SOCKET="$sock" timeout 60 \
		"$bin/shmdemux" dump "$id" --csv >"$SHM_TMP/$what.csv" 2>"$SHM_TMP/err" ||
		{ ko "$what: dump: $(head -c 300 "$SHM_TMP/err")"; return; }
	if cmp -s "$SHM_TMP/ref.csv" "$SHM_TMP/$what.csv"; then
		ok "$what: open + dump --csv through the installed binaries: $npk packets, as ffprobe"
	else
		ko "$what: dump differs from ffprobe"
	fi
	# The broker it started runs the worker from the install, not the
	# build tree.
	pid=$(pgrep -f -- "--socket $sock" | head -n 1)
	if [ -n "$pid" ] && grep -q "^$(dirname "$bin")/libexec/shmdemux/shmdemux-worker" \
		<(for c in $(pgrep -P "$pid"); do readlink "/proc/$c/exe"; done); then
		ok "$what: the broker's worker is $(dirname "$bin")/libexec/shmdemux/shmdemux-worker"
	else
		ko "$what: no worker of the broker ($pid) runs from $(dirname "$bin")/libexec/shmdemux"
	fi
}

# The pages exist, render without a warning, and hold every command's
# --help (they are generated from it).
check_man() { # MANDIR
	local d=$1 p cmd missing=
	for p in man1/shmdemux.1 man8/shmdemuxd.8 man3/shmdemux.3; do
		[ -s "$d/$p" ] || { ko "man: $p not installed"; return; }
		if command -v man >/dev/null &&
			[ -n "$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -E UTF-8 -l "$d/$p" 2>&1 >/dev/null)" ]; then
			ko "man: $p renders with warnings"
			return
		fi
	done
	for cmd in $("$prefix/bin/shmdemux" --help | awk '/^commands:/ { on = 1; next } on && /^  [a-z]/ { print $1 }'); do
		grep -q "^\.SS $cmd\$" "$d/man1/shmdemux.1" || missing="$missing $cmd"
	done
	grep -q 'shmdemux_attach' "$d/man3/shmdemux.3" || missing="$missing shmdemux_attach(3)"
	[ -z "$missing" ] && ok "man pages: shmdemux(1) with every command, shmdemuxd(8), shmdemux(3)" ||
		ko "man pages lack:$missing"
}

# Completion: commands, a command's options, option values, stream names.
check_completion() { # BINDIR FILE
	local out
	out=$(PATH=$1:$PATH SHMDEMUX_SOCKET=$SHM_TMP/none.sock bash -c '
		. "$1"
		c() { COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); COMPREPLY=(); _shmdemux; echo "${COMPREPLY[*]}"; }
		c shmdemux pr
		c shmdemux open --mo
		c shmdemux open --mode l
		c shmdemux dump --fr' _ "$2" 2>&1)
	if [ "$out" = "$(printf 'probe\n--mode\nlossless live\n--from --framemd5')" ]; then
		ok "bash completion: commands, options, values"
	else
		ko "bash completion: got: $(tr '\n' '|' <<<"$out")"
	fi
}

# 1. cmake --install into a scratch prefix.
prefix=$SHM_TMP/prefix
if cmake --install "$build" --prefix "$prefix" >"$SHM_TMP/install.log" 2>&1; then
	ok "cmake --install"
	if env -u LD_LIBRARY_PATH "$prefix/libexec/shmdemux/shmdemux-worker" --version >/dev/null; then
		ok "installed worker --version"
	else
		ko "installed worker --version"
	fi
	[ -x "$prefix/bin/shmdemux-worker" ] && ko "the worker is on PATH (bin/)" ||
		ok "the worker is not in bin/"
	run_installed prefix "$prefix/bin"
	check_man "$prefix/share/man"
	check_completion "$prefix/bin" "$prefix/share/bash-completion/completions/shmdemux"
else
	ko "cmake --install: $(tail -n 5 "$SHM_TMP/install.log")"
fi

# 2. A consumer built against the install: CMake package and pkg-config.
mkdir -p "$SHM_TMP/consumer"
cat >"$SHM_TMP/consumer/count.c" <<'EOF'
#include <stdio.h>
#include <stdlib.h>
#include <shmdemux.h>
/* count SOCKET ID: packets read until the end; exit 0 only on a clean EOF */
int main(int argc, char **argv)
{
	shmdemux_conn *c; shmdemux_stream *s; struct shmdemux_packet p;
	long n = 0; int ret;
	if (argc != 3 || shmdemux_abi_version() != SHMDEMUX_ABI_VERSION)
		return 2;
	if (shmdemux_connect(&c, argv[1], 0) < 0 ||
	    shmdemux_attach(c, (uint32_t)atoi(argv[2]), NULL, SHMDEMUX_START_OLDEST, 0, &s) < 0)
		return 3;
	while ((ret = shmdemux_read(s, &p, 10000)) >= 0)
		n += ret == 0;
	printf("%ld %s\n", n, shmdemux_version());
	shmdemux_detach(&s);
	shmdemux_disconnect(&c);
	return ret == SHMDEMUX_EOF ? 0 : 1;
}
EOF
cat >"$SHM_TMP/consumer/CMakeLists.txt" <<'EOF'
cmake_minimum_required(VERSION 3.18)
project(count C)
find_package(shmdemux 0 REQUIRED)
add_executable(count count.c)
target_link_libraries(count PRIVATE shmdemux::shmdemux)
add_executable(count_static count.c)
target_link_libraries(count_static PRIVATE shmdemux::shmdemux_static)
EOF
if [ -d "$prefix" ]; then
	shm_broker_start
	id=$(shm_cli open "$f") || shm_die "open failed"
	if cmake -S "$SHM_TMP/consumer" -B "$SHM_TMP/consumer/b" \
		-DCMAKE_PREFIX_PATH="$prefix" >"$SHM_TMP/cc.log" 2>&1 &&
		cmake --build "$SHM_TMP/consumer/b" >>"$SHM_TMP/cc.log" 2>&1; then
		for exe in count count_static; do
			out=$(env -u LD_LIBRARY_PATH "$SHM_TMP/consumer/b/$exe" "$SHMDEMUX_SOCKET" "$id" 2>&1)
			[ "${out%% *}" = "$npk" ] && ok "find_package(shmdemux): $exe read $out" ||
				ko "find_package(shmdemux): $exe: '$out', want $npk packets"
		done
	else
		ko "find_package(shmdemux): $(tail -n 8 "$SHM_TMP/cc.log")"
	fi
	pcflags=$(PKG_CONFIG_PATH=$prefix/lib/pkgconfig pkg-config --cflags --libs shmdemux) &&
		cc -o "$SHM_TMP/consumer/count_pc" "$SHM_TMP/consumer/count.c" $pcflags \
			-Wl,-rpath,"$prefix/lib" 2>"$SHM_TMP/pc.log" &&
		out=$("$SHM_TMP/consumer/count_pc" "$SHMDEMUX_SOCKET" "$id" 2>&1) &&
		[ "${out%% *}" = "$npk" ] && ok "pkg-config shmdemux: read $out" ||
		ko "pkg-config shmdemux: '${out:-}' $(head -c 300 "$SHM_TMP/pc.log")"
fi

# 3. The Debian package, built from the tree and unpacked into a scratch root.
deb_build=$SHM_TMP/deb-build
if ! command -v dpkg-shlibdeps >/dev/null; then
	ko "debian package: dpkg-shlibdeps missing (package dpkg-dev)"
elif cmake -S "$SHMDEMUX_SRC" -B "$deb_build" -DCMAKE_BUILD_TYPE=Release \
	-DCMAKE_INSTALL_PREFIX=/usr -DBUILD_TESTING=OFF >"$SHM_TMP/deb.log" 2>&1 &&
	cmake --build "$deb_build" -j2 >>"$SHM_TMP/deb.log" 2>&1 &&
	(cd "$deb_build" && cpack -G DEB) >>"$SHM_TMP/deb.log" 2>&1; then
	deb=$(ls "$deb_build"/shmdemux_*.deb 2>/dev/null | head -n 1)
	if [ -n "$deb" ] && dpkg-deb -f "$deb" Depends | grep -q libavformat59; then
		ok "$(basename "$deb"): Depends: $(dpkg-deb -f "$deb" Depends | cut -c1-120)..."
	else
		ko "debian package: no .deb or no libavformat in Depends"
	fi
	root=$SHM_TMP/root
	if [ -n "$deb" ] && dpkg-deb -x "$deb" "$root"; then
		run_installed deb "$root/usr/bin"
	else
		ko "dpkg-deb -x failed"
	fi
else
	ko "debian package build: $(tail -n 8 "$SHM_TMP/deb.log")"
fi

echo "install: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
