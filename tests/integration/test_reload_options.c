/* SPDX-License-Identifier: MIT */
/* Every reloadable option raised and lowered while clients ask (issue 11:
 * "every reloadable option gets a test under ASan that raises and lowers it
 * under load"). Capacity limits, cache-size and udp-size have theirs in
 * test_limits.c and test_cache_edns.c; the upstream list, pins and the CA
 * file in test_reliability.c and test_trust.c. Here: timeout, rate limits
 * (qps, burst, action, loopback), padding, keep-ecs, selection, the
 * upstream and TCP idle timeouts, handshake-timeout, stale-max,
 * max-client-queries, cache TTL bounds and the allow list.
 *
 * Each test runs a context on its own thread (rig.h) in front of the
 * in-tree DoT server, with a client thread asking without pause (one UDP
 * query at a time, a new name each time) for the whole test, and reloads
 * through dotproxy_ctx_reload, the call dotproxyd's SIGHUP and API make.
 * After each reload a probe shows the new value in effect; at the end the
 * loader must have had an answer (of any rcode) to every query: a reload
 * loses nothing. Run under ASan too (build-asan). */
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "dotproxy/config.h"
#include "dotproxy/dns.h"
#include "dotproxy/proxy.h"

#include "dnsclient.h"
#include "dotserver.h"
#include "rig.h"

#define ANSWER_MS 6000

/* ---- the loader: one client asking all the time ------------------------------- */

typedef struct loader {
    uint16_t port;
    pthread_t thread;
    atomic_int stop, pause;
    atomic_uint sent, noerror, refused, servfail, other, lost;
} loader;

