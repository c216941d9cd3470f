/* SPDX-License-Identifier: MIT */
/* dotproxy_config: every setter takes the ends of its documented range and
 * refuses what lies outside with DOTPROXY_EINVAL (leaving the value as it
 * was), every getter returns what was set and, on a fresh config, the default
 * the header documents; the adders' limits; dotproxy_config_dup copies deeply.
 *
 * The documented defaults are written here on purpose: this is the test that
 * the library's one home for them (dotproxy_config_new) still says what
 * include/dotproxy/config.h promises. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dotproxy/block.h"
#include "dotproxy/config.h"
#include "dotproxy/error.h"
#include "dotproxy/tls.h"

static dotproxy_config *fresh(void)
{
    dotproxy_config *cfg = NULL;

    ck_assert_int_eq(dotproxy_config_new(&cfg), 0);
    ck_assert_ptr_nonnull(cfg);
    return cfg;
}

/* ---- the single-number settings, as one table ---- */

struct number_setting {
    const char *name;
    int (*set)(dotproxy_config *, unsigned);
    unsigned (*get)(const dotproxy_config *);
    unsigned def, min, max;
};

static int set_cache_size(dotproxy_config *cfg, unsigned n)
{
    return dotproxy_config_set_cache_size(cfg, n);
}

static unsigned get_cache_size(const dotproxy_config *cfg)
{
    return (unsigned)dotproxy_config_get_cache_size(cfg);
}

static const struct number_setting numbers[] = {
    {"timeout_ms", dotproxy_config_set_timeout_ms, dotproxy_config_get_timeout_ms, 4000, 1, 600000},
    {"idle_timeout_ms", dotproxy_config_set_idle_timeout_ms, dotproxy_config_get_idle_timeout_ms,
     8000, 1, 3600000},
    {"tcp_idle_timeout_ms", dotproxy_config_set_tcp_idle_timeout_ms,
     dotproxy_config_get_tcp_idle_timeout_ms, 10000, 1, 3600000},
    {"tls_idle_timeout_ms", dotproxy_config_set_tls_idle_timeout_ms,
     dotproxy_config_get_tls_idle_timeout_ms, 10000, 1, 3600000},
    {"handshake_timeout_ms", dotproxy_config_set_handshake_timeout_ms,
     dotproxy_config_get_handshake_timeout_ms, 5000, 1, 60000},
    {"max_connections", dotproxy_config_set_max_connections, dotproxy_config_get_max_connections, 2,
     1, 64},
    {"max_inflight", dotproxy_config_set_max_inflight, dotproxy_config_get_max_inflight, 1024, 1,
     32768},
    {"max_queries", dotproxy_config_set_max_queries, dotproxy_config_get_max_queries, 8192, 16,
     1048576},
    {"max_tcp_clients", dotproxy_config_set_max_tcp_clients, dotproxy_config_get_max_tcp_clients,
     1024, 1, 1048576},
    {"max_client_queries", dotproxy_config_set_max_client_queries,
     dotproxy_config_get_max_client_queries, 4096, 0, 1048576},
    {"stale_max_s", dotproxy_config_set_stale_max_s, dotproxy_config_get_stale_max_s, 86400, 0,
     604800},
    {"padding", dotproxy_config_set_padding, dotproxy_config_get_padding, 128, 0, 512},
    {"udp_size", dotproxy_config_set_udp_size, dotproxy_config_get_udp_size, 1232, 512, 4096},
    {"cache_size", set_cache_size, get_cache_size, 0, 0, 268435456},
    {"block_ttl", dotproxy_config_set_block_ttl, dotproxy_config_get_block_ttl, 60, 0, 86400},
    {"blocklist_check_s", dotproxy_config_set_blocklist_check_s,
     dotproxy_config_get_blocklist_check_s, 60, 0, 86400},
    {"feed_refresh_s", dotproxy_config_set_feed_refresh_s, dotproxy_config_get_feed_refresh_s, 3600,
     1, 604800},
    {"feed_max_size", dotproxy_config_set_feed_max_size, dotproxy_config_get_feed_max_size,
     268435456, 1024, 4294967295u},
};
#define N_NUMBERS (sizeof numbers / sizeof numbers[0])

START_TEST(test_config_number_getter_returns_documented_default)
{
    const struct number_setting *s = &numbers[_i];
    dotproxy_config *cfg = fresh();

    ck_assert_msg(s->get(cfg) == s->def, "%s: default %u, documented %u", s->name, s->get(cfg),
                  s->def);
    ck_assert_uint_eq(s->get(NULL), 0);
    ck_assert_int_eq(s->set(NULL, s->def), DOTPROXY_EINVAL);
    dotproxy_config_free(cfg);
}
END_TEST

