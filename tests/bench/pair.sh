#!/bin/bash
# pair.sh - is a create at 60,000 mappings dearer than one at 100?  Asked
# side by side (issue 18): two daemons in two labs, one filled to 100 and
# one to 60,000, and one LAN client timing the same requests at both in turn
# (natpmp-pair), so that the machine's noise, which moves bench.sh's figures
# by up to 20% between runs, falls on both alike.  As root, after
# sh scripts/build.sh:
#
#   bash tests/bench/pair.sh          # SMALL=100 FILL=60000 COUNT=400 by default
#
#   LAN ns: 192.168.77.x ---- router A (lab.sh's): natpmp-server, SMALL mappings
#           192.168.79.x ---- router B: natpmp-server, FILL mappings, an external
#                             interface of its own (203.0.113.1, a veth pair)
#
# Two kinds of create are timed: one whose suggested port (its internal one)
# is free at both (UDP, which the fills leave empty), and one whose suggested
# and internal ports are held by another client at both (TCP, the ports made
# busy first), so the daemon draws a random port: where the 60,000-mapping
# table makes it probe longest.  Then the same for IPv6 pinholes (PCP over
# IPv6, 2001:db8:77::/64 and 2001:db8:79::/64): a pinhole opened beside 100
# pinholes and beside 60,000.  Not part of CI.
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/../integration/lab.sh"
BENCH=${BENCH:-$HERE/../../build/tests/bench/natpmp-bench}
PAIR=${PAIR:-$HERE/../../build/tests/bench/natpmp-pair}
SMALL=${SMALL:-100}
FILL=${FILL:-60000}
COUNT=${COUNT:-400}
ADDRS=64
[ -x "$BENCH" ] && [ -x "$PAIR" ] || { echo "pair.sh: build first (sh scripts/build.sh)" >&2; exit 1; }

lab_up
RTRB=npb-$LAB_ID
LAB_NETNS="$LAB_NETNS $RTRB"
lab_netns "$RTRB"
lab_link "$LAN" "vm$LAB_ID" 192.168.79.200/24 "$RTRB" "vb$LAB_ID" 192.168.79.1/24
# A veth pair in the namespace itself: the external interface needs an address, not a peer (no dummy module everywhere).
must ip -n "$RTRB" link add "xb$LAB_ID" type veth peer name "xc$LAB_ID"
must ip -n "$RTRB" link set "xc$LAB_ID" up
must ip -n "$RTRB" addr add 203.0.113.1/24 dev "xb$LAB_ID"
must ip -n "$RTRB" link set "xb$LAB_ID" up
ip -n "$LAN" addr add 192.168.77.200/24 dev "$LAN_IF"
ip -n "$LAN" addr add 192.168.77.201/24 dev "$LAN_IF"
ip -n "$LAN" addr add 192.168.79.201/24 dev "vm$LAB_ID"
lab_ipv6
ip -n "$LAN" -6 addr add 2001:db8:77::200/64 dev "$LAN_IF" nodad
ip -n "$LAN" -6 addr add 2001:db8:77::10/64 dev "$LAN_IF" nodad
ip -n "$LAN" -6 addr add 2001:db8:79::200/64 dev "vm$LAB_ID" nodad
ip -n "$LAN" -6 addr add 2001:db8:79::10/64 dev "vm$LAB_ID" nodad
ip -n "$RTRB" -6 addr add 2001:db8:79::1/64 dev "vb$LAB_ID" nodad
for i in $(seq 0 $((ADDRS - 1))); do
	ip -n "$LAN" addr add 192.168.77.$((10 + i))/24 dev "$LAN_IF"
	ip -n "$LAN" addr add 192.168.79.$((10 + i))/24 dev "vm$LAB_ID"
done

# Every LAN address of a side shares one link-layer address, hence one per-host limit: the largest.
# Both at the default log level, as a router runs it (overriding daemon_start's --log-level debug).
OURS="--rate-limit 0 --max-mappings-per-ip 131072 --max-lifetime 86400 --log-level info"
daemon_start $OURS
mkdir -p "$LAB_DIR/stateB"
ip netns exec "$RTRB" "$NPS_BIN" --listen-interface "vb$LAB_ID" --external-interface "xb$LAB_ID" \
	--state-dir "$LAB_DIR/stateB" $OURS >>"$LAB_DIR/b.log" 2>&1 &
