/* SPDX-License-Identifier: MIT */
/* dotproxyd: the operator HTTP server (see http_server.h for the endpoints).
 *
 * All HTTP parsing is libmicrohttpd's; this file opens the listening socket,
 * routes, authorises and queues responses whose bodies come from render.c
 * or, for the status page, from the files in cli/status/ embedded at build
 * time (status_assets.c, made by embed_files.py). Every request is served
 * from libmicrohttpd's single internal polling thread. */
#include "http_server.h"

#include <assert.h>
#include <errno.h>
#include <stdatomic.h>
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

#include "render.h"
#include "status_assets.h"

/* Connection bounds (issue 11: 34 keep-alive clients sending a request
 * every 8 s held every slot, and /health went unanswered; a probe that
 * fails pulls the replica out of its Service). Fixed, not options: they
 * are what any deployment needs, and nothing here is slow enough for an
 * operator to tune.
 *
 * CONNECTION_TIMEOUT_S: idle time after which a connection is closed.
 * Every request is answered at once from memory, so a client that is
 * silent for 5 s is either done or holding a slot; Prometheus (scraping
 * every 15 s or more) and kubelets reconnect anyway, and the status page,
 * which polls every 2 s, keeps its connections.
 *
 * PER_IP_CONNECTION_LIMIT: connections from one address (libmicrohttpd
 * refuses more). A browser on the status page opens up to 6, Prometheus
 * and a kubelet 1 or 2; 8 leaves room for them and keeps one client from
 * holding more than a sixth of the slots.
 *
 * MAX_CONNECTIONS, CONNECTION_RESERVE: libmicrohttpd stops accepting at
 * MAX_CONNECTIONS, so that number is never reached on purpose: when a new
 * connection makes more than MAX_CONNECTIONS - CONNECTION_RESERVE, the
 * connection that has been quiet the longest (no request begun or ended,
 * whatever bytes it trickles) is shut down to make room. However many
 * addresses hold connections and however they trickle, a fresh connection
 * (a /health probe) is accepted and, being the newest, answered before it
 * could be the one to go. The reserve covers connections accepted before
 * the ones shut down are closed (one poll turn). */
#define CONNECTION_TIMEOUT_S    5u
#define PER_IP_CONNECTION_LIMIT 8u
#define MAX_CONNECTIONS         64u
#define CONNECTION_RESERVE      16u
#define CONNECTION_MEMORY       16384u
/* No endpoint reads a body; one this long is refused rather than drained. */
#define BODY_MAX 65536u

/* One TCP connection, from libmicrohttpd's "started" to its "closed"
 * notification (its socket context). Only libmicrohttpd's one polling
 * thread calls the callbacks that touch these, so there is no lock. */
struct conn {
    struct conn *prev, *next; /* in srv's list, least recently active first */
    MHD_socket fd;
    int evicted; /* shut down to make room, no longer in the list */
};

struct dpd_http_server {
    struct MHD_Daemon *mhd;
    int port;
    /* Connections not evicted, least recently active at the head. */
    struct conn *lru_head, *lru_tail;
    unsigned live;
    char *allowed_hosts; /* NULL: IP literals and localhost only */
    char *token;         /* NULL: mutating calls refused */
    size_t token_len;
    dotproxy_ctx **ctxs;
    size_t n_ctxs;
    int (*reload)(void *user, char *err, size_t errlen);
    void *user;
    unsigned long long (*log_lines_dropped)(void);
    /* Set later when a reload brings the first lists (the main thread
     * stores it, the server's thread reads it). */
    _Atomic(dotproxy_blocker *) blocker;
    void (*dnstap_counts)(unsigned long long *queued, unsigned long long *dropped);
};

/* ---- HTTP plumbing ------------------------------------------------------------------------ */

#define CSP                                                                                        \
    "default-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; "            \
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
    struct dpd_render_buf b = {0};
    dpd_render_json_error(&b, msg);
    enum MHD_Result rc =
        b.failed ? MHD_NO : respond(c, status, "application/json", b.p, b.len, 0, extra);
    dpd_render_buf_free(&b);
    return rc;
}

/* b's body with status (a rendering that failed is a 500 instead), then b
 * is freed. */
