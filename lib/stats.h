/* SPDX-License-Identifier: MIT */
/* What a context tells other threads (metrics endpoints): counters, the
 * answer latency histogram and a snapshot of its upstreams. Written only by
 * the thread driving the context, read by any thread. It knows nothing of
 * the modules that feed it: they hold a pointer to the counters, and the
 * context fills the snapshot. */
#ifndef DP_STATS_H
#define DP_STATS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "dotproxy/proxy.h"

/* Relaxed atomics: one writer, so an increment stays a plain add. */
struct dp_counters {
    _Atomic uint64_t v[DOTPROXY_CTR_COUNT_];
};

static inline void dp_ctr_add(struct dp_counters *c, int which, uint64_t n)
{
    atomic_store_explicit(&c->v[which],
                          atomic_load_explicit(&c->v[which], memory_order_relaxed) + n,
                          memory_order_relaxed);
}

static inline void dp_ctr_inc(struct dp_counters *c, int which)
{
    dp_ctr_add(c, which, 1);
}

/* For gauges. */
static inline void dp_ctr_set(struct dp_counters *c, int which, uint64_t v)
{
    atomic_store_explicit(&c->v[which], v, memory_order_relaxed);
}

static inline uint64_t dp_ctr_get(const struct dp_counters *c, int which)
{
    return atomic_load_explicit(&c->v[which], memory_order_relaxed);
}

struct dp_stats {
    struct dp_counters ctr;
    _Atomic uint64_t latency[DOTPROXY_LATENCY_BUCKETS];
    /* The upstream snapshot, published at most every 100 ms. */
    pthread_mutex_t snap_lock;
    dotproxy_upstream_stats snap[DP_MAX_SET];
    size_t n_snap;
    uint64_t next_us; /* not published again before this */
    int pending;      /* something changed since the last publish */
};

void dp_stats_init(struct dp_stats *st);
void dp_stats_fini(struct dp_stats *st);

/* Count one answer that took us microseconds (arrival to answer sent). */
void dp_stats_record_latency(struct dp_stats *st, uint64_t us);

/* May the snapshot be published at now? If not, one is left pending, due at
 * dp_stats_next_due(). */
int dp_stats_due(struct dp_stats *st, uint64_t now_us);
uint64_t dp_stats_next_due(const struct dp_stats *st);
/* Publishing: begin returns the snapshot array (locked; room for
 * DP_MAX_SET), the caller fills n entries, end unlocks. */
dotproxy_upstream_stats *dp_stats_snap_begin(struct dp_stats *st);
void dp_stats_snap_end(struct dp_stats *st, size_t n, uint64_t now_us);

/* Readers, from any thread: as the public functions of dotproxy/proxy.h. */
int dp_stats_upstream(struct dp_stats *st, size_t index, dotproxy_upstream_stats *out);
size_t dp_stats_upstream_count(struct dp_stats *st);
size_t dp_stats_latency(const struct dp_stats *st, uint64_t *counts, size_t n);

#endif
