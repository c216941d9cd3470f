/* SPDX-License-Identifier: MIT */
/* The 2-octet length framing of DNS over TCP (RFC 1035 4.2.2) and TLS
 * (RFC 7858 3.3): reassembly over one caller buffer, no allocation.
 *
 * Invariant: 0 <= head <= tail <= cap. Bytes [head, tail) are held and not
 * yet returned; returned messages stay in place until dotproxy_frame_space()
 * compacts the buffer, which is why that call invalidates them. */
#include <assert.h>
#include <string.h>

#include "dotproxy/dns.h"

#include "bytes.h"
#include "dotproxy/error.h"

#define PREFIX_SIZE 2u

DOTPROXY_EXPORT void dotproxy_frame_init(dotproxy_frame *f, uint8_t *buf, size_t cap)
{
    /* No error return in the contract: a bad argument is a caller bug. */
    assert(f != NULL);
    assert(buf != NULL);
    assert(cap >= PREFIX_SIZE + 1);
    f->buf = buf;
    f->cap = cap;
    f->head = 0;
    f->tail = 0;
}

DOTPROXY_EXPORT size_t dotproxy_frame_space(dotproxy_frame *f, uint8_t **where)
{
    assert(f != NULL && where != NULL);
    assert(f->head <= f->tail && f->tail <= f->cap);
    if (f->head == f->tail) {
        /* The common case on a request/answer stream: nothing left over. */
        f->head = 0;
        f->tail = 0;
    } else if (f->head > 0) {
        /* Move the partial message to the front so that a frame of up to
         * cap - 2 octets always fits whole, whatever its start offset was. */
        memmove(f->buf, f->buf + f->head, f->tail - f->head);
        f->tail -= f->head;
        f->head = 0;
    }
    *where = f->buf + f->tail;
    return f->cap - f->tail;
}

DOTPROXY_EXPORT void dotproxy_frame_commit(dotproxy_frame *f, size_t n)
{
    assert(f != NULL);
    assert(n <= f->cap - f->tail);
    f->tail += n;
}

DOTPROXY_EXPORT int dotproxy_frame_next(dotproxy_frame *f, const uint8_t **msg, size_t *len)
{
    if (f == NULL || msg == NULL || len == NULL)
        return DOTPROXY_EINVAL;
    size_t avail = f->tail - f->head;
    if (avail < PREFIX_SIZE)
        return 0;
    size_t n = dp_get16(f->buf + f->head);
    /* A zero-length frame carries no DNS message; RFC 7766 gives no way to
     * resynchronise, so the stream is dead. head is not moved, so the error
     * repeats on every later call. */
    if (n == 0)
        return DOTPROXY_EMALFORMED;
    if (n > f->cap - PREFIX_SIZE)
        return DOTPROXY_ENOSPC;
    if (avail - PREFIX_SIZE < n)
        return 0;
    *msg = f->buf + f->head + PREFIX_SIZE;
    *len = n;
    f->head += PREFIX_SIZE + n;
    return 1;
}

DOTPROXY_EXPORT size_t dotproxy_frame_pending(const dotproxy_frame *f)
{
    if (f == NULL)
        return 0;
    /* Whole messages not yet taken out are not "pending": skip over them so
     * that a caller checking for a half-sent message at EOF gets it right
     * even before draining with dotproxy_frame_next(). */
    size_t pos = f->head;
    while (f->tail - pos >= PREFIX_SIZE) {
        size_t n = dp_get16(f->buf + pos);
        if (n == 0 || f->tail - pos - PREFIX_SIZE < n)
            break;
        pos += PREFIX_SIZE + n;
    }
    return f->tail - pos;
}

DOTPROXY_EXPORT int dotproxy_frame_put_prefix(uint8_t out[2], size_t len)
{
    if (out == NULL || len == 0 || len > DOTPROXY_DNS_MAX_SIZE)
        return DOTPROXY_EINVAL;
    dp_put16(out, (unsigned)len);
    return 0;
}
