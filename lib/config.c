/* SPDX-License-Identifier: MIT */
#include "config.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "dotproxy/error.h"

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
    cfg->log.max_level = DOTPROXY_LOG_INFO;
    *out = cfg;
    return 0;
}

void dp_config_clear(struct dotproxy_config *cfg)
{
    free(cfg->ca_file);
    free(cfg->tls_priority);
    cfg->ca_file = cfg->tls_priority = NULL;
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
    if (src->ca_file != NULL && (dst->ca_file = strdup(src->ca_file)) == NULL)
        return DOTPROXY_ENOMEM;
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

static int set_range(unsigned *slot, unsigned value, unsigned lo, unsigned hi)
{
    if (value < lo || value > hi)
        return DOTPROXY_EINVAL;
    *slot = value;
    return 0;
}

DOTPROXY_EXPORT int dotproxy_config_set_timeout_ms(dotproxy_config *cfg, unsigned ms)
{
    return cfg == NULL ? DOTPROXY_EINVAL : set_range(&cfg->timeout_ms, ms, 1, 600000);
}

DOTPROXY_EXPORT int dotproxy_config_set_idle_timeout_ms(dotproxy_config *cfg, unsigned ms)
{
    return cfg == NULL ? DOTPROXY_EINVAL : set_range(&cfg->idle_timeout_ms, ms, 1, 3600000);
}

DOTPROXY_EXPORT int dotproxy_config_set_tcp_idle_timeout_ms(dotproxy_config *cfg, unsigned ms)
{
    return cfg == NULL ? DOTPROXY_EINVAL : set_range(&cfg->tcp_idle_timeout_ms, ms, 1, 3600000);
}

DOTPROXY_EXPORT int dotproxy_config_set_max_connections(dotproxy_config *cfg, unsigned n)
{
    return cfg == NULL ? DOTPROXY_EINVAL : set_range(&cfg->max_connections, n, 1, 64);
}

DOTPROXY_EXPORT int dotproxy_config_set_max_inflight(dotproxy_config *cfg, unsigned n)
{
    /* A power of two, so a wire ID splits into a slot index and a
     * generation by masking (see tls_pool.c). */
    if (cfg == NULL || n == 0 || (n & (n - 1)) != 0)
        return DOTPROXY_EINVAL;
    return set_range(&cfg->max_inflight, n, 1, 32768);
}

DOTPROXY_EXPORT int dotproxy_config_set_max_queries(dotproxy_config *cfg, unsigned n)
{
    return cfg == NULL ? DOTPROXY_EINVAL : set_range(&cfg->max_queries, n, 16, 1048576);
}

DOTPROXY_EXPORT int dotproxy_config_set_max_tcp_clients(dotproxy_config *cfg, unsigned n)
{
    return cfg == NULL ? DOTPROXY_EINVAL : set_range(&cfg->max_tcp_clients, n, 1, 1048576);
}

DOTPROXY_EXPORT int dotproxy_config_set_cache_size(dotproxy_config *cfg, size_t entries)
{
    if (cfg == NULL)
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
