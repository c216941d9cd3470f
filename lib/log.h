/* SPDX-License-Identifier: MIT */
#ifndef DP_LOG_H
#define DP_LOG_H

#include "dotproxy/config.h"

struct dp_logger {
    dotproxy_log_fn fn;
    void *user;
    int max_level;
};

#define DP_PRINTF(a, b) __attribute__((format(printf, a, b)))

/* Format and hand one line to the embedder's callback, if any and if level
 * is within its max level. Never prints anything itself. */
void dp_log(const struct dp_logger *lg, int level, const char *fmt, ...) DP_PRINTF(3, 4);

static inline int dp_log_enabled(const struct dp_logger *lg, int level)
{
    return lg->fn != NULL && level <= lg->max_level;
}

#endif
