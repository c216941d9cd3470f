/* SPDX-License-Identifier: MIT */
/* The public suffix list as a hash set of suffixes, walked from the top
 * label down.
 *
 * Each suffix is keyed by a chained hash of its labels taken right to left
 * (h("uk"), then h(h("uk"), "co"), ...), so a lookup hashes each label of
 * the name once, however long the name, and never builds a string. Every
 * rule also marks its parents as nodes, so the walk from the right can stop
 * at the first suffix that is neither a rule nor the parent of one. The
 * algorithm is the list's own (publicsuffix.org/list "Algorithm"):
 * exceptions win, else the longest rule, a wildcard matching any one
 * label, and "*" (the top label) when nothing matches. */
#include "psl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dotproxy/error.h"
#include "siphash.h"

#define F_NODE      1u /* a rule ends below (or at) this suffix */
#define F_RULE      2u
#define F_WILDCARD  4u /* "*.suffix" is a rule */
#define F_EXCEPTION 8u /* "!suffix" */

struct slot {
    uint64_t h; /* 0: empty */
    uint32_t flags;
};

struct dp_psl {
    uint64_t key[2];
    struct slot *tab;
    size_t mask, used, rules;
};

/* One label into the chain. The label's octets are folded with a fixed
 * multiply-xor (cheap), the chain step is keyed: a collision needs the
 * secret key. 0 is kept for "empty". */
static uint64_t chain(const struct dp_psl *p, uint64_t h, const uint8_t *lab, size_t n)
{
    uint64_t f = 0xcbf29ce484222325ull ^ n;
    for (size_t i = 0; i < n; i++)
        f = (f ^ lab[i]) * 0x100000001b3ull;
    /* A keyed multiply-xorshift step: cheap, and without the key no one
     * can make two suffixes meet. */
    uint64_t r = (h ^ p->key[0]) * 0x9e3779b97f4a7c15ull;
    r = (r ^ (r >> 32) ^ f ^ p->key[1]) * 0xbf58476d1ce4e5b9ull;
    r ^= r >> 31;
    r *= 0x94d049bb133111ebull;
    r ^= r >> 29;
    return r != 0 ? r : 1;
}

static struct slot *find(const struct dp_psl *p, uint64_t h)
{
    for (size_t i = h & p->mask;; i = (i + 1) & p->mask) {
        if (p->tab[i].h == h || p->tab[i].h == 0)
            return &p->tab[i];
    }
}

static int grow(struct dp_psl *p)
{
    size_t n = p->tab == NULL ? 4096 : (p->mask + 1) * 2;
    struct slot *t = calloc(n, sizeof *t);
    if (t == NULL)
        return DOTPROXY_ENOMEM;
    struct slot *old = p->tab;
    size_t oldn = old == NULL ? 0 : p->mask + 1;
    p->tab = t;
    p->mask = n - 1;
    for (size_t i = 0; i < oldn; i++)
        if (old[i].h != 0)
            *find(p, old[i].h) = old[i];
    free(old);
    return 0;
}

static int mark(struct dp_psl *p, uint64_t h, uint32_t flags)
{
    if ((p->used + 1) * 2 > p->mask + 1 && grow(p) != 0)
        return DOTPROXY_ENOMEM;
    struct slot *s = find(p, h);
    if (s->h == 0) {
        s->h = h;
        p->used++;
    }
    s->flags |= flags;
    return 0;
}

static int lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

/* One rule in the file's syntax ("co.uk", "*.ck", "!www.ck"). Rules outside
 * ASCII (IDN in UTF-8) are skipped: names on the wire are A-labels, and the
 * list carries the punycode form of each too. */
static int add_rule(struct dp_psl *p, const char *s, size_t n)
{
    uint32_t kind = F_RULE;
    if (n > 0 && s[0] == '!') {
        kind = F_EXCEPTION;
        s++, n--;
    }
    int wildcard = 0;
    if (n > 2 && s[0] == '*' && s[1] == '.') {
        wildcard = 1;
        s += 2, n -= 2;
    }
    if (n == 0 || n > 253)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] >= 0x80 || s[i] == '*')
            return 0;
    uint8_t lab[64];
    uint64_t h = 0;
    size_t end = n;
    while (end > 0) {
        size_t start = end;
        while (start > 0 && s[start - 1] != '.')
            start--;
        size_t ln = end - start;
        if (ln == 0 || ln > 63)
            return 0;
        for (size_t i = 0; i < ln; i++)
            lab[i] = (uint8_t)lower((unsigned char)s[start + i]);
        h = chain(p, h, lab, ln);
        int last = start == 0;
        int r = mark(p, h, F_NODE | (last ? (wildcard ? F_WILDCARD : kind) : 0));
        if (r != 0)
            return r;
        end = start > 0 ? start - 1 : 0;
    }
    p->rules++;
    return 0;
}

