/* SPDX-License-Identifier: MIT */
/* RPZ feeds by zone transfer: one thread pulls every configured zone over
 * TCP (AXFR, then IXFR from the serial held), keeps each zone's record set
 * in memory so that an IXFR applies as a difference, and writes the result
 * to the state directory atomically (write, fsync, rename, fsync of the
 * directory). The blocking engine loads that file like any --rpz file: the
 * rebuild and the swap are its own, off the query path.
 *
 * Cost of an IXFR: the difference is applied to the record set in O(size
 * of the difference); the engine is then given the records of every owner
 * changed since the last whole copy (found by dp_zone_set_owner), from
 * which it compiles a small layer over the zone it holds (O(changed
 * owners), never O(zone)). The state file is rewritten later (at most
 * every STATE_WRITE_MIN_S, and at the stop), so enforcement never waits on
 * writing a large zone. Once the changed owners pass LAYER_FRACTION of the
 * zone (LAYER_MIN at least), the next change is a whole copy, which the
 * engine re-parses on its own thread: the layer, and its cost per change,
 * stay bounded.
 *
 * Zone transfer over TLS (XoT, RFC 9103): a primary given with a TLS name
 * ("ADDR[@PORT]/NAME#ZONE", port 853 by default) is reached over TLS with
 * the upstreams' trust (--ca-file or the system store, their priority
 * string, their client certificate if one is set), ALPN "dot" (RFC 9103
 * 7.1), and the strict check of its certificate against NAME (trust.c).
 *
 * Timers (RFC 1035 3.3.13): after a good transfer the next one is due after
 * the SOA refresh, after a failure after the SOA retry (10 s before the
 * first copy), clamped to [1 s, 1 day]; a NOTIFY from the primary makes it
 * due at once. */
#include "feed.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>

#include "bytes.h"
#include "config.h"
#include "dotproxy/config.h"
#include "dotproxy/error.h"
#include "siphash.h"
#include "trust.h"
#include "tsig.h"
#include "xfr.h"

#define CONNECT_TIMEOUT_MS   5000
#define READ_TIMEOUT_MS      10000
#define FIRST_RETRY_S        10u
#define TIMER_MIN_S          1u
#define TIMER_MAX_S          86400u
#define STATE_WRITE_DELAY_MS 1000  /* after a change: a burst of IXFRs is one write */
#define STATE_WRITE_MIN_S    30    /* between two rewrites of one state file */
#define LAYER_MIN            1024u /* changed owners a layer may always hold */
#define LAYER_FRACTION       64u   /* ... and up to 1/64 of the zone's records */

static char *dup_or_null(const char *s, int *rc)
{
    if (s == NULL)
        return NULL;
    char *d = strdup(s);
    if (d == NULL)
        *rc = DOTPROXY_ENOMEM;
    return d;
}

int dp_feed_config_copy(struct dp_feed_config *dst, const struct dp_feed_config *src)
{
    int rc = 0;
    memset(dst, 0, sizeof *dst);
    for (size_t i = 0; i < src->n && rc == 0; i++)
        if ((dst->primary[dst->n] = dup_or_null(src->primary[i], &rc)) != NULL)
            dst->n++;
    if (rc == 0)
        dst->state_dir = dup_or_null(src->state_dir, &rc);
    if (rc == 0)
        dst->tsig = dup_or_null(src->tsig, &rc);
    if (rc != 0)
        dp_feed_config_clear(dst);
    return rc;
}

void dp_feed_config_clear(struct dp_feed_config *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->primary[i]);
    free(c->state_dir);
    if (c->tsig != NULL) {
        memset(c->tsig, 0, strlen(c->tsig)); /* a secret */
        free(c->tsig);
    }
    memset(c, 0, sizeof *c);
}

/* "ADDR[@PORT][/TLSNAME]#ZONE": the address and port in ep, the zone in
 * ep->name, the TLS name (empty: plain TCP) in tls_name. */
static int parse_spec(const char *spec, dotproxy_endpoint *ep, char tls_name[256])
{
    tls_name[0] = '\0';
    const char *hash = strchr(spec, '#');
    const char *slash = strchr(spec, '/');
    if (slash == NULL || (hash != NULL && slash > hash))
        return dotproxy_endpoint_parse(ep, spec, 53, 1);
    /* The TLS name checked as an upstream's is, then the rest without it. */
    size_t nl = (size_t)((hash != NULL ? hash : spec + strlen(spec)) - slash - 1);
    char probe[300];
    if (nl == 0 || nl > 253)
        return DOTPROXY_ENAME;
    snprintf(probe, sizeof probe, "127.0.0.1#%.*s", (int)nl, slash + 1);
    dotproxy_endpoint t;
    int rc = dotproxy_endpoint_parse(&t, probe, 853, 1);
    if (rc != 0)
        return rc;
    memcpy(tls_name, t.name, strlen(t.name) + 1);
    char rest[600];
    int n =
        snprintf(rest, sizeof rest, "%.*s%s", (int)(slash - spec), spec, hash != NULL ? hash : "");
    if (n < 0 || (size_t)n >= sizeof rest)
        return DOTPROXY_EINVAL;
    return dotproxy_endpoint_parse(ep, rest, 853, 1);
}

int dp_feed_check_spec(const char *spec)
{
    dotproxy_endpoint ep;
    char tls_name[256];
    int rc = parse_spec(spec, &ep, tls_name);
    if (rc == 0 && ep.name[0] == '\0')
        rc = DOTPROXY_ENAME; /* the zone is required */
    return rc;
}

int dp_feed_state_path(const struct dp_feed_config *c, size_t index, char *out, size_t cap)
{
    dotproxy_endpoint ep;
    char tls_name[256];
    if (index >= c->n || parse_spec(c->primary[index], &ep, tls_name) != 0)
        return DOTPROXY_EINVAL;
    /* One file per zone: a zone name is letters, digits, '-', '.', '_'
     * once checked; lower case so that "RPZ.example" and "rpz.example"
     * are one file. */
    char zone[256];
    size_t i = 0;
    for (; ep.name[i] != '\0' && i < sizeof zone - 1; i++) {
        char ch = ep.name[i];
        zone[i] = ch >= 'A' && ch <= 'Z' ? (char)(ch + 32) : ch;
    }
    zone[i] = '\0';
    if (i > 0 && zone[i - 1] == '.')
        zone[i - 1] = '\0';
    int n = snprintf(out, cap, "%s/rpz-%s.zone",
                     c->state_dir != NULL ? c->state_dir : DOTPROXY_STATE_DIR_DEFAULT, zone);
    return n < 0 || (size_t)n >= cap ? DOTPROXY_ENOSPC : 0;
}

