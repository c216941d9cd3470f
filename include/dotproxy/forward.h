/* SPDX-License-Identifier: MIT */
/* libdotproxy: conditional forwarding (forward zones), since 0.3.
 *
 * A forward zone sends the names at or under it to upstreams of its own
 * instead of the configured ones: a sidecar sends "cluster.local" to the
 * cluster's DNS service and everything else over TLS. The longest zone that
 * contains a query's name wins; names under no zone go to the upstreams
 * added with dotproxy_config_add_upstream(). A zone's upstreams are DNS over
 * TLS like the others, unless one is written "plain:ADDR[@PORT]": that one is
 * asked in plain DNS over TCP (names and answers cross the network
 * unencrypted, which the context logs when it starts). Zones and their
 * upstreams change with dotproxy_ctx_reload() like everything else. Same
 * thread rules as the rest of dotproxy_config. */
#ifndef DOTPROXY_FORWARD_H
#define DOTPROXY_FORWARD_H

#include <stddef.h>

#include "dotproxy/config.h"
#include "dotproxy/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Add an upstream to the forward zone `zone` (created on first use):
 *  - zone: a domain name in presentation form, "cluster.local" or
 *    "cluster.local." (letters, digits, '-' and '_', labels of 1..63
 *    octets, 253 octets in all), case-insensitive; "." is the root (every
 *    name);
 *  - upstream: "ADDR[@PORT][#NAME]" as dotproxy_config_add_upstream() takes
 *    it (DNS over TLS, port 853 by default), optionally followed by SPKI pins
 *    as dotproxy_config_add_pin() takes them, each after a '^':
 *    "192.0.2.1#dns.example^sha256/BASE64"; or "plain:ADDR[@PORT]" (plain
 *    DNS over TCP, port 53 by default, no name, no pins).
 * Adding an upstream the zone already has changes nothing. An upstream named
 * in several zones (same address, name, pins and transport) is one upstream
 * with one health record. Errors: DOTPROXY_EINVAL (NULL, or zone not a
 * domain name, or a pin that is not one), DOTPROXY_EADDR, DOTPROXY_EPORT,
 * DOTPROXY_ENAME (as dotproxy_endpoint_parse, for the upstream),
 * DOTPROXY_ELIMIT (past DOTPROXY_FORWARD_ZONES_MAX zones, past
 * DOTPROXY_FORWARD_UPSTREAMS_MAX distinct upstreams over all zones, or past
 * DOTPROXY_PINS_MAX pins); the configuration is unchanged on error. */
DOTPROXY_EXPORT int dotproxy_config_add_forward(dotproxy_config *cfg, const char *zone,
                                                const char *upstream);
#define DOTPROXY_FORWARD_ZONES_MAX     64
#define DOTPROXY_FORWARD_UPSTREAMS_MAX 16

/* Number of forward zones (0 for NULL). */
DOTPROXY_EXPORT size_t dotproxy_config_forward_zone_count(const dotproxy_config *cfg);

/* The zone added index-th, as "ZONE=UPSTREAM[,UPSTREAM...]" with the zone in
 * lower case without its final dot ("." for the root), each upstream as
 * dotproxy_endpoint_format() writes it (pins as "^sha256/BASE64", plain ones
 * with their "plain:" prefix), in the order added. Writes a NUL-terminated
 * string to buf and returns its length, or DOTPROXY_EINVAL (no such zone),
 * DOTPROXY_ENOSPC (cap too small; 8192 octets always suffice). */
DOTPROXY_EXPORT int dotproxy_config_get_forward_zone(const dotproxy_config *cfg, size_t index,
                                                     char *buf, size_t cap);

#ifdef __cplusplus
}
#endif
#endif
