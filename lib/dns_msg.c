/* SPDX-License-Identifier: MIT */
/* DNS message validation and rewriting over caller buffers (RFC 1035 4.1,
 * RFC 6891). Every byte comes from an untrusted client or upstream: each read
 * is bounds-checked against the message length, name decompression is
 * bounded, and nothing allocates. */
#include <string.h>

#include "dns_msg.h"
#include "bytes.h"
#include "dotproxy/error.h"

#define HDR          DOTPROXY_DNS_HEADER_SIZE
#define RR_FIXED     10u   /* TYPE, CLASS, TTL, RDLENGTH */
#define OPT_RR_SIZE  11u   /* root owner + RR_FIXED, no options */
#define MAX_LABEL    63u   /* RFC 1035 2.3.4 */
#define OUR_UDP_SIZE 1232u /* DNS flag day 2020: avoids IP fragmentation */
#define TYPE_OPT     41u
#define CLASS_IN     1u

/* Legitimate compression needs at most one pointer per label, so 127 labels
 * in a 255-octet name bound the hops. The strictly-decreasing rule below
 * already forbids loops; this bound also caps the work per name, so a 64 KiB
 * message of pointer chains cannot cost quadratic time. */
#define MAX_HOPS 128u

enum section { SEC_ANSWER, SEC_AUTHORITY, SEC_ADDITIONAL };

/* Where names may read, for one pass over a message: the OPT RR is
 * rewritten, moved and removed on its way through (edns.c, the cache,
 * truncation), so no name may take any of its octets as labels. A name
 * only reaches octets outside its own place through a pointer; the runs of
 * labels read after pointers are what is watched. */
struct name_guard {
    size_t far;            /* the furthest end of such a run so far */
    size_t opt_lo, opt_hi; /* the OPT RR, once found (opt_hi 0: not yet) */
};

/* What one pass over a message learns; the public info plus what truncate
 * needs and the public struct has no room for. */
struct scan {
    dotproxy_dns_info info;
    size_t qsection_end; /* offset past the last question */
};

/* A run of labels read after a pointer, msg[from..to): refused when it
 * touches the OPT, or remembered so that an OPT found later can be checked
 * against it. */
static int guard_run(struct name_guard *g, size_t from, size_t to)
{
    if (g->opt_hi != 0 && from < g->opt_hi && to > g->opt_lo)
        return DOTPROXY_EMALFORMED;
    if (to > g->far)
        g->far = to;
    return 0;
}

/* Walk the name starting at msg[off]. Labels read in place (before the first
 * pointer) must end before `stop` (the end of the RDATA holding the name, or
 * the message end); after a jump only `len` bounds them. On success *end is
 * the offset just past the name where it sits and *wire its uncompressed
 * length; lower, when not NULL, receives the lower-cased uncompressed name.
 *
 * Pointer rule: a pointer's target must lie before the start of the label
 * run that contains the pointer (the name's own start, then the previous
 * target). Targets thus strictly decrease, which rules out every loop
 * (self-pointers, cycles of any length) and forward jumps. Any real
 * compressor only points at names written earlier, so it obeys the rule.
 * Targets inside the header are refused: no name lives there. */
static int walk_name(const uint8_t *msg, size_t stop, size_t len, size_t off, size_t *end,
                     size_t *wire, uint8_t *lower, struct name_guard *g)
{
    size_t pos = off;
    size_t run_start = off;
    size_t bound = stop;
    size_t after = 0; /* 0 until known: set by the first pointer or the root */
    size_t n = 0;
    unsigned hops = 0;

    for (;;) {
        if (pos >= bound)
            return DOTPROXY_EMALFORMED;
        unsigned c = msg[pos];
        if (c == 0) {
            if (lower != NULL)
                lower[n] = 0;
            n++;
            if (after == 0)
                after = pos + 1;
            else if (g != NULL && guard_run(g, run_start, pos + 1) < 0)
                return DOTPROXY_EMALFORMED;
            break;
        }
        if ((c & 0xC0) == 0xC0) {
            if (bound - pos < 2)
                return DOTPROXY_EMALFORMED;
            if (after != 0 && g != NULL && guard_run(g, run_start, pos + 2) < 0)
                return DOTPROXY_EMALFORMED;
            size_t target = ((size_t)(c & 0x3F) << 8) | msg[pos + 1];
            if (target < HDR || target >= run_start || ++hops > MAX_HOPS)
                return DOTPROXY_EMALFORMED;
            if (after == 0)
                after = pos + 2;
            pos = target;
            run_start = target;
            bound = len;
            continue;
        }
        /* 0x40 and 0x80 prefixes (extended and binary labels) are obsolete
         * or undefined (RFC 6891 5): refuse rather than guess a length. */
        if (c > MAX_LABEL)
            return DOTPROXY_EMALFORMED;
        if (bound - pos - 1 < c)
            return DOTPROXY_EMALFORMED;
        /* Leave room for this label and the root octet within 255. */
        if (n + 1 + c + 1 > DOTPROXY_DNS_MAX_NAME)
            return DOTPROXY_EMALFORMED;
        if (lower != NULL) {
            lower[n] = (uint8_t)c;
            for (size_t i = 1; i <= c; i++) {
                lower[n + i] = dp_lower(msg[pos + i]);
            }
        }
        n += 1 + c;
        pos += 1 + c;
    }
    *end = after;
    *wire = n;
    return 0;
}

