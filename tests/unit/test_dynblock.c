/* SPDX-License-Identifier: MIT */
/* Unit tests of lib/dynblock.c: every metric and action through the three
 * hooks with an injected clock, block expiry after `for`, prefix grouping,
 * exemptions, clearing, the bounded tables under a flood of a million
 * sources (RSS), and several threads sharing one state. */
#include <check.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "dotproxy/config.h"
#include "dotproxy/dns.h"
#include "dotproxy/error.h"
#include "dynblock.h"

#include "../support/dynblock_traffic.h"

#define SEC 1000000ull

static struct sockaddr_storage addr(const char *s)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *in = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, s, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
    } else {
        ck_assert(inet_pton(AF_INET6, s, &in6->sin6_addr) == 1);
        in6->sin6_family = AF_INET6;
    }
    return ss;
}

#define SA(x) ((const struct sockaddr *)&(x))

/* Queries, answers and states: tests/support/dynblock_traffic.h (shared
 * with bench/dynblock_cost.c). */
static void mkq(struct dp_test_q *q, unsigned id, const char *name, unsigned qtype)
{
    ck_assert_msg(dp_test_q_make(q, id, name, qtype) == 0, "%s", name);
}

#define mka dp_test_q_answer

static struct dotproxy_dynblock *make(const char *const *rules, const char *const *exempt)
{
    struct dotproxy_dynblock *db = dp_test_dynblock_make(rules, exempt);
    ck_assert_ptr_nonnull(db);
    return db;
}

/* n queries from a at `qps`, from t on; returns the first time one was
 * blocked with `want` (or 0), and advances *t. */
static uint64_t send_for(struct dotproxy_dynblock *db, const struct sockaddr *a, const char *name,
                         unsigned qtype, double qps, unsigned n, uint64_t *t, int want)
{
    struct dp_test_q q;
    mkq(&q, 1, name, qtype);
    uint64_t first = 0;
    for (unsigned i = 0; i < n; i++) {
        *t += (uint64_t)(SEC / qps);
        int v = dp_dynblock_query(db, a, q.msg, &q.info, *t, NULL);
        if (v == want && first == 0)
            first = *t;
    }
    return first;
}

START_TEST(test_dynblock_qps_blocks_within_a_second_then_ends_after_for)
{
    static const char *const rules[] = {"qps>20,window=10,for=5,action=refuse", NULL};
    struct dotproxy_dynblock *db = make(rules, NULL);
    struct sockaddr_storage a = addr("127.0.0.2"), b = addr("127.0.0.3");
    uint64_t t = 100 * SEC;
    /* 10 qps for 30 s: never over 20. */
    ck_assert(send_for(db, SA(a), "www.example.com", 1, 10, 300, &t, DOTPROXY_DYNBLOCK_REFUSE) ==
              0);
    /* 400 qps: the 10 s average is over 20 after about 0.3 s. */
    uint64_t start = t;
    uint64_t hit =
        send_for(db, SA(a), "www.example.com", 1, 400, 800, &t, DOTPROXY_DYNBLOCK_REFUSE);
    ck_assert_uint_gt(hit, 0);
    ck_assert_msg(hit - start < SEC, "blocked after %llu us", (unsigned long long)(hit - start));
    /* The other client is served meanwhile. */
    ck_assert(send_for(db, SA(b), "www.example.com", 1, 5, 5, &t, DOTPROXY_DYNBLOCK_REFUSE) == 0);
    dotproxy_dynblock_entry e[4];
    ck_assert_uint_eq(dp_dynblock_list(db, e, 4, t), 1);
    ck_assert_str_eq(e[0].key, "127.0.0.2");
    ck_assert_int_eq(e[0].action, DOTPROXY_DYNBLOCK_REFUSE);
    ck_assert_uint_gt(e[0].blocked, 0);
    ck_assert(strstr(e[0].reason, "qps") != NULL);
    /* Quiet: the 10 s rate (count about 760) falls under 20 (count 200)
     * after 10 x ln(760 / 200) = 13.3 s; the block holds `for` 5 s more,
     * then ends. */
    t += 16 * SEC;
    dp_dynblock_sweep(db, t);
    ck_assert_uint_eq(dp_dynblock_list(db, e, 4, t), 1);
    t += 4 * SEC;
    dp_dynblock_sweep(db, t);
    ck_assert_uint_eq(dp_dynblock_list(db, e, 4, t), 0);
    ck_assert(send_for(db, SA(a), "www.example.com", 1, 5, 3, &t, DOTPROXY_DYNBLOCK_REFUSE) == 0);
    ck_assert_uint_eq(dp_dynblock_events(db, 0), 1);
    uint64_t hits;
    char text[128];
    ck_assert_int_eq(dp_dynblock_rule(db, 0, text, sizeof text, &hits), 0);
    ck_assert_str_eq(text, rules[0]);
    ck_assert_uint_gt(hits, 0);
    /* The default detectors are listed after the given rules. */
    ck_assert_int_eq(dp_dynblock_rule(db, 1, text, sizeof text, NULL), 0);
    ck_assert_str_eq(text, "subdomains>50");
    ck_assert_int_eq(dp_dynblock_rule(db, 2, text, sizeof text, NULL), 0);
    ck_assert_int_eq(dp_dynblock_rule(db, 3, text, sizeof text, NULL), DOTPROXY_EINVAL);
    dp_dynblock_unref(db);
}
END_TEST

