/* SPDX-License-Identifier: MIT */
/* The DNS answer cache: a chained hash table of single-allocation entries,
 * S3-FIFO eviction (a small probationary FIFO, a main FIFO with lazy
 * promotion, a ghost filter of recently evicted keys), RFC 2308 / RFC 8767
 * lifetimes. See cache.h for the contract. */
#include "cache.h"
#include "bytes.h"
#include "siphash.h"

#include <assert.h>
#include <endian.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "dns_msg.h"
#include "dotproxy/error.h"
#include "list.h"

#define HDR                  DOTPROXY_DNS_HEADER_SIZE
#define US_PER_S             1000000u
#define TYPE_SOA             6
#define TYPE_OPT             41
#define EDNS_OPT_EDE         15  /* RFC 8914 Extended DNS Error */
#define STALE_TTL            30u /* RFC 8767 4: the TTL of a stale answer */
#define SERVFAIL_TTL_DEFAULT 5u
#define SERVFAIL_TTL_MAX     300u /* RFC 2308 7.1: at most five minutes */
#define REFRESH_MIN_TTL      10u  /* prefetch only entries that live at least this long */
#define REFRESH_MIN_HITS     3u   /* ... and were hit this often (this hit included) */
#define FREQ_MAX             3u   /* S3-FIFO: 2-bit access counter */
#define MAX_ENTRIES_LIMIT    ((size_t)1 << 28)

/* The key's flags octet. */
#define KEY_DO           0x01u
#define KEY_CD           0x02u
#define KEY_OPCODE_SHIFT 2 /* opcode in bits 2..5 so a NOTIFY never meets a QUERY's answer */

enum { Q_SMALL = 0, Q_MAIN = 1 };

/* One allocation: this header, then data[] = uint16_t ttl_off[nttl], the key
 * octets, the stored RR block, then the upstream OPT's Extended DNS Error
 * options (RFC 8914; code, length and data of each, ede_len octets in all):
 * they explain the answer, not the hop, so a hit must repeat them. The RR block is the answer from
 * just past its question to just before its OPT, TTLs already normalised (clamped), so a lookup is
 * header + question + memcpy + one subtraction per TTL. Offsets in ttl_off are relative to the RR
 * block. Compression pointers in the block stay valid in the output because the question in front
 * of it has the same length (same key, uncompressed) and the same octets up to letter case. */
struct entry {
    struct entry *hnext; /* hash chain */
    struct dp_list q;    /* position in the small or main FIFO */
    uint64_t stored_us;
    uint64_t expire_us; /* stored_us + ttl seconds */
    uint64_t dead_us;   /* expire_us + stale window: reclaim from here on */
    uint32_t hash;
    uint32_t ttl;  /* lifetime in seconds (> 0) */
    uint32_t size; /* octets charged against max_bytes */
    uint16_t flags, an, ns, ar;
    uint16_t rr_len, nttl, key_len, ede_len;
    uint8_t queue;     /* Q_SMALL or Q_MAIN */
    uint8_t freq;      /* S3-FIFO access counter, 0..FREQ_MAX */
    uint8_t hits;      /* fresh hits since stored, saturating */
    uint8_t refreshed; /* HIT_REFRESH already returned */
    uint8_t data[];
};

struct dp_cache {
    struct dp_cache_config cfg;
    size_t max_bytes;
    size_t item_max; /* the largest single entry accepted */
    struct entry **buckets;
    size_t mask; /* bucket count - 1; buckets == NULL when the cache is off */
    struct dp_list small, main_q;
    size_t n_small, n_entries, bytes;
    size_t small_target;
    /* Ghost: two generations of a Bloom filter over the hashes of keys
     * evicted from the small FIFO without a second hit. A key seen again
     * while in the ghost goes straight to main (S3-FIFO): its reuse distance
     * is longer than the small FIFO but within the cache's reach. */
    uint64_t *ghost[2];
    size_t ghost_words;
    uint32_t ghost_mask; /* bit count - 1 */
    unsigned ghost_cur;
    size_t ghost_added, ghost_gen;
    struct dp_cache_stats st;
};