START_TEST(test_config_number_setter_takes_both_ends_of_its_range)
{
    const struct number_setting *s = &numbers[_i];
    dotproxy_config *cfg = fresh();

    ck_assert_msg(s->set(cfg, s->min) == 0, "%s refuses its minimum %u", s->name, s->min);
    ck_assert_uint_eq(s->get(cfg), s->min);
    ck_assert_msg(s->set(cfg, s->max) == 0, "%s refuses its maximum %u", s->name, s->max);
    ck_assert_uint_eq(s->get(cfg), s->max);
    dotproxy_config_free(cfg);
}
END_TEST

START_TEST(test_config_number_setter_refuses_outside_its_range_and_keeps_the_value)
{
    const struct number_setting *s = &numbers[_i];
    dotproxy_config *cfg = fresh();
    unsigned before = s->get(cfg);

    ck_assert_msg(s->set(cfg, s->max + 1) == DOTPROXY_EINVAL, "%s takes %u", s->name, s->max + 1);
    ck_assert_uint_eq(s->get(cfg), before);
    if (s->min > 0) {
        ck_assert_msg(s->set(cfg, s->min - 1) == DOTPROXY_EINVAL, "%s takes %u", s->name,
                      s->min - 1);
        ck_assert_uint_eq(s->get(cfg), before);
    }
    dotproxy_config_free(cfg);
}
END_TEST

/* The public bound macros are the ones the setters apply. */
START_TEST(test_config_bound_macros_match_the_setters)
{
    dotproxy_config *cfg = fresh();

    ck_assert_int_eq(dotproxy_config_set_timeout_ms(cfg, DOTPROXY_TIMEOUT_MS_MAX), 0);
    ck_assert_int_eq(dotproxy_config_set_timeout_ms(cfg, DOTPROXY_TIMEOUT_MS_MAX + 1),
                     DOTPROXY_EINVAL);
    ck_assert_int_eq(dotproxy_config_set_idle_timeout_ms(cfg, DOTPROXY_IDLE_TIMEOUT_MS_MAX), 0);
    ck_assert_int_eq(dotproxy_config_set_tcp_idle_timeout_ms(cfg, DOTPROXY_IDLE_TIMEOUT_MS_MAX), 0);
    ck_assert_int_eq(
        dotproxy_config_set_handshake_timeout_ms(cfg, DOTPROXY_HANDSHAKE_TIMEOUT_MS_MAX + 1),
        DOTPROXY_EINVAL);
    ck_assert_int_eq(dotproxy_config_set_max_queries(cfg, DOTPROXY_MAX_QUERIES_MIN - 1),
                     DOTPROXY_EINVAL);
    ck_assert_int_eq(dotproxy_config_set_cache_size(cfg, DOTPROXY_CACHE_SIZE_MAX), 0);
    ck_assert_int_eq(dotproxy_config_set_cache_size(cfg, (size_t)DOTPROXY_CACHE_SIZE_MAX + 1),
                     DOTPROXY_EINVAL);
    ck_assert_int_eq(dotproxy_config_set_padding(cfg, DOTPROXY_PADDING_MAX + 1), DOTPROXY_EINVAL);
    ck_assert_int_eq(dotproxy_config_set_stale_max_s(cfg, DOTPROXY_CACHE_TTL_MAX + 1),
                     DOTPROXY_EINVAL);
    dotproxy_config_free(cfg);
}
END_TEST

START_TEST(test_config_max_inflight_takes_powers_of_two_only)
{
    dotproxy_config *cfg = fresh();

    for (unsigned n = 1; n <= 32768; n *= 2) {
        ck_assert_int_eq(dotproxy_config_set_max_inflight(cfg, n), 0);
        ck_assert_uint_eq(dotproxy_config_get_max_inflight(cfg), n);
    }
    ck_assert_int_eq(dotproxy_config_set_max_inflight(cfg, 1000), DOTPROXY_EINVAL);
    ck_assert_int_eq(dotproxy_config_set_max_inflight(cfg, 0), DOTPROXY_EINVAL);
    ck_assert_int_eq(dotproxy_config_set_max_inflight(cfg, 65536), DOTPROXY_EINVAL);
    ck_assert_uint_eq(dotproxy_config_get_max_inflight(cfg), 32768);
    dotproxy_config_free(cfg);
}
END_TEST

