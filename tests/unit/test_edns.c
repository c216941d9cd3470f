/* SPDX-License-Identifier: MIT */
/* Unit tests of lib/edns.c: the per-hop OPT of queries sent upstream and of
 * answers sent to clients (padding, ECS, cookies, keepalive, DO/AD, extended
 * rcode, OPT placement, bounds). Every output must parse. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "dotproxy/dns.h"
#include "dotproxy/error.h"
#include "dns_msg.h"
#include "edns.h"
#include "msgbuild.h"

/* ---- messages (the primitives are in msgbuild.h) ------------------------- */

static unsigned get16(const uint8_t *p)
{
    return (unsigned)((p[0] << 8) | p[1]);
}

static void m_question(struct msg *m, const char *name)
{
    m_name(m, name);
    m_u16(m, 1); /* A */
    m_u16(m, 1); /* IN */
}

/* An A record whose owner is a pointer to the question name. */
static void m_a_record(struct msg *m, unsigned ttl, unsigned last_octet)
{
    m_u16(m, 0xC00C);
    m_u16(m, 1);
    m_u16(m, 1);
    m_u16(m, ttl >> 16);
    m_u16(m, ttl & 0xFFFF);
    m_u16(m, 4);
    m_u8(m, 192);
    m_u8(m, 0);
    m_u8(m, 2);
    m_u8(m, last_octet);
}

/* Start an OPT RR; returns where its RDLENGTH sits, for m_opt_end. */
static size_t m_opt_begin(struct msg *m, unsigned udp, unsigned ext, unsigned ver, unsigned flags)
{
    m_u8(m, 0);
    m_u16(m, 41);
    m_u16(m, udp);
    m_u8(m, ext);
    m_u8(m, ver);
    m_u16(m, flags);
    size_t at = m->n;
    m_u16(m, 0);
    return at;
}

static void m_option(struct msg *m, unsigned code, unsigned len, uint8_t fill)
{
    m_u16(m, code);
    m_u16(m, len);
    for (unsigned i = 0; i < len; i++)
        m_u8(m, fill);
}

static void m_opt_end(struct msg *m, size_t rdlen_at)
{
    m_put16(m, rdlen_at, (unsigned)(m->n - rdlen_at - 2));
}

#define FLAGS_QUERY  0x0100u                                 /* RD */
#define FLAGS_ANSWER (0x8000u | 0x0100u | 0x0080u | 0x0020u) /* QR RD RA AD */
#define DO           DOTPROXY_DNS_EDNS_DO

/* A query for name, with an OPT holding the given options when opt != 0. */
struct option {
    unsigned code, len;
    uint8_t fill;
};

static void build_query(struct msg *m, const char *name, unsigned flags, int opt,
                        unsigned edns_flags, const struct option *opts, size_t nopts)
{
    m_header(m, 0x1234, flags, 1, 0, 0, opt ? 1 : 0);
    m_question(m, name);
    if (opt) {
        size_t at = m_opt_begin(m, 4096, 0, 0, edns_flags);
        for (size_t i = 0; i < nopts; i++)
            m_option(m, opts[i].code, opts[i].len, opts[i].fill);
        m_opt_end(m, at);
    }
}

/* An answer with one A record and, when opt != 0, the upstream's OPT. */
static void build_answer(struct msg *m, unsigned flags, int opt, unsigned ext_rcode,
                         const struct option *opts, size_t nopts)
{
    m_header(m, 0x1234, flags, 1, 1, 0, opt ? 1 : 0);
    m_question(m, "www.example.com");
    m_a_record(m, 300, 1);
    if (opt) {
        size_t at = m_opt_begin(m, 1232, ext_rcode, 0, DO);
        for (size_t i = 0; i < nopts; i++)
            m_option(m, opts[i].code, opts[i].len, opts[i].fill);
        m_opt_end(m, at);
    }
}

/* ---- checking helpers --------------------------------------------------- */

static dotproxy_dns_info parse_ok(const uint8_t *b, size_t n)
{
    dotproxy_dns_info in;
    ck_assert_int_eq(dotproxy_dns_parse(&in, b, n), 0);
    return in;
}

/* The option codes of the OPT, in order; returns how many. */
static size_t option_codes(const uint8_t *b, const dotproxy_dns_info *in, unsigned *codes,
                           size_t max)
{
    size_t pos = (size_t)in->opt_off + 11, end = (size_t)in->opt_off + in->opt_len, k = 0;
    while (pos < end) {
        ck_assert_uint_lt(k, max);
        codes[k++] = get16(b + pos);
        pos += 4 + get16(b + pos + 2);
    }
    ck_assert_uint_eq(pos, end);
    return k;
}

/* Offset of the data of the first option `code`, 0 when absent; *len its length. */
static size_t option_find(const uint8_t *b, const dotproxy_dns_info *in, unsigned code, size_t *len)
{
    size_t pos = (size_t)in->opt_off + 11, end = (size_t)in->opt_off + in->opt_len;
    while (pos < end) {
        size_t l = get16(b + pos + 2);
        if (get16(b + pos) == code) {
            *len = l;
            return pos + 4;
        }
        pos += 4 + l;
    }
    return 0;
}

static size_t option_count(const uint8_t *b, const dotproxy_dns_info *in, unsigned code)
{
    unsigned codes[64];
    size_t n = option_codes(b, in, codes, 64), c = 0;
    for (size_t i = 0; i < n; i++)
        c += codes[i] == code;
    return c;
}

static void assert_opt_last(const dotproxy_dns_info *in, size_t len)
{
    ck_assert_uint_ne(in->opt_off, 0);
    ck_assert_uint_eq((size_t)in->opt_off + in->opt_len, len);
}

static const struct dp_edns_upstream_opts PAD128 = {1232, 128, 0, 0};
static const struct dp_edns_upstream_opts NOPAD = {1232, 0, 0, 0};

/* Rewrite m as a query for upstream; asserts success and that it parses. */
static dotproxy_dns_info to_upstream(struct msg *m, const struct dp_edns_upstream_opts *o)
{
    dotproxy_dns_info in = parse_ok(m->b, m->n);
    int n = dp_edns_query_for_upstream(m->b, m->n, sizeof(m->b), &in, o);
    ck_assert_int_gt(n, 0);
    m->n = (size_t)n;
    dotproxy_dns_info out = parse_ok(m->b, m->n);
    assert_opt_last(&out, m->n);
    return out;
}

static struct dp_edns_client client(int had_opt, int do_bit, int ad_bit)
{
    struct dp_edns_client c = {(uint8_t)had_opt, (uint8_t)do_bit, (uint8_t)ad_bit, 0,
                               (uint16_t)(had_opt ? 4096 : 0)};
    return c;
}

static dotproxy_dns_info to_client(struct msg *m, const struct dp_edns_client *c, int keep_ecs,
                                   uint16_t *ka)
{
    int n = dp_edns_answer_for_client(m->b, m->n, sizeof(m->b), c, 1232, keep_ecs, ka);
    ck_assert_int_gt(n, 0);
    m->n = (size_t)n;
    return parse_ok(m->b, m->n);
}

/* ---- client_from_query --------------------------------------------------- */

START_TEST(test_client_from_query_remembers_opt_do_ad_cd_and_size)
{
    struct msg m;
    build_query(&m, "www.example.com", FLAGS_QUERY | 0x0020u | 0x0010u, 1, DO, NULL, 0);
    dotproxy_dns_info in = parse_ok(m.b, m.n);
    struct dp_edns_client c;
    memset(&c, 0xAA, sizeof c);
    dp_edns_client_from_query(&c, &in);
    ck_assert_uint_eq(c.had_opt, 1);
    ck_assert_uint_eq(c.do_bit, 1);
    ck_assert_uint_eq(c.ad_bit, 1);
    ck_assert_uint_eq(c.cd_bit, 1);
    ck_assert_uint_eq(c.udp_size, 4096);
}
END_TEST

START_TEST(test_client_from_query_without_opt_has_no_size_and_no_do)
{
    struct msg m;
    build_query(&m, "www.example.com", FLAGS_QUERY, 0, 0, NULL, 0);
    dotproxy_dns_info in = parse_ok(m.b, m.n);
    struct dp_edns_client c;
    memset(&c, 0xAA, sizeof c);
    dp_edns_client_from_query(&c, &in);
    ck_assert_uint_eq(c.had_opt, 0);
    ck_assert_uint_eq(c.do_bit, 0);
    ck_assert_uint_eq(c.ad_bit, 0);
    ck_assert_uint_eq(c.cd_bit, 0);
    ck_assert_uint_eq(c.udp_size, 0);
}
END_TEST

/* ---- queries: padding ---------------------------------------------------- */

/* A name of about `octets` wire octets made of labels of at most 63. */
static void long_name(char *out, size_t octets)
{
    size_t n = 0, used = 1;
    while (used + 2 <= octets && used + 2 <= 250) {
        size_t l = octets - used - 1;
        if (l > 63)
            l = 63;
        if (used + 1 + l > 250)
            l = 250 - used - 1;
        if (n > 0)
            out[n++] = '.';
        memset(out + n, 'a' + (int)(used % 26), l);
        n += l;
        used += 1 + l;
    }
    out[n] = '\0';
}