/* ---- keyed hash ---------------------------------------------------------- */

static uint64_t seed[2];
static pthread_once_t seed_once = PTHREAD_ONCE_INIT;

static void seed_init(void)
{
    dp_siphash_key(seed);
}

static inline uint64_t load_le64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof(v));
    return le64toh(v);
}

/* ---- small helpers ------------------------------------------------------- */

static inline uint16_t *entry_ttl_off(struct entry *e)
{
    return (uint16_t *)(void *)e->data;
}

static inline uint8_t *entry_key(struct entry *e)
{
    return e->data + (size_t)e->nttl * sizeof(uint16_t);
}

static inline uint8_t *entry_rr(struct entry *e)
{
    return entry_key(e) + e->key_len;
}

static inline uint8_t *entry_ede(struct entry *e)
{
    return entry_rr(e) + e->rr_len;
}

static inline struct entry *entry_of(struct dp_list *l)
{
    return DP_CONTAINER_OF(l, struct entry, q);
}

/* ---- keys ------------------------------------------------------------------ */

int dp_cache_key_make(struct dp_cache_key *k, const uint8_t *msg, size_t len,
                      const dotproxy_dns_info *info)
{
    if (k == NULL || msg == NULL || info == NULL)
        return DOTPROXY_EINVAL;
    /* Only a plain uncompressed question at offset 12 makes the output
     * question (copied from the query) as long as the stored one. */
    if (info->qdcount != 1 || info->qname_off != HDR ||
        (size_t)info->question_end != (size_t)HDR + info->qname_len + 4u ||
        info->question_end > len)
        return DOTPROXY_EMALFORMED;
    /* The parse checked the name; the length test above means it holds no
     * compression pointer (a pointer makes the name shorter in place than
     * expanded). So the key is the name's bytes with ASCII letters folded:
     * label length octets (0..63) are never letters. One pass, no walk. */
    size_t n = info->qname_len;
    if (n == 0 || n > DOTPROXY_DNS_MAX_NAME)
        return DOTPROXY_EMALFORMED;
    pthread_once(&seed_once, seed_init);
    const uint8_t *src = msg + HDR;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = src[i];
        k->data[i] = dp_lower(c);
    }
    dp_put16(k->data + n, info->qtype);
    dp_put16(k->data + n + 2, info->qclass);
    unsigned f = (unsigned)DOTPROXY_DNS_OPCODE(info->flags) << KEY_OPCODE_SHIFT;
    if (info->opt_off != 0 && (info->edns_flags & DOTPROXY_DNS_EDNS_DO))
        f |= KEY_DO;
    if (info->flags & DOTPROXY_DNS_FLAG_CD)
        f |= KEY_CD;
    k->data[n + 4] = (uint8_t)f;
    k->len = (uint16_t)(n + 5);
    k->hash = (uint32_t)dp_siphash13(seed, k->data, k->len);
    return 0;
}

/* ---- the cache object ---------------------------------------------------- */

