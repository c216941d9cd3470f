/* SPDX-License-Identifier: MIT */
/* Forward zones: their configuration calls, the context's zone table and
 * the per-query lookup (see forward.h). */
#include "forward.h"

#include <stdio.h>
#include <string.h>

#include "bytes.h"
#include "dotproxy/error.h"

#define PIN_SEP '^'
#define PLAIN   "plain:"

/* "cluster.local" or "cluster.local." (or "." for the root) to lower-case
 * wire form. Length written, or 0 when it is no domain name. */
static size_t zone_to_wire(const char *text, uint8_t out[255])
{
    size_t n = strlen(text), w = 0;
    if (n == 0)
        return 0;
    if (strcmp(text, ".") == 0) {
        out[0] = 0;
        return 1;
    }
    if (text[n - 1] == '.')
        n--;
    if (n > 253)
        return 0;
    size_t i = 0;
    while (i < n) {
        size_t start = i;
        while (i < n && text[i] != '.') {
            char c = text[i];
            int ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                     c == '-' || c == '_';
            if (!ok)
                return 0;
            i++;
        }
        size_t l = i - start;
        if (l == 0 || l > 63)
            return 0; /* empty label ("a..b", ".a") or too long */
        out[w++] = (uint8_t)l;
        for (size_t k = start; k < i; k++)
            out[w++] = dp_lower((uint8_t)text[k]);
        i++; /* the dot */
    }
    out[w++] = 0;
    return w;
}

/* Wire form to "cluster.local" ("." for the root). */
static void zone_to_text(const uint8_t *wire, char *out, size_t cap)
{
    size_t o = 0;
    if (wire[0] == 0) {
        snprintf(out, cap, ".");
        return;
    }
    for (size_t i = 0; wire[i] != 0 && o + 1 < cap; i += wire[i] + 1u) {
        if (i != 0)
            out[o++] = '.';
        for (size_t k = 1; k <= wire[i] && o + 1 < cap; k++)
            out[o++] = (char)wire[i + k];
    }
    out[o] = '\0';
}

static int parse_upstream(const char *spec, struct dp_fwd_upstream *u)
{
    memset(u, 0, sizeof *u);
    if (strncmp(spec, PLAIN, sizeof PLAIN - 1) == 0) {
        /* Plain DNS has no name to check and no key to pin: only an
         * address. */
        u->plain = 1;
        return dotproxy_endpoint_parse(&u->ep, spec + sizeof PLAIN - 1, DOTPROXY_DNS_PORT, 0);
    }
    char part[400];
    const char *sep = strchr(spec, PIN_SEP);
    size_t len = sep != NULL ? (size_t)(sep - spec) : strlen(spec);
    if (len >= sizeof part)
        return DOTPROXY_EADDR;
    memcpy(part, spec, len);
    part[len] = '\0';
    int rc = dotproxy_endpoint_parse(&u->ep, part, DOTPROXY_DOT_PORT, 1);
    if (rc != 0)
        return rc;
    while (sep != NULL) {
        const char *pin = sep + 1;
        sep = strchr(pin, PIN_SEP);
        len = sep != NULL ? (size_t)(sep - pin) : strlen(pin);
        if (len >= sizeof part)
            return DOTPROXY_EINVAL;
        if (u->n_pins == DP_MAX_PINS)
            return DOTPROXY_ELIMIT;
        memcpy(part, pin, len);
        part[len] = '\0';
        if ((rc = dp_config_pin_decode(part, u->pins[u->n_pins])) != 0)
            return rc;
        u->n_pins++;
    }
    return 0;
}

static int same_upstream(const struct dp_fwd_upstream *a, const struct dp_fwd_upstream *b)
{
    return a->plain == b->plain && a->ep.addrlen == b->ep.addrlen &&
           memcmp(&a->ep.addr, &b->ep.addr, a->ep.addrlen) == 0 &&
           strcmp(a->ep.name, b->ep.name) == 0 && a->n_pins == b->n_pins &&
           memcmp(a->pins, b->pins, sizeof a->pins[0] * a->n_pins) == 0;
}