START_TEST(test_dynblock_log_action_reports_but_never_blocks)
{
    static const char *const rules[] = {"qps>20", NULL};
    struct dotproxy_dynblock *db = make(rules, NULL);
    struct sockaddr_storage a = addr("127.0.0.2");
    uint64_t t = SEC;
    for (int want = DOTPROXY_DYNBLOCK_REFUSE; want <= DOTPROXY_DYNBLOCK_TRUNCATE; want++)
        ck_assert(send_for(db, SA(a), "x.example.com", 1, 500, 500, &t, want) == 0);
    dotproxy_dynblock_entry e[2];
    ck_assert_uint_eq(dp_dynblock_list(db, e, 2, t), 1);
    ck_assert_int_eq(e[0].action, DOTPROXY_DYNBLOCK_LOG);
    ck_assert_uint_gt(e[0].blocked, 0);
    dp_dynblock_unref(db);
}
END_TEST

START_TEST(test_dynblock_mask_groups_a_prefix_and_exempt_is_never_blocked)
{
    static const char *const rules[] = {"qps>30,action=drop,mask=24", NULL};
    static const char *const exempt[] = {"10.9.0.0/16", NULL};
    struct dotproxy_dynblock *db = make(rules, exempt);
    struct sockaddr_storage a = addr("127.0.0.2"), b = addr("127.0.0.3"), c = addr("127.0.1.3");
    struct sockaddr_storage x = addr("10.9.8.7");
    uint64_t t = SEC;
    /* 20 qps each from two addresses of one /24: 40 together. */
    uint64_t hit = 0;
    struct dp_test_q q;
    mkq(&q, 7, "www.example.com", 1);
    for (int i = 0; i < 1200 && hit == 0; i++) {
        t += SEC / 40;
        const struct sockaddr *s = i % 2 ? SA(a) : SA(b);
        if (dp_dynblock_query(db, s, q.msg, &q.info, t, NULL) == DOTPROXY_DYNBLOCK_DROP)
            hit = t;
    }
    ck_assert_uint_gt(hit, 0);
    ck_assert_int_eq(dp_dynblock_query(db, SA(a), q.msg, &q.info, t + 1, NULL),
                     DOTPROXY_DYNBLOCK_DROP);
    ck_assert_int_eq(dp_dynblock_query(db, SA(c), q.msg, &q.info, t + 2, NULL), DP_DYNBLOCK_PASS);
    dotproxy_dynblock_entry e[2];
    ck_assert_uint_eq(dp_dynblock_list(db, e, 2, t), 1);
    ck_assert_str_eq(e[0].key, "127.0.0.0/24");
    /* The exempt client at 1000 qps is never blocked (nor listed). */
    ck_assert(send_for(db, SA(x), "www.example.com", 1, 1000, 3000, &t, DOTPROXY_DYNBLOCK_DROP) ==
              0);
    ck_assert_uint_eq(dp_dynblock_list(db, e, 2, t), 1);
    dp_dynblock_unref(db);
}
END_TEST

