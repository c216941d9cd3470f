/* SPDX-License-Identifier: MIT */
/* The query pipeline: a query's life from client (or API caller) to
 * upstream and back, through the cache and the in-flight table, and the one
 * road every answer leaves by. */
#include "proxy.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bytes.h"
#include "dotproxy/dns.h"
#include "dotproxy/error.h"
#include "dotproxy/loop.h"
#include "dns_msg.h"
#include "dynblock.h"
#include "edns.h"
#include "policy.h"
#include "stats.h"
#include "tap.h"
#include "tls_pool.h"

/* The one road out and the pipeline are called from several places but sit
 * on the path of every query: inlined, they cost what the code they replaced
 * did (bench/instructions.sh). */
#define DP_ALWAYS_INLINE static inline __attribute__((always_inline))

/* ---- query records ---- */

/* A block of records. calloc of a large block maps zero pages: records cost
 * memory only once used (and are reused LIFO). */
struct dp_qregion {
    struct dp_qregion *next;
    size_t n, used;
    struct dp_query rec[];
};

static void inflight_del(struct dotproxy_ctx *ctx, struct dp_query *q);

static struct dp_query *query_alloc(struct dotproxy_ctx *ctx)
{
    /* The bound is the configuration's, not the regions' size: a reload
     * may lower it below what was allocated. */
    if (ctx->n_records >= ctx->cfg.max_queries)
        return NULL;
    struct dp_query *q = ctx->qfree;
    if (q != NULL) {
        ctx->qfree = q->next_free;
    } else {
        struct dp_qregion *r = ctx->qbump;
        while (r != NULL && r->used == r->n)
            r = r->next;
        if (r == NULL)
            return NULL;
        ctx->qbump = r;
        q = &r->rec[r->used++];
    }
    ctx->n_records++;
    dp_list_init(&q->active);
    dp_list_init(&q->wait);
    dp_list_init(&q->sent);
    q->kind = DP_Q_REFRESH; /* no client claim to undo until one is made */
    q->conn = NULL;
    q->up = NULL;
    q->tried = 0;
    q->retries = 0;
    q->next_free = NULL;
    q->cacheable = 0;
    q->leading = 0;
    q->counted = 0;
    q->dyn_slot = 0;
    q->served_stale = 0;
    q->leader = NULL;
    q->hnext = NULL;
    dp_list_init(&q->followers);
    dp_list_init(&q->stale);
    q->q = q->qbuf;
    return q;
}

static void query_free(struct dotproxy_ctx *ctx, struct dp_query *q)
{
    if (q->q != q->qbuf) {
        memset(q->q, 0, q->qlen);
        free(q->q);
    }
    if (dp_list_linked(&q->active)) {
        dp_list_remove(&q->active);
        ctx->n_active--;
    }
    if (dp_list_linked(&q->wait))
        dp_list_remove(&q->wait); /* also leaves a leader's followers */
    dp_list_remove(&q->sent);
    dp_list_remove(&q->stale);
    if (q->leading)
        inflight_del(ctx, q);
    if (q->counted && q->policy_gen == ctx->policy_gen)
        dp_policy_inflight_end_home(ctx->policy, (const struct sockaddr *)&q->from.udp.peer,
                                    q->policy_home);
    /* Followers left (context teardown): they no longer have a leader. */
    while (!dp_list_empty(&q->followers)) {
        struct dp_query *f = DP_CONTAINER_OF(q->followers.next, struct dp_query, wait);
        dp_list_remove(&f->wait);
        f->leader = NULL;
    }
    if (q->kind == DP_Q_TCP)
        dp_listener_tcp_unclaim(&q->from.tcp);
    else if (q->kind == DP_Q_TLS)
        dp_tls_listener_unclaim(&q->from.tls);
    q->next_free = ctx->qfree;
    ctx->qfree = q;
    ctx->n_records--;
}

/* ---- the cache: one handle, whether the context's own or shared ---- */

static int has_cache(const struct dotproxy_ctx *ctx)
{
    return dp_cache_handle_on(&ctx->cache);
}

/* The upstream's Extended DNS Errors come out behind the answer (*ede_len
 * octets), for dp_edns_add_client_opt_with to move into the client's OPT. */
static int cache_lookup(struct dotproxy_ctx *ctx, const struct dp_cache_key *k, int allow_stale,
                        const uint8_t *query, size_t qlen, size_t *outlen, size_t *ede_len)
{
    return ctx->cache.ops->lookup(ctx->cache.impl, k, dp_now(ctx), allow_stale, query, qlen,
                                  ctx->scratch, DP_SCRATCH, outlen, ede_len);
}

/* ans was parsed once already (info), to match it to its query. */
static void cache_store(struct dotproxy_ctx *ctx, const struct dp_cache_key *k, const uint8_t *ans,
                        size_t len, const dotproxy_dns_info *info)
{
    ctx->cache.ops->store(ctx->cache.impl, k, ans, len, info, dp_now(ctx));
}

/* ---- in-flight table: identical questions share one upstream query ---- */

static struct dp_query **inflight_slot(struct dotproxy_ctx *ctx, const struct dp_cache_key *k)
{
    return &ctx->inflight_tab[k->hash & ctx->inflight_mask];
}

static struct dp_query *inflight_find(struct dotproxy_ctx *ctx, const struct dp_cache_key *k)
{
    for (struct dp_query *q = *inflight_slot(ctx, k); q != NULL; q = q->hnext)
        if (q->key.hash == k->hash && q->key.len == k->len &&
            memcmp(q->key.data, k->data, k->len) == 0)
            return q;
    return NULL;
}

static void inflight_add(struct dotproxy_ctx *ctx, struct dp_query *q)
{
    struct dp_query **slot = inflight_slot(ctx, &q->key);
    q->hnext = *slot;
    *slot = q;
    q->leading = 1;
}

static void inflight_del(struct dotproxy_ctx *ctx, struct dp_query *q)
{
    for (struct dp_query **pp = inflight_slot(ctx, &q->key); *pp != NULL; pp = &(*pp)->hnext) {
        if (*pp == q) {
            *pp = q->hnext;
            break;
        }
    }
    q->hnext = NULL;
    q->leading = 0;
}

/* ---- the one road out ---- */

/* What the query log and the latency histogram want to know of an answer.
 * Our own error replies to messages never admitted carry none. */
struct answer_note {
    uint64_t arrived_us;
    const struct dp_upstream *up; /* the upstream that answered, or NULL */
    uint16_t qtype;
    uint8_t from_cache;
    uint8_t timed;      /* the client waited for it: counts in the histogram */
    const char *policy; /* a block answer: which list and rule (block.c) */
    uint32_t dyn_slot;  /* dp_dynblock_query's slot for the query, or 0 */
};

/* The question name of msg in presentation form ("www.example.com."),
 * lower case, odd octets as \DDD; "?" if it cannot be read. */