static enum MHD_Result respond_buf(struct MHD_Connection *c, unsigned status, const char *ctype,
                                   struct dpd_render_buf *b)
{
    enum MHD_Result rc = b->failed ? respond_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR,
                                                  "response too large or out of memory\n", NULL)
                                   : respond(c, status, ctype, b->p, b->len, 0, NULL);
    dpd_render_buf_free(b);
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
static int authorise(const struct dpd_http_server *srv, struct MHD_Connection *c,
                     enum MHD_Result *rc)
{
    if (srv->token == NULL) {
        *rc = respond_json_error(c, MHD_HTTP_FORBIDDEN, "no API token configured", NULL);
        return -1;
    }
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
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
    if (!token_equal(t, n, srv->token, srv->token_len)) {
        static const struct header hdr[] = {{MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                             "Bearer realm=\"dotproxyd\", error=\"invalid_token\""},
                                            {NULL, NULL}};
        *rc = respond_json_error(c, MHD_HTTP_UNAUTHORIZED, "invalid token", hdr);
        return -1;
    }
    return 0;
}

/* ---- connection slots (see CONNECTION_RESERVE) ------------------------------------------- */

static void lru_unlink(struct dpd_http_server *srv, struct conn *k)
{
    if (k->prev != NULL)
        k->prev->next = k->next;
    else
        srv->lru_head = k->next;
    if (k->next != NULL)
        k->next->prev = k->prev;
    else
        srv->lru_tail = k->prev;
    k->prev = k->next = NULL;
}

static void lru_append(struct dpd_http_server *srv, struct conn *k)
{
    k->prev = srv->lru_tail;
    k->next = NULL;
    if (srv->lru_tail != NULL)
        srv->lru_tail->next = k;
    else
        srv->lru_head = k;
    srv->lru_tail = k;
}

/* A request began or ended on c: it is the most recently active now. Bytes
 * that never make a request (a trickle) do not count. */
static void conn_touch(struct dpd_http_server *srv, struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    struct conn *k = ci != NULL ? ci->socket_context : NULL;
    if (k == NULL || k->evicted)
        return;
    lru_unlink(srv, k);
    lru_append(srv, k);
}

/* Shut the socket down rather than close it: the descriptor stays
 * libmicrohttpd's until its "closed" notification (it closes the socket
 * only after that), so it cannot have been reused; libmicrohttpd sees end
 * of file (or a failed send) on its next turn and closes the connection as
 * if the client had gone. */
static void conn_evict(struct dpd_http_server *srv, struct conn *k)
{
    lru_unlink(srv, k);
    srv->live--;
    k->evicted = 1;
    (void)shutdown(k->fd, SHUT_RDWR);
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    struct dpd_http_server *srv = cls;
    struct conn *k = *socket_context;
    if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
        if (k == NULL)
            return;
        if (!k->evicted) {
            lru_unlink(srv, k);
            srv->live--;
        }
        free(k);
        *socket_context = NULL;
        return;
    }
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (ci == NULL || (k = calloc(1, sizeof *k)) == NULL) {
        /* Untracked, it could never be made room from: refuse it. */
        if (ci != NULL)
            (void)shutdown(ci->connect_fd, SHUT_RDWR);
        return;
    }
    k->fd = ci->connect_fd;
    lru_append(srv, k);
    srv->live++;
    *socket_context = k;
    if (srv->live > MAX_CONNECTIONS - CONNECTION_RESERVE) {
        assert(srv->lru_head != k);
        conn_evict(srv, srv->lru_head);
    }
}

/* ---- Host header (DNS rebinding) ----------------------------------------------------------- */

/* "" or ":" and a port of up to 5 digits (RFC 9110 section 7.2: port =
 * *DIGIT; the value itself is not checked, the listener has one). */
static int is_port_suffix(const char *p)
{
    if (*p == '\0')
        return 1;
    if (*p++ != ':')
        return 0;
    size_t n = strspn(p, "0123456789");
    return p[n] == '\0' && n <= 5;
}

/* name (len bytes, one final dot ignored) equals one of the names in
 * list ("a,b,..."), ignoring case. */
static int name_in_list(const char *name, size_t len, const char *list)
{
    if (len > 0 && name[len - 1] == '.')
        len--;
    while (list != NULL && *list != '\0') {
        size_t n = strcspn(list, ",");
        size_t m = n > 0 && list[n - 1] == '.' ? n - 1 : n;
        if (m == len && len > 0 && strncasecmp(list, name, len) == 0)
            return 1;
        list += n;
        if (*list == ',')
            list++;
    }
    return 0;
}

