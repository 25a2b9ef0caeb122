#!/usr/bin/env python3
"""spoof.py - a LAN host that lies about who it is, and honest hosts, for test_spoof.sh.

  spoof.py arp IFACE ROUTER FIRST COUNT
        from IFACE's own link-layer address, ARP requests "who has ROUTER?
        tell FIRST" ... for COUNT consecutive addresses: the router learns
        every one of them as a neighbour at the liar's link-layer address
  spoof.py map ROUTER FIRST COUNT PER
        PER TCP map requests (internal ports 20000 up) from each of COUNT
        consecutive invented source addresses starting at FIRST, sent through
        a raw socket; answers go to the invented addresses and are not read
  spoof.py host ROUTER ADDR PER
        PER TCP map requests (internal ports 30000 up) from ADDR, an address
        of this host, pipelined; prints how many were granted (result 0)
Every wait is bounded.
"""
import ipaddress
import socket
import struct
import sys
import time


def addr(a, i=0):
    return str(ipaddress.IPv4Address(a) + i)


def map_request(iport, lifetime=3600):
    return struct.pack("!BBHHHI", 0, 2, 0, iport, 0, lifetime)


def arp(iface, router, first, count):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((iface, 0))
    mac = s.getsockname()[4]
    for i in range(count):
        sender = socket.inet_aton(addr(first, i))
        frame = b"\xff" * 6 + mac + struct.pack("!H", 0x0806)
        frame += struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + mac + sender + b"\0" * 6 + socket.inet_aton(router)
        s.send(frame)
        time.sleep(0.002)
    return 0


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def spoofed_map(router, first, count, per):
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    dst = socket.inet_aton(router)
    for i in range(count):
        src = socket.inet_aton(addr(first, i))
        for p in range(per):
            payload = map_request(20000 + p)
            udp = struct.pack("!HHHH", 40000 + p, 5351, 8 + len(payload), 0) + payload
            csum = checksum(src + dst + struct.pack("!BBH", 0, 17, len(udp)) + udp) or 0xFFFF
            udp = udp[:6] + struct.pack("!H", csum) + udp[8:]
            ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0, src, dst)
            s.sendto(ip + udp, (router, 0))
        time.sleep(0.005)
    return 0


def host(router, me, per):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((me, 0))
    s.settimeout(0.5)
    granted, answered, deadline = set(), set(), time.monotonic() + 20
    # Sent again until every request has an answer (at most 20 s): a dropped datagram is no verdict.
    while len(answered) < per and time.monotonic() < deadline:
        for p in range(per):
            if p not in answered:
                s.sendto(map_request(30000 + p), (router, 5351))
        try:
            while True:
                data = s.recv(64)
                if len(data) == 16:
                    _, op, result, _, iport, eport, life = struct.unpack("!BBHIHHI", data)
                    answered.add(iport - 30000)
                    if result == 0:
                        granted.add(iport)
        except socket.timeout:
            pass
    print(len(granted))
    return 0


def main(argv):
    try:
        if len(argv) == 6 and argv[1] == "arp":
            return arp(argv[2], argv[3], argv[4], int(argv[5]))
        if len(argv) == 6 and argv[1] == "map":
            return spoofed_map(argv[2], argv[3], int(argv[4]), int(argv[5]))
        if len(argv) == 5 and argv[1] == "host":
            return host(argv[2], argv[3], int(argv[4]))
    except ValueError:
        pass
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
