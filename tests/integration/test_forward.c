/* SPDX-License-Identifier: MIT */
/* Forward zones end to end: a real dotproxy_ctx on loopback in front of
 * in-tree upstreams (DoT: tests/support/dotserver.h; plain DNS:
 * tests/support/plainserver.h), each counting the queries it saw, so every
 * test checks which upstream a name went to.
 *
 * Covered: names at or under a zone go to its upstreams and the others to
 * the default ones; the longest zone wins; a plain upstream (pipelined over
 * TCP) answers, and its being plain is logged; failover within a zone's
 * upstreams, and no leak to the default ones when a zone has none left;
 * reloads that add, change and remove zones, also under load with queries
 * in flight. Every context runs on its own thread (the shared rig, rig.h)
 * and every wait is a poll with a deadline. */
#include <check.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dotproxy/config.h"
#include "dotproxy/dns.h"
#include "dotproxy/error.h"
#include "dotproxy/forward.h"
#include "dotproxy/loop.h"
#include "dotproxy/proxy.h"

#include "dnsclient.h"
#include "dotserver.h"
#include "pki.h"
#include "plainserver.h"
#include "rig.h"

#define WAIT_MS 5000

/* ---- upstreams --------------------------------------------------------------- */

static ts_plainserver *plain_start(void)
{
    ts_plainserver *s = NULL;
    ck_assert_int_eq(ts_plainserver_start(&s, 0), 0);
    return s;
}

/* "127.0.0.1@PORT#<test server name>": a DoT upstream spec. */
static const char *dot_spec(const ts_dotserver *s)
{
    static char spec[4][128];
    static int next;
    char *out = spec[next++ % 4];
    snprintf(out, 128, "127.0.0.1@%u#%s", (unsigned)ts_dotserver_port(s), TS_PKI_SERVER_NAME);
    return out;
}

static const char *plain_spec_port(uint16_t port)
{
    static char spec[4][64];
    static int next;
    char *out = spec[next++ % 4];
    snprintf(out, 64, "plain:127.0.0.1@%u", (unsigned)port);
    return out;
}

/* ---- the proxy --------------------------------------------------------------- */

/* Listening on 127.0.0.1 port 0, trusting the test CA, no cache (so that
 * every query reaches an upstream and is counted there), the default
 * upstream given. */
static dotproxy_config *config_with(const ts_dotserver *def)
{
    uint16_t port = ts_dotserver_port(def);
    dotproxy_config *cfg = ts_rig_config(&port, 1);
    ck_assert_int_eq(dotproxy_config_set_cache_size(cfg, 0), 0);
    return cfg;
}

static void add_zone(dotproxy_config *cfg, const char *zone, const char *spec)
{
    int rc = dotproxy_config_add_forward(cfg, zone, spec);
    ck_assert_msg(rc == 0, "add_forward %s=%s: %s", zone, spec, dotproxy_strerror(rc));
}

/* ---- queries ---------------------------------------------------------------- */

/* Ask name (type A) over UDP; the rcode, after checking the answer is to
 * this question and, for NOERROR, carries the A record the test servers
 * make for it. */
static int ask(uint16_t port, const char *name)
{
    static uint16_t id = 100;
    uint8_t q[512], ans[2048];
    int qlen = ts_dns_build_query(q, sizeof q, ++id, name, TS_DNS_TYPE_A, 0);
    ck_assert_int_gt(qlen, 0);
    int n = ts_dns_udp_exchange(port, q, (size_t)qlen, ans, sizeof ans, WAIT_MS);
    ck_assert_msg(n > 0, "no answer for %s", name);
    ck_assert_int_eq(ts_dns_id(ans, (size_t)n), id);
    char got[300];
    ck_assert_int_gt(ts_dns_qname(ans, (size_t)n, got, sizeof got), 0);
    ck_assert_str_eq(got, name);
    int rcode = ts_dns_rcode(ans, (size_t)n);
    if (rcode == TS_DNS_RCODE_NOERROR) {
        uint8_t a[4], want[4];
        ck_assert_msg(ts_dns_first_a(ans, (size_t)n, a) == 0, "no A record for %s", name);
        ck_assert_int_eq(ts_dns_expected_a(name, want), 0);
        ck_assert_mem_eq(a, want, 4);
    }
    return rcode;
}

