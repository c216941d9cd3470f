/* SPDX-License-Identifier: MIT */
/* Reliability and security behaviour of the proxy engine, in process: a real
 * dotproxy_ctx on loopback in front of the in-tree DoT server
 * (tests/support/dotserver.h), with a throwaway PKI made once per run.
 *
 * Covered: SPKI pin sets (RFC 7858 4.2), dotproxy_ctx_reload, failover and
 * hedging away from a silent or refusing upstream, recovery when a dead
 * upstream comes back, learning an upstream's idle limit, and re-sending
 * pipelined queries lost with a connection. Answers from a hostile upstream
 * (wrong ID, wrong question, garbage) are covered by test_proxy.c
 * (test_proxy_never_forwards_*), so they are not repeated here.
 *
 * Every context runs on a thread of its own with dotproxy_ctx_run(); the
 * test thread reads its counters while it runs (proxy.h: safe from any
 * thread) and reloads it (dotproxy_ctx_reload: safe from any thread).
 * Nothing waits by sleeping: every wait is a poll() on a socket, or a bounded
 * loop on a counter with a deadline. Timing checks are one-sided bounds wide
 * enough for a loaded two-core machine under sanitizers. */
#include <check.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "dotproxy/config.h"
#include "dotproxy/tap.h"
#include "dotproxy/dns.h"
#include "dotproxy/error.h"
#include "dotproxy/loop.h"
#include "dotproxy/proxy.h"

#include "dnsclient.h"
#include "dotserver.h"
#include "pki.h"
#include "rig.h"

/* Bound on anything that should happen promptly. */
#define WAIT_MS 5000

/* Wait (at most ms) until a server counter reaches want; the last value seen. */
static unsigned wait_server_for(unsigned (*get)(const ts_dotserver *), const ts_dotserver *s,
                                unsigned want, int ms)
{
    int64_t end = ts_now_ms() + ms;
    unsigned v;
    while ((v = get(s)) < want && ts_now_ms() < end)
        poll(NULL, 0, 2);
    return v;
}

static unsigned wait_server(unsigned (*get)(const ts_dotserver *), const ts_dotserver *s,
                            unsigned want)
{
    return wait_server_for(get, s, want, WAIT_MS);
}

/* ---- SPKI pins --------------------------------------------------------------- */

/* The pin of the first certificate of a PEM file (pki.h). */
static void spki_pin(const char *cert_file, char *out, size_t cap)
{
    ck_assert_int_eq(ts_pki_spki_pin(cert_file, out, cap), 0);
}

/* A pin of n random octets (n = 32: well-formed, matching no key). */
static void random_pin(size_t n, char *out, size_t cap)
{
    uint8_t raw[64];
    ck_assert_uint_le(n, sizeof raw);
    ck_assert_int_eq(gnutls_rnd(GNUTLS_RND_NONCE, raw, n), 0);
    ck_assert_int_eq(ts_pki_pin_text(raw, n, out, cap), 0);
}

/* ---- the proxy --------------------------------------------------------------- */

static dotproxy_config *config_one(uint16_t port)
{
    return ts_rig_config(&port, 1);
}

static uint64_t wait_ctr(const ts_rig *r, int which, uint64_t want)
{
    return ts_rig_wait_ctr(r, which, want, WAIT_MS);
}

/* ---- queries and answers ------------------------------------------------------ */

static size_t query(uint8_t *buf, size_t cap, uint16_t id, const char *name)
{
    int n = ts_dns_build_query(buf, cap, id, name, TS_DNS_TYPE_A, 0);
    ck_assert_int_gt(n, 0);
    return (size_t)n;
}

/* One UDP exchange on a fresh socket: the answer's length (> 0). */
static int udp_ask(uint16_t port, uint16_t id, const char *name, uint8_t *ans, size_t cap)
{
    uint8_t q[512];
    size_t qlen = query(q, sizeof q, id, name);
    int n = ts_dns_udp_exchange(port, q, qlen, ans, cap, WAIT_MS);
    ck_assert_msg(n > 0, "UDP query %s: %s", name, n < 0 ? strerror(-n) : "empty");
    return n;
}

static void assert_reply_to(const uint8_t *ans, int len, uint16_t id, const char *name, int rcode)
{
    ck_assert_int_ge(len, DOTPROXY_DNS_HEADER_SIZE);
    ck_assert_int_eq(ts_dns_id(ans, (size_t)len), id);
    ck_assert_msg(ts_dns_flags(ans, (size_t)len) & TS_DNS_FLAG_QR, "not a response");
    ck_assert_msg(ts_dns_rcode(ans, (size_t)len) == rcode, "%s: rcode %d, wanted %d", name,
                  ts_dns_rcode(ans, (size_t)len), rcode);
    ck_assert_int_eq(ts_dns_count(ans, (size_t)len, 0), 1);
    char got[300];
    ck_assert_int_gt(ts_dns_qname(ans, (size_t)len, got, sizeof got), 0);
    ck_assert_str_eq(got, name);
}

/* A NOERROR answer to (id, name) carrying the A record the server makes. */
static void assert_a_answer(const uint8_t *ans, int len, uint16_t id, const char *name)
{
    assert_reply_to(ans, len, id, name, TS_DNS_RCODE_NOERROR);
    uint8_t got[4], want[4];
    ck_assert_msg(ts_dns_first_a(ans, (size_t)len, got) == 0, "no A record for %s", name);
    ck_assert_int_eq(ts_dns_expected_a(name, want), 0);
    ck_assert_mem_eq(got, want, 4);
}

/* Ask for name over UDP and check the server's A record comes back. */
static void ask_ok(uint16_t port, uint16_t id, const char *name)
{
    uint8_t ans[1024];
    int n = udp_ask(port, id, name, ans, sizeof ans);
    assert_a_answer(ans, n, id, name);
}

static void ask_servfail(uint16_t port, uint16_t id, const char *name)
{
    uint8_t ans[1024];
    int n = udp_ask(port, id, name, ans, sizeof ans);
    assert_reply_to(ans, n, id, name, TS_DNS_RCODE_SERVFAIL);
    ck_assert_int_eq(ts_dns_ancount(ans, (size_t)n), 0);
}

/* ---- SPKI pins (RFC 7858 4.2) -------------------------------------------------- */

START_TEST(test_reliability_answers_through_an_upstream_whose_key_is_in_its_pin_set)
{
    ts_dotserver *srv = ts_rig_server((ts_dotserver_opts){0}, "server");
    char right[64], other[64];
    spki_pin(ts_pki_path(ts_rig_pki, "server.pem"), right, sizeof right);
    spki_pin(ts_pki_path(ts_rig_pki, "rogue.pem"), other, sizeof other);
    ck_assert_str_ne(right, other);
    dotproxy_config *cfg = config_one(ts_dotserver_port(srv));
    /* A set: one matching key is enough, wherever it is in the set. */
    ck_assert_int_eq(dotproxy_config_add_pin(cfg, 0, other), 0);
    ck_assert_int_eq(dotproxy_config_add_pin(cfg, 0, right + 7), 0); /* bare base64 */
    ts_rig r;
    ts_rig_up(&r, cfg);

    ask_ok(r.port, 0x5a01, "PiNnEd.pin.test");
    ask_ok(r.port, 0x5a02, "AgAiN.pin.test");
    ck_assert_uint_eq(ts_dotserver_queries(srv), 2);
    ck_assert_uint_eq(ts_rig_ctr(&r, DOTPROXY_CTR_TLS_HANDSHAKES), 1);
    ck_assert_uint_eq(ts_rig_ctr(&r, DOTPROXY_CTR_TLS_FAILURES), 0);
    ts_rig_down(&r);
    ts_dotserver_stop(srv);
}
END_TEST

