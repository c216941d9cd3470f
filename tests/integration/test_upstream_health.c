/* SPDX-License-Identifier: MIT */
/* Upstream health (issue 11, "Upstream failures"), in process: a real
 * dotproxy_ctx on loopback in front of the in-tree DoT server
 * (tests/support/dotserver.h), with a throwaway PKI made once per run.
 * The rig (a context on a thread of its own) is the one of
 * test_reliability.c.
 *
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

#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "dotproxy/config.h"
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

static int upstream_stats(const ts_rig *r, size_t i, dotproxy_upstream_stats *st)
{
    memset(st, 0, sizeof *st);
    return dotproxy_ctx_upstream_stats(r->ctx, i, st);
}

/* Wait (at most ms) until upstream i's published health is `healthy`;
 * the milliseconds it took, or -1. */
static int64_t wait_health(const ts_rig *r, size_t i, int healthy, int ms)
{
    int64_t t0 = ts_now_ms(), end = t0 + ms;
    dotproxy_upstream_stats st;
    do {
        ck_assert_int_eq(upstream_stats(r, i, &st), 0);
        if (st.healthy == healthy)
            return ts_now_ms() - t0;
        poll(NULL, 0, 20);
    } while (ts_now_ms() < end);
    return -1;
}

/* ---- a handshake that never completes (RFC 8305 spirit) ------------------------- */

START_TEST(test_health_races_the_next_upstream_when_the_first_never_completes_tls)
{
    int hold;
    uint16_t mute = ts_rig_mute_port(&hold);
    ts_dotserver *good = ts_rig_server((ts_dotserver_opts){0}, "server");
    uint16_t ports[2] = {mute, ts_dotserver_port(good)};
    dotproxy_config *cfg = ts_rig_config(ports, 2);
    ck_assert_int_eq(dotproxy_config_get_timeout_ms(cfg), 4000); /* the default */
    ts_rig r;
    ts_rig_up(&r, cfg);

    /* The very first query: the first upstream is chosen (nothing is known
     * yet), its TLS never completes. */
    int64_t t0 = ts_now_ms();
    uint8_t ans[1024];
    int n = udp_ask(r.port, 0x6001, "FiRsT.mute.test", ans, sizeof ans);
    int64_t first = ts_now_ms() - t0;
    assert_a_answer(ans, n, 0x6001, "FiRsT.mute.test");
    ck_assert_msg(first < 1000, "first query answered after %lld ms (want < 1000)",
                  (long long)first);
    /* A burst right after: every one answered within the same bound. */
    int64_t worst = 0;
    for (unsigned i = 0; i < 10; i++) {
        char name[48];
        snprintf(name, sizeof name, "NeXt%u.mute.test", i);
        t0 = ts_now_ms();
        ask_ok(r.port, (uint16_t)(0x6010 + i), name);
        int64_t t = ts_now_ms() - t0;
        if (t > worst)
            worst = t;
    }
    ck_assert_msg(worst < 1000, "a later query answered after %lld ms", (long long)worst);
    ck_assert_uint_eq(ts_rig_ctr(&r, DOTPROXY_CTR_SERVFAIL), 0);
    /* The handshake that never completed counts against the upstream. */
    int64_t down = wait_health(&r, 0, 0, 6000);
    ck_assert_msg(down >= 0, "the mute upstream still shows healthy");
    dotproxy_upstream_stats st;
    ck_assert_int_eq(upstream_stats(&r, 0, &st), 0);
    ck_assert_uint_ge(st.consecutive_failures, 1);
    if (getenv("DP_TEST_LOG") != NULL)
        fprintf(stderr, "mute TLS: first answer %lld ms, worst of 10 more %lld ms\n",
                (long long)first, (long long)worst);
    ts_rig_down(&r);
    close(hold);
    ts_dotserver_stop(good);
}
END_TEST

/* A query waiting for the first upstream's handshake (which never ends)
 * whose race delay passed while the only other upstream was backing off
 * is raced when that one becomes usable again: it does not stay behind
 * the hanging handshake until its deadline. */
