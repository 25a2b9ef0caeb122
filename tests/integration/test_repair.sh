#!/bin/bash
# test_repair.sh - the daemon's table comes back within a second when someone
# else removes or changes it (nft flush ruleset, a firewall reload, nft
# delete ...), and then holds exactly the daemon's mappings.
. "$(dirname "$0")/lab.sh"
lab_up
daemon_start
npc map tcp 8080 40000 3600
npc map udp 5353 40001 3600

# restored_within MS: the kernel's map again holds exactly our two mappings, checked every 50 ms.
restored_within() {
	for _ in $(seq 1 $(($1 / 50))); do
		if [ "$(nft_count)" = 2 ] && nft_map | grep -q 'tcp . 40000 ' && nft_map | grep -q 'udp . 40001 '; then
			return 0
		fi
		sleep 0.05
	done
	return 1
}
repairs() { grep -c "restored table ip natpmp" "$LOG"; }

in_rtr nft flush ruleset
check "nft flush ruleset: the table is back with both mappings within 1 s" restored_within 1000
check "... TCP forwards again" forward tcp 40000 8080
check "... the log names who did it, once" bash -c "[ \"\$(grep -c 'was changed by nft (pid [0-9]*)' $LOG)\" = 1 ]"

in_rtr nft delete table ip natpmp
check "nft delete table ip natpmp: back within 1 s" restored_within 1000
check "... UDP forwards again" forward udp 40001 5353

# A reload the way NixOS and Debian do it: one nft -f with flush ruleset and a new ruleset.
in_rtr nft -f - <<'NFT'
flush ruleset
table inet filter {
	chain forward { type filter hook forward priority filter; policy accept; }
}
NFT
check "a firewall reload (nft -f with flush ruleset): back within 1 s" restored_within 1000
check "... and the reloaded ruleset is left as it was" bash -c "ip netns exec $RTR nft list table inet filter | grep -q 'hook forward'"

in_rtr nft delete element ip natpmp mappings '{ tcp . 40000 }'
check "one element deleted by hand: back within 1 s" restored_within 1000

in_rtr nft add element ip natpmp mappings '{ tcp . 41000 : 192.168.77.9 . 22 }'
check "an element added by hand: removed within 1 s (only the daemon's mappings are forwarded)" restored_within 1000

in_rtr nft delete chain ip natpmp postrouting
check "a chain deleted: back within 1 s" \
	bash -c "for i in \$(seq 1 20); do ip netns exec $RTR nft list chain ip natpmp postrouting >/dev/null 2>&1 && exit 0; sleep 0.05; done; exit 1"

before=$(repairs)
npc map tcp 8081 40002 3600
npc map tcp 8081 0 0
sleep 0.5
check "the daemon's own changes never count as someone else's" eq "$(repairs)" "$before"
echo "figure: $(repairs) repairs logged for 6 foreign changes"

lab_finish
