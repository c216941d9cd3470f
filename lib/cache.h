/* SPDX-License-Identifier: MIT */
/* The DNS answer cache of one proxy context: a bounded map from
 * (lower-cased qname, qtype, qclass, DO/CD/opcode) to an upstream answer,
 * with DNS-correct lifetimes (RFC 2308 negative caching, RFC 8767 serve-stale)
 * and TTLs decremented on the way out.
 *
 * Single-threaded: one cache per context, used by that context's thread only;
 * no locks. dp_cache_key_make() alone is reentrant (the hash seed is drawn
 * once per process, thread-safely).
 *
 * Memory: every entry is one allocation of an 80-octet header (LP64) + the
 * key (qname + 5) + the stored RRs (the answer minus header, question and
 * OPT) + 2 octets per RR for its TTL offset; that sum is what max_bytes
 * bounds and what dp_cache_stats.bytes reports. Fixed per cache, outside
 * max_bytes: the bucket array (8 octets x the next power of two >=
 * max_entries) and the eviction policy's ghost filter (2 to 4 octets per
 * max_entries). Measured for 100k entries of a 110-octet answer (4 A RRs):
 * 187 octets charged per entry, 208 octets of malloc'd memory per entry
 * (mallinfo2 delta, malloc's own headers included), plus ~13 octets per
 * max_entries for the fixed tables. */
#ifndef DP_CACHE_H
#define DP_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "dotproxy/dns.h"

struct dp_cache;

struct dp_cache_config {
    size_t max_entries;        /* 0 = cache off (new returns ok but everything misses) */
    size_t max_bytes;          /* bound on stored answer bytes + per-entry overhead;
                                  0 = derive: max_entries * 512 */
    uint32_t min_ttl, max_ttl; /* clamp for positive answers (seconds); max_ttl also
                                  caps negative answers */
    uint32_t stale_max_s;      /* keep expired entries this long for serve-stale
                                  (0 = drop at expiry) */
    uint32_t servfail_ttl;     /* seconds a SERVFAIL is cached; 0 = the default 5;
                                  capped at 300 (RFC 2308 7.1) */
};

/* Lower-cased uncompressed wire qname, qtype, qclass (network order), then
 * one octet of query flags (DO, CD, opcode): the query properties that change
 * the answer. Built only by dp_cache_key_make(). */
struct dp_cache_key {
    uint32_t hash;
    uint16_t len;
    uint8_t data[DOTPROXY_DNS_MAX_NAME + 6];
};

/* Make the key of a query msg[0..len) that dotproxy_dns_parse() described in
 * *info. Its DO bit (from the OPT) and CD bit go into the key, so answers
 * fetched with and without DNSSEC records never mix. The hash is SipHash
 * keyed with a random per-process seed, so clients cannot aim for one bucket.
 * Returns 0, DOTPROXY_EINVAL (NULL argument) or DOTPROXY_EMALFORMED (not
 * exactly one question, or a compressed question name). */
int dp_cache_key_make(struct dp_cache_key *k, const uint8_t *msg, size_t len,
                      const dotproxy_dns_info *info);

/* Create a cache with the bounds of *cfg (copied). 0, DOTPROXY_EINVAL (NULL,
 * max_ttl < min_ttl, absurd sizes) or DOTPROXY_ENOMEM; *out written only on
 * success. Free with dp_cache_free() (NULL-safe). */
int dp_cache_new(struct dp_cache **out, const struct dp_cache_config *cfg);
void dp_cache_free(struct dp_cache *c);

enum dp_cache_result {
    DP_CACHE_MISS = 0,
    DP_CACHE_HIT = 1,
    DP_CACHE_HIT_REFRESH = 2, /* hit, and close to expiry + popular: caller should prefetch */
    DP_CACHE_STALE = 3,       /* expired but within stale_max: only use if upstream fails */
};

/* Look up k, made from `query` (qlen octets). On HIT/HIT_REFRESH/STALE,
 * write into out[0..cap) a complete answer to `query`: the query's ID, RD and
 * CD, the cached header flags otherwise (QR, opcode, AA, RA, AD, rcode), the
 * query's question copied verbatim (its 0x20 letter case preserved), then the
 * cached answer/authority/additional RRs with every TTL decreased by the
 * entry's age (stale: every TTL 30, RFC 8767 4), and no OPT RR (EDNS is hop
 * by hop: the caller adds the client's). *outlen is set on those results
 * only. allow_stale 0: an expired entry is a MISS. HIT_REFRESH is returned at
 * most once per stored answer: when under 10% of its lifetime is left (of a
 * lifetime >= 10 s) and it was hit at least twice before.
 * Returns a dp_cache_result, DOTPROXY_ENOSPC (out too small; nothing counted)
 * or DOTPROXY_EINVAL (NULL argument, or `query` does not carry k's question).
 * Allocation-free. */