START_TEST(test_dynblock_answer_rates_nxdomain_servfail_bytes)
{
    static const char *const rules[] = {"nxdomain>10,action=refuse", "servfail>10,action=drop",
                                        "bytes>20000,action=truncate", NULL};
    struct dotproxy_dynblock *db = make(rules, NULL);
    struct sockaddr_storage a = addr("127.0.0.2"), b = addr("127.0.0.3"), c = addr("127.0.0.4");
    uint8_t ans[2000];
    struct dp_test_q q;
    mkq(&q, 1, "nx.example.com", 1);
    uint64_t t = SEC;
    /* 50 NXDOMAIN/s to a, NOERROR to b at the same rate. */
    for (int i = 0; i < 200; i++) {
        t += SEC / 50;
        dp_dynblock_answer(db, SA(a), ans, mka(ans, &q, 3, 60), 1, 1, t, 0);
        dp_dynblock_answer(db, SA(b), ans, mka(ans, &q, 0, 60), 1, 1, t, 0);
    }
    ck_assert_int_eq(dp_dynblock_query(db, SA(a), q.msg, &q.info, t, NULL),
                     DOTPROXY_DYNBLOCK_REFUSE);
    ck_assert_int_eq(dp_dynblock_query(db, SA(b), q.msg, &q.info, t, NULL), DP_DYNBLOCK_PASS);
    /* SERVFAIL to c. */
    for (int i = 0; i < 200; i++) {
        t += SEC / 50;
        dp_dynblock_answer(db, SA(c), ans, mka(ans, &q, 2, 60), 0, 1, t, 0);
    }
    ck_assert_int_eq(dp_dynblock_query(db, SA(c), q.msg, &q.info, t, NULL), DOTPROXY_DYNBLOCK_DROP);
    /* 1500-octet UDP answers at 50/s to b: 75000 octets/s. Over TCP they
     * would not count. */
    struct sockaddr_storage d = addr("127.0.0.5");
    for (int i = 0; i < 200; i++) {
        t += SEC / 50;
        dp_dynblock_answer(db, SA(d), ans, mka(ans, &q, 0, 1500), 0, 255, t, 0);
    }
    ck_assert_int_eq(dp_dynblock_query(db, SA(d), q.msg, &q.info, t, NULL), DP_DYNBLOCK_PASS);
    for (int i = 0; i < 200; i++) {
        t += SEC / 50;
        dp_dynblock_answer(db, SA(b), ans, mka(ans, &q, 0, 1500), 1, 255, t, 0);
    }
    ck_assert_int_eq(dp_dynblock_query(db, SA(b), q.msg, &q.info, t, NULL),
                     DOTPROXY_DYNBLOCK_TRUNCATE);
    ck_assert_uint_eq(dp_dynblock_events(db, 1), 1);
    ck_assert_uint_eq(dp_dynblock_events(db, 2), 1);
    ck_assert_uint_eq(dp_dynblock_events(db, 3), 1);
    dp_dynblock_unref(db);
}
END_TEST

/* The answer hook finds the client's entry through the slot the query hook
 * gave; a slot that names another client's entry (taken over since, or
 * plain wrong) is noticed and the answer counted for its own client. */
