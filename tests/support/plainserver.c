/* SPDX-License-Identifier: MIT */
/* Test support: the plain DNS server (see plainserver.h). */
#include "plainserver.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "dotserver.h"

#define MAX_CONNS 32
#define IN_CAP    (2u + 65535u)
#define ANS_CAP   16384u

typedef struct pconn {
    int fd;
    uint8_t *in;
    size_t len;
} pconn;

struct ts_plainserver {
    int tcp, udp, wake[2];
    uint16_t port;
    pthread_t thread;
    pconn conns[MAX_CONNS];
    atomic_uint tcp_queries, udp_queries, connections;
    pthread_mutex_t last_lock;
    uint8_t last[4096];
    int last_len; /* -1: none yet */
};

static void conn_close(pconn *c)
{
    close(c->fd);
    free(c->in);
    c->fd = -1;
    c->in = NULL;
    c->len = 0;
}

/* Write all of buf on a non-blocking socket, waiting for room a while. */
static int write_all(int fd, const uint8_t *buf, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, buf, n, MSG_NOSIGNAL);
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct pollfd p = {.fd = fd, .events = POLLOUT};
            if (poll(&p, 1, 2000) <= 0)
                return -1;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        buf += w;
        n -= (size_t)w;
    }
    return 0;
}

