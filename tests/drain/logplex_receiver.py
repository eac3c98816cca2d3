#!/usr/bin/env python3
"""An HTTPS drain endpoint on loopback, for weir's drain test and bench/drain.

Usage: logplex_receiver.py --cert CERT --key KEY [--port 0] [--record FILE] [--down-file FILE]

Serves HTTPS (HTTP/1.1, keep-alive) on 127.0.0.1 and prints its port on the first line of
stdout. Each POST is answered 503 while --down-file exists, else 200; with --record, each is
appended to FILE as one JSON line (status, path, lower-cased headers, body in hex) before it is
answered. GET /count answers {"posts": N, "messages": M}: the POSTs answered 200 and the sum of
their Logplex-Msg-Count headers.
"""
import argparse
import http.server
import json
import os
import ssl
import threading

args = argparse.ArgumentParser()
args.add_argument("--cert", required=True)
args.add_argument("--key", required=True)
args.add_argument("--port", type=int, default=0)
args.add_argument("--record")
args.add_argument("--down-file")
opts = args.parse_args()

lock = threading.Lock()
counts = {"posts": 0, "messages": 0}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        down = opts.down_file is not None and os.path.exists(opts.down_file)
        status = 503 if down else 200
        with lock:
            if opts.record:
                with open(opts.record, "a") as f:
                    f.write(json.dumps({
                        "status": status,
                        "path": self.path,
                        "headers": {k.lower(): v for k, v in self.headers.items()},
                        "body": body.hex(),
                    }) + "\n")
            if not down:
                counts["posts"] += 1
                counts["messages"] += int(self.headers.get("Logplex-Msg-Count", "0"))
        self.reply(status, b"")

    def do_GET(self):
        with lock:
            text = json.dumps(counts).encode()
        self.reply(200, text)

    def reply(self, status, body):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_):
        pass


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A client that fails the TLS handshake (one that does not trust the certificate) is
        # the client's business, not a server error.
        pass


server = Server(("127.0.0.1", opts.port), Handler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(opts.cert, opts.key)
# The handshake runs in the handler's thread, so a failed one does not stop the accept loop.
server.socket = ctx.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
print(server.server_address[1], flush=True)
server.serve_forever()
