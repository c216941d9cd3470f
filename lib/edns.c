/* SPDX-License-Identifier: MIT */
/* EDNS hop-by-hop rewriting: each hop gets its own OPT RR (RFC 6891 6.1.1),
 * carrying only the options that belong to that hop or to both ends (the
 * table in edns.h). Everything happens in place: every bound is checked and
 * the new length compared with cap before the first octet is written, so a
 * failed call leaves the message as it was. */
#include <assert.h>
#include <string.h>

#include "bytes.h"
#include "dns_msg.h"
#include "dotproxy/error.h"
#include "edns.h"

#define HDR        DOTPROXY_DNS_HEADER_SIZE
#define TYPE_OPT   41u
#define OPTION_HDR 4u /* OPTION-CODE, OPTION-LENGTH */
#define RCODE_MASK 0x000Fu

enum hop { TO_UPSTREAM, TO_CLIENT };

/* The table of edns.h. */
static int option_crosses(enum hop dir, unsigned code, int keep_ecs)
{
    switch (code) {
    /* RFC 7871 2: the client's subnet is private data, passed only on request. */
    case DP_EDNS_OPT_CODE_ECS: return keep_ecs;
    /* Per hop: a cookie binds one client to one server (RFC 7873), a keepalive
     * describes one TCP connection (RFC 7828 3), padding is sized for one
     * encrypted hop (RFC 7830). */
    case DP_EDNS_OPT_CODE_COOKIE:
    case DP_EDNS_OPT_CODE_KEEPALIVE:
    case DP_EDNS_OPT_CODE_PADDING: return 0;
    case DP_EDNS_OPT_CODE_NSID:
    case DP_EDNS_OPT_CODE_EDE: return 1;
    default: return dir == TO_UPSTREAM;
    }
}

/* What one pass over an OPT RR's options found. */
struct opt_scan {
    size_t kept;   /* octets of the options that cross, headers included */
    int keepalive; /* the TIMEOUT of an edns-tcp-keepalive option, -1 none */
};

/* Check that msg[off..off+optlen) is an OPT RR with a literal root owner
 * lying inside msg[0..len) whose options fill RDLENGTH exactly, and measure
 * what crosses. info normally guarantees all this; the checks are cheap and
 * keep a stale or mismatched info from turning into an overrun. */
static int scan_opt(const uint8_t *msg, size_t len, size_t off, size_t optlen, enum hop dir,
                    int keep_ecs, struct opt_scan *s)
{
    if (off < HDR || off > len || len - off < optlen || optlen < DP_EDNS_OPT_FIXED)
        return DOTPROXY_EMALFORMED;
    const uint8_t *o = msg + off;
    if (o[0] != 0 || dp_get16(o + 1) != TYPE_OPT || dp_get16(o + 9) != optlen - DP_EDNS_OPT_FIXED)
        return DOTPROXY_EMALFORMED;

    size_t pos = off + DP_EDNS_OPT_FIXED;
    size_t end = off + optlen;
    s->kept = 0;
    s->keepalive = -1;
    while (pos < end) {
        if (end - pos < OPTION_HDR)
            return DOTPROXY_EMALFORMED;
        unsigned code = dp_get16(msg + pos);
        size_t olen = dp_get16(msg + pos + 2);
        if (end - pos - OPTION_HDR < olen)
            return DOTPROXY_EMALFORMED;
        if (option_crosses(dir, code, keep_ecs))
            s->kept += OPTION_HDR + olen;
        else if (code == DP_EDNS_OPT_CODE_KEEPALIVE && olen == 2)
            s->keepalive = dp_get16(msg + pos + OPTION_HDR); /* RFC 7828 3.1: 100 ms units */
        /* A keepalive without TIMEOUT in an answer breaks RFC 7828 3.2.2;
         * it is dropped like any other and teaches us nothing. */
        pos += OPTION_HDR + olen;
    }
    return 0;
}

static void reverse(uint8_t *p, size_t n)
{
    for (size_t i = 0, j = n; i + 1 < j; i++, j--) {
        uint8_t t = p[i];
        p[i] = p[j - 1];
        p[j - 1] = t;
    }
}

