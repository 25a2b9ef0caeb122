#!/bin/bash
# test_cgnat.sh - STUN mode (issue 17), in five namespaces: a LAN client asks
# the router (natpmp-server --stun-server), whose external address is in
# 100.64.0.0/10 behind a carrier-grade NAT; coturn answers STUN on two
# addresses in the Internet namespace, where a peer reaches the LAN client
# through both NATs at the public port the client was told.  The carrier's
# NAT is a port-translating full cone first, then plain masquerade
# (port-restricted), then fully-random masquerade (symmetric).
. "$(dirname "$0")/lab.sh"
CGN_UDP_TIMEOUT=5
CGN_TCP_TIMEOUT=8
. "$(dirname "$0")/cgnat.sh"
lab_require curl
lab_up_cgnat fullcone
stun_start
http_keepalive_start
HTTP=127.0.0.1:18089
HOOK_OUT=$LAB_DIR/hook.out
HOOK=$LAB_DIR/hook
# The arguments, then what natmap's scripts would read from the environment.
printf '#!/bin/sh\necho "$*" >>"%s"\necho "env $NATPMP_EVENT $NATPMP_PROTOCOL $NATPMP_PUBLIC_ADDRESS $NATPMP_PUBLIC_PORT $NATPMP_IP4P $NATPMP_LOCAL_PORT $NATPMP_INTERNAL_ADDRESS $NATPMP_INTERNAL_PORT" >>"%s"\n' \
	"$HOOK_OUT" "$HOOK_OUT" >"$HOOK"
