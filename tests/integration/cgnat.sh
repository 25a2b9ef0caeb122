# cgnat.sh - the lab behind a carrier-grade NAT; source it after lab.sh.
#
#   LAN ns ------ router ns -------------------- CGN ns ---------------------- WAN ns
#   vl<id>        vr<id> 192.168.77.1            vc<id> 100.64.0.1            vw<id> 198.51.100.2  (PEER)
#   .2, .3        vx<id> 100.64.0.2 (external)   vo<id> 198.51.100.1                 198.51.100.10 (STUN1)
#                 default via 100.64.0.1         (CGN_PUBLIC, = EXT)                 198.51.100.11 (STUN2)
#
# The router's external address is in the shared space (RFC 6598); the
# carrier's NAT in the CGN namespace is the only way out, and the WAN has no
# route back to 100.64/10.  lab_up_cgnat MODE builds it, with the CGN
# behaving as MODE says (RFC 4787 terms):
#
#   fullcone    endpoint-independent mapping and filtering, port-translating:
#               router port L leaves as CGN_PUBLIC:cgnat_public_port L (L moved
#               by CGN_OFFSET inside 1024-65535), for every destination and
#               for UDP and TCP alike.  Anyone on the WAN reaches
#               RTR_WAN_ADDR:L through CGN_PUBLIC:that port while the binding
#               (protocol, L) is alive: outbound packets from L make and
#               refresh it, CGN_UDP_TIMEOUT / CGN_TCP_TIMEOUT seconds without
#               one end it (set them before lab_up_cgnat).  The whole of
#               1024-65535 is translated, onto itself, so a daemon may use
#               any port there; ports below 1024 are only masqueraded.
#   restricted  plain masquerade: port-preserving in practice, with
#               address-and-port-dependent filtering (conntrack's).
#   symmetric   masquerade fully-random: address-and-port-dependent mapping.
#
# cgnat_renumber (fullcone) is the carrier's NAT restarting: another offset,
# its conntrack table and bindings gone, so the next packet from L leaves
# from another public port.  stun_start runs coturn in STUN-only mode on
# STUN1 and STUN2, ports 3478 and 3479 (RFC 5780: OTHER-ADDRESS,
# CHANGE-REQUEST); http_keepalive_start an HTTP/1.1 server on HTTP_KEEPALIVE
# that keeps connections open, for TCP keep-alives through the CGN.
#
# STUN_TCP_LIFETIME: coturn resets each STUN-over-TCP connection that many
# seconds after it opened, however busy it is (see stun_start).
#
# The CGN namespace is in LAB_NETNS and the servers are stopped on exit, so
# everything goes with lab.sh's cleanup, also when a test fails.
lab_require conntrack turnserver

CGN=npn-$LAB_ID
CGN_IN_IF=vc$LAB_ID CGN_OUT_IF=vo$LAB_ID
RTR_WAN_ADDR=100.64.0.2
CGN_INSIDE=100.64.0.1
CGN_PUBLIC=$EXT # the WAN side of lab_wan is the CGN's: 198.51.100.1
STUN1=198.51.100.10
STUN2=198.51.100.11
STUN_PORT=3478
STUN_ALT_PORT=3479 # coturn's alternate port, RFC 5780's "other" port
HTTP_KEEPALIVE=198.51.100.10:8080
CGN_UDP_TIMEOUT=${CGN_UDP_TIMEOUT:-10}
CGN_TCP_TIMEOUT=${CGN_TCP_TIMEOUT:-20}
# fullcone: the translated range, and how far a port is moved inside it.
CGN_PORT_MIN=1024
CGN_PORT_MAX=65535
CGN_OFFSET=${CGN_OFFSET:-1000}
CGN_MODE=""
STUN_PID=""
STUN_LOG=$LAB_DIR/turnserver.log
STUN_TCP_LIFETIME=${STUN_TCP_LIFETIME:-3}
HTTP_KEEPALIVE_PID=""
HTTP_KEEPALIVE_LOG=$LAB_DIR/keepalive_http.out

in_cgn() { ip netns exec "$CGN" "$@"; }

