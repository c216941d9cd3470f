/* SPDX-License-Identifier: MIT */
/* libdotproxy: the configuration record, its setters and getters. The
 * defaults live in dotproxy_config_new() and nowhere else: dotproxyd reads
 * them back through the getters (for --help, its docs test and its reload
 * comparisons) instead of writing them a second time. The bounds are the
 * public DOTPROXY_*_MIN/_MAX macros, so that a caller can state them in its
 * own messages. */
#include "config.h"

#include <arpa/inet.h>
#include <gnutls/gnutls.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "dotproxy/error.h"
#include "block.h"
#include "dynblock.h"
#include "shared_cache.h"

DOTPROXY_EXPORT int dotproxy_config_new(dotproxy_config **out)
{
    if (out == NULL)
        return DOTPROXY_EINVAL;
    struct dotproxy_config *cfg = calloc(1, sizeof *cfg);
    if (cfg == NULL)
        return DOTPROXY_ENOMEM;
    cfg->timeout_ms = 4000;
    cfg->idle_timeout_ms = 8000;
    cfg->tcp_idle_timeout_ms = 10000;
    cfg->max_connections = 2;
    cfg->max_inflight = 1024;
    cfg->max_queries = 8192;
    cfg->max_tcp_clients = 1024;
    /* Half of max_queries: one client can never hold every query slot, and
     * a busy legitimate one (a NAT gateway, a local dnsmasq) does not reach
     * it: it bounds queries in flight, not the rate (README "Limits"). */
    cfg->max_client_queries = 4096;
    cfg->log.max_level = DOTPROXY_LOG_INFO;
    cfg->cache_max_ttl = 86400;
    cfg->stale_max_s = 86400;
    cfg->rl_v4_prefix = 32;
    cfg->rl_v6_prefix = 128;
    cfg->padding = 128;
    cfg->udp_size = 1232; /* DNS flag day 2020 */
    cfg->handshake_timeout_ms = 5000;
    dp_config_tls_defaults(&cfg->tls);
    dp_block_config_defaults(&cfg->block);
    *out = cfg;
    return 0;
}

DOTPROXY_EXPORT int dotproxy_config_dup(dotproxy_config **out, const dotproxy_config *src)
{
    if (out == NULL || src == NULL)
        return DOTPROXY_EINVAL;
    struct dotproxy_config *cfg = malloc(sizeof *cfg);
    if (cfg == NULL)
        return DOTPROXY_ENOMEM;
    int rc = dp_config_copy(cfg, src);
    if (rc != 0) {
        free(cfg);
        return rc;
    }
    *out = cfg;
    return 0;
}

void dp_config_clear(struct dotproxy_config *cfg)
{
    dp_shared_cache_unref(cfg->shared_cache);
    cfg->shared_cache = NULL;
    dp_block_config_clear(&cfg->block);
    dp_dynblock_unref(cfg->shared_dynblock);
    cfg->shared_dynblock = NULL;
    free(cfg->ca_file);
    free(cfg->tls_priority);
    cfg->ca_file = cfg->tls_priority = NULL;
    dp_config_tls_clear(&cfg->tls);
}

DOTPROXY_EXPORT void dotproxy_config_free(dotproxy_config *cfg)
{
    if (cfg == NULL)
        return;
    dp_config_clear(cfg);
    free(cfg);
}

int dp_config_copy(struct dotproxy_config *dst, const struct dotproxy_config *src)
{
    *dst = *src;
    dst->ca_file = dst->tls_priority = NULL;
    dp_shared_cache_ref(dst->shared_cache);
    dp_dynblock_ref(dst->shared_dynblock);
    if (dp_block_config_copy(&dst->block, &src->block) != 0) {
        /* Neither part is dst's own yet: clear only what is. */
        dp_block_config_defaults(&dst->block);
        dp_config_tls_defaults(&dst->tls); /* still src's: not dst's to free */
        dp_config_clear(dst);
        return DOTPROXY_ENOMEM;
    }
    if (dp_config_tls_copy(&dst->tls, &src->tls) != 0) {
        dp_config_tls_defaults(&dst->tls);
        dp_config_clear(dst);
        return DOTPROXY_ENOMEM;
    }
    if (src->ca_file != NULL && (dst->ca_file = strdup(src->ca_file)) == NULL) {
        dp_config_clear(dst);
        return DOTPROXY_ENOMEM;
    }
    if (src->tls_priority != NULL && (dst->tls_priority = strdup(src->tls_priority)) == NULL) {
        dp_config_clear(dst);
        return DOTPROXY_ENOMEM;
    }
    return 0;
}