static void qname_text(const uint8_t *msg, size_t len, char *out, size_t cap)
{
    uint8_t wire[DOTPROXY_DNS_MAX_NAME];
    int r = dp_dns_msg_name_lower(msg, len, DOTPROXY_DNS_HEADER_SIZE, wire, NULL);
    if (r < 0) {
        snprintf(out, cap, "?");
        return;
    }
    size_t wlen = (size_t)r;
    size_t o = 0;
    for (size_t i = 0; i < wlen && wire[i] != 0 && o + 5 < cap;) {
        unsigned n = wire[i++];
        for (unsigned k = 0; k < n && i < wlen && o + 5 < cap; k++, i++) {
            uint8_t c = wire[i];
            if (c == '.' || c == '\\' || c < 0x21 || c > 0x7e)
                o += (size_t)snprintf(out + o, cap - o, "\\%03u", c);
            else
                out[o++] = (char)c;
        }
        out[o++] = '.';
    }
    if (o == 0)
        out[o++] = '.';
    out[o] = '\0';
}

static const char *const transport_names[] = {"udp", "tcp", "api", "refresh", "tls"};

/* Out of line: only with a query log, and its buffers are large. */
static __attribute__((noinline)) void log_answer(struct dotproxy_ctx *ctx,
                                                 const struct dp_origin *to, const uint8_t *msg,
                                                 size_t len, const struct answer_note *note,
                                                 const char *policy)
{
    /* The loop's time is the turn's: a cache hit answered within the turn
     * its query arrived in would show 0. The clock is read afresh here, so
     * the log says how long the client really waited (the histogram keeps
     * the turn's time: one clock read per turn). */
    uint64_t now = ctx->loop.clock_us();
    uint64_t latency_us = now > note->arrived_us ? now - note->arrived_us : 0;
    const struct sockaddr *client = NULL;
    socklen_t client_len = 0;
    if (to->kind == DP_Q_UDP) {
        client = (const struct sockaddr *)to->peer;
        client_len = to->peerlen;
    } else if (to->kind == DP_Q_TCP && to->tcp != NULL) {
        client = (const struct sockaddr *)dp_listener_tcp_peer(to->tcp, &client_len);
    } else if (to->kind == DP_Q_TLS && to->tls != NULL) {
        client = (const struct sockaddr *)dp_tls_listener_peer(to->tls, &client_len);
    }
    char name[DOTPROXY_DNS_MAX_NAME * 4 + 2];
    qname_text(msg, len, name, sizeof name);
    dotproxy_query_log e = {
        .client = client,
        .client_len = client_len,
        .transport = transport_names[to->kind],
        .qname = name,
        .qtype = note->qtype,
        .rcode = len >= 4 ? (int)DOTPROXY_DNS_RCODE(dp_get16(msg + 2)) : -1,
        .from_cache = note->from_cache,
        .latency_us = latency_us,
        .upstream = note->up != NULL ? note->up->label : NULL,
        /* A block answer: the list and the rule that decided it. */
        .list = policy != NULL ? ctx->block.log_list : NULL,
        .rule = policy != NULL ? ctx->block.log_rule : NULL,
    };
    ctx->cfg.qlog(&e, ctx->cfg.qlog_user);
}

/* An answer on its way out (from the upstream or the cache) whose CNAME
 * chain reaches a blocked name leaves as the block answer instead, with
 * "via cname" in its EDE text. The check runs on every answer, cached ones
 * too, so a cached answer never outlives a block added later, and nothing
 * blocked is ever cached (the cache holds the real answer). */
static __attribute__((noinline)) int block_chain(struct dotproxy_ctx *ctx, uint8_t **msg,
                                                 size_t *len, int udp)
{
    struct dp_block_verdict v;
    int what = dp_block_check_answer(&ctx->block, *msg, *len, &v);
    if (what == 0 || (what == DP_BLOCK_TCP_ONLY && !udp))
        return 0;
    dp_block_describe(&v, ctx->block.text, sizeof ctx->block.text);
    dp_block_log_names(&v, &ctx->block);
    if (what == DP_BLOCK_DROP)
        return -1;
    int n = dp_block_answer(&ctx->block, &v, *msg, v.qend, v.had_opt, (uint16_t)ctx->cfg.udp_size,
                            ctx->block.answer, sizeof ctx->block.answer);
    if (n < 0)
        return 0;
    *msg = ctx->block.answer;
    *len = (size_t)n;
    return 1;
}

/* The client an answer goes to (the dynamic blocks count answers too), over
 * any transport; NULL when it has none (API, refresh) or went away (a TCP or
 * TLS client whose claim was cut: its answer is dropped, not counted). */
static inline const struct sockaddr *dynblock_peer(const struct dp_origin *to)
{
    socklen_t l;
    if (to->kind == DP_Q_UDP)
        return (const struct sockaddr *)to->peer;
    if (to->kind == DP_Q_TCP && to->tcp != NULL)
        return (const struct sockaddr *)dp_listener_tcp_peer(to->tcp, &l);
    if (to->kind == DP_Q_TLS && to->tls != NULL)
        return (const struct sockaddr *)dp_tls_listener_peer(to->tls, &l);
    return NULL;
}

/* A client's query (not the API's, not a refresh): the dynamic blocks'
 * hooks see it, whichever listener it came through. */
static inline int dynblock_client(const struct dp_origin *o)
{
    return o->kind == DP_Q_UDP || o->kind == DP_Q_TCP || o->kind == DP_Q_TLS;
}

/* The tap's times: the event's is read afresh (the turn's time is when the
 * turn began, which may be well before); the query's is the turn's it
 * arrived or was sent in, the same for all of a query's events. */

/* A client's message for the tap. API queries have no client and no
 * socket: they are not tapped (their upstream queries are). */
static __attribute__((noinline)) void tap_client(struct dotproxy_ctx *ctx,
                                                 const struct dp_origin *o, int kind,
                                                 const uint8_t *msg, size_t len, uint64_t query_us)
{
    const struct sockaddr *peer = NULL;
    socklen_t peer_len = 0;
    if (o->kind == DP_Q_UDP) {
        peer = (const struct sockaddr *)o->peer;
        peer_len = o->peerlen;
    } else if (o->kind == DP_Q_TCP && o->tcp != NULL) {
        peer = (const struct sockaddr *)dp_listener_tcp_peer(o->tcp, &peer_len);
    } else if (o->kind == DP_Q_TLS && o->tls != NULL) {
        peer = (const struct sockaddr *)dp_tls_listener_peer(o->tls, &peer_len);
    } else {
        return;
    }
    dp_tap_emit(&ctx->cfg, kind,
                o->kind == DP_Q_UDP   ? DOTPROXY_TAP_UDP
                : o->kind == DP_Q_TLS ? DOTPROXY_TAP_TLS
                                      : DOTPROXY_TAP_TCP,
                peer, peer_len, NULL, 0, msg, len, query_us, ctx->loop.clock_us());
}