int dp_cache_new(struct dp_cache **out, const struct dp_cache_config *cfg)
{
    if (out == NULL || cfg == NULL || cfg->max_ttl < cfg->min_ttl ||
        cfg->max_entries > MAX_ENTRIES_LIMIT)
        return DOTPROXY_EINVAL;
    struct dp_cache *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return DOTPROXY_ENOMEM;
    c->cfg = *cfg;
    if (c->cfg.servfail_ttl == 0)
        c->cfg.servfail_ttl = SERVFAIL_TTL_DEFAULT;
    if (c->cfg.servfail_ttl > SERVFAIL_TTL_MAX)
        c->cfg.servfail_ttl = SERVFAIL_TTL_MAX;
    dp_list_init(&c->small);
    dp_list_init(&c->main_q);
    if (cfg->max_entries == 0) {
        *out = c;
        return 0;
    }
    c->max_bytes = cfg->max_bytes != 0 ? cfg->max_bytes : cfg->max_entries * 512u;
    /* One answer may take an eighth of the budget, but a small cache still
     * holds an ordinary (<= 4 KiB) answer if the budget allows at all. */
    size_t floor_item = c->max_bytes < 4096 ? c->max_bytes : 4096;
    c->item_max = c->max_bytes / 8 > floor_item ? c->max_bytes / 8 : floor_item;
    c->small_target = cfg->max_entries / 10 > 0 ? cfg->max_entries / 10 : 1;

    size_t nb = 1;
    while (nb < cfg->max_entries)
        nb <<= 1;
    c->buckets = calloc(nb, sizeof(*c->buckets));
    c->mask = nb - 1;
    /* ~8 bits per remembered key and two hash probes: ~5% false positives,
     * which only let a one-off name into main a little early. */
    size_t bits = 64;
    while (bits < cfg->max_entries * 8)
        bits <<= 1;
    c->ghost_words = bits / 64;
    c->ghost_mask = (uint32_t)(bits - 1);
    c->ghost[0] = calloc(c->ghost_words, sizeof(uint64_t));
    c->ghost[1] = calloc(c->ghost_words, sizeof(uint64_t));
    c->ghost_gen = cfg->max_entries;
    if (c->buckets == NULL || c->ghost[0] == NULL || c->ghost[1] == NULL) {
        dp_cache_free(c);
        return DOTPROXY_ENOMEM;
    }
    *out = c;
    return 0;
}

static inline void ghost_bits(uint32_t hash, uint32_t mask, uint32_t *a, uint32_t *b)
{
    uint64_t x = (uint64_t)hash * 0x9E3779B97F4A7C15u;
    *a = hash & mask;
    *b = (uint32_t)(x >> 32) & mask;
}

static void ghost_add(struct dp_cache *c, uint32_t hash)
{
    uint32_t a, b;
    if (c->ghost_added >= c->ghost_gen) {
        /* Forget the older generation: the ghost remembers about as many
         * keys as the cache holds, as S3-FIFO prescribes. */
        c->ghost_cur ^= 1;
        memset(c->ghost[c->ghost_cur], 0, c->ghost_words * sizeof(uint64_t));
        c->ghost_added = 0;
    }
    ghost_bits(hash, c->ghost_mask, &a, &b);
    uint64_t *g = c->ghost[c->ghost_cur];
    g[a / 64] |= (uint64_t)1 << (a % 64);
    g[b / 64] |= (uint64_t)1 << (b % 64);
    c->ghost_added++;
}

static int ghost_has(const struct dp_cache *c, uint32_t hash)
{
    uint32_t a, b;
    ghost_bits(hash, c->ghost_mask, &a, &b);
    for (unsigned i = 0; i < 2; i++) {
        const uint64_t *g = c->ghost[i];
        if ((g[a / 64] >> (a % 64) & 1) && (g[b / 64] >> (b % 64) & 1))
            return 1;
    }
    return 0;
}

static struct entry **find_slot(struct dp_cache *c, const struct dp_cache_key *k)
{
    struct entry **pp = &c->buckets[k->hash & c->mask];
    for (; *pp != NULL; pp = &(*pp)->hnext) {
        struct entry *e = *pp;
        if (e->hash == k->hash && e->key_len == k->len &&
            memcmp(entry_key(e), k->data, k->len) == 0)
            return pp;
    }
    return pp;
}

/* Unlink e from its chain and FIFO and free it. */
static void entry_drop(struct dp_cache *c, struct entry *e)
{
    struct entry **pp = &c->buckets[e->hash & c->mask];
    while (*pp != e) {
        assert(*pp != NULL);
        pp = &(*pp)->hnext;
    }
    *pp = e->hnext;
    dp_list_remove(&e->q);
    if (e->queue == Q_SMALL)
        c->n_small--;
    c->n_entries--;
    c->bytes -= e->size;
    free(e);
}

