/* SPDX-License-Identifier: MIT */
/* Unit tests of lib/xfr.c: zone transfer answers read message by message
 * (AXFR in one and in several messages, IXFR up to date, in differences of
 * several steps, answered with a whole zone), what is refused (an error
 * rcode, another id, a record outside the zone, records after the end),
 * the record set (add, delete with backward shift, retime), the state-file
 * form written and read back, and the queries we send. Messages are built
 * here byte by byte. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dotproxy/error.h"
#include "feed.h"
#include "xfr.h"

static const uint8_t ZONE[] = "\x03rpz\x04test";

struct msg {
    uint8_t b[4096];
    size_t n;
    unsigned an;
};

static void put(struct msg *m, const void *p, size_t n)
{
    ck_assert_uint_le(m->n + n, sizeof m->b);
    memcpy(m->b + m->n, p, n);
    m->n += n;
}

static void put16(struct msg *m, unsigned v)
{
    uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    put(m, b, 2);
}

static void put32(struct msg *m, uint32_t v)
{
    put16(m, v >> 16);
    put16(m, v & 0xffff);
}

static void put_name(struct msg *m, const char *dotted)
{
    uint8_t w[256];
    int n = dp_xfr_name_wire(dotted, w);
    ck_assert_int_gt(n, 0);
    put(m, w, (size_t)n);
}

/* A response header with id 0x1234 and the question (qd: with it). */
static void start(struct msg *m, unsigned rcode, int qd, unsigned qtype)
{
    memset(m, 0, sizeof *m);
    put16(m, 0x1234);
    put16(m, 0x8400 | rcode);
    put16(m, qd ? 1 : 0);
    put16(m, 0); /* ancount, set by finish */
    put16(m, 0);
    put16(m, 0);
    if (qd) {
        put(m, ZONE, sizeof ZONE);
        put16(m, qtype);
        put16(m, 1);
    }
}

static void finish(struct msg *m)
{
    m->b[6] = (uint8_t)(m->an >> 8);
    m->b[7] = (uint8_t)m->an;
}

static void rr_head(struct msg *m, const char *owner, unsigned type, unsigned rdlen)
{
    if (owner == NULL)
        put16(m, 0xC00C); /* the zone, compressed */
    else
        put_name(m, owner);
    put16(m, type);
    put16(m, 1);
    put32(m, 60);
    put16(m, rdlen);
    m->an++;
}

static void soa(struct msg *m, uint32_t serial)
{
    rr_head(m, NULL, 6, 2 + 2 + 20);
    put16(m, 0xC00C); /* mname: a pointer too */
    put16(m, 0xC00C);
    put32(m, serial);
    put32(m, 3600);
    put32(m, 600);
    put32(m, 86400);
    put32(m, 60);
}

static void cname_root(struct msg *m, const char *owner)
{
    rr_head(m, owner, 5, 1);
    put(m, "", 1);
}

static void a_rec(struct msg *m, const char *owner, const uint8_t ip[4])
{
    rr_head(m, owner, 1, 4);
    put(m, ip, 4);
}

static int has(const struct dp_zone_set *z, const char *key)
{
    for (size_t i = 0; i < z->cap; i++)
        if (z->slot[i] != NULL && strcmp(z->slot[i]->key, key) == 0)
            return 1;
    return 0;
}

/* serial 1: bad, local A */
static void axfr_into(struct dp_zone_set *z)
{
    struct msg m;
    struct dp_xfr x;
    static const uint8_t ip[4] = {192, 0, 2, 55};
    start(&m, 0, 1, 252);
    soa(&m, 1);
    cname_root(&m, "bad.example.rpz.test");
    a_rec(&m, "local.example.rpz.test", ip);
    soa(&m, 1);
    finish(&m);
    dp_xfr_begin(&x, 0x1234, ZONE, 0, 0);
    ck_assert_int_eq(dp_xfr_msg(&x, m.b, m.n), 1);
    ck_assert_int_eq(x.kind, DP_XFR_FULL);
    ck_assert_int_eq(dp_xfr_apply(&x, z), 0);
    dp_xfr_end(&x);
}

START_TEST(test_xfr_axfr_in_one_message_becomes_the_zone)
{
    struct dp_zone_set z;
    dp_zone_set_init(&z);
    axfr_into(&z);
    ck_assert_uint_eq(z.serial, 1);
    ck_assert_uint_eq(z.refresh, 3600);
    ck_assert_uint_eq(z.retry, 600);
    ck_assert_uint_eq(z.n, 2);
    ck_assert(has(&z, "bad.example.rpz.test. CNAME ."));
    ck_assert(has(&z, "local.example.rpz.test. A 192.0.2.55"));
    ck_assert_str_eq(z.soa->key, "rpz.test. SOA rpz.test. rpz.test. 1 3600 600 86400 60");
    dp_zone_set_clear(&z);
}
END_TEST

