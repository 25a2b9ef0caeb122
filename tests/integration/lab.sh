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
# lab made is removed on exit, also when a test fails.  NPS_BIN and NPC_BIN
# name the daemon and the client (meson sets them; by hand, build/ is used);
# TRAFFIC names traffic.py.
#
# What makes a verdict trustworthy here, on any machine:
# - A test never skips: without root, a namespace or a tool it needs, it
#   fails and names what is missing (lab_require).
# - Every wait is an event polled on the clock (within, await_answer), with
#   a bound far above what a slow machine needs; fixed sleeps only where the
#   test is about time passing (an expiry), measured on the clock too.
# - The daemon runs with --rate-limit 0 unless the test gives a --rate-limit:
#   a test that is not about the rate limit must not depend on how fast the
#   machine sends.
# - The kernel's table is read as nft's JSON with numeric protocols
#   (nftmap.py), never as text whose form depends on /etc/protocols; a
#   listing that fails fails every check, negative ones included.
# - A negative check ("no reply", "the kernel lacks") also shows the daemon
#   is alive and the thing looked at exists.
set -u

# lab_fail MESSAGE: the test cannot run here: fail (never skip), saying why.
lab_fail() {
	echo "FAIL - $*"
	exit 1
}

[ "$(id -u)" = 0 ] || lab_fail "needs root (network namespaces, nftables): run it as root, as scripts/test.sh does"

# lab_require COMMAND...: each COMMAND is on PATH, or the test fails naming it.
lab_require() {
	for tool; do
		command -v "$tool" >/dev/null 2>&1 ||
			lab_fail "needs '$tool', which is not installed: sh scripts/deps.sh installs it"
	done
}
lab_require ip nft sysctl python3 setpriv prlimit pkill

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
LAB_MOUNTS="" # file systems a test mounted under LAB_DIR, unmounted at the end
LAB_NETNS=""  # namespaces a test made beyond the lab's, deleted at the end
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
	# Whatever still runs in the lab's namespaces (a client started as `in_lan cmd &`
	# is the job's child, not the job): deleting a namespace would leave it running.
	for ns in $LAN $RTR $WAN $GWY $LAB_NETNS; do
		ip netns pids "$ns" 2>/dev/null | xargs -r kill -KILL 2>/dev/null
	done
	for ns in $LAN $RTR $WAN $GWY $LAB_NETNS; do ip netns del "$ns" 2>/dev/null; done
	for m in $LAB_MOUNTS; do umount -l "$m" 2>/dev/null; done
	rm -rf "$LAB_DIR"
}
trap lab_cleanup EXIT
trap 'exit 1' INT TERM HUP PIPE

in_lan() { ip netns exec "$LAN" "$@"; }
in_rtr() { ip netns exec "$RTR" "$@"; }
in_wan() { ip netns exec "$WAN" "$@"; }
in_gwy() { ip netns exec "$GWY" "$@"; }

# must COMMAND...: a step of the test's own set-up (an nft or ip command run
# by hand) that has to work, or what follows would test nothing: the test
# fails at once, naming it.
must() {
	"$@" >"$LAB_DIR/must.out" 2>&1 && return 0
	lab_fail "the test's own step failed: $* ($(tr '\n' ' ' <"$LAB_DIR/must.out"))"
}

# now_ms: the clock in milliseconds.
now_ms() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }

# within SECONDS COMMAND...: COMMAND succeeds within SECONDS, tried every
# 50 ms and measured on the clock; WAITED_MS says how long it took.  The
# tries are quiet; after the last, COMMAND runs once more to show its output.
within() {
	local limit=$1 start
	limit=$(awk -v s="$limit" 'BEGIN { printf "%d", s * 1000 }')
	shift
	start=$(now_ms)
	while :; do
		if "$@" >/dev/null 2>&1; then
			WAITED_MS=$(($(now_ms) - start))
			return 0
		fi
		[ $(($(now_ms) - start)) -lt "$limit" ] || break
		sleep 0.05
	done
	WAITED_MS=$(($(now_ms) - start))
	"$@"
	echo "       not within $((limit / 1000)).$(printf '%03d' $((limit % 1000))) s"
	return 1
}

# lab_netns NS...: the namespaces, each with its loopback up.
lab_netns() {
	for ns; do
		ip netns add "$ns" || lab_fail "cannot make network namespace $ns"
		ip -n "$ns" link set lo up
	done
}

