/* SPDX-License-Identifier: MIT */
/* One configured upstream: its endpoint, its connections, the queries
 * waiting for one, its health, and the choice among upstreams. */
#ifndef DP_UPSTREAM_H
#define DP_UPSTREAM_H

#include <stdint.h>

#include <gnutls/gnutls.h>

#include "config.h"
#include "dotproxy/config.h"
#include "list.h"
#include "loop.h"

#define DP_MAX_CONNS 64

struct dotproxy_ctx;
struct dp_conn;
struct dp_query;

struct dp_upstream {
    struct dotproxy_ctx *ctx;
    unsigned index;
    dotproxy_endpoint ep;
    char label[300];          /* "ADDR@PORT#NAME", for logs */
    char verify_name[256];    /* name checked against the certificate */
    uint8_t pins[DP_MAX_PINS][32]; /* SPKI SHA-256 pins, n_pins of them */
    unsigned n_pins;
    struct dp_conn *conns[DP_MAX_CONNS];
    unsigned n_conns;
    struct dp_list waiting;   /* queries waiting for a connection slot */
    size_t n_waiting;
    gnutls_datum_t ticket;    /* session data for the next connection; used once */
    /* health */
    unsigned fails;           /* consecutive failed connects/handshakes */
    uint64_t down_until_us;   /* not chosen before this */
    uint64_t backoff_us;
    uint64_t srtt_us;         /* EWMA of answer round trips, 0 = unknown */
    uint64_t idle_limit_us;   /* learnt: close idle connections before this; 0 = unknown */
    struct dp_timer probe;    /* reconnect attempt when the backoff ends */
    uint64_t n_queries;       /* sent to it */
    uint64_t n_answers;       /* received from it */
};

/* A new upstream for cfg's index-th entry (endpoint and pins). NULL: no memory. */
struct dp_upstream *dp_upstream_new(struct dotproxy_ctx *ctx, const struct dotproxy_config *cfg,
                                    unsigned index);
/* Close its connections (their queries are dropped: move them first) and free. */
void dp_upstream_free(struct dp_upstream *up);
/* Same endpoint, name and pins as cfg's index-th upstream. */
int dp_upstream_same(const struct dp_upstream *up, const struct dotproxy_config *cfg,
                     unsigned index);

/* Usable for a new query now (not backing off). */
int dp_upstream_usable(const struct dp_upstream *up, uint64_t now_us);
/* Pick the upstream for a query that already tried the ones in `tried`;
 * NULL when none is usable. */
struct dp_upstream *dp_upstream_select(struct dotproxy_ctx *ctx, uint32_t tried);
/* Health events. */
void dp_upstream_connect_failed(struct dp_upstream *up);
void dp_upstream_connect_succeeded(struct dp_upstream *up);
void dp_upstream_rtt_sample(struct dp_upstream *up, uint64_t rtt_us);

#endif
