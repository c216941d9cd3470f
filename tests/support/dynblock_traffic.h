/* SPDX-License-Identifier: MIT */
/* Queries and answers for driving lib/dynblock.c's hooks directly, shared by
 * its unit tests (tests/unit/test_dynblock.c) and its cost benchmark
 * (bench/dynblock_cost.c): a question built from a dotted name, the answer
 * to it with a chosen rcode and size, and a state made from rule texts.
 * Header only (static functions): the unit tests and the bench are built
 * apart, and neither links tests/support. */
#ifndef DP_TEST_DYNBLOCK_TRAFFIC_H
#define DP_TEST_DYNBLOCK_TRAFFIC_H

#include <stdint.h>
#include <string.h>

#include "dotproxy/config.h"
#include "dotproxy/dns.h"
#include "dynblock.h"

struct dp_test_q {
    uint8_t msg[300];
    size_t len;
    dotproxy_dns_info info;
};

/* A query (RD set, one question, class IN) for the dotted name, parsed
 * into q->info. 0, or -1 when the name does not fit or does not parse. */
static inline int dp_test_q_make(struct dp_test_q *q, unsigned id, const char *name, unsigned qtype)
{
    uint8_t *m = q->msg;
    memset(m, 0, 12);
    m[0] = (uint8_t)(id >> 8), m[1] = (uint8_t)id, m[2] = 0x01, m[5] = 1;
    size_t o = 12;
    const char *p = name;
    while (*p) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        if (n == 0 || n > 63 || o + 1 + n + 5 > sizeof q->msg)
            return -1;
        m[o++] = (uint8_t)n;
        memcpy(m + o, p, n);
        o += n;
        p += n;
        if (*p == '.')
            p++;
    }
    m[o++] = 0;
    m[o++] = (uint8_t)(qtype >> 8), m[o++] = (uint8_t)qtype;
    m[o++] = 0, m[o++] = 1;
    q->len = o;
    return dotproxy_dns_parse(&q->info, q->msg, q->len) == 0 ? 0 : -1;
}

/* An answer to q with the given rcode, padded with zeros to len octets
 * (len >= q->len; the hooks read the header and the length only). */
static inline size_t dp_test_q_answer(uint8_t *out, const struct dp_test_q *q, unsigned rcode,
                                      size_t len)
{
    memset(out, 0, len);
    memcpy(out, q->msg, q->len);
    out[2] |= 0x80;
    out[3] = (uint8_t)(0x80 | rcode);
    return len;
}

/* A state from rule texts and exempt CIDRs (each NULL-terminated, or
 * NULL), its clock starting at 0. NULL if one does not parse or on ENOMEM. */
static inline struct dotproxy_dynblock *dp_test_dynblock_make(const char *const *rules,
                                                              const char *const *exempt)
{
    dotproxy_config *cfg;
    if (dotproxy_config_new(&cfg) != 0)
        return NULL;
    struct dotproxy_dynblock *db = NULL;
    int ok = 1;
    for (size_t i = 0; ok && rules != NULL && rules[i] != NULL; i++)
        ok = dotproxy_config_add_dynblock(cfg, rules[i]) == 0;
    for (size_t i = 0; ok && exempt != NULL && exempt[i] != NULL; i++)
        ok = dotproxy_config_add_dynblock_exempt(cfg, exempt[i]) == 0;
    if (ok && dp_dynblock_new(&db, cfg, 0) != 0)
        db = NULL;
    dotproxy_config_free(cfg);
    return db;
}

#endif
