/* SPDX-License-Identifier: MIT */
/* dotproxyd: the operator HTTP server (see metrics.h for the endpoints and
 * how values are aggregated over workers).
 *
 * All HTTP parsing is libmicrohttpd's; this file only routes, authorises and
 * renders. Every request is served from libmicrohttpd's single internal
 * polling thread, which reads the worker contexts through the library's
 * thread-safe operator API only. */
#include "metrics.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <microhttpd.h>

#define MAX_CONNECTIONS 32u
#define CONNECTION_TIMEOUT_S 10u
#define CONNECTION_MEMORY 16384u
#define RESPONSE_MAX ((size_t)1 << 20)
/* No endpoint reads a body; one this long is refused rather than drained. */
#define BODY_MAX 65536u
/* Upstreams aggregated over all workers (a context has at most 32). */
#define UPSTREAMS_MAX 1024u

struct dp_metrics {
    struct MHD_Daemon *mhd;
    int port;
    char *token; /* NULL: mutating calls refused */
    size_t token_len;
    dotproxy_ctx **ctxs;
    size_t n_ctxs;
    int (*reload)(void *user);
    void *user;
};

/* ---- bounded output buffer ---------------------------------------------------- */

struct buf {
    char *p;
    size_t len, cap;
    int failed; /* out of memory or over RESPONSE_MAX: the response is a 500 */
};

static int buf_reserve(struct buf *b, size_t more)
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

__attribute__((format(printf, 2, 3))) static void buf_printf(struct buf *b, const char *fmt, ...)
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

static void buf_putc(struct buf *b, char c)
{
    if (buf_reserve(b, 1) == 0)
        b->p[b->len++] = c;
}