START_TEST(test_dynblock_answer_slot_counts_its_own_client_only)
{
    static const char *const rules[] = {"nxdomain>10,action=refuse", NULL};
    struct dotproxy_dynblock *db = make(rules, NULL);
    struct sockaddr_storage a = addr("127.0.0.2"), b = addr("127.0.0.3"), c = addr("127.0.0.4");
    uint8_t ans[100];
    struct dp_test_q q;
    mkq(&q, 1, "nx.example.com", 1);
    uint64_t t = SEC;
    uint32_t sa = 0, sc = 0;
    for (int i = 0; i < 200; i++) {
        t += SEC / 50;
        ck_assert_int_eq(dp_dynblock_query(db, SA(a), q.msg, &q.info, t, &sa), DP_DYNBLOCK_PASS);
        ck_assert_uint_ne(sa, 0);
        dp_dynblock_answer(db, SA(a), ans, mka(ans, &q, 0, 60), 1, 1, t, sa);
        /* b's NXDOMAIN answers come with a's slot: they count for b. */
        dp_dynblock_answer(db, SA(b), ans, mka(ans, &q, 3, 60), 1, 1, t, sa);
        /* c's through its own slot; a slot out of range is looked past. */
        (void)dp_dynblock_query(db, SA(c), q.msg, &q.info, t, &sc);
        dp_dynblock_answer(db, SA(c), ans, mka(ans, &q, 3, 60), 1, 1, t, i % 2 ? sc : UINT32_MAX);
    }
    ck_assert_int_eq(dp_dynblock_query(db, SA(a), q.msg, &q.info, t, NULL), DP_DYNBLOCK_PASS);
    ck_assert_int_eq(dp_dynblock_query(db, SA(b), q.msg, &q.info, t, NULL),
                     DOTPROXY_DYNBLOCK_REFUSE);
    ck_assert_int_eq(dp_dynblock_query(db, SA(c), q.msg, &q.info, t, NULL),
                     DOTPROXY_DYNBLOCK_REFUSE);
    dotproxy_dynblock_entry e[4];
    ck_assert_uint_eq(dp_dynblock_list(db, e, 4, t), 2);
    dp_dynblock_unref(db);
}
END_TEST

START_TEST(test_dynblock_qtype_rule_counts_only_that_type)
{
    static const char *const rules[] = {"qtype:ANY>5,action=refuse", NULL};
    struct dotproxy_dynblock *db = make(rules, NULL);
    struct sockaddr_storage a = addr("127.0.0.2"), b = addr("127.0.0.3");
    uint64_t t = SEC;
    ck_assert(send_for(db, SA(a), "www.example.com", 1, 100, 500, &t, DOTPROXY_DYNBLOCK_REFUSE) ==
              0);
    ck_assert(send_for(db, SA(b), "www.example.com", 255, 20, 100, &t, DOTPROXY_DYNBLOCK_REFUSE) !=
              0);
    dp_dynblock_unref(db);
}
END_TEST

START_TEST(test_dynblock_subdomains_blocks_missed_names_of_one_domain_only)
{
    static const char *const rules[] = {"subdomains>20,action=refuse", NULL};
    static const char *const exempt[] = {"127.0.0.9", NULL};
    struct dotproxy_dynblock *db = make(rules, exempt);
    uint64_t t = SEC;
    char name[64];
    struct dp_test_q q;
    uint64_t hit = 0;
    /* 8 sources, 100 random names per second together, all missing. */
    for (int i = 0; i < 2000 && hit == 0; i++) {
        char src[32];
        snprintf(src, sizeof src, "127.0.0.%d", 10 + i % 8);
        struct sockaddr_storage s = addr(src);
        snprintf(name, sizeof name, "r%08x.victim.co.uk", (unsigned)(i * 2654435761u));
        mkq(&q, 1, name, 1);
        t += SEC / 100;
        if (dp_dynblock_miss(db, SA(s), q.msg, &q.info, 0, t) == DOTPROXY_DYNBLOCK_REFUSE)
            hit = t;
    }
    ck_assert_uint_gt(hit, 0);
    ck_assert_uint_lt(hit, 4 * SEC); /* 20/s over 10 s at 100/s: about 2.2 s */
    dotproxy_dynblock_entry e[2];
    ck_assert_uint_eq(dp_dynblock_list(db, e, 2, t), 1);
    ck_assert_str_eq(e[0].key, "victim.co.uk");
    /* Another domain, and an exempt client, are served. */
    struct sockaddr_storage s = addr("127.0.0.10"), x = addr("127.0.0.9");
    mkq(&q, 1, "www.other.co.uk", 1);
    ck_assert_int_eq(dp_dynblock_miss(db, SA(s), q.msg, &q.info, 0, t), DP_DYNBLOCK_PASS);
    mkq(&q, 1, "zz.victim.co.uk", 1);
    ck_assert_int_eq(dp_dynblock_miss(db, SA(x), q.msg, &q.info, 0, t), DP_DYNBLOCK_PASS);
    ck_assert_int_eq(dp_dynblock_miss(db, SA(s), q.msg, &q.info, 0, t), DOTPROXY_DYNBLOCK_REFUSE);
    /* The same missed name again and again is one name: no event. */
    struct dotproxy_dynblock *db2 = make(rules, NULL);
    mkq(&q, 1, "www.busy.com", 1);
    t = SEC;
    for (int i = 0; i < 3000; i++) {
        t += SEC / 300;
        ck_assert_int_eq(dp_dynblock_miss(db2, SA(s), q.msg, &q.info, 0, t), DP_DYNBLOCK_PASS);
    }
    ck_assert_uint_eq(dp_dynblock_list(db2, e, 2, t), 0);
    dp_dynblock_unref(db2);
    dp_dynblock_unref(db);
}
END_TEST

