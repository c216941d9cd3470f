/* SPDX-License-Identifier: MIT */
/* Anomaly detection and dynamic blocks (docs/anomaly.md).
 *
 * Memory, all allocated once in dp_dynblock_new (nothing per query), the
 * same whatever the number of clients or names:
 *  - clients: SHARDS x CT_PER_SHARD entries of 64 octets (4 MiB), keyed by
 *    the client's address masked to its rule group's prefix;
 *  - tunnels: SHARDS x TT_PER_SHARD entries of 64 octets (2 MiB), keyed by
 *    (client, registrable domain), in the client's shard;
 *  - domains: SHARDS x DT_PER_SHARD entries of 32 octets (512 KiB);
 *  - two filters of recently seen names, NF_SLOTS x 4 octets each (2 MiB);
 *  - BLOCKS_MAX block records; the public suffix list (about 1 MiB).
 * A key lives within WAYS slots of its home; when all are taken the entry
 * with the smallest decayed count goes (never a blocked one while another
 * can go): a flood of spoofed sources churns among themselves, while a
 * heavy sender, touched often, keeps its place.
 *
 * Sharing: the contexts of all workers call in at once. Each shard has its
 * own mutex (held for a few dozen instructions), the name filters are
 * relaxed atomics, the block records sit behind one more mutex taken only
 * when a block starts, ends or is listed. Lock order: shard, then blocks. */
#include "dynblock.h"

#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "anomaly.h"
#include "bytes.h"
#include "dotproxy/error.h"
#include "log.h"
#include "psl.h"
#include "siphash.h"

#define SHARDS       64u
#define CT_PER_SHARD 1024u
#define TT_PER_SHARD 512u
#define DT_PER_SHARD 256u
#define WAYS         8u
#define NF_SLOTS     (1u << 18)
#define BLOCKS_MAX   1024u
#define GROUPS_MAX   4u
#define SLOTS        6u /* per client entry: 0 is the 10 s query rate */
#define DSLOTS       2u /* subdomains rules */
#define SWEEP_MS     100u
#define DECAY_TAB    64u /* decay tables cover 0..4095 ms, 512 octets a window */

/* Query rate window of slot 0 (top offenders, eviction). */
#define TOP_TAU_MS 10000.0f

struct centry {
    uint64_t hi, lo;   /* masked address, IPv4 as ::ffff:a.b.c.d */
    uint32_t last_ms;  /* 0: empty */
    uint32_t until_ms; /* a block holds while now < until */
    float c[SLOTS];
    uint16_t bidx, bgen; /* the block record */
    uint8_t group, action, exempt, tunnel_blocks;
    uint32_t tslot; /* 1 + the tunnel entry of the last scored query */
    uint16_t qid;   /* its ID: the answer with this ID adds its size */
    uint16_t pad;
} __attribute__((aligned(64))); /* one cache line each, never two */

struct tentry {
    uint64_t key; /* 0: empty */
    uint32_t last_ms;
    uint32_t until_ms;
    struct dp_tunnel_feat f;
    float score;
    uint16_t bidx, bgen;
    uint8_t action, pad[3];
} __attribute__((aligned(64)));

struct dentry {
    uint64_t h; /* domain hash; 0: empty */
    uint32_t last_ms, until_ms;
    float c[DSLOTS];
    uint16_t bidx, bgen;
    uint8_t action, pad[3];
} __attribute__((aligned(32))); /* two a cache line */

_Static_assert(sizeof(struct centry) == 64, "a client entry is one cache line");
_Static_assert(sizeof(struct tentry) == 64, "a tunnel entry is one cache line");
_Static_assert(sizeof(struct dentry) == 32, "two domain entries a cache line");

/* A shard's lock is held for a few dozen instructions: a spin lock (test,
 * then test-and-set; yield the CPU after a while, for when the holder was
 * descheduled) costs a tenth of a mutex's lock and unlock. */
struct spin {
    atomic_flag f;
};

static inline void spin_lock(struct spin *l)
{
    unsigned n = 0;
    while (atomic_flag_test_and_set_explicit(&l->f, memory_order_acquire)) {
        if (++n % 64 == 0)
            sched_yield();
    }
}

static inline void spin_unlock(struct spin *l)
{
    atomic_flag_clear_explicit(&l->f, memory_order_release);
}

/* The lock on a line of its own (the tables start at the next one): the
 * entries stay aligned to lines, so an entry is one cache miss, not two. */
struct shard {
    struct spin mu;
    struct centry c[CT_PER_SHARD];
    struct tentry t[TT_PER_SHARD];
} __attribute__((aligned(64)));

struct dshard {
    struct spin mu;
    struct dentry d[DT_PER_SHARD];
} __attribute__((aligned(64)));

struct block {
    uint16_t gen; /* odd: in use */
    uint8_t rule, action, detector;
    _Atomic uint32_t until_ms;
    uint32_t since_ms;
    _Atomic uint64_t hits;
    char key[96];
    char reason[96];
};

/* A rule as the hot path wants it. */
struct crule {
    uint8_t rule, slot, metric, action;
    uint8_t kind; /* answer rules: 0 nxdomain, 1 servfail, 2 bytes */
    uint8_t tau;  /* index into its group's inv_tau */
    uint16_t qtype;
    float limit; /* threshold x tau: compared with the decayed count */
    float inv_tau_ms;
    uint32_t for_ms;
};

struct group {
    uint8_t mask4, mask6;
    uint32_t m4; /* mask4 as a mask */
    uint64_t m6hi, m6lo;
    struct crule r[SLOTS];
    unsigned n; /* rules in r (slots 1..n) */
    /* The same rules by the hook that counts them: the query hook's (qps,
     * qtype) and the answer hook's (nxdomain, servfail, bytes), so that
     * neither walks the other's. */
    struct crule qr[SLOTS], ar[SLOTS];
    unsigned nq, na;
    float inv_tau[SLOTS]; /* the distinct windows; [0] is slot 0's */
    unsigned ntau;
    /* e^(-dt/tau) for each window by table, for dt under DECAY_TAB^2 ms:
     * lo[j][dt % DECAY_TAB] x hi[j][dt / DECAY_TAB]. */
    float decay_lo[SLOTS][DECAY_TAB], decay_hi[SLOTS][DECAY_TAB];
    uint8_t slot_tau[SLOTS]; /* each slot's window in inv_tau (unused slots: 0) */
    bool query_side;         /* qps / qtype rules */
    bool answer_side;        /* nxdomain / servfail / bytes rules */
};

struct dotproxy_dynblock {
    _Atomic unsigned refs;
    uint64_t sip[2];
    uint64_t epoch_us;
    uint64_t epoch_unix_ms; /* wall clock at epoch_us */
    struct dp_logger log;

    struct dp_dynrule rules[DOTPROXY_DYNBLOCK_RULES_MAX + 2];
    size_t n_rules;
    _Atomic uint64_t rule_hits[DOTPROXY_DYNBLOCK_RULES_MAX + 2];
    _Atomic uint64_t events[DP_AM_COUNT];

    struct group groups[GROUPS_MAX];
    unsigned n_groups;
    bool answer_side;
    struct crule sub[DSLOTS];                                               /* subdomains rules */
    float sub_decay_lo[DSLOTS][DECAY_TAB], sub_decay_hi[DSLOTS][DECAY_TAB]; /* as groups' */
    unsigned n_sub;
    struct crule tun; /* the tunnel rule */
    bool has_tun;

