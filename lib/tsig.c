/* SPDX-License-Identifier: MIT */
/* TSIG signing and verifying (RFC 8945 4.3 and 5.3): the MAC covers the
 * message as it was before the TSIG record was added (ARCOUNT one less,
 * the original ID) followed by the TSIG variables in canonical form (4.3.3);
 * in a response, the request's MAC comes first (4.3.1); after the first
 * message of a response only the timers are covered, with the previous MAC
 * and every unsigned message since (4.3.2, 5.3.1: at most 99 unsigned in a
 * row). */
#include "tsig.h"

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <stdio.h>
#include <string.h>

#include "bytes.h"
#include "dotproxy/error.h"
#include "xfr.h"

#define T_TSIG       250
#define C_ANY        255
#define FUDGE        300 /* seconds, RFC 8945 10's recommendation */
#define MAX_UNSIGNED 99

static const struct {
    const char *name;
    int mac;
    size_t size;
} algs[] = {
    {"hmac-sha1", GNUTLS_MAC_SHA1, 20},
    {"hmac-sha256", GNUTLS_MAC_SHA256, 32},
    {"hmac-sha512", GNUTLS_MAC_SHA512, 64},
};

int dp_tsig_key_parse(struct dp_tsig_key *k, const char *spec, char *why, size_t whylen)
{
    memset(k, 0, sizeof *k);
    const char *c1 = strchr(spec, ':');
    const char *c2 = c1 != NULL ? strchr(c1 + 1, ':') : NULL;
    if (c1 == NULL || c2 == NULL || c1 == spec || c2[1] == '\0') {
        snprintf(why, whylen, "want NAME:ALGORITHM:BASE64SECRET");
        return DOTPROXY_EINVAL;
    }
    char name[256], alg[32];
    if ((size_t)(c1 - spec) >= sizeof name || (size_t)(c2 - c1 - 1) >= sizeof alg) {
        snprintf(why, whylen, "name or algorithm too long");
        return DOTPROXY_EINVAL;
    }
    memcpy(name, spec, (size_t)(c1 - spec));
    name[c1 - spec] = '\0';
    memcpy(alg, c1 + 1, (size_t)(c2 - c1 - 1));
    alg[c2 - c1 - 1] = '\0';
    int n = dp_xfr_name_wire(name, k->name);
    if (n < 0) {
        snprintf(why, whylen, "bad key name '%s'", name);
        return DOTPROXY_EINVAL;
    }
    k->name_len = (size_t)n;
    size_t i = 0;
    for (; i < sizeof algs / sizeof algs[0]; i++)
        if (strcasecmp(alg, algs[i].name) == 0)
            break;
    if (i == sizeof algs / sizeof algs[0]) {
        snprintf(why, whylen, "algorithm '%s': want hmac-sha1, hmac-sha256 or hmac-sha512", alg);
        return DOTPROXY_EINVAL;
    }
    k->mac = algs[i].mac;
    k->mac_size = algs[i].size;
    k->alg_len = (size_t)dp_xfr_name_wire(algs[i].name, k->alg);
    gnutls_datum_t in = {(unsigned char *)(uintptr_t)(c2 + 1), (unsigned)strlen(c2 + 1)}, out;
    if (gnutls_base64_decode2(&in, &out) != 0) {
        snprintf(why, whylen, "the secret is not base64");
        return DOTPROXY_EINVAL;
    }
    if (out.size == 0 || out.size > sizeof k->secret) {
        gnutls_free(out.data);
        snprintf(why, whylen, "the secret must be 1 to %zu octets", sizeof k->secret);
        return DOTPROXY_EINVAL;
    }
    memcpy(k->secret, out.data, out.size);
    k->secret_len = out.size;
    gnutls_memset(out.data, 0, out.size);
    gnutls_free(out.data);
    return 0;
}

/* The TSIG variables (4.3.3), or the timers only (4.3.2). */
static size_t variables(const struct dp_tsig_key *k, uint8_t *o, int64_t t, unsigned fudge,
                        unsigned error, int timers_only)
{
    size_t n = 0;
    if (!timers_only) {
        memcpy(o, k->name, k->name_len);
        n = k->name_len;
        dp_put16(o + n, C_ANY);
        dp_put32(o + n + 2, 0);
        n += 6;
        memcpy(o + n, k->alg, k->alg_len);
        n += k->alg_len;
    }
    dp_put16(o + n, (unsigned)((uint64_t)t >> 32));
    dp_put32(o + n + 2, (uint32_t)t);
    dp_put16(o + n + 6, fudge);
    n += 8;
    if (!timers_only) {
        dp_put16(o + n, error);
        dp_put16(o + n + 2, 0); /* other len */
        n += 4;
    }
    return n;
}