/* ---- the feeds ---- */

struct feed {
    char *source;
    char zone_text[260];
    uint8_t zone[256]; /* wire, lower case */
    struct sockaddr_storage addr;
    socklen_t addrlen;
    char tls_name[256]; /* "": plain TCP */
    char path[4096];
    struct dp_zone_set set;     /* feed thread only */
    struct dp_zone_set touched; /* feed thread only: owners changed since the last copy */
    int dirty;                  /* feed thread only: the state file is behind set */
    int64_t write_due_ms, last_write_ms;
    /* under the mutex: */
    unsigned gen; /* whole copies written (dp_feeds_generation) */
    int resync;
    int64_t due_ms; /* monotonic */
    int64_t next_s; /* wall clock, for the API */
    int need_axfr;
    int has_serial;
    uint32_t serial;
    uint64_t entries, axfr, ixfr, uptodate, failures, notifies, bytes, last_axfr_bytes,
        last_ixfr_bytes, tsig_failures;
    int64_t last_ok_s, last_fail_s;
    char last_error[200];
};

struct dp_feeds {
    struct dp_logger log;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    int thread_on;
    atomic_int stopping;
    atomic_uint_fast64_t notify_refused;
    void (*changed)(void *user);
    void *user;
    /* under the mutex: */
    void (*delta)(void *user, struct dp_feed_delta *d);
    void *delta_user;
    uint64_t idkey[2];
    struct dp_tsig_key key;
    int has_key;
    gnutls_certificate_credentials_t cred; /* XoT primaries: the upstreams' trust */
    gnutls_priority_t prio;
    size_t n;
    struct feed feed[];
};

static int64_t mono_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static uint32_t clamp_s(uint32_t s)
{
    return s < TIMER_MIN_S ? TIMER_MIN_S : s > TIMER_MAX_S ? TIMER_MAX_S : s;
}

/* Under the mutex. */
static void schedule(struct feed *fd, uint32_t s)
{
    fd->due_ms = mono_ms() + (int64_t)s * 1000;
    fd->next_s = (int64_t)time(NULL) + s;
}

/* Write the zone to fd->path atomically: a reader (the engine, a restart)
 * sees the old copy or the new one, never a part. */
static int write_state(struct dp_feeds *F, struct feed *fd)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", fd->path);
    int rc = DOTPROXY_ESYS;
    int dfd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (dfd < 0 && errno == ENOENT) {
        /* The directory is made once, the files inside it private to us. */
        char dir[4096];
        snprintf(dir, sizeof dir, "%s", fd->path);
        char *slash = strrchr(dir, '/');
        if (slash != NULL && slash != dir) {
            *slash = '\0';
            if (mkdir(dir, 0750) == 0 || errno == EEXIST)
                dfd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
        }
    }
    FILE *f = dfd >= 0 ? fdopen(dfd, "w") : NULL;
    if (f == NULL) {
        if (dfd >= 0)
            close(dfd);
        dp_log(&F->log, DOTPROXY_LOG_ERR, "rpz feed %s: cannot write %s: %s", fd->zone_text, tmp,
               strerror(errno));
        return rc;
    }
    int w = dp_zone_set_write(&fd->set, f);
    int e = w == 0 && fflush(f) == 0 && fsync(fileno(f)) == 0 ? 0 : errno;
    if (fclose(f) != 0 && e == 0)
        e = errno;
    if (w == 0 && e == 0 && rename(tmp, fd->path) == 0) {
        /* The rename lasts only once the directory is on disk too. */
        char dir[4096];
        snprintf(dir, sizeof dir, "%s", fd->path);
        char *slash = strrchr(dir, '/');
        if (slash != NULL)
            *(slash == dir ? slash + 1 : slash) = '\0';
        int d = open(slash != NULL ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (d >= 0) {
            (void)fsync(d); /* some file systems refuse it; the rename stands */
            close(d);
        }
        return 0;
    }
    dp_log(&F->log, DOTPROXY_LOG_ERR, "rpz feed %s: cannot write %s: %s", fd->zone_text, fd->path,
           strerror(e != 0 ? e : errno));
    (void)unlink(tmp);
    return rc;
}

static int wait_fd(struct dp_feeds *F, int s, short ev, int64_t deadline)
{
    for (;;) {
        if (atomic_load(&F->stopping))
            return DOTPROXY_ESTATE;
        int64_t left = deadline - mono_ms();
        if (left <= 0)
            return DOTPROXY_ETIMEDOUT;
        struct pollfd p = {.fd = s, .events = ev};
        /* Slices of 200 ms: a stop is never kept waiting on a slow primary. */
        int r = poll(&p, 1, left < 200 ? (int)left : 200);
        if (r > 0)
            return 0;
        if (r < 0 && errno != EINTR)
            return DOTPROXY_ESYS;
    }
}

/* What has been read from the primary and not parsed yet. Parsing a
 * message costs far more than reading it; a primary gives up on a client
 * that leaves its socket full (Knot: tcp-io-timeout, 500 ms), so the socket
 * is drained into this buffer between messages, up to RX_MAX octets. */
#define RX_MAX (64u << 20)
struct rx {
    uint8_t *p;
    size_t off, len, cap;
};

