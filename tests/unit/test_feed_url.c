/* SPDX-License-Identifier: MIT */
/* Unit tests of lib/feed_url.c's pure parts: which URLs are taken, the
 * state file (its name, its header written and read back, another URL's
 * copy and foreign files refused, the header a comment to the list
 * parser), the validators taken from response headers (a redirect's
 * dropped, injection refused) and the conditional request made of them,
 * and the timers (refresh jitter, failure backoff) with a seeded PRNG. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blocklist.h"
#include "dotproxy/error.h"
#include "feed_url.h"
#include "nameset.h"
#include "prng.h"

static char dir[64];

static void make_dir(void)
{
    snprintf(dir, sizeof dir, "/tmp/test_feed_url.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void remove_dir(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* A state file for url with v, then body. */
static void write_state(const char *path, const char *url, const struct dp_feed_url_validators *v,
                        const char *body)
{
    char head[4096];
    int n = dp_feed_url_state_header(head, sizeof head, url, v);
    ck_assert_int_gt(n, 0);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(head, 1, (size_t)n, f), (size_t)n);
    fputs(body, f);
    ck_assert_int_eq(fclose(f), 0);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    ck_assert_int_eq(fclose(f), 0);
}

START_TEST(test_feed_url_check_takes_https_only_with_a_host)
{
    ck_assert_int_eq(dp_feed_url_check("https://lists.example/ads.txt"), 0);
    ck_assert_int_eq(dp_feed_url_check("HTTPS://127.0.0.1:8443/a?b=c"), 0);
    ck_assert_int_eq(dp_feed_url_check("http://lists.example/ads.txt"), DOTPROXY_EINVAL);
    ck_assert_int_eq(dp_feed_url_check("ftp://lists.example/ads.txt"), DOTPROXY_EINVAL);
    ck_assert_int_eq(dp_feed_url_check("file:///etc/hosts"), DOTPROXY_EINVAL);
    ck_assert_int_eq(dp_feed_url_check("lists.example/ads.txt"), DOTPROXY_EINVAL);
    ck_assert_int_eq(dp_feed_url_check("https://"), DOTPROXY_EINVAL);
    ck_assert_int_eq(dp_feed_url_check("https:///path"), DOTPROXY_EINVAL);
    ck_assert_int_eq(dp_feed_url_check("https://a.example/x y"), DOTPROXY_EINVAL);
    ck_assert_int_eq(dp_feed_url_check("https://a.example/x\ny"), DOTPROXY_EINVAL);
    ck_assert_int_eq(dp_feed_url_check(NULL), DOTPROXY_EINVAL);
    char longu[DP_FEED_URL_LEN_MAX + 2];
    memset(longu, 'a', sizeof longu - 1);
    memcpy(longu, "https://", 8);
    longu[sizeof longu - 1] = '\0';
    ck_assert_int_eq(dp_feed_url_check(longu), DOTPROXY_EINVAL);
}
END_TEST

START_TEST(test_feed_url_shown_hides_user_information_and_the_query)
{
    char out[200];
    dp_feed_url_shown("https://lists.example/ads.txt", out, sizeof out);
    ck_assert_str_eq(out, "https://lists.example/ads.txt");
    dp_feed_url_shown("https://user:pw@lists.example:8443/a/b.txt", out, sizeof out);
    ck_assert_str_eq(out, "https://lists.example:8443/a/b.txt");
    dp_feed_url_shown("https://lists.example/feed?token=s3cret&x=1", out, sizeof out);
    ck_assert_str_eq(out, "https://lists.example/feed?...");
    dp_feed_url_shown("https://u@lists.example?k=v#frag", out, sizeof out);
    ck_assert_str_eq(out, "https://lists.example?...");
    dp_feed_url_shown("https://lists.example/a#frag", out, sizeof out);
    ck_assert_str_eq(out, "https://lists.example/a");
    /* Several '@' (a password left unencoded): all of it goes. */
    dp_feed_url_shown("https://a@b@host/x", out, sizeof out);
    ck_assert_str_eq(out, "https://host/x");
    /* An '@' after the authority is the path's, kept. */
    dp_feed_url_shown("https://lists.example/u@x", out, sizeof out);
    ck_assert_str_eq(out, "https://lists.example/u@x");
    dp_feed_url_shown("https://lists.example/long", out, 12);
    ck_assert_str_eq(out, "https://lis");
}
END_TEST

