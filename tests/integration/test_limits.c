/* SPDX-License-Identifier: MIT */
/* Capacity limits under load (issue 11): every reloadable limit raised and
 * lowered while queries are in flight (run under ASan: nothing sized from
 * the old value may be overrun), the TCP memory budget shared fairly among
 * clients, a bad TCP frame after a good query, and the UDP receive loop
 * bounded per turn.
 *
 * Most tests run a real dotproxy_ctx on a thread of its own in front of the
 * in-tree DoT server; the budget test drives the listener module alone on
 * the test thread (a fake pipeline answers every query with a large
 * answer), so that it can fill the budget exactly whatever the kernel's
 * socket buffers hold. Nothing waits by sleeping: every wait is a poll()
 * or a bounded loop on a counter with a deadline. */
#include <check.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "dotproxy/config.h"
#include "dotproxy/dns.h"
#include "dotproxy/error.h"
#include "dotproxy/loop.h"
#include "dotproxy/proxy.h"

#include "listener.h"
#include "loop.h"
#include "policy.h"
#include "stats.h"

#include "dnsclient.h"
#include "dotserver.h"
#include "pki.h"
#include "rig.h"

#define WAIT_MS 8000

/* The listener tests' logger (the contexts log through the rig's). */
static void log_sink(int level, const char *msg, void *user)
{
    (void)user;
    if (getenv("DP_TEST_LOG") != NULL)
        fprintf(stderr, "dotproxy[%d]: %s\n", level, msg);
}

/* Listening on 127.0.0.1 (port 0), one upstream, the test CA. */
static dotproxy_config *config_one(uint16_t port)
{
    return ts_rig_config(&port, 1);
}

/* ---- a burst of concurrent UDP queries ---------------------------------------- */

/* Up to 64 queries per socket: answers that all come at once must fit in
 * the test's own receive buffers. */
#define BURST_PER_FD 64
#define BURST_FDS    64

typedef struct burst {
    int fd[BURST_FDS];
    unsigned n_fd;
    unsigned n, noerror, servfail, other;
    unsigned char got[BURST_FDS * BURST_PER_FD];
} burst;

/* Send n queries for distinct names (no coalescing, no cache hits) without
 * waiting for answers. */
static void burst_send(burst *b, uint16_t port, unsigned n, unsigned tag)
{
    memset(b, 0, sizeof *b);
    ck_assert_uint_le(n, sizeof b->got);
    b->n = n;
    for (unsigned i = 0; i < n; i++) {
        if (i % BURST_PER_FD == 0) {
            b->fd[b->n_fd] = ts_dns_udp_socket(port);
            ck_assert_int_ge(b->fd[b->n_fd], 0);
            b->n_fd++;
        }
        char name[64];
        uint8_t q[512];
        snprintf(name, sizeof name, "q%u.t%u.limits.test", i, tag);
        int len = ts_dns_build_query(q, sizeof q, (uint16_t)i, name, TS_DNS_TYPE_A, 0);
        ck_assert_int_gt(len, 0);
        ck_assert_int_eq(ts_dns_udp_send(b->fd[b->n_fd - 1], q, (size_t)len), 0);
    }
}

/* The same, 64 at a time, each lot once the upstream has read the one
 * before: a lot sent at once must not overflow the proxy's UDP socket. */
static void burst_send_paced(burst *b, uint16_t port, unsigned n, unsigned tag,
                             const ts_dotserver *srv)
{
    unsigned base = ts_dotserver_queries(srv);
    memset(b, 0, sizeof *b);
    b->n = n;
    for (unsigned i = 0; i < n; i += BURST_PER_FD) {
        unsigned k = n - i < BURST_PER_FD ? n - i : BURST_PER_FD;
        b->fd[b->n_fd] = ts_dns_udp_socket(port);
        ck_assert_int_ge(b->fd[b->n_fd], 0);
        for (unsigned j = 0; j < k; j++) {
            char name[64];
            uint8_t q[512];
            snprintf(name, sizeof name, "q%u.t%u.limits.test", i + j, tag);
            int len = ts_dns_build_query(q, sizeof q, (uint16_t)(i + j), name, TS_DNS_TYPE_A, 0);
            ck_assert_int_eq(ts_dns_udp_send(b->fd[b->n_fd], q, (size_t)len), 0);
        }
        b->n_fd++;
        int64_t end = ts_now_ms() + WAIT_MS;
        while (ts_dotserver_queries(srv) < base + i + k && ts_now_ms() < end)
            poll(NULL, 0, 1);
    }
}