static void ask_ok(uint16_t port, const char *name)
{
    int rc = ask(port, name);
    ck_assert_msg(rc == TS_DNS_RCODE_NOERROR, "%s: rcode %d", name, rc);
}

/* Many queries at once over one TCP connection (pipelined); the number of
 * NOERROR answers with the right A record. */
static unsigned ask_many_tcp(uint16_t port, const char *zone, unsigned n, unsigned tag)
{
    int fd = ts_dns_tcp_connect(port);
    ck_assert_int_ge(fd, 0);
    char names[256][64];
    ck_assert_uint_le(n, 256);
    for (unsigned i = 0; i < n; i++) {
        uint8_t q[512];
        snprintf(names[i], sizeof names[i], "n%u.t%u.%s", i, tag, zone);
        int len = ts_dns_build_query(q, sizeof q, (uint16_t)i, names[i], TS_DNS_TYPE_A, 0);
        ck_assert_int_gt(len, 0);
        ck_assert_int_eq(ts_dns_tcp_send(fd, q, (size_t)len), 0);
    }
    unsigned ok = 0;
    for (unsigned i = 0; i < n; i++) {
        uint8_t ans[2048];
        int len = ts_dns_tcp_recv(fd, ans, sizeof ans, WAIT_MS);
        if (len <= 0)
            break;
        int id = ts_dns_id(ans, (size_t)len);
        uint8_t a[4], want[4];
        if (id >= 0 && (unsigned)id < n && ts_dns_rcode(ans, (size_t)len) == 0 &&
            ts_dns_first_a(ans, (size_t)len, a) == 0 && ts_dns_expected_a(names[id], want) == 0 &&
            memcmp(a, want, 4) == 0)
            ok++;
    }
    close(fd);
    return ok;
}

/* ---- routing ------------------------------------------------------------------- */

START_TEST(test_forward_sends_names_at_or_under_a_zone_to_its_upstream_and_others_to_the_default)
{
    ts_dotserver *def = ts_rig_server((ts_dotserver_opts){0}, "server");
    ts_dotserver *zone = ts_rig_server((ts_dotserver_opts){0}, "server");
    dotproxy_config *cfg = config_with(def);
    add_zone(cfg, "corp.test", dot_spec(zone));
    ts_rig r;
    ts_rig_up(&r, cfg);
    ask_ok(r.port, "corp.test");
    ask_ok(r.port, "www.corp.test");
    ask_ok(r.port, "Deep.Name.CORP.Test");
    ask_ok(r.port, "example.org");
    ask_ok(r.port, "notcorp.test"); /* a suffix, but not on a label boundary */
    ask_ok(r.port, "test");
    ck_assert_uint_eq(ts_dotserver_queries(zone), 3);
    ck_assert_uint_eq(ts_dotserver_queries(def), 3);
    /* No plain upstream: nothing said about privacy. */
    ck_assert_uint_eq(ts_rig_log_count(DOTPROXY_LOG_WARN, "NOT private", NULL), 0);
    ts_rig_down(&r);
    ts_dotserver_stop(zone);
    ts_dotserver_stop(def);
}
END_TEST