/* RDATA of the RR types that RFC 1035 and RFC 3597 4 allow to be compressed
 * holds names the cache or a client may follow later: check them too. Other
 * types are opaque octets bounded by RDLENGTH. */
static int check_rdata(const uint8_t *msg, size_t len, unsigned type, size_t rd, size_t rdend,
                       struct name_guard *g)
{
    size_t end, wire;
    int rc;

    switch (type) {
    case 2:  /* NS */
    case 3:  /* MD */
    case 4:  /* MF */
    case 5:  /* CNAME */
    case 7:  /* MB */
    case 8:  /* MG */
    case 9:  /* MR */
    case 12: /* PTR */
        rc = walk_name(msg, rdend, len, rd, &end, &wire, NULL, g);
        if (rc < 0 || end != rdend)
            return DOTPROXY_EMALFORMED;
        return 0;
    case 15: /* MX: preference, exchange */
        if (rdend - rd < 2)
            return DOTPROXY_EMALFORMED;
        rc = walk_name(msg, rdend, len, rd + 2, &end, &wire, NULL, g);
        if (rc < 0 || end != rdend)
            return DOTPROXY_EMALFORMED;
        return 0;
    case 6: /* SOA: MNAME, RNAME, five 32-bit counters */
        rc = walk_name(msg, rdend, len, rd, &end, &wire, NULL, g);
        if (rc < 0)
            return rc;
        rc = walk_name(msg, rdend, len, end, &end, &wire, NULL, g);
        if (rc < 0 || rdend - end != 20)
            return DOTPROXY_EMALFORMED;
        return 0;
    default: return 0;
    }
}

/* OPT RDATA is a run of {code, length, data} options (RFC 6891 6.1.2) that
 * must fill RDLENGTH exactly. */
static int check_opt_options(const uint8_t *msg, size_t rd, size_t rdend)
{
    size_t pos = rd;
    while (pos < rdend) {
        if (rdend - pos < 4)
            return DOTPROXY_EMALFORMED;
        size_t olen = dp_get16(msg + pos + 2);
        if (rdend - pos - 4 < olen)
            return DOTPROXY_EMALFORMED;
        pos += 4 + olen;
    }
    return 0;
}

/* The first question at msg[HDR], when the header counts one and it is
 * readable; returns the offset past its QCLASS, 0 when there is none, or
 * DOTPROXY_EMALFORMED. */
static int scan_first_question(const uint8_t *msg, size_t len, size_t *qend, size_t *wire)
{
    size_t end;
    if (walk_name(msg, len, len, HDR, &end, wire, NULL, NULL) < 0 || len - end < 4)
        return DOTPROXY_EMALFORMED;
    *qend = end + 4;
    return 0;
}

/* One pass: header, questions, then every RR of the three record sections in
 * order, so each byte is looked at once and the last RR must end exactly at
 * len (counts that lie either run out of bytes or leave some over). */
