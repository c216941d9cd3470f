/* SPDX-License-Identifier: MIT */
/* Who may ask and how fast: the access list, the per-client rate limit and
 * the per-client in-flight count.
 *
 * Memory, all allocated once in dp_policy_new (nothing per query):
 *  - the access list: at most DP_MAX_ALLOW entries per family, of 8 (IPv4)
 *    and 32 (IPv6) octets, inside struct dp_policy (10 KiB);
 *  - with rl_qps > 0, the rate-limit table: RL_BUCKETS (65536) buckets of
 *    32 octets = 2 MiB, whatever the number of clients;
 *  - with max_client_queries > 0, the in-flight table: the power of two at
 *    least 2 * max_queries (64 .. 2^21) slots of 24 octets, 384 KiB for the
 *    default max_queries 8192. */
#include "policy.h"
#include "siphash.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "dotproxy/error.h"

#define RL_BUCKETS 65536u /* a power of two */
/* A key lives within RL_WINDOW slots of its home slot; when all of them are
 * taken, the least recently seen of them is evicted. 8 slots of 32 octets
 * are four cache lines. */
#define RL_WINDOW 8u
/* Tokens are kept in millionths, so that refilling at qps tokens per second
 * adds exactly qps units per microsecond: no division, no rounding. */
#define TOKEN 1000000u

#define FL_MIN_SLOTS 64u
#define FL_MAX_SLOTS (1u << 21)

/* Both address families as one 128-bit number, in numeric (host) order:
 * IPv6 as is, IPv4 as its mapped form ::ffff:a.b.c.d, so the keys of the
 * two families never collide. */
struct client {
    uint64_t hi, lo;
    uint32_t a4; /* when v4 */
    bool v4;
};

/* Access-list entries are pairwise disjoint and sorted by network (see
 * acl_build), so the only entry that can hold an address is the last one
 * that starts at or below it: a binary search, then one masked compare. */
struct acl4 {
    uint32_t net, mask;
};

struct acl6 {
    uint64_t net_hi, net_lo, mask_hi, mask_lo;
};

struct rl_bucket {
    uint64_t key_hi, key_lo;
    uint64_t stamp;  /* 1 + the time of the last query in µs; 0: slot empty */
    uint64_t tokens; /* in 1/TOKEN of a token, at most p->rl_cap */
};

struct fl_slot {
    uint64_t key_hi, key_lo;
    uint32_t count; /* 0: slot empty */
    uint32_t home;  /* the slot the key hashes to, for backward-shift deletion */
};

struct dp_policy {
    uint64_t sip_key[2]; /* secret: attackers can't aim collisions */

    struct acl4 acl4[DP_MAX_ALLOW];
    size_t n_acl4;
    struct acl6 acl6[DP_MAX_ALLOW];
    size_t n_acl6;

    struct rl_bucket *rl; /* NULL: no rate limit */
    uint64_t rl_qps;
    uint64_t rl_cap;     /* burst * TOKEN */
    uint64_t rl_fill_us; /* time to refill from empty: past it a bucket is full */
    uint32_t rl_mask4;
    uint64_t rl_mask6_hi, rl_mask6_lo;
    int rl_verdict;
    bool rl_loopback;
    size_t rl_used;

    struct fl_slot *fl; /* NULL: no in-flight cap */
    uint32_t fl_mask;
    size_t fl_used, fl_max_used;
    uint32_t fl_cap;

    uint64_t acl_refused, rate_limited, inflight_capped, evicted;
};

/* ---- keyed hash: SipHash-1-3 of a 16-octet key ----
 * The words are hashed as numbers, not as the reference byte string: the
 * value never leaves the process, only its unpredictability matters. */

static uint64_t sip13(const struct dp_policy *p, uint64_t m0, uint64_t m1)
{
    return dp_siphash13_words(p->sip_key, m0, m1);
}

/* ---- addresses ---- */

static uint64_t load_be64(const uint8_t *b)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | b[i];
    return v;
}

static inline uint32_t mask4(unsigned prefix)
{
    return prefix == 0 ? 0 : ~(uint32_t)0 << (32 - prefix);
}

static inline void mask6(unsigned prefix, uint64_t *hi, uint64_t *lo)
{
    *hi = prefix >= 64 ? ~(uint64_t)0 : prefix == 0 ? 0 : ~(uint64_t)0 << (64 - prefix);
    *lo = prefix <= 64 ? 0 : ~(uint64_t)0 << (128 - prefix);
}

