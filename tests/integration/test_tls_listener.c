/* SPDX-License-Identifier: MIT */
/* The DNS-over-TLS listener, in process: a real dotproxy_ctx on loopback
 * between a GnuTLS client written here and the in-tree DoT upstream, with a
 * throwaway PKI (tests/support/pki.h) made once per run.
 *
 * Covered (issue 15): pipelined queries answered out of order, padding of
 * answers to padded queries (RFC 8467), edns-tcp-keepalive (RFC 7828), the
 * idle and handshake timeouts, mutual TLS accepted and refused by CA and by
 * each subjectAltName kind, certificate rotation under an open connection
 * (by inotify and by reload), broken files on rotation, and the client
 * certificate presented to an upstream that requires one.
 *
 * Each context runs on a thread of its own with dotproxy_ctx_run(). Nothing
 * waits by sleeping: every wait is a poll() on a socket or a bounded loop on
 * a counter with a deadline. */
#include <check.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "dotproxy/dotproxy.h"

#include "dnsclient.h"
#include "dotserver.h"
#include "pki.h"
#include "rig.h"

#define WAIT_MS 5000

/* ---- files ---- */

static void copy_file(const char *from, const char *to)
{
    gnutls_datum_t d = {NULL, 0};
    ck_assert_int_eq(gnutls_load_file(from, &d), 0);
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s.tmp", to);
    FILE *f = fopen(tmp, "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(d.data, 1, d.size, f), d.size);
    ck_assert_int_eq(fclose(f), 0);
    gnutls_free(d.data);
    /* Replaced by rename, as a Secret volume or an editor does. */
    ck_assert_int_eq(rename(tmp, to), 0);
}

static void write_text(const char *to, const char *text)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s.tmp", to);
    FILE *f = fopen(tmp, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    ck_assert_int_eq(fclose(f), 0);
    ck_assert_int_eq(rename(tmp, to), 0);
}

/* The hex serial of the first certificate in a PEM file. */
static void file_serial(const char *path, char *out, size_t cap)
{
    gnutls_datum_t pem = {NULL, 0};
    gnutls_x509_crt_t crt;
    ck_assert_int_eq(gnutls_load_file(path, &pem), 0);
    ck_assert_int_eq(gnutls_x509_crt_init(&crt), 0);
    ck_assert_int_ge(gnutls_x509_crt_import(crt, &pem, GNUTLS_X509_FMT_PEM), 0);
    uint8_t sn[20];
    size_t n = sizeof sn;
    ck_assert_int_ge(gnutls_x509_crt_get_serial(crt, sn, &n), 0);
    out[0] = '\0';
    for (size_t i = 0; i < n && 2 * i + 2 < cap; i++)
        snprintf(out + 2 * i, 3, "%02x", sn[i]);
    gnutls_x509_crt_deinit(crt);
    gnutls_free(pem.data);
}

/* ---- the rig: upstream + proxy with a TLS listener ---- */

typedef struct rig {
    ts_rig p; /* the context on its thread (rig.h) */
    ts_dotserver *srv;
    uint16_t tls_port;
    char dir[PATH_MAX / 2]; /* the listener's own copy of its files */
} rig;

static const char *rig_path(const rig *r, const char *name)
{
    static _Thread_local char buf[4][PATH_MAX];
    static _Thread_local unsigned next;
    char *b = buf[next++ % 4];
    snprintf(b, PATH_MAX, "%s/%s", r->dir, name);
    return b;
}

/* A configuration: the upstream, plain DNS on port 0, TLS on port 0 with
 * a copy of server.pem / server-key.pem in a directory of the rig's own. */
static dotproxy_config *rig_config(rig *r, const ts_dotserver_opts *so)
{
    memset(r, 0, sizeof *r);
    r->srv = ts_rig_server(so != NULL ? *so : (ts_dotserver_opts){0}, "server");
    ck_assert_int_lt(snprintf(r->dir, sizeof r->dir, "%.*s/rig-XXXXXX", PATH_MAX / 4, ts_rig_pki),
                     (int)sizeof r->dir);
    ck_assert_ptr_nonnull(mkdtemp(r->dir));
    copy_file(ts_pki_path(ts_rig_pki, "server.pem"), rig_path(r, "tls.crt"));
    copy_file(ts_pki_path(ts_rig_pki, "server-key.pem"), rig_path(r, "tls.key"));
    uint16_t up = ts_dotserver_port(r->srv);
    dotproxy_config *cfg = ts_rig_config(&up, 1);
    ck_assert_int_eq(dotproxy_config_add_listen_tls(cfg, "127.0.0.1@0"), 0);
    ck_assert_int_eq(dotproxy_config_set_tls_cert(cfg, rig_path(r, "tls.crt")), 0);
    ck_assert_int_eq(dotproxy_config_set_tls_key(cfg, rig_path(r, "tls.key")), 0);
    ck_assert_int_eq(dotproxy_config_set_cache_size(cfg, 0), 0);
    return cfg;
}

static void rig_start(rig *r, dotproxy_config *cfg)
{
    ts_rig_up(&r->p, cfg);
    int port = dotproxy_ctx_listen_tls_port(r->p.ctx, 0);
    ck_assert_int_gt(port, 0);
    r->tls_port = (uint16_t)port;
}

static void rig_down(rig *r)
{
    ts_rig_down(&r->p);
    ts_dotserver_stop(r->srv);
}

static uint64_t wait_ctr(const rig *r, int which, uint64_t want)
{
    return ts_rig_wait_ctr(&r->p, which, want, WAIT_MS);
}

/* ---- a DoT client ---- */

typedef struct client {
    int fd;
    gnutls_session_t s;
    gnutls_certificate_credentials_t cred;
} client;

/* Connect and handshake (blocking, bounded by socket timeouts); with
 * cert/key (ts_rig_pki names) a client certificate. Returns the handshake's
 * GnuTLS code; the client is usable when 0. */
static int client_open(client *c, uint16_t port, const char *cert, const char *key,
                       gnutls_datum_t *resume)
{
    memset(c, 0, sizeof *c);
    c->fd = ts_dns_tcp_connect(port);
    ck_assert_int_ge(c->fd, 0);
    struct timeval tv = {.tv_sec = WAIT_MS / 1000};
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    ck_assert_int_eq(gnutls_certificate_allocate_credentials(&c->cred), 0);
    ck_assert_int_gt(gnutls_certificate_set_x509_trust_file(
                         c->cred, ts_pki_path(ts_rig_pki, "ca.pem"), GNUTLS_X509_FMT_PEM),
                     0);
    if (cert != NULL)
        ck_assert_int_eq(
            gnutls_certificate_set_x509_key_file(c->cred, ts_pki_path(ts_rig_pki, cert),
                                                 ts_pki_path(ts_rig_pki, key), GNUTLS_X509_FMT_PEM),
            0);
    ck_assert_int_eq(gnutls_init(&c->s, GNUTLS_CLIENT), 0);
    ck_assert_int_eq(gnutls_set_default_priority(c->s), 0);
    ck_assert_int_eq(gnutls_credentials_set(c->s, GNUTLS_CRD_CERTIFICATE, c->cred), 0);
    gnutls_session_set_verify_cert(c->s, TS_PKI_SERVER_NAME, 0);
    if (resume != NULL && resume->data != NULL)
        ck_assert_int_eq(gnutls_session_set_data(c->s, resume->data, resume->size), 0);
    gnutls_transport_set_int(c->s, c->fd);
    int rc;
    do
        rc = gnutls_handshake(c->s);
    while (rc < 0 && !gnutls_error_is_fatal(rc));
    return rc;
}

static void client_close(client *c)
{
    gnutls_deinit(c->s);
    gnutls_certificate_free_credentials(c->cred);
    close(c->fd);
}

/* 0, or -1 when the connection is gone (a refused client learns it so). */
static int client_try_send(client *c, const uint8_t *msg, size_t len)
{
    uint8_t buf[4096];
    ck_assert_uint_le(len + 2, sizeof buf);
    buf[0] = (uint8_t)(len >> 8);
    buf[1] = (uint8_t)len;
    memcpy(buf + 2, msg, len);
    return gnutls_record_send(c->s, buf, len + 2) == (ssize_t)(len + 2) ? 0 : -1;
}

static void client_send(client *c, const uint8_t *msg, size_t len)
{
    ck_assert_int_eq(client_try_send(c, msg, len), 0);
}

static int read_exact(client *c, uint8_t *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = gnutls_record_recv(c->s, buf + got, n - got);
        if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED)
            continue;
        if (r <= 0)
            return r == 0 ? -1 : (int)r;
        got += (size_t)r;
    }
    return 0;
}

