#!/bin/bash
# test_state.sh - a state file that cannot be used is kept aside, named in the
# log, and the daemon starts empty with the epoch at 0; one with stale or
# refused entries loses only those.
. "$(dirname "$0")/lab.sh"
lab_up

# kept_aside TEXT: exactly one state.json.corrupt.* file, holding TEXT byte for byte.
kept_aside() {
	local f=("$STATE_DIR"/state.json.corrupt.*)
	[ ${#f[@]} = 1 ] && [ -f "${f[0]}" ] || { echo "       corrupt files: ${f[*]}"; return 1; }
	printf '%s' "$1" | cmp -s - "${f[0]}" || { echo "       ${f[0]} differs from what was written"; return 1; }
}

start_with() {
	printf '%s' "$1" >"$STATE_DIR/state.json"
	: >"$LOG"
	daemon_start
}

for bad in '{"version": 1, "epoch_start": 12' 'not json at all' '{"version": 9, "epoch_start": 1, "mappings": []}' \
	'{"version": 1, "epoch_start": 1, "mappings": [{"client": "192.168.77.2", "protocol": "tcp"}]}' ''; do
	rm -f "$STATE_DIR"/*.corrupt.*
	start_with "$bad"
	what=$(printf '%.24s' "$bad")
	check "corrupt state ($what...): the daemon serves" eq "$(kill -0 $DAEMON_PID && echo up)" "up"
	check "corrupt state ($what...): the log names the file and the problem" \
		grep -q "state file $STATE_DIR/state.json is unusable (.\+); moved it to $STATE_DIR/state.json.corrupt" "$LOG"
	check "corrupt state ($what...): the file is kept aside, byte for byte" kept_aside "$bad"
	npc address
	check "corrupt state ($what...): the epoch starts at 0" test "$(field epoch)" -le 2
	npc map tcp 8080 40000 60
	check "corrupt state ($what...): new mappings work and are saved (in the journal)" \
		bash -c "[ '$(field result)' = 0 ] && grep -q '\"external_port\": 40000' $STATE_DIR/state.journal"
	daemon_kill TERM
done

now=$(date +%s)
start_with "{\"version\": 1, \"epoch_start\": $((now - 1000)), \"mappings\": [
 {\"client\": \"192.168.77.2\", \"protocol\": \"tcp\", \"internal_port\": 8080, \"external_port\": 40000, \"lifetime\": 3600, \"expires\": $((now + 3000))},
 {\"client\": \"192.168.77.2\", \"protocol\": \"udp\", \"internal_port\": 8080, \"external_port\": 40000, \"lifetime\": 3600, \"expires\": $((now - 5))},
 {\"client\": \"192.168.77.3\", \"protocol\": \"tcp\", \"internal_port\": 22, \"external_port\": 40000, \"lifetime\": 3600, \"expires\": $((now + 3000))},
 {\"client\": \"192.168.77.3\", \"protocol\": \"tcp\", \"internal_port\": 80, \"external_port\": 80, \"lifetime\": 3600, \"expires\": $((now + 3000))},
 {\"client\": \"192.168.77.2\", \"protocol\": \"udp\", \"internal_port\": 9000, \"external_port\": 40005, \"lifetime\": 600, \"expires\": $((now + 315360000))}]}"
check "a valid state file is restored: the unexpired, allowed, conflict-free mapping forwards" forward tcp 40000 8080
check "... the expired one, the conflicting one and the disallowed port are not installed" \
	eq "$(nft_count)" "2"
check "... and an expiry years ahead (a clock that was wrong) is cut to the granted lifetime (600 s + 30)" \
	eq "$(kernel_timeout udp 40005)" 630
check "... the log says what was refused and why" \
	bash -c "grep -q 'conflicts with another mapping' $LOG && grep -q 'port no longer allowed' $LOG"
npc address
# RFC 6886 3.6: mappings clients may still count on were lost (two refused; one
# expired by a wall clock, which may have been stepped): they must map again.
check "... and since mappings were lost, the epoch starts again at 0 ($(field epoch))" test "$(field epoch)" -le 2
check "... saying so" logged "3 saved mapping(s) could not be restored for certain: the epoch starts again at 0"

# Restored lifetimes obey today's --max-lifetime; with nothing lost, the epoch continues.
daemon_kill TERM
printf '{"version": 1, "epoch_start": %d, "mappings": [{"client": "%s", "protocol": "tcp", "internal_port": 8080, "external_port": 40000, "lifetime": 3600, "expires": %d}]}' \
	$((now - 1000)) $CLIENT $((now + 3000)) >"$STATE_DIR/state.json"
daemon_start --max-lifetime 600
check "a restored mapping gets at most today's --max-lifetime (600 s + 30)" eq "$(kernel_timeout tcp 40000)" 630
npc address
check "with every saved mapping restored, the epoch continues from the file's epoch_start ($(field epoch))" \
	test "$(field epoch)" -ge 1000
daemon_kill TERM

# The journal continues the snapshot of its generation; damage in it costs only what follows the damage.
now=$(date +%s)
m() { printf '{"op": "%s", "client": "%s", "protocol": "tcp", "internal_port": %d, "external_port": %d, "lifetime": 3600, "expires": %d}\n' "$@"; }
printf '{"version": 1, "epoch_start": %d, "generation": 3, "mappings": []}' $((now - 10)) >"$STATE_DIR/state.json"
{
	echo '{"journal": 1, "generation": 3}'
	m put $CLIENT 8080 40000 $((now + 3000))
	m put $CLIENT 8081 40001 $((now + 3000))
	m del $CLIENT 8081 40001 $((now + 3000))
	echo '{"op": "put", "client": "192.168.77.2", "prot'
	m put $CLIENT 8082 40002 $((now + 3000))
} >"$STATE_DIR/state.journal"
daemon_start
only_40000() { kernel_has tcp 40000 $CLIENT 8080 && eq "$(nft_count)" 1; }
check "a damaged journal: the changes before the damage are restored (40000 in, 40001 put and deleted)" \
	only_40000
check "... the log names the journal, the line and what it kept" \
	grep -q "journal $STATE_DIR/state.journal is damaged (journal line 5: .*); moved it to .*kept the 3 change" "$LOG"
check "... and the damaged journal is kept aside" bash -c "ls $STATE_DIR | grep -q 'state.journal.corrupt'"
daemon_kill TERM

# A journal of another generation (a crash between snapshot and new journal) is not replayed.
printf '{"version": 1, "epoch_start": %d, "generation": 9, "mappings": []}' $((now - 10)) >"$STATE_DIR/state.json"
{ echo '{"journal": 1, "generation": 8}'; m put $CLIENT 9090 40090 $((now + 3000)); } >"$STATE_DIR/state.journal"
daemon_start
check "a journal of an older generation than the snapshot is not replayed" kernel_lacks tcp 40090
daemon_kill TERM

# Writes that fail (disk full, quota): the request is answered result 3 and
# nothing of it remains, not in memory, not in the kernel.  A file size
# limit makes the journal's writes fail with EFBIG; prlimit lifts it.  The
# daemon's log goes through a pipe to a cat started before the limit, so that
# the log file, which the limit would cut short too, keeps the daemon's words.
rm -f "$STATE_DIR"/*
printf '#!/bin/bash\ntrap "" XFSZ\nexec > >(exec cat) 2>&1\nulimit -S -f 8\nexec "$@"\n' >"$LAB_DIR/limited.sh"
chmod +x "$LAB_DIR/limited.sh"
DAEMON_WRAPPER=$LAB_DIR/limited.sh
daemon_start
DAEMON_WRAPPER=""
failed_port=""
for i in $(seq 1 300); do
	npc map tcp $((9000 + i)) $((41000 + i)) 3600
	if [ "$(field result)" != 0 ]; then
		failed_port=$((41000 + i))
		break
	fi
done
check "when the journal cannot be written, the request is answered result 3" \
	bash -c "[ -n '$failed_port' ] && [ '$(field result) $(field external)' = '3 0' ]"
check "... and its forward is not in the kernel" eval 'is_port "$failed_port" && kernel_lacks tcp "$failed_port"' 
check "... and the log says why" grep -q "cannot write $STATE_DIR/state.journal: File too large" "$LOG"
prlimit --pid "$DAEMON_PID" --fsize=unlimited
npc -b $CLIENT2 map tcp 22 "${failed_port:-1}" 3600
check "once writes work again, the refused port is free for anyone (nothing half-done held it)" \
	eq "$(field result) $(field external)" "0 ${failed_port:-none}"
daemon_kill TERM

# A state file that exists but cannot be read is not a corrupt one: the daemon
# refuses to start rather than start empty and overwrite it later.
rm -f "$STATE_DIR"/*.corrupt.*
mv "$STATE_DIR/state.json" "$LAB_DIR/kept.json"
mkdir "$STATE_DIR/state.json"
: >"$LOG"
(daemon_exec)
check "an unreadable state file (a directory here) stops the start with exit 1" eq "$?" "1"
check "... naming the file and what to do" grep -q "cannot read state file $STATE_DIR/state.json: .*fix that" "$LOG"
check "... and it is neither moved aside nor replaced" \
	bash -c "[ -d $STATE_DIR/state.json ] && ! ls $STATE_DIR | grep -q corrupt"

lab_finish
