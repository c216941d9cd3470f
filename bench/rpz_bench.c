/* SPDX-License-Identifier: MIT */
/* Cost of a Response Policy Zone of N rules (default 1,000,000): writes a
 * zone file like a threat feed (names of 2-3 labels, 90% "CNAME .", 5%
 * wildcards, 5% rpz-ip /32), loads it through dp_rpz_load, and prints load
 * time, heap octets per rule (dp_rpz_memory) and RSS growth per rule, then
 * ns per lookup for hits, misses and wildcard hits, in wall time and in
 * this thread's CPU time (the honest figure on a shared machine). Then the
 * cost of an IXFR applied as a layer (dp_rpz_layer_new): layers of 1, 1024
 * and N/64 changed owners (the bound before a whole rebuild), their build
 * time and octets, and the lookups again through the largest. Built and run
 * by bench/rpz_bench.sh. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "rpz.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU time of this thread: the machine is shared, wall time is not ours. */
static double cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld", &v) == 1)
            break;
    fclose(f);
    return v;
}

/* xorshift: the same names in every run */
static uint64_t rng = 88172645463325252ULL;
static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void word(char *out, uint64_t x, int len)
{
    for (int i = 0; i < len; i++, x /= 26)
        out[i] = (char)('a' + x % 26);
    out[len] = '\0';
}

static const char *const tlds[] = {"com", "net", "org", "info", "xyz", "top", "ru", "io"};

/* name i: label of 6-12 letters (+ a second one for a third of them) + tld */
static void name_of(size_t i, char *out, size_t cap)
{
    uint64_t s = (uint64_t)i * 0x9e3779b97f4a7c15ULL;
    char a[16], b[16];
    word(a, s >> 8, 6 + (int)(s % 7));
    if (i % 3 == 0) {
        word(b, s >> 30, 3 + (int)((s >> 4) % 5));
        snprintf(out, cap, "%s.%s.%s", b, a, tlds[(s >> 20) % 8]);
    } else {
        snprintf(out, cap, "%s.%s", a, tlds[(s >> 20) % 8]);
    }
}

static uint8_t *to_wire(const char *name, uint8_t *w)
{
    size_t o = 0;
    while (*name) {
        const char *dot = strchr(name, '.');
        size_t l = dot ? (size_t)(dot - name) : strlen(name);
        w[o++] = (uint8_t)l;
        memcpy(w + o, name, l);
        o += l;
        name += l + (dot ? 1 : 0);
    }
    w[o] = 0;
    return w;
}

