#!/bin/sh
# build.sh - configure (once) and compile into ./build.
set -eu
cd "$(dirname "$0")/.."
if [ ! -f build/build.ninja ]; then
	meson setup build >/dev/null
fi
meson compile -C build >/dev/null
