# SPDX-License-Identifier: MIT
"""DNS clients for tests/integration/faults.sh (python3 standard library only).

Every query asks for the A record of a name nobody else asks for, so no
cache can answer it, and every reply is checked against what ts-dotserver
synthesises: the reply's ID and question must be the query's own, and a
NOERROR reply must carry the address the server derives from the name
(tests/support/dnsclient.h, ts_dns_expected_a). Anything else counts as
"wrong": the proxy must never hand a client someone else's answer.

Modes (each ends with one line "result key=value ..." on stdout):
  seq        one query at a time, each waited for, on UDP or a fresh TCP
             connection per query
  stream     queries sent at a fixed rate whatever comes back (open loop),
             with "mark NAME MS" lines printed at given times
  burst      N queries at once, "sent N" once they are out, then the replies
  flood      as fast as the replies allow with W queries outstanding (what
             dnsperf -c 1 -q W does)
  hold       N idle TCP connections (and optionally one slowloris client
             writing a query one octet per second), until SIGTERM

Classes: answered (NOERROR, right address), servfail, refused, wrong, lost
(no reply within the per-query timeout).
"""

import argparse
import errno
import os
import random
import select
import signal
import socket
import struct
import sys
import time

CLASSES = ("answered", "servfail", "refused", "wrong", "lost")


def now():
    return time.monotonic()


# ---- DNS ---------------------------------------------------------------------


def wire_name(name):
    out = b""
    for label in name.rstrip(".").split("."):
        raw = label.encode("ascii")
        out += bytes([len(raw)]) + raw
    return out + b"\0"


def expected_a(wire):
    """192.0.2.N, N = 1 + (sum of the wire name's octets, ASCII letters
    folded to lower case) mod 250."""
    total = 0
    for o in wire:
        if 0x41 <= o <= 0x5A:
            o += 0x20
        total += o
    return bytes([192, 0, 2, total % 250 + 1])


def make_query(qid, wire):
    # RD set, no EDNS: the plainest query a stub sends.
    return struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0) + wire + struct.pack(">HH", 1, 1)


def skip_name(msg, off):
    """Offset just past the (possibly compressed) name at off; bounded."""
    for _ in range(128):
        if off >= len(msg):
            raise ValueError("name runs off the end")
        n = msg[off]
        if n == 0:
            return off + 1
        if n & 0xC0 == 0xC0:
            return off + 2
        if n & 0xC0:
            raise ValueError("bad label type")
        off += 1 + n
    raise ValueError("name too long")


def classify(msg, qid, wire):
    """One of CLASSES (never "lost") for a reply to query (qid, wire)."""
    try:
        if len(msg) < 12:
            return "wrong"
        rid, flags, qd, an, _ns, _ar = struct.unpack(">HHHHHH", msg[:12])
        if rid != qid or not flags & 0x8000 or qd != 1:
            return "wrong"
        # The question must be the query's own, octet for octet (letter case
        # included: the proxy matches and never rewrites it).
        end = 12 + len(wire)
        if msg[12:end] != wire or msg[end:end + 4] != struct.pack(">HH", 1, 1):
            return "wrong"
        rcode = flags & 0xF
        if rcode == 2:
            return "servfail"
        if rcode == 5:
            return "refused"
        if rcode != 0:
            return "wrong"
        off = end + 4
        want = expected_a(wire)
        seen = 0
        for _ in range(an):
            off = skip_name(msg, off)
            rtype, _rclass, _ttl, rdlen = struct.unpack(">HHIH", msg[off:off + 10])
            off += 10
            rdata = msg[off:off + rdlen]
            if len(rdata) != rdlen:
                return "wrong"
            off += rdlen
            if rtype == 1:
                if rdata != want:
                    return "wrong"
                seen += 1
        return "answered" if seen else "wrong"
    except (ValueError, struct.error):
        return "wrong"


class Names:
    """Unique (ID, name) pairs: the ID never repeats among queries in flight
    and the name never repeats at all."""

    def __init__(self, tag):
        self.tag = tag
        self.seq = 0
        self.next_id = random.randrange(65536)

    def take(self):
        self.seq += 1
        self.next_id = (self.next_id + 1) % 65536
        name = "q%d-%d.%s.example" % (self.seq, random.randrange(1 << 30), self.tag)
        return self.next_id, wire_name(name)


# ---- results -------------------------------------------------------------------


