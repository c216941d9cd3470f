/* SPDX-License-Identifier: MIT */
/* Building queries from a name in text, and reading a message record by
 * record (RFC 1035 3.2, 3.3, 4.1; RFC 6891 for the OPT RR). Reading never
 * trusts the bytes: a message is validated whole by dns_msg.c before the
 * first record is handed out, and every name is read again through its
 * bounded walk, so no pointer chain can loop or leave the message. */
#include <stdatomic.h>
#include <string.h>

#include "bytes.h"
#include "dns_msg.h"
#include "dotproxy/dns.h"
#include "dotproxy/error.h"
#include "prng.h"

#define HDR          DOTPROXY_DNS_HEADER_SIZE
#define RR_FIXED     10u
#define MAX_LABEL    63u
#define DEFAULT_EDNS 1232u /* DNS flag day 2020 */

/* ---- building ---------------------------------------------------------- */

/* Query IDs only need to look random to the outside (the library rewrites
 * them on the wire anyway), so the context-free builder draws them from the
 * library's SplitMix64 (prng.h), never rand(). One state for the process,
 * advanced atomically: SplitMix64's state is a Weyl sequence, so taking a
 * step is one fetch-and-add and the scrambling runs on a private copy; any
 * thread may build queries, with no lock and no thread-local storage (which
 * would tie the library to the dynamic loader's TLS). */
#define WEYL_STEP 0x9e3779b97f4a7c15u /* prng.c's step */

static _Atomic uint64_t id_state;
static atomic_int id_seeded;

static uint16_t random_id(void)
{
    if (!atomic_load_explicit(&id_seeded, memory_order_acquire)) {
        struct dp_prng seed;
        dp_prng_seed_random(&seed);
        uint64_t unset = 0;
        /* The first thread here seeds; a racing one keeps its seed. */
        atomic_compare_exchange_strong(&id_state, &unset, seed.state | 1u);
        atomic_store_explicit(&id_seeded, 1, memory_order_release);
    }
    struct dp_prng step = {atomic_fetch_add(&id_state, WEYL_STEP)};
    return (uint16_t)dp_prng_next(&step);
}

/* The text name as wire labels into out[0..DOTPROXY_DNS_MAX_NAME). Returns
 * the wire length or DOTPROXY_EINVAL. */
static int name_from_text(const char *s, uint8_t *out)
{
    size_t n = 1;      /* octets written; out[0] is the first label's length */
    size_t label = 0;  /* where the current label's length octet is */
    size_t lablen = 0; /* octets in the current label */

    if (s[0] == '\0')
        return DOTPROXY_EINVAL;
    if (s[0] == '.' && s[1] == '\0') {
        out[0] = 0;
        return 1;
    }
    for (const char *p = s;; p++) {
        if (*p == '\0' || *p == '.') {
            if (lablen == 0) /* "a..b", ".a", "a.." */
                return DOTPROXY_EINVAL;
            out[label] = (uint8_t)lablen;
            if (*p == '\0' || p[1] == '\0') /* "a.b" or "a.b." */
                break;
            if (n >= DOTPROXY_DNS_MAX_NAME - 1)
                return DOTPROXY_EINVAL;
            label = n;
            out[n++] = 0;
            lablen = 0;
            continue;
        }
        unsigned c = (unsigned char)*p;
        if (c == '\\') {
            if (p[1] >= '0' && p[1] <= '9') {
                if (!(p[2] >= '0' && p[2] <= '9' && p[3] >= '0' && p[3] <= '9'))
                    return DOTPROXY_EINVAL;
                c = (unsigned)((p[1] - '0') * 100 + (p[2] - '0') * 10 + (p[3] - '0'));
                if (c > 255)
                    return DOTPROXY_EINVAL;
                p += 3;
            } else if (p[1] != '\0') {
                c = (unsigned char)p[1];
                p++;
            } else {
                return DOTPROXY_EINVAL;
            }
        }
        /* keep room for the root octet within 255 */
        if (lablen == MAX_LABEL || n >= DOTPROXY_DNS_MAX_NAME - 1)
            return DOTPROXY_EINVAL;
        out[n++] = (uint8_t)c;
        lablen++;
    }
    out[n++] = 0;
    return (int)n;
}

