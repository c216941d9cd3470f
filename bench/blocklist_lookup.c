/* SPDX-License-Identifier: MIT */
/* The blocklist matcher alone (bench/blocklist.sh builds and runs it): load a
 * list file the way dotproxyd does (lib/blocklist.c into lib/nameset.c), say
 * how long that took and how many octets the set holds per name, then time
 * the query path's work for a name: hashing its label suffixes and probing
 * the set (dp_name_hashes_make + dp_nameset_match). The queries, more
 * distinct names than any CPU cache holds, are a quarter each of
 *   hits     a listed name with 0 to 3 labels in front of it;
 *   near     a listed name's first label replaced, 0 to 2 labels in front
 *            (shares every suffix but the listed one: misses, unless the
 *            list happens to hold the parent);
 *   tld      1 to 5 labels under a listed name's top-level domain;
 *   foreign  2 to 6 labels under a top-level domain no listed name has.
 * Two timings: "stream" runs lookups back to back (the CPU may overlap one
 * lookup's memory waits with the next one's: throughput), "chain" makes
 * each lookup wait for the one before (the next query depends on the last
 * result: the latency one query sees alone).
 * Beside them, what one memory access costs here: a chain of dependent
 * reads at random over a buffer as big as the set (huge pages advised, as
 * for the set), the floor of a lookup that must read the table.
 * Each timing is the best of ROUNDS runs over the same queries (default 1:
 * on a shared machine the best run is the one least disturbed).
 * Usage: blocklist_lookup LIST [LOOKUPS [ROUNDS]]. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "blocklist.h"
#include "nameset.h"

#define QUERIES 1000000u

/* The machine may be shared: wall time then counts other programs' turns.
 * Both are reported; the CPU time of this thread is the matcher's own. */
static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double cpu_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

struct sample {
    uint8_t (*wire)[256];
    size_t n, every, seen;
};

/* Keep every k-th name of the list. */
static int keep(void *user, const uint8_t *wire, size_t len, int exception)
{
    struct sample *s = user;
    (void)exception;
    if (s->seen++ % s->every != 0 || s->n >= QUERIES / 4 || len + 16 > 255)
        return 0;
    memcpy(s->wire[s->n++], wire, len);
    return 0;
}

static uint64_t xorshift(uint64_t *x)
{
    *x ^= *x << 13, *x ^= *x >> 7, *x ^= *x << 17;
    return *x;
}

/* Put k labels "l<i><k>" in front of the wire name at w (len octets). */
static size_t prepend(uint8_t *out, const uint8_t *w, size_t len, unsigned k, size_t i)
{
    size_t o = 0;
    for (unsigned j = 0; j < k; j++) {
        int n = snprintf((char *)out + o + 1, 16, "l%zx%u", i % 4096, j);
        out[o] = (uint8_t)n;
        o += 1 + (size_t)n;
    }
    memcpy(out + o, w, len);
    return o + len;
}

static size_t wire_len(const uint8_t *w)
{
    size_t len = 0;
    while (w[len] != 0)
        len += 1u + w[len];
    return len + 1;
}

/* ns a read when each read's address comes from the one before, over
 * random cache lines of a buffer of bytes octets. */
