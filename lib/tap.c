/* SPDX-License-Identifier: MIT */
/* The message tap: events for structured traffic logs (dnstap), built from
 * what the pipeline and the pool already hold and handed to the embedder's
 * callback. Knows no protocol encoding; the daemon's cli/dnstap.c does. */
#include "tap.h"

#include <time.h>

#include "dotproxy/error.h"

DOTPROXY_EXPORT int dotproxy_config_set_tap(dotproxy_config *cfg, dotproxy_tap_fn fn, void *user)
{
    if (cfg == NULL)
        return DOTPROXY_EINVAL;
    cfg->tap = fn;
    cfg->tap_user = user;
    return 0;
}

/* Out of line: only with a tap, off the path of every query. */
__attribute__((noinline)) void dp_tap_emit(const struct dotproxy_config *cfg, int kind,
                                           int transport, const struct sockaddr *query_addr,
                                           socklen_t query_addr_len,
                                           const struct sockaddr *response_addr,
                                           socklen_t response_addr_len, const uint8_t *msg,
                                           size_t len, uint64_t query_us, uint64_t now_us)
{
    /* The loop's clock is monotonic (and a test's may be fake): the wall
     * clock is read once, and the query's time placed before it by the
     * same distance as on the loop's clock. */
    struct timespec ts;
    uint64_t wall_ns = 0;
    if (clock_gettime(CLOCK_REALTIME, &ts) == 0)
        wall_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    uint64_t ago_ns = now_us > query_us ? (now_us - query_us) * 1000u : 0;
    int response = kind == DOTPROXY_TAP_CLIENT_RESPONSE || kind == DOTPROXY_TAP_FORWARDER_RESPONSE;
    dotproxy_tap_event ev = {
        .size = sizeof ev,
        .kind = kind,
        .transport = transport,
        .query_addr = query_addr,
        .query_addr_len = query_addr != NULL ? query_addr_len : 0,
        .response_addr = response_addr,
        .response_addr_len = response_addr != NULL ? response_addr_len : 0,
        .msg = msg,
        .len = len,
        .query_time_ns = wall_ns > ago_ns ? wall_ns - ago_ns : 0,
        .response_time_ns = response ? wall_ns : 0,
    };
    cfg->tap(&ev, cfg->tap_user);
}