/* Collect answers until every query got one or ms passed (a dropped UDP
 * query gets none). Returns the number answered. */
static unsigned burst_collect(burst *b, int ms)
{
    int64_t end = ts_now_ms() + ms;
    unsigned answered = b->noerror + b->servfail + b->other;
    while (answered < b->n) {
        int left = (int)(end - ts_now_ms());
        if (left <= 0)
            break;
        struct pollfd pfd[BURST_FDS];
        for (unsigned k = 0; k < b->n_fd; k++)
            pfd[k] = (struct pollfd){.fd = b->fd[k], .events = POLLIN};
        if (poll(pfd, b->n_fd, left) <= 0)
            break;
        for (unsigned k = 0; k < b->n_fd; k++) {
            if (!(pfd[k].revents & POLLIN))
                continue;
            uint8_t ans[1024];
            int len = ts_dns_udp_recv(b->fd[k], ans, sizeof ans, 0);
            if (len <= 0)
                continue;
            int id = ts_dns_id(ans, (size_t)len);
            if (id < 0 || (unsigned)id >= b->n || (unsigned)id / BURST_PER_FD != k || b->got[id])
                continue;
            b->got[id] = 1;
            answered++;
            int rc = ts_dns_rcode(ans, (size_t)len);
            if (rc == TS_DNS_RCODE_NOERROR && ts_dns_ancount(ans, (size_t)len) == 1)
                b->noerror++;
            else if (rc == TS_DNS_RCODE_SERVFAIL)
                b->servfail++;
            else
                b->other++;
        }
    }
    return answered;
}

static void burst_close(burst *b)
{
    for (unsigned k = 0; k < b->n_fd; k++)
        close(b->fd[k]);
}

/* The first upstream's stats: the most in flight and connections seen
 * while polling for ms (the snapshot is refreshed every 100 ms). */
static void watch_upstream(ts_rig *r, int ms, unsigned *max_inflight, unsigned *max_conns)
{
    int64_t end = ts_now_ms() + ms;
    *max_inflight = *max_conns = 0;
    while (ts_now_ms() < end) {
        dotproxy_upstream_stats st;
        if (dotproxy_ctx_upstream_stats(r->ctx, 0, &st) == 0) {
            if (st.inflight > *max_inflight)
                *max_inflight = (unsigned)st.inflight;
            if (st.connections > *max_conns)
                *max_conns = (unsigned)st.connections;
        }
        poll(NULL, 0, 20);
    }
}

/* ---- max-queries ------------------------------------------------------------ */

START_TEST(test_limits_reload_raising_max_queries_admits_more_queries_without_overrunning)
{
    /* The red team's case: 16 raised to 4096, then 300 queries at once. */
    ts_dotserver *srv = ts_rig_server((ts_dotserver_opts){.delay_ms = 300}, "server");
    dotproxy_config *cfg = config_one(ts_dotserver_port(srv));
    ck_assert_int_eq(dotproxy_config_set_max_queries(cfg, 16), 0);
    ck_assert_int_eq(dotproxy_config_set_cache_size(cfg, 0), 0);
    ts_rig r;
    ts_rig_up(&r, cfg);
    cfg = config_one(ts_dotserver_port(srv));
    ck_assert_int_eq(dotproxy_config_set_max_queries(cfg, 4096), 0);
    ck_assert_int_eq(dotproxy_config_set_cache_size(cfg, 0), 0);
    ts_rig_reload(&r, cfg);
    burst b;
    burst_send_paced(&b, r.port, 300, 1, srv);
    burst_collect(&b, WAIT_MS);
    burst_close(&b);
    ck_assert_msg(b.noerror == 300,
                  "after raising max-queries to 4096: %u of 300 answered, "
                  "%u SERVFAIL, %u other",
                  b.noerror, b.servfail, b.other);
    /* And again, now that records were reused. */
    burst_send_paced(&b, r.port, 300, 2, srv);
    burst_collect(&b, WAIT_MS);
    burst_close(&b);
    ck_assert_uint_eq(b.noerror, 300);
    ts_rig_down(&r);
    ts_dotserver_stop(srv);
}
END_TEST