# The servers are stopped before lab.sh's cleanup, which only TERMs the
# shell's jobs without waiting: one slow to go would outlive its namespace.
cgnat_cleanup() {
	[ -n "$STUN_PID" ] && stop_pid "$STUN_PID" TERM
	[ -n "$HTTP_KEEPALIVE_PID" ] && stop_pid "$HTTP_KEEPALIVE_PID" TERM
	lab_cleanup
}
trap cgnat_cleanup EXIT

# lab_up_cgnat fullcone|restricted|symmetric: the lab above.
lab_up_cgnat() {
	case ${1:-} in
	fullcone | restricted | symmetric) CGN_MODE=$1 ;;
	*) lab_fail "lab_up_cgnat: no such mode '${1:-}' (fullcone, restricted, symmetric)" ;;
	esac
	LAB_NETNS="$LAB_NETNS $CGN"
	lab_netns "$LAN" "$RTR" "$CGN" "$WAN"
	lab_lan
	lab_link "$RTR" "$RTR_WAN_IF" $RTR_WAN_ADDR/24 "$CGN" "$CGN_IN_IF" $CGN_INSIDE/24
	ip -n "$RTR" route add default via $CGN_INSIDE
	lab_wan "$CGN" "$CGN_OUT_IF"
	ip -n "$WAN" addr add $STUN1/24 dev "$WAN_IF"
	ip -n "$WAN" addr add $STUN2/24 dev "$WAN_IF"
	in_cgn sysctl -qw net.ipv4.ip_forward=1
	cgnat_nft
	mkdir -p "$STATE_DIR"
}

# cgnat_public_port L: the public port of router port L in fullcone mode now.
cgnat_public_port() {
	local span=$((CGN_PORT_MAX - CGN_PORT_MIN + 1))
	echo $(((($1 - CGN_PORT_MIN + CGN_OFFSET) % span + span) % span + CGN_PORT_MIN))
}

# cgnat_port_maps: nft commands filling the maps "out" (L : public port) and
# "in" (public port : L) for CGN_OFFSET.  Printed in one go: built up as awk
# strings, 64512 elements take half a minute.
cgnat_port_maps() {
	awk -v min=$CGN_PORT_MIN -v max=$CGN_PORT_MAX -v off="$CGN_OFFSET" '
	function pub(l) { return ((l - min + off) % span + span) % span + min }
	BEGIN {
		span = max - min + 1
		printf "add element ip cgn out { "
		for (l = min; l <= max; l++) printf "%s%d : %d", (l > min ? ", " : ""), l, pub(l)
		printf " }\nadd element ip cgn in { "
		for (l = min; l <= max; l++) printf "%s%d : %d", (l > min ? ", " : ""), pub(l), l
		print " }"
	}'
}