START_TEST(test_xfr_axfr_over_several_messages_completes_at_the_closing_soa)
{
    struct msg m;
    struct dp_xfr x;
    dp_xfr_begin(&x, 0x1234, ZONE, 0, 0);
    start(&m, 0, 1, 252);
    soa(&m, 7);
    finish(&m);
    ck_assert_int_eq(dp_xfr_msg(&x, m.b, m.n), 0);
    start(&m, 0, 0, 0);
    cname_root(&m, "a.rpz.test");
    finish(&m);
    ck_assert_int_eq(dp_xfr_msg(&x, m.b, m.n), 0);
    /* No question in this message: offset 12 holds no name, so the
     * closing SOA spells its owner out. */
    start(&m, 0, 0, 0);
    rr_head(&m, "rpz.test", 6, 2 + 20);
    put(&m, "\0\0", 2);
    put32(&m, 7);
    put32(&m, 1);
    put32(&m, 2);
    put32(&m, 3);
    put32(&m, 4);
    finish(&m);
    ck_assert_int_eq(dp_xfr_msg(&x, m.b, m.n), 1);
    ck_assert_int_eq(x.kind, DP_XFR_FULL);
    ck_assert_uint_eq(x.full.n, 1);
    ck_assert_uint_eq(x.msgs, 3);
    dp_xfr_end(&x);
}
END_TEST

START_TEST(test_xfr_ixfr_applies_differences_of_two_steps)
{
    struct dp_zone_set z;
    dp_zone_set_init(&z);
    axfr_into(&z);
    struct msg m;
    struct dp_xfr x;
    start(&m, 0, 1, 251);
    soa(&m, 3);
    soa(&m, 1); /* 1 -> 2: bad out, new in */
    cname_root(&m, "bad.example.rpz.test");
    soa(&m, 2);
    cname_root(&m, "new.example.rpz.test");
    soa(&m, 2); /* 2 -> 3: new out, other in */
    cname_root(&m, "new.example.rpz.test");
    soa(&m, 3);
    cname_root(&m, "other.example.rpz.test");
    soa(&m, 3);
    finish(&m);
    dp_xfr_begin(&x, 0x1234, ZONE, 1, 1);
    ck_assert_int_eq(dp_xfr_msg(&x, m.b, m.n), 1);
    ck_assert_int_eq(x.kind, DP_XFR_INCR);
    ck_assert_uint_eq(x.nops, 4);
    ck_assert_int_eq(dp_xfr_apply(&x, &z), 0);
    dp_xfr_end(&x);
    ck_assert_uint_eq(z.serial, 3);
    ck_assert_uint_eq(z.n, 2);
    ck_assert(!has(&z, "bad.example.rpz.test. CNAME ."));
    ck_assert(!has(&z, "new.example.rpz.test. CNAME ."));
    ck_assert(has(&z, "other.example.rpz.test. CNAME ."));
    ck_assert(has(&z, "local.example.rpz.test. A 192.0.2.55"));
    dp_zone_set_clear(&z);
}
END_TEST

START_TEST(test_xfr_ixfr_single_soa_means_up_to_date)
{
    struct msg m;
    struct dp_xfr x;
    start(&m, 0, 1, 251);
    soa(&m, 1);
    finish(&m);
    dp_xfr_begin(&x, 0x1234, ZONE, 1, 1);
    ck_assert_int_eq(dp_xfr_msg(&x, m.b, m.n), 1);
    ck_assert_int_eq(x.kind, DP_XFR_UPTODATE);
    dp_xfr_end(&x);
}
END_TEST

START_TEST(test_xfr_ixfr_answered_with_a_whole_zone_replaces_it)
{
    struct dp_zone_set z;
    dp_zone_set_init(&z);
    axfr_into(&z);
    struct msg m;
    struct dp_xfr x;
    start(&m, 0, 1, 251);
    soa(&m, 9);
    cname_root(&m, "only.rpz.test");
    soa(&m, 9);
    finish(&m);
    dp_xfr_begin(&x, 0x1234, ZONE, 1, 1);
    ck_assert_int_eq(dp_xfr_msg(&x, m.b, m.n), 1);
    ck_assert_int_eq(x.kind, DP_XFR_FULL);
    ck_assert_int_eq(dp_xfr_apply(&x, &z), 0);
    dp_xfr_end(&x);
    ck_assert_uint_eq(z.n, 1);
    ck_assert_uint_eq(z.serial, 9);
    ck_assert(has(&z, "only.rpz.test. CNAME ."));
    dp_zone_set_clear(&z);
}
END_TEST

