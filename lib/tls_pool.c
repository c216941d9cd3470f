/* SPDX-License-Identifier: MIT */
/* Persistent TLS connections to the upstreams, many queries in flight on
 * each (RFC 7766 6.2.1.1), answers matched by wire ID and question. A forward
 * zone's "plain:" upstream gets the same connections without TLS (DNS over
 * TCP, RFC 7766): same framing, pipelining, health, hedging and failover;
 * only the byte transport differs (conn_recv, plain_write, conn_bye). */
#include "tls_pool.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gnutls/abstract.h>
#include <gnutls/crypto.h>

#include "bytes.h"
#include "dotproxy/error.h"
#include "trust.h"
#include "upstream.h"

#define OUT_CAP        (1u << 17)    /* any single framed query fits in an empty buffer */
#define IN_CAP         (2u + 65535u) /* any single framed answer fits */
#define TLS_RECORD_MAX 16384u
#define RBUF_CAP       65536u /* read-ahead: many TLS records per recv() */
#define DP_MAX_RESENDS 4      /* per query, after lost connections */
/* Acknowledge the upstream's bytes at once only while few answers are due:
 * a busy connection acknowledges with the queries it writes anyway, and
 * forced ACKs there only make the upstream send smaller segments. */
#define ACK_NOW_MAX_INFLIGHT 8u
/* Holding queries for a fuller write: see may_hold(). */
#define HOLD_MIN_DUE   32u
#define HOLD_MAX_US    200u
#define HOLD_MAX_BYTES 2048u
/* Race delay (RFC 8305's spirit): queries waiting for a connect or a
 * handshake that has not completed after max(2 x SRTT, RACE_MIN_US), at
 * most RACE_MAX_US, are given to another upstream as well as can be. */
#define RACE_MIN_US 250000u
#define RACE_MAX_US 500000u
/* A query raced while no other upstream was usable is looked at again when
 * one's backoff ends, or after this at most (race_recheck). */
#define RACE_RECHECK_US 1000000u
/* A connection whose slots are dead (queries forgotten, never answered) in
 * this proportion (1/RETIRE_DEAD_DIV of them) is retired and replaced:
 * only its end frees their wire IDs (RFC 7766 6.2.1.1). */
#define RETIRE_DEAD_DIV 2u

/* An idle connection's liveness query (dp_tls_pool_ping) waits for its
 * answer max(PING_MIN_US, 4 x SRTT), at most the query timeout: long
 * enough not to fail a connection on a loaded host, short enough that a
 * black-holed path shows within the 15 s the health check promises. */
#define PING_MIN_US 2000000u

enum { HEALTH_NONE = 0, HEALTH_CONNECT = 1, HEALTH_PROTOCOL = 2 };

static const gnutls_datum_t alpn_dot = {(unsigned char *)"dot", 3}; /* RFC 7858 / IANA */

static void conn_on_ready(struct dp_io *io, unsigned revents);
static void conn_timer_fire(struct dp_timer *t);
static void conn_fail(struct dp_conn *c, const char *why, int health_failure, int by_peer);
static void conn_retire(struct dp_conn *c);
static void race_sweep(struct dp_pool *pool);

static uint64_t pool_now(const struct dp_pool *pool)
{
    return pool->loop->now_us;
}

static unsigned live_inflight(const struct dp_conn *c);
static void arm_idle_check(struct dp_conn *c);
static uint64_t idle_limit(const struct dp_conn *c);

/* When an idle ready connection's timer must fire: its idle limit, or its
 * liveness check's deadline when that comes first. */
static uint64_t conn_idle_due(const struct dp_conn *c)
{
    uint64_t due = c->idle_since_us + idle_limit(c);
    return c->ping_pending && c->ping_due_us < due ? c->ping_due_us : due;
}

/* How long an idle connection is kept: the configured time, or less when
 * this upstream has shown (by closing idle connections itself, or by an RFC
 * 7828 keepalive timeout) that it drops them sooner. Closing first means we
 * never write a query into a connection the server already closed. */
static uint64_t idle_limit(const struct dp_conn *c)
{
    uint64_t cfg = (uint64_t)c->pool->cfg->idle_timeout_ms * 1000u;
    uint64_t learned = c->up->idle_limit_us;
    return learned != 0 && learned < cfg ? learned : cfg;
}

static void mark_dirty(struct dp_conn *c)
{
    if (c->dirty)
        return;
    struct dp_pool *pool = c->pool;
    c->dirty = 1;
    c->next_dirty = pool->dirty;
    pool->dirty = c;
}

static void wipe_free(void *p, size_t n)
{
    if (p == NULL)
        return;
    gnutls_memset(p, 0, n); /* queries and answers are the users' private data */
    free(p);
}

static void conn_free(struct dp_conn *c)
{
    if (c->tls != NULL)
        gnutls_deinit(c->tls);
    if (c->io.fd >= 0)
        close(c->io.fd);
    wipe_free(c->out, c->out_cap);
    wipe_free(c->inbuf, IN_CAP);
    wipe_free(c->rbuf, RBUF_CAP);
    dp_slots_fini(&c->slots);
    free(c);
}

/* Detach c from its upstream and the loop; free it now unless the dirty list
 * still points at it (then dp_tls_pool_flush frees it). */
static void conn_close(struct dp_conn *c)
{
    struct dp_upstream *up = c->up;
    struct dp_pool *pool = c->pool;
    for (unsigned i = 0; i < up->pool.n_conns; i++) {
        if (up->pool.conns[i] == c) {
            up->pool.conns[i] = up->pool.conns[--up->pool.n_conns];
            break;
        }
    }
    dp_timer_cancel(pool->loop, &c->timer);
    dp_loop_del(pool->loop, &c->io);
    c->state = DP_CONN_CLOSED;
    if (!c->dirty)
        conn_free(c);
}

static struct dp_conn *conn_alloc(struct dp_pool *pool, struct dp_upstream *up)
{
    unsigned n = pool->cfg->max_inflight;
    struct dp_conn *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->io.fd = -1;
    c->pool = pool;
    c->up = up;
    int slots_rc = dp_slots_init(&c->slots, n);
    c->out = malloc(OUT_CAP);
    c->inbuf = malloc(IN_CAP);
    c->rbuf = malloc(RBUF_CAP);
    if (slots_rc != 0 || !c->out || !c->inbuf || !c->rbuf) {
        conn_free(c);
        return NULL;
    }
    c->out_cap = OUT_CAP;
    dotproxy_frame_init(&c->in, c->inbuf, IN_CAP);
    dp_timer_init(&c->timer, conn_timer_fire);
    c->io.on_ready = conn_on_ready;
    return c;
}

/* GnuTLS reads a record as two reads (header, then body): two syscalls
 * per answer. Reading ahead into our own buffer takes every record the
 * kernel holds in one recv(). conn_read drains GnuTLS until it reports
 * EAGAIN, which it only does once this buffer and the socket are both empty,
 * so nothing is left unseen by poll. */
