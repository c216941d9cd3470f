/* SPDX-License-Identifier: MIT */
/* Octets of DNS messages: 16- and 32-bit fields in network byte order (RFC
 * 1035 2.3.2, most significant octet first) at any alignment, and the ASCII
 * letter case that name comparisons ignore (RFC 4343: ASCII letters only,
 * never other octets). One home for what every DNS module needs. */
#ifndef DP_BYTES_H
#define DP_BYTES_H

#include <stdint.h>

static inline uint16_t dp_get16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

static inline uint32_t dp_get32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static inline void dp_put16(uint8_t *p, unsigned v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static inline void dp_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* c with an upper-case ASCII letter made lower case; anything else as is. */
static inline uint8_t dp_lower(uint8_t c)
{
    return (c >= 'A' && c <= 'Z') ? (uint8_t)(c | 0x20) : c;
}

#endif