/* Read whatever is there now, without waiting. 0, or an error with errno. */
static int drain(int s, gnutls_session_t tls, struct rx *b)
{
    for (;;) {
        if (b->off > 0 && b->off == b->len)
            b->off = b->len = 0;
        if (b->len == b->cap) {
            if (b->off > 0) {
                memmove(b->p, b->p + b->off, b->len - b->off);
                b->len -= b->off;
                b->off = 0;
                continue;
            }
            if (b->cap >= RX_MAX)
                return 0; /* enough ahead: parse some first */
            size_t nc = b->cap == 0 ? 256u << 10 : b->cap * 2;
            uint8_t *np = realloc(b->p, nc);
            if (np == NULL) {
                errno = ENOMEM;
                return DOTPROXY_ENOMEM;
            }
            b->p = np;
            b->cap = nc;
        }
        ssize_t r;
        if (tls != NULL) {
            r = gnutls_record_recv(tls, b->p + b->len, b->cap - b->len);
            if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED) {
                if (r == GNUTLS_E_AGAIN)
                    return 0;
                continue;
            }
            if (r < 0 && r != GNUTLS_E_PREMATURE_TERMINATION) {
                errno = EPROTO;
                return DOTPROXY_ETLS;
            }
            if (r < 0)
                r = 0;
        } else {
            r = recv(s, b->p + b->len, b->cap - b->len, MSG_DONTWAIT);
        }
        if (r > 0) {
            b->len += (size_t)r;
            continue;
        }
        if (r == 0) {
            errno = ECONNRESET;
            return DOTPROXY_ESYS; /* the caller decides if that was early */
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return 0;
        if (errno != EINTR)
            return DOTPROXY_ESYS;
    }
}

/* n octets at b->p + b->off, waiting for them (READ_TIMEOUT_MS of
 * silence at most). */
static int need(struct dp_feeds *F, int s, gnutls_session_t tls, struct rx *b, size_t n)
{
    while (b->len - b->off < n) {
        int rc = drain(s, tls, b);
        if (b->len - b->off >= n)
            return 0;
        if (rc != 0)
            return rc;
        if ((rc = wait_fd(F, s, POLLIN, mono_ms() + READ_TIMEOUT_MS)) != 0)
            return rc;
    }
    return 0;
}

/* XoT: TLS on the connected socket s, the handshake done and the primary's
 * certificate checked for fd->tls_name. 0, or an error with why. */
static int tls_start(struct dp_feeds *F, struct feed *fd, int s, gnutls_session_t *out, char *why,
                     size_t whylen)
{
    static const gnutls_datum_t alpn_dot = {(unsigned char *)"dot", 3}; /* RFC 9103 7.1 */
    gnutls_session_t tls;
    if (F->cred == NULL || gnutls_init(&tls, GNUTLS_CLIENT | GNUTLS_NONBLOCK) < 0) {
        snprintf(why, whylen, "TLS: no session");
        return DOTPROXY_ETLS;
    }
    *out = tls;
    struct in6_addr lit;
    int is_ip =
        inet_pton(AF_INET, fd->tls_name, &lit) == 1 || inet_pton(AF_INET6, fd->tls_name, &lit) == 1;
    int rc = gnutls_priority_set(tls, F->prio);
    if (rc >= 0)
        rc = gnutls_credentials_set(tls, GNUTLS_CRD_CERTIFICATE, F->cred);
    if (rc >= 0 && !is_ip) /* SNI carries host names only (RFC 6066 3) */
        rc = gnutls_server_name_set(tls, GNUTLS_NAME_DNS, fd->tls_name, strlen(fd->tls_name));
    if (rc >= 0)
        rc = gnutls_alpn_set_protocols(tls, &alpn_dot, 1, 0);
    if (rc < 0) {
        snprintf(why, whylen, "TLS: %s", gnutls_strerror(rc));
        return DOTPROXY_ETLS;
    }
    gnutls_session_set_verify_cert(tls, fd->tls_name, 0);
    gnutls_transport_set_int(tls, s);
    int64_t deadline = mono_ms() + CONNECT_TIMEOUT_MS;
    while ((rc = gnutls_handshake(tls)) < 0) {
        if (gnutls_error_is_fatal(rc)) {
            if (rc == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR) {
                gnutls_datum_t txt = {0};
                unsigned st = gnutls_session_get_verify_cert_status(tls);
                if (gnutls_certificate_verification_status_print(st, GNUTLS_CRT_X509, &txt, 0) ==
                    0) {
                    snprintf(why, whylen, "TLS: certificate of %s: %s", fd->tls_name, txt.data);
                    gnutls_free(txt.data);
                    return DOTPROXY_ETLS;
                }
            }
            snprintf(why, whylen, "TLS handshake: %s", gnutls_strerror(rc));
            return DOTPROXY_ETLS;
        }
        int w = wait_fd(F, s, gnutls_record_get_direction(tls) ? POLLOUT : POLLIN, deadline);
        if (w != 0) {
            snprintf(why, whylen, "TLS handshake: %s",
                     w == DOTPROXY_ETIMEDOUT ? "timed out" : "stopped");
            return w;
        }
    }
    /* The chain and the name held in the handshake; the house rules for
     * every TLS peer (a subjectAltName, key sizes) are checked here. */
    char reason[200];
    if (dp_trust_check_peer(tls, F->cred, fd->tls_name, NULL, 0, reason, sizeof reason, NULL) !=
        0) {
        snprintf(why, whylen, "TLS: %s", reason);
        return DOTPROXY_ETLS;
    }
    gnutls_datum_t sel;
    if (gnutls_alpn_get_selected_protocol(tls, &sel) == 0 &&
        (sel.size != 3 || memcmp(sel.data, "dot", 3) != 0)) {
        snprintf(why, whylen, "TLS: the primary chose ALPN %.*s, not dot", (int)sel.size, sel.data);
        return DOTPROXY_ETLS;
    }
    return 0;
}

/* One transfer of fd over TCP (or TLS). 0 with x complete, or an error
 * with why. */