/* The chain verifies (CA trusted, name right): only the pin can refuse it. */
static void assert_pin_refuses(const char *pin)
{
    ts_dotserver *srv = ts_rig_server((ts_dotserver_opts){0}, "server");
    dotproxy_config *cfg = config_one(ts_dotserver_port(srv));
    ck_assert_int_eq(dotproxy_config_add_pin(cfg, 0, pin), 0);
    ts_rig r;
    ts_rig_up(&r, cfg);

    ask_servfail(r.port, 0x5b01, "UnPiNnEd.pin.test");
    /* The handshake itself completed (server side); then the pin check
     * dropped the connection before a single query crossed it. */
    ck_assert_uint_ge(wait_server(ts_dotserver_handshakes, srv, 1), 1);
    ck_assert_uint_ge(ts_rig_ctr(&r, DOTPROXY_CTR_TLS_FAILURES), 1);
    ck_assert_uint_eq(ts_rig_ctr(&r, DOTPROXY_CTR_TLS_HANDSHAKES), 0);
    ck_assert_uint_eq(ts_rig_ctr(&r, DOTPROXY_CTR_ANSWERS), 0);
    ts_rig_down(&r);
    ck_assert_uint_eq(ts_dotserver_queries(srv), 0);
    ts_dotserver_stop(srv);
}

START_TEST(test_reliability_refuses_an_upstream_whose_key_is_not_in_its_pin_set)
{
    char pin[64];
    spki_pin(ts_pki_path(ts_rig_pki, "rogue.pem"), pin,
             sizeof pin); /* another key of the same type */
    assert_pin_refuses(pin);
    random_pin(32, pin, sizeof pin);
    assert_pin_refuses(pin);
}
END_TEST

START_TEST(test_reliability_rejects_malformed_pins_and_pins_for_missing_upstreams)
{
    char good[64], short_pin[64], long_pin[64];
    spki_pin(ts_pki_path(ts_rig_pki, "server.pem"), good, sizeof good);
    random_pin(31, short_pin, sizeof short_pin);
    random_pin(33, long_pin, sizeof long_pin);
    char other_algo[80];
    snprintf(other_algo, sizeof other_algo, "sha1/%s", good + 7);

    dotproxy_config *cfg = NULL;
    ck_assert_int_eq(dotproxy_config_new(&cfg), 0);
    /* No upstream 0 yet. */
    ck_assert_int_eq(dotproxy_config_add_pin(cfg, 0, good), DOTPROXY_EINVAL);
    ck_assert_int_eq(dotproxy_config_add_upstream(cfg, "127.0.0.1@853#dns.test"), 0);
    ck_assert_int_eq(dotproxy_config_add_pin(cfg, 1, good), DOTPROXY_EINVAL);
    ck_assert_int_eq(dotproxy_config_add_pin(cfg, SIZE_MAX, good), DOTPROXY_EINVAL);
    ck_assert_int_eq(dotproxy_config_add_pin(NULL, 0, good), DOTPROXY_EINVAL);
    ck_assert_int_eq(dotproxy_config_add_pin(cfg, 0, NULL), DOTPROXY_EINVAL);
    ck_assert_int_eq(dotproxy_config_add_pin(cfg, 0, ""), DOTPROXY_EINVAL);
    ck_assert_int_eq(dotproxy_config_add_pin(cfg, 0, "sha256/"), DOTPROXY_EINVAL);
    ck_assert_int_eq(
        dotproxy_config_add_pin(cfg, 0, "sha256/not*base64!at#all~~~~~~~~~~~~~~~~~~~="),
        DOTPROXY_EINVAL);
    ck_assert_int_eq(dotproxy_config_add_pin(cfg, 0, short_pin), DOTPROXY_EINVAL);
    ck_assert_int_eq(dotproxy_config_add_pin(cfg, 0, long_pin), DOTPROXY_EINVAL);
    ck_assert_int_eq(dotproxy_config_add_pin(cfg, 0, other_algo), DOTPROXY_EINVAL);

    /* Rejected pins took no room: all 8 slots are still free. */
    for (unsigned i = 0; i < 8; i++) {
        char pin[64];
        random_pin(32, pin, sizeof pin);
        ck_assert_int_eq(dotproxy_config_add_pin(cfg, 0, i % 2 ? pin : pin + 7), 0);
    }
    ck_assert_int_eq(dotproxy_config_add_pin(cfg, 0, good), DOTPROXY_ELIMIT);
    dotproxy_config_free(cfg);
}
END_TEST

START_TEST(test_reliability_checks_the_pin_set_on_resumed_sessions_too)
{
    ts_dotserver *srv = ts_rig_server((ts_dotserver_opts){0}, "server");
    char right[64];
    spki_pin(ts_pki_path(ts_rig_pki, "server.pem"), right, sizeof right);
    dotproxy_config *cfg = config_one(ts_dotserver_port(srv));
    ck_assert_int_eq(dotproxy_config_add_pin(cfg, 0, right), 0);
    ck_assert_int_eq(dotproxy_config_set_idle_timeout_ms(cfg, 200), 0);
    ts_rig r;
    ts_rig_up(&r, cfg);

    ask_ok(r.port, 0x5c01, "FiRsT.resume.pin.test");
    ck_assert_uint_eq(wait_ctr(&r, DOTPROXY_CTR_TLS_CLOSED_IDLE, 1), 1);
    ask_ok(r.port, 0x5c02, "SeCoNd.resume.pin.test");
    /* The second connection resumed the first one's session, and the pin
     * check (run on it as on every handshake) let it through. */
    ck_assert_uint_eq(ts_dotserver_connections(srv), 2);
    ck_assert_uint_eq(wait_server(ts_dotserver_handshakes, srv, 2), 2);
    ck_assert_uint_ge(ts_dotserver_resumed(srv), 1);
    ck_assert_uint_eq(ts_rig_ctr(&r, DOTPROXY_CTR_TLS_HANDSHAKES), 2);
    ck_assert_uint_ge(ts_rig_ctr(&r, DOTPROXY_CTR_TLS_RESUMED), 1);
    ck_assert_uint_eq(ts_rig_ctr(&r, DOTPROXY_CTR_TLS_FAILURES), 0);
    ts_rig_down(&r);
    ts_dotserver_stop(srv);
}
END_TEST

/* ---- dotproxy_ctx_reload -------------------------------------------------------- */

START_TEST(test_reliability_reload_with_the_same_upstream_keeps_its_warm_connection)
{
    ts_dotserver *srv = ts_rig_server((ts_dotserver_opts){0}, "server");
    uint16_t up = ts_dotserver_port(srv);
    ts_rig r;
    ts_rig_up(&r, config_one(up));

    ask_ok(r.port, 0x6101, "BeFoRe.same.reload.test");
    dotproxy_config *cfg = config_one(up);
    ck_assert_int_eq(dotproxy_config_set_timeout_ms(cfg, 3000), 0); /* not a TLS change */
    ts_rig_reload(&r, cfg);
    ck_assert_uint_eq(wait_ctr(&r, DOTPROXY_CTR_RELOADS, 1), 1);
    ask_ok(r.port, 0x6102, "AfTeR.same.reload.test");
    ask_ok(r.port, 0x6103, "AgAiN.same.reload.test");

    ck_assert_uint_eq(ts_dotserver_queries(srv), 3);
    ck_assert_uint_eq(ts_dotserver_connections(srv), 1);
    ck_assert_uint_eq(ts_rig_ctr(&r, DOTPROXY_CTR_TLS_CONNECTS), 1);
    ck_assert_uint_eq(ts_rig_ctr(&r, DOTPROXY_CTR_RELOADS), 1);
    ts_rig_down(&r);
    ts_dotserver_stop(srv);
}
END_TEST

