#!/bin/bash
# test_interfaces.sh - interfaces that do not exist (yet): a listen interface
# and an external interface that are missing at start are both waited for,
# and the log says plainly that they do not exist; once they appear, the
# daemon serves on the one and reports the other's address.
. "$(dirname "$0")/lab.sh"
lab_up
LAN2=npq-$LAB_ID
LAN2_IF=vp$LAB_ID
RTR_LAN2_IF=vq$LAB_ID
LATE_WAN=vz$LAB_ID
LAB_NETNS="$LAN2"

# The lab's LAN interface, plus one that comes later; and an external interface that comes later.
daemon_start --listen-interface "$RTR_LAN2_IF" --external-interface "$LATE_WAN"
check "a listen interface that does not exist is waited for, and the log says so" \
	logged "listen interface $RTR_LAN2_IF does not exist (yet): waiting for it"
check "an external interface that does not exist is named as such, not as one without an address" \
	logged "external interface $LATE_WAN does not exist (yet): waiting for it"
check "... and the daemon serves meanwhile on the listen interface that exists" daemon_alive
npc address
check "... where opcode 0 answers result 3 (no external address yet)" eq "$(field result)" "3"

# The external interface appears (a PPPoE or WireGuard interface coming up).
must ip link add "$LATE_WAN" netns "$RTR" type veth peer name "vu$LAB_ID" netns "$WAN"
must ip -n "$WAN" link set "vu$LAB_ID" up
must ip -n "$RTR" addr add 203.0.113.5/24 dev "$LATE_WAN"
must ip -n "$RTR" link set "$LATE_WAN" up
address_is() { npc address && eq "$(field result) $(field address)" "0 203.0.113.5" >/dev/null; }
check "once the external interface appears with an address, opcode 0 answers it" within 10 address_is
check "... and the log says so" logged "external interface $LATE_WAN has address 203.0.113.5"

# The second LAN appears (a bridge or VPN interface created after the daemon).
lab_netns "$LAN2"
lab_link "$LAN2" "$LAN2_IF" 192.168.79.2/24 "$RTR" "$RTR_LAN2_IF" 192.168.79.1/24
check "once the listen interface appears, the log says the daemon serves on it" \
	within 10 logged "listen interface $RTR_LAN2_IF appeared: serving NAT-PMP and PCP on it"
lan2() { ip netns exec "$LAN2" "$NPC_BIN" -g 192.168.79.1 "$@" 2>&1; }
lan2_maps() { OUT=$(lan2 map tcp 8080 40100 600) && eq "$(field result)" "0" >/dev/null; }
check "... and a client there gets a mapping" within 10 lan2_maps
check "... forwarded to it in the kernel" kernel_has tcp "$(field external)" 192.168.79.2 8080
check "the first LAN is served as before" daemon_alive

# The interface is deleted and made anew (a network restart re-creates br-lan).
must ip -n "$RTR" link del "$RTR_LAN2_IF"
check "a listen interface that goes away is noticed" within 10 logged "listen interface $RTR_LAN2_IF went away: waiting for it"
lab_link "$LAN2" "$LAN2_IF" 192.168.79.2/24 "$RTR" "$RTR_LAN2_IF" 192.168.79.1/24
appeared_twice() { [ "$(log_count "listen interface $RTR_LAN2_IF appeared")" = 2 ]; }
check "... and served again once it is back" within 10 appeared_twice
lan2_again() { OUT=$(lan2 map udp 5353 40101 600) && eq "$(field result)" "0" >/dev/null; }
check "... where a client gets a mapping again" within 10 lan2_again
lab_finish
