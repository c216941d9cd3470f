/* SPDX-License-Identifier: MIT */
/* SipHash-1-3 with a secret per-process key: hash tables indexed by what
 * clients choose (names, addresses) cannot be aimed at one bucket. One
 * compression round per word is plenty for table indexing. */
#ifndef DP_SIPHASH_H
#define DP_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

/* A fresh random key: getrandom without blocking (at early boot the pool
 * may not be ready and a resolver must not wait), then /dev/urandom, then
 * clocks and addresses as a last resort (a weaker key only makes aimed
 * collisions possible, which the tables' eviction bounds anyway). */
void dp_siphash_key(uint64_t key[2]);

/* The hash of p[0..n), bytes read little-endian as the reference does. */
uint64_t dp_siphash13(const uint64_t key[2], const uint8_t *p, size_t n);

/* The hash of two 64-bit words (an address), as numbers: the value never
 * leaves the process, only its unpredictability matters. */
uint64_t dp_siphash13_words(const uint64_t key[2], uint64_t m0, uint64_t m1);

#endif
