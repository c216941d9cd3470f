/* SPDX-License-Identifier: MIT */
/* dotproxy_endpoint_parse / dotproxy_endpoint_format: the spec grammar, the
 * error code naming the bad part, and the format/parse round trip. */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dotproxy/config.h"
#include "dotproxy/error.h"

/* Parses spec as an upstream (names allowed, default port 853). */
static int parse_upstream(dotproxy_endpoint *ep, const char *spec)
{
    return dotproxy_endpoint_parse(ep, spec, DOTPROXY_DOT_PORT, 1);
}

static void assert_ipv4(const dotproxy_endpoint *ep, const char *addr, uint16_t port)
{
    const struct sockaddr_in *sin = (const struct sockaddr_in *)&ep->addr;
    struct in_addr want;

    ck_assert_int_eq(inet_pton(AF_INET, addr, &want), 1);
    ck_assert_int_eq(sin->sin_family, AF_INET);
    ck_assert_int_eq(ep->addrlen, sizeof(struct sockaddr_in));
    ck_assert_uint_eq(sin->sin_addr.s_addr, want.s_addr);
    ck_assert_uint_eq(ntohs(sin->sin_port), port);
}

static void assert_ipv6(const dotproxy_endpoint *ep, const char *addr, uint16_t port)
{
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&ep->addr;
    struct in6_addr want;

    ck_assert_int_eq(inet_pton(AF_INET6, addr, &want), 1);
    ck_assert_int_eq(sin6->sin6_family, AF_INET6);
    ck_assert_int_eq(ep->addrlen, sizeof(struct sockaddr_in6));
    ck_assert_mem_eq(&sin6->sin6_addr, &want, sizeof want);
    ck_assert_uint_eq(ntohs(sin6->sin6_port), port);
    ck_assert_uint_eq(sin6->sin6_scope_id, 0);
}

/* A name of n octets made of 63-octet labels, valid whenever n <= 253 and the
 * last label is not empty. */
static char *make_name(size_t n)
{
    char *s = malloc(n + 1);
    ck_assert_ptr_nonnull(s);
    for (size_t i = 0; i < n; i++)
        s[i] = (i % 64 == 63) ? '.' : 'a';
    s[n] = '\0';
    return s;
}

START_TEST(test_endpoint_parses_ipv4_with_default_port)
{
    dotproxy_endpoint ep;
    ck_assert_int_eq(parse_upstream(&ep, "1.1.1.1"), 0);
    assert_ipv4(&ep, "1.1.1.1", 853);
    ck_assert_str_eq(ep.name, "");
}
END_TEST

START_TEST(test_endpoint_parses_ipv4_with_port_and_name)
{
    dotproxy_endpoint ep;
    ck_assert_int_eq(parse_upstream(&ep, "9.9.9.9@8853#dns.quad9.net"), 0);
    assert_ipv4(&ep, "9.9.9.9", 8853);
    ck_assert_str_eq(ep.name, "dns.quad9.net");
}
END_TEST

START_TEST(test_endpoint_parses_name_without_port)
{
    dotproxy_endpoint ep;
    ck_assert_int_eq(parse_upstream(&ep, "8.8.8.8#dns.google"), 0);
    assert_ipv4(&ep, "8.8.8.8", 853);
    ck_assert_str_eq(ep.name, "dns.google");
}
END_TEST

START_TEST(test_endpoint_uses_the_default_port_given_by_the_caller)
{
    dotproxy_endpoint ep;
    ck_assert_int_eq(dotproxy_endpoint_parse(&ep, "127.0.0.1", DOTPROXY_DNS_PORT, 0), 0);
    assert_ipv4(&ep, "127.0.0.1", 53);
}
END_TEST

START_TEST(test_endpoint_accepts_lowest_and_highest_port)
{
    dotproxy_endpoint ep;
    ck_assert_int_eq(parse_upstream(&ep, "10.0.0.1@1"), 0);
    assert_ipv4(&ep, "10.0.0.1", 1);
    ck_assert_int_eq(parse_upstream(&ep, "10.0.0.1@65535"), 0);
    assert_ipv4(&ep, "10.0.0.1", 65535);
}
END_TEST

