/* SPDX-License-Identifier: MIT */
/* Unit tests of lib/dns_msg.c: parsing of good and hostile DNS messages,
 * ID access, UDP limits, question matching, synthesised replies, truncation. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "dns_msg.h"
#include "dotproxy/dns.h"
#include "dotproxy/error.h"
#include "msgbuild.h"

/* ---- messages (the primitives are in msgbuild.h) ------------------------- */

static void m_ptr(struct msg *m, unsigned off)
{
    m_u16(m, 0xC000u | off);
}

static void m_question(struct msg *m, const char *name, unsigned type, unsigned cls)
{
    m_name(m, name);
    m_u16(m, type);
    m_u16(m, cls);
}

/* Fixed part of an RR after its owner name. */
static void m_rr_fixed(struct msg *m, unsigned type, unsigned cls, unsigned long ttl,
                       unsigned rdlen)
{
    m_u16(m, type);
    m_u16(m, cls);
    m_u32(m, ttl);
    m_u16(m, rdlen);
}

static void m_opt(struct msg *m, unsigned udp, unsigned ext, unsigned ver, unsigned flags)
{
    m_u8(m, 0);
    m_u16(m, 41);
    m_u16(m, udp);
    m_u8(m, ext);
    m_u8(m, ver);
    m_u16(m, flags);
    m_u16(m, 0);
}

static void set16(struct msg *m, size_t off, unsigned v)
{
    m->b[off] = (uint8_t)(v >> 8);
    m->b[off + 1] = (uint8_t)(v & 0xFF);
}

static unsigned get16(const uint8_t *p)
{
    return (unsigned)((p[0] << 8) | p[1]);
}

static struct msg M; /* large: kept off the stack */
static struct msg M2;

static int parse(struct msg *m, dotproxy_dns_info *info)
{
    return dotproxy_dns_parse(info, m->b, m->n);
}

static void build_query(struct msg *m, const char *name, int with_opt, unsigned edns_flags)
{
    m_header(m, 0xBEEF, DOTPROXY_DNS_FLAG_RD | DOTPROXY_DNS_FLAG_CD, 1, 0, 0, with_opt ? 1 : 0);
    m_question(m, name, 1, 1);
    if (with_opt)
        m_opt(m, 4096, 0, 0, edns_flags);
}

/* An answer for www.example.com: CNAME to web.example.com (compressed), two A
 * records for it, an SOA in authority with compressed names, an A glue and an
 * OPT in additional. */
static void build_answer(struct msg *m, int with_opt)
{
    m_header(m, 0x1234, DOTPROXY_DNS_FLAG_QR | DOTPROXY_DNS_FLAG_RD | DOTPROXY_DNS_FLAG_RA, 1, 3, 1,
             with_opt ? 2 : 1);
    m_question(m, "www.example.com", 1, 1); /* www at 12, example at 16 */
    /* CNAME www.example.com -> web.example.com */
    m_ptr(m, 12);
    m_rr_fixed(m, 5, 1, 300, 6);
    size_t web = m->n;
    m_labels(m, "web");
    m_ptr(m, 16);
    for (int i = 0; i < 2; i++) {
        m_ptr(m, (unsigned)web);
        m_rr_fixed(m, 1, 1, 60, 4);
        m_u32(m, 0xC0000201ul + (unsigned long)i);
    }
    /* SOA example.com: mname ns1.example.com, rname hostmaster.example.com */
    m_ptr(m, 16);
    size_t rdlen_at = m->n + 8;
    m_rr_fixed(m, 6, 1, 3600, 0);
    size_t rd = m->n;
    m_labels(m, "ns1");
    m_ptr(m, 16);
    m_labels(m, "hostmaster");
    m_ptr(m, 16);
    for (int i = 0; i < 5; i++)
        m_u32(m, 1000ul + (unsigned long)i);
    set16(m, rdlen_at, (unsigned)(m->n - rd));
    /* glue A for ns1 */
    m_ptr(m, (unsigned)rd);
    m_rr_fixed(m, 1, 1, 60, 4);
    m_u32(m, 0xC0000235ul);
    if (with_opt)
        m_opt(m, 1232, 0, 0, DOTPROXY_DNS_EDNS_DO);
}

static void assert_malformed(struct msg *m)
{
    dotproxy_dns_info info;
    memset(&info, 0xAB, sizeof(info));
    ck_assert_int_eq(parse(m, &info), DOTPROXY_EMALFORMED);
    /* out is written only on success */
    for (size_t i = 0; i < sizeof(info); i++)
        ck_assert_uint_eq(((uint8_t *)&info)[i], 0xAB);
}

/* ---- parse: good messages ----------------------------------------------- */

START_TEST(test_parse_accepts_query_without_opt)
{
    dotproxy_dns_info info;
    build_query(&M, "www.Example.com", 0, 0);
    ck_assert_int_eq(parse(&M, &info), 0);
    ck_assert_uint_eq(info.id, 0xBEEF);
    ck_assert_uint_eq(info.flags, DOTPROXY_DNS_FLAG_RD | DOTPROXY_DNS_FLAG_CD);
    ck_assert_uint_eq(info.qdcount, 1);
    ck_assert_uint_eq(info.ancount + info.nscount + info.arcount, 0);
    ck_assert_uint_eq(info.qname_off, DOTPROXY_DNS_HEADER_SIZE);
    ck_assert_uint_eq(info.qname_len, 17);
    ck_assert_uint_eq(info.qtype, 1);
    ck_assert_uint_eq(info.qclass, 1);
    ck_assert_uint_eq(info.question_end, M.n);
    ck_assert_uint_eq(info.opt_off, 0);
    ck_assert_uint_eq(dotproxy_dns_udp_limit(&info), 512);
}
END_TEST