DOTPROXY_EXPORT int dotproxy_config_add_forward(dotproxy_config *cfg, const char *zone,
                                                const char *upstream)
{
    if (cfg == NULL || zone == NULL || upstream == NULL)
        return DOTPROXY_EINVAL;
    uint8_t wire[255];
    size_t wlen = zone_to_wire(zone, wire);
    if (wlen == 0)
        return DOTPROXY_EINVAL;
    struct dp_fwd_upstream u;
    int rc = parse_upstream(upstream, &u);
    if (rc != 0)
        return rc;
    size_t zi = 0, k = 0;
    while (zi < cfg->n_fwd_zone &&
           (cfg->fwd_zone[zi].len != wlen || memcmp(cfg->fwd_zone[zi].wire, wire, wlen) != 0))
        zi++;
    while (k < cfg->n_fwd_up && !same_upstream(&cfg->fwd_up[k], &u))
        k++;
    if ((zi == cfg->n_fwd_zone && zi == DP_MAX_FWD_ZONES) ||
        (k == cfg->n_fwd_up && k == DP_MAX_FWD_UPS))
        return DOTPROXY_ELIMIT;
    if (k == cfg->n_fwd_up)
        cfg->fwd_up[cfg->n_fwd_up++] = u;
    struct dp_fwd_zone *z = &cfg->fwd_zone[zi];
    if (zi == cfg->n_fwd_zone) {
        memset(z, 0, sizeof *z);
        memcpy(z->wire, wire, wlen);
        z->len = (uint8_t)wlen;
        cfg->n_fwd_zone++;
    }
    for (size_t i = 0; i < z->n_ups; i++)
        if (z->ups[i] == k)
            return 0;
    /* Room: a zone names distinct upstreams, at most DP_MAX_FWD_UPS. */
    z->ups[z->n_ups++] = (uint8_t)k;
    return 0;
}

DOTPROXY_EXPORT size_t dotproxy_config_forward_zone_count(const dotproxy_config *cfg)
{
    return cfg == NULL ? 0 : cfg->n_fwd_zone;
}

static void put_base64(const uint8_t *in, size_t n, char *out)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        out[o++] = b64[(v >> 18) & 63];
        out[o++] = b64[(v >> 12) & 63];
        out[o++] = i + 1 < n ? b64[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? b64[v & 63] : '=';
    }
    out[o] = '\0';
}

int dp_forward_format_upstream(const struct dp_fwd_upstream *u, char *buf, size_t cap)
{
    char ep[400], pin[48];
    if (dotproxy_endpoint_format(&u->ep, ep, sizeof ep) < 0)
        return DOTPROXY_EINVAL;
    size_t n = (size_t)snprintf(buf, cap, "%s%s", u->plain ? PLAIN : "", ep);
    for (unsigned i = 0; i < u->n_pins && n < cap; i++) {
        put_base64(u->pins[i], 32, pin);
        n += (size_t)snprintf(buf + n, cap - n, "%csha256/%s", PIN_SEP, pin);
    }
    return n < cap ? (int)n : DOTPROXY_ENOSPC;
}

DOTPROXY_EXPORT int dotproxy_config_get_forward_zone(const dotproxy_config *cfg, size_t index,
                                                     char *buf, size_t cap)
{
    if (cfg == NULL || buf == NULL || index >= cfg->n_fwd_zone)
        return DOTPROXY_EINVAL;
    const struct dp_fwd_zone *z = &cfg->fwd_zone[index];
    char text[256];
    zone_to_text(z->wire, text, sizeof text);
    size_t n = (size_t)snprintf(buf, cap, "%s=", text);
    for (size_t i = 0; i < z->n_ups && n < cap; i++) {
        if (i > 0)
            n += (size_t)snprintf(buf + n, cap - n, ",");
        int m = n < cap ? dp_forward_format_upstream(&cfg->fwd_up[z->ups[i]], buf + n, cap - n)
                        : DOTPROXY_ENOSPC;
        if (m < 0)
            return m;
        n += (size_t)m;
    }
    if (n >= cap)
        return DOTPROXY_ENOSPC;
    return (int)n;
}