static int transfer(struct dp_feeds *F, struct feed *fd, struct dp_xfr *x, uint64_t *bytes,
                    int *tsig_bad, char *why, size_t whylen)
{
    int s = socket(fd->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s < 0) {
        snprintf(why, whylen, "socket: %s", strerror(errno));
        return DOTPROXY_ESYS;
    }
    uint8_t q[2 + 1024], qmac[64];
    int ql = dp_xfr_query(q + 2, sizeof q - 2, x->id, fd->zone, x->ixfr, x->have_serial);
    if (ql > 0 && F->has_key)
        ql = dp_tsig_sign(&F->key, q + 2, (size_t)ql, sizeof q - 2, (int64_t)time(NULL), qmac);
    int rc = ql < 0 ? ql : 0;
    struct dp_tsig_verify tv;
    if (F->has_key)
        dp_tsig_verify_begin(&tv, &F->key, qmac);
    if (rc == 0 && connect(s, (struct sockaddr *)&fd->addr, fd->addrlen) != 0 &&
        errno != EINPROGRESS) {
        snprintf(why, whylen, "connect: %s", strerror(errno));
        rc = DOTPROXY_ESYS;
    }
    if (rc == 0 && (rc = wait_fd(F, s, POLLOUT, mono_ms() + CONNECT_TIMEOUT_MS)) == 0) {
        int err = 0;
        socklen_t el = sizeof err;
        if (getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &el) != 0 || err != 0) {
            snprintf(why, whylen, "connect: %s", strerror(err != 0 ? err : errno));
            rc = DOTPROXY_ESYS;
        }
    } else if (rc != 0 && why[0] == '\0') {
        snprintf(why, whylen, "connect: %s", rc == DOTPROXY_ETIMEDOUT ? "timed out" : "stopped");
    }
    gnutls_session_t tls = NULL;
    if (rc == 0 && fd->tls_name[0] != '\0')
        rc = tls_start(F, fd, s, &tls, why, whylen);
    if (rc == 0) {
        dp_put16(q, (unsigned)ql);
        /* A query of < 600 octets goes out whole on a fresh connection
         * (over TLS: one record, the handshake having emptied the way). */
        ssize_t w;
        do
            w = tls != NULL ? gnutls_record_send(tls, q, (size_t)ql + 2)
                            : send(s, q, (size_t)ql + 2, MSG_NOSIGNAL);
        while (tls != NULL && (w == GNUTLS_E_AGAIN || w == GNUTLS_E_INTERRUPTED) &&
               wait_fd(F, s, POLLOUT, mono_ms() + READ_TIMEOUT_MS) == 0);
        if (w != ql + 2) {
            snprintf(why, whylen, "send: %s",
                     tls != NULL ? gnutls_strerror((int)w) : strerror(errno));
            rc = DOTPROXY_ESYS;
        }
    }
    struct rx b = {0};
    while (rc == 0) {
        size_t mlen = 0;
        if ((rc = need(F, s, tls, &b, 2)) != 0 ||
            (rc = need(F, s, tls, &b, 2 + (mlen = dp_get16(b.p + b.off)))) != 0) {
            snprintf(why, whylen, "read: %s",
                     rc == DOTPROXY_ETIMEDOUT ? "timed out"
                     : rc == DOTPROXY_ESTATE  ? "stopped"
                     : rc == DOTPROXY_ETLS    ? "TLS error"
                                              : strerror(errno));
            break;
        }
        const uint8_t *msg = b.p + b.off + 2;
        b.off += 2 + mlen;
        *bytes += 2u + mlen;
        if (F->has_key &&
            dp_tsig_verify_msg(&tv, msg, mlen, (int64_t)time(NULL), why, whylen) != 0) {
            *tsig_bad = 1;
            rc = DOTPROXY_EMALFORMED;
            break;
        }
        int r = dp_xfr_msg(x, msg, mlen);
        if (r < 0) {
            snprintf(why, whylen, "%s", x->err);
            rc = r;
        } else if (r == 0) {
            /* Keep the primary's side moving while we parse. */
            (void)drain(s, tls, &b);
        } else if (r == 1) {
            if (F->has_key && !dp_tsig_verify_done(&tv)) {
                snprintf(why, whylen, "TSIG: the last message is not signed");
                *tsig_bad = 1;
                rc = DOTPROXY_EMALFORMED;
            }
            break;
        }
    }
    if (F->has_key)
        dp_tsig_verify_end(&tv);
    free(b.p);
    if (tls != NULL) {
        if (rc == 0)
            (void)gnutls_bye(tls, GNUTLS_SHUT_WR); /* non-blocking: a courtesy */
        gnutls_deinit(tls);
    }
    close(s);
    return rc;
}

/* A whole copy: the state file, a new generation, nothing changed since. */
static int whole_copy(struct dp_feeds *F, struct feed *fd)
{
    int rc = write_state(F, fd);
    if (rc != 0)
        return rc;
    pthread_mutex_lock(&F->mu);
    fd->gen++;
    pthread_mutex_unlock(&F->mu);
    dp_zone_set_clear(&fd->touched);
    fd->dirty = 0;
    fd->last_write_ms = mono_ms();
    return 0;
}

/* Note the owners an IXFR changes (before it is applied: applying takes
 * its added records). */
static int note_owners(struct feed *fd, const struct dp_xfr *x)
{
    for (size_t i = 0; i < x->nops; i++) {
        const struct dp_zrec *r = x->ops[i].rec;
        const char *sp = memchr(r->key, ' ', r->len);
        size_t ol = sp != NULL ? (size_t)(sp - r->key) : r->len;
        int rc = dp_zone_set_add(&fd->touched, r->key, ol, 0);
        if (rc != 0)
            return rc;
    }
    return 0;
}

struct buf {
    char *p;
    size_t len, cap;
    int err;
};

