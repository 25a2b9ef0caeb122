#!/bin/bash
# test_api.sh - what a new user of the HTTP API ran into: a token
# file in the --config form, IPv6 and "localhost" listen addresses, a delete
# of nothing, a body naming a field twice, and the router's own address.
. "$(dirname "$0")/lab.sh"
lab_require curl
lab_up
TOKEN=lab-token-0123456789abcdef
# The form the README's options table suggests for the environment and --config.
printf 'NATPMP_TOKEN=%s\n' "$TOKEN" >"$LAB_DIR/token"
chmod 600 "$LAB_DIR/token"
API='http://[::1]:18083'
daemon_start --http-listen '[::1]:18083' --http-token-file "$LAB_DIR/token" --allowed-ports 20000-20999

# http METHOD PATH [BODY] [curl options...]: status code in CODE, body in BODY.
http() {
	method=$1 path=$2 data=${3:-}
	shift 3 2>/dev/null || shift $#
	if [ -n "$data" ]; then
		set -- --data-binary "$data" -H 'Content-Type: application/json' "$@"
	fi
	BODY=$(in_rtr curl -g -sS -m 5 -o - -w '\n%{http_code}' -X "$method" "$@" "$API$path" 2>&1)
	CODE=$(printf '%s' "$BODY" | tail -n1)
	BODY=$(printf '%s' "$BODY" | sed '$d')
}
auth=(-H "Authorization: Bearer $TOKEN")
has() { grep -qF -- "$1" <<<"$BODY" || { echo "       body: $BODY"; return 1; }; }

http GET /health ""
check "--http-listen [::1]:18083: /health answers over IPv6 loopback" eq "$CODE" 200
check "the log names the IPv6 listener" logged "HTTP API on [::1]:18083 (token set)"
req='{"internal_ip":"192.168.77.3","internal_port":8080,"protocol":"tcp","duration":600}'
http POST /forward "$req" "${auth[@]}"
check "a token file holding NATPMP_TOKEN=<token> gives the token: POST /forward with it is 200" eq "$CODE" 200
http POST /forward "$req" -H "Authorization: Bearer NATPMP_TOKEN=$TOKEN"
check "... and the whole line is not the token (401 with it)" eq "$CODE" 401

# A delete says what happened.
http DELETE /forward '{"internal_ip":"192.168.77.3","internal_port":9999,"protocol":"tcp"}' "${auth[@]}"
check "DELETE /forward of a mapping that does not exist: 404" eq "$CODE" 404
check "... saying there is no such mapping" has '"error":"no tcp mapping of 192.168.77.3:9999 to delete"'
http DELETE /forward '{"internal_ip":"192.168.77.3","internal_port":8080,"protocol":"udp"}' "${auth[@]}"
check "... nor of the other protocol's (404)" eq "$CODE" 404
http DELETE /forward '{"internal_ip":"192.168.77.3","internal_port":8080,"protocol":"tcp"}' "${auth[@]}"
check "DELETE /forward of one that exists: 200, deleted" bash -c "[ '$CODE' = 200 ] && grep -qF '\"deleted\":true' <<<'$BODY'"
check "... and it is gone from the kernel" kernel_lacks tcp 8080

# A field given twice is refused, whichever value would have won.
http POST /forward '{"internal_ip":"192.168.77.3","internal_port":8080,"internal_port":9090,"protocol":"tcp"}' "${auth[@]}"
check "a body naming a field twice: 400" eq "$CODE" 400
check "... naming the field" has '"error":"given twice: give each field once","field":"internal_port"'
http DELETE /forward '{"protocol":"tcp","internal_ip":"192.168.77.3","internal_port":8080,"protocol":"udp"}' "${auth[@]}"
check "... in a DELETE too" bash -c "[ '$CODE' = 400 ] && grep -qF '\"field\":\"protocol\"' <<<'$BODY'"
http POST /forward '{"internal_ip":"192.168.77.3","internal_port":8081,"protocol":"tcp","duration":600,"durati\u006fn":5}' "${auth[@]}"
check "... also when one spelling uses an escape (400, not the last value silently)" \
	bash -c "[ '$CODE' = 400 ] && grep -qF 'once spelt with an escape' <<<'$BODY'"
http POST /forward '{"internal_ip":"192.168.77.3","internal_port":8081,"protocol":"tcp","note":{"a":1,"a":2}}' "${auth[@]}"
check "a repeated name inside a nested value is not taken for a repeated field (400 for the unknown field)" \
	bash -c "[ '$CODE' = 400 ] && grep -qF '\"field\":\"note\"' <<<'$BODY'"

# The router itself is no LAN host.
for addr in 192.168.77.1 192.168.77.254; do
	http POST /forward "{\"internal_ip\":\"$addr\",\"internal_port\":22,\"protocol\":\"tcp\"}" "${auth[@]}"
	check "POST /forward for the router's own LAN address $addr: 403" eq "$CODE" 403
	check "... saying it is the router itself" has "$addr is the router itself (an address of a listen interface), not a LAN host"
done
check "... and nothing forwards to the router" kernel_lacks tcp 22

# localhost:PORT is 127.0.0.1:PORT.
daemon_kill TERM
daemon_start --http-listen localhost:18084
API=http://127.0.0.1:18084
http GET /health ""
check "--http-listen localhost:18084 serves on 127.0.0.1:18084" eq "$CODE" 200
check "... and the log names it so" logged "HTTP API on 127.0.0.1:18084 (no token: read-only)"
lab_finish
