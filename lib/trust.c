/* SPDX-License-Identifier: MIT */
/* Trust anchors and TLS priorities for the upstream hop. */
#include "trust.h"

#include "config.h"
#include "dotproxy/error.h"

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
