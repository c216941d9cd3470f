/* SPDX-License-Identifier: MIT */
/* Unit tests of lib/cache.c: keys, DNS lifetimes (positive, RFC 2308
 * negative, SERVFAIL), TTL decrement, serve-stale (RFC 8767), the prefetch
 * hint, OPT stripping, output shape, eviction bounds and scan resistance.
 * Time is injected: every call takes now_us from the test. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "dns_msg.h"
#include "dotproxy/dns.h"
#include "dotproxy/error.h"
#include "msgbuild.h"

#define T0     ((uint64_t)1000000 * 1000000) /* an arbitrary "now" in microseconds */
#define SEC(s) ((uint64_t)(s)*1000000)

#define T_A     1
#define T_NS    2
#define T_CNAME 5
#define T_SOA   6
#define T_AAAA  28
#define T_HTTPS 65
#define QR      DOTPROXY_DNS_FLAG_QR
#define RD      DOTPROXY_DNS_FLAG_RD
#define RA      DOTPROXY_DNS_FLAG_RA
#define CD      DOTPROXY_DNS_FLAG_CD
#define TC      DOTPROXY_DNS_FLAG_TC

/* ---- messages (the primitives are in msgbuild.h) ------------------------- */

/* Header with all counts zero, then one question. */
static void m_start(struct msg *m, unsigned id, unsigned flags, const char *qname, unsigned qtype)
{
    m->n = 0;
    m_u16(m, id);
    m_u16(m, flags);
    m_u16(m, 1);
    m_u16(m, 0);
    m_u16(m, 0);
    m_u16(m, 0);
    m_name(m, qname);
    m_u16(m, qtype);
    m_u16(m, 1);
}

/* Count one more RR in section 0 (answer), 1 (authority) or 2 (additional). */
static void m_count(struct msg *m, int section)
{
    size_t off = 6 + 2 * (size_t)section;
    m_put16(m, off, ((unsigned)m->b[off] << 8 | m->b[off + 1]) + 1);
}

/* An A record whose owner is a pointer to the question name. */
static void m_a(struct msg *m, int section, uint32_t ttl, unsigned last_octet)
{
    m_u16(m, 0xC00C);
    m_u16(m, T_A);
    m_u16(m, 1);
    m_u32(m, ttl);
    m_u16(m, 4);
    m_u8(m, 192);
    m_u8(m, 0);
    m_u8(m, 2);
    m_u8(m, last_octet);
    m_count(m, section);
}

/* An SOA for `zone` in the authority section. */
static void m_soa(struct msg *m, const char *zone, uint32_t ttl, uint32_t minimum)
{
    m_name(m, zone);
    m_u16(m, T_SOA);
    m_u16(m, 1);
    m_u32(m, ttl);
    size_t rdlen_at = m->n;
    m_u16(m, 0);
    m_name(m, "ns1.example.net");
    m_name(m, "hostmaster.example.net");
    m_u32(m, 2024010101);
    m_u32(m, 7200);
    m_u32(m, 3600);
    m_u32(m, 1209600);
    m_u32(m, minimum);
    m_put16(m, rdlen_at, (unsigned)(m->n - rdlen_at - 2));
    m_count(m, 1);
}

static void m_opt(struct msg *m, int do_bit)
{
    m_u8(m, 0);
    m_u16(m, 41);
    m_u16(m, 1232);
    m_u32(m, do_bit ? 0x8000u : 0);
    m_u16(m, 0);
    m_count(m, 2);
}

static void m_query(struct msg *m, unsigned id, const char *qname, unsigned qtype, unsigned flags,
                    int opt, int do_bit)
{
    m_start(m, id, flags, qname, qtype);
    if (opt)
        m_opt(m, do_bit);
}

static void make_key(struct dp_cache_key *k, const struct msg *q)
{
    dotproxy_dns_info info;
    ck_assert_int_eq(dotproxy_dns_parse(&info, q->b, q->n), 0);
    ck_assert_int_eq(dp_cache_key_make(k, q->b, q->n, &info), 0);
}

/* The TTLs of every RR in msg (OPT included, if any), in order. */
static size_t ttls_of(const uint8_t *msg, size_t len, uint32_t *ttl, size_t max)
{
    dotproxy_dns_info info;
    ck_assert_int_eq(dotproxy_dns_parse(&info, msg, len), 0);
    size_t pos = info.question_end, n = 0;
    unsigned total = (unsigned)info.ancount + info.nscount + info.arcount;
    for (unsigned i = 0; i < total; i++) {
        int end = dp_dns_msg_skip_name(msg, len, pos);
        ck_assert_int_ge(end, 0);
        const uint8_t *p = msg + end;
        ck_assert_uint_lt(n, max);
        ttl[n++] = (uint32_t)p[4] << 24 | (uint32_t)p[5] << 16 | (uint32_t)p[6] << 8 | p[7];
        pos = (size_t)end + 10 + ((size_t)p[8] << 8 | p[9]);
    }
    ck_assert_uint_eq(pos, len);
    return n;
}

static struct dp_cache *new_cache(size_t entries, uint32_t stale_max)
{
    struct dp_cache_config cfg = {
        .max_entries = entries,
        .max_bytes = 0,
        .min_ttl = 0,
        .max_ttl = 86400,
        .stale_max_s = stale_max,
        .servfail_ttl = 5,
    };
    struct dp_cache *c = NULL;
    ck_assert_int_eq(dp_cache_new(&c, &cfg), 0);
    ck_assert_ptr_nonnull(c);
    return c;
}

/* A query for name/type, its key, and a plain positive answer with TTLs. */
struct fixture {
    struct msg q, a;
    struct dp_cache_key k;
    uint8_t out[4096];
    size_t outlen;
};

static void fx_query(struct fixture *f, const char *name, unsigned qtype)
{
    m_query(&f->q, 0x1234, name, qtype, RD, 0, 0);
    make_key(&f->k, &f->q);
}

static void fx_answer_a(struct fixture *f, const char *name, uint32_t ttl1, uint32_t ttl2)
{
    m_start(&f->a, 0xBEEF, QR | RD | RA, name, T_A);
    m_a(&f->a, 0, ttl1, 1);
    m_a(&f->a, 0, ttl2, 2);
}

static int fx_lookup(struct dp_cache *c, struct fixture *f, uint64_t now, int allow_stale)
{
    return dp_cache_lookup(c, &f->k, now, allow_stale, f->q.b, f->q.n, f->out, sizeof(f->out),
                           &f->outlen);
}

/* ---- TTLs and lifetimes -------------------------------------------------- */

