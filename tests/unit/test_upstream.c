/* SPDX-License-Identifier: MIT */
/* Unit tests of lib/upstream.c: the choice among upstreams (latency with
 * exploration, ordered failover, round robin, the `tried` mask) and health
 * (RTT smoothing, backoff doubling with jitter from the context's PRNG, the
 * probe when a backoff ends, learnt idle limits). No sockets: a loop with a
 * fake clock that moves only when a test says so, and a seeded PRNG. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "dotproxy/config.h"
#include "dotproxy/error.h"
#include "upstream.h"

#define MS 1000u
#define T0 1000000000u /* an arbitrary start, far from 0 */

static uint64_t fake_now;

static uint64_t fake_clock(void)
{
    return fake_now;
}

static void no_turn(void *user)
{
    (void)user;
}

static uint64_t no_due(void *user)
{
    (void)user;
    return UINT64_MAX;
}

static int always_stopped(void *user)
{
    (void)user;
    return 1;
}

typedef struct rig {
    struct dp_loop loop;
    struct dp_logger log; /* silent */
    struct dp_prng prng;
    dotproxy_config *cfg;
    struct dp_upstreams set;
    unsigned probes[DP_MAX_UPSTREAMS];
    unsigned pings[DP_MAX_UPSTREAMS];
} rig;

static void on_probe(struct dp_upstream *up, void *user)
{
    rig *r = user;
    r->probes[up->index]++;
}

static void on_ping(struct dp_upstream *up, void *user)
{
    rig *r = user;
    r->pings[up->index]++;
}

static void rig_up(rig *r, unsigned n, int selection, uint64_t seed)
{
    memset(r, 0, sizeof *r);
    fake_now = T0;
    const struct dp_loop_hooks lh = {no_turn, no_turn, no_due, always_stopped, NULL};
    ck_assert_int_eq(dp_loop_init(&r->loop), 0);
    dp_loop_set_hooks(&r->loop, &lh);
    dp_loop_set_clock(&r->loop, fake_clock);
    ck_assert_uint_eq(r->loop.now_us, T0);
    dp_prng_seed(&r->prng, seed);
    ck_assert_int_eq(dotproxy_config_new(&r->cfg), 0);
    for (unsigned i = 0; i < n; i++) {
        char spec[64];
        snprintf(spec, sizeof spec, "127.0.0.%u@853#up%u.test", i + 1, i);
        ck_assert_int_eq(dotproxy_config_add_upstream(r->cfg, spec), 0);
    }
    ck_assert_int_eq(dotproxy_config_set_selection(r->cfg, selection), 0);
    const struct dp_upstream_hooks uh = {.probe = on_probe, .ping = on_ping, .user = r};
    dp_upstreams_init(&r->set, &r->loop, &r->log, &r->prng, r->cfg, &uh);
    for (unsigned i = 0; i < n; i++) {
        struct dp_upstream *up = dp_upstream_new(&r->set, r->cfg, i);
        ck_assert_ptr_nonnull(up);
        ck_assert_uint_eq(up->index, i);
        r->set.ups[r->set.n++] = up;
    }
}

static void rig_down(rig *r)
{
    for (size_t i = 0; i < r->set.n; i++)
        dp_upstream_free(r->set.ups[i]);
    dp_loop_fini(&r->loop);
    dotproxy_config_free(r->cfg);
}

/* Let time pass: what a loop turn does with the clock and the timers. */
static void advance(rig *r, uint64_t us)
{
    fake_now += us;
    dp_loop_update_time(&r->loop);
    dp_loop_run_timers(&r->loop);
}

static int pick(rig *r, uint32_t tried)
{
    struct dp_upstream *up = dp_upstreams_select(&r->set, tried);
    return up == NULL ? -1 : (int)up->index;
}

/* ---- selection ---- */

