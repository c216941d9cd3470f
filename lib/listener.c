/* SPDX-License-Identifier: MIT */
/* UDP and TCP listeners, and the TCP clients (RFC 7766: pipelining,
 * out-of-order answers, idle timeouts, bounded buffers). */
#include "listener.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dotproxy/error.h"
#include "policy.h"

#define UDP_BATCH 32
/* Batches read from one UDP socket per loop turn: under a flood the turn
 * must end, so that TCP clients, upstream answers and timers are served
 * too (the socket stays readable, so the next turn reads on). */
#define UDP_TURN_BATCHES 4
#define UDP_BUF          4096         /* a larger query is dropped (MSG_TRUNC) */
#define TCP_IN_START     (2u + 1024u) /* grows to 2 + 65535 for the rare big query */
#define TCP_IN_MAX       (2u + 65535u)
#define TCP_OUT_MAX      (256u << 10) /* a client that reads slower than this is dropped */
#define TCP_OUT_KEEP     16384u       /* an emptied output buffer larger than this is freed */
/* All TCP client buffers of one context together: the bound that makes
 * memory independent of what clients do (README "Limits"). Past it the
 * client holding the most above its share (the budget divided among the
 * clients) is closed first, so that a few clients that never read their
 * answers cannot lock everyone else out (budget_take). */
#define TCP_BUDGET                     (32u << 20)
#define TCP_CLIENT_MAX_QUERIES_DEFAULT 256
/* Queries one TCP client may have in flight before we stop reading it:
 * the configured per-client cap, if lower. */
#define TCP_CLIENT_MAX_QUERIES                                                                     \
    (c->ls->cfg->max_client_queries != 0 &&                                                        \
             c->ls->cfg->max_client_queries < TCP_CLIENT_MAX_QUERIES_DEFAULT                       \
         ? c->ls->cfg->max_client_queries                                                          \
         : TCP_CLIENT_MAX_QUERIES_DEFAULT)

/* Answers produced in one loop turn leave in one sendmmsg per listener. */
#define UDP_OUT_BATCH 64
/* Room for one IP_PKTINFO or IPV6_PKTINFO control message. */
#define PKTINFO_CMSG_SPACE CMSG_SPACE(sizeof(struct in6_pktinfo))

struct udp_out {
    struct mmsghdr msgs[UDP_OUT_BATCH];
    struct iovec iov[UDP_OUT_BATCH];
    struct sockaddr_storage peers[UDP_OUT_BATCH];
    struct {
        _Alignas(struct cmsghdr) uint8_t buf[PKTINFO_CMSG_SPACE];
    } ctrl[UDP_OUT_BATCH];
    uint8_t buf[UDP_OUT_BATCH][UDP_BUF];
    unsigned n;
};

struct udp_batch {
    struct mmsghdr msgs[UDP_BATCH];
    struct iovec iov[UDP_BATCH];
    struct sockaddr_storage peers[UDP_BATCH];
    struct {
        _Alignas(struct cmsghdr) uint8_t buf[PKTINFO_CMSG_SPACE];
    } ctrl[UDP_BATCH];
    uint8_t buf[UDP_BATCH][UDP_BUF];
};

static void client_close(struct dp_tcp_client *c);
static void client_on_ready(struct dp_io *io, unsigned revents);

static void client_mark_dirty(struct dp_tcp_client *c)
{
    if (c->dirty)
        return;
    c->dirty = 1;
    c->next_dirty = c->ls->dirty_clients;
    c->ls->dirty_clients = c;
}

/* ---- UDP ---- */

static void pktinfo_read(struct msghdr *h, struct dp_pktinfo *pi)
{
    pi->family = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(h); c != NULL; c = CMSG_NXTHDR(h, c)) {
        if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
            struct in_pktinfo ip;
            memcpy(&ip, CMSG_DATA(c), sizeof ip);
            pi->family = AF_INET;
            pi->ifindex = ip.ipi_ifindex;
            pi->addr.v4 = ip.ipi_addr;
        } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
            struct in6_pktinfo ip6;
            memcpy(&ip6, CMSG_DATA(c), sizeof ip6);
            pi->family = AF_INET6;
            pi->ifindex = (int)ip6.ipi6_ifindex;
            pi->addr.v6 = ip6.ipi6_addr;
        }
    }
}

/* Ask the kernel to send from pi's address (and interface, for scoped
 * IPv6 addresses). */