START_TEST(test_forward_longest_zone_wins)
{
    ts_dotserver *def = ts_rig_server((ts_dotserver_opts){0}, "server");
    ts_dotserver *outer = ts_rig_server((ts_dotserver_opts){0}, "server");
    ts_dotserver *inner = ts_rig_server((ts_dotserver_opts){0}, "server");
    dotproxy_config *cfg = config_with(def);
    add_zone(cfg, "b.a.test", dot_spec(inner)); /* the longer one first ... */
    add_zone(cfg, "a.test", dot_spec(outer));   /* ... and the other way below */
    ts_rig r;
    ts_rig_up(&r, cfg);
    ask_ok(r.port, "x.b.a.test");
    ask_ok(r.port, "b.a.test");
    ask_ok(r.port, "y.a.test");
    ask_ok(r.port, "x.ab.a.test");
    ask_ok(r.port, "a.test");
    ask_ok(r.port, "z.test");
    ck_assert_uint_eq(ts_dotserver_queries(inner), 2);
    ck_assert_uint_eq(ts_dotserver_queries(outer), 3);
    ck_assert_uint_eq(ts_dotserver_queries(def), 1);
    ts_rig_down(&r);

    cfg = config_with(def);
    add_zone(cfg, "a.test", dot_spec(outer));
    add_zone(cfg, "b.a.test", dot_spec(inner));
    ts_rig_up(&r, cfg);
    ask_ok(r.port, "q.b.a.test");
    ask_ok(r.port, "q.a.test");
    ck_assert_uint_eq(ts_dotserver_queries(inner), 3);
    ck_assert_uint_eq(ts_dotserver_queries(outer), 4);
    ck_assert_uint_eq(ts_dotserver_queries(def), 1);
    ts_rig_down(&r);
    ts_dotserver_stop(inner);
    ts_dotserver_stop(outer);
    ts_dotserver_stop(def);
}
END_TEST

/* ---- plain upstreams ---------------------------------------------------------- */

START_TEST(test_forward_plain_upstream_answers_pipelined_over_tcp_and_is_logged_as_not_private)
{
    ts_dotserver *def = ts_rig_server((ts_dotserver_opts){0}, "server");
    ts_plainserver *cluster = plain_start();
    dotproxy_config *cfg = config_with(def);
    add_zone(cfg, "cluster.local", plain_spec_port(ts_plainserver_port(cluster)));
    ts_rig r;
    ts_rig_up(&r, cfg);
    ck_assert_uint_ge(ts_rig_log_count(DOTPROXY_LOG_WARN, "NOT private", NULL), 1);
    ask_ok(r.port, "web.default.svc.cluster.local");
    ask_ok(r.port, "example.org");
    ck_assert_uint_eq(ts_plainserver_tcp_queries(cluster), 1);
    ck_assert_uint_eq(ts_plainserver_udp_queries(cluster), 0);
    ck_assert_uint_eq(ts_dotserver_queries(def), 1);
    /* 200 at once: all answered over the pool's few connections. */
    unsigned ok = ask_many_tcp(r.port, "svc.cluster.local", 200, 1);
    ck_assert_uint_eq(ok, 200);
    ck_assert_uint_eq(ts_plainserver_tcp_queries(cluster), 201);
    ck_assert_uint_le(ts_plainserver_connections(cluster), 2);
    ck_assert_uint_eq(ts_dotserver_queries(def), 1);
    /* The upstream's stats name it as plain. */
    int found = 0;
    for (size_t i = 0; i < dotproxy_ctx_upstream_count(r.ctx); i++) {
        dotproxy_upstream_stats st;
        int64_t end = ts_now_ms() + WAIT_MS;
        while (dotproxy_ctx_upstream_stats(r.ctx, i, &st) == 0 && st.answers < 201 &&
               strncmp(st.label, "plain:", 6) == 0 && ts_now_ms() < end)
            poll(NULL, 0, 20);
        if (strncmp(st.label, "plain:127.0.0.1@", 16) == 0) {
            found = 1;
            ck_assert_uint_eq(st.answers, 201);
        }
    }
    ck_assert_msg(found, "no plain upstream in the stats");
    ts_rig_down(&r);
    ts_plainserver_stop(cluster);
    ts_dotserver_stop(def);
}
END_TEST

/* Does msg carry an OPT with a padding option (RFC 7830, code 12)? */
static int has_padding(const uint8_t *msg, size_t len)
{
    uint16_t rdlen = 0;
    int rd = ts_dns_find_rr(msg, len, 3, 41, &rdlen, NULL);
    if (rd < 0)
        return 0;
    for (size_t o = (size_t)rd; o + 4 <= (size_t)rd + rdlen;) {
        unsigned code = (unsigned)msg[o] << 8 | msg[o + 1];
        unsigned olen = (unsigned)msg[o + 2] << 8 | msg[o + 3];
        if (code == 12)
            return 1;
        o += 4u + olen;
    }
    return 0;
}