chmod +x "$HOOK"
health() { in_rtr curl -s -m 10 "http://$HTTP/health"; }
metrics() { in_rtr curl -s -m 10 "http://$HTTP/metrics"; }
json() { $PYTHON -c 'import json, sys; d = json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }
outer() { health | json "$1"; }
# ip4p ADDR PORT: natmap's IP4P form.
ip4p() { local IFS=.; set -- $1 $2; printf '2001::%x:%x:%x' "$5" $(($1 * 256 + $2)) $(($3 * 256 + $4)); }
# router_socket PROTO PORT: the router holds a socket on local PORT (the binding's).
router_socket() { in_rtr ss -Han "$([ "$1" = tcp ] && echo -t || echo -u)" "sport = :$2" | grep -q .; }
no_router_socket() { ! router_socket "$@" && daemon_alive; }

daemon_start --stun-server $STUN1 --stun-keepalive 2 --stun-keepalive-server $HTTP_KEEPALIVE \
	--hook "$HOOK" --http-listen $HTTP

# --- the public address, and what kind of NAT is in the way ---
address_is_public() { npc address; eq "$(field result) $(field address)" "0 $CGN_PUBLIC"; }
check "opcode 0 answers the public address the STUN server sees, not the router's 100.64 address" \
	within 15 address_is_public
check "the log classifies the full cone by RFC 5780: endpoint-independent mapping and filtering" \
	within 15 logged "stun: a NAT stands between the router and the STUN server; its mapping is endpoint-independent, its filtering endpoint-independent"
check "/health shows the outer NAT: STUN, both endpoint-independent, forwarding" \
	eq "$(outer '[d["outer_nat"][k] for k in ("kind", "mapping", "filtering", "forwarding", "reason")]')" \
	"['stun', 'endpoint-independent', 'endpoint-independent', True, None]"
check "/metrics says so too" \
	eval 'metrics | grep -qx "natpmp_stun_nat_info{mapping=\"endpoint-independent\",filtering=\"endpoint-independent\"} 1"'
check "no warning about an unreachable address: STUN mode is the remedy" eval '! logged "another NAT stands between"'

# --- mappings through both NATs, told the STUN-learnt port ---
UPUB=$(cgnat_public_port 40000)
TPUB=$(cgnat_public_port 40010)
npc map udp 5353 40000 3600
check "a UDP mapping is told the carrier's public port ($UPUB), not the router's local 40000" \
	eq "$(field result) $(field external) $(field lifetime)" "0 $UPUB 3600"
check "the router forwards its local port 40000 to the client" kernel_has udp 40000 $CLIENT 5353
npc map tcp 8080 40010 3600
check "a TCP mapping is told its public port ($TPUB) too" eq "$(field result) $(field external)" "0 $TPUB"
npc -n 0123456789abcdef01234567 pcp-map udp 6000 40020 600
check "PCP MAP answers the public address and port" \
	eq "$(field result) $(field address) $(field external)" "0 $CGN_PUBLIC $(cgnat_public_port 40020)"
check "UDP from a peer on the Internet reaches the LAN client at $CGN_PUBLIC:$UPUB" forward udp $UPUB 5353
check "TCP from the peer reaches it at $CGN_PUBLIC:$TPUB" forward tcp $TPUB 8080
check "the hook hears of the UDP mapping with the public address and port" \
	hook_saw "added udp $CLIENT 5353 $CGN_PUBLIC $UPUB 3600"
check "... and its environment has natmap's values: public address and port, IP4P, the router's port" \
	hook_saw "env added udp $CGN_PUBLIC $UPUB $(ip4p $CGN_PUBLIC $UPUB) 40000 $CLIENT 5353"
check "GET /mappings shows the public port and the router's local one" \
	eq "$(in_rtr curl -s -m 10 "http://$HTTP/mappings" | json '[(m["external_port"], m["local_port"]) for m in d if m["internal_port"] == 5353]')" "[($UPUB, 40000)]"

# --- kept alive without the client: longer than several binding timeouts ---
START=$(now_ms)
sleep $((4 * CGN_TCP_TIMEOUT))
check "no client renewed for $((4 * CGN_TCP_TIMEOUT)) s: four TCP and six UDP binding timeouts in the carrier's NAT" \
	test $(($(now_ms) - START)) -ge $((4 * CGN_TCP_TIMEOUT * 1000))
check "UDP from the peer still reaches the client: the daemon kept the binding alive" forward udp $UPUB 5353
check "so does TCP" forward tcp $TPUB 8080
check "the TCP binding's keep-alive connection to the HTTP server leaves from the router's port (natmap's way)" \
	eval "grep -c 'request $CGN_PUBLIC:$TPUB HEAD' '$HTTP_KEEPALIVE_LOG' | { read n; [ \"\$n\" -ge 3 ]; }"

# --- the carrier's NAT restarts: every binding lost, new ports ---
cgnat_renumber
UPUB2=$(cgnat_public_port 40000)
TPUB2=$(cgnat_public_port 40010)
check "the lost UDP binding is re-learnt: the log names the new public port" \
	within 15 logged "stun: the outer NAT moved UDP local port 40000 from public port $UPUB to $UPUB2"
check "... and the hook runs as renewed with it" hook_saw "renewed udp $CLIENT 5353 $CGN_PUBLIC $UPUB2 3600"
check "the lost TCP binding is re-learnt too (its connections reset and made again)" \
	hook_saw "renewed tcp $CLIENT 8080 $CGN_PUBLIC $TPUB2 3600"
npc map udp 5353 40000 3600
check "the client's next renewal is told the new port" eq "$(field result) $(field external)" "0 $UPUB2"
check "the peer reaches the client at the new UDP port" forward udp $UPUB2 5353
check "... and at the new TCP port" forward tcp $TPUB2 8080

# --- delete and expiry close the binding ---
check "the router holds the UDP binding's socket on local port 40000" router_socket udp 40000
npc map udp 5353 0 0
check "a delete closes the UDP binding: no socket on 40000 is left" within 5 no_router_socket udp 40000
check "... and the peer no longer gets through" no_forward udp $UPUB2 5353
check "the TCP binding has its connection from local port 40010" router_socket tcp 40010
npc map tcp 8080 40010 0
check "a delete closes the TCP binding's connections" within 5 no_router_socket tcp 40010
npc map udp 7000 40030 3
check "a short mapping gets a public port" eq "$(field result) $(field external)" "0 $(cgnat_public_port 40030)"
check "on expiry its binding is closed" within 10 no_router_socket udp 40030
check "the hook hears the expiry with the public port" hook_saw "expired udp $CLIENT 7000 $CGN_PUBLIC $(cgnat_public_port 40030) 0"

# --- an unreachable STUN server: skipped, retried, nobody blocked ---
daemon_kill TERM
lan_listen 30 "$LAB_DIR/announce.cap"
daemon_start --stun-server 198.51.100.99 --stun-server $STUN1 --stun-keepalive 2 --http-listen $HTTP
check "a silent first STUN server is logged and the next one asked" \
	within 15 logged "stun: server 198.51.100.99:3478 did not answer; trying the next"
check "... which gives the public address" within 15 address_is_public
check "the public address, once learnt, is announced on the LAN (NAT-PMP's announcement and PCP's ANNOUNCE)" \
	within 10 eval "grep -q 'len=12 .*address=$CGN_PUBLIC' '$LAB_DIR/announce.cap' && grep -q 'len=24 version=2 opcode=128 result=0' '$LAB_DIR/announce.cap'"
kill $LISTENER 2>/dev/null
wait $LISTENER 2>/dev/null
npc map tcp 8080 40040 600
TPUB3=$(cgnat_public_port 40040)
check "without a keep-alive server, a TCP mapping is told its public port all the same" \
	eq "$(field result) $(field external)" "0 $TPUB3"
sleep $((2 * CGN_TCP_TIMEOUT))
check "... and, kept by a STUN connection at each keep-alive, still reaches the client after two binding timeouts" \
	forward tcp $TPUB3 8080
daemon_kill TERM
daemon_start --stun-server 198.51.100.99 --http-listen $HTTP
npc address
check "with no STUN server answering, opcode 0 is answered (result 3: no address yet) while it is still being asked" \
	eq "$(field result) $(logged "no STUN server answered" && echo gave-up)" "3 "
check "the silence is logged" within 15 logged "stun: no STUN server answered; the public address stays unknown; trying again in 5 s"
check "... and the server is asked again 5 s later, then after 10 s" \
	within 25 eval '[ "$(log_count "stun: no STUN server answered; the public address stays unknown; trying again in 10 s")" = 1 ]'
npc map udp 5353 40000 600
check "a map request then fails with result 3" eq "$(field result)" 3
check "... and leaves no local forward behind" kernel_lacks udp 40000

# --- STUN servers by name, from a slow name server, without holding anyone up ---
DNS_ADDR=198.51.100.53
must ip -n "$WAN" addr add $DNS_ADDR/24 dev "$WAN_IF"
# ip netns exec puts /etc/netns/NS/resolv.conf over /etc/resolv.conf for what it runs.
mkdir -p "/etc/netns/$RTR"
trap 'rm -rf "/etc/netns/$RTR"; cgnat_cleanup' EXIT
echo "nameserver $DNS_ADDR" >"/etc/netns/$RTR/resolv.conf"
in_wan $PYTHON "$LAB_SRC/dns.py" $DNS_ADDR 1500 300 stun.lab.test=$STUN1 keepalive.lab.test=${HTTP_KEEPALIVE%:*} \
	>"$LAB_DIR/dns.out" 2>&1 &
await_listening "$LAB_DIR/dns.out" || lab_fail "the lab's name server did not start: $(cat "$LAB_DIR/dns.out")"
daemon_kill TERM
LEARNT=$(log_count "public address is")
daemon_start --stun-server nosuch.lab.test --stun-server stun.lab.test:3478 --http-listen $HTTP \
	--stun-keepalive 2 --stun-keepalive-server keepalive.lab.test:${HTTP_KEEPALIVE#*:}
npc address
check "while the names are looked up (1.5 s each), opcode 0 is answered at once" \
	eq "$(field result) $(log_count "public address is")" "3 $LEARNT"
check "a name that does not resolve is logged, and the next server tried" \
	within 15 logged "stun: server nosuch.lab.test:3478 cannot be resolved"
check "the next server's name resolves (evdns) and its STUN answer gives the public address" within 15 address_is_public
check "... the name server was asked for both names" \
	eval "grep -q 'query nosuch.lab.test 1' '$LAB_DIR/dns.out' && grep -q 'query stun.lab.test 1' '$LAB_DIR/dns.out'"
check "the keep-alive server is given by name too, and resolved" \
	within 15 logged "stun: TCP bindings are held by connections to the keep-alive server keepalive.lab.test ($HTTP_KEEPALIVE)"
npc map tcp 8090 40050 600
check "a TCP mapping then gets its public port" eq "$(field result) $(field external)" "0 $(cgnat_public_port 40050)"
check "... and its binding is kept by HEAD requests to that server, from the public port" \
	within 15 grep -q "request $CGN_PUBLIC:$(cgnat_public_port 40050) HEAD" "$HTTP_KEEPALIVE_LOG"

# --- a port-restricted carrier NAT (plain masquerade): forwards cannot work ---
daemon_kill TERM
cgnat_become restricted
daemon_start --stun-server $STUN1 --http-listen $HTTP
check "plain masquerade is classified: its filtering depends on the peer" \
	within 20 logged "the outer NAT's filtering is address-and-port-dependent: it lets in only peers the router has sent to first: map requests fail with result 3 (PCP NETWORK_FAILURE); --stun-allow-filtered maps through it anyway"
check "/health says mappings are not made, and why" \
	eq "$(outer '(d["outer_nat"]["forwarding"], d["outer_nat"]["filtering"], d["outer_nat"]["reason"])')" \
	"(False, 'address-and-port-dependent', \"the outer NAT's filtering is address-and-port-dependent: it lets in only peers the router has sent to first\")"
check "opcode 0 still answers the public address" address_is_public
npc map udp 5400 40100 600
check "a NAT-PMP map request gets result 3" eq "$(field result)" 3
check "... and leaves no local forward behind" kernel_lacks udp 40100
npc -n 00112233445566778899aabb pcp-map tcp 8100 40110 600
check "a PCP MAP gets NETWORK_FAILURE with a short lifetime" eq "$(field result) $(field lifetime)" "7 30"
npc map tcp 8080 40040 600
check "a client renewing a mapping made before the NAT was found to filter is answered: result 3" \
	eq "$(field result)" 3
check "the reason was logged once, not per request" eq "$(log_count "map requests fail with result 3")" 1
daemon_kill TERM
daemon_start --stun-server $STUN1 --stun-allow-filtered
check "--stun-allow-filtered maps through it anyway" \
	within 20 eval 'npc map udp 5401 40101 600; [ "$(field result)" = 0 ]'

# --- a symmetric carrier NAT (fully-random masquerade) ---
daemon_kill TERM
cgnat_become symmetric
daemon_start --stun-server $STUN1 --http-listen $HTTP
check "fully-random masquerade is classified: its mapping depends on the peer (symmetric)" \
	within 20 logged "the outer NAT's mapping is address-and-port-dependent (symmetric NAT)"
check "/health says so" eq "$(outer '(d["outer_nat"]["forwarding"], d["outer_nat"]["mapping"])')" "(False, 'address-and-port-dependent')"
npc map tcp 8200 40200 600
check "a map request gets result 3" eq "$(field result)" 3
lab_finish
