/* SPDX-License-Identifier: MIT */
/* The query record: one per query in flight, from admission to answer.
 * Shared by the modules a query crosses; each writes only its own fields:
 * the pipeline (proxy.c) everything but the pool's part; the TLS pool
 * (tls_pool.c) conn, up, wire_id, sent_us, tried, retries, the `sent` and
 * (while waiting for a connection) `wait` links, and the query's ID on the
 * wire. Records come from a per-context pool (proxy.c): nothing on the hot
 * path allocates. */
#ifndef DP_QUERY_H
#define DP_QUERY_H

#include <stdint.h>
#include <sys/socket.h>

#include "cache.h"
#include "dotproxy/dns.h"
#include "dotproxy/proxy.h"
#include "edns.h"
#include "list.h"
#include "listener.h"
#include "tls_listener.h"

/* Queries up to this size live inside their record; larger ones (rare: no
 * common client sends one) get a buffer of their own. */
#define DP_QUERY_INLINE 512

struct dp_conn;
struct dp_upstream;

struct dp_query {
    struct dp_list active;    /* ctx->active, in deadline order */
    struct dp_list wait;      /* an upstream's waiting list, or its leader's followers */
    struct dp_list sent;      /* the pool's sent list, in the order written upstream */
    struct dp_list followers; /* leader: queries waiting for its answer (by `wait`) */
    struct dp_list stale;     /* ctx->stale_watch */
    struct dp_query *leader;  /* follower: the query it waits for */
    struct dp_query *hnext;   /* leader: next in its in-flight table chain */
    uint64_t stale_due_us;
    uint64_t deadline_us;
    uint64_t sent_us;       /* when written to an upstream (RTT) */
    uint64_t arrived_us;    /* when the client's query came (latency) */
    struct dp_conn *conn;   /* connection it is in flight on, or NULL */
    struct dp_upstream *up; /* upstream chosen (waiting or in flight) */
    uint32_t tried;         /* bit i: upstream i was tried */
    uint16_t client_id;     /* ID the client used */
    uint16_t wire_id;       /* ID on the upstream connection */
    uint16_t udp_limit;
    uint16_t qlen;
    uint16_t qname_len;
    uint16_t qtype, qclass;
    uint8_t kind; /* enum dp_query_kind */
    uint8_t retries;
    uint8_t cacheable;    /* key is valid */
    uint8_t leading;      /* in the in-flight table */
    uint8_t counted;      /* holds a per-client in-flight count (policy_gen) */
    uint8_t served_stale; /* its clients got the stale answer; refreshing only */
    unsigned policy_gen;
    uint32_t policy_home;       /* counted: the client's place in the policy's table */
    uint32_t dyn_slot;          /* the client's dynblock entry (dp_dynblock_query), or 0 */
    uint32_t qcap;              /* room at q */
    struct dp_edns_client edns; /* the client's EDNS, for its answer */
    struct dp_cache_key key;
    union {
        struct {
            struct dp_udp_listener *l;
            struct sockaddr_storage peer;
            socklen_t peerlen;
            struct dp_pktinfo dst;
        } udp;
        struct dp_tcp_claim tcp; /* client NULL once it went away */
        struct dp_tls_claim tls; /* likewise */
        struct {
            dotproxy_answer_fn cb;
            void *user;
            dotproxy_dns_info info; /* the query, parsed once (for the pipeline) */
        } api;
    } from;
    struct dp_query *next_free;
    uint8_t *q; /* the query bytes: qbuf or a heap copy */
    uint8_t qbuf[DP_QUERY_INLINE];
};

#endif
