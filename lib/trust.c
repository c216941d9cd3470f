/* SPDX-License-Identifier: MIT */
/* Trust anchors and TLS priorities for the upstream hop. */
#include "trust.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/x509.h>

#include "config.h"
#include "dotproxy/error.h"

DOTPROXY_EXPORT int dotproxy_config_check_tls_priority(const char *prio, char *why, size_t cap)
{
    gnutls_priority_t p;
    const char *err_pos = NULL;

    if (prio == NULL || prio[0] == '\0')
        return DOTPROXY_EINVAL;
    int rc = gnutls_priority_init(&p, prio, &err_pos);
    if (rc < 0) {
        if (why != NULL && cap > 0)
            snprintf(why, cap, "rejected at '%s': %s", err_pos ? err_pos : prio,
                     gnutls_strerror(rc));
        return DOTPROXY_ETLS;
    }
    gnutls_priority_deinit(p);
    if (why != NULL && cap > 0)
        why[0] = '\0';
    return 0;
}

int dp_trust_load(const struct dp_logger *lg, const struct dotproxy_config *cfg,
                  gnutls_certificate_credentials_t *credp, gnutls_priority_t *priop)
{
    gnutls_certificate_credentials_t cred;
    gnutls_priority_t prio;
    int rc = gnutls_certificate_allocate_credentials(&cred);
    if (rc < 0)
        return DOTPROXY_ENOMEM;
    if (cfg->ca_file != NULL) {
        rc = gnutls_certificate_set_x509_trust_file(cred, cfg->ca_file, GNUTLS_X509_FMT_PEM);
        if (rc <= 0) {
            dp_log(lg, DOTPROXY_LOG_ERR, "CA file %s: %s", cfg->ca_file,
                   rc == 0 ? "no certificate in it" : gnutls_strerror(rc));
            gnutls_certificate_free_credentials(cred);
            return DOTPROXY_ETLS;
        }
    } else {
        rc = gnutls_certificate_set_x509_system_trust(cred);
        if (rc <= 0) {
            dp_log(lg, DOTPROXY_LOG_ERR, "system trust store: %s",
                   rc == 0 ? "no certificate found (install ca-certificates, or use a CA file)"
                           : gnutls_strerror(rc));
            gnutls_certificate_free_credentials(cred);
            return DOTPROXY_ETLS;
        }
    }
    if ((cfg->tls.upstream_cert == NULL) != (cfg->tls.upstream_key == NULL)) {
        dp_log(lg, DOTPROXY_LOG_ERR,
               "upstream client certificate: a certificate and a key are "
               "both needed");
        gnutls_certificate_free_credentials(cred);
        return DOTPROXY_ETLS;
    }
    if (cfg->tls.upstream_cert != NULL) {
        /* Presented to upstreams that ask for one (private resolvers with
         * mutual TLS); GnuTLS checks that the key matches. */
        rc = gnutls_certificate_set_x509_key_file(cred, cfg->tls.upstream_cert,
                                                  cfg->tls.upstream_key, GNUTLS_X509_FMT_PEM);
        if (rc < 0) {
            dp_log(lg, DOTPROXY_LOG_ERR, "upstream client certificate %s with key %s: %s",
                   cfg->tls.upstream_cert, cfg->tls.upstream_key, gnutls_strerror(rc));
            gnutls_certificate_free_credentials(cred);
            return DOTPROXY_ETLS;
        }
    }
    const char *str = cfg->tls_priority ? cfg->tls_priority : DOTPROXY_TLS_PRIORITY_DEFAULT;
    const char *err_pos = NULL;
    rc = gnutls_priority_init(&prio, str, &err_pos);
    if (rc < 0) {
        dp_log(lg, DOTPROXY_LOG_ERR, "TLS priority string rejected at '%s': %s",
               err_pos ? err_pos : str, gnutls_strerror(rc));
        gnutls_certificate_free_credentials(cred);
        return DOTPROXY_ETLS;
    }
    *credp = cred;
    *priop = prio;
    return 0;
}

int dp_trust_digest(gnutls_certificate_credentials_t cred, uint8_t out[DP_TRUST_DIGEST_SIZE])
{
    gnutls_x509_trust_list_t tl = NULL;
    gnutls_certificate_get_trust_list(cred, &tl);
    gnutls_hash_hd_t h;
    if (tl == NULL || gnutls_hash_init(&h, GNUTLS_DIG_SHA256) < 0)
        return DOTPROXY_ETLS;
    gnutls_x509_trust_list_iter_t it = NULL;
    gnutls_x509_crt_t crt;
    int rc, failed = 0;
    while ((rc = gnutls_x509_trust_list_iter_get_ca(tl, &it, &crt)) >= 0) {
        gnutls_datum_t der = {NULL, 0};
        if (gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_DER, &der) < 0) {
            failed = 1;
        } else {
            /* Length first: the concatenation of anchors is unambiguous. */
            uint8_t len[4] = {(uint8_t)(der.size >> 24), (uint8_t)(der.size >> 16),
                              (uint8_t)(der.size >> 8), (uint8_t)der.size};
            failed |= gnutls_hash(h, len, sizeof len) < 0 || gnutls_hash(h, der.data, der.size) < 0;
            gnutls_free(der.data);
        }
        gnutls_x509_crt_deinit(crt);
    }
    gnutls_x509_trust_list_iter_deinit(it);
    gnutls_hash_deinit(h, out);
    return failed || rc != GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE ? DOTPROXY_ETLS : 0;
}

