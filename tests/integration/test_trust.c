/* SPDX-License-Identifier: MIT */
/* What the proxy trusts on the upstream hop, in process: a real dotproxy_ctx
 * on loopback in front of the in-tree DoT server (tests/support/dotserver.h)
 * with a throwaway PKI made once per run (tests/support/pki.h).
 *
 * Covered (issue 11, security): SPKI pins match a key of the validated chain
 * (leaf to trust anchor), never a certificate merely appended by the server,
 * on full and resumed handshakes (RFC 7858 4.2); leaf certificates without a
 * subjectAltName (RFC 9525 6.3) or with a short key are refused and the log
 * says why; a reload re-reads the CA file's contents even when its path did
 * not change, and drops connections and session tickets made under the old
 * trust.
 *
 * Each context runs on a thread of its own (the shared rig, rig.h). Nothing
 * waits by sleeping: every wait is a poll() on a socket or a bounded loop on
 * a counter with a deadline. */
#include <check.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "dotproxy/config.h"
#include "dotproxy/dns.h"
#include "dotproxy/error.h"
#include "dotproxy/loop.h"
#include "dotproxy/proxy.h"

#include "dnsclient.h"
#include "dotserver.h"
#include "pki.h"
#include "rig.h"

/* Bound on anything that should happen promptly. */
#define WAIT_MS 5000

/* ---- files -------------------------------------------------------------------- */

/* Write ts_rig_pki/name as the concatenation of the ts_rig_pki files in parts
 * (NULL-terminated): a CA bundle, or a server's certificate chain. */
static void cat_files(const char *name, const char *const *parts)
{
    FILE *out = fopen(ts_pki_path(ts_rig_pki, name), "w");
    ck_assert_msg(out != NULL, "cannot write %s", name);
    for (; *parts != NULL; parts++) {
        gnutls_datum_t d = {NULL, 0};
        ck_assert_int_eq(gnutls_load_file(ts_pki_path(ts_rig_pki, *parts), &d), 0);
        ck_assert_uint_eq(fwrite(d.data, 1, d.size, out), d.size);
        gnutls_free(d.data);
    }
    ck_assert_int_eq(fclose(out), 0);
}

/* ---- upstreams ---------------------------------------------------------------- */

static unsigned wait_server(unsigned (*get)(const ts_dotserver *), const ts_dotserver *s,
                            unsigned want)
{
    int64_t end = ts_now_ms() + WAIT_MS;
    unsigned v;
    while ((v = get(s)) < want && ts_now_ms() < end)
        poll(NULL, 0, 2);
    return v;
}

/* ---- SPKI pins ------------------------------------------------------------------ */

/* The pin of the first certificate of ts_rig_pki/file (pki.h). */
static void spki_pin(const char *file, char *out, size_t cap)
{
    ck_assert_int_eq(ts_pki_spki_pin(ts_pki_path(ts_rig_pki, file), out, cap), 0);
}

/* ---- the proxy ------------------------------------------------------------------ */

/* A configuration listening on 127.0.0.1, port 0, with one upstream on port
 * (name dns.test) and ts_rig_pki/ca_file as its trust anchors. */
static dotproxy_config *config_one(uint16_t port, const char *ca_file)
{
    dotproxy_config *cfg = ts_rig_config(&port, 1);
    ck_assert_int_eq(dotproxy_config_set_ca_file(cfg, ts_pki_path(ts_rig_pki, ca_file)), 0);
    return cfg;
}

/* ---- queries and answers -------------------------------------------------------- */

static int udp_ask(uint16_t port, uint16_t id, const char *name, uint8_t *ans, size_t cap)
{
    uint8_t q[512];
    int qlen = ts_dns_build_query(q, sizeof q, id, name, TS_DNS_TYPE_A, 0);
    ck_assert_int_gt(qlen, 0);
    int n = ts_dns_udp_exchange(port, q, (size_t)qlen, ans, cap, WAIT_MS);
    ck_assert_msg(n > 0, "UDP query %s: %s", name, n < 0 ? strerror(-n) : "empty");
    return n;
}

static void assert_reply_to(const uint8_t *ans, int len, uint16_t id, const char *name, int rcode)
{
    ck_assert_int_ge(len, DOTPROXY_DNS_HEADER_SIZE);
    ck_assert_int_eq(ts_dns_id(ans, (size_t)len), id);
    ck_assert_msg(ts_dns_rcode(ans, (size_t)len) == rcode, "%s: rcode %d, wanted %d; log:\n%s",
                  name, ts_dns_rcode(ans, (size_t)len), rcode, ts_rig_log_text());
    char got[300];
    ck_assert_int_gt(ts_dns_qname(ans, (size_t)len, got, sizeof got), 0);
    ck_assert_str_eq(got, name);
}