static int scan_msg(struct scan *s, const uint8_t *msg, size_t len)
{
    dotproxy_dns_info *in = &s->info;
    struct name_guard g = {0, 0, 0};
    size_t pos, end, wire;

    if (len < HDR || len > DOTPROXY_DNS_MAX_SIZE)
        return DOTPROXY_EMALFORMED;
    memset(in, 0, sizeof(*in));
    in->id = dp_get16(msg);
    in->flags = dp_get16(msg + 2);
    in->qdcount = dp_get16(msg + 4);
    in->ancount = dp_get16(msg + 6);
    in->nscount = dp_get16(msg + 8);
    in->arcount = dp_get16(msg + 10);

    pos = HDR;
    for (unsigned i = 0; i < in->qdcount; i++) {
        if (walk_name(msg, len, len, pos, &end, &wire, NULL, &g) < 0 || len - end < 4)
            return DOTPROXY_EMALFORMED;
        if (i == 0) {
            in->qname_off = HDR;
            in->qname_len = (uint16_t)wire;
            in->qtype = dp_get16(msg + end);
            in->qclass = dp_get16(msg + end + 2);
            in->question_end = (uint16_t)(end + 4);
        }
        pos = end + 4;
    }
    s->qsection_end = pos;

    unsigned counts[3] = {in->ancount, in->nscount, in->arcount};
    for (unsigned sec = SEC_ANSWER; sec <= SEC_ADDITIONAL; sec++) {
        for (unsigned i = 0; i < counts[sec]; i++) {
            size_t owner = pos;
            if (walk_name(msg, len, len, pos, &end, &wire, NULL, &g) < 0 || len - end < RR_FIXED)
                return DOTPROXY_EMALFORMED;
            unsigned type = dp_get16(msg + end);
            size_t rd = end + RR_FIXED;
            size_t rdlen = dp_get16(msg + end + 8);
            if (len - rd < rdlen)
                return DOTPROXY_EMALFORMED;
            size_t rdend = rd + rdlen;
            if (type == TYPE_OPT) {
                /* RFC 6891 6.1.1: one OPT at most, additional section only,
                 * owner the root. A literal root octet is required (not a
                 * pointer to one) so the RR can be moved as a block. */
                if (sec != SEC_ADDITIONAL || in->opt_off != 0 || msg[owner] != 0 ||
                    end != owner + 1)
                    return DOTPROXY_EMALFORMED;
                if (check_opt_options(msg, rd, rdend) < 0 || g.far > owner)
                    return DOTPROXY_EMALFORMED;
                g.opt_lo = owner;
                g.opt_hi = rdend;
                in->opt_off = (uint16_t)owner;
                in->opt_len = (uint16_t)(rdend - owner);
                in->udp_size = dp_get16(msg + end + 2);
                in->ext_rcode = msg[end + 4];
                in->edns_version = msg[end + 5];
                in->edns_flags = dp_get16(msg + end + 6);
            } else if (check_rdata(msg, len, type, rd, rdend, &g) < 0) {
                return DOTPROXY_EMALFORMED;
            }
            pos = rdend;
        }
    }
    if (pos != len)
        return DOTPROXY_EMALFORMED;
    return 0;
}

DOTPROXY_EXPORT int dotproxy_dns_parse(dotproxy_dns_info *out, const uint8_t *msg, size_t len)
{
    struct scan s;
    if (out == NULL || msg == NULL)
        return DOTPROXY_EINVAL;
    int rc = scan_msg(&s, msg, len);
    if (rc < 0)
        return rc;
    *out = s.info;
    return 0;
}

DOTPROXY_EXPORT int dotproxy_dns_get_id(const uint8_t *msg, size_t len)
{
    if (msg == NULL || len < 2)
        return DOTPROXY_EINVAL;
    return dp_get16(msg);
}

DOTPROXY_EXPORT int dotproxy_dns_set_id(uint8_t *msg, size_t len, uint16_t id)
{
    if (msg == NULL || len < 2)
        return DOTPROXY_EINVAL;
    dp_put16(msg, id);
    return 0;
}

DOTPROXY_EXPORT unsigned dotproxy_dns_udp_limit(const dotproxy_dns_info *q)
{
    if (q == NULL || q->opt_off == 0 || q->udp_size < DOTPROXY_DNS_UDP_MIN)
        return DOTPROXY_DNS_UDP_MIN;
    return q->udp_size;
}

