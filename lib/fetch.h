/* SPDX-License-Identifier: MIT */
/* One HTTPS GET with libcurl under a strict policy: https only, on
 * redirects too (at most DP_FETCH_REDIRECTS_MAX of them); the peer's
 * certificate and host name verified against the system store or a CA
 * file, never skipped; connect and total timeouts; the body streamed to the
 * caller and cut off past a size cap. Blocking: the caller runs it on a
 * thread of its own (feed_url.c), never on a query path. Built only when
 * libcurl is (meson option curl). */
#ifndef DP_FETCH_H
#define DP_FETCH_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define DP_FETCH_REDIRECTS_MAX 5

enum dp_fetch_outcome {
    DP_FETCH_FAILED = 0,
    DP_FETCH_OK = 1,           /* 200: the body was handed over whole */
    DP_FETCH_NOT_MODIFIED = 2, /* 304 */
};

struct dp_fetch_req {
    const char *url;
    const char *ca_file;        /* NULL: the system trust store */
    const char *const *headers; /* extra request lines "Name: value", NULL-ended; may be NULL */
    uint64_t max_size;          /* octets of body (after any content decoding) */
    long connect_timeout_ms, total_timeout_ms;
    const atomic_int *stop; /* set: abort at the next progress call; may be NULL */
    /* Each response header line of every response in a redirect chain
     * (a new response starts with its "HTTP/" status line), without CR LF. */
    void (*header)(void *user, const char *line, size_t n);
    /* A piece of the final response's body: 0, or non-zero to abort. */
    int (*body)(void *user, const char *p, size_t n);
    void *user;
};

struct dp_fetch_result {
    int outcome;    /* enum dp_fetch_outcome */
    long status;    /* the final HTTP status, 0 none */
    uint64_t bytes; /* body octets handed over */
    char why[256];  /* DP_FETCH_FAILED: what went wrong, for the log and the API */
};

/* Fetch req->url. Returns the outcome (res->outcome); res->why says why it
 * failed. Thread-safe (the process-wide libcurl initialisation is done once
 * here). */
int dp_fetch_get(const struct dp_fetch_req *req, struct dp_fetch_result *res);

#endif
