# SPDX-License-Identifier: MIT
"""The operator HTTP server (cli/http_server.c, cli/render.c) end to end, over curl.

Usage: test_metrics.py METRICS_HARNESS PROMCHECK_PY

metrics_harness serves two real worker contexts in front of the in-tree DoT
server and has already sent a known set of queries when it prints "ready"
(worker 0: 4 UDP queries, one a repeat answered from the cache; worker 1:
2 TCP queries). Every check below compares what the server reports with
what was done. Nothing waits by sleeping: waits are bounded polls of a
condition, each turn of which may "poke" the workers (wake them so that an
idle context takes a loop turn and republishes its stats snapshot).
"""
import importlib.util
import json
import os
import secrets
import select
import subprocess
import sys
import tempfile
import time
import traceback

HARNESS, PROMCHECK = sys.argv[1], sys.argv[2]
spec = importlib.util.spec_from_file_location("promcheck", PROMCHECK)
promcheck = importlib.util.module_from_spec(spec)
spec.loader.exec_module(promcheck)

TOKEN = "t0k-" + secrets.token_hex(16)
REPLY_S = 15  # bound on one harness command (a query may wait for a deadline)
WAIT_S = 10   # bound on anything that should happen "within a few seconds"


class Harness:
    def __init__(self):
        self.p = subprocess.Popen([HARNESS, TOKEN], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True, bufsize=1)
        fields = self.line(30).split()
        if not fields or fields[0] != "ready":
            raise RuntimeError("harness did not start: %r" % fields)
        kv = dict(f.split("=", 1) for f in fields[1:])
        self.port = int(kv["metrics"])
        self.notoken_port = int(kv["notoken"])
        self.dns = [int(kv["dns0"]), int(kv["dns1"])]
        self.upstream = kv["upstream"]
        self.cert_not_after = int(kv["cert_not_after"])

    def line(self, timeout):
        r, _, _ = select.select([self.p.stdout], [], [], timeout)
        if not r:
            raise RuntimeError("harness: no reply within %d s" % timeout)
        s = self.p.stdout.readline()
        if s == "":
            raise RuntimeError("harness exited (status %s)" % self.p.poll())
        return s.rstrip("\n")

    def cmd(self, text):
        self.p.stdin.write(text + "\n")
        self.p.stdin.flush()
        return self.line(REPLY_S)

    def close(self):
        self.p.stdin.close()
        try:
            return self.p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.p.kill()  # our own child, by its handle
            self.p.wait()
            return -9


class Response:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        return json.loads(self.body)


def http(method, path, port, headers=(), data=None, host="127.0.0.1", max_time=5, http10=False):
    """One request with curl; the status, headers (lower-cased names) and body."""
    with tempfile.TemporaryDirectory() as d:
        hfile, bfile = os.path.join(d, "h"), os.path.join(d, "b")
        args = ["curl", "-sS", "--max-time", str(max_time), "-o", bfile, "-D", hfile,
                "-w", "%{http_code}", "-X", method]
        if method == "HEAD":
            args[-2:] = ["-I"]
        if http10:
            args.append("--http1.0")
        for h in headers:
            args += ["-H", h]
        if data is not None:
            args += ["--data-binary", "@-"]
        host_part = "[%s]" % host if ":" in host else host
        args.append("http://%s:%d%s" % (host_part, port, path))
        r = subprocess.run(args, input=data, capture_output=True, timeout=20)
        if r.returncode != 0:
            raise ConnectionError("curl %s %s: exit %d %s" % (
                method, path, r.returncode, r.stderr.decode(errors="replace").strip()))
        hdrs = {}
        with open(hfile, encoding="latin-1", newline="") as f:
            for ln in f.read().split("\r\n")[1:]:
                if ":" in ln:
                    k, v = ln.split(":", 1)
                    hdrs[k.strip().lower()] = v.strip()
        body = b""
        if os.path.exists(bfile):
            with open(bfile, "rb") as f:
                body = f.read()
        body = body.decode()
        if method == "HEAD":  # curl -I writes the headers as the body
            body = body.split("\r\n\r\n", 1)[1]
        return Response(int(r.stdout), hdrs, body)


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def eq(got, want, what):
    if got != want:
        raise AssertionError("%s: got %r, want %r" % (what, got, want))


