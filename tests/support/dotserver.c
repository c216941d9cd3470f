/* SPDX-License-Identifier: MIT */
#include "dotserver.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include "dnsclient.h"

#define SYNTH_CAP     16384u
#define IN_CAP        (65535u + 2u) /* any frame fits (RFC 1035 4.2.2 prefix is 16 bits) */
#define TTL_ANSWER    300u
#define TTL_SOA       60u
#define SOA_MINIMUM   30u
#define OUR_UDP_SIZE  1232u
#define BIG_RRS       11u
#define HUGE_RRS      45u
#define TYPE_RRSIG    46u
#define OPT_KEEPALIVE 11u /* RFC 7828 */
#define OPT_PADDING   12u /* RFC 7830 */
#define OPT_EDE       15u /* RFC 8914 */

/* ---- answer synthesis ---------------------------------------------------- */

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
    put16(p, (uint16_t)(v >> 16));
    put16(p + 2, (uint16_t)v);
}

/* A bounded writer: every put checks room once and then sticks at failure,
 * so the builder below reads straight through. */
typedef struct wbuf {
    uint8_t *p;
    size_t cap, len;
    bool full;
} wbuf;

static uint8_t *wb_take(wbuf *w, size_t n)
{
    if (w->full || w->cap - w->len < n) {
        w->full = true;
        return NULL;
    }
    uint8_t *at = w->p + w->len;
    w->len += n;
    return at;
}

static void wb_bytes(wbuf *w, const void *b, size_t n)
{
    uint8_t *at = wb_take(w, n);
    if (at)
        memcpy(at, b, n);
}

static void wb_16(wbuf *w, uint16_t v)
{
    uint8_t *at = wb_take(w, 2);
    if (at)
        put16(at, v);
}

static void wb_32(wbuf *w, uint32_t v)
{
    uint8_t *at = wb_take(w, 4);
    if (at)
        put32(at, v);
}

/* Owner (a compression pointer), type, class IN, ttl; returns where RDLENGTH goes. */
static size_t wb_rr_head(wbuf *w, uint16_t owner_off, uint16_t type, uint32_t ttl)
{
    wb_16(w, (uint16_t)(0xc000u | owner_off));
    wb_16(w, type);
    wb_16(w, 1);
    wb_32(w, ttl);
    size_t at = w->len;
    wb_16(w, 0);
    return at;
}

static void wb_rr_end(wbuf *w, size_t rdlen_at)
{
    if (!w->full)
        put16(w->p + rdlen_at, (uint16_t)(w->len - rdlen_at - 2));
}

static void wb_soa(wbuf *w, uint16_t owner_off)
{
    static const uint8_t mname[] = "\2ns\4test"; /* + final zero */
    static const uint8_t rname[] = "\12hostmaster\4test";
    size_t at = wb_rr_head(w, owner_off, TS_DNS_TYPE_SOA, TTL_SOA);
    wb_bytes(w, mname, sizeof mname);
    wb_bytes(w, rname, sizeof rname);
    wb_32(w, 2024010101u); /* serial */
    wb_32(w, 3600);        /* refresh */
    wb_32(w, 600);         /* retry */
    wb_32(w, 86400);       /* expire */
    wb_32(w, SOA_MINIMUM); /* RFC 2308 5: the negative TTL is min(TTL, MINIMUM) */
    wb_rr_end(w, at);
}

/* What the query says, once parse_query has accepted it. */
typedef struct query {
    uint16_t id, flags;
    const uint8_t *qname;
    size_t qname_len;
    uint16_t qtype, qclass;
    bool has_opt;
    uint16_t opt_flags; /* the OPT TTL's low 16 bits: DO and Z */
    bool has_keepalive; /* the OPT carries edns-tcp-keepalive */
} query;

/* Walk the options of an OPT RDATA (already bounds-checked as a whole). */
static bool opt_has(const uint8_t *rd, size_t rdlen, uint16_t code)
{
    size_t off = 0;
    while (rdlen - off >= 4) {
        uint16_t c = get16(rd + off);
        size_t l = get16(rd + off + 2);
        if (l > rdlen - off - 4)
            return false;
        if (c == code)
            return true;
        off += 4 + l;
    }
    return false;
}

/* 0 = parsed, 1 = FORMERR, 4 = NOTIMP (the rcode to send). */
static int parse_query(query *q, const uint8_t *m, size_t len)
{
    memset(q, 0, sizeof *q);
    if (len < 12)
        return 1;
    q->id = get16(m);
    q->flags = get16(m + 2);
    if (q->flags & TS_DNS_FLAG_QR)
        return 1;
    if (((q->flags >> 11) & 0xf) != 0)
        return 4;
    if (get16(m + 4) != 1 || get16(m + 6) != 0 || get16(m + 8) != 0 || get16(m + 10) > 1)
        return 1;
    size_t off = 12;
    for (;;) {
        if (off >= len)
            return 1;
        uint8_t c = m[off];
        if (c == 0) {
            off++;
            break;
        }
        /* A question is the first name in a message: nothing to point back to. */
        if (c & 0xc0)
            return 1;
        off += 1 + (size_t)c;
        if (off - 12 > 254)
            return 1;
    }
    q->qname = m + 12;
    q->qname_len = off - 12;
    if (off + 4 > len)
        return 1;
    q->qtype = get16(m + off);
    q->qclass = get16(m + off + 2);
    off += 4;
    if (get16(m + 10) == 1) {
        /* RFC 6891 6.1.1: the only additional record we accept is an OPT
         * with a root owner. */
        if (off + 11 > len || m[off] != 0 || get16(m + off + 1) != TS_DNS_TYPE_OPT)
            return 1;
        size_t rdlen = get16(m + off + 9);
        if (off + 11 + rdlen > len)
            return 1;
        q->has_opt = true;
        q->opt_flags = get16(m + off + 7);
        q->has_keepalive = opt_has(m + off + 11, rdlen, OPT_KEEPALIVE);
        off += 11 + rdlen;
    }
    return off == len ? 0 : 1;
}