static int conn_serve(ts_plainserver *s, pconn *c)
{
    ssize_t n = recv(c->fd, c->in + c->len, IN_CAP - c->len, MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
        return -1;
    if (n < 0)
        return 0;
    c->len += (size_t)n;
    uint8_t ans[2 + ANS_CAP];
    size_t off = 0;
    while (c->len - off >= 2) {
        size_t m = (size_t)c->in[off] << 8 | c->in[off + 1];
        if (c->len - off < 2 + m)
            break;
        atomic_fetch_add(&s->tcp_queries, 1);
        pthread_mutex_lock(&s->last_lock);
        s->last_len = (int)m;
        memcpy(s->last, c->in + off + 2, m < sizeof s->last ? m : sizeof s->last);
        pthread_mutex_unlock(&s->last_lock);
        int a = ts_dotserver_synth_answer(c->in + off + 2, m, ans + 2, ANS_CAP);
        off += 2 + m;
        if (a < 0)
            continue;
        ans[0] = (uint8_t)(a >> 8);
        ans[1] = (uint8_t)a;
        if (write_all(c->fd, ans, (size_t)a + 2) != 0)
            return -1;
    }
    memmove(c->in, c->in + off, c->len - off);
    c->len -= off;
    return 0;
}

static void udp_serve(ts_plainserver *s)
{
    uint8_t q[4096], ans[ANS_CAP];
    struct sockaddr_storage peer;
    socklen_t plen = sizeof peer;
    ssize_t n = recvfrom(s->udp, q, sizeof q, MSG_DONTWAIT, (struct sockaddr *)&peer, &plen);
    if (n <= 0)
        return;
    atomic_fetch_add(&s->udp_queries, 1);
    int a = ts_dotserver_synth_answer(q, (size_t)n, ans, sizeof ans);
    if (a > 0)
        (void)sendto(s->udp, ans, (size_t)a, 0, (struct sockaddr *)&peer, plen);
}

static void tcp_accept(ts_plainserver *s)
{
    int fd = accept4(s->tcp, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
        return;
    for (int i = 0; i < MAX_CONNS; i++) {
        if (s->conns[i].fd < 0 && (s->conns[i].in = malloc(IN_CAP)) != NULL) {
            s->conns[i].fd = fd;
            s->conns[i].len = 0;
            atomic_fetch_add(&s->connections, 1);
            return;
        }
    }
    close(fd);
}

static void *server_main(void *arg)
{
    ts_plainserver *s = arg;
    for (;;) {
        struct pollfd p[3 + MAX_CONNS];
        int map[3 + MAX_CONNS];
        nfds_t n = 0;
        p[n++] = (struct pollfd){.fd = s->wake[0], .events = POLLIN};
        p[n++] = (struct pollfd){.fd = s->tcp, .events = POLLIN};
        p[n++] = (struct pollfd){.fd = s->udp, .events = POLLIN};
        for (int i = 0; i < MAX_CONNS; i++) {
            if (s->conns[i].fd >= 0) {
                map[n] = i;
                p[n++] = (struct pollfd){.fd = s->conns[i].fd, .events = POLLIN};
            }
        }
        if (poll(p, n, -1) < 0) {
            if (errno == EINTR)
                continue;
            return NULL;
        }
        if (p[0].revents)
            return NULL;
        if (p[1].revents & POLLIN)
            tcp_accept(s);
        if (p[2].revents & POLLIN)
            udp_serve(s);
        for (nfds_t k = 3; k < n; k++)
            if (p[k].revents && conn_serve(s, &s->conns[map[k]]) != 0)
                conn_close(&s->conns[map[k]]);
    }
}

static int bind_loopback(int fd, uint16_t port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return bind(fd, (struct sockaddr *)&sa, sizeof sa);
}

static void server_free(ts_plainserver *s)
{
    for (int i = 0; i < MAX_CONNS; i++)
        if (s->conns[i].fd >= 0)
            conn_close(&s->conns[i]);
    if (s->tcp >= 0)
        close(s->tcp);
    if (s->udp >= 0)
        close(s->udp);
    if (s->wake[0] >= 0)
        close(s->wake[0]);
    if (s->wake[1] >= 0)
        close(s->wake[1]);
    pthread_mutex_destroy(&s->last_lock);
    free(s);
}

int ts_plainserver_start(ts_plainserver **out, uint16_t port)
{
    ts_plainserver *s = calloc(1, sizeof *s);
    if (s == NULL)
        return -1;
    s->tcp = s->udp = s->wake[0] = s->wake[1] = -1;
    s->last_len = -1;
    pthread_mutex_init(&s->last_lock, NULL);
    for (int i = 0; i < MAX_CONNS; i++)
        s->conns[i].fd = -1;
    if (pipe2(s->wake, O_CLOEXEC) != 0)
        goto fail;
    /* The kernel's free TCP port may be taken for UDP: try a few. */
    for (int tries = 0; tries < 20 && s->udp < 0; tries++) {
        if (s->tcp >= 0)
            close(s->tcp);
        s->tcp = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        int one = 1;
        if (s->tcp < 0 || setsockopt(s->tcp, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
            bind_loopback(s->tcp, port) != 0 || listen(s->tcp, 64) != 0)
            goto fail;
        struct sockaddr_in sa;
        socklen_t len = sizeof sa;
        if (getsockname(s->tcp, (struct sockaddr *)&sa, &len) != 0)
            goto fail;
        s->port = ntohs(sa.sin_port);
        int u = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (u < 0)
            goto fail;
        if (bind_loopback(u, s->port) == 0)
            s->udp = u;
        else if (close(u) == 0 && port != 0)
            goto fail;
    }
    if (s->udp < 0 || pthread_create(&s->thread, NULL, server_main, s) != 0)
        goto fail;
    *out = s;
    return 0;
fail:
    server_free(s);
    return -1;
}

uint16_t ts_plainserver_port(const ts_plainserver *s)
{
    return s->port;
}

void ts_plainserver_stop(ts_plainserver *s)
{
    if (s == NULL)
        return;
    char b = 0;
    if (write(s->wake[1], &b, 1) == 1)
        pthread_join(s->thread, NULL);
    server_free(s);
}

unsigned ts_plainserver_tcp_queries(const ts_plainserver *s)
{
    return atomic_load(&s->tcp_queries);
}

unsigned ts_plainserver_udp_queries(const ts_plainserver *s)
{
    return atomic_load(&s->udp_queries);
}

unsigned ts_plainserver_connections(const ts_plainserver *s)
{
    return atomic_load(&s->connections);
}

int ts_plainserver_last_query(ts_plainserver *s, uint8_t *buf, size_t cap)
{
    pthread_mutex_lock(&s->last_lock);
    int n = s->last_len;
    if (n > 0) {
        size_t k = (size_t)n < cap ? (size_t)n : cap;
        if (k > sizeof s->last)
            k = sizeof s->last;
        memcpy(buf, s->last, k);
    }
    pthread_mutex_unlock(&s->last_lock);
    return n;
}
