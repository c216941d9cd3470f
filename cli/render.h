/* SPDX-License-Identifier: MIT */
/* dotproxyd: what the operator HTTP server says, as text. Reads the worker
 * contexts through the library's thread-safe operator API only
 * (dotproxy_ctx_counter, dotproxy_ctx_upstream_stats,
 * dotproxy_ctx_latency_histogram) and renders the Prometheus text format
 * 0.0.4, the JSON API bodies and the health line. Knows nothing of HTTP;
 * http_server.c decides status codes and headers.
 *
 * Aggregation over workers: counters are summed, except the reload counter,
 * which is the minimum (configurations every worker has applied: each
 * daemon reload is applied once per worker), and the cache gauges when one
 * cache is shared by every worker (each reports the whole of it: counted
 * once). Each worker keeps its own connections and health per upstream; an
 * upstream (same "ADDR@PORT#NAME" label) is reported once, with
 * connections, in-flight queries, queries and answers summed, consecutive
 * failures the maximum, healthy when it is healthy in at least one worker
 * (the same rule as /health; the JSON also says in how many), the smoothed
 * RTT the answer-weighted mean of the workers that measured it, and the idle
 * limit the smallest one learnt.
 *
 * Every function may be called from any thread, as the operator API it
 * reads; each response is computed from one reading of every worker. */
#ifndef DOTPROXYD_RENDER_H
#define DOTPROXYD_RENDER_H

#include <stddef.h>

#include <dotproxy/dotproxy.h>

/* A response body being built. Start it zeroed; it grows up to 1 MiB. When
 * memory runs out or the body would grow past that, failed is set and
 * nothing more is written (the server then answers 500, never a cut body).
 * Release with dpd_render_buf_free. */
struct dpd_render_buf {
    char *p;
    size_t len, cap;
    int failed;
};

/* Free b->p and zero *b. NULL-safe. */
void dpd_render_buf_free(struct dpd_render_buf *b);

/* GET /metrics: the Prometheus text exposition of the n workers in ctxs.
 * 0, or -1 when the workers could not be read (out of memory; b untouched). */
int dpd_render_metrics(struct dpd_render_buf *b, dotproxy_ctx *const *ctxs, size_t n);

/* GET /api/v1/stats: the counters summed, the latency histogram (per
 * bucket, not cumulative) and every worker's counters, as JSON. 0 or -1 as
 * dpd_render_metrics. */
int dpd_render_stats(struct dpd_render_buf *b, dotproxy_ctx *const *ctxs, size_t n);

/* GET /api/v1/upstreams: a JSON array, one object per upstream label. */
void dpd_render_upstreams(struct dpd_render_buf *b, dotproxy_ctx *const *ctxs, size_t n);

/* GET /health: "ok\n" and 1 when at least one upstream is healthy in at
 * least one worker, else "no healthy upstream\n" and 0. */
int dpd_render_health(struct dpd_render_buf *b, dotproxy_ctx *const *ctxs, size_t n);

/* GET /api/v1/dynblocks: {"blocks":[{key, rule, detector, action, reason,
 * since, until (Unix seconds), queries_blocked}], "events":{detector: n},
 * "rules":[{rule, hits}]}. The daemon's workers share one detector: worker
 * 0 speaks for all. */
void dpd_render_dynblocks(struct dpd_render_buf *b, dotproxy_ctx *const *ctxs, size_t n);

/* {"error":MSG} and a line feed; MSG escaped as any JSON string here. */
void dpd_render_json_error(struct dpd_render_buf *b, const char *msg);

/* {"reloaded":false,"error":MSG} and a line feed: a failed POST /api/v1/reload. */
void dpd_render_reload_failed(struct dpd_render_buf *b, const char *msg);

/* The daemon's own families after dpd_render_metrics: the counter
 * dotproxyd_log_lines_dropped_total (lines its log queue had no room for). */
void dpd_render_daemon_metrics(struct dpd_render_buf *b, unsigned long long log_lines_dropped);
/* dotproxyd_dnstap_messages_total (handed to the dnstap writer) and
 * dotproxyd_dnstap_dropped_total (its queue was full: never waited for). */
void dpd_render_dnstap_metrics(struct dpd_render_buf *b, unsigned long long queued,
                               unsigned long long dropped);

/* GET /metrics, blocklist part: blocked, entries, last load, failures per
 * list of bl. */
void dpd_render_block_metrics(struct dpd_render_buf *b, dotproxy_blocker *bl);
/* GET /api/v1/blocklist/check?name=N: every list and rule matching name and
 * the deciding one, as JSON. 0, or -1 when name is no host name. */
int dpd_render_block_check(struct dpd_render_buf *b, dotproxy_blocker *bl, const char *name);

/* GET /metrics, feed part: per zone-transfer feed of bl, its serial,
 * entries, last success and failure, next refresh, transfers by type,
 * failures, NOTIFY messages and octets; and the NOTIFY messages refused. */
void dpd_render_feed_metrics(struct dpd_render_buf *b, dotproxy_blocker *bl);
/* GET /api/v1/feeds: the same as JSON (bl may be NULL: no feeds). */
void dpd_render_feeds(struct dpd_render_buf *b, dotproxy_blocker *bl);

#endif