START_TEST(test_upstream_latency_tries_unmeasured_ones_first_then_prefers_the_lowest_rtt)
{
    rig r;
    rig_up(&r, 3, DOTPROXY_SELECT_LATENCY, 1);
    ck_assert_int_eq(pick(&r, 0), 0);
    dp_upstream_rtt_sample(r.set.ups[0], 30 * MS);
    ck_assert_int_eq(pick(&r, 0), 1); /* unmeasured beats measured */
    dp_upstream_rtt_sample(r.set.ups[1], 10 * MS);
    ck_assert_int_eq(pick(&r, 0), 2);
    dp_upstream_rtt_sample(r.set.ups[2], 20 * MS);

    /* All measured: the fastest, but one query in 32 explores so that a
     * once-slow upstream can win back its place. */
    unsigned count[3] = {0};
    for (int i = 0; i < 3200; i++)
        count[pick(&r, 0)]++;
    ck_assert_uint_ge(count[1], 3100);
    ck_assert_uint_ge(count[0], 20);
    ck_assert_uint_ge(count[2], 20);
    ck_assert_uint_eq(count[0] + count[1] + count[2], 3200);
    rig_down(&r);
}
END_TEST

START_TEST(test_upstream_rtt_is_smoothed_with_weight_one_eighth)
{
    rig r;
    rig_up(&r, 1, DOTPROXY_SELECT_LATENCY, 1);
    struct dp_upstream *up = r.set.ups[0];
    dp_upstream_rtt_sample(up, 8 * MS);
    ck_assert_uint_eq(up->srtt_us, 8 * MS); /* the first sample is taken as is */
    dp_upstream_rtt_sample(up, 16 * MS);
    ck_assert_uint_eq(up->srtt_us, 9 * MS); /* 7/8 * 8 + 1/8 * 16 */
    dp_upstream_rtt_sample(up, 0);
    ck_assert_uint_gt(up->srtt_us, 0); /* measured stays measured */
    rig_down(&r);
}
END_TEST

START_TEST(
    test_upstream_ordered_fails_over_to_the_next_healthy_one_and_back_once_its_probe_connects)
{
    rig r;
    rig_up(&r, 3, DOTPROXY_SELECT_ORDERED, 1);
    dp_upstream_rtt_sample(r.set.ups[0], 90 * MS); /* slower: order still wins */
    for (int i = 0; i < 100; i++)
        ck_assert_int_eq(pick(&r, 0), 0);
    dp_upstream_connect_failed(r.set.ups[0]);
    ck_assert(!dp_upstream_usable(r.set.ups[0], fake_now));
    ck_assert_int_eq(pick(&r, 0), 1);
    dp_upstream_connect_failed(r.set.ups[1]);
    ck_assert_int_eq(pick(&r, 0), 2);
    /* The first backoff is at most 250 ms + 10 %; then its probe (not a
     * client's query) is tried, and once it connects, the order holds. */
    advance(&r, 275 * MS + 1);
    ck_assert_uint_eq(r.probes[0], 1);
    ck_assert_int_eq(pick(&r, 0), 2);
    dp_upstream_connect_succeeded(r.set.ups[0]);
    ck_assert_int_eq(pick(&r, 0), 0);
    rig_down(&r);
}
END_TEST

START_TEST(test_upstream_a_failed_unmeasured_one_gets_one_trial_per_backoff_not_every_query)
{
    rig r;
    rig_up(&r, 2, DOTPROXY_SELECT_LATENCY, 3);
    dp_upstream_rtt_sample(r.set.ups[1], 20 * MS); /* 0 is unmeasured */
    ck_assert_int_eq(pick(&r, 0), 0);              /* unmeasured first */
    dp_upstream_protocol_failed(r.set.ups[0]);     /* it closed without answering */
    for (int i = 0; i < 50; i++)
        ck_assert_int_eq(pick(&r, 0), 1);
    ck_assert_int_eq(dp_upstream_healthy(r.set.ups[0], fake_now), 0);
    /* Backoff over: exactly one query is its trial, the rest go on to 1. */
    advance(&r, 275 * MS + 1);
    ck_assert_int_eq(pick(&r, 0), 0);
    for (int i = 0; i < 50; i++)
        ck_assert_int_eq(pick(&r, 0), 1);
    /* A handshake alone proves nothing after a protocol failure... */
    dp_upstream_connect_succeeded(r.set.ups[0]);
    ck_assert_uint_eq(r.set.ups[0]->fails, 1);
    ck_assert_int_eq(pick(&r, 0), 1);
    /* ...an answer does; the backoff's probe is not a handshake either. */
    ck_assert_uint_eq(r.probes[0], 0);
    dp_upstream_answered(r.set.ups[0], fake_now);
    ck_assert_int_eq(dp_upstream_healthy(r.set.ups[0], fake_now), 1);
    ck_assert_int_eq(pick(&r, 0), 0);
    /* Tried ones are skipped even when healthy. */
    ck_assert_int_eq(pick(&r, 1u << 1), 0);
    rig_down(&r);
}
END_TEST

