/* SPDX-License-Identifier: MIT */
/* Unit tests of lib/rpz.c: the master-file parser ($ORIGIN, $TTL, '@',
 * parentheses, comments, quoted strings, strict and lenient loads), every
 * trigger (QNAME exact and wildcard, rpz-client-ip, rpz-ip, IPv4 and IPv6
 * with zz) and action (NXDOMAIN, NODATA, PASSTHRU, DROP, TCP-ONLY, local
 * data), the precedence inside a zone, and the local-data answers on the
 * wire. Zones are written inline; one test reads a file. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "dotproxy/error.h"
#include "rpz.h"

/* Counting allocations on the match path: the executable's malloc family
 * interposes glibc's (not under ASan, which brings its own). */
#if defined(__GLIBC__) && !defined(__SANITIZE_ADDRESS__) && !defined(__clang__)
#define COUNT_ALLOCS 1
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
static unsigned long n_allocs;
void *malloc(size_t n)
{
    n_allocs++;
    return __libc_malloc(n);
}
void *calloc(size_t a, size_t b)
{
    n_allocs++;
    return __libc_calloc(a, b);
}
void *realloc(void *p, size_t n)
{
    n_allocs++;
    return __libc_realloc(p, n);
}
#endif

/* "www.Example.com" -> wire form (no escapes in test names). */
static const uint8_t *wire(const char *name)
{
    static uint8_t buf[4][256];
    static int which;
    uint8_t *w = buf[which++ & 3];
    size_t o = 0;
    const char *s = name;
    if (strcmp(name, ".") == 0 || name[0] == '\0') {
        w[0] = 0;
        return w;
    }
    while (*s) {
        const char *dot = strchr(s, '.');
        size_t l = dot ? (size_t)(dot - s) : strlen(s);
        w[o++] = (uint8_t)l;
        memcpy(w + o, s, l);
        o += l;
        s += l;
        if (*s == '.')
            s++;
    }
    w[o] = 0;
    return w;
}

static struct dp_rpz *load(const char *text, int strict, struct dp_rpz_diag *d)
{
    struct dp_rpz *z = NULL;
    struct dp_rpz_diag local;
    int rc = dp_rpz_load_mem(&z, "test.rpz", text, strlen(text), strict, d ? d : &local);
    ck_assert_msg(rc == 0, "load failed: %d %s", rc, d ? d->error : local.error);
    ck_assert_ptr_nonnull(z);
    return z;
}

static const char HEAD[] = "$TTL 300\n"
                           "$ORIGIN rpz.example.\n"
                           "@ IN SOA ns.rpz.example. admin.rpz.example. 1 3600 600 86400 60\n"
                           "  IN NS ns.rpz.example.\n";

static struct dp_rpz *zone(const char *body)
{
    static char buf[65536];
    snprintf(buf, sizeof buf, "%s%s", HEAD, body);
    return load(buf, 1, NULL);
}

/* -1 when nothing matches, else the action. */
static int qaction(const struct dp_rpz *z, const char *name, char *rule)
{
    struct dp_rpz_hit h;
    if (!dp_rpz_match_qname(z, wire(name), &h))
        return -1;
    ck_assert_int_eq(h.trigger, DP_RPZ_QNAME);
    if (rule)
        snprintf(rule, 256, "%s", h.rule_text);
    return (int)h.action;
}

static struct sockaddr_storage sa(const char *lit)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *in = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, lit, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
    } else {
        ck_assert_int_eq(inet_pton(AF_INET6, lit, &in6->sin6_addr), 1);
        in6->sin6_family = AF_INET6;
    }
    return ss;
}

static int client(const struct dp_rpz *z, const char *lit, char *rule)
{
    struct sockaddr_storage ss = sa(lit);
    struct dp_rpz_hit h;
    if (!dp_rpz_match_client(z, (const struct sockaddr *)&ss, &h))
        return -1;
    ck_assert_int_eq(h.trigger, DP_RPZ_CLIENT_IP);
    if (rule)
        snprintf(rule, 256, "%s", h.rule_text);
    return (int)h.action;
}

static int respip(const struct dp_rpz *z, const char *lit, char *rule)
{
    uint8_t a[16];
    int fam = strchr(lit, ':') ? AF_INET6 : AF_INET;
    ck_assert_int_eq(inet_pton(fam, lit, a), 1);
    struct dp_rpz_hit h;
    if (!dp_rpz_match_ip(z, fam, a, &h))
        return -1;
    ck_assert_int_eq(h.trigger, DP_RPZ_IP);
    if (rule)
        snprintf(rule, 256, "%s", h.rule_text);
    return (int)h.action;
}

START_TEST(test_rpz_cname_targets_encode_the_five_actions)
{
    struct dp_rpz *z = zone("nx.example CNAME .\n"
                            "nodata.example CNAME *.\n"
                            "pass.example CNAME rpz-passthru.\n"
                            "drop.example CNAME rpz-drop.\n"
                            "tcp.example CNAME rpz-tcp-only.\n"
                            "self.example CNAME self.example.\n"
                            "garden.example CNAME walled.garden.\n");
    ck_assert_int_eq(qaction(z, "nx.example", NULL), DP_RPZ_NXDOMAIN);
    ck_assert_int_eq(qaction(z, "nodata.example", NULL), DP_RPZ_NODATA);
    ck_assert_int_eq(qaction(z, "pass.example", NULL), DP_RPZ_PASSTHRU);
    ck_assert_int_eq(qaction(z, "drop.example", NULL), DP_RPZ_DROP);
    ck_assert_int_eq(qaction(z, "tcp.example", NULL), DP_RPZ_TCP_ONLY);
    /* the old PASSTHRU form: a CNAME to the trigger's own name */
    ck_assert_int_eq(qaction(z, "self.example", NULL), DP_RPZ_PASSTHRU);
    ck_assert_int_eq(qaction(z, "garden.example", NULL), DP_RPZ_LOCAL);
    ck_assert_int_eq(qaction(z, "other.example", NULL), -1);
    ck_assert_uint_eq(dp_rpz_rule_count(z), 7);
    ck_assert_str_eq(dp_rpz_origin(z), "rpz.example.");
    dp_rpz_free(z);
}
END_TEST

START_TEST(test_rpz_exact_owner_matches_only_itself_and_wildcard_only_below)
{
    char rule[256];
    struct dp_rpz *z = zone("exact.example CNAME .\n"
                            "*.wild.example CNAME .\n");
    ck_assert_int_eq(qaction(z, "exact.example", rule), DP_RPZ_NXDOMAIN);
    ck_assert_str_eq(rule, "exact.example");
    ck_assert_int_eq(qaction(z, "www.exact.example", NULL), -1);
    ck_assert_int_eq(qaction(z, "example", NULL), -1);
    ck_assert_int_eq(qaction(z, "wild.example", NULL), -1);
    ck_assert_int_eq(qaction(z, "a.wild.example", rule), DP_RPZ_NXDOMAIN);
    ck_assert_str_eq(rule, "*.wild.example");
    ck_assert_int_eq(qaction(z, "a.b.c.d.wild.example", NULL), DP_RPZ_NXDOMAIN);
    ck_assert_int_eq(qaction(z, "xwild.example", NULL), -1);
    ck_assert_int_eq(qaction(z, ".", NULL), -1);
    dp_rpz_free(z);
}
END_TEST

