/* SPDX-License-Identifier: MIT */
/* Input: one octet of flags (bit 0 strict, bit 1 an initial origin, bit 2
 * a layer too), then a zone in master-file format. The zone is loaded; a
 * strict load that passes must pass leniently too with nothing skipped and
 * the same rules. Then names and addresses cut from the input are matched,
 * and every local-data hit is answered into a buffer of exact size, whose
 * records are walked. With bit 2, a layer (dp_rpz_layer_new) is built over
 * the zone from the same text, naming as changed owners the first field of
 * every other line, and probed the same way (tombstones, layered lookups). */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "dotproxy/error.h"
#include "fuzz.h"
#include "rpz.h"

static void check_answer(const struct dp_rpz *z, const struct dp_rpz_hit *h, const uint8_t *q,
                         size_t qlen, uint16_t qtype)
{
    uint8_t *out = malloc(700); /* exact size: ASan sees any overrun */
    FUZZ_CHECK(out != NULL);
    uint16_t an = 0xffff;
    int len = dp_rpz_local_answer(z, h, q, qtype, out, 700, &an);
    if (len >= 0) {
        /* owner, type, class, ttl, rdlength, rdata per record */
        size_t o = 0;
        uint16_t n = 0;
        while (o < (size_t)len) {
            FUZZ_CHECK(o + qlen + 10 <= (size_t)len);
            FUZZ_CHECK(memcmp(out + o, q, qlen) == 0);
            o += qlen;
            size_t rdl = (size_t)out[o + 8] << 8 | out[o + 9];
            o += 10 + rdl;
            n++;
        }
        FUZZ_CHECK(o == (size_t)len && n == an);
    } else {
        FUZZ_CHECK(len == DOTPROXY_ENOSPC || len == DOTPROXY_EINVAL);
    }
    free(out);
}

struct first {
    char rule[256];
    size_t n;
};

static int note_first(const struct dp_rpz_hit *h, void *user)
{
    struct first *f = user;
    if (f->n++ == 0)
        memcpy(f->rule, h->rule_text, sizeof f->rule);
    return 0;
}

static void probe_name(const struct dp_rpz *z, const uint8_t *q)
{
    struct dp_rpz_hit h, scratch;
    struct first f = {.n = 0};
    size_t all = dp_rpz_match_qname_all(z, q, &scratch, note_first, &f);
    FUZZ_CHECK(all == f.n);
    if (!dp_rpz_match_qname(z, q, &h)) {
        FUZZ_CHECK(all == 0);
        return;
    }
    /* the walk over every covering rule starts with the winner */
    FUZZ_CHECK(all >= 1 && strcmp(f.rule, h.rule_text) == 0);
    FUZZ_CHECK(h.trigger == DP_RPZ_QNAME && h.action <= DP_RPZ_LOCAL);
    FUZZ_CHECK(memchr(h.rule_text, '\0', sizeof h.rule_text) != NULL);
    size_t qlen = 1;
    while (q[qlen - 1] != 0)
        qlen += q[qlen - 1] + 1u;
    if (h.action == DP_RPZ_LOCAL) {
        check_answer(z, &h, q, qlen, 1);
        check_answer(z, &h, q, qlen, 255);
    }
}

