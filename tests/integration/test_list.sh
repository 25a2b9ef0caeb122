#!/bin/bash
# test_list.sh - natpmp-server --list-mappings: the mappings without the HTTP
# API, from the running daemon's state directory and from a stopped one's,
# as a table and as JSON, expired ones left out.
. "$(dirname "$0")/lab.sh"
lab_up
list() { OUT=$("$NPS_BIN" --list-mappings --state-dir "$STATE_DIR" "$@" 2>&1); RC=$?; }
row() { grep -Eq "^$1 +$2 +$3 +$4 +[0-9]+ +$5 *\$" <<<"$OUT" || { echo "       listing: $OUT"; return 1; }; }

list
check "--list-mappings before any daemon ran: exit 0, no mappings" \
	bash -c "[ $RC = 0 ] && grep -q '^# 0 mapping(s)' <<<'$OUT'"

printf 'list-token-0123456789abcdef\n' >"$LAB_DIR/token"
chmod 600 "$LAB_DIR/token"
daemon_start --http-listen 127.0.0.1:18085 --http-token-file "$LAB_DIR/token"
npc map tcp 8080 40000 3600
npc map udp 5353 40001 600
must in_rtr curl -sS -m 5 -o /dev/null -H 'Authorization: Bearer list-token-0123456789abcdef' \
	-d '{"internal_ip":"192.168.77.3","internal_port":22,"protocol":"tcp","duration":900}' http://127.0.0.1:18085/forward
npc map tcp 9000 40002 2
list
check "while the daemon runs: exit 0, and the listing says it runs, with its pid" \
	bash -c "[ $RC = 0 ] && grep -q '^# natpmp-server (pid $DAEMON_PID) is running on $STATE_DIR' <<<'$OUT'"
check "... a row per mapping: client, protocol, internal and external port, lifetime, origin" \
	row 192.168.77.2 tcp 8080 40000 natpmp
check "... the UDP one" row 192.168.77.2 udp 5353 40001 natpmp
check "... and the one the HTTP API made, as origin http" row 192.168.77.3 tcp 22 '[0-9]+' http
lt=$(awk '$3 == 5353 { print $5 }' <<<"$OUT")
check "... with what is left of its lifetime ($lt of 600 s)" test "$lt" -ge 590 -a "$lt" -le 600
list --json
json() { $PYTHON -c "import json,sys; l=json.loads(sys.stdin.read()); $1" <<<"$OUT"; }
check "--json: a JSON list, the same mappings" \
	eq "$(json 'print(sorted((m["client"], m["protocol"], m["internal_port"], m["external_port"]) for m in l if m["origin"] == "natpmp" and m["internal_port"] != 9000))')" \
	"[('192.168.77.2', 'tcp', 8080, 40000), ('192.168.77.2', 'udp', 5353, 40001)]"
check "... with lifetime and origin" eq "$(json 'print([(m["origin"], 3590 <= m["lifetime"] <= 3600) for m in l if m["internal_port"] == 8080])')" \
	"[('natpmp', True)]"

sleep 3
list
check "a mapping that has expired is not listed" bash -c "! grep -q ' 9000 ' <<<'$OUT'"
check "... while the others are" row 192.168.77.2 tcp 8080 40000 natpmp

daemon_kill KILL
list
check "after the daemon is gone (SIGKILL): the listing says none runs" \
	bash -c "[ $RC = 0 ] && grep -q '^# no natpmp-server runs on $STATE_DIR: the mappings a start would restore' <<<'$OUT'"
check "... and lists what a start would restore" row 192.168.77.2 tcp 8080 40000 natpmp
check "... the UDP one too" row 192.168.77.2 udp 5353 40001 natpmp

printf '{"broken' >"$STATE_DIR/state.json"
list
check "a damaged state file: exit 1, naming the file" \
	bash -c "[ $RC = 1 ] && grep -q 'cannot read $STATE_DIR/state.json' <<<'$OUT'"
lab_finish