/* A message to or from q's upstream, for the tap. */
static __attribute__((noinline)) void tap_upstream(struct dotproxy_ctx *ctx,
                                                   const struct dp_query *q, int kind,
                                                   const uint8_t *msg, size_t len)
{
    const struct dp_upstream *up = q->up;
    dp_tap_emit(&ctx->cfg, kind, DOTPROXY_TAP_TLS, NULL, 0,
                up != NULL ? (const struct sockaddr *)&up->ep.addr : NULL,
                up != NULL ? up->ep.addrlen : 0, msg, len, q->sent_us, ctx->loop.clock_us());
}

/* Every answer leaves here, whoever made it (the upstream, the cache, we)
 * and whoever asked (UDP, TCP, the API): cut to the client's UDP size, timed,
 * logged, sent. msg is the answer as the client must see it (its ID, its
 * EDNS); it may be shortened in place. API callbacks run only inside
 * dotproxy_ctx_process() or dotproxy_ctx_free(), as proxy.h promises: API
 * queries enter the pipeline only from there (see run_api_queries). */
DP_ALWAYS_INLINE void send_answer(struct dotproxy_ctx *ctx, const struct dp_origin *to,
                                  unsigned udp_limit, uint8_t *msg, size_t len,
                                  const struct answer_note *note)
{
    if (to->kind == DP_Q_REFRESH)
        return; /* a prefetch or a refresh after serve-stale: nobody waits */
    const char *policy = note != NULL ? note->policy : NULL;
    if (policy == NULL && note != NULL && dp_block_on(&ctx->block) && len > 12 &&
        (msg[6] | msg[7]) != 0) {
        /* CNAME cloaking: the chain reached a blocked name (or an address
         * an rpz-ip rule names). */
        int r = block_chain(ctx, &msg, &len, to->kind == DP_Q_UDP);
        if (r < 0)
            return; /* rpz-drop */
        if (r > 0)
            policy = ctx->block.text;
    }
    if (to->kind == DP_Q_UDP && len > udp_limit) {
        /* RFC 1035 4.2.1 / RFC 6891 7: too big for this client's UDP:
         * send what fits with TC=1 so it retries over TCP. */
        int n = dotproxy_dns_truncate(msg, len, udp_limit);
        if (n < 0)
            return;
        len = (size_t)n;
        dp_ctr_inc(&ctx->stats.ctr, DOTPROXY_CTR_TRUNCATED);
    }
    if (note != NULL && dynblock_client(to))
        dp_dynblock_answer(ctx->dynblock, dynblock_peer(to), msg, len, to->kind == DP_Q_UDP,
                           note->qtype, dp_now(ctx), note->dyn_slot);
    if (note != NULL) {
        if (note->timed)
            dp_stats_record_latency(&ctx->stats, dp_now(ctx) - note->arrived_us);
        if (ctx->cfg.qlog != NULL)
            log_answer(ctx, to, msg, len, note, policy);
    }
    if (ctx->cfg.tap != NULL)
        tap_client(ctx, to, DOTPROXY_TAP_CLIENT_RESPONSE, msg, len,
                   note != NULL ? note->arrived_us : dp_now(ctx));
    switch (to->kind) {
    case DP_Q_UDP:
        dp_listener_udp_send(&ctx->listeners, to->udp, to->peer, to->peerlen, to->dst, msg, len);
        break;
    case DP_Q_TCP: dp_listener_tcp_send(&ctx->listeners, to->tcp, msg, len); break;
    case DP_Q_TLS: dp_tls_listener_send(to->tls, to->tls_flags, msg, len); break;
    case DP_Q_API:
        assert(ctx->in_process);
        to->api_cb((int)DOTPROXY_DNS_RCODE(dp_get16(msg + 2)), msg, len, to->api_user);
        break;
    }
}

/* Where q's answer goes. */
static void origin_of(const struct dp_query *q, struct dp_origin *o)
{
    o->kind = q->kind;
    switch (q->kind) {
    case DP_Q_UDP:
        o->udp = q->from.udp.l;
        o->peer = &q->from.udp.peer;
        o->peerlen = q->from.udp.peerlen;
        o->dst = &q->from.udp.dst;
        break;
    case DP_Q_TCP: o->tcp = q->from.tcp.client; break;
    case DP_Q_TLS:
        o->tls = q->from.tls.client;
        o->tls_flags = q->from.tls.flags;
        break;
    case DP_Q_API:
        o->api_cb = q->from.api.cb;
        o->api_user = q->from.api.user;
        break;
    }
}

/* The largest UDP answer for the sender of info: its own advertised size
 * (512 without EDNS), never above the configured udp-size (1232 by default,
 * DNS flag day 2020): larger answers go out with TC=1 rather than as IP
 * fragments. */
static unsigned udp_limit_for(const struct dotproxy_ctx *ctx, const dotproxy_dns_info *info)
{
    unsigned lim = dotproxy_dns_udp_limit(info);
    return lim < ctx->cfg.udp_size ? lim : ctx->cfg.udp_size;
}

/* An error reply of our own; it carries an OPT only if the query had one
 * (make_reply adds a fresh one then). */
static int make_error(uint8_t *out, size_t cap, const uint8_t *query, size_t len, unsigned rcode,
                      int client_had_opt, uint16_t qname_len)
{
    int n = dotproxy_dns_make_reply(out, cap, query, len, rcode);
    if (n > 0 && !client_had_opt && out[10] == 0 && out[11] == 1) {
        /* The query we hold was rewritten for the upstream and has our
         * OPT: the client sent none, so its reply must have none. */
        out[11] = 0;
        n = DOTPROXY_DNS_HEADER_SIZE + qname_len + 4;
    }
    return n;
}

/* Our own answer to a client message that was never admitted (refused,
 * malformed, over a limit). The message may not parse: 512 octets is all
 * UDP may assume (RFC 1035 4.2.1). */
static void reply_error(struct dotproxy_ctx *ctx, const struct dp_origin *o, const uint8_t *query,
                        size_t len, unsigned rcode)
{
    uint8_t buf[DP_QUERY_INLINE + 64];
    uint8_t *out = buf;
    size_t cap = sizeof buf;
    if (len + 11 > cap) {
        out = malloc(len + 11);
        if (out == NULL)
            return;
        cap = len + 11;
    }
    int n = dotproxy_dns_make_reply(out, cap, query, len, rcode);
    if (n > 0)
        send_answer(ctx, o, DOTPROXY_DNS_UDP_MIN, out, (size_t)n, NULL);
    if (out != buf)
        free(out);
}

/* A dynamic block's action on a client query (dynblock.h); 1 if the query
 * was answered or dropped here, 0 if it goes on (truncate over TCP). */
