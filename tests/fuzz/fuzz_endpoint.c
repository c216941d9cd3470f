/* SPDX-License-Identifier: MIT */
/* The input, cut at its first NUL, is an ADDR[@PORT][#NAME] spec as a user
 * would type it. Parsing must never read past the string; what parses must
 * format within the documented size and parse back to the same endpoint. */
#include <stdlib.h>
#include <string.h>

#include "dotproxy/config.h"
#include "dotproxy/error.h"
#include "fuzz.h"

static int same_endpoint(const dotproxy_endpoint *a, const dotproxy_endpoint *b)
{
    return a->addrlen == b->addrlen && memcmp(&a->addr, &b->addr, a->addrlen) == 0 &&
           strcmp(a->name, b->name) == 0;
}

static void check_spec(const char *spec, int allow_name)
{
    dotproxy_endpoint ep, back;
    int rc = dotproxy_endpoint_parse(&ep, spec, 853, allow_name);
    FUZZ_CHECK(rc == 0 || rc == DOTPROXY_EINVAL || rc == DOTPROXY_EADDR || rc == DOTPROXY_EPORT ||
               rc == DOTPROXY_ENAME);
    if (rc != 0)
        return;
    FUZZ_CHECK(ep.addr.ss_family == AF_INET || ep.addr.ss_family == AF_INET6);
    FUZZ_CHECK(memchr(ep.name, '\0', sizeof(ep.name)) != NULL);
    if (!allow_name)
        FUZZ_CHECK(ep.name[0] == '\0');

    char text[384];
    int n = dotproxy_endpoint_format(&ep, text, sizeof(text));
    FUZZ_CHECK(n > 0 && (size_t)n < sizeof(text) && strlen(text) == (size_t)n);
    if (ep.name[0] == '\0')
        FUZZ_CHECK(n < 128);
    FUZZ_CHECK(dotproxy_endpoint_parse(&back, text, 1, 1) == 0);
    FUZZ_CHECK(same_endpoint(&ep, &back));

    /* Every smaller buffer: ENOSPC or the same text, never an overrun
     * (each buffer is allocated to its exact size for ASan). */
    for (size_t cap = 0; cap <= (size_t)n; cap++) {
        char *small = malloc(cap > 0 ? cap : 1);
        FUZZ_CHECK(small != NULL);
        int m = dotproxy_endpoint_format(&ep, small, cap);
        FUZZ_CHECK(m == DOTPROXY_ENOSPC);
        free(small);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Exact-size copy so a read past the terminator is caught. */
    char *spec = malloc(size + 1);
    FUZZ_CHECK(spec != NULL);
    memcpy(spec, data, size);
    spec[size] = '\0';
    check_spec(spec, 1);
    check_spec(spec, 0);
    free(spec);
    return 0;
}