static char lower(uint8_t c)
{
    return (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
}

/* First label of wire name w equals / starts with s (ASCII case-insensitive). */
static bool first_label_is(const uint8_t *w, const char *s, bool prefix)
{
    size_t n = strlen(s);
    if (w[0] < n || (!prefix && w[0] != n))
        return false;
    for (size_t i = 0; i < n; i++)
        if (lower(w[1 + i]) != s[i])
            return false;
    return true;
}

/* An RRSIG-looking record covering `type` (RFC 4034 3.1 layout; the
 * signature is filler: nobody here validates it). */
static void wb_rrsig(wbuf *w, uint16_t type, uint32_t ttl)
{
    size_t at = wb_rr_head(w, 12, TYPE_RRSIG, ttl);
    wb_16(w, type);
    uint8_t alg_labels[2] = {13, 2}; /* ECDSAP256SHA256, labels: not checked */
    wb_bytes(w, alg_labels, 2);
    wb_32(w, ttl);         /* original TTL */
    wb_32(w, 2000000000u); /* expiration */
    wb_32(w, 1700000000u); /* inception */
    wb_16(w, 12345);       /* key tag */
    wb_bytes(w, "", 1);    /* signer: the root */
    uint8_t *sig = wb_take(w, 64);
    if (sig)
        memset(sig, 0x5a, 64);
    wb_rr_end(w, at);
}

static const ts_dotserver_knobs no_knobs;

static int synth(const uint8_t *m, size_t len, uint8_t *out, size_t cap, bool wrong_question,
                 const ts_dotserver_knobs *k)
{
    uint32_t ttl = k->ttl ? k->ttl : TTL_ANSWER;
    bool rrsig = false;
    query q;
    int rc = parse_query(&q, m, len);
    wbuf w = {out, cap, 0, false};
    if (rc != 0) {
        /* No question: whatever follows the header cannot be trusted. */
        wb_16(&w, len >= 2 ? get16(m) : 0);
        wb_16(&w, (uint16_t)(TS_DNS_FLAG_QR | TS_DNS_FLAG_RA | (q.flags & TS_DNS_FLAG_RD) |
                             (q.flags & 0x7800u) | (unsigned)rc));
        wb_16(&w, 0);
        wb_16(&w, 0);
        wb_16(&w, 0);
        wb_16(&w, 0);
        return w.full ? -1 : (int)w.len;
    }

    uint16_t flags =
        (uint16_t)(TS_DNS_FLAG_QR | TS_DNS_FLAG_RA | (q.flags & (TS_DNS_FLAG_RD | TS_DNS_FLAG_CD)));
    bool forced = k->rcode > 0 && k->rcode <= 15;
    bool nx = !forced && first_label_is(q.qname, "nx", true);
    if (nx)
        flags |= TS_DNS_RCODE_NXDOMAIN;
    if (forced)
        flags |= (uint16_t)k->rcode;
    if (k->ad && ((q.flags & TS_DNS_FLAG_AD) || (q.has_opt && (q.opt_flags & 0x8000u))))
        flags |= TS_DNS_FLAG_AD;
    if (k->tc)
        flags |= TS_DNS_FLAG_TC;
    rrsig = k->rrsig && q.has_opt && (q.opt_flags & 0x8000u);
    wb_16(&w, q.id);
    wb_16(&w, flags);
    wb_16(&w, 1);
    size_t counts_at = w.len;
    wb_16(&w, 0); /* ancount, nscount, arcount: filled in at the end */
    wb_16(&w, 0);
    wb_16(&w, q.has_opt ? 1 : 0);

    if (wrong_question && q.qname_len + 6 <= 255) {
        wb_bytes(&w, "\5wrong", 6);
        wb_bytes(&w, q.qname, q.qname_len);
    } else if (wrong_question) {
        wb_bytes(&w, "\5wrong\4test", 12);
    } else {
        wb_bytes(&w, q.qname, q.qname_len);
    }
    wb_16(&w, q.qtype);
    wb_16(&w, q.qclass);

    uint16_t an = 0, ns = 0;
    uint8_t addr[4];
    ts_dns_expected_a_wire(q.qname, q.qname_len, addr);
    if (forced) {
        /* Header and question only: what a failing resolver sends. */
    } else if (nx) {
        /* The SOA belongs to the zone above the name: its parent, which
         * starts right after the first label of the echoed question. */
        uint16_t parent = (uint16_t)(12 + (q.qname[0] ? 1 + q.qname[0] : 0));
        if (wrong_question)
            parent = (uint16_t)(parent + 6);
        wb_soa(&w, parent);
        ns = 1;
    } else if (first_label_is(q.qname, "cname", false) && q.qtype == TS_DNS_TYPE_A) {
        /* "cname.*": a CNAME to cloak.tracker.test and that name's A, the
         * shape of CNAME cloaking (tests of blocking by the chain). */
        static const uint8_t target[] = "\5cloak\7tracker\4test";
        size_t at = wb_rr_head(&w, 12, 5 /* CNAME */, ttl);
        size_t target_off = w.len;
        wb_bytes(&w, target, sizeof target);
        wb_rr_end(&w, at);
        at = wb_rr_head(&w, (uint16_t)target_off, TS_DNS_TYPE_A, ttl);
        ts_dns_expected_a_wire(target, sizeof target, addr);
        wb_bytes(&w, addr, 4);
        wb_rr_end(&w, at);
        an = 2;
    } else if (first_label_is(q.qname, "big", false) || first_label_is(q.qname, "huge", true)) {
        unsigned n = first_label_is(q.qname, "big", false) ? BIG_RRS : HUGE_RRS;
        for (unsigned i = 0; i < n; i++) {
            size_t at = wb_rr_head(&w, 12, TS_DNS_TYPE_TXT, ttl);
            uint8_t *s = wb_take(&w, 256);
            if (s) {
                /* Distinct RDATA per record: an RRset holds no duplicates. */
                s[0] = 255;
                for (unsigned j = 0; j < 255; j++)
                    s[1 + j] = (uint8_t)('a' + (i + j) % 26);
            }
            wb_rr_end(&w, at);
        }
        an = (uint16_t)n;
    } else if (q.qtype == TS_DNS_TYPE_A) {
        size_t at = wb_rr_head(&w, 12, TS_DNS_TYPE_A, ttl);
        wb_bytes(&w, addr, 4);
        wb_rr_end(&w, at);
        an = 1;
        if (rrsig) {
            wb_rrsig(&w, TS_DNS_TYPE_A, ttl);
            an++;
        }
    } else if (q.qtype == TS_DNS_TYPE_AAAA) {
        uint8_t v6[16] = {0x20, 0x01, 0x0d, 0xb8};
        v6[15] = addr[3];
        size_t at = wb_rr_head(&w, 12, TS_DNS_TYPE_AAAA, ttl);
        wb_bytes(&w, v6, 16);
        wb_rr_end(&w, at);
        an = 1;
        if (rrsig) {
            wb_rrsig(&w, TS_DNS_TYPE_AAAA, ttl);
            an++;
        }
    } else {
        wb_soa(&w, 12); /* NODATA (RFC 2308 2.2): the SOA says how long to remember it */
        ns = 1;
    }
    if (q.has_opt) {
        /* RFC 6891 7: our own OPT, not the client's; only DO is echoed. */
        wb_bytes(&w, "", 1);
        wb_16(&w, TS_DNS_TYPE_OPT);
        wb_16(&w, OUR_UDP_SIZE);
        wb_16(&w, 0); /* extended rcode, version 0 */
        wb_16(&w, (uint16_t)(q.opt_flags & 0x8000u));
        size_t rdlen_at = w.len;
        wb_16(&w, 0);
        if (k->keepalive_100ms && q.has_keepalive) {
            /* RFC 7828 3.3.2: a server answers the client's (empty)
             * option with its idle timeout. */
            wb_16(&w, OPT_KEEPALIVE);
            wb_16(&w, 2);
            wb_16(&w, (uint16_t)k->keepalive_100ms);
        }
        if (k->ede) {
            size_t tl = k->ede_text != NULL ? strlen(k->ede_text) : 0;
            tl = tl > 200 ? 200 : tl;
            wb_16(&w, OPT_EDE);
            wb_16(&w, (uint16_t)(2 + tl));
            wb_16(&w, k->ede_code);
            if (tl > 0)
                wb_bytes(&w, k->ede_text, tl);
        }
        if (k->answer_padding) {
            size_t n = k->answer_padding > 1024 ? 1024 : k->answer_padding;
            wb_16(&w, OPT_PADDING);
            wb_16(&w, (uint16_t)n);
            uint8_t *z = wb_take(&w, n);
            if (z)
                memset(z, 0, n); /* RFC 7830 3: padding octets are zero */
        }
        if (!w.full)
            put16(out + rdlen_at, (uint16_t)(w.len - rdlen_at - 2));
    }
    if (w.full)
        return -1;
    put16(out + counts_at, an);
    put16(out + counts_at + 2, ns);
    return (int)w.len;
}

int ts_dotserver_synth_answer(const uint8_t *q, size_t qlen, uint8_t *out, size_t cap)
{
    if (q == NULL || out == NULL)
        return -1;
    return synth(q, qlen, out, cap, false, &no_knobs);
}

/* ---- the server ---------------------------------------------------------- */

/* A query read and not yet answered. */
typedef struct pend {
    uint8_t *msg;
    size_t len;
    int64_t due; /* monotonic ms; non-decreasing along a connection's queue */
} pend;

typedef struct conn {
    struct conn *next;
    int fd;
    gnutls_session_t tls;
    bool handshaken;
    bool dead;
    bool abrupt; /* close_after fired: flush what is owed, then close without bye */
    uint8_t *in; /* IN_CAP octets of frame reassembly */
    size_t in_len;
    pend *q;
    size_t nq, q_cap;
    uint8_t *out; /* plaintext framed answers waiting for gnutls_record_send */
    size_t out_off, out_len, out_cap;
    /* Length passed to the record_send that returned GNUTLS_E_AGAIN: the
     * GnuTLS manual says to repeat the call with the same parameters. */
    size_t sending;
    unsigned nread; /* queries read on this connection */
    int64_t last_rx;
} conn;

struct ts_dotserver {
    ts_dotserver_opts o;
    int lfd;
    int wake[2];
    int nudge[2]; /* written by set_knobs: the thread looks at them again */
    uint16_t port;
    pthread_t thread;
    gnutls_certificate_credentials_t cred;
    gnutls_priority_t prio;
    gnutls_datum_t ticket_key;
    conn *conns;
    atomic_uint n_conn, n_hs, n_resumed, n_queries, n_root_ns, max_pending, n_closed;
    /* Knobs and the recorded queries, shared with other threads. */
    pthread_mutex_t mu;
    ts_dotserver_knobs knobs;
    unsigned rec_next; /* queries recorded so far; the slot is rec_next % RECENT */
    uint16_t rec_len[TS_DOTSERVER_RECENT];
    uint8_t rec[TS_DOTSERVER_RECENT][TS_DOTSERVER_RECENT_BYTES];
};

static ts_dotserver_knobs knobs_get(ts_dotserver *s)
{
    pthread_mutex_lock(&s->mu);
    ts_dotserver_knobs k = s->knobs;
    pthread_mutex_unlock(&s->mu);
    return k;
}

static void record_query(ts_dotserver *s, const uint8_t *m, size_t len)
{
    pthread_mutex_lock(&s->mu);
    unsigned i = s->rec_next++ % TS_DOTSERVER_RECENT;
    s->rec_len[i] = (uint16_t)len;
    memcpy(s->rec[i], m, len < TS_DOTSERVER_RECENT_BYTES ? len : TS_DOTSERVER_RECENT_BYTES);
    pthread_mutex_unlock(&s->mu);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void conn_free(conn *c)
{
    if (c->tls)
        gnutls_deinit(c->tls);
    if (c->fd >= 0)
        close(c->fd);
    for (size_t i = 0; i < c->nq; i++)
        free(c->q[i].msg);
    free(c->q);
    free(c->in);
    free(c->out);
    free(c);
}

static int out_reserve(conn *c, size_t n)
{
    if (c->out_cap - c->out_len >= n)
        return 0;
    size_t cap = c->out_cap ? c->out_cap : 4096;
    while (cap - c->out_len < n)
        cap *= 2;
    uint8_t *p = realloc(c->out, cap);
    if (p == NULL)
        return -1;
    c->out = p;
    c->out_cap = cap;
    return 0;
}

/* Frame and queue one message for sending. */
static int out_frame(conn *c, const uint8_t *m, size_t len)
{
    if (out_reserve(c, 2 + len) < 0)
        return -1;
    put16(c->out + c->out_len, (uint16_t)len);
    memcpy(c->out + c->out_len + 2, m, len);
    c->out_len += 2 + len;
    return 0;
}

static int answer_one(ts_dotserver *s, conn *c, const pend *p)
{
    if (s->o.garbage) {
        uint8_t junk[12];
        if (gnutls_rnd(GNUTLS_RND_NONCE, junk, sizeof junk) < 0)
            return -1;
        size_t n = 2 + junk[0] % 10;
        return out_frame(c, junk + 1, n);
    }
    uint8_t ans[SYNTH_CAP];
    ts_dotserver_knobs k = knobs_get(s);
    int n = synth(p->msg, p->len, ans, sizeof ans, s->o.wrong_question != 0, &k);
    if (n < 0)
        return -1;
    if (s->o.bad_id)
        put16(ans, (uint16_t)(get16(ans) ^ 0x5a5au));
    return out_frame(c, ans, (size_t)n);
}

/* Drop the first n queued queries. */
static void queue_pop(conn *c, size_t n)
{
    if (n == 0)
        return;
    for (size_t i = 0; i < n; i++)
        free(c->q[i].msg);
    memmove(c->q, c->q + n, (c->nq - n) * sizeof *c->q);
    c->nq -= n;
}

/* Move answers that are due from the queue to the output buffer. */
static int answer_due(ts_dotserver *s, conn *c, int64_t now)
{
    if (s->o.silent)
        return 0;
    if (s->o.reverse_batch > 1) {
        size_t b = s->o.reverse_batch;
        while (c->nq >= b && c->q[b - 1].due <= now) {
            for (size_t i = b; i-- > 0;)
                if (answer_one(s, c, &c->q[i]) < 0)
                    return -1;
            queue_pop(c, b);
        }
        return 0;
    }
    size_t i = 0;
    while (i < c->nq && c->q[i].due <= now) {
        if (answer_one(s, c, &c->q[i]) < 0)
            return -1;
        i++;
    }
    queue_pop(c, i);
    return 0;
}

/* 0 when the output is all handed to GnuTLS and sent, 1 when the socket is
 * full (wait for POLLOUT), -1 on a fatal error. */
static int flush_out(conn *c)
{
    while (c->out_off < c->out_len) {
        size_t n = c->sending;
        if (n == 0) {
            n = c->out_len - c->out_off;
            if (n > 16384)
                n = 16384;
        }
        ssize_t r = gnutls_record_send(c->tls, c->out + c->out_off, n);
        if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED) {
            c->sending = n;
            return 1;
        }
        if (r < 0)
            return -1;
        c->sending = 0;
        c->out_off += (size_t)r;
    }
    c->out_off = c->out_len = 0;
    return 0;
}

/* Take whole frames out of the reassembly buffer and queue them. */
static int take_frames(ts_dotserver *s, conn *c, int64_t now)
{
    size_t off = 0;
    while (!c->abrupt && c->in_len - off >= 2) {
        size_t len = get16(c->in + off);
        if (len == 0)
            return -1; /* RFC 1035 4.2.2 framing leaves no room for an empty message */
        if (c->in_len - off < 2 + len)
            break;
        record_query(s, c->in + off + 2, len);
        atomic_fetch_add(&s->n_queries, 1);
        const uint8_t *m = c->in + off + 2;
        if (len >= 17 && m[12] == 0 && get16(m + 13) == 2) /* ". NS" */
            atomic_fetch_add(&s->n_root_ns, 1);
        c->nread++;
        if (s->o.close_after && c->nread >= s->o.close_after) {
            c->abrupt = true;
            off += 2 + len;
            break;
        }
        if (knobs_get(s).blackhole) {
            off += 2 + len;
            continue;
        }
        if (c->nq == c->q_cap) {
            size_t cap = c->q_cap ? 2 * c->q_cap : 16;
            pend *q = realloc(c->q, cap * sizeof *q);
            if (q == NULL)
                return -1;
            c->q = q;
            c->q_cap = cap;
        }
        pend *p = &c->q[c->nq];
        p->msg = malloc(len);
        if (p->msg == NULL)
            return -1;
        memcpy(p->msg, c->in + off + 2, len);
        p->len = len;
        p->due = now + s->o.delay_ms;
        c->nq++;
        off += 2 + len;
    }
    memmove(c->in, c->in + off, c->in_len - off);
    c->in_len -= off;
    return 0;
}

/* Read everything GnuTLS can give now. -1 to close the connection. */
static int read_all(ts_dotserver *s, conn *c, int64_t now)
{
    /* Loop until GNUTLS_E_AGAIN: decrypted data left in GnuTLS's buffer is
     * invisible to poll (see DESIGN.md, "GnuTLS inside a poll loop"). */
    while (!c->abrupt) {
        ssize_t r = gnutls_record_recv(c->tls, c->in + c->in_len, IN_CAP - c->in_len);
        if (r == GNUTLS_E_AGAIN)
            break;
        if (r == GNUTLS_E_INTERRUPTED)
            continue;
        if (r <= 0)
            return -1; /* close_notify, EOF or a TLS error: the client is gone */
        c->last_rx = now;
        c->in_len += (size_t)r;
        if (take_frames(s, c, now) < 0)
            return -1;
    }
    unsigned prev = atomic_load(&s->max_pending);
    if (c->nq > prev)
        atomic_store(&s->max_pending, (unsigned)c->nq);
    return 0;
}

/* Read any bytes the kernel still holds so that close() sends FIN, not RST,
 * and the client can read the answers already written before the close. */
static void drain_socket(int fd)
{
    uint8_t junk[4096];
    while (recv(fd, junk, sizeof junk, MSG_DONTWAIT) > 0)
        ;
}

static void service(ts_dotserver *s, conn *c, int64_t now)
{
    if (!c->handshaken) {
        int r = gnutls_handshake(c->tls);
        if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED)
            goto idle_check;
        if (r < 0) {
            c->dead = true;
            return;
        }
        c->handshaken = true;
        atomic_fetch_add(&s->n_hs, 1);
        if (gnutls_session_is_resumed(c->tls))
            atomic_fetch_add(&s->n_resumed, 1);
    }
    if (read_all(s, c, now) < 0 || answer_due(s, c, now) < 0) {
        c->dead = true;
        return;
    }
    int f = flush_out(c);
    if (f < 0) {
        c->dead = true;
        return;
    }
    if (c->abrupt) {
        /* Answers owed before the Nth query go out first when the socket
         * takes them at once; a full socket just loses them, like a crash. */
        drain_socket(c->fd);
        atomic_fetch_add(&s->n_closed, 1);
        c->dead = true;
        return;
    }
idle_check:
    if (s->o.idle_close_ms && now - c->last_rx >= (int64_t)s->o.idle_close_ms) {
        /* Count first: the client may look at the counter as soon as it
         * sees the close_notify. */
        atomic_fetch_add(&s->n_closed, 1);
        if (c->handshaken)
            gnutls_bye(c->tls, GNUTLS_SHUT_WR); /* best effort: non-blocking */
        drain_socket(c->fd);
        c->dead = true;
    }
}