/* Whether a browser can have sent this Host for a page of another site:
 * DNS rebinding points a name the attacker owns at this address, and the
 * page's requests then carry that name. They cannot carry an IP literal
 * (an IP origin is not the attacker's), "localhost", or a name the
 * operator allowed. No Host at all is HTTP/1.0 from a tool, not a browser
 * (on_request answers 400 to a later version without one). */
static int host_allowed(const struct dpd_http_server *srv, const char *host)
{
    if (host == NULL)
        return 1;
    char lit[INET6_ADDRSTRLEN + 1];
    unsigned char bin[sizeof(struct in6_addr)];
    if (host[0] == '[') {
        const char *end = strchr(host, ']');
        size_t n = end != NULL ? (size_t)(end - host - 1) : 0;
        if (end == NULL || n == 0 || n >= sizeof lit || !is_port_suffix(end + 1))
            return 0;
        memcpy(lit, host + 1, n);
        lit[n] = '\0';
        return inet_pton(AF_INET6, lit, bin) == 1;
    }
    const char *colon = strrchr(host, ':');
    size_t n = colon != NULL ? (size_t)(colon - host) : strlen(host);
    if (colon != NULL && !is_port_suffix(colon))
        return 0;
    if (n > 0 && n < sizeof lit) {
        memcpy(lit, host, n);
        lit[n] = '\0';
        if (inet_pton(AF_INET, lit, bin) == 1)
            return 1;
    }
    return name_in_list(host, n, "localhost") || name_in_list(host, n, srv->allowed_hosts);
}

/* ---- endpoints ------------------------------------------------------------------------------ */

/* The status page is static and loads nothing from elsewhere; its script
 * writes only with textContent, so labels never become markup. */
static enum MHD_Result get_page(struct dpd_http_server *srv, struct MHD_Connection *c)
{
    (void)srv;
    static const struct header hdr[] = {{"Content-Security-Policy", CSP},
                                        {"X-Frame-Options", "DENY"},
                                        {"Referrer-Policy", "no-referrer"},
                                        {NULL, NULL}};
    return respond(c, MHD_HTTP_OK, "text/html; charset=utf-8", (const char *)dpd_status_html,
                   dpd_status_html_len, 1, hdr);
}

static enum MHD_Result get_js(struct dpd_http_server *srv, struct MHD_Connection *c)
{
    (void)srv;
    return respond(c, MHD_HTTP_OK, "text/javascript; charset=utf-8", (const char *)dpd_status_js,
                   dpd_status_js_len, 1, NULL);
}

static enum MHD_Result get_css(struct dpd_http_server *srv, struct MHD_Connection *c)
{
    (void)srv;
    return respond(c, MHD_HTTP_OK, "text/css; charset=utf-8", (const char *)dpd_status_css,
                   dpd_status_css_len, 1, NULL);
}

