/* SPDX-License-Identifier: MIT */
/* What the TLS hop trusts: the CA store (system or a file) and the priority
 * string, loaded into GnuTLS objects (RFC 8310 strict profile: every
 * upstream certificate is checked against these). */
#ifndef DP_TRUST_H
#define DP_TRUST_H

#include <gnutls/gnutls.h>

#include "dotproxy/config.h"
#include "log.h"

/* Load cfg's trust anchors and priority string fresh (creation, reload).
 * 0, DOTPROXY_ETLS (logged to lg) or DOTPROXY_ENOMEM; *cred and *prio are
 * written only on success and then belong to the caller. */
int dp_trust_load(const struct dp_logger *lg, const struct dotproxy_config *cfg,
                  gnutls_certificate_credentials_t *cred, gnutls_priority_t *prio);

#endif