START_TEST(test_parse_reads_the_edns_opt_of_a_query)
{
    dotproxy_dns_info info;
    build_query(&M, "example.org", 1, DOTPROXY_DNS_EDNS_DO);
    /* extended rcode and version are reported raw */
    M.b[M.n - 6] = 3;
    M.b[M.n - 5] = 1;
    ck_assert_int_eq(parse(&M, &info), 0);
    ck_assert_uint_eq(info.arcount, 1);
    ck_assert_uint_eq(info.question_end, 12 + 13 + 4);
    ck_assert_uint_eq(info.opt_off, info.question_end);
    ck_assert_uint_eq(info.opt_len, 11);
    ck_assert_uint_eq(info.udp_size, 4096);
    ck_assert_uint_eq(info.ext_rcode, 3);
    ck_assert_uint_eq(info.edns_version, 1);
    ck_assert_uint_eq(info.edns_flags, DOTPROXY_DNS_EDNS_DO);
    ck_assert_uint_eq(dotproxy_dns_udp_limit(&info), 4096);
}
END_TEST

START_TEST(test_parse_accepts_opt_carrying_options)
{
    dotproxy_dns_info info;
    m_header(&M, 1, 0, 1, 0, 0, 1);
    m_question(&M, "a.b", 28, 1);
    size_t opt = M.n;
    m_u8(&M, 0);
    m_rr_fixed(&M, 41, 1400, 0, 4 + 8 + 4);
    m_u16(&M, 10); /* COOKIE, client part */
    m_u16(&M, 8);
    m_bytes(&M, "abcdefgh", 8);
    m_u16(&M, 12); /* empty padding */
    m_u16(&M, 0);
    ck_assert_int_eq(parse(&M, &info), 0);
    ck_assert_uint_eq(info.opt_off, opt);
    ck_assert_uint_eq(info.opt_len, M.n - opt);
    /* an option whose length overruns RDATA */
    set16(&M, M.n - 2, 1);
    assert_malformed(&M);
}
END_TEST

START_TEST(test_parse_accepts_answer_with_compressed_names_and_several_rrs)
{
    dotproxy_dns_info info;
    build_answer(&M, 1);
    ck_assert_int_eq(parse(&M, &info), 0);
    ck_assert_uint_eq(info.id, 0x1234);
    ck_assert(info.flags & DOTPROXY_DNS_FLAG_QR);
    ck_assert_uint_eq(info.ancount, 3);
    ck_assert_uint_eq(info.nscount, 1);
    ck_assert_uint_eq(info.arcount, 2);
    ck_assert_uint_eq(info.qname_len, 17);
    ck_assert_uint_eq(info.opt_len, 11);
    ck_assert_uint_eq(info.opt_off, M.n - 11);
    ck_assert_uint_eq(info.edns_flags, DOTPROXY_DNS_EDNS_DO);
}
END_TEST

START_TEST(test_parse_accepts_message_without_question)
{
    dotproxy_dns_info info;
    m_header(&M, 7, DOTPROXY_DNS_FLAG_QR | 2, 0, 0, 0, 0);
    ck_assert_int_eq(parse(&M, &info), 0);
    ck_assert_uint_eq(info.qdcount, 0);
    ck_assert_uint_eq(info.qname_off, 0);
    ck_assert_uint_eq(info.qname_len, 0);
    ck_assert_uint_eq(info.question_end, 0);
    ck_assert_uint_eq(DOTPROXY_DNS_RCODE(info.flags), 2);
}
END_TEST

START_TEST(test_parse_accepts_root_name_and_255_octet_name)
{
    dotproxy_dns_info info;
    m_header(&M, 1, 0, 1, 0, 0, 0);
    m_question(&M, "", 2, 1);
    ck_assert_int_eq(parse(&M, &info), 0);
    ck_assert_uint_eq(info.qname_len, 1);

    /* 63+1 three times, 61+1, root: 255 octets exactly */
    m_header(&M, 1, 0, 1, 0, 0, 0);
    for (int i = 0; i < 3; i++) {
        m_u8(&M, 63);
        for (int j = 0; j < 63; j++)
            m_u8(&M, 'a');
    }
    m_u8(&M, 61);
    for (int j = 0; j < 61; j++)
        m_u8(&M, 'b');
    m_u8(&M, 0);
    m_u16(&M, 1);
    m_u16(&M, 1);
    ck_assert_int_eq(parse(&M, &info), 0);
    ck_assert_uint_eq(info.qname_len, 255);
}
END_TEST

START_TEST(test_parse_rejects_null_arguments)
{
    dotproxy_dns_info info;
    build_query(&M, "a", 0, 0);
    ck_assert_int_eq(dotproxy_dns_parse(NULL, M.b, M.n), DOTPROXY_EINVAL);
    ck_assert_int_eq(dotproxy_dns_parse(&info, NULL, M.n), DOTPROXY_EINVAL);
}
END_TEST

/* ---- parse: hostile messages ------------------------------------------- */

START_TEST(test_parse_rejects_truncated_header)
{
    build_query(&M, "a", 0, 0);
    M.n = 11;
    assert_malformed(&M);
    M.n = 0;
    assert_malformed(&M);
    /* a header promising a question that is not there */
    M.n = 12;
    assert_malformed(&M);
}
END_TEST

START_TEST(test_parse_rejects_message_longer_than_65535)
{
    dotproxy_dns_info info;
    /* A query with one NULL RR whose RDATA fills the message up to len. */
    for (size_t len = 65535; len <= 65536; len++) {
        m_header(&M, 1, 0x8000, 1, 1, 0, 0);
        m_question(&M, "a", 1, 1);
        m_u8(&M, 0);
        size_t rdlen = len - M.n - 10;
        m_rr_fixed(&M, 10, 1, 0, (unsigned)rdlen);
        memset(M.b + M.n, 0, rdlen);
        M.n += rdlen;
        ck_assert_uint_eq(M.n, len);
        if (len == 65535)
            ck_assert_int_eq(parse(&M, &info), 0);
        else
            assert_malformed(&M);
    }
}
END_TEST

START_TEST(test_parse_rejects_self_pointer)
{
    /* owner of the answer RR is a pointer to itself */
    m_header(&M, 1, 0x8000, 1, 1, 0, 0);
    m_question(&M, "a.b", 1, 1);
    m_ptr(&M, (unsigned)M.n);
    m_rr_fixed(&M, 1, 1, 0, 4);
    m_u32(&M, 0);
    assert_malformed(&M);
}
END_TEST