static void check_padding(const uint8_t *b, size_t len, const dotproxy_dns_info *in, unsigned block)
{
    unsigned codes[16];
    size_t k = option_codes(b, in, codes, 16);
    ck_assert_uint_ge(k, 1);
    ck_assert_uint_eq(codes[k - 1], DP_EDNS_OPT_CODE_PADDING);
    ck_assert_uint_eq(option_count(b, in, DP_EDNS_OPT_CODE_PADDING), 1);
    size_t plen;
    size_t at = option_find(b, in, DP_EDNS_OPT_CODE_PADDING, &plen);
    for (size_t i = 0; i < plen; i++)
        ck_assert_uint_eq(b[at + i], 0);
    ck_assert_uint_eq(len % block, 0);
}

START_TEST(test_query_padding_makes_every_length_a_multiple_of_128)
{
    static const struct option nsid = {DP_EDNS_OPT_CODE_NSID, 0, 0};
    char name[256];
    for (size_t octets = 2; octets <= 250; octets++) {
        for (int variant = 0; variant < 4; variant++) {
            struct msg m;
            long_name(name, octets);
            int opt = variant & 1;
            struct dp_edns_upstream_opts o = PAD128;
            o.want_keepalive = (variant & 2) != 0;
            build_query(&m, name, FLAGS_QUERY, opt, 0, &nsid, opt ? 1 : 0);
            dotproxy_dns_info out = to_upstream(&m, &o);
            check_padding(m.b, m.n, &out, 128);
            ck_assert_uint_ge(m.n, 128);
        }
    }
}
END_TEST

START_TEST(test_query_padding_is_minimal_and_never_applied_twice)
{
    char name[256];
    for (size_t octets = 2; octets <= 250; octets += 7) {
        struct msg m, unpadded;
        long_name(name, octets);
        build_query(&m, name, FLAGS_QUERY, 1, DO, NULL, 0);
        unpadded = m;
        to_upstream(&unpadded, &NOPAD);
        dotproxy_dns_info out = to_upstream(&m, &PAD128);
        /* The padding option adds 4 octets of header, then the least that
         * reaches a multiple of 128. */
        size_t want = (unpadded.n + 4 + 127) / 128 * 128;
        ck_assert_uint_eq(m.n, want);
        check_padding(m.b, m.n, &out, 128);
        /* Rewriting our own output (a retry on another upstream) keeps it. */
        size_t first = m.n;
        out = to_upstream(&m, &PAD128);
        ck_assert_uint_eq(m.n, first);
        check_padding(m.b, m.n, &out, 128);
    }
}
END_TEST

START_TEST(test_query_padding_replaces_a_client_padding_option)
{
    struct msg m, plain;
    static const struct option pad[] = {{DP_EDNS_OPT_CODE_PADDING, 200, 0}};
    build_query(&m, "www.example.com", FLAGS_QUERY, 1, 0, pad, 1);
    build_query(&plain, "www.example.com", FLAGS_QUERY, 1, 0, NULL, 0);
    dotproxy_dns_info out = to_upstream(&m, &PAD128);
    to_upstream(&plain, &PAD128);
    check_padding(m.b, m.n, &out, 128);
    ck_assert_uint_eq(m.n, plain.n);
    ck_assert_uint_eq(m.n, 128);
}
END_TEST

START_TEST(test_query_padding_honours_other_block_sizes)
{
    static const unsigned blocks[] = {1, 2, 64, 100, 468, 512};
    for (size_t i = 0; i < sizeof blocks / sizeof blocks[0]; i++) {
        struct msg m;
        struct dp_edns_upstream_opts o = PAD128;
        o.pad_block = (uint16_t)blocks[i];
        build_query(&m, "www.example.com", FLAGS_QUERY, 1, 0, NULL, 0);
        dotproxy_dns_info out = to_upstream(&m, &o);
        check_padding(m.b, m.n, &out, blocks[i]);
        ck_assert_uint_lt(m.n, 12 + 21 + 11 + 4 + blocks[i]);
    }
}
END_TEST

START_TEST(test_query_without_pad_block_carries_no_padding)
{
    struct msg m;
    static const struct option pad[] = {{DP_EDNS_OPT_CODE_PADDING, 30, 0}};
    build_query(&m, "www.example.com", FLAGS_QUERY, 1, 0, pad, 1);
    dotproxy_dns_info out = to_upstream(&m, &NOPAD);
    ck_assert_uint_eq(option_count(m.b, &out, DP_EDNS_OPT_CODE_PADDING), 0);
    ck_assert_uint_eq(out.opt_len, 11);
    /* header 12 + question 21 + bare OPT 11 */
    ck_assert_uint_eq(m.n, 12 + 21 + 11);
}
END_TEST

/* ---- queries: options ---------------------------------------------------- */

START_TEST(test_query_drops_ecs_by_default)
{
    struct msg m;
    static const struct option ecs[] = {{DP_EDNS_OPT_CODE_ECS, 7, 0x11}};
    build_query(&m, "www.example.com", FLAGS_QUERY, 1, 0, ecs, 1);
    dotproxy_dns_info out = to_upstream(&m, &NOPAD);
    ck_assert_uint_eq(option_count(m.b, &out, DP_EDNS_OPT_CODE_ECS), 0);
}
END_TEST

START_TEST(test_query_keeps_ecs_when_told)
{
    struct msg m;
    static const struct option ecs[] = {{DP_EDNS_OPT_CODE_ECS, 7, 0x11}};
    build_query(&m, "www.example.com", FLAGS_QUERY, 1, 0, ecs, 1);
    struct dp_edns_upstream_opts o = PAD128;
    o.keep_ecs = 1;
    dotproxy_dns_info out = to_upstream(&m, &o);
    size_t len;
    size_t at = option_find(m.b, &out, DP_EDNS_OPT_CODE_ECS, &len);
    ck_assert_uint_ne(at, 0);
    ck_assert_uint_eq(len, 7);
    for (size_t i = 0; i < len; i++)
        ck_assert_uint_eq(m.b[at + i], 0x11);
    check_padding(m.b, m.n, &out, 128);
}
END_TEST

START_TEST(test_query_drops_client_cookie_and_keepalive)
{
    struct msg m;
    static const struct option opts[] = {{DP_EDNS_OPT_CODE_COOKIE, 8, 0xC0},
                                         {DP_EDNS_OPT_CODE_KEEPALIVE, 0, 0},
                                         {DP_EDNS_OPT_CODE_COOKIE, 24, 0xC1}};
    build_query(&m, "www.example.com", FLAGS_QUERY, 1, 0, opts, 3);
    dotproxy_dns_info out = to_upstream(&m, &NOPAD);
    ck_assert_uint_eq(out.opt_len, 11);
}
END_TEST

START_TEST(test_query_copies_unknown_and_nsid_options_in_order)
{
    struct msg m;
    static const struct option opts[] = {{DP_EDNS_OPT_CODE_NSID, 0, 0},
                                         {DP_EDNS_OPT_CODE_COOKIE, 8, 0xC0},
                                         {65001, 5, 0x55},
                                         {DP_EDNS_OPT_CODE_ECS, 8, 0xEC},
                                         {14, 2, 0x14}};
    build_query(&m, "www.example.com", FLAGS_QUERY, 1, 0, opts, 5);
    dotproxy_dns_info out = to_upstream(&m, &PAD128);
    unsigned codes[8];
    size_t k = option_codes(m.b, &out, codes, 8);
    ck_assert_uint_eq(k, 4);
    ck_assert_uint_eq(codes[0], DP_EDNS_OPT_CODE_NSID);
    ck_assert_uint_eq(codes[1], 65001);
    ck_assert_uint_eq(codes[2], 14);
    ck_assert_uint_eq(codes[3], DP_EDNS_OPT_CODE_PADDING);
    size_t len;
    size_t at = option_find(m.b, &out, 65001, &len);
    ck_assert_uint_eq(len, 5);
    for (size_t i = 0; i < len; i++)
        ck_assert_uint_eq(m.b[at + i], 0x55);
    at = option_find(m.b, &out, 14, &len);
    ck_assert_uint_eq(len, 2);
    ck_assert_uint_eq(get16(m.b + at), 0x1414);
}
END_TEST

START_TEST(test_query_copies_client_do_and_resets_version_ext_rcode_and_z)
{
    for (int with_do = 0; with_do <= 1; with_do++) {
        struct msg m;
        m_header(&m, 7, FLAGS_QUERY, 1, 0, 0, 1);
        m_question(&m, "example.org");
        size_t at = m_opt_begin(&m, 512, 0x33, 1, (with_do ? DO : 0) | 0x0123u);
        m_opt_end(&m, at);
        dotproxy_dns_info out = to_upstream(&m, &NOPAD);
        ck_assert_uint_eq(out.udp_size, 1232);
        ck_assert_uint_eq(out.edns_version, 0);
        ck_assert_uint_eq(out.ext_rcode, 0);
        ck_assert_uint_eq(out.edns_flags, with_do ? DO : 0);
    }
}
END_TEST

