/* SPDX-License-Identifier: MIT */
/* EDNS hop-by-hop rewriting (RFC 6891 6.1.1: the OPT RR belongs to one hop and
 * is never relayed as is). Pure message transforms over caller buffers: no
 * allocation, no state, reentrant; called once per query and once per answer
 * on the hot path. Not exported from the shared object.
 *
 * Which options cross the proxy:
 *
 *   code  name                 client -> upstream          upstream -> client
 *   3     NSID                 copied                      copied
 *   8     client subnet        dropped unless keep_ecs     dropped unless keep_ecs
 *   10    cookie               dropped (per hop, 7873)     dropped
 *   11    edns-tcp-keepalive   dropped; ours if asked      read into *keepalive_100ms, dropped
 *   12    padding              dropped; ours last          dropped (clients are plain)
 *   15    extended DNS error   copied                      copied
 *   other                      copied                      dropped
 *
 * Unknown options in queries are copied: most defined ones (NSID, DAU/DHU/N3U,
 * key tag, chain) ask something of the resolver and only work if they reach
 * it, while the hop-by-hop ones are known and listed above. In answers only
 * the options known to be meaningful end to end are copied: an unknown answer
 * option may describe the proxy-upstream hop (as padding and keepalive do),
 * and a client that sent an option it needs answered still learns from the
 * rcode. */
#ifndef DP_EDNS_H
#define DP_EDNS_H

#include <stddef.h>
#include <stdint.h>

#include "dotproxy/dns.h"

#define DP_EDNS_OPT_CODE_NSID      3u  /* RFC 5001 */
#define DP_EDNS_OPT_CODE_ECS       8u  /* RFC 7871 */
#define DP_EDNS_OPT_CODE_COOKIE    10u /* RFC 7873 */
#define DP_EDNS_OPT_CODE_KEEPALIVE 11u /* RFC 7828 */
#define DP_EDNS_OPT_CODE_PADDING   12u /* RFC 7830 */
#define DP_EDNS_OPT_CODE_EDE       15u /* RFC 8914 */

#define DP_EDNS_UDP_SIZE        1232u /* what we advertise on either hop */
#define DP_EDNS_QUERY_PAD_BLOCK 128u  /* RFC 8467 4.1 */
#define DP_EDNS_OPT_FIXED       11u   /* root owner, TYPE, CLASS, TTL, RDLENGTH */

/* What the client's query said, remembered for its answer. */
struct dp_edns_client {
    uint8_t had_opt;   /* the query carried an OPT RR */
    uint8_t do_bit;    /* DO set (RFC 3225) */
    uint8_t ad_bit;    /* AD set in the header (RFC 6840 5.7) */
    uint8_t cd_bit;    /* CD set in the header */
    uint16_t udp_size; /* advertised payload size (raw), 0 without OPT */
};

/* Fill *c from a query that dotproxy_dns_parse accepted. */
void dp_edns_client_from_query(struct dp_edns_client *c, const dotproxy_dns_info *q);

struct dp_edns_upstream_opts {
    uint16_t udp_size;      /* what we advertise upstream (DP_EDNS_UDP_SIZE) */
    uint16_t pad_block;     /* 0 = no padding; else pad the message to a multiple of it */
    uint8_t keep_ecs;       /* keep the client's ECS option */
    uint8_t want_keepalive; /* add an empty edns-tcp-keepalive (RFC 7828 3.2.1) */
};

/* Rewrite the client query msg[0..len) in place into the query we send
 * upstream; msg has cap >= len octets of room and info is what
 * dotproxy_dns_parse said about exactly these bytes.
 *
 * The client's OPT (if any) is replaced by ours: udp_size from o, version 0,
 * extended rcode 0, DO copied from the client, the other flag bits (Z) clear.
 * Options are filtered as in the table above, then an empty keepalive when
 * o->want_keepalive, then (last, as its length depends on everything before
 * it) padding that makes the whole message a multiple of o->pad_block octets
 * (RFC 7830, RFC 8467 4.1). A client's own padding is dropped first, so a
 * message is never padded twice. A query without OPT gets ours (DO clear).
 * The OPT ends up as the last RR of the additional section (moved there if
 * the client put it elsewhere). The header's AD bit is set: RFC 6840 5.7
 * lets a query ask for AD without DO, so every upstream answer says whether
 * it was validated, and an answer cached for one client serves another per
 * that client's own DO/AD (dp_edns_answer_for_client gates AD). TC, which
 * means nothing in a query (RFC 1035 4.1.1), is cleared: some upstreams
 * answer it FORMERR, and a cached name would be answered normally, so the
 * same query would get two answers. The rest of the header and the other
 * records are untouched. A
 * client's EDNS version above 0 is rewritten to 0: answering BADVERS (RFC
 * 6891 6.1.3) instead is the caller's choice, made before calling this.
 *
 * Room needed: len - old OPT + 11 + kept options + 4 (keepalive) + 4 + pad
 * (padding, pad < pad_block); len + 18 + pad_block always suffices.
 * Returns the new length, DOTPROXY_ENOSPC (more than cap or 65535 octets
 * needed), DOTPROXY_EMALFORMED (info does not match msg, bad option
 * lengths) or DOTPROXY_EINVAL (cap < len). On error msg is unchanged;
 * nothing is ever written at or past cap. */
