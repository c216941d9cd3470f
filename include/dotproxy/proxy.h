/* SPDX-License-Identifier: MIT */
/* libdotproxy: the proxy context.
 *
 * One context = one event loop = one thread at a time. A context owns its
 * listening sockets, its TLS connection pool to the upstreams and its timers;
 * it never creates a thread. Run several contexts in parallel (one per thread,
 * with dotproxy_config_set_reuseport) to use several cores.
 *
 * Thread rules: every function is called from the thread driving the
 * context, except these, which are safe from any thread:
 *   dotproxy_ctx_reload, dotproxy_ctx_cache_flush, dotproxy_ctx_counter,
 *   dotproxy_ctx_upstream_stats, dotproxy_ctx_upstream_stats_sized,
 *   dotproxy_ctx_upstream_count, dotproxy_ctx_latency_histogram,
 *   dotproxy_ctx_dynblocks, dotproxy_ctx_dynblock_clear,
 *   dotproxy_ctx_stop, dotproxy_ctx_wakeup.
 * Of these, only dotproxy_ctx_stop and dotproxy_ctx_wakeup are also safe
 * from a signal handler. (tests/docs/check_docs.py holds this list to the
 * "Safe from any thread" notes on the functions below.) */
#ifndef DOTPROXY_PROXY_H
#define DOTPROXY_PROXY_H

#include <stddef.h>
#include <stdint.h>

#include "dotproxy/config.h"
#include "dotproxy/export.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dotproxy_ctx dotproxy_ctx;

/* Create a context from cfg (copied: cfg may be freed afterwards), load the
 * TLS trust anchors and bind every listen address (UDP and TCP).
 * Returns 0, DOTPROXY_EINVAL (NULL, or no upstream configured),
 * DOTPROXY_ENOMEM, DOTPROXY_ETLS (CA file unreadable or empty, bad priority
 * string) or DOTPROXY_EBIND (an address could not be bound; the log callback
 * says which and why, and dotproxy_ctx_new_why() returns it). *out is
 * written only on success. */
DOTPROXY_EXPORT int dotproxy_ctx_new(dotproxy_ctx **out, const dotproxy_config *cfg);

/* dotproxy_ctx_new(), and on failure the reason as one line of text in
 * why[0..cap) (NUL-terminated, cut to fit): the error the context met, as
 * it would have logged it ("cannot listen on 127.0.0.1@53 (UDP): Address
 * already in use", "TLS priority string rejected at 'FOO': ..."), whether or
 * not a log callback is set; the code's dotproxy_strerror() text when there
 * is nothing more to say. why is emptied on success. Same return values. */
DOTPROXY_EXPORT int dotproxy_ctx_new_why(dotproxy_ctx **out, const dotproxy_config *cfg, char *why,
                                         size_t cap);

/* The last error a running context met and logged (at DOTPROXY_LOG_ERR,
 * kept whether or not a log callback is set: e.g. a reload whose TLS
 * settings could not be loaded) into buf[0..cap), NUL-terminated. Returns
 * its length (0: none so far; may exceed cap - 1 when cut), or
 * DOTPROXY_EINVAL. From the thread driving the context. */
DOTPROXY_EXPORT int dotproxy_ctx_last_error(const dotproxy_ctx *ctx, char *buf, size_t cap);

/* Close every socket and free the context. NULL-safe. Queries still in
 * flight are dropped without an answer; call dotproxy_ctx_stop() and run the
 * loop until it returns to let them finish first. */
DOTPROXY_EXPORT void dotproxy_ctx_free(dotproxy_ctx *ctx);

/* The port the index-th listen address is bound to (useful with port 0), or
 * DOTPROXY_EINVAL. */
DOTPROXY_EXPORT int dotproxy_ctx_listen_port(const dotproxy_ctx *ctx, size_t index);

/* Called with the answer to a query sent by dotproxy_ctx_query(): rcode >= 0
 * and the answer (ID restored to the query's) on success, or a negative
 * dotproxy_error with answer NULL when none could be had (deadline passed,
 * every upstream failed, context freed or stopped). Called exactly once, from
 * inside dotproxy_ctx_process() or dotproxy_ctx_free(). The answer is
 * borrowed for the duration of the call. The callback may call
 * dotproxy_ctx_query() on the same context (a follow-up query, e.g. after a
 * CNAME): the new query is queued and enters the pipeline at the next turn
 * (due at once), so its own callback is never called from inside this one.
 * The callback must not free the context. */
typedef void (*dotproxy_answer_fn)(int rcode, const uint8_t *answer, size_t len, void *user);

