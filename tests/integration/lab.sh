# lab.sh - the namespace lab that every integration test sources.
#
#   LAN ns: 192.168.77.2 and .3 (two clients)      WAN ns: 198.51.100.2
#        |  vl<id>                                       |  vw<id>
#        |  vr<id> 192.168.77.1, .254                    |  vx<id> 198.51.100.1
#        +------------------ router ns -----------------+
#                     natpmp-server (LAN: vr<id>, external: vx<id>)
#
# lab_up_double puts a gateway between router and WAN instead (double NAT):
#
#   LAN ns --- router ns --------------------- gateway ns ----------------- WAN ns
#              vr<id> 192.168.77.1             vg<id> 192.168.78.1          vw<id> 198.51.100.2
#              vx<id> 192.168.78.2 (upstream)  vy<id> 198.51.100.1
#   natpmp-server in upstream mode             a second natpmp-server
#
# Names carry a per-run id so that parallel runs never meet; everything the
# lab made is removed on exit, also when a test fails.  Every wait is
# bounded.  NPS_BIN and NPC_BIN name the daemon and the client (meson sets
# them; by hand, build/ is used); TRAFFIC names traffic.py.
set -u

if [ "$(id -u)" != 0 ]; then
	echo "needs root (network namespaces, nftables): skipping"
	exit 77
fi

LAB_ID=$(printf '%x%04x' $$ $((RANDOM % 65536)) | tail -c 8)
LAN=npl-$LAB_ID RTR=npr-$LAB_ID WAN=npw-$LAB_ID GWY=npg-$LAB_ID
GWY_LAN_IF=vg$LAB_ID GWY_WAN_IF=vy$LAB_ID
UP_GW=192.168.78.1
UP_RTR=192.168.78.2
GWY_STATE_DIR=""
GWY_LOG=""
GWY_PID=""
LAN_IF=vl$LAB_ID RTR_LAN_IF=vr$LAB_ID WAN_IF=vw$LAB_ID RTR_WAN_IF=vx$LAB_ID
GW=192.168.77.1
CLIENT=192.168.77.2
CLIENT2=192.168.77.3
EXT=198.51.100.1
PEER=198.51.100.2
LAB_DIR=$(mktemp -d /tmp/natpmp-lab.XXXXXX)
STATE_DIR=$LAB_DIR/state
LOG=$LAB_DIR/daemon.log
DAEMON_PID=""
FAILURES=0
CHECKS=0
LAB_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
NPS_BIN=${NPS_BIN:-$LAB_SRC/../../build/natpmp-server}
NPC_BIN=${NPC_BIN:-$LAB_SRC/../../build/natpmp-client}
TRAFFIC=${TRAFFIC:-$LAB_SRC/traffic.py}
# Debian's python3 (deps.sh installs it): a version manager's shim earlier in PATH
# can take a second to start, which the lab's timings would feel.
if [ -z "${PYTHON:-}" ]; then
	PYTHON=python3
	[ -x /usr/bin/python3 ] && PYTHON=/usr/bin/python3
fi

lab_cleanup() {
	# A wrapper (strace) may have the daemon as its child: that goes first.
	[ -n "$DAEMON_PID" ] && pkill -KILL -P "$DAEMON_PID" 2>/dev/null
	daemon_kill KILL
	[ -n "$GWY_PID" ] && kill -KILL "$GWY_PID" 2>/dev/null
	for p in $(jobs -p); do kill "$p" 2>/dev/null; done
	for ns in $LAN $RTR $WAN $GWY; do ip netns del "$ns" 2>/dev/null; done
	rm -rf "$LAB_DIR"
}
trap lab_cleanup EXIT
trap 'exit 1' INT TERM HUP PIPE

in_lan() { ip netns exec "$LAN" "$@"; }
in_rtr() { ip netns exec "$RTR" "$@"; }
in_wan() { ip netns exec "$WAN" "$@"; }
in_gwy() { ip netns exec "$GWY" "$@"; }

# lab_netns NS...: the namespaces, each with its loopback up.
lab_netns() {
	for ns; do
		ip netns add "$ns" || exit 1
		ip -n "$ns" link set lo up
	done
}

# lab_lan: the LAN namespace's two clients, wired to the router's LAN
# interface, which forwards.
lab_lan() {
	ip link add "$LAN_IF" netns "$LAN" type veth peer name "$RTR_LAN_IF" netns "$RTR" || exit 1
	ip -n "$LAN" addr add $CLIENT/24 dev "$LAN_IF"
	ip -n "$LAN" addr add $CLIENT2/24 dev "$LAN_IF"
	ip -n "$LAN" link set "$LAN_IF" up
	ip -n "$LAN" route add default via $GW
	ip -n "$RTR" addr add $GW/24 dev "$RTR_LAN_IF"
	ip -n "$RTR" addr add 192.168.77.254/24 dev "$RTR_LAN_IF"
	ip -n "$RTR" link set "$RTR_LAN_IF" up
	in_rtr sysctl -qw net.ipv4.ip_forward=1
}