DOTPROXY_EXPORT int dotproxy_config_add_listen(dotproxy_config *cfg, const char *spec)
{
    if (cfg == NULL || spec == NULL)
        return DOTPROXY_EINVAL;
    if (cfg->n_listen == DP_MAX_LISTEN)
        return DOTPROXY_ELIMIT;
    dotproxy_endpoint ep;
    int rc;
    size_t n = strlen(spec);
    if (n > 2 && strcmp(spec + n - 2, "@0") == 0) {
        /* Port 0 is no port for the spec grammar, but for a listener it
         * means "let the kernel choose" (tests, embedders): parse the
         * address alone with 0 as its default port. */
        char addr[128];
        if (n - 2 >= sizeof addr)
            return DOTPROXY_EADDR;
        memcpy(addr, spec, n - 2);
        addr[n - 2] = '\0';
        rc = dotproxy_endpoint_parse(&ep, addr, 0, 0);
    } else {
        rc = dotproxy_endpoint_parse(&ep, spec, DOTPROXY_DNS_PORT, 0);
    }
    if (rc != 0)
        return rc;
    cfg->listen[cfg->n_listen++] = ep;
    return 0;
}

DOTPROXY_EXPORT int dotproxy_config_add_upstream_endpoint(dotproxy_config *cfg,
                                                          const dotproxy_endpoint *ep)
{
    if (cfg == NULL || ep == NULL)
        return DOTPROXY_EINVAL;
    if (ep->addr.ss_family != AF_INET && ep->addr.ss_family != AF_INET6)
        return DOTPROXY_EADDR;
    if (memchr(ep->name, '\0', sizeof ep->name) == NULL)
        return DOTPROXY_ENAME;
    if (cfg->n_upstream == DP_MAX_UPSTREAMS)
        return DOTPROXY_ELIMIT;
    cfg->upstream[cfg->n_upstream++] = *ep;
    return 0;
}

DOTPROXY_EXPORT int dotproxy_config_add_upstream(dotproxy_config *cfg, const char *spec)
{
    if (cfg == NULL || spec == NULL)
        return DOTPROXY_EINVAL;
    dotproxy_endpoint ep;
    int rc = dotproxy_endpoint_parse(&ep, spec, DOTPROXY_DOT_PORT, 1);
    if (rc != 0)
        return rc;
    return dotproxy_config_add_upstream_endpoint(cfg, &ep);
}

DOTPROXY_EXPORT int dotproxy_config_clear_listen(dotproxy_config *cfg)
{
    if (cfg == NULL)
        return DOTPROXY_EINVAL;
    cfg->n_listen = 0;
    return 0;
}

DOTPROXY_EXPORT int dotproxy_config_get_listen(const dotproxy_config *cfg, size_t index,
                                               dotproxy_endpoint *out)
{
    if (cfg == NULL || out == NULL || index >= cfg->n_listen)
        return DOTPROXY_EINVAL;
    *out = cfg->listen[index];
    return 0;
}

DOTPROXY_EXPORT int dotproxy_config_get_upstream(const dotproxy_config *cfg, size_t index,
                                                 dotproxy_endpoint *out)
{
    if (cfg == NULL || out == NULL || index >= cfg->n_upstream)
        return DOTPROXY_EINVAL;
    *out = cfg->upstream[index];
    return 0;
}

DOTPROXY_EXPORT size_t dotproxy_config_pin_count(const dotproxy_config *cfg, size_t index)
{
    return cfg == NULL || index >= cfg->n_upstream ? 0 : cfg->n_pins[index];
}

DOTPROXY_EXPORT size_t dotproxy_config_allow_count(const dotproxy_config *cfg)
{
    return cfg == NULL ? 0 : cfg->n_allow;
}

DOTPROXY_EXPORT size_t dotproxy_config_upstream_count(const dotproxy_config *cfg)
{
    return cfg == NULL ? 0 : cfg->n_upstream;
}

DOTPROXY_EXPORT size_t dotproxy_config_listen_count(const dotproxy_config *cfg)
{
    return cfg == NULL ? 0 : cfg->n_listen;
}