START_TEST(test_forward_pads_queries_to_tls_upstreams_only)
{
    ts_dotserver *def = ts_rig_server((ts_dotserver_opts){0}, "server");
    ts_plainserver *cluster = plain_start();
    dotproxy_config *cfg = config_with(def);
    add_zone(cfg, "cluster.local", plain_spec_port(ts_plainserver_port(cluster)));
    ts_rig r;
    ts_rig_up(&r, cfg);
    ask_ok(r.port, "web.default.svc.cluster.local");
    ask_ok(r.port, "example.org");
    uint8_t q[4096];
    int n = ts_plainserver_last_query(cluster, q, sizeof q);
    ck_assert_int_gt(n, DOTPROXY_DNS_HEADER_SIZE);
    ck_assert_msg(ts_dns_opt_size(q, (size_t)n) > 0, "no OPT towards the plain upstream");
    ck_assert_msg(!has_padding(q, (size_t)n), "a query to a plain upstream was padded");
    n = ts_dotserver_recent_query(def, 0, q, sizeof q);
    ck_assert_int_gt(n, DOTPROXY_DNS_HEADER_SIZE);
    ck_assert_msg(has_padding(q, (size_t)n), "a query to a TLS upstream was not padded");
    ts_rig_down(&r);
    ts_plainserver_stop(cluster);
    ts_dotserver_stop(def);
}
END_TEST

/* ---- failover ------------------------------------------------------------------- */

START_TEST(test_forward_fails_over_within_the_zones_upstreams)
{
    ts_dotserver *def = ts_rig_server((ts_dotserver_opts){0}, "server");
    ts_dotserver *alive = ts_rig_server((ts_dotserver_opts){0}, "server");
    ts_plainserver *plain = plain_start();
    int dead_fd, dead2_fd;
    uint16_t dead = ts_rig_refusing_port(&dead_fd), dead2 = ts_rig_refusing_port(&dead2_fd);
    char dead_dot[128];
    snprintf(dead_dot, sizeof dead_dot, "127.0.0.1@%u#%s", (unsigned)dead, TS_PKI_SERVER_NAME);
    dotproxy_config *cfg = config_with(def);
    /* Ordered: the dead one is first in each zone. */
    ck_assert_int_eq(dotproxy_config_set_selection(cfg, DOTPROXY_SELECT_ORDERED), 0);
    add_zone(cfg, "dot.test", dead_dot);
    add_zone(cfg, "dot.test", dot_spec(alive));
    add_zone(cfg, "plain.test", plain_spec_port(dead2));
    add_zone(cfg, "plain.test", plain_spec_port(ts_plainserver_port(plain)));
    ts_rig r;
    ts_rig_up(&r, cfg);
    for (unsigned i = 0; i < 10; i++) {
        char name[64];
        snprintf(name, sizeof name, "n%u.dot.test", i);
        ask_ok(r.port, name);
        snprintf(name, sizeof name, "n%u.plain.test", i);
        ask_ok(r.port, name);
    }
    ck_assert_uint_eq(ts_dotserver_queries(alive), 10);
    ck_assert_uint_eq(ts_plainserver_tcp_queries(plain), 10);
    ck_assert_uint_eq(ts_dotserver_queries(def), 0);
    ts_rig_down(&r);
    close(dead_fd);
    close(dead2_fd);
    ts_plainserver_stop(plain);
    ts_dotserver_stop(alive);
    ts_dotserver_stop(def);
}
END_TEST