/* The miss hook remembers name -> domain by the cache key's hash: a block
 * that starts on a remembered name still names its domain, and a new state
 * (new suffix keys) never takes an old state's memory for its own. */
/* A name is one name whatever its case (the hooks hash it lower-cased,
 * eight octets at a time, then the rest): case variants of one name do not
 * count as distinct, names that differ in any octet, in the words or in
 * the tail, do. */
START_TEST(test_dynblock_names_are_counted_case_blind)
{
    static const char *const rules[] = {"subdomains>5,window=10,action=refuse", NULL};
    struct dotproxy_dynblock *db = make(rules, NULL);
    struct sockaddr_storage s = addr("127.0.0.10");
    struct dp_test_q q;
    uint64_t t = SEC;
    /* 1,000 case variants of one 30-octet name at 100/s: one name. The
     * variants are in its first label (three words and a tail of the
     * hash), its domain kept as is so that all count under one domain. */
    const char *base = "abcdefghijklmnopq.victim.com";
    for (unsigned i = 0; i < 1000; i++) {
        char name[64];
        for (unsigned k = 0; base[k] != 0; k++)
            name[k] = (char)(k < 17 && (i >> (k % 10)) & 1 ? base[k] - 32 : base[k]);
        name[strlen(base)] = 0;
        mkq(&q, 1, name, 1);
        t += SEC / 100;
        ck_assert_int_eq(dp_dynblock_miss(db, SA(s), q.msg, &q.info, 0, t), DP_DYNBLOCK_PASS);
    }
    /* Names differing in one octet, in the first word or in the tail,
     * are distinct: 100 of them at 100/s cross 5/s over 10 s. */
    int blocked = 0;
    for (unsigned i = 0; i < 200 && !blocked; i++) {
        char name[64];
        snprintf(name, sizeof name,
                 i % 2 ? "abcdefg%c.victim.com" : "abcdefghijklmnopq%c.victim.com",
                 'a' + (int)(i / 2 % 26));
        if (i / 2 >= 26)
            snprintf(name, sizeof name, "x%u.abcdefghijk.victim.com", i);
        mkq(&q, 1, name, 1);
        t += SEC / 100;
        blocked = dp_dynblock_miss(db, SA(s), q.msg, &q.info, 0, t) == DOTPROXY_DYNBLOCK_REFUSE;
    }
    ck_assert(blocked);
    dp_dynblock_unref(db);
}
END_TEST

