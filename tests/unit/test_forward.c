/* SPDX-License-Identifier: MIT */
/* Forward zones (lib/forward.c): the configuration calls (zones, upstream
 * specs, pins, plain upstreams, limits, the formatted getter) and the
 * context's zone table (longest whole-label suffix, case, the root). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "dotproxy/config.h"
#include "dotproxy/error.h"
#include "dotproxy/forward.h"
#include "forward.h"

#define PIN_A "sha256/47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="

static dotproxy_config *new_cfg(void)
{
    dotproxy_config *cfg = NULL;
    ck_assert_int_eq(dotproxy_config_new(&cfg), 0);
    ck_assert_int_eq(dotproxy_config_add_upstream(cfg, "192.0.2.1#dns.example"), 0);
    ck_assert_int_eq(dotproxy_config_add_upstream(cfg, "192.0.2.2#dns.example"), 0);
    return cfg;
}

/* "a.b.c" to wire form in out; its length. */
static size_t wire(const char *name, uint8_t *out)
{
    size_t o = 0;
    const char *p = name;
    while (*p != '\0') {
        const char *dot = strchr(p, '.');
        size_t l = dot != NULL ? (size_t)(dot - p) : strlen(p);
        out[o++] = (uint8_t)l;
        memcpy(out + o, p, l);
        o += l;
        p += l;
        if (*p == '.')
            p++;
    }
    out[o++] = 0;
    return o;
}

static uint32_t excluded(const struct dp_forward *fw, const char *name)
{
    uint8_t w[256];
    size_t n = wire(name, w);
    return dp_forward_excluded(fw, w, n);
}

static void zone_text(const dotproxy_config *cfg, size_t i, char *buf, size_t cap)
{
    ck_assert_int_gt(dotproxy_config_get_forward_zone(cfg, i, buf, cap), 0);
}

START_TEST(test_forward_zone_upstreams_are_read_back_as_typed)
{
    dotproxy_config *cfg = new_cfg();
    ck_assert_int_eq(dotproxy_config_add_forward(cfg, "Cluster.Local.", "plain:10.96.0.10"), 0);
    ck_assert_int_eq(dotproxy_config_add_forward(cfg, "cluster.local", "10.0.0.1@8853#dns.corp"),
                     0);
    ck_assert_int_eq(dotproxy_config_add_forward(cfg, "corp.example", "[2001:db8::1]^" PIN_A), 0);
    ck_assert_int_eq(dotproxy_config_add_forward(cfg, ".", "plain:[::1]@5353"), 0);
    ck_assert_uint_eq(dotproxy_config_forward_zone_count(cfg), 3);
    char buf[8192];
    zone_text(cfg, 0, buf, sizeof buf);
    ck_assert_str_eq(buf, "cluster.local=plain:10.96.0.10@53,10.0.0.1@8853#dns.corp");
    zone_text(cfg, 1, buf, sizeof buf);
    ck_assert_str_eq(buf, "corp.example=[2001:db8::1]@853^" PIN_A);
    zone_text(cfg, 2, buf, sizeof buf);
    ck_assert_str_eq(buf, ".=plain:[::1]@5353");
    /* What the getter writes is taken back as the same zone. */
    dotproxy_config *again = new_cfg();
    ck_assert_int_eq(dotproxy_config_add_forward(again, "corp.example", "[2001:db8::1]@853^" PIN_A),
                     0);
    char b2[8192];
    zone_text(again, 0, b2, sizeof b2);
    zone_text(cfg, 1, buf, sizeof buf);
    ck_assert_str_eq(buf, b2);
    ck_assert_int_eq(dotproxy_config_get_forward_zone(cfg, 3, buf, sizeof buf), DOTPROXY_EINVAL);
    ck_assert_int_eq(dotproxy_config_get_forward_zone(cfg, 0, buf, 10), DOTPROXY_ENOSPC);
    dotproxy_config_free(again);
    dotproxy_config_free(cfg);
}
END_TEST

