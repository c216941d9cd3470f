/* SPDX-License-Identifier: MIT */
/* libdotproxy: upstream specs and the proxy configuration.
 *
 * A dotproxy_config is a plain description, built before a context exists and
 * copied by dotproxy_ctx_new(), so one config may seed many contexts (one per
 * worker thread) and may be freed right after. A config object is not
 * thread-safe; distinct configs may be used in parallel. */
#ifndef DOTPROXY_CONFIG_H
#define DOTPROXY_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "dotproxy/export.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DOTPROXY_DOT_PORT 853
#define DOTPROXY_DNS_PORT 53

/* A parsed ADDR[@PORT][#NAME] spec. A value type. */
typedef struct dotproxy_endpoint {
    struct sockaddr_storage addr; /* AF_INET or AF_INET6, port set */
    socklen_t addrlen;
    char name[256]; /* TLS authentication name; "" when the spec had none */
} dotproxy_endpoint;

/* Parse "ADDR[@PORT][#NAME]": ADDR an IPv4 literal or an IPv6 literal (bare,
 * or in brackets: "[::1]@853"), PORT 1..65535 (default_port when absent),
 * NAME a host name (letters, digits, '-', '.', labels of 1..63 octets, 253
 * octets at most). NAME is accepted only when allow_name is nonzero (listen
 * addresses have none). On success writes *out and returns 0; otherwise
 * returns DOTPROXY_EADDR, DOTPROXY_EPORT or DOTPROXY_ENAME naming the part
 * that is wrong (DOTPROXY_EINVAL for NULL or empty input). */
DOTPROXY_EXPORT int dotproxy_endpoint_parse(dotproxy_endpoint *out, const char *spec,
                                            uint16_t default_port, int allow_name);

/* Format ep as "ADDR@PORT[#NAME]" into buf (NUL-terminated). Returns the
 * length written, or DOTPROXY_ENOSPC. 128 octets always suffice without a
 * name, 384 with one. */
DOTPROXY_EXPORT int dotproxy_endpoint_format(const dotproxy_endpoint *ep, char *buf, size_t cap);

typedef struct dotproxy_config dotproxy_config;

/* Log levels, most severe first. */
enum dotproxy_log_level {
    DOTPROXY_LOG_ERR = 0,
    DOTPROXY_LOG_WARN = 1,
    DOTPROXY_LOG_INFO = 2,
    DOTPROXY_LOG_DEBUG = 3,
};

/* Receives the library's log lines (no trailing newline). Called from the
 * thread that drives the context; must not call back into that context. */
typedef void (*dotproxy_log_fn)(int level, const char *msg, void *user);

/* New configuration with the defaults documented at each setter, no listen
 * address and no upstream. 0, DOTPROXY_EINVAL or DOTPROXY_ENOMEM. */
DOTPROXY_EXPORT int dotproxy_config_new(dotproxy_config **out);
/* NULL-safe. */
DOTPROXY_EXPORT void dotproxy_config_free(dotproxy_config *cfg);

/* A new configuration equal to src (*out, owned by the caller): strings are
 * duplicated, callbacks and their user pointers copied as they are, and the
 * shared cache, if any, gets a reference of the copy's own. Changing either
 * config afterwards leaves the other as it was. 0, DOTPROXY_EINVAL or
 * DOTPROXY_ENOMEM (*out untouched). Since 0.2. */
DOTPROXY_EXPORT int dotproxy_config_dup(dotproxy_config **out, const dotproxy_config *src);

/* ---- setters, getters and bounds ----
 *
 * Each dotproxy_config_set_X below is followed by dotproxy_config_get_X
 * (since 0.2), which returns what the setter stored or, on a config no
 * setter touched, the default stated at the setter; 0 (NULL for a string)
 * when cfg is NULL. A string is borrowed: valid until that setting changes or
 * the config is freed. The DOTPROXY_X_MIN/_MAX macros beside a setter are the
 * range it accepts (an absent _MIN is 0); outside it, it returns
 * DOTPROXY_EINVAL and leaves the setting as it was. The adders'
 * DOTPROXY_X_MAX is how many values they take before DOTPROXY_ELIMIT. */