static ssize_t conn_pull(gnutls_transport_ptr_t ptr, void *data, size_t size)
{
    struct dp_conn *c = ptr;
    if (c->rhead == c->rtail) {
        ssize_t n;
        do
            n = recv(c->io.fd, c->rbuf, RBUF_CAP, MSG_DONTWAIT);
        while (n < 0 && errno == EINTR);
        if (n <= 0) {
            if (n < 0)
                gnutls_transport_set_errno(c->tls, errno == EWOULDBLOCK ? EAGAIN : errno);
            return n;
        }
        c->rhead = 0;
        c->rtail = (size_t)n;
    }
    size_t avail = c->rtail - c->rhead;
    size_t take = size < avail ? size : avail;
    memcpy(data, c->rbuf + c->rhead, take);
    c->rhead += take;
    return (ssize_t)take;
}

static int conn_pull_timeout(gnutls_transport_ptr_t ptr, unsigned ms)
{
    struct dp_conn *c = ptr;
    if (c->rhead != c->rtail)
        return 1;
    struct pollfd p = {.fd = c->io.fd, .events = POLLIN};
    return poll(&p, 1, ms == GNUTLS_INDEFINITE_TIMEOUT ? -1 : (int)ms);
}

static ssize_t conn_push(gnutls_transport_ptr_t ptr, const void *data, size_t size)
{
    struct dp_conn *c = ptr;
    ssize_t n;
    do
        n = send(c->io.fd, data, size, MSG_DONTWAIT | MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        gnutls_transport_set_errno(c->tls, errno == EWOULDBLOCK ? EAGAIN : errno);
    return n;
}

static int tls_setup(struct dp_conn *c)
{
    struct dp_upstream *up = c->up;
    struct dp_pool *pool = c->pool;
    int rc = gnutls_init(&c->tls, GNUTLS_CLIENT | GNUTLS_NONBLOCK | GNUTLS_NO_SIGNAL);
    if (rc < 0)
        return rc;
    if ((rc = gnutls_priority_set(c->tls, pool->prio)) < 0 ||
        (rc = gnutls_credentials_set(c->tls, GNUTLS_CRD_CERTIFICATE, pool->cred)) < 0)
        return rc;
    /* SNI only carries host names, never address literals (RFC 6066 3). */
    if (up->ep.name[0] != '\0' && (rc = gnutls_server_name_set(c->tls, GNUTLS_NAME_DNS, up->ep.name,
                                                               strlen(up->ep.name))) < 0)
        return rc;
    /* Strict profile (RFC 8310): the handshake itself fails on a bad chain
     * or a name mismatch, so no query can ever be written before both hold. */
    gnutls_session_set_verify_cert(c->tls, up->verify_name, 0);
    gnutls_alpn_set_protocols(c->tls, &alpn_dot, 1, 0);
    if (up->pool.ticket.data != NULL) {
        /* A ticket is used once (RFC 8446 C.4): hand it over and forget it. */
        gnutls_session_set_data(c->tls, up->pool.ticket.data, up->pool.ticket.size);
        gnutls_memset(up->pool.ticket.data, 0, up->pool.ticket.size);
        gnutls_free(up->pool.ticket.data);
        up->pool.ticket.data = NULL;
        up->pool.ticket.size = 0;
    }
    gnutls_transport_set_int(c->tls, c->io.fd);
    gnutls_transport_set_ptr(c->tls, c);
    gnutls_transport_set_pull_function(c->tls, conn_pull);
    gnutls_transport_set_pull_timeout_function(c->tls, conn_pull_timeout);
    gnutls_transport_set_push_function(c->tls, conn_push);
    gnutls_handshake_set_timeout(c->tls, 0);
    return 0;
}

static void conn_open(struct dp_pool *pool, struct dp_upstream *up)
{
    if (up->pool.n_conns >= pool->cfg->max_connections || up->pool.n_conns >= DP_MAX_CONNS)
        return;
    struct dp_conn *c = conn_alloc(pool, up);
    if (c == NULL) {
        dp_log(pool->log, DOTPROXY_LOG_ERR, "upstream %s: out of memory for a connection",
               up->label);
        return;
    }
    unsigned hs_ms = pool->cfg->handshake_timeout_ms < pool->cfg->timeout_ms
                         ? pool->cfg->handshake_timeout_ms
                         : pool->cfg->timeout_ms;
    /* No connection without its deadline: a handshake that never ends
     * would hold the upstream's queries for ever. */
    if (dp_timer_set(pool->loop, &c->timer, pool_now(pool) + (uint64_t)hs_ms * 1000u) != 0) {
        dp_log(pool->log, DOTPROXY_LOG_ERR, "upstream %s: out of memory for a connection timer",
               up->label);
        conn_free(c);
        return;
    }
    up->pool.conns[up->pool.n_conns++] = c;
    dp_ctr_inc(pool->ctr, DOTPROXY_CTR_TLS_CONNECTS);
    c->state = DP_CONN_CONNECTING;

    int fd = socket(up->ep.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        goto fail_later;
    c->io.fd = fd;
    /* Nagle on a pipelined stream holds back every small query behind the
     * previous one's ACK: about half a millisecond each at light load. */
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (const struct sockaddr *)&up->ep.addr, up->ep.addrlen) != 0 &&
        errno != EINPROGRESS)
        goto fail_later;
    if (dp_loop_add(pool->loop, &c->io, DOTPROXY_EV_OUT) != 0)
        goto fail_later;
    return;
fail_later:
    /* Fail from the timer, never from inside the caller (which may be
     * dispatching the very query this connection was opened for). */
    c->connect_errno = errno;
    dp_log(pool->log, DOTPROXY_LOG_DEBUG, "upstream %s: connect: %s", up->label, strerror(errno));
    (void)dp_timer_set(pool->loop, &c->timer, pool_now(pool)); /* armed above: cannot fail */
    c->state = DP_CONN_CLOSED;
}

static size_t out_room(struct dp_conn *c)
{
    if (c->out_head == c->out_tail && !c->gnutls_send_pending) {
        c->out_head = c->out_tail = 0;
    } else if (c->out_head > 0 && c->out_cap - c->out_tail < 4096) {
        /* Bytes before out_head were taken by GnuTLS already (a pending send
         * is finished with NULL, 0), so moving the rest is safe. */
        memmove(c->out, c->out + c->out_head, c->out_tail - c->out_head);
        c->out_tail -= c->out_head;
        c->out_head = 0;
    }
    return c->out_cap - c->out_tail;
}

static int conn_has_room(struct dp_conn *c, const struct dp_query *q)
{
    return c->state == DP_CONN_READY && !c->retiring && c->slots.n_free > 0 &&
           out_room(c) >= (size_t)q->qlen + 2u;
}

static void conn_send(struct dp_conn *c, struct dp_query *q)
{
    struct dp_pool *pool = c->pool;
    uint16_t wire = dp_slots_take(&c->slots, q);
    q->conn = c;
    q->wire_id = wire;
    q->sent_us = pool_now(pool);
    c->last_tx_us = q->sent_us;
    c->up->pool.n_queries++;
    /* In send order, for the stuck-query sweep (dp_tls_pool_sweep). */
    dp_list_remove(&q->sent);
    dp_list_push_back(&pool->sent, &q->sent);
    dotproxy_dns_set_id(q->q, q->qlen, wire);
    if (c->queued++ == 0)
        c->queued_since_us = q->sent_us;
    /* Length and message in one write (RFC 7766 8). */
    dotproxy_frame_put_prefix(c->out + c->out_tail, q->qlen);
    memcpy(c->out + c->out_tail + 2, q->q, q->qlen);
    c->out_tail += (size_t)q->qlen + 2u;
    mark_dirty(c);
    if (pool->cfg->tap != NULL)
        pool->hooks.sent(pool->hooks.user, q);
}