    struct dp_cidr exempt[DOTPROXY_DYNBLOCK_EXEMPT_MAX];
    size_t n_exempt;

    struct dp_psl *psl; /* NULL: the last two labels */
    struct shard *shards;
    struct dshard *dshards;
    _Atomic uint32_t *nf; /* 2 x NF_SLOTS: tunnel names, then missed names */
    void *nf_mem;         /* the same, to free */

    pthread_mutex_t bmu;
    struct block blocks[BLOCKS_MAX];
    _Atomic unsigned n_active;
    _Atomic uint32_t next_sweep_ms;
    uint64_t id; /* this state among all made (the domain memo's tag) */
};

/* The miss hook's memo of name -> registrable domain, per thread (each
 * worker's own, so no lock and no torn entry): benign misses repeat names
 * (the cache holds them for their TTL only), and the public suffix walk
 * with the name's lower-casing is most of a miss's cost. Keyed by the cache
 * key's hash (secret-keyed) mixed with the state's id: a new state (new
 * suffix keys) does not read an old one's entries. */
#define DMEMO_SLOTS 4096u /* 64 KiB per thread that sees misses */
struct dmemo {
    uint64_t tag; /* name hash ^ the state's id, mixed */
    uint64_t dh;
};
static _Thread_local struct dmemo dmemo[DMEMO_SLOTS];
static _Atomic uint64_t next_id = 1;

/* ---- time ---- */

static inline uint32_t ms_of(const struct dotproxy_dynblock *db, uint64_t now_us)
{
    return now_us <= db->epoch_us ? 1 : (uint32_t)((now_us - db->epoch_us) / 1000u) + 1u;
}

static uint64_t unix_ms(const struct dotproxy_dynblock *db, uint32_t ms)
{
    return db->epoch_unix_ms + ms - 1;
}

/* Milliseconds from *last to now, and *last moved to now. Workers' clocks
 * are read at their own turns and may lag one another by a turn: an update
 * from the past counts as now (dt 0) rather than as 49 days ahead. */
static inline uint32_t since(uint32_t *last, uint32_t now)
{
    if (now <= *last)
        return 0;
    uint32_t dt = now - *last;
    *last = now;
    return dt;
}

/* ---- addresses ---- */

static uint64_t be64(const uint8_t *b)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | b[i];
    return v;
}

/* The client as one 128-bit number (IPv4 mapped); -1 for other families. */
static inline int addr_of(const struct sockaddr *sa, uint64_t *hi, uint64_t *lo, bool *v4)
{
    if (sa == NULL)
        return -1;
    if (sa->sa_family == AF_INET) {
        uint32_t a;
        memcpy(&a, (const char *)sa + offsetof(struct sockaddr_in, sin_addr), 4);
        *hi = 0;
        *lo = 0xffff00000000ull | ntohl(a);
        *v4 = true;
        return 0;
    }
    if (sa->sa_family == AF_INET6) {
        uint8_t b[16];
        memcpy(b, (const char *)sa + offsetof(struct sockaddr_in6, sin6_addr), 16);
        *hi = be64(b);
        *lo = be64(b + 8);
        *v4 = *hi == 0 && (*lo >> 32) == 0xffff;
        return 0;
    }
    return -1;
}

static inline void mask_of(const struct group *g, bool v4, uint64_t *hi, uint64_t *lo)
{
    if (v4) {
        *lo = 0xffff00000000ull | ((uint32_t)*lo & g->m4);
    } else {
        *hi &= g->m6hi;
        *lo &= g->m6lo;
    }
}

static bool is_exempt(const struct dotproxy_dynblock *db, uint64_t hi, uint64_t lo, bool v4)
{
    for (size_t i = 0; i < db->n_exempt; i++) {
        const struct dp_cidr *c = &db->exempt[i];
        if ((c->family == AF_INET) != v4)
            continue;
        if (v4) {
            uint32_t a = (uint32_t)lo, net = (uint32_t)c->addr[0] << 24 |
                                             (uint32_t)c->addr[1] << 16 |
                                             (uint32_t)c->addr[2] << 8 | c->addr[3];
            uint32_t m = c->prefix == 0 ? 0 : ~(uint32_t)0 << (32 - c->prefix);
            if ((a & m) == net)
                return true;
        } else {
            uint64_t nh = be64(c->addr), nl = be64(c->addr + 8);
            unsigned p = c->prefix;
            uint64_t mh = p >= 64 ? ~0ull : p == 0 ? 0 : ~0ull << (64 - p);
            uint64_t ml = p <= 64 ? 0 : ~0ull << (128 - p);
            if ((hi & mh) == nh && (lo & ml) == nl)
                return true;
        }
    }
    return false;
}

static void key_text(char *out, size_t cap, uint64_t hi, uint64_t lo, bool v4, unsigned prefix)
{
    char a[INET6_ADDRSTRLEN];
    if (v4) {
        uint8_t b[4] = {(uint8_t)(lo >> 24), (uint8_t)(lo >> 16), (uint8_t)(lo >> 8), (uint8_t)lo};
        inet_ntop(AF_INET, b, a, sizeof a);
        if (prefix < 32)
            snprintf(out, cap, "%s/%u", a, prefix);
        else
            snprintf(out, cap, "%s", a);
    } else {
        uint8_t b[16];
        for (int i = 0; i < 8; i++) {
            b[i] = (uint8_t)(hi >> (56 - 8 * i));
            b[8 + i] = (uint8_t)(lo >> (56 - 8 * i));
        }
        inet_ntop(AF_INET6, b, a, sizeof a);
        snprintf(out, cap, "%s/%u", a, prefix);
    }
}

/* A wire name as text ("example.com"), for log lines and the API. */
static void name_text(char *out, size_t cap, const uint8_t *n, size_t len)
{
    size_t o = 0;
    for (size_t i = 0; i < len && n[i] != 0 && o + 5 < cap; i += 1u + n[i]) {
        if (o > 0)
            out[o++] = '.';
        for (size_t k = 1; k <= n[i] && i + k < len && o + 5 < cap; k++) {
            uint8_t c = n[i + k];
            if (c > 0x20 && c < 0x7f && c != '.' && c != '\\')
                out[o++] = (char)c;
            else
                o += (size_t)snprintf(out + o, cap - o, "\\%03u", c);
        }
    }
    if (o == 0)
        out[o++] = '.';
    out[o] = '\0';
}

/* ---- blocks ---- */

/* Start (or extend, or strengthen) the block of an entry: called with its
 * shard locked, when rule ri's figure `value` (per second, or a score) is
 * over its threshold. until, bidx, bgen and action point into the entry. */