/* ---- pairs and tuples ---- */

START_TEST(test_config_cache_ttl_defaults_bounds_and_order)
{
    dotproxy_config *cfg = fresh();
    unsigned lo = 99, hi = 99;

    ck_assert_int_eq(dotproxy_config_get_cache_ttl(cfg, &lo, &hi), 0);
    ck_assert_uint_eq(lo, 0);
    ck_assert_uint_eq(hi, 86400);
    ck_assert_int_eq(dotproxy_config_set_cache_ttl(cfg, 0, 604800), 0);
    ck_assert_int_eq(dotproxy_config_set_cache_ttl(cfg, 604800, 604800), 0);
    ck_assert_int_eq(dotproxy_config_get_cache_ttl(cfg, &lo, NULL), 0);
    ck_assert_uint_eq(lo, 604800);
    ck_assert_int_eq(dotproxy_config_set_cache_ttl(cfg, 0, 604801), DOTPROXY_EINVAL);
    ck_assert_int_eq(dotproxy_config_set_cache_ttl(cfg, 61, 60), DOTPROXY_EINVAL);
    ck_assert_int_eq(dotproxy_config_get_cache_ttl(cfg, &lo, &hi), 0);
    ck_assert_uint_eq(lo, 604800);
    ck_assert_uint_eq(hi, 604800);
    ck_assert_int_eq(dotproxy_config_get_cache_ttl(NULL, &lo, &hi), DOTPROXY_EINVAL);
    dotproxy_config_free(cfg);
}
END_TEST

START_TEST(test_config_rate_limit_defaults_bounds_and_burst)
{
    dotproxy_config *cfg = fresh();
    unsigned qps = 9, burst = 9, v4 = 9, v6 = 9;
    int action = 9, loop = 9;

    ck_assert_int_eq(dotproxy_config_get_rate_limit(cfg, &qps, &burst, &v4, &v6, &action, &loop),
                     0);
    ck_assert_uint_eq(qps, 0);
    ck_assert_uint_eq(burst, 0);
    ck_assert_uint_eq(v4, 32);
    ck_assert_uint_eq(v6, 128);
    ck_assert_int_eq(action, DOTPROXY_LIMIT_REFUSE);
    ck_assert_int_eq(loop, 0);

    /* Both ends of every range. */
    ck_assert_int_eq(
        dotproxy_config_set_rate_limit(cfg, 10000000, 1, 8, 16, DOTPROXY_LIMIT_DROP, 7), 0);
    ck_assert_int_eq(dotproxy_config_get_rate_limit(cfg, &qps, &burst, &v4, &v6, &action, &loop),
                     0);
    ck_assert_uint_eq(qps, 10000000);
    ck_assert_uint_eq(burst, 1);
    ck_assert_uint_eq(v4, 8);
    ck_assert_uint_eq(v6, 16);
    ck_assert_int_eq(action, DOTPROXY_LIMIT_DROP);
    ck_assert_int_eq(loop, 1); /* any nonzero is "on", read back as 1 */
    ck_assert_int_eq(dotproxy_config_set_rate_limit(cfg, 100, 0, 32, 128, DOTPROXY_LIMIT_REFUSE, 0),
                     0);
    ck_assert_int_eq(dotproxy_config_get_rate_limit(cfg, NULL, &burst, NULL, NULL, NULL, NULL), 0);
    ck_assert_uint_eq(burst, 100); /* burst 0 means qps */

    /* Outside: refused, nothing changed. */
    ck_assert_int_eq(dotproxy_config_set_rate_limit(cfg, 10000001, 0, 32, 128, 0, 0),
                     DOTPROXY_EINVAL);
    ck_assert_int_eq(dotproxy_config_set_rate_limit(cfg, 1, 0, 7, 128, 0, 0), DOTPROXY_EINVAL);
    ck_assert_int_eq(dotproxy_config_set_rate_limit(cfg, 1, 0, 33, 128, 0, 0), DOTPROXY_EINVAL);
    ck_assert_int_eq(dotproxy_config_set_rate_limit(cfg, 1, 0, 32, 15, 0, 0), DOTPROXY_EINVAL);
    ck_assert_int_eq(dotproxy_config_set_rate_limit(cfg, 1, 0, 32, 129, 0, 0), DOTPROXY_EINVAL);
    ck_assert_int_eq(dotproxy_config_set_rate_limit(cfg, 1, 0, 32, 128, 2, 0), DOTPROXY_EINVAL);
    ck_assert_int_eq(dotproxy_config_get_rate_limit(cfg, &qps, &burst, &v4, &v6, &action, &loop),
                     0);
    ck_assert_uint_eq(qps, 100);
    ck_assert_uint_eq(v4, 32);
    ck_assert_int_eq(dotproxy_config_get_rate_limit(NULL, &qps, NULL, NULL, NULL, NULL, NULL),
                     DOTPROXY_EINVAL);
    dotproxy_config_free(cfg);
}
END_TEST