/* One framed answer: its length, or < 0 (closed, refused, timed out). */
static int client_recv(client *c, uint8_t *buf, size_t cap)
{
    uint8_t pre[2];
    int rc = read_exact(c, pre, 2);
    if (rc != 0)
        return rc;
    size_t len = (size_t)pre[0] << 8 | pre[1];
    ck_assert_uint_le(len, cap);
    rc = read_exact(c, buf, len);
    return rc != 0 ? rc : (int)len;
}

/* Ask name/A and check the answer's ID and address; 1 when answered. */
static int client_ask(client *c, uint16_t id, const char *name)
{
    uint8_t q[512], a[4096];
    int n = ts_dns_build_query(q, sizeof q, id, name, 1, 0);
    ck_assert_int_gt(n, 0);
    if (client_try_send(c, q, (size_t)n) != 0)
        return 0;
    int m = client_recv(c, a, sizeof a);
    if (m < 0)
        return 0;
    ck_assert_int_eq(ts_dns_id(a, (size_t)m), id);
    uint8_t got[4], want[4];
    ck_assert_int_eq(ts_dns_first_a(a, (size_t)m, got), 0);
    ts_dns_expected_a(name, want);
    ck_assert_mem_eq(got, want, 4);
    return 1;
}

static void client_peer_serial(client *c, char *out, size_t cap)
{
    unsigned n = 0;
    const gnutls_datum_t *chain = gnutls_certificate_get_peers(c->s, &n);
    ck_assert_ptr_nonnull(chain);
    gnutls_x509_crt_t crt;
    ck_assert_int_eq(gnutls_x509_crt_init(&crt), 0);
    ck_assert_int_ge(gnutls_x509_crt_import(crt, &chain[0], GNUTLS_X509_FMT_DER), 0);
    uint8_t sn[20];
    size_t len = sizeof sn;
    ck_assert_int_ge(gnutls_x509_crt_get_serial(crt, sn, &len), 0);
    out[0] = '\0';
    for (size_t i = 0; i < len && 2 * i + 2 < cap; i++)
        snprintf(out + 2 * i, 3, "%02x", sn[i]);
    gnutls_x509_crt_deinit(crt);
}

