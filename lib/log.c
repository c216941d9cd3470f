/* SPDX-License-Identifier: MIT */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void dp_log(const struct dp_logger *lg, int level, const char *fmt, ...)
{
    int keep = level == DOTPROXY_LOG_ERR && lg->last != NULL;
    /* fmt is never NULL; saying so keeps gcc 12 under -fsanitize=undefined
     * from warning that it may be (-Wformat-truncation, a false positive). */
    if (fmt == NULL || (!dp_log_enabled(lg, level) && !keep))
        return;
    char line[DP_LOG_LINE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (keep)
        memcpy(lg->last->line, line, sizeof line);
    if (dp_log_enabled(lg, level))
        lg->fn(level, line, lg->user);
}