static void pktinfo_write(struct msghdr *h, void *ctrl, const struct dp_pktinfo *pi)
{
    h->msg_control = ctrl;
    struct cmsghdr *c;
    if (pi->family == AF_INET) {
        struct in_pktinfo ip = {.ipi_ifindex = 0, .ipi_spec_dst = pi->addr.v4};
        h->msg_controllen = CMSG_SPACE(sizeof ip);
        c = CMSG_FIRSTHDR(h);
        c->cmsg_level = IPPROTO_IP;
        c->cmsg_type = IP_PKTINFO;
        c->cmsg_len = CMSG_LEN(sizeof ip);
        memcpy(CMSG_DATA(c), &ip, sizeof ip);
    } else {
        struct in6_pktinfo ip6 = {.ipi6_addr = pi->addr.v6, .ipi6_ifindex = (unsigned)pi->ifindex};
        h->msg_controllen = CMSG_SPACE(sizeof ip6);
        c = CMSG_FIRSTHDR(h);
        c->cmsg_level = IPPROTO_IPV6;
        c->cmsg_type = IPV6_PKTINFO;
        c->cmsg_len = CMSG_LEN(sizeof ip6);
        memcpy(CMSG_DATA(c), &ip6, sizeof ip6);
    }
}

static void udp_on_ready(struct dp_io *io, unsigned revents)
{
    struct dp_udp_listener *l = DP_CONTAINER_OF(io, struct dp_udp_listener, io);
    struct dp_listeners *ls = l->ls;
    struct udp_batch *b = ls->udp_batch;
    (void)revents;
    for (unsigned turn = 0; turn < UDP_TURN_BATCHES; turn++) {
        for (unsigned i = 0; i < UDP_BATCH; i++) {
            b->iov[i].iov_base = b->buf[i];
            b->iov[i].iov_len = UDP_BUF;
            memset(&b->msgs[i].msg_hdr, 0, sizeof b->msgs[i].msg_hdr);
            b->msgs[i].msg_hdr.msg_iov = &b->iov[i];
            b->msgs[i].msg_hdr.msg_iovlen = 1;
            b->msgs[i].msg_hdr.msg_name = &b->peers[i];
            b->msgs[i].msg_hdr.msg_namelen = sizeof b->peers[i];
            if (l->wildcard) {
                b->msgs[i].msg_hdr.msg_control = b->ctrl[i].buf;
                b->msgs[i].msg_hdr.msg_controllen = sizeof b->ctrl[i].buf;
            }
        }
        int n = recvmmsg(io->fd, b->msgs, UDP_BATCH, MSG_DONTWAIT, NULL);
        if (n < 0) {
            if (errno == EINTR) {
                turn--;
                continue;
            }
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                dp_log(ls->log, DOTPROXY_LOG_WARN, "UDP receive: %s", strerror(errno));
            return;
        }
        for (int i = 0; i < n; i++) {
            if (b->msgs[i].msg_hdr.msg_flags & MSG_TRUNC) {
                dp_ctr_inc(ls->ctr, DOTPROXY_CTR_DROPPED);
                continue;
            }
            struct dp_pktinfo dst = {0};
            if (l->wildcard)
                pktinfo_read(&b->msgs[i].msg_hdr, &dst);
            struct dp_origin o = {
                .kind = DP_Q_UDP,
                .udp = l,
                .peer = &b->peers[i],
                .peerlen = b->msgs[i].msg_hdr.msg_namelen,
                .dst = &dst,
            };
            dp_ctr_inc(ls->ctr, DOTPROXY_CTR_QUERIES_UDP);
            ls->hooks.query(ls->hooks.user, &o, b->buf[i], b->msgs[i].msg_len);
        }
        if (n < UDP_BATCH || ls->quiescing)
            return;
    }
}

static void udp_flush_one(struct dp_listeners *ls, struct dp_udp_listener *l)
{
    struct udp_out *o = l->out;
    unsigned done = 0;
    while (done < o->n) {
        int n = sendmmsg(l->io.fd, o->msgs + done, o->n - done, MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            /* A full socket buffer or a bad peer address: UDP may drop, the
             * client retries. Skip the datagram at fault and go on. */
            dp_ctr_inc(ls->ctr, DOTPROXY_CTR_DROPPED);
            done++;
            continue;
        }
        done += (unsigned)n;
    }
    o->n = 0;
}

