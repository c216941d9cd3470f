/* SPDX-License-Identifier: MIT */
/* The DNS-over-TLS listener and its clients (RFC 7858, RFC 7766 6.2,
 * RFC 8310): one non-blocking GnuTLS session per client on the context's
 * loop, no thread per connection.
 *
 * Memory of an idle client is the point of several choices below: reads go
 * into one buffer of the listener (a partial query alone is copied into the
 * client), answers are queued in a per-client buffer that exists only while
 * answers wait, and both are freed as soon as they are empty. What an idle
 * client holds is its record here and its GnuTLS session. */
#include "tls_listener.h"

#include <errno.h>
#include <libgen.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gnutls/crypto.h>

#include "bytes.h"
#include "dotproxy/error.h"
#include "edns.h"
#include "policy.h"
#include "tls_server.h"

/* Largest TLS record plaintext (RFC 8446 5.1): one read takes at most this. */
#define READ_CHUNK 16384u
/* A partial query (2-octet length, at most 65535 octets) plus one record
 * read past it while paused. */
#define IN_MAX (2u + 65535u + READ_CHUNK)
/* A client that reads its answers slower than this is closed. */
#define OUT_MAX   (256u << 10)
#define OUT_START 2048u
/* Queries one TLS client may have in flight before we stop reading it. */
#define CLIENT_MAX_QUERIES_DEFAULT 256u
/* RFC 8467 4.1: the recommended block for padded responses. */
#define ANSWER_PAD_BLOCK 468u
/* Refusals are logged once per client address per minute at most. */
#define REFUSAL_SLOTS    64u
#define REFUSAL_QUIET_US 60000000u
/* After a change in a watched directory: wait this long for the writer to
 * finish (a Secret update renames several entries), then load. */
#define RELOAD_SETTLE_US 150000u
#define MAX_WATCHES      3

enum { ST_HANDSHAKE, ST_OPEN };

struct tls_sock {
    struct dp_io io;
    struct dp_tls_listeners *tl;
    uint16_t port;
};

struct dp_tls_client {
    struct dp_io io;
    struct dp_tls_listeners *tl;
    struct dp_list lru;     /* tl->clients, least recently active first */
    struct dp_list queries; /* claims (struct dp_tls_claim) waiting for answers */
    unsigned n_queries;
    gnutls_session_t s;
    struct dp_tls_material *mat; /* what its handshake was made with */
    uint8_t state;
    uint8_t closed; /* detached; freed by the next flush */
    uint8_t paused; /* too many queries in flight: not reading */
    uint8_t read_closed;
    uint8_t dirty;
    uint8_t refused; /* the verify callback refused it (counted there) */
    uint8_t *in;     /* unconsumed input: a partial query, or queries held while paused */
    uint32_t in_len, in_cap;
    uint8_t *out; /* framed answers waiting to be written */
    uint32_t out_head, out_tail, out_cap;
    uint32_t send_blocked; /* a record_send returned EAGAIN: retry it first */
    uint64_t last_active_us;
    struct dp_timer timer; /* the handshake deadline, then the idle timeout */
    struct dp_tls_client *next_dirty;
    struct sockaddr_storage peer;
    socklen_t peerlen;
};

struct dp_tls_listeners {
    struct dp_loop *loop;
    const struct dp_logger *log;
    struct dp_counters *ctr;
    const struct dotproxy_config *cfg;
    struct dp_policy *const *policy;
    struct dp_listener_hooks hooks;
    struct tls_sock *socks;
    size_t n_socks;
    struct dp_list clients;
    size_t n_clients;
    struct dp_tls_client *dirty;
    struct dp_tls_material *mat; /* for new handshakes */
    uint8_t digest[32];          /* of the files mat was loaded from */
    gnutls_priority_t prio;
    gnutls_datum_t ticket_key;
    uint8_t *scratch; /* READ_CHUNK: every client reads into it */
    int quiescing;
    struct dp_io notify; /* inotify on the directories of the files */
    int wd[MAX_WATCHES];
    struct dp_timer reload_timer;
    struct {
        uint64_t key;
        uint64_t at_us;
    } refusals[REFUSAL_SLOTS];
};

static void client_close(struct dp_tls_client *c);
static void client_read(struct dp_tls_client *c);

static unsigned client_max_queries(const struct dp_tls_listeners *tl)
{
    unsigned cap = tl->cfg->max_client_queries;
    return cap != 0 && cap < CLIENT_MAX_QUERIES_DEFAULT ? cap : CLIENT_MAX_QUERIES_DEFAULT;
}

static void mark_dirty(struct dp_tls_client *c)
{
    if (c->dirty)
        return;
    c->dirty = 1;
    c->next_dirty = c->tl->dirty;
    c->tl->dirty = c;
}

static void peer_text(const struct dp_tls_client *c, char *buf, size_t cap)
{
    dotproxy_endpoint ep;
    memset(&ep, 0, sizeof ep);
    memcpy(&ep.addr, &c->peer, c->peerlen);
    ep.addrlen = c->peerlen;
    if (dotproxy_endpoint_format(&ep, buf, cap) < 0)
        snprintf(buf, cap, "?");
}

/* ---- the material: certificates, rotation ---- */