START_TEST(test_upstream_a_slow_connect_sends_new_queries_elsewhere_until_it_ends)
{
    rig r;
    rig_up(&r, 2, DOTPROXY_SELECT_ORDERED, 4);
    ck_assert_int_eq(pick(&r, 0), 0);
    dp_upstream_connect_slow(r.set.ups[0]);
    ck_assert_int_eq(pick(&r, 0), 1);
    ck_assert_int_eq(dp_upstreams_any_usable(&r.set, 1u << 1), 1); /* as a last resort */
    ck_assert_int_eq(pick(&r, 1u << 1), 0);
    dp_upstream_connect_succeeded(r.set.ups[0]);
    ck_assert_int_eq(pick(&r, 0), 0);
    dp_upstream_connect_slow(r.set.ups[0]);
    dp_upstream_connect_failed(r.set.ups[0]);
    ck_assert_int_eq(r.set.ups[0]->slow, 0);
    ck_assert_int_eq(pick(&r, 0), 1);
    rig_down(&r);
}
END_TEST

START_TEST(test_upstream_round_robin_takes_the_usable_ones_in_turn)
{
    rig r;
    rig_up(&r, 3, DOTPROXY_SELECT_ROUND_ROBIN, 1);
    int seq[6];
    for (int i = 0; i < 6; i++)
        seq[i] = pick(&r, 0);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(seq[i], seq[i + 3]);
        for (int k = 0; k < i; k++)
            ck_assert_int_ne(seq[i], seq[k]);
    }
    dp_upstream_connect_failed(r.set.ups[1]);
    for (int i = 0; i < 10; i++) {
        int a = pick(&r, 0), b = pick(&r, 0);
        ck_assert_int_ne(a, 1);
        ck_assert_int_ne(b, 1);
        ck_assert_int_ne(a, b);
    }
    rig_down(&r);
}
END_TEST

START_TEST(test_upstream_select_skips_tried_ones_and_gives_none_when_all_are_out)
{
    rig r;
    rig_up(&r, 3, DOTPROXY_SELECT_LATENCY, 1);
    ck_assert_int_eq(pick(&r, 1u << 0 | 1u << 1), 2);
    ck_assert_int_eq(pick(&r, 1u << 0 | 1u << 2), 1);
    ck_assert_int_eq(pick(&r, 7u), -1);
    for (int i = 0; i < 3; i++)
        dp_upstream_connect_failed(r.set.ups[i]);
    ck_assert_int_eq(pick(&r, 0), -1);
    rig_down(&r);
}
END_TEST

/* ---- health ---- */

