/* SPDX-License-Identifier: MIT */
/* A small pseudo-random generator per context, for what must only look
 * random to the outside (backoff jitter, so that many proxies do not probe
 * a recovering resolver in lockstep): never for secrets, which come from the
 * kernel. One per context, so no lock and no shared state between workers
 * (unlike rand(), which a library must not use); seedable, so tests can
 * replay a run. The generator is SplitMix64 (a Weyl sequence through a
 * 64-bit finaliser): one word of state, every value once per 2^64 steps. */
#ifndef DP_PRNG_H
#define DP_PRNG_H

#include <stdint.h>

struct dp_prng {
    uint64_t state;
};

/* A fixed seed (tests). */
void dp_prng_seed(struct dp_prng *p, uint64_t seed);
/* A seed nobody can guess, from the same source as the hash keys
 * (siphash.h: getrandom, /dev/urandom, then clocks). */
void dp_prng_seed_random(struct dp_prng *p);
uint64_t dp_prng_next(struct dp_prng *p);
/* Uniform in [0, n); 0 when n is 0. Unbiased (rejection of the short
 * last stretch). */
uint64_t dp_prng_below(struct dp_prng *p, uint64_t n);

#endif
