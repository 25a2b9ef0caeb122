#!/bin/bash
# test_upstream.sh - upstream mode (double NAT), in four namespaces: a LAN
# client asks the router (natpmp-server --upstream-gateway), which asks the
# gateway (a second natpmp-server capping lifetimes at 10 s, as ProtonVPN's
# caps them at 60); a WAN peer reaches the LAN client through both.
. "$(dirname "$0")/lab.sh"
lab_require natpmpc curl
lab_up_double
HTTP=127.0.0.1:18089
TOKEN=upstream-token-0123456789abcdef
HOOK_OUT=$LAB_DIR/hook.out
HOOK=$LAB_DIR/hook
printf '#!/bin/sh\necho "$*" >>"%s"\n' "$HOOK_OUT" >"$HOOK"
chmod +x "$HOOK"

gw_map() { kernel_list mappings natpmp "$GWY"; }
# gw_forwards PROTO PORT: the gateway forwards its PORT to the router.
gw_forwards() { gw_map | grep -q "^$1 $2 $UP_RTR "; }
# gw_lacks PROTO PORT: the gateway's map, listed, has no PORT.
gw_lacks() { local l; l=$(gw_map) || { echo "       $l"; return 1; }; ! grep -q "^$1 $2 " <<<"$l"; }
rtr_forwards() { kernel_has "$@"; }
rtr_lacks() { kernel_lacks "$@"; }
http() { in_rtr curl -s -m 10 -H "Authorization: Bearer $TOKEN" "$@"; }
# listed PORT / unlisted PORT: GET /mappings answers, with / without a mapping of internal port PORT.
listed() { http -f "http://$HTTP/mappings" | grep -Eq "\"internal_port\": ?$1,"; }
unlisted() {
	local b
	b=$(http -f "http://$HTTP/mappings") || { echo "       GET /mappings failed"; return 1; }
	! grep -Eq "\"internal_port\": ?$1," <<<"$b"
}
json() { $PYTHON -c 'import json, sys; d = json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }

gateway_start --max-lifetime 10
export NATPMP_TOKEN=$TOKEN
daemon_start --upstream-gateway $UP_GW --upstream-interface "$RTR_WAN_IF" --hook "$HOOK" --http-listen $HTTP

# --- a mapping through both layers ---
npc address
check "opcode 0 answers the gateway's external address, not the router's own" eq "$(field address)" "$EXT"
npc map tcp 8080 40000 3600
check "a TCP mapping gets the gateway's port, with the lifetime the client asked for, not the gateway's 10 s" \
	eq "$(field result) $(field external) $(field lifetime)" "0 40000 3600"
check "the gateway forwards 40000 to the router" gw_forwards tcp 40000
check "the router forwards its local port 40000 to the LAN client" rtr_forwards tcp 40000 $CLIENT 8080
check "TCP from the WAN to the gateway's $EXT:40000 reaches the LAN client" forward tcp 40000 8080
check "the hook hears of it with the gateway's address and port" \
	hook_saw "added tcp $CLIENT 8080 $EXT 40000 3600"
OUT=$(in_lan natpmpc -g $GW -a 40001 5353 udp 3600 2>&1)
check "Debian's natpmpc maps a UDP port through both layers" \
	grep -q "Mapped public port 40001 protocol UDP to local port 5353 li[f]*e*time 3600" <<<"$OUT"
check "UDP from the WAN to $EXT:40001 reaches the LAN client" forward udp 40001 5353

# --- the HTTP API in upstream mode ---
OUT=$(http -X POST -d "{\"internal_ip\": \"$CLIENT2\", \"internal_port\": 9000, \"protocol\": \"tcp\", \"duration\": 600, \"external_port\": 40005}" "http://$HTTP/forward")
check "POST /forward answers the gateway's address and port" \
	eq "$(json 'd["external_ip"], d["external_port"], d["lifetime"]' <<<"$OUT")" "('$EXT', 40005, 600)"
check "... and the WAN reaches the second client through it" forward tcp 40005 9000 $CLIENT2
OUT=$(http "http://$HTTP/mappings?client=$CLIENT2")
check "GET /mappings shows the gateway's port and the router's local one" \
	eq "$(json '[(m["external_port"], m["local_port"], m["origin"]) for m in d]' <<<"$OUT")" "[(40005, 40005, 'http')]"

# --- a map and its delete in one batch: both answered, nothing left waiting ---
pairs() {
	in_lan $PYTHON - $GW $CLIENT "$LAB_DIR/pairs.sent" <<'PY'
import socket, struct, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[2], 0))
for i in range(40):
    s.sendto(struct.pack("!BBHHHI", 0, 1, 0, 20000 + i, 20000 + i, 3600), (sys.argv[1], 5351))
    s.sendto(struct.pack("!BBHHHI", 0, 1, 0, 20000 + i, 0, 0), (sys.argv[1], 5351))
