#!/bin/bash
# bench.sh - natpmp-server and Debian's miniupnpd-nftables, one after the other,
# in the same namespace lab, driven by the same load generator (natpmp-bench);
# prints the tables docs/performance.md shows.  As root, after sh scripts/build.sh:
#
#   bash tests/bench/bench.sh            # both servers (installs miniupnpd-nftables)
#   BENCH_PEER=none bash tests/bench/bench.sh    # natpmp-server only
#
# The router namespace gets a router-sized TCP hash (see miniupnpd.sh), LAN
# clients are 192.168.77.10-73; every run is bounded and everything is removed
# at exit.  Not part of CI: it takes several minutes, mostly miniupnpd filling
# itself up one request at a time.
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/../integration/lab.sh"
. "$HERE/miniupnpd.sh"
BENCH=${BENCH:-$HERE/../../build/tests/bench/natpmp-bench}
RESPONDER=${RESPONDER:-$HERE/../../build/tests/bench/natpmp-responder}
REF_PORT=5352 # the reference listens beside the daemon, on the same interface
PEER_NAME=${BENCH_PEER:-miniupnpd}
OURS_LEVELS=${OURS_LEVELS:-"100 1000 10000 60000"}
PEER_LEVELS=${PEER_LEVELS:-"100 1000 5000"}
SEQ=${SEQ:-200}     # one-at-a-time samples per measurement
BULK=${BULK:-20000} # pipelined requests per throughput measurement
ADDRS=64
FIRST=192.168.77.10
PROBE=192.168.77.200 # the client whose requests are timed one at a time
RESULTS=$LAB_DIR/results

[ -x "$BENCH" ] && [ -x "$RESPONDER" ] || { echo "bench.sh: build first (sh scripts/build.sh): no $BENCH or $RESPONDER" >&2; exit 1; }
if [ "$PEER_NAME" = miniupnpd ]; then
	miniupnpd_install || exit 1
fi
lab_up_small_ehash
for i in $(seq 0 $((ADDRS - 1))); do ip -n "$LAN" addr add 192.168.77.$((10 + i))/24 dev "$LAN_IF"; done
ip -n "$LAN" addr add $PROBE/24 dev "$LAN_IF"
: >"$RESULTS"

# gen ARGS...: one natpmp-bench map run from the LAN; prints its result line.
gen() { in_lan "$BENCH" map -g $GW "$@" 2>&1 | grep '^result'; }
val() { tr ' ' '\n' <<<"$2" | sed -n "s/^$1=//p"; }
# record SERVER LEVEL WHAT LINE: keeps a measurement for the tables.
record() { echo "$1 $2 $3 rate=$(val rate "$4") p50=$(val p50_us "$4") p99=$(val p99_us "$4") lost=$(val lost "$4") failed=$(val failed "$4")" >>"$RESULTS"; echo "  $1 N=$2 $3: $4"; }

# fill_to SERVER FROM TO WINDOW: FROM -> TO mappings, TCP, spread over the 64 clients.
fill_to() {
	local per_from=$(($2 / ADDRS)) per_to=$(($3 / ADDRS))
	[ "$per_to" -gt "$per_from" ] || return 0
	gen -a $FIRST -n $ADDRS -w "$4" -c $(((per_to - per_from) * ADDRS)) -i $((2000 + per_from)) -T 3000 fill >/dev/null
}

# measure SERVER LEVEL: the one-at-a-time figures both servers get.
measure_sequential() {
	record "$1" "$2" create "$(gen -a $PROBE -c $SEQ -i 50000 create)"
	record "$1" "$2" renew "$(gen -a $PROBE -c $SEQ -i 50000 renew)"
	record "$1" "$2" delete "$(gen -a $PROBE -c $SEQ -i 50000 delete)"
	record "$1" "$2" address "$(gen -a $PROBE -c $SEQ address)"
}

