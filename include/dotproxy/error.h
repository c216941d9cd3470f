/* SPDX-License-Identifier: MIT */
/* libdotproxy: error codes. Every fallible function returns 0 (or a count) on
 * success and one of these negative codes on failure. */
#ifndef DOTPROXY_ERROR_H
#define DOTPROXY_ERROR_H

#include "dotproxy/export.h"

#ifdef __cplusplus
extern "C" {
#endif

enum dotproxy_error {
    DOTPROXY_OK = 0,
    DOTPROXY_EINVAL = -1,     /* an argument is NULL, empty or out of range */
    DOTPROXY_ENOMEM = -2,     /* an allocation failed */
    DOTPROXY_ENOSPC = -3,     /* the caller's buffer is too small */
    DOTPROXY_EMALFORMED = -4, /* a DNS message or frame breaks the wire format */
    DOTPROXY_EADDR = -5,      /* an address in a spec is not an IPv4/IPv6 literal */
    DOTPROXY_EPORT = -6,      /* a port in a spec is not a number in 1..65535 */
    DOTPROXY_ENAME = -7,      /* a TLS name in a spec is not a valid host name */
    DOTPROXY_ESYS = -8,       /* a system call failed; errno says which */
    DOTPROXY_ETLS = -9,       /* TLS setup failed (credentials, CA file, priority) */
    DOTPROXY_ESTATE = -10,    /* the object is not in a state that allows this call */
    DOTPROXY_ELIMIT = -11,    /* a configured bound was reached */
    DOTPROXY_EBIND = -12,     /* a listen address could not be bound */
    DOTPROXY_ETIMEDOUT = -13, /* no answer before the query deadline */
    DOTPROXY_EUPSTREAM = -14, /* no upstream could be reached or answer */
};

/* A static English description of a dotproxy_error (never NULL). Thread-safe. */
DOTPROXY_EXPORT const char *dotproxy_strerror(int err);

#ifdef __cplusplus
}
#endif
#endif