START_TEST(test_rpz_names_match_in_any_case)
{
    struct dp_rpz *z = zone("Evil.EXAMPLE CNAME .\n"
                            "*.Bad.Example CNAME *.\n");
    ck_assert_int_eq(qaction(z, "eVIL.example", NULL), DP_RPZ_NXDOMAIN);
    ck_assert_int_eq(qaction(z, "WWW.BAD.EXAMPLE", NULL), DP_RPZ_NODATA);
    dp_rpz_free(z);
    /* only ASCII letters fold: not 0xC1 (an 'A' with the top bit set), not
     * '@' or '[' next to the letters; long names fold 8 octets at a time */
    z = zone("\\193b\\064\\091.example CNAME .\n"
             "abcdefghijklmnopqrstuvwxyz.example CNAME rpz-drop.\n");
    uint8_t q[] = "\x04\xc1"
                  "B@[\x07"
                  "EXAMPLE";
    struct dp_rpz_hit h;
    ck_assert_int_eq(dp_rpz_match_qname(z, q, &h), 1);
    ck_assert_str_eq(h.rule_text, "\\193b@[.example");
    q[1] = 0xe1;
    ck_assert_int_eq(dp_rpz_match_qname(z, q, &h), 0);
    q[1] = 0xc1;
    q[3] = '`';
    ck_assert_int_eq(dp_rpz_match_qname(z, q, &h), 0);
    q[3] = '@';
    q[4] = '{';
    ck_assert_int_eq(dp_rpz_match_qname(z, q, &h), 0);
    ck_assert_int_eq(qaction(z, "ABCDEFGHIJKLMNOPQRSTUVWXYZ.Example", NULL), DP_RPZ_DROP);
    dp_rpz_free(z);
}
END_TEST

struct collected {
    char rules[8][256];
    int n, stop_after;
};

static int collect(const struct dp_rpz_hit *h, void *user)
{
    struct collected *c = user;
    ck_assert_int_lt(c->n, 8);
    snprintf(c->rules[c->n++], 256, "%s", h->rule_text);
    return c->n == c->stop_after;
}

START_TEST(test_rpz_exact_beats_wildcard_and_the_longest_wildcard_wins)
{
    char rule[256];
    struct dp_rpz *z = zone("*.example CNAME .\n"
                            "*.corp.example CNAME rpz-passthru.\n"
                            "*.lab.corp.example CNAME rpz-drop.\n"
                            "www.lab.corp.example CNAME *.\n"
                            "lab.corp.example CNAME rpz-tcp-only.\n");
    /* exact owners win over any wildcard that also covers them */
    ck_assert_int_eq(qaction(z, "www.lab.corp.example", rule), DP_RPZ_NODATA);
    ck_assert_str_eq(rule, "www.lab.corp.example");
    ck_assert_int_eq(qaction(z, "lab.corp.example", NULL), DP_RPZ_TCP_ONLY);
    /* below those, the most specific wildcard */
    ck_assert_int_eq(qaction(z, "x.www.lab.corp.example", rule), DP_RPZ_DROP);
    ck_assert_str_eq(rule, "*.lab.corp.example");
    ck_assert_int_eq(qaction(z, "x.corp.example", rule), DP_RPZ_PASSTHRU);
    ck_assert_str_eq(rule, "*.corp.example");
    ck_assert_int_eq(qaction(z, "corp.example", rule), DP_RPZ_NXDOMAIN);
    ck_assert_str_eq(rule, "*.example");
    ck_assert_int_eq(qaction(z, "example", NULL), -1);

    /* every rule that covers a name, in precedence order */
    struct dp_rpz_hit h;
    struct collected c = {.n = 0, .stop_after = 0};
    ck_assert_uint_eq(dp_rpz_match_qname_all(z, wire("WWW.lab.corp.example"), &h, collect, &c), 4);
    ck_assert_str_eq(c.rules[0], "www.lab.corp.example");
    ck_assert_str_eq(c.rules[1], "*.lab.corp.example");
    ck_assert_str_eq(c.rules[2], "*.corp.example");
    ck_assert_str_eq(c.rules[3], "*.example");
    c.n = 0;
    ck_assert_uint_eq(dp_rpz_match_qname_all(z, wire("a.b.lab.corp.example"), &h, collect, &c), 3);
    ck_assert_str_eq(c.rules[0], "*.lab.corp.example");
    c = (struct collected){.n = 0, .stop_after = 1};
    ck_assert_uint_eq(dp_rpz_match_qname_all(z, wire("www.lab.corp.example"), &h, collect, &c), 1);
    c.n = 0;
    ck_assert_uint_eq(dp_rpz_match_qname_all(z, wire("example"), &h, collect, &c), 0);
    dp_rpz_free(z);
}
END_TEST

START_TEST(test_rpz_wildcard_at_the_apex_matches_every_name)
{
    char rule[256];
    struct dp_rpz *z = zone("* CNAME .\n"
                            "ok.example CNAME rpz-passthru.\n");
    ck_assert_int_eq(qaction(z, "anything.at.all", rule), DP_RPZ_NXDOMAIN);
    ck_assert_str_eq(rule, "*");
    ck_assert_int_eq(qaction(z, "com", NULL), DP_RPZ_NXDOMAIN);
    ck_assert_int_eq(qaction(z, "ok.example", NULL), DP_RPZ_PASSTHRU);
    ck_assert_int_eq(qaction(z, ".", NULL), -1);
    dp_rpz_free(z);
}
END_TEST

START_TEST(test_rpz_client_ip_v4_longest_prefix_wins)
{
    char rule[256];
    struct dp_rpz *z = zone("24.0.2.0.192.rpz-client-ip CNAME .\n"
                            "32.2.2.0.192.rpz-client-ip CNAME rpz-passthru.\n"
                            "8.0.0.0.10.rpz-client-ip CNAME rpz-drop.\n"
                            "16.0.0.1.10.rpz-client-ip CNAME rpz-tcp-only.\n");
    ck_assert_int_eq(client(z, "192.0.2.1", rule), DP_RPZ_NXDOMAIN);
    ck_assert_str_eq(rule, "24.0.2.0.192.rpz-client-ip");
    ck_assert_int_eq(client(z, "192.0.2.2", rule), DP_RPZ_PASSTHRU);
    ck_assert_str_eq(rule, "32.2.2.0.192.rpz-client-ip");
    ck_assert_int_eq(client(z, "192.0.3.1", NULL), -1);
    ck_assert_int_eq(client(z, "10.9.9.9", NULL), DP_RPZ_DROP);
    ck_assert_int_eq(client(z, "10.1.200.3", NULL), DP_RPZ_TCP_ONLY);
    /* a v4-mapped address from a dual-stack socket is the IPv4 client */
    ck_assert_int_eq(client(z, "::ffff:192.0.2.2", NULL), DP_RPZ_PASSTHRU);
    /* client triggers are not answer-address triggers */
    ck_assert_int_eq(respip(z, "192.0.2.1", NULL), -1);
    ck_assert_int_eq(qaction(z, "32.2.2.0.192.rpz-client-ip", NULL), -1);
    ck_assert_uint_eq(dp_rpz_rule_count(z), 4);
    dp_rpz_free(z);
}
END_TEST