static int dynblock_act(struct dotproxy_ctx *ctx, const struct dp_origin *o, const uint8_t *msg,
                        size_t len, int action)
{
    if (action == DOTPROXY_DYNBLOCK_TRUNCATE) {
        if (o->kind != DP_Q_UDP)
            return 0; /* TCP: the client proved its address */
        uint8_t out[DOTPROXY_DNS_UDP_MIN];
        int n = dotproxy_dns_make_reply(out, sizeof out, msg, len, DOTPROXY_RCODE_NOERROR);
        if (n > 0) {
            out[2] |= 0x02; /* TC */
            send_answer(ctx, o, DOTPROXY_DNS_UDP_MIN, out, (size_t)n, NULL);
        }
    } else if (action == DOTPROXY_DYNBLOCK_REFUSE) {
        reply_error(ctx, o, msg, len, DOTPROXY_RCODE_REFUSED);
    }
    return 1; /* counted per rule by dynblock.c */
}

/* Send msg to q's client (from_cache: the answer came from the cache), log
 * it if asked, and free q. */
static void deliver_from(struct dotproxy_ctx *ctx, struct dp_query *q, uint8_t *msg, size_t len,
                         int from_cache)
{
    struct dp_origin o;
    origin_of(q, &o);
    struct answer_note note = {
        .arrived_us = q->arrived_us,
        .up = from_cache ? NULL : q->up,
        .qtype = q->qtype,
        .from_cache = (uint8_t)from_cache,
        .timed = 1,
        .dyn_slot = q->dyn_slot,
    };
    send_answer(ctx, &o, q->udp_limit, msg, len, &note);
    query_free(ctx, q);
}

static void deliver(struct dotproxy_ctx *ctx, struct dp_query *q, uint8_t *msg, size_t len)
{
    deliver_from(ctx, q, msg, len, 0);
}

/* Answer r from the cache (fresh, or stale too when allowed) into the
 * scratch buffer. Returns the length, or 0 when there is nothing. */
static size_t cache_answer(struct dotproxy_ctx *ctx, struct dp_query *r, int allow_stale)
{
    if (!has_cache(ctx) || !r->cacheable)
        return 0;
    size_t n = 0, ede = 0;
    int res = cache_lookup(ctx, &r->key, allow_stale, r->q, r->qlen, &n, &ede);
    if (res <= 0)
        return 0;
    int m = dp_edns_add_client_opt_with(ctx->scratch, n, DP_SCRATCH, &r->edns,
                                        (uint16_t)ctx->cfg.udp_size, ede);
    if (m < 0)
        return 0;
    dotproxy_dns_set_id(ctx->scratch, (size_t)m, r->client_id);
    if (res == DP_CACHE_STALE)
        dp_ctr_inc(&ctx->stats.ctr, DOTPROXY_CTR_STALE_SERVED);
    return (size_t)m;
}

/* SERVFAIL, or the API error, for one query; frees it. */
static void fail_one(struct dotproxy_ctx *ctx, struct dp_query *q, int err)
{
    size_t n = cache_answer(ctx, q, 1);
    if (n > 0) {
        /* RFC 8767: when no upstream can answer, a stale answer beats none. */
        deliver_from(ctx, q, ctx->scratch, n, 1);
        return;
    }
    if (q->kind == DP_Q_API) {
        /* API queries enter the pipeline only inside process() or free(),
         * where their callback may run. */
        assert(ctx->in_process);
        q->from.api.cb(err, NULL, 0, q->from.api.user);
        query_free(ctx, q);
        return;
    }
    if (q->kind == DP_Q_REFRESH) {
        query_free(ctx, q);
        return;
    }
    dp_ctr_inc(&ctx->stats.ctr, DOTPROXY_CTR_SERVFAIL);
    dotproxy_dns_set_id(q->q, q->qlen, q->client_id);
    /* Every client gets its SERVFAIL, whatever its query's size: a large
     * one (rare) has its reply built on the heap. */
    uint8_t buf[DP_QUERY_INLINE + 64];
    uint8_t *out = q->qlen + 11u <= sizeof buf ? buf : malloc(q->qlen + 11u);
    int m = out != NULL
                ? make_error(out, q->qlen + 11u > sizeof buf ? q->qlen + 11u : sizeof buf, q->q,
                             q->qlen, DOTPROXY_RCODE_SERVFAIL, q->edns.had_opt, q->qname_len)
                : -1;
    if (m > 0)
        deliver(ctx, q, out, (size_t)m);
    else
        query_free(ctx, q);
    if (out != buf)
        free(out);
}

static struct dp_query *first_follower(struct dp_query *q)
{
    return dp_list_empty(&q->followers) ? NULL
                                        : DP_CONTAINER_OF(q->followers.next, struct dp_query, wait);
}

/* Give one client its copy of an upstream answer, then free its record. */
static void answer_one(struct dotproxy_ctx *ctx, struct dp_query *r, const uint8_t *msg, size_t len,
                       const dotproxy_dns_info *info, struct dp_upstream *up)
{
    uint8_t *buf = ctx->scratch;
    memcpy(buf, msg, len);
    dotproxy_dns_set_id(buf, len, r->client_id);
    /* Each client gets its question back exactly as it asked it (0x20
     * letter case), whatever case the upstream or the leader used. */
    if ((size_t)info->question_end - 4u - DOTPROXY_DNS_HEADER_SIZE == r->qname_len)
        memcpy(buf + DOTPROXY_DNS_HEADER_SIZE, r->q + DOTPROXY_DNS_HEADER_SIZE, r->qname_len);
    uint16_t keepalive = 0;
    int n = dp_edns_answer_for_client_parsed(buf, len, DP_SCRATCH, info, &r->edns,
                                             (uint16_t)ctx->cfg.udp_size, ctx->cfg.keep_ecs,
                                             &keepalive);
    if (keepalive != 0 && up != NULL) {
        /* RFC 7828: the server's idle timeout, in 100 ms units: close a
         * little before it. */
        uint64_t lim = (uint64_t)keepalive * 100000u;
        dp_upstream_learn_idle_limit(up, lim - lim / 10);
    }
    if (n < 0)
        fail_one(ctx, r, DOTPROXY_EUPSTREAM);
    else
        deliver(ctx, r, buf, (size_t)n);
}

void dp_proxy_answer(struct dotproxy_ctx *ctx, struct dp_query *q, uint8_t *msg, size_t len,
                     const dotproxy_dns_info *info)
{
    dp_ctr_inc(&ctx->stats.ctr, DOTPROXY_CTR_ANSWERS);
    if (ctx->cfg.tap != NULL)
        tap_upstream(ctx, q, DOTPROXY_TAP_FORWARDER_RESPONSE, msg, len);
    if (q->cacheable && has_cache(ctx))
        cache_store(ctx, &q->key, msg, len, info);
    struct dp_upstream *up = q->up;
    /* Everyone who asked the same question meanwhile, then the leader. */
    struct dp_query *f;
    while ((f = first_follower(q)) != NULL) {
        dp_ctr_inc(&ctx->stats.ctr, DOTPROXY_CTR_COALESCED);
        answer_one(ctx, f, msg, len, info, up);
    }
    if (q->kind == DP_Q_REFRESH)
        query_free(ctx, q);
    else
        answer_one(ctx, q, msg, len, info, up);
}