DOTPROXY_EXPORT int dotproxy_dns_build_query(uint8_t *out, size_t cap, const char *name,
                                             uint16_t qtype, uint16_t qclass, unsigned opts,
                                             uint16_t id, uint16_t udp_size)
{
    uint8_t wire[DOTPROXY_DNS_MAX_NAME];

    if (out == NULL || name == NULL)
        return DOTPROXY_EINVAL;
    int wlen = name_from_text(name, wire);
    if (wlen < 0)
        return wlen;
    int edns = (opts & (DOTPROXY_DNS_Q_EDNS | DOTPROXY_DNS_Q_DO)) != 0;
    size_t need = HDR + (size_t)wlen + 4 + (edns ? 11u : 0u);
    if (cap < need)
        return DOTPROXY_ENOSPC;

    unsigned flags = 0;
    if (opts & DOTPROXY_DNS_Q_RD)
        flags |= DOTPROXY_DNS_FLAG_RD;
    if (opts & DOTPROXY_DNS_Q_CD)
        flags |= DOTPROXY_DNS_FLAG_CD;
    dp_put16(out, (opts & DOTPROXY_DNS_Q_ID) ? id : random_id());
    dp_put16(out + 2, flags);
    dp_put16(out + 4, 1);
    dp_put16(out + 6, 0);
    dp_put16(out + 8, 0);
    dp_put16(out + 10, edns ? 1 : 0);
    memcpy(out + HDR, wire, (size_t)wlen);
    uint8_t *p = out + HDR + wlen;
    dp_put16(p, qtype);
    dp_put16(p + 2, qclass);
    if (edns) {
        unsigned size = udp_size == 0 ? DEFAULT_EDNS : udp_size;
        if (size < DOTPROXY_DNS_UDP_MIN)
            size = DOTPROXY_DNS_UDP_MIN;
        p += 4;
        p[0] = 0; /* root owner */
        dp_put16(p + 1, DOTPROXY_DNS_TYPE_OPT);
        dp_put16(p + 3, size);
        p[5] = 0; /* extended rcode */
        p[6] = 0; /* version 0 */
        dp_put16(p + 7, (opts & DOTPROXY_DNS_Q_DO) ? DOTPROXY_DNS_EDNS_DO : 0);
        dp_put16(p + 9, 0); /* no options */
    }
    return (int)need;
}

/* ---- reading ----------------------------------------------------------- */

DOTPROXY_EXPORT int dotproxy_dns_iter_init(dotproxy_dns_iter *it, const uint8_t *msg, size_t len)
{
    dotproxy_dns_info info;

    if (it == NULL || msg == NULL)
        return DOTPROXY_EINVAL;
    memset(it, 0, sizeof *it);
    int rc = dotproxy_dns_parse(&info, msg, len);
    if (rc < 0)
        return rc; /* left all zero: next() says "no more" */
    it->msg = msg;
    it->len = len;
    it->pos = HDR;
    it->left[0] = info.qdcount;
    it->left[1] = info.ancount;
    it->left[2] = info.nscount;
    it->left[3] = info.arcount;
    it->section = DOTPROXY_DNS_SECTION_QUESTION;
    return 0;
}