static void block_hit(struct dotproxy_dynblock *db, unsigned ri, uint32_t for_ms, float value,
                      float count, const struct crule *cr, uint32_t now, uint32_t *until,
                      uint16_t *bidx, uint16_t *bgen, uint8_t *action,
                      void (*keyfn)(char *, size_t, const void *), const void *keyarg)
{
    const struct dp_dynrule *r = &db->rules[ri];
    /* `for` runs from when the rate falls back under the threshold. With
     * no more traffic the decayed count c does so after tau x ln(c / limit):
     * the block is set to end then plus `for`, and moved on while traffic
     * keeps the count up. (The score is not a decaying count: `for` from
     * now.) */
    uint32_t below = 0;
    if (cr != NULL && count > cr->limit)
        below = (uint32_t)(logf(count / cr->limit) / cr->inv_tau_ms);
    uint32_t end = now + below + for_ms;
    if (end <= now)
        end = now + 1; /* for=0: ends at the next sweep once under */
    bool live =
        *until > now && *bidx < BLOCKS_MAX && db->blocks[*bidx].gen == *bgen && (*bgen & 1u);
    if (live && r->action <= *action) {
        if (end > *until) {
            *until = end;
            atomic_store_explicit(&db->blocks[*bidx].until_ms, end, memory_order_relaxed);
        }
        return;
    }
    pthread_mutex_lock(&db->bmu);
    struct block *b = NULL;
    if (live) {
        b = &db->blocks[*bidx]; /* a stronger rule takes the block over */
    } else {
        for (unsigned i = 0; i < BLOCKS_MAX; i++)
            if (!(db->blocks[i].gen & 1u)) {
                b = &db->blocks[i];
                break;
            }
        if (b == NULL) {
            pthread_mutex_unlock(&db->bmu);
            return; /* all records in use: the figure is still counted */
        }
        b->gen++;
        b->since_ms = now;
        atomic_store(&b->hits, 0);
        keyfn(b->key, sizeof b->key, keyarg);
        atomic_fetch_add(&db->n_active, 1);
    }
    b->rule = (uint8_t)ri;
    b->action = r->action;
    b->detector = r->metric;
    if (r->metric == DP_AM_TUNNEL) {
        snprintf(b->reason, sizeof b->reason, "tunnel score %.2f > %.2f", (double)value,
                 r->threshold);
    } else {
        const char *m = r->metric == DP_AM_QTYPE ? "qtype" : dp_anomaly_metric_names[r->metric];
        snprintf(b->reason, sizeof b->reason, "%s %.1f/s > %g/s", m, (double)value, r->threshold);
    }
    atomic_store(&b->until_ms, end);
    *until = end;
    *bidx = (uint16_t)(b - db->blocks);
    *bgen = b->gen;
    *action = r->action;
    atomic_fetch_add(&db->events[r->metric], 1);
    static const char *const an[] = {"log", "refuse", "drop", "truncate"};
    dp_log(&db->log, DOTPROXY_LOG_WARN, "dynblock start: %s rule '%s' (%s) key %s, %s",
           r->action == DOTPROXY_DYNBLOCK_LOG ? "event" : "block", r->text, an[r->action], b->key,
           b->reason);
    pthread_mutex_unlock(&db->bmu);
}

/* An entry's block applies now: count the hit and say what to do. */
static int block_applies(struct dotproxy_dynblock *db, uint32_t until, uint16_t bidx, uint16_t bgen,
                         uint8_t action, uint32_t now)
{
    if (until <= now || bidx >= BLOCKS_MAX)
        return DP_DYNBLOCK_PASS;
    struct block *b = &db->blocks[bidx];
    if (b->gen != bgen || atomic_load_explicit(&b->until_ms, memory_order_relaxed) <= now)
        return DP_DYNBLOCK_PASS; /* cleared, or ended */
    atomic_fetch_add_explicit(&b->hits, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&db->rule_hits[b->rule], 1, memory_order_relaxed);
    return action == DOTPROXY_DYNBLOCK_LOG ? DP_DYNBLOCK_PASS : action;
}

void dp_dynblock_sweep(struct dotproxy_dynblock *db, uint64_t now_us)
{
    uint32_t now = ms_of(db, now_us);
    atomic_store_explicit(&db->next_sweep_ms, now + SWEEP_MS, memory_order_relaxed);
    if (atomic_load(&db->n_active) == 0 || pthread_mutex_trylock(&db->bmu) != 0)
        return;
    for (unsigned i = 0; i < BLOCKS_MAX; i++) {
        struct block *b = &db->blocks[i];
        if (!(b->gen & 1u) || atomic_load(&b->until_ms) > now)
            continue;
        dp_log(&db->log, DOTPROXY_LOG_WARN,
               "dynblock end: rule '%s' key %s after %.1f s, %llu queries %s",
               db->rules[b->rule].text, b->key, (double)(now - b->since_ms) / 1000.0,
               (unsigned long long)atomic_load(&b->hits),
               b->action == DOTPROXY_DYNBLOCK_LOG ? "matched" : "blocked");
        b->gen++;
        atomic_fetch_sub(&db->n_active, 1);
    }
    pthread_mutex_unlock(&db->bmu);
}

static inline void maybe_sweep(struct dotproxy_dynblock *db, uint32_t now, uint64_t now_us)
{
    if (now >= atomic_load_explicit(&db->next_sweep_ms, memory_order_relaxed))
        dp_dynblock_sweep(db, now_us);
}

/* ---- tables ---- */

/* Table indexes: a keyed multiply-xorshift mix (a tenth of SipHash's
 * cost). Without the key an attacker cannot aim sources at one bucket, and
 * a bucket collision costs at most the quietest entry of its window. */
static inline uint64_t hash2(const struct dotproxy_dynblock *db, uint64_t a, uint64_t b)
{
    uint64_t h = (a ^ db->sip[0]) * 0x9e3779b97f4a7c15ull;
    h = (h ^ (h >> 32) ^ b ^ db->sip[1]) * 0xbf58476d1ce4e5b9ull;
    h ^= h >> 31;
    h *= 0x94d049bb133111ebull;
    return h ^ (h >> 29);
}

/* The entry for (hi, lo, group) in shard s, made if absent. */
static inline __attribute__((always_inline)) struct centry *
client_entry(struct dotproxy_dynblock *db, struct shard *s, uint64_t h, uint64_t hi, uint64_t lo,
             unsigned group, uint32_t now, bool v4)
{
    unsigned home = (unsigned)h & (CT_PER_SHARD - 1);
    for (unsigned i = 0; i < WAYS; i++) {
        struct centry *e = &s->c[(home + i) & (CT_PER_SHARD - 1)];
        if (e->last_ms != 0 && e->lo == lo && e->hi == hi && e->group == group)
            return e;
    }
    struct centry *victim = NULL;
    float vscore = 0;
    for (unsigned i = 0; i < WAYS; i++) {
        struct centry *e = &s->c[(home + i) & (CT_PER_SHARD - 1)];
        /* Who goes: empty first, then the quietest not blocked. */
        float sc =
            e->last_ms == 0
                ? -1.0f
                : dp_anomaly_age(e->c[0], now > e->last_ms ? now - e->last_ms : 0, 1 / TOP_TAU_MS) +
                      (e->until_ms > now ? 1e30f : 0.0f);
        if (victim == NULL || sc < vscore) {
            victim = e;
            vscore = sc;
        }
    }
    memset(victim, 0, sizeof *victim);
    victim->hi = hi;
    victim->lo = lo;
    victim->group = (uint8_t)group;
    victim->last_ms = now;
    victim->bidx = UINT16_MAX;
    victim->exempt = db->n_exempt > 0 && is_exempt(db, hi, lo, v4);
    return victim;
}