START_TEST(test_endpoint_parses_bare_ipv6)
{
    dotproxy_endpoint ep;
    ck_assert_int_eq(parse_upstream(&ep, "::1"), 0);
    assert_ipv6(&ep, "::1", 853);
    ck_assert_int_eq(parse_upstream(&ep, "fe80::1@5353"), 0);
    assert_ipv6(&ep, "fe80::1", 5353);
    ck_assert_int_eq(parse_upstream(&ep, "2001:db8::53@853#ns.example"), 0);
    assert_ipv6(&ep, "2001:db8::53", 853);
    ck_assert_str_eq(ep.name, "ns.example");
}
END_TEST

START_TEST(test_endpoint_parses_bracketed_ipv6)
{
    dotproxy_endpoint ep;
    ck_assert_int_eq(parse_upstream(&ep, "[2606:4700::1111]@853#cloudflare-dns.com"), 0);
    assert_ipv6(&ep, "2606:4700::1111", 853);
    ck_assert_str_eq(ep.name, "cloudflare-dns.com");
    ck_assert_int_eq(parse_upstream(&ep, "[::1]"), 0);
    assert_ipv6(&ep, "::1", 853);
    ck_assert_int_eq(parse_upstream(&ep, "[::ffff:192.0.2.1]#a"), 0);
    assert_ipv6(&ep, "::ffff:192.0.2.1", 853);
    ck_assert_str_eq(ep.name, "a");
}
END_TEST

START_TEST(test_endpoint_rejects_null_and_empty_input)
{
    dotproxy_endpoint ep;
    ck_assert_int_eq(parse_upstream(&ep, NULL), DOTPROXY_EINVAL);
    ck_assert_int_eq(parse_upstream(&ep, ""), DOTPROXY_EINVAL);
    ck_assert_int_eq(parse_upstream(NULL, "1.1.1.1"), DOTPROXY_EINVAL);
}
END_TEST

static const char *const bad_addrs[] = {
    "abc",
    "abc@853",
    "@853",
    "#name",
    "1.1.1",
    "1.1.1.1.1",
    "256.1.1.1",
    "01.1.1.1",
    " 1.1.1.1",
    "1.1.1.1 ",
    "localhost",
    ":::1",
    "2001:db8::g",
    "fe80::1%lo",
    "[fe80::1%lo]@853",
    "[1.1.1.1]",
    "[::1",
    "::1]",
    "[]",
    "[]@853",
    "[::1]853",
    "[::1]x@853",
    "[::1]]@853",
    "[[::1]]",
    "1.1.1.1:853",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
};

START_TEST(test_endpoint_rejects_bad_address_with_eaddr)
{
    dotproxy_endpoint ep;
    ck_assert_msg(parse_upstream(&ep, bad_addrs[_i]) == DOTPROXY_EADDR, "spec \"%s\"",
                  bad_addrs[_i]);
}
END_TEST

static const char *const bad_ports[] = {
    "1.1.1.1@",
    "1.1.1.1@0",
    "1.1.1.1@00000",
    "1.1.1.1@65536",
    "1.1.1.1@99999",
    "1.1.1.1@-1",
    "1.1.1.1@+53",
    "1.1.1.1@ 53",
    "1.1.1.1@53 ",
    "1.1.1.1@0x35",
    "1.1.1.1@53a",
    "1.1.1.1@53@53",
    "::1@",
    "[::1]@",
    "[::1]@65536#name",
    "1.1.1.1@#name",
    "1.1.1.1@4294967349",
    "1.1.1.1@18446744073709551669",
};

START_TEST(test_endpoint_rejects_bad_port_with_eport)
{
    dotproxy_endpoint ep;
    ck_assert_msg(parse_upstream(&ep, bad_ports[_i]) == DOTPROXY_EPORT, "spec \"%s\"",
                  bad_ports[_i]);
}
END_TEST

static const char *const bad_names[] = {
    "1.1.1.1#",
    "1.1.1.1#.",
    "1.1.1.1#..",
    "1.1.1.1#a..",
    "1.1.1.1#a..b",
    "1.1.1.1#.a",
    "1.1.1.1#-a",
    "1.1.1.1#a-",
    "1.1.1.1#a.-b.c",
    "1.1.1.1#a.b-.c",
    "1.1.1.1#under_score.example",
    "1.1.1.1#_dns.example",
    "1.1.1.1#sp ace",
    "1.1.1.1#a#b",
    "1.1.1.1#a@b",
    "1.1.1.1#caf\xc3\xa9.example",
    "[::1]@853#a*b",
};

