/* SPDX-License-Identifier: MIT */
#include "dnsclient.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

int ts_dns_name_to_wire(uint8_t *out, size_t cap, const char *name)
{
    if (out == NULL || name == NULL)
        return -EINVAL;
    size_t n = strlen(name);
    if (n == 1 && name[0] == '.')
        n = 0;
    else if (n > 0 && name[n - 1] == '.')
        n--;
    size_t w = 0;
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        while (j < n && name[j] != '.')
            j++;
        size_t lab = j - i;
        if (lab == 0 || lab > 63)
            return -EINVAL;
        if (w + 1 + lab + 1 > 255)
            return -EINVAL;
        if (w + 1 + lab > cap)
            return -ENOSPC;
        out[w++] = (uint8_t)lab;
        memcpy(out + w, name + i, lab);
        w += lab;
        i = j + 1;
    }
    if (w + 1 > cap)
        return -ENOSPC;
    out[w++] = 0;
    return (int)w;
}

int ts_dns_build_query(uint8_t *buf, size_t cap, uint16_t id, const char *name, uint16_t qtype,
                       int edns_udp_size)
{
    if (buf == NULL || name == NULL || edns_udp_size < 0 || edns_udp_size > 65535)
        return -EINVAL;
    if (cap < 12)
        return -ENOSPC;
    memset(buf, 0, 12);
    put16(buf, id);
    put16(buf + 2, TS_DNS_FLAG_RD);
    put16(buf + 4, 1);
    put16(buf + 10, edns_udp_size > 0 ? 1 : 0);
    int nl = ts_dns_name_to_wire(buf + 12, cap - 12, name);
    if (nl < 0)
        return nl;
    size_t off = 12 + (size_t)nl;
    if (off + 4 > cap)
        return -ENOSPC;
    put16(buf + off, qtype);
    put16(buf + off + 2, 1);
    off += 4;
    if (edns_udp_size > 0) {
        /* RFC 6891 6.1.2: root owner, TYPE OPT, CLASS = payload size, TTL =
         * extended rcode/version/flags (all zero), no RDATA. */
        if (off + 11 > cap)
            return -ENOSPC;
        buf[off] = 0;
        put16(buf + off + 1, TS_DNS_TYPE_OPT);
        put16(buf + off + 3, (uint16_t)edns_udp_size);
        memset(buf + off + 5, 0, 6);
        off += 11;
    }
    return (int)off;
}

/* ---- transport ----------------------------------------------------------- */

static struct sockaddr_in loopback(uint16_t port)
{
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_port = htons(port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return sin;
}

int64_t ts_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait for fd to become readable before the deadline: 1 ready, -ETIMEDOUT, -errno. */
static int wait_readable(int fd, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - ts_now_ms();
        if (left < 0)
            left = 0;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int r = poll(&p, 1, (int)left);
        if (r > 0)
            return 1;
        if (r == 0)
            return -ETIMEDOUT;
        if (errno != EINTR)
            return -errno;
    }
}