# lab_link NS1 IF1 ADDR1 NS2 IF2 ADDR2: a veth pair between two namespaces,
# IF1 in NS1 and IF2 in NS2, each end with its address (a.b.c.d/len) and up.
lab_link() {
	must ip link add "$2" netns "$1" type veth peer name "$5" netns "$4"
	must ip -n "$1" addr add "$3" dev "$2"
	must ip -n "$1" link set "$2" up
	must ip -n "$4" addr add "$6" dev "$5"
	must ip -n "$4" link set "$5" up
}

# lab_lan: the LAN namespace's two clients, wired to the router's LAN
# interface, which forwards.
lab_lan() {
	must ip link add "$LAN_IF" netns "$LAN" type veth peer name "$RTR_LAN_IF" netns "$RTR"
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
	lab_link "$1" "$2" $EXT/24 "$WAN" "$WAN_IF" $PEER/24
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
	lab_link "$RTR" "$RTR_WAN_IF" $UP_RTR/24 "$GWY" "$GWY_LAN_IF" $UP_GW/24
	ip -n "$RTR" route add default via $UP_GW
	in_gwy sysctl -qw net.ipv4.ip_forward=1
	lab_wan "$GWY" "$GWY_WAN_IF"
	GWY_STATE_DIR=$LAB_DIR/gwstate
	GWY_LOG=$LAB_DIR/gateway.log
	mkdir -p "$STATE_DIR" "$GWY_STATE_DIR"
}

# IPv6 in the lab (lab_ipv6): 2001:db8:77::/64 on the LAN, 2001:db8:100::/64 outside.
GW6=2001:db8:77::1
CLIENT6=2001:db8:77::2
CLIENT6B=2001:db8:77::3
EXT6=2001:db8:100::1
PEER6=2001:db8:100::2
PINHOLE_MARK=0x1000000

# lab_ipv6: IPv6 on the lab of lab_up (no DAD, so addresses work at once),
# the router forwarding it, and the router owner's own firewall as a home
# router has one: forwarded IPv6 from outside is dropped unless it belongs
# to a connection from the LAN or carries the pinhole mark (README: PCP).
lab_ipv6() {
	ip -n "$LAN" -6 addr add $CLIENT6/64 dev "$LAN_IF" nodad
	ip -n "$LAN" -6 addr add $CLIENT6B/64 dev "$LAN_IF" nodad
	ip -n "$RTR" -6 addr add $GW6/64 dev "$RTR_LAN_IF" nodad
	ip -n "$RTR" -6 addr add $EXT6/64 dev "$RTR_WAN_IF" nodad
	ip -n "$WAN" -6 addr add $PEER6/64 dev "$WAN_IF" nodad
	ip -n "$LAN" -6 route add default via $GW6
	ip -n "$WAN" -6 route add 2001:db8:77::/64 via $EXT6
	in_rtr sysctl -qw net.ipv6.conf.all.forwarding=1
	lab_ipv6_firewall
	# Link-local addresses come up with the links; wait until they are usable.
	within 10 eval "! ip -n $LAN -6 addr show tentative | grep -q inet6 && ! ip -n $RTR -6 addr show tentative | grep -q inet6" \
		>/dev/null || lab_fail "IPv6 link-local addresses stayed tentative"
}

# lab_ipv6_firewall: the router owner's IPv6 forward chain (in a table of its own).
lab_ipv6_firewall() {
	in_rtr nft -f - <<-EOF || lab_fail "cannot load the lab's firewall"
	table ip6 labfw {
		chain forward {
			type filter hook forward priority filter; policy drop;
			ct state established,related accept
			iifname "$RTR_LAN_IF" accept
			meta mark & $PINHOLE_MARK == $PINHOLE_MARK accept
		}
	}
	EOF
}

# rate_limit_off ARGS...: ARGS, with --rate-limit 0 in front unless ARGS set a rate limit.
rate_limit_off() {
	case " $* " in
	*" --rate-limit "*) RATE_ARGS=("$@") ;;
	*) RATE_ARGS=(--rate-limit 0 "$@") ;;
	esac
}

# gateway_start [extra options...]: the upstream gateway, a second
# natpmp-server in the gateway namespace; waits until it answers the router.
gateway_start() {
	rate_limit_off "$@"
	ip netns exec "$GWY" "$NPS_BIN" --listen-interface "$GWY_LAN_IF" --external-interface "$GWY_WAN_IF" \
		--state-dir "$GWY_STATE_DIR" --log-level debug "${RATE_ARGS[@]}" >>"$GWY_LOG" 2>&1 &
	GWY_PID=$!
	await_answer "$RTR" $UP_GW "$GWY_PID" "$GWY_LOG" gateway
}

