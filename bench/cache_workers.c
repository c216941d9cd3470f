/* SPDX-License-Identifier: MIT */
/* cache_workers: does the answer cache become the bottleneck with several
 * workers? Compares, on one synthetic but realistic query stream,
 *   (a) per-worker caches: each thread its own struct dp_cache, no lock
 *       (what dotproxyd -w N does today: N contexts, N caches);
 *   (b) one shared cache split into S shards, each a dp_cache behind its own
 *       lock (pthread mutex or spinlock), the shard picked by the key hash.
 * It reports hit rate (overall and after warm-up), CPU ns per query (thread
 * CPU time), total throughput (wall time), lock contention and the memory
 * held (entries, and how many of them are duplicates across workers).
 * Results and their reading: docs/cache-design.md.
 *
 * Not part of the meson build (bench/ belongs to its scripts). Build by
 * hand from the repository root, against any meson build dir B of the tree:
 *
 *   B=build && ninja -C $B lib/libdotproxy_internal.a && \
 *   cc -std=c11 -O2 -g -Wall -Wextra -Werror -pthread -Ilib -Iinclude -I$B/include \
 *      $(pkg-config --cflags gnutls) bench/cache_workers.c \
 *      $B/lib/libdotproxy_internal.a $(pkg-config --libs gnutls) -lm -o $B/cache_workers
 *
 * Run: $B/cache_workers [--ops N] [--reps N] [--zipf S] [--budget ENTRIES]
 *                       [--work-ns NS] [--threads 1,2,4] [--assign random|sticky|both]
 *                       [--quick]
 * (defaults: 2,000,000 queries, 3 runs per configuration, s = 0.95, 10,000
 * entries in total, no extra work, threads 1,2,4, both assignments; --quick
 * skips the spinlock and full-budget rows.)
 *
 * Model (assumptions stated here so the numbers can be judged):
 * - 100,000 cacheable keys (qname, qtype) with Zipf(s) popularity; 1/3 AAAA
 *   (2 RRs), the rest A (4 RRs), ~3.4% NXDOMAIN with an SOA; answers are
 *   92-110 octets, TTL 300. 10% of all queries are one-off names (a fresh
 *   name each time, 1 in 4 of them NXDOMAIN), as random-subdomain telemetry
 *   and typos give.
 * - 1,000 clients, each query from a uniformly chosen client; 20% of a
 *   client's non-unique queries go to its own 30 names (drawn from the
 *   catalogue outside the top 1,000), so client stickiness could help
 *   per-worker caches.
 * - Assignment "random": each query to a uniformly random worker (UDP
 *   clients use a fresh source port per query, so SO_REUSEPORT's 4-tuple
 *   hash scatters them). Assignment "sticky": worker = hash(client) % N (one
 *   TCP/DoT connection per client).
 * - A miss stores the pre-built answer at once (the upstream round trip is
 *   instant): lookup under the lock, unlock, then lock again to store, as the
 *   proxy does (the answer arrives later). Time is virtual: query i of the
 *   stream happens at i microseconds, so nothing expires (TTL 300 s) and
 *   capacity, not expiry, decides the hit rate.
 * - Per query a thread also parses the query and makes the key (outside any
 *   lock, as in the proxy), and optionally burns --work-ns of CPU to stand
 *   for the rest of the query path (recvmsg, policy, sendmsg), which sets how
 *   much of a worker's time is spent holding a shard lock. */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "dotproxy/dns.h"
#include "dotproxy/error.h"

#define N_CATALOGUE       100000u
#define N_CLIENTS         1000u
#define PERSONAL_KEYS     30u
#define PERSONAL_FRACTION 0.20
#define UNIQUE_FRACTION   0.10
#define WARMUP_FRACTION   0.25 /* "after warm-up" counts queries past this share of the stream */
#define ANSWER_TTL        300u
#define T0_US             1000000000ull /* virtual clock origin (any value well above 0) */
#define MAX_THREADS       64
#define MAX_REPS          15

/* ---- deterministic randomness ------------------------------------------- */

static uint64_t rng_state = 0x5eed5eed12345678ull;

/* splitmix64: fast, good enough for workload generation, reproducible. */
static uint64_t rng_next(void)
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double rng_unit(void)
{
    return (double)(rng_next() >> 11) * (1.0 / 9007199254740992.0);
}

/* ---- the workload: items (keys with their query and answer) and stream --- */

/* One cache key's query and answer, both as wire messages in `arena`. */
struct item {
    uint32_t qoff, aoff;
    uint16_t qlen, alen;
};

struct query {
    uint32_t item;
    uint32_t client;
};

static uint8_t *arena;
static size_t arena_len, arena_cap;
static struct item *items;
static size_t n_items;
static struct query *stream;
static size_t n_ops;

