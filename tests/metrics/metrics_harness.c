/* SPDX-License-Identifier: MIT */
/* Test harness for the operator HTTP server (cli/http_server.c): real worker
 * contexts in front of the in-tree DoT server, with dpd_http_server serving them,
 * driven line by line from stdin by test_metrics.py and status_page.sh.
 *
 * Usage: metrics_harness TOKEN
 *
 * Sets up a throwaway PKI, a ts_dotserver upstream, two workers (contexts on
 * their own threads, each listening on 127.0.0.1, port chosen by the kernel,
 * answer cache on) and two metrics servers on 127.0.0.1 (port 0): one with
 * bearer token TOKEN and "status.example" as an allowed Host name, one
 * with neither. Then it sends a fixed set of queries
 * (worker 0: UDP a0 a1 a2 a0; worker 1: TCP b0 b1, all for type A under
 * "metrics.test"), checks every answer, waits (bounded) until the workers'
 * stats snapshots show them, and prints
 *   ready metrics=P notoken=P dns0=P dns1=P upstream=127.0.0.1@P#dns.test
 *         cert_not_after=T   (the upstream certificate's notAfter, Unix time)
 * Each command on stdin gets exactly one reply line:
 *   query W udp|tcp NAME   -> "answer rcode=R" or "error WHAT"
 *   poke                   -> wake every worker once (so a context that is
 *                             idle in poll() takes a turn and republishes its
 *                             stats snapshot, which the library refreshes
 *                             at most every 100 ms, at a turn) -> "ok"
 *   stop-upstream          -> stop the DoT server -> "ok"
 *   reload-fail 0|1        -> make the reload callback fail or not -> "ok"
 *   reloads                -> "reloads N" (times the callback ran)
 *   try-listen SPEC        -> start an extra metrics server on SPEC (stopping
 *                             the previous extra one): "ok port=P" or
 *                             "error MESSAGE"
 * At EOF everything is stopped and freed; the metrics ports are then bound
 * again to prove dpd_http_server_stop released them. Exit status 0 unless setup
 * or that final check failed. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include <dotproxy/dotproxy.h>

#include "dnsclient.h"
#include "dotserver.h"
#include "http_server.h"
#include "pki.h"

#define WORKERS       2
#define QUERY_WAIT_MS 5000

static char pki_dir[PATH_MAX];

/* notAfter of the first certificate of PEM file path (Unix time), -1 when
 * it cannot be read. */
static long long cert_not_after(const char *path)
{
    gnutls_datum_t pem = {NULL, 0};
    gnutls_x509_crt_t crt = NULL;
    long long t = -1;
    if (gnutls_load_file(path, &pem) == 0 && gnutls_x509_crt_init(&crt) == 0 &&
        gnutls_x509_crt_import(crt, &pem, GNUTLS_X509_FMT_PEM) == 0)
        t = (long long)gnutls_x509_crt_get_expiration_time(crt);
    if (crt != NULL)
        gnutls_x509_crt_deinit(crt);
    gnutls_free(pem.data);
    return t;
}
static dotproxy_config *cfg;
static dotproxy_ctx *ctxs[WORKERS];
static pthread_t threads[WORKERS];
static atomic_int reload_fail;
static atomic_uint reload_calls;

