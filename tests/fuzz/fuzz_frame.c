/* SPDX-License-Identifier: MIT */
/* Input: two octets choosing the reassembly buffer size, then records of
 * {one octet chunk size, that many stream octets}. The stream is fed to a
 * dotproxy_frame chunk by chunk, as reads would deliver it, and every message
 * taken out is compared with a plain walk over the whole stream. */
#include <stdlib.h>
#include <string.h>

#include "dotproxy/dns.h"
#include "dotproxy/error.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    /* Mostly small buffers, where the interesting edges are; sometimes the
     * full 65537 that takes any message. */
    size_t sel = ((size_t)data[0] << 8) | data[1];
    size_t cap = (sel & 0x8000) ? 65537 : 3 + (sel % 700);
    data += 2;
    size -= 2;

    /* The stream is the concatenation of the chunk payloads. */
    uint8_t *stream = malloc(size + 1);
    size_t *chunks = malloc((size + 1) * sizeof(*chunks));
    uint8_t *buf = malloc(cap); /* exact size: ASan sees any overrun */
    FUZZ_CHECK(stream != NULL && chunks != NULL && buf != NULL);
    size_t slen = 0, nchunks = 0;
    for (size_t i = 0; i < size;) {
        size_t want = (size_t)data[i++] + 1;
        size_t take = size - i < want ? size - i : want;
        memcpy(stream + slen, data + i, take);
        slen += take;
        i += take;
        chunks[nchunks++] = take;
    }

    dotproxy_frame f;
    dotproxy_frame_init(&f, buf, cap);
    size_t ref = 0; /* reference position in the stream: next frame prefix */
    size_t fed = 0; /* stream octets committed so far */
    int dead = 0;
    for (size_t c = 0; c < nchunks && !dead; c++) {
        size_t left = chunks[c];
        while (left > 0 && !dead) {
            uint8_t *where = NULL;
            size_t room = dotproxy_frame_space(&f, &where);
            FUZZ_CHECK(where >= buf && room <= cap && (size_t)(where - buf) + room == cap);
            /* Zero only when a frame can never fit, which next() has
             * reported already (and we stop on that). */
            FUZZ_CHECK(room > 0);
            size_t n = left < room ? left : room;
            memcpy(where, stream + fed, n);
            dotproxy_frame_commit(&f, n);
            fed += n;
            left -= n;
            for (;;) {
                const uint8_t *msg = NULL;
                size_t len = 0;
                int rc = dotproxy_frame_next(&f, &msg, &len);
                size_t have = fed - ref;
                size_t plen = have >= 2 ? (((size_t)stream[ref] << 8) | stream[ref + 1]) : 0;
                if (rc == 0) {
                    FUZZ_CHECK(have < 2 || (plen > 0 && plen + 2 <= cap && have < plen + 2));
                    FUZZ_CHECK(dotproxy_frame_pending(&f) == have);
                    break;
                }
                if (rc < 0) {
                    FUZZ_CHECK(have >= 2);
                    FUZZ_CHECK((rc == DOTPROXY_EMALFORMED && plen == 0) ||
                               (rc == DOTPROXY_ENOSPC && plen + 2 > cap));
                    dead = 1;
                    break;
                }
                FUZZ_CHECK(rc == 1 && have >= 2 && len == plen && have >= plen + 2);
                FUZZ_CHECK(msg >= buf && msg + len <= buf + cap);
                FUZZ_CHECK(memcmp(msg, stream + ref + 2, len) == 0);
                ref += 2 + len;
            }
        }
    }
    free(buf);
    free(chunks);
    free(stream);
    return 0;
}
