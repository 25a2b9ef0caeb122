#!/bin/bash
# test_pinhole.sh - PCP over IPv6: MAP opens a pinhole for the sender's own
# address and port through the router owner's firewall (which drops
# forwarded IPv6 from outside unless it carries the pinhole mark), a WAN
# peer reaches the LAN host through it over TCP and UDP, and delete, expiry,
# restart, kill -9 and nft flush ruleset do what they do for IPv4 mappings.
. "$(dirname "$0")/lab.sh"
lab_up
lab_ipv6
lan_listen6() {
	in_lan "$NPC_BIN" -b :: listen "$1" >"$2" 2>&1 &
	LISTENER=$!
	within 10 grep -q '^listening' "$2" >/dev/null || lab_fail "the IPv6 listener did not start: $(cat "$2")"
}
HOOK=$LAB_DIR/hook
HOOK_OUT=$LAB_DIR/hook.out
printf '#!/bin/sh\necho "$*" >>%s\n' "$HOOK_OUT" >"$HOOK"
chmod +x "$HOOK"
lan_listen6 4 "$LAB_DIR/start6.cap"
daemon_start --log-level debug --http-listen 127.0.0.1:18091 --hook "$HOOK"
wait $LISTENER

N1=00112233445566778899aabb
N2=bbaa99887766554433221100
# From the first host's address (the kernel would pick the one added last).
npc6() { OUT=$(in_lan "$NPC_BIN" -g $GW6 -b $CLIENT6 "$@" 2>&1); RC=$?; }
# (protocols as numbers: a minimal system has no /etc/protocols, and nft would print 6 for tcp there only)
pinholes() { in_rtr nft -j -p list set ip6 natpmp pinholes | $PYTHON -c 'import json, sys
for o in json.load(sys.stdin)["nftables"]:
    for e in o.get("set", {}).get("elem", []):
        v = e["elem"]["val"]["concat"] if isinstance(e, dict) and "elem" in e else e["concat"]
        print(*v)'; }
proto_num() { case $1 in tcp) echo 6 ;; udp) echo 17 ;; *) echo "$1" ;; esac; }
has_pinhole() {
	pinholes | grep -qx "$1 $(proto_num $2) $3" || { echo "       no pinhole $1 $2 $3 in: $(pinholes | tr '\n' '|')"; return 1; }
}
lacks_pinhole() { ! pinholes | grep -qx "$1 $(proto_num $2) $3" && daemon_alive; }
# Through a pinhole the WAN peer connects to the client's own address.
reach6() { forward "$1" "$2" "$3" "$CLIENT6" "$CLIENT6"; }
blocked6() { ! forward "$1" "$2" "$3" "$CLIENT6" "$CLIENT6" && daemon_alive; }

check "at start, PCP's unsolicited ANNOUNCE goes to [ff02::1]:5350 from the router's link-local address" \
	eval 'grep -q "^datagram .*from=\[fe80::[0-9a-f:]*\]:5351 len=24 version=2 opcode=128 result=0" "$LAB_DIR/start6.cap"'
check "... and no NAT-PMP announcement over IPv6" eval '! grep -q "version=0" "$LAB_DIR/start6.cap"'

# --- before: the owner's firewall drops what comes from outside ---
check "without a pinhole, a WAN peer does not reach the LAN host over IPv6" blocked6 tcp 8080 8080

# --- MAP over IPv6 ---
npc6 pcp-announce
check "ANNOUNCE over IPv6, answered from the global address asked ($GW6)" \
	eq "$(field len) $(field result) $(field from)" "24 0 [$GW6]:5351"
npc6 -n $N1 pcp-map tcp 8080 0 600
check "MAP over IPv6: 60 bytes, result 0, its own address and port as the external ones" \
	eq "$(field len) $(field result) $(field nonce) $(field internal) $(field external) $(field address) $(field lifetime)" \
	"60 0 $N1 8080 8080 $CLIENT6 600"
check "... a pinhole in table ip6 natpmp" has_pinhole $CLIENT6 tcp 8080
check "... the hook hears of it with the client's own address as the external one" \
	hook_saw "added tcp $CLIENT6 8080 $CLIENT6 8080 600"
check "... through which a WAN peer reaches the LAN host over TCP" reach6 tcp 8080 8080
check "... (the other host's port stays closed)" eval '! forward tcp 8080 8080 $CLIENT6B $CLIENT6B'
npc6 -n $N1 pcp-map udp 5000 6000 600
check "UDP MAP: the suggested port is a hint, the pinhole is the host's own port" \
	eq "$(field result) $(field external)" "0 5000"
check "... reached from the WAN over UDP" reach6 udp 5000 5000
npc6 -n $N1 -F pcp-map udp 5001 6001 600
check "PREFER_FAILURE with another port than its own: CANNOT_PROVIDE_EXTERNAL" eq "$(field result)" "11"
npc6 -n $N2 pcp-unmap tcp 8080
check "another nonce cannot delete it: NOT_AUTHORIZED" eq "$(field result)" "2"
check "/mappings lists it as a pinhole of family ipv6" \
	eval 'in_rtr curl -sS -m 5 http://127.0.0.1:18091/mappings | grep -q "\"client\":\"$CLIENT6\",\"protocol\":\"tcp\",\"internal_port\":8080,\"external_port\":8080,\"external_address\":\"$CLIENT6\",\"lifetime\":[0-9]*,\"origin\":\"pcp\",\"family\":\"ipv6\",\"pinhole\":true"'

