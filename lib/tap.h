/* SPDX-License-Identifier: MIT */
/* The message tap (include/dotproxy/tap.h): building an event and handing it
 * to the embedder's callback. Called only behind `if (cfg->tap != NULL)`,
 * so a context without a tap pays one branch per place. */
#ifndef DP_TAP_H
#define DP_TAP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "config.h"

/* One event of `kind` (DOTPROXY_TAP_*) to cfg's tap. Times are on the
 * loop's monotonic clock in microseconds: now_us is the event's time, read
 * just before the call, and query_us the query's; they are turned into
 * wall-clock times here, with one CLOCK_REALTIME read. */
void dp_tap_emit(const struct dotproxy_config *cfg, int kind, int transport,
                 const struct sockaddr *query_addr, socklen_t query_addr_len,
                 const struct sockaddr *response_addr, socklen_t response_addr_len,
                 const uint8_t *msg, size_t len, uint64_t query_us, uint64_t now_us);

#endif