/* SHA-256 over the files' contents (length-prefixed): equal digests, the
 * same material, so a change elsewhere in a watched directory is ignored. */
static int files_digest(const struct dp_tls_config *t, uint8_t out[32])
{
    const char *paths[3] = {t->cert, t->key, t->client_ca};
    gnutls_hash_hd_t h;
    if (gnutls_hash_init(&h, GNUTLS_DIG_SHA256) < 0)
        return -1;
    int bad = 0;
    for (int i = 0; i < 3; i++) {
        gnutls_datum_t d = {NULL, 0};
        if (paths[i] != NULL && gnutls_load_file(paths[i], &d) < 0)
            bad = 1;
        uint8_t len[4];
        dp_put32(len, d.size);
        bad |= gnutls_hash(h, len, sizeof len) < 0;
        if (d.size > 0)
            bad |= gnutls_hash(h, d.data, d.size) < 0;
        gnutls_free(d.data);
    }
    gnutls_hash_deinit(h, out);
    return bad ? -1 : 0;
}

static int verify_client(gnutls_session_t s);

static int material_load(struct dp_tls_listeners *tl, struct dp_tls_material **out,
                         uint8_t digest[32])
{
    if (files_digest(&tl->cfg->tls, digest) != 0)
        memset(digest, 0, 32);
    int rc = dp_tls_server_load(tl->log, &tl->cfg->tls, out);
    if (rc != 0)
        return rc;
    if ((*out)->mutual)
        gnutls_certificate_set_verify_function((*out)->cred, verify_client);
    return 0;
}

static void material_set(struct dp_tls_listeners *tl, struct dp_tls_material *m)
{
    dp_tls_material_unref(tl->mat);
    tl->mat = m;
    dp_ctr_set(tl->ctr, DOTPROXY_CTR_TLS_CERT_NOT_AFTER,
               m->not_after > 0 ? (uint64_t)m->not_after : 0);
    dp_ctr_inc(tl->ctr, DOTPROXY_CTR_TLS_CERT_LOADS);
}

static void watch_dirs(struct dp_tls_listeners *tl);

void dp_tls_listener_reload(struct dp_tls_listeners *tl)
{
    if (tl == NULL)
        return;
    uint8_t digest[32];
    if (files_digest(&tl->cfg->tls, digest) == 0 && memcmp(digest, tl->digest, 32) == 0)
        return; /* the same files: nothing to do (and no new serial to log) */
    struct dp_tls_material *m;
    if (material_load(tl, &m, digest) != 0) {
        dp_ctr_inc(tl->ctr, DOTPROXY_CTR_TLS_CERT_LOAD_FAILURES);
        dp_log(tl->log, DOTPROXY_LOG_ERR,
               "TLS listener: the new certificate material is unusable; keeping the old "
               "(serial %s)",
               tl->mat->serial);
        return;
    }
    memcpy(tl->digest, digest, 32);
    material_set(tl, m);
    dp_log(tl->log, DOTPROXY_LOG_INFO,
           "TLS listener: certificate material loaded (serial %s); new handshakes use it",
           m->serial);
    watch_dirs(tl); /* a directory may have been replaced */
}

static void reload_fire(struct dp_timer *t)
{
    struct dp_tls_listeners *tl = DP_CONTAINER_OF(t, struct dp_tls_listeners, reload_timer);
    dp_tls_listener_reload(tl);
}

static void notify_on_ready(struct dp_io *io, unsigned revents)
{
    struct dp_tls_listeners *tl = DP_CONTAINER_OF(io, struct dp_tls_listeners, notify);
    _Alignas(struct inotify_event) char buf[4096];
    int any = 0;
    (void)revents;
    for (;;) {
        ssize_t n = read(io->fd, buf, sizeof buf);
        if (n > 0) {
            any = 1;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        break;
    }
    if (any && !dp_timer_armed(&tl->reload_timer) &&
        dp_timer_set(tl->loop, &tl->reload_timer, tl->loop->now_us + RELOAD_SETTLE_US) != 0)
        dp_tls_listener_reload(tl); /* no room for the timer: load now */
}

/* Watch the directories holding the files: Kubernetes updates a Secret
 * volume by pointing the `..data` symlink at a new directory (a rename in
 * the watched one), editors replace files by rename, cert-manager and
 * certbot write in place. Any of those is a change here. */
static void watch_dirs(struct dp_tls_listeners *tl)
{
    if (tl->notify.fd < 0)
        return;
    const struct dp_tls_config *t = &tl->cfg->tls;
    const char *paths[MAX_WATCHES] = {t->cert, t->key, t->client_ca};
    for (int i = 0; i < MAX_WATCHES; i++) {
        if (tl->wd[i] >= 0)
            inotify_rm_watch(tl->notify.fd, tl->wd[i]);
        tl->wd[i] = -1;
    }
    for (int i = 0; i < MAX_WATCHES; i++) {
        if (paths[i] == NULL)
            continue;
        char copy[4096];
        if (snprintf(copy, sizeof copy, "%s", paths[i]) >= (int)sizeof copy)
            continue;
        const char *dir = dirname(copy);
        tl->wd[i] = inotify_add_watch(tl->notify.fd, dir,
                                      IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE |
                                          IN_MOVED_FROM | IN_ATTRIB);
        if (tl->wd[i] < 0)
            dp_log(tl->log, DOTPROXY_LOG_WARN,
                   "TLS listener: cannot watch %s for new certificates (%s); reload to rotate", dir,
                   strerror(errno));
    }
}

/* ---- refusals ---- */

static int refusal_should_log(struct dp_tls_listeners *tl, const struct dp_tls_client *c)
{
    /* FNV-1a over the address only (not the port): one client, one slot. */
    const uint8_t *a;
    size_t n;
    if (c->peer.ss_family == AF_INET) {
        a = (const uint8_t *)&((const struct sockaddr_in *)&c->peer)->sin_addr;
        n = 4;
    } else {
        a = (const uint8_t *)&((const struct sockaddr_in6 *)&c->peer)->sin6_addr;
        n = 16;
    }
    uint64_t h = 14695981039346656037u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ a[i]) * 1099511628211u;
    h |= 1;
    unsigned slot = (unsigned)(h % REFUSAL_SLOTS);
    uint64_t now = tl->loop->now_us;
    if (tl->refusals[slot].key == h && now - tl->refusals[slot].at_us < REFUSAL_QUIET_US)
        return 0;
    tl->refusals[slot].key = h;
    tl->refusals[slot].at_us = now;
    return 1;
}