START_TEST(test_query_without_opt_gets_our_opt_with_do_clear)
{
    struct msg m;
    build_query(&m, "www.example.com", FLAGS_QUERY, 0, 0, NULL, 0);
    size_t before = m.n;
    struct dp_edns_upstream_opts o = NOPAD;
    o.udp_size = 1400;
    dotproxy_dns_info out = to_upstream(&m, &o);
    ck_assert_uint_eq(m.n, before + 11);
    ck_assert_uint_eq(out.arcount, 1);
    ck_assert_uint_eq(out.udp_size, 1400);
    ck_assert_uint_eq(out.edns_flags, 0);
    ck_assert_uint_eq(out.edns_version, 0);

    build_query(&m, "www.example.com", FLAGS_QUERY, 0, 0, NULL, 0);
    out = to_upstream(&m, &PAD128);
    ck_assert_uint_eq(m.n, 128);
    check_padding(m.b, m.n, &out, 128);
}
END_TEST

START_TEST(test_query_adds_empty_keepalive_before_padding_when_asked)
{
    struct msg m;
    static const struct option ka[] = {{DP_EDNS_OPT_CODE_KEEPALIVE, 2, 0x7F}};
    build_query(&m, "www.example.com", FLAGS_QUERY, 1, 0, ka, 1);
    struct dp_edns_upstream_opts o = PAD128;
    o.want_keepalive = 1;
    dotproxy_dns_info out = to_upstream(&m, &o);
    unsigned codes[8];
    ck_assert_uint_eq(option_codes(m.b, &out, codes, 8), 2);
    ck_assert_uint_eq(codes[0], DP_EDNS_OPT_CODE_KEEPALIVE);
    ck_assert_uint_eq(codes[1], DP_EDNS_OPT_CODE_PADDING);
    size_t len = 99;
    ck_assert_uint_ne(option_find(m.b, &out, DP_EDNS_OPT_CODE_KEEPALIVE, &len), 0);
    ck_assert_uint_eq(len, 0);
}
END_TEST

START_TEST(test_query_moves_opt_that_is_not_last)
{
    struct msg m;
    /* Additional section: OPT (cookie, NSID, ECS), then an A record whose
     * owner points at the question name. */
    m_header(&m, 0x4242, FLAGS_QUERY, 1, 0, 0, 2);
    m_question(&m, "www.example.com");
    size_t at = m_opt_begin(&m, 4096, 0, 0, DO);
    m_option(&m, DP_EDNS_OPT_CODE_COOKIE, 8, 0xC0);
    m_option(&m, DP_EDNS_OPT_CODE_NSID, 0, 0);
    m_option(&m, DP_EDNS_OPT_CODE_ECS, 7, 0xEC);
    m_opt_end(&m, at);
    size_t opt_start = at - 9;
    size_t rr_start = m.n;
    m_a_record(&m, 0x01020304, 77);
    uint8_t rr[16];
    size_t rr_len = m.n - rr_start;
    memcpy(rr, m.b + rr_start, rr_len);

    struct dp_edns_upstream_opts o = PAD128;
    o.want_keepalive = 1;
    dotproxy_dns_info out = to_upstream(&m, &o);
    ck_assert_uint_eq(out.arcount, 2);
    /* The record now sits where the OPT was, byte for byte. */
    ck_assert_uint_eq(out.opt_off, opt_start + rr_len);
    ck_assert_mem_eq(m.b + opt_start, rr, rr_len);
    ck_assert_uint_eq(out.edns_flags, DO);
    unsigned codes[8];
    ck_assert_uint_eq(option_codes(m.b, &out, codes, 8), 3);
    ck_assert_uint_eq(codes[0], DP_EDNS_OPT_CODE_NSID);
    ck_assert_uint_eq(codes[1], DP_EDNS_OPT_CODE_KEEPALIVE);
    ck_assert_uint_eq(codes[2], DP_EDNS_OPT_CODE_PADDING);
    check_padding(m.b, m.n, &out, 128);

    /* Without dropped options and without padding, too. */
    m_header(&m, 0x4242, FLAGS_QUERY, 1, 0, 0, 3);
    m_question(&m, "www.example.com");
    at = m_opt_begin(&m, 4096, 0, 0, 0);
    m_option(&m, DP_EDNS_OPT_CODE_NSID, 3, 0x33);
    m_opt_end(&m, at);
    m_a_record(&m, 1, 1);
    m_a_record(&m, 2, 2);
    size_t before = m.n;
    out = to_upstream(&m, &NOPAD);
    ck_assert_uint_eq(m.n, before);
    ck_assert_uint_eq(out.arcount, 3);
    size_t len;
    ck_assert_uint_ne(option_find(m.b, &out, DP_EDNS_OPT_CODE_NSID, &len), 0);
    ck_assert_uint_eq(len, 3);
}
END_TEST

START_TEST(test_query_leaves_header_and_other_sections_untouched)
{
    struct msg m;
    m_header(&m, 0xBEEF, FLAGS_QUERY | 0x0010u, 1, 1, 0, 1);
    m_question(&m, "www.example.com");
    m_a_record(&m, 5, 9);
    size_t at = m_opt_begin(&m, 4096, 0, 0, 0);
    m_opt_end(&m, at);
    size_t prefix = at - 9;
    uint8_t copy[128];
    memcpy(copy, m.b, prefix);
    dotproxy_dns_info out = to_upstream(&m, &PAD128);
    copy[3] |= DOTPROXY_DNS_FLAG_AD & 0xFF; /* asked for always */
    ck_assert_mem_eq(m.b + 2, copy + 2, 8); /* flags, qd, an, ns */
    ck_assert_mem_eq(m.b, copy, prefix);
    ck_assert_uint_eq(out.opt_off, prefix);
}
END_TEST

/* RFC 6840 5.7/5.8: the upstream is always asked for AD, with or without
 * the client's DO or AD, so that a cached answer keeps what the upstream
 * said about validation for every later client. */
START_TEST(test_query_asks_the_upstream_for_ad_always)
{
    struct msg m;
    for (int opt = 0; opt <= 1; opt++) {
        build_query(&m, "www.example.com", FLAGS_QUERY, opt, 0, NULL, 0);
        ck_assert_uint_eq(get16(m.b + 2) & DOTPROXY_DNS_FLAG_AD, 0);
        dotproxy_dns_info out = to_upstream(&m, &NOPAD);
        ck_assert_uint_ne(out.flags & DOTPROXY_DNS_FLAG_AD, 0);
        ck_assert_uint_eq(out.edns_flags & DO, 0);
        ck_assert_uint_eq(out.flags & ~DOTPROXY_DNS_FLAG_AD, FLAGS_QUERY);
    }
}
END_TEST

/* TC means nothing in a query; an upstream may answer it FORMERR while a
 * cached name is answered as usual: it is cleared on the way up. */
START_TEST(test_query_clears_tc_on_the_way_up)
{
    struct msg m;
    build_query(&m, "www.example.com", FLAGS_QUERY | DOTPROXY_DNS_FLAG_TC, 1, DO, NULL, 0);
    dotproxy_dns_info out = to_upstream(&m, &NOPAD);
    ck_assert_uint_eq(out.flags & DOTPROXY_DNS_FLAG_TC, 0);
    ck_assert_uint_eq(out.flags, FLAGS_QUERY | DOTPROXY_DNS_FLAG_AD);
}
END_TEST

/* ---- queries: bounds ----------------------------------------------------- */

START_TEST(test_query_reports_enospc_without_writing_past_cap)
{
    struct msg m;
    static const struct option opts[] = {{DP_EDNS_OPT_CODE_NSID, 0, 0}};
    for (int opt = 0; opt <= 1; opt++) {
        build_query(&m, "www.example.com", FLAGS_QUERY, opt, 0, opts, 1);
        dotproxy_dns_info in = parse_ok(m.b, m.n);
        struct msg big = m;
        struct dp_edns_upstream_opts o = PAD128;
        o.want_keepalive = 1;
        int need = dp_edns_query_for_upstream(big.b, big.n, sizeof(big.b), &in, &o);
        ck_assert_int_eq(need, 128);
        /* Each cap below the need: an exact heap buffer, so a write past
         * cap is an ASan error, and the message is left as it was. */
        for (size_t cap = m.n; cap < (size_t)need; cap++) {
            uint8_t *b = malloc(cap);
            ck_assert_ptr_nonnull(b);
            memcpy(b, m.b, m.n);
            ck_assert_int_eq(dp_edns_query_for_upstream(b, m.n, cap, &in, &o), DOTPROXY_ENOSPC);
            ck_assert_mem_eq(b, m.b, m.n);
            free(b);
        }
        uint8_t *b = malloc((size_t)need);
        ck_assert_ptr_nonnull(b);
        memcpy(b, m.b, m.n);
        ck_assert_int_eq(dp_edns_query_for_upstream(b, m.n, (size_t)need, &in, &o), need);
        ck_assert_mem_eq(b, big.b, (size_t)need);
        free(b);
    }
    /* cap below len is a caller error. */
    build_query(&m, "www.example.com", FLAGS_QUERY, 1, 0, NULL, 0);
    dotproxy_dns_info in = parse_ok(m.b, m.n);
    ck_assert_int_eq(dp_edns_query_for_upstream(m.b, m.n, m.n - 1, &in, &PAD128), DOTPROXY_EINVAL);
}
END_TEST

