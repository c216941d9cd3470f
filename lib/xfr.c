/* SPDX-License-Identifier: MIT */
/* Zone transfer answers (AXFR, RFC 5936; IXFR, RFC 1995) read into record
 * sets, and the record set an incremental transfer is applied to.
 *
 * The set is an open-addressing table of pointers to records keyed by
 * their presentation form without the TTL. Its keys come from the
 * configured primary only (a feed the operator chose), so a plain FNV-1a
 * hash is enough. Memory: a record costs its text (about 40 octets for a
 * "name CNAME ." rule) plus 24 octets of header and 8-16 of table. */
#include "xfr.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "bytes.h"
#include "dotproxy/error.h"

#define T_A     1
#define T_NS    2
#define T_CNAME 5
#define T_SOA   6
#define T_PTR   12
#define T_MX    15
#define T_TXT   16
#define T_AAAA  28
#define T_DNAME 39
#define T_IXFR  251
#define T_AXFR  252

/* Text of one record: owner (<= 1004 with escapes), type, rdata (a 65535
 * octet rdata is at most 4 characters an octet escaped, plus separators). */
#define LINE_MAX_TEXT (2048 + 4 * 65536 + 64)

enum { S_FIRST, S_SECOND, S_FULL, S_DEL, S_ADD, S_DONE };