static void queue_push(struct dp_cache *c, struct entry *e, unsigned queue)
{
    e->queue = (uint8_t)queue;
    if (queue == Q_SMALL) {
        dp_list_push_front(&c->small, &e->q);
        c->n_small++;
    } else {
        dp_list_push_front(&c->main_q, &e->q);
    }
}

/* Evict one entry by S3-FIFO. Entries past their stale window met on the
 * way are reclaimed first (counted as expired): they cost nothing to lose. */
static void evict_one(struct dp_cache *c, uint64_t now_us)
{
    for (;;) {
        int from_small = c->n_small >= c->small_target || dp_list_empty(&c->main_q);
        struct dp_list *head = from_small ? &c->small : &c->main_q;
        struct entry *e = entry_of(head->prev);
        assert(!dp_list_empty(head));
        if (now_us >= e->dead_us) {
            c->st.expired++;
            entry_drop(c, e);
            return;
        }
        if (e->freq > 0) {
            dp_list_remove(&e->q);
            if (from_small) {
                /* Hit while on probation: promote, with a fresh count. */
                c->n_small--;
                e->freq = 0;
            } else {
                e->freq--;
            }
            queue_push(c, e, Q_MAIN);
            continue;
        }
        if (from_small)
            ghost_add(c, e->hash);
        c->st.evictions++;
        entry_drop(c, e);
        return;
    }
}

void dp_cache_flush(struct dp_cache *c)
{
    if (c == NULL || c->buckets == NULL)
        return;
    for (size_t i = 0; i <= c->mask; i++) {
        struct entry *e = c->buckets[i];
        while (e != NULL) {
            struct entry *n = e->hnext;
            free(e);
            e = n;
        }
        c->buckets[i] = NULL;
    }
    dp_list_init(&c->small);
    dp_list_init(&c->main_q);
    c->n_small = c->n_entries = c->bytes = 0;
    memset(c->ghost[0], 0, c->ghost_words * sizeof(uint64_t));
    memset(c->ghost[1], 0, c->ghost_words * sizeof(uint64_t));
    c->ghost_added = 0;
}

void dp_cache_free(struct dp_cache *c)
{
    if (c == NULL)
        return;
    dp_cache_flush(c);
    free(c->buckets);
    free(c->ghost[0]);
    free(c->ghost[1]);
    free(c);
}

void dp_cache_get_stats(const struct dp_cache *c, struct dp_cache_stats *out)
{
    if (c == NULL || out == NULL)
        return;
    *out = c->st;
    out->entries = c->n_entries;
    out->bytes = c->bytes;
}

/* ---- lookup (the hot path) ---------------------------------------------- */

/* 1 when query[12..] holds k's question: the name equal up to ASCII case,
 * type and class equal octet for octet. */
static int query_matches_key(const struct dp_cache_key *k, const uint8_t *query, size_t qlen)
{
    size_t qsz = (size_t)k->len - 1;
    if (qlen < HDR + qsz)
        return 0;
    const uint8_t *q = query + HDR;
    size_t name_len = qsz - 4;
    size_t i = 0;
    /* Eight octets at a time (this is on the hit path): fold 'A'..'Z' by
     * setting bit 5 of exactly the octets in that range, SWAR style. */
    for (; i + 8 <= name_len; i += 8) {
        const uint64_t ones = 0x0101010101010101u, high = 0x8080808080808080u;
        uint64_t x = load_le64(q + i);
        uint64_t low7 = x & ~high;
        uint64_t ge_a = low7 + ones * (0x80 - 'A');
        uint64_t gt_z = low7 + ones * (0x7F - 'Z');
        uint64_t upper = (ge_a ^ gt_z) & ~x & high;
        if ((x | (upper >> 2)) != load_le64(k->data + i))
            return 0;
    }
    for (; i < name_len; i++) {
        if (dp_lower(q[i]) != k->data[i])
            return 0;
    }
    return memcmp(q + name_len, k->data + name_len, 4) == 0;
}

