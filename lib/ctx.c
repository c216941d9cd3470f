/* SPDX-License-Identifier: MIT */
/* The context as a whole: creation and teardown of its parts, the loop
 * turn (what happens before and after the ready fds and timers), graceful
 * stop, and the public functions that drive it (tier 1 and tier 2, thin
 * wrappers over loop.c) or poke it from other threads. The query pipeline
 * itself is proxy.c's. */
#include "proxy.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "dotproxy/error.h"
#include "dotproxy/loop.h"
#include "dynblock.h"
#include "policy.h"
#include "reload.h"
#include "shared_cache.h"
#include "stats.h"
#include "tls_pool.h"
#include "trust.h"
#include "upstream.h"

#define DRAIN_US 1500000u /* graceful stop: most time given to queries in flight */

/* ---- the turn (loop hooks) ---- */

/* Gauges and the upstream snapshot, for other threads. */
static void publish(struct dotproxy_ctx *ctx)
{
    uint64_t now = dp_now(ctx);
    if (dp_cache_handle_on(&ctx->cache)) {
        struct dp_cache_stats cs;
        ctx->cache.ops->stats(ctx->cache.impl, &cs);
        dp_ctr_set(&ctx->stats.ctr, DOTPROXY_CTR_CACHE_SHARED, (uint64_t)ctx->cache.shared);
        dp_ctr_set(&ctx->stats.ctr, DOTPROXY_CTR_CACHE_ENTRIES, cs.entries);
        dp_ctr_set(&ctx->stats.ctr, DOTPROXY_CTR_CACHE_EVICTIONS, cs.evictions);
    }
    dotproxy_upstream_stats *snap = dp_stats_snap_begin(&ctx->stats);
    for (size_t i = 0; i < ctx->upstreams.n; i++) {
        dp_upstream_describe(ctx->upstreams.ups[i], now, &snap[i]);
        dp_tls_pool_describe(ctx->upstreams.ups[i], &snap[i]);
    }
    dp_stats_snap_end(&ctx->stats, ctx->upstreams.n, now);
}

static void begin_stop(struct dotproxy_ctx *ctx)
{
    ctx->stopping = 1;
    ctx->drain_until_us = dp_now(ctx) + DRAIN_US;
    dp_listener_quiesce(&ctx->listeners);
    dp_tls_listener_quiesce(ctx->tls);
    dp_log(&ctx->log, DOTPROXY_LOG_INFO, "stopping: %zu queries in flight", ctx->n_active);
}

static void finish_stop(struct dotproxy_ctx *ctx)
{
    dp_proxy_fail_all(ctx, DOTPROXY_ESTATE);
    dp_tls_pool_flush(&ctx->pool, 1);
    dp_listener_flush(&ctx->listeners);
    dp_tls_listener_flush(ctx->tls);
    dp_listener_udp_flush(&ctx->listeners);
    dp_listener_close_clients(&ctx->listeners);
    dp_tls_listener_close_clients(ctx->tls);
    dp_listener_close(&ctx->listeners);
    dp_tls_pool_shutdown(&ctx->pool);
    ctx->stopped = 1;
}

static void turn_begin(void *user)
{
    struct dotproxy_ctx *ctx = user;
    ctx->in_process = 1;
    struct dotproxy_config *n = atomic_exchange(&ctx->pending_cfg, NULL);
    if (n != NULL)
        dp_reload_apply(ctx, n);
    if (atomic_exchange(&ctx->flush_cache, 0) && dp_cache_handle_on(&ctx->cache)) {
        ctx->cache.ops->flush(ctx->cache.impl);
        dp_log(&ctx->log, DOTPROXY_LOG_INFO, "answer cache flushed");
    }
    dp_block_part_refresh(&ctx->block);
    dp_proxy_run_api_queries(ctx);
}

/* The blocker's thread swapped in new lists: a turn moves to them. */
static void block_wake(void *user)
{
    dotproxy_ctx_wakeup(user);
}