int dp_tsig_sign(const struct dp_tsig_key *k, uint8_t *msg, size_t len, size_t cap, int64_t now,
                 uint8_t *mac)
{
    size_t rd = k->alg_len + 10 + k->mac_size + 6;
    if (len < 12 || cap < len + k->name_len + 10 + rd)
        return DOTPROXY_ENOSPC;
    uint8_t var[600];
    size_t vn = variables(k, var, now, FUDGE, 0, 0);
    gnutls_hmac_hd_t h;
    if (gnutls_hmac_init(&h, (gnutls_mac_algorithm_t)k->mac, k->secret, k->secret_len) != 0)
        return DOTPROXY_ENOMEM;
    gnutls_hmac(h, msg, len);
    gnutls_hmac(h, var, vn);
    gnutls_hmac_deinit(h, mac);
    uint8_t *o = msg + len;
    memcpy(o, k->name, k->name_len);
    o += k->name_len;
    dp_put16(o, T_TSIG);
    dp_put16(o + 2, C_ANY);
    dp_put32(o + 4, 0);
    dp_put16(o + 8, (unsigned)rd);
    o += 10;
    memcpy(o, k->alg, k->alg_len);
    o += k->alg_len;
    dp_put16(o, (unsigned)((uint64_t)now >> 32));
    dp_put32(o + 2, (uint32_t)now);
    dp_put16(o + 6, FUDGE);
    dp_put16(o + 8, (unsigned)k->mac_size);
    o += 10;
    memcpy(o, mac, k->mac_size);
    o += k->mac_size;
    memcpy(o, msg, 2); /* original ID */
    dp_put16(o + 2, 0);
    dp_put16(o + 4, 0);
    o += 6;
    dp_put16(msg + 10, dp_get16(msg + 10) + 1u);
    return (int)(o - msg);
}

void dp_tsig_verify_begin(struct dp_tsig_verify *v, const struct dp_tsig_key *k,
                          const uint8_t *request_mac)
{
    memset(v, 0, sizeof *v);
    v->k = k;
    memcpy(v->prior, request_mac, k->mac_size);
    v->first = 1;
}

int dp_tsig_verify_request(const struct dp_tsig_key *k, const uint8_t *msg, size_t len, int64_t now,
                           char *why, size_t whylen)
{
    struct dp_tsig_verify v;
    memset(&v, 0, sizeof v);
    v.k = k;
    v.first = 1;
    v.request = 1;
    int rc = dp_tsig_verify_msg(&v, msg, len, now, why, whylen);
    dp_tsig_verify_end(&v);
    return rc;
}

void dp_tsig_verify_end(struct dp_tsig_verify *v)
{
    if (v->h != NULL) {
        uint8_t sink[64];
        gnutls_hmac_deinit((gnutls_hmac_hd_t)v->h, sink);
        v->h = NULL;
    }
}

static int skip_name(const uint8_t *m, size_t len, size_t *off)
{
    size_t o = *off;
    for (int i = 0; i < 128; i++) {
        if (o >= len)
            return -1;
        if ((m[o] & 0xC0) == 0xC0) {
            *off = o + 2;
            return o + 2 <= len ? 0 : -1;
        }
        if (m[o] & 0xC0)
            return -1;
        if (m[o] == 0) {
            *off = o + 1;
            return 0;
        }
        o += 1u + m[o];
    }
    return -1;
}

/* Where the message's last record starts, if it is a TSIG. */
static int find_tsig(const uint8_t *m, size_t len, size_t *start)
{
    if (len < 12)
        return -1;
    unsigned qd = dp_get16(m + 4);
    unsigned rrs = dp_get16(m + 6) + dp_get16(m + 8) + dp_get16(m + 10);
    size_t off = 12, last = 0;
    for (unsigned i = 0; i < qd; i++)
        if (skip_name(m, len, &off) != 0 || (off += 4) > len)
            return -1;
    for (unsigned i = 0; i < rrs; i++) {
        last = off;
        if (skip_name(m, len, &off) != 0 || off + 10 > len)
            return -1;
        off += 10u + dp_get16(m + off + 8);
        if (off > len)
            return -1;
    }
    if (dp_get16(m + 10) == 0 || off != len)
        return 0; /* no additional record, or trailing octets: no TSIG */
    size_t t = last;
    if (skip_name(m, len, &t) != 0 || dp_get16(m + t) != T_TSIG)
        return 0;
    *start = last;
    return 1;
}