/* ---- enums, flags and strings ---- */

START_TEST(test_config_selection_takes_the_three_policies_only)
{
    dotproxy_config *cfg = fresh();

    ck_assert_int_eq(dotproxy_config_get_selection(cfg), DOTPROXY_SELECT_LATENCY);
    ck_assert_int_eq(dotproxy_config_set_selection(cfg, DOTPROXY_SELECT_ORDERED), 0);
    ck_assert_int_eq(dotproxy_config_get_selection(cfg), DOTPROXY_SELECT_ORDERED);
    ck_assert_int_eq(dotproxy_config_set_selection(cfg, DOTPROXY_SELECT_ROUND_ROBIN), 0);
    ck_assert_int_eq(dotproxy_config_get_selection(cfg), DOTPROXY_SELECT_ROUND_ROBIN);
    ck_assert_int_eq(dotproxy_config_set_selection(cfg, 3), DOTPROXY_EINVAL);
    ck_assert_int_eq(dotproxy_config_set_selection(cfg, -1), DOTPROXY_EINVAL);
    ck_assert_int_eq(dotproxy_config_get_selection(cfg), DOTPROXY_SELECT_ROUND_ROBIN);
    dotproxy_config_free(cfg);
}
END_TEST

START_TEST(test_config_flags_default_off_and_read_back_as_one)
{
    dotproxy_config *cfg = fresh();

    ck_assert_int_eq(dotproxy_config_get_keep_ecs(cfg), 0);
    ck_assert_int_eq(dotproxy_config_get_reuseport(cfg), 0);
    ck_assert_int_eq(dotproxy_config_set_keep_ecs(cfg, 42), 0);
    ck_assert_int_eq(dotproxy_config_set_reuseport(cfg, -1), 0);
    ck_assert_int_eq(dotproxy_config_get_keep_ecs(cfg), 1);
    ck_assert_int_eq(dotproxy_config_get_reuseport(cfg), 1);
    ck_assert_int_eq(dotproxy_config_set_keep_ecs(cfg, 0), 0);
    ck_assert_int_eq(dotproxy_config_get_keep_ecs(cfg), 0);
    dotproxy_config_free(cfg);
}
END_TEST

START_TEST(test_config_log_level_default_and_bounds)
{
    dotproxy_config *cfg = fresh();

    ck_assert_int_eq(dotproxy_config_get_log_level(cfg), DOTPROXY_LOG_INFO);
    ck_assert_int_eq(dotproxy_config_set_log(cfg, NULL, NULL, DOTPROXY_LOG_DEBUG), 0);
    ck_assert_int_eq(dotproxy_config_get_log_level(cfg), DOTPROXY_LOG_DEBUG);
    ck_assert_int_eq(dotproxy_config_set_log(cfg, NULL, NULL, DOTPROXY_LOG_ERR), 0);
    ck_assert_int_eq(dotproxy_config_get_log_level(cfg), DOTPROXY_LOG_ERR);
    ck_assert_int_eq(dotproxy_config_set_log(cfg, NULL, NULL, DOTPROXY_LOG_DEBUG + 1),
                     DOTPROXY_EINVAL);
    ck_assert_int_eq(dotproxy_config_set_log(cfg, NULL, NULL, -1), DOTPROXY_EINVAL);
    ck_assert_int_eq(dotproxy_config_get_log_level(cfg), DOTPROXY_LOG_ERR);
    dotproxy_config_free(cfg);
}
END_TEST