/* Ask for name over UDP and check the server's A record comes back. */
static void ask_ok(uint16_t port, uint16_t id, const char *name)
{
    uint8_t ans[1024], got[4], want[4];
    int n = udp_ask(port, id, name, ans, sizeof ans);
    assert_reply_to(ans, n, id, name, TS_DNS_RCODE_NOERROR);
    ck_assert_msg(ts_dns_first_a(ans, (size_t)n, got) == 0, "no A record for %s", name);
    ck_assert_int_eq(ts_dns_expected_a(name, want), 0);
    ck_assert_mem_eq(got, want, 4);
}

static void ask_servfail(uint16_t port, uint16_t id, const char *name)
{
    uint8_t ans[1024];
    int n = udp_ask(port, id, name, ans, sizeof ans);
    assert_reply_to(ans, n, id, name, TS_DNS_RCODE_SERVFAIL);
    ck_assert_int_eq(ts_dns_ancount(ans, (size_t)n), 0);
}

/* The proxy, trusting ca_file, must refuse the server (which completes its
 * side of the handshake) before a query crosses, and log an ERR or WARN line with
 * w1 (and w2). */
static void assert_refused(ts_dotserver *srv, dotproxy_config *cfg, const char *w1, const char *w2)
{
    ts_rig r;
    ts_rig_up(&r, cfg);
    ask_servfail(r.port, 0x7001, "ReFuSeD.trust.test");
    ck_assert_uint_ge(wait_server(ts_dotserver_handshakes, srv, 1), 1);
    ck_assert_uint_ge(ts_rig_wait_ctr(&r, DOTPROXY_CTR_TLS_FAILURES, 1, WAIT_MS), 1);
    ck_assert_uint_eq(ts_rig_ctr(&r, DOTPROXY_CTR_TLS_HANDSHAKES), 0);
    ck_assert_uint_eq(ts_rig_ctr(&r, DOTPROXY_CTR_ANSWERS), 0);
    ck_assert_msg(ts_rig_log_wait(DOTPROXY_LOG_WARN, w1, w2, WAIT_MS),
                  "no ERR/WARN line with '%s'%s%s; log:\n%s", w1, w2 ? " and " : "", w2 ? w2 : "",
                  ts_rig_log_text());
    ts_rig_down(&r);
    ck_assert_uint_eq(ts_dotserver_queries(srv), 0);
}

/* ---- pins against the validated chain ------------------------------------------- */

/* Both CAs are trusted; the second one issued an attacker a certificate for
 * the real name. The attacker appends the legitimate (pinned) certificate to
 * its chain: the pinned key is in what the server sent, not in the chain
 * that validates, so the pin must refuse it. */
START_TEST(test_trust_refuses_a_pinned_certificate_appended_to_an_attackers_valid_chain)
{
    cat_files("both-ca.pem", (const char *const[]){"ca.pem", "ca2.pem", NULL});
    cat_files("attacker-chain.pem", (const char *const[]){"attacker.pem", "server.pem", NULL});
    ts_dotserver *srv = ts_rig_server_files((ts_dotserver_opts){.raw_chain = 1},
                                            "attacker-chain.pem", "attacker-key.pem");
    char pin[64];
    spki_pin("server.pem", pin, sizeof pin);
    dotproxy_config *cfg = config_one(ts_dotserver_port(srv), "both-ca.pem");
    ck_assert_int_eq(dotproxy_config_add_pin(cfg, 0, pin), 0);
    assert_refused(srv, cfg, "pin", NULL);
    ts_dotserver_stop(srv);
}
END_TEST

/* The same trust, the legitimate server: its own key is pinned, so the pin
 * check passes (the refusal above is the pin's doing, not the trust's). */