void dp_proxy_fail(struct dotproxy_ctx *ctx, struct dp_query *q, int err)
{
    dp_tls_pool_forget(&ctx->pool, q);
    /* Whoever waits for the same answer shares the failure (or the stale
     * answer). Followers are unlinked as they are freed. */
    struct dp_query *f;
    while ((f = first_follower(q)) != NULL)
        fail_one(ctx, f, err);
    fail_one(ctx, q, err);
}

void dp_proxy_dispatch(struct dotproxy_ctx *ctx, struct dp_query *q)
{
    struct dp_upstream *up = dp_upstreams_select(&ctx->upstreams, q->tried);
    if (up == NULL) {
        /* Every upstream is backing off or was tried: answer now rather
         * than queue behind a dead resolver. */
        dp_proxy_fail(ctx, q, DOTPROXY_EUPSTREAM);
        return;
    }
    dp_tls_pool_submit(&ctx->pool, up, q);
}

/* The pool's hooks: answers and failures come back here. */
static void pool_answer(void *user, struct dp_query *q, uint8_t *msg, size_t len,
                        const dotproxy_dns_info *info)
{
    dp_proxy_answer(user, q, msg, len, info);
}

static void pool_fail(void *user, struct dp_query *q, int err)
{
    dp_proxy_fail(user, q, err);
}

static void pool_redispatch(void *user, struct dp_query *q)
{
    dp_proxy_dispatch(user, q);
}

static void pool_sent(void *user, const struct dp_query *q)
{
    tap_upstream(user, q, DOTPROXY_TAP_FORWARDER_QUERY, q->q, q->qlen);
}

static void listener_query(void *user, const struct dp_origin *o, uint8_t *msg, size_t len)
{
    dp_proxy_client_query(user, o, msg, len);
}

void dp_proxy_listener_hooks(struct dotproxy_ctx *ctx, struct dp_listener_hooks *out)
{
    out->query = listener_query;
    out->user = ctx;
}

void dp_proxy_pool_hooks(struct dotproxy_ctx *ctx, struct dp_pool_hooks *out)
{
    out->answer = pool_answer;
    out->fail = pool_fail;
    out->redispatch = pool_redispatch;
    out->sent = pool_sent;
    out->user = ctx;
}

/* Common admission of a parsed query; returns NULL when over the limit.
 * Room is left for the EDNS rewrite (our OPT, keepalive, padding). */
static struct dp_query *admit(struct dotproxy_ctx *ctx, const dotproxy_dns_info *info,
                              const uint8_t *msg, size_t len)
{
    struct dp_query *q = query_alloc(ctx);
    if (q == NULL)
        return NULL;
    size_t cap = len + 18u + ctx->cfg.padding + 4u;
    if (cap > sizeof q->qbuf) {
        q->q = malloc(cap);
        if (q->q == NULL) {
            q->q = q->qbuf;
            q->qlen = 0;
            query_free(ctx, q);
            return NULL;
        }
    } else {
        cap = sizeof q->qbuf;
    }
    q->qcap = (uint32_t)cap;
    memcpy(q->q, msg, len);
    q->qlen = (uint16_t)len;
    q->client_id = info->id;
    q->qname_len = info->qname_len;
    q->qtype = info->qtype;
    q->qclass = info->qclass;
    q->udp_limit = (uint16_t)udp_limit_for(ctx, info);
    dp_edns_client_from_query(&q->edns, info);
    q->arrived_us = dp_now(ctx);
    q->deadline_us = q->arrived_us + (uint64_t)ctx->cfg.timeout_ms * 1000u;
    /* Every query has the same timeout, so appending keeps the list in
     * deadline order: expiry is a look at the head, O(1) per query. After a
     * reload that lowered the timeout, a new query goes before the older
     * ones that expire later (else its deadline waits for theirs). */
    struct dp_list *at = ctx->active.prev;
    while (at != &ctx->active &&
           DP_CONTAINER_OF(at, struct dp_query, active)->deadline_us > q->deadline_us)
        at = at->prev;
    dp_list_push_front(at, &q->active);
    ctx->n_active++;
    return q;
}

/* Rewrite q for the upstream (our OPT, padding, no ECS) and send it. */
static void forward(struct dotproxy_ctx *ctx, struct dp_query *q, const dotproxy_dns_info *info)
{
    /* Its name decides, once, which upstreams it may use (forward zones):
     * the others count as tried for every choice the pool makes. */
    q->tried = dp_forward_excluded(&ctx->forward, q->q + DOTPROXY_DNS_HEADER_SIZE, q->qname_len);
    struct dp_edns_upstream_opts o = {
        .udp_size = DP_EDNS_UDP_SIZE,
        .pad_block =
            dp_forward_plain_only(&ctx->forward, q->tried) ? 0 : (uint16_t)ctx->cfg.padding,
        .keep_ecs = (uint8_t)ctx->cfg.keep_ecs,
        .want_keepalive = 1,
    };
    int n = dp_edns_query_for_upstream(q->q, q->qlen, q->qcap, info, &o);
    if (n < 0) {
        dp_proxy_fail(ctx, q, DOTPROXY_EMALFORMED);
        return;
    }
    q->qlen = (uint16_t)n;
    dp_proxy_dispatch(ctx, q);
}

/* Fetch a fresh answer for a popular entry about to expire (no client). */
static void prefetch(struct dotproxy_ctx *ctx, const dotproxy_dns_info *info, const uint8_t *msg,
                     size_t len, const struct dp_cache_key *key)
{
    if (ctx->stopping || ctx->n_active * 2 > ctx->cfg.max_queries)
        return; /* never at the expense of clients */
    struct dp_query *q = admit(ctx, info, msg, len);
    if (q == NULL)
        return;
    q->kind = DP_Q_REFRESH;
    q->key = *key;
    q->cacheable = 1;
    inflight_add(ctx, q);
    dp_ctr_inc(&ctx->stats.ctr, DOTPROXY_CTR_PREFETCHES);
    forward(ctx, q, info);
}

/* The policy's word on a query, before the cache: a blocked name is
 * answered here (or dropped) and 1 returned; 0: go on. */