START_TEST(test_cache_decrements_ttls_by_entry_age)
{
    struct dp_cache *c = new_cache(100, 0);
    struct fixture f;
    uint32_t t[8];
    fx_query(&f, "www.example.com", T_A);
    fx_answer_a(&f, "www.example.com", 300, 600);
    ck_assert_int_eq(dp_cache_store(c, &f.k, f.a.b, f.a.n, T0), 1);

    ck_assert_int_eq(fx_lookup(c, &f, T0, 0), DP_CACHE_HIT);
    ck_assert_uint_eq(ttls_of(f.out, f.outlen, t, 8), 2);
    ck_assert_uint_eq(t[0], 300);
    ck_assert_uint_eq(t[1], 600);

    ck_assert_int_eq(fx_lookup(c, &f, T0 + SEC(100) + 999999, 0), DP_CACHE_HIT);
    ck_assert_uint_eq(ttls_of(f.out, f.outlen, t, 8), 2);
    ck_assert_uint_eq(t[0], 200);
    ck_assert_uint_eq(t[1], 500);
    /* The stored copy is untouched by a lookup's patching. */
    ck_assert_int_eq(fx_lookup(c, &f, T0 + SEC(1), 0), DP_CACHE_HIT);
    ck_assert_uint_eq(ttls_of(f.out, f.outlen, t, 8), 2);
    ck_assert_uint_eq(t[0], 299);
    dp_cache_free(c);
}
END_TEST

START_TEST(test_cache_entry_expires_at_smallest_ttl)
{
    struct dp_cache *c = new_cache(100, 0);
    struct fixture f;
    uint32_t t[8];
    fx_query(&f, "www.example.com", T_A);
    fx_answer_a(&f, "www.example.com", 600, 60);
    ck_assert_int_eq(dp_cache_store(c, &f.k, f.a.b, f.a.n, T0), 1);
    ck_assert_int_eq(fx_lookup(c, &f, T0 + SEC(60) - 1, 0), DP_CACHE_HIT);
    ck_assert_uint_eq(ttls_of(f.out, f.outlen, t, 8), 2);
    ck_assert_uint_eq(t[0], 541);
    ck_assert_uint_eq(t[1], 1);
    ck_assert_int_eq(fx_lookup(c, &f, T0 + SEC(60), 0), DP_CACHE_MISS);
    struct dp_cache_stats st;
    dp_cache_get_stats(c, &st);
    ck_assert_uint_eq(st.expired, 1);
    ck_assert_uint_eq(st.entries, 0);
    ck_assert_uint_eq(st.misses, 1);
    dp_cache_free(c);
}
END_TEST

START_TEST(test_cache_clamps_positive_ttls_to_min_and_max)
{
    struct dp_cache_config cfg = {.max_entries = 10, .min_ttl = 60, .max_ttl = 3600};
    struct dp_cache *c = NULL;
    struct fixture f;
    uint32_t t[8];
    ck_assert_int_eq(dp_cache_new(&c, &cfg), 0);
    fx_query(&f, "www.example.com", T_A);
    fx_answer_a(&f, "www.example.com", 5, 100000);
    ck_assert_int_eq(dp_cache_store(c, &f.k, f.a.b, f.a.n, T0), 1);
    ck_assert_int_eq(fx_lookup(c, &f, T0, 0), DP_CACHE_HIT);
    ttls_of(f.out, f.outlen, t, 8);
    ck_assert_uint_eq(t[0], 60);
    ck_assert_uint_eq(t[1], 3600);
    ck_assert_int_eq(fx_lookup(c, &f, T0 + SEC(59), 0), DP_CACHE_HIT);
    ck_assert_int_eq(fx_lookup(c, &f, T0 + SEC(60), 0), DP_CACHE_MISS);

    /* A TTL of 0 with no floor is not cacheable at all. */
    struct dp_cache *z = new_cache(10, 0);
    fx_answer_a(&f, "www.example.com", 0, 300);
    ck_assert_int_eq(dp_cache_store(z, &f.k, f.a.b, f.a.n, T0), 0);
    ck_assert_int_eq(fx_lookup(z, &f, T0, 0), DP_CACHE_MISS);
    /* ... and a TTL with the top bit set counts as 0 (RFC 2181 8). */
    fx_answer_a(&f, "www.example.com", 0x80000001u, 300);
    ck_assert_int_eq(dp_cache_store(z, &f.k, f.a.b, f.a.n, T0), 0);
    dp_cache_free(z);
    dp_cache_free(c);
}
END_TEST

static void negative_case(unsigned rcode, uint32_t soa_ttl, uint32_t soa_min, uint32_t want)
{
    struct dp_cache *c = new_cache(10, 0);
    struct fixture f;
    uint32_t t[8];
    fx_query(&f, "nope.example.com", T_A);
    m_start(&f.a, 1, QR | RD | RA | rcode, "nope.example.com", T_A);
    m_soa(&f.a, "example.com", soa_ttl, soa_min);
    ck_assert_int_eq(dp_cache_store(c, &f.k, f.a.b, f.a.n, T0), 1);
    ck_assert_int_eq(fx_lookup(c, &f, T0 + SEC(1), 0), DP_CACHE_HIT);
    ck_assert_uint_eq(f.out[3] & 0xF, rcode);
    ck_assert_uint_eq(ttls_of(f.out, f.outlen, t, 8), 1);
    ck_assert_uint_eq(t[0], want - 1); /* the SOA carries the negative TTL (RFC 2308 5) */
    ck_assert_int_eq(fx_lookup(c, &f, T0 + SEC(want) - 1, 0), DP_CACHE_HIT);
    ck_assert_int_eq(fx_lookup(c, &f, T0 + SEC(want), 0), DP_CACHE_MISS);
    dp_cache_free(c);
}

START_TEST(test_cache_keeps_nxdomain_for_min_of_soa_ttl_and_minimum)
{
    negative_case(DOTPROXY_RCODE_NXDOMAIN, 3600, 300, 300);
    negative_case(DOTPROXY_RCODE_NXDOMAIN, 120, 900, 120);
}
END_TEST

START_TEST(test_cache_keeps_nodata_for_min_of_soa_ttl_and_minimum)
{
    negative_case(DOTPROXY_RCODE_NOERROR, 3600, 60, 60);
    negative_case(DOTPROXY_RCODE_NOERROR, 30, 900, 30);
}
END_TEST