START_TEST(test_rpz_client_ip_v6_with_zz_and_full_form)
{
    char rule[256];
    struct dp_rpz *z = zone("128.1.zz.db8.2001.rpz-client-ip CNAME .\n"
                            "48.zz.1.db8.2001.rpz-client-ip CNAME rpz-drop.\n"
                            "64.0.0.0.0.0.2.db8.2001.rpz-client-ip CNAME rpz-passthru.\n"
                            "128.1.zz.rpz-client-ip CNAME rpz-tcp-only.\n");
    ck_assert_int_eq(client(z, "2001:db8::1", rule), DP_RPZ_NXDOMAIN);
    ck_assert_str_eq(rule, "128.1.zz.db8.2001.rpz-client-ip");
    ck_assert_int_eq(client(z, "2001:db8::2", NULL), -1);
    ck_assert_int_eq(client(z, "2001:db8:1:ffff::7", rule), DP_RPZ_DROP);
    ck_assert_str_eq(rule, "48.zz.1.db8.2001.rpz-client-ip");
    ck_assert_int_eq(client(z, "2001:db8:2:0:1:2:3:4", rule), DP_RPZ_PASSTHRU);
    /* written as eight groups, shown in the canonical zz form */
    ck_assert_str_eq(rule, "64.zz.2.db8.2001.rpz-client-ip");
    ck_assert_int_eq(client(z, "::1", NULL), DP_RPZ_TCP_ONLY);
    ck_assert_int_eq(client(z, "192.0.2.1", NULL), -1);
    dp_rpz_free(z);
}
END_TEST

START_TEST(test_rpz_response_ip_v4_and_v6)
{
    char rule[256];
    struct dp_rpz *z = zone("32.1.2.0.192.rpz-ip CNAME .\n"
                            "16.0.0.168.192.rpz-ip CNAME *.\n"
                            "64.zz.db8.2001.rpz-ip CNAME rpz-drop.\n"
                            "; a client rule for the same address does not apply to answers\n"
                            "32.9.2.0.192.rpz-client-ip CNAME .\n");
    ck_assert_int_eq(respip(z, "192.0.2.1", rule), DP_RPZ_NXDOMAIN);
    ck_assert_str_eq(rule, "32.1.2.0.192.rpz-ip");
    ck_assert_int_eq(respip(z, "192.0.2.2", NULL), -1);
    ck_assert_int_eq(respip(z, "192.168.77.1", rule), DP_RPZ_NODATA);
    ck_assert_str_eq(rule, "16.0.0.168.192.rpz-ip");
    ck_assert_int_eq(respip(z, "2001:db8::abcd", rule), DP_RPZ_DROP);
    ck_assert_str_eq(rule, "64.zz.db8.2001.rpz-ip");
    ck_assert_int_eq(respip(z, "2001:db8:0:1::1", NULL), -1);
    ck_assert_int_eq(respip(z, "192.0.2.9", NULL), -1);
    ck_assert_int_eq(client(z, "192.0.2.1", NULL), -1);
    dp_rpz_free(z);
}
END_TEST

/* Walk answer records: returns the count, checks each owner equals q. */
static int walk(const uint8_t *out, int len, const uint8_t *q, uint16_t *types, uint32_t *ttls,
                const uint8_t **rdatas, uint16_t *rdlens)
{
    size_t qlen = 1;
    while (q[qlen - 1] != 0)
        qlen += q[qlen - 1] + 1u;
    int o = 0, n = 0;
    while (o < len) {
        ck_assert_int_eq(memcmp(out + o, q, qlen), 0);
        o += (int)qlen;
        types[n] = (uint16_t)(out[o] << 8 | out[o + 1]);
        ck_assert_int_eq(out[o + 2], 0);
        ck_assert_int_eq(out[o + 3], 1);
        ttls[n] = (uint32_t)out[o + 4] << 24 | (uint32_t)out[o + 5] << 16 |
                  (uint32_t)out[o + 6] << 8 | out[o + 7];
        rdlens[n] = (uint16_t)(out[o + 8] << 8 | out[o + 9]);
        rdatas[n] = out + o + 10;
        o += 10 + rdlens[n];
        n++;
    }
    ck_assert_int_eq(o, len);
    return n;
}

START_TEST(test_rpz_local_data_answers_a_aaaa_txt_and_nodata)
{
    struct dp_rpz *z = zone("host.example 60 A 192.0.2.10\n"
                            "host.example A 192.0.2.11\n"
                            "host.example AAAA 2001:db8::10\n"
                            "host.example TXT \"blocked by policy\" \"see \\\"ops\\\"\"\n");
    struct dp_rpz_hit h;
    const uint8_t *q = wire("HOST.example");
    ck_assert_int_eq(dp_rpz_match_qname(z, q, &h), 1);
    ck_assert_int_eq(h.action, DP_RPZ_LOCAL);
    uint8_t out[512];
    uint16_t an = 99, types[8], rdl[8];
    uint32_t ttls[8];
    const uint8_t *rd[8];
    int len = dp_rpz_local_answer(z, &h, q, 1, out, sizeof out, &an);
    ck_assert_int_gt(len, 0);
    ck_assert_int_eq(an, 2);
    ck_assert_int_eq(walk(out, len, q, types, ttls, rd, rdl), 2);
    ck_assert_int_eq(types[0], 1);
    ck_assert_int_eq(ttls[0], 60);
    ck_assert_int_eq(ttls[1], 300); /* $TTL */
    ck_assert_int_eq(rdl[0], 4);
    ck_assert_int_eq(memcmp(rd[0], "\xc0\x00\x02\x0a", 4), 0);
    ck_assert_int_eq(memcmp(rd[1], "\xc0\x00\x02\x0b", 4), 0);

    len = dp_rpz_local_answer(z, &h, q, 28, out, sizeof out, &an);
    ck_assert_int_eq(an, 1);
    ck_assert_int_eq(walk(out, len, q, types, ttls, rd, rdl), 1);
    ck_assert_int_eq(rdl[0], 16);
    uint8_t v6[16];
    inet_pton(AF_INET6, "2001:db8::10", v6);
    ck_assert_int_eq(memcmp(rd[0], v6, 16), 0);

    len = dp_rpz_local_answer(z, &h, q, 16, out, sizeof out, &an);
    ck_assert_int_eq(an, 1);
    walk(out, len, q, types, ttls, rd, rdl);
    ck_assert_int_eq(rdl[0], 1 + 17 + 1 + 9);
    ck_assert_int_eq(memcmp(rd[0],
                            "\x11"
                            "blocked by policy"
                            "\x09"
                            "see \"ops\"",
                            28),
                     0);

    /* MX: no such record and no CNAME: NODATA */
    an = 7;
    ck_assert_int_eq(dp_rpz_local_answer(z, &h, q, 15, out, sizeof out, &an), 0);
    ck_assert_int_eq(an, 0);
    /* ANY: all four */
    len = dp_rpz_local_answer(z, &h, q, 255, out, sizeof out, &an);
    ck_assert_int_eq(an, 4);
    /* too small a buffer */
    ck_assert_int_eq(dp_rpz_local_answer(z, &h, q, 1, out, 20, &an), DOTPROXY_ENOSPC);
    /* a hit that is no local data */
    struct dp_rpz_hit nx = h;
    nx.action = DP_RPZ_NXDOMAIN;
    ck_assert_int_eq(dp_rpz_local_answer(z, &nx, q, 1, out, sizeof out, &an), DOTPROXY_EINVAL);
    dp_rpz_free(z);
}
END_TEST