static int set_string(char **slot, const char *value)
{
    char *copy = NULL;
    if (value != NULL && (copy = strdup(value)) == NULL)
        return DOTPROXY_ENOMEM;
    free(*slot);
    *slot = copy;
    return 0;
}

DOTPROXY_EXPORT int dotproxy_config_set_ca_file(dotproxy_config *cfg, const char *path)
{
    if (cfg == NULL || (path != NULL && path[0] == '\0'))
        return DOTPROXY_EINVAL;
    return set_string(&cfg->ca_file, path);
}

DOTPROXY_EXPORT int dotproxy_config_set_tls_priority(dotproxy_config *cfg, const char *prio)
{
    if (cfg == NULL || (prio != NULL && prio[0] == '\0'))
        return DOTPROXY_EINVAL;
    return set_string(&cfg->tls_priority, prio);
}

DOTPROXY_EXPORT const char *dotproxy_config_get_ca_file(const dotproxy_config *cfg)
{
    return cfg == NULL ? NULL : cfg->ca_file;
}

DOTPROXY_EXPORT const char *dotproxy_config_get_tls_priority(const dotproxy_config *cfg)
{
    if (cfg == NULL)
        return NULL;
    return cfg->tls_priority != NULL ? cfg->tls_priority : DOTPROXY_TLS_PRIORITY_DEFAULT;
}

static int set_range(unsigned *slot, unsigned value, unsigned lo, unsigned hi)
{
    if (value < lo || value > hi)
        return DOTPROXY_EINVAL;
    *slot = value;
    return 0;
}

DOTPROXY_EXPORT int dotproxy_config_set_timeout_ms(dotproxy_config *cfg, unsigned ms)
{
    if (cfg == NULL)
        return DOTPROXY_EINVAL;
    return set_range(&cfg->timeout_ms, ms, DOTPROXY_TIMEOUT_MS_MIN, DOTPROXY_TIMEOUT_MS_MAX);
}

DOTPROXY_EXPORT int dotproxy_config_set_idle_timeout_ms(dotproxy_config *cfg, unsigned ms)
{
    if (cfg == NULL)
        return DOTPROXY_EINVAL;
    return set_range(&cfg->idle_timeout_ms, ms, DOTPROXY_IDLE_TIMEOUT_MS_MIN,
                     DOTPROXY_IDLE_TIMEOUT_MS_MAX);
}

DOTPROXY_EXPORT int dotproxy_config_set_tcp_idle_timeout_ms(dotproxy_config *cfg, unsigned ms)
{
    if (cfg == NULL)
        return DOTPROXY_EINVAL;
    return set_range(&cfg->tcp_idle_timeout_ms, ms, DOTPROXY_IDLE_TIMEOUT_MS_MIN,
                     DOTPROXY_IDLE_TIMEOUT_MS_MAX);
}

DOTPROXY_EXPORT int dotproxy_config_set_max_connections(dotproxy_config *cfg, unsigned n)
{
    if (cfg == NULL)
        return DOTPROXY_EINVAL;
    return set_range(&cfg->max_connections, n, DOTPROXY_MAX_CONNECTIONS_MIN,
                     DOTPROXY_MAX_CONNECTIONS_MAX);
}

DOTPROXY_EXPORT int dotproxy_config_set_max_inflight(dotproxy_config *cfg, unsigned n)
{
    /* A power of two, so a wire ID splits into a slot index and a
     * generation by masking (see tls_pool.c). */
    if (cfg == NULL || n == 0 || (n & (n - 1)) != 0)
        return DOTPROXY_EINVAL;
    return set_range(&cfg->max_inflight, n, DOTPROXY_MAX_INFLIGHT_MIN, DOTPROXY_MAX_INFLIGHT_MAX);
}

DOTPROXY_EXPORT int dotproxy_config_set_max_queries(dotproxy_config *cfg, unsigned n)
{
    if (cfg == NULL)
        return DOTPROXY_EINVAL;
    return set_range(&cfg->max_queries, n, DOTPROXY_MAX_QUERIES_MIN, DOTPROXY_MAX_QUERIES_MAX);
}

DOTPROXY_EXPORT int dotproxy_config_set_max_tcp_clients(dotproxy_config *cfg, unsigned n)
{
    if (cfg == NULL)
        return DOTPROXY_EINVAL;
    return set_range(&cfg->max_tcp_clients, n, DOTPROXY_MAX_TCP_CLIENTS_MIN,
                     DOTPROXY_MAX_TCP_CLIENTS_MAX);
}