static uint64_t fnv(const char *k, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (uint8_t)k[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static size_t owner_len(const char *k, size_t n)
{
    const char *sp = memchr(k, ' ', n);
    return sp != NULL ? (size_t)(sp - k) : n;
}

/* The low half (which picks the slot) hashes the owner alone, the high
 * half the whole key: the records of one owner share a home slot, so
 * they all lie in the run that starts there (linear probing, and the
 * backward-shift deletion keeps it so), and dp_zone_set_owner finds them
 * without an index of its own. */
static uint64_t owner_hash(const char *owner, size_t n)
{
    uint64_t h = fnv(owner, n);
    return (h ^ (h >> 32)) & 0xffffffffu;
}

static uint64_t hash_key(const char *k, size_t n)
{
    return fnv(k, n) << 32 | owner_hash(k, owner_len(k, n));
}

static struct dp_zrec *rec_new(const char *key, size_t len, uint32_t ttl)
{
    if (len > UINT32_MAX - 1)
        return NULL;
    struct dp_zrec *r = malloc(sizeof *r + len + 1);
    if (r == NULL)
        return NULL;
    memcpy(r->key, key, len);
    r->key[len] = '\0';
    r->len = (uint32_t)len;
    r->ttl = ttl;
    r->hash = hash_key(key, len);
    return r;
}

void dp_zone_set_init(struct dp_zone_set *z)
{
    memset(z, 0, sizeof *z);
}

void dp_zone_set_clear(struct dp_zone_set *z)
{
    for (size_t i = 0; i < z->cap; i++)
        free(z->slot[i]);
    free(z->slot);
    free(z->soa);
    dp_zone_set_init(z);
}

static size_t find_slot(const struct dp_zone_set *z, uint64_t h, const char *key, size_t len)
{
    size_t mask = z->cap - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        const struct dp_zrec *r = z->slot[i];
        if (r == NULL || (r->hash == h && r->len == len && memcmp(r->key, key, len) == 0))
            return i;
    }
}

static int grow(struct dp_zone_set *z)
{
    size_t ncap = z->cap == 0 ? 64 : z->cap * 2;
    struct dp_zrec **ns = calloc(ncap, sizeof *ns);
    if (ns == NULL)
        return DOTPROXY_ENOMEM;
    struct dp_zone_set t = {.slot = ns, .cap = ncap};
    for (size_t i = 0; i < z->cap; i++)
        if (z->slot[i] != NULL)
            ns[find_slot(&t, z->slot[i]->hash, z->slot[i]->key, z->slot[i]->len)] = z->slot[i];
    free(z->slot);
    z->slot = ns;
    z->cap = ncap;
    return 0;
}

/* Takes r. */
static int insert_rec(struct dp_zone_set *z, struct dp_zrec *r)
{
    if ((z->n + 1) * 4 > z->cap * 3 && grow(z) != 0) {
        free(r);
        return DOTPROXY_ENOMEM;
    }
    size_t i = find_slot(z, r->hash, r->key, r->len);
    if (z->slot[i] != NULL) {
        z->slot[i]->ttl = r->ttl;
        free(r);
        return 0;
    }
    z->slot[i] = r;
    z->n++;
    return 0;
}

int dp_zone_set_add(struct dp_zone_set *z, const char *key, size_t len, uint32_t ttl)
{
    struct dp_zrec *r = rec_new(key, len, ttl);
    return r == NULL ? DOTPROXY_ENOMEM : insert_rec(z, r);
}

int dp_zone_set_del(struct dp_zone_set *z, const char *key, size_t len)
{
    if (z->cap == 0)
        return DOTPROXY_EINVAL;
    size_t i = find_slot(z, hash_key(key, len), key, len);
    if (z->slot[i] == NULL)
        return DOTPROXY_EINVAL;
    free(z->slot[i]);
    z->slot[i] = NULL;
    z->n--;
    /* Backward-shift deletion: re-seat the rest of the run so that no
     * probe stops early at the hole. */
    size_t mask = z->cap - 1;
    for (size_t j = (i + 1) & mask; z->slot[j] != NULL; j = (j + 1) & mask) {
        struct dp_zrec *r = z->slot[j];
        z->slot[j] = NULL;
        z->slot[find_slot(z, r->hash, r->key, r->len)] = r;
    }
    return 0;
}

size_t dp_zone_set_owner(const struct dp_zone_set *z, const char *owner, size_t len,
                         void (*cb)(const struct dp_zrec *r, void *user), void *user)
{
    if (z->cap == 0)
        return 0;
    uint64_t h = owner_hash(owner, len);
    size_t mask = z->cap - 1, n = 0;
    for (size_t i = (size_t)h & mask; z->slot[i] != NULL; i = (i + 1) & mask) {
        const struct dp_zrec *r = z->slot[i];
        if ((r->hash & 0xffffffffu) == h && r->len > len && r->key[len] == ' ' &&
            memcmp(r->key, owner, len) == 0) {
            cb(r, user);
            n++;
        }
    }
    return n;
}

/* "owner SOA mname rname serial refresh retry expire minimum" */
static int soa_numbers(const char *key, uint32_t v[5])
{
    const char *p = key;
    for (int k = 0; k < 4; k++) {
        p = strchr(p, ' ');
        if (p == NULL)
            return DOTPROXY_EMALFORMED;
        p++;
    }
    for (int k = 0; k < 5; k++) {
        char *end;
        unsigned long x = strtoul(p, &end, 10);
        if (end == p || x > UINT32_MAX || (*end != ' ' && *end != '\0'))
            return DOTPROXY_EMALFORMED;
        v[k] = (uint32_t)x;
        p = *end == ' ' ? end + 1 : end;
    }
    return 0;
}

static int is_soa_key(const char *key)
{
    const char *sp = strchr(key, ' ');
    return sp != NULL && strncmp(sp, " SOA ", 5) == 0;
}

/* Takes r. */
static int set_soa_rec(struct dp_zone_set *z, struct dp_zrec *r)
{
    uint32_t v[5];
    if (!is_soa_key(r->key) || soa_numbers(r->key, v) != 0) {
        free(r);
        return DOTPROXY_EMALFORMED;
    }
    free(z->soa);
    z->soa = r;
    z->serial = v[0];
    z->refresh = v[1];
    z->retry = v[2];
    z->expire = v[3];
    return 0;
}

int dp_zone_set_soa(struct dp_zone_set *z, const char *key, size_t len, uint32_t ttl)
{
    struct dp_zrec *r = rec_new(key, len, ttl);
    return r == NULL ? DOTPROXY_ENOMEM : set_soa_rec(z, r);
}

static int write_rec(const struct dp_zrec *r, FILE *f)
{
    const char *sp = strchr(r->key, ' ');
    if (sp == NULL)
        return 0;
    return fprintf(f, "%.*s %lu IN%s\n", (int)(sp - r->key), r->key, (unsigned long)r->ttl, sp) < 0
               ? DOTPROXY_ESYS
               : 0;
}

int dp_zone_set_write(const struct dp_zone_set *z, FILE *f)
{
    if (z->soa == NULL)
        return DOTPROXY_EINVAL;
    if (fprintf(f, "; zone transfer copy, serial %lu, %zu records\n", (unsigned long)z->serial,
                z->n + 1) < 0 ||
        write_rec(z->soa, f) != 0)
        return DOTPROXY_ESYS;
    for (size_t i = 0; i < z->cap; i++)
        if (z->slot[i] != NULL && write_rec(z->slot[i], f) != 0)
            return DOTPROXY_ESYS;
    return 0;
}

int dp_zone_set_read(struct dp_zone_set *z, const char *text, size_t len)
{
    dp_zone_set_clear(z);
    char *key = malloc(LINE_MAX_TEXT);
    if (key == NULL)
        return DOTPROXY_ENOMEM;
    int rc = 0;
    const char *p = text, *end = text + len;
    while (p < end && rc == 0) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl != NULL ? nl : end;
        const char *line = p;
        p = nl != NULL ? nl + 1 : end;
        if (le == line || line[0] == ';')
            continue;
        /* owner TTL IN rest */
        const char *s1 = memchr(line, ' ', (size_t)(le - line));
        if (s1 == NULL) {
            rc = DOTPROXY_EMALFORMED;
            break;
        }
        char *e;
        unsigned long ttl = strtoul(s1 + 1, &e, 10);
        if (e == s1 + 1 || ttl > UINT32_MAX || le - e < 4 || memcmp(e, " IN ", 4) != 0) {
            rc = DOTPROXY_EMALFORMED;
            break;
        }
        size_t ol = (size_t)(s1 - line), rl = (size_t)(le - (e + 3));
        if (ol + rl + 1 > LINE_MAX_TEXT) {
            rc = DOTPROXY_EMALFORMED;
            break;
        }
        memcpy(key, line, ol);
        memcpy(key + ol, e + 3, rl); /* " TYPE rdata" */
        key[ol + rl] = '\0';
        if (z->soa == NULL)
            rc = dp_zone_set_soa(z, key, ol + rl, (uint32_t)ttl);
        else
            rc = dp_zone_set_add(z, key, ol + rl, (uint32_t)ttl);
    }
    free(key);
    if (rc == 0 && z->soa == NULL)
        rc = DOTPROXY_EMALFORMED;
    if (rc != 0)
        dp_zone_set_clear(z);
    return rc;
}

