# SPDX-License-Identifier: MIT
"""The operator HTTP server's connection slots under attack (issue 11).

Usage: test_http_slots.py METRICS_HARNESS

The red team held every slot of the metrics port with 34 keep-alive clients
sending one request every 8 s, so /health failed 10 probes of 10 and any pod
could pull every replica out of a Service. Here clients from one address,
then from ten, open keep-alive connections, send one request, and then hold
the connection: "repeat" sends a whole request every 2 s (the red team's
pattern, faster than any sane idle timeout), "trickle" sends one byte of a
next request that never ends every second (so no idle timer ever fires),
"silent" sends nothing more. A connection the server closes is reopened, as
an attacker would. Meanwhile /health is probed on fresh connections from
127.0.0.1 (the kubelet's address is not a pod's), and every probe must be
answered 200 within PROBE_BOUND_S, as a kubelet with its default
timeoutSeconds requires.

Raw sockets, not curl: the clients bind their 127.0.0.x source addresses
and hold half-sent requests. Waits are bounded polls of a condition.
"""
import selectors
import socket
import statistics
import subprocess
import sys
import threading
import time
import traceback

HARNESS = sys.argv[1]
PROBES = 10
PROBE_BOUND_S = 1.0  # the kubelet's default timeoutSeconds
PROBE_GAP_S = 0.3    # between probes, so they spread over the attack
RECONNECT_S = 0.25   # an attacking client reopens a closed connection this fast
PER_CLIENT_CAP = 8   # http_server.c's PER_IP_CONNECTION_LIMIT
IDLE_TIMEOUT_S = 5   # http_server.c's CONNECTION_TIMEOUT_S


class Harness:
    def __init__(self):
        self.p = subprocess.Popen([HARNESS, "slots-test-token"], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True, bufsize=1)
        sel = selectors.DefaultSelector()
        sel.register(self.p.stdout, selectors.EVENT_READ)
        if not sel.select(30):
            raise RuntimeError("harness: not ready within 30 s")
        fields = self.p.stdout.readline().split()
        if not fields or fields[0] != "ready":
            raise RuntimeError("harness did not start: %r" % fields)
        kv = dict(f.split("=", 1) for f in fields[1:])
        self.port = int(kv["metrics"])

    def close(self):
        self.p.stdin.close()
        try:
            return self.p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.p.kill()  # our own child, by its handle
            self.p.wait()
            return -9


def request(path="/health", extra=""):
    return ("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n" % (path, extra)).encode()


TRICKLE = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "


class Client:
    def __init__(self, src, mode):
        self.src, self.mode = src, mode
        self.sock = None
        self.state = "closed"
        self.answered = False   # on the current connection
        self.next_send = 0.0
        self.sent = 0           # trickle bytes sent on the current connection
        self.retry_at = 0.0
        self.opened_at = 0.0
        self.tried = False      # has made its first attempt and seen how it went


