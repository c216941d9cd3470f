/* SPDX-License-Identifier: MIT */
/* The anomaly detectors' arithmetic: rules, the decayed-rate estimator,
 * name shapes and the tunnel score (docs/anomaly.md). Pure functions over
 * caller data. */
#include "anomaly.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dotproxy/config.h"
#include "dotproxy/error.h"

const char *const dp_anomaly_metric_names[DP_AM_COUNT] = {
    "qps", "nxdomain", "servfail", "bytes", "qtype", "subdomains", "tunnel",
};

static const struct {
    const char *name;
    uint16_t type;
} qtypes[] = {
    {"A", 1},     {"NS", 2},     {"CNAME", 5}, {"SOA", 6},    {"NULL", 10},
    {"PTR", 12},  {"HINFO", 13}, {"MX", 15},   {"TXT", 16},   {"AAAA", 28},
    {"SRV", 33},  {"NAPTR", 35}, {"DS", 43},   {"RRSIG", 46}, {"DNSKEY", 48},
    {"SVCB", 64}, {"HTTPS", 65}, {"CAA", 257}, {"ANY", 255},  {"AXFR", 252},
};

static const char *const action_names[] = {"log", "refuse", "drop", "truncate"};

static int parse_uint(const char *s, size_t n, unsigned long max, unsigned long *out)
{
    if (n == 0 || n > 10)
        return -1;
    unsigned long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (unsigned long)(s[i] - '0');
    }
    if (v > max)
        return -1;
    *out = v;
    return 0;
}

static int parse_qtype(const char *s, size_t n, uint16_t *out)
{
    for (size_t i = 0; i < sizeof qtypes / sizeof qtypes[0]; i++)
        if (strlen(qtypes[i].name) == n && strncasecmp(s, qtypes[i].name, n) == 0) {
            *out = qtypes[i].type;
            return 0;
        }
    unsigned long v;
    if (n > 4 && strncasecmp(s, "TYPE", 4) == 0)
        s += 4, n -= 4;
    if (parse_uint(s, n, 65535, &v) != 0 || v == 0)
        return -1;
    *out = (uint16_t)v;
    return 0;
}

/* A threshold: digits with at most one dot. */
static int parse_threshold(const char *s, size_t n, double *out)
{
    char buf[32];
    if (n == 0 || n >= sizeof buf)
        return -1;
    int dots = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '.')
            dots++;
        else if (s[i] < '0' || s[i] > '9')
            return -1;
    }
    if (dots > 1 || s[0] == '.' || s[n - 1] == '.')
        return -1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    *out = strtod(buf, NULL);
    return 0;
}

void dp_anomaly_rule_default(struct dp_dynrule *r, int metric)
{
    memset(r, 0, sizeof *r);
    r->metric = (uint8_t)metric;
    r->action = DOTPROXY_DYNBLOCK_LOG;
    r->mask4 = 32;
    r->mask6 = 64;
    r->for_s = DOTPROXY_DYNBLOCK_FOR_DEFAULT;
    r->implicit = 1;
    if (metric == DP_AM_TUNNEL) {
        r->threshold = DOTPROXY_DYNBLOCK_TUNNEL_DEFAULT;
        r->window_s = DOTPROXY_DYNBLOCK_TUNNEL_WINDOW;
        snprintf(r->text, sizeof r->text, "tunnel>%.2f", r->threshold);
    } else {
        r->threshold = DOTPROXY_DYNBLOCK_SUBDOMAINS_DEFAULT;
        r->window_s = DOTPROXY_DYNBLOCK_WINDOW_DEFAULT;
        snprintf(r->text, sizeof r->text, "subdomains>%u", DOTPROXY_DYNBLOCK_SUBDOMAINS_DEFAULT);
    }
}