static enum MHD_Result get_metrics(struct dpd_http_server *srv, struct MHD_Connection *c)
{
    struct dpd_render_buf b = {0};
    if (dpd_render_metrics(&b, srv->ctxs, srv->n_ctxs) != 0)
        return respond_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n", NULL);
    if (srv->log_lines_dropped != NULL)
        dpd_render_daemon_metrics(&b, srv->log_lines_dropped());
    dotproxy_blocker *blocker = atomic_load_explicit(&srv->blocker, memory_order_acquire);
    if (blocker != NULL) {
        dpd_render_block_metrics(&b, blocker);
        dpd_render_feed_metrics(&b, blocker);
    }
    if (srv->dnstap_counts != NULL) {
        unsigned long long queued, dropped;
        srv->dnstap_counts(&queued, &dropped);
        dpd_render_dnstap_metrics(&b, queued, dropped);
    }
    return respond_buf(c, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", &b);
}

static enum MHD_Result get_health(struct dpd_http_server *srv, struct MHD_Connection *c)
{
    struct dpd_render_buf b = {0};
    int healthy = dpd_render_health(&b, srv->ctxs, srv->n_ctxs);
    return respond_buf(c, healthy ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE,
                       "text/plain; charset=utf-8", &b);
}

static enum MHD_Result get_stats(struct dpd_http_server *srv, struct MHD_Connection *c)
{
    struct dpd_render_buf b = {0};
    if (dpd_render_stats(&b, srv->ctxs, srv->n_ctxs) != 0)
        return respond_json_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory", NULL);
    return respond_buf(c, MHD_HTTP_OK, "application/json", &b);
}

static enum MHD_Result get_upstreams(struct dpd_http_server *srv, struct MHD_Connection *c)
{
    struct dpd_render_buf b = {0};
    dpd_render_upstreams(&b, srv->ctxs, srv->n_ctxs);
    return respond_buf(c, MHD_HTTP_OK, "application/json", &b);
}

static enum MHD_Result get_block_check(struct dpd_http_server *srv, struct MHD_Connection *c)
{
    dotproxy_blocker *blocker = atomic_load_explicit(&srv->blocker, memory_order_acquire);
    if (blocker == NULL)
        return respond_json_error(c, MHD_HTTP_NOT_FOUND, "no blocklists configured", NULL);
    const char *name = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "name");
    if (name == NULL || name[0] == '\0')
        return respond_json_error(c, MHD_HTTP_BAD_REQUEST, "name=N wanted", NULL);
    struct dpd_render_buf b = {0};
    if (dpd_render_block_check(&b, blocker, name) != 0) {
        dpd_render_buf_free(&b);
        return respond_json_error(c, MHD_HTTP_BAD_REQUEST, "not a host name", NULL);
    }
    return respond_buf(c, MHD_HTTP_OK, "application/json", &b);
}

static enum MHD_Result post_cache_flush(struct dpd_http_server *srv, struct MHD_Connection *c)
{
    enum MHD_Result rc;
    if (authorise(srv, c, &rc) != 0)
        return rc;
    for (size_t w = 0; w < srv->n_ctxs; w++)
        dotproxy_ctx_cache_flush(srv->ctxs[w]);
    char body[64];
    snprintf(body, sizeof body, "{\"flushed_workers\":%zu}\n", srv->n_ctxs);
    return respond(c, MHD_HTTP_OK, "application/json", body, strlen(body), 0, NULL);
}

static enum MHD_Result post_reload(struct dpd_http_server *srv, struct MHD_Connection *c)
{
    enum MHD_Result rc;
    if (authorise(srv, c, &rc) != 0)
        return rc;
    if (srv->reload == NULL)
        return respond_json_error(c, MHD_HTTP_NOT_IMPLEMENTED, "reload not available", NULL);
    char err[1024] = "", msg[1200];
    if (srv->reload(srv->user, err, sizeof err) != 0) {
        snprintf(msg, sizeof msg, "reload failed%s%s; the configuration in force is unchanged",
                 err[0] != '\0' ? ": " : "", err);
        struct dpd_render_buf b = {0};
        dpd_render_reload_failed(&b, msg);
        return respond_buf(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "application/json", &b);
    }
    static const char ok[] = "{\"reloaded\":true}\n";
    return respond(c, MHD_HTTP_OK, "application/json", ok, sizeof ok - 1, 1, NULL);
}

static enum MHD_Result get_feeds(struct dpd_http_server *srv, struct MHD_Connection *c)
{
    struct dpd_render_buf b = {0};
    dpd_render_feeds(&b, atomic_load_explicit(&srv->blocker, memory_order_acquire));
    return respond_buf(c, MHD_HTTP_OK, "application/json", &b);
}

static enum MHD_Result post_feeds_refresh(struct dpd_http_server *srv, struct MHD_Connection *c)
{
    enum MHD_Result rc;
    if (authorise(srv, c, &rc) != 0)
        return rc;
    dotproxy_blocker *blocker = atomic_load_explicit(&srv->blocker, memory_order_acquire);
    if (blocker == NULL)
        return respond_json_error(c, MHD_HTTP_NOT_FOUND, "no feeds configured", NULL);
    dotproxy_blocker_refresh_feeds(blocker);
    static const char ok[] = "{\"refreshing\":true}\n";
    return respond(c, MHD_HTTP_OK, "application/json", ok, sizeof ok - 1, 1, NULL);
}

static enum MHD_Result get_dynblocks(struct dpd_http_server *srv, struct MHD_Connection *c)
{
    struct dpd_render_buf b = {0};
    dpd_render_dynblocks(&b, srv->ctxs, srv->n_ctxs);
    return respond_buf(c, MHD_HTTP_OK, "application/json", &b);
}