/* Add a listen address "ADDR[@PORT]" (port 53 by default; "@0" at the end
 * asks the kernel for a free port, see dotproxy_ctx_listen_port(); the
 * general spec grammar of dotproxy_endpoint_parse has no port 0). UDP and TCP are both
 * served on it. Errors as dotproxy_endpoint_parse, plus DOTPROXY_ELIMIT past
 * 16 addresses. */
DOTPROXY_EXPORT int dotproxy_config_add_listen(dotproxy_config *cfg, const char *spec);
#define DOTPROXY_LISTEN_MAX 16

/* Remove every listen address (to add others, e.g. with the ports the kernel
 * chose for a first context). 0 or DOTPROXY_EINVAL. Since 0.2. */
DOTPROXY_EXPORT int dotproxy_config_clear_listen(dotproxy_config *cfg);

/* The listen address added index-th (0-based), port 0 when it was "@0".
 * 0, or DOTPROXY_EINVAL (no such address; *out untouched). Since 0.2. */
DOTPROXY_EXPORT int dotproxy_config_get_listen(const dotproxy_config *cfg, size_t index,
                                               dotproxy_endpoint *out);

/* Add an upstream "ADDR[@PORT][#NAME]" (port 853 by default). Without NAME,
 * the certificate must carry ADDR as an IP address SAN. Errors as
 * dotproxy_endpoint_parse, plus DOTPROXY_ELIMIT past 16 upstreams. */
DOTPROXY_EXPORT int dotproxy_config_add_upstream(dotproxy_config *cfg, const char *spec);
/* The same from a parsed endpoint. */
DOTPROXY_EXPORT int dotproxy_config_add_upstream_endpoint(dotproxy_config *cfg,
                                                          const dotproxy_endpoint *ep);
#define DOTPROXY_UPSTREAMS_MAX 16

/* The upstream added index-th (0-based). 0, or DOTPROXY_EINVAL (no such
 * upstream; *out untouched). Since 0.2. */
DOTPROXY_EXPORT int dotproxy_config_get_upstream(const dotproxy_config *cfg, size_t index,
                                                 dotproxy_endpoint *out);
/* Pin the upstream added index-th (0-based) to a public key, in addition to
 * the certificate chain and name checks (RFC 7858 4.2): `pin` is
 * "sha256/BASE64" (or just the base64), the SHA-256 of a DER
 * SubjectPublicKeyInfo, as `openssl ... | openssl dgst -sha256 -binary |
 * base64` prints it. With one or more pins, a connection is used only if a
 * certificate of the chain the upstream presented has one of the pinned keys;
 * this is checked after every handshake, resumed ones included. Up to 8 pins
 * per upstream. Errors: DOTPROXY_EINVAL (no such upstream, or not base64 of
 * 32 octets), DOTPROXY_ELIMIT. */
DOTPROXY_EXPORT int dotproxy_config_add_pin(dotproxy_config *cfg, size_t index, const char *pin);
#define DOTPROXY_PINS_MAX 8

/* Number of pins of the upstream added index-th (0 for no such upstream).
 * Since 0.2. */
DOTPROXY_EXPORT size_t dotproxy_config_pin_count(const dotproxy_config *cfg, size_t index);

/* Number of upstreams / listen addresses configured so far. */
DOTPROXY_EXPORT size_t dotproxy_config_upstream_count(const dotproxy_config *cfg);
DOTPROXY_EXPORT size_t dotproxy_config_listen_count(const dotproxy_config *cfg);

/* PEM file of trust anchors used instead of the system store. NULL restores
 * the system store. The file is read by dotproxy_ctx_new(). 0 or
 * DOTPROXY_EINVAL / DOTPROXY_ENOMEM. */
DOTPROXY_EXPORT int dotproxy_config_set_ca_file(dotproxy_config *cfg, const char *path);
/* NULL: the system store. */
DOTPROXY_EXPORT const char *dotproxy_config_get_ca_file(const dotproxy_config *cfg);

/* Per-query deadline from arrival to answer; when it passes the client gets
 * SERVFAIL. Default 4000 ms; 1..600000, else DOTPROXY_EINVAL. */
DOTPROXY_EXPORT int dotproxy_config_set_timeout_ms(dotproxy_config *cfg, unsigned ms);
DOTPROXY_EXPORT unsigned dotproxy_config_get_timeout_ms(const dotproxy_config *cfg);
#define DOTPROXY_TIMEOUT_MS_MIN 1u
#define DOTPROXY_TIMEOUT_MS_MAX 600000u