static void buf_add(struct buf *b, const char *s, size_t n)
{
    if (b->err)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t nc = b->cap == 0 ? 4096 : b->cap;
        while (nc < b->len + n + 1)
            nc *= 2;
        char *np = realloc(b->p, nc);
        if (np == NULL) {
            b->err = 1;
            return;
        }
        b->p = np;
        b->cap = nc;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

/* One record as a state-file line: "owner TTL IN TYPE rdata". */
static void owner_rec(const struct dp_zrec *r, void *user)
{
    struct buf *b = user;
    const char *sp = strchr(r->key, ' ');
    if (sp == NULL)
        return;
    char ttl[24];
    int tl = snprintf(ttl, sizeof ttl, " %lu IN", (unsigned long)r->ttl);
    buf_add(b, r->key, (size_t)(sp - r->key));
    buf_add(b, ttl, (size_t)tl);
    buf_add(b, sp, r->len - (size_t)(sp - r->key));
    buf_add(b, "\n", 1);
}

/* The records of every owner changed since the last whole copy. */
static struct dp_feed_delta *make_delta(struct dp_feeds *F, struct feed *fd)
{
    struct dp_feed_delta *d = calloc(1, sizeof *d);
    if (d == NULL)
        return NULL;
    struct buf text = {0}, owners = {0};
    for (size_t i = 0; i < fd->touched.cap; i++) {
        const struct dp_zrec *o = fd->touched.slot[i];
        if (o == NULL)
            continue;
        (void)dp_zone_set_owner(&fd->set, o->key, o->len, owner_rec, &text);
        buf_add(&owners, o->key, o->len);
        buf_add(&owners, "\n", 1);
        d->nowners++;
    }
    if (text.err || owners.err) {
        free(text.p);
        free(owners.p);
        free(d);
        return NULL;
    }
    d->index = (size_t)(fd - F->feed);
    pthread_mutex_lock(&F->mu);
    d->gen = fd->gen;
    pthread_mutex_unlock(&F->mu);
    d->serial = fd->set.serial;
    d->text = text.p;
    d->len = text.len;
    d->owners = owners.p;
    d->owners_len = owners.len;
    return d;
}

void dp_feed_delta_free(struct dp_feed_delta *d)
{
    if (d == NULL)
        return;
    free(d->text);
    free(d->owners);
    free(d);
}

static void pull(struct dp_feeds *F, struct feed *fd)
{
    pthread_mutex_lock(&F->mu);
    int ixfr = fd->set.soa != NULL && !fd->need_axfr;
    pthread_mutex_unlock(&F->mu);
    struct dp_xfr x;
    uint64_t idr = dp_siphash13_words(F->idkey, (uint64_t)mono_ms(), (uint64_t)(uintptr_t)fd);
    dp_xfr_begin(&x, (uint16_t)idr, fd->zone, ixfr, fd->set.serial);
    uint64_t bytes = 0;
    char why[240] = "";
    int tsig_bad = 0;
    int rc = transfer(F, fd, &x, &bytes, &tsig_bad, why, sizeof why);
    uint32_t old_serial = fd->set.serial;
    int changed = 0;
    struct dp_feed_delta *delta = NULL;
    pthread_mutex_lock(&F->mu);
    void (*delta_hook)(void *, struct dp_feed_delta *) = F->delta;
    void *delta_user = F->delta_user;
    pthread_mutex_unlock(&F->mu);
    /* An IXFR goes to the engine as a layer while the owners changed since
     * the last whole copy stay few; else (and for an AXFR) a whole copy. */
    int layered =
        rc == 0 && x.kind == DP_XFR_INCR && delta_hook != NULL && note_owners(fd, &x) == 0 &&
        fd->touched.n <=
            (fd->set.n / LAYER_FRACTION > LAYER_MIN ? fd->set.n / LAYER_FRACTION : LAYER_MIN);
    if (rc == 0 && x.kind != DP_XFR_UPTODATE) {
        rc = dp_xfr_apply(&x, &fd->set);
        if (rc != 0) {
            snprintf(why, sizeof why, "%s", x.err);
            /* The set no longer matches any serial: start again from a
             * whole zone (the state file and the rules in force are the
             * last good ones still). */
            dp_zone_set_clear(&fd->set);
        } else if (layered && (delta = make_delta(F, fd)) != NULL) {
            /* The state file follows later, off the path to enforcement. */
            if (!fd->dirty) {
                int64_t now = mono_ms(), due = now + STATE_WRITE_DELAY_MS;
                int64_t spaced = fd->last_write_ms + (int64_t)STATE_WRITE_MIN_S * 1000;
                fd->write_due_ms = due > spaced ? due : spaced;
            }
            fd->dirty = 1;
        } else {
            rc = whole_copy(F, fd);
            if (rc != 0)
                snprintf(why, sizeof why, "cannot write the state file");
            changed = rc == 0;
        }
    }
    pthread_mutex_lock(&F->mu);
    fd->bytes += bytes;
    if (rc == 0) {
        fd->need_axfr = 0;
        fd->last_ok_s = (int64_t)time(NULL);
        fd->has_serial = 1;
        fd->serial = fd->set.serial;
        fd->entries = fd->set.n + 1;
        if (x.kind == DP_XFR_FULL) {
            fd->axfr++;
            fd->last_axfr_bytes = bytes;
        } else if (x.kind == DP_XFR_INCR) {
            fd->ixfr++;
            fd->last_ixfr_bytes = bytes;
        } else {
            fd->uptodate++;
        }
        schedule(fd, clamp_s(fd->set.refresh));
    } else if (!atomic_load(&F->stopping)) {
        fd->failures++;
        fd->tsig_failures += (uint64_t)tsig_bad;
        fd->last_fail_s = (int64_t)time(NULL);
        snprintf(fd->last_error, sizeof fd->last_error, "%s", why);
        if (fd->set.soa == NULL)
            fd->need_axfr = 1;
        schedule(fd, fd->set.soa != NULL ? clamp_s(fd->set.retry) : FIRST_RETRY_S);
    }
    uint32_t next = (uint32_t)(fd->next_s - (int64_t)time(NULL));
    pthread_mutex_unlock(&F->mu);
    if (rc == 0 && x.kind != DP_XFR_UPTODATE)
        dp_log(&F->log, DOTPROXY_LOG_INFO,
               "rpz feed %s: %s serial %lu -> %lu, %zu records, %llu octets%s", fd->zone_text,
               x.kind == DP_XFR_FULL ? "AXFR" : "IXFR", (unsigned long)old_serial,
               (unsigned long)fd->set.serial, fd->set.n + 1, (unsigned long long)bytes,
               delta != NULL ? ", applied as a layer" : ", applied whole");
    else if (rc != 0 && !atomic_load(&F->stopping))
        dp_log(&F->log, DOTPROXY_LOG_ERR,
               "rpz feed %s: %s from %s failed: %s; the rules in force stay, retry in %u s",
               fd->zone_text, ixfr ? "IXFR" : "AXFR", fd->source, why, next);
    dp_xfr_end(&x);
    if (delta != NULL)
        delta_hook(delta_user, delta);
    if (changed && F->changed != NULL)
        F->changed(F->user);
}

/* Between transfers: whole copies the engine asked for, and state files
 * left behind by layered changes. Called with the mutex held; drops it
 * around the work. */
static void housekeeping(struct dp_feeds *F)
{
    for (size_t i = 0; i < F->n; i++) {
        struct feed *fd = &F->feed[i];
        int resync = fd->resync;
        fd->resync = 0;
        if (!resync && !(fd->dirty && fd->write_due_ms <= mono_ms()))
            continue;
        pthread_mutex_unlock(&F->mu);
        if (fd->set.soa != NULL) {
            if (resync) {
                if (whole_copy(F, fd) == 0 && F->changed != NULL)
                    F->changed(F->user);
            } else if (write_state(F, fd) == 0) {
                fd->dirty = 0;
                fd->last_write_ms = mono_ms();
            } else {
                fd->write_due_ms = mono_ms() + (int64_t)STATE_WRITE_MIN_S * 1000;
            }
        }
        pthread_mutex_lock(&F->mu);
    }
}

/* The copy left by the last run, so that IXFR can go on from it. */
static void load_state(struct dp_feeds *F, struct feed *fd)
{
    FILE *f = fopen(fd->path, "re");
    if (f == NULL)
        return;
    char *text = NULL;
    size_t len = 0, cap = 0;
    int ok = 1;
    for (;;) {
        if (len + 65536 > cap) {
            char *nt = realloc(text, cap = cap * 2 + 65536);
            if (nt == NULL) {
                ok = 0;
                break;
            }
            text = nt;
        }
        size_t r = fread(text + len, 1, cap - len, f);
        len += r;
        if (r == 0)
            break;
    }
    if (ferror(f))
        ok = 0;
    fclose(f);
    if (ok && dp_zone_set_read(&fd->set, text, len) == 0) {
        pthread_mutex_lock(&F->mu);
        fd->has_serial = 1;
        fd->serial = fd->set.serial;
        fd->entries = fd->set.n + 1;
        pthread_mutex_unlock(&F->mu);
        dp_log(&F->log, DOTPROXY_LOG_INFO, "rpz feed %s: serial %lu from %s", fd->zone_text,
               (unsigned long)fd->set.serial, fd->path);
    } else {
        dp_log(&F->log, DOTPROXY_LOG_WARN,
               "rpz feed %s: %s is not a copy this program wrote; transferring the whole zone",
               fd->zone_text, fd->path);
    }
    free(text);
}

static void *feed_thread(void *arg)
{
    struct dp_feeds *F = arg;
    (void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 10);
    for (size_t i = 0; i < F->n; i++)
        load_state(F, &F->feed[i]);
    pthread_mutex_lock(&F->mu);
    while (!atomic_load(&F->stopping)) {
        struct feed *next = NULL;
        for (size_t i = 0; i < F->n; i++)
            if (next == NULL || F->feed[i].due_ms < next->due_ms)
                next = &F->feed[i];
        int64_t now = mono_ms();
        if (next->due_ms <= now) {
            pthread_mutex_unlock(&F->mu);
            pull(F, next);
            pthread_mutex_lock(&F->mu);
            continue;
        }
        housekeeping(F);
        /* It let go of the mutex: a stop or a NOTIFY may have come. */
        if (atomic_load(&F->stopping))
            break;
        int64_t wake = next->due_ms;
        for (size_t i = 0; i < F->n; i++)
            if (F->feed[i].due_ms < wake)
                wake = F->feed[i].due_ms;
        for (size_t i = 0; i < F->n; i++) {
            if (F->feed[i].dirty && F->feed[i].write_due_ms < wake)
                wake = F->feed[i].write_due_ms;
            if (F->feed[i].resync)
                wake = 0;
        }
        now = mono_ms();
        if (wake <= now)
            continue;
        struct timespec due;
        clock_gettime(CLOCK_MONOTONIC, &due);
        int64_t wait = wake - now;
        due.tv_sec += wait / 1000;
        due.tv_nsec += (wait % 1000) * 1000000;
        if (due.tv_nsec >= 1000000000) {
            due.tv_sec++;
            due.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&F->cv, &F->mu, &due);
    }
    pthread_mutex_unlock(&F->mu);
    /* A restart goes on from the serial in force. */
    for (size_t i = 0; i < F->n; i++)
        if (F->feed[i].dirty && F->feed[i].set.soa != NULL)
            (void)write_state(F, &F->feed[i]);
    return NULL;
}

int dp_feeds_new(struct dp_feeds **out, const struct dp_feed_config *c, const struct dp_logger *log,
                 void (*changed)(void *user), void *user)
{
    return dp_feeds_new_tls(out, c, log, changed, user, NULL);
}

int dp_feeds_new_tls(struct dp_feeds **out, const struct dp_feed_config *c,
                     const struct dp_logger *log, void (*changed)(void *user), void *user,
                     const struct dotproxy_config *trust)
{
    *out = NULL;
    if (c->n == 0)
        return 0;
    struct dp_feeds *F = calloc(1, sizeof *F + c->n * sizeof F->feed[0]);
    if (F == NULL)
        return DOTPROXY_ENOMEM;
    F->log = *log;
    F->changed = changed;
    F->user = user;
    atomic_init(&F->stopping, 0);
    atomic_init(&F->notify_refused, 0);
    dp_siphash_key(F->idkey);
    int rc = 0;
    char why[200];
    if (c->tsig != NULL) {
        rc = dp_tsig_key_parse(&F->key, c->tsig, why, sizeof why);
        F->has_key = rc == 0;
    }
    for (size_t i = 0; i < c->n && rc == 0; i++) {
        struct feed *fd = &F->feed[i];
        dotproxy_endpoint ep;
        dp_zone_set_init(&fd->set);
        dp_zone_set_init(&fd->touched);
        F->n++;
        rc = parse_spec(c->primary[i], &ep, fd->tls_name);
        if (rc == 0 && ep.name[0] == '\0')
            rc = DOTPROXY_ENAME;
        if (rc == 0 && fd->tls_name[0] != '\0' && F->cred == NULL) {
            rc = trust != NULL ? dp_trust_load(log, trust, &F->cred, &F->prio) : DOTPROXY_ETLS;
            if (rc != 0)
                F->cred = NULL;
        }
        if (rc == 0 && dp_xfr_name_wire(ep.name, fd->zone) < 0)
            rc = DOTPROXY_ENAME;
        if (rc == 0 && dp_xfr_name_text(fd->zone, fd->zone_text, sizeof fd->zone_text) != 0)
            rc = DOTPROXY_ENAME;
        if (rc == 0)
            rc = dp_feed_state_path(c, i, fd->path, sizeof fd->path);
        if (rc == 0 && (fd->source = strdup(c->primary[i])) == NULL)
            rc = DOTPROXY_ENOMEM;
        fd->addr = ep.addr;
        fd->addrlen = ep.addrlen;
        fd->due_ms = 0; /* at once */
        fd->next_s = (int64_t)time(NULL);
    }
    pthread_condattr_t ca;
    if (rc == 0 && pthread_mutex_init(&F->mu, NULL) != 0)
        rc = DOTPROXY_ENOMEM;
    if (rc == 0) {
        if (pthread_condattr_init(&ca) != 0 ||
            pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) != 0 ||
            pthread_cond_init(&F->cv, &ca) != 0) {
            pthread_mutex_destroy(&F->mu);
            rc = DOTPROXY_ENOMEM;
        }
        pthread_condattr_destroy(&ca);
    }
    if (rc != 0) {
        for (size_t i = 0; i < F->n; i++)
            free(F->feed[i].source);
        if (F->cred != NULL) {
            gnutls_certificate_free_credentials(F->cred);
            gnutls_priority_deinit(F->prio);
        }
        free(F);
        return rc;
    }
    int e = pthread_create(&F->thread, NULL, feed_thread, F);
    if (e != 0) {
        F->thread_on = 0;
        dp_feeds_free(F);
        errno = e;
        return DOTPROXY_ESYS;
    }
    F->thread_on = 1;
    *out = F;
    return 0;
}