START_TEST(test_trust_answers_through_the_pinned_server_when_two_cas_are_trusted)
{
    cat_files("both-ca.pem", (const char *const[]){"ca.pem", "ca2.pem", NULL});
    ts_dotserver *srv = ts_rig_server((ts_dotserver_opts){0}, "server");
    char pin[64];
    spki_pin("server.pem", pin, sizeof pin);
    dotproxy_config *cfg = config_one(ts_dotserver_port(srv), "both-ca.pem");
    ck_assert_int_eq(dotproxy_config_add_pin(cfg, 0, pin), 0);
    ts_rig r;
    ts_rig_up(&r, cfg);
    ask_ok(r.port, 0x7101, "PiNnEd.two.ca.test");
    ck_assert_uint_eq(ts_rig_ctr(&r, DOTPROXY_CTR_TLS_FAILURES), 0);
    ts_rig_down(&r);
    ts_dotserver_stop(srv);
}
END_TEST

/* A pin on the trust anchor's key (the server does not send its CA): the
 * anchor is part of the validated chain, on the full handshake and on the
 * resumed one (where the server sends no certificate at all). */
START_TEST(test_trust_matches_a_pin_on_the_trust_anchor_on_full_and_resumed_handshakes)
{
    ts_dotserver *srv = ts_rig_server((ts_dotserver_opts){0}, "server");
    char pin[64];
    spki_pin("ca.pem", pin, sizeof pin);
    dotproxy_config *cfg = config_one(ts_dotserver_port(srv), "ca.pem");
    ck_assert_int_eq(dotproxy_config_add_pin(cfg, 0, pin), 0);
    ck_assert_int_eq(dotproxy_config_set_idle_timeout_ms(cfg, 200), 0);
    ts_rig r;
    ts_rig_up(&r, cfg);
    ask_ok(r.port, 0x7201, "FiRsT.anchor.pin.test");
    ck_assert_uint_eq(ts_rig_wait_ctr(&r, DOTPROXY_CTR_TLS_CLOSED_IDLE, 1, WAIT_MS), 1);
    ask_ok(r.port, 0x7202, "SeCoNd.anchor.pin.test");
    ck_assert_uint_eq(ts_dotserver_connections(srv), 2);
    ck_assert_uint_ge(ts_dotserver_resumed(srv), 1);
    ck_assert_uint_ge(ts_rig_ctr(&r, DOTPROXY_CTR_TLS_RESUMED), 1);
    ck_assert_uint_eq(ts_rig_ctr(&r, DOTPROXY_CTR_TLS_FAILURES), 0);
    ts_rig_down(&r);
    ts_dotserver_stop(srv);
}
END_TEST

/* A pin on a CA that is trusted but not in this server's chain refuses it. */
START_TEST(test_trust_refuses_a_pin_on_a_trusted_ca_outside_the_servers_chain)
{
    cat_files("both-ca.pem", (const char *const[]){"ca.pem", "ca2.pem", NULL});
    ts_dotserver *srv = ts_rig_server((ts_dotserver_opts){0}, "server");
    char pin[64];
    spki_pin("ca2.pem", pin, sizeof pin);
    dotproxy_config *cfg = config_one(ts_dotserver_port(srv), "both-ca.pem");
    ck_assert_int_eq(dotproxy_config_add_pin(cfg, 0, pin), 0);
    assert_refused(srv, cfg, "pin", NULL);
    ts_dotserver_stop(srv);
}
END_TEST

/* ---- what a leaf certificate must be -------------------------------------------- */

START_TEST(test_trust_refuses_a_certificate_with_a_cn_and_no_subject_alt_name)
{
    ts_dotserver *srv = ts_rig_server((ts_dotserver_opts){0}, "cnonly");
    assert_refused(srv, config_one(ts_dotserver_port(srv), "ca.pem"), "subjectAltName", NULL);
    ts_dotserver_stop(srv);
}
END_TEST

START_TEST(test_trust_refuses_an_rsa_1024_leaf)
{
    ts_dotserver *srv = ts_rig_server((ts_dotserver_opts){0}, "rsa1024");
    assert_refused(srv, config_one(ts_dotserver_port(srv), "ca.pem"), "RSA", "1024");
    ts_dotserver_stop(srv);
}
END_TEST

START_TEST(test_trust_answers_through_an_rsa_2048_leaf)
{
    ts_dotserver *srv = ts_rig_server((ts_dotserver_opts){0}, "rsa2048");
    ts_rig r;
    ts_rig_up(&r, config_one(ts_dotserver_port(srv), "ca.pem"));
    ask_ok(r.port, 0x7301, "RsA.long.enough.test");
    ck_assert_uint_eq(ts_rig_ctr(&r, DOTPROXY_CTR_TLS_FAILURES), 0);
    ts_rig_down(&r);
    ts_dotserver_stop(srv);
}
END_TEST