START_TEST(test_reliability_reload_to_another_upstream_sends_new_queries_there_on_the_same_port)
{
    ts_dotserver *a = ts_rig_server((ts_dotserver_opts){0}, "server");
    ts_dotserver *b = ts_rig_server((ts_dotserver_opts){0}, "server");
    ts_rig r;
    ts_rig_up(&r, config_one(ts_dotserver_port(a)));
    uint16_t port = r.port;

    ask_ok(port, 0x6201, "OnA.switch.reload.test");
    ck_assert_uint_eq(ts_dotserver_queries(a), 1);
    ts_rig_reload(&r, config_one(ts_dotserver_port(b)));
    ck_assert_uint_eq(wait_ctr(&r, DOTPROXY_CTR_RELOADS, 1), 1);
    for (unsigned i = 0; i < 3; i++) {
        char name[48];
        snprintf(name, sizeof name, "OnB%u.switch.reload.test", i);
        ask_ok(port, (uint16_t)(0x6210 + i), name);
    }
    ck_assert_uint_eq(ts_dotserver_queries(b), 3);
    ck_assert_uint_eq(ts_dotserver_queries(a), 1);
    ts_rig_stop(&r);
    ck_assert_int_eq(dotproxy_ctx_listen_port(r.ctx, 0), port);
    ts_rig_down(&r);
    ts_dotserver_stop(a);
    ts_dotserver_stop(b);
}
END_TEST

START_TEST(test_reliability_reload_keeps_the_listeners_when_the_listen_list_changed)
{
    ts_dotserver *srv = ts_rig_server((ts_dotserver_opts){0}, "server");
    uint16_t up = ts_dotserver_port(srv);
    ts_rig r;
    ts_rig_up(&r, config_one(up));
    uint16_t port = r.port;
    ask_ok(port, 0x6301, "BeFoRe.listen.reload.test");

    /* A port nobody listens on, asked for in the new configuration. */
    int hold;
    uint16_t other = ts_rig_refusing_port(&hold);
    close(hold);
    dotproxy_config *cfg = ts_rig_config(&up, 1);
    char spec[64];
    snprintf(spec, sizeof spec, "127.0.0.1@%u", (unsigned)other);
    ck_assert_int_eq(dotproxy_config_add_listen(cfg, spec), 0);
    ts_rig_reload(&r, cfg);
    /* The rest of the reload is applied; the listen list is not. */
    ck_assert_uint_eq(wait_ctr(&r, DOTPROXY_CTR_RELOADS, 1), 1);

    ask_ok(port, 0x6302, "AfTeR.listen.reload.test");
    int fd = ts_dns_tcp_connect(other);
    if (fd >= 0)
        close(fd);
    ck_assert_msg(fd == -ECONNREFUSED, "the reload opened a listener on port %u (%s)",
                  (unsigned)other, fd < 0 ? strerror(-fd) : "connected");
    ck_assert_uint_eq(ts_dotserver_connections(srv), 1); /* same upstream: kept warm */
    ts_rig_stop(&r);
    ck_assert_int_eq(dotproxy_ctx_listen_port(r.ctx, 0), port);
    ck_assert_int_eq(dotproxy_ctx_listen_port(r.ctx, 1), DOTPROXY_EINVAL);
    ts_rig_down(&r);
    ts_dotserver_stop(srv);
}
END_TEST

/* BUG (lib/proxy.c apply_reload): when the new TLS settings cannot be loaded
 * it logs and returns without freeing the pending configuration copy `n`
 * (the same on its out-of-memory path), so every such reload leaks it; under
 * ASan this test's process then fails with a LeakSanitizer report. */
START_TEST(test_reliability_reload_with_an_unreadable_ca_file_keeps_the_old_configuration)
{
    ts_dotserver *a = ts_rig_server((ts_dotserver_opts){0}, "server");
    ts_dotserver *b = ts_rig_server((ts_dotserver_opts){0}, "server");
    ts_rig r;
    ts_rig_up(&r, config_one(ts_dotserver_port(a)));
    ask_ok(r.port, 0x6401, "BeFoRe.ca.reload.test");

    char missing[2 * PATH_MAX];
    snprintf(missing, sizeof missing, "%s/no-such-ca.pem", ts_rig_pki);
    dotproxy_config *cfg = config_one(ts_dotserver_port(b));
    ck_assert_int_eq(dotproxy_config_set_ca_file(cfg, missing), 0);
    unsigned errs = ts_rig_log_errors();
    ts_rig_reload_async(&r, cfg); /* it fails in the context's thread */
    /* The failed reload is only visible in the log (through the callback of
     * the configuration still in force). */
    int64_t end = ts_now_ms() + WAIT_MS;
    while (ts_rig_log_errors() == errs && ts_now_ms() < end)
        poll(NULL, 0, 2);
    ck_assert_msg(ts_rig_log_errors() > errs, "the failed reload logged no error");

    ask_ok(r.port, 0x6402, "AfTeR.ca.reload.test");
    ck_assert_uint_eq(ts_dotserver_queries(a), 2);
    ck_assert_uint_eq(ts_dotserver_connections(a), 1);
    ck_assert_uint_eq(ts_dotserver_connections(b), 0);
    ck_assert_uint_eq(ts_rig_ctr(&r, DOTPROXY_CTR_RELOADS), 0);
    ts_rig_down(&r);
    ts_dotserver_stop(a);
    ts_dotserver_stop(b);
}
END_TEST

START_TEST(test_reliability_reload_moves_queries_in_flight_on_a_removed_upstream_to_the_new_one)
{
    /* a holds its answers long enough that only b can answer in time. */
    ts_dotserver *a = ts_rig_server((ts_dotserver_opts){.delay_ms = 1500}, "server");
    ts_dotserver *b = ts_rig_server((ts_dotserver_opts){0}, "server");
    ts_rig r;
    ts_rig_up(&r, config_one(ts_dotserver_port(a)));

    uint8_t q[128], ans[1024];
    const char *name = "MoVeD.inflight.reload.test";
    size_t qlen = query(q, sizeof q, 0x6501, name);
    int fd = ts_dns_udp_socket(r.port);
    ck_assert_int_ge(fd, 0);
    int64_t t0 = ts_now_ms();
    ck_assert_int_eq(ts_dns_udp_send(fd, q, qlen), 0);
    ck_assert_uint_eq(wait_server(ts_dotserver_queries, a, 1), 1);
    ts_rig_reload(&r, config_one(ts_dotserver_port(b)));

    int n = ts_dns_udp_recv(fd, ans, sizeof ans, WAIT_MS);
    int64_t waited = ts_now_ms() - t0;
    ck_assert_msg(n > 0, "no answer: %s", n < 0 ? strerror(-n) : "empty");
    assert_a_answer(ans, n, 0x6501, name);
    ck_assert_uint_eq(ts_dotserver_queries(b), 1);
    ck_assert_msg(waited < 1500, "answered after %lld ms: by the removed upstream?",
                  (long long)waited);
    ck_assert_uint_eq(ts_rig_ctr(&r, DOTPROXY_CTR_RELOADS), 1);
    ck_assert_uint_eq(ts_rig_ctr(&r, DOTPROXY_CTR_SERVFAIL), 0);
    ts_rig_down(&r);
    /* One answer only, even though a may still have answered. */
    ck_assert_int_eq(ts_dns_udp_recv(fd, ans, sizeof ans, 0), -ETIMEDOUT);
    close(fd);
    ts_dotserver_stop(a);
    ts_dotserver_stop(b);
}
END_TEST