/* ---- names ---- */

static size_t put_label_char(char *o, uint8_t c)
{
    if (c == '.' || c == '\\' || c == '"' || c == ';' || c == '(' || c == ')' || c == '$' ||
        c == '@') {
        o[0] = '\\';
        o[1] = (char)c;
        return 2;
    }
    if (c <= 0x20 || c >= 0x7f) {
        o[0] = '\\';
        o[1] = (char)('0' + c / 100);
        o[2] = (char)('0' + c / 10 % 10);
        o[3] = (char)('0' + c % 10);
        return 4;
    }
    o[0] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
    return 1;
}

/* Read a possibly compressed name at *off of msg into text (at least 1024
 * octets); *off moves past it. */
static int read_name(const uint8_t *m, size_t len, size_t *off, char *out)
{
    size_t pos = *off, o = 0, wire = 0;
    int jumped = 0, hops = 0;
    for (;;) {
        if (pos >= len)
            return DOTPROXY_EMALFORMED;
        uint8_t c = m[pos];
        if ((c & 0xC0) == 0xC0) {
            if (pos + 1 >= len || ++hops > 64)
                return DOTPROXY_EMALFORMED;
            size_t to = (size_t)(c & 0x3F) << 8 | m[pos + 1];
            if (!jumped)
                *off = pos + 2;
            jumped = 1;
            pos = to;
            continue;
        }
        if (c & 0xC0)
            return DOTPROXY_EMALFORMED;
        wire += 1u + c;
        if (wire > 255 || pos + 1 + c > len)
            return DOTPROXY_EMALFORMED;
        if (c == 0) {
            if (o == 0)
                out[o++] = '.';
            out[o] = '\0';
            if (!jumped)
                *off = pos + 1;
            return 0;
        }
        for (size_t i = 0; i < c; i++)
            o += put_label_char(out + o, m[pos + 1 + i]);
        out[o++] = '.';
        pos += 1u + c;
    }
}

