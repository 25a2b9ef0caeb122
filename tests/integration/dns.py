#!/usr/bin/env python3
"""dns.py - the smallest DNS server a lab needs (RFC 1035, A records over UDP).

    dns.py ADDR DELAY_MS SECONDS NAME=A.B.C.D...

Answers each query for one of the NAMEs' A record with its address, after
DELAY_MS (a slow resolver: a daemon must not wait for it), and every other
query with NXDOMAIN; prints "listening" once bound, then one line per query
("query NAME TYPE"); exits after SECONDS, or at once on SIGTERM.  Only the
standard library is used.
"""
import signal
import socket
import struct
import sys
import threading
import time


def main():
    addr, delay, seconds = sys.argv[1], int(sys.argv[2]) / 1000.0, float(sys.argv[3])
    names = dict(a.split("=", 1) for a in sys.argv[4:])
    names = {k.lower().rstrip("."): socket.inet_aton(v) for k, v in names.items()}
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((addr, 53))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print("listening", flush=True)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        s.settimeout(max(0.1, end - time.monotonic()))
        try:
            data, peer = s.recvfrom(512)
        except socket.timeout:
            continue
        if len(data) < 12:
            continue
        qid, flags, qd = struct.unpack("!HHH", data[:6])
        if flags & 0x8000 or qd != 1:
            continue
        labels, i = [], 12
        while i < len(data) and data[i]:
            labels.append(data[i + 1:i + 1 + data[i]].decode("ascii", "replace"))
            i += 1 + data[i]
        if i + 5 > len(data):
            continue
        qtype = struct.unpack("!H", data[i + 1:i + 3])[0]
        question = data[12:i + 5]
        name = ".".join(labels).lower()
        print("query %s %d" % (name, qtype), flush=True)
        found = name in names and qtype == 1
        answer = b""
        if found:
            answer = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + names[name]
        rcode = 0 if name in names else 3
        reply = struct.pack("!HHHHHH", qid, 0x8180 | rcode, 1, 1 if found else 0, 0, 0) + question + answer
        threading.Timer(delay, s.sendto, (reply, peer)).start()


if __name__ == "__main__":
    main()
