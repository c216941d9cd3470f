/* SPDX-License-Identifier: MIT */
/* dotproxyd: the operator HTTP server's bodies (see render.h for what is
 * rendered and how values are aggregated over workers).
 *
 * One request reads every worker once (a snapshot, or the upstream list
 * collected once) and renders from that, so the numbers in one response
 * agree with each other. Output goes to a bounded buffer: a body is either
 * whole or replaced by a 500, never cut short. */
#include "render.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RESPONSE_MAX ((size_t)1 << 20)
/* Upstreams aggregated over all workers (a context has at most 32). */
#define UPSTREAMS_MAX 1024u

/* ---- bounded output buffer ---------------------------------------------------- */

static int buf_reserve(struct dpd_render_buf *b, size_t more)
{
    if (b->failed)
        return -1;
    if (more < b->cap - b->len)
        return 0;
    if (more >= RESPONSE_MAX - b->len) {
        b->failed = 1;
        return -1;
    }
    size_t cap = b->cap == 0 ? 4096 : b->cap;
    while (cap - b->len <= more)
        cap *= 2;
    if (cap > RESPONSE_MAX)
        cap = RESPONSE_MAX;
    char *p = realloc(b->p, cap);
    if (p == NULL) {
        b->failed = 1;
        return -1;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

__attribute__((format(printf, 2, 3))) static void buf_printf(struct dpd_render_buf *b,
                                                             const char *fmt, ...)
{
    for (int round = 0; round < 2; round++) {
        if (buf_reserve(b, 0) != 0)
            return;
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->failed = 1;
            return;
        }
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        if (buf_reserve(b, (size_t)n) != 0)
            return;
    }
}

static void buf_putc(struct dpd_render_buf *b, char c)
{
    if (buf_reserve(b, 1) == 0)
        b->p[b->len++] = c;
}

static void buf_puts(struct dpd_render_buf *b, const char *s)
{
    size_t n = strlen(s);
    if (buf_reserve(b, n) == 0) {
        memcpy(b->p + b->len, s, n);
        b->len += n;
    }
}

/* A JSON string (RFC 8259 section 7). Besides what must be escaped, '<',
 * '>' and '&' are too, so the text is inert if pasted into HTML; octets
 * above 0x7f (never in an address or a host name) become \u00XX so the
 * output is valid UTF-8 whatever the input. */
static void buf_json_str(struct dpd_render_buf *b, const char *s)
{
    buf_putc(b, '"');
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        switch (*p) {
        case '"': buf_puts(b, "\\\""); break;
        case '\\': buf_puts(b, "\\\\"); break;
        case '\n': buf_puts(b, "\\n"); break;
        case '\r': buf_puts(b, "\\r"); break;
        case '\t': buf_puts(b, "\\t"); break;
        default:
            if (*p < 0x20 || *p >= 0x7f || *p == '<' || *p == '>' || *p == '&')
                buf_printf(b, "\\u%04x", (unsigned)*p);
            else
                buf_putc(b, (char)*p);
        }
    }
    buf_putc(b, '"');
}

/* A Prometheus label value: backslash, double quote and line feed escaped
 * (text exposition format 0.0.4). */
static void buf_prom_label(struct dpd_render_buf *b, const char *s)
{
    for (const char *p = s; *p != '\0'; p++) {
        if (*p == '\\')
            buf_puts(b, "\\\\");
        else if (*p == '"')
            buf_puts(b, "\\\"");
        else if (*p == '\n')
            buf_puts(b, "\\n");
        else
            buf_putc(b, *p);
    }
}

void dpd_render_buf_free(struct dpd_render_buf *b)
{
    if (b == NULL)
        return;
    free(b->p);
    memset(b, 0, sizeof *b);
}

/* ---- reading the workers ------------------------------------------------------ */

/* JSON names of the counters, in enum order. */
static const char *const counter_names[DOTPROXY_CTR_COUNT_] = {
    [DOTPROXY_CTR_QUERIES_UDP] = "queries_udp",
    [DOTPROXY_CTR_QUERIES_TCP] = "queries_tcp",
    [DOTPROXY_CTR_QUERIES_API] = "queries_api",
    [DOTPROXY_CTR_ANSWERS] = "answers",
    [DOTPROXY_CTR_SERVFAIL] = "servfail",
    [DOTPROXY_CTR_FORMERR] = "formerr",
    [DOTPROXY_CTR_DROPPED] = "dropped",
    [DOTPROXY_CTR_TRUNCATED] = "truncated",
    [DOTPROXY_CTR_TIMEOUTS] = "timeouts",
    [DOTPROXY_CTR_RETRIES] = "retries",
    [DOTPROXY_CTR_TLS_CONNECTS] = "tls_connects",
    [DOTPROXY_CTR_TLS_HANDSHAKES] = "tls_handshakes",
    [DOTPROXY_CTR_TLS_RESUMED] = "tls_resumed",
    [DOTPROXY_CTR_TLS_FAILURES] = "tls_failures",
    [DOTPROXY_CTR_TLS_CLOSED_BY_PEER] = "tls_closed_by_peer",
    [DOTPROXY_CTR_TLS_CLOSED_IDLE] = "tls_closed_idle",
    [DOTPROXY_CTR_UPSTREAM_BAD_ANSWERS] = "upstream_bad_answers",
    [DOTPROXY_CTR_TCP_CLIENTS] = "tcp_clients",
    [DOTPROXY_CTR_INFLIGHT] = "inflight",
    [DOTPROXY_CTR_HEDGED] = "hedged",
    [DOTPROXY_CTR_RELOADS] = "reloads",
    [DOTPROXY_CTR_CACHE_HITS] = "cache_hits",
    [DOTPROXY_CTR_CACHE_MISSES] = "cache_misses",
    [DOTPROXY_CTR_STALE_SERVED] = "stale_served",
    [DOTPROXY_CTR_COALESCED] = "coalesced",
    [DOTPROXY_CTR_PREFETCHES] = "prefetches",
    [DOTPROXY_CTR_CACHE_ENTRIES] = "cache_entries",
    [DOTPROXY_CTR_CACHE_EVICTIONS] = "cache_evictions",
    [DOTPROXY_CTR_REFUSED_ACL] = "refused_acl",
    [DOTPROXY_CTR_RATE_LIMITED] = "rate_limited",
    [DOTPROXY_CTR_CLIENT_INFLIGHT_CAP] = "client_inflight_cap",
    [DOTPROXY_CTR_CACHE_SHARED] = "cache_shared",
    [DOTPROXY_CTR_REFUSED_NORECURSE] = "refused_norecurse",
    [DOTPROXY_CTR_QUERIES_TLS] = "queries_tls",
    [DOTPROXY_CTR_TLS_CLIENTS] = "tls_clients",
    [DOTPROXY_CTR_TLS_IN_HANDSHAKES] = "tls_in_handshakes",
    [DOTPROXY_CTR_TLS_IN_RESUMED] = "tls_in_resumed",
    [DOTPROXY_CTR_TLS_IN_FAILED] = "tls_in_failed",
    [DOTPROXY_CTR_TLS_IN_TIMEOUTS] = "tls_in_timeouts",
    [DOTPROXY_CTR_TLS_REFUSED_NO_CERT] = "tls_refused_no_cert",
    [DOTPROXY_CTR_TLS_REFUSED_UNTRUSTED] = "tls_refused_untrusted",
    [DOTPROXY_CTR_TLS_REFUSED_ID] = "tls_refused_id",
    [DOTPROXY_CTR_TLS_CERT_LOADS] = "tls_cert_loads",
    [DOTPROXY_CTR_TLS_CERT_LOAD_FAILURES] = "tls_cert_load_failures",
    [DOTPROXY_CTR_TLS_CERT_NOT_AFTER] = "tls_cert_not_after",
};

