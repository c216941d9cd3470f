/* SPDX-License-Identifier: MIT */
#include "shared_cache.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "dotproxy/error.h"

#define MAX_SHARDS 64u

struct shard {
    pthread_mutex_t lock;
    struct dp_cache *cache;
} __attribute__((aligned(64))); /* one cache line each: no false sharing of locks */

struct dotproxy_cache {
    atomic_uint refs;
    unsigned shift; /* 32 - log2(n_shards): shard = hash >> shift */
    unsigned n_shards;
    struct shard shards[];
};

static struct shard *shard_of(struct dotproxy_cache *c, const struct dp_cache_key *k)
{
    /* High bits: each dp_cache indexes its buckets with the low ones, so
     * taking those here would crowd every shard into a fraction of its
     * table. */
    return &c->shards[c->shift >= 32 ? 0 : k->hash >> c->shift];
}

DOTPROXY_EXPORT int dotproxy_cache_new(dotproxy_cache **out, const dotproxy_config *cfg)
{
    if (out == NULL || cfg == NULL || cfg->cache_size == 0)
        return DOTPROXY_EINVAL;
    /* Enough shards that two busy workers rarely meet on one lock, few enough
     * that each keeps room for large answers (at least ~100 entries each). */
    unsigned n = 1;
    while (n < MAX_SHARDS && (size_t)n * 2 * 100 <= cfg->cache_size)
        n *= 2;
    struct dotproxy_cache *c = calloc(1, sizeof *c + n * sizeof c->shards[0]);
    if (c == NULL)
        return DOTPROXY_ENOMEM;
    unsigned bits = 0;
    while ((1u << bits) < n)
        bits++;
    c->shift = 32 - bits;
    c->n_shards = n;
    atomic_init(&c->refs, 1);
    struct dp_cache_config cc = {
        .max_entries = (cfg->cache_size + n - 1) / n,
        .min_ttl = cfg->cache_min_ttl,
        .max_ttl = cfg->cache_max_ttl,
        .stale_max_s = cfg->stale_max_s,
    };
    for (unsigned i = 0; i < n; i++) {
        pthread_mutex_init(&c->shards[i].lock, NULL);
        if (dp_cache_new(&c->shards[i].cache, &cc) != 0) {
            c->n_shards = i + 1;
            dp_shared_cache_unref(c);
            return DOTPROXY_ENOMEM;
        }
    }
    *out = c;
    return 0;
}

DOTPROXY_EXPORT void dotproxy_cache_free(dotproxy_cache *c)
{
    dp_shared_cache_unref(c);
}

struct dotproxy_cache *dp_shared_cache_ref(struct dotproxy_cache *c)
{
    if (c != NULL)
        atomic_fetch_add(&c->refs, 1);
    return c;
}

void dp_shared_cache_unref(struct dotproxy_cache *c)
{
    if (c == NULL || atomic_fetch_sub(&c->refs, 1) != 1)
        return;
    for (unsigned i = 0; i < c->n_shards; i++) {
        dp_cache_free(c->shards[i].cache);
        pthread_mutex_destroy(&c->shards[i].lock);
    }
    free(c);
}

static int shared_lookup(void *impl, const struct dp_cache_key *k, uint64_t now_us, int allow_stale,
                         const uint8_t *query, size_t qlen, uint8_t *out, size_t cap,
                         size_t *outlen, size_t *ede_len)
{
    struct shard *s = shard_of(impl, k);
    pthread_mutex_lock(&s->lock);
    int rc = dp_cache_lookup_ede(s->cache, k, now_us, allow_stale, query, qlen, out, cap, outlen,
                                 ede_len);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static int shared_store(void *impl, const struct dp_cache_key *k, const uint8_t *ans, size_t len,
                        const dotproxy_dns_info *info, uint64_t now_us)
{
    struct shard *s = shard_of(impl, k);
    pthread_mutex_lock(&s->lock);
    int rc = dp_cache_store_parsed(s->cache, k, ans, len, info, now_us);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static void shared_flush(void *impl)
{
    struct dotproxy_cache *c = impl;
    for (unsigned i = 0; i < c->n_shards; i++) {
        pthread_mutex_lock(&c->shards[i].lock);
        dp_cache_flush(c->shards[i].cache);
        pthread_mutex_unlock(&c->shards[i].lock);
    }
}

static void shared_stats(void *impl, struct dp_cache_stats *out)
{
    struct dotproxy_cache *c = impl;
    memset(out, 0, sizeof *out);
    for (unsigned i = 0; i < c->n_shards; i++) {
        struct dp_cache_stats st;
        pthread_mutex_lock(&c->shards[i].lock);
        dp_cache_get_stats(c->shards[i].cache, &st);
        pthread_mutex_unlock(&c->shards[i].lock);
        out->hits += st.hits;
        out->misses += st.misses;
        out->stale_hits += st.stale_hits;
        out->stores += st.stores;
        out->evictions += st.evictions;
        out->expired += st.expired;
        out->entries += st.entries;
        out->bytes += st.bytes;
    }
}

static void shared_release(void *impl)
{
    dp_shared_cache_unref(impl);
}

static const struct dp_cache_ops shared_ops = {
    .lookup = shared_lookup,
    .store = shared_store,
    .flush = shared_flush,
    .stats = shared_stats,
    .release = shared_release,
};

void dp_shared_cache_handle(struct dp_cache_handle *h, struct dotproxy_cache *c)
{
    h->ops = &shared_ops;
    h->impl = dp_shared_cache_ref(c);
    h->shared = 1;
}
