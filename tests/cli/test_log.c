/* SPDX-License-Identifier: MIT */
/* dotproxyd's log sink (cli/log.c): repeated warnings are written once and
 * summed up once a window, on an injected clock; a full queue drops lines
 * without blocking the caller, counts them and says so once the output
 * drains. Standard error is a pipe this test reads (or leaves full). Each
 * test runs in its own process (Check's fork mode): the sink is global. */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <netinet/in.h>
#include <unistd.h>

#include "log.h"

static atomic_long fake_now = 1000;
static int err_read = -1; /* the test's end of stderr */
static char pending[1 << 17];
static size_t pending_len;

static time_t fake_clock(void)
{
    return (time_t)atomic_load(&fake_now);
}

/* stderr becomes a pipe; the sink is opened on the fake clock, as text or
 * JSON. */
static void open_sink_as(int json)
{
    int fds[2];

    ck_assert_int_eq(pipe(fds), 0);
    ck_assert_int_eq(dup2(fds[1], STDERR_FILENO), STDERR_FILENO);
    close(fds[1]);
    err_read = fds[0];
    pending_len = 0;
    dpd_log_set_clock(fake_clock);
    dpd_log_open(json, 0);
}

static void open_sink(void)
{
    open_sink_as(0);
}

/* The next line written to stderr, waiting at most ms; NULL on timeout. */
static const char *next_line(int ms, char *buf, size_t cap)
{
    for (;;) {
        char *nl = memchr(pending, '\n', pending_len);
        if (nl != NULL) {
            size_t n = (size_t)(nl - pending);
            snprintf(buf, cap, "%.*s", (int)n, pending);
            memmove(pending, nl + 1, pending_len - n - 1);
            pending_len -= n + 1;
            return buf;
        }
        struct pollfd pfd = {.fd = err_read, .events = POLLIN};
        if (poll(&pfd, 1, ms) <= 0)
            return NULL;
        ssize_t r = read(err_read, pending + pending_len, sizeof pending - pending_len);
        if (r <= 0)
            return NULL;
        pending_len += (size_t)r;
    }
}

START_TEST(test_log_writes_a_repeated_warning_once_then_one_summary_per_window)
{
    struct dpd_log_source src = {.worker = 2};
    char buf[2048];

    open_sink();
    for (int i = 0; i < 10; i++)
        dpd_log_library(DOTPROXY_LOG_WARN, "upstream u: connect: refused", &src);
    dpd_log_library(DOTPROXY_LOG_INFO, "marker", &src);
    ck_assert_str_eq(next_line(3000, buf, sizeof buf),
                     "dotproxyd[2]: warning: upstream u: connect: refused");
    ck_assert_str_eq(next_line(3000, buf, sizeof buf), "dotproxyd[2]: info: marker");

    /* The window ends: one summary of the 9 left out, from the writer. */
    atomic_fetch_add(&fake_now, 60);
    ck_assert_str_eq(next_line(3000, buf, sizeof buf),
                     "dotproxyd: warning: the last message was repeated 9 more times in 60 s: "
                     "upstream u: connect: refused");

    /* Still repeating: counted in the new window, summed up at its end. */
    for (int i = 0; i < 3; i++)
        dpd_log_library(DOTPROXY_LOG_WARN, "upstream u: connect: refused", &src);
    atomic_fetch_add(&fake_now, 30);
    dpd_log_library(DOTPROXY_LOG_INFO, "half way", &src);
    ck_assert_str_eq(next_line(3000, buf, sizeof buf), "dotproxyd[2]: info: half way");
    atomic_fetch_add(&fake_now, 30);
    ck_assert_str_eq(next_line(3000, buf, sizeof buf),
                     "dotproxyd: warning: the last message was repeated 3 more times in 60 s: "
                     "upstream u: connect: refused");

    /* A quiet window: forgotten, so the next one is written in full. */
    atomic_fetch_add(&fake_now, 61);
    dpd_log_main(DOTPROXY_LOG_INFO, "quiet");
    ck_assert_str_eq(next_line(3000, buf, sizeof buf), "dotproxyd: info: quiet");
    atomic_fetch_add(&fake_now, 1); /* let the writer sweep once more */
    dpd_log_main(DOTPROXY_LOG_INFO, "swept");
    ck_assert_str_eq(next_line(3000, buf, sizeof buf), "dotproxyd: info: swept");
    dpd_log_library(DOTPROXY_LOG_WARN, "upstream u: connect: refused", &src);
    ck_assert_str_eq(next_line(3000, buf, sizeof buf),
                     "dotproxyd[2]: warning: upstream u: connect: refused");
    dpd_log_close();
}
END_TEST