/* Every worker's counters, read once per request so that one response is
 * computed from one set of readings. */
struct snapshot {
    size_t n;
    uint64_t (*ctr)[DOTPROXY_CTR_COUNT_]; /* [worker][counter] */
    uint64_t total[DOTPROXY_CTR_COUNT_];
    uint64_t latency[DOTPROXY_LATENCY_BUCKETS]; /* per bucket, summed */
};

static int snapshot_take(struct snapshot *s, dotproxy_ctx *const *ctxs, size_t n)
{
    memset(s, 0, sizeof *s);
    s->n = n;
    s->ctr = calloc(n == 0 ? 1 : n, sizeof *s->ctr);
    if (s->ctr == NULL)
        return -1;
    for (size_t w = 0; w < n; w++) {
        for (int c = 0; c < DOTPROXY_CTR_COUNT_; c++)
            s->ctr[w][c] = dotproxy_ctx_counter(ctxs[w], c);
        uint64_t lat[DOTPROXY_LATENCY_BUCKETS] = {0};
        size_t nb = dotproxy_ctx_latency_histogram(ctxs[w], lat, DOTPROXY_LATENCY_BUCKETS);
        for (size_t i = 0; i < nb; i++)
            s->latency[i] += lat[i];
    }
    for (int c = 0; c < DOTPROXY_CTR_COUNT_; c++) {
        /* Each daemon reload is applied once by every worker: the
         * configurations all of them applied is the minimum, and stays
         * monotonic. */
        if (c == DOTPROXY_CTR_RELOADS) {
            for (size_t w = 0; w < s->n; w++)
                if (w == 0 || s->ctr[w][c] < s->total[c])
                    s->total[c] = s->ctr[w][c];
        } else if (c == DOTPROXY_CTR_TLS_CERT_NOT_AFTER) {
            /* A time, not a count: the earliest any worker serves. */
            for (size_t w = 0; w < s->n; w++)
                if (s->ctr[w][c] != 0 && (s->total[c] == 0 || s->ctr[w][c] < s->total[c]))
                    s->total[c] = s->ctr[w][c];
        } else if ((c == DOTPROXY_CTR_CACHE_ENTRIES || c == DOTPROXY_CTR_CACHE_EVICTIONS ||
                    c == DOTPROXY_CTR_CACHE_SHARED) &&
                   s->n > 0 && s->ctr[0][DOTPROXY_CTR_CACHE_SHARED]) {
            /* One cache shared by every worker: each reports the whole of
             * it, so count it once. */
            for (size_t w = 0; w < s->n; w++)
                if (s->ctr[w][c] > s->total[c])
                    s->total[c] = s->ctr[w][c];
        } else {
            for (size_t w = 0; w < s->n; w++)
                s->total[c] += s->ctr[w][c];
        }
    }
    return 0;
}

static void snapshot_free(struct snapshot *s)
{
    free(s->ctr);
    s->ctr = NULL;
}

/* One upstream over all workers (rules in render.h). */
struct upstream_agg {
    char label[sizeof((dotproxy_upstream_stats *)0)->label];
    unsigned workers, healthy_workers;
    unsigned consecutive_failures; /* max */
    uint64_t connections, inflight, queries, answers;
    double srtt_weighted, srtt_weight; /* over workers that measured it */
    uint64_t idle_limit_us;            /* smallest learnt, 0 = none */
    int64_t cert_not_after;            /* earliest over workers, 0 = no handshake */
};

/* The growing list of upstreams seen so far. */
struct upstream_list {
    struct upstream_agg *a;
    size_t n, cap;
};

/* The entry for label, added (zeroed) if new; NULL when the list is full or
 * memory ran out: that upstream is then left out of this response. */
static struct upstream_agg *upstream_entry(struct upstream_list *l, const char *label)
{
    for (size_t k = 0; k < l->n; k++)
        if (strcmp(l->a[k].label, label) == 0)
            return &l->a[k];
    if (l->n == UPSTREAMS_MAX)
        return NULL;
    if (l->n == l->cap) {
        size_t ncap = l->cap == 0 ? 8 : l->cap * 2;
        struct upstream_agg *na = realloc(l->a, ncap * sizeof *na);
        if (na == NULL)
            return NULL;
        l->a = na;
        l->cap = ncap;
    }
    struct upstream_agg *u = &l->a[l->n++];
    memset(u, 0, sizeof *u);
    snprintf(u->label, sizeof u->label, "%s", label);
    return u;
}

/* Add one worker's view of an upstream (rules in render.h). */
static void upstream_add(struct upstream_agg *u, const dotproxy_upstream_stats *st)
{
    u->workers++;
    u->healthy_workers += st->healthy != 0;
    if (st->consecutive_failures > u->consecutive_failures)
        u->consecutive_failures = st->consecutive_failures;
    u->connections += st->connections;
    u->inflight += st->inflight;
    u->queries += st->queries;
    u->answers += st->answers;
    if (st->srtt_us != 0) {
        /* Weighted by answers (the RTT samples behind it), at least 1 so a
         * worker measured once still counts. */
        double wgt = st->answers != 0 ? (double)st->answers : 1.0;
        u->srtt_weighted += (double)st->srtt_us * wgt;
        u->srtt_weight += wgt;
    }
    if (st->idle_limit_us != 0 && (u->idle_limit_us == 0 || st->idle_limit_us < u->idle_limit_us))
        u->idle_limit_us = st->idle_limit_us;
    /* The earliest: a worker still on an older certificate is what an
     * expiry alert must see. */
    if (st->cert_not_after > 0 &&
        (u->cert_not_after == 0 || st->cert_not_after < u->cert_not_after))
        u->cert_not_after = st->cert_not_after;
}

/* Every upstream of every worker, merged by label, in order of first
 * appearance; *out is the caller's to free. */
static size_t upstreams_collect(struct upstream_agg **out, dotproxy_ctx *const *ctxs, size_t n_ctxs)
{
    struct upstream_list l = {0};
    for (size_t w = 0; w < n_ctxs; w++) {
        size_t count = dotproxy_ctx_upstream_count(ctxs[w]);
        for (size_t i = 0; i < count; i++) {
            dotproxy_upstream_stats st;
            /* The list may shrink between the two calls (a reload). */
            if (dotproxy_ctx_upstream_stats_sized(ctxs[w], i, &st, sizeof st) != 0)
                continue;
            st.label[sizeof st.label - 1] = '\0';
            struct upstream_agg *u = upstream_entry(&l, st.label);
            if (u != NULL)
                upstream_add(u, &st);
        }
    }
    *out = l.a;
    return l.n;
}