START_TEST(test_rpz_local_cname_answers_every_type_and_wildcards_take_the_qname)
{
    struct dp_rpz *z = zone("redir.example CNAME walled.garden.\n"
                            "*.ads.example A 127.0.0.1\n"
                            "*.trk.example CNAME *.sink.example.\n"
                            "rel.example CNAME garden\n");
    struct dp_rpz_hit h;
    uint8_t out[512];
    uint16_t an, types[8], rdl[8];
    uint32_t ttls[8];
    const uint8_t *rd[8];

    const uint8_t *q = wire("redir.example");
    ck_assert_int_eq(dp_rpz_match_qname(z, q, &h), 1);
    for (uint16_t qt = 1; qt <= 28; qt += 27) {
        int len = dp_rpz_local_answer(z, &h, q, qt, out, sizeof out, &an);
        ck_assert_int_eq(an, 1);
        walk(out, len, q, types, ttls, rd, rdl);
        ck_assert_int_eq(types[0], 5);
        ck_assert_int_eq(rdl[0], 15);
        ck_assert_int_eq(memcmp(rd[0], "\x06walled\x06garden", 15), 0);
    }

    q = wire("x.y.ads.example");
    ck_assert_int_eq(dp_rpz_match_qname(z, q, &h), 1);
    ck_assert_str_eq(h.rule_text, "*.ads.example");
    int len = dp_rpz_local_answer(z, &h, q, 1, out, sizeof out, &an);
    ck_assert_int_eq(an, 1);
    walk(out, len, q, types, ttls, rd, rdl); /* owner is the qname */
    ck_assert_int_eq(memcmp(rd[0], "\x7f\x00\x00\x01", 4), 0);
    ck_assert_int_eq(dp_rpz_local_answer(z, &h, q, 28, out, sizeof out, &an), 0);
    ck_assert_int_eq(an, 0);

    /* CNAME *.sink.example. : the qname replaces the asterisk */
    q = wire("a.trk.example");
    ck_assert_int_eq(dp_rpz_match_qname(z, q, &h), 1);
    len = dp_rpz_local_answer(z, &h, q, 1, out, sizeof out, &an);
    walk(out, len, q, types, ttls, rd, rdl);
    const uint8_t want[] = "\x01"
                           "a\x03trk\x07"
                           "example\x04sink\x07"
                           "example";
    ck_assert_int_eq(rdl[0], sizeof want);
    ck_assert_int_eq(memcmp(rd[0], want, sizeof want), 0);

    /* a relative CNAME target is relative to the origin, as in any zone */
    q = wire("rel.example");
    ck_assert_int_eq(dp_rpz_match_qname(z, q, &h), 1);
    len = dp_rpz_local_answer(z, &h, q, 1, out, sizeof out, &an);
    walk(out, len, q, types, ttls, rd, rdl);
    const uint8_t want2[] = "\x06garden\x03rpz\x07"
                            "example";
    ck_assert_int_eq(rdl[0], sizeof want2);
    ck_assert_int_eq(memcmp(rd[0], want2, sizeof want2), 0);
    dp_rpz_free(z);
}
END_TEST

START_TEST(test_rpz_local_data_on_address_triggers)
{
    struct dp_rpz *z = zone("32.1.2.0.192.rpz-ip A 10.0.0.1\n"
                            "32.1.2.0.192.rpz-ip TXT \"replaced\"\n"
                            "32.7.2.0.192.rpz-client-ip AAAA ::1\n"
                            "; records of one owner spread over the file are merged\n"
                            "32.1.2.0.192.rpz-ip A 10.0.0.2\n");
    uint8_t a[4] = {192, 0, 2, 1};
    struct dp_rpz_hit h;
    ck_assert_int_eq(dp_rpz_match_ip(z, AF_INET, a, &h), 1);
    ck_assert_int_eq(h.action, DP_RPZ_LOCAL);
    uint8_t out[512];
    uint16_t an;
    const uint8_t *q = wire("www.example.org");
    ck_assert_int_gt(dp_rpz_local_answer(z, &h, q, 1, out, sizeof out, &an), 0);
    ck_assert_int_eq(an, 2);
    ck_assert_int_gt(dp_rpz_local_answer(z, &h, q, 16, out, sizeof out, &an), 0);
    ck_assert_int_eq(an, 1);
    struct sockaddr_storage c = sa("192.0.2.7");
    ck_assert_int_eq(dp_rpz_match_client(z, (const struct sockaddr *)&c, &h), 1);
    ck_assert_int_gt(dp_rpz_local_answer(z, &h, q, 28, out, sizeof out, &an), 0);
    ck_assert_int_eq(an, 1);
    ck_assert_uint_eq(dp_rpz_rule_count(z), 2);
    dp_rpz_free(z);
}
END_TEST

START_TEST(test_rpz_master_file_syntax_origin_ttl_at_parens_comments)
{
    const char *text = "; a feed with every bit of syntax\n"
                       "$TTL 1h\n"
                       "$ORIGIN Feed.Example.\n"
                       "@ IN SOA ns admin ( 2024010101 ; serial\n"
                       "                   3600 600\n"
                       "                   86400 30 )\n"
                       "   NS ns.feed.example.\n"
                       "\n"
                       "one.test CNAME . ; trailing comment\n"
                       "   IN 42 CNAME . ; the same policy again, owner inherited\n"
                       "$ORIGIN sub.feed.example.\n"
                       "two CNAME *.\n"
                       "three.test.feed.example. IN CNAME rpz-drop.\n"
                       "$TTL 2m\n"
                       "four 10 IN A 192.0.2.4\n"
                       "five IN A ( 192.0.2.5 )\n";
    struct dp_rpz_diag d;
    struct dp_rpz *z = load(text, 1, &d);
    ck_assert_str_eq(dp_rpz_origin(z), "feed.example.");
    ck_assert_uint_eq(d.skipped, 0);
    ck_assert_str_eq(d.error, "");
    char rule[256];
    ck_assert_int_eq(qaction(z, "one.test", rule), DP_RPZ_NXDOMAIN);
    ck_assert_uint_eq(dp_rpz_rule_count(z), 5);
    /* relative to the $ORIGIN in force, and an absolute owner */
    ck_assert_int_eq(qaction(z, "two.sub", rule), DP_RPZ_NODATA);
    ck_assert_str_eq(rule, "two.sub");
    ck_assert_int_eq(qaction(z, "three.test", NULL), DP_RPZ_DROP);
    struct dp_rpz_hit h;
    const uint8_t *q = wire("four.sub");
    ck_assert_int_eq(dp_rpz_match_qname(z, q, &h), 1);
    uint8_t out[256];
    uint16_t an;
    int len = dp_rpz_local_answer(z, &h, q, 1, out, sizeof out, &an);
    ck_assert_int_eq(an, 1);
    ck_assert_int_eq(len, 10 + 10 + 4);
    ck_assert_int_eq(out[10 + 7], 10); /* TTL 10 */
    q = wire("five.sub");
    ck_assert_int_eq(dp_rpz_match_qname(z, q, &h), 1);
    len = dp_rpz_local_answer(z, &h, q, 1, out, sizeof out, &an);
    ck_assert_int_eq(an, 1);
    ck_assert_int_eq(out[10 + 6], 0);
    ck_assert_int_eq(out[10 + 7], 120); /* $TTL 2m */
    ck_assert_int_eq(memcmp(out + 10 + 10, "\xc0\x00\x02\x05", 4), 0);
    dp_rpz_free(z);
}
END_TEST

START_TEST(test_rpz_inherited_owner_and_its_own_ttl)
{
    const char *text = "$ORIGIN rpz.test.\n"
                       "@ 300 SOA ns admin 1 2 3 4 5\n"
                       "one.test A 192.0.2.1\n"
                       "   IN 42 TXT \"same owner\"\n";
    struct dp_rpz *z = load(text, 1, NULL);
    struct dp_rpz_hit h;
    const uint8_t *q = wire("one.test");
    ck_assert_int_eq(dp_rpz_match_qname(z, q, &h), 1);
    uint8_t out[256];
    uint16_t an;
    int len = dp_rpz_local_answer(z, &h, q, 16, out, sizeof out, &an);
    ck_assert_int_eq(an, 1);
    ck_assert_int_gt(len, 10);
    ck_assert_int_eq(out[10 + 7], 42);
    len = dp_rpz_local_answer(z, &h, q, 1, out, sizeof out, &an);
    ck_assert_int_eq(out[10 + 7], 44); /* 300 = 0x012c: the last TTL used */
    ck_assert_int_eq(out[10 + 6], 1);
    ck_assert_int_eq(dp_rpz_rule_count(z), 1);
    dp_rpz_free(z);
}
END_TEST