int dp_cache_lookup(struct dp_cache *c, const struct dp_cache_key *k, uint64_t now_us,
                    int allow_stale, const uint8_t *query, size_t qlen, uint8_t *out, size_t cap,
                    size_t *outlen)
{
    return dp_cache_lookup_ede(c, k, now_us, allow_stale, query, qlen, out, cap, outlen, NULL);
}

int dp_cache_lookup_ede(struct dp_cache *c, const struct dp_cache_key *k, uint64_t now_us,
                        int allow_stale, const uint8_t *query, size_t qlen, uint8_t *out,
                        size_t cap, size_t *outlen, size_t *ede_len)
{
    if (c == NULL || k == NULL || query == NULL || out == NULL || outlen == NULL || k->len < 6 ||
        k->len > sizeof(k->data))
        return DOTPROXY_EINVAL;
    if (!query_matches_key(k, query, qlen))
        return DOTPROXY_EINVAL;
    if (c->buckets == NULL) {
        c->st.misses++;
        return DP_CACHE_MISS;
    }
    struct entry **pp = find_slot(c, k);
    struct entry *e = *pp;
    if (e == NULL) {
        c->st.misses++;
        return DP_CACHE_MISS;
    }
    int stale = now_us >= e->expire_us;
    if (stale) {
        if (now_us >= e->dead_us) {
            c->st.expired++;
            c->st.misses++;
            entry_drop(c, e);
            return DP_CACHE_MISS;
        }
        if (!allow_stale) {
            c->st.misses++;
            return DP_CACHE_MISS;
        }
    }
    size_t qsz = (size_t)k->len - 1;
    size_t need = HDR + qsz + e->rr_len;
    size_t ede = ede_len != NULL ? e->ede_len : 0;
    if (cap < need + ede)
        return DOTPROXY_ENOSPC;

    uint16_t qflags = dp_get16(query + 2);
    const uint16_t keep = DOTPROXY_DNS_FLAG_RD | DOTPROXY_DNS_FLAG_CD;
    out[0] = query[0];
    out[1] = query[1];
    dp_put16(out + 2, (uint16_t)((e->flags & ~keep) | (qflags & keep)));
    dp_put16(out + 4, 1);
    dp_put16(out + 6, e->an);
    dp_put16(out + 8, e->ns);
    dp_put16(out + 10, e->ar);
    memcpy(out + HDR, query + HDR, qsz);
    uint8_t *rr = out + HDR + qsz;
    memcpy(rr, entry_rr(e), e->rr_len);
    if (ede_len != NULL) {
        if (ede > 0)
            memcpy(out + need, entry_ede(e), ede);
        *ede_len = ede;
    }
    const uint16_t *off = entry_ttl_off(e);
    if (e->freq < FREQ_MAX)
        e->freq++;
    *outlen = need;
    if (stale) {
        for (unsigned i = 0; i < e->nttl; i++)
            dp_put32(rr + off[i], STALE_TTL);
        c->st.stale_hits++;
        return DP_CACHE_STALE;
    }
    /* Stored TTLs are all >= e->ttl and age < e->ttl here: no underflow,
     * and no RR goes out with TTL 0 while the entry is fresh. */
    uint32_t age = now_us > e->stored_us ? (uint32_t)((now_us - e->stored_us) / US_PER_S) : 0;
    for (unsigned i = 0; i < e->nttl; i++)
        dp_put32(rr + off[i], dp_get32(rr + off[i]) - age);
    c->st.hits++;
    if (e->hits < UINT8_MAX)
        e->hits++;
    if (!e->refreshed && e->ttl >= REFRESH_MIN_TTL && e->hits >= REFRESH_MIN_HITS &&
        (e->expire_us - now_us) * 10 < (uint64_t)e->ttl * US_PER_S) {
        e->refreshed = 1;
        return DP_CACHE_HIT_REFRESH;
    }
    return DP_CACHE_HIT;
}

/* ---- store ------------------------------------------------------------------ */

/* What one walk over an answer's RRs learnt. */
struct rr_scan {
    uint32_t min_ttl; /* over all RRs but the OPT, after clamping */
    int soa_ttl_idx;  /* index in offs[] of the authority SOA's TTL, -1 none */
    uint32_t soa_neg; /* min(SOA TTL, SOA MINIMUM) of that SOA */
};