def wait_until(h, pred, what):
    """Poll pred() (bounded), poking the workers between tries."""
    end = time.monotonic() + WAIT_S
    last = None
    while True:
        last = pred()
        if last is True:
            return
        if time.monotonic() > end:
            raise AssertionError("%s (within %d s; last: %r)" % (what, WAIT_S, last))
        eq(h.cmd("poke"), "ok", "poke")
        select.select([], [], [], 0.02)  # pace the polling; not a synchronisation


def metrics(h):
    r = http("GET", "/metrics", h.port)
    eq(r.status, 200, "GET /metrics status")
    return promcheck.parse(r.body), r


def stats(h, port=None):
    r = http("GET", "/api/v1/stats", port or h.port)
    eq(r.status, 200, "GET /api/v1/stats status")
    return r.json()


# ---- the checker itself ------------------------------------------------------------

def test_promcheck_rejects_what_a_scraper_would():
    good = ("# HELP x_total X.\n# TYPE x_total counter\nx_total{a=\"q\\\"\"} 1\n"
            "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_count 2\n")
    promcheck.parse(good)
    bad = {
        "no final line feed": "# TYPE g gauge\ng 1",
        "counter not *_total": "# TYPE c counter\nc 1\n",
        "negative counter": "# TYPE c_total counter\nc_total -1\n",
        "bad escape": "g{a=\"\\t\"} 1\n",
        "bad value": "g 1,5\n",
        "series twice": "g{a=\"1\"} 1\ng{a=\"1\"} 2\n",
        "not contiguous": "a 1\nb 1\na{x=\"1\"} 1\n",
        "TYPE after samples": "g 1\n# TYPE g gauge\n",
        "buckets not cumulative": "# TYPE h histogram\nh_bucket{le=\"1\"} 3\n"
                                  "h_bucket{le=\"+Inf\"} 2\nh_count 2\n",
        "no +Inf bucket": "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_count 1\n",
        "count differs": "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_count 3\n",
        "reserved label": "g{__x=\"1\"} 1\n",
    }
    for what, text in bad.items():
        try:
            promcheck.parse(text)
        except promcheck.FormatError:
            continue
        raise AssertionError("promcheck accepted: " + what)


# ---- read-only endpoints -------------------------------------------------------------

