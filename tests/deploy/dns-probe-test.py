#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""dns-probe-test.py PROBE

Runs the container HEALTHCHECK script (deploy/docker/dns-probe) against a scripted
DNS responder on 127.0.0.1 and checks its verdicts: healthy only for a timely answer
with the query's ID, QR set and RCODE NOERROR/NXDOMAIN; unhealthy for SERVFAIL,
REFUSED, a wrong ID, a non-response, silence and a closed port.  Also checks that
the probe's datagram is a well-formed query for the configured name (type NS, IN).
Loopback only; every wait is bounded.
"""
import os
import socket
import struct
import subprocess
import sys
import threading


def parse_query(data):
    ident, flags, qd, an, ns, ar = struct.unpack("!6H", data[:12])
    pos, labels = 12, []
    while True:
        n = data[pos]
        pos += 1
        if n == 0:
            break
        labels.append(data[pos:pos + n].decode("ascii"))
        pos += n
    qtype, qclass = struct.unpack("!2H", data[pos:pos + 4])
    return {"id": ident, "flags": flags, "counts": (qd, an, ns, ar),
            "name": ".".join(labels) + ".", "qtype": qtype, "qclass": qclass,
            "trailing": len(data) - (pos + 4), "question": data[12:pos + 4]}


class Responder:
    """Answers each query per `mode`; records what it received."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(10)
        self.port = self.sock.getsockname()[1]
        self.mode = "noerror"
        self.queries = []
        self.errors = []
        self.stop = False
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while not self.stop:
            try:
                data, peer = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            if self.stop:
                return
            try:
                q = parse_query(data)
            except (IndexError, struct.error, UnicodeDecodeError) as e:
                self.errors.append(f"unparseable query {data!r}: {e}")
                continue
            self.queries.append(q)
            rcode = {"noerror": 0, "nxdomain": 3, "servfail": 2, "refused": 5}.get(self.mode, 0)
            ident = q["id"] ^ 0x5555 if self.mode == "wrong-id" else q["id"]
            flags = 0x8180 | rcode
            if self.mode == "not-response":
                flags = 0x0100
            if self.mode == "silent":
                continue
            reply = struct.pack("!6H", ident, flags, 1, 0, 0, 0) + q["question"]
            self.sock.sendto(reply, peer)

    def close(self):
        self.stop = True
        self.sock.close()


# Answered cases return as soon as the answer comes; the generous limit only keeps a
# loaded machine (parallel tests, sanitizer builds) from failing them.
def run_probe(probe, port, name=None, timeout="5", probe_id=None):
    env = dict(os.environ, DOTPROXY_PROBE_ADDR="127.0.0.1", DOTPROXY_PROBE_PORT=str(port),
               DOTPROXY_PROBE_TIMEOUT=timeout)
    if probe_id is not None:
        env["DOTPROXY_PROBE_ID"] = probe_id
    if name is not None:
        env["DOTPROXY_PROBE_NAME"] = name
    p = subprocess.run(["bash", probe], env=env, capture_output=True, text=True, timeout=30)
    return p.returncode, p.stderr.strip()


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    probe = argv[1]
    failures = []
    r = Responder()

    def expect(label, mode, want_rc, want_msg="", name=None, timeout="5", probe_id=None):
        r.mode = mode
        before = len(r.queries)
        rc, err = run_probe(probe, r.port, name, timeout, probe_id)
        good = rc == want_rc and want_msg in err
        print(f"{'ok' if good else 'FAIL'}: {label}: exit {rc} {err!r}")
        if not good:
            failures.append(label)
        return r.queries[before:]

    qs = expect("healthy on NOERROR", "noerror", 0)
    if len(qs) != 1:
        failures.append(f"expected exactly one datagram per probe, got {len(qs)}")
    else:
        q = qs[0]
        checks = {
            "RD set, opcode QUERY, QR clear": q["flags"] == 0x0100,
            "one question, no other records": q["counts"] == (1, 0, 0, 0),
            "default name is the root": q["name"] == ".",
            "type NS, class IN": (q["qtype"], q["qclass"]) == (2, 1),
            "nothing after the question": q["trailing"] == 0,
        }
        for what, good in checks.items():
            print(f"{'ok' if good else 'FAIL'}: query: {what}")
            if not good:
                failures.append(what)
    qs = expect("healthy on NXDOMAIN, for a configured name", "nxdomain", 0, name="probe.example.org")
    if qs and qs[0]["name"] != "probe.example.org.":
        failures.append(f"configured name sent as {qs[0]['name']}")
    # Octets 0x0a (newline) in the ID and as a label length (a 10-letter label):
    # the datagram must still leave whole (a shell printf would split it).
    qs = expect("healthy with newline octets in the query", "noerror", 0,
                name="abcdefghij.example", probe_id="0a0a")
    if len(qs) != 1 or qs[0]["id"] != 0x0a0a or qs[0]["name"] != "abcdefghij.example.":
        failures.append(f"query with newline octets arrived as {qs!r}")
    ids = {q["id"] for q in r.queries if q["id"] != 0x0a0a}
    expect("unhealthy on SERVFAIL", "servfail", 1, "SERVFAIL")
    expect("unhealthy on REFUSED", "refused", 1, "REFUSED")
    expect("unhealthy when the answer has another ID", "wrong-id", 1, "does not match")
    expect("unhealthy when the reply is not a response", "not-response", 1, "QR clear")
    expect("unhealthy when nothing answers in time", "silent", 1, "no answer", timeout="1")
    # 1, never 2: Docker reserves exit 2 in a HEALTHCHECK.
    expect("rejects a malformed name", "noerror", 1, "bad name", name="a..b")
    if len(ids) < 2:
        failures.append("probe IDs are not fresh per run")
    r.close()

    # A port nobody listens on: the connected socket sees ICMP port-unreachable.
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    closed = s.getsockname()[1]
    s.close()
    rc, err = run_probe(probe, closed, timeout="2")
    good = rc == 1
    print(f"{'ok' if good else 'FAIL'}: unhealthy when the port is closed: exit {rc} {err!r}")
    if not good:
        failures.append("closed port")

    if r.errors:
        failures += r.errors
    if failures:
        print(f"dns-probe-test: {len(failures)} failure(s): {failures}")
        return 1
    print("dns-probe-test: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