DOTPROXY_EXPORT int dotproxy_dns_same_question(const uint8_t *a, size_t alen, const uint8_t *b,
                                               size_t blen)
{
    struct scan sa, sb;
    uint8_t na[DOTPROXY_DNS_MAX_NAME], nb[DOTPROXY_DNS_MAX_NAME];
    size_t end, wa, wb;

    if (a == NULL || b == NULL)
        return 0;
    if (scan_msg(&sa, a, alen) < 0 || scan_msg(&sb, b, blen) < 0)
        return 0;
    if (sa.info.qdcount == 0 || sb.info.qdcount == 0)
        return 0;
    if (sa.info.qtype != sb.info.qtype || sa.info.qclass != sb.info.qclass ||
        sa.info.qname_len != sb.info.qname_len)
        return 0;
    if (walk_name(a, alen, alen, HDR, &end, &wa, na, NULL) < 0 ||
        walk_name(b, blen, blen, HDR, &end, &wb, nb, NULL) < 0)
        return 0;
    return wa == wb && memcmp(na, nb, wa) == 0;
}

DOTPROXY_EXPORT int dotproxy_dns_make_reply(uint8_t *out, size_t cap, const uint8_t *query,
                                            size_t qlen, unsigned rcode)
{
    struct scan s;
    size_t qend = 0, wire;
    int has_opt = 0;
    unsigned do_bit = 0;

    if (out == NULL || query == NULL || rcode > 0xFFFu)
        return DOTPROXY_EINVAL;
    if (qlen < HDR)
        return DOTPROXY_EMALFORMED;

    unsigned qflags = dp_get16(query + 2);
    unsigned id = dp_get16(query);
    if (scan_msg(&s, query, qlen) == 0) {
        qend = s.info.question_end;
        /* The fresh OPT (RFC 6891 7) is added only when the query's EDNS
         * is trustworthy, i.e. the whole query parsed. */
        if (s.info.opt_off != 0) {
            has_opt = 1;
            do_bit = s.info.edns_flags & DOTPROXY_DNS_EDNS_DO;
        }
    } else if (dp_get16(query + 4) > 0 && scan_first_question(query, qlen, &qend, &wire) < 0) {
        qend = 0; /* unreadable question: a FORMERR carries none */
    }

    /* RFC 6891 6.1.3: the upper eight bits of a 12-bit rcode live in the
     * OPT, so only a reply that carries one can say it. */
    if (rcode > 15 && !has_opt)
        return DOTPROXY_EINVAL;
    size_t qsize = qend > 0 ? qend - HDR : 0;
    size_t need = HDR + qsize + (has_opt ? OPT_RR_SIZE : 0);
    if (cap < need)
        return DOTPROXY_ENOSPC;

    /* memmove: out may be the query buffer itself (a reply built in place). */
    if (qsize > 0)
        memmove(out + HDR, query + HDR, qsize);
    /* RFC 1035 4.1.1: the opcode is copied from the query as well. RD, CD
     * and RA mean something for a standard query only; the reply to any
     * other opcode (which we do not implement) says nothing but its opcode,
     * as resolvers do and ISC's compliance tests expect. */
    unsigned flags = DOTPROXY_DNS_FLAG_QR | (qflags & 0x7800u) | (rcode & 0xFu);
    if (DOTPROXY_DNS_OPCODE(qflags) == 0)
        flags |= DOTPROXY_DNS_FLAG_RA | (qflags & (DOTPROXY_DNS_FLAG_RD | DOTPROXY_DNS_FLAG_CD));
    dp_put16(out, id);
    dp_put16(out + 2, flags);
    dp_put16(out + 4, qsize > 0 ? 1 : 0);
    dp_put16(out + 6, 0);
    dp_put16(out + 8, 0);
    dp_put16(out + 10, has_opt ? 1 : 0);
    if (has_opt) {
        uint8_t *o = out + HDR + qsize;
        o[0] = 0; /* root owner */
        dp_put16(o + 1, TYPE_OPT);
        dp_put16(o + 3, OUR_UDP_SIZE);
        o[5] = (uint8_t)(rcode >> 4); /* the rcode's upper bits */
        o[6] = 0;                     /* version 0 */
        dp_put16(o + 7, do_bit);
        dp_put16(o + 9, 0); /* no options */
    }
    return (int)need;
}