START_TEST(test_cache_does_not_keep_negative_answer_without_soa)
{
    struct dp_cache *c = new_cache(10, 0);
    struct fixture f;
    fx_query(&f, "nope.example.com", T_A);
    m_start(&f.a, 1, QR | RD | RA | DOTPROXY_RCODE_NXDOMAIN, "nope.example.com", T_A);
    ck_assert_int_eq(dp_cache_store(c, &f.k, f.a.b, f.a.n, T0), 0);
    /* NODATA whose authority has only an NS (a referral shape): no SOA either. */
    m_start(&f.a, 1, QR | RD | RA, "nope.example.com", T_A);
    m_name(&f.a, "example.com");
    m_u16(&f.a, T_NS);
    m_u16(&f.a, 1);
    m_u32(&f.a, 3600);
    m_u16(&f.a, 2);
    m_u16(&f.a, 0xC00C);
    m_count(&f.a, 1);
    ck_assert_int_eq(dp_cache_store(c, &f.k, f.a.b, f.a.n, T0), 0);
    ck_assert_int_eq(fx_lookup(c, &f, T0, 0), DP_CACHE_MISS);
    dp_cache_free(c);
}
END_TEST

START_TEST(test_cache_keeps_servfail_for_servfail_ttl)
{
    struct dp_cache *c = new_cache(10, 3600);
    struct fixture f;
    fx_query(&f, "broken.example.com", T_A);
    m_start(&f.a, 1, QR | RD | RA | DOTPROXY_RCODE_SERVFAIL, "broken.example.com", T_A);
    m_opt(&f.a, 0);
    ck_assert_int_eq(dp_cache_store(c, &f.k, f.a.b, f.a.n, T0), 1);
    ck_assert_int_eq(fx_lookup(c, &f, T0 + SEC(5) - 1, 1), DP_CACHE_HIT);
    ck_assert_uint_eq(f.out[3] & 0xF, DOTPROXY_RCODE_SERVFAIL);
    ck_assert_uint_eq(f.outlen, f.q.n);
    /* Not served stale even though stale_max is an hour: a stale failure
     * helps nobody. */
    ck_assert_int_eq(fx_lookup(c, &f, T0 + SEC(5), 1), DP_CACHE_MISS);
    dp_cache_free(c);
}
END_TEST

START_TEST(test_cache_servfail_does_not_replace_usable_answer)
{
    struct dp_cache *c = new_cache(10, 600);
    struct fixture f;
    struct msg sf;
    fx_query(&f, "www.example.com", T_A);
    fx_answer_a(&f, "www.example.com", 60, 60);
    m_start(&sf, 1, QR | RD | RA | DOTPROXY_RCODE_SERVFAIL, "www.example.com", T_A);
    ck_assert_int_eq(dp_cache_store(c, &f.k, f.a.b, f.a.n, T0), 1);
    /* Expired, in the stale window: the upstream's SERVFAIL is the failure
     * serve-stale is for, so the old answer stays. */
    ck_assert_int_eq(dp_cache_store(c, &f.k, sf.b, sf.n, T0 + SEC(100)), 0);
    ck_assert_int_eq(fx_lookup(c, &f, T0 + SEC(100), 1), DP_CACHE_STALE);
    ck_assert_uint_eq(f.out[3] & 0xF, 0);
    /* Past the stale window it is cached like any SERVFAIL. */
    ck_assert_int_eq(dp_cache_store(c, &f.k, sf.b, sf.n, T0 + SEC(700)), 1);
    ck_assert_int_eq(fx_lookup(c, &f, T0 + SEC(701), 0), DP_CACHE_HIT);
    ck_assert_uint_eq(f.out[3] & 0xF, DOTPROXY_RCODE_SERVFAIL);
    dp_cache_free(c);
}
END_TEST

START_TEST(test_cache_never_keeps_truncated_answer)
{
    struct dp_cache *c = new_cache(10, 0);
    struct fixture f;
    fx_query(&f, "www.example.com", T_A);
    fx_answer_a(&f, "www.example.com", 300, 300);
    f.a.b[2] |= TC >> 8;
    ck_assert_int_eq(dp_cache_store(c, &f.k, f.a.b, f.a.n, T0), 0);
    ck_assert_int_eq(fx_lookup(c, &f, T0, 0), DP_CACHE_MISS);
    dp_cache_free(c);
}
END_TEST

START_TEST(test_cache_does_not_keep_refused_formerr_or_notimp)
{
    struct dp_cache *c = new_cache(10, 0);
    struct fixture f;
    const unsigned rcodes[] = {DOTPROXY_RCODE_FORMERR, DOTPROXY_RCODE_NOTIMP,
                               DOTPROXY_RCODE_REFUSED};
    fx_query(&f, "www.example.com", T_A);
    for (size_t i = 0; i < 3; i++) {
        m_start(&f.a, 1, QR | RD | RA | rcodes[i], "www.example.com", T_A);
        m_soa(&f.a, "example.com", 300, 300);
        ck_assert_int_eq(dp_cache_store(c, &f.k, f.a.b, f.a.n, T0), 0);
    }
    ck_assert_int_eq(fx_lookup(c, &f, T0, 0), DP_CACHE_MISS);
    dp_cache_free(c);
}
END_TEST

/* ---- output shape ---------------------------------------------------------- */

START_TEST(test_cache_strips_opt_from_stored_answer_and_output)
{
    struct dp_cache *c = new_cache(10, 0);
    struct fixture f;
    struct dp_cache_stats st;
    dotproxy_dns_info info;
    m_query(&f.q, 7, "www.example.com", T_A, RD, 1, 0);
    make_key(&f.k, &f.q);
    fx_answer_a(&f, "www.example.com", 300, 300);
    size_t without_opt = f.a.n;
    m_opt(&f.a, 0);
    ck_assert_int_eq(dp_cache_store(c, &f.k, f.a.b, f.a.n, T0), 1);
    dp_cache_get_stats(c, &st);
    size_t bytes_with_opt_answer = st.bytes;
    ck_assert_int_eq(fx_lookup(c, &f, T0, 0), DP_CACHE_HIT);
    ck_assert_int_eq(dotproxy_dns_parse(&info, f.out, f.outlen), 0);
    ck_assert_uint_eq(info.opt_off, 0);
    ck_assert_uint_eq(info.arcount, 0);
    ck_assert_uint_eq(info.ancount, 2);
    /* The query's OPT is not in the output either: its question is copied,
     * nothing after it. */
    ck_assert_uint_eq(f.outlen, without_opt);

    /* The same answer without OPT costs the same: the OPT was not stored. */
    f.a.n = without_opt;
    m_put16(&f.a, 10, 0);
    ck_assert_int_eq(dp_cache_store(c, &f.k, f.a.b, f.a.n, T0), 1);
    dp_cache_get_stats(c, &st);
    ck_assert_uint_eq(st.bytes, bytes_with_opt_answer);
    dp_cache_free(c);
}
END_TEST

