/* SPDX-License-Identifier: MIT */
#ifndef DP_STATS_H
#define DP_STATS_H

#include <stdint.h>

struct dotproxy_ctx;

/* Count one answer that took us microseconds (arrival to answer sent). */
void dp_stats_record_latency(struct dotproxy_ctx *ctx, uint64_t us);
/* Publish counters that are gauges and the upstream snapshot (driving
 * thread; at most every 100 ms). */
void dp_stats_publish(struct dotproxy_ctx *ctx);

#endif