# lab_wan NS IF: the WAN peer, wired to interface IF of namespace NS (which has EXT).
lab_wan() {
	ip link add "$WAN_IF" netns "$WAN" type veth peer name "$2" netns "$1" || exit 1
	ip -n "$1" addr add $EXT/24 dev "$2"
	ip -n "$1" link set "$2" up
	ip -n "$WAN" addr add $PEER/24 dev "$WAN_IF"
	ip -n "$WAN" link set "$WAN_IF" up
}

lab_up() {
	lab_netns "$LAN" "$RTR" "$WAN"
	lab_lan
	lab_wan "$RTR" "$RTR_WAN_IF"
	# Lets LAN hosts' own outgoing connections reach the peer without a masquerade.
	ip -n "$WAN" route add 192.168.77.0/24 via $EXT
	mkdir -p "$STATE_DIR"
}

# lab_up_double: the double-NAT lab above.  The router's external interface
# (vx) faces the gateway; EXT is the gateway's external address.
lab_up_double() {
	lab_netns "$LAN" "$RTR" "$GWY" "$WAN"
	lab_lan
	ip link add "$RTR_WAN_IF" netns "$RTR" type veth peer name "$GWY_LAN_IF" netns "$GWY" || exit 1
	ip -n "$RTR" addr add $UP_RTR/24 dev "$RTR_WAN_IF"
	ip -n "$RTR" link set "$RTR_WAN_IF" up
	ip -n "$RTR" route add default via $UP_GW
	ip -n "$GWY" addr add $UP_GW/24 dev "$GWY_LAN_IF"
	ip -n "$GWY" link set "$GWY_LAN_IF" up
	in_gwy sysctl -qw net.ipv4.ip_forward=1
	lab_wan "$GWY" "$GWY_WAN_IF"
	GWY_STATE_DIR=$LAB_DIR/gwstate
	GWY_LOG=$LAB_DIR/gateway.log
	mkdir -p "$STATE_DIR" "$GWY_STATE_DIR"
}

# gateway_start [extra options...]: the upstream gateway, a second
# natpmp-server in the gateway namespace; waits until it answers the router.
gateway_start() {
	ip netns exec "$GWY" "$NPS_BIN" --listen-interface "$GWY_LAN_IF" --external-interface "$GWY_WAN_IF" \
		--state-dir "$GWY_STATE_DIR" --log-level debug "$@" >>"$GWY_LOG" 2>&1 &
	GWY_PID=$!
	await_answer "$RTR" $UP_GW "$GWY_PID" "$GWY_LOG" gateway
}

# gateway_kill [SIGNAL]: stops the gateway and waits (at most 5 s).
gateway_kill() {
	[ -n "$GWY_PID" ] || return 0
	stop_pid "$GWY_PID" "${1:-TERM}"
	GWY_PID=""
}

# await_answer NS SERVER PID LOG WHO: waits (at most 5 s) until SERVER answers
# opcode 0 from namespace NS; exits the test with LOG if it never does.
await_answer() {
	for _ in $(seq 1 100); do
		ip netns exec "$1" "$NPC_BIN" -g "$2" -r 1 -t 50 address >/dev/null 2>&1 && return 0
		kill -0 "$3" 2>/dev/null || break
		sleep 0.05
	done
	echo "the $5 did not start answering; its log:"
	cat "$4"
	exit 1
}

# stop_pid PID SIGNAL: sends SIGNAL, waits at most 5 s, then kills; the exit status in STOPPED_STATUS.
stop_pid() {
	kill -"$2" "$1" 2>/dev/null
	for _ in $(seq 1 100); do
		kill -0 "$1" 2>/dev/null || break
		sleep 0.05
	done
	kill -KILL "$1" 2>/dev/null
	wait "$1" 2>/dev/null
	STOPPED_STATUS=$?
}

# daemon_exec [extra options...]: becomes the daemon, in the router namespace
# with the lab's interfaces and state directory, its output appended to $LOG.
# It replaces the calling shell: run it in the background (then $! is the
# daemon itself, not a subshell) or in a subshell, ( daemon_exec ... ).
# DAEMON_WRAPPER, if set, is a command put before it (setpriv, strace).
daemon_exec() {
	exec ip netns exec "$RTR" ${DAEMON_WRAPPER:-} "$NPS_BIN" --listen-interface "$RTR_LAN_IF" \
		--external-interface "$RTR_WAN_IF" --state-dir "$STATE_DIR" "$@" >>"$LOG" 2>&1
}