static inline uint32_t ttl_value(uint32_t raw)
{
    /* RFC 2181 8: a TTL with the top bit set is treated as zero. */
    return raw & 0x80000000u ? 0 : raw;
}

/* Walk `count` RRs from msg[pos], recording in offs[] each TTL offset
 * relative to `base`. The message was validated by dotproxy_dns_parse, but
 * every step is still bounded. Returns the end offset or a negative error. */
static long walk_rrs(const uint8_t *msg, size_t len, size_t pos, unsigned count, size_t base,
                     uint16_t *offs, unsigned *n_offs, int authority, struct rr_scan *scan)
{
    for (unsigned i = 0; i < count; i++) {
        int end = dp_dns_msg_skip_name(msg, len, pos);
        if (end < 0 || (size_t)end + 10 > len)
            return DOTPROXY_EMALFORMED;
        size_t p = (size_t)end;
        uint16_t type = dp_get16(msg + p);
        size_t rdlen = dp_get16(msg + p + 8);
        size_t rd = p + 10;
        if (rd + rdlen > len)
            return DOTPROXY_EMALFORMED;
        if (type == TYPE_OPT)
            return DOTPROXY_EMALFORMED; /* only the last RR may be the OPT */
        if (authority && type == TYPE_SOA && scan->soa_ttl_idx < 0) {
            /* RFC 2308 5: the negative TTL is min(SOA TTL, SOA MINIMUM);
             * MINIMUM is the last of the five counters ending the RDATA. */
            if (rdlen < 22)
                return DOTPROXY_EMALFORMED;
            uint32_t t = ttl_value(dp_get32(msg + p + 4));
            uint32_t m = ttl_value(dp_get32(msg + rd + rdlen - 4));
            scan->soa_ttl_idx = (int)*n_offs;
            scan->soa_neg = t < m ? t : m;
        }
        offs[(*n_offs)++] = (uint16_t)(p + 4 - base);
        pos = rd + rdlen;
    }
    return (long)pos;
}

static int question_matches_key(const struct dp_cache_key *k, const uint8_t *ans, size_t len,
                                const dotproxy_dns_info *info)
{
    size_t name_len = (size_t)k->len - 5;
    if (info->qdcount != 1 || info->qname_len != name_len ||
        (size_t)info->question_end != HDR + name_len + 4)
        return 0;
    uint8_t name[DOTPROXY_DNS_MAX_NAME];
    int n = dp_dns_msg_name_lower(ans, len, HDR, name, NULL);
    return n == (int)name_len && memcmp(name, k->data, name_len) == 0 &&
           info->qtype == dp_get16(k->data + name_len) &&
           info->qclass == dp_get16(k->data + name_len + 2);
}

/* The octets of the Extended DNS Error options (code, length, data each) in
 * the OPT RR msg[off..off+optlen); copied to out when out != NULL. The OPT was
 * validated by dotproxy_dns_parse, but its option lengths are checked here. */
static size_t ede_options(const uint8_t *msg, size_t off, size_t optlen, uint8_t *out)
{
    size_t n = 0;
    if (off == 0 || optlen < 11)
        return 0;
    for (size_t pos = off + 11, end = off + optlen; end - pos >= 4;) {
        size_t olen = dp_get16(msg + pos + 2);
        if (end - pos - 4 < olen)
            break;
        if (dp_get16(msg + pos) == EDNS_OPT_EDE) {
            if (out != NULL)
                memcpy(out + n, msg + pos, 4 + olen);
            n += 4 + olen;
        }
        pos += 4 + olen;
    }
    return n;
}

int dp_cache_store(struct dp_cache *c, const struct dp_cache_key *k, const uint8_t *ans, size_t len,
                   uint64_t now_us)
{
    if (ans == NULL)
        return DOTPROXY_EINVAL;
    dotproxy_dns_info info;
    if (dotproxy_dns_parse(&info, ans, len) < 0)
        return DOTPROXY_EMALFORMED;
    return dp_cache_store_parsed(c, k, ans, len, &info, now_us);
}

