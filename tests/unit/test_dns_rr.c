/* SPDX-License-Identifier: MIT */
/* Unit tests of lib/dns_rr.c: queries built from text names (EDNS, DO, IDs),
 * and the record iterator and typed readers over answers, including
 * compressed names, escapes and hostile messages. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "dotproxy/dns.h"
#include "dotproxy/error.h"
#include "msgbuild.h"

static struct msg M;

static void m_rr(struct msg *m, unsigned type, unsigned cls, unsigned long ttl, unsigned rdlen)
{
    m_u16(m, type);
    m_u16(m, cls);
    m_u32(m, ttl);
    m_u16(m, rdlen);
}

START_TEST(test_build_query_plain_matches_wire_form)
{
    uint8_t q[512];
    int n = dotproxy_dns_build_query(q, sizeof q, "www.Example.org", DOTPROXY_DNS_TYPE_AAAA,
                                     DOTPROXY_DNS_CLASS_IN, DOTPROXY_DNS_Q_RD | DOTPROXY_DNS_Q_ID,
                                     0x1234, 0);
    static const uint8_t want[] = {0x12, 0x34, 0x01, 0x00, 0,   1,   0,   0,   0,   0,   0,
                                   0,    3,    'w',  'w',  'w', 7,   'E', 'x', 'a', 'm', 'p',
                                   'l',  'e',  3,    'o',  'r', 'g', 0,   0,   28,  0,   1};
    ck_assert_int_eq(n, (int)sizeof want);
    ck_assert_mem_eq(q, want, sizeof want);
    /* a final dot means the same name */
    uint8_t q2[512];
    ck_assert_int_eq(dotproxy_dns_build_query(q2, sizeof q2, "www.Example.org.", 28, 1,
                                              DOTPROXY_DNS_Q_RD | DOTPROXY_DNS_Q_ID, 0x1234, 0),
                     n);
    ck_assert_mem_eq(q, q2, (size_t)n);
    dotproxy_dns_info in;
    ck_assert_int_eq(dotproxy_dns_parse(&in, q, (size_t)n), 0);
    ck_assert_uint_eq(in.opt_off, 0);
}
END_TEST

START_TEST(test_build_query_edns_do_and_size)
{
    uint8_t q[512];
    int n = dotproxy_dns_build_query(q, sizeof q, "example.org", 1, 1,
                                     DOTPROXY_DNS_Q_DO | DOTPROXY_DNS_Q_CD, 0, 4096);
    ck_assert_int_gt(n, 0);
    dotproxy_dns_info in;
    ck_assert_int_eq(dotproxy_dns_parse(&in, q, (size_t)n), 0);
    ck_assert_uint_ne(in.opt_off, 0);
    ck_assert_uint_eq(in.udp_size, 4096);
    ck_assert_uint_eq(in.edns_flags, DOTPROXY_DNS_EDNS_DO);
    ck_assert_uint_eq(in.edns_version, 0);
    ck_assert_uint_eq(in.flags, DOTPROXY_DNS_FLAG_CD);
    /* EDNS without DO, default and floored sizes */
    n = dotproxy_dns_build_query(q, sizeof q, "example.org", 1, 1, DOTPROXY_DNS_Q_EDNS, 0, 0);
    ck_assert_int_eq(dotproxy_dns_parse(&in, q, (size_t)n), 0);
    ck_assert_uint_eq(in.udp_size, 1232);
    ck_assert_uint_eq(in.edns_flags, 0);
    n = dotproxy_dns_build_query(q, sizeof q, "example.org", 1, 1, DOTPROXY_DNS_Q_EDNS, 0, 100);
    ck_assert_int_eq(dotproxy_dns_parse(&in, q, (size_t)n), 0);
    ck_assert_uint_eq(in.udp_size, 512);
}
END_TEST

START_TEST(test_build_query_random_ids_vary)
{
    uint8_t q[64];
    unsigned seen[64];
    int distinct = 0;
    for (int i = 0; i < 64; i++) {
        ck_assert_int_gt(dotproxy_dns_build_query(q, sizeof q, "a.", 1, 1, 0, 0, 0), 0);
        seen[i] = (unsigned)dotproxy_dns_get_id(q, sizeof q);
        int dup = 0;
        for (int j = 0; j < i; j++)
            dup |= seen[j] == seen[i];
        distinct += !dup;
    }
    /* 64 draws of 16 bits: a handful of collisions at most, never all equal */
    ck_assert_int_gt(distinct, 50);
}
END_TEST