START_TEST(test_health_a_query_parked_for_want_of_another_upstream_is_raced_once_one_is_usable)
{
    int hold, refuse;
    uint16_t mute = ts_rig_mute_port(&hold);
    uint16_t later = ts_rig_refusing_port(&refuse);
    uint16_t ports[2] = {mute, later};
    dotproxy_config *cfg = ts_rig_config(ports, 2);
    ck_assert_int_eq(dotproxy_config_set_selection(cfg, DOTPROXY_SELECT_ORDERED), 0);
    /* Long deadlines: only a re-race answers within the bound below. */
    ck_assert_int_eq(dotproxy_config_set_timeout_ms(cfg, 40000), 0);
    ck_assert_int_eq(dotproxy_config_set_handshake_timeout_ms(cfg, 40000), 0);
    ts_rig r;
    ts_rig_up(&r, cfg);

    /* A first query hangs on the mute upstream, is raced to the second,
     * which refuses: it backs off, and its own probes keep failing. */
    int fd = ts_dns_udp_socket(r.port);
    ck_assert_int_ge(fd, 0);
    uint8_t q[512], ans[1024];
    size_t qlen = query(q, sizeof q, 0x6101, "ZeRo.park.test");
    ck_assert_int_eq(ts_dns_udp_send(fd, q, qlen), 0);
    dotproxy_upstream_stats st;
    int64_t end = ts_now_ms() + 20000;
    do {
        poll(NULL, 0, 5);
        ck_assert_int_eq(upstream_stats(&r, 1, &st), 0);
    } while (st.consecutive_failures < 5 && ts_now_ms() < end);
    ck_assert_uint_ge(st.consecutive_failures, 5); /* backing off ~4 s now */
    close(fd);

    /* The query that matters: to the mute upstream (the other is backing
     * off), raced after its delay with nowhere to go. */
    qlen = query(q, sizeof q, 0x6102, "PaRkEd.park.test");
    fd = ts_dns_udp_socket(r.port);
    ck_assert_int_ge(fd, 0);
    int64_t t0 = ts_now_ms();
    ck_assert_int_eq(ts_dns_udp_send(fd, q, qlen), 0);
    poll(NULL, 0, 500);
    /* The second upstream comes back; its backoff ends within ~4.4 s. */
    close(refuse);
    ts_dotserver *srv = ts_rig_server((ts_dotserver_opts){.port = later}, "server");
    int n = ts_dns_udp_recv(fd, ans, sizeof ans, 15000);
    int64_t took = ts_now_ms() - t0;
    ck_assert_msg(n > 0, "no answer after %lld ms", (long long)took);
    assert_a_answer(ans, n, 0x6102, "PaRkEd.park.test");
    ck_assert_msg(took < 10000, "answered after %lld ms", (long long)took);
    if (getenv("DP_TEST_LOG") != NULL)
        fprintf(stderr, "parked query answered after %lld ms\n", (long long)took);
    close(fd);
    ts_rig_down(&r);
    close(hold);
    ts_dotserver_stop(srv);
}
END_TEST

/* ---- an upstream that completes TLS, then fails every query --------------------- */

#define BROKEN_QUERIES 50

/* The broken upstream first, a healthy one second; 50 queries over about 3 s
 * with the given selection. Returns how many got their A record. */
