#!/bin/bash
# test_durability.sh - an answer acknowledging a mapping leaves only after the
# change is on disk: the journal's write and its fdatasync (or the snapshot's
# fsync, rename and directory fsync) come before the answer's send, for
# NAT-PMP one at a time and pipelined, and for the HTTP API.  SIGKILL keeps
# the page cache, so a crash test cannot see a missing sync: the order of the
# daemon's system calls, traced with strace, shows it (durability.py).
. "$(dirname "$0")/lab.sh"
lab_require strace curl
lab_up
TOKEN=lab-token-0123456789abcdef
TRACED=$($PYTHON -c 'import sys; sys.path.insert(0, sys.argv[1]); import durability; print(durability.TRACED)' "$LAB_SRC")
DAEMON_WRAPPER="strace -qq -yy -s 16 -e trace=$TRACED -o $LAB_DIR/strace.log"
# LeakSanitizer cannot work under ptrace; every other test keeps it on.
NATPMP_TOKEN=$TOKEN ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
	daemon_start --http-listen 127.0.0.1:18083 --max-mappings-per-ip 1000
unset DAEMON_WRAPPER

# One at a time: a new mapping, its renewal, another protocol, deletes.
npc map tcp 8080 40000 3600
check "a new mapping is granted" eq "$(field result) $(field external)" "0 40000"
npc map tcp 8080 40000 7200
check "... renewed" eq "$(field result) $(field lifetime)" "0 7200"
npc map udp 8080 0 3600
check "... the same port for UDP" eq "$(field result) $(field external)" "0 40000"
npc map tcp 8080 0 0
check "... deleted" eq "$(field result) $(field external)" "0 0"
npc unmap udp 0
check "... and the client's UDP mappings deleted all at once" eq "$(field result)" "0"

# Pipelined: 200 requests in one go, waiting in the socket when the daemon
# reads (strace slows it), decided in turns of up to 256 and answered in
# sendmmsg batches of 64.
pipelined() {
	in_lan $PYTHON - $GW $CLIENT2 <<'PY'
import socket, struct, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[2], 0))
for i in range(200):
    s.sendto(struct.pack("!BBHHHI", 0, 2, 0, 10000 + i, 30000 + i, 3600), (sys.argv[1], 5351))
s.settimeout(2)
ok = 0
try:
    while ok < 200:
        data = s.recv(64)
        if len(data) == 16 and struct.unpack("!BBHIHHI", data)[2] == 0:
            ok += 1
except socket.timeout:
    pass
print(ok)
PY
}
check "200 pipelined requests are all granted" eq "$(pipelined)" 200

# The HTTP API.
api() { in_rtr curl -s -m 10 -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "$@"; }
check "POST /forward is granted" eq "$(api -X POST -d '{"internal_ip":"192.168.77.3","internal_port":9000,"protocol":"tcp"}' \
	http://127.0.0.1:18083/forward)" 200
check "DELETE /forward too" eq "$(api -X DELETE -d '{"internal_ip":"192.168.77.3","internal_port":9000,"protocol":"tcp"}' \
	http://127.0.0.1:18083/forward)" 200

daemon_stop_traced
check "the daemon ran to a clean exit under strace" eq "$DAEMON_STATUS" 0
OUT=$($PYTHON "$LAB_SRC/durability.py" "$LAB_DIR/strace.log" "$STATE_DIR" 18083 2>&1)
rc=$?
echo "$OUT" | tail -n 20
checked=$(sed -n 's/^\([0-9]*\) answers checked.*/\1/p' <<<"$OUT")
check "every answer acknowledging a change left after the change was written and synced (durability.py exits 0)" \
	eq "$rc" 0
# 5 one at a time, 200 pipelined (in one or more sends), 2 over HTTP.
check "... and the trace held those answers: at least 8 sends checked (${checked:-none})" test "${checked:-0}" -ge 8
lab_finish