static void lookups(const struct dp_rpz *z, size_t n, const char *tag);

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000000;
    const char *path = argc > 2 ? argv[2] : "/tmp/rpz_bench.zone";
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        perror(path);
        return 1;
    }
    fprintf(f, "$TTL 300\n$ORIGIN rpz.bench.\n@ SOA ns admin 1 3600 600 86400 60\n  NS ns\n");
    char name[128];
    size_t nip = 0;
    for (size_t i = 0; i < n; i++) {
        name_of(i, name, sizeof name);
        if (i % 20 == 7)
            fprintf(f, "*.%s CNAME .\n", name);
        else if (i % 20 == 13) {
            fprintf(f, "32.%zu.%zu.%zu.%zu.rpz-ip CNAME .\n", i & 255, (i >> 8) & 255,
                    (i >> 16) & 255, 10 + ((i >> 24) & 127));
            nip++;
        } else
            fprintf(f, "%s CNAME .\n", name);
    }
    long fsize = ftell(f);
    fclose(f);

    long rss0 = rss_kib();
    double t0 = now(), c0 = cpu();
    struct dp_rpz *z = NULL;
    struct dp_rpz_diag d;
    int rc = dp_rpz_load(&z, path, 1, &d);
    double t1 = now(), c1 = cpu();
    if (rc != 0) {
        fprintf(stderr, "load: %d %s\n", rc, d.error);
        return 1;
    }
    long rss1 = rss_kib();
    size_t rules = dp_rpz_rule_count(z);
    printf("rules               %zu (file %.1f MB)\n", rules, (double)fsize / 1e6);
    printf("load                %.3f s wall, %.3f s CPU\n", t1 - t0, c1 - c0);
    printf("heap octets/rule    %.1f\n", (double)dp_rpz_memory(z) / (double)rules);
    printf("RSS octets/rule     %.1f\n", (double)(rss1 - rss0) * 1024.0 / (double)rules);

    lookups(z, n, "");
    /* Layers: owners i = 0, step, 2 * step, ... changed to "CNAME rpz-drop."
     * (so they still hit), every tenth of them deleted (a tombstone). */
    size_t sizes[3] = {1, 1024, n / 64};
    struct dp_rpz *layered = NULL;
    for (int s = 0; s < 3; s++) {
        size_t k = sizes[s], step = k > 0 ? n / k : 1;
        char *text = malloc(k * 160 + 1), *owners = malloc(k * 140 + 1);
        if (text == NULL || owners == NULL || k == 0)
            return 1;
        size_t tl = 0, ol = 0;
        for (size_t j = 0; j < k; j++) {
            size_t i = j * step;
            name_of(i, name, sizeof name);
            const char *pre = i % 20 == 7 ? "*." : "";
            if (i % 20 == 13)
                snprintf(name, sizeof name, "32.%zu.%zu.%zu.%zu.rpz-ip", i & 255, (i >> 8) & 255,
                         (i >> 16) & 255, 10 + ((i >> 24) & 127));
            if (j % 10 != 9)
                tl += (size_t)sprintf(text + tl, "%s%s.rpz.bench. 300 IN CNAME rpz-drop.\n", pre,
                                      name);
            ol += (size_t)sprintf(owners + ol, "%s%s.rpz.bench.\n", pre, name);
        }
        struct dp_rpz *l = NULL;
        double la = now(), lca = cpu();
        int lrc = dp_rpz_layer_new(&l, z, text, tl, owners, ol, NULL);
        double lb = now(), lcb = cpu();
        if (lrc != 0) {
            fprintf(stderr, "layer: %d\n", lrc);
            return 1;
        }
        printf("layer of %-7zu owners: built in %.3f ms wall, %.3f ms CPU; %zu octets; %zu rules\n",
               k, (lb - la) * 1e3, (lcb - lca) * 1e3, dp_rpz_memory(l) - dp_rpz_memory(z),
               dp_rpz_rule_count(l));
        free(text);
        free(owners);
        dp_rpz_free(layered);
        layered = l;
    }
    lookups(layered, n, "(layered) ");
    dp_rpz_free(layered);
    dp_rpz_free(z);
    if (argc <= 2)
        remove(path);
    return 0;
}

static void lookups(const struct dp_rpz *z, size_t n, const char *tag)
{
    char name[128];
    /* lookups: 65536 names prepared beforehand (drawn at random from the
     * whole zone, so the tables are as cold as under real traffic), then
     * asked ROUNDS times over in a tight loop */
    enum { Q = 1 << 16, ROUNDS = 16 };
    uint8_t(*qs)[256] = malloc((size_t)Q * 256);
    if (qs == NULL)
        exit(1);
    const char *kinds[] = {"exact hit", "miss", "wildcard hit", "ip hit"};
    for (int k = 0; k < 4; k++) {
        for (size_t j = 0; j < Q; j++) {
            size_t i = next() % n;
            if (k == 0) {
                while (i % 20 == 7 || i % 20 == 13)
                    i = (i + 1) % n;
                name_of(i, name, sizeof name);
            } else if (k == 1) {
                name_of(i, name, sizeof name);
                memcpy(name, "zz", 2); /* no feed name starts with zz */
                memmove(name + 2, name, strlen(name) + 1);
                memcpy(name, "qq", 2);
            } else if (k == 2) {
                i = i - i % 20 + 7;
                if (i >= n)
                    i = 7;
                char base[96];
                name_of(i, base, sizeof base);
                snprintf(name, sizeof name, "www.cdn.%s", base);
            } else {
                i = i - i % 20 + 13;
                if (i >= n)
                    i = 13;
                qs[j][0] = (uint8_t)(10 + ((i >> 24) & 127));
                qs[j][1] = (uint8_t)(i >> 16);
                qs[j][2] = (uint8_t)(i >> 8);
                qs[j][3] = (uint8_t)i;
                continue;
            }
            to_wire(name, qs[j]);
        }
        struct dp_rpz_hit h;
        size_t hits = 0;
        double a = now(), ca = cpu();
        for (int r = 0; r < ROUNDS; r++)
            for (size_t j = 0; j < Q; j++)
                hits += k == 3 ? (size_t)dp_rpz_match_ip(z, AF_INET, qs[j], &h)
                               : (size_t)dp_rpz_match_qname(z, qs[j], &h);
        double b = now(), cb = cpu();
        printf("lookup %s%-12s %.0f ns wall, %.0f ns CPU (%zu/%d hits)\n", tag, kinds[k],
               (b - a) * 1e9 / Q / ROUNDS, (cb - ca) * 1e9 / Q / ROUNDS, hits, Q * ROUNDS);
    }
    free(qs);
}