void dp_listener_udp_send(struct dp_listeners *ls, struct dp_udp_listener *l,
                          const struct sockaddr_storage *peer, socklen_t peerlen,
                          const struct dp_pktinfo *dst, const uint8_t *msg, size_t len)
{
    if (l == NULL || l->io.fd < 0)
        return;
    int with_src = l->wildcard && dst != NULL && dst->family != 0;
    if (len > UDP_BUF || (l->out == NULL && (l->out = calloc(1, sizeof *l->out)) == NULL)) {
        struct {
            _Alignas(struct cmsghdr) uint8_t buf[PKTINFO_CMSG_SPACE];
        } ctrl;
        struct iovec iov = {.iov_base = (void *)(uintptr_t)msg, .iov_len = len};
        struct msghdr h = {.msg_name = (void *)(uintptr_t)peer,
                           .msg_namelen = peerlen,
                           .msg_iov = &iov,
                           .msg_iovlen = 1};
        if (with_src)
            pktinfo_write(&h, ctrl.buf, dst);
        ssize_t n;
        do
            n = sendmsg(l->io.fd, &h, MSG_DONTWAIT);
        while (n < 0 && errno == EINTR);
        if (n < 0)
            dp_ctr_inc(ls->ctr, DOTPROXY_CTR_DROPPED);
        return;
    }
    struct udp_out *o = l->out;
    if (o->n == 0) {
        if (!l->dirty) {
            l->dirty = 1;
            l->next_dirty = ls->dirty_udp;
            ls->dirty_udp = l;
        }
    } else if (o->n == UDP_OUT_BATCH) {
        udp_flush_one(ls, l);
    }
    unsigned i = o->n++;
    memcpy(o->buf[i], msg, len);
    memcpy(&o->peers[i], peer, peerlen);
    o->iov[i].iov_base = o->buf[i];
    o->iov[i].iov_len = len;
    memset(&o->msgs[i], 0, sizeof o->msgs[i]);
    o->msgs[i].msg_hdr.msg_name = &o->peers[i];
    o->msgs[i].msg_hdr.msg_namelen = peerlen;
    o->msgs[i].msg_hdr.msg_iov = &o->iov[i];
    o->msgs[i].msg_hdr.msg_iovlen = 1;
    if (with_src)
        pktinfo_write(&o->msgs[i].msg_hdr, o->ctrl[i].buf, dst);
}

void dp_listener_udp_flush(struct dp_listeners *ls)
{
    while (ls->dirty_udp != NULL) {
        struct dp_udp_listener *l = ls->dirty_udp;
        ls->dirty_udp = l->next_dirty;
        l->dirty = 0;
        l->next_dirty = NULL;
        if (l->out != NULL && l->out->n > 0 && l->io.fd >= 0)
            udp_flush_one(ls, l);
    }
}

/* ---- TCP clients ---- */

static size_t client_bytes(const struct dp_tcp_client *c)
{
    return c->in.cap + c->out_cap;
}

/* Give back c's output buffer now (it is closed): its answers will never
 * be read, and the budget needs the room at once. */
static void client_drop_output(struct dp_tcp_client *c)
{
    if (c->out == NULL)
        return;
    c->ls->tcp_buf_bytes -= c->out_cap;
    memset(c->out, 0, c->out_cap);
    free(c->out);
    c->out = NULL;
    c->out_cap = c->out_head = c->out_tail = 0;
}

/* Room for n more octets of TCP buffers for c (NULL: a client being
 * accepted). Past the budget, the client holding the most above its fair
 * share is closed to make room, unless that is c itself; a client that
 * reads its answers stays well below its share. 0, or -1 when c must be
 * closed (or the new client refused). */
static int budget_take(struct dp_listeners *ls, struct dp_tcp_client *c, size_t n)
{
    while (ls->tcp_buf_bytes + n > TCP_BUDGET) {
        size_t share = TCP_BUDGET / (ls->n_tcp_clients + (c == NULL ? 1u : 0u));
        struct dp_tcp_client *worst = NULL;
        size_t worst_bytes = share;
        for (struct dp_list *e = ls->tcp_clients.next; e != &ls->tcp_clients; e = e->next) {
            struct dp_tcp_client *k = DP_CONTAINER_OF(e, struct dp_tcp_client, lru);
            size_t b = client_bytes(k) + (k == c ? n : 0);
            if (b > worst_bytes) {
                worst = k;
                worst_bytes = b;
            }
        }
        if (worst == NULL || worst == c) {
            dp_log(ls->log, DOTPROXY_LOG_INFO,
                   "TCP buffers at their %u MiB bound: closing a client that wants more",
                   TCP_BUDGET >> 20);
            return -1;
        }
        dp_log(ls->log, DOTPROXY_LOG_INFO,
               "TCP buffers at their %u MiB bound: closing the client holding the most "
               "(%zu KiB, over its share of %zu KiB)",
               TCP_BUDGET >> 20, worst_bytes >> 10, share >> 10);
        client_close(worst);
    }
    ls->tcp_buf_bytes += n;
    return 0;
}

