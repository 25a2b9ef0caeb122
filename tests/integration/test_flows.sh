#!/bin/bash
# test_flows.sh - a mapping works both ways (RFC 6886 3.9), LAN hosts reach
# it through the external address (hairpin), and established flows through
# it end when it is deleted or expires (RFC 6886 3.4).
. "$(dirname "$0")/lab.sh"
lab_up
daemon_start

# wan_sees PROTO LPORT: the LAN client sends from its port LPORT to the WAN
# peer's port 7777; prints the source the peer saw.
wan_sees() {
	in_wan $PYTHON "$TRAFFIC" serve "$1" $PEER 7777 3 >"$LAB_DIR/wan.out" 2>&1 &
	local pid=$!
	for _ in $(seq 1 60); do grep -q listening "$LAB_DIR/wan.out" && break; sleep 0.05; done
	in_lan $PYTHON "$TRAFFIC" probe "$1" $PEER 7777 2 "$2" >/dev/null 2>&1
	wait $pid
	sed -n 's/^served //p' "$LAB_DIR/wan.out"
}

npc map udp 5000 40050 3600
check "UDP the client sends from its mapped port leaves from the external port" \
	eq "$(wan_sees udp 5000)" "$EXT:40050"
npc map tcp 6000 40060 3600
check "TCP the client opens from its mapped port leaves from the external port" \
	eq "$(wan_sees tcp 6000)" "$EXT:40060"
check "traffic from an unmapped port is left to the router's own NAT (here: none)" \
	eq "$(wan_sees udp 5001)" "$CLIENT:5001"

# --- hairpin ---
npc map tcp 8080 40000 3600
in_lan $PYTHON "$TRAFFIC" serve tcp $CLIENT 8080 3 >"$LAB_DIR/hp.out" 2>&1 &
hp=$!
for _ in $(seq 1 60); do grep -q listening "$LAB_DIR/hp.out" && break; sleep 0.05; done
OUT=$(in_lan $PYTHON "$TRAFFIC" probe tcp $EXT 40000 2 2>&1)
wait $hp
check "hairpin: a LAN host connecting to $EXT:40000 reaches the mapped client" grep -q echoed <<<"$OUT"
check "... seen as coming from the router, so that the answers go back through it" grep -q "served $GW:" "$LAB_DIR/hp.out"

# --- established flows end with their mapping ---
# session_through EPORT LPORT ACTION: a TCP session from the WAN through the
# mapping; ACTION runs between its two exchanges.  Prints the session's exit status.
session_through() {
	rm -f "$LAB_DIR/flag"
	in_lan $PYTHON "$TRAFFIC" serve tcp $CLIENT "$2" 10 stream >"$LAB_DIR/stream.out" 2>&1 &
	local spid=$!
	for _ in $(seq 1 60); do grep -q listening "$LAB_DIR/stream.out" && break; sleep 0.05; done
	in_wan $PYTHON "$TRAFFIC" session $EXT "$1" 8 "$LAB_DIR/flag" >"$LAB_DIR/session.out" 2>&1 &
	local cpid=$!
	for _ in $(seq 1 100); do grep -q "first exchange" "$LAB_DIR/session.out" && break; sleep 0.05; done
	$3
	touch "$LAB_DIR/flag"
	wait $cpid
	echo $?
	kill $spid 2>/dev/null
	wait $spid 2>/dev/null
}
nothing() { :; }
renew() { npc map tcp 8080 40000 3600; }
# Conntrack entries of mappings that end within 100 ms are removed together: wait that out.
delete() { npc map tcp 8080 0 0; sleep 0.3; }

check "control: an established TCP flow through a mapping that stays keeps working" \
	eq "$(session_through 40000 8080 renew)" "0"
check "an established TCP flow stops within 0.3 s of its mapping's deletion" eq "$(session_through 40000 8080 delete)" "1"
check "... the log counts the conntrack entries removed" grep -q "removed [0-9]* conntrack entr" "$LOG"

npc map tcp 9090 40090 5
wait_expiry() { sleep 6; }
check "an established TCP flow stops when its mapping expires" eq "$(session_through 40090 9090 wait_expiry)" "1"

lab_finish
