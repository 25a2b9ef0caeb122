#!/bin/bash
# test_http.sh - the HTTP API over real sockets with curl: /health, /mappings,
# /metrics (checked by promtool), POST and DELETE /forward with the token,
# traffic through a forward made over HTTP, and every kind of bad request.
. "$(dirname "$0")/lab.sh"
lab_require curl
# scripts/deps.sh unpacks promtool there when it is not installed.
PROMTOOL=$(command -v promtool || echo /var/cache/natpmp-server-tests/promtool)
[ -x "$PROMTOOL" ] || lab_fail "needs promtool (from Debian's prometheus package), not at $PROMTOOL: sh scripts/deps.sh unpacks it"
lab_up
TOKEN=lab-token-0123456789abcdef
printf '%s\n' "$TOKEN" >"$LAB_DIR/token"
chmod 600 "$LAB_DIR/token"
API=http://127.0.0.1:18080
daemon_start --http-listen 127.0.0.1:18080 --http-token-file "$LAB_DIR/token" --allowed-ports 20000-20999 \
	--max-mappings-per-ip 3

# http METHOD PATH [BODY] [curl options...]: status code in CODE, body in BODY.
http() {
	method=$1 path=$2 data=${3:-}
	shift 3 2>/dev/null || shift $#
	if [ -n "$data" ]; then
		set -- --data-binary "$data" -H 'Content-Type: application/json' "$@"
	fi
	BODY=$(in_rtr curl -sS -m 5 -o - -w '\n%{http_code}' -X "$method" "$@" "$API$path" 2>&1)
	CODE=$(printf '%s' "$BODY" | tail -n1)
	BODY=$(printf '%s' "$BODY" | sed '$d')
}
auth=(-H "Authorization: Bearer $TOKEN")
has() { grep -qF -- "$1" <<<"$BODY" || { echo "       body: $BODY"; return 1; }; }
# refused CODE FIELD: the last answer was CODE with a JSON error naming FIELD.
refused() { eq "$CODE" "$1" && has "\"field\":\"$2\""; }
# json_get EXPR: a value from BODY, e.g. json_get '["external_port"]'.
json_get() { $PYTHON -c "import json,sys; print(json.loads(sys.stdin.read())$1)" <<<"$BODY"; }

http GET /health ""
check "GET /health: 200 once serving" eq "$CODE" 200
check "... with status, mappings, external address and epoch" has '"status":"serving","mappings":0,"external_address":"198.51.100.1"'

# --- /forward: the token ---
req='{"internal_ip":"192.168.77.3","internal_port":8080,"protocol":"tcp","duration":600}'
http POST /forward "$req"
check "POST /forward without a token: 401" eq "$CODE" 401
check "... naming the Authorization header" has '"field":"Authorization"'
http POST /forward "$req" -H "Authorization: Bearer ${TOKEN}x"
check "POST /forward with a wrong token (one character longer): 401" eq "$CODE" 401
http POST /forward "$req" -H "Authorization: Bearer ${TOKEN%?}"
check "POST /forward with a wrong token (one character shorter): 401" eq "$CODE" 401
http POST /forward "$req" -H "Authorization: Basic $TOKEN"
check "POST /forward with another scheme: 401" eq "$CODE" 401
http GET /mappings ""
check "GET /mappings without the token, once one is set: 401" eq "$CODE" 401

# --- /forward: a mapping for a host that does not speak NAT-PMP ---
http POST /forward "$req" "${auth[@]}"
check "POST /forward with the token: 200" eq "$CODE" 200
EPORT=$(json_get '["external_port"]')
check "... an external port inside --allowed-ports" test "$EPORT" -ge 20000 -a "$EPORT" -le 20999
check "... the external address and the lifetime" has '"external_ip":"198.51.100.1"'
check "... lifetime 600" eq "$(json_get '["lifetime"]')" 600
check "the kernel's map has the forward to 192.168.77.3:8080" kernel_has tcp "$EPORT" 192.168.77.3 8080
check "TCP from the WAN to $EXT:$EPORT reaches 192.168.77.3:8080" forward tcp "$EPORT" 8080 $CLIENT2
http POST /forward '{"internal_ip":"192.168.77.3","internal_port":8080,"protocol":"tcp","duration":900}' "${auth[@]}"
check "POST again renews: same port, new lifetime" eq "$CODE $(json_get '["external_port"]') $(json_get '["lifetime"]')" "200 $EPORT 900"
http POST /forward '{"internal_ip":"192.168.77.3","internal_port":9090,"protocol":"udp","external_port":30000}' "${auth[@]}"
p=$(json_get '["external_port"]')
check "an external_port wish outside --allowed-ports gets an allowed port (same rules as NAT-PMP)" \
	test "$CODE" = 200 -a "$p" -ge 20000 -a "$p" -le 20999