/* Queries written to a busy connection may be held for a fuller write (a
 * connection owing 32 or more answers): a reload that removes its upstream
 * while one is held must neither lose those queries nor touch the freed
 * connection (AddressSanitizer runs this suite in CI). */
#define HELD_BACKLOG 40
#define HELD_ROUNDS  6

START_TEST(test_reliability_reload_while_queries_are_held_for_a_fuller_write_loses_none)
{
    ts_dotserver *slow[2] = {ts_rig_server((ts_dotserver_opts){.delay_ms = 1500}, "server"),
                             ts_rig_server((ts_dotserver_opts){.delay_ms = 1500}, "server")};
    ts_dotserver *fast = ts_rig_server((ts_dotserver_opts){0}, "server");
    ts_rig r;
    ts_rig_up(&r, config_one(ts_dotserver_port(slow[0])));
    int fd = ts_dns_udp_socket(r.port);
    ck_assert_int_ge(fd, 0);
    uint8_t q[128], ans[1024];
    char name[64];
    unsigned sent = 0;
    for (int i = 0; i < HELD_BACKLOG; i++, sent++) {
        snprintf(name, sizeof name, "b%d.held.reload.test", i);
        size_t qlen = query(q, sizeof q, (uint16_t)(0x7000 + sent), name);
        ck_assert_int_eq(ts_dns_udp_send(fd, q, qlen), 0);
    }
    ck_assert_uint_eq(wait_server(ts_dotserver_queries, slow[0], HELD_BACKLOG), HELD_BACKLOG);
    /* Each round: one more query (held: the connection owes >= 32 answers),
     * then at once a reload that removes its upstream. The last reload goes
     * to the fast upstream, which then answers everything. */
    for (int round = 0; round < HELD_ROUNDS; round++, sent++) {
        snprintf(name, sizeof name, "r%d.held.reload.test", round);
        size_t qlen = query(q, sizeof q, (uint16_t)(0x7000 + sent), name);
        ck_assert_int_eq(ts_dns_udp_send(fd, q, qlen), 0);
        ts_dotserver *next = round == HELD_ROUNDS - 1 ? fast : slow[(round + 1) % 2];
        unsigned before = ts_dotserver_queries(next);
        ts_rig_reload(&r, config_one(ts_dotserver_port(next)));
        /* Everything in flight moves to the new upstream. */
        if (next != fast)
            ck_assert_uint_ge(wait_server(ts_dotserver_queries, next, before + sent + 1),
                              before + sent + 1);
    }
    uint8_t seen[HELD_BACKLOG + HELD_ROUNDS] = {0};
    unsigned got = 0;
    while (got < sent) {
        int n = ts_dns_udp_recv(fd, ans, sizeof ans, WAIT_MS);
        ck_assert_msg(n > 0, "%u of %u answered, then: %s", got, sent,
                      n < 0 ? strerror(-n) : "empty");
        ck_assert_int_ge(n, 12);
        unsigned id = (unsigned)(ans[0] << 8 | ans[1]) - 0x7000u;
        ck_assert_uint_lt(id, sent);
        ck_assert_msg(!seen[id], "two answers to query %u", id);
        ck_assert_uint_eq(ans[3] & 0x0f, 0); /* NOERROR */
        seen[id] = 1;
        got++;
    }
    ck_assert_uint_eq(ts_rig_ctr(&r, DOTPROXY_CTR_RELOADS), HELD_ROUNDS);
    ck_assert_uint_eq(ts_rig_ctr(&r, DOTPROXY_CTR_SERVFAIL), 0);
    ts_rig_down(&r);
    close(fd);
    ts_dotserver_stop(slow[0]);
    ts_dotserver_stop(slow[1]);
    ts_dotserver_stop(fast);
}
END_TEST

/* ---- failover and hedging --------------------------------------------------------- */

#define SILENT_QUERIES 8

START_TEST(test_reliability_answers_well_within_the_timeout_when_the_first_upstream_is_silent)
{
    ts_dotserver *mute = ts_rig_server((ts_dotserver_opts){.silent = 1}, "server");
    ts_dotserver *good = ts_rig_server((ts_dotserver_opts){0}, "server");
    uint16_t ports[2] = {ts_dotserver_port(mute), ts_dotserver_port(good)};
    dotproxy_config *cfg = ts_rig_config(ports, 2);
    ck_assert_int_eq(dotproxy_config_set_timeout_ms(cfg, 2000), 0);
    ts_rig r;
    ts_rig_up(&r, cfg);

    int64_t worst = 0;
    for (unsigned i = 0; i < SILENT_QUERIES; i++) {
        char name[48];
        snprintf(name, sizeof name, "HeDgE%u.silent.test", i);
        int64_t t0 = ts_now_ms();
        ask_ok(r.port, (uint16_t)(0x7100 + i), name);
        int64_t t = ts_now_ms() - t0;
        ck_assert_msg(t < 1500, "query %u answered after %lld ms (timeout 2000)", i, (long long)t);
        if (t > worst)
            worst = t;
    }
    ck_assert_uint_eq(ts_dotserver_queries(good), SILENT_QUERIES);
    /* Either late queries were moved off the silent upstream, or it was not
     * chosen at all. */
    unsigned to_mute = ts_dotserver_queries(mute);
    uint64_t hedged = ts_rig_ctr(&r, DOTPROXY_CTR_HEDGED);
    ck_assert_msg(hedged > 0 || to_mute == 0, "%u queries went to the silent upstream, 0 hedged",
                  to_mute);
    ck_assert_uint_eq(ts_rig_ctr(&r, DOTPROXY_CTR_SERVFAIL), 0);
    ck_assert_uint_eq(ts_rig_ctr(&r, DOTPROXY_CTR_TIMEOUTS), 0);
    if (getenv("DP_TEST_LOG") != NULL)
        fprintf(stderr,
                "silent upstream: %u of %u queries sent to it, %llu hedged, worst %lld ms\n",
                to_mute, SILENT_QUERIES, (unsigned long long)hedged, (long long)worst);
    ts_rig_down(&r);
    ts_dotserver_stop(mute);
    ts_dotserver_stop(good);
}
END_TEST

#define REFUSED_BURST 20

