/* SPDX-License-Identifier: MIT */
/* Name sets: fingerprints of names in an open-addressed table (nameset.h).
 * Suffix fingerprints chain from the root towards the first label, so the
 * fingerprints of all suffixes of a name cost one pass over its octets. */
#include "nameset.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "siphash.h"

static uint64_t name_key[2];
static pthread_once_t name_key_once = PTHREAD_ONCE_INIT;

static void name_key_init(void)
{
    dp_siphash_key(name_key);
}

/* The 64-bit finaliser of MurmurHash3: every input bit reaches every
 * output bit, so table indexes taken from the low bits are uniform. */
static inline uint64_t fmix64(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ull;
    k ^= k >> 33;
    return k;
}

static inline uint8_t lower(uint8_t c)
{
    return (uint8_t)(c >= 'A' && c <= 'Z' ? c + 32 : c);
}

/* ASCII upper case to lower case in eight octets at once (other octets,
 * those with the high bit too, unchanged): for each octet below 0x80, "at
 * least 'A'" and "above 'Z'" are read off the carry into its high bit. */
static inline uint64_t lower8(uint64_t w)
{
    const uint64_t ones = 0x0101010101010101ull;
    uint64_t low7 = w & (0x7f * ones);
    uint64_t ge_a = low7 + (0x80 - 'A') * ones;
    uint64_t gt_z = low7 + (0x80 - 'Z' - 1) * ones;
    uint64_t upper = (ge_a ^ gt_z) & ~w & (0x80 * ones);
    return w | (upper >> 2);
}

/* Absorb one label (length octet and lower-cased octets) into the chain
 * state: eight octets a multiply. The length goes in first, so that label
 * boundaries are part of what is hashed ("ab.c" differs from "a.bc"). */
static inline uint64_t absorb_label(uint64_t h, const uint8_t *p, unsigned n, size_t avail)
{
    (void)avail; /* on big-endian hosts */
    h = (h ^ (n + 0x100u)) * 0x9e3779b97f4a7c15ull;
    h ^= h >> 31;
    unsigned i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8); /* host order: the key is per process, never on disk */
        h = (h ^ lower8(w)) * 0xbf58476d1ce4e5b9ull;
        h ^= h >> 29;
    }
    if (i < n) {
        uint64_t w = 0;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        /* Eight octets can be read (they are inside the caller's buffer):
         * one load, the octets past the label masked off, gives the same
         * word as the loop below. */
        if (avail >= i + 8) {
            memcpy(&w, p + i, 8);
            w = lower8(w & (~0ull >> (64 - 8 * (n - i))));
            i = n;
        }
#endif
        for (unsigned k = 0; i < n; k++, i++)
            w |= (uint64_t)lower(p[i]) << (8 * k);
        h = (h ^ w) * 0xbf58476d1ce4e5b9ull;
        h ^= h >> 29;
    }
    return h;
}

int dp_name_hashes_make(struct dp_name_hashes *h, const uint8_t *wire, size_t cap)
{
    pthread_once(&name_key_once, name_key_init);
    unsigned n = 0;
    size_t o = 0;
    for (;;) {
        if (o >= cap || o >= 255)
            return -1;
        unsigned len = wire[o];
        if (len == 0)
            break;
        if (len > 63 || n == DP_NAME_MAX_LABELS || o + 1 + len >= cap || o + 1 + len > 254)
            return -1;
        h->off[n++] = (uint8_t)o;
        o += 1 + len;
    }
    h->n = n;
    uint64_t s = name_key[0];
    for (unsigned i = n; i-- > 0;) {
        s = absorb_label(s, wire + h->off[i] + 1, wire[h->off[i]], cap - h->off[i] - 1);
        uint64_t fp = fmix64(s ^ name_key[1]);
        h->fp[i] = fp != 0 ? fp : 1; /* 0 marks an empty slot */
    }
    return 0;
}

struct dp_nameset {
    uint64_t *slot; /* 0: empty */
    size_t mask;    /* slots - 1, a power of two minus one */
    size_t count;
    /* Label counts of the names held: a suffix of a length no listed name
     * has is not looked up at all (lists rarely hold top-level domains). */
    uint64_t labels[2];
    /* The top-level domains of the names held, as a 4096-bit bitmap of
     * their fingerprints (512 octets, in cache): a name under a top-level
     * domain no listed name has (home.arpa, a typo, a private one) is
     * settled without one access to the table or the filter. Names added
     * with no top-level domain given (dp_nameset_add) set every bit. */
    uint64_t tlds[64];
    /* After dp_nameset_seal: a Bloom filter of the fingerprints, two bits in
     * one 64-bit word, 8 to 16 bits a name: small enough to stay in the
     * CPU's caches, it settles most misses without touching the table. */
    uint64_t *filter;
    size_t fmask; /* words - 1 */
};

/* The smallest power of two holding n names at load 3/4 or less. */
/* A zeroed table. Large ones are asked for in huge pages where the kernel
 * allows it (transparent huge pages, "madvise" mode): a table of millions
 * of slots then costs a few hundred page faults, not tens of thousands,
 * and its lookups miss the TLB less. */
static uint64_t *table_alloc(size_t n)
{
    const size_t huge = 2u << 20;
    size_t bytes = n * sizeof(uint64_t);
    if (bytes < huge)
        return calloc(n, sizeof(uint64_t));
    void *p = NULL;
    if (posix_memalign(&p, huge, bytes) != 0)
        return NULL;
    (void)madvise(p, bytes, MADV_HUGEPAGE); /* advice: without it, small pages */
    memset(p, 0, bytes);
    return p;
}

static size_t slots_for(size_t n)
{
    size_t s = 16;
    while (s - s / 4 < n)
        s *= 2;
    return s;
}

