#!/bin/bash
# test_crash.sh - nothing acknowledged is lost: a burst of mapping requests
# from two clients, SIGKILL in the middle of it, a restart; every mapping
# whose answer a client received is back, with its port, and forwards.
. "$(dirname "$0")/lab.sh"
lab_up
daemon_start --rate-limit 0 --max-mappings-per-ip 1000

in_lan $PYTHON "$(dirname "$0")/burst.py" $GW 300 "$DAEMON_PID" 600 $CLIENT $CLIENT2 >"$LAB_DIR/acked" 2>&1
daemon_kill KILL
# Only answer lines: the shell's own "Killed" notice may land in the same file.
grep -E '^[0-9.]+ tcp [0-9]+ [0-9]+$' "$LAB_DIR/acked" | sort -u >"$LAB_DIR/acked.list"
acked=$(wc -l <"$LAB_DIR/acked.list")
echo "figure: $(sed -n 's/^sent //p' "$LAB_DIR/acked") requests sent, $acked acknowledged before SIGKILL"
check "the burst was cut short by SIGKILL (some, not all, acknowledged)" \
	bash -c "[ $acked -ge 300 ] && [ $acked -lt 1200 ]"

daemon_start --rate-limit 0 --max-mappings-per-ip 1000
# "tcp EPORT ADDR IPORT TIMEOUT" -> "ADDR tcp IPORT EPORT", as burst.py prints them.
nft_map | awk '$1 == "tcp" { print $3, "tcp", $4, $2 }' | sort -u >"$LAB_DIR/kernel.list"
check "the kernel's map is read back after the restart ($(wc -l <"$LAB_DIR/kernel.list") TCP mappings)" \
	test -s "$LAB_DIR/kernel.list"
missing=$(comm -23 "$LAB_DIR/acked.list" "$LAB_DIR/kernel.list" | wc -l)
check "after SIGKILL and restart every acknowledged mapping is in the kernel with its port ($acked checked)" \
	eq "$missing" "0"
[ "$missing" = 0 ] || { echo "missing:"; comm -23 "$LAB_DIR/acked.list" "$LAB_DIR/kernel.list" | head -5; grep -E "restored|refused|not restoring" "$LOG"; }
read -r addr _ iport eport < <(shuf -n 1 "$LAB_DIR/acked.list")
check "... and one of them, picked at random ($addr:$iport via $eport), works: inbound, outbound, hairpin" \
	all_paths tcp "$eport" "$iport" "$addr"

lab_finish
