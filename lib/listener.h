/* SPDX-License-Identifier: MIT */
/* Where clients reach us: UDP sockets read in batches, TCP listeners and
 * their pipelining clients (RFC 7766). */
#ifndef DP_LISTENER_H
#define DP_LISTENER_H

#include <stdint.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "config.h"
#include "dotproxy/config.h"
#include "dotproxy/dns.h"
#include "dotproxy/proxy.h"
#include "list.h"
#include "log.h"
#include "loop.h"
#include "stats.h"

struct dp_listeners;
struct dp_policy;
struct udp_out;
struct dp_tls_client;

/* The local address a datagram came to, for a listener bound to a wildcard
 * address: the answer must leave from it (RFC 1123 2.4 / the client checks
 * the source). family 0 = not known (specific listen address). */
struct dp_pktinfo {
    int family;
    int ifindex;
    union {
        struct in_addr v4;
        struct in6_addr v6;
    } addr;
};

struct dp_udp_listener {
    struct dp_io io;
    struct dp_listeners *ls;
    uint16_t port;
    int wildcard;        /* bound to 0.0.0.0 or ::: answers need a source address */
    struct udp_out *out; /* answers waiting for this turn's sendmmsg */
    struct dp_udp_listener *next_dirty;
    int dirty;
};

struct dp_tcp_listener {
    struct dp_io io;
    struct dp_listeners *ls;
};

struct dp_tcp_client {
    struct dp_io io;
    struct dp_listeners *ls;
    struct dp_list lru;     /* ls->tcp_clients, least recently active first */
    struct dp_list queries; /* its claims (struct dp_tcp_claim): queries awaiting answers */
    unsigned n_queries;
    int read_closed; /* the client sent FIN: answer what is pending, then close */
    int closed;      /* detached; freed by the next flush */
    int paused;      /* too many queries in flight: not reading */
    int broken;      /* 1: a bad frame came: answer what was asked, drop the
                        rest of the input, then close; 2: and the input ended */
    dotproxy_frame in;
    uint8_t *inbuf;
    uint8_t *out;
    size_t out_head, out_tail, out_cap;
    uint64_t last_active_us;
    struct sockaddr_storage peer; /* for access control and rate limits */
    socklen_t peerlen;
    struct dp_timer idle;
    struct dp_tcp_client *next_dirty;
    int dirty;
};

/* Who asked: a client over UDP or TCP, the API, or nobody (a refresh for
 * the cache alone). */
/* (TLS: tls_listener.c.) */
enum dp_query_kind { DP_Q_UDP, DP_Q_TCP, DP_Q_API, DP_Q_REFRESH, DP_Q_TLS };

/* Where a query came from, and so where its answer goes. The listener
 * fills the UDP and TCP kinds; the API kind is the pipeline's own
 * (dotproxy_ctx_query). */
struct dp_origin {
    uint8_t kind; /* enum dp_query_kind */
    struct dp_udp_listener *udp;
    const struct sockaddr_storage *peer; /* the client (UDP and TCP) */
    socklen_t peerlen;
    const struct dp_pktinfo *dst;
    struct dp_tcp_client *tcp;
    dotproxy_answer_fn api_cb;
    void *api_user;
    struct dp_tls_client *tls; /* DP_Q_TLS (tls_listener.c) */
    uint8_t tls_flags;         /* DP_TLS_Q_*: what the answer must carry */
};

/* A TCP client's claim on a query it waits for, embedded in the query
 * record: it counts against the client's pipelining limit, and when the
 * client goes away its claims are cut (client NULL), so the answer is
 * dropped rather than sent to whoever gets the fd next. */
struct dp_tcp_claim {
    struct dp_list link;          /* the client's `queries` */
    struct dp_tcp_client *client; /* NULL once answered or the client went away */
};

/* What the listeners call up into, given at init. */
struct dp_listener_hooks {
    /* A client message arrived (o: from where; msg writable, borrowed for
     * the call). */
    void (*query)(void *user, const struct dp_origin *o, uint8_t *msg, size_t len);
    void *user;
};