check "... and duration defaults to --default-lifetime (3600)" eq "$(json_get '["lifetime"]')" 3600
http POST /forward '{"internal_ip":"192.168.77.3","internal_port":9091,"protocol":"udp"}' "${auth[@]}"
http POST /forward '{"internal_ip":"192.168.77.3","internal_port":9092,"protocol":"udp"}' "${auth[@]}"
check "a fourth mapping over --max-mappings-per-ip 3: 409" eq "$CODE" 409
http POST /forward '{"internal_ip":"10.9.9.9","internal_port":80,"protocol":"tcp"}' "${auth[@]}"
check "a host outside the LAN subnets: 403 naming internal_ip" refused 403 internal_ip
http POST /forward '{"internal_ip":"192.168.77.1","internal_port":22,"protocol":"tcp"}' "${auth[@]}"
check "the router's own LAN address: 403 (never forward the router's services)" eq "$CODE" 403
http POST /forward '{"internal_ip":"192.168.77.255","internal_port":80,"protocol":"tcp"}' "${auth[@]}"
check "the LAN's broadcast address: 403" refused 403 internal_ip
http POST /forward '{"internal_ip":"192.168.77.0","internal_port":80,"protocol":"tcp"}' "${auth[@]}"
check "the LAN's network address: 403" refused 403 internal_ip

# RFC 6886 3.4: the administrator's mapping is not the client's to delete or shorten.
npc -b $CLIENT2 map tcp 0 0 0
check "a NAT-PMP delete-all from that host answers 2 (Not Authorized): it could not delete everything" \
	eq "$(field result)" 2
check "... and leaves the mappings the HTTP API made for it" kernel_has tcp "$EPORT" 192.168.77.3 8080
npc -b $CLIENT2 map tcp 8080 0 0
check "a NAT-PMP delete of that very mapping answers 2 (Not Authorized)" eq "$(field result)" 2
check "... and the mapping stays" kernel_has tcp "$EPORT" 192.168.77.3 8080
npc -b $CLIENT2 map tcp 8080 0 30
check "a NAT-PMP renewal asking 30 s does not shorten it: the port, and what is left of its 600 s" \
	bash -c "[ '$(field result) $(field external)' = '0 $EPORT' ] && [ '$(field lifetime)' -gt 500 ]"
check "... in the kernel too" test "$(kernel_timeout tcp "$EPORT")" -gt 500
# --- /mappings ---
npc map udp 5353 20500 600
http GET /mappings "" "${auth[@]}"
check "GET /mappings: 200" eq "$CODE" 200
check "... lists the HTTP mapping with its origin" \
	has "{\"client\":\"192.168.77.3\",\"protocol\":\"tcp\",\"internal_port\":8080,\"external_port\":$EPORT,\"external_address\":\"198.51.100.1\",\"lifetime\":"
check "... and the NAT-PMP one as origin natpmp" \
	has '"internal_port":5353,"external_port":20500,"external_address":"198.51.100.1","lifetime":'
check "... with its remaining lifetime (600 s granted)" \
	bash -c "grep -Eq '\"external_port\":20500,[^}]*\"lifetime\":(599|600),\"origin\":\"natpmp\"' <<<\"\$0\"" "$BODY"
check "... four in all" eq "$(json_get '.__len__()')" 4
http GET "/mappings?client=192.168.77.2" "" "${auth[@]}"
check "?client= filters to that client's mappings" eq "$CODE $(json_get '.__len__()') $(json_get '[0]["origin"]')" "200 1 natpmp"
http GET "/mappings?client=192.168.77.300" "" "${auth[@]}"
check "?client=not-an-address: 400 naming client" refused 400 client
http GET "/mappings?color=red" "" "${auth[@]}"
check "an unknown parameter: 400 naming it" refused 400 color

