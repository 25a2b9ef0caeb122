#!/usr/bin/env python3
"""nftmap.py - the daemon's nftables table as the tests read it, in one form on every machine.

  nft -j -p list table ip TABLE | nftmap.py mappings|sources|external

`nft list` prints protocols by name only where /etc/protocols exists (a minimal
Debian root has none: "6 . 40000" instead of "tcp . 40000"), so the tests never
read its text.  This reads nft's JSON, asked for with numeric protocols (-p),
and prints one line per element:

  mappings   PROTO EXTERNAL_PORT CLIENT INTERNAL_PORT TIMEOUT_SECONDS
  sources    CLIENT PROTO INTERNAL_PORT EXTERNAL_PORT TIMEOUT_SECONDS
  external   ADDRESS

PROTO is tcp or udp (any other number printed as it is).  An empty map prints
nothing and exits 0; a table or map that is missing, or JSON of another shape,
exits 1 with a message, so that "the kernel lacks X" can never pass on a
listing that failed.
"""
import json
import sys

PROTOCOLS = {6: "tcp", 17: "udp"}


def proto(value):
    # Numeric with -p; a name on a machine whose nft ignores -p in JSON.
    if isinstance(value, int):
        return PROTOCOLS.get(value, str(value))
    return str(value)


def element(item):
    """(key parts, data, timeout) of one JSON element."""
    if isinstance(item, list):  # a map element: [key, data]
        key, data = item
    else:
        key, data = item, None
    timeout = ""
    if isinstance(key, dict) and "elem" in key:
        timeout = str(key["elem"].get("timeout", ""))
        key = key["elem"]["val"]
    if isinstance(key, dict) and "concat" in key:
        key = key["concat"]
    if isinstance(data, dict) and "concat" in data:
        data = data["concat"]
    return key if isinstance(key, list) else [key], data, timeout


def main(argv):
    if len(argv) != 2 or argv[1] not in ("mappings", "sources", "external"):
        sys.stderr.write(__doc__)
        return 2
    want = argv[1]
    text = sys.stdin.read()
    try:
        doc = json.loads(text)
    except ValueError:
        print("nftmap: nft printed no JSON: %s" % text.strip()[:200])
        return 1
    found = None
    for obj in doc.get("nftables", []):
        for kind in ("map", "set"):
            if kind in obj and obj[kind].get("name") == want:
                found = obj[kind]
    if found is None:
        print("nftmap: the table has no %s (nft said: %s)" % (want, text.strip()[:200]))
        return 1
    for item in found.get("elem", []):
        key, data, timeout = element(item)
        if want == "mappings":
            print(proto(key[0]), key[1], data[0], data[1], timeout)
        elif want == "sources":
            print(key[0], proto(key[1]), key[2], data, timeout)
        else:
            print(key[0])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