static struct tentry *tunnel_entry(struct shard *s, uint64_t key, uint32_t now)
{
    unsigned home = (unsigned)(key >> 20) & (TT_PER_SHARD - 1);
    struct tentry *victim = NULL;
    float vscore = 0;
    for (unsigned i = 0; i < WAYS; i++) {
        struct tentry *e = &s->t[(home + i) & (TT_PER_SHARD - 1)];
        if (e->key == key)
            return e;
        float sc = e->key == 0 ? -1.0f : e->f.n + (e->until_ms > now ? 1e30f : 0.0f);
        if (victim == NULL || sc < vscore) {
            victim = e;
            vscore = sc;
        }
    }
    memset(victim, 0, sizeof *victim);
    victim->key = key;
    victim->last_ms = now;
    victim->bidx = UINT16_MAX;
    return victim;
}

/* 1 if the name (hash h) was not seen lately in filter `which`; records it. */
static bool name_new(struct dotproxy_dynblock *db, unsigned which, uint64_t h)
{
    _Atomic uint32_t *slot = &db->nf[which * NF_SLOTS + ((uint32_t)h & (NF_SLOTS - 1))];
    uint32_t fp = (uint32_t)(h >> 32) | 1u;
    if (atomic_load_explicit(slot, memory_order_relaxed) == fp)
        return false;
    atomic_store_explicit(slot, fp, memory_order_relaxed);
    return true;
}

/* The question name in lower case into buf (info->qname_len octets), and
 * its keyed hash: eight octets at a time, lower-cased as one word (an octet
 * is upper case when its low seven bits are 'A'..'Z' and its top bit is
 * clear), one multiply each. A quarter of SipHash's cost with the
 * lower-casing it needed first; keyed, so names cannot be aimed at one
 * filter slot or memo entry. */
static inline uint64_t qname_lower_hash(const struct dotproxy_dynblock *db, uint8_t *buf,
                                        const uint8_t *msg, const dotproxy_dns_info *info)
{
    const uint8_t *n = msg + info->qname_off;
    size_t len = info->qname_len, i = 0;
    const uint64_t ones = 0x0101010101010101ull;
    uint64_t h = db->sip[0] ^ len;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, n + i, 8);
        uint64_t low = w & (0x7f * ones);
        uint64_t up =
            (low + (0x80 - 'A') * ones) & ~(low + (0x80 - 'Z' - 1) * ones) & ~w & (0x80 * ones);
        w |= up >> 2;
        memcpy(buf + i, &w, 8);
        h = (h ^ w) * 0x9e3779b97f4a7c15ull;
        h ^= h >> 32;
    }
    uint64_t w = 0;
    for (unsigned k = 0; i < len; i++, k++) {
        uint8_t c = n[i];
        buf[i] = c >= 'A' && c <= 'Z' ? (uint8_t)(c + 32) : c;
        w |= (uint64_t)buf[i] << (8 * k);
    }
    h = (h ^ w ^ db->sip[1]) * 0xbf58476d1ce4e5b9ull;
    h ^= h >> 31;
    h *= 0x94d049bb133111ebull;
    return h ^ (h >> 29);
}

/* The query hook's memo of name -> registrable domain (and where it starts
 * in the name), per thread like the miss hook's, keyed by the name's hash
 * (qname_lower_hash) mixed with the state's id: a scored query whose name
 * was seen lately skips the public suffix walk. */
#define QMEMO_SLOTS 4096u /* 64 KiB per thread that scores queries */
struct qmemo {
    uint64_t tag;
    uint64_t dh; /* the domain hash, its low octet the domain's offset */
};
static _Thread_local struct qmemo qmemo[QMEMO_SLOTS];

/* The registrable domain of the lower-case name (hash nh): its hash (low
 * octet cleared) and its offset in the name. */
static inline uint64_t name_domain(const struct dotproxy_dynblock *db, const uint8_t *name,
                                   size_t len, uint64_t nh, size_t *doff)
{
    uint64_t tag = nh ^ db->id * 0x9e3779b97f4a7c15ull;
    struct qmemo *m = &qmemo[(nh >> 7) & (QMEMO_SLOTS - 1)];
    if (m->tag == tag) {
        *doff = (size_t)(m->dh & 0xff);
        return m->dh & ~(uint64_t)0xff;
    }
    uint64_t dh;
    *doff = dp_psl_domain(db->psl, name, len, &dh);
    dh &= ~(uint64_t)0xff;
    *m = (struct qmemo){tag, dh | *doff};
    return dh;
}

/* Bring an entry's counts from its last update to now: one e^-x per
 * distinct window of the group (usually one), not one per rule. */
static __attribute__((noinline)) void age_entry_by(const struct group *gr, struct centry *e,
                                                   uint32_t dt)
{
    float k[SLOTS];
    /* A client seen again within 4 s (every busy one): two table reads and
     * a product instead of the polynomial. */
    if (dt < DECAY_TAB * DECAY_TAB) {
        unsigned lo = dt % DECAY_TAB, hi = dt / DECAY_TAB;
        for (unsigned j = 0; j < gr->ntau; j++)
            k[j] = gr->decay_lo[j][lo] * gr->decay_hi[j][hi];
    } else {
        for (unsigned j = 0; j < gr->ntau; j++)
            k[j] = dp_anomaly_decay((float)dt * gr->inv_tau[j]);
    }
    /* Every slot, used or not (unused ones hold 0): a fixed count the
     * compiler unrolls. */
    if (gr->ntau == 1) {
        for (unsigned i = 0; i < SLOTS; i++)
            e->c[i] *= k[0];
    } else {
        for (unsigned i = 0; i < SLOTS; i++)
            e->c[i] *= k[gr->slot_tau[i]];
    }
}

/* Out of line: an answer that follows its query at once (a cache hit) has
 * nothing to age, and the hooks stay small without it. */
static inline void age_entry(const struct group *gr, struct centry *e, uint32_t dt)
{
    if (dt != 0)
        age_entry_by(gr, e, dt);
}

/* ---- key texts, made only when a block starts ---- */

struct ckey {
    uint64_t hi, lo;
    bool v4;
    unsigned prefix;
};

static void ckey_text(char *out, size_t cap, const void *arg)
{
    const struct ckey *k = arg;
    key_text(out, cap, k->hi, k->lo, k->v4, k->prefix);
}

struct tkey {
    struct ckey c;
    const uint8_t *dom;
    size_t dlen;
};

static void tkey_text(char *out, size_t cap, const void *arg)
{
    const struct tkey *k = arg;
    char a[64], d[96];
    key_text(a, sizeof a, k->c.hi, k->c.lo, k->c.v4, k->c.prefix);
    name_text(d, sizeof d, k->dom, k->dlen);
    snprintf(out, cap, "%s %s", a, d);
}

struct dkey {
    const uint8_t *dom;
    size_t dlen;
};

static void dkey_text(char *out, size_t cap, const void *arg)
{
    const struct dkey *k = arg;
    name_text(out, cap, k->dom, k->dlen);
}

/* ---- the hooks ---- */

/* A client rule's count is over its threshold: block (or extend) unless
 * the client is exempt. Out of line, so that the hooks' loops over their
 * rules stay a few instructions each. */
static __attribute__((noinline)) void client_over(struct dotproxy_dynblock *db,
                                                  const struct group *gr, const struct crule *r,
                                                  struct centry *e, bool v4, uint32_t now)
{
    if (e->exempt)
        return;
    float c = e->c[r->slot];
    struct ckey k = {e->hi, e->lo, v4, v4 ? gr->mask4 : gr->mask6};
    block_hit(db, r->rule, r->for_ms, c * 1000.0f * r->inv_tau_ms, c, r, now, &e->until_ms,
              &e->bidx, &e->bgen, &e->action, ckey_text, &k);
}