START_TEST(test_forward_refuses_bad_zones_and_upstreams_and_changes_nothing)
{
    dotproxy_config *cfg = new_cfg();
    const char *bad_zones[] = {"", "a..b", ".a", "a b", "a=b", "a,b", "a^b", NULL};
    for (int i = 0; bad_zones[i] != NULL; i++) {
        ck_assert_msg(dotproxy_config_add_forward(cfg, bad_zones[i], "192.0.2.9") ==
                          DOTPROXY_EINVAL,
                      "zone '%s'", bad_zones[i]);
    }
    char long_label[80];
    memset(long_label, 'a', 64);
    long_label[64] = '\0';
    ck_assert_int_eq(dotproxy_config_add_forward(cfg, long_label, "192.0.2.9"), DOTPROXY_EINVAL);
    ck_assert_int_eq(dotproxy_config_add_forward(cfg, "z", "192.0.2"), DOTPROXY_EADDR);
    ck_assert_int_eq(dotproxy_config_add_forward(cfg, "z", "192.0.2.9@0"), DOTPROXY_EPORT);
    ck_assert_int_eq(dotproxy_config_add_forward(cfg, "z", "192.0.2.9#bad_name"), DOTPROXY_ENAME);
    /* A plain upstream has neither a name nor pins. */
    ck_assert_int_eq(dotproxy_config_add_forward(cfg, "z", "plain:192.0.2.9#n"), DOTPROXY_ENAME);
    ck_assert_int_ne(dotproxy_config_add_forward(cfg, "z", "plain:192.0.2.9^" PIN_A), 0);
    ck_assert_int_eq(dotproxy_config_add_forward(cfg, "z", "192.0.2.9^sha256/AAAA"),
                     DOTPROXY_EINVAL);
    ck_assert_int_eq(dotproxy_config_add_forward(cfg, "z", "192.0.2.9^"), DOTPROXY_EINVAL);
    ck_assert_int_eq(dotproxy_config_add_forward(NULL, "z", "192.0.2.9"), DOTPROXY_EINVAL);
    ck_assert_int_eq(dotproxy_config_add_forward(cfg, NULL, "192.0.2.9"), DOTPROXY_EINVAL);
    ck_assert_int_eq(dotproxy_config_add_forward(cfg, "z", NULL), DOTPROXY_EINVAL);
    ck_assert_uint_eq(dotproxy_config_forward_zone_count(cfg), 0);
    ck_assert_uint_eq(cfg->n_fwd_up, 0);
    dotproxy_config_free(cfg);
}
END_TEST

START_TEST(test_forward_shares_an_upstream_named_in_several_zones_and_counts_the_limits)
{
    dotproxy_config *cfg = new_cfg();
    ck_assert_int_eq(dotproxy_config_add_forward(cfg, "a", "192.0.2.9#ns.example"), 0);
    ck_assert_int_eq(dotproxy_config_add_forward(cfg, "b", "192.0.2.9@853#ns.example"), 0);
    ck_assert_int_eq(dotproxy_config_add_forward(cfg, "a", "192.0.2.9#ns.example"), 0);
    ck_assert_uint_eq(cfg->n_fwd_up, 1);
    ck_assert_uint_eq(cfg->fwd_zone[0].n_ups, 1);
    /* Same address, another transport or pin set: another upstream. */
    ck_assert_int_eq(dotproxy_config_add_forward(cfg, "a", "plain:192.0.2.9@853"), 0);
    ck_assert_int_eq(dotproxy_config_add_forward(cfg, "a", "192.0.2.9#ns.example^" PIN_A), 0);
    ck_assert_uint_eq(cfg->n_fwd_up, 3);
    for (unsigned i = 3; i < DOTPROXY_FORWARD_UPSTREAMS_MAX; i++) {
        char spec[64];
        snprintf(spec, sizeof spec, "plain:198.51.100.%u", i);
        ck_assert_int_eq(dotproxy_config_add_forward(cfg, "c", spec), 0);
    }
    ck_assert_int_eq(dotproxy_config_add_forward(cfg, "c", "plain:203.0.113.1"), DOTPROXY_ELIMIT);
    /* A known upstream can still join another zone. */
    ck_assert_int_eq(dotproxy_config_add_forward(cfg, "d", "plain:198.51.100.3"), 0);
    for (unsigned i = 4; i < DOTPROXY_FORWARD_ZONES_MAX; i++) {
        char zone[32];
        snprintf(zone, sizeof zone, "z%u", i);
        ck_assert_int_eq(dotproxy_config_add_forward(cfg, zone, "plain:198.51.100.3"), 0);
    }
    ck_assert_int_eq(dotproxy_config_add_forward(cfg, "one.more", "plain:198.51.100.3"),
                     DOTPROXY_ELIMIT);
    ck_assert_uint_eq(dotproxy_config_forward_zone_count(cfg), DOTPROXY_FORWARD_ZONES_MAX);
    /* Pins: as many as an upstream takes. */
    char spec[1024] = "192.0.2.77";
    for (int i = 0; i <= DOTPROXY_PINS_MAX; i++)
        strcat(spec, "^" PIN_A);
    ck_assert_int_eq(dotproxy_config_add_forward(cfg, "a", spec), DOTPROXY_ELIMIT);
    /* A copy carries the zones. */
    dotproxy_config *dup = NULL;
    ck_assert_int_eq(dotproxy_config_dup(&dup, cfg), 0);
    ck_assert_uint_eq(dotproxy_config_forward_zone_count(dup), DOTPROXY_FORWARD_ZONES_MAX);
    dotproxy_config_free(dup);
    dotproxy_config_free(cfg);
}
END_TEST