static void remove_pki(void)
{
    DIR *d = opendir(pki_dir);
    if (d != NULL) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            char p[2 * PATH_MAX];
            if (e->d_name[0] == '.')
                continue;
            snprintf(p, sizeof p, "%s/%s", pki_dir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(pki_dir);
}

static const char *pki_path(char *buf, size_t cap, const char *name)
{
    snprintf(buf, cap, "%s/%s", pki_dir, name);
    return buf;
}

static void *worker_main(void *arg)
{
    int rc = dotproxy_ctx_run(arg);
    if (rc != 0)
        fprintf(stderr, "harness: dotproxy_ctx_run: %s\n", dotproxy_strerror(rc));
    return NULL;
}

/* The daemon's reload re-reads its configuration; here the same one is
 * applied again, which the library counts (DOTPROXY_CTR_RELOADS). */
static int on_reload(void *user, char *err, size_t errlen)
{
    (void)user;
    (void)err;
    (void)errlen;
    atomic_fetch_add(&reload_calls, 1);
    if (atomic_load(&reload_fail))
        return -1;
    for (size_t i = 0; i < WORKERS; i++)
        if (dotproxy_ctx_reload(ctxs[i], cfg) != 0)
            return -1;
    return 0;
}

static void log_to_stderr(int level, const char *msg, void *user)
{
    (void)user;
    fprintf(stderr, "dotproxy[%d]: %s\n", level, msg);
}

static uint16_t dns_port(size_t w)
{
    return (uint16_t)dotproxy_ctx_listen_port(ctxs[w], 0);
}

/* One query for NAME type A to worker w; the rcode, or a negative errno. */
static int query(size_t w, int tcp, const char *name)
{
    static uint16_t next_id = 0x1000;
    uint8_t q[512], a[4096];
    int qlen = ts_dns_build_query(q, sizeof q, next_id++, name, TS_DNS_TYPE_A, 1232);
    if (qlen < 0)
        return qlen;
    int n;
    if (tcp) {
        int fd = ts_dns_tcp_connect(dns_port(w));
        if (fd < 0)
            return fd;
        n = ts_dns_tcp_send(fd, q, (size_t)qlen);
        if (n == 0)
            n = ts_dns_tcp_recv(fd, a, sizeof a, QUERY_WAIT_MS);
        close(fd);
    } else {
        n = ts_dns_udp_exchange(dns_port(w), q, (size_t)qlen, a, sizeof a, QUERY_WAIT_MS);
    }
    if (n < 0)
        return n;
    if (n == 0 || ts_dns_id(a, (size_t)n) != ts_dns_id(q, (size_t)qlen))
        return -EPROTO;
    int rcode = ts_dns_rcode(a, (size_t)n);
    if (rcode == TS_DNS_RCODE_NOERROR) {
        /* The answer must be the upstream's, not anything else. */
        uint8_t got[4], want[4];
        if (ts_dns_first_a(a, (size_t)n, got) != 0 || ts_dns_expected_a(name, want) != 0 ||
            memcmp(got, want, 4) != 0)
            return -EBADMSG;
    }
    return rcode;
}

/* The library refreshes upstream stats and the cache size at a loop turn at
 * most every 100 ms, and an idle worker takes no turn: wake the workers
 * until the snapshot shows what was sent (bounded), so that "ready" means
 * every endpoint already agrees with the queries made. */
static int settle(uint64_t answers, uint64_t cache_entries)
{
    for (int tries = 0; tries < 500; tries++) {
        uint64_t a = 0, e = 0;
        for (size_t i = 0; i < WORKERS; i++) {
            dotproxy_upstream_stats st;
            if (dotproxy_ctx_upstream_stats(ctxs[i], 0, &st) == 0)
                a += st.answers;
            e += dotproxy_ctx_counter(ctxs[i], DOTPROXY_CTR_CACHE_ENTRIES);
        }
        if (a == answers && e == cache_entries)
            return 0;
        for (size_t i = 0; i < WORKERS; i++)
            dotproxy_ctx_wakeup(ctxs[i]);
        poll(NULL, 0, 10);
    }
    return -1;
}

static int bind_again(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int on = 1;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int rc = bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 && listen(fd, 1) == 0 ? 0 : -1;
    close(fd);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s TOKEN\n", argv[0]);
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *tmp = getenv("TMPDIR");
    snprintf(pki_dir, sizeof pki_dir, "%s/dp-metrics-XXXXXX", tmp != NULL ? tmp : "/tmp");
    if (mkdtemp(pki_dir) == NULL) {
        perror("harness: mkdtemp");
        return 1;
    }
    int status = 1;
    ts_dotserver *srv = NULL;
    struct dpd_http_server *with_token = NULL, *without_token = NULL, *extra = NULL;
    size_t running = 0;
    char p1[2 * PATH_MAX], p2[2 * PATH_MAX], err[256] = "";

    if (ts_pki_make(pki_dir) != 0) {
        fprintf(stderr, "harness: ts_pki_make failed\n");
        goto out;
    }
    ts_dotserver_opts so = {
        .cert_file = pki_path(p1, sizeof p1, "server.pem"),
        .key_file = pki_path(p2, sizeof p2, "server-key.pem"),
        .errbuf = err,
        .errbuf_len = sizeof err,
    };
    if (ts_dotserver_start(&srv, &so) != 0) {
        fprintf(stderr, "harness: DoT server: %s\n", err);
        goto out;
    }
    char up[128];
    snprintf(up, sizeof up, "127.0.0.1@%u#%s", (unsigned)ts_dotserver_port(srv),
             TS_PKI_SERVER_NAME);
    if (dotproxy_config_new(&cfg) != 0 || dotproxy_config_add_listen(cfg, "127.0.0.1@0") != 0 ||
        dotproxy_config_add_upstream(cfg, up) != 0 ||
        dotproxy_config_set_ca_file(cfg, pki_path(p1, sizeof p1, "ca.pem")) != 0 ||
        dotproxy_config_set_cache_size(cfg, 1000) != 0 ||
        dotproxy_config_set_timeout_ms(cfg, 1500) != 0) {
        fprintf(stderr, "harness: configuration rejected\n");
        goto out;
    }
    if (getenv("DP_TEST_LOG") != NULL)
        dotproxy_config_set_log(cfg, log_to_stderr, NULL, DOTPROXY_LOG_DEBUG);
    for (size_t i = 0; i < WORKERS; i++) {
        int rc = dotproxy_ctx_new(&ctxs[i], cfg);
        if (rc != 0) {
            fprintf(stderr, "harness: dotproxy_ctx_new: %s\n", dotproxy_strerror(rc));
            goto out;
        }
    }
    for (; running < WORKERS; running++)
        if (pthread_create(&threads[running], NULL, worker_main, ctxs[running]) != 0) {
            fprintf(stderr, "harness: pthread_create failed\n");
            goto out;
        }

    struct dpd_http_server_opts mo = {
        .listen = "127.0.0.1@0",
        .token = argv[1],
        .ctxs = ctxs,
        .n_ctxs = WORKERS,
        .reload = on_reload,
        .allowed_hosts = "status.example",
    };
    if (dpd_http_server_start(&with_token, &mo, err, sizeof err) != 0) {
        fprintf(stderr, "harness: %s\n", err);
        goto out;
    }
    mo.listen = "0"; /* the "PORT" form: 127.0.0.1 */
    mo.token = NULL;
    mo.allowed_hosts = NULL;
    if (dpd_http_server_start(&without_token, &mo, err, sizeof err) != 0) {
        fprintf(stderr, "harness: %s\n", err);
        goto out;
    }

    static const struct {
        size_t worker;
        int tcp;
        const char *name;
    } initial[] = {
        {0, 0, "a0.metrics.test"}, {0, 0, "a1.metrics.test"}, {0, 0, "a2.metrics.test"},
        {0, 0, "a0.metrics.test"}, {1, 1, "b0.metrics.test"}, {1, 1, "b1.metrics.test"},
    };
    for (size_t i = 0; i < sizeof initial / sizeof initial[0]; i++) {
        int rc = query(initial[i].worker, initial[i].tcp, initial[i].name);
        if (rc != TS_DNS_RCODE_NOERROR) {
            fprintf(stderr, "harness: initial query %s: %d\n", initial[i].name, rc);
            goto out;
        }
    }
    /* a0 twice: the second from the cache. */
    if (settle(5, 5) != 0) {
        fprintf(stderr, "harness: the stats snapshot did not catch up\n");
        goto out;
    }
    long long not_after = cert_not_after(pki_path(p1, sizeof p1, "server.pem"));
    if (not_after <= 0) {
        fprintf(stderr, "harness: cannot read server.pem's notAfter\n");
        goto out;
    }
    printf("ready metrics=%d notoken=%d dns0=%u dns1=%u upstream=%s cert_not_after=%lld\n",
           dpd_http_server_port(with_token), dpd_http_server_port(without_token),
           (unsigned)dns_port(0), (unsigned)dns_port(1), up, not_after);

    char line[512];
    while (fgets(line, sizeof line, stdin) != NULL) {
        line[strcspn(line, "\r\n")] = '\0';
        char a1[300], a2[300];
        unsigned w;
        int flag;
        if (sscanf(line, "query %u %15s %299s", &w, a1, a2) == 3 && w < WORKERS) {
            int rc = query(w, strcmp(a1, "tcp") == 0, a2);
            if (rc >= 0)
                printf("answer rcode=%d\n", rc);
            else
                printf("error %s\n", strerror(-rc));
        } else if (strcmp(line, "poke") == 0) {
            for (size_t i = 0; i < WORKERS; i++)
                dotproxy_ctx_wakeup(ctxs[i]);
            printf("ok\n");
        } else if (strcmp(line, "stop-upstream") == 0) {
            ts_dotserver_stop(srv);
            srv = NULL;
            printf("ok\n");
        } else if (sscanf(line, "reload-fail %d", &flag) == 1) {
            atomic_store(&reload_fail, flag);
            printf("ok\n");
        } else if (strcmp(line, "reloads") == 0) {
            printf("reloads %u\n", atomic_load(&reload_calls));
        } else if (strncmp(line, "try-listen ", 11) == 0) {
            dpd_http_server_stop(extra);
            extra = NULL;
            mo.listen = line + 11;
            if (dpd_http_server_start(&extra, &mo, err, sizeof err) == 0)
                printf("ok port=%d\n", dpd_http_server_port(extra));
            else
                printf("error %s\n", err);
        } else {
            printf("error unknown command\n");
        }
    }

    int ports[2] = {dpd_http_server_port(with_token), dpd_http_server_port(without_token)};
    dpd_http_server_stop(extra);
    dpd_http_server_stop(with_token);
    dpd_http_server_stop(without_token);
    with_token = without_token = extra = NULL;
    status = 0;
    for (size_t i = 0; i < 2; i++)
        if (bind_again(ports[i]) != 0) {
            fprintf(stderr, "harness: port %d still bound after dpd_http_server_stop\n", ports[i]);
            status = 1;
        }
out:
    dpd_http_server_stop(extra);
    dpd_http_server_stop(with_token);
    dpd_http_server_stop(without_token);
    for (size_t i = 0; i < running; i++) {
        dotproxy_ctx_stop(ctxs[i]);
        pthread_join(threads[i], NULL);
    }
    for (size_t i = 0; i < WORKERS; i++)
        dotproxy_ctx_free(ctxs[i]);
    dotproxy_config_free(cfg);
    ts_dotserver_stop(srv);
    remove_pki();
    return status;
}