static void turn_end(void *user)
{
    struct dotproxy_ctx *ctx = user;
    uint64_t now = dp_now(ctx);
    dp_tls_pool_sweep(&ctx->pool);
    dp_proxy_expire(ctx);
    if (atomic_load(&ctx->stop_requested) && !ctx->stopping && !ctx->stopped)
        begin_stop(ctx);
    /* Answers and queries produced this turn go out now, coalesced. Writing
     * to clients can resume paused ones, whose queries then need a flush. */
    do
        dp_tls_pool_flush(&ctx->pool, 0);
    while (dp_listener_flush(&ctx->listeners) | dp_tls_listener_flush(ctx->tls));
    dp_listener_udp_flush(&ctx->listeners);
    if (ctx->stopping && !ctx->stopped && (ctx->n_active == 0 || now >= ctx->drain_until_us))
        finish_stop(ctx);
    dp_ctr_set(&ctx->stats.ctr, DOTPROXY_CTR_INFLIGHT, ctx->n_active);
    /* Gauges and the upstream snapshot follow at most 100 ms behind: a turn
     * too soon after the last publish leaves one pending, and the loop wakes
     * for it (once, not forever while idle). */
    if (dp_stats_due(&ctx->stats, now))
        publish(ctx);
    ctx->in_process = 0;
}

static uint64_t next_due(void *user)
{
    const struct dotproxy_ctx *ctx = user;
    if (atomic_load(&ctx->pending_cfg) != NULL || atomic_load(&ctx->flush_cache) ||
        (atomic_load(&ctx->stop_requested) && !ctx->stopping && !ctx->stopped))
        return 0;
    uint64_t due = dp_loop_next_due(&ctx->loop);
    uint64_t t = dp_proxy_next_due(ctx);
    if (t < due)
        due = t;
    t = dp_stats_next_due(&ctx->stats);
    if (t < due)
        due = t;
    t = dp_tls_pool_next_due(&ctx->pool);
    if (t < due)
        due = t;
    if (ctx->stopping && !ctx->stopped && ctx->drain_until_us < due)
        due = ctx->drain_until_us;
    return due;
}

static int stopped(void *user)
{
    return dotproxy_ctx_stopped(user);
}

static void wake_on_ready(struct dp_io *io, unsigned revents)
{
    uint64_t v;
    (void)revents;
    while (read(io->fd, &v, sizeof v) > 0)
        ;
}

/* An upstream's backoff is over: let the pool try it again. */
static void probe_upstream(struct dp_upstream *up, void *user)
{
    struct dotproxy_ctx *ctx = user;
    dp_tls_pool_probe(&ctx->pool, up);
}

/* An idle upstream's health check: a query on its open connection. */
static void ping_upstream(struct dp_upstream *up, void *user)
{
    struct dotproxy_ctx *ctx = user;
    dp_tls_pool_ping(&ctx->pool, up);
}

/* ---- creation and teardown ---- */

/* Build and start a context; on failure, why[0..cap) (when given) says
 * what went wrong in a line: the error the context logged last, or the
 * code's own text when it logged none. */
