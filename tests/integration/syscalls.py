#!/usr/bin/env python3
"""syscalls.py UNIT STRACE_LOG - are the daemon's system calls allowed by the unit?

Reads the unit's SystemCallFilter= lines (an allow list, then ~ deny lists),
expands their groups with `systemd-analyze syscall-filter`, and checks every
system call in an strace -f log of a real run against them.  Prints what is
refused, if anything; exit 0 only when nothing is.
"""
import re
import subprocess
import sys

_groups = {}


def expand(name):
    if not name.startswith("@"):
        return {name}
    if name not in _groups:
        out = subprocess.run(["systemd-analyze", "syscall-filter", name], capture_output=True, text=True,
                             check=True).stdout
        members = set()
        for line in out.splitlines()[1:]:
            line = line.strip()
            if line and not line.startswith("#"):
                members |= expand(line)
        _groups[name] = members
    return _groups[name]


def main(unit, log):
    allowed, denied = set(), set()
    for line in open(unit):
        m = re.match(r"\s*SystemCallFilter=(~?)(.*)", line)
        if not m:
            continue
        names = set().union(*(expand(n) for n in m.group(2).split()))
        (denied if m.group(1) else allowed).update(names)
    used = set()
    for line in open(log):
        m = re.match(r"\s*(?:\d+\s+)?([a-z_0-9]+)\(", line)
        if m:
            used.add(m.group(1))
    refused = sorted(n for n in used if n not in allowed or n in denied)
    print("%d system calls used, %d allowed by the unit's filter" % (len(used), len(used) - len(refused)))
    if refused:
        print("refused: " + " ".join(refused))
    return 1 if refused or not used else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