START_TEST(test_dynblock_subdomains_domain_memo_by_name_hash)
{
    static const char *const rules[] = {"subdomains>20,action=refuse", NULL};
    struct dotproxy_dynblock *db = make(rules, NULL);
    struct sockaddr_storage s = addr("127.0.0.10");
    char name[64];
    struct dp_test_q q;
    uint64_t t = SEC;
    /* Remembered first, slowly (1 name/s: no event)... */
    for (unsigned i = 0; i < 300; i++) {
        snprintf(name, sizeof name, "r%08x.victim.co.uk", i * 2654435761u);
        mkq(&q, 1, name, 1);
        t += SEC;
        ck_assert_int_eq(
            dp_dynblock_miss(db, SA(s), q.msg, &q.info, (i + 1) * 0x9e3779b97f4a7c15ull, t),
            DP_DYNBLOCK_PASS);
    }
    /* ...then asked again for another type (new misses), fast: the block
     * starts on a remembered name and is keyed by its domain. */
    uint64_t hit = 0;
    for (unsigned i = 0; i < 300 && hit == 0; i++) {
        snprintf(name, sizeof name, "r%08x.victim.co.uk", i * 2654435761u);
        mkq(&q, 1, name, 28);
        t += SEC / 100;
        if (dp_dynblock_miss(db, SA(s), q.msg, &q.info, (i + 1) * 0x9e3779b97f4a7c15ull, t) ==
            DOTPROXY_DYNBLOCK_REFUSE)
            hit = t;
    }
    ck_assert_uint_gt(hit, 0);
    dotproxy_dynblock_entry e[2];
    ck_assert_uint_eq(dp_dynblock_list(db, e, 2, t), 1);
    ck_assert_str_eq(e[0].key, "victim.co.uk");
    dp_dynblock_unref(db);

    /* A new state, the same hashes for names of another domain: they count
     * under that domain, which is blocked, and victim.co.uk is not. */
    struct dotproxy_dynblock *db2 = make(rules, NULL);
    hit = 0;
    t = SEC;
    for (unsigned i = 0; i < 300 && hit == 0; i++) {
        snprintf(name, sizeof name, "r%08x.other.com", i * 2654435761u);
        mkq(&q, 1, name, 1);
        t += SEC / 100;
        if (dp_dynblock_miss(db2, SA(s), q.msg, &q.info, (i + 1) * 0x9e3779b97f4a7c15ull, t) ==
            DOTPROXY_DYNBLOCK_REFUSE)
            hit = t;
    }
    ck_assert_uint_gt(hit, 0);
    ck_assert_uint_eq(dp_dynblock_list(db2, e, 2, t), 1);
    ck_assert_str_eq(e[0].key, "other.com");
    mkq(&q, 1, "zz.other.com", 1);
    ck_assert_int_eq(dp_dynblock_miss(db2, SA(s), q.msg, &q.info, 0, t), DOTPROXY_DYNBLOCK_REFUSE);
    mkq(&q, 1, "zz.victim.co.uk", 1);
    ck_assert_int_eq(dp_dynblock_miss(db2, SA(s), q.msg, &q.info, 0, t), DP_DYNBLOCK_PASS);
    dp_dynblock_unref(db2);
}
END_TEST

static void b32(char *out, unsigned len, unsigned seed)
{
    static const char al[] = "abcdefghijklmnopqrstuvwxyz234567";
    for (unsigned i = 0; i < len; i++) {
        seed = seed * 1103515245u + 12345u;
        out[i] = al[(seed >> 16) & 31];
    }
    out[len] = '\0';
}

START_TEST(test_dynblock_tunnel_blocks_that_client_and_domain_only)
{
    static const char *const rules[] = {"tunnel>0.7,action=drop", NULL};
    struct dotproxy_dynblock *db = make(rules, NULL);
    struct sockaddr_storage a = addr("127.0.0.2"), b = addr("127.0.0.3");
    uint64_t t = SEC, start = t, hit = 0;
    char lab[64], name[128];
    struct dp_test_q q;
    uint8_t ans[400];
    for (unsigned i = 0; i < 600 && hit == 0; i++) {
        b32(lab, 50 + i % 11, i + 1);
        snprintf(name, sizeof name, "%s.t.example.com", lab);
        mkq(&q, i, name, 16);
        t += SEC / 30;
        if (dp_dynblock_query(db, SA(a), q.msg, &q.info, t, NULL) == DOTPROXY_DYNBLOCK_DROP)
            hit = t;
        dp_dynblock_answer(db, SA(a), ans, mka(ans, &q, 0, 250), 1, 16, t + 1000, 0);
    }
    ck_assert_uint_gt(hit, 0);
    ck_assert_msg(hit - start < 10 * SEC, "%llu", (unsigned long long)(hit - start));
    dotproxy_dynblock_entry e[2];
    ck_assert_uint_eq(dp_dynblock_list(db, e, 2, t), 1);
    ck_assert_str_eq(e[0].key, "127.0.0.2 example.com");
    ck_assert(strstr(e[0].reason, "tunnel score") != NULL);
    /* Even a short A query of that client to that domain is dropped; its
     * other domains and other clients are served. */
    mkq(&q, 1, "www.example.com", 1);
    ck_assert_int_eq(dp_dynblock_query(db, SA(a), q.msg, &q.info, t + 1, NULL),
                     DOTPROXY_DYNBLOCK_DROP);
    ck_assert_int_eq(dp_dynblock_query(db, SA(b), q.msg, &q.info, t + 2, NULL), DP_DYNBLOCK_PASS);
    mkq(&q, 1, "www.example.org", 1);
    ck_assert_int_eq(dp_dynblock_query(db, SA(a), q.msg, &q.info, t + 3, NULL), DP_DYNBLOCK_PASS);
    dp_dynblock_unref(db);
}
END_TEST