DOTPROXY_EXPORT int dotproxy_config_set_cache_size(dotproxy_config *cfg, size_t entries)
{
    if (cfg == NULL || entries > DOTPROXY_CACHE_SIZE_MAX)
        return DOTPROXY_EINVAL;
    cfg->cache_size = entries;
    return 0;
}

DOTPROXY_EXPORT int dotproxy_config_set_reuseport(dotproxy_config *cfg, int on)
{
    if (cfg == NULL)
        return DOTPROXY_EINVAL;
    cfg->reuseport = on != 0;
    return 0;
}

DOTPROXY_EXPORT int dotproxy_config_set_log(dotproxy_config *cfg, dotproxy_log_fn fn, void *user,
                                            int max_level)
{
    if (cfg == NULL || max_level < DOTPROXY_LOG_ERR || max_level > DOTPROXY_LOG_DEBUG)
        return DOTPROXY_EINVAL;
    cfg->log.fn = fn;
    cfg->log.user = user;
    cfg->log.max_level = max_level;
    return 0;
}

DOTPROXY_EXPORT int dotproxy_config_add_allow(dotproxy_config *cfg, const char *cidr)
{
    if (cfg == NULL || cidr == NULL || cidr[0] == '\0')
        return DOTPROXY_EINVAL;
    if (cfg->n_allow == DP_MAX_ALLOW)
        return DOTPROXY_ELIMIT;
    /* The same parser as --dynblock-exempt (dynblock.c): one CIDR syntax. */
    struct dp_cidr c;
    int rc = dp_dynblock_cidr_parse(&c, cidr);
    if (rc != 0)
        return rc;
    cfg->allow[cfg->n_allow++] = c;
    return 0;
}

DOTPROXY_EXPORT int dotproxy_config_set_rate_limit(dotproxy_config *cfg, unsigned qps,
                                                   unsigned burst, unsigned v4_prefix,
                                                   unsigned v6_prefix, int action,
                                                   int limit_loopback)
{
    if (cfg == NULL || qps > DOTPROXY_RATE_LIMIT_QPS_MAX ||
        v4_prefix < DOTPROXY_RATE_LIMIT_V4_PREFIX_MIN ||
        v4_prefix > DOTPROXY_RATE_LIMIT_V4_PREFIX_MAX ||
        v6_prefix < DOTPROXY_RATE_LIMIT_V6_PREFIX_MIN ||
        v6_prefix > DOTPROXY_RATE_LIMIT_V6_PREFIX_MAX ||
        (action != DOTPROXY_LIMIT_REFUSE && action != DOTPROXY_LIMIT_DROP))
        return DOTPROXY_EINVAL;
    cfg->rl_qps = qps;
    cfg->rl_burst = burst != 0 ? burst : qps;
    cfg->rl_v4_prefix = v4_prefix;
    cfg->rl_v6_prefix = v6_prefix;
    cfg->rl_action = action;
    cfg->rl_loopback = limit_loopback != 0;
    return 0;
}

DOTPROXY_EXPORT int dotproxy_config_set_max_client_queries(dotproxy_config *cfg, unsigned n)
{
    if (cfg == NULL || n > DOTPROXY_MAX_CLIENT_QUERIES_MAX)
        return DOTPROXY_EINVAL;
    cfg->max_client_queries = n;
    return 0;
}

DOTPROXY_EXPORT int dotproxy_config_set_cache_ttl(dotproxy_config *cfg, unsigned min_s,
                                                  unsigned max_s)
{
    if (cfg == NULL || min_s > max_s || max_s > DOTPROXY_CACHE_TTL_MAX)
        return DOTPROXY_EINVAL;
    cfg->cache_min_ttl = min_s;
    cfg->cache_max_ttl = max_s;
    return 0;
}

DOTPROXY_EXPORT int dotproxy_config_set_stale_max_s(dotproxy_config *cfg, unsigned s)
{
    if (cfg == NULL || s > DOTPROXY_CACHE_TTL_MAX)
        return DOTPROXY_EINVAL;
    cfg->stale_max_s = s;
    return 0;
}

DOTPROXY_EXPORT int dotproxy_config_set_padding(dotproxy_config *cfg, unsigned block)
{
    if (cfg == NULL || block > DOTPROXY_PADDING_MAX)
        return DOTPROXY_EINVAL;
    cfg->padding = block;
    return 0;
}