int dp_cache_store_parsed(struct dp_cache *c, const struct dp_cache_key *k, const uint8_t *ans,
                          size_t len, const dotproxy_dns_info *parsed, uint64_t now_us)
{
    if (c == NULL || k == NULL || ans == NULL || parsed == NULL || k->len < 6 ||
        k->len > sizeof(k->data))
        return DOTPROXY_EINVAL;
    const dotproxy_dns_info info = *parsed;
    if (!question_matches_key(k, ans, len, &info))
        return DOTPROXY_EINVAL;
    if (c->buckets == NULL)
        return 0;
    unsigned rcode = DOTPROXY_DNS_RCODE(info.flags);
    if (!(info.flags & DOTPROXY_DNS_FLAG_QR) || (info.flags & DOTPROXY_DNS_FLAG_TC) ||
        DOTPROXY_DNS_OPCODE(info.flags) != 0 || info.ext_rcode != 0 ||
        (rcode != DOTPROXY_RCODE_NOERROR && rcode != DOTPROXY_RCODE_NXDOMAIN &&
         rcode != DOTPROXY_RCODE_SERVFAIL))
        return 0;

    struct entry **slot = find_slot(c, k);
    struct entry *old = *slot;
    size_t base = info.question_end;
    size_t rr_end = info.opt_off != 0 ? info.opt_off : len;
    unsigned n_ar = info.arcount - (info.opt_off != 0 ? 1u : 0u);
    uint16_t an = info.ancount, ns = info.nscount;
    uint32_t ttl = 0;
    int servfail = rcode == DOTPROXY_RCODE_SERVFAIL;

    if (info.opt_off != 0 && (size_t)info.opt_off + info.opt_len != len)
        return 0; /* see cache.h: stripping a middle OPT would break pointers */

    /* At most one TTL per 11 octets (root owner + fixed fields). */
    uint16_t offs_buf[(DOTPROXY_DNS_MAX_SIZE - HDR) / 11 + 1];
    unsigned n_offs = 0;
    struct rr_scan scan = {.min_ttl = UINT32_MAX, .soa_ttl_idx = -1, .soa_neg = 0};

    if (servfail) {
        /* Keep a usable answer: RFC 8767 wants it served when refreshing
         * fails, and a SERVFAIL is exactly that failure. */
        if (old != NULL && DOTPROXY_DNS_RCODE(old->flags) != DOTPROXY_RCODE_SERVFAIL &&
            now_us < old->dead_us)
            return 0;
        ttl = c->cfg.servfail_ttl;
        rr_end = base;
        an = ns = 0;
        n_ar = 0;
    } else {
        long p = walk_rrs(ans, len, base, info.ancount, base, offs_buf, &n_offs, 0, &scan);
        if (p >= 0)
            p = walk_rrs(ans, len, (size_t)p, info.nscount, base, offs_buf, &n_offs, 1, &scan);
        if (p >= 0)
            p = walk_rrs(ans, len, (size_t)p, n_ar, base, offs_buf, &n_offs, 0, &scan);
        if (p < 0 || (size_t)p != rr_end)
            return DOTPROXY_EMALFORMED;
    }

    size_t rr_len = rr_end - base;
    size_t ede_len = ede_options(ans, info.opt_off, info.opt_len, NULL);
    size_t size =
        sizeof(struct entry) + (size_t)n_offs * sizeof(uint16_t) + k->len + rr_len + ede_len;
    if (size > c->item_max)
        return 0;
    struct entry *e = malloc(size);
    if (e == NULL)
        return DOTPROXY_ENOMEM;
    memset(e, 0, sizeof(*e));
    e->nttl = (uint16_t)n_offs;
    e->key_len = k->len;
    e->rr_len = (uint16_t)rr_len;
    memcpy(entry_ttl_off(e), offs_buf, (size_t)n_offs * sizeof(uint16_t));
    memcpy(entry_key(e), k->data, k->len);
    uint8_t *rr = entry_rr(e);
    memcpy(rr, ans + base, rr_len);
    e->ede_len = (uint16_t)ede_len;
    ede_options(ans, info.opt_off, info.opt_len, entry_ede(e));

    if (!servfail) {
        int negative = rcode == DOTPROXY_RCODE_NXDOMAIN || info.ancount == 0;
        if (negative && scan.soa_ttl_idx < 0) {
            free(e); /* RFC 2308 5: no SOA, no negative caching */
            return 0;
        }
        uint32_t lo = negative ? 0 : c->cfg.min_ttl, hi = c->cfg.max_ttl;
        ttl = UINT32_MAX;
        for (unsigned i = 0; i < n_offs; i++) {
            uint32_t t = ttl_value(dp_get32(rr + offs_buf[i]));
            if (negative && (int)i == scan.soa_ttl_idx)
                t = scan.soa_neg;
            t = t < lo ? lo : t > hi ? hi : t;
            dp_put32(rr + offs_buf[i], t);
            if (t < ttl)
                ttl = t;
        }
    }
    if (ttl == 0) {
        free(e);
        return 0;
    }

    e->hash = k->hash;
    e->ttl = ttl;
    e->size = (uint32_t)size;
    e->flags = info.flags;
    e->an = an;
    e->ns = ns;
    e->ar = (uint16_t)n_ar;
    e->stored_us = now_us;
    e->expire_us = now_us + (uint64_t)ttl * US_PER_S;
    e->dead_us = e->expire_us + (servfail ? 0 : (uint64_t)c->cfg.stale_max_s * US_PER_S);

    /* A refreshed answer keeps its place and popularity: prefetching a hot
     * name must not send it back to probation. */
    unsigned queue = Q_SMALL;
    if (old != NULL) {
        queue = old->queue;
        e->freq = old->freq;
        entry_drop(c, old);
    } else if (ghost_has(c, k->hash)) {
        queue = Q_MAIN;
    }
    while (c->n_entries > 0 &&
           (c->n_entries + 1 > c->cfg.max_entries || c->bytes + size > c->max_bytes))
        evict_one(c, now_us);
    slot = &c->buckets[k->hash & c->mask];
    e->hnext = *slot;
    *slot = e;
    queue_push(c, e, queue);
    c->n_entries++;
    c->bytes += size;
    c->st.stores++;
    return 1;
}

