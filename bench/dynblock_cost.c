/* SPDX-License-Identifier: MIT */
/* dynblock_cost: what the anomaly detectors add to each query, with every
 * rule enabled (qps, nxdomain, servfail, bytes, qtype, subdomains, tunnel),
 * through the three hooks the pipeline calls: dp_dynblock_query for every
 * query, dp_dynblock_miss for the share that misses the cache, and
 * dp_dynblock_answer for every answer.
 *
 * Not part of the meson build (bench/ belongs to its scripts). Build by
 * hand from the repository root, against any meson build dir B of the tree:
 *
 *   B=build && ninja -C $B lib/libdotproxy_internal.a && \
 *   cc -std=c11 -O2 -g -Wall -Wextra -Werror -pthread -Ilib -Iinclude -I$B/include \
 *      bench/dynblock_cost.c $B/lib/libdotproxy_internal.a -lgnutls -lm -o /tmp/dynblock_cost
 *   /tmp/dynblock_cost [QUERIES] [CLIENTS] [MISS_PERCENT] [THREADS] [all|defaults]
 *
 * Traffic: CLIENTS addresses (default 10,000) asking 3,000 ordinary names
 * (www/mail/api... under 600 domains, qtype mix A/AAAA/HTTPS/MX/TXT) plus
 * 2% tunnel-like queries (base32 labels, TXT); MISS_PERCENT (default 30) of
 * queries go through the miss hook; the clock advances 10 µs per query
 * (100,000 qps). Prints CPU ns per query (the best of 5 runs), or
 * run it under valgrind --tool=callgrind with QUERIES small to count
 * instructions. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dotproxy/config.h"
#include "dotproxy/dns.h"
#include "dynblock.h"

struct q {
    uint8_t msg[300];
    size_t len;
    dotproxy_dns_info info;
};

static void mkq(struct q *q, unsigned id, const char *name, unsigned qtype)
{
    uint8_t *m = q->msg;
    memset(m, 0, 12);
    m[0] = (uint8_t)(id >> 8), m[1] = (uint8_t)id, m[2] = 0x01, m[5] = 1;
    size_t o = 12;
    const char *p = name;
    while (*p) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
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
    if (dotproxy_dns_parse(&q->info, q->msg, q->len) != 0)
        abort();
}

#define NQ 4096

static struct q qs[NQ];
static uint8_t ans[NQ][200];
static size_t anslen[NQ];
/* The cache key's hash the pipeline hands the miss hook. */
static uint64_t namehash[NQ];