START_TEST(test_parse_rejects_pointer_back_to_start_of_its_own_name)
{
    /* "\1x" then a pointer to the label: each pointer is backwards from
     * where it sits, yet following it never ends. */
    m_header(&M, 1, 0x8000, 1, 1, 0, 0);
    m_question(&M, "a.b", 1, 1);
    size_t own = M.n;
    m_labels(&M, "x");
    m_ptr(&M, (unsigned)own);
    m_rr_fixed(&M, 1, 1, 0, 4);
    m_u32(&M, 0);
    assert_malformed(&M);
}
END_TEST

START_TEST(test_parse_rejects_two_pointer_cycle)
{
    uint8_t out[DOTPROXY_DNS_MAX_NAME];
    /* RR1 owner at p points to q (inside RR1's opaque RDATA), q points back
     * to p. */
    m_header(&M, 1, 0x8000, 1, 1, 0, 0);
    m_question(&M, "a.b", 1, 1);
    size_t p = M.n;
    m_ptr(&M, (unsigned)(p + 12));
    m_rr_fixed(&M, 10, 1, 0, 2); /* NULL RR */
    size_t q = M.n;
    ck_assert_uint_eq(q, p + 12);
    m_ptr(&M, (unsigned)p);
    assert_malformed(&M);
    /* Entered from q, the first hop is backwards: the second must still fail. */
    ck_assert_int_eq(dp_dns_msg_name_lower(M.b, M.n, q, out, NULL), DOTPROXY_EMALFORMED);
}
END_TEST

START_TEST(test_parse_rejects_forward_pointer)
{
    m_header(&M, 1, 0x8000, 1, 1, 0, 0);
    m_question(&M, "a.b", 1, 1);
    size_t owner = M.n;
    m_ptr(&M, (unsigned)(owner + 12)); /* points into the RDATA after it */
    m_rr_fixed(&M, 10, 1, 0, 3);
    m_name(&M, "c");
    assert_malformed(&M);
}
END_TEST

START_TEST(test_parse_rejects_pointer_past_the_end)
{
    m_header(&M, 1, 0x8000, 1, 1, 0, 0);
    m_question(&M, "a.b", 1, 1);
    m_ptr(&M, 0x3FFF);
    m_rr_fixed(&M, 1, 1, 0, 4);
    m_u32(&M, 0);
    assert_malformed(&M);
    /* a pointer cut in half by the end of the message */
    m_header(&M, 1, 0x8000, 1, 1, 0, 0);
    m_question(&M, "a.b", 1, 1);
    m_u8(&M, 0xC0);
    assert_malformed(&M);
}
END_TEST

START_TEST(test_parse_rejects_pointer_into_header)
{
    m_header(&M, 1, 0, 1, 0, 0, 0);
    m_ptr(&M, 4);
    m_u16(&M, 1);
    m_u16(&M, 1);
    assert_malformed(&M);
}
END_TEST

START_TEST(test_parse_bounds_pointer_chains)
{
    dotproxy_dns_info info;
    /* A NULL RR whose RDATA is a root octet then a chain of pointers each
     * to the one before; an A record's owner enters the chain at its end. */
    for (int hops = 100; hops <= 200; hops += 100) {
        m_header(&M, 1, 0x8000, 1, 2, 0, 0);
        m_question(&M, "a.b", 1, 1);
        m_u8(&M, 0);
        m_rr_fixed(&M, 10, 1, 0, (unsigned)(1 + 2 * (hops - 1)));
        size_t root = M.n;
        m_u8(&M, 0);
        size_t prev = root;
        for (int i = 0; i < hops - 1; i++) {
            size_t here = M.n;
            m_ptr(&M, (unsigned)prev);
            prev = here;
        }
        m_ptr(&M, (unsigned)prev);
        m_rr_fixed(&M, 1, 1, 0, 4);
        m_u32(&M, 0);
        if (hops == 100)
            ck_assert_int_eq(parse(&M, &info), 0);
        else
            assert_malformed(&M);
    }
}
END_TEST

START_TEST(test_parse_rejects_counts_that_promise_more_rrs)
{
    build_answer(&M, 0);
    set16(&M, 6, 4); /* ancount 3 -> 4 */
    assert_malformed(&M);
    build_query(&M, "a.b", 0, 0);
    set16(&M, 4, 2); /* qdcount 2, one question */
    assert_malformed(&M);
}
END_TEST

START_TEST(test_parse_rejects_counts_that_promise_fewer_rrs)
{
    build_answer(&M, 1);
    set16(&M, 10, 1); /* arcount 2 -> 1: the OPT is left over */
    assert_malformed(&M);
    build_query(&M, "a.b", 0, 0);
    m_u8(&M, 0); /* one octet of trailing garbage */
    assert_malformed(&M);
}
END_TEST

START_TEST(test_parse_rejects_rdlength_past_the_end)
{
    build_answer(&M, 0);
    /* the last RR is the glue A: make its RDLENGTH 5 */
    set16(&M, M.n - 6, 5);
    assert_malformed(&M);
    set16(&M, M.n - 6, 0xFFFF);
    assert_malformed(&M);
    /* RR fixed part itself cut short */
    build_answer(&M, 0);
    M.n -= 7;
    assert_malformed(&M);
}
END_TEST

START_TEST(test_parse_rejects_label_longer_than_63)
{
    m_header(&M, 1, 0, 1, 0, 0, 0);
    m_u8(&M, 64);
    for (int i = 0; i < 64; i++)
        m_u8(&M, 'x');
    m_u8(&M, 0);
    m_u16(&M, 1);
    m_u16(&M, 1);
    assert_malformed(&M);
    /* the 0x80 (binary label) prefix too */
    m_header(&M, 1, 0, 1, 0, 0, 0);
    m_u8(&M, 0x81);
    m_u8(&M, 'x');
    m_u8(&M, 0);
    m_u16(&M, 1);
    m_u16(&M, 1);
    assert_malformed(&M);
}
END_TEST