/* The query with an OPT carrying the given options (code, length, zeros). */
static int query_with_options(uint8_t *q, size_t cap, uint16_t id, const char *name, int padding,
                              int keepalive)
{
    int n = ts_dns_build_query(q, cap, id, name, 1, 0);
    ck_assert_int_gt(n, 0);
    size_t len = (size_t)n;
    size_t opt = len;
    static const uint8_t fixed[] = {0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0};
    memcpy(q + len, fixed, sizeof fixed);
    len += sizeof fixed;
    size_t rd = 0;
    if (keepalive) {
        static const uint8_t ka[] = {0, 11, 0, 0};
        memcpy(q + len, ka, sizeof ka);
        len += 4;
        rd += 4;
    }
    if (padding) {
        uint8_t pad[4 + 20] = {0, 12, 0, 20};
        memcpy(q + len, pad, sizeof pad);
        len += sizeof pad;
        rd += sizeof pad;
    }
    q[opt + 9] = (uint8_t)(rd >> 8);
    q[opt + 10] = (uint8_t)rd;
    q[11] = 1; /* ARCOUNT */
    return (int)len;
}

/* The OPT option `code` of an answer: its data offset and length, or -1. */
static int answer_option(const uint8_t *a, size_t len, unsigned code, unsigned *olen)
{
    uint16_t rdlen;
    int at = ts_dns_find_rr(a, len, 3, 41, &rdlen, NULL);
    if (at < 0)
        return -1;
    for (size_t p = (size_t)at; p + 4 <= (size_t)at + rdlen;) {
        unsigned c = (unsigned)a[p] << 8 | a[p + 1], l = (unsigned)a[p + 2] << 8 | a[p + 3];
        if (c == code) {
            *olen = l;
            return (int)(p + 4);
        }
        p += 4 + l;
    }
    return -1;
}

/* ---- the listener ---- */

