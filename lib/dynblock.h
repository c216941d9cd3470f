/* SPDX-License-Identifier: MIT */
/* Anomaly detection and dynamic blocks: per-client rates (queries, NXDOMAIN,
 * SERVFAIL, UDP answer octets, query types), distinct missed names per
 * registrable domain, and the tunnel score per (client, domain), in fixed
 * tables; the blocks they start. One state may serve several contexts (one
 * per worker): every table is sharded behind its own lock, so that N
 * workers see the rates one worker would. docs/anomaly.md has the design. */
#ifndef DP_DYNBLOCK_H
#define DP_DYNBLOCK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "config.h"
#include "dotproxy/dns.h"
#include "dotproxy/proxy.h"

/* What a hook tells the pipeline: serve the query as usual, or one of
 * DOTPROXY_DYNBLOCK_REFUSE / _DROP / _TRUNCATE. */
#define DP_DYNBLOCK_PASS (-1)

/* Build from cfg's rules and exemptions (plus the default detectors).
 * epoch_us: the monotonic time (µs) the state's clock starts from; a hook's
 * now_us must not be below it. 0 or DOTPROXY_ENOMEM / DOTPROXY_EINVAL. */
int dp_dynblock_new(struct dotproxy_dynblock **out, const struct dotproxy_config *cfg,
                    uint64_t epoch_us);
/* "ADDR" or "ADDR/PREFIX", host bits zeroed. 0 or DOTPROXY_EADDR. */
int dp_dynblock_cidr_parse(struct dp_cidr *out, const char *text);
struct dotproxy_dynblock *dp_dynblock_ref(struct dotproxy_dynblock *db);
/* Drop a reference; the last frees. NULL-safe. */
void dp_dynblock_unref(struct dotproxy_dynblock *db);

/* A client query passed the access list and the header checks: count it,
 * score it, and say whether the client (or its tunnel to this domain) is
 * blocked. msg/info: the query, parsed. *slot (if slot is not NULL): where
 * the client's entry is, for the answer hook (0: nowhere). */
int dp_dynblock_query(struct dotproxy_dynblock *db, const struct sockaddr *client,
                      const uint8_t *msg, const dotproxy_dns_info *info, uint64_t now_us,
                      uint32_t *slot);
/* The cache could not answer it: count the name under its registrable
 * domain (name_hash: the cache key's hash, or 0) and say whether that
 * domain is blocked. */
int dp_dynblock_miss(struct dotproxy_dynblock *db, const struct sockaddr *client,
                     const uint8_t *msg, const dotproxy_dns_info *info, uint64_t name_hash,
                     uint64_t now_us);
/* An answer went to a client: its rcode, its size over UDP. slot: what
 * the query hook gave for its query (kept with the query), or 0; a slot
 * taken over by another client since is noticed (the entry is looked up
 * again), so a wrong one costs time, never a wrong count. */
void dp_dynblock_answer(struct dotproxy_dynblock *db, const struct sockaddr *client,
                        const uint8_t *msg, size_t len, int udp, uint16_t qtype, uint64_t now_us,
                        uint32_t slot);

/* Blocks whose time is up end (logged once). Called by the hooks about
 * every 100 ms; callers may call it too. */
void dp_dynblock_sweep(struct dotproxy_dynblock *db, uint64_t now_us);

/* The operator's view (any thread). */
size_t dp_dynblock_list(struct dotproxy_dynblock *db, dotproxy_dynblock_entry *out, size_t cap,
                        uint64_t now_us);
size_t dp_dynblock_clear(struct dotproxy_dynblock *db, uint64_t now_us);
uint64_t dp_dynblock_events(const struct dotproxy_dynblock *db, size_t detector);
int dp_dynblock_rule(const struct dotproxy_dynblock *db, size_t i, char *text, size_t cap,
                     uint64_t *hits);
size_t dp_dynblock_top(struct dotproxy_dynblock *db, dotproxy_anomaly_offender *out, size_t cap,
                       uint64_t now_us);
/* Memory the tables were given (allocated once, at creation). */
size_t dp_dynblock_memory(const struct dotproxy_dynblock *db);

#endif