static void buf_puts(struct buf *b, const char *s)
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
static void buf_json_str(struct buf *b, const char *s)
{
    buf_putc(b, '"');
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        switch (*p) {
        case '"':
            buf_puts(b, "\\\"");
            break;
        case '\\':
            buf_puts(b, "\\\\");
            break;
        case '\n':
            buf_puts(b, "\\n");
            break;
        case '\r':
            buf_puts(b, "\\r");
            break;
        case '\t':
            buf_puts(b, "\\t");
            break;
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
static void buf_prom_label(struct buf *b, const char *s)
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
};

/* Every worker's counters, read once per request so that one response is
 * computed from one set of readings. */
struct snapshot {
    size_t n;
    uint64_t (*ctr)[DOTPROXY_CTR_COUNT_]; /* [worker][counter] */
    uint64_t total[DOTPROXY_CTR_COUNT_];
    uint64_t latency[DOTPROXY_LATENCY_BUCKETS]; /* per bucket, summed */
};

static int snapshot_take(const struct dp_metrics *m, struct snapshot *s)
{
    memset(s, 0, sizeof *s);
    s->n = m->n_ctxs;
    s->ctr = calloc(m->n_ctxs == 0 ? 1 : m->n_ctxs, sizeof *s->ctr);
    if (s->ctr == NULL)
        return -1;
    for (size_t w = 0; w < m->n_ctxs; w++) {
        for (int c = 0; c < DOTPROXY_CTR_COUNT_; c++)
            s->ctr[w][c] = dotproxy_ctx_counter(m->ctxs[w], c);
        uint64_t lat[DOTPROXY_LATENCY_BUCKETS] = {0};
        size_t nb = dotproxy_ctx_latency_histogram(m->ctxs[w], lat, DOTPROXY_LATENCY_BUCKETS);
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

/* One upstream over all workers (rules in metrics.h). */
struct upstream_agg {
    char label[sizeof ((dotproxy_upstream_stats *)0)->label];
    unsigned workers, healthy_workers;
    unsigned consecutive_failures; /* max */
    uint64_t connections, inflight, queries, answers;
    double srtt_weighted, srtt_weight; /* over workers that measured it */
    uint64_t idle_limit_us;            /* smallest learnt, 0 = none */
};

static size_t upstreams_collect(const struct dp_metrics *m, struct upstream_agg **out)
{
    struct upstream_agg *a = NULL;
    size_t n = 0, cap = 0;
    for (size_t w = 0; w < m->n_ctxs; w++) {
        size_t count = dotproxy_ctx_upstream_count(m->ctxs[w]);
        for (size_t i = 0; i < count; i++) {
            dotproxy_upstream_stats st;
            /* The list may shrink between the two calls (a reload). */
            if (dotproxy_ctx_upstream_stats(m->ctxs[w], i, &st) != 0)
                continue;
            st.label[sizeof st.label - 1] = '\0';
            size_t k = 0;
            while (k < n && strcmp(a[k].label, st.label) != 0)
                k++;
            if (k == n) {
                if (n == UPSTREAMS_MAX)
                    continue;
                if (n == cap) {
                    size_t ncap = cap == 0 ? 8 : cap * 2;
                    struct upstream_agg *na = realloc(a, ncap * sizeof *na);
                    if (na == NULL)
                        continue;
                    a = na;
                    cap = ncap;
                }
                memset(&a[n], 0, sizeof a[n]);
                memcpy(a[n].label, st.label, sizeof a[n].label);
                n++;
            }
            struct upstream_agg *u = &a[k];
            u->workers++;
            u->healthy_workers += st.healthy != 0;
            if (st.consecutive_failures > u->consecutive_failures)
                u->consecutive_failures = st.consecutive_failures;
            u->connections += st.connections;
            u->inflight += st.inflight;
            u->queries += st.queries;
            u->answers += st.answers;
            if (st.srtt_us != 0) {
                /* Weighted by answers (the RTT samples behind it), at least
                 * 1 so a worker measured once still counts. */
                double wgt = st.answers != 0 ? (double)st.answers : 1.0;
                u->srtt_weighted += (double)st.srtt_us * wgt;
                u->srtt_weight += wgt;
            }
            if (st.idle_limit_us != 0 &&
                (u->idle_limit_us == 0 || st.idle_limit_us < u->idle_limit_us))
                u->idle_limit_us = st.idle_limit_us;
        }
    }
    *out = a;
    return n;
}

static int any_upstream_healthy(const struct dp_metrics *m)
{
    for (size_t w = 0; w < m->n_ctxs; w++) {
        size_t count = dotproxy_ctx_upstream_count(m->ctxs[w]);
        for (size_t i = 0; i < count; i++) {
            dotproxy_upstream_stats st;
            if (dotproxy_ctx_upstream_stats(m->ctxs[w], i, &st) == 0 && st.healthy)
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
    const char *label; /* the label name, NULL when none */
    struct prom_sample s[4];
};

#define NO_LABEL(c)                                                                               \
    {                                                                                             \
        {(c), NULL }, { -1, NULL }                                                                \
    }

/* Counters summed over the workers (the reload counter: see metrics.h).
 * A sample list ends at ctr -1 or after four. */
static const struct prom_family prom_families[] = {
    {"dotproxy_queries_total", "counter", "DNS queries received, by transport", "transport",
     {{DOTPROXY_CTR_QUERIES_UDP, "udp"},
      {DOTPROXY_CTR_QUERIES_TCP, "tcp"},
      {DOTPROXY_CTR_QUERIES_API, "api"},
      {-1, NULL}}},
    {"dotproxy_answers_total", "counter", "Upstream answers passed to clients", NULL,
     NO_LABEL(DOTPROXY_CTR_ANSWERS)},
    {"dotproxy_generated_responses_total", "counter",
     "Error responses made by the proxy itself, by RCODE", "rcode",
     {{DOTPROXY_CTR_SERVFAIL, "SERVFAIL"}, {DOTPROXY_CTR_FORMERR, "FORMERR"}, {-1, NULL}}},
    {"dotproxy_client_messages_rejected_total", "counter",
     "Client messages not served: unanswerable (no header, a response, too long, "
     "reply undeliverable), refused by the access list, over the rate limit, or over the "
     "client's in-flight cap",
     "reason",
     {{DOTPROXY_CTR_DROPPED, "unanswerable"},
      {DOTPROXY_CTR_REFUSED_ACL, "acl"},
      {DOTPROXY_CTR_RATE_LIMITED, "rate_limit"},
      {DOTPROXY_CTR_CLIENT_INFLIGHT_CAP, "client_inflight_cap"}}},
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
    {"dotproxy_tls_closed_total", "counter",
     "Upstream connections closed, by the upstream (peer) or by us as idle", "by",
     {{DOTPROXY_CTR_TLS_CLOSED_BY_PEER, "peer"}, {DOTPROXY_CTR_TLS_CLOSED_IDLE, "idle"}, {-1, NULL}}},
    {"dotproxy_upstream_bad_answers_total", "counter",
     "Upstream answers with an unknown ID or the wrong question", NULL,
     NO_LABEL(DOTPROXY_CTR_UPSTREAM_BAD_ANSWERS)},
    {"dotproxy_tcp_clients_total", "counter", "TCP clients accepted", NULL,
     NO_LABEL(DOTPROXY_CTR_TCP_CLIENTS)},
    {"dotproxy_queries_inflight", "gauge", "Queries waiting for an answer now", NULL,
     NO_LABEL(DOTPROXY_CTR_INFLIGHT)},
    {"dotproxy_cache_hits_total", "counter", "Queries answered from the cache", NULL,
     NO_LABEL(DOTPROXY_CTR_CACHE_HITS)},
    {"dotproxy_cache_misses_total", "counter", "Cacheable queries the cache could not answer",
     NULL, NO_LABEL(DOTPROXY_CTR_CACHE_MISSES)},
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

static void prom_head(struct buf *b, const char *name, const char *type, const char *help)
{
    /* HELP text needs '\' and line feeds escaped; ours has neither. */
    buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Seconds from microseconds, as short as exact ("0.0005", "2.5"). */
static void buf_seconds(struct buf *b, uint64_t us)
{
    buf_printf(b, "%.9g", (double)us / 1e6);
}

static void render_metrics(const struct dp_metrics *m, const struct snapshot *s, struct buf *b)
{
    prom_head(b, "dotproxy_build_info", "gauge", "Always 1; the library version as a label");
    buf_printf(b, "dotproxy_build_info{version=\"");
    buf_prom_label(b, dotproxy_version());
    buf_printf(b, "\"} 1\n");
    prom_head(b, "dotproxy_workers", "gauge", "Worker contexts (threads) serving queries");
    buf_printf(b, "dotproxy_workers %zu\n", m->n_ctxs);

    for (size_t f = 0; f < sizeof prom_families / sizeof prom_families[0]; f++) {
        const struct prom_family *pf = &prom_families[f];
        prom_head(b, pf->name, pf->type, pf->help);
        for (size_t i = 0; i < 4 && pf->s[i].ctr >= 0; i++) {
            if (pf->label != NULL)
                buf_printf(b, "%s{%s=\"%s\"} %" PRIu64 "\n", pf->name, pf->label,
                           pf->s[i].label_value, s->total[pf->s[i].ctr]);
            else
                buf_printf(b, "%s %" PRIu64 "\n", pf->name, s->total[pf->s[i].ctr]);
        }
    }

    /* No _sum: the library counts answers per bucket but does not add up
     * their latencies, and a sum estimated from bucket bounds would be a
     * made-up number. Quantiles (histogram_quantile) need only the buckets;
     * the text format lets a histogram go without _sum. */
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

    struct upstream_agg *ua = NULL;
    size_t nu = upstreams_collect(m, &ua);
    static const struct {
        const char *name, *type, *help;
    } ufam[] = {
        {"dotproxy_upstream_healthy", "gauge",
         "1 when the upstream is usable in at least one worker (not backing off after failed "
         "connects)"},
        {"dotproxy_upstream_srtt_seconds", "gauge",
         "Smoothed answer round trip (answer-weighted mean over workers; absent until measured)"},
        {"dotproxy_upstream_connections", "gauge", "Open TLS connections to the upstream"},
        {"dotproxy_upstream_inflight", "gauge", "Queries on the wire to the upstream now"},
        {"dotproxy_upstream_consecutive_failures", "gauge",
         "Consecutive failed connects (the most in any worker)"},
        {"dotproxy_upstream_idle_limit_seconds", "gauge",
         "Idle time after which the upstream closes connections, as learnt (smallest over "
         "workers; absent until learnt)"},
        {"dotproxy_upstream_queries_total", "counter", "Queries sent to the upstream"},
        {"dotproxy_upstream_answers_total", "counter", "Answers received from the upstream"},
    };
    for (size_t f = 0; f < sizeof ufam / sizeof ufam[0]; f++) {
        prom_head(b, ufam[f].name, ufam[f].type, ufam[f].help);
        for (size_t k = 0; k < nu; k++) {
            const struct upstream_agg *u = &ua[k];
            if ((f == 1 && u->srtt_weight == 0) || (f == 5 && u->idle_limit_us == 0))
                continue;
            buf_printf(b, "%s{upstream=\"", ufam[f].name);
            buf_prom_label(b, u->label);
            buf_puts(b, "\"} ");
            switch (f) {
            case 0:
                buf_printf(b, "%d", u->healthy_workers > 0);
                break;
            case 1:
                buf_printf(b, "%.9g", u->srtt_weighted / u->srtt_weight / 1e6);
                break;
            case 2:
                buf_printf(b, "%" PRIu64, u->connections);
                break;
            case 3:
                buf_printf(b, "%" PRIu64, u->inflight);
                break;
            case 4:
                buf_printf(b, "%u", u->consecutive_failures);
                break;
            case 5:
                buf_seconds(b, u->idle_limit_us);
                break;
            case 6:
                buf_printf(b, "%" PRIu64, u->queries);
                break;
            default:
                buf_printf(b, "%" PRIu64, u->answers);
                break;
            }
            buf_putc(b, '\n');
        }
    }
    free(ua);
}

/* ---- JSON API ---------------------------------------------------------------------- */

static void json_counters(struct buf *b, const uint64_t *v)
{
    buf_putc(b, '{');
    for (int c = 0; c < DOTPROXY_CTR_COUNT_; c++)
        buf_printf(b, "%s\"%s\":%" PRIu64, c == 0 ? "" : ",", counter_names[c], v[c]);
    buf_putc(b, '}');
}

static void render_stats(const struct dp_metrics *m, const struct snapshot *s, struct buf *b)
{
    buf_puts(b, "{\"version\":");
    buf_json_str(b, dotproxy_version());
    buf_printf(b, ",\"workers\":%zu,\"counters\":", m->n_ctxs);
    json_counters(b, s->total);
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
        buf_printf(b, "%s%" PRIu64, i == 0 ? "" : ",", s->latency[i]);
    buf_puts(b, "]},\"per_worker\":[");
    for (size_t w = 0; w < s->n; w++) {
        buf_printf(b, "%s{\"worker\":%zu,\"counters\":", w == 0 ? "" : ",", w);
        json_counters(b, s->ctr[w]);
        buf_putc(b, '}');
    }
    buf_puts(b, "]}\n");
}

static void render_upstreams(const struct dp_metrics *m, struct buf *b)
{
    struct upstream_agg *ua = NULL;
    size_t nu = upstreams_collect(m, &ua);
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
        if (u->srtt_weight == 0)
            buf_puts(b, "null");
        else
            buf_printf(b, "%.9g", u->srtt_weighted / u->srtt_weight / 1e6);
        buf_puts(b, ",\"idle_limit_seconds\":");
        if (u->idle_limit_us == 0)
            buf_puts(b, "null");
        else
            buf_seconds(b, u->idle_limit_us);
        buf_putc(b, '}');
    }
    buf_puts(b, "]\n");
    free(ua);
}

/* ---- the status page ------------------------------------------------------------------ */

/* Static, no external resource; script and style are separate resources so
 * the Content-Security-Policy can stay without 'unsafe-inline'. The script
 * writes only with textContent: labels never become markup. */
static const char status_html[] =
    "<!DOCTYPE html>\n"
    "<html lang=\"en\">\n"
    "<head>\n"
    "<meta charset=\"utf-8\">\n"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
    "<title>dotproxyd status</title>\n"
    "<link rel=\"stylesheet\" href=\"/status.css\">\n"
    "<script src=\"/status.js\" defer></script>\n"
    "</head>\n"
    "<body>\n"
    "<header><h1>dotproxyd</h1><span id=\"state\" class=\"state\">loading&hellip;</span></header>\n"
    "<section class=\"cards\">\n"
    "<div class=\"card\"><div class=\"k\">Queries/s</div><div class=\"v\" id=\"qps\">&ndash;</div></div>\n"
    "<div class=\"card\"><div class=\"k\">Queries</div><div class=\"v\" id=\"queries\">&ndash;</div></div>\n"
    "<div class=\"card\"><div class=\"k\">Answers</div><div class=\"v\" id=\"answers\">&ndash;</div></div>\n"
    "<div class=\"card\"><div class=\"k\">Cache hit ratio</div><div class=\"v\" id=\"hit-ratio\">&ndash;</div></div>\n"
    "<div class=\"card\"><div class=\"k\">In flight</div><div class=\"v\" id=\"inflight\">&ndash;</div></div>\n"
    "<div class=\"card\"><div class=\"k\">SERVFAIL made</div><div class=\"v\" id=\"servfail\">&ndash;</div></div>\n"
    "<div class=\"card\"><div class=\"k\">Cache entries</div><div class=\"v\" id=\"cache-entries\">&ndash;</div></div>\n"
    "<div class=\"card\"><div class=\"k\">Workers</div><div class=\"v\" id=\"workers\">&ndash;</div></div>\n"
    "</section>\n"
    "<h2>Upstreams</h2>\n"
    "<table>\n"
    "<thead><tr><th>Upstream</th><th>Health</th><th>SRTT</th><th>Connections</th>"
    "<th>In flight</th><th>Queries</th><th>Answers</th><th>Failures</th></tr></thead>\n"
    "<tbody id=\"upstreams\"></tbody>\n"
    "</table>\n"
    "<footer>Polled every 2 s from <a href=\"/api/v1/stats\">/api/v1/stats</a> and "
    "<a href=\"/api/v1/upstreams\">/api/v1/upstreams</a>; "
    "<a href=\"/metrics\">Prometheus metrics</a>.</footer>\n"
    "</body>\n"
    "</html>\n";

static const char status_css[] =
    "body{font-family:system-ui,sans-serif;margin:1.5em;color:#1d2329;background:#f6f7f9}\n"
    "header{display:flex;align-items:baseline;gap:1em}\n"
    "h1{margin:0;font-size:1.6em}h2{font-size:1.2em;margin-top:1.5em}\n"
    ".state{color:#555}.state.bad{color:#b3261e;font-weight:bold}\n"
    ".cards{display:flex;flex-wrap:wrap;gap:.8em;margin-top:1em}\n"
    ".card{background:#fff;border:1px solid #d8dde3;border-radius:6px;padding:.6em 1em;"
    "min-width:9em}\n"
    ".k{font-size:.8em;color:#5b6670;text-transform:uppercase;letter-spacing:.04em}\n"
    ".v{font-size:1.6em;font-variant-numeric:tabular-nums}\n"
    "table{border-collapse:collapse;background:#fff;border:1px solid #d8dde3}\n"
    "th,td{padding:.35em .8em;border-bottom:1px solid #e6e9ed;text-align:right}\n"
    "th:first-child,td:first-child{text-align:left}td:first-child{font-family:monospace}\n"
    "td.up{color:#1b7a32;font-weight:bold}td.down{color:#b3261e;font-weight:bold}\n"
    "footer{margin-top:2em;font-size:.85em;color:#5b6670}\n";

static const char status_js[] =
    "'use strict';\n"
    "(function () {\n"
    "  var prev = null;\n"
    "  function text(id, v) { document.getElementById(id).textContent = v; }\n"
    "  function total(c) { return c.queries_udp + c.queries_tcp + c.queries_api; }\n"
    "  function getJSON(path) {\n"
    "    return fetch(path, {cache: 'no-store'}).then(function (r) {\n"
    "      if (!r.ok) throw new Error(path + ': HTTP ' + r.status);\n"
    "      return r.json();\n"
    "    });\n"
    "  }\n"
    "  function showStats(s) {\n"
    "    var c = s.counters, now = Date.now(), q = total(c);\n"
    "    if (prev !== null && now > prev.t && q >= prev.q)\n"
    "      text('qps', ((q - prev.q) * 1000 / (now - prev.t)).toFixed(1));\n"
    "    prev = {t: now, q: q};\n"
    "    text('queries', String(q));\n"
    "    text('answers', String(c.answers));\n"
    "    var looked = c.cache_hits + c.cache_misses;\n"
    "    text('hit-ratio', looked > 0 ? (100 * c.cache_hits / looked).toFixed(1) + ' %' : "
    "'\\u2013');\n"
    "    text('inflight', String(c.inflight));\n"
    "    text('servfail', String(c.servfail));\n"
    "    text('cache-entries', String(c.cache_entries));\n"
    "    text('workers', String(s.workers));\n"
    "  }\n"
    "  function cell(tr, v, cls) {\n"
    "    var td = document.createElement('td');\n"
    "    td.textContent = v;\n"
    "    if (cls) td.className = cls;\n"
    "    tr.appendChild(td);\n"
    "  }\n"
    "  function showUpstreams(list) {\n"
    "    var body = document.getElementById('upstreams');\n"
    "    while (body.firstChild) body.removeChild(body.firstChild);\n"
    "    list.forEach(function (u) {\n"
    "      var tr = document.createElement('tr');\n"
    "      tr.setAttribute('data-upstream', u.upstream);\n"
    "      cell(tr, u.upstream);\n"
    "      cell(tr, (u.healthy ? 'up' : 'down') + ' (' + u.healthy_workers + '/' + u.workers + ')',"
    " u.healthy ? 'up' : 'down');\n"
    "      cell(tr, u.srtt_seconds === null ? '\\u2013' : (u.srtt_seconds * 1000).toFixed(2) + "
    "' ms');\n"
    "      cell(tr, String(u.connections));\n"
    "      cell(tr, String(u.inflight));\n"
    "      cell(tr, String(u.queries));\n"
    "      cell(tr, String(u.answers));\n"
    "      cell(tr, String(u.consecutive_failures));\n"
    "      body.appendChild(tr);\n"
    "    });\n"
    "  }\n"
    "  function poll() {\n"
    "    Promise.all([getJSON('/api/v1/stats'), getJSON('/api/v1/upstreams')]).then(function (r) "
    "{\n"
    "      showStats(r[0]);\n"
    "      showUpstreams(r[1]);\n"
    "      var st = document.getElementById('state');\n"
    "      st.className = 'state';\n"
    "      st.textContent = 'updated ' + new Date().toLocaleTimeString();\n"
    "    }).catch(function (e) {\n"
    "      var st = document.getElementById('state');\n"
    "      st.className = 'state bad';\n"
    "      st.textContent = 'cannot reach dotproxyd (' + e.message + ')';\n"
    "    });\n"
    "  }\n"
    "  poll();\n"
    "  setInterval(poll, 2000);\n"
    "})();\n";

/* ---- HTTP plumbing ------------------------------------------------------------------------ */

#define CSP                                                                                       \
    "default-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; "           \
    "object-src 'none'"

struct header {
    const char *name, *value;
};

/* Queue a response. body is copied (or, with persistent set, a static
 * string); extra is a list of headers ending with a NULL name. */
static enum MHD_Result respond(struct MHD_Connection *c, unsigned status, const char *ctype,
                               const char *body, size_t len, int persistent,
                               const struct header *extra)
{
    /* The cast drops const only because the 0.9.x API takes void *;
     * libmicrohttpd never writes to a persistent buffer. */
    struct MHD_Response *r = MHD_create_response_from_buffer(
        len, (void *)(uintptr_t)body, persistent ? MHD_RESPMEM_PERSISTENT : MHD_RESPMEM_MUST_COPY);
    if (r == NULL)
        return MHD_NO;
    int ok = MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype) == MHD_YES &&
             MHD_add_response_header(r, "X-Content-Type-Options", "nosniff") == MHD_YES &&
             MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store") == MHD_YES;
    for (const struct header *h = extra; ok && h != NULL && h->name != NULL; h++)
        ok = MHD_add_response_header(r, h->name, h->value) == MHD_YES;
    enum MHD_Result rc = ok ? MHD_queue_response(c, status, r) : MHD_NO;
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result respond_text(struct MHD_Connection *c, unsigned status, const char *msg,
                                    const struct header *extra)
{
    return respond(c, status, "text/plain; charset=utf-8", msg, strlen(msg), 0, extra);
}

static enum MHD_Result respond_json_error(struct MHD_Connection *c, unsigned status,
                                          const char *msg, const struct header *extra)
{
    struct buf b = {0};
    buf_puts(&b, "{\"error\":");
    buf_json_str(&b, msg);
    buf_puts(&b, "}\n");
    enum MHD_Result rc =
        b.failed ? MHD_NO
                 : respond(c, status, "application/json", b.p, b.len, 0, extra);
    free(b.p);
    return rc;
}

static enum MHD_Result respond_buf(struct MHD_Connection *c, const char *ctype, struct buf *b)
{
    enum MHD_Result rc = b->failed ? respond_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR,
                                                  "response too large or out of memory\n", NULL)
                                   : respond(c, MHD_HTTP_OK, ctype, b->p, b->len, 0, NULL);
    free(b->p);
    b->p = NULL;
    return rc;
}

/* Equal in time independent of where the strings differ: the loop runs
 * over the whole secret whatever is given (its length is no secret worth
 * the name, the content is). */
static int token_equal(const char *given, size_t given_len, const char *secret, size_t secret_len)
{
    volatile unsigned char diff = (unsigned char)(given_len != secret_len);
    for (size_t i = 0; i < secret_len; i++) {
        unsigned char g = i < given_len ? (unsigned char)given[i] : 0;
        diff |= (unsigned char)(g ^ (unsigned char)secret[i]);
    }
    return diff == 0;
}

/* 0 when the request carries the right bearer token (RFC 6750 section 2.1),
 * else the response (403/401) has been queued and *rc says how it went. */
static int authorise(const struct dp_metrics *m, struct MHD_Connection *c, enum MHD_Result *rc)
{
    if (m->token == NULL) {
        *rc = respond_json_error(c, MHD_HTTP_FORBIDDEN, "no API token configured", NULL);
        return -1;
    }
    const char *h =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    /* The scheme name is case-insensitive (RFC 9110 section 11.1). */
    if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0) {
        static const struct header hdr[] = {
            {MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"dotproxyd\""}, {NULL, NULL}};
        *rc = respond_json_error(c, MHD_HTTP_UNAUTHORIZED, "bearer token required", hdr);
        return -1;
    }
    const char *t = h + 7;
    while (*t == ' ')
        t++;
    size_t n = strlen(t);
    while (n > 0 && (t[n - 1] == ' ' || t[n - 1] == '\t'))
        n--;
    if (!token_equal(t, n, m->token, m->token_len)) {
        static const struct header hdr[] = {
            {MHD_HTTP_HEADER_WWW_AUTHENTICATE,
             "Bearer realm=\"dotproxyd\", error=\"invalid_token\""},
            {NULL, NULL}};
        *rc = respond_json_error(c, MHD_HTTP_UNAUTHORIZED, "invalid token", hdr);
        return -1;
    }
    return 0;
}

/* ---- endpoints ------------------------------------------------------------------------------ */

static enum MHD_Result get_page(struct dp_metrics *m, struct MHD_Connection *c)
{
    (void)m;
    static const struct header hdr[] = {
        {"Content-Security-Policy", CSP}, {"X-Frame-Options", "DENY"},
        {"Referrer-Policy", "no-referrer"}, {NULL, NULL}};
    return respond(c, MHD_HTTP_OK, "text/html; charset=utf-8", status_html,
                   sizeof status_html - 1, 1, hdr);
}

static enum MHD_Result get_js(struct dp_metrics *m, struct MHD_Connection *c)
{
    (void)m;
    return respond(c, MHD_HTTP_OK, "text/javascript; charset=utf-8", status_js,
                   sizeof status_js - 1, 1, NULL);
}

static enum MHD_Result get_css(struct dp_metrics *m, struct MHD_Connection *c)
{
    (void)m;
    return respond(c, MHD_HTTP_OK, "text/css; charset=utf-8", status_css, sizeof status_css - 1,
                   1, NULL);
}

static enum MHD_Result get_metrics(struct dp_metrics *m, struct MHD_Connection *c)
{
    struct snapshot s;
    if (snapshot_take(m, &s) != 0)
        return respond_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n", NULL);
    struct buf b = {0};
    render_metrics(m, &s, &b);
    snapshot_free(&s);
    return respond_buf(c, "text/plain; version=0.0.4; charset=utf-8", &b);
}

static enum MHD_Result get_health(struct dp_metrics *m, struct MHD_Connection *c)
{
    if (any_upstream_healthy(m))
        return respond_text(c, MHD_HTTP_OK, "ok\n", NULL);
    return respond_text(c, MHD_HTTP_SERVICE_UNAVAILABLE, "no healthy upstream\n", NULL);
}

static enum MHD_Result get_stats(struct dp_metrics *m, struct MHD_Connection *c)
{
    struct snapshot s;
    if (snapshot_take(m, &s) != 0)
        return respond_json_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory", NULL);
    struct buf b = {0};
    render_stats(m, &s, &b);
    snapshot_free(&s);
    return respond_buf(c, "application/json", &b);
}

static enum MHD_Result get_upstreams(struct dp_metrics *m, struct MHD_Connection *c)
{
    struct buf b = {0};
    render_upstreams(m, &b);
    return respond_buf(c, "application/json", &b);
}

static enum MHD_Result post_cache_flush(struct dp_metrics *m, struct MHD_Connection *c)
{
    enum MHD_Result rc;
    if (authorise(m, c, &rc) != 0)
        return rc;
    for (size_t w = 0; w < m->n_ctxs; w++)
        dotproxy_ctx_cache_flush(m->ctxs[w]);
    char body[64];
    snprintf(body, sizeof body, "{\"flushed_workers\":%zu}\n", m->n_ctxs);
    return respond(c, MHD_HTTP_OK, "application/json", body, strlen(body), 0, NULL);
}

static enum MHD_Result post_reload(struct dp_metrics *m, struct MHD_Connection *c)
{
    enum MHD_Result rc;
    if (authorise(m, c, &rc) != 0)
        return rc;
    if (m->reload == NULL)
        return respond_json_error(c, MHD_HTTP_NOT_IMPLEMENTED, "reload not available", NULL);
    if (m->reload(m->user) != 0)
        return respond_json_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR,
                                  "reload failed: the configuration in force is unchanged",
                                  NULL);
    static const char ok[] = "{\"reloaded\":true}\n";
    return respond(c, MHD_HTTP_OK, "application/json", ok, sizeof ok - 1, 1, NULL);
}

struct route {
    const char *path;
    int post; /* 0: GET (and HEAD); 1: POST */
    enum MHD_Result (*fn)(struct dp_metrics *m, struct MHD_Connection *c);
};

static const struct route routes[] = {
    {"/", 0, get_page},
    {"/status.js", 0, get_js},
    {"/status.css", 0, get_css},
    {"/metrics", 0, get_metrics},
    {"/health", 0, get_health},
    {"/api/v1/stats", 0, get_stats},
    {"/api/v1/upstreams", 0, get_upstreams},
    {"/api/v1/cache/flush", 1, post_cache_flush},
    {"/api/v1/reload", 1, post_reload},
};

/* Per request: how much body has been thrown away. */
struct request {
    size_t body;
};

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **req_cls)
{
    struct dp_metrics *m = cls;
    (void)version;
    (void)upload_data;
    struct request *rq = *req_cls;
    if (rq == NULL) {
        /* First call: headers only. Answer once the body (if any) is in,
         * so keep-alive connections stay in step. */
        if ((rq = calloc(1, sizeof *rq)) == NULL)
            return MHD_NO;
        *req_cls = rq;
        return MHD_YES;
    }
    if (*upload_data_size != 0) {
        rq->body += *upload_data_size;
        *upload_data_size = 0;
        if (rq->body > BODY_MAX)
            return MHD_NO; /* closes the connection */
        return MHD_YES;
    }

    const struct route *r = NULL;
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
        if (strcmp(url, routes[i].path) == 0)
            r = &routes[i];
    int api = strncmp(url, "/api/", 5) == 0;
    if (r == NULL)
        return api ? respond_json_error(c, MHD_HTTP_NOT_FOUND, "no such endpoint", NULL)
                   : respond_text(c, MHD_HTTP_NOT_FOUND, "not found\n", NULL);
    int ok = r->post ? strcmp(method, MHD_HTTP_METHOD_POST) == 0
                     : strcmp(method, MHD_HTTP_METHOD_GET) == 0 ||
                           strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
    if (!ok) {
        const struct header hdr[] = {{MHD_HTTP_HEADER_ALLOW, r->post ? "POST" : "GET, HEAD"},
                                     {NULL, NULL}};
        return api ? respond_json_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed", hdr)
                   : respond_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n", hdr);
    }
    return r->fn(m, c);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    free(*req_cls);
    *req_cls = NULL;
}

/* ---- start and stop ----------------------------------------------------------------------- */

/* "ADDR@PORT" or "PORT"; ADDR an IPv4 or IPv6 literal, the latter
 * optionally in brackets. */
static int parse_listen(const char *spec, struct sockaddr_storage *ss, socklen_t *sslen,
                        char *err, size_t errlen)
{
    if (spec == NULL || *spec == '\0') {
        snprintf(err, errlen, "empty listen address");
        return -1;
    }
    const char *const whole = spec;
    const char *at = strrchr(spec, '@');
    const char *port_s = at != NULL ? at + 1 : spec;
    char addr[INET6_ADDRSTRLEN + 2];
    if (at == NULL) {
        snprintf(addr, sizeof addr, "127.0.0.1");
    } else {
        size_t n = (size_t)(at - spec);
        if (n >= 2 && spec[0] == '[' && spec[n - 1] == ']') {
            spec++;
            n -= 2;
        }
        if (n == 0 || n >= sizeof addr) {
            snprintf(err, errlen, "bad listen address '%s' (want ADDR@PORT or PORT)",
                     whole);
            return -1;
        }
        memcpy(addr, spec, n);
        addr[n] = '\0';
    }
    unsigned long port = 0;
    size_t digits = strspn(port_s, "0123456789");
    if (digits == 0 || digits > 5 || port_s[digits] != '\0' ||
        (port = strtoul(port_s, NULL, 10)) > 65535) {
        snprintf(err, errlen, "bad port '%s' in listen address (want 0..65535)", port_s);
        return -1;
    }
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, addr, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        *sslen = sizeof *v4;
    } else if (inet_pton(AF_INET6, addr, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        *sslen = sizeof *v6;
    } else {
        snprintf(err, errlen, "bad listen address '%s' (not an IPv4 or IPv6 literal)",
                 addr);
        return -1;
    }
    return 0;
}

/* The socket is made here, not by libmicrohttpd, so that a failure can say
 * exactly what went wrong (libmicrohttpd only returns NULL). */
static int open_listener(const char *spec, int *port, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t sslen;
    if (parse_listen(spec, &ss, &sslen, err, errlen) != 0)
        return -1;
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket for %s: %s", spec, strerror(errno));
        return -1;
    }
    int on = 1;
    /* A restarted daemon must rebind while old connections sit in
     * TIME_WAIT; this does not allow two listeners on one port. */
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    if (ss.ss_family == AF_INET6)
        (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on);
    if (bind(fd, (struct sockaddr *)&ss, sslen) != 0) {
        snprintf(err, errlen, "cannot bind %s: %s", spec, strerror(errno));
        close(fd);
        return -1;
    }
    if (listen(fd, (int)MAX_CONNECTIONS) != 0) {
        snprintf(err, errlen, "cannot listen on %s: %s", spec, strerror(errno));
        close(fd);
        return -1;
    }
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0) {
        snprintf(err, errlen, "getsockname for %s: %s", spec, strerror(errno));
        close(fd);
        return -1;
    }
    *port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                          : ((struct sockaddr_in6 *)&ss)->sin6_port);
    return fd;
}