static enum MHD_Result post_dynblocks_clear(struct dpd_http_server *srv, struct MHD_Connection *c)
{
    enum MHD_Result rc;
    if (authorise(srv, c, &rc) != 0)
        return rc;
    size_t n = srv->n_ctxs > 0 ? dotproxy_ctx_dynblock_clear(srv->ctxs[0]) : 0;
    char body[64];
    snprintf(body, sizeof body, "{\"cleared\":%zu}\n", n);
    return respond(c, MHD_HTTP_OK, "application/json", body, strlen(body), 0, NULL);
}

struct route {
    const char *path;
    int post; /* 0: GET (and HEAD); 1: POST */
    /* 1: any Host header. Prometheus sends the target's name as
     * configured, a kubelet the pod's IP; what these say is no secret
     * worth a browser's help to read. Everything else wants host_allowed. */
    int any_host;
    enum MHD_Result (*fn)(struct dpd_http_server *srv, struct MHD_Connection *c);
};

static const struct route routes[] = {
    {"/", 0, 0, get_page},
    {"/status.js", 0, 0, get_js},
    {"/status.css", 0, 0, get_css},
    {"/metrics", 0, 1, get_metrics},
    {"/health", 0, 1, get_health},
    {"/api/v1/stats", 0, 0, get_stats},
    {"/api/v1/upstreams", 0, 0, get_upstreams},
    {"/api/v1/cache/flush", 1, 0, post_cache_flush},
    {"/api/v1/reload", 1, 0, post_reload},
    {"/api/v1/blocklist/check", 0, 0, get_block_check},
    {"/api/v1/feeds", 0, 0, get_feeds},
    {"/api/v1/feeds/refresh", 1, 0, post_feeds_refresh},
    {"/api/v1/dynblocks", 0, 0, get_dynblocks},
    {"/api/v1/dynblocks/clear", 1, 0, post_dynblocks_clear},
};

/* Per request: how much body has been thrown away. */
struct request {
    size_t body;
};

/* A whole request (headers and any body) is in: route it. host is the
 * Host header, NULL when there is none. */
static enum MHD_Result dispatch(struct dpd_http_server *srv, struct MHD_Connection *c,
                                const char *url, const char *method, const char *host)
{
    const struct route *r = NULL;
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
        if (strcmp(url, routes[i].path) == 0)
            r = &routes[i];
    int api = strncmp(url, "/api/", 5) == 0;
    if (r == NULL)
        return api ? respond_json_error(c, MHD_HTTP_NOT_FOUND, "no such endpoint", NULL)
                   : respond_text(c, MHD_HTTP_NOT_FOUND, "not found\n", NULL);
    if (!r->any_host && !host_allowed(srv, host)) {
        static const char msg[] = "Host not allowed: use an IP address or localhost";
        return api ? respond_json_error(c, MHD_HTTP_MISDIRECTED_REQUEST, msg, NULL)
                   : respond_text(c, MHD_HTTP_MISDIRECTED_REQUEST, msg, NULL);
    }
    int ok = r->post ? strcmp(method, MHD_HTTP_METHOD_POST) == 0
                     : strcmp(method, MHD_HTTP_METHOD_GET) == 0 ||
                           strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
    if (!ok) {
        const struct header hdr[] = {{MHD_HTTP_HEADER_ALLOW, r->post ? "POST" : "GET, HEAD"},
                                     {NULL, NULL}};
        return api ? respond_json_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed", hdr)
                   : respond_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n", hdr);
    }
    return r->fn(srv, c);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
    struct dpd_http_server *srv = cls;
    (void)upload_data;
    struct request *rq = *req_cls;
    if (rq == NULL) {
        /* First call: headers only. Answer once the body (if any) is in,
         * so keep-alive connections stay in step. */
        if ((rq = calloc(1, sizeof *rq)) == NULL)
            return MHD_NO;
        *req_cls = rq;
        conn_touch(srv, c);
        return MHD_YES;
    }
    if (*upload_data_size != 0) {
        rq->body += *upload_data_size;
        *upload_data_size = 0;
        if (rq->body > BODY_MAX)
            return MHD_NO; /* closes the connection */
        return MHD_YES;
    }
    const char *host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
    /* RFC 9112 section 3.2; libmicrohttpd 0.9.75 lets it through. */
    if (host == NULL && strcmp(version, MHD_HTTP_VERSION_1_0) != 0)
        return respond_text(c, MHD_HTTP_BAD_REQUEST, "Host header required\n", NULL);
    return dispatch(srv, c, url, method, host);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)toe;
    if (*req_cls != NULL)
        conn_touch(cls, c);
    free(*req_cls);
    *req_cls = NULL;
}