START_TEST(test_limits_reload_lowering_max_queries_under_load_bounds_the_queries_admitted)
{
    ts_dotserver *srv = ts_rig_server((ts_dotserver_opts){.delay_ms = 400}, "server");
    dotproxy_config *cfg = config_one(ts_dotserver_port(srv));
    ck_assert_int_eq(dotproxy_config_set_cache_size(cfg, 0), 0);
    ts_rig r;
    ts_rig_up(&r, cfg);
    burst b;
    burst_send_paced(&b, r.port, 300, 1, srv);
    /* Wait until they are in flight, then lower the bound under them. */
    int64_t end = ts_now_ms() + WAIT_MS;
    while (ts_dotserver_queries(srv) < 300 && ts_now_ms() < end)
        poll(NULL, 0, 2);
    cfg = config_one(ts_dotserver_port(srv));
    ck_assert_int_eq(dotproxy_config_set_max_queries(cfg, 16), 0);
    ck_assert_int_eq(dotproxy_config_set_cache_size(cfg, 0), 0);
    ts_rig_reload(&r, cfg);
    burst_collect(&b, WAIT_MS);
    burst_close(&b);
    ck_assert_msg(b.noerror == 300, "queries in flight across the reload: %u of 300 answered",
                  b.noerror);
    /* From now on at most 16 wait at once: the rest get SERVFAIL at once. */
    burst_send(&b, r.port, 100, 2);
    burst_collect(&b, WAIT_MS);
    burst_close(&b);
    ck_assert_msg(b.noerror <= 16 && b.noerror >= 1 && b.noerror + b.servfail == 100,
                  "after lowering max-queries to 16: %u answered, %u SERVFAIL of 100", b.noerror,
                  b.servfail);
    ts_rig_down(&r);
    ts_dotserver_stop(srv);
}
END_TEST

/* ---- max-inflight and max-connections -------------------------------------------- */

static dotproxy_config *config_conns(uint16_t port, unsigned inflight, unsigned conns)
{
    dotproxy_config *cfg = config_one(port);
    ck_assert_int_eq(dotproxy_config_set_max_inflight(cfg, inflight), 0);
    ck_assert_int_eq(dotproxy_config_set_max_connections(cfg, conns), 0);
    ck_assert_int_eq(dotproxy_config_set_cache_size(cfg, 0), 0);
    return cfg;
}

