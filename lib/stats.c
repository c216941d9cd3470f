/* SPDX-License-Identifier: MIT */
/* What the context tells other threads: counters, the latency histogram and
 * a snapshot of its upstreams (for metrics endpoints). */
#include "stats.h"

#include <string.h>

#include "dotproxy/error.h"
#include "proxy.h"
#include "tls_pool.h"
#include "upstream.h"

static const uint64_t latency_bounds_us[DOTPROXY_LATENCY_BUCKETS] = {
    500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000, 5000000,
    UINT64_MAX,
};

DOTPROXY_EXPORT uint64_t dotproxy_latency_bound_us(size_t index)
{
    return index < DOTPROXY_LATENCY_BUCKETS ? latency_bounds_us[index] : UINT64_MAX;
}

void dp_stats_record_latency(struct dotproxy_ctx *ctx, uint64_t us)
{
    size_t i = 0;
    while (us > latency_bounds_us[i])
        i++;
    atomic_store_explicit(&ctx->latency[i],
                          atomic_load_explicit(&ctx->latency[i], memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

void dp_stats_publish(struct dotproxy_ctx *ctx)
{
    ctx->snap_next_us = dp_now(ctx) + 100000u;
    ctx->publish_pending = 0;
    if (dp_cache_handle_on(&ctx->cache)) {
        struct dp_cache_stats cs;
        ctx->cache.ops->stats(ctx->cache.impl, &cs);
        atomic_store_explicit(&ctx->ctr[DOTPROXY_CTR_CACHE_SHARED], (uint64_t)ctx->cache.shared,
                              memory_order_relaxed);
        atomic_store_explicit(&ctx->ctr[DOTPROXY_CTR_CACHE_ENTRIES], cs.entries,
                              memory_order_relaxed);
        atomic_store_explicit(&ctx->ctr[DOTPROXY_CTR_CACHE_EVICTIONS], cs.evictions,
                              memory_order_relaxed);
    }
    pthread_mutex_lock(&ctx->snap_lock);
    for (size_t i = 0; i < ctx->n_ups; i++) {
        const struct dp_upstream *up = ctx->ups[i];
        dotproxy_upstream_stats *st = &ctx->snap[i];
        memcpy(st->label, up->label, sizeof st->label);
        st->healthy = dp_upstream_usable(up, dp_now(ctx));
        st->consecutive_failures = up->fails;
        st->connections = up->n_conns;
        unsigned inflight = 0;
        for (unsigned k = 0; k < up->n_conns; k++)
            inflight += up->conns[k]->inflight - up->conns[k]->n_dead;
        st->inflight = inflight;
        st->srtt_us = up->srtt_us;
        st->idle_limit_us = up->idle_limit_us;
        st->queries = up->n_queries;
        st->answers = up->n_answers;
    }
    ctx->n_snap = ctx->n_ups;
    pthread_mutex_unlock(&ctx->snap_lock);
}

DOTPROXY_EXPORT int dotproxy_ctx_upstream_stats(dotproxy_ctx *ctx, size_t index,
                                                dotproxy_upstream_stats *out)
{
    if (ctx == NULL || out == NULL)
        return DOTPROXY_EINVAL;
    int rc = DOTPROXY_EINVAL;
    pthread_mutex_lock(&ctx->snap_lock);
    if (index < ctx->n_snap) {
        *out = ctx->snap[index];
        rc = 0;
    }
    pthread_mutex_unlock(&ctx->snap_lock);
    return rc;
}

DOTPROXY_EXPORT size_t dotproxy_ctx_upstream_count(dotproxy_ctx *ctx)
{
    if (ctx == NULL)
        return 0;
    pthread_mutex_lock(&ctx->snap_lock);
    size_t n = ctx->n_snap;
    pthread_mutex_unlock(&ctx->snap_lock);
    return n;
}

DOTPROXY_EXPORT size_t dotproxy_ctx_latency_histogram(const dotproxy_ctx *ctx, uint64_t *counts,
                                                      size_t n)
{
    if (ctx == NULL || counts == NULL)
        return 0;
    size_t k = n < DOTPROXY_LATENCY_BUCKETS ? n : DOTPROXY_LATENCY_BUCKETS;
    for (size_t i = 0; i < k; i++)
        counts[i] = atomic_load_explicit(&ctx->latency[i], memory_order_relaxed);
    return k;
}

DOTPROXY_EXPORT uint64_t dotproxy_ctx_counter(const dotproxy_ctx *ctx, int which)
{
    if (ctx == NULL || which < 0 || which >= DOTPROXY_CTR_COUNT_)
        return 0;
    return atomic_load_explicit(&ctx->ctr[which], memory_order_relaxed);
}
