#!/bin/bash
# test_protocol.sh - RFC 6886 on the wire, over real sockets in the lab: every
# reply shape, who gets answered and from where.
. "$(dirname "$0")/lab.sh"
lab_up
daemon_start

# --- opcode 0 ---
npc address
check "opcode 0: 12-byte reply with the external IPv4 address" \
	eq "$(field len) $(field opcode) $(field result) $(field address)" "12 128 0 $EXT"
check "replies come from gateway port 5351" eq "$(field from)" "$GW:5351"

must ip -n "$RTR" addr del $EXT/24 dev "$RTR_WAN_IF"
no_address() { npc address; eq "$(field len) $(field result) $(field address)" "12 3 0.0.0.0"; }
check "opcode 0 with no external address: result 3 and 0.0.0.0" within 5 no_address
must ip -n "$RTR" addr add $EXT/24 dev "$RTR_WAN_IF"
address_back() { npc address; eq "$(field result) $(field address)" "0 $EXT"; }
check "opcode 0 reports the address again once it is back" within 5 address_back

# --- opcodes 1 and 2 ---
npc map tcp 8080 40000 3600
check "opcode 2: exactly 16 bytes, opcode 130, internal port echoed" \
	eq "$(field len) $(field opcode) $(field result) $(field internal) $(field external) $(field lifetime)" \
	"16 130 0 8080 40000 3600"
npc map udp 8080 40000 3600
check "opcode 1: exactly 16 bytes, opcode 129" \
	eq "$(field len) $(field opcode) $(field result) $(field internal)" "16 129 0 8080"

# Reserved field 0xabcd and four trailing bytes: internal 8081, suggested 40001, 3600 s.
npc raw 0002abcd1f919c4100000e10deadbeef
check "reserved field and trailing bytes are ignored" \
	eq "$(field len) $(field opcode) $(field result) $(field internal) $(field external)" "16 130 0 8081 40001"

check "a map request shorter than 12 bytes is dropped" no_reply raw 00021f90
check "a 1-byte datagram is dropped" no_reply raw 00

# --- other versions: PCP's (RFC 6887 9; PCP itself is test_pcp.sh's) ---
npc raw 0100
check "version 1: PCP's UNSUPP_VERSION, 24 bytes, naming version 2, result 1" \
	eq "$(field len) $(field version) $(field opcode) $(field result)" "24 2 128 1"
# qBittorrent (libtorrent) sends a 60-byte PCP MAP request first: PCP answers it (here, protocol 0: result 9).
pcp=0201000000000e1000000000000000000000ffffc0a84d02
pcp=$pcp$(printf '%072d' 0)
npc raw $pcp
check "a 60-byte PCP MAP request gets a 60-byte PCP answer, not NAT-PMP's fallback" \
	eq "$(field len) $(field version) $(field opcode)" "60 2 129"
check "a 2-byte version 2 datagram is dropped (RFC 6887 8.2: under 24 bytes)" no_reply raw 0207

# --- opcodes the server does not serve ---
check "opcode 128 (a response) gets no reply" no_reply raw 0080000000000000
check "opcode 130 (a response) gets no reply" no_reply raw 0082000000001f901f9000000e10
npc raw 000300001122
check "opcode 3: the request echoed with the top bit and result 5" eq "$(field hex)" "008300051122"
npc raw 007f
check "opcode 127: echoed with result 5" eq "$(field opcode) $(field result)" "255 5"

# --- epoch ---
npc address
e1=$(field epoch)
up=$((($(now_ms) - DAEMON_STARTED_MS) / 1000))
t1=$(now_ms)
sleep 2
npc address
e2=$(field epoch)
passed=$((($(now_ms) - t1) / 1000))
check "every reply carries the epoch: seconds since the table began ($e1 after ${up} s, then $e2 ${passed} s later)" \
	test "$e1" -ge 0 -a "$e1" -le $((up + 1)) -a "$e2" -ge $((e1 + passed - 1)) -a "$e2" -le $((e1 + passed + 1))

