// SPDX-License-Identifier: MIT
// The public API used from C++: the umbrella header compiles, and the calls
// link against the C library only if every declaration has C linkage.
#include <cstdio>
#include <cstring>

#include <dotproxy/dotproxy.h>

int main()
{
    dotproxy_endpoint ep;
    char text[128];

    if (std::strcmp(dotproxy_version(), DOTPROXY_VERSION_STRING) != 0) {
        std::fprintf(stderr, "header says %s, library says %s\n", DOTPROXY_VERSION_STRING,
                     dotproxy_version());
        return 1;
    }
    if (dotproxy_endpoint_parse(&ep, "::1@5353", DOTPROXY_DNS_PORT, 0) != 0)
        return 1;
    if (dotproxy_endpoint_format(&ep, text, sizeof text) <= 0)
        return 1;
    if (std::strcmp(text, "[::1]@5353") != 0) {
        std::fprintf(stderr, "formatted %s: %s\n", text, dotproxy_strerror(DOTPROXY_OK));
        return 1;
    }
    return 0;
}
