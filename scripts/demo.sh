#!/bin/sh
# demo.sh - install what is missing, build, and show natpmp-server working in
# three network namespaces made for the demo and removed afterwards:
#
#   lan (192.168.77.2) --- router (192.168.77.1 | 198.51.100.1) --- wan (198.51.100.2)
#
# A LAN client asks the router for a port with natpmpc; a WAN peer then
# connects to the router's public address and reaches the LAN client; the
# HTTP API adds a forward for the client and lists the mappings.
set -eu
cd "$(dirname "$0")/.."
sh scripts/deps.sh
sh scripts/build.sh

if [ "$(id -u)" != 0 ]; then
	echo "demo.sh: network namespaces need root; run it as root" >&2
	exit 1
fi

id=$$
LAN=demo-lan-$id RTR=demo-rtr-$id WAN=demo-wan-$id
STATE=$(mktemp -d)
DAEMON_PID=""

cleanup() {
	set +e # everything below runs, whatever fails
	if [ -n "$DAEMON_PID" ]; then
		kill "$DAEMON_PID" 2>/dev/null
		wait "$DAEMON_PID" 2>/dev/null
	fi
	for ns in $LAN $RTR $WAN; do ip netns del "$ns" 2>/dev/null || true; done
	rm -rf "$STATE"
}
trap cleanup EXIT INT TERM

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
in_ns() { ns=$1; shift; ip netns exec "$ns" "$@"; }

say "building the lab: namespaces $LAN, $RTR, $WAN"
for ns in $LAN $RTR $WAN; do ip netns add "$ns"; in_ns "$ns" ip link set lo up; done
ip link add dl$id netns $LAN type veth peer name dr$id netns $RTR
ip link add dw$id netns $WAN type veth peer name dx$id netns $RTR
in_ns $LAN ip addr add 192.168.77.2/24 dev dl$id
in_ns $LAN ip link set dl$id up
in_ns $LAN ip route add default via 192.168.77.1
in_ns $RTR ip addr add 192.168.77.1/24 dev dr$id
in_ns $RTR ip addr add 198.51.100.1/24 dev dx$id
in_ns $RTR ip link set dr$id up
in_ns $RTR ip link set dx$id up
in_ns $RTR sysctl -qw net.ipv4.ip_forward=1
in_ns $WAN ip addr add 198.51.100.2/24 dev dw$id
in_ns $WAN ip link set dw$id up

say "starting natpmp-server on the router (LAN: dr$id, external: dx$id)"
# Not through in_ns: $! must be the daemon itself, so that cleanup stops it.
# The HTTP API on the router's loopback, with a token for /forward.
TOKEN=demo-token-$id-0123456789
NATPMP_TOKEN=$TOKEN ip netns exec $RTR ./build/natpmp-server --listen-interface dr$id --external-interface dx$id \
	--state-dir "$STATE" --log-level info --http-listen 127.0.0.1:8080 &
DAEMON_PID=$!
i=0
until in_ns $LAN ./build/natpmp-client -g 192.168.77.1 -r 1 address >/dev/null 2>&1; do
	i=$((i + 1))
	[ $i -lt 50 ] || { echo "demo.sh: the daemon did not answer" >&2; exit 1; }
	sleep 0.1
done

say "LAN client: natpmpc -g 192.168.77.1 (public address)"
in_ns $LAN natpmpc -g 192.168.77.1
say "LAN client: natpmpc -g 192.168.77.1 -a 40000 8080 tcp 3600 (public 40000 to local 8080)"
in_ns $LAN natpmpc -g 192.168.77.1 -a 40000 8080 tcp 3600

say "the router's own nftables table"
in_ns $RTR nft list table ip natpmp

say "WAN peer connects to 198.51.100.1:40000; the LAN client listens on 8080"
in_ns $LAN python3 -c '
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 8080)); s.listen(1); s.settimeout(10)
c, peer = s.accept()
print("LAN client: connection from %s:%d says %r" % (peer[0], peer[1], c.recv(100).decode()))
' &
LISTENER=$!
sleep 0.3
in_ns $WAN python3 -c '
import socket
s = socket.create_connection(("198.51.100.1", 40000), timeout=5)
s.sendall(b"hello through the NAT-PMP forward")
print("WAN peer: connected to 198.51.100.1:40000 and sent a greeting")
'
wait $LISTENER

say "HTTP API: a forward for a host that does not speak NAT-PMP, then the list"
in_ns $RTR curl -s -H "Authorization: Bearer $TOKEN" \
	-d '{"internal_ip":"192.168.77.2","internal_port":9000,"protocol":"udp","duration":600}' \
	http://127.0.0.1:8080/forward
in_ns $RTR curl -s -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8080/mappings
in_ns $RTR curl -s -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8080/metrics | grep '^natpmp_mappings'

say "LAN client: delete the mapping"
in_ns $LAN natpmpc -g 192.168.77.1 -a 40000 8080 tcp 0 | tail -n 3
in_ns $RTR nft list map ip natpmp mappings

say "done: stopping the daemon (it removes its table) and the lab"
