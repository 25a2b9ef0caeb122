#!/bin/bash
# test_abuse.sh - what one LAN host cannot do: flood the daemon past
# --rate-limit, or be handed a port the router itself listens on or one in
# --reserved-ports.
. "$(dirname "$0")/lab.sh"
lab_up

# A router that runs its own services: ssh-like TCP on all addresses, a
# WireGuard-like UDP port on the external address, a web UI on the LAN address only.
in_rtr $PYTHON "$TRAFFIC" serve tcp 0.0.0.0 8022 120 >"$LAB_DIR/s1.out" 2>&1 &
in_rtr $PYTHON "$TRAFFIC" serve udp $EXT 51820 120 >"$LAB_DIR/s2.out" 2>&1 &
in_rtr $PYTHON "$TRAFFIC" serve tcp $GW 8023 120 >"$LAB_DIR/s3.out" 2>&1 &
for f in s1 s2 s3; do await_listening "$LAB_DIR/$f.out" || lab_fail "the router's own service did not start"; done
daemon_start --rate-limit 5 --reserved-ports 6000-6010

# burst COUNT: sends COUNT opcode-0 requests at once from one socket; prints
# how many were answered and how many seconds the sending took.
burst() {
	in_lan $PYTHON - "$1" <<'PY'
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("192.168.77.2", 0))
start = time.monotonic()
for _ in range(int(sys.argv[1])):
    s.sendto(b"\0\0", ("192.168.77.1", 5351))
took = time.monotonic() - start
s.settimeout(1)
n = 0
try:
    while True:
        s.recvfrom(64)
        n += 1
except socket.timeout:
    pass
print(n, "%.3f" % took)
PY
}

# A full bucket holds twice the rate (10); it refills at 5 a second, so 2 s
# after the readiness probes it is full again.
sleep 2.1
read -r answered took < <(burst 40)
# What refilled while the burst was being sent counts too: the bound follows the sender's speed.
most=$(awk -v t="$took" 'BEGIN { printf "%d", 11 + 5 * t }')
echo "figure: 40 requests at once from one client with --rate-limit 5: $answered answered (sent in $took s)"
check "--rate-limit 5: a burst of 40 requests gets the bucket's 10 answers (and what refilled meanwhile: at most $most)" \
	bash -c "[ '$answered' -ge 10 ] && [ '$answered' -le $most ]"
npc -b $CLIENT2 -r 1 -t 1000 address
check "... while another client is answered at once" eq "$(field result)" "0"
check "... and the drops are logged" logged "dropped a request from $CLIENT over --rate-limit 5/s"
# 1.2 s refill six tokens.
sleep 1.2
npc -r 1 -t 1000 address
check "... and the flooding client is served again once its rate is back down" eq "$(field result)" "0"

npc map tcp 8022 8022 3600
check "a port the router listens on (TCP, all addresses) is never handed out" \
	bash -c "[ '$(field result)' = 0 ] && [ '$(field external)' != 8022 ]"
npc map udp 51820 51820 3600
check "a UDP port the router has bound on the external address is never handed out" \
	bash -c "[ '$(field result)' = 0 ] && [ '$(field external)' != 51820 ]"
npc map tcp 8023 8023 3600
check "a port the router listens on only on its LAN address can be mapped" eq "$(field external)" "8023"
npc map tcp 6005 6005 3600
check "--reserved-ports 6000-6010: never handed out" \
	bash -c "[ '$(field result)' = 0 ] && { [ '$(field external)' -lt 6000 ] || [ '$(field external)' -gt 6010 ]; }"

# --- a service the router starts after a mapping was made on its port ---
npc map tcp 8030 8030 3600
check "a mapping on tcp 8030, which the router does not use yet" eq "$(field result) $(field external)" "0 8030"
in_rtr $PYTHON "$TRAFFIC" serve tcp 0.0.0.0 8030 30 >"$LAB_DIR/late.out" 2>&1 &
late=$!
await_listening "$LAB_DIR/late.out" || lab_fail "the router's late service did not start"
# moved_off PROTO IPORT PORT: a renewal of the client's IPORT answers a port other than PORT.
moved_off() { npc map "$1" "$2" "$3" 3600; [ "$(field result)" = 0 ] && [ "$(field external)" != "$3" ] && is_port "$(field external)"; }
# The router's ports are read at most a second before a request: the renewal after that moves it.
check "once the router listens on tcp 8030 itself, the client's renewal moves the mapping off it" \
	within 5 moved_off tcp 8030 8030
moved=$(field external)
check "... the new port ($moved) forwards to the client" forward tcp "$moved" 8030
check "... and the WAN reaches the router's own service on 8030 again" \
	in_wan $PYTHON "$TRAFFIC" probe tcp $EXT 8030 2
wait $late
check "... (the router's service, not the client, answered it)" grep -q "^served $PEER:" "$LAB_DIR/late.out"

npc map udp 8040 8040 3600
check "a mapping on udp 8040" eq "$(field result) $(field external)" "0 8040"
in_rtr $PYTHON "$TRAFFIC" serve udp $EXT 8040 30 >"$LAB_DIR/late2.out" 2>&1 &
late=$!
await_listening "$LAB_DIR/late2.out" || lab_fail "the router's late service did not start"
check "once the router binds udp 8040 on the external address, the mapping moves off it without a renewal (within 15 s)" \
	within 15 logged "the router now uses udp 8040 itself: moving the mapping of $CLIENT:8040 off it"
check "... the kernel no longer forwards udp 8040" kernel_lacks udp 8040
udp_moved() { nft_map | awk -v c="$CLIENT" '$1 == "udp" && $3 == c && $4 == 8040 { print $2 }'; }
new=$(udp_moved)
check "... it forwards another port ($new) to the client" is_port "$new"
npc map udp 8040 8040 3600
check "... which the client's next renewal is told" eq "$(field result) $(field external)" "0 $new"
kill $late 2>/dev/null
wait $late 2>/dev/null

# A saved mapping onto a port the router has since started to use is not restored.
daemon_kill TERM
now=$(date +%s)
printf '{"version": 1, "epoch_start": %d, "mappings": [{"client": "%s", "protocol": "tcp", "internal_port": 22, "external_port": 8022, "lifetime": 3600, "expires": %d}]}' \
	$((now - 10)) $CLIENT $((now + 3000)) >"$STATE_DIR/state.json"
daemon_start --rate-limit 5
check "a saved mapping onto a port the router now listens on is not restored" \
	grep -q "not restoring tcp 8022 -> $CLIENT:22: the router itself now uses the port" "$LOG"
check "... and is not forwarded" kernel_lacks tcp 8022

lab_finish
