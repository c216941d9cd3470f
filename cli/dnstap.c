/* SPDX-License-Identifier: MIT */
/* dotproxyd: dnstap output. Tap events (dotproxy/tap.h) encoded as dnstap
 * protobuf messages and written as a Frame Streams stream by libfstrm. */
#include "dnstap.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#ifdef DPD_HAVE_DNSTAP
#include <fstrm.h>

#include "dnstap.pb-c.h"
#endif

/* The Frame Streams content type readers ask for (dnstap.info). */
#define CONTENT_TYPE "protobuf:dnstap.Dnstap"
/* Per worker, in messages: a power of two (libfstrm's rule). At ~200
 * octets a message this is ~800 KiB per worker at most, and a burst of 4096
 * answers before the I/O thread catches up. */
#define QUEUE_SIZE 4096

struct target {
    int tcp;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    char addr[INET6_ADDRSTRLEN];
    char port[8];
};

static int parse_target(const char *spec, struct target *t, char *why, size_t cap)
{
    memset(t, 0, sizeof *t);
    if (strncmp(spec, "unix:", 5) == 0) {
        const char *p = spec + 5;
        if (p[0] == '\0') {
            snprintf(why, cap, "unix: needs a socket path (unix:/run/dnstap.sock)");
            return -1;
        }
        if (strlen(p) >= sizeof t->path) {
            snprintf(why, cap, "the socket path is longer than %zu octets", sizeof t->path - 1);
            return -1;
        }
        memcpy(t->path, p, strlen(p) + 1);
        return 0;
    }
    if (strncmp(spec, "tcp:", 4) == 0) {
        const char *p = spec + 4;
        dotproxy_endpoint ep;
        if (strchr(p, '@') == NULL || dotproxy_endpoint_parse(&ep, p, 0, 0) != 0) {
            snprintf(why, cap, "tcp: needs ADDR@PORT, ADDR an IP address (tcp:127.0.0.1@6000)");
            return -1;
        }
        unsigned port;
        const void *a;
        if (ep.addr.ss_family == AF_INET) {
            const struct sockaddr_in *sin = (const struct sockaddr_in *)(const void *)&ep.addr;
            a = &sin->sin_addr;
            port = ntohs(sin->sin_port);
        } else {
            const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)(const void *)&ep.addr;
            a = &sin6->sin6_addr;
            port = ntohs(sin6->sin6_port);
        }
        if (port == 0) {
            snprintf(why, cap, "tcp: the port must be 1 to 65535");
            return -1;
        }
        if (inet_ntop(ep.addr.ss_family, a, t->addr, sizeof t->addr) == NULL) {
            snprintf(why, cap, "tcp: cannot print the address");
            return -1;
        }
        snprintf(t->port, sizeof t->port, "%u", port);
        t->tcp = 1;
        return 0;
    }
    snprintf(why, cap, "must be unix:PATH or tcp:ADDR@PORT");
    return -1;
}

int dpd_dnstap_check(const char *spec, char *why, size_t cap)
{
    struct target t;
    if (parse_target(spec, &t, why, cap) != 0)
        return -1;
#ifndef DPD_HAVE_DNSTAP
    snprintf(why, cap, "this dotproxyd was built without dnstap (libfstrm-dev, libprotobuf-c-dev)");
    return -1;
#else
    return 0;
#endif
}

#ifdef DPD_HAVE_DNSTAP

struct worker_out {
    struct fstrm_iothr_queue *queue;
    atomic_ullong queued, dropped;
};

static struct fstrm_iothr *iothr;
static struct worker_out *outs;
static unsigned n_outs;
static char identity[256];
static char version[64];

