#!/bin/bash
# test_systemd.sh - the systemd unit: systemd-analyze verify passes, its
# exposure level is 2.0 or lower, the daemon speaks Type=notify (READY=1 once
# it answers, RELOADING=1 and READY=1 around a SIGHUP, STOPPING=1 at SIGTERM),
# and every system call a real run makes (HTTP API, hook and reload included)
# is allowed by the unit's SystemCallFilter=, so the sandbox never kills it.
. "$(dirname "$0")/lab.sh"
UNIT_SRC=$LAB_SRC/../../systemd/natpmp-server.service
lab_require systemd-analyze strace curl

# The unit as installed, but pointing at the binary under test.
sed "s|/usr/sbin/natpmp-server|$NPS_BIN|" "$UNIT_SRC" >"$LAB_DIR/natpmp-server.service"
OUT=$(systemd-analyze verify --man=no "$LAB_DIR/natpmp-server.service" 2>&1)
check "systemd-analyze verify accepts the unit" eq "$?$OUT" "0"
level=$(systemd-analyze security --offline=yes "$LAB_DIR/natpmp-server.service" 2>&1 |
	sed -n 's/.*Overall exposure level for .*: \([0-9.]*\).*/\1/p')
echo "figure: systemd-analyze security exposure level ${level:-?}"
check "its exposure level is 2.0 or lower" awk -v l="${level:-99}" 'BEGIN { exit !(l <= 2.0) }'
check "it is Type=notify with CAP_NET_ADMIN as the only capability" \
	bash -c "grep -qx 'Type=notify' '$UNIT_SRC' && grep -qx 'CapabilityBoundingSet=CAP_NET_ADMIN' '$UNIT_SRC'"
check "it reloads with SIGHUP, reads its --config file, and restarts on failure" \
	bash -c "grep -qx 'ExecReload=/bin/kill -HUP \$MAINPID' '$UNIT_SRC' && grep -q '^ExecStart=.* --config /etc/default/natpmp-server' '$UNIT_SRC' && grep -qx 'Restart=on-failure' '$UNIT_SRC'"
check "it starts after network-online.target and nftables.service" grep -qx 'After=network-online.target nftables.service' "$UNIT_SRC"

lab_up
# A service manager's notification socket, recording what arrives.
notify_listen

export NOTIFY_SOCKET=$LAB_DIR/notify.sock
DAEMON_WRAPPER="strace -f -qq -o $LAB_DIR/strace.log"
# LeakSanitizer cannot work under ptrace; every other test keeps it on.
printf '#!/bin/sh\necho "$*" >>%s/hook.out\n' "$LAB_DIR" >"$LAB_DIR/hook"
chmod +x "$LAB_DIR/hook"
NATPMP_TOKEN=lab-token-0123456789abcdef ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
	daemon_start --http-listen 127.0.0.1:18082 --hook "$LAB_DIR/hook"
check "READY=1 reaches the service manager once the daemon answers" grep -q "^READY=1 STATUS=serving" "$LAB_DIR/notify.log"
# A run that does what the daemon does: mappings, renewal, deletes, expiry, a repair, signals.
npc map tcp 8080 40000 3600
npc map tcp 8080 40000 3600
npc map udp 5353 0 2
npc address
must in_rtr nft delete table ip natpmp
check "the run repairs the table" within 10 logged "restored table ip natpmp"
check "... and expires a mapping" within 10 logged "expired udp"
npc map tcp 8080 0 0
npc raw 0100
for path in health mappings metrics; do in_rtr curl -s -m 5 -o /dev/null http://127.0.0.1:18082/$path; done
in_rtr curl -s -m 5 -o /dev/null -H 'Authorization: Bearer lab-token-0123456789abcdef' \
	--data '{"internal_ip":"192.168.77.3","internal_port":80,"protocol":"tcp"}' http://127.0.0.1:18082/forward
kill -HUP "$(traced_pid)"
readies() { grep -c '^READY=1' "$LAB_DIR/notify.log"; }
check "READY=1 again after a SIGHUP" within 10 more_than 1 readies
check "... with RELOADING=1 just before it" bash -c "grep -A1 '^RELOADING=1' '$LAB_DIR/notify.log' | grep -q '^READY=1'"
check "the hook ran" within 10 grep -q "^added tcp 192.168.77.3 80 " "$LAB_DIR/hook.out"
# $DAEMON_PID is strace: the signal goes to the daemon it traces, and strace
# then exits with the daemon's own status.
daemon_stop_traced
unset NOTIFY_SOCKET
check "STOPPING=1 reaches it at SIGTERM" grep -q "^STOPPING=1" "$LAB_DIR/notify.log"
check "the daemon ran to a clean exit under strace" eq "$DAEMON_STATUS" "0"
OUT=$($PYTHON "$LAB_SRC/syscalls.py" "$UNIT_SRC" "$LAB_DIR/strace.log" 2>&1)
rc=$?
echo "$OUT"
check "every system call of that run is allowed by the unit's SystemCallFilter= (syscalls.py exits 0)" eq "$rc" 0
used=$(sed -n 's/^\([0-9]*\) system calls used.*/\1/p' <<<"$OUT")
check "... and the trace is a real run's: at least 40 different system calls (${used:-none})" \
	test "${used:-0}" -ge 40
traced() { for c in "$@"; do grep -qE "(^|[^a-z_0-9])$c\(" "$LAB_DIR/strace.log" || { echo "       no $c( in the trace"; return 1; }; done; }
check "... among them receiving and answering requests, and syncing the journal" traced recvmmsg sendmmsg fdatasync

lab_finish