static inline void set_v4(struct client *c, uint32_t a4)
{
    c->v4 = true;
    c->a4 = a4;
    c->hi = 0;
    c->lo = 0xffff00000000ull | a4;
}

/* 0, or -1 for a family other than IPv4/IPv6. The address is copied out
 * rather than read through a cast, so any sockaddr storage works. */
static int client_from(const struct sockaddr *sa, struct client *c)
{
    if (sa == NULL)
        return -1;
    if (sa->sa_family == AF_INET) {
        uint8_t b[4];
        memcpy(b, (const char *)sa + offsetof(struct sockaddr_in, sin_addr), 4);
        set_v4(c, (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3]);
        return 0;
    }
    if (sa->sa_family == AF_INET6) {
        uint8_t b[16];
        memcpy(b, (const char *)sa + offsetof(struct sockaddr_in6, sin6_addr), 16);
        uint64_t hi = load_be64(b), lo = load_be64(b + 8);
        /* RFC 4291 2.5.5.2: a dual-stack socket reports IPv4 peers as
         * ::ffff:a.b.c.d; they are IPv4 clients for every rule here. */
        if (hi == 0 && (lo >> 32) == 0xffff) {
            set_v4(c, (uint32_t)lo);
        } else {
            c->v4 = false;
            c->a4 = 0;
            c->hi = hi;
            c->lo = lo;
        }
        return 0;
    }
    return -1;
}

static inline bool is_loopback(const struct client *c)
{
    return c->v4 ? (c->a4 >> 24) == 127 : c->hi == 0 && c->lo == 1;
}

/* ---- access list ---- */

/* The list that applies while none is configured: loopback, RFC 1918,
 * RFC 6598 shared address space (carrier-grade NAT), RFC 3927 link-local,
 * RFC 4193 unique local, RFC 4291 link-local. Not an open resolver. */
static const struct {
    int family;
    uint8_t addr[16];
    uint8_t prefix;
} default_allow[] = {
    {AF_INET, {127}, 8},          /* loopback */
    {AF_INET, {10}, 8},           /* RFC 1918 */
    {AF_INET, {172, 16}, 12},     /* RFC 1918 */
    {AF_INET, {192, 168}, 16},    /* RFC 1918 */
    {AF_INET, {100, 64}, 10},     /* RFC 6598 */
    {AF_INET, {169, 254}, 16},    /* RFC 3927 */
    {AF_INET6, {[15] = 1}, 128},  /* ::1 */
    {AF_INET6, {0xfc}, 7},        /* RFC 4193 */
    {AF_INET6, {0xfe, 0x80}, 10}, /* RFC 4291 link-local */
};

static void add4(struct dp_policy *p, uint32_t addr, unsigned prefix)
{
    assert(p->n_acl4 < sizeof p->acl4 / sizeof p->acl4[0]);
    uint32_t m = mask4(prefix);
    p->acl4[p->n_acl4++] = (struct acl4){.net = addr & m, .mask = m};
}

static void add_cidr(struct dp_policy *p, int family, const uint8_t *addr, unsigned prefix)
{
    if (family == AF_INET) {
        add4(p,
             (uint32_t)addr[0] << 24 | (uint32_t)addr[1] << 16 | (uint32_t)addr[2] << 8 | addr[3],
             prefix > 32 ? 32 : prefix);
        return;
    }
    if (family != AF_INET6)
        return;
    if (prefix > 128)
        prefix = 128;
    uint64_t hi = load_be64(addr), lo = load_be64(addr + 8);
    /* Mapped clients are matched as IPv4, so a mapped network given in IPv6
     * notation (::ffff:10.0.0.0/104) becomes the IPv4 network it names. */
    if (prefix >= 96 && hi == 0 && (lo >> 32) == 0xffff) {
        add4(p, (uint32_t)lo, prefix - 96);
        return;
    }
    assert(p->n_acl6 < sizeof p->acl6 / sizeof p->acl6[0]);
    struct acl6 *e = &p->acl6[p->n_acl6++];
    mask6(prefix, &e->mask_hi, &e->mask_lo);
    e->net_hi = hi & e->mask_hi;
    e->net_lo = lo & e->mask_lo;
}

static int cmp4(const void *a, const void *b)
{
    const struct acl4 *x = a, *y = b;
    if (x->net != y->net)
        return x->net < y->net ? -1 : 1;
    /* Same start: the wider network (smaller mask) first. */
    return x->mask < y->mask ? -1 : x->mask > y->mask;
}