# A source off the interface's prefixes (a host on the LAN link claiming another network) is not served.
ip -n "$LAN" -6 addr add 2001:db8:99::2/64 dev "$LAN_IF" nodad
OUT=$(in_lan "$NPC_BIN" -g $GW6 -b 2001:db8:99::2 -r 1 -t 1000 -n $N1 pcp-map tcp 8282 0 600 2>&1)
check "a request from an address off the listen interface's prefixes gets no answer" eq "$OUT" "no reply"
check "... and no pinhole" lacks_pinhole 2001:db8:99::2 tcp 8282
ip -n "$LAN" -6 addr del 2001:db8:99::2/64 dev "$LAN_IF"

# The client address field must be the source: a pinhole for another host is ADDRESS_MISMATCH.
OUT=$(in_lan "$NPC_BIN" -g $GW6 -b $CLIENT6 raw "020100000000025820010db80077000000000000000000030011223344556677889900aa060000001f901f9000000000000000000000000000000000" 2>&1)
check "a MAP naming another host's address: ADDRESS_MISMATCH" eq "$(field result)" "12"
sleep 1.1 # (refusals are logged at most once a second)
LL=$(ip -n "$LAN" -6 addr show dev "$LAN_IF" scope link | awk '/inet6/ { sub("/.*", "", $2); print $2; exit }')
RLL=$(ip -n "$RTR" -6 addr show dev "$RTR_LAN_IF" scope link | awk '/inet6/ { sub("/.*", "", $2); print $2; exit }')
OUT=$(in_lan "$NPC_BIN" -g "$RLL%$LAN_IF" -b "$LL%$LAN_IF" -n $N1 pcp-map tcp 9000 0 600 2>&1)
check "a MAP from a link-local address, to the router's: answered from it, NOT_AUTHORIZED" \
	eq "$(field from) $(field result)" "[$RLL]:5351 2"
check "... and the log says why" within 5 logged "link-local address is never reachable"
no_reply6() { OUT=$(in_lan "$NPC_BIN" -g $GW6 -r 1 -t 1000 raw 0000 2>&1); eq "$OUT" "no reply" && daemon_alive; }
check "a NAT-PMP request over IPv6 is not answered" no_reply6

# --- restart and kill -9 keep pinholes and their nonces; repair ---
daemon_kill TERM
daemon_start --log-level debug --http-listen 127.0.0.1:18091
check "after a restart the pinhole is back" has_pinhole $CLIENT6 tcp 8080
check "... and still reached" reach6 tcp 8080 8080
npc6 -n $N2 pcp-map tcp 8080 0 600
check "... and still its nonce's" eq "$(field result)" "2"
daemon_kill KILL
daemon_start --log-level debug --http-listen 127.0.0.1:18091
check "after kill -9 too" has_pinhole $CLIENT6 tcp 8080
in_rtr nft flush ruleset
check "nft flush ruleset: table ip6 natpmp is put back with the pinhole" within 10 has_pinhole $CLIENT6 tcp 8080
# (the lab's own firewall went with the flush: put it back as the owner's would be)
lab_ipv6_firewall
check "... and the pinhole works again" reach6 tcp 8080 8080

# --- delete and expiry close it, and end its flows ---
in_lan $PYTHON "$TRAFFIC" serve tcp $CLIENT6 8080 20 stream >"$LAB_DIR/stream.out" 2>&1 &
SPID=$!
await_listening "$LAB_DIR/stream.out"
in_wan $PYTHON "$TRAFFIC" session $CLIENT6 8080 10 "$LAB_DIR/go" >"$LAB_DIR/session.out" 2>&1 &
CPID=$!
within 10 grep -q "first exchange ok" "$LAB_DIR/session.out"
flushes() { log_count "conntrack entr"; }
before=$(flushes)
npc6 -n $N1 pcp-unmap tcp 8080
check "delete by its nonce: result 0, lifetime 0" eq "$(field result) $(field lifetime)" "0 0"
check "... the pinhole is gone" lacks_pinhole $CLIENT6 tcp 8080
# (entries of mappings that end within 100 ms are removed together, then logged)
within 5 more_than "$before" flushes
check "... the log counts the IPv6 conntrack entries removed" grep -q "removed [1-9][0-9]* conntrack entr" "$LOG"
touch "$LAB_DIR/go"
wait $CPID
check "... the connection open through it is cut (its conntrack entry removed)" eq "$?" 1
pkill -KILL -P $SPID 2>/dev/null
kill $SPID 2>/dev/null
wait $SPID 2>/dev/null
check "... and a new connection from the WAN is dropped" blocked6 tcp 8080 8080

npc6 -n $N1 pcp-map tcp 8181 0 2
check "a 2-second pinhole" has_pinhole $CLIENT6 tcp 8181
check "... expires" within 10 lacks_pinhole $CLIENT6 tcp 8181
check "... and no longer admits anything" blocked6 tcp 8181 8181

lab_finish