START_TEST(test_query_never_grows_past_65535)
{
    /* A query whose additional section fills the message close to 65535:
     * one big unknown record before the OPT. */
    struct msg m;
    m_header(&m, 1, FLAGS_QUERY, 1, 0, 0, 2);
    m_question(&m, "www.example.com");
    m_u16(&m, 0xC00C);
    m_u16(&m, 65280); /* private-use type, opaque RDATA */
    m_u16(&m, 1);
    m_u16(&m, 0);
    m_u16(&m, 0);
    size_t rdlen = 65535 - m.n - 2 - 11 - 60;
    m_u16(&m, (unsigned)rdlen);
    for (size_t i = 0; i < rdlen; i++)
        m_u8(&m, 0);
    size_t at = m_opt_begin(&m, 4096, 0, 0, 0);
    m_opt_end(&m, at);
    dotproxy_dns_info in = parse_ok(m.b, m.n);
    size_t before = m.n;
    ck_assert_int_eq(dp_edns_query_for_upstream(m.b, m.n, sizeof(m.b), &in, &PAD128),
                     DOTPROXY_ENOSPC);
    ck_assert_int_eq(dp_edns_query_for_upstream(m.b, m.n, sizeof(m.b), &in, &NOPAD), (int)before);
}
END_TEST

START_TEST(test_query_rejects_bad_option_lengths_and_mismatched_info)
{
    struct msg m;
    static const struct option opts[] = {{DP_EDNS_OPT_CODE_NSID, 4, 0x44},
                                         {DP_EDNS_OPT_CODE_ECS, 4, 0xEC}};
    build_query(&m, "www.example.com", FLAGS_QUERY, 1, 0, opts, 2);
    dotproxy_dns_info in = parse_ok(m.b, m.n);
    size_t ecs_len_at = (size_t)in.opt_off + 11 + 8 + 2;

    /* An option length running past RDLENGTH (as if info were stale). */
    struct msg bad = m;
    m_put16(&bad, ecs_len_at, 5);
    struct msg copy = bad;
    ck_assert_int_eq(dp_edns_query_for_upstream(bad.b, bad.n, sizeof(bad.b), &in, &PAD128),
                     DOTPROXY_EMALFORMED);
    ck_assert_mem_eq(bad.b, copy.b, copy.n);

    /* Options that stop short of RDLENGTH. */
    bad = m;
    m_put16(&bad, ecs_len_at, 1);
    ck_assert_int_eq(dp_edns_query_for_upstream(bad.b, bad.n, sizeof(bad.b), &in, &PAD128),
                     DOTPROXY_EMALFORMED);

    /* A trailing fragment shorter than an option header. */
    bad = m;
    m_put16(&bad, ecs_len_at, 1);
    m_put16(&bad, (size_t)in.opt_off + 9, 8 + 4 + 1 + 3);
    dotproxy_dns_info in2 = in;
    in2.opt_len = (uint16_t)(11 + 8 + 4 + 1 + 3);
    bad.n = (size_t)in.opt_off + in2.opt_len;
    ck_assert_int_eq(dp_edns_query_for_upstream(bad.b, bad.n, sizeof(bad.b), &in2, &PAD128),
                     DOTPROXY_EMALFORMED);

    /* info pointing at something that is not an OPT, or past the end. */
    in2 = in;
    in2.opt_off = 12;
    ck_assert_int_eq(dp_edns_query_for_upstream(m.b, m.n, sizeof(m.b), &in2, &PAD128),
                     DOTPROXY_EMALFORMED);
    in2 = in;
    in2.opt_len = (uint16_t)(in.opt_len + 1);
    ck_assert_int_eq(dp_edns_query_for_upstream(m.b, m.n, sizeof(m.b), &in2, &PAD128),
                     DOTPROXY_EMALFORMED);
    in2 = in;
    in2.opt_off = (uint16_t)(m.n + 5);
    ck_assert_int_eq(dp_edns_query_for_upstream(m.b, m.n, sizeof(m.b), &in2, &PAD128),
                     DOTPROXY_EMALFORMED);
    /* Shorter than a header. */
    ck_assert_int_eq(dp_edns_query_for_upstream(m.b, 11, sizeof(m.b), &in, &PAD128),
                     DOTPROXY_EMALFORMED);
}
END_TEST

/* ---- answers ------------------------------------------------------------- */

START_TEST(test_answer_replaces_upstream_opt_with_one_sized_for_the_client)
{
    struct msg m;
    static const struct option opts[] = {{DP_EDNS_OPT_CODE_PADDING, 100, 0}};
    for (int with_do = 0; with_do <= 1; with_do++) {
        build_answer(&m, FLAGS_ANSWER, 1, 0, opts, 1);
        struct dp_edns_client c = client(1, with_do, 0);
        int n = dp_edns_answer_for_client(m.b, m.n, sizeof(m.b), &c, 1400, 0, NULL);
        ck_assert_int_gt(n, 0);
        dotproxy_dns_info out = parse_ok(m.b, (size_t)n);
        assert_opt_last(&out, (size_t)n);
        ck_assert_uint_eq(out.arcount, 1);
        ck_assert_uint_eq(out.udp_size, 1400);
        ck_assert_uint_eq(out.edns_version, 0);
        ck_assert_uint_eq(out.edns_flags, with_do ? DO : 0);
        ck_assert_uint_eq(out.opt_len, 11);
        ck_assert_uint_eq(out.ancount, 1);
    }
}
END_TEST

START_TEST(test_answer_keeps_nsid_and_ede_and_drops_hop_options)
{
    struct msg m;
    static const struct option opts[] = {{DP_EDNS_OPT_CODE_COOKIE, 24, 0xC0},
                                         {DP_EDNS_OPT_CODE_NSID, 6, 0x4E},
                                         {DP_EDNS_OPT_CODE_KEEPALIVE, 2, 1},
                                         {DP_EDNS_OPT_CODE_ECS, 8, 0xEC},
                                         {65001, 3, 0x55},
                                         {DP_EDNS_OPT_CODE_EDE, 9, 0xED},
                                         {DP_EDNS_OPT_CODE_PADDING, 40, 0}};
    build_answer(&m, FLAGS_ANSWER, 1, 0, opts, 7);
    struct dp_edns_client c = client(1, 1, 0);
    dotproxy_dns_info out = to_client(&m, &c, 0, NULL);
    assert_opt_last(&out, m.n);
    unsigned codes[8];
    ck_assert_uint_eq(option_codes(m.b, &out, codes, 8), 2);
    ck_assert_uint_eq(codes[0], DP_EDNS_OPT_CODE_NSID);
    ck_assert_uint_eq(codes[1], DP_EDNS_OPT_CODE_EDE);
    size_t len;
    size_t at = option_find(m.b, &out, DP_EDNS_OPT_CODE_EDE, &len);
    ck_assert_uint_eq(len, 9);
    for (size_t i = 0; i < len; i++)
        ck_assert_uint_eq(m.b[at + i], 0xED);
}
END_TEST

START_TEST(test_answer_keeps_ecs_only_when_told)
{
    struct msg m;
    static const struct option opts[] = {{DP_EDNS_OPT_CODE_ECS, 8, 0xEC}};
    struct dp_edns_client c = client(1, 0, 0);
    build_answer(&m, FLAGS_ANSWER, 1, 0, opts, 1);
    dotproxy_dns_info out = to_client(&m, &c, 0, NULL);
    ck_assert_uint_eq(option_count(m.b, &out, DP_EDNS_OPT_CODE_ECS), 0);
    build_answer(&m, FLAGS_ANSWER, 1, 0, opts, 1);
    out = to_client(&m, &c, 1, NULL);
    ck_assert_uint_eq(option_count(m.b, &out, DP_EDNS_OPT_CODE_ECS), 1);
}
END_TEST

START_TEST(test_answer_for_client_without_opt_carries_none)
{
    struct msg m;
    static const struct option opts[] = {{DP_EDNS_OPT_CODE_NSID, 6, 0x4E}};
    build_answer(&m, FLAGS_ANSWER, 1, 0, opts, 1);
    size_t before = m.n;
    struct dp_edns_client c = client(0, 0, 0);
    dotproxy_dns_info out = to_client(&m, &c, 0, NULL);
    ck_assert_uint_eq(out.opt_off, 0);
    ck_assert_uint_eq(out.arcount, 0);
    ck_assert_uint_eq(m.n, before - 11 - 10);
    ck_assert_uint_eq(DOTPROXY_DNS_RCODE(out.flags), DOTPROXY_RCODE_NOERROR);

    /* and nothing is added when the upstream sent none either */
    build_answer(&m, FLAGS_ANSWER, 0, 0, NULL, 0);
    before = m.n;
    out = to_client(&m, &c, 0, NULL);
    ck_assert_uint_eq(m.n, before);
    ck_assert_uint_eq(out.opt_off, 0);
}
END_TEST