START_TEST(test_tls_listener_answers_pipelined_queries_out_of_order)
{
    rig r;
    ts_dotserver_opts so = {.reverse_batch = 4};
    rig_start(&r, rig_config(&r, &so));
    client c;
    ck_assert_int_eq(client_open(&c, r.tls_port, NULL, NULL, NULL), 0);
    static const char *const names[4] = {"p0.example", "p1.example", "p2.example", "p3.example"};
    uint8_t all[2048];
    size_t at = 0;
    for (int i = 0; i < 4; i++) {
        uint8_t q[512];
        int n = ts_dns_build_query(q, sizeof q, (uint16_t)(100 + i), names[i], 1, 0);
        all[at] = (uint8_t)(n >> 8);
        all[at + 1] = (uint8_t)n;
        memcpy(all + at + 2, q, (size_t)n);
        at += 2 + (size_t)n;
    }
    /* One record, four queries: the proxy must read them all at once. */
    ck_assert_int_eq(gnutls_record_send(c.s, all, at), (ssize_t)at);
    int order[4];
    for (int i = 0; i < 4; i++) {
        uint8_t a[1024];
        int m = client_recv(&c, a, sizeof a);
        ck_assert_int_gt(m, 0);
        order[i] = ts_dns_id(a, (size_t)m) - 100;
        uint8_t got[4], want[4];
        ck_assert_int_eq(ts_dns_first_a(a, (size_t)m, got), 0);
        ts_dns_expected_a(names[order[i]], want);
        ck_assert_mem_eq(got, want, 4);
    }
    /* The upstream answered in reverse: so did we, as they came. */
    ck_assert_int_eq(order[0], 3);
    ck_assert_int_eq(order[3], 0);
    ck_assert_uint_eq(dotproxy_ctx_counter(r.p.ctx, DOTPROXY_CTR_QUERIES_TLS), 4);
    client_close(&c);
    rig_down(&r);
}
END_TEST

START_TEST(test_tls_listener_pads_answers_to_padded_queries_and_announces_keepalive)
{
    rig r;
    dotproxy_config *cfg = rig_config(&r, NULL);
    ck_assert_int_eq(dotproxy_config_set_tls_idle_timeout_ms(cfg, 7000), 0);
    rig_start(&r, cfg);
    client c;
    ck_assert_int_eq(client_open(&c, r.tls_port, NULL, NULL, NULL), 0);
    uint8_t q[512], a[4096];
    unsigned olen;

    int n = query_with_options(q, sizeof q, 7, "pad.example", 1, 0);
    client_send(&c, q, (size_t)n);
    int m = client_recv(&c, a, sizeof a);
    ck_assert_int_gt(m, 0);
    ck_assert_int_eq(m % 468, 0); /* RFC 8467 4.1 */
    ck_assert_int_ge(answer_option(a, (size_t)m, 12, &olen), 0);
    ck_assert_int_lt(answer_option(a, (size_t)m, 11, &olen), 0);

    n = query_with_options(q, sizeof q, 8, "ka.example", 0, 1);
    client_send(&c, q, (size_t)n);
    m = client_recv(&c, a, sizeof a);
    ck_assert_int_gt(m, 0);
    int at = answer_option(a, (size_t)m, 11, &olen);
    ck_assert_int_ge(at, 0);
    ck_assert_uint_eq(olen, 2);
    ck_assert_uint_eq((unsigned)a[at] << 8 | a[at + 1], 70); /* 7000 ms in 100 ms units */
    ck_assert_int_lt(answer_option(a, (size_t)m, 12, &olen), 0);
    ck_assert_int_ne(m % 468, 0);

    /* Neither asked: neither given. */
    n = query_with_options(q, sizeof q, 9, "plain.example", 0, 0);
    client_send(&c, q, (size_t)n);
    m = client_recv(&c, a, sizeof a);
    ck_assert_int_gt(m, 0);
    ck_assert_int_lt(answer_option(a, (size_t)m, 11, &olen), 0);
    ck_assert_int_lt(answer_option(a, (size_t)m, 12, &olen), 0);
    client_close(&c);
    rig_down(&r);
}
END_TEST

START_TEST(test_tls_listener_closes_idle_clients_and_stalled_handshakes)
{
    rig r;
    dotproxy_config *cfg = rig_config(&r, NULL);
    ck_assert_int_eq(dotproxy_config_set_tls_idle_timeout_ms(cfg, 300), 0);
    ck_assert_int_eq(dotproxy_config_set_handshake_timeout_ms(cfg, 300), 0);
    rig_start(&r, cfg);
    client c;
    ck_assert_int_eq(client_open(&c, r.tls_port, NULL, NULL, NULL), 0);
    ck_assert(client_ask(&c, 1, "idle.example"));
    int64_t t0 = ts_now_ms();
    uint8_t a[512];
    /* Nothing more asked: the proxy closes (the read ends), in about 300 ms. */
    ck_assert_int_lt(client_recv(&c, a, sizeof a), 0);
    ck_assert_int_lt(ts_now_ms() - t0, WAIT_MS - 500);
    client_close(&c);

    /* A TCP connection that never starts its handshake. */
    int fd = ts_dns_tcp_connect(r.tls_port);
    ck_assert_int_ge(fd, 0);
    struct pollfd p = {.fd = fd, .events = POLLIN};
    ck_assert_int_eq(poll(&p, 1, WAIT_MS), 1);
    char b;
    ck_assert_int_eq(recv(fd, &b, 1, 0), 0);
    close(fd);
    ck_assert_uint_eq(wait_ctr(&r, DOTPROXY_CTR_TLS_IN_TIMEOUTS, 1), 1);
    rig_down(&r);
}
END_TEST