START_TEST(test_endpoint_rejects_bad_name_with_ename)
{
    dotproxy_endpoint ep;
    ck_assert_msg(parse_upstream(&ep, bad_names[_i]) == DOTPROXY_ENAME, "spec \"%s\"",
                  bad_names[_i]);
}
END_TEST

START_TEST(test_endpoint_accepts_and_strips_one_trailing_dot)
{
    dotproxy_endpoint ep;
    ck_assert_int_eq(parse_upstream(&ep, "8.8.8.8#dns.google."), 0);
    ck_assert_str_eq(ep.name, "dns.google");
}
END_TEST

START_TEST(test_endpoint_keeps_name_case_digits_and_inner_hyphens)
{
    dotproxy_endpoint ep;
    ck_assert_int_eq(parse_upstream(&ep, "1.1.1.1#One-One.1dot1-1.Example"), 0);
    ck_assert_str_eq(ep.name, "One-One.1dot1-1.Example");
}
END_TEST

START_TEST(test_endpoint_accepts_63_octet_label_and_rejects_64)
{
    dotproxy_endpoint ep;
    char spec[128];
    char label[65];

    memset(label, 'x', 63);
    label[63] = '\0';
    snprintf(spec, sizeof spec, "1.1.1.1#%s.example", label);
    ck_assert_int_eq(parse_upstream(&ep, spec), 0);
    ck_assert_uint_eq(strlen(ep.name), 63 + 8);

    memset(label, 'x', 64);
    label[64] = '\0';
    snprintf(spec, sizeof spec, "1.1.1.1#%s.example", label);
    ck_assert_int_eq(parse_upstream(&ep, spec), DOTPROXY_ENAME);
    snprintf(spec, sizeof spec, "1.1.1.1#example.%s", label);
    ck_assert_int_eq(parse_upstream(&ep, spec), DOTPROXY_ENAME);
}
END_TEST

START_TEST(test_endpoint_accepts_253_octet_name_and_rejects_254)
{
    dotproxy_endpoint ep;
    char spec[512];
    char *name = make_name(253);

    snprintf(spec, sizeof spec, "1.1.1.1#%s", name);
    ck_assert_int_eq(parse_upstream(&ep, spec), 0);
    ck_assert_str_eq(ep.name, name);

    /* With the trailing dot of a fully qualified name it is still 253. */
    snprintf(spec, sizeof spec, "1.1.1.1#%s.", name);
    ck_assert_int_eq(parse_upstream(&ep, spec), 0);
    ck_assert_str_eq(ep.name, name);
    free(name);

    name = make_name(254);
    snprintf(spec, sizeof spec, "1.1.1.1#%s", name);
    ck_assert_int_eq(parse_upstream(&ep, spec), DOTPROXY_ENAME);
    free(name);

    name = make_name(400);
    ck_assert_int_eq(parse_upstream(&ep, "1.1.1.1"), 0);
    char *big = malloc(strlen(name) + 16);
    ck_assert_ptr_nonnull(big);
    strcpy(big, "1.1.1.1#");
    strcat(big, name);
    ck_assert_int_eq(parse_upstream(&ep, big), DOTPROXY_ENAME);
    free(big);
    free(name);
}
END_TEST

START_TEST(test_endpoint_refuses_name_when_not_allowed)
{
    dotproxy_endpoint ep;
    ck_assert_int_eq(dotproxy_endpoint_parse(&ep, "127.0.0.1@5353#dns.example", 53, 0),
                     DOTPROXY_ENAME);
    ck_assert_int_eq(dotproxy_endpoint_parse(&ep, "127.0.0.1#", 53, 0), DOTPROXY_ENAME);
    ck_assert_int_eq(dotproxy_endpoint_parse(&ep, "[::1]@5353", 53, 0), 0);
    assert_ipv6(&ep, "::1", 5353);
    ck_assert_str_eq(ep.name, "");
}
END_TEST