/* Whether crt is itself one of tl's anchors (a leaf or intermediate trusted
 * directly, as GnuTLS allows). */
static int is_anchor(gnutls_x509_trust_list_t tl, gnutls_x509_crt_t crt)
{
    gnutls_x509_trust_list_iter_t it = NULL;
    gnutls_x509_crt_t ca;
    int found = 0;
    while (!found && gnutls_x509_trust_list_iter_get_ca(tl, &it, &ca) >= 0) {
        found = gnutls_x509_crt_equals(ca, crt);
        gnutls_x509_crt_deinit(ca);
    }
    gnutls_x509_trust_list_iter_deinit(it);
    return found;
}

/* Whether issuer's key signed crt (and issuer may sign certificates). */
static int signed_by(gnutls_x509_crt_t crt, gnutls_x509_crt_t issuer)
{
    unsigned status = 0;
    return gnutls_x509_crt_check_issuer(crt, issuer) &&
           gnutls_x509_crt_verify(crt, &issuer, 1, 0, &status) >= 0 && status == 0;
}

/* The validated chain: peers[0] (the leaf), then each next certificate the
 * one before was signed by, taken from what the peer sent (each at most once)
 * until one was signed by a trust anchor, which ends the chain; or a
 * certificate that is itself an anchor ends it. chain[] holds copies to
 * deinit; returns their number, 0 when no path to an anchor exists. */
static unsigned build_chain(gnutls_x509_trust_list_t tl, gnutls_x509_crt_t *peers, unsigned n,
                            gnutls_x509_crt_t *chain, unsigned cap)
{
    int used[DP_TRUST_MAX_CHAIN] = {0};
    unsigned len = 0;
    gnutls_x509_crt_t cur = peers[0];
    used[0] = 1;
    for (;;) {
        if (len == cap)
            goto fail;
        /* Shared with peers[]: not deinit'd as part of chain[]. */
        chain[len++] = cur;
        if (is_anchor(tl, cur))
            return len;
        gnutls_x509_crt_t anchor = NULL;
        if (gnutls_x509_trust_list_get_issuer(tl, cur, &anchor, GNUTLS_TL_GET_COPY) >= 0) {
            int ok = signed_by(cur, anchor);
            if (ok && len < cap) {
                chain[len++] = anchor;
                return len;
            }
            gnutls_x509_crt_deinit(anchor);
            goto fail;
        }
        unsigned next = n;
        for (unsigned i = 1; i < n && next == n; i++)
            if (!used[i] && signed_by(cur, peers[i]))
                next = i;
        if (next == n)
            goto fail;
        used[next] = 1;
        cur = peers[next];
    }
fail:
    return 0;
}

static int spki_sha256(gnutls_x509_crt_t crt, uint8_t digest[32])
{
    gnutls_pubkey_t pk;
    gnutls_datum_t spki = {NULL, 0};
    if (gnutls_pubkey_init(&pk) < 0)
        return -1;
    int ok = gnutls_pubkey_import_x509(pk, crt, 0) >= 0 &&
             gnutls_pubkey_export2(pk, GNUTLS_X509_FMT_DER, &spki) >= 0 &&
             gnutls_hash_fast(GNUTLS_DIG_SHA256, spki.data, spki.size, digest) >= 0;
    gnutls_free(spki.data);
    gnutls_pubkey_deinit(pk);
    return ok ? 0 : -1;
}

/* RFC 9525 6.3 (names from subjectAltName only) and the key sizes we accept. */
static int leaf_acceptable(gnutls_x509_crt_t leaf, char *why, size_t cap)
{
    size_t size = 0;
    unsigned critical = 0;
    if (gnutls_x509_crt_get_subject_alt_name(leaf, 0, NULL, &size, &critical) ==
        GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE) {
        snprintf(why, cap,
                 "certificate has no subjectAltName (a name only in the CN is not "
                 "accepted, RFC 9525 6.3)");
        return 0;
    }
    unsigned bits = 0;
    int alg = gnutls_x509_crt_get_pk_algorithm(leaf, &bits);
    if ((alg == GNUTLS_PK_RSA || alg == GNUTLS_PK_RSA_PSS) && bits < DP_TRUST_MIN_RSA_BITS) {
        snprintf(why, cap, "certificate key is RSA of %u bits (at least %u required)", bits,
                 DP_TRUST_MIN_RSA_BITS);
        return 0;
    }
    if (alg == GNUTLS_PK_ECDSA && bits < DP_TRUST_MIN_EC_BITS) {
        snprintf(why, cap, "certificate key is EC of %u bits (at least %u required)", bits,
                 DP_TRUST_MIN_EC_BITS);
        return 0;
    }
    if (alg == GNUTLS_PK_DSA) {
        snprintf(why, cap, "certificate key is DSA (not accepted)");
        return 0;
    }
    return 1;
}