/* ---- the upstream certificate's notAfter, for its expiry metric ------------------ */

/* notAfter of the first certificate of ts_rig_pki/file (Unix time). */
static int64_t file_not_after(const char *file)
{
    gnutls_datum_t pem = {NULL, 0};
    gnutls_x509_crt_t crt;
    ck_assert_int_eq(gnutls_load_file(ts_pki_path(ts_rig_pki, file), &pem), 0);
    ck_assert_int_eq(gnutls_x509_crt_init(&crt), 0);
    ck_assert_int_eq(gnutls_x509_crt_import(crt, &pem, GNUTLS_X509_FMT_PEM), 0);
    int64_t t = (int64_t)gnutls_x509_crt_get_expiration_time(crt);
    gnutls_x509_crt_deinit(crt);
    gnutls_free(pem.data);
    ck_assert_int_gt(t, 0);
    return t;
}

static dotproxy_upstream_stats upstream0(const ts_rig *r)
{
    dotproxy_upstream_stats st;
    memset(&st, 0xa5, sizeof st);
    ck_assert_int_eq(dotproxy_ctx_upstream_stats_sized(r->ctx, 0, &st, sizeof st), 0);
    return st;
}

/* After a verified handshake the upstream's stats carry its leaf's notAfter
 * (the certificate file's, to the second); before any, 0. The 0.1 call,
 * which knows nothing of the field, leaves it alone. */
START_TEST(test_trust_stats_carry_the_verified_upstream_leafs_not_after)
{
    int64_t want = file_not_after("server.pem");
    ts_dotserver *srv = ts_rig_server((ts_dotserver_opts){0}, "server");
    ts_rig r;
    ts_rig_up(&r, config_one(ts_dotserver_port(srv), "ca.pem"));
    /* Read before the handshake count: with none counted after the read,
     * none had happened before it. */
    dotproxy_upstream_stats st = upstream0(&r);
    if (ts_dotserver_handshakes(srv) == 0)
        ck_assert_int_eq(st.cert_not_after, 0);

    /* The snapshot is refreshed on the context's turns (at most every
     * 100 ms): keep it turning with queries until it shows the handshake. */
    int64_t end = ts_now_ms() + WAIT_MS;
    uint16_t id = 0x7400;
    do {
        ask_ok(r.port, id++, "NoT.after.test");
        st = upstream0(&r);
        if (st.cert_not_after != 0)
            break;
        poll(NULL, 0, 120);
    } while (ts_now_ms() < end);
    ck_assert_msg(st.cert_not_after == want, "cert_not_after %lld, the certificate says %lld",
                  (long long)st.cert_not_after, (long long)want);

    dotproxy_upstream_stats old;
    memset(&old, 0x5a, sizeof old);
    ck_assert_int_eq(dotproxy_ctx_upstream_stats(r.ctx, 0, &old), 0);
    uint8_t untouched[sizeof old.cert_not_after];
    memset(untouched, 0x5a, sizeof untouched);
    ck_assert_mem_eq(&old.cert_not_after, untouched, sizeof untouched);
    ts_rig_down(&r);
    ts_dotserver_stop(srv);
}
END_TEST

/* A chain that fails the checks records nothing: the metric must not show a
 * certificate the proxy refused. */
START_TEST(test_trust_stats_have_no_not_after_for_a_refused_upstream)
{
    ts_dotserver *srv = ts_rig_server((ts_dotserver_opts){0}, "rsa1024");
    ts_rig r;
    ts_rig_up(&r, config_one(ts_dotserver_port(srv), "ca.pem"));
    ask_servfail(r.port, 0x7501, "ReFuSeD.not.after.test");
    ck_assert_uint_ge(ts_rig_wait_ctr(&r, DOTPROXY_CTR_TLS_FAILURES, 1, WAIT_MS), 1);
    /* Past a snapshot refresh (100 ms) with the failure in it. */
    poll(NULL, 0, 300);
    ask_servfail(r.port, 0x7502, "ReFuSeD.not.after.test");
    poll(NULL, 0, 300);
    ck_assert_int_eq(upstream0(&r).cert_not_after, 0);
    ck_assert_uint_eq(ts_rig_ctr(&r, DOTPROXY_CTR_TLS_HANDSHAKES), 0);
    ts_rig_down(&r);
    ts_dotserver_stop(srv);
}
END_TEST

/* ---- reload re-reads the trust --------------------------------------------------- */

