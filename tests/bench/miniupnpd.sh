# shellcheck shell=bash
# miniupnpd.sh - Debian's miniupnpd-nftables 2.3.1 as a comparison peer in the
# namespace lab of tests/integration/lab.sh.  Source it after lab.sh:
#
#   . tests/integration/lab.sh
#   . tests/bench/miniupnpd.sh
#   miniupnpd_install || exit 1       # before lab_up: may run apt-get
#   lab_up_small_ehash                # lab_up, router namespace with a router-sized TCP hash
#   miniupnpd_start || exit 1         # nft objects, STUN responder, config, daemon; waits for it
#   ... NAT-PMP requests to $GW:5351 from $LAN ...
#   miniupnpd_flush_rules             # optional: drop every mapping it installed (see below)
#   miniupnpd_stop                    # daemon, its nft table and the STUN responder are gone
#
# Uses lab.sh's $LAN $RTR $WAN $RTR_LAN_IF $RTR_WAN_IF $GW $EXT $PEER $LAB_DIR
# $PYTHON and, when it is executable, $NPC_BIN.  Tunables (set before calling):
#   MINIUPNPD_BIN        the daemon (default /usr/sbin/miniupnpd)
#   MINIUPNPD_ALLOW      one or more permission rules, one per line, each
#                        "EXTPORTS ADDR/MASK INTPORTS" (default
#                        "1024-65535 192.168.77.0/24 1024-65535"); a final
#                        "deny 0-65535 0.0.0.0/0 0-65535" is always added
#   MINIUPNPD_EXTRA_CONF lines appended to the generated config as they are
#   MINIUPNPD_STUN_PORT  the STUN responder's UDP port on $PEER (default 3478)
#   MINIUPNPD_EHASH      TCP established-hash buckets for the router namespace (default 4096)
#   MINIUPNPD_START_WAIT seconds miniupnpd_start waits for an answer (default 20; its
#                        STUN check alone may take 9 s when the responder is silent)
#
# Why each step is there (miniupnpd 2.3.1 as Debian builds it):
#  - It never creates its nftables objects.  It expects table inet filter with
#    chains miniupnpd (filter rules), prerouting_miniupnpd (DNAT) and
#    postrouting_miniupnpd (SNAT), the defaults of upnp_table_name,
#    upnp_nat_table_name, upnp_forward_chain, upnp_nat_chain and
#    upnp_nat_postrouting_chain, which the config below also spells out.  The
#    package's /etc/miniupnpd/nft_init.sh would make them but sources a
#    miniupnpd_functions.sh that is not shipped, and its forward chain drops
#    the replies of forwarded connections; so the table is made here, forward
#    policy accept.
#  - 198.51.100.1 is a documentation address, which it refuses as external
#    address (every NAT-PMP answer result 3; ext_ip= with it is fatal).  With
#    ext_perform_stun=yes it takes the address a STUN server reports: stun.py
#    runs on $PEER in the WAN namespace and reports the request's source, i.e.
#    $EXT, from the address it was asked on, so miniupnpd's filtering test
#    (four requests, some with CHANGE-REQUEST) concludes "no NAT, no
#    filtering" and port forwarding stays enabled.
#  - It runs as a daemon (no -d: debug logging costs 3x).  With no /dev/log,
#    syslog(3) writes its NOTICE-and-above lines to /dev/console (LOG_CONS),
#    so it runs in a private mount namespace where /dev/console is a FIFO
#    that a cat appends to $LAB_DIR/miniupnpd.log: nothing reaches the host's
#    console and the log is there when it fails to start.
#  - It leaves its rules in place when it exits and reloads lease_file when it
#    starts: miniupnpd_start begins from an empty table and lease file,
#    miniupnpd_stop deletes the table.
#
# lab.sh's lab_cleanup (the EXIT trap) is wrapped so that it calls
# miniupnpd_stop first: the daemon is not a job of the shell, and it would
# outlive the deletion of the router namespace otherwise.