DOTPROXY_EXPORT int dotproxy_dns_truncate(uint8_t *msg, size_t len, size_t limit)
{
    struct scan s;

    if (msg == NULL)
        return DOTPROXY_EINVAL;
    if (len > DOTPROXY_DNS_MAX_SIZE)
        return DOTPROXY_EMALFORMED;
    /* The common case costs nothing: the caller parsed the answer already. */
    if (len <= limit)
        return (int)len;
    if (scan_msg(&s, msg, len) < 0)
        return DOTPROXY_EMALFORMED;

    size_t keep = s.qsection_end;
    size_t opt_len = s.info.opt_off != 0 ? s.info.opt_len : 0;
    if (keep + opt_len > limit)
        return DOTPROXY_ENOSPC;
    /* The question section is a prefix of the message and its names can only
     * point backwards, so cutting after it leaves every pointer valid; the
     * OPT has a literal root owner and no names, so it moves as a block. */
    if (opt_len > 0)
        memmove(msg + keep, msg + s.info.opt_off, opt_len);
    dp_put16(msg + 2, s.info.flags | DOTPROXY_DNS_FLAG_TC);
    dp_put16(msg + 6, 0);
    dp_put16(msg + 8, 0);
    dp_put16(msg + 10, opt_len > 0 ? 1 : 0);
    return (int)(keep + opt_len);
}

int dp_dns_msg_name_lower(const uint8_t *msg, size_t len, size_t off,
                          uint8_t out[DOTPROXY_DNS_MAX_NAME], size_t *next)
{
    size_t end, wire;
    if (msg == NULL || out == NULL || len > DOTPROXY_DNS_MAX_SIZE)
        return DOTPROXY_EMALFORMED;
    if (walk_name(msg, len, len, off, &end, &wire, out, NULL) < 0)
        return DOTPROXY_EMALFORMED;
    if (next != NULL)
        *next = end;
    return (int)wire;
}

int dp_dns_msg_skip_name(const uint8_t *msg, size_t len, size_t off)
{
    size_t end, wire;
    if (msg == NULL || len > DOTPROXY_DNS_MAX_SIZE)
        return DOTPROXY_EMALFORMED;
    if (walk_name(msg, len, len, off, &end, &wire, NULL, NULL) < 0)
        return DOTPROXY_EMALFORMED;
    return (int)end;
}

/* ---- moving records over a removed OPT ------------------------------------
 * The records behind an OPT move when the OPT is moved to the end or
 * removed (edns.c). Their names may point at each other (RFC 1035 4.1.4), so
 * every pointer that the move would leave aiming at the wrong octets is
 * re-aimed. A pointer is only seen where the names it belongs to can be
 * found: owners, and the RDATA names of the types below. */

struct rebase {
    uint8_t *msg;
    size_t len;
    size_t cut;  /* the removed block is msg[cut..from) */
    size_t from; /* the records that move start here */
    unsigned ok_ptrs;
    uint8_t mark[DOTPROXY_DNS_MAX_SIZE / 8 + 1]; /* bit p - from: a pointer we re-aim */
};

static int rb_marked(const struct rebase *r, size_t p)
{
    return (r->mark[(p - r->from) >> 3] >> ((p - r->from) & 7)) & 1;
}

/* Whether octets msg[a..b) hold part of a marked pointer. */
static int rb_overlaps(const struct rebase *r, size_t a, size_t b)
{
    if (b <= r->from)
        return 0;
    for (size_t p = a > r->from ? a - 1 : r->from; p < b; p++)
        if (p >= r->from && rb_marked(r, p))
            return 1;
    return 0;
}

/* The name at pos, whose in-place labels end before stop: mark the pointer
 * that ends them (if any), then follow its chain. The chain is refused when
 * it lands in the removed block or reads on into it, or reads octets
 * behind it that the move would change under it: a pointer that no walk marked (one hidden in
 * opaque RDATA keeps its old target and could aim forward after the move),
 * or a marked pointer's octets read as label text. *end: past the name
 * where it sits. */
static int rb_visit(struct rebase *r, size_t pos, size_t stop, size_t *end)
{
    const uint8_t *msg = r->msg;
    size_t run_start = pos;
    unsigned hops = 0;
    int first = 1;

    for (;;) {
        if (pos >= stop)
            return DOTPROXY_EMALFORMED;
        unsigned c = msg[pos];
        if ((c & 0xC0) != 0xC0) {
            if (c > MAX_LABEL || stop - pos - 1 < c)
                return DOTPROXY_EMALFORMED;
            if (!first && rb_overlaps(r, pos, pos + 1 + c))
                return DOTPROXY_EMALFORMED;
            if (c == 0) {
                if (first)
                    *end = pos + 1;
                return 0;
            }
            pos += 1 + c;
            continue;
        }
        if (stop - pos < 2)
            return DOTPROXY_EMALFORMED;
        if (pos >= r->from) {
            if (first)
                r->mark[(pos - r->from) >> 3] |= (uint8_t)(1u << ((pos - r->from) & 7));
            else if (!rb_marked(r, pos) || (pos > r->from && rb_marked(r, pos - 1)))
                return DOTPROXY_EMALFORMED;
        }
        size_t target = ((size_t)(c & 0x3F) << 8) | msg[pos + 1];
        if (first)
            *end = pos + 2;
        first = 0;
        if (target < HDR || target >= run_start || ++hops > MAX_HOPS ||
            (target >= r->cut && target < r->from))
            return DOTPROXY_EMALFORMED;
        pos = target;
        run_start = target;
        /* A run before the block must end before it: read on, it would
         * cross octets that move or vanish. */
        stop = target < r->cut ? r->cut : r->len;
    }
}

