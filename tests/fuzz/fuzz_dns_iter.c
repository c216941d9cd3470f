/* SPDX-License-Identifier: MIT */
/* The whole input is one DNS message, as an embedder would read an answer:
 * the record iterator and every typed reader run over it, and must never
 * read outside it, loop, or hand out a record that disagrees with what
 * dotproxy_dns_parse() said about the message. */
#include <string.h>

#include "dotproxy/dns.h"
#include "dotproxy/error.h"
#include "fuzz.h"

static void check_text(int n, const char *text, size_t cap)
{
    FUZZ_CHECK(n > 0 || n == DOTPROXY_EMALFORMED || n == DOTPROXY_ENOSPC);
    if (n > 0) {
        FUZZ_CHECK((size_t)n < cap && strlen(text) == (size_t)n && text[n - 1] == '.');
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    dotproxy_dns_info info;
    dotproxy_dns_iter it;
    dotproxy_dns_rr rr;
    char text[DOTPROXY_DNS_NAME_TEXT_MAX];
    char tiny[8];

    int prc = dotproxy_dns_parse(&info, data, size);
    int rc = dotproxy_dns_iter_init(&it, data, size);
    FUZZ_CHECK(rc == prc);
    unsigned counts[4] = {0, 0, 0, 0};
    int last_section = 0;
    while (dotproxy_dns_iter_next(&it, &rr) == 1) {
        FUZZ_CHECK(rc == 0);
        FUZZ_CHECK(rr.section >= last_section && rr.section <= DOTPROXY_DNS_SECTION_ADDITIONAL);
        last_section = rr.section;
        counts[rr.section]++;
        FUZZ_CHECK(rr.msg == data && rr.msg_len == size && rr.name_off < size);
        if (rr.section == DOTPROXY_DNS_SECTION_QUESTION) {
            FUZZ_CHECK(rr.rdata == NULL && rr.rdlen == 0 && rr.ttl == 0);
        } else {
            FUZZ_CHECK(rr.rdata == data + rr.rdata_off);
            FUZZ_CHECK((size_t)rr.rdata_off + rr.rdlen <= size);
        }
        /* every owner of a parsed message reads as text */
        int n = dotproxy_dns_rr_name(&rr, text, sizeof text);
        FUZZ_CHECK(n > 0);
        check_text(n, text, sizeof text);
        check_text(dotproxy_dns_rr_name(&rr, tiny, sizeof tiny), tiny, sizeof tiny);

        uint8_t a[16];
        int r = dotproxy_dns_rr_a(&rr, a);
        FUZZ_CHECK(r == 0 || r == DOTPROXY_EINVAL);
        FUZZ_CHECK((r == 0) == (rr.type == 1 && rr.rclass == 1 && rr.rdlen == 4 &&
                                rr.section != DOTPROXY_DNS_SECTION_QUESTION));
        r = dotproxy_dns_rr_aaaa(&rr, a);
        FUZZ_CHECK((r == 0) == (rr.type == 28 && rr.rclass == 1 && rr.rdlen == 16 &&
                                rr.section != DOTPROXY_DNS_SECTION_QUESTION));
        r = dotproxy_dns_rr_cname(&rr, text, sizeof text);
        if (rr.section != DOTPROXY_DNS_SECTION_QUESTION && (rr.type == 5 || rr.type == 2))
            FUZZ_CHECK(r > 0); /* parse checked these names */
        if (r > 0)
            check_text(r, text, sizeof text);
        size_t pos = 0, sl = 0, total = 0;
        const uint8_t *s = NULL;
        while ((r = dotproxy_dns_rr_txt(&rr, &pos, &s, &sl)) == 1) {
            FUZZ_CHECK(s >= rr.rdata && s + sl <= rr.rdata + rr.rdlen);
            total += 1 + sl;
        }
        FUZZ_CHECK(r == 0 || r == DOTPROXY_EINVAL || r == DOTPROXY_EMALFORMED);
        if (r == 0)
            FUZZ_CHECK(total == rr.rdlen);
        dotproxy_dns_soa soa;
        r = dotproxy_dns_rr_soa(&rr, &soa);
        if (rr.section != DOTPROXY_DNS_SECTION_QUESTION && rr.type == 6)
            FUZZ_CHECK(r == 0);
        if (r == 0) {
            FUZZ_CHECK(dotproxy_dns_name_text(data, size, soa.mname_off, text, sizeof text) > 0);
            FUZZ_CHECK(dotproxy_dns_name_text(data, size, soa.rname_off, text, sizeof text) > 0);
        }
    }
    if (rc == 0) {
        FUZZ_CHECK(counts[0] == info.qdcount && counts[1] == info.ancount &&
                   counts[2] == info.nscount && counts[3] == info.arcount);
    } else {
        FUZZ_CHECK(counts[0] + counts[1] + counts[2] + counts[3] == 0);
    }
    /* names at every offset: bounded, never out of the message */
    if (size <= 512)
        for (size_t off = 0; off <= size; off++)
            check_text(dotproxy_dns_name_text(data, size, off, text, sizeof text), text,
                       sizeof text);
    return 0;
}
