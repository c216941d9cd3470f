#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""dot_conns.py - DNS-over-TLS client helper for peers.sh (scenarios dot-in, dot-idle).

  dot_conns.py probe PORT CA [--name TLS_NAME] [--qname Q] [--qtype A|TXT]
                             [--answers N] [--timeout S]
      One TLS connection to 127.0.0.1:PORT, certificate verified against CA for
      TLS_NAME (default dns.test), one query (default h1.bench.test A).  Exit 0
      when the answer is NOERROR with at least N answer records (default 1) and,
      for A, an address in 198.18.0.0/15; print what came back.

  dot_conns.py idle PORT CA --conns N [--name TLS_NAME] [--parallel P]
                            [--hold S] [--timeout S]
      Open N TLS connections to 127.0.0.1:PORT (at most P handshakes+queries at
      a time, default 32), send one query on each (hI.bench.test A, I = 1..N,
      wrapping at 10000) and read its answer, then keep every connection open
      and idle.  When all N are done, print one line
          held opened=O answered=A failed=F secs=T errors=KIND:COUNT,...
      and wait for SIGTERM/SIGINT (or S seconds, default 600; 0 = close at
      once), then close everything and print "closed still_open=K" (K = those
      the server had not closed by then).  Raises RLIMIT_NOFILE as needed.

Only 127.0.0.1 is ever contacted.  Standard library only.
"""
import argparse
import asyncio
import collections
import resource
import signal
import socket
import ssl
import struct
import sys
import time


def build_query(qid, qname, qtype):
    """DNS query, RD set, no EDNS (the answers we ask for fit either way over TCP)."""
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in qname.rstrip(".").split("."):
        b = label.encode("ascii")
        q += bytes([len(b)]) + b
    q += b"\x00" + struct.pack(">HH", {"A": 1, "TXT": 16}[qtype], 1)
    return struct.pack(">H", len(q)) + q


def skip_name(msg, off):
    while True:
        n = msg[off]
        if n == 0:
            return off + 1
        if n & 0xC0 == 0xC0:
            return off + 2
        off += 1 + n


def parse_answer(msg, qid):
    """-> (rcode, [(type, rdata)...]); raises ValueError on a malformed or foreign message."""
    if len(msg) < 12:
        raise ValueError("short message")
    rid, flags, qd, an = struct.unpack(">HHHH", msg[:8])
    if rid != qid or not flags & 0x8000:
        raise ValueError("id mismatch or not a response")
    off = 12
    for _ in range(qd):
        off = skip_name(msg, off) + 4
    rrs = []
    for _ in range(an):
        off = skip_name(msg, off)
        rtype, _cls, _ttl, rdlen = struct.unpack(">HHIH", msg[off:off + 10])
        off += 10
        rrs.append((rtype, msg[off:off + rdlen]))
        off += rdlen
    if off > len(msg):
        raise ValueError("truncated message")
    return flags & 0xF, rrs


def answer_ok(rcode, rrs, qtype, want):
    if rcode != 0 or len(rrs) < want:
        return False
    if qtype == "A":
        return any(t == 1 and len(d) == 4 and d[0] == 198 and d[1] in (18, 19) for t, d in rrs)
    return True


def tls_context(ca):
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca)
    ctx.check_hostname = True
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def raise_nofile(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < need:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (need, max(hard, need) if hard != resource.RLIM_INFINITY else hard))
        except (ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def recv_exact(sock, n):
    b = b""
    while len(b) < n:
        c = sock.recv(n - len(b))
        if not c:
            raise ConnectionError("closed by server")
        b += c
    return b


def probe(a):
    ctx = tls_context(a.ca)
    qid = 0x4242
    try:
        with socket.create_connection(("127.0.0.1", a.port), timeout=a.timeout) as raw:
            with ctx.wrap_socket(raw, server_hostname=a.name) as s:
                s.sendall(build_query(qid, a.qname, a.qtype))
                (ln,) = struct.unpack(">H", recv_exact(s, 2))
                rcode, rrs = parse_answer(recv_exact(s, ln), qid)
                version = s.version()
    except (OSError, ValueError, ssl.SSLError) as e:
        print(f"probe: {type(e).__name__}: {e}")
        return 1
    ok = answer_ok(rcode, rrs, a.qtype, a.answers)
    print(f"probe: {'ok' if ok else 'BAD'} rcode={rcode} answers={len(rrs)} {version}")
    return 0 if ok else 1


async def idle(a):
    raise_nofile(a.conns + 256)
    ctx = tls_context(a.ca)
    sem = asyncio.Semaphore(a.parallel)
    held = []            # (reader, writer) of every connection that opened
    errors = collections.Counter()
    counts = {"answered": 0, "failed": 0}

    async def one(i):
        qid = i % 65536
        qname = f"h{i % 10000 + 1}.bench.test"
        async with sem:
            try:
                r, w = await asyncio.wait_for(
                    asyncio.open_connection("127.0.0.1", a.port, ssl=ctx, server_hostname=a.name), a.timeout)
            except Exception as e:  # noqa: BLE001 - every failure is counted, by kind
                errors["connect:" + type(e).__name__] += 1
                counts["failed"] += 1
                return
            held.append((r, w))
            try:
                w.write(build_query(qid, qname, "A"))
                await w.drain()
                (ln,) = struct.unpack(">H", await asyncio.wait_for(r.readexactly(2), a.timeout))
                msg = await asyncio.wait_for(r.readexactly(ln), a.timeout)
                rcode, rrs = parse_answer(msg, qid)
                if answer_ok(rcode, rrs, "A", 1):
                    counts["answered"] += 1
                else:
                    errors[f"answer:rcode{rcode}/an{len(rrs)}"] += 1
                    counts["failed"] += 1
            except Exception as e:  # noqa: BLE001
                errors["query:" + type(e).__name__] += 1
                counts["failed"] += 1

    t0 = time.monotonic()
    await asyncio.gather(*(one(i) for i in range(a.conns)))
    secs = time.monotonic() - t0
    err = ",".join(f"{k}:{v}" for k, v in errors.most_common()) or "none"
    print(f"held opened={len(held)} answered={counts['answered']} failed={counts['failed']} "
          f"secs={secs:.2f} errors={err}", flush=True)

    if a.hold > 0:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        try:
            await asyncio.wait_for(stop.wait(), a.hold)
        except asyncio.TimeoutError:
            pass
    still = sum(1 for r, w in held if not r.at_eof() and not w.is_closing())
    for _, w in held:
        w.close()
    print(f"closed still_open={still}", flush=True)
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("probe", "idle"):
        s = sub.add_parser(name)
        s.add_argument("port", type=int)
        s.add_argument("ca")
        s.add_argument("--name", default="dns.test")
        s.add_argument("--timeout", type=float, default=5.0)
    pr = sub.choices["probe"]
    pr.add_argument("--qname", default="h1.bench.test")
    pr.add_argument("--qtype", default="A", choices=("A", "TXT"))
    pr.add_argument("--answers", type=int, default=1)
    idl = sub.choices["idle"]
    idl.add_argument("--conns", type=int, required=True)
    idl.add_argument("--parallel", type=int, default=32)
    idl.add_argument("--hold", type=float, default=600.0)
    a = p.parse_args()
    if a.cmd == "probe":
        return probe(a)
    return asyncio.run(idle(a))


if __name__ == "__main__":
    sys.exit(main())