START_TEST(test_endpoint_reports_leftmost_bad_part)
{
    dotproxy_endpoint ep;
    ck_assert_int_eq(parse_upstream(&ep, "abc@0#-"), DOTPROXY_EADDR);
    ck_assert_int_eq(parse_upstream(&ep, "1.1.1.1@0#-"), DOTPROXY_EPORT);
    ck_assert_int_eq(parse_upstream(&ep, "1.1.1.1@1#-"), DOTPROXY_ENAME);
}
END_TEST

START_TEST(test_endpoint_leaves_output_untouched_on_error)
{
    dotproxy_endpoint ep, before;
    memset(&ep, 0xA5, sizeof ep);
    before = ep;
    ck_assert_int_eq(parse_upstream(&ep, "1.1.1.1@853#bad_name"), DOTPROXY_ENAME);
    ck_assert_mem_eq(&ep, &before, sizeof ep);
    ck_assert_int_eq(parse_upstream(&ep, "1.1.1.1@70000"), DOTPROXY_EPORT);
    ck_assert_mem_eq(&ep, &before, sizeof ep);
}
END_TEST

START_TEST(test_endpoint_formats_ipv4_and_bracketed_ipv6)
{
    dotproxy_endpoint ep;
    char buf[384];

    ck_assert_int_eq(parse_upstream(&ep, "1.1.1.1"), 0);
    ck_assert_int_eq(dotproxy_endpoint_format(&ep, buf, sizeof buf), 11);
    ck_assert_str_eq(buf, "1.1.1.1@853");

    ck_assert_int_eq(parse_upstream(&ep, "2606:4700:0000::1111@443#one.one.one.one."), 0);
    ck_assert_int_eq(dotproxy_endpoint_format(&ep, buf, sizeof buf),
                     (int)strlen("[2606:4700::1111]@443#one.one.one.one"));
    ck_assert_str_eq(buf, "[2606:4700::1111]@443#one.one.one.one");
}
END_TEST

static const char *const round_trip_specs[] = {
    "1.1.1.1",
    "127.0.0.1@1",
    "255.255.255.255@65535#a",
    "0.0.0.0@53",
    "::",
    "::1@5353",
    "[2001:db8::1]@853#dns.example",
    "fe80::abcd:1@853#x-y.z",
    "[::ffff:10.0.0.1]@8853",
    "9.9.9.9#DNS.Quad9.NET.",
};

START_TEST(test_endpoint_parse_of_format_gives_back_the_same_endpoint)
{
    dotproxy_endpoint a, b;
    char buf[384];
    char again[384];
    int n;

    ck_assert_int_eq(parse_upstream(&a, round_trip_specs[_i]), 0);
    n = dotproxy_endpoint_format(&a, buf, sizeof buf);
    ck_assert_int_gt(n, 0);
    ck_assert_uint_eq(strlen(buf), (size_t)n);
    ck_assert_int_eq(parse_upstream(&b, buf), 0);
    ck_assert_int_eq(a.addrlen, b.addrlen);
    ck_assert_mem_eq(&a.addr, &b.addr, a.addrlen);
    ck_assert_str_eq(a.name, b.name);
    /* Formatting is canonical: a second trip yields the same text. */
    ck_assert_int_eq(dotproxy_endpoint_format(&b, again, sizeof again), n);
    ck_assert_str_eq(again, buf);
}
END_TEST

START_TEST(test_endpoint_round_trips_longest_name_within_384_octets)
{
    dotproxy_endpoint a, b;
    char spec[512];
    char buf[384];
    char *name = make_name(253);

    snprintf(spec, sizeof spec, "[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]@65535#%s", name);
    ck_assert_int_eq(parse_upstream(&a, spec), 0);
    ck_assert_int_gt(dotproxy_endpoint_format(&a, buf, sizeof buf), 0);
    ck_assert_int_eq(parse_upstream(&b, buf), 0);
    ck_assert_mem_eq(&a.addr, &b.addr, a.addrlen);
    ck_assert_str_eq(b.name, name);
    free(name);
}
END_TEST