START_TEST(test_feed_url_state_path_is_stable_and_one_per_url)
{
    char a[256], b[256], c[256];
    ck_assert_int_eq(dp_feed_url_state_path("/s", "https://x.example/a", a, sizeof a), 0);
    ck_assert_int_eq(dp_feed_url_state_path("/s", "https://x.example/a", b, sizeof b), 0);
    ck_assert_int_eq(dp_feed_url_state_path("/s", "https://x.example/b", c, sizeof c), 0);
    ck_assert_str_eq(a, b);
    ck_assert_str_ne(a, c);
    ck_assert_int_eq(strncmp(a, "/s/url-", 7), 0);
    ck_assert_uint_eq(strlen(a), strlen("/s/url-") + 16 + strlen(".list"));
    ck_assert_int_eq(dp_feed_url_state_path(NULL, "https://x.example/a", a, sizeof a), 0);
    ck_assert_int_eq(
        strncmp(a, DOTPROXY_STATE_DIR_DEFAULT "/url-", strlen(DOTPROXY_STATE_DIR_DEFAULT "/url-")),
        0);
    ck_assert_int_eq(dp_feed_url_state_path("/s", "https://x.example/a", a, 10), DOTPROXY_ENOSPC);
}
END_TEST

START_TEST(test_feed_url_state_header_reads_back_for_its_url_only)
{
    make_dir();
    char path[128];
    snprintf(path, sizeof path, "%s/copy.list", dir);
    struct dp_feed_url_validators v = {.etag = "W/\"abc 1\"",
                                       .last_modified = "Sat, 05 Dec 2026 10:00:00 GMT",
                                       .fetched_s = 1764928800};
    write_state(path, "https://x.example/a", &v, "ads.example\n");
    struct dp_feed_url_validators r;
    memset(&r, 0x55, sizeof r);
    ck_assert_int_eq(dp_feed_url_state_read(path, "https://x.example/a", &r), 0);
    ck_assert_str_eq(r.etag, v.etag);
    ck_assert_str_eq(r.last_modified, v.last_modified);
    ck_assert_int_eq(r.fetched_s, v.fetched_s);
    /* Another URL's copy: ignored, and *v untouched. */
    memset(&r, 0, sizeof r);
    ck_assert_int_eq(dp_feed_url_state_read(path, "https://x.example/b", &r), DOTPROXY_EINVAL);
    ck_assert_str_eq(r.etag, "");
    /* Empty validators are kept as empty. */
    struct dp_feed_url_validators none = {.fetched_s = 7};
    write_state(path, "https://x.example/a", &none, "ads.example\n");
    ck_assert_int_eq(dp_feed_url_state_read(path, "https://x.example/a", &r), 0);
    ck_assert_str_eq(r.etag, "");
    ck_assert_str_eq(r.last_modified, "");
    ck_assert_int_eq(r.fetched_s, 7);
    ck_assert_int_eq(dp_feed_url_state_read("/nonexistent/x", "https://x.example/a", &r),
                     DOTPROXY_ESYS);
    remove_dir();
}
END_TEST

START_TEST(test_feed_url_state_read_refuses_files_it_did_not_write)
{
    make_dir();
    char path[128];
    snprintf(path, sizeof path, "%s/copy.list", dir);
    struct dp_feed_url_validators r;
    static const char *const bad[] = {
        "ads.example\n",
        /* no end of header */
        "# dotproxyd blocklist-url copy v1\n# url: https://x.example/a\n# fetched: 1\n",
        /* no fetch time */
        "# dotproxyd blocklist-url copy v1\n# url: https://x.example/a\n#\nads.example\n",
        /* no URL */
        "# dotproxyd blocklist-url copy v1\n# fetched: 1\n#\nads.example\n",
        /* a fetch time that is no number */
        "# dotproxyd blocklist-url copy v1\n# url: https://x.example/a\n# fetched: 1x\n#\n",
        /* an unknown header line */
        ("# dotproxyd blocklist-url copy v1\n# url: https://x.example/a\n# colour: red\n"
         "# fetched: 1\n#\n"),
        /* another format version */
        "# dotproxyd blocklist-url copy v2\n# url: https://x.example/a\n# fetched: 1\n#\n",
        "",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_text(path, bad[i]);
        ck_assert_msg(dp_feed_url_state_read(path, "https://x.example/a", &r) ==
                          DOTPROXY_EMALFORMED,
                      "case %zu taken", i);
    }
    remove_dir();
}
END_TEST