START_TEST(test_parse_rejects_name_longer_than_255)
{
    m_header(&M, 1, 0, 1, 0, 0, 0);
    for (int i = 0; i < 4; i++) { /* 4 * 64 + 1 = 257 */
        m_u8(&M, 63);
        for (int j = 0; j < 63; j++)
            m_u8(&M, 'a');
    }
    m_u8(&M, 0);
    m_u16(&M, 1);
    m_u16(&M, 1);
    assert_malformed(&M);

    /* 256 octets reached only through a pointer: 192 + 63 + 1 */
    m_header(&M, 1, 0x8000, 1, 1, 0, 0);
    for (int i = 0; i < 3; i++) {
        m_u8(&M, 63);
        for (int j = 0; j < 63; j++)
            m_u8(&M, 'a');
    }
    m_u8(&M, 0);
    m_u16(&M, 1);
    m_u16(&M, 1);
    m_u8(&M, 62);
    for (int j = 0; j < 62; j++)
        m_u8(&M, 'c');
    m_ptr(&M, 12);
    m_rr_fixed(&M, 1, 1, 0, 4);
    m_u32(&M, 0);
    assert_malformed(&M);
    /* one octet shorter is fine */
    dotproxy_dns_info info;
    M.b[12 + 3 * 64 + 5] = 61; /* label before the pointer: 62 -> 61, drop a 'c' */
    memmove(M.b + 12 + 3 * 64 + 5 + 62, M.b + 12 + 3 * 64 + 5 + 63, M.n - (12 + 3 * 64 + 5 + 63));
    M.n--;
    ck_assert_int_eq(parse(&M, &info), 0);
}
END_TEST

START_TEST(test_parse_rejects_two_opts)
{
    m_header(&M, 1, 0, 1, 0, 0, 2);
    m_question(&M, "a.b", 1, 1);
    m_opt(&M, 1232, 0, 0, 0);
    m_opt(&M, 1232, 0, 0, 0);
    assert_malformed(&M);
}
END_TEST

START_TEST(test_parse_rejects_opt_in_answer_or_authority)
{
    for (int sec = 0; sec < 2; sec++) {
        m_header(&M, 1, 0x8000, 1, sec == 0, sec == 1, 0);
        m_question(&M, "a.b", 1, 1);
        m_opt(&M, 1232, 0, 0, 0);
        assert_malformed(&M);
    }
}
END_TEST

START_TEST(test_parse_rejects_opt_with_non_root_owner)
{
    m_header(&M, 1, 0, 1, 0, 0, 1);
    m_question(&M, "a.b", 1, 1);
    m_name(&M, "a");
    m_rr_fixed(&M, 41, 1232, 0, 0);
    assert_malformed(&M);
    /* a pointer, even to a root octet, is not the literal root */
    m_header(&M, 1, 0, 1, 0, 0, 1);
    m_question(&M, "a.b", 1, 1);
    m_ptr(&M, 16);
    m_rr_fixed(&M, 41, 1232, 0, 0);
    assert_malformed(&M);
}
END_TEST

/* The OPT is rewritten, moved and removed on its way through, so no name
 * may read its octets: neither a name behind it that points into it, nor
 * one before it whose labels, read after a pointer, run on into it. */
START_TEST(test_parse_rejects_names_that_read_the_opt)
{
    m_header(&M, 1, 0x8000, 1, 0, 0, 2);
    m_question(&M, "a.b", 1, 1);
    size_t opt = M.n;
    m_opt(&M, 1232, 0, 0, 0);
    m_ptr(&M, opt); /* the OPT's root octet, an empty name */
    m_rr_fixed(&M, 1, 1, 60, 4);
    m_u32(&M, 0xC0000201);
    assert_malformed(&M);

    /* The owner of the TXT record points at the question's last octet (1:
     * a one-octet label), and its labels run on over the record itself
     * (0x10: a 16-octet label) to end on the OPT's first TYPE octet. */
    m_header(&M, 1, 0x8000, 1, 1, 0, 1);
    m_u8(&M, 0); /* the question: the root, at 12 */
    m_u16(&M, 1), m_u16(&M, 1);
    m_ptr(&M, 16);
    m_rr_fixed(&M, 16, 1, 60, 5);
    m_bytes(&M, "\4abcd", 5);
    ck_assert_uint_eq(M.n, 34);
    m_opt(&M, 1232, 0, 0, 0);
    assert_malformed(&M);

    /* the legal neighbour: a name behind the OPT pointing before it */
    m_header(&M, 1, 0x8000, 1, 0, 0, 2);
    m_question(&M, "a.b", 1, 1);
    m_opt(&M, 1232, 0, 0, 0);
    m_ptr(&M, 12);
    m_rr_fixed(&M, 1, 1, 60, 4);
    m_u32(&M, 0xC0000201);
    dotproxy_dns_info in;
    ck_assert_int_eq(dotproxy_dns_parse(&in, M.b, M.n), 0);
}
END_TEST

START_TEST(test_parse_rejects_bad_names_inside_rdata)
{
    dotproxy_dns_info info;
    /* CNAME whose RDATA has a name then an extra octet */
    m_header(&M, 1, 0x8000, 1, 1, 0, 0);
    m_question(&M, "a.b", 5, 1);
    m_ptr(&M, 12);
    m_rr_fixed(&M, 5, 1, 0, 4);
    m_labels(&M, "c");
    m_u8(&M, 0);
    m_u8(&M, 0);
    assert_malformed(&M);
    /* the same without the extra octet is fine */
    set16(&M, M.n - 6, 3);
    M.n--;
    ck_assert_int_eq(parse(&M, &info), 0);
    /* CNAME name running past RDLENGTH into the next bytes */
    m_header(&M, 1, 0x8000, 1, 1, 0, 0);
    m_question(&M, "a.b", 5, 1);
    m_ptr(&M, 12);
    m_rr_fixed(&M, 5, 1, 0, 2);
    m_labels(&M, "c");
    m_u8(&M, 0);
    assert_malformed(&M);
    /* MX with a forward pointer */
    m_header(&M, 1, 0x8000, 1, 1, 0, 0);
    m_question(&M, "a.b", 15, 1);
    m_ptr(&M, 12);
    m_rr_fixed(&M, 15, 1, 0, 4);
    m_u16(&M, 10);
    m_ptr(&M, (unsigned)M.n + 2);
    assert_malformed(&M);
}
END_TEST