void dp_feeds_free(struct dp_feeds *F)
{
    if (F == NULL)
        return;
    if (F->thread_on) {
        pthread_mutex_lock(&F->mu);
        atomic_store(&F->stopping, 1);
        pthread_cond_signal(&F->cv);
        pthread_mutex_unlock(&F->mu);
        pthread_join(F->thread, NULL);
    }
    for (size_t i = 0; i < F->n; i++) {
        free(F->feed[i].source);
        dp_zone_set_clear(&F->feed[i].set);
        dp_zone_set_clear(&F->feed[i].touched);
    }
    if (F->cred != NULL) {
        gnutls_certificate_free_credentials(F->cred);
        gnutls_priority_deinit(F->prio);
    }
    pthread_cond_destroy(&F->cv);
    pthread_mutex_destroy(&F->mu);
    free(F);
}

static int same_host(const struct sockaddr *a, const struct sockaddr_storage *b)
{
    /* The sender's port is its own choice (RFC 1996 3.10 lets a NOTIFY come
     * from any port): compare addresses only; an IPv4-mapped sender counts
     * as IPv4. */
    const void *pa;
    int fa;
    const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)(const void *)a;
    if (a->sa_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&a6->sin6_addr)) {
        fa = AF_INET;
        pa = &a6->sin6_addr.s6_addr[12];
    } else if (a->sa_family == AF_INET) {
        fa = AF_INET;
        pa = &((const struct sockaddr_in *)(const void *)a)->sin_addr;
    } else {
        fa = AF_INET6;
        pa = &a6->sin6_addr;
    }
    if (fa != b->ss_family)
        return 0;
    if (fa == AF_INET)
        return memcmp(pa, &((const struct sockaddr_in *)(const void *)b)->sin_addr, 4) == 0;
    return memcmp(pa, &((const struct sockaddr_in6 *)(const void *)b)->sin6_addr, 16) == 0;
}