int dp_anomaly_rule_parse(struct dp_dynrule *r, const char *text, const char **why)
{
    static const char *dummy;
    if (why == NULL)
        why = &dummy;
    memset(r, 0, sizeof *r);
    size_t tl = text != NULL ? strlen(text) : 0;
    if (tl == 0 || tl >= sizeof r->text) {
        *why = "empty or longer than 95 characters";
        return DOTPROXY_EINVAL;
    }
    memcpy(r->text, text, tl + 1);
    const char *gt = strchr(text, '>');
    if (gt == NULL) {
        *why = "no '>' (METRIC>THRESHOLD)";
        return DOTPROXY_EINVAL;
    }
    size_t mn = (size_t)(gt - text);
    int metric = -1;
    for (int m = 0; m < DP_AM_COUNT; m++)
        if (m != DP_AM_QTYPE && strlen(dp_anomaly_metric_names[m]) == mn &&
            strncmp(text, dp_anomaly_metric_names[m], mn) == 0)
            metric = m;
    if (metric < 0 && mn > 6 && strncmp(text, "qtype:", 6) == 0) {
        if (parse_qtype(text + 6, mn - 6, &r->qtype) != 0) {
            *why = "unknown query type in qtype:TYPE";
            return DOTPROXY_EINVAL;
        }
        metric = DP_AM_QTYPE;
    }
    if (metric < 0) {
        *why = "unknown metric (qps, nxdomain, servfail, bytes, qtype:TYPE, subdomains, tunnel)";
        return DOTPROXY_EINVAL;
    }
    r->metric = (uint8_t)metric;
    const char *p = gt + 1;
    const char *comma = strchr(p, ',');
    size_t tn = comma != NULL ? (size_t)(comma - p) : strlen(p);
    if (parse_threshold(p, tn, &r->threshold) != 0 || r->threshold <= 0 ||
        (metric == DP_AM_TUNNEL && r->threshold >= 1) || r->threshold > 1e9) {
        *why = metric == DP_AM_TUNNEL ? "the tunnel threshold is a score between 0 and 1"
                                      : "the threshold is a positive number";
        return DOTPROXY_EINVAL;
    }
    r->window_s =
        metric == DP_AM_TUNNEL ? DOTPROXY_DYNBLOCK_TUNNEL_WINDOW : DOTPROXY_DYNBLOCK_WINDOW_DEFAULT;
    r->for_s = DOTPROXY_DYNBLOCK_FOR_DEFAULT;
    r->action = DOTPROXY_DYNBLOCK_LOG;
    r->mask4 = 32;
    r->mask6 = 64;
    int masked = 0;
    while (comma != NULL) {
        p = comma + 1;
        comma = strchr(p, ',');
        size_t n = comma != NULL ? (size_t)(comma - p) : strlen(p);
        const char *eq = memchr(p, '=', n);
        if (eq == NULL) {
            *why = "an option is KEY=VALUE (window, for, action, mask)";
            return DOTPROXY_EINVAL;
        }
        size_t kn = (size_t)(eq - p), vn = n - kn - 1;
        const char *v = eq + 1;
        unsigned long u;
        if (kn == 6 && strncmp(p, "window", 6) == 0) {
            if (parse_uint(v, vn, DOTPROXY_DYNBLOCK_WINDOW_MAX, &u) != 0 ||
                u < DOTPROXY_DYNBLOCK_WINDOW_MIN) {
                *why = "window is 1..3600 seconds";
                return DOTPROXY_EINVAL;
            }
            r->window_s = (unsigned)u;
        } else if (kn == 3 && strncmp(p, "for", 3) == 0) {
            if (parse_uint(v, vn, DOTPROXY_DYNBLOCK_FOR_MAX, &u) != 0) {
                *why = "for is 0..86400 seconds";
                return DOTPROXY_EINVAL;
            }
            r->for_s = (unsigned)u;
        } else if (kn == 6 && strncmp(p, "action", 6) == 0) {
            int a = -1;
            for (int i = 0; i < 4; i++)
                if (strlen(action_names[i]) == vn && strncmp(v, action_names[i], vn) == 0)
                    a = i;
            if (a < 0) {
                *why = "action is log, refuse, drop or truncate";
                return DOTPROXY_EINVAL;
            }
            r->action = (uint8_t)a;
        } else if (kn == 4 && strncmp(p, "mask", 4) == 0) {
            if (parse_uint(v, vn, 128, &u) != 0 || u == 0) {
                *why = "mask is a prefix length, 1..32 for IPv4 (IPv6: 128 - 32 + it, at most 64)";
                return DOTPROXY_EINVAL;
            }
            masked = 1;
            if (u <= 32) {
                r->mask4 = (uint8_t)u;
                /* The same share of the address: /24 -> /56, /32 -> /64. */
                r->mask6 = (uint8_t)(u + 32);
            } else {
                r->mask4 = 32;
                r->mask6 = (uint8_t)u;
            }
        } else {
            *why = "unknown option (window, for, action, mask)";
            return DOTPROXY_EINVAL;
        }
    }
    if (masked && (metric == DP_AM_SUBDOMAINS)) {
        *why = "subdomains is per domain: no mask";
        return DOTPROXY_EINVAL;
    }
    return 0;
}