/* ---- IDs, UDP limit, question matching ---------------------------------- */

START_TEST(test_get_and_set_id)
{
    build_query(&M, "a", 0, 0);
    ck_assert_int_eq(dotproxy_dns_get_id(M.b, M.n), 0xBEEF);
    ck_assert_int_eq(dotproxy_dns_set_id(M.b, M.n, 0x0102), 0);
    ck_assert_uint_eq(M.b[0], 1);
    ck_assert_uint_eq(M.b[1], 2);
    ck_assert_int_eq(dotproxy_dns_get_id(M.b, 2), 0x0102);
    ck_assert_int_eq(dotproxy_dns_get_id(M.b, 1), DOTPROXY_EINVAL);
    ck_assert_int_eq(dotproxy_dns_set_id(M.b, 1, 5), DOTPROXY_EINVAL);
    ck_assert_int_eq(dotproxy_dns_get_id(NULL, 12), DOTPROXY_EINVAL);
    ck_assert_uint_eq(M.b[0], 1);
}
END_TEST

START_TEST(test_udp_limit_has_512_floor)
{
    dotproxy_dns_info info;
    build_query(&M, "a", 1, 0);
    set16(&M, M.n - 8, 100);
    ck_assert_int_eq(parse(&M, &info), 0);
    ck_assert_uint_eq(dotproxy_dns_udp_limit(&info), 512);
    set16(&M, M.n - 8, 1400);
    ck_assert_int_eq(parse(&M, &info), 0);
    ck_assert_uint_eq(dotproxy_dns_udp_limit(&info), 1400);
}
END_TEST

START_TEST(test_same_question_ignores_case_and_compares_type_and_class)
{
    build_query(&M, "WWW.Example.COM", 1, 0);
    build_answer(&M2, 0);
    ck_assert_int_eq(dotproxy_dns_same_question(M.b, M.n, M2.b, M2.n), 1);
    ck_assert_int_eq(dotproxy_dns_same_question(M2.b, M2.n, M.b, M.n), 1);
    /* type differs */
    set16(&M, 12 + 17, 28);
    ck_assert_int_eq(dotproxy_dns_same_question(M.b, M.n, M2.b, M2.n), 0);
    set16(&M, 12 + 17, 1);
    /* class differs */
    set16(&M, 12 + 19, 3);
    ck_assert_int_eq(dotproxy_dns_same_question(M.b, M.n, M2.b, M2.n), 0);
    set16(&M, 12 + 19, 1);
    /* one letter differs; and a non-letter differs only by the case bit */
    M.b[13] = 'v';
    ck_assert_int_eq(dotproxy_dns_same_question(M.b, M.n, M2.b, M2.n), 0);
    M.b[13] = 'W';
    ck_assert_int_eq(dotproxy_dns_same_question(M.b, M.n, M2.b, M2.n), 1);
    build_query(&M, "a@.b", 0, 0);
    build_query(&M2, "a`.b", 0, 0);
    ck_assert_int_eq(dotproxy_dns_same_question(M.b, M.n, M2.b, M2.n), 0);
}
END_TEST

START_TEST(test_same_question_is_false_when_either_fails_to_parse)
{
    build_query(&M, "a.b", 0, 0);
    build_query(&M2, "a.b", 0, 0);
    ck_assert_int_eq(dotproxy_dns_same_question(M.b, M.n, M2.b, M2.n), 1);
    M2.b[M2.n++] = 0; /* trailing garbage */
    ck_assert_int_eq(dotproxy_dns_same_question(M.b, M.n, M2.b, M2.n), 0);
    ck_assert_int_eq(dotproxy_dns_same_question(M2.b, M2.n, M.b, M.n), 0);
    ck_assert_int_eq(dotproxy_dns_same_question(M.b, M.n, NULL, 0), 0);
    /* no question at all is not "the same question" */
    m_header(&M, 1, 0, 0, 0, 0, 0);
    m_header(&M2, 1, 0, 0, 0, 0, 0);
    ck_assert_int_eq(dotproxy_dns_same_question(M.b, M.n, M2.b, M2.n), 0);
}
END_TEST

START_TEST(test_name_lower_decodes_compressed_name)
{
    uint8_t out[DOTPROXY_DNS_MAX_NAME];
    size_t next = 0;
    build_answer(&M, 0);
    /* the first A record's owner: pointer to "web" + pointer to example.com */
    size_t a_owner = 12 + 17 + 4 + 2 + 10 + 6;
    int n = dp_dns_msg_name_lower(M.b, M.n, a_owner, out, &next);
    ck_assert_int_eq(n, 17);
    ck_assert_mem_eq(out, "\3web\7example\3com", 17);
    ck_assert_uint_eq(next, a_owner + 2);
    ck_assert_int_eq(dp_dns_msg_skip_name(M.b, M.n, a_owner), (int)(a_owner + 2));
    n = dp_dns_msg_name_lower(M.b, M.n, 12, out, &next);
    ck_assert_int_eq(n, 17);
    ck_assert_uint_eq(next, 12 + 17);
    ck_assert_int_eq(dp_dns_msg_name_lower(M.b, M.n, M.n, out, &next), DOTPROXY_EMALFORMED);
}
END_TEST

/* ---- make_reply --------------------------------------------------------- */

