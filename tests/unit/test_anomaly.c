/* SPDX-License-Identifier: MIT */
/* Unit tests of lib/anomaly.c (the rule grammar, the decayed-rate
 * estimator, name shapes, the tunnel score) and lib/psl.c (registrable
 * domains by the public suffix list's own algorithm). */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anomaly.h"
#include "dotproxy/config.h"
#include "dotproxy/error.h"
#include "psl.h"

START_TEST(test_anomaly_rule_parses_every_option)
{
    struct dp_dynrule r;
    ck_assert_int_eq(dp_anomaly_rule_parse(&r, "qps>100", NULL), 0);
    ck_assert_int_eq(r.metric, DP_AM_QPS);
    ck_assert(fabs(r.threshold - 100) < 1e-9);
    ck_assert_uint_eq(r.window_s, 10);
    ck_assert_uint_eq(r.for_s, 60);
    ck_assert_int_eq(r.action, DOTPROXY_DYNBLOCK_LOG);
    ck_assert_uint_eq(r.mask4, 32);
    ck_assert_uint_eq(r.mask6, 64);
    ck_assert_int_eq(
        dp_anomaly_rule_parse(&r, "qtype:TXT>2.5,window=5,for=0,action=truncate,mask=24", NULL), 0);
    ck_assert_int_eq(r.metric, DP_AM_QTYPE);
    ck_assert_uint_eq(r.qtype, 16);
    ck_assert(fabs(r.threshold - 2.5) < 1e-9);
    ck_assert_uint_eq(r.window_s, 5);
    ck_assert_uint_eq(r.for_s, 0);
    ck_assert_int_eq(r.action, DOTPROXY_DYNBLOCK_TRUNCATE);
    ck_assert_uint_eq(r.mask4, 24);
    ck_assert_uint_eq(r.mask6, 56);
    ck_assert_int_eq(dp_anomaly_rule_parse(&r, "qtype:TYPE65399>1", NULL), 0);
    ck_assert_uint_eq(r.qtype, 65399);
    ck_assert_int_eq(dp_anomaly_rule_parse(&r, "tunnel>0.8,action=drop", NULL), 0);
    ck_assert_uint_eq(r.window_s, 30);
    ck_assert_int_eq(dp_anomaly_rule_parse(&r, "bytes>100000,action=refuse,mask=48", NULL), 0);
    ck_assert_uint_eq(r.mask4, 32);
    ck_assert_uint_eq(r.mask6, 48);
    ck_assert_str_eq(r.text, "bytes>100000,action=refuse,mask=48");
}
END_TEST

START_TEST(test_anomaly_rule_refuses_what_is_wrong)
{
    static const char *const bad[] = {
        "",
        "qps",
        "qps>",
        "qps>-1",
        "qps>0",
        "qps>1x",
        "rps>10",
        "qtype:BOGUS>1",
        "qps>1,window=0",
        "qps>1,window=3601",
        "qps>1,for=86401",
        "qps>1,action=ban",
        "qps>1,mask=0",
        "qps>1,mask=129",
        "qps>1,x=1",
        "qps>1,window",
        "tunnel>1",
        "tunnel>1.5",
        "subdomains>10,mask=24",
        "qps>1.2.3",
        "qps>.5",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct dp_dynrule r;
        const char *why = NULL;
        ck_assert_msg(dp_anomaly_rule_parse(&r, bad[i], &why) == DOTPROXY_EINVAL, "%s", bad[i]);
        ck_assert_ptr_nonnull(why);
    }
}
END_TEST

START_TEST(test_anomaly_decayed_count_tends_to_rate_times_tau)
{
    /* 200 events per second for 60 s with tau 10 s: the count settles at
     * 200 x 10, and a second's silence takes it down by e^-0.1. */
    float c = 0, inv_tau = 1.0f / 10000.0f;
    for (int ms = 0; ms < 60000; ms += 5)
        c = dp_anomaly_age(c, 5, inv_tau) + 1;
    ck_assert_msg(fabsf(c / 10.0f - 200.0f) < 2.0f, "rate %f", (double)(c / 10.0f));
    float later = dp_anomaly_age(c, 1000, inv_tau);
    ck_assert(fabsf(later / c - expf(-0.1f)) < 1e-4f);
    ck_assert(dp_anomaly_age(c, 0, inv_tau) == c);
    ck_assert(dp_anomaly_decay(100.0f) == 0.0f);
}
END_TEST