DOTPROXY_EXPORT int dotproxy_dns_iter_next(dotproxy_dns_iter *it, dotproxy_dns_rr *rr)
{
    if (it == NULL || rr == NULL)
        return DOTPROXY_EINVAL;
    if (it->msg == NULL)
        return 0;
    while (it->section <= DOTPROXY_DNS_SECTION_ADDITIONAL && it->left[it->section] == 0)
        it->section++;
    if (it->section > DOTPROXY_DNS_SECTION_ADDITIONAL)
        return 0;
    /* The message parsed whole, so these cannot fail; checked all the same,
     * so a caller who changed the bytes under us gets an end, not a crash. */
    int end = dp_dns_msg_skip_name(it->msg, it->len, it->pos);
    size_t fixed = it->section == DOTPROXY_DNS_SECTION_QUESTION ? 4u : RR_FIXED;
    if (end < 0 || it->len - (size_t)end < fixed) {
        it->msg = NULL;
        return 0;
    }
    const uint8_t *f = it->msg + end;
    memset(rr, 0, sizeof *rr);
    rr->msg = it->msg;
    rr->msg_len = it->len;
    rr->section = it->section;
    rr->name_off = (uint16_t)it->pos;
    rr->type = dp_get16(f);
    rr->rclass = dp_get16(f + 2);
    if (it->section == DOTPROXY_DNS_SECTION_QUESTION) {
        it->pos = (size_t)end + 4;
    } else {
        size_t rd = (size_t)end + RR_FIXED;
        size_t rdlen = dp_get16(f + 8);
        if (it->len - rd < rdlen) {
            it->msg = NULL;
            return 0;
        }
        rr->ttl = dp_get32(f + 4);
        rr->rdata_off = (uint16_t)rd;
        rr->rdlen = (uint16_t)rdlen;
        rr->rdata = it->msg + rd;
        it->pos = rd + rdlen;
    }
    it->left[it->section]--;
    return 1;
}

/* Whether an octet of a label needs a backslash in presentation form
 * (RFC 1035 5.1: the master-file specials, and the escape itself). */
static int special(uint8_t c)
{
    return c == '.' || c == '\\' || c == '"' || c == '(' || c == ')' || c == ';' || c == '@' ||
           c == '$';
}

DOTPROXY_EXPORT int dotproxy_dns_name_text(const uint8_t *msg, size_t len, size_t off, char *buf,
                                           size_t cap)
{
    uint8_t lower[DOTPROXY_DNS_MAX_NAME];

    if (msg == NULL || buf == NULL)
        return DOTPROXY_EINVAL;
    /* The bounded walk first (pointer rules, hop cap, 255 octets): after
     * it, following the name again cannot loop or leave the message. */
    if (dp_dns_msg_name_lower(msg, len, off, lower, NULL) < 0)
        return DOTPROXY_EMALFORMED;
    size_t n = 0;
    size_t pos = off;
    for (unsigned steps = 0; steps < 2 * DOTPROXY_DNS_MAX_NAME; steps++) {
        unsigned c = msg[pos];
        if ((c & 0xC0) == 0xC0) {
            pos = ((size_t)(c & 0x3F) << 8) | msg[pos + 1];
            continue;
        }
        if (c == 0) {
            if (n == 0) {
                if (cap < 2)
                    return DOTPROXY_ENOSPC;
                buf[n++] = '.';
            }
            buf[n] = '\0';
            return (int)n;
        }
        for (size_t i = 1; i <= c; i++) {
            uint8_t o = msg[pos + i];
            if (o < 0x21 || o > 0x7E) {
                if (cap - n < 5)
                    return DOTPROXY_ENOSPC;
                buf[n++] = '\\';
                buf[n++] = (char)('0' + o / 100);
                buf[n++] = (char)('0' + o / 10 % 10);
                buf[n++] = (char)('0' + o % 10);
            } else {
                if (cap - n < 3)
                    return DOTPROXY_ENOSPC;
                if (special(o))
                    buf[n++] = '\\';
                buf[n++] = (char)o;
            }
        }
        if (cap - n < 2)
            return DOTPROXY_ENOSPC;
        buf[n++] = '.';
        pos += 1 + c;
    }
    return DOTPROXY_EMALFORMED; /* not reached: the walk above bounds the hops */
}

DOTPROXY_EXPORT int dotproxy_dns_rr_name(const dotproxy_dns_rr *rr, char *buf, size_t cap)
{
    if (rr == NULL || rr->msg == NULL)
        return DOTPROXY_EINVAL;
    return dotproxy_dns_name_text(rr->msg, rr->msg_len, rr->name_off, buf, cap);
}