MINIUPNPD_BIN=${MINIUPNPD_BIN:-/usr/sbin/miniupnpd}
MINIUPNPD_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
STUN_PY=${STUN_PY:-$MINIUPNPD_SRC/stun.py}
MINIUPNPD_ALLOW=${MINIUPNPD_ALLOW:-1024-65535 192.168.77.0/24 1024-65535}
MINIUPNPD_EXTRA_CONF=${MINIUPNPD_EXTRA_CONF:-}
MINIUPNPD_STUN_PORT=${MINIUPNPD_STUN_PORT:-3478}
MINIUPNPD_EHASH=${MINIUPNPD_EHASH:-4096}
MINIUPNPD_START_WAIT=${MINIUPNPD_START_WAIT:-20}
MINIUPNPD_PID=""        # the daemon, once miniupnpd_start has seen its pidfile
MINIUPNPD_STUN_PID=""   # stun.py in the WAN namespace (a job of this shell)
MINIUPNPD_LOGGER_PID="" # the cat that drains the daemon's console FIFO (a job)

# The chain names it expects (see above); miniupnpd_nft_up makes them.
MINIUPNPD_TABLE=filter
MINIUPNPD_FORWARD_CHAIN=miniupnpd
MINIUPNPD_DNAT_CHAIN=prerouting_miniupnpd
MINIUPNPD_SNAT_CHAIN=postrouting_miniupnpd

_mu_log() { echo "miniupnpd.sh: $*" >&2; }

# miniupnpd_install: installs miniupnpd-nftables (and nftables) when missing,
# without questions and without leaving a service running on the host.
# Only miniupnpd-nftables is installed: it holds the binary and no init
# script or unit (those, and the debconf questions, are in the "miniupnpd"
# package, which is not needed).  A policy-rc.d that forbids starting
# services is put in place for the install if there is none.
miniupnpd_install() {
	local pkgs="" policy=/usr/sbin/policy-rc.d made_policy="" rc=0
	[ -x "$MINIUPNPD_BIN" ] || pkgs="miniupnpd-nftables"
	command -v nft >/dev/null 2>&1 || pkgs="$pkgs nftables"
	command -v unshare >/dev/null 2>&1 || pkgs="$pkgs util-linux"
	[ -n "$pkgs" ] || return 0
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && made_policy=1
	fi
	# shellcheck disable=SC2086
	if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $pkgs >/dev/null 2>&1; then
		# A fresh machine has no package lists yet.
		apt-get update -q >/dev/null 2>&1
		# shellcheck disable=SC2086
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $pkgs >/dev/null 2>&1 || rc=1
	fi
	[ -n "$made_policy" ] && rm -f "$policy"
	# Had the "miniupnpd" package come along (it did not ask for it), its
	# service must not stay on: stop and disable it on the host.
	if [ -e /lib/systemd/system/miniupnpd.service ] || [ -e /etc/init.d/miniupnpd ]; then
		if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
			systemctl disable --now miniupnpd >/dev/null 2>&1
		elif [ -x /etc/init.d/miniupnpd ]; then
			/etc/init.d/miniupnpd stop >/dev/null 2>&1
			command -v update-rc.d >/dev/null 2>&1 && update-rc.d miniupnpd disable >/dev/null 2>&1
		fi
	fi
	if [ "$rc" != 0 ] || [ ! -x "$MINIUPNPD_BIN" ]; then
		_mu_log "could not install $pkgs"
		return 1
	fi
	return 0
}

