/* SPDX-License-Identifier: MIT */
/* Unit tests of the blocking engine: the list line formats (lib/blocklist.c),
 * the fingerprint name sets and their suffix semantics (lib/nameset.c), and
 * the blocker (lib/block.c): precedence, block answers on the wire, the
 * CNAME-chain check, explain, and the swap of a reload (a changed file, an
 * unreadable one). */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "block.h"
#include "blocklist.h"
#include "bytes.h"
#include "config.h"
#include "dotproxy/dotproxy.h"
#include "nameset.h"

/* ---- helpers ---- */

struct collected {
    int n, exceptions;
    char names[8][256];
};

static int collect(void *user, const uint8_t *wire, size_t len, int exception)
{
    struct collected *c = user;
    char *o = c->names[c->n++];
    size_t k = 0;
    for (size_t i = 0; wire[i] != 0;) {
        unsigned n = wire[i++];
        memcpy(o + k, wire + i, n);
        k += n;
        i += n;
        o[k++] = '.';
    }
    o[k] = '\0';
    c->exceptions += exception;
    return 0;
}

static int parse(const char *line, struct collected *c)
{
    memset(c, 0, sizeof *c);
    return dp_list_parse_line(line, strlen(line), collect, c, NULL);
}

static char tmpdir[64];