static unsigned run_broken_first(ts_dotserver_opts broken_opts, int policy, const char *what)
{
    ts_dotserver *bad = ts_rig_server(broken_opts, "server");
    ts_dotserver *good = ts_rig_server((ts_dotserver_opts){0}, "server");
    uint16_t ports[2] = {ts_dotserver_port(bad), ts_dotserver_port(good)};
    dotproxy_config *cfg = ts_rig_config(ports, 2);
    ck_assert_int_eq(dotproxy_config_set_selection(cfg, policy), 0);
    ts_rig r;
    ts_rig_up(&r, cfg);
    unsigned ok = 0;
    for (unsigned i = 0; i < BROKEN_QUERIES; i++) {
        char name[64];
        snprintf(name, sizeof name, "q%u.%s.broken.test", i, what);
        uint8_t q[256], ans[1024];
        size_t qlen = query(q, sizeof q, (uint16_t)(0x5000 + i), name);
        int n = ts_dns_udp_exchange(r.port, q, qlen, ans, sizeof ans, WAIT_MS);
        uint8_t got[4], want[4];
        if (n > 0 && ts_dns_rcode(ans, (size_t)n) == TS_DNS_RCODE_NOERROR &&
            ts_dns_first_a(ans, (size_t)n, got) == 0 && ts_dns_expected_a(name, want) == 0 &&
            memcmp(got, want, 4) == 0)
            ok++;
        poll(NULL, 0, 60);
    }
    unsigned hs = ts_dotserver_handshakes(bad);
    if (getenv("DP_TEST_LOG") != NULL)
        fprintf(stderr, "%s, policy %d: %u of %d answered, %u handshakes with the broken one\n",
                what, policy, ok, BROKEN_QUERIES, hs);
    /* Avoided once it is known broken: a few handshakes, not one per query. */
    ck_assert_msg(hs <= 12, "%s: %u handshakes with the broken upstream for %d queries", what, hs,
                  BROKEN_QUERIES);
    ts_rig_down(&r);
    ts_dotserver_stop(bad);
    ts_dotserver_stop(good);
    return ok;
}

static void assert_nearly_all(unsigned ok, const char *what)
{
    ck_assert_msg(ok >= BROKEN_QUERIES - 2, "%s: %u of %d queries answered", what, ok,
                  BROKEN_QUERIES);
}

START_TEST(test_health_avoids_an_upstream_that_closes_after_every_query_latency)
{
    assert_nearly_all(
        run_broken_first((ts_dotserver_opts){.close_after = 1}, DOTPROXY_SELECT_LATENCY, "closing"),
        "closing, latency");
}
END_TEST

START_TEST(test_health_avoids_an_upstream_that_closes_after_every_query_ordered)
{
    assert_nearly_all(
        run_broken_first((ts_dotserver_opts){.close_after = 1}, DOTPROXY_SELECT_ORDERED, "closing"),
        "closing, ordered");
}
END_TEST

START_TEST(test_health_avoids_an_upstream_that_answers_garbage_latency)
{
    assert_nearly_all(
        run_broken_first((ts_dotserver_opts){.garbage = 1}, DOTPROXY_SELECT_LATENCY, "garbage"),
        "garbage, latency");
}
END_TEST

START_TEST(test_health_avoids_an_upstream_that_answers_garbage_ordered)
{
    assert_nearly_all(
        run_broken_first((ts_dotserver_opts){.garbage = 1}, DOTPROXY_SELECT_ORDERED, "garbage"),
        "garbage, ordered");
}
END_TEST

/* ---- dead wire slots --------------------------------------------------------------- */

#define DEAD_BURST 400

