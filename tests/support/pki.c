/* SPDX-License-Identifier: MIT */
#include "pki.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

/* A certificate and its private key. */
typedef struct pki_ent {
    gnutls_x509_crt_t crt;
    gnutls_x509_privkey_t key;
} pki_ent;

static void ent_free(pki_ent *e)
{
    if (e->crt)
        gnutls_x509_crt_deinit(e->crt);
    if (e->key)
        gnutls_x509_privkey_deinit(e->key);
    e->crt = NULL;
    e->key = NULL;
}

static int write_file(const char *dir, const char *name, const gnutls_datum_t *d, mode_t mode)
{
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, name) >= sizeof path) {
        errno = ENAMETOOLONG;
        return GNUTLS_E_FILE_ERROR;
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        return GNUTLS_E_FILE_ERROR;
    size_t off = 0;
    while (off < d->size) {
        ssize_t n = write(fd, d->data + off, d->size - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int e = n < 0 ? errno : EIO;
            close(fd);
            errno = e;
            return GNUTLS_E_FILE_ERROR;
        }
        off += (size_t)n;
    }
    return close(fd) < 0 ? GNUTLS_E_FILE_ERROR : 0;
}

static int save(const char *dir, const char *crt_name, const char *key_name, const pki_ent *e)
{
    gnutls_datum_t d = {NULL, 0};
    int ret = gnutls_x509_crt_export2(e->crt, GNUTLS_X509_FMT_PEM, &d);
    if (ret < 0)
        return ret;
    ret = write_file(dir, crt_name, &d, 0644);
    gnutls_free(d.data);
    if (ret < 0 || key_name == NULL)
        return ret;
    d.data = NULL;
    /* PKCS#8 unencrypted: the form every TLS tool (kdig, openssl, GnuTLS) reads. */
    ret =
        gnutls_x509_privkey_export2_pkcs8(e->key, GNUTLS_X509_FMT_PEM, NULL, GNUTLS_PKCS_PLAIN, &d);
    if (ret < 0)
        return ret;
    ret = write_file(dir, key_name, &d, 0600);
    gnutls_free(d.data);
    return ret;
}

/* Issue a certificate for a fresh key (ECDSA P-256, unless rsa_bits > 0:
 * RSA of that size). ca == NULL: a self-signed CA named cn. Otherwise a TLS
 * server leaf signed by ca, with the DNS SAN dns_name (none when dns_name is
 * NULL: a CN-only certificate) and, when with_ips, IP SANs 127.0.0.1 and ::1. */
/* A client leaf's one subjectAltName (mutual TLS tests). */
struct client_san {
    int type; /* GNUTLS_SAN_DNSNAME, _URI or _IPADDRESS */
    const void *data;
    unsigned len;
};

static int issue_key_for(pki_ent *out, const pki_ent *ca, const char *cn, const char *dns_name,
                         int with_ips, unsigned rsa_bits, const struct client_san *client);

static int issue_key(pki_ent *out, const pki_ent *ca, const char *cn, const char *dns_name,
                     int with_ips, unsigned rsa_bits)
{
    return issue_key_for(out, ca, cn, dns_name, with_ips, rsa_bits, NULL);
}

