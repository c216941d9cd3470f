/* SPDX-License-Identifier: MIT */
/* The whole input is one DNS message, as from a client or an upstream. Runs
 * every dns_msg entry point on it and checks what they promise: lengths
 * within buffers, replies and truncated answers that parse again, decisions
 * that agree with each other. */
#include <stdlib.h>
#include <string.h>

#include "dns_msg.h"
#include "dotproxy/dns.h"
#include "dotproxy/error.h"
#include "fuzz.h"

static void check_info(const dotproxy_dns_info *in, size_t size)
{
    FUZZ_CHECK(size >= DOTPROXY_DNS_HEADER_SIZE && size <= DOTPROXY_DNS_MAX_SIZE);
    if (in->qdcount > 0) {
        FUZZ_CHECK(in->qname_off == DOTPROXY_DNS_HEADER_SIZE);
        FUZZ_CHECK(in->qname_len >= 1 && in->qname_len <= DOTPROXY_DNS_MAX_NAME);
        FUZZ_CHECK(in->question_end > in->qname_off + 4u && in->question_end <= size);
    } else {
        FUZZ_CHECK(in->qname_off == 0 && in->qname_len == 0 && in->question_end == 0);
    }
    if (in->opt_off != 0) {
        FUZZ_CHECK(in->arcount > 0);
        FUZZ_CHECK(in->opt_len >= 11 && (size_t)in->opt_off + in->opt_len <= size);
    }
}

static void check_reply(const uint8_t *q, size_t qsize, const dotproxy_dns_info *qi, int qok)
{
    uint8_t *out = malloc(qsize + 11);
    FUZZ_CHECK(out != NULL);
    unsigned rcode = qsize > 3 ? (q[3] & 0xFu) : 2u;
    int n = dotproxy_dns_make_reply(out, qsize + 11, q, qsize, rcode);
    if (qsize < DOTPROXY_DNS_HEADER_SIZE) {
        FUZZ_CHECK(n == DOTPROXY_EMALFORMED);
        free(out);
        return;
    }
    FUZZ_CHECK(n >= DOTPROXY_DNS_HEADER_SIZE && (size_t)n <= qsize + 11);
    dotproxy_dns_info ri;
    FUZZ_CHECK(dotproxy_dns_parse(&ri, out, (size_t)n) == 0);
    FUZZ_CHECK(ri.id == dotproxy_dns_get_id(q, qsize));
    FUZZ_CHECK((ri.flags & DOTPROXY_DNS_FLAG_QR) && DOTPROXY_DNS_RCODE(ri.flags) == rcode);
    FUZZ_CHECK(ri.ancount == 0 && ri.nscount == 0 && ri.qdcount <= 1);
    if (qok) {
        FUZZ_CHECK((ri.opt_off != 0) == (qi->opt_off != 0));
        if (qi->qdcount > 0)
            FUZZ_CHECK(dotproxy_dns_same_question(out, (size_t)n, q, qsize) == 1);
    }
    /* the flags a reply carries: RA, RD and CD for a standard query only */
    unsigned qflags = (unsigned)((q[2] << 8) | q[3]);
    if (DOTPROXY_DNS_OPCODE(qflags) != 0)
        FUZZ_CHECK((ri.flags & ~(DOTPROXY_DNS_FLAG_QR | 0x780Fu)) == 0);
    else
        FUZZ_CHECK((ri.flags & DOTPROXY_DNS_FLAG_RA) != 0);
    /* an extended rcode (BADVERS) only with the query's OPT, in the reply's */
    int bv = dotproxy_dns_make_reply(out, qsize + 11, q, qsize, DOTPROXY_RCODE_BADVERS);
    if (qok && qi->opt_off != 0) {
        FUZZ_CHECK(bv == n);
        FUZZ_CHECK(dotproxy_dns_parse(&ri, out, (size_t)bv) == 0);
        FUZZ_CHECK(DOTPROXY_DNS_RCODE(ri.flags) == 0 && ri.ext_rcode == 1 && ri.edns_version == 0);
    } else {
        FUZZ_CHECK(bv == DOTPROXY_EINVAL);
    }
    /* one octet short of what it needed: ENOSPC, never a write past cap */
    uint8_t *tight = malloc((size_t)n - 1);
    FUZZ_CHECK(tight != NULL);
    FUZZ_CHECK(dotproxy_dns_make_reply(tight, (size_t)n - 1, q, qsize, rcode) == DOTPROXY_ENOSPC);
    free(tight);
    free(out);
}