int dp_trust_check_peer(gnutls_session_t tls, gnutls_certificate_credentials_t cred,
                        const char *name, const uint8_t (*pins)[32], unsigned n_pins, char *why,
                        size_t cap, int64_t *not_after)
{
    gnutls_x509_trust_list_t tl = NULL;
    gnutls_certificate_get_trust_list(cred, &tl);
    unsigned n_raw = 0;
    const gnutls_datum_t *raw = gnutls_certificate_get_peers(tls, &n_raw);
    if (tl == NULL || raw == NULL || n_raw == 0 ||
        gnutls_certificate_type_get2(tls, GNUTLS_CTYPE_PEERS) != GNUTLS_CRT_X509) {
        snprintf(why, cap, "no X.509 certificate from the server");
        return DOTPROXY_ETLS;
    }
    if (n_raw > DP_TRUST_MAX_CHAIN) {
        snprintf(why, cap, "the server sent %u certificates (at most %u accepted)", n_raw,
                 DP_TRUST_MAX_CHAIN);
        return DOTPROXY_ETLS;
    }
    gnutls_x509_crt_t peers[DP_TRUST_MAX_CHAIN] = {0};
    gnutls_x509_crt_t chain[DP_TRUST_MAX_CHAIN + 1] = {0};
    unsigned n = 0, n_chain = 0;
    int rc = DOTPROXY_ETLS;
    for (; n < n_raw; n++) {
        if (gnutls_x509_crt_init(&peers[n]) < 0) {
            snprintf(why, cap, "out of memory checking the certificate");
            rc = DOTPROXY_ENOMEM;
            goto out;
        }
        if (gnutls_x509_crt_import(peers[n], &raw[n], GNUTLS_X509_FMT_DER) < 0) {
            n++;
            snprintf(why, cap, "certificate %u from the server does not parse", n);
            goto out;
        }
    }
    /* Verified here, against the trust in force now, on every handshake:
     * a resumed session carries no certificate message, so GnuTLS has not
     * looked at this chain since the session was made, possibly under a
     * CA the operator has since removed. */
    gnutls_typed_vdata_st vdata[2] = {
        {.type = GNUTLS_DT_DNS_HOSTNAME, .data = (unsigned char *)(uintptr_t)name},
        {.type = GNUTLS_DT_KEY_PURPOSE_OID,
         .data = (unsigned char *)(uintptr_t)GNUTLS_KP_TLS_WWW_SERVER},
    };
    unsigned status = 0;
    if (gnutls_x509_trust_list_verify_crt2(tl, peers, n, vdata, 2, 0, &status, NULL) < 0 ||
        status != 0) {
        gnutls_datum_t txt = {NULL, 0};
        gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &txt, 0);
        snprintf(why, cap, "certificate rejected for name '%s': %s", name,
                 txt.data ? (const char *)txt.data : "verification failed");
        gnutls_free(txt.data);
        goto out;
    }
    if (!leaf_acceptable(peers[0], why, cap))
        goto out;
    if (n_pins == 0) {
        rc = 0;
        goto out;
    }
    /* RFC 7858 4.2: a pinned key must be in the chain that validated (leaf
     * to anchor), not merely among what the server sent: a server may
     * append the legitimate, pinned certificate to a chain a trusted but
     * mis-issuing CA made for an attacker. */
    n_chain = build_chain(tl, peers, n, chain, DP_TRUST_MAX_CHAIN + 1);
    if (n_chain == 0) {
        snprintf(why, cap, "no chain from the certificate to a trust anchor could be built");
        goto out;
    }
    for (unsigned i = 0; i < n_chain && rc != 0; i++) {
        uint8_t digest[32];
        if (spki_sha256(chain[i], digest) != 0)
            continue;
        for (unsigned k = 0; k < n_pins && rc != 0; k++)
            if (memcmp(digest, pins[k], sizeof digest) == 0)
                rc = 0;
    }
    if (rc != 0)
        snprintf(why, cap,
                 "no key in the validated chain (%u certificate(s), leaf to trust "
                 "anchor) matches the SPKI pin set",
                 n_chain);
out:
    /* Read from the chain just verified, so resumed sessions report the
     * certificate they still rest on. */
    if (rc == 0 && not_after != NULL)
        *not_after = (int64_t)gnutls_x509_crt_get_expiration_time(peers[0]);
    /* Only the last element of chain[] can be a copy of its own (the anchor
     * from the trust list); the others are peers[] entries. */
    if (n_chain > 0) {
        int shared = 0;
        for (unsigned i = 0; i < n; i++)
            shared |= chain[n_chain - 1] == peers[i];
        if (!shared)
            gnutls_x509_crt_deinit(chain[n_chain - 1]);
    }
    for (unsigned i = 0; i < n; i++)
        gnutls_x509_crt_deinit(peers[i]);
    return rc;
}