/* client != NULL: a TLS client leaf with that one SAN instead of a server's. */
static int issue_key_for(pki_ent *out, const pki_ent *ca, const char *cn, const char *dns_name,
                         int with_ips, unsigned rsa_bits, const struct client_san *client)
{
    pki_ent e = {NULL, NULL};
    int ret;
    if ((ret = gnutls_x509_privkey_init(&e.key)) < 0)
        goto fail;
    if (rsa_bits > 0)
        ret = gnutls_x509_privkey_generate(e.key, GNUTLS_PK_RSA, rsa_bits, 0);
    else
        ret = gnutls_x509_privkey_generate(e.key, GNUTLS_PK_ECDSA,
                                           GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0);
    if (ret < 0)
        goto fail;
    if ((ret = gnutls_x509_crt_init(&e.crt)) < 0)
        goto fail;

    /* RFC 5280 4.1.2.2: a positive serial of at most 20 octets; random so that
     * two runs never produce the same issuer+serial pair. */
    unsigned char serial[16];
    if ((ret = gnutls_rnd(GNUTLS_RND_NONCE, serial, sizeof serial)) < 0)
        goto fail;
    serial[0] = (unsigned char)((serial[0] & 0x7f) | 0x01);
    time_t now = time(NULL);
    if ((ret = gnutls_x509_crt_set_version(e.crt, 3)) < 0 ||
        (ret = gnutls_x509_crt_set_serial(e.crt, serial, sizeof serial)) < 0 ||
        (ret = gnutls_x509_crt_set_activation_time(e.crt, now - 3600)) < 0 ||
        (ret = gnutls_x509_crt_set_expiration_time(e.crt, now + 86400)) < 0 ||
        (ret = gnutls_x509_crt_set_dn_by_oid(e.crt, GNUTLS_OID_X520_COMMON_NAME, 0, cn,
                                             (unsigned)strlen(cn))) < 0 ||
        (ret = gnutls_x509_crt_set_key(e.crt, e.key)) < 0)
        goto fail;

    unsigned char kid[64];
    size_t kid_len = sizeof kid;
    if ((ret = gnutls_x509_crt_get_key_id(e.crt, GNUTLS_KEYID_USE_SHA1, kid, &kid_len)) < 0 ||
        (ret = gnutls_x509_crt_set_subject_key_id(e.crt, kid, kid_len)) < 0)
        goto fail;

    if (ca == NULL) {
        if ((ret = gnutls_x509_crt_set_basic_constraints(e.crt, 1, -1)) < 0 ||
            (ret = gnutls_x509_crt_set_key_usage(e.crt, GNUTLS_KEY_KEY_CERT_SIGN |
                                                            GNUTLS_KEY_CRL_SIGN)) < 0 ||
            (ret = gnutls_x509_crt_sign2(e.crt, e.crt, e.key, GNUTLS_DIG_SHA256, 0)) < 0)
            goto fail;
        *out = e;
        return 0;
    }

    /* RSA keys also encipher (TLS 1.2 RSA key exchange); harmless for ECDSA. */
    unsigned usage =
        GNUTLS_KEY_DIGITAL_SIGNATURE | (rsa_bits > 0 ? GNUTLS_KEY_KEY_ENCIPHERMENT : 0);
    if ((ret = gnutls_x509_crt_set_basic_constraints(e.crt, 0, -1)) < 0 ||
        (ret = gnutls_x509_crt_set_key_usage(e.crt, usage)) < 0 ||
        (ret = gnutls_x509_crt_set_key_purpose_oid(
             e.crt, client != NULL ? GNUTLS_KP_TLS_WWW_CLIENT : GNUTLS_KP_TLS_WWW_SERVER, 0)) < 0)
        goto fail;
    if (client != NULL &&
        (ret = gnutls_x509_crt_set_subject_alt_name(e.crt, client->type, client->data, client->len,
                                                    GNUTLS_FSAN_APPEND)) < 0)
        goto fail;
    if (dns_name != NULL && (ret = gnutls_x509_crt_set_subject_alt_name(
                                 e.crt, GNUTLS_SAN_DNSNAME, dns_name, (unsigned)strlen(dns_name),
                                 GNUTLS_FSAN_APPEND)) < 0)
        goto fail;
    if (with_ips) {
        unsigned char v4[4], v6[16];
        inet_pton(AF_INET, "127.0.0.1", v4);
        inet_pton(AF_INET6, "::1", v6);
        if ((ret = gnutls_x509_crt_set_subject_alt_name(e.crt, GNUTLS_SAN_IPADDRESS, v4, sizeof v4,
                                                        GNUTLS_FSAN_APPEND)) < 0 ||
            (ret = gnutls_x509_crt_set_subject_alt_name(e.crt, GNUTLS_SAN_IPADDRESS, v6, sizeof v6,
                                                        GNUTLS_FSAN_APPEND)) < 0)
            goto fail;
    }
    kid_len = sizeof kid;
    if ((ret = gnutls_x509_crt_get_subject_key_id(ca->crt, kid, &kid_len, NULL)) < 0 ||
        (ret = gnutls_x509_crt_set_authority_key_id(e.crt, kid, kid_len)) < 0 ||
        (ret = gnutls_x509_crt_sign2(e.crt, ca->crt, ca->key, GNUTLS_DIG_SHA256, 0)) < 0)
        goto fail;
    *out = e;
    return 0;
fail:
    ent_free(&e);
    return ret;
}

static int issue(pki_ent *out, const pki_ent *ca, const char *cn, const char *dns_name,
                 int with_ips)
{
    return issue_key(out, ca, cn, dns_name, with_ips, 0);
}