START_TEST(test_forward_zone_without_a_working_upstream_fails_and_never_uses_the_default)
{
    ts_dotserver *def = ts_rig_server((ts_dotserver_opts){0}, "server");
    int dead_fd;
    uint16_t dead = ts_rig_refusing_port(&dead_fd);
    dotproxy_config *cfg = config_with(def);
    add_zone(cfg, "down.test", plain_spec_port(dead));
    ts_rig r;
    ts_rig_up(&r, cfg);
    int64_t t0 = ts_now_ms();
    ck_assert_int_eq(ask(r.port, "x.down.test"), TS_DNS_RCODE_SERVFAIL);
    ck_assert_int_eq(ask(r.port, "y.down.test"), TS_DNS_RCODE_SERVFAIL);
    /* Refused connects fail fast, long before the 4 s query timeout. */
    ck_assert_int_lt(ts_now_ms() - t0, 3000);
    ck_assert_uint_eq(ts_dotserver_queries(def), 0);
    ask_ok(r.port, "up.test");
    ck_assert_uint_eq(ts_dotserver_queries(def), 1);
    ts_rig_down(&r);
    close(dead_fd);
    ts_dotserver_stop(def);
}
END_TEST

/* ---- reload --------------------------------------------------------------------- */

START_TEST(test_forward_reload_adds_changes_and_removes_zones)
{
    ts_dotserver *def = ts_rig_server((ts_dotserver_opts){0}, "server");
    ts_dotserver *zone = ts_rig_server((ts_dotserver_opts){0}, "server");
    ts_plainserver *plain = plain_start();
    ts_rig r;
    ts_rig_up(&r, config_with(def));
    ask_ok(r.port, "a.corp.test");
    ck_assert_uint_eq(ts_dotserver_queries(def), 1);

    dotproxy_config *cfg = config_with(def);
    add_zone(cfg, "corp.test", dot_spec(zone));
    ts_rig_reload(&r, cfg);
    ask_ok(r.port, "b.corp.test");
    ask_ok(r.port, "b.example.org");
    ck_assert_uint_eq(ts_dotserver_queries(zone), 1);
    ck_assert_uint_eq(ts_dotserver_queries(def), 2);

    cfg = config_with(def);
    add_zone(cfg, "corp.test", plain_spec_port(ts_plainserver_port(plain)));
    ts_rig_reload(&r, cfg);
    ask_ok(r.port, "c.corp.test");
    ck_assert_uint_eq(ts_plainserver_tcp_queries(plain), 1);
    ck_assert_uint_eq(ts_dotserver_queries(zone), 1);

    ts_rig_reload(&r, config_with(def));
    ask_ok(r.port, "d.corp.test");
    ck_assert_uint_eq(ts_dotserver_queries(def), 3);
    ck_assert_uint_eq(ts_plainserver_tcp_queries(plain), 1);
    ck_assert_uint_eq(dotproxy_ctx_upstream_count(r.ctx) >= 1, 1);
    ts_rig_down(&r);
    ts_plainserver_stop(plain);
    ts_dotserver_stop(zone);
    ts_dotserver_stop(def);
}
END_TEST

/* 200 UDP queries in flight (the upstreams hold each answer 150 ms), half
 * of them under the zone; meanwhile a reload adds, changes or removes the
 * zone. Every query is answered, wherever the new zones send it. */
#define BURST 200

static void burst(uint16_t port, unsigned tag, int *fds, unsigned *nfd)
{
    *nfd = 0;
    for (unsigned i = 0; i < BURST; i++) {
        if (i % 50 == 0) {
            fds[*nfd] = ts_dns_udp_socket(port);
            ck_assert_int_ge(fds[*nfd], 0);
            (*nfd)++;
        }
        char name[64];
        uint8_t q[512];
        snprintf(name, sizeof name, i % 2 ? "q%u.t%u.zone.test" : "q%u.t%u.other.test", i, tag);
        int len = ts_dns_build_query(q, sizeof q, (uint16_t)i, name, TS_DNS_TYPE_A, 0);
        ck_assert_int_eq(ts_dns_udp_send(fds[*nfd - 1], q, (size_t)len), 0);
    }
}