START_TEST(test_reliability_skips_a_refusing_upstream_while_it_backs_off_instead_of_per_query)
{
    int dead_fd;
    ts_dotserver *good = ts_rig_server((ts_dotserver_opts){0}, "server");
    uint16_t ports[2] = {ts_rig_refusing_port(&dead_fd), ts_dotserver_port(good)};
    ts_rig r;
    ts_rig_up(&r, ts_rig_config(ports, 2));

    /* A burst from distinct clients, all in flight at once, then as many
     * one after the other. */
    int fds[REFUSED_BURST];
    char names[REFUSED_BURST][48];
    for (unsigned i = 0; i < REFUSED_BURST; i++) {
        uint8_t q[128];
        snprintf(names[i], sizeof names[i], "BuRsT%u.refused.test", i);
        size_t qlen = query(q, sizeof q, (uint16_t)(0x7200 + i), names[i]);
        fds[i] = ts_dns_udp_socket(r.port);
        ck_assert_int_ge(fds[i], 0);
        ck_assert_int_eq(ts_dns_udp_send(fds[i], q, qlen), 0);
    }
    for (unsigned i = 0; i < REFUSED_BURST; i++) {
        uint8_t ans[1024];
        int n = ts_dns_udp_recv(fds[i], ans, sizeof ans, WAIT_MS);
        ck_assert_msg(n > 0, "client %u: %s", i, n < 0 ? strerror(-n) : "empty");
        assert_a_answer(ans, n, (uint16_t)(0x7200 + i), names[i]);
        close(fds[i]);
    }
    for (unsigned i = 0; i < REFUSED_BURST; i++) {
        char name[48];
        snprintf(name, sizeof name, "SeQ%u.refused.test", i);
        ask_ok(r.port, (uint16_t)(0x7300 + i), name);
    }
    ck_assert_uint_eq(ts_dotserver_queries(good), 2 * REFUSED_BURST);
    /* Failures are counted per connection attempt: a handful of probes as
     * the backoff runs out, not one per query. */
    uint64_t failures = ts_rig_ctr(&r, DOTPROXY_CTR_TLS_FAILURES);
    ck_assert_uint_ge(failures, 1);
    ck_assert_uint_le(failures, 3);
    ck_assert_uint_eq(ts_rig_ctr(&r, DOTPROXY_CTR_SERVFAIL), 0);
    ts_rig_down(&r);
    close(dead_fd);
    ts_dotserver_stop(good);
}
END_TEST

/* ---- every upstream down, then back ----------------------------------------------- */

START_TEST(test_reliability_fails_fast_while_every_upstream_is_down_and_recovers_when_one_returns)
{
    int hold;
    uint16_t up = ts_rig_refusing_port(&hold);
    dotproxy_config *cfg = config_one(up);
    ck_assert_int_eq(dotproxy_config_set_timeout_ms(cfg, 4000), 0);
    ts_rig r;
    ts_rig_up(&r, cfg);

    /* SERVFAIL as soon as the connect is refused, not when the 4 s deadline
     * passes (the bound leaves room for a loaded machine, far below 4 s). */
    int64_t t0 = ts_now_ms();
    ask_servfail(r.port, 0x8001, "DoWn.all.test");
    int64_t waited = ts_now_ms() - t0;
    ck_assert_msg(waited < 500, "SERVFAIL after %lld ms", (long long)waited);
    /* While it backs off, queries fail at once without a new connect. */
    uint64_t connects = ts_rig_ctr(&r, DOTPROXY_CTR_TLS_CONNECTS);
    t0 = ts_now_ms();
    ask_servfail(r.port, 0x8002, "StIlL.down.all.test");
    ck_assert_int_lt(ts_now_ms() - t0, 500);
    ck_assert_uint_le(ts_rig_ctr(&r, DOTPROXY_CTR_TLS_CONNECTS), connects + 1);
    ck_assert_uint_eq(ts_rig_ctr(&r, DOTPROXY_CTR_TIMEOUTS), 0);

    /* The resolver comes back on the same port; the proxy's own probe (its
     * backoff is at most 5 s plus jitter) finds it without being restarted. */
    close(hold);
    ts_dotserver *srv = ts_rig_server((ts_dotserver_opts){.port = up}, "server");
    ck_assert_uint_eq(ts_dotserver_port(srv), up);
    int64_t back = ts_now_ms();
    ck_assert_uint_ge(wait_server_for(ts_dotserver_handshakes, srv, 1, 8000), 1);
    ck_assert_int_lt(ts_now_ms() - back, 8000);
    ask_ok(r.port, 0x8003, "BaCk.all.test");
    ask_ok(r.port, 0x8004, "AgAiN.back.all.test");
    ck_assert_uint_eq(ts_dotserver_queries(srv), 2);
    ts_rig_down(&r);
    ts_dotserver_stop(srv);
}
END_TEST

/* ---- learning the upstream's idle limit -------------------------------------------- */

START_TEST(test_reliability_learns_the_upstreams_idle_limit_and_closes_idle_connections_first)
{
    ts_dotserver *srv = ts_rig_server((ts_dotserver_opts){.idle_close_ms = 1200}, "server");
    ts_rig r;
    ts_rig_up(&r, config_one(ts_dotserver_port(srv))); /* idle timeout: the default 8 s */

    ask_ok(r.port, 0x9001, "FiRsT.idle.test");
    /* The server drops the idle connection after 1.2 s, long before our 8 s. */
    ck_assert_uint_eq(wait_server(ts_dotserver_closed_by_server, srv, 1), 1);
    ck_assert_uint_eq(wait_ctr(&r, DOTPROXY_CTR_TLS_CLOSED_BY_PEER, 1), 1);
    ck_assert_uint_eq(ts_rig_ctr(&r, DOTPROXY_CTR_TLS_CLOSED_IDLE), 0);

    ask_ok(r.port, 0x9002, "SeCoNd.idle.test"); /* on a new connection */
    ask_ok(r.port, 0x9003, "ThIrD.idle.test");
    int64_t t0 = ts_now_ms();
    ck_assert_uint_ge(ts_dotserver_connections(srv), 2);

    /* Now the proxy closes first: it learnt that this upstream drops idle
     * connections after about 1.2 s, and never lets one get that old. */
    ck_assert_uint_eq(wait_ctr(&r, DOTPROXY_CTR_TLS_CLOSED_IDLE, 1), 1);
    int64_t idle = ts_now_ms() - t0;
    ck_assert_msg(ts_dotserver_closed_by_server(srv) == 1,
                  "the server closed the idle connection first (after %lld ms)", (long long)idle);
    ck_assert_msg(idle < 1200, "closed only after %lld ms idle", (long long)idle);
    ck_assert_uint_eq(ts_rig_ctr(&r, DOTPROXY_CTR_TLS_CLOSED_BY_PEER), 1);

    /* ...and the next query simply opens a new connection. */
    ask_ok(r.port, 0x9004, "FoUrTh.idle.test");
    ck_assert_uint_eq(ts_rig_ctr(&r, DOTPROXY_CTR_SERVFAIL), 0);
    ts_rig_down(&r);
    ts_dotserver_stop(srv);
}
END_TEST

/* ---- connections lost with queries in flight ---------------------------------------- */

#define LOST_PIPELINED 10

/* The upstream closes each connection on reading its 3rd query, answering
 * the first two: ten queries pipelined over one TCP client need several
 * connections, and each lost query must be re-sent until answered (the
 * upstream is healthy and the 4 s deadline is far away).
 *
 * BUG (lib/tls_pool.c conn_fail): a query lost with a connection is re-sent
 * once only (q->retries), whatever its deadline: the 8 queries lost with the
 * first connection are all re-sent on the second, which answers 2 and closes
 * again, and the other 6 get SERVFAIL at once. */