START_TEST(test_answer_adds_opt_when_upstream_sent_none)
{
    struct msg m;
    build_answer(&m, FLAGS_ANSWER, 0, 0, NULL, 0);
    size_t before = m.n;
    struct dp_edns_client c = client(1, 1, 0);
    dotproxy_dns_info out = to_client(&m, &c, 0, NULL);
    ck_assert_uint_eq(m.n, before + 11);
    assert_opt_last(&out, m.n);
    ck_assert_uint_eq(out.arcount, 1);
    ck_assert_uint_eq(out.udp_size, 1232);
    ck_assert_uint_eq(out.edns_flags, DO);
    ck_assert_uint_eq(out.ext_rcode, 0);
}
END_TEST

START_TEST(test_answer_clears_ad_for_client_without_do_or_ad)
{
    struct msg m;
    for (int opt = 0; opt <= 1; opt++) {
        build_answer(&m, FLAGS_ANSWER, 1, 0, NULL, 0);
        struct dp_edns_client c = client(opt, 0, 0);
        dotproxy_dns_info out = to_client(&m, &c, 0, NULL);
        ck_assert_uint_eq(out.flags & DOTPROXY_DNS_FLAG_AD, 0);
        ck_assert_uint_eq(out.flags, FLAGS_ANSWER & ~DOTPROXY_DNS_FLAG_AD);
    }
}
END_TEST

START_TEST(test_answer_keeps_ad_for_client_with_do)
{
    struct msg m;
    build_answer(&m, FLAGS_ANSWER, 1, 0, NULL, 0);
    struct dp_edns_client c = client(1, 1, 0);
    dotproxy_dns_info out = to_client(&m, &c, 0, NULL);
    ck_assert_uint_eq(out.flags, FLAGS_ANSWER);
}
END_TEST

START_TEST(test_answer_keeps_ad_for_client_with_ad)
{
    struct msg m;
    for (int opt = 0; opt <= 1; opt++) {
        build_answer(&m, FLAGS_ANSWER, 1, 0, NULL, 0);
        struct dp_edns_client c = client(opt, 0, 1);
        dotproxy_dns_info out = to_client(&m, &c, 0, NULL);
        ck_assert_uint_eq(out.flags, FLAGS_ANSWER);
    }
}
END_TEST

START_TEST(test_answer_extracts_keepalive_timeout_and_never_relays_it)
{
    struct msg m;
    static const struct option opts[] = {{DP_EDNS_OPT_CODE_KEEPALIVE, 2, 0x01}};
    for (int opt = 0; opt <= 1; opt++) {
        build_answer(&m, FLAGS_ANSWER, 1, 0, opts, 1);
        uint16_t ka = 0;
        struct dp_edns_client c = client(opt, 0, 0);
        dotproxy_dns_info out = to_client(&m, &c, 0, &ka);
        ck_assert_uint_eq(ka, 0x0101);
        if (opt)
            ck_assert_uint_eq(option_count(m.b, &out, DP_EDNS_OPT_CODE_KEEPALIVE), 0);
        else
            ck_assert_uint_eq(out.opt_off, 0);
    }
    /* a NULL destination is allowed */
    build_answer(&m, FLAGS_ANSWER, 1, 0, opts, 1);
    struct dp_edns_client c = client(1, 0, 0);
    dotproxy_dns_info out = to_client(&m, &c, 0, NULL);
    ck_assert_uint_eq(out.opt_len, 11);
}
END_TEST

START_TEST(test_answer_leaves_keepalive_untouched_without_timeout)
{
    struct msg m;
    static const struct option empty[] = {{DP_EDNS_OPT_CODE_KEEPALIVE, 0, 0}};
    struct dp_edns_client c = client(1, 0, 0);
    uint16_t ka = 4242;
    build_answer(&m, FLAGS_ANSWER, 1, 0, empty, 1);
    dotproxy_dns_info out = to_client(&m, &c, 0, &ka);
    ck_assert_uint_eq(ka, 4242);
    ck_assert_uint_eq(out.opt_len, 11);
    build_answer(&m, FLAGS_ANSWER, 1, 0, NULL, 0);
    to_client(&m, &c, 0, &ka);
    build_answer(&m, FLAGS_ANSWER, 0, 0, NULL, 0);
    to_client(&m, &c, 0, &ka);
    ck_assert_uint_eq(ka, 4242);
}
END_TEST

START_TEST(test_answer_preserves_extended_rcode)
{
    struct msg m;
    /* BADVERS = 16: extended rcode 1, header rcode 0 */
    build_answer(&m, FLAGS_ANSWER, 1, 1, NULL, 0);
    struct dp_edns_client c = client(1, 0, 0);
    dotproxy_dns_info out = to_client(&m, &c, 0, NULL);
    ck_assert_uint_eq(out.ext_rcode, 1);
    ck_assert_uint_eq(DOTPROXY_DNS_RCODE(out.flags), 0);
    /* BADCOOKIE = 23: extended 1, header 7 */
    build_answer(&m, FLAGS_ANSWER | 7u, 1, 1, NULL, 0);
    out = to_client(&m, &c, 0, NULL);
    ck_assert_uint_eq(((unsigned)out.ext_rcode << 4) | DOTPROXY_DNS_RCODE(out.flags), 23);
}
END_TEST

START_TEST(test_answer_turns_extended_rcode_into_servfail_for_client_without_opt)
{
    struct msg m;
    build_answer(&m, FLAGS_ANSWER, 1, 1, NULL, 0);
    struct dp_edns_client c = client(0, 0, 0);
    dotproxy_dns_info out = to_client(&m, &c, 0, NULL);
    ck_assert_uint_eq(out.opt_off, 0);
    ck_assert_uint_eq(DOTPROXY_DNS_RCODE(out.flags), DOTPROXY_RCODE_SERVFAIL);
    ck_assert_uint_eq(out.flags & ~0xFu, FLAGS_ANSWER & ~DOTPROXY_DNS_FLAG_AD & ~0xFu);
    /* an ordinary rcode passes unchanged */
    build_answer(&m, FLAGS_ANSWER | DOTPROXY_RCODE_NXDOMAIN, 1, 0, NULL, 0);
    out = to_client(&m, &c, 0, NULL);
    ck_assert_uint_eq(DOTPROXY_DNS_RCODE(out.flags), DOTPROXY_RCODE_NXDOMAIN);
}
END_TEST

START_TEST(test_answer_never_sends_padding_to_clients)
{
    struct msg m;
    static const struct option opts[] = {{DP_EDNS_OPT_CODE_PADDING, 300, 0},
                                         {DP_EDNS_OPT_CODE_NSID, 2, 0x4E},
                                         {DP_EDNS_OPT_CODE_PADDING, 8, 0}};
    build_answer(&m, FLAGS_ANSWER, 1, 0, opts, 3);
    struct dp_edns_client c = client(1, 1, 1);
    dotproxy_dns_info out = to_client(&m, &c, 1, NULL);
    ck_assert_uint_eq(option_count(m.b, &out, DP_EDNS_OPT_CODE_PADDING), 0);
    ck_assert_uint_eq(option_count(m.b, &out, DP_EDNS_OPT_CODE_NSID), 1);
    ck_assert_uint_eq(out.opt_len, 11 + 6);
}
END_TEST

/* Upstream OPT followed by another additional record. */
static void build_answer_opt_not_last(struct msg *m, size_t *opt_start, uint8_t *rr, size_t *rr_len)
{
    m_header(m, 0x1234, FLAGS_ANSWER, 1, 1, 0, 2);
    m_question(m, "www.example.com");
    m_a_record(m, 300, 1);
    size_t at = m_opt_begin(m, 1232, 0, 0, DO);
    m_option(m, DP_EDNS_OPT_CODE_PADDING, 50, 0);
    m_option(m, DP_EDNS_OPT_CODE_EDE, 2, 0x00);
    m_option(m, DP_EDNS_OPT_CODE_KEEPALIVE, 2, 0x02);
    m_opt_end(m, at);
    *opt_start = at - 9;
    size_t rs = m->n;
    m_a_record(m, 600, 2);
    *rr_len = m->n - rs;
    memcpy(rr, m->b + rs, *rr_len);
}

START_TEST(test_answer_moves_opt_behind_records_that_followed_it)
{
    struct msg m;
    size_t opt_start, rr_len;
    uint8_t rr[16];
    build_answer_opt_not_last(&m, &opt_start, rr, &rr_len);
    uint16_t ka = 0;
    struct dp_edns_client c = client(1, 1, 0);
    dotproxy_dns_info out = to_client(&m, &c, 0, &ka);
    assert_opt_last(&out, m.n);
    ck_assert_uint_eq(out.arcount, 2);
    ck_assert_mem_eq(m.b + opt_start, rr, rr_len);
    ck_assert_uint_eq(out.opt_off, opt_start + rr_len);
    ck_assert_uint_eq(ka, 0x0202);
    unsigned codes[4];
    ck_assert_uint_eq(option_codes(m.b, &out, codes, 4), 1);
    ck_assert_uint_eq(codes[0], DP_EDNS_OPT_CODE_EDE);
}
END_TEST

