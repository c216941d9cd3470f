/* SPDX-License-Identifier: MIT */
/* Unit tests of lib/tsig.c: key parsing, a signed request verified (and a
 * tampered one, another key, a time outside the fudge refused), and a
 * response of several messages where unsigned ones lie between signed
 * ones (RFC 8945 5.3.1), signed here the way a primary signs them. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/crypto.h>

#include "bytes.h"
#include "dotproxy/error.h"
#include "tsig.h"

/* "secret-secret-secret-32-octets!!" */
#define KEY "xfr.key:hmac-sha256:c2VjcmV0LXNlY3JldC1zZWNyZXQtMzItb2N0ZXRzISE="

static size_t query(uint8_t *m)
{
    static const uint8_t q[] = {0x12, 0x34, 0,   0, 0,   1,   0,   0,   0, 0, 0,   0, 3,
                                'r',  'p',  'z', 4, 't', 'e', 's', 't', 0, 0, 252, 0, 1};
    memcpy(m, q, sizeof q);
    return sizeof q;
}

START_TEST(test_tsig_key_parse_takes_three_algorithms_and_refuses_the_rest)
{
    struct dp_tsig_key k;
    char why[200];
    ck_assert_int_eq(dp_tsig_key_parse(&k, KEY, why, sizeof why), 0);
    ck_assert_uint_eq(k.mac_size, 32);
    ck_assert_uint_eq(k.secret_len, 32);
    ck_assert_int_eq(dp_tsig_key_parse(&k, "k:HMAC-SHA1:YWJj", why, sizeof why), 0);
    ck_assert_uint_eq(k.mac_size, 20);
    ck_assert_int_eq(dp_tsig_key_parse(&k, "k:hmac-sha512:YWJj", why, sizeof why), 0);
    ck_assert_int_eq(dp_tsig_key_parse(&k, "k:hmac-md5:YWJj", why, sizeof why), DOTPROXY_EINVAL);
    ck_assert_ptr_nonnull(strstr(why, "hmac-md5"));
    ck_assert_int_eq(dp_tsig_key_parse(&k, "k:hmac-sha256:***", why, sizeof why), DOTPROXY_EINVAL);
    ck_assert_int_eq(dp_tsig_key_parse(&k, "k:hmac-sha256", why, sizeof why), DOTPROXY_EINVAL);
}
END_TEST

START_TEST(test_tsig_signed_request_verifies_and_tampering_does_not)
{
    struct dp_tsig_key k, other;
    char why[200];
    ck_assert_int_eq(dp_tsig_key_parse(&k, KEY, why, sizeof why), 0);
    ck_assert_int_eq(dp_tsig_key_parse(&other, "xfr.key:hmac-sha256:b3RoZXI=", why, sizeof why), 0);
    uint8_t m[512], mac[64];
    size_t n = query(m);
    int len = dp_tsig_sign(&k, m, n, sizeof m, 1800000000, mac);
    ck_assert_int_gt(len, (int)n);
    ck_assert_uint_eq(m[11], 1); /* ARCOUNT */
    ck_assert_int_eq(dp_tsig_verify_request(&k, m, (size_t)len, 1800000000, why, sizeof why), 0);
    ck_assert_int_eq(dp_tsig_verify_request(&k, m, (size_t)len, 1800000000 + 299, why, sizeof why),
                     0);
    ck_assert_int_eq(dp_tsig_verify_request(&k, m, (size_t)len, 1800000000 + 301, why, sizeof why),
                     DOTPROXY_EMALFORMED);
    ck_assert_ptr_nonnull(strstr(why, "fudge"));
    ck_assert_int_eq(dp_tsig_verify_request(&other, m, (size_t)len, 1800000000, why, sizeof why),
                     DOTPROXY_EMALFORMED);
    ck_assert_ptr_nonnull(strstr(why, "bad signature"));
    m[14] ^= 1; /* a changed question */
    ck_assert_int_eq(dp_tsig_verify_request(&k, m, (size_t)len, 1800000000, why, sizeof why),
                     DOTPROXY_EMALFORMED);
    ck_assert_int_eq(dp_tsig_verify_request(&k, m, n, 1800000000, why, sizeof why),
                     DOTPROXY_EMALFORMED); /* no TSIG at all */
}
END_TEST

/* A response message signed as a primary does (RFC 8945 4.3.1/4.3.2):
 * prior MAC, the unsigned messages since, this one, then the variables
 * (all of them on the first message, the timers after). */
