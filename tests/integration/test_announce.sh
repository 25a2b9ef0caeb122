#!/bin/bash
# test_announce.sh - RFC 6886 3.2.1 announcements and the external address as
# it changes: address replaced or removed, link down and up, the interface
# deleted and recreated under its name (a PPPoE redial), --external-address.
. "$(dirname "$0")/lab.sh"
lab_up

# listen_lan SECONDS FILE: captures what arrives on the LAN at 224.0.0.1:5350.
listen_lan() {
	in_lan "$NPC_BIN" listen "$1" >"$2" 2>&1 &
	LISTENER=$!
	sleep 0.3
}
# announced FILE: "address epoch" of each announcement captured, one a line.
announced() {
	grep '^datagram' "$1" | grep 'len=12' | tr ' ' '\n' | awk -F= '$1 == "address" { a = $2 } $1 == "epoch" { e = $2 } $1 == "from" { f = $2 } $1 == "t" { t = $2 } $1 == "address" { print f, a, e, t }'
}

listen_lan 9 "$LAB_DIR/start.cap"
daemon_start
wait $LISTENER
announced "$LAB_DIR/start.cap" >"$LAB_DIR/start.list"
check "at start the daemon announces its address to 224.0.0.1:5350 (6 of 10 in the first 8 s)" \
	eq "$(wc -l <"$LAB_DIR/start.list")" "6"
check "... from the LAN interface's address and port 5351, with the external address" \
	eq "$(awk '{print $1, $2}' "$LAB_DIR/start.list" | sort -u)" "$GW:5351 $EXT"
check "... each with the current epoch (0 at first, then counting)" \
	bash -c "[ \"\$(awk 'NR==1 {print \$3}' $LAB_DIR/start.list)\" -le 1 ] && [ \"\$(awk 'NR==6 {print \$3}' $LAB_DIR/start.list)\" -ge 6 ]"
# Intervals between them: 250, 500, 1000, 2000, 4000 ms, within scheduling noise.
intervals=$(awk 'NR > 1 { print $4 - prev } { prev = $4 }' "$LAB_DIR/start.list" | tr '\n' ' ')
echo "figure: intervals between the first announcements: $intervals ms (RFC: 250 500 1000 2000 4000)"
check "... 250 ms apart at first, doubling each time" \
	awk -v got="$intervals" 'BEGIN { n = split(got, v, " "); want = 250; if (n != 5) exit 1
		for (i = 1; i <= n; i++) { if (v[i] < want * 0.8 || v[i] > want * 1.25 + 150) exit 1; want *= 2 } }'

# --- the address changes ---
listen_lan 3 "$LAB_DIR/change.cap"
ip -n "$RTR" addr del $EXT/24 dev "$RTR_WAN_IF"
ip -n "$RTR" addr add 198.51.100.5/24 dev "$RTR_WAN_IF"
wait $LISTENER
npc address
check "after the address changes, opcode 0 reports the new one" eq "$(field result) $(field address)" "0 198.51.100.5"
check "... and a new series of announcements carries it" \
	bash -c "[ \"\$(grep -c 'address=198.51.100.5' $LAB_DIR/change.cap)\" -ge 3 ]"
check "... and the hairpin set follows it" bash -c "ip netns exec $RTR nft list set ip natpmp external | grep -q '198.51.100.5'"

ip -n "$RTR" addr del 198.51.100.5/24 dev "$RTR_WAN_IF"
sleep 0.2
npc address
check "with no address, opcode 0 answers result 3 and 0.0.0.0" eq "$(field result) $(field address)" "3 0.0.0.0"
check "... and the log says so" grep -q "has no IPv4 address or is down" "$LOG"
ip -n "$RTR" addr add $EXT/24 dev "$RTR_WAN_IF"
sleep 0.2
npc address
check "the address coming back is reported at once" eq "$(field result) $(field address)" "0 $EXT"

# --- link down and up ---
ip -n "$RTR" link set "$RTR_WAN_IF" down
sleep 0.2
npc address
check "external link down: result 3" eq "$(field result)" "3"
listen_lan 2 "$LAB_DIR/up.cap"
ip -n "$RTR" link set "$RTR_WAN_IF" up
wait $LISTENER
npc address
check "external link up again: the address is back" eq "$(field result) $(field address)" "0 $EXT"
check "... and announced" grep -q "address=$EXT" "$LAB_DIR/up.cap"

# --- the interface deleted and recreated under the same name ---
npc map tcp 8080 40000 3600
ip -n "$RTR" link del "$RTR_WAN_IF"
sleep 0.2
npc address
check "external interface deleted: result 3" eq "$(field result)" "3"
ip link add "$WAN_IF" netns "$WAN" type veth peer name "$RTR_WAN_IF" netns "$RTR"
ip -n "$RTR" addr add $EXT/24 dev "$RTR_WAN_IF"
ip -n "$RTR" link set "$RTR_WAN_IF" up
ip -n "$WAN" addr add $PEER/24 dev "$WAN_IF"
ip -n "$WAN" link set "$WAN_IF" up
ip -n "$WAN" route add 192.168.77.0/24 via $EXT
sleep 0.3
npc address
check "recreated under its name: opcode 0 reports the address again" eq "$(field result) $(field address)" "0 $EXT"
check "... and the existing mapping forwards through the new interface" forward tcp 40000 8080

# --- --external-address overrides discovery ---
daemon_kill TERM
listen_lan 2 "$LAB_DIR/override.cap"
daemon_start --external-address 203.0.113.9
wait $LISTENER
npc address
check "--external-address: opcode 0 reports it" eq "$(field result) $(field address)" "0 203.0.113.9"
check "... and so do the announcements" grep -q "address=203.0.113.9" "$LAB_DIR/override.cap"
check "... while the mapping still forwards from the interface's address" forward tcp 40000 8080

lab_finish
