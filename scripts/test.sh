#!/bin/sh
# test.sh - install what is missing, build, run every test, and end with the
# line "N passed, N failed, N skipped" computed from meson's test logs.
#
# Four runs, each made even when an earlier one failed:
#   build/       gcc                        every suite
#   build-asan/  gcc, ASan + UBSan          every suite
#   build/       under valgrind             the unit suite
#   build-fuzz/  clang, libFuzzer + ASan    the fuzz suite: each fuzzer for a bounded time
# Arguments go to the first two runs' `meson test` (a suite, a test name).
# The exit status is non-zero if any run failed.
set -eu
cd "$(dirname "$0")/.."
sh scripts/deps.sh
sh scripts/build.sh

status=0
runs=""

# quiet COMMAND...: its output only if it fails.
quiet() {
	out=$(mktemp)
	rc=0
	"$@" >"$out" 2>&1 || rc=$?
	[ "$rc" = 0 ] || cat "$out"
	rm -f "$out"
	return "$rc"
}

# run NAME TESTLOG COMMAND...: COMMAND writes the JSON test log TESTLOG; a run
# that stops before writing it (a build that fails) counts as one failed test.
run() {
	name=$1 log=$2
	shift 2
	echo "== $name"
	rm -f "$log"
	"$@" || status=1
	runs="$runs $name=$log"
}

plain() {
	meson test -C build --print-errorlogs "$@"
}

asan() {
	if [ ! -f build-asan/build.ninja ]; then
		quiet meson setup build-asan -Db_sanitize=address,undefined -Db_lundef=false || return
	fi
	quiet meson compile -C build-asan || return
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		meson test -C build-asan --print-errorlogs "$@"
}

# meson names the log of a run with --setup after the setup: testlog-valgrind.json,
# so it does not replace the plain run's testlog.json.
valgrind_unit() {
	meson test -C build --setup valgrind --suite unit --print-errorlogs
}

# Only the fuzzers are built there: meson test builds what the selected tests need.
fuzz() {
	if [ ! -f build-fuzz/build.ninja ]; then
		quiet env CC=clang meson setup build-fuzz -Dfuzz=true || return
	fi
	meson test -C build-fuzz --suite fuzz --print-errorlogs
}

run build build/meson-logs/testlog.json plain "$@"
run build-asan build-asan/meson-logs/testlog.json asan "$@"
run valgrind build/meson-logs/testlog-valgrind.json valgrind_unit
run fuzz build-fuzz/meson-logs/testlog.json fuzz

# shellcheck disable=SC2086
python3 - $runs <<'PY'
import json, os, sys
total = [0, 0, 0]
for arg in sys.argv[1:]:
    name, path = arg.split("=", 1)
    counts = [0, 0, 0]
    notes = []
    if not os.path.exists(path):
        counts[1] += 1
        notes.append(f"  no {path}: the run stopped before its tests (see above)")
    else:
        with open(path) as f:
            for line in f:
                if not line.strip():
                    continue
                t = json.loads(line)
                r = t["result"]
                if r in ("OK", "EXPECTEDFAIL"):
                    counts[0] += 1
                elif r == "SKIP":
                    counts[2] += 1
                else:
                    counts[1] += 1
                # The fuzz tests end with how many inputs they ran.
                notes += ["  " + l for l in (t.get("stdout") or "").splitlines() if " executions in " in l]
    print(f"{name}: {counts[0]} passed, {counts[1]} failed, {counts[2]} skipped")
    for n in notes:
        print(n)
    total = [a + b for a, b in zip(total, counts)]
print(f"{total[0]} passed, {total[1]} failed, {total[2]} skipped")
PY
exit $status
