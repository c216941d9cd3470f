/* SPDX-License-Identifier: MIT */
/* What the TLS hop trusts: the CA store (system or a file) and the priority
 * string, loaded into GnuTLS objects (RFC 8310 strict profile: every
 * upstream certificate is checked against these). */
#ifndef DP_TRUST_H
#define DP_TRUST_H

#include <stddef.h>
#include <stdint.h>

#include <gnutls/gnutls.h>

#include "dotproxy/config.h"
#include "log.h"

/* Load cfg's trust anchors and priority string fresh (creation, reload).
 * 0, DOTPROXY_ETLS (logged to lg) or DOTPROXY_ENOMEM; *cred and *prio are
 * written only on success and then belong to the caller. */
int dp_trust_load(const struct dp_logger *lg, const struct dotproxy_config *cfg,
                  gnutls_certificate_credentials_t *cred, gnutls_priority_t *prio);

/* Leaf keys shorter than these are refused (RSA / RSA-PSS, ECDSA). */
#define DP_TRUST_MIN_RSA_BITS 2048u
#define DP_TRUST_MIN_EC_BITS  256u
/* Longest certificate list accepted from a server. */
#define DP_TRUST_MAX_CHAIN   16u
#define DP_TRUST_DIGEST_SIZE 32u

/* SHA-256 over the trust anchors cred holds: equal digests, equal trust. A
 * reload compares them to know whether the contents of the CA store changed,
 * whatever its path. 0 or DOTPROXY_ETLS. */
int dp_trust_digest(gnutls_certificate_credentials_t cred, uint8_t out[DP_TRUST_DIGEST_SIZE]);

/* After a completed handshake (full or resumed) on tls, made with cred:
 * verify the server's chain against cred's anchors now, for name (a host
 * name or an address literal); require a subjectAltName (RFC 9525 6.3) and a
 * leaf key of at least DP_TRUST_MIN_*_BITS; with n_pins > 0, require one of
 * the SHA-256 SPKI pins to match a key of the validated chain (leaf to trust
 * anchor, RFC 7858 4.2). 0 when all hold; otherwise DOTPROXY_ETLS (or
 * DOTPROXY_ENOMEM) with the reason, one line, in why[0..cap). On 0, and
 * when not_after is not NULL, *not_after is the leaf's notAfter (Unix time,
 * for the expiry metric; -1 when the certificate does not say). */
int dp_trust_check_peer(gnutls_session_t tls, gnutls_certificate_credentials_t cred,
                        const char *name, const uint8_t (*pins)[32], unsigned n_pins, char *why,
                        size_t cap, int64_t *not_after);

#endif