START_TEST(test_config_strings_default_set_and_reset)
{
    dotproxy_config *cfg = fresh();
    char path[] = "/etc/ssl/ca.pem";

    ck_assert_ptr_null(dotproxy_config_get_ca_file(cfg));
    ck_assert_str_eq(dotproxy_config_get_tls_priority(cfg), DOTPROXY_TLS_PRIORITY_DEFAULT);
    ck_assert_int_eq(dotproxy_config_set_ca_file(cfg, path), 0);
    path[0] = 'X'; /* the config holds a copy */
    ck_assert_str_eq(dotproxy_config_get_ca_file(cfg), "/etc/ssl/ca.pem");
    ck_assert_int_eq(dotproxy_config_set_tls_priority(cfg, "NORMAL"), 0);
    ck_assert_str_eq(dotproxy_config_get_tls_priority(cfg), "NORMAL");
    ck_assert_int_eq(dotproxy_config_set_ca_file(cfg, ""), DOTPROXY_EINVAL);
    ck_assert_int_eq(dotproxy_config_set_tls_priority(cfg, ""), DOTPROXY_EINVAL);
    ck_assert_str_eq(dotproxy_config_get_ca_file(cfg), "/etc/ssl/ca.pem");
    ck_assert_int_eq(dotproxy_config_set_ca_file(cfg, NULL), 0);
    ck_assert_int_eq(dotproxy_config_set_tls_priority(cfg, NULL), 0);
    ck_assert_ptr_null(dotproxy_config_get_ca_file(cfg));
    ck_assert_str_eq(dotproxy_config_get_tls_priority(cfg), DOTPROXY_TLS_PRIORITY_DEFAULT);
    ck_assert_ptr_null(dotproxy_config_get_tls_priority(NULL));
    dotproxy_config_free(cfg);
}
END_TEST

/* ---- lists ---- */

START_TEST(test_config_listen_list_reads_back_clears_and_stops_at_its_limit)
{
    dotproxy_config *cfg = fresh();
    dotproxy_endpoint ep;
    char text[128];

    ck_assert_int_eq(dotproxy_config_get_listen(cfg, 0, &ep), DOTPROXY_EINVAL);
    ck_assert_int_eq(dotproxy_config_add_listen(cfg, "127.0.0.1@0"), 0);
    ck_assert_int_eq(dotproxy_config_add_listen(cfg, "::1"), 0);
    ck_assert_int_eq(dotproxy_config_get_listen(cfg, 0, &ep), 0);
    ck_assert_int_gt(dotproxy_endpoint_format(&ep, text, sizeof text), 0);
    ck_assert_str_eq(text, "127.0.0.1@0");
    ck_assert_int_eq(dotproxy_config_get_listen(cfg, 1, &ep), 0);
    ck_assert_int_gt(dotproxy_endpoint_format(&ep, text, sizeof text), 0);
    ck_assert_str_eq(text, "[::1]@53");
    ck_assert_int_eq(dotproxy_config_get_listen(cfg, 2, &ep), DOTPROXY_EINVAL);
    ck_assert_int_eq(dotproxy_config_clear_listen(cfg), 0);
    ck_assert_uint_eq(dotproxy_config_listen_count(cfg), 0);
    ck_assert_int_eq(dotproxy_config_get_listen(cfg, 0, &ep), DOTPROXY_EINVAL);
    for (int i = 0; i < DOTPROXY_LISTEN_MAX; i++) {
        snprintf(text, sizeof text, "127.0.0.%d@53", i + 1);
        ck_assert_int_eq(dotproxy_config_add_listen(cfg, text), 0);
    }
    ck_assert_int_eq(dotproxy_config_add_listen(cfg, "127.0.1.1"), DOTPROXY_ELIMIT);
    ck_assert_int_eq(dotproxy_config_clear_listen(NULL), DOTPROXY_EINVAL);
    dotproxy_config_free(cfg);
}
END_TEST

