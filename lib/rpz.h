/* SPDX-License-Identifier: MIT */
/* Response Policy Zones (draft-vixie-dnsop-dns-rpz): a zone in master-file
 * format parsed into a compact, immutable rule set, and the lookups a
 * forwarder needs (QNAME, client address, addresses in an answer) plus the
 * local-data answers. No I/O besides reading the file in dp_rpz_load, no
 * logging, no proxy state: the blocking engine above calls this module.
 *
 * Threads: a loaded struct dp_rpz is never written again, so any number of
 * threads may call the match and answer functions on it at once. The match
 * and answer functions never allocate. */
#ifndef DP_RPZ_H
#define DP_RPZ_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

enum dp_rpz_action {
    DP_RPZ_NXDOMAIN, /* CNAME .              */
    DP_RPZ_NODATA,   /* CNAME *.             */
    DP_RPZ_PASSTHRU, /* CNAME rpz-passthru.  */
    DP_RPZ_DROP,     /* CNAME rpz-drop.      */
    DP_RPZ_TCP_ONLY, /* CNAME rpz-tcp-only.  */
    DP_RPZ_LOCAL,    /* any other data: answer it (dp_rpz_local_answer) */
};

enum dp_rpz_trigger {
    DP_RPZ_QNAME,
    DP_RPZ_CLIENT_IP,
    DP_RPZ_IP,
};

/* One parsed zone. */
struct dp_rpz;

/* What a match found. rule points into the zone (valid while it lives);
 * rule_text is the trigger relative to the zone origin, e.g.
 * "*.evil.example" or "32.1.2.0.192.rpz-client-ip" (names in lower case,
 * IPv6 triggers in canonical form: lower-case hex, "zz" for the longest run
 * of two or more zero groups). */
struct dp_rpz_hit {
    enum dp_rpz_action action;
    enum dp_rpz_trigger trigger;
    const void *rule;
    const struct dp_rpz *layer; /* the part of a layered zone rule lives in */
    char rule_text[256];
};

/* What a load saw. error is the first error ("FILE:LINE: what"), empty when
 * none; skipped counts the records left out by a lenient load; nsdname and
 * nsip count the rpz-nsdname / rpz-nsip records, recognised and ignored (a
 * forwarder sees no delegation, so they can never apply). */
struct dp_rpz_diag {
    char error[512];
    unsigned long skipped;
    int has_nsdname;
    int has_nsip;
};

/* Parse a zone from memory. name_for_errors names it in diag->error.
 * origin (text, may be NULL) is the initial $ORIGIN, for zones whose first
 * line is "@ SOA ..." without a $ORIGIN (as BIND and Unbound read them, with
 * the zone name from their configuration). The zone apex is the owner of
 * the SOA when the first record is one, otherwise the $ORIGIN in force at
 * the first record; every owner must lie at or below it.
 * strict != 0: the first bad record fails the load (DOTPROXY_EMALFORMED, for
 * --check-config); strict == 0: bad records are skipped and counted.
 * Returns 0 (*out set), DOTPROXY_EMALFORMED, DOTPROXY_ENOMEM or
 * DOTPROXY_EINVAL. diag may be NULL and is written in every case. */
int dp_rpz_load_mem_origin(struct dp_rpz **out, const char *name_for_errors, const char *text,
                           size_t len, const char *origin, int strict, struct dp_rpz_diag *diag);
/* The same with no initial origin. */
int dp_rpz_load_mem(struct dp_rpz **out, const char *name_for_errors, const char *text, size_t len,
                    int strict, struct dp_rpz_diag *diag);
/* Read the file at path and parse it as above (errors name path).
 * DOTPROXY_ESYS when it cannot be read (errno kept, and diag says why). */
int dp_rpz_load(struct dp_rpz **out, const char *path, int strict, struct dp_rpz_diag *diag);
/* NULL-safe. A zone is reference counted: a layer holds its base. */
void dp_rpz_free(struct dp_rpz *z);

