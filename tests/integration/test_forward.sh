#!/bin/bash
# test_forward.sh - real TCP and UDP from the WAN namespace reach the LAN
# client through the forwards, and stop when the mapping is deleted or expires.
. "$(dirname "$0")/lab.sh"
lab_up
daemon_start

npc map tcp 8080 40000 3600
check "TCP mapping granted" eq "$(field result) $(field external)" "0 40000"
check "TCP from the WAN to $EXT:40000 reaches the LAN client's port 8080" forward tcp 40000 8080
check "... and the LAN listener saw the WAN peer's own address" grep -q "served $PEER:" "$LAB_DIR/serve.out"

npc map udp 5353 40001 3600
check "UDP mapping granted" eq "$(field result) $(field external)" "0 40001"
check "UDP from the WAN to $EXT:40001 reaches the LAN client's port 5353" forward udp 40001 5353

npc -b $CLIENT2 map tcp 8080 40002 3600
check "a second client's mapping forwards to that client's address" forward tcp 40002 8080 $CLIENT2

npc map tcp 8080 0 0
check "after delete, TCP to the old external port no longer reaches the client" \
	no_forward tcp 40000 8080
check "... and the other client's forward is untouched" forward tcp 40002 8080 $CLIENT2

npc map udp 6000 40003 5
check "a 5 s UDP mapping forwards" forward udp 40003 6000
check "it expires (within 10 s)" within 10 logged "expired udp 40003"
check "after expiry, UDP to its external port no longer reaches the client" \
	no_forward udp 40003 6000

# The LAN client's own outgoing connection to port 40004 of a WAN host is not
# translated, although the router forwards 40004 to it.
npc map tcp 40004 40004 3600
in_wan $PYTHON "$TRAFFIC" serve tcp $PEER 40004 5 >"$LAB_DIR/wanserve.out" 2>&1 &
wpid=$!
await_listening "$LAB_DIR/wanserve.out"
check "a LAN host's outgoing connection to the mapped port elsewhere is untouched" \
	in_lan $PYTHON "$TRAFFIC" probe tcp $PEER 40004 2
wait $wpid

lab_finish