static int ctx_new(dotproxy_ctx **out, const dotproxy_config *cfg, char *why, size_t cap)
{
    if (out == NULL || cfg == NULL || cfg->n_upstream == 0) {
        if (why != NULL && cap > 0)
            snprintf(why, cap, "%s",
                     out == NULL || cfg == NULL ? "no context or configuration given"
                                                : "no upstream configured");
        return DOTPROXY_EINVAL;
    }
    struct dotproxy_ctx *ctx = calloc(1, sizeof *ctx);
    if (ctx == NULL) {
        if (why != NULL && cap > 0)
            snprintf(why, cap, "%s", dotproxy_strerror(DOTPROXY_ENOMEM));
        return DOTPROXY_ENOMEM;
    }
    ctx->wake.fd = -1;
    dp_stats_init(&ctx->stats);
    const struct dp_loop_hooks hooks = {
        .turn_begin = turn_begin,
        .turn_end = turn_end,
        .next_due = next_due,
        .stopped = stopped,
        .user = ctx,
    };
    dp_loop_init(&ctx->loop);
    dp_loop_set_hooks(&ctx->loop, &hooks);
    dp_prng_seed_random(&ctx->prng);
    const struct dp_upstream_hooks up_hooks = {
        .probe = probe_upstream, .ping = ping_upstream, .user = ctx};
    dp_upstreams_init(&ctx->upstreams, &ctx->loop, &ctx->log, &ctx->prng, &ctx->cfg, &up_hooks);
    struct dp_pool_hooks pool_hooks;
    dp_proxy_pool_hooks(ctx, &pool_hooks);
    dp_tls_pool_init(&ctx->pool, &ctx->loop, &ctx->log, &ctx->stats.ctr, &ctx->cfg, &ctx->upstreams,
                     &pool_hooks);
    struct dp_listener_hooks listener_hooks;
    dp_proxy_listener_hooks(ctx, &listener_hooks);
    dp_listener_init(&ctx->listeners, &ctx->loop, &ctx->log, &ctx->stats.ctr, &ctx->cfg,
                     &ctx->policy, &listener_hooks);
    int rc = dp_config_copy(&ctx->cfg, cfg);
    if (rc != 0) {
        dp_stats_fini(&ctx->stats);
        free(ctx);
        if (why != NULL && cap > 0)
            snprintf(why, cap, "%s", dotproxy_strerror(rc));
        return rc;
    }
    ctx->log = ctx->cfg.log;
    ctx->log.last = &ctx->last_error;
    if ((rc = dp_proxy_init(ctx)) != 0)
        goto fail;
    gnutls_certificate_credentials_t cred;
    gnutls_priority_t prio;
    if ((rc = dp_trust_load(&ctx->log, &ctx->cfg, &cred, &prio)) != 0)
        goto fail;
    dp_tls_pool_set_trust(&ctx->pool, cred, prio);
    if ((rc = dp_policy_new(&ctx->policy, &ctx->cfg)) != 0)
        goto fail;
    if ((rc = dp_block_part_init(&ctx->block, &ctx->cfg, block_wake, ctx)) != 0)
        goto fail;
    /* Anomaly detection: the one given (shared by workers), else our own. */
    if (ctx->cfg.shared_dynblock != NULL)
        ctx->dynblock = dp_dynblock_ref(ctx->cfg.shared_dynblock);
    else if ((rc = dp_dynblock_new(&ctx->dynblock, &ctx->cfg, dp_now(ctx))) != 0)
        goto fail;
    if (ctx->cfg.shared_cache != NULL) {
        dp_shared_cache_handle(&ctx->cache, ctx->cfg.shared_cache);
    } else if (ctx->cfg.cache_size > 0) {
        struct dp_cache_config cc = {
            .max_entries = ctx->cfg.cache_size,
            .min_ttl = ctx->cfg.cache_min_ttl,
            .max_ttl = ctx->cfg.cache_max_ttl,
            .stale_max_s = ctx->cfg.stale_max_s,
        };
        if ((rc = dp_cache_handle_own(&ctx->cache, &cc)) != 0)
            goto fail;
    }
    rc = DOTPROXY_ENOMEM;
    struct dp_upstream *ups[DP_MAX_SET];
    size_t n_ups = 0, n_total = dp_config_upstream_total(&ctx->cfg);
    while (n_ups < n_total &&
           (ups[n_ups] = dp_upstream_new(&ctx->upstreams, &ctx->cfg, (unsigned)n_ups)) != NULL)
        n_ups++;
    dp_upstreams_set(&ctx->upstreams, ups, n_ups); /* freed with ctx, even the few */
    if (n_ups < n_total)
        goto fail;
    dp_forward_build(&ctx->forward, &ctx->cfg);
    dp_forward_announce(&ctx->cfg, &ctx->log);
    ctx->wake.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    ctx->wake.on_ready = wake_on_ready;
    if (ctx->wake.fd < 0) {
        rc = DOTPROXY_ESYS;
        goto fail;
    }
    if ((rc = dp_loop_add(&ctx->loop, &ctx->wake, DOTPROXY_EV_IN)) != 0)
        goto fail;
    if ((rc = dp_listener_open(&ctx->listeners)) != 0)
        goto fail;
    if ((rc = dp_tls_listener_new(&ctx->tls, &ctx->loop, &ctx->log, &ctx->stats.ctr, &ctx->cfg,
                                  &ctx->policy, &listener_hooks)) != 0)
        goto fail;
    publish(ctx);
    *out = ctx;
    return 0;
fail:
    if (why != NULL && cap > 0)
        snprintf(why, cap, "%s",
                 ctx->last_error.line[0] != '\0' ? ctx->last_error.line : dotproxy_strerror(rc));
    dotproxy_ctx_free(ctx);
    return rc;
}

