/* SPDX-License-Identifier: MIT */
/* Unit-test support: a tiny builder of DNS messages, octet by octet, so that
 * each test states exactly the wire form it feeds the code (including forms
 * no library would produce). Overflowing the buffer fails the test. */
#ifndef TS_MSGBUILD_H
#define TS_MSGBUILD_H

#include <check.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct msg {
    uint8_t b[70000]; /* room for messages over 65,535 octets, to test the limit */
    size_t n;
};

static inline void m_u8(struct msg *m, unsigned v)
{
    ck_assert_uint_lt(m->n, sizeof(m->b));
    m->b[m->n++] = (uint8_t)v;
}

static inline void m_u16(struct msg *m, unsigned v)
{
    m_u8(m, (v >> 8) & 0xFF);
    m_u8(m, v & 0xFF);
}

static inline void m_u32(struct msg *m, unsigned long v)
{
    m_u16(m, (unsigned)((v >> 16) & 0xFFFF));
    m_u16(m, (unsigned)(v & 0xFFFF));
}

static inline void m_bytes(struct msg *m, const void *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        m_u8(m, ((const uint8_t *)p)[i]);
}

/* Overwrite the 16-bit field at octet `at` (a count or RDLENGTH written
 * before its value was known). */
static inline void m_put16(struct msg *m, size_t at, unsigned v)
{
    m->b[at] = (uint8_t)(v >> 8);
    m->b[at + 1] = (uint8_t)(v & 0xFF);
}

/* Labels of a dotted name, without the root octet (so a pointer may follow). */
static inline void m_labels(struct msg *m, const char *dotted)
{
    const char *p = dotted;
    while (*p != '\0') {
        const char *dot = strchr(p, '.');
        size_t l = dot != NULL ? (size_t)(dot - p) : strlen(p);
        m_u8(m, (unsigned)l);
        m_bytes(m, p, l);
        p += l;
        if (*p == '.')
            p++;
    }
}

/* A whole uncompressed name: its labels and the root. */
static inline void m_name(struct msg *m, const char *dotted)
{
    m_labels(m, dotted);
    m_u8(m, 0);
}

/* A fresh message: the header with the given counts (patch them later with
 * m_put16 at 4, 6, 8, 10 when they are not known yet). */
static inline void m_header(struct msg *m, unsigned id, unsigned flags, unsigned qd, unsigned an,
                            unsigned ns, unsigned ar)
{
    m->n = 0;
    m_u16(m, id);
    m_u16(m, flags);
    m_u16(m, qd);
    m_u16(m, an);
    m_u16(m, ns);
    m_u16(m, ar);
}

#endif
