/* SPDX-License-Identifier: MIT */
/* The in-flight table of one upstream connection: which query waits for
 * which wire ID. RFC 7766 6.2.1.1: many queries may be in flight on one
 * connection and answers come in any order, so the ID we put on the wire
 * is the key: its low `shift` bits index a slot, the high bits are a
 * per-slot generation, so that a late answer to a query that timed out
 * (its slot since given to another query) is not taken for the newcomer's.
 * A slot whose query was forgotten stays "dead" until its answer comes or
 * the connection ends, so its ID is never reused while the upstream may
 * still answer it. Matching an answer is one array lookup. */
#ifndef DP_SLOTS_H
#define DP_SLOTS_H

#include <stddef.h>
#include <stdint.h>

struct dp_query;

struct dp_slots {
    struct dp_query **occupant; /* NULL: free; a dead slot holds a marker */
    uint16_t *id;               /* wire ID given to the slot's latest occupant */
    uint8_t *dead;              /* 1: its occupant was forgotten */
    uint16_t *free;             /* stack of free slot indices, low ones on top */
    unsigned n_free;
    unsigned n;     /* slots (at most 32768) */
    unsigned shift; /* index bits: 2^shift >= n */
    unsigned used;  /* live + dead occupants */
    unsigned n_dead;
};

/* n slots (1..32768). 0 or DOTPROXY_ENOMEM (then fini is still safe). */
int dp_slots_init(struct dp_slots *s, unsigned n);
void dp_slots_fini(struct dp_slots *s);

static inline unsigned dp_slots_live(const struct dp_slots *s)
{
    return s->used - s->n_dead;
}

/* Give q a free slot (there must be one: n_free > 0); returns the wire ID,
 * of a generation after the slot's previous one. */
static inline uint16_t dp_slots_take(struct dp_slots *s, struct dp_query *q)
{
    unsigned idx = s->free[--s->n_free];
    unsigned gen = ((unsigned)s->id[idx] >> s->shift) + 1u;
    uint16_t wire = (uint16_t)((gen << s->shift) | idx);
    s->id[idx] = wire;
    s->occupant[idx] = q;
    s->dead[idx] = 0;
    s->used++;
    return wire;
}

/* The slot a wire ID names: its low `shift` bits. The configuration only
 * allows powers of two for max_inflight (dotproxy_config_set_max_inflight),
 * where this equals id & (n - 1); the table does not depend on it. */
static inline unsigned dp_slots_index(const struct dp_slots *s, uint16_t wire)
{
    return wire & ((1u << s->shift) - 1u);
}

enum dp_slot_match { DP_SLOT_UNKNOWN = -1, DP_SLOT_DEAD = 0, DP_SLOT_LIVE = 1 };

/* What an answer with this wire ID is for: an ID we never gave or gave
 * before (UNKNOWN: the peer is broken), a forgotten query (DEAD), or a live
 * one (LIVE). *idx is written for DEAD and LIVE. */
static inline int dp_slots_match(const struct dp_slots *s, uint16_t wire, unsigned *idx)
{
    unsigned i = dp_slots_index(s, wire);
    if (i >= s->n || s->occupant[i] == NULL || s->id[i] != wire)
        return DP_SLOT_UNKNOWN;
    *idx = i;
    return s->dead[i] ? DP_SLOT_DEAD : DP_SLOT_LIVE;
}

/* The slot is free again (its answer came, or the connection ends). */
static inline void dp_slots_release(struct dp_slots *s, unsigned idx)
{
    s->occupant[idx] = NULL;
    s->n_dead -= s->dead[idx];
    s->dead[idx] = 0;
    s->free[s->n_free++] = (uint16_t)idx;
    s->used--;
}

/* Its query is forgotten (timed out, moved elsewhere): keep the slot, and
 * its ID, reserved until the answer comes. */
static inline void dp_slots_kill(struct dp_slots *s, unsigned idx)
{
    s->dead[idx] = 1;
    s->n_dead++;
    s->occupant[idx] = (struct dp_query *)(void *)s; /* any non-NULL marker */
}

#endif
