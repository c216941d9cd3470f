/* SPDX-License-Identifier: MIT */
/* The configured upstreams: each one's endpoint and identity, its health
 * (failures, backoff with jitter, smoothed RTT, the idle limit it showed),
 * and the choice among them. No sockets here: the TLS pool (tls_pool.c)
 * owns the connections and is told when a backoff ends through a hook, so
 * selection and backoff can be tested with a fake clock and a seeded PRNG. */
#ifndef DP_UPSTREAM_H
#define DP_UPSTREAM_H

#include <stdint.h>

#include <gnutls/gnutls.h>

#include "config.h"
#include "dotproxy/config.h"
#include "list.h"
#include "log.h"
#include "loop.h"
#include "prng.h"

#define DP_MAX_CONNS 64

struct dp_conn;
struct dp_upstreams;

/* The pool's part of an upstream: its connections and the queries waiting
 * for one. Written by tls_pool.c alone; upstream.c only makes it empty. */
struct dp_upstream_conns {
    struct dp_conn *conns[DP_MAX_CONNS];
    unsigned n_conns;
    struct dp_list waiting; /* queries waiting for a connection slot */
    size_t n_waiting;
    gnutls_datum_t ticket; /* session data for the next connection; used once */
    uint64_t n_queries;    /* sent to it */
    uint64_t n_answers;    /* received from it */
};

struct dp_upstream {
    struct dp_upstreams *set;
    unsigned index; /* position in the set (bit of a query's `tried`) */
    dotproxy_endpoint ep;
    char label[300];               /* "ADDR@PORT#NAME", for logs */
    char verify_name[256];         /* name checked against the certificate */
    uint8_t pins[DP_MAX_PINS][32]; /* SPKI SHA-256 pins, n_pins of them */
    unsigned n_pins;
    int plain; /* a forward zone's "plain:" upstream: DNS over TCP, no TLS */
    struct dp_upstream_conns pool;
    /* Health: written by upstream.c alone (through the functions below). */
    unsigned fails;         /* consecutive failures: connects, handshakes, answers */
    int suspect;            /* the last failure came after TLS (closes, garbage):
                               only an answer clears it, not a handshake */
    int slow;               /* its connect or handshake is late: others first */
    uint64_t down_until_us; /* not chosen before this */
    uint64_t backoff_us;
    uint64_t srtt_us;       /* EWMA of answer round trips, 0 = unknown */
    uint64_t idle_limit_us; /* learnt: close idle connections before this; 0 = unknown */
    uint64_t last_ok_us;    /* last handshake or answer */
    int64_t cert_not_after; /* notAfter of the leaf at the last verified
                               handshake (Unix time); 0 = none yet */
    struct dp_timer probe;  /* reconnect attempt when the backoff ends */
    uint64_t seen_queries;  /* pool.n_queries at the last idle check */
    uint64_t last_used_us;  /* when a query was last seen sent to it; 0 never */
    struct dp_timer health; /* idle check: probe it while nobody uses it */
    /* Its failures as the log tells them (upstream.c): once when it goes
     * down, then at most one summary a minute, and once when it is back. */
    char why[256];          /* the last failure, as its caller said it */
    int down;               /* said to be down, not yet back */
    uint64_t down_since_us; /* when it was said */
    uint64_t down_told_us;  /* the last line about it */
    unsigned down_untold;   /* failures since that line */
};

/* What the set calls up into, given at init. */
struct dp_upstream_hooks {
    /* up's backoff is over and it has no connection: try to open one. */
    void (*probe)(struct dp_upstream *up, void *user);
    /* up is healthy, idle and has a connection open: check that the
     * connection still works (a query on it). Its outcome comes back as
     * dp_upstream_answered or a connect failure. */
    void (*ping)(struct dp_upstream *up, void *user);
    void *user;
};

struct dp_upstreams {
    struct dp_upstream *ups[DP_MAX_SET];
    size_t n;
    unsigned rr;          /* round-robin and exploration counter */
    struct dp_loop *loop; /* timers, and the time of the turn */
    const struct dp_logger *log;
    struct dp_prng *prng;              /* backoff jitter */
    const struct dotproxy_config *cfg; /* the selection policy, read at each choice */
    struct dp_upstream_hooks hooks;
};

/* An empty set. The pointers are borrowed and must outlive it. */
void dp_upstreams_init(struct dp_upstreams *set, struct dp_loop *loop, const struct dp_logger *log,
                       struct dp_prng *prng, const struct dotproxy_config *cfg,
                       const struct dp_upstream_hooks *hooks);

/* A new upstream for cfg's index-th entry (endpoint and pins), not yet in
 * set->ups: cfg->upstream[index], or past those cfg->fwd_up[index -
 * n_upstream] (dp_config_upstream_total). NULL: no memory. */