struct dp_nameset *dp_nameset_new(size_t expect)
{
    struct dp_nameset *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    size_t n = slots_for(expect);
    s->slot = table_alloc(n);
    if (s->slot == NULL) {
        free(s);
        return NULL;
    }
    s->mask = n - 1;
    return s;
}

void dp_nameset_free(struct dp_nameset *s)
{
    if (s == NULL)
        return;
    free(s->filter);
    free(s->slot);
    free(s);
}

static void place(uint64_t *slot, size_t mask, uint64_t fp)
{
    size_t i = (size_t)fp & mask;
    while (slot[i] != 0)
        i = (i + 1) & mask;
    slot[i] = fp;
}

static int rehash(struct dp_nameset *s, size_t nslots)
{
    uint64_t *ns = table_alloc(nslots);
    if (ns == NULL)
        return -1;
    for (size_t i = 0; i <= s->mask; i++)
        if (s->slot[i] != 0)
            place(ns, nslots - 1, s->slot[i]);
    free(s->slot);
    s->slot = ns;
    s->mask = nslots - 1;
    return 0;
}

static int add(struct dp_nameset *s, uint64_t fp, unsigned nlabels, uint64_t tld, int any)
{
    if (s->filter != NULL || nlabels == 0 || nlabels > DP_NAME_MAX_LABELS)
        return -1; /* sealed, or no name */
    size_t n = s->mask + 1;
    if (s->count + 1 > n - n / 4) {
        if (dp_nameset_has(s, fp))
            return 0;
        if (rehash(s, n * 2) != 0)
            return -1;
    }
    /* One probe sequence finds the name or the empty slot it goes in. */
    size_t i = (size_t)fp & s->mask;
    while (s->slot[i] != 0) {
        if (s->slot[i] == fp)
            return 0;
        i = (i + 1) & s->mask;
    }
    s->slot[i] = fp;
    s->count++;
    s->labels[(nlabels - 1) / 64] |= 1ull << ((nlabels - 1) % 64);
    if (any)
        memset(s->tlds, 0xff, sizeof s->tlds);
    else
        s->tlds[(tld >> 6) & 63] |= 1ull << (tld & 63);
    return 1;
}

int dp_nameset_add(struct dp_nameset *s, uint64_t fp, unsigned nlabels)
{
    return add(s, fp, nlabels, 0, 1);
}

int dp_nameset_add_tld(struct dp_nameset *s, uint64_t fp, unsigned nlabels, uint64_t tld)
{
    return add(s, fp, nlabels, tld, 0);
}

void dp_nameset_prefetch(const struct dp_nameset *s, uint64_t fp)
{
    __builtin_prefetch(&s->slot[(size_t)fp & s->mask], 1);
}

/* The filter's word and bits for fp: bits of fp the table index does not
 * use (the high ones). */
static inline uint64_t filter_bits(uint64_t fp)
{
    return (1ull << (fp >> 58)) | (1ull << ((fp >> 52) & 63));
}

static inline size_t filter_word(const struct dp_nameset *s, uint64_t fp)
{
    return (size_t)(fp >> 20) & s->fmask;
}

void dp_nameset_seal(struct dp_nameset *s)
{
    size_t want = slots_for(s->count);
    if (want < s->mask + 1)
        (void)rehash(s, want); /* on failure the larger table stays: still right */
    if (s->count < 4096)
        return; /* the table is small enough to stay in cache itself */
    size_t words = 1;
    while (words * 64 < s->count * 8)
        words *= 2;
    s->filter = table_alloc(words);
    if (s->filter == NULL)
        return; /* lookups go to the table: slower, as right */
    s->fmask = words - 1;
    for (size_t i = 0; i <= s->mask; i++)
        if (s->slot[i] != 0)
            s->filter[filter_word(s, s->slot[i])] |= filter_bits(s->slot[i]);
}

int dp_nameset_has(const struct dp_nameset *s, uint64_t fp)
{
    size_t i = (size_t)fp & s->mask;
    for (;;) {
        uint64_t v = s->slot[i];
        if (v == fp)
            return 1;
        if (v == 0)
            return 0;
        i = (i + 1) & s->mask;
    }
}

int dp_nameset_match(const struct dp_nameset *s, const struct dp_name_hashes *h)
{
    if (s->count == 0 || h->n == 0)
        return -1;
    uint64_t tld = h->fp[h->n - 1];
    if (!(s->tlds[(tld >> 6) & 63] & (1ull << (tld & 63))))
        return -1;
    unsigned cand[DP_NAME_MAX_LABELS];
    unsigned nc = 0;
    for (unsigned i = 0; i < h->n; i++) {
        unsigned nl = h->n - i - 1; /* labels of suffix i, minus one */
        if (!(s->labels[nl / 64] & (1ull << (nl % 64))))
            continue;
        uint64_t fp = h->fp[i];
        if (s->filter != NULL) {
            uint64_t b = filter_bits(fp);
            if ((s->filter[filter_word(s, fp)] & b) != b)
                continue;
        }
        /* Every candidate's slot is fetched before any is compared: the
         * misses to memory overlap instead of queueing. */
        __builtin_prefetch(&s->slot[(size_t)fp & s->mask]);
        cand[nc++] = i;
    }
    for (unsigned k = 0; k < nc; k++)
        if (dp_nameset_has(s, h->fp[cand[k]]))
            return (int)cand[k];
    return -1;
}

size_t dp_nameset_count(const struct dp_nameset *s)
{
    return s->count;
}

size_t dp_nameset_bytes(const struct dp_nameset *s)
{
    return sizeof *s + (s->mask + 1) * sizeof *s->slot +
           (s->filter != NULL ? (s->fmask + 1) * sizeof *s->filter : 0);
}
