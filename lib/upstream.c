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

/* Idle health: an upstream that carried no answer for this long is
 * checked, so that one that went away while the clients were quiet shows
 * down, and one that came back shows up, within about this period plus
 * the check's own timeout, without client traffic. With a connection open
 * the check is a query on it (the pool's ping: an open connection proves
 * nothing when the path is black-holed, as no FIN or RST ever comes);
 * without one, a TCP connect and TLS handshake. One check per period and
 * upstream at most, jittered +-20 %, counted from its last answer, so that
 * an upstream the clients keep busy is never checked; while it fails, the
 * backoff (BACKOFF_*) paces the probes instead. Only upstreams that carried
 * a query in the last HEALTH_IDLE_MAX_US are checked: an unused proxy stays
 * quiet (and one that was never used has nothing to report but its
 * configuration). */
#define HEALTH_PERIOD_US   5000000u
#define HEALTH_IDLE_MAX_US 600000000u

static void probe_fire(struct dp_timer *t)
{
    struct dp_upstream *up = DP_CONTAINER_OF(t, struct dp_upstream, probe);
    /* One that failed after TLS gets a query as its trial (select), not a
     * handshake that would prove nothing. */
    if (up->pool.n_conns == 0 && !up->suspect)
        up->set->hooks.probe(up, up->set->hooks.user);
}

/* Arm up's idle check a period (jittered) after `from`. */
static void health_arm(struct dp_upstream *up, uint64_t from)
{
    struct dp_upstreams *set = up->set;
    uint64_t jitter = dp_prng_below(set->prng, HEALTH_PERIOD_US / 5 + 1);
    uint64_t due = from + HEALTH_PERIOD_US - HEALTH_PERIOD_US / 10 + jitter;
    if (due <= set->loop->now_us)
        due = set->loop->now_us + HEALTH_PERIOD_US / 10 + jitter;
    if (dp_timer_set(set->loop, &up->health, due) != 0)
        dp_log(set->log, DOTPROXY_LOG_ERR, "upstream %s: out of memory for the health timer",
               up->label);
}

static void health_fire(struct dp_timer *t)
{
    struct dp_upstream *up = DP_CONTAINER_OF(t, struct dp_upstream, health);
    uint64_t now = up->set->loop->now_us;
    if (up->pool.n_queries != up->seen_queries) {
        up->seen_queries = up->pool.n_queries;
        up->last_used_us = now;
    }
    /* Failing ones are probed on their backoff (probe_fire); busy ones tell
     * their health through their answers: the next check comes a period
     * after the last one. */
    if (now - up->last_ok_us < HEALTH_PERIOD_US - HEALTH_PERIOD_US / 10) {
        health_arm(up, up->last_ok_us);
        return;
    }
    if (up->fails == 0 && dp_upstream_usable(up, now) && up->last_used_us != 0 &&
        now - up->last_used_us < HEALTH_IDLE_MAX_US) {
        if (up->pool.n_conns == 0)
            up->set->hooks.probe(up, up->set->hooks.user);
        else if (up->set->hooks.ping != NULL)
            up->set->hooks.ping(up, up->set->hooks.user);
    }
    health_arm(up, now);
}

/* cfg's index-th upstream of the context's set: a configured one, or past
 * those a forward zone's. */
struct spec {
    const dotproxy_endpoint *ep;
    const uint8_t (*pins)[32];
    unsigned n_pins;
    int plain;
};

static struct spec spec_of(const struct dotproxy_config *cfg, unsigned index)
{
    if (index < cfg->n_upstream)
        return (struct spec){&cfg->upstream[index], (const uint8_t(*)[32])cfg->pins[index],
                             cfg->n_pins[index], 0};
    const struct dp_fwd_upstream *u = &cfg->fwd_up[index - cfg->n_upstream];
    return (struct spec){&u->ep, (const uint8_t(*)[32])u->pins, u->n_pins, u->plain};
}