START_TEST(test_feed_url_state_header_is_a_comment_to_the_list_parser)
{
    make_dir();
    char path[128], err[300];
    snprintf(path, sizeof path, "%s/copy.list", dir);
    struct dp_feed_url_validators v = {.etag = "\"e\"", .last_modified = "x", .fetched_s = 1};
    write_state(path, "https://x.example/a", &v, "ads.example\n0.0.0.0 tracker.example\n");
    struct dp_list_sets s;
    ck_assert_int_eq(dp_list_load(&s, path, 0, 1, err, sizeof err), 0);
    ck_assert_uint_eq(dp_nameset_count(s.block), 2);
    ck_assert_uint_eq(s.skipped, 0);
    dp_list_sets_clear(&s);
    remove_dir();
}
END_TEST

static void line(struct dp_feed_url_validators *v, const char *l)
{
    dp_feed_url_header_line(v, l, strlen(l));
}

START_TEST(test_feed_url_validators_come_from_the_final_response)
{
    struct dp_feed_url_validators v;
    memset(&v, 0, sizeof v);
    /* A redirect with validators of its own, then the list. */
    line(&v, "HTTP/1.1 302 Found");
    line(&v, "ETag: \"redirect\"");
    line(&v, "Location: /list.txt");
    line(&v, "");
    line(&v, "HTTP/1.1 200 OK");
    line(&v, "etag:   \"abc\"  ");
    line(&v, "LAST-MODIFIED: Sat, 05 Dec 2026 10:00:00 GMT");
    line(&v, "Content-Length: 12");
    ck_assert_str_eq(v.etag, "\"abc\"");
    ck_assert_str_eq(v.last_modified, "Sat, 05 Dec 2026 10:00:00 GMT");
    /* A final response without them: none. */
    line(&v, "HTTP/2 200");
    ck_assert_str_eq(v.etag, "");
    ck_assert_str_eq(v.last_modified, "");
    /* A header name that only starts alike is not one. */
    line(&v, "ETagX: \"no\"");
    ck_assert_str_eq(v.etag, "");
}
END_TEST

START_TEST(test_feed_url_validators_refuse_what_could_inject)
{
    struct dp_feed_url_validators v;
    memset(&v, 0, sizeof v);
    char l[40] = "ETag: \"a\rb\"";
    dp_feed_url_header_line(&v, l, strlen(l));
    ck_assert_str_eq(v.etag, "");
    /* A NUL inside the value (the length is what counts). */
    memcpy(l, "ETag: \"a\0b\"", 12);
    dp_feed_url_header_line(&v, l, 12);
    ck_assert_str_eq(v.etag, "");
    line(&v, "ETag: \"caf\xc3\xa9\"");
    ck_assert_str_eq(v.etag, "");
    char longv[400] = "ETag: \"";
    memset(longv + 7, 'x', 300);
    longv[307] = '"';
    longv[308] = '\0';
    line(&v, longv);
    ck_assert_str_eq(v.etag, "");
    line(&v, "ETag:");
    ck_assert_str_eq(v.etag, "");
}
END_TEST

START_TEST(test_feed_url_conditional_sends_what_it_holds)
{
    char buf[2][400];
    const char *lines[3];
    struct dp_feed_url_validators v = {.etag = "\"abc\"",
                                       .last_modified = "Sat, 05 Dec 2026 10:00:00 GMT"};
    dp_feed_url_conditional(&v, buf, lines);
    ck_assert_str_eq(lines[0], "If-None-Match: \"abc\"");
    ck_assert_str_eq(lines[1], "If-Modified-Since: Sat, 05 Dec 2026 10:00:00 GMT");
    ck_assert_ptr_null(lines[2]);
    v.etag[0] = '\0';
    dp_feed_url_conditional(&v, buf, lines);
    ck_assert_str_eq(lines[0], "If-Modified-Since: Sat, 05 Dec 2026 10:00:00 GMT");
    ck_assert_ptr_null(lines[1]);
    v.last_modified[0] = '\0';
    dp_feed_url_conditional(&v, buf, lines);
    ck_assert_ptr_null(lines[0]);
}
END_TEST