/* An upstream connection with nothing in flight for this long is closed.
 * Default 8000 ms (public resolvers close idle DoT after about 10 s);
 * 1..3600000, else DOTPROXY_EINVAL. */
DOTPROXY_EXPORT int dotproxy_config_set_idle_timeout_ms(dotproxy_config *cfg, unsigned ms);
DOTPROXY_EXPORT unsigned dotproxy_config_get_idle_timeout_ms(const dotproxy_config *cfg);
/* The range of both idle timeouts (this and the TCP clients' one). */
#define DOTPROXY_IDLE_TIMEOUT_MS_MIN 1u
#define DOTPROXY_IDLE_TIMEOUT_MS_MAX 3600000u

/* Answer-cache entries; 0 (the default) turns the cache off. At most
 * DOTPROXY_CACHE_SIZE_MAX, else DOTPROXY_EINVAL (before 0.2 a larger size was
 * taken here and refused by dotproxy_ctx_new()). */
DOTPROXY_EXPORT int dotproxy_config_set_cache_size(dotproxy_config *cfg, size_t entries);
DOTPROXY_EXPORT size_t dotproxy_config_get_cache_size(const dotproxy_config *cfg);
#define DOTPROXY_CACHE_SIZE_MAX 268435456u /* 2^28 */

/* Most TLS connections opened to one upstream (default 2, 1..64): a second one
 * is opened only when the first has max_inflight queries outstanding. */
DOTPROXY_EXPORT int dotproxy_config_set_max_connections(dotproxy_config *cfg, unsigned n);
DOTPROXY_EXPORT unsigned dotproxy_config_get_max_connections(const dotproxy_config *cfg);
#define DOTPROXY_MAX_CONNECTIONS_MIN 1u
#define DOTPROXY_MAX_CONNECTIONS_MAX 64u

/* Most queries in flight on one upstream connection, a power of two
 * (default 1024, 1..32768). */
DOTPROXY_EXPORT int dotproxy_config_set_max_inflight(dotproxy_config *cfg, unsigned n);
DOTPROXY_EXPORT unsigned dotproxy_config_get_max_inflight(const dotproxy_config *cfg);
#define DOTPROXY_MAX_INFLIGHT_MIN 1u
#define DOTPROXY_MAX_INFLIGHT_MAX 32768u

/* Most queries waiting for an answer in one context (default 8192,
 * 16..1048576): past it new queries get SERVFAIL at once. */
DOTPROXY_EXPORT int dotproxy_config_set_max_queries(dotproxy_config *cfg, unsigned n);
DOTPROXY_EXPORT unsigned dotproxy_config_get_max_queries(const dotproxy_config *cfg);
#define DOTPROXY_MAX_QUERIES_MIN 16u
#define DOTPROXY_MAX_QUERIES_MAX 1048576u

/* Most concurrent TCP clients per context (default 1024, 1..1048576). When
 * full, the client idle the longest is closed to admit the new one. */
DOTPROXY_EXPORT int dotproxy_config_set_max_tcp_clients(dotproxy_config *cfg, unsigned n);
DOTPROXY_EXPORT unsigned dotproxy_config_get_max_tcp_clients(const dotproxy_config *cfg);
#define DOTPROXY_MAX_TCP_CLIENTS_MIN 1u
#define DOTPROXY_MAX_TCP_CLIENTS_MAX 1048576u

/* A TCP client with no query in flight for this long is closed
 * (default 10000 ms, RFC 7766 6.2.3; DOTPROXY_IDLE_TIMEOUT_MS_MIN..MAX). */
DOTPROXY_EXPORT int dotproxy_config_set_tcp_idle_timeout_ms(dotproxy_config *cfg, unsigned ms);
DOTPROXY_EXPORT unsigned dotproxy_config_get_tcp_idle_timeout_ms(const dotproxy_config *cfg);

/* How a query's upstream is chosen among those not backing off. */
enum dotproxy_select {
    DOTPROXY_SELECT_LATENCY = 0,     /* lowest smoothed RTT; 1 query in 32 explores (default) */
    DOTPROXY_SELECT_ROUND_ROBIN = 1, /* each in turn */
    DOTPROXY_SELECT_ORDERED = 2,     /* the first healthy one in configuration order (failover) */
};
DOTPROXY_EXPORT int dotproxy_config_set_selection(dotproxy_config *cfg, int policy);
DOTPROXY_EXPORT int dotproxy_config_get_selection(const dotproxy_config *cfg);