class Attack:
    """Clients from the given source addresses, per_source each, holding
    keep-alive connections in the given modes (cycled over the clients)."""

    def __init__(self, port, sources, per_source, modes):
        self.port = port
        self.clients = [Client(s, modes[i % len(modes)])
                        for s in sources for i in range(per_source)]
        self.sel = selectors.DefaultSelector()
        self.stopping = False
        self.lock = threading.Lock()
        self.opened = self.answers = self.closed_by_server = 0
        self.thread = threading.Thread(target=self.run, daemon=True)

    def start(self):
        self.thread.start()
        # Settled once every client has made its first attempt and seen it
        # answered, closed, or unanswered for a second.
        end = time.monotonic() + 10
        while time.monotonic() < end:
            with self.lock:
                if all(c.tried for c in self.clients):
                    return
            time.sleep(0.05)  # pacing a bounded poll
        raise AssertionError("the attack did not settle within 10 s")

    def stop(self):
        self.stopping = True
        self.thread.join(10)
        for c in self.clients:
            self.drop(c, 0)

    def drop(self, c, now):
        if c.sock is not None:
            try:
                self.sel.unregister(c.sock)
            except (KeyError, ValueError):
                pass
            c.sock.close()
        c.sock, c.state, c.answered, c.sent = None, "closed", False, 0
        c.retry_at = now + RECONNECT_S

    def open(self, c, now):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.bind((c.src, 0))
        s.connect_ex(("127.0.0.1", self.port))
        c.sock, c.state, c.opened_at = s, "connecting", now
        self.sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE, c)
        with self.lock:
            self.opened += 1

    def send(self, c, data, now):
        try:
            c.sock.send(data)
        except OSError:
            self.drop(c, now)

    def on_event(self, c, ev, now):
        if c.state == "connecting" and ev & selectors.EVENT_WRITE:
            if c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) != 0:
                self.drop(c, now)
                c.tried = True
                return
            c.state = "open"
            self.sel.modify(c.sock, selectors.EVENT_READ, c)
            self.send(c, request(), now)
            return
        if ev & selectors.EVENT_READ:
            try:
                data = c.sock.recv(65536)
            except OSError:
                data = b""
            if not data:
                with self.lock:
                    self.closed_by_server += 1
                c.tried = True
                self.drop(c, now)
                return
            if not c.answered:
                with self.lock:
                    self.answers += 1
                c.answered, c.tried = True, True
                c.next_send = now + (2.0 if c.mode == "repeat" else 1.0)

    def tick(self, c, now):
        if c.sock is None:
            if now >= c.retry_at:
                self.open(c, now)
            return
        if not c.answered:
            if now - c.opened_at > 1.0:
                c.tried = True
            return
        if now < c.next_send or c.mode == "silent":
            return
        if c.mode == "repeat":
            c.answered = False  # wait for the next answer on this connection
            c.opened_at = now
            self.send(c, request(), now)
            c.next_send = now + 2.0
        else:
            data = TRICKLE[c.sent:c.sent + 1] if c.sent < len(TRICKLE) else b"a"
            c.sent += 1
            self.send(c, data, now)
            c.next_send = now + 1.0

    def run(self):
        while not self.stopping:
            now = time.monotonic()
            for key, ev in self.sel.select(0.05):
                self.on_event(key.data, ev, now)
            now = time.monotonic()
            for c in self.clients:
                self.tick(c, now)


def probe(port):
    """One GET /health on a fresh connection from 127.0.0.1: (status line
    or None, seconds, what went wrong)."""
    t0 = time.monotonic()
    deadline = t0 + PROBE_BOUND_S
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        s.settimeout(PROBE_BOUND_S)
        try:
            s.connect(("127.0.0.1", port))
            s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                      b"Connection: close\r\n\r\n" % port)
            data = b""
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None, time.monotonic() - t0, "no answer within the bound"
                s.settimeout(left)
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        except socket.timeout:
            return None, time.monotonic() - t0, "no answer within the bound"
        except OSError as e:
            return None, time.monotonic() - t0, "error: %s" % e
        if not data:
            return None, time.monotonic() - t0, "closed without an answer"
        return data.split(b"\r\n", 1)[0].decode(errors="replace"), time.monotonic() - t0, ""
    finally:
        s.close()


def probe_series(h, attack):
    ok, lat, why = 0, [], []
    for _ in range(PROBES):
        status, secs, err = probe(h.port)
        if status is not None and status.startswith("HTTP/1.1 200"):
            ok += 1
            lat.append(secs)
        else:
            why.append(err or status)
        time.sleep(PROBE_GAP_S)  # spacing the probes, not a synchronisation
    with attack.lock:
        figures = ("probes answered %d/%d; latency median %.1f ms max %.1f ms; attack: %d "
                   "clients, %d connections opened, %d requests answered, %d closed by the server" % (
                       ok, PROBES, 1000 * statistics.median(lat) if lat else 0.0,
                       1000 * max(lat) if lat else 0.0, len(attack.clients), attack.opened,
                       attack.answers, attack.closed_by_server))
    print("  " + figures)
    if ok != PROBES:
        raise AssertionError("/health: %s; failures: %s" % (figures, sorted(set(why))))


def under_attack(h, sources, per_source, modes):
    attack = Attack(h.port, sources, per_source, modes)
    try:
        attack.start()
        probe_series(h, attack)
    finally:
        attack.stop()


# ---- the attacks ----------------------------------------------------------------------

def test_health_is_answered_while_one_address_holds_40_keepalive_connections(h):
    under_attack(h, ["127.0.0.2"], 40, ["repeat"])


def test_health_is_answered_while_one_address_trickles_on_40_connections(h):
    under_attack(h, ["127.0.0.3"], 40, ["trickle", "silent"])


