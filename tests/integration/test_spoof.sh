#!/bin/bash
# test_spoof.sh - one LAN host inventing source addresses cannot take the port
# space: mappings are also counted against who sent the request at the link
# layer (the router's neighbour entry for the source), so a host claiming 200
# addresses, half of them announced by ARP with its own link-layer address,
# holds at most twice --max-mappings-per-ip (100: 200), while 100 honest hosts,
# each with a link-layer address of its own, each still get their full 100.
. "$(dirname "$0")/lab.sh"
lab_up
SPOOF=$LAB_SRC/spoof.py
# The honest hosts live on a second LAN subnet of the same interface.
must ip -n "$RTR" addr add 192.168.79.1/24 dev "$RTR_LAN_IF"
daemon_start
# synced: everything sent before has been handled: the daemon answers in order, one socket.
synced() { npc -r 3 -t 1000 address; [ "$RC" -le 1 ]; }
# liar_holds: mappings the kernel has for the invented addresses 192.168.77.10-209.
liar_holds() {
	local l
	l=$(nft_map) || { echo none; return; }
	awk '{ split($3, a, "."); if (a[1] == 192 && a[2] == 168 && a[3] == 77 && a[4] >= 10 && a[4] <= 209) n++ } END { print n + 0 }' <<<"$l"
}

# 100 addresses the router never heard of, 100 requests each, through a raw socket.
in_lan $PYTHON "$SPOOF" map $GW 192.168.77.10 100 100
check "(the daemon has handled the invented requests)" within 20 synced
first=$(liar_holds)
# 100 more, announced first by ARP requests that give the liar's own link-layer address for each.
in_lan $PYTHON "$SPOOF" arp "$LAN_IF" $GW 192.168.77.110 100
check "(the router has neighbour entries for the announced addresses)" \
	eval '[ "$(ip -n "$RTR" neigh show dev "$RTR_LAN_IF" | grep -c "^192\.168\.77\.1[1-9][0-9] .*lladdr")" -ge 90 ]'
in_lan $PYTHON "$SPOOF" map $GW 192.168.77.110 100 100
check "(the daemon has handled those too)" within 20 synced
held=$(liar_holds)
echo "figure: one host inventing 200 source addresses, 100 requests from each: it holds $held mappings ($first before it announced addresses by ARP)"
check "the invented requests were handled: the liar holds some mappings ($held)" test "$held" -gt 0
check "... but at most twice --max-mappings-per-ip (200) for all 200 addresses" test "$held" -le 200

# 100 honest hosts, each its own namespace and link-layer address (macvlan on the LAN).
for i in $(seq 0 99); do
	ns=nph$i-$LAB_ID
	LAB_NETNS="$LAB_NETNS $ns"
	ip netns add "$ns" || lab_fail "cannot make network namespace $ns"
	must ip -n "$LAN" link add link "$LAN_IF" name mv$i type macvlan mode bridge
	must ip -n "$LAN" link set mv$i netns "$ns"
	ip -n "$ns" addr add 192.168.79.$((10 + i))/24 dev mv$i
	ip -n "$ns" link set mv$i up
done
hosts=""
for i in $(seq 0 99); do
	ip netns exec nph$i-$LAB_ID $PYTHON "$SPOOF" host 192.168.79.1 192.168.79.$((10 + i)) 100 >"$LAB_DIR/host$i.out" 2>&1 &
	hosts="$hosts $!"
	# Ten at a time (a bare wait would wait for the daemon too).
	if [ $((i % 10)) = 9 ]; then
		for p in $hosts; do wait "$p"; done
		hosts=""
	fi
done
full=$(cat "$LAB_DIR"/host*.out | grep -cx 100)
echo "figure: 100 honest hosts asking for 100 mappings each: $full got all 100; granted in all: $(cat "$LAB_DIR"/host*.out | awk '{ n += $1 } END { print n + 0 }')"
check "100 honest hosts, meanwhile, each get their full 100 mappings" eq "$full" 100
check "... and the liar still holds no more than before ($(liar_holds))" test "$(liar_holds)" -le 200
lab_finish
