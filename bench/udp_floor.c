/* SPDX-License-Identifier: MIT */
/* udp_floor - the least a UDP DNS server can do per query on this kernel.
 *
 *   udp_floor PORT [THREADS]
 *
 * Answers every query on 127.0.0.1:PORT with one A record (192.0.2.1, TTL
 * 300) after its question, batched as dotproxyd batches (recvmmsg of up to
 * 32 datagrams, one sendmmsg for their answers). No cache, no parsing beyond
 * the question, no policy: what it costs per query is the kernel's UDP
 * receive and send (which on loopback includes delivering the answer into
 * the client's socket and waking it), the floor under any DNS front end's
 * "CPU per query" here. bench/floor.sh runs it beside dotproxyd's cache.
 *
 * THREADS (default 1) threads each serve their own socket, bound to the same
 * port with SO_REUSEPORT, as dotproxyd's workers do: what a second worker
 * costs when there is no work but the kernel's.
 *
 * Queries without exactly one question, or shorter than a header, are
 * dropped. Runs until killed. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum { BATCH = 32, BUF = 1232 };

/* Length of header + question, or 0 when the question is not one plain
 * name (compression in a question is legal but no client sends it). */
static size_t question_end(const uint8_t *m, size_t len)
{
    if (len < 12 || m[4] != 0 || m[5] != 1)
        return 0;
    size_t off = 12;
    while (off < len && m[off] != 0) {
        if (m[off] > 63)
            return 0;
        off += 1u + m[off];
    }
    off += 1u + 4u; /* root label, type, class */
    return off <= len ? off : 0;
}

static int port;

static void *serve(void *arg)
{
    (void)arg;
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    int one = 1, rcvbuf = 4 << 20;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        perror("udp_floor: bind");
        exit(1);
    }
    uint8_t(*buf)[BUF] = malloc(sizeof(uint8_t[BATCH][BUF]));
    struct sockaddr_in peer[BATCH];
    struct iovec iov[BATCH];
    struct mmsghdr in[BATCH], out[BATCH];
    static const uint8_t rr[] = {0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0x01, 0x2c, 0, 4, 192, 0, 2, 1};
    if (buf == NULL) {
        perror("udp_floor: malloc");
        exit(1);
    }
    for (;;) {
        for (int i = 0; i < BATCH; i++) {
            iov[i] = (struct iovec){.iov_base = buf[i], .iov_len = BUF};
            in[i].msg_hdr = (struct msghdr){.msg_name = &peer[i],
                                            .msg_namelen = sizeof peer[i],
                                            .msg_iov = &iov[i],
                                            .msg_iovlen = 1};
        }
        int n = recvmmsg(fd, in, BATCH, MSG_WAITFORONE, NULL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            perror("udp_floor: recvmmsg");
            exit(1);
        }
        int k = 0;
        for (int i = 0; i < n; i++) {
            uint8_t *m = buf[i];
            size_t q = question_end(m, in[i].msg_len);
            if (q == 0 || (m[2] & 0x80) || q + sizeof rr > BUF)
                continue;
            m[2] = (uint8_t)(0x80 | (m[2] & 0x79)); /* QR, opcode and RD kept */
            m[3] = 0x80;                            /* RA, NOERROR */
            m[6] = 0, m[7] = 1;                     /* ANCOUNT 1 */
            m[8] = m[9] = m[10] = m[11] = 0;        /* no NS, no additional */
            memcpy(m + q, rr, sizeof rr);
            iov[i].iov_len = q + sizeof rr;
            out[k].msg_hdr = in[i].msg_hdr;
            k++;
        }
        for (int off = 0; off < k;) {
            int s = sendmmsg(fd, out + off, (unsigned)(k - off), 0);
            if (s < 0) {
                if (errno == EINTR)
                    continue;
                break; /* a full client buffer: drop the rest, as a server would */
            }
            off += s;
        }
    }
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: udp_floor PORT [THREADS]\n");
        return 2;
    }
    port = atoi(argv[1]);
    int threads = argc == 3 ? atoi(argv[2]) : 1;
    if (port <= 0 || port > 65535) {
        fprintf(stderr, "udp_floor: bad port '%s'\n", argv[1]);
        return 2;
    }
    if (threads < 1 || threads > 256) {
        fprintf(stderr, "udp_floor: bad thread count '%s'\n", argv[2]);
        return 2;
    }
    for (int i = 1; i < threads; i++) {
        pthread_t t;
        if (pthread_create(&t, NULL, serve, NULL) != 0) {
            fprintf(stderr, "udp_floor: cannot start thread %d\n", i);
            return 1;
        }
    }
    serve(NULL);
    return 0;
}