START_TEST(test_cache_does_not_keep_answer_with_opt_before_other_additional_rrs)
{
    struct dp_cache *c = new_cache(10, 0);
    struct fixture f;
    dotproxy_dns_info info;
    fx_query(&f, "www.example.com", T_A);
    m_start(&f.a, 1, QR | RD | RA, "www.example.com", T_A);
    m_a(&f.a, 0, 300, 1);
    m_opt(&f.a, 0);
    m_a(&f.a, 2, 300, 2);
    ck_assert_int_eq(dotproxy_dns_parse(&info, f.a.b, f.a.n), 0);
    ck_assert_int_eq(dp_cache_store(c, &f.k, f.a.b, f.a.n, T0), 0);
    dp_cache_free(c);
}
END_TEST

START_TEST(test_cache_output_carries_query_id_flags_and_question_case)
{
    struct dp_cache *c = new_cache(10, 0);
    struct fixture f, g;
    dotproxy_dns_info info;
    fx_query(&f, "www.example.com", T_A);
    fx_answer_a(&f, "www.example.com", 300, 300);
    f.a.b[3] |= DOTPROXY_DNS_FLAG_AD; /* cached flags other than RD/CD kept */
    ck_assert_int_eq(dp_cache_store(c, &f.k, f.a.b, f.a.n, T0), 1);

    /* A 0x20-randomised query, other ID, CD set and RD clear. */
    m_query(&g.q, 0xA5C3, "wWw.ExAmPlE.cOm", T_A, 0, 0, 0);
    make_key(&g.k, &g.q);
    ck_assert_int_eq(fx_lookup(c, &g, T0, 0), DP_CACHE_HIT);
    ck_assert_int_eq(dotproxy_dns_parse(&info, g.out, g.outlen), 0);
    ck_assert_uint_eq(info.id, 0xA5C3);
    ck_assert_uint_eq(info.flags & RD, 0);
    ck_assert(info.flags & QR);
    ck_assert(info.flags & RA);
    ck_assert(info.flags & DOTPROXY_DNS_FLAG_AD);
    ck_assert_uint_eq(info.qdcount, 1);
    ck_assert_mem_eq(g.out + 12, g.q.b + 12, g.q.n - 12);
    ck_assert_int_eq(memcmp(g.out + 12, f.q.b + 12, g.q.n - 12) != 0, 1);

    /* RD set in the query: set in the answer. */
    ck_assert_int_eq(fx_lookup(c, &f, T0, 0), DP_CACHE_HIT);
    ck_assert_uint_eq(dotproxy_dns_get_id(f.out, f.outlen), 0x1234);
    ck_assert(f.out[2] & (RD >> 8));
    dp_cache_free(c);
}
END_TEST

/* ---- keys ------------------------------------------------------------------ */

START_TEST(test_cache_key_differs_by_do_and_cd_bits)
{
    struct msg q;
    struct dp_cache_key plain, with_do, with_cd, with_opt_no_do, with_both;
    m_query(&q, 1, "example.com", T_A, RD, 0, 0);
    make_key(&plain, &q);
    m_query(&q, 1, "example.com", T_A, RD, 1, 1);
    make_key(&with_do, &q);
    m_query(&q, 1, "example.com", T_A, RD | CD, 0, 0);
    make_key(&with_cd, &q);
    m_query(&q, 1, "example.com", T_A, RD | CD, 1, 1);
    make_key(&with_both, &q);
    m_query(&q, 1, "example.com", T_A, RD, 1, 0);
    make_key(&with_opt_no_do, &q);

    const struct dp_cache_key *all[] = {&plain, &with_do, &with_cd, &with_both};
    for (size_t i = 0; i < 4; i++)
        for (size_t j = i + 1; j < 4; j++)
            ck_assert(all[i]->len != all[j]->len ||
                      memcmp(all[i]->data, all[j]->data, all[i]->len) != 0);
    /* EDNS without DO asks the same question as no EDNS. */
    ck_assert_uint_eq(plain.len, with_opt_no_do.len);
    ck_assert_mem_eq(plain.data, with_opt_no_do.data, plain.len);
    ck_assert_uint_eq(plain.hash, with_opt_no_do.hash);

    /* And the cache keeps them apart. */
    struct dp_cache *c = new_cache(10, 0);
    struct fixture f;
    fx_query(&f, "example.com", T_A);
    fx_answer_a(&f, "example.com", 300, 300);
    ck_assert_int_eq(dp_cache_store(c, &f.k, f.a.b, f.a.n, T0), 1);
    ck_assert_int_eq(fx_lookup(c, &f, T0, 0), DP_CACHE_HIT);
    f.k = with_do;
    ck_assert_int_eq(fx_lookup(c, &f, T0, 0), DP_CACHE_MISS);
    f.k = with_cd;
    ck_assert_int_eq(fx_lookup(c, &f, T0, 0), DP_CACHE_MISS);
    dp_cache_free(c);
}
END_TEST

START_TEST(test_cache_key_ignores_name_case_but_not_type)
{
    struct msg q;
    struct dp_cache_key a, b, aaaa, https;
    m_query(&q, 1, "ExAmPlE.com", T_A, RD, 0, 0);
    make_key(&a, &q);
    m_query(&q, 2, "example.COM", T_A, 0, 0, 0);
    make_key(&b, &q);
    ck_assert_uint_eq(a.len, b.len);
    ck_assert_uint_eq(a.hash, b.hash);
    ck_assert_mem_eq(a.data, b.data, a.len);
    m_query(&q, 1, "example.com", T_AAAA, RD, 0, 0);
    make_key(&aaaa, &q);
    ck_assert(memcmp(a.data, aaaa.data, a.len) != 0);
    /* qtype 65 is the octet 'A': it must not be case-folded into 'a'. */
    m_query(&q, 1, "example.com", T_HTTPS, RD, 0, 0);
    make_key(&https, &q);
    ck_assert_uint_eq(https.data[https.len - 4], 0x41);
}
END_TEST

