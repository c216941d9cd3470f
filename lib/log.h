/* SPDX-License-Identifier: MIT */
#ifndef DP_LOG_H
#define DP_LOG_H

#include "dotproxy/config.h"

/* The last error-level line, kept for dotproxy_ctx_last_error() and for a
 * context that cannot start (whether or not a callback is set). */
#define DP_LOG_LINE 512

struct dp_log_last {
    char line[DP_LOG_LINE];
};

struct dp_logger {
    dotproxy_log_fn fn;
    void *user;
    int max_level;
    struct dp_log_last *last; /* NULL: not kept (a config's own logger) */
};

#define DP_PRINTF(a, b) __attribute__((format(printf, a, b)))

/* Format and hand one line to the embedder's callback, if any and if level
 * is within its max level; an error line is also kept in lg->last. Never
 * prints anything itself. */
void dp_log(const struct dp_logger *lg, int level, const char *fmt, ...) DP_PRINTF(3, 4);

static inline int dp_log_enabled(const struct dp_logger *lg, int level)
{
    return lg->fn != NULL && level <= lg->max_level;
}

#endif