/* Most time a TCP connect plus TLS handshake may take before the attempt
 * counts as a failure of that upstream. Default 5000 ms (or the query
 * timeout, if shorter); 1..60000. The getter returns the value set (or 5000),
 * not the shorter query timeout. */
DOTPROXY_EXPORT int dotproxy_config_set_handshake_timeout_ms(dotproxy_config *cfg, unsigned ms);
DOTPROXY_EXPORT unsigned dotproxy_config_get_handshake_timeout_ms(const dotproxy_config *cfg);
#define DOTPROXY_HANDSHAKE_TIMEOUT_MS_MIN 1u
#define DOTPROXY_HANDSHAKE_TIMEOUT_MS_MAX 60000u

/* GnuTLS priority string for upstream connections. Default
 * DOTPROXY_TLS_PRIORITY_DEFAULT. Checked by dotproxy_ctx_new(). */
#define DOTPROXY_TLS_PRIORITY_DEFAULT                                                              \
    "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-CIPHER-ALL:+AES-128-GCM:+AES-256-GCM:"            \
    "+CHACHA20-POLY1305:-MAC-ALL:+AEAD:-KX-ALL:+ECDHE-RSA:+ECDHE-ECDSA:-GROUP-ALL:"                \
    "+GROUP-X25519:+GROUP-SECP256R1:+GROUP-SECP384R1"
DOTPROXY_EXPORT int dotproxy_config_set_tls_priority(dotproxy_config *cfg, const char *prio);
/* Check a priority string as dotproxy_ctx_new() will, without a context
 * (e.g. while reading a configuration file, to name its line): 0, or
 * DOTPROXY_ETLS with GnuTLS's reason and the position it stopped at in
 * why[0..cap) ("rejected at '+FOO': The request is invalid."), or
 * DOTPROXY_EINVAL (NULL or empty). Thread-safe. */
DOTPROXY_EXPORT int dotproxy_config_check_tls_priority(const char *prio, char *why, size_t cap);
/* The string in effect: DOTPROXY_TLS_PRIORITY_DEFAULT until one is set. */
DOTPROXY_EXPORT const char *dotproxy_config_get_tls_priority(const dotproxy_config *cfg);

/* Set SO_REUSEPORT on listening sockets so that several contexts (one per
 * worker thread) can bind the same address. Default off. */
DOTPROXY_EXPORT int dotproxy_config_set_reuseport(dotproxy_config *cfg, int on);
/* 1 or 0. */
DOTPROXY_EXPORT int dotproxy_config_get_reuseport(const dotproxy_config *cfg);

/* ---- access control and limits (see README "Limits") ---- */

/* Allow queries from the addresses in CIDR ("10.0.0.0/8", "2001:db8::/32", or
 * a bare address). Repeatable. While none is added, the default list applies:
 * loopback, RFC 1918, RFC 6598 shared space, link-local, fc00::/7, fe80::/10,
 * so that a default deployment is not an open resolver. Others get REFUSED.
 * Errors: DOTPROXY_EADDR (bad address or prefix length), DOTPROXY_ELIMIT past
 * 256 entries. "0.0.0.0/0" allows every IPv4 client and "::/0" every IPv6
 * one; an IPv4 client on a dual-stack socket (::ffff:a.b.c.d) counts as IPv4,
 * so allowing everyone takes both. */
DOTPROXY_EXPORT int dotproxy_config_add_allow(dotproxy_config *cfg, const char *cidr);
#define DOTPROXY_ALLOW_MAX 256

/* Number of networks added (0: the default list applies). Since 0.2. */
DOTPROXY_EXPORT size_t dotproxy_config_allow_count(const dotproxy_config *cfg);

/* What a client over its rate limit gets. */
enum dotproxy_limit_action {
    DOTPROXY_LIMIT_REFUSE = 0, /* answer REFUSED (default) */
    DOTPROXY_LIMIT_DROP = 1,   /* send nothing */
};