class Tally:
    def __init__(self):
        self.counts = {c: 0 for c in CLASSES}
        self.lat = []  # seconds, replies only
        self.first = {}  # class -> send time of the first such query (relative)
        self.last = {}
        self.extra = {}
        self.last_class = None

    def add(self, cls, sent_rel, latency):
        self.last_class = cls
        self.counts[cls] += 1
        if cls not in self.first:
            self.first[cls] = sent_rel
        self.last[cls] = sent_rel
        if latency is not None:
            self.lat.append(latency)

    def line(self):
        sent = sum(self.counts.values())
        parts = ["result", "sent=%d" % sent]
        parts += ["%s=%d" % (c, self.counts[c]) for c in CLASSES]
        lat = sorted(self.lat)
        if lat:
            def pct(p):
                return lat[min(len(lat) - 1, int(p * len(lat)))]
            parts.append("p50_ms=%d" % round(pct(0.50) * 1000))
            parts.append("p99_ms=%d" % round(pct(0.99) * 1000))
            parts.append("max_ms=%d" % round(lat[-1] * 1000))
        else:
            parts += ["p50_ms=-1", "p99_ms=-1", "max_ms=-1"]
        for c in ("servfail", "refused", "wrong", "lost"):
            if c in self.first:
                parts.append("%s_first_ms=%d" % (c, round(self.first[c] * 1000)))
                parts.append("%s_last_ms=%d" % (c, round(self.last[c] * 1000)))
        for k, v in self.extra.items():
            parts.append("%s=%s" % (k, v))
        return " ".join(parts)


def say(text):
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


# ---- transports ------------------------------------------------------------------


def udp_socket(args):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((args.bind, 0))
    s.connect((args.server, args.port))
    s.setblocking(False)
    return s


def tcp_connect(args, timeout):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((args.bind, 0))
    s.settimeout(timeout)
    s.connect((args.server, args.port))
    return s


def tcp_exchange(args, qid, wire, deadline):
    """A fresh connection, one query, one reply; None when it does not come."""
    left = deadline - now()
    if left <= 0:
        return None
    try:
        s = tcp_connect(args, left)
    except OSError:
        return None
    try:
        q = make_query(qid, wire)
        s.sendall(struct.pack(">H", len(q)) + q)
        buf = b""
        while True:
            if len(buf) >= 2 and len(buf) >= 2 + struct.unpack(">H", buf[:2])[0]:
                return buf[2:2 + struct.unpack(">H", buf[:2])[0]]
            left = deadline - now()
            if left <= 0:
                return None
            s.settimeout(left)
            chunk = s.recv(65537)
            if not chunk:
                return None
            buf += chunk
    except OSError:
        return None
    finally:
        s.close()


class UdpPending:
    """Queries in flight on one UDP socket, matched by ID."""

    def __init__(self, args, tally, start):
        self.args = args
        self.sock = udp_socket(args)
        self.tally = tally
        self.start = start
        self.inflight = {}  # id -> (wire, sent time)

    def send(self, qid, wire):
        t = now()
        try:
            self.sock.send(make_query(qid, wire))
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.ENOBUFS, errno.ECONNREFUSED):
                raise
        self.inflight[qid] = (wire, t)

    def poll(self, wait):
        """Read what has come within `wait` seconds; expire what is late."""
        r, _, _ = select.select([self.sock], [], [], max(0.0, wait))
        if r:
            while True:
                try:
                    msg = self.sock.recv(65535)
                except (BlockingIOError, InterruptedError):
                    break
                except ConnectionRefusedError:
                    continue
                t = now()
                qid = struct.unpack(">H", msg[:2])[0] if len(msg) >= 2 else -1
                if qid not in self.inflight:
                    # A reply nobody is waiting for (a late one, or a wrong
                    # ID): a wrong answer unless it is a late duplicate.
                    self.tally.add("wrong", t - self.start, None)
                    continue
                wire, sent = self.inflight.pop(qid)
                self.tally.add(classify(msg, qid, wire), sent - self.start, t - sent)
        t = now()
        for qid in [q for q, (_, sent) in self.inflight.items() if t - sent >= self.args.timeout]:
            _, sent = self.inflight.pop(qid)
            self.tally.add("lost", sent - self.start, None)


# ---- modes -------------------------------------------------------------------------


def mode_seq(args):
    """Sequential queries. With --until-answered: stop at the first answer,
    giving up after that many seconds."""
    names = Names(args.tag)
    tally = Tally()
    start = now()
    i = 0
    while True:
        if args.until_answered is None and i >= args.count:
            break
        if args.until_answered is not None and now() - start >= args.until_answered:
            break
        t0 = now()
        qid, wire = names.take()
        if args.proto == "tcp":
            msg = tcp_exchange(args, qid, wire, t0 + args.timeout)
            cls = "lost" if msg is None else classify(msg, qid, wire)
            tally.add(cls, t0 - start, None if msg is None else now() - t0)
        else:
            p = UdpPending(args, tally, start)
            p.send(qid, wire)
            while p.inflight:
                p.poll(min(0.05, args.timeout))
            p.sock.close()
        say("query %d %s %d ms" % (i + 1, tally.last_class, round((now() - t0) * 1000)))
        i += 1
        if args.until_answered is not None and tally.counts["answered"]:
            tally.extra["first_answer_ms"] = round((now() - start) * 1000)
            break
        rest = t0 + args.interval - now()
        if rest > 0:
            time.sleep(rest)
    say(tally.line())