/* Keep, in place, only the crossing options of the OPT scanned at
 * msg[off..off+optlen) and move the shrunk RR behind the records that
 * followed it, so that it ends msg[0..len - optlen + 11 + kept). Returns
 * where the OPT now starts. Nothing grows, so nothing is written past len.
 * Its fixed part still holds the old values. */
static size_t rebuild_opt(uint8_t *msg, size_t len, size_t off, size_t optlen, enum hop dir,
                          int keep_ecs, size_t kept)
{
    size_t rd = off + DP_EDNS_OPT_FIXED;
    size_t end = off + optlen;

    /* Each kept option moves towards the front, only over octets already
     * read, so one forward pass compacts them. */
    if (kept != optlen - DP_EDNS_OPT_FIXED) {
        size_t w = rd;
        for (size_t pos = rd; pos < end;) {
            size_t n = OPTION_HDR + dp_get16(msg + pos + 2);
            if (option_crosses(dir, dp_get16(msg + pos), keep_ecs)) {
                if (w != pos)
                    memmove(msg + w, msg + pos, n);
                w += n;
            }
            pos += n;
        }
        assert(w == rd + kept);
    }

    size_t block = DP_EDNS_OPT_FIXED + kept;
    size_t tail = len - end;
    if (tail == 0)
        return off;
    /* Rare (RFC 6891 does not demand the OPT be last, but we place it last):
     * close the gap the dropped options left, then swap the OPT and the
     * records after it by three reversals, which needs no scratch space.
     * The caller has re-aimed the moved records' pointers first
     * (move_tail_names). */
    if (block != optlen)
        memmove(msg + off + block, msg + end, tail);
    reverse(msg + off, block);
    reverse(msg + off + block, tail);
    reverse(msg + off, block + tail);
    return off + tail;
}

/* Before the records behind the OPT at msg[off..off+optlen) move back over
 * it (rebuild_opt, or removing the OPT): re-aim their names' compression
 * pointers, which may aim at each other. Nothing is written on failure. */
static int move_tail_names(uint8_t *msg, size_t len, size_t off, size_t optlen)
{
    if (off + optlen == len)
        return 0; /* the usual case: the OPT is last, nothing moves */
    return dp_dns_msg_rebase_tail(msg, len, off, off + optlen);
}

/* The fixed part of an OPT RR (RFC 6891 6.1.2, 6.1.3): root owner, TYPE,
 * CLASS = payload size, TTL = extended rcode, version 0, flags, RDLENGTH. */
static void write_opt_fixed(uint8_t *p, unsigned udp_size, unsigned ext_rcode, unsigned flags,
                            size_t rdlen)
{
    p[0] = 0;
    dp_put16(p + 1, TYPE_OPT);
    dp_put16(p + 3, udp_size);
    p[5] = (uint8_t)ext_rcode;
    p[6] = 0;
    dp_put16(p + 7, flags);
    dp_put16(p + 9, (unsigned)rdlen);
}

/* RFC 6840 5.8: AD only for a client that showed it understands it. */
static unsigned gate_ad(unsigned flags, const struct dp_edns_client *c)
{
    if (!c->do_bit && !c->ad_bit)
        flags &= ~DOTPROXY_DNS_FLAG_AD;
    return flags;
}

void dp_edns_client_from_query(struct dp_edns_client *c, const dotproxy_dns_info *q)
{
    assert(c != NULL && q != NULL);
    c->had_opt = q->opt_off != 0;
    c->do_bit = c->had_opt && (q->edns_flags & DOTPROXY_DNS_EDNS_DO) != 0;
    c->ad_bit = (q->flags & DOTPROXY_DNS_FLAG_AD) != 0;
    c->cd_bit = (q->flags & DOTPROXY_DNS_FLAG_CD) != 0;
    c->udp_size = c->had_opt ? q->udp_size : 0;
}

