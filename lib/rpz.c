/* SPDX-License-Identifier: MIT */
/* Response Policy Zones: a master-file parser (RFC 1035 section 5 with the
 * BIND extensions RPZ feeds use: $ORIGIN, $TTL, TTL units, parentheses,
 * quoted strings, RFC 3597 generic rdata) feeding compact rule tables.
 *
 * Memory, built once per load and never written afterwards:
 *  - QNAME rules: one arena of variable-length records
 *      [flags][name length][local-data offset, 4 octets, only with local data]
 *      [trigger name in wire form, lower case, relative to the apex]
 *    and one open-addressing table of 8-octet slots {record offset, hash}
 *    at load factor <= 0.7, sized exactly at the end of the load (the slot
 *    index is a multiply-shift of the hash, so any size works). A typical
 *    "name CNAME ." rule costs its name plus about 14 octets.
 *  - address rules (rpz-client-ip, rpz-ip): an array of 28-octet records
 *    sorted by (trigger, family, prefix length, address), with the range of
 *    each (trigger, family, length) kept aside: a lookup binary-searches the
 *    lengths present, longest first.
 *  - local data: a second arena of records {next, type, ttl, rdlength,
 *    rdata}, chained per rule in zone order.
 * Offsets are 32 bits: a zone is limited to 4 GiB of rules, far beyond the
 * 10^7 rules the blocking engine plans for.
 *
 * Layers (dp_rpz_layer_new, for IXFR): a zone of the same form built from
 * the records of the owners changed since a base was loaded, with one more
 * action value, the tombstone (the owner has no rule any more). The lookups
 * take each candidate trigger from the layer first and from the base only
 * where the layer has none; the base is shared by reference count, never
 * written. */
#include "rpz.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dotproxy/error.h"

#define F_ACTION 0x07u
#define F_WILD   0x08u
#define F_LOCAL  0x10u
/* An action value of layers only: the trigger has no rule any more (its
 * records were all deleted), whatever the base below says. */
#define A_TOMB 6u

#define T_A     1u
#define T_NS    2u
#define T_CNAME 5u
#define T_SOA   6u
#define T_PTR   12u
#define T_MX    15u
#define T_TXT   16u
#define T_AAAA  28u
#define T_SRV   33u
#define T_DNAME 39u
#define T_ANY   255u

#define MAX_TOKENS 1024

/* Local data record header: next (4), type (2), ttl (4), rdlength (2). */
#define LD_HDR 12u

struct slot {
    uint32_t off; /* record offset in names; 0 = empty */
    uint32_t h;
};

/* rpz-client-ip / rpz-ip rule. kind: bit 0 = IPv6, bit 1 = rpz-ip. */
struct iprule {
    uint8_t addr[16];
    uint8_t plen;
    uint8_t kind;
    uint8_t action;
    uint8_t pad;
    uint32_t local; /* offset in the local arena, 0 = none */
    uint32_t line;  /* for conflicts found when sorting */
};

struct iprange {
    uint32_t start, end;
};

struct dp_rpz {
    atomic_uint refs;
    /* A layer (dp_rpz_layer_new): the zone below it, whose rules apply
     * where this one has none; NULL for a zone loaded whole. */
    struct dp_rpz *base;
    size_t layer_rules; /* a layer: distinct triggers of base and layer together */
    bool ip_alias;      /* an address trigger was not written in canonical form */
    char origin[1025];  /* text, escaped: at most 4 characters per octet */
    uint8_t *names;     /* QNAME rule arena; offset 0 is a pad */
    size_t names_len, names_cap;
    struct slot *tab;
    size_t tab_size, tab_used;
    uint8_t *local; /* local-data arena; offset 0 is a pad */
    size_t local_len, local_cap;
    struct iprule *ips;
    size_t nips, ips_cap;
    struct iprange range[4][129];
    uint8_t lens[4][129]; /* prefix lengths present, longest first */
    uint8_t nlens[4];
    size_t nwild;            /* wildcard QNAME rules: none = no suffix probes */
    uint8_t wild_min_labels; /* fewest labels of a wildcard base name */
};

/* ---------------------------------------------------------------- names */

static uint8_t lower(uint8_t c)
{
    return (c >= 'A' && c <= 'Z') ? (uint8_t)(c + 32) : c;
}

/* Copy len octets folding ASCII upper case to lower, 8 at a time: a byte
 * is upper case when its low 7 bits are >= 'A' and <= 'Z' and its top bit
 * is clear; adding 0x20 is then OR-ing 0x80 >> 2. */
static void fold_case(uint8_t *dst, const uint8_t *src, size_t len)
{
    const uint64_t ones = 0x0101010101010101ULL, high = 0x8080808080808080ULL;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, src + i, 8);
        uint64_t low7 = w & ~high;
        uint64_t ge_a = low7 + (0x80u - 'A') * ones;
        uint64_t gt_z = low7 + (0x80u - 'Z' - 1) * ones;
        uint64_t upper = ge_a & ~gt_z & ~w & high;
        w |= upper >> 2;
        memcpy(dst + i, &w, 8);
    }
    for (; i < len; i++)
        dst[i] = lower(src[i]);
}

/* Length of a valid uncompressed wire name (terminating zero included), or
 * 0 when it is not one within 255 octets. */
static size_t wire_len(const uint8_t *n)
{
    size_t i = 0;
    while (i < 255) {
        uint8_t l = n[i];
        if (l == 0)
            return i + 1;
        if (l > 63 || i + 1 + l >= 255)
            return 0;
        i += 1 + (size_t)l;
    }
    return 0;
}

/* Name hash: 8 octets at a time through a 64-bit multiply, then a final
 * avalanche (the slot index takes the high bits). The rule set is fixed at
 * load, so a flooding client cannot grow a chain; no secret key is needed. */
static uint32_t name_hash(const uint8_t *n, size_t len, bool wild)
{
    uint64_t h = wild ? 0x9ae16a3b2f90404fULL : 0xc3a5c85c97cb3127ULL;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, n + i, 8);
        h = (h ^ w) * 0x9e3779b97f4a7c15ULL;
        h ^= h >> 29;
    }
    uint64_t w = 0;
    for (size_t k = 0; i < len; i++, k++)
        w |= (uint64_t)n[i] << (8 * k);
    h = (h ^ w ^ len) * 0x9e3779b97f4a7c15ULL;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return (uint32_t)(h >> 32);
}

static size_t slot_index(uint32_t h, size_t size)
{
    return (size_t)(((uint64_t)h * (uint64_t)size) >> 32);
}

/* Presentation class of an octet in a label: 0 as is, 1 escaped with a
 * backslash, 2 written \DDD (RFC 4343 section 2.1). */
static uint8_t text_class(uint8_t c)
{
    if (c == '.' || c == '\\' || c == '"' || c == ';' || c == '(' || c == ')')
        return 1;
    return (c <= 0x20 || c >= 0x7f) ? 2 : 0;
}

/* Wire name to presentation text (no trailing dot for a relative name),
 * truncated to cap. On the match path (rule_text): no stdio, and a label
 * of plain octets, the usual case, is one memcpy. */
static void name_to_text(const uint8_t *n, bool trailing_dot, char *out, size_t cap)
{
    size_t o = 0;
    if (cap == 0)
        return;
    for (size_t i = 0; n[i] != 0;) {
        uint8_t l = n[i++];
        if (o > 0) {
            if (o + 1 >= cap)
                goto done;
            out[o++] = '.';
        }
        bool plain = true;
        for (uint8_t k = 0; k < l && plain; k++)
            plain = text_class(n[i + k]) == 0;
        if (plain && o + l < cap) {
            memcpy(out + o, n + i, l);
            o += l;
            i += l;
            continue;
        }
        for (uint8_t k = 0; k < l; k++, i++) {
            uint8_t c = n[i];
            char tmp[4];
            size_t w = 0;
            switch (text_class(c)) {
            case 1:
                tmp[w++] = '\\';
                tmp[w++] = (char)c;
                break;
            case 2:
                tmp[w++] = '\\';
                tmp[w++] = (char)('0' + c / 100);
                tmp[w++] = (char)('0' + c / 10 % 10);
                tmp[w++] = (char)('0' + c % 10);
                break;
            default: tmp[w++] = (char)c;
            }
            if (o + w >= cap)
                goto done;
            memcpy(out + o, tmp, w);
            o += w;
        }
    }
    if (trailing_dot && o + 1 < cap)
        out[o++] = '.';
done:
    out[o] = '\0';
}

/* ---------------------------------------------------------------- parser */

struct tok {
    const char *s;
    size_t n;
    bool quoted;
};

struct parser {
    struct dp_rpz *z;
    const char *file;
    const char *p, *end;
    unsigned long line;     /* line of the cursor */
    unsigned long rec_line; /* first line of the record at hand */
    int strict;
    struct dp_rpz_diag *diag;
    bool record_err; /* diag->error holds an error already */

    struct tok toks[MAX_TOKENS];
    size_t ntok;
    bool leading_ws;

    uint8_t origin[256];
    size_t origin_len; /* 0 = no $ORIGIN yet */
    uint8_t apex[256];
    size_t apex_len; /* 0 = not fixed yet */
    uint8_t owner[256];
    size_t owner_len; /* previous owner, for records that start blank */
    long default_ttl; /* $TTL, -1 when none */
    long last_ttl;    /* last TTL used (RFC 1035: the default otherwise) */
    unsigned long nsdname, nsip;