# daemon_start [extra options...]: starts the daemon and waits until it answers.
daemon_start() {
	daemon_exec --log-level debug "$@" &
	DAEMON_PID=$!
	DAEMON_STARTED=$(date +%s)
	await_answer "$LAN" $GW "$DAEMON_PID" "$LOG" daemon
}

# daemon_kill [SIGNAL]: stops the daemon and waits (at most 5 s) for it to exit.
daemon_kill() {
	[ -n "$DAEMON_PID" ] || return 0
	stop_pid "$DAEMON_PID" "${1:-TERM}"
	DAEMON_STATUS=$STOPPED_STATUS
	DAEMON_PID=""
}

# npc ARGS...: the project's client on the LAN side; its output in OUT, exit code in RC.
npc() {
	OUT=$(in_lan "$NPC_BIN" -g $GW "$@" 2>&1)
	RC=$?
}

# field NAME: the value of NAME=... in OUT's first reply line.
field() {
	printf '%s\n' "$OUT" | grep -m1 '^reply' | tr ' ' '\n' | sed -n "s/^$1=//p"
}

# check DESCRIPTION COMMAND...: runs a shell test and records the outcome.
check() {
	desc=$1
	shift
	CHECKS=$((CHECKS + 1))
	if "$@"; then
		echo "ok   - $desc"
	else
		echo "FAIL - $desc"
		[ -n "${OUT:-}" ] && printf '       last client output: %s\n' "$OUT"
		FAILURES=$((FAILURES + 1))
	fi
}

eq() { [ "$1" = "$2" ] || { echo "       expected '$2', got '$1'"; return 1; }; }
ne() { [ "$1" != "$2" ] || { echo "       expected anything but '$2'"; return 1; }; }

# hook_saw LINE: a --hook that appends its arguments to $HOOK_OUT wrote LINE (waits at most 3 s).
hook_saw() {
	for _ in $(seq 1 60); do
		grep -qxF -- "$1" "$HOOK_OUT" 2>/dev/null && return 0
		sleep 0.05
	done
	echo "       hook output: $(tr '\n' '|' <"$HOOK_OUT" 2>/dev/null)"
	return 1
}

# nft_map: the daemon's map as the kernel has it.
nft_map() { in_rtr nft list map ip natpmp mappings 2>&1; }
# nft_count: how many elements the daemon's map holds.
nft_count() { nft_map | grep -Eo ': [0-9]+\.[0-9]+\.[0-9]+\.[0-9]+ \. [0-9]+' | wc -l; }

# forward_tcp PORT / forward_udp PORT: a WAN peer reaches the LAN client's
# listener on LPORT through the router's EXT:PORT; prints what the listener saw.
forward() {
	proto=$1 eport=$2 lport=$3 lan_addr=${4:-$CLIENT}
	in_lan $PYTHON "$TRAFFIC" serve "$proto" "$lan_addr" "$lport" 3 >"$LAB_DIR/serve.out" 2>&1 &
	spid=$!
	# The listener is up when it says so (bounded).
	for _ in $(seq 1 60); do
		grep -q listening "$LAB_DIR/serve.out" 2>/dev/null && break
		sleep 0.05
	done
	in_wan $PYTHON "$TRAFFIC" probe "$proto" $EXT "$eport" 2 >"$LAB_DIR/probe.out" 2>&1
	prc=$?
	kill "$spid" 2>/dev/null
	wait "$spid" 2>/dev/null
	return $prc
}

no_forward() { ! forward "$@"; }

# notify_listen: a stand-in for systemd's notification socket at
# $LAB_DIR/notify.sock, recording each datagram as one line of
# $LAB_DIR/notify.log (newlines become spaces) for 60 s; then
# `export NOTIFY_SOCKET=$LAB_DIR/notify.sock` before starting the daemon.
notify_listen() {
	$PYTHON - "$LAB_DIR/notify.sock" "$LAB_DIR/notify.log" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(60)
with open(sys.argv[2], "a") as log:
    try:
        while True:
            log.write(s.recv(4096).decode().replace("\n", " ") + "\n")
            log.flush()
    except socket.timeout:
        pass
PY
	for _ in $(seq 1 50); do [ -S "$LAB_DIR/notify.sock" ] && break; sleep 0.05; done
}

lab_finish() {
	if [ -n "$DAEMON_PID" ]; then
		daemon_kill TERM
		check "the daemon exits 0 on SIGTERM" eq "$DAEMON_STATUS" "0"
	fi
	# Under -Db_sanitize the daemon's reports land in its log: any is a failure.
	check "the daemon's log has no sanitizer report" bash -c "! grep -q 'Sanitizer\|runtime error' '$LOG'"
	if [ "$FAILURES" -ne 0 ]; then
		echo "$FAILURES of $CHECKS checks failed; the daemon's log:"
		tail -n 80 "$LOG"
		exit 1
	fi
	echo "all $CHECKS checks passed"
	exit 0
}
