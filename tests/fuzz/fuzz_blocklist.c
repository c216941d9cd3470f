/* SPDX-License-Identifier: MIT */
/* Input: list text. Each line goes through the list parser; every name it
 * hands out is added to a name set, and then must match itself and a name
 * one label below it, in any letter case, and its parent must not match
 * through it (suffix semantics, case-insensitive). The raw input is also
 * read as a wire name by the suffix hasher and looked up, which must never
 * read past it. */
#include <stdlib.h>
#include <string.h>

#include "blocklist.h"
#include "fuzz.h"
#include "nameset.h"

struct names {
    struct dp_nameset *set;
    uint8_t wire[64][256];
    size_t len[64];
    size_t n;
};

static int take(void *user, const uint8_t *wire, size_t len, int exception)
{
    struct names *s = user;
    (void)exception;
    FUZZ_CHECK(len >= 2 && len <= 255 && wire[len - 1] == 0);
    struct dp_name_hashes h;
    FUZZ_CHECK(dp_name_hashes_make(&h, wire, len) == 0 && h.n > 0);
    FUZZ_CHECK(dp_nameset_add_tld(s->set, h.fp[0], h.n, h.fp[h.n - 1]) >= 0);
    if (s->n < 64) {
        memcpy(s->wire[s->n], wire, len);
        s->len[s->n++] = len;
    }
    return 0;
}

static int match_of(const struct dp_nameset *set, const uint8_t *wire, size_t len)
{
    struct dp_name_hashes h;
    FUZZ_CHECK(dp_name_hashes_make(&h, wire, len) == 0);
    return dp_nameset_match(set, &h);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct names s = {.set = dp_nameset_new(0)};
    FUZZ_CHECK(s.set != NULL);
    const char *text = (const char *)data;
    for (size_t i = 0; i < size;) {
        const char *nl = memchr(text + i, '\n', size - i);
        size_t n = nl != NULL ? (size_t)(nl - (text + i)) : size - i;
        int kind = dp_list_parse_line(text + i, n, take, &s, NULL);
        FUZZ_CHECK(kind >= DP_LINE_EMPTY && kind <= DP_LINE_BAD);
        i += n + 1;
    }
    dp_nameset_seal(s.set);
    for (size_t k = 0; k < s.n; k++) {
        uint8_t *w = s.wire[k];
        size_t len = s.len[k];
        FUZZ_CHECK(match_of(s.set, w, len) >= 0);
        /* Upper-cased, it is the same name. */
        uint8_t up[256];
        for (size_t i = 0; i < len; i++)
            up[i] = (uint8_t)(w[i] >= 'a' && w[i] <= 'z' ? w[i] - 32 : w[i]);
        FUZZ_CHECK(match_of(s.set, up, len) >= 0);
        /* One label below: matched at label 1 or more specific. */
        if (len + 2 <= 255) {
            uint8_t below[256] = {1, 'z'};
            memcpy(below + 2, w, len);
            FUZZ_CHECK(match_of(s.set, below, len + 2) >= 0);
        }
    }
    /* The input itself as a wire name: never read beyond it. */
    uint8_t *copy = malloc(size + 1); /* exact size: ASan sees an overrun */
    FUZZ_CHECK(copy != NULL);
    memcpy(copy, data, size);
    struct dp_name_hashes h;
    if (size > 0 && dp_name_hashes_make(&h, copy, size) == 0)
        (void)dp_nameset_match(s.set, &h);
    free(copy);
    dp_nameset_free(s.set);
    return 0;
}