void dp_upstreams_init(struct dp_upstreams *set, struct dp_loop *loop, const struct dp_logger *log,
                       struct dp_prng *prng, const struct dotproxy_config *cfg,
                       const struct dp_upstream_hooks *hooks)
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
    struct spec sp = spec_of(cfg, index);
    const dotproxy_endpoint *ep = sp.ep;
    up->set = set;
    up->n_pins = sp.n_pins;
    memcpy(up->pins, sp.pins, sizeof up->pins[0] * sp.n_pins);
    up->plain = sp.plain;
    up->index = index;
    up->ep = *ep;
    dp_list_init(&up->pool.waiting);
    dp_timer_init(&up->probe, probe_fire);
    dp_timer_init(&up->health, health_fire);
    if (dotproxy_endpoint_format(ep, up->label + (sp.plain ? 6 : 0),
                                 sizeof up->label - (sp.plain ? 6 : 0)) < 0)
        snprintf(up->label, sizeof up->label, "upstream %u", index);
    else if (sp.plain)
        memcpy(up->label, "plain:", 6); /* the logs say which ones are not private */
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
    dp_timer_cancel(up->set->loop, &up->health);
    free(up);
}

void dp_upstreams_set(struct dp_upstreams *set, struct dp_upstream *const *ups, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        set->ups[i] = ups[i];
        ups[i]->index = (unsigned)i; /* the bit of a query's `tried` */
        ups[i]->idle_limit_us = 0;
        if (!dp_timer_armed(&ups[i]->health)) {
            ups[i]->last_ok_us = set->loop->now_us;
            health_arm(ups[i], set->loop->now_us);
        }
    }
    set->n = n;
}

int dp_upstream_same(const struct dp_upstream *up, const struct dotproxy_config *cfg,
                     unsigned index)
{
    struct spec sp = spec_of(cfg, index);
    const dotproxy_endpoint *ep = sp.ep;
    return up->ep.addrlen == ep->addrlen && memcmp(&up->ep.addr, &ep->addr, ep->addrlen) == 0 &&
           strcmp(up->ep.name, ep->name) == 0 && up->n_pins == sp.n_pins &&
           memcmp(up->pins, sp.pins, sizeof up->pins[0] * sp.n_pins) == 0 && up->plain == sp.plain;
}

int dp_upstream_usable(const struct dp_upstream *up, uint64_t now_us)
{
    return up->down_until_us <= now_us;
}

int dp_upstream_healthy(const struct dp_upstream *up, uint64_t now_us)
{
    return up->fails == 0 && dp_upstream_usable(up, now_us);
}

/* Rank of an upstream for a new query: 2 healthy and not slow, 1 usable
 * but failed (or slow), 0 not usable (backing off, or tried). */
static int rank(const struct dp_upstream *up, uint32_t tried, uint64_t now)
{
    if ((tried & (1u << up->index)) || !dp_upstream_usable(up, now))
        return 0;
    return up->fails == 0 && !up->slow ? 2 : 1;
}

/* The choice among the upstreams of rank `want`, per the policy. */
static struct dp_upstream *choose(struct dp_upstreams *set, uint32_t tried, int want)
{
    uint64_t now = set->loop->now_us;
    struct dp_upstream *best = NULL;
    unsigned n_usable = 0;
    for (size_t i = 0; i < set->n; i++) {
        struct dp_upstream *up = set->ups[i];
        if (rank(up, tried, now) != want)
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
        if (rank(up, tried, now) != want)
            continue;
        if (pick-- == 0)
            return up;
    }
    return best;
}

int dp_upstreams_any_usable(const struct dp_upstreams *set, uint32_t tried)
{
    for (size_t i = 0; i < set->n; i++)
        if (rank(set->ups[i], tried, set->loop->now_us) != 0)
            return 1;
    return 0;
}

struct dp_upstream *dp_upstreams_select(struct dp_upstreams *set, uint32_t tried)
{
    uint64_t now = set->loop->now_us;
    struct dp_upstream *good = choose(set, tried, 2);
    if (good == NULL)
        return choose(set, tried, 1); /* nothing better: every query */
    /* An upstream that failed after TLS (suspect) whose backoff is over gets
     * this one query as its trial, and no other before the trial's outcome
     * (or another backoff period): an answer makes it healthy, a failure
     * doubles the backoff. One whose connects failed needs no client query:
     * its probe's handshake (probe_fire) tells. */
    for (size_t i = 0; i < set->n; i++) {
        struct dp_upstream *up = set->ups[i];
        if (rank(up, tried, now) != 1 || !up->suspect || up->fails == 0 || up->slow)
            continue;
        if (set->cfg->selection == DOTPROXY_SELECT_ORDERED && up->index > good->index)
            break; /* failover: only one before the healthy one is retried */
        up->down_until_us = now + (up->backoff_us ? up->backoff_us : BACKOFF_MIN_US);
        return up;
    }
    return good;
}

