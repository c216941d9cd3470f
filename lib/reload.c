/* SPDX-License-Identifier: MIT */
/* Replacing a running context's configuration (dotproxy_ctx_reload): what
 * stays warm, what moves, what is refused. */
#include "reload.h"

#include "block.h"

#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "dotproxy/error.h"
#include "forward.h"
#include "policy.h"
#include "proxy.h"
#include "shared_cache.h"
#include "tls_pool.h"
#include "trust.h"
#include "upstream.h"

static int str_differs(const char *a, const char *b)
{
    return (a == NULL) != (b == NULL) || (a != NULL && strcmp(a, b) != 0);
}

void dp_reload_apply(struct dotproxy_ctx *ctx, struct dotproxy_config *n)
{
    int tls_changed = str_differs(n->ca_file, ctx->cfg.ca_file) ||
                      str_differs(n->tls_priority, ctx->cfg.tls_priority) ||
                      str_differs(n->tls.upstream_cert, ctx->cfg.tls.upstream_cert) ||
                      str_differs(n->tls.upstream_key, ctx->cfg.tls.upstream_key);
    gnutls_certificate_credentials_t cred = NULL;
    gnutls_priority_t prio = NULL;
    /* The trust is read afresh on every reload, whatever the path: an
     * operator removing a distrusted CA edits the file in place. */
    if (dp_trust_load(&ctx->log, n, &cred, &prio) != 0) {
        dp_log(&ctx->log, DOTPROXY_LOG_ERR,
               "reload: new TLS settings unusable; keeping the old configuration");
        dp_config_clear(n);
        free(n);
        return;
    }
    if (!tls_changed) {
        uint8_t was[DP_TRUST_DIGEST_SIZE], now[DP_TRUST_DIGEST_SIZE];
        tls_changed = dp_trust_digest(ctx->pool.cred, was) != 0 ||
                      dp_trust_digest(cred, now) != 0 || memcmp(was, now, sizeof was) != 0;
        if (tls_changed)
            dp_log(&ctx->log, DOTPROXY_LOG_INFO,
                   "reload: the trust anchors changed; every upstream connection and session "
                   "ticket made under the old ones is dropped");
    }
    if (!tls_changed) {
        /* Same anchors, same priorities: keep the credentials that the
         * warm connections were verified with. */
        gnutls_certificate_free_credentials(cred);
        gnutls_priority_deinit(prio);
        cred = NULL;
        prio = NULL;
    }
    int listen_changed = n->n_listen != ctx->cfg.n_listen;
    for (size_t i = 0; !listen_changed && i < n->n_listen; i++)
        listen_changed = memcmp(&n->listen[i], &ctx->cfg.listen[i], sizeof n->listen[i]) != 0;
    if (listen_changed) {
        dp_log(&ctx->log, DOTPROXY_LOG_WARN,
               "reload: listen addresses are kept as they are; restart to change them");
        memcpy(n->listen, ctx->cfg.listen, sizeof n->listen);
        n->n_listen = ctx->cfg.n_listen;
    }
    if (n->tls.n_listen != ctx->cfg.tls.n_listen ||
        memcmp(n->tls.listen, ctx->cfg.tls.listen, n->tls.n_listen * sizeof n->tls.listen[0]) !=
            0) {
        dp_log(&ctx->log, DOTPROXY_LOG_WARN,
               "reload: TLS listen addresses are kept as they are; restart to change them");
        memcpy(n->tls.listen, ctx->cfg.tls.listen, sizeof n->tls.listen);
        n->tls.n_listen = ctx->cfg.tls.n_listen;
    }
    /* Capacity limits: what was sized from them grows now, before the new
     * value is read anywhere (query records, the in-flight table), or the
     * old value stays. */
    if (n->max_queries != ctx->cfg.max_queries && dp_proxy_resize(ctx, n->max_queries) != 0) {
        dp_log(&ctx->log, DOTPROXY_LOG_ERR,
               "reload: out of memory for %u query records; keeping max-queries %u", n->max_queries,
               ctx->cfg.max_queries);
        n->max_queries = ctx->cfg.max_queries;
    }

    struct dp_upstream *nu[DP_MAX_SET] = {0};
    int kept[DP_MAX_SET] = {0};
    unsigned n_kept = 0;
    size_t n_total = dp_config_upstream_total(n);
    for (size_t i = 0; i < n_total; i++) {
        for (size_t j = 0; !tls_changed && j < ctx->upstreams.n && nu[i] == NULL; j++) {
            if (!kept[j] && dp_upstream_same(ctx->upstreams.ups[j], n, (unsigned)i)) {
                nu[i] = ctx->upstreams.ups[j];
                kept[j] = 1;
                n_kept++;
            }
        }
        if (nu[i] == NULL && (nu[i] = dp_upstream_new(&ctx->upstreams, n, (unsigned)i)) == NULL) {
            for (size_t k = 0; k < i; k++) {
                int was_kept = 0;
                for (size_t j = 0; j < ctx->upstreams.n; j++)
                    was_kept |= nu[k] == ctx->upstreams.ups[j];
                if (!was_kept)
                    dp_upstream_free(nu[k]);
            }
            if (cred != NULL) {
                gnutls_certificate_free_credentials(cred);
                gnutls_priority_deinit(prio);
            }
            dp_log(&ctx->log, DOTPROXY_LOG_ERR,
                   "reload: out of memory; keeping the old configuration");
            dp_config_clear(n);
            free(n);
            return;
        }
    }
    struct dp_list orphans;
    dp_list_init(&orphans);
    for (size_t j = 0; j < ctx->upstreams.n; j++) {
        if (kept[j])
            continue;
        dp_tls_pool_evict(ctx->upstreams.ups[j], &orphans);
        dp_tls_pool_release(&ctx->pool, ctx->upstreams.ups[j]);
        dp_upstream_free(ctx->upstreams.ups[j]);
    }
    /* A connection's wire-ID table is sized from max_inflight when it opens
     * and cannot change while IDs are on the wire; more connections than
     * max_connections would stay. Kept upstreams whose connections no
     * longer fit are reconnected: their queries move to the new ones. */
    int inflight_changed = n->max_inflight != ctx->cfg.max_inflight;
    int conns_raised = n->max_connections > ctx->cfg.max_connections;
    unsigned n_reconnected = 0;
    for (size_t j = 0; j < ctx->upstreams.n; j++) {
        struct dp_upstream *up = ctx->upstreams.ups[j];
        if (!kept[j] || up->pool.n_conns == 0 ||
            (!inflight_changed && up->pool.n_conns <= n->max_connections))
            continue;
        dp_tls_pool_evict(up, &orphans);
        dp_tls_pool_close_all(&ctx->pool, up);
        n_reconnected++;
    }
    if (n_reconnected > 0)
        dp_log(&ctx->log, DOTPROXY_LOG_INFO,
               "reload: max-inflight or max-connections changed: reconnecting %u upstream(s)",
               n_reconnected);
    if (tls_changed)
        dp_tls_pool_set_trust(&ctx->pool, cred, prio); /* no connection was kept */
    dp_upstreams_set(&ctx->upstreams, nu, n_total);
    struct dp_policy *np = NULL;
    if (dp_policy_new(&np, n) == 0) {
        /* Queries counted by the old policy are not uncounted in the new. */
        dp_policy_free(ctx->policy);
        ctx->policy = np;
        ctx->policy_gen++;
    } else {
        dp_log(&ctx->log, DOTPROXY_LOG_ERR,
               "reload: out of memory for the access policy; "
               "keeping the old one");
    }
    int cache_changed =
        n->shared_cache == NULL && ctx->cfg.shared_cache == NULL &&
        (n->cache_size != ctx->cfg.cache_size || n->cache_min_ttl != ctx->cfg.cache_min_ttl ||
         n->cache_max_ttl != ctx->cfg.cache_max_ttl || n->stale_max_s != ctx->cfg.stale_max_s);
    if (n->shared_cache != NULL && ctx->cfg.shared_cache != NULL &&
        n->shared_cache != ctx->cfg.shared_cache) {
        /* One shared cache for another: the embedder made a new one for
         * changed cache settings (dotproxyd -w N does) and moves every
         * context to it. Queries refer to the cache only by key. */
        dp_cache_handle_release(&ctx->cache);
        dp_shared_cache_handle(&ctx->cache, n->shared_cache);
    } else if (n->shared_cache != ctx->cfg.shared_cache) {
        /* Switching between a shared cache and the context's own is not a
         * reload's job: keep what the context was made with. */
        dp_shared_cache_unref(n->shared_cache);
        n->shared_cache = dp_shared_cache_ref(ctx->cfg.shared_cache);
        n->cache_size = ctx->cfg.cache_size;
    }
    if (cache_changed) {
        /* Queries refer to the cache only through their key: a new cache
         * (empty) can replace the old one at once. */
        struct dp_cache_config cc = {
            .max_entries = n->cache_size,
            .min_ttl = n->cache_min_ttl,
            .max_ttl = n->cache_max_ttl,
            .stale_max_s = n->stale_max_s,
        };
        struct dp_cache_handle nc = {0};
        if (n->cache_size == 0 || dp_cache_handle_own(&nc, &cc) == 0) {
            dp_cache_handle_release(&ctx->cache);
            ctx->cache = nc;
        } else {
            dp_log(&ctx->log, DOTPROXY_LOG_ERR,
                   "reload: out of memory for the new cache; "
                   "keeping the old one");
        }
    }
    /* A reload config without a log callback keeps the one in use, rather
     * than silencing the context. */
    if (n->log.fn == NULL)
        n->log = ctx->cfg.log;
    if (dp_block_part_reload(&ctx->block, n) != 0)
        dp_log(&ctx->log, DOTPROXY_LOG_ERR, "reload: blocklists: cannot load; keeping the old");
    dp_config_clear(&ctx->cfg);
    ctx->cfg = *n;
    free(n); /* its strings now belong to ctx->cfg */
    ctx->log = ctx->cfg.log;
    ctx->log.last = &ctx->last_error;
    /* More connections allowed: an upstream with queries waiting for room
     * opens one now, not at its next new query. */
    for (size_t i = 0; conns_raised && i < ctx->upstreams.n; i++)
        if (ctx->upstreams.ups[i]->pool.n_waiting > 0 &&
            dp_upstream_usable(ctx->upstreams.ups[i], dp_now(ctx)))
            dp_tls_pool_probe(&ctx->pool, ctx->upstreams.ups[i]);
    /* A lower max-tcp-clients closes the least recently active clients. */
    dp_listener_apply_limits(&ctx->listeners);
    /* The listener's certificate, key and client CA are read afresh (new
     * handshakes get them; a broken file keeps the old material). Its
     * addresses stay those bound at start. */
    dp_tls_listener_reload(ctx->tls);
    dp_tls_listener_apply_limits(ctx->tls);
    /* "tried" bits named positions in the old list; a query starts again
     * from the upstreams its name may use under the new zones. */
    dp_forward_build(&ctx->forward, &ctx->cfg);
    dp_forward_announce(&ctx->cfg, &ctx->log);
    for (struct dp_list *e = ctx->active.next; e != &ctx->active; e = e->next) {
        struct dp_query *q = DP_CONTAINER_OF(e, struct dp_query, active);
        q->tried =
            dp_forward_excluded(&ctx->forward, q->q + DOTPROXY_DNS_HEADER_SIZE, q->qname_len);
    }
    while (!dp_list_empty(&orphans)) {
        struct dp_query *q = DP_CONTAINER_OF(orphans.next, struct dp_query, wait);
        dp_list_remove(&q->wait);
        dp_proxy_dispatch(ctx, q);
    }
    dp_ctr_inc(&ctx->stats.ctr, DOTPROXY_CTR_RELOADS);
    dp_log(&ctx->log, DOTPROXY_LOG_INFO, "configuration reloaded: %zu upstream(s), %u kept warm",
           ctx->upstreams.n, n_kept);
}