START_TEST(test_limits_reload_raising_and_lowering_max_inflight_under_load_takes_effect)
{
    ts_dotserver *srv = ts_rig_server((ts_dotserver_opts){.delay_ms = 300}, "server");
    uint16_t up = ts_dotserver_port(srv);
    ts_rig r;
    ts_rig_up(&r, config_conns(up, 16, 1));
    burst b;
    burst_send(&b, r.port, 200, 1);
    unsigned inflight, conns;
    watch_upstream(&r, 300, &inflight, &conns);
    ck_assert_uint_le(inflight, 16);
    /* Raised while 200 queries wait: the connection must not stay at 16. */
    ts_rig_reload(&r, config_conns(up, 1024, 1));
    burst_collect(&b, WAIT_MS);
    burst_close(&b);
    ck_assert_msg(b.noerror == 200, "raising max-inflight: %u of 200 answered", b.noerror);
    burst_send(&b, r.port, 200, 2);
    watch_upstream(&r, 400, &inflight, &conns);
    ck_assert_msg(inflight > 16, "max-inflight raised to 1024: at most %u in flight seen",
                  inflight);
    /* Lowered while those are in flight (200 queries, 64 at a time). */
    ts_rig_reload(&r, config_conns(up, 64, 1));
    burst_collect(&b, WAIT_MS);
    burst_close(&b);
    ck_assert_msg(b.noerror == 200, "lowering max-inflight: %u of 200 answered", b.noerror);
    burst_send(&b, r.port, 100, 3);
    watch_upstream(&r, 400, &inflight, &conns);
    burst_collect(&b, WAIT_MS);
    burst_close(&b);
    ck_assert_msg(inflight <= 64, "max-inflight lowered to 64: %u in flight seen", inflight);
    ck_assert_uint_eq(b.noerror, 100);
    ts_rig_down(&r);
    ts_dotserver_stop(srv);
}
END_TEST

START_TEST(test_limits_reload_raising_and_lowering_max_connections_under_load_takes_effect)
{
    ts_dotserver *srv = ts_rig_server((ts_dotserver_opts){.delay_ms = 250}, "server");
    uint16_t up = ts_dotserver_port(srv);
    ts_rig r;
    ts_rig_up(&r, config_conns(up, 16, 1));
    burst b;
    burst_send(&b, r.port, 100, 1);
    unsigned inflight, conns;
    watch_upstream(&r, 200, &inflight, &conns);
    ck_assert_uint_le(conns, 1);
    ts_rig_reload(&r, config_conns(up, 16, 4));
    watch_upstream(&r, 400, &inflight, &conns);
    burst_collect(&b, WAIT_MS);
    burst_close(&b);
    ck_assert_msg(b.noerror == 100, "raising max-connections: %u of 100 answered", b.noerror);
    ck_assert_msg(conns > 1, "max-connections raised to 4: at most %u connections seen", conns);
    burst_send(&b, r.port, 100, 2);
    watch_upstream(&r, 200, &inflight, &conns);
    ts_rig_reload(&r, config_conns(up, 16, 1));
    burst_collect(&b, WAIT_MS);
    burst_close(&b);
    ck_assert_msg(b.noerror == 100, "lowering max-connections: %u of 100 answered", b.noerror);
    burst_send(&b, r.port, 50, 3);
    watch_upstream(&r, 400, &inflight, &conns);
    burst_collect(&b, WAIT_MS);
    burst_close(&b);
    ck_assert_msg(conns <= 1, "max-connections lowered to 1: %u connections seen", conns);
    ck_assert_uint_eq(b.noerror, 50);
    ts_rig_down(&r);
    ts_dotserver_stop(srv);
}
END_TEST

/* ---- max-tcp-clients ---------------------------------------------------------------- */

/* One TCP query on fd; 1 answered NOERROR, 0 closed, -1 other. */
static int tcp_ask(int fd, uint16_t id, const char *name)
{
    uint8_t q[512], ans[2048];
    int len = ts_dns_build_query(q, sizeof q, id, name, TS_DNS_TYPE_A, 0);
    if (ts_dns_tcp_send(fd, q, (size_t)len) != 0)
        return 0;
    int n = ts_dns_tcp_recv(fd, ans, sizeof ans, WAIT_MS);
    if (n <= 0)
        return n == 0 || n == -ECONNRESET ? 0 : -1;
    return ts_dns_id(ans, (size_t)n) == id && ts_dns_rcode(ans, (size_t)n) == 0 ? 1 : -1;
}

static dotproxy_config *config_tcp(uint16_t port, unsigned clients)
{
    dotproxy_config *cfg = config_one(port);
    ck_assert_int_eq(dotproxy_config_set_max_tcp_clients(cfg, clients), 0);
    return cfg;
}