/* Incremental change (an IXFR): a new zone made of zone's base (zone
 * itself when it is no layer) and a small layer over it. text holds, in
 * master-file form with absolute names, every record now in the zone of
 * each owner named in owners (absolute names, one a line): the rules of
 * those owners' triggers replace the base's, and an owner left with no
 * record deletes its trigger. So the layer is built from every owner
 * changed since the base was loaded, not only the last change, and costs
 * O(its records), not O(the zone); the lookups on the result answer as a
 * whole load of the zone would, up to the order in which conflicting
 * records of one owner are read. Bad records are skipped (lenient).
 * DOTPROXY_ESTATE when the zone spells an address trigger in two ways
 * (two owners, one rule: load it whole instead). The result holds a
 * reference to the base; zone itself may be freed. */
int dp_rpz_layer_new(struct dp_rpz **out, struct dp_rpz *zone, const char *text, size_t len,
                     const char *owners, size_t owners_len, struct dp_rpz_diag *diag);
/* Triggers in the layer of z (rules and tombstones), 0 for a whole zone. */
size_t dp_rpz_layer_size(const struct dp_rpz *z);

/* The zone apex as text with a trailing dot ("rpz.example."). */
const char *dp_rpz_origin(const struct dp_rpz *z);
/* Distinct triggers (QNAME, client-ip and ip; not nsdname/nsip). */
size_t dp_rpz_rule_count(const struct dp_rpz *z);
/* Octets of heap the zone holds (all its tables and arenas, a layer's
 * base included). */
size_t dp_rpz_memory(const struct dp_rpz *z);

/* Precedence inside one zone, as the draft orders it: client-ip triggers
 * before QNAME triggers before response-ip triggers; the caller asks in
 * that order and stops at the first hit. Within a kind, each function
 * returns the one rule that wins: for QNAME, an exact owner before any
 * wildcard, and the longest (most specific) wildcard first; for addresses,
 * the longest prefix. All return 1 and fill *hit on a hit, 0 on none. */

/* qname_wire: an uncompressed name in wire form, any case (a name longer
 * than 255 octets or with a bad label never matches). */
int dp_rpz_match_qname(const struct dp_rpz *z, const uint8_t *qname_wire, struct dp_rpz_hit *hit);
/* Every QNAME rule that covers qname, the winner first (exact owner, then
 * wildcards from the longest base to the shortest), for "which rule
 * matched?" answers in the API. cb is called once per rule with a filled
 * hit; returning non-zero stops the walk. Returns the number of calls. No
 * allocation; hit is the caller's scratch. */
size_t dp_rpz_match_qname_all(const struct dp_rpz *z, const uint8_t *qname_wire,
                              struct dp_rpz_hit *hit,
                              int (*cb)(const struct dp_rpz_hit *hit, void *user), void *user);
/* An AF_INET or AF_INET6 client address (IPv4-mapped IPv6 counts as IPv4). */
int dp_rpz_match_client(const struct dp_rpz *z, const struct sockaddr *client,
                        struct dp_rpz_hit *hit);
/* An A (family AF_INET, 4 octets) or AAAA (AF_INET6, 16 octets) address
 * from an upstream answer. */
int dp_rpz_match_ip(const struct dp_rpz *z, int family, const void *addr, struct dp_rpz_hit *hit);

/* The answer records of a DP_RPZ_LOCAL hit for (qname, qtype), written to
 * out in wire form, owner = qname uncompressed, no compression pointers (so
 * they are right wherever the caller puts them). A CNAME in the local data
 * answers any qtype but CNAME with that CNAME alone; a CNAME target whose
 * first label is "*" has it replaced by qname (as BIND does). qtype 255
 * (ANY) gets every record. No record of qtype and no CNAME: NODATA, 0 with
 * *ancount 0. Returns the octets written, DOTPROXY_ENOSPC when cap is too
 * small, DOTPROXY_EINVAL for a hit that is not local data or a bad qname.
 * The TTLs are the zone's. */
int dp_rpz_local_answer(const struct dp_rpz *z, const struct dp_rpz_hit *hit,
                        const uint8_t *qname_wire, uint16_t qtype, uint8_t *out, size_t cap,
                        uint16_t *ancount);

#endif