START_TEST(test_answer_removes_opt_not_last_for_client_without_opt)
{
    struct msg m;
    size_t opt_start, rr_len;
    uint8_t rr[16];
    build_answer_opt_not_last(&m, &opt_start, rr, &rr_len);
    struct dp_edns_client c = client(0, 0, 0);
    dotproxy_dns_info out = to_client(&m, &c, 0, NULL);
    ck_assert_uint_eq(out.opt_off, 0);
    ck_assert_uint_eq(out.arcount, 1);
    ck_assert_uint_eq(m.n, opt_start + rr_len);
    ck_assert_mem_eq(m.b + opt_start, rr, rr_len);
}
END_TEST

/* An answer whose OPT is followed by records that compress against each
 * other (legal: RFC 6891 does not place the OPT last; RFC 1035 4.1.4 lets a
 * name point at any earlier name):
 *   X  ns1.example.com A        owner: "ns1" + pointer to the question's example.com
 *   Y  a.ns1.example.com A      owner: "a" + pointer to X's owner (behind the OPT)
 *   Z  b.example.com CNAME      owner: "b" + pointer to example.com; target: pointer to Y
 *   W  MX 10 mx.a.ns1.example.com, owner a pointer to Z's owner
 * Moving the OPT (or dropping it) shifts X..W; every name must still read
 * the same afterwards. */
static void build_answer_compressed_after_opt(struct msg *m)
{
    m_header(m, 0x1234, FLAGS_ANSWER, 1, 1, 0, 5);
    m_question(m, "www.example.com"); /* www at 12, example.com at 16 */
    m_a_record(m, 300, 1);
    size_t at = m_opt_begin(m, 1232, 0, 0, DO);
    m_option(m, DP_EDNS_OPT_CODE_PADDING, 40, 0);
    m_option(m, DP_EDNS_OPT_CODE_NSID, 3, 'n');
    m_opt_end(m, at);
    size_t x = m->n;
    m_labels(m, "ns1");
    m_u16(m, 0xC000 | 16);
    m_u16(m, 1), m_u16(m, 1), m_u32(m, 60), m_u16(m, 4), m_u32(m, 0xC0000201);
    size_t y = m->n;
    m_labels(m, "a");
    m_u16(m, 0xC000 | (unsigned)x);
    m_u16(m, 1), m_u16(m, 1), m_u32(m, 60), m_u16(m, 4), m_u32(m, 0xC0000202);
    size_t z = m->n;
    m_labels(m, "b");
    m_u16(m, 0xC000 | 16);
    m_u16(m, 5), m_u16(m, 1), m_u32(m, 60), m_u16(m, 2), m_u16(m, 0xC000 | (unsigned)y);
    m_u16(m, 0xC000 | (unsigned)z);
    m_u16(m, 15), m_u16(m, 1), m_u32(m, 60);
    size_t rdlen_at = m->n;
    m_u16(m, 0);
    m_u16(m, 10);
    m_labels(m, "mx");
    m_u16(m, 0xC000 | (unsigned)y);
    m_put16(m, rdlen_at, (unsigned)(m->n - rdlen_at - 2));
}

/* Every owner name of msg, and the names in CNAME and MX RDATA, in order,
 * decoded and dotted into out ("owner|owner>target|..."). */
static void names_of(const uint8_t *b, size_t n, char *out, size_t cap)
{
    dotproxy_dns_info in = parse_ok(b, n);
    size_t pos = in.question_end, w = 0;
    unsigned rrs = in.ancount + in.nscount + in.arcount;
    out[0] = '\0';
    for (unsigned i = 0; i < rrs; i++) {
        uint8_t name[DOTPROXY_DNS_MAX_NAME];
        size_t next;
        ck_assert_int_gt(dp_dns_msg_name_lower(b, n, pos, name, &next), 0);
        unsigned type = get16(b + next);
        size_t rd = next + 10, rdlen = get16(b + next + 8);
        for (int part = 0; part < 2; part++) {
            for (size_t l = 0; name[l] != 0; l += 1u + name[l]) {
                ck_assert_uint_lt(w + name[l] + 2, cap);
                memcpy(out + w, name + l + 1, name[l]);
                w += name[l];
                out[w++] = '.';
            }
            if (part == 1 || (type != 5 && type != 15))
                break;
            out[w++] = '>';
            ck_assert_int_gt(dp_dns_msg_name_lower(b, n, type == 15 ? rd + 2 : rd, name, NULL), 0);
        }
        out[w++] = '|';
        out[w] = '\0';
        pos = rd + rdlen;
    }
}

#define COMPRESSED_NAMES                                                                           \
    "www.example.com.|ns1.example.com.|a.ns1.example.com.|b.example.com.>a.ns1.example.com.|"      \
    "b.example.com.>mx.a.ns1.example.com.|"

START_TEST(test_answer_keeps_names_that_point_behind_a_moved_opt)
{
    struct msg m;
    char names[512];
    build_answer_compressed_after_opt(&m);
    names_of(m.b, m.n, names, sizeof names);
    /* As built: the OPT (its owner the root, an empty name) second. */
    ck_assert_str_eq(names, "www.example.com.||ns1.example.com.|a.ns1.example.com.|"
                            "b.example.com.>a.ns1.example.com.|"
                            "b.example.com.>mx.a.ns1.example.com.|");
}
END_TEST

START_TEST(test_answer_rewrites_pointers_behind_an_opt_that_moves_to_the_end)
{
    struct msg m;
    char names[512];
    build_answer_compressed_after_opt(&m);
    struct dp_edns_client c = client(1, 1, 0);
    dotproxy_dns_info out = to_client(&m, &c, 0, NULL);
    assert_opt_last(&out, m.n);
    ck_assert_uint_eq(out.arcount, 5);
    names_of(m.b, m.n, names, sizeof names);
    ck_assert_str_eq(names, COMPRESSED_NAMES "|"); /* the OPT last */
}
END_TEST

START_TEST(test_answer_rewrites_pointers_behind_an_opt_that_is_removed)
{
    struct msg m;
    char names[512];
    build_answer_compressed_after_opt(&m);
    struct dp_edns_client c = client(0, 0, 0);
    dotproxy_dns_info out = to_client(&m, &c, 0, NULL);
    ck_assert_uint_eq(out.opt_off, 0);
    ck_assert_uint_eq(out.arcount, 4);
    names_of(m.b, m.n, names, sizeof names);
    ck_assert_str_eq(names, COMPRESSED_NAMES);
}
END_TEST

START_TEST(test_query_rewrites_pointers_behind_an_opt_that_moves_to_the_end)
{
    struct msg m;
    char names[512];
    build_answer_compressed_after_opt(&m);
    m_put16(&m, 2, FLAGS_QUERY);
    dotproxy_dns_info out = to_upstream(&m, &PAD128);
    assert_opt_last(&out, m.n);
    names_of(m.b, m.n, names, sizeof names);
    ck_assert_str_eq(names, COMPRESSED_NAMES "|"); /* the OPT last */
}
END_TEST

/* A pointer behind the OPT that aims into the OPT itself (at its root
 * octet: an empty name) cannot be kept once the OPT moves: the parser
 * refuses it, and the message is left as it was. */
START_TEST(test_answer_refuses_a_pointer_into_the_opt_untouched)
{
    struct msg m, copy;
    m_header(&m, 0x1234, FLAGS_ANSWER, 1, 1, 0, 2);
    m_question(&m, "www.example.com");
    m_a_record(&m, 300, 1);
    size_t opt = m.n;
    size_t at = m_opt_begin(&m, 1232, 0, 0, DO);
    m_opt_end(&m, at);
    m_u16(&m, 0xC000 | (unsigned)opt);
    m_u16(&m, 1), m_u16(&m, 1), m_u32(&m, 60), m_u16(&m, 4), m_u32(&m, 0xC0000201);
    dotproxy_dns_info in;
    ck_assert_int_eq(dotproxy_dns_parse(&in, m.b, m.n), DOTPROXY_EMALFORMED);
    copy = m;
    struct dp_edns_client c = client(1, 1, 0);
    ck_assert_int_eq(dp_edns_answer_for_client(m.b, m.n, sizeof m.b, &c, 1232, 0, NULL),
                     DOTPROXY_EMALFORMED);
    ck_assert_mem_eq(m.b, copy.b, m.n);
    c = client(0, 0, 0);
    ck_assert_int_eq(dp_edns_answer_for_client(m.b, m.n, sizeof m.b, &c, 1232, 0, NULL),
                     DOTPROXY_EMALFORMED);
    ck_assert_mem_eq(m.b, copy.b, m.n);
}
END_TEST

/* A pointer hidden in opaque RDATA behind the OPT (a TXT record), reached
 * by a name's chain, would keep its old target after the move and could
 * then aim forward (a loop for a naive client): refused, untouched. */