/* The listeners of a context and their TCP clients. */
struct dp_listeners {
    struct dp_udp_listener *udp; /* cfg->n_listen of each */
    struct dp_tcp_listener *tcp;
    void *udp_batch;            /* recvmmsg vectors and buffers */
    struct dp_list tcp_clients; /* least recently active first */
    size_t n_tcp_clients;
    size_t tcp_buf_bytes; /* all TCP client buffers (bounded) */
    struct dp_tcp_client *dirty_clients;
    struct dp_udp_listener *dirty_udp;
    int quiescing; /* graceful stop: no new clients or queries */
    struct dp_loop *loop;
    const struct dp_logger *log;
    struct dp_counters *ctr;
    const struct dotproxy_config *cfg; /* listen addresses (never changed by a
                                          reload) and client limits */
    struct dp_policy *const *policy;   /* the current access policy (a reload
                                          replaces it) */
    struct dp_listener_hooks hooks;
};

/* No sockets yet; the pointers are borrowed and must outlive ls. */
void dp_listener_init(struct dp_listeners *ls, struct dp_loop *loop, const struct dp_logger *log,
                      struct dp_counters *ctr, const struct dotproxy_config *cfg,
                      struct dp_policy *const *policy, const struct dp_listener_hooks *hooks);
/* Bind every listen address (UDP and TCP on the same port). 0,
 * DOTPROXY_EBIND (logged) or DOTPROXY_ENOMEM. */
int dp_listener_open(struct dp_listeners *ls);
void dp_listener_close(struct dp_listeners *ls);
/* Free what open() allocated (after close). */
void dp_listener_fini(struct dp_listeners *ls);
/* The port the index-th listen address is bound to, or DOTPROXY_EINVAL. */
int dp_listener_port(const struct dp_listeners *ls, size_t index);
/* Send a datagram answer from listener l to peer (from local address dst
 * when the listener is a wildcard one; dst may be NULL otherwise). */
void dp_listener_udp_send(struct dp_listeners *ls, struct dp_udp_listener *l,
                          const struct sockaddr_storage *peer, socklen_t peerlen,
                          const struct dp_pktinfo *dst, const uint8_t *msg, size_t len);
/* Send the datagrams queued this turn. */
void dp_listener_udp_flush(struct dp_listeners *ls);
/* Queue a framed answer on a TCP client. */
void dp_listener_tcp_send(struct dp_listeners *ls, struct dp_tcp_client *c, const uint8_t *msg,
                          size_t len);
/* TCP query begin and end: c waits for the query holding cl; the query
 * finished (answered, failed or forgotten; NULL-client claims are ignored). */
void dp_listener_tcp_claim(struct dp_tcp_client *c, struct dp_tcp_claim *cl);
void dp_listener_tcp_unclaim(struct dp_tcp_claim *cl);
/* The client's address (query logs). */
const struct sockaddr_storage *dp_listener_tcp_peer(const struct dp_tcp_client *c, socklen_t *len);
/* The next connection on listening socket lfd that the access list lets
 * in (others are closed and counted), non-blocking, close-on-exec, with
 * TCP_NODELAY: its fd, or -1 when none is pending. Out of descriptors,
 * evict(arg) must close one client (the longest idle) and return 0, or
 * return -1 when it has none: the pending connection then waits. Shared
 * by the TCP and the TLS listeners. */
int dp_listener_accept(int lfd, struct dp_policy *policy, struct dp_counters *ctr,
                       const struct dp_logger *log, int (*evict)(void *arg), void *arg,
                       struct sockaddr_storage *peer, socklen_t *peerlen);
/* Resume paused clients and write out queued answers (end of a loop turn).
 * Returns 1 if that produced upstream output (flush the pool again). */
int dp_listener_flush(struct dp_listeners *ls);
/* After a reload: close the least recently active TCP clients beyond
 * max_tcp_clients. */
void dp_listener_apply_limits(struct dp_listeners *ls);
void dp_listener_close_clients(struct dp_listeners *ls);
/* Graceful stop: no new clients or queries; pending answers still go out. */
void dp_listener_quiesce(struct dp_listeners *ls);

#endif