static void drain_waiting(struct dp_conn *c)
{
    struct dp_upstream *up = c->up;
    while (up->pool.n_waiting > 0) {
        struct dp_query *q = DP_CONTAINER_OF(up->pool.waiting.next, struct dp_query, wait);
        if (!conn_has_room(c, q))
            break;
        dp_list_remove(&q->wait);
        up->pool.n_waiting--;
        conn_send(c, q);
    }
}

static void kick(struct dp_pool *pool, struct dp_upstream *up)
{
    /* Open another connection only when none is on its way and every open
     * one is saturated: one busy connection beats several idle ones. */
    if (up->pool.n_waiting == 0)
        return;
    for (unsigned i = 0; i < up->pool.n_conns; i++) {
        struct dp_conn *c = up->pool.conns[i];
        if (c->retiring)
            continue; /* on its way out: it takes nothing new */
        if (c->state != DP_CONN_READY || c->slots.n_free > 0)
            return;
    }
    conn_open(pool, up);
}

void dp_tls_pool_submit(struct dp_pool *pool, struct dp_upstream *up, struct dp_query *q)
{
    q->up = up;
    q->conn = NULL;
    if (up->pool.n_waiting == 0) {
        for (unsigned i = 0; i < up->pool.n_conns; i++) {
            if (conn_has_room(up->pool.conns[i], q)) {
                conn_send(up->pool.conns[i], q);
                return;
            }
        }
    }
    q->sent_us = pool_now(pool); /* while waiting: since when (the race delay) */
    dp_list_push_back(&up->pool.waiting, &q->wait);
    up->pool.n_waiting++;
    kick(pool, up);
}

static void slot_release(struct dp_conn *c, unsigned idx)
{
    struct dp_pool *pool = c->pool;
    dp_slots_release(&c->slots, idx);
    if (live_inflight(c) == 0) {
        c->idle_since_us = pool_now(pool);
        if (!dp_timer_armed(&c->timer))
            arm_idle_check(c);
    }
}

static unsigned live_inflight(const struct dp_conn *c)
{
    return dp_slots_live(&c->slots);
}

/* Arm (or move) c's idle check to idle_since + the idle limit. Arming a
 * timer that is not armed needs room in the loop's heap, which can fail:
 * the connection then has no idle check until a later arming succeeds or
 * the upstream closes it, which costs an open socket and nothing live (the
 * failure is logged). */
static void arm_idle_check(struct dp_conn *c)
{
    if (c->retiring)
        return; /* its timer is due now: keep it so */
    if (dp_timer_set(c->pool->loop, &c->timer, conn_idle_due(c)) != 0)
        dp_log(c->pool->log, DOTPROXY_LOG_ERR, "upstream %s: out of memory for the idle timer",
               c->up->label);
}

void dp_tls_pool_forget(struct dp_pool *pool, struct dp_query *q)
{
    if (q->conn != NULL) {
        struct dp_conn *c = q->conn;
        /* Keep the slot until the answer arrives, so the ID is not reused
         * while the upstream may still answer it (RFC 7766 6.2.1.1). */
        dp_slots_kill(&c->slots, dp_slots_index(&c->slots, q->wire_id));
        q->conn = NULL;
        if (!c->retiring && c->slots.n_dead * RETIRE_DEAD_DIV >= c->slots.n) {
            /* Retired from its timer, never from inside the caller (which
             * may be failing this very query). Arming the timer can fail
             * (no room in the heap): then the idle check retires it. */
            c->retiring = 1;
            dp_log(pool->log, DOTPROXY_LOG_INFO,
                   "upstream %s: %u queries on a connection were never answered; replacing it",
                   c->up->label, c->slots.n_dead);
            if (dp_timer_set(pool->loop, &c->timer, pool_now(pool)) != 0)
                dp_log(pool->log, DOTPROXY_LOG_ERR, "upstream %s: out of memory for a timer",
                       c->up->label);
        } else if (live_inflight(c) == 0) {
            c->idle_since_us = pool_now(pool);
            arm_idle_check(c);
        }
    } else if (q->up != NULL && dp_list_linked(&q->wait)) {
        dp_list_remove(&q->wait);
        q->up->pool.n_waiting--;
    }
    q->up = NULL;
}

/* Read into p: octets read (> 0), 0 when the peer closed, GNUTLS_E_AGAIN
 * when nothing is there now, another negative code on error (errno set for
 * a plain connection). GnuTLS's codes for both transports, so conn_read
 * has one loop. */
static ssize_t conn_recv(struct dp_conn *c, uint8_t *p, size_t room)
{
    if (c->tls != NULL)
        return gnutls_record_recv(c->tls, p, room);
    ssize_t n;
    do
        n = recv(c->io.fd, p, room, MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK ? GNUTLS_E_AGAIN : GNUTLS_E_PULL_ERROR;
    return n;
}

/* conn_write for a plain connection: the queued frames as they are. A
 * partial write leaves the rest queued (gnutls_send_pending then means
 * "output pending", so the loop wakes us when the socket has room).
 * Returns 0, or -1 when c was failed. */
static int plain_write(struct dp_conn *c)
{
    struct dp_pool *pool = c->pool;
    while (c->out_head < c->out_tail) {
        ssize_t n;
        do
            n = send(c->io.fd, c->out + c->out_head, c->out_tail - c->out_head,
                     MSG_DONTWAIT | MSG_NOSIGNAL);
        while (n < 0 && errno == EINTR);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            c->gnutls_send_pending = 1;
            dp_loop_want(pool->loop, &c->io, DOTPROXY_EV_IN | DOTPROXY_EV_OUT);
            return 0;
        }
        if (n < 0) {
            char why[160];
            snprintf(why, sizeof why, "write: %s", strerror(errno));
            conn_fail(c, why, 0, 1);
            return -1;
        }
        c->out_head += (size_t)n;
    }
    c->gnutls_send_pending = 0;
    c->out_head = c->out_tail = 0;
    c->queued = 0;
    dp_loop_want(pool->loop, &c->io, DOTPROXY_EV_IN);
    return 0;
}

/* Tell the upstream we are done (TLS close_notify; nothing to say in plain
 * DNS, where closing the socket says it). */
static void conn_bye(struct dp_conn *c)
{
    if (c->tls != NULL)
        gnutls_bye(c->tls, GNUTLS_SHUT_WR);
}

static void take_ticket(struct dp_conn *c)
{
    struct dp_upstream *up = c->up;
    gnutls_datum_t d = {NULL, 0};
    if (gnutls_session_get_data2(c->tls, &d) < 0)
        return;
    if (up->pool.ticket.data != NULL) {
        gnutls_memset(up->pool.ticket.data, 0, up->pool.ticket.size);
        gnutls_free(up->pool.ticket.data);
    }
    up->pool.ticket = d;
    c->ticket_taken = 1;
}

static void maybe_take_ticket(struct dp_conn *c)
{
    /* TLS 1.3 tickets come after the handshake; asking for session data
     * before one arrived would wait for it (a stall), so look at the flag. */
    if (!c->ticket_taken && (gnutls_session_get_flags(c->tls) & GNUTLS_SFLAGS_SESSION_TICKET))
        take_ticket(c);
}