# connections SERVER COUNT: new TCP connections per second from the WAN through one mapping.
connections() {
	local line
	in_lan "$BENCH" accept -b $PROBE -p 8080 -t 8 >/dev/null 2>&1 &
	local apid=$!
	sleep 0.3
	# The port granted, which with most ports in use is not the one suggested.
	local eport
	eport=$(in_lan "$NPC_BIN" -g $GW -b $PROBE map tcp 8080 40999 3600 | tr ' ' '\n' | sed -n 's/^external=//p')
	line=$(in_wan "$BENCH" connect -h $EXT -p "$eport" -t 5 -w 16 2>&1 | grep '^result')
	wait $apid
	in_lan "$NPC_BIN" -g $GW -b $PROBE map tcp 8080 0 0 >/dev/null
	record "$1" "$2" connect "$line"
}

# measure_reference LEVEL: natpmp-responder (the daemon's sockets, batching and
# codecs, and nothing else: no table, journal or nftables) measured right beside
# the daemon at this size, so that the machine's state of the moment falls on both.
measure_reference() {
	record ref "$1" create "$(gen -p $REF_PORT -a $PROBE -c $SEQ -i 50000 create)"
	record ref "$1" renew "$(gen -p $REF_PORT -a $PROBE -c $SEQ -i 50000 renew)"
	record ref "$1" delete "$(gen -p $REF_PORT -a $PROBE -c $SEQ -i 50000 delete)"
	record ref "$1" create-bulk "$(gen -p $REF_PORT -a $FIRST -n $ADDRS -w 16 -P udp -c $BULK -i 20000 create)"
	record ref "$1" renew-bulk "$(gen -p $REF_PORT -a $FIRST -n $ADDRS -w 16 -P udp -c $BULK -i 20000 renew)"
	record ref "$1" delete-bulk "$(gen -p $REF_PORT -a $FIRST -n $ADDRS -w 16 -P udp -c $BULK -i 20000 delete)"
}

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# --- natpmp-server, and beside it the reference ---
echo "== natpmp-server (and natpmp-responder on port $REF_PORT)"
in_rtr "$RESPONDER" "$RTR_LAN_IF" $REF_PORT >"$LAB_DIR/responder.out" 2>&1 &
RESPONDER_PID=$!
await_listening "$LAB_DIR/responder.out" || { echo "bench.sh: natpmp-responder did not start: $(cat "$LAB_DIR/responder.out")" >&2; exit 1; }
# At the default log level, as a router runs it (daemon_start's --log-level debug is overridden).
OURS="--rate-limit 0 --max-mappings-per-ip 70000 --max-lifetime 86400 --log-level info"
daemon_start $OURS
echo "ours 0 rss kb=$(rss_kb "$DAEMON_PID")" >>"$RESULTS"
connections ours 1
prev=0
for n in $OURS_LEVELS; do
	fill_to ours $prev "$n" 16
	prev=$n
	measure_sequential ours "$n"
	# Throughput: pipelined from 64 clients, in the UDP port space so that it fits beside N TCP mappings.
	record ours "$n" create-bulk "$(gen -a $FIRST -n $ADDRS -w 16 -P udp -c $BULK -i 20000 create)"
	record ours "$n" renew-bulk "$(gen -a $FIRST -n $ADDRS -w 16 -P udp -c $BULK -i 20000 renew)"
	record ours "$n" delete-bulk "$(gen -a $FIRST -n $ADDRS -w 16 -P udp -c $BULK -i 20000 delete)"
	record ours "$n" address-bulk "$(gen -a $FIRST -n $ADDRS -w 16 -c $BULK address)"
	measure_reference "$n"
	# The same requests by PCP (60-byte MAP, one nonce per mapping), beside NAT-PMP's at this size.
	record ours "$n" pcp-create "$(gen -2 -a $PROBE -c $SEQ -i 52000 create)"
	record ours "$n" pcp-renew "$(gen -2 -a $PROBE -c $SEQ -i 52000 renew)"
	record ours "$n" pcp-delete "$(gen -2 -a $PROBE -c $SEQ -i 52000 delete)"
	record ours "$n" pcp-create-bulk "$(gen -2 -a $FIRST -n $ADDRS -w 16 -P udp -c $BULK -i 30000 create)"
	record ours "$n" pcp-renew-bulk "$(gen -2 -a $FIRST -n $ADDRS -w 16 -P udp -c $BULK -i 30000 renew)"
	record ours "$n" pcp-delete-bulk "$(gen -2 -a $FIRST -n $ADDRS -w 16 -P udp -c $BULK -i 30000 delete)"
	echo "ours $n rss kb=$(rss_kb "$DAEMON_PID")" >>"$RESULTS"
	echo "ours $n compaction $(grep -o 'compacted [0-9]* mapping(s) into [^ ]* in [0-9.]* ms' "$LOG" | tail -n1)" >>"$RESULTS"
