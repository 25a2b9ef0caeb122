#!/bin/bash
# test_hook.sh - --hook runs on added, deleted and expired mappings with the
# seven arguments, without a shell and without holding up the daemon; one
# that fails or hangs is logged (and killed), never fatal.
. "$(dirname "$0")/lab.sh"
lab_up
OUTF=$LAB_DIR/hook.out
HOOK_OUT=$OUTF
HOOK=$LAB_DIR/hook
# Its behaviour follows files, so the test can make it fail or hang.
cat >"$HOOK" <<EOF
#!/bin/sh
if [ -e "$LAB_DIR/hang" ] && [ "\$1" = added ] && [ "\$4" = 7777 ]; then
	echo \$\$ >"$LAB_DIR/hang.pid"
	exec sleep 60
fi
echo "\$# \$*" >>"$OUTF"
[ -n "\${NATPMP_TOKEN:-}" ] && echo "token leaked" >>"$OUTF"
[ -e "$LAB_DIR/fail" ] && exit 3
exit 0
EOF
chmod +x "$HOOK"

: >"$LAB_DIR/hook.conf"
NATPMP_TOKEN=lab-token-0123456789abcdef daemon_start --hook "$HOOK" --hook-timeout 2 --config "$LAB_DIR/hook.conf"

npc map tcp 8080 40000 3600
check "a new mapping runs the hook: added tcp client iport external eport lifetime" \
	hook_saw "7 added tcp $CLIENT 8080 $EXT 40000 3600"
npc map tcp 8080 40000 3600
npc map tcp 8080 0 0
check "a delete runs it with lifetime 0" hook_saw "7 deleted tcp $CLIENT 8080 $EXT 40000 0"
check "a renewal on the same port does not" eq "$(grep -c ' added \| renewed ' "$OUTF")" 1
npc map udp 5353 40001 2
check "an expiry runs it as expired" hook_saw "7 expired udp $CLIENT 5353 $EXT 40001 0"
check "the hook never sees the HTTP token" bash -c "! grep -q 'token leaked' '$OUTF'"

npc map tcp 8500 40500 3600
echo "NATPMP_RESERVED_PORTS=40500" >"$LAB_DIR/hook.conf"
kill -HUP "$DAEMON_PID"
within 10 logged "reloaded" || lab_fail "the daemon did not reload"
npc map tcp 8500 40500 3600
new=$(field external)
check "a renewal moved off a port a reload reserved runs the hook as renewed, with the new port ($new)" \
	hook_saw "7 renewed tcp $CLIENT 8500 $EXT $new 3600"
check "... and the port did move" bash -c "[ '$new' != 40500 ] && [ '$new' -ge 1 ]"
touch "$LAB_DIR/fail"
npc map tcp 9000 40002 3600
check "a hook that exits 3 still ran" hook_saw "7 added tcp $CLIENT 9000 $EXT 40002 3600"
check "... is logged with its status" within 10 logged "hook $HOOK (added) exited with status 3"
rm -f "$LAB_DIR/fail"

touch "$LAB_DIR/hang"
npc map tcp 7777 40003 3600
# At once: well before the hook's 2 s timeout, which a daemon that waited for it would take.
check "while a hook hangs, requests are answered at once (${OUT##*rtt_us=} us, under 1 s)" \
	bash -c "[ '$(field result)' = 0 ] && [ '${OUT##*rtt_us=}' -lt 1000000 ]"
npc map tcp 7778 40004 3600
check "... and the next mapping is granted too" eq "$(field result)" 0
check "a hook still running after --hook-timeout is killed and logged" \
	within 10 logged "hook $HOOK (added) still running after 2 s: killing it"
check "... and the queued event runs after it" hook_saw "7 added tcp $CLIENT 7778 $EXT 40004 3600"
hang_gone() { [ -s "$LAB_DIR/hang.pid" ] && ! kill -0 "$(cat "$LAB_DIR/hang.pid")" 2>/dev/null; }
check "... and is gone" within 5 hang_gone
rm -f "$LAB_DIR/hang"

rm -f "$HOOK"
npc map tcp 9100 40005 3600
check "a hook that has gone missing: the mapping is still granted" eq "$(field result)" 0
check "... and the failure is logged" within 10 logged "cannot run hook $HOOK (added): No such file or directory"
lab_finish