DOTPROXY_EXPORT int dotproxy_ctx_new(dotproxy_ctx **out, const dotproxy_config *cfg)
{
    return ctx_new(out, cfg, NULL, 0);
}

DOTPROXY_EXPORT int dotproxy_ctx_new_why(dotproxy_ctx **out, const dotproxy_config *cfg, char *why,
                                         size_t cap)
{
    if (why != NULL && cap > 0)
        why[0] = '\0';
    return ctx_new(out, cfg, why, cap);
}

DOTPROXY_EXPORT int dotproxy_ctx_last_error(const dotproxy_ctx *ctx, char *buf, size_t cap)
{
    if (ctx == NULL || buf == NULL || cap == 0)
        return DOTPROXY_EINVAL;
    return snprintf(buf, cap, "%s", ctx->last_error.line);
}

DOTPROXY_EXPORT void dotproxy_ctx_free(dotproxy_ctx *ctx)
{
    if (ctx == NULL)
        return;
    ctx->in_process = 1; /* API callbacks may run from here */
    dp_proxy_fail_all(ctx, DOTPROXY_ESTATE);
    dp_listener_close_clients(&ctx->listeners);
    dp_listener_close(&ctx->listeners);
    dp_tls_listener_free(ctx->tls);
    ctx->tls = NULL;
    dp_tls_pool_shutdown(&ctx->pool);
    for (size_t i = 0; i < ctx->upstreams.n; i++) {
        dp_tls_pool_release(&ctx->pool, ctx->upstreams.ups[i]);
        dp_upstream_free(ctx->upstreams.ups[i]);
    }
    if (ctx->wake.fd >= 0) {
        dp_loop_del(&ctx->loop, &ctx->wake);
        close(ctx->wake.fd);
    }
    struct dotproxy_config *pending = atomic_exchange(&ctx->pending_cfg, NULL);
    if (pending != NULL) {
        dp_config_clear(pending);
        free(pending);
    }
    dp_tls_pool_fini(&ctx->pool);
    dp_proxy_fini(ctx);
    dp_cache_handle_release(&ctx->cache);
    dp_policy_free(ctx->policy);
    dp_block_part_fini(&ctx->block);
    dp_dynblock_unref(ctx->dynblock);
    dp_listener_fini(&ctx->listeners);
    dp_loop_fini(&ctx->loop);
    dp_config_clear(&ctx->cfg);
    dp_stats_fini(&ctx->stats);
    free(ctx);
}

DOTPROXY_EXPORT int dotproxy_ctx_listen_port(const dotproxy_ctx *ctx, size_t index)
{
    if (ctx == NULL)
        return DOTPROXY_EINVAL;
    return dp_listener_port(&ctx->listeners, index);
}

DOTPROXY_EXPORT int dotproxy_ctx_listen_tls_port(const dotproxy_ctx *ctx, size_t index)
{
    if (ctx == NULL)
        return DOTPROXY_EINVAL;
    return dp_tls_listener_port(ctx->tls, index);
}

/* ---- from other threads ---- */