START_TEST(test_endpoint_format_reports_enospc_and_leaves_buffer_alone)
{
    dotproxy_endpoint ep;
    char buf[32];

    ck_assert_int_eq(parse_upstream(&ep, "[::1]@853#dns.example"), 0);
    const char *want = "[::1]@853#dns.example";
    size_t len = strlen(want);

    memset(buf, 'Z', sizeof buf);
    ck_assert_int_eq(dotproxy_endpoint_format(&ep, buf, len), DOTPROXY_ENOSPC);
    for (size_t i = 0; i < sizeof buf; i++)
        ck_assert_int_eq(buf[i], 'Z');
    ck_assert_int_eq(dotproxy_endpoint_format(&ep, buf, 0), DOTPROXY_ENOSPC);
    ck_assert_int_eq(dotproxy_endpoint_format(&ep, buf, 1), DOTPROXY_ENOSPC);

    /* Exactly the text plus its NUL fits. */
    ck_assert_int_eq(dotproxy_endpoint_format(&ep, buf, len + 1), (int)len);
    ck_assert_str_eq(buf, want);
}
END_TEST

START_TEST(test_endpoint_format_rejects_null_and_unknown_family)
{
    dotproxy_endpoint ep;
    char buf[128];

    ck_assert_int_eq(parse_upstream(&ep, "1.1.1.1"), 0);
    ck_assert_int_eq(dotproxy_endpoint_format(NULL, buf, sizeof buf), DOTPROXY_EINVAL);
    ck_assert_int_eq(dotproxy_endpoint_format(&ep, NULL, sizeof buf), DOTPROXY_EINVAL);
    memset(&ep, 0, sizeof ep);
    ep.addr.ss_family = AF_UNIX;
    ck_assert_int_eq(dotproxy_endpoint_format(&ep, buf, sizeof buf), DOTPROXY_EINVAL);
}
END_TEST

#define N_ELEMS(a) ((int)(sizeof(a) / sizeof((a)[0])))

static Suite *endpoint_suite(void)
{
    Suite *s = suite_create("endpoint");
    TCase *parse = tcase_create("parse");
    TCase *format = tcase_create("format");

    tcase_add_test(parse, test_endpoint_parses_ipv4_with_default_port);
    tcase_add_test(parse, test_endpoint_parses_ipv4_with_port_and_name);
    tcase_add_test(parse, test_endpoint_parses_name_without_port);
    tcase_add_test(parse, test_endpoint_uses_the_default_port_given_by_the_caller);
    tcase_add_test(parse, test_endpoint_accepts_lowest_and_highest_port);
    tcase_add_test(parse, test_endpoint_parses_bare_ipv6);
    tcase_add_test(parse, test_endpoint_parses_bracketed_ipv6);
    tcase_add_test(parse, test_endpoint_rejects_null_and_empty_input);
    tcase_add_loop_test(parse, test_endpoint_rejects_bad_address_with_eaddr, 0, N_ELEMS(bad_addrs));
    tcase_add_loop_test(parse, test_endpoint_rejects_bad_port_with_eport, 0, N_ELEMS(bad_ports));
    tcase_add_loop_test(parse, test_endpoint_rejects_bad_name_with_ename, 0, N_ELEMS(bad_names));
    tcase_add_test(parse, test_endpoint_accepts_and_strips_one_trailing_dot);
    tcase_add_test(parse, test_endpoint_keeps_name_case_digits_and_inner_hyphens);
    tcase_add_test(parse, test_endpoint_accepts_63_octet_label_and_rejects_64);
    tcase_add_test(parse, test_endpoint_accepts_253_octet_name_and_rejects_254);
    tcase_add_test(parse, test_endpoint_refuses_name_when_not_allowed);
    tcase_add_test(parse, test_endpoint_reports_leftmost_bad_part);
    tcase_add_test(parse, test_endpoint_leaves_output_untouched_on_error);
    suite_add_tcase(s, parse);

    tcase_add_test(format, test_endpoint_formats_ipv4_and_bracketed_ipv6);
    tcase_add_loop_test(format, test_endpoint_parse_of_format_gives_back_the_same_endpoint, 0,
                        N_ELEMS(round_trip_specs));
    tcase_add_test(format, test_endpoint_round_trips_longest_name_within_384_octets);
    tcase_add_test(format, test_endpoint_format_reports_enospc_and_leaves_buffer_alone);
    tcase_add_test(format, test_endpoint_format_rejects_null_and_unknown_family);
    suite_add_tcase(s, format);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(endpoint_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