open(sys.argv[3], "w").close()
s.settimeout(0.2)
n, end = 0, time.monotonic() + 3
while time.monotonic() < end:
    try:
        s.recv(64)
        n += 1
    except socket.timeout:
        pass
print(n)
PY
}
# Stopped, the daemon finds each map and its delete in the same batch.
kill -STOP "$DAEMON_PID"
pairs >"$LAB_DIR/pairs.out" &
pairs_pid=$!
# All 80 wait in the socket before the daemon reads any.
within 10 test -e "$LAB_DIR/pairs.sent" || echo "       the requests were not all sent in 10 s"
kill -CONT "$DAEMON_PID"
wait $pairs_pid
check "40 maps each deleted in the same batch: all 80 requests are answered" eq "$(cat "$LAB_DIR/pairs.out")" 80
# none_left: both maps are listed, and neither holds a port 20000-20039.
none_left() {
	local l
	l=$(nft_map && gw_map) || { echo "       $l"; return 1; }
	! awk '$2 >= 20000 && $2 < 20040' <<<"$l" | grep -q . || { echo "       left: $(awk '$2 >= 20000 && $2 < 20040' <<<"$l")"; return 1; }
}
check "... and none of those ports is left at either layer" none_left

# --- a restart of the router, then several gateway lifetimes without a client renewal ---
daemon_kill TERM
check "the state file keeps the gateway's ports" grep -q '"upstream_port": 40001' "$STATE_DIR/state.json"
gw_renewals() { grep -c "renewed udp 40001 -> $UP_RTR" "$GWY_LOG"; }
before=$(gw_renewals)
# This time as the systemd unit runs it: user nobody with CAP_NET_ADMIN alone.
chmod 755 "$LAB_DIR"
chown -R 65534:65534 "$STATE_DIR"
touch "$HOOK_OUT"
chmod 666 "$HOOK_OUT"
DAEMON_WRAPPER="setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all,+net_admin
	--ambient-caps=-all,+net_admin --bounding-set=-all,+net_admin"
# The HTTP listener comes from a --config file this time, for the reload below.
echo "NATPMP_HTTP_LISTEN=$HTTP" >"$LAB_DIR/router.conf"
chmod 644 "$LAB_DIR/router.conf"
daemon_start --upstream-gateway $UP_GW --upstream-interface "$RTR_WAN_IF" --hook "$HOOK" --config "$LAB_DIR/router.conf"
unset DAEMON_WRAPPER
check "the restarted router runs as nobody with CAP_NET_ADMIN alone" \
	eq "$(awk '/^Uid:/ {print $2} /^CapEff:/ {print $2}' /proc/$DAEMON_PID/status | tr '\n' ' ')" "65534 0000000000001000 "
check "... and still hears the gateway's announcements" bash -c "! grep -q 'cannot listen for the gateway' '$LOG'"
sleep 31
renewals=$(($(gw_renewals) - before))
echo "figure: the router renewed udp 40001 at the gateway $renewals times in 31 s (gateway lifetime 10 s)"
check "the restarted router renews at the gateway by itself, before half of each 10 s grant (>= 5 in 31 s)" \
	test "$renewals" -ge 5
check "after 31 s (3 gateway lifetimes) without a client renewal, TCP still gets through" \
	forward tcp 40000 8080
check "... and UDP" forward udp 40001 5353
check "... and the HTTP forward" forward tcp 40005 9000 $CLIENT2
npc map udp 5353 40001 3600
check "the client's renewal after the restart keeps its port" eq "$(field result) $(field external)" "0 40001"

# --- delete and expiry remove both layers ---
npc map tcp 8080 0 0
check "a delete is answered" eq "$(field result)" "0"
check "... the router's forward is gone" rtr_lacks tcp 40000
check "... and so is the gateway's, within 2 s" within 2 gw_lacks tcp 40000
check "... the WAN no longer gets through" no_forward tcp 40000 8080
check "... and the hook hears of it" hook_saw "deleted tcp $CLIENT 8080 $EXT 40000 0"
npc map udp 6000 40003 4
check "a 4 s mapping is granted" eq "$(field result) $(field external) $(field lifetime)" "0 40003 4"
check "... at the gateway too" gw_forwards udp 40003
check "it expires (within 10 s)" within 10 logged "expired udp 40003"
check "when it expires, the router's forward goes" within 2 rtr_lacks udp 40003
check "... and the gateway's, within 2 s" within 2 gw_lacks udp 40003
check "... and the hook hears it expired" hook_saw "expired udp $CLIENT 6000 $EXT 40003 0"

