/* SPDX-License-Identifier: MIT */
/* Upstream and listen specs: "ADDR[@PORT][#NAME]".
 *
 * Decisions the header leaves open, fixed here:
 * - IPv6 zone ids ("fe80::1%eth0") are rejected with DOTPROXY_EADDR: the
 *   endpoint has no portable place to keep an interface name, and a scope
 *   looked up with if_nametoindex() would not survive a format/parse round
 *   trip on another host.
 * - Brackets are for IPv6 only ("[1.2.3.4]" is DOTPROXY_EADDR). Anything
 *   between ']' and the '@' or '#' that follows is part of the address, so
 *   "[::1]853" is DOTPROXY_EADDR.
 * - One trailing dot of NAME is accepted and stripped ("dns.google." names the
 *   same host as "dns.google", and certificates carry the dotless form).
 * - Parts are checked left to right, so the first bad part is the one
 *   reported; a '#' when allow_name is 0 is DOTPROXY_ENAME.
 * - default_port is used as given, 0 included: a listen address may ask the
 *   kernel for a port, while a written "@0" stays DOTPROXY_EPORT. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "dotproxy/config.h"
#include "dotproxy/error.h"

/* RFC 1035 2.3.4 as presentation text: 255 wire octets are 253 characters
 * without the root's trailing dot. */
#define NAME_MAX_LEN  253
#define LABEL_MAX_LEN 63

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int is_ldh(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-';
}

static int parse_addr(const char *s, size_t len, struct sockaddr_storage *ss, socklen_t *sslen)
{
    char text[INET6_ADDRSTRLEN];
    int bracketed = 0;

    if (len >= 2 && s[0] == '[' && s[len - 1] == ']') {
        bracketed = 1;
        s++;
        len -= 2;
    }
    /* inet_pton needs a NUL-terminated copy; longer text cannot be a literal. */
    if (len == 0 || len >= sizeof text)
        return DOTPROXY_EADDR;
    memcpy(text, s, len);
    text[len] = '\0';

    memset(ss, 0, sizeof *ss);
    if (!bracketed && memchr(text, ':', len) == NULL) {
        struct sockaddr_in *sin = (struct sockaddr_in *)ss;
        if (inet_pton(AF_INET, text, &sin->sin_addr) != 1)
            return DOTPROXY_EADDR;
        sin->sin_family = AF_INET;
        *sslen = sizeof *sin;
        return 0;
    }
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET6, text, &sin6->sin6_addr) != 1)
        return DOTPROXY_EADDR;
    sin6->sin6_family = AF_INET6;
    *sslen = sizeof *sin6;
    return 0;
}

/* Plain decimal only: no sign, no blanks, nothing empty. */
static int parse_port(const char *s, size_t len, uint16_t *port)
{
    unsigned long v = 0;

    if (len == 0)
        return DOTPROXY_EPORT;
    for (size_t i = 0; i < len; i++) {
        if (!is_digit(s[i]))
            return DOTPROXY_EPORT;
        v = v * 10 + (unsigned long)(s[i] - '0');
        if (v > 65535)
            return DOTPROXY_EPORT;
    }
    if (v == 0)
        return DOTPROXY_EPORT;
    *port = (uint16_t)v;
    return 0;
}

/* Host name syntax (RFC 1123 2.1): LDH labels, no label starting or ending
 * with '-'. Underscores are refused: they never appear in certificate names. */
static int check_name(const char *s, size_t len)
{
    size_t label = 0;

    if (len > 0 && s[len - 1] == '.')
        len--;
    if (len == 0 || len > NAME_MAX_LEN)
        return DOTPROXY_ENAME;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || s[i] == '.') {
            if (label == 0 || s[i - 1] == '-')
                return DOTPROXY_ENAME;
            label = 0;
            continue;
        }
        if (!is_ldh(s[i]))
            return DOTPROXY_ENAME;
        if (label == 0 && s[i] == '-')
            return DOTPROXY_ENAME;
        if (++label > LABEL_MAX_LEN)
            return DOTPROXY_ENAME;
    }
    return (int)len;
}

DOTPROXY_EXPORT int dotproxy_endpoint_parse(dotproxy_endpoint *out, const char *spec,
                                            uint16_t default_port, int allow_name)
{
    dotproxy_endpoint ep;
    uint16_t port = default_port;
    int r;

    if (out == NULL || spec == NULL || spec[0] == '\0')
        return DOTPROXY_EINVAL;
    memset(&ep, 0, sizeof ep);

    /* Neither '#' nor '@' can occur in an address or a port, so the first of
     * each marks where the next part starts. */
    size_t total = strlen(spec);
    const char *hash = memchr(spec, '#', total);
    size_t head_len = hash ? (size_t)(hash - spec) : total;
    const char *at = memchr(spec, '@', head_len);
    size_t addr_len = at ? (size_t)(at - spec) : head_len;

    r = parse_addr(spec, addr_len, &ep.addr, &ep.addrlen);
    if (r < 0)
        return r;

    if (at != NULL) {
        r = parse_port(at + 1, head_len - addr_len - 1, &port);
        if (r < 0)
            return r;
    }
    if (ep.addr.ss_family == AF_INET)
        ((struct sockaddr_in *)&ep.addr)->sin_port = htons(port);
    else
        ((struct sockaddr_in6 *)&ep.addr)->sin6_port = htons(port);

    if (hash != NULL) {
        if (!allow_name)
            return DOTPROXY_ENAME;
        r = check_name(hash + 1, total - head_len - 1);
        if (r < 0)
            return r;
        memcpy(ep.name, hash + 1, (size_t)r);
        ep.name[r] = '\0';
    }

    *out = ep;
    return 0;
}

DOTPROXY_EXPORT int dotproxy_endpoint_format(const dotproxy_endpoint *ep, char *buf, size_t cap)
{
    /* "[" 45 "]@65535#" 255 NUL fits with room to spare. */
    char text[INET6_ADDRSTRLEN];
    char out[384];
    unsigned port;
    int n;

    if (ep == NULL || buf == NULL)
        return DOTPROXY_EINVAL;
    if (memchr(ep->name, '\0', sizeof ep->name) == NULL)
        return DOTPROXY_EINVAL;

    if (ep->addr.ss_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)&ep->addr;
        if (inet_ntop(AF_INET, &sin->sin_addr, text, sizeof text) == NULL)
            return DOTPROXY_EINVAL;
        port = ntohs(sin->sin_port);
        n = snprintf(out, sizeof out, "%s@%u", text, port);
    } else if (ep->addr.ss_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&ep->addr;
        if (inet_ntop(AF_INET6, &sin6->sin6_addr, text, sizeof text) == NULL)
            return DOTPROXY_EINVAL;
        port = ntohs(sin6->sin6_port);
        n = snprintf(out, sizeof out, "[%s]@%u", text, port);
    } else {
        return DOTPROXY_EINVAL;
    }
    if (ep->name[0] != '\0')
        n += snprintf(out + n, sizeof out - (size_t)n, "#%s", ep->name);

    /* The caller's buffer is written only on success. */
    if ((size_t)n >= cap)
        return DOTPROXY_ENOSPC;
    memcpy(buf, out, (size_t)n + 1);
    return n;
}
