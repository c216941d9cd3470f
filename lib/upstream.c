/* SPDX-License-Identifier: MIT */
#include "upstream.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy.h"
#include "tls_pool.h"

/* Backoff after failed connects: 250 ms doubling to 5 s, with +-20 % jitter
 * so that many proxies do not probe a recovering resolver in lockstep. The
 * cap is short on purpose: a resolver that comes back (or a network that
 * changes) is used again within seconds, and a probe costs one handshake. */
#define BACKOFF_MIN_US 250000u
#define BACKOFF_MAX_US 5000000u

static void probe_fire(struct dp_timer *t)
{
    struct dp_upstream *up = DP_CONTAINER_OF(t, struct dp_upstream, probe);
    if (up->n_conns == 0)
        dp_tls_pool_probe(up);
}

struct dp_upstream *dp_upstream_new(struct dotproxy_ctx *ctx, const struct dotproxy_config *cfg,
                                    unsigned index)
{
    struct dp_upstream *up = calloc(1, sizeof *up);
    if (up == NULL)
        return NULL;
    const dotproxy_endpoint *ep = &cfg->upstream[index];
    up->ctx = ctx;
    up->n_pins = cfg->n_pins[index];
    memcpy(up->pins, cfg->pins[index], sizeof up->pins);
    up->index = index;
    up->ep = *ep;
    dp_list_init(&up->waiting);
    dp_timer_init(&up->probe, probe_fire);
    if (dotproxy_endpoint_format(ep, up->label, sizeof up->label) < 0)
        snprintf(up->label, sizeof up->label, "upstream %u", index);
    if (ep->name[0] != '\0') {
        snprintf(up->verify_name, sizeof up->verify_name, "%s", ep->name);
    } else {
        /* No name given: the certificate must then carry the address itself
         * (an IP SAN), which GnuTLS checks when handed an address literal. */
        const void *a = ep->addr.ss_family == AF_INET
                            ? (const void *)&((const struct sockaddr_in *)&ep->addr)->sin_addr
                            : (const void *)&((const struct sockaddr_in6 *)&ep->addr)->sin6_addr;
        inet_ntop(ep->addr.ss_family, a, up->verify_name, sizeof up->verify_name);
    }
    return up;
}

void dp_upstream_free(struct dp_upstream *up)
{
    if (up == NULL)
        return;
    dp_tls_pool_close_all(up);
    dp_timer_cancel(&up->ctx->loop, &up->probe);
    if (up->ticket.data != NULL) {
        gnutls_memset(up->ticket.data, 0, up->ticket.size);
        gnutls_free(up->ticket.data);
    }
    free(up);
}

int dp_upstream_same(const struct dp_upstream *up, const struct dotproxy_config *cfg,
                     unsigned index)
{
    const dotproxy_endpoint *ep = &cfg->upstream[index];
    return up->ep.addrlen == ep->addrlen && memcmp(&up->ep.addr, &ep->addr, ep->addrlen) == 0 &&
           strcmp(up->ep.name, ep->name) == 0 && up->n_pins == cfg->n_pins[index] &&
           memcmp(up->pins, cfg->pins[index], sizeof up->pins) == 0;
}

int dp_upstream_usable(const struct dp_upstream *up, uint64_t now_us)
{
    return up->down_until_us <= now_us;
}

struct dp_upstream *dp_upstream_select(struct dotproxy_ctx *ctx, uint32_t tried)
{
    uint64_t now = dp_now(ctx);
    struct dp_upstream *best = NULL;
    unsigned n_usable = 0;
    for (size_t i = 0; i < ctx->n_ups; i++) {
        struct dp_upstream *up = ctx->ups[i];
        if ((tried & (1u << i)) || !dp_upstream_usable(up, now))
            continue;
        if (ctx->cfg.selection == DOTPROXY_SELECT_ORDERED)
            return up; /* failover: the first healthy one in the list */
        n_usable++;
        /* Lowest smoothed RTT wins; an unmeasured upstream (0) is tried
         * first so that every upstream gets measured. */
        if (best == NULL || up->srtt_us < best->srtt_us)
            best = up;
    }
    if (n_usable <= 1)
        return best;
    unsigned pick;
    if (ctx->cfg.selection == DOTPROXY_SELECT_ROUND_ROBIN)
        pick = ctx->rr++ % n_usable;
    else if ((++ctx->rr & 31u) == 0)
        /* One query in 32 goes to another usable upstream, so that one that
         * was slow once is measured again and can win back its place. */
        pick = (ctx->rr >> 5) % n_usable;
    else
        return best;
    for (size_t i = 0; i < ctx->n_ups; i++) {
        struct dp_upstream *up = ctx->ups[i];
        if ((tried & (1u << i)) || !dp_upstream_usable(up, now))
            continue;
        if (pick-- == 0)
            return up;
    }
    return best;
}

void dp_upstream_connect_failed(struct dp_upstream *up)
{
    struct dotproxy_ctx *ctx = up->ctx;
    up->fails++;
    up->backoff_us = up->backoff_us == 0 ? BACKOFF_MIN_US : up->backoff_us * 2;
    if (up->backoff_us > BACKOFF_MAX_US)
        up->backoff_us = BACKOFF_MAX_US;
    uint64_t jitter = (uint64_t)rand() % (up->backoff_us / 5 + 1);
    uint64_t wait = up->backoff_us - up->backoff_us / 10 + jitter;
    up->down_until_us = dp_now(ctx) + wait;
    dp_timer_set(&ctx->loop, &up->probe, up->down_until_us);
    dp_log(&ctx->log, DOTPROXY_LOG_WARN, "upstream %s unusable for %llu ms after %u failure(s)",
           up->label, (unsigned long long)(wait / 1000), up->fails);
}

void dp_upstream_connect_succeeded(struct dp_upstream *up)
{
    if (up->fails != 0)
        dp_log(&up->ctx->log, DOTPROXY_LOG_INFO, "upstream %s is back", up->label);
    up->fails = 0;
    up->backoff_us = 0;
    up->down_until_us = 0;
    dp_timer_cancel(&up->ctx->loop, &up->probe);
}

void dp_upstream_rtt_sample(struct dp_upstream *up, uint64_t rtt_us)
{
    /* EWMA with weight 1/8, as TCP's SRTT (RFC 6298). */
    if (up->srtt_us == 0)
        up->srtt_us = rtt_us ? rtt_us : 1;
    else
        up->srtt_us = up->srtt_us - up->srtt_us / 8 + rtt_us / 8;
}