int dp_psl_load_text(struct dp_psl **out, const char *text, size_t len)
{
    struct dp_psl *p = calloc(1, sizeof *p);
    if (p == NULL)
        return DOTPROXY_ENOMEM;
    dp_siphash_key(p->key);
    int r = grow(p);
    for (size_t i = 0; r == 0 && i < len;) {
        size_t e = i;
        while (e < len && text[e] != '\n')
            e++;
        size_t a = i, b = e;
        /* A rule is the line up to the first white space. */
        while (a < b && (text[a] == ' ' || text[a] == '\t' || text[a] == '\r'))
            a++;
        size_t c = a;
        while (c < b && text[c] != ' ' && text[c] != '\t' && text[c] != '\r')
            c++;
        if (c > a && !(c - a >= 2 && text[a] == '/' && text[a + 1] == '/'))
            r = add_rule(p, text + a, c - a);
        i = e + 1;
    }
    if (r == 0 && p->rules == 0)
        r = DOTPROXY_EINVAL;
    if (r != 0) {
        dp_psl_free(p);
        return r;
    }
    *out = p;
    return 0;
}

int dp_psl_load(struct dp_psl **out, const char *path)
{
    FILE *f = fopen(path != NULL ? path : DP_PSL_DEFAULT_FILE, "re");
    if (f == NULL)
        return DOTPROXY_EINVAL;
    size_t cap = 1 << 18, len = 0;
    char *buf = malloc(cap);
    int r = buf == NULL ? DOTPROXY_ENOMEM : 0;
    while (r == 0) {
        if (len == cap) {
            char *nb = cap < (1u << 24) ? realloc(buf, cap * 2) : NULL;
            if (nb == NULL) {
                r = DOTPROXY_ENOMEM;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) {
            if (ferror(f))
                r = DOTPROXY_EINVAL;
            break;
        }
    }
    fclose(f);
    if (r == 0)
        r = dp_psl_load_text(out, buf, len);
    free(buf);
    return r;
}

void dp_psl_free(struct dp_psl *p)
{
    if (p == NULL)
        return;
    free(p->tab);
    free(p);
}

size_t dp_psl_rules(const struct dp_psl *p)
{
    return p->rules;
}

size_t dp_psl_domain(const struct dp_psl *p, const uint8_t *name, size_t len, uint64_t *hash)
{
    /* Label starts, left to right (a name has at most 127 labels). */
    uint16_t at[128];
    size_t n = 0;
    for (size_t i = 0; i < len && name[i] != 0 && n < 128; i += 1u + name[i])
        at[n++] = (uint16_t)i;
    if (n == 0) {
        *hash = 1;
        return len > 0 ? len - 1 : 0;
    }
    static const uint64_t nokey[2] = {0x646f7470726f7879ull, 0x7073}; /* psl NULL */
    const struct dp_psl fallback = {.key = {nokey[0], nokey[1]}};
    const struct dp_psl *k = p != NULL ? p : &fallback;
    /* ps: labels of the public suffix found so far ("*" rule: one). */
    size_t ps = 1, done = 0;
    uint64_t h = 0, hs[129];
    uint32_t parent = 0;
    for (size_t lv = 1; lv <= n; lv++) {
        size_t li = n - lv;
        h = chain(k, h, name + at[li] + 1, name[at[li]]);
        hs[lv] = h;
        done = lv;
        if (p == NULL) {
            if (lv == 2)
                break;
            continue;
        }
        const struct slot *s = find(p, h);
        uint32_t fl = s->h == h ? s->flags : 0;
        if (fl & F_EXCEPTION) {
            ps = lv - 1;
            break;
        }
        if ((fl & F_RULE) || (parent & F_WILDCARD))
            ps = lv;
        if (!(fl & F_NODE))
            break;
        parent = fl;
    }
    size_t labels = p == NULL ? 2 : ps + 1;
    if (labels > n)
        labels = n;
    /* The walk stops at the first suffix the list does not know, which
     * may be short of the registrable domain: chain on to it. */
    for (size_t lv = done + 1; lv <= labels; lv++) {
        size_t li = n - lv;
        hs[lv] = chain(k, hs[lv - 1], name + at[li] + 1, name[at[li]]);
    }
    h = hs[labels];
    *hash = h;
    return at[n - labels];
}
