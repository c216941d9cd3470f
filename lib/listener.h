/* SPDX-License-Identifier: MIT */
/* Where clients reach us: UDP sockets read in batches, TCP listeners and
 * their pipelining clients (RFC 7766). */
#ifndef DP_LISTENER_H
#define DP_LISTENER_H

#include <stdint.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "dotproxy/config.h"
#include "dotproxy/dns.h"
#include "list.h"
#include "loop.h"

struct dotproxy_ctx;
struct dp_query;

struct udp_out;

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
    struct dotproxy_ctx *ctx;
    uint16_t port;
    int wildcard;            /* bound to 0.0.0.0 or ::: answers need a source address */
    struct udp_out *out;     /* answers waiting for this turn's sendmmsg */
    struct dp_udp_listener *next_dirty;
    int dirty;
};

struct dp_tcp_listener {
    struct dp_io io;
    struct dotproxy_ctx *ctx;
};

struct dp_tcp_client {
    struct dp_io io;
    struct dotproxy_ctx *ctx;
    struct dp_list lru;      /* ctx->tcp_clients, least recently active first */
    struct dp_list queries;  /* its queries still waiting for an answer */
    unsigned n_queries;
    int read_closed;         /* the client sent FIN: answer what is pending, then close */
    int closed;              /* detached; freed by the next flush */
    int paused;              /* too many queries in flight: not reading */
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

int dp_listener_open(struct dotproxy_ctx *ctx);
void dp_listener_close(struct dotproxy_ctx *ctx);
/* Send a datagram answer from listener l to peer (from local address dst
 * when the listener is a wildcard one; dst may be NULL otherwise). */
void dp_listener_udp_send(struct dotproxy_ctx *ctx, struct dp_udp_listener *l,
                          const struct sockaddr_storage *peer, socklen_t peerlen,
                          const struct dp_pktinfo *dst, const uint8_t *msg, size_t len);
/* Send the datagrams queued this turn. */
void dp_listener_udp_flush(struct dotproxy_ctx *ctx);
/* Queue a framed answer on a TCP client. */
void dp_listener_tcp_send(struct dotproxy_ctx *ctx, struct dp_tcp_client *c, const uint8_t *msg,
                          size_t len);
/* A query of c finished (answered, failed or forgotten). */
void dp_listener_tcp_query_done(struct dp_tcp_client *c, struct dp_query *q);
/* Resume paused clients and write out queued answers (end of a loop turn).
 * Returns 1 if that produced upstream output (flush the pool again). */
int dp_listener_flush(struct dotproxy_ctx *ctx);
void dp_listener_close_clients(struct dotproxy_ctx *ctx);
/* Graceful stop: no new clients or queries; pending answers still go out. */
void dp_listener_quiesce(struct dotproxy_ctx *ctx);

#endif