# lab_router_small_ehash [NAME]: creates the network namespace NAME (default
# $RTR) as `ip netns add` would, but with its own TCP established hash of
# $MINIUPNPD_EHASH buckets, the size of a router's rather than the host's
# (miniupnpd reads all of /proc/net/tcp on every add).  The size comes from
# net.ipv4.tcp_child_ehash_entries of the namespace a namespace is made
# from, so a throwaway helper namespace gets that setting and the router
# namespace is made inside it and registered under NAME with `ip netns
# attach`; the helper is gone when this returns.  `ip netns exec NAME` and
# `ip netns del NAME` work as for any other.  On a kernel without the
# setting (before 6.1) it says so and falls back to `ip netns add`.
lab_router_small_ehash() {
	local name=${1:-$RTR}
	if [ ! -e /proc/sys/net/ipv4/tcp_child_ehash_entries ]; then
		_mu_log "no net.ipv4.tcp_child_ehash_entries in this kernel: $name shares the host's TCP hash"
		ip netns add "$name"
		return
	fi
	# Outer sh: the helper namespace.  Inner sh: the router namespace, which
	# execs ip so that $$ is the process whose namespace is attached.
	# shellcheck disable=SC2016
	unshare --net -- sh -c '
		sysctl -qw net.ipv4.tcp_child_ehash_entries="$1" || exit 1
		exec unshare --net -- sh -c "exec ip netns attach \"\$1\" \$\$" sh "$2"
	' sh "$MINIUPNPD_EHASH" "$name" || { _mu_log "could not create $name"; return 1; }
	local got
	got=$(ip netns exec "$name" sysctl -n net.ipv4.tcp_ehash_entries 2>/dev/null)
	if [ "$got" != "$MINIUPNPD_EHASH" ]; then
		_mu_log "$name has tcp_ehash_entries=$got, not $MINIUPNPD_EHASH"
	fi
	return 0
}

# lab_up_small_ehash: lab.sh's lab_up, with the router namespace made by
# lab_router_small_ehash instead of `ip netns add $RTR`.
lab_up_small_ehash() {
	local rc
	# shellcheck disable=SC2317 # called by lab_up
	ip() {
		if [ "$#" = 3 ] && [ "$1" = netns ] && [ "$2" = add ] && [ "$3" = "$RTR" ]; then
			lab_router_small_ehash "$RTR"
		else
			command ip "$@"
		fi
	}
	lab_up
	rc=$?
	unset -f ip
	return $rc
}

# miniupnpd_nft_up: (re)creates, in the router namespace only, the table and
# chains miniupnpd fills, all empty; base chains accept by default.
miniupnpd_nft_up() {
	ip netns exec "$RTR" nft delete table inet $MINIUPNPD_TABLE 2>/dev/null
	ip netns exec "$RTR" nft -f - <<EOF
table inet $MINIUPNPD_TABLE {
	chain forward {
		type filter hook forward priority filter; policy accept;
		jump $MINIUPNPD_FORWARD_CHAIN
	}
	chain $MINIUPNPD_FORWARD_CHAIN {
	}
	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		jump $MINIUPNPD_DNAT_CHAIN
	}
	chain $MINIUPNPD_DNAT_CHAIN {
	}
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		jump $MINIUPNPD_SNAT_CHAIN
	}
	chain $MINIUPNPD_SNAT_CHAIN {
	}
}
EOF
}

# miniupnpd_nft_down: deletes that table (and every rule miniupnpd left in it).
miniupnpd_nft_down() {
	ip netns exec "$RTR" nft delete table inet $MINIUPNPD_TABLE 2>/dev/null
	return 0
}

# miniupnpd_flush_rules: empties its three chains.  The chains are its only
# record of the mappings (besides the lease file, read at start only), so
# between two runs of a benchmark on a running daemon this is a delete-all
# that costs nothing; the lease file is emptied too.
miniupnpd_flush_rules() {
	local c
	for c in $MINIUPNPD_FORWARD_CHAIN $MINIUPNPD_DNAT_CHAIN $MINIUPNPD_SNAT_CHAIN; do
		ip netns exec "$RTR" nft flush chain inet $MINIUPNPD_TABLE "$c" || return 1
	done
	: >"$LAB_DIR/miniupnpd.leases"
}

# miniupnpd_rule_count: how many DNAT rules (mappings) it has in the kernel.
miniupnpd_rule_count() {
	ip netns exec "$RTR" nft list chain inet $MINIUPNPD_TABLE $MINIUPNPD_DNAT_CHAIN 2>/dev/null | grep -c ' dnat '
}