START_TEST(test_anomaly_decayed_count_crosses_soon_after_a_flood_starts)
{
    /* Threshold 100/s over 10 s (count 1000); a flood of 1000/s starts: the
     * count crosses after about tau x ln(1 / (1 - 0.1)) = 1.05 s, a boxcar
     * window would after 1 s. */
    float c = 0, inv_tau = 1.0f / 10000.0f;
    int ms = 0;
    while (c <= 1000.0f && ms < 10000) {
        c = dp_anomaly_age(c, 1, inv_tau) + 1;
        ms++;
    }
    ck_assert_msg(ms > 1000 && ms < 1100, "crossed after %d ms", ms);
}
END_TEST

static size_t wire(uint8_t *out, const char *dotted)
{
    size_t o = 0;
    const char *p = dotted;
    while (*p != '\0') {
        const char *dot = strchr(p, '.');
        size_t n = dot != NULL ? (size_t)(dot - p) : strlen(p);
        out[o++] = (uint8_t)n;
        memcpy(out + o, p, n);
        o += n;
        p += n;
        if (*p == '.')
            p++;
    }
    out[o++] = 0;
    return o;
}

START_TEST(test_anomaly_shape_measures_labels_and_entropy)
{
    uint8_t w[256];
    struct dp_name_shape sh;
    size_t n = wire(w, "www");
    dp_anomaly_shape(&sh, w, n);
    ck_assert_uint_eq(sh.longest, 3);
    ck_assert(sh.entropy == 0); /* too short to bother */
    n = wire(w, "aaaaaaaaaaaaaaaaaaaa");
    dp_anomaly_shape(&sh, w, n);
    ck_assert_uint_eq(sh.longest, 20);
    ck_assert(sh.entropy < 0.01f);
    /* 32 symbols each twice: exactly 5 bits. */
    n = wire(w, "abcdefghijklmnopqrstuvwxyz234567.abcdefghijklmnopqrstuvwxyz234567");
    dp_anomaly_shape(&sh, w, n);
    ck_assert(fabsf(sh.entropy - 5.0f) < 0.01f);
    /* Words of the same length stay below base32 data. */
    n = wire(w, "mailserver.secondary.backup");
    dp_anomaly_shape(&sh, w, n);
    float words = sh.entropy;
    n = wire(w, "mfrggzdfmztwq2lknnwg23tpobyxe43u");
    dp_anomaly_shape(&sh, w, n);
    ck_assert_msg(words < 4.0f && sh.entropy > words, "%f %f", (double)words, (double)sh.entropy);
}
END_TEST

START_TEST(test_anomaly_tunnel_score_tells_a_tunnel_from_ordinary_names)
{
    struct dp_tunnel_feat t = {0}, o = {0};
    for (int i = 0; i < 30; i++) {
        t.n += 1, t.longest += 56, t.entropy += 4.4f, t.uniq += 1, t.types += 1, t.size += 300;
        o.n += 1, o.longest += 8, o.entropy += 0, o.uniq += (i % 5 == 0), o.types += 0,
            o.size += 90;
    }
    float st = dp_anomaly_tunnel_score(&t), so = dp_anomaly_tunnel_score(&o);
    ck_assert_msg(st > 0.85f && st <= 1.0f, "tunnel %f", (double)st);
    ck_assert_msg(so < 0.1f, "ordinary %f", (double)so);
    /* Too few queries: no score at all. */
    struct dp_tunnel_feat few = t;
    few.n = 3;
    ck_assert(dp_anomaly_tunnel_score(&few) == 0);
    /* DKIM-like TXT lookups: short labels, words, repeated. */
    struct dp_tunnel_feat dk = {
        .n = 20, .longest = 20 * 10, .entropy = 0, .uniq = 4, .types = 20, .size = 20 * 400};
    ck_assert(dp_anomaly_tunnel_score(&dk) < 0.6f);
}
END_TEST

static const char psl_text[] = "// test list\n"
                               "com\nuk\nco.uk\njp\n*.kawasaki.jp\n!city.kawasaki.jp\n"
                               "s3.dualstack.us-east-1.amazonaws.com\nblogspot.com\n";