static void conn_ready(struct dp_conn *c)
{
    struct dp_pool *pool = c->pool;
    struct dp_upstream *up = c->up;
    /* Before any query crosses, on full and resumed handshakes alike: the
     * chain against the trust in force now, the leaf's names and key, and
     * the pins against the validated chain (trust.c says why each). */
    char why[512];
    if (c->tls == NULL) {
        c->state = DP_CONN_READY; /* plain DNS: nothing to check */
        dp_log(pool->log, DOTPROXY_LOG_DEBUG, "upstream %s: connected, plain DNS over TCP",
               up->label);
        goto ready;
    }
    int64_t not_after = 0;
    if (dp_trust_check_peer(c->tls, pool->cred, up->verify_name, (const uint8_t(*)[32])up->pins,
                            up->n_pins, why, sizeof why, &not_after) != 0) {
        conn_fail(c, why, 1, 0);
        return;
    }
    dp_upstream_cert_seen(up, not_after);
    c->state = DP_CONN_READY;
    dp_ctr_inc(pool->ctr, DOTPROXY_CTR_TLS_HANDSHAKES);
    int resumed = gnutls_session_is_resumed(c->tls);
    if (resumed)
        dp_ctr_inc(pool->ctr, DOTPROXY_CTR_TLS_RESUMED);
    if (gnutls_protocol_get_version(c->tls) != GNUTLS_TLS1_3)
        take_ticket(c); /* TLS 1.2: the session is resumable right away */
    else
        maybe_take_ticket(c);
    if (dp_log_enabled(pool->log, DOTPROXY_LOG_DEBUG)) {
        char *desc = gnutls_session_get_desc(c->tls);
        dp_log(pool->log, DOTPROXY_LOG_DEBUG, "upstream %s: connected, %s%s", up->label,
               desc ? desc : "?", resumed ? ", resumed" : "");
        gnutls_free(desc);
    }
ready:
    dp_upstream_connect_succeeded(up);
    dp_loop_want(pool->loop, &c->io, DOTPROXY_EV_IN);
    c->idle_since_us = pool_now(pool);
    /* Still armed for the handshake deadline: moving it cannot fail. */
    (void)dp_timer_set(pool->loop, &c->timer, c->idle_since_us + idle_limit(c));
    drain_waiting(c);
    kick(pool, up);
}

static void handshake_step(struct dp_conn *c)
{
    struct dp_pool *pool = c->pool;
    int rc;
    do
        rc = gnutls_handshake(c->tls);
    while ((rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED) && c->rhead != c->rtail &&
           gnutls_record_get_direction(c->tls) == 0);
    if (rc == 0) {
        conn_ready(c);
        return;
    }
    if (rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED) {
        dp_loop_want(pool->loop, &c->io,
                     gnutls_record_get_direction(c->tls) ? DOTPROXY_EV_OUT : DOTPROXY_EV_IN);
        return;
    }
    char why[512];
    if (rc == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR) {
        gnutls_datum_t txt = {NULL, 0};
        unsigned status = gnutls_session_get_verify_cert_status(c->tls);
        gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &txt, 0);
        snprintf(why, sizeof why, "certificate rejected for name '%s': %s", c->up->verify_name,
                 txt.data ? (const char *)txt.data : "verification failed");
        gnutls_free(txt.data);
    } else {
        snprintf(why, sizeof why, "TLS handshake: %s", gnutls_strerror(rc));
    }
    conn_fail(c, why, 1, 0);
}

static void conn_connected(struct dp_conn *c)
{
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(c->io.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
        err = errno;
    if (err != 0) {
        char why[128];
        snprintf(why, sizeof why, "connect: %s", strerror(err));
        conn_fail(c, why, 1, 0);
        return;
    }
    if (c->up->plain) {
        conn_ready(c);
        return;
    }
    int rc = tls_setup(c);
    if (rc < 0) {
        char why[128];
        snprintf(why, sizeof why, "TLS setup: %s", gnutls_strerror(rc));
        conn_fail(c, why, 1, 0);
        return;
    }
    c->state = DP_CONN_HANDSHAKING;
    handshake_step(c);
}

/* An answer came: match it to its query by wire ID, then by question
 * (RFC 7858 3.3). Returns 0, or -1 when the connection was failed. */
static int conn_answer(struct dp_conn *c, uint8_t *msg, size_t len)
{
    struct dp_pool *pool = c->pool;
    dotproxy_dns_info info;
    if (dotproxy_dns_parse(&info, msg, len) != 0 || !(info.flags & DOTPROXY_DNS_FLAG_QR)) {
        dp_ctr_inc(pool->ctr, DOTPROXY_CTR_UPSTREAM_BAD_ANSWERS);
        conn_fail(c, "malformed answer", HEALTH_PROTOCOL, 0);
        return -1;
    }
    unsigned idx = 0;
    int match = dp_slots_match(&c->slots, info.id, &idx);
    if (match == DP_SLOT_UNKNOWN) {
        dp_ctr_inc(pool->ctr, DOTPROXY_CTR_UPSTREAM_BAD_ANSWERS);
        conn_fail(c, "answer with an ID we did not send", HEALTH_PROTOCOL, 0);
        return -1;
    }
    if (match == DP_SLOT_DEAD) {
        if (c->ping_pending && info.id == c->ping_wire) {
            /* Our liveness check: any answer shows the connection and the
             * upstream work. The connection stays as idle as it was. */
            c->ping_pending = 0;
            dp_slots_release(&c->slots, idx);
            dp_upstream_answered(c->up, pool_now(pool));
            if (live_inflight(c) == 0)
                arm_idle_check(c);
            return 0;
        }
        slot_release(c, idx); /* late answer to a query that timed out */
        return 0;
    }
    struct dp_query *q = c->slots.occupant[idx];
    int same = info.qdcount == 1 && info.qtype == q->qtype && info.qclass == q->qclass &&
               info.qname_len == q->qname_len;
    if (same) {
        /* Both questions start right after the header; an uncompressed name
         * is compared in place, anything else through the general check. */
        if ((size_t)info.question_end - 4u - DOTPROXY_DNS_HEADER_SIZE == q->qname_len) {
            const uint8_t *a = msg + DOTPROXY_DNS_HEADER_SIZE;
            const uint8_t *b = q->q + DOTPROXY_DNS_HEADER_SIZE;
            for (unsigned i = 0; i < q->qname_len && same; i++) {
                same = dp_lower(a[i]) == dp_lower(b[i]);
            }
        } else {
            same = dotproxy_dns_same_question(msg, len, q->q, q->qlen) == 1;
        }
    }
    if (!same) {
        dp_ctr_inc(pool->ctr, DOTPROXY_CTR_UPSTREAM_BAD_ANSWERS);
        conn_fail(c, "answer to a different question", HEALTH_PROTOCOL, 0);
        return -1;
    }
    dp_upstream_rtt_sample(c->up, pool_now(pool) - q->sent_us);
    dp_upstream_answered(c->up, pool_now(pool));
    c->n_answered++;
    c->up->pool.n_answers++;
    q->conn = NULL;
    slot_release(c, idx);
    pool->hooks.answer(pool->hooks.user, q, msg, len, &info);
    if (c->up->pool.n_waiting > 0)
        drain_waiting(c);
    if (live_inflight(c) == 0)
        /* The answer may have taught a shorter idle limit (RFC 7828
         * keepalive): the timer must follow it, not fire at the old one. */
        arm_idle_check(c);
    return 0;
}

static void conn_read(struct dp_conn *c)
{
    for (;;) {
        uint8_t *p;
        size_t room = dotproxy_frame_space(&c->in, &p);
        ssize_t n = conn_recv(c, p, room);
        if (n > 0) {
            c->last_rx_us = pool_now(c->pool);
            dotproxy_frame_commit(&c->in, (size_t)n);
            const uint8_t *m;
            size_t mlen;
            int rc;
            while ((rc = dotproxy_frame_next(&c->in, &m, &mlen)) == 1) {
                /* The frame buffer is ours: write access is fine. */
                uint8_t *msg = c->inbuf + (m - c->inbuf);
                if (conn_answer(c, msg, mlen) != 0)
                    return;
            }
            if (rc < 0) {
                dp_ctr_inc(c->pool->ctr, DOTPROXY_CTR_UPSTREAM_BAD_ANSWERS);
                conn_fail(c, "broken framing", HEALTH_PROTOCOL, 0);
                return;
            }
            continue;
        }
        if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) {
            /* GnuTLS also says AGAIN after handling a post-handshake message
             * (a TLS 1.3 ticket) without asking for more bytes: keep going
             * while the read-ahead still holds some, or poll would never
             * tell us about them. */
            if (c->tls != NULL && (c->rhead != c->rtail || gnutls_record_check_pending(c->tls) > 0))
                continue;
            break;
        }
        if (n == 0 || n == GNUTLS_E_PREMATURE_TERMINATION) {
            conn_fail(c, "closed by upstream", 0, 1);
            return;
        }
        char why[160];
        if (c->tls != NULL)
            snprintf(why, sizeof why, "TLS read: %s", gnutls_strerror((int)n));
        else
            snprintf(why, sizeof why, "read: %s", strerror(errno));
        conn_fail(c, why, 0, 1);
        return;
    }
    if (c->tls != NULL)
        maybe_take_ticket(c);
    if (c->slots.used > 0) {
        c->ack_owed = 1;
        mark_dirty(c);
    }
}