static int any_upstream_healthy(dotproxy_ctx *const *ctxs, size_t n)
{
    for (size_t w = 0; w < n; w++) {
        size_t count = dotproxy_ctx_upstream_count(ctxs[w]);
        for (size_t i = 0; i < count; i++) {
            dotproxy_upstream_stats st;
            if (dotproxy_ctx_upstream_stats(ctxs[w], i, &st) == 0 && st.healthy)
                return 1;
        }
    }
    return 0;
}

/* ---- Prometheus text format 0.0.4 ------------------------------------------------ */

struct prom_sample {
    int ctr;
    const char *label_value; /* NULL: the family has no label */
};

struct prom_family {
    const char *name, *type, *help;
    const char *label;       /* the label name, NULL when none */
    struct prom_sample s[6]; /* ended by ctr -1, or by a labelled family's first
                                unlabelled (zero-filled) sample */
};

#define NO_LABEL(c)                                                                                \
    {                                                                                              \
        {(c), NULL},                                                                               \
        {                                                                                          \
            -1, NULL                                                                               \
        }                                                                                          \
    }

/* Counters summed over the workers (the exceptions: see render.h).
 * A sample list ends at ctr -1 or after four. */
static const struct prom_family prom_families[] = {
    {"dotproxy_queries_total",
     "counter",
     "DNS queries received, by transport",
     "transport",
     {{DOTPROXY_CTR_QUERIES_UDP, "udp"},
      {DOTPROXY_CTR_QUERIES_TCP, "tcp"},
      {DOTPROXY_CTR_QUERIES_API, "api"},
      {DOTPROXY_CTR_QUERIES_TLS, "tls"},
      {-1, NULL}}},
    {"dotproxy_answers_total", "counter", "Upstream answers passed to clients", NULL,
     NO_LABEL(DOTPROXY_CTR_ANSWERS)},
    {"dotproxy_generated_responses_total",
     "counter",
     "Error responses made by the proxy itself, by RCODE",
     "rcode",
     {{DOTPROXY_CTR_SERVFAIL, "SERVFAIL"}, {DOTPROXY_CTR_FORMERR, "FORMERR"}, {-1, NULL}}},
    {"dotproxy_client_messages_rejected_total",
     "counter",
     "Client messages not served: unanswerable (no header, a response, too long, "
     "reply undeliverable), refused by the access list, over the rate limit, over the "
     "client's in-flight cap, or refused for asking without recursion (RD clear)",
     "reason",
     {{DOTPROXY_CTR_DROPPED, "unanswerable"},
      {DOTPROXY_CTR_REFUSED_ACL, "acl"},
      {DOTPROXY_CTR_RATE_LIMITED, "rate_limit"},
      {DOTPROXY_CTR_CLIENT_INFLIGHT_CAP, "client_inflight_cap"},
      {DOTPROXY_CTR_REFUSED_NORECURSE, "norecurse"},
      {-1, NULL}}},
    {"dotproxy_udp_truncated_total", "counter", "UDP answers cut to TC=1", NULL,
     NO_LABEL(DOTPROXY_CTR_TRUNCATED)},
    {"dotproxy_query_timeouts_total", "counter", "Queries whose deadline passed", NULL,
     NO_LABEL(DOTPROXY_CTR_TIMEOUTS)},
    {"dotproxy_query_retries_total", "counter", "Queries re-sent after a lost connection", NULL,
     NO_LABEL(DOTPROXY_CTR_RETRIES)},
    {"dotproxy_queries_hedged_total", "counter", "Late queries moved to another upstream", NULL,
     NO_LABEL(DOTPROXY_CTR_HEDGED)},
    {"dotproxy_tls_connects_total", "counter", "TCP connects started to upstreams", NULL,
     NO_LABEL(DOTPROXY_CTR_TLS_CONNECTS)},
    {"dotproxy_tls_handshakes_total", "counter", "TLS handshakes completed and verified", NULL,
     NO_LABEL(DOTPROXY_CTR_TLS_HANDSHAKES)},
    {"dotproxy_tls_resumed_total", "counter", "TLS handshakes that resumed a session", NULL,
     NO_LABEL(DOTPROXY_CTR_TLS_RESUMED)},
    {"dotproxy_tls_failures_total", "counter", "Upstream connects or handshakes that failed", NULL,
     NO_LABEL(DOTPROXY_CTR_TLS_FAILURES)},
    {"dotproxy_tls_closed_total",
     "counter",
     "Upstream connections closed, by the upstream (peer) or by us as idle",
     "by",
     {{DOTPROXY_CTR_TLS_CLOSED_BY_PEER, "peer"},
      {DOTPROXY_CTR_TLS_CLOSED_IDLE, "idle"},
      {-1, NULL}}},
    {"dotproxy_upstream_bad_answers_total", "counter",
     "Upstream answers with an unknown ID or the wrong question", NULL,
     NO_LABEL(DOTPROXY_CTR_UPSTREAM_BAD_ANSWERS)},
    {"dotproxy_tcp_clients_total", "counter", "TCP clients accepted", NULL,
     NO_LABEL(DOTPROXY_CTR_TCP_CLIENTS)},
    {"dotproxy_tls_clients_total", "counter", "TLS clients accepted (TCP connections)", NULL,
     NO_LABEL(DOTPROXY_CTR_TLS_CLIENTS)},
    {"dotproxy_tls_listener_handshakes_total",
     "counter",
     "Client handshakes on the TLS listener, by result",
     "result",
     {{DOTPROXY_CTR_TLS_IN_HANDSHAKES, "full"},
      {DOTPROXY_CTR_TLS_IN_RESUMED, "resumed"},
      {DOTPROXY_CTR_TLS_IN_FAILED, "failed"},
      {DOTPROXY_CTR_TLS_IN_TIMEOUTS, "timeout"},
      {-1, NULL}}},
    {"dotproxy_tls_listener_refused_total",
     "counter",
     "TLS clients refused by mutual TLS, by reason",
     "reason",
     {{DOTPROXY_CTR_TLS_REFUSED_NO_CERT, "no_cert"},
      {DOTPROXY_CTR_TLS_REFUSED_UNTRUSTED, "untrusted"},
      {DOTPROXY_CTR_TLS_REFUSED_ID, "id"},
      {-1, NULL}}},
    {"dotproxy_tls_cert_loads_total",
     "counter",
     "TLS listener certificate material loads: loaded, or refused (old material kept)",
     "result",
     {{DOTPROXY_CTR_TLS_CERT_LOADS, "loaded"},
      {DOTPROXY_CTR_TLS_CERT_LOAD_FAILURES, "refused"},
      {-1, NULL}}},
    {"dotproxy_queries_inflight", "gauge", "Queries waiting for an answer now", NULL,
     NO_LABEL(DOTPROXY_CTR_INFLIGHT)},
    {"dotproxy_cache_hits_total", "counter", "Queries answered from the cache", NULL,
     NO_LABEL(DOTPROXY_CTR_CACHE_HITS)},
    {"dotproxy_cache_misses_total", "counter", "Cacheable queries the cache could not answer", NULL,
     NO_LABEL(DOTPROXY_CTR_CACHE_MISSES)},
    {"dotproxy_cache_entries", "gauge", "Entries in the answer cache now", NULL,
     NO_LABEL(DOTPROXY_CTR_CACHE_ENTRIES)},
    {"dotproxy_cache_evictions_total", "counter", "Cache entries evicted to make room", NULL,
     NO_LABEL(DOTPROXY_CTR_CACHE_EVICTIONS)},
    {"dotproxy_cache_stale_served_total", "counter", "Expired answers served (RFC 8767)", NULL,
     NO_LABEL(DOTPROXY_CTR_STALE_SERVED)},
    {"dotproxy_queries_coalesced_total", "counter",
     "Queries answered by another query's upstream exchange", NULL,
     NO_LABEL(DOTPROXY_CTR_COALESCED)},
    {"dotproxy_cache_prefetches_total", "counter",
     "Refreshes of popular cache entries before expiry", NULL, NO_LABEL(DOTPROXY_CTR_PREFETCHES)},
    {"dotproxy_config_reloads_total", "counter", "Configuration reloads applied by every worker",
     NULL, NO_LABEL(DOTPROXY_CTR_RELOADS)},
};