/* The tunnel part of a query, with its client's shard locked: score it (if
 * it looks like tunnel traffic at all) and say whether (client, domain) is
 * blocked. */
static __attribute__((noinline)) int tunnel_query(struct dotproxy_dynblock *db, struct shard *s,
                                                  struct centry *ce, uint64_t chash,
                                                  const uint8_t *msg, const dotproxy_dns_info *info,
                                                  uint32_t now, bool scored, bool v4)
{
    uint8_t name[DOTPROXY_DNS_MAX_NAME];
    uint64_t nh = qname_lower_hash(db, name, msg, info);
    size_t doff;
    uint64_t dh = name_domain(db, name, info->qname_len, nh, &doff);
    uint64_t key = hash2(db, chash, dh) | 1u;
    struct tentry *t = tunnel_entry(s, key, now);
    if (scored) {
        struct dp_name_shape sh;
        dp_anomaly_shape(&sh, name, doff);
        uint32_t dt = since(&t->last_ms, now);
        if (dt > 0) {
            float k = dp_anomaly_decay((float)dt * db->tun.inv_tau_ms);
            t->f.n *= k, t->f.longest *= k, t->f.entropy *= k;
            t->f.uniq *= k, t->f.types *= k, t->f.size *= k;
        }
        t->f.n += 1;
        t->f.longest += (float)sh.longest;
        t->f.entropy += sh.entropy;
        t->f.uniq += name_new(db, 0, nh) ? 1.0f : 0.0f;
        t->f.types += dp_anomaly_tunnel_qtype(info->qtype) ? 1.0f : 0.0f;
        t->f.size += (float)info->question_end + 11.0f; /* the answer adds its own */
        t->score = dp_anomaly_tunnel_score(&t->f);
        ce->tslot = 1u + (uint32_t)(t - s->t);
        ce->qid = info->id;
        if (t->score > db->tun.limit && !ce->exempt) {
            struct tkey k = {
                {ce->hi, ce->lo, v4, v4 ? 32u : 128u}, name + doff, info->qname_len - doff};
            bool was = t->until_ms > now;
            block_hit(db, db->tun.rule, db->tun.for_ms, t->score, 0, NULL, now, &t->until_ms,
                      &t->bidx, &t->bgen, &t->action, tkey_text, &k);
            if (!was && t->action != DOTPROXY_DYNBLOCK_LOG)
                ce->tunnel_blocks = 1;
        }
    }
    return block_applies(db, t->until_ms, t->bidx, t->bgen, t->action, now);
}

/* The client entry a slot (dp_dynblock_query's *slot) names, locked, if it
 * still holds (hi, lo) in group 0; NULL (nothing locked) if it was taken
 * over since. */
static inline struct centry *slot_entry(struct dotproxy_dynblock *db, uint32_t slot, uint64_t hi,
                                        uint64_t lo, struct shard **sp)
{
    if (slot == 0 || slot > SHARDS * CT_PER_SHARD)
        return NULL;
    struct shard *s = &db->shards[(slot - 1) / CT_PER_SHARD];
    spin_lock(&s->mu);
    struct centry *e = &s->c[(slot - 1) % CT_PER_SHARD];
    if (e->last_ms != 0 && e->lo == lo && e->hi == hi && e->group == 0) {
        *sp = s;
        return e;
    }
    spin_unlock(&s->mu);
    return NULL;
}

/* A query into one group's entry of its client; for group 0 also its
 * slot (for the answer hook) and the tunnel part. */
static inline __attribute__((always_inline)) int
query_group(struct dotproxy_dynblock *db, unsigned g, uint64_t hi, uint64_t lo, bool v4,
            const uint8_t *msg, const dotproxy_dns_info *info, uint32_t now, bool scored,
            uint32_t *slot)
{
    const struct group *gr = &db->groups[g];
    mask_of(gr, v4, &hi, &lo);
    uint64_t h = hash2(db, hi, lo ^ g);
    struct shard *s = &db->shards[h >> 58];
    spin_lock(&s->mu);
    struct centry *e = client_entry(db, s, h, hi, lo, g, now, v4);
    age_entry(gr, e, since(&e->last_ms, now));
    e->c[0] += 1;
    for (unsigned i = 0; i < gr->nq; i++) {
        const struct crule *r = &gr->qr[i];
        float *c = &e->c[r->slot];
        bool hit = r->qtype == 0 || r->qtype == info->qtype; /* qps: qtype 0 */
        *c += hit ? 1.0f : 0.0f;
        if (hit && *c > r->limit)
            client_over(db, gr, r, e, v4, now);
    }
    int verdict = DP_DYNBLOCK_PASS;
    if (e->until_ms > now)
        verdict = block_applies(db, e->until_ms, e->bidx, e->bgen, e->action, now);
    if (g == 0) {
        if (slot != NULL)
            *slot = 1u + (uint32_t)(h >> 58) * CT_PER_SHARD + (uint32_t)(e - s->c);
        if (db->has_tun && (scored || e->tunnel_blocks)) {
            int v = tunnel_query(db, s, e, h, msg, info, now, scored, v4);
            if (v > verdict)
                verdict = v;
        }
    }
    spin_unlock(&s->mu);
    return verdict;
}

/* Groups past the first (rules with their own mask): rare, out of line. */
static __attribute__((noinline)) int query_other_group(struct dotproxy_dynblock *db, unsigned g,
                                                       uint64_t hi, uint64_t lo, bool v4,
                                                       const uint8_t *msg,
                                                       const dotproxy_dns_info *info, uint32_t now)
{
    return query_group(db, g, hi, lo, v4, msg, info, now, false, NULL);
}

int dp_dynblock_query(struct dotproxy_dynblock *db, const struct sockaddr *client,
                      const uint8_t *msg, const dotproxy_dns_info *info, uint64_t now_us,
                      uint32_t *slot)
{
    uint64_t ahi, alo;
    bool v4;
    if (slot != NULL)
        *slot = 0;
    if (addr_of(client, &ahi, &alo, &v4) != 0)
        return DP_DYNBLOCK_PASS;
    uint32_t now = ms_of(db, now_us);
    maybe_sweep(db, now, now_us);
    /* Worth a tunnel score: a long label anywhere, or a type tunnels use. */
    bool scored = false;
    if (db->has_tun) {
        scored = dp_anomaly_tunnel_qtype(info->qtype);
        /* A 16-octet label needs a name of 18 octets at least. */
        const uint8_t *n = msg + info->qname_off;
        for (size_t i = 0; !scored && info->qname_len >= 18 && i < info->qname_len && n[i] != 0;
             i += 1u + n[i])
            scored = n[i] >= 16;
    }
    int verdict = query_group(db, 0, ahi, alo, v4, msg, info, now, scored, slot);
    for (unsigned g = 1; g < db->n_groups; g++)
        if (db->groups[g].query_side) {
            int v = query_other_group(db, g, ahi, alo, v4, msg, info, now);
            if (v > verdict)
                verdict = v;
        }
    return verdict;
}