/* When this connection next needs attention without I/O, INT64_MAX if never. */
static int64_t conn_deadline(const ts_dotserver *s, const conn *c)
{
    int64_t d = INT64_MAX;
    if (s->o.idle_close_ms)
        d = c->last_rx + s->o.idle_close_ms;
    if (!s->o.silent && c->nq > 0) {
        int64_t due = INT64_MAX;
        if (s->o.reverse_batch > 1) {
            if (c->nq >= s->o.reverse_batch)
                due = c->q[s->o.reverse_batch - 1].due;
        } else {
            due = c->q[0].due;
        }
        if (due < d)
            d = due;
    }
    return d;
}

static void accept_all(ts_dotserver *s, int64_t now)
{
    for (;;) {
        int fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return; /* EAGAIN, or an error poll will report again */
        atomic_fetch_add(&s->n_conn, 1);
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        conn *c = calloc(1, sizeof *c);
        if (c == NULL || (c->in = malloc(IN_CAP)) == NULL) {
            free(c);
            close(fd);
            continue;
        }
        c->fd = fd;
        c->last_rx = now;
        /* GNUTLS_NO_SIGNAL (MSG_NOSIGNAL): a client that hangs up while we
         * write must not SIGPIPE the whole test process we live in. */
        if (gnutls_init(&c->tls, GNUTLS_SERVER | GNUTLS_NONBLOCK | GNUTLS_NO_SIGNAL) < 0 ||
            gnutls_priority_set(c->tls, s->prio) < 0 ||
            gnutls_credentials_set(c->tls, GNUTLS_CRD_CERTIFICATE, s->cred) < 0 ||
            gnutls_session_ticket_enable_server(c->tls, &s->ticket_key) < 0) {
            conn_free(c);
            continue;
        }
        /* RFC 7858 3.2 and RFC 8310 8.1: offer the "dot" ALPN id; a client
         * that sends none is still served. */
        gnutls_datum_t alpn = {(unsigned char *)"dot", 3};
        gnutls_alpn_set_protocols(c->tls, &alpn, 1, 0);
        if (s->o.client_ca_file != NULL)
            gnutls_certificate_server_set_request(c->tls, GNUTLS_CERT_REQUIRE);
        gnutls_transport_set_int(c->tls, fd);
        c->next = s->conns;
        s->conns = c;
    }
}

