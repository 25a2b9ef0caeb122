#!/bin/bash
# test_time.sh - NTP steps the wall clock while mappings are on disk, then the
# daemon crashes: within the same boot the restart measures the time it was
# stopped on CLOCK_BOOTTIME, so no mapping is dropped as "expired while
# stopped" and the epoch does not jump; with a file from another boot only
# the wall clock is left, and a mapping it may have expired wrongly resets
# the epoch, so that clients map again (RFC 6886 3.6).  The stepped clock
# comes from faults.c (LD_PRELOAD), which moves CLOCK_REALTIME only.
. "$(dirname "$0")/lab.sh"
[ -f "${FAULTS_LIB:-}" ] || lab_fail "the fault shim (FAULTS_LIB=${FAULTS_LIB:-}) was not built"
lab_up
FAULTS=$LAB_DIR/faults
: >"$FAULTS"
DAEMON_WRAPPER="env LD_PRELOAD=$FAULTS_LIB NATPMP_FAULTS=$FAULTS ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
# step SECONDS: from now on the daemon's wall clock runs SECONDS ahead.
step() { printf 'wall %d\n' "$1" >"$FAULTS.new" && mv "$FAULTS.new" "$FAULTS"; }

daemon_start
npc map tcp 8080 40000 3600
check "a one-hour TCP mapping" eq "$(field result) $(field external)" "0 40000"
npc map udp 5353 40001 600
check "a ten-minute UDP mapping" eq "$(field result) $(field external)" "0 40001"
npc address
e1=$(field epoch)
t1=$(now_ms)

step 7200
check "NTP steps the clock two hours forward: the daemon serves on" daemon_alive
daemon_kill KILL
: >"$LOG"
daemon_start
check "after a crash and a restart in the same boot, both mappings are back, none expired" \
	bash -c 'grep -q "restored 2 mapping(s) .*(0 expired while stopped, 0 refused)" "$0"' "$LOG"
check "... timed on the boot clock" logged "times from the boot clock (same boot)"
check "... in the kernel" eval 'kernel_has tcp 40000 $CLIENT 8080 && kernel_has udp 40001 $CLIENT 5353'
check "... forwarding" forward tcp 40000 8080
npc address
e2=$(field epoch)
passed=$((($(now_ms) - t1) / 1000))
check "the epoch went on by the time that really passed ($e1 then $e2, $passed s later), not by two hours" \
	test "$e2" -ge "$e1" -a "$e2" -le $((e1 + passed + 2))
npc map tcp 8080 0 3600
check "a renewal keeps its port" eq "$(field result) $(field external)" "0 40000"

# A file from another boot: only the wall clock is left.  Written on the
# right clock, read two hours ahead.
daemon_kill KILL
step 0
daemon_start
daemon_kill KILL
step 7200
must sed -i 's/"boot_id": "[0-9a-f-]*"/"boot_id": "00000000-0000-0000-0000-000000000000"/' "$STATE_DIR/state.json"
check "(the state file now claims another boot)" grep -q '"boot_id": "00000000-0000-0000-0000-000000000000"' "$STATE_DIR/state.json"
: >"$LOG"
daemon_start
check "after a reboot the wall clock decides: both mappings look two hours old, expired" \
	bash -c 'grep -q "restored 0 mapping(s) .*(2 expired while stopped, 0 refused).*wall clock" "$0"' "$LOG"
check "... and since the clock may have been wrong, the epoch starts again, so that clients map again" \
	logged "2 saved mapping(s) could not be restored for certain: the epoch starts again at 0"
npc address
check "... (epoch $(field epoch))" test "$(field epoch)" -le 2
lab_finish