# --- bad bodies: 400 naming the field ---
bad() {
	desc=$1 body=$2 field=$3
	http POST /forward "$body" "${auth[@]}"
	check "$desc: 400 naming $field" refused 400 "$field"
}
bad "broken JSON" '{"internal_ip": "192.168.77.3",' body
bad "not an object" '[1,2,3]' body
bad "text after the object" '{"internal_ip":"192.168.77.3","internal_port":1,"protocol":"tcp"} x' body
bad "an unknown field" '{"internal_ip":"192.168.77.3","internal_port":1,"protocol":"tcp","colour":1}' colour
bad "internal_port as a string" '{"internal_ip":"192.168.77.3","internal_port":"80","protocol":"tcp"}' internal_port
bad "internal_port 70000" '{"internal_ip":"192.168.77.3","internal_port":70000,"protocol":"tcp"}' internal_port
bad "internal_port 0 on POST" '{"internal_ip":"192.168.77.3","internal_port":0,"protocol":"tcp"}' internal_port
bad "internal_port 1.5" '{"internal_ip":"192.168.77.3","internal_port":1.5,"protocol":"tcp"}' internal_port
bad "protocol sctp" '{"internal_ip":"192.168.77.3","internal_port":80,"protocol":"sctp"}' protocol
bad "protocol as a number" '{"internal_ip":"192.168.77.3","internal_port":80,"protocol":6}' protocol
bad "internal_ip as a number" '{"internal_ip":3232253187,"internal_port":80,"protocol":"tcp"}' internal_ip
bad "internal_ip not an address" '{"internal_ip":"192.168.77","internal_port":80,"protocol":"tcp"}' internal_ip
bad "duration 0" '{"internal_ip":"192.168.77.3","internal_port":80,"protocol":"tcp","duration":0}' duration
bad "duration negative" '{"internal_ip":"192.168.77.3","internal_port":80,"protocol":"tcp","duration":-5}' duration
bad "duration beyond 32 bits" '{"internal_ip":"192.168.77.3","internal_port":80,"protocol":"tcp","duration":99999999999999999999}' duration
bad "protocol missing" '{"internal_ip":"192.168.77.3","internal_port":80}' protocol
bad "internal_ip missing" '{"internal_port":80,"protocol":"tcp"}' internal_ip
big=$($PYTHON -c 'print("{\"internal_ip\":\"" + "9" * 5000 + "\"}")')
bad "a 5 KB body" "$big" body
http POST /forward "" "${auth[@]}"
check "an empty body: 400 naming body" refused 400 body
$PYTHON -c 'print("{" + " " * 200000 + "}")' >"$LAB_DIR/huge.json"
CODE=$(in_rtr curl -sS -m 5 -o /dev/null -w '%{http_code}' -X POST "${auth[@]}" --data-binary @"$LAB_DIR/huge.json" "$API/forward" 2>/dev/null)
check "a 200 KB body is refused by the server: 413" eq "$CODE" 413
CODE=$(in_rtr curl -sS -m 5 -o /dev/null -w '%{http_code}' -H "X-Big: $(head -c 20000 /dev/zero | tr '\0' a)" "$API/health" 2>/dev/null)
check "20 KB of headers are refused: 400" eq "$CODE" 400

# --- methods and paths ---
http GET /forward ""
check "GET /forward: 405" eq "$CODE" 405
http POST /health "{}"
check "POST /health: 405" eq "$CODE" 405
http GET /nothing ""
check "an unknown path: 404" eq "$CODE" 404

# --- DELETE ---
http DELETE /forward '{"internal_ip":"192.168.77.3","internal_port":8080,"protocol":"tcp"}'
check "DELETE /forward without a token: 401" eq "$CODE" 401
bad_del() { http DELETE /forward "$1" "${auth[@]}"; }
bad_del '{"internal_ip":"192.168.77.3","internal_port":8080,"protocol":"tcp","duration":5}'
check "DELETE with a duration: 400 naming it" refused 400 duration
http DELETE /forward '{"internal_ip":"192.168.77.3","internal_port":8080,"protocol":"tcp"}' "${auth[@]}"
check "DELETE /forward with the token: 200" eq "$CODE" 200
check "... the forward is gone from the kernel" kernel_not_to 192.168.77.3 8080
check "... and TCP from the WAN to $EXT:$EPORT no longer reaches the host" no_forward tcp "$EPORT" 8080 $CLIENT2
http GET /mappings "" "${auth[@]}"
check "... and /mappings no longer lists it, while it lists the other three" \
	eq "$CODE $(json_get '.__len__()') $(grep -c '"internal_port":8080' <<<"$BODY")" "200 3 0"

# --- /metrics ---
npc address
in_rtr curl -sS -m 5 "${auth[@]}" "$API/metrics" >"$LAB_DIR/metrics.txt"
check "promtool check metrics accepts /metrics" bash -c "'$PROMTOOL' check metrics <'$LAB_DIR/metrics.txt'"
check "... which counts NAT-PMP requests by opcode and result" \
	bash -c "grep -Eq '^natpmp_requests_total\{opcode=\"1\",result=\"0\"\} [1-9]' '$LAB_DIR/metrics.txt' && grep -Eq '^natpmp_requests_total\{opcode=\"0\",result=\"0\"\} [1-9]' '$LAB_DIR/metrics.txt'"
check "... mappings by protocol (udp 3, tcp 0)" \
	bash -c "grep -qx 'natpmp_mappings{protocol=\"udp\"} 3' '$LAB_DIR/metrics.txt' && grep -qx 'natpmp_mappings{protocol=\"tcp\"} 0' '$LAB_DIR/metrics.txt'"
