#!/bin/bash
# test_rules.sh - per-client rules (miniupnpd's allow/deny): which LAN
# addresses may map which external ports to which internal ports, first
# match wins, default deny once any is given, for NAT-PMP and the HTTP API.
. "$(dirname "$0")/lab.sh"
lab_require curl
lab_up
TOKEN=rules-token-0123456789abcdef
printf '%s\n' "$TOKEN" >"$LAB_DIR/token"
chmod 600 "$LAB_DIR/token"
CONF=$LAB_DIR/natpmp.conf
printf 'NATPMP_RULE=allow 40000-40099 %s/32 1024-65535\nNATPMP_RULE=deny 0-65535 0.0.0.0/0 0-65535\n' "$CLIENT" >"$CONF"
daemon_start --config "$CONF" --http-listen 127.0.0.1:18087 --http-token-file "$LAB_DIR/token"

npc map tcp 8080 50000 600
ext=$(field external)
check "an allowed client gets a port inside its rule's range, whatever it suggested ($ext)" \
	bash -c "[ '$(field result)' = 0 ] && [ $ext -ge 40000 ] && [ $ext -le 40099 ]"
check "... and the forward works" forward tcp "$ext" 8080
npc map tcp 80 0 600
check "the same client's internal port outside its rule: result 2 (Not Authorized)" eq "$(field result)" 2
sleep 1.1 # refusals are logged at most once a second: this one gets its own line
npc -b $CLIENT2 map tcp 8080 0 600
check "another LAN host, which no allow rule names: result 2" eq "$(field result)" 2
only_client() { l=$(nft_map) && ! grep -q "$CLIENT2" <<<"$l" && grep -q "$CLIENT" <<<"$l"; }
check "... and nothing is forwarded for it" only_client
check "... and the log says why" within 5 logged "refused to map tcp 8080 for $CLIENT2: no --rule allows it (result 2)"

http() {
	CODE=$(in_rtr curl -sS -m 5 -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" \
		-d "$1" http://127.0.0.1:18087/forward)
}
http "{\"internal_ip\":\"$CLIENT2\",\"internal_port\":8080,\"protocol\":\"tcp\"}"
check "the HTTP API follows the same rules: 403 for that host" eq "$CODE" 403
http "{\"internal_ip\":\"$CLIENT\",\"internal_port\":9090,\"protocol\":\"udp\"}"
check "... and 200 for the allowed one" eq "$CODE" 200

# A reload that narrows the rules: the mapping moves at its renewal.
printf 'NATPMP_RULE=allow 41000-41009 %s 1024-65535\n' "$CLIENT" >"$CONF"
kill -HUP "$DAEMON_PID"
within 10 logged "reload: --rule 'allow 41000-41009" >/dev/null
npc map tcp 8080 0 600
new=$(field external)
check "after a reload to other rules, the renewal moves into the new range ($new)" \
	bash -c "[ '$(field result)' = 0 ] && [ $new -ge 41000 ] && [ $new -le 41009 ]"
check "... and the old port no longer forwards" kernel_lacks tcp "$ext"
lab_finish