START_TEST(test_xfr_ixfr_deleting_an_unknown_record_fails_the_apply)
{
    struct dp_zone_set z;
    dp_zone_set_init(&z);
    axfr_into(&z);
    struct msg m;
    struct dp_xfr x;
    start(&m, 0, 1, 251);
    soa(&m, 2);
    soa(&m, 1);
    cname_root(&m, "never.example.rpz.test");
    soa(&m, 2);
    soa(&m, 2);
    finish(&m);
    dp_xfr_begin(&x, 0x1234, ZONE, 1, 1);
    ck_assert_int_eq(dp_xfr_msg(&x, m.b, m.n), 1);
    ck_assert_int_eq(dp_xfr_apply(&x, &z), DOTPROXY_EINVAL);
    ck_assert_ptr_nonnull(strstr(x.err, "never.example"));
    dp_xfr_end(&x);
    dp_zone_set_clear(&z);
}
END_TEST

START_TEST(test_xfr_refuses_errors_strangers_and_trailing_records)
{
    struct msg m;
    struct dp_xfr x;
    start(&m, 9, 1, 252); /* NOTAUTH: a TSIG or ACL refusal */
    finish(&m);
    dp_xfr_begin(&x, 0x1234, ZONE, 0, 0);
    ck_assert_int_eq(dp_xfr_msg(&x, m.b, m.n), DOTPROXY_EUPSTREAM);
    ck_assert_ptr_nonnull(strstr(x.err, "rcode 9"));
    dp_xfr_end(&x);

    start(&m, 0, 1, 252);
    soa(&m, 1);
    finish(&m);
    m.b[1] = 0x35; /* another id */
    dp_xfr_begin(&x, 0x1234, ZONE, 0, 0);
    ck_assert_int_eq(dp_xfr_msg(&x, m.b, m.n), DOTPROXY_EMALFORMED);
    dp_xfr_end(&x);

    start(&m, 0, 1, 252);
    soa(&m, 1);
    cname_root(&m, "evil.example");
    soa(&m, 1);
    finish(&m);
    dp_xfr_begin(&x, 0x1234, ZONE, 0, 0);
    ck_assert_int_eq(dp_xfr_msg(&x, m.b, m.n), DOTPROXY_EMALFORMED);
    ck_assert_ptr_nonnull(strstr(x.err, "outside the zone"));
    dp_xfr_end(&x);

    start(&m, 0, 1, 252);
    soa(&m, 1);
    soa(&m, 1);
    cname_root(&m, "late.rpz.test");
    finish(&m);
    dp_xfr_begin(&x, 0x1234, ZONE, 0, 0);
    ck_assert_int_eq(dp_xfr_msg(&x, m.b, m.n), DOTPROXY_EMALFORMED);
    dp_xfr_end(&x);

    start(&m, 0, 1, 252);
    cname_root(&m, "first.rpz.test"); /* no SOA first */
    finish(&m);
    dp_xfr_begin(&x, 0x1234, ZONE, 0, 0);
    ck_assert_int_eq(dp_xfr_msg(&x, m.b, m.n), DOTPROXY_EMALFORMED);
    dp_xfr_end(&x);
}
END_TEST

START_TEST(test_xfr_record_set_deletes_with_backward_shift)
{
    struct dp_zone_set z;
    dp_zone_set_init(&z);
    char k[64];
    for (int i = 0; i < 5000; i++) {
        int n = snprintf(k, sizeof k, "n%d.rpz.test. CNAME .", i);
        ck_assert_int_eq(dp_zone_set_add(&z, k, (size_t)n, 60), 0);
    }
    ck_assert_uint_eq(z.n, 5000);
    ck_assert_int_eq(
        dp_zone_set_add(&z, "n1.rpz.test. CNAME .", strlen("n1.rpz.test. CNAME ."), 99), 0);
    ck_assert_uint_eq(z.n, 5000); /* retimed, not added */
    for (int i = 0; i < 5000; i += 2) {
        int n = snprintf(k, sizeof k, "n%d.rpz.test. CNAME .", i);
        ck_assert_int_eq(dp_zone_set_del(&z, k, (size_t)n), 0);
    }
    ck_assert_uint_eq(z.n, 2500);
    for (int i = 0; i < 5000; i++) {
        int n = snprintf(k, sizeof k, "n%d.rpz.test. CNAME .", i);
        ck_assert_int_eq(dp_zone_set_del(&z, k, (size_t)n), i % 2 ? 0 : DOTPROXY_EINVAL);
    }
    ck_assert_uint_eq(z.n, 0);
    dp_zone_set_clear(&z);
}
END_TEST

