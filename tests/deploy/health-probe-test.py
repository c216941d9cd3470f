#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""health-probe-test.py PROBE [DOTPROXYD]

Runs the container HEALTHCHECK (deploy/docker/health-probe) against a scripted HTTP
server on 127.0.0.1 and checks its verdicts: healthy (0) only for a status line with
200; unhealthy (1) for 503, 404, 500, a non-HTTP answer, a malformed status line, a
server that closes at once, one that accepts and never answers (within the probe's
timeout), and a closed port; a bad environment is 1 too (Docker reserves 2).  Also checks the request it sends
(GET /health HTTP/1.0 with a Host header).

With DOTPROXYD, also against the real daemon: --metrics on a kernel-chosen loopback
port and an upstream port that refuses connections.  Before any query the upstream
has not failed yet, so /health is 200 and the probe says healthy; after one query
fails the upstream backs off, /health turns 503 and the probe says unhealthy.
Loopback only; every wait is bounded.
"""
import os
import re
import socket
import struct
import subprocess
import sys
import threading
import time


class Server:
    """Answers each HTTP connection per `mode`; records the request heads."""

    ANSWERS = {
        "200": b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n",
        "200-http10": b"HTTP/1.0 200 OK\r\n\r\nok\n",
        "200-no-reason": b"HTTP/1.1 200\r\n\r\n",
        "503": b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 12\r\n\r\nunavailable\n",
        "404": b"HTTP/1.1 404 Not Found\r\n\r\n",
        "500": b"HTTP/1.1 500 Internal Server Error\r\n\r\n",
        "not-http": b"SSH-2.0-OpenSSH_9.2\r\n",
        "bad-status": b"HTTP/1.1 2000 OK\r\n\r\n",
        "200-in-body": b"HTTP/1.1 404 Not Found\r\n\r\nHTTP/1.1 200 OK\r\n",
        "close": b"",
    }

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.5)
        self.port = self.sock.getsockname()[1]
        self.mode = "200"
        self.requests = []
        self.held = []
        self.stop = False
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while not self.stop:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            conn.settimeout(5)
            head = b""
            try:
                while b"\r\n\r\n" not in head and len(head) < 8192:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    head += chunk
            except OSError:
                pass
            self.requests.append(head)
            if self.mode == "silent":
                self.held.append(conn)  # never answered; closed at the end
                continue
            try:
                conn.sendall(self.ANSWERS[self.mode])
            except OSError:
                pass
            conn.close()

    def close(self):
        self.stop = True
        self.sock.close()
        for c in self.held:
            c.close()


def run_probe(probe, env_extra, limit=20):
    env = dict(os.environ)
    env.update(env_extra)
    start = time.monotonic()
    p = subprocess.run(["bash", probe], env=env, capture_output=True, text=True, timeout=limit)
    return p.returncode, p.stderr.strip(), time.monotonic() - start


def scripted(probe):
    failures = []
    srv = Server()
    # Answered cases return at once; the 5 s limit only spares a loaded machine.
    base = {"DOTPROXY_HEALTH_ADDR": "127.0.0.1", "DOTPROXY_HEALTH_PORT": str(srv.port),
            "DOTPROXY_HEALTH_TIMEOUT": "5"}
    expect = [("200", 0), ("200-http10", 0), ("200-no-reason", 0), ("503", 1), ("404", 1),
              ("500", 1), ("not-http", 1), ("bad-status", 1), ("200-in-body", 1),
              ("close", 1), ("silent", 1)]
    try:
        for mode, want in expect:
            srv.mode = mode
            n = len(srv.requests)
            env = dict(base, DOTPROXY_HEALTH_TIMEOUT="2") if mode == "silent" else base
            rc, err, took = run_probe(probe, env)
            verdict = "ok" if rc == want else "FAIL"
            print(f"{verdict}: server answers {mode}: exit {rc} (want {want}) in {took:.1f}s {err}")
            if rc != want:
                failures.append(mode)
            if mode == "silent" and took > 2 + 3:
                print(f"FAIL: silent server: probe took {took:.1f}s, timeout is 2s")
                failures.append("silent-timeout")
            if len(srv.requests) != n + 1:
                print(f"FAIL: {mode}: server saw {len(srv.requests) - n} connections, expected 1")
                failures.append(mode + "-connections")
        head = srv.requests[0].decode("latin-1")
        lines = head.split("\r\n")
        if lines[0] != "GET /health HTTP/1.0":
            print(f"FAIL: request line {lines[0]!r}")
            failures.append("request-line")
        elif not any(re.fullmatch(r"(?i)host: 127\.0\.0\.1", ln) for ln in lines):
            print(f"FAIL: no 'Host: 127.0.0.1' header in {lines!r}")
            failures.append("host")
        else:
            print("ok: request is 'GET /health HTTP/1.0' with a Host header")
    finally:
        srv.close()

    # A closed port: bound but not listening, so connects are refused at once.
    hole = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    hole.bind(("127.0.0.1", 0))
    rc, err, _ = run_probe(probe, dict(base, DOTPROXY_HEALTH_PORT=str(hole.getsockname()[1])))
    hole.close()
    print(f"{'ok' if rc == 1 else 'FAIL'}: closed port: exit {rc} {err}")
    if rc != 1:
        failures.append("closed-port")

    for name, env in (("port 0", {"DOTPROXY_HEALTH_PORT": "0"}),
                      ("port 70000", {"DOTPROXY_HEALTH_PORT": "70000"}),
                      ("a host name", {"DOTPROXY_HEALTH_ADDR": "localhost"}),
                      ("timeout 0", {"DOTPROXY_HEALTH_TIMEOUT": "0"})):
        rc, err, _ = run_probe(probe, dict(base, **env))
        good = rc == 1 and "health-probe: bad" in err
        print(f"{'ok' if good else 'FAIL'}: {name}: exit {rc} {err}")
        if not good:
            failures.append(name)
    return failures


def read_line_matching(stream, pattern, deadline):
    """Read the daemon's stderr until a line matches; return the match."""
    while time.monotonic() < deadline:
        line = stream.readline()
        if not line:
            return None
        m = re.search(pattern, line)
        if m:
            return m
    return None