    uint8_t rdata[65535];
};

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static int
fail(struct parser *P, const char *fmt, ...)
{
    if (!P->record_err) {
        char what[400];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(what, sizeof what, fmt, ap);
        va_end(ap);
        snprintf(P->diag->error, sizeof P->diag->error, "%s:%lu: %s", P->file, P->rec_line, what);
        P->record_err = true;
    }
    return DOTPROXY_EMALFORMED;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

/* Collect the tokens of the next record: up to an end of line outside
 * parentheses. Returns 1 with a record, 0 at the end of the text, or an
 * error (the rest of the record is then consumed, so a lenient load resumes
 * at the next one). Blank and comment-only lines yield no record. */
static int next_record(struct parser *P)
{
    for (;;) {
        if (P->p >= P->end)
            return 0;
        P->ntok = 0;
        P->rec_line = P->line;
        P->leading_ws = is_space(*P->p);
        int depth = 0;
        int err = 0;
        while (P->p < P->end) {
            char c = *P->p;
            if (c == '\n') {
                P->p++;
                P->line++;
                if (depth == 0)
                    break;
                continue;
            }
            if (is_space(c)) {
                P->p++;
                continue;
            }
            if (c == ';') {
                while (P->p < P->end && *P->p != '\n')
                    P->p++;
                continue;
            }
            if (c == '(') {
                depth++;
                P->p++;
                continue;
            }
            if (c == ')') {
                P->p++;
                if (depth == 0) {
                    if (!err)
                        err = fail(P, "')' without '('");
                    continue;
                }
                depth--;
                continue;
            }
            struct tok t;
            if (c == '"') {
                const char *s = ++P->p;
                while (P->p < P->end && *P->p != '"' && *P->p != '\n') {
                    if (*P->p == '\\' && P->p + 1 < P->end && P->p[1] != '\n')
                        P->p++;
                    P->p++;
                }
                if (P->p >= P->end || *P->p != '"') {
                    if (!err)
                        err = fail(P, "unterminated quoted string");
                    continue;
                }
                t.s = s;
                t.n = (size_t)(P->p - s);
                t.quoted = true;
                P->p++;
            } else {
                const char *s = P->p;
                while (P->p < P->end) {
                    char d = *P->p;
                    if (d == '\\' && P->p + 1 < P->end && P->p[1] != '\n') {
                        P->p += 2;
                        continue;
                    }
                    if (is_space(d) || d == '\n' || d == ';' || d == '(' || d == ')' || d == '"')
                        break;
                    P->p++;
                }
                t.s = s;
                t.n = (size_t)(P->p - s);
                t.quoted = false;
            }
            if (P->ntok == MAX_TOKENS) {
                if (!err)
                    err = fail(P, "more than %d fields in one record", MAX_TOKENS);
                continue;
            }
            P->toks[P->ntok++] = t;
        }
        if (depth > 0 && !err)
            err = fail(P, "'(' not closed before the end of the file");
        if (err)
            return err;
        if (P->ntok > 0)
            return 1;
    }
}

static bool tok_is(const struct tok *t, const char *word)
{
    size_t n = strlen(word);
    if (t->n != n || t->quoted)
        return false;
    for (size_t i = 0; i < n; i++)
        if (lower((uint8_t)t->s[i]) != (uint8_t)word[i])
            return false;
    return true;
}

/* Presentation name to wire form. Relative names get origin appended (an
 * error when there is none). lower: fold to lower case (owners). */
static int parse_name(struct parser *P, const struct tok *t, uint8_t *out, size_t *out_len,
                      bool lowercase)
{
    if (t->quoted)
        return fail(P, "a name cannot be quoted");
    if (t->n == 1 && t->s[0] == '@') {
        if (P->origin_len == 0)
            return fail(P, "'@' with no $ORIGIN");
        memcpy(out, P->origin, P->origin_len);
        *out_len = P->origin_len;
        return 0;
    }
    if (t->n == 1 && t->s[0] == '.') {
        out[0] = 0;
        *out_len = 1;
        return 0;
    }
    size_t o, lab = 0;
    bool absolute = false;
    out[0] = 0;
    for (size_t i = 0; i < t->n;) {
        uint8_t c = (uint8_t)t->s[i];
        if (c == '.') {
            if (out[lab] == 0)
                return fail(P, "empty label in name '%.*s'", (int)t->n, t->s);
            if (i + 1 == t->n) {
                absolute = true;
                i++;
                break;
            }
            lab = lab + 1 + out[lab];
            if (lab >= 255)
                return fail(P, "name longer than 255 octets");
            out[lab] = 0;
            i++;
            continue;
        }
        if (c == '\\') {
            if (i + 1 >= t->n)
                return fail(P, "name ends in a backslash");
            if (t->s[i + 1] >= '0' && t->s[i + 1] <= '9') {
                if (i + 3 >= t->n)
                    return fail(P, "bad \\DDD escape in name");
                unsigned v = 0;
                for (int k = 1; k <= 3; k++) {
                    char d = t->s[i + (size_t)k];
                    if (d < '0' || d > '9')
                        return fail(P, "bad \\DDD escape in name");
                    v = v * 10 + (unsigned)(d - '0');
                }
                if (v > 255)
                    return fail(P, "bad \\DDD escape in name");
                c = (uint8_t)v;
                i += 4;
            } else {
                c = (uint8_t)t->s[i + 1];
                i += 2;
            }
        } else {
            i++;
        }
        if (out[lab] == 63)
            return fail(P, "label longer than 63 octets");
        if (lab + 1 + out[lab] + 1 >= 255)
            return fail(P, "name longer than 255 octets");
        out[lab + 1 + out[lab]] = lowercase ? lower(c) : c;
        out[lab]++;
    }
    if (out[lab] == 0)
        return fail(P, "empty label in name '%.*s'", (int)t->n, t->s);
    o = lab + 1 + out[lab];
    if (absolute) {
        out[o++] = 0;
        *out_len = o;
        return 0;
    }
    if (P->origin_len == 0)
        return fail(P, "relative name '%.*s' with no $ORIGIN", (int)t->n, t->s);
    if (o + P->origin_len > 255)
        return fail(P, "name longer than 255 octets");
    for (size_t k = 0; k < P->origin_len; k++)
        out[o + k] = lowercase ? lower(P->origin[k]) : P->origin[k];
    *out_len = o + P->origin_len;
    return 0;
}

static int parse_u32(const struct tok *t, uint32_t *v, uint32_t max)
{
    if (t->quoted || t->n == 0 || t->n > 10)
        return -1;
    uint64_t x = 0;
    for (size_t i = 0; i < t->n; i++) {
        if (t->s[i] < '0' || t->s[i] > '9')
            return -1;
        x = x * 10 + (uint64_t)(t->s[i] - '0');
    }
    if (x > max)
        return -1;
    *v = (uint32_t)x;
    return 0;
}

/* A TTL: seconds, or BIND units (1w2d3h4m5s, any case). */
static int parse_ttl(const struct tok *t, long *ttl)
{
    if (t->quoted || t->n == 0 || t->s[0] < '0' || t->s[0] > '9')
        return -1;
    uint64_t total = 0, cur = 0;
    bool digits = false, unit_seen = false;
    for (size_t i = 0; i < t->n; i++) {
        char c = t->s[i];
        if (c >= '0' && c <= '9') {
            cur = cur * 10 + (uint64_t)(c - '0');
            digits = true;
            if (cur > 0x7fffffffULL)
                return -1;
            continue;
        }
        uint64_t mul;
        switch (lower((uint8_t)c)) {
        case 's': mul = 1; break;
        case 'm': mul = 60; break;
        case 'h': mul = 3600; break;
        case 'd': mul = 86400; break;
        case 'w': mul = 604800; break;
        default: return -1;
        }
        if (!digits)
            return -1;
        total += cur * mul;
        cur = 0;
        digits = false;
        unit_seen = true;
        if (total > 0x7fffffffULL)
            return -1;
    }
    if (digits)
        total += cur;
    else if (!unit_seen)
        return -1;
    if (total > 0x7fffffffULL)
        return -1;
    *ttl = (long)total;
    return 0;
}

/* Record types by name; TYPEnnn too. 0 when unknown. */
static uint16_t type_code(const struct tok *t)
{
    static const struct {
        const char *name;
        uint16_t code;
    } types[] = {
        {"a", T_A},    {"ns", T_NS},   {"cname", T_CNAME}, {"soa", T_SOA},     {"ptr", T_PTR},
        {"mx", T_MX},  {"txt", T_TXT}, {"aaaa", T_AAAA},   {"srv", T_SRV},     {"dname", T_DNAME},
        {"spf", 99},   {"hinfo", 13},  {"caa", 257},       {"naptr", 35},      {"sshfp", 44},
        {"https", 65}, {"svcb", 64},   {"tlsa", 52},       {"ds", 43},         {"dnskey", 48},
        {"rrsig", 46}, {"nsec", 47},   {"nsec3", 50},      {"nsec3param", 51},
    };
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (tok_is(t, types[i].name))
            return types[i].code;
    if (!t->quoted && t->n > 4 && lower((uint8_t)t->s[0]) == 't' &&
        lower((uint8_t)t->s[1]) == 'y' && lower((uint8_t)t->s[2]) == 'p' &&
        lower((uint8_t)t->s[3]) == 'e') {
        struct tok n = {t->s + 4, t->n - 4, false};
        uint32_t v;
        if (parse_u32(&n, &v, 65535) == 0 && v != 0)
            return (uint16_t)v;
    }
    return 0;
}

static bool type_has_text_form(uint16_t type)
{
    switch (type) {
    case T_A:
    case T_NS:
    case T_CNAME:
    case T_SOA:
    case T_PTR:
    case T_MX:
    case T_TXT:
    case 99:
    case T_AAAA:
    case T_SRV:
    case T_DNAME: return true;
    default: return false;
    }
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)lower((uint8_t)c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* One <character-string> (RFC 1035 5.1): quoted or bare, with escapes. */
static int parse_charstr(struct parser *P, const struct tok *t, uint8_t *out, size_t *len)
{
    size_t o = 1;
    for (size_t i = 0; i < t->n;) {
        uint8_t c = (uint8_t)t->s[i];
        if (c == '\\' && i + 1 < t->n) {
            if (t->s[i + 1] >= '0' && t->s[i + 1] <= '9') {
                unsigned v = 0;
                if (i + 3 >= t->n)
                    return fail(P, "bad \\DDD escape in a string");
                for (int k = 1; k <= 3; k++) {
                    char d = t->s[i + (size_t)k];
                    if (d < '0' || d > '9')
                        return fail(P, "bad \\DDD escape in a string");
                    v = v * 10 + (unsigned)(d - '0');
                }
                if (v > 255)
                    return fail(P, "bad \\DDD escape in a string");
                c = (uint8_t)v;
                i += 4;
            } else {
                c = (uint8_t)t->s[i + 1];
                i += 2;
            }
        } else {
            i++;
        }
        if (o == 256)
            return fail(P, "string longer than 255 octets");
        out[o++] = c;
    }
    out[0] = (uint8_t)(o - 1);
    *len = o;
    return 0;
}

/* The rdata of (type, tokens[first..]) into P->rdata. */
static int parse_rdata(struct parser *P, uint16_t type, size_t first, size_t *rdlen)
{
    const struct tok *t = P->toks + first;
    size_t n = P->ntok - first;
    uint8_t *rd = P->rdata;
    size_t nl;

    /* RFC 3597 generic form: \# length hex... */
    if (n >= 2 && t[0].n == 2 && !t[0].quoted && t[0].s[0] == '\\' && t[0].s[1] == '#') {
        uint32_t want;
        if (parse_u32(&t[1], &want, 65535) != 0)
            return fail(P, "bad length in \\# rdata");
        size_t o = 0;
        int half = -1;
        for (size_t k = 2; k < n; k++) {
            for (size_t i = 0; i < t[k].n; i++) {
                int v = hexval(t[k].s[i]);
                if (v < 0 || t[k].quoted)
                    return fail(P, "bad hex in \\# rdata");
                if (half < 0) {
                    half = v;
                } else {
                    if (o == want)
                        return fail(P, "\\# rdata longer than its length");
                    rd[o++] = (uint8_t)(half << 4 | v);
                    half = -1;
                }
            }
        }
        if (half >= 0 || o != want)
            return fail(P, "\\# rdata length %u does not match its data", (unsigned)want);
        *rdlen = o;
        return 0;
    }
    if (!type_has_text_form(type))
        return fail(P, "type %u needs the generic \\# rdata form here", (unsigned)type);

    switch (type) {
    case T_A:
    case T_AAAA: {
        char buf[64];
        if (n != 1 || t[0].n >= sizeof buf || t[0].quoted)
            return fail(P, "%s needs one address", type == T_A ? "A" : "AAAA");
        memcpy(buf, t[0].s, t[0].n);
        buf[t[0].n] = '\0';
        if (inet_pton(type == T_A ? AF_INET : AF_INET6, buf, rd) != 1)
            return fail(P, "bad %s address '%s'", type == T_A ? "A" : "AAAA", buf);
        *rdlen = type == T_A ? 4 : 16;
        return 0;
    }
    case T_NS:
    case T_CNAME:
    case T_PTR:
    case T_DNAME:
        if (n != 1)
            return fail(P, "this type needs one name");
        return parse_name(P, &t[0], rd, rdlen, false);
    case T_MX: {
        uint32_t pref;
        if (n != 2 || parse_u32(&t[0], &pref, 65535) != 0)
            return fail(P, "MX needs a preference and a name");
        rd[0] = (uint8_t)(pref >> 8);
        rd[1] = (uint8_t)pref;
        int rc = parse_name(P, &t[1], rd + 2, &nl, false);
        *rdlen = 2 + nl;
        return rc;
    }
    case T_SRV: {
        uint32_t v[3];
        if (n != 4)
            return fail(P, "SRV needs priority, weight, port and a name");
        for (int k = 0; k < 3; k++) {
            if (parse_u32(&t[k], &v[k], 65535) != 0)
                return fail(P, "bad SRV number");
            rd[2 * k] = (uint8_t)(v[k] >> 8);
            rd[2 * k + 1] = (uint8_t)v[k];
        }
        int rc = parse_name(P, &t[3], rd + 6, &nl, false);
        *rdlen = 6 + nl;
        return rc;
    }
    case T_TXT:
    case 99: {
        size_t o = 0;
        if (n == 0)
            return fail(P, "TXT needs at least one string");
        for (size_t k = 0; k < n; k++) {
            size_t l = 0;
            if (o + 256 > sizeof P->rdata)
                return fail(P, "TXT rdata too long");
            int rc = parse_charstr(P, &t[k], rd + o, &l);
            if (rc < 0)
                return rc;
            o += l;
        }
        *rdlen = o;
        return 0;
    }
    case T_SOA: {
        size_t o = 0;
        if (n != 7)
            return fail(P, "SOA needs 7 fields");
        for (int k = 0; k < 2; k++) {
            int rc = parse_name(P, &t[k], rd + o, &nl, false);
            if (rc < 0)
                return rc;
            o += nl;
        }
        for (int k = 2; k < 7; k++) {
            long v;
            uint32_t u;
            if (k == 2 ? parse_u32(&t[k], &u, UINT32_MAX) != 0 : parse_ttl(&t[k], &v) != 0)
                return fail(P, "bad SOA number '%.*s'", (int)t[k].n, t[k].s);
            if (k != 2)
                u = (uint32_t)v;
            rd[o++] = (uint8_t)(u >> 24);
            rd[o++] = (uint8_t)(u >> 16);
            rd[o++] = (uint8_t)(u >> 8);
            rd[o++] = (uint8_t)u;
        }
        *rdlen = o;
        return 0;
    }
    default: return fail(P, "unsupported type");
    }
}

/* ---------------------------------------------------------------- arenas */

static int grow(void **buf, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t ncap = *cap ? *cap : 64;
    while (ncap < need) {
        if (ncap > SIZE_MAX / 2 / elem)
            return DOTPROXY_ENOMEM;
        ncap *= 2;
    }
    void *nb = realloc(*buf, ncap * elem);
    if (nb == NULL)
        return DOTPROXY_ENOMEM;
    *buf = nb;
    *cap = ncap;
    return 0;
}

/* Append one local-data record; *off gets its offset. */
static int local_add(struct dp_rpz *z, uint16_t type, uint32_t ttl, const uint8_t *rd, size_t rdlen,
                     uint32_t *off)
{
    size_t need = z->local_len + LD_HDR + rdlen;
    if (need > UINT32_MAX)
        return DOTPROXY_ENOMEM;
    void *b = z->local;
    int rc = grow(&b, &z->local_cap, need, 1);
    z->local = b;
    if (rc < 0)
        return rc;
    uint8_t *p = z->local + z->local_len;
    uint32_t zero = 0;
    memcpy(p, &zero, 4);
    memcpy(p + 4, &type, 2);
    memcpy(p + 6, &ttl, 4);
    uint16_t l16 = (uint16_t)rdlen;
    memcpy(p + 10, &l16, 2);
    memcpy(p + LD_HDR, rd, rdlen);
    *off = (uint32_t)z->local_len;
    z->local_len = need;
    return 0;
}

static uint32_t ld_next(const struct dp_rpz *z, uint32_t off)
{
    uint32_t v;
    memcpy(&v, z->local + off, 4);
    return v;
}

static uint16_t ld_type(const struct dp_rpz *z, uint32_t off)
{
    uint16_t v;
    memcpy(&v, z->local + off + 4, 2);
    return v;
}

/* Chain the list starting at add after the list starting at head. */
static void local_chain(struct dp_rpz *z, uint32_t head, uint32_t add)
{
    uint32_t o = head, nx;
    while ((nx = ld_next(z, o)) != 0)
        o = nx;
    memcpy(z->local + o, &add, 4);
}

/* A local-data list may not mix a CNAME with other data (RFC 1034 3.6.2),
 * nor hold two CNAMEs. */
static bool local_conflicts(const struct dp_rpz *z, uint32_t head, uint16_t type)
{
    for (uint32_t o = head; o != 0; o = ld_next(z, o)) {
        uint16_t t = ld_type(z, o);
        if (t == T_CNAME || type == T_CNAME)
            return true;
    }
    return false;
}

static uint32_t rec_local(const uint8_t *rec)
{
    uint32_t v = 0;
    if (rec[0] & F_LOCAL)
        memcpy(&v, rec + 2, 4);
    return v;
}

static const uint8_t *rec_name(const uint8_t *rec)
{
    return rec + 2 + ((rec[0] & F_LOCAL) ? 4 : 0);
}

static const uint8_t *table_find(const struct dp_rpz *z, const uint8_t *name, size_t len, bool wild,
                                 uint32_t h)
{
    if (z->tab_size == 0)
        return NULL;
    size_t i = slot_index(h, z->tab_size);
    for (;;) {
        const struct slot *s = &z->tab[i];
        if (s->off == 0)
            return NULL;
        if (s->h == h) {
            const uint8_t *rec = z->names + s->off;
            if (((rec[0] & F_WILD) != 0) == wild && rec[1] == len &&
                memcmp(rec_name(rec), name, len) == 0)
                return rec;
        }
        if (++i == z->tab_size)
            i = 0;
    }
}

static void table_put(struct slot *tab, size_t size, uint32_t off, uint32_t h)
{
    size_t i = slot_index(h, size);
    while (tab[i].off != 0)
        if (++i == size)
            i = 0;
    tab[i].off = off;
    tab[i].h = h;
}

/* Rebuild the table at nsize slots. */
static int table_resize(struct dp_rpz *z, size_t nsize)
{
    struct slot *nt = calloc(nsize, sizeof *nt);
    if (nt == NULL)
        return DOTPROXY_ENOMEM;
    for (size_t i = 0; i < z->tab_size; i++)
        if (z->tab[i].off != 0)
            table_put(nt, nsize, z->tab[i].off, z->tab[i].h);
    free(z->tab);
    z->tab = nt;
    z->tab_size = nsize;
    return 0;
}

static const char *action_name(unsigned a)
{
    static const char *const names[] = {"NXDOMAIN", "NODATA",   "PASSTHRU",
                                        "DROP",     "TCP-ONLY", "local data"};
    return a < 6 ? names[a] : "?";
}

/* Add a QNAME rule, or merge a record into the rule of the same owner. */
static int add_qname(struct parser *P, const uint8_t *name, size_t len, bool wild, unsigned action,
                     uint16_t type, uint32_t ttl, const uint8_t *rd, size_t rdlen)
{
    struct dp_rpz *z = P->z;
    uint32_t h = name_hash(name, len, wild);
    const uint8_t *old = table_find(z, name, len, wild, h);
    if (old != NULL) {
        unsigned oa = old[0] & F_ACTION;
        if (oa == DP_RPZ_LOCAL && action == DP_RPZ_LOCAL) {
            uint32_t head = rec_local(old);
            if (local_conflicts(z, head, type))
                return fail(P, "CNAME and other data at the same trigger");
            uint32_t off;
            int rc = local_add(z, type, ttl, rd, rdlen, &off);
            if (rc < 0)
                return rc;
            local_chain(z, head, off);
            return 0;
        }
        if (oa == action && action != DP_RPZ_LOCAL)
            return 0; /* the same policy twice */
        return fail(P, "conflicting rules for one trigger (%s and %s)", action_name(oa),
                    action_name(action));
    }
    uint32_t loff = 0;
    if (action == DP_RPZ_LOCAL) {
        int rc = local_add(z, type, ttl, rd, rdlen, &loff);
        if (rc < 0)
            return rc;
    }
    size_t rlen = 2 + (action == DP_RPZ_LOCAL ? 4 : 0) + len;
    if (z->names_len + rlen > UINT32_MAX)
        return DOTPROXY_ENOMEM;
    void *b = z->names;
    int rc = grow(&b, &z->names_cap, z->names_len + rlen, 1);
    z->names = b;
    if (rc < 0)
        return rc;
    if ((z->tab_used + 1) * 10 > z->tab_size * 7) {
        rc = table_resize(z, z->tab_size ? z->tab_size * 2 : 1024);
        if (rc < 0)
            return rc;
    }
    uint8_t *rec = z->names + z->names_len;
    rec[0] = (uint8_t)(action | (wild ? F_WILD : 0) | (action == DP_RPZ_LOCAL ? F_LOCAL : 0));
    rec[1] = (uint8_t)len;
    if (action == DP_RPZ_LOCAL)
        memcpy(rec + 2, &loff, 4);
    memcpy(rec + 2 + (action == DP_RPZ_LOCAL ? 4 : 0), name, len);
    table_put(z->tab, z->tab_size, (uint32_t)z->names_len, h);
    z->tab_used++;
    z->names_len += rlen;
    if (wild) {
        uint8_t labels = 0;
        for (size_t i = 0; name[i] != 0; i += 1 + name[i])
            labels++;
        if (z->nwild == 0 || labels < z->wild_min_labels)
            z->wild_min_labels = labels;
        z->nwild++;
    }
    return 0;
}

/* Decode the labels of an address trigger: PREFIXLEN.reversed-address. */
static int parse_ip_trigger(struct parser *P, const uint8_t *rel, size_t nlabels, struct iprule *r)
{
    const uint8_t *lab[130];
    size_t k = 0;
    for (size_t i = 0; rel[i] != 0 && k < nlabels; i += 1 + rel[i])
        lab[k++] = rel + i;
    /* lab[0] = prefix length, lab[1..k-1] = address labels, reversed */
    char buf[8];
    if (k < 2 || lab[0][0] > 3)
        return fail(P, "bad address trigger");
    memcpy(buf, lab[0] + 1, lab[0][0]);
    buf[lab[0][0]] = '\0';
    struct tok pt = {buf, lab[0][0], false};
    uint32_t plen;
    if (parse_u32(&pt, &plen, 128) != 0)
        return fail(P, "bad prefix length in address trigger");
    memset(r, 0, sizeof *r);
    size_t na = k - 1;
    bool v4 = na == 4;
    for (size_t i = 1; v4 && i < k; i++) {
        struct tok t = {(const char *)lab[i] + 1, lab[i][0], false};
        uint32_t v;
        if (parse_u32(&t, &v, 255) != 0 || t.n > 3)
            v4 = false;
        else
            r->addr[4 - i] = (uint8_t)v;
    }
    if (v4) {
        if (plen < 1 || plen > 32)
            return fail(P, "IPv4 prefix length %u not in 1..32", (unsigned)plen);
    } else {
        /* groups in address order: the labels from the last to the first */
        uint16_t g[8];
        size_t ng = 0, zz = SIZE_MAX;
        if (na > 8)
            return fail(P, "bad IPv6 address trigger");
        for (size_t i = k - 1; i >= 1; i--) {
            const uint8_t *l = lab[i];
            if (l[0] == 2 && l[1] == 'z' && l[2] == 'z') {
                if (zz != SIZE_MAX)
                    return fail(P, "two 'zz' in an IPv6 address trigger");
                zz = ng;
                continue;
            }
            if (l[0] < 1 || l[0] > 4)
                return fail(P, "bad IPv6 group in address trigger");
            unsigned v = 0;
            for (size_t j = 1; j <= l[0]; j++) {
                int d = hexval((char)l[j]);
                if (d < 0)
                    return fail(P, "bad IPv6 group in address trigger");
                v = v << 4 | (unsigned)d;
            }
            g[ng++] = (uint16_t)v;
        }
        uint16_t full[8] = {0};
        if (zz == SIZE_MAX) {
            if (ng != 8)
                return fail(P, "IPv6 address trigger needs 8 groups or 'zz'");
            memcpy(full, g, sizeof full);
        } else {
            if (ng > 7)
                return fail(P, "'zz' stands for no group here");
            for (size_t i = 0; i < zz; i++)
                full[i] = g[i];
            for (size_t i = zz; i < ng; i++)
                full[8 - (ng - i)] = g[i];
        }
        for (int i = 0; i < 8; i++) {
            r->addr[2 * i] = (uint8_t)(full[i] >> 8);
            r->addr[2 * i + 1] = (uint8_t)full[i];
        }
        if (plen < 1)
            return fail(P, "IPv6 prefix length %u not in 1..128", (unsigned)plen);
        r->kind |= 1;
    }
    /* Bits beyond the prefix make the trigger ambiguous (BIND rejects them
     * too): say so instead of silently masking. */
    size_t bytes = v4 ? 4 : 16;
    for (size_t b = 0; b < bytes; b++) {
        size_t lo = b * 8;
        uint8_t mask =
            lo >= plen ? 0 : (plen >= lo + 8 ? 0xff : (uint8_t)(0xff << (8 - (plen - lo))));
        if (r->addr[b] & (uint8_t)~mask)
            return fail(P, "address trigger has bits set beyond its prefix length /%u",
                        (unsigned)plen);
    }
    r->plen = (uint8_t)plen;
    return 0;
}

static int add_ip(struct parser *P, struct iprule *r, unsigned action, uint16_t type, uint32_t ttl,
                  const uint8_t *rd, size_t rdlen)
{
    struct dp_rpz *z = P->z;
    r->action = (uint8_t)action;
    r->line = P->rec_line > UINT32_MAX ? UINT32_MAX : (uint32_t)P->rec_line;
    /* Records of one owner usually follow each other: merge at once. */
    if (z->nips > 0) {
        struct iprule *last = &z->ips[z->nips - 1];
        if (last->kind == r->kind && last->plen == r->plen &&
            memcmp(last->addr, r->addr, 16) == 0) {
            if (last->action == DP_RPZ_LOCAL && action == DP_RPZ_LOCAL) {
                if (local_conflicts(z, last->local, type))
                    return fail(P, "CNAME and other data at the same trigger");
                uint32_t off;
                int rc = local_add(z, type, ttl, rd, rdlen, &off);
                if (rc < 0)
                    return rc;
                local_chain(z, last->local, off);
                return 0;
            }
            if (last->action == action)
                return 0;
            return fail(P, "conflicting rules for one trigger (%s and %s)",
                        action_name(last->action), action_name(action));
        }
    }
    if (action == DP_RPZ_LOCAL) {
        int rc = local_add(z, type, ttl, rd, rdlen, &r->local);
        if (rc < 0)
            return rc;
    }
    void *b = z->ips;
    int rc = grow(&b, &z->ips_cap, z->nips + 1, sizeof *z->ips);
    z->ips = b;
    if (rc < 0)
        return rc;
    z->ips[z->nips++] = *r;
    return 0;
}

static const uint8_t L_CLIENT[] = "\x0drpz-client-ip";
static const uint8_t L_IP[] = "\x06rpz-ip";
static const uint8_t L_NSDNAME[] = "\x0brpz-nsdname";
static const uint8_t L_NSIP[] = "\x08rpz-nsip";

static bool label_is(const uint8_t *l, const uint8_t *want)
{
    return l[0] == want[0] && memcmp(l + 1, want + 1, l[0]) == 0;
}

static bool name_eq_ci(const uint8_t *a, const uint8_t *b, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (lower(a[i]) != lower(b[i]))
            return false;
    return true;
}

/* The policy a CNAME's target encodes (names compared in any case), or
 * DP_RPZ_LOCAL for an ordinary CNAME. rel/rel_len: the owner relative to
 * the apex, as an absolute name (for the old "CNAME to itself" PASSTHRU). */
static unsigned cname_action(const uint8_t *target, size_t tlen, const uint8_t *rel, size_t rel_len)
{
    if (tlen == 1)
        return DP_RPZ_NXDOMAIN;
    if (tlen == 3 && target[0] == 1 && target[1] == '*')
        return DP_RPZ_NODATA;
    if (tlen == 14 && name_eq_ci(target, (const uint8_t *)"\x0crpz-passthru", 14))
        return DP_RPZ_PASSTHRU;
    if (tlen == 10 && name_eq_ci(target, (const uint8_t *)"\x08rpz-drop", 10))
        return DP_RPZ_DROP;
    if (tlen == 14 && name_eq_ci(target, (const uint8_t *)"\x0crpz-tcp-only", 14))
        return DP_RPZ_TCP_ONLY;
    if (rel_len > 1 && tlen == rel_len && name_eq_ci(target, rel, tlen))
        return DP_RPZ_PASSTHRU;
    return DP_RPZ_LOCAL;
}

/* $ORIGIN / $TTL. */
static int directive(struct parser *P)
{
    const struct tok *t = P->toks;
    if (tok_is(t, "$origin")) {
        if (P->ntok != 2)
            return fail(P, "$ORIGIN needs one name");
        uint8_t n[256];
        size_t nl;
        int rc = parse_name(P, &t[1], n, &nl, true);
        if (rc < 0)
            return rc;
        memcpy(P->origin, n, nl);
        P->origin_len = nl;
        return 0;
    }
    if (tok_is(t, "$ttl")) {
        long ttl;
        if (P->ntok != 2 || parse_ttl(&t[1], &ttl) != 0)
            return fail(P, "$TTL needs one TTL");
        P->default_ttl = ttl;
        return 0;
    }
    if (tok_is(t, "$include"))
        return fail(P, "$INCLUDE is not supported (one zone, one file)");
    return fail(P, "unknown directive '%.*s'", (int)t->n, t->s);
}

static void ip_text(const struct iprule *r, char *out, size_t cap);

static int record(struct parser *P)
{
    struct dp_rpz *z = P->z;
    size_t i = 0;
    if (!P->leading_ws) {
        int rc = parse_name(P, &P->toks[0], P->owner, &P->owner_len, true);
        if (rc < 0) {
            P->owner_len = 0;
            return rc;
        }
        i = 1;
    } else if (P->owner_len == 0) {
        return fail(P, "record with no owner (a line starts blank before any owner)");
    }
    long ttl = -1;
    bool class_seen = false;
    uint16_t type = 0;
    for (; i < P->ntok; i++) {
        const struct tok *t = &P->toks[i];
        if (!t->quoted && t->n > 0 && t->s[0] >= '0' && t->s[0] <= '9' && ttl < 0) {
            if (parse_ttl(t, &ttl) != 0)
                return fail(P, "bad TTL '%.*s'", (int)t->n, t->s);
            continue;
        }
        if (!class_seen && tok_is(t, "in")) {
            class_seen = true;
            continue;
        }
        if (!class_seen && (tok_is(t, "ch") || tok_is(t, "hs") || tok_is(t, "cs")))
            return fail(P, "class '%.*s' is not IN", (int)t->n, t->s);
        type = type_code(t);
        if (type == 0)
            return fail(P, "unknown type '%.*s'", (int)t->n, t->s);
        i++;
        break;
    }
    if (type == 0)
        return fail(P, "record with no type");

    size_t rdlen = 0;
    int rc = parse_rdata(P, type, i, &rdlen);
    if (rc < 0)
        return rc;
    /* Two names and five numbers; the generic form could give less, and
     * the SOA minimum is read below. */
    if (type == T_SOA && rdlen < 22)
        return fail(P, "SOA rdata too short");

    /* The apex: the SOA owner when the zone starts with one (as a zone
     * must), else the origin of the first record. */
    if (P->apex_len == 0) {
        if (type == T_SOA) {
            memcpy(P->apex, P->owner, P->owner_len);
            P->apex_len = P->owner_len;
        } else {
            memcpy(P->apex, P->origin, P->origin_len);
            P->apex_len = P->origin_len;
        }
        name_to_text(P->apex, true, z->origin, sizeof z->origin);
        if (z->origin[0] == '\0')
            snprintf(z->origin, sizeof z->origin, ".");
    }
    if (ttl < 0) {
        if (P->default_ttl >= 0)
            ttl = P->default_ttl;
        else if (P->last_ttl >= 0)
            ttl = P->last_ttl;
        else if (type == T_SOA)
            ttl = (long)((uint32_t)P->rdata[rdlen - 4] << 24 | (uint32_t)P->rdata[rdlen - 3] << 16 |
                         (uint32_t)P->rdata[rdlen - 2] << 8 | P->rdata[rdlen - 1]);
        else
            ttl = 0;
    }
    P->last_ttl = ttl;

    /* The owner relative to the apex. */
    if (P->owner_len < P->apex_len ||
        memcmp(P->owner + P->owner_len - P->apex_len, P->apex, P->apex_len) != 0)
        return fail(P, "owner is outside the zone %s", z->origin);
    size_t cut = P->owner_len - P->apex_len; /* octets of relative labels */
    if (cut > 0) {
        /* the cut must fall on a label boundary */
        size_t j = 0;
        while (j < cut)
            j += 1 + P->owner[j];
        if (j != cut)
            return fail(P, "owner is outside the zone %s", z->origin);
    }
    if (cut == 0) {
        /* Apex records (SOA, NS, anything else there) describe the zone;
         * they are not rules. */
        return 0;
    }
    if (type == T_SOA)
        return fail(P, "SOA below the zone apex");

    /* rel: the relative labels as an absolute name, for matching. */
    uint8_t rel[256];
    memcpy(rel, P->owner, cut);
    rel[cut] = 0;
    size_t rel_len = cut + 1;
    size_t nlabels = 0;
    const uint8_t *lastlab = NULL;
    for (size_t j = 0; rel[j] != 0; j += 1 + rel[j]) {
        nlabels++;
        lastlab = rel + j;
    }

    unsigned action = DP_RPZ_LOCAL;
    if (type == T_CNAME)
        action = cname_action(P->rdata, rdlen, rel, rel_len);

    if (label_is(lastlab, L_NSDNAME)) {
        P->nsdname++;
        return 0;
    }
    if (label_is(lastlab, L_NSIP)) {
        P->nsip++;
        return 0;
    }
    if (label_is(lastlab, L_CLIENT) || label_is(lastlab, L_IP)) {
        struct iprule r;
        rc = parse_ip_trigger(P, rel, nlabels - 1, &r);
        if (rc < 0)
            return rc;
        if (label_is(lastlab, L_IP))
            r.kind |= 2;
        /* Two spellings of one address trigger are one rule: a layer,
         * which replaces the rules of the owners it names, cannot merge
         * them, so a zone that has any is never layered. */
        char canon[256], given[1025];
        ip_text(&r, canon, sizeof canon);
        name_to_text(rel, false, given, sizeof given);
        if (strcmp(canon, given) != 0)
            z->ip_alias = true;
        return add_ip(P, &r, action, type, (uint32_t)ttl, P->rdata, rdlen);
    }
    bool wild = rel[0] == 1 && rel[1] == '*';
    const uint8_t *base = wild ? rel + 2 : rel;
    size_t blen = wild ? rel_len - 2 : rel_len;
    return add_qname(P, base, blen, wild, action, type, (uint32_t)ttl, P->rdata, rdlen);
}

/* ------------------------------------------------------- finishing a load */

static int ip_cmp(const void *a, const void *b)
{
    const struct iprule *x = a, *y = b;
    if (x->kind != y->kind)
        return x->kind < y->kind ? -1 : 1;
    if (x->plen != y->plen)
        return x->plen < y->plen ? -1 : 1;
    int c = memcmp(x->addr, y->addr, 16);
    if (c != 0)
        return c;
    return x->line < y->line ? -1 : (x->line > y->line ? 1 : 0);
}

/* Sort the address rules, merge the records of one trigger spread over the
 * file, and index the ranges. */
static int finish_ips(struct parser *P)
{
    struct dp_rpz *z = P->z;
    if (z->nips > 1)
        qsort(z->ips, z->nips, sizeof *z->ips, ip_cmp);
    size_t w = 0;
    for (size_t r = 0; r < z->nips; r++) {
        struct iprule *cur = &z->ips[r];
        if (w > 0) {
            struct iprule *prev = &z->ips[w - 1];
            if (prev->kind == cur->kind && prev->plen == cur->plen &&
                memcmp(prev->addr, cur->addr, 16) == 0) {
                if (cur->action == A_TOMB)
                    continue; /* a layer's trigger that has records after all */
                if (prev->action == DP_RPZ_LOCAL && cur->action == DP_RPZ_LOCAL) {
                    bool bad = false;
                    for (uint32_t o = cur->local; o != 0 && !bad; o = ld_next(z, o))
                        bad = local_conflicts(z, prev->local, ld_type(z, o));
                    if (!bad) {
                        local_chain(z, prev->local, cur->local);
                        continue;
                    }
                } else if (prev->action == cur->action) {
                    continue;
                }
                char txt[256];
                ip_text(cur, txt, sizeof txt);
                P->rec_line = cur->line;
                int rc = fail(P, "conflicting rules for %s (the first at line %lu)", txt,
                              (unsigned long)prev->line);
                if (P->strict)
                    return rc;
                P->diag->skipped++;
                continue;
            }
        }
        z->ips[w++] = *cur;
    }
    z->nips = w;
    if (w > 0 && w < z->ips_cap) {
        struct iprule *s = realloc(z->ips, w * sizeof *s);
        if (s != NULL) {
            z->ips = s;
            z->ips_cap = w;
        }
    }
    memset(z->nlens, 0, sizeof z->nlens);
    for (size_t r = 0; r < w;) {
        size_t e = r;
        while (e < w && z->ips[e].kind == z->ips[r].kind && z->ips[e].plen == z->ips[r].plen)
            e++;
        unsigned k = z->ips[r].kind, pl = z->ips[r].plen;
        z->range[k][pl].start = (uint32_t)r;
        z->range[k][pl].end = (uint32_t)e;
        r = e;
    }
    for (unsigned k = 0; k < 4; k++)
        for (int pl = 128; pl >= 0; pl--)
            if (z->range[k][pl].end > z->range[k][pl].start)
                z->lens[k][z->nlens[k]++] = (uint8_t)pl;
    return 0;
}

/* Trim the arenas and size the table exactly: the zone is read-only from
 * here on, so spare capacity would only be waste. */
static int finish(struct parser *P)
{
    struct dp_rpz *z = P->z;
    int rc = finish_ips(P);
    if (rc < 0)
        return rc;
    if (z->names_len < z->names_cap) {
        uint8_t *s = realloc(z->names, z->names_len);
        if (s != NULL) {
            z->names = s;
            z->names_cap = z->names_len;
        }
    }
    if (z->local_len < z->local_cap) {
        uint8_t *s = realloc(z->local, z->local_len);
        if (s != NULL) {
            z->local = s;
            z->local_cap = z->local_len;
        }
    }
    size_t want = z->tab_used * 10 / 7 + 1;
    if (z->tab_size > want + want / 8) {
        rc = table_resize(z, want);
        if (rc < 0)
            return rc;
    }
    if (z->origin[0] == '\0') {
        /* an empty zone: name it by its origin when it has one */
        if (P->origin_len > 0)
            name_to_text(P->origin, true, z->origin, sizeof z->origin);
        if (z->origin[0] == '\0')
            snprintf(z->origin, sizeof z->origin, ".");
    }
    return 0;
}

void dp_rpz_free(struct dp_rpz *z)
{
    if (z == NULL || atomic_fetch_sub(&z->refs, 1) != 1)
        return;
    struct dp_rpz *base = z->base;
    free(z->names);
    free(z->tab);
    free(z->local);
    free(z->ips);
    free(z);
    dp_rpz_free(base);
}

static int layer_owner(struct parser *P, const char *owner, size_t len);
static size_t layer_count(const struct dp_rpz *z, const struct dp_rpz *base);

/* A whole zone (base NULL), or a layer over base: text holds every record
 * of the owners listed in owners (one absolute name a line), whose rules
 * replace base's. */
static int load(struct dp_rpz **out, const char *name_for_errors, const char *text, size_t len,
                const char *origin, int strict, struct dp_rpz_diag *diag, struct dp_rpz *base,
                const char *owners, size_t owners_len)
{
    struct dp_rpz_diag scratch;
    if (diag == NULL)
        diag = &scratch;
    memset(diag, 0, sizeof *diag);
    if (out == NULL || (text == NULL && len > 0))
        return DOTPROXY_EINVAL;
    if (name_for_errors == NULL)
        name_for_errors = "rpz";

    struct dp_rpz *z = calloc(1, sizeof *z);
    struct parser *P = malloc(sizeof *P);
    if (z == NULL || P == NULL) {
        free(z);
        free(P);
        return DOTPROXY_ENOMEM;
    }
    atomic_init(&z->refs, 1);
    memset(P, 0, offsetof(struct parser, rdata));
    P->z = z;
    P->file = name_for_errors;
    P->p = text;
    P->end = text + len;
    P->line = 1;
    P->strict = strict;
    P->diag = diag;
    P->default_ttl = -1;
    P->last_ttl = -1;
    /* Offset 0 of each arena is a pad, so 0 can mean "none". */
    z->names = malloc(64);
    z->local = malloc(64);
    int rc = z->names && z->local ? 0 : DOTPROXY_ENOMEM;
    if (rc == 0) {
        z->names_cap = 64;
        z->local_cap = 64;
        z->names[0] = 0;
        z->local[0] = 0;
        z->names_len = 1;
        z->local_len = 1;
    }
    /* With no origin given and no $ORIGIN, names are relative to the root:
     * a feed written "evil.example CNAME ." under "@ SOA ..." then has the
     * root as apex and its triggers read exactly as BIND reads them under
     * whatever zone name it was configured with. */
    P->origin[0] = 0;
    P->origin_len = 1;
    if (rc == 0 && origin != NULL && origin[0] != '\0') {
        size_t ol = strlen(origin);
        char *abs = malloc(ol + 2);
        if (abs == NULL) {
            rc = DOTPROXY_ENOMEM;
        } else {
            memcpy(abs, origin, ol + 1);
            if (origin[ol - 1] != '.')
                memcpy(abs + ol, ".", 2);
            struct tok t = {abs, strlen(abs), false};
            P->rec_line = 0;
            rc = parse_name(P, &t, P->origin, &P->origin_len, true);
            free(abs);
        }
    }

    if (rc == 0 && base != NULL) {
        /* A layer's owners lie in the base's zone: its apex is fixed. */
        struct tok t = {base->origin, strlen(base->origin), false};
        rc = parse_name(P, &t, P->apex, &P->apex_len, true);
        memcpy(z->origin, base->origin, sizeof z->origin);
    }

    /* Size the table once for the number of lines (a record per line is
     * the common feed): no rehash while loading, one trim at the end when
     * comments or multi-record owners made it too big. */
    if (rc == 0) {
        size_t lines = 1;
        for (const char *c = text; c != NULL && c < text + len; lines++) {
            c = memchr(c, '\n', (size_t)(text + len - c));
            if (c != NULL)
                c++;
        }
        size_t want = lines * 10 / 7 + 1;
        rc = table_resize(z, want < 1024 ? 1024 : want);
    }

    while (rc == 0) {
        P->record_err = diag->error[0] != '\0';
        bool had_error = P->record_err;
        int r = next_record(P);
        if (r == 0)
            break;
        if (r > 0) {
            const struct tok *t0 = &P->toks[0];
            if (!P->leading_ws && !t0->quoted && t0->n > 0 && t0->s[0] == '$')
                r = directive(P);
            else
                r = record(P);
        }
        if (r == DOTPROXY_ENOMEM) {
            rc = r;
            break;
        }
        if (r < 0) {
            /* the first error stays in diag; fail() wrote it if it was */
            (void)had_error;
            if (strict) {
                rc = r;
                break;
            }
            diag->skipped++;
        }
    }
    /* Every owner named whose records gave no rule: a tombstone, so that
     * the base's rule for it no longer applies. */
    for (const char *o = owners, *oe = owners + owners_len; rc == 0 && base != NULL && o < oe;) {
        const char *nl = memchr(o, '\n', (size_t)(oe - o));
        const char *e = nl != NULL ? nl : oe;
        P->record_err = true; /* an owner that does not parse had no rule */
        if (e > o)
            rc = layer_owner(P, o, (size_t)(e - o));
        o = e + 1;
    }
    if (rc == 0)
        rc = finish(P);
    diag->has_nsdname = P->nsdname > 0;
    diag->has_nsip = P->nsip > 0;
    free(P);
    if (rc == 0 && base != NULL && (z->ip_alias || base->ip_alias))
        rc = DOTPROXY_ESTATE;
    if (rc < 0) {
        dp_rpz_free(z);
        return rc;
    }
    if (base != NULL) {
        z->layer_rules = layer_count(z, base);
        atomic_fetch_add(&base->refs, 1);
        z->base = base;
    }
    *out = z;
    return 0;
}

int dp_rpz_load_mem_origin(struct dp_rpz **out, const char *name_for_errors, const char *text,
                           size_t len, const char *origin, int strict, struct dp_rpz_diag *diag)
{
    return load(out, name_for_errors, text, len, origin, strict, diag, NULL, NULL, 0);
}

int dp_rpz_layer_new(struct dp_rpz **out, struct dp_rpz *zone, const char *text, size_t len,
                     const char *owners, size_t owners_len, struct dp_rpz_diag *diag)
{
    if (out == NULL || zone == NULL || (owners == NULL && owners_len > 0))
        return DOTPROXY_EINVAL;
    struct dp_rpz *base = zone->base != NULL ? zone->base : zone;
    return load(out, "rpz layer", text, len, NULL, 0, diag, base, owners, owners_len);
}

int dp_rpz_load_mem(struct dp_rpz **out, const char *name_for_errors, const char *text, size_t len,
                    int strict, struct dp_rpz_diag *diag)
{
    return dp_rpz_load_mem_origin(out, name_for_errors, text, len, NULL, strict, diag);
}

int dp_rpz_load(struct dp_rpz **out, const char *path, int strict, struct dp_rpz_diag *diag)
{
    struct dp_rpz_diag scratch;
    if (diag == NULL)
        diag = &scratch;
    memset(diag, 0, sizeof *diag);
    if (out == NULL || path == NULL)
        return DOTPROXY_EINVAL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        snprintf(diag->error, sizeof diag->error, "%s: %s", path, strerror(e));
        errno = e;
        return DOTPROXY_ESYS;
    }
    struct stat st;
    int e = 0;
    if (fstat(fd, &st) != 0)
        e = errno;
    else if (!S_ISREG(st.st_mode))
        e = EINVAL;
    if (e != 0) {
        snprintf(diag->error, sizeof diag->error, "%s: %s", path,
                 e == EINVAL ? "not a regular file" : strerror(e));
        close(fd);
        errno = e;
        return DOTPROXY_ESYS;
    }
    size_t size = (size_t)st.st_size;
    char *buf = malloc(size ? size : 1);
    if (buf == NULL) {
        close(fd);
        return DOTPROXY_ENOMEM;
    }
    size_t got = 0;
    while (got < size) {
        ssize_t n = read(fd, buf + got, size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            e = errno;
            snprintf(diag->error, sizeof diag->error, "%s: %s", path, strerror(e));
            free(buf);
            close(fd);
            errno = e;
            return DOTPROXY_ESYS;
        }
        if (n == 0)
            break; /* shrank under us: parse what was there */
        got += (size_t)n;
    }
    close(fd);
    int rc = dp_rpz_load_mem(out, path, buf, got, strict, diag);
    free(buf);
    return rc;
}

const char *dp_rpz_origin(const struct dp_rpz *z)
{
    return z ? z->origin : "";
}

size_t dp_rpz_rule_count(const struct dp_rpz *z)
{
    if (z == NULL)
        return 0;
    return z->base != NULL ? z->layer_rules : z->tab_used + z->nips;
}

size_t dp_rpz_memory(const struct dp_rpz *z)
{
    if (z == NULL)
        return 0;
    return sizeof *z + z->names_cap + z->tab_size * sizeof *z->tab + z->local_cap +
           z->ips_cap * sizeof *z->ips + dp_rpz_memory(z->base);
}

size_t dp_rpz_layer_size(const struct dp_rpz *z)
{
    return z != NULL && z->base != NULL ? z->tab_used + z->nips : 0;
}

/* ---------------------------------------------------------------- lookups */

static void fill_name_hit(const struct dp_rpz *layer, const uint8_t *rec, struct dp_rpz_hit *hit)
{
    hit->action = (enum dp_rpz_action)(rec[0] & F_ACTION);
    hit->trigger = DP_RPZ_QNAME;
    hit->rule = rec;
    hit->layer = layer;
    const uint8_t *n = rec_name(rec);
    if (rec[0] & F_WILD) {
        if (n[0] == 0) {
            memcpy(hit->rule_text, "*", 2);
        } else {
            hit->rule_text[0] = '*';
            hit->rule_text[1] = '.';
            name_to_text(n, false, hit->rule_text + 2, sizeof hit->rule_text - 2);
        }
    } else {
        name_to_text(n, false, hit->rule_text, sizeof hit->rule_text);
    }
}

/* Validate qname, fold it to lower case into n and note where its labels
 * start (starts[nl] is the root). Returns the wire length, 0 when invalid. */
static size_t prepare_qname(const uint8_t *qname_wire, uint8_t *n, size_t *starts, size_t *nlabels)
{
    size_t nl = 0, len = 0;
    for (;;) {
        uint8_t l = qname_wire[len];
        if (l == 0)
            break;
        if (l > 63 || len + 1 + l >= 255)
            return 0;
        starts[nl++] = len;
        len += 1 + (size_t)l;
    }
    starts[nl] = len;
    len++;
    /* length octets are at most 63, below 'A': folding leaves them alone */
    fold_case(n, qname_wire, len);
    *nlabels = nl;
    return len;
}

/* The k-th candidate rule for a prepared qname: k = 0 the exact owner,
 * k >= 1 the wildcard whose base is the qname minus its first k labels
 * (*.x matches names strictly below x), so the longest wildcard comes
 * first. NULL when there is none; *stop set when no later k can match. */
static const uint8_t *candidate1(const struct dp_rpz *z, const uint8_t *n, size_t len,
                                 const size_t *starts, size_t nl, size_t k, bool *stop)
{
    *stop = false;
    if (k == 0)
        return table_find(z, n, len, false, name_hash(n, len, false));
    /* a base of j labels only matches while the suffix has at least j */
    if (z->nwild == 0 || k > nl || nl - k < z->wild_min_labels) {
        *stop = true;
        return NULL;
    }
    const uint8_t *s = n + starts[k];
    size_t sl = len - starts[k];
    return table_find(z, s, sl, true, name_hash(s, sl, true));
}

/* The same through a layer: the layer's rule for a trigger, or none when
 * it holds a tombstone there, else the base's. *where: the zone the rule
 * lives in. */
static const uint8_t *candidate(const struct dp_rpz *z, const uint8_t *n, size_t len,
                                const size_t *starts, size_t nl, size_t k, bool *stop,
                                const struct dp_rpz **where)
{
    bool s1, s2;
    const uint8_t *rec = candidate1(z, n, len, starts, nl, k, &s1);
    *where = z;
    if (rec != NULL) {
        *stop = false;
        return (rec[0] & F_ACTION) == A_TOMB ? NULL : rec;
    }
    if (z->base == NULL) {
        *stop = s1;
        return NULL;
    }
    *where = z->base;
    rec = candidate1(z->base, n, len, starts, nl, k, &s2);
    *stop = s1 && s2;
    return rec;
}

int dp_rpz_match_qname(const struct dp_rpz *z, const uint8_t *qname_wire, struct dp_rpz_hit *hit)
{
    if (z == NULL || qname_wire == NULL || hit == NULL)
        return 0;
    uint8_t n[256];
    size_t starts[128], nl;
    size_t len = prepare_qname(qname_wire, n, starts, &nl);
    if (len == 0)
        return 0;
    for (size_t k = 0;; k++) {
        bool stop;
        const struct dp_rpz *where;
        const uint8_t *rec = candidate(z, n, len, starts, nl, k, &stop, &where);
        if (stop)
            return 0;
        if (rec != NULL) {
            fill_name_hit(where, rec, hit);
            return 1;
        }
    }
}

size_t dp_rpz_match_qname_all(const struct dp_rpz *z, const uint8_t *qname_wire,
                              struct dp_rpz_hit *hit,
                              int (*cb)(const struct dp_rpz_hit *hit, void *user), void *user)
{
    if (z == NULL || qname_wire == NULL || hit == NULL || cb == NULL)
        return 0;
    uint8_t n[256];
    size_t starts[128], nl, calls = 0;
    size_t len = prepare_qname(qname_wire, n, starts, &nl);
    if (len == 0)
        return 0;
    for (size_t k = 0;; k++) {
        bool stop;
        const struct dp_rpz *where;
        const uint8_t *rec = candidate(z, n, len, starts, nl, k, &stop, &where);
        if (stop)
            return calls;
        if (rec != NULL) {
            fill_name_hit(where, rec, hit);
            calls++;
            if (cb(hit, user) != 0)
                return calls;
        }
    }
}

static size_t put_dec(char *out, unsigned v)
{
    char t[4];
    size_t n = 0, o = 0;
    do {
        t[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
    while (n > 0)
        out[o++] = t[--n];
    return o;
}

/* "PLEN.reversed.labels.rpz-client-ip", IPv6 with zz for the longest run
 * of two or more zero groups (the first such run on a tie). At most
 * 3 + 8 * 5 + 15 characters: cap is always 256 here. No stdio (match path). */
static void ip_text(const struct iprule *r, char *out, size_t cap)
{
    static const char hex[] = "0123456789abcdef";
    char buf[96];
    size_t o = put_dec(buf, r->plen);
    if (!(r->kind & 1)) {
        for (int i = 3; i >= 0; i--) {
            buf[o++] = '.';
            o += put_dec(buf + o, r->addr[i]);
        }
    } else {
        uint16_t g[8];
        for (int i = 0; i < 8; i++)
            g[i] = (uint16_t)(r->addr[2 * i] << 8 | r->addr[2 * i + 1]);
        int best = -1, bestlen = 1;
        for (int i = 0; i < 8;) {
            if (g[i] != 0) {
                i++;
                continue;
            }
            int j = i;
            while (j < 8 && g[j] == 0)
                j++;
            if (j - i > bestlen) {
                best = i;
                bestlen = j - i;
            }
            i = j;
        }
        for (int i = 7; i >= 0; i--) {
            if (best >= 0 && i >= best && i < best + bestlen) {
                if (i == best) {
                    memcpy(buf + o, ".zz", 3);
                    o += 3;
                }
                continue;
            }
            buf[o++] = '.';
            bool lead = true;
            for (int sh = 12; sh >= 0; sh -= 4) {
                unsigned d = (g[i] >> sh) & 15u;
                if (d == 0 && lead && sh > 0)
                    continue;
                lead = false;
                buf[o++] = hex[d];
            }
        }
    }
    const char *tail = (r->kind & 2) ? ".rpz-ip" : ".rpz-client-ip";
    size_t tl = strlen(tail);
    memcpy(buf + o, tail, tl);
    o += tl;
    if (o >= cap)
        o = cap - 1;
    memcpy(out, buf, o);
    out[o] = '\0';
}

/* The rule of (kind, prefix length pl) for the masked address key. */
static const struct iprule *addr_at(const struct dp_rpz *z, unsigned kind, unsigned pl,
                                    const uint8_t *key)
{
    size_t lo = z->range[kind][pl].start, hi = z->range[kind][pl].end;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = memcmp(z->ips[mid].addr, key, 16);
        if (c == 0)
            return &z->ips[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* The longest prefix over the layer and its base: the prefix lengths of
 * both, longest first; at each, the layer's rule (or tombstone) before the
 * base's. */
static int match_addr(const struct dp_rpz *z, unsigned kind, const uint8_t *addr,
                      struct dp_rpz_hit *hit)
{
    size_t bytes = (kind & 1) ? 16 : 4;
    const struct dp_rpz *b = z->base;
    unsigned li = 0, bi = 0, bn = b != NULL ? b->nlens[kind] : 0;
    while (li < z->nlens[kind] || bi < bn) {
        unsigned zl = li < z->nlens[kind] ? z->lens[kind][li] : 0;
        unsigned blen = bi < bn ? b->lens[kind][bi] : 0;
        bool in_z = li < z->nlens[kind] && (bi >= bn || zl >= blen);
        bool in_b = bi < bn && (li >= z->nlens[kind] || blen >= zl);
        unsigned pl = in_z ? zl : blen;
        li += in_z;
        bi += in_b;
        uint8_t key[16] = {0};
        for (size_t k = 0; k < bytes; k++) {
            size_t lo = k * 8;
            if (lo >= pl)
                break;
            uint8_t mask = pl >= lo + 8 ? 0xff : (uint8_t)(0xff << (8 - (pl - lo)));
            key[k] = addr[k] & mask;
        }
        const struct dp_rpz *where = z;
        const struct iprule *r = in_z ? addr_at(z, kind, pl, key) : NULL;
        if (r != NULL && r->action == A_TOMB)
            continue;
        if (r == NULL && in_b) {
            where = b;
            r = addr_at(b, kind, pl, key);
        }
        if (r != NULL) {
            hit->action = (enum dp_rpz_action)r->action;
            hit->trigger = (kind & 2) ? DP_RPZ_IP : DP_RPZ_CLIENT_IP;
            hit->rule = r;
            hit->layer = where;
            ip_text(r, hit->rule_text, sizeof hit->rule_text);
            return 1;
        }
    }
    return 0;
}

static const uint8_t V4MAPPED[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static int match_family(const struct dp_rpz *z, unsigned trig, int family, const uint8_t *a,
                        struct dp_rpz_hit *hit)
{
    if (family == AF_INET)
        return match_addr(z, trig, a, hit);
    if (family == AF_INET6) {
        if (memcmp(a, V4MAPPED, 12) == 0)
            return match_addr(z, trig, a + 12, hit);
        return match_addr(z, trig | 1, a, hit);
    }
    return 0;
}

int dp_rpz_match_client(const struct dp_rpz *z, const struct sockaddr *client,
                        struct dp_rpz_hit *hit)
{
    if (z == NULL || client == NULL || hit == NULL)
        return 0;
    if (client->sa_family == AF_INET) {
        const struct sockaddr_in *s = (const struct sockaddr_in *)(const void *)client;
        return match_family(z, 0, AF_INET, (const uint8_t *)&s->sin_addr, hit);
    }
    if (client->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)(const void *)client;
        return match_family(z, 0, AF_INET6, (const uint8_t *)&s->sin6_addr, hit);
    }
    return 0;
}

int dp_rpz_match_ip(const struct dp_rpz *z, int family, const void *addr, struct dp_rpz_hit *hit)
{
    if (z == NULL || addr == NULL || hit == NULL)
        return 0;
    return match_family(z, 2, family, addr, hit);
}

/* ---------------------------------------------------------------- answers */

static int put_rr(uint8_t *out, size_t cap, size_t *o, const uint8_t *owner, size_t olen,
                  uint16_t type, uint32_t ttl, const uint8_t *rd, size_t rdlen, const uint8_t *rd2,
                  size_t rd2len)
{
    size_t need = olen + 10 + rdlen + rd2len;
    if (*o + need > cap)
        return DOTPROXY_ENOSPC;
    uint8_t *p = out + *o;
    memcpy(p, owner, olen);
    p += olen;
    *p++ = (uint8_t)(type >> 8);
    *p++ = (uint8_t)type;
    *p++ = 0;
    *p++ = 1; /* IN */
    *p++ = (uint8_t)(ttl >> 24);
    *p++ = (uint8_t)(ttl >> 16);
    *p++ = (uint8_t)(ttl >> 8);
    *p++ = (uint8_t)ttl;
    size_t rl = rdlen + rd2len;
    *p++ = (uint8_t)(rl >> 8);
    *p++ = (uint8_t)rl;
    memcpy(p, rd, rdlen);
    if (rd2len)
        memcpy(p + rdlen, rd2, rd2len);
    *o += need;
    return 0;
}

static int put_local(const struct dp_rpz *z, uint32_t off, const uint8_t *q, size_t qlen,
                     uint8_t *out, size_t cap, size_t *o)
{
    uint16_t type, rdlen;
    uint32_t ttl;
    memcpy(&type, z->local + off + 4, 2);
    memcpy(&ttl, z->local + off + 6, 4);
    memcpy(&rdlen, z->local + off + 10, 2);
    const uint8_t *rd = z->local + off + LD_HDR;
    if (type == T_CNAME && rdlen >= 3 && rd[0] == 1 && rd[1] == '*') {
        /* "CNAME *.garden." : the qname replaces the asterisk. */
        size_t tail = rdlen - 2;
        if (qlen - 1 + tail > 255)
            return DOTPROXY_EINVAL;
        return put_rr(out, cap, o, q, qlen, type, ttl, q, qlen - 1, rd + 2, tail);
    }
    return put_rr(out, cap, o, q, qlen, type, ttl, rd, rdlen, NULL, 0);
}

int dp_rpz_local_answer(const struct dp_rpz *z, const struct dp_rpz_hit *hit,
                        const uint8_t *qname_wire, uint16_t qtype, uint8_t *out, size_t cap,
                        uint16_t *ancount)
{
    if (z == NULL || hit == NULL || qname_wire == NULL || out == NULL || ancount == NULL ||
        hit->action != DP_RPZ_LOCAL || hit->rule == NULL)
        return DOTPROXY_EINVAL;
    size_t qlen = wire_len(qname_wire);
    if (qlen == 0)
        return DOTPROXY_EINVAL;
    /* The rule's local data lives in the zone part that holds the rule. */
    if (hit->layer != NULL && hit->layer != z && hit->layer != z->base)
        return DOTPROXY_EINVAL;
    if (hit->layer != NULL)
        z = hit->layer;
    uint32_t head = hit->trigger == DP_RPZ_QNAME ? rec_local(hit->rule)
                                                 : ((const struct iprule *)hit->rule)->local;
    if (head == 0)
        return DOTPROXY_EINVAL;
    uint32_t cname = 0;
    for (uint32_t o = head; o != 0; o = ld_next(z, o))
        if (ld_type(z, o) == T_CNAME)
            cname = o;
    size_t o = 0;
    uint16_t n = 0;
    if (cname != 0 && qtype != T_CNAME) {
        int rc = put_local(z, cname, qname_wire, qlen, out, cap, &o);
        if (rc < 0)
            return rc;
        *ancount = 1;
        return (int)o;
    }
    for (uint32_t off = head; off != 0; off = ld_next(z, off)) {
        if (qtype != T_ANY && ld_type(z, off) != qtype)
            continue;
        int rc = put_local(z, off, qname_wire, qlen, out, cap, &o);
        if (rc < 0)
            return rc;
        n++;
    }
    *ancount = n;
    return (int)o;
}

/* ---------------------------------------------------------------- layers */

/* A tombstone for owner (absolute, text) unless the layer has a rule for
 * its trigger already. Owners that are no trigger (the apex, rpz-nsdname,
 * rpz-nsip, bad names) need none: they gave no rule in the base either. */
static int layer_owner(struct parser *P, const char *owner, size_t len)
{
    struct dp_rpz *z = P->z;
    struct tok t = {owner, len, false};
    uint8_t own[256];
    size_t ol;
    if (parse_name(P, &t, own, &ol, true) < 0 || ol < P->apex_len ||
        memcmp(own + ol - P->apex_len, P->apex, P->apex_len) != 0)
        return 0;
    size_t cut = ol - P->apex_len, j = 0;
    while (j < cut)
        j += 1 + own[j];
    if (j != cut || cut == 0)
        return 0;
    uint8_t rel[256];
    memcpy(rel, own, cut);
    rel[cut] = 0;
    size_t nlabels = 0;
    const uint8_t *lastlab = NULL;
    for (size_t i = 0; rel[i] != 0; i += 1 + rel[i]) {
        nlabels++;
        lastlab = rel + i;
    }
    if (label_is(lastlab, L_NSDNAME) || label_is(lastlab, L_NSIP))
        return 0;
    if (label_is(lastlab, L_CLIENT) || label_is(lastlab, L_IP)) {
        struct iprule r;
        if (parse_ip_trigger(P, rel, nlabels - 1, &r) < 0)
            return 0;
        if (label_is(lastlab, L_IP))
            r.kind |= 2;
        char canon[256], given[1025];
        ip_text(&r, canon, sizeof canon);
        name_to_text(rel, false, given, sizeof given);
        if (strcmp(canon, given) != 0)
            z->ip_alias = true;
        /* Sorted after any rule of the same trigger, and dropped then
         * (finish_ips). */
        r.action = A_TOMB;
        r.line = UINT32_MAX;
        void *b = z->ips;
        int rc = grow(&b, &z->ips_cap, z->nips + 1, sizeof *z->ips);
        z->ips = b;
        if (rc < 0)
            return rc;
        z->ips[z->nips++] = r;
        return 0;
    }
    bool wild = rel[0] == 1 && rel[1] == '*';
    const uint8_t *base = wild ? rel + 2 : rel;
    size_t blen = wild ? cut - 1 : cut + 1;
    if (table_find(z, base, blen, wild, name_hash(base, blen, wild)) != NULL)
        return 0;
    return add_qname(P, base, blen, wild, A_TOMB, 0, 0, NULL, 0);
}

/* Distinct triggers with a rule, through layer z over base. */
static size_t layer_count(const struct dp_rpz *z, const struct dp_rpz *base)
{
    size_t n = base->tab_used + base->nips;
    for (size_t i = 0; i < z->tab_size; i++) {
        if (z->tab[i].off == 0)
            continue;
        const uint8_t *rec = z->names + z->tab[i].off;
        bool wild = (rec[0] & F_WILD) != 0;
        n += (rec[0] & F_ACTION) != A_TOMB;
        n -= table_find(base, rec_name(rec), rec[1], wild, z->tab[i].h) != NULL;
    }
    for (size_t i = 0; i < z->nips; i++) {
        const struct iprule *r = &z->ips[i];
        n += r->action != A_TOMB;
        n -= addr_at(base, r->kind, r->plen, r->addr) != NULL;
    }
    return n;
}