START_TEST(test_tls_listener_resumes_sessions_with_tickets)
{
    rig r;
    rig_start(&r, rig_config(&r, NULL));
    client c;
    ck_assert_int_eq(client_open(&c, r.tls_port, NULL, NULL, NULL), 0);
    ck_assert(client_ask(&c, 1, "first.example")); /* the TLS 1.3 ticket came before it */
    gnutls_datum_t data = {NULL, 0};
    ck_assert_int_eq(gnutls_session_get_data2(c.s, &data), 0);
    client_close(&c);
    ck_assert_int_eq(client_open(&c, r.tls_port, NULL, NULL, &data), 0);
    ck_assert(gnutls_session_is_resumed(c.s));
    ck_assert(client_ask(&c, 2, "second.example"));
    client_close(&c);
    gnutls_free(data.data);
    ck_assert_uint_eq(dotproxy_ctx_counter(r.p.ctx, DOTPROXY_CTR_TLS_IN_HANDSHAKES), 1);
    ck_assert_uint_eq(dotproxy_ctx_counter(r.p.ctx, DOTPROXY_CTR_TLS_IN_RESUMED), 1);
    rig_down(&r);
}
END_TEST

/* ---- mutual TLS ---- */

/* A client with cert (or none) asks once: 1 answered, 0 refused. */
static int mtls_try(rig *r, const char *cert)
{
    char key[64];
    if (cert != NULL)
        snprintf(key, sizeof key, "%.*s-key.pem", (int)(strlen(cert) - 4), cert);
    client c;
    int rc = client_open(&c, r->tls_port, cert, cert != NULL ? key : NULL, NULL);
    /* TLS 1.3: the client finishes first; a refusal arrives as an alert on
     * the first read. */
    int ok = rc == 0 && client_ask(&c, 42, "mtls.example");
    client_close(&c);
    return ok;
}

START_TEST(test_tls_listener_mutual_tls_accepts_only_the_client_ca)
{
    rig r;
    dotproxy_config *cfg = rig_config(&r, NULL);
    ck_assert_int_eq(dotproxy_config_set_tls_client_ca(cfg, ts_pki_path(ts_rig_pki, "ca.pem")), 0);
    rig_start(&r, cfg);
    ck_assert(!mtls_try(&r, NULL));
    ck_assert_uint_eq(wait_ctr(&r, DOTPROXY_CTR_TLS_REFUSED_NO_CERT, 1), 1);
    /* A GnuTLS client whose certificate is not from a CA the server names
     * sends none: refused either way, counted as what arrived. */
    ck_assert(!mtls_try(&r, "client-ca2.pem"));
    int64_t end = ts_now_ms() + WAIT_MS;
    while (dotproxy_ctx_counter(r.p.ctx, DOTPROXY_CTR_TLS_REFUSED_NO_CERT) +
                   dotproxy_ctx_counter(r.p.ctx, DOTPROXY_CTR_TLS_REFUSED_UNTRUSTED) <
               2 &&
           ts_now_ms() < end)
        poll(NULL, 0, 2);
    ck_assert_uint_eq(dotproxy_ctx_counter(r.p.ctx, DOTPROXY_CTR_TLS_REFUSED_NO_CERT) +
                          dotproxy_ctx_counter(r.p.ctx, DOTPROXY_CTR_TLS_REFUSED_UNTRUSTED),
                      2);
    /* A server certificate of the right CA is sent, and is no client
     * certificate (its extended key usage says server only). */
    uint64_t untrusted = dotproxy_ctx_counter(r.p.ctx, DOTPROXY_CTR_TLS_REFUSED_UNTRUSTED);
    ck_assert(!mtls_try(&r, "server.pem"));
    ck_assert_uint_eq(wait_ctr(&r, DOTPROXY_CTR_TLS_REFUSED_UNTRUSTED, untrusted + 1),
                      untrusted + 1);
    ck_assert(mtls_try(&r, "client-dns.pem"));
    ck_assert(mtls_try(&r, "client-uri.pem"));
    ck_assert(mtls_try(&r, "client-ip.pem"));
    ck_assert_uint_eq(dotproxy_ctx_counter(r.p.ctx, DOTPROXY_CTR_TLS_REFUSED_ID), 0);
    rig_down(&r);
}
END_TEST

