/* SPDX-License-Identifier: MIT */
#include "siphash.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

static inline uint64_t rotl64(uint64_t x, unsigned b)
{
    return (x << b) | (x >> (64 - b));
}

struct sip {
    uint64_t v0, v1, v2, v3;
};

static inline void round1(struct sip *s)
{
    s->v0 += s->v1;
    s->v1 = rotl64(s->v1, 13);
    s->v1 ^= s->v0;
    s->v0 = rotl64(s->v0, 32);
    s->v2 += s->v3;
    s->v3 = rotl64(s->v3, 16);
    s->v3 ^= s->v2;
    s->v0 += s->v3;
    s->v3 = rotl64(s->v3, 21);
    s->v3 ^= s->v0;
    s->v2 += s->v1;
    s->v1 = rotl64(s->v1, 17);
    s->v1 ^= s->v2;
    s->v2 = rotl64(s->v2, 32);
}

static inline void init(struct sip *s, const uint64_t key[2])
{
    s->v0 = key[0] ^ 0x736f6d6570736575u;
    s->v1 = key[1] ^ 0x646f72616e646f6du;
    s->v2 = key[0] ^ 0x6c7967656e657261u;
    s->v3 = key[1] ^ 0x7465646279746573u;
}

static inline void compress(struct sip *s, uint64_t m)
{
    s->v3 ^= m;
    round1(s);
    s->v0 ^= m;
}

static inline uint64_t finish(struct sip *s)
{
    s->v2 ^= 0xff;
    round1(s);
    round1(s);
    round1(s);
    return s->v0 ^ s->v1 ^ s->v2 ^ s->v3;
}

uint64_t dp_siphash13(const uint64_t key[2], const uint8_t *p, size_t n)
{
    struct sip s;
    init(&s, key);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t m;
        memcpy(&m, p + i, sizeof m);
        compress(&s, le64toh(m));
    }
    uint64_t b = (uint64_t)n << 56;
    for (unsigned j = 0; i + j < n; j++)
        b |= (uint64_t)p[i + j] << (8 * j);
    compress(&s, b);
    return finish(&s);
}

uint64_t dp_siphash13_words(const uint64_t key[2], uint64_t m0, uint64_t m1)
{
    struct sip s;
    init(&s, key);
    compress(&s, m0);
    compress(&s, m1);
    compress(&s, (uint64_t)16 << 56);
    return finish(&s);
}

void dp_siphash_key(uint64_t key[2])
{
    uint64_t k[2] = {0, 0};
    size_t got = 0;
    while (got < sizeof k) {
        ssize_t n = getrandom((char *)k + got, sizeof k - got, GRND_NONBLOCK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    if (got < sizeof k) {
        int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            ssize_t n = read(fd, k, sizeof k);
            close(fd);
            got = n == (ssize_t)sizeof k ? sizeof k : 0;
        }
    }
    if (got < sizeof k) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        k[0] ^= (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        k[1] ^= (uint64_t)ts.tv_nsec ^ (uint64_t)(uintptr_t)key ^ ((uint64_t)getpid() << 32);
    }
    key[0] = k[0];
    key[1] = k[1];
}
