/* SPDX-License-Identifier: MIT */
/* Unit tests of lib/policy.c: the access list (default and configured,
 * prefix boundaries, mapped addresses), the token-bucket rate limit driven by
 * an injected clock, its bounded table under address scans, and the
 * per-client in-flight cap. Addresses are sockaddr values only: no traffic. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "config.h"
#include "dotproxy/config.h"
#include "dotproxy/error.h"
#include "policy.h"

/* Any literal as a sockaddr, the way recvmsg would fill one in. */
static struct sockaddr_storage addr(const char *s)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *in = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, s, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
        in->sin_port = htons(40000);
    } else {
        if (inet_pton(AF_INET6, s, &in6->sin6_addr) != 1)
            ck_abort_msg("bad literal %s", s);
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(40000);
    }
    return ss;
}

static struct sockaddr_storage addr4(uint32_t a)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *in = (struct sockaddr_in *)&ss;
    in->sin_family = AF_INET;
    in->sin_addr.s_addr = htonl(a);
    return ss;
}

static int check_at(struct dp_policy *p, const char *s, uint64_t now)
{
    struct sockaddr_storage ss = addr(s);
    return dp_policy_check(p, (const struct sockaddr *)&ss, now);
}

static int check(struct dp_policy *p, const char *s)
{
    return check_at(p, s, 1000000);
}

static int begin(struct dp_policy *p, const char *s)
{
    struct sockaddr_storage ss = addr(s);
    return dp_policy_inflight_begin(p, (const struct sockaddr *)&ss);
}

static void end(struct dp_policy *p, const char *s)
{
    struct sockaddr_storage ss = addr(s);
    dp_policy_inflight_end(p, (const struct sockaddr *)&ss);
}

static dotproxy_config *config(void)
{
    dotproxy_config *cfg = NULL;
    ck_assert_int_eq(dotproxy_config_new(&cfg), 0);
    return cfg;
}

static struct dp_policy *policy(dotproxy_config *cfg)
{
    struct dp_policy *p = NULL;
    ck_assert_int_eq(dp_policy_new(&p, cfg), 0);
    ck_assert_ptr_nonnull(p);
    dotproxy_config_free(cfg); /* the policy keeps its own copy */
    return p;
}

/* A policy allowing only the given CIDRs (NULL-terminated). */
static struct dp_policy *policy_allowing(const char *const *cidrs)
{
    dotproxy_config *cfg = config();
    for (; *cidrs != NULL; cidrs++)
        ck_assert_int_eq(dotproxy_config_add_allow(cfg, *cidrs), 0);
    return policy(cfg);
}

static struct dp_policy_stats stats(const struct dp_policy *p)
{
    struct dp_policy_stats st;
    dp_policy_stats(p, &st);
    return st;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* ---- access list ---- */

START_TEST(test_policy_default_list_allows_loopback_private_link_local_and_ula)
{
    struct dp_policy *p = policy(config());
    const char *allowed[] = {
        "127.0.0.1",       "127.255.255.254", "::1",
        "10.0.0.0",        "10.255.255.255",  "172.16.0.1",
        "172.31.255.255",  "192.168.0.1",     "192.168.255.255",
        "100.64.0.1",      "100.127.255.255", "169.254.0.1",
        "169.254.255.255", "fc00::1",         "fdff:ffff::1",
        "fe80::1",         "febf:ffff::1",
    };
    for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++)
        ck_assert_msg(check(p, allowed[i]) == DP_POLICY_ALLOW, "%s refused", allowed[i]);
    ck_assert_uint_eq(stats(p).acl_refused, 0);
    dp_policy_free(p);
}
END_TEST

START_TEST(test_policy_default_list_refuses_public_v4_and_v6)
{
    struct dp_policy *p = policy(config());
    const char *refused[] = {
        "8.8.8.8",
        "1.1.1.1",
        "9.255.255.255",
        "11.0.0.0",
        "172.15.255.255",
        "172.32.0.0",
        "192.167.255.255",
        "192.169.0.0",
        "100.63.255.255",
        "100.128.0.0",
        "169.253.255.255",
        "128.0.0.1",
        "0.0.0.0",
        "255.255.255.255",
        "2001:4860:4860::8888",
        "::",
        "::2",
        "fbff:ffff::1",
        "fe00::1",
        "fec0::1",
        "ff02::1",
        "::ffff:8.8.8.8",
    };
    size_t n = sizeof refused / sizeof refused[0];
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(check(p, refused[i]) == DP_POLICY_REFUSE, "%s allowed", refused[i]);
    ck_assert_uint_eq(stats(p).acl_refused, n);
    dp_policy_free(p);
}
END_TEST