# --- the gateway restarts and has lost its mappings ---
lan_listen 12 "$LAB_DIR/announce.cap"
listener=$LISTENER
gateway_kill KILL
rm -rf "$GWY_STATE_DIR"
mkdir -p "$GWY_STATE_DIR"
gateway_start --max-lifetime 10
check "the router sees the gateway's epoch go back (within 8 s)" \
	within 8 grep -q "the gateway lost its mappings" "$LOG"
check "... asks again for every mapping: the gateway forwards 40001 again" within 3 gw_forwards udp 40001
check "... and the HTTP one" gw_forwards tcp 40005
check "UDP from the WAN gets through again, on the same port" forward udp 40001 5353
wait $listener
announced=$(grep -c "len=12 .*address=$EXT" "$LAB_DIR/announce.cap")
check "then the router announces the address to the LAN again, a fresh round ($announced in the 12 s)" \
	test "$announced" -ge 3

# --- the gateway grants another port at a renewal ---
gateway_kill TERM
gateway_start --max-lifetime 10 --reserved-ports 40001
moved() { grep -q "^renewed udp $CLIENT 5353 $EXT " "$HOOK_OUT"; }
check "when the gateway moves the mapping, the hook runs as renewed (within 8 s)" within 8 moved
new=$(grep "^renewed udp $CLIENT 5353 $EXT " "$HOOK_OUT" | tail -1 | cut -d' ' -f6)
check "... with a new port ($new)" bash -c 'is_port() { [[ "$1" =~ ^[0-9]+$ ]]; }; is_port "$0" && [ "$0" != 40001 ]' "$new"
npc map udp 5353 40001 3600
check "the client's next renewal is told the new port" eq "$(field result) $(field external)" "0 $new"
check "... and UDP from the WAN gets through on it" forward udp "$new" 5353

# --- a forged announcement is only a reason to ask the gateway ---
forge() {
	in_gwy $PYTHON - $UP_GW "$GWY_LAN_IF" <<'PY'
import socket, struct, sys
payload = struct.pack("!BBHI4s", 0, 128, 0, 999999, socket.inet_aton("203.0.113.7"))
udp = struct.pack("!HHHH", 5351, 5350, 8 + len(payload), 0) + payload
ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 1, 17, 0,
                 socket.inet_aton(sys.argv[1]), socket.inet_aton("224.0.0.1"))
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, sys.argv[2].encode())
s.sendto(ip + udp, ("224.0.0.1", 0))
PY
}
hints=$(log_count "the gateway announced its address: asking it")
remaps=$(log_count "asking again for")
forge
check "a forged announcement from the gateway's address (203.0.113.7, epoch 999999) is heard" \
	within 5 more_than "$hints" log_count "the gateway announced its address: asking it"
answers=$(log_count "the gateway's external address is $EXT")
check "... which makes the router ask the gateway, which answers" \
	within 5 more_than "$answers" log_count "the gateway's external address is $EXT"
npc address
check "... but opcode 0 still answers the gateway's real address" eq "$(field address)" "$EXT"
check "... and nothing was asked for again, then or after the gateway's real answer" \
	eq "$(log_count "asking again for")" "$remaps"

# --- the gateway's external address changes ---
NEW_EXT=198.51.100.7
lan_listen 6 "$LAB_DIR/newaddr.cap"
listener=$LISTENER
must ip -n "$GWY" addr del $EXT/24 dev "$GWY_WAN_IF"
must ip -n "$GWY" addr add $NEW_EXT/24 dev "$GWY_WAN_IF"
check "the router hears the gateway announce a new address and asks again for every mapping (within 3 s)" \
	within 3 grep -q "the gateway changed its external address; asking again for 2 mapping" "$LOG"
npc address
check "opcode 0 answers the gateway's new address" eq "$(field address)" "$NEW_EXT"
wait $listener
check "the LAN hears the new address announced" grep -q "len=12 .*address=$NEW_EXT" "$LAB_DIR/newaddr.cap"
EXT=$NEW_EXT
check "UDP from the WAN to the new address gets through" forward udp "$new" 5353

