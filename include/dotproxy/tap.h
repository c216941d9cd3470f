/* SPDX-License-Identifier: MIT */
/* libdotproxy: the message tap, for structured traffic logs (dnstap).
 *
 * An embedder registers one callback on a config; every context made from
 * it then calls it for each DNS message it receives from or sends to a
 * client, and for each query it sends to and answer it receives from an
 * upstream. The event carries the message's octets, the addresses and ports
 * of both ends and the times, in the terms of the dnstap schema (the kinds
 * and transports have dnstap's numbers), so a dnstap encoder maps it field
 * by field; the library itself encodes nothing and depends on nothing for
 * it. With no tap set (the default) each of those places costs one branch. */
#ifndef DOTPROXY_TAP_H
#define DOTPROXY_TAP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "dotproxy/config.h"
#include "dotproxy/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What an event is: dnstap's Message.Type values. */
#define DOTPROXY_TAP_CLIENT_QUERY       5 /* received from a client */
#define DOTPROXY_TAP_CLIENT_RESPONSE    6 /* sent to a client */
#define DOTPROXY_TAP_FORWARDER_QUERY    7 /* sent to an upstream */
#define DOTPROXY_TAP_FORWARDER_RESPONSE 8 /* received from an upstream */

/* How the message travelled: dnstap's SocketProtocol values. */
#define DOTPROXY_TAP_UDP 1
#define DOTPROXY_TAP_TCP 2
#define DOTPROXY_TAP_TLS 3 /* DNS over TLS (RFC 7858): dnstap's DOT */

/* One message event. A value type: the pointers are borrowed for the
 * duration of the callback only. Fields may be added at the end in later
 * versions: `size` is sizeof the struct the library filled in, so a caller
 * built against a newer header reads a field only when size says it is
 * there. */
typedef struct dotproxy_tap_event {
    size_t size;
    int kind;      /* DOTPROXY_TAP_CLIENT_QUERY ... FORWARDER_RESPONSE */
    int transport; /* DOTPROXY_TAP_UDP, _TCP (clients) or _TLS (upstreams) */
    /* The initiator of the exchange: the client for CLIENT_*; NULL for
     * FORWARDER_* (this proxy's own end, not known without a system call). */
    const struct sockaddr *query_addr;
    socklen_t query_addr_len;
    /* The responder: the upstream for FORWARDER_*; for CLIENT_* the local
     * address the client's datagram was sent to when known (UDP), else
     * NULL. */
    const struct sockaddr *response_addr;
    socklen_t response_addr_len;
    const uint8_t *msg; /* the message as received or sent, ID included */
    size_t len;
    /* Wall-clock times (CLOCK_REALTIME), nanoseconds since the Unix epoch:
     * when the query was received (CLIENT_*) or sent (FORWARDER_*); and for
     * responses when the response was sent or received (0 for queries). */
    uint64_t query_time_ns;
    uint64_t response_time_ns;
} dotproxy_tap_event;

/* Called for every event, on the thread driving the context, in the middle
 * of the query path: it must return quickly and never block (hand the
 * event to another thread through a bounded queue, dropping when it is
 * full), and must not call back into the context. */
typedef void (*dotproxy_tap_fn)(const dotproxy_tap_event *ev, void *user);

/* Set (or with NULL clear, the default) the tap of contexts made from cfg;
 * a reload with a config that has another tap switches to it. Returns 0 or
 * DOTPROXY_EINVAL (cfg NULL). */
DOTPROXY_EXPORT int dotproxy_config_set_tap(dotproxy_config *cfg, dotproxy_tap_fn fn, void *user);

#ifdef __cplusplus
}
#endif
#endif