/* Acknowledge at once what the upstream sent. A query written to c carries
 * the acknowledgement by itself; without one, ours would be delayed, and an
 * upstream with Nagle's algorithm on (most do not set TCP_NODELAY) holds its
 * next answers until that acknowledgement comes: at light load every answer
 * waited for the next query, ~0.5 ms. Value 2 (even) sends the pending
 * acknowledgement now and keeps delayed acknowledgements otherwise (tcp(7):
 * TCP_QUICKACK is not permanent; the kernel re-enters "pingpong" mode for an
 * even value), so a busy connection does not turn into one ACK per segment. */
static void conn_ack_now(struct dp_conn *c)
{
    int v = 2;
    (void)setsockopt(c->io.fd, IPPROTO_TCP, TCP_QUICKACK, &v, sizeof v);
}

/* Encrypt and send what is queued. Returns 0, or -1 when c was failed. */
static int conn_write(struct dp_conn *c)
{
    struct dp_pool *pool = c->pool;
    if (c->tls == NULL)
        return plain_write(c);
    while (c->gnutls_send_pending || c->out_head < c->out_tail) {
        ssize_t n;
        if (c->gnutls_send_pending) {
            /* GnuTLS already holds this record: finish it, do not encrypt
             * the bytes a second time. */
            n = gnutls_record_send(c->tls, NULL, 0);
        } else {
            size_t len = c->out_tail - c->out_head;
            c->send_pending_len = len < TLS_RECORD_MAX ? len : TLS_RECORD_MAX;
            n = gnutls_record_send(c->tls, c->out + c->out_head, c->send_pending_len);
        }
        if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) {
            c->gnutls_send_pending = 1;
            dp_loop_want(pool->loop, &c->io, DOTPROXY_EV_IN | DOTPROXY_EV_OUT);
            return 0;
        }
        if (n < 0) {
            char why[160];
            snprintf(why, sizeof why, "TLS write: %s", gnutls_strerror((int)n));
            conn_fail(c, why, 0, 1);
            return -1;
        }
        c->gnutls_send_pending = 0;
        c->out_head += c->send_pending_len;
    }
    c->out_head = c->out_tail = 0;
    c->queued = 0;
    dp_loop_want(pool->loop, &c->io, DOTPROXY_EV_IN);
    return 0;
}

static void conn_on_ready(struct dp_io *io, unsigned revents)
{
    struct dp_conn *c = DP_CONTAINER_OF(io, struct dp_conn, io);
    switch (c->state) {
    case DP_CONN_CONNECTING: conn_connected(c); return;
    case DP_CONN_HANDSHAKING: handshake_step(c); return;
    case DP_CONN_READY:
        if ((revents & DOTPROXY_EV_OUT) && c->gnutls_send_pending && conn_write(c) != 0)
            return;
        if (revents & (DOTPROXY_EV_IN | DOTPROXY_EV_ERR))
            conn_read(c);
        return;
    default: return;
    }
}

static void conn_timer_fire(struct dp_timer *t)
{
    struct dp_conn *c = DP_CONTAINER_OF(t, struct dp_conn, timer);
    struct dp_pool *pool = c->pool;
    switch (c->state) {
    case DP_CONN_CONNECTING:
    case DP_CONN_HANDSHAKING: conn_fail(c, "connect or handshake timed out", 1, 0); return;
    case DP_CONN_CLOSED: { /* a connect that failed at once */
        char why[96];
        snprintf(why, sizeof why, "connect: %s", strerror(c->connect_errno));
        conn_fail(c, why, 1, 0);
        return;
    }
    case DP_CONN_READY: break;
    }
    if (c->retiring) {
        conn_retire(c);
        return;
    }
    if (c->ping_pending && pool_now(pool) >= c->ping_due_us) {
        /* Connected, and silent to a query every resolver answers from its
         * cache: the path or the upstream is gone (no FIN or RST came). */
        conn_fail(c, "no answer to a liveness check: connection presumed dead", HEALTH_CONNECT, 0);
        return;
    }
    if (live_inflight(c) != 0) {
        /* Re-armed when it next becomes idle; the check's deadline holds
         * meanwhile (it just fired, so the heap has room: cannot fail). */
        if (c->ping_pending)
            (void)dp_timer_set(pool->loop, t, c->ping_due_us);
        return;
    }
    uint64_t due = conn_idle_due(c);
    if (pool_now(pool) < due) {
        /* It just fired, so the heap has room for it: this cannot fail. */
        (void)dp_timer_set(pool->loop, t, due);
        return;
    }
    /* Idle (or only dead queries left, i.e. a silent upstream): close it
     * politely; nothing live is lost. */
    dp_ctr_inc(pool->ctr, DOTPROXY_CTR_TLS_CLOSED_IDLE);
    dp_log(pool->log, DOTPROXY_LOG_DEBUG, "upstream %s: closing idle connection", c->up->label);
    conn_bye(c);
    struct dp_upstream *up = c->up;
    conn_close(c);
    kick(pool, up);
}