void dp_forward_build(struct dp_forward *fw, const struct dotproxy_config *cfg)
{
    uint32_t zone_bits = 0;
    for (size_t k = 0; k < cfg->n_fwd_up; k++)
        zone_bits |= 1u << (cfg->n_upstream + k);
    fw->def_excluded = zone_bits;
    fw->tls_bits = cfg->n_upstream >= 32 ? ~0u : (1u << cfg->n_upstream) - 1u;
    for (size_t k = 0; k < cfg->n_fwd_up; k++)
        if (!cfg->fwd_up[k].plain)
            fw->tls_bits |= 1u << (cfg->n_upstream + k);
    fw->n = 0;
    for (size_t i = 0; i < cfg->n_fwd_zone; i++) {
        const struct dp_fwd_zone *z = &cfg->fwd_zone[i];
        uint32_t allowed = 0;
        for (size_t k = 0; k < z->n_ups; k++)
            allowed |= 1u << (cfg->n_upstream + z->ups[k]);
        /* Insertion, longest first: the first zone that matches is the
         * longest, and so the most specific (two zones of one length
         * cannot both contain a name). */
        size_t at = fw->n;
        while (at > 0 && fw->z[at - 1].len < z->len) {
            fw->z[at] = fw->z[at - 1];
            at--;
        }
        memcpy(fw->z[at].wire, z->wire, z->len);
        fw->z[at].len = z->len;
        fw->z[at].excluded = ~allowed;
        fw->n++;
    }
}

uint32_t dp_forward_excluded(const struct dp_forward *fw, const uint8_t *qname, size_t len)
{
    if (fw->n == 0)
        return fw->def_excluded;
    /* Where each label starts: a zone matches only a whole-label suffix
     * ("ample.com" is no zone of "example.com"). */
    uint8_t starts[256 / 8] = {0};
    size_t off = 0;
    while (off < len) {
        starts[off / 8] |= (uint8_t)(1u << (off % 8));
        if (qname[off] == 0)
            break;
        off += qname[off] + 1u;
    }
    if (off >= len)
        return fw->def_excluded; /* not a name the parser would have let through */
    len = off + 1;
    for (size_t i = 0; i < fw->n; i++) {
        const struct dp_forward_zone *z = &fw->z[i];
        if (z->len > len)
            continue;
        size_t at = len - z->len;
        if (!(starts[at / 8] & (1u << (at % 8))))
            continue;
        size_t k = 0;
        while (k < z->len && dp_lower(qname[at + k]) == z->wire[k])
            k++;
        if (k == z->len)
            return z->excluded;
    }
    return fw->def_excluded;
}

void dp_forward_announce(const struct dotproxy_config *cfg, const struct dp_logger *log)
{
    char zone[256], up[600];
    for (size_t i = 0; i < cfg->n_fwd_zone; i++) {
        const struct dp_fwd_zone *z = &cfg->fwd_zone[i];
        zone_to_text(z->wire, zone, sizeof zone);
        for (size_t k = 0; k < z->n_ups; k++) {
            const struct dp_fwd_upstream *u = &cfg->fwd_up[z->ups[k]];
            if (dp_forward_format_upstream(u, up, sizeof up) < 0)
                snprintf(up, sizeof up, "?");
            if (u->plain)
                dp_log(log, DOTPROXY_LOG_WARN,
                       "forward zone %s: upstream %s is plain DNS, NOT private: names under the "
                       "zone and their answers cross the network unencrypted",
                       zone, up);
            else
                dp_log(log, DOTPROXY_LOG_INFO, "forward zone %s: upstream %s (DNS over TLS)", zone,
                       up);
        }
    }
}