START_TEST(test_limits_reload_raising_and_lowering_max_tcp_clients_under_load_takes_effect)
{
    ts_dotserver *srv = ts_rig_server((ts_dotserver_opts){0}, "server");
    uint16_t up = ts_dotserver_port(srv);
    ts_rig r;
    ts_rig_up(&r, config_tcp(up, 4));
    int fds[40];
    for (int i = 0; i < 40; i++)
        fds[i] = -1;
    /* Raised to 40: forty clients stay open together and are all served. */
    ts_rig_reload(&r, config_tcp(up, 40));
    for (int i = 0; i < 40; i++) {
        fds[i] = ts_dns_tcp_connect(r.port);
        ck_assert_int_ge(fds[i], 0);
        ck_assert_int_eq(tcp_ask(fds[i], (uint16_t)i, "tcp.limits.test"), 1);
    }
    for (int i = 0; i < 40; i++)
        ck_assert_msg(tcp_ask(fds[i], (uint16_t)(100 + i), "tcp.limits.test") == 1,
                      "client %d of 40 not served after raising max-tcp-clients", i);
    /* Lowered to 5: the 35 least recently active are closed at once. */
    for (int i = 35; i < 40; i++)
        ck_assert_int_eq(tcp_ask(fds[i], (uint16_t)(200 + i), "tcp.limits.test"), 1);
    ts_rig_reload(&r, config_tcp(up, 5));
    for (int i = 0; i < 35; i++) {
        uint8_t buf[64];
        int n = ts_dns_tcp_recv(fds[i], buf, sizeof buf, WAIT_MS);
        ck_assert_msg(n == 0 || n == -ECONNRESET,
                      "client %d still open after lowering max-tcp-clients to 5 (%d)", i, n);
    }
    for (int i = 35; i < 40; i++)
        ck_assert_int_eq(tcp_ask(fds[i], (uint16_t)(300 + i), "tcp.limits.test"), 1);
    for (int i = 0; i < 40; i++)
        close(fds[i]);
    ts_rig_down(&r);
    ts_dotserver_stop(srv);
}
END_TEST

/* ---- cache-size ---------------------------------------------------------------------- */

START_TEST(test_limits_reload_raising_and_lowering_cache_size_under_load_answers_every_query)
{
    ts_dotserver *srv = ts_rig_server((ts_dotserver_opts){.delay_ms = 200}, "server");
    uint16_t up = ts_dotserver_port(srv);
    dotproxy_config *cfg = config_one(up);
    ck_assert_int_eq(dotproxy_config_set_cache_size(cfg, 16), 0);
    ts_rig r;
    ts_rig_up(&r, cfg);
    const size_t sizes[] = {10000, 0, 16, 50000, 1000};
    for (unsigned k = 0; k < 5; k++) {
        burst b;
        burst_send(&b, r.port, 200, k);
        cfg = config_one(up);
        ck_assert_int_eq(dotproxy_config_set_cache_size(cfg, sizes[k]), 0);
        ts_rig_reload(&r, cfg);
        burst_collect(&b, WAIT_MS);
        burst_close(&b);
        ck_assert_msg(b.noerror == 200, "cache-size to %zu under load: %u of 200 answered",
                      sizes[k], b.noerror);
    }
    /* The last size (1000) is in use: repeated questions come from it. */
    burst b;
    burst_send(&b, r.port, 20, 9);
    burst_collect(&b, WAIT_MS);
    burst_close(&b);
    ck_assert_uint_eq(b.noerror, 20);
    unsigned before = ts_dotserver_queries(srv);
    burst_send(&b, r.port, 20, 9);
    burst_collect(&b, WAIT_MS);
    burst_close(&b);
    ck_assert_uint_eq(b.noerror, 20);
    ck_assert_uint_eq(ts_dotserver_queries(srv), before);
    ts_rig_down(&r);
    ts_dotserver_stop(srv);
}
END_TEST

/* ---- TCP framing ---------------------------------------------------------------------- */