static void conn_fail(struct dp_conn *c, const char *why, int health_failure, int by_peer)
{
    struct dp_upstream *up = c->up;
    struct dp_pool *pool = c->pool;
    int was_ready = c->state == DP_CONN_READY;
    /* Idle: nothing in flight, not even a forgotten query it still owed. */
    int was_idle = c->slots.used == 0;
    /* Closed with queries on it and not one answered: it takes queries and
     * fails them (a server that closes after N queries answers some). */
    if (by_peer && was_ready && live_inflight(c) > 0 && c->n_answered == 0)
        health_failure = HEALTH_PROTOCOL;
    struct dp_list retry;
    dp_list_init(&retry);
    for (unsigned i = 0; i < c->slots.n && c->slots.used > 0; i++) {
        struct dp_query *q = c->slots.occupant[i];
        if (q == NULL)
            continue;
        if (!c->slots.dead[i]) {
            q->conn = NULL;
            dp_list_push_back(&retry, &q->wait);
        }
        dp_slots_release(&c->slots, i);
    }
    if (by_peer && was_ready) {
        dp_ctr_inc(pool->ctr, DOTPROXY_CTR_TLS_CLOSED_BY_PEER);
        uint64_t last = c->last_rx_us > c->last_tx_us ? c->last_rx_us : c->last_tx_us;
        uint64_t quiet = pool_now(pool) - last;
        if (was_idle && quiet >= 1000000u) {
            /* The server closed a connection idle for `quiet`: close ours a
             * little sooner from now on (public resolvers: about 10 s). */
            uint64_t limit = quiet - quiet / 5;
            if (dp_upstream_learn_idle_limit(up, limit)) {
                dp_log(pool->log, DOTPROXY_LOG_INFO,
                       "upstream %s closes idle connections after about %llu ms; closing ours "
                       "after %llu ms",
                       up->label, (unsigned long long)(quiet / 1000),
                       (unsigned long long)(limit / 1000));
            }
        }
        dp_log(pool->log, DOTPROXY_LOG_DEBUG, "upstream %s: %s", up->label, why);
    } else {
        if (!was_ready)
            dp_ctr_inc(pool->ctr, DOTPROXY_CTR_TLS_FAILURES);
        /* A health failure is told by upstream.c, summed up while it lasts. */
        if (health_failure)
            dp_upstream_failure_reason(up, why);
        dp_log(pool->log, health_failure ? DOTPROXY_LOG_DEBUG : DOTPROXY_LOG_WARN,
               "upstream %s: %s", up->label, why);
    }
    conn_close(c);
    if (health_failure == HEALTH_PROTOCOL)
        dp_upstream_protocol_failed(up);
    else if (health_failure)
        dp_upstream_connect_failed(up);

    /* Queries that were on the wire are sent again (RFC 7858 3.4 asks
     * clients to survive closes). A query rarely caused the close it was
     * caught in (a server closing after N queries takes the rest of the
     * pipeline down with it), so a few re-sends are allowed, within the
     * query's deadline; past that, SERVFAIL. */
    while (!dp_list_empty(&retry)) {
        struct dp_query *q = DP_CONTAINER_OF(retry.next, struct dp_query, wait);
        dp_list_remove(&q->wait);
        if (q->retries < DP_MAX_RESENDS) {
            q->retries++;
            dp_ctr_inc(pool->ctr, DOTPROXY_CTR_RETRIES);
            /* The upstream failed it: another one, if any is left. */
            uint32_t tried = q->tried | (1u << up->index);
            if (health_failure && dp_upstreams_any_usable(pool->ups, tried))
                q->tried = tried;
            pool->hooks.redispatch(pool->hooks.user, q);
        } else {
            pool->hooks.fail(pool->hooks.user, q, DOTPROXY_EUPSTREAM);
        }
    }
    if (health_failure && up->pool.n_conns == 0) {
        /* This upstream cannot take its waiting queries now: move them on. */
        while (up->pool.n_waiting > 0) {
            struct dp_query *q = DP_CONTAINER_OF(up->pool.waiting.next, struct dp_query, wait);
            dp_list_remove(&q->wait);
            up->pool.n_waiting--;
            q->tried |= 1u << up->index;
            pool->hooks.redispatch(pool->hooks.user, q);
        }
    } else {
        kick(pool, up);
    }
}

/* c holds too many dead slots: close it, and give its live queries (still
 * on time) to a fresh connection or another upstream. Not a failure of the
 * upstream (its silence was counted through the hedge's RTT samples). */
static void conn_retire(struct dp_conn *c)
{
    struct dp_upstream *up = c->up;
    struct dp_pool *pool = c->pool;
    struct dp_list again;
    dp_list_init(&again);
    for (unsigned i = 0; i < c->slots.n && c->slots.used > 0; i++) {
        struct dp_query *q = c->slots.occupant[i];
        if (q == NULL)
            continue;
        if (!c->slots.dead[i]) {
            q->conn = NULL;
            dp_list_push_back(&again, &q->wait);
        }
        dp_slots_release(&c->slots, i);
    }
    conn_bye(c);
    conn_close(c);
    while (!dp_list_empty(&again)) {
        struct dp_query *q = DP_CONTAINER_OF(again.next, struct dp_query, wait);
        dp_list_remove(&q->wait);
        pool->hooks.redispatch(pool->hooks.user, q);
    }
    kick(pool, up);
}

/* May c's queued queries wait for a later turn? Only while the upstream
 * owes at least HOLD_MIN_DUE answers for queries already written: their
 * arrival makes another turn, whose flush then writes more queries per TLS
 * record and per send() (each send also costs us the upstream's receive
 * processing and wake-up). Bounded by HOLD_MAX_US after the oldest query was
 * queued and by HOLD_MAX_BYTES of queries; never with a record in progress. */
static int may_hold(const struct dp_conn *c, uint64_t now, uint64_t *due)
{
    if (c->gnutls_send_pending || c->out_head == c->out_tail ||
        c->out_tail - c->out_head >= HOLD_MAX_BYTES || c->slots.used < c->queued + HOLD_MIN_DUE)
        return 0;
    *due = c->queued_since_us + HOLD_MAX_US;
    return now < *due;
}

void dp_tls_pool_flush(struct dp_pool *pool, int force)
{
    struct dp_conn *held = NULL;
    uint64_t now = pool_now(pool), due;
    pool->write_due_us = UINT64_MAX;
    while (pool->dirty != NULL) {
        struct dp_conn *c = pool->dirty;
        pool->dirty = c->next_dirty;
        c->dirty = 0;
        c->next_dirty = NULL;
        if (c->state == DP_CONN_CLOSED) {
            if (!dp_timer_armed(&c->timer) && c->io.want == 0)
                conn_free(c);
            continue;
        }
        if (c->state != DP_CONN_READY)
            continue;
        if (!force && may_hold(c, now, &due)) {
            c->dirty = 1;
            c->next_dirty = held;
            held = c;
            if (due < pool->write_due_us)
                pool->write_due_us = due;
            continue;
        }
        int writes = c->gnutls_send_pending || c->out_head < c->out_tail;
        int ack_owed = c->ack_owed;
        c->ack_owed = 0;
        if (conn_write(c) != 0)
            continue; /* c was failed (and freed) */
        if (ack_owed && !writes && c->slots.used > 0 && c->slots.used <= ACK_NOW_MAX_INFLIGHT)
            conn_ack_now(c);
    }
    pool->dirty = held;
}

