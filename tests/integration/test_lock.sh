#!/bin/bash
# test_lock.sh - one daemon per state directory and per nftables table: a
# second start is refused before it touches the first's table or files, and
# names the running daemon; a reload cannot move onto another daemon's
# table; a daemon killed with -9 never blocks the next.
. "$(dirname "$0")/lab.sh"
lab_up
CONF=$LAB_DIR/natpmp.conf
printf 'NATPMP_MAX_LIFETIME=7200\n' >"$CONF"
daemon_start --config "$CONF"
A=$DAEMON_PID
npc map tcp 8080 40000 3600
check "the first daemon maps a port" eq "$(field result) $(field external)" "0 40000"
inode() { stat -c %i "$1"; }
journal=$(inode "$STATE_DIR/state.journal")
snapshot=$(inode "$STATE_DIR/state.json")

# second [options...]: another daemon on the lab's interfaces, in the router
# namespace, for at most 10 s; its output in SECOND_OUT, its exit status in SECOND_RC.
second() {
	SECOND_OUT=$(timeout 10 ip netns exec "$RTR" "$NPS_BIN" --listen-interface "$RTR_LAN_IF" \
		--external-interface "$RTR_WAN_IF" --rate-limit 0 "$@" 2>&1)
	SECOND_RC=$?
}
said() { grep -qF -- "$1" <<<"$SECOND_OUT" || { echo "       it said: $SECOND_OUT"; return 1; }; }
first_untouched() {
	kernel_has tcp 40000 "$CLIENT" 8080 && eq "$(inode "$STATE_DIR/state.journal")" "$journal" &&
		eq "$(inode "$STATE_DIR/state.json")" "$snapshot" && daemon_alive
}

# The report's case: the same configuration, only the HTTP socket changed.
second --config "$CONF" --state-dir "$STATE_DIR" --http-listen "$LAB_DIR/second.sock"
check "a second daemon with the same configuration is refused (exit 1)" eq "$SECOND_RC" "1"
check "... naming the running daemon's pid and what to do" \
	said "another natpmp-server (pid $A) already uses state directory $STATE_DIR: stop it first"
check "... and the first daemon's table, journal and snapshot are as they were, and it answers" first_untouched
check "... with no repair: nobody else changed its table" eq "$(log_count 'not by this daemon')" "0"
check "... and no HTTP socket was left behind" test ! -e "$LAB_DIR/second.sock"

# Each refused start asks the table's lock who holds it: the answer never runs out.
named=0
for i in $(seq 12); do
	second --state-dir "$LAB_DIR/other-state-$i"
	grep -qF "(pid $A) already owns nftables table ip $NAT_TABLE" <<<"$SECOND_OUT" && named=$((named + 1))
done
check "twelve refused starts in a row all name the running daemon's pid ($named)" eq "$named" 12

# The same table from another state directory.
second --state-dir "$LAB_DIR/other-state"
check "a second daemon on the same table with its own state directory is refused (exit 1)" eq "$SECOND_RC" "1"
check "... naming the running daemon's pid" \
	said "another natpmp-server (pid $A) already owns nftables table ip $NAT_TABLE: stop it first"
check "... before writing a state file of its own" test ! -e "$LAB_DIR/other-state/state.json"
check "... and the first daemon is untouched" first_untouched

# The same state directory with another table.
second --state-dir "$STATE_DIR" --nat-table other
check "a second daemon on the same state directory with another table is refused (exit 1)" eq "$SECOND_RC" "1"
check "... and never creates that table" table_gone other
check "... and the first daemon is untouched" first_untouched

# A daemon with a state directory and a table of its own runs beside the first...
ip netns exec "$RTR" "$NPS_BIN" --listen-interface "$RTR_LAN_IF" --external-interface "$RTR_WAN_IF" \
	--listen-port 5400 --state-dir "$LAB_DIR/b-state" --nat-table theirs >"$LAB_DIR/b.log" 2>&1 &
B=$!
within 10 table_there theirs >/dev/null
check "a daemon with its own state directory and table runs beside the first" table_there theirs
# ... and the first may not move onto its table at a reload.
printf 'NATPMP_MAX_LIFETIME=7200\nNATPMP_NAT_TABLE=theirs\n' >"$CONF"
kill -HUP "$A"
check "a reload onto another daemon's table is refused" within 10 logged "reload refused"
check "... naming that daemon" logged "another natpmp-server (pid $B) already owns nftables table ip theirs"
check "... and the first daemon keeps its own table and forwards" first_untouched
check "... and the other daemon's table is still there" table_there theirs
stop_pid "$B" TERM
check "the other daemon exits 0" eq "$STOPPED_STATUS" "0"
printf 'NATPMP_MAX_LIFETIME=7200\n' >"$CONF"

# Stale locks: a daemon killed with -9 holds nothing.
daemon_kill KILL
check "SIGKILL: the daemon is gone, its forwards stay" forward tcp 40000 8080
daemon_start --config "$CONF"
check "a daemon killed with -9 does not block the next start" daemon_alive
check "... which restores the mapping" kernel_has tcp 40000 "$CLIENT" 8080
npc map tcp 8080 0 3600
check "... and renews it with its port" eq "$(field result) $(field external)" "0 40000"
lab_finish
