/* SPDX-License-Identifier: MIT */
/* Zone transfers as a client sees them: the answer to an AXFR (RFC 5936)
 * or IXFR (RFC 1995) query, read message by message, and the record set of
 * a zone that an incremental transfer is applied to. Pure parsing and
 * bookkeeping: no socket, no clock, no logging (feed.c does the I/O), so a
 * fuzzer can drive every path.
 *
 * A record is kept as its presentation line without the TTL ("owner TYPE
 * rdata", names lower case, decompressed): that string is what an IXFR
 * deletion is matched on (RFC 1995: a record is deleted by its owner, type,
 * class and rdata) and, with the TTL put back, what the RPZ parser reads. */
#ifndef DP_XFR_H
#define DP_XFR_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* One record of a set: key is "owner TYPE rdata", NUL-terminated. */
struct dp_zrec {
    uint64_t hash;
    uint32_t ttl;
    uint32_t len;
    char key[];
};

/* The records of a zone, its SOA kept apart (an IXFR moves it on every
 * step). */
struct dp_zone_set {
    struct dp_zrec **slot; /* open addressing, linear probing */
    size_t cap, n;
    struct dp_zrec *soa; /* NULL until a transfer set it */
    uint32_t serial, refresh, retry, expire;
};

void dp_zone_set_init(struct dp_zone_set *z);
void dp_zone_set_clear(struct dp_zone_set *z);
/* Add (or, already there, retime) a record. 0 or DOTPROXY_ENOMEM. */
int dp_zone_set_add(struct dp_zone_set *z, const char *key, size_t len, uint32_t ttl);
/* Remove a record: 0, or DOTPROXY_EINVAL when it is not there. */
int dp_zone_set_del(struct dp_zone_set *z, const char *key, size_t len);
/* Call cb for every record whose owner is owner (len octets, as in the
 * keys: lower case, absolute). O(the run of the owner's home slot): the
 * records of one owner share it. Returns the number of calls. */
size_t dp_zone_set_owner(const struct dp_zone_set *z, const char *owner, size_t len,
                         void (*cb)(const struct dp_zrec *r, void *user), void *user);
/* Set the SOA from its key ("owner SOA mname rname serial refresh retry
 * expire minimum"), reading its numbers. 0, DOTPROXY_EMALFORMED or
 * DOTPROXY_ENOMEM. */
int dp_zone_set_soa(struct dp_zone_set *z, const char *key, size_t len, uint32_t ttl);
/* The zone in master-file form, SOA first, one record a line ("owner TTL
 * IN TYPE rdata"). 0 or DOTPROXY_ESYS. */
int dp_zone_set_write(const struct dp_zone_set *z, FILE *f);
/* Read back what dp_zone_set_write wrote (the state file). 0,
 * DOTPROXY_EMALFORMED (z left empty) or DOTPROXY_ENOMEM. */
int dp_zone_set_read(struct dp_zone_set *z, const char *text, size_t len);

/* What a finished transfer was. */
enum dp_xfr_kind {
    DP_XFR_UPTODATE = 1, /* IXFR: one SOA, serial unchanged */
    DP_XFR_FULL = 2,     /* AXFR, or an IXFR answered with the whole zone */
    DP_XFR_INCR = 3,     /* IXFR: a sequence of differences */
};

struct dp_xfr_op {
    struct dp_zrec *rec;
    int add;
};

/* One transfer being read. */
struct dp_xfr {
    uint16_t id;
    uint8_t qname[256]; /* the zone, wire form, lower case */
    int ixfr;
    uint32_t have_serial; /* IXFR: the serial asked from */
    int state;            /* internal */
    int kind;             /* enum dp_xfr_kind once done, else 0 */
    uint32_t new_serial;
    unsigned long msgs, rrs;
    struct dp_zone_set full; /* DP_XFR_FULL: the new zone */
    struct dp_xfr_op *ops;   /* DP_XFR_INCR: deletions and additions, in order */
    size_t nops, capops;
    struct dp_zrec *soa; /* the new SOA */
    char *line;          /* a record's text, allocated at the first message */
    char err[160];
};

/* Start reading the answer to a query with id for zone (wire form).
 * ixfr: an IXFR from have_serial. */
void dp_xfr_begin(struct dp_xfr *x, uint16_t id, const uint8_t *zone, int ixfr,
                  uint32_t have_serial);
void dp_xfr_end(struct dp_xfr *x);
/* Read one message. 0: more messages needed; 1: the transfer is complete
 * (x->kind says what it was); a negative dotproxy_error with x->err set
 * (DOTPROXY_EMALFORMED, DOTPROXY_ENOMEM, DOTPROXY_EUPSTREAM: the primary
 * answered with an error rcode). */
int dp_xfr_msg(struct dp_xfr *x, const uint8_t *msg, size_t len);
/* Apply a complete transfer to z: a full zone replaces it, differences are
 * applied in order. DOTPROXY_EINVAL (x->err set) when a deletion names a
 * record z does not hold: z is then in an unknown state, and the caller
 * must transfer the whole zone again. */
int dp_xfr_apply(struct dp_xfr *x, struct dp_zone_set *z);

/* Write a query for zone (wire form) of type 252 (AXFR) or 251 (IXFR, with
 * an SOA of serial in the authority section, RFC 1995 3) into out. Returns
 * its length or DOTPROXY_ENOSPC. */
int dp_xfr_query(uint8_t *out, size_t cap, uint16_t id, const uint8_t *zone, int ixfr,
                 uint32_t serial);

/* A name in wire form into presentation form with a trailing dot, lower
 * case. 0 or DOTPROXY_EMALFORMED. */
int dp_xfr_name_text(const uint8_t *wire, char *out, size_t cap);
/* Presentation to wire form (lower case). Returns the wire length or
 * DOTPROXY_EMALFORMED. */
int dp_xfr_name_wire(const char *text, uint8_t *out);

#endif
