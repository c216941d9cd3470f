/* SPDX-License-Identifier: MIT */
/* The blocking engine: a blocker (shared by every context that uses it)
 * holds an immutable snapshot of the loaded lists; each context holds a
 * reference to the snapshot it works with and moves to a newer one at the
 * start of a turn, so the query path reads it with no lock and no atomic
 * operation, and a snapshot is freed when the last context lets it go.
 * Decisions (allowlists, then blocklists), the block answers (RFC 2308 SOA,
 * RFC 8914 Extended DNS Error) and the CNAME-chain check of answers are
 * here; proxy.c calls them from two small hooks. */
#ifndef DP_BLOCK_H
#define DP_BLOCK_H

#include <stddef.h>
#include <stdint.h>

#include "block_config.h"
#include "list.h"
#include "log.h"
#include "rpz.h"

struct dotproxy_config;
struct dp_block_snap;
struct dp_block_list;

/* Config record support (config.c). */
void dp_block_config_defaults(struct dp_block_config *c);
int dp_block_config_copy(struct dp_block_config *dst, const struct dp_block_config *src);
void dp_block_config_clear(struct dp_block_config *c);
int dp_block_config_has_lists(const struct dp_block_config *c);

/* A context's part. */
struct dp_block_part {
    struct dotproxy_blocker *b; /* a reference, NULL: blocking off */
    struct dp_block_snap *snap; /* a reference to the snapshot in use */
    unsigned gen;               /* the blocker's generation of snap */
    int own;                    /* b was made from the context's own lists */
    void (*wake)(void *user);   /* asks the context's thread for a turn */
    void *wake_user;
    struct dp_list waiter; /* in the blocker's list of parts to wake */
    /* The block answer being sent and its description (query log). */
    uint8_t answer[2048];
    char text[400];
    char log_list[300]; /* for the query log: "blocklist FILE" or "rpz ZONE" */
    char log_rule[600]; /* the rule, " via cname NAME" or " via address A" after it */
};

/* Take cfg's blocker, or make one from cfg's lists (an embedder with one
 * context), or stay off. wake is called from the blocker's thread when a new
 * snapshot is ready. 0 or a dotproxy_error. */
int dp_block_part_init(struct dp_block_part *p, const struct dotproxy_config *cfg,
                       void (*wake)(void *user), void *user);
/* A reload of the context's configuration: another blocker, or the own
 * blocker's lists reloaded. */
int dp_block_part_reload(struct dp_block_part *p, const struct dotproxy_config *cfg);
void dp_block_part_fini(struct dp_block_part *p);
/* The start of a turn: move to the newest snapshot if there is one. */
void dp_block_part_refresh(struct dp_block_part *p);

static inline int dp_block_on(const struct dp_block_part *p)
{
    return p->snap != NULL;
}

/* What the policy says of a name. */
enum dp_block_what {
    DP_BLOCK_PASS = 0, /* no rule: forward */
    DP_BLOCK_ALLOWED,  /* an allowlist (or exception) matched: forward */
    DP_BLOCK_ANSWER,   /* answer with action */
    DP_BLOCK_DROP,     /* no answer at all */
    DP_BLOCK_TCP_ONLY, /* TC=1 over UDP; forward over TCP */
    DP_BLOCK_LOCAL,    /* answer with an RPZ rule's local data */
};

struct dp_block_verdict {
    int what;                         /* enum dp_block_what */
    int action;                       /* DOTPROXY_BLOCK_* for DP_BLOCK_ANSWER */
    const struct dp_block_list *list; /* the deciding list */
    const struct dp_rpz *zone;        /* an RPZ list's zone, or NULL */
    struct dp_rpz_hit hit;            /* the RPZ rule, when zone is set */
    char via_addr[48];                /* an rpz-ip match: the address; "" none */
    uint8_t rule[256];                /* the rule: the listed name, wire form */
    uint8_t via[256];                 /* the chain member, wire form; via[0] = 0xff: none */
    size_t qend;                      /* dp_block_check_answer: end of the question */
    int had_opt;                      /* dp_block_check_answer: the answer has an OPT */
};

/* Decide for the query name qname (wire form, uncompressed, cap octets
 * readable) asked by client (NULL: an API query; rpz-client-ip rules then
 * do not apply). No allocation, no lock. Counts the decision on the list. */
int dp_block_decide(const struct dp_block_part *p, const uint8_t *qname, size_t cap,
                    const struct sockaddr *client, struct dp_block_verdict *v);

/* Look at an answer as it goes to the client (its question, its EDNS): does
 * a CNAME in its answer section point at a blocked name, or an address match
 * an rpz-ip rule? Then v says so (via or via_addr set) and returns the
 * verdict's what (never DP_BLOCK_PASS/ALLOWED); else 0. An allowlisted
 * question name is never blocked by its chain. */
int dp_block_check_answer(const struct dp_block_part *p, const uint8_t *msg, size_t len,
                          struct dp_block_verdict *v);

/* The block answer for query (whose question ends at qend; had_opt: the
 * client sent EDNS), into out. Returns its length, or -1. */
int dp_block_answer(const struct dp_block_part *p, const struct dp_block_verdict *v,
                    const uint8_t *query, size_t qend, int had_opt, uint16_t udp_size, uint8_t *out,
                    size_t cap);

/* "blocklist ads.txt: ads.example.com." and the like, for the query log and
 * the EDE text. */
void dp_block_describe(const struct dp_block_verdict *v, char *out, size_t cap);
/* The same in two parts, list and rule, into p->log_list and p->log_rule. */
void dp_block_log_names(const struct dp_block_verdict *v, struct dp_block_part *p);

/* A NOTIFY (opcode 4) from peer: -1 when no feed is configured (the
 * caller answers NOTIMP as for any other opcode), else the rcode to answer
 * with (feed.h dp_feeds_notify). Never blocks. */
int dp_block_notify(const struct dp_block_part *p, const uint8_t *msg, size_t len,
                    const struct sockaddr *peer);

#endif