static void *loader_main(void *arg)
{
    loader *l = arg;
    /* From 127.0.0.2: a client of its own for the per-address limits, so
     * that the probes (from 127.0.0.1) measure theirs alone. */
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in src = {.sin_family = AF_INET}, dst = {.sin_family = AF_INET};
    src.sin_addr.s_addr = htonl(INADDR_LOOPBACK + 1);
    dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    dst.sin_port = htons(l->port);
    if (fd < 0 || bind(fd, (struct sockaddr *)&src, sizeof src) != 0 ||
        connect(fd, (struct sockaddr *)&dst, sizeof dst) != 0) {
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    for (unsigned i = 0; !atomic_load(&l->stop); i++) {
        if (atomic_load(&l->pause)) {
            poll(NULL, 0, 10);
            continue;
        }
        poll(NULL, 0, 2); /* a steady client, not a flood: two cores are shared */
        char name[64];
        uint8_t q[512], a[2048];
        snprintf(name, sizeof name, "l%u.load.test", i);
        uint16_t id = (uint16_t)(i * 7919u);
        int qlen = ts_dns_build_query(q, sizeof q, id, name, TS_DNS_TYPE_A, 1232);
        if (qlen <= 0 || ts_dns_udp_send(fd, q, (size_t)qlen) != 0)
            break;
        atomic_fetch_add(&l->sent, 1);
        int64_t end = ts_now_ms() + ANSWER_MS;
        int rc = -1;
        while (ts_now_ms() < end) {
            int n = ts_dns_udp_recv(fd, a, sizeof a, (int)(end - ts_now_ms()));
            if (n <= 0)
                break;
            if (ts_dns_id(a, (size_t)n) == id) {
                rc = ts_dns_rcode(a, (size_t)n);
                break;
            }
        }
        if (rc == TS_DNS_RCODE_NOERROR)
            atomic_fetch_add(&l->noerror, 1);
        else if (rc == 5)
            atomic_fetch_add(&l->refused, 1);
        else if (rc == TS_DNS_RCODE_SERVFAIL)
            atomic_fetch_add(&l->servfail, 1);
        else if (rc >= 0)
            atomic_fetch_add(&l->other, 1);
        else
            atomic_fetch_add(&l->lost, 1);
    }
    close(fd);
    return NULL;
}

static void loader_start(loader *l, uint16_t port)
{
    memset(l, 0, sizeof *l);
    l->port = port;
    ck_assert_int_eq(pthread_create(&l->thread, NULL, loader_main, l), 0);
    /* Under way before the first reload. */
    int64_t end = ts_now_ms() + ANSWER_MS;
    while (atomic_load(&l->noerror) < 3 && ts_now_ms() < end)
        poll(NULL, 0, 5);
}

/* Stop it and check that every query it sent got an answer. */
static void loader_finish(loader *l)
{
    atomic_store(&l->stop, 1);
    ck_assert_int_eq(pthread_join(l->thread, NULL), 0);
    unsigned sent = atomic_load(&l->sent), lost = atomic_load(&l->lost);
    if (getenv("DP_TEST_LOG") != NULL)
        fprintf(stderr, "loader: %u sent, %u NOERROR, %u REFUSED, %u SERVFAIL, %u other, %u lost\n",
                sent, atomic_load(&l->noerror), atomic_load(&l->refused), atomic_load(&l->servfail),
                atomic_load(&l->other), lost);
    ck_assert_uint_ge(sent, 3);
    ck_assert_msg(lost == 0, "%u of %u queries asked across the reloads got no answer", lost, sent);
}

/* ---- probes -------------------------------------------------------------------- */

/* Ask name over UDP on a fresh socket: the rcode, or -1 without an answer
 * within ANSWER_MS. The answer is copied to ans (may be NULL). */
static int probe_ans(uint16_t port, const char *name, uint16_t qtype, uint8_t *ans, size_t cap)
{
    static unsigned id;
    uint8_t q[512], a[4096];
    int qlen = ts_dns_build_query(q, sizeof q, (uint16_t)++id, name, qtype, 1232);
    ck_assert_int_gt(qlen, 0);
    int n = ts_dns_udp_exchange(port, q, (size_t)qlen, a, sizeof a, ANSWER_MS);
    if (n <= 0)
        return -1;
    if (ans != NULL)
        memcpy(ans, a, (size_t)n < cap ? (size_t)n : cap);
    return ts_dns_rcode(a, (size_t)n);
}

static int probe(uint16_t port, const char *name)
{
    return probe_ans(port, name, TS_DNS_TYPE_A, NULL, 0);
}

/* One upstream, with a cache (the library's default is none; dotproxyd's
 * is 10000 entries). */
static dotproxy_config *cfg1(uint16_t port)
{
    dotproxy_config *cfg = ts_rig_config(&port, 1);
    ck_assert_int_eq(dotproxy_config_set_cache_size(cfg, 10000), 0);
    return cfg;
}

/* ---- timeout ------------------------------------------------------------------- */

static dotproxy_config *cfg_timeout(uint16_t port, unsigned ms)
{
    dotproxy_config *cfg = cfg1(port);
    ck_assert_int_eq(dotproxy_config_set_timeout_ms(cfg, ms), 0);
    ck_assert_int_eq(dotproxy_config_set_stale_max_s(cfg, 0), 0);
    return cfg;
}

START_TEST(test_reload_timeout_lowered_and_raised_under_load)
{
    /* Answers take 1.5 s: far from either timeout, even on a loaded host. */
    ts_dotserver *srv = ts_rig_server((ts_dotserver_opts){.delay_ms = 1500}, "server");
    uint16_t up = ts_dotserver_port(srv);
    ts_rig r;
    ts_rig_up(&r, cfg_timeout(up, 4000));
    loader l;
    loader_start(&l, r.port);
    /* 100 ms: the upstream is too slow now. */
    ts_rig_reload(&r, cfg_timeout(up, 100));
    int64_t t0 = ts_now_ms();
    ck_assert_int_eq(probe(r.port, "lOw.timeout.test"), TS_DNS_RCODE_SERVFAIL);
    ck_assert_int_lt(ts_now_ms() - t0, 1400);
    /* 4000 ms: answered again. */
    ts_rig_reload(&r, cfg_timeout(up, 4000));
    ck_assert_int_eq(probe(r.port, "HiGh.timeout.test"), TS_DNS_RCODE_NOERROR);
    loader_finish(&l);
    ts_rig_down(&r);
    ts_dotserver_stop(srv);
}
END_TEST

/* ---- rate limits --------------------------------------------------------------- */

static dotproxy_config *cfg_rate(uint16_t port, unsigned qps, unsigned burst, int loopback)
{
    dotproxy_config *cfg = cfg1(port);
    ck_assert_int_eq(
        dotproxy_config_set_rate_limit(cfg, qps, burst, 32, 128, DOTPROXY_LIMIT_REFUSE, loopback),
        0);
    return cfg;
}

/* n queries as fast as they are answered: how many were REFUSED. */
static unsigned refused_of(uint16_t port, unsigned n, const char *tag)
{
    unsigned refused = 0;
    for (unsigned i = 0; i < n; i++) {
        char name[64];
        snprintf(name, sizeof name, "q%u.%s.rate.test", i, tag);
        int rc = probe(port, name);
        ck_assert_int_ge(rc, 0);
        refused += rc == 5;
    }
    return refused;
}

START_TEST(test_reload_rate_limit_raised_and_lowered_under_load)
{
    ts_dotserver *srv = ts_rig_server((ts_dotserver_opts){0}, "server");
    uint16_t up = ts_dotserver_port(srv);
    ts_rig r;
    ts_rig_up(&r, cfg1(up));
    loader l;
    loader_start(&l, r.port);
    /* Limited, loopback included: 2 per second, burst 2 (the loader shares
     * the bucket: it is the same address). */
    ts_rig_reload(&r, cfg_rate(up, 2, 2, 1));
    unsigned low = refused_of(r.port, 20, "low");
    ck_assert_msg(low >= 10, "rate 2/s: only %u of 20 refused", low);
    /* Loopback exempt again, with the same rate. */
    ts_rig_reload(&r, cfg_rate(up, 2, 2, 0));
    ck_assert_uint_eq(refused_of(r.port, 20, "exempt"), 0);
    /* Limited to a rate far above what one client asks: nothing refused. */
    ts_rig_reload(&r, cfg_rate(up, 100000, 100000, 1));
    ck_assert_uint_eq(refused_of(r.port, 20, "high"), 0);
    loader_finish(&l);
    ts_rig_down(&r);
    ts_dotserver_stop(srv);
}
END_TEST

/* ---- padding ------------------------------------------------------------------- */

static dotproxy_config *cfg_padding(uint16_t port, unsigned block)
{
    dotproxy_config *cfg = cfg1(port);
    ck_assert_int_eq(dotproxy_config_set_padding(cfg, block), 0);
    return cfg;
}

/* The length of the query the upstream read for `name` (searched among
 * the latest ones), or -1. */
static int upstream_saw(ts_dotserver *srv, const char *name)
{
    uint8_t wire[300];
    int wl = ts_dns_name_to_wire(wire, sizeof wire, name);
    ck_assert_int_gt(wl, 0);
    for (unsigned back = 0; back < TS_DOTSERVER_RECENT; back++) {
        uint8_t q[TS_DOTSERVER_RECENT_BYTES];
        int n = ts_dotserver_recent_query(srv, back, q, sizeof q);
        if (n < 0)
            break;
        if (n >= 12 + wl && memcmp(q + 12, wire, (size_t)wl) == 0)
            return n;
    }
    return -1;
}

START_TEST(test_reload_padding_raised_and_lowered_under_load)
{
    ts_dotserver *srv = ts_rig_server((ts_dotserver_opts){0}, "server");
    uint16_t up = ts_dotserver_port(srv);
    ts_rig r;
    ts_rig_up(&r, cfg_padding(up, 128));
    loader l;
    loader_start(&l, r.port);
    static const unsigned blocks[] = {0, 468, 128, 0};
    for (unsigned i = 0; i < sizeof blocks / sizeof blocks[0]; i++) {
        ts_rig_reload(&r, cfg_padding(up, blocks[i]));
        atomic_store(&l.pause, 1); /* the upstream's recent queries: the probe's */
        char name[64];
        snprintf(name, sizeof name, "p%u.padding.test", i);
        ck_assert_int_eq(probe(r.port, name), TS_DNS_RCODE_NOERROR);
        int len = upstream_saw(srv, name);
        ck_assert_int_gt(len, 0);
        if (blocks[i] != 0)
            ck_assert_msg(len % (int)blocks[i] == 0, "padding %u: a query of %d octets", blocks[i],
                          len);
        else /* the query and an OPT (with keepalive): no padding */
            ck_assert_msg(len < 64, "padding 0: a query of %d octets", len);
        atomic_store(&l.pause, 0);
    }
    loader_finish(&l);
    ts_rig_down(&r);
    ts_dotserver_stop(srv);
}
END_TEST

/* ---- keep-ecs ------------------------------------------------------------------ */

static dotproxy_config *cfg_ecs(uint16_t port, int keep)
{
    dotproxy_config *cfg = cfg1(port);
    ck_assert_int_eq(dotproxy_config_set_keep_ecs(cfg, keep), 0);
    ck_assert_int_eq(dotproxy_config_set_padding(cfg, 0), 0);
    return cfg;
}

/* Ask name with an EDNS Client Subnet option (RFC 7871: 192.0.2.0/24);
 * then whether the upstream's copy still carries it. */
static int ecs_kept(uint16_t port, ts_dotserver *srv, const char *name)
{
    static const uint8_t ecs[] = {0, 8, 0, 7, 0, 1, 24, 0, 192, 0, 2};
    uint8_t q[512], a[2048];
    int n = ts_dns_build_query(q, sizeof q, 0x4ec5, name, TS_DNS_TYPE_A, 1232);
    ck_assert_int_gt(n, 0);
    /* The OPT is last and has no options: append one, fix its RDLENGTH. */
    memcpy(q + n, ecs, sizeof ecs);
    q[n - 2] = 0;
    q[n - 1] = sizeof ecs;
    n += (int)sizeof ecs;
    int an = ts_dns_udp_exchange(port, q, (size_t)n, a, sizeof a, ANSWER_MS);
    ck_assert_int_gt(an, 0);
    ck_assert_int_eq(ts_dns_rcode(a, (size_t)an), TS_DNS_RCODE_NOERROR);
    uint8_t wire[300];
    int wl = ts_dns_name_to_wire(wire, sizeof wire, name);
    for (unsigned back = 0; back < TS_DOTSERVER_RECENT; back++) {
        uint8_t u[TS_DOTSERVER_RECENT_BYTES];
        int un = ts_dotserver_recent_query(srv, back, u, sizeof u);
        ck_assert_int_ge(un, 0);
        if (un < 12 + wl || memcmp(u + 12, wire, (size_t)wl) != 0)
            continue;
        for (int i = 0; i + (int)sizeof ecs <= un; i++)
            if (memcmp(u + i, ecs, 4) == 0)
                return 1;
        return 0;
    }
    ck_abort_msg("the upstream never saw %s", name);
    return -1;
}

START_TEST(test_reload_keep_ecs_turned_on_and_off_under_load)
{
    ts_dotserver *srv = ts_rig_server((ts_dotserver_opts){0}, "server");
    uint16_t up = ts_dotserver_port(srv);
    ts_rig r;
    ts_rig_up(&r, cfg_ecs(up, 0));
    loader l;
    loader_start(&l, r.port);
    atomic_store(&l.pause, 1);
    ck_assert_int_eq(ecs_kept(r.port, srv, "a.ecs.test"), 0);
    atomic_store(&l.pause, 0);
    ts_rig_reload(&r, cfg_ecs(up, 1));
    atomic_store(&l.pause, 1); /* the upstream's recent queries: the probe's */
    ck_assert_int_eq(ecs_kept(r.port, srv, "b.ecs.test"), 1);
    atomic_store(&l.pause, 0);
    ts_rig_reload(&r, cfg_ecs(up, 0));
    atomic_store(&l.pause, 1);
    ck_assert_int_eq(ecs_kept(r.port, srv, "c.ecs.test"), 0);
    atomic_store(&l.pause, 0);
    loader_finish(&l);
    ts_rig_down(&r);
    ts_dotserver_stop(srv);
}
END_TEST

/* ---- selection ----------------------------------------------------------------- */

static dotproxy_config *cfg_select(const uint16_t *ports, int policy)
{
    dotproxy_config *cfg = ts_rig_config(ports, 2);
    ck_assert_int_eq(dotproxy_config_set_selection(cfg, policy), 0);
    return cfg;
}

START_TEST(test_reload_selection_changed_under_load)
{
    ts_dotserver *a = ts_rig_server((ts_dotserver_opts){0}, "server");
    ts_dotserver *b = ts_rig_server((ts_dotserver_opts){0}, "server");
    uint16_t ports[2] = {ts_dotserver_port(a), ts_dotserver_port(b)};
    ts_rig r;
    ts_rig_up(&r, cfg_select(ports, DOTPROXY_SELECT_ROUND_ROBIN));
    loader l;
    loader_start(&l, r.port);
    /* Ordered: everything to the first (the loader's queries too). */
    ts_rig_reload(&r, cfg_select(ports, DOTPROXY_SELECT_ORDERED));
    poll(NULL, 0, 200); /* queries sent before the reload are answered by now */
    unsigned b0 = ts_dotserver_queries(b);
    for (unsigned i = 0; i < 20; i++) {
        char name[64];
        snprintf(name, sizeof name, "o%u.select.test", i);
        ck_assert_int_eq(probe(r.port, name), TS_DNS_RCODE_NOERROR);
    }
    ck_assert_uint_eq(ts_dotserver_queries(b), b0);
    /* Round robin: both take their turns. */
    ts_rig_reload(&r, cfg_select(ports, DOTPROXY_SELECT_ROUND_ROBIN));
    unsigned a1 = ts_dotserver_queries(a), b1 = ts_dotserver_queries(b);
    for (unsigned i = 0; i < 20; i++) {
        char name[64];
        snprintf(name, sizeof name, "r%u.select.test", i);
        ck_assert_int_eq(probe(r.port, name), TS_DNS_RCODE_NOERROR);
    }
    ck_assert_uint_ge(ts_dotserver_queries(a) - a1, 5);
    ck_assert_uint_ge(ts_dotserver_queries(b) - b1, 5);
    loader_finish(&l);
    ts_rig_down(&r);
    ts_dotserver_stop(a);
    ts_dotserver_stop(b);
}
END_TEST

/* ---- idle timeouts ------------------------------------------------------------- */

static dotproxy_config *cfg_idle(uint16_t port, unsigned up_ms, unsigned tcp_ms)
{
    dotproxy_config *cfg = cfg1(port);
    ck_assert_int_eq(dotproxy_config_set_idle_timeout_ms(cfg, up_ms), 0);
    ck_assert_int_eq(dotproxy_config_set_tcp_idle_timeout_ms(cfg, tcp_ms), 0);
    return cfg;
}

/* Wait up to ms for upstream 0's open connections to be `want`. */
static int conns_become(const ts_rig *r, unsigned want, int ms)
{
    int64_t end = ts_now_ms() + ms;
    do {
        if (ts_rig_upstream(r, 0).connections == want)
            return 1;
        poll(NULL, 0, 20);
    } while (ts_now_ms() < end);
    return 0;
}

START_TEST(test_reload_upstream_idle_timeout_lowered_and_raised_under_load)
{
    ts_dotserver *srv = ts_rig_server((ts_dotserver_opts){0}, "server");
    uint16_t up = ts_dotserver_port(srv);
    ts_rig r;
    ts_rig_up(&r, cfg_idle(up, 60000, 10000));
    loader l;
    loader_start(&l, r.port);
    ts_rig_reload(&r, cfg_idle(up, 300, 10000));
    /* Once the clients pause, the connection is closed after ~300 ms. */
    atomic_store(&l.pause, 1);
    ck_assert_msg(conns_become(&r, 0, 3000), "idle-timeout 300: the connection stays open");
    atomic_store(&l.pause, 0);
    ck_assert_int_eq(probe(r.port, "AfTeR.low.idle.test"), TS_DNS_RCODE_NOERROR);
    ts_rig_reload(&r, cfg_idle(up, 60000, 10000));
    ck_assert_int_eq(probe(r.port, "AfTeR.high.idle.test"), TS_DNS_RCODE_NOERROR);
    atomic_store(&l.pause, 1);
    poll(NULL, 0, 1500);
    ck_assert_msg(ts_rig_upstream(&r, 0).connections >= 1,
                  "idle-timeout 60000: the connection was closed within 1.5 s");
    atomic_store(&l.pause, 0);
    loader_finish(&l);
    ts_rig_down(&r);
    ts_dotserver_stop(srv);
}
END_TEST

/* A TCP client idle after one answer: 1 when the proxy closed it within ms. */
static int tcp_closed_within(uint16_t port, int ms, const char *name)
{
    int fd = ts_dns_tcp_connect(port);
    ck_assert_int_ge(fd, 0);
    uint8_t q[512], a[2048];
    int qlen = ts_dns_build_query(q, sizeof q, 0x7c90, name, TS_DNS_TYPE_A, 0);
    ck_assert_int_eq(ts_dns_tcp_send(fd, q, (size_t)qlen), 0);
    ck_assert_int_gt(ts_dns_tcp_recv(fd, a, sizeof a, ANSWER_MS), 0);
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int closed = 0;
    if (poll(&p, 1, ms) == 1) {
        char c;
        closed = recv(fd, &c, 1, 0) <= 0;
    }
    close(fd);
    return closed;
}

START_TEST(test_reload_tcp_idle_timeout_lowered_and_raised_under_load)
{
    ts_dotserver *srv = ts_rig_server((ts_dotserver_opts){0}, "server");
    uint16_t up = ts_dotserver_port(srv);
    ts_rig r;
    ts_rig_up(&r, cfg_idle(up, 8000, 10000));
    loader l;
    loader_start(&l, r.port);
    ts_rig_reload(&r, cfg_idle(up, 8000, 300));
    ck_assert_msg(tcp_closed_within(r.port, 3000, "lOw.tcpidle.test"),
                  "tcp-idle-timeout 300: an idle client kept for 3 s");
    ts_rig_reload(&r, cfg_idle(up, 8000, 60000));
    ck_assert_msg(!tcp_closed_within(r.port, 1500, "HiGh.tcpidle.test"),
                  "tcp-idle-timeout 60000: an idle client closed within 1.5 s");
    loader_finish(&l);
    ts_rig_down(&r);
    ts_dotserver_stop(srv);
}
END_TEST

/* ---- handshake-timeout --------------------------------------------------------- */

static dotproxy_config *cfg_hs(const uint16_t *ports, unsigned ms)
{
    dotproxy_config *cfg = ts_rig_config(ports, 2);
    ck_assert_int_eq(dotproxy_config_set_selection(cfg, DOTPROXY_SELECT_ORDERED), 0);
    ck_assert_int_eq(dotproxy_config_set_handshake_timeout_ms(cfg, ms), 0);
    return cfg;
}

START_TEST(test_reload_handshake_timeout_lowered_and_raised_under_load)
{
    /* First upstream: TCP accepted by the kernel, TLS never answered. */
    int mute = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(mute, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(mute, (struct sockaddr *)&sa, sizeof sa), 0);
    ck_assert_int_eq(listen(mute, 64), 0);
    socklen_t sl = sizeof sa;
    ck_assert_int_eq(getsockname(mute, (struct sockaddr *)&sa, &sl), 0);
    ts_dotserver *good = ts_rig_server((ts_dotserver_opts){0}, "server");
    uint16_t ports[2] = {ntohs(sa.sin_port), ts_dotserver_port(good)};
    ts_rig r;
    ts_rig_up(&r, cfg_hs(ports, 5000));
    loader l;
    loader_start(&l, r.port);
    /* 200 ms: the mute upstream's handshakes (its backoff probes) fail fast. */
    ts_rig_reload(&r, cfg_hs(ports, 200));
    unsigned f0 = ts_rig_upstream(&r, 0).consecutive_failures;
    int64_t end = ts_now_ms() + 8000;
    while (ts_rig_upstream(&r, 0).consecutive_failures < f0 + 3 && ts_now_ms() < end)
        poll(NULL, 0, 20);
    ck_assert_uint_ge(ts_rig_upstream(&r, 0).consecutive_failures, f0 + 3);
    /* 5000 ms (the query timeout, 4 s, caps it): at most the attempt under
     * way when the reload came fails within the next 3 s. */
    ts_rig_reload(&r, cfg_hs(ports, 5000));
    unsigned f1 = ts_rig_upstream(&r, 0).consecutive_failures;
    poll(NULL, 0, 3000);
    ck_assert_uint_le(ts_rig_upstream(&r, 0).consecutive_failures, f1 + 1);
    ck_assert_int_eq(probe(r.port, "AfTeR.hs.test"), TS_DNS_RCODE_NOERROR);
    loader_finish(&l);
    ts_rig_down(&r);
    ts_dotserver_stop(good);
    close(mute);
}
END_TEST

/* ---- stale-max ----------------------------------------------------------------- */

static dotproxy_config *cfg_stale(uint16_t port, unsigned stale_s)
{
    dotproxy_config *cfg = cfg1(port);
    ck_assert_int_eq(dotproxy_config_set_stale_max_s(cfg, stale_s), 0);
    ck_assert_int_eq(dotproxy_config_set_timeout_ms(cfg, 800), 0);
    return cfg;
}

START_TEST(test_reload_stale_max_lowered_and_raised_under_load)
{
    ts_dotserver_opts o = {0};
    o.knobs.ttl = 1;
    ts_dotserver *srv = ts_rig_server(o, "server");
    uint16_t up = ts_dotserver_port(srv);
    ts_rig r;
    ts_rig_up(&r, cfg_stale(up, 3600));
    loader l;
    loader_start(&l, r.port);
    /* After each reload (which starts an empty cache) a name is cached
     * with TTL 1, expires, then the upstream goes silent: with stale-max 0
     * it gets SERVFAIL, with 3600 the expired answer (RFC 8767). */
    static const struct {
        unsigned stale_s;
        const char *name;
        int rcode;
    } steps[] = {{0, "zero.stale.test", TS_DNS_RCODE_SERVFAIL},
                 {3600, "hour.stale.test", TS_DNS_RCODE_NOERROR},
                 {0, "zero2.stale.test", TS_DNS_RCODE_SERVFAIL}};
    ts_dotserver_knobs k = {.ttl = 1};
    for (unsigned i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        k.blackhole = 0;
        ts_dotserver_set_knobs(srv, &k);
        ts_rig_reload(&r, cfg_stale(up, steps[i].stale_s));
        ck_assert_int_eq(probe(r.port, steps[i].name), TS_DNS_RCODE_NOERROR);
        poll(NULL, 0, 2100);
        k.blackhole = 1;
        ts_dotserver_set_knobs(srv, &k);
        ck_assert_int_eq(probe(r.port, steps[i].name), steps[i].rcode);
    }
    k.blackhole = 0;
    ts_dotserver_set_knobs(srv, &k);
    loader_finish(&l);
    ts_rig_down(&r);
    ts_dotserver_stop(srv);
}
END_TEST

/* ---- max-client-queries -------------------------------------------------------- */

static dotproxy_config *cfg_mcq(uint16_t port, unsigned n)
{
    dotproxy_config *cfg = cfg1(port);
    ck_assert_int_eq(dotproxy_config_set_max_client_queries(cfg, n), 0);
    return cfg;
}

/* 30 queries at once from one socket: how many NOERROR within ANSWER_MS
 * (UDP queries over the cap are dropped: the client retries). */
static unsigned burst_noerror(uint16_t port, const char *tag)
{
    int fd = ts_dns_udp_socket(port);
    ck_assert_int_ge(fd, 0);
    for (unsigned i = 0; i < 30; i++) {
        char name[64];
        uint8_t q[512];
        snprintf(name, sizeof name, "b%u.%s.mcq.test", i, tag);
        int n = ts_dns_build_query(q, sizeof q, (uint16_t)(0x100 + i), name, TS_DNS_TYPE_A, 0);
        ck_assert_int_eq(ts_dns_udp_send(fd, q, (size_t)n), 0);
    }
    unsigned got = 0, ok = 0;
    int64_t end = ts_now_ms() + ANSWER_MS;
    while (got < 30 && ts_now_ms() < end) {
        uint8_t a[1024];
        int n = ts_dns_udp_recv(fd, a, sizeof a, (int)(end - ts_now_ms()));
        if (n <= 0)
            break;
        got++;
        ok += ts_dns_rcode(a, (size_t)n) == TS_DNS_RCODE_NOERROR;
    }
    close(fd);
    return ok;
}

START_TEST(test_reload_max_client_queries_lowered_and_raised_under_load)
{
    ts_dotserver *srv = ts_rig_server((ts_dotserver_opts){.delay_ms = 300}, "server");
    uint16_t up = ts_dotserver_port(srv);
    ts_rig r;
    ts_rig_up(&r, cfg_mcq(up, 4096));
    loader l;
    loader_start(&l, r.port);
    ts_rig_reload(&r, cfg_mcq(up, 4));
    uint64_t capped = ts_rig_ctr(&r, DOTPROXY_CTR_CLIENT_INFLIGHT_CAP);
    unsigned low = burst_noerror(r.port, "low");
    ck_assert_msg(low >= 1 && low <= 4, "max-client-queries 4: %u of 30 at once answered", low);
    ck_assert_uint_ge(ts_rig_ctr(&r, DOTPROXY_CTR_CLIENT_INFLIGHT_CAP) - capped, 26);
    ts_rig_reload(&r, cfg_mcq(up, 4096));
    ck_assert_uint_eq(burst_noerror(r.port, "high"), 30);
    loader_finish(&l);
    ts_rig_down(&r);
    ts_dotserver_stop(srv);
}
END_TEST

/* ---- cache TTL bounds ---------------------------------------------------------- */

static dotproxy_config *cfg_ttl(uint16_t port, unsigned max_s)
{
    dotproxy_config *cfg = cfg1(port);
    ck_assert_int_eq(dotproxy_config_set_cache_ttl(cfg, 0, max_s), 0);
    ck_assert_int_eq(dotproxy_config_set_stale_max_s(cfg, 0), 0); /* expired is gone */
    return cfg;
}

/* Ask name twice, 1.5 s apart: how many of the two reached the upstream. */
static unsigned upstream_asked_twice(ts_rig *r, ts_dotserver *srv, const char *name)
{
    unsigned after = 0;
    ck_assert_int_eq(probe(r->port, name), TS_DNS_RCODE_NOERROR);
    poll(NULL, 0, 1500);
    ck_assert_int_eq(probe(r->port, name), TS_DNS_RCODE_NOERROR);
    uint8_t wire[300];
    int wl = ts_dns_name_to_wire(wire, sizeof wire, name);
    for (unsigned back = 0; back < TS_DOTSERVER_RECENT; back++) {
        uint8_t u[TS_DOTSERVER_RECENT_BYTES];
        int un = ts_dotserver_recent_query(srv, back, u, sizeof u);
        if (un < 0)
            break;
        after += un >= 12 + wl && memcmp(u + 12, wire, (size_t)wl) == 0;
    }
    return after;
}

START_TEST(test_reload_cache_max_ttl_lowered_and_raised_under_load)
{
    ts_dotserver *srv = ts_rig_server((ts_dotserver_opts){0}, "server");
    uint16_t up = ts_dotserver_port(srv);
    ts_rig r;
    ts_rig_up(&r, cfg_ttl(up, 86400));
    loader l;
    loader_start(&l, r.port);
    /* The check reads the upstream's recent queries: the loader pauses for
     * it (the reloads happen while it asks). */
    ts_rig_reload(&r, cfg_ttl(up, 1));
    atomic_store(&l.pause, 1);
    ck_assert_uint_eq(upstream_asked_twice(&r, srv, "one.ttl.test"), 2);
    atomic_store(&l.pause, 0);
    ts_rig_reload(&r, cfg_ttl(up, 86400));
    atomic_store(&l.pause, 1);
    ck_assert_uint_eq(upstream_asked_twice(&r, srv, "day.ttl.test"), 1);
    atomic_store(&l.pause, 0);
    loader_finish(&l);
    ts_rig_down(&r);
    ts_dotserver_stop(srv);
}
END_TEST

/* ---- allow --------------------------------------------------------------------- */

static dotproxy_config *cfg_allow(uint16_t port, const char *cidr)
{
    dotproxy_config *cfg = cfg1(port);
    ck_assert_int_eq(dotproxy_config_add_allow(cfg, cidr), 0);
    return cfg;
}

START_TEST(test_reload_allow_list_narrowed_and_widened_under_load)
{
    ts_dotserver *srv = ts_rig_server((ts_dotserver_opts){0}, "server");
    uint16_t up = ts_dotserver_port(srv);
    ts_rig r;
    ts_rig_up(&r, cfg_allow(up, "127.0.0.0/8"));
    loader l;
    loader_start(&l, r.port);
    ts_rig_reload(&r, cfg_allow(up, "10.0.0.0/8"));
    ck_assert_int_eq(probe(r.port, "out.allow.test"), 5);
    ts_rig_reload(&r, cfg_allow(up, "127.0.0.1"));
    ck_assert_int_eq(probe(r.port, "in.allow.test"), TS_DNS_RCODE_NOERROR);
    loader_finish(&l);
    ts_rig_down(&r);
    ts_dotserver_stop(srv);
}
END_TEST

static Suite *reload_suite(void)
{
    Suite *s = suite_create("reload options under load");
    TCase *tc = tcase_create("reload");
    tcase_set_timeout(tc, 90);
    tcase_add_test(tc, test_reload_timeout_lowered_and_raised_under_load);
    tcase_add_test(tc, test_reload_rate_limit_raised_and_lowered_under_load);
    tcase_add_test(tc, test_reload_padding_raised_and_lowered_under_load);
    tcase_add_test(tc, test_reload_keep_ecs_turned_on_and_off_under_load);
    tcase_add_test(tc, test_reload_selection_changed_under_load);
    tcase_add_test(tc, test_reload_upstream_idle_timeout_lowered_and_raised_under_load);
    tcase_add_test(tc, test_reload_tcp_idle_timeout_lowered_and_raised_under_load);
    tcase_add_test(tc, test_reload_handshake_timeout_lowered_and_raised_under_load);
    tcase_add_test(tc, test_reload_stale_max_lowered_and_raised_under_load);
    tcase_add_test(tc, test_reload_max_client_queries_lowered_and_raised_under_load);
    tcase_add_test(tc, test_reload_cache_max_ttl_lowered_and_raised_under_load);
    tcase_add_test(tc, test_reload_allow_list_narrowed_and_widened_under_load);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    if (ts_rig_pki_init("dotproxy-test-reload") != 0)
        return EXIT_FAILURE;
    SRunner *sr = srunner_create(reload_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    ts_rig_pki_fini();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