START_TEST(test_cache_key_make_rejects_queries_without_one_plain_question)
{
    struct msg q;
    struct dp_cache_key k;
    dotproxy_dns_info info;
    m_query(&q, 1, "example.com", T_A, RD, 0, 0);
    m_put16(&q, 4, 0);
    q.n = 12;
    ck_assert_int_eq(dotproxy_dns_parse(&info, q.b, q.n), 0);
    ck_assert_int_eq(dp_cache_key_make(&k, q.b, q.n, &info), DOTPROXY_EMALFORMED);
    ck_assert_int_eq(dp_cache_key_make(NULL, q.b, q.n, &info), DOTPROXY_EINVAL);
}
END_TEST

START_TEST(test_cache_rejects_answer_for_other_question)
{
    struct dp_cache *c = new_cache(10, 0);
    struct fixture f;
    fx_query(&f, "www.example.com", T_A);
    fx_answer_a(&f, "www.example.org", 300, 300);
    ck_assert_int_eq(dp_cache_store(c, &f.k, f.a.b, f.a.n, T0), DOTPROXY_EINVAL);
    m_start(&f.a, 1, QR | RD | RA, "www.example.com", T_AAAA);
    ck_assert_int_eq(dp_cache_store(c, &f.k, f.a.b, f.a.n, T0), DOTPROXY_EINVAL);
    /* Letter case in the answer's question does not matter. */
    fx_answer_a(&f, "WWW.example.com", 300, 300);
    ck_assert_int_eq(dp_cache_store(c, &f.k, f.a.b, f.a.n, T0), 1);
    /* A message that does not parse is refused as such. */
    ck_assert_int_eq(dp_cache_store(c, &f.k, f.a.b, f.a.n - 1, T0), DOTPROXY_EMALFORMED);
    struct dp_cache_stats st;
    dp_cache_get_stats(c, &st);
    ck_assert_uint_eq(st.stores, 1);
    dp_cache_free(c);
}
END_TEST

START_TEST(test_cache_lookup_rejects_query_that_is_not_the_keys)
{
    struct dp_cache *c = new_cache(10, 0);
    struct fixture f;
    struct msg other;
    fx_query(&f, "www.example.com", T_A);
    fx_answer_a(&f, "www.example.com", 300, 300);
    ck_assert_int_eq(dp_cache_store(c, &f.k, f.a.b, f.a.n, T0), 1);
    m_query(&other, 9, "www.example.org", T_A, RD, 0, 0);
    ck_assert_int_eq(
        dp_cache_lookup(c, &f.k, T0, 0, other.b, other.n, f.out, sizeof(f.out), &f.outlen),
        DOTPROXY_EINVAL);
    ck_assert_int_eq(dp_cache_lookup(c, &f.k, T0, 0, f.q.b, 20, f.out, sizeof(f.out), &f.outlen),
                     DOTPROXY_EINVAL);
    dp_cache_free(c);
}
END_TEST

START_TEST(test_cache_lookup_folds_only_ascii_letters_in_the_query_name)
{
    /* '[' and '{', '@' and '`', 0xC1 and 0xE1 differ by bit 5 like letters
     * do, but are not letters: a query spelt with one must not be taken for
     * a key made with the other (in the 8-octet and the tail comparison). */
    static const char *pairs[][2] = {
        {"x[abcdefgh.com", "x{abcdefgh.com"},
        {"abcdefg@.com", "abcdefg`.com"},
        {"\xC1"
         "bcdefgh.com",
         "\xE1"
         "bcdefgh.com"},
        {"abcdefgh.co\xC1", "abcdefgh.co\xE1"},
        {"a[.com", "a{.com"},
    };
    struct dp_cache *c = new_cache(10, 0);
    for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
        struct fixture f;
        struct msg other;
        fx_query(&f, pairs[i][0], T_A);
        fx_answer_a(&f, pairs[i][0], 300, 300);
        ck_assert_int_eq(dp_cache_store(c, &f.k, f.a.b, f.a.n, T0), 1);
        m_query(&other, 9, pairs[i][1], T_A, RD, 0, 0);
        ck_assert_int_eq(
            dp_cache_lookup(c, &f.k, T0, 0, other.b, other.n, f.out, sizeof(f.out), &f.outlen),
            DOTPROXY_EINVAL);
        ck_assert_int_eq(fx_lookup(c, &f, T0, 0), DP_CACHE_HIT);
    }
    dp_cache_free(c);
}
END_TEST

/* ---- serve-stale and prefetch --------------------------------------------- */

START_TEST(test_cache_serves_stale_only_when_allowed_with_ttl_30)
{
    struct dp_cache *c = new_cache(10, 3600);
    struct fixture f;
    uint32_t t[8];
    struct dp_cache_stats st;
    fx_query(&f, "www.example.com", T_A);
    fx_answer_a(&f, "www.example.com", 60, 600);
    ck_assert_int_eq(dp_cache_store(c, &f.k, f.a.b, f.a.n, T0), 1);
    ck_assert_int_eq(fx_lookup(c, &f, T0 + SEC(61), 0), DP_CACHE_MISS);
    f.outlen = 0;
    ck_assert_int_eq(fx_lookup(c, &f, T0 + SEC(61), 1), DP_CACHE_STALE);
    ck_assert_uint_eq(ttls_of(f.out, f.outlen, t, 8), 2);
    ck_assert_uint_eq(t[0], 30);
    ck_assert_uint_eq(t[1], 30);
    ck_assert_int_eq(fx_lookup(c, &f, T0 + SEC(60 + 3600) - 1, 1), DP_CACHE_STALE);
    ck_assert_int_eq(fx_lookup(c, &f, T0 + SEC(60 + 3600), 1), DP_CACHE_MISS);
    ck_assert_int_eq(fx_lookup(c, &f, T0 + SEC(60 + 3600), 1), DP_CACHE_MISS);
    dp_cache_get_stats(c, &st);
    ck_assert_uint_eq(st.stale_hits, 2);
    ck_assert_uint_eq(st.hits, 0);
    ck_assert_uint_eq(st.expired, 1);
    ck_assert_uint_eq(st.entries, 0);
    dp_cache_free(c);
}
END_TEST

START_TEST(test_cache_without_stale_window_drops_entry_at_expiry)
{
    struct dp_cache *c = new_cache(10, 0);
    struct fixture f;
    fx_query(&f, "www.example.com", T_A);
    fx_answer_a(&f, "www.example.com", 60, 60);
    ck_assert_int_eq(dp_cache_store(c, &f.k, f.a.b, f.a.n, T0), 1);
    ck_assert_int_eq(fx_lookup(c, &f, T0 + SEC(60), 1), DP_CACHE_MISS);
    dp_cache_free(c);
}
END_TEST