START_TEST(test_upstream_backoff_doubles_from_250_ms_to_5_s_with_jitter_and_ends_with_a_probe)
{
    rig r;
    rig_up(&r, 1, DOTPROXY_SELECT_LATENCY, 99);
    struct dp_upstream *up = r.set.ups[0];
    uint64_t base = 250 * MS;
    for (unsigned k = 1; k <= 8; k++) {
        dp_upstream_connect_failed(up);
        ck_assert_uint_eq(up->fails, k);
        uint64_t wait = up->down_until_us - fake_now;
        /* RFC-less but documented: +-10 % around the doubling base. */
        ck_assert_uint_ge(wait, base - base / 10);
        ck_assert_uint_le(wait, base - base / 10 + base / 5);
        ck_assert(dp_timer_armed(&up->probe));
        unsigned before = r.probes[0];
        advance(&r, wait - 1);
        ck_assert_uint_eq(r.probes[0], before); /* not a moment early */
        ck_assert(!dp_upstream_usable(up, fake_now));
        advance(&r, 1);
        ck_assert_uint_eq(r.probes[0], before + 1);
        ck_assert(dp_upstream_usable(up, fake_now));
        base = base * 2 > 5000 * MS ? 5000 * MS : base * 2;
    }
    ck_assert_uint_eq(up->backoff_us, 5000 * MS);
    rig_down(&r);
}
END_TEST

/* Idle health: an upstream that stops answering while it is idle is
 * checked about every 5 s (+-10 %) counted from its last answer: with a query
 * on its open connection (ping), or with a handshake (probe) when it has
 * none; never while answers flow, never while its backoff paces probes. */
START_TEST(test_upstream_idle_check_pings_an_open_connection_and_costs_nothing_while_busy)
{
    rig r;
    rig_up(&r, 1, DOTPROXY_SELECT_LATENCY, 7);
    struct dp_upstream *up = r.set.ups[0];
    dp_upstreams_set(&r.set, r.set.ups, 1);
    up->pool.n_conns = 1; /* a connection is open (the pool's business) */
    for (int i = 0; i < 40; i++) {
        advance(&r, 500 * MS);
        up->pool.n_queries++;
        dp_upstream_answered(up, fake_now);
    }
    ck_assert_uint_eq(r.pings[0], 0);
    ck_assert_uint_eq(r.probes[0], 0);
    /* Idle from here: the first check comes 4.5..5.5 s after the last answer. */
    uint64_t last = fake_now, first = 0;
    while (r.pings[0] == 0 && fake_now - last < 10000 * MS)
        advance(&r, 10 * MS);
    first = fake_now - last;
    ck_assert_uint_eq(r.pings[0], 1);
    ck_assert_uint_ge(first, 4500 * MS);
    ck_assert_uint_le(first, 5500 * MS + 10 * MS);
    ck_assert_uint_eq(r.probes[0], 0); /* no new handshake for an open connection */
    /* Unanswered, it is checked once per period, no more. */
    for (int i = 0; i < 200; i++)
        advance(&r, 100 * MS);
    ck_assert_uint_ge(r.pings[0], 1 + 3);
    ck_assert_uint_le(r.pings[0], 1 + 5);
    /* Without a connection, the check is a handshake. */
    up->pool.n_conns = 0;
    unsigned pings = r.pings[0];
    for (int i = 0; i < 60; i++)
        advance(&r, 100 * MS);
    ck_assert_uint_eq(r.pings[0], pings);
    ck_assert_uint_ge(r.probes[0], 1);
    /* Failing: its backoff's probe alone (one, when the backoff ends). */
    up->pool.n_conns = 1;
    dp_upstream_connect_failed(up);
    pings = r.pings[0];
    unsigned probes = r.probes[0];
    for (int i = 0; i < 100; i++)
        advance(&r, 100 * MS);
    ck_assert_uint_eq(r.pings[0], pings);
    ck_assert_uint_eq(r.probes[0], probes); /* probe_fire: only without a connection */
    rig_down(&r);
}
END_TEST

/* The waits of n failures in a row on a fresh rig seeded with seed. */
static void backoff_waits(uint64_t seed, uint64_t *waits, int n)
{
    rig r;
    rig_up(&r, 1, DOTPROXY_SELECT_LATENCY, seed);
    for (int i = 0; i < n; i++) {
        dp_upstream_connect_failed(r.set.ups[0]);
        waits[i] = r.set.ups[0]->down_until_us - fake_now;
    }
    rig_down(&r);
}