int dp_dynblock_miss(struct dotproxy_dynblock *db, const struct sockaddr *client,
                     const uint8_t *msg, const dotproxy_dns_info *info, uint64_t name_hash,
                     uint64_t now_us)
{
    if (db->n_sub == 0 || info->qname_len == 0)
        return DP_DYNBLOCK_PASS;
    uint32_t now = ms_of(db, now_us);
    uint8_t name[DOTPROXY_DNS_MAX_NAME];
    uint64_t dh;
    size_t doff = SIZE_MAX; /* not known yet: the memo had the domain */
    uint64_t tag = name_hash ^ db->id * 0x9e3779b97f4a7c15ull;
    struct dmemo *m = name_hash != 0 ? &dmemo[(name_hash >> 7) & (DMEMO_SLOTS - 1)] : NULL;
    if (m != NULL && m->tag == tag) {
        dh = m->dh;
    } else {
        uint64_t nh = qname_lower_hash(db, name, msg, info);
        doff = dp_psl_domain(db->psl, name, info->qname_len, &dh);
        if (name_hash == 0)
            name_hash = nh;
        else
            *m = (struct dmemo){tag, dh};
    }
    bool fresh = name_new(db, 1, name_hash ^ (uint64_t)info->qtype << 40);
    dh |= 1u;
    struct dshard *s = &db->dshards[dh >> 58];
    spin_lock(&s->mu);
    unsigned home = (unsigned)(dh >> 20) & (DT_PER_SHARD - 1);
    struct dentry *d = NULL, *victim = NULL;
    float vscore = 0;
    for (unsigned i = 0; i < WAYS; i++) {
        struct dentry *e = &s->d[(home + i) & (DT_PER_SHARD - 1)];
        if (e->h == dh) {
            d = e;
            break;
        }
        float sc = e->h == 0 ? -1.0f : e->c[0] + (e->until_ms > now ? 1e30f : 0.0f);
        if (victim == NULL || sc < vscore) {
            victim = e;
            vscore = sc;
        }
    }
    if (d == NULL) {
        d = victim;
        memset(d, 0, sizeof *d);
        d->h = dh;
        d->last_ms = now;
        d->bidx = UINT16_MAX;
    }
    uint32_t dt = since(&d->last_ms, now);
    for (unsigned i = 0; i < db->n_sub; i++) {
        const struct crule *r = &db->sub[i];
        if (dt > 0 && dt < DECAY_TAB * DECAY_TAB)
            d->c[i] *= db->sub_decay_lo[i][dt % DECAY_TAB] * db->sub_decay_hi[i][dt / DECAY_TAB];
        else if (dt > 0)
            d->c[i] = dp_anomaly_age(d->c[i], dt, r->inv_tau_ms);
        if (fresh) {
            d->c[i] += 1;
            if (d->c[i] > r->limit) {
                if (doff == SIZE_MAX) { /* the block's key text needs the name */
                    uint64_t again;
                    (void)qname_lower_hash(db, name, msg, info);
                    doff = dp_psl_domain(db->psl, name, info->qname_len, &again);
                }
                struct dkey k = {name + doff, info->qname_len - doff};
                block_hit(db, r->rule, r->for_ms, d->c[i] * 1000.0f * r->inv_tau_ms, d->c[i], r,
                          now, &d->until_ms, &d->bidx, &d->bgen, &d->action, dkey_text, &k);
            }
        }
    }
    int v = DP_DYNBLOCK_PASS;
    if (d->until_ms > now) {
        uint64_t hi, lo;
        bool v4;
        /* Exempt clients are served; only they pay for the check. */
        if (db->n_exempt == 0 || addr_of(client, &hi, &lo, &v4) != 0 || !is_exempt(db, hi, lo, v4))
            v = block_applies(db, d->until_ms, d->bidx, d->bgen, d->action, now);
    }
    spin_unlock(&s->mu);
    return v;
}

/* One answer into one group's entry of its client. slot: the query hook's
 * (group 0 only; 0 for the others). tun: the answer's size goes to the
 * client's last scored query (group 0). */
static inline __attribute__((always_inline)) void
answer_group(struct dotproxy_dynblock *db, unsigned g, uint64_t hi, uint64_t lo, bool v4,
             uint32_t slot, const float add[3], bool tun, uint16_t id, size_t len, uint32_t now)
{
    const struct group *gr = &db->groups[g];
    mask_of(gr, v4, &hi, &lo);
    struct shard *s;
    /* Group 0's entry is where the query hook left it, unless another
     * client took it over since: then it is looked up again. */
    struct centry *e = slot != 0 ? slot_entry(db, slot, hi, lo, &s) : NULL;
    if (e == NULL) {
        uint64_t h = hash2(db, hi, lo ^ g);
        s = &db->shards[h >> 58];
        spin_lock(&s->mu);
        e = client_entry(db, s, h, hi, lo, g, now, v4);
    }
    age_entry(gr, e, since(&e->last_ms, now));
    for (unsigned i = 0; i < gr->na; i++) {
        const struct crule *r = &gr->ar[i];
        float *c = &e->c[r->slot], a = add[r->kind];
        *c += a; /* + 0 when the answer is not of its kind */
        if (a != 0 && *c > r->limit)
            client_over(db, gr, r, e, v4, now);
    }
    if (tun && e->tslot != 0 && e->qid == id) {
        struct tentry *t = &s->t[e->tslot - 1];
        t->f.size += (float)len;
        e->tslot = 0;
    }
    spin_unlock(&s->mu);
}

/* Groups past the first (rules with their own mask): rare, out of line. */
static __attribute__((noinline)) void answer_groups(struct dotproxy_dynblock *db, uint64_t hi,
                                                    uint64_t lo, bool v4, const float add[3],
                                                    uint32_t now)
{
    for (unsigned g = 1; g < db->n_groups; g++)
        if (db->groups[g].answer_side)
            answer_group(db, g, hi, lo, v4, 0, add, false, 0, 0, now);
}

void dp_dynblock_answer(struct dotproxy_dynblock *db, const struct sockaddr *client,
                        const uint8_t *msg, size_t len, int udp, uint16_t qtype, uint64_t now_us,
                        uint32_t slot)
{
    bool tun = db->has_tun && dp_anomaly_tunnel_qtype(qtype);
    if ((!db->answer_side && !tun) || len < DOTPROXY_DNS_HEADER_SIZE)
        return;
    uint64_t hi, lo;
    bool v4;
    if (addr_of(client, &hi, &lo, &v4) != 0)
        return;
    uint32_t now = ms_of(db, now_us);
    unsigned rcode = DOTPROXY_DNS_RCODE(dp_get16(msg + 2));
    /* What the answer adds to each kind of answer rule (crule.kind). */
    const float add[3] = {rcode == DOTPROXY_RCODE_NXDOMAIN ? 1.0f : 0.0f,
                          rcode == DOTPROXY_RCODE_SERVFAIL ? 1.0f : 0.0f, udp ? (float)len : 0.0f};
    if (db->groups[0].answer_side || tun)
        answer_group(db, 0, hi, lo, v4, slot, add, tun, dp_get16(msg), len, now);
    if (db->n_groups > 1)
        answer_groups(db, hi, lo, v4, add, now);
}

/* ---- building ---- */

