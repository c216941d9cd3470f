/* SPDX-License-Identifier: MIT */
/* dotproxyd: the operator HTTP server (Prometheus metrics, health check,
 * JSON API and a live status page), built on libmicrohttpd.
 *
 * It runs one thread of its own (libmicrohttpd's internal polling thread)
 * and reads the worker contexts only through the library's thread-safe
 * operator API (dotproxy_ctx_counter, dotproxy_ctx_upstream_stats,
 * dotproxy_ctx_latency_histogram, dotproxy_ctx_cache_flush), so it never
 * stops or slows a worker.
 *
 * Endpoints (anything else is 404; a known path with the wrong method is 405
 * with an Allow header):
 *   GET  /                    status page (HTML); its script and style are
 *        /status.js, /status.css  served separately so the Content-Security-
 *                             Policy needs no 'unsafe-inline'
 *   GET  /metrics             Prometheus text format 0.0.4
 *   GET  /health              200 "ok" when at least one upstream is healthy
 *                             in at least one worker, else 503
 *   GET  /api/v1/stats        counters summed over the workers, the latency
 *                             histogram, and the counters of each worker
 *   GET  /api/v1/upstreams    one object per upstream, aggregated over the
 *                             workers (matched by label, see below)
 *   POST /api/v1/cache/flush  empty every worker's answer cache
 *   POST /api/v1/reload       call opts->reload
 * The two POSTs need "Authorization: Bearer <token>": 403 when no token is
 * configured, 401 (with WWW-Authenticate) when it is missing or wrong.
 *
 * Aggregation over workers: counters are summed, except the reload counter,
 * which is the minimum (configurations every worker has applied: each
 * daemon reload is applied once per worker). Each worker keeps its own
 * connections and health per upstream; an upstream (same "ADDR@PORT#NAME"
 * label) is reported once, with connections, in-flight queries, queries and
 * answers summed, consecutive failures the maximum, healthy when it is
 * healthy in at least one worker (the same rule as /health; the JSON also
 * says in how many), the smoothed RTT the answer-weighted mean of the workers
 * that measured it, and the idle limit the smallest one learnt.
 *
 * Bounds: at most 32 connections at once, 10 s idle timeout per connection,
 * 16 KiB of request memory per connection, responses of at most 1 MiB (500
 * beyond). */
#ifndef DOTPROXYD_METRICS_H
#define DOTPROXYD_METRICS_H

#include <stddef.h>

#include <dotproxy/dotproxy.h>

struct dp_metrics;

struct dp_metrics_opts {
    /* "ADDR@PORT" or "PORT" (then 127.0.0.1); IPv4 or IPv6 literal (the
     * IPv6 one optionally in brackets). PORT 0 lets the kernel pick (see
     * dp_metrics_port). Copied. */
    const char *listen;
    /* Bearer token for mutating API calls; NULL (or "") = mutating calls
     * refused (403). Copied, and wiped from memory at stop. */
    const char *token;
    /* The worker contexts, read via the thread-safe API only. The array is
     * copied; the contexts must outlive the server (stop it first). */
    dotproxy_ctx **ctxs;
    size_t n_ctxs;
    /* Called from the HTTP thread for POST /api/v1/reload; returns 0 or -1.
     * NULL: reload answers 501. */
    int (*reload)(void *user);
    void *user;
};

/* Start serving; 0, or -1 with a message in err (bad address, cannot bind:
 * say which). *out is written only on success. */
int dp_metrics_start(struct dp_metrics **out, const struct dp_metrics_opts *o, char *err,
                     size_t errlen);

/* The TCP port the server listens on (useful with port 0). */
int dp_metrics_port(const struct dp_metrics *m);

/* Stop serving, join the server thread and free m. NULL-safe. */
void dp_metrics_stop(struct dp_metrics *m);

#endif
