/* SPDX-License-Identifier: MIT */
/* One answer cache for several contexts (one per worker thread): shards,
 * each a dp_cache behind its own mutex, chosen by the key's high hash bits.
 * docs/cache-design.md has the measurements behind this design. */
#ifndef DP_SHARED_CACHE_H
#define DP_SHARED_CACHE_H

#include <stdint.h>

#include "cache.h"
#include "dotproxy/proxy.h"

/* Take one more reference (config copies, contexts). */
struct dotproxy_cache *dp_shared_cache_ref(struct dotproxy_cache *c);
/* Drop a reference; the last one frees. NULL-safe. */
void dp_shared_cache_unref(struct dotproxy_cache *c);

int dp_shared_cache_lookup(struct dotproxy_cache *c, const struct dp_cache_key *k,
                           uint64_t now_us, int allow_stale, const uint8_t *query, size_t qlen,
                           uint8_t *out, size_t cap, size_t *outlen);
int dp_shared_cache_store(struct dotproxy_cache *c, const struct dp_cache_key *k,
                          const uint8_t *ans, size_t len, const dotproxy_dns_info *info,
                          uint64_t now_us);
void dp_shared_cache_flush(struct dotproxy_cache *c);
void dp_shared_cache_stats(struct dotproxy_cache *c, struct dp_cache_stats *out);

#endif