START_TEST(test_health_never_answered_queries_free_their_slots_for_other_clients)
{
    ts_dotserver_knobs hole = {.blackhole = 1};
    ts_dotserver *srv = ts_rig_server((ts_dotserver_opts){.knobs = hole}, "server");
    dotproxy_config *cfg = config_one(ts_dotserver_port(srv));
    ck_assert_int_eq(dotproxy_config_set_max_inflight(cfg, 64), 0);
    ck_assert_int_eq(dotproxy_config_set_timeout_ms(cfg, 1000), 0);
    ts_rig r;
    ts_rig_up(&r, cfg);

    /* One client's burst the upstream never answers: every slot of both
     * connections (2 x 64) is taken, then forgotten at the deadline. */
    int fd = ts_dns_udp_socket(r.port);
    ck_assert_int_ge(fd, 0);
    for (unsigned i = 0; i < DEAD_BURST; i++) {
        char name[48];
        uint8_t q[128];
        snprintf(name, sizeof name, "d%u.dead.test", i);
        size_t qlen = query(q, sizeof q, (uint16_t)i, name);
        ck_assert_int_eq(ts_dns_udp_send(fd, q, qlen), 0);
        if (i % 50 == 49)
            poll(NULL, 0, 5);
    }
    /* Every query the proxy received gets its SERVFAIL at the deadline. On a
     * loaded machine the kernel may drop some of the burst before the proxy
     * reads it (a full socket buffer, ~256 datagrams by default): count what
     * arrived, and require enough to have taken every slot of both
     * connections many times over. */
    poll(NULL, 0, 100);
    uint64_t got = ts_rig_ctr(&r, DOTPROXY_CTR_QUERIES_UDP);
    ck_assert_uint_ge(got, 2 * 64 + 64);
    ck_assert_uint_ge(wait_ctr(&r, DOTPROXY_CTR_SERVFAIL, got), got);
    close(fd);
    /* The upstream answers again; another client must be served within a
     * few seconds (the 1 s deadline, again and again). */
    ts_dotserver_set_knobs(srv, &(ts_dotserver_knobs){0});
    int64_t t0 = ts_now_ms(), first_ok = -1;
    unsigned fails = 0;
    for (unsigned i = 0; i < 12 && first_ok < 0; i++) {
        char name[48];
        uint8_t q[128], ans[1024];
        snprintf(name, sizeof name, "OtHeR%u.dead.test", i);
        size_t qlen = query(q, sizeof q, (uint16_t)(0x4000 + i), name);
        int n = ts_dns_udp_exchange(r.port, q, qlen, ans, sizeof ans, 2000);
        if (n > 0 && ts_dns_rcode(ans, (size_t)n) == TS_DNS_RCODE_NOERROR)
            first_ok = ts_now_ms() - t0;
        else
            fails++;
    }
    if (getenv("DP_TEST_LOG") != NULL)
        fprintf(stderr, "dead slots: other client served after %lld ms, %u failures first\n",
                (long long)first_ok, fails);
    ck_assert_msg(first_ok >= 0 && first_ok < 2500,
                  "another client first served after %lld ms (%u failures before)",
                  (long long)first_ok, fails);
    ts_rig_down(&r);
    ts_dotserver_stop(srv);
}
END_TEST

/* ---- learned idle limits (RFC 7828) ------------------------------------------------ */

static uint64_t wait_idle_limit(const ts_rig *r, int (*ok)(uint64_t), int ms)
{
    int64_t end = ts_now_ms() + ms;
    dotproxy_upstream_stats st;
    do {
        ck_assert_int_eq(upstream_stats(r, 0, &st), 0);
        if (ok(st.idle_limit_us))
            break;
        poll(NULL, 0, 20);
    } while (ts_now_ms() < end);
    return st.idle_limit_us;
}

static int is_learnt(uint64_t v)
{
    return v != 0;
}
static int is_large(uint64_t v)
{
    return v >= 20000000u;
}
static int is_small(uint64_t v)
{
    return v != 0 && v < 20000000u;
}
static int is_reset(uint64_t v)
{
    return v == 0;
}