void dp_tls_pool_probe(struct dp_pool *pool, struct dp_upstream *up)
{
    dp_log(pool->log, DOTPROXY_LOG_DEBUG, "upstream %s: probing", up->label);
    conn_open(pool, up);
}

void dp_tls_pool_ping(struct dp_pool *pool, struct dp_upstream *up)
{
    /* ". NS IN", RD set, no EDNS: the priming query (RFC 8109), which every
     * recursive resolver answers from its cache. */
    static const uint8_t ping_query[] = {0, 0, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 1};
    struct dp_conn *c = NULL;
    for (unsigned i = 0; i < up->pool.n_conns; i++) {
        struct dp_conn *k = up->pool.conns[i];
        if (k->ping_pending)
            return; /* one check at a time */
        if (c == NULL && k->state == DP_CONN_READY && !k->retiring && k->slots.n_free > 0 &&
            !k->gnutls_send_pending && out_room(k) >= sizeof ping_query + 2u)
            c = k;
    }
    if (c == NULL)
        return;
    uint64_t now = pool_now(pool);
    unsigned idx = c->slots.free[c->slots.n_free - 1];
    uint16_t wire = dp_slots_take(&c->slots, NULL);
    dp_slots_kill(&c->slots, idx); /* no query record: nothing to re-send or fail */
    c->ping_pending = 1;
    c->ping_wire = wire;
    uint64_t wait = 4 * up->srtt_us;
    uint64_t cap = (uint64_t)pool->cfg->timeout_ms * 1000u;
    if (wait < PING_MIN_US)
        wait = PING_MIN_US;
    c->ping_due_us = now + (wait < cap ? wait : cap);
    dotproxy_frame_put_prefix(c->out + c->out_tail, sizeof ping_query);
    memcpy(c->out + c->out_tail + 2, ping_query, sizeof ping_query);
    dotproxy_dns_set_id(c->out + c->out_tail + 2, sizeof ping_query, wire);
    c->out_tail += sizeof ping_query + 2u;
    c->last_tx_us = now;
    if (c->queued++ == 0)
        c->queued_since_us = now;
    mark_dirty(c);
    dp_log(pool->log, DOTPROXY_LOG_DEBUG, "upstream %s: idle, checking its connection", up->label);
    /* Arming a timer that is not armed can fail (no room in the heap): the
     * check then ends with the idle close or the next answer. */
    if ((!dp_timer_armed(&c->timer) || c->ping_due_us < c->timer.due_us) &&
        dp_timer_set(pool->loop, &c->timer, c->ping_due_us) != 0)
        dp_log(pool->log, DOTPROXY_LOG_ERR, "upstream %s: out of memory for a timer", up->label);
}

void dp_tls_pool_close_all(struct dp_pool *pool, struct dp_upstream *up)
{
    while (up->pool.n_conns > 0) {
        struct dp_conn *c = up->pool.conns[0];
        for (unsigned i = 0; i < c->slots.n; i++)
            if (c->slots.occupant[i] != NULL && !c->slots.dead[i])
                c->slots.occupant[i]->conn = NULL;
        if (c->state == DP_CONN_READY)
            conn_bye(c);
        if (c->dirty) {
            /* Held for a later flush (a reload removing this upstream): take
             * it off the list, since it is freed now. */
            struct dp_conn **pp = &pool->dirty;
            while (*pp != NULL && *pp != c)
                pp = &(*pp)->next_dirty;
            if (*pp == c)
                *pp = c->next_dirty;
            c->dirty = 0;
        }
        conn_close(c);
    }
}

void dp_tls_pool_shutdown(struct dp_pool *pool)
{
    /* Connections closed earlier this turn wait on the dirty list to be
     * freed; the others are closed below. */
    while (pool->dirty != NULL) {
        struct dp_conn *c = pool->dirty;
        pool->dirty = c->next_dirty;
        c->dirty = 0;
        if (c->state == DP_CONN_CLOSED && c->io.want == 0 && !dp_timer_armed(&c->timer)) {
            int listed = 0;
            for (unsigned i = 0; c->up != NULL && i < c->up->pool.n_conns; i++)
                listed |= c->up->pool.conns[i] == c;
            if (!listed)
                conn_free(c);
        }
    }
    for (size_t i = 0; i < pool->ups->n; i++)
        dp_tls_pool_close_all(pool, pool->ups->ups[i]);
}

/* Hedge delay for a query on up: long enough for a normal answer (four
 * smoothed RTTs, and never under 250 ms, since a recursive resolver may need
 * a few hundred ms for a name it has to look up), short enough to leave time
 * for a second try within the deadline. */
static uint64_t hedge_delay(const struct dp_pool *pool, const struct dp_upstream *up)
{
    uint64_t h = 4 * up->srtt_us;
    if (h < 250000u)
        h = 250000u;
    uint64_t cap = (uint64_t)pool->cfg->timeout_ms * 500u; /* half the deadline */
    return h < cap ? h : cap;
}

/* The peer has not acknowledged data we sent it for at least `ms`: the
 * connection is half-open (peer gone, path black-holed), not just slow. */