START_TEST(test_forward_table_picks_the_longest_zone_on_whole_labels)
{
    dotproxy_config *cfg = new_cfg(); /* upstreams 0 and 1: the defaults */
    /* Added shortest first: the table must still prefer the longest. */
    ck_assert_int_eq(dotproxy_config_add_forward(cfg, "a.test", "plain:198.51.100.1"), 0);
    ck_assert_int_eq(dotproxy_config_add_forward(cfg, "b.a.test", "plain:198.51.100.2"), 0);
    ck_assert_int_eq(dotproxy_config_add_forward(cfg, "b.a.test", "plain:198.51.100.3"), 0);
    ck_assert_int_eq(dotproxy_config_add_forward(cfg, "other", "plain:198.51.100.1"), 0);
    struct dp_forward fw;
    dp_forward_build(&fw, cfg);
    /* Set positions: 0, 1 defaults; 2 = .1, 3 = .2, 4 = .3. */
    const uint32_t zone_bits = 1u << 2 | 1u << 3 | 1u << 4;
    ck_assert_uint_eq(excluded(&fw, "example.org"), zone_bits);
    ck_assert_uint_eq(excluded(&fw, "test"), zone_bits);
    ck_assert_uint_eq(excluded(&fw, "xa.test"), zone_bits); /* not under a.test */
    ck_assert_uint_eq(excluded(&fw, "a.test"), ~(1u << 2));
    ck_assert_uint_eq(excluded(&fw, "x.A.TeSt"), ~(1u << 2));
    ck_assert_uint_eq(excluded(&fw, "ab.a.test"), ~(1u << 2));
    ck_assert_uint_eq(excluded(&fw, "b.a.test"), ~(1u << 3 | 1u << 4));
    ck_assert_uint_eq(excluded(&fw, "deep.x.B.a.test"), ~(1u << 3 | 1u << 4));
    ck_assert_uint_eq(excluded(&fw, "x.other"), ~(1u << 2));
    uint8_t root = 0;
    ck_assert_uint_eq(dp_forward_excluded(&fw, &root, 1), zone_bits);
    /* Only plain upstreams in these zones: their queries go unpadded. */
    ck_assert(dp_forward_plain_only(&fw, excluded(&fw, "x.b.a.test")));
    ck_assert(!dp_forward_plain_only(&fw, excluded(&fw, "example.org")));
    /* The root zone takes every name no longer zone has. */
    ck_assert_int_eq(dotproxy_config_add_forward(cfg, ".", "plain:198.51.100.9"), 0);
    dp_forward_build(&fw, cfg);
    ck_assert_uint_eq(excluded(&fw, "example.org"), ~(1u << 5));
    ck_assert_uint_eq(dp_forward_excluded(&fw, &root, 1), ~(1u << 5));
    ck_assert_uint_eq(excluded(&fw, "x.b.a.test"), ~(1u << 3 | 1u << 4));
    /* A zone with a DoT upstream beside a plain one is padded. */
    ck_assert_int_eq(dotproxy_config_add_forward(cfg, "b.a.test", "192.0.2.9#ns.example"), 0);
    dp_forward_build(&fw, cfg);
    ck_assert(!dp_forward_plain_only(&fw, excluded(&fw, "x.b.a.test")));
    ck_assert(dp_forward_plain_only(&fw, excluded(&fw, "x.a.test")));
    dotproxy_config_free(cfg);
}
END_TEST

START_TEST(test_forward_table_without_zones_excludes_nothing)
{
    dotproxy_config *cfg = new_cfg();
    struct dp_forward fw;
    dp_forward_build(&fw, cfg);
    ck_assert_uint_eq(excluded(&fw, "example.org"), 0);
    dotproxy_config_free(cfg);
}
END_TEST

static Suite *forward_suite(void)
{
    Suite *s = suite_create("forward");
    TCase *tc = tcase_create("config");
    tcase_add_test(tc, test_forward_zone_upstreams_are_read_back_as_typed);
    tcase_add_test(tc, test_forward_refuses_bad_zones_and_upstreams_and_changes_nothing);
    tcase_add_test(tc,
                   test_forward_shares_an_upstream_named_in_several_zones_and_counts_the_limits);
    suite_add_tcase(s, tc);
    tc = tcase_create("table");
    tcase_add_test(tc, test_forward_table_picks_the_longest_zone_on_whole_labels);
    tcase_add_test(tc, test_forward_table_without_zones_excludes_nothing);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(forward_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