static void metrics_free(struct dp_metrics *m)
{
    if (m == NULL)
        return;
    if (m->token != NULL) {
        explicit_bzero(m->token, m->token_len);
        free(m->token);
    }
    free(m->ctxs);
    free(m);
}

int dp_metrics_start(struct dp_metrics **out, const struct dp_metrics_opts *o, char *err,
                     size_t errlen)
{
    char dummy[1];
    if (err == NULL || errlen == 0) {
        err = dummy;
        errlen = sizeof dummy;
    }
    err[0] = '\0';
    if (out == NULL || o == NULL || (o->n_ctxs != 0 && o->ctxs == NULL)) {
        snprintf(err, errlen, "invalid arguments");
        return -1;
    }
    struct dp_metrics *m = calloc(1, sizeof *m);
    if (m == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    m->n_ctxs = o->n_ctxs;
    m->ctxs = calloc(o->n_ctxs == 0 ? 1 : o->n_ctxs, sizeof *m->ctxs);
    if (m->ctxs == NULL)
        goto oom;
    if (o->n_ctxs != 0)
        memcpy(m->ctxs, o->ctxs, o->n_ctxs * sizeof *m->ctxs);
    if (o->token != NULL && o->token[0] != '\0') {
        m->token_len = strlen(o->token);
        if ((m->token = strdup(o->token)) == NULL)
            goto oom;
    }
    m->reload = o->reload;
    m->user = o->user;

    int fd = open_listener(o->listen, &m->port, err, errlen);
    if (fd < 0) {
        metrics_free(m);
        return -1;
    }
    m->mhd = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL, 0, NULL, NULL, on_request, m,
        MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd, MHD_OPTION_CONNECTION_LIMIT, MAX_CONNECTIONS,
        MHD_OPTION_CONNECTION_TIMEOUT, CONNECTION_TIMEOUT_S, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)CONNECTION_MEMORY, MHD_OPTION_NOTIFY_COMPLETED, on_completed, (void *)NULL,
        MHD_OPTION_END);
    if (m->mhd == NULL) {
        snprintf(err, errlen, "libmicrohttpd could not start on %s", o->listen);
        /* fd is not closed here: depending on where it failed,
         * libmicrohttpd 0.9.x has closed it already, and closing a number
         * another thread may have reused is worse than leaking one
         * descriptor on an error that stops the daemon anyway. */
        metrics_free(m);
        return -1;
    }
    *out = m;
    return 0;
oom:
    snprintf(err, errlen, "out of memory");
    metrics_free(m);
    return -1;
}

int dp_metrics_port(const struct dp_metrics *m)
{
    return m != NULL ? m->port : -1;
}

void dp_metrics_stop(struct dp_metrics *m)
{
    if (m == NULL)
        return;
    /* Joins the polling thread and closes the listening socket too. */
    MHD_stop_daemon(m->mhd);
    metrics_free(m);
}