START_TEST(test_health_learned_idle_limit_is_bounded_rises_again_and_resets_on_reload)
{
    ts_dotserver_knobs k = {.keepalive_100ms = 1}; /* TIMEOUT = 100 ms */
    ts_dotserver *srv = ts_rig_server((ts_dotserver_opts){.knobs = k}, "server");
    uint16_t port = ts_dotserver_port(srv);
    dotproxy_config *cfg = config_one(port);
    ck_assert_int_eq(dotproxy_config_set_idle_timeout_ms(cfg, 60000), 0);
    ts_rig r;
    ts_rig_up(&r, cfg);

    ask_ok(r.port, 0x3001, "OnE.idle.test");
    uint64_t low = wait_idle_limit(&r, is_learnt, 2000);
    ck_assert_msg(low >= 1000000u, "one TIMEOUT=1 answer set the idle limit to %llu us",
                  (unsigned long long)low);
    /* A later, larger TIMEOUT raises it again (300 = 30 s). */
    k.keepalive_100ms = 300;
    ts_dotserver_set_knobs(srv, &k);
    ask_ok(r.port, 0x3002, "TwO.idle.test");
    uint64_t high = wait_idle_limit(&r, is_large, 2000);
    ck_assert_msg(is_large(high), "a TIMEOUT of 30 s left the idle limit at %llu us",
                  (unsigned long long)high);
    /* Back to 100 ms, then a reload with the same upstream: forgotten. */
    k.keepalive_100ms = 1;
    ts_dotserver_set_knobs(srv, &k);
    ask_ok(r.port, 0x3003, "ThReE.idle.test");
    uint64_t again = wait_idle_limit(&r, is_small, 2000);
    ck_assert_msg(is_small(again), "TIMEOUT=1 after 30 s left the idle limit at %llu us",
                  (unsigned long long)again);
    ck_assert_uint_ge(again, 1000000u);
    cfg = config_one(port);
    ck_assert_int_eq(dotproxy_config_set_idle_timeout_ms(cfg, 60000), 0);
    ts_rig_reload(&r, cfg);
    uint64_t after = wait_idle_limit(&r, is_reset, 2000);
    ck_assert_msg(after == 0, "after a reload the idle limit is still %llu us",
                  (unsigned long long)after);
    ts_rig_down(&r);
    ts_dotserver_stop(srv);
}
END_TEST

/* ---- health while idle ------------------------------------------------------------- */

START_TEST(test_health_sees_an_idle_upstream_go_away_and_come_back_without_traffic)
{
    ts_dotserver *srv = ts_rig_server((ts_dotserver_opts){0}, "server");
    uint16_t port = ts_dotserver_port(srv);
    ts_rig r;
    ts_rig_up(&r, config_one(port));
    ask_ok(r.port, 0x2001, "WaRm.idle.test");
    ck_assert_int_eq(wait_health(&r, 0, 1, 1000), 0);

    /* It goes away while no client asks anything. */
    ts_dotserver_stop(srv);
    int64_t gone = wait_health(&r, 0, 0, 16000);
    ck_assert_msg(gone >= 0, "the stopped upstream still shows healthy after 16 s");
    ck_assert_msg(gone < 15000, "unhealthy seen only after %lld ms", (long long)gone);
    /* And comes back, still without traffic. */
    srv = ts_rig_server((ts_dotserver_opts){.port = port}, "server");
    int64_t back = wait_health(&r, 0, 1, 16000);
    ck_assert_msg(back >= 0 && back < 15000, "recovery seen after %lld ms", (long long)back);
    if (getenv("DP_TEST_LOG") != NULL)
        fprintf(stderr, "idle health: down seen after %lld ms, back after %lld ms\n",
                (long long)gone, (long long)back);
    ts_rig_down(&r);
    ts_dotserver_stop(srv);
}
END_TEST

/* The path to an idle upstream is black-holed while our TLS connection to
 * it stays open (no FIN, no RST: the server just stops reading and
 * answering). With a long idle timeout the connection would be trusted for
 * a minute; the upstream must show down within 15 s anyway, and back within
 * 15 s once the path heals, both without a single client query. While it
 * is healthy and idle, the check costs a query now and then on the open
 * connection (no new handshake), and nothing while clients ask. */