/* The names in one record's RDATA. The types the parser checks must hold
 * well-formed names; for those that RFC 3597 4 asks receivers to decompress
 * although new servers must not compress them (SRV and kin), a name that
 * does not read is left as opaque octets. */
static int rb_rdata(struct rebase *r, unsigned type, size_t rd, size_t rdend)
{
    size_t end = 0;
    int rc;

    switch (type) {
    case 2:
    case 3:
    case 4:
    case 5:
    case 7:
    case 8:
    case 9:
    case 12: /* as check_rdata */ return rb_visit(r, rd, rdend, &end);
    case 15: /* MX */
        return rdend - rd < 2 ? DOTPROXY_EMALFORMED : rb_visit(r, rd + 2, rdend, &end);
    case 6: /* SOA */
        rc = rb_visit(r, rd, rdend, &end);
        return rc < 0 ? rc : rb_visit(r, end, rdend, &end);
    case 18: /* AFSDB: subtype, hostname */
    case 21: /* RT: preference, host */
        if (rdend - rd > 2)
            (void)rb_visit(r, rd + 2, rdend, &end);
        return 0;
    case 33: /* SRV: priority, weight, port, target */
        if (rdend - rd > 6)
            (void)rb_visit(r, rd + 6, rdend, &end);
        return 0;
    case 17: /* RP: mbox, txt */
        if (rb_visit(r, rd, rdend, &end) == 0)
            (void)rb_visit(r, end, rdend, &end);
        return 0;
    default: return 0;
    }
}

int dp_dns_msg_rebase_tail(uint8_t *msg, size_t len, size_t cut, size_t from)
{
    struct rebase r;
    size_t pos, end;

    if (msg == NULL || len > DOTPROXY_DNS_MAX_SIZE || cut < HDR || cut > from || from > len)
        return DOTPROXY_EMALFORMED;
    if (from == len || cut == from)
        return 0;
    r.msg = msg;
    r.len = len;
    r.cut = cut;
    r.from = from;
    memset(r.mark, 0, (len - from) / 8 + 1);

    /* Pass 1 reads only: on a refusal the message is as it was. Every name
     * is walked, not only those behind the block: after a pointer, a name
     * before it may read on into octets that move. */
    unsigned qd = dp_get16(msg + 4);
    for (pos = HDR; qd > 0; qd--) {
        if (rb_visit(&r, pos, len, &end) < 0 || len - end < 4)
            return DOTPROXY_EMALFORMED;
        pos = end + 4;
    }
    while (pos < len) {
        if (pos == cut) {
            pos = from;
            continue;
        }
        size_t rec = pos;
        if (rb_visit(&r, pos, len, &end) < 0 || len - end < RR_FIXED)
            return DOTPROXY_EMALFORMED;
        unsigned type = dp_get16(msg + end);
        size_t rd = end + RR_FIXED;
        size_t rdlen = dp_get16(msg + end + 8);
        if (len - rd < rdlen || rb_rdata(&r, type, rd, rd + rdlen) < 0)
            return DOTPROXY_EMALFORMED;
        pos = rd + rdlen;
        if (rec < cut && pos > cut)
            return DOTPROXY_EMALFORMED; /* the block is not a whole record */
    }

    /* Pass 2: every marked pointer that aims behind the block follows its
     * name; those aiming before the block keep their target. */
    size_t shift = from - cut;
    for (pos = from; pos < len; pos++) {
        if (!rb_marked(&r, pos))
            continue;
        size_t target = ((size_t)(msg[pos] & 0x3F) << 8) | msg[pos + 1];
        if (target >= from)
            dp_put16(msg + pos, 0xC000u | (unsigned)(target - shift));
    }
    return 0;
}