static void client_free(struct dp_tcp_client *c)
{
    c->ls->tcp_buf_bytes -= client_bytes(c);
    if (c->inbuf != NULL) {
        memset(c->inbuf, 0, c->in.cap);
        free(c->inbuf);
    }
    if (c->out != NULL) {
        memset(c->out, 0, c->out_cap);
        free(c->out);
    }
    free(c);
}

static void client_close(struct dp_tcp_client *c)
{
    struct dp_listeners *ls = c->ls;
    if (c->closed)
        return;
    c->closed = 1;
    /* Its queries live on until answered or timed out; the answers are then
     * dropped instead of going to whoever gets this fd next. */
    while (!dp_list_empty(&c->queries)) {
        struct dp_tcp_claim *cl = DP_CONTAINER_OF(c->queries.next, struct dp_tcp_claim, link);
        dp_list_remove(&cl->link);
        cl->client = NULL;
    }
    c->n_queries = 0;
    dp_list_remove(&c->lru);
    ls->n_tcp_clients--;
    dp_timer_cancel(ls->loop, &c->idle);
    dp_loop_del(ls->loop, &c->io);
    close(c->io.fd);
    c->io.fd = -1;
    /* The input buffer may be what a handler up the stack is reading from:
     * it goes with the rest in the flush. */
    client_drop_output(c);
    client_mark_dirty(c); /* freed by the flush, never inside a handler */
}

static void client_touch(struct dp_tcp_client *c)
{
    struct dp_listeners *ls = c->ls;
    c->last_active_us = ls->loop->now_us;
    dp_list_remove(&c->lru);
    dp_list_push_back(&ls->tcp_clients, &c->lru);
}

static void client_idle_fire(struct dp_timer *t)
{
    struct dp_tcp_client *c = DP_CONTAINER_OF(t, struct dp_tcp_client, idle);
    struct dp_listeners *ls = c->ls;
    uint64_t due = c->last_active_us + (uint64_t)ls->cfg->tcp_idle_timeout_ms * 1000u;
    if (c->n_queries == 0 && ls->loop->now_us >= due) {
        client_close(c);
        return;
    }
    /* It just fired, so the heap has room for it: this cannot fail. */
    (void)dp_timer_set(ls->loop, t, due > ls->loop->now_us ? due : ls->loop->now_us + 1000u);
}

static void client_update_want(struct dp_tcp_client *c)
{
    unsigned want = 0;
    c->paused = c->n_queries >= TCP_CLIENT_MAX_QUERIES;
    if ((!c->read_closed && !c->paused && !c->ls->quiescing) || c->broken == 1)
        want |= DOTPROXY_EV_IN;
    if (c->out_head < c->out_tail)
        want |= DOTPROXY_EV_OUT;
    dp_loop_want(c->ls->loop, &c->io, want);
}

/* Hand every whole buffered query to the proxy. Returns -1 if c was closed. */
static int client_take_frames(struct dp_tcp_client *c)
{
    struct dp_listeners *ls = c->ls;
    for (;;) {
        if (c->n_queries >= TCP_CLIENT_MAX_QUERIES)
            return 0; /* back-pressure: the rest stays buffered */
        const uint8_t *m;
        size_t len;
        int rc = dotproxy_frame_next(&c->in, &m, &len);
        if (rc == 0)
            return 0;
        if (rc == DOTPROXY_ENOSPC && c->in.cap < TCP_IN_MAX) {
            /* A query larger than the usual buffer: grow once to the most a
             * frame can hold, keeping what was read. */
            if (budget_take(ls, c, TCP_IN_MAX - c->in.cap) != 0) {
                client_close(c);
                return -1;
            }
            uint8_t *nb = realloc(c->inbuf, TCP_IN_MAX);
            if (nb == NULL) {
                ls->tcp_buf_bytes -= TCP_IN_MAX - c->in.cap;
                client_close(c);
                return -1;
            }
            c->inbuf = nb;
            c->in.buf = nb;
            c->in.cap = TCP_IN_MAX;
            continue;
        }
        if (rc < 0) {
            /* A zero-length or impossible frame: the stream cannot be
             * resynchronised. The queries before it still get their answers
             * (as after a FIN); whatever follows is read and discarded, so
             * that the close is not a reset that destroys those answers. */
            dp_ctr_inc(ls->ctr, DOTPROXY_CTR_DROPPED);
            c->broken = 1;
            c->read_closed = 1;
            dotproxy_frame_init(&c->in, c->inbuf, c->in.cap);
            if (c->n_queries == 0 && c->out_head == c->out_tail) {
                client_close(c);
                return -1;
            }
            return 0;
        }
        struct dp_origin o = {.kind = DP_Q_TCP, .peer = &c->peer, .peerlen = c->peerlen, .tcp = c};
        client_touch(c);
        dp_ctr_inc(ls->ctr, DOTPROXY_CTR_QUERIES_TCP);
        ls->hooks.query(ls->hooks.user, &o, c->inbuf + (m - c->inbuf), len);
        if (c->closed)
            return -1;
    }
}

