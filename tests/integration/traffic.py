#!/usr/bin/env python3
"""traffic.py - real TCP and UDP through the lab's forwards.

  traffic.py serve tcp|udp ADDR PORT SECONDS   answer one exchange on ADDR:PORT, echoing
                                                what arrives; prints "listening", then
                                                "served PEER"; exit 1 if nothing came
  traffic.py probe tcp|udp HOST PORT SECONDS   send a token to HOST:PORT and wait for it
                                                to come back; exit 0 only if it did
Every wait is bounded by SECONDS.
"""
import os
import socket
import sys


def serve(proto, addr, port, seconds):
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    s = socket.socket(socket.AF_INET, kind)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    s.settimeout(seconds)
    if proto == "tcp":
        s.listen(4)
    print("listening", flush=True)
    try:
        if proto == "tcp":
            c, peer = s.accept()
            c.settimeout(seconds)
            c.sendall(c.recv(256))
            c.close()
        else:
            data, peer = s.recvfrom(256)
            s.sendto(data, peer)
    except socket.timeout:
        print("nothing arrived", flush=True)
        return 1
    print("served %s:%d" % peer, flush=True)
    return 0


def probe(proto, host, port, seconds):
    token = b"natpmp-" + os.urandom(8).hex().encode()
    try:
        if proto == "tcp":
            s = socket.create_connection((host, port), timeout=seconds)
            s.sendall(token)
            got = s.recv(256)
        else:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.settimeout(seconds)
            s.sendto(token, (host, port))
            got, _ = s.recvfrom(256)
    except OSError as e:
        print("probe %s %s:%d: %s" % (proto, host, port, e))
        return 1
    if got != token:
        print("probe %s %s:%d: wrong answer %r" % (proto, host, port, got))
        return 1
    print("probe %s %s:%d: echoed" % (proto, host, port))
    return 0


def main(argv):
    if len(argv) != 6 or argv[1] not in ("serve", "probe") or argv[2] not in ("tcp", "udp"):
        sys.stderr.write(__doc__)
        return 2
    fn = serve if argv[1] == "serve" else probe
    return fn(argv[2], argv[3], int(argv[4]), float(argv[5]))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