static uint8_t *arena_reserve(size_t n)
{
    if (arena_len + n > arena_cap) {
        arena_cap = arena_cap ? arena_cap * 2 : (size_t)1 << 24;
        arena = realloc(arena, arena_cap);
        if (arena == NULL) {
            perror("realloc");
            exit(1);
        }
    }
    return arena + arena_len;
}

static size_t put16(uint8_t *p, unsigned v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
    return 2;
}

static size_t put32(uint8_t *p, uint32_t v)
{
    put16(p, v >> 16);
    put16(p + 2, v & 0xFFFFu);
    return 4;
}

/* Dotted name -> uncompressed wire name; returns its length. Also reports
 * the offset (within the wire name) of the label after the first one: the
 * "zone" an SOA or a compression pointer can name. */
static size_t put_name(uint8_t *p, const char *dotted, size_t *zone_off)
{
    size_t n = 0;
    *zone_off = 0;
    while (*dotted) {
        const char *dot = strchr(dotted, '.');
        size_t l = dot ? (size_t)(dot - dotted) : strlen(dotted);
        if (n > 0 && *zone_off == 0)
            *zone_off = n;
        p[n++] = (uint8_t)l;
        memcpy(p + n, dotted, l);
        n += l;
        dotted += l + (dot ? 1 : 0);
    }
    p[n++] = 0;
    return n;
}

enum answer_kind { ANS_A, ANS_AAAA, ANS_NXDOMAIN };

/* Build the query (RD, EDNS OPT with a 1232-octet UDP size, as stubs send)
 * and the upstream answer for `name`, append both to the arena. Answers use
 * compression pointers into the question, like real servers. */
static void add_item(struct item *it, const char *name, enum answer_kind kind)
{
    uint8_t wname[DOTPROXY_DNS_MAX_NAME];
    size_t zone;
    size_t nl = put_name(wname, name, &zone);
    unsigned qtype = kind == ANS_AAAA ? 28 : 1;

    uint8_t *q = arena_reserve(512);
    size_t n = 0;
    n += put16(q + n, (unsigned)rng_next() & 0xFFFFu);
    n += put16(q + n, DOTPROXY_DNS_FLAG_RD);
    n += put16(q + n, 1); /* qd */
    n += put16(q + n, 0);
    n += put16(q + n, 0);
    n += put16(q + n, 1); /* ar: the OPT */
    memcpy(q + n, wname, nl);
    n += nl;
    n += put16(q + n, qtype);
    n += put16(q + n, 1);
    q[n++] = 0; /* OPT owner: root */
    n += put16(q + n, 41);
    n += put16(q + n, 1232);
    n += put32(q + n, 0);
    n += put16(q + n, 0);
    it->qoff = (uint32_t)arena_len;
    it->qlen = (uint16_t)n;
    arena_len += n;

    uint8_t *a = arena_reserve(512);
    unsigned ptr_q = 0xC000u | DOTPROXY_DNS_HEADER_SIZE;
    unsigned ptr_zone = 0xC000u | (unsigned)(DOTPROXY_DNS_HEADER_SIZE + zone);
    n = 0;
    n += put16(a + n, 0);
    n += put16(a + n, kind == ANS_NXDOMAIN ? 0x8183u : 0x8180u); /* QR RD RA, rcode */
    n += put16(a + n, 1);
    n += put16(a + n, kind == ANS_A ? 4 : kind == ANS_AAAA ? 2 : 0);
    n += put16(a + n, kind == ANS_NXDOMAIN ? 1 : 0);
    n += put16(a + n, 0);
    memcpy(a + n, wname, nl);
    n += nl;
    n += put16(a + n, qtype);
    n += put16(a + n, 1);
    if (kind == ANS_A) {
        for (unsigned i = 0; i < 4; i++) {
            n += put16(a + n, ptr_q);
            n += put16(a + n, 1);
            n += put16(a + n, 1);
            n += put32(a + n, ANSWER_TTL);
            n += put16(a + n, 4);
            n += put32(a + n, 0xC6336400u + (uint32_t)(rng_next() & 0xFF)); /* 198.51.100.x */
        }
    } else if (kind == ANS_AAAA) {
        for (unsigned i = 0; i < 2; i++) {
            n += put16(a + n, ptr_q);
            n += put16(a + n, 28);
            n += put16(a + n, 1);
            n += put32(a + n, ANSWER_TTL);
            n += put16(a + n, 16);
            n += put32(a + n, 0x20010db8u); /* 2001:db8::/32 */
            n += put32(a + n, (uint32_t)rng_next());
            n += put32(a + n, (uint32_t)rng_next());
            n += put32(a + n, (uint32_t)rng_next());
        }
    } else {
        /* RFC 2308 3: the SOA of the zone in the authority section. */
        n += put16(a + n, ptr_zone);
        n += put16(a + n, 6);
        n += put16(a + n, 1);
        n += put32(a + n, ANSWER_TTL);
        size_t rdlen_at = n;
        n += 2;
        static const uint8_t ns1[] = {3, 'n', 's', '1'};
        static const uint8_t hm[] = {10, 'h', 'o', 's', 't', 'm', 'a', 's', 't', 'e', 'r'};
        memcpy(a + n, ns1, sizeof(ns1));
        n += sizeof(ns1);
        n += put16(a + n, ptr_zone);
        memcpy(a + n, hm, sizeof(hm));
        n += sizeof(hm);
        n += put16(a + n, ptr_zone);
        n += put32(a + n, 2024010101u); /* serial */
        n += put32(a + n, 7200);
        n += put32(a + n, 900);
        n += put32(a + n, 1209600);
        n += put32(a + n, ANSWER_TTL); /* MINIMUM: the negative TTL */
        put16(a + rdlen_at, (unsigned)(n - rdlen_at - 2));
    }
    it->aoff = (uint32_t)arena_len;
    it->alen = (uint16_t)n;
    arena_len += n;
}