static void prom_head(struct dpd_render_buf *b, const char *name, const char *type,
                      const char *help)
{
    /* HELP text needs '\' and line feeds escaped; ours has neither. */
    buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Seconds from microseconds, as short as exact ("0.0005", "2.5"). */
static void buf_seconds(struct dpd_render_buf *b, uint64_t us)
{
    buf_printf(b, "%.9g", (double)us / 1e6);
}

static void prom_counters(struct dpd_render_buf *b, const struct snapshot *s)
{
    for (size_t f = 0; f < sizeof prom_families / sizeof prom_families[0]; f++) {
        const struct prom_family *pf = &prom_families[f];
        prom_head(b, pf->name, pf->type, pf->help);
        for (size_t i = 0; i < sizeof pf->s / sizeof pf->s[0] && pf->s[i].ctr >= 0 &&
                           (i == 0 || pf->s[i].label_value != NULL);
             i++) {
            if (pf->label != NULL)
                buf_printf(b, "%s{%s=\"%s\"} %" PRIu64 "\n", pf->name, pf->label,
                           pf->s[i].label_value, s->total[pf->s[i].ctr]);
            else
                buf_printf(b, "%s %" PRIu64 "\n", pf->name, s->total[pf->s[i].ctr]);
        }
    }
}

/* No _sum: the library counts answers per bucket but does not add up their
 * latencies, and a sum estimated from bucket bounds would be a made-up
 * number. Quantiles (histogram_quantile) need only the buckets; the text
 * format lets a histogram go without _sum. */
static void prom_latency(struct dpd_render_buf *b, const struct snapshot *s)
{
    const char *h = "dotproxy_answer_latency_seconds";
    prom_head(b, h, "histogram",
              "Time from a query's arrival to its answer being sent, cache hits excluded");
    uint64_t cum = 0;
    for (size_t i = 0; i < DOTPROXY_LATENCY_BUCKETS; i++) {
        cum += s->latency[i];
        uint64_t bound = dotproxy_latency_bound_us(i);
        buf_printf(b, "%s_bucket{le=\"", h);
        if (bound == UINT64_MAX)
            buf_puts(b, "+Inf");
        else
            buf_seconds(b, bound);
        buf_printf(b, "\"} %" PRIu64 "\n", cum);
    }
    if (dotproxy_latency_bound_us(DOTPROXY_LATENCY_BUCKETS - 1) != UINT64_MAX)
        buf_printf(b, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n", h, cum);
    buf_printf(b, "%s_count %" PRIu64 "\n", h, cum);
}

/* The per-upstream families, in output order. */
enum upstream_family {
    UF_HEALTHY,
    UF_SRTT,
    UF_CONNECTIONS,
    UF_INFLIGHT,
    UF_FAILURES,
    UF_IDLE_LIMIT,
    UF_QUERIES,
    UF_ANSWERS,
    UF_CERT_EXPIRY,
    UF_COUNT_
};

static const struct {
    const char *name, *type, *help;
} upstream_families[UF_COUNT_] = {
    [UF_HEALTHY] = {"dotproxy_upstream_healthy", "gauge",
                    "1 when the upstream is usable in at least one worker (not backing off "
                    "after failed connects)"},
    [UF_SRTT] = {"dotproxy_upstream_srtt_seconds", "gauge",
                 "Smoothed answer round trip (answer-weighted mean over workers; absent until "
                 "measured)"},
    [UF_CONNECTIONS] = {"dotproxy_upstream_connections", "gauge",
                        "Open TLS connections to the upstream"},
    [UF_INFLIGHT] = {"dotproxy_upstream_inflight", "gauge",
                     "Queries on the wire to the upstream now"},
    [UF_FAILURES] = {"dotproxy_upstream_consecutive_failures", "gauge",
                     "Consecutive failed connects (the most in any worker)"},
    [UF_IDLE_LIMIT] = {"dotproxy_upstream_idle_limit_seconds", "gauge",
                       "Idle time after which the upstream closes connections, as learnt "
                       "(smallest over workers; absent until learnt)"},
    [UF_QUERIES] = {"dotproxy_upstream_queries_total", "counter", "Queries sent to the upstream"},
    [UF_ANSWERS] = {"dotproxy_upstream_answers_total", "counter",
                    "Answers received from the upstream"},
    [UF_CERT_EXPIRY] = {"dotproxy_upstream_cert_expiry_seconds", "gauge",
                        "Seconds until the notAfter of the upstream's certificate, as seen at "
                        "the last verified handshake (earliest over workers; absent until one)"},
};

/* Whether upstream u has a value for family f: no line until measured. */
static int upstream_has_value(enum upstream_family f, const struct upstream_agg *u)
{
    if (f == UF_SRTT)
        return u->srtt_weight != 0;
    if (f == UF_IDLE_LIMIT)
        return u->idle_limit_us != 0;
    if (f == UF_CERT_EXPIRY)
        return u->cert_not_after != 0;
    return 1;
}

static void upstream_value(struct dpd_render_buf *b, enum upstream_family f,
                           const struct upstream_agg *u)
{
    switch (f) {
    case UF_HEALTHY: buf_printf(b, "%d", u->healthy_workers > 0); break;
    case UF_SRTT: buf_printf(b, "%.9g", u->srtt_weighted / u->srtt_weight / 1e6); break;
    case UF_CONNECTIONS: buf_printf(b, "%" PRIu64, u->connections); break;
    case UF_INFLIGHT: buf_printf(b, "%" PRIu64, u->inflight); break;
    case UF_FAILURES: buf_printf(b, "%u", u->consecutive_failures); break;
    case UF_IDLE_LIMIT: buf_seconds(b, u->idle_limit_us); break;
    case UF_QUERIES: buf_printf(b, "%" PRIu64, u->queries); break;
    case UF_ANSWERS: buf_printf(b, "%" PRIu64, u->answers); break;
    case UF_CERT_EXPIRY:
        buf_printf(b, "%lld", (long long)u->cert_not_after - (long long)time(NULL));
        break;
    case UF_COUNT_: break;
    }
}

static void prom_upstreams(struct dpd_render_buf *b, const struct upstream_agg *ua, size_t nu)
{
    for (int f = 0; f < UF_COUNT_; f++) {
        prom_head(b, upstream_families[f].name, upstream_families[f].type,
                  upstream_families[f].help);
        for (size_t k = 0; k < nu; k++) {
            if (!upstream_has_value((enum upstream_family)f, &ua[k]))
                continue;
            buf_printf(b, "%s{upstream=\"", upstream_families[f].name);
            buf_prom_label(b, ua[k].label);
            buf_puts(b, "\"} ");
            upstream_value(b, (enum upstream_family)f, &ua[k]);
            buf_putc(b, '\n');
        }
    }
}

/* ---- anomaly detection: the daemon gives every worker one detector, so
 * worker 0's view is the whole (cli/dotproxyd.c) ---- */

#define TOP_OFFENDERS 10

static void prom_dynblocks(struct dpd_render_buf *b, dotproxy_ctx *ctx)
{
    prom_head(b, "dotproxy_dynblock_active", "gauge",
              "Dynamic blocks and log-mode anomaly events in force");
    buf_printf(b, "dotproxy_dynblock_active %zu\n", dotproxy_ctx_dynblocks(ctx, NULL, 0));
    prom_head(
        b, "dotproxy_dynblock_hits_total", "counter",
        "Queries a dynamic block rule matched while in force (log rules: would have blocked)");
    char text[128];
    uint64_t hits;
    for (size_t i = 0; dotproxy_ctx_dynblock_rule(ctx, i, text, sizeof text, &hits) == 0; i++) {
        buf_printf(b, "dotproxy_dynblock_hits_total{rule=\"");
        buf_prom_label(b, text);
        buf_printf(b, "\"} %" PRIu64 "\n", hits);
    }
    prom_head(b, "dotproxy_anomaly_events_total", "counter",
              "Anomalies detected (a rule crossing its threshold), by detector");
    const char *d;
    for (size_t i = 0; (d = dotproxy_anomaly_detector_name(i)) != NULL; i++)
        buf_printf(b, "dotproxy_anomaly_events_total{detector=\"%s\"} %" PRIu64 "\n", d,
                   dotproxy_ctx_anomaly_events(ctx, i));
    dotproxy_anomaly_offender top[TOP_OFFENDERS];
    size_t nt = dotproxy_ctx_anomaly_top(ctx, top, TOP_OFFENDERS);
    prom_head(b, "dotproxy_anomaly_top_client_qps", "gauge",
              "The busiest clients now: queries per second over 10 s (at most 10)");
    for (size_t i = 0; i < nt; i++) {
        buf_printf(b, "dotproxy_anomaly_top_client_qps{client=\"");
        buf_prom_label(b, top[i].key);
        buf_printf(b, "\"} %.2f\n", top[i].qps);
    }
}

int dpd_render_metrics(struct dpd_render_buf *b, dotproxy_ctx *const *ctxs, size_t n)
{
    struct snapshot s;
    if (snapshot_take(&s, ctxs, n) != 0)
        return -1;
    prom_head(b, "dotproxy_build_info", "gauge", "Always 1; the library version as a label");
    buf_printf(b, "dotproxy_build_info{version=\"");
    buf_prom_label(b, dotproxy_version());
    buf_printf(b, "\"} 1\n");
    prom_head(b, "dotproxy_workers", "gauge", "Worker contexts (threads) serving queries");
    buf_printf(b, "dotproxy_workers %zu\n", n);
    prom_counters(b, &s);
    if (s.total[DOTPROXY_CTR_TLS_CERT_NOT_AFTER] != 0) {
        prom_head(b, "dotproxy_tls_cert_expiry_seconds", "gauge",
                  "Seconds until the TLS listener's certificate expires (notAfter)");
        buf_printf(b, "dotproxy_tls_cert_expiry_seconds %lld\n",
                   (long long)s.total[DOTPROXY_CTR_TLS_CERT_NOT_AFTER] - (long long)time(NULL));
    }
    prom_latency(b, &s);
    snapshot_free(&s);

    struct upstream_agg *ua = NULL;
    size_t nu = upstreams_collect(&ua, ctxs, n);
    prom_upstreams(b, ua, nu);
    free(ua);
    if (n > 0)
        prom_dynblocks(b, ctxs[0]);
    return 0;
}

void dpd_render_daemon_metrics(struct dpd_render_buf *b, unsigned long long log_lines_dropped)
{
    prom_head(b, "dotproxyd_log_lines_dropped_total", "counter",
              "Log lines dropped because the log output did not keep up");
    buf_printf(b, "dotproxyd_log_lines_dropped_total %llu\n", log_lines_dropped);
}

void dpd_render_dnstap_metrics(struct dpd_render_buf *b, unsigned long long queued,
                               unsigned long long dropped)
{
    prom_head(b, "dotproxyd_dnstap_messages_total", "counter",
              "dnstap messages handed to the Frame Streams writer");
    buf_printf(b, "dotproxyd_dnstap_messages_total %llu\n", queued);
    prom_head(b, "dotproxyd_dnstap_dropped_total", "counter",
              "dnstap messages dropped because the writer's queue was full");
    buf_printf(b, "dotproxyd_dnstap_dropped_total %llu\n", dropped);
}

/* ---- JSON API ---------------------------------------------------------------------- */

static void json_counters(struct dpd_render_buf *b, const uint64_t *v)
{
    buf_putc(b, '{');
    for (int c = 0; c < DOTPROXY_CTR_COUNT_; c++)
        buf_printf(b, "%s\"%s\":%" PRIu64, c == 0 ? "" : ",", counter_names[c], v[c]);
    buf_putc(b, '}');
}

int dpd_render_stats(struct dpd_render_buf *b, dotproxy_ctx *const *ctxs, size_t n)
{
    struct snapshot s;
    if (snapshot_take(&s, ctxs, n) != 0)
        return -1;
    buf_puts(b, "{\"version\":");
    buf_json_str(b, dotproxy_version());
    buf_printf(b, ",\"workers\":%zu,\"counters\":", n);
    json_counters(b, s.total);
    /* Per bucket (not cumulative) as the library gives them; null is the
     * unbounded last bucket. */
    buf_puts(b, ",\"latency\":{\"le_seconds\":[");
    for (size_t i = 0; i < DOTPROXY_LATENCY_BUCKETS; i++) {
        uint64_t bound = dotproxy_latency_bound_us(i);
        if (i != 0)
            buf_putc(b, ',');
        if (bound == UINT64_MAX)
            buf_puts(b, "null");
        else
            buf_seconds(b, bound);
    }
    buf_puts(b, "],\"counts\":[");
    for (size_t i = 0; i < DOTPROXY_LATENCY_BUCKETS; i++)
        buf_printf(b, "%s%" PRIu64, i == 0 ? "" : ",", s.latency[i]);
    buf_puts(b, "]},\"per_worker\":[");
    for (size_t w = 0; w < s.n; w++) {
        buf_printf(b, "%s{\"worker\":%zu,\"counters\":", w == 0 ? "" : ",", w);
        json_counters(b, s.ctr[w]);
        buf_putc(b, '}');
    }
    buf_puts(b, "]}\n");
    snapshot_free(&s);
    return 0;
}

/* JSON has no NaN: a value not measured yet is null. */
static void json_seconds_or_null(struct dpd_render_buf *b, int known, double seconds)
{
    if (known)
        buf_printf(b, "%.9g", seconds);
    else
        buf_puts(b, "null");
}

void dpd_render_upstreams(struct dpd_render_buf *b, dotproxy_ctx *const *ctxs, size_t n)
{
    struct upstream_agg *ua = NULL;
    size_t nu = upstreams_collect(&ua, ctxs, n);
    buf_putc(b, '[');
    for (size_t k = 0; k < nu; k++) {
        const struct upstream_agg *u = &ua[k];
        buf_puts(b, k == 0 ? "{\"upstream\":" : ",{\"upstream\":");
        buf_json_str(b, u->label);
        buf_printf(b,
                   ",\"healthy\":%s,\"healthy_workers\":%u,\"workers\":%u,"
                   "\"consecutive_failures\":%u,\"connections\":%" PRIu64 ",\"inflight\":%" PRIu64
                   ",\"queries\":%" PRIu64 ",\"answers\":%" PRIu64 ",\"srtt_seconds\":",
                   u->healthy_workers > 0 ? "true" : "false", u->healthy_workers, u->workers,
                   u->consecutive_failures, u->connections, u->inflight, u->queries, u->answers);
        json_seconds_or_null(b, u->srtt_weight != 0,
                             u->srtt_weight != 0 ? u->srtt_weighted / u->srtt_weight / 1e6 : 0);
        buf_puts(b, ",\"idle_limit_seconds\":");
        json_seconds_or_null(b, u->idle_limit_us != 0, (double)u->idle_limit_us / 1e6);
        buf_putc(b, '}');
    }
    buf_puts(b, "]\n");
    free(ua);
}

void dpd_render_json_error(struct dpd_render_buf *b, const char *msg)
{
    buf_puts(b, "{\"error\":");
    buf_json_str(b, msg);
    buf_puts(b, "}\n");
}

void dpd_render_reload_failed(struct dpd_render_buf *b, const char *msg)
{
    buf_puts(b, "{\"reloaded\":false,\"error\":");
    buf_json_str(b, msg);
    buf_puts(b, "}\n");
}

/* ---- health --------------------------------------------------------------------------- */

int dpd_render_health(struct dpd_render_buf *b, dotproxy_ctx *const *ctxs, size_t n)
{
    int healthy = any_upstream_healthy(ctxs, n);
    buf_puts(b, healthy ? "ok\n" : "no healthy upstream\n");
    return healthy;
}

/* ---- blocklists ---- */

static const char *const list_kind_names[] = {"allowlist", "rpz", "blocklist"};

/* One family per pass over the lists: Prometheus wants the samples of a
 * family together, so with several lists the families cannot interleave. */
struct list_family {
    struct dpd_render_buf *b;
    size_t k;
};

static const char *const list_family_names[] = {
    "dotproxy_blocked_total", "dotproxy_blocklist_entries", "dotproxy_blocklist_last_load_seconds",
    "dotproxy_blocklist_load_failures_total", "dotproxy_blocklist_skipped_lines"};

static void list_metrics(const dotproxy_list_info *li, void *user)
{
    const struct list_family *lf = user;
    uint64_t vals[] = {li->blocked, li->entries, (uint64_t)li->loaded_s, li->failures, li->skipped};
    buf_printf(lf->b, "%s{list=\"", list_family_names[lf->k]);
    buf_prom_label(lf->b, li->path);
    buf_printf(lf->b, "\",kind=\"%s\"} %llu\n", list_kind_names[li->kind],
               (unsigned long long)vals[lf->k]);
}

void dpd_render_block_metrics(struct dpd_render_buf *b, dotproxy_blocker *bl)
{
    static const char *const types[] = {"counter", "gauge", "gauge", "counter", "gauge"};
    static const char *const helps[] = {
        "queries a list decided: blocked by a blocklist, passed by an allowlist",
        "names loaded from the list", "Unix time of the list's last successful load",
        "loads of the list that failed (the names loaded before were kept)",
        "lines of the list skipped at its last load (no format matched)"};
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        struct list_family lf = {.b = b, .k = k};
        prom_head(b, list_family_names[k], types[k], helps[k]);
        dotproxy_blocker_lists(bl, list_metrics, &lf);
    }
}

struct explain_state {
    struct dpd_render_buf *b;
    int n;
    const dotproxy_block_match *deciding;
    char decide[1200];
};

static void explain_one(const dotproxy_block_match *m, void *user)
{
    struct explain_state *st = user;
    struct dpd_render_buf *b = st->b;
    buf_puts(b, st->n++ ? ",\n  {" : "\n  {");
    buf_puts(b, "\"kind\":");
    buf_json_str(b, list_kind_names[m->kind]);
    buf_puts(b, ",\"list\":");
    buf_json_str(b, m->path);
    buf_puts(b, ",\"rule\":");
    buf_json_str(b, m->rule);
    buf_puts(b, ",\"action\":");
    buf_json_str(b, m->action);
    buf_printf(b, ",\"decides\":%s}", m->decides ? "true" : "false");
    if (m->decides)
        snprintf(st->decide, sizeof st->decide, "%s|%s|%s|%s", list_kind_names[m->kind], m->path,
                 m->rule, m->action);
}

int dpd_render_block_check(struct dpd_render_buf *b, dotproxy_blocker *bl, const char *name)
{
    struct explain_state st = {.b = b};
    buf_puts(b, "{\"name\":");
    buf_json_str(b, name);
    buf_puts(b, ",\"matches\":[");
    int r = dotproxy_blocker_explain(bl, name, explain_one, &st);
    if (r < 0)
        return -1;
    buf_puts(b, st.n ? "\n],\"decision\":" : "],\"decision\":");
    if (st.decide[0] == '\0') {
        buf_puts(b, "{\"action\":\"pass\"}}\n");
        return 0;
    }
    char *f[4] = {st.decide, NULL, NULL, NULL};
    for (int i = 1; i < 4; i++) {
        f[i] = strchr(f[i - 1], '|');
        if (f[i] == NULL)
            return -1;
        *f[i]++ = '\0';
    }
    buf_puts(b, "{\"kind\":");
    buf_json_str(b, f[0]);
    buf_puts(b, ",\"list\":");
    buf_json_str(b, f[1]);
    buf_puts(b, ",\"rule\":");
    buf_json_str(b, f[2]);
    buf_puts(b, ",\"action\":");
    buf_json_str(b, f[3]);
    buf_puts(b, "}}\n");
    return 0;
}

void dpd_render_dynblocks(struct dpd_render_buf *b, dotproxy_ctx *const *ctxs, size_t n)
{
    static const char *const actions[] = {"log", "refuse", "drop", "truncate"};
    size_t cap = 64, total = 0;
    dotproxy_dynblock_entry *e = NULL;
    for (int tries = 0; n > 0 && tries < 4; tries++) {
        free(e);
        e = calloc(cap, sizeof *e);
        if (e == NULL) {
            b->failed = 1;
            return;
        }
        total = dotproxy_ctx_dynblocks(ctxs[0], e, cap);
        if (total <= cap)
            break;
        cap = total + 16;
    }
    if (total > cap)
        total = cap;
    buf_puts(b, "{\"blocks\":[");
    for (size_t i = 0; i < total; i++) {
        buf_puts(b, i == 0 ? "{\"key\":" : ",{\"key\":");
        buf_json_str(b, e[i].key);
        buf_puts(b, ",\"rule\":");
        buf_json_str(b, e[i].rule);
        buf_printf(b, ",\"detector\":\"%s\",\"action\":\"%s\",\"reason\":",
                   dotproxy_anomaly_detector_name((size_t)e[i].detector), actions[e[i].action & 3]);
        buf_json_str(b, e[i].reason);
        buf_printf(b, ",\"since\":%.3f,\"until\":%.3f,\"queries_blocked\":%" PRIu64 "}",
                   (double)e[i].since_ms / 1000.0, (double)e[i].until_ms / 1000.0, e[i].blocked);
    }
    buf_puts(b, "],\"events\":{");
    const char *d;
    for (size_t i = 0; n > 0 && (d = dotproxy_anomaly_detector_name(i)) != NULL; i++)
        buf_printf(b, "%s\"%s\":%" PRIu64, i == 0 ? "" : ",", d,
                   dotproxy_ctx_anomaly_events(ctxs[0], i));
    buf_puts(b, "},\"rules\":[");
    char text[128];
    uint64_t hits;
    for (size_t i = 0;
         n > 0 && dotproxy_ctx_dynblock_rule(ctxs[0], i, text, sizeof text, &hits) == 0; i++) {
        buf_puts(b, i == 0 ? "{\"rule\":" : ",{\"rule\":");
        buf_json_str(b, text);
        buf_printf(b, ",\"hits\":%" PRIu64 "}", hits);
    }
    buf_puts(b, "]}\n");
    free(e);
}

/* ---- zone-transfer feeds ---- */

#define FEEDS_SHOWN 16 /* DOTPROXY_FEEDS_MAX */

struct feed_copy {
    size_t n;
    struct {
        char source[300], zone[260], error[200];
        dotproxy_feed_info i;
    } f[FEEDS_SHOWN];
};

static void feed_take(const dotproxy_feed_info *fi, void *user)
{
    struct feed_copy *fc = user;
    if (fc->n == FEEDS_SHOWN)
        return;
    snprintf(fc->f[fc->n].source, sizeof fc->f[0].source, "%s", fi->source);
    snprintf(fc->f[fc->n].zone, sizeof fc->f[0].zone, "%s", fi->zone);
    snprintf(fc->f[fc->n].error, sizeof fc->f[0].error, "%s", fi->last_error);
    fc->f[fc->n].i = *fi;
    fc->n++;
}

/* Lists over HTTPS, copied out of the callback like the zone feeds. */
struct url_copy {
    size_t n;
    struct {
        char url[2100], etag[256], last_modified[128], error[256];
        dotproxy_url_feed_info i;
    } f[FEEDS_SHOWN];
};

static void url_take(const dotproxy_url_feed_info *fi, void *user)
{
    struct url_copy *uc = user;
    if (uc->n == FEEDS_SHOWN)
        return;
    snprintf(uc->f[uc->n].url, sizeof uc->f[0].url, "%s", fi->url);
    snprintf(uc->f[uc->n].etag, sizeof uc->f[0].etag, "%s", fi->etag);
    snprintf(uc->f[uc->n].last_modified, sizeof uc->f[0].last_modified, "%s", fi->last_modified);
    snprintf(uc->f[uc->n].error, sizeof uc->f[0].error, "%s", fi->last_error);
    uc->f[uc->n].i = *fi;
    uc->n++;
}

/* The samples of family k (render_feed_families' numbering) for the lists
 * over HTTPS, labelled like a zone feed's: feed and source are the URL. */
static void render_url_samples(struct dpd_render_buf *b, const char *name, size_t k,
                               const struct url_copy *ucp)
{
    for (size_t i = 0; i < ucp->n; i++) {
        const dotproxy_url_feed_info *f = &ucp->f[i].i;
        uint64_t v;
        switch (k) {
        case 1: v = f->entries; break;
        case 2: v = (uint64_t)f->last_ok_s; break;
        case 3: v = (uint64_t)f->last_fail_s; break;
        case 4: v = (uint64_t)f->next_s; break;
        case 6: v = f->failures; break;
        case 8: v = f->bytes; break;
        default: return;
        }
        buf_printf(b, "%s{feed=\"", name);
        buf_prom_label(b, ucp->f[i].url);
        buf_puts(b, "\",source=\"");
        buf_prom_label(b, ucp->f[i].url);
        buf_printf(b, "\"} %llu\n", (unsigned long long)v);
    }
}

static void render_feed_families(struct dpd_render_buf *b, dotproxy_blocker *bl,
                                 const struct feed_copy *fcp, const struct url_copy *ucp);

void dpd_render_feed_metrics(struct dpd_render_buf *b, dotproxy_blocker *bl)
{
    struct feed_copy *fcp = calloc(1, sizeof *fcp);
    if (fcp == NULL) {
        b->failed = 1;
        return;
    }
    struct url_copy *ucp = calloc(1, sizeof *ucp);
    if (ucp == NULL) {
        free(fcp);
        b->failed = 1;
        return;
    }
    dotproxy_blocker_feeds(bl, feed_take, fcp);
    dotproxy_blocker_url_feeds(bl, url_take, ucp);
    render_feed_families(b, bl, fcp, ucp);
    free(ucp);
    free(fcp);
}

static void render_feed_families(struct dpd_render_buf *b, dotproxy_blocker *bl,
                                 const struct feed_copy *fcp, const struct url_copy *ucp)
{
    if (fcp->n == 0 && ucp->n == 0)
        return;
    static const struct {
        const char *name, *type, *help;
    } fam[] = {
        {"dotproxy_feed_serial", "gauge", "SOA serial of the zone copy in force"},
        {"dotproxy_feed_entries", "gauge", "records of the zone copy in force"},
        {"dotproxy_feed_last_success_seconds", "gauge", "Unix time of the last good pull"},
        {"dotproxy_feed_last_failure_seconds", "gauge", "Unix time of the last failed pull"},
        {"dotproxy_feed_next_refresh_seconds", "gauge", "Unix time of the next pull"},
        {"dotproxy_feed_transfers_total", "counter",
         "transfers applied, by type (axfr, ixfr; uptodate: IXFR said no change)"},
        {"dotproxy_feed_failures_total", "counter", "pulls that failed (the rules in force stay)"},
        {"dotproxy_feed_notifies_total", "counter", "NOTIFY messages accepted for the zone"},
        {"dotproxy_feed_bytes_total", "counter", "octets received in transfers"},
        {"dotproxy_feed_last_transfer_bytes", "gauge", "octets of the last transfer, by type"},
        {"dotproxy_feed_tsig_failures_total", "counter",
         "answers and NOTIFY messages whose TSIG failed (bad signature, wrong key, time)"},
    };
    for (size_t k = 0; k < sizeof fam / sizeof fam[0]; k++) {
        prom_head(b, fam[k].name, fam[k].type, fam[k].help);
        for (size_t i = 0; i < fcp->n; i++) {
            const dotproxy_feed_info *f = &fcp->f[i].i;
            const char *types[3] = {NULL, NULL, NULL};
            uint64_t v[3] = {0, 0, 0};
            switch (k) {
            case 0: v[0] = f->serial; break;
            case 1: v[0] = f->entries; break;
            case 2: v[0] = (uint64_t)f->last_ok_s; break;
            case 3: v[0] = (uint64_t)f->last_fail_s; break;
            case 4: v[0] = (uint64_t)f->next_s; break;
            case 5:
                types[0] = "axfr", types[1] = "ixfr", types[2] = "uptodate";
                v[0] = f->axfr, v[1] = f->ixfr, v[2] = f->uptodate;
                break;
            case 6: v[0] = f->failures; break;
            case 7: v[0] = f->notifies; break;
            case 8: v[0] = f->bytes; break;
            case 10: v[0] = f->tsig_failures; break;
            default:
                types[0] = "axfr", types[1] = "ixfr";
                v[0] = f->last_axfr_bytes, v[1] = f->last_ixfr_bytes;
                break;
            }
            if (k == 0 && !f->has_serial)
                continue;
            for (int t = 0; t < 3; t++) {
                if (t > 0 && types[t] == NULL)
                    break;
                buf_printf(b, "%s{feed=\"", fam[k].name);
                buf_prom_label(b, fcp->f[i].zone);
                buf_puts(b, "\",source=\"");
                buf_prom_label(b, fcp->f[i].source);
                if (types[t] != NULL)
                    buf_printf(b, "\",type=\"%s", types[t]);
                buf_printf(b, "\"} %llu\n", (unsigned long long)v[t]);
            }
        }
        render_url_samples(b, fam[k].name, k, ucp);
    }
    if (ucp->n > 0) {
        prom_head(b, "dotproxy_feed_fetches_total", "counter",
                  "fetches of lists over HTTPS, by result (200: a new copy, 304: not modified, "
                  "error: the list in force stays)");
        for (size_t i = 0; i < ucp->n; i++) {
            static const char *const results[3] = {"200", "304", "error"};
            const dotproxy_url_feed_info *f = &ucp->f[i].i;
            uint64_t v[3] = {f->fetched, f->not_modified, f->failures};
            for (int t = 0; t < 3; t++) {
                buf_puts(b, "dotproxy_feed_fetches_total{feed=\"");
                buf_prom_label(b, ucp->f[i].url);
                buf_puts(b, "\",source=\"");
                buf_prom_label(b, ucp->f[i].url);
                buf_printf(b, "\",result=\"%s\"} %llu\n", results[t], (unsigned long long)v[t]);
            }
        }
    }
    prom_head(b, "dotproxy_notify_refused_total", "counter",
              "NOTIFY messages refused: not from a configured primary of that zone");
    buf_printf(b, "dotproxy_notify_refused_total %llu\n",
               (unsigned long long)dotproxy_blocker_notify_refused(bl));
}

static void render_feed_json(struct dpd_render_buf *b, dotproxy_blocker *bl,
                             const struct feed_copy *fcp, const struct url_copy *ucp);

void dpd_render_feeds(struct dpd_render_buf *b, dotproxy_blocker *bl)
{
    struct feed_copy *fcp = calloc(1, sizeof *fcp);
    if (fcp == NULL) {
        b->failed = 1;
        return;
    }
    struct url_copy *ucp = calloc(1, sizeof *ucp);
    if (ucp == NULL) {
        free(fcp);
        b->failed = 1;
        return;
    }
    if (bl != NULL) {
        dotproxy_blocker_feeds(bl, feed_take, fcp);
        dotproxy_blocker_url_feeds(bl, url_take, ucp);
    }
    render_feed_json(b, bl, fcp, ucp);
    free(ucp);
    free(fcp);
}

static void render_feed_json(struct dpd_render_buf *b, dotproxy_blocker *bl,
                             const struct feed_copy *fcp, const struct url_copy *ucp)
{
    buf_puts(b, "{\"feeds\":[");
    for (size_t i = 0; i < fcp->n; i++) {
        const dotproxy_feed_info *f = &fcp->f[i].i;
        buf_puts(b, i > 0 ? ",\n  {" : "\n  {");
        buf_puts(b, "\"kind\":\"rpz-transfer\",\"source\":");
        buf_json_str(b, fcp->f[i].source);
        buf_puts(b, ",\"zone\":");
        buf_json_str(b, fcp->f[i].zone);
        if (f->has_serial)
            buf_printf(b, ",\"serial\":%lu", (unsigned long)f->serial);
        else
            buf_puts(b, ",\"serial\":null");
        buf_printf(b,
                   ",\"entries\":%llu,\"last_success\":%lld,\"last_failure\":%lld,"
                   "\"last_error\":",
                   (unsigned long long)f->entries, (long long)f->last_ok_s,
                   (long long)f->last_fail_s);
        buf_json_str(b, fcp->f[i].error);
        buf_printf(b,
                   ",\"next_refresh\":%lld,\"transfers\":{\"axfr\":%llu,\"ixfr\":%llu,"
                   "\"uptodate\":%llu},\"failures\":%llu,\"notifies\":%llu,\"bytes\":%llu,"
                   "\"last_axfr_bytes\":%llu,\"last_ixfr_bytes\":%llu,\"tsig_failures\":%llu}",
                   (long long)f->next_s, (unsigned long long)f->axfr, (unsigned long long)f->ixfr,
                   (unsigned long long)f->uptodate, (unsigned long long)f->failures,
                   (unsigned long long)f->notifies, (unsigned long long)f->bytes,
                   (unsigned long long)f->last_axfr_bytes, (unsigned long long)f->last_ixfr_bytes,
                   (unsigned long long)f->tsig_failures);
    }
    for (size_t i = 0; i < ucp->n; i++) {
        const dotproxy_url_feed_info *f = &ucp->f[i].i;
        buf_puts(b, fcp->n + i > 0 ? ",\n  {" : "\n  {");
        buf_puts(b, "\"kind\":\"url\",\"source\":");
        buf_json_str(b, ucp->f[i].url);
        buf_puts(b, ",\"etag\":");
        buf_json_str(b, ucp->f[i].etag);
        buf_puts(b, ",\"last_modified\":");
        buf_json_str(b, ucp->f[i].last_modified);
        buf_printf(b,
                   ",\"entries\":%llu,\"fetched\":%lld,\"last_success\":%lld,"
                   "\"last_failure\":%lld,\"last_error\":",
                   (unsigned long long)f->entries, (long long)f->fetched_s, (long long)f->last_ok_s,
                   (long long)f->last_fail_s);
        buf_json_str(b, ucp->f[i].error);
        buf_printf(b,
                   ",\"next_refresh\":%lld,\"fetches\":{\"200\":%llu,\"304\":%llu,"
                   "\"error\":%llu},\"failures\":%llu,\"bytes\":%llu,\"last_bytes\":%llu}",
                   (long long)f->next_s, (unsigned long long)f->fetched,
                   (unsigned long long)f->not_modified, (unsigned long long)f->failures,
                   (unsigned long long)f->failures, (unsigned long long)f->bytes,
                   (unsigned long long)f->last_bytes);
    }
    buf_printf(b, "%s],\"notify_refused\":%llu}\n", fcp->n + ucp->n > 0 ? "\n" : "",
               (unsigned long long)dotproxy_blocker_notify_refused(bl));
}
