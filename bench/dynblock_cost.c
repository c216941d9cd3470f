/* SPDX-License-Identifier: MIT */
/* dynblock_cost: what the anomaly detectors add to each query, through the
 * three hooks the pipeline calls: dp_dynblock_query for every query,
 * dp_dynblock_miss for the share that misses the cache, and
 * dp_dynblock_answer for every answer (with the slot its query's hook
 * gave, as lib/proxy.c passes it).
 *
 *   dynblock_cost [QUERIES] [CLIENTS] [MISS_PERCENT] [THREADS] [MODE] [RUNS]
 *
 * MODE: `all` (every metric: qps, nxdomain, servfail, bytes, qtype,
 * subdomains, tunnel), `defaults` (no rule given: subdomains and tunnel in
 * log mode), or `none` (the same loop without the hooks: the harness's own
 * cost, to subtract). The state is made once and warmed with one untimed
 * pass of 200,000 queries (or QUERIES if more); then RUNS (default 100)
 * timed passes of QUERIES (default 50,000) each, the clock going on.
 * Prints CPU ns per query: the minimum over the runs (on a shared machine
 * other jobs only ever add time, through the caches and the core they
 * share: short runs, many of them, so that some fall in a quiet moment),
 * and the median.
 * Run it pinned (taskset -c N), and under valgrind --tool=callgrind with
 * RUNS 1 at two sizes for instructions per query (bench/dynblock-cost.sh
 * does both).
 *
 * Traffic: CLIENTS addresses (default 10,000) asking 3,000 ordinary names
 * (www/mail/api... under 600 domains, the evaluation's benign qtype mix)
 * plus 2% tunnel-like queries (base32 labels, TXT); MISS_PERCENT (default
 * 30) of queries go through the miss hook; the clock advances 10 µs per
 * query (100,000 qps).
 *
 * Not part of the meson build (bench/ belongs to its scripts); build by
 * hand, or let bench/dynblock-cost.sh do it:
 *
 *   B=build && ninja -C $B lib/libdotproxy_internal.a && \
 *   cc -std=c11 -O2 -g -Wall -Wextra -Werror -pthread -Ilib -Iinclude -I$B/include \
 *      bench/dynblock_cost.c $B/lib/libdotproxy_internal.a -lgnutls -lm -o /tmp/dynblock_cost */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dotproxy/config.h"
#include "dotproxy/dns.h"
#include "dynblock.h"

#include "../tests/support/dynblock_traffic.h"

#define NQ 4096

static struct dp_test_q qs[NQ];
static uint8_t ans[NQ][200];
static size_t anslen[NQ];
/* The cache key's hash the pipeline hands the miss hook. */
static uint64_t namehash[NQ];