static void check_reply(const uint8_t *r, int rlen, const struct msg *q, unsigned rcode,
                        int expect_question, int expect_opt, unsigned expect_do)
{
    dotproxy_dns_info ri;
    ck_assert_int_gt(rlen, 0);
    ck_assert_uint_le((size_t)rlen, q->n + 11);
    ck_assert_int_eq(dotproxy_dns_parse(&ri, r, (size_t)rlen), 0);
    ck_assert_uint_eq(ri.id, get16(q->b));
    unsigned qf = get16(q->b + 2);
    ck_assert(ri.flags & DOTPROXY_DNS_FLAG_QR);
    if (DOTPROXY_DNS_OPCODE(qf) == 0) {
        ck_assert(ri.flags & DOTPROXY_DNS_FLAG_RA);
        ck_assert_uint_eq(ri.flags & DOTPROXY_DNS_FLAG_RD, qf & DOTPROXY_DNS_FLAG_RD);
        ck_assert_uint_eq(ri.flags & DOTPROXY_DNS_FLAG_CD, qf & DOTPROXY_DNS_FLAG_CD);
    } else {
        /* another opcode: nothing but QR, the opcode and the rcode */
        ck_assert_uint_eq(ri.flags & ~(DOTPROXY_DNS_FLAG_QR | 0x7800u | 0xFu), 0);
    }
    ck_assert_uint_eq(ri.flags & (DOTPROXY_DNS_FLAG_TC | DOTPROXY_DNS_FLAG_AA), 0);
    ck_assert_uint_eq(DOTPROXY_DNS_RCODE(ri.flags), rcode);
    ck_assert_uint_eq(ri.ancount + ri.nscount, 0);
    ck_assert_uint_eq(ri.qdcount, expect_question ? 1 : 0);
    if (expect_question) {
        dotproxy_dns_info qi;
        /* the question octets are the query's */
        size_t qend = ri.question_end;
        ck_assert_mem_eq(r + 12, q->b + 12, qend - 12);
        if (dotproxy_dns_parse(&qi, q->b, q->n) == 0)
            ck_assert_int_eq(dotproxy_dns_same_question(r, (size_t)rlen, q->b, q->n), 1);
    }
    if (expect_opt) {
        ck_assert_uint_eq(ri.arcount, 1);
        ck_assert_uint_ne(ri.opt_off, 0);
        ck_assert_uint_eq(ri.udp_size, 1232);
        ck_assert_uint_eq(ri.edns_version, 0);
        ck_assert_uint_eq(ri.ext_rcode, 0);
        ck_assert_uint_eq(ri.edns_flags, expect_do);
    } else {
        ck_assert_uint_eq(ri.arcount, 0);
        ck_assert_uint_eq(ri.opt_off, 0);
    }
}

START_TEST(test_make_reply_builds_formerr_servfail_refused)
{
    static const unsigned rcodes[] = {DOTPROXY_RCODE_FORMERR, DOTPROXY_RCODE_SERVFAIL,
                                      DOTPROXY_RCODE_REFUSED};
    uint8_t out[600];
    for (size_t i = 0; i < 3; i++) {
        build_query(&M, "www.example.com", 0, 0);
        int n = dotproxy_dns_make_reply(out, sizeof(out), M.b, M.n, rcodes[i]);
        ck_assert_int_eq(n, (int)M.n);
        check_reply(out, n, &M, rcodes[i], 1, 0, 0);
    }
}
END_TEST

START_TEST(test_make_reply_copies_rd_and_cd_of_a_standard_query)
{
    uint8_t out[600];
    build_query(&M, "a.b", 0, 0);
    set16(&M, 2, 0); /* RD and CD clear */
    int n = dotproxy_dns_make_reply(out, sizeof(out), M.b, M.n, DOTPROXY_RCODE_SERVFAIL);
    check_reply(out, n, &M, 2, 1, 0, 0);
    set16(&M, 2, DOTPROXY_DNS_FLAG_RD | DOTPROXY_DNS_FLAG_CD);
    n = dotproxy_dns_make_reply(out, sizeof(out), M.b, M.n, DOTPROXY_RCODE_SERVFAIL);
    check_reply(out, n, &M, 2, 1, 0, 0);
}
END_TEST

/* An opcode we do not implement gets NOTIMP that echoes only the opcode and
 * the ID: no RA, and none of RD, CD, AD, Z, AA or TC (genreport's opcode and
 * opcodeflg tests; what unbound and dnsdist answer). */
START_TEST(test_make_reply_to_another_opcode_says_only_its_opcode)
{
    uint8_t out[600];
    static const unsigned opcodes[] = {1, 2, 3, 6, 15};
    for (size_t i = 0; i < sizeof opcodes / sizeof opcodes[0]; i++) {
        build_query(&M, "a.b", 0, 0);
        set16(&M, 2,
              DOTPROXY_DNS_FLAG_AD | DOTPROXY_DNS_FLAG_AA | DOTPROXY_DNS_FLAG_TC |
                  DOTPROXY_DNS_FLAG_RD | DOTPROXY_DNS_FLAG_CD | 0x0040u /* Z */ |
                  (opcodes[i] << 11));
        int n = dotproxy_dns_make_reply(out, sizeof(out), M.b, M.n, DOTPROXY_RCODE_NOTIMP);
        check_reply(out, n, &M, 4, 1, 0, 0);
        ck_assert_uint_eq(get16(out + 2), DOTPROXY_DNS_FLAG_QR | (opcodes[i] << 11) | 4u);
    }
}
END_TEST

/* RFC 6891 6.1.3: BADVERS (16) is 0 in the header and 1 in the OPT's
 * extended rcode, with version 0: it needs the query's OPT. */
