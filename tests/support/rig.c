/* SPDX-License-Identifier: MIT */
/* A dotproxy_ctx on its own thread for the integration tests (rig.h). */
#include "rig.h"

#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <limits.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dotproxy/error.h"
#include "dotproxy/loop.h"

#include "dnsclient.h"
#include "pki.h"

char ts_rig_pki[PATH_MAX];
static atomic_uint log_errors;

/* Written from the contexts' threads, read by the test's. */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char log_text[256 << 10];
static size_t log_len;

int ts_rig_pki_init(const char *tag)
{
    return ts_pki_tmpdir(ts_rig_pki, PATH_MAX, tag);
}

void ts_rig_pki_fini(void)
{
    ts_pki_tmpdir_remove(ts_rig_pki);
}

unsigned ts_rig_log_errors(void)
{
    return atomic_load(&log_errors);
}

const char *ts_rig_log_text(void)
{
    return log_text;
}

unsigned ts_rig_log_count(int max_level, const char *w1, const char *w2)
{
    unsigned found = 0;
    pthread_mutex_lock(&log_lock);
    for (const char *line = log_text; line < log_text + log_len;) {
        const char *eol = memchr(line, '\n', (size_t)(log_text + log_len - line));
        size_t n = eol != NULL ? (size_t)(eol - line) : (size_t)(log_text + log_len - line);
        char buf[1024];
        snprintf(buf, sizeof buf, "%.*s", (int)(n < sizeof buf ? n : sizeof buf - 1), line);
        int level = -1;
        if (sscanf(buf, "[%d]", &level) == 1 && level <= max_level && strstr(buf, w1) != NULL &&
            (w2 == NULL || strstr(buf, w2) != NULL))
            found++;
        line += n + 1;
    }
    pthread_mutex_unlock(&log_lock);
    return found;
}

int ts_rig_log_wait(int max_level, const char *w1, const char *w2, int ms)
{
    int64_t end = ts_now_ms() + ms;
    for (;;) {
        if (ts_rig_log_count(max_level, w1, w2) > 0)
            return 1;
        if (ts_now_ms() >= end)
            return 0;
        poll(NULL, 0, 2);
    }
}

/* Written from the context's thread. */
static void log_sink(int level, const char *msg, void *user)
{
    (void)user;
    if (level == DOTPROXY_LOG_ERR)
        atomic_fetch_add(&log_errors, 1);
    pthread_mutex_lock(&log_lock);
    int n = snprintf(log_text + log_len, sizeof log_text - log_len, "[%d] %s\n", level, msg);
    if (n > 0 && (size_t)n < sizeof log_text - log_len)
        log_len += (size_t)n;
    else
        log_text[log_len] = '\0'; /* full: keep what came first, whole lines only */
    pthread_mutex_unlock(&log_lock);
    if (getenv("DP_TEST_LOG") != NULL)
        fprintf(stderr, "%lld dotproxy[%d]: %s\n", (long long)(ts_now_ms() % 100000), level, msg);
}

ts_dotserver *ts_rig_server(ts_dotserver_opts o, const char *cert)
{
    char crt[64], key[64];
    snprintf(crt, sizeof crt, "%s.pem", cert);
    snprintf(key, sizeof key, "%s-key.pem", cert);
    return ts_rig_server_files(o, crt, key);
}

ts_dotserver *ts_rig_server_files(ts_dotserver_opts o, const char *crt, const char *key)
{
    char err[256] = "";
    o.cert_file = ts_pki_path(ts_rig_pki, crt);
    o.key_file = ts_pki_path(ts_rig_pki, key);
    o.errbuf = err;
    o.errbuf_len = sizeof err;
    ts_dotserver *s = NULL;
    ck_assert_msg(ts_dotserver_start(&s, &o) == 0, "DoT server start: %s", err);
    return s;
}

