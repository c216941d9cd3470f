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

/* A handle (cache.h) on c for one context; it holds a reference of its own,
 * dropped on release. */
void dp_shared_cache_handle(struct dp_cache_handle *h, struct dotproxy_cache *c);

#endif