int dp_cache_lookup(struct dp_cache *c, const struct dp_cache_key *k, uint64_t now_us,
                    int allow_stale, const uint8_t *query, size_t qlen, uint8_t *out, size_t cap,
                    size_t *outlen);
/* The same, and (ede_len != NULL) the Extended DNS Error options (RFC 8914)
 * of the upstream answer stored, as option octets (OPTION-CODE 15, LENGTH,
 * data, for each) written right behind the answer, at out[*outlen ..
 * *outlen + *ede_len): the caller moves them into the OPT it adds
 * (dp_edns_add_client_opt_with). cap must hold both. Allocation-free. */
int dp_cache_lookup_ede(struct dp_cache *c, const struct dp_cache_key *k, uint64_t now_us,
                        int allow_stale, const uint8_t *query, size_t qlen, uint8_t *out,
                        size_t cap, size_t *outlen, size_t *ede_len);

/* Store the upstream answer ans[0..len) (any ID) for key k, replacing any
 * entry for k. Decides cacheability and lifetime:
 * - TC answers, opcodes other than QUERY and rcodes other than NOERROR,
 *   NXDOMAIN and SERVFAIL are not cached;
 * - positive: min TTL over all RRs but the OPT, each TTL clamped to
 *   [min_ttl, max_ttl]; a lifetime of 0 is not cached;
 * - NXDOMAIN and NODATA (NOERROR, no answer RRs): min(SOA TTL, SOA MINIMUM)
 *   of the first SOA in the authority section, which is stored with that TTL
 *   (RFC 2308 5); no SOA, not cached;
 * - SERVFAIL: servfail_ttl, header only, never served stale; a SERVFAIL does
 *   not replace a usable (fresh or stale) answer for k, so serve-stale still
 *   has it (RFC 8767 4);
 * - the OPT RR is not stored (answers where it is not the last RR are not
 *   cached: removing it from the middle would shift compression targets),
 *   only its Extended DNS Error options (dp_cache_lookup_ede gives them);
 * - answers whose question does not match k are rejected (DOTPROXY_EINVAL).
 * Returns 1 stored, 0 not cacheable, or DOTPROXY_EINVAL, DOTPROXY_EMALFORMED
 * (ans does not parse) or DOTPROXY_ENOMEM (the old entry, if any, is kept). */
int dp_cache_store(struct dp_cache *c, const struct dp_cache_key *k, const uint8_t *ans, size_t len,
                   uint64_t now_us);
/* The same for an answer the caller has already parsed (info from
 * dotproxy_dns_parse of exactly ans[0..len)): the proxy's path, which parses
 * every upstream answer once to match it to its query. */
int dp_cache_store_parsed(struct dp_cache *c, const struct dp_cache_key *k, const uint8_t *ans,
                          size_t len, const dotproxy_dns_info *info, uint64_t now_us);

/* Drop every entry (and the eviction policy's history). */
void dp_cache_flush(struct dp_cache *c);

struct dp_cache_stats {
    uint64_t hits, misses, stale_hits, stores, evictions, expired;
    size_t entries, bytes;
};

/* Counters since creation (flush does not reset them) and current size. */
void dp_cache_get_stats(const struct dp_cache *c, struct dp_cache_stats *out);

/* ---- the handle a context holds ----
 * A context answers from a cache of its own or from its share of one cache
 * that several contexts use (shared_cache.h). The handle hides which behind
 * one set of operations, so the context never asks. */
struct dp_cache_ops {
    int (*lookup)(void *impl, const struct dp_cache_key *k, uint64_t now_us, int allow_stale,
                  const uint8_t *query, size_t qlen, uint8_t *out, size_t cap, size_t *outlen,
                  size_t *ede_len); /* as dp_cache_lookup_ede */
    int (*store)(void *impl, const struct dp_cache_key *k, const uint8_t *ans, size_t len,
                 const dotproxy_dns_info *info, uint64_t now_us);
    void (*flush)(void *impl);
    void (*stats)(void *impl, struct dp_cache_stats *out);
    void (*release)(void *impl); /* drop the handle's hold on impl */
};

struct dp_cache_handle {
    const struct dp_cache_ops *ops;
    void *impl; /* NULL: no cache (every operation but release is then invalid) */
    int shared; /* impl is shared with other contexts (stats count it once) */
};

/* A handle on a new cache of the caller's own; released, it is freed. 0, or
 * the errors of dp_cache_new(); *h is written only on success. */
int dp_cache_handle_own(struct dp_cache_handle *h, const struct dp_cache_config *cfg);

static inline int dp_cache_handle_on(const struct dp_cache_handle *h)
{
    return h->impl != NULL;
}

/* Let go of h's cache and leave h off. NULL-safe on an empty handle. */
static inline void dp_cache_handle_release(struct dp_cache_handle *h)
{
    if (h->impl != NULL)
        h->ops->release(h->impl);
    h->ops = NULL;
    h->impl = NULL;
    h->shared = 0;
}

#endif