static void refuse(struct dp_tls_client *c, enum dp_tls_refusal r, const char *why)
{
    static const int ctr[] = {
        [DP_TLS_REFUSED_NO_CERT] = DOTPROXY_CTR_TLS_REFUSED_NO_CERT,
        [DP_TLS_REFUSED_UNTRUSTED] = DOTPROXY_CTR_TLS_REFUSED_UNTRUSTED,
        [DP_TLS_REFUSED_ID] = DOTPROXY_CTR_TLS_REFUSED_ID,
    };
    c->refused = 1;
    dp_ctr_inc(c->tl->ctr, ctr[r]);
    if (refusal_should_log(c->tl, c)) {
        char who[128];
        peer_text(c, who, sizeof who);
        dp_log(c->tl->log, DOTPROXY_LOG_WARN,
               "TLS client %s refused: %s (logged once a minute per client)", who, why);
    }
}

/* Called by GnuTLS inside the handshake once the client's certificate
 * arrived: refusing here makes the handshake fail with an alert, so the
 * client learns it was refused rather than seeing a closed connection. */
static int verify_client(gnutls_session_t s)
{
    struct dp_tls_client *c = gnutls_session_get_ptr(s);
    char why[256];
    enum dp_tls_refusal r = dp_tls_server_check_client(s, &c->tl->cfg->tls, why, sizeof why);
    if (r == DP_TLS_REFUSED_NONE)
        return 0;
    refuse(c, r, why);
    return GNUTLS_E_CERTIFICATE_ERROR;
}

/* ---- clients ---- */

static void client_free(struct dp_tls_client *c)
{
    if (c->s != NULL)
        gnutls_deinit(c->s);
    dp_tls_material_unref(c->mat);
    free(c->in);
    free(c->out);
    free(c);
}

static void client_close(struct dp_tls_client *c)
{
    struct dp_tls_listeners *tl = c->tl;
    if (c->closed)
        return;
    c->closed = 1;
    /* Its queries live on until answered or timed out; their answers are
     * then dropped. */
    while (!dp_list_empty(&c->queries)) {
        struct dp_tls_claim *cl = DP_CONTAINER_OF(c->queries.next, struct dp_tls_claim, link);
        dp_list_remove(&cl->link);
        cl->client = NULL;
    }
    c->n_queries = 0;
    dp_list_remove(&c->lru);
    tl->n_clients--;
    dp_timer_cancel(tl->loop, &c->timer);
    if (c->state == ST_OPEN && c->send_blocked == 0)
        (void)gnutls_bye(c->s, GNUTLS_SHUT_WR); /* best effort, never waits */
    dp_loop_del(tl->loop, &c->io);
    close(c->io.fd);
    c->io.fd = -1;
    free(c->out);
    c->out = NULL;
    c->out_cap = c->out_head = c->out_tail = 0;
    mark_dirty(c); /* freed in the flush: a handler up the stack may read c->in */
}

static void client_update_want(struct dp_tls_client *c)
{
    unsigned want = 0;
    if (c->state == ST_HANDSHAKE) {
        want = gnutls_record_get_direction(c->s) ? DOTPROXY_EV_OUT : DOTPROXY_EV_IN;
    } else {
        c->paused = c->n_queries >= client_max_queries(c->tl);
        if (!c->read_closed && !c->paused && !c->tl->quiescing)
            want |= DOTPROXY_EV_IN;
        if (c->send_blocked || c->out_head < c->out_tail)
            want |= DOTPROXY_EV_OUT;
    }
    dp_loop_want(c->tl->loop, &c->io, want);
}

static void arm_idle(struct dp_tls_client *c)
{
    uint64_t due = c->last_active_us + (uint64_t)c->tl->cfg->tls.idle_timeout_ms * 1000u;
    /* Re-arming an armed timer cannot fail; a new one may (no room): then
     * nothing would close the client, so close it now. */
    if (dp_timer_set(c->tl->loop, &c->timer, due) != 0)
        client_close(c);
}