START_TEST(test_policy_explicit_allow_list_replaces_the_default)
{
    const char *list[] = {"203.0.113.0/24", "2001:db8::/32", NULL};
    struct dp_policy *p = policy_allowing(list);
    ck_assert_int_eq(check(p, "203.0.113.77"), DP_POLICY_ALLOW);
    ck_assert_int_eq(check(p, "2001:db8:1::1"), DP_POLICY_ALLOW);
    ck_assert_int_eq(check(p, "203.0.114.1"), DP_POLICY_REFUSE);
    ck_assert_int_eq(check(p, "2001:db9::1"), DP_POLICY_REFUSE);
    /* Nothing of the default list is left. */
    ck_assert_int_eq(check(p, "127.0.0.1"), DP_POLICY_REFUSE);
    ck_assert_int_eq(check(p, "::1"), DP_POLICY_REFUSE);
    ck_assert_int_eq(check(p, "10.0.0.1"), DP_POLICY_REFUSE);
    ck_assert_int_eq(check(p, "fe80::1"), DP_POLICY_REFUSE);
    dp_policy_free(p);
}
END_TEST

START_TEST(test_policy_zero_prefix_allows_every_address_of_its_family)
{
    const char *v4[] = {"0.0.0.0/0", NULL};
    struct dp_policy *p = policy_allowing(v4);
    ck_assert_int_eq(check(p, "8.8.8.8"), DP_POLICY_ALLOW);
    ck_assert_int_eq(check(p, "0.0.0.0"), DP_POLICY_ALLOW);
    ck_assert_int_eq(check(p, "255.255.255.255"), DP_POLICY_ALLOW);
    ck_assert_int_eq(check(p, "::ffff:8.8.4.4"), DP_POLICY_ALLOW);
    ck_assert_int_eq(check(p, "2001:4860::8888"), DP_POLICY_REFUSE);
    dp_policy_free(p);

    const char *both[] = {"0.0.0.0/0", "::/0", NULL};
    p = policy_allowing(both);
    ck_assert_int_eq(check(p, "8.8.8.8"), DP_POLICY_ALLOW);
    ck_assert_int_eq(check(p, "2001:4860::8888"), DP_POLICY_ALLOW);
    ck_assert_int_eq(check(p, "::"), DP_POLICY_ALLOW);
    ck_assert_int_eq(check(p, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), DP_POLICY_ALLOW);
    dp_policy_free(p);
}
END_TEST

START_TEST(test_policy_matches_mapped_clients_as_their_ipv4_address)
{
    struct dp_policy *p = policy(config());
    ck_assert_int_eq(check(p, "::ffff:127.0.0.1"), DP_POLICY_ALLOW);
    ck_assert_int_eq(check(p, "::ffff:10.1.2.3"), DP_POLICY_ALLOW);
    ck_assert_int_eq(check(p, "::ffff:192.168.7.7"), DP_POLICY_ALLOW);
    ck_assert_int_eq(check(p, "::ffff:1.1.1.1"), DP_POLICY_REFUSE);
    /* Not mapped: IPv4-compatible (deprecated) and NAT64 forms stay IPv6. */
    ck_assert_int_eq(check(p, "::10.1.2.3"), DP_POLICY_REFUSE);
    ck_assert_int_eq(check(p, "64:ff9b::10.1.2.3"), DP_POLICY_REFUSE);
    dp_policy_free(p);

    /* An IPv4 entry covers mapped clients; a mapped entry covers IPv4 ones. */
    const char *list[] = {"203.0.113.0/24", "::ffff:198.51.100.0/120", NULL};
    p = policy_allowing(list);
    ck_assert_int_eq(check(p, "::ffff:203.0.113.9"), DP_POLICY_ALLOW);
    ck_assert_int_eq(check(p, "198.51.100.200"), DP_POLICY_ALLOW);
    ck_assert_int_eq(check(p, "::ffff:198.51.100.1"), DP_POLICY_ALLOW);
    ck_assert_int_eq(check(p, "198.51.101.1"), DP_POLICY_REFUSE);
    dp_policy_free(p);
}
END_TEST

