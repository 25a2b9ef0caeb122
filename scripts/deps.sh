#!/bin/sh
# deps.sh - install what building, the demo and the tests need on Debian 12,
# and nothing when it is all there already.  Needs root for apt-get.
set -eu

PACKAGES="gcc meson ninja-build pkg-config libevent-dev libnftnl-dev libmnl-dev libjson-c-dev systemd strace
nftables iproute2 natpmpc conntrack python3 valgrind procps clang libclang-rt-14-dev"

missing=""
for p in $PACKAGES; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
	echo "deps.sh: missing packages:$missing; run as root (or install them) and try again" >&2
	exit 1
fi
echo "deps.sh: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