static unsigned collect(int *fds, unsigned nfd)
{
    unsigned char got[BURST] = {0};
    unsigned noerror = 0, answered = 0;
    int64_t end = ts_now_ms() + 3 * WAIT_MS;
    while (answered < BURST && ts_now_ms() < end) {
        struct pollfd p[BURST / 50];
        for (unsigned k = 0; k < nfd; k++)
            p[k] = (struct pollfd){.fd = fds[k], .events = POLLIN};
        if (poll(p, nfd, 200) <= 0)
            continue;
        for (unsigned k = 0; k < nfd; k++) {
            uint8_t ans[1024];
            int len;
            if (!(p[k].revents & POLLIN) ||
                (len = ts_dns_udp_recv(fds[k], ans, sizeof ans, 0)) <= 0)
                continue;
            int id = ts_dns_id(ans, (size_t)len);
            if (id < 0 || id >= BURST || got[id])
                continue;
            got[id] = 1;
            answered++;
            if (ts_dns_rcode(ans, (size_t)len) == 0 && ts_dns_ancount(ans, (size_t)len) == 1)
                noerror++;
        }
    }
    for (unsigned k = 0; k < nfd; k++)
        close(fds[k]);
    return noerror;
}

START_TEST(test_forward_reload_raising_and_lowering_zones_under_load_answers_every_query)
{
    ts_dotserver *def = ts_rig_server((ts_dotserver_opts){.delay_ms = 150}, "server");
    ts_dotserver *zone = ts_rig_server((ts_dotserver_opts){.delay_ms = 150}, "server");
    ts_plainserver *plain = plain_start();
    ts_rig r;
    ts_rig_up(&r, config_with(def));
    /* none -> DoT zone -> DoT + plain -> plain only, two zones -> none */
    for (unsigned step = 0; step < 5; step++) {
        int fds[BURST / 50];
        unsigned nfd;
        burst(r.port, step, fds, &nfd);
        dotproxy_config *cfg = config_with(def);
        if (step == 0 || step == 1)
            add_zone(cfg, "zone.test", dot_spec(zone));
        if (step == 1 || step == 2)
            add_zone(cfg, "zone.test", plain_spec_port(ts_plainserver_port(plain)));
        if (step == 2)
            add_zone(cfg, "other.test", plain_spec_port(ts_plainserver_port(plain)));
        ts_rig_reload(&r, cfg);
        unsigned ok = collect(fds, nfd);
        ck_assert_msg(ok == BURST, "reload step %u under load: %u of %d answered", step, ok, BURST);
    }
    /* And the last configuration (no zones) is the one in force. */
    unsigned zq = ts_dotserver_queries(zone), pq = ts_plainserver_tcp_queries(plain);
    ask_ok(r.port, "last.zone.test");
    ask_ok(r.port, "last.other.test");
    ck_assert_uint_eq(ts_dotserver_queries(zone), zq);
    ck_assert_uint_eq(ts_plainserver_tcp_queries(plain), pq);
    ck_assert_uint_gt(zq, 0);
    ck_assert_uint_gt(pq, 0);
    ts_rig_down(&r);
    ts_plainserver_stop(plain);
    ts_dotserver_stop(zone);
    ts_dotserver_stop(def);
}
END_TEST

static Suite *forward_suite(void)
{
    Suite *s = suite_create("forward");
    TCase *tc = tcase_create("routing");
    tcase_set_timeout(tc, 60);
    tcase_add_test(
        tc, test_forward_sends_names_at_or_under_a_zone_to_its_upstream_and_others_to_the_default);
    tcase_add_test(tc, test_forward_longest_zone_wins);
    tcase_add_test(
        tc, test_forward_plain_upstream_answers_pipelined_over_tcp_and_is_logged_as_not_private);
    tcase_add_test(tc, test_forward_pads_queries_to_tls_upstreams_only);
    suite_add_tcase(s, tc);
    tc = tcase_create("failover");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_forward_fails_over_within_the_zones_upstreams);
    tcase_add_test(tc,
                   test_forward_zone_without_a_working_upstream_fails_and_never_uses_the_default);
    suite_add_tcase(s, tc);
    tc = tcase_create("reload");
    tcase_set_timeout(tc, 90);
    tcase_add_test(tc, test_forward_reload_adds_changes_and_removes_zones);
    tcase_add_test(tc,
                   test_forward_reload_raising_and_lowering_zones_under_load_answers_every_query);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    if (ts_rig_pki_init("dotproxy-test-forward") != 0)
        return EXIT_FAILURE;
    SRunner *sr = srunner_create(forward_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    ts_rig_pki_fini();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