static void check_truncate(const uint8_t *data, size_t size, const dotproxy_dns_info *qi, int qok,
                           size_t limit)
{
    uint8_t *copy = malloc(size > 0 ? size : 1);
    FUZZ_CHECK(copy != NULL);
    if (size > 0)
        memcpy(copy, data, size);
    int n = dotproxy_dns_truncate(copy, size, limit);
    if (size <= limit && size <= DOTPROXY_DNS_MAX_SIZE) {
        FUZZ_CHECK(n == (int)size && (size == 0 || memcmp(copy, data, size) == 0));
    } else if (!qok) {
        FUZZ_CHECK(n == DOTPROXY_EMALFORMED);
    } else if (n == DOTPROXY_ENOSPC) {
        FUZZ_CHECK(memcmp(copy, data, size) == 0);
    } else {
        dotproxy_dns_info ti;
        FUZZ_CHECK(n >= DOTPROXY_DNS_HEADER_SIZE && (size_t)n <= limit);
        FUZZ_CHECK(dotproxy_dns_parse(&ti, copy, (size_t)n) == 0);
        FUZZ_CHECK(ti.flags == (qi->flags | DOTPROXY_DNS_FLAG_TC));
        FUZZ_CHECK(ti.qdcount == qi->qdcount && ti.question_end == qi->question_end);
        FUZZ_CHECK(ti.ancount == 0 && ti.nscount == 0);
        FUZZ_CHECK((ti.opt_off != 0) == (qi->opt_off != 0));
        if (qi->opt_off != 0)
            FUZZ_CHECK(ti.udp_size == qi->udp_size && ti.edns_flags == qi->edns_flags &&
                       ti.opt_len == qi->opt_len);
    }
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    dotproxy_dns_info info;
    memset(&info, 0, sizeof(info));
    int rc = dotproxy_dns_parse(&info, data, size);
    FUZZ_CHECK(rc == 0 || rc == DOTPROXY_EMALFORMED);
    int ok = rc == 0;
    if (ok) {
        check_info(&info, size);
        unsigned lim = dotproxy_dns_udp_limit(&info);
        FUZZ_CHECK(lim >= DOTPROXY_DNS_UDP_MIN && lim <= 65535);
    }
    FUZZ_CHECK(dotproxy_dns_same_question(data, size, data, size) == (ok && info.qdcount > 0));

    if (ok && info.qdcount > 0) {
        uint8_t name[DOTPROXY_DNS_MAX_NAME];
        size_t next = 0;
        int n = dp_dns_msg_name_lower(data, size, info.qname_off, name, &next);
        FUZZ_CHECK(n == info.qname_len && next + 4 == info.question_end);
        for (int i = 0; i < n; i++)
            FUZZ_CHECK(!(name[i] >= 'A' && name[i] <= 'Z'));
        FUZZ_CHECK(name[n - 1] == 0);
    }
    /* Every offset of the message as a name start: bounded, never reads out. */
    if (size <= 512) { /* bounded: keeps the exec rate up */
        for (size_t off = 0; off <= size; off++) {
            uint8_t name[DOTPROXY_DNS_MAX_NAME];
            size_t next = 0;
            int n = dp_dns_msg_name_lower(data, size, off, name, &next);
            if (n > 0) {
                FUZZ_CHECK(n <= DOTPROXY_DNS_MAX_NAME && next > off && next <= size);
                FUZZ_CHECK(dp_dns_msg_skip_name(data, size, off) == (int)next);
            }
        }
    }

    check_reply(data, size, &info, ok);
    check_truncate(data, size, &info, ok, DOTPROXY_DNS_UDP_MIN);
    check_truncate(data, size, &info, ok, size / 2);
    return 0;
}