int dp_edns_query_for_upstream(uint8_t *msg, size_t len, size_t cap, const dotproxy_dns_info *info,
                               const struct dp_edns_upstream_opts *o)
{
    struct opt_scan s = {0, -1};
    size_t base = len; /* the message without any OPT */
    unsigned do_bit = 0;

    assert(msg != NULL && info != NULL && o != NULL);
    if (cap < len)
        return DOTPROXY_EINVAL;
    if (len < HDR || len > DOTPROXY_DNS_MAX_SIZE)
        return DOTPROXY_EMALFORMED;
    if (info->opt_off != 0) {
        int rc = scan_opt(msg, len, info->opt_off, info->opt_len, TO_UPSTREAM, o->keep_ecs, &s);
        if (rc < 0)
            return rc;
        base = len - info->opt_len;
        do_bit = info->edns_flags & DOTPROXY_DNS_EDNS_DO;
    } else if (dp_get16(msg + 10) == UINT16_MAX) {
        return DOTPROXY_EMALFORMED;
    }

    size_t need = base + DP_EDNS_OPT_FIXED + s.kept + (o->want_keepalive ? OPTION_HDR : 0);
    size_t pad = 0;
    if (o->pad_block > 0) {
        /* RFC 8467 4.1: the whole message, padding option included, to the
         * next multiple of the block. */
        need += OPTION_HDR;
        pad = (o->pad_block - need % o->pad_block) % o->pad_block;
        need += pad;
    }
    if (need > cap || need > DOTPROXY_DNS_MAX_SIZE)
        return DOTPROXY_ENOSPC;

    size_t at;
    if (info->opt_off != 0) {
        int rc = move_tail_names(msg, len, info->opt_off, info->opt_len);
        if (rc < 0)
            return rc;
        at = rebuild_opt(msg, len, info->opt_off, info->opt_len, TO_UPSTREAM, o->keep_ecs, s.kept);
    } else {
        at = len;
        dp_put16(msg + 10, dp_get16(msg + 10) + 1u);
    }
    size_t w = at + DP_EDNS_OPT_FIXED + s.kept;
    if (o->want_keepalive) {
        /* RFC 7828 3.2.1: a query's keepalive has no TIMEOUT. */
        dp_put16(msg + w, DP_EDNS_OPT_CODE_KEEPALIVE);
        dp_put16(msg + w + 2, 0);
        w += OPTION_HDR;
    }
    if (o->pad_block > 0) {
        /* Last, since its size depends on all before it; RFC 7830 3: zeros. */
        dp_put16(msg + w, DP_EDNS_OPT_CODE_PADDING);
        dp_put16(msg + w + 2, (unsigned)pad);
        memset(msg + w + OPTION_HDR, 0, pad);
        w += OPTION_HDR + pad;
    }
    assert(w == need);
    /* Z bits are the client's business with its own hop; only DO crosses. */
    write_opt_fixed(msg + at, o->udp_size, 0, do_bit, w - at - DP_EDNS_OPT_FIXED);
    /* Ask for AD always (RFC 6840 5.7): the answer may be cached and serve
     * a client that asked for it although this one did not. TC is no
     * question's business: an upstream may refuse it, the cache ignores it. */
    dp_put16(msg + 2, (dp_get16(msg + 2) | DOTPROXY_DNS_FLAG_AD) & ~DOTPROXY_DNS_FLAG_TC);
    return (int)need;
}