# miniupnpd_conf: writes the daemon's config to $LAB_DIR/miniupnpd.conf.
miniupnpd_conf() {
	local uuid rule
	uuid=$(cat /proc/sys/kernel/random/uuid)
	{
		cat <<EOF
# written by tests/bench/miniupnpd.sh: NAT-PMP only
ext_ifname=$RTR_WAN_IF
listening_ip=$RTR_LAN_IF
ext_perform_stun=yes
ext_stun_host=$PEER
ext_stun_port=$MINIUPNPD_STUN_PORT
enable_natpmp=yes
enable_upnp=no
secure_mode=yes
ipv6_disable=yes
lease_file=$LAB_DIR/miniupnpd.leases
uuid=$uuid
clean_ruleset_interval=0
upnp_table_name=$MINIUPNPD_TABLE
upnp_nat_table_name=$MINIUPNPD_TABLE
upnp_forward_chain=$MINIUPNPD_FORWARD_CHAIN
upnp_nat_chain=$MINIUPNPD_DNAT_CHAIN
upnp_nat_postrouting_chain=$MINIUPNPD_SNAT_CHAIN
EOF
		while IFS= read -r rule; do
			[ -n "$rule" ] && echo "allow $rule"
		done <<<"$MINIUPNPD_ALLOW"
		echo "deny 0-65535 0.0.0.0/0 0-65535"
		[ -n "$MINIUPNPD_EXTRA_CONF" ] && printf '%s\n' "$MINIUPNPD_EXTRA_CONF"
	} >"$LAB_DIR/miniupnpd.conf"
}

# miniupnpd_stun_start: stun.py on $PEER:$MINIUPNPD_STUN_PORT in the WAN
# namespace; waits (at most 10 s: a pyenv shim alone can take 1 s to start
# python) until it is bound.  It stops by itself after a day at the latest.
miniupnpd_stun_start() {
	local out=$LAB_DIR/stun.log
	: >"$out"
	# Not through a function or subshell: $! must be python itself.
	ip netns exec "$WAN" "${PYTHON:-python3}" "$STUN_PY" "$PEER" "$MINIUPNPD_STUN_PORT" 86400 >>"$out" 2>&1 &
	MINIUPNPD_STUN_PID=$!
	for _ in $(seq 1 200); do
		grep -q '^listening' "$out" && return 0
		kill -0 "$MINIUPNPD_STUN_PID" 2>/dev/null || break
		sleep 0.05
	done
	_mu_log "the STUN responder did not start:"
	cat "$out" >&2
	return 1
}

miniupnpd_stun_stop() {
	[ -n "$MINIUPNPD_STUN_PID" ] || return 0
	kill "$MINIUPNPD_STUN_PID" 2>/dev/null
	wait "$MINIUPNPD_STUN_PID" 2>/dev/null
	MINIUPNPD_STUN_PID=""
}

# miniupnpd_answers: one NAT-PMP public address request (opcode 0) from the
# LAN namespace; true if it is answered with result 0.
miniupnpd_answers() {
	if [ -n "${NPC_BIN:-}" ] && [ -x "$NPC_BIN" ]; then
		ip netns exec "$LAN" "$NPC_BIN" -g "${GW:-192.168.77.1}" -r 1 -t 200 address 2>/dev/null | grep -q 'result=0 '
		return
	fi
	# shellcheck disable=SC2016
	ip netns exec "$LAN" "${PYTHON:-python3}" -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(0.2)
s.sendto(b"\0\0", (sys.argv[1], 5351))
try:
    d = s.recv(64)
except OSError:
    sys.exit(1)
sys.exit(0 if len(d) == 12 and d[0] == 0 and d[1] == 128 and d[2:4] == b"\0\0" else 1)
' "${GW:-192.168.77.1}" 2>/dev/null
}

