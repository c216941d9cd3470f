/* SPDX-License-Identifier: MIT */
/* Persistent, pipelined, strictly authenticated TLS connections to the
 * upstreams (RFC 7858, RFC 7766 6.2.1.1, RFC 8310 strict profile). */
#ifndef DP_TLS_POOL_H
#define DP_TLS_POOL_H

#include <stdint.h>

#include <gnutls/gnutls.h>

#include "config.h"
#include "dotproxy/dns.h"
#include "dotproxy/proxy.h"
#include "list.h"
#include "log.h"
#include "loop.h"
#include "query.h"
#include "slots.h"
#include "stats.h"
#include "upstream.h"

struct dp_pool;

enum dp_conn_state { DP_CONN_CONNECTING, DP_CONN_HANDSHAKING, DP_CONN_READY, DP_CONN_CLOSED };

struct dp_conn {
    struct dp_io io;
    struct dp_pool *pool;
    struct dp_upstream *up;
    gnutls_session_t tls;
    int state;               /* enum dp_conn_state */
    int ticket_taken;        /* session data already saved from this connection */
    int connect_errno;       /* a connect that failed at once: why (the timer tells it) */
    int gnutls_send_pending; /* a record_send returned EAGAIN: finish it first */
    size_t send_pending_len;
    struct dp_slots slots; /* in-flight table, by wire ID (slots.h) */
    /* Plain text waiting to be encrypted: framed queries added this turn are
     * written in as few TLS records as fit (one gnutls_record_send each). */
    uint8_t *out;
    size_t out_head, out_tail, out_cap;
    /* Ciphertext read ahead of GnuTLS (see conn_pull). */
    uint8_t *rbuf;
    size_t rhead, rtail;
    /* Reassembly of framed answers. */
    dotproxy_frame in;
    uint8_t *inbuf;
    uint64_t idle_since_us; /* when inflight last became 0 */
    uint64_t last_rx_us;    /* last TLS bytes received */
    uint64_t last_tx_us;    /* last query queued */
    struct dp_timer timer;  /* handshake deadline, then idle check */
    struct dp_conn *next_dirty;
    int dirty;
    int ack_owed;             /* answers read this turn while more are due */
    int retiring;             /* too many dead slots: no new queries, closed at its timer */
    uint64_t n_answered;      /* answers matched on this connection */
    unsigned queued;          /* queries in out not yet written */
    uint64_t queued_since_us; /* when the oldest of them was queued */
    /* Liveness check of an idle connection (dp_tls_pool_ping): its query
     * holds a slot marked dead from the start, so that nothing but the
     * answer's arrival (or the connection's end) frees it. */
    int ping_pending;
    uint16_t ping_wire;   /* its wire ID */
    uint64_t ping_due_us; /* the connection is failed if no answer by then */
};

/* What the pool calls up into, given at init (the pipeline, proxy.c). */
struct dp_pool_hooks {
    /* The answer to q, matched by wire ID and question (RFC 7858 3.3); msg
     * is writable and borrowed for the call, info its one parse. q is no
     * longer the pool's. */
    void (*answer)(void *user, struct dp_query *q, uint8_t *msg, size_t len,
                   const dotproxy_dns_info *info);
    /* No answer can be had for q here (err: DOTPROXY_EUPSTREAM). */
    void (*fail)(void *user, struct dp_query *q, int err);
    /* q must be placed again (its connection died, it is late, or its
     * upstream cannot take it): choose an upstream and submit it. */
    void (*redispatch)(void *user, struct dp_query *q);
    /* q was just written for its upstream (q->q as sent, wire ID in):
     * called only while the config has a tap (the message tap). */
    void (*sent)(void *user, const struct dp_query *q);
    void *user;
};

/* The pool's state: every connection is reached from its upstream in ups;
 * these are what the pool shares across upstreams. */
struct dp_pool {
    struct dp_loop *loop;
    const struct dp_logger *log;
    struct dp_counters *ctr;
    const struct dotproxy_config *cfg; /* limits and timeouts, read when used */
    struct dp_upstreams *ups;
    gnutls_certificate_credentials_t cred; /* owned; replaced by dp_tls_pool_set_trust */
    gnutls_priority_t prio;
    struct dp_conn *dirty; /* connections with output to flush */
    uint64_t write_due_us; /* a held write must go out by then */
    struct dp_list sent;   /* queries on the wire, oldest write first */
    struct dp_pool_hooks hooks;
};

/* An empty pool; the pointers are borrowed and must outlive it. */
void dp_tls_pool_init(struct dp_pool *pool, struct dp_loop *loop, const struct dp_logger *log,
                      struct dp_counters *ctr, const struct dotproxy_config *cfg,
                      struct dp_upstreams *ups, const struct dp_pool_hooks *hooks);
/* Take over cred and prio (from dp_trust_load) for new connections and free
 * the old ones: GnuTLS sessions only point at them, so no connection made
 * with the old ones may be left (a reload that changes them closes every
 * connection first). */
void dp_tls_pool_set_trust(struct dp_pool *pool, gnutls_certificate_credentials_t cred,
                           gnutls_priority_t prio);
/* Free the trust objects (after dp_tls_pool_shutdown). */
void dp_tls_pool_fini(struct dp_pool *pool);

/* Give q to up's pool: send it on a ready connection with room, or queue it
 * and, when needed, open a connection. */
void dp_tls_pool_submit(struct dp_pool *pool, struct dp_upstream *up, struct dp_query *q);
/* q timed out or its client vanished: release its place (a slot of a
 * connection becomes "dead" until the answer comes or the connection ends). */
void dp_tls_pool_forget(struct dp_pool *pool, struct dp_query *q);
/* Look at queries unanswered for longer than their hedge delay: replace a
 * connection the peer stopped acknowledging, move a late query to another
 * upstream. Oldest first; stops at the first query still on time. Then
 * queries waiting for a connect or handshake that is late (race delay,
 * RFC 8305's spirit) move to another upstream. */
void dp_tls_pool_sweep(struct dp_pool *pool);
/* When the pool next has work (a sweep, or a held write), or UINT64_MAX. */
uint64_t dp_tls_pool_next_due(const struct dp_pool *pool);
/* Write out every connection's queued output (end of a loop turn). */
void dp_tls_pool_flush(struct dp_pool *pool, int force);
/* Open a connection to up (background probe). */
void dp_tls_pool_probe(struct dp_pool *pool, struct dp_upstream *up);
/* Check that an idle ready connection of up still works: send it a query
 * (". NS", cached by every resolver) of our own. An answer of any kind
 * counts as up answering; none within the ping timeout fails the
 * connection and counts against up's health. Nothing when up has no
 * ready connection with a free slot, or a check is already on its way. */
void dp_tls_pool_ping(struct dp_pool *pool, struct dp_upstream *up);
/* Take every live query off up (in flight or waiting) onto out, linked by
 * their `wait` member, for dispatching elsewhere. */
void dp_tls_pool_evict(struct dp_upstream *up, struct dp_list *out);
/* Close every connection of up. */
void dp_tls_pool_close_all(struct dp_pool *pool, struct dp_upstream *up);
/* Before up is freed: close its connections and wipe its session ticket. */
void dp_tls_pool_release(struct dp_pool *pool, struct dp_upstream *up);
/* Close and free every connection of the pool. */
void dp_tls_pool_shutdown(struct dp_pool *pool);
/* The pool's part of up's public stats (connections, in flight, queries,
 * answers). */
void dp_tls_pool_describe(const struct dp_upstream *up, dotproxy_upstream_stats *out);

#endif