START_TEST(test_reliability_answers_every_pipelined_query_when_the_upstream_keeps_closing)
{
    ts_dotserver *srv = ts_rig_server((ts_dotserver_opts){.close_after = 3}, "server");
    ts_rig r;
    ts_rig_up(&r, config_one(ts_dotserver_port(srv)));

    static uint8_t qs[LOST_PIPELINED][128];
    const uint8_t *msgs[LOST_PIPELINED];
    size_t lens[LOST_PIPELINED];
    char names[LOST_PIPELINED][48];
    for (unsigned i = 0; i < LOST_PIPELINED; i++) {
        snprintf(names[i], sizeof names[i], "PiPe%u.lost.test", i);
        lens[i] = query(qs[i], sizeof qs[i], (uint16_t)(0xa000 + i), names[i]);
        msgs[i] = qs[i];
    }
    int fd = ts_dns_tcp_connect(r.port);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(ts_dns_tcp_send_many(fd, msgs, lens, LOST_PIPELINED), 0);

    int seen[LOST_PIPELINED] = {0};
    unsigned servfails = 0;
    for (unsigned k = 0; k < LOST_PIPELINED; k++) {
        uint8_t ans[1024];
        int n = ts_dns_tcp_recv(fd, ans, sizeof ans, WAIT_MS);
        ck_assert_msg(n > 0, "answer %u of %u: %s", k, LOST_PIPELINED,
                      n < 0 ? strerror(-n) : "closed");
        int i = ts_dns_id(ans, (size_t)n) - 0xa000;
        ck_assert_msg(i >= 0 && i < LOST_PIPELINED && !seen[i], "unexpected answer ID %d",
                      i + 0xa000);
        seen[i] = 1;
        if (ts_dns_rcode(ans, (size_t)n) == TS_DNS_RCODE_SERVFAIL) {
            assert_reply_to(ans, n, (uint16_t)(0xa000 + i), names[i], TS_DNS_RCODE_SERVFAIL);
            servfails++;
            continue;
        }
        assert_a_answer(ans, n, (uint16_t)(0xa000 + i), names[i]);
    }
    close(fd);
    ck_assert_uint_ge(ts_dotserver_closed_by_server(srv), 1);
    ck_assert_uint_gt(ts_rig_ctr(&r, DOTPROXY_CTR_RETRIES), 0);
    ck_assert_msg(servfails == 0,
                  "%u of %u pipelined queries got SERVFAIL after the upstream closed "
                  "(%u connections, %llu retries)",
                  servfails, LOST_PIPELINED, ts_dotserver_connections(srv),
                  (unsigned long long)ts_rig_ctr(&r, DOTPROXY_CTR_RETRIES));
    ck_assert_uint_eq(ts_rig_ctr(&r, DOTPROXY_CTR_ANSWERS), LOST_PIPELINED);
    ts_rig_down(&r);
    ts_dotserver_stop(srv);
}
END_TEST

/* ---- the runner ------------------------------------------------------------- */

START_TEST(test_reliability_reload_applies_a_changed_cache_size)
{
    ts_dotserver *srv = ts_rig_server((ts_dotserver_opts){0}, "server");
    uint16_t up = ts_dotserver_port(srv);
    dotproxy_config *cfg = config_one(up);
    ck_assert_int_eq(dotproxy_config_set_cache_size(cfg, 100), 0);
    ts_rig r;
    ts_rig_up(&r, cfg);
    ask_ok(r.port, 0x7101, "cached.reload.test");
    ask_ok(r.port, 0x7102, "cached.reload.test");
    ck_assert_uint_eq(ts_dotserver_queries(srv), 1); /* the second came from the cache */

    cfg = config_one(up);
    ck_assert_int_eq(dotproxy_config_set_cache_size(cfg, 0), 0);
    ts_rig_reload(&r, cfg);
    ck_assert_uint_eq(wait_ctr(&r, DOTPROXY_CTR_RELOADS, 1), 1);
    ask_ok(r.port, 0x7103, "cached.reload.test");
    ask_ok(r.port, 0x7104, "cached.reload.test");
    ck_assert_uint_eq(ts_dotserver_queries(srv), 3); /* no cache any more */
    ts_rig_down(&r);
    ts_dotserver_stop(srv);
}
END_TEST

START_TEST(test_reliability_contexts_sharing_a_cache_answer_each_others_questions)
{
    ts_dotserver *srv = ts_rig_server((ts_dotserver_opts){0}, "server");
    uint16_t up = ts_dotserver_port(srv);
    dotproxy_config *cfg = config_one(up);
    ck_assert_int_eq(dotproxy_config_set_cache_size(cfg, 1000), 0);
    dotproxy_cache *shared = NULL;
    ck_assert_int_eq(dotproxy_cache_new(&shared, cfg), 0);
    ck_assert_int_eq(dotproxy_config_set_shared_cache(cfg, shared), 0);
    dotproxy_cache_free(shared); /* the config and the contexts hold references */
    dotproxy_config *cfg2 = config_one(up);
    ck_assert_int_eq(dotproxy_config_set_cache_size(cfg2, 1000), 0);
    ck_assert_int_eq(dotproxy_config_set_shared_cache(cfg2, shared), 0);
    ts_rig a, b;
    ts_rig_up(&a, cfg);
    ts_rig_up(&b, cfg2);
    ask_ok(a.port, 0x7201, "SHARED.cache.test");
    ask_ok(b.port, 0x7202, "shared.CACHE.test"); /* another context, same question */
    ask_ok(b.port, 0x7203, "shared.cache.TEST");
    ck_assert_uint_eq(ts_dotserver_queries(srv), 1);
    ck_assert_uint_ge(ts_rig_ctr(&b, DOTPROXY_CTR_CACHE_HITS), 2);
    ck_assert_uint_eq(wait_ctr(&b, DOTPROXY_CTR_CACHE_SHARED, 1), 1);
    ck_assert_uint_eq(wait_ctr(&a, DOTPROXY_CTR_CACHE_ENTRIES, 1), 1);
    ts_rig_down(&a);
    ts_rig_down(&b); /* the last reference goes with it (valgrind/ASan check the free) */
    ts_dotserver_stop(srv);
}
END_TEST

START_TEST(test_reliability_refuses_a_shared_cache_without_a_size)
{
    dotproxy_config *cfg = NULL;
    dotproxy_cache *c = NULL;
    ck_assert_int_eq(dotproxy_config_new(&cfg), 0);
    ck_assert_int_eq(dotproxy_cache_new(&c, cfg), DOTPROXY_EINVAL); /* cache size 0 */
    ck_assert_ptr_null(c);
    dotproxy_cache_free(NULL);
    dotproxy_config_free(cfg);
}
END_TEST

/* Query logging: one entry per answer, with what an operator needs. */
struct qlog_rec {
    pthread_mutex_t lock;
    unsigned n;
    char names[8][300];
    char transport[8][8];
    int from_cache[8], rcode[8], has_client[8], has_upstream[8];
    unsigned qtype[8];
    uint64_t latency_us[8];
};

static void qlog_sink(const dotproxy_query_log *e, void *user)
{
    struct qlog_rec *r = user;
    pthread_mutex_lock(&r->lock);
    if (r->n < 8) {
        snprintf(r->names[r->n], sizeof r->names[0], "%s", e->qname);
        snprintf(r->transport[r->n], sizeof r->transport[0], "%s", e->transport);
        r->from_cache[r->n] = e->from_cache;
        r->rcode[r->n] = e->rcode;
        r->qtype[r->n] = e->qtype;
        r->latency_us[r->n] = e->latency_us;
        r->has_client[r->n] = e->client != NULL && e->client_len > 0;
        r->has_upstream[r->n] = e->upstream != NULL && strchr(e->upstream, '#') != NULL;
    }
    r->n++;
    pthread_mutex_unlock(&r->lock);
}

