/* SPDX-License-Identifier: MIT */
/* What the context tells other threads: counters, the latency histogram and
 * a snapshot of its upstreams (for metrics endpoints). */
#include "stats.h"

#include <string.h>

#include "dotproxy/error.h"

#define PUBLISH_EVERY_US 100000u

static const uint64_t latency_bounds_us[DOTPROXY_LATENCY_BUCKETS] = {
    500,    1000,   2500,   5000,    10000,   25000,   50000,
    100000, 250000, 500000, 1000000, 2500000, 5000000, UINT64_MAX,
};

DOTPROXY_EXPORT uint64_t dotproxy_latency_bound_us(size_t index)
{
    return index < DOTPROXY_LATENCY_BUCKETS ? latency_bounds_us[index] : UINT64_MAX;
}

void dp_stats_init(struct dp_stats *st)
{
    memset(st, 0, sizeof *st);
    pthread_mutex_init(&st->snap_lock, NULL);
}

void dp_stats_fini(struct dp_stats *st)
{
    pthread_mutex_destroy(&st->snap_lock);
}

void dp_stats_record_latency(struct dp_stats *st, uint64_t us)
{
    size_t i = 0;
    while (us > latency_bounds_us[i])
        i++;
    atomic_store_explicit(&st->latency[i],
                          atomic_load_explicit(&st->latency[i], memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

int dp_stats_due(struct dp_stats *st, uint64_t now_us)
{
    if (now_us >= st->next_us)
        return 1;
    st->pending = 1;
    return 0;
}

uint64_t dp_stats_next_due(const struct dp_stats *st)
{
    return st->pending ? st->next_us : UINT64_MAX;
}

dotproxy_upstream_stats *dp_stats_snap_begin(struct dp_stats *st)
{
    pthread_mutex_lock(&st->snap_lock);
    return st->snap;
}

void dp_stats_snap_end(struct dp_stats *st, size_t n, uint64_t now_us)
{
    st->n_snap = n;
    pthread_mutex_unlock(&st->snap_lock);
    st->next_us = now_us + PUBLISH_EVERY_US;
    st->pending = 0;
}

int dp_stats_upstream(struct dp_stats *st, size_t index, dotproxy_upstream_stats *out)
{
    int rc = DOTPROXY_EINVAL;
    pthread_mutex_lock(&st->snap_lock);
    if (index < st->n_snap) {
        *out = st->snap[index];
        rc = 0;
    }
    pthread_mutex_unlock(&st->snap_lock);
    return rc;
}

size_t dp_stats_upstream_count(struct dp_stats *st)
{
    pthread_mutex_lock(&st->snap_lock);
    size_t n = st->n_snap;
    pthread_mutex_unlock(&st->snap_lock);
    return n;
}

size_t dp_stats_latency(const struct dp_stats *st, uint64_t *counts, size_t n)
{
    size_t k = n < DOTPROXY_LATENCY_BUCKETS ? n : DOTPROXY_LATENCY_BUCKETS;
    for (size_t i = 0; i < k; i++)
        counts[i] = atomic_load_explicit(&st->latency[i], memory_order_relaxed);
    return k;
}