static void timer_fire(struct dp_timer *t)
{
    struct dp_tls_client *c = DP_CONTAINER_OF(t, struct dp_tls_client, timer);
    struct dp_tls_listeners *tl = c->tl;
    if (c->state == ST_HANDSHAKE) {
        dp_ctr_inc(tl->ctr, DOTPROXY_CTR_TLS_IN_TIMEOUTS);
        client_close(c);
        return;
    }
    uint64_t due = c->last_active_us + (uint64_t)tl->cfg->tls.idle_timeout_ms * 1000u;
    if (c->n_queries == 0 && c->out_head == c->out_tail && tl->loop->now_us >= due) {
        client_close(c);
        return;
    }
    (void)dp_timer_set(tl->loop, t, due > tl->loop->now_us ? due : tl->loop->now_us + 1000u);
}

/* What the query asks of its transport: padding (RFC 8467), keepalive
 * (RFC 7828). Only queries with additional records can carry either. */
static unsigned query_flags(const uint8_t *msg, size_t len)
{
    if (len < DOTPROXY_DNS_HEADER_SIZE || dp_get16(msg + 10) == 0)
        return 0;
    dotproxy_dns_info info;
    if (dotproxy_dns_parse(&info, msg, len) != 0 || info.opt_off == 0)
        return 0;
    unsigned flags = 0;
    size_t p = (size_t)info.opt_off + DP_EDNS_OPT_FIXED;
    size_t end = (size_t)info.opt_off + info.opt_len;
    while (p + 4 <= end) {
        unsigned code = dp_get16(msg + p), olen = dp_get16(msg + p + 2);
        if (code == DP_EDNS_OPT_CODE_PADDING)
            flags |= DP_TLS_Q_PADDED;
        else if (code == DP_EDNS_OPT_CODE_KEEPALIVE)
            flags |= DP_TLS_Q_KEEPALIVE;
        p += 4u + olen;
    }
    return flags;
}

/* Whole queries from buf[0..len) go up; returns how many octets were
 * consumed, or -1 when c was closed. Stops at the in-flight cap. */
static long consume(struct dp_tls_client *c, uint8_t *buf, size_t len)
{
    struct dp_tls_listeners *tl = c->tl;
    size_t off = 0;
    unsigned cap = client_max_queries(tl);
    while (len - off >= 2 && !tl->quiescing) {
        if (c->n_queries >= cap) {
            c->paused = 1;
            break;
        }
        size_t fl = dp_get16(buf + off);
        if (fl == 0) {
            client_close(c); /* RFC 7766 8: no valid message is empty */
            return -1;
        }
        if (len - off < 2 + fl)
            break;
        uint8_t *m = buf + off + 2;
        off += 2 + fl;
        c->last_active_us = tl->loop->now_us;
        dp_list_remove(&c->lru);
        dp_list_push_back(&tl->clients, &c->lru);
        struct dp_origin o = {
            .kind = DP_Q_TLS,
            .peer = &c->peer,
            .peerlen = c->peerlen,
            .tls = c,
            .tls_flags = (uint8_t)query_flags(m, fl),
        };
        dp_ctr_inc(tl->ctr, DOTPROXY_CTR_QUERIES_TLS);
        tl->hooks.query(tl->hooks.user, &o, m, fl);
        if (c->closed)
            return -1;
    }
    return (long)off;
}

/* Keep buf[from..len) for later in c->in (buf may be c->in itself). The
 * buffer is sized to the frame in progress, not to the largest possible. */
static int keep_rest(struct dp_tls_client *c, const uint8_t *buf, size_t from, size_t len)
{
    size_t rest = len - from;
    if (buf == c->in) {
        memmove(c->in, c->in + from, rest);
        c->in_len = (uint32_t)rest;
    } else if (rest > 0) {
        size_t want = rest >= 2 ? 2u + dp_get16(buf + from) : 64u;
        if (want < rest)
            want = rest;
        if (c->in_cap < want) {
            uint8_t *n = realloc(c->in, want);
            if (n == NULL)
                return -1;
            c->in = n;
            c->in_cap = (uint32_t)want;
        }
        memcpy(c->in + c->in_len, buf + from, rest);
        c->in_len += (uint32_t)rest;
    }
    if (c->in_len == 0 && c->in != NULL) {
        free(c->in); /* idle clients hold no input buffer */
        c->in = NULL;
        c->in_cap = 0;
    }
    return 0;
}

/* n octets just read into the listener's scratch. Returns -1 if c closed. */
static int feed(struct dp_tls_client *c, uint8_t *p, size_t n)
{
    if (c->in_len > 0) {
        /* Continuing a partial query: append, then take what is whole. */
        size_t need = c->in_len + n;
        if (need > IN_MAX) {
            client_close(c);
            return -1;
        }
        if (c->in_cap < need) {
            size_t cap = c->in_cap * 2 > need ? c->in_cap * 2 : need;
            if (cap > IN_MAX)
                cap = IN_MAX;
            uint8_t *nb = realloc(c->in, cap);
            if (nb == NULL) {
                client_close(c);
                return -1;
            }
            c->in = nb;
            c->in_cap = (uint32_t)cap;
        }
        memcpy(c->in + c->in_len, p, n);
        c->in_len += (uint32_t)n;
        p = c->in;
        n = c->in_len;
    }
    long used = consume(c, p, n);
    if (used < 0)
        return -1;
    if (keep_rest(c, p, (size_t)used, n) != 0) {
        client_close(c);
        return -1;
    }
    return 0;
}

