/* SPDX-License-Identifier: MIT */
/* The anomaly detectors' arithmetic, with no state of their own: the rule
 * grammar, the decayed-rate estimator, what a name looks like (label
 * lengths, character entropy) and the tunnel score. lib/dynblock.c keeps
 * the tables; docs/anomaly.md explains the model. */
#ifndef DP_ANOMALY_H
#define DP_ANOMALY_H

#include <stddef.h>
#include <stdint.h>

enum dp_anomaly_metric {
    DP_AM_QPS = 0,
    DP_AM_NXDOMAIN,
    DP_AM_SERVFAIL,
    DP_AM_BYTES,
    DP_AM_QTYPE,
    DP_AM_SUBDOMAINS,
    DP_AM_TUNNEL,
    DP_AM_COUNT
};

/* Detector names, indexed by enum dp_anomaly_metric ("qps", ...). */
extern const char *const dp_anomaly_metric_names[DP_AM_COUNT];

#define DP_DYNRULE_TEXT 96

/* One --dynblock rule, parsed. */
struct dp_dynrule {
    uint8_t metric;       /* enum dp_anomaly_metric */
    uint8_t action;       /* DOTPROXY_DYNBLOCK_LOG .. _TRUNCATE */
    uint8_t mask4, mask6; /* client grouping (prefix lengths) */
    uint16_t qtype;       /* DP_AM_QTYPE */
    uint8_t implicit;     /* a default detector, not given by the user */
    double threshold;     /* per second; the score for tunnel */
    unsigned window_s, for_s;
    char text[DP_DYNRULE_TEXT];
};

/* Parse "METRIC>THRESHOLD[,window=S][,for=S][,action=A][,mask=BITS]".
 * 0, or DOTPROXY_EINVAL with a short reason in *why (static). */
int dp_anomaly_rule_parse(struct dp_dynrule *out, const char *text, const char **why);

/* The default rule of a detector that runs with no --dynblock for it
 * (subdomains, tunnel): action log. */
void dp_anomaly_rule_default(struct dp_dynrule *out, int metric);

/* e^-x = 2^-(x log2 e) = 2^-n x 2^-f: n into the exponent bits, 2^-f by a
 * polynomial (relative error under 2e-5), so the hot path calls no libm.
 * Inline: every update of every count. */
static inline float dp_anomaly_decay(float x)
{
    if (x >= 64.0f)
        return 0.0f;
    if (x <= 0.0f)
        return 1.0f;
    float y = x * 1.44269504f;
    int n = (int)y;
    float f = y - (float)n; /* [0, 1) */
    /* 2^-f, minimax on [0, 1). */
    float p =
        1.0f + f * (-0.69314718f +
                    f * (0.24022651f + f * (-0.05550411f + f * (0.00961813f - f * 0.00133336f))));
    union {
        float v;
        uint32_t u;
    } s = {.u = (uint32_t)(127 - n) << 23};
    return p * s.v;
}

/* The decayed-count estimator: c counts events weighted e^(-age/tau); at
 * a steady rate r it tends to r * tau, so c / tau is the rate averaged over
 * about the last tau seconds. Bring c from then to now (milliseconds). */
static inline float dp_anomaly_age(float c, uint32_t dt_ms, float inv_tau_ms)
{
    return dt_ms == 0 ? c : c * dp_anomaly_decay((float)dt_ms * inv_tau_ms);
}

/* What one question name looks like (the part left of its registrable
 * domain: sub[0..sub_len) in wire form). */
struct dp_name_shape {
    unsigned longest; /* longest label, octets */
    unsigned chars;   /* octets in labels */
    float entropy;    /* Shannon entropy of those octets, bits each (0 when chars < 16) */
};
void dp_anomaly_shape(struct dp_name_shape *out, const uint8_t *sub, size_t sub_len);

/* 1 for the types tunnels carry data in: TXT, NULL, CNAME, MX, SRV, ANY,
 * and the private-use range. Inline: every query and answer asks. */
static inline int dp_anomaly_tunnel_qtype(uint16_t t)
{
    /* Bits 5 (CNAME), 10 (NULL), 15 (MX), 16 (TXT), 33 (SRV). */
    const uint64_t low = 1ull << 5 | 1ull << 10 | 1ull << 15 | 1ull << 16 | 1ull << 33;
    return t < 64 ? (int)((low >> t) & 1u) : t == 255 || t >= 65280;
}

/* The decayed sums a tunnel score is made of, per (client, domain). */
struct dp_tunnel_feat {
    float n;       /* scored queries */
    float longest; /* sum of longest-label lengths */
    float entropy; /* sum of entropies */
    float uniq;    /* names never seen before */
    float types;   /* tunnel-typical qtypes */
    float size;    /* query + answer octets */
};
/* Below this many scored queries (decayed) the score is 0. */
#define DP_TUNNEL_MIN_N 8.0f
/* The score in [0, 1] (docs/anomaly.md "The tunnel score"). */
float dp_anomaly_tunnel_score(const struct dp_tunnel_feat *f);

#endif