/* Per-client rate limit: a token bucket of `burst` queries refilled at `qps`
 * per second, per address or, with prefix lengths below 32/128, per prefix
 * (e.g. 24 and 56). qps 0 (the default) turns it off; burst 0 means qps.
 * Loopback clients are never limited unless limit_loopback is set. Errors:
 * DOTPROXY_EINVAL (qps or a prefix length outside the ranges below, or an
 * unknown action). Defaults: prefixes 32 and 128, DOTPROXY_LIMIT_REFUSE. */
DOTPROXY_EXPORT int dotproxy_config_set_rate_limit(dotproxy_config *cfg, unsigned qps,
                                                   unsigned burst, unsigned v4_prefix,
                                                   unsigned v6_prefix, int action,
                                                   int limit_loopback);
#define DOTPROXY_RATE_LIMIT_QPS_MAX       10000000u
#define DOTPROXY_RATE_LIMIT_V4_PREFIX_MIN 8u
#define DOTPROXY_RATE_LIMIT_V4_PREFIX_MAX 32u
#define DOTPROXY_RATE_LIMIT_V6_PREFIX_MIN 16u
#define DOTPROXY_RATE_LIMIT_V6_PREFIX_MAX 128u
/* Writes each non-NULL out-pointer (the burst in effect: qps when set as 0).
 * 0 or DOTPROXY_EINVAL (cfg NULL; nothing written). */
DOTPROXY_EXPORT int dotproxy_config_get_rate_limit(const dotproxy_config *cfg, unsigned *qps,
                                                   unsigned *burst, unsigned *v4_prefix,
                                                   unsigned *v6_prefix, int *action,
                                                   int *limit_loopback);

/* Most queries one client address may have waiting at once (default 4096,
 * half of the default max_queries; 0: no cap beyond the context's). It
 * bounds concurrency, not rate: at 50 ms per upstream answer 4096 in flight
 * is about 80,000 queries a second from one address. Past it a UDP query is
 * dropped (the client will retry); a TCP connection may pipeline at most
 * min(256, this) queries before it is not read until answers go out. */
DOTPROXY_EXPORT int dotproxy_config_set_max_client_queries(dotproxy_config *cfg, unsigned n);
DOTPROXY_EXPORT unsigned dotproxy_config_get_max_client_queries(const dotproxy_config *cfg);
#define DOTPROXY_MAX_CLIENT_QUERIES_MAX 1048576u

/* ---- answer cache (RFC 2308, RFC 8767) ---- */

/* Clamp cached TTLs to [min_s, max_s] (defaults 0 and 86400). Errors:
 * DOTPROXY_EINVAL when min_s > max_s or max_s > DOTPROXY_CACHE_TTL_MAX. */
DOTPROXY_EXPORT int dotproxy_config_set_cache_ttl(dotproxy_config *cfg, unsigned min_s,
                                                  unsigned max_s);
/* The most any TTL bound (and the stale limit below) may be: a week. */
#define DOTPROXY_CACHE_TTL_MAX 604800u
/* Writes each non-NULL out-pointer. 0 or DOTPROXY_EINVAL (cfg NULL). */
DOTPROXY_EXPORT int dotproxy_config_get_cache_ttl(const dotproxy_config *cfg, unsigned *min_s,
                                                  unsigned *max_s);

/* A cache several contexts share (e.g. one per worker thread), split into
 * shards behind their own locks; sized and configured from cfg's cache
 * settings at creation (cache size must be > 0). Worth it with several
 * workers: the same memory answers more queries (docs/cache-design.md).
 * dotproxy_cache_free drops the caller's reference; configs and contexts
 * that use it hold their own. Returns 0, DOTPROXY_EINVAL or DOTPROXY_ENOMEM. */
typedef struct dotproxy_cache dotproxy_cache;
DOTPROXY_EXPORT int dotproxy_cache_new(dotproxy_cache **out, const dotproxy_config *cfg);
DOTPROXY_EXPORT void dotproxy_cache_free(dotproxy_cache *cache);

/* Contexts made from cfg use `cache` instead of a cache of their own (NULL:
 * back to their own). Safe to call with a cache other threads' contexts are
 * using. Returns 0 or DOTPROXY_EINVAL. */
DOTPROXY_EXPORT int dotproxy_config_set_shared_cache(dotproxy_config *cfg, dotproxy_cache *cache);

