#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""dotproxyd under the conditions a red team found it failing in (issue 11),
black box, python3 standard library only. One case per run:

  logblock  stderr is a pipe nobody reads: queries (a cached one, then new
            ones) are still answered; lines that did not fit are counted on
            /metrics and reported once the pipe is read again; what was
            queued at SIGTERM is written before the exit.
  repeat    the same warning from every worker, many times: written once,
            then summed up.
  fifo      a FIFO given as the configuration file, the CA file or the API
            token file is refused at once (exit 2, the option and the path
            named), and on a reload the error is logged and the running
            configuration kept.
  perms     a configuration or token file writable by others is used with a
            warning naming it.
  reload    --user nobody (started as root) with a root-owned 0600 token
            file: POST /api/v1/reload works, and a reload that fails (the
            file unreadable for the user) answers 500 {"reloaded":false}.

Usage: hardening.py CASE DOTPROXYD TS_DOTSERVER TS_PKI
Prints "ok: ..." per check and a "figures:" line; exit 0, 1 (a check
failed) or 77 (skipped)."""

import http.client
import os
import re
import select
import signal
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "faults"))
import dnsq  # noqa: E402  (wire_name, make_query, classify)

CASE, DOTPROXYD, TS_DOTSERVER, TS_PKI = sys.argv[1:5]
WORK = tempfile.mkdtemp(prefix="dotproxy-hardening-")
FAILED = []
PROCS = []


def ok(what):
    print("ok: " + what, flush=True)


def check(cond, what, detail=""):
    if cond:
        ok(what)
    else:
        FAILED.append(what)
        print("FAIL: %s%s" % (what, (": " + detail) if detail else ""), flush=True)


def start(args, **kw):
    p = subprocess.Popen(args, **kw)
    PROCS.append(p)
    return p


def cleanup():
    for p in PROCS:
        if p.poll() is None:
            p.kill()
            p.wait()
    subprocess.run(["rm", "-rf", WORK])


def make_pki():
    pki = os.path.join(WORK, "pki")
    os.mkdir(pki)
    subprocess.run([TS_PKI, pki], check=True, stdout=subprocess.DEVNULL)
    return pki


def start_dotserver(pki):
    p = start([TS_DOTSERVER, "--cert", pki + "/server.pem", "--key", pki + "/server-key.pem"],
              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    line = p.stdout.readline().decode()
    m = re.match(r"port (\d+)", line)
    if not m:
        raise SystemExit("ts-dotserver did not start: %r" % line)
    return int(m.group(1))


def query(port, name, timeout, qid=0x1234, tcp=False):
    """The class of the reply (dnsq.CLASSES), "lost" when none in time."""
    wire = dnsq.wire_name(name)
    q = dnsq.make_query(qid, wire)
    try:
        if tcp:
            with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
                s.sendall(struct.pack(">H", len(q)) + q)
                buf = b""
                while len(buf) < 2 or len(buf) < 2 + struct.unpack(">H", buf[:2])[0]:
                    chunk = s.recv(4096)
                    if not chunk:
                        return "lost"
                    buf += chunk
                return dnsq.classify(buf[2:], qid, wire)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(timeout)
            s.sendto(q, ("127.0.0.1", port))
            msg, _ = s.recvfrom(4096)
            return dnsq.classify(msg, qid, wire)
    except OSError:
        return "lost"


def udp_batch(port, names, timeout):
    """Send every name at once on one socket; how many were answered."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    pending = {}
    for i, name in enumerate(names):
        wire = dnsq.wire_name(name)
        pending[i + 1] = wire
        s.sendto(dnsq.make_query(i + 1, wire), ("127.0.0.1", port))
    answered = 0
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        r, _, _ = select.select([s], [], [], max(0.0, deadline - time.monotonic()))
        if not r:
            break
        msg = s.recv(4096)
        if len(msg) < 2:
            continue
        qid = struct.unpack(">H", msg[:2])[0]
        wire = pending.pop(qid, None)
        if wire is not None and dnsq.classify(msg, qid, wire) == "answered":
            answered += 1
    s.close()
    return answered


