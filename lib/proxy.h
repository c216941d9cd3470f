/* SPDX-License-Identifier: MIT */
/* The context: one part per module (each module owns its part and others
 * ask it through functions), plus the state of the query pipeline
 * (proxy.c). ctx.c builds it and drives the turn. One context = one loop =
 * one thread. */
#ifndef DP_PROXY_H
#define DP_PROXY_H

#include <stdatomic.h>
#include <stdint.h>

#include "block.h"
#include "cache.h"
#include "config.h"
#include "dotproxy/proxy.h"
#include "forward.h"
#include "list.h"
#include "listener.h"
#include "log.h"
#include "loop.h"
#include "prng.h"
#include "query.h"
#include "stats.h"
#include "tls_listener.h"
#include "tls_pool.h"
#include "upstream.h"

/* Room for any answer plus what the EDNS rewrite may add. */
#define DP_SCRATCH (65535u + 512u)
/* RFC 8767 5: a client waits about 1.8 s for a refresh before stale. */
#define DP_STALE_AFTER_US 1800000u

struct dotproxy_ctx {
    struct dotproxy_config cfg; /* the modules point at it: it stays in place */
    struct dp_loop loop;        /* fds, timers, clock, the drive tiers (loop.c) */
    struct dp_logger log;
    struct dp_log_last last_error;      /* log.last points here */
    struct dp_prng prng;                /* the context's randomness (prng.h) */
    struct dp_stats stats;              /* counters, latency, upstream snapshot (stats.c) */
    struct dp_listeners listeners;      /* where clients reach us (listener.c) */
    struct dp_tls_listeners *tls;       /* DNS over TLS (tls_listener.c); NULL: none */
    struct dp_upstreams upstreams;      /* health and selection (upstream.c) */
    struct dp_pool pool;                /* TLS connections to the upstreams (tls_pool.c) */
    struct dp_forward forward;          /* forward zones: which upstreams a name may use */
    struct dp_cache_handle cache;       /* the answer cache, own or shared; impl NULL: off */
    struct dp_policy *policy;           /* access control, rate limits, per-client caps */
    unsigned policy_gen;                /* bumped when a reload replaces it */
    struct dp_block_part block;         /* blocklists: a snapshot of the shared policy (block.c) */
    struct dotproxy_dynblock *dynblock; /* anomaly detection (dynblock.c), own or shared */
    uint32_t dyn_slot; /* the client query being asked: its dp_dynblock_query slot */

    /* The pipeline (proxy.c). Query records: bump regions plus a LIFO free
     * list, so only as many records as were ever in flight at once are
     * touched (RSS). Records never move (lists, wire slots and TCP claims
     * point at them): a reload raising max_queries adds a region. */
    struct dp_qregion *qregions;    /* every region, oldest first */
    struct dp_qregion *qbump;       /* the region records are bumped from */
    size_t qpool_cap;               /* records in all regions */
    size_t n_records;               /* records out of the pool (<= cfg.max_queries) */
    struct dp_query *qfree;         /* singly linked through next_free */
    struct dp_list active;          /* all live queries, oldest deadline first */
    struct dp_list api_queue;       /* API queries admitted, entering the pipeline next turn */
    struct dp_list stale_watch;     /* queries that may fall back to stale, by due time */
    struct dp_query **inflight_tab; /* leaders by question (coalescing) */
    size_t inflight_mask;
    uint8_t *scratch; /* DP_SCRATCH: answers being rewritten */
    size_t n_active;

    /* The turn and requests from other threads (ctx.c). */
    int in_process;                                /* inside dotproxy_ctx_process() or _free() */
    struct dp_io wake;                             /* eventfd: wakeup/stop from anywhere */
    _Atomic(struct dotproxy_config *) pending_cfg; /* from dotproxy_ctx_reload */
    atomic_int flush_cache;                        /* from dotproxy_ctx_cache_flush */
    atomic_int stop_requested;
    int stopping;
    int stopped;
    uint64_t drain_until_us;
};

static inline uint64_t dp_now(const struct dotproxy_ctx *ctx)
{
    return ctx->loop.now_us;
}

/* A client query arrived (UDP or TCP): validate, answer errors at once, else
 * admit and dispatch it. `msg` is writable and may be modified. */
void dp_proxy_client_query(struct dotproxy_ctx *ctx, const struct dp_origin *o, uint8_t *msg,
                           size_t len);
/* An upstream answer for q (already matched by ID and question). The bytes
 * are writable and borrowed for the call. Frees q. */
void dp_proxy_answer(struct dotproxy_ctx *ctx, struct dp_query *q, uint8_t *msg, size_t len,
                     const dotproxy_dns_info *info);
/* No answer can be had for q: the client gets SERVFAIL, an API caller the
 * error (DOTPROXY_ETIMEDOUT, DOTPROXY_EUPSTREAM, DOTPROXY_ESTATE). Frees q. */
void dp_proxy_fail(struct dotproxy_ctx *ctx, struct dp_query *q, int err);
/* Choose an upstream for q and hand it to the pool; fails q when none is
 * usable. */
void dp_proxy_dispatch(struct dotproxy_ctx *ctx, struct dp_query *q);

/* The pipeline's side of the pool and the listeners (ctx.c gives them to
 * dp_tls_pool_init and dp_listener_init). */
void dp_proxy_pool_hooks(struct dotproxy_ctx *ctx, struct dp_pool_hooks *out);
void dp_proxy_listener_hooks(struct dotproxy_ctx *ctx, struct dp_listener_hooks *out);

/* For the turn (ctx.c). API queries admitted since the last turn enter the
 * pipeline (inside process(), where their callbacks may run). */
void dp_proxy_run_api_queries(struct dotproxy_ctx *ctx);
/* Handle the query deadlines due by now (serve-stale fallback, timeouts). */
void dp_proxy_expire(struct dotproxy_ctx *ctx);
/* The next query deadline, 0 (API queries to run) or UINT64_MAX. */
uint64_t dp_proxy_next_due(const struct dotproxy_ctx *ctx);
/* Fail every live query with err (stop, teardown). */
void dp_proxy_fail_all(struct dotproxy_ctx *ctx, int err);
/* The pipeline's own state: query records, in-flight table, scratch. 0 or
 * DOTPROXY_ENOMEM; fini (also after a failed init) wipes and frees it. */
int dp_proxy_init(struct dotproxy_ctx *ctx);
void dp_proxy_fini(struct dotproxy_ctx *ctx);
/* Make room for max_queries records before a reload sets it: a region is
 * added when it is above what was ever allocated, and the in-flight table
 * grows with it. Lowering only lowers the bound (records in use stay).
 * 0, or DOTPROXY_ENOMEM with nothing changed. */
int dp_proxy_resize(struct dotproxy_ctx *ctx, unsigned max_queries);

#endif
