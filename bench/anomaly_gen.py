#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Traffic for the anomaly evaluation (bench/anomaly-eval.sh) and the
dynblock tests: DNS queries over UDP from chosen 127.0.0.x source addresses
at a steady rate, one kind of traffic per run. Prints one JSON line at the
end: queries sent, answers by rcode, truncated answers, timeouts.

Kinds:
  benign     several thousand ordinary names (a fixed list drawn from a
             seeded PRNG: 3000 names under 600 domains), qtype mix A 60%,
             AAAA 25%, HTTPS 8%, MX 3%, TXT 2%, PTR 2%, about 8% NXDOMAIN
             (names starting "nx", which tests/support/dotserver answers
             NXDOMAIN)
  flood      ordinary names, as fast as asked, from each source
  nxdomain   names that do not exist ("nx..."), each under its own domain
  subdomains random 12-character labels under one domain (water torture)
  tunnel     base32 labels of 50-60 characters under one domain, TXT
  amplify    ANY and TXT for "big.<domain>" (a large TXT answer)
"""
import argparse
import base64
import json
import os
import random
import select
import socket
import struct
import sys
import time

TYPES = {"A": 1, "NS": 2, "MX": 15, "TXT": 16, "AAAA": 28, "PTR": 12, "HTTPS": 65, "ANY": 255}


def wire_name(name):
    out = b""
    for label in name.rstrip(".").split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def query(qid, name, qtype, edns=True):
    msg = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 1 if edns else 0)
    msg += wire_name(name) + struct.pack(">HH", qtype, 1)
    if edns:
        msg += b"\0" + struct.pack(">HHIH", 41, 4096, 0, 0)
    return msg


def benign_names(seed=1):
    rnd = random.Random(seed)
    syll = ["an", "be", "co", "de", "ex", "fo", "ga", "hi", "in", "jo", "ka", "lo", "me",
            "no", "or", "pa", "qu", "ra", "so", "ti", "un", "ve", "wa", "xe", "yo", "ze"]
    tlds = ["com", "net", "org", "de", "co.uk", "fr", "io", "nl", "com.au", "jp"]
    doms = []
    for _ in range(600):
        w = "".join(rnd.choice(syll) for _ in range(rnd.randint(2, 4)))
        doms.append(w + "." + rnd.choice(tlds))
    hosts = ["www", "mail", "api", "cdn", "static", "img", "login", "m", "app", "shop"]
    names = []
    for _ in range(3000):
        d = rnd.choice(doms)
        h = rnd.choice(hosts)
        if rnd.random() < 0.08:
            h = "nx" + h + str(rnd.randint(0, 99))
        names.append(h + "." + d)
    return names


def qtype_mix(rnd):
    r = rnd.random()
    for t, p in (("A", 0.60), ("AAAA", 0.85), ("HTTPS", 0.93), ("MX", 0.96), ("TXT", 0.98)):
        if r < p:
            return TYPES[t]
    return TYPES["PTR"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("kind", choices=["benign", "flood", "nxdomain", "subdomains", "tunnel",
                                     "amplify"])
    ap.add_argument("--server", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--sources", default="127.0.0.2", help="comma-separated source addresses")
    ap.add_argument("--qps", type=float, default=100, help="per source")
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--domain", default="victim.example")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--qtype", choices=sorted(TYPES), help="every query of this type")
    a = ap.parse_args()

    rnd = random.Random(a.seed)
    names = benign_names()
    socks = []
    for src in a.sources.split(","):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((src, 0))
        s.setblocking(False)
        socks.append(s)
    stats = {"sent": 0, "answers": 0, "timeouts": 0, "truncated": 0, "rcodes": {}}
    pending = {}
    qid = rnd.randrange(65536)
    interval = 1.0 / a.qps
    start = time.monotonic()
    nxt = [start + i * interval / len(socks) for i in range(len(socks))]
    end = start + a.seconds

    def make(rnd):
        if a.kind in ("benign", "flood"):
            return rnd.choice(names), qtype_mix(rnd) if a.kind == "benign" else TYPES["A"]
        if a.kind == "nxdomain":
            return "nx%d.n%d.net" % (rnd.randrange(10**6), rnd.randrange(1000)), TYPES["A"]
        if a.kind == "subdomains":
            lab = "".join(rnd.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(12))
            return lab + "." + a.domain, TYPES["A"]
        if a.kind == "tunnel":
            data = bytes(rnd.randrange(256) for _ in range(rnd.randint(32, 37)))
            lab = base64.b32encode(data).decode().rstrip("=").lower()[:60]
            return lab + "." + a.domain, TYPES["TXT"]
        return "big." + a.domain, TYPES["ANY"] if rnd.random() < 0.5 else TYPES["TXT"]

    while True:
        now = time.monotonic()
        if now >= end and not pending:
            break
        if now >= end + 2:
            break
        for i, s in enumerate(socks):
            while now < end and nxt[i] <= now:
                qid = (qid + 1) & 0xFFFF
                name, t = make(rnd)
                if a.qtype:
                    t = TYPES[a.qtype]
                try:
                    s.send if False else s.sendto(query(qid, name, t), (a.server, a.port))
                    stats["sent"] += 1
                    pending[(i, qid)] = now
                except BlockingIOError:
                    pass
                nxt[i] += interval
        wait = max(0.0, min(nxt) - time.monotonic()) if now < end else 0.05
        r, _, _ = select.select(socks, [], [], min(wait, 0.05))
        for s in r:
            i = socks.index(s)
            while True:
                try:
                    data = s.recv(65535)
                except BlockingIOError:
                    break
                if len(data) < 12:
                    continue
                rid, flags = struct.unpack(">HH", data[:4])
                if pending.pop((i, rid), None) is None:
                    continue
                stats["answers"] += 1
                rc = {0: "NOERROR", 2: "SERVFAIL", 3: "NXDOMAIN", 5: "REFUSED"}.get(flags & 15, str(flags & 15))
                stats["rcodes"][rc] = stats["rcodes"].get(rc, 0) + 1
                if flags & 0x0200:
                    stats["truncated"] += 1
        # Unanswered for a second: lost (or dropped).
        now = time.monotonic()
        for k in [k for k, t in pending.items() if now - t > 1.0]:
            del pending[k]
            stats["timeouts"] += 1
    stats["timeouts"] += len(pending)
    print(json.dumps(stats))


if __name__ == "__main__":
    main()