/* Only the certificate carrying id (of kind DNS, URI or IP) gets in. */
static void mtls_by_id(const char *id, const char *accepted)
{
    static const char *const all[] = {"client-dns.pem", "client-uri.pem", "client-ip.pem"};
    rig r;
    dotproxy_config *cfg = rig_config(&r, NULL);
    ck_assert_int_eq(dotproxy_config_set_tls_client_ca(cfg, ts_pki_path(ts_rig_pki, "ca.pem")), 0);
    ck_assert_int_eq(dotproxy_config_add_tls_client_id(cfg, "someone.else.test"), 0);
    ck_assert_int_eq(dotproxy_config_add_tls_client_id(cfg, id), 0);
    rig_start(&r, cfg);
    unsigned refused = 0;
    for (size_t i = 0; i < 3; i++) {
        int ok = mtls_try(&r, all[i]);
        ck_assert_msg(ok == (strcmp(all[i], accepted) == 0), "%s with ID %s: %s", all[i], id,
                      ok ? "accepted" : "refused");
        refused += !ok;
    }
    ck_assert_uint_eq(wait_ctr(&r, DOTPROXY_CTR_TLS_REFUSED_ID, refused), refused);
    /* The right identity from another CA stays out. */
    if (strcmp(id, TS_PKI_CLIENT_URI) == 0)
        ck_assert(!mtls_try(&r, "client-ca2.pem"));
    rig_down(&r);
}

START_TEST(test_tls_listener_mutual_tls_matches_a_dns_san)
{
    mtls_by_id("Client.Test.", "client-dns.pem"); /* case and final dot do not matter */
}
END_TEST

START_TEST(test_tls_listener_mutual_tls_matches_a_spiffe_uri_san)
{
    mtls_by_id(TS_PKI_CLIENT_URI, "client-uri.pem");
}
END_TEST

START_TEST(test_tls_listener_mutual_tls_matches_an_ip_san)
{
    mtls_by_id(TS_PKI_CLIENT_IP, "client-ip.pem");
}
END_TEST

/* ---- rotation ---- */

START_TEST(test_tls_listener_rotates_on_file_change_keeping_open_connections)
{
    rig r;
    rig_start(&r, rig_config(&r, NULL));
    char old_sn[64], new_sn[64], seen[64];
    file_serial(ts_pki_path(ts_rig_pki, "server.pem"), old_sn, sizeof old_sn);
    file_serial(ts_pki_path(ts_rig_pki, "rsa2048.pem"), new_sn, sizeof new_sn);
    client a;
    ck_assert_int_eq(client_open(&a, r.tls_port, NULL, NULL, NULL), 0);
    client_peer_serial(&a, seen, sizeof seen);
    ck_assert_str_eq(seen, old_sn);
    ck_assert(client_ask(&a, 1, "before.example"));

    /* Key first, then certificate: in between they do not match, which may
     * be seen (and refused) if the watcher fires between the renames. */
    copy_file(ts_pki_path(ts_rig_pki, "rsa2048-key.pem"), rig_path(&r, "tls.key"));
    copy_file(ts_pki_path(ts_rig_pki, "rsa2048.pem"), rig_path(&r, "tls.crt"));
    int64_t end = ts_now_ms() + WAIT_MS;
    do {
        client b;
        ck_assert_int_eq(client_open(&b, r.tls_port, NULL, NULL, NULL), 0);
        client_peer_serial(&b, seen, sizeof seen);
        if (strcmp(seen, new_sn) == 0)
            ck_assert(client_ask(&b, 2, "new.example"));
        client_close(&b);
        if (strcmp(seen, new_sn) != 0)
            poll(NULL, 0, 20);
    } while (strcmp(seen, new_sn) != 0 && ts_now_ms() < end);
    ck_assert_str_eq(seen, new_sn);
    /* The connection made under the old certificate goes on. */
    ck_assert(client_ask(&a, 3, "after.example"));
    client_close(&a);
    ck_assert_uint_ge(dotproxy_ctx_counter(r.p.ctx, DOTPROXY_CTR_TLS_CERT_LOADS), 2);
    rig_down(&r);
}
END_TEST

