#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A small HTTPS server of blocklists for the tests (python3 http.server + ssl).

listserver.py --cert C --key K --dir D
Prints "port N" once it listens on 127.0.0.1. Serves:
  /list.txt      the file D/list.txt, with an ETag (a hash of the content) and
                 a Last-Modified (the file's mtime); answers 304 when the
                 request's If-None-Match or If-Modified-Since still holds.
                 The file D/mode, read on each request, can make it answer
                 "500" (an error), "big" (a body of D/big-size octets of
                 names) or "garbage" (an HTML page served with 200).
  /other.txt     the file D/other.txt, likewise (the mode does not apply).
  /redirect/N    302 to /redirect/N-1, and /redirect/0 to /other.txt.
  /to-http       302 to a plain http:// URL.
  /slow          sends its headers, then nothing for 60 s.
A query string is ignored (it is logged with the path).
Every request's path and headers are appended to D/requests.log as one JSON
line, so that the test can check what the client sent.
"""
import argparse
import email.utils
import hashlib
import http.server
import json
import os
import ssl
import sys
import threading
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--dir", required=True)
    args = ap.parse_args()
    d = args.dir
    lock = threading.Lock()

    def read(name, default=""):
        try:
            with open(os.path.join(d, name)) as f:
                return f.read().strip()
        except OSError:
            return default

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *a):
            sys.stderr.write("listserver: " + (fmt % a) + "\n")

        def send_body(self, code, body, headers=()):
            self.send_response(code)
            for k, v in headers:
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            with lock:
                with open(os.path.join(d, "requests.log"), "a") as f:
                    f.write(json.dumps({"path": self.path,
                                        "headers": {k.lower(): v for k, v in self.headers.items()}}) + "\n")
            path = self.path.split("?", 1)[0]
            if path == "/slow":
                self.send_response(200)
                self.send_header("Content-Length", "100")
                self.end_headers()
                self.wfile.flush()
                time.sleep(60)
                return
            if path == "/to-http":
                self.send_response(302)
                self.send_header("Location", "http://127.0.0.1:%d/other.txt" % srv.server_address[1])
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if path.startswith("/redirect/"):
                n = int(path.rsplit("/", 1)[1])
                where = "/redirect/%d" % (n - 1) if n > 0 else "/other.txt"
                self.send_response(302)
                self.send_header("Location", where)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if path not in ("/list.txt", "/other.txt"):
                self.send_body(404, b"not here\n")
                return
            mode = read("mode", "ok") if path == "/list.txt" else "ok"
            if mode == "500":
                self.send_body(500, b"<html>internal error</html>\n")
                return
            if mode == "big":
                size = int(read("big-size", "100000"))
                line = b"big.example\n"
                self.send_body(200, (line * (size // len(line) + 1))[:size])
                return
            if mode == "garbage":
                self.send_body(200, b"<html><body>Service temporarily unavailable</body></html>\n")
                return
            path = os.path.join(d, path[1:])
            with open(path, "rb") as f:
                body = f.read()
            etag = '"%s"' % hashlib.sha256(body).hexdigest()[:16]
            lm = email.utils.formatdate(int(os.stat(path).st_mtime), usegmt=True)
            inm = self.headers.get("If-None-Match")
            ims = self.headers.get("If-Modified-Since")
            # RFC 9110 13.2.2: If-None-Match first; If-Modified-Since only without it.
            if (inm is not None and inm == etag) or (inm is None and ims is not None and ims == lm):
                self.send_response(304)
                self.send_header("ETag", etag)
                self.send_header("Last-Modified", lm)
                self.end_headers()
                return
            self.send_body(200, body, [("ETag", etag), ("Last-Modified", lm),
                                       ("Content-Type", "text/plain")])

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    print("port %d" % srv.server_address[1], flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