static void owner_cb(const struct dp_zrec *r, void *user)
{
    int *seen = user;
    int o, k;
    ck_assert_int_eq(sscanf(r->key, "o%d.rpz.test. A 10.0.0.%d", &o, &k), 2);
    seen[k]++;
}

START_TEST(test_xfr_record_set_finds_every_record_of_an_owner)
{
    /* 200 owners with 0..7 records each, added and deleted in a mixed
     * order: the owner walk sees exactly the records there are. */
    struct dp_zone_set z;
    dp_zone_set_init(&z);
    static int have[200][8];
    memset(have, 0, sizeof have);
    uint64_t x = 88172645463325252ull;
    for (int step = 0; step < 20000; step++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        int o = (int)(x % 200), k = (int)((x >> 20) % 8);
        char key[64];
        int n = snprintf(key, sizeof key, "o%d.rpz.test. A 10.0.0.%d", o, k);
        if (have[o][k]) {
            ck_assert_int_eq(dp_zone_set_del(&z, key, (size_t)n), 0);
            have[o][k] = 0;
        } else {
            ck_assert_int_eq(dp_zone_set_add(&z, key, (size_t)n, 60), 0);
            have[o][k] = 1;
        }
        if (step % 97 != 0)
            continue;
        for (int q = 0; q < 200; q++) {
            int seen[8] = {0}, want = 0;
            char owner[32];
            int ol = snprintf(owner, sizeof owner, "o%d.rpz.test.", q);
            size_t got = dp_zone_set_owner(&z, owner, (size_t)ol, owner_cb, seen);
            for (int j = 0; j < 8; j++) {
                ck_assert_int_eq(seen[j], have[q][j]);
                want += have[q][j];
            }
            ck_assert_uint_eq(got, (size_t)want);
        }
    }
    /* a prefix of an owner is another owner */
    size_t none = dp_zone_set_owner(&z, "o1", 2, owner_cb, NULL);
    ck_assert_uint_eq(none, 0);
    dp_zone_set_clear(&z);
}
END_TEST

START_TEST(test_feed_specs_plain_and_xot)
{
    ck_assert_int_eq(dp_feed_check_spec("127.0.0.1#rpz.test"), 0);
    ck_assert_int_eq(dp_feed_check_spec("127.0.0.1@5300#rpz.test"), 0);
    ck_assert_int_eq(dp_feed_check_spec("127.0.0.1@853/primary.test#rpz.test"), 0);
    ck_assert_int_eq(dp_feed_check_spec("::1/primary.test#rpz.test"), 0);
    ck_assert_int_eq(dp_feed_check_spec("127.0.0.1/127.0.0.1#rpz.test"), 0);
    ck_assert_int_eq(dp_feed_check_spec("127.0.0.1"), DOTPROXY_ENAME); /* no zone */
    ck_assert_int_eq(dp_feed_check_spec("127.0.0.1/primary.test"), DOTPROXY_ENAME);
    ck_assert_int_eq(dp_feed_check_spec("127.0.0.1/#rpz.test"), DOTPROXY_ENAME);
    ck_assert_int_eq(dp_feed_check_spec("127.0.0.1/bad_name!#rpz.test"), DOTPROXY_ENAME);
    ck_assert_int_eq(dp_feed_check_spec("127.0.0.1@x/primary.test#rpz.test"), DOTPROXY_EPORT);
    ck_assert_int_eq(dp_feed_check_spec("nowhere/primary.test#rpz.test"), DOTPROXY_EADDR);
    /* The TLS name is no part of the state file's name. */
    struct dp_feed_config c = {0};
    char a[] = "127.0.0.1@853/primary.test#RPZ.test", b[] = "127.0.0.1#rpz.test.";
    c.primary[0] = a;
    c.primary[1] = b;
    c.n = 2;
    char dir[] = "/st";
    c.state_dir = dir;
    char p0[256], p1[256];
    ck_assert_int_eq(dp_feed_state_path(&c, 0, p0, sizeof p0), 0);
    ck_assert_int_eq(dp_feed_state_path(&c, 1, p1, sizeof p1), 0);
    ck_assert_str_eq(p0, "/st/rpz-rpz.test.zone");
    ck_assert_str_eq(p1, p0);
}
END_TEST