START_TEST(test_limits_answers_a_tcp_query_followed_by_a_zero_length_frame_then_closes)
{
    ts_dotserver *srv = ts_rig_server((ts_dotserver_opts){.delay_ms = 50}, "server");
    ts_rig r;
    ts_rig_up(&r, config_one(ts_dotserver_port(srv)));
    int fd = ts_dns_tcp_connect(r.port);
    ck_assert_int_ge(fd, 0);
    uint8_t msg[512];
    int len =
        ts_dns_build_query(msg + 2, sizeof msg - 4, 0x4242, "zero.frame.test", TS_DNS_TYPE_A, 0);
    ck_assert_int_gt(len, 0);
    msg[0] = (uint8_t)(len >> 8);
    msg[1] = (uint8_t)len;
    msg[len + 2] = 0; /* a zero-length frame right behind it */
    msg[len + 3] = 0;
    ck_assert_int_eq(send(fd, msg, (size_t)len + 4, MSG_NOSIGNAL), len + 4);
    uint8_t ans[1024];
    int n = ts_dns_tcp_recv(fd, ans, sizeof ans, WAIT_MS);
    ck_assert_msg(n > 0, "no answer to the query before the zero-length frame (%d)", n);
    ck_assert_int_eq(ts_dns_id(ans, (size_t)n), 0x4242);
    ck_assert_int_eq(ts_dns_rcode(ans, (size_t)n), TS_DNS_RCODE_NOERROR);
    n = ts_dns_tcp_recv(fd, ans, sizeof ans, WAIT_MS);
    ck_assert_msg(n == 0 || n == -ECONNRESET, "the connection stays open after a bad frame (%d)",
                  n);
    close(fd);
    ts_rig_down(&r);
    ts_dotserver_stop(srv);
}
END_TEST

/* ---- the UDP receive loop ------------------------------------------------------------- */

START_TEST(test_limits_udp_receive_loop_reads_a_bounded_number_of_datagrams_per_turn)
{
    ts_dotserver *srv = ts_rig_server((ts_dotserver_opts){0}, "server");
    dotproxy_config *cfg = config_one(ts_dotserver_port(srv));
    dotproxy_ctx *ctx = NULL;
    ck_assert_int_eq(dotproxy_ctx_new(&ctx, cfg), 0);
    dotproxy_config_free(cfg);
    uint16_t port = (uint16_t)dotproxy_ctx_listen_port(ctx, 0);
    /* A flood waiting in the socket before the context looks at it. */
    int fd = ts_dns_udp_socket(port);
    ck_assert_int_ge(fd, 0);
    for (unsigned i = 0; i < 200; i++) {
        uint8_t q[64];
        int len = ts_dns_build_query(q, sizeof q, (uint16_t)i, "flood.test", TS_DNS_TYPE_A, 0);
        ck_assert_int_eq(ts_dns_udp_send(fd, q, (size_t)len), 0);
    }
    /* Tier 1 by hand: one turn with the UDP socket ready. */
    int one_turn_max = 0;
    uint64_t seen = 0;
    for (int turn = 0; turn < 50; turn++) {
        ck_assert_int_eq(dotproxy_ctx_run_once(ctx, 100), 0);
        uint64_t now = dotproxy_ctx_counter(ctx, DOTPROXY_CTR_QUERIES_UDP);
        if ((int)(now - seen) > one_turn_max)
            one_turn_max = (int)(now - seen);
        seen = now;
        if (seen >= 200)
            break;
    }
    ck_assert_msg(seen > 128, "only %llu datagrams arrived: the flood was too small to tell",
                  (unsigned long long)seen);
    ck_assert_msg(one_turn_max <= 128, "%d datagrams read in one loop turn", one_turn_max);
    close(fd);
    dotproxy_ctx_free(ctx);
    ts_dotserver_stop(srv);
}
END_TEST

/* ---- the TCP memory budget (the listener alone) ---------------------------------------- */

#define BIG_ANSWER 16384u

