/* SPDX-License-Identifier: MIT */
/* The per-hop EDNS rewrite (lib/edns.c) on any message, above all on OPT RRs
 * that are not last, whose following records move. Input: one control octet
 * (which rewrite, the client's EDNS, keep-ecs, padding), then the message.
 * Promises checked: the output parses; every record other than the OPT, and
 * every name in it, reads exactly as before (compression pointers re-aimed);
 * the OPT, when there is one, is last; a refused message is left untouched. */
#include <stdlib.h>
#include <string.h>

#include "dns_msg.h"
#include "dotproxy/dns.h"
#include "dotproxy/error.h"
#include "edns.h"
#include "fuzz.h"

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

static uint64_t mix(uint64_t h, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull; /* FNV-1a */
    return h;
}

static uint64_t mix_name(uint64_t h, const uint8_t *msg, size_t len, size_t off)
{
    uint8_t name[DOTPROXY_DNS_MAX_NAME];
    int n = dp_dns_msg_name_lower(msg, len, off, name, NULL);
    FUZZ_CHECK(n > 0);
    return mix(h, name, (size_t)n);
}

/* A digest of every record but the OPT, as a reader decodes it: owner,
 * type, class, TTL, and RDATA with the names of the types the parser
 * checks decoded (so where a pointer aims does not matter, what it reads
 * does). Counts the records too. */
static uint64_t digest(const uint8_t *msg, size_t len, unsigned *rrs)
{
    dotproxy_dns_info in;
    FUZZ_CHECK(dotproxy_dns_parse(&in, msg, len) == 0);
    uint64_t h = 0xcbf29ce484222325ull;
    h = mix(h, msg + 4, 2); /* QDCOUNT; the question is never touched */
    if (in.qdcount > 0)
        h = mix(h, msg + DOTPROXY_DNS_HEADER_SIZE, in.question_end - DOTPROXY_DNS_HEADER_SIZE);
    size_t pos = in.qdcount > 0 ? in.question_end : DOTPROXY_DNS_HEADER_SIZE;
    for (unsigned q = 1; q < in.qdcount; q++)
        pos = (size_t)dp_dns_msg_skip_name(msg, len, pos) + 4;
    unsigned total = (unsigned)in.ancount + in.nscount + in.arcount;
    *rrs = 0;
    for (unsigned i = 0; i < total; i++) {
        size_t owner = pos;
        int next = dp_dns_msg_skip_name(msg, len, pos);
        FUZZ_CHECK(next > 0);
        size_t f = (size_t)next;
        unsigned type = get16(msg + f);
        size_t rd = f + 10, rdlen = get16(msg + f + 8);
        pos = rd + rdlen;
        if (type == 41)
            continue;
        (*rrs)++;
        h = mix_name(h, msg, len, owner);
        h = mix(h, msg + f, 8);
        switch (type) {
        case 2:
        case 3:
        case 4:
        case 5:
        case 7:
        case 8:
        case 9:
        case 12: h = mix_name(h, msg, len, rd); break;
        case 15:
            h = mix(h, msg + rd, 2);
            h = mix_name(h, msg, len, rd + 2);
            break;
        case 6: {
            int e = dp_dns_msg_skip_name(msg, len, rd);
            FUZZ_CHECK(e > 0);
            h = mix_name(h, msg, len, rd);
            h = mix_name(h, msg, len, (size_t)e);
            e = dp_dns_msg_skip_name(msg, len, (size_t)e);
            h = mix(h, msg + e, 20);
            break;
        }
        case 17:
        case 18:
        case 21:
        case 33:
            /* names re-aimed where they read (RFC 3597 4 types), else left:
             * the octets may change, only their length is promised */
            h = mix(h, msg + f + 8, 2);
            break;
        default: h = mix(h, msg + rd, rdlen);
        }
    }
    return h;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size - 1 > DOTPROXY_DNS_MAX_SIZE)
        return 0;
    unsigned ctl = data[0];
    size_t len = size - 1;
    size_t cap = len + 1024;
    uint8_t *msg = malloc(cap);
    uint8_t *orig = malloc(len + 1);
    FUZZ_CHECK(msg != NULL && orig != NULL);
    memcpy(msg, data + 1, len);
    memcpy(orig, data + 1, len);

    dotproxy_dns_info in;
    int parsed = dotproxy_dns_parse(&in, msg, len) == 0;
    unsigned rrs_before = 0, rrs_after = 0;
    uint64_t before = parsed ? digest(msg, len, &rrs_before) : 0;
    int keep_ecs = (ctl >> 3) & 1;
    int n;

    if (ctl & 1) {
        /* query towards an upstream */
        if (!parsed)
            goto out;
        struct dp_edns_upstream_opts o = {1232, (ctl & 2) ? 128 : 0, (uint8_t)keep_ecs,
                                          (uint8_t)((ctl >> 2) & 1)};
        n = dp_edns_query_for_upstream(msg, len, cap, &in, &o);
        if (n < 0) {
            FUZZ_CHECK(memcmp(msg, orig, len) == 0);
            goto out;
        }
        FUZZ_CHECK((size_t)n <= cap);
        dotproxy_dns_info out;
        FUZZ_CHECK(dotproxy_dns_parse(&out, msg, (size_t)n) == 0);
        FUZZ_CHECK(out.opt_off != 0 && (size_t)out.opt_off + out.opt_len == (size_t)n);
        if (o.pad_block > 0)
            FUZZ_CHECK((size_t)n % o.pad_block == 0);
    } else {
        /* answer towards a client */
        struct dp_edns_client c = {0};
        c.had_opt = (ctl >> 1) & 1;
        c.do_bit = c.had_opt && ((ctl >> 2) & 1);
        c.ad_bit = (ctl >> 4) & 1;
        c.udp_size = c.had_opt ? 1232 : 0;
        uint16_t ka = 0;
        n = dp_edns_answer_for_client(msg, len, cap, &c, 1232, keep_ecs, &ka);
        if (!parsed) {
            FUZZ_CHECK(n == DOTPROXY_EMALFORMED);
            goto out;
        }
        if (n < 0) {
            FUZZ_CHECK(memcmp(msg, orig, len) == 0);
            goto out;
        }
        FUZZ_CHECK((size_t)n <= cap);
        dotproxy_dns_info out;
        FUZZ_CHECK(dotproxy_dns_parse(&out, msg, (size_t)n) == 0);
        FUZZ_CHECK((out.opt_off != 0) == (c.had_opt != 0));
        if (out.opt_off != 0)
            FUZZ_CHECK((size_t)out.opt_off + out.opt_len == (size_t)n);
    }
    FUZZ_CHECK(digest(msg, (size_t)n, &rrs_after) == before);
    FUZZ_CHECK(rrs_after == rrs_before);
out:
    free(orig);
    free(msg);
    return 0;
}