int ts_dns_udp_socket(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    struct sockaddr_in sin = loopback(port);
    if (connect(fd, (struct sockaddr *)&sin, sizeof sin) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

int ts_dns_udp_send(int fd, const uint8_t *msg, size_t len)
{
    ssize_t n;
    do
        n = send(fd, msg, len, 0);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return -errno;
    return (size_t)n == len ? 0 : -EMSGSIZE;
}

int ts_dns_udp_recv(int fd, uint8_t *buf, size_t cap, int timeout_ms)
{
    int64_t deadline = ts_now_ms() + timeout_ms;
    for (;;) {
        int r = wait_readable(fd, deadline);
        if (r < 0)
            return r;
        ssize_t n = recv(fd, buf, cap, MSG_DONTWAIT);
        if (n >= 0)
            return (int)n;
        if (errno != EINTR && errno != EAGAIN)
            return -errno;
    }
}

int ts_dns_udp_exchange(uint16_t port, const uint8_t *q, size_t qlen, uint8_t *ans, size_t cap,
                        int timeout_ms)
{
    int fd = ts_dns_udp_socket(port);
    if (fd < 0)
        return fd;
    int r = ts_dns_udp_send(fd, q, qlen);
    if (r == 0)
        r = ts_dns_udp_recv(fd, ans, cap, timeout_ms);
    close(fd);
    return r;
}

int ts_dns_tcp_connect(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in sin = loopback(port);
    int r;
    do
        r = connect(fd, (struct sockaddr *)&sin, sizeof sin);
    while (r < 0 && errno == EINTR);
    if (r < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

static int write_all(int fd, const uint8_t *p, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int ts_dns_tcp_send(int fd, const uint8_t *msg, size_t len)
{
    return ts_dns_tcp_send_many(fd, &msg, &len, 1);
}

int ts_dns_tcp_send_many(int fd, const uint8_t *const *msgs, const size_t *lens, size_t n)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (lens[i] == 0 || lens[i] > 65535)
            return -EINVAL;
        total += 2 + lens[i];
    }
    /* One buffer, one write: RFC 7766 8 asks senders to put the prefix and
     * the message in one write, and pipelining tests want them all at once. */
    uint8_t *buf = malloc(total ? total : 1);
    if (buf == NULL)
        return -ENOMEM;
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        put16(buf + off, (uint16_t)lens[i]);
        memcpy(buf + off + 2, msgs[i], lens[i]);
        off += 2 + lens[i];
    }
    int r = write_all(fd, buf, total);
    free(buf);
    return r;
}

/* Read exactly len octets before the deadline. Returns the count read (less
 * than len only at end of stream), -ETIMEDOUT or -errno. */
static int read_exact(int fd, uint8_t *p, size_t len, int64_t deadline)
{
    size_t got = 0;
    while (got < len) {
        int r = wait_readable(fd, deadline);
        if (r < 0)
            return r;
        ssize_t n = recv(fd, p + got, len - got, MSG_DONTWAIT);
        if (n == 0)
            break;
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            return -errno;
        }
        got += (size_t)n;
    }
    return (int)got;
}

int ts_dns_tcp_recv(int fd, uint8_t *buf, size_t cap, int timeout_ms)
{
    int64_t deadline = ts_now_ms() + timeout_ms;
    uint8_t pfx[2];
    int r = read_exact(fd, pfx, 2, deadline);
    if (r < 0)
        return r;
    if (r == 0)
        return 0;
    if (r < 2)
        return -EPROTO;
    size_t len = get16(pfx);
    if (len == 0)
        return -EPROTO;
    if (len > cap)
        return -EMSGSIZE;
    r = read_exact(fd, buf, len, deadline);
    if (r < 0)
        return r;
    return (size_t)r == len ? r : -EPROTO;
}

/* ---- inspection ---------------------------------------------------------- */

int ts_dns_id(const uint8_t *msg, size_t len)
{
    return len < 12 ? -1 : get16(msg);
}

int ts_dns_flags(const uint8_t *msg, size_t len)
{
    return len < 12 ? -1 : get16(msg + 2);
}

int ts_dns_rcode(const uint8_t *msg, size_t len)
{
    return len < 12 ? -1 : (msg[3] & 0x0f);
}

int ts_dns_count(const uint8_t *msg, size_t len, int which)
{
    if (len < 12 || which < 0 || which > 3)
        return -1;
    return get16(msg + 4 + 2 * which);
}

int ts_dns_ancount(const uint8_t *msg, size_t len)
{
    return ts_dns_count(msg, len, 1);
}

/* Offset just past the name at off (a pointer ends it), or -1. */
static long skip_name(const uint8_t *msg, size_t len, size_t off)
{
    for (unsigned labels = 0; labels < 128; labels++) {
        if (off >= len)
            return -1;
        uint8_t c = msg[off];
        if (c == 0)
            return (long)off + 1;
        if ((c & 0xc0) == 0xc0)
            return off + 2 <= len ? (long)off + 2 : -1;
        if (c & 0xc0)
            return -1;
        off += 1 + (size_t)c;
    }
    return -1;
}

int ts_dns_qname(const uint8_t *msg, size_t len, char *out, size_t cap)
{
    if (len < 12 || get16(msg + 4) == 0 || cap == 0)
        return -1;
    size_t off = 12, w = 0;
    /* Pointers only backwards, so a loop cannot last; the hop bound is belt
     * and braces against a message that points at itself. */
    for (unsigned hops = 0; hops < 128; hops++) {
        if (off >= len)
            return -1;
        uint8_t c = msg[off];
        if (c == 0) {
            if (w == 0) {
                if (cap < 2)
                    return -1;
                out[w++] = '.';
            }
            out[w] = '\0';
            return (int)w;
        }
        if ((c & 0xc0) == 0xc0) {
            if (off + 2 > len)
                return -1;
            size_t to = (size_t)(get16(msg + off) & 0x3fff);
            if (to >= off)
                return -1;
            off = to;
            continue;
        }
        if ((c & 0xc0) || off + 1 + c > len)
            return -1;
        if (w + (w ? 1 : 0) + c + 1 > cap)
            return -1;
        if (w)
            out[w++] = '.';
        memcpy(out + w, msg + off + 1, c);
        w += c;
        off += 1 + (size_t)c;
    }
    return -1;
}

/* Walk to the start of section which (1..3); returns the offset or -1. */
static long section_start(const uint8_t *msg, size_t len, int which)
{
    if (len < 12 || which < 1 || which > 3)
        return -1;
    size_t off = 12;
    for (unsigned i = 0, n = get16(msg + 4); i < n; i++) {
        long e = skip_name(msg, len, off);
        if (e < 0 || (size_t)e + 4 > len)
            return -1;
        off = (size_t)e + 4;
    }
    for (int s = 1; s < which; s++) {
        for (unsigned i = 0, n = get16(msg + 4 + 2 * s); i < n; i++) {
            long e = skip_name(msg, len, off);
            if (e < 0 || (size_t)e + 10 > len)
                return -1;
            size_t rdl = get16(msg + e + 8);
            off = (size_t)e + 10 + rdl;
            if (off > len)
                return -1;
        }
    }
    return (long)off;
}

int ts_dns_find_rr(const uint8_t *msg, size_t len, int which, uint16_t type, uint16_t *rdlen,
                   uint32_t *ttl)
{
    long start = section_start(msg, len, which);
    if (start < 0)
        return -1;
    size_t off = (size_t)start;
    for (unsigned i = 0, n = get16(msg + 4 + 2 * which); i < n; i++) {
        long e = skip_name(msg, len, off);
        if (e < 0 || (size_t)e + 10 > len)
            return -1;
        uint16_t rdl = get16(msg + e + 8);
        if ((size_t)e + 10 + rdl > len)
            return -1;
        if (get16(msg + e) == type) {
            if (rdlen)
                *rdlen = rdl;
            if (ttl)
                *ttl = (uint32_t)get16(msg + e + 4) << 16 | get16(msg + e + 6);
            return (int)e + 10;
        }
        off = (size_t)e + 10 + rdl;
    }
    return -1;
}

int ts_dns_first_a(const uint8_t *msg, size_t len, uint8_t addr[4])
{
    uint16_t rdl;
    int off = ts_dns_find_rr(msg, len, 1, TS_DNS_TYPE_A, &rdl, NULL);
    if (off < 0 || rdl != 4)
        return -1;
    memcpy(addr, msg + off, 4);
    return 0;
}

int ts_dns_opt_size(const uint8_t *msg, size_t len)
{
    long start = section_start(msg, len, 3);
    if (start < 0)
        return -1;
    size_t off = (size_t)start;
    for (unsigned i = 0, n = get16(msg + 10); i < n; i++) {
        long e = skip_name(msg, len, off);
        if (e < 0 || (size_t)e + 10 > len)
            return -1;
        if (get16(msg + e) == TS_DNS_TYPE_OPT)
            return get16(msg + e + 2);
        off = (size_t)e + 10 + get16(msg + e + 8);
    }
    return 0;
}

void ts_dns_expected_a_wire(const uint8_t *wire, size_t wlen, uint8_t addr[4])
{
    unsigned sum = 0;
    for (size_t i = 0; i < wlen; i++) {
        uint8_t c = wire[i];
        /* Length octets are < 64, so folding only 'A'..'Z' never touches them. */
        if (c >= 'A' && c <= 'Z')
            c = (uint8_t)(c - 'A' + 'a');
        sum += c;
    }
    addr[0] = 192;
    addr[1] = 0;
    addr[2] = 2;
    addr[3] = (uint8_t)(sum % 250 + 1);
}

int ts_dns_expected_a(const char *name, uint8_t addr[4])
{
    uint8_t wire[256];
    int n = ts_dns_name_to_wire(wire, sizeof wire, name);
    if (n < 0)
        return n;
    ts_dns_expected_a_wire(wire, (size_t)n, addr);
    return 0;
}