/* An upstream that stays down must not fill the log: before, every
 * failure wrote a line (about 1,400 an hour per worker at light traffic).
 * Now the first failure says it is down, and why; the next ones are counted
 * (each at debug level) and summed up at most once a minute; the answer
 * that ends it says it is back. */
#define DOWN_SUMMARY_US 60000000u

static const char *reason(const struct dp_upstream *up)
{
    return up->why[0] != '\0' ? up->why : "failed";
}

void dp_upstream_failure_reason(struct dp_upstream *up, const char *why)
{
    snprintf(up->why, sizeof up->why, "%s", why);
}

static void tell_failure(struct dp_upstream *up, uint64_t wait)
{
    struct dp_upstreams *set = up->set;
    uint64_t now = set->loop->now_us;
    if (!up->down) {
        /* The same words from every worker: the daemon folds them. */
        dp_log(set->log, DOTPROXY_LOG_WARN,
               "upstream %s: %s; down: retried with backoff, failures summed up once a minute",
               up->label, reason(up));
        up->down = 1;
        up->down_since_us = up->down_told_us = now;
        up->down_untold = 0;
        return;
    }
    up->down_untold++;
    dp_log(set->log, DOTPROXY_LOG_DEBUG,
           "upstream %s: %s; unusable for %llu ms after %u failure(s)", up->label, reason(up),
           (unsigned long long)(wait / 1000), up->fails);
    if (now - up->down_told_us >= DOWN_SUMMARY_US) {
        dp_log(set->log, DOTPROXY_LOG_WARN,
               "upstream %s still down after %llu s: %u more failure(s) in %llu s, the last: %s",
               up->label, (unsigned long long)((now - up->down_since_us) / 1000000u),
               up->down_untold, (unsigned long long)((now - up->down_told_us) / 1000000u),
               reason(up));
        up->down_told_us = now;
        up->down_untold = 0;
    }
}

static void failed(struct dp_upstream *up)
{
    struct dp_upstreams *set = up->set;
    up->slow = 0;
    up->fails++;
    up->backoff_us = up->backoff_us == 0 ? BACKOFF_MIN_US : up->backoff_us * 2;
    if (up->backoff_us > BACKOFF_MAX_US)
        up->backoff_us = BACKOFF_MAX_US;
    uint64_t jitter = dp_prng_below(set->prng, up->backoff_us / 5 + 1);
    uint64_t wait = up->backoff_us - up->backoff_us / 10 + jitter;
    up->down_until_us = set->loop->now_us + wait;
    tell_failure(up, wait);
    up->why[0] = '\0';
    if (dp_timer_set(set->loop, &up->probe, up->down_until_us) != 0)
        /* No probe then: the upstream is usable again once the backoff is
         * over, and the next query for it opens a connection. */
        dp_log(set->log, DOTPROXY_LOG_ERR, "upstream %s: out of memory for the probe timer",
               up->label);
}

void dp_upstream_connect_failed(struct dp_upstream *up)
{
    failed(up);
}

void dp_upstream_protocol_failed(struct dp_upstream *up)
{
    up->suspect = 1;
    failed(up);
}

void dp_upstream_connect_slow(struct dp_upstream *up)
{
    if (!up->slow)
        dp_log(up->set->log, DOTPROXY_LOG_INFO,
               "upstream %s: connect or handshake is late; using others meanwhile", up->label);
    up->slow = 1;
}

void dp_upstream_connect_succeeded(struct dp_upstream *up)
{
    up->slow = 0;
    up->last_ok_us = up->set->loop->now_us;
    if (up->suspect)
        return; /* a handshake does not prove it answers: a query will */
    dp_upstream_recovered(up);
}

void dp_upstream_cert_seen(struct dp_upstream *up, int64_t not_after)
{
    /* 0 means "no handshake yet" to readers: a certificate without a
     * usable notAfter (-1) is kept out of the metric the same way. */
    up->cert_not_after = not_after > 0 ? not_after : 0;
}

void dp_upstream_recovered(struct dp_upstream *up)
{
    if (up->down)
        dp_log(up->set->log, DOTPROXY_LOG_INFO,
               "upstream %s is back after %llu s down, %u failure(s)", up->label,
               (unsigned long long)((up->set->loop->now_us - up->down_since_us) / 1000000u),
               up->fails);
    up->down = 0;
    up->suspect = 0;
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
    out->healthy = dp_upstream_healthy(up, now_us);
    out->consecutive_failures = up->fails;
    out->srtt_us = up->srtt_us;
    out->idle_limit_us = up->idle_limit_us;
    out->cert_not_after = up->cert_not_after;
}