# cgnat_nft: the CGN's table for CGN_MODE.  Conntrack's own timeouts follow
# the binding times, so a restricted or symmetric CGN forgets as fast.
cgnat_nft() {
	# The sysctls exist once the namespace uses conntrack: the table comes first.
	{
		echo "table ip cgn {"
		echo "	chain forward {"
		echo "		type filter hook forward priority filter; policy accept;"
		# A carrier forwards its subscribers' addresses only (no un-NATed LAN
		# traffic sneaking out: the router must masquerade it).
		echo "		iifname \"$CGN_IN_IF\" ip saddr != 100.64.0.0/10 drop"
		echo "	}"
		echo "}"
	} | in_cgn nft -f - || lab_fail "cannot load the CGN's table"
	must in_cgn sysctl -qw net.netfilter.nf_conntrack_udp_timeout="$CGN_UDP_TIMEOUT" \
		net.netfilter.nf_conntrack_udp_timeout_stream="$CGN_UDP_TIMEOUT" \
		net.netfilter.nf_conntrack_tcp_timeout_established="$CGN_TCP_TIMEOUT"
	case $CGN_MODE in
	restricted | symmetric)
		local how=masquerade
		[ "$CGN_MODE" = symmetric ] && how="masquerade fully-random"
		in_cgn nft -f - <<-EOF || lab_fail "cannot load the CGN's NAT"
		table ip cgn {
			chain postrouting {
				type nat hook postrouting priority srcnat; policy accept;
				oifname "$CGN_OUT_IF" ip saddr 100.64.0.0/10 $how
			}
		}
		EOF
		;;
	fullcone)
		# out/in: the translation both ways (static, all of the range: nft
		# has no arithmetic on ports).  alive: the bindings, (protocol, L),
		# made and refreshed by what leaves from L; on the way in, new flows
		# and answers alike pass only to a port with a live binding.
		{
			cat <<-EOF
			table ip cgn {
				map out { type inet_service : inet_service; }
				map in { type inet_service : inet_service; }
				set alive { type inet_proto . inet_service; flags dynamic, timeout; }
				chain prerouting {
					type nat hook prerouting priority dstnat; policy accept;
					iifname "$CGN_OUT_IF" ip daddr $CGN_PUBLIC meta l4proto { tcp, udp } dnat ip to $RTR_WAN_ADDR : th dport map @in;
				}
				chain postrouting {
					type nat hook postrouting priority srcnat; policy accept;
					oifname "$CGN_OUT_IF" ip saddr $RTR_WAN_ADDR meta l4proto { tcp, udp } snat ip to $CGN_PUBLIC : th sport map @out;
					oifname "$CGN_OUT_IF" ip saddr 100.64.0.0/10 masquerade
				}
				chain forward {
					iifname "$CGN_IN_IF" ip saddr $RTR_WAN_ADDR meta l4proto udp update @alive { meta l4proto . th sport timeout ${CGN_UDP_TIMEOUT}s }
					iifname "$CGN_IN_IF" ip saddr $RTR_WAN_ADDR meta l4proto tcp update @alive { meta l4proto . th sport timeout ${CGN_TCP_TIMEOUT}s }
					iifname "$CGN_OUT_IF" ip daddr $RTR_WAN_ADDR meta l4proto { tcp, udp } meta l4proto . th dport != @alive drop
				}
			}
			EOF
			cgnat_port_maps
		} | in_cgn nft -f - || lab_fail "cannot load the CGN's full-cone NAT"
		;;
	esac
}

# cgnat_become MODE: the CGN replaced by one of another MODE, its state gone.
cgnat_become() {
	must in_cgn nft flush ruleset
	CGN_MODE=$1
	cgnat_nft
	must in_cgn conntrack -F
}

# cgnat_renumber: the full-cone CGN restarts: the next offset, and its
# conntrack table and bindings flushed (after the new maps are in, so no
# flow is made with the old ones in between).
cgnat_renumber() {
	[ "$CGN_MODE" = fullcone ] || lab_fail "cgnat_renumber needs lab_up_cgnat fullcone, not '$CGN_MODE'"
	CGN_OFFSET=$((CGN_OFFSET + 1000))
	{
		echo "flush map ip cgn out"
		echo "flush map ip cgn in"
		echo "flush set ip cgn alive"
		cgnat_port_maps
	} | in_cgn nft -f - || lab_fail "cannot renumber the CGN"
	# Flows that outlived it would keep their old ports.  (Not "the table is
	# empty" afterwards: a daemon's keep-alive may make a new flow at once.)
	must in_cgn conntrack -F
}

# cgnat_bindings: the CGN's NAT state (conntrack entries, live bindings), for a failing test's output.
cgnat_bindings() {
	echo "CGN ($CGN_MODE, offset $CGN_OFFSET) conntrack:"
	in_cgn conntrack -L 2>/dev/null | sed 's/^/  /'
	if [ "$CGN_MODE" = fullcone ]; then
		echo "CGN bindings:"
		in_cgn nft list set ip cgn alive | sed -n 's/^/  /; /elements/,/}/p' | grep . || echo "  (none)"
	fi
}

# cgnat_router_masquerade: the router owner's masquerade for LAN hosts
# without a mapping (the CGN drops what is not from 100.64/10).  It runs
# after the daemon's postrouting (srcnat - 10), which NATs mapped sources.
cgnat_router_masquerade() {
	in_rtr nft -f - <<-EOF || lab_fail "cannot load the router's masquerade"
	table ip labnat {
		chain postrouting {
			type nat hook postrouting priority srcnat; policy accept;
			oifname "$RTR_WAN_IF" masquerade
		}
	}
	EOF
}

