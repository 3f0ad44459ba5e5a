#!/bin/bash
# shmdemuxd's configuration files (broker/config.h):
#  - the user's file ($XDG_CONFIG_HOME/shmdemux/shmdemuxd.conf) is read by
#    default; `--check-config` prints what results; the command line
#    overrides it; `--config FILE` reads FILE alone; `--no-config` none;
#  - a broker started with it runs with its settings (log level, ring
#    size as `ls --json` reports it, the same as with the option);
#  - errors exit 2 naming the file and line: an unknown setting, a bad
#    value, a line without `=`, a switch that is not yes/no; a file others
#    may write, a directory and a missing --config file are refused.
. "$(dirname "$0")/lib.sh"
shm_init
media=$(shm_media_dir) || exit $?

passed=0 failed=0
ok() { echo "PASS $*"; passed=$((passed + 1)); }
ko() { echo "FAIL $*"; failed=$((failed + 1)); }
check() { # DESCRIPTION COMMAND... (passes when it succeeds)
	local what=$1
	shift
	if "$@"; then ok "$what"; else ko "$what"; fi
}

T=$SHM_TMP
export XDG_CONFIG_HOME=$T/xdg HOME=$T/home
mkdir -p "$XDG_CONFIG_HOME/shmdemux" "$HOME"
user=$XDG_CONFIG_HOME/shmdemux/shmdemuxd.conf
cat >"$user" <<'EOF'
# a user's settings
ring-size = 128K
max-consumers = 3   # a comment after a value
log-level = warning

spare-workers = "0"
EOF
chmod 600 "$user"
D=$SHMDEMUXD

settings() { # ARGS... -> the --check-config output in $T/out, status in rc
	"$D" --socket "$T/x.sock" "$@" --check-config >"$T/out" 2>"$T/err"
	rc=$?
}
has() { grep -qxF -- "$1" "$T/out"; }

settings
check "--check-config with the user's file: exit 0" [ $rc -eq 0 ]
check "its settings are in effect" eval 'has "ring-size = 131072" &&
	has "max-consumers = 3" && has "log-level = warning" &&
	has "worker-start = exec"'
check "the file read is named" grep -qF "# files read: $user" "$T/out"
check "the defaults stand for the rest" has "lag-timeout = 5000"
settings --max-consumers 5
check "the command line overrides the file" has "max-consumers = 5"

other=$T/other.conf
printf 'watchdog = 2500\ndaemon = no\n' >"$other"
chmod 644 "$other"
settings --config "$other"
check "--config FILE: that file alone" eval 'has "watchdog = 2500" &&
	has "ring-size = 33554432" && has "max-consumers = 64"'
settings --no-config
check "--no-config: the defaults" eval '[ $rc -eq 0 ] &&
	has "ring-size = 33554432" && has "# files read: none" &&
	has "worker-start = fork"'
settings --worker-start spare
check "--worker-start spare" has "worker-start = spare"

# ---- errors: exit 2, one line naming the file and line ----
bad() { # DESCRIPTION EXPECTED-TEXT FILE-CONTENT [MODE]
	printf '%b' "$3" >"$T/bad.conf"
	chmod "${4:-600}" "$T/bad.conf"
	settings --config "$T/bad.conf"
	if [ $rc -eq 2 ] && grep -qF -- "$2" "$T/err" && shm_one_line "$T/err"; then
		ok "$1"
	else
		ko "$1 (exit $rc: $(cat "$T/err"))"
	fi
}
bad "unknown setting" "bad.conf:2: unknown setting \`bogus\`" \
	'ring-size = 1M\nbogus = 1\n'
bad "bad value, named with its line" "bad.conf:3: invalid --ring-size: 12Q" \
	'# c\n\nring-size = 12Q\n'
bad "an unknown worker start" "invalid --worker-start: zygote (fork, spare or exec)" \
	'worker-start = zygote\n'
bad "a line without =" "bad.conf:1: expected \`name = value\`" 'ring-size 1M\n'
bad "a switch that is not yes/no" "is a switch: yes or no" 'daemon = maybe\n'
bad "a setting the files may not hold" "unknown setting \`config\`" \
	'config = /etc/passwd\n'
bad "an empty value" "needs a value" 'socket =\n'
bad "a file others may write" "refused: owned by uid" 'ring-size = 1M\n' 666
mkdir "$T/dir.conf"
settings --config "$T/dir.conf"
check "a directory is refused" eval '[ $rc -eq 2 ] && grep -qF "not a regular file" "$T/err"'
settings --config "$T/missing.conf"
check "a missing --config file is refused" eval '[ $rc -eq 2 ] &&
	grep -qF "No such file" "$T/err"'
chmod 666 "$user"
settings
check "the default file writable by others is refused too" \
	eval '[ $rc -eq 2 ] && grep -qF "refused" "$T/err"'
chmod 600 "$user"

# ---- a broker runs with them ----
start() { # LOG ARGS...
	local log=$1
	shift
	SHM_BROKER_PIDFILE=$T/b.pid
	export SHMDEMUX_SOCKET=$T/b.sock
	"$D" --daemon --socket "$SHMDEMUX_SOCKET" --pidfile "$SHM_BROKER_PIDFILE" \
		--idle-exit 120 "$@" </dev/null >"$log" 2>&1 ||
		shm_die "shmdemuxd failed: $(cat "$log")"
	SHM_BROKER_PID=$(cat "$SHM_BROKER_PIDFILE")
}
ring_of() { # the ring_size of a stream opened on the running broker
	local id
	id=$(shm_cli open "$media/h264_aac.mkv") || return 1
	shm_cli ls --json | tr '{' '\n' | grep "\"id\":$id," |
		sed -n 's/.*"ring_size":\([0-9]*\).*/\1/p'
}
start "$T/b1.log"
r1=$(ring_of)
shm_broker_stop
check "the broker logs at the file's level (no info line)" \
	eval '! grep -q "listening on" "$T/b1.log"'
start "$T/b2.log" --no-config --ring-size 128K
r2=$(ring_of)
shm_broker_stop
check "its ring size is the option's ($r1 = $r2)" eval '[ -n "$r1" ] && [ "$r1" = "$r2" ]'
check "without the file, info lines are back" grep -q "listening on" "$T/b2.log"

echo "config: $passed passed, $failed failed"
[ $failed -eq 0 ]