START_TEST(test_policy_prefix_boundaries_are_exact)
{
    const char *list[] = {"0.0.0.0/1",
                          "192.0.2.2/31",
                          "198.51.100.9/32",
                          "2001:db8::2/127",
                          "2001:db8:1::9/128",
                          "8000::/1",
                          NULL};
    struct dp_policy *p = policy_allowing(list);
    /* /1 */
    ck_assert_int_eq(check(p, "0.0.0.0"), DP_POLICY_ALLOW);
    ck_assert_int_eq(check(p, "127.255.255.255"), DP_POLICY_ALLOW);
    ck_assert_int_eq(check(p, "128.0.0.0"), DP_POLICY_REFUSE);
    ck_assert_int_eq(check(p, "255.255.255.255"), DP_POLICY_REFUSE);
    ck_assert_int_eq(check(p, "8000::"), DP_POLICY_ALLOW);
    ck_assert_int_eq(check(p, "7fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), DP_POLICY_REFUSE);
    /* /31 */
    ck_assert_int_eq(check(p, "192.0.2.2"), DP_POLICY_ALLOW);
    ck_assert_int_eq(check(p, "192.0.2.3"), DP_POLICY_ALLOW);
    ck_assert_int_eq(check(p, "192.0.2.1"), DP_POLICY_REFUSE);
    ck_assert_int_eq(check(p, "192.0.2.4"), DP_POLICY_REFUSE);
    /* /32 */
    ck_assert_int_eq(check(p, "198.51.100.9"), DP_POLICY_ALLOW);
    ck_assert_int_eq(check(p, "198.51.100.8"), DP_POLICY_REFUSE);
    ck_assert_int_eq(check(p, "198.51.100.10"), DP_POLICY_REFUSE);
    /* /127 */
    ck_assert_int_eq(check(p, "2001:db8::2"), DP_POLICY_ALLOW);
    ck_assert_int_eq(check(p, "2001:db8::3"), DP_POLICY_ALLOW);
    ck_assert_int_eq(check(p, "2001:db8::1"), DP_POLICY_REFUSE);
    ck_assert_int_eq(check(p, "2001:db8::4"), DP_POLICY_REFUSE);
    /* /128 */
    ck_assert_int_eq(check(p, "2001:db8:1::9"), DP_POLICY_ALLOW);
    ck_assert_int_eq(check(p, "2001:db8:1::8"), DP_POLICY_REFUSE);
    ck_assert_int_eq(check(p, "2001:db8:1::a"), DP_POLICY_REFUSE);
    ck_assert_int_eq(check(p, "2001:db8:1:0:8000::9"), DP_POLICY_REFUSE);
    dp_policy_free(p);
}
END_TEST

/* The reference: a plain scan of (network, prefix) pairs. */
struct ref6 {
    uint8_t net[16];
    unsigned prefix;
};

static int ref6_match(const struct ref6 *r, const uint8_t *a)
{
    unsigned whole = r->prefix / 8, rest = r->prefix % 8;
    if (memcmp(a, r->net, whole) != 0)
        return 0;
    if (rest == 0)
        return 1;
    uint8_t m = (uint8_t)(0xff << (8 - rest));
    return (a[whole] & m) == (r->net[whole] & m);
}

START_TEST(test_policy_full_list_of_nested_networks_agrees_with_a_linear_scan)
{
    /* 128 IPv4 and 128 IPv6 entries crowded into small spaces so that many
     * nest, overlap at their edges or repeat; then random addresses from the
     * same spaces must get the answer a naive scan gives. */
    struct ref6 ref4[128], ref6[128];
    dotproxy_config *cfg = config();
    char buf[INET6_ADDRSTRLEN + 8], txt[INET6_ADDRSTRLEN];
    for (int i = 0; i < 128; i++) {
        uint32_t a = 0x0a000000u | (uint32_t)(rng() & 0x1ffff);
        /* A few wide networks for the narrow ones to nest in. */
        unsigned prefix = i % 40 == 0 ? 18 + (unsigned)(rng() % 4) : 22 + (unsigned)(rng() % 11);
        struct in_addr in = {.s_addr = htonl(a)};
        memset(&ref4[i], 0, sizeof ref4[i]);
        memcpy(ref4[i].net, &in, 4);
        ref4[i].prefix = prefix;
        inet_ntop(AF_INET, &in, txt, sizeof txt);
        snprintf(buf, sizeof buf, "%s/%u", txt, prefix);
        ck_assert_int_eq(dotproxy_config_add_allow(cfg, buf), 0);

        uint8_t b[16] = {0x20, 0x01, 0x0d, 0xb8};
        b[14] = (uint8_t)rng();
        b[15] = (uint8_t)rng();
        b[7] = (uint8_t)(rng() & 1);
        prefix = i % 40 == 0 ? 100 + (unsigned)(rng() % 16) : 118 + (unsigned)(rng() % 11);
        memcpy(ref6[i].net, b, 16);
        ref6[i].prefix = prefix;
        inet_ntop(AF_INET6, b, txt, sizeof txt);
        snprintf(buf, sizeof buf, "%s/%u", txt, prefix);
        ck_assert_int_eq(dotproxy_config_add_allow(cfg, buf), 0);
    }
    ck_assert_int_eq(dotproxy_config_add_allow(cfg, "10.0.0.1/0"), DOTPROXY_ELIMIT);
    struct dp_policy *p = policy(cfg);

    int allowed[2] = {0, 0};
    for (int n = 0; n < 20000; n++) {
        struct sockaddr_storage ss;
        memset(&ss, 0, sizeof ss);
        uint8_t a[16] = {0};
        int want = 0;
        if (n % 2 == 0) {
            uint32_t v = (rng() % 8 == 0 ? 0x0b000000u : 0x0a000000u) | (uint32_t)(rng() & 0x1ffff);
            struct sockaddr_in *in = (struct sockaddr_in *)&ss;
            in->sin_family = AF_INET;
            in->sin_addr.s_addr = htonl(v);
            memcpy(a, &in->sin_addr, 4);
            for (int i = 0; i < 128 && !want; i++)
                want = ref6_match(&ref4[i], a);
        } else {
            uint8_t b[16] = {0x20, 0x01, 0x0d, 0xb8};
            b[14] = (uint8_t)rng();
            b[15] = (uint8_t)rng();
            b[7] = (uint8_t)(rng() & 1);
            if (rng() % 4 == 0)
                b[11] = (uint8_t)rng();
            struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
            in6->sin6_family = AF_INET6;
            memcpy(&in6->sin6_addr, b, 16);
            for (int i = 0; i < 128 && !want; i++)
                want = ref6_match(&ref6[i], b);
        }
        int got = dp_policy_check(p, (const struct sockaddr *)&ss, 1);
        if (got != (want ? DP_POLICY_ALLOW : DP_POLICY_REFUSE))
            ck_abort_msg("query %d: verdict %d, the linear scan says %d", n, got, want);
        allowed[n % 2] += want;
    }
    /* Both answers occur often enough, in both families, for the comparison
     * to mean something. */
    for (int f = 0; f < 2; f++) {
        ck_assert_int_gt(allowed[f], 1000);
        ck_assert_int_lt(allowed[f], 9000);
    }
    dp_policy_free(p);
}
END_TEST

START_TEST(test_policy_refuses_addresses_of_other_families)
{
    struct dp_policy *p = policy(config());
    struct sockaddr_un un;
    memset(&un, 0, sizeof un);
    un.sun_family = AF_UNIX;
    ck_assert_int_eq(dp_policy_check(p, (const struct sockaddr *)&un, 1), DP_POLICY_REFUSE);
    ck_assert_uint_eq(stats(p).acl_refused, 1);
    dp_policy_free(p);
}
END_TEST

/* ---- rate limit ---- */

/* Every address allowed, a rate limit of qps with the given burst. */
static struct dp_policy *limited(unsigned qps, unsigned burst, unsigned v4_prefix,
                                 unsigned v6_prefix, int action, int loopback)
{
    dotproxy_config *cfg = config();
    ck_assert_int_eq(dotproxy_config_add_allow(cfg, "0.0.0.0/0"), 0);
    ck_assert_int_eq(dotproxy_config_add_allow(cfg, "::/0"), 0);
    ck_assert_int_eq(
        dotproxy_config_set_rate_limit(cfg, qps, burst, v4_prefix, v6_prefix, action, loopback), 0);
    return policy(cfg);
}

/* How many of n checks at time now are allowed. */
static int allowed_of(struct dp_policy *p, const char *s, int n, uint64_t now)
{
    int ok = 0;
    for (int i = 0; i < n; i++)
        ok += check_at(p, s, now) == DP_POLICY_ALLOW;
    return ok;
}

START_TEST(test_policy_token_bucket_allows_the_burst_then_limits)
{
    struct dp_policy *p = limited(10, 5, 32, 128, DOTPROXY_LIMIT_REFUSE, 0);
    const uint64_t t0 = 5000000;
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(check_at(p, "198.51.100.1", t0), DP_POLICY_ALLOW);
    ck_assert_int_eq(check_at(p, "198.51.100.1", t0), DP_POLICY_REFUSE);
    ck_assert_int_eq(check_at(p, "198.51.100.1", t0), DP_POLICY_REFUSE);
    /* Another address has its own bucket. */
    ck_assert_int_eq(allowed_of(p, "198.51.100.2", 10, t0), 5);
    ck_assert_int_eq(allowed_of(p, "2001:db8::1", 10, t0), 5);
    struct dp_policy_stats st = stats(p);
    ck_assert_uint_eq(st.rate_limited, 12);
    ck_assert_uint_eq(st.acl_refused, 0);
    ck_assert_uint_eq(st.buckets, 3);
    dp_policy_free(p);
}
END_TEST

START_TEST(test_policy_token_bucket_refills_at_the_configured_rate)
{
    struct dp_policy *p = limited(10, 5, 32, 128, DOTPROXY_LIMIT_REFUSE, 0);
    const char *c = "198.51.100.1";
    uint64_t t = 5000000;
    ck_assert_int_eq(allowed_of(p, c, 100, t), 5);
    /* One token per 100 ms, to the microsecond. */
    ck_assert_int_eq(allowed_of(p, c, 1, t + 99999), 0);
    ck_assert_int_eq(allowed_of(p, c, 10, t + 100000), 1);
    /* Partial refills add up: 40 ms + 60 ms make one token. */
    ck_assert_int_eq(allowed_of(p, c, 10, t + 140000), 0);
    ck_assert_int_eq(allowed_of(p, c, 10, t + 200000), 1);
    /* 350 ms: three tokens, and half a token carried over. */
    ck_assert_int_eq(allowed_of(p, c, 10, t + 550000), 3);
    ck_assert_int_eq(allowed_of(p, c, 10, t + 600000), 1);
    /* A long idle time refills to the burst, not beyond. */
    ck_assert_int_eq(allowed_of(p, c, 100, t + 60000000), 5);
    /* A clock stepping back refills nothing. */
    ck_assert_int_eq(allowed_of(p, c, 10, t), 0);
    ck_assert_int_eq(allowed_of(p, c, 10, t + 60000000 + 100000), 1);
    dp_policy_free(p);

    /* A high rate: 1,000,000 qps is one token per microsecond. */
    p = limited(1000000, 3, 32, 128, DOTPROXY_LIMIT_REFUSE, 0);
    ck_assert_int_eq(allowed_of(p, c, 10, t), 3);
    ck_assert_int_eq(allowed_of(p, c, 10, t + 2), 2);
    ck_assert_int_eq(allowed_of(p, c, 10, t + 1000000), 3);
    dp_policy_free(p);
}
END_TEST

START_TEST(test_policy_rate_limit_action_drop_returns_drop)
{
    struct dp_policy *p = limited(1, 1, 32, 128, DOTPROXY_LIMIT_DROP, 0);
    ck_assert_int_eq(check_at(p, "203.0.113.5", 1), DP_POLICY_ALLOW);
    ck_assert_int_eq(check_at(p, "203.0.113.5", 2), DP_POLICY_DROP);
    ck_assert_uint_eq(stats(p).rate_limited, 1);
    dp_policy_free(p);
}
END_TEST

START_TEST(test_policy_rate_limit_aggregates_addresses_of_one_prefix)
{
    struct dp_policy *p = limited(1, 4, 24, 56, DOTPROXY_LIMIT_REFUSE, 0);
    ck_assert_int_eq(allowed_of(p, "198.51.100.1", 3, 7), 3);
    /* Same /24: one token left between them. */
    ck_assert_int_eq(allowed_of(p, "198.51.100.254", 3, 7), 1);
    ck_assert_int_eq(allowed_of(p, "::ffff:198.51.100.9", 3, 7), 0);
    /* The next /24 is another client. */
    ck_assert_int_eq(allowed_of(p, "198.51.101.1", 5, 7), 4);
    /* IPv6 per /56. */
    ck_assert_int_eq(allowed_of(p, "2001:db8:0:ff::1", 3, 7), 3);
    ck_assert_int_eq(allowed_of(p, "2001:db8:0:1:ffff::9", 3, 7), 1);
    ck_assert_int_eq(allowed_of(p, "2001:db8:0:100::1", 5, 7), 4);
    ck_assert_uint_eq(stats(p).buckets, 4);
    dp_policy_free(p);
}
END_TEST

START_TEST(test_policy_loopback_is_exempt_unless_limit_loopback_is_set)
{
    struct dp_policy *p = limited(1, 1, 32, 128, DOTPROXY_LIMIT_REFUSE, 0);
    ck_assert_int_eq(allowed_of(p, "127.0.0.1", 1000, 1), 1000);
    ck_assert_int_eq(allowed_of(p, "127.9.8.7", 1000, 1), 1000);
    ck_assert_int_eq(allowed_of(p, "::1", 1000, 1), 1000);
    ck_assert_int_eq(allowed_of(p, "::ffff:127.0.0.1", 1000, 1), 1000);
    ck_assert_int_eq(allowed_of(p, "10.0.0.1", 1000, 1), 1);
    ck_assert_uint_eq(stats(p).buckets, 1);
    dp_policy_free(p);

    p = limited(1, 1, 32, 128, DOTPROXY_LIMIT_REFUSE, 1);
    ck_assert_int_eq(allowed_of(p, "127.0.0.1", 1000, 1), 1);
    ck_assert_int_eq(allowed_of(p, "::ffff:127.0.0.1", 1000, 1), 0);
    ck_assert_int_eq(allowed_of(p, "::1", 1000, 1), 1);
    dp_policy_free(p);
}
END_TEST

START_TEST(test_policy_rate_limit_off_never_limits_a_busy_address)
{
    /* A local dnsmasq or NAT gateway sends this much from one address. */
    struct dp_policy *p = policy(config());
    struct sockaddr_storage ss = addr("192.168.1.1");
    int ok = 0;
    for (int i = 0; i < 100000; i++)
        ok += dp_policy_check(p, (const struct sockaddr *)&ss, 1) == DP_POLICY_ALLOW;
    ck_assert_int_eq(ok, 100000);
    struct dp_policy_stats st = stats(p);
    ck_assert_uint_eq(st.rate_limited, 0);
    ck_assert_uint_eq(st.buckets, 0);
    dp_policy_free(p);
}
END_TEST

static size_t heap_in_use(void)
{
#ifdef __GLIBC__
    return mallinfo2().uordblks;
#else
    return 0;
#endif
}

START_TEST(test_policy_eviction_bounds_the_table_and_keeps_a_busy_client)
{
    /* 1 qps, burst 2: a client whose bucket is kept gets 2 answers plus one a
     * second; one whose bucket is forgotten gets a fresh burst each time. */
    struct dp_policy *p = limited(1, 2, 32, 128, DOTPROXY_LIMIT_REFUSE, 0);
    struct sockaddr_storage busy = addr("198.51.100.77");
    uint64_t now = 1;
    int busy_ok = 0, busy_asked = 0;
    size_t heap_before = heap_in_use();
    const uint32_t n_scan = 1000000;
    uint32_t n_loopback = 0, scan_ok = 0;
    for (uint32_t i = 0; i < n_scan; i++) {
        /* One-off addresses, as a spoofed scan sends them (distinct: 7919 is
         * odd, so i * 7919 is a bijection modulo 2^32). 127/8 gets no bucket. */
        uint32_t a = 0x01000000u + i * 7919u;
        n_loopback += (a >> 24) == 127;
        struct sockaddr_storage one = addr4(a);
        scan_ok += dp_policy_check(p, (const struct sockaddr *)&one, now++) == DP_POLICY_ALLOW;
        if (i % 10 == 0) {
            busy_asked++;
            busy_ok += dp_policy_check(p, (const struct sockaddr *)&busy, now++) == DP_POLICY_ALLOW;
        }
    }
    struct dp_policy_stats st = stats(p);
    ck_assert_uint_eq(scan_ok, n_scan); /* each one-off had its burst */
    ck_assert_uint_le(st.buckets, 65536);
    ck_assert_uint_ge(st.buckets, 60000); /* the table does fill */
    /* Each new key took an empty slot or evicted one. */
    ck_assert_uint_ge(st.evicted + st.buckets, n_scan - n_loopback + 1);
    ck_assert_uint_le(st.evicted + st.buckets, n_scan - n_loopback + 3);
    ck_assert_uint_eq(heap_in_use(), heap_before);
    /* 1.1 s of clock: the burst of 2 plus one refill, had it never been
     * evicted; allow one eviction at most. */
    ck_assert_int_eq(busy_asked, 100000);
    ck_assert_int_ge(busy_ok, 3);
    ck_assert_int_le(busy_ok, 5);
    ck_assert_uint_eq(st.rate_limited, (uint64_t)(busy_asked - busy_ok));
    dp_policy_free(p);
}
END_TEST

/* ---- in-flight cap ---- */

static struct dp_policy *capped(unsigned n, unsigned max_queries)
{
    dotproxy_config *cfg = config();
    ck_assert_int_eq(dotproxy_config_set_max_client_queries(cfg, n), 0);
    ck_assert_int_eq(dotproxy_config_set_max_queries(cfg, max_queries), 0);
    return policy(cfg);
}

START_TEST(test_policy_inflight_cap_counts_begins_and_ends_per_address)
{
    struct dp_policy *p = capped(3, 8192);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(begin(p, "10.0.0.1"), 0);
    ck_assert_int_eq(begin(p, "10.0.0.1"), -1);
    /* The mapped form is the same client; the port is not part of the key. */
    ck_assert_int_eq(begin(p, "::ffff:10.0.0.1"), -1);
    /* Other clients are not affected. */
    ck_assert_int_eq(begin(p, "10.0.0.2"), 0);
    ck_assert_int_eq(begin(p, "fe80::1"), 0);
    end(p, "10.0.0.1");
    ck_assert_int_eq(begin(p, "::ffff:10.0.0.1"), 0);
    ck_assert_int_eq(begin(p, "10.0.0.1"), -1);
    for (int i = 0; i < 3; i++)
        end(p, "10.0.0.1");
    /* Back to zero: the whole allowance again. */
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(begin(p, "10.0.0.1"), 0);
    ck_assert_int_eq(begin(p, "10.0.0.1"), -1);
    ck_assert_uint_eq(stats(p).inflight_capped, 4);
    dp_policy_free(p);
}
END_TEST

START_TEST(test_policy_inflight_default_cap_is_half_of_the_default_max_queries)
{
    struct dp_policy *p = policy(config());
    for (int i = 0; i < 4096; i++)
        ck_assert_int_eq(begin(p, "10.0.0.1"), 0);
    ck_assert_int_eq(begin(p, "10.0.0.1"), -1);
    ck_assert_int_eq(begin(p, "10.0.0.2"), 0);
    dp_policy_free(p);
}
END_TEST

START_TEST(test_policy_inflight_cap_off_admits_everything)
{
    struct dp_policy *p = capped(0, 8192);
    int refused = 0;
    for (int i = 0; i < 100000; i++)
        refused += begin(p, "10.0.0.1") != 0;
    ck_assert_int_eq(refused, 0);
    for (int i = 0; i < 100000; i++)
        end(p, "10.0.0.1");
    ck_assert_uint_eq(stats(p).inflight_capped, 0);
    dp_policy_free(p);
}
END_TEST

START_TEST(test_policy_inflight_counts_stay_exact_under_churn)
{
    /* max_queries 16: a 64-slot table where deletions shift many entries.
     * Random begins and ends from 40 clients against a reference count. */
    enum { CLIENTS = 40, CAP = 3 };
    struct dp_policy *p = capped(CAP, 16);
    int count[CLIENTS] = {0};
    for (int n = 0; n < 200000; n++) {
        int c = (int)(rng() % CLIENTS);
        struct sockaddr_storage ss = addr4(0x0a000000u + (uint32_t)c * 65537u);
        if (rng() % 2 == 0) {
            int want = count[c] < CAP ? 0 : -1;
            int got = dp_policy_inflight_begin(p, (const struct sockaddr *)&ss);
            if (got != want)
                ck_abort_msg("step %d, client %d at %d: begin %d", n, c, count[c], got);
            if (want == 0)
                count[c]++;
        } else if (count[c] > 0) {
            dp_policy_inflight_end(p, (const struct sockaddr *)&ss);
            count[c]--;
        }
    }
    dp_policy_free(p);
}
END_TEST

/* The pipeline keeps each counted query's home (begin_home) and ends it
 * there without hashing again: the home must stay right while deletions of
 * other clients shift entries around it. Same churn as above, ends by home. */
START_TEST(test_policy_inflight_home_kept_from_begin_ends_the_right_count_under_churn)
{
    enum { CLIENTS = 40, CAP = 3 };
    struct dp_policy *p = capped(CAP, 16);
    int count[CLIENTS] = {0};
    uint32_t homes[CLIENTS][CAP];
    for (int n = 0; n < 200000; n++) {
        int c = (int)(rng() % CLIENTS);
        struct sockaddr_storage ss = addr4(0x0a000000u + (uint32_t)c * 65537u);
        if (rng() % 2 == 0) {
            int want = count[c] < CAP ? 0 : -1;
            uint32_t home = 0;
            int got = dp_policy_inflight_begin_home(p, (const struct sockaddr *)&ss, &home);
            if (got != want)
                ck_abort_msg("step %d, client %d at %d: begin %d", n, c, count[c], got);
            if (want == 0)
                homes[c][count[c]++] = home;
        } else if (count[c] > 0) {
            dp_policy_inflight_end_home(p, (const struct sockaddr *)&ss, homes[c][--count[c]]);
        }
    }
    /* every count ended: the table is empty, so each client may begin CAP */
    for (int c = 0; c < CLIENTS; c++) {
        struct sockaddr_storage ss = addr4(0x0a000000u + (uint32_t)c * 65537u);
        while (count[c] > 0)
            dp_policy_inflight_end(p, (const struct sockaddr *)&ss), count[c]--;
    }
    struct sockaddr_storage one = addr4(0x0a000000u);
    for (int i = 0; i < CAP; i++)
        ck_assert_int_eq(dp_policy_inflight_begin(p, (const struct sockaddr *)&one), 0);
    ck_assert_int_eq(dp_policy_inflight_begin(p, (const struct sockaddr *)&one), -1);
    dp_policy_free(p);
}
END_TEST

START_TEST(test_policy_inflight_table_refuses_new_clients_when_full)
{
    /* max_queries 16 gives 64 slots, filled to 3/4 at most. */
    struct dp_policy *p = capped(1, 16);
    for (uint32_t i = 0; i < 48; i++) {
        struct sockaddr_storage ss = addr4(0x0a000000u + i);
        ck_assert_int_eq(dp_policy_inflight_begin(p, (const struct sockaddr *)&ss), 0);
    }
    struct sockaddr_storage late = addr4(0x0b000000u);
    ck_assert_int_eq(dp_policy_inflight_begin(p, (const struct sockaddr *)&late), -1);
    struct sockaddr_storage first = addr4(0x0a000000u);
    dp_policy_inflight_end(p, (const struct sockaddr *)&first);
    ck_assert_int_eq(dp_policy_inflight_begin(p, (const struct sockaddr *)&late), 0);
    dp_policy_free(p);
}
END_TEST

static Suite *policy_suite(void)
{
    Suite *s = suite_create("policy");
    TCase *tc = tcase_create("acl");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_policy_default_list_allows_loopback_private_link_local_and_ula);
    tcase_add_test(tc, test_policy_default_list_refuses_public_v4_and_v6);
    tcase_add_test(tc, test_policy_explicit_allow_list_replaces_the_default);
    tcase_add_test(tc, test_policy_zero_prefix_allows_every_address_of_its_family);
    tcase_add_test(tc, test_policy_matches_mapped_clients_as_their_ipv4_address);
    tcase_add_test(tc, test_policy_prefix_boundaries_are_exact);
    tcase_add_test(tc, test_policy_full_list_of_nested_networks_agrees_with_a_linear_scan);
    tcase_add_test(tc, test_policy_refuses_addresses_of_other_families);
    suite_add_tcase(s, tc);

    tc = tcase_create("rate_limit");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_policy_token_bucket_allows_the_burst_then_limits);
    tcase_add_test(tc, test_policy_token_bucket_refills_at_the_configured_rate);
    tcase_add_test(tc, test_policy_rate_limit_action_drop_returns_drop);
    tcase_add_test(tc, test_policy_rate_limit_aggregates_addresses_of_one_prefix);
    tcase_add_test(tc, test_policy_loopback_is_exempt_unless_limit_loopback_is_set);
    tcase_add_test(tc, test_policy_rate_limit_off_never_limits_a_busy_address);
    tcase_add_test(tc, test_policy_eviction_bounds_the_table_and_keeps_a_busy_client);
    suite_add_tcase(s, tc);

    tc = tcase_create("inflight");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_policy_inflight_cap_counts_begins_and_ends_per_address);
    tcase_add_test(tc, test_policy_inflight_cap_off_admits_everything);
    tcase_add_test(tc, test_policy_inflight_default_cap_is_half_of_the_default_max_queries);
    tcase_add_test(tc, test_policy_inflight_counts_stay_exact_under_churn);
    tcase_add_test(tc, test_policy_inflight_home_kept_from_begin_ends_the_right_count_under_churn);
    tcase_add_test(tc, test_policy_inflight_table_refuses_new_clients_when_full);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(policy_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