/* Serve an expired answer (TTL 30) for up to this long after it expired when
 * no upstream answers in time (RFC 8767). Default 86400 s; 0 turns it off;
 * at most DOTPROXY_CACHE_TTL_MAX, else DOTPROXY_EINVAL. */
DOTPROXY_EXPORT int dotproxy_config_set_stale_max_s(dotproxy_config *cfg, unsigned s);
DOTPROXY_EXPORT unsigned dotproxy_config_get_stale_max_s(const dotproxy_config *cfg);

/* The largest answer sent to a client over UDP, and the payload size our OPT
 * advertises to clients: an answer above min(this, the client's own
 * advertised size) goes out truncated (TC=1), so the client retries over
 * TCP instead of receiving IP fragments (DNS flag day 2020, RFC 9715).
 * Default 1232; 512..4096, else DOTPROXY_EINVAL. */
DOTPROXY_EXPORT int dotproxy_config_set_udp_size(dotproxy_config *cfg, unsigned octets);
DOTPROXY_EXPORT unsigned dotproxy_config_get_udp_size(const dotproxy_config *cfg);
#define DOTPROXY_UDP_SIZE_MIN 512u
#define DOTPROXY_UDP_SIZE_MAX 4096u

/* ---- EDNS on the TLS leg (RFC 7830, RFC 8467, RFC 7871) ---- */

/* Pad queries sent upstream to a multiple of `block` octets (default 128,
 * RFC 8467 4.1; 0 turns padding off; at most 512, else DOTPROXY_EINVAL). */
DOTPROXY_EXPORT int dotproxy_config_set_padding(dotproxy_config *cfg, unsigned block);
DOTPROXY_EXPORT unsigned dotproxy_config_get_padding(const dotproxy_config *cfg);
#define DOTPROXY_PADDING_MAX 512u

/* Keep the EDNS Client Subnet option clients send (default 0: stripped). */
DOTPROXY_EXPORT int dotproxy_config_set_keep_ecs(dotproxy_config *cfg, int on);
/* 1 or 0. */
DOTPROXY_EXPORT int dotproxy_config_get_keep_ecs(const dotproxy_config *cfg);

/* One answered query, for query logging (privacy: off unless set). A value
 * type; pointers are borrowed for the duration of the callback. It grows:
 * later versions only append fields (tests/abi/layouts.txt holds the
 * released layout), and the library always hands a whole struct of its own
 * size, so a callback built against an older header reads its prefix; one
 * built against a newer header checks dotproxy_struct_size() (proxy.h)
 * before reading a field the running library may not have. */
typedef struct dotproxy_query_log {
    const struct sockaddr *client; /* NULL for dotproxy_ctx_query() */
    socklen_t client_len;
    const char *transport; /* "udp", "tcp" or "api" */
    const char *qname;     /* presentation form, lower case, ending in '.' */
    uint16_t qtype;
    int rcode;            /* of the answer sent */
    int from_cache;       /* 1 for a cache hit (or a stale answer) */
    uint64_t latency_us;  /* arrival to answer */
    const char *upstream; /* "ADDR@PORT#NAME" that answered, or NULL */
    /* The block list and the rule in it that decided the answer, or NULL:
     * reserved for blocking, which this version does not do (always NULL). */
    const char *list;
    const char *rule;
} dotproxy_query_log;

/* Called once for every answer sent to a client (upstream answers, cache
 * hits, SERVFAILs we make), on the thread driving the context; must not call
 * back into it. Rate bounding is the callback's job. NULL turns it off (the
 * default). Returns 0 or DOTPROXY_EINVAL. */
typedef void (*dotproxy_query_log_fn)(const dotproxy_query_log *entry, void *user);
DOTPROXY_EXPORT int dotproxy_config_set_query_log(dotproxy_config *cfg, dotproxy_query_log_fn fn,
                                                  void *user);

/* ---- anomaly detection and dynamic blocks (docs/anomaly.md) ---- */

/* Add a detection rule, "METRIC>THRESHOLD[,window=S][,for=S][,action=A]
 * [,mask=BITS]": METRIC is qps, nxdomain, servfail, bytes (UDP answer
 * octets), qtype:TYPE (per second, per client prefix), subdomains (distinct
 * names missing the cache per second, per registrable domain) or tunnel (a
 * score in (0, 1) per client and domain); window 1..3600 s (default 10;
 * tunnel 30), for 0..86400 s (how long a block outlives the crossing,
 * default 60), action DOTPROXY_DYNBLOCK_LOG/REFUSE/DROP/TRUNCATE by name
 * (default log), mask a prefix length (default /32, /64). With no
 * subdomains or tunnel rule, those detectors run with their defaults in log
 * mode. Returns 0, DOTPROXY_EINVAL (bad rule) or DOTPROXY_ELIMIT. */