static void drain_pipe(int fd)
{
    char junk[64];
    while (read(fd, junk, sizeof junk) > 0)
        ;
}

static void *server_main(void *arg)
{
    ts_dotserver *s = arg;
    struct pollfd *pfd = NULL;
    conn **pconn = NULL;
    size_t pcap = 0;
    for (;;) {
        if (knobs_get(s).frozen) {
            /* Black-holed: look only for the stop request and for new
             * knobs. */
            struct pollfd w[2] = {{.fd = s->wake[0], .events = POLLIN},
                                  {.fd = s->nudge[0], .events = POLLIN}};
            int r = poll(w, 2, -1);
            if (r < 0 && errno != EINTR)
                break;
            if (r > 0 && w[0].revents)
                break;
            drain_pipe(s->nudge[0]);
            continue;
        }
        int64_t now = mono_ms();
        size_t n = 0;
        for (conn *c = s->conns; c; c = c->next)
            n++;
        if (n + 3 > pcap) {
            size_t cap = (n + 3) * 2;
            struct pollfd *np = realloc(pfd, cap * sizeof *np);
            if (np)
                pfd = np;
            conn **nc = realloc(pconn, cap * sizeof *nc);
            if (nc)
                pconn = nc;
            if (np == NULL || nc == NULL)
                break;
            pcap = cap;
        }
        pfd[0] = (struct pollfd){.fd = s->wake[0], .events = POLLIN};
        pfd[1] = (struct pollfd){.fd = s->lfd, .events = POLLIN};
        int64_t deadline = INT64_MAX;
        size_t k = 2;
        for (conn *c = s->conns; c; c = c->next, k++) {
            short ev = POLLIN;
            if (!c->handshaken) {
                ev = gnutls_record_get_direction(c->tls) ? POLLOUT : POLLIN;
            } else if (c->out_off < c->out_len) {
                ev |= POLLOUT;
            }
            pfd[k] = (struct pollfd){.fd = c->fd, .events = ev};
            pconn[k] = c;
            int64_t d = conn_deadline(s, c);
            if (d < deadline)
                deadline = d;
        }
        pfd[k] = (struct pollfd){.fd = s->nudge[0], .events = POLLIN};
        int timeout = -1;
        if (deadline != INT64_MAX)
            timeout =
                deadline <= now ? 0 : (int)(deadline - now > INT_MAX ? INT_MAX : deadline - now);
        int r = poll(pfd, k + 1, timeout);
        if (r < 0 && errno != EINTR)
            break;
        if (r > 0 && pfd[0].revents)
            break;
        if (r > 0 && pfd[k].revents)
            drain_pipe(s->nudge[0]);
        now = mono_ms();
        if (r > 0 && pfd[1].revents)
            accept_all(s, now);
        for (size_t i = 2; i < k; i++) {
            conn *c = pconn[i];
            if ((r > 0 && pfd[i].revents) || conn_deadline(s, c) <= now)
                service(s, c, now);
        }
        for (conn **pp = &s->conns; *pp;) {
            conn *c = *pp;
            if (c->dead) {
                *pp = c->next;
                conn_free(c);
            } else {
                pp = &c->next;
            }
        }
    }
    free(pfd);
    free(pconn);
    return NULL;
}

