/* SPDX-License-Identifier: MIT */
#include "dotproxy/error.h"

DOTPROXY_EXPORT const char *dotproxy_strerror(int err)
{
    switch (err) {
    case DOTPROXY_OK: return "success";
    case DOTPROXY_EINVAL: return "invalid argument";
    case DOTPROXY_ENOMEM: return "out of memory";
    case DOTPROXY_ENOSPC: return "buffer too small";
    case DOTPROXY_EMALFORMED: return "malformed DNS message or frame";
    case DOTPROXY_EADDR: return "not an IPv4 or IPv6 address";
    case DOTPROXY_EPORT: return "port must be a number from 1 to 65535";
    case DOTPROXY_ENAME: return "not a valid TLS host name";
    case DOTPROXY_ESYS: return "system call failed";
    case DOTPROXY_ETLS: return "TLS setup failed";
    case DOTPROXY_ESTATE: return "operation not allowed in this state";
    case DOTPROXY_ELIMIT: return "configured limit reached";
    case DOTPROXY_EBIND: return "cannot bind listen address";
    case DOTPROXY_ETIMEDOUT: return "no answer before the deadline";
    case DOTPROXY_EUPSTREAM: return "no upstream could answer";
    default: return "unknown error";
    }
}