int dp_xfr_name_text(const uint8_t *wire, char *out, size_t cap)
{
    char buf[1100];
    size_t off = 0;
    /* A wire name is at most 255 octets: read it as a message of 255. */
    size_t n = 0;
    while (n < 256 && wire[n] != 0)
        n += 1u + wire[n];
    if (n >= 256 || read_name(wire, n + 1, &off, buf) != 0 || strlen(buf) + 1 > cap)
        return DOTPROXY_EMALFORMED;
    memcpy(out, buf, strlen(buf) + 1);
    return 0;
}

static int hexv(int c)
{
    return c >= '0' && c <= '9' ? c - '0' : -1;
}

int dp_xfr_name_wire(const char *text, uint8_t *out)
{
    size_t o = 0, lab = 0;
    out[0] = 0;
    if (strcmp(text, ".") == 0)
        return 1;
    for (const char *p = text;; p++) {
        if (*p == '.' || *p == '\0') {
            size_t l = o - lab;
            if (l == 0 && *p == '.')
                return DOTPROXY_EMALFORMED;
            if (l > 0) {
                if (l > 63)
                    return DOTPROXY_EMALFORMED;
                out[lab] = (uint8_t)l;
                o++;
                lab = o;
            }
            if (*p == '\0' || p[1] == '\0')
                break;
            continue;
        }
        if (o + 2 > 255)
            return DOTPROXY_EMALFORMED;
        uint8_t c = (uint8_t)*p;
        if (c == '\\') {
            if (hexv(p[1]) >= 0 && hexv(p[2]) >= 0 && hexv(p[3]) >= 0) {
                int v = hexv(p[1]) * 100 + hexv(p[2]) * 10 + hexv(p[3]);
                if (v > 255)
                    return DOTPROXY_EMALFORMED;
                c = (uint8_t)v;
                p += 3;
            } else if (p[1] != '\0') {
                c = (uint8_t) * ++p;
            } else {
                return DOTPROXY_EMALFORMED;
            }
        }
        out[o + 1] = (uint8_t)(c >= 'A' && c <= 'Z' ? c + 32 : c);
        o++;
    }
    out[o] = 0;
    return (int)o + 1;
}

/* ---- records ---- */

static const char *type_name(uint16_t t)
{
    switch (t) {
    case T_A: return "A";
    case T_NS: return "NS";
    case T_CNAME: return "CNAME";
    case T_SOA: return "SOA";
    case T_PTR: return "PTR";
    case T_MX: return "MX";
    case T_TXT: return "TXT";
    case T_AAAA: return "AAAA";
    case T_DNAME: return "DNAME";
    default: return NULL;
    }
}

static size_t put_generic(char *o, const uint8_t *rd, size_t n)
{
    static const char hx[] = "0123456789abcdef";
    size_t k = (size_t)sprintf(o, "\\# %zu%s", n, n > 0 ? " " : "");
    for (size_t i = 0; i < n; i++) {
        o[k++] = hx[rd[i] >> 4];
        o[k++] = hx[rd[i] & 15];
    }
    o[k] = '\0';
    return k;
}

/* The rdata of one record as text at o (LINE_MAX_TEXT is enough). Names
 * in rdata may be compressed against msg (RFC 1035 types). */
