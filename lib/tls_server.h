/* SPDX-License-Identifier: MIT */
/* What the TLS listener presents and whom it accepts: our certificate and
 * key, the client CA of mutual TLS, the client identities (subjectAltName)
 * allowed, loaded into a reference-counted "material" so that rotation
 * gives new handshakes new material while established sessions keep the
 * old until they close. The listener's twin of trust.c. */
#ifndef DP_TLS_SERVER_H
#define DP_TLS_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include <gnutls/gnutls.h>

#include "config.h"
#include "log.h"

/* Why a client was refused (the counters and the log say which). */
enum dp_tls_refusal {
    DP_TLS_REFUSED_NONE = 0,
    DP_TLS_REFUSED_NO_CERT,   /* mutual TLS and no certificate */
    DP_TLS_REFUSED_UNTRUSTED, /* does not chain to the client CA (or expired, bad) */
    DP_TLS_REFUSED_ID,        /* chains, but no subjectAltName is an allowed ID */
};

struct dp_tls_material {
    unsigned refs;
    gnutls_certificate_credentials_t cred;
    int mutual;        /* a client CA is set: certificates required */
    int64_t not_after; /* our leaf certificate's notAfter (Unix time) */
    char serial[41];   /* its serial number, hex (logs, tests) */
};

/* Load t's certificate, key and client CA afresh. 0, DOTPROXY_ETLS (why
 * logged: unreadable, no certificate, key not matching) or DOTPROXY_ENOMEM.
 * *out has one reference. */
int dp_tls_server_load(const struct dp_logger *lg, const struct dp_tls_config *t,
                       struct dp_tls_material **out);
void dp_tls_material_ref(struct dp_tls_material *m);
void dp_tls_material_unref(struct dp_tls_material *m);

/* After the client's chain was received (inside the handshake): verify it
 * against m's client CA, then require one subjectAltName equal to one of
 * t's client IDs (when there are any). DP_TLS_REFUSED_NONE when accepted,
 * else the reason with one line in why[0..cap). */
enum dp_tls_refusal dp_tls_server_check_client(gnutls_session_t s, const struct dp_tls_config *t,
                                               char *why, size_t cap);

/* Does SAN value (type: GNUTLS_SAN_*; raw bytes; for IPs the 4 or 16
 * address octets) equal id? DNS names compare case-insensitively without a
 * final dot, URIs exactly, IP addresses as addresses. */
int dp_tls_server_san_matches(int type, const uint8_t *san, size_t len, const char *id);

#endif