START_TEST(test_tls_listener_keeps_the_old_material_when_the_new_files_are_broken)
{
    rig r;
    rig_start(&r, rig_config(&r, NULL));
    char old_sn[64], seen[64];
    file_serial(ts_pki_path(ts_rig_pki, "server.pem"), old_sn, sizeof old_sn);
    write_text(rig_path(&r, "tls.crt"), "-----BEGIN CERTIFICATE-----\nnot base64\n");
    ck_assert_uint_ge(wait_ctr(&r, DOTPROXY_CTR_TLS_CERT_LOAD_FAILURES, 1), 1);
    client c;
    ck_assert_int_eq(client_open(&c, r.tls_port, NULL, NULL, NULL), 0);
    client_peer_serial(&c, seen, sizeof seen);
    ck_assert_str_eq(seen, old_sn);
    ck_assert(client_ask(&c, 1, "still.example"));
    client_close(&c);
    /* A certificate whose key is not the one beside it: refused too. */
    uint64_t failures = dotproxy_ctx_counter(r.p.ctx, DOTPROXY_CTR_TLS_CERT_LOAD_FAILURES);
    copy_file(ts_pki_path(ts_rig_pki, "rsa2048.pem"), rig_path(&r, "tls.crt"));
    ck_assert_uint_ge(wait_ctr(&r, DOTPROXY_CTR_TLS_CERT_LOAD_FAILURES, failures + 1),
                      failures + 1);
    ck_assert_int_eq(client_open(&c, r.tls_port, NULL, NULL, NULL), 0);
    client_peer_serial(&c, seen, sizeof seen);
    ck_assert_str_eq(seen, old_sn);
    client_close(&c);
    rig_down(&r);
}
END_TEST

START_TEST(test_tls_listener_reload_loads_a_new_certificate_path)
{
    rig r;
    dotproxy_config *cfg = rig_config(&r, NULL);
    dotproxy_config *next = NULL;
    ck_assert_int_eq(dotproxy_config_dup(&next, cfg), 0);
    rig_start(&r, cfg);
    client a;
    ck_assert_int_eq(client_open(&a, r.tls_port, NULL, NULL, NULL), 0);
    ck_assert(client_ask(&a, 1, "a.example"));
    char new_sn[64], seen[64];
    file_serial(ts_pki_path(ts_rig_pki, "rsa2048.pem"), new_sn, sizeof new_sn);
    ck_assert_int_eq(dotproxy_config_set_tls_cert(next, ts_pki_path(ts_rig_pki, "rsa2048.pem")), 0);
    ck_assert_int_eq(dotproxy_config_set_tls_key(next, ts_pki_path(ts_rig_pki, "rsa2048-key.pem")),
                     0);
    ck_assert_int_eq(dotproxy_ctx_reload(r.p.ctx, next), 0);
    dotproxy_config_free(next);
    ck_assert_uint_eq(wait_ctr(&r, DOTPROXY_CTR_RELOADS, 1), 1);
    client b;
    ck_assert_int_eq(client_open(&b, r.tls_port, NULL, NULL, NULL), 0);
    client_peer_serial(&b, seen, sizeof seen);
    ck_assert_str_eq(seen, new_sn);
    ck_assert(client_ask(&b, 2, "b.example"));
    ck_assert(client_ask(&a, 3, "c.example"));
    client_close(&a);
    client_close(&b);
    rig_down(&r);
}
END_TEST

/* ---- towards upstreams ---- */

START_TEST(test_tls_listener_presents_the_upstream_client_certificate)
{
    ts_dotserver_opts so = {.client_ca_file = ts_pki_path(ts_rig_pki, "ca.pem")};
    rig r;
    dotproxy_config *cfg = rig_config(&r, &so);
    dotproxy_config *with = NULL;
    ck_assert_int_eq(dotproxy_config_dup(&with, cfg), 0);
    ck_assert_int_eq(dotproxy_config_set_timeout_ms(cfg, 1000), 0);
    rig_start(&r, cfg);
    /* Without a client certificate the upstream refuses us: SERVFAIL. */
    client c;
    ck_assert_int_eq(client_open(&c, r.tls_port, NULL, NULL, NULL), 0);
    uint8_t q[512], a[1024];
    int n = ts_dns_build_query(q, sizeof q, 5, "mutual.example", 1, 0);
    client_send(&c, q, (size_t)n);
    int m = client_recv(&c, a, sizeof a);
    ck_assert_int_gt(m, 0);
    ck_assert_int_eq(ts_dns_rcode(a, (size_t)m), 2);
    ck_assert_uint_eq(ts_dotserver_handshakes(r.srv), 0);
    /* With one, answers. */
    ck_assert_int_eq(
        dotproxy_config_set_upstream_cert(with, ts_pki_path(ts_rig_pki, "client-dns.pem")), 0);
    ck_assert_int_eq(
        dotproxy_config_set_upstream_key(with, ts_pki_path(ts_rig_pki, "client-dns-key.pem")), 0);
    ck_assert_int_eq(dotproxy_ctx_reload(r.p.ctx, with), 0);
    dotproxy_config_free(with);
    ck_assert_uint_eq(wait_ctr(&r, DOTPROXY_CTR_RELOADS, 1), 1);
    int64_t end = ts_now_ms() + WAIT_MS;
    int ok = 0;
    for (uint16_t id = 10; !ok && ts_now_ms() < end; id++) {
        n = ts_dns_build_query(q, sizeof q, id, "mutual.example", 1, 0);
        client_send(&c, q, (size_t)n);
        m = client_recv(&c, a, sizeof a);
        ck_assert_int_gt(m, 0);
        ok = ts_dns_rcode(a, (size_t)m) == 0;
    }
    ck_assert(ok);
    ck_assert_uint_ge(ts_dotserver_handshakes(r.srv), 1);
    client_close(&c);
    rig_down(&r);
}
END_TEST

