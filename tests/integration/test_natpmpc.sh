#!/bin/bash
# test_natpmpc.sh - Debian's natpmpc (libnatpmp) against the daemon, with
# traffic through the forward it asked for.  natpmpc takes the public port
# first (-a PUBLIC PRIVATE PROTO LIFETIME) and prints "liftime".
. "$(dirname "$0")/lab.sh"
lab_require natpmpc
lab_up
daemon_start

OUT=$(in_lan natpmpc -g $GW 2>&1)
check "natpmpc gets the public address" grep -q "Public IP address : $EXT" <<<"$OUT"

OUT=$(in_lan natpmpc -g $GW -a 40000 8080 tcp 3600 2>&1)
check "natpmpc maps a TCP port" grep -q "Mapped public port 40000 protocol TCP to local port 8080 li[f]*e*time 3600" <<<"$OUT"
check "... and the forward carries TCP from the WAN" forward tcp 40000 8080

OUT=$(in_lan natpmpc -g $GW -a 40001 5000 udp 600 2>&1)
check "natpmpc maps a UDP port" grep -q "Mapped public port 40001 protocol UDP to local port 5000 li[f]*e*time 600" <<<"$OUT"
check "... and the forward carries UDP from the WAN" forward udp 40001 5000

OUT=$(in_lan natpmpc -g $GW -a 40000 8080 tcp 0 2>&1)
check "natpmpc deletes its mapping" grep -q "Mapped public port 0 protocol TCP to local port 8080 li[f]*e*time 0" <<<"$OUT"
check "... and the kernel no longer has it" kernel_lacks tcp 40000
check "... while the UDP one stays" kernel_has udp 40001 $CLIENT 5000

lab_finish
