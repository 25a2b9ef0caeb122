#!/usr/bin/env python3
"""keepalive_http.py - the lab's HTTP/1.1 server for TCP keep-alives (cgnat.sh).

  keepalive_http.py ADDR PORT SECONDS
        answer HEAD and GET on ADDR:PORT with 200 and a short body, as many
        requests on one connection as the client sends (HTTP/1.1 keep-alive,
        never closing an idle connection itself); prints "listening", then
        one line "request PEER METHOD PATH" per request, so a test sees the
        source address and port each request came from.  Exits after
        SECONDS, which bounds it when a test forgets to stop it.
"""
import http.server
import sys
import threading


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # connections stay open between requests
    timeout = None  # an idle connection is the client's (or the NAT's) to close

    def answer(self, body):
        print("request %s:%d %s %s" % (self.client_address[0], self.client_address[1], self.command, self.path),
              flush=True)
        payload = b"ok\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if body:
            self.wfile.write(payload)

    def do_GET(self):
        self.answer(True)

    def do_HEAD(self):
        self.answer(False)

    def log_message(self, *args):
        pass  # the request lines above are the log


def main(argv):
    if len(argv) != 4:
        sys.stderr.write(__doc__)
        return 2
    server = http.server.ThreadingHTTPServer((argv[1], int(argv[2])), Handler)
    server.daemon_threads = True
    threading.Timer(float(argv[3]), server.shutdown).start()
    print("listening", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