static int conn_unacked_for(const struct dp_conn *c, uint64_t ms)
{
    struct tcp_info ti;
    socklen_t len = sizeof ti;
    if (getsockopt(c->io.fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0)
        return 0;
    return ti.tcpi_unacked > 0 && ti.tcpi_last_ack_recv >= ms;
}

void dp_tls_pool_sweep(struct dp_pool *pool)
{
    uint64_t now = pool_now(pool);
    while (!dp_list_empty(&pool->sent)) {
        struct dp_query *q = DP_CONTAINER_OF(pool->sent.next, struct dp_query, sent);
        struct dp_conn *c = q->conn;
        if (c == NULL) {
            dp_list_remove(&q->sent);
            continue;
        }
        uint64_t h = hedge_delay(pool, c->up);
        if (q->sent_us + h > now)
            break; /* later ones were sent later */
        dp_list_remove(&q->sent);
        struct dp_upstream *up = c->up;
        if (conn_unacked_for(c, h / 1000)) {
            /* Every query on it is stuck: replace the connection (its live
             * queries are re-sent once) and count it against the upstream. */
            conn_fail(c, "peer stopped acknowledging data: connection presumed dead", 1, 0);
            continue;
        }
        /* The connection is alive but this answer is late: if another
         * upstream can take it, move the query there. Its old slot stays
         * reserved until the late answer arrives (then it is discarded). */
        uint32_t tried = q->tried | (1u << up->index);
        if (dp_upstreams_any_usable(pool->ups, tried)) {
            /* Count the wait as a (bad) round trip, so that an upstream that
             * never answers loses its place instead of being tried first for
             * ever as "unmeasured". */
            dp_upstream_rtt_sample(up, 2 * h);
            dp_tls_pool_forget(pool, q);
            q->tried = tried;
            dp_ctr_inc(pool->ctr, DOTPROXY_CTR_HEDGED);
            pool->hooks.redispatch(pool->hooks.user, q);
        }
    }
    race_sweep(pool);
}

/* See RACE_MIN_US. */
static uint64_t race_delay(const struct dp_upstream *up)
{
    uint64_t d = 2 * up->srtt_us;
    if (d < RACE_MIN_US)
        d = RACE_MIN_US;
    return d < RACE_MAX_US ? d : RACE_MAX_US;
}

/* up has no connection ready: its waiting queries wait for a connect. */
static int connecting(const struct dp_upstream *up)
{
    if (up->pool.n_waiting == 0)
        return 0;
    for (unsigned i = 0; i < up->pool.n_conns; i++)
        if (up->pool.conns[i]->state == DP_CONN_READY)
            return 0;
    return 1;
}

/* When up's oldest waiting query is due to be raced, or UINT64_MAX. */
static uint64_t race_due(const struct dp_upstream *up)
{
    if (!connecting(up))
        return UINT64_MAX;
    const struct dp_query *q = DP_CONTAINER_OF(up->pool.waiting.next, struct dp_query, wait);
    return q->sent_us + race_delay(up);
}

/* When a query parked by race() (no other upstream usable, none in
 * `tried`) is looked at again: when the first other upstream's backoff
 * ends, and at most RACE_RECHECK_US from now. */
static uint64_t race_recheck(const struct dp_upstreams *set, uint32_t tried, uint64_t now)
{
    uint64_t at = now + RACE_RECHECK_US;
    for (size_t i = 0; i < set->n; i++) {
        const struct dp_upstream *o = set->ups[i];
        if (!(tried & (1u << o->index)) && o->down_until_us > now && o->down_until_us < at)
            at = o->down_until_us;
    }
    return at;
}

/* Queries that waited for up's connect longer than its race delay go to
 * another upstream (when one is usable; else they keep waiting), and up
 * is "slow" for new queries until its connect ends either way. */
static void race(struct dp_pool *pool, struct dp_upstream *up, uint64_t now)
{
    uint64_t d = race_delay(up);
    uint32_t bit = 1u << up->index;
    int moved = 0;
    struct dp_list late;
    dp_list_init(&late);
    while (up->pool.n_waiting > 0) {
        struct dp_query *q = DP_CONTAINER_OF(up->pool.waiting.next, struct dp_query, wait);
        if (q->sent_us + d > now)
            break; /* later ones came later */
        if (!dp_upstreams_any_usable(pool->ups, q->tried | bit)) {
            /* Nowhere else to go now: keep waiting, and look again when
             * another upstream's backoff ends (at most RACE_RECHECK_US
             * from now: a reload may bring new ones, a probe may end a
             * backoff early). Its deadline ends the wait otherwise. */
            q->sent_us = race_recheck(pool->ups, q->tried | bit, now) - d;
            break;
        }
        dp_list_remove(&q->wait);
        up->pool.n_waiting--;
        q->up = NULL;
        q->tried |= bit;
        dp_list_push_back(&late, &q->wait);
        moved = 1;
    }
    if (moved) {
        dp_upstream_connect_slow(up);
        dp_ctr_inc(pool->ctr, DOTPROXY_CTR_HEDGED);
    }
    while (!dp_list_empty(&late)) {
        struct dp_query *q = DP_CONTAINER_OF(late.next, struct dp_query, wait);
        dp_list_remove(&q->wait);
        pool->hooks.redispatch(pool->hooks.user, q);
    }
}

static void race_sweep(struct dp_pool *pool)
{
    uint64_t now = pool_now(pool);
    for (size_t i = 0; i < pool->ups->n; i++) {
        struct dp_upstream *up = pool->ups->ups[i];
        if (race_due(up) <= now)
            race(pool, up, now);
    }
}

static uint64_t next_sweep(const struct dp_pool *pool)
{
    uint64_t due = UINT64_MAX;
    for (size_t i = 0; i < pool->ups->n; i++) {
        uint64_t r = race_due(pool->ups->ups[i]);
        if (r < due)
            due = r;
    }
    if (dp_list_empty(&pool->sent))
        return due;
    const struct dp_query *q = DP_CONTAINER_OF(pool->sent.next, struct dp_query, sent);
    if (q->conn == NULL)
        return 0; /* a forgotten query to unlink: at once */
    uint64_t h = q->sent_us + hedge_delay(pool, q->conn->up);
    return h < due ? h : due;
}

void dp_tls_pool_evict(struct dp_upstream *up, struct dp_list *out)
{
    for (unsigned k = 0; k < up->pool.n_conns; k++) {
        struct dp_conn *c = up->pool.conns[k];
        for (unsigned i = 0; i < c->slots.n; i++) {
            struct dp_query *q = c->slots.occupant[i];
            if (q == NULL || c->slots.dead[i])
                continue;
            /* Its slot stays reserved as dead: the connection may still
             * bring the answer, which is then discarded. */
            dp_slots_kill(&c->slots, i);
            q->conn = NULL;
            q->up = NULL;
            dp_list_remove(&q->wait);
            dp_list_push_back(out, &q->wait);
        }
    }
    while (up->pool.n_waiting > 0) {
        struct dp_query *q = DP_CONTAINER_OF(up->pool.waiting.next, struct dp_query, wait);
        dp_list_remove(&q->wait);
        up->pool.n_waiting--;
        q->up = NULL;
        dp_list_push_back(out, &q->wait);
    }
}

void dp_tls_pool_release(struct dp_pool *pool, struct dp_upstream *up)
{
    dp_tls_pool_close_all(pool, up);
    if (up->pool.ticket.data != NULL) {
        gnutls_memset(up->pool.ticket.data, 0, up->pool.ticket.size);
        gnutls_free(up->pool.ticket.data);
        up->pool.ticket.data = NULL;
        up->pool.ticket.size = 0;
    }
}

void dp_tls_pool_describe(const struct dp_upstream *up, dotproxy_upstream_stats *out)
{
    unsigned inflight = 0;
    for (unsigned k = 0; k < up->pool.n_conns; k++)
        inflight += live_inflight(up->pool.conns[k]);
    out->connections = up->pool.n_conns;
    out->inflight = inflight;
    out->queries = up->pool.n_queries;
    out->answers = up->pool.n_answers;
}

uint64_t dp_tls_pool_next_due(const struct dp_pool *pool)
{
    uint64_t due = next_sweep(pool);
    if (pool->dirty != NULL && pool->write_due_us < due)
        due = pool->write_due_us;
    return due;
}

void dp_tls_pool_init(struct dp_pool *pool, struct dp_loop *loop, const struct dp_logger *log,
                      struct dp_counters *ctr, const struct dotproxy_config *cfg,
                      struct dp_upstreams *ups, const struct dp_pool_hooks *hooks)
{
    memset(pool, 0, sizeof *pool);
    pool->loop = loop;
    pool->log = log;
    pool->ctr = ctr;
    pool->cfg = cfg;
    pool->ups = ups;
    pool->hooks = *hooks;
    pool->write_due_us = UINT64_MAX;
    dp_list_init(&pool->sent);
}

void dp_tls_pool_set_trust(struct dp_pool *pool, gnutls_certificate_credentials_t cred,
                           gnutls_priority_t prio)
{
    dp_tls_pool_fini(pool);
    pool->cred = cred;
    pool->prio = prio;
}

void dp_tls_pool_fini(struct dp_pool *pool)
{
    if (pool->prio != NULL)
        gnutls_priority_deinit(pool->prio);
    if (pool->cred != NULL)
        gnutls_certificate_free_credentials(pool->cred);
    pool->prio = NULL;
    pool->cred = NULL;
}