static double cpu_s(void)
{
    struct timespec ts;
    /* CPU time, not wall time: on a shared machine the wall clock counts
     * the other jobs' turns too. */
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct run {
    struct dotproxy_dynblock *db; /* NULL: mode none */
    unsigned long n, clients, miss;
    uint32_t x; /* the generator's state, carried from run to run */
    uint64_t t; /* the clock (µs), likewise */
    unsigned long sink;
};

static void *drive(void *arg)
{
    struct run *r = arg;
    struct sockaddr_in sa = {.sin_family = AF_INET};
    uint64_t t = r->t;
    uint32_t x = r->x;
    unsigned long sink = 0;
    /* Where the query and answer are when the hooks see them: just
     * received or built, so in cache. The copies are part of the harness
     * (mode none does them too), so that the hooks' figures do not carry
     * the misses of reading the bench's 2 MiB of prepared messages. */
    struct dp_test_q q;
    uint8_t a[sizeof ans[0]];
    for (unsigned long i = 0; i < r->n; i++) {
        x = x * 1664525u + 1013904223u;
        unsigned k = (x >> 8) % NQ;
        sa.sin_addr.s_addr = htonl(0x0a000000u + (x >> 3) % r->clients);
        t += 10;
        const struct sockaddr *s = (const struct sockaddr *)&sa;
        bool miss = (x >> 24) % 100 < r->miss;
        memcpy(q.msg, qs[k].msg, qs[k].len);
        q.info = qs[k].info;
        memcpy(a, ans[k], anslen[k]);
        if (r->db == NULL) {
            /* The harness alone: the same choices and copies, no hooks. */
            sink += k + miss + a[3] + q.msg[q.info.qname_off] + sa.sin_addr.s_addr;
            continue;
        }
        uint32_t slot;
        int v = dp_dynblock_query(r->db, s, q.msg, &q.info, t, &slot);
        if (v == DP_DYNBLOCK_PASS && miss)
            v = dp_dynblock_miss(r->db, s, q.msg, &q.info, namehash[k], t);
        if (v == DP_DYNBLOCK_PASS)
            dp_dynblock_answer(r->db, s, a, anslen[k], 1, q.info.qtype, t, slot);
        sink += (unsigned)v;
    }
    r->t = t;
    r->x = x;
    r->sink += sink;
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    unsigned long n = argc > 1 ? strtoul(argv[1], NULL, 10) : 50000;
    unsigned long clients = argc > 2 ? strtoul(argv[2], NULL, 10) : 10000;
    unsigned long miss = argc > 3 ? strtoul(argv[3], NULL, 10) : 30;
    unsigned long threads = argc > 4 ? strtoul(argv[4], NULL, 10) : 1;
    const char *mode = argc > 5 ? argv[5] : "all";
    unsigned long runs = argc > 6 ? strtoul(argv[6], NULL, 10) : 100;
    if (n == 0 || clients == 0 || miss > 100 || threads == 0 || threads > 64 || runs == 0 ||
        runs > 1000 ||
        (strcmp(mode, "all") != 0 && strcmp(mode, "defaults") != 0 && strcmp(mode, "none") != 0)) {
        fprintf(stderr, "usage: dynblock_cost [QUERIES] [CLIENTS] [MISS_PERCENT] [THREADS] "
                        "[all|defaults|none] [RUNS]\n");
        return 2;
    }
    static const char *const every[] = {
        "qps>1000,action=refuse",      "nxdomain>500,action=refuse",
        "servfail>500,action=drop",    "bytes>2000000,action=truncate",
        "qtype:ANY>100,action=refuse", "subdomains>1000,action=refuse",
        "tunnel>0.95,action=drop",     NULL};
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
        if (dp_test_q_make(&qs[i], i, name, qt) != 0)
            return 1;
        namehash[i] = 0x9e3779b97f4a7c15ull * (i + 1) ^ (uint64_t)qt << 17;
        anslen[i] = dp_test_q_answer(ans[i], &qs[i], i % 12 == 0 ? 3 : 0,
                                     qs[i].len + 16 + (qt == 16 ? 60 : 0));
    }
    struct dotproxy_dynblock *db = NULL;
    if (strcmp(mode, "none") != 0) {
        db = dp_test_dynblock_make(strcmp(mode, "all") == 0 ? every : NULL, NULL);
        if (db == NULL)
            return 1;
    }
    struct run r[64];
    pthread_t tid[64];
    for (unsigned long i = 0; i < threads; i++)
        r[i] =
            (struct run){db, n / threads, clients, miss, (uint32_t)(7 + i * 1000003), 1000000, 0};
    double *ns = calloc(runs + 1, sizeof *ns);
    if (ns == NULL)
        return 1;
    /* Run 0 warms the tables (every client and domain gets its entry) and
     * is not counted. */
    for (unsigned long run = 0; run <= runs; run++) {
        /* The warming pass: 200,000 queries whatever QUERIES is. */
        unsigned long per = run == 0 ? (n > 200000 ? n : 200000) / threads : n / threads;
        for (unsigned long i = 0; i < threads; i++)
            r[i].n = per;
        double t0 = cpu_s();
        for (unsigned long i = 0; i < threads; i++)
            if (pthread_create(&tid[i], NULL, drive, &r[i]) != 0)
                return 1;
        for (unsigned long i = 0; i < threads; i++)
            pthread_join(tid[i], NULL);
        ns[run] = (cpu_s() - t0) * 1e9 / (double)(per * threads);
    }
    qsort(ns + 1, runs, sizeof *ns, cmp_double);
    unsigned long sink = 0;
    for (unsigned long i = 0; i < threads; i++)
        sink += r[i].sink;
    printf("mode %s queries %lu clients %lu miss %lu%% threads %lu: %.1f CPU ns per query (min "
           "of %lu runs; median %.1f) [%lu]\n",
           mode, n, clients, miss, threads, ns[1], runs, ns[1 + runs / 2], sink % 10);
    free(ns);
    dp_dynblock_unref(db);
    return 0;
}