static int put_rdata(char *o, uint16_t type, const uint8_t *m, size_t len, size_t rd, size_t rdlen)
{
    size_t end = rd + rdlen, off = rd, k = 0;
    const uint8_t *p = m + rd;
    switch (type) {
    case T_A:
    case T_AAAA: {
        char a[INET6_ADDRSTRLEN];
        if (rdlen != (type == T_A ? 4u : 16u) ||
            inet_ntop(type == T_A ? AF_INET : AF_INET6, p, a, sizeof a) == NULL)
            return DOTPROXY_EMALFORMED;
        strcpy(o, a);
        return 0;
    }
    case T_NS:
    case T_CNAME:
    case T_PTR:
    case T_DNAME:
        if (read_name(m, len, &off, o) != 0 || off != end)
            return DOTPROXY_EMALFORMED;
        return 0;
    case T_MX:
        if (rdlen < 3)
            return DOTPROXY_EMALFORMED;
        k = (size_t)sprintf(o, "%u ", (unsigned)dp_get16(p));
        off += 2;
        if (read_name(m, len, &off, o + k) != 0 || off != end)
            return DOTPROXY_EMALFORMED;
        return 0;
    case T_SOA:
        for (int i = 0; i < 2; i++) {
            if (read_name(m, len, &off, o + k) != 0)
                return DOTPROXY_EMALFORMED;
            k += strlen(o + k);
            o[k++] = ' ';
        }
        if (off + 20 != end)
            return DOTPROXY_EMALFORMED;
        for (int i = 0; i < 5; i++)
            k += (size_t)sprintf(o + k, i < 4 ? "%lu " : "%lu",
                                 (unsigned long)dp_get32(m + off + 4 * (size_t)i));
        return 0;
    case T_TXT:
        if (rdlen == 0)
            return DOTPROXY_EMALFORMED;
        while (off < end) {
            size_t l = m[off++];
            if (off + l > end)
                return DOTPROXY_EMALFORMED;
            if (k > 0)
                o[k++] = ' ';
            o[k++] = '"';
            for (size_t i = 0; i < l; i++) {
                uint8_t c = m[off + i];
                if (c == '"' || c == '\\') {
                    o[k++] = '\\';
                    o[k++] = (char)c;
                } else if (c < 0x20 || c >= 0x7f) {
                    k += (size_t)sprintf(o + k, "\\%03u", c);
                } else {
                    o[k++] = (char)c;
                }
            }
            o[k++] = '"';
            off += l;
        }
        o[k] = '\0';
        return 0;
    default: put_generic(o, p, rdlen); return 0;
    }
}

static void xfail(struct dp_xfr *x, const char *what)
{
    snprintf(x->err, sizeof x->err, "%s (message %lu, record %lu)", what, x->msgs, x->rrs);
}

void dp_xfr_begin(struct dp_xfr *x, uint16_t id, const uint8_t *zone, int ixfr,
                  uint32_t have_serial)
{
    memset(x, 0, sizeof *x);
    x->id = id;
    size_t n = 0;
    while (n < 255 && zone[n] != 0)
        n += 1u + zone[n];
    memcpy(x->qname, zone, n + 1 <= sizeof x->qname ? n + 1 : sizeof x->qname);
    x->ixfr = ixfr;
    x->have_serial = have_serial;
    x->state = S_FIRST;
    dp_zone_set_init(&x->full);
}

void dp_xfr_end(struct dp_xfr *x)
{
    dp_zone_set_clear(&x->full);
    for (size_t i = 0; i < x->nops; i++)
        free(x->ops[i].rec);
    free(x->ops);
    free(x->soa);
    free(x->line);
    x->line = NULL;
    x->ops = NULL;
    x->nops = x->capops = 0;
    x->soa = NULL;
}

static int push_op(struct dp_xfr *x, struct dp_zrec *r, int add)
{
    if (x->nops == x->capops) {
        size_t nc = x->capops == 0 ? 64 : x->capops * 2;
        struct dp_xfr_op *no = realloc(x->ops, nc * sizeof *no);
        if (no == NULL) {
            free(r);
            return DOTPROXY_ENOMEM;
        }
        x->ops = no;
        x->capops = nc;
    }
    x->ops[x->nops].rec = r;
    x->ops[x->nops].add = add;
    x->nops++;
    return 0;
}

/* serial of an SOA key (0 on a malformed one: checked on the first). */
static uint32_t key_serial(const char *key)
{
    uint32_t v[5];
    return soa_numbers(key, v) == 0 ? v[0] : 0;
}