dotproxy_config *ts_rig_config(const uint16_t *ports, size_t n)
{
    dotproxy_config *cfg = NULL;
    ck_assert_int_eq(dotproxy_config_new(&cfg), 0);
    ck_assert_int_eq(dotproxy_config_add_listen(cfg, "127.0.0.1@0"), 0);
    for (size_t i = 0; i < n; i++) {
        char spec[128];
        snprintf(spec, sizeof spec, "127.0.0.1@%u#%s", (unsigned)ports[i], TS_PKI_SERVER_NAME);
        ck_assert_int_eq(dotproxy_config_add_upstream(cfg, spec), 0);
    }
    ck_assert_int_eq(dotproxy_config_set_ca_file(cfg, ts_pki_path(ts_rig_pki, "ca.pem")), 0);
    ck_assert_int_eq(dotproxy_config_set_log(cfg, log_sink, NULL, DOTPROXY_LOG_DEBUG), 0);
    return cfg;
}

static void *rig_thread(void *arg)
{
    ts_rig *r = arg;
    r->run_rc = dotproxy_ctx_run(r->ctx);
    return NULL;
}

void ts_rig_up(ts_rig *r, dotproxy_config *cfg)
{
    memset(r, 0, sizeof *r);
    int rc = dotproxy_ctx_new(&r->ctx, cfg);
    ck_assert_msg(rc == 0, "dotproxy_ctx_new: %s", dotproxy_strerror(rc));
    dotproxy_config_free(cfg);
    int port = dotproxy_ctx_listen_port(r->ctx, 0);
    ck_assert_int_gt(port, 0);
    ck_assert_int_le(port, 65535);
    r->port = (uint16_t)port;
    ck_assert_int_eq(pthread_create(&r->thread, NULL, rig_thread, r), 0);
    r->running = 1;
}

void ts_rig_stop(ts_rig *r)
{
    if (!r->running)
        return;
    dotproxy_ctx_stop(r->ctx);
    ck_assert_int_eq(pthread_join(r->thread, NULL), 0);
    r->running = 0;
    ck_assert_int_eq(r->run_rc, 0);
    ck_assert_int_eq(dotproxy_ctx_stopped(r->ctx), 1);
}

void ts_rig_down(ts_rig *r)
{
    ts_rig_stop(r);
    dotproxy_ctx_free(r->ctx);
    memset(r, 0, sizeof *r);
}

void ts_rig_reload_async(ts_rig *r, dotproxy_config *cfg)
{
    int rc = dotproxy_ctx_reload(r->ctx, cfg);
    ck_assert_msg(rc == 0, "dotproxy_ctx_reload: %s", dotproxy_strerror(rc));
    dotproxy_config_free(cfg);
}

uint64_t ts_rig_wait_ctr(const ts_rig *r, int which, uint64_t want, int ms)
{
    int64_t end = ts_now_ms() + ms;
    uint64_t v;
    while ((v = ts_rig_ctr(r, which)) < want && ts_now_ms() < end)
        poll(NULL, 0, 2);
    return v;
}

uint16_t ts_rig_refusing_port(int *fd)
{
    *fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(*fd, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(*fd, (struct sockaddr *)&sa, sizeof sa), 0);
    socklen_t len = sizeof sa;
    ck_assert_int_eq(getsockname(*fd, (struct sockaddr *)&sa, &len), 0);
    return ntohs(sa.sin_port);
}

uint16_t ts_rig_mute_port(int *fd)
{
    uint16_t port = ts_rig_refusing_port(fd);
    ck_assert_int_eq(listen(*fd, 64), 0);
    return port;
}

void ts_rig_reload(ts_rig *r, dotproxy_config *cfg)
{
    uint64_t before = ts_rig_ctr(r, DOTPROXY_CTR_RELOADS);
    ts_rig_reload_async(r, cfg);
    /* The context applies it in its own thread: wait until it did. */
    int64_t end = ts_now_ms() + 10000;
    while (ts_rig_ctr(r, DOTPROXY_CTR_RELOADS) == before && ts_now_ms() < end)
        poll(NULL, 0, 2);
    ck_assert_msg(ts_rig_ctr(r, DOTPROXY_CTR_RELOADS) > before, "the reload was not applied");
}

uint64_t ts_rig_ctr(const ts_rig *r, int which)
{
    return dotproxy_ctx_counter(r->ctx, which);
}

dotproxy_upstream_stats ts_rig_upstream(const ts_rig *r, size_t i)
{
    dotproxy_upstream_stats st;
    memset(&st, 0, sizeof st);
    ck_assert_int_eq(dotproxy_ctx_upstream_stats(r->ctx, i, &st), 0);
    return st;
}