# --- who is answered, and from where ---
npc -s 5350 address
check "reply goes to the request's source port (node clients send from 5350)" eq "$(field result)" "0"
npc -s 5350 map tcp 9000 9000 60
check "a map request from port 5350 is answered too" eq "$(field result) $(field external)" "0 9000"

OUT=$(in_lan "$NPC_BIN" -g 192.168.77.254 address 2>&1)
check "reply comes from the exact address the request was sent to" eq "$(field from)" "192.168.77.254:5351"

ip -n "$LAN" addr add 10.9.9.9/32 dev "$LAN_IF"
ip -n "$RTR" route add 10.9.9.9/32 dev "$RTR_LAN_IF"
check "a source outside the listen interface's subnets gets no reply" no_reply -b 10.9.9.9 address
check "... and the log says why" logged "not inside its subnets"

# A subnet added to the LAN interface while the daemon runs is served at once.
must ip -n "$RTR" addr add 10.20.0.1/24 dev "$RTR_LAN_IF"
must ip -n "$LAN" addr add 10.20.0.2/24 dev "$LAN_IF"
new_subnet() { npc -g 10.20.0.1 -b 10.20.0.2 -r 1 -t 250 address; eq "$(field result) $(field from)" "0 10.20.0.1:5351"; }
check "a subnet added to the LAN interface at run time is served, from its own address" within 5 new_subnet

# A request claiming one of the router's own addresses as its source (possible
# with accept_local) is not a client: it would map ports to the router itself.
in_rtr sysctl -qw net.ipv4.conf.all.accept_local=1 net.ipv4.conf.all.rp_filter=0 \
	"net.ipv4.conf.$RTR_LAN_IF.accept_local=1" "net.ipv4.conf.$RTR_LAN_IF.rp_filter=0"
must ip -n "$LAN" addr add 192.168.77.254/32 dev "$LAN_IF"
ignored=$(log_count "from 192.168.77.254: not inside its subnets")
npc -b 192.168.77.254 -r 1 -t 500 map tcp 23 40031 3600
check "a source that is the router's own (second) LAN address is not served: nothing is mapped" kernel_lacks tcp 40031
check "... the daemon saw the request and ignored it" \
	within 5 more_than "$ignored" log_count "from 192.168.77.254: not inside its subnets"
must ip -n "$LAN" addr del 192.168.77.254/32 dev "$LAN_IF"

check "a request a LAN host sends to the external address is not answered (RFC 6886 3.3)" \
	no_reply -g $EXT map tcp 2222 2222 3600
check "... and the log says why" logged "sent to $EXT, not to an address of"
check "... and nothing is mapped" kernel_lacks tcp 2222

wan_no_reply() { OUT=$(in_wan "$NPC_BIN" -g $EXT -r 1 -t 1000 "$@" 2>&1); eq "$OUT" "no reply" && daemon_alive; }
check "nothing is answered on the external interface" wan_no_reply address
check "... not even a map request" wan_no_reply map tcp 22 22 3600
no_wan_client() { ! nft_map | grep -q " 198\.51\.100\." && nft_map >/dev/null; }
check "... and nothing was mapped for the WAN" no_wan_client

# --- time from request to answer, for the record (the lab runs it with --rate-limit 0) ---
rtts=""
for i in $(seq 1 200); do
	npc -r 1 -t 1000 map tcp $((20000 + i)) 0 60
	rtts="$rtts $(field rtt_us)"
done
sorted=$(printf '%s\n' $rtts | sort -n)
echo "figure: request to answer over the lab's veth, 200 new TCP mappings one at a time:" \
	"p50 $(sed -n 100p <<<"$sorted") us, p99 $(sed -n 198p <<<"$sorted") us, max $(tail -n1 <<<"$sorted") us"
check "200 new mappings in a row were all answered" eq "$(wc -w <<<"$rtts")" "200"

lab_finish