/* ---- the handle (cache.h): this file's operations ---- */

static int own_lookup(void *impl, const struct dp_cache_key *k, uint64_t now_us, int allow_stale,
                      const uint8_t *query, size_t qlen, uint8_t *out, size_t cap, size_t *outlen,
                      size_t *ede_len)
{
    return dp_cache_lookup_ede(impl, k, now_us, allow_stale, query, qlen, out, cap, outlen,
                               ede_len);
}

static int own_store(void *impl, const struct dp_cache_key *k, const uint8_t *ans, size_t len,
                     const dotproxy_dns_info *info, uint64_t now_us)
{
    return dp_cache_store_parsed(impl, k, ans, len, info, now_us);
}

static void own_flush(void *impl)
{
    dp_cache_flush(impl);
}

static void own_stats(void *impl, struct dp_cache_stats *out)
{
    dp_cache_get_stats(impl, out);
}

static void own_release(void *impl)
{
    dp_cache_free(impl);
}

static const struct dp_cache_ops own_ops = {
    .lookup = own_lookup,
    .store = own_store,
    .flush = own_flush,
    .stats = own_stats,
    .release = own_release,
};

int dp_cache_handle_own(struct dp_cache_handle *h, const struct dp_cache_config *cfg)
{
    struct dp_cache *c = NULL;
    int rc = dp_cache_new(&c, cfg);
    if (rc != 0)
        return rc;
    h->ops = &own_ops;
    h->impl = c;
    h->shared = 0;
    return 0;
}
