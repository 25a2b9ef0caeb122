#!/bin/bash
# test_pcp.sh - PCP (RFC 6887) over IPv4 on the NAT-PMP port, over real
# sockets in the lab: ANNOUNCE, MAP and its answers, the nonce that owns a
# mapping, the checks of sections 8.2 and 11.3, options, results and their
# lifetimes, crossings with NAT-PMP and the HTTP API, restarts, repair, and
# the unsolicited ANNOUNCE beside NAT-PMP's announcements.
. "$(dirname "$0")/lab.sh"
lab_up
TOKEN=lab-token-pcp-0123456789
printf 'NATPMP_TOKEN=%s\n' "$TOKEN" >"$LAB_DIR/token"
chmod 600 "$LAB_DIR/token"
HTTP=(--http-listen 127.0.0.1:18087 --http-token-file "$LAB_DIR/token")
lan_listen 4 "$LAB_DIR/start.cap"
daemon_start --log-level info "${HTTP[@]}" --allowed-ports 40000-40999
wait $LISTENER

api() { in_rtr curl -sS -m 5 -H "Authorization: Bearer $TOKEN" "$@"; }
metric() { api http://127.0.0.1:18087/metrics | awk -v k="$1" '$1 == k { print $2 }'; }
N1=0123456789abcdef01234567
N2=fedcba9876543210fedcba98
ME=00000000000000000000ffffc0a84d02 # 192.168.77.2 as PCP writes it
ANY4=00000000000000000000ffff00000000
# pcp_map NONCE PROTO INTERNAL SUGGESTED LIFETIME [CLIENT [ADDRESS [OPTIONS]]]: a raw MAP request in hex.
pcp_map() {
	printf '0201000000%06x%s%s%02x000000%04x%04x%s%s' "$5" "${6:-$ME}" "$1" "$2" "$3" "$4" "${7:-$ANY4}" "${8:-}"
}
pcp_map_ok() { eq "$(field len) $(field opcode) $(field result)" "60 129 0"; }

# --- ANNOUNCE and the unsolicited ones at start ---
# The first rounds, 250 ms apart and doubling: how many fall in 4 s depends on when the daemon started.
pcp_ann=$(grep -c "^datagram .*from=$GW:5351 len=24 version=2 opcode=128 result=0 lifetime=0" "$LAB_DIR/start.cap")
nat_ann=$(grep -c "^datagram .*from=$GW:5351 len=12 version=0 opcode=128" "$LAB_DIR/start.cap")
check "at start, PCP's unsolicited ANNOUNCE (24 bytes, version 2, opcode 128) goes to 224.0.0.1:5350 beside each of NAT-PMP's ($pcp_ann, $nat_ann)" \
	test "$pcp_ann" -ge 2 -a "$nat_ann" -ge 2 -a $((pcp_ann - nat_ann)) -le 1 -a $((nat_ann - pcp_ann)) -le 1
npc pcp-announce
check "ANNOUNCE: a 24-byte answer, version 2, opcode 128, result 0, lifetime 0, from $GW:5351" \
	eq "$(field len) $(field version) $(field opcode) $(field result) $(field lifetime) $(field from)" "24 2 128 0 0 $GW:5351"
pe=$(field epoch)
npc address
check "... with the epoch NAT-PMP answers ($pe, $(field epoch))" test $(($(field epoch) - pe)) -le 1

# --- MAP ---
m0=$(metric 'natpmp_pcp_requests_total{opcode="map",result="0"}')
npc -n $N1 pcp-map tcp 8080 40000 3600
check "MAP: exactly 60 bytes, opcode 129, result 0, the nonce, protocol and port echoed, the external address" \
	eq "$(field len) $(field opcode) $(field result) $(field nonce) $(field protocol) $(field internal) $(field external) $(field address) $(field lifetime)" \
	"60 129 0 $N1 6 8080 40000 $EXT 3600"
check "... answered from $GW:5351" eq "$(field from)" "$GW:5351"
check "... in the kernel" kernel_has tcp 40000 $CLIENT 8080
check "... a WAN peer reaches the client through it" forward tcp 40000 8080
check "... and /metrics counts it as a PCP MAP" eq "$(metric 'natpmp_pcp_requests_total{opcode="map",result="0"}')" $((m0 + 1))
npc -n $N1 pcp-map tcp 8080 40000 3600
check "a retransmission (same nonce) gets the same answer" \
	eq "$(field result) $(field external) $(field nonce)" "0 40000 $N1"
npc -n $N1 pcp-map udp 8080 40000 600
check "UDP MAP (protocol 17)" eq "$(field result) $(field protocol) $(field external) $(field lifetime)" "0 17 40000 600"
check "... a WAN peer reaches it" forward udp 40000 8080

# --- the nonce owns the mapping ---
npc -n $N2 pcp-map tcp 8080 0 7200
check "a renewal with another nonce: NOT_AUTHORIZED (2), its own nonce echoed, 60 bytes" \
	eq "$(field len) $(field result) $(field nonce) $(field internal)" "60 2 $N2 8080"
check "... for as long as the owner's mapping lasts (RFC 6887 11.3: $(field lifetime) s of its 3600)" \
	test "$(field lifetime)" -gt 3500 -a "$(field lifetime)" -le 3600
npc -n $N2 pcp-unmap tcp 8080
check "a delete with another nonce: NOT_AUTHORIZED, and the mapping stays" \
	eq "$(field result) $(kernel_has tcp 40000 $CLIENT 8080 && echo kept)" "2 kept"
npc unmap tcp 8080
check "a NAT-PMP delete of a PCP mapping: result 2, the mapping stays" \
	eq "$(field result) $(kernel_has tcp 40000 $CLIENT 8080 && echo kept)" "2 kept"
npc unmap tcp 0
check "a NAT-PMP delete-all leaves PCP's mappings too" \
	eq "$(field result) $(kernel_has tcp 40000 $CLIENT 8080 && echo kept)" "2 kept"
npc map tcp 8080 40000 60
check "a NAT-PMP renewal of a PCP mapping: result 2" eq "$(field result)" "2"
sleep 1.1
npc -n $N2 pcp-map tcp 8080 0 7200
check "the log says why, without the nonce" eval 'logged "the mapping belongs to another PCP nonce" && ! logged "$N2" && ! logged "$N1"'

npc map tcp 9090 40090 3600
npc -n $N2 pcp-map tcp 9090 0 3600
check "a PCP MAP of a mapping NAT-PMP made takes it over (same port)" eq "$(field result) $(field external)" "0 40090"
npc unmap tcp 9090
check "... after which a NAT-PMP delete gets result 2" eq "$(field result)" "2"
check "... and /mappings shows it as PCP's, without the nonce" \
	eval 'api http://127.0.0.1:18087/mappings | grep -q "\"internal_port\": *9090[^}]*\"origin\": *\"pcp\"" &&
	! api http://127.0.0.1:18087/mappings | grep -qi "$N2"'

api -X POST -H 'Content-Type: application/json' \
	-d '{"protocol":"tcp","internal_ip":"192.168.77.2","internal_port":7070,"external_port":40070,"duration":3600}' \
	http://127.0.0.1:18087/forward >/dev/null
npc -n $N1 pcp-unmap tcp 7070
check "an administrator's mapping (HTTP API) is not deleted by PCP: NOT_AUTHORIZED" \
	eq "$(field result) $(kernel_has tcp 40070 $CLIENT 7070 && echo kept)" "2 kept"
npc -n $N1 pcp-map tcp 7070 0 60
check "... nor shortened: a shorter renewal is told what is left" \
	eval '[ "$(field result)" = 0 ] && [ "$(field external)" = 40070 ] && [ "$(field lifetime)" -gt 3000 ]'

npc -n $N1 pcp-unmap udp 8080
check "the same nonce deletes: result 0, lifetime 0" eq "$(field len) $(field result) $(field lifetime)" "60 0 0"
check "... gone from the kernel" kernel_lacks udp 40000
check "... and the WAN peer no longer gets through" no_forward udp 40000 8080

npc -n $N1 pcp-unmap tcp 0
check "a PCP delete of internal port 0 (the all-ports mapping, never made) deletes nothing: result 0" \
	eq "$(field result) $(kernel_has tcp 40000 $CLIENT 8080 && echo kept)" "0 kept"

# --- section 8.2's checks, over real sockets ---
npc raw "$(pcp_map $N1 6 8081 0 600 00000000000000000000ffffc0a84d63)"
check "a client address that is not the source: ADDRESS_MISMATCH (12) in a 60-byte answer" \
	eq "$(field len) $(field result) $(field lifetime)" "60 12 1800"
npc raw "$(pcp_map $N1 6 8081 0 600 00000000000000000001ffffc0a84d02)"
check "... all 96 prefix bits are checked (a stray bit in the prefix: 12)" eq "$(field result)" "12"
npc raw "$(pcp_map $N1 6 8081 0 600)$(printf '%02088d' 0)"
check "a 1104-byte request (over 1100): MALFORMED_REQUEST (3)" eq "$(field result)" "3"
npc raw "$(pcp_map $N1 6 8081 0 600)0000"
check "a length not a multiple of 4 (62): MALFORMED_REQUEST" eq "$(field result)" "3"
npc raw "$(pcp_map $N1 6 8081 0 600 | cut -c1-96)"
check "a MAP shorter than its opcode needs (48 bytes): MALFORMED_REQUEST" eq "$(field result)" "3"
check "a version 2 datagram under 24 bytes is dropped" no_reply raw 0201000000000000
check "a response (R bit) is dropped" no_reply raw "$(pcp_map $N1 6 8081 0 600 | sed 's/^0201/0281/')"
npc raw 0300
check "version 3: UNSUPP_VERSION (1), answered as version 2" \
	eq "$(field len) $(field version) $(field result)" "24 2 1"
npc raw 0100
check "version 1 likewise (the NAT-PMP client that falls back reads result 1)" eq "$(field version) $(field result)" "2 1"
npc raw "0202000000000e10${ME}$(printf '%0120d' 0)"
check "PEER: UNSUPP_OPCODE (4)" eq "$(field result)" "4"
npc raw "0205000000000000${ME}"
check "an opcode PCP does not define: UNSUPP_OPCODE" eq "$(field result)" "4"
npc raw "$(pcp_map $N1 132 8081 0 600)"
check "SCTP (132): UNSUPP_PROTOCOL (9)" eq "$(field len) $(field result)" "60 9"
npc raw "$(pcp_map $N1 0 0 0 600)"
check "protocol 0, all ports: UNSUPP_PROTOCOL" eq "$(field result)" "9"

# --- options ---
npc raw "$(pcp_map $N1 6 8082 0 600 "" "" 030000140060000000000000000000000000ffffc6336402)"
check "FILTER: UNSUPP_OPTION (5), never accepted and ignored" \
	eq "$(field result) $(kernel_not_to $CLIENT 8082 && echo none)" "5 none"
npc raw "$(pcp_map $N1 6 8082 0 600 "" "" 0100001000000000000000000000ffffc0a84d03)"
check "THIRD_PARTY for another host, with no rule allowing it: UNSUPP_OPTION (prohibited, RFC 6887 13.1)" \
	eq "$(field result)" "5"
npc raw "$(pcp_map $N1 6 8082 0 600 "" "" 01000010${ME})"
check "THIRD_PARTY naming the sender itself: MALFORMED_REQUEST" eq "$(field result)" "3"
npc raw "$(pcp_map $N1 6 8082 0 600 "" "" 63000000)"
check "an unknown mandatory option (99): UNSUPP_OPTION" eq "$(field result)" "5"
npc raw "$(pcp_map $N1 6 8082 40082 600 "" "" c8000000)"
check "an unknown optional option (200) is ignored: success" eq "$(field result) $(field external)" "0 40082"
npc raw "$(pcp_map $N1 6 8083 40083 600 "" "" 0200000002000000)"
check "PREFER_FAILURE twice: MALFORMED_OPTION (6)" eq "$(field result)" "6"
npc raw "$(pcp_map $N1 6 8083 40083 600 "" "" 0100001000000000)"
check "an option longer than what is left: MALFORMED_OPTION" eq "$(field result)" "6"

OUT=$(in_lan "$NPC_BIN" -g $GW -b $CLIENT2 map tcp 7000 40100 600 2>&1)
npc -n $N1 -F pcp-map tcp 8084 40100 600
check "PREFER_FAILURE with the port another client holds: CANNOT_PROVIDE_EXTERNAL (11), short lifetime, nothing made" \
	eq "$(field len) $(field result) $(field lifetime) $(kernel_not_to $CLIENT 8084 && echo none)" "64 11 30 none"
npc -n $N1 -F pcp-map tcp 8084 40101 600
check "PREFER_FAILURE with a free port: that port, the option answered (64 bytes)" \
	eq "$(field len) $(field result) $(field external)" "64 0 40101"
npc -n $N1 -F -a 203.0.113.9 pcp-map tcp 8085 40102 600
check "PREFER_FAILURE with an address that is not the router's: CANNOT_PROVIDE_EXTERNAL" eq "$(field result)" "11"
npc -n $N1 -a 203.0.113.9 pcp-map tcp 8085 40102 600
check "without it, a wrong suggested address is a hint: the real one is answered" \
	eq "$(field result) $(field address)" "0 $EXT"
npc -n $N1 pcp-map tcp 8086 0 600
check "no suggested port: a port is chosen" eval 'eq "$(field result)" 0 && is_port "$(field external)"'

# --- restart, kill -9, repair: the nonce is kept ---
daemon_kill TERM
daemon_start --log-level info "${HTTP[@]}" --allowed-ports 40000-40999
npc -n $N2 pcp-map tcp 8080 0 600
check "after a restart, another nonce is still refused" eq "$(field result)" "2"
npc -n $N1 pcp-map tcp 8080 0 3600
check "... and the mapping's own renews it on its port" eq "$(field result) $(field external)" "0 40000"
daemon_kill KILL
daemon_start --log-level info "${HTTP[@]}" --allowed-ports 40000-40999
npc -n $N2 pcp-unmap tcp 8080
check "after kill -9, another nonce is still refused" eq "$(field result)" "2"
check "... and the mapping is in the kernel again" kernel_has tcp 40000 $CLIENT 8080
in_rtr nft flush ruleset
check "nft flush ruleset: the PCP mapping is put back" within 10 kernel_has tcp 40000 $CLIENT 8080
check "... and forwards again" forward tcp 40000 8080

# --- THIRD_PARTY, where a rule lets a sender map for a host ---
daemon_kill TERM
daemon_start --log-level info "${HTTP[@]}" --allowed-ports 40000-40999 \
	--rule 'third-party 192.168.77.2 192.168.77.3' --rule 'third-party 192.168.77.2 10.9.0.0/16'
TP3=01000010$(printf '%020d' 0)ffffc0a84d03 # THIRD_PARTY ::ffff:192.168.77.3
npc raw "$(pcp_map $N1 6 7300 40300 600 "" "" $TP3)"
check "--rule 'third-party 192.168.77.2 192.168.77.3': .2 maps for .3, the option answered (80 bytes)" \
	eq "$(field len) $(field result) $(field external)" "80 0 40300"
check "... the forward goes to .3" kernel_has tcp 40300 $CLIENT2 7300
check "... and a WAN peer reaches .3 through it" forward tcp 40300 7300 $CLIENT2
OUT=$(in_lan "$NPC_BIN" -g $GW -b $CLIENT2 unmap tcp 7300 2>&1)
check "... the host's own NAT-PMP delete cannot undo it (result 2): it is the sender's nonce's" \
	eq "$(field result) $(kernel_has tcp 40300 $CLIENT2 7300 && echo kept)" "2 kept"
OUT=$(in_lan "$NPC_BIN" -g $GW -b $CLIENT2 raw "$(pcp_map $N2 6 7301 0 600 00000000000000000000ffffc0a84d03 "" 01000010${ME})" 2>&1)
check "... the rule does not work the other way round: UNSUPP_OPTION" eq "$(field result)" "5"
npc raw "$(pcp_map $N1 6 7302 0 600 "" "" 01000010$(printf '%020d' 0)ffff0a090001)"
check "a rule naming a host that is not on the LAN: NOT_AUTHORIZED" eq "$(field result)" "2"

# --- limits: NO_RESOURCES and USER_EX_QUOTA ---
# Two ports for each protocol, three mappings for the client.
daemon_kill TERM
rm -rf "${STATE_DIR:?}"/*
daemon_start --log-level info "${HTTP[@]}" --max-mappings-per-ip 3 --allowed-ports 41000-41001
npc -n $N1 pcp-map udp 1 0 600
npc -n $N1 pcp-map udp 2 0 600
npc -n $N1 pcp-map udp 3 0 600
check "no free port left: NO_RESOURCES (8), short lifetime" eq "$(field len) $(field result) $(field lifetime)" "60 8 30"
npc -n $N1 pcp-map tcp 1 0 600
check "... while a TCP port is still free for its third mapping" eq "$(field result)" "0"
npc -n $N1 pcp-map tcp 2 0 600
check "a client at --max-mappings-per-ip: USER_EX_QUOTA (10), short lifetime" \
	eq "$(field len) $(field result) $(field lifetime)" "60 10 30"
check "/metrics counts them as PCP says them (results 8 and 10, not NAT-PMP's 4)" \
	eq "$(metric 'natpmp_pcp_requests_total{opcode="map",result="8"}') $(metric 'natpmp_pcp_requests_total{opcode="map",result="10"}') $(metric 'natpmp_pcp_requests_total{opcode="map",result="4"}')" "1 1 0"
# .3 is the same host as .2 (one link-layer address): its quota is spent too.
sleep 1.1 # (refusals are logged at most once a second)
OUT=$(in_lan "$NPC_BIN" -g $GW -b $CLIENT2 -n $N2 pcp-map tcp 3 0 600 2>&1)
check "the same host under another address: USER_EX_QUOTA too, not NO_RESOURCES" eq "$(field result)" "10"
check "... and the log says why" within 5 logged "its host holds --max-mappings-per-ip under other addresses"

# --- a new external address: announced by PCP too (RFC 6887 14.1.3), with the epoch going on ---
lan_listen 6 "$LAB_DIR/change.cap"
must ip -n "$RTR" addr del $EXT/24 dev "$RTR_WAN_IF"
must ip -n "$RTR" addr add 198.51.100.7/24 dev "$RTR_WAN_IF"
pcp_announced() { grep -q "^datagram .*len=24 version=2 opcode=128 result=0" "$LAB_DIR/change.cap"; }
check "when the external address changes, PCP's unsolicited ANNOUNCE goes out beside NAT-PMP's" within 5 pcp_announced
kill $LISTENER 2>/dev/null
wait $LISTENER 2>/dev/null
new_address() { npc -n $N1 pcp-map udp 1 0 600; eq "$(field result) $(field address)" "0 198.51.100.7"; }
check "... and a MAP answers the new address" within 5 new_address
must ip -n "$RTR" addr del 198.51.100.7/24 dev "$RTR_WAN_IF"
# Behind a carrier-grade NAT (issue 17): a shared-space address is told to clients, but nobody outside reaches it.
check "a public external address brings no warning of another NAT" eval '! logged "another NAT stands between"'
must ip -n "$RTR" addr add 100.64.0.9/10 dev "$RTR_WAN_IF"
check "an external address in 100.64.0.0/10 is warned about: named, unreachable from outside, what helps" \
	within 5 logged "external address 100.64.0.9 of $RTR_WAN_IF is in the shared address space of carrier-grade NAT (100.64.0.0/10, RFC 6598): another NAT stands between it and the Internet, and the forwards made here cannot be reached from outside; if that NAT speaks NAT-PMP, --upstream-gateway maps every port there too; if it is a full-cone carrier-grade NAT, --stun-server opens and keeps each port through it"
must ip -n "$RTR" addr del 100.64.0.9/10 dev "$RTR_WAN_IF"
must ip -n "$RTR" addr add $EXT/24 dev "$RTR_WAN_IF"

# --- no external address: NETWORK_FAILURE, ANNOUNCE still answers ---
must ip -n "$RTR" addr del $EXT/24 dev "$RTR_WAN_IF"
no_ext() { npc -r 1 -t 500 -n $N1 pcp-map tcp 9999 0 600; eq "$(field result) $(field lifetime)" "7 30"; }
check "MAP with no external address: NETWORK_FAILURE (7), short lifetime" within 5 no_ext
npc pcp-announce
check "... while ANNOUNCE still answers result 0" eq "$(field result)" "0"

lab_finish
