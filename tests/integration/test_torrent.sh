#!/bin/bash
# test_torrent.sh - real torrent clients on the LAN, side by side: qBittorrent
# (qbittorrent-nox 4.5 with libtorrent 2.0) maps its port by PCP, over IPv4
# and, for its IPv6 addresses, as pinholes over IPv6; Transmission and
# natpmpc map by NAT-PMP; a WAN peer reaches qBittorrent over TCP (a
# connection it accepts) and UDP (its uTP answering) through the forwards
# and pinholes, past the router owner's IPv6 firewall, and each client's
# mappings are where it asked for them.
. "$(dirname "$0")/lab.sh"
lab_require qbittorrent-nox transmission-daemon natpmpc curl
lab_up
lab_ipv6
daemon_start --log-level info --http-listen 127.0.0.1:18089 --allowed-ports 1024-65535

metric() { in_rtr curl -sS -m 5 http://127.0.0.1:18089/metrics | awk -v k="$1" '$1 == k { print $2 }'; }
at_least() { local v; v=$("$2" "$3"); [ "${v:-0}" -ge "$1" ] || { echo "       $3 is ${v:-nothing}, not at least $1"; return 1; }; }

# --- qBittorrent, port forwarding on (its default), peer port 51413 ---
QB=$LAB_DIR/qbittorrent
mkdir -p "$QB/qBittorrent/config"
cat >"$QB/qBittorrent/config/qBittorrent.conf" <<'CONF'
[LegalNotice]
Accepted=true

[BitTorrent]
Session\Port=51413

[Preferences]
Connection\UPnP=true
WebUI\Port=18090
WebUI\LocalHostAuth=false
CONF
in_lan env HOME="$QB" qbittorrent-nox --profile="$QB" >"$LAB_DIR/qbittorrent.log" 2>&1 &
QB_PID=$!
check "qBittorrent maps TCP and UDP 51413 by PCP (natpmp_pcp_requests_total{opcode=\"map\",result=\"0\"})" \
	within 60 at_least 2 metric 'natpmp_pcp_requests_total{opcode="map",result="0"}'
check "... for its LAN address, on the port it asked for" \
	eval 'kernel_has tcp 51413 $CLIENT 51413 && kernel_has udp 51413 $CLIENT 51413'
check "... and not by the NAT-PMP fallback (no NAT-PMP map request answered)" \
	eq "$(metric 'natpmp_requests_total{opcode="1",result="0"}') $(metric 'natpmp_requests_total{opcode="2",result="0"}')" "0 0"
check "... the daemon's /mappings says PCP" \
	eval 'in_rtr curl -sS -m 5 http://127.0.0.1:18089/mappings | grep -q "\"internal_port\": *51413[^}]*\"origin\": *\"pcp\""'

# A WAN peer: a TCP connection qBittorrent accepts, and a uTP SYN (BEP 29) on UDP that its uTP stack
# answers (with ST_STATE, or ST_FIN when it takes no connection), naming the SYN's connection id.
tcp_accepts() {
	in_wan $PYTHON -c 'import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3)
s.close()' "${1:-$EXT}" 51413 2>&1
}
utp_answers() {
	in_wan $PYTHON -c 'import socket, struct, sys, time
s = socket.socket(socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
syn = struct.pack(">BBHIIIHH", 0x41, 0, 4242, int(time.time() * 1e6) & 0xffffffff, 0, 65536, 1, 0)
s.sendto(syn, (sys.argv[1], int(sys.argv[2])))
data, peer = s.recvfrom(2048)
sys.exit(0 if len(data) >= 20 and data[0] & 15 == 1 and data[0] >> 4 in (1, 2) and data[2:4] == struct.pack(">H", 4242) else 1)' "${1:-$EXT}" 51413 2>&1
}
check "a WAN peer's TCP connection to $EXT:51413 reaches qBittorrent" within 20 tcp_accepts
check "a WAN peer's uTP SYN to $EXT:51413 (UDP) is answered by qBittorrent" within 20 utp_answers

# --- and over IPv6: pinholes for its own addresses, by PCP over IPv6 ---
# (protocols as numbers: a minimal system has no /etc/protocols to name them)
pinholes() { in_rtr nft -p list set ip6 natpmp pinholes 2>&1; }
has_pinholes() { pinholes | grep -q "$CLIENT6 . 6 . 51413" && pinholes | grep -q "$CLIENT6 . 17 . 51413"; }
check "qBittorrent opens TCP and UDP pinholes for $CLIENT6:51413 by PCP over IPv6" within 30 has_pinholes
check "a WAN peer's TCP connection to [$CLIENT6]:51413 gets through the owner's firewall to qBittorrent" \
	within 20 tcp_accepts $CLIENT6
check "... and its uTP SYN over IPv6 is answered" within 20 utp_answers $CLIENT6

# --- Transmission beside it, port forwarding on, peer port 51414: NAT-PMP ---
TR=$LAB_DIR/transmission
mkdir -p "$TR"
nat0=$(metric 'natpmp_requests_total{opcode="2",result="0"}')
in_lan transmission-daemon -f -g "$TR" -P 51414 -p 19091 --portmap --no-auth --log-error \
	>"$LAB_DIR/transmission.log" 2>&1 &
TR_PID=$!
check "Transmission maps TCP 51414 by NAT-PMP beside it (opcode 2 answered with result 0)" \
	within 60 at_least $((nat0 + 1)) metric 'natpmp_requests_total{opcode="2",result="0"}'
check "... to its own port" within 10 kernel_to any 51414

# --- natpmpc (libnatpmp) too ---
OUT=$(in_lan natpmpc -g $GW -a 6881 6881 udp 600 2>&1)
check "natpmpc maps UDP 6881 by NAT-PMP" eval 'grep -q "Mapped public port 6881 protocol UDP to local port 6881" <<<"$OUT"'
check "... and qBittorrent's PCP mappings are still there" \
	eval 'kernel_has tcp 51413 $CLIENT 51413 && kernel_has udp 51413 $CLIENT 51413'

# in_lan ... & is a subshell: the clients are its children.
pkill -TERM -P "$TR_PID" 2>/dev/null
pkill -TERM -P "$QB_PID" 2>/dev/null
wait "$TR_PID" "$QB_PID" 2>/dev/null

lab_finish