static int listen_loopback(uint16_t port, uint16_t *bound)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_port = htons(port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sin;
    if (bind(fd, (struct sockaddr *)&sin, sizeof sin) < 0 || listen(fd, SOMAXCONN) < 0 ||
        getsockname(fd, (struct sockaddr *)&sin, &sl) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    *bound = ntohs(sin.sin_port);
    return fd;
}

static void server_free(ts_dotserver *s)
{
    while (s->conns) {
        conn *c = s->conns;
        s->conns = c->next;
        conn_free(c);
    }
    if (s->lfd >= 0)
        close(s->lfd);
    if (s->wake[0] >= 0)
        close(s->wake[0]);
    if (s->wake[1] >= 0)
        close(s->wake[1]);
    if (s->nudge[0] >= 0)
        close(s->nudge[0]);
    if (s->nudge[1] >= 0)
        close(s->nudge[1]);
    if (s->prio)
        gnutls_priority_deinit(s->prio);
    if (s->cred)
        gnutls_certificate_free_credentials(s->cred);
    if (s->ticket_key.data)
        gnutls_memset(s->ticket_key.data, 0, s->ticket_key.size);
    gnutls_free(s->ticket_key.data);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

static int start_failed(ts_dotserver *s, const ts_dotserver_opts *o, const char *what,
                        const char *why)
{
    if (o->errbuf && o->errbuf_len)
        snprintf(o->errbuf, o->errbuf_len, "%s: %s", what, why);
    server_free(s);
    return -1;
}

/* opts.client_ca_file: the client's chain must verify against it. */
static int verify_client_chain(gnutls_session_t tls)
{
    unsigned status = 0;
    if (gnutls_certificate_verify_peers2(tls, &status) < 0 || status != 0)
        return GNUTLS_E_CERTIFICATE_ERROR;
    return 0;
}

/* opts.raw_chain: the certificates of cert_file unsorted, as given, with the
 * key of key_file. 0 or a GnuTLS error code. (Each certificate is imported on
 * its own: GnuTLS's list importers sort a chain and drop what is unrelated.) */
static int load_raw_chain(gnutls_certificate_credentials_t cred, const char *cert_file,
                          const char *key_file)
{
    enum { MAX_CHAIN = 8 };
    gnutls_pcert_st pcerts[MAX_CHAIN];
    unsigned n = 0;
    gnutls_datum_t pem = {NULL, 0}, key_pem = {NULL, 0};
    gnutls_privkey_t key = NULL;
    int ret = gnutls_load_file(cert_file, &pem);
    if (ret < 0)
        return ret;
    static const char begin[] = "-----BEGIN CERTIFICATE-----";
    const char *p = (const char *)pem.data, *end = p + pem.size;
    while (n < MAX_CHAIN && (p = memmem(p, (size_t)(end - p), begin, sizeof begin - 1)) != NULL) {
        /* gnutls_pcert_import_x509_raw reads the first PEM block of what
         * it is given. */
        gnutls_datum_t one = {(unsigned char *)(uintptr_t)p, (unsigned)(end - p)};
        if ((ret = gnutls_pcert_import_x509_raw(&pcerts[n], &one, GNUTLS_X509_FMT_PEM, 0)) < 0)
            goto fail;
        n++;
        p += sizeof begin - 1;
    }
    if (n == 0) {
        ret = GNUTLS_E_NO_CERTIFICATE_FOUND;
        goto fail;
    }
    if ((ret = gnutls_load_file(key_file, &key_pem)) < 0 || (ret = gnutls_privkey_init(&key)) < 0 ||
        (ret = gnutls_privkey_import_x509_raw(key, &key_pem, GNUTLS_X509_FMT_PEM, NULL, 0)) < 0)
        goto fail;
    /* On success the credentials own the certificates and the key. */
    if ((ret = gnutls_certificate_set_key(cred, NULL, 0, pcerts, (int)n, key)) < 0)
        goto fail;
    gnutls_free(key_pem.data);
    gnutls_free(pem.data);
    return 0;
fail:
    gnutls_free(key_pem.data);
    gnutls_free(pem.data);
    if (key != NULL)
        gnutls_privkey_deinit(key);
    for (unsigned i = 0; i < n; i++)
        gnutls_pcert_deinit(&pcerts[i]);
    return ret;
}

int ts_dotserver_start(ts_dotserver **out, const ts_dotserver_opts *o)
{
    if (out == NULL || o == NULL)
        return -1;
    if (o->cert_file == NULL || o->key_file == NULL) {
        if (o->errbuf && o->errbuf_len)
            snprintf(o->errbuf, o->errbuf_len, "cert_file and key_file are required");
        return -1;
    }
    ts_dotserver *s = calloc(1, sizeof *s);
    if (s == NULL)
        return -1;
    s->o = *o;
    s->lfd = s->wake[0] = s->wake[1] = s->nudge[0] = s->nudge[1] = -1;
    pthread_mutex_init(&s->mu, NULL);
    s->knobs = o->knobs;
    int ret;
    if ((ret = gnutls_certificate_allocate_credentials(&s->cred)) < 0)
        return start_failed(s, o, "credentials", gnutls_strerror(ret));
    if (o->raw_chain)
        ret = load_raw_chain(s->cred, o->cert_file, o->key_file);
    else
        ret = gnutls_certificate_set_x509_key_file(s->cred, o->cert_file, o->key_file,
                                                   GNUTLS_X509_FMT_PEM);
    if (ret < 0)
        return start_failed(s, o, o->cert_file, gnutls_strerror(ret));
    if (o->client_ca_file != NULL) {
        ret =
            gnutls_certificate_set_x509_trust_file(s->cred, o->client_ca_file, GNUTLS_X509_FMT_PEM);
        if (ret <= 0)
            return start_failed(s, o, o->client_ca_file,
                                ret == 0 ? "no certificate" : gnutls_strerror(ret));
        gnutls_certificate_set_verify_function(s->cred, verify_client_chain);
    }
    /* The system default (TLS 1.3 and 1.2), with 1.0/1.1 ruled out whatever
     * the local policy says: RFC 8310 and DESIGN.md ask for 1.2 or later. */
    ret = gnutls_priority_init2(&s->prio, "-VERS-TLS1.1:-VERS-TLS1.0", NULL,
                                GNUTLS_PRIORITY_INIT_DEF_APPEND);
    if (ret < 0)
        return start_failed(s, o, "priority", gnutls_strerror(ret));
    if ((ret = gnutls_session_ticket_key_generate(&s->ticket_key)) < 0)
        return start_failed(s, o, "ticket key", gnutls_strerror(ret));
    if (pipe2(s->wake, O_CLOEXEC) < 0 || pipe2(s->nudge, O_CLOEXEC | O_NONBLOCK) < 0)
        return start_failed(s, o, "pipe", strerror(errno));
    if ((ret = listen_loopback(o->port, &s->port)) < 0)
        return start_failed(s, o, "listen on 127.0.0.1", strerror(-ret));
    s->lfd = ret;
    if ((ret = pthread_create(&s->thread, NULL, server_main, s)) != 0)
        return start_failed(s, o, "thread", strerror(ret));
    *out = s;
    return 0;
}

uint16_t ts_dotserver_port(const ts_dotserver *s)
{
    return s->port;
}

void ts_dotserver_stop(ts_dotserver *s)
{
    if (s == NULL)
        return;
    ssize_t w;
    do
        w = write(s->wake[1], "x", 1);
    while (w < 0 && errno == EINTR);
    pthread_join(s->thread, NULL);
    server_free(s);
}

unsigned ts_dotserver_connections(const ts_dotserver *s)
{
    return atomic_load(&s->n_conn);
}

unsigned ts_dotserver_handshakes(const ts_dotserver *s)
{
    return atomic_load(&s->n_hs);
}

unsigned ts_dotserver_resumed(const ts_dotserver *s)
{
    return atomic_load(&s->n_resumed);
}

unsigned ts_dotserver_queries(const ts_dotserver *s)
{
    return atomic_load(&s->n_queries);
}

unsigned ts_dotserver_root_ns_queries(const ts_dotserver *s)
{
    return atomic_load(&s->n_root_ns);
}

unsigned ts_dotserver_max_pending(const ts_dotserver *s)
{
    return atomic_load(&s->max_pending);
}

unsigned ts_dotserver_closed_by_server(const ts_dotserver *s)
{
    return atomic_load(&s->n_closed);
}

void ts_dotserver_set_knobs(ts_dotserver *s, const ts_dotserver_knobs *k)
{
    pthread_mutex_lock(&s->mu);
    s->knobs = *k;
    pthread_mutex_unlock(&s->mu);
    /* Best effort: a full pipe already has the thread coming. */
    ssize_t w;
    do
        w = write(s->nudge[1], "x", 1);
    while (w < 0 && errno == EINTR);
}

int ts_dotserver_recent_query(ts_dotserver *s, unsigned back, uint8_t *buf, size_t cap)
{
    int ret = -1;
    pthread_mutex_lock(&s->mu);
    if (back < TS_DOTSERVER_RECENT && back < s->rec_next) {
        unsigned i = (s->rec_next - 1 - back) % TS_DOTSERVER_RECENT;
        size_t n = s->rec_len[i];
        ret = (int)n;
        if (n > TS_DOTSERVER_RECENT_BYTES)
            n = TS_DOTSERVER_RECENT_BYTES;
        if (n > cap)
            n = cap;
        if (n > 0)
            memcpy(buf, s->rec[i], n);
    }
    pthread_mutex_unlock(&s->mu);
    return ret;
}