static __attribute__((noinline)) int block_query(struct dotproxy_ctx *ctx,
                                                 const struct dp_origin *o,
                                                 const dotproxy_dns_info *info, uint8_t *msg,
                                                 size_t len, struct dp_query *q)
{
    const struct sockaddr *client = NULL;
    socklen_t client_len = 0;
    if (o->kind == DP_Q_UDP)
        client = (const struct sockaddr *)o->peer;
    else if (o->kind == DP_Q_TCP)
        client = (const struct sockaddr *)dp_listener_tcp_peer(o->tcp, &client_len);
    struct dp_block_verdict v;
    int what = dp_block_decide(&ctx->block, msg + DOTPROXY_DNS_HEADER_SIZE,
                               len - DOTPROXY_DNS_HEADER_SIZE, client, &v);
    if (what == DP_BLOCK_PASS || what == DP_BLOCK_ALLOWED ||
        (what == DP_BLOCK_TCP_ONLY && o->kind != DP_Q_UDP))
        return 0;
    if (what != DP_BLOCK_DROP) {
        int n = dp_block_answer(&ctx->block, &v, msg, info->question_end, info->opt_off != 0,
                                (uint16_t)ctx->cfg.udp_size, ctx->block.answer,
                                sizeof ctx->block.answer);
        if (n < 0)
            return 0;
        dp_block_describe(&v, ctx->block.text, sizeof ctx->block.text);
        dp_block_log_names(&v, &ctx->block);
        struct answer_note note = {
            .arrived_us = q != NULL ? q->arrived_us : dp_now(ctx),
            .qtype = info->qtype,
            .policy = ctx->block.text,
            .dyn_slot = q != NULL ? q->dyn_slot : ctx->dyn_slot,
        };
        send_answer(ctx, o, udp_limit_for(ctx, info), ctx->block.answer, (size_t)n, &note);
    }
    if (q != NULL)
        query_free(ctx, q);
    return 1;
}

/* The forwarding pipeline, the same for every query whoever asked: the
 * cache, then the same question already on its way (coalescing), then the
 * upstream (EDNS rewritten for the TLS hop: padding, no ECS unless kept).
 * o says where the answer goes; info describes msg, parsed once. q is the
 * record when the query was admitted already (API queries: msg is q->q),
 * else NULL and one is taken when the cache cannot answer. */
DP_ALWAYS_INLINE void ask(struct dotproxy_ctx *ctx, const struct dp_origin *o,
                          const dotproxy_dns_info *info, uint8_t *msg, size_t len,
                          struct dp_query *q)
{
    if (dp_block_on(&ctx->block) && block_query(ctx, o, info, msg, len, q))
        return;
    struct dp_cache_key key;
    int cacheable = has_cache(ctx) && dp_cache_key_make(&key, msg, len, info) == 0;
    int stale_known = 0;
    if (cacheable) {
        size_t n = 0, ede = 0;
        int res = cache_lookup(ctx, &key, 0, msg, len, &n, &ede);
        if (res == DP_CACHE_HIT || res == DP_CACHE_HIT_REFRESH) {
            struct dp_edns_client ec;
            dp_edns_client_from_query(&ec, info);
            int m = dp_edns_add_client_opt_with(ctx->scratch, n, DP_SCRATCH, &ec,
                                                (uint16_t)ctx->cfg.udp_size, ede);
            if (m > 0) {
                dp_ctr_inc(&ctx->stats.ctr, DOTPROXY_CTR_CACHE_HITS);
                /* Answered at once: not timed (proxy.h: the histogram
                 * excludes cache hits). */
                struct answer_note note = {
                    .arrived_us = q != NULL ? q->arrived_us : dp_now(ctx),
                    .qtype = info->qtype,
                    .from_cache = 1,
                    .dyn_slot = q != NULL ? q->dyn_slot : ctx->dyn_slot,
                };
                send_answer(ctx, o, udp_limit_for(ctx, info), ctx->scratch, (size_t)m, &note);
                if (res == DP_CACHE_HIT_REFRESH && inflight_find(ctx, &key) == NULL)
                    prefetch(ctx, info, msg, len, &key);
                if (q != NULL)
                    query_free(ctx, q);
                return;
            }
        }
        dp_ctr_inc(&ctx->stats.ctr, DOTPROXY_CTR_CACHE_MISSES);
        stale_known = res == DP_CACHE_STALE;
    }

    if (q == NULL && dynblock_client(o)) {
        int a = dp_dynblock_miss(ctx->dynblock, (const struct sockaddr *)o->peer, msg, info,
                                 cacheable ? key.hash : 0, dp_now(ctx));
        if (a != DP_DYNBLOCK_PASS && dynblock_act(ctx, o, msg, len, a))
            return;
    }
    if (q == NULL) {
        q = ctx->stopping ? NULL : admit(ctx, info, msg, len);
        if (q == NULL) {
            dp_ctr_inc(&ctx->stats.ctr, DOTPROXY_CTR_SERVFAIL);
            reply_error(ctx, o, msg, len, DOTPROXY_RCODE_SERVFAIL);
            return;
        }
        q->kind = o->kind;
        q->dyn_slot = ctx->dyn_slot;
        if (o->kind == DP_Q_UDP) {
            q->from.udp.l = o->udp;
            memcpy(&q->from.udp.peer, o->peer, o->peerlen);
            q->from.udp.peerlen = o->peerlen;
            if (o->dst != NULL)
                q->from.udp.dst = *o->dst;
            else
                q->from.udp.dst.family = 0;
            if (ctx->cfg.max_client_queries != 0) {
                if (dp_policy_inflight_begin_home(ctx->policy, (const struct sockaddr *)o->peer,
                                                  &q->policy_home) != 0) {
                    /* Over its cap: drop; the client retries once some of
                     * its queries are answered. */
                    dp_ctr_inc(&ctx->stats.ctr, DOTPROXY_CTR_CLIENT_INFLIGHT_CAP);
                    query_free(ctx, q);
                    return;
                }
                q->counted = 1;
                q->policy_gen = ctx->policy_gen;
            }
        } else if (o->kind == DP_Q_TLS) {
            q->udp_limit = UINT16_MAX;
            dp_tls_listener_claim(o->tls, &q->from.tls, o->tls_flags);
        } else {
            q->udp_limit = UINT16_MAX;
            dp_listener_tcp_claim(o->tcp, &q->from.tcp);
        }
    }
    if (!cacheable) {
        forward(ctx, q, info);
        return;
    }
    q->key = key;
    q->cacheable = 1;
    struct dp_query *leader = inflight_find(ctx, &key);
    if (leader != NULL && leader->served_stale) {
        /* Its refresh is already late: this client gets the stale answer
         * too, now, rather than when the refresh gives up. */
        size_t n = cache_answer(ctx, q, 1);
        if (n > 0) {
            deliver_from(ctx, q, ctx->scratch, n, 1);
            return;
        }
    }
    if (leader != NULL) {
        /* The same question is already on its way: wait for that answer
         * rather than ask the upstream twice. */
        q->leader = leader;
        dp_list_push_back(&leader->followers, &q->wait);
        return;
    }
    inflight_add(ctx, q);
    if (stale_known) {
        /* RFC 8767: if the refresh is slow, the client gets the stale
         * answer after about 1.8 s while the refresh goes on. */
        q->stale_due_us = dp_now(ctx) + DP_STALE_AFTER_US;
        dp_list_push_back(&ctx->stale_watch, &q->stale);
    }
    forward(ctx, q, info);
}

