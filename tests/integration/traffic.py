#!/usr/bin/env python3
"""traffic.py - real TCP and UDP through the lab's forwards.

  traffic.py serve tcp|udp ADDR PORT SECONDS [stream]
        answer on ADDR:PORT, echoing what arrives; prints "listening", then
        "served PEER" for the first peer; exit 1 if nothing came.  With
        "stream", keep echoing on the connection until it closes.
  traffic.py probe tcp|udp HOST PORT SECONDS [SRCPORT [SRCADDR]]
        send a token to HOST:PORT (from SRCPORT and SRCADDR if given; port 0
        is any) and wait for it to come back; exit 0 only if it did
  traffic.py session HOST PORT SECONDS FILE
        open a TCP connection to HOST:PORT, exchange a token, print
        "first exchange ok", wait (at most SECONDS) until FILE exists, then
        exchange again: exit 0 if the second exchange worked, 1 if not
Every wait is bounded by SECONDS.  An address with a colon is IPv6.
"""
import os
import socket
import sys
import time


def family(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def serve(proto, addr, port, seconds, stream=False):
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    s = socket.socket(family(addr), kind)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    s.settimeout(seconds)
    if proto == "tcp":
        s.listen(4)
    print("listening", flush=True)
    try:
        if proto == "tcp":
            c, peer = s.accept()
            print("served %s:%d" % peer[:2], flush=True)
            c.settimeout(seconds)
            while True:
                data = c.recv(256)
                if not data:
                    break
                c.sendall(data)
                if not stream:
                    break
            c.close()
        else:
            data, peer = s.recvfrom(256)
            print("served %s:%d" % peer[:2], flush=True)
            s.sendto(data, peer)
    except socket.timeout:
        print("nothing arrived", flush=True)
        return 1
    except OSError as e:
        print("serve: %s" % e, flush=True)
    return 0


def exchange(s, proto, host, port):
    token = b"natpmp-" + os.urandom(8).hex().encode()
    if proto == "tcp":
        s.sendall(token)
        got = s.recv(256)
    else:
        s.sendto(token, (host, port))
        got, _ = s.recvfrom(256)
    return got == token


def probe(proto, host, port, seconds, srcport=0, srcaddr=None):
    if srcaddr is None:
        srcaddr = "::" if family(host) == socket.AF_INET6 else "0.0.0.0"
    try:
        if proto == "tcp":
            s = socket.socket(family(host), socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((srcaddr, srcport))
            s.settimeout(seconds)
            s.connect((host, port))
        else:
            s = socket.socket(family(host), socket.SOCK_DGRAM)
            s.bind((srcaddr, srcport))
            s.settimeout(seconds)
        ok = exchange(s, proto, host, port)
    except OSError as e:
        print("probe %s %s:%d: %s" % (proto, host, port, e))
        return 1
    print("probe %s %s:%d: %s" % (proto, host, port, "echoed" if ok else "wrong answer"))
    return 0 if ok else 1


def session(host, port, seconds, flag):
    try:
        s = socket.create_connection((host, port), timeout=seconds)
        if not exchange(s, "tcp", host, port):
            print("first exchange: wrong answer", flush=True)
            return 2
    except OSError as e:
        print("first exchange: %s" % e, flush=True)
        return 2
    print("first exchange ok", flush=True)
    deadline = time.monotonic() + seconds
    while not os.path.exists(flag) and time.monotonic() < deadline:
        time.sleep(0.02)
    s.settimeout(2)
    try:
        ok = exchange(s, "tcp", host, port)
    except OSError as e:
        print("second exchange: %s" % e, flush=True)
        return 1
    print("second exchange %s" % ("ok" if ok else "got a wrong answer"), flush=True)
    return 0 if ok else 1


def main(argv):
    try:
        if len(argv) >= 6 and argv[1] == "serve" and argv[2] in ("tcp", "udp"):
            return serve(argv[2], argv[3], int(argv[4]), float(argv[5]), len(argv) > 6 and argv[6] == "stream")
        if len(argv) in (6, 7, 8) and argv[1] == "probe" and argv[2] in ("tcp", "udp"):
            return probe(argv[2], argv[3], int(argv[4]), float(argv[5]), int(argv[6]) if len(argv) >= 7 else 0,
                         argv[7] if len(argv) == 8 else None)
        if len(argv) == 6 and argv[1] == "session":
            return session(argv[2], int(argv[3]), float(argv[4]), argv[5])
    except ValueError:
        pass
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