/* Zipf(s) over ranks 0..n-1 by inverse CDF (binary search). */
static double *zipf_cdf;

static void zipf_init(size_t n, double s)
{
    zipf_cdf = malloc(n * sizeof(*zipf_cdf));
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        sum += pow((double)(i + 1), -s);
        zipf_cdf[i] = sum;
    }
    for (size_t i = 0; i < n; i++)
        zipf_cdf[i] /= sum;
}

static size_t zipf_sample(size_t n)
{
    double u = rng_unit();
    size_t lo = 0, hi = n - 1;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (zipf_cdf[mid] < u)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Catalogue item i is popularity rank i. Names look like CDN and site
 * names (20-30 octets); NXDOMAIN for ~1 in 29, AAAA for 1 in 3. */
static void build_workload(size_t ops, double zipf_s)
{
    zipf_init(N_CATALOGUE, zipf_s);
    size_t cap_items = N_CATALOGUE + (size_t)(ops * UNIQUE_FRACTION * 1.2) + 1024;
    items = calloc(cap_items, sizeof(*items));
    stream = calloc(ops, sizeof(*stream));
    uint32_t *personal = calloc((size_t)N_CLIENTS * PERSONAL_KEYS, sizeof(*personal));
    if (items == NULL || stream == NULL || personal == NULL) {
        perror("calloc");
        exit(1);
    }
    char name[128];
    for (size_t i = 0; i < N_CATALOGUE; i++) {
        enum answer_kind kind = i % 29 == 7 ? ANS_NXDOMAIN : i % 3 == 2 ? ANS_AAAA : ANS_A;
        snprintf(name, sizeof(name), "cdn-%zu.example%zu.com", i, i / 7);
        add_item(&items[i], name, kind);
    }
    n_items = N_CATALOGUE;
    /* Each client's own names: outside the top 1,000, so they are not
     * already hot for everyone. */
    for (size_t c = 0; c < (size_t)N_CLIENTS * PERSONAL_KEYS; c++)
        personal[c] = (uint32_t)(1000 + rng_next() % (N_CATALOGUE - 1000));
    for (size_t i = 0; i < ops; i++) {
        uint32_t client = (uint32_t)(rng_next() % N_CLIENTS);
        double u = rng_unit();
        uint32_t it;
        if (u < UNIQUE_FRACTION && n_items < cap_items) {
            size_t j = n_items - N_CATALOGUE;
            snprintf(name, sizeof(name), "u%zu-%08" PRIx32 ".t.example.net", j,
                     (uint32_t)rng_next());
            add_item(&items[n_items], name, j % 4 == 0 ? ANS_NXDOMAIN : ANS_A);
            it = (uint32_t)n_items++;
        } else if (rng_unit() < PERSONAL_FRACTION) {
            it = personal[(size_t)client * PERSONAL_KEYS + rng_next() % PERSONAL_KEYS];
        } else {
            it = (uint32_t)zipf_sample(N_CATALOGUE);
        }
        stream[i].item = it;
        stream[i].client = client;
    }
    n_ops = ops;
    free(personal);
}

/* ---- the designs ---------------------------------------------------------- */

enum design { D_WORKER, D_WORKER_FULL, D_SHARD_MUTEX, D_SHARD_SPIN };
static const char *const design_name[] = {"per-worker", "per-worker, full budget each",
                                          "shared, mutex", "shared, spinlock"};

/* A shard on its own cache lines: two shards' locks never share a line, or
 * every lock would bounce between cores even without contention. */
struct shard {
    union {
        pthread_mutex_t mutex;
        pthread_spinlock_t spin;
    } lock;
    struct dp_cache *cache;
    unsigned long long acquired, contended;
} __attribute__((aligned(128)));

struct run_cfg {
    enum design design;
    unsigned threads;
    unsigned shards; /* shared designs */
    int sticky;      /* assignment: 0 random, 1 by client */
    size_t budget;   /* total entries */
    unsigned work_ns;
};

struct worker {
    const struct run_cfg *cfg;
    struct dp_cache *own; /* per-worker designs */
    struct shard *shards; /* shared designs */
    unsigned shard_shift; /* 32 - log2(shards) */
    uint32_t *ops;        /* stream indexes, in stream order */
    size_t n;
    pthread_barrier_t *start;
    /* results */
    unsigned long long lookups, hits, warm_lookups, warm_hits, stores;
    unsigned long long acquired, contended;
    double cpu_ns;
} __attribute__((aligned(128)));

static double burn_iters_per_ns;
static volatile uint64_t burn_sink;

/* Stand-in for the non-cache part of the query path: pure CPU, no memory
 * traffic, so it neither helps nor hurts the cache's own cache lines. */
static void burn(unsigned ns)
{
    uint64_t x = burn_sink;
    uint64_t n = (uint64_t)(ns * burn_iters_per_ns);
    for (uint64_t i = 0; i < n; i++)
        x = x * 6364136223846793005ull + 1442695040888963407ull;
    burn_sink = x;
}

static double now_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void calibrate_burn(void)
{
    burn_iters_per_ns = 1.0;
    double best = 1e18;
    for (int r = 0; r < 5; r++) {
        double t0 = now_ns(CLOCK_THREAD_CPUTIME_ID);
        burn(10000000);
        double dt = now_ns(CLOCK_THREAD_CPUTIME_ID) - t0;
        if (dt < best)
            best = dt;
    }
    burn_iters_per_ns = 10000000.0 / best;
}

/* Lock a shard, counting the acquisitions that had to wait: trylock first,
 * so an uncontended acquisition costs what it costs in production. */
static void shard_lock(struct worker *w, struct shard *s)
{
    w->acquired++;
    if (w->cfg->design == D_SHARD_MUTEX) {
        if (pthread_mutex_trylock(&s->lock.mutex) != 0) {
            w->contended++;
            pthread_mutex_lock(&s->lock.mutex);
        }
    } else {
        if (pthread_spin_trylock(&s->lock.spin) != 0) {
            w->contended++;
            pthread_spin_lock(&s->lock.spin);
        }
    }
    s->acquired++; /* under the lock: how unevenly Zipf loads the shards */
}

static void shard_unlock(struct worker *w, struct shard *s)
{
    if (w->cfg->design == D_SHARD_MUTEX)
        pthread_mutex_unlock(&s->lock.mutex);
    else
        pthread_spin_unlock(&s->lock.spin);
}

static int is_shared(enum design d)
{
    return d == D_SHARD_MUTEX || d == D_SHARD_SPIN;
}

static void die_rc(const char *what, int rc)
{
    fprintf(stderr, "cache_workers: %s: %s (%d)\n", what, dotproxy_strerror(rc), rc);
    exit(1);
}

/* One query as the proxy handles it: parse, key, lookup; on a miss the
 * upstream answer is stored (a second, separate critical section). */
static void *worker_main(void *arg)
{
    struct worker *w = arg;
    const int shared = is_shared(w->cfg->design);
    const size_t warm_from = (size_t)(n_ops * WARMUP_FRACTION);
    const unsigned work_ns = w->cfg->work_ns;
    uint8_t out[4096];

    pthread_barrier_wait(w->start);
    double c0 = now_ns(CLOCK_THREAD_CPUTIME_ID);
    for (size_t i = 0; i < w->n; i++) {
        uint32_t idx = w->ops[i];
        const struct item *it = &items[stream[idx].item];
        const uint8_t *q = arena + it->qoff;
        dotproxy_dns_info info;
        struct dp_cache_key k;
        int rc = dotproxy_dns_parse(&info, q, it->qlen);
        if (rc != 0)
            die_rc("parse", rc);
        rc = dp_cache_key_make(&k, q, it->qlen, &info);
        if (rc != 0)
            die_rc("key", rc);

        /* The bucket index inside a dp_cache is hash & mask (low bits), so
         * the shard must come from the high bits: with hash % S every key
         * in a shard would share its low bits and crowd 1/S of the buckets. */
        struct shard *s = shared ? &w->shards[k.hash >> w->shard_shift] : NULL;
        struct dp_cache *c = shared ? s->cache : w->own;
        uint64_t now = T0_US + idx;
        size_t outlen;

        if (shared)
            shard_lock(w, s);
        rc = dp_cache_lookup(c, &k, now, 0, q, it->qlen, out, sizeof(out), &outlen);
        if (shared)
            shard_unlock(w, s);
        if (rc < 0)
            die_rc("lookup", rc);
        int hit = rc == DP_CACHE_HIT || rc == DP_CACHE_HIT_REFRESH;
        w->lookups++;
        w->hits += (unsigned)hit;
        if (idx >= warm_from) {
            w->warm_lookups++;
            w->warm_hits += (unsigned)hit;
        }
        if (!hit) {
            if (shared)
                shard_lock(w, s);
            rc = dp_cache_store(c, &k, arena + it->aoff, it->alen, now);
            if (shared)
                shard_unlock(w, s);
            if (rc < 0)
                die_rc("store", rc);
            w->stores += (unsigned)rc;
        }
        if (work_ns)
            burn(work_ns);
    }
    w->cpu_ns = now_ns(CLOCK_THREAD_CPUTIME_ID) - c0;
    return NULL;
}

struct result {
    double hit, warm_hit;     /* % */
    double cpu_ns_per_op;     /* thread CPU time summed over threads / ops */
    double wall_ns_per_op;    /* wall time / ops (all threads) */
    double mops;              /* total throughput, million queries per second */
    double contended;         /* % of lock acquisitions that had to wait */
    double imbalance;         /* largest worker's share of queries / fair share */
    double shard_skew;        /* busiest shard's acquisitions / mean per shard */
    size_t entries, distinct; /* held at the end; distinct = keys in >= 1 cache */
    size_t bytes;             /* octets charged (dp_cache_stats.bytes), summed */
};

static struct dp_cache *cache_make(size_t entries)
{
    struct dp_cache_config cc = {.max_entries = entries, .min_ttl = 0, .max_ttl = 86400};
    struct dp_cache *c;
    int rc = dp_cache_new(&c, &cc);
    if (rc != 0)
        die_rc("dp_cache_new", rc);
    return c;
}

/* Per-worker caches hold the same popular keys several times; count how
 * many distinct keys the caches hold by asking each cache for every key
 * (after the timed part; the probe's own hits do not matter any more). */
static size_t count_distinct(struct worker *w, unsigned nw, const struct run_cfg *cfg)
{
    size_t distinct = 0;
    uint8_t out[4096];
    for (size_t i = 0; i < n_items; i++) {
        const uint8_t *q = arena + items[i].qoff;
        dotproxy_dns_info info;
        struct dp_cache_key k;
        size_t outlen;
        if (dotproxy_dns_parse(&info, q, items[i].qlen) != 0 ||
            dp_cache_key_make(&k, q, items[i].qlen, &info) != 0)
            die_rc("probe", DOTPROXY_EMALFORMED);
        int held = 0;
        if (is_shared(cfg->design)) {
            struct dp_cache *c = w[0].shards[k.hash >> w[0].shard_shift].cache;
            held = dp_cache_lookup(c, &k, T0_US + n_ops, 1, q, items[i].qlen, out, sizeof(out),
                                   &outlen) > 0;
        } else {
            for (unsigned t = 0; t < nw && !held; t++)
                held = dp_cache_lookup(w[t].own, &k, T0_US + n_ops, 1, q, items[i].qlen, out,
                                       sizeof(out), &outlen) > 0;
        }
        distinct += (size_t)held;
    }
    return distinct;
}

static unsigned log2u(unsigned v)
{
    unsigned l = 0;
    while ((1u << l) < v)
        l++;
    return l;
}

static uint64_t mix_client(uint32_t c)
{
    uint64_t z = (uint64_t)c * 0x9E3779B97F4A7C15ull;
    return z ^ (z >> 29);
}

static void run_once(const struct run_cfg *cfg, int probe, struct result *res)
{
    unsigned nt = cfg->threads;
    struct worker *w = aligned_alloc(128, sizeof(*w) * nt);
    struct shard *shards = NULL;
    pthread_barrier_t start;
    pthread_t tid[MAX_THREADS];
    memset(w, 0, sizeof(*w) * nt);
    pthread_barrier_init(&start, NULL, nt + 1);

    if (is_shared(cfg->design)) {
        shards = aligned_alloc(128, sizeof(*shards) * cfg->shards);
        memset(shards, 0, sizeof(*shards) * cfg->shards);
        for (unsigned i = 0; i < cfg->shards; i++) {
            if (cfg->design == D_SHARD_MUTEX)
                pthread_mutex_init(&shards[i].lock.mutex, NULL);
            else
                pthread_spin_init(&shards[i].lock.spin, PTHREAD_PROCESS_PRIVATE);
            shards[i].cache = cache_make(cfg->budget / cfg->shards);
        }
    }
    /* Assign the stream to workers; the same random draws for every design
     * so all see the same per-worker query sequences. */
    uint64_t saved = rng_state;
    rng_state = 0xA551A551ull * nt;
    uint32_t *assign = malloc(n_ops * sizeof(*assign));
    size_t count[MAX_THREADS] = {0};
    for (size_t i = 0; i < n_ops; i++) {
        assign[i] = cfg->sticky ? (uint32_t)(mix_client(stream[i].client) % nt)
                                : (uint32_t)(rng_next() % nt);
        count[assign[i]]++;
    }
    rng_state = saved;
    for (unsigned t = 0; t < nt; t++) {
        w[t].cfg = cfg;
        w[t].start = &start;
        w[t].shards = shards;
        w[t].shard_shift = 32 - log2u(cfg->shards ? cfg->shards : 1);
        w[t].ops = malloc(count[t] * sizeof(uint32_t) + 1);
        if (cfg->design == D_WORKER)
            w[t].own = cache_make(cfg->budget / nt);
        else if (cfg->design == D_WORKER_FULL)
            w[t].own = cache_make(cfg->budget);
    }
    for (size_t i = 0; i < n_ops; i++) {
        struct worker *x = &w[assign[i]];
        x->ops[x->n++] = (uint32_t)i;
    }
    free(assign);

    for (unsigned t = 0; t < nt; t++)
        pthread_create(&tid[t], NULL, worker_main, &w[t]);
    pthread_barrier_wait(&start);
    double w0 = now_ns(CLOCK_MONOTONIC);
    for (unsigned t = 0; t < nt; t++)
        pthread_join(tid[t], NULL);
    double wall = now_ns(CLOCK_MONOTONIC) - w0;

    unsigned long long lk = 0, h = 0, wl = 0, wh = 0, acq = 0, con = 0;
    double cpu = 0;
    size_t maxn = 0;
    for (unsigned t = 0; t < nt; t++) {
        lk += w[t].lookups;
        h += w[t].hits;
        wl += w[t].warm_lookups;
        wh += w[t].warm_hits;
        acq += w[t].acquired;
        con += w[t].contended;
        cpu += w[t].cpu_ns;
        if (w[t].n > maxn)
            maxn = w[t].n;
    }
    res->hit = 100.0 * (double)h / (double)lk;
    res->warm_hit = 100.0 * (double)wh / (double)wl;
    res->cpu_ns_per_op = cpu / (double)lk;
    res->wall_ns_per_op = wall / (double)lk;
    res->mops = (double)lk / wall * 1e3;
    res->contended = acq ? 100.0 * (double)con / (double)acq : 0;
    res->imbalance = (double)maxn * nt / (double)n_ops;
    res->entries = res->bytes = 0;
    struct dp_cache_stats st;
    unsigned ncaches = is_shared(cfg->design) ? cfg->shards : nt;
    for (unsigned i = 0; i < ncaches; i++) {
        dp_cache_get_stats(is_shared(cfg->design) ? shards[i].cache : w[i].own, &st);
        res->entries += st.entries;
        res->bytes += st.bytes;
    }
    res->shard_skew = 0;
    if (is_shared(cfg->design)) {
        unsigned long long mx = 0, sum = 0;
        for (unsigned i = 0; i < cfg->shards; i++) {
            sum += shards[i].acquired;
            if (shards[i].acquired > mx)
                mx = shards[i].acquired;
        }
        res->shard_skew = (double)mx * cfg->shards / (double)sum;
    }
    res->distinct = probe ? count_distinct(w, nt, cfg) : 0;

    for (unsigned t = 0; t < nt; t++) {
        dp_cache_free(w[t].own);
        free(w[t].ops);
    }
    for (unsigned i = 0; shards && i < cfg->shards; i++) {
        dp_cache_free(shards[i].cache);
        if (cfg->design == D_SHARD_MUTEX)
            pthread_mutex_destroy(&shards[i].lock.mutex);
        else
            pthread_spin_destroy(&shards[i].lock.spin);
    }
    free(shards);
    free(w);
    pthread_barrier_destroy(&start);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Run cfg `reps` times (round-robin with the other configurations would
 * spread noise better, but the machine's load changes slowly; reps back to
 * back keep a configuration's numbers comparable) and print the medians. */
static void run_cfg(const struct run_cfg *cfg, int reps)
{
    double hit[MAX_REPS], warm[MAX_REPS], cpu[MAX_REPS], wall[MAX_REPS], mops[MAX_REPS],
        con[MAX_REPS];
    struct result r0 = {0};
    for (int i = 0; i < reps; i++) {
        struct result r;
        run_once(cfg, i == 0, &r);
        if (i == 0)
            r0 = r;
        hit[i] = r.hit;
        warm[i] = r.warm_hit;
        cpu[i] = r.cpu_ns_per_op;
        wall[i] = r.wall_ns_per_op;
        mops[i] = r.mops;
        con[i] = r.contended;
    }
    char dname[64];
    if (is_shared(cfg->design))
        snprintf(dname, sizeof(dname), "%s, S=%u", design_name[cfg->design], cfg->shards);
    else
        snprintf(dname, sizeof(dname), "%s", design_name[cfg->design]);
    printf("| %-6s | %u | %-28s | %5.1f | %5.1f | %6.0f | %6.0f | %5.2f | %5.2f | %6zu | %6zu | "
           "%4.2f | %4.2f | %4.2f |\n",
           cfg->sticky ? "sticky" : "random", cfg->threads, dname, median(hit, reps),
           median(warm, reps), median(cpu, reps), median(wall, reps), median(mops, reps),
           median(con, reps), r0.entries, r0.distinct,
           r0.distinct ? (double)r0.entries / (double)r0.distinct : 0.0, r0.imbalance,
           r0.shard_skew);
    fflush(stdout);
}

/* The numbers mean something only if every synthesised answer is really
 * cacheable and served back: check each kind once (A, AAAA, NXDOMAIN, and a
 * one-off name) before timing anything. */
static void self_check(void)
{
    struct dp_cache *c = cache_make(1024);
    const size_t probe[] = {
        0, 2, 7, N_CATALOGUE, N_CATALOGUE + 1, N_CATALOGUE + 2, N_CATALOGUE + 3, N_CATALOGUE + 4};
    uint8_t out[4096];
    for (size_t i = 0; i < sizeof(probe) / sizeof(probe[0]); i++) {
        if (probe[i] >= n_items)
            continue;
        const struct item *it = &items[probe[i]];
        const uint8_t *q = arena + it->qoff;
        dotproxy_dns_info info;
        struct dp_cache_key k;
        size_t outlen;
        int rc = dotproxy_dns_parse(&info, q, it->qlen);
        if (rc == 0)
            rc = dp_cache_key_make(&k, q, it->qlen, &info);
        if (rc == 0 && (rc = dp_cache_store(c, &k, arena + it->aoff, it->alen, T0_US)) != 1)
            rc = rc == 0 ? DOTPROXY_EINVAL : rc;
        if (rc == 1)
            rc = dp_cache_lookup(c, &k, T0_US + 1, 0, q, it->qlen, out, sizeof(out), &outlen) ==
                         DP_CACHE_HIT
                     ? 0
                     : DOTPROXY_EINVAL;
        if (rc != 0) {
            fprintf(stderr, "cache_workers: item %zu (answer %u octets) not cached and served\n",
                    probe[i], it->alen);
            die_rc("self-check", rc);
        }
    }
    dp_cache_free(c);
}

/* Costs that do not depend on the design, for the projection to more
 * cores: parse + key alone per query (the part outside any lock), and an
 * uncontended lock + unlock pair. Single thread, thread CPU time, best of 5
 * (the least disturbed by other processes on a shared machine). */
static void baselines(void)
{
    double best_pk = 1e18, best_mx = 1e18, best_sp = 1e18;
    const size_t n = n_ops < 1000000 ? n_ops : 1000000;
    pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
    pthread_spinlock_t sp;
    pthread_spin_init(&sp, PTHREAD_PROCESS_PRIVATE);
    for (int r = 0; r < 5; r++) {
        uint32_t sink = 0;
        double t0 = now_ns(CLOCK_THREAD_CPUTIME_ID);
        for (size_t i = 0; i < n; i++) {
            const struct item *it = &items[stream[i].item];
            const uint8_t *q = arena + it->qoff;
            dotproxy_dns_info info;
            struct dp_cache_key k;
            if (dotproxy_dns_parse(&info, q, it->qlen) != 0 ||
                dp_cache_key_make(&k, q, it->qlen, &info) != 0)
                die_rc("baseline", DOTPROXY_EMALFORMED);
            sink += k.hash;
        }
        double t1 = now_ns(CLOCK_THREAD_CPUTIME_ID);
        burn_sink += sink;
        if ((t1 - t0) / (double)n < best_pk)
            best_pk = (t1 - t0) / (double)n;
        t0 = now_ns(CLOCK_THREAD_CPUTIME_ID);
        for (size_t i = 0; i < 10000000; i++) {
            pthread_mutex_lock(&m);
            pthread_mutex_unlock(&m);
        }
        t1 = now_ns(CLOCK_THREAD_CPUTIME_ID);
        if ((t1 - t0) / 1e7 < best_mx)
            best_mx = (t1 - t0) / 1e7;
        t0 = now_ns(CLOCK_THREAD_CPUTIME_ID);
        for (size_t i = 0; i < 10000000; i++) {
            pthread_spin_lock(&sp);
            pthread_spin_unlock(&sp);
        }
        t1 = now_ns(CLOCK_THREAD_CPUTIME_ID);
        if ((t1 - t0) / 1e7 < best_sp)
            best_sp = (t1 - t0) / 1e7;
    }
    pthread_spin_destroy(&sp);
    printf("# baseline (1 thread, best of 5): parse+key %.0f ns/query; uncontended "
           "lock+unlock pair: mutex %.1f ns, spinlock %.1f ns\n",
           best_pk, best_mx, best_sp);
}

static void usage(void)
{
    fprintf(stderr,
            "usage: cache_workers [--ops N] [--reps N] [--zipf S] [--budget ENTRIES]\n"
            "                     [--work-ns NS] [--threads LIST] [--assign random|sticky|both]\n"
            "                     [--quick]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    size_t ops = 2000000, budget = 10000;
    int reps = 3, quick = 0;
    double zipf_s = 0.95;
    unsigned work_ns = 0;
    unsigned thr[8] = {1, 2, 4};
    unsigned nthr = 3;
    int assign_from = 0, assign_to = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--quick") == 0) {
            quick = 1;
            continue;
        }
        if (v == NULL)
            usage();
        i++;
        if (strcmp(a, "--ops") == 0)
            ops = strtoull(v, NULL, 10);
        else if (strcmp(a, "--reps") == 0)
            reps = atoi(v);
        else if (strcmp(a, "--zipf") == 0)
            zipf_s = strtod(v, NULL);
        else if (strcmp(a, "--budget") == 0)
            budget = strtoull(v, NULL, 10);
        else if (strcmp(a, "--assign") == 0) {
            if (strcmp(v, "random") == 0)
                assign_from = assign_to = 0;
            else if (strcmp(v, "sticky") == 0)
                assign_from = assign_to = 1;
            else if (strcmp(v, "both") != 0)
                usage();
        } else if (strcmp(a, "--work-ns") == 0)
            work_ns = (unsigned)strtoul(v, NULL, 10);
        else if (strcmp(a, "--threads") == 0) {
            nthr = 0;
            for (char *p = (char *)v; *p && nthr < 8;) {
                thr[nthr] = (unsigned)strtoul(p, &p, 10);
                if (thr[nthr] == 0 || thr[nthr] > MAX_THREADS)
                    usage();
                nthr++;
                if (*p == ',')
                    p++;
            }
        } else
            usage();
    }
    if (ops < 1000 || ops > UINT32_MAX || reps < 1 || reps > MAX_REPS || budget < 64)
        usage();

    build_workload(ops, zipf_s);
    self_check();
    calibrate_burn();
    printf("# cache_workers: ops=%zu reps=%d (medians) zipf=%.2f catalogue=%u unique=%.0f%% "
           "clients=%u budget=%zu entries work_ns=%u nproc=%ld items=%zu arena=%zu KiB\n",
           ops, reps, zipf_s, N_CATALOGUE, UNIQUE_FRACTION * 100, N_CLIENTS, budget, work_ns,
           sysconf(_SC_NPROCESSORS_ONLN), n_items, arena_len / 1024);
    baselines();
    printf("| assign | N | design | hit %% | warm hit %% | CPU ns/q | wall ns/q | Mq/s | "
           "lock wait %% | entries | distinct | dup | max load | shard skew |\n");
    printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");

    static const unsigned shard_counts[] = {16, 64};
    for (int sticky = assign_from; sticky <= assign_to; sticky++) {
        for (unsigned ti = 0; ti < nthr; ti++) {
            struct run_cfg cfg = {
                .threads = thr[ti], .sticky = sticky, .budget = budget, .work_ns = work_ns};
            cfg.design = D_WORKER;
            run_cfg(&cfg, reps);
            if (cfg.threads > 1 && !quick) {
                cfg.design = D_WORKER_FULL;
                run_cfg(&cfg, reps);
            }
            for (unsigned si = 0; si < 2; si++) {
                cfg.shards = shard_counts[si];
                cfg.design = D_SHARD_MUTEX;
                run_cfg(&cfg, reps);
                if (!quick) {
                    cfg.design = D_SHARD_SPIN;
                    run_cfg(&cfg, reps);
                }
            }
        }
    }
    free(stream);
    free(items);
    free(arena);
    free(zipf_cdf);
    return 0;
}
