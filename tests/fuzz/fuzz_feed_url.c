/* SPDX-License-Identifier: MIT */
/* The input is what a list server sends back as response headers, one line
 * per '\n' (several responses, as in a redirect chain). Whatever they say,
 * the validators kept are NUL-terminated printable ASCII that fit their
 * fields (they go back into request lines and into the state file's
 * header, where a CR or LF would inject), and the conditional request lines
 * made of them are single lines. The input, cut at its first NUL, is also a
 * URL as typed: one that passes the check is shown with no user
 * information and no query past "?...". */
#include <string.h>

#include "feed_url.h"
#include "fuzz.h"

static void check_text(const char *s, size_t cap)
{
    const char *end = memchr(s, '\0', cap);
    FUZZ_CHECK(end != NULL);
    for (const char *p = s; p < end; p++)
        FUZZ_CHECK((unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct dp_feed_url_validators v;
    memset(&v, 0, sizeof v);
    const char *p = (const char *)data;
    size_t left = size;
    while (left > 0) {
        const char *nl = memchr(p, '\n', left);
        size_t n = nl != NULL ? (size_t)(nl - p) : left;
        dp_feed_url_header_line(&v, p, n);
        check_text(v.etag, sizeof v.etag);
        check_text(v.last_modified, sizeof v.last_modified);
        if (nl == NULL)
            break;
        p = nl + 1;
        left -= n + 1;
    }
    char buf[2][400];
    const char *lines[3];
    dp_feed_url_conditional(&v, buf, lines);
    for (int i = 0; i < 3 && lines[i] != NULL; i++)
        check_text(lines[i], 400);

    char url[DP_FEED_URL_LEN_MAX + 2];
    size_t ul = strnlen((const char *)data, size < sizeof url - 1 ? size : sizeof url - 1);
    memcpy(url, data, ul);
    url[ul] = '\0';
    if (dp_feed_url_check(url) == 0) {
        char shown[DP_FEED_URL_LEN_MAX + 8];
        dp_feed_url_shown(url, shown, sizeof shown);
        check_text(shown, sizeof shown);
        FUZZ_CHECK(strlen(shown) <= ul + 3);
        const char *auth = strstr(shown, "://");
        FUZZ_CHECK(auth != NULL);
        auth += 3;
        FUZZ_CHECK(memchr(auth, '@', strcspn(auth, "/?#")) == NULL);
        const char *q = strchr(shown, '?');
        FUZZ_CHECK(q == NULL || strcmp(q, "?...") == 0);
        FUZZ_CHECK(strchr(shown, '#') == NULL);
    }
    return 0;
}