static const char *write_file(const char *name, const char *text)
{
    static char path[8][128];
    static int next;
    char *p = path[next++ % 8];
    snprintf(p, 128, "%s/%s", tmpdir, name);
    /* Rename over the old file: a new inode, as editors and feeds do, so a
     * change is seen even within one timestamp tick. */
    char tmp[140];
    snprintf(tmp, sizeof tmp, "%s.new", p);
    FILE *f = fopen(tmp, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    ck_assert_int_eq(fclose(f), 0);
    ck_assert_int_eq(rename(tmp, p), 0);
    return p;
}

static void wire_of(const char *text, uint8_t out[256])
{
    ck_assert_int_gt(dp_name_from_text(text, strlen(text), out), 0);
}

static void setup(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_block.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    ck_assert_int_eq(system(cmd), 0);
}

/* ---- names and lines ---- */

START_TEST(test_name_from_text_lowercases_and_takes_a_final_dot)
{
    uint8_t w[256];
    ck_assert_int_eq(dp_name_from_text("Ads.Example.COM.", 16, w), 17);
    ck_assert_mem_eq(w, "\3ads\7example\3com", 17);
    ck_assert_int_eq(dp_name_from_text("a_b-c", 5, w), 7);
}
END_TEST

START_TEST(test_name_from_text_refuses_what_is_no_host_name)
{
    uint8_t w[256];
    const char *bad[] = {"", ".", "a..b", ".a", "a b", "a/b", "ex*mple.com", "a\\.b", "||a^"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(dp_name_from_text(bad[i], strlen(bad[i]), w) < 0, "took '%s'", bad[i]);
    char long_label[80];
    memset(long_label, 'a', 64);
    long_label[64] = '\0';
    ck_assert_int_lt(dp_name_from_text(long_label, 64, w), 0);
    ck_assert_int_gt(dp_name_from_text(long_label, 63, w), 0);
}
END_TEST

START_TEST(test_list_line_formats_each_give_their_names)
{
    struct collected c;
    ck_assert_int_eq(parse("ads.example.com", &c), DP_LINE_NAMES);
    ck_assert_str_eq(c.names[0], "ads.example.com.");
    ck_assert_int_eq(parse("0.0.0.0 track.example.net", &c), DP_LINE_NAMES);
    ck_assert_str_eq(c.names[0], "track.example.net.");
    ck_assert_int_eq(parse("127.0.0.1\tTabbed.Example\t# why", &c), DP_LINE_NAMES);
    ck_assert_str_eq(c.names[0], "tabbed.example.");
    ck_assert_int_eq(parse(":: v6.example a.example", &c), DP_LINE_NAMES);
    ck_assert_int_eq(c.n, 2);
    ck_assert_str_eq(c.names[1], "a.example.");
    ck_assert_int_eq(parse("||adblock.example^", &c), DP_LINE_NAMES);
    ck_assert_str_eq(c.names[0], "adblock.example.");
    ck_assert_int_eq(c.exceptions, 0);
    ck_assert_int_eq(parse("@@||ok.adblock.example^", &c), DP_LINE_EXCEPTION);
    ck_assert_str_eq(c.names[0], "ok.adblock.example.");
    ck_assert_int_eq(c.exceptions, 1);
    ck_assert_int_eq(parse("name.example\r", &c), DP_LINE_NAMES);
    ck_assert_str_eq(c.names[0], "name.example.");
}
END_TEST

START_TEST(test_list_comments_blanks_and_hosts_boilerplate_give_nothing)
{
    struct collected c;
    const char *empty[] = {"",
                           "   ",
                           "\t\r",
                           "# a comment",
                           "! adblock comment",
                           "  # indented",
                           "127.0.0.1 localhost",
                           "::1 localhost ip6-localhost",
                           "0.0.0.0 0.0.0.0"};
    for (size_t i = 0; i < sizeof empty / sizeof empty[0]; i++) {
        ck_assert_msg(parse(empty[i], &c) == DP_LINE_EMPTY, "'%s' not empty", empty[i]);
        ck_assert_int_eq(c.n, 0);
    }
}
END_TEST

START_TEST(test_list_malformed_lines_are_bad_and_add_nothing)
{
    struct collected c;
    const char *bad[] = {"192.0.2.1 ads.example",  "two words",       "||ads.example^$third-party",
                         "||ads.example",          "@@ads.example",   "bad..name",
                         "0.0.0.0 ok.example b@d", "/ads/banner.gif", "fe80::1%lo0 localhost"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *why = NULL;
        memset(&c, 0, sizeof c);
        ck_assert_msg(dp_list_parse_line(bad[i], strlen(bad[i]), collect, &c, &why) == DP_LINE_BAD,
                      "'%s' accepted", bad[i]);
        ck_assert_ptr_nonnull(why);
        ck_assert_int_eq(c.n, 0);
    }
}
END_TEST

/* ---- name sets ---- */

static int match(const struct dp_nameset *s, const char *name)
{
    uint8_t w[256];
    struct dp_name_hashes h;
    wire_of(name, w);
    ck_assert_int_eq(dp_name_hashes_make(&h, w, sizeof w), 0);
    return dp_nameset_match(s, &h);
}

static void add(struct dp_nameset *s, const char *name)
{
    uint8_t w[256];
    struct dp_name_hashes h;
    wire_of(name, w);
    ck_assert_int_eq(dp_name_hashes_make(&h, w, sizeof w), 0);
    ck_assert_int_ge(dp_nameset_add(s, h.fp[0], h.n), 0);
}

START_TEST(test_nameset_matches_a_name_and_every_name_below_it_only)
{
    struct dp_nameset *s = dp_nameset_new(0);
    ck_assert_ptr_nonnull(s);
    add(s, "example.com");
    ck_assert_int_eq(match(s, "example.com"), 0);
    ck_assert_int_eq(match(s, "WWW.Example.Com"), 1); /* the rule starts at label 1 */
    ck_assert_int_eq(match(s, "a.b.c.example.com"), 3);
    ck_assert_int_eq(match(s, "com"), -1);
    ck_assert_int_eq(match(s, "notexample.com"), -1);
    ck_assert_int_eq(match(s, "example.com.evil"), -1);
    ck_assert_int_eq(match(s, "example.co"), -1);
    /* The most specific listed suffix is the one reported. */
    add(s, "www.example.com");
    ck_assert_int_eq(match(s, "a.www.example.com"), 1);
    ck_assert_uint_eq(dp_nameset_count(s), 2);
    add(s, "EXAMPLE.com"); /* the same name */
    ck_assert_uint_eq(dp_nameset_count(s), 2);
    dp_nameset_free(s);
}
END_TEST

static void add_tld(struct dp_nameset *s, const char *name)
{
    uint8_t w[256];
    struct dp_name_hashes h;
    wire_of(name, w);
    ck_assert_int_eq(dp_name_hashes_make(&h, w, sizeof w), 0);
    ck_assert_int_ge(dp_nameset_add_tld(s, h.fp[0], h.n, h.fp[h.n - 1]), 0);
}

/* Names added with their top-level domain: names under another one are
 * settled by the bitmap, and still never wrongly; one name added without it
 * makes every name go to the table again. */
START_TEST(test_nameset_top_level_domains_settle_foreign_names_and_nothing_else)
{
    struct dp_nameset *s = dp_nameset_new(0);
    ck_assert_ptr_nonnull(s);
    add_tld(s, "example.com");
    add_tld(s, "tracker.net");
    for (int i = 0; i < 5000; i++) { /* enough for the filter */
        char name[64];
        snprintf(name, sizeof name, "host%d.zone.org", i);
        add_tld(s, name);
    }
    dp_nameset_seal(s);
    ck_assert_int_eq(match(s, "a.b.example.com"), 2);
    ck_assert_int_eq(match(s, "TRACKER.NET"), 0);
    ck_assert_int_eq(match(s, "www.host4999.zone.org"), 1);
    ck_assert_int_eq(match(s, "example.com.zz"), -1);
    ck_assert_int_eq(match(s, "tracker.net.home.arpa"), -1);
    ck_assert_int_eq(match(s, "zone.org"), -1);
    ck_assert_int_eq(match(s, "com"), -1);
    dp_nameset_free(s);

    s = dp_nameset_new(0);
    ck_assert_ptr_nonnull(s);
    add_tld(s, "example.com");
    add(s, "example.test"); /* no top-level domain given */
    ck_assert_int_eq(match(s, "www.example.test"), 1);
    ck_assert_int_eq(match(s, "www.example.com"), 1);
    ck_assert_int_eq(match(s, "www.example.org"), -1);
    dp_nameset_free(s);
}
END_TEST

START_TEST(test_nameset_grows_and_finds_every_name_of_a_large_list)
{
    struct dp_nameset *s = dp_nameset_new(16); /* far too small: it must grow */
    char name[64];
    for (int i = 0; i < 200000; i++) {
        snprintf(name, sizeof name, "host%d.zone%d.test", i, i % 97);
        add(s, name);
    }
    dp_nameset_seal(s);
    ck_assert_uint_eq(dp_nameset_count(s), 200000);
    /* 8 octets a slot at load 3/4 at most, 1 to 2 of filter: under 24. */
    ck_assert_uint_le(dp_nameset_bytes(s), 200000u * 24u);
    for (int i = 0; i < 200000; i += 7) {
        snprintf(name, sizeof name, "www.host%d.zone%d.test", i, i % 97);
        ck_assert_int_eq(match(s, name), 1);
        snprintf(name, sizeof name, "host%d.zone%d.test", i + 200000, i % 97);
        ck_assert_int_eq(match(s, name), -1);
    }
    dp_nameset_free(s);
}
END_TEST

/* A label's last octets are read eight at a time when the buffer goes on
 * past them, one at a time when it ends there: the same fingerprints. */
START_TEST(test_name_hashes_do_not_depend_on_the_room_after_the_name)
{
    for (unsigned len = 1; len <= 20; len++) {
        uint8_t wire[64];
        size_t o = 0;
        wire[o++] = (uint8_t)len;
        for (unsigned i = 0; i < len; i++)
            wire[o++] = (uint8_t)((i % 2 ? 'A' : 'a') + (len + i) % 26);
        memcpy(wire + o, "\3Com\0", 5);
        o += 5;
        uint8_t *exact = malloc(o); /* nothing readable past the name */
        ck_assert_ptr_nonnull(exact);
        memcpy(exact, wire, o);
        uint8_t roomy[256] = {0};
        memcpy(roomy, wire, o);
        for (size_t i = 0; i < o; i++) /* and in lower case */
            if (roomy[i] >= 'A' && roomy[i] <= 'Z' && i != 0 && i != 1 + len)
                roomy[i] = (uint8_t)(roomy[i] + 32);
        memset(roomy + o, 'X', sizeof roomy - o); /* junk after the root label */
        struct dp_name_hashes a, b;
        ck_assert_int_eq(dp_name_hashes_make(&a, exact, o), 0);
        ck_assert_int_eq(dp_name_hashes_make(&b, roomy, sizeof roomy), 0);
        ck_assert_uint_eq(a.n, 2);
        ck_assert_uint_eq(b.n, 2);
        ck_assert_uint_eq(a.fp[0], b.fp[0]);
        ck_assert_uint_eq(a.fp[1], b.fp[1]);
        free(exact);
    }
}
END_TEST

START_TEST(test_name_hashes_refuse_malformed_wire_names)
{
    struct dp_name_hashes h;
    static const uint8_t over[] = {64, 'a'};
    static const uint8_t unterminated[] = {3, 'c', 'o', 'm'};
    ck_assert_int_lt(dp_name_hashes_make(&h, over, sizeof over), 0);
    ck_assert_int_lt(dp_name_hashes_make(&h, unterminated, sizeof unterminated), 0);
    static const uint8_t root[] = {0};
    ck_assert_int_eq(dp_name_hashes_make(&h, root, 1), 0);
    ck_assert_uint_eq(h.n, 0);
}
END_TEST

/* ---- loading files ---- */

START_TEST(test_list_load_strict_names_file_and_line_lenient_counts)
{
    const char *p = write_file("mixed.txt", "# header\nads.example\nthis is bad\n||t.example^\n");
    struct dp_list_sets s;
    char err[600];
    ck_assert_int_eq(dp_list_load(&s, p, 0, 1, err, sizeof err), DOTPROXY_EMALFORMED);
    char want[200];
    snprintf(want, sizeof want, "%s:3: ", p);
    ck_assert_msg(strncmp(err, want, strlen(want)) == 0, "err '%s'", err);
    ck_assert_int_eq(dp_list_load(&s, p, 0, 0, err, sizeof err), 0);
    ck_assert_uint_eq(s.skipped, 1);
    ck_assert_uint_eq(dp_nameset_count(s.block), 2);
    ck_assert_uint_eq(dp_nameset_count(s.allow), 0);
    dp_list_sets_clear(&s);
    char missing[128];
    snprintf(missing, sizeof missing, "%s/missing.txt", tmpdir);
    ck_assert_int_eq(dp_list_load(&s, missing, 0, 0, err, sizeof err), DOTPROXY_ESYS);
    ck_assert_ptr_nonnull(strstr(err, "missing.txt"));
}
END_TEST

/* ---- the blocker ---- */

static dotproxy_config *cfg_with(const char *block, const char *allow)
{
    dotproxy_config *cfg;
    ck_assert_int_eq(dotproxy_config_new(&cfg), 0);
    if (block != NULL)
        ck_assert_int_eq(dotproxy_config_add_blocklist(cfg, block), 0);
    if (allow != NULL)
        ck_assert_int_eq(dotproxy_config_add_allowlist(cfg, allow), 0);
    return cfg;
}

static int decide(struct dp_block_part *p, const char *name, struct dp_block_verdict *v)
{
    uint8_t w[256];
    wire_of(name, w);
    return dp_block_decide(p, w, sizeof w, NULL, v);
}

START_TEST(test_block_allowlist_beats_every_block_even_a_more_specific_one)
{
    const char *bl =
        write_file("b.txt", "example.com\nads.ok.example.net\n@@||fine.example.com^\n");
    const char *al = write_file("a.txt", "ok.example.net\n");
    dotproxy_config *cfg = cfg_with(bl, al);
    struct dp_block_part p;
    ck_assert_int_eq(dp_block_part_init(&p, cfg, NULL, NULL), 0);
    struct dp_block_verdict v;
    ck_assert_int_eq(decide(&p, "www.example.com", &v), DP_BLOCK_ANSWER);
    ck_assert_int_eq(v.action, DOTPROXY_BLOCK_NXDOMAIN);
    ck_assert_mem_eq(v.rule, "\7example\3com", 13);
    ck_assert_int_eq(decide(&p, "x.ads.ok.example.net", &v), DP_BLOCK_ALLOWED);
    ck_assert_int_eq(decide(&p, "a.fine.example.com", &v), DP_BLOCK_ALLOWED);
    ck_assert_int_eq(decide(&p, "example.org", &v), DP_BLOCK_PASS);
    dp_block_part_fini(&p);
    dotproxy_config_free(cfg);
}
END_TEST

static size_t make_query(uint8_t *q, const char *name, uint16_t qtype, int edns)
{
    memset(q, 0, 12);
    dp_put16(q, 0xbeef);
    dp_put16(q + 2, 0x0100 | 0x0010); /* RD, CD */
    dp_put16(q + 4, 1);
    int n = dp_name_from_text(name, strlen(name), q + 12);
    ck_assert_int_gt(n, 0);
    size_t o = 12 + (size_t)n;
    dp_put16(q + o, qtype);
    dp_put16(q + o + 2, 1);
    o += 4;
    if (edns) {
        dp_put16(q + 10, 1);
        static const uint8_t opt[] = {0, 0, 41, 4, 0, 0, 0, 0, 0, 0, 0};
        memcpy(q + o, opt, sizeof opt);
        o += sizeof opt;
    }
    return o;
}

START_TEST(test_block_answers_carry_soa_ede_and_the_query_header)
{
    const char *bl = write_file("ads.txt", "ads.example\n");
    dotproxy_config *cfg = cfg_with(bl, NULL);
    ck_assert_int_eq(dotproxy_config_set_block_ttl(cfg, 300), 0);
    struct dp_block_part p;
    ck_assert_int_eq(dp_block_part_init(&p, cfg, NULL, NULL), 0);
    uint8_t q[512], out[2048];
    size_t ql = make_query(q, "www.Ads.example", 1, 1);
    size_t qend = ql - 11;
    dotproxy_dns_info info;
    ck_assert_int_eq(dotproxy_dns_parse(&info, q, ql), 0);
    struct dp_block_verdict v;
    ck_assert_int_eq(dp_block_decide(&p, q + 12, ql - 12, NULL, &v), DP_BLOCK_ANSWER);
    int n = dp_block_answer(&p, &v, q, info.question_end, 1, 1232, out, sizeof out);
    ck_assert_int_gt(n, 0);
    dotproxy_dns_info a;
    ck_assert_int_eq(dotproxy_dns_parse(&a, out, (size_t)n), 0);
    ck_assert_uint_eq(a.id, 0xbeef);
    ck_assert_uint_eq(a.flags & 0x8000u, 0x8000u); /* QR */
    ck_assert_uint_eq(a.flags & 0x0180u, 0x0180u); /* RD copied, RA set */
    ck_assert_uint_eq(a.flags & 0x0010u, 0x0010u); /* CD copied */
    ck_assert_uint_eq(a.flags & 0x000fu, 3);       /* NXDOMAIN */
    ck_assert_mem_eq(out + 12, q + 12, qend - 12); /* the question as asked (case too) */
    ck_assert_uint_eq(dp_get16(out + 6), 0);
    ck_assert_uint_eq(dp_get16(out + 8), 1);  /* the SOA */
    ck_assert_uint_eq(dp_get16(out + 10), 1); /* the OPT */
    ck_assert_uint_ne(a.opt_off, 0);
    /* SOA right after the question: owner = rule, TTL = block-ttl. */
    ck_assert_mem_eq(out + qend, "\3ads\7example\0", 13);
    ck_assert_uint_eq(dp_get16(out + qend + 13), 6);
    ck_assert_uint_eq(dp_get16(out + qend + 17), 0);
    ck_assert_uint_eq(dp_get16(out + qend + 19), 300);
    /* EDE: option 15, INFO-CODE 15, text naming file and rule. */
    const uint8_t *opt = out + a.opt_off;
    ck_assert_uint_eq(dp_get16(opt + 11), 15);
    ck_assert_uint_eq(dp_get16(opt + 15), 15);
    size_t tl = dp_get16(opt + 13) - 2u;
    char text[400];
    memcpy(text, opt + 17, tl);
    text[tl] = '\0';
    ck_assert_str_eq(text, "blocklist ads.txt: ads.example.");

    /* No EDNS from the client: no OPT back. */
    ql = make_query(q, "ads.example", 1, 0);
    ck_assert_int_eq(dotproxy_dns_parse(&info, q, ql), 0);
    ck_assert_int_eq(dp_block_decide(&p, q + 12, ql - 12, NULL, &v), DP_BLOCK_ANSWER);
    n = dp_block_answer(&p, &v, q, info.question_end, 0, 1232, out, sizeof out);
    ck_assert_int_eq(dotproxy_dns_parse(&a, out, (size_t)n), 0);
    ck_assert_uint_eq(dp_get16(out + 10), 0);
    ck_assert_uint_eq(a.opt_off, 0);
    dp_block_part_fini(&p);
    dotproxy_config_free(cfg);
}
END_TEST

START_TEST(test_block_actions_nodata_refused_and_zero)
{
    const char *bl = write_file("z.txt", "z.example\n");
    static const struct {
        int action;
        uint16_t qtype;
        unsigned rcode, an, ns;
    } cases[] = {
        {DOTPROXY_BLOCK_NODATA, 1, 0, 0, 1}, {DOTPROXY_BLOCK_REFUSED, 1, 5, 0, 0},
        {DOTPROXY_BLOCK_ZERO, 1, 0, 1, 0},   {DOTPROXY_BLOCK_ZERO, 28, 0, 1, 0},
        {DOTPROXY_BLOCK_ZERO, 16, 0, 0, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        dotproxy_config *cfg = cfg_with(bl, NULL);
        ck_assert_int_eq(dotproxy_config_set_block_action(cfg, cases[i].action), 0);
        struct dp_block_part p;
        ck_assert_int_eq(dp_block_part_init(&p, cfg, NULL, NULL), 0);
        uint8_t q[512], out[2048];
        size_t ql = make_query(q, "a.z.example", cases[i].qtype, 0);
        dotproxy_dns_info info, a;
        ck_assert_int_eq(dotproxy_dns_parse(&info, q, ql), 0);
        struct dp_block_verdict v;
        ck_assert_int_eq(dp_block_decide(&p, q + 12, ql - 12, NULL, &v), DP_BLOCK_ANSWER);
        int n = dp_block_answer(&p, &v, q, info.question_end, 0, 1232, out, sizeof out);
        ck_assert_int_eq(dotproxy_dns_parse(&a, out, (size_t)n), 0);
        ck_assert_uint_eq(a.flags & 0xfu, cases[i].rcode);
        ck_assert_uint_eq(dp_get16(out + 6), cases[i].an);
        ck_assert_uint_eq(dp_get16(out + 8), cases[i].ns);
        if (cases[i].an == 1) {
            size_t rd = info.question_end + 12;
            size_t alen = cases[i].qtype == 1 ? 4 : 16;
            ck_assert_uint_eq(dp_get16(out + rd - 2), alen);
            static const uint8_t zeros[16];
            ck_assert_mem_eq(out + rd, zeros, alen);
            ck_assert_uint_eq((size_t)n, rd + alen);
        }
        dp_block_part_fini(&p);
        dotproxy_config_free(cfg);
    }
}
END_TEST

START_TEST(test_block_cname_chain_reaching_a_blocked_name_is_caught)
{
    const char *bl = write_file("c.txt", "tracker.example\n");
    dotproxy_config *cfg = cfg_with(bl, NULL);
    struct dp_block_part p;
    ck_assert_int_eq(dp_block_part_init(&p, cfg, NULL, NULL), 0);
    /* shop.example CNAME metrics.shop.example, CNAME x.tracker.example, A */
    uint8_t m[512];
    size_t o = make_query(m, "shop.example", 1, 0);
    dp_put16(m + 2, 0x8180);
    dp_put16(m + 6, 3);
    static const uint8_t rrs[] = {
        0xc0, 12,  0,    5,   0,    1,   0,   0,   0,  60,  0,   10,  7,   'm', 'e', 't', 'r', 'i',
        'c',  's', 0xc0, 12,  0xc0, 30,  0,   5,   0,  1,   0,   0,   0,   60,  0,   19,  1,   'x',
        7,    't', 'r',  'a', 'c',  'k', 'e', 'r', 7,  'e', 'x', 'a', 'm', 'p', 'l', 'e', 0,   0xc0,
        52,   0,   1,    0,   1,    0,   0,   0,   60, 0,   4,   192, 0,   2,   1,
    };
    memcpy(m + o, rrs, sizeof rrs);
    size_t len = o + sizeof rrs;
    dotproxy_dns_info info;
    ck_assert_int_eq(dotproxy_dns_parse(&info, m, len), 0);
    struct dp_block_verdict v;
    ck_assert_int_eq(dp_block_check_answer(&p, m, len, &v), DP_BLOCK_ANSWER);
    char text[400];
    dp_block_describe(&v, text, sizeof text);
    ck_assert_str_eq(text, "blocklist c.txt: tracker.example. via cname x.tracker.example.");
    ck_assert_uint_eq(v.qend, o);
    ck_assert_int_eq(v.had_opt, 0);
    /* The same answer with a harmless chain passes. */
    m[o + 22 + 12 + 2] = 'T' + 1; /* "xracker"... any other name */
    m[o + 22 + 12 + 3] = 'z';
    ck_assert_int_eq(dp_block_check_answer(&p, m, len, &v), 0);
    dp_block_part_fini(&p);
    dotproxy_config_free(cfg);
}
END_TEST

struct seen {
    int n, deciding;
    char rules[8][300];
};

static void on_match(const dotproxy_block_match *mt, void *user)
{
    struct seen *s = user;
    snprintf(s->rules[s->n], sizeof s->rules[0], "%s %s %s", mt->rule, mt->action,
             strrchr(mt->path, '/') + 1);
    if (mt->decides)
        s->deciding = s->n;
    s->n++;
}

START_TEST(test_block_explain_lists_every_match_and_flags_the_deciding_one)
{
    const char *b1 = write_file("one.txt", "example.com\nwww.example.com\n");
    const char *b2 = write_file("two.txt", "0.0.0.0 www.example.com\n");
    dotproxy_config *cfg = cfg_with(b1, NULL);
    ck_assert_int_eq(dotproxy_config_add_blocklist(cfg, b2), 0);
    dotproxy_blocker *b;
    char err[600];
    ck_assert_int_eq(dotproxy_blocker_new(&b, cfg, 1, err, sizeof err), 0);
    struct seen s = {0};
    ck_assert_int_eq(dotproxy_blocker_explain(b, "a.www.example.com", on_match, &s), 3);
    ck_assert_str_eq(s.rules[0], "www.example.com. nxdomain one.txt");
    ck_assert_str_eq(s.rules[1], "example.com. nxdomain one.txt");
    ck_assert_str_eq(s.rules[2], "www.example.com. nxdomain two.txt");
    ck_assert_int_eq(s.deciding, 0);
    ck_assert_int_eq(dotproxy_blocker_explain(b, "bad..name", on_match, &s), DOTPROXY_EINVAL);
    dotproxy_blocker_free(b);
    dotproxy_config_free(cfg);
}
END_TEST

static void wait_generation(dotproxy_blocker *b, unsigned after)
{
    for (int i = 0; i < 2000 && dotproxy_blocker_generation(b) == after; i++)
        usleep(5000);
    ck_assert_uint_ne(dotproxy_blocker_generation(b), after);
}

struct failures {
    uint64_t failures, entries;
};

static void on_list(const dotproxy_list_info *li, void *user)
{
    struct failures *f = user;
    f->failures = li->failures;
    f->entries = li->entries;
}

START_TEST(test_block_reload_swaps_in_new_names_and_keeps_old_ones_when_unreadable)
{
    const char *bl = write_file("live.txt", "old.example\n");
    dotproxy_config *cfg = cfg_with(bl, NULL);
    ck_assert_int_eq(dotproxy_config_set_blocklist_check_s(cfg, 0), 0);
    dotproxy_blocker *b;
    ck_assert_int_eq(dotproxy_blocker_new(&b, cfg, 0, NULL, 0), 0);
    ck_assert_int_eq(dotproxy_config_set_blocker(cfg, b), 0);
    struct dp_block_part p;
    ck_assert_int_eq(dp_block_part_init(&p, cfg, NULL, NULL), 0);
    struct dp_block_verdict v;
    ck_assert_int_eq(decide(&p, "old.example", &v), DP_BLOCK_ANSWER);
    ck_assert_int_eq(decide(&p, "new.example", &v), DP_BLOCK_PASS);

    write_file("live.txt", "new.example\n");
    unsigned g = dotproxy_blocker_generation(b);
    ck_assert_int_eq(dotproxy_blocker_reload(b, cfg), 0);
    wait_generation(b, g);
    /* The part keeps its snapshot until its next turn... */
    ck_assert_int_eq(decide(&p, "old.example", &v), DP_BLOCK_ANSWER);
    dp_block_part_refresh(&p);
    /* ...then sees the new one. */
    ck_assert_int_eq(decide(&p, "new.example", &v), DP_BLOCK_ANSWER);
    ck_assert_int_eq(decide(&p, "old.example", &v), DP_BLOCK_PASS);

    /* The file goes away: a reload keeps the names, counts the failure. */
    ck_assert_int_eq(unlink(bl), 0);
    g = dotproxy_blocker_generation(b);
    ck_assert_int_eq(dotproxy_blocker_reload(b, cfg), 0);
    struct failures f = {0};
    for (int i = 0; i < 2000 && f.failures == 0; i++) {
        usleep(5000);
        dotproxy_blocker_lists(b, on_list, &f);
    }
    ck_assert_uint_eq(f.failures, 1);
    ck_assert_uint_eq(f.entries, 1);
    dp_block_part_refresh(&p);
    ck_assert_int_eq(decide(&p, "new.example", &v), DP_BLOCK_ANSWER);

    dp_block_part_fini(&p);
    dotproxy_blocker_free(b);
    dotproxy_config_free(cfg);
}
END_TEST

START_TEST(test_block_changed_file_is_reloaded_by_the_mtime_check)
{
    const char *bl = write_file("watched.txt", "before.example\n");
    dotproxy_config *cfg = cfg_with(bl, NULL);
    ck_assert_int_eq(dotproxy_config_set_blocklist_check_s(cfg, 1), 0);
    dotproxy_blocker *b;
    ck_assert_int_eq(dotproxy_blocker_new(&b, cfg, 0, NULL, 0), 0);
    unsigned g = dotproxy_blocker_generation(b);
    write_file("watched.txt", "after.example\n");
    wait_generation(b, g);
    struct seen s = {0};
    ck_assert_int_eq(dotproxy_blocker_explain(b, "after.example", on_match, &s), 1);
    ck_assert_int_eq(dotproxy_blocker_explain(b, "before.example", on_match, &s), 0);
    dotproxy_blocker_free(b);
    dotproxy_config_free(cfg);
}
END_TEST

/* ---- RPZ through the engine ---- */

#define RPZ_HEAD                                                                                   \
    "$TTL 300\n$ORIGIN rpz.example.\n"                                                             \
    "@ IN SOA ns.rpz.example. admin.rpz.example. 1 3600 600 86400 60\n  IN NS ns.rpz.example.\n"

static void sa4(struct sockaddr_in *sin, const char *addr)
{
    memset(sin, 0, sizeof *sin);
    sin->sin_family = AF_INET;
    ck_assert_int_eq(inet_pton(AF_INET, addr, &sin->sin_addr), 1);
}

static int decide_from(struct dp_block_part *p, const char *name, const char *client,
                       struct dp_block_verdict *v)
{
    uint8_t w[256];
    struct sockaddr_in sin;
    wire_of(name, w);
    sa4(&sin, client);
    return dp_block_decide(p, w, sizeof w, (const struct sockaddr *)&sin, v);
}

/* The zone-transfer feeds are the blocker's threads, started with it, so
 * restart-only: a reload whose configuration names another --state-dir
 * (or no --rpz-primary) keeps the copy the feed keeps current in force,
 * rather than look for copies nobody writes. */
START_TEST(test_block_reload_keeps_the_feeds_it_started_with)
{
    char dir_a[160], dir_b[160];
    snprintf(dir_a, sizeof dir_a, "%s/state-a", tmpdir);
    snprintf(dir_b, sizeof dir_b, "%s/state-b", tmpdir);
    ck_assert_int_eq(mkdir(dir_a, 0700), 0);
    ck_assert_int_eq(mkdir(dir_b, 0700), 0);
    /* The last good copy a feed left in its state directory. */
    write_file("state-a/rpz-rpz.example.zone",
               "; zone transfer copy, serial 1, 3 records\n" RPZ_HEAD "fed.example CNAME .\n");
    const char *bl = write_file("feeds-list.txt", "listed.example\n");
    dotproxy_config *cfg = cfg_with(bl, NULL);
    ck_assert_int_eq(dotproxy_config_set_blocklist_check_s(cfg, 0), 0);
    /* Port 1 refuses: the feed keeps its copy and retries with backoff. */
    ck_assert_int_eq(dotproxy_config_add_rpz_primary(cfg, "127.0.0.1@1#rpz.example"), 0);
    ck_assert_int_eq(dotproxy_config_set_state_dir(cfg, dir_a), 0);
    dotproxy_blocker *b;
    char err[256] = "";
    ck_assert_msg(dotproxy_blocker_new(&b, cfg, 0, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(dotproxy_config_set_blocker(cfg, b), 0);
    struct dp_block_part p;
    ck_assert_int_eq(dp_block_part_init(&p, cfg, NULL, NULL), 0);
    struct dp_block_verdict v;
    ck_assert_int_eq(decide(&p, "fed.example", &v), DP_BLOCK_ANSWER);
    ck_assert_int_eq(decide(&p, "listed.example", &v), DP_BLOCK_ANSWER);

    for (int round = 0; round < 2; round++) {
        dotproxy_config *next = cfg_with(bl, NULL);
        ck_assert_int_eq(dotproxy_config_set_blocklist_check_s(next, 0), 0);
        if (round == 0) { /* another state directory, the same primary */
            ck_assert_int_eq(dotproxy_config_add_rpz_primary(next, "127.0.0.1@1#rpz.example"), 0);
            ck_assert_int_eq(dotproxy_config_set_state_dir(next, dir_b), 0);
        } /* round 1: no feeds at all */
        unsigned g = dotproxy_blocker_generation(b);
        ck_assert_int_eq(dotproxy_blocker_reload(b, next), 0);
        wait_generation(b, g);
        dp_block_part_refresh(&p);
        ck_assert_msg(decide(&p, "fed.example", &v) == DP_BLOCK_ANSWER,
                      "round %d: the feed's zone left with the reload", round);
        ck_assert_int_eq(decide(&p, "listed.example", &v), DP_BLOCK_ANSWER);
        dotproxy_config_free(next);
    }

    dp_block_part_fini(&p);
    dotproxy_blocker_free(b);
    dotproxy_config_free(cfg);
}
END_TEST

START_TEST(test_rpz_each_action_and_the_client_ip_trigger)
{
    const char *z = write_file("zone.rpz", RPZ_HEAD "nx.example CNAME .\n"
                                                    "*.nodata.example CNAME *.\n"
                                                    "drop.example CNAME rpz-drop.\n"
                                                    "tcp.example CNAME rpz-tcp-only.\n"
                                                    "ok.nx.example CNAME rpz-passthru.\n"
                                                    "local.example A 192.0.2.55\n"
                                                    "32.2.0.0.127.rpz-client-ip CNAME .\n");
    dotproxy_config *cfg = cfg_with(NULL, NULL);
    ck_assert_int_eq(dotproxy_config_add_rpz(cfg, z), 0);
    struct dp_block_part p;
    ck_assert_int_eq(dp_block_part_init(&p, cfg, NULL, NULL), 0);
    struct dp_block_verdict v;
    ck_assert_int_eq(decide_from(&p, "nx.example", "127.0.0.3", &v), DP_BLOCK_ANSWER);
    ck_assert_int_eq(v.action, DOTPROXY_BLOCK_NXDOMAIN);
    char text[400];
    dp_block_describe(&v, text, sizeof text);
    ck_assert_str_eq(text, "rpz rpz.example.: nx.example");
    /* An exact owner matches that name only. */
    ck_assert_int_eq(decide_from(&p, "a.nx.example", "127.0.0.3", &v), DP_BLOCK_PASS);
    /* A wildcard matches every name below, not the name itself. */
    ck_assert_int_eq(decide_from(&p, "a.b.nodata.example", "127.0.0.3", &v), DP_BLOCK_ANSWER);
    ck_assert_int_eq(v.action, DOTPROXY_BLOCK_NODATA);
    ck_assert_int_eq(decide_from(&p, "nodata.example", "127.0.0.3", &v), DP_BLOCK_PASS);
    ck_assert_int_eq(decide_from(&p, "drop.example", "127.0.0.3", &v), DP_BLOCK_DROP);
    ck_assert_int_eq(decide_from(&p, "tcp.example", "127.0.0.3", &v), DP_BLOCK_TCP_ONLY);
    ck_assert_int_eq(decide_from(&p, "ok.nx.example", "127.0.0.3", &v), DP_BLOCK_ALLOWED);
    ck_assert_int_eq(decide_from(&p, "local.example", "127.0.0.3", &v), DP_BLOCK_LOCAL);
    /* rpz-client-ip: 127.0.0.2 is blocked whatever it asks, 127.0.0.3 not. */
    ck_assert_int_eq(decide_from(&p, "anything.example", "127.0.0.2", &v), DP_BLOCK_ANSWER);
    ck_assert_int_eq(decide_from(&p, "anything.example", "127.0.0.3", &v), DP_BLOCK_PASS);

    /* Local data on the wire: the zone's A record. */
    uint8_t q[512], out[2048];
    size_t ql = make_query(q, "local.example", 1, 0);
    dotproxy_dns_info info, a;
    ck_assert_int_eq(dotproxy_dns_parse(&info, q, ql), 0);
    ck_assert_int_eq(decide_from(&p, "local.example", "127.0.0.3", &v), DP_BLOCK_LOCAL);
    int n = dp_block_answer(&p, &v, q, info.question_end, 0, 1232, out, sizeof out);
    ck_assert_int_gt(n, 0);
    ck_assert_int_eq(dotproxy_dns_parse(&a, out, (size_t)n), 0);
    ck_assert_uint_eq(a.flags & 0xfu, 0);
    ck_assert_uint_eq(dp_get16(out + 6), 1);
    static const uint8_t addr[] = {192, 0, 2, 55};
    ck_assert_mem_eq(out + n - 4, addr, 4);
    /* tcp-only over UDP: TC=1, nothing else. */
    ql = make_query(q, "tcp.example", 1, 0);
    ck_assert_int_eq(dotproxy_dns_parse(&info, q, ql), 0);
    ck_assert_int_eq(decide_from(&p, "tcp.example", "127.0.0.3", &v), DP_BLOCK_TCP_ONLY);
    n = dp_block_answer(&p, &v, q, info.question_end, 0, 1232, out, sizeof out);
    ck_assert_int_eq(dotproxy_dns_parse(&a, out, (size_t)n), 0);
    ck_assert_uint_eq(a.flags & 0x0200u, 0x0200u);
    ck_assert_uint_eq(dp_get16(out + 6) + dp_get16(out + 8), 0);
    dp_block_part_fini(&p);
    dotproxy_config_free(cfg);
}
END_TEST

START_TEST(test_rpz_first_zone_wins_and_allowlist_beats_rpz)
{
    const char *z1 = write_file("first.rpz", RPZ_HEAD "pass.example CNAME rpz-passthru.\n");
    const char *z2 = write_file("second.rpz", RPZ_HEAD "pass.example CNAME .\n"
                                                       "allowed.example CNAME .\n");
    const char *al = write_file("allow.txt", "allowed.example\n");
    const char *bl = write_file("bl.txt", "pass.example\n");
    dotproxy_config *cfg = cfg_with(bl, al);
    ck_assert_int_eq(dotproxy_config_add_rpz(cfg, z1), 0);
    ck_assert_int_eq(dotproxy_config_add_rpz(cfg, z2), 0);
    struct dp_block_part p;
    ck_assert_int_eq(dp_block_part_init(&p, cfg, NULL, NULL), 0);
    struct dp_block_verdict v;
    /* The first zone's passthru decides: neither the second zone nor the
     * blocklist after it. */
    ck_assert_int_eq(decide_from(&p, "pass.example", "127.0.0.3", &v), DP_BLOCK_ALLOWED);
    ck_assert_ptr_nonnull(v.zone);
    ck_assert_int_eq(decide_from(&p, "allowed.example", "127.0.0.3", &v), DP_BLOCK_ALLOWED);
    ck_assert_ptr_null(v.zone);
    dp_block_part_fini(&p);
    dotproxy_config_free(cfg);
}
END_TEST

START_TEST(test_rpz_ip_in_an_answer_blocks_it)
{
    const char *z = write_file("ip.rpz", RPZ_HEAD "32.1.2.0.192.rpz-ip CNAME .\n");
    dotproxy_config *cfg = cfg_with(NULL, NULL);
    ck_assert_int_eq(dotproxy_config_add_rpz(cfg, z), 0);
    struct dp_block_part p;
    ck_assert_int_eq(dp_block_part_init(&p, cfg, NULL, NULL), 0);
    uint8_t m[512];
    size_t o = make_query(m, "shop.example", 1, 0);
    dp_put16(m + 2, 0x8180);
    dp_put16(m + 6, 1);
    static const uint8_t rr[] = {0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1};
    memcpy(m + o, rr, sizeof rr);
    struct dp_block_verdict v;
    ck_assert_int_eq(dp_block_check_answer(&p, m, o + sizeof rr, &v), DP_BLOCK_ANSWER);
    char text[400];
    dp_block_describe(&v, text, sizeof text);
    ck_assert_str_eq(text, "rpz rpz.example.: 32.1.2.0.192.rpz-ip via address 192.0.2.1");
    m[o + 15] = 2; /* 192.0.2.2: no rule */
    ck_assert_int_eq(dp_block_check_answer(&p, m, o + sizeof rr, &v), 0);
    dp_block_part_fini(&p);
    dotproxy_config_free(cfg);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("block");
    TCase *t = tcase_create("block");
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_set_timeout(t, 60);
    tcase_add_test(t, test_name_from_text_lowercases_and_takes_a_final_dot);
    tcase_add_test(t, test_name_from_text_refuses_what_is_no_host_name);
    tcase_add_test(t, test_list_line_formats_each_give_their_names);
    tcase_add_test(t, test_list_comments_blanks_and_hosts_boilerplate_give_nothing);
    tcase_add_test(t, test_list_malformed_lines_are_bad_and_add_nothing);
    tcase_add_test(t, test_nameset_matches_a_name_and_every_name_below_it_only);
    tcase_add_test(t, test_nameset_grows_and_finds_every_name_of_a_large_list);
    tcase_add_test(t, test_nameset_top_level_domains_settle_foreign_names_and_nothing_else);
    tcase_add_test(t, test_name_hashes_do_not_depend_on_the_room_after_the_name);
    tcase_add_test(t, test_name_hashes_refuse_malformed_wire_names);
    tcase_add_test(t, test_list_load_strict_names_file_and_line_lenient_counts);
    tcase_add_test(t, test_block_allowlist_beats_every_block_even_a_more_specific_one);
    tcase_add_test(t, test_block_answers_carry_soa_ede_and_the_query_header);
    tcase_add_test(t, test_block_actions_nodata_refused_and_zero);
    tcase_add_test(t, test_block_cname_chain_reaching_a_blocked_name_is_caught);
    tcase_add_test(t, test_block_explain_lists_every_match_and_flags_the_deciding_one);
    tcase_add_test(t, test_block_reload_swaps_in_new_names_and_keeps_old_ones_when_unreadable);
    tcase_add_test(t, test_block_changed_file_is_reloaded_by_the_mtime_check);
    tcase_add_test(t, test_block_reload_keeps_the_feeds_it_started_with);
    tcase_add_test(t, test_rpz_each_action_and_the_client_ip_trigger);
    tcase_add_test(t, test_rpz_first_zone_wins_and_allowlist_beats_rpz);
    tcase_add_test(t, test_rpz_ip_in_an_answer_blocks_it);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    SRunner *r = srunner_create(suite());
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
