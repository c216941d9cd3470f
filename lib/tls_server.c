/* SPDX-License-Identifier: MIT */
/* The TLS listener's credentials and client checks (mutual TLS). */
#include "tls_server.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <gnutls/x509.h>

#include "dotproxy/error.h"

/* Parse the chain file ourselves first: it gives the leaf's notAfter and
 * serial (metrics, logs), and a file that is not PEM is refused here, where
 * nothing leaks (GnuTLS 3.7's key_file loader leaks on that error path, and
 * a rotation may meet half-written files many times). 0 or a GnuTLS error. */
static int read_leaf(const char *path, struct dp_tls_material *m)
{
    gnutls_datum_t pem = {NULL, 0};
    gnutls_x509_crt_t *list = NULL;
    unsigned n = 0;
    int rc = gnutls_load_file(path, &pem);
    if (rc < 0)
        return rc;
    rc = gnutls_x509_crt_list_import2(&list, &n, &pem, GNUTLS_X509_FMT_PEM, 0);
    gnutls_free(pem.data);
    if (rc < 0)
        return rc;
    if (n == 0) {
        gnutls_free(list);
        return GNUTLS_E_NO_CERTIFICATE_FOUND;
    }
    m->not_after = (int64_t)gnutls_x509_crt_get_expiration_time(list[0]);
    uint8_t sn[20];
    size_t snlen = sizeof sn;
    m->serial[0] = '\0';
    if (gnutls_x509_crt_get_serial(list[0], sn, &snlen) >= 0)
        for (size_t i = 0; i < snlen; i++)
            snprintf(m->serial + 2 * i, 3, "%02x", sn[i]);
    for (unsigned i = 0; i < n; i++)
        gnutls_x509_crt_deinit(list[i]);
    gnutls_free(list);
    return 0;
}

int dp_tls_server_load(const struct dp_logger *lg, const struct dp_tls_config *t,
                       struct dp_tls_material **out)
{
    if (t->cert == NULL || t->key == NULL) {
        dp_log(lg, DOTPROXY_LOG_ERR, "TLS listener: a certificate and a key are both needed");
        return DOTPROXY_EINVAL;
    }
    struct dp_tls_material *m = calloc(1, sizeof *m);
    if (m == NULL)
        return DOTPROXY_ENOMEM;
    int rc = gnutls_certificate_allocate_credentials(&m->cred);
    if (rc < 0) {
        free(m);
        return DOTPROXY_ENOMEM;
    }
    rc = read_leaf(t->cert, m);
    if (rc < 0) {
        dp_log(lg, DOTPROXY_LOG_ERR, "TLS listener: certificate %s: %s", t->cert,
               gnutls_strerror(rc));
        goto fail;
    }
    /* GnuTLS checks that the key belongs to the certificate: a rotation that
     * caught one file new and the other old fails here and keeps the old. */
    rc = gnutls_certificate_set_x509_key_file(m->cred, t->cert, t->key, GNUTLS_X509_FMT_PEM);
    if (rc < 0) {
        dp_log(lg, DOTPROXY_LOG_ERR, "TLS listener: certificate %s with key %s: %s", t->cert,
               t->key, gnutls_strerror(rc));
        goto fail;
    }
    if (t->client_ca != NULL) {
        rc = gnutls_certificate_set_x509_trust_file(m->cred, t->client_ca, GNUTLS_X509_FMT_PEM);
        if (rc <= 0) {
            dp_log(lg, DOTPROXY_LOG_ERR, "TLS listener: client CA file %s: %s", t->client_ca,
                   rc == 0 ? "no certificate in it" : gnutls_strerror(rc));
            goto fail;
        }
        m->mutual = 1;
    }
    m->refs = 1;
    *out = m;
    return 0;
fail:
    gnutls_certificate_free_credentials(m->cred);
    free(m);
    return DOTPROXY_ETLS;
}

void dp_tls_material_ref(struct dp_tls_material *m)
{
    m->refs++;
}

