#!/bin/bash
# test_mapping.sh - the mapping rules of RFC 6886 3.3-3.4 as clients see them,
# with the kernel's map checked after each step.
. "$(dirname "$0")/lab.sh"
lab_up
daemon_start

# --- port choice ---
npc map tcp 6000 45000 3600
check "a free suggested port is granted" eq "$(field result) $(field external)" "0 45000"
check "... and the kernel forwards it to the client" kernel_has tcp 45000 $CLIENT 6000
# A turn's log lines are written together, before its answers: by the time the client has its answer, the line is there.
check "... and the log says so by the time the client has its answer" logged "mapped tcp 45000 -> $CLIENT:6000 for 3600 s"

npc map tcp 6000 46000 3600
check "renewal keeps the external port whatever is suggested now" eq "$(field result) $(field external)" "0 45000"
npc map tcp 6000 6000 1800
check "renewal suggesting the local port (Transmission) keeps it too" \
	eq "$(field external) $(field lifetime)" "45000 1800"
check "... and the kernel's timeout follows the renewal (1800 s + 30)" eq "$(kernel_timeout tcp 45000)" 1830

npc -b $CLIENT2 map tcp 7000 45000 3600
check "a port another client holds is not given: the internal port instead" \
	eq "$(field result) $(field external)" "0 7000"
check "... forwarded to the asking client's address" kernel_has tcp 7000 $CLIENT2 7000

npc map tcp 9001 9001 3600
npc map tcp 9002 9002 3600
npc -b $CLIENT2 map tcp 9001 9002 3600
r1=$(field external)
npc -b $CLIENT2 map tcp 9002 9001 3600
r2=$(field external)
check "suggested and internal port taken: a random allowed port, not the lowest" \
	bash -c "[ $r1 -ge 1024 ] && [ $r1 -ne 1024 ] && [ $r1 -ne 9001 ] && [ $r1 -ne 9002 ] && [ $r2 -ne $r1 ] && [ $r2 -ne 1025 ]"

npc map udp 6000 0 3600
check "TCP and UDP of one internal port share the external port" eq "$(field result) $(field external)" "0 45000"
npc map tcp 7100 47000 3600
npc -b $CLIENT2 map udp 7200 47000 3600
check "a port one client holds for TCP is not given to another for UDP" \
	bash -c "[ '$(field result)' = 0 ] && [ '$(field external)' != 47000 ]"
npc -b $CLIENT2 map udp 7000 7000 3600
check "... but the same client gets it for the other protocol" eq "$(field external)" "7000"

npc map udp 5351 5351 3600
check "UDP 5351 is never mapped" bash -c "[ '$(field result)' = 0 ] && [ '$(field external)' != 5351 ] && [ '$(field external)' != 5350 ]"
npc map udp 5350 5350 3600
check "UDP 5350 is never mapped" bash -c "[ '$(field result)' = 0 ] && [ '$(field external)' != 5350 ] && [ '$(field external)' != 5351 ]"

# --- lifetimes ---
npc map tcp 6100 6100 3600000
check "a lifetime of 3,600,000 s is capped at --max-lifetime (86400)" eq "$(field result) $(field lifetime)" "0 86400"
npc map tcp 6100 6100 3600000
check "... and so is its renewal" eq "$(field result) $(field external) $(field lifetime)" "0 6100 86400"
check "... in the kernel too (86400 s + 30)" eq "$(kernel_timeout tcp 6100)" 86430
npc map tcp 6101 6101 60
check "a lifetime is never granted above what was asked" eq "$(field lifetime)" "60"

# --- deletion ---
npc map tcp 6000 12345 0
check "lifetime 0 deletes: result 0, internal port echoed, external 0, lifetime 0 (suggested port ignored)" \
	eq "$(field result) $(field internal) $(field external) $(field lifetime)" "0 6000 0 0"
check "... and the kernel no longer forwards it" kernel_lacks tcp 45000
check "... while the UDP mapping of that port stays" kernel_has udp 45000 $CLIENT 6000
npc map tcp 6000 0 0
check "deleting a mapping that does not exist succeeds" eq "$(field result) $(field external)" "0 0"

npc unmap tcp 0
check "internal port 0, lifetime 0: result 0" eq "$(field result)" "0"
client_tcp() { local l; l=$(nft_map) || { echo none; return; }; awk -v c="$CLIENT" '$1 == "tcp" && $3 == c' <<<"$l" | grep -c .; }
check "... removes all of the client's TCP mappings" eq "$(client_tcp)" 0
check "... but not its UDP mappings" kernel_has udp 45000 $CLIENT 6000
check "... nor another client's TCP mappings" kernel_has tcp 7000 $CLIENT2 7000

npc map tcp 0 5000 3600
check "internal port 0 with a lifetime is refused: result 2 (not authorized), external 0" \
	eq "$(field result) $(field external)" "2 0"

# --- expiry ---
npc map udp 6200 6200 2
granted=$(now_ms)
check "a 2 s mapping is granted" eq "$(field result) $(field lifetime)" "0 2"
check "... and is in the kernel" kernel_has udp 6200 $CLIENT 6200
check "a mapping expires when its lifetime ends (within 3 s of the grant)" within 3 logged "expired udp 6200"
took=$(($(now_ms) - granted))
check "... not before (${took} ms after the grant)" test "$took" -ge 1900
check "... and the kernel no longer forwards it" kernel_lacks udp 6200

# --- limits, with a small configuration ---
daemon_kill TERM
rm -f "$STATE_DIR/state.json"
daemon_start --allowed-ports 20000-20002 --max-mappings-per-ip 2 --max-lifetime 600
npc map tcp 1 20000 3600
check "with --max-lifetime 600 a 3600 s request gets 600" eq "$(field result) $(field lifetime)" "0 600"
npc map tcp 1 20000 3600
check "... and so does its renewal" eq "$(field result) $(field external) $(field lifetime)" "0 20000 600"
npc map tcp 2 20001 3600
npc map tcp 3 20002 3600
check "--max-mappings-per-ip reached: result 4" eq "$(field result) $(field external)" "4 0"
npc -b $CLIENT2 map tcp 6 6 3600
check "... and the same host's second address shares the limit (one host at the link layer): result 4" \
	eq "$(field result) $(field external)" "4 0"
# Another host, with a link-layer address of its own (a macvlan in a namespace of its own).
HOST3=nph3-$LAB_ID
LAB_NETNS="$LAB_NETNS $HOST3"
ip netns add "$HOST3" || lab_fail "cannot make network namespace $HOST3"
must ip -n "$LAN" link add link "$LAN_IF" name mv3 type macvlan mode bridge
must ip -n "$LAN" link set mv3 netns "$HOST3"
must ip -n "$HOST3" addr add 192.168.77.4/24 dev mv3
must ip -n "$HOST3" link set mv3 up
host3() { OUT=$(ip netns exec "$HOST3" "$NPC_BIN" -g $GW "$@" 2>&1); RC=$?; }
host3 map tcp 4 4 3600
check "a port outside --allowed-ports is not granted to another host: the free allowed one instead" \
	eq "$(field result) $(field external)" "0 20002"
host3 map tcp 5 5 3600
check "no free allowed port: result 4" eq "$(field result) $(field external)" "4 0"
host3 map udp 4 0 3600
check "... while the same client's UDP mapping of that internal port still gets its TCP port" \
	eq "$(field result) $(field external)" "0 20002"

lab_finish
