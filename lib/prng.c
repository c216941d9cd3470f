/* SPDX-License-Identifier: MIT */
/* SplitMix64: the state advances by a fixed odd constant (the golden ratio
 * in 64-bit fixed point), and each state is scrambled by two xor-shift-
 * multiply rounds; constants as published by Steele, Lea and Flood
 * ("Fast splittable pseudorandom number generators", OOPSLA 2014). */
#include "prng.h"

#include "siphash.h"

#define GOLDEN 0x9e3779b97f4a7c15u

void dp_prng_seed(struct dp_prng *p, uint64_t seed)
{
    p->state = seed;
}

void dp_prng_seed_random(struct dp_prng *p)
{
    uint64_t key[2];
    dp_siphash_key(key);
    p->state = key[0] ^ (key[1] * GOLDEN);
    key[0] = key[1] = 0;
}

uint64_t dp_prng_next(struct dp_prng *p)
{
    uint64_t z = (p->state += GOLDEN);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

uint64_t dp_prng_below(struct dp_prng *p, uint64_t n)
{
    if (n == 0)
        return 0;
    /* Values at or above the largest multiple of n would favour the low
     * remainders: draw again (at most half the range, so rarely). */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t v;
    do
        v = dp_prng_next(p);
    while (v >= limit);
    return v % n;
}