void dp_tls_material_unref(struct dp_tls_material *m)
{
    if (m == NULL || --m->refs > 0)
        return;
    gnutls_certificate_free_credentials(m->cred);
    free(m);
}

int dp_tls_server_san_matches(int type, const uint8_t *san, size_t len, const char *id)
{
    size_t idlen = strlen(id);
    switch (type) {
    case GNUTLS_SAN_DNSNAME: {
        /* A trailing dot on either side names the same host. */
        if (len > 0 && san[len - 1] == '.')
            len--;
        if (idlen > 0 && id[idlen - 1] == '.')
            idlen--;
        return len == idlen && len > 0 && strncasecmp((const char *)san, id, len) == 0;
    }
    case GNUTLS_SAN_URI: return len == idlen && memcmp(san, id, len) == 0;
    case GNUTLS_SAN_IPADDRESS: {
        uint8_t a[16];
        if (len == 4 && inet_pton(AF_INET, id, a) == 1)
            return memcmp(a, san, 4) == 0;
        if (len == 16 && inet_pton(AF_INET6, id, a) == 1)
            return memcmp(a, san, 16) == 0;
        return 0;
    }
    default: return 0;
    }
}

static int leaf_has_id(gnutls_x509_crt_t crt, const struct dp_tls_config *t)
{
    for (unsigned i = 0;; i++) {
        uint8_t san[1024];
        size_t len = sizeof san;
        unsigned critical;
        int type = gnutls_x509_crt_get_subject_alt_name(crt, i, san, &len, &critical);
        if (type == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
            return 0;
        if (type < 0)
            continue; /* one we cannot read (too long): the others may match */
        for (size_t k = 0; k < t->n_client_ids; k++)
            if (dp_tls_server_san_matches(type, san, len, t->client_ids[k]))
                return 1;
    }
}

enum dp_tls_refusal dp_tls_server_check_client(gnutls_session_t s, const struct dp_tls_config *t,
                                               char *why, size_t cap)
{
    unsigned n = 0;
    const gnutls_datum_t *chain = gnutls_certificate_get_peers(s, &n);
    if (chain == NULL || n == 0) {
        snprintf(why, cap, "no client certificate");
        return DP_TLS_REFUSED_NO_CERT;
    }
    unsigned status = 0;
    /* A certificate made for servers only is no client identity (RFC 5280
     * 4.2.1.12): the purpose is checked with the chain. */
    gnutls_typed_vdata_st purpose = {
        .type = GNUTLS_DT_KEY_PURPOSE_OID, .data = (void *)GNUTLS_KP_TLS_WWW_CLIENT, .size = 0};
    int rc = gnutls_certificate_verify_peers(s, &purpose, 1, &status);
    if (rc < 0 || status != 0) {
        gnutls_datum_t text = {NULL, 0};
        if (rc >= 0 &&
            gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &text, 0) >= 0) {
            snprintf(why, cap, "client certificate not trusted: %s", (const char *)text.data);
            gnutls_free(text.data);
        } else {
            snprintf(why, cap, "client certificate not trusted: %s",
                     rc < 0 ? gnutls_strerror(rc) : "?");
        }
        return DP_TLS_REFUSED_UNTRUSTED;
    }
    if (t->n_client_ids == 0)
        return DP_TLS_REFUSED_NONE;
    gnutls_x509_crt_t crt;
    if (gnutls_x509_crt_init(&crt) < 0) {
        snprintf(why, cap, "out of memory");
        return DP_TLS_REFUSED_UNTRUSTED;
    }
    int ok =
        gnutls_x509_crt_import(crt, &chain[0], GNUTLS_X509_FMT_DER) >= 0 && leaf_has_id(crt, t);
    gnutls_x509_crt_deinit(crt);
    if (ok)
        return DP_TLS_REFUSED_NONE;
    snprintf(why, cap, "client certificate has no subjectAltName among the %zu allowed IDs",
             t->n_client_ids);
    return DP_TLS_REFUSED_ID;
}