check "... HTTP forwards, nftables transactions and journal writes" \
	bash -c "grep -Eq '^natpmp_http_forwards_total [4-9]' '$LAB_DIR/metrics.txt' && grep -Eq '^natpmp_nft_transactions_total [1-9]' '$LAB_DIR/metrics.txt' && grep -Eq '^natpmp_state_journal_writes_total [1-9]' '$LAB_DIR/metrics.txt'"
check "... and announcements" grep -Eq '^natpmp_announcements_total [1-9]' "$LAB_DIR/metrics.txt"

# --- /health follows the external address ---
must in_rtr ip addr del $EXT/24 dev "$RTR_WAN_IF"
health_is() { http GET /health ""; eq "$CODE" "$1"; }
check "/health: 503 while the external interface has no address" within 5 health_is 503
check "... saying why" has '"status":"no external address"'
must in_rtr ip addr add $EXT/24 dev "$RTR_WAN_IF"
check "/health: 200 again once it has one" within 5 health_is 200

# --- a client that never finishes its request is cut off ---
started=$(date +%s)
in_rtr $PYTHON - <<'PY' >"$LAB_DIR/slow.out" 2>&1
import socket
s = socket.create_connection(("127.0.0.1", 18080))
s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
s.settimeout(20)
try:
    print("closed" if s.recv(100) == b"" else "answered")
except socket.timeout:
    print("still open")
PY
elapsed=$(( $(date +%s) - started ))
check "a request left half-sent is closed by the server (after ${elapsed} s; timeout 10 s)" \
	bash -c "grep -qx closed '$LAB_DIR/slow.out' || grep -qx answered '$LAB_DIR/slow.out'"
check "... within 12 s" test "$elapsed" -le 12

# trickle AUTH HEADERS_AT_ONCE: a POST /forward announcing a 60,000-byte body;
# the headers are sent whole (1) or a byte every 2 s (0), then 30,000 bytes of
# body at once and one more every 2 s, for at most 30 s.  Prints the status
# line's code (or "none") and the seconds to it, then how many seconds the
# connection stayed open ("open" if it still was at the end).
trickle() {
	in_rtr $PYTHON - "$1" "$2" <<'PY'
import socket, sys, time
auth, whole = sys.argv[1], sys.argv[2] == "1"
head = ("POST /forward HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n%s"
        "Content-Length: 60000\r\n\r\n" % ("Authorization: Bearer %s\r\n" % auth if auth else "")).encode()
s = socket.create_connection(("127.0.0.1", 18080))
start = time.monotonic()
status, got, closed = "none", "", None
def poll():
    global status, got, closed
    s.settimeout(0.01)
    try:
        data = s.recv(4096)
        if not data:
            closed = time.monotonic() - start
        elif status == "none":
            status, got = data.split(b" ")[1].decode(), "%.1f" % (time.monotonic() - start)
    except socket.timeout:
        pass
    except OSError:
        closed = time.monotonic() - start
try:
    if whole:
        s.sendall(head)
    else:
        for b in head:
            s.sendall(bytes([b]))
            poll()
            if closed is not None or time.monotonic() - start > 30:
                break
            time.sleep(2 if b == 10 else 0)
    if closed is None:
        s.sendall(b"{" + b" " * 29999)
        while closed is None and time.monotonic() - start < 30:
            poll()
            if closed is None:
                s.sendall(b" ")
                time.sleep(2)
except OSError:
    closed = time.monotonic() - start if closed is None else closed
poll()
print(status, got or "-", "open" if closed is None else "%.0f" % closed)
PY
}
read -r code at closed < <(trickle "" 1)
check "an unauthenticated POST announcing a 60,000-byte body is refused on its headers: 401 at once ($at s), the body unread" \
	bash -c "[ '$code' = 401 ] && [ '${at%.*}' -lt 1 ]"
check "... and its connection closed (after $closed s)" test "$closed" != open
read -r code at closed < <(trickle "$TOKEN" 1)
echo "figure: an authenticated body trickling in a byte every 2 s: connection closed after $closed s"
check "an authenticated body trickling in a byte every 2 s is cut off by the request's deadline (closed after $closed s; 10 s)" \
	bash -c "[ '$closed' != open ] && [ '$closed' -le 12 ]"
read -r code at closed < <(trickle "$TOKEN" 0)
check "headers trickling in a line every 2 s: cut off too (closed after $closed s)" \
	bash -c "[ '$closed' != open ] && [ '$closed' -le 12 ]"
check "the daemon still answers NAT-PMP after all that" bash -c "ip netns exec $LAN '$NPC_BIN' -g $GW address >/dev/null"
check "... and HTTP" health_is 200

lab_finish