/* One answer record, as text in key (len octets). Takes nothing. */
static int take_rr(struct dp_xfr *x, const char *key, size_t len, uint16_t type, uint32_t ttl,
                   const char *owner, const char *zone)
{
    int soa = type == T_SOA;
    struct dp_zrec *r;
    switch (x->state) {
    case S_FIRST:
        if (!soa || strcmp(owner, zone) != 0) {
            xfail(x, "the transfer does not start with the zone's SOA");
            return DOTPROXY_EMALFORMED;
        }
        if ((x->soa = rec_new(key, len, ttl)) == NULL)
            return DOTPROXY_ENOMEM;
        uint32_t v[5];
        if (soa_numbers(key, v) != 0) {
            xfail(x, "a bad SOA");
            return DOTPROXY_EMALFORMED;
        }
        x->new_serial = v[0];
        x->state = S_SECOND;
        return 0;
    case S_SECOND:
        if (soa && x->ixfr && key_serial(key) != x->new_serial) {
            x->state = S_DEL;
            return 0;
        }
        x->state = S_FULL;
        /* fall through */
    case S_FULL:
        if (soa) {
            if (key_serial(key) != x->new_serial || strcmp(owner, zone) != 0) {
                xfail(x, "an SOA inside a full transfer");
                return DOTPROXY_EMALFORMED;
            }
            if ((r = rec_new(x->soa->key, x->soa->len, x->soa->ttl)) == NULL)
                return DOTPROXY_ENOMEM;
            x->kind = DP_XFR_FULL;
            x->state = S_DONE;
            return set_soa_rec(&x->full, r);
        }
        return dp_zone_set_add(&x->full, key, len, ttl);
    case S_DEL:
        if (soa) {
            x->state = S_ADD;
            return 0;
        }
        if ((r = rec_new(key, len, ttl)) == NULL)
            return DOTPROXY_ENOMEM;
        return push_op(x, r, 0);
    case S_ADD:
        if (soa) {
            if (key_serial(key) == x->new_serial) {
                x->kind = DP_XFR_INCR;
                x->state = S_DONE;
            } else {
                x->state = S_DEL;
            }
            return 0;
        }
        if ((r = rec_new(key, len, ttl)) == NULL)
            return DOTPROXY_ENOMEM;
        return push_op(x, r, 1);
    default: xfail(x, "records after the closing SOA"); return DOTPROXY_EMALFORMED;
    }
}

int dp_xfr_msg(struct dp_xfr *x, const uint8_t *m, size_t len)
{
    if (x->state == S_DONE) {
        xfail(x, "a message after the end of the transfer");
        return DOTPROXY_EMALFORMED;
    }
    x->msgs++;
    if (len < 12) {
        xfail(x, "a short message");
        return DOTPROXY_EMALFORMED;
    }
    unsigned flags = dp_get16(m + 2);
    if (dp_get16(m) != x->id || !(flags & 0x8000) || ((flags >> 11) & 15) != 0) {
        xfail(x, "not the answer to our query");
        return DOTPROXY_EMALFORMED;
    }
    if ((flags & 15) != 0) {
        snprintf(x->err, sizeof x->err, "the primary answered rcode %u", flags & 15);
        return DOTPROXY_EUPSTREAM;
    }
    if (flags & 0x0200) {
        xfail(x, "a truncated transfer message");
        return DOTPROXY_EMALFORMED;
    }
    unsigned qd = dp_get16(m + 4), an = dp_get16(m + 6);
    size_t off = 12;
    if (x->line == NULL && (x->line = malloc(LINE_MAX_TEXT)) == NULL)
        return DOTPROXY_ENOMEM;
    char *buf = x->line;
    char zone[1100], owner[1100];
    size_t zl = 0;
    while (zl < 255 && x->qname[zl] != 0)
        zl += 1u + x->qname[zl];
    size_t zoff = 0;
    int rc = read_name(x->qname, zl + 1, &zoff, zone);
    for (unsigned i = 0; rc == 0 && i < qd; i++) {
        if (read_name(m, len, &off, owner) != 0 || off + 4 > len) {
            xfail(x, "a bad question");
            rc = DOTPROXY_EMALFORMED;
        }
        off += 4;
    }
    for (unsigned i = 0; rc == 0 && i < an; i++) {
        x->rrs++;
        if (read_name(m, len, &off, owner) != 0 || off + 10 > len) {
            xfail(x, "a bad record");
            rc = DOTPROXY_EMALFORMED;
            break;
        }
        uint16_t type = dp_get16(m + off), cls = dp_get16(m + off + 2);
        uint32_t ttl = dp_get32(m + off + 4);
        size_t rdlen = dp_get16(m + off + 8);
        off += 10;
        if (off + rdlen > len) {
            xfail(x, "a record past the end of the message");
            rc = DOTPROXY_EMALFORMED;
            break;
        }
        if (cls != 1 || x->state == S_DONE) {
            xfail(x, cls != 1 ? "a record of a class other than IN" : "records after the end");
            rc = DOTPROXY_EMALFORMED;
            break;
        }
        /* Every owner lies at or below the zone (RFC 5936 2.2: the zone
         * and nothing else). */
        size_t ol = strlen(owner), zlen = strlen(zone);
        if (strcmp(zone, ".") != 0 && (ol < zlen || strcmp(owner + ol - zlen, zone) != 0 ||
                                       (ol > zlen && owner[ol - zlen - 1] != '.'))) {
            xfail(x, "a record outside the zone");
            rc = DOTPROXY_EMALFORMED;
            break;
        }
        const char *tn = type_name(type);
        size_t k = (size_t)snprintf(buf, LINE_MAX_TEXT, "%s ", owner);
        if (tn != NULL)
            k += (size_t)sprintf(buf + k, "%s ", tn);
        else
            k += (size_t)sprintf(buf + k, "TYPE%u ", (unsigned)type);
        if ((tn != NULL ? put_rdata(buf + k, type, m, len, off, rdlen)
                        : (put_generic(buf + k, m + off, rdlen), 0)) != 0) {
            xfail(x, "bad rdata");
            rc = DOTPROXY_EMALFORMED;
            break;
        }
        k += strlen(buf + k);
        off += rdlen;
        rc = take_rr(x, buf, k, type, ttl, owner, zone);
        if (rc == DOTPROXY_ENOMEM)
            xfail(x, "out of memory");
    }
    if (rc != 0)
        return rc;
    if (x->state == S_SECOND && x->ixfr && x->msgs == 1 && x->rrs == 1) {
        /* RFC 1995 2: one SOA alone says we hold that version (or a newer
         * one) already. */
        x->kind = DP_XFR_UPTODATE;
        x->state = S_DONE;
    }
    return x->state == S_DONE ? 1 : 0;
}