START_TEST(test_config_upstreams_and_pins_read_back_and_stop_at_their_limits)
{
    static const char pin[] = "sha256/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    dotproxy_config *cfg = fresh();
    dotproxy_endpoint ep;
    char text[384];

    ck_assert_int_eq(dotproxy_config_add_upstream(cfg, "192.0.2.1#dns.example"), 0);
    ck_assert_int_eq(dotproxy_config_get_upstream(cfg, 0, &ep), 0);
    ck_assert_int_gt(dotproxy_endpoint_format(&ep, text, sizeof text), 0);
    ck_assert_str_eq(text, "192.0.2.1@853#dns.example");
    ck_assert_int_eq(dotproxy_config_get_upstream(cfg, 1, &ep), DOTPROXY_EINVAL);
    ck_assert_uint_eq(dotproxy_config_pin_count(cfg, 0), 0);
    ck_assert_int_eq(dotproxy_config_add_pin(cfg, 0, "sha256/AAAA"), DOTPROXY_EINVAL);
    ck_assert_uint_eq(dotproxy_config_pin_count(cfg, 0), 0);
    for (int i = 0; i < DOTPROXY_PINS_MAX; i++)
        ck_assert_int_eq(dotproxy_config_add_pin(cfg, 0, pin), 0);
    ck_assert_int_eq(dotproxy_config_add_pin(cfg, 0, pin), DOTPROXY_ELIMIT);
    ck_assert_uint_eq(dotproxy_config_pin_count(cfg, 0), DOTPROXY_PINS_MAX);
    ck_assert_uint_eq(dotproxy_config_pin_count(cfg, 1), 0);
    ck_assert_int_eq(dotproxy_config_add_pin(cfg, 1, pin), DOTPROXY_EINVAL);
    for (int i = 1; i < DOTPROXY_UPSTREAMS_MAX; i++)
        ck_assert_int_eq(dotproxy_config_add_upstream(cfg, "192.0.2.2"), 0);
    ck_assert_int_eq(dotproxy_config_add_upstream(cfg, "192.0.2.3"), DOTPROXY_ELIMIT);
    ck_assert_uint_eq(dotproxy_config_upstream_count(cfg), DOTPROXY_UPSTREAMS_MAX);
    dotproxy_config_free(cfg);
}
END_TEST

START_TEST(test_config_allow_list_counts_and_stops_at_its_limit)
{
    dotproxy_config *cfg = fresh();
    char cidr[32];

    ck_assert_uint_eq(dotproxy_config_allow_count(cfg), 0);
    ck_assert_int_eq(dotproxy_config_add_allow(cfg, "10.0.0.0/33"), DOTPROXY_EADDR);
    ck_assert_int_eq(dotproxy_config_add_allow(cfg, "::/0"), 0);
    ck_assert_uint_eq(dotproxy_config_allow_count(cfg), 1);
    for (int i = 1; i < DOTPROXY_ALLOW_MAX; i++) {
        snprintf(cidr, sizeof cidr, "10.%d.%d.0/24", i / 256, i % 256);
        ck_assert_int_eq(dotproxy_config_add_allow(cfg, cidr), 0);
    }
    ck_assert_int_eq(dotproxy_config_add_allow(cfg, "192.0.2.0/24"), DOTPROXY_ELIMIT);
    ck_assert_uint_eq(dotproxy_config_allow_count(cfg), DOTPROXY_ALLOW_MAX);
    ck_assert_uint_eq(dotproxy_config_allow_count(NULL), 0);
    dotproxy_config_free(cfg);
}
END_TEST

START_TEST(test_config_dynblock_rules_and_exemptions_read_back_and_stop_at_their_limits)
{
    dotproxy_config *cfg = fresh();
    char rule[64];

    ck_assert_uint_eq(dotproxy_config_dynblock_count(cfg), 0);
    ck_assert_int_eq(dotproxy_config_add_dynblock(cfg, "qps>0"), DOTPROXY_EINVAL);
    ck_assert_int_eq(dotproxy_config_add_dynblock(cfg, "qps>1,window=3601"), DOTPROXY_EINVAL);
    ck_assert_int_eq(dotproxy_config_add_dynblock(cfg, "qps>1,for=86401"), DOTPROXY_EINVAL);
    ck_assert_int_eq(dotproxy_config_add_dynblock(cfg, "qps>1,window=3600,for=86400"), 0);
    for (int i = 1; i < DOTPROXY_DYNBLOCK_RULES_MAX; i++) {
        snprintf(rule, sizeof rule, "nxdomain>%d,action=refuse", i);
        ck_assert_int_eq(dotproxy_config_add_dynblock(cfg, rule), 0);
    }
    ck_assert_int_eq(dotproxy_config_add_dynblock(cfg, "qps>5"), DOTPROXY_ELIMIT);
    ck_assert_uint_eq(dotproxy_config_dynblock_count(cfg), DOTPROXY_DYNBLOCK_RULES_MAX);
    ck_assert_str_eq(dotproxy_config_get_dynblock(cfg, 0), "qps>1,window=3600,for=86400");
    ck_assert_ptr_null(dotproxy_config_get_dynblock(cfg, DOTPROXY_DYNBLOCK_RULES_MAX));
    ck_assert_int_eq(dotproxy_config_add_dynblock_exempt(cfg, "10.0.0.0/33"), DOTPROXY_EADDR);
    for (int i = 0; i < DOTPROXY_DYNBLOCK_EXEMPT_MAX; i++) {
        snprintf(rule, sizeof rule, "10.%d.0.0/16", i);
        ck_assert_int_eq(dotproxy_config_add_dynblock_exempt(cfg, rule), 0);
    }
    ck_assert_int_eq(dotproxy_config_add_dynblock_exempt(cfg, "::1"), DOTPROXY_ELIMIT);
    ck_assert_str_eq(dotproxy_config_get_dynblock_exempt(cfg, 1), "10.1.0.0/16");
    ck_assert_uint_eq(dotproxy_config_dynblock_exempt_count(cfg), DOTPROXY_DYNBLOCK_EXEMPT_MAX);
    dotproxy_config *dup;
    ck_assert_int_eq(dotproxy_config_dup(&dup, cfg), 0);
    ck_assert_uint_eq(dotproxy_config_dynblock_count(dup), DOTPROXY_DYNBLOCK_RULES_MAX);
    dotproxy_config_free(dup);
    dotproxy_config_free(cfg);
}
END_TEST