/* Send one DNS query (a whole message, copied) through the context's TLS
 * pool, as if a client had asked. Returns 0 (cb will be called) or
 * DOTPROXY_EINVAL, DOTPROXY_EMALFORMED (query does not parse or is not a
 * query), DOTPROXY_ELIMIT (too many queries in flight), DOTPROXY_ESTATE
 * (stopping). Not thread-safe: call from the thread driving ctx. */
DOTPROXY_EXPORT int dotproxy_ctx_query(dotproxy_ctx *ctx, const uint8_t *query, size_t len,
                                       dotproxy_answer_fn cb, void *user);

/* Replace the context's configuration while it runs. cfg is copied now and
 * applied by the thread driving the context at its next turn (it is woken).
 * What is kept: listening sockets (a changed listen list is ignored, with a
 * warning: changing it needs a new context), and the warm TLS connections and
 * health of every upstream whose address, name and pins are unchanged, as
 * long as the CA file and TLS priority are unchanged too. Queries on a removed
 * upstream move to the new ones. Everything else (timeouts, limits, access
 * control, upstream list) takes effect for new queries; changed cache settings
 * start a new, empty cache; a cfg without a log callback keeps the current
 * one. If the new TLS
 * settings cannot be loaded the old configuration stays (logged).
 * Safe from any thread, but not from a signal handler (it allocates): from a
 * handler, set a flag and call it from a thread. Returns 0, DOTPROXY_EINVAL
 * (NULL, or no upstream) or DOTPROXY_ENOMEM. */
DOTPROXY_EXPORT int dotproxy_ctx_reload(dotproxy_ctx *ctx, const dotproxy_config *cfg);

/* Counters, for tests, metrics and embedders. */
enum dotproxy_counter {
    DOTPROXY_CTR_QUERIES_UDP = 0,      /* queries received over UDP */
    DOTPROXY_CTR_QUERIES_TCP,          /* queries received over TCP */
    DOTPROXY_CTR_QUERIES_API,          /* queries from dotproxy_ctx_query() */
    DOTPROXY_CTR_ANSWERS,              /* upstream answers passed to clients */
    DOTPROXY_CTR_SERVFAIL,             /* SERVFAIL made by us */
    DOTPROXY_CTR_FORMERR,              /* FORMERR made by us */
    DOTPROXY_CTR_DROPPED,              /* client messages dropped unanswered */
    DOTPROXY_CTR_TRUNCATED,            /* UDP answers cut to TC=1 */
    DOTPROXY_CTR_TIMEOUTS,             /* queries whose deadline passed */
    DOTPROXY_CTR_RETRIES,              /* queries re-sent after a lost connection */
    DOTPROXY_CTR_TLS_CONNECTS,         /* TCP connects started to upstreams */
    DOTPROXY_CTR_TLS_HANDSHAKES,       /* TLS handshakes completed and verified */
    DOTPROXY_CTR_TLS_RESUMED,          /* ...of which resumed a session */
    DOTPROXY_CTR_TLS_FAILURES,         /* connects or handshakes that failed */
    DOTPROXY_CTR_TLS_CLOSED_BY_PEER,   /* upstream connections the upstream closed */
    DOTPROXY_CTR_TLS_CLOSED_IDLE,      /* upstream connections we closed as idle */
    DOTPROXY_CTR_UPSTREAM_BAD_ANSWERS, /* answers with unknown ID or wrong question */
    DOTPROXY_CTR_TCP_CLIENTS,          /* TCP clients accepted */
    DOTPROXY_CTR_INFLIGHT,             /* queries waiting now (a gauge) */
    DOTPROXY_CTR_HEDGED,               /* late queries moved to another upstream */
    DOTPROXY_CTR_RELOADS,              /* configurations applied by dotproxy_ctx_reload */
    DOTPROXY_CTR_CACHE_HITS,           /* answered from the cache */
    DOTPROXY_CTR_CACHE_MISSES,         /* cacheable queries the cache could not answer */
    DOTPROXY_CTR_STALE_SERVED,         /* expired answers served (RFC 8767) */
    DOTPROXY_CTR_COALESCED,            /* queries answered by another's upstream query */
    DOTPROXY_CTR_PREFETCHES,           /* refreshes of popular entries before expiry */
    DOTPROXY_CTR_CACHE_ENTRIES,        /* entries in the cache now (a gauge; of the whole
                                          shared cache when CACHE_SHARED) */
    DOTPROXY_CTR_CACHE_EVICTIONS,      /* entries evicted to make room (likewise) */
    DOTPROXY_CTR_REFUSED_ACL,          /* queries refused: client not allowed */
    DOTPROXY_CTR_RATE_LIMITED,         /* queries refused or dropped by the rate limit */
    DOTPROXY_CTR_CLIENT_INFLIGHT_CAP,  /* queries dropped: client over its in-flight cap */
    DOTPROXY_CTR_CACHE_SHARED,         /* 1 if the cache is shared with other contexts:
                                          add its entries and evictions up once, not per
                                          context */
    DOTPROXY_CTR_REFUSED_NORECURSE,    /* queries refused: RD clear (no cache snooping) */
    /* The DNS-over-TLS listener (dotproxy/tls.h), since 0.3: */
    DOTPROXY_CTR_QUERIES_TLS,            /* queries received over TLS */
    DOTPROXY_CTR_TLS_CLIENTS,            /* TLS clients accepted (TCP) */
    DOTPROXY_CTR_TLS_IN_HANDSHAKES,      /* client handshakes completed, full */
    DOTPROXY_CTR_TLS_IN_RESUMED,         /* client handshakes completed, resumed */
    DOTPROXY_CTR_TLS_IN_FAILED,          /* client handshakes failed (not refusals) */
    DOTPROXY_CTR_TLS_IN_TIMEOUTS,        /* client handshakes out of time */
    DOTPROXY_CTR_TLS_REFUSED_NO_CERT,    /* mutual TLS: no client certificate */
    DOTPROXY_CTR_TLS_REFUSED_UNTRUSTED,  /* mutual TLS: not from the client CA */
    DOTPROXY_CTR_TLS_REFUSED_ID,         /* mutual TLS: no allowed subjectAltName */
    DOTPROXY_CTR_TLS_CERT_LOADS,         /* certificate material (re)loaded */
    DOTPROXY_CTR_TLS_CERT_LOAD_FAILURES, /* reloads refused: old material kept */
    DOTPROXY_CTR_TLS_CERT_NOT_AFTER,     /* a gauge: our certificate's notAfter,
                                            Unix seconds (0: no TLS listener) */
    DOTPROXY_CTR_COUNT_                  /* number of counters; not a counter */
};