START_TEST(test_log_folds_by_level_and_text_across_workers_but_never_info)
{
    struct dpd_log_source a = {.worker = 0}, b = {.worker = 1};
    char buf[2048];

    open_sink();
    dpd_log_library(DOTPROXY_LOG_WARN, "same", &a);
    dpd_log_library(DOTPROXY_LOG_WARN, "same", &b); /* folded: same level and text */
    dpd_log_library(DOTPROXY_LOG_ERR, "same", &b);  /* another level: written */
    dpd_log_library(DOTPROXY_LOG_INFO, "chatty", &a);
    dpd_log_library(DOTPROXY_LOG_INFO, "chatty", &a); /* info is never folded */
    ck_assert_str_eq(next_line(3000, buf, sizeof buf), "dotproxyd[0]: warning: same");
    ck_assert_str_eq(next_line(3000, buf, sizeof buf), "dotproxyd[1]: error: same");
    ck_assert_str_eq(next_line(3000, buf, sizeof buf), "dotproxyd[0]: info: chatty");
    ck_assert_str_eq(next_line(3000, buf, sizeof buf), "dotproxyd[0]: info: chatty");
    /* At the exit the pending count is said, whatever the window. */
    dpd_log_close();
    ck_assert_str_eq(next_line(3000, buf, sizeof buf),
                     "dotproxyd: warning: the last message was repeated 1 more time in 0 s: same");
}
END_TEST

START_TEST(test_log_drops_and_counts_lines_when_stderr_is_full_without_blocking)
{
    char buf[2048], msg[200];
    struct timespec t0, t1;
    int n = 5000;

    open_sink();
    memset(msg, 'x', 150);
    msg[150] = '\0';
    /* Nobody reads: 64 KiB of pipe and the 512-line queue fill up. */
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < n; i++)
        dpd_log_main(DOTPROXY_LOG_INFO, "line %d %s", i, msg);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    ck_assert_msg(ms < 2000, "%d lines took %.0f ms to log", n, ms);
    unsigned long long dropped = dpd_log_dropped();
    ck_assert_msg(dropped > 0 && dropped < (unsigned long long)n, "dropped %llu", dropped);

    /* Reading again: every line that was kept, and the count of the
     * others, said each time a write went through after drops (the queue
     * may also overflow while the pipe still takes lines, so there may be
     * more than one report; they add up). */
    int kept = 0, reports = 0;
    unsigned long long reported = 0;
    const char *l;
    while ((l = next_line(1000, buf, sizeof buf)) != NULL) {
        unsigned long long k;
        if (sscanf(l, "dotproxyd: warning: %llu log line", &k) == 1) {
            ck_assert_msg(strstr(l, " dropped: ") != NULL, "'%s'", l);
            reported += k;
            reports++;
        } else {
            ck_assert_msg(strncmp(l, "dotproxyd: info: line ", 22) == 0, "'%s'", l);
            kept++;
        }
    }
    ck_assert_int_ge(reports, 1);
    ck_assert_int_eq(reported, dropped);
    ck_assert_int_eq((unsigned long long)kept + dropped, n);
    dpd_log_close();
}
END_TEST

START_TEST(test_log_keeps_folding_a_repeat_among_many_distinct_warnings)
{
    struct dpd_log_source src = {.worker = 0};
    char buf[2048], want[64];

    open_sink();
    dpd_log_library(DOTPROXY_LOG_WARN, "connect: refused", &src);
    for (int i = 0; i < 300; i++) {
        /* as "unusable for N ms": a new text each time */
        snprintf(want, sizeof want, "unusable for %d ms", i);
        dpd_log_library(DOTPROXY_LOG_WARN, want, &src);
        dpd_log_library(DOTPROXY_LOG_WARN, "connect: refused", &src);
    }
    ck_assert_str_eq(next_line(3000, buf, sizeof buf), "dotproxyd[0]: warning: connect: refused");
    for (int i = 0; i < 300; i++) {
        char line[96];
        snprintf(line, sizeof line, "dotproxyd[0]: warning: unusable for %d ms", i);
        ck_assert_str_eq(next_line(3000, buf, sizeof buf), line);
    }
    atomic_fetch_add(&fake_now, 60);
    ck_assert_str_eq(next_line(3000, buf, sizeof buf),
                     "dotproxyd: warning: the last message was repeated 300 more times in 60 s: "
                     "connect: refused");
    dpd_log_close();
}
END_TEST

