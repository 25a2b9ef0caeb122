#!/usr/bin/env python3
"""check_layers.py SOURCE_ROOT - the rooms of docs/architecture.md, as the sources are.

Each folder of src/ and include/ is a room.  A file may include its own
room's headers and those of the rooms its room may use (USES below, the
table docs/architecture.md draws); headers without a room ("foo.h") are
private to the folder they sit in and must be there.  No source or header
is longer than MAX_LINES, and every header opens with a comment that says
what it is.  Exits 1 naming each breach, else prints the room graph.
"""
import os
import re
import sys

MAX_LINES = 800

# room: the rooms it may include from (besides itself).  Lower rooms first.
USES = {
    "base": [],
    "wire": [],
    "engine": [],
    "store": [],
    "kernel": ["engine"],
    "outer": ["base", "wire", "kernel"],
    "daemon": ["base", "wire", "engine", "store", "kernel", "outer"],
    "tools": ["wire"],
}

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "."
    errors = []
    used = {room: set() for room in USES}
    files = 0
    for top in ("src", "include"):
        base = os.path.join(root, top)
        for room in sorted(os.listdir(base)):
            folder = os.path.join(base, room)
            if not os.path.isdir(folder):
                errors.append("%s/%s: a file outside every room (put it in a folder)" % (top, room))
                continue
            if room not in USES:
                errors.append("%s/%s: a room docs/architecture.md and this check do not know" % (top, room))
                continue
            for name in sorted(os.listdir(folder)):
                if not name.endswith((".c", ".h")):
                    continue
                path = os.path.join(folder, name)
                rel = "%s/%s/%s" % (top, room, name)
                files += 1
                with open(path, encoding="utf-8") as f:
                    text = f.read()
                lines = text.count("\n")
                if lines > MAX_LINES:
                    errors.append("%s: %d lines, over %d: split it by concern" % (rel, lines, MAX_LINES))
                if name.endswith(".h") and not text.startswith("/*\n * %s - " % name):
                    errors.append("%s: does not open with \"/*\\n * %s - what it is\"" % (rel, name))
                for inc in INCLUDE.findall(text):
                    if "/" not in inc:
                        if not os.path.exists(os.path.join(folder, inc)):
                            errors.append("%s: includes \"%s\", which is not in %s/%s/" % (rel, inc, top, room))
                        continue
                    other = inc.split("/")[0]
                    if not os.path.exists(os.path.join(root, "include", inc)):
                        errors.append("%s: includes \"%s\", which include/ does not have" % (rel, inc))
                    elif other != room and other not in USES[room]:
                        errors.append("%s: includes \"%s\", but the %s room may not use the %s room (may use: %s)"
                                      % (rel, inc, room, other, ", ".join(USES[room]) or "nothing"))
                    elif other != room:
                        used[room].add(other)
    # The rooms actually used must form no cycle (USES is ordered, but say so if it ever is not).
    state = {}

    def visit(room, trail):
        if state.get(room) == 1:
            errors.append("rooms include each other in a cycle: %s" % " -> ".join(trail + [room]))
            return
        if state.get(room) == 2:
            return
        state[room] = 1
        for other in sorted(used[room]):
            visit(other, trail + [room])
        state[room] = 2

    for room in USES:
        visit(room, [])
    for e in errors:
        print(e)
    if errors:
        return 1
    print("%d files in %d rooms, none over %d lines, no cycles:" % (files, len(USES), MAX_LINES))
    for room in USES:
        print("  %-7s uses %s" % (room, ", ".join(sorted(used[room])) or "nothing"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