int dpd_dnstap_open(const char *spec, unsigned n_workers, char *err, size_t cap)
{
    struct target t;
    if (parse_target(spec, &t, err, cap) != 0)
        return -1;
    if (gethostname(identity, sizeof identity) != 0)
        identity[0] = '\0';
    identity[sizeof identity - 1] = '\0';
    snprintf(version, sizeof version, "dotproxyd %s", dotproxy_version());
    outs = calloc(n_workers, sizeof *outs);
    if (outs == NULL) {
        snprintf(err, cap, "out of memory");
        return -1;
    }
    n_outs = n_workers;

    struct fstrm_writer_options *wopt = fstrm_writer_options_init();
    struct fstrm_unix_writer_options *uopt = NULL;
    struct fstrm_tcp_writer_options *topt = NULL;
    struct fstrm_iothr_options *iopt = fstrm_iothr_options_init();
    struct fstrm_writer *w = NULL;
    int ok = wopt != NULL && iopt != NULL &&
             fstrm_writer_options_add_content_type(wopt, CONTENT_TYPE, strlen(CONTENT_TYPE)) ==
                 fstrm_res_success &&
             fstrm_iothr_options_set_num_input_queues(iopt, n_workers) == fstrm_res_success &&
             fstrm_iothr_options_set_input_queue_size(iopt, QUEUE_SIZE) == fstrm_res_success &&
             fstrm_iothr_options_set_queue_model(iopt, FSTRM_IOTHR_QUEUE_MODEL_SPSC) ==
                 fstrm_res_success &&
             /* A receiver that went away is tried again every second. */
             fstrm_iothr_options_set_reopen_interval(iopt, 1) == fstrm_res_success;
    if (ok && t.tcp) {
        topt = fstrm_tcp_writer_options_init();
        ok = topt != NULL;
        if (ok) {
            fstrm_tcp_writer_options_set_socket_address(topt, t.addr);
            fstrm_tcp_writer_options_set_socket_port(topt, t.port);
            w = fstrm_tcp_writer_init(topt, wopt);
        }
    } else if (ok) {
        uopt = fstrm_unix_writer_options_init();
        ok = uopt != NULL;
        if (ok) {
            fstrm_unix_writer_options_set_socket_path(uopt, t.path);
            w = fstrm_unix_writer_init(uopt, wopt);
        }
    }
    if (ok && w != NULL) {
        /* The I/O thread takes no signals: the main thread handles them. */
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &old);
        iothr = fstrm_iothr_init(iopt, &w); /* takes w (and sets it NULL) on success */
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    }
    if (w != NULL)
        fstrm_writer_destroy(&w);
    if (topt != NULL)
        fstrm_tcp_writer_options_destroy(&topt);
    if (uopt != NULL)
        fstrm_unix_writer_options_destroy(&uopt);
    if (wopt != NULL)
        fstrm_writer_options_destroy(&wopt);
    if (iopt != NULL)
        fstrm_iothr_options_destroy(&iopt);
    for (unsigned i = 0; iothr != NULL && i < n_workers; i++) {
        outs[i].queue = fstrm_iothr_get_input_queue_idx(iothr, i);
        if (outs[i].queue == NULL)
            ok = 0;
    }
    if (!ok || iothr == NULL) {
        snprintf(err, cap, "cannot start the Frame Streams writer for %s", spec);
        dpd_dnstap_close();
        return -1;
    }
    return 0;
}

void *dpd_dnstap_worker(unsigned i)
{
    return i < n_outs ? &outs[i] : NULL;
}

/* protobuf-c's byte fields are not const, but packing only reads them. */
static uint8_t *unconst(const void *p)
{
    return (uint8_t *)(uintptr_t)p;
}

/* The address of sa as dnstap wants it: 4 or 16 octets and the port. */
static void set_addr(const struct sockaddr *sa, ProtobufCBinaryData *addr, uint32_t *port,
                     int *family)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)(const void *)sa;
        addr->data = unconst(&sin->sin_addr);
        addr->len = 4;
        *port = ntohs(sin->sin_port);
        *family = DNSTAP__SOCKET_FAMILY__INET;
    } else {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)(const void *)sa;
        addr->data = unconst(&sin6->sin6_addr);
        addr->len = 16;
        *port = ntohs(sin6->sin6_port);
        *family = DNSTAP__SOCKET_FAMILY__INET6;
    }
}

static int usable(const struct sockaddr *sa, socklen_t len)
{
    return sa != NULL && ((sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) ||
                          (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)));
}