/* The line after its "ts" field (checked for form), or NULL. */
static const char *after_ts(const char *line)
{
    static const char head[] = "{\"ts\":\"";
    if (strncmp(line, head, sizeof head - 1) != 0)
        return NULL;
    const char *ts = line + sizeof head - 1;
    /* 2026-12-05T10:22:14.026Z */
    if (strlen(ts) < 26 || ts[4] != '-' || ts[10] != 'T' || ts[19] != '.' || ts[23] != 'Z' ||
        ts[24] != '"' || ts[25] != ',')
        return NULL;
    return ts + 26;
}

/* --log-format json with --log-queries: a query line is an object with one
 * field per fact, not a text msg; strings are escaped (a name with a quote
 * and a backslash, as the library writes odd octets); list and rule appear
 * only when given; an API query has a null client. */
START_TEST(test_log_json_query_lines_have_fields)
{
    struct dpd_log_source src = {.worker = 3, .qlog_limit = 100};
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(5353)};
    char buf[2048];

    inet_pton(AF_INET, "192.0.2.7", &sin.sin_addr);
    open_sink_as(1);
    dotproxy_query_log e = {
        .client = (const struct sockaddr *)&sin,
        .client_len = sizeof sin,
        .transport = "udp",
        .qname = "we\"ird\\032name.example.",
        .qtype = 28,
        .rcode = 3,
        .latency_us = 1234,
        .upstream = "127.0.0.1@853#dns.test",
        .list = "ads",
        .rule = "ex\"ample",
    };
    dpd_log_query(&e, &src);
    dotproxy_query_log hit = {.transport = "api",
                              .qname = "a.example.",
                              .qtype = 1,
                              .rcode = 0,
                              .from_cache = 1,
                              .latency_us = 7};
    dpd_log_query(&hit, &src);

    const char *rest = after_ts(next_line(3000, buf, sizeof buf));
    ck_assert_ptr_nonnull(rest);
    ck_assert_str_eq(rest,
                     "\"level\":\"info\",\"worker\":3,\"event\":\"query\",\"client\":"
                     "\"192.0.2.7\",\"client_port\":5353,\"transport\":\"udp\",\"qname\":"
                     "\"we\\\"ird\\\\032name.example.\",\"qtype\":\"AAAA\",\"rcode\":"
                     "\"NXDOMAIN\",\"latency_ms\":1.234,\"source\":\"127.0.0.1@853#dns.test\","
                     "\"list\":\"ads\",\"rule\":\"ex\\\"ample\"}");
    rest = after_ts(next_line(3000, buf, sizeof buf));
    ck_assert_ptr_nonnull(rest);
    ck_assert_str_eq(rest, "\"level\":\"info\",\"worker\":3,\"event\":\"query\",\"client\":"
                           "null,\"client_port\":0,\"transport\":\"api\",\"qname\":\"a.example.\","
                           "\"qtype\":\"A\",\"rcode\":\"NOERROR\",\"latency_ms\":0.007,\"source\":"
                           "\"cache\"}");
    dpd_log_close();
}
END_TEST

/* The text format keeps its line, with list and rule when given. */
START_TEST(test_log_text_query_line_names_the_list_and_rule)
{
    struct dpd_log_source src = {.worker = 0, .qlog_limit = 100};
    char buf[2048];

    open_sink_as(0);
    dotproxy_query_log e = {.transport = "api",
                            .qname = "x.example.",
                            .qtype = 1,
                            .rcode = 3,
                            .latency_us = 10,
                            .list = "ads",
                            .rule = "x.example"};
    dpd_log_query(&e, &src);
    ck_assert_str_eq(next_line(3000, buf, sizeof buf),
                     "dotproxyd[0]: info: query - api x.example. A NXDOMAIN 0.010 ms upstream - "
                     "list ads rule x.example");
    dpd_log_close();
}
END_TEST

static Suite *log_suite(void)
{
    Suite *s = suite_create("log");
    TCase *tc = tcase_create("core");

    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_log_writes_a_repeated_warning_once_then_one_summary_per_window);
    tcase_add_test(tc, test_log_folds_by_level_and_text_across_workers_but_never_info);
    tcase_add_test(tc, test_log_keeps_folding_a_repeat_among_many_distinct_warnings);
    tcase_add_test(tc, test_log_drops_and_counts_lines_when_stderr_is_full_without_blocking);
    tcase_add_test(tc, test_log_json_query_lines_have_fields);
    tcase_add_test(tc, test_log_text_query_line_names_the_list_and_rule);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(log_suite());
    int failed;

    /* Check reports on stdout; stderr is what each test takes over. */
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
