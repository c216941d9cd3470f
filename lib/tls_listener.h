/* SPDX-License-Identifier: MIT */
/* The DNS-over-TLS listener (RFC 7858, RFC 8310) and its clients: TLS
 * handshakes under a deadline, mutual TLS, pipelined queries answered out of
 * order, idle timeouts and edns-tcp-keepalive (RFC 7828), padded answers to
 * padded queries (RFC 8467), certificate rotation (reload, inotify) without
 * closing anyone. Driven by the context's loop like the plain listeners; it
 * hands queries up through the same hook (dp_listener_hooks). */
#ifndef DP_TLS_LISTENER_H
#define DP_TLS_LISTENER_H

#include <stdint.h>

#include "config.h"
#include "list.h"
#include "listener.h"
#include "log.h"
#include "loop.h"
#include "stats.h"

struct dp_tls_listeners;
struct dp_tls_client;
struct dp_policy;

/* What a query said about its transport that its answer must honour. */
#define DP_TLS_Q_PADDED    1u /* RFC 8467 4.1: pad the answer (468-octet blocks) */
#define DP_TLS_Q_KEEPALIVE 2u /* RFC 7828 3.3.2: tell our idle timeout */

/* A TLS client's claim on a query it waits for, embedded in the query
 * record (as struct dp_tcp_claim for TCP): client NULL once answered or
 * the client went away, so a late answer is dropped. */
struct dp_tls_claim {
    struct dp_list link;
    struct dp_tls_client *client;
    uint8_t flags; /* DP_TLS_Q_* */
};

/* Create the listeners' state; with TLS listen addresses or a certificate
 * configured, load the material (DOTPROXY_EINVAL without cert and key,
 * DOTPROXY_ETLS bad files, logged) and bind (DOTPROXY_EBIND). *out is NULL
 * when nothing is configured. The pointers are borrowed. */
int dp_tls_listener_new(struct dp_tls_listeners **out, struct dp_loop *loop,
                        const struct dp_logger *log, struct dp_counters *ctr,
                        const struct dotproxy_config *cfg, struct dp_policy *const *policy,
                        const struct dp_listener_hooks *hooks);
/* Close everything and free (NULL-safe). */
void dp_tls_listener_free(struct dp_tls_listeners *tl);
int dp_tls_listener_port(const struct dp_tls_listeners *tl, size_t index);
/* Load the certificate material afresh from the configuration (reload):
 * new handshakes get it, established sessions keep theirs. A failure keeps
 * the old material (logged, counted). */
void dp_tls_listener_reload(struct dp_tls_listeners *tl);
/* Queue an answer for c (NULL or closed: dropped); flags from its claim. */
void dp_tls_listener_send(struct dp_tls_client *c, unsigned flags, const uint8_t *msg, size_t len);
void dp_tls_listener_claim(struct dp_tls_client *c, struct dp_tls_claim *cl, unsigned flags);
void dp_tls_listener_unclaim(struct dp_tls_claim *cl);
const struct sockaddr_storage *dp_tls_listener_peer(const struct dp_tls_client *c, socklen_t *len);
/* End of turn: write queued answers, resume paused clients, free closed
 * ones. Returns 1 when that produced queries (flush the pool again). */
int dp_tls_listener_flush(struct dp_tls_listeners *tl);
/* Graceful stop: no new clients or queries; pending answers still go out. */
void dp_tls_listener_quiesce(struct dp_tls_listeners *tl);
void dp_tls_listener_close_clients(struct dp_tls_listeners *tl);
/* After a reload: apply a lower client cap. */
void dp_tls_listener_apply_limits(struct dp_tls_listeners *tl);

#endif