START_TEST(test_rpz_feed_without_origin_reads_names_from_the_root)
{
    /* As feeds are shipped for BIND: no $ORIGIN, the zone name is in the
     * server's configuration. Relative names then read from the root. */
    const char *text = "$TTL 300\n"
                       "@ SOA localhost. root.localhost. 1 43200 3600 86400 300\n"
                       "  NS localhost.\n"
                       "evil.example CNAME .\n"
                       "*.evil.example CNAME .\n";
    struct dp_rpz *z = load(text, 1, NULL);
    ck_assert_str_eq(dp_rpz_origin(z), ".");
    ck_assert_int_eq(qaction(z, "evil.example", NULL), DP_RPZ_NXDOMAIN);
    ck_assert_int_eq(qaction(z, "www.evil.example", NULL), DP_RPZ_NXDOMAIN);
    dp_rpz_free(z);

    /* an origin given by the caller plays the $ORIGIN */
    struct dp_rpz_diag d;
    ck_assert_int_eq(dp_rpz_load_mem_origin(&z, "f", text, strlen(text), "rpz.local", 1, &d), 0);
    ck_assert_str_eq(dp_rpz_origin(z), "rpz.local.");
    ck_assert_int_eq(qaction(z, "evil.example", NULL), DP_RPZ_NXDOMAIN);
    dp_rpz_free(z);
}
END_TEST

START_TEST(test_rpz_strict_load_names_file_and_line_of_the_first_error)
{
    const char *bad[][2] = {
        {"ok.example CNAME .\nbad.example A 999.1.1.1\n", "test.rpz:6: bad A address"},
        {"x.example IN BOGUS 1\n", "test.rpz:5: unknown type 'BOGUS'"},
        {"x.example CH A 1.2.3.4\n", "test.rpz:5: class 'CH' is not IN"},
        {"a..b CNAME .\n", "test.rpz:5: empty label"},
        {"x.example TXT \"open\n", "test.rpz:5: unterminated"},
        {"x.example A ( 1.2.3.4\n", "test.rpz:5: '(' not closed"},
        {"evil.other. CNAME .\n", "test.rpz:5: owner is outside the zone rpz.example."},
        {"33.1.2.0.192.rpz-ip CNAME .\n", "test.rpz:5: "},
        {"24.1.2.0.192.rpz-ip CNAME .\n", "test.rpz:5: address trigger has bits set"},
        {"128.1.zz.2.zz.rpz-ip CNAME .\n", "test.rpz:5: two 'zz'"},
        {"64.1.2.3.rpz-client-ip CNAME .\n", "test.rpz:5: IPv6 address trigger needs 8"},
        {"x.example CNAME .\nx.example A 1.2.3.4\n", "test.rpz:6: conflicting rules"},
        {"x.example A 1.2.3.4\n\n x.example CNAME y.\n", "test.rpz:"},
        {"x.example CNAME a.\nx.example A 1.2.3.4\n", "test.rpz:6: CNAME and other data"},
        {"$INCLUDE other.zone\n", "test.rpz:5: $INCLUDE is not supported"},
        {"x.example MX 10\n", "test.rpz:5: MX needs"},
        {"sub SOA a b 1 2 3 4 5\n", "test.rpz:5: SOA below the zone apex"},
        {"sub SOA \\# 1 00\n", "test.rpz:5: SOA rdata too short"},
        {"x.example TYPE65000 \\# 2 abc\n", "test.rpz:5: \\# rdata length"},
        {"32.1.2.0.192.rpz-ip CNAME .\n32.1.2.0.192.rpz-ip CNAME rpz-drop.\n",
         "test.rpz:6: conflicting"},
    };
    static char buf[4096];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(buf, sizeof buf, "%s%s", HEAD, bad[i][0]);
        struct dp_rpz *z = (struct dp_rpz *)(uintptr_t)1;
        struct dp_rpz_diag d;
        int rc = dp_rpz_load_mem(&z, "test.rpz", buf, strlen(buf), 1, &d);
        ck_assert_msg(rc == DOTPROXY_EMALFORMED, "case %zu: rc %d", i, rc);
        ck_assert_ptr_eq(z, (struct dp_rpz *)(uintptr_t)1); /* untouched */
        ck_assert_msg(strncmp(d.error, bad[i][1], strlen(bad[i][1])) == 0,
                      "case %zu: error '%s', wanted '%s...'", i, d.error, bad[i][1]);
        /* lenient: the same text loads, the bad record skipped and counted */
        rc = dp_rpz_load_mem(&z, "test.rpz", buf, strlen(buf), 0, &d);
        ck_assert_msg(rc == 0, "case %zu lenient: %d", i, rc);
        ck_assert_msg(d.skipped >= 1, "case %zu: nothing skipped", i);
        ck_assert_msg(strncmp(d.error, bad[i][1], strlen(bad[i][1])) == 0,
                      "case %zu lenient: error '%s'", i, d.error);
        dp_rpz_free(z);
    }
}
END_TEST

START_TEST(test_rpz_lenient_load_keeps_the_good_records_around_bad_ones)
{
    struct dp_rpz_diag d;
    struct dp_rpz *z = zone(""); /* the header alone is a valid empty zone */
    ck_assert_uint_eq(dp_rpz_rule_count(z), 0);
    dp_rpz_free(z);
    static char buf[4096];
    snprintf(buf, sizeof buf,
             "%sa.example CNAME .\n"
             "b.example A not-an-address\n"
             "c.example TXT \"unterminated\n"
             "d.example CNAME rpz-drop.\n"
             "e.example FOO bar\n"
             "f.example A ( 192.0.2.1\n",
             HEAD);
    z = load(buf, 0, &d);
    ck_assert_uint_eq(d.skipped, 4);
    ck_assert_str_eq(d.error, "test.rpz:6: bad A address 'not-an-address'");
    ck_assert_int_eq(qaction(z, "a.example", NULL), DP_RPZ_NXDOMAIN);
    ck_assert_int_eq(qaction(z, "d.example", NULL), DP_RPZ_DROP);
    ck_assert_int_eq(qaction(z, "b.example", NULL), -1);
    ck_assert_uint_eq(dp_rpz_rule_count(z), 2);
    dp_rpz_free(z);
}
END_TEST

START_TEST(test_rpz_nsdname_and_nsip_are_recognised_and_ignored)
{
    struct dp_rpz_diag d;
    static char buf[4096];
    snprintf(buf, sizeof buf,
             "%sns.evil.example.rpz-nsdname CNAME .\n"
             "32.1.2.0.192.rpz-nsip CNAME .\n"
             "ok.example CNAME .\n",
             HEAD);
    struct dp_rpz *z = load(buf, 1, &d);
    ck_assert_int_eq(d.has_nsdname, 1);
    ck_assert_int_eq(d.has_nsip, 1);
    ck_assert_uint_eq(d.skipped, 0);
    ck_assert_uint_eq(dp_rpz_rule_count(z), 1);
    ck_assert_int_eq(qaction(z, "ns.evil.example", NULL), -1);
    ck_assert_int_eq(qaction(z, "ns.evil.example.rpz-nsdname", NULL), -1);
    ck_assert_int_eq(respip(z, "192.0.2.1", NULL), -1);
    dp_rpz_free(z);
    z = zone("x.example CNAME .\n");
    dp_rpz_free(z);
    snprintf(buf, sizeof buf, "%sx.example CNAME .\n", HEAD);
    z = load(buf, 1, &d);
    ck_assert_int_eq(d.has_nsdname, 0);
    ck_assert_int_eq(d.has_nsip, 0);
    dp_rpz_free(z);
}
END_TEST