BPID=$!
trap 'kill $BPID 2>/dev/null; wait $BPID 2>/dev/null; lab_cleanup' EXIT
await_answer "$LAN" 192.168.79.1 "$BPID" "$LAB_DIR/b.log" "second daemon"

fill() { in_lan "$BENCH" map -g "$1" -a "$2" -n $ADDRS -w 16 -c "$3" -i 2000 -T 3000 fill | grep '^result'; }
echo "filling A to $SMALL: $(fill $GW 192.168.77.10 "$SMALL")"
echo "filling B to $FILL: $(fill 192.168.79.1 192.168.79.10 "$FILL")"
pair() { in_lan "$PAIR" -g $GW -a "$1" -G 192.168.79.1 -A "$2" -c $COUNT "${@:3}"; }

echo
echo "== a create whose suggested port is free at both (UDP, internal ports 50000 up)"
pair 192.168.77.200 192.168.79.200 -P udp -i 50000
echo
echo "== a create whose suggested and internal ports another client holds at both (TCP)"
# The other client takes those ports first, where they are still free.
pair 192.168.77.11 192.168.79.11 -P tcp -i 50000 >/dev/null
pair 192.168.77.200 192.168.79.200 -P tcp -i 50000
echo
echo "== PCP against NAT-PMP at one server: a create by each in turn (NAT-PMP: server 1, PCP: server 2)"
echo "at A ($SMALL):"
in_lan "$PAIR" -2 -g $GW -a 192.168.77.200 -G $GW -A 192.168.77.201 -c $COUNT -P udp -i 51000
echo "at B ($FILL):"
in_lan "$PAIR" -2 -g 192.168.79.1 -a 192.168.79.200 -G 192.168.79.1 -A 192.168.79.201 -c $COUNT -P udp -i 51000
echo "renewals of those, at B:"
in_lan "$PAIR" -2 -g 192.168.79.1 -a 192.168.79.200 -G 192.168.79.1 -A 192.168.79.201 -c $COUNT -P udp -i 51000

# conn6: new TCP connections a second from the WAN through the pinhole of [2001:db8:77::200]:8080 (16 in flight).
conn6() {
	in_lan "$BENCH" accept -b 2001:db8:77::200 -p 8080 -t 8 >/dev/null 2>"$LAB_DIR/accept.out" &
	local apid=$!
	await_listening "$LAB_DIR/accept.out"
	in_wan "$BENCH" connect -h 2001:db8:77::200 -p 8080 -t 5 -w 16 | grep '^result'
	wait $apid
}
pin() { in_lan "$PAIR" -6 -P tcp "$@" | grep '^result\|^ratio'; }
echo
echo "== new TCP connections from the WAN through one pinhole (router A), with 1 pinhole and, below, with $FILL"
pin -g $GW6 -a 2001:db8:77::200 -c 1 -i 8080 >/dev/null
echo "with 1: $(conn6)"
echo
echo "== a pinhole (PCP over IPv6, TCP) beside $SMALL pinholes (server 1) and beside $FILL (server 2)"
echo "filling A: $(pin -g $GW6 -a 2001:db8:77::10 -c "$SMALL" -i 2000)"
echo "filling B: $(pin -g 2001:db8:79::1 -a 2001:db8:79::10 -c "$FILL" -i 2000)"
pin -g $GW6 -a 2001:db8:77::200 -G 2001:db8:79::1 -A 2001:db8:79::200 -c $COUNT -i 50000
echo
echo "filling A to $FILL pinholes: $(pin -g $GW6 -a 2001:db8:77::10 -c $((FILL - SMALL)) -i $((2000 + SMALL)))"
echo "with $FILL: $(conn6)"
echo
echo "(server 1: $SMALL mappings and up; server 2: $FILL and up; ratio above 1: dearer at $FILL)"
daemon_kill TERM