START_TEST(test_cache_gives_prefetch_hint_once)
{
    struct dp_cache *c = new_cache(10, 0);
    struct fixture f;
    fx_query(&f, "www.example.com", T_A);
    fx_answer_a(&f, "www.example.com", 100, 100);
    ck_assert_int_eq(dp_cache_store(c, &f.k, f.a.b, f.a.n, T0), 1);
    ck_assert_int_eq(fx_lookup(c, &f, T0 + SEC(1), 0), DP_CACHE_HIT);
    ck_assert_int_eq(fx_lookup(c, &f, T0 + SEC(2), 0), DP_CACHE_HIT);
    /* 10.5 s of 100 left: not yet under 10%. */
    ck_assert_int_eq(fx_lookup(c, &f, T0 + SEC(89) + 500000, 0), DP_CACHE_HIT);
    ck_assert_int_eq(fx_lookup(c, &f, T0 + SEC(91), 0), DP_CACHE_HIT_REFRESH);
    ck_assert_uint_gt(f.outlen, 0);
    ck_assert_int_eq(fx_lookup(c, &f, T0 + SEC(92), 0), DP_CACHE_HIT);
    ck_assert_int_eq(fx_lookup(c, &f, T0 + SEC(99), 0), DP_CACHE_HIT);
    /* The refreshed answer gets its own hint later. */
    ck_assert_int_eq(dp_cache_store(c, &f.k, f.a.b, f.a.n, T0 + SEC(95)), 1);
    ck_assert_int_eq(fx_lookup(c, &f, T0 + SEC(96), 0), DP_CACHE_HIT);
    ck_assert_int_eq(fx_lookup(c, &f, T0 + SEC(97), 0), DP_CACHE_HIT);
    ck_assert_int_eq(fx_lookup(c, &f, T0 + SEC(190), 0), DP_CACHE_HIT_REFRESH);
    dp_cache_free(c);
}
END_TEST

START_TEST(test_cache_prefetch_hint_needs_popular_long_lived_entry)
{
    struct dp_cache *c = new_cache(10, 0);
    struct fixture f;
    fx_query(&f, "www.example.com", T_A);
    /* Hit once only before the end: no hint. */
    fx_answer_a(&f, "www.example.com", 100, 100);
    ck_assert_int_eq(dp_cache_store(c, &f.k, f.a.b, f.a.n, T0), 1);
    ck_assert_int_eq(fx_lookup(c, &f, T0 + SEC(95), 0), DP_CACHE_HIT);
    ck_assert_int_eq(fx_lookup(c, &f, T0 + SEC(96), 0), DP_CACHE_HIT);
    /* A lifetime under 10 s: never a hint. */
    fx_answer_a(&f, "www.example.com", 9, 9);
    ck_assert_int_eq(dp_cache_store(c, &f.k, f.a.b, f.a.n, T0), 1);
    for (unsigned s = 0; s < 9; s++)
        ck_assert_int_eq(fx_lookup(c, &f, T0 + SEC(s) + 500000, 0), DP_CACHE_HIT);
    dp_cache_free(c);
}
END_TEST

/* ---- eviction ------------------------------------------------------------- */

static void store_name(struct dp_cache *c, struct fixture *f, unsigned i, uint64_t now)
{
    char name[64];
    snprintf(name, sizeof(name), "host%u.example.com", i);
    fx_query(f, name, T_A);
    fx_answer_a(f, name, 3600, 3600);
    ck_assert_int_eq(dp_cache_store(c, &f->k, f->a.b, f->a.n, now), 1);
}

START_TEST(test_cache_eviction_keeps_entries_and_bytes_within_bounds)
{
    struct dp_cache_config cfg = {.max_entries = 64, .max_ttl = 86400};
    struct dp_cache *c = NULL;
    struct dp_cache_stats st;
    struct fixture f;
    ck_assert_int_eq(dp_cache_new(&c, &cfg), 0);
    for (unsigned i = 0; i < 1000; i++) {
        store_name(c, &f, i, T0);
        dp_cache_get_stats(c, &st);
        ck_assert_uint_le(st.entries, 64);
        ck_assert_uint_le(st.bytes, 64 * 512);
    }
    ck_assert_uint_eq(st.entries, 64);
    ck_assert_uint_eq(st.evictions, 1000 - 64);
    dp_cache_free(c);

    /* A byte budget tighter than the count bound rules. */
    cfg.max_bytes = 2000;
    ck_assert_int_eq(dp_cache_new(&c, &cfg), 0);
    for (unsigned i = 0; i < 200; i++) {
        store_name(c, &f, i, T0);
        dp_cache_get_stats(c, &st);
        ck_assert_uint_le(st.bytes, 2000);
    }
    ck_assert_uint_lt(st.entries, 64);
    ck_assert_uint_gt(st.entries, 1);
    /* An answer too large for its share of the budget is not cached. */
    struct msg big;
    fx_query(&f, "big.example.com", T_A);
    m_start(&big, 1, QR | RD | RA, "big.example.com", T_A);
    for (unsigned i = 0; i < 130; i++)
        m_a(&big, 0, 300, i);
    ck_assert_int_eq(dp_cache_store(c, &f.k, big.b, big.n, T0), 0);
    dp_cache_free(c);
}
END_TEST

START_TEST(test_cache_hot_entry_survives_scan_of_ten_times_capacity_one_off_names)
{
    const unsigned cap = 100;
    struct dp_cache *c = new_cache(cap, 0);
    struct fixture hot, f;
    fx_query(&hot, "hot.example.com", T_A);
    fx_answer_a(&hot, "hot.example.com", 3600, 3600);
    ck_assert_int_eq(dp_cache_store(c, &hot.k, hot.a.b, hot.a.n, T0), 1);
    for (unsigned i = 0; i < 3; i++)
        ck_assert_int_eq(fx_lookup(c, &hot, T0, 0), DP_CACHE_HIT);
    for (unsigned i = 0; i < 10 * cap; i++)
        store_name(c, &f, i, T0 + SEC(1));
    ck_assert_int_eq(fx_lookup(c, &hot, T0 + SEC(2), 0), DP_CACHE_HIT);
    /* The last one-off names are still there (the scan evicted its own). */
    ck_assert_int_eq(fx_lookup(c, &f, T0 + SEC(2), 0), DP_CACHE_HIT);
    struct dp_cache_stats st;
    dp_cache_get_stats(c, &st);
    ck_assert_uint_eq(st.entries, cap);
    dp_cache_free(c);
}
END_TEST