START_TEST(test_reliability_query_log_reports_each_answer_and_whether_the_cache_gave_it)
{
    static struct qlog_rec rec = {.lock = PTHREAD_MUTEX_INITIALIZER};
    ts_dotserver *srv = ts_rig_server((ts_dotserver_opts){0}, "server");
    dotproxy_config *cfg = config_one(ts_dotserver_port(srv));
    ck_assert_int_eq(dotproxy_config_set_cache_size(cfg, 100), 0);
    ck_assert_int_eq(dotproxy_config_set_query_log(cfg, qlog_sink, &rec), 0);
    ts_rig r;
    ts_rig_up(&r, cfg);
    ask_ok(r.port, 0x7301, "LoGgEd.Query.test");
    ask_ok(r.port, 0x7302, "logged.query.test");
    ts_rig_down(&r);
    ts_dotserver_stop(srv);
    ck_assert_uint_eq(rec.n, 2);
    for (unsigned i = 0; i < 2; i++) {
        ck_assert_str_eq(rec.names[i], "logged.query.test.");
        ck_assert_str_eq(rec.transport[i], "udp");
        ck_assert_int_eq(rec.rcode[i], 0);
        ck_assert_uint_eq(rec.qtype[i], 1);
        ck_assert_int_eq(rec.has_client[i], 1);
    }
    ck_assert_int_eq(rec.from_cache[0], 0);
    ck_assert_int_eq(rec.has_upstream[0], 1);
    ck_assert_int_eq(rec.from_cache[1], 1);
    ck_assert_int_eq(rec.has_upstream[1], 0);
}
END_TEST

/* A cache hit is answered within the turn its query arrived in: its logged
 * latency is the real time it took (reading the datagram, the lookup), not
 * the turn's clock, which would say 0 for every hit. */
START_TEST(test_reliability_query_log_gives_cache_hits_their_real_latency)
{
    static struct qlog_rec rec = {.lock = PTHREAD_MUTEX_INITIALIZER};
    ts_dotserver *srv = ts_rig_server((ts_dotserver_opts){0}, "server");
    dotproxy_config *cfg = config_one(ts_dotserver_port(srv));
    ck_assert_int_eq(dotproxy_config_set_cache_size(cfg, 100), 0);
    ck_assert_int_eq(dotproxy_config_set_query_log(cfg, qlog_sink, &rec), 0);
    ts_rig r;
    ts_rig_up(&r, cfg);
    for (unsigned i = 0; i < 8; i++)
        ask_ok(r.port, (uint16_t)(0x7380 + i), "hit.latency.test");
    ts_rig_down(&r);
    ts_dotserver_stop(srv);
    ck_assert_uint_eq(rec.n, 8);
    uint64_t most = 0;
    for (unsigned i = 1; i < 8; i++) {
        ck_assert_int_eq(rec.from_cache[i], 1);
        ck_assert_uint_lt(rec.latency_us[i], 5000000u);
        if (rec.latency_us[i] > most)
            most = rec.latency_us[i];
    }
    ck_assert_msg(most > 0, "7 cache hits, each logged with 0 us");
}
END_TEST

/* The message tap: each message of a query that goes upstream, as the
 * client and the upstream saw it, with both ends and the times; a cache hit
 * has no upstream messages. */
struct tap_rec {
    pthread_mutex_t lock;
    unsigned n;
    struct {
        int kind, transport;
        size_t size;
        int q_family, r_family;
        unsigned q_port, r_port;
        uint16_t id;
        int qr;
        uint64_t qt, rt;
    } e[16];
};

static unsigned sa_port(const struct sockaddr *sa)
{
    if (sa == NULL)
        return 0;
    if (sa->sa_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)(const void *)sa)->sin_port);
    return ntohs(((const struct sockaddr_in6 *)(const void *)sa)->sin6_port);
}

static void tap_sink(const dotproxy_tap_event *ev, void *user)
{
    struct tap_rec *r = user;
    pthread_mutex_lock(&r->lock);
    if (r->n < 16) {
        r->e[r->n].kind = ev->kind;
        r->e[r->n].transport = ev->transport;
        r->e[r->n].size = ev->size;
        r->e[r->n].q_family = ev->query_addr != NULL ? ev->query_addr->sa_family : -1;
        r->e[r->n].r_family = ev->response_addr != NULL ? ev->response_addr->sa_family : -1;
        r->e[r->n].q_port = sa_port(ev->query_addr);
        r->e[r->n].r_port = sa_port(ev->response_addr);
        r->e[r->n].id = ev->len >= 12 ? (uint16_t)(ev->msg[0] << 8 | ev->msg[1]) : 0;
        r->e[r->n].qr = ev->len >= 12 ? ev->msg[2] >> 7 : -1;
        r->e[r->n].qt = ev->query_time_ns;
        r->e[r->n].rt = ev->response_time_ns;
    }
    r->n++;
    pthread_mutex_unlock(&r->lock);
}

START_TEST(test_reliability_tap_sees_client_and_upstream_messages_with_both_ends)
{
    static struct tap_rec rec = {.lock = PTHREAD_MUTEX_INITIALIZER};
    ts_dotserver *srv = ts_rig_server((ts_dotserver_opts){0}, "server");
    unsigned srv_port = ts_dotserver_port(srv);
    dotproxy_config *cfg = config_one((uint16_t)srv_port);
    ck_assert_int_eq(dotproxy_config_set_cache_size(cfg, 100), 0);
    ck_assert_int_eq(dotproxy_config_set_tap(NULL, tap_sink, &rec), DOTPROXY_EINVAL);
    ck_assert_int_eq(dotproxy_config_set_tap(cfg, tap_sink, &rec), 0);
    ts_rig r;
    ts_rig_up(&r, cfg);
    ask_ok(r.port, 0x7401, "tapped.query.test");
    ask_ok(r.port, 0x7402, "tapped.query.test"); /* from the cache */
    ts_rig_down(&r);
    ts_dotserver_stop(srv);

    static const int kinds[6] = {DOTPROXY_TAP_CLIENT_QUERY,       DOTPROXY_TAP_FORWARDER_QUERY,
                                 DOTPROXY_TAP_FORWARDER_RESPONSE, DOTPROXY_TAP_CLIENT_RESPONSE,
                                 DOTPROXY_TAP_CLIENT_QUERY,       DOTPROXY_TAP_CLIENT_RESPONSE};
    ck_assert_uint_eq(rec.n, 6);
    for (unsigned i = 0; i < 6; i++) {
        ck_assert_int_eq(rec.e[i].kind, kinds[i]);
        ck_assert_uint_eq(rec.e[i].size, sizeof(dotproxy_tap_event));
        ck_assert_uint_gt(rec.e[i].qt, 0);
        int response =
            kinds[i] == DOTPROXY_TAP_CLIENT_RESPONSE || kinds[i] == DOTPROXY_TAP_FORWARDER_RESPONSE;
        ck_assert_int_eq(rec.e[i].qr, response);
        if (response)
            ck_assert_uint_ge(rec.e[i].rt, rec.e[i].qt);
        else
            ck_assert_uint_eq(rec.e[i].rt, 0);
        if (kinds[i] == DOTPROXY_TAP_CLIENT_QUERY || kinds[i] == DOTPROXY_TAP_CLIENT_RESPONSE) {
            /* The client's end, over UDP. */
            ck_assert_int_eq(rec.e[i].transport, DOTPROXY_TAP_UDP);
            ck_assert_int_eq(rec.e[i].q_family, AF_INET);
            ck_assert_uint_gt(rec.e[i].q_port, 0);
            ck_assert_uint_eq(rec.e[i].id, i < 4 ? 0x7401 : 0x7402);
        } else {
            /* The upstream's end, over TLS, with the wire ID. */
            ck_assert_int_eq(rec.e[i].transport, DOTPROXY_TAP_TLS);
            ck_assert_int_eq(rec.e[i].q_family, -1);
            ck_assert_int_eq(rec.e[i].r_family, AF_INET);
            ck_assert_uint_eq(rec.e[i].r_port, srv_port);
        }
    }
    /* The same client port asked and was answered; the upstream answered
     * the wire ID it was sent. */
    ck_assert_uint_eq(rec.e[0].q_port, rec.e[3].q_port);
    ck_assert_uint_eq(rec.e[1].id, rec.e[2].id);
    /* The client response's query time is the client query's (the two
     * clock reads behind each may be apart under load: 20 ms of slack). */
    ck_assert_uint_le(rec.e[0].qt, rec.e[3].qt + 20000000u);
    ck_assert_uint_ge(rec.e[0].qt + 20000000u, rec.e[3].qt);
}
END_TEST