static int fail(char *why, size_t whylen, const char *what)
{
    snprintf(why, whylen, "TSIG: %s", what);
    return DOTPROXY_EMALFORMED;
}

int dp_tsig_verify_msg(struct dp_tsig_verify *v, const uint8_t *m, size_t len, int64_t now,
                       char *why, size_t whylen)
{
    const struct dp_tsig_key *k = v->k;
    size_t ts = 0;
    int has = find_tsig(m, len, &ts);
    if (has < 0)
        return fail(why, whylen, "cannot read the message");
    if (v->h == NULL) {
        gnutls_hmac_hd_t h;
        if (gnutls_hmac_init(&h, (gnutls_mac_algorithm_t)k->mac, k->secret, k->secret_len) != 0)
            return fail(why, whylen, "cannot start the HMAC");
        if (!v->request) {
            uint8_t l[2];
            dp_put16(l, (unsigned)k->mac_size);
            gnutls_hmac(h, l, 2);
            gnutls_hmac(h, v->prior, k->mac_size);
        }
        v->h = h;
    }
    gnutls_hmac_hd_t h = (gnutls_hmac_hd_t)v->h;
    if (has == 0) {
        /* 5.3.1: the first message must be signed, and at most 99 in a
         * row may go unsigned. */
        if (v->first)
            return fail(why, whylen, "the primary's answer is not signed (wrong key name?)");
        if (++v->unsigned_run > MAX_UNSIGNED)
            return fail(why, whylen, "more than 99 unsigned messages in a row");
        gnutls_hmac(h, m, len);
        return 0;
    }
    /* The TSIG record: owner, type, class, ttl, rdlength, then rdata. */
    size_t o = ts;
    skip_name(m, len, &o);
    size_t rdl = dp_get16(m + o + 8), rd = o + 10;
    /* The key name, uncompressed (RFC 8945 4.2), compared case folded. */
    int same = o - ts == k->name_len;
    for (size_t i = 0; same && i < k->name_len; i++) {
        uint8_t a = m[ts + i];
        same = (a >= 'A' && a <= 'Z' ? a + 32 : a) == k->name[i];
    }
    if (!same)
        return fail(why, whylen, "signed with another key");
    if (rdl < k->alg_len + 16 || rd + rdl != len)
        return fail(why, whylen, "a malformed TSIG record");
    size_t p = rd;
    for (size_t i = 0; i < k->alg_len; i++) {
        uint8_t a = m[p + i];
        if ((a >= 'A' && a <= 'Z' ? a + 32 : a) != k->alg[i])
            return fail(why, whylen, "another algorithm");
    }
    p += k->alg_len;
    int64_t t = (int64_t)((uint64_t)dp_get16(m + p) << 32 | dp_get32(m + p + 2));
    unsigned fudge = dp_get16(m + p + 6), macl = dp_get16(m + p + 8);
    p += 10;
    if (p + macl + 6 > len)
        return fail(why, whylen, "a malformed TSIG record");
    const uint8_t *mac = m + p;
    unsigned orig_id = dp_get16(m + p + macl), err = dp_get16(m + p + macl + 2);
    if (err != 0) {
        char b[80];
        snprintf(b, sizeof b, "the primary says %s",
                 err == 16   ? "BADSIG"
                 : err == 17 ? "BADKEY"
                 : err == 18 ? "BADTIME"
                             : "error");
        return fail(why, whylen, b);
    }
    if (macl != k->mac_size)
        return fail(why, whylen, "a MAC of the wrong size");
    /* The message as before signing: ARCOUNT less one, the original ID. */
    uint8_t head[12];
    memcpy(head, m, 12);
    dp_put16(head, orig_id);
    dp_put16(head + 10, dp_get16(m + 10) - 1u);
    gnutls_hmac(h, head, 12);
    gnutls_hmac(h, m + 12, ts - 12);
    uint8_t var[600], out[64];
    size_t vn = variables(k, var, t, fudge, err, !v->first);
    gnutls_hmac(h, var, vn);
    gnutls_hmac_deinit(h, out);
    v->h = NULL;
    if (gnutls_memcmp(out, mac, k->mac_size) != 0)
        return fail(why, whylen, "bad signature (wrong secret?)");
    /* Checked after the MAC, as 5.2.3 orders it. */
    if (now > t + (int64_t)fudge || now < t - (int64_t)fudge)
        return fail(why, whylen, "time signed outside the fudge (clocks apart?)");
    memcpy(v->prior, mac, k->mac_size);
    v->first = 0;
    v->unsigned_run = 0;
    return 0;
}
