/* SPDX-License-Identifier: MIT */
/* Internal helpers of lib/dns_msg.c shared with other modules (cache keys,
 * answer matching). Not exported from the shared object. */
#ifndef DP_DNS_MSG_H
#define DP_DNS_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "dotproxy/dns.h"

/* Decode the name at msg[off] (compression followed, with the same bounds as
 * dotproxy_dns_parse) into out as uncompressed wire form with ASCII letters
 * lower-cased, e.g. for a cache key. *next, when not NULL, receives the offset
 * just past the name where it sits in msg. Returns the wire length (1..255)
 * or DOTPROXY_EMALFORMED; *next is written only on success, out may hold a
 * partial name after a failure. Never reads outside msg[0..len). */
int dp_dns_msg_name_lower(const uint8_t *msg, size_t len, size_t off,
                          uint8_t out[DOTPROXY_DNS_MAX_NAME], size_t *next);

/* The offset just past the name at msg[off] (to walk the RRs of a message
 * that dotproxy_dns_parse accepted, e.g. to patch TTLs), or
 * DOTPROXY_EMALFORMED. Same bounds as dp_dns_msg_name_lower. */
int dp_dns_msg_skip_name(const uint8_t *msg, size_t len, size_t off);

/* The records in msg[from..len) are about to move back over msg[cut..from)
 * (an OPT RR being moved to the end or removed; no name may point into it),
 * to start at cut. Re-aims, in place, the compression pointers of their
 * names (owners and the RDATA names of the types that carry them) that aim
 * at or behind `from`, so every name reads the same after the move; the
 * caller then moves the octets. 0, or DOTPROXY_EMALFORMED with msg
 * untouched when a pointer aims into the block or a name's chain passes a
 * pointer hidden in opaque RDATA behind it (which could not be re-aimed).
 * msg must be a message dotproxy_dns_parse accepted. */
int dp_dns_msg_rebase_tail(uint8_t *msg, size_t len, size_t cut, size_t from);

#endif