# gateway_kill [SIGNAL]: stops the gateway and waits for it (see stop_pid).
gateway_kill() {
	[ -n "$GWY_PID" ] || return 0
	stop_pid "$GWY_PID" "${1:-TERM}"
	GWY_PID=""
}

# answers NS SERVER: SERVER answers opcode 0 (any result) to a request from namespace NS.
answers() {
	ip netns exec "$1" "$NPC_BIN" -g "$2" -r 2 -t 250 address >/dev/null 2>&1
	[ $? -le 1 ]
}

# await_answer NS SERVER PID LOG WHO: waits (at most 20 s) until SERVER answers
# opcode 0 from namespace NS; fails the test with LOG if it never does or exits.
await_answer() {
	local start
	start=$(now_ms)
	while [ $(($(now_ms) - start)) -lt 20000 ]; do
		answers "$1" "$2" && return 0
		kill -0 "$3" 2>/dev/null || break
		sleep 0.05
	done
	echo "the $5 did not start answering; its log:"
	cat "$4"
	exit 1
}

# stop_pid PID SIGNAL: sends SIGNAL, waits at most 20 s, then kills; the exit status in STOPPED_STATUS.
stop_pid() {
	local start
	kill -"$2" "$1" 2>/dev/null
	start=$(now_ms)
	while kill -0 "$1" 2>/dev/null && [ $(($(now_ms) - start)) -lt 20000 ]; do
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
	rate_limit_off "$@"
	exec ip netns exec "$RTR" ${DAEMON_WRAPPER:-} "$NPS_BIN" --listen-interface "$RTR_LAN_IF" \
		--external-interface "$RTR_WAN_IF" --state-dir "$STATE_DIR" "${RATE_ARGS[@]}" >>"$LOG" 2>&1
}

# daemon_start [extra options...]: starts the daemon and waits until it answers.
daemon_start() {
	DAEMON_STARTED_MS=$(now_ms)
	daemon_exec --log-level debug "$@" &
	DAEMON_PID=$!
	await_answer "$LAN" $GW "$DAEMON_PID" "$LOG" daemon
}

# daemon_kill [SIGNAL]: stops the daemon and waits for it (see stop_pid).
daemon_kill() {
	[ -n "$DAEMON_PID" ] || return 0
	stop_pid "$DAEMON_PID" "${1:-TERM}"
	DAEMON_STATUS=$STOPPED_STATUS
	DAEMON_PID=""
}

# traced_pid: the daemon itself when DAEMON_PID is a wrapper (strace) that runs it as a child.
traced_pid() { pgrep -P "$DAEMON_PID" -f natpmp-server; }

# daemon_stop_traced: SIGTERM to the daemon under a wrapper, which then exits
# with the daemon's status (in DAEMON_STATUS); at most 20 s, then SIGKILL.
daemon_stop_traced() {
	kill -TERM "$(traced_pid)"
	within 20 eval '! kill -0 "$DAEMON_PID" 2>/dev/null' >/dev/null || kill -KILL "$DAEMON_PID"
	wait "$DAEMON_PID"
	DAEMON_STATUS=$?
	DAEMON_PID=""
}

# daemon_alive: the daemon's process runs and answers a LAN client.
daemon_alive() {
	[ -n "$DAEMON_PID" ] && kill -0 "$DAEMON_PID" 2>/dev/null && answers "$LAN" $GW && return 0
	echo "       the daemon is not running or does not answer"
	return 1
}

# npc ARGS...: the project's client on the LAN side; its output in OUT, exit code in RC.
npc() {
	OUT=$(in_lan "$NPC_BIN" -g $GW "$@" 2>&1)
	RC=$?
}