DOTPROXY_EXPORT void dotproxy_ctx_cache_flush(dotproxy_ctx *ctx)
{
    if (ctx == NULL)
        return;
    atomic_store(&ctx->flush_cache, 1);
    dotproxy_ctx_wakeup(ctx);
}

DOTPROXY_EXPORT int dotproxy_ctx_reload(dotproxy_ctx *ctx, const dotproxy_config *cfg)
{
    if (ctx == NULL || cfg == NULL || cfg->n_upstream == 0)
        return DOTPROXY_EINVAL;
    struct dotproxy_config *copy = calloc(1, sizeof *copy);
    if (copy == NULL)
        return DOTPROXY_ENOMEM;
    if (dp_config_copy(copy, cfg) != 0) {
        free(copy);
        return DOTPROXY_ENOMEM;
    }
    /* Only the driving thread takes the pending copy (by exchange), so one
     * we displace here was never seen by it and is ours to free. */
    struct dotproxy_config *old = atomic_exchange(&ctx->pending_cfg, copy);
    if (old != NULL) {
        dp_config_clear(old);
        free(old);
    }
    dotproxy_ctx_wakeup(ctx);
    return 0;
}

DOTPROXY_EXPORT void dotproxy_ctx_stop(dotproxy_ctx *ctx)
{
    if (ctx == NULL)
        return;
    atomic_store(&ctx->stop_requested, 1);
    dotproxy_ctx_wakeup(ctx);
}

DOTPROXY_EXPORT int dotproxy_ctx_stopped(const dotproxy_ctx *ctx)
{
    return ctx != NULL && ctx->stopped;
}

DOTPROXY_EXPORT void dotproxy_ctx_wakeup(dotproxy_ctx *ctx)
{
    if (ctx == NULL || ctx->wake.fd < 0)
        return;
    uint64_t one = 1;
    int saved = errno; /* may run in a signal handler */
    ssize_t rc = write(ctx->wake.fd, &one, sizeof one);
    (void)rc;
    errno = saved;
}

/* ---- driving: tier 1 and tier 2 (loop.c) ---- */

DOTPROXY_EXPORT int dotproxy_ctx_set_watch(dotproxy_ctx *ctx, dotproxy_watch_fn fn, void *user)
{
    if (ctx == NULL)
        return DOTPROXY_EINVAL;
    return dp_loop_set_watch(&ctx->loop, fn, user);
}

DOTPROXY_EXPORT int dotproxy_ctx_fds(const dotproxy_ctx *ctx, dotproxy_pollfd *fds, size_t cap)
{
    if (ctx == NULL)
        return DOTPROXY_EINVAL;
    return dp_loop_fds(&ctx->loop, fds, cap);
}

DOTPROXY_EXPORT int dotproxy_ctx_timeout_ms(const dotproxy_ctx *ctx)
{
    if (ctx == NULL)
        return -1;
    return dp_loop_timeout_ms(&ctx->loop);
}

DOTPROXY_EXPORT int dotproxy_ctx_process(dotproxy_ctx *ctx, const dotproxy_pollfd *ready, size_t n)
{
    if (ctx == NULL)
        return DOTPROXY_EINVAL;
    return dp_loop_process(&ctx->loop, ready, n);
}

DOTPROXY_EXPORT int dotproxy_ctx_run_once(dotproxy_ctx *ctx, int timeout_ms)
{
    if (ctx == NULL)
        return DOTPROXY_EINVAL;
    return dp_loop_run_once(&ctx->loop, timeout_ms);
}

DOTPROXY_EXPORT int dotproxy_ctx_run(dotproxy_ctx *ctx)
{
    if (ctx == NULL)
        return DOTPROXY_EINVAL;
    return dp_loop_run(&ctx->loop);
}

/* ---- what it tells other threads (stats.c) ---- */

/* The struct as released in 0.1: what the unsized call writes, forever. */
#define UPSTREAM_STATS_0_1 (offsetof(dotproxy_upstream_stats, answers) + sizeof(uint64_t))