/* A broken stream: read and drop what the client still sends until it
 * closes. Returns -1 if c was closed. */
static int client_discard(struct dp_tcp_client *c)
{
    uint8_t sink[4096];
    for (;;) {
        ssize_t n = recv(c->io.fd, sink, sizeof sink, MSG_DONTWAIT);
        if (n > 0)
            continue;
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        c->broken = 2; /* EOF or error: nothing more to read */
        if (n < 0 || (c->n_queries == 0 && c->out_head == c->out_tail)) {
            client_close(c);
            return -1;
        }
        return 0;
    }
}

static void client_read(struct dp_tcp_client *c)
{
    if (c->broken) {
        if (client_discard(c) == 0)
            client_update_want(c);
        return;
    }
    for (;;) {
        if (client_take_frames(c) != 0)
            return;
        if (c->broken) {
            if (client_discard(c) != 0)
                return;
            break;
        }
        if (c->paused || c->n_queries >= TCP_CLIENT_MAX_QUERIES)
            break;
        uint8_t *p;
        size_t room = dotproxy_frame_space(&c->in, &p);
        ssize_t n = recv(c->io.fd, p, room, MSG_DONTWAIT);
        if (n > 0) {
            /* Bytes alone do not make a client active: one that trickles a
             * query a byte at a time must still meet the idle timeout and be
             * first to go when room is needed. Whole queries do (below). */
            dotproxy_frame_commit(&c->in, (size_t)n);
            continue;
        }
        if (n == 0) {
            /* Half-close: the client may still read the answers it is owed. */
            c->read_closed = 1;
            if (c->n_queries == 0 && c->out_head == c->out_tail) {
                client_close(c);
                return;
            }
            break;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            break;
        client_close(c);
        return;
    }
    client_update_want(c);
}

/* Write what is queued; returns -1 if c was closed. */
static int client_write(struct dp_tcp_client *c)
{
    while (c->out_head < c->out_tail) {
        ssize_t n = send(c->io.fd, c->out + c->out_head, c->out_tail - c->out_head,
                         MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0) {
            c->out_head += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        client_close(c);
        return -1;
    }
    if (c->out_head == c->out_tail) {
        c->out_head = c->out_tail = 0;
        if (c->out_cap > TCP_OUT_KEEP) {
            /* A burst is over: give the memory back. */
            c->ls->tcp_buf_bytes -= c->out_cap;
            memset(c->out, 0, c->out_cap);
            free(c->out);
            c->out = NULL;
            c->out_cap = 0;
        }
        if (c->read_closed && c->n_queries == 0) {
            client_close(c);
            return -1;
        }
    }
    client_update_want(c);
    return 0;
}

static void client_on_ready(struct dp_io *io, unsigned revents)
{
    struct dp_tcp_client *c = DP_CONTAINER_OF(io, struct dp_tcp_client, io);
    if ((revents & DOTPROXY_EV_OUT) && client_write(c) != 0)
        return;
    if (revents & (DOTPROXY_EV_IN | DOTPROXY_EV_ERR))
        client_read(c);
}

void dp_listener_tcp_send(struct dp_listeners *ls, struct dp_tcp_client *c, const uint8_t *msg,
                          size_t len)
{
    if (c == NULL || c->closed)
        return;
    size_t need = len + 2;
    if (c->out_cap - c->out_tail < need) {
        size_t used = c->out_tail - c->out_head;
        if (c->out_head > 0) {
            memmove(c->out, c->out + c->out_head, used);
            c->out_head = 0;
            c->out_tail = used;
        }
        if (c->out_cap - c->out_tail < need) {
            size_t cap = c->out_cap ? c->out_cap : 4096;
            while (cap - used < need)
                cap *= 2;
            if (cap > TCP_OUT_MAX) {
                dp_log(ls->log, DOTPROXY_LOG_INFO,
                       "TCP client not reading its answers: closing it");
                client_close(c);
                return;
            }
            if (budget_take(ls, c, cap - c->out_cap) != 0) {
                client_close(c);
                return;
            }
            uint8_t *nb = realloc(c->out, cap);
            if (nb == NULL) {
                ls->tcp_buf_bytes -= cap - c->out_cap;
                client_close(c);
                return;
            }
            c->out = nb;
            c->out_cap = cap;
        }
    }
    dotproxy_frame_put_prefix(c->out + c->out_tail, len);
    memcpy(c->out + c->out_tail + 2, msg, len);
    c->out_tail += need;
    client_mark_dirty(c);
}

void dp_listener_tcp_claim(struct dp_tcp_client *c, struct dp_tcp_claim *cl)
{
    cl->client = c;
    dp_list_push_back(&c->queries, &cl->link);
    c->n_queries++;
}

void dp_listener_tcp_unclaim(struct dp_tcp_claim *cl)
{
    struct dp_tcp_client *c = cl->client;
    if (c == NULL)
        return;
    dp_list_remove(&cl->link);
    cl->client = NULL;
    c->n_queries--;
    if (c->paused)
        client_mark_dirty(c); /* the flush resumes reading its buffered queries */
}

const struct sockaddr_storage *dp_listener_tcp_peer(const struct dp_tcp_client *c, socklen_t *len)
{
    *len = c->peerlen;
    return &c->peer;
}

int dp_listener_accept(int lfd, struct dp_policy *policy, struct dp_counters *ctr,
                       const struct dp_logger *log, int (*evict)(void *arg), void *arg,
                       struct sockaddr_storage *peer, socklen_t *peerlen)
{
    for (;;) {
        *peerlen = sizeof *peer;
        int fd = accept4(lfd, (struct sockaddr *)peer, peerlen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE) {
                /* Out of fds: make room by closing the longest-idle client,
                 * or the listener would spin on the pending connection. */
                if (evict(arg) == 0)
                    continue;
                dp_log(log, DOTPROXY_LOG_WARN, "accept: %s", strerror(errno));
            }
            return -1;
        }
        if (dp_policy_allowed(policy, (const struct sockaddr *)peer) == 0) {
            /* Not on the access list: no connection at all (no state, no
             * handshake, no amplification). */
            dp_ctr_inc(ctr, DOTPROXY_CTR_REFUSED_ACL);
            close(fd);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        return fd;
    }
}

static int tcp_evict_idlest(void *arg)
{
    struct dp_listeners *ls = arg;
    if (dp_list_empty(&ls->tcp_clients))
        return -1;
    client_close(DP_CONTAINER_OF(ls->tcp_clients.next, struct dp_tcp_client, lru));
    return 0;
}

static void tcp_on_accept(struct dp_io *io, unsigned revents)
{
    struct dp_tcp_listener *l = DP_CONTAINER_OF(io, struct dp_tcp_listener, io);
    struct dp_listeners *ls = l->ls;
    (void)revents;
    for (;;) {
        struct sockaddr_storage peer;
        socklen_t peerlen;
        int fd = dp_listener_accept(io->fd, *ls->policy, ls->ctr, ls->log, tcp_evict_idlest, ls,
                                    &peer, &peerlen);
        if (fd < 0)
            return;
        while (ls->n_tcp_clients >= ls->cfg->max_tcp_clients)
            client_close(DP_CONTAINER_OF(ls->tcp_clients.next, struct dp_tcp_client, lru));
        if (budget_take(ls, NULL, TCP_IN_START) != 0) {
            close(fd);
            continue;
        }
        struct dp_tcp_client *c = calloc(1, sizeof *c);
        uint8_t *inbuf = malloc(TCP_IN_START);
        if (c == NULL || inbuf == NULL) {
            ls->tcp_buf_bytes -= TCP_IN_START;
            free(c);
            free(inbuf);
            close(fd);
            continue;
        }
        c->ls = ls;
        c->io.fd = fd;
        c->io.on_ready = client_on_ready;
        c->inbuf = inbuf;
        c->peer = peer;
        c->peerlen = peerlen;
        dotproxy_frame_init(&c->in, inbuf, TCP_IN_START);
        dp_list_init(&c->queries);
        dp_list_init(&c->lru);
        dp_timer_init(&c->idle, client_idle_fire);
        if (dp_loop_add(ls->loop, &c->io, DOTPROXY_EV_IN) != 0) {
            close(fd);
            client_free(c);
            continue;
        }
        dp_list_push_back(&ls->tcp_clients, &c->lru);
        ls->n_tcp_clients++;
        dp_ctr_inc(ls->ctr, DOTPROXY_CTR_TCP_CLIENTS);
        c->last_active_us = ls->loop->now_us;
        if (dp_timer_set(ls->loop, &c->idle,
                         c->last_active_us + (uint64_t)ls->cfg->tcp_idle_timeout_ms * 1000u) != 0) {
            /* Without its idle timer nothing would ever close an idle
             * client: refuse it rather than hold it for ever. */
            dp_log(ls->log, DOTPROXY_LOG_ERR, "TCP client: out of memory for its idle timer");
            client_close(c);
        }
    }
}

int dp_listener_flush(struct dp_listeners *ls)
{
    int produced = 0;
    while (ls->dirty_clients != NULL) {
        struct dp_tcp_client *c = ls->dirty_clients;
        ls->dirty_clients = c->next_dirty;
        c->dirty = 0;
        c->next_dirty = NULL;
        if (c->closed) {
            client_free(c);
            continue;
        }
        if (c->paused && !c->broken && c->n_queries < TCP_CLIENT_MAX_QUERIES) {
            c->paused = 0;
            if (client_take_frames(c) != 0)
                continue;
            produced = 1;
            client_update_want(c);
        }
        client_write(c);
    }
    return produced;
}

void dp_listener_apply_limits(struct dp_listeners *ls)
{
    while (ls->n_tcp_clients > ls->cfg->max_tcp_clients)
        client_close(DP_CONTAINER_OF(ls->tcp_clients.next, struct dp_tcp_client, lru));
}

void dp_listener_close_clients(struct dp_listeners *ls)
{
    while (!dp_list_empty(&ls->tcp_clients))
        client_close(DP_CONTAINER_OF(ls->tcp_clients.next, struct dp_tcp_client, lru));
    while (ls->dirty_clients != NULL) {
        struct dp_tcp_client *c = ls->dirty_clients;
        ls->dirty_clients = c->next_dirty;
        if (c->closed)
            client_free(c);
        else
            c->dirty = 0;
    }
}

/* ---- opening and closing listeners ---- */

static int open_socket(struct dp_listeners *ls, const dotproxy_endpoint *ep, int type,
                       int log_failure)
{
    char label[128];
    if (dotproxy_endpoint_format(ep, label, sizeof label) < 0)
        strcpy(label, "?");
    const char *proto = type == SOCK_DGRAM ? "UDP" : "TCP";
    int fd = socket(ep->addr.ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        dp_log(ls->log, DOTPROXY_LOG_ERR, "cannot listen on %s (%s): socket: %s", label, proto,
               strerror(errno));
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (ls->cfg->reuseport)
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (ep->addr.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (bind(fd, (const struct sockaddr *)&ep->addr, ep->addrlen) != 0 ||
        (type == SOCK_STREAM && listen(fd, 1024) != 0)) {
        if (log_failure)
            dp_log(ls->log, DOTPROXY_LOG_ERR, "cannot listen on %s (%s): %s", label, proto,
                   strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static uint16_t bound_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return 0;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

int dp_listener_open(struct dp_listeners *ls)
{
    size_t n = ls->cfg->n_listen;
    dp_list_init(&ls->tcp_clients);
    if (n == 0)
        return 0;
    ls->udp = calloc(n, sizeof *ls->udp);
    ls->tcp = calloc(n, sizeof *ls->tcp);
    ls->udp_batch = malloc(sizeof(struct udp_batch));
    if (ls->udp == NULL || ls->tcp == NULL || ls->udp_batch == NULL)
        return DOTPROXY_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        ls->udp[i].io.fd = ls->tcp[i].io.fd = -1;
        ls->udp[i].ls = ls->tcp[i].ls = ls;
    }
    for (size_t i = 0; i < n; i++) {
        dotproxy_endpoint ep = ls->cfg->listen[i];
        in_port_t *port = ep.addr.ss_family == AF_INET
                              ? &((struct sockaddr_in *)&ep.addr)->sin_port
                              : &((struct sockaddr_in6 *)&ep.addr)->sin6_port;
        int any_port = *port == 0;
        int ufd = -1, tfd = -1;
        /* With port 0 the kernel picks a free UDP port, and TCP must take
         * the same number, which some TCP socket may hold: then try again
         * with another UDP port. */
        for (int attempt = 0; attempt < 64 && tfd < 0; attempt++) {
            if (any_port)
                *port = 0;
            ufd = open_socket(ls, &ep, SOCK_DGRAM, !any_port);
            if (ufd < 0)
                return DOTPROXY_EBIND;
            ls->udp[i].port = bound_port(ufd);
            *port = htons(ls->udp[i].port);
            tfd = open_socket(ls, &ep, SOCK_STREAM, !any_port || attempt == 63);
            if (tfd < 0) {
                close(ufd);
                ufd = -1;
                if (!any_port)
                    return DOTPROXY_EBIND;
            }
        }
        if (tfd < 0)
            return DOTPROXY_EBIND;
        ls->udp[i].io.fd = ufd;
        ls->tcp[i].io.fd = tfd;
        int one = 1;
        if (ep.addr.ss_family == AF_INET) {
            ls->udp[i].wildcard =
                ((struct sockaddr_in *)&ep.addr)->sin_addr.s_addr == htonl(INADDR_ANY);
            if (ls->udp[i].wildcard)
                setsockopt(ufd, IPPROTO_IP, IP_PKTINFO, &one, sizeof one);
        } else {
            ls->udp[i].wildcard =
                IN6_IS_ADDR_UNSPECIFIED(&((struct sockaddr_in6 *)&ep.addr)->sin6_addr);
            if (ls->udp[i].wildcard)
                setsockopt(ufd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof one);
        }
        ls->udp[i].io.on_ready = udp_on_ready;
        ls->tcp[i].io.on_ready = tcp_on_accept;
        if (dp_loop_add(ls->loop, &ls->udp[i].io, DOTPROXY_EV_IN) != 0 ||
            dp_loop_add(ls->loop, &ls->tcp[i].io, DOTPROXY_EV_IN) != 0)
            return DOTPROXY_ENOMEM;
    }
    return 0;
}

void dp_listener_close(struct dp_listeners *ls)
{
    for (size_t i = 0; ls->udp != NULL && i < ls->cfg->n_listen; i++) {
        free(ls->udp[i].out);
        ls->udp[i].out = NULL;
        struct dp_io *ios[2] = {&ls->udp[i].io, &ls->tcp[i].io};
        for (int k = 0; k < 2; k++) {
            if (ios[k]->fd < 0)
                continue;
            dp_loop_del(ls->loop, ios[k]);
            close(ios[k]->fd);
            ios[k]->fd = -1;
        }
    }
}

void dp_listener_quiesce(struct dp_listeners *ls)
{
    ls->quiescing = 1;
    /* Stop taking new work but keep the UDP sockets: answers to queries
     * already in flight still leave through them. */
    for (size_t i = 0; ls->udp != NULL && i < ls->cfg->n_listen; i++) {
        if (ls->udp[i].io.fd >= 0)
            dp_loop_want(ls->loop, &ls->udp[i].io, 0);
        if (ls->tcp[i].io.fd >= 0) {
            dp_loop_del(ls->loop, &ls->tcp[i].io);
            close(ls->tcp[i].io.fd);
            ls->tcp[i].io.fd = -1;
        }
    }
    struct dp_list *e = ls->tcp_clients.next;
    while (e != &ls->tcp_clients) {
        struct dp_tcp_client *c = DP_CONTAINER_OF(e, struct dp_tcp_client, lru);
        e = e->next;
        if (c->n_queries == 0 && c->out_head == c->out_tail)
            client_close(c);
        else
            client_update_want(c);
    }
}

void dp_listener_init(struct dp_listeners *ls, struct dp_loop *loop, const struct dp_logger *log,
                      struct dp_counters *ctr, const struct dotproxy_config *cfg,
                      struct dp_policy *const *policy, const struct dp_listener_hooks *hooks)
{
    memset(ls, 0, sizeof *ls);
    ls->loop = loop;
    ls->log = log;
    ls->ctr = ctr;
    ls->cfg = cfg;
    ls->policy = policy;
    ls->hooks = *hooks;
    dp_list_init(&ls->tcp_clients);
}

void dp_listener_fini(struct dp_listeners *ls)
{
    free(ls->udp);
    free(ls->tcp);
    free(ls->udp_batch);
    ls->udp = NULL;
    ls->tcp = NULL;
    ls->udp_batch = NULL;
}

int dp_listener_port(const struct dp_listeners *ls, size_t index)
{
    if (ls->udp == NULL || index >= ls->cfg->n_listen)
        return DOTPROXY_EINVAL;
    return ls->udp[index].port;
}