# --- the gateway does not answer ---
gateway_kill KILL
# A /forward waiting for the silent gateway while a reload moves the HTTP listener still gets its answer.
in_rtr curl -s -m 10 -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" -X POST \
	-d "{\"internal_ip\": \"$CLIENT\", \"internal_port\": 7002, \"protocol\": \"udp\", \"duration\": 600}" \
	"http://$HTTP/forward" >"$LAB_DIR/pending.code" &
curl_pid=$!
check "a /forward waits while the gateway is silent: its mapping is listed meanwhile" within 3 listed 7002
HTTP=127.0.0.1:18090
echo "NATPMP_HTTP_LISTEN=$HTTP" >"$LAB_DIR/router.conf"
kill -HUP "$DAEMON_PID"
wait $curl_pid
check "a /forward pending at a reload that moves the listener is answered 503, not cut off" \
	eq "$(cat "$LAB_DIR/pending.code")" 503
check "... and its mapping is not left behind" within 5 unlisted 7002
# -t 300: the client's retransmissions (0.3, 0.9, 2.1, 4.5 s) never cross the answer expected at 3.75 s.
started=$(now_ms)
npc -t 300 -w 1500 map tcp 7000 40010 3600
took=$(($(now_ms) - started - 1500))
echo "figure: a request the gateway never answers is answered after $took ms"
check "a new mapping the gateway does not answer gets result 3" eq "$(field result)" "3"
check "... within 5 s, though the client sent again and again" test "$took" -lt 5000
check "... in a single answer to all its retransmissions" eq "$(grep -c '^reply' <<<"$OUT")" 1
check "... and nothing is left: no forward on the router" within 5 rtr_lacks tcp 40010
check "... nor in the mapping list" within 5 unlisted 7000 
OUT=$(http -o /dev/null -w '%{http_code}' -X POST -d "{\"internal_ip\": \"$CLIENT\", \"internal_port\": 7001, \"protocol\": \"udp\", \"duration\": 600}" "http://$HTTP/forward")
check "POST /forward with the gateway down gets 503" eq "$OUT" 503
OUT=$(http "http://$HTTP/metrics")
check "/metrics counts the gateway's silences" grep -q "^natpmp_upstream_timeouts_total [1-9]" <<<"$OUT"
# Two: the restart without its state, and the one with --reserved-ports 40001, which could not restore
# that mapping and so started its epoch again (RFC 6886 3.6).
check "... and its two resets" grep -q "^natpmp_upstream_resets_total 2\$" <<<"$OUT"

# --- a reload while a connection made before it still talks to the old listener ---
# (Every answer closes its connection, so the only way left is a connection
# opened before the reload that sends its request after it.)
# keepalive PORT FLAG: a connection to 127.0.0.1:PORT, idle; once FLAG
# exists, a POST /forward on it.  Prints that answer's status, or "closed".
keepalive() {
	in_rtr $PYTHON - "$1" "$2" "$TOKEN" "$CLIENT" <<'PY'
import http.client, json, os, sys, time
port, flag, token, client = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
c = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
c.connect()
print("connected", flush=True)
end = time.monotonic() + 15
while not os.path.exists(flag) and time.monotonic() < end:
    time.sleep(0.02)
body = json.dumps({"internal_ip": client, "internal_port": 7100, "protocol": "tcp", "duration": 600})
try:
    c.request("POST", "/forward", body, {"Authorization": "Bearer " + token, "Content-Type": "application/json"})
    print(c.getresponse().status, flush=True)
except (OSError, http.client.HTTPException):
    print("closed", flush=True)
PY
}
# reload_to LISTEN: the --config file gets LISTEN (empty: the API off), SIGHUP, and the reload is logged.
reload_to() {
	local before
	before=$(log_count "reloaded:")
	if [ -n "$1" ]; then echo "NATPMP_HTTP_LISTEN=$1" >"$LAB_DIR/router.conf"; else : >"$LAB_DIR/router.conf"; fi
	kill -HUP "$DAEMON_PID"
	within 10 more_than "$before" log_count "reloaded:"
}
old=${HTTP##*:}
rm -f "$LAB_DIR/flag"
keepalive "$old" "$LAB_DIR/flag" >"$LAB_DIR/keepalive.out" 2>&1 &
ka=$!
check "a connection open to the HTTP listener ($old)" within 10 grep -q connected "$LAB_DIR/keepalive.out"
HTTP=127.0.0.1:18091
check "a reload moves the listener to ${HTTP##*:}" reload_to $HTTP
touch "$LAB_DIR/flag"
wait $ka
check "a POST /forward on that connection to the old listener, after the reload: 503, at once" \
	eq "$(tail -n1 "$LAB_DIR/keepalive.out")" 503
rm -f "$LAB_DIR/flag"
keepalive "${HTTP##*:}" "$LAB_DIR/flag" >"$LAB_DIR/keepalive.out" 2>&1 &
ka=$!
check "a connection open to the new listener" within 10 grep -q connected "$LAB_DIR/keepalive.out"
check "a reload turns the HTTP API off" reload_to ""
touch "$LAB_DIR/flag"
wait $ka
check "a POST /forward on that connection after the reload: 503" eq "$(tail -n1 "$LAB_DIR/keepalive.out")" 503
# The old handles are freed a second after the reload; a request that had gone
# waiting for the (silent) gateway would be answered 3.75 s later, into freed memory.
sleep 5
check "5 s later the daemon is alive and answers" daemon_alive
check "... and no forward was made for those requests" kernel_not_to any 7100
check "the gateway's log has no sanitizer report" bash -c "! grep -q 'Sanitizer\|runtime error' '$GWY_LOG'"

lab_finish
