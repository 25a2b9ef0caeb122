#!/bin/bash
# test_reload.sh - SIGHUP: the --config file is read again and what changed
# takes effect (limits, port ranges, table name, external address, HTTP
# listener), the mappings and their forwards stay, the service manager hears
# RELOADING=1 then READY=1, and a bad file changes nothing.
. "$(dirname "$0")/lab.sh"
lab_require curl
lab_up

notify_listen

CONF=$LAB_DIR/natpmp.conf
cat >"$CONF" <<'EOF'
# as /etc/default/natpmp-server would be
NATPMP_MAX_LIFETIME=7200
NATPMP_ALLOWED_PORTS=40000-40999
NATPMP_HTTP_LISTEN=127.0.0.1:18081
EOF
export NOTIFY_SOCKET=$LAB_DIR/notify.sock
daemon_start --config "$CONF"
PID=$DAEMON_PID

# reload: SIGHUP, then wait (bounded) for the daemon to say it is ready again.
readies() { grep -c '^READY=1' "$LAB_DIR/notify.log"; }
reload() {
	local before
	before=$(readies)
	kill -HUP "$DAEMON_PID"
	within 10 more_than "$before" readies || { echo "       no READY=1 after SIGHUP"; return 1; }
}

npc map tcp 8080 40100 7200
check "before the reload: a 7200 s mapping on 40100" eq "$(field result) $(field external) $(field lifetime)" "0 40100 7200"
check "the HTTP API answers on 127.0.0.1:18081" in_rtr curl -sf -m 5 -o /dev/null http://127.0.0.1:18081/health

cat >"$CONF" <<'EOF'
NATPMP_MAX_LIFETIME=600
NATPMP_ALLOWED_PORTS=41000-41009
NATPMP_NAT_TABLE=natpmp_lan
NATPMP_EXTERNAL_ADDRESS=203.0.113.9
NATPMP_HTTP_LISTEN=/tmp/natpmp-http-$LAB_ID.sock
EOF
sed -i "s/\$LAB_ID/$LAB_ID/" "$CONF"
check "SIGHUP: the daemon says READY=1 again" reload
check "... after RELOADING=1 with MONOTONIC_USEC" \
	bash -c "grep -n '' '$LAB_DIR/notify.log' | grep -A1 'RELOADING=1 MONOTONIC_USEC=[0-9]' | grep -q 'READY=1'"
check "... it is the same process" kill -0 "$PID"
NAT_TABLE=natpmp_lan
check "the mapping is in the new table ip natpmp_lan" kernel_has tcp 40100 $CLIENT 8080
check "... and the old table ip natpmp is gone" table_gone natpmp
check "... and still works: inbound, outbound, hairpin" all_paths tcp 40100 8080
npc map udp 5353 40200 7200
check "a new request gets the new --max-lifetime (600)" eq "$(field result) $(field lifetime)" "0 600"
ext=$(field external)
check "... and a port from the new --allowed-ports ($ext)" test "$ext" -ge 41000 -a "$ext" -le 41009
npc map tcp 8080 40100 7200
moved=$(field external)
check "the mapping granted before, now outside --allowed-ports, is renewed on a port inside ($moved)" \
	bash -c "[ '$(field result) $(field lifetime)' = '0 600' ] && [ $moved -ge 41000 ] && [ $moved -le 41009 ]"
check "... its old forward is gone" kernel_lacks tcp 40100
check "... and the new one works" all_paths tcp "$moved" 8080
npc address
check "opcode 0 reports the new --external-address" eq "$(field address)" "203.0.113.9"
check "the HTTP API moved to the unix socket" \
	in_rtr curl -sf -m 5 -o /dev/null --unix-socket /tmp/natpmp-http-$LAB_ID.sock http://x/health
in_rtr curl -s -m 5 -o /dev/null http://127.0.0.1:18081/health
check "... and left 127.0.0.1:18081 (curl: connection refused)" eq "$?" 7

cp "$CONF" "$LAB_DIR/good.conf"
echo "NATPMP_LISTEN_PORT=abc" >>"$CONF"
kill -HUP "$DAEMON_PID"
check "a bad file: the reload is refused" within 10 logged "reload refused"
check "... naming the value" logged "listen-port 'abc'"
check "... the daemon keeps running" kill -0 "$PID"
npc map udp 6000 0 7200
check "... with the configuration it had (lifetime 600, port in 41000-41009)" \
	bash -c "[ '$(field result) $(field lifetime)' = '0 600' ] && [ $(field external) -ge 41000 ] && [ $(field external) -le 41009 ]"
check "... and its table" kernel_has tcp "$moved" $CLIENT 8080

echo "NATPMP_FLAVOUR=1" >"$CONF"
kill -HUP "$DAEMON_PID"
check "a misspelt setting is named with its line" within 10 logged "line 1: NATPMP_FLAVOUR: no such setting"
printf 'NATPMP_TOKEN ReloadSecret0123456789abcdef\n' >"$CONF"
kill -HUP "$DAEMON_PID"
check "a token line without '=' is refused at a reload, named by its first word" \
	within 10 logged "line 1: 'NATPMP_TOKEN': not a NAME=value line"
check "... and the token is not in the log" eval '! grep -q ReloadSecret "$LOG"'
rm -f "$CONF"
kill -HUP "$DAEMON_PID"
check "a missing file is refused too" within 10 logged "config '$CONF': cannot read it"
check "... and the daemon runs on" daemon_alive

cp "$LAB_DIR/good.conf" "$CONF"
echo "NATPMP_NAT_CHAIN=lan_prerouting" >>"$CONF"
check "SIGHUP with the file back and a new chain name is accepted" reload
check "... the chain is renamed" in_rtr nft list chain ip natpmp_lan lan_prerouting
check "... and still forwards" forward tcp "$moved" 8080
check "... and the daemon did not take its own reloads for someone else's change" eq "$(log_count "was changed by")" 0
must in_rtr nft delete element ip natpmp_lan mappings "{ 6 . $moved }"
check "... while it does notice someone else's" within 10 logged "was changed by nft"
check "four reloads: mappings all kept (3 in the map)" within 5 mappings_are 3

daemon_kill TERM
check "the daemon exits 0 on SIGTERM" eq "$DAEMON_STATUS" "0"
check "... and removes its current table" table_gone natpmp_lan
check "... and the unix socket" test ! -e /tmp/natpmp-http-$LAB_ID.sock
unset NOTIFY_SOCKET
lab_finish