START_TEST(test_rpz_loads_a_file_and_reports_one_it_cannot_read)
{
    char path[] = "/tmp/test_rpz_XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    const char *text = "$ORIGIN f.example.\n@ SOA a b 1 2 3 4 5\nbad.example CNAME .\nx BOGUS\n";
    ck_assert_int_eq(write(fd, text, strlen(text)), (int)strlen(text));
    close(fd);
    struct dp_rpz *z = NULL;
    struct dp_rpz_diag d;
    ck_assert_int_eq(dp_rpz_load(&z, path, 1, &d), DOTPROXY_EMALFORMED);
    char want[128];
    snprintf(want, sizeof want, "%s:4: unknown type 'BOGUS'", path);
    ck_assert_str_eq(d.error, want);
    ck_assert_int_eq(dp_rpz_load(&z, path, 0, &d), 0);
    ck_assert_int_eq(qaction(z, "bad.example", NULL), DP_RPZ_NXDOMAIN);
    dp_rpz_free(z);
    unlink(path);
    ck_assert_int_eq(dp_rpz_load(&z, path, 0, &d), DOTPROXY_ESYS);
    ck_assert_int_eq(errno, ENOENT);
    ck_assert_ptr_nonnull(strstr(d.error, path));
}
END_TEST

START_TEST(test_rpz_escapes_ttl_units_and_generic_rdata)
{
    struct dp_rpz *z = zone("we\\.ird.example 1w1d CNAME .\n"
                            "\\065bc.example TYPE65000 \\# 3 0a0B0c\n"
                            "mx.example MX 10 mail.example.\n"
                            "srv.example SRV 1 2 53 dns.example.\n");
    char rule[256];
    uint8_t q[] = "\x06we.ird\x07"
                  "example";
    struct dp_rpz_hit h;
    ck_assert_int_eq(dp_rpz_match_qname(z, q, &h), 1);
    ck_assert_str_eq(h.rule_text, "we\\.ird.example");
    ck_assert_int_eq(qaction(z, "abc.example", rule), DP_RPZ_LOCAL);
    const uint8_t *w = wire("abc.example");
    ck_assert_int_eq(dp_rpz_match_qname(z, w, &h), 1);
    uint8_t out[256];
    uint16_t an;
    int len = dp_rpz_local_answer(z, &h, w, 65000, out, sizeof out, &an);
    ck_assert_int_eq(an, 1);
    ck_assert_int_eq(len, 13 + 10 + 3);
    ck_assert_int_eq(memcmp(out + 23, "\x0a\x0b\x0c", 3), 0);
    w = wire("srv.example");
    ck_assert_int_eq(dp_rpz_match_qname(z, w, &h), 1);
    len = dp_rpz_local_answer(z, &h, w, 33, out, sizeof out, &an);
    ck_assert_int_eq(an, 1);
    ck_assert_int_eq(memcmp(out + 13 + 10,
                            "\x00\x01\x00\x02\x00\x35\x03"
                            "dns",
                            10),
                     0);
    dp_rpz_free(z);
}
END_TEST

START_TEST(test_rpz_bad_qnames_never_match_and_long_names_work)
{
    struct dp_rpz *z = zone("*.example CNAME .\n");
    uint8_t bad[300];
    memset(bad, 63, sizeof bad); /* labels running past 255 octets */
    struct dp_rpz_hit h;
    ck_assert_int_eq(dp_rpz_match_qname(z, bad, &h), 0);
    uint8_t badlab[] = "\x50"
                       "x";
    ck_assert_int_eq(dp_rpz_match_qname(z, badlab, &h), 0);
    /* 127 one-octet labels under example: the deepest legal name */
    uint8_t deep[256];
    size_t o = 0;
    while (o + 2 + 9 <= 255) {
        deep[o++] = 1;
        deep[o++] = 'a';
    }
    memcpy(deep + o,
           "\x07"
           "example",
           9);
    o += 9;
    ck_assert_int_le(o, 255);
    ck_assert_int_eq(dp_rpz_match_qname(z, deep, &h), 1);
    dp_rpz_free(z);
}
END_TEST