int dp_xfr_apply(struct dp_xfr *x, struct dp_zone_set *z)
{
    if (x->kind == DP_XFR_FULL) {
        dp_zone_set_clear(z);
        *z = x->full;
        dp_zone_set_init(&x->full);
        return 0;
    }
    if (x->kind != DP_XFR_INCR)
        return 0;
    if (z->soa == NULL) {
        snprintf(x->err, sizeof x->err, "differences without a zone to apply them to");
        return DOTPROXY_EINVAL;
    }
    for (size_t i = 0; i < x->nops; i++) {
        struct dp_zrec *r = x->ops[i].rec;
        if (x->ops[i].add) {
            x->ops[i].rec = NULL;
            if (insert_rec(z, r) != 0) {
                snprintf(x->err, sizeof x->err, "out of memory");
                return DOTPROXY_ENOMEM;
            }
        } else if (dp_zone_set_del(z, r->key, r->len) != 0) {
            snprintf(x->err, sizeof x->err, "an IXFR deletes a record we do not hold: %.100s",
                     r->key);
            return DOTPROXY_EINVAL;
        }
    }
    struct dp_zrec *soa = x->soa;
    x->soa = NULL;
    return set_soa_rec(z, soa);
}

int dp_xfr_query(uint8_t *out, size_t cap, uint16_t id, const uint8_t *zone, int ixfr,
                 uint32_t serial)
{
    size_t zl = 0;
    while (zl < 255 && zone[zl] != 0)
        zl += 1u + zone[zl];
    zl++;
    size_t need = 12 + zl + 4 + (ixfr ? 2 + 10 + 22 : 0);
    if (cap < need)
        return DOTPROXY_ENOSPC;
    memset(out, 0, need);
    dp_put16(out, id);
    dp_put16(out + 4, 1);
    dp_put16(out + 8, ixfr ? 1 : 0);
    memcpy(out + 12, zone, zl);
    size_t o = 12 + zl;
    dp_put16(out + o, ixfr ? T_IXFR : T_AXFR);
    dp_put16(out + o + 2, 1);
    o += 4;
    if (ixfr) {
        /* RFC 1995 3: the client's SOA in the authority section; only its
         * serial is read. */
        dp_put16(out + o, 0xC00C);
        dp_put16(out + o + 2, T_SOA);
        dp_put16(out + o + 4, 1);
        dp_put16(out + o + 10, 22);
        o += 12 + 2; /* mname and rname: the root */
        dp_put32(out + o, serial);
        o += 20;
    }
    return (int)o;
}