done
connections ours "$prev"
# in_rtr runs it in a subshell: the responder is that subshell's child.
pkill -TERM -P "$RESPONDER_PID" 2>/dev/null
wait "$RESPONDER_PID" 2>/dev/null
# One client's delete-all: the first of the 64 holds about N/64 mappings.
record ours "$prev" delete-all "$(gen -a $FIRST -n 1 -c 1 delete-all)"

# Restart with what is there: time from exec to the first forwarded connection.
daemon_kill TERM
count=$(grep -o '"client"' "$STATE_DIR/state.json" | wc -l)
# The second client: the delete-all above emptied the first.
in_lan "$BENCH" accept -b 192.168.77.11 -p 2000 -t 30 >/dev/null 2>&1 &
apid=$!
eport=$(grep -o '"client": "192.168.77.11", "protocol": "tcp", "internal_port": 2000, "external_port": [0-9]*' \
	"$STATE_DIR/state.json" | grep -o '[0-9]*$')
[ -n "$eport" ] || echo "bench.sh: no saved mapping of 192.168.77.11:2000 to time the restart with" >&2
t0=$(date +%s%N)
daemon_exec $OURS &
DAEMON_PID=$!
for _ in $(seq 1 1000); do
	in_wan timeout 0.2 bash -c "exec 3<>/dev/tcp/$EXT/$eport" 2>/dev/null && break
	sleep 0.01
done
t1=$(date +%s%N)
echo "ours $count restart ms=$(((t1 - t0) / 1000000))" >>"$RESULTS"
kill $apid 2>/dev/null
wait $apid 2>/dev/null

# RSS at 128,000 mappings: the rest of the TCP and the whole UDP port space.
gen -a $FIRST -n $ADDRS -w 16 -c $((64000 - ADDRS * (prev / ADDRS))) -i $((2000 + prev / ADDRS)) -T 3000 fill >/dev/null
gen -a $FIRST -n $ADDRS -w 16 -P udp -c 64000 -i 2000 -T 3000 fill >/dev/null
total=$(grep -o '"client"' "$STATE_DIR/state.json" | wc -l)
echo "ours 128000 rss kb=$(rss_kb "$DAEMON_PID") table=$(in_rtr nft list map ip natpmp mappings | grep -c ' : [0-9]')" >>"$RESULTS"
daemon_kill TERM
echo "ours final compaction $(grep -o 'compacted [0-9]* mapping(s) into [^ ]* in [0-9.]* ms' "$LOG" | tail -n1)" >>"$RESULTS"
rm -rf "$STATE_DIR"/*

# --- miniupnpd ---
if [ "$PEER_NAME" = miniupnpd ]; then
	echo "== miniupnpd"
	miniupnpd_start || exit 1
	connections peer 1
	prev=0
	for n in $PEER_LEVELS; do
		fill_to peer $prev "$n" 1
		prev=$n
		measure_sequential peer "$n"
	done
	connections peer "$prev"
	miniupnpd_stop
fi

echo
echo "== results"
$PYTHON "$HERE/report.py" "$RESULTS"
echo
echo "== results (raw)"
cat "$RESULTS"
cp "$RESULTS" "${BENCH_RESULTS:-/tmp/natpmp-bench-results.txt}"
echo "(kept in ${BENCH_RESULTS:-/tmp/natpmp-bench-results.txt})"