int dp_feeds_notify(struct dp_feeds *F, const uint8_t *msg, size_t len, const struct sockaddr *peer)
{
    uint8_t name[256];
    size_t off = 12, n = 0;
    if (len < 12 || dp_get16(msg + 4) != 1)
        return 1; /* FORMERR */
    /* The question name, uncompressed (the first name in a message). */
    while (off < len && msg[off] != 0 && n < 255) {
        size_t l = msg[off];
        if (l > 63 || off + 1 + l > len || n + 1 + l > 255)
            return 1;
        name[n++] = (uint8_t)l;
        for (size_t i = 0; i < l; i++) {
            uint8_t ch = msg[off + 1 + i];
            name[n++] = ch >= 'A' && ch <= 'Z' ? (uint8_t)(ch + 32) : ch;
        }
        off += 1 + l;
    }
    if (off >= len || msg[off] != 0)
        return 1;
    name[n++] = 0;
    for (size_t i = 0; i < F->n; i++) {
        struct feed *fd = &F->feed[i];
        if (memcmp(fd->zone, name, n) != 0 || !same_host(peer, &fd->addr))
            continue;
        char why[200];
        if (F->has_key &&
            dp_tsig_verify_request(&F->key, msg, len, (int64_t)time(NULL), why, sizeof why) != 0) {
            pthread_mutex_lock(&F->mu);
            fd->tsig_failures++;
            pthread_mutex_unlock(&F->mu);
            atomic_fetch_add(&F->notify_refused, 1);
            dp_log(&F->log, DOTPROXY_LOG_ERR, "rpz feed %s: NOTIFY refused: %s", fd->zone_text,
                   why);
            return 9; /* NOTAUTH (RFC 8945 5.2) */
        }
        pthread_mutex_lock(&F->mu);
        fd->notifies++;
        fd->due_ms = 0;
        fd->next_s = (int64_t)time(NULL);
        pthread_cond_signal(&F->cv);
        pthread_mutex_unlock(&F->mu);
        return 0;
    }
    atomic_fetch_add(&F->notify_refused, 1);
    char who[INET6_ADDRSTRLEN] = "?";
    if (peer->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)peer)->sin_addr, who,
                  sizeof who);
    else if (peer->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)peer)->sin6_addr, who,
                  sizeof who);
    dp_log(&F->log, DOTPROXY_LOG_DEBUG,
           "NOTIFY from %s refused: not a configured primary of "
           "that zone",
           who);
    return 5; /* REFUSED */
}