/* ---- copying ---- */

START_TEST(test_config_dup_copies_every_setting)
{
    dotproxy_config *cfg = fresh(), *copy = NULL;
    dotproxy_endpoint ep;
    unsigned lo, hi, qps;
    char text[384];

    ck_assert_int_eq(dotproxy_config_add_listen(cfg, "127.0.0.1@5353"), 0);
    ck_assert_int_eq(dotproxy_config_add_upstream(cfg, "192.0.2.1#dns.example"), 0);
    ck_assert_int_eq(
        dotproxy_config_add_pin(cfg, 0, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="), 0);
    ck_assert_int_eq(dotproxy_config_add_allow(cfg, "10.0.0.0/8"), 0);
    ck_assert_int_eq(dotproxy_config_set_ca_file(cfg, "/ca.pem"), 0);
    ck_assert_int_eq(dotproxy_config_set_tls_priority(cfg, "NORMAL"), 0);
    ck_assert_int_eq(dotproxy_config_set_timeout_ms(cfg, 1234), 0);
    ck_assert_int_eq(dotproxy_config_set_cache_size(cfg, 77), 0);
    ck_assert_int_eq(dotproxy_config_set_cache_ttl(cfg, 5, 50), 0);
    ck_assert_int_eq(dotproxy_config_set_rate_limit(cfg, 9, 0, 24, 56, DOTPROXY_LIMIT_DROP, 1), 0);

    ck_assert_int_eq(dotproxy_config_dup(&copy, cfg), 0);
    ck_assert_ptr_nonnull(copy);
    ck_assert_uint_eq(dotproxy_config_listen_count(copy), 1);
    ck_assert_int_eq(dotproxy_config_get_listen(copy, 0, &ep), 0);
    ck_assert_int_gt(dotproxy_endpoint_format(&ep, text, sizeof text), 0);
    ck_assert_str_eq(text, "127.0.0.1@5353");
    ck_assert_int_eq(dotproxy_config_get_upstream(copy, 0, &ep), 0);
    ck_assert_int_gt(dotproxy_endpoint_format(&ep, text, sizeof text), 0);
    ck_assert_str_eq(text, "192.0.2.1@853#dns.example");
    ck_assert_uint_eq(dotproxy_config_pin_count(copy, 0), 1);
    ck_assert_uint_eq(dotproxy_config_allow_count(copy), 1);
    ck_assert_uint_eq(dotproxy_config_get_timeout_ms(copy), 1234);
    ck_assert_uint_eq(dotproxy_config_get_cache_size(copy), 77);
    ck_assert_int_eq(dotproxy_config_get_cache_ttl(copy, &lo, &hi), 0);
    ck_assert_uint_eq(lo, 5);
    ck_assert_uint_eq(hi, 50);
    ck_assert_int_eq(dotproxy_config_get_rate_limit(copy, &qps, NULL, NULL, NULL, NULL, NULL), 0);
    ck_assert_uint_eq(qps, 9);

    /* Strings are the copy's own: they outlive the original. */
    ck_assert_ptr_ne(dotproxy_config_get_ca_file(copy), dotproxy_config_get_ca_file(cfg));
    dotproxy_config_free(cfg);
    ck_assert_str_eq(dotproxy_config_get_ca_file(copy), "/ca.pem");
    ck_assert_str_eq(dotproxy_config_get_tls_priority(copy), "NORMAL");
    dotproxy_config_free(copy);
}
END_TEST

START_TEST(test_config_dup_is_independent_of_its_source)
{
    dotproxy_config *cfg = fresh(), *copy = NULL;

    ck_assert_int_eq(dotproxy_config_add_listen(cfg, "127.0.0.1@0"), 0);
    ck_assert_int_eq(dotproxy_config_dup(&copy, cfg), 0);
    ck_assert_int_eq(dotproxy_config_clear_listen(copy), 0);
    ck_assert_int_eq(dotproxy_config_set_timeout_ms(copy, 1), 0);
    ck_assert_int_eq(dotproxy_config_set_ca_file(copy, "/other.pem"), 0);
    ck_assert_uint_eq(dotproxy_config_listen_count(cfg), 1);
    ck_assert_uint_eq(dotproxy_config_get_timeout_ms(cfg), 4000);
    ck_assert_ptr_null(dotproxy_config_get_ca_file(cfg));
    ck_assert_int_eq(dotproxy_config_set_padding(cfg, 0), 0);
    ck_assert_uint_eq(dotproxy_config_get_padding(copy), 128);
    dotproxy_config_free(copy);
    dotproxy_config_free(cfg);
}
END_TEST

START_TEST(test_config_dup_refuses_null)
{
    dotproxy_config *cfg = fresh(), *copy = (dotproxy_config *)&copy;

    ck_assert_int_eq(dotproxy_config_dup(NULL, cfg), DOTPROXY_EINVAL);
    ck_assert_int_eq(dotproxy_config_dup(&copy, NULL), DOTPROXY_EINVAL);
    ck_assert_ptr_eq(copy, (dotproxy_config *)&copy); /* untouched on failure */
    dotproxy_config_free(cfg);
}
END_TEST

/* A copy holds its own reference to a shared cache: freeing the source and
 * the caller's handle leaves it usable (ASan/valgrind catch the opposite). */
START_TEST(test_config_dup_takes_its_own_shared_cache_reference)
{
    dotproxy_config *cfg = fresh(), *copy = NULL;
    dotproxy_cache *cache = NULL;

    ck_assert_int_eq(dotproxy_config_set_cache_size(cfg, 1000), 0);
    ck_assert_int_eq(dotproxy_cache_new(&cache, cfg), 0);
    ck_assert_int_eq(dotproxy_config_set_shared_cache(cfg, cache), 0);
    dotproxy_cache_free(cache);
    ck_assert_int_eq(dotproxy_config_dup(&copy, cfg), 0);
    dotproxy_config_free(cfg);
    ck_assert_int_eq(dotproxy_config_set_shared_cache(copy, NULL), 0);
    dotproxy_config_free(copy);
}
END_TEST

static Suite *config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("config");

    tcase_add_loop_test(tc, test_config_number_getter_returns_documented_default, 0, N_NUMBERS);
    tcase_add_loop_test(tc, test_config_number_setter_takes_both_ends_of_its_range, 0, N_NUMBERS);
    tcase_add_loop_test(tc, test_config_number_setter_refuses_outside_its_range_and_keeps_the_value,
                        0, N_NUMBERS);
    tcase_add_test(tc, test_config_bound_macros_match_the_setters);
    tcase_add_test(tc, test_config_max_inflight_takes_powers_of_two_only);
    tcase_add_test(tc, test_config_cache_ttl_defaults_bounds_and_order);
    tcase_add_test(tc, test_config_rate_limit_defaults_bounds_and_burst);
    tcase_add_test(tc, test_config_selection_takes_the_three_policies_only);
    tcase_add_test(tc, test_config_flags_default_off_and_read_back_as_one);
    tcase_add_test(tc, test_config_log_level_default_and_bounds);
    tcase_add_test(tc, test_config_strings_default_set_and_reset);
    tcase_add_test(tc, test_config_listen_list_reads_back_clears_and_stops_at_its_limit);
    tcase_add_test(tc, test_config_upstreams_and_pins_read_back_and_stop_at_their_limits);
    tcase_add_test(tc, test_config_allow_list_counts_and_stops_at_its_limit);
    tcase_add_test(tc,
                   test_config_dynblock_rules_and_exemptions_read_back_and_stop_at_their_limits);
    tcase_add_test(tc, test_config_dup_copies_every_setting);
    tcase_add_test(tc, test_config_dup_is_independent_of_its_source);
    tcase_add_test(tc, test_config_dup_refuses_null);
    tcase_add_test(tc, test_config_dup_takes_its_own_shared_cache_reference);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(config_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