int dp_edns_query_for_upstream(uint8_t *msg, size_t len, size_t cap, const dotproxy_dns_info *info,
                               const struct dp_edns_upstream_opts *o);

/* Rewrite the upstream answer msg[0..len) (cap octets of room) in place for
 * the client c described:
 *  - the upstream's OPT is removed; when the client had an OPT, a fresh one
 *    is added last: our_udp_size, version 0, DO = the client's DO, the
 *    upstream's extended rcode (upper 8 bits) kept, options filtered as in the
 *    table above;
 *  - when the client had no OPT the answer has none. If the upstream's
 *    extended rcode was nonzero the real rcode (16 or more, e.g. BADVERS or
 *    BADCOOKIE) cannot be told to such a client, and its low four bits alone
 *    would claim a different rcode (BADVERS 16 would read as NOERROR), so the
 *    header rcode becomes SERVFAIL;
 *  - AD is cleared unless the client set DO or AD (RFC 6840 5.8);
 *  - an edns-tcp-keepalive option with a TIMEOUT (RFC 7828 3.2.2) is stored in
 *    *keepalive_100ms (may be NULL); without one it is left untouched.
 * The answer is validated with dotproxy_dns_parse. Room needed: at most
 * len + 11 (only when the upstream sent no OPT), else at most len.
 * Returns the new length, DOTPROXY_ENOSPC, DOTPROXY_EMALFORMED or
 * DOTPROXY_EINVAL (cap < len); on error msg and *keepalive_100ms are
 * unchanged. */
int dp_edns_answer_for_client(uint8_t *msg, size_t len, size_t cap, const struct dp_edns_client *c,
                              uint16_t our_udp_size, int keep_ecs, uint16_t *keepalive_100ms);

/* The same for a caller that parsed the answer already (the TLS pool does, to
 * match it): info is what dotproxy_dns_parse said about msg[0..len), so the
 * answer is not walked again; only the OPT's options are read. */
int dp_edns_answer_for_client_parsed(uint8_t *msg, size_t len, size_t cap,
                                     const dotproxy_dns_info *info, const struct dp_edns_client *c,
                                     uint16_t our_udp_size, int keep_ecs,
                                     uint16_t *keepalive_100ms);

/* Fix up an answer that carries no OPT (e.g. one served from the cache,
 * which stores answers without OPT; see also dp_edns_add_client_opt_with) for client c: when c had
 * an OPT, append a fresh one (our_udp_size, version 0, DO = the client's, no options, extended
 * rcode 0); AD is cleared unless c set DO or AD, since a cached answer may have been fetched for
 * another client (RFC 6840 5.8). Needs cap >= len + 11 when c had an OPT. Returns the new length,
 * DOTPROXY_ENOSPC, DOTPROXY_EMALFORMED (len < 12, or no room in ARCOUNT) or
 * DOTPROXY_EINVAL (cap < len); on error msg is unchanged. */
int dp_edns_add_client_opt(uint8_t *msg, size_t len, size_t cap, const struct dp_edns_client *c,
                           uint16_t our_udp_size);
/* The same, the OPT carrying the options (e.g. the Extended DNS Errors a
 * cache hit brought, dp_cache_lookup_ede) that lie at msg[len..len+opts_len),
 * right behind the message: they are moved into the OPT. A client without
 * OPT gets none and no options. Needs cap >= len + 11 + opts_len when c had
 * an OPT. No allocation. */
int dp_edns_add_client_opt_with(uint8_t *msg, size_t len, size_t cap,
                                const struct dp_edns_client *c, uint16_t our_udp_size,
                                size_t opts_len);

#endif