static int is_record(const dotproxy_dns_rr *rr, uint16_t type)
{
    return rr != NULL && rr->msg != NULL && rr->section != DOTPROXY_DNS_SECTION_QUESTION &&
           rr->type == type;
}

DOTPROXY_EXPORT int dotproxy_dns_rr_a(const dotproxy_dns_rr *rr, uint8_t out[4])
{
    if (out == NULL || !is_record(rr, DOTPROXY_DNS_TYPE_A) || rr->rclass != DOTPROXY_DNS_CLASS_IN ||
        rr->rdlen != 4)
        return DOTPROXY_EINVAL;
    memcpy(out, rr->rdata, 4);
    return 0;
}

DOTPROXY_EXPORT int dotproxy_dns_rr_aaaa(const dotproxy_dns_rr *rr, uint8_t out[16])
{
    if (out == NULL || !is_record(rr, DOTPROXY_DNS_TYPE_AAAA) ||
        rr->rclass != DOTPROXY_DNS_CLASS_IN || rr->rdlen != 16)
        return DOTPROXY_EINVAL;
    memcpy(out, rr->rdata, 16);
    return 0;
}

DOTPROXY_EXPORT int dotproxy_dns_rr_cname(const dotproxy_dns_rr *rr, char *buf, size_t cap)
{
    if (!is_record(rr, DOTPROXY_DNS_TYPE_CNAME) && !is_record(rr, DOTPROXY_DNS_TYPE_NS) &&
        !is_record(rr, DOTPROXY_DNS_TYPE_PTR))
        return DOTPROXY_EINVAL;
    if (rr->rdlen == 0 ||
        dp_dns_msg_skip_name(rr->msg, rr->msg_len, rr->rdata_off) != (int)rr->rdata_off + rr->rdlen)
        return DOTPROXY_EMALFORMED;
    return dotproxy_dns_name_text(rr->msg, rr->msg_len, rr->rdata_off, buf, cap);
}

DOTPROXY_EXPORT int dotproxy_dns_rr_txt(const dotproxy_dns_rr *rr, size_t *pos, const uint8_t **str,
                                        size_t *len)
{
    if (!is_record(rr, DOTPROXY_DNS_TYPE_TXT) || pos == NULL || str == NULL || len == NULL)
        return DOTPROXY_EINVAL;
    if (*pos >= rr->rdlen)
        return 0;
    size_t n = rr->rdata[*pos];
    if (rr->rdlen - *pos - 1 < n)
        return DOTPROXY_EMALFORMED;
    *str = rr->rdata + *pos + 1;
    *len = n;
    *pos += 1 + n;
    return 1;
}

DOTPROXY_EXPORT int dotproxy_dns_rr_soa(const dotproxy_dns_rr *rr, dotproxy_dns_soa *out)
{
    if (out == NULL || !is_record(rr, DOTPROXY_DNS_TYPE_SOA))
        return DOTPROXY_EINVAL;
    size_t rdend = (size_t)rr->rdata_off + rr->rdlen;
    int m = dp_dns_msg_skip_name(rr->msg, rr->msg_len, rr->rdata_off);
    if (m < 0 || (size_t)m >= rdend)
        return DOTPROXY_EMALFORMED;
    int r = dp_dns_msg_skip_name(rr->msg, rr->msg_len, (size_t)m);
    if (r < 0 || (size_t)r > rdend || rdend - (size_t)r != 20)
        return DOTPROXY_EMALFORMED;
    const uint8_t *c = rr->msg + r;
    out->mname_off = rr->rdata_off;
    out->rname_off = (uint16_t)m;
    out->serial = dp_get32(c);
    out->refresh = dp_get32(c + 4);
    out->retry = dp_get32(c + 8);
    out->expire = dp_get32(c + 12);
    out->minimum = dp_get32(c + 16);
    return 0;
}