START_TEST(test_build_query_root_escapes_and_refusals)
{
    uint8_t q[600];
    int n = dotproxy_dns_build_query(q, sizeof q, ".", 2, 1, DOTPROXY_DNS_Q_ID, 7, 0);
    ck_assert_int_eq(n, 12 + 1 + 4);
    ck_assert_uint_eq(q[12], 0);
    /* "\." is a dot inside a label, "\065" an A */
    n = dotproxy_dns_build_query(q, sizeof q, "a\\.b\\065.c", 1, 1, DOTPROXY_DNS_Q_ID, 7, 0);
    static const uint8_t name[] = {4, 'a', '.', 'b', 'A', 1, 'c', 0};
    ck_assert_int_eq(n, 12 + (int)sizeof name + 4);
    ck_assert_mem_eq(q + 12, name, sizeof name);

    const char *bad[] = {"", "..", ".a", "a..b", "a\\", "a\\25", "a\\256"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(dotproxy_dns_build_query(q, sizeof q, bad[i], 1, 1, 0, 0, 0) ==
                          DOTPROXY_EINVAL,
                      "%s accepted", bad[i]);
    char label[80];
    memset(label, 'x', 64);
    label[64] = '\0';
    ck_assert_int_eq(dotproxy_dns_build_query(q, sizeof q, label, 1, 1, 0, 0, 0), DOTPROXY_EINVAL);
    label[63] = '\0';
    ck_assert_int_gt(dotproxy_dns_build_query(q, sizeof q, label, 1, 1, 0, 0, 0), 0);

    /* 255 wire octets is the most: 127 labels "a" = 254 + root = 255 */
    char big[600] = "";
    for (int i = 0; i < 127; i++)
        strcat(big, "a.");
    n = dotproxy_dns_build_query(q, sizeof q, big, 1, 1, 0, 0, 0);
    ck_assert_int_eq(n, 12 + 255 + 4);
    dotproxy_dns_info in;
    ck_assert_int_eq(dotproxy_dns_parse(&in, q, (size_t)n), 0);
    ck_assert_uint_eq(in.qname_len, 255);
    strcat(big, "a");
    ck_assert_int_eq(dotproxy_dns_build_query(q, sizeof q, big, 1, 1, 0, 0, 0), DOTPROXY_EINVAL);

    /* cap: one short is ENOSPC, exact fits */
    n = dotproxy_dns_build_query(q, sizeof q, "example.org", 1, 1, DOTPROXY_DNS_Q_EDNS, 0, 0);
    ck_assert_int_eq(
        dotproxy_dns_build_query(q, (size_t)n - 1, "example.org", 1, 1, DOTPROXY_DNS_Q_EDNS, 0, 0),
        DOTPROXY_ENOSPC);
    ck_assert_int_eq(
        dotproxy_dns_build_query(q, (size_t)n, "example.org", 1, 1, DOTPROXY_DNS_Q_EDNS, 0, 0), n);
    ck_assert_int_eq(dotproxy_dns_build_query(NULL, 10, "a", 1, 1, 0, 0, 0), DOTPROXY_EINVAL);
}
END_TEST

/* An answer with every helper's type, compressed names, an OPT. */
static void answer_with_everything(struct msg *m)
{
    m_header(m, 0xBEEF, 0x8180, 1, 6, 1, 1);
    m_name(m, "www.example.org"); /* at 12 */
    m_u16(m, 5);
    m_u16(m, 1);
    /* www.example.org CNAME web.example.org (compressed onto 16) */
    m_u16(m, 0xC00C);
    m_rr(m, 5, 1, 300, 6);
    size_t web = m->n;
    m_labels(m, "web");
    m_u16(m, 0xC010);
    /* web.example.org A 192.0.2.7 */
    m_u16(m, 0xC000 | (unsigned)web);
    m_rr(m, 1, 1, 60, 4);
    m_bytes(m, "\xc0\x00\x02\x07", 4);
    /* AAAA 2001:db8::1 */
    m_u16(m, 0xC000 | (unsigned)web);
    m_rr(m, 28, 1, 60, 16);
    m_bytes(m, "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01", 16);
    /* TXT "hi" "" "a.b" */
    m_u16(m, 0xC00C);
    m_rr(m, 16, 1, 5, 3 + 1 + 4);
    m_bytes(m,
            "\x02hi\x00\x03"
            "a.b",
            8);
    /* a label with a dot, a space and a backslash in it, as text */
    m_labels(m, "x");
    m_bytes(m,
            "\x03"
            "a.\\",
            4);
    m_bytes(m, "\x01 ", 2);
    m_u8(m, 0);
    m_rr(m, 1, 1, 1, 4);
    m_bytes(m, "\x01\x02\x03\x04", 4);
    /* a PTR for the cname reader */
    m_u16(m, 0xC00C);
    m_rr(m, 12, 1, 1, 2);
    m_u16(m, 0xC000 | (unsigned)web);
    /* authority: example.org SOA ns.example.org. host.example.org. */
    m_u16(m, 0xC010);
    size_t rdl = m->n + 8;
    m_rr(m, 6, 1, 3600, 0);
    size_t rd = m->n;
    m_labels(m, "ns");
    m_u16(m, 0xC010);
    m_labels(m, "Host");
    m_u16(m, 0xC010);
    m_u32(m, 2026120501);
    m_u32(m, 7200);
    m_u32(m, 900);
    m_u32(m, 1209600);
    m_u32(m, 86400);
    m_put16(m, rdl, (unsigned)(m->n - rd));
    /* additional: OPT 1232 DO */
    m_u8(m, 0);
    m_u16(m, 41);
    m_u16(m, 1232);
    m_u32(m, 0x8000);
    m_u16(m, 0);
}

START_TEST(test_iter_walks_every_section_with_typed_readers)
{
    answer_with_everything(&M);
    dotproxy_dns_iter it;
    dotproxy_dns_rr rr;
    char text[DOTPROXY_DNS_NAME_TEXT_MAX];
    ck_assert_int_eq(dotproxy_dns_iter_init(&it, M.b, M.n), 0);

    ck_assert_int_eq(dotproxy_dns_iter_next(&it, &rr), 1);
    ck_assert_int_eq(rr.section, DOTPROXY_DNS_SECTION_QUESTION);
    ck_assert_int_eq(dotproxy_dns_rr_name(&rr, text, sizeof text), 16);
    ck_assert_str_eq(text, "www.example.org.");
    ck_assert_uint_eq(rr.type, 5);
    ck_assert_ptr_null(rr.rdata);
    uint8_t a4[4], a16[16];
    ck_assert_int_eq(dotproxy_dns_rr_a(&rr, a4), DOTPROXY_EINVAL);

    ck_assert_int_eq(dotproxy_dns_iter_next(&it, &rr), 1);
    ck_assert_int_eq(rr.section, DOTPROXY_DNS_SECTION_ANSWER);
    ck_assert_uint_eq(rr.type, 5);
    ck_assert_uint_eq(rr.ttl, 300);
    ck_assert_int_gt(dotproxy_dns_rr_cname(&rr, text, sizeof text), 0);
    ck_assert_str_eq(text, "web.example.org.");
    ck_assert_int_eq(dotproxy_dns_rr_a(&rr, a4), DOTPROXY_EINVAL);

    ck_assert_int_eq(dotproxy_dns_iter_next(&it, &rr), 1);
    ck_assert_int_eq(dotproxy_dns_rr_name(&rr, text, sizeof text), 16);
    ck_assert_str_eq(text, "web.example.org.");
    ck_assert_int_eq(dotproxy_dns_rr_a(&rr, a4), 0);
    ck_assert_mem_eq(a4, "\xc0\x00\x02\x07", 4);
    ck_assert_int_eq(dotproxy_dns_rr_aaaa(&rr, a16), DOTPROXY_EINVAL);

    ck_assert_int_eq(dotproxy_dns_iter_next(&it, &rr), 1);
    ck_assert_int_eq(dotproxy_dns_rr_aaaa(&rr, a16), 0);
    ck_assert_uint_eq(a16[0], 0x20);
    ck_assert_uint_eq(a16[15], 1);

    ck_assert_int_eq(dotproxy_dns_iter_next(&it, &rr), 1);
    size_t pos = 0;
    const uint8_t *s;
    size_t sl;
    ck_assert_int_eq(dotproxy_dns_rr_txt(&rr, &pos, &s, &sl), 1);
    ck_assert_uint_eq(sl, 2);
    ck_assert_mem_eq(s, "hi", 2);
    ck_assert_int_eq(dotproxy_dns_rr_txt(&rr, &pos, &s, &sl), 1);
    ck_assert_uint_eq(sl, 0);
    ck_assert_int_eq(dotproxy_dns_rr_txt(&rr, &pos, &s, &sl), 1);
    ck_assert_mem_eq(s, "a.b", 3);
    ck_assert_int_eq(dotproxy_dns_rr_txt(&rr, &pos, &s, &sl), 0);

    ck_assert_int_eq(dotproxy_dns_iter_next(&it, &rr), 1);
    ck_assert_int_gt(dotproxy_dns_rr_name(&rr, text, sizeof text), 0);
    ck_assert_str_eq(text, "x.a\\.\\\\.\\032.");
    /* too small a buffer: ENOSPC, never an overflow */
    ck_assert_int_eq(dotproxy_dns_rr_name(&rr, text, 5), DOTPROXY_ENOSPC);

    ck_assert_int_eq(dotproxy_dns_iter_next(&it, &rr), 1);
    ck_assert_uint_eq(rr.type, 12);
    ck_assert_int_gt(dotproxy_dns_rr_cname(&rr, text, sizeof text), 0);
    ck_assert_str_eq(text, "web.example.org.");

    ck_assert_int_eq(dotproxy_dns_iter_next(&it, &rr), 1);
    ck_assert_int_eq(rr.section, DOTPROXY_DNS_SECTION_AUTHORITY);
    dotproxy_dns_soa soa;
    ck_assert_int_eq(dotproxy_dns_rr_soa(&rr, &soa), 0);
    ck_assert_uint_eq(soa.serial, 2026120501u);
    ck_assert_uint_eq(soa.refresh, 7200);
    ck_assert_uint_eq(soa.retry, 900);
    ck_assert_uint_eq(soa.expire, 1209600);
    ck_assert_uint_eq(soa.minimum, 86400);
    ck_assert_int_gt(dotproxy_dns_name_text(M.b, M.n, soa.mname_off, text, sizeof text), 0);
    ck_assert_str_eq(text, "ns.example.org.");
    ck_assert_int_gt(dotproxy_dns_name_text(M.b, M.n, soa.rname_off, text, sizeof text), 0);
    ck_assert_str_eq(text, "Host.example.org.");

    ck_assert_int_eq(dotproxy_dns_iter_next(&it, &rr), 1);
    ck_assert_int_eq(rr.section, DOTPROXY_DNS_SECTION_ADDITIONAL);
    ck_assert_uint_eq(rr.type, DOTPROXY_DNS_TYPE_OPT);
    ck_assert_uint_eq(rr.rclass, 1232);
    ck_assert_int_eq(dotproxy_dns_rr_name(&rr, text, sizeof text), 1);
    ck_assert_str_eq(text, ".");

    ck_assert_int_eq(dotproxy_dns_iter_next(&it, &rr), 0);
    ck_assert_int_eq(dotproxy_dns_iter_next(&it, &rr), 0);
}
END_TEST

START_TEST(test_iter_refuses_hostile_messages)
{
    dotproxy_dns_iter it;
    dotproxy_dns_rr rr;

    /* a pointer loop in the owner name */
    m_header(&M, 1, 0x8000, 1, 1, 0, 0);
    m_name(&M, "a");
    m_u16(&M, 1);
    m_u16(&M, 1);
    size_t self = M.n;
    m_u16(&M, 0xC000 | (unsigned)self);
    m_rr(&M, 1, 1, 1, 4);
    m_u32(&M, 0);
    ck_assert_int_eq(dotproxy_dns_iter_init(&it, M.b, M.n), DOTPROXY_EMALFORMED);
    ck_assert_int_eq(dotproxy_dns_iter_next(&it, &rr), 0);

    /* counts promising more records than there are bytes */
    m_header(&M, 1, 0x8000, 1, 2, 0, 0);
    m_name(&M, "a");
    m_u16(&M, 1);
    m_u16(&M, 1);
    m_u16(&M, 0xC00C);
    m_rr(&M, 1, 1, 1, 4);
    m_u32(&M, 0);
    ck_assert_int_eq(dotproxy_dns_iter_init(&it, M.b, M.n), DOTPROXY_EMALFORMED);

    /* a TXT whose string runs past its RDATA: the reader says so */
    m_header(&M, 1, 0x8000, 0, 1, 0, 0);
    m_name(&M, "t");
    m_rr(&M, 16, 1, 1, 3);
    m_bytes(&M,
            "\x05"
            "ab",
            3);
    ck_assert_int_eq(dotproxy_dns_iter_init(&it, M.b, M.n), 0);
    ck_assert_int_eq(dotproxy_dns_iter_next(&it, &rr), 1);
    size_t pos = 0;
    const uint8_t *s;
    size_t sl;
    ck_assert_int_eq(dotproxy_dns_rr_txt(&rr, &pos, &s, &sl), DOTPROXY_EMALFORMED);

    /* an A record of the wrong length is not an address */
    m_header(&M, 1, 0x8000, 0, 1, 0, 0);
    m_name(&M, "t");
    m_rr(&M, 1, 1, 1, 3);
    m_bytes(&M, "abc", 3);
    ck_assert_int_eq(dotproxy_dns_iter_init(&it, M.b, M.n), 0);
    ck_assert_int_eq(dotproxy_dns_iter_next(&it, &rr), 1);
    uint8_t a4[4];
    ck_assert_int_eq(dotproxy_dns_rr_a(&rr, a4), DOTPROXY_EINVAL);

    /* name_text on an offset that is no name */
    char text[DOTPROXY_DNS_NAME_TEXT_MAX];
    ck_assert_int_eq(dotproxy_dns_name_text(M.b, M.n, M.n, text, sizeof text), DOTPROXY_EMALFORMED);
    ck_assert_int_eq(dotproxy_dns_iter_init(NULL, M.b, M.n), DOTPROXY_EINVAL);
}
END_TEST

START_TEST(test_built_query_reads_back)
{
    uint8_t q[300];
    char text[DOTPROXY_DNS_NAME_TEXT_MAX];
    int n =
        dotproxy_dns_build_query(q, sizeof q, "a\\.b.\\009x.org", 16, 3, DOTPROXY_DNS_Q_DO, 0, 0);
    ck_assert_int_gt(n, 0);
    dotproxy_dns_iter it;
    dotproxy_dns_rr rr;
    ck_assert_int_eq(dotproxy_dns_iter_init(&it, q, (size_t)n), 0);
    ck_assert_int_eq(dotproxy_dns_iter_next(&it, &rr), 1);
    ck_assert_int_gt(dotproxy_dns_rr_name(&rr, text, sizeof text), 0);
    ck_assert_str_eq(text, "a\\.b.\\009x.org.");
    ck_assert_uint_eq(rr.type, 16);
    ck_assert_uint_eq(rr.rclass, 3);
    ck_assert_int_eq(dotproxy_dns_iter_next(&it, &rr), 1);
    ck_assert_uint_eq(rr.type, DOTPROXY_DNS_TYPE_OPT);
    ck_assert_uint_eq(rr.ttl & 0xFFFF, DOTPROXY_DNS_EDNS_DO);
    ck_assert_int_eq(dotproxy_dns_iter_next(&it, &rr), 0);
}
END_TEST

static Suite *dns_rr_suite(void)
{
    Suite *s = suite_create("dns_rr");
    TCase *tc = tcase_create("dns_rr");
    tcase_add_test(tc, test_build_query_plain_matches_wire_form);
    tcase_add_test(tc, test_build_query_edns_do_and_size);
    tcase_add_test(tc, test_build_query_random_ids_vary);
    tcase_add_test(tc, test_build_query_root_escapes_and_refusals);
    tcase_add_test(tc, test_iter_walks_every_section_with_typed_readers);
    tcase_add_test(tc, test_iter_refuses_hostile_messages);
    tcase_add_test(tc, test_built_query_reads_back);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(dns_rr_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