# stun_answers NS ADDR PORT [tcp]: a STUN Binding request (RFC 5389) from
# namespace NS to ADDR:PORT, over UDP or TCP, gets its success response
# within 0.3 s.
stun_answers() {
	ip netns exec "$1" "$PYTHON" - "$2" "$3" "${4:-udp}" <<-'PY'
	import os, socket, struct, sys
	tcp = sys.argv[3] == "tcp"
	s = socket.socket(socket.AF_INET, socket.SOCK_STREAM if tcp else socket.SOCK_DGRAM)
	s.settimeout(0.3)
	s.connect((sys.argv[1], int(sys.argv[2])))
	tid = os.urandom(12)
	s.send(struct.pack("!HHI", 1, 0, 0x2112A442) + tid)
	data = s.recv(2048)
	sys.exit(0 if data[:2] == b"\x01\x01" and data[8:20] == tid else 1)
	PY
}

# stun_start: coturn as a STUN-only server on STUN1 and STUN2, ports
# STUN_PORT and STUN_ALT_PORT, UDP and TCP; waits until all eight
# listeners answer (asked from the WAN itself, which leaves no binding in
# the CGN).  -n: no /etc/turnserver.conf; every file it writes (log, pid,
# its SQLite user database) is under LAB_DIR; no CLI (a TCP port on
# 127.0.0.1), no TLS or DTLS (no certificate), no SOFTWARE attribute.
# RFC 5780 (OTHER-ADDRESS, CHANGE-REQUEST) is on by itself with two
# listening addresses.  coturn resets every STUN-only TCP connection
# STUN_TCP_LIFETIME seconds after it was opened, however busy
# (--max-allocate-timeout, 3 s by default): a TCP keep-alive needs the
# HTTP server, not the STUN connection.
stun_start() {
	ip netns exec "$WAN" turnserver -n --stun-only -L $STUN1 -L $STUN2 \
		--listening-port $STUN_PORT --alt-listening-port $STUN_ALT_PORT \
		--max-allocate-timeout="$STUN_TCP_LIFETIME" \
		--no-cli --no-tls --no-dtls --no-software-attribute \
		--log-file "$STUN_LOG" --simple-log --no-stdout-log \
		--pidfile "$LAB_DIR/turnserver.pid" --db "$LAB_DIR/turndb" >>"$STUN_LOG.out" 2>&1 &
	STUN_PID=$!
	local a p t
	for a in $STUN1 $STUN2; do
		for p in $STUN_PORT $STUN_ALT_PORT; do
			for t in udp tcp; do
				within 20 stun_answers "$WAN" "$a" "$p" "$t" >/dev/null && continue
				echo "coturn does not answer on $t $a:$p; its log:"
				cat "$STUN_LOG" "$STUN_LOG.out" 2>/dev/null | tail -n 40
				exit 1
			done
		done
	done
}

# stun_stop: the STUN server goes (an unreachable STUN server).
stun_stop() {
	[ -n "$STUN_PID" ] || return 0
	stop_pid "$STUN_PID" TERM
	STUN_PID=""
}

# http_keepalive_start [SECONDS]: keepalive_http.py on HTTP_KEEPALIVE in the
# WAN (for SECONDS, 600 by default); its request lines in HTTP_KEEPALIVE_LOG.
http_keepalive_start() {
	ip netns exec "$WAN" "$PYTHON" "$LAB_SRC/keepalive_http.py" "${HTTP_KEEPALIVE%:*}" "${HTTP_KEEPALIVE#*:}" \
		"${1:-600}" >"$HTTP_KEEPALIVE_LOG" 2>&1 &
	HTTP_KEEPALIVE_PID=$!
	await_listening "$HTTP_KEEPALIVE_LOG" || lab_fail "the keep-alive HTTP server did not start: $(cat "$HTTP_KEEPALIVE_LOG")"
}

# http_keepalive_stop: the keep-alive HTTP server goes, closing its connections.
http_keepalive_stop() {
	[ -n "$HTTP_KEEPALIVE_PID" ] || return 0
	stop_pid "$HTTP_KEEPALIVE_PID" TERM
	HTTP_KEEPALIVE_PID=""
}
