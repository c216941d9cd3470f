/* SPDX-License-Identifier: MIT */
/* libdotproxy: the settings of the DNS-over-TLS listener (certificate, key,
 * mutual TLS) and of the client certificate shown to upstreams. Kept apart
 * from config.c so that the TLS listener's settings have one home; the
 * record's copy and clear call in here. */
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "dotproxy/error.h"

#define CLIENT_ID_MAX_LEN 1024u

void dp_config_tls_defaults(struct dp_tls_config *t)
{
    memset(t, 0, sizeof *t);
    t->idle_timeout_ms = 10000; /* RFC 7766 6.2.3's order of magnitude */
}

void dp_config_tls_clear(struct dp_tls_config *t)
{
    free(t->cert);
    free(t->key);
    free(t->client_ca);
    free(t->upstream_cert);
    free(t->upstream_key);
    for (size_t i = 0; i < t->n_client_ids; i++)
        free(t->client_ids[i]);
    t->cert = t->key = t->client_ca = t->upstream_cert = t->upstream_key = NULL;
    t->n_client_ids = 0;
}

static int dup_or_null(char **dst, const char *src)
{
    *dst = NULL;
    if (src != NULL && (*dst = strdup(src)) == NULL)
        return -1;
    return 0;
}

int dp_config_tls_copy(struct dp_tls_config *dst, const struct dp_tls_config *src)
{
    *dst = *src;
    dst->n_client_ids = 0;
    int bad = dup_or_null(&dst->cert, src->cert);
    bad |= dup_or_null(&dst->key, src->key);
    bad |= dup_or_null(&dst->client_ca, src->client_ca);
    bad |= dup_or_null(&dst->upstream_cert, src->upstream_cert);
    bad |= dup_or_null(&dst->upstream_key, src->upstream_key);
    for (size_t i = 0; i < src->n_client_ids; i++) {
        bad |= dup_or_null(&dst->client_ids[i], src->client_ids[i]);
        dst->n_client_ids = i + 1;
    }
    if (bad) {
        dp_config_tls_clear(dst);
        return DOTPROXY_ENOMEM;
    }
    return 0;
}

DOTPROXY_EXPORT int dotproxy_config_add_listen_tls(dotproxy_config *cfg, const char *spec)
{
    if (cfg == NULL || spec == NULL)
        return DOTPROXY_EINVAL;
    if (cfg->tls.n_listen == DOTPROXY_LISTEN_TLS_MAX)
        return DOTPROXY_ELIMIT;
    dotproxy_endpoint ep;
    int rc;
    size_t n = strlen(spec);
    if (n > 2 && strcmp(spec + n - 2, "@0") == 0) {
        /* As for plain listeners: "@0" lets the kernel choose. */
        char addr[128];
        if (n - 2 >= sizeof addr)
            return DOTPROXY_EADDR;
        memcpy(addr, spec, n - 2);
        addr[n - 2] = '\0';
        rc = dotproxy_endpoint_parse(&ep, addr, 0, 0);
    } else {
        rc = dotproxy_endpoint_parse(&ep, spec, DOTPROXY_DOT_PORT, 0);
    }
    if (rc != 0)
        return rc;
    cfg->tls.listen[cfg->tls.n_listen++] = ep;
    return 0;
}

DOTPROXY_EXPORT int dotproxy_config_clear_listen_tls(dotproxy_config *cfg)
{
    if (cfg == NULL)
        return DOTPROXY_EINVAL;
    cfg->tls.n_listen = 0;
    return 0;
}

DOTPROXY_EXPORT size_t dotproxy_config_listen_tls_count(const dotproxy_config *cfg)
{
    return cfg == NULL ? 0 : cfg->tls.n_listen;
}

DOTPROXY_EXPORT int dotproxy_config_get_listen_tls(const dotproxy_config *cfg, size_t index,
                                                   dotproxy_endpoint *out)
{
    if (cfg == NULL || out == NULL || index >= cfg->tls.n_listen)
        return DOTPROXY_EINVAL;
    *out = cfg->tls.listen[index];
    return 0;
}

static int set_path(char **slot, const char *path)
{
    if (path != NULL && path[0] == '\0')
        return DOTPROXY_EINVAL;
    char *copy = NULL;
    if (path != NULL && (copy = strdup(path)) == NULL)
        return DOTPROXY_ENOMEM;
    free(*slot);
    *slot = copy;
    return 0;
}

#define PATH_SETTING(name, field)                                                                  \
    DOTPROXY_EXPORT int dotproxy_config_set_##name(dotproxy_config *cfg, const char *path)         \
    {                                                                                              \
        if (cfg == NULL)                                                                           \
            return DOTPROXY_EINVAL;                                                                \
        return set_path(&cfg->tls.field, path);                                                    \
    }                                                                                              \
    DOTPROXY_EXPORT const char *dotproxy_config_get_##name(const dotproxy_config *cfg)             \
    {                                                                                              \
        return cfg == NULL ? NULL : cfg->tls.field;                                                \
    }

PATH_SETTING(tls_cert, cert)
PATH_SETTING(tls_key, key)
PATH_SETTING(tls_client_ca, client_ca)
PATH_SETTING(upstream_cert, upstream_cert)
PATH_SETTING(upstream_key, upstream_key)

DOTPROXY_EXPORT int dotproxy_config_add_tls_client_id(dotproxy_config *cfg, const char *id)
{
    if (cfg == NULL || id == NULL || id[0] == '\0' || strlen(id) > CLIENT_ID_MAX_LEN)
        return DOTPROXY_EINVAL;
    if (cfg->tls.n_client_ids == DOTPROXY_TLS_CLIENT_IDS_MAX)
        return DOTPROXY_ELIMIT;
    char *copy = strdup(id);
    if (copy == NULL)
        return DOTPROXY_ENOMEM;
    cfg->tls.client_ids[cfg->tls.n_client_ids++] = copy;
    return 0;
}

DOTPROXY_EXPORT int dotproxy_config_clear_tls_client_id(dotproxy_config *cfg)
{
    if (cfg == NULL)
        return DOTPROXY_EINVAL;
    for (size_t i = 0; i < cfg->tls.n_client_ids; i++)
        free(cfg->tls.client_ids[i]);
    cfg->tls.n_client_ids = 0;
    return 0;
}

DOTPROXY_EXPORT size_t dotproxy_config_tls_client_id_count(const dotproxy_config *cfg)
{
    return cfg == NULL ? 0 : cfg->tls.n_client_ids;
}

DOTPROXY_EXPORT const char *dotproxy_config_get_tls_client_id(const dotproxy_config *cfg,
                                                              size_t index)
{
    if (cfg == NULL || index >= cfg->tls.n_client_ids)
        return NULL;
    return cfg->tls.client_ids[index];
}

DOTPROXY_EXPORT int dotproxy_config_set_tls_idle_timeout_ms(dotproxy_config *cfg, unsigned ms)
{
    if (cfg == NULL || ms < DOTPROXY_IDLE_TIMEOUT_MS_MIN || ms > DOTPROXY_IDLE_TIMEOUT_MS_MAX)
        return DOTPROXY_EINVAL;
    cfg->tls.idle_timeout_ms = ms;
    return 0;
}

DOTPROXY_EXPORT unsigned dotproxy_config_get_tls_idle_timeout_ms(const dotproxy_config *cfg)
{
    return cfg == NULL ? 0 : cfg->tls.idle_timeout_ms;
}