START_TEST(test_xfr_state_file_round_trips)
{
    struct dp_zone_set z, back;
    dp_zone_set_init(&z);
    dp_zone_set_init(&back);
    axfr_into(&z);
    ck_assert_int_eq(dp_zone_set_add(&z, "t.rpz.test. TXT \"a b\" \"c\\\"d\"", 29, 5), 0);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(dp_zone_set_write(&z, f), 0);
    ck_assert_int_eq(fclose(f), 0);
    ck_assert_ptr_nonnull(strstr(text, "; zone transfer copy, serial 1, 4 records\n"
                                       "rpz.test. 60 IN SOA "));
    ck_assert_ptr_nonnull(strstr(text, "\nt.rpz.test. 5 IN TXT \"a b\" \"c\\\"d\"\n"));
    ck_assert_int_eq(dp_zone_set_read(&back, text, len), 0);
    ck_assert_uint_eq(back.n, 3);
    ck_assert_uint_eq(back.serial, 1);
    ck_assert(has(&back, "t.rpz.test. TXT \"a b\" \"c\\\"d\""));
    ck_assert_int_eq(dp_zone_set_read(&back, "garbage\n", 8), DOTPROXY_EMALFORMED);
    ck_assert_ptr_null(back.soa);
    free(text);
    dp_zone_set_clear(&z);
    dp_zone_set_clear(&back);
}
END_TEST

START_TEST(test_xfr_queries_carry_the_serial_for_ixfr)
{
    uint8_t q[512];
    int n = dp_xfr_query(q, sizeof q, 0xabcd, ZONE, 0, 0);
    ck_assert_int_eq(n, 12 + (int)sizeof ZONE + 4);
    ck_assert_uint_eq(q[q[0] == 0xab ? 0 : 1], 0xab);
    ck_assert_uint_eq((unsigned)q[n - 4] << 8 | q[n - 3], 252);
    n = dp_xfr_query(q, sizeof q, 1, ZONE, 1, 0x01020304);
    ck_assert_int_eq(n, 12 + (int)sizeof ZONE + 4 + 12 + 22);
    ck_assert_uint_eq(q[9], 1); /* nscount */
    ck_assert_mem_eq(q + n - 20, "\x01\x02\x03\x04", 4);
    ck_assert_int_eq(dp_xfr_query(q, 20, 1, ZONE, 1, 1), DOTPROXY_ENOSPC);
}
END_TEST

START_TEST(test_xfr_names_escape_and_fold_case)
{
    uint8_t w[256];
    char t[1100];
    int n = dp_xfr_name_wire("A\\.b.Ex\\032ample.", w);
    ck_assert_int_gt(n, 0);
    ck_assert_int_eq(dp_xfr_name_text(w, t, sizeof t), 0);
    ck_assert_str_eq(t, "a\\.b.ex\\032ample.");
    ck_assert_int_eq(dp_xfr_name_wire(".", w), 1);
    ck_assert_int_eq(dp_xfr_name_wire("a..b", w), DOTPROXY_EMALFORMED);
}
END_TEST

static Suite *xfr_suite(void)
{
    Suite *s = suite_create("xfr");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_xfr_axfr_in_one_message_becomes_the_zone);
    tcase_add_test(tc, test_xfr_axfr_over_several_messages_completes_at_the_closing_soa);
    tcase_add_test(tc, test_xfr_ixfr_applies_differences_of_two_steps);
    tcase_add_test(tc, test_xfr_ixfr_single_soa_means_up_to_date);
    tcase_add_test(tc, test_xfr_ixfr_answered_with_a_whole_zone_replaces_it);
    tcase_add_test(tc, test_xfr_ixfr_deleting_an_unknown_record_fails_the_apply);
    tcase_add_test(tc, test_xfr_refuses_errors_strangers_and_trailing_records);
    tcase_add_test(tc, test_xfr_record_set_deletes_with_backward_shift);
    tcase_add_test(tc, test_xfr_record_set_finds_every_record_of_an_owner);
    tcase_add_test(tc, test_xfr_state_file_round_trips);
    tcase_add_test(tc, test_feed_specs_plain_and_xot);
    tcase_add_test(tc, test_xfr_queries_carry_the_serial_for_ixfr);
    tcase_add_test(tc, test_xfr_names_escape_and_fold_case);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(xfr_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
