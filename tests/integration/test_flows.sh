#!/bin/bash
# test_flows.sh - a mapping works both ways (RFC 6886 3.9), LAN hosts reach
# it through the external address (hairpin), and established flows through
# it end when it is deleted or expires (RFC 6886 3.4).
. "$(dirname "$0")/lab.sh"
lab_up
daemon_start

npc map udp 5000 40050 3600
check "UDP the client sends from its mapped port leaves from the external port" outbound udp 40050 5000
npc map tcp 6000 40060 3600
check "TCP the client opens from its mapped port leaves from the external port" outbound tcp 40060 6000
check "traffic from an unmapped port is left to the router's own NAT (here: none)" \
	eq "$(wan_sees udp 5001)" "$CLIENT:5001"
npc -b $CLIENT2 map udp 5000 40051 3600
check "another client's mapping of the same internal port leaves from its own external port" \
	outbound udp 40051 5000 $CLIENT2

# --- hairpin ---
npc map tcp 8080 40000 3600
check "hairpin: a LAN host connecting to $EXT:40000 reaches the mapped client, seen as coming from the router" \
	hairpin tcp 40000 8080
check "... and for UDP" hairpin udp 40050 5000

# --- established flows end with their mapping ---
# session_through EPORT LPORT ACTION: a TCP session from the WAN through the
# mapping; ACTION runs between its two exchanges.  Prints the session's exit status.
session_through() {
	local spid cpid
	rm -f "$LAB_DIR/flag"
	in_lan $PYTHON "$TRAFFIC" serve tcp $CLIENT "$2" 20 stream >"$LAB_DIR/stream.out" 2>&1 &
	spid=$!
	await_listening "$LAB_DIR/stream.out" >/dev/null
	in_wan $PYTHON "$TRAFFIC" session $EXT "$1" 15 "$LAB_DIR/flag" >"$LAB_DIR/session.out" 2>&1 &
	cpid=$!
	within 10 grep -q "first exchange" "$LAB_DIR/session.out" >/dev/null
	$3 >/dev/null
	touch "$LAB_DIR/flag"
	wait $cpid
	echo $?
	kill $spid 2>/dev/null
	wait $spid 2>/dev/null
}
renew() { npc map tcp 8080 40000 3600; }
# The entries go once the log says so (entries of mappings that end within 100 ms are removed together).
flushes() { log_count "conntrack entr"; }
delete() {
	local before
	before=$(flushes)
	npc map tcp 8080 0 0
	within 5 more_than "$before" flushes
}

check "control: an established TCP flow through a mapping that stays keeps working" \
	eq "$(session_through 40000 8080 renew)" "0"
check "an established TCP flow stops once its mapping is deleted" eq "$(session_through 40000 8080 delete)" "1"
check "... the log counts the conntrack entries removed" grep -q "removed [1-9][0-9]* conntrack entr" "$LOG"

npc map tcp 9090 40090 5
wait_expiry() {
	local before
	before=$(flushes)
	within 10 logged "expired tcp 40090" && within 5 more_than "$before" flushes
}
check "an established TCP flow stops when its mapping expires" eq "$(session_through 40090 9090 wait_expiry)" "1"

lab_finish