DOTPROXY_EXPORT int dotproxy_config_set_udp_size(dotproxy_config *cfg, unsigned octets)
{
    if (cfg == NULL || octets < DOTPROXY_UDP_SIZE_MIN || octets > DOTPROXY_UDP_SIZE_MAX)
        return DOTPROXY_EINVAL;
    cfg->udp_size = octets;
    return 0;
}

DOTPROXY_EXPORT int dotproxy_config_set_keep_ecs(dotproxy_config *cfg, int on)
{
    if (cfg == NULL)
        return DOTPROXY_EINVAL;
    cfg->keep_ecs = on != 0;
    return 0;
}

DOTPROXY_EXPORT int dotproxy_config_add_pin(dotproxy_config *cfg, size_t index, const char *pin)
{
    if (cfg == NULL || pin == NULL || index >= cfg->n_upstream)
        return DOTPROXY_EINVAL;
    if (cfg->n_pins[index] == DP_MAX_PINS)
        return DOTPROXY_ELIMIT;
    int rc = dp_config_pin_decode(pin, cfg->pins[index][cfg->n_pins[index]]);
    if (rc == 0)
        cfg->n_pins[index]++;
    return rc;
}

int dp_config_pin_decode(const char *pin, uint8_t out[32])
{
    if (strncmp(pin, "sha256/", 7) == 0)
        pin += 7;
    gnutls_datum_t in = {(unsigned char *)(uintptr_t)pin, (unsigned)strlen(pin)};
    gnutls_datum_t raw = {NULL, 0};
    if (in.size == 0 || gnutls_base64_decode2(&in, &raw) < 0)
        return DOTPROXY_EINVAL;
    int ok = raw.size == 32;
    if (ok)
        memcpy(out, raw.data, 32);
    gnutls_free(raw.data);
    return ok ? 0 : DOTPROXY_EINVAL;
}

DOTPROXY_EXPORT int dotproxy_config_set_selection(dotproxy_config *cfg, int policy)
{
    if (cfg == NULL || policy < DOTPROXY_SELECT_LATENCY || policy > DOTPROXY_SELECT_ORDERED)
        return DOTPROXY_EINVAL;
    cfg->selection = policy;
    return 0;
}

DOTPROXY_EXPORT int dotproxy_config_set_handshake_timeout_ms(dotproxy_config *cfg, unsigned ms)
{
    if (cfg == NULL)
        return DOTPROXY_EINVAL;
    return set_range(&cfg->handshake_timeout_ms, ms, DOTPROXY_HANDSHAKE_TIMEOUT_MS_MIN,
                     DOTPROXY_HANDSHAKE_TIMEOUT_MS_MAX);
}

DOTPROXY_EXPORT int dotproxy_config_set_shared_cache(dotproxy_config *cfg, dotproxy_cache *cache)
{
    if (cfg == NULL)
        return DOTPROXY_EINVAL;
    dp_shared_cache_ref(cache);
    dp_shared_cache_unref(cfg->shared_cache);
    cfg->shared_cache = cache;
    return 0;
}

DOTPROXY_EXPORT int dotproxy_config_set_query_log(dotproxy_config *cfg, dotproxy_query_log_fn fn,
                                                  void *user)
{
    if (cfg == NULL)
        return DOTPROXY_EINVAL;
    cfg->qlog = fn;
    cfg->qlog_user = user;
    return 0;
}

/* ---- getters: what the setters stored ---- */

#define GETTER(type, name, field)                                                                  \
    DOTPROXY_EXPORT type dotproxy_config_get_##name(const dotproxy_config *cfg)                    \
    {                                                                                              \
        return cfg == NULL ? 0 : cfg->field;                                                       \
    }

GETTER(unsigned, timeout_ms, timeout_ms)
GETTER(unsigned, idle_timeout_ms, idle_timeout_ms)
GETTER(unsigned, tcp_idle_timeout_ms, tcp_idle_timeout_ms)
GETTER(unsigned, handshake_timeout_ms, handshake_timeout_ms)
GETTER(unsigned, max_connections, max_connections)
GETTER(unsigned, max_inflight, max_inflight)
GETTER(unsigned, max_queries, max_queries)
GETTER(unsigned, max_tcp_clients, max_tcp_clients)
GETTER(unsigned, max_client_queries, max_client_queries)
GETTER(size_t, cache_size, cache_size)
GETTER(unsigned, stale_max_s, stale_max_s)
GETTER(unsigned, padding, padding)
GETTER(unsigned, udp_size, udp_size)
GETTER(int, keep_ecs, keep_ecs)
GETTER(int, selection, selection)
GETTER(int, reuseport, reuseport)
GETTER(int, log_level, log.max_level)