static void probe_all(const struct dp_rpz *z, const char *text, size_t len, const uint8_t *data);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int strict = data[0] & 1;
    const char *origin = (data[0] & 2) ? "rpz.fuzz" : NULL;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;

    struct dp_rpz *z = NULL;
    struct dp_rpz_diag d;
    int rc = dp_rpz_load_mem_origin(&z, "fuzz", text, len, origin, strict, &d);
    FUZZ_CHECK(memchr(d.error, '\0', sizeof d.error) != NULL);
    if (rc != 0) {
        FUZZ_CHECK(z == NULL && (rc == DOTPROXY_EMALFORMED || rc == DOTPROXY_ENOMEM));
        FUZZ_CHECK(rc != DOTPROXY_EMALFORMED || d.error[0] != '\0');
        return 0;
    }
    FUZZ_CHECK(z != NULL);
    if (strict) {
        struct dp_rpz *z2 = NULL;
        struct dp_rpz_diag d2;
        FUZZ_CHECK(dp_rpz_load_mem_origin(&z2, "fuzz", text, len, origin, 0, &d2) == 0);
        FUZZ_CHECK(d2.skipped == 0 && d2.error[0] == '\0');
        FUZZ_CHECK(dp_rpz_rule_count(z2) == dp_rpz_rule_count(z));
        dp_rpz_free(z2);
    } else {
        FUZZ_CHECK(d.skipped == 0 || d.error[0] != '\0');
    }

    probe_all(z, text, len, data);
    if (data[0] & 4) {
        char *owners = malloc(len + 1);
        FUZZ_CHECK(owners != NULL);
        size_t on = 0, line = 0;
        for (size_t i = 0; i < len; line++) {
            size_t e = i;
            while (e < len && text[e] != '\n')
                e++;
            size_t t = i;
            while (t < e && text[t] != ' ' && text[t] != '\t')
                t++;
            if (line % 2 == 0 && t > i && text[i] != '$') {
                memcpy(owners + on, text + i, t - i);
                on += t - i;
                owners[on++] = '\n';
            }
            i = e + 1;
        }
        struct dp_rpz *l = NULL;
        int lr = dp_rpz_layer_new(&l, z, text, len, owners, on, NULL);
        FUZZ_CHECK(lr == 0 || lr == DOTPROXY_ESTATE || lr == DOTPROXY_ENOMEM);
        if (lr == 0) {
            FUZZ_CHECK(dp_rpz_rule_count(l) <= dp_rpz_rule_count(z) + dp_rpz_layer_size(l));
            dp_rpz_free(z); /* the layer holds the base */
            z = l;
            probe_all(z, text, len, data);
        }
        free(owners);
    }
    dp_rpz_free(z);
    return 0;
}

static void probe_all(const struct dp_rpz *z, const char *text, size_t len, const uint8_t *data)
{
    /* Names: every run of letters, digits, '-' and '*' split at dots in the
     * input, as wire names (so the zone's own owners get probed). */
    uint8_t q[256];
    for (size_t i = 0; i < len;) {
        size_t o = 0, lab = 0;
        q[0] = 0;
        while (i < len && o + 2 < 250) {
            char c = text[i];
            int word = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                       c == '-' || c == '*' || c == '_';
            if (word && q[lab] < 63) {
                q[lab + 1 + q[lab]] = (uint8_t)c;
                q[lab]++;
                o = lab + 1 + q[lab];
            } else if (c == '.' && q[lab] > 0) {
                lab = o;
                q[lab] = 0;
            } else {
                break;
            }
            i++;
        }
        i++;
        if (q[lab] == 0 && lab > 0)
            o = lab;
        else if (q[lab] == 0)
            o = 0;
        q[o] = 0;
        probe_name(z, q);
        if (q[0] != 0) {
            /* one label deeper, for the wildcards */
            uint8_t deeper[256];
            size_t ql = 1;
            while (q[ql - 1] != 0)
                ql += q[ql - 1] + 1u;
            if (ql + 2 <= 255) {
                deeper[0] = 1;
                deeper[1] = 'x';
                memcpy(deeper + 2, q, ql);
                probe_name(z, deeper);
            }
        }
    }

    /* Addresses: windows of the input. */
    uint8_t root[1] = {0};
    for (size_t i = 0; i + 16 <= len; i += 5) {
        struct dp_rpz_hit h;
        if (dp_rpz_match_ip(z, AF_INET, data + 1 + i, &h) && h.action == DP_RPZ_LOCAL)
            check_answer(z, &h, root, 1, 28);
        if (dp_rpz_match_ip(z, AF_INET6, data + 1 + i, &h) && h.action == DP_RPZ_LOCAL)
            check_answer(z, &h, root, 1, 16);
    }
}