void dpd_dnstap_event(const dotproxy_tap_event *ev, void *user)
{
    struct worker_out *out = user;
    Dnstap__Message m = DNSTAP__MESSAGE__INIT;
    Dnstap__Dnstap d = DNSTAP__DNSTAP__INIT;
    int family = 0;

    m.type = (Dnstap__Message__Type)ev->kind;
    m.has_socket_protocol = 1;
    m.socket_protocol = (Dnstap__SocketProtocol)ev->transport;
    if (usable(ev->query_addr, ev->query_addr_len)) {
        set_addr(ev->query_addr, &m.query_address, &m.query_port, &family);
        m.has_query_address = m.has_query_port = 1;
    }
    if (usable(ev->response_addr, ev->response_addr_len)) {
        set_addr(ev->response_addr, &m.response_address, &m.response_port, &family);
        m.has_response_address = m.has_response_port = 1;
    }
    if (family != 0) {
        m.has_socket_family = 1;
        m.socket_family = (Dnstap__SocketFamily)family;
    }
    if (ev->query_time_ns != 0) {
        m.has_query_time_sec = m.has_query_time_nsec = 1;
        m.query_time_sec = ev->query_time_ns / 1000000000u;
        m.query_time_nsec = (uint32_t)(ev->query_time_ns % 1000000000u);
    }
    ProtobufCBinaryData wire = {.len = ev->len, .data = unconst(ev->msg)};
    if (ev->kind == DOTPROXY_TAP_CLIENT_QUERY || ev->kind == DOTPROXY_TAP_FORWARDER_QUERY) {
        m.has_query_message = 1;
        m.query_message = wire;
    } else {
        m.has_response_message = 1;
        m.response_message = wire;
        if (ev->response_time_ns != 0) {
            m.has_response_time_sec = m.has_response_time_nsec = 1;
            m.response_time_sec = ev->response_time_ns / 1000000000u;
            m.response_time_nsec = (uint32_t)(ev->response_time_ns % 1000000000u);
        }
    }
    d.type = DNSTAP__DNSTAP__TYPE__MESSAGE;
    d.message = &m;
    if (identity[0] != '\0') {
        d.has_identity = 1;
        d.identity.data = (uint8_t *)identity;
        d.identity.len = strlen(identity);
    }
    d.has_version = 1;
    d.version.data = (uint8_t *)version;
    d.version.len = strlen(version);

    size_t n = dnstap__dnstap__get_packed_size(&d);
    uint8_t *buf = malloc(n);
    if (buf == NULL) {
        atomic_fetch_add_explicit(&out->dropped, 1, memory_order_relaxed);
        return;
    }
    dnstap__dnstap__pack(&d, buf);
    /* Never waits: a full queue (the receiver is slow or away) drops. */
    if (fstrm_iothr_submit(iothr, out->queue, buf, n, fstrm_free_wrapper, NULL) !=
        fstrm_res_success) {
        free(buf);
        atomic_fetch_add_explicit(&out->dropped, 1, memory_order_relaxed);
        return;
    }
    atomic_fetch_add_explicit(&out->queued, 1, memory_order_relaxed);
}

void dpd_dnstap_counts(unsigned long long *queued, unsigned long long *dropped)
{
    *queued = *dropped = 0;
    for (unsigned i = 0; i < n_outs; i++) {
        *queued += atomic_load_explicit(&outs[i].queued, memory_order_relaxed);
        *dropped += atomic_load_explicit(&outs[i].dropped, memory_order_relaxed);
    }
}

/* Closing: libfstrm's destroy flushes and joins its I/O thread, which may
 * be stuck in a handshake with a receiver that accepted the connection and
 * never answers (seen: the exit held until the receiver went away). So it
 * runs on a thread of its own, given CLOSE_WAIT_S; past that the process
 * exits without it, as the log writer does with an output that never
 * drains. */
#define CLOSE_WAIT_S 2

static pthread_mutex_t close_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t close_cond = PTHREAD_COND_INITIALIZER;
static int close_done;

static void *closer_main(void *arg)
{
    struct fstrm_iothr *t = arg;
    fstrm_iothr_destroy(&t);
    pthread_mutex_lock(&close_lock);
    close_done = 1;
    pthread_cond_broadcast(&close_cond);
    pthread_mutex_unlock(&close_lock);
    return NULL;
}

void dpd_dnstap_close(void)
{
    if (iothr != NULL) {
        pthread_t closer;
        int done = 0;

        if (pthread_create(&closer, NULL, closer_main, iothr) == 0) {
            struct timespec until;

            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_sec += CLOSE_WAIT_S;
            pthread_mutex_lock(&close_lock);
            while (!close_done &&
                   pthread_cond_timedwait(&close_cond, &close_lock, &until) != ETIMEDOUT)
                ;
            done = close_done;
            pthread_mutex_unlock(&close_lock);
            if (done)
                pthread_join(closer, NULL);
            else
                pthread_detach(closer); /* the exit ends it */
        } else {
            fstrm_iothr_destroy(&iothr); /* no thread to spare: wait for it */
        }
        iothr = NULL; /* outs below is ours alone: the workers have stopped */
    }
    free(outs);
    outs = NULL;
    n_outs = 0;
}

#else /* without dnstap: dpd_dnstap_check refuses the option before this */

int dpd_dnstap_open(const char *spec, unsigned n_workers, char *err, size_t cap)
{
    (void)n_workers;
    return dpd_dnstap_check(spec, err, cap);
}

void *dpd_dnstap_worker(unsigned i)
{
    (void)i;
    return NULL;
}

void dpd_dnstap_event(const dotproxy_tap_event *ev, void *user)
{
    (void)ev;
    (void)user;
}

void dpd_dnstap_counts(unsigned long long *queued, unsigned long long *dropped)
{
    *queued = *dropped = 0;
}

void dpd_dnstap_close(void)
{
}

#endif
