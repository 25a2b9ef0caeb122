#!/bin/sh
# run_fuzzer.sh FUZZER CORPUS SECONDS ARTIFACTS [DICT] - run a libFuzzer binary
# for SECONDS over a copy of the CORPUS directory, with the dictionary DICT if
# given, and print how many inputs it ran.
# A finding (crash, leak, timeout, out of memory, sanitizer report) fails the
# test; the input that caused it is kept in ARTIFACTS.
set -eu
fuzzer=$1 corpus=$2 seconds=$3 artifacts=$4 dict=${5:-}
name=$(basename "$fuzzer")
work=$(mktemp -d "${TMPDIR:-/tmp}/$name.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir "$work/corpus"
cp "$corpus"/* "$work/corpus/"
mkdir -p "$artifacts"
seeds=$(ls "$work/corpus" | wc -l)

set -- -max_total_time="$seconds" -timeout=5 -rss_limit_mb=1024 -print_final_stats=1 \
	-artifact_prefix="$artifacts/$name-"
[ -z "$dict" ] || set -- "$@" -dict="$dict"
status=0
"$fuzzer" "$@" "$work/corpus" >"$work/log" 2>&1 || status=$?

# The statistics come on every exit, "Done N runs in S second(s)" only on a clean one.
runs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$work/log")
secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$work/log")
if [ "$status" = 0 ] && [ -n "$secs" ]; then
	grep '^stat::' "$work/log" || true
	echo "$name: $runs executions in $secs s, corpus $seeds -> $(ls "$work/corpus" | wc -l) inputs, no finding"
	exit 0
fi

# Not 77, libFuzzer's own status for a finding, which meson would take for a skip.
echo "$name: FAILED (exit status $status) after ${runs:-an unknown number of} executions"
tail -n 80 "$work/log"
# libFuzzer has shown the input (bytes and Base64) above; this is where it is kept.
sed -n 's/.*Test unit written to \(.*\)$/reproducer: \1/p' "$work/log"
exit 1