/* The operator removes the server's CA from the CA file (same path) and
 * reloads with the same configuration: the next connection must verify
 * against the new contents, neither riding the old connection nor resuming
 * the old session (a resumed session sends no certificate). Putting the CA
 * back and reloading again restores service. */
START_TEST(test_trust_reload_rereads_a_changed_ca_file_and_drops_the_old_session)
{
    cat_files("reload-ca.pem", (const char *const[]){"ca.pem", NULL});
    ts_dotserver *srv = ts_rig_server((ts_dotserver_opts){0}, "server");
    uint16_t up = ts_dotserver_port(srv);
    dotproxy_config *cfg = config_one(up, "reload-ca.pem");
    ck_assert_int_eq(dotproxy_config_set_idle_timeout_ms(cfg, 300), 0);
    ts_rig r;
    ts_rig_up(&r, cfg);
    ask_ok(r.port, 0x7401, "BeFoRe.ca.removed.test");
    /* A session ticket is kept for the next connection once this one closes;
     * another query in the meantime keeps the connection open. */
    ck_assert_uint_eq(wait_server(ts_dotserver_handshakes, srv, 1), 1);

    cat_files("reload-ca.pem", (const char *const[]){"ca2.pem", NULL}); /* ca.pem removed */
    cfg = config_one(up, "reload-ca.pem");
    ck_assert_int_eq(dotproxy_config_set_idle_timeout_ms(cfg, 300), 0);
    ck_assert_int_eq(dotproxy_ctx_reload(r.ctx, cfg), 0);
    dotproxy_config_free(cfg);
    ck_assert_uint_eq(ts_rig_wait_ctr(&r, DOTPROXY_CTR_RELOADS, 1, WAIT_MS), 1);

    ask_servfail(r.port, 0x7402, "AfTeR.ca.removed.test");
    ck_assert_uint_eq(ts_dotserver_queries(srv), 1);
    ck_assert_uint_eq(ts_dotserver_resumed(srv), 0);
    ck_assert_uint_ge(ts_rig_ctr(&r, DOTPROXY_CTR_TLS_FAILURES), 1);
    ck_assert_msg(ts_rig_log_wait(DOTPROXY_LOG_WARN, "certificate", NULL, WAIT_MS),
                  "no certificate error logged:\n%s", ts_rig_log_text());

    cat_files("reload-ca.pem", (const char *const[]){"ca2.pem", "ca.pem", NULL});
    cfg = config_one(up, "reload-ca.pem");
    ck_assert_int_eq(dotproxy_ctx_reload(r.ctx, cfg), 0);
    dotproxy_config_free(cfg);
    ck_assert_uint_eq(ts_rig_wait_ctr(&r, DOTPROXY_CTR_RELOADS, 2, WAIT_MS), 2);
    /* The upstream failed a moment ago and may be backing off: ask until it
     * answers (bounded). */
    int64_t end = ts_now_ms() + WAIT_MS;
    uint16_t id = 0x7410;
    for (;;) {
        uint8_t ans[1024];
        int n = udp_ask(r.port, id, "AgAiN.ca.restored.test", ans, sizeof ans);
        if (ts_dns_rcode(ans, (size_t)n) == TS_DNS_RCODE_NOERROR || ts_now_ms() > end) {
            assert_reply_to(ans, n, id, "AgAiN.ca.restored.test", TS_DNS_RCODE_NOERROR);
            break;
        }
        id++;
        poll(NULL, 0, 50);
    }
    ts_rig_down(&r);
    ts_dotserver_stop(srv);
}
END_TEST

/* The same reload against the ticket path: the first connection closed idle,
 * so only its session ticket is left when the CA is removed. */