START_TEST(test_upstream_backoff_jitter_comes_from_the_context_prng)
{
    uint64_t a[8], b[8], c[8];
    backoff_waits(1234, a, 8);
    backoff_waits(1234, b, 8);
    backoff_waits(4321, c, 8);
    ck_assert_mem_eq(a, b, sizeof a); /* replayable */
    ck_assert_msg(memcmp(a, c, sizeof a) != 0, "jitter does not depend on the seed");
    /* Jitter, not a constant offset: the waits at the 5 s cap differ. */
    ck_assert_msg(a[5] != a[6] || a[6] != a[7], "no jitter at the cap");
}
END_TEST

START_TEST(test_upstream_success_ends_the_backoff_and_cancels_the_probe)
{
    rig r;
    rig_up(&r, 1, DOTPROXY_SELECT_LATENCY, 5);
    struct dp_upstream *up = r.set.ups[0];
    dp_upstream_connect_failed(up);
    dp_upstream_connect_failed(up);
    dp_upstream_connect_succeeded(up);
    ck_assert_uint_eq(up->fails, 0);
    ck_assert(dp_upstream_usable(up, fake_now));
    ck_assert(!dp_timer_armed(&up->probe));
    advance(&r, 10000 * MS);
    ck_assert_uint_eq(r.probes[0], 0);
    /* The next failure starts from 250 ms again. */
    dp_upstream_connect_failed(up);
    ck_assert_uint_le(up->down_until_us - fake_now, 275 * MS);
    rig_down(&r);
}
END_TEST

START_TEST(test_upstream_learns_the_idle_limit_both_ways_within_bounds)
{
    rig r;
    rig_up(&r, 1, DOTPROXY_SELECT_LATENCY, 5);
    struct dp_upstream *up = r.set.ups[0];
    ck_assert_int_eq(dp_upstream_learn_idle_limit(up, 0), 0);
    ck_assert_uint_eq(up->idle_limit_us, 0);
    ck_assert_int_eq(dp_upstream_learn_idle_limit(up, 10000 * MS), 1);
    /* The latest word holds: a larger limit raises it again. */
    ck_assert_int_eq(dp_upstream_learn_idle_limit(up, 12000 * MS), 1);
    ck_assert_uint_eq(up->idle_limit_us, 12000 * MS);
    ck_assert_int_eq(dp_upstream_learn_idle_limit(up, 12000 * MS), 0);
    /* Never below 1 s (keepalive TIMEOUT=1 would mean 90 ms). */
    ck_assert_int_eq(dp_upstream_learn_idle_limit(up, 90 * MS), 1);
    ck_assert_uint_eq(up->idle_limit_us, 1000 * MS);
    ck_assert_int_eq(dp_upstream_learn_idle_limit(up, 8000 * MS), 1);
    ck_assert_uint_eq(up->idle_limit_us, 8000 * MS);

    dotproxy_upstream_stats st;
    memset(&st, 0, sizeof st);
    dp_upstream_rtt_sample(up, 3 * MS);
    dp_upstream_describe(up, fake_now, &st);
    ck_assert_str_eq(st.label, "127.0.0.1@853#up0.test");
    ck_assert_int_eq(st.healthy, 1);
    ck_assert_uint_eq(st.idle_limit_us, 8000 * MS);
    ck_assert_uint_eq(st.srtt_us, 3 * MS);
    dp_upstream_connect_failed(up);
    dp_upstream_describe(up, fake_now, &st);
    ck_assert_int_eq(st.healthy, 0);
    ck_assert_uint_eq(st.consecutive_failures, 1);
    rig_down(&r);
}
END_TEST

/* The log lines of a health test, as a daemon at level info gets them. */
static struct {
    unsigned n;
    int level[200];
    char text[200][300];
} told;

static void tell(int level, const char *msg, void *user)
{
    (void)user;
    if (told.n < 200) {
        told.level[told.n] = level;
        snprintf(told.text[told.n], sizeof told.text[0], "%s", msg);
    }
    told.n++;
}

/* An upstream down for 10 minutes, failing every 5 s (as its probes do): it
 * is told once when it goes down, with why, then at most once a minute with
 * the count, and once when it is back; each failure only at debug level. */
