/* SPDX-License-Identifier: MIT */
/* libdotproxy: the DNS-over-TLS listener (RFC 7858, RFC 8310) with optional
 * mutual TLS, and the client certificate presented to upstreams. Settings
 * of a dotproxy_config, like those of dotproxy/config.h; since 0.3. */
#ifndef DOTPROXY_TLS_H
#define DOTPROXY_TLS_H

#include <stddef.h>

#include "dotproxy/config.h"
#include "dotproxy/export.h"
#include "dotproxy/proxy.h"

#ifdef __cplusplus
extern "C" {
#endif

/* RFC 7858 3.1: DNS over TLS listens on 853 unless told otherwise. */
#define DOTPROXY_DOT_PORT       853
#define DOTPROXY_LISTEN_TLS_MAX 16
/* subjectAltName values accepted with dotproxy_config_add_tls_client_id. */
#define DOTPROXY_TLS_CLIENT_IDS_MAX 64

/* Add an address to serve DNS over TLS on: "ADDR[@PORT]", port 853 unless
 * given; "@0" lets the kernel choose (dotproxy_ctx_listen_tls_port). Needs a
 * certificate and key (below): dotproxy_ctx_new() returns DOTPROXY_EINVAL
 * without them. DOTPROXY_EINVAL, DOTPROXY_EADDR, DOTPROXY_ELIMIT (more than
 * DOTPROXY_LISTEN_TLS_MAX). Changed only by a restart, not by a reload. */
DOTPROXY_EXPORT int dotproxy_config_add_listen_tls(dotproxy_config *cfg, const char *spec);
DOTPROXY_EXPORT int dotproxy_config_clear_listen_tls(dotproxy_config *cfg);
DOTPROXY_EXPORT size_t dotproxy_config_listen_tls_count(const dotproxy_config *cfg);
DOTPROXY_EXPORT int dotproxy_config_get_listen_tls(const dotproxy_config *cfg, size_t index,
                                                   dotproxy_endpoint *out);

/* The listener's certificate chain (PEM, leaf first) and its private key
 * (PEM), read by dotproxy_ctx_new(), by every reload and whenever a file
 * in their directories changes. NULL unsets. The strings are copied. */
DOTPROXY_EXPORT int dotproxy_config_set_tls_cert(dotproxy_config *cfg, const char *path);
DOTPROXY_EXPORT const char *dotproxy_config_get_tls_cert(const dotproxy_config *cfg);
DOTPROXY_EXPORT int dotproxy_config_set_tls_key(dotproxy_config *cfg, const char *path);
DOTPROXY_EXPORT const char *dotproxy_config_get_tls_key(const dotproxy_config *cfg);

/* Mutual TLS: with a CA file (PEM) set, a TLS client must present a
 * certificate chaining to one of its anchors, or the handshake is refused. */
DOTPROXY_EXPORT int dotproxy_config_set_tls_client_ca(dotproxy_config *cfg, const char *path);
DOTPROXY_EXPORT const char *dotproxy_config_get_tls_client_ca(const dotproxy_config *cfg);

/* With a client CA, accept only certificates one of whose subjectAltName
 * entries (DNS name, URI such as spiffe://cluster.local/ns/web/sa/app, or IP
 * address) equals one of these IDs (DNS names compared without regard to
 * case, IP addresses as addresses). Without any, every certificate the CA
 * vouches for is accepted. DOTPROXY_EINVAL (empty, longer than 1024),
 * DOTPROXY_ELIMIT, DOTPROXY_ENOMEM. */
DOTPROXY_EXPORT int dotproxy_config_add_tls_client_id(dotproxy_config *cfg, const char *id);
DOTPROXY_EXPORT int dotproxy_config_clear_tls_client_id(dotproxy_config *cfg);
DOTPROXY_EXPORT size_t dotproxy_config_tls_client_id_count(const dotproxy_config *cfg);
DOTPROXY_EXPORT const char *dotproxy_config_get_tls_client_id(const dotproxy_config *cfg,
                                                              size_t index);

/* A TLS client with no query in flight for this long is closed; it is also
 * the timeout the edns-tcp-keepalive option announces (RFC 7828). Default
 * 10000 ms; DOTPROXY_IDLE_TIMEOUT_MS_MIN..MAX. */
DOTPROXY_EXPORT int dotproxy_config_set_tls_idle_timeout_ms(dotproxy_config *cfg, unsigned ms);
DOTPROXY_EXPORT unsigned dotproxy_config_get_tls_idle_timeout_ms(const dotproxy_config *cfg);

/* A client certificate (PEM chain) and key presented to the upstreams, for
 * private resolvers that require mutual TLS. Both or neither. */
DOTPROXY_EXPORT int dotproxy_config_set_upstream_cert(dotproxy_config *cfg, const char *path);
DOTPROXY_EXPORT const char *dotproxy_config_get_upstream_cert(const dotproxy_config *cfg);
DOTPROXY_EXPORT int dotproxy_config_set_upstream_key(dotproxy_config *cfg, const char *path);
DOTPROXY_EXPORT const char *dotproxy_config_get_upstream_key(const dotproxy_config *cfg);

/* The port the index-th TLS listen address is bound to (useful with port
 * 0), or DOTPROXY_EINVAL. */
DOTPROXY_EXPORT int dotproxy_ctx_listen_tls_port(const dotproxy_ctx *ctx, size_t index);

#ifdef __cplusplus
}
#endif

#endif