static void handshake_done(struct dp_tls_client *c)
{
    struct dp_tls_listeners *tl = c->tl;
    c->state = ST_OPEN;
    dp_ctr_inc(tl->ctr, gnutls_session_is_resumed(c->s) ? DOTPROXY_CTR_TLS_IN_RESUMED
                                                        : DOTPROXY_CTR_TLS_IN_HANDSHAKES);
    c->last_active_us = tl->loop->now_us;
    arm_idle(c);
}

static void client_handshake(struct dp_tls_client *c)
{
    int rc = gnutls_handshake(c->s);
    if (rc == GNUTLS_E_SUCCESS) {
        handshake_done(c);
        if (!c->closed)
            client_read(c); /* the first query may have come with the Finished */
        return;
    }
    if (rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED || !gnutls_error_is_fatal(rc)) {
        client_update_want(c);
        return;
    }
    if (!c->refused) {
        if (rc == GNUTLS_E_NO_CERTIFICATE_FOUND || rc == GNUTLS_E_CERTIFICATE_REQUIRED)
            refuse(c, DP_TLS_REFUSED_NO_CERT, "no client certificate");
        else
            dp_ctr_inc(c->tl->ctr, DOTPROXY_CTR_TLS_IN_FAILED);
    }
    client_close(c);
}

static void client_read(struct dp_tls_client *c)
{
    struct dp_tls_listeners *tl = c->tl;
    while (!c->paused && !c->read_closed && !tl->quiescing) {
        ssize_t n = gnutls_record_recv(c->s, tl->scratch, READ_CHUNK);
        if (n > 0) {
            if (feed(c, tl->scratch, (size_t)n) != 0)
                return;
            continue;
        }
        if (n == GNUTLS_E_AGAIN)
            break;
        if (n == GNUTLS_E_INTERRUPTED || n == GNUTLS_E_REHANDSHAKE)
            continue;
        if (n == 0 || n == GNUTLS_E_PREMATURE_TERMINATION) {
            /* The client is done asking; it may still read what it is owed. */
            c->read_closed = 1;
            if (c->n_queries == 0 && c->out_head == c->out_tail) {
                client_close(c);
                return;
            }
            break;
        }
        client_close(c);
        return;
    }
    client_update_want(c);
}

/* Write what is queued; -1 if c was closed. */
static int client_write(struct dp_tls_client *c)
{
    while (c->send_blocked || c->out_head < c->out_tail) {
        ssize_t n;
        size_t len = c->out_tail - c->out_head;
        if (len > READ_CHUNK)
            len = READ_CHUNK;
        /* After GNUTLS_E_AGAIN the same record is retried with (NULL, 0). */
        if (c->send_blocked)
            n = gnutls_record_send(c->s, NULL, 0);
        else
            n = gnutls_record_send(c->s, c->out + c->out_head, len);
        if (n > 0) {
            c->out_head += (uint32_t)n;
            c->send_blocked = 0;
            continue;
        }
        if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) {
            if (!c->send_blocked)
                c->send_blocked = (uint32_t)len;
            if (n == GNUTLS_E_INTERRUPTED)
                continue;
            break;
        }
        client_close(c);
        return -1;
    }
    if (c->out_head == c->out_tail && c->out != NULL) {
        free(c->out); /* idle clients hold no output buffer */
        c->out = NULL;
        c->out_head = c->out_tail = c->out_cap = 0;
    }
    if (c->out_head == c->out_tail && c->read_closed && c->n_queries == 0) {
        client_close(c);
        return -1;
    }
    client_update_want(c);
    return 0;
}

static void client_on_ready(struct dp_io *io, unsigned revents)
{
    struct dp_tls_client *c = DP_CONTAINER_OF(io, struct dp_tls_client, io);
    if (c->state == ST_HANDSHAKE) {
        client_handshake(c);
        return;
    }
    if ((revents & DOTPROXY_EV_OUT) && client_write(c) != 0)
        return;
    if (revents & (DOTPROXY_EV_IN | DOTPROXY_EV_ERR))
        client_read(c);
}

/* Add the transport's options to the answer msg[0..len) (room up to cap):
 * edns-tcp-keepalive with our idle timeout, then padding to a multiple of
 * 468 octets. Only when the answer ends with its OPT RR, as those made for
 * a client with EDNS always do. Returns the new length. */
