#!/bin/bash
# rss.sh - the daemon's memory and restart as bench.sh measures them, alone
# (about a minute instead of bench.sh's six): fill to 60,000 TCP mappings from
# 64 clients, restart with them, fill the rest of the TCP and the whole UDP
# port space (about 127,000), and print RSS at each step and the restart's
# times by the daemon's log clock.  As root, after sh scripts/build.sh:
#
#   bash tests/bench/rss.sh
#
# Prints "rss_kb empty=.. at_60000=.. restored=.. at_128000=.. mappings=.."
# and "restart restored_ms=.. serving_ms=..".  Not part of CI.
# RESTART_ONLY=1 stops after the restart; with DAEMON_WRAPPER="perf record
# -g -o FILE --" that profiles the restart alone (the file is the restart's).
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/../integration/lab.sh"
BENCH=${BENCH:-$HERE/../../build/tests/bench/natpmp-bench}
ADDRS=64
FIRST=192.168.77.10
N=${N:-60000}

[ -x "$BENCH" ] || { echo "rss.sh: build first (sh scripts/build.sh): no $BENCH" >&2; exit 1; }
lab_up
for i in $(seq 0 $((ADDRS - 1))); do ip -n "$LAN" addr add 192.168.77.$((10 + i))/24 dev "$LAN_IF"; done

gen() { in_lan "$BENCH" map -g $GW "$@" 2>&1 | grep '^result'; }
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
OURS="--rate-limit 0 --max-mappings-per-ip 70000 --max-lifetime 86400"

daemon_start $OURS
empty=$(rss_kb "$DAEMON_PID")
gen -a $FIRST -n $ADDRS -w 16 -c $((N / ADDRS * ADDRS)) -i 2000 -T 3000 fill >/dev/null
at_n=$(rss_kb "$DAEMON_PID")
daemon_kill TERM

# The restart: from just before exec to the log's lines, by the log's clock.
: >"$LOG"
t0=$(date +%s%3N)
daemon_exec $OURS &
DAEMON_PID=$!
await_answer "$LAN" $GW "$DAEMON_PID" "$LOG" daemon
sleep 0.5 # the deferred snapshot
restored=$(rss_kb "$DAEMON_PID")
ms() { date -d "$(sed -n "/$1/{s/^\([0-9T:.-]*\).*/\1/p;q}" "$LOG")" +%s%3N 2>/dev/null; }
t_restored=$(ms 'restored')
t_serving=$(ms 'serving')
echo "restart restored_ms=$((t_restored - t0)) serving_ms=$((t_serving - t0))"
if [ -n "${RESTART_ONLY:-}" ]; then
	daemon_kill TERM
	lab_finish
fi

gen -a $FIRST -n $ADDRS -w 16 -c $((64000 - N / ADDRS * ADDRS)) -i $((2000 + N / ADDRS)) -T 3000 fill >/dev/null
gen -a $FIRST -n $ADDRS -w 16 -P udp -c 64000 -i 2000 -T 3000 fill >/dev/null
full=$(rss_kb "$DAEMON_PID")
count=$(in_rtr nft list map ip natpmp mappings | grep -c ' : [0-9]')
echo "rss_kb empty=$empty at_$N=$at_n restored=$restored at_128000=$full mappings=$count"
daemon_kill TERM
[ -n "${KEEP_LOG:-}" ] && cp "$LOG" "$KEEP_LOG"
lab_finish