void dp_feeds_refresh(struct dp_feeds *F)
{
    if (F == NULL)
        return;
    pthread_mutex_lock(&F->mu);
    for (size_t i = 0; i < F->n; i++)
        F->feed[i].due_ms = 0;
    pthread_cond_signal(&F->cv);
    pthread_mutex_unlock(&F->mu);
}

int dp_feeds_info(struct dp_feeds *F, dotproxy_feed_info_fn fn, void *user)
{
    if (F == NULL)
        return 0;
    pthread_mutex_lock(&F->mu);
    for (size_t i = 0; i < F->n; i++) {
        const struct feed *fd = &F->feed[i];
        dotproxy_feed_info info = {
            .source = fd->source,
            .zone = fd->zone_text,
            .path = fd->path,
            .serial = fd->serial,
            .has_serial = fd->has_serial,
            .entries = fd->entries,
            .last_ok_s = fd->last_ok_s,
            .last_fail_s = fd->last_fail_s,
            .last_error = fd->last_error,
            .next_s = fd->next_s,
            .axfr = fd->axfr,
            .ixfr = fd->ixfr,
            .uptodate = fd->uptodate,
            .failures = fd->failures,
            .notifies = fd->notifies,
            .bytes = fd->bytes,
            .last_axfr_bytes = fd->last_axfr_bytes,
            .last_ixfr_bytes = fd->last_ixfr_bytes,
            .tsig_failures = fd->tsig_failures,
        };
        fn(&info, user);
    }
    pthread_mutex_unlock(&F->mu);
    return 0;
}

void dp_feeds_set_delta_hook(struct dp_feeds *F, void (*delta)(void *user, struct dp_feed_delta *d),
                             void *user)
{
    if (F == NULL)
        return;
    pthread_mutex_lock(&F->mu);
    F->delta = delta;
    F->delta_user = user;
    pthread_mutex_unlock(&F->mu);
}

int dp_feeds_index_of(struct dp_feeds *F, const char *path)
{
    for (size_t i = 0; F != NULL && i < F->n; i++)
        if (strcmp(F->feed[i].path, path) == 0)
            return (int)i;
    return -1;
}

unsigned dp_feeds_generation(struct dp_feeds *F, size_t index)
{
    if (F == NULL || index >= F->n)
        return 0;
    pthread_mutex_lock(&F->mu);
    unsigned g = F->feed[index].gen;
    pthread_mutex_unlock(&F->mu);
    return g;
}

void dp_feeds_resync(struct dp_feeds *F, size_t index)
{
    if (F == NULL || index >= F->n)
        return;
    pthread_mutex_lock(&F->mu);
    F->feed[index].resync = 1;
    pthread_cond_signal(&F->cv);
    pthread_mutex_unlock(&F->mu);
}

uint64_t dp_feeds_notify_refused(struct dp_feeds *F)
{
    return F == NULL ? 0 : atomic_load(&F->notify_refused);
}

/* ---- configuration calls ---- */

DOTPROXY_EXPORT int dotproxy_config_add_rpz_primary(dotproxy_config *cfg, const char *spec)
{
    if (cfg == NULL || spec == NULL || spec[0] == '\0')
        return DOTPROXY_EINVAL;
    int rc = dp_feed_check_spec(spec);
    if (rc != 0)
        return rc;
    struct dp_feed_config *c = &cfg->block.feeds;
    if (c->n == DOTPROXY_FEEDS_MAX)
        return DOTPROXY_ELIMIT;
    char *copy = strdup(spec);
    if (copy == NULL)
        return DOTPROXY_ENOMEM;
    c->primary[c->n++] = copy;
    return 0;
}

DOTPROXY_EXPORT size_t dotproxy_config_rpz_primary_count(const dotproxy_config *cfg)
{
    return cfg == NULL ? 0 : cfg->block.feeds.n;
}

DOTPROXY_EXPORT const char *dotproxy_config_get_rpz_primary(const dotproxy_config *cfg,
                                                            size_t index)
{
    if (cfg == NULL || index >= cfg->block.feeds.n)
        return NULL;
    return cfg->block.feeds.primary[index];
}

DOTPROXY_EXPORT int dotproxy_config_set_rpz_tsig(dotproxy_config *cfg, const char *spec)
{
    if (cfg == NULL || spec == NULL)
        return DOTPROXY_EINVAL;
    struct dp_feed_config *c = &cfg->block.feeds;
    char why[200];
    struct dp_tsig_key k;
    if (spec[0] != '\0' && dp_tsig_key_parse(&k, spec, why, sizeof why) != 0)
        return DOTPROXY_EINVAL;
    char *copy = spec[0] != '\0' ? strdup(spec) : NULL;
    if (spec[0] != '\0' && copy == NULL)
        return DOTPROXY_ENOMEM;
    if (c->tsig != NULL) {
        memset(c->tsig, 0, strlen(c->tsig));
        free(c->tsig);
    }
    c->tsig = copy;
    memset(&k, 0, sizeof k);
    return 0;
}

DOTPROXY_EXPORT int dotproxy_config_set_state_dir(dotproxy_config *cfg, const char *path)
{
    if (cfg == NULL || path == NULL || path[0] == '\0' || strlen(path) > 3000)
        return DOTPROXY_EINVAL;
    char *copy = strdup(path);
    if (copy == NULL)
        return DOTPROXY_ENOMEM;
    free(cfg->block.feeds.state_dir);
    cfg->block.feeds.state_dir = copy;
    return 0;
}

DOTPROXY_EXPORT const char *dotproxy_config_get_state_dir(const dotproxy_config *cfg)
{
    if (cfg == NULL)
        return NULL;
    return cfg->block.feeds.state_dir != NULL ? cfg->block.feeds.state_dir
                                              : DOTPROXY_STATE_DIR_DEFAULT;
}