# miniupnpd_start: nft objects, STUN responder, config, daemon; returns once
# it answers opcode 0 with result 0 (within $MINIUPNPD_START_WAIT s), or 1
# with its log on stderr.
miniupnpd_start() {
	local pidfile=$LAB_DIR/miniupnpd.pid log=$LAB_DIR/miniupnpd.log fifo=$LAB_DIR/miniupnpd.console
	if [ -n "$MINIUPNPD_PID" ]; then
		_mu_log "already running (pid $MINIUPNPD_PID)"
		return 1
	fi
	[ -x "$MINIUPNPD_BIN" ] || { _mu_log "no $MINIUPNPD_BIN: call miniupnpd_install"; return 1; }
	miniupnpd_nft_up || { _mu_log "could not create table inet $MINIUPNPD_TABLE in $RTR"; return 1; }
	if [ -z "$MINIUPNPD_STUN_PID" ]; then
		miniupnpd_stun_start || return 1
	fi
	miniupnpd_conf
	rm -f "$pidfile"
	: >"$LAB_DIR/miniupnpd.leases" # empty: no mappings restored from a previous run
	if [ -z "$MINIUPNPD_LOGGER_PID" ]; then
		rm -f "$fifo"
		mkfifo "$fifo" || return 1
		# Opened read-write so that it never sees end-of-file: syslog opens
		# and closes the console for every line.
		cat 0<>"$fifo" >>"$log" 2>/dev/null &
		MINIUPNPD_LOGGER_PID=$!
	fi
	echo "--- $(date '+%F %T') starting $MINIUPNPD_BIN -f $LAB_DIR/miniupnpd.conf" >>"$log"
	# The launcher returns once the daemon has forked (or failed early, with
	# its message on stderr, hence the log).
	# shellcheck disable=SC2016
	ip netns exec "$RTR" unshare --mount --propagation private -- sh -c '
		mount --bind "$1" /dev/console || exit 1
		exec "$2" -f "$3" -P "$4"
	' sh "$fifo" "$MINIUPNPD_BIN" "$LAB_DIR/miniupnpd.conf" "$pidfile" </dev/null >>"$log" 2>&1
	local rc=$? i pid=""
	local tries=$((MINIUPNPD_START_WAIT * 10))
	for i in $(seq 1 "$tries"); do
		if [ -z "$pid" ] && [ -s "$pidfile" ]; then
			pid=$(cat "$pidfile")
			MINIUPNPD_PID=$pid
		fi
		if [ -n "$pid" ]; then
			kill -0 "$pid" 2>/dev/null || break
			miniupnpd_answers && return 0
		elif [ "$rc" != 0 ] || [ "$i" -gt 50 ]; then
			break # it failed before forking, or never wrote its pidfile
		fi
		sleep 0.1
	done
	_mu_log "miniupnpd did not start answering (launcher exit $rc); its log:"
	sleep 0.2 # the logger may be behind
	tr -d '\r' <"$log" >&2
	_mu_log "the STUN responder's log:"
	cat "$LAB_DIR/stun.log" >&2
	miniupnpd_stop
	return 1
}

# miniupnpd_stop: SIGTERM to the daemon (SIGKILL after 5 s), then its nft
# table, the STUN responder and the log drain are removed.  Safe to call
# when nothing is running, and more than once.
miniupnpd_stop() {
	local pid=${MINIUPNPD_PID:-} pidfile=${LAB_DIR:-/nonexistent}/miniupnpd.pid
	[ -z "$pid" ] && [ -s "$pidfile" ] && pid=$(cat "$pidfile")
	if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = miniupnpd ]; then
		kill -TERM "$pid" 2>/dev/null
		for _ in $(seq 1 100); do
			[ -e "/proc/$pid" ] || break
			sleep 0.05
		done
		if [ -e "/proc/$pid" ]; then
			_mu_log "miniupnpd (pid $pid) ignored SIGTERM for 5 s: SIGKILL"
			kill -KILL "$pid" 2>/dev/null
			sleep 0.1
		fi
	fi
	MINIUPNPD_PID=""
	rm -f "$pidfile"
	[ -n "${RTR:-}" ] && miniupnpd_nft_down
	miniupnpd_stun_stop
	if [ -n "$MINIUPNPD_LOGGER_PID" ]; then
		kill "$MINIUPNPD_LOGGER_PID" 2>/dev/null
		wait "$MINIUPNPD_LOGGER_PID" 2>/dev/null
		MINIUPNPD_LOGGER_PID=""
	fi
	return 0
}

# lab.sh's EXIT trap calls lab_cleanup by name: make it stop miniupnpd first.
if declare -F lab_cleanup >/dev/null && ! declare -F _miniupnpd_lab_cleanup >/dev/null; then
	eval "$(declare -f lab_cleanup | sed '1s/^lab_cleanup/_miniupnpd_lab_cleanup/')"
	lab_cleanup() {
		miniupnpd_stop
		_miniupnpd_lab_cleanup
	}
fi