int ts_pki_make(const char *dir)
{
    pki_ent ca = {NULL, NULL}, leaf = {NULL, NULL}, rogue_ca = {NULL, NULL}, ca2 = {NULL, NULL};
    int ret;
    if (dir == NULL)
        return GNUTLS_E_INVALID_REQUEST;
    if ((ret = issue(&ca, NULL, "dotproxy test CA", NULL, 0)) < 0 ||
        (ret = save(dir, "ca.pem", "ca-key.pem", &ca)) < 0)
        goto out;
    if ((ret = issue(&leaf, &ca, TS_PKI_SERVER_NAME, TS_PKI_SERVER_NAME, 1)) < 0 ||
        (ret = save(dir, "server.pem", "server-key.pem", &leaf)) < 0)
        goto out;
    ent_free(&leaf);
    if ((ret = issue(&leaf, &ca, "wrong.test", "wrong.test", 0)) < 0 ||
        (ret = save(dir, "wrongname.pem", "wrongname-key.pem", &leaf)) < 0)
        goto out;
    ent_free(&leaf);
    /* The rogue CA has the real CA's subject name, so only the signature tells
     * the chains apart: a client that matched issuers by name alone would be fooled. */
    if ((ret = issue(&rogue_ca, NULL, "dotproxy test CA", NULL, 0)) < 0 ||
        (ret = save(dir, "rogue-ca.pem", NULL, &rogue_ca)) < 0)
        goto out;
    if ((ret = issue(&leaf, &rogue_ca, TS_PKI_SERVER_NAME, TS_PKI_SERVER_NAME, 1)) < 0 ||
        (ret = save(dir, "rogue.pem", "rogue-key.pem", &leaf)) < 0)
        goto out;
    ent_free(&leaf);
    /* Certificates a careful client refuses although the chain and the name
     * check out: a CN and no subjectAltName (RFC 9525 6.3: SANs only), and an
     * RSA key too short to trust (1024 bits). */
    if ((ret = issue_key(&leaf, &ca, TS_PKI_SERVER_NAME, NULL, 0, 0)) < 0 ||
        (ret = save(dir, "cnonly.pem", "cnonly-key.pem", &leaf)) < 0)
        goto out;
    ent_free(&leaf);
    if ((ret = issue_key(&leaf, &ca, TS_PKI_SERVER_NAME, TS_PKI_SERVER_NAME, 1, 1024)) < 0 ||
        (ret = save(dir, "rsa1024.pem", "rsa1024-key.pem", &leaf)) < 0)
        goto out;
    ent_free(&leaf);
    if ((ret = issue_key(&leaf, &ca, TS_PKI_SERVER_NAME, TS_PKI_SERVER_NAME, 1, 2048)) < 0 ||
        (ret = save(dir, "rsa2048.pem", "rsa2048-key.pem", &leaf)) < 0)
        goto out;
    ent_free(&leaf);
    /* A second, distinct CA that a test may trust beside the first, and a
     * leaf for the real name that it issued: what a mis-issuing trusted CA
     * hands an attacker (the case SPKI pins exist for). */
    if ((ret = issue(&ca2, NULL, "dotproxy second test CA", NULL, 0)) < 0 ||
        (ret = save(dir, "ca2.pem", "ca2-key.pem", &ca2)) < 0)
        goto out;
    if ((ret = issue(&leaf, &ca2, TS_PKI_SERVER_NAME, TS_PKI_SERVER_NAME, 1)) < 0 ||
        (ret = save(dir, "attacker.pem", "attacker-key.pem", &leaf)) < 0)
        goto out;
    ent_free(&leaf);
    /* Client certificates for mutual TLS, one per subjectAltName kind, and
     * one from the second CA (right identity, wrong anchor). */
    unsigned char ip[4];
    inet_pton(AF_INET, TS_PKI_CLIENT_IP, ip);
    const struct client_san sans[] = {
        {GNUTLS_SAN_DNSNAME, TS_PKI_CLIENT_DNS, sizeof TS_PKI_CLIENT_DNS - 1},
        {GNUTLS_SAN_URI, TS_PKI_CLIENT_URI, sizeof TS_PKI_CLIENT_URI - 1},
        {GNUTLS_SAN_IPADDRESS, ip, sizeof ip},
        {GNUTLS_SAN_URI, TS_PKI_CLIENT_URI, sizeof TS_PKI_CLIENT_URI - 1},
    };
    static const char *const names[][2] = {{"client-dns.pem", "client-dns-key.pem"},
                                           {"client-uri.pem", "client-uri-key.pem"},
                                           {"client-ip.pem", "client-ip-key.pem"},
                                           {"client-ca2.pem", "client-ca2-key.pem"}};
    for (size_t i = 0; i < sizeof sans / sizeof sans[0]; i++) {
        if ((ret = issue_key_for(&leaf, i == 3 ? &ca2 : &ca, "dotproxy test client", NULL, 0, 0,
                                 &sans[i])) < 0 ||
            (ret = save(dir, names[i][0], names[i][1], &leaf)) < 0)
            goto out;
        ent_free(&leaf);
    }
    ret = 0;
out:;
    int saved = errno; /* the caller reads it after GNUTLS_E_FILE_ERROR */
    ent_free(&leaf);
    ent_free(&ca);
    ent_free(&rogue_ca);
    ent_free(&ca2);
    errno = saved;
    return ret;
}