static size_t sign_response(const struct dp_tsig_key *k, uint8_t *m, size_t n, uint8_t *prior,
                            const uint8_t *unsig, size_t unsig_len, int first, int64_t t)
{
    gnutls_hmac_hd_t h;
    ck_assert_int_eq(gnutls_hmac_init(&h, (gnutls_mac_algorithm_t)k->mac, k->secret, k->secret_len),
                     0);
    uint8_t l[2];
    dp_put16(l, (unsigned)k->mac_size);
    gnutls_hmac(h, l, 2);
    gnutls_hmac(h, prior, k->mac_size);
    if (unsig != NULL)
        gnutls_hmac(h, unsig, unsig_len);
    gnutls_hmac(h, m, n);
    uint8_t var[400];
    size_t v = 0;
    if (first) {
        memcpy(var, k->name, k->name_len);
        v = k->name_len;
        dp_put16(var + v, 255);
        dp_put32(var + v + 2, 0);
        v += 6;
        memcpy(var + v, k->alg, k->alg_len);
        v += k->alg_len;
    }
    dp_put16(var + v, 0);
    dp_put32(var + v + 2, (uint32_t)t);
    dp_put16(var + v + 6, 300);
    v += 8;
    if (first) {
        memset(var + v, 0, 4);
        v += 4;
    }
    gnutls_hmac(h, var, v);
    uint8_t mac[64];
    gnutls_hmac_deinit(h, mac);
    uint8_t *o = m + n;
    memcpy(o, k->name, k->name_len);
    o += k->name_len;
    dp_put16(o, 250);
    dp_put16(o + 2, 255);
    dp_put32(o + 4, 0);
    dp_put16(o + 8, (unsigned)(k->alg_len + 16 + k->mac_size));
    o += 10;
    memcpy(o, k->alg, k->alg_len);
    o += k->alg_len;
    dp_put16(o, 0);
    dp_put32(o + 2, (uint32_t)t);
    dp_put16(o + 6, 300);
    dp_put16(o + 8, (unsigned)k->mac_size);
    o += 10;
    memcpy(o, mac, k->mac_size);
    o += k->mac_size;
    memcpy(o, m, 2);
    memset(o + 2, 0, 4);
    o += 6;
    dp_put16(m + 10, dp_get16(m + 10) + 1u);
    memcpy(prior, mac, k->mac_size);
    return (size_t)(o - m);
}

START_TEST(test_tsig_response_with_unsigned_messages_between_verifies)
{
    struct dp_tsig_key k;
    char why[200];
    ck_assert_int_eq(dp_tsig_key_parse(&k, KEY, why, sizeof why), 0);
    uint8_t req[512], reqmac[64], prior[64];
    int rl = dp_tsig_sign(&k, req, query(req), sizeof req, 1800000000, reqmac);
    ck_assert_int_gt(rl, 0);
    memcpy(prior, reqmac, k.mac_size);
    uint8_t a[512], b[512], c[512];
    size_t an = query(a), bn = query(b), cn = query(c);
    a[2] = b[2] = c[2] = 0x84;
    an = sign_response(&k, a, an, prior, NULL, 0, 1, 1800000000);
    /* b goes unsigned; c covers it */
    cn = sign_response(&k, c, cn, prior, b, bn, 0, 1800000001);
    struct dp_tsig_verify v;
    dp_tsig_verify_begin(&v, &k, reqmac);
    ck_assert_int_eq(dp_tsig_verify_msg(&v, a, an, 1800000000, why, sizeof why), 0);
    ck_assert_int_eq(dp_tsig_verify_msg(&v, b, bn, 1800000000, why, sizeof why), 0);
    ck_assert(!dp_tsig_verify_done(&v));
    ck_assert_int_eq(dp_tsig_verify_msg(&v, c, cn, 1800000001, why, sizeof why), 0);
    ck_assert(dp_tsig_verify_done(&v));
    dp_tsig_verify_end(&v);
    /* Without the unsigned one, c does not verify. */
    dp_tsig_verify_begin(&v, &k, reqmac);
    ck_assert_int_eq(dp_tsig_verify_msg(&v, a, an, 1800000000, why, sizeof why), 0);
    ck_assert_int_eq(dp_tsig_verify_msg(&v, c, cn, 1800000001, why, sizeof why),
                     DOTPROXY_EMALFORMED);
    dp_tsig_verify_end(&v);
    /* An unsigned first message is refused. */
    dp_tsig_verify_begin(&v, &k, reqmac);
    ck_assert_int_eq(dp_tsig_verify_msg(&v, b, bn, 1800000000, why, sizeof why),
                     DOTPROXY_EMALFORMED);
    ck_assert_ptr_nonnull(strstr(why, "not signed"));
    dp_tsig_verify_end(&v);
}
END_TEST

static Suite *tsig_suite(void)
{
    Suite *s = suite_create("tsig");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_tsig_key_parse_takes_three_algorithms_and_refuses_the_rest);
    tcase_add_test(tc, test_tsig_signed_request_verifies_and_tampering_does_not);
    tcase_add_test(tc, test_tsig_response_with_unsigned_messages_between_verifies);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(tsig_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