struct dp_upstream *dp_upstream_new(struct dp_upstreams *set, const struct dotproxy_config *cfg,
                                    unsigned index);
/* Free up; the pool must have closed its connections and dropped its ticket
 * (dp_tls_pool_release). NULL-safe. */
void dp_upstream_free(struct dp_upstream *up);
/* Make ups[0..n) the set's list, in that order (creation, reload): each
 * upstream's index becomes its position, what it taught about idle limits
 * is forgotten (a reload starts afresh) and its idle health check is
 * armed. The ones left out are the caller's to free. */
void dp_upstreams_set(struct dp_upstreams *set, struct dp_upstream *const *ups, size_t n);
/* Same endpoint, name, pins and transport as cfg's index-th upstream (as
 * dp_upstream_new counts them). */
int dp_upstream_same(const struct dp_upstream *up, const struct dotproxy_config *cfg,
                     unsigned index);

/* Usable for a new query now (not backing off). */
int dp_upstream_usable(const struct dp_upstream *up, uint64_t now_us);
/* Healthy: usable, and its last attempt (connect, handshake or answer)
 * did not fail. */
int dp_upstream_healthy(const struct dp_upstream *up, uint64_t now_us);
/* Pick the upstream for a query that already tried the ones in `tried` (bit
 * i: set->ups[i]); NULL when none is usable. Healthy upstreams come first;
 * one that failed gets one query (a trial) each time its backoff ends
 * while healthy ones are left, and every query while none is. */
struct dp_upstream *dp_upstreams_select(struct dp_upstreams *set, uint32_t tried);
/* Would dp_upstreams_select give a query an upstream (no trial taken)? */
int dp_upstreams_any_usable(const struct dp_upstreams *set, uint32_t tried);

/* Health events. */
/* What went wrong, for the log line of the failure reported next (the
 * caller then logs its own line at debug level only). Copied. */
void dp_upstream_failure_reason(struct dp_upstream *up, const char *why);
void dp_upstream_connect_failed(struct dp_upstream *up);
void dp_upstream_connect_succeeded(struct dp_upstream *up);
/* A handshake with up verified a leaf certificate valid until not_after
 * (Unix time): kept for the expiry metric; the latest handshake holds, so a
 * rotated upstream certificate shows at its next connection. */
void dp_upstream_cert_seen(struct dp_upstream *up, int64_t not_after);
/* After a completed handshake, the upstream failed a query: closed the
 * connection without answering, or answered with something that is not an
 * answer to it. Counts as a failure (backoff), and a handshake alone does
 * not end it: an answer does. */
void dp_upstream_protocol_failed(struct dp_upstream *up);
/* It answered: every failure is forgiven, backoff and probe end. */
void dp_upstream_recovered(struct dp_upstream *up);
/* An answer matched its query. */
static inline void dp_upstream_answered(struct dp_upstream *up, uint64_t now_us)
{
    up->last_ok_us = now_us;
    if (up->fails != 0 || up->suspect)
        dp_upstream_recovered(up);
}
/* Its connect or handshake has been pending longer than the race delay:
 * choose others while it lasts (cleared by the connect's outcome). */
void dp_upstream_connect_slow(struct dp_upstream *up);
void dp_upstream_rtt_sample(struct dp_upstream *up, uint64_t rtt_us);

/* Bounds of a learnt idle limit: an answer with keepalive TIMEOUT=1 (100 ms)
 * would otherwise mean a handshake per query. */
#define DP_IDLE_LIMIT_MIN_US 1000000u
/* up showed it drops idle connections after about limit_us (closing one
 * itself, or an RFC 7828 keepalive timeout): the latest such limit holds,
 * up or down, never below DP_IDLE_LIMIT_MIN_US (the configured idle timeout
 * caps it where used). Returns 1 when the limit changed. */
static inline int dp_upstream_learn_idle_limit(struct dp_upstream *up, uint64_t limit_us)
{
    /* Inline: an upstream that sends RFC 7828 keepalive does so in every
     * answer. */
    if (limit_us == 0)
        return 0;
    if (limit_us < DP_IDLE_LIMIT_MIN_US)
        limit_us = DP_IDLE_LIMIT_MIN_US;
    if (limit_us == up->idle_limit_us)
        return 0;
    up->idle_limit_us = limit_us;
    return 1;
}

/* The health part of up's public stats (label, healthy, failures, srtt,
 * idle limit, certificate notAfter); the pool fills in the rest. */
void dp_upstream_describe(const struct dp_upstream *up, uint64_t now_us,
                          dotproxy_upstream_stats *out);

#endif