static size_t answer_options(uint8_t *msg, size_t len, size_t cap, unsigned flags, unsigned idle_ms)
{
    dotproxy_dns_info info;
    if (dotproxy_dns_parse(&info, msg, len) != 0 || info.opt_off == 0 ||
        (size_t)info.opt_off + info.opt_len != len)
        return len;
    size_t rdlen_at = (size_t)info.opt_off + 9u;
    size_t n = len;
    if ((flags & DP_TLS_Q_KEEPALIVE) && n + 6 <= cap) {
        unsigned t = idle_ms / 100u;
        dp_put16(msg + n, DP_EDNS_OPT_CODE_KEEPALIVE);
        dp_put16(msg + n + 2, 2);
        dp_put16(msg + n + 4, (uint16_t)(t > 65535u ? 65535u : t));
        n += 6;
    }
    if (flags & DP_TLS_Q_PADDED) {
        size_t pad = (ANSWER_PAD_BLOCK - (n + 4) % ANSWER_PAD_BLOCK) % ANSWER_PAD_BLOCK;
        if (n + 4 + pad <= cap && n + 4 + pad <= 65535u) {
            dp_put16(msg + n, DP_EDNS_OPT_CODE_PADDING);
            dp_put16(msg + n + 2, (uint16_t)pad);
            memset(msg + n + 4, 0, pad);
            n += 4 + pad;
        }
    }
    if (dp_get16(msg + rdlen_at) + (n - len) > 65535u)
        return len;
    dp_put16(msg + rdlen_at, (uint16_t)(dp_get16(msg + rdlen_at) + (n - len)));
    return n;
}

void dp_tls_listener_send(struct dp_tls_client *c, unsigned flags, const uint8_t *msg, size_t len)
{
    if (c == NULL || c->closed)
        return;
    size_t extra = flags ? 6u + 4u + ANSWER_PAD_BLOCK : 0u;
    size_t need = 2 + len + extra;
    if (c->out_cap - c->out_tail < need) {
        size_t used = c->out_tail - c->out_head;
        if (c->out_head > 0 && !c->send_blocked) {
            memmove(c->out, c->out + c->out_head, used);
            c->out_head = 0;
            c->out_tail = (uint32_t)used;
        }
        if (c->out_cap - c->out_tail < need) {
            size_t cap = c->out_cap ? c->out_cap : OUT_START;
            while (cap - c->out_tail < need)
                cap *= 2;
            if (cap > OUT_MAX + 65536u + ANSWER_PAD_BLOCK) {
                dp_log(c->tl->log, DOTPROXY_LOG_INFO,
                       "TLS client not reading its answers: closing it");
                client_close(c);
                return;
            }
            uint8_t *nb = realloc(c->out, cap);
            if (nb == NULL) {
                client_close(c);
                return;
            }
            c->out = nb;
            c->out_cap = (uint32_t)cap;
        }
    }
    uint8_t *at = c->out + c->out_tail;
    memcpy(at + 2, msg, len);
    size_t n =
        flags ? answer_options(at + 2, len, len + extra, flags, c->tl->cfg->tls.idle_timeout_ms)
              : len;
    dotproxy_frame_put_prefix(at, n);
    c->out_tail += (uint32_t)(2 + n);
    mark_dirty(c);
}

void dp_tls_listener_claim(struct dp_tls_client *c, struct dp_tls_claim *cl, unsigned flags)
{
    cl->client = c;
    cl->flags = (uint8_t)flags;
    dp_list_push_back(&c->queries, &cl->link);
    c->n_queries++;
}

void dp_tls_listener_unclaim(struct dp_tls_claim *cl)
{
    struct dp_tls_client *c = cl->client;
    if (c == NULL)
        return;
    dp_list_remove(&cl->link);
    cl->client = NULL;
    c->n_queries--;
    if (c->paused)
        mark_dirty(c); /* the flush resumes it */
}

const struct sockaddr_storage *dp_tls_listener_peer(const struct dp_tls_client *c, socklen_t *len)
{
    *len = c->peerlen;
    return &c->peer;
}

static int session_new(struct dp_tls_listeners *tl, struct dp_tls_client *c)
{
    static const gnutls_datum_t alpn = {(unsigned char *)"dot", 3}; /* RFC 7858 */
    if (gnutls_init(&c->s, GNUTLS_SERVER | GNUTLS_NONBLOCK | GNUTLS_NO_SIGNAL) < 0) {
        c->s = NULL;
        return -1;
    }
    c->mat = tl->mat;
    dp_tls_material_ref(c->mat);
    if (gnutls_priority_set(c->s, tl->prio) < 0 ||
        gnutls_credentials_set(c->s, GNUTLS_CRD_CERTIFICATE, c->mat->cred) < 0 ||
        gnutls_session_ticket_enable_server(c->s, &tl->ticket_key) < 0 ||
        gnutls_alpn_set_protocols(c->s, &alpn, 1, 0) < 0)
        return -1;
    if (c->mat->mutual)
        gnutls_certificate_server_set_request(c->s, GNUTLS_CERT_REQUIRE);
    gnutls_session_set_ptr(c->s, c);
    gnutls_transport_set_int(c->s, c->io.fd);
    return 0;
}

static int evict_idlest(void *arg)
{
    struct dp_tls_listeners *tl = arg;
    if (dp_list_empty(&tl->clients))
        return -1;
    client_close(DP_CONTAINER_OF(tl->clients.next, struct dp_tls_client, lru));
    return 0;
}