static int cmp6(const void *a, const void *b)
{
    const struct acl6 *x = a, *y = b;
    if (x->net_hi != y->net_hi)
        return x->net_hi < y->net_hi ? -1 : 1;
    if (x->net_lo != y->net_lo)
        return x->net_lo < y->net_lo ? -1 : 1;
    if (x->mask_hi != y->mask_hi)
        return x->mask_hi < y->mask_hi ? -1 : 1;
    return x->mask_lo < y->mask_lo ? -1 : x->mask_lo > y->mask_lo;
}

/* Two CIDR blocks are either disjoint or nested. Sorted by start, wider
 * first on ties, a block nested in another comes after it; dropping every
 * block inside the last kept one leaves disjoint blocks in order. Then the
 * last block starting at or below an address is the only one that may hold
 * it (any later-starting block at or below it would begin inside that one). */
static void acl_build(struct dp_policy *p)
{
    qsort(p->acl4, p->n_acl4, sizeof p->acl4[0], cmp4);
    size_t k = 0;
    for (size_t i = 0; i < p->n_acl4; i++) {
        const struct acl4 *e = &p->acl4[i];
        if (k > 0 && (e->net & p->acl4[k - 1].mask) == p->acl4[k - 1].net)
            continue;
        p->acl4[k++] = *e;
    }
    p->n_acl4 = k;

    qsort(p->acl6, p->n_acl6, sizeof p->acl6[0], cmp6);
    k = 0;
    for (size_t i = 0; i < p->n_acl6; i++) {
        const struct acl6 *e = &p->acl6[i];
        if (k > 0) {
            const struct acl6 *w = &p->acl6[k - 1];
            if ((e->net_hi & w->mask_hi) == w->net_hi && (e->net_lo & w->mask_lo) == w->net_lo)
                continue;
        }
        p->acl6[k++] = *e;
    }
    p->n_acl6 = k;
}

static bool acl_allows(const struct dp_policy *p, const struct client *c)
{
    if (c->v4) {
        size_t lo = 0, hi = p->n_acl4;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (p->acl4[mid].net <= c->a4)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo == 0)
            return false;
        const struct acl4 *e = &p->acl4[lo - 1];
        return (c->a4 & e->mask) == e->net;
    }
    size_t lo = 0, hi = p->n_acl6;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct acl6 *e = &p->acl6[mid];
        if (e->net_hi < c->hi || (e->net_hi == c->hi && e->net_lo <= c->lo))
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return false;
    const struct acl6 *e = &p->acl6[lo - 1];
    return (c->hi & e->mask_hi) == e->net_hi && (c->lo & e->mask_lo) == e->net_lo;
}

/* ---- rate limit ---- */

/* The bucket of key, created full if absent. Slots are never emptied, only
 * reused, so a key sits within RL_WINDOW of its home with no empty slot
 * before it, and the first empty slot ends the search. */
static struct rl_bucket *rl_bucket(struct dp_policy *p, uint64_t khi, uint64_t klo, uint64_t now)
{
    size_t i = (size_t)sip13(p, khi, klo) & (RL_BUCKETS - 1);
    struct rl_bucket *victim = NULL;
    for (unsigned n = 0; n < RL_WINDOW; n++, i = (i + 1) & (RL_BUCKETS - 1)) {
        struct rl_bucket *b = &p->rl[i];
        if (b->stamp == 0) {
            victim = b;
            break;
        }
        if (b->key_hi == khi && b->key_lo == klo)
            return b;
        /* The least recently seen: a scan of one-off addresses ages out
         * before a client that keeps asking, and an idle bucket has most
         * likely refilled, so forgetting it loses nothing. */
        if (victim == NULL || b->stamp < victim->stamp)
            victim = b;
    }
    if (victim->stamp == 0)
        p->rl_used++;
    else
        p->evicted++;
    victim->key_hi = khi;
    victim->key_lo = klo;
    victim->stamp = now + 1;
    victim->tokens = p->rl_cap;
    return victim;
}