START_TEST(test_make_reply_says_an_extended_rcode_in_the_opt)
{
    uint8_t out[600];
    dotproxy_dns_info ri;
    build_query(&M, "example.net", 1, DOTPROXY_DNS_EDNS_DO);
    M.b[M.n - 5] = 1; /* the query's EDNS version: 1 */
    int n = dotproxy_dns_make_reply(out, sizeof(out), M.b, M.n, DOTPROXY_RCODE_BADVERS);
    ck_assert_int_eq(n, (int)M.n);
    ck_assert_int_eq(dotproxy_dns_parse(&ri, out, (size_t)n), 0);
    ck_assert_uint_eq(DOTPROXY_DNS_RCODE(ri.flags), 0);
    ck_assert_uint_eq(ri.ext_rcode, 1);
    ck_assert_uint_eq(ri.edns_version, 0);
    ck_assert_uint_eq(ri.ancount + ri.nscount, 0);
    ck_assert_uint_eq(ri.arcount, 1);
    ck_assert_uint_eq(ri.edns_flags, DOTPROXY_DNS_EDNS_DO);
    /* no OPT in the query: refused, nothing written */
    build_query(&M, "example.net", 0, 0);
    memset(out, 0xAA, sizeof out);
    ck_assert_int_eq(dotproxy_dns_make_reply(out, sizeof(out), M.b, M.n, 16), DOTPROXY_EINVAL);
    ck_assert_uint_eq(out[0], 0xAA);
    ck_assert_int_eq(dotproxy_dns_make_reply(out, sizeof(out), M.b, M.n, 4096), DOTPROXY_EINVAL);
}
END_TEST

START_TEST(test_make_reply_adds_fresh_opt_when_query_had_one)
{
    uint8_t out[600];
    build_query(&M, "example.net", 1, DOTPROXY_DNS_EDNS_DO | 0x1);
    int n = dotproxy_dns_make_reply(out, sizeof(out), M.b, M.n, DOTPROXY_RCODE_SERVFAIL);
    ck_assert_int_eq(n, (int)M.n);
    check_reply(out, n, &M, 2, 1, 1, DOTPROXY_DNS_EDNS_DO);
    build_query(&M, "example.net", 1, 0);
    n = dotproxy_dns_make_reply(out, sizeof(out), M.b, M.n, DOTPROXY_RCODE_REFUSED);
    check_reply(out, n, &M, 5, 1, 1, 0);
}
END_TEST

START_TEST(test_make_reply_drops_unreadable_question)
{
    uint8_t out[600];
    /* label length runs past the end */
    m_header(&M, 0x4242, DOTPROXY_DNS_FLAG_RD, 1, 0, 0, 0);
    m_u8(&M, 40);
    m_bytes(&M, "abc", 3);
    int n = dotproxy_dns_make_reply(out, sizeof(out), M.b, M.n, DOTPROXY_RCODE_FORMERR);
    ck_assert_int_eq(n, 12);
    check_reply(out, n, &M, 1, 0, 0, 0);
    /* a header alone */
    M.n = 12;
    n = dotproxy_dns_make_reply(out, sizeof(out), M.b, M.n, DOTPROXY_RCODE_FORMERR);
    ck_assert_int_eq(n, 12);
    check_reply(out, n, &M, 1, 0, 0, 0);
    /* a readable question but a broken rest: question kept, no OPT */
    build_query(&M, "a.b", 1, DOTPROXY_DNS_EDNS_DO);
    m_opt(&M, 512, 0, 0, 0);
    n = dotproxy_dns_make_reply(out, sizeof(out), M.b, M.n, DOTPROXY_RCODE_FORMERR);
    ck_assert_int_eq(n, 12 + 5 + 4);
    check_reply(out, n, &M, 1, 1, 0, 0);
}
END_TEST

START_TEST(test_make_reply_reports_small_buffer_and_short_query)
{
    uint8_t out[600];
    build_query(&M, "example.com", 1, 0);
    size_t need = M.n; /* header + question + fresh OPT: same as the query */
    ck_assert_int_eq(dotproxy_dns_make_reply(out, need - 1, M.b, M.n, 2), DOTPROXY_ENOSPC);
    ck_assert_int_eq(dotproxy_dns_make_reply(out, need, M.b, M.n, 2), (int)need);
    ck_assert_int_eq(dotproxy_dns_make_reply(out, sizeof(out), M.b, 11, 2), DOTPROXY_EMALFORMED);
    ck_assert_int_eq(dotproxy_dns_make_reply(out, sizeof(out), M.b, M.n, 4096), DOTPROXY_EINVAL);
    ck_assert_int_eq(dotproxy_dns_make_reply(NULL, sizeof(out), M.b, M.n, 2), DOTPROXY_EINVAL);
    ck_assert_int_eq(dotproxy_dns_make_reply(out, sizeof(out), NULL, M.n, 2), DOTPROXY_EINVAL);
}
END_TEST

START_TEST(test_make_reply_works_in_place)
{
    build_query(&M, "in.place", 1, DOTPROXY_DNS_EDNS_DO);
    M2 = M;
    int n = dotproxy_dns_make_reply(M.b, sizeof(M.b), M.b, M.n, DOTPROXY_RCODE_REFUSED);
    check_reply(M.b, n, &M2, 5, 1, 1, DOTPROXY_DNS_EDNS_DO);
}
END_TEST

/* ---- truncate ----------------------------------------------------------- */

START_TEST(test_truncate_is_noop_when_answer_fits)
{
    build_answer(&M, 1);
    M2 = M;
    ck_assert_int_eq(dotproxy_dns_truncate(M.b, M.n, M.n), (int)M.n);
    ck_assert_int_eq(dotproxy_dns_truncate(M.b, M.n, 65535), (int)M.n);
    ck_assert_mem_eq(M.b, M2.b, M.n);
}
END_TEST

START_TEST(test_truncate_sets_tc_drops_sections_and_keeps_opt)
{
    dotproxy_dns_info info;
    build_answer(&M, 1);
    M2 = M;
    int n = dotproxy_dns_truncate(M.b, M.n, 512 < M.n - 1 ? 512 : M.n - 1);
    ck_assert_int_eq(n, 12 + 21 + 11);
    ck_assert_int_eq(dotproxy_dns_parse(&info, M.b, (size_t)n), 0);
    ck_assert(info.flags & DOTPROXY_DNS_FLAG_TC);
    ck_assert_uint_eq(info.flags & ~DOTPROXY_DNS_FLAG_TC, get16(M2.b + 2));
    ck_assert_uint_eq(info.id, 0x1234);
    ck_assert_uint_eq(info.qdcount, 1);
    ck_assert_uint_eq(info.ancount + info.nscount, 0);
    ck_assert_uint_eq(info.arcount, 1);
    ck_assert_uint_eq(info.opt_off, 12 + 21);
    ck_assert_uint_eq(info.edns_flags, DOTPROXY_DNS_EDNS_DO);
    ck_assert_uint_eq(info.udp_size, 1232);
    ck_assert_mem_eq(M.b + 12, M2.b + 12, 21);
}
END_TEST