static void on_accept(struct dp_io *io, unsigned revents)
{
    struct tls_sock *l = DP_CONTAINER_OF(io, struct tls_sock, io);
    struct dp_tls_listeners *tl = l->tl;
    (void)revents;
    for (;;) {
        struct sockaddr_storage peer;
        socklen_t peerlen;
        int fd = dp_listener_accept(io->fd, *tl->policy, tl->ctr, tl->log, evict_idlest, tl, &peer,
                                    &peerlen);
        if (fd < 0)
            return;
        while (tl->n_clients >= tl->cfg->max_tcp_clients)
            client_close(DP_CONTAINER_OF(tl->clients.next, struct dp_tls_client, lru));
        struct dp_tls_client *c = calloc(1, sizeof *c);
        if (c == NULL) {
            close(fd);
            continue;
        }
        c->tl = tl;
        c->io.fd = fd;
        c->io.on_ready = client_on_ready;
        memcpy(&c->peer, &peer, peerlen);
        c->peerlen = peerlen;
        dp_list_init(&c->queries);
        dp_list_init(&c->lru);
        dp_timer_init(&c->timer, timer_fire);
        if (session_new(tl, c) != 0 || dp_loop_add(tl->loop, &c->io, DOTPROXY_EV_IN) != 0) {
            close(fd);
            client_free(c);
            continue;
        }
        dp_list_push_back(&tl->clients, &c->lru);
        tl->n_clients++;
        dp_ctr_inc(tl->ctr, DOTPROXY_CTR_TLS_CLIENTS);
        c->last_active_us = tl->loop->now_us;
        if (dp_timer_set(tl->loop, &c->timer,
                         tl->loop->now_us + (uint64_t)tl->cfg->handshake_timeout_ms * 1000u) != 0)
            client_close(c);
    }
}

int dp_tls_listener_flush(struct dp_tls_listeners *tl)
{
    int produced = 0;
    if (tl == NULL)
        return 0;
    while (tl->dirty != NULL) {
        struct dp_tls_client *c = tl->dirty;
        tl->dirty = c->next_dirty;
        c->dirty = 0;
        c->next_dirty = NULL;
        if (c->closed) {
            client_free(c);
            continue;
        }
        if (c->paused && c->n_queries < client_max_queries(tl)) {
            /* Room again: take the queries held, then read on (GnuTLS may
             * hold decrypted records the fd will not signal again). */
            c->paused = 0;
            if (c->in_len > 0) {
                long used = consume(c, c->in, c->in_len);
                if (used < 0)
                    continue;
                if (keep_rest(c, c->in, (size_t)used, c->in_len) != 0) {
                    client_close(c);
                    continue;
                }
            }
            produced = 1;
            if (!c->paused)
                client_read(c);
            if (c->closed)
                continue;
        }
        client_write(c);
    }
    return produced;
}

void dp_tls_listener_quiesce(struct dp_tls_listeners *tl)
{
    if (tl == NULL)
        return;
    tl->quiescing = 1;
    for (size_t i = 0; i < tl->n_socks; i++) {
        if (tl->socks[i].io.fd < 0)
            continue;
        dp_loop_del(tl->loop, &tl->socks[i].io);
        close(tl->socks[i].io.fd);
        tl->socks[i].io.fd = -1;
    }
    struct dp_list *e = tl->clients.next;
    while (e != &tl->clients) {
        struct dp_tls_client *c = DP_CONTAINER_OF(e, struct dp_tls_client, lru);
        e = e->next;
        if (c->n_queries == 0 && c->out_head == c->out_tail)
            client_close(c);
        else
            client_update_want(c);
    }
}

void dp_tls_listener_close_clients(struct dp_tls_listeners *tl)
{
    if (tl == NULL)
        return;
    while (!dp_list_empty(&tl->clients))
        client_close(DP_CONTAINER_OF(tl->clients.next, struct dp_tls_client, lru));
    while (tl->dirty != NULL) {
        struct dp_tls_client *c = tl->dirty;
        tl->dirty = c->next_dirty;
        client_free(c); /* every one is closed now */
    }
}

void dp_tls_listener_apply_limits(struct dp_tls_listeners *tl)
{
    while (tl != NULL && tl->n_clients > tl->cfg->max_tcp_clients)
        client_close(DP_CONTAINER_OF(tl->clients.next, struct dp_tls_client, lru));
}

/* ---- creation ---- */

static int open_sock(struct dp_tls_listeners *tl, const dotproxy_endpoint *ep, uint16_t *port)
{
    char label[128];
    if (dotproxy_endpoint_format(ep, label, sizeof label) < 0)
        snprintf(label, sizeof label, "?");
    int fd = socket(ep->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        dp_log(tl->log, DOTPROXY_LOG_ERR, "cannot listen on %s (TLS): %s", label, strerror(errno));
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (tl->cfg->reuseport)
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (ep->addr.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (bind(fd, (const struct sockaddr *)&ep->addr, ep->addrlen) != 0 || listen(fd, 1024) != 0) {
        dp_log(tl->log, DOTPROXY_LOG_ERR, "cannot listen on %s (TLS): %s", label, strerror(errno));
        close(fd);
        return -1;
    }
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    *port = 0;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0)
        *port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                              : ((struct sockaddr_in6 *)&ss)->sin6_port);
    return fd;
}

