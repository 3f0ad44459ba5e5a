#!/bin/bash
# The deployment files that cannot be run here are checked for what they
# claim:
#  - broker/kubernetes/*.yaml validate against the Kubernetes API's JSON
#    schemas (npm's kubernetes-models, installed from the npm registry into
#    the build tree once); a copy with a wrong type and one missing a
#    required field must fail, so the validator is shown to bite;
#  - broker/container/Containerfile installs, in its run-time stage, the
#    Debian package of every shared library our binaries link directly
#    (readelf NEEDED -> dpkg -S), each known to apt; its entrypoint is the
#    installed broker.
. "$(dirname "$0")/lib.sh"
shm_init

passed=0 failed=0
ok() { echo "PASS $*"; passed=$((passed + 1)); }
ko() { echo "FAIL $*"; failed=$((failed + 1)); }
T=$SHM_TMP
src=$SHMDEMUX_SRC

# ---- the Containerfile's run-time packages ----
cf=$src/broker/container/Containerfile
runtime=$(awk '/^FROM debian:12-slim/ { on = 1 } on' "$cf" |
	sed -n '/apt-get install/,/rm -rf/p' | tr ' \\' '\n\n' |
	grep -E '^lib[a-z0-9.+-]+$' | sort -u)
[ -n "$runtime" ] || ko "no run-time packages found in $cf"
missing=
for bin in shmdemuxd shmdemux-worker shmdemux; do
	for lib in $(readelf -d "$SHMDEMUX_BIN/$bin" | sed -n 's/.*NEEDED.*\[\(.*\)\]/\1/p'); do
		case $lib in libshmdemux.so*) continue ;; esac
		path=$(ldd "$SHMDEMUX_BIN/$bin" | awk -v l="$lib" '$1 == l { print $3 }')
		[ -n "$path" ] || { missing="$missing $lib(unresolved)"; continue; }
		pkg=$(dpkg -S "$(readlink -f "$path")" 2>/dev/null | head -n1 | cut -d: -f1)
		[ -n "$pkg" ] || pkg=$(dpkg -S "$path" 2>/dev/null | head -n1 | cut -d: -f1)
		# libc6 and libgcc-s1 are in every Debian image; the
		# sanitizers' runtimes are in no release build
		case $pkg in libc6 | libgcc-s1 | libasan* | libubsan*) continue ;; esac
		printf '%s\n' "$runtime" | grep -qx "$pkg" || missing="$missing $lib($pkg)"
	done
done
if [ -z "$missing" ] && [ -n "$runtime" ]; then
	ok "the image installs the package of every library linked ($(echo $runtime))"
else
	ko "libraries whose package the image lacks:$missing"
fi
unknown=
for p in $runtime; do
	apt-cache show "$p" >/dev/null 2>&1 || unknown="$unknown $p"
done
[ -z "$unknown" ] && ok "apt knows every package the image installs" ||
	ko "packages apt does not know:$unknown"
grep -q '^ENTRYPOINT \["/usr/bin/shmdemuxd"' "$cf" &&
	grep -q 'DESTDIR=/out cmake --install' "$cf" &&
	ok "the entrypoint is the installed broker" || ko "Containerfile entrypoint"

# ---- the Kubernetes manifests, against the API's schemas ----
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
	echo "containers/k8s: $passed passed, $failed failed"
	[ $failed -eq 0 ] || exit 1
	shm_skip "node or npm not installed: the Kubernetes manifests were not validated"
fi
mods=$(dirname "$SHMDEMUX_BIN")/npm-k8s
if [ ! -d "$mods/node_modules/kubernetes-models" ]; then
	mkdir -p "$mods"
	(cd "$mods" && timeout 300 npm install --no-audit --no-fund --silent \
		kubernetes-models@5 yaml@2 >"$T/npm.log" 2>&1) || {
		echo "containers/k8s: $passed passed, $failed failed"
		[ $failed -eq 0 ] || exit 1
		shm_skip "npm install kubernetes-models failed (no registry?): $(tail -n 2 "$T/npm.log")"
	}
fi
cp "$src/tests/k8s-validate.mjs" "$mods/"
manifests=("$src"/broker/kubernetes/*.yaml)
if node "$mods/k8s-validate.mjs" "${manifests[@]}" >"$T/k8s.out" 2>&1; then
	ok "manifests valid: $(grep -c '^valid' "$T/k8s.out") documents"
else
	ko "manifests: $(grep -v '^valid' "$T/k8s.out" | head -n 3)"
fi
sed 's/periodSeconds: 10/periodSeconds: "ten"/' \
	"$src/broker/kubernetes/shmdemuxd-daemonset.yaml" >"$T/bad-type.yaml"
sed 's/^  containers:/  containerz:/' \
	"$src/broker/kubernetes/consumer-pod.yaml" >"$T/bad-field.yaml"
for bad in bad-type bad-field; do
	if node "$mods/k8s-validate.mjs" "$T/$bad.yaml" >"$T/$bad.out" 2>&1; then
		ko "a manifest with a $bad error passed validation"
	else
		ok "the validator rejects a $bad error ($(head -c 120 "$T/$bad.out"))"
	fi
done

echo "deploy: $passed passed, $failed failed"
[ $failed -eq 0 ]
