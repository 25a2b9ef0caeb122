#!/bin/bash
# test_privileges.sh - the daemon needs CAP_NET_ADMIN and nothing else: run as
# user nobody with that one capability (as the systemd unit runs it), it
# serves, forwards, saves its state and removes its table at SIGTERM.
. "$(dirname "$0")/lab.sh"
lab_up
chmod 755 "$LAB_DIR"
chown 65534:65534 "$STATE_DIR"
DAEMON_WRAPPER="setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all,+net_admin
	--ambient-caps=-all,+net_admin --bounding-set=-all,+net_admin"
# A hook that writes down its capabilities and what of the daemon's environment it got.
HOOK_OUT=$LAB_DIR/hook.out
: >"$HOOK_OUT"
chmod 666 "$HOOK_OUT"
cat >"$LAB_DIR/hook" <<HOOK
#!/bin/sh
grep -E '^(Cap(Prm|Eff|Amb)|NoNewPrivs):' /proc/self/status | tr '\t\n' '  ' >>"$HOOK_OUT"
echo "token=\${NATPMP_TOKEN:-none} creds=\${CREDENTIALS_DIRECTORY:-none} notify=\${NOTIFY_SOCKET:-none}" >>"$HOOK_OUT"
HOOK
chmod 755 "$LAB_DIR/hook"
NATPMP_TOKEN=lab-token-0123456789abcdef CREDENTIALS_DIRECTORY=/run/credentials/natpmp-server.service \
	NOTIFY_SOCKET=$LAB_DIR/no-such.sock daemon_start --hook "$LAB_DIR/hook"

check "the daemon runs as uid 65534" eq "$(awk '/^Uid:/ {print $2}' /proc/$DAEMON_PID/status)" "65534"
check "... with CAP_NET_ADMIN as its only effective capability" \
	eq "$(awk '/^CapEff:/ {print $2}' /proc/$DAEMON_PID/status)" "0000000000001000"
npc map tcp 8080 40000 3600
check "it grants a mapping" eq "$(field result) $(field external)" "0 40000"
check "... forwards TCP from the WAN" forward tcp 40000 8080
check "... and has written its state file as nobody" eq "$(stat -c %u "$STATE_DIR/state.json" 2>&1)" 65534
check "... readable by nobody else: the state file and the journal are 0600 (they list every host's mappings)" \
	eq "$(stat -c %a "$STATE_DIR/state.json" "$STATE_DIR/state.journal" 2>&1 | tr '\n' ' ')" "600 600 "
check "the hook ran for that mapping" within 10 grep -q "token=" "$HOOK_OUT"
check "... without any capability (the daemon's ambient CAP_NET_ADMIN is not passed on), nor a way to gain one" \
	grep -q "CapPrm: 0000000000000000 CapEff: 0000000000000000 CapAmb: 0000000000000000 NoNewPrivs: 1" "$HOOK_OUT"
check "... and without the token, the credentials directory or the notify socket" \
	grep -q "token=none creds=none notify=none" "$HOOK_OUT"
daemon_kill TERM
check "at SIGTERM it exits 0" eq "$DAEMON_STATUS" "0"
check "... having removed its table" table_gone natpmp

saved=$(cat "$STATE_DIR/state.json")
DAEMON_WRAPPER="setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all --bounding-set=-all"
: >"$LOG"
(daemon_exec)
check "without CAP_NET_ADMIN it refuses to start (exit 1)" eq "$?" "1"
check "... saying what it needs" grep -q "needs CAP_NET_ADMIN" "$LOG"
check "... and leaves the state file as it was (no empty table written over it)" \
	eq "$(cat "$STATE_DIR/state.json")" "$saved"

lab_finish