START_TEST(test_dynblock_tunnel_ignores_ordinary_browsing)
{
    struct dotproxy_dynblock *db = make(NULL, NULL); /* defaults: tunnel>0.6 log */
    struct sockaddr_storage a = addr("127.0.0.2");
    static const char *const hosts[] = {"www", "mail", "api", "cdn", "img", "static"};
    static const unsigned types[] = {1, 28, 65, 16, 15, 1};
    uint64_t t = SEC;
    char name[128];
    struct dp_test_q q;
    for (unsigned i = 0; i < 5000; i++) {
        snprintf(name, sizeof name, "%s.site%u.example.com", hosts[i % 6], i % 37);
        mkq(&q, i, name, types[i % 6]);
        t += SEC / 50;
        dp_dynblock_query(db, SA(a), q.msg, &q.info, t, NULL);
    }
    dotproxy_dynblock_entry e[2];
    ck_assert_uint_eq(dp_dynblock_list(db, e, 2, t), 0);
    ck_assert_uint_eq(dp_dynblock_events(db, 6), 0);
    dp_dynblock_unref(db);
}
END_TEST

START_TEST(test_dynblock_clear_ends_every_block_at_once)
{
    static const char *const rules[] = {"qps>10,action=refuse", NULL};
    struct dotproxy_dynblock *db = make(rules, NULL);
    struct sockaddr_storage a = addr("127.0.0.2");
    uint64_t t = SEC;
    ck_assert(send_for(db, SA(a), "a.example.com", 1, 200, 200, &t, DOTPROXY_DYNBLOCK_REFUSE) != 0);
    ck_assert_uint_eq(dp_dynblock_clear(db, t), 1);
    dotproxy_dynblock_entry e[2];
    ck_assert_uint_eq(dp_dynblock_list(db, e, 2, t), 0);
    struct dp_test_q q;
    mkq(&q, 1, "a.example.com", 1);
    /* Still over its rate: a new block starts (a fresh event). */
    ck_assert_int_eq(dp_dynblock_query(db, SA(a), q.msg, &q.info, t + 1000, NULL),
                     DOTPROXY_DYNBLOCK_REFUSE);
    ck_assert_uint_eq(dp_dynblock_events(db, 0), 2);
    dp_dynblock_unref(db);
}
END_TEST

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (f != NULL && fgets(line, sizeof line, f) != NULL)
        if (sscanf(line, "VmRSS: %ld", &kib) == 1)
            break;
    if (f != NULL)
        fclose(f);
    return kib;
}

START_TEST(test_dynblock_million_spoofed_sources_stay_bounded_and_the_heavy_hitter_is_found)
{
    static const char *const rules[] = {"qps>50,action=refuse", "nxdomain>50", "qtype:TXT>50",
                                        "bytes>100000", NULL};
    long before = rss_kib();
    struct dotproxy_dynblock *db = make(rules, NULL);
    ck_assert_uint_lt(dp_dynblock_memory(db), 16u << 20);
    struct sockaddr_storage heavy = addr("198.51.100.7");
    struct sockaddr_in s = {.sin_family = AF_INET};
    struct dp_test_q q;
    mkq(&q, 1, "www.example.com", 1);
    uint8_t ans[100];
    uint64_t t = SEC, hit = 0;
    uint32_t x = 12345;
    /* 1,000,000 distinct sources over 10 s (100k qps), the heavy hitter
     * among them at 200 qps. */
    for (uint32_t i = 0; i < 1000000; i++) {
        x = x * 1664525u + 1013904223u;
        s.sin_addr.s_addr = htonl((x & 0xff000000u) | i);
        t += 10;
        dp_dynblock_query(db, (const struct sockaddr *)&s, q.msg, &q.info, t, NULL);
        dp_dynblock_answer(db, (const struct sockaddr *)&s, ans, mka(ans, &q, 3, 100), 1, 1, t, 0);
        if (i % 500 == 0 &&
            dp_dynblock_query(db, SA(heavy), q.msg, &q.info, t, NULL) == DOTPROXY_DYNBLOCK_REFUSE &&
            hit == 0)
            hit = t;
    }
    long after = rss_kib();
    ck_assert_uint_gt(hit, 0);
    ck_assert_msg(after - before < 64 * 1024, "RSS grew by %ld KiB", after - before);
    dp_dynblock_unref(db);
}
END_TEST