START_TEST(test_trust_reload_with_a_removed_ca_does_not_resume_the_old_ticket)
{
    cat_files("reload-ca.pem", (const char *const[]){"ca.pem", NULL});
    ts_dotserver *srv = ts_rig_server((ts_dotserver_opts){0}, "server");
    uint16_t up = ts_dotserver_port(srv);
    dotproxy_config *cfg = config_one(up, "reload-ca.pem");
    ck_assert_int_eq(dotproxy_config_set_idle_timeout_ms(cfg, 200), 0);
    ts_rig r;
    ts_rig_up(&r, cfg);
    ask_ok(r.port, 0x7501, "BeFoRe.ticket.test");
    ck_assert_uint_eq(ts_rig_wait_ctr(&r, DOTPROXY_CTR_TLS_CLOSED_IDLE, 1, WAIT_MS), 1);

    cat_files("reload-ca.pem", (const char *const[]){"ca2.pem", NULL});
    cfg = config_one(up, "reload-ca.pem");
    ck_assert_int_eq(dotproxy_config_set_idle_timeout_ms(cfg, 200), 0);
    ck_assert_int_eq(dotproxy_ctx_reload(r.ctx, cfg), 0);
    dotproxy_config_free(cfg);
    ck_assert_uint_eq(ts_rig_wait_ctr(&r, DOTPROXY_CTR_RELOADS, 1, WAIT_MS), 1);

    ask_servfail(r.port, 0x7502, "AfTeR.ticket.test");
    ck_assert_uint_eq(ts_dotserver_resumed(srv), 0);
    ck_assert_uint_eq(ts_dotserver_queries(srv), 1);
    ck_assert_uint_eq(ts_rig_ctr(&r, DOTPROXY_CTR_TLS_RESUMED), 0);
    ck_assert_uint_ge(ts_rig_ctr(&r, DOTPROXY_CTR_TLS_FAILURES), 1);
    ts_rig_down(&r);
    ts_dotserver_stop(srv);
}
END_TEST

/* Unchanged contents at the same path: the reload keeps the warm connection
 * (re-reading is not a reason to reconnect). */
START_TEST(test_trust_reload_with_an_unchanged_ca_file_keeps_the_warm_connection)
{
    cat_files("same-ca.pem", (const char *const[]){"ca.pem", NULL});
    ts_dotserver *srv = ts_rig_server((ts_dotserver_opts){0}, "server");
    uint16_t up = ts_dotserver_port(srv);
    ts_rig r;
    ts_rig_up(&r, config_one(up, "same-ca.pem"));
    ask_ok(r.port, 0x7601, "BeFoRe.same.ca.test");
    cat_files("same-ca.pem", (const char *const[]){"ca.pem", NULL}); /* rewritten, same bytes */
    dotproxy_config *cfg = config_one(up, "same-ca.pem");
    ck_assert_int_eq(dotproxy_ctx_reload(r.ctx, cfg), 0);
    dotproxy_config_free(cfg);
    ck_assert_uint_eq(ts_rig_wait_ctr(&r, DOTPROXY_CTR_RELOADS, 1, WAIT_MS), 1);
    ask_ok(r.port, 0x7602, "AfTeR.same.ca.test");
    ck_assert_uint_eq(ts_dotserver_connections(srv), 1);
    ck_assert_uint_eq(ts_rig_ctr(&r, DOTPROXY_CTR_TLS_CONNECTS), 1);
    ts_rig_down(&r);
    ts_dotserver_stop(srv);
}
END_TEST

static Suite *trust_suite(void)
{
    Suite *s = suite_create("trust");
    TCase *tc = tcase_create("pins");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc,
                   test_trust_refuses_a_pinned_certificate_appended_to_an_attackers_valid_chain);
    tcase_add_test(tc, test_trust_answers_through_the_pinned_server_when_two_cas_are_trusted);
    tcase_add_test(tc, test_trust_matches_a_pin_on_the_trust_anchor_on_full_and_resumed_handshakes);
    tcase_add_test(tc, test_trust_refuses_a_pin_on_a_trusted_ca_outside_the_servers_chain);
    suite_add_tcase(s, tc);

    tc = tcase_create("leaf");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_trust_refuses_a_certificate_with_a_cn_and_no_subject_alt_name);
    tcase_add_test(tc, test_trust_refuses_an_rsa_1024_leaf);
    tcase_add_test(tc, test_trust_answers_through_an_rsa_2048_leaf);
    tcase_add_test(tc, test_trust_stats_carry_the_verified_upstream_leafs_not_after);
    tcase_add_test(tc, test_trust_stats_have_no_not_after_for_a_refused_upstream);
    suite_add_tcase(s, tc);

    tc = tcase_create("reload");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_trust_reload_rereads_a_changed_ca_file_and_drops_the_old_session);
    tcase_add_test(tc, test_trust_reload_with_a_removed_ca_does_not_resume_the_old_ticket);
    tcase_add_test(tc, test_trust_reload_with_an_unchanged_ca_file_keeps_the_warm_connection);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    if (ts_rig_pki_init("dotproxy-test-trust") != 0)
        return EXIT_FAILURE;
    SRunner *sr = srunner_create(trust_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    ts_rig_pki_fini();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