static double now_s(void)
{
    struct timespec ts;
    /* CPU time, not wall time: on a shared machine the wall clock counts
     * the other jobs' turns too. */
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct run {
    struct dotproxy_dynblock *db;
    unsigned long n, clients, miss, seed;
};

static void *drive(void *arg)
{
    struct run *r = arg;
    struct sockaddr_in sa = {.sin_family = AF_INET};
    uint64_t t = 1000000;
    uint32_t x = (uint32_t)r->seed;
    for (unsigned long i = 0; i < r->n; i++) {
        x = x * 1664525u + 1013904223u;
        unsigned k = (x >> 8) % NQ;
        sa.sin_addr.s_addr = htonl(0x0a000000u + (x >> 3) % r->clients);
        t += 10;
        const struct sockaddr *s = (const struct sockaddr *)&sa;
        uint32_t slot;
        int v = dp_dynblock_query(r->db, s, qs[k].msg, &qs[k].info, t, &slot);
        if (v == DP_DYNBLOCK_PASS && (x >> 24) % 100 < r->miss)
            v = dp_dynblock_miss(r->db, s, qs[k].msg, &qs[k].info, namehash[k], t);
        if (v == DP_DYNBLOCK_PASS)
            dp_dynblock_answer(r->db, s, ans[k], anslen[k], 1, qs[k].info.qtype, t, slot);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    unsigned long n = argc > 1 ? strtoul(argv[1], NULL, 10) : 2000000;
    unsigned long clients = argc > 2 ? strtoul(argv[2], NULL, 10) : 10000;
    unsigned long miss = argc > 3 ? strtoul(argv[3], NULL, 10) : 30;
    unsigned long threads = argc > 4 ? strtoul(argv[4], NULL, 10) : 1;
    /* "defaults": no rule given (subdomains and tunnel in log mode). */
    int defaults = argc > 5 && strcmp(argv[5], "defaults") == 0;
    static const char *const rules[] = {
        "qps>1000,action=refuse",      "nxdomain>500,action=refuse",
        "servfail>500,action=drop",    "bytes>2000000,action=truncate",
        "qtype:ANY>100,action=refuse", "subdomains>1000,action=refuse",
        "tunnel>0.95,action=drop",     NULL};
    dotproxy_config *cfg;
    if (dotproxy_config_new(&cfg) != 0)
        return 1;
    for (int i = 0; !defaults && rules[i] != NULL; i++)
        if (dotproxy_config_add_dynblock(cfg, rules[i]) != 0)
            return 1;
    static const char *const hosts[] = {"www", "mail",  "api", "cdn", "static",
                                        "img", "login", "m",   "app", "shop"};
    /* The evaluation's benign mix: A 60%, AAAA 25%, HTTPS 8%, MX 3%, TXT 2%,
     * PTR 2% (bench/anomaly_gen.py). */
    static const unsigned types[] = {1, 28, 65, 15, 16, 12};
    static const unsigned share[] = {60, 85, 93, 96, 98, 100};
    srand(1);
    for (unsigned i = 0; i < NQ; i++) {
        char name[160];
        unsigned qt;
        if (i % 50 == 0) {
            char lab[64];
            for (int j = 0; j < 55; j++)
                lab[j] = "abcdefghijklmnopqrstuvwxyz234567"[rand() % 32];
            lab[55] = 0;
            snprintf(name, sizeof name, "%s.t.example.com", lab);
            qt = 16;
        } else {
            snprintf(name, sizeof name, "%s.site%u.%s", hosts[rand() % 10], rand() % 600,
                     rand() % 3 ? "com" : "co.uk");
            unsigned r = (unsigned)rand() % 100, t = 0;
            while (r >= share[t])
                t++;
            qt = types[t];
        }
        mkq(&qs[i], i, name, qt);
        namehash[i] = 0x9e3779b97f4a7c15ull * (i + 1) ^ (uint64_t)qt << 17;
        memcpy(ans[i], qs[i].msg, qs[i].len);
        ans[i][2] |= 0x80;
        ans[i][3] = (uint8_t)(0x80 | (i % 12 == 0 ? 3 : 0));
        anslen[i] = qs[i].len + 16 + (qt == 16 ? 60 : 0);
    }
    double best = 1e9;
    for (int rep = 0; rep < 5; rep++) {
        struct dotproxy_dynblock *db;
        if (dp_dynblock_new(&db, cfg, 0) != 0)
            return 1;
        struct run r[64];
        pthread_t tid[64];
        if (threads > 64)
            threads = 64;
        double t0 = now_s();
        for (unsigned long i = 0; i < threads; i++) {
            r[i] = (struct run){db, n / threads, clients, miss, 7 + i * 1000003};
            pthread_create(&tid[i], NULL, drive, &r[i]);
        }
        for (unsigned long i = 0; i < threads; i++)
            pthread_join(tid[i], NULL);
        double ns = (now_s() - t0) * 1e9 / (double)n;
        if (ns < best)
            best = ns;
        dp_dynblock_unref(db);
    }
    printf("rules %s queries %lu clients %lu miss %lu%% threads %lu: %.1f CPU ns per query (best "
           "of 5)\n",
           defaults ? "defaults" : "all", n, clients, miss, threads, best);
    dotproxy_config_free(cfg);
    return 0;
}