START_TEST(test_upstream_a_down_one_is_told_once_then_once_a_minute_then_when_back)
{
    rig r;
    rig_up(&r, 1, DOTPROXY_SELECT_LATENCY, 11);
    r.log.fn = tell;
    r.log.max_level = DOTPROXY_LOG_INFO;
    memset(&told, 0, sizeof told);
    struct dp_upstream *up = r.set.ups[0];
    for (unsigned i = 0; i < 120; i++) {
        dp_upstream_failure_reason(up, "connect: Connection refused");
        dp_upstream_connect_failed(up);
        advance(&r, 5000 * MS);
    }
    ck_assert_uint_ge(told.n, 1);
    ck_assert_int_eq(told.level[0], DOTPROXY_LOG_WARN);
    ck_assert_str_eq(told.text[0], "upstream 127.0.0.1@853#up0.test: connect: Connection refused; "
                                   "down: retried with backoff, failures summed up once a minute");
    /* 600 s: a summary at 60 s, 120 s, ... 595 s at most. */
    ck_assert_uint_le(told.n, 1 + 10);
    ck_assert_uint_ge(told.n, 1 + 9);
    ck_assert_int_eq(told.level[1], DOTPROXY_LOG_WARN);
    ck_assert_str_eq(told.text[1], "upstream 127.0.0.1@853#up0.test still down after 60 s: 12 more "
                                   "failure(s) in 60 s, the last: connect: Connection refused");
    unsigned before = told.n;
    dp_upstream_answered(up, fake_now);
    ck_assert_uint_eq(told.n, before + 1);
    ck_assert_int_eq(told.level[before], DOTPROXY_LOG_INFO);
    ck_assert_str_eq(told.text[before],
                     "upstream 127.0.0.1@853#up0.test is back after 600 s down, 120 failure(s)");
    /* Once back, the next failure is told in full again. */
    dp_upstream_connect_failed(up);
    ck_assert_uint_eq(told.n, before + 2);
    ck_assert_str_eq(told.text[before + 1], "upstream 127.0.0.1@853#up0.test: failed; down: "
                                            "retried with backoff, failures summed up once a "
                                            "minute");
    rig_down(&r);
}
END_TEST

static Suite *upstream_suite(void)
{
    Suite *s = suite_create("upstream");
    TCase *tc = tcase_create("select");
    tcase_add_test(tc,
                   test_upstream_latency_tries_unmeasured_ones_first_then_prefers_the_lowest_rtt);
    tcase_add_test(tc, test_upstream_rtt_is_smoothed_with_weight_one_eighth);
    tcase_add_test(
        tc,
        test_upstream_ordered_fails_over_to_the_next_healthy_one_and_back_once_its_probe_connects);
    tcase_add_test(tc, test_upstream_round_robin_takes_the_usable_ones_in_turn);
    tcase_add_test(tc, test_upstream_select_skips_tried_ones_and_gives_none_when_all_are_out);
    suite_add_tcase(s, tc);
    tc = tcase_create("health");
    tcase_add_test(
        tc, test_upstream_backoff_doubles_from_250_ms_to_5_s_with_jitter_and_ends_with_a_probe);
    tcase_add_test(tc, test_upstream_backoff_jitter_comes_from_the_context_prng);
    tcase_add_test(tc, test_upstream_success_ends_the_backoff_and_cancels_the_probe);
    tcase_add_test(tc,
                   test_upstream_idle_check_pings_an_open_connection_and_costs_nothing_while_busy);
    tcase_add_test(tc, test_upstream_learns_the_idle_limit_both_ways_within_bounds);
    tcase_add_test(
        tc, test_upstream_a_failed_unmeasured_one_gets_one_trial_per_backoff_not_every_query);
    tcase_add_test(tc, test_upstream_a_slow_connect_sends_new_queries_elsewhere_until_it_ends);
    tcase_add_test(tc, test_upstream_a_down_one_is_told_once_then_once_a_minute_then_when_back);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(upstream_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