/* c * log2(c) for the counts a name can hold (at most 255 octets). */
static float clog2c[256];
static pthread_once_t clog2c_once = PTHREAD_ONCE_INIT;

static void clog2c_init(void);

/* Label octets into 39 classes: letters (case-folded), digits, '-', '_',
 * anything else. Tunnels encode data in these alphabets (base32, base64
 * folded by case, hex); the entropy over them tells encoded data from
 * words. */
static inline unsigned char_class(uint8_t c)
{
    if (c >= 'a' && c <= 'z')
        return c - 'a';
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= '0' && c <= '9')
        return 26u + (c - '0');
    return c == '-' ? 36u : c == '_' ? 37u : 38u;
}

/* char_class of every octet, for the loop over a name. */
static uint8_t classes[256];

static void clog2c_init(void)
{
    for (int c = 1; c < 256; c++)
        clog2c[c] = (float)c * log2f((float)c);
    for (int c = 0; c < 256; c++)
        classes[c] = (uint8_t)char_class((uint8_t)c);
}

void dp_anomaly_shape(struct dp_name_shape *out, const uint8_t *sub, size_t sub_len)
{
    unsigned longest = 0, chars = 0;
    for (size_t i = 0; i < sub_len && sub[i] != 0; i += 1u + sub[i]) {
        if (sub[i] > longest)
            longest = sub[i];
        chars += sub[i];
    }
    out->longest = longest;
    out->chars = chars;
    out->entropy = 0;
    /* Short names cannot show much entropy and are most names: not worth
     * the histogram. */
    if (chars < 16)
        return;
    pthread_once(&clog2c_once, clog2c_init);
    uint8_t hist[39] = {0};
    unsigned n = 0;
    for (size_t i = 0; i < sub_len && sub[i] != 0; i += 1u + sub[i])
        for (size_t k = 1; k <= sub[i] && i + k < sub_len; k++, n++)
            hist[classes[sub[i + k]]]++;
    if (n == 0)
        return;
    float s = 0;
    for (unsigned i = 0; i < 39; i++)
        s += clog2c[hist[i]];
    /* log2(n) - s / n, with log2(n) = clog2c[n] / n (n <= 255). */
    out->entropy = (clog2c[n] - s) / (float)n;
}

static inline float clamp01(float x)
{
    return x < 0 ? 0 : x > 1 ? 1 : x;
}

float dp_anomaly_tunnel_score(const struct dp_tunnel_feat *f)
{
    if (f->n < DP_TUNNEL_MIN_N)
        return 0;
    float inv = 1.0f / f->n;
    /* Ordinary labels are words and short tokens (under 16 octets); tunnel
     * labels are filled to near 63 with data. */
    float len = clamp01((f->longest * inv - 12.0f) / 38.0f);
    /* Over a name's few dozen octets words reach 3.5-4 bits per octet;
     * base32 data 4.3-4.6, base64 folded to one case 4.5-5; hex at most 4. */
    float ent = clamp01((f->entropy * inv - 3.5f) / 1.0f);
    float uniq = clamp01(f->uniq * inv);
    float types = clamp01(f->types * inv);
    /* Query plus answer: ordinary ones are about 100 octets together. */
    float size = clamp01((f->size * inv - 120.0f) / 380.0f);
    return 0.25f * len + 0.25f * ent + 0.20f * uniq + 0.15f * types + 0.15f * size;
}