int dp_tls_listener_new(struct dp_tls_listeners **out, struct dp_loop *loop,
                        const struct dp_logger *log, struct dp_counters *ctr,
                        const struct dotproxy_config *cfg, struct dp_policy *const *policy,
                        const struct dp_listener_hooks *hooks)
{
    *out = NULL;
    const struct dp_tls_config *t = &cfg->tls;
    if (t->n_listen == 0 && t->cert == NULL && t->key == NULL && t->client_ca == NULL)
        return 0;
    if (t->cert == NULL || t->key == NULL) {
        dp_log(log, DOTPROXY_LOG_ERR,
               "TLS listener: --tls-cert and --tls-key are both needed with --listen-tls");
        return DOTPROXY_EINVAL;
    }
    struct dp_tls_listeners *tl = calloc(1, sizeof *tl);
    if (tl == NULL)
        return DOTPROXY_ENOMEM;
    tl->loop = loop;
    tl->log = log;
    tl->ctr = ctr;
    tl->cfg = cfg;
    tl->policy = policy;
    tl->hooks = *hooks;
    tl->notify.fd = -1;
    for (int i = 0; i < MAX_WATCHES; i++)
        tl->wd[i] = -1;
    dp_list_init(&tl->clients);
    dp_timer_init(&tl->reload_timer, reload_fire);
    int rc;
    struct dp_tls_material *m;
    if ((rc = material_load(tl, &m, tl->digest)) != 0)
        goto fail;
    material_set(tl, m);
    const char *str = cfg->tls_priority ? cfg->tls_priority : DOTPROXY_TLS_PRIORITY_DEFAULT;
    rc = DOTPROXY_ETLS;
    if (gnutls_priority_init(&tl->prio, str, NULL) < 0) {
        tl->prio = NULL;
        goto fail;
    }
    /* GnuTLS derives the keys that protect tickets from this one and rotates
     * them by itself as time passes (since 3.6.13): resumption works across
     * the rotation window, and an old ticket stops opening sessions. */
    if (gnutls_session_ticket_key_generate(&tl->ticket_key) < 0)
        goto fail;
    rc = DOTPROXY_ENOMEM;
    if (t->n_listen == 0) {
        *out = tl; /* material only: --check-config, or listeners added later */
        return 0;
    }
    if ((tl->scratch = malloc(READ_CHUNK)) == NULL ||
        (tl->socks = calloc(t->n_listen, sizeof *tl->socks)) == NULL)
        goto fail;
    for (size_t i = 0; i < t->n_listen; i++) {
        tl->socks[i].io.fd = -1;
        tl->socks[i].tl = tl;
    }
    tl->n_socks = t->n_listen;
    for (size_t i = 0; i < t->n_listen; i++) {
        int fd = open_sock(tl, &t->listen[i], &tl->socks[i].port);
        if (fd < 0) {
            rc = DOTPROXY_EBIND;
            goto fail;
        }
        tl->socks[i].io.fd = fd;
        tl->socks[i].io.on_ready = on_accept;
        if (dp_loop_add(loop, &tl->socks[i].io, DOTPROXY_EV_IN) != 0)
            goto fail;
    }
    tl->notify.fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    tl->notify.on_ready = notify_on_ready;
    if (tl->notify.fd < 0) {
        dp_log(log, DOTPROXY_LOG_WARN,
               "TLS listener: no inotify (%s): certificates rotate on reload only",
               strerror(errno));
    } else if (dp_loop_add(loop, &tl->notify, DOTPROXY_EV_IN) != 0) {
        close(tl->notify.fd);
        tl->notify.fd = -1;
        goto fail;
    }
    watch_dirs(tl);
    dp_log(log, DOTPROXY_LOG_INFO, "TLS listener: certificate serial %s%s", m->serial,
           m->mutual ? ", client certificates required" : "");
    *out = tl;
    return 0;
fail:
    dp_tls_listener_free(tl);
    return rc;
}

void dp_tls_listener_free(struct dp_tls_listeners *tl)
{
    if (tl == NULL)
        return;
    dp_tls_listener_close_clients(tl);
    for (size_t i = 0; i < tl->n_socks; i++) {
        if (tl->socks[i].io.fd < 0)
            continue;
        dp_loop_del(tl->loop, &tl->socks[i].io);
        close(tl->socks[i].io.fd);
    }
    if (tl->notify.fd >= 0) {
        dp_loop_del(tl->loop, &tl->notify);
        close(tl->notify.fd);
    }
    dp_timer_cancel(tl->loop, &tl->reload_timer);
    if (tl->ticket_key.data != NULL) {
        gnutls_memset(tl->ticket_key.data, 0, tl->ticket_key.size);
        gnutls_free(tl->ticket_key.data);
    }
    if (tl->prio != NULL)
        gnutls_priority_deinit(tl->prio);
    dp_tls_material_unref(tl->mat);
    free(tl->socks);
    free(tl->scratch);
    free(tl);
}

int dp_tls_listener_port(const struct dp_tls_listeners *tl, size_t index)
{
    if (tl == NULL || index >= tl->n_socks)
        return DOTPROXY_EINVAL;
    return tl->socks[index].port;
}