/* ---- start and stop ----------------------------------------------------------------------- */

/* Where the server listens when --metrics gives a port only: the server is
 * for the operator on this host, not for the network. */
#define DEFAULT_ADDR "127.0.0.1"

/* The listen value "[ADDR@]PORT" as an endpoint. The library's spec parser
 * reads it, so --metrics takes the same address literals as --listen and
 * --upstream; the two differences are made here: ADDR may be left out, and
 * PORT is required and may be 0 (the kernel picks), which the spec grammar
 * has no room for: as dotproxy_config_add_listen does for "@0", the address
 * is then parsed alone with 0 as its default port ("00" too: the option
 * parser lets it through, and the spec grammar takes leading zeros). */
int dpd_http_server_parse_listen(const char *spec, dotproxy_endpoint *ep, char *err, size_t errlen)
{
    if (spec == NULL || *spec == '\0') {
        snprintf(err, errlen, "empty (want [ADDR@]PORT)");
        return -1;
    }
    const char *at = strrchr(spec, '@');
    const char *port = at != NULL ? at + 1 : spec;
    const char *addr = at != NULL ? spec : DEFAULT_ADDR;
    size_t addr_len = at != NULL ? (size_t)(at - spec) : strlen(DEFAULT_ADDR);
    char text[192];
    if (addr_len + 1 + strlen(port) >= sizeof text) {
        snprintf(err, errlen, "too long (want [ADDR@]PORT)");
        return -1;
    }
    int rc;
    if (port[0] != '\0' && port[strspn(port, "0")] == '\0') {
        snprintf(text, sizeof text, "%.*s", (int)addr_len, addr);
        rc = dotproxy_endpoint_parse(ep, text, 0, 0);
    } else {
        snprintf(text, sizeof text, "%.*s@%s", (int)addr_len, addr, port);
        rc = dotproxy_endpoint_parse(ep, text, 0, 0);
    }
    if (rc == 0)
        return 0;
    if (rc == DOTPROXY_EPORT)
        snprintf(err, errlen, "bad port '%s' (want [ADDR@]PORT, PORT 0 to 65535)", port);
    else if (rc == DOTPROXY_ENAME)
        snprintf(err, errlen, "no #NAME here (want [ADDR@]PORT)");
    else if (addr_len == 0)
        snprintf(err, errlen, "no address before '@' (want [ADDR@]PORT)");
    else
        snprintf(err, errlen, "'%.*s' is not an IPv4 or IPv6 address", (int)addr_len, addr);
    return -1;
}

/* The socket is made here, not by libmicrohttpd, so that a failure can say
 * exactly what went wrong (libmicrohttpd only returns NULL). Messages name
 * the endpoint as bound ("127.0.0.1@9100"), which shows the default
 * address when the value had none. */
static int open_listener(const char *spec, int *port, char *err, size_t errlen)
{
    dotproxy_endpoint ep;
    if (dpd_http_server_parse_listen(spec, &ep, err, errlen) != 0)
        return -1;
    char name[128];
    if (dotproxy_endpoint_format(&ep, name, sizeof name) < 0)
        snprintf(name, sizeof name, "%s", spec);
    int fd = socket(ep.addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket for %s: %s", name, strerror(errno));
        return -1;
    }
    int on = 1;
    /* A restarted daemon must rebind while old connections sit in
     * TIME_WAIT; this does not allow two listeners on one port. */
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    if (ep.addr.ss_family == AF_INET6)
        (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on);
    if (bind(fd, (struct sockaddr *)&ep.addr, ep.addrlen) != 0) {
        snprintf(err, errlen, "cannot bind %s: %s", name, strerror(errno));
        close(fd);
        return -1;
    }
    if (listen(fd, (int)MAX_CONNECTIONS) != 0) {
        snprintf(err, errlen, "cannot listen on %s: %s", name, strerror(errno));
        close(fd);
        return -1;
    }
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0) {
        snprintf(err, errlen, "getsockname for %s: %s", name, strerror(errno));
        close(fd);
        return -1;
    }
    *port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                          : ((struct sockaddr_in6 *)&ss)->sin6_port);
    return fd;
}