static size_t dom(const struct dp_psl *p, const char *name, char *out)
{
    uint8_t w[256];
    size_t n = wire(w, name);
    uint64_t h;
    size_t off = dp_psl_domain(p, w, n, &h);
    /* back to text */
    size_t o = 0;
    for (size_t i = off; w[i] != 0; i += 1u + w[i]) {
        if (o > 0)
            out[o++] = '.';
        memcpy(out + o, w + i + 1, w[i]);
        o += w[i];
    }
    out[o] = '\0';
    return off;
}

START_TEST(test_psl_finds_registrable_domains_by_the_list_algorithm)
{
    struct dp_psl *p;
    ck_assert_int_eq(dp_psl_load_text(&p, psl_text, sizeof psl_text - 1), 0);
    ck_assert_uint_eq(dp_psl_rules(p), 8);
    char d[256];
    dom(p, "www.example.com", d);
    ck_assert_str_eq(d, "example.com");
    dom(p, "a.b.example.co.uk", d);
    ck_assert_str_eq(d, "example.co.uk");
    dom(p, "x.foo.kawasaki.jp", d); /* wildcard: foo.kawasaki.jp is a suffix */
    ck_assert_str_eq(d, "x.foo.kawasaki.jp");
    dom(p, "www.city.kawasaki.jp", d); /* exception */
    ck_assert_str_eq(d, "city.kawasaki.jp");
    dom(p, "a.b.s3.dualstack.us-east-1.amazonaws.com", d); /* no intermediate rules */
    ck_assert_str_eq(d, "b.s3.dualstack.us-east-1.amazonaws.com");
    dom(p, "x.y.amazonaws.com", d); /* a node, not a rule */
    ck_assert_str_eq(d, "amazonaws.com");
    dom(p, "www.example.unlisted", d); /* "*": the top label */
    ck_assert_str_eq(d, "example.unlisted");
    dom(p, "com", d); /* a suffix is its own domain */
    ck_assert_str_eq(d, "com");
    /* The same domain hashes the same, however deep the name. */
    uint8_t w1[256], w2[256];
    uint64_t h1, h2, h3;
    size_t n1 = wire(w1, "a.example.co.uk"), n2 = wire(w2, "b.c.d.example.co.uk");
    dp_psl_domain(p, w1, n1, &h1);
    dp_psl_domain(p, w2, n2, &h2);
    ck_assert(h1 == h2);
    n2 = wire(w2, "a.other.co.uk");
    dp_psl_domain(p, w2, n2, &h3);
    ck_assert(h1 != h3);
    dp_psl_free(p);
}
END_TEST

START_TEST(test_psl_loads_the_debian_list)
{
    struct dp_psl *p;
    ck_assert_int_eq(dp_psl_load(&p, NULL), 0);
    ck_assert_uint_gt(dp_psl_rules(p), 5000);
    char d[256];
    dom(p, "www.bbc.co.uk", d);
    ck_assert_str_eq(d, "bbc.co.uk");
    dom(p, "foo.bar.github.io", d);
    ck_assert_str_eq(d, "bar.github.io");
    dp_psl_free(p);
    ck_assert_int_eq(dp_psl_load(&p, "/nonexistent/psl.dat"), DOTPROXY_EINVAL);
}
END_TEST

START_TEST(test_psl_without_a_list_takes_the_last_two_labels)
{
    char d[256];
    dom(NULL, "a.b.example.co.uk", d);
    ck_assert_str_eq(d, "co.uk");
    dom(NULL, "com", d);
    ck_assert_str_eq(d, "com");
}
END_TEST

static Suite *anomaly_suite(void)
{
    Suite *s = suite_create("anomaly");
    TCase *tc = tcase_create("anomaly");
    tcase_add_test(tc, test_anomaly_rule_parses_every_option);
    tcase_add_test(tc, test_anomaly_rule_refuses_what_is_wrong);
    tcase_add_test(tc, test_anomaly_decayed_count_tends_to_rate_times_tau);
    tcase_add_test(tc, test_anomaly_decayed_count_crosses_soon_after_a_flood_starts);
    tcase_add_test(tc, test_anomaly_shape_measures_labels_and_entropy);
    tcase_add_test(tc, test_anomaly_tunnel_score_tells_a_tunnel_from_ordinary_names);
    suite_add_tcase(s, tc);
    tc = tcase_create("psl");
    tcase_add_test(tc, test_psl_finds_registrable_domains_by_the_list_algorithm);
    tcase_add_test(tc, test_psl_loads_the_debian_list);
    tcase_add_test(tc, test_psl_without_a_list_takes_the_last_two_labels);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(anomaly_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