DOTPROXY_EXPORT int dotproxy_ctx_upstream_stats(dotproxy_ctx *ctx, size_t index,
                                                dotproxy_upstream_stats *out)
{
    return dotproxy_ctx_upstream_stats_sized(ctx, index, out, UPSTREAM_STATS_0_1);
}

DOTPROXY_EXPORT int dotproxy_ctx_upstream_stats_sized(dotproxy_ctx *ctx, size_t index,
                                                      dotproxy_upstream_stats *out, size_t size)
{
    dotproxy_upstream_stats all;
    if (ctx == NULL || out == NULL || size < UPSTREAM_STATS_0_1)
        return DOTPROXY_EINVAL;
    int rc = dp_stats_upstream(&ctx->stats, index, &all);
    if (rc != 0)
        return rc;
    if (size > sizeof all) {
        memset((uint8_t *)out + sizeof all, 0, size - sizeof all);
        size = sizeof all;
    }
    memcpy(out, &all, size);
    return 0;
}

DOTPROXY_EXPORT size_t dotproxy_struct_size(int which)
{
    switch (which) {
    case DOTPROXY_STRUCT_UPSTREAM_STATS: return sizeof(dotproxy_upstream_stats);
    case DOTPROXY_STRUCT_QUERY_LOG: return sizeof(dotproxy_query_log);
    default: return 0;
    }
}

DOTPROXY_EXPORT size_t dotproxy_ctx_upstream_count(dotproxy_ctx *ctx)
{
    if (ctx == NULL)
        return 0;
    return dp_stats_upstream_count(&ctx->stats);
}

DOTPROXY_EXPORT size_t dotproxy_ctx_latency_histogram(const dotproxy_ctx *ctx, uint64_t *counts,
                                                      size_t n)
{
    if (ctx == NULL || counts == NULL)
        return 0;
    return dp_stats_latency(&ctx->stats, counts, n);
}

DOTPROXY_EXPORT uint64_t dotproxy_ctx_counter(const dotproxy_ctx *ctx, int which)
{
    if (ctx == NULL || which < 0 || which >= DOTPROXY_CTR_COUNT_)
        return 0;
    return dp_ctr_get(&ctx->stats.ctr, which);
}

/* ---- dynamic blocks: the operator's view (any thread; the state has its
 * own locks, and ctx->dynblock is set once at creation) ---- */

static uint64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

DOTPROXY_EXPORT size_t dotproxy_ctx_dynblocks(const dotproxy_ctx *ctx, dotproxy_dynblock_entry *out,
                                              size_t cap)
{
    if (ctx == NULL || ctx->dynblock == NULL || (out == NULL && cap > 0))
        return 0;
    return dp_dynblock_list(ctx->dynblock, out, cap, mono_us());
}

DOTPROXY_EXPORT size_t dotproxy_ctx_dynblock_clear(dotproxy_ctx *ctx)
{
    if (ctx == NULL || ctx->dynblock == NULL)
        return 0;
    return dp_dynblock_clear(ctx->dynblock, mono_us());
}

DOTPROXY_EXPORT uint64_t dotproxy_ctx_anomaly_events(const dotproxy_ctx *ctx, size_t i)
{
    return ctx == NULL || ctx->dynblock == NULL ? 0 : dp_dynblock_events(ctx->dynblock, i);
}

DOTPROXY_EXPORT int dotproxy_ctx_dynblock_rule(const dotproxy_ctx *ctx, size_t i, char *text,
                                               size_t cap, uint64_t *hits)
{
    if (ctx == NULL || ctx->dynblock == NULL)
        return DOTPROXY_EINVAL;
    return dp_dynblock_rule(ctx->dynblock, i, text, cap, hits);
}

DOTPROXY_EXPORT size_t dotproxy_ctx_anomaly_top(const dotproxy_ctx *ctx,
                                                dotproxy_anomaly_offender *out, size_t cap)
{
    if (ctx == NULL || ctx->dynblock == NULL || out == NULL)
        return 0;
    return dp_dynblock_top(ctx->dynblock, out, cap, mono_us());
}
