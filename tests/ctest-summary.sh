#!/bin/bash
# What a ctest run really did, read from its JUnit report
# (`ctest --output-junit FILE`): one line with the number of tests that ran,
# passed, failed and were skipped, then one line per skipped test with the
# reason it printed (its last "SKIP: ..." line). ctest's own summary counts
# a skip as a pass ("100% tests passed"), but a skip is a check that did not
# run.
# usage: ctest-summary.sh JUNIT-FILE LABEL
# Exit status: 0; 1 when a skipped test printed no reason (every skip must
# say why) or the report cannot be read.
set -uo pipefail
[ $# -eq 2 ] || { echo "usage: ctest-summary.sh JUNIT-FILE LABEL" >&2; exit 2; }
junit=$1 label=$2
[ -s "$junit" ] || { echo "$label: no test report ($junit)"; exit 1; }

# ctest writes each <testcase> element on its own lines:
#   <testcase name="N" classname="N" time="T" status="run|fail|notrun|disabled">
#   <skipped message="..."/> or <failure message="..."/>
#   <system-out>OUTPUT...</system-out>
#   </testcase>
# Plain awk (mawk has no XML, no gawk extensions).
awk -v label="$label" '
function attr(line, key,    i, rest) {
	i = index(line, key "=\"")
	if (i == 0)
		return ""
	rest = substr(line, i + length(key) + 2)
	return substr(rest, 1, index(rest, "\"") - 1)
}
function unxml(s) {
	gsub(/&lt;/, "<", s); gsub(/&gt;/, ">", s)
	gsub(/&quot;/, "\"", s); gsub(/&apos;/, "\047", s)
	gsub(/&amp;/, "\\&", s)
	return s
}
/<testcase / {
	name = attr($0, "name"); status = attr($0, "status")
	reason = ""; inout = 0
	total++
}
/<system-out>/ { inout = 1 }
inout && /SKIP: / {
	reason = unxml(substr($0, index($0, "SKIP: ") + 6))
	sub(/<\/system-out>.*/, "", reason)
}
/<\/system-out>/ { inout = 0 }
/<\/testcase>/ {
	if (status == "run") {
		passed++
	} else if (status == "fail") {
		failed++
	} else {
		skipped++
		if (status == "disabled")
			reason = "disabled"
		if (reason == "") {
			reason = "(printed no reason)"
			silent++
		}
		skips = skips sprintf("  skipped %s: %s\n", name, reason)
	}
}
END {
	if (total == 0) {
		printf "%s: the report lists no test\n", label
		exit 1
	}
	printf "%s: %d tests ran (%d passed, %d failed), %d skipped\n",
		label, passed + failed, passed, failed, skipped
	printf "%s", skips
	exit (silent > 0)
}
' "$junit"
