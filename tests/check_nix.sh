#!/bin/sh
# check_nix.sh SRCROOT - parse every .nix file under SRCROOT with
# `nix-instantiate --parse`, which also reports undefined names, and refuse
# `with lib;`, which would hide them.  Exit 0: all good; 1: a file failed or
# nix-instantiate is missing (never a skip).  Build directories are not searched.
set -u

if [ $# -ne 1 ] || [ ! -d "$1" ]; then
	echo "usage: $0 SRCROOT" >&2
	exit 1
fi
root=${1%/}

if ! command -v nix-instantiate >/dev/null 2>&1; then
	echo "check_nix: FAIL: nix-instantiate not found: sh scripts/deps.sh installs it (Debian's nix-bin)"
	exit 1
fi

tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' INT TERM

# Parsing needs no store: the dummy store keeps nix from creating state
# directories (which fails when not root) and from warning about nixbld.
dummy=yes
nix-instantiate --store dummy:// --parse -E null >/dev/null 2>&1 || dummy=no
parse() {
	if [ "$dummy" = yes ]; then
		nix-instantiate --store dummy:// --parse "$1"
	else
		nix-instantiate --parse "$1"
	fi
}

# Prune .git, result links, build* directories and any meson build directory.
find "$root" \( -type d \( -name .git -o -name 'build*' -o -name 'result*' \
	-o -exec sh -c 'test -d "$1/meson-private"' sh '{}' ';' \) \) -prune \
	-o -type f -name '*.nix' -print | sort >"$tmp/files"

if [ ! -s "$tmp/files" ]; then
	echo "check_nix: no .nix files under $root"
	exit 1
fi

failed=0
checked=0
while IFS= read -r f; do
	name=${f#"$root"/}
	checked=$((checked + 1))
	if ! parse "$f" >/dev/null 2>"$tmp/err"; then
		echo "FAIL $name: nix-instantiate --parse:"
		sed 's/^/    /' "$tmp/err"
		failed=$((failed + 1))
	elif grep -nE 'with[[:space:]]+lib[[:space:]]*;' "$f" >"$tmp/with"; then
		echo "FAIL $name: 'with lib;' hides undefined names from the parser; use lib.x or inherit (lib) x:"
		sed 's/^/    line /' "$tmp/with"
		failed=$((failed + 1))
	else
		echo "ok   $name"
	fi
done <"$tmp/files"

echo "check_nix: $checked file(s), $failed failed"
[ "$failed" -eq 0 ]
