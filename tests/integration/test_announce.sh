#!/bin/bash
# test_announce.sh - RFC 6886 3.2.1 announcements and the external address as
# it changes: address replaced or removed, link down and up, the interface
# deleted and recreated under its name (a PPPoE redial), --external-address.
. "$(dirname "$0")/lab.sh"
lab_up

# announced FILE: "from address epoch t" of each announcement captured, one a line.
announced() {
	grep '^datagram' "$1" | grep 'len=12' | tr ' ' '\n' | awk -F= '$1 == "address" { a = $2 } $1 == "epoch" { e = $2 } $1 == "from" { f = $2 } $1 == "t" { t = $2 } $1 == "address" { print f, a, e, t }'
}
# announcements_of ADDRESS FILE: how many announcements of ADDRESS FILE holds.
announcements_of() { grep -c "^datagram .*len=12 .*address=$1\( \|$\)" "$2"; }
# answers_address RESULT ADDRESS: opcode 0 answers RESULT with ADDRESS.
answers_address() { npc -r 1 -t 500 address; eq "$(field result) $(field address)" "$1 $2"; }

# 12 s: the sixth announcement comes 7.75 s after the first (up to 9.7 s with
# the tolerance below), the seventh 8 s after that: six land in the capture.
lan_listen 12 "$LAB_DIR/start.cap"
daemon_start
wait $LISTENER
announced "$LAB_DIR/start.cap" >"$LAB_DIR/start.list"
check "at start the daemon announces its address to 224.0.0.1:5350 (the first 6 of 10, 250 ms to 4 s apart)" \
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
lan_listen 10 "$LAB_DIR/change.cap"
must ip -n "$RTR" addr del $EXT/24 dev "$RTR_WAN_IF"
must ip -n "$RTR" addr add 198.51.100.5/24 dev "$RTR_WAN_IF"
check "after the address changes, opcode 0 reports the new one" within 5 answers_address 0 198.51.100.5
check "... and a new series of announcements carries it (3 within 5 s)" \
	within 5 more_than 2 announcements_of 198.51.100.5 "$LAB_DIR/change.cap"
kill $LISTENER 2>/dev/null
wait $LISTENER 2>/dev/null
check "... and the hairpin set follows it" eq "$(kernel_list external)" "198.51.100.5"

must ip -n "$RTR" addr del 198.51.100.5/24 dev "$RTR_WAN_IF"
check "with no address, opcode 0 answers result 3 and 0.0.0.0" within 5 answers_address 3 0.0.0.0
check "... and the log says so" logged "has no IPv4 address or is down"
must ip -n "$RTR" addr add $EXT/24 dev "$RTR_WAN_IF"
check "the address coming back is reported at once" within 5 answers_address 0 $EXT

# --- link down and up ---
must ip -n "$RTR" link set "$RTR_WAN_IF" down
check "external link down: result 3" within 5 answers_address 3 0.0.0.0
lan_listen 10 "$LAB_DIR/up.cap"
must ip -n "$RTR" link set "$RTR_WAN_IF" up
check "external link up again: the address is back" within 5 answers_address 0 $EXT
check "... and announced" within 5 more_than 0 announcements_of $EXT "$LAB_DIR/up.cap"
kill $LISTENER 2>/dev/null
wait $LISTENER 2>/dev/null

# --- the interface deleted and recreated under the same name ---
npc map tcp 8080 40000 3600
check "a mapping before the interface goes" eq "$(field result) $(field external)" "0 40000"
must ip -n "$RTR" link del "$RTR_WAN_IF"
check "external interface deleted: result 3" within 5 answers_address 3 0.0.0.0
lab_wan "$RTR" "$RTR_WAN_IF"
must ip -n "$WAN" route add 192.168.77.0/24 via $EXT
check "recreated under its name: opcode 0 reports the address again" within 5 answers_address 0 $EXT
check "... and the existing mapping forwards through the new interface" within 5 forward tcp 40000 8080
check "... and the client's traffic leaves through it from the external port" outbound tcp 40000 8080

# --- --external-address overrides discovery ---
daemon_kill TERM
lan_listen 10 "$LAB_DIR/override.cap"
daemon_start --external-address 203.0.113.9
check "--external-address: opcode 0 reports it" answers_address 0 203.0.113.9
check "... and so do the announcements" within 5 more_than 0 announcements_of 203.0.113.9 "$LAB_DIR/override.cap"
kill $LISTENER 2>/dev/null
wait $LISTENER 2>/dev/null
check "... while the mapping still forwards from the interface's address" forward tcp 40000 8080

lab_finish