/* true if the client may ask now (and a token is taken). */
static bool rl_take(struct dp_policy *p, const struct client *c, uint64_t now)
{
    uint64_t khi, klo;
    if (c->v4) {
        khi = 0;
        klo = 0xffff00000000ull | (c->a4 & p->rl_mask4);
    } else {
        khi = c->hi & p->rl_mask6_hi;
        klo = c->lo & p->rl_mask6_lo;
    }
    if (now == UINT64_MAX)
        now--; /* keep stamp = now + 1 nonzero */
    struct rl_bucket *b = rl_bucket(p, khi, klo, now);
    uint64_t last = b->stamp - 1, t;
    /* A clock that steps back refills nothing (and does not move the stamp
     * back, which would refill twice later). */
    uint64_t elapsed = now > last ? now - last : 0;
    /* Past rl_fill_us the bucket is full; below it elapsed * qps < cap + qps
     * and tokens + that < 2 * cap + qps, far from overflow (cap < 2^53). */
    if (elapsed >= p->rl_fill_us) {
        t = p->rl_cap;
    } else {
        t = b->tokens + elapsed * p->rl_qps;
        if (t > p->rl_cap)
            t = p->rl_cap;
    }
    if (now > last)
        b->stamp = now + 1;
    if (t >= TOKEN) {
        b->tokens = t - TOKEN;
        return true;
    }
    b->tokens = t;
    return false;
}

/* ---- in-flight counts: linear probing with backward-shift deletion ---- */

static uint32_t fl_home(const struct dp_policy *p, const struct client *c)
{
    return (uint32_t)sip13(p, c->hi, c->lo) & p->fl_mask;
}

/* The client's slot, probing from its home (fl_home: a key's home never
 * changes while the table lives; backward-shift deletion moves entries
 * towards their home, never past it). */
static struct fl_slot *fl_find(struct dp_policy *p, const struct client *c, uint32_t home,
                               uint32_t *empty)
{
    uint32_t i = home;
    /* The table is never more than 3/4 full, so an empty slot ends the walk. */
    for (;;) {
        struct fl_slot *s = &p->fl[i];
        if (s->count == 0) {
            *empty = i;
            return NULL;
        }
        if (s->key_hi == c->hi && s->key_lo == c->lo)
            return s;
        i = (i + 1) & p->fl_mask;
    }
}

int dp_policy_inflight_begin(struct dp_policy *p, const struct sockaddr *sa)
{
    uint32_t home;
    return dp_policy_inflight_begin_home(p, sa, &home);
}

int dp_policy_inflight_begin_home(struct dp_policy *p, const struct sockaddr *sa,
                                  uint32_t *home_out)
{
    struct client c;
    *home_out = 0;
    if (p->fl == NULL)
        return 0;
    if (client_from(sa, &c) != 0)
        return 0;
    uint32_t home = fl_home(p, &c), empty;
    *home_out = home;
    struct fl_slot *s = fl_find(p, &c, home, &empty);
    if (s != NULL) {
        if (s->count >= p->fl_cap) {
            p->inflight_capped++;
            return -1;
        }
        s->count++;
        return 0;
    }
    /* Full only if the engine keeps more than max_queries waiting; refusing
     * then keeps the bound rather than the count. */
    if (p->fl_used >= p->fl_max_used) {
        p->inflight_capped++;
        return -1;
    }
    p->fl[empty] = (struct fl_slot){.key_hi = c.hi, .key_lo = c.lo, .count = 1, .home = home};
    p->fl_used++;
    return 0;
}

void dp_policy_inflight_end(struct dp_policy *p, const struct sockaddr *sa)
{
    struct client c;
    if (p->fl == NULL || client_from(sa, &c) != 0)
        return;
    dp_policy_inflight_end_home(p, sa, fl_home(p, &c));
}

void dp_policy_inflight_end_home(struct dp_policy *p, const struct sockaddr *sa, uint32_t home)
{
    struct client c;
    if (p->fl == NULL || client_from(sa, &c) != 0)
        return;
    uint32_t empty;
    struct fl_slot *s = fl_find(p, &c, home & p->fl_mask, &empty);
    assert(s != NULL); /* an end without its begin */
    if (s == NULL || --s->count > 0)
        return;
    /* Deleting must leave no hole between any later key and its home: pull
     * back every following entry whose home is not cyclically in (hole, j]. */
    uint32_t hole = (uint32_t)(s - p->fl), j = hole;
    for (;;) {
        j = (j + 1) & p->fl_mask;
        struct fl_slot *n = &p->fl[j];
        if (n->count == 0)
            break;
        uint32_t dist_home = (j - n->home) & p->fl_mask;
        uint32_t dist_hole = (j - hole) & p->fl_mask;
        if (dist_home >= dist_hole) {
            p->fl[hole] = *n;
            hole = j;
        }
    }
    p->fl[hole].count = 0;
    p->fl_used--;
}