def test_health_is_answered_while_ten_addresses_hold_80_connections(h):
    # More than the server's whole connection limit, within every per-client
    # cap: only taking slots back from the least recently active makes room.
    under_attack(h, ["127.0.0.%d" % i for i in range(10, 20)], PER_CLIENT_CAP,
                 ["trickle", "repeat", "silent"])


# ---- the bounds one by one ------------------------------------------------------------

def connect_from(src, port, timeout=2.0):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((src, 0))
    s.settimeout(timeout)
    s.connect(("127.0.0.1", port))
    return s


def exchange(s, req):
    """Send req and read one response to it: the status line, or None when
    the server closed or said nothing within the socket's timeout."""
    try:
        s.sendall(req)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                return None
            data += chunk
        head, body = data.split(b"\r\n\r\n", 1)
        length = 0
        for ln in head.split(b"\r\n")[1:]:
            k, _, v = ln.partition(b":")
            if k.strip().lower() == b"content-length":
                length = int(v)
        while len(body) < length:
            chunk = s.recv(4096)
            if not chunk:
                return None
            body += chunk
        return head.split(b"\r\n", 1)[0].decode()
    except (socket.timeout, ConnectionError):
        return None


def test_one_address_gets_at_most_the_per_client_cap(h):
    held = []
    try:
        for i in range(PER_CLIENT_CAP):
            s = connect_from("127.0.0.4", h.port)
            held.append(s)
            st = exchange(s, request())
            if st is None or not st.startswith("HTTP/1.1 200"):
                raise AssertionError("connection %d of the cap not served: %r" % (i + 1, st))
        extra = connect_from("127.0.0.4", h.port)
        try:
            st = exchange(extra, request())
        except OSError:
            st = None
        extra.close()
        if st is not None:
            raise AssertionError("connection %d from one address was served: %r" % (
                PER_CLIENT_CAP + 1, st))
        other = connect_from("127.0.0.5", h.port)
        st = exchange(other, request())
        other.close()
        if st is None or not st.startswith("HTTP/1.1 200"):
            raise AssertionError("another address was not served: %r" % st)
    finally:
        for s in held:
            s.close()
    # Closed connections give their slots back.
    end = time.monotonic() + 5
    while True:
        s = connect_from("127.0.0.4", h.port)
        st = exchange(s, request())
        s.close()
        if st is not None and st.startswith("HTTP/1.1 200"):
            return
        if time.monotonic() > end:
            raise AssertionError("127.0.0.4 not served again within 5 s of closing")
        time.sleep(0.05)  # pacing a bounded poll


def test_an_idle_keepalive_connection_is_closed_after_the_idle_timeout(h):
    s = connect_from("127.0.0.6", h.port, timeout=IDLE_TIMEOUT_S + 4)
    try:
        st = exchange(s, request())
        if st is None or not st.startswith("HTTP/1.1 200"):
            raise AssertionError("first request not served: %r" % st)
        t0 = time.monotonic()
        try:
            data = s.recv(1)
        except socket.timeout:
            raise AssertionError("idle connection still open after %d s" % (IDLE_TIMEOUT_S + 4))
        secs = time.monotonic() - t0
        print("  idle connection closed after %.1f s" % secs)
        if data != b"":
            raise AssertionError("unexpected data on an idle connection: %r" % data)
        if secs < IDLE_TIMEOUT_S - 1:
            raise AssertionError("closed after %.1f s, before the idle timeout" % secs)
    finally:
        s.close()


def test_a_keepalive_connection_serves_request_after_request(h):
    s = connect_from("127.0.0.7", h.port)
    try:
        for path in ("/health", "/metrics", "/health", "/api/v1/stats"):
            st = exchange(s, request(path))
            if st is None or not st.startswith("HTTP/1.1 200"):
                raise AssertionError("%s on a reused connection: %r" % (path, st))
    finally:
        s.close()


def main():
    tests = [(n, f) for n, f in globals().items() if n.startswith("test_")]
    passed = failed = 0
    h = Harness()
    try:
        for name, fn in tests:
            t0 = time.monotonic()
            try:
                fn(h)
                print("PASS %s (%.2f s)" % (name, time.monotonic() - t0), flush=True)
                passed += 1
            except Exception:
                traceback.print_exc()
                print("FAIL %s" % name, flush=True)
                failed += 1
    finally:
        rc = h.close()
    if rc != 0:
        print("FAIL harness exit status %d" % rc)
        failed += 1
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