def http_req(port, method, path, token=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    headers = {"Host": "127.0.0.1"}
    if token is not None:
        headers["Authorization"] = "Bearer " + token
    c.request(method, path, headers=headers)
    r = c.getresponse()
    body = r.read().decode()
    c.close()
    return r.status, body


class FdReader:
    """Lines from a file descriptor read only when asked (a pipe end)."""

    def __init__(self, fd):
        self.fd = fd
        self.buf = b""
        self.lines = []
        os.set_blocking(fd, False)

    def pump(self, timeout):
        r, _, _ = select.select([self.fd], [], [], timeout)
        if not r:
            return False
        try:
            data = os.read(self.fd, 65536)
        except BlockingIOError:
            return False
        self.buf += data
        *done, self.buf = self.buf.split(b"\n")
        self.lines += [d.decode(errors="replace") for d in done]
        return bool(data)

    def wait_for(self, regex, timeout):
        deadline = time.monotonic() + timeout
        pat = re.compile(regex)
        seen = 0
        while True:
            for i in range(seen, len(self.lines)):
                m = pat.search(self.lines[i])
                if m:
                    return m
            seen = len(self.lines)
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.pump(min(left, 0.2))

    def drain(self):
        while self.pump(0):
            pass


def wait_file(path, regex, timeout):
    deadline = time.monotonic() + timeout
    pat = re.compile(regex, re.M)
    while time.monotonic() < deadline:
        with open(path, errors="replace") as f:
            m = pat.search(f.read())
        if m:
            return m
        time.sleep(0.05)
    return None


def read_file(path):
    with open(path, errors="replace") as f:
        return f.read()


# ---- logblock ------------------------------------------------------------------


def case_logblock():
    pki = make_pki()
    up = start_dotserver(pki)
    fifo = os.path.join(WORK, "stderr.fifo")
    os.mkfifo(fifo)
    # O_RDWR: the open does not wait for a reader, and this end is the one
    # reader, which reads only when the test says so.
    rfd = os.open(fifo, os.O_RDWR)
    wfd = os.open(fifo, os.O_WRONLY)
    p = start([DOTPROXYD, "--listen", "127.0.0.1@0", "-u", "127.0.0.1@%d#dns.test" % up,
               "--ca-file", pki + "/ca.pem", "--log-queries", "1000000", "--metrics",
               "127.0.0.1@0", "--timeout", "3000"],
              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=wfd)
    os.close(wfd)
    log = FdReader(rfd)
    m = log.wait_for(r"metrics and API on port (\d+)", 20)
    check(m is not None, "logblock: metrics port logged")
    mport = int(m.group(1))
    m = log.wait_for(r"listening on 127\.0\.0\.1@(\d+)", 20)
    check(m is not None, "logblock: startup line")
    port = int(m.group(1))
    check(query(port, "cached.example", 5) == "answered", "logblock: first query answered")
    # From here on nobody reads the pipe: 64 KiB of query lines fill it.
    sent = answered = 0
    t0 = time.monotonic()
    for burst in range(40):
        names = ["cached.example"] * 25 + ["n%d-%d.example" % (burst, i) for i in range(25)]
        sent += len(names)
        got = udp_batch(port, names, 3)
        answered += got
        if got == 0:
            break  # the worker is stuck: no point in waiting 3 s per burst
    flood_s = time.monotonic() - t0
    check(answered == sent, "logblock: every flood query answered while stderr is blocked",
          "%d of %d" % (answered, sent))
    t = time.monotonic()
    cached = query(port, "cached.example", 2)
    cached_ms = (time.monotonic() - t) * 1000
    check(cached == "answered", "logblock: cached query answered within 2 s after the flood")
    fresh = query(port, "fresh.example", 3)
    check(fresh == "answered", "logblock: new query answered within 3 s after the flood")
    check(query(port, "tcp.example", 3, tcp=True) == "answered", "logblock: TCP query answered")
    status, body = http_req(mport, "GET", "/metrics")
    m = re.search(r"^dotproxyd_log_lines_dropped_total (\d+)$", body, re.M)
    dropped = int(m.group(1)) if m else -1
    check(status == 200 and dropped > 0, "logblock: /metrics counts dropped log lines",
          "status %d, value %d" % (status, dropped))
    # Reading again: the writer resumes and says how much it lost.
    m = log.wait_for(r"(\d+) log lines? dropped", 10)
    check(m is not None, "logblock: the dropped lines are reported once the pipe is read")
    reported = int(m.group(1)) if m else 0
    p.send_signal(signal.SIGTERM)
    try:
        rc = p.wait(timeout=15)
    except subprocess.TimeoutExpired:
        rc = None
    log.drain()
    check(rc == 0, "logblock: SIGTERM exit status 0", str(rc))
    check(any(re.search(r"dotproxyd: info: stopped$", ln) for ln in log.lines),
          "logblock: the last line ('stopped') was written before the exit")
    # Again, but the pipe is never read: SIGTERM still ends the daemon, the
    # wait for the log to drain being bounded.
    fifo2 = os.path.join(WORK, "stderr2.fifo")
    os.mkfifo(fifo2)
    rfd2 = os.open(fifo2, os.O_RDWR)
    wfd2 = os.open(fifo2, os.O_WRONLY)
    p2 = start([DOTPROXYD, "--listen", "127.0.0.1@0", "-u", "127.0.0.1@%d#dns.test" % up,
                "--ca-file", pki + "/ca.pem", "--log-queries", "1000000"],
               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=wfd2)
    os.close(wfd2)
    log2 = FdReader(rfd2)
    m = log2.wait_for(r"listening on 127\.0\.0\.1@(\d+)", 20)
    check(m is not None, "logblock: second daemon started")
    port2 = int(m.group(1))
    flood2 = sum(udp_batch(port2, ["cached.example"] * 50, 3) for _ in range(30))
    check(flood2 == 1500, "logblock: second flood answered", "%d of 1500" % flood2)
    t = time.monotonic()
    p2.send_signal(signal.SIGTERM)
    try:
        rc2 = p2.wait(timeout=10)
    except subprocess.TimeoutExpired:
        rc2 = None
    stop_ms = (time.monotonic() - t) * 1000
    check(rc2 == 0, "logblock: SIGTERM ends it although its log is never read", str(rc2))
    os.close(rfd2)
    print("figures: logblock: %d of %d flood queries answered in %.1f s with stderr blocked; "
          "cached query after the flood: %s in %.0f ms; dropped lines: %d on /metrics, "
          "%d reported in the log; SIGTERM with the log never read: exit %s after %.0f ms" %
          (answered, sent, flood_s, cached, cached_ms, dropped, reported, rc2, stop_ms),
          flush=True)


# ---- repeat --------------------------------------------------------------------


def case_repeat():
    """An upstream that refuses every connection, four workers: each worker
    logs the same warning at every connect attempt. It is written once; the
    repeats are summed up (here at the exit, before the minute is over)."""
    pki = make_pki()
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    dead = closed.getsockname()[1]
    closed.close()  # nothing listens there now: connects are refused
    logf = os.path.join(WORK, "repeat.log")
    with open(logf, "w") as lf:
        p = start([DOTPROXYD, "--listen", "127.0.0.1@0", "-u", "127.0.0.1@%d#dns.test" % dead,
                   "--ca-file", pki + "/ca.pem", "--timeout", "300", "--workers", "4"],
                  stdin=subprocess.DEVNULL, stdout=lf, stderr=lf)
    m = wait_file(logf, r"listening on 127\.0\.0\.1@(\d+)", 20)
    check(m is not None, "repeat: started")
    port = int(m.group(1))
    end = time.monotonic() + 4
    n = 0
    while time.monotonic() < end:
        # new source ports: the kernel spreads them over the workers
        udp_batch(port, ["r%d-%d.example" % (n, i) for i in range(8)], 0.3)
        n += 1
    p.send_signal(signal.SIGTERM)
    check(p.wait(timeout=15) == 0, "repeat: SIGTERM exit status 0")
    text = read_file(logf)
    warn = re.compile(r"warning: upstream 127\.0\.0\.1@%d#dns\.test: connect: " % dead)
    lines = [ln for ln in text.splitlines() if warn.search(ln)]
    summary = re.search(r"warning: the last message was repeated (\d+) more times? in \d+ s: "
                        r"upstream 127\.0\.0\.1@%d#dns\.test: connect: " % dead, text)
    check(len(lines) == 1, "repeat: the refused connect is logged once", "%d times" % len(lines))
    check(summary is not None, "repeat: its repeats are summed up", text[-800:])
    print("figures: repeat: %d 'connect: refused' line(s) written, %s repeats summed up" %
          (len(lines), summary.group(1) if summary else "no"), flush=True)


# ---- fifo ----------------------------------------------------------------------


def run_exit(args, timeout=10):
    try:
        r = subprocess.run(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=timeout)
        return r.returncode, r.stderr.decode(errors="replace")
    except subprocess.TimeoutExpired:
        return None, "(still running after %d s)" % timeout


def case_fifo():
    pki = make_pki()
    up = start_dotserver(pki)
    fifo = os.path.join(WORK, "a.fifo")
    os.mkfifo(fifo)
    base = [DOTPROXYD, "--listen", "127.0.0.1@0", "-u", "127.0.0.1@%d#dns.test" % up,
            "--ca-file", pki + "/ca.pem"]
    for what, args, opt in (("config file", ["-c", fifo], "config"),
                            ("config file, --check-config", ["--check-config", "-c", fifo],
                             "config"),
                            ("CA file", ["--ca-file", fifo], "ca-file"),
                            ("API token file", ["--api-token-file", fifo], "api-token-file")):
        rc, err = run_exit(base + args)
        check(rc == 2, "fifo: %s: exit status 2 at once" % what, "%s, %s" % (rc, err.strip()))
        check(opt in err and fifo in err and "not a regular file" in err,
              "fifo: %s: message names the option and the path" % what, err.strip())
    # A device that is not /dev/null is refused as well; /dev/null, the
    # documented "no file", is still an empty configuration.
    rc, err = run_exit(base + ["-c", "/dev/zero"])
    check(rc == 2 and "config" in err and "/dev/zero" in err and "not a regular file" in err,
          "fifo: /dev/zero as the config file refused", "%s, %s" % (rc, err.strip()))
    rc, err = run_exit(base + ["--check-config", "-c", "/dev/null"])
    check(rc == 0 and err == "", "fifo: -c /dev/null still accepted, without a warning",
          "%s, %s" % (rc, err.strip()))
    # In the file: a FIFO as ca-file.
    conf = os.path.join(WORK, "fifo.conf")
    with open(conf, "w") as f:
        f.write("ca-file = %s\n" % fifo)
    rc, err = run_exit(base[:5] + ["-c", conf])
    check(rc == 2 and "ca-file" in err and fifo in err, "fifo: ca-file in the file refused",
          "%s, %s" % (rc, err.strip()))
    # A reload that meets a FIFO: logged, the running configuration kept.
    with open(conf, "w") as f:
        f.write("upstream = 127.0.0.1@%d#dns.test\nca-file = %s/ca.pem\n" % (up, pki))
    logf = os.path.join(WORK, "fifo-reload.log")
    with open(logf, "w") as lf:
        p = start([DOTPROXYD, "--listen", "127.0.0.1@0", "-c", conf], stdin=subprocess.DEVNULL,
                  stdout=lf, stderr=lf)
    m = wait_file(logf, r"listening on 127\.0\.0\.1@(\d+)", 20)
    check(m is not None, "fifo: daemon started from the file")
    port = int(m.group(1))
    os.rename(conf, conf + ".orig")
    os.mkfifo(conf)
    p.send_signal(signal.SIGHUP)
    m = wait_file(logf, r"reload: .*%s.*not a regular file.*keeping" % re.escape(conf), 10)
    check(m is not None, "fifo: reload onto a FIFO config logged and refused",
          read_file(logf)[-500:])
    check(query(port, "after.example", 3) == "answered", "fifo: still answering after it")
    os.unlink(conf)
    os.rename(conf + ".orig", conf)
    with open(conf, "w") as f:
        f.write("upstream = 127.0.0.1@%d#dns.test\nca-file = %s\n" % (up, fifo))
    p.send_signal(signal.SIGHUP)
    m = wait_file(logf, r"reload: .*ca-file = '%s'.*not a regular file" % re.escape(fifo), 10)
    check(m is not None, "fifo: reload with a FIFO ca-file logged and refused",
          read_file(logf)[-500:])
    check(query(port, "after2.example", 3) == "answered", "fifo: still answering after that")
    p.send_signal(signal.SIGTERM)
    check(p.wait(timeout=15) == 0, "fifo: SIGTERM exit status 0")


# ---- perms ---------------------------------------------------------------------


def case_perms():
    pki = make_pki()
    up = start_dotserver(pki)
    conf = os.path.join(WORK, "open.conf")
    with open(conf, "w") as f:
        f.write("upstream = 127.0.0.1@%d#dns.test\nca-file = %s/ca.pem\n" % (up, pki))
    tok = os.path.join(WORK, "token")
    with open(tok, "w") as f:
        f.write("s3cret-token\n")
    os.chmod(conf, 0o666)
    os.chmod(tok, 0o602)
    logf = os.path.join(WORK, "perms.log")
    with open(logf, "w") as lf:
        p = start([DOTPROXYD, "--listen", "127.0.0.1@0", "-c", conf, "--api-token-file", tok,
                   "--metrics", "127.0.0.1@0"], stdin=subprocess.DEVNULL, stdout=lf, stderr=lf)
    check(wait_file(logf, r"listening on 127\.0\.0\.1@(\d+)", 20) is not None,
          "perms: started")
    text = read_file(logf)
    check(re.search(r"warning: .*%s.*writable by" % re.escape(conf), text) is not None,
          "perms: world-writable config file warned about", text)
    check(re.search(r"warning: .*%s.*writable by" % re.escape(tok), text) is not None,
          "perms: world-writable token file warned about", text)
    # and on a reload, the file is looked at again
    p.send_signal(signal.SIGHUP)
    m = wait_file(logf, r"reload: configuration re-read", 10)
    text = read_file(logf)
    check(m is not None and len(re.findall(r"warning: .*%s.*writable by" % re.escape(conf),
                                           text)) >= 2,
          "perms: the warning is repeated on reload", text)
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=15)
    # Kept private: no warning.
    os.chmod(conf, 0o644)
    os.chmod(tok, 0o600)
    logf = os.path.join(WORK, "perms-ok.log")
    with open(logf, "w") as lf:
        p = start([DOTPROXYD, "--listen", "127.0.0.1@0", "-c", conf, "--api-token-file", tok,
                   "--metrics", "127.0.0.1@0"], stdin=subprocess.DEVNULL, stdout=lf, stderr=lf)
    check(wait_file(logf, r"listening on 127\.0\.0\.1@(\d+)", 20) is not None,
          "perms: started with private files")
    check("writable" not in read_file(logf), "perms: no warning for 0644 / 0600 files",
          read_file(logf))
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=15)
    # /dev/null (mode 0666), the documented "no file": no warning either.
    logf = os.path.join(WORK, "perms-null.log")
    with open(logf, "w") as lf:
        p = start([DOTPROXYD, "--listen", "127.0.0.1@0", "-c", "/dev/null", "-u",
                   "127.0.0.1@%d#dns.test" % up, "--ca-file", pki + "/ca.pem"],
                  stdin=subprocess.DEVNULL, stdout=lf, stderr=lf)
    check(wait_file(logf, r"listening on 127\.0\.0\.1@(\d+)", 20) is not None,
          "perms: started with -c /dev/null")
    check("writable" not in read_file(logf), "perms: no warning for /dev/null", read_file(logf))
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=15)