/* ---- the object ---- */

int dp_policy_new(struct dp_policy **out, const struct dotproxy_config *cfg)
{
    assert(out != NULL && cfg != NULL);
    struct dp_policy *p = calloc(1, sizeof *p);
    if (p == NULL)
        return DOTPROXY_ENOMEM;
    dp_siphash_key(p->sip_key);

    if (cfg->n_allow == 0) {
        for (size_t i = 0; i < sizeof default_allow / sizeof default_allow[0]; i++)
            add_cidr(p, default_allow[i].family, default_allow[i].addr, default_allow[i].prefix);
    } else {
        size_t n = cfg->n_allow < DP_MAX_ALLOW ? cfg->n_allow : DP_MAX_ALLOW;
        for (size_t i = 0; i < n; i++)
            add_cidr(p, cfg->allow[i].family, cfg->allow[i].addr, cfg->allow[i].prefix);
    }
    acl_build(p);

    if (cfg->rl_qps > 0) {
        p->rl = calloc(RL_BUCKETS, sizeof *p->rl);
        if (p->rl == NULL) {
            free(p);
            return DOTPROXY_ENOMEM;
        }
        /* set_rate_limit turns burst 0 into qps; a hand-built config too. */
        uint64_t burst = cfg->rl_burst != 0 ? cfg->rl_burst : cfg->rl_qps;
        p->rl_qps = cfg->rl_qps;
        p->rl_cap = burst * TOKEN;
        p->rl_fill_us = (p->rl_cap + p->rl_qps - 1) / p->rl_qps;
        unsigned p4 = cfg->rl_v4_prefix <= 32 ? cfg->rl_v4_prefix : 32;
        unsigned p6 = cfg->rl_v6_prefix <= 128 ? cfg->rl_v6_prefix : 128;
        p->rl_mask4 = mask4(p4);
        mask6(p6, &p->rl_mask6_hi, &p->rl_mask6_lo);
        p->rl_verdict = cfg->rl_action == DOTPROXY_LIMIT_DROP ? DP_POLICY_DROP : DP_POLICY_REFUSE;
        p->rl_loopback = cfg->rl_loopback != 0;
    }

    if (cfg->max_client_queries > 0) {
        /* At most max_queries queries wait in a context, so at most that
         * many clients have a nonzero count: twice that keeps probes short. */
        uint64_t want = 2 * (uint64_t)(cfg->max_queries != 0 ? cfg->max_queries : 8192);
        uint32_t slots = FL_MIN_SLOTS;
        while (slots < want && slots < FL_MAX_SLOTS)
            slots <<= 1;
        p->fl = calloc(slots, sizeof *p->fl);
        if (p->fl == NULL) {
            free(p->rl);
            free(p);
            return DOTPROXY_ENOMEM;
        }
        p->fl_mask = slots - 1;
        p->fl_max_used = (size_t)slots / 4 * 3;
        p->fl_cap = cfg->max_client_queries;
    }
    *out = p;
    return 0;
}

void dp_policy_free(struct dp_policy *p)
{
    if (p == NULL)
        return;
    free(p->rl);
    free(p->fl);
    free(p);
}

int dp_policy_allowed(const struct dp_policy *p, const struct sockaddr *sa)
{
    struct client c;
    return client_from(sa, &c) == 0 && acl_allows(p, &c);
}

int dp_policy_check(struct dp_policy *p, const struct sockaddr *sa, uint64_t now_us)
{
    struct client c;
    if (client_from(sa, &c) != 0 || !acl_allows(p, &c)) {
        p->acl_refused++;
        return DP_POLICY_REFUSE;
    }
    if (p->rl == NULL || (!p->rl_loopback && is_loopback(&c)))
        return DP_POLICY_ALLOW;
    if (rl_take(p, &c, now_us))
        return DP_POLICY_ALLOW;
    p->rate_limited++;
    return p->rl_verdict;
}

void dp_policy_stats(const struct dp_policy *p, struct dp_policy_stats *out)
{
    out->acl_refused = p->acl_refused;
    out->rate_limited = p->rate_limited;
    out->inflight_capped = p->inflight_capped;
    out->evicted = p->evicted;
    out->buckets = p->rl_used;
}
