/* SPDX-License-Identifier: MIT */
/* Forward zones (conditional forwarding): which upstreams a query may use,
 * from its name. The configuration side (dotproxy_config_add_forward) keeps
 * the zones and their distinct upstreams in the config record; a context
 * builds a dp_forward table from it, and the pipeline asks the table once
 * per query for the upstreams it must not use, which become the query's
 * initial `tried` bits: selection, hedging, racing and failover then stay
 * within the zone's set without knowing zones exist. Pure: no socket, no
 * clock, no allocation. */
#ifndef DP_FORWARD_H
#define DP_FORWARD_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "log.h"

struct dp_forward_zone {
    uint8_t wire[255]; /* lower case */
    uint8_t len;
    uint32_t excluded; /* bits of the context's upstream set it may not use */
};

/* The table of a context, longest zone first. */
struct dp_forward {
    struct dp_forward_zone z[DP_MAX_FWD_ZONES];
    size_t n;
    uint32_t def_excluded; /* names under no zone: every zone upstream */
    uint32_t tls_bits;     /* upstreams of the set reached over TLS */
};

/* Build fw from cfg: the context's upstream set holds cfg->upstream[] at
 * positions 0..n_upstream and cfg->fwd_up[k] at n_upstream + k. */
void dp_forward_build(struct dp_forward *fw, const struct dotproxy_config *cfg);

/* The upstreams a query for the wire-form name qname[0..len) may not use
 * (the name is uncompressed, as a question's is). */
uint32_t dp_forward_excluded(const struct dp_forward *fw, const uint8_t *qname, size_t len);

/* Would a query that may not use `excluded` reach only plain upstreams?
 * Padding (RFC 8467) is then pointless, and RFC 8467 4 says not to pad on an
 * unencrypted transport. */
static inline int dp_forward_plain_only(const struct dp_forward *fw, uint32_t excluded)
{
    return (fw->tls_bits & ~excluded) == 0;
}

/* Log each zone and say, for each plain upstream, that what crosses it is
 * not private (at start and on reload). */
void dp_forward_announce(const struct dotproxy_config *cfg, const struct dp_logger *log);

/* cfg->fwd_up[k] as typed: "ADDR@PORT[#NAME][^sha256/PIN...]" or
 * "plain:ADDR@PORT". Length, or DOTPROXY_ENOSPC. */
int dp_forward_format_upstream(const struct dp_fwd_upstream *u, char *buf, size_t cap);

#endif