void dp_proxy_client_query(struct dotproxy_ctx *ctx, const struct dp_origin *o, uint8_t *msg,
                           size_t len)
{
    if (len < DOTPROXY_DNS_HEADER_SIZE || (msg[2] & 0x80)) {
        /* No header to answer, or a response: never answer those (that is
         * how two servers end up bouncing packets forever). */
        dp_ctr_inc(&ctx->stats.ctr, DOTPROXY_CTR_DROPPED);
        return;
    }
    if (ctx->cfg.tap != NULL)
        tap_client(ctx, o, DOTPROXY_TAP_CLIENT_QUERY, msg, len, dp_now(ctx));
    /* Who may ask, and how fast: before any parsing or state. */
    const struct sockaddr *peer = (const struct sockaddr *)o->peer;
    int verdict = dp_policy_check(ctx->policy, peer, dp_now(ctx));
    if (verdict != DP_POLICY_ALLOW) {
        int acl = dp_policy_allowed(ctx->policy, peer) == 0;
        dp_ctr_inc(&ctx->stats.ctr, acl ? DOTPROXY_CTR_REFUSED_ACL : DOTPROXY_CTR_RATE_LIMITED);
        if (verdict == DP_POLICY_REFUSE)
            reply_error(ctx, o, msg, len, DOTPROXY_RCODE_REFUSED);
        return;
    }
    dotproxy_dns_info info;
    if (dotproxy_dns_parse(&info, msg, len) != 0) {
        dp_ctr_inc(&ctx->stats.ctr, DOTPROXY_CTR_FORMERR);
        reply_error(ctx, o, msg, len, DOTPROXY_RCODE_FORMERR);
        return;
    }
    if (DOTPROXY_DNS_OPCODE(info.flags) == 4) {
        /* NOTIFY (RFC 1996) for a zone-transfer feed: its module answers
         * (-1: no feed, NOTIMP as before). */
        int rc = dp_block_notify(&ctx->block, msg, len, peer);
        if (rc >= 0) {
            reply_error(ctx, o, msg, len, (unsigned)rc);
            return;
        }
    }
    if (DOTPROXY_DNS_OPCODE(info.flags) != 0) {
        reply_error(ctx, o, msg, len, DOTPROXY_RCODE_NOTIMP);
        return;
    }
    if (info.qdcount != 1) {
        dp_ctr_inc(&ctx->stats.ctr, DOTPROXY_CTR_FORMERR);
        reply_error(ctx, o, msg, len, DOTPROXY_RCODE_FORMERR);
        return;
    }
    if (info.opt_off != 0 && info.edns_version != 0) {
        /* RFC 6891 6.1.3: a version we do not speak gets BADVERS and our
         * version (0), before the cache: its key ignores the version. */
        reply_error(ctx, o, msg, len, DOTPROXY_RCODE_BADVERS);
        return;
    }
    if (!(info.flags & DOTPROXY_DNS_FLAG_RD)) {
        /* Without RD a client asks for what we already hold: answering it
         * from the cache would tell anyone what others looked up (cache
         * snooping), in a proxy that exists for privacy. Refused, as
         * unbound and kresd do by default. */
        dp_ctr_inc(&ctx->stats.ctr, DOTPROXY_CTR_REFUSED_NORECURSE);
        reply_error(ctx, o, msg, len, DOTPROXY_RCODE_REFUSED);
        return;
    }
    uint32_t slot;
    int a = dp_dynblock_query(ctx->dynblock, peer, msg, &info, dp_now(ctx), &slot);
    if (a != DP_DYNBLOCK_PASS && dynblock_act(ctx, o, msg, len, a))
        return;
    /* The answer hook finds the client's entry there (ask() keeps it with
     * the query record if the query goes upstream). */
    ctx->dyn_slot = slot;
    ask(ctx, o, &info, msg, len, NULL);
    ctx->dyn_slot = 0;
}

/* API queries admitted since the last turn enter the pipeline, here, inside
 * process(), where their callbacks may run (a cache hit answers at once). */
void dp_proxy_run_api_queries(struct dotproxy_ctx *ctx)
{
    /* Only those queued before this turn: an answer callback may queue a
     * follow-up, which then waits for the next turn, so callbacks that
     * keep asking cached names cannot hold the loop in one turn. */
    struct dp_list batch;
    dp_list_init(&batch);
    while (!dp_list_empty(&ctx->api_queue)) {
        struct dp_list *e = ctx->api_queue.next;
        dp_list_remove(e);
        dp_list_push_back(&batch, e);
    }
    while (!dp_list_empty(&batch)) {
        struct dp_query *q = DP_CONTAINER_OF(batch.next, struct dp_query, wait);
        dp_list_remove(&q->wait);
        struct dp_origin o;
        origin_of(q, &o);
        ask(ctx, &o, &q->from.api.info, q->q, q->qlen, q);
    }
}

/* The refresh of q is slow: serve its clients the stale answer now and let
 * the query go on, for the cache only. */
static void serve_stale(struct dotproxy_ctx *ctx, struct dp_query *q)
{
    struct dp_query *f;
    struct dp_list keep;
    dp_list_init(&keep);
    while ((f = first_follower(q)) != NULL) {
        size_t n = cache_answer(ctx, f, 1);
        if (n > 0) {
            deliver_from(ctx, f, ctx->scratch, n, 1);
        } else {
            dp_list_remove(&f->wait);
            dp_list_push_back(&keep, &f->wait);
        }
    }
    while (!dp_list_empty(&keep)) { /* those go on waiting */
        struct dp_list *e = keep.next;
        dp_list_remove(e);
        dp_list_push_back(&q->followers, e);
    }
    if (q->kind == DP_Q_REFRESH)
        return;
    size_t n = cache_answer(ctx, q, 1);
    if (n == 0)
        return;
    struct dp_origin o;
    origin_of(q, &o);
    struct answer_note note = {
        .arrived_us = q->arrived_us, .qtype = q->qtype, .from_cache = 1, .timed = 1};
    send_answer(ctx, &o, q->udp_limit, ctx->scratch, n, &note);
    q->served_stale = 1;
    if (q->kind == DP_Q_TCP)
        dp_listener_tcp_unclaim(&q->from.tcp);
    else if (q->kind == DP_Q_TLS)
        dp_tls_listener_unclaim(&q->from.tls);
    q->kind = DP_Q_REFRESH;
}