int dp_edns_answer_for_client_parsed(uint8_t *msg, size_t len, size_t cap,
                                     const dotproxy_dns_info *info, const struct dp_edns_client *c,
                                     uint16_t our_udp_size, int keep_ecs, uint16_t *keepalive_100ms)
{
    struct opt_scan s = {0, -1};
    size_t base = len;
    unsigned ext_rcode = 0;

    assert(msg != NULL && info != NULL && c != NULL);
    if (cap < len)
        return DOTPROXY_EINVAL;
    if (len < HDR || len > DOTPROXY_DNS_MAX_SIZE)
        return DOTPROXY_EMALFORMED;
    if (info->opt_off != 0) {
        int rc = scan_opt(msg, len, info->opt_off, info->opt_len, TO_CLIENT, keep_ecs, &s);
        if (rc < 0)
            return rc;
        base = len - info->opt_len;
        ext_rcode = msg[info->opt_off + 5];
    } else if (c->had_opt && dp_get16(msg + 10) == UINT16_MAX) {
        return DOTPROXY_EMALFORMED;
    }
    size_t need = base + (c->had_opt ? DP_EDNS_OPT_FIXED + s.kept : 0);
    if (need > cap || need > DOTPROXY_DNS_MAX_SIZE)
        return DOTPROXY_ENOSPC;

    if (info->opt_off != 0) {
        int rc = move_tail_names(msg, len, info->opt_off, info->opt_len);
        if (rc < 0)
            return rc;
    }
    unsigned flags = gate_ad(dp_get16(msg + 2), c);
    unsigned do_bit = c->do_bit ? DOTPROXY_DNS_EDNS_DO : 0;
    if (!c->had_opt) {
        /* RFC 6891 7: no OPT to a client that sent none. An rcode above 15
         * cannot be said without one (see edns.h). */
        if (ext_rcode != 0)
            flags = (flags & ~RCODE_MASK) | DOTPROXY_RCODE_SERVFAIL;
        if (info->opt_off != 0) {
            size_t end = (size_t)info->opt_off + info->opt_len;
            memmove(msg + info->opt_off, msg + end, len - end);
            dp_put16(msg + 10, dp_get16(msg + 10) - 1u);
        }
    } else if (info->opt_off != 0) {
        size_t at =
            rebuild_opt(msg, len, info->opt_off, info->opt_len, TO_CLIENT, keep_ecs, s.kept);
        /* The upper rcode bits belong to the answer, not to the hop
         * (RFC 6891 6.1.3), so they cross. */
        write_opt_fixed(msg + at, our_udp_size, ext_rcode, do_bit, s.kept);
    } else {
        write_opt_fixed(msg + len, our_udp_size, 0, do_bit, 0);
        dp_put16(msg + 10, dp_get16(msg + 10) + 1u);
    }
    dp_put16(msg + 2, flags);
    if (s.keepalive >= 0 && keepalive_100ms != NULL)
        *keepalive_100ms = (uint16_t)s.keepalive;
    return (int)need;
}

int dp_edns_answer_for_client(uint8_t *msg, size_t len, size_t cap, const struct dp_edns_client *c,
                              uint16_t our_udp_size, int keep_ecs, uint16_t *keepalive_100ms)
{
    dotproxy_dns_info info;

    assert(msg != NULL && c != NULL);
    if (cap < len)
        return DOTPROXY_EINVAL;
    if (dotproxy_dns_parse(&info, msg, len) != 0)
        return DOTPROXY_EMALFORMED;
    return dp_edns_answer_for_client_parsed(msg, len, cap, &info, c, our_udp_size, keep_ecs,
                                            keepalive_100ms);
}

int dp_edns_add_client_opt(uint8_t *msg, size_t len, size_t cap, const struct dp_edns_client *c,
                           uint16_t our_udp_size)
{
    return dp_edns_add_client_opt_with(msg, len, cap, c, our_udp_size, 0);
}

int dp_edns_add_client_opt_with(uint8_t *msg, size_t len, size_t cap,
                                const struct dp_edns_client *c, uint16_t our_udp_size,
                                size_t opts_len)
{
    assert(msg != NULL && c != NULL);
    if (cap < len)
        return DOTPROXY_EINVAL;
    if (len < HDR || len > DOTPROXY_DNS_MAX_SIZE)
        return DOTPROXY_EMALFORMED;
    unsigned flags = gate_ad(dp_get16(msg + 2), c);
    if (!c->had_opt) {
        dp_put16(msg + 2, flags);
        return (int)len;
    }
    if (dp_get16(msg + 10) == UINT16_MAX)
        return DOTPROXY_EMALFORMED;
    size_t need = len + DP_EDNS_OPT_FIXED + opts_len;
    if (opts_len > cap - len || need > cap || need > DOTPROXY_DNS_MAX_SIZE)
        return DOTPROXY_ENOSPC;
    if (opts_len > 0)
        memmove(msg + len + DP_EDNS_OPT_FIXED, msg + len, opts_len);
    write_opt_fixed(msg + len, our_udp_size, 0, c->do_bit ? DOTPROXY_DNS_EDNS_DO : 0, opts_len);
    dp_put16(msg + 10, dp_get16(msg + 10) + 1u);
    dp_put16(msg + 2, flags);
    return (int)need;
}
