/* SPDX-License-Identifier: MIT */
/* An outside program: built only from the installed headers and the flags
 * pkg-config gives, as C99, and run against the installed shared library.
 * check_pkgconfig.py compares its output line by line. */
#include <stdio.h>
#include <string.h>

#include <dotproxy/dotproxy.h>

int main(void)
{
    dotproxy_config *cfg = NULL;
    dotproxy_endpoint ep;
    char text[384];
    int r;

    /* The header the program was built with and the library it runs with
     * must agree. */
    printf("version %s %s\n", dotproxy_version(), DOTPROXY_VERSION_STRING);

    const char *known = dotproxy_strerror(DOTPROXY_EPORT);
    const char *unknown = dotproxy_strerror(-12345);
    printf("strerror %s\n",
           known != NULL && unknown != NULL && known[0] != '\0' && strcmp(known, unknown) != 0
               ? "distinct"
               : "broken");

    r = dotproxy_config_new(&cfg);
    printf("config_new %d %s\n", r, cfg != NULL ? "object" : "null");
    dotproxy_config_free(cfg);
    dotproxy_config_free(NULL);

    r = dotproxy_endpoint_parse(&ep, "[2606:4700::1111]#cloudflare-dns.com", DOTPROXY_DOT_PORT, 1);
    printf("endpoint_parse %d\n", r);
    if (r == 0 && dotproxy_endpoint_format(&ep, text, sizeof text) > 0)
        printf("endpoint_format %s\n", text);
    printf("endpoint_bad_port %d\n",
           dotproxy_endpoint_parse(&ep, "127.0.0.1@0", 53, 0) == DOTPROXY_EPORT);
    return 0;
}