/* What an operator wants to know about one upstream. A value type that
 * grows: later versions only append fields (tests/abi/layouts.txt holds
 * the released layout), and dotproxy_ctx_upstream_stats_sized() writes no
 * more than the size the caller was built with. */
typedef struct dotproxy_upstream_stats {
    char label[300]; /* "ADDR@PORT#NAME" */
    int healthy;     /* 1 unless backing off after failed connects */
    unsigned consecutive_failures;
    unsigned connections;   /* open TLS connections */
    unsigned inflight;      /* queries on the wire now */
    uint64_t srtt_us;       /* smoothed answer round trip, 0 = not measured */
    uint64_t idle_limit_us; /* learnt idle limit, 0 = none learnt */
    uint64_t queries;       /* queries sent to it */
    uint64_t answers;       /* answers received from it */
    /* Appended in 0.3 (read with dotproxy_ctx_upstream_stats_sized): */
    int64_t cert_not_after; /* notAfter of its certificate at the last verified
                               handshake, Unix time; 0 = no handshake yet */
} dotproxy_upstream_stats;

/* Copy the stats of the index-th upstream as of the context's last loop
 * turn (refreshed at most every 100 ms). Safe from any thread. Returns 0,
 * or DOTPROXY_EINVAL (no such upstream). */
DOTPROXY_EXPORT int dotproxy_ctx_upstream_stats(dotproxy_ctx *ctx, size_t index,
                                                dotproxy_upstream_stats *out);

/* The same, for a struct that may be larger in later versions: pass
 * sizeof(*out). Writes min(size, the library's size) octets: fields the
 * library does not know are zeroed, fields the caller does not know are
 * not written. Safe from any thread. Returns 0, or DOTPROXY_EINVAL (no
 * such upstream, or size smaller than the 0.1 struct). */
DOTPROXY_EXPORT int dotproxy_ctx_upstream_stats_sized(dotproxy_ctx *ctx, size_t index,
                                                      dotproxy_upstream_stats *out, size_t size);

/* The structs that grow by appended fields, for dotproxy_struct_size(). */
enum dotproxy_struct {
    DOTPROXY_STRUCT_UPSTREAM_STATS = 0,
    DOTPROXY_STRUCT_QUERY_LOG = 1,
};

/* The size of a growing struct as this library knows it (0 for an unknown
 * one): a program built against a newer header reads a field appended
 * later only when offsetof(field) + its size is within it. Thread-safe. */
DOTPROXY_EXPORT size_t dotproxy_struct_size(int which);

/* Number of upstreams (as of the last turn). Safe from any thread. */
DOTPROXY_EXPORT size_t dotproxy_ctx_upstream_count(dotproxy_ctx *ctx);