START_TEST(test_health_sees_a_black_holed_open_connection_without_traffic)
{
    ts_dotserver *srv = ts_rig_server((ts_dotserver_opts){0}, "server");
    dotproxy_config *cfg = config_one(ts_dotserver_port(srv));
    ck_assert_int_eq(dotproxy_config_set_idle_timeout_ms(cfg, 60000), 0);
    ts_rig r;
    ts_rig_up(&r, cfg);

    /* Clients asking: every query the upstream sees is a client's. */
    unsigned q0 = ts_dotserver_queries(srv);
    char name[64];
    for (int i = 0; i < 14; i++) {
        snprintf(name, sizeof name, "BuSy%d.idle.test", i);
        ask_ok(r.port, (uint16_t)(0x2100 + i), name);
        poll(NULL, 0, 500);
    }
    ck_assert_uint_eq(ts_dotserver_queries(srv) - q0, 14);
    ck_assert_uint_eq(ts_dotserver_handshakes(srv), 1);

    /* Idle and healthy: the connection stays, and is checked with a query
     * every few seconds, no more. */
    q0 = ts_dotserver_queries(srv);
    poll(NULL, 0, 12000);
    unsigned checks = ts_dotserver_queries(srv) - q0;
    unsigned handshakes = ts_dotserver_handshakes(srv);
    ck_assert_int_ge(wait_health(&r, 0, 1, 100), 0);

    /* Black-holed, the connection still open. */
    ts_dotserver_knobs k = {.frozen = 1};
    ts_dotserver_set_knobs(srv, &k);
    int64_t gone = wait_health(&r, 0, 0, 30000);
    ck_assert_msg(gone >= 0, "the black-holed upstream still shows healthy after 30 s");
    ck_assert_msg(gone < 15000, "unhealthy seen only after %lld ms", (long long)gone);
    /* (Checked here, so that the line above is what fails without checks.) */
    ck_assert_msg(checks >= 1 && checks <= 3, "%u liveness queries in 12 idle seconds", checks);
    ck_assert_uint_eq(handshakes, 1);
    /* While the path stays black-holed, the probes (new handshakes, which
     * hang) do not make it look healthy. */
    ck_assert_msg(wait_health(&r, 0, 1, 6000) < 0, "shows healthy while still black-holed");
    /* The path heals. */
    k.frozen = 0;
    ts_dotserver_set_knobs(srv, &k);
    int64_t back = wait_health(&r, 0, 1, 30000);
    ck_assert_msg(back >= 0 && back < 15000, "recovery seen after %lld ms", (long long)back);
    if (getenv("DP_TEST_LOG") != NULL)
        fprintf(stderr,
                "black-holed idle connection: down seen after %lld ms, back after %lld ms\n",
                (long long)gone, (long long)back);
    ask_ok(r.port, 0x2201, "AfTeR.idle.test");
    ts_rig_down(&r);
    ts_dotserver_stop(srv);
}
END_TEST

static TCase *tcase(const char *name, int timeout)
{
    TCase *tc = tcase_create(name);
    tcase_set_timeout(tc, timeout);
    return tc;
}

static Suite *health_suite(void)
{
    Suite *s = suite_create("upstream health");
    TCase *tc = tcase("handshake", 30);
    tcase_add_test(tc, test_health_races_the_next_upstream_when_the_first_never_completes_tls);
    suite_add_tcase(s, tc);

    tc = tcase("re-race", 90);
    tcase_add_test(
        tc, test_health_a_query_parked_for_want_of_another_upstream_is_raced_once_one_is_usable);
    suite_add_tcase(s, tc);

    tc = tcase("protocol failures", 60);
    tcase_add_test(tc, test_health_avoids_an_upstream_that_closes_after_every_query_latency);
    tcase_add_test(tc, test_health_avoids_an_upstream_that_closes_after_every_query_ordered);
    tcase_add_test(tc, test_health_avoids_an_upstream_that_answers_garbage_latency);
    tcase_add_test(tc, test_health_avoids_an_upstream_that_answers_garbage_ordered);
    suite_add_tcase(s, tc);

    tc = tcase("slots", 60);
    tcase_add_test(tc, test_health_never_answered_queries_free_their_slots_for_other_clients);
    suite_add_tcase(s, tc);

    tc = tcase("idle", 60);
    tcase_add_test(tc, test_health_learned_idle_limit_is_bounded_rises_again_and_resets_on_reload);
    tcase_add_test(tc, test_health_sees_an_idle_upstream_go_away_and_come_back_without_traffic);
    suite_add_tcase(s, tc);

    tc = tcase("idle black hole", 120);
    tcase_add_test(tc, test_health_sees_a_black_holed_open_connection_without_traffic);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    if (ts_rig_pki_init("dotproxy-test-health") != 0)
        return EXIT_FAILURE;
    SRunner *sr = srunner_create(health_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    ts_rig_pki_fini();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
