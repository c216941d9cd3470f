/* SPDX-License-Identifier: MIT */
/* dotproxyd: the operator HTTP server (--metrics): Prometheus metrics,
 * health check, JSON API and a live status page, built on libmicrohttpd.
 *
 * It runs one thread of its own (libmicrohttpd's internal polling thread)
 * and reads the worker contexts only through the library's thread-safe
 * operator API (dotproxy_ctx_counter, dotproxy_ctx_upstream_stats,
 * dotproxy_ctx_latency_histogram, dotproxy_ctx_cache_flush), so it never
 * stops or slows a worker. What the bodies say, and how values are
 * aggregated over workers, is render.h's part.
 *
 * Endpoints (anything else is 404; a known path with the wrong method is 405
 * with an Allow header):
 *   GET  /                    status page (HTML, cli/status/index.html); its
 *        /status.js, /status.css  script and style are served separately so
 *                             the Content-Security-Policy needs no
 *                             'unsafe-inline'
 *   GET  /metrics             Prometheus text format 0.0.4
 *   GET  /health              200 "ok" when at least one upstream is healthy
 *                             in at least one worker, else 503
 *   GET  /api/v1/stats        counters summed over the workers, the latency
 *                             histogram, and the counters of each worker
 *   GET  /api/v1/upstreams    one object per upstream, aggregated over the
 *                             workers (matched by label)
 *   POST /api/v1/cache/flush  empty every worker's answer cache
 *   POST /api/v1/reload       call opts->reload: 200 {"reloaded":true}, or
 *                             500 {"reloaded":false,"error":MSG} when it
 *                             failed
 * The two POSTs need "Authorization: Bearer <token>": 403 when no token is
 * configured, 401 (with WWW-Authenticate) when it is missing or wrong.
 *
 * Against DNS rebinding, every endpoint but /metrics and /health answers
 * 421 unless the Host header is an IP literal (IPv4, or IPv6 in brackets,
 * with or without a port), "localhost", or a name in opts->allowed_hosts.
 *
 * Bounds: 5 s idle timeout per connection, at most 8 connections from one
 * address, and when more than 48 connections are open a new one shuts
 * down the one quiet the longest, so a fresh connection (a /health probe)
 * is always answered; 16 KiB of request memory per connection, responses
 * of at most 1 MiB (500 beyond). */
#ifndef DOTPROXYD_HTTP_SERVER_H
#define DOTPROXYD_HTTP_SERVER_H

#include <stddef.h>

#include <dotproxy/dotproxy.h>

struct dpd_http_server;

struct dpd_http_server_opts {
    /* "[ADDR@]PORT": ADDR an IPv4 or IPv6 literal as dotproxy_endpoint_parse
     * reads it (the IPv6 one bare or in brackets), 127.0.0.1 when absent;
     * PORT 0..65535, 0 letting the kernel pick (see dpd_http_server_port).
     * Copied. */
    const char *listen;
    /* Bearer token for mutating API calls; NULL (or "") = mutating calls
     * refused (403). Copied, and wiped from memory at stop. */
    const char *token;
    /* The worker contexts, read via the thread-safe API only. The array is
     * copied; the contexts must outlive the server (stop it first). */
    dotproxy_ctx **ctxs;
    size_t n_ctxs;
    /* Host names (without port) that the status page and the API may be
     * reached by besides IP literals and "localhost": "NAME[,NAME...]",
     * compared ignoring case and a final dot. NULL: none. Copied. */
    const char *allowed_hosts;
    /* Called from the HTTP thread for POST /api/v1/reload; returns 0 when
     * the reload was applied, or -1 with what went wrong in err (errlen >
     * 0; may be left empty). It may block until the reload is done (the
     * daemon's is bounded), holding up the other requests meanwhile. NULL:
     * reload answers 501. */
    int (*reload)(void *user, char *err, size_t errlen);
    void *user;
    /* Read for GET /metrics: log lines the daemon dropped (its
     * dotproxyd_log_lines_dropped_total), from any thread. NULL: left out. */
    unsigned long long (*log_lines_dropped)(void);
    /* The blocklists, for GET /metrics and /api/v1/blocklist/check. NULL:
     * none (the check answers 404). Must outlive the server. */
    dotproxy_blocker *blocker;
    /* Read for GET /metrics: dnstap messages queued and dropped
     * (dotproxyd_dnstap_*_total), from any thread. NULL: left out. */
    void (*dnstap_counts)(unsigned long long *queued, unsigned long long *dropped);
};

/* Start serving; 0, or -1 with a message in err naming the value that is
 * wrong (bad address or port) or the address that cannot be bound, and why.
 * *out is written only on success. */
int dpd_http_server_start(struct dpd_http_server **out, const struct dpd_http_server_opts *o,
                          char *err, size_t errlen);

/* Serve b from now on for GET /metrics and /api/v1/blocklist/check: the
 * blocker made by a reload that brought the first lists. b must outlive the
 * server. Safe while the server runs; NULL-safe on s. */
void dpd_http_server_set_blocker(struct dpd_http_server *s, dotproxy_blocker *b);

/* The TCP port the server listens on (useful with port 0); -1 for NULL. */
int dpd_http_server_port(const struct dpd_http_server *s);

/* Stop serving, join the server thread and free s. NULL-safe. */
void dpd_http_server_stop(struct dpd_http_server *s);

/* The --metrics value "[ADDR@]PORT" (ADDR 127.0.0.1 when left out, PORT 0 to
 * let the kernel choose) as an endpoint, read by the library's spec parser:
 * the one reading of it, for the option parser and the server alike. 0, or
 * -1 with what is wrong (naming the value) in err. */
int dpd_http_server_parse_listen(const char *spec, dotproxy_endpoint *ep, char *err, size_t errlen);

#endif
