#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""handshake_cpu.py - CPU time a DNS-over-TLS server spends per handshake.

  handshake_cpu.py PID PORT CA [--name dns.test] [--n 300]

Against 127.0.0.1:PORT (the server's process PID), N times: connect, handshake
(certificate verified against CA for --name), one query (hI.bench.test A),
answer read, close. Once with a fresh session each time (full handshakes),
once resuming the first connection's TLS 1.3 session ticket (resumed). Prints
the server's CPU (utime + stime from /proc/PID/stat) per connection in
microseconds for each. Only 127.0.0.1 is contacted. Standard library only.
"""
import argparse
import os
import socket
import ssl
import struct


def cpu_us(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    return ticks * 1e6 / os.sysconf("SC_CLK_TCK")


def query(i):
    name = b"".join(bytes([len(p)]) + p for p in (b"h%d" % i, b"bench", b"test")) + b"\0"
    q = struct.pack(">HHHHHH", i & 0xFFFF, 0x0100, 1, 0, 0, 0) + name + b"\0\1\0\1"
    return struct.pack(">H", len(q)) + q


def exact(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise EOFError
        b += c
    return b


def one(ctx, port, name, i, session=None):
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    s = ctx.wrap_socket(raw, server_hostname=name, session=session)
    s.sendall(query(i))
    n = struct.unpack(">H", exact(s, 2))[0]
    exact(s, n)
    sess, resumed = s.session, s.session_reused
    s.close()
    return sess, resumed


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("pid", type=int)
    ap.add_argument("port", type=int)
    ap.add_argument("ca")
    ap.add_argument("--name", default="dns.test")
    ap.add_argument("--n", type=int, default=300)
    a = ap.parse_args()
    ctx = ssl.create_default_context(cafile=a.ca)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    t0 = cpu_us(a.pid)
    for i in range(a.n):
        one(ctx, a.port, a.name, i)
    full = (cpu_us(a.pid) - t0) / a.n
    sess, _ = one(ctx, a.port, a.name, 0)
    resumed_n = 0
    t0 = cpu_us(a.pid)
    for i in range(a.n):
        s2, r = one(ctx, a.port, a.name, i, session=sess)
        resumed_n += r
        sess = s2 or sess
    res = (cpu_us(a.pid) - t0) / a.n
    print("full_us_per_conn=%.0f resumed_us_per_conn=%.0f resumed=%d/%d" % (full, res, resumed_n, a.n))


if __name__ == "__main__":
    main()