void ts_pki_tmpdir_remove(const char *dir)
{
    DIR *d = opendir(dir);
    if (d != NULL) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            char p[2 * PATH_MAX];
            if (e->d_name[0] == '.')
                continue;
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(dir);
}

int ts_pki_tmpdir(char *dir, size_t cap, const char *tag)
{
    const char *tmp = getenv("TMPDIR");
    int n = snprintf(dir, cap, "%s/%s-XXXXXX", tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp", tag);
    if (n < 0 || (size_t)n >= cap) {
        fprintf(stderr, "ts_pki_tmpdir: path too long\n");
        return -1;
    }
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return -1;
    }
    int rc = ts_pki_make(dir);
    if (rc != 0) {
        fprintf(stderr, "ts_pki_make: %d\n", rc);
        ts_pki_tmpdir_remove(dir);
        return -1;
    }
    return 0;
}

const char *ts_pki_path(const char *dir, const char *name)
{
    static _Thread_local char buf[4][2 * PATH_MAX];
    static _Thread_local unsigned next;
    char *p = buf[next++ % 4];
    int n = snprintf(p, sizeof buf[0], "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= sizeof buf[0]) {
        fprintf(stderr, "ts_pki_path: %s/%s is too long\n", dir, name);
        abort();
    }
    return p;
}

int ts_pki_pin_text(const unsigned char *raw, size_t n, char *out, size_t cap)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if (cap < 7 + (n + 2) / 3 * 4 + 1)
        return -1;
    memcpy(out, "sha256/", 7);
    size_t o = 7;
    for (size_t i = 0; i < n; i += 3) {
        unsigned long v = (unsigned long)raw[i] << 16;
        if (i + 1 < n)
            v |= (unsigned long)raw[i + 1] << 8;
        if (i + 2 < n)
            v |= raw[i + 2];
        out[o++] = abc[(v >> 18) & 63];
        out[o++] = abc[(v >> 12) & 63];
        out[o++] = i + 1 < n ? abc[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? abc[v & 63] : '=';
    }
    out[o] = '\0';
    return 0;
}

int ts_pki_spki_pin(const char *cert_file, char *out, size_t cap)
{
    gnutls_datum_t pem = {NULL, 0}, der = {NULL, 0};
    gnutls_x509_crt_t crt = NULL;
    gnutls_pubkey_t pk = NULL;
    unsigned char digest[32];
    int rc = gnutls_load_file(cert_file, &pem);
    if (rc == 0)
        rc = gnutls_x509_crt_init(&crt);
    if (rc == 0)
        rc = gnutls_x509_crt_import(crt, &pem, GNUTLS_X509_FMT_PEM);
    if (rc == 0)
        rc = gnutls_pubkey_init(&pk);
    if (rc == 0)
        rc = gnutls_pubkey_import_x509(pk, crt, 0);
    if (rc == 0)
        rc = gnutls_pubkey_export2(pk, GNUTLS_X509_FMT_DER, &der);
    if (rc == 0)
        rc = gnutls_hash_fast(GNUTLS_DIG_SHA256, der.data, der.size, digest);
    if (rc == 0)
        rc = ts_pki_pin_text(digest, sizeof digest, out, cap);
    gnutls_free(der.data);
    gnutls_free(pem.data);
    if (pk != NULL)
        gnutls_pubkey_deinit(pk);
    if (crt != NULL)
        gnutls_x509_crt_deinit(crt);
    return rc;
}