static void crule_of(struct crule *c, const struct dp_dynrule *r, unsigned ri, unsigned slot)
{
    c->rule = (uint8_t)ri;
    c->slot = (uint8_t)slot;
    c->metric = r->metric;
    c->action = r->action;
    c->qtype = r->metric == DP_AM_QTYPE ? r->qtype : 0;
    c->kind = r->metric == DP_AM_NXDOMAIN ? 0 : r->metric == DP_AM_SERVFAIL ? 1 : 2;
    float tau_ms = (float)r->window_s * 1000.0f;
    c->inv_tau_ms = 1.0f / tau_ms;
    /* Rates compare as decayed counts (rate x tau); the score as is. */
    c->limit =
        r->metric == DP_AM_TUNNEL ? (float)r->threshold : (float)r->threshold * (float)r->window_s;
    c->for_ms = r->for_s * 1000u;
}

/* e^(-dt/tau) for dt = d (lo) and d x DECAY_TAB (hi) milliseconds. */
static void decay_tables(float *lo, float *hi, float inv_tau_ms)
{
    for (unsigned d = 0; d < DECAY_TAB; d++) {
        lo[d] = (float)exp(-(double)d * inv_tau_ms);
        hi[d] = (float)exp(-(double)(d * DECAY_TAB) * inv_tau_ms);
    }
}

static int build_rules(struct dotproxy_dynblock *db, const struct dotproxy_config *cfg)
{
    bool has_sub = false;
    for (size_t i = 0; i < cfg->n_dyn_rules; i++) {
        db->rules[db->n_rules++] = cfg->dyn_rules[i];
        has_sub |= cfg->dyn_rules[i].metric == DP_AM_SUBDOMAINS;
        db->has_tun |= cfg->dyn_rules[i].metric == DP_AM_TUNNEL;
    }
    if (!has_sub)
        dp_anomaly_rule_default(&db->rules[db->n_rules++], DP_AM_SUBDOMAINS);
    if (!db->has_tun) {
        dp_anomaly_rule_default(&db->rules[db->n_rules++], DP_AM_TUNNEL);
        db->has_tun = true;
    }
    db->n_groups = 1;
    db->groups[0].mask4 = 32;
    db->groups[0].mask6 = 64;
    bool tun_set = false;
    for (size_t i = 0; i < db->n_rules; i++) {
        const struct dp_dynrule *r = &db->rules[i];
        if (r->metric == DP_AM_SUBDOMAINS) {
            if (db->n_sub == DSLOTS)
                return DOTPROXY_ELIMIT;
            crule_of(&db->sub[db->n_sub], r, (unsigned)i, db->n_sub);
            decay_tables(db->sub_decay_lo[db->n_sub], db->sub_decay_hi[db->n_sub],
                         db->sub[db->n_sub].inv_tau_ms);
            db->n_sub++;
            continue;
        }
        if (r->metric == DP_AM_TUNNEL) {
            /* One tunnel rule: the last given wins (its score is one). */
            crule_of(&db->tun, r, (unsigned)i, 0);
            tun_set = true;
            continue;
        }
        unsigned g = 0;
        while (g < db->n_groups &&
               !(db->groups[g].mask4 == r->mask4 && db->groups[g].mask6 == r->mask6))
            g++;
        if (g == db->n_groups) {
            if (g == GROUPS_MAX)
                return DOTPROXY_ELIMIT;
            db->groups[g].mask4 = r->mask4;
            db->groups[g].mask6 = r->mask6;
            db->n_groups++;
        }
        struct group *gr = &db->groups[g];
        if (gr->n == SLOTS - 1)
            return DOTPROXY_ELIMIT;
        crule_of(&gr->r[gr->n], r, (unsigned)i, gr->n + 1);
        gr->n++;
        if (r->metric == DP_AM_QPS || r->metric == DP_AM_QTYPE)
            gr->query_side = true;
        else
            gr->answer_side = db->answer_side = true;
    }
    (void)tun_set;
    for (unsigned g = 0; g < db->n_groups; g++) {
        struct group *gr = &db->groups[g];
        gr->inv_tau[0] = 1 / TOP_TAU_MS;
        gr->ntau = 1;
        for (unsigned i = 0; i < gr->n; i++) {
            unsigned j = 0;
            while (j < gr->ntau && gr->inv_tau[j] != gr->r[i].inv_tau_ms)
                j++;
            if (j == gr->ntau)
                gr->inv_tau[gr->ntau++] = gr->r[i].inv_tau_ms;
            gr->r[i].tau = (uint8_t)j;
            gr->slot_tau[gr->r[i].slot] = (uint8_t)j;
        }
        for (unsigned j = 0; j < gr->ntau; j++)
            decay_tables(gr->decay_lo[j], gr->decay_hi[j], gr->inv_tau[j]);
        for (unsigned i = 0; i < gr->n; i++) {
            if (gr->r[i].metric == DP_AM_QPS || gr->r[i].metric == DP_AM_QTYPE)
                gr->qr[gr->nq++] = gr->r[i];
            else
                gr->ar[gr->na++] = gr->r[i];
        }
        gr->m4 = gr->mask4 == 0 ? 0 : ~(uint32_t)0 << (32 - gr->mask4);
        unsigned p = gr->mask6;
        gr->m6hi = p >= 64 ? ~0ull : ~0ull << (64 - p);
        gr->m6lo = p <= 64 ? 0 : ~0ull << (128 - p);
    }
    return 0;
}

int dp_dynblock_new(struct dotproxy_dynblock **out, const struct dotproxy_config *cfg,
                    uint64_t epoch_us)
{
    struct dotproxy_dynblock *db = calloc(1, sizeof *db);
    if (db == NULL)
        return DOTPROXY_ENOMEM;
    atomic_init(&db->refs, 1);
    dp_siphash_key(db->sip);
    db->id = atomic_fetch_add_explicit(&next_id, 1, memory_order_relaxed);
    db->epoch_us = epoch_us;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    db->epoch_unix_ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
    db->log = cfg->log;
    memcpy(db->exempt, cfg->dyn_exempt, sizeof db->exempt);
    db->n_exempt = cfg->n_dyn_exempt;
    pthread_mutex_init(&db->bmu, NULL);
    int r = build_rules(db, cfg);
    if (r != 0) {
        free(db);
        return r == DOTPROXY_ELIMIT ? DOTPROXY_EINVAL : r;
    }
    /* calloc: pages are touched (and cost RSS) only as clients come. */
    db->shards = calloc(SHARDS, sizeof *db->shards);
    db->dshards = calloc(SHARDS, sizeof *db->dshards);
    db->nf = db->nf_mem = calloc(2 * NF_SLOTS, sizeof *db->nf);
    if (db->shards == NULL || db->dshards == NULL || db->nf == NULL) {
        free(db->shards);
        free(db->dshards);
        free(db->nf_mem);
        free(db);
        return DOTPROXY_ENOMEM;
    }
    for (unsigned i = 0; i < SHARDS; i++) {
        atomic_flag_clear(&db->shards[i].mu.f);
        atomic_flag_clear(&db->dshards[i].mu.f);
    }
    for (unsigned i = 0; i < BLOCKS_MAX; i++)
        db->blocks[i].gen = 0;
    if (dp_psl_load(&db->psl, NULL) != 0) {
        db->psl = NULL;
        dp_log(&db->log, DOTPROXY_LOG_WARN,
               "anomaly: no public suffix list at %s: domains are the last two labels",
               DP_PSL_DEFAULT_FILE);
    }
    *out = db;
    return 0;
}