static void server_free(struct dpd_http_server *srv)
{
    if (srv == NULL)
        return;
    if (srv->token != NULL) {
        explicit_bzero(srv->token, srv->token_len);
        free(srv->token);
    }
    free(srv->allowed_hosts);
    free(srv->ctxs);
    free(srv);
}

/* The server's own copy of o, without a listener yet; NULL when out of
 * memory. */
static struct dpd_http_server *server_new(const struct dpd_http_server_opts *o)
{
    struct dpd_http_server *srv = calloc(1, sizeof *srv);
    if (srv == NULL)
        return NULL;
    srv->n_ctxs = o->n_ctxs;
    srv->ctxs = calloc(o->n_ctxs == 0 ? 1 : o->n_ctxs, sizeof *srv->ctxs);
    if (srv->ctxs == NULL) {
        server_free(srv);
        return NULL;
    }
    if (o->n_ctxs != 0)
        memcpy(srv->ctxs, o->ctxs, o->n_ctxs * sizeof *srv->ctxs);
    if (o->token != NULL && o->token[0] != '\0') {
        srv->token_len = strlen(o->token);
        if ((srv->token = strdup(o->token)) == NULL) {
            server_free(srv);
            return NULL;
        }
    }
    if (o->allowed_hosts != NULL && (srv->allowed_hosts = strdup(o->allowed_hosts)) == NULL) {
        server_free(srv);
        return NULL;
    }
    srv->reload = o->reload;
    srv->user = o->user;
    srv->log_lines_dropped = o->log_lines_dropped;
    atomic_init(&srv->blocker, o->blocker);
    srv->dnstap_counts = o->dnstap_counts;
    return srv;
}

/* One internal thread polling every connection: no client can block it,
 * since every request is answered at once from memory, whereas
 * thread-per-connection would give each slow client a thread to hold. The
 * slot bookkeeping (on_connection) relies on every callback running in
 * that one thread. */
static struct MHD_Daemon *start_mhd(struct dpd_http_server *srv, int fd)
{
    return MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL, 0, NULL, NULL, on_request, srv,
        MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd, MHD_OPTION_CONNECTION_LIMIT, MAX_CONNECTIONS,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, PER_IP_CONNECTION_LIMIT, MHD_OPTION_CONNECTION_TIMEOUT,
        CONNECTION_TIMEOUT_S, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONNECTION_MEMORY,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, (void *)srv, MHD_OPTION_NOTIFY_CONNECTION,
        on_connection, (void *)srv, MHD_OPTION_END);
}

int dpd_http_server_start(struct dpd_http_server **out, const struct dpd_http_server_opts *o,
                          char *err, size_t errlen)
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
    struct dpd_http_server *srv = server_new(o);
    if (srv == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int fd = open_listener(o->listen, &srv->port, err, errlen);
    if (fd < 0) {
        server_free(srv);
        return -1;
    }
    srv->mhd = start_mhd(srv, fd);
    if (srv->mhd == NULL) {
        snprintf(err, errlen, "libmicrohttpd could not start on %s", o->listen);
        /* fd is not closed here: depending on where it failed,
         * libmicrohttpd 0.9.x has closed it already, and closing a number
         * another thread may have reused is worse than leaking one
         * descriptor on an error that stops the daemon anyway. */
        server_free(srv);
        return -1;
    }
    *out = srv;
    return 0;
}

int dpd_http_server_port(const struct dpd_http_server *srv)
{
    return srv != NULL ? srv->port : -1;
}

void dpd_http_server_stop(struct dpd_http_server *srv)
{
    if (srv == NULL)
        return;
    /* Joins the polling thread and closes the listening socket too. */
    MHD_stop_daemon(srv->mhd);
    server_free(srv);
}

void dpd_http_server_set_blocker(struct dpd_http_server *s, dotproxy_blocker *b)
{
    if (s != NULL)
        atomic_store_explicit(&s->blocker, b, memory_order_release);
}