START_TEST(test_answer_refuses_a_chain_through_opaque_rdata_behind_the_opt)
{
    struct msg m, copy;
    m_header(&m, 0x1234, FLAGS_ANSWER, 1, 1, 0, 3);
    m_question(&m, "www.example.com");
    m_a_record(&m, 300, 1);
    size_t at = m_opt_begin(&m, 1232, 0, 0, DO);
    m_option(&m, DP_EDNS_OPT_CODE_PADDING, 8, 0);
    m_opt_end(&m, at);
    size_t txt = m.n;
    m_u16(&m, 0xC000 | 16); /* owner example.com */
    m_u16(&m, 16), m_u16(&m, 1), m_u32(&m, 60), m_u16(&m, 6);
    size_t hidden = m.n;
    m_u8(&m, 1), m_u8(&m, 'h');        /* a label ... */
    m_u16(&m, 0xC000 | (unsigned)txt); /* ... then a pointer behind the OPT */
    m_u16(&m, 0);                      /* padding octets of the TXT */
    m_labels(&m, "x");
    m_u16(&m, 0xC000 | (unsigned)hidden);
    m_u16(&m, 1), m_u16(&m, 1), m_u32(&m, 60), m_u16(&m, 4), m_u32(&m, 0xC0000201);
    parse_ok(m.b, m.n);
    copy = m;
    struct dp_edns_client c = client(1, 1, 0);
    ck_assert_int_eq(dp_edns_answer_for_client(m.b, m.n, sizeof m.b, &c, 1232, 0, NULL),
                     DOTPROXY_EMALFORMED);
    ck_assert_mem_eq(m.b, copy.b, m.n);
}
END_TEST

START_TEST(test_answer_rejects_malformed_answers_untouched)
{
    struct msg m, copy;
    static const struct option opts[] = {{DP_EDNS_OPT_CODE_KEEPALIVE, 2, 0x05},
                                         {DP_EDNS_OPT_CODE_NSID, 4, 0x4E}};
    struct dp_edns_client c = client(1, 1, 0);
    uint16_t ka = 77;

    /* An option length past RDLENGTH. */
    build_answer(&m, FLAGS_ANSWER, 1, 0, opts, 2);
    dotproxy_dns_info in = parse_ok(m.b, m.n);
    m_put16(&m, (size_t)in.opt_off + 11 + 6 + 2, 5);
    copy = m;
    ck_assert_int_eq(dp_edns_answer_for_client(m.b, m.n, sizeof(m.b), &c, 1232, 0, &ka),
                     DOTPROXY_EMALFORMED);
    ck_assert_mem_eq(m.b, copy.b, copy.n);
    ck_assert_uint_eq(ka, 77);
    /* The same through the parsed variant with a stale info. */
    ck_assert_int_eq(dp_edns_answer_for_client_parsed(m.b, m.n, sizeof(m.b), &in, &c, 1232, 0, &ka),
                     DOTPROXY_EMALFORMED);
    ck_assert_mem_eq(m.b, copy.b, copy.n);
    ck_assert_uint_eq(ka, 77);

    /* Two OPT RRs. */
    build_answer(&m, FLAGS_ANSWER, 1, 0, NULL, 0);
    size_t at = m_opt_begin(&m, 1232, 0, 0, 0);
    m_opt_end(&m, at);
    m_put16(&m, 10, 2);
    copy = m;
    ck_assert_int_eq(dp_edns_answer_for_client(m.b, m.n, sizeof(m.b), &c, 1232, 0, &ka),
                     DOTPROXY_EMALFORMED);
    ck_assert_mem_eq(m.b, copy.b, copy.n);

    /* Shorter than a header; counts that lie. */
    ck_assert_int_eq(dp_edns_answer_for_client(m.b, 5, sizeof(m.b), &c, 1232, 0, &ka),
                     DOTPROXY_EMALFORMED);
    build_answer(&m, FLAGS_ANSWER, 1, 0, NULL, 0);
    m_put16(&m, 10, 3);
    ck_assert_int_eq(dp_edns_answer_for_client(m.b, m.n, sizeof(m.b), &c, 1232, 0, &ka),
                     DOTPROXY_EMALFORMED);
    ck_assert_uint_eq(ka, 77);
}
END_TEST

START_TEST(test_answer_reports_enospc_without_writing_past_cap)
{
    struct msg m;
    build_answer(&m, FLAGS_ANSWER, 0, 0, NULL, 0);
    struct dp_edns_client c = client(1, 0, 0);
    for (size_t cap = m.n; cap < m.n + 11; cap++) {
        uint8_t *b = malloc(cap);
        ck_assert_ptr_nonnull(b);
        memcpy(b, m.b, m.n);
        ck_assert_int_eq(dp_edns_answer_for_client(b, m.n, cap, &c, 1232, 0, NULL),
                         DOTPROXY_ENOSPC);
        ck_assert_mem_eq(b, m.b, m.n);
        free(b);
    }
    uint8_t *b = malloc(m.n + 11);
    ck_assert_ptr_nonnull(b);
    memcpy(b, m.b, m.n);
    int n = dp_edns_answer_for_client(b, m.n, m.n + 11, &c, 1232, 0, NULL);
    ck_assert_int_eq(n, (int)m.n + 11);
    parse_ok(b, (size_t)n);
    free(b);

    /* An answer that had an OPT never grows, so cap == len always does. */
    static const struct option opts[] = {{DP_EDNS_OPT_CODE_NSID, 4, 0x4E}};
    build_answer(&m, FLAGS_ANSWER, 1, 0, opts, 1);
    b = malloc(m.n);
    ck_assert_ptr_nonnull(b);
    memcpy(b, m.b, m.n);
    n = dp_edns_answer_for_client(b, m.n, m.n, &c, 1232, 0, NULL);
    ck_assert_int_eq(n, (int)m.n);
    parse_ok(b, (size_t)n);
    free(b);
    ck_assert_int_eq(dp_edns_answer_for_client(m.b, m.n, m.n - 1, &c, 1232, 0, NULL),
                     DOTPROXY_EINVAL);
}
END_TEST

START_TEST(test_answer_parsed_variant_gives_the_same_bytes)
{
    static const struct option opts[] = {{DP_EDNS_OPT_CODE_COOKIE, 16, 0xC0},
                                         {DP_EDNS_OPT_CODE_NSID, 4, 0x4E},
                                         {DP_EDNS_OPT_CODE_KEEPALIVE, 2, 0x03}};
    struct msg a, b;
    build_answer(&a, FLAGS_ANSWER, 1, 0, opts, 3);
    b = a;
    struct dp_edns_client c = client(1, 1, 0);
    uint16_t ka1 = 0, ka2 = 0;
    int n1 = dp_edns_answer_for_client(a.b, a.n, sizeof(a.b), &c, 1232, 0, &ka1);
    dotproxy_dns_info in = parse_ok(b.b, b.n);
    int n2 = dp_edns_answer_for_client_parsed(b.b, b.n, sizeof(b.b), &in, &c, 1232, 0, &ka2);
    ck_assert_int_gt(n1, 0);
    ck_assert_int_eq(n1, n2);
    ck_assert_mem_eq(a.b, b.b, (size_t)n1);
    ck_assert_uint_eq(ka1, 0x0303);
    ck_assert_uint_eq(ka2, 0x0303);
}
END_TEST

/* ---- add_client_opt ------------------------------------------------------ */

START_TEST(test_add_client_opt_appends_a_fresh_opt)
{
    struct msg m;
    build_answer(&m, FLAGS_ANSWER | DOTPROXY_RCODE_NXDOMAIN, 0, 0, NULL, 0);
    size_t before = m.n;
    struct dp_edns_client c = client(1, 1, 0);
    int n = dp_edns_add_client_opt(m.b, m.n, sizeof(m.b), &c, 1232);
    ck_assert_int_eq(n, (int)before + 11);
    dotproxy_dns_info out = parse_ok(m.b, (size_t)n);
    assert_opt_last(&out, (size_t)n);
    ck_assert_uint_eq(out.arcount, 1);
    ck_assert_uint_eq(out.udp_size, 1232);
    ck_assert_uint_eq(out.edns_flags, DO);
    ck_assert_uint_eq(out.edns_version, 0);
    ck_assert_uint_eq(out.ext_rcode, 0);
    ck_assert_uint_eq(out.opt_len, 11);
    ck_assert_uint_eq(out.flags, FLAGS_ANSWER | DOTPROXY_RCODE_NXDOMAIN);

    build_answer(&m, FLAGS_ANSWER, 0, 0, NULL, 0);
    c = client(1, 0, 0);
    n = dp_edns_add_client_opt(m.b, m.n, sizeof(m.b), &c, 1232);
    out = parse_ok(m.b, (size_t)n);
    ck_assert_uint_eq(out.edns_flags, 0);
    ck_assert_uint_eq(out.flags & DOTPROXY_DNS_FLAG_AD, 0);
}
END_TEST

START_TEST(test_add_client_opt_adds_nothing_for_client_without_opt_but_gates_ad)
{
    struct msg m;
    build_answer(&m, FLAGS_ANSWER, 0, 0, NULL, 0);
    size_t before = m.n;
    struct dp_edns_client c = client(0, 0, 0);
    ck_assert_int_eq(dp_edns_add_client_opt(m.b, m.n, m.n, &c, 1232), (int)before);
    dotproxy_dns_info out = parse_ok(m.b, before);
    ck_assert_uint_eq(out.opt_off, 0);
    ck_assert_uint_eq(out.flags, FLAGS_ANSWER & ~DOTPROXY_DNS_FLAG_AD);

    build_answer(&m, FLAGS_ANSWER, 0, 0, NULL, 0);
    c = client(0, 0, 1);
    ck_assert_int_eq(dp_edns_add_client_opt(m.b, m.n, m.n, &c, 1232), (int)before);
    out = parse_ok(m.b, before);
    ck_assert_uint_eq(out.flags, FLAGS_ANSWER);
}
END_TEST