START_TEST(test_rpz_many_rules_and_lookups_allocate_nothing)
{
    /* 200,000 rules of each kind; the tables grow and are trimmed. */
    size_t n = 200000, cap = n * 128 + 1024;
    char *text = malloc(cap);
    ck_assert_ptr_nonnull(text);
    size_t o = (size_t)snprintf(text, cap, "%s", HEAD);
    for (size_t i = 0; i < n; i++)
        o += (size_t)snprintf(text + o, cap - o, "h%zu.example CNAME .\n*.w%zu.example CNAME *.\n",
                              i, i);
    for (size_t i = 0; i < n; i++)
        o += (size_t)snprintf(text + o, cap - o, "32.%zu.%zu.%zu.10.rpz-ip CNAME rpz-drop.\n",
                              i & 255, (i >> 8) & 255, (i >> 16) & 255);
    struct dp_rpz_diag d;
    struct dp_rpz *z = NULL;
    ck_assert_int_eq(dp_rpz_load_mem(&z, "big", text, o, 1, &d), 0);
    free(text);
    ck_assert_uint_eq(dp_rpz_rule_count(z), 3 * n);
    ck_assert_uint_lt(dp_rpz_memory(z), 3 * n * 40);
#ifdef COUNT_ALLOCS
    ck_assert_uint_gt(n_allocs, 0); /* the counter does see the loader's */
#endif
    /* Only the calls under test are counted (snprintf and Check may
     * allocate in between, that is none of our business). */
    unsigned long in_calls = 0, mark;
#ifdef COUNT_ALLOCS
#define COUNTED(expr) (mark = n_allocs, hits += (expr), in_calls += n_allocs - mark)
#else
#define COUNTED(expr) (mark = 0, hits += (expr), in_calls += mark)
#endif
    char name[64];
    struct dp_rpz_hit h;
    size_t hits = 0;
    for (size_t i = 0; i < n; i += 7) {
        snprintf(name, sizeof name, "h%zu.example", i);
        const uint8_t *w = wire(name);
        COUNTED(dp_rpz_match_qname(z, w, &h) && h.action == DP_RPZ_NXDOMAIN);
        snprintf(name, sizeof name, "a.b.w%zu.example", i);
        w = wire(name);
        COUNTED(dp_rpz_match_qname(z, w, &h) && h.action == DP_RPZ_NODATA);
        snprintf(name, sizeof name, "w%zu.example", i);
        w = wire(name);
        COUNTED(!dp_rpz_match_qname(z, w, &h));
        uint8_t a[4] = {10, (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i};
        COUNTED(dp_rpz_match_ip(z, AF_INET, a, &h) && h.action == DP_RPZ_DROP);
    }
    ck_assert_uint_eq(in_calls, 0);
    ck_assert_uint_eq(hits, 4 * ((n + 6) / 7));
    dp_rpz_free(z);
}
END_TEST

/* ---- layers (incremental application of IXFR differences) ---- */

/* A test PRNG (xorshift64*): the runs are the same every time. */
static uint64_t lay_rng = 0x2545f4914f6cdd1dULL;
static unsigned lay_rand(unsigned n)
{
    lay_rng ^= lay_rng >> 12;
    lay_rng ^= lay_rng << 25;
    lay_rng ^= lay_rng >> 27;
    return (unsigned)((lay_rng * 0x2545f4914f6cdd1dULL) >> 33) % n;
}

/* Owners (relative to rpz.example.) with overlapping exact, wildcard and
 * address triggers. */
static const char *const LAY_OWNERS[] = {
    "a",
    "b.a",
    "c.b.a",
    "*.a",
    "*.b.a",
    "*.c.b.a",
    "x",
    "*.x",
    "y.x",
    "*",
    "d.c.b.a",
    "*.y.x",
    "z",
    "m.z",
    "*.m.z",
    "32.1.2.0.192.rpz-ip",
    "24.0.2.0.192.rpz-ip",
    "16.0.0.0.192.rpz-ip",
    "8.0.0.0.10.rpz-ip",
    "128.1.zz.db8.2001.rpz-ip",
    "64.zz.db8.2001.rpz-ip",
    "32.1.0.0.127.rpz-client-ip",
    "8.0.0.0.127.rpz-client-ip",
    "24.0.1.0.127.rpz-client-ip",
    "128.1.zz.rpz-client-ip",
};
#define LAY_N (sizeof LAY_OWNERS / sizeof LAY_OWNERS[0])

/* Records an owner may hold together (no conflict): one policy CNAME, a
 * local CNAME, or any subset of address and text data. */
static const char *const LAY_POLICY[] = {"CNAME .",
                                         "CNAME *.",
                                         "CNAME rpz-passthru.",
                                         "CNAME rpz-drop.",
                                         "CNAME rpz-tcp-only.",
                                         "CNAME garden.example.",
                                         "CNAME *.garden.example."};
static const char *const LAY_DATA[] = {"A 10.0.0.1",       "A 10.0.0.2",      "A 10.0.0.3",
                                       "AAAA 2001:db8::5", "TXT \"blocked\"", "TXT \"two\" \"x\""};
#define LAY_NP (sizeof LAY_POLICY / sizeof LAY_POLICY[0])
#define LAY_ND (sizeof LAY_DATA / sizeof LAY_DATA[0])

/* An owner's records: a policy (index + 1, 0 none) or a set of data bits. */
struct lay_owner {
    unsigned policy;
    unsigned data;
};

static size_t lay_records(const struct lay_owner *o, size_t i, char *out, size_t cap)
{
    size_t n = 0;
    if (o[i].policy != 0)
        n += (size_t)snprintf(out + n, cap - n, "%s.rpz.example. 300 IN %s\n", LAY_OWNERS[i],
                              LAY_POLICY[o[i].policy - 1]);
    for (size_t d = 0; d < LAY_ND; d++)
        if (o[i].data & (1u << d))
            n += (size_t)snprintf(out + n, cap - n, "%s.rpz.example. %u IN %s\n", LAY_OWNERS[i],
                                  (unsigned)(100 + d), LAY_DATA[d]);
    return n;
}

static struct dp_rpz *lay_full(const struct lay_owner *o)
{
    static char text[65536];
    size_t n = (size_t)snprintf(text, sizeof text,
                                "rpz.example. 60 IN SOA ns.rpz.example. admin.rpz.example. 1 3600 "
                                "600 86400 60\nrpz.example. 60 IN NS ns.rpz.example.\n");
    for (size_t i = 0; i < LAY_N; i++)
        n += lay_records(o, i, text + n, sizeof text - n);
    struct dp_rpz *z = NULL;
    struct dp_rpz_diag d;
    ck_assert_int_eq(dp_rpz_load_mem(&z, "full", text, n, 1, &d), 0);
    return z;
}

static void lay_same_hit(int r1, const struct dp_rpz_hit *h1, int r2, const struct dp_rpz_hit *h2,
                         const char *what)
{
    ck_assert_msg(r1 == r2, "%s: full %d, layered %d", what, r1, r2);
    if (!r1)
        return;
    ck_assert_msg(h1->action == h2->action && h1->trigger == h2->trigger &&
                      strcmp(h1->rule_text, h2->rule_text) == 0,
                  "%s: full %d %s, layered %d %s", what, h1->action, h1->rule_text, h2->action,
                  h2->rule_text);
}

static void lay_same_local(const struct dp_rpz *f, const struct dp_rpz_hit *hf,
                           const struct dp_rpz *l, const struct dp_rpz_hit *hl, const uint8_t *q,
                           const char *what)
{
    static const uint16_t types[] = {1, 28, 16, 5, 255, 15};
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        uint8_t o1[4096], o2[4096];
        uint16_t a1 = 0, a2 = 0;
        int n1 = dp_rpz_local_answer(f, hf, q, types[t], o1, sizeof o1, &a1);
        int n2 = dp_rpz_local_answer(l, hl, q, types[t], o2, sizeof o2, &a2);
        ck_assert_msg(n1 == n2 && a1 == a2 && (n1 <= 0 || memcmp(o1, o2, (size_t)n1) == 0),
                      "%s type %u: local data differs (%d/%u vs %d/%u)", what, types[t], n1, a1, n2,
                      a2);
    }
}

static int lay_count_cb(const struct dp_rpz_hit *h, void *user)
{
    (void)h;
    (*(int *)user)++;
    return 0;
}

static void lay_compare(const struct dp_rpz *f, const struct dp_rpz *l)
{
    static const char *const names[] = {
        "a.rpz.x",
        "a",
        "b.a",
        "q.b.a",
        "c.b.a",
        "q.c.b.a",
        "d.c.b.a",
        "e.d.c.b.a",
        "w.a",
        "x",
        "y.x",
        "q.y.x",
        "q.x",
        "other",
        "z",
        "m.z",
        "n.m.z",
        "deep.n.m.z",
        "q.z",
        "B.A",
        "Q.C.B.A",
        "rpz.example",
        "garden.example",
    };
    ck_assert_uint_eq(dp_rpz_rule_count(f), dp_rpz_rule_count(l));
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        struct dp_rpz_hit h1, h2;
        const uint8_t *q = wire(names[i]);
        int r1 = dp_rpz_match_qname(f, q, &h1);
        int r2 = dp_rpz_match_qname(l, q, &h2);
        lay_same_hit(r1, &h1, r2, &h2, names[i]);
        if (r1 && h1.action == DP_RPZ_LOCAL)
            lay_same_local(f, &h1, l, &h2, q, names[i]);
        int c1 = 0, c2 = 0;
        dp_rpz_match_qname_all(f, q, &h1, lay_count_cb, &c1);
        dp_rpz_match_qname_all(l, q, &h2, lay_count_cb, &c2);
        ck_assert_msg(c1 == c2, "%s: %d rules cover it in full, %d layered", names[i], c1, c2);
    }
    static const char *const addrs[] = {"192.0.2.1",         "192.0.2.7",   "192.0.9.9",
                                        "10.1.1.1",          "2001:db8::1", "2001:db8::2",
                                        "2001:db8:0:0:1::1", "8.8.8.8"};
    for (size_t i = 0; i < sizeof addrs / sizeof addrs[0]; i++) {
        uint8_t a[16];
        int fam = strchr(addrs[i], ':') ? AF_INET6 : AF_INET;
        ck_assert_int_eq(inet_pton(fam, addrs[i], a), 1);
        struct dp_rpz_hit h1, h2;
        int r1 = dp_rpz_match_ip(f, fam, a, &h1);
        int r2 = dp_rpz_match_ip(l, fam, a, &h2);
        lay_same_hit(r1, &h1, r2, &h2, addrs[i]);
        if (r1 && h1.action == DP_RPZ_LOCAL)
            lay_same_local(f, &h1, l, &h2, wire("q.example"), addrs[i]);
    }
    static const char *const clients[] = {"127.0.0.1", "127.0.1.9", "127.9.9.9",       "10.0.0.1",
                                          "::1",       "::2",       "::ffff:127.0.0.1"};
    for (size_t i = 0; i < sizeof clients / sizeof clients[0]; i++) {
        struct sockaddr_storage ss = sa(clients[i]);
        struct dp_rpz_hit h1, h2;
        int r1 = dp_rpz_match_client(f, (const struct sockaddr *)&ss, &h1);
        int r2 = dp_rpz_match_client(l, (const struct sockaddr *)&ss, &h2);
        lay_same_hit(r1, &h1, r2, &h2, clients[i]);
    }
}

