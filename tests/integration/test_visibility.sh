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

# PCP (version 2) is counted as what it is, not as a failed NAT-PMP UDP map; other versions as such.
metric() { in_rtr curl -sS -m 5 http://127.0.0.1:18086/metrics | awk -v k="$1" '$1 == k { print $2 }'; }
v1=$(metric 'natpmp_requests_total{opcode="1",result="1"}')
vo=$(metric 'natpmp_requests_total{opcode="other_version",result="1"}')
pm=$(metric 'natpmp_pcp_requests_total{opcode="map",result="12"}')
npc raw "0201$(printf '%0116d' 0)"
check "a PCP MAP datagram naming another client address gets ADDRESS_MISMATCH (12)" eq "$(field version) $(field result)" "2 12"
check "... counted as a PCP MAP with result 12" eq "$(metric 'natpmp_pcp_requests_total{opcode="map",result="12"}')" "$((pm + 1))"
check "... not as a failed NAT-PMP UDP map (opcode=\"1\",result=\"1\")" eq "$(metric 'natpmp_requests_total{opcode="1",result="1"}')" "$v1"
npc raw 0300
check "version 3 is counted under opcode=\"other_version\"" eq "$(metric 'natpmp_requests_total{opcode="other_version",result="1"}')" "$((vo + 1))"

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

# A reload says what changed, or that nothing did, and repeats no unchanged state.
daemon_kill TERM
rm -rf "$STATE_DIR"/*
CONF=$LAB_DIR/natpmp.conf
printf 'NATPMP_MAX_LIFETIME=7200\nNATPMP_ALLOWED_PORTS=40000-40999\n' >"$CONF"
daemon_start --log-level info --config "$CONF"
npc map tcp 8080 40000 3600
addr_lines=$(log_count "external interface $RTR_WAN_IF has address")
kill -HUP "$DAEMON_PID"
check "a reload that changes nothing says so" within 10 logged "reload: no change in the configuration"
check "... and does not log the external address again" eq "$(log_count "external interface $RTR_WAN_IF has address")" "$addr_lines"
printf 'NATPMP_MAX_LIFETIME=600\nNATPMP_ALLOWED_PORTS=41000-41009\n' >"$CONF"
kill -HUP "$DAEMON_PID"
check "a reload that changes settings names them, new and gone" \
	within 10 logged "reload: --default-lifetime 600, --max-lifetime 600, --allowed-ports 41000-41009, no more --default-lifetime 3600, no more --max-lifetime 7200, no more --allowed-ports 40000-40999"
npc map tcp 8080 0 600
moved=$(field external)
check "the mapping outside the new range moves at its renewal ($moved)" test "$moved" -ge 41000 -a "$moved" -le 41009
check "... logged as one move" within 5 logged "moved tcp $CLIENT:8080 from port 40000 to $moved"
check "... not as a delete and an add" bash -c "! grep -q 'deleted tcp 40000 ->\|mapped tcp $moved ->' '$LOG'"
lab_finish