START_TEST(test_add_client_opt_reports_enospc_and_full_arcount)
{
    struct msg m;
    build_answer(&m, FLAGS_ANSWER, 0, 0, NULL, 0);
    struct dp_edns_client c = client(1, 0, 0);
    for (size_t cap = m.n; cap < m.n + 11; cap++) {
        uint8_t *b = malloc(cap);
        ck_assert_ptr_nonnull(b);
        memcpy(b, m.b, m.n);
        ck_assert_int_eq(dp_edns_add_client_opt(b, m.n, cap, &c, 1232), DOTPROXY_ENOSPC);
        ck_assert_mem_eq(b, m.b, m.n);
        free(b);
    }
    struct msg copy = m;
    m_put16(&m, 10, 0xFFFF);
    copy = m;
    ck_assert_int_eq(dp_edns_add_client_opt(m.b, m.n, sizeof(m.b), &c, 1232), DOTPROXY_EMALFORMED);
    ck_assert_mem_eq(m.b, copy.b, copy.n);
    ck_assert_int_eq(dp_edns_add_client_opt(m.b, 11, sizeof(m.b), &c, 1232), DOTPROXY_EMALFORMED);
    ck_assert_int_eq(dp_edns_add_client_opt(m.b, m.n, m.n - 1, &c, 1232), DOTPROXY_EINVAL);
}
END_TEST

/* ---- a round trip -------------------------------------------------------- */

START_TEST(test_round_trip_query_and_answer_each_get_their_own_opt)
{
    /* A client query with DO, a cookie, ECS and NSID; the upstream answers
     * with its own cookie, padding, keepalive and NSID. */
    struct msg q;
    static const struct option qopts[] = {{DP_EDNS_OPT_CODE_COOKIE, 8, 0xC0},
                                          {DP_EDNS_OPT_CODE_ECS, 7, 0xEC},
                                          {DP_EDNS_OPT_CODE_NSID, 0, 0}};
    build_query(&q, "www.example.com", FLAGS_QUERY, 1, DO, qopts, 3);
    dotproxy_dns_info qi = parse_ok(q.b, q.n);
    struct dp_edns_client c;
    dp_edns_client_from_query(&c, &qi);
    struct dp_edns_upstream_opts o = PAD128;
    o.want_keepalive = 1;
    dotproxy_dns_info up = to_upstream(&q, &o);
    unsigned codes[8];
    ck_assert_uint_eq(option_codes(q.b, &up, codes, 8), 3);
    ck_assert_uint_eq(codes[0], DP_EDNS_OPT_CODE_NSID);
    ck_assert_uint_eq(up.edns_flags, DO);

    struct msg a;
    static const struct option aopts[] = {{DP_EDNS_OPT_CODE_COOKIE, 24, 0xC0},
                                          {DP_EDNS_OPT_CODE_NSID, 5, 0x4E},
                                          {DP_EDNS_OPT_CODE_KEEPALIVE, 2, 0x00},
                                          {DP_EDNS_OPT_CODE_PADDING, 200, 0}};
    build_answer(&a, FLAGS_ANSWER, 1, 0, aopts, 4);
    uint16_t ka = 9;
    dotproxy_dns_info ai = to_client(&a, &c, 0, &ka);
    ck_assert_uint_eq(ka, 0);
    ck_assert_uint_eq(option_codes(a.b, &ai, codes, 8), 1);
    ck_assert_uint_eq(codes[0], DP_EDNS_OPT_CODE_NSID);
    ck_assert_uint_eq(ai.flags, FLAGS_ANSWER);
    ck_assert_uint_eq(ai.edns_flags, DO);
}
END_TEST

static Suite *edns_suite(void)
{
    Suite *s = suite_create("edns");

    TCase *client_tc = tcase_create("client");
    tcase_add_test(client_tc, test_client_from_query_remembers_opt_do_ad_cd_and_size);
    tcase_add_test(client_tc, test_client_from_query_without_opt_has_no_size_and_no_do);
    suite_add_tcase(s, client_tc);

    TCase *pad = tcase_create("query_padding");
    tcase_add_test(pad, test_query_padding_makes_every_length_a_multiple_of_128);
    tcase_add_test(pad, test_query_padding_is_minimal_and_never_applied_twice);
    tcase_add_test(pad, test_query_padding_replaces_a_client_padding_option);
    tcase_add_test(pad, test_query_padding_honours_other_block_sizes);
    tcase_add_test(pad, test_query_without_pad_block_carries_no_padding);
    suite_add_tcase(s, pad);

    TCase *query = tcase_create("query_options");
    tcase_add_test(query, test_query_drops_ecs_by_default);
    tcase_add_test(query, test_query_keeps_ecs_when_told);
    tcase_add_test(query, test_query_drops_client_cookie_and_keepalive);
    tcase_add_test(query, test_query_copies_unknown_and_nsid_options_in_order);
    tcase_add_test(query, test_query_copies_client_do_and_resets_version_ext_rcode_and_z);
    tcase_add_test(query, test_query_without_opt_gets_our_opt_with_do_clear);
    tcase_add_test(query, test_query_adds_empty_keepalive_before_padding_when_asked);
    tcase_add_test(query, test_query_moves_opt_that_is_not_last);
    tcase_add_test(query, test_query_leaves_header_and_other_sections_untouched);
    tcase_add_test(query, test_query_asks_the_upstream_for_ad_always);
    tcase_add_test(query, test_query_clears_tc_on_the_way_up);
    suite_add_tcase(s, query);

    TCase *qbounds = tcase_create("query_bounds");
    tcase_add_test(qbounds, test_query_reports_enospc_without_writing_past_cap);
    tcase_add_test(qbounds, test_query_never_grows_past_65535);
    tcase_add_test(qbounds, test_query_rejects_bad_option_lengths_and_mismatched_info);
    suite_add_tcase(s, qbounds);

    TCase *answer = tcase_create("answer");
    tcase_add_test(answer, test_answer_replaces_upstream_opt_with_one_sized_for_the_client);
    tcase_add_test(answer, test_answer_keeps_nsid_and_ede_and_drops_hop_options);
    tcase_add_test(answer, test_answer_keeps_ecs_only_when_told);
    tcase_add_test(answer, test_answer_for_client_without_opt_carries_none);
    tcase_add_test(answer, test_answer_adds_opt_when_upstream_sent_none);
    tcase_add_test(answer, test_answer_clears_ad_for_client_without_do_or_ad);
    tcase_add_test(answer, test_answer_keeps_ad_for_client_with_do);
    tcase_add_test(answer, test_answer_keeps_ad_for_client_with_ad);
    tcase_add_test(answer, test_answer_extracts_keepalive_timeout_and_never_relays_it);
    tcase_add_test(answer, test_answer_leaves_keepalive_untouched_without_timeout);
    tcase_add_test(answer, test_answer_preserves_extended_rcode);
    tcase_add_test(answer, test_answer_turns_extended_rcode_into_servfail_for_client_without_opt);
    tcase_add_test(answer, test_answer_never_sends_padding_to_clients);
    tcase_add_test(answer, test_answer_moves_opt_behind_records_that_followed_it);
    tcase_add_test(answer, test_answer_removes_opt_not_last_for_client_without_opt);
    tcase_add_test(answer, test_answer_parsed_variant_gives_the_same_bytes);
    tcase_add_test(answer, test_answer_keeps_names_that_point_behind_a_moved_opt);
    tcase_add_test(answer, test_answer_rewrites_pointers_behind_an_opt_that_moves_to_the_end);
    tcase_add_test(answer, test_answer_rewrites_pointers_behind_an_opt_that_is_removed);
    tcase_add_test(answer, test_query_rewrites_pointers_behind_an_opt_that_moves_to_the_end);
    tcase_add_test(answer, test_answer_refuses_a_pointer_into_the_opt_untouched);
    tcase_add_test(answer, test_answer_refuses_a_chain_through_opaque_rdata_behind_the_opt);
    suite_add_tcase(s, answer);

    TCase *abounds = tcase_create("answer_bounds");
    tcase_add_test(abounds, test_answer_rejects_malformed_answers_untouched);
    tcase_add_test(abounds, test_answer_reports_enospc_without_writing_past_cap);
    suite_add_tcase(s, abounds);

    TCase *add = tcase_create("add_client_opt");
    tcase_add_test(add, test_add_client_opt_appends_a_fresh_opt);
    tcase_add_test(add, test_add_client_opt_adds_nothing_for_client_without_opt_but_gates_ad);
    tcase_add_test(add, test_add_client_opt_reports_enospc_and_full_arcount);
    suite_add_tcase(s, add);

    TCase *trip = tcase_create("round_trip");
    tcase_add_test(trip, test_round_trip_query_and_answer_each_get_their_own_opt);
    suite_add_tcase(s, trip);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(edns_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
