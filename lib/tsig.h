/* SPDX-License-Identifier: MIT */
/* TSIG (RFC 8945) for zone transfers: a key from "NAME:ALGORITHM:BASE64",
 * a request signed, and the messages of a response verified one by one
 * (RFC 8945 5.3.1: after the first, each signed message covers the
 * unsigned ones before it and the previous MAC). HMAC-SHA1, -SHA256 and
 * -SHA512 through GnuTLS. */
#ifndef DP_TSIG_H
#define DP_TSIG_H

#include <stddef.h>
#include <stdint.h>

struct dp_tsig_key {
    uint8_t name[256]; /* wire, lower case */
    size_t name_len;
    uint8_t alg[64]; /* the algorithm's name, wire */
    size_t alg_len;
    int mac;         /* gnutls_mac_algorithm_t */
    size_t mac_size; /* octets of its MAC */
    uint8_t secret[256];
    size_t secret_len;
};

/* Parse "NAME:ALGORITHM:BASE64SECRET" (ALGORITHM hmac-sha1, hmac-sha256 or
 * hmac-sha512). 0, DOTPROXY_EINVAL (why set). */
int dp_tsig_key_parse(struct dp_tsig_key *k, const char *spec, char *why, size_t whylen);

/* Append a TSIG record to the message in msg (len octets, cap room),
 * signed at now (Unix seconds); its MAC into mac (64 octets). Returns the
 * new length or DOTPROXY_ENOSPC / DOTPROXY_ENOMEM. */
int dp_tsig_sign(const struct dp_tsig_key *k, uint8_t *msg, size_t len, size_t cap, int64_t now,
                 uint8_t *mac);

/* Verifying the messages of one response. */
struct dp_tsig_verify {
    const struct dp_tsig_key *k;
    uint8_t prior[64]; /* the last MAC (the request's, at first) */
    void *h;           /* gnutls_hmac_hd_t running over unsigned messages */
    unsigned unsigned_run;
    int first;
    int request; /* verifying a request: no prior MAC */
};
void dp_tsig_verify_begin(struct dp_tsig_verify *v, const struct dp_tsig_key *k,
                          const uint8_t *request_mac);
void dp_tsig_verify_end(struct dp_tsig_verify *v);
/* A signed request (a NOTIFY): 0 or DOTPROXY_EMALFORMED with why. */
int dp_tsig_verify_request(const struct dp_tsig_key *k, const uint8_t *msg, size_t len, int64_t now,
                           char *why, size_t whylen);
/* One message of the response. 0 (signed and good, or unsigned and allowed
 * so far), or DOTPROXY_EMALFORMED with why: no TSIG where one is due, a
 * wrong key or algorithm, a bad MAC, a time outside the fudge, a TSIG error
 * from the primary. */
int dp_tsig_verify_msg(struct dp_tsig_verify *v, const uint8_t *msg, size_t len, int64_t now,
                       char *why, size_t whylen);
/* Whether the response's last message was signed (it must be). */
static inline int dp_tsig_verify_done(const struct dp_tsig_verify *v)
{
    return !v->first && v->unsigned_run == 0;
}

#endif