def dns_query(port, name):
    q = struct.pack("!6H", 0x4242, 0x0100, 1, 0, 0, 0)
    for label in name.split("."):
        q += bytes([len(label)]) + label.encode()
    q += b"\x00" + struct.pack("!2H", 1, 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(10)
    try:
        s.sendto(q, ("127.0.0.1", port))
        data, _ = s.recvfrom(4096)
        return data[3] & 0x0F
    except socket.timeout:
        return None
    finally:
        s.close()


def real_daemon(probe, daemon):
    failures = []
    # The upstream: a bound, non-listening port (refuses every connect).
    hole = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    hole.bind(("127.0.0.1", 0))
    up = hole.getsockname()[1]
    proc = subprocess.Popen(
        [daemon, "--listen", "127.0.0.1@0", "--metrics", "127.0.0.1@0",
         "--upstream", f"127.0.0.1@{up}#dns.test", "--timeout", "2000"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 10
        m = read_line_matching(proc.stderr, r"metrics and API on port (\d+)", deadline)
        if not m:
            return ["daemon did not report its metrics port"]
        mport = m.group(1)
        m = read_line_matching(proc.stderr, r"listening on 127\.0\.0\.1@(\d+)", deadline)
        if not m:
            return ["daemon did not report its DNS port"]
        dport = int(m.group(1))
        # Drain the rest of stderr so the daemon never blocks on a full pipe.
        threading.Thread(target=proc.stderr.read, daemon=True).start()
        env = {"DOTPROXY_HEALTH_ADDR": "127.0.0.1", "DOTPROXY_HEALTH_PORT": mport,
               "DOTPROXY_HEALTH_TIMEOUT": "3"}

        rc, err, _ = run_probe(probe, env)
        print(f"{'ok' if rc == 0 else 'FAIL'}: dotproxyd before any query: exit {rc} {err}")
        if rc != 0:
            failures.append("daemon-fresh")

        rcode = dns_query(dport, "probe.test")
        print(f"{'ok' if rcode == 2 else 'FAIL'}: a query with the upstream refusing: RCODE {rcode} (want 2, SERVFAIL)")
        if rcode != 2:
            failures.append("servfail")
        # The backoff starts at the failed connect; /health may be read a moment
        # before the worker records it, so poll (bounded) rather than sleep.
        deadline = time.monotonic() + 10
        rc = None
        while time.monotonic() < deadline:
            rc, err, _ = run_probe(probe, env)
            if rc == 1:
                break
            time.sleep(0.1)
        print(f"{'ok' if rc == 1 else 'FAIL'}: dotproxyd with its upstream backing off: exit {rc} {err}")
        if rc != 1 or "503" not in err:
            failures.append("daemon-down")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        hole.close()
    return failures


def main(argv):
    if len(argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    probe = argv[1]
    failures = scripted(probe)
    if len(argv) == 3:
        failures += real_daemon(probe, argv[2])
    else:
        print("note: no dotproxyd given; the real-daemon part is not run")
    if failures:
        print(f"FAILED: {failures}")
        return 1
    print("health-probe: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