START_TEST(test_cache_key_stored_again_soon_after_eviction_is_admitted_to_main)
{
    const unsigned cap = 100;
    struct dp_cache *c = new_cache(cap, 0);
    struct fixture a, f;
    fx_query(&a, "again.example.com", T_A);
    fx_answer_a(&a, "again.example.com", 3600, 3600);
    ck_assert_int_eq(dp_cache_store(c, &a.k, a.a.b, a.a.n, T0), 1);
    for (unsigned i = 0; i < cap; i++)
        store_name(c, &f, i, T0);
    ck_assert_int_eq(fx_lookup(c, &a, T0, 0), DP_CACHE_MISS); /* evicted, never hit */
    /* Asked again: the ghost remembers it, so it skips probation and a scan
     * as long as the cache no longer pushes it out. */
    ck_assert_int_eq(dp_cache_store(c, &a.k, a.a.b, a.a.n, T0), 1);
    for (unsigned i = cap; i < 3 * cap; i++)
        store_name(c, &f, i, T0);
    ck_assert_int_eq(fx_lookup(c, &a, T0, 0), DP_CACHE_HIT);
    dp_cache_free(c);
}
END_TEST

START_TEST(test_cache_eviction_reclaims_dead_entries_before_live_ones)
{
    /* Entries past their stale window go first when room is needed: the
     * eviction counter stays at zero while they last. */
    struct dp_cache *c = new_cache(10, 0);
    struct fixture f;
    struct dp_cache_stats st;
    for (unsigned i = 0; i < 10; i++) {
        char name[64];
        snprintf(name, sizeof(name), "short%u.example.com", i);
        fx_query(&f, name, T_A);
        fx_answer_a(&f, name, 10, 10);
        ck_assert_int_eq(dp_cache_store(c, &f.k, f.a.b, f.a.n, T0), 1);
    }
    for (unsigned i = 0; i < 10; i++)
        store_name(c, &f, i, T0 + SEC(20));
    dp_cache_get_stats(c, &st);
    ck_assert_uint_eq(st.entries, 10);
    ck_assert_uint_eq(st.evictions, 0);
    ck_assert_uint_eq(st.expired, 10);
    dp_cache_free(c);
}
END_TEST

START_TEST(test_cache_flush_empties)
{
    struct dp_cache *c = new_cache(100, 0);
    struct fixture f;
    struct dp_cache_stats st;
    for (unsigned i = 0; i < 50; i++)
        store_name(c, &f, i, T0);
    dp_cache_flush(c);
    dp_cache_get_stats(c, &st);
    ck_assert_uint_eq(st.entries, 0);
    ck_assert_uint_eq(st.bytes, 0);
    ck_assert_int_eq(fx_lookup(c, &f, T0, 0), DP_CACHE_MISS);
    /* Usable afterwards. */
    store_name(c, &f, 7, T0);
    ck_assert_int_eq(fx_lookup(c, &f, T0, 0), DP_CACHE_HIT);
    dp_cache_free(c);
}
END_TEST

START_TEST(test_cache_store_replaces_existing_entry)
{
    struct dp_cache *c = new_cache(10, 0);
    struct fixture f;
    struct dp_cache_stats st;
    fx_query(&f, "www.example.com", T_A);
    fx_answer_a(&f, "www.example.com", 300, 300);
    ck_assert_int_eq(dp_cache_store(c, &f.k, f.a.b, f.a.n, T0), 1);
    m_start(&f.a, 1, QR | RD | RA, "www.example.com", T_A);
    m_a(&f.a, 0, 50, 9);
    ck_assert_int_eq(dp_cache_store(c, &f.k, f.a.b, f.a.n, T0 + SEC(10)), 1);
    dp_cache_get_stats(c, &st);
    ck_assert_uint_eq(st.entries, 1);
    ck_assert_int_eq(fx_lookup(c, &f, T0 + SEC(10), 0), DP_CACHE_HIT);
    ck_assert_uint_eq(f.out[f.outlen - 1], 9);
    ck_assert_int_eq(fx_lookup(c, &f, T0 + SEC(60), 0), DP_CACHE_MISS);
    dp_cache_free(c);
}
END_TEST

START_TEST(test_cache_lookup_reports_enospc_on_small_buffer)
{
    struct dp_cache *c = new_cache(10, 0);
    struct fixture f;
    size_t outlen = 12345;
    fx_query(&f, "www.example.com", T_A);
    fx_answer_a(&f, "www.example.com", 300, 300);
    ck_assert_int_eq(dp_cache_store(c, &f.k, f.a.b, f.a.n, T0), 1);
    ck_assert_int_eq(dp_cache_lookup(c, &f.k, T0, 0, f.q.b, f.q.n, f.out, f.a.n - 1, &outlen),
                     DOTPROXY_ENOSPC);
    ck_assert_uint_eq(outlen, 12345);
    ck_assert_int_eq(dp_cache_lookup(c, &f.k, T0, 0, f.q.b, f.q.n, f.out, f.a.n, &outlen),
                     DP_CACHE_HIT);
    ck_assert_uint_eq(outlen, f.a.n);
    dp_cache_free(c);
}
END_TEST