/* Answer latency histogram: DOTPROXY_LATENCY_BUCKETS counters of answers
 * (from arrival to answer sent, cache hits excluded) whose latency was at
 * most the bound dotproxy_latency_bound_us(i); the last bound is infinite
 * (UINT64_MAX). Counts are per bucket, not cumulative. Safe from any thread.
 * Returns the number of buckets written (min(n, DOTPROXY_LATENCY_BUCKETS)). */
#define DOTPROXY_LATENCY_BUCKETS 14
DOTPROXY_EXPORT size_t dotproxy_ctx_latency_histogram(const dotproxy_ctx *ctx, uint64_t *counts,
                                                      size_t n);
DOTPROXY_EXPORT uint64_t dotproxy_latency_bound_us(size_t index);

/* Empty the answer cache at the context's next turn (it is woken). Safe from
 * any thread (not from signal handlers: use a flag and a thread). */
DOTPROXY_EXPORT void dotproxy_ctx_cache_flush(dotproxy_ctx *ctx);

/* The value of a counter, or 0 for an unknown one. Safe from any thread
 * (values from another thread may lag by one loop turn). */
DOTPROXY_EXPORT uint64_t dotproxy_ctx_counter(const dotproxy_ctx *ctx, int which);

/* ---- dynamic blocks (docs/anomaly.md) ---- */

/* A block or a log-mode event, active now or ended lately. */
typedef struct dotproxy_dynblock_entry {
    char key[96];      /* "192.0.2.0/24", "example.com", "192.0.2.7 example.com" */
    char rule[96];     /* the rule's text */
    char reason[96];   /* the figure that crossed, e.g. "qps 812.4 > 100" */
    uint64_t since_ms; /* Unix time, milliseconds */
    uint64_t until_ms; /* when it ends unless the rate stays over */
    uint64_t blocked;  /* queries refused, dropped or truncated (log: that would have been) */
    int action;        /* DOTPROXY_DYNBLOCK_* */
    int detector;      /* index into dotproxy_anomaly_detector_name() */
} dotproxy_dynblock_entry;

/* Active entries into out[0..cap); returns how many there are (may exceed
 * cap). Safe from any thread. */
DOTPROXY_EXPORT size_t dotproxy_ctx_dynblocks(const dotproxy_ctx *ctx, dotproxy_dynblock_entry *out,
                                              size_t cap);
/* End every block now (each end is logged). Returns how many. Safe from any
 * thread. */
DOTPROXY_EXPORT size_t dotproxy_ctx_dynblock_clear(dotproxy_ctx *ctx);
/* Detectors by index from 0: "qps", "nxdomain", "servfail", "bytes",
 * "qtype", "subdomains", "tunnel"; NULL past the end. */
DOTPROXY_EXPORT const char *dotproxy_anomaly_detector_name(size_t i);
/* Events (a rule crossing, blocks and log mode alike) of detector i. */
DOTPROXY_EXPORT uint64_t dotproxy_ctx_anomaly_events(const dotproxy_ctx *ctx, size_t i);
/* Rule i (the given ones, then the default detectors): its text into
 * text[0..cap) and the queries it blocked. 0, or DOTPROXY_EINVAL past the
 * end. */
DOTPROXY_EXPORT int dotproxy_ctx_dynblock_rule(const dotproxy_ctx *ctx, size_t i, char *text,
                                               size_t cap, uint64_t *hits);
/* The busiest clients (by query rate over 10 s) into out[0..cap), busiest
 * first; returns how many (at most cap). */
typedef struct dotproxy_anomaly_offender {
    char key[64];
    double qps;
} dotproxy_anomaly_offender;
DOTPROXY_EXPORT size_t dotproxy_ctx_anomaly_top(const dotproxy_ctx *ctx,
                                                dotproxy_anomaly_offender *out, size_t cap);

/* Ask the context to stop: listeners close at once, queries in flight get up
 * to drain_ms to finish, then dotproxy_ctx_run() returns (and
 * dotproxy_ctx_stopped() becomes 1). Safe from any thread and from signal
 * handlers. */
DOTPROXY_EXPORT void dotproxy_ctx_stop(dotproxy_ctx *ctx);

/* 1 once a stop has been asked for and finished (nothing left in flight, or
 * the drain time passed), else 0. */
DOTPROXY_EXPORT int dotproxy_ctx_stopped(const dotproxy_ctx *ctx);

/* Make a blocked dotproxy_ctx_run_once() return early. Safe from any thread
 * and from signal handlers. */
DOTPROXY_EXPORT void dotproxy_ctx_wakeup(dotproxy_ctx *ctx);

#ifdef __cplusplus
}
#endif
#endif