START_TEST(test_rpz_layers_answer_as_a_whole_load_after_random_differences)
{
    struct lay_owner cur[LAY_N];
    memset(cur, 0, sizeof cur);
    for (size_t i = 0; i < LAY_N; i++) {
        if (lay_rand(3) == 0)
            cur[i].policy = 1 + lay_rand(LAY_NP);
        else if (lay_rand(2) == 0)
            cur[i].data = 1 + lay_rand((1u << LAY_ND) - 1);
    }
    struct dp_rpz *base = lay_full(cur);
    struct dp_rpz *live = base; /* what queries would see: the base, then layers */
    int touched[LAY_N] = {0};
    for (int step = 0; step < 400; step++) {
        /* One IXFR: a few owners change; a data owner may lose or gain one
         * record of an RRset, or an owner changes kind or goes. */
        unsigned nchg = 1 + lay_rand(3);
        for (unsigned c = 0; c < nchg; c++) {
            size_t i = lay_rand(LAY_N);
            touched[i] = 1;
            switch (lay_rand(4)) {
            case 0:
                cur[i].data ^= 1u << lay_rand(LAY_ND);
                cur[i].policy = 0;
                break;
            case 1:
                cur[i].policy = 1 + lay_rand(LAY_NP);
                cur[i].data = 0;
                break;
            case 2:
                cur[i].policy = 0;
                cur[i].data = 0;
                break;
            default:
                if (cur[i].policy == 0)
                    cur[i].data ^= 1u << lay_rand(LAY_ND);
            }
        }
        char text[65536], owners[4096];
        size_t tn = 0, on = 0;
        for (size_t i = 0; i < LAY_N; i++) {
            if (!touched[i])
                continue;
            tn += lay_records(cur, i, text + tn, sizeof text - tn);
            on += (size_t)snprintf(owners + on, sizeof owners - on, "%s.rpz.example.\n",
                                   LAY_OWNERS[i]);
        }
        struct dp_rpz *next = NULL;
        ck_assert_int_eq(dp_rpz_layer_new(&next, live, text, tn, owners, on, NULL), 0);
        ck_assert_uint_gt(dp_rpz_layer_size(next), 0);
        dp_rpz_free(live); /* the layer holds the base */
        live = next;
        struct dp_rpz *full = lay_full(cur);
        lay_compare(full, live);
        dp_rpz_free(full);
        if (step % 50 == 49) {
            /* A rebuild: a new base, nothing touched since. */
            dp_rpz_free(live);
            live = lay_full(cur);
            memset(touched, 0, sizeof touched);
        }
    }
    dp_rpz_free(live);
}
END_TEST

START_TEST(test_rpz_layer_refuses_a_zone_with_two_spellings_of_an_address_trigger)
{
    struct dp_rpz *base = zone("32.1.2.0.192.rpz-ip CNAME .\n"
                               "evil CNAME .\n");
    struct dp_rpz *l = NULL;
    /* canonical: layered */
    const char *t1 = "good.rpz.example. 300 IN CNAME rpz-passthru.\n";
    ck_assert_int_eq(dp_rpz_layer_new(&l, base, t1, strlen(t1), "good.rpz.example.\n",
                                      strlen("good.rpz.example.\n"), NULL),
                     0);
    ck_assert_int_eq(qaction(l, "good", NULL), DP_RPZ_PASSTHRU);
    ck_assert_int_eq(qaction(l, "evil", NULL), DP_RPZ_NXDOMAIN);
    ck_assert_uint_eq(dp_rpz_rule_count(l), 3);
    dp_rpz_free(l);
    /* 32.01.2.0.192 is 192.0.2.1/32 written another way */
    const char *t2 = "32.01.2.0.192.rpz-ip.rpz.example. 300 IN CNAME rpz-drop.\n";
    const char *o2 = "32.01.2.0.192.rpz-ip.rpz.example.\n";
    ck_assert_int_eq(dp_rpz_layer_new(&l, base, t2, strlen(t2), o2, strlen(o2), NULL),
                     DOTPROXY_ESTATE);
    dp_rpz_free(base);
}
END_TEST

static Suite *rpz_suite(void)
{
    Suite *s = suite_create("rpz");
    TCase *tc = tcase_create("rpz");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_rpz_cname_targets_encode_the_five_actions);
    tcase_add_test(tc, test_rpz_exact_owner_matches_only_itself_and_wildcard_only_below);
    tcase_add_test(tc, test_rpz_names_match_in_any_case);
    tcase_add_test(tc, test_rpz_exact_beats_wildcard_and_the_longest_wildcard_wins);
    tcase_add_test(tc, test_rpz_wildcard_at_the_apex_matches_every_name);
    tcase_add_test(tc, test_rpz_client_ip_v4_longest_prefix_wins);
    tcase_add_test(tc, test_rpz_client_ip_v6_with_zz_and_full_form);
    tcase_add_test(tc, test_rpz_response_ip_v4_and_v6);
    tcase_add_test(tc, test_rpz_local_data_answers_a_aaaa_txt_and_nodata);
    tcase_add_test(tc, test_rpz_local_cname_answers_every_type_and_wildcards_take_the_qname);
    tcase_add_test(tc, test_rpz_local_data_on_address_triggers);
    tcase_add_test(tc, test_rpz_master_file_syntax_origin_ttl_at_parens_comments);
    tcase_add_test(tc, test_rpz_inherited_owner_and_its_own_ttl);
    tcase_add_test(tc, test_rpz_feed_without_origin_reads_names_from_the_root);
    tcase_add_test(tc, test_rpz_strict_load_names_file_and_line_of_the_first_error);
    tcase_add_test(tc, test_rpz_lenient_load_keeps_the_good_records_around_bad_ones);
    tcase_add_test(tc, test_rpz_nsdname_and_nsip_are_recognised_and_ignored);
    tcase_add_test(tc, test_rpz_loads_a_file_and_reports_one_it_cannot_read);
    tcase_add_test(tc, test_rpz_escapes_ttl_units_and_generic_rdata);
    tcase_add_test(tc, test_rpz_bad_qnames_never_match_and_long_names_work);
    tcase_add_test(tc, test_rpz_many_rules_and_lookups_allocate_nothing);
    tcase_add_test(tc, test_rpz_layers_answer_as_a_whole_load_after_random_differences);
    tcase_add_test(tc, test_rpz_layer_refuses_a_zone_with_two_spellings_of_an_address_trigger);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(rpz_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
