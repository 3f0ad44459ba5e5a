#!/bin/bash
# Write the manual pages from the one place the options are described: the
# binaries' own --help, and for the library its public header. Run by the
# build (tools/CMakeLists.txt), so a page never says what --help does not.
# usage: gen-man.sh BINDIR HEADER OUTDIR VERSION
set -euo pipefail
bindir=$1 header=$2 out=$3 version=$4
mkdir -p "$out"

# roff-safe text: backslashes doubled, lines starting with . or ' guarded.
esc() { sed -e 's/\\/\\e/g' -e "s/^\\([.']\\)/\\\\\\&\\1/"; }

# A --help text, verbatim, as a preformatted block.
verbatim() {
	printf '.nf\n'
	esc
	printf '.fi\n'
}

{
	printf '.TH SHMDEMUX 1 "" "shmdemux %s" "User Commands"\n' "$version"
	printf '.SH NAME\nshmdemux \\- drive the shmdemux shared-memory demux broker\n'
	printf '.SH SYNOPSIS\n.B shmdemux\n[\\fB\\-\\-socket\\fR \\fIPATH\\fR] \\fICOMMAND\\fR [\\fIARGS\\fR]\n'
	printf '.SH DESCRIPTION\n'
	"$bindir/shmdemux" --help | verbatim
	printf '.SH COMMANDS\n'
	for cmd in $("$bindir/shmdemux" --help | awk '/^commands:/ { on = 1; next } on && /^  [a-z]/ { print $1 }'); do
		printf '.SS %s\n' "$cmd"
		"$bindir/shmdemux" "$cmd" --help | verbatim
	done
	printf '.SH FILES\nThe default control socket: \\fI$XDG_RUNTIME_DIR\\fR or \\fI/tmp\\fR, as above.\n'
	printf '.SH SEE ALSO\n.BR shmdemuxd (8),\n.BR shmdemux (3),\n.BR ffprobe (1)\n'
} >"$out/shmdemux.1"

{
	printf '.TH SHMDEMUXD 8 "" "shmdemux %s" "System Administration"\n' "$version"
	printf '.SH NAME\nshmdemuxd \\- shared-memory demux broker for untrusted media\n'
	printf '.SH SYNOPSIS\n.B shmdemuxd\n[\\fIOPTIONS\\fR]\n'
	printf '.SH DESCRIPTION\n'
	"$bindir/shmdemuxd" --help | verbatim
	printf '.SH SEE ALSO\n.BR shmdemux (1),\n.BR shmdemux (3)\n'
} >"$out/shmdemuxd.8"

# The library: the header's opening comment as the description, the whole
# header (declarations and their comments) as the reference.
{
	printf '.TH SHMDEMUX 3 "" "shmdemux %s" "Library Functions Manual"\n' "$version"
	printf '.SH NAME\nshmdemux \\- client library of the shmdemux broker: attach to streams, read packets in place\n'
	printf '.SH SYNOPSIS\n.nf\n.B #include <shmdemux.h>\n.PP\nLink with \\fI\\-lshmdemux\\fR (pkg-config shmdemux; CMake: find_package(shmdemux), target shmdemux::shmdemux).\n.fi\n'
	printf '.SH DESCRIPTION\n'
	awk 'NR == 1 && /^\/\*/ { on = 1; next } on && /\*\// { exit } on { sub(/^ \* ?/, ""); print }' "$header" | verbatim
	printf '.SH REFERENCE\nThe public header, in full: every function, its return values and what it owns.\n'
	awk 'done { print; next } /\*\// { done = 1 }' "$header" | verbatim
	printf '.SH SEE ALSO\n.BR shmdemux (1),\n.BR shmdemuxd (8)\n'
} >"$out/shmdemux.3"