# ---- reload --------------------------------------------------------------------


def case_reload():
    if os.geteuid() != 0:
        print("SKIP: needs root (to start with --user nobody)")
        return 77
    try:
        import pwd
        pwd.getpwnam("nobody")
    except KeyError:
        print("SKIP: no user nobody")
        return 77
    os.chmod(WORK, 0o755)  # the configuration must stay readable for nobody
    pki = make_pki()
    os.chmod(pki, 0o755)
    os.chmod(pki + "/ca.pem", 0o644)
    up = start_dotserver(pki)
    conf = os.path.join(WORK, "user.conf")
    with open(conf, "w") as f:
        f.write("upstream = 127.0.0.1@%d#dns.test\nca-file = %s/ca.pem\n" % (up, pki))
    os.chmod(conf, 0o644)
    tok = os.path.join(WORK, "token")
    with open(tok, "w") as f:
        f.write("s3cret-token\n")
    os.chmod(tok, 0o600)  # root's alone
    logf = os.path.join(WORK, "reload.log")
    with open(logf, "w") as lf:
        p = start([DOTPROXYD, "--listen", "127.0.0.1@0", "-c", conf, "--api-token-file", tok,
                   "--metrics", "127.0.0.1@0", "--user", "nobody"],
                  stdin=subprocess.DEVNULL, stdout=lf, stderr=lf)
    m = wait_file(logf, r"listening on 127\.0\.0\.1@(\d+)", 20)
    check(m is not None, "reload: started as nobody")
    port = int(m.group(1))
    mport = int(wait_file(logf, r"metrics and API on port (\d+)", 5).group(1))
    status, body = http_req(mport, "POST", "/api/v1/reload", "s3cret-token")
    check(status == 200 and '"reloaded":true' in body, "reload: POST reload answers 200",
          "%d %s" % (status, body.strip()))
    # The log line leaves through the daemon's non-blocking log queue, maybe
    # after the HTTP answer: wait for it.
    wait_file(logf, r"reload: configuration re-read", 5)
    text = read_file(logf)
    check("reload: configuration re-read" in text and "Permission denied" not in text,
          "reload: the reload really happened (root-owned 0600 token file)", text[-600:])
    # A change that takes effect: the cache turned off by the file.
    with open(conf, "a") as f:
        f.write("cache-size = 0\n")
    status, body = http_req(mport, "POST", "/api/v1/reload", "s3cret-token")
    check(status == 200, "reload: second reload 200", body)
    check(query(port, "r.example", 3) == "answered", "reload: answering after reloads")

    def reloads():
        _, text = http_req(mport, "GET", "/metrics")
        m = re.search(r"^dotproxy_config_reloads_total (\d+)$", text, re.M)
        return int(m.group(1)) if m else -1
    check(reloads() == 2, "reload: both reloads applied by the workers", str(reloads()))
    # The file made unreadable for nobody: the reload fails, and says so.
    os.chmod(conf, 0o600)
    status, body = http_req(mport, "POST", "/api/v1/reload", "s3cret-token")
    check(status == 500 and '"reloaded":false' in body and "Permission denied" in body,
          "reload: a failed reload answers 500 {\"reloaded\":false,\"error\":...}",
          "%d %s" % (status, body.strip()))
    # Through the log queue, maybe after the HTTP answer: wait for the line.
    check(wait_file(logf, r"error: reload: .*Permission denied", 5) is not None,
          "reload: the failure is logged")
    check(query(port, "r2.example", 3) == "answered", "reload: still answering")
    check(reloads() == 2, "reload: the failed one applied nothing", str(reloads()))
    print("figures: reload: POST after a failed re-read: %d %s" % (status, body.strip()))
    p.send_signal(signal.SIGTERM)
    check(p.wait(timeout=15) == 0, "reload: SIGTERM exit status 0")


CASES = {"logblock": case_logblock, "repeat": case_repeat, "fifo": case_fifo, "perms": case_perms,
         "reload": case_reload}


def main():
    signal.signal(signal.SIGALRM, lambda *_: (_ for _ in ()).throw(SystemExit("hard timeout")))
    signal.alarm(100)
    try:
        r = CASES[CASE]()
    except SystemExit as e:
        FAILED.append(str(e))
        print("FAIL: %s" % e)
        r = None
    finally:
        cleanup()
    if r == 77:
        return 77
    if FAILED:
        print("%s: FAILED: %s" % (CASE, "; ".join(FAILED)))
        return 1
    print("%s: all checks passed" % CASE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