struct th {
    struct dotproxy_dynblock *db;
    pthread_barrier_t *step; /* NULL: alone */
    int blocked;
};

static void *worker(void *arg)
{
    struct th *w = arg;
    struct sockaddr_storage a = addr("127.0.0.2");
    struct dp_test_q q;
    mkq(&q, 1, "www.example.com", 1);
    /* Each "worker" sees a quarter of the client's 60 qps, in the same
     * (shared) clock: 15 qps each for 20 s. */
    for (int i = 0; i < 300; i++) {
        uint64_t t = SEC + (uint64_t)i * (SEC / 15);
        if (w->step != NULL)
            pthread_barrier_wait(w->step); /* the workers' clocks agree */
        if (dp_dynblock_query(w->db, SA(a), q.msg, &q.info, t, NULL) == DOTPROXY_DYNBLOCK_REFUSE)
            w->blocked = 1;
    }
    return NULL;
}

START_TEST(test_dynblock_shared_state_sees_a_client_split_across_workers_as_one)
{
    static const char *const rules[] = {"qps>40,action=refuse", NULL};
    struct dotproxy_dynblock *db = make(rules, NULL);
    struct th w[4];
    pthread_t tid[4];
    pthread_barrier_t step;
    pthread_barrier_init(&step, NULL, 4);
    for (int i = 0; i < 4; i++) {
        w[i] = (struct th){.db = db, .step = &step};
        ck_assert_int_eq(pthread_create(&tid[i], NULL, worker, &w[i]), 0);
    }
    int any = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(tid[i], NULL);
        any |= w[i].blocked;
    }
    pthread_barrier_destroy(&step);
    ck_assert(any);
    /* One worker alone at 15 qps: never. */
    struct dotproxy_dynblock *db1 = make(rules, NULL);
    struct th one = {.db = db1};
    worker(&one);
    ck_assert(!one.blocked);
    dp_dynblock_unref(db1);
    dp_dynblock_unref(db);
}
END_TEST

static Suite *dynblock_suite(void)
{
    Suite *s = suite_create("dynblock");
    TCase *tc = tcase_create("dynblock");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_dynblock_qps_blocks_within_a_second_then_ends_after_for);
    tcase_add_test(tc, test_dynblock_log_action_reports_but_never_blocks);
    tcase_add_test(tc, test_dynblock_mask_groups_a_prefix_and_exempt_is_never_blocked);
    tcase_add_test(tc, test_dynblock_answer_rates_nxdomain_servfail_bytes);
    tcase_add_test(tc, test_dynblock_answer_slot_counts_its_own_client_only);
    tcase_add_test(tc, test_dynblock_qtype_rule_counts_only_that_type);
    tcase_add_test(tc, test_dynblock_subdomains_blocks_missed_names_of_one_domain_only);
    tcase_add_test(tc, test_dynblock_subdomains_domain_memo_by_name_hash);
    tcase_add_test(tc, test_dynblock_names_are_counted_case_blind);
    tcase_add_test(tc, test_dynblock_tunnel_blocks_that_client_and_domain_only);
    tcase_add_test(tc, test_dynblock_tunnel_ignores_ordinary_browsing);
    tcase_add_test(tc, test_dynblock_clear_ends_every_block_at_once);
    tcase_add_test(
        tc, test_dynblock_million_spoofed_sources_stay_bounded_and_the_heavy_hitter_is_found);
    tcase_add_test(tc, test_dynblock_shared_state_sees_a_client_split_across_workers_as_one);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(dynblock_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