typedef struct fake {
    struct dp_loop loop;
    struct dp_listeners ls;
    struct dp_stats stats;
    struct dp_logger log;
    struct dp_policy *policy;
    dotproxy_config *cfg;
    uint8_t answer[BIG_ANSWER];
} fake;

/* The fake pipeline: every TCP query gets a large answer at once. */
static void fake_query(void *user, const struct dp_origin *o, uint8_t *msg, size_t len)
{
    fake *f = user;
    (void)len;
    if (o->kind != DP_Q_TCP)
        return;
    memcpy(f->answer, msg, DOTPROXY_DNS_HEADER_SIZE);
    dp_listener_tcp_send(&f->ls, o->tcp, f->answer, sizeof f->answer);
}

static void fake_turn_begin(void *user)
{
    (void)user;
}

static void fake_turn_end(void *user)
{
    fake *f = user;
    dp_listener_flush(&f->ls);
}

static uint64_t fake_next_due(void *user)
{
    fake *f = user;
    return dp_loop_next_due(&f->loop);
}

static int fake_stopped(void *user)
{
    (void)user;
    return 0;
}

static void fake_up(fake *f)
{
    memset(f, 0, sizeof *f);
    ck_assert_int_eq(dotproxy_config_new(&f->cfg), 0);
    ck_assert_int_eq(dotproxy_config_add_listen(f->cfg, "127.0.0.1@0"), 0);
    ck_assert_int_eq(dp_loop_init(&f->loop), 0);
    const struct dp_loop_hooks lh = {.turn_begin = fake_turn_begin,
                                     .turn_end = fake_turn_end,
                                     .next_due = fake_next_due,
                                     .stopped = fake_stopped,
                                     .user = f};
    dp_loop_set_hooks(&f->loop, &lh);
    dp_stats_init(&f->stats);
    f->log.fn = log_sink;
    f->log.max_level = DOTPROXY_LOG_DEBUG;
    ck_assert_int_eq(dp_policy_new(&f->policy, f->cfg), 0);
    const struct dp_listener_hooks hooks = {.query = fake_query, .user = f};
    dp_listener_init(&f->ls, &f->loop, &f->log, &f->stats.ctr, f->cfg, &f->policy, &hooks);
    ck_assert_int_eq(dp_listener_open(&f->ls), 0);
}

static void fake_down(fake *f)
{
    dp_listener_close_clients(&f->ls);
    dp_listener_close(&f->ls);
    dp_listener_fini(&f->ls);
    dp_policy_free(f->policy);
    dp_stats_fini(&f->stats);
    dp_loop_fini(&f->loop);
    dotproxy_config_free(f->cfg);
}

static void fake_turns(fake *f, int n)
{
    for (int i = 0; i < n; i++)
        ck_assert_int_eq(dp_loop_run_once(&f->loop, 0), 0);
}

/* The listener's client for our socket fd (by its port), or NULL. */
static struct dp_tcp_client *fake_client(fake *f, int fd)
{
    struct sockaddr_in me;
    socklen_t len = sizeof me;
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&me, &len), 0);
    for (struct dp_list *e = f->ls.tcp_clients.next; e != &f->ls.tcp_clients; e = e->next) {
        struct dp_tcp_client *c = DP_CONTAINER_OF(e, struct dp_tcp_client, lru);
        if (((const struct sockaddr_in *)&c->peer)->sin_port == me.sin_port)
            return c;
    }
    return NULL;
}

#define GREEDY 130
#define IDLE   200

