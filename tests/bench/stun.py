#!/usr/bin/env python3
"""stun.py - the smallest STUN Binding responder a lab needs (RFC 5389).

    stun.py [ADDRESS [PORT [SECONDS]]]      (default 0.0.0.0 3478 3600)

Listens on UDP ADDRESS:PORT and answers every Binding request with a Binding
success response that carries the request's source address and port as
MAPPED-ADDRESS and, when the request has the RFC 5389 magic cookie, as
XOR-MAPPED-ADDRESS too.  It always answers from the address and port it was
asked on: CHANGE-REQUEST (RFC 3489/5780) is read past and ignored, which is
what a client that probes for filtering NATs (miniupnpd's ext_perform_stun)
sees from a host with no NAT in the way.  Anything that is not a well-formed
IPv4 Binding request is dropped without an answer.

Prints "listening ADDRESS:PORT" once the socket is bound, then one line per
answer; exits 0 after SECONDS (at most 86400), or at once on SIGTERM/SIGINT.
Only the standard library is used.
"""

import signal
import socket
import struct
import sys
import time

MAGIC_COOKIE = 0x2112A442
BINDING_REQUEST = 0x0001
BINDING_SUCCESS = 0x0101
ATTR_MAPPED_ADDRESS = 0x0001
ATTR_XOR_MAPPED_ADDRESS = 0x0020
FAMILY_IPV4 = 0x01
HEADER_LEN = 20


def attribute(kind, value):
    """One attribute: type, length, value, padded to a multiple of 4."""
    pad = (-len(value)) % 4
    return struct.pack("!HH", kind, len(value)) + value + b"\0" * pad


def binding_response(request, source):
    """The answer to REQUEST from SOURCE (address, port), or None to drop it."""
    if len(request) < HEADER_LEN:
        return None
    kind, length, cookie = struct.unpack_from("!HHI", request)
    # The two top bits of every STUN message are zero; attributes are
    # 4-byte aligned; the length must be what arrived.
    if kind != BINDING_REQUEST or length % 4 or HEADER_LEN + length != len(request):
        return None
    transaction = request[8:HEADER_LEN]
    address, port = source
    packed = socket.inet_aton(address)
    attrs = attribute(ATTR_MAPPED_ADDRESS, struct.pack("!BBH", 0, FAMILY_IPV4, port) + packed)
    if cookie == MAGIC_COOKIE:
        xport = port ^ (MAGIC_COOKIE >> 16)
        xaddr = struct.unpack("!I", packed)[0] ^ MAGIC_COOKIE
        attrs = attribute(ATTR_XOR_MAPPED_ADDRESS, struct.pack("!BBHI", 0, FAMILY_IPV4, xport, xaddr)) + attrs
    # An RFC 3489 request has no cookie: its 16-byte transaction id
    # (bytes 4..19) is echoed whole, as RFC 5389 section 12 asks.
    return struct.pack("!HH", BINDING_SUCCESS, len(attrs)) + request[4:8] + transaction + attrs


def main(argv):
    address = argv[1] if len(argv) > 1 else "0.0.0.0"
    port = int(argv[2]) if len(argv) > 2 else 3478
    seconds = float(argv[3]) if len(argv) > 3 else 3600.0
    if not 0 < port < 65536 or not 0 < seconds <= 86400:
        print("usage: stun.py [ADDRESS [PORT [SECONDS]]]", file=sys.stderr)
        return 2

    def stop(_signum, _frame):
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((address, port))
    print("listening %s:%d" % sock.getsockname(), flush=True)

    deadline = time.monotonic() + seconds
    answered = 0
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        sock.settimeout(min(left, 1.0))
        try:
            request, source = sock.recvfrom(2048)
        except socket.timeout:
            continue
        reply = binding_response(request, source)
        if reply is None:
            print("dropped %d bytes from %s:%d" % ((len(request),) + source), flush=True)
            continue
        sock.sendto(reply, source)
        answered += 1
        print("answered %s:%d" % source, flush=True)
    print("done after %d answers" % answered, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
