/* SPDX-License-Identifier: MIT */
/* The configuration record behind the opaque dotproxy_config. */
#ifndef DP_CONFIG_H
#define DP_CONFIG_H

#include "block_config.h"
#include <stdint.h>

#include "anomaly.h"
#include "dotproxy/config.h"
#include "dotproxy/forward.h"
#include "dotproxy/tap.h"
#include "dotproxy/tls.h"
#include "log.h"

/* The limits are public (include/dotproxy/config.h); these are their names
 * inside the library. */
#define DP_MAX_LISTEN    DOTPROXY_LISTEN_MAX
#define DP_MAX_UPSTREAMS DOTPROXY_UPSTREAMS_MAX
#define DP_MAX_ALLOW     DOTPROXY_ALLOW_MAX
#define DP_MAX_PINS      DOTPROXY_PINS_MAX
#define DP_MAX_FWD_ZONES DOTPROXY_FORWARD_ZONES_MAX
#define DP_MAX_FWD_UPS   DOTPROXY_FORWARD_UPSTREAMS_MAX
/* Upstreams of a context: the configured ones, then the forward zones'.
 * Each is a bit of a query's `tried` (uint32_t). */
#define DP_MAX_SET (DP_MAX_UPSTREAMS + DP_MAX_FWD_UPS)
_Static_assert(DP_MAX_SET <= 32, "a query's tried mask has 32 bits");

/* An upstream of forward zones (forward.c). */
struct dp_fwd_upstream {
    dotproxy_endpoint ep;
    uint8_t pins[DP_MAX_PINS][32];
    unsigned n_pins;
    int plain; /* plain DNS over TCP, not TLS */
};

/* A forward zone: its name in wire form (lower case) and its upstreams, as
 * positions in fwd_up, in the order added. */
struct dp_fwd_zone {
    uint8_t wire[255];
    uint8_t len;
    uint8_t ups[DP_MAX_FWD_UPS];
    uint8_t n_ups;
};

/* One allowed network: address bytes in network order, prefix length. */
struct dp_cidr {
    int family; /* AF_INET or AF_INET6 */
    uint8_t addr[16];
    uint8_t prefix;
};

/* The TLS listener's and the upstream client certificate's settings
 * (config_tls.c, dotproxy/tls.h). */
struct dp_tls_config {
    dotproxy_endpoint listen[DOTPROXY_LISTEN_TLS_MAX];
    size_t n_listen;
    char *cert, *key, *client_ca;
    char *client_ids[DOTPROXY_TLS_CLIENT_IDS_MAX];
    size_t n_client_ids;
    unsigned idle_timeout_ms;
    char *upstream_cert, *upstream_key;
};

struct dotproxy_config {
    dotproxy_endpoint listen[DP_MAX_LISTEN];
    size_t n_listen;
    dotproxy_endpoint upstream[DP_MAX_UPSTREAMS];
    size_t n_upstream;
    uint8_t pins[DP_MAX_UPSTREAMS][DP_MAX_PINS][32]; /* SHA-256 of SPKI */
    unsigned n_pins[DP_MAX_UPSTREAMS];
    struct dp_fwd_upstream fwd_up[DP_MAX_FWD_UPS]; /* distinct, over all zones */
    size_t n_fwd_up;
    struct dp_fwd_zone fwd_zone[DP_MAX_FWD_ZONES];
    size_t n_fwd_zone;
    char *ca_file;      /* NULL: system trust store */
    char *tls_priority; /* NULL: DOTPROXY_TLS_PRIORITY_DEFAULT */
    unsigned timeout_ms;
    unsigned idle_timeout_ms;
    unsigned tcp_idle_timeout_ms;
    unsigned max_connections;
    unsigned max_inflight;
    unsigned max_queries;
    unsigned max_tcp_clients;
    size_t cache_size;
    unsigned cache_min_ttl, cache_max_ttl, stale_max_s;
    struct dotproxy_cache *shared_cache; /* a reference, or NULL */
    struct dp_cidr allow[DP_MAX_ALLOW];
    size_t n_allow; /* 0: the default private list */
    unsigned rl_qps, rl_burst, rl_v4_prefix, rl_v6_prefix;
    int rl_action, rl_loopback;
    unsigned max_client_queries;
    unsigned padding;
    unsigned udp_size; /* largest UDP answer to a client, and what our OPT says */
    int keep_ecs;
    struct dp_dynrule dyn_rules[DOTPROXY_DYNBLOCK_RULES_MAX]; /* --dynblock */
    size_t n_dyn_rules;
    struct dp_cidr dyn_exempt[DOTPROXY_DYNBLOCK_EXEMPT_MAX];
    char dyn_exempt_text[DOTPROXY_DYNBLOCK_EXEMPT_MAX][64]; /* as given */
    size_t n_dyn_exempt;
    struct dotproxy_dynblock *shared_dynblock; /* a reference, or NULL */
    int selection;
    unsigned handshake_timeout_ms;
    int reuseport;
    struct dp_tls_config tls; /* config_tls.c */
    struct dp_logger log;
    dotproxy_query_log_fn qlog;
    void *qlog_user;
    struct dp_block_config block; /* blocklists (block.c) */
    dotproxy_tap_fn tap;          /* lib/tap.c; NULL: no tap */
    void *tap_user;
};

/* Every upstream a context makes from cfg: upstream[] then fwd_up[]. */
static inline size_t dp_config_upstream_total(const struct dotproxy_config *cfg)
{
    return cfg->n_upstream + cfg->n_fwd_up;
}

/* A pin as dotproxy_config_add_pin takes it, decoded into out. 0 or
 * DOTPROXY_EINVAL. */
int dp_config_pin_decode(const char *pin, uint8_t out[32]);

/* Deep-copy src into dst (strings duplicated). 0 or DOTPROXY_ENOMEM. */
int dp_config_copy(struct dotproxy_config *dst, const struct dotproxy_config *src);
/* Free what dp_config_copy allocated (not dst itself). */
void dp_config_clear(struct dotproxy_config *cfg);
/* The TLS part of those (config_tls.c): defaults, deep copy (0 or
 * DOTPROXY_ENOMEM, dst->tls then holds no allocation), free. */
void dp_config_tls_defaults(struct dp_tls_config *t);
int dp_config_tls_copy(struct dp_tls_config *dst, const struct dp_tls_config *src);
void dp_config_tls_clear(struct dp_tls_config *t);

#endif
