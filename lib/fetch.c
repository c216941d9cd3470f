/* SPDX-License-Identifier: MIT */
/* An HTTPS GET with libcurl under the feed policy (fetch.h). Every knob
 * that could weaken it is set explicitly rather than left to the defaults of
 * whatever libcurl is installed: protocols, redirect protocols and count,
 * peer and host verification. */
#include "fetch.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "dotproxy/version.h"

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_FAILED_INIT;

/* curl_global_init is not thread-safe in every libcurl: done once, and
 * never undone (curl_global_cleanup would pull the ground from under an
 * embedder that uses libcurl too). */
static void global_init(void)
{
    global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

struct xfer {
    const struct dp_fetch_req *req;
    struct dp_fetch_result *res;
    int too_big, body_refused;
};

static size_t on_header(char *p, size_t size, size_t n, void *user)
{
    struct xfer *x = user;
    size_t len = size * n, l = len;
    while (l > 0 && (p[l - 1] == '\n' || p[l - 1] == '\r'))
        l--;
    if (x->req->header != NULL)
        x->req->header(x->req->user, p, l);
    return len;
}

static size_t on_body(char *p, size_t size, size_t n, void *user)
{
    struct xfer *x = user;
    size_t len = size * n;
    /* Only a 200's body is ours: with CURLOPT_FAILONERROR an error's body
     * never arrives, and a 2xx other than 200 fails below. */
    if (x->res->bytes + len > x->req->max_size) {
        x->too_big = 1;
        return 0; /* CURLE_WRITE_ERROR: the transfer stops here */
    }
    x->res->bytes += len;
    if (x->req->body != NULL && x->req->body(x->req->user, p, len) != 0) {
        x->body_refused = 1;
        return 0;
    }
    return len;
}

static int on_progress(void *user, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    (void)dt, (void)dn, (void)ut, (void)un;
    const struct xfer *x = user;
    return x->req->stop != NULL && atomic_load(x->req->stop) ? 1 : 0;
}

int dp_fetch_get(const struct dp_fetch_req *req, struct dp_fetch_result *res)
{
    memset(res, 0, sizeof *res);
    res->outcome = DP_FETCH_FAILED;
    pthread_once(&global_once, global_init);
    if (global_rc != CURLE_OK) {
        snprintf(res->why, sizeof res->why, "libcurl: %s", curl_easy_strerror(global_rc));
        return res->outcome;
    }
    CURL *h = curl_easy_init();
    if (h == NULL) {
        snprintf(res->why, sizeof res->why, "libcurl: out of memory");
        return res->outcome;
    }
    struct curl_slist *hdrs = NULL;
    for (size_t i = 0; req->headers != NULL && req->headers[i] != NULL; i++) {
        struct curl_slist *nh = curl_slist_append(hdrs, req->headers[i]);
        if (nh == NULL) {
            curl_slist_free_all(hdrs);
            curl_easy_cleanup(h);
            snprintf(res->why, sizeof res->why, "libcurl: out of memory");
            return res->outcome;
        }
        hdrs = nh;
    }
    struct xfer x = {.req = req, .res = res};
    char errbuf[CURL_ERROR_SIZE] = "";
    /* The policy: https only, also after a redirect; verification on. */
    CURLcode rc = CURLE_OK;
#define SET(opt, val)                                                                              \
    do {                                                                                           \
        if (rc == CURLE_OK)                                                                        \
            rc = curl_easy_setopt(h, opt, val);                                                    \
    } while (0)
    SET(CURLOPT_URL, req->url);
    SET(CURLOPT_PROTOCOLS_STR, "https");
    SET(CURLOPT_REDIR_PROTOCOLS_STR, "https");
    SET(CURLOPT_FOLLOWLOCATION, 1L);
    SET(CURLOPT_MAXREDIRS, (long)DP_FETCH_REDIRECTS_MAX);
    SET(CURLOPT_SSL_VERIFYPEER, 1L);
    SET(CURLOPT_SSL_VERIFYHOST, 2L);
    if (req->ca_file != NULL)
        SET(CURLOPT_CAINFO, req->ca_file);
    SET(CURLOPT_CONNECTTIMEOUT_MS, req->connect_timeout_ms);
    SET(CURLOPT_TIMEOUT_MS, req->total_timeout_ms);
    /* A thread must not take signals (the resolver's alarm()). */
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_FAILONERROR, 1L);
    /* Announced size over the cap: refused before any of the body comes. */
    SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)req->max_size);
    /* Whatever content coding libcurl can undo; the cap counts the decoded
     * octets, so a small compressed body cannot swell past it. */
    SET(CURLOPT_ACCEPT_ENCODING, "");
    SET(CURLOPT_USERAGENT, "libdotproxy/" DOTPROXY_VERSION_STRING);
    SET(CURLOPT_HTTPHEADER, hdrs);
    SET(CURLOPT_HEADERFUNCTION, on_header);
    SET(CURLOPT_HEADERDATA, &x);
    SET(CURLOPT_WRITEFUNCTION, on_body);
    SET(CURLOPT_WRITEDATA, &x);
    SET(CURLOPT_XFERINFOFUNCTION, on_progress);
    SET(CURLOPT_XFERINFODATA, &x);
    SET(CURLOPT_NOPROGRESS, 0L);
    SET(CURLOPT_ERRORBUFFER, errbuf);
#undef SET
    if (rc != CURLE_OK) {
        snprintf(res->why, sizeof res->why, "libcurl: %s", curl_easy_strerror(rc));
    } else {
        rc = curl_easy_perform(h);
        (void)curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &res->status);
        if (rc == CURLE_OK && res->status == 200) {
            res->outcome = DP_FETCH_OK;
        } else if (rc == CURLE_OK && res->status == 304) {
            res->outcome = DP_FETCH_NOT_MODIFIED;
        } else if (rc == CURLE_OK) {
            snprintf(res->why, sizeof res->why, "HTTP status %ld", res->status);
        } else if (x.too_big || rc == CURLE_FILESIZE_EXCEEDED) {
            snprintf(res->why, sizeof res->why, "larger than %llu octets (--feed-max-size)",
                     (unsigned long long)req->max_size);
        } else if (x.body_refused) {
            snprintf(res->why, sizeof res->why, "cannot keep the body (out of memory or disk)");
        } else if (rc == CURLE_HTTP_RETURNED_ERROR) {
            snprintf(res->why, sizeof res->why, "HTTP status %ld", res->status);
        } else if (rc == CURLE_TOO_MANY_REDIRECTS) {
            snprintf(res->why, sizeof res->why, "more than %d redirects", DP_FETCH_REDIRECTS_MAX);
        } else {
            snprintf(res->why, sizeof res->why, "%s%s%s", curl_easy_strerror(rc),
                     errbuf[0] != '\0' ? ": " : "", errbuf);
        }
    }
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    return res->outcome;
}