START_TEST(test_feed_url_refresh_jitter_stays_within_ten_percent_both_ways)
{
    struct dp_prng p;
    dp_prng_seed(&p, 42);
    uint32_t lo = UINT32_MAX, hi = 0;
    for (int i = 0; i < 2000; i++) {
        uint32_t s = dp_feed_url_jitter_s(3600, &p);
        lo = s < lo ? s : lo;
        hi = s > hi ? s : hi;
    }
    ck_assert_uint_ge(lo, 3240);
    ck_assert_uint_le(hi, 3960);
    /* Both sides are used, not a constant offset. */
    ck_assert_uint_lt(lo, 3300);
    ck_assert_uint_gt(hi, 3900);
    ck_assert_uint_eq(dp_feed_url_jitter_s(1, &p), 1);
    ck_assert_uint_eq(dp_feed_url_jitter_s(0, &p), 1);
    /* Seeded: the same run again. */
    struct dp_prng a, b;
    dp_prng_seed(&a, 7);
    dp_prng_seed(&b, 7);
    for (int i = 0; i < 10; i++)
        ck_assert_uint_eq(dp_feed_url_jitter_s(600, &a), dp_feed_url_jitter_s(600, &b));
}
END_TEST

START_TEST(test_feed_url_backoff_doubles_from_thirty_seconds_up_to_the_refresh)
{
    struct dp_prng p;
    dp_prng_seed(&p, 1);
    /* Bases 30, 60, 120, ... capped at 3600; each within 10%. */
    static const uint32_t base[] = {30, 60, 120, 240, 480, 960, 1920, 3600, 3600, 3600};
    for (int round = 0; round < 200; round++) {
        for (unsigned f = 1; f <= 10; f++) {
            uint32_t s = dp_feed_url_backoff_s(f, 3600, &p);
            uint32_t b = base[f - 1];
            ck_assert_msg(s >= b - b / 10 && s <= b + b / 10, "failure %u: %u s, base %u", f, s, b);
        }
    }
    /* Many failures never overflow past the refresh. */
    uint32_t s = dp_feed_url_backoff_s(1000, 3600, &p);
    ck_assert_uint_le(s, 3960);
    ck_assert_uint_ge(s, 3240);
    /* A refresh shorter than the first backoff bounds it. */
    for (int i = 0; i < 100; i++) {
        s = dp_feed_url_backoff_s(1, 10, &p);
        ck_assert_uint_ge(s, 9);
        ck_assert_uint_le(s, 11);
    }
    ck_assert_uint_ge(dp_feed_url_backoff_s(3, 1, &p), 1);
}
END_TEST

START_TEST(test_feed_url_config_copy_is_deep)
{
    struct dp_url_config a, b;
    dp_feed_url_config_defaults(&a);
    ck_assert_uint_eq(a.refresh_s, 3600);
    ck_assert_uint_eq(a.max_size, 256u << 20);
    a.url[a.n++] = strdup("https://x.example/a");
    a.ca_file = strdup("/etc/ca.pem");
    ck_assert_int_eq(dp_feed_url_config_copy(&b, &a), 0);
    ck_assert_uint_eq(b.n, 1);
    ck_assert_ptr_ne(b.url[0], a.url[0]);
    ck_assert_str_eq(b.url[0], "https://x.example/a");
    ck_assert_str_eq(b.ca_file, "/etc/ca.pem");
    dp_feed_url_config_clear(&a);
    ck_assert_str_eq(b.url[0], "https://x.example/a");
    dp_feed_url_config_clear(&b);
    ck_assert_uint_eq(b.n, 0);
    ck_assert_ptr_null(b.ca_file);
}
END_TEST

static Suite *feed_url_suite(void)
{
    Suite *s = suite_create("feed_url");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_feed_url_check_takes_https_only_with_a_host);
    tcase_add_test(tc, test_feed_url_shown_hides_user_information_and_the_query);
    tcase_add_test(tc, test_feed_url_state_path_is_stable_and_one_per_url);
    tcase_add_test(tc, test_feed_url_state_header_reads_back_for_its_url_only);
    tcase_add_test(tc, test_feed_url_state_read_refuses_files_it_did_not_write);
    tcase_add_test(tc, test_feed_url_state_header_is_a_comment_to_the_list_parser);
    tcase_add_test(tc, test_feed_url_validators_come_from_the_final_response);
    tcase_add_test(tc, test_feed_url_validators_refuse_what_could_inject);
    tcase_add_test(tc, test_feed_url_conditional_sends_what_it_holds);
    tcase_add_test(tc, test_feed_url_refresh_jitter_stays_within_ten_percent_both_ways);
    tcase_add_test(tc, test_feed_url_backoff_doubles_from_thirty_seconds_up_to_the_refresh);
    tcase_add_test(tc, test_feed_url_config_copy_is_deep);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(feed_url_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
