#!/bin/bash
# test_restart.sh - acknowledged mappings survive SIGTERM and SIGKILL, with
# their ports, their forwards and the epoch.
. "$(dirname "$0")/lab.sh"
lab_up
# Someone else's ruleset on the router: the daemon must never touch it.
must in_rtr nft -f - <<'EOF'
table inet filter {
	chain input { type filter hook input priority filter; policy accept; tcp dport 22 counter accept; }
}
table ip nat {
	chain prerouting { type nat hook prerouting priority dstnat; policy accept; tcp dport 2222 dnat to 192.168.77.9:22; }
}
EOF
foreign() { in_rtr nft -p list table inet filter && in_rtr nft -p list table ip nat; }
before=$(foreign) || lab_fail "cannot list the foreign tables: $before"
daemon_start

npc map tcp 8080 40000 3600
npc map udp 5353 40001 3600
npc address
e1=$(field epoch)
t1=$(date +%s)

check "the daemon leaves other tables alone at start" eq "$(foreign)" "$before"
daemon_kill TERM
check "SIGTERM: the daemon exits 0" eq "$DAEMON_STATUS" "0"
check "... and leaves other tables alone at shutdown" eq "$(foreign)" "$before"
check "SIGTERM: the daemon removes its nftables table" table_gone natpmp
check "SIGTERM: the state file stays, with both mappings" \
	bash -c "grep -q '\"external_port\": *40000' $STATE_DIR/state.json && grep -q '\"external_port\": *40001' $STATE_DIR/state.json"

sleep 1
daemon_start
both_back() { kernel_has tcp 40000 $CLIENT 8080 && kernel_has udp 40001 $CLIENT 5353; }
check "after restart the kernel forwards both mappings again" both_back
check "... TCP works: from the WAN, from the client's port outwards, and hairpin" all_paths tcp 40000 8080
check "... UDP works the same three ways" all_paths udp 40001 5353
npc map tcp 8080 9999 3600
check "... and the daemon knows the mapping: a renewal keeps port 40000" eq "$(field external)" "40000"
e2=$(field epoch)
elapsed=$(($(date +%s) - t1))
check "the epoch keeps running across the restart: it grew by the time that passed (${elapsed} s)" \
	test "$e2" -ge $((e1 + elapsed - 2)) -a "$e2" -le $((e1 + elapsed + 2))
check "the log says what was restored" grep -q "restored 2 mapping" "$LOG"

# A mapping acknowledged just before SIGKILL is on disk.
npc map tcp 8090 40020 3600
check "a mapping acknowledged just before SIGKILL ..." eq "$(field result) $(field external)" "0 40020"
daemon_kill KILL
check "SIGKILL leaves the forwards in place while the daemon is down" forward tcp 40020 8090
daemon_start
check "... is back after restart: inbound, outbound and hairpin" all_paths tcp 40020 8090
npc map tcp 8090 0 3600
check "... and renewable with its port" eq "$(field external)" "40020"
check "after SIGKILL and restart the kernel holds exactly the three mappings" \
	eq "$(nft_count)" "3"

# Mappings that expired while the daemon was down are not restored.
npc map udp 7000 40030 2
daemon_kill KILL
sleep 2.5
daemon_start
check "a mapping that expired while the daemon was down is not restored" kernel_lacks udp 40030
check "... while the others are" eq "$(nft_count)" 3
check "... and the log counts it" logged "1 expired while stopped"

lab_finish
