/* SPDX-License-Identifier: MIT */
/* The blocklist matcher alone (bench/blocklist.sh builds and runs it): load a
 * list file the way dotproxyd does (lib/blocklist.c into lib/nameset.c), say
 * how long that took and how many octets the set holds per name, then time
 * the query path's work for a name: hashing its label suffixes and probing
 * the set (dp_name_hashes_make + dp_nameset_match), over a mix of names one
 * label below listed ones (hits) and unlisted names (misses), more distinct
 * names than any CPU cache holds. Usage: blocklist_lookup LIST [LOOKUPS]. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* Keep every k-th name of the list as a query one label below it. */
static int keep(void *user, const uint8_t *wire, size_t len, int exception)
{
    struct sample *s = user;
    (void)exception;
    if (s->seen++ % s->every != 0 || s->n >= QUERIES / 2 || len + 4 > 255)
        return 0;
    uint8_t *w = s->wire[s->n++];
    memcpy(w, "\3www", 4);
    memcpy(w + 4, wire, len);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s LIST [LOOKUPS]\n", argv[0]);
        return 2;
    }
    unsigned long lookups = argc > 2 ? strtoul(argv[2], NULL, 10) : 20000000ul;
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

    /* Queries: hits from the list itself, then as many misses. */
    uint8_t(*q)[256] = calloc(QUERIES, sizeof *q);
    if (q == NULL)
        return 1;
    struct sample s = {q, 0, names / (QUERIES / 2) + 1, 0};
    FILE *f = fopen(argv[1], "r");
    char line[512];
    while (f != NULL && fgets(line, sizeof line, f) != NULL && s.n < QUERIES / 2)
        (void)dp_list_parse_line(line, strcspn(line, "\n"), keep, &s, NULL);
    if (f != NULL)
        fclose(f);
    size_t hits = s.n, n = s.n;
    while (n < 2 * hits) {
        char text[64];
        int len = snprintf(text, sizeof text, "www.unlisted%zu.example.org", n);
        if (dp_name_from_text(text, (size_t)len, q[n]) < 0)
            return 1;
        n++;
    }
    /* Shuffle (a fixed LCG: the same order every run) so hits and misses
     * interleave. */
    uint64_t x = 88172645463325252ull;
    for (size_t i = n - 1; i > 0; i--) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        size_t j = (size_t)(x % (i + 1));
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
        size_t len = 0;
        while (q[i][len] != 0)
            len += 1u + q[i][len];
        at[i] = used;
        memcpy(arena + used, q[i], len + 1);
        used += len + 1;
    }
    free(q);
    q = NULL;
    unsigned long found = 0;
    double t2 = now_s(), c2 = cpu_s();
    for (unsigned long i = 0, k = 0; i < lookups; i++, k = k + 1 == n ? 0 : k + 1) {
        struct dp_name_hashes h;
        const uint8_t *w = arena + at[k];
        if (dp_name_hashes_make(&h, w, 256) == 0 && dp_nameset_match(sets.block, &h) >= 0)
            found++;
    }
    double t3 = now_s(), c3 = cpu_s();
    printf("lookups %lu\nhit_ratio %.3f\nlookup_ns %.1f\nlookup_cpu_ns %.1f\n", lookups,
           (double)found / (double)lookups, (t3 - t2) * 1e9 / (double)lookups,
           (c3 - c2) * 1e9 / (double)lookups);
    dp_list_sets_clear(&sets);
    free(arena);
    free(at);
    return found > 0 ? 0 : 1;
}