/* Deadlines due by now: the stale fallback of slow refreshes first (RFC
 * 8767), then queries out of time (SERVFAIL, or the API error). */
void dp_proxy_expire(struct dotproxy_ctx *ctx)
{
    uint64_t now = dp_now(ctx);
    while (!dp_list_empty(&ctx->stale_watch)) {
        struct dp_query *q = DP_CONTAINER_OF(ctx->stale_watch.next, struct dp_query, stale);
        if (q->stale_due_us > now)
            break;
        dp_list_remove(&q->stale);
        serve_stale(ctx, q);
    }
    while (!dp_list_empty(&ctx->active)) {
        struct dp_query *q = DP_CONTAINER_OF(ctx->active.next, struct dp_query, active);
        if (q->deadline_us > now)
            break;
        dp_ctr_inc(&ctx->stats.ctr, DOTPROXY_CTR_TIMEOUTS);
        dp_proxy_fail(ctx, q, DOTPROXY_ETIMEDOUT);
    }
}

uint64_t dp_proxy_next_due(const struct dotproxy_ctx *ctx)
{
    if (!dp_list_empty(&ctx->api_queue))
        return 0;
    uint64_t due = UINT64_MAX;
    if (!dp_list_empty(&ctx->stale_watch)) {
        const struct dp_query *q = DP_CONTAINER_OF(ctx->stale_watch.next, struct dp_query, stale);
        due = q->stale_due_us;
    }
    if (!dp_list_empty(&ctx->active)) {
        const struct dp_query *q = DP_CONTAINER_OF(ctx->active.next, struct dp_query, active);
        if (q->deadline_us < due)
            due = q->deadline_us;
    }
    return due;
}

void dp_proxy_fail_all(struct dotproxy_ctx *ctx, int err)
{
    while (!dp_list_empty(&ctx->active))
        dp_proxy_fail(ctx, DP_CONTAINER_OF(ctx->active.next, struct dp_query, active), err);
}

static int qregion_add(struct dotproxy_ctx *ctx, size_t n)
{
    struct dp_qregion *r = calloc(1, sizeof *r + n * sizeof r->rec[0]);
    if (r == NULL)
        return DOTPROXY_ENOMEM;
    r->n = n;
    struct dp_qregion **pp = &ctx->qregions;
    while (*pp != NULL)
        pp = &(*pp)->next;
    *pp = r;
    if (ctx->qbump == NULL)
        ctx->qbump = r;
    ctx->qpool_cap += n;
    return 0;
}

/* The in-flight table of leaders by question: a power of two at least
 * max_queries (short chains, a mask for an index). Rehashed into a larger
 * one when max_queries grows; nothing outside a call points into it. */
static int inflight_resize(struct dotproxy_ctx *ctx, size_t max_queries)
{
    size_t tab = 64;
    while (tab < max_queries)
        tab *= 2;
    if (ctx->inflight_tab != NULL && tab <= ctx->inflight_mask + 1)
        return 0;
    struct dp_query **nt = calloc(tab, sizeof *nt);
    if (nt == NULL)
        return DOTPROXY_ENOMEM;
    for (size_t i = 0; ctx->inflight_tab != NULL && i <= ctx->inflight_mask; i++) {
        struct dp_query *q = ctx->inflight_tab[i];
        while (q != NULL) {
            struct dp_query *next = q->hnext;
            struct dp_query **slot = &nt[q->key.hash & (tab - 1)];
            q->hnext = *slot;
            *slot = q;
            q = next;
        }
    }
    free(ctx->inflight_tab);
    ctx->inflight_tab = nt;
    ctx->inflight_mask = tab - 1;
    return 0;
}

int dp_proxy_init(struct dotproxy_ctx *ctx)
{
    dp_list_init(&ctx->active);
    dp_list_init(&ctx->api_queue);
    dp_list_init(&ctx->stale_watch);
    ctx->scratch = malloc(DP_SCRATCH);
    if (qregion_add(ctx, ctx->cfg.max_queries) != 0 ||
        inflight_resize(ctx, ctx->cfg.max_queries) != 0 || ctx->scratch == NULL)
        return DOTPROXY_ENOMEM;
    return 0;
}

int dp_proxy_resize(struct dotproxy_ctx *ctx, unsigned max_queries)
{
    /* Records in use cannot move, so growth is a new region beside the old
     * ones; the table is grown first so that a failure changes nothing. */
    if (max_queries <= ctx->qpool_cap)
        return 0;
    if (inflight_resize(ctx, max_queries) != 0)
        return DOTPROXY_ENOMEM;
    return qregion_add(ctx, max_queries - ctx->qpool_cap);
}

void dp_proxy_fini(struct dotproxy_ctx *ctx)
{
    /* Query records and the scratch buffer held clients' questions and
     * answers: wipe what was used before handing the memory back. */
    while (ctx->qregions != NULL) {
        struct dp_qregion *r = ctx->qregions;
        ctx->qregions = r->next;
        memset(r->rec, 0, r->used * sizeof r->rec[0]);
        free(r);
    }
    ctx->qbump = NULL;
    ctx->qpool_cap = 0;
    if (ctx->scratch != NULL)
        memset(ctx->scratch, 0, DP_SCRATCH);
    free(ctx->inflight_tab);
    free(ctx->scratch);
    ctx->inflight_tab = NULL;
    ctx->scratch = NULL;
}

/* ---- public ---- */

DOTPROXY_EXPORT int dotproxy_ctx_query(dotproxy_ctx *ctx, const uint8_t *query, size_t len,
                                       dotproxy_answer_fn cb, void *user)
{
    if (ctx == NULL || query == NULL || cb == NULL || len > DOTPROXY_DNS_MAX_SIZE)
        return DOTPROXY_EINVAL;
    if (ctx->stopping || ctx->stopped || atomic_load(&ctx->stop_requested))
        return DOTPROXY_ESTATE;
    dotproxy_dns_info info;
    if (dotproxy_dns_parse(&info, query, len) != 0 || (info.flags & DOTPROXY_DNS_FLAG_QR) ||
        info.qdcount != 1 || DOTPROXY_DNS_OPCODE(info.flags) != 0)
        return DOTPROXY_EMALFORMED;
    dp_loop_update_time(&ctx->loop);
    struct dp_query *q = admit(ctx, &info, query, len);
    if (q == NULL)
        return DOTPROXY_ELIMIT;
    q->kind = DP_Q_API;
    q->udp_limit = UINT16_MAX;
    q->from.api.cb = cb;
    q->from.api.user = user;
    q->from.api.info = info; /* offsets: valid for the copy at q->q */
    dp_ctr_inc(&ctx->stats.ctr, DOTPROXY_CTR_QUERIES_API);
    /* The pipeline runs at the next turn (due at once), inside process(),
     * where a cache hit may call cb. */
    dp_list_push_back(&ctx->api_queue, &q->wait);
    return 0;
}
