#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The anomaly detectors' evaluation (run by bench/anomaly-eval.sh).

Starts the in-tree DoT upstream (ts-dotserver) and dotproxyd -w 2 on
loopback with the rules of docs/anomaly.md's "evaluation" set, runs a benign
background load from 4 addresses (bench/anomaly_gen.py benign: 3000 names
under 600 domains, 8% NXDOMAIN, A/AAAA/HTTPS/MX/TXT/PTR mix) for the whole
run, and one after another: a single-client flood, a random-subdomain flood
from 8 addresses, a DNS tunnel (base32 50-60 character labels, TXT, 30 qps),
and amplification (ANY/TXT for a ~3000-octet answer over UDP). For each it
prints the time from the attack's start to its block (the block's "since",
GET /api/v1/dynblocks), what was blocked, and every block of a benign
client or domain (false positives). Everything started is stopped by PID."""
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

BUILD = sys.argv[1] if len(sys.argv) > 1 else "build"
HERE = os.path.dirname(os.path.abspath(__file__))
GEN = os.path.join(HERE, "anomaly_gen.py")
RULES = ["qps>100,action=refuse", "nxdomain>20,action=refuse",
         "bytes>100000,action=truncate", "subdomains>50,action=refuse",
         "tunnel>0.6,action=drop"]
BENIGN = ["127.0.0.20", "127.0.0.21", "127.0.0.22", "127.0.0.23"]

procs = []


def start(args, **kw):
    p = subprocess.Popen(args, **kw)
    procs.append(p)
    return p


def wait_line(path, rx, timeout=20):
    end = time.time() + timeout
    while time.time() < end:
        try:
            m = re.search(rx, open(path, errors="replace").read(), re.M)
            if m:
                return m
        except FileNotFoundError:
            pass
        time.sleep(0.1)
    raise SystemExit("no line /%s/ in %s" % (rx, path))


def main():
    work = tempfile.mkdtemp(prefix="anomaly-eval.")
    try:
        pki = os.path.join(work, "pki")
        os.mkdir(pki)
        subprocess.run([os.path.join(BUILD, "tests/support/ts-pki"), pki], check=True,
                       stdout=subprocess.DEVNULL)
        srv_log = os.path.join(work, "srv.log")
        start([os.path.join(BUILD, "tests/support/ts-dotserver"), "--cert", pki + "/server.pem",
               "--key", pki + "/server-key.pem"], stdout=open(srv_log, "w"),
              stderr=subprocess.STDOUT)
        up = wait_line(srv_log, r"^port (\d+)$").group(1)
        px_log = os.path.join(work, "dotproxyd.log")
        args = [os.path.join(BUILD, "cli/dotproxyd"), "-w", "2", "--listen", "127.0.0.1@0",
                "-u", "127.0.0.1@%s#dns.test" % up, "--ca-file", pki + "/ca.pem",
                "--metrics", "127.0.0.1@0", "--udp-size", "4096"]
        for r in RULES:
            args += ["--dynblock", r]
        start(args, stdout=open(px_log, "w"), stderr=subprocess.STDOUT)
        mport = wait_line(px_log, r"metrics and API on port (\d+)").group(1)
        port = wait_line(px_log, r"listening on 127\.0\.0\.1@(\d+)").group(1)

        def blocks():
            with urllib.request.urlopen("http://127.0.0.1:%s/api/v1/dynblocks" % mport,
                                        timeout=5) as r:
                return json.load(r)["blocks"]

        def gen(kind, sources, qps, seconds, domain="victim.example"):
            return start([sys.executable, GEN, kind, "--port", port, "--sources",
                          ",".join(sources), "--qps", str(qps), "--seconds", str(seconds),
                          "--domain", domain], stdout=subprocess.PIPE, text=True)

        scenarios = [
            ("single-client flood (1000 qps)", "flood", ["127.0.0.2"], 1000, 8, "x.example",
             lambda k: k == "127.0.0.2"),
            ("random subdomains (8 x 50 qps)", "subdomains",
             ["127.0.0.%d" % i for i in range(30, 38)], 50, 8, "victim.co.uk",
             lambda k: k == "victim.co.uk"),
            ("DNS tunnel (base32, TXT, 30 qps)", "tunnel", ["127.0.0.40"], 30, 15,
             "t.tunnel.example", lambda k: k == "127.0.0.40 tunnel.example"),
            ("amplification (ANY/TXT, 100 qps)", "amplify", ["127.0.0.50"], 100, 8,
             "amp.example", lambda k: k == "127.0.0.50"),
        ]
        total = 4 + sum(s[4] + 4 for s in scenarios)
        bg = gen("benign", BENIGN, 20, total)
        time.sleep(3)  # the benign load alone first
        rows = []
        seen = set()
        for name, kind, src, qps, secs, dom, is_attack in scenarios:
            t0 = time.time()
            g = gen(kind, src, qps, secs, dom)
            first = None
            keys = set()
            while g.poll() is None:
                for b in blocks():
                    if is_attack(b["key"]):
                        keys.add(b["key"] + " (" + b["detector"] + ", " + b["action"] + ")")
                        if first is None:
                            first = b["since"] - t0
                time.sleep(0.2)
            out = json.loads(g.stdout.read() or "{}")
            for b in blocks():
                if is_attack(b["key"]):
                    keys.add(b["key"] + " (" + b["detector"] + ", " + b["action"] + ")")
                    if first is None:
                        first = b["since"] - t0
            rows.append((name, first, sorted(keys), out))
            time.sleep(3)
        bg_out = json.loads(bg.communicate()[0] or "{}")
        # False positives: every event whose key is not an attacker's.
        attack_keys = ("127.0.0.2", "victim.co.uk", "127.0.0.40 tunnel.example", "127.0.0.50")
        fps = []
        for line in open(px_log, errors="replace"):
            m = re.search(r"dynblock start: \w+ rule '([^']*)' \((\w+)\) key (.*?), ", line)
            if m and m.group(3) not in attack_keys:
                fps.append("%s by '%s' (%s)" % (m.group(3), m.group(1), m.group(2)))
        print("rules: " + "  ".join("--dynblock '%s'" % r for r in RULES))
        print("benign background: %s at 20 qps each; sent %s, answers %s, rcodes %s" % (
            ",".join(BENIGN), bg_out.get("sent"), bg_out.get("answers"), bg_out.get("rcodes")))
        print()
        print("| scenario | time to detection | blocked | attacker's queries: sent / answered / "
              "rcodes / TC |")
        print("| --- | --- | --- | --- |")
        for name, first, keys, out in rows:
            print("| %s | %s | %s | %s / %s / %s / %s |" % (
                name, "%.2f s" % first if first is not None else "not detected",
                "; ".join(keys) or "-", out.get("sent"), out.get("answers"),
                out.get("rcodes"), out.get("truncated")))
        print()
        print("false positives (blocks or events of benign clients or domains): %d" % len(fps))
        for f in fps:
            print("  " + f)
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    main()