START_TEST(test_limits_clients_that_never_read_cannot_lock_other_tcp_clients_out)
{
    fake f;
    fake_up(&f);
    uint16_t port = (uint16_t)dp_listener_port(&f.ls, 0);
    static int greedy[GREEDY];
    uint8_t q[64];
    int qlen = ts_dns_build_query(q, sizeof q, 7, "big.budget.test", TS_DNS_TYPE_A, 0);
    unsigned filled = 0;
    for (int i = 0; i < GREEDY; i++) {
        greedy[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ck_assert_int_ge(greedy[i], 0);
        int small = 4096;
        setsockopt(greedy[i], SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
        int one = 1;
        setsockopt(greedy[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ck_assert_int_eq(connect(greedy[i], (struct sockaddr *)&sa, sizeof sa), 0);
        fake_turns(&f, 2);
        /* Pipeline queries, never read: stop once about 200 KiB of answers
         * wait in the proxy for this client (under the 256 KiB it may
         * hold), whatever the kernel buffers took first. */
        for (int k = 0; k < 2000; k++) {
            struct dp_tcp_client *c = fake_client(&f, greedy[i]);
            if (c == NULL)
                break; /* closed by the proxy */
            if (c->out_tail - c->out_head >= (200u << 10)) {
                filled++;
                break;
            }
            if (ts_dns_tcp_send(greedy[i], q, (size_t)qlen) != 0)
                break;
            fake_turns(&f, 2);
        }
    }
    ck_assert_msg(filled >= 100, "only %u clients held 200 KiB", filled);
    /* Then clients that only connect take what room is left, 1 KiB each:
     * the budget is full. */
    static int idle[IDLE];
    for (int i = 0; i < IDLE; i++) {
        idle[i] = ts_dns_tcp_connect(port);
        ck_assert_int_ge(idle[i], 0);
        fake_turns(&f, 1);
    }
    /* A fresh client is accepted and served. */
    int fd = ts_dns_tcp_connect(port);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(ts_dns_tcp_send(fd, q, (size_t)qlen), 0);
    uint8_t *ans = malloc(BIG_ANSWER + 16);
    int n = -ETIMEDOUT;
    for (int t = 0; t < 200 && n == -ETIMEDOUT; t++) {
        fake_turns(&f, 1);
        n = ts_dns_tcp_recv(fd, ans, BIG_ANSWER + 16, 5);
    }
    ck_assert_msg(n == (int)BIG_ANSWER,
                  "a fresh TCP client after %d that never read and %d idle: %d (%s), "
                  "TCP buffers %zu KiB",
                  GREEDY, IDLE, n, n == 0 ? "closed" : "error", f.ls.tcp_buf_bytes >> 10);
    ck_assert_uint_le(f.ls.tcp_buf_bytes, 32u << 20);
    free(ans);
    close(fd);
    for (int i = 0; i < GREEDY; i++)
        close(greedy[i]);
    for (int i = 0; i < IDLE; i++)
        close(idle[i]);
    fake_turns(&f, 2);
    fake_down(&f);
}
END_TEST

static Suite *limits_suite(void)
{
    Suite *s = suite_create("limits");
    TCase *tc = tcase_create("reload");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc,
                   test_limits_reload_raising_max_queries_admits_more_queries_without_overrunning);
    tcase_add_test(tc,
                   test_limits_reload_lowering_max_queries_under_load_bounds_the_queries_admitted);
    tcase_add_test(tc,
                   test_limits_reload_raising_and_lowering_max_inflight_under_load_takes_effect);
    tcase_add_test(tc,
                   test_limits_reload_raising_and_lowering_max_connections_under_load_takes_effect);
    tcase_add_test(tc,
                   test_limits_reload_raising_and_lowering_max_tcp_clients_under_load_takes_effect);
    tcase_add_test(
        tc, test_limits_reload_raising_and_lowering_cache_size_under_load_answers_every_query);
    suite_add_tcase(s, tc);
    tc = tcase_create("clients");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_limits_answers_a_tcp_query_followed_by_a_zero_length_frame_then_closes);
    tcase_add_test(tc, test_limits_udp_receive_loop_reads_a_bounded_number_of_datagrams_per_turn);
    tcase_add_test(tc, test_limits_clients_that_never_read_cannot_lock_other_tcp_clients_out);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    if (ts_rig_pki_init("dotproxy-test-limits") != 0)
        return EXIT_FAILURE;
    SRunner *sr = srunner_create(limits_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    ts_rig_pki_fini();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