/* Selection policies: with two healthy upstreams, "ordered" sends every
 * query to the first, "round-robin" spreads them over both. */
static void run_selection(int policy, unsigned *first, unsigned *second)
{
    ts_dotserver *a = ts_rig_server((ts_dotserver_opts){0}, "server");
    ts_dotserver *b = ts_rig_server((ts_dotserver_opts){0}, "server");
    uint16_t ports[2] = {ts_dotserver_port(a), ts_dotserver_port(b)};
    dotproxy_config *cfg = ts_rig_config(ports, 2);
    ck_assert_int_eq(dotproxy_config_set_selection(cfg, policy), 0);
    ts_rig r;
    ts_rig_up(&r, cfg);
    char name[64];
    for (unsigned i = 0; i < 40; i++) {
        snprintf(name, sizeof name, "sel%u.policy.test", i);
        ask_ok(r.port, (uint16_t)(0x7000 + i), name);
    }
    *first = ts_dotserver_queries(a);
    *second = ts_dotserver_queries(b);
    ts_rig_down(&r);
    ts_dotserver_stop(a);
    ts_dotserver_stop(b);
}

START_TEST(test_reliability_ordered_selection_sends_everything_to_the_first_healthy_upstream)
{
    unsigned first, second;
    run_selection(DOTPROXY_SELECT_ORDERED, &first, &second);
    ck_assert_uint_eq(first, 40);
    ck_assert_uint_eq(second, 0);
}
END_TEST

START_TEST(test_reliability_round_robin_selection_spreads_queries_over_the_upstreams)
{
    unsigned first, second;
    run_selection(DOTPROXY_SELECT_ROUND_ROBIN, &first, &second);
    ck_assert_uint_eq(first + second, 40);
    ck_assert_uint_ge(first, 15);
    ck_assert_uint_ge(second, 15);
}
END_TEST

START_TEST(test_reliability_rejects_an_unknown_selection_policy)
{
    dotproxy_config *cfg = NULL;
    ck_assert_int_eq(dotproxy_config_new(&cfg), 0);
    ck_assert_int_eq(dotproxy_config_set_selection(cfg, 7), DOTPROXY_EINVAL);
    ck_assert_int_eq(dotproxy_config_set_selection(cfg, -1), DOTPROXY_EINVAL);
    ck_assert_int_eq(dotproxy_config_set_selection(cfg, DOTPROXY_SELECT_ROUND_ROBIN), 0);
    dotproxy_config_free(cfg);
}
END_TEST

static TCase *tcase(const char *name)
{
    TCase *tc = tcase_create(name);
    /* The slowest test waits out a few seconds of backoff natively. */
    tcase_set_timeout(tc, 30);
    return tc;
}

static Suite *reliability_suite(void)
{
    Suite *s = suite_create("reliability");

    TCase *tc = tcase("pins");
    tcase_add_test(tc, test_reliability_answers_through_an_upstream_whose_key_is_in_its_pin_set);
    tcase_add_test(tc, test_reliability_refuses_an_upstream_whose_key_is_not_in_its_pin_set);
    tcase_add_test(tc, test_reliability_rejects_malformed_pins_and_pins_for_missing_upstreams);
    tcase_add_test(tc, test_reliability_checks_the_pin_set_on_resumed_sessions_too);
    suite_add_tcase(s, tc);

    tc = tcase("reload");
    tcase_add_test(tc, test_reliability_reload_with_the_same_upstream_keeps_its_warm_connection);
    tcase_add_test(
        tc, test_reliability_reload_to_another_upstream_sends_new_queries_there_on_the_same_port);
    tcase_add_test(tc, test_reliability_reload_keeps_the_listeners_when_the_listen_list_changed);
    tcase_add_test(tc,
                   test_reliability_reload_while_queries_are_held_for_a_fuller_write_loses_none);
    tcase_add_test(tc,
                   test_reliability_reload_with_an_unreadable_ca_file_keeps_the_old_configuration);
    tcase_add_test(
        tc, test_reliability_reload_moves_queries_in_flight_on_a_removed_upstream_to_the_new_one);
    suite_add_tcase(s, tc);

    tc = tcase("failover");
    tcase_add_test(
        tc, test_reliability_answers_well_within_the_timeout_when_the_first_upstream_is_silent);
    tcase_add_test(
        tc, test_reliability_skips_a_refusing_upstream_while_it_backs_off_instead_of_per_query);
    tcase_add_test(
        tc, test_reliability_fails_fast_while_every_upstream_is_down_and_recovers_when_one_returns);
    suite_add_tcase(s, tc);

    tc = tcase("reload cache");
    tcase_add_test(tc, test_reliability_reload_applies_a_changed_cache_size);
    tcase_add_test(tc, test_reliability_contexts_sharing_a_cache_answer_each_others_questions);
    tcase_add_test(tc, test_reliability_refuses_a_shared_cache_without_a_size);
    tcase_add_test(tc,
                   test_reliability_query_log_reports_each_answer_and_whether_the_cache_gave_it);
    tcase_add_test(tc, test_reliability_query_log_gives_cache_hits_their_real_latency);
    tcase_add_test(tc, test_reliability_tap_sees_client_and_upstream_messages_with_both_ends);
    suite_add_tcase(s, tc);

    tc = tcase("selection");
    tcase_add_test(
        tc, test_reliability_ordered_selection_sends_everything_to_the_first_healthy_upstream);
    tcase_add_test(tc, test_reliability_round_robin_selection_spreads_queries_over_the_upstreams);
    tcase_add_test(tc, test_reliability_rejects_an_unknown_selection_policy);
    suite_add_tcase(s, tc);

    tc = tcase("connections");
    tcase_add_test(
        tc, test_reliability_learns_the_upstreams_idle_limit_and_closes_idle_connections_first);
    tcase_add_test(tc,
                   test_reliability_answers_every_pipelined_query_when_the_upstream_keeps_closing);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    if (ts_rig_pki_init("dotproxy-test-reliability") != 0)
        return EXIT_FAILURE;
    SRunner *sr = srunner_create(reliability_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    ts_rig_pki_fini();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