static double chase_ns(size_t bytes, unsigned long reads)
{
    size_t lines = bytes / 64;
    uint64_t *a = NULL;
    if (lines < 2 || posix_memalign((void **)&a, 2u << 20, lines * 64) != 0)
        return -1;
    (void)madvise(a, lines * 64, MADV_HUGEPAGE);
    /* One random cycle through every line (Sattolo's shuffle). */
    size_t *perm = malloc(lines * sizeof *perm);
    if (perm == NULL) {
        free(a);
        return -1;
    }
    for (size_t i = 0; i < lines; i++)
        perm[i] = i;
    uint64_t x = 2463534242ull;
    for (size_t i = lines - 1; i > 0; i--) {
        size_t j = (size_t)(xorshift(&x) % i);
        size_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    for (size_t i = 0; i < lines; i++)
        a[perm[i] * 8] = perm[(i + 1) % lines] * 8;
    free(perm);
    size_t p = 0;
    double t0 = now_s();
    for (unsigned long i = 0; i < reads; i++)
        p = a[p];
    double t1 = now_s();
    volatile size_t sink = p;
    (void)sink;
    free(a);
    return (t1 - t0) * 1e9 / (double)reads;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s LIST [LOOKUPS [ROUNDS]]\n", argv[0]);
        return 2;
    }
    unsigned long lookups = argc > 2 ? strtoul(argv[2], NULL, 10) : 20000000ul;
    unsigned long rounds = argc > 3 ? strtoul(argv[3], NULL, 10) : 1;
    if (rounds == 0)
        rounds = 1;
    struct dp_list_sets sets;
    char err[600];
    double c0 = cpu_s(), t0 = now_s();
    if (dp_list_load(&sets, argv[1], 0, 0, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    double t1 = now_s(), c1 = cpu_s();
    size_t names = dp_nameset_count(sets.block);
    size_t bytes = dp_nameset_bytes(sets.block);
    printf("load_ms %.0f\nload_cpu_ms %.0f\nnames %zu\nset_octets %zu\nset_octets_per_name %.1f\n",
           (t1 - t0) * 1e3, (c1 - c0) * 1e3, names, bytes, (double)bytes / (double)names);

    /* Queries, from a sample of the list's own names. */
    uint8_t(*q)[256] = calloc(QUERIES, sizeof *q);
    uint8_t(*base)[256] = calloc(QUERIES / 4, sizeof *base);
    if (q == NULL || base == NULL)
        return 1;
    struct sample s = {base, 0, names / (QUERIES / 4) + 1, 0};
    FILE *f = fopen(argv[1], "r");
    char line[512];
    while (f != NULL && fgets(line, sizeof line, f) != NULL && s.n < QUERIES / 4)
        (void)dp_list_parse_line(line, strcspn(line, "\n"), keep, &s, NULL);
    if (f != NULL)
        fclose(f);
    if (s.n == 0)
        return 1;
    uint64_t x = 88172645463325252ull;
    size_t n = 0;
    for (size_t b = 0; b < s.n; b++) {
        const uint8_t *w = base[b];
        size_t len = wire_len(w);
        /* hit */
        prepend(q[n++], w, len, (unsigned)(xorshift(&x) % 4), b);
        /* near: first label replaced */
        uint8_t sib[256];
        int sl = snprintf((char *)sib + 1, 32, "nx%zu", b);
        sib[0] = (uint8_t)sl;
        memcpy(sib + 1 + sl, w + 1 + w[0], len - 1 - w[0]);
        prepend(q[n++], sib, (size_t)(1 + sl) + len - 1 - w[0], (unsigned)(xorshift(&x) % 3), b);
        /* tld: under the listed name's top-level domain */
        const uint8_t *tld = w;
        while (tld[1 + tld[0]] != 0)
            tld += 1 + tld[0];
        uint8_t t[256];
        sl = snprintf((char *)t + 1, 32, "unlisted%zu", b);
        t[0] = (uint8_t)sl;
        memcpy(t + 1 + sl, tld, wire_len(tld));
        prepend(q[n++], t, (size_t)(1 + sl) + wire_len(tld), (unsigned)(xorshift(&x) % 5), b);
        /* foreign: a top-level domain no list has */
        sl = snprintf((char *)t + 1, 32, "foreign%zu", b);
        t[0] = (uint8_t)sl;
        int tl = snprintf((char *)t + 2 + sl, 32, "zz%zu", b % 1000);
        t[1 + sl] = (uint8_t)tl;
        t[2 + sl + tl] = 0;
        prepend(q[n++], t, (size_t)(3 + sl + tl), 1 + (unsigned)(xorshift(&x) % 5), b);
    }
    free(base);
    /* Shuffle (the same order every run) so the kinds interleave. */
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = (size_t)(xorshift(&x) % (i + 1));
        uint8_t tmp[256];
        memcpy(tmp, q[i], 256);
        memcpy(q[i], q[j], 256);
        memcpy(q[j], tmp, 256);
    }
    /* Packed one after the other, as names sit in packets: the loop reads
     * them in order, so only the set's own memory is random access. */
    uint8_t *arena = malloc(n * 256);
    size_t *at = malloc(n * sizeof *at);
    if (arena == NULL || at == NULL)
        return 1;
    size_t used = 0;
    for (size_t i = 0; i < n; i++) {
        size_t len = wire_len(q[i]);
        at[i] = used;
        memcpy(arena + used, q[i], len);
        used += len;
    }
    free(q);
    q = NULL;
    unsigned long found = 0, chained = lookups / 4, cfound = 0;
    double best[4] = {1e300, 1e300, 1e300, 1e300}; /* stream wall, CPU; chained wall, CPU */
    for (unsigned long r = 0; r < rounds; r++) {
        found = 0;
        double t2 = now_s(), c2 = cpu_s();
        for (unsigned long i = 0, k = 0; i < lookups; i++, k = k + 1 == n ? 0 : k + 1) {
            struct dp_name_hashes h;
            const uint8_t *w = arena + at[k];
            if (dp_name_hashes_make(&h, w, 256) == 0 && dp_nameset_match(sets.block, &h) >= 0)
                found++;
        }
        double t3 = now_s(), c3 = cpu_s();
        /* Chained: which query comes next depends on the last answer, so
         * no two lookups overlap (a miss steps one further: same names,
         * order decided at run time). */
        cfound = 0;
        double t4 = now_s(), c4 = cpu_s();
        for (unsigned long i = 0, k = 0; i < chained; i++) {
            struct dp_name_hashes h;
            const uint8_t *w = arena + at[k];
            int m = dp_name_hashes_make(&h, w, 256) == 0 ? dp_nameset_match(sets.block, &h) : -1;
            cfound += m >= 0;
            k += 1 + (m < 0);
            if (k >= n)
                k -= n;
        }
        double t5 = now_s(), c5 = cpu_s();
        double got[4] = {t3 - t2, c3 - c2, t5 - t4, c5 - c4};
        for (int j = 0; j < 4; j++)
            best[j] = got[j] < best[j] ? got[j] : best[j];
    }
    printf("rounds %lu\nlookups %lu\nhit_ratio %.3f\nlookup_ns %.1f\nlookup_cpu_ns %.1f\n", rounds,
           lookups, (double)found / (double)lookups, best[0] * 1e9 / (double)lookups,
           best[1] * 1e9 / (double)lookups);
    printf("chained_lookups %lu\nchained_hit_ratio %.3f\nchained_ns %.1f\nchained_cpu_ns %.1f\n",
           chained, (double)cfound / (double)chained, best[2] * 1e9 / (double)chained,
           best[3] * 1e9 / (double)chained);
    double chase = 1e300;
    for (unsigned long r = 0; r < rounds; r++) {
        double c = chase_ns(bytes, 2000000);
        chase = c < chase ? c : chase;
    }
    printf("memory_chase_ns %.1f\n", chase);
    dp_list_sets_clear(&sets);
    free(arena);
    free(at);
    return found > 0 ? 0 : 1;
}
