#!/usr/bin/env python3
"""burst.py - mapping requests pipelined from several LAN addresses.

  burst.py GATEWAY KILL_AFTER PID COUNT ADDR...

Sends COUNT TCP mapping requests from each ADDR (internal ports 10000 up,
suggesting 30000 up), keeping 32 in flight per address; after KILL_AFTER
successful answers it sends SIGKILL to PID and keeps reading for half a
second for answers already on their way.  Prints one line per successful
answer: "ADDR PROTO INTERNAL EXTERNAL", then "sent N".
"""
import os
import select
import signal
import socket
import struct
import sys
import time


def main(argv):
    gw, kill_after, pid, count = argv[1], int(argv[2]), int(argv[3]), int(argv[4])
    socks = []
    for addr in argv[5:]:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((addr, 0))
        s.setblocking(False)
        socks.append({"sock": s, "addr": addr, "next": 0, "inflight": 0})
    acked, sent, killed, deadline = [], 0, None, time.monotonic() + 30
    while time.monotonic() < deadline:
        if killed is None:
            for c in socks:
                while c["inflight"] < 32 and c["next"] < count:
                    i = c["next"]
                    req = struct.pack("!BBHHHI", 0, 2, 0, 10000 + i, 30000 + i, 3600)
                    c["sock"].sendto(req, (gw, 5351))
                    c["next"] += 1
                    c["inflight"] += 1
                    sent += 1
        wait = 0.5 if killed is None else max(0.0, killed + 0.5 - time.monotonic())
        ready, _, _ = select.select([c["sock"] for c in socks], [], [], wait)
        if not ready and (killed is not None or all(c["next"] == count for c in socks)):
            break
        for c in socks:
            if c["sock"] not in ready:
                continue
            while True:
                try:
                    data = c["sock"].recv(64)
                except BlockingIOError:
                    break
                c["inflight"] -= 1
                if len(data) == 16:
                    _, op, result, _, iport, eport, life = struct.unpack("!BBHIHHI", data)
                    if op == 130 and result == 0:
                        acked.append((c["addr"], iport, eport))
        if killed is None and len(acked) >= kill_after:
            os.kill(pid, signal.SIGKILL)
            killed = time.monotonic()
    for addr, iport, eport in acked:
        print("%s tcp %d %d" % (addr, iport, eport))
    print("sent %d" % sent)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