DOTPROXY_EXPORT int dotproxy_config_add_dynblock(dotproxy_config *cfg, const char *rule);
DOTPROXY_EXPORT size_t dotproxy_config_dynblock_count(const dotproxy_config *cfg);
/* Rule i as given, or NULL past the end. Valid until cfg changes. */
DOTPROXY_EXPORT const char *dotproxy_config_get_dynblock(const dotproxy_config *cfg, size_t i);
/* A network never blocked ("ADDR" or "ADDR/PREFIX"). 0, DOTPROXY_EADDR,
 * DOTPROXY_EINVAL or DOTPROXY_ELIMIT. */
DOTPROXY_EXPORT int dotproxy_config_add_dynblock_exempt(dotproxy_config *cfg, const char *cidr);
DOTPROXY_EXPORT size_t dotproxy_config_dynblock_exempt_count(const dotproxy_config *cfg);
/* Exemption i as given, or NULL past the end. */
DOTPROXY_EXPORT const char *dotproxy_config_get_dynblock_exempt(const dotproxy_config *cfg,
                                                                size_t i);
#define DOTPROXY_DYNBLOCK_RULES_MAX          16
#define DOTPROXY_DYNBLOCK_EXEMPT_MAX         64
#define DOTPROXY_DYNBLOCK_WINDOW_MIN         1u
#define DOTPROXY_DYNBLOCK_WINDOW_MAX         3600u
#define DOTPROXY_DYNBLOCK_WINDOW_DEFAULT     10u
#define DOTPROXY_DYNBLOCK_TUNNEL_WINDOW      30u
#define DOTPROXY_DYNBLOCK_FOR_MAX            86400u
#define DOTPROXY_DYNBLOCK_FOR_DEFAULT        60u
#define DOTPROXY_DYNBLOCK_SUBDOMAINS_DEFAULT 50u
#define DOTPROXY_DYNBLOCK_TUNNEL_DEFAULT     0.6

enum {
    DOTPROXY_DYNBLOCK_LOG = 0,      /* report only */
    DOTPROXY_DYNBLOCK_REFUSE = 1,   /* answer REFUSED */
    DOTPROXY_DYNBLOCK_DROP = 2,     /* send nothing */
    DOTPROXY_DYNBLOCK_TRUNCATE = 3, /* UDP: empty answer with TC=1 (TCP served) */
};

/* One detector state several contexts share (one per worker thread): rates,
 * scores and blocks are then the same as with one context. Built from cfg's
 * rules and exemptions (copied). dotproxy_dynblock_free drops the caller's
 * reference; configs and contexts that use it hold their own. Returns 0,
 * DOTPROXY_EINVAL or DOTPROXY_ENOMEM. A context made from a config without
 * one builds its own. */
typedef struct dotproxy_dynblock dotproxy_dynblock;
DOTPROXY_EXPORT int dotproxy_dynblock_new(dotproxy_dynblock **out, const dotproxy_config *cfg);
DOTPROXY_EXPORT void dotproxy_dynblock_free(dotproxy_dynblock *db);
/* Contexts made from cfg use db (NULL: their own). 0 or DOTPROXY_EINVAL. */
DOTPROXY_EXPORT int dotproxy_config_set_shared_dynblock(dotproxy_config *cfg,
                                                        dotproxy_dynblock *db);

/* Where log lines go, and the most verbose level passed on (default: no
 * callback, nothing logged; level DOTPROXY_LOG_INFO). */
DOTPROXY_EXPORT int dotproxy_config_set_log(dotproxy_config *cfg, dotproxy_log_fn fn, void *user,
                                            int max_level);
/* The level set (DOTPROXY_LOG_INFO by default). The callbacks given to the
 * setters of this file and the shared cache have no getters: the caller
 * handed them in and knows them. */
DOTPROXY_EXPORT int dotproxy_config_get_log_level(const dotproxy_config *cfg);

#ifdef __cplusplus
}
#endif
#endif
