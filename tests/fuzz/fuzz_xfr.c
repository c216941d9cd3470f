/* SPDX-License-Identifier: MIT */
/* Input: one octet of flags (bit 0: the query was an IXFR from serial 1;
 * bit 1: a zone of serial 1 is held, so differences have something to
 * apply to), then transfer messages for "rpz.test." with id 0x1234, each
 * behind a two-octet length (as on TCP). Messages are read until the
 * transfer completes or fails; a complete one is applied, written in
 * master-file form, read back (same records, same serial) and handed to
 * the RPZ parser as the engine would. */
#include <stdio.h>
#include <string.h>

#include "dotproxy/error.h"
#include "fuzz.h"
#include "rpz.h"
#include "xfr.h"

static const char base[] = "; zone transfer copy, serial 1, 3 records\n"
                           "rpz.test. 60 IN SOA ns.rpz.test. admin.rpz.test. 1 3600 600 86400 60\n"
                           "bad.example.rpz.test. 60 IN CNAME .\n"
                           "rpz.test. 60 IN NS localhost.\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static const uint8_t zone[] = "\x03rpz\x04test";
    struct dp_zone_set z;
    dp_zone_set_init(&z);
    if (data[0] & 2)
        FUZZ_CHECK(dp_zone_set_read(&z, base, sizeof base - 1) == 0 && z.serial == 1 && z.n == 2);
    struct dp_xfr x;
    dp_xfr_begin(&x, 0x1234, zone, data[0] & 1, 1);
    size_t off = 1;
    int r = 0;
    while (r == 0 && off + 2 <= size) {
        size_t len = (size_t)data[off] << 8 | data[off + 1];
        off += 2;
        if (len > size - off)
            len = size - off;
        uint8_t *msg = malloc(len + 1); /* exact size: ASan sees any overrun */
        FUZZ_CHECK(msg != NULL);
        memcpy(msg, data + off, len);
        r = dp_xfr_msg(&x, msg, len);
        free(msg);
        off += len;
        FUZZ_CHECK(r <= 1);
        if (r < 0)
            FUZZ_CHECK(x.err[0] != '\0');
    }
    if (r == 1) {
        FUZZ_CHECK(x.kind >= DP_XFR_UPTODATE && x.kind <= DP_XFR_INCR);
        int a = dp_xfr_apply(&x, &z);
        FUZZ_CHECK(a == 0 || a == DOTPROXY_EINVAL || a == DOTPROXY_EMALFORMED);
        if (a == 0 && z.soa != NULL) {
            char *text = NULL;
            size_t tlen = 0;
            FILE *f = open_memstream(&text, &tlen);
            FUZZ_CHECK(f != NULL);
            FUZZ_CHECK(dp_zone_set_write(&z, f) == 0);
            FUZZ_CHECK(fclose(f) == 0);
            struct dp_zone_set back;
            dp_zone_set_init(&back);
            FUZZ_CHECK(dp_zone_set_read(&back, text, tlen) == 0);
            FUZZ_CHECK(back.n == z.n && back.serial == z.serial);
            for (size_t i = 0; i < z.cap; i++)
                if (z.slot[i] != NULL)
                    FUZZ_CHECK(dp_zone_set_del(&back, z.slot[i]->key, z.slot[i]->len) == 0);
            FUZZ_CHECK(back.n == 0);
            dp_zone_set_clear(&back);
            struct dp_rpz *rz = NULL;
            if (dp_rpz_load_mem(&rz, "fuzz", text, tlen, 0, NULL) == 0)
                dp_rpz_free(rz);
            free(text);
        }
    }
    dp_xfr_end(&x);
    dp_zone_set_clear(&z);
    return 0;
}