START_TEST(test_truncate_without_opt_keeps_header_and_question)
{
    dotproxy_dns_info info;
    build_answer(&M, 0);
    int n = dotproxy_dns_truncate(M.b, M.n, 40);
    ck_assert_int_eq(n, 33);
    ck_assert_int_eq(dotproxy_dns_parse(&info, M.b, (size_t)n), 0);
    ck_assert(info.flags & DOTPROXY_DNS_FLAG_TC);
    ck_assert_uint_eq(info.arcount, 0);
}
END_TEST

START_TEST(test_truncate_reports_limits_it_cannot_meet)
{
    build_answer(&M, 1);
    M2 = M;
    ck_assert_int_eq(dotproxy_dns_truncate(M.b, M.n, 12 + 21 + 10), DOTPROXY_ENOSPC);
    ck_assert_int_eq(dotproxy_dns_truncate(M.b, M.n, 0), DOTPROXY_ENOSPC);
    ck_assert_mem_eq(M.b, M2.b, M.n); /* untouched on failure */
    ck_assert_int_eq(dotproxy_dns_truncate(M.b, M.n, 12 + 21 + 11), 12 + 21 + 11);
    /* garbage longer than the limit */
    build_answer(&M, 1);
    M.b[M.n++] = 0;
    ck_assert_int_eq(dotproxy_dns_truncate(M.b, M.n, 100), DOTPROXY_EMALFORMED);
    ck_assert_int_eq(dotproxy_dns_truncate(NULL, 5, 100), DOTPROXY_EINVAL);
}
END_TEST

static Suite *dns_msg_suite(void)
{
    Suite *s = suite_create("dns_msg");
    TCase *good = tcase_create("parse_good");
    tcase_add_test(good, test_parse_accepts_query_without_opt);
    tcase_add_test(good, test_parse_reads_the_edns_opt_of_a_query);
    tcase_add_test(good, test_parse_accepts_opt_carrying_options);
    tcase_add_test(good, test_parse_accepts_answer_with_compressed_names_and_several_rrs);
    tcase_add_test(good, test_parse_accepts_message_without_question);
    tcase_add_test(good, test_parse_accepts_root_name_and_255_octet_name);
    tcase_add_test(good, test_parse_rejects_null_arguments);
    suite_add_tcase(s, good);

    TCase *bad = tcase_create("parse_hostile");
    tcase_add_test(bad, test_parse_rejects_truncated_header);
    tcase_add_test(bad, test_parse_rejects_message_longer_than_65535);
    tcase_add_test(bad, test_parse_rejects_self_pointer);
    tcase_add_test(bad, test_parse_rejects_pointer_back_to_start_of_its_own_name);
    tcase_add_test(bad, test_parse_rejects_two_pointer_cycle);
    tcase_add_test(bad, test_parse_rejects_forward_pointer);
    tcase_add_test(bad, test_parse_rejects_pointer_past_the_end);
    tcase_add_test(bad, test_parse_rejects_pointer_into_header);
    tcase_add_test(bad, test_parse_bounds_pointer_chains);
    tcase_add_test(bad, test_parse_rejects_counts_that_promise_more_rrs);
    tcase_add_test(bad, test_parse_rejects_counts_that_promise_fewer_rrs);
    tcase_add_test(bad, test_parse_rejects_rdlength_past_the_end);
    tcase_add_test(bad, test_parse_rejects_label_longer_than_63);
    tcase_add_test(bad, test_parse_rejects_name_longer_than_255);
    tcase_add_test(bad, test_parse_rejects_two_opts);
    tcase_add_test(bad, test_parse_rejects_opt_in_answer_or_authority);
    tcase_add_test(bad, test_parse_rejects_opt_with_non_root_owner);
    tcase_add_test(bad, test_parse_rejects_names_that_read_the_opt);
    tcase_add_test(bad, test_parse_rejects_bad_names_inside_rdata);
    suite_add_tcase(s, bad);

    TCase *misc = tcase_create("helpers");
    tcase_add_test(misc, test_get_and_set_id);
    tcase_add_test(misc, test_udp_limit_has_512_floor);
    tcase_add_test(misc, test_same_question_ignores_case_and_compares_type_and_class);
    tcase_add_test(misc, test_same_question_is_false_when_either_fails_to_parse);
    tcase_add_test(misc, test_name_lower_decodes_compressed_name);
    suite_add_tcase(s, misc);

    TCase *reply = tcase_create("make_reply");
    tcase_add_test(reply, test_make_reply_builds_formerr_servfail_refused);
    tcase_add_test(reply, test_make_reply_copies_rd_and_cd_of_a_standard_query);
    tcase_add_test(reply, test_make_reply_to_another_opcode_says_only_its_opcode);
    tcase_add_test(reply, test_make_reply_says_an_extended_rcode_in_the_opt);
    tcase_add_test(reply, test_make_reply_adds_fresh_opt_when_query_had_one);
    tcase_add_test(reply, test_make_reply_drops_unreadable_question);
    tcase_add_test(reply, test_make_reply_reports_small_buffer_and_short_query);
    tcase_add_test(reply, test_make_reply_works_in_place);
    suite_add_tcase(s, reply);

    TCase *trunc = tcase_create("truncate");
    tcase_add_test(trunc, test_truncate_is_noop_when_answer_fits);
    tcase_add_test(trunc, test_truncate_sets_tc_drops_sections_and_keeps_opt);
    tcase_add_test(trunc, test_truncate_without_opt_keeps_header_and_question);
    tcase_add_test(trunc, test_truncate_reports_limits_it_cannot_meet);
    suite_add_tcase(s, trunc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(dns_msg_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