START_TEST(test_tls_listener_needs_a_certificate_and_a_key)
{
    uint16_t up = 853; /* never reached: the context is never made */
    dotproxy_config *cfg = ts_rig_config(&up, 1);
    dotproxy_ctx *ctx = NULL;
    ck_assert_int_eq(dotproxy_config_add_listen_tls(cfg, "127.0.0.1@0"), 0);
    ck_assert_int_eq(dotproxy_ctx_new(&ctx, cfg), DOTPROXY_EINVAL);
    ck_assert_int_eq(dotproxy_config_set_tls_cert(cfg, ts_pki_path(ts_rig_pki, "server.pem")), 0);
    ck_assert_int_eq(dotproxy_ctx_new(&ctx, cfg), DOTPROXY_EINVAL);
    /* A key that is not the certificate's. */
    ck_assert_int_eq(dotproxy_config_set_tls_key(cfg, ts_pki_path(ts_rig_pki, "ca-key.pem")), 0);
    ck_assert_int_eq(dotproxy_ctx_new(&ctx, cfg), DOTPROXY_ETLS);
    ck_assert_int_eq(dotproxy_config_set_tls_key(cfg, ts_pki_path(ts_rig_pki, "server-key.pem")),
                     0);
    ck_assert_int_eq(dotproxy_ctx_new(&ctx, cfg), 0);
    ck_assert_int_gt(dotproxy_ctx_listen_tls_port(ctx, 0), 0);
    ck_assert_int_eq(dotproxy_ctx_listen_tls_port(ctx, 1), DOTPROXY_EINVAL);
    dotproxy_ctx_free(ctx);
    dotproxy_config_free(cfg);
}
END_TEST

static Suite *tls_listener_suite(void)
{
    Suite *s = suite_create("tls_listener");
    TCase *tc = tcase_create("listener");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_tls_listener_answers_pipelined_queries_out_of_order);
    tcase_add_test(tc, test_tls_listener_pads_answers_to_padded_queries_and_announces_keepalive);
    tcase_add_test(tc, test_tls_listener_closes_idle_clients_and_stalled_handshakes);
    tcase_add_test(tc, test_tls_listener_resumes_sessions_with_tickets);
    tcase_add_test(tc, test_tls_listener_needs_a_certificate_and_a_key);
    suite_add_tcase(s, tc);
    tc = tcase_create("mtls");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_tls_listener_mutual_tls_accepts_only_the_client_ca);
    tcase_add_test(tc, test_tls_listener_mutual_tls_matches_a_dns_san);
    tcase_add_test(tc, test_tls_listener_mutual_tls_matches_a_spiffe_uri_san);
    tcase_add_test(tc, test_tls_listener_mutual_tls_matches_an_ip_san);
    suite_add_tcase(s, tc);
    tc = tcase_create("rotation");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_tls_listener_rotates_on_file_change_keeping_open_connections);
    tcase_add_test(tc, test_tls_listener_keeps_the_old_material_when_the_new_files_are_broken);
    tcase_add_test(tc, test_tls_listener_reload_loads_a_new_certificate_path);
    suite_add_tcase(s, tc);
    tc = tcase_create("upstream");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_tls_listener_presents_the_upstream_client_certificate);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    if (ts_rig_pki_init("dotproxy-test-tls-listener") != 0)
        return EXIT_FAILURE;
    SRunner *sr = srunner_create(tls_listener_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    char cmd[PATH_MAX + 16];
    /* The rigs' subdirectories first, then the PKI. */
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", ts_rig_pki);
    if (system(cmd) != 0)
        ts_rig_pki_fini();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
