#!/usr/bin/env python3
"""report.py RESULTS - the tables of docs/performance.md from bench.sh's raw results.

Each raw line is "SERVER LEVEL WHAT key=value ...", SERVER being ours or peer
(miniupnpd); see bench.sh.
"""
import re
import sys


def load(path):
    rows = {}
    extra = []
    for line in open(path):
        parts = line.split()
        if len(parts) < 3:
            continue
        server, level, what = parts[0], parts[1], parts[2]
        kv = dict(p.split("=", 1) for p in parts[3:] if "=" in p)
        if what in ("rss", "compaction", "restart") or level == "final":
            extra.append(line.rstrip())
        rows[(server, level, what)] = kv
    return rows, extra


def num(rows, key, field):
    try:
        return float(rows[key][field])
    except (KeyError, ValueError):
        return None


def fmt(v, unit=""):
    if v is None:
        return "-"
    if v >= 100:
        return "{:,.0f}{}".format(v, unit)
    return "{:.1f}{}".format(v, unit)


def ratio(a, b):
    return "-" if a is None or b is None or b == 0 else "{:,.0f}x".format(a / b) if a / b >= 10 else "{:.1f}x".format(a / b)


def main(argv):
    rows, extra = load(argv[1])
    levels = sorted({int(k[1]) for k in rows if k[0] in ("ours", "peer") and k[1].isdigit() and k[2] == "create"})
    print("One request at a time from one client (rate = 1 / latency); p50 in microseconds.\n")
    print("| installed | server | create/s | create p50 | renew p50 | delete one p50 | opcode 0 p50 | create ratio |")
    print("|---|---|---|---|---|---|---|---|")
    for n in levels:
        for server in ("ours", "peer"):
            if (server, str(n), "create") not in rows:
                continue
            c = num(rows, (server, str(n), "create"), "rate")
            pc = num(rows, ("peer", str(n), "create"), "rate")
            print("| {:,} | {} | {} | {} | {} | {} | {} | {} |".format(
                n, "natpmp-server" if server == "ours" else "miniupnpd", fmt(c),
                fmt(num(rows, (server, str(n), "create"), "p50")), fmt(num(rows, (server, str(n), "renew"), "p50")),
                fmt(num(rows, (server, str(n), "delete"), "p50")), fmt(num(rows, (server, str(n), "address"), "p50")),
                ratio(c, pc) if server == "ours" else ""))
    print("\nnatpmp-server, pipelined from 64 clients (16 requests in flight each):\n")
    print("| installed | creates/s | renewals/s | deletes/s | opcode 0/s | create p50 (us) | create p99 (us) |")
    print("|---|---|---|---|---|---|---|")
    for n in levels:
        k = lambda w: ("ours", str(n), w)
        if k("create-bulk") not in rows:
            continue
        print("| {:,} | {} | {} | {} | {} | {} | {} |".format(
            n, fmt(num(rows, k("create-bulk"), "rate")), fmt(num(rows, k("renew-bulk"), "rate")),
            fmt(num(rows, k("delete-bulk"), "rate")), fmt(num(rows, k("address-bulk"), "rate")),
            fmt(num(rows, k("create-bulk"), "p50")), fmt(num(rows, k("create-bulk"), "p99"))))
    print("\nnatpmp-server against the reference (natpmp-responder: the daemon's sockets, batching and codecs, and")
    print("nothing else), measured right after it at each size; ours / reference, and ours as a share of it:\n")
    print("| installed | creates/s | renewals/s | deletes/s | create p50 (us) | renew p50 (us) | delete p50 (us) |")
    print("|---|---|---|---|---|---|---|")
    for n in levels:
        k = lambda s_, w: (s_, str(n), w)
        if k("ref", "create-bulk") not in rows:
            continue
        cells = []
        for w, field in (("create-bulk", "rate"), ("renew-bulk", "rate"), ("delete-bulk", "rate"),
                         ("create", "p50"), ("renew", "p50"), ("delete", "p50")):
            a, b = num(rows, k("ours", w), field), num(rows, k("ref", w), field)
            share = "-" if not a or not b else "{:.0f}%".format(a / b * 100) if field == "rate" else "{:.1f}x".format(a / b)
            cells.append("{} / {} ({})".format(fmt(a), fmt(b), share))
        print("| {:,} | {} |".format(n, " | ".join(cells)))
    print("\nPCP beside NAT-PMP (natpmp-server; same run, same size; ratio = PCP / NAT-PMP, 1.0x is the same cost):\n")
    print("| installed | create p50 NAT-PMP / PCP | renew p50 NAT-PMP / PCP | creates/s NAT-PMP / PCP | renewals/s NAT-PMP / PCP |")
    print("|---|---|---|---|---|")
    for n in levels:
        k = lambda w: ("ours", str(n), w)
        if k("pcp-create") not in rows:
            continue
        cells = []
        for nat, pcp, field in (("create", "pcp-create", "p50"), ("renew", "pcp-renew", "p50"),
                                ("create-bulk", "pcp-create-bulk", "rate"), ("renew-bulk", "pcp-renew-bulk", "rate")):
            a, b = num(rows, k(nat), field), num(rows, k(pcp), field)
            cells.append("{} / {} ({})".format(fmt(a), fmt(b), "-" if not a or b is None else "{:.2f}x".format(b / a)))
        print("| {:,} | {} |".format(n, " | ".join(cells)))
    print("\nNew TCP connections per second from the WAN through one forward (16 in flight):\n")
    print("| server | with 1 mapping | with N mappings | N | change |")
    print("|---|---|---|---|---|")
    for server in ("ours", "peer"):
        conns = sorted((int(k[1]), num(rows, k, "rate")) for k in rows if k[0] == server and k[2] == "connect")
        if len(conns) >= 2:
            (_, one), (n, many) = conns[0], conns[-1]
            change = "-" if not one else "{:+.1f}%".format((many - one) / one * 100)
            print("| {} | {} | {} | {:,} | {} |".format("natpmp-server" if server == "ours" else "miniupnpd",
                                                    fmt(one), fmt(many), n, change))
    print("\nOther figures:\n")
    for line in extra:
        print("    " + line)
    for key, v in rows.items():
        if key[2] == "delete-all":
            print("    {} delete-all at {}: {} us".format(key[0], key[1], v.get("p50")))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