#undef GETTER

DOTPROXY_EXPORT int dotproxy_config_get_cache_ttl(const dotproxy_config *cfg, unsigned *min_s,
                                                  unsigned *max_s)
{
    if (cfg == NULL)
        return DOTPROXY_EINVAL;
    if (min_s != NULL)
        *min_s = cfg->cache_min_ttl;
    if (max_s != NULL)
        *max_s = cfg->cache_max_ttl;
    return 0;
}

DOTPROXY_EXPORT int dotproxy_config_get_rate_limit(const dotproxy_config *cfg, unsigned *qps,
                                                   unsigned *burst, unsigned *v4_prefix,
                                                   unsigned *v6_prefix, int *action,
                                                   int *limit_loopback)
{
    if (cfg == NULL)
        return DOTPROXY_EINVAL;
    if (qps != NULL)
        *qps = cfg->rl_qps;
    if (burst != NULL)
        *burst = cfg->rl_burst;
    if (v4_prefix != NULL)
        *v4_prefix = cfg->rl_v4_prefix;
    if (v6_prefix != NULL)
        *v6_prefix = cfg->rl_v6_prefix;
    if (action != NULL)
        *action = cfg->rl_action;
    if (limit_loopback != NULL)
        *limit_loopback = cfg->rl_loopback;
    return 0;
}

DOTPROXY_EXPORT int dotproxy_config_add_dynblock(dotproxy_config *cfg, const char *rule)
{
    if (cfg == NULL || rule == NULL)
        return DOTPROXY_EINVAL;
    if (cfg->n_dyn_rules == DOTPROXY_DYNBLOCK_RULES_MAX)
        return DOTPROXY_ELIMIT;
    struct dp_dynrule r;
    int rc = dp_anomaly_rule_parse(&r, rule, NULL);
    if (rc != 0)
        return rc;
    cfg->dyn_rules[cfg->n_dyn_rules++] = r;
    return 0;
}

DOTPROXY_EXPORT size_t dotproxy_config_dynblock_count(const dotproxy_config *cfg)
{
    return cfg == NULL ? 0 : cfg->n_dyn_rules;
}

DOTPROXY_EXPORT const char *dotproxy_config_get_dynblock(const dotproxy_config *cfg, size_t i)
{
    return cfg == NULL || i >= cfg->n_dyn_rules ? NULL : cfg->dyn_rules[i].text;
}

DOTPROXY_EXPORT int dotproxy_config_add_dynblock_exempt(dotproxy_config *cfg, const char *cidr)
{
    if (cfg == NULL || cidr == NULL || cidr[0] == '\0')
        return DOTPROXY_EINVAL;
    if (cfg->n_dyn_exempt == DOTPROXY_DYNBLOCK_EXEMPT_MAX)
        return DOTPROXY_ELIMIT;
    struct dp_cidr c;
    if (strlen(cidr) >= sizeof cfg->dyn_exempt_text[0])
        return DOTPROXY_EADDR;
    int rc = dp_dynblock_cidr_parse(&c, cidr);
    if (rc != 0)
        return rc;
    strcpy(cfg->dyn_exempt_text[cfg->n_dyn_exempt], cidr);
    cfg->dyn_exempt[cfg->n_dyn_exempt++] = c;
    return 0;
}

DOTPROXY_EXPORT size_t dotproxy_config_dynblock_exempt_count(const dotproxy_config *cfg)
{
    return cfg == NULL ? 0 : cfg->n_dyn_exempt;
}

DOTPROXY_EXPORT const char *dotproxy_config_get_dynblock_exempt(const dotproxy_config *cfg,
                                                                size_t i)
{
    return cfg == NULL || i >= cfg->n_dyn_exempt ? NULL : cfg->dyn_exempt_text[i];
}

DOTPROXY_EXPORT int dotproxy_config_set_shared_dynblock(dotproxy_config *cfg, dotproxy_dynblock *db)
{
    if (cfg == NULL)
        return DOTPROXY_EINVAL;
    dp_dynblock_ref(db);
    dp_dynblock_unref(cfg->shared_dynblock);
    cfg->shared_dynblock = db;
    return 0;
}