# no_reply ARGS...: a request (npc ARGS, from the LAN unless ARGS say -b or
# -g otherwise) gets no reply within a second, while the daemon, alive,
# answers a request from a LAN client right after it.
no_reply() {
	npc -r 1 -t 1000 "$@"
	eq "$RC $OUT" "3 no reply" && daemon_alive
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
# is_port VALUE: VALUE is a port number, 1-65535 (an empty one is not).
is_port() { [[ "$1" =~ ^[0-9]+$ ]] && [ "$1" -ge 1 ] && [ "$1" -le 65535 ] || { echo "       '$1' is not a port"; return 1; }; }

# more_than N COMMAND...: COMMAND prints a number greater than N.  Under
# within, COMMAND runs at each try, where "$(...)" would have run once.
more_than() {
	local n=$1 v
	shift
	v=$("$@")
	[ "$v" -gt "$n" ] 2>/dev/null || { echo "       $* printed '$v', not more than $n"; return 1; }
}

# logged TEXT / log_count TEXT: the daemon's log has a line with TEXT / how many.
logged() { grep -qF -- "$1" "$LOG"; }
log_count() { grep -cF -- "$1" "$LOG"; }

# hook_saw LINE: a --hook that appends its arguments to $HOOK_OUT wrote LINE (waits at most 10 s).
hook_saw() {
	within 10 grep -qxF -- "$1" "$HOOK_OUT" && return 0
	echo "       hook output: $(tr '\n' '|' <"$HOOK_OUT" 2>/dev/null)"
	return 1
}

# --- the kernel's table, read the same way on every machine (nftmap.py) ---

# kernel_list WHAT [TABLE] [NS]: the daemon's mappings, sources or external set
# as the kernel has it, one element a line (see nftmap.py); fails if the
# table cannot be listed.
kernel_list() {
	ip netns exec "${3:-$RTR}" nft -j -p list table ip "${2:-$NAT_TABLE}" 2>&1 | $PYTHON "$LAB_SRC/nftmap.py" "$1"
}
# The daemon's table: natpmp, unless the test moves it (--nat-table).
NAT_TABLE=natpmp
# nft_map [TABLE]: "PROTO EPORT CLIENT IPORT TIMEOUT" lines of the mappings map.
nft_map() { kernel_list mappings "${1:-$NAT_TABLE}"; }
# nft_count [TABLE]: how many elements the mappings map holds ("none" if it cannot be listed).
nft_count() { local l; l=$(nft_map "$@") && grep -c . <<<"$l" || echo none; }
# mappings_are N: the mappings map holds N elements (for within: counted at each try).
mappings_are() { eq "$(nft_count)" "$1"; }
# kernel_has PROTO EPORT ADDR IPORT: the kernel forwards PROTO EPORT to ADDR:IPORT.
kernel_has() {
	local l
	l=$(nft_map) || { echo "       $l"; return 1; }
	grep -q "^$1 $2 $3 $4 " <<<"$l" || { echo "       no $1 $2 -> $3:$4 in: $(tr '\n' '|' <<<"$l")"; return 1; }
}
# kernel_lacks PROTO EPORT: the kernel's map, listed, has no PROTO EPORT, and the daemon is alive.
kernel_lacks() {
	local l
	l=$(nft_map) || { echo "       $l"; return 1; }
	! grep -q "^$1 $2 " <<<"$l" || { echo "       still there: $(grep "^$1 $2 " <<<"$l")"; return 1; }
	daemon_alive
}
# table_gone NAME [NS]: nft lists the tables of the router (or NS), and ip NAME is not among them.
table_gone() {
	local t
	t=$(ip netns exec "${2:-$RTR}" nft list tables 2>&1) || { echo "       nft list tables: $t"; return 1; }
	! grep -qx "table ip $1" <<<"$t" || { echo "       table ip $1 is still there"; return 1; }
}
# table_there NAME: the router has table ip NAME.
table_there() { ! table_gone "$@" >/dev/null; }
# kernel_to ADDR IPORT: the kernel forwards some external port to ADDR:IPORT (ADDR "any":
# to any client's IPORT); 1 when it does not, 2 when the map cannot be listed.
kernel_to() {
	local l
	l=$(nft_map) || { echo "       $l"; return 2; }
	awk -v a="$1" -v p="$2" '($3 == a || a == "any") && $4 == p { f = 1 } END { exit !f }' <<<"$l"
}
# kernel_not_to ADDR IPORT: the map is listed, and nothing in it goes to ADDR:IPORT.
kernel_not_to() { kernel_to "$@"; [ $? = 1 ]; }
# kernel_timeout PROTO EPORT: the kernel's timeout of PROTO EPORT, in seconds.
kernel_timeout() { nft_map | awk -v p="$1" -v e="$2" '$1 == p && $2 == e { print $5 }'; }

# --- traffic through the forwards (traffic.py) ---

# await_listening FILE: a traffic.py listener writing to FILE says it listens (at most 10 s).
await_listening() { within 10 grep -q listening "$1" >/dev/null; }

# forward PROTO EPORT LPORT [LAN_ADDR [DEST]]: a WAN peer reaches the LAN client's
# listener on LPORT through DEST:EPORT (DEST: the router's EXT; an IPv6 pinhole's
# is the client's own address).
forward() {
	local proto=$1 eport=$2 lport=$3 lan_addr=${4:-$CLIENT} dest=${5:-$EXT} spid prc
	in_lan $PYTHON "$TRAFFIC" serve "$proto" "$lan_addr" "$lport" 5 >"$LAB_DIR/serve.out" 2>&1 &
	spid=$!
	await_listening "$LAB_DIR/serve.out"
	in_wan $PYTHON "$TRAFFIC" probe "$proto" "$dest" "$eport" 2 >"$LAB_DIR/probe.out" 2>&1
	prc=$?
	# in_lan runs in a subshell: the listener is its child, and must not outlive the check (its port is reused).
	pkill -KILL -P "$spid" 2>/dev/null
	kill "$spid" 2>/dev/null
	wait "$spid" 2>/dev/null
	return $prc
}

# no_forward PROTO EPORT LPORT [LAN_ADDR]: the WAN peer does not get through,
# while the daemon is alive.
no_forward() { ! forward "$@" && daemon_alive; }

# wan_sees PROTO LPORT [LAN_ADDR]: the LAN client sends from its port LPORT to
# the WAN peer's port 7777; prints the source ADDR:PORT the peer saw.
wan_sees() {
	local pid
	in_wan $PYTHON "$TRAFFIC" serve "$1" $PEER 7777 5 >"$LAB_DIR/wan.out" 2>&1 &
	pid=$!
	await_listening "$LAB_DIR/wan.out"
	in_lan $PYTHON "$TRAFFIC" probe "$1" $PEER 7777 2 "$2" "${3:-$CLIENT}" >/dev/null 2>&1
	kill "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	sed -n 's/^served //p' "$LAB_DIR/wan.out"
}

# outbound PROTO EPORT LPORT [LAN_ADDR]: what the client sends from LPORT leaves from EXT:EPORT.
outbound() { eq "$(wan_sees "$1" "$3" "${4:-$CLIENT}")" "$EXT:$2"; }

# hairpin PROTO EPORT LPORT [LAN_ADDR]: another LAN host reaches the client's
# LPORT through EXT:EPORT, and the client sees it come from the router.
hairpin() {
	local proto=$1 eport=$2 lport=$3 lan_addr=${4:-$CLIENT} from spid prc
	from=$CLIENT2
	[ "$lan_addr" = "$CLIENT2" ] && from=$CLIENT
	in_lan $PYTHON "$TRAFFIC" serve "$proto" "$lan_addr" "$lport" 5 >"$LAB_DIR/hp.out" 2>&1 &
	spid=$!
	await_listening "$LAB_DIR/hp.out"
	in_lan $PYTHON "$TRAFFIC" probe "$proto" $EXT "$eport" 2 0 "$from" >/dev/null 2>&1
	prc=$?
	kill "$spid" 2>/dev/null
	wait "$spid" 2>/dev/null
	[ $prc = 0 ] && grep -q "^served $GW:" "$LAB_DIR/hp.out" || { echo "       hairpin: $(tr '\n' ' ' <"$LAB_DIR/hp.out")"; return 1; }
}

# all_paths PROTO EPORT LPORT [LAN_ADDR]: the whole of a mapping works, as the
# table's rules, maps and sets make it: inbound from the WAN, the client's own
# traffic leaving from the external port, and hairpin from the LAN.
all_paths() {
	forward "$@" || { echo "       inbound from the WAN fails"; return 1; }
	outbound "$@" || { echo "       outbound from the mapped port fails"; return 1; }
	hairpin "$@" || { echo "       hairpin fails"; return 1; }
}

# lan_listen SECONDS FILE: natpmp-client listening on the LAN at 224.0.0.1:5350
# for SECONDS, into FILE; returns once it listens, its pid in LISTENER.
lan_listen() {
	in_lan "$NPC_BIN" listen "$1" >"$2" 2>&1 &
	LISTENER=$!
	within 10 grep -q '^listening' "$2" >/dev/null || lab_fail "the LAN listener did not start: $(cat "$2")"
}

# notify_listen: a stand-in for systemd's notification socket at
# $LAB_DIR/notify.sock, recording each datagram as one line of
# $LAB_DIR/notify.log (newlines become spaces) for 120 s; then
# `export NOTIFY_SOCKET=$LAB_DIR/notify.sock` before starting the daemon.
notify_listen() {
	$PYTHON - "$LAB_DIR/notify.sock" "$LAB_DIR/notify.log" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(120)
with open(sys.argv[2], "a") as log:
    try:
        while True:
            log.write(s.recv(4096).decode().replace("\n", " ") + "\n")
            log.flush()
    except socket.timeout:
        pass
PY
	within 10 test -S "$LAB_DIR/notify.sock" || lab_fail "the stand-in notify socket did not appear"
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
