#!/bin/sh
# deps.sh - install what building, the demo and the tests need on Debian 12,
# and nothing when it is all there already.  Needs root for apt-get.
set -eu

PACKAGES="gcc meson ninja-build pkg-config libevent-dev libnftnl-dev libmnl-dev libjson-c-dev systemd strace
nftables iproute2 natpmpc conntrack python3 valgrind procps clang libclang-rt-14-dev curl nix-bin
qbittorrent-nox transmission-daemon coturn"

# promtool checks /metrics.  It comes in Debian's prometheus package, which
# would also install and start a Prometheus server: only the tool is taken,
# unpacked from the package into this directory, when it is not on PATH.
# (A function named promtool would find itself with `command -v promtool`.)
TOOLS=/var/cache/natpmp-server-tests
unpack_promtool() {
	command -v promtool >/dev/null 2>&1 && return 0
	[ -x "$TOOLS/promtool" ] && return 0
	echo "deps.sh: unpacking promtool from Debian's prometheus package into $TOOLS"
	work=$(mktemp -d)
	rc=0
	(cd "$work" && { apt-get download -qq prometheus >/dev/null 2>&1 ||
		{ apt-get update -qq && apt-get download -qq prometheus >/dev/null; }; }) &&
		dpkg-deb -x "$work"/prometheus_*.deb "$work/root" &&
		mkdir -p "$TOOLS" && cp "$work/root/usr/bin/promtool" "$TOOLS/promtool.tmp" &&
		mv "$TOOLS/promtool.tmp" "$TOOLS/promtool" || rc=1
	rm -rf "$work"
	[ -x "$TOOLS/promtool" ] || { echo "deps.sh: could not unpack promtool into $TOOLS" >&2; rc=1; }
	return $rc
}

missing=""
for p in $PACKAGES; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done
if [ -z "$missing" ]; then
	[ "$(id -u)" = 0 ] || exit 0
	unpack_promtool
	exit
fi

if [ "$(id -u)" != 0 ]; then
	echo "deps.sh: missing packages:$missing; run as root (or install them) and try again" >&2
	exit 1
fi
echo "deps.sh: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
# Debian starts the packaged Transmission service on install; the tests run
# their own, inside namespaces: one installed here is not left running.
case " $missing " in
*" transmission-daemon "*)
	if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
		systemctl disable --now transmission-daemon.service >/dev/null 2>&1 || true
	fi
	;;
esac
# coturn (the STUN server of tests/integration/cgnat.sh) alike: its systemd
# unit is enabled and started on install, whatever /etc/default/coturn says.
case " $missing " in
*" coturn "*)
	if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
		systemctl disable --now coturn.service >/dev/null 2>&1 || true
	fi
	;;
esac
unpack_promtool
