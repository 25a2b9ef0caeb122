#!/bin/bash
# test_visibility.sh - seeing what the daemon does, at the default log level:
# timestamps on log lines outside the journal, refusals a user would want to
# know of (rate-limited), and PCP's datagrams counted as such in /metrics.
. "$(dirname "$0")/lab.sh"
lab_require curl
lab_up
daemon_start --log-level info --max-mappings-per-ip 2 --http-listen 127.0.0.1:18086

check "log lines carry an ISO 8601 timestamp when stderr is not the journal" \
	grep -Eq '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}[+-][0-9]{4} natpmp-server: info: serving' "$LOG"

# A limit reached is said at the default level.
npc map tcp 8080 40000 600
npc map tcp 8081 40001 600
npc map tcp 8082 40002 600
check "a third mapping over --max-mappings-per-ip 2 gets result 4" eq "$(field result)" 4
check "... and the log says why, at the default level" \
	within 5 logged "refused to map tcp 8082 for $CLIENT: it holds --max-mappings-per-ip (result 4)"

# A flood of refusals: at most one line a second, and the next says how many went unlogged.
before=$(log_count "refused to map")
start=$(now_ms)
for i in $(seq 50); do npc -r 1 map tcp $((8100 + i)) 0 600; done
secs=$(( ($(now_ms) - start) / 1000 + 1 ))
sleep 1.1
npc map tcp 8200 0 600
logged_now=$(( $(log_count "refused to map") - before ))
check "51 refusals over ${secs} s are logged in at most $((secs + 1)) lines ($logged_now)" test "$logged_now" -le $((secs + 1))
check "... and a line says how many were not logged" within 5 logged "more refusal(s) since the last line like this, not logged"

# PCP (version 2) is counted as what it is, not as a failed NAT-PMP UDP map.
metric() { in_rtr curl -sS -m 5 http://127.0.0.1:18086/metrics | awk -v k="$1" '$1 == k { print $2 }'; }
v1=$(metric 'natpmp_requests_total{opcode="1",result="1"}')
vo=$(metric 'natpmp_requests_total{opcode="other_version",result="1"}')
npc raw 02010000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000
check "a PCP MAP datagram gets the unsupported-version answer (result 1)" eq "$(field result)" 1
check "... counted under opcode=\"other_version\"" eq "$(metric 'natpmp_requests_total{opcode="other_version",result="1"}')" "$((vo + 1))"
check "... not as a failed NAT-PMP UDP map (opcode=\"1\",result=\"1\")" eq "$(metric 'natpmp_requests_total{opcode="1",result="1"}')" "$v1"

# The port range exhausted: said as such.
daemon_kill TERM
rm -rf "$STATE_DIR"/*
daemon_start --log-level info --allowed-ports 40000-40001
npc map udp 9001 0 600
npc map udp 9002 0 600
sleep 1.1
npc map udp 9003 0 600
check "a client that finds no free port gets result 4" eq "$(field result)" 4
check "... and the log says the range is exhausted" \
	within 5 logged "refused to map udp 9003 for $CLIENT: no free port in --allowed-ports"
lab_finish