def test_metrics_parse_strictly_and_count_the_queries_sent(h):
    fams, r = metrics(h)
    eq(r.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8", "type")
    for name in fams:
        check(name.startswith("dotproxy_"), "unprefixed family " + name)
        check(fams[name].type is not None and fams[name].help, "no TYPE/HELP for " + name)
        if "latency" in name or "srtt" in name or "idle_limit" in name:
            check(name.endswith("_seconds"), name + " has no unit")
    types = {
        "dotproxy_queries_total": "counter", "dotproxy_answers_total": "counter",
        "dotproxy_generated_responses_total": "counter",
        "dotproxy_client_messages_rejected_total": "counter",
        "dotproxy_udp_truncated_total": "counter", "dotproxy_query_timeouts_total": "counter",
        "dotproxy_query_retries_total": "counter", "dotproxy_queries_hedged_total": "counter",
        "dotproxy_tls_connects_total": "counter", "dotproxy_tls_handshakes_total": "counter",
        "dotproxy_tls_resumed_total": "counter", "dotproxy_tls_failures_total": "counter",
        "dotproxy_tls_closed_total": "counter", "dotproxy_upstream_bad_answers_total": "counter",
        "dotproxy_tcp_clients_total": "counter", "dotproxy_queries_inflight": "gauge",
        "dotproxy_cache_hits_total": "counter", "dotproxy_cache_misses_total": "counter",
        "dotproxy_cache_entries": "gauge", "dotproxy_cache_evictions_total": "counter",
        "dotproxy_cache_stale_served_total": "counter",
        "dotproxy_queries_coalesced_total": "counter",
        "dotproxy_cache_prefetches_total": "counter", "dotproxy_config_reloads_total": "counter",
        "dotproxy_answer_latency_seconds": "histogram", "dotproxy_upstream_healthy": "gauge",
        "dotproxy_upstream_srtt_seconds": "gauge", "dotproxy_upstream_connections": "gauge",
        "dotproxy_upstream_inflight": "gauge", "dotproxy_upstream_consecutive_failures": "gauge",
        "dotproxy_upstream_queries_total": "counter",
        "dotproxy_upstream_answers_total": "counter", "dotproxy_workers": "gauge",
    }
    for name, t in types.items():
        check(name in fams, "family %s missing" % name)
        eq(fams[name].type, t, "type of " + name)
    q = fams["dotproxy_queries_total"]
    eq(q.value(transport="udp"), 4, "UDP queries")
    eq(q.value(transport="tcp"), 2, "TCP queries")
    eq(q.value(transport="api"), 0, "API queries")
    eq(fams["dotproxy_workers"].value(), 2, "workers")
    eq(fams["dotproxy_cache_hits_total"].value(), 1, "cache hits (a0 asked twice)")
    eq(fams["dotproxy_cache_misses_total"].value(), 5, "cache misses")
    eq(fams["dotproxy_answers_total"].value(), 5, "upstream answers")
    eq(fams["dotproxy_tcp_clients_total"].value(), 2, "TCP clients")
    eq(fams["dotproxy_tls_handshakes_total"].value(), 2, "one handshake per worker")
    eq(fams["dotproxy_generated_responses_total"].value(rcode="SERVFAIL"), 0, "SERVFAIL")
    for reason in ("unanswerable", "acl", "rate_limit", "client_inflight_cap", "norecurse"):
        eq(fams["dotproxy_client_messages_rejected_total"].value(reason=reason), 0, reason)
    lat = fams["dotproxy_answer_latency_seconds"]
    # Every upstream answer is timed; the cache hit is not.
    eq(lat.value("dotproxy_answer_latency_seconds_count"), 5, "latency count")
    eq(lat.value("dotproxy_answer_latency_seconds_bucket", le="+Inf"), 5, "+Inf bucket")
    eq(lat.value("dotproxy_answer_latency_seconds_bucket", le="0.0005") <= 5, True, "le 0.0005")
    eq(fams["dotproxy_upstream_healthy"].value(upstream=h.upstream), 1, "upstream healthy")

    # The per-upstream snapshot is refreshed at a worker's loop turn.
    def upstream_counted():
        f, _ = metrics(h)
        got = (f["dotproxy_upstream_queries_total"].value(upstream=h.upstream),
               f["dotproxy_upstream_answers_total"].value(upstream=h.upstream))
        return got == (5, 5) or got
    wait_until(h, upstream_counted, "upstream queries/answers reach 5/5")

    # So is the cache size (a gauge the library refreshes with it).
    def cached():
        v = metrics(h)[0]["dotproxy_cache_entries"].value()
        return v == 5 or v
    wait_until(h, cached, "cache entries reach 5")
    f, _ = metrics(h)
    eq(f["dotproxy_upstream_connections"].value(upstream=h.upstream), 2, "a connection each")
    check(f["dotproxy_upstream_srtt_seconds"].value(upstream=h.upstream) > 0, "SRTT measured")


def test_upstream_cert_expiry_is_the_seconds_to_its_not_after(h):
    # Both workers handshook before "ready": the gauge is there, one line.
    f, r = metrics(h)
    fam = f["dotproxy_upstream_cert_expiry_seconds"]
    eq(fam.type, "gauge", "type")
    want = h.cert_not_after - time.time()
    got = fam.value(upstream=h.upstream)
    check(abs(got - want) <= 5, "expiry %s s, the certificate says %.0f s" % (got, want))
    eq(r.body.count("dotproxy_upstream_cert_expiry_seconds{"), 1, "one line per upstream")


def test_metrics_follow_new_queries(h):
    before, _ = metrics(h)
    eq(h.cmd("query 1 udp c0.metrics.test"), "answer rcode=0", "query")
    eq(h.cmd("query 1 udp c0.metrics.test"), "answer rcode=0", "repeat")
    after, _ = metrics(h)
    q0, q1 = before["dotproxy_queries_total"], after["dotproxy_queries_total"]
    eq(q1.value(transport="udp") - q0.value(transport="udp"), 2, "UDP queries grew by 2")
    eq(after["dotproxy_cache_hits_total"].value() - before["dotproxy_cache_hits_total"].value(),
       1, "cache hits grew by 1")
    eq(after["dotproxy_answers_total"].value() - before["dotproxy_answers_total"].value(), 1,
       "answers grew by 1")


def test_stats_json_sums_the_workers_and_matches_metrics(h):
    s = stats(h)
    fams, _ = metrics(h)
    eq(s["workers"], 2, "workers")
    eq(len(s["per_worker"]), 2, "per-worker entries")
    c, w0, w1 = s["counters"], s["per_worker"][0]["counters"], s["per_worker"][1]["counters"]
    for k in c:
        if k != "reloads":
            eq(c[k], w0[k] + w1[k], "sum of " + k)
    eq(w0["queries_udp"], 4, "worker 0 UDP")
    eq(w1["queries_tcp"], 2, "worker 1 TCP")
    eq(c["queries_udp"], fams["dotproxy_queries_total"].value(transport="udp"), "JSON = metrics")
    eq(c["answers"], fams["dotproxy_answers_total"].value(), "answers JSON = metrics")
    eq(sum(s["latency"]["counts"]), c["answers"], "latency counts = answers")
    eq(s["latency"]["le_seconds"][-1], None, "last bucket unbounded")
    eq(len(s["latency"]["le_seconds"]), len(s["latency"]["counts"]), "bucket arrays")


def test_upstreams_json_has_one_entry_per_upstream_over_workers(h):
    # Six queries went upstream so far (a0 a1 a2 b0 b1 c0); the snapshot
    # behind this endpoint is refreshed at a worker's loop turn.
    def counted():
        u = http("GET", "/api/v1/upstreams", h.port).json()
        got = (u[0]["queries"], u[0]["answers"], u[0]["inflight"]) if len(u) == 1 else u
        return got == (6, 6, 0) or got
    wait_until(h, counted, "upstream queries/answers reach 6/6")
    r = http("GET", "/api/v1/upstreams", h.port)
    eq(r.status, 200, "status")
    eq(r.headers.get("content-type"), "application/json", "type")
    u = r.json()
    eq(len(u), 1, "one upstream")
    eq(u[0]["upstream"], h.upstream, "label with '@' and '#' intact")
    eq((u[0]["healthy"], u[0]["healthy_workers"], u[0]["workers"]), (True, 2, 2), "health")
    eq(u[0]["connections"], 2, "a connection per worker")
    check(u[0]["srtt_seconds"] > 0, "srtt measured")


def test_health_is_ok_while_an_upstream_is_healthy(h):
    r = http("GET", "/health", h.port)
    eq((r.status, r.body), (200, "ok\n"), "health")


def test_status_page_is_served_with_a_restrictive_policy(h):
    r = http("GET", "/", h.port)
    eq(r.status, 200, "status")
    eq(r.headers.get("content-type"), "text/html; charset=utf-8", "type")
    csp = r.headers.get("content-security-policy", "")
    check("default-src 'self'" in csp and "unsafe-inline" not in csp, "CSP: " + csp)
    check("frame-ancestors 'none'" in csp, "CSP forbids framing")
    eq(r.headers.get("x-content-type-options"), "nosniff", "nosniff")
    check('src="/status.js"' in r.body and "<script>" not in r.body, "script is external")
    check("http://" not in r.body.replace('href="/', "") and "https://" not in r.body,
          "no external resource")
    js = http("GET", "/status.js", h.port)
    eq(js.status, 200, "script status")
    check(js.headers.get("content-type", "").startswith("text/javascript"), "script type")
    check("/api/v1/stats" in js.body and "/api/v1/upstreams" in js.body, "script polls the API")
    css = http("GET", "/status.css", h.port)
    eq((css.status, css.headers.get("content-type")), (200, "text/css; charset=utf-8"), "css")
    head = http("HEAD", "/metrics", h.port)
    eq((head.status, head.body), (200, ""), "HEAD has headers only")


# ---- errors ---------------------------------------------------------------------------

def test_unknown_paths_are_404_and_wrong_methods_405_with_allow(h):
    eq(http("GET", "/nope", h.port).status, 404, "/nope")
    r = http("GET", "/api/v1/nope", h.port)
    eq(r.status, 404, "/api/v1/nope")
    check("error" in r.json(), "JSON error body")
    eq(http("GET", "/metrics/", h.port).status, 404, "trailing slash is another path")
    r = http("GET", "/api/v1/reload", h.port)
    eq((r.status, r.headers.get("allow")), (405, "POST"), "GET reload")
    r = http("POST", "/metrics", h.port)
    eq((r.status, r.headers.get("allow")), (405, "GET, HEAD"), "POST metrics")
    r = http("DELETE", "/health", h.port)
    eq((r.status, r.headers.get("allow")), (405, "GET, HEAD"), "DELETE health")
    r = http("PUT", "/api/v1/cache/flush", h.port, headers=["Authorization: Bearer " + TOKEN])
    eq((r.status, r.headers.get("allow")), (405, "POST"), "PUT flush")


# ---- the mutating API ----------------------------------------------------------------

def test_mutating_calls_are_refused_without_a_configured_token(h):
    for path in ("/api/v1/cache/flush", "/api/v1/reload"):
        r = http("POST", path, h.notoken_port, headers=["Authorization: Bearer " + TOKEN])
        eq(r.status, 403, path)
        eq(r.json()["error"], "no API token configured", path + " message")
    eq(h.cmd("reloads"), "reloads 0", "no reload happened")
    # The read side works on that server too.
    eq(stats(h, h.notoken_port)["workers"], 2, "GET stats without token")


def test_mutating_calls_need_the_right_bearer_token(h):
    path = "/api/v1/reload"
    r = http("POST", path, h.port)
    eq(r.status, 401, "no Authorization")
    check(r.headers.get("www-authenticate", "").startswith("Bearer"), "WWW-Authenticate")
    for wrong in ("Bearer " + TOKEN[:-1], "Bearer " + TOKEN + "x", "Bearer x" + TOKEN[1:],
                  "Basic " + TOKEN, "Bearer", "Bearer " + TOKEN.upper()):
        r = http("POST", path, h.port, headers=["Authorization: " + wrong])
        eq(r.status, 401, "Authorization: " + wrong)
        check("Bearer" in r.headers.get("www-authenticate", ""), "WWW-Authenticate")
    eq(h.cmd("reloads"), "reloads 0", "no reload happened")
    r = http("POST", path, h.port, headers=["Authorization: bearer  " + TOKEN])
    eq(r.status, 200, "right token (scheme is case-insensitive)")
    eq(r.json(), {"reloaded": True}, "body")
    eq(h.cmd("reloads"), "reloads 1", "the callback ran once")

    def applied():
        v = metrics(h)[0]["dotproxy_config_reloads_total"].value()
        return v == 1 or v
    wait_until(h, applied, "every worker applied the reload")
    eq(stats(h)["counters"]["reloads"], 1, "JSON reloads (minimum over workers)")


def test_a_failing_reload_is_a_500(h):
    eq(h.cmd("reload-fail 1"), "ok", "reload-fail")
    r = http("POST", "/api/v1/reload", h.port, headers=["Authorization: Bearer " + TOKEN])
    eq(r.status, 500, "failed reload")
    check("reload failed" in r.json()["error"], "message")
    eq(h.cmd("reload-fail 0"), "ok", "reload-fail off")


def test_cache_flush_empties_every_workers_cache(h):
    c = stats(h)["per_worker"]
    check(c[0]["counters"]["cache_entries"] > 0 and c[1]["counters"]["cache_entries"] > 0,
          "both caches hold entries first")
    r = http("POST", "/api/v1/cache/flush", h.port, headers=["Authorization: Bearer " + TOKEN])
    eq(r.status, 200, "flush")
    eq(r.json(), {"flushed_workers": 2}, "body")

    def empty():
        e = [w["counters"]["cache_entries"] for w in stats(h)["per_worker"]]
        return e == [0, 0] or e
    wait_until(h, empty, "cache entries drop to 0 in every worker")
    # And the cache really is empty: the next a0 goes upstream again.
    before = stats(h)["counters"]
    eq(h.cmd("query 0 udp a0.metrics.test"), "answer rcode=0", "query")
    after = stats(h)["counters"]
    eq(after["cache_misses"] - before["cache_misses"], 1, "a miss after the flush")
    eq(after["cache_hits"] - before["cache_hits"], 0, "no hit after the flush")


def test_request_bodies_over_the_bound_are_refused(h):
    try:
        r = http("POST", "/api/v1/reload", h.port, headers=["Authorization: Bearer " + TOKEN],
                 data=b"x" * (200 * 1024))
    except ConnectionError:
        return  # closed without an answer: refused
    raise AssertionError("a 200 KiB body got HTTP %d" % r.status)


# ---- Host header (DNS rebinding) -------------------------------------------------------

# The harness allows "status.example" besides IP literals and localhost.
HOSTS_ALLOWED = ("127.0.0.1", "127.0.0.1:{port}", "[::1]", "[::1]:{port}", "localhost",
                 "LocalHost:{port}", "localhost.", "status.example:{port}", "Status.Example.",
                 "10.1.2.3:9100", "[2001:db8::1]:9100", "127.0.0.1:")
HOSTS_REFUSED = ("evil.example", "evil.example:{port}", "127.0.0.1.evil.example",
                 "localhost.evil.example", "status.example.evil", "evil-status.example",
                 "127.1", "0x7f.0.0.1", "2130706433", "::1", "[::1", "[evil.example]",
                 "[::1]x", "127.0.0.1:80x", "127.0.0.1:123456", "localhost:1:2", "",
                 "[fe80::1%25lo]")


def test_status_page_and_api_answer_only_hosts_a_rebinding_page_cannot_send(h):
    for path in ("/", "/status.js", "/api/v1/stats", "/api/v1/upstreams"):
        for host in HOSTS_ALLOWED:
            host = host.format(port=h.port)
            r = http("GET", path, h.port, headers=["Host: " + host])
            eq(r.status, 200, "GET %s with Host %r" % (path, host))
        for host in HOSTS_REFUSED:
            host = host.format(port=h.port)
            hdr = "Host: " + host if host else "Host;"  # "Host;": curl sends it empty
            r = http("GET", path, h.port, headers=[hdr])
            eq(r.status, 421, "GET %s with Host %r" % (path, host))
            check("Host not allowed" in r.body, "421 body says why: %r" % r.body)
            if path.startswith("/api/"):
                check("error" in r.json(), "JSON error body")
    # Refused before the token is looked at, and the callback does not run.
    before = h.cmd("reloads")
    r = http("POST", "/api/v1/reload", h.port,
             headers=["Authorization: Bearer " + TOKEN, "Host: evil.example:%d" % h.port])
    eq(r.status, 421, "POST reload from a rebound name")
    eq(h.cmd("reloads"), before, "no reload happened")
    # The server without a configured name allows IP literals and localhost only.
    eq(http("GET", "/api/v1/stats", h.notoken_port,
            headers=["Host: status.example"]).status, 421, "name not allowed there")
    eq(http("GET", "/api/v1/stats", h.notoken_port,
            headers=["Host: localhost:%d" % h.notoken_port]).status, 200, "localhost there")


def test_metrics_and_health_answer_any_host(h):
    # Prometheus sends the target's name as configured, a kubelet the pod IP.
    for host in ("dotproxy.monitoring.svc:9100", "evil.example", "127.0.0.1:%d" % h.port):
        eq(http("GET", "/metrics", h.port, headers=["Host: " + host]).status, 200,
           "/metrics with Host " + host)
        eq(http("GET", "/health", h.port, headers=["Host: " + host]).status, 200,
           "/health with Host " + host)


def test_a_request_without_host_is_refused_in_http_1_1_only(h):
    # A browser always sends Host; HTTP/1.0 tools may not.
    for path in ("/api/v1/stats", "/health"):
        eq(http("GET", path, h.port, headers=["Host:"]).status, 400, "HTTP/1.1 " + path)
    r = http("GET", "/api/v1/stats", h.port, headers=["Host:"], http10=True)
    eq(r.status, 200, "HTTP/1.0 without Host")


# ---- listen addresses -------------------------------------------------------------------

def test_listen_address_forms_and_errors(h):
    for spec, words in (("localhost@0", "'localhost' is not an IPv4 or IPv6 address"),
                        ("127.0.0.1@65536", "bad port '65536'"), ("127.0.0.1@", "bad port"),
                        ("127.0.0.1@80x", "bad port '80x'"), ("@9100", "no address before"),
                        ("1.2.3.4.5@0", "not an IPv4 or IPv6 address"),
                        ("[127.0.0.1]@0", "not an IPv4 or IPv6 address"),
                        ("127.0.0.1@53#dns.test", "no #NAME"), ("", "empty"),
                        ("127.0.0.1@%d" % h.port, "cannot bind 127.0.0.1@%d" % h.port)):
        got = h.cmd("try-listen " + spec)
        check(got.startswith("error ") and words in got, "%s: %r (want %r)" % (spec, got, words))
    got = h.cmd("try-listen 127.0.0.1@%d" % h.port)
    check("in use" in got, "bind error says why: " + got)
    for spec, host in (("0", "127.0.0.1"), ("127.0.0.1@0", "127.0.0.1"), ("::1@0", "::1"),
                       ("[::1]@0", "::1"), ("127.0.0.1@00", "127.0.0.1")):
        got = h.cmd("try-listen " + spec)
        check(got.startswith("ok port="), "%s: %r" % (spec, got))
        port = int(got.split("=")[1])
        check(port > 0, "port reported")
        r = http("GET", "/health", port, host=host)
        eq(r.status, 200, "GET /health on " + spec)


# ---- last: take the upstream away -----------------------------------------------------

def test_health_turns_503_when_no_upstream_is_healthy(h):
    eq(h.cmd("stop-upstream"), "ok", "stop-upstream")

    def unhealthy():
        # Each worker learns the upstream is gone when it tries to connect.
        for w in (0, 1):
            h.cmd("query %d udp d%d.metrics.test" % (w, time.monotonic_ns()))
        r = http("GET", "/health", h.port)
        return r.status == 503 or r.status
    wait_until(h, unhealthy, "/health becomes 503")
    r = http("GET", "/health", h.port)
    # Probes may mark it usable for an instant; 503 is what it settles on.
    check(r.status in (503, 200), "health status")
    u = http("GET", "/api/v1/upstreams", h.port).json()[0]
    check(u["consecutive_failures"] >= 1, "failures counted: %r" % u)
    fams, _ = metrics(h)
    check(fams["dotproxy_generated_responses_total"].value(rcode="SERVFAIL") >= 1,
          "SERVFAIL made for the queries that could not be forwarded")
    check(fams["dotproxy_upstream_consecutive_failures"].value(upstream=h.upstream) >= 1,
          "failures in metrics")


def main():
    tests = [(n, f) for n, f in globals().items() if n.startswith("test_")]
    passed = failed = 0
    try:
        test_promcheck_rejects_what_a_scraper_would()
        print("PASS test_promcheck_rejects_what_a_scraper_would")
        passed += 1
    except Exception:
        traceback.print_exc()
        print("FAIL test_promcheck_rejects_what_a_scraper_would")
        failed += 1
    h = Harness()
    try:
        for name, fn in tests:
            if name == "test_promcheck_rejects_what_a_scraper_would":
                continue
            t0 = time.monotonic()
            try:
                fn(h)
                print("PASS %s (%.2f s)" % (name, time.monotonic() - t0))
                passed += 1
            except Exception:
                traceback.print_exc()
                print("FAIL %s" % name)
                failed += 1
    finally:
        rc = h.close()
    if rc != 0:
        print("FAIL harness exit status %d (ports not released, or a worker failed)" % rc)
        failed += 1
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
