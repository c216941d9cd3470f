/* SPDX-License-Identifier: MIT */
/* Upstream identity, health and selection (see upstream.h). */
#include "upstream.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dotproxy/proxy.h"

/* Backoff after failed connects: 250 ms doubling to 5 s, with +-20 % jitter
 * so that many proxies do not probe a recovering resolver in lockstep. The
 * cap is short on purpose: a resolver that comes back (or a network that
 * changes) is used again within seconds, and a probe costs one handshake. */
#define BACKOFF_MIN_US 250000u
#define BACKOFF_MAX_US 5000000u

static void probe_fire(struct dp_timer *t)
{
    struct dp_upstream *up = DP_CONTAINER_OF(t, struct dp_upstream, probe);
    if (up->pool.n_conns == 0)
        up->set->hooks.probe(up, up->set->hooks.user);
}

void dp_upstreams_init(struct dp_upstreams *set, struct dp_loop *loop,
                       const struct dp_logger *log, struct dp_prng *prng,
                       const struct dotproxy_config *cfg, const struct dp_upstream_hooks *hooks)
{
    memset(set, 0, sizeof *set);
    set->loop = loop;
    set->log = log;
    set->prng = prng;
    set->cfg = cfg;
    set->hooks = *hooks;
}

struct dp_upstream *dp_upstream_new(struct dp_upstreams *set, const struct dotproxy_config *cfg,
                                    unsigned index)
{
    struct dp_upstream *up = calloc(1, sizeof *up);
    if (up == NULL)
        return NULL;
    const dotproxy_endpoint *ep = &cfg->upstream[index];
    up->set = set;
    up->n_pins = cfg->n_pins[index];
    memcpy(up->pins, cfg->pins[index], sizeof up->pins);
    up->index = index;
    up->ep = *ep;
    dp_list_init(&up->pool.waiting);
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
    dp_timer_cancel(up->set->loop, &up->probe);
    free(up);
}

void dp_upstreams_set(struct dp_upstreams *set, struct dp_upstream *const *ups, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        set->ups[i] = ups[i];
        ups[i]->index = (unsigned)i; /* the bit of a query's `tried` */
    }
    set->n = n;
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

struct dp_upstream *dp_upstreams_select(struct dp_upstreams *set, uint32_t tried)
{
    uint64_t now = set->loop->now_us;
    struct dp_upstream *best = NULL;
    unsigned n_usable = 0;
    for (size_t i = 0; i < set->n; i++) {
        struct dp_upstream *up = set->ups[i];
        if ((tried & (1u << i)) || !dp_upstream_usable(up, now))
            continue;
        if (set->cfg->selection == DOTPROXY_SELECT_ORDERED)
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
    if (set->cfg->selection == DOTPROXY_SELECT_ROUND_ROBIN)
        pick = set->rr++ % n_usable;
    else if ((++set->rr & 31u) == 0)
        /* One query in 32 goes to another usable upstream, so that one that
         * was slow once is measured again and can win back its place. */
        pick = (set->rr >> 5) % n_usable;
    else
        return best;
    for (size_t i = 0; i < set->n; i++) {
        struct dp_upstream *up = set->ups[i];
        if ((tried & (1u << i)) || !dp_upstream_usable(up, now))
            continue;
        if (pick-- == 0)
            return up;
    }
    return best;
}

void dp_upstream_connect_failed(struct dp_upstream *up)
{
    struct dp_upstreams *set = up->set;
    up->fails++;
    up->backoff_us = up->backoff_us == 0 ? BACKOFF_MIN_US : up->backoff_us * 2;
    if (up->backoff_us > BACKOFF_MAX_US)
        up->backoff_us = BACKOFF_MAX_US;
    uint64_t jitter = dp_prng_below(set->prng, up->backoff_us / 5 + 1);
    uint64_t wait = up->backoff_us - up->backoff_us / 10 + jitter;
    up->down_until_us = set->loop->now_us + wait;
    dp_log(set->log, DOTPROXY_LOG_WARN, "upstream %s unusable for %llu ms after %u failure(s)",
           up->label, (unsigned long long)(wait / 1000), up->fails);
    if (dp_timer_set(set->loop, &up->probe, up->down_until_us) != 0)
        /* No probe then: the upstream is usable again once the backoff is
         * over, and the next query for it opens a connection. */
        dp_log(set->log, DOTPROXY_LOG_ERR, "upstream %s: out of memory for the probe timer",
               up->label);
}

void dp_upstream_connect_succeeded(struct dp_upstream *up)
{
    if (up->fails != 0)
        dp_log(up->set->log, DOTPROXY_LOG_INFO, "upstream %s is back", up->label);
    up->fails = 0;
    up->backoff_us = 0;
    up->down_until_us = 0;
    dp_timer_cancel(up->set->loop, &up->probe);
}

void dp_upstream_rtt_sample(struct dp_upstream *up, uint64_t rtt_us)
{
    /* EWMA with weight 1/8, as TCP's SRTT (RFC 6298). */
    if (up->srtt_us == 0)
        up->srtt_us = rtt_us ? rtt_us : 1;
    else
        up->srtt_us = up->srtt_us - up->srtt_us / 8 + rtt_us / 8;
}

void dp_upstream_describe(const struct dp_upstream *up, uint64_t now_us,
                          dotproxy_upstream_stats *out)
{
    memcpy(out->label, up->label, sizeof out->label);
    out->healthy = dp_upstream_usable(up, now_us);
    out->consecutive_failures = up->fails;
    out->srtt_us = up->srtt_us;
    out->idle_limit_us = up->idle_limit_us;
}