def mode_stream(args):
    names = Names(args.tag)
    tally = Tally()
    start = now()
    p = UdpPending(args, tally, start)
    marks = []
    for m in args.mark or []:
        name, at = m.split("@")
        marks.append((float(at), name))
    marks.sort()
    total = int(args.rate * args.duration)
    for k in range(total):
        due = start + k / args.rate
        while True:
            t = now()
            while marks and t - start >= marks[0][0]:
                say("mark %s %d" % (marks[0][1], round((t - start) * 1000)))
                marks.pop(0)
            if t >= due:
                break
            p.poll(min(due - t, 0.02))
        qid, wire = names.take()
        p.send(qid, wire)
    while p.inflight:
        p.poll(0.05)
    say(tally.line())


def udp_rx_queue(server, port):
    """Octets waiting in the receive queue of the UDP socket bound to
    server:port (/proc/net/udp), None when there is none."""
    want = "%08X:%04X" % (struct.unpack("<I", socket.inet_aton(server))[0], port)
    with open("/proc/net/udp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if fields[1] == want:
                return int(fields[4].split(":")[1], 16)
    return None


def wait_read(server, port, limit):
    """Until the server has read every datagram sent to it (its receive
    queue is empty), so that what comes next (a SIGTERM) finds the queries
    taken in, not waiting in the kernel. Loopback datagrams are queued by
    the time send() returns."""
    end = now() + limit
    while now() < end:
        q = udp_rx_queue(server, port)
        if not q:
            return
        time.sleep(0.001)


def mode_burst(args):
    names = Names(args.tag)
    tally = Tally()
    start = now()
    p = UdpPending(args, tally, start)
    for _ in range(args.count):
        qid, wire = names.take()
        p.send(qid, wire)
    if args.wait_read:
        wait_read(args.server, args.port, 2.0)
    say("sent %d" % args.count)
    while p.inflight:
        p.poll(0.05)
    say(tally.line())


def mode_flood(args):
    if args.nice:
        # The flooder stands for a client on another machine: on a small
        # test host it must not win the CPU from the proxy it floods.
        os.nice(args.nice)
    names = Names(args.tag)
    tally = Tally()
    start = now()
    p = UdpPending(args, tally, start)
    say("flooding")
    end = start + args.duration
    while now() < end:
        while len(p.inflight) < args.window:
            qid, wire = names.take()
            if qid in p.inflight:
                break
            p.send(qid, wire)
        p.poll(0.01)
    while p.inflight:
        p.poll(0.05)
    tally.extra["qps"] = round(sum(tally.counts.values()) / args.duration)
    say(tally.line())


def mode_hold(args):
    """Hold idle TCP connections; report how many the server closed."""
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    held = []
    for _ in range(args.count):
        held.append(tcp_connect(args, 5.0))
    slow = None
    slow_msg = b""
    if args.slowloris:
        slow = tcp_connect(args, 5.0)
        qid, wire = Names(args.tag).take()
        q = make_query(qid, wire)
        slow_msg = struct.pack(">H", len(q)) + q
    say("held %d" % len(held))
    held_at = now()
    open_socks = set(held)
    closed = 0
    written = 0
    slow_closed = 0
    end = now() + args.duration
    next_byte = now()
    while not stop and now() < end:
        if slow is not None and not slow_closed and written < len(slow_msg) and now() >= next_byte:
            try:
                slow.send(slow_msg[written:written + 1])
                written += 1
            except OSError:
                slow_closed = 1
            next_byte += 1.0
        watch = list(open_socks) + ([slow] if slow is not None and not slow_closed else [])
        try:
            r, _, _ = select.select(watch, [], [], 0.2)
        except InterruptedError:
            continue
        for s in r:
            try:
                data = s.recv(4096)
            except OSError:
                data = b""
            if data:
                continue
            if s is slow:
                slow_closed = 1
            else:
                open_socks.discard(s)
                closed += 1
                if not open_socks:
                    say("all closed %d" % round((now() - held_at) * 1000))
    tally = Tally()
    tally.extra.update(held=len(held), closed=closed, still_open=len(open_socks),
                       slowloris_octets=written, slowloris_closed=slow_closed)
    say(tally.line())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("mode", choices=["seq", "stream", "burst", "flood", "hold"])
    ap.add_argument("--server", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--bind", default="127.0.0.1", help="client source address")
    ap.add_argument("--proto", choices=["udp", "tcp"], default="udp")
    ap.add_argument("--tag", default="faults", help="second label of every name")
    ap.add_argument("--timeout", type=float, default=3.0, help="per query, seconds")
    ap.add_argument("--count", type=int, default=10)
    ap.add_argument("--interval", type=float, default=0.0)
    ap.add_argument("--until-answered", type=float, default=None, metavar="SECONDS")
    ap.add_argument("--rate", type=float, default=20.0)
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--window", type=int, default=100)
    ap.add_argument("--mark", action="append", metavar="NAME@SECONDS")
    ap.add_argument("--slowloris", action="store_true")
    ap.add_argument("--wait-read", action="store_true",
                    help="burst: say 'sent' once the server has read the queries")
    ap.add_argument("--nice", type=int, default=0, help="flood: lower own priority")
    args = ap.parse_args()
    {"seq": mode_seq, "stream": mode_stream, "burst": mode_burst, "flood": mode_flood,
     "hold": mode_hold}[args.mode](args)


if __name__ == "__main__":
    main()
