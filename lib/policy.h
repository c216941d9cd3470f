/* SPDX-License-Identifier: MIT */
/* Who may ask and how fast: the access list, the per-client token-bucket
 * rate limit and the per-client count of queries waiting for an answer.
 * One policy belongs to one context and is used by its thread only. */
#ifndef DP_POLICY_H
#define DP_POLICY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "config.h"

struct dp_policy;

/* Build from cfg (the fields used are copied; cfg may be freed afterwards).
 * Allocates every table once, here: checks never allocate.
 * 0 or DOTPROXY_ENOMEM (*out written only on success). */
int dp_policy_new(struct dp_policy **out, const struct dotproxy_config *cfg);
/* NULL-safe. */
void dp_policy_free(struct dp_policy *p);

enum dp_verdict {
    DP_POLICY_ALLOW = 0,
    DP_POLICY_REFUSE = 1, /* answer REFUSED */
    DP_POLICY_DROP = 2,   /* send nothing */
};

/* One call per client query, on the hot path: the access list, then the rate
 * limit. Returns an enum dp_verdict. now_us is a monotonic clock in
 * microseconds (injected, so tests pass their own). An address that is
 * neither AF_INET nor AF_INET6 is refused. IPv4-mapped IPv6 addresses
 * (::ffff:a.b.c.d) are treated as the IPv4 address everywhere. */
int dp_policy_check(struct dp_policy *p, const struct sockaddr *sa, uint64_t now_us);

/* Only the access list: 1 if sa may ask at all (TCP accept), else 0. */
int dp_policy_allowed(const struct dp_policy *p, const struct sockaddr *sa);

/* Per-client in-flight accounting for max_client_queries (UDP), keyed by the
 * full address (not the port). begin returns 0 if the client may have one
 * more query waiting (and counts it), -1 if it is at its cap; every begin
 * that returned 0 must be matched by one end for the same address. With
 * max_client_queries 0, begin always returns 0 and nothing is counted. */
int dp_policy_inflight_begin(struct dp_policy *p, const struct sockaddr *sa);
void dp_policy_inflight_end(struct dp_policy *p, const struct sockaddr *sa);
/* The same, keeping the address's place in the table (*home, written when
 * begin returns 0 and counted) for its end: the keyed hash is then computed
 * once per query, not twice. home is only valid for the policy that gave it. */
int dp_policy_inflight_begin_home(struct dp_policy *p, const struct sockaddr *sa, uint32_t *home);
void dp_policy_inflight_end_home(struct dp_policy *p, const struct sockaddr *sa, uint32_t home);

/* Counters for metrics: queries refused by the access list, refused or
 * dropped by the rate limit, refused by the in-flight cap, rate-limit buckets
 * evicted to make room, and rate-limit buckets in use now. */
struct dp_policy_stats {
    uint64_t acl_refused, rate_limited, inflight_capped, evicted;
    size_t buckets;
};
void dp_policy_stats(const struct dp_policy *p, struct dp_policy_stats *out);

#endif