struct dotproxy_dynblock *dp_dynblock_ref(struct dotproxy_dynblock *db)
{
    if (db != NULL)
        atomic_fetch_add(&db->refs, 1);
    return db;
}

void dp_dynblock_unref(struct dotproxy_dynblock *db)
{
    if (db == NULL || atomic_fetch_sub(&db->refs, 1) != 1)
        return;
    pthread_mutex_destroy(&db->bmu);
    dp_psl_free(db->psl);
    free(db->shards);
    free(db->dshards);
    free(db->nf_mem);
    free(db);
}

size_t dp_dynblock_memory(const struct dotproxy_dynblock *db)
{
    (void)db;
    return sizeof(struct dotproxy_dynblock) + SHARDS * sizeof(struct shard) +
           SHARDS * sizeof(struct dshard) + 2 * NF_SLOTS * sizeof(uint32_t);
}

int dp_dynblock_cidr_parse(struct dp_cidr *out, const char *text)
{
    char addr[64];
    const char *slash = strchr(text, '/');
    size_t alen = slash != NULL ? (size_t)(slash - text) : strlen(text);
    if (alen == 0 || alen >= sizeof addr)
        return DOTPROXY_EADDR;
    memcpy(addr, text, alen);
    addr[alen] = '\0';
    struct dp_cidr c = {0};
    unsigned max;
    if (inet_pton(AF_INET, addr, c.addr) == 1) {
        c.family = AF_INET;
        max = 32;
    } else if (inet_pton(AF_INET6, addr, c.addr) == 1) {
        c.family = AF_INET6;
        max = 128;
    } else {
        return DOTPROXY_EADDR;
    }
    unsigned prefix = max;
    if (slash != NULL) {
        const char *p = slash + 1;
        if (*p == '\0' || strlen(p) > 3)
            return DOTPROXY_EADDR;
        prefix = 0;
        for (; *p != '\0'; p++) {
            if (*p < '0' || *p > '9')
                return DOTPROXY_EADDR;
            prefix = prefix * 10 + (unsigned)(*p - '0');
        }
        if (prefix > max)
            return DOTPROXY_EADDR;
    }
    c.prefix = (uint8_t)prefix;
    for (unsigned bit = prefix; bit < max; bit++)
        c.addr[bit / 8] &= (uint8_t) ~(0x80u >> (bit % 8));
    *out = c;
    return 0;
}

/* ---- public ---- */

DOTPROXY_EXPORT int dotproxy_dynblock_new(dotproxy_dynblock **out, const dotproxy_config *cfg)
{
    if (out == NULL || cfg == NULL)
        return DOTPROXY_EINVAL;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return dp_dynblock_new(out, cfg, (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u);
}

DOTPROXY_EXPORT void dotproxy_dynblock_free(dotproxy_dynblock *db)
{
    dp_dynblock_unref(db);
}

DOTPROXY_EXPORT const char *dotproxy_anomaly_detector_name(size_t i)
{
    return i < DP_AM_COUNT ? dp_anomaly_metric_names[i] : NULL;
}

/* ---- the operator's view ---- */

size_t dp_dynblock_list(struct dotproxy_dynblock *db, dotproxy_dynblock_entry *out, size_t cap,
                        uint64_t now_us)
{
    dp_dynblock_sweep(db, now_us);
    size_t n = 0;
    pthread_mutex_lock(&db->bmu);
    for (unsigned i = 0; i < BLOCKS_MAX; i++) {
        const struct block *b = &db->blocks[i];
        if (!(b->gen & 1u))
            continue;
        if (n < cap) {
            dotproxy_dynblock_entry *e = &out[n];
            memset(e, 0, sizeof *e);
            snprintf(e->key, sizeof e->key, "%s", b->key);
            snprintf(e->rule, sizeof e->rule, "%s", db->rules[b->rule].text);
            snprintf(e->reason, sizeof e->reason, "%s", b->reason);
            e->since_ms = unix_ms(db, b->since_ms);
            e->until_ms = unix_ms(db, atomic_load(&b->until_ms));
            e->blocked = atomic_load(&b->hits);
            e->action = b->action;
            e->detector = b->detector;
        }
        n++;
    }
    pthread_mutex_unlock(&db->bmu);
    return n;
}

size_t dp_dynblock_clear(struct dotproxy_dynblock *db, uint64_t now_us)
{
    uint32_t now = ms_of(db, now_us);
    size_t n = 0;
    pthread_mutex_lock(&db->bmu);
    for (unsigned i = 0; i < BLOCKS_MAX; i++) {
        struct block *b = &db->blocks[i];
        if (!(b->gen & 1u))
            continue;
        dp_log(&db->log, DOTPROXY_LOG_WARN,
               "dynblock end: rule '%s' key %s cleared after %.1f s, %llu queries %s",
               db->rules[b->rule].text, b->key, (double)(now - b->since_ms) / 1000.0,
               (unsigned long long)atomic_load(&b->hits),
               b->action == DOTPROXY_DYNBLOCK_LOG ? "matched" : "blocked");
        /* The entries still point here with the old generation: they are
         * unblocked at once, and block again only if they cross again. */
        b->gen++;
        atomic_fetch_sub(&db->n_active, 1);
        n++;
    }
    pthread_mutex_unlock(&db->bmu);
    return n;
}

uint64_t dp_dynblock_events(const struct dotproxy_dynblock *db, size_t detector)
{
    return detector < DP_AM_COUNT ? atomic_load(&db->events[detector]) : 0;
}

int dp_dynblock_rule(const struct dotproxy_dynblock *db, size_t i, char *text, size_t cap,
                     uint64_t *hits)
{
    if (i >= db->n_rules)
        return DOTPROXY_EINVAL;
    if (text != NULL && cap > 0)
        snprintf(text, cap, "%s", db->rules[i].text);
    if (hits != NULL)
        *hits = atomic_load(&db->rule_hits[i]);
    return 0;
}

size_t dp_dynblock_top(struct dotproxy_dynblock *db, dotproxy_anomaly_offender *out, size_t cap,
                       uint64_t now_us)
{
    uint32_t now = ms_of(db, now_us);
    size_t n = 0;
    for (unsigned si = 0; si < SHARDS; si++) {
        struct shard *s = &db->shards[si];
        spin_lock(&s->mu);
        for (unsigned i = 0; i < CT_PER_SHARD; i++) {
            const struct centry *e = &s->c[i];
            if (e->last_ms == 0 || e->group != 0)
                continue;
            double qps = (double)dp_anomaly_age(e->c[0], now > e->last_ms ? now - e->last_ms : 0,
                                                1 / TOP_TAU_MS) /
                         (TOP_TAU_MS / 1000.0);
            if (qps < 0.05)
                continue;
            /* Insertion into the sorted top cap. */
            size_t at = n < cap ? n : cap;
            while (at > 0 && out[at - 1].qps < qps)
                at--;
            if (at >= cap)
                continue;
            size_t last = n < cap ? n : cap - 1;
            memmove(&out[at + 1], &out[at], (last - at) * sizeof *out);
            bool v4 = e->hi == 0 && (e->lo >> 32) == 0xffff;
            key_text(out[at].key, sizeof out[at].key, e->hi, e->lo, v4,
                     v4 ? db->groups[0].mask4 : db->groups[0].mask6);
            out[at].qps = qps;
            if (n < cap)
                n++;
        }
        spin_unlock(&s->mu);
    }
    return n;
}