START_TEST(test_cache_compressed_answer_comes_out_parseable_with_right_records)
{
    struct dp_cache *c = new_cache(10, 0);
    struct fixture f;
    dotproxy_dns_info info;
    uint8_t name[DOTPROXY_DNS_MAX_NAME];
    /* www.example.com CNAME web.example.com (compressed against the
     * question), web.example.com A 192.0.2.7 (owner pointing into the CNAME
     * RDATA), and an SOA-less authority NS whose owner points into the
     * question. */
    fx_query(&f, "www.example.com", T_A);
    m_start(&f.a, 1, QR | RD | RA, "www.example.com", T_A);
    m_u16(&f.a, 0xC00C);
    m_u16(&f.a, T_CNAME);
    m_u16(&f.a, 1);
    m_u32(&f.a, 300);
    m_u16(&f.a, 6);
    size_t web_at = f.a.n;
    m_u8(&f.a, 3);
    m_u8(&f.a, 'w');
    m_u8(&f.a, 'e');
    m_u8(&f.a, 'b');
    m_u16(&f.a, 0xC010); /* -> "example.com" in the question */
    m_count(&f.a, 0);
    m_u16(&f.a, (unsigned)(0xC000 | web_at));
    m_u16(&f.a, T_A);
    m_u16(&f.a, 1);
    m_u32(&f.a, 120);
    m_u16(&f.a, 4);
    m_u32(&f.a, 0xC0000207);
    m_count(&f.a, 0);
    m_u16(&f.a, 0xC010);
    m_u16(&f.a, T_NS);
    m_u16(&f.a, 1);
    m_u32(&f.a, 3600);
    m_u16(&f.a, 2);
    m_u16(&f.a, (unsigned)(0xC000 | web_at));
    m_count(&f.a, 1);
    ck_assert_int_eq(dp_cache_store(c, &f.k, f.a.b, f.a.n, T0), 1);

    struct fixture g;
    m_query(&g.q, 0x0F0F, "WwW.eXaMpLe.CoM", T_A, RD, 0, 0);
    make_key(&g.k, &g.q);
    ck_assert_int_eq(fx_lookup(c, &g, T0 + SEC(20), 0), DP_CACHE_HIT);
    ck_assert_int_eq(dotproxy_dns_parse(&info, g.out, g.outlen), 0);
    ck_assert_uint_eq(info.ancount, 2);
    ck_assert_uint_eq(info.nscount, 1);
    uint32_t t[4];
    ck_assert_uint_eq(ttls_of(g.out, g.outlen, t, 4), 3);
    ck_assert_uint_eq(t[0], 280);
    ck_assert_uint_eq(t[1], 100);
    ck_assert_uint_eq(t[2], 3580);
    /* The CNAME target and the A owner decode to web.example.com. */
    size_t cname_rdata = info.question_end + 2 + 10;
    size_t next;
    static const uint8_t web[] = "\3web\7example\3com";
    ck_assert_int_eq(dp_dns_msg_name_lower(g.out, g.outlen, cname_rdata, name, &next), 17);
    ck_assert_mem_eq(name, web, 17);
    ck_assert_int_eq(dp_dns_msg_name_lower(g.out, g.outlen, next, name, NULL), 17);
    ck_assert_mem_eq(name, web, 17);
    ck_assert_uint_eq(g.out[next + 2 + 10 - 1], 4);
    ck_assert_uint_eq(g.out[next + 2 + 10 + 3], 7);
    dp_cache_free(c);
}
END_TEST

/* ---- configuration -------------------------------------------------------- */

START_TEST(test_cache_off_misses_everything)
{
    struct dp_cache_config cfg = {.max_entries = 0, .max_ttl = 86400};
    struct dp_cache *c = NULL;
    struct fixture f;
    struct dp_cache_stats st;
    ck_assert_int_eq(dp_cache_new(&c, &cfg), 0);
    fx_query(&f, "www.example.com", T_A);
    fx_answer_a(&f, "www.example.com", 300, 300);
    ck_assert_int_eq(dp_cache_store(c, &f.k, f.a.b, f.a.n, T0), 0);
    ck_assert_int_eq(fx_lookup(c, &f, T0, 1), DP_CACHE_MISS);
    dp_cache_flush(c);
    dp_cache_get_stats(c, &st);
    ck_assert_uint_eq(st.entries, 0);
    ck_assert_uint_eq(st.misses, 1);
    dp_cache_free(c);
    dp_cache_free(NULL);
}
END_TEST

START_TEST(test_cache_new_rejects_inverted_ttl_clamp)
{
    struct dp_cache_config cfg = {.max_entries = 10, .min_ttl = 100, .max_ttl = 10};
    struct dp_cache *c = NULL;
    ck_assert_int_eq(dp_cache_new(&c, &cfg), DOTPROXY_EINVAL);
    ck_assert_ptr_null(c);
    ck_assert_int_eq(dp_cache_new(NULL, &cfg), DOTPROXY_EINVAL);
}
END_TEST

static Suite *cache_suite(void)
{
    Suite *s = suite_create("cache");
    TCase *tc = tcase_create("cache");
    tcase_add_test(tc, test_cache_decrements_ttls_by_entry_age);
    tcase_add_test(tc, test_cache_entry_expires_at_smallest_ttl);
    tcase_add_test(tc, test_cache_clamps_positive_ttls_to_min_and_max);
    tcase_add_test(tc, test_cache_keeps_nxdomain_for_min_of_soa_ttl_and_minimum);
    tcase_add_test(tc, test_cache_keeps_nodata_for_min_of_soa_ttl_and_minimum);
    tcase_add_test(tc, test_cache_does_not_keep_negative_answer_without_soa);
    tcase_add_test(tc, test_cache_keeps_servfail_for_servfail_ttl);
    tcase_add_test(tc, test_cache_servfail_does_not_replace_usable_answer);
    tcase_add_test(tc, test_cache_never_keeps_truncated_answer);
    tcase_add_test(tc, test_cache_does_not_keep_refused_formerr_or_notimp);
    tcase_add_test(tc, test_cache_strips_opt_from_stored_answer_and_output);
    tcase_add_test(tc, test_cache_does_not_keep_answer_with_opt_before_other_additional_rrs);
    tcase_add_test(tc, test_cache_output_carries_query_id_flags_and_question_case);
    tcase_add_test(tc, test_cache_key_differs_by_do_and_cd_bits);
    tcase_add_test(tc, test_cache_key_ignores_name_case_but_not_type);
    tcase_add_test(tc, test_cache_key_make_rejects_queries_without_one_plain_question);
    tcase_add_test(tc, test_cache_rejects_answer_for_other_question);
    tcase_add_test(tc, test_cache_lookup_rejects_query_that_is_not_the_keys);
    tcase_add_test(tc, test_cache_lookup_folds_only_ascii_letters_in_the_query_name);
    tcase_add_test(tc, test_cache_serves_stale_only_when_allowed_with_ttl_30);
    tcase_add_test(tc, test_cache_without_stale_window_drops_entry_at_expiry);
    tcase_add_test(tc, test_cache_gives_prefetch_hint_once);
    tcase_add_test(tc, test_cache_prefetch_hint_needs_popular_long_lived_entry);
    tcase_add_test(tc, test_cache_eviction_keeps_entries_and_bytes_within_bounds);
    tcase_add_test(tc, test_cache_hot_entry_survives_scan_of_ten_times_capacity_one_off_names);
    tcase_add_test(tc, test_cache_key_stored_again_soon_after_eviction_is_admitted_to_main);
    tcase_add_test(tc, test_cache_eviction_reclaims_dead_entries_before_live_ones);
    tcase_add_test(tc, test_cache_flush_empties);
    tcase_add_test(tc, test_cache_store_replaces_existing_entry);
    tcase_add_test(tc, test_cache_lookup_reports_enospc_on_small_buffer);
    tcase_add_test(tc, test_cache_compressed_answer_comes_out_parseable_with_right_records);
    tcase_add_test(tc, test_cache_off_misses_everything);
    tcase_add_test(tc, test_cache_new_rejects_inverted_ttl_clamp);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(cache_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
