/* SPDX-License-Identifier: MIT */
/* The in-flight table's allocation (slots.h has the rest, inline: it is on
 * the path of every query and every answer). */
#include "slots.h"

#include <stdlib.h>
#include <string.h>

#include "dotproxy/error.h"

int dp_slots_init(struct dp_slots *s, unsigned n)
{
    memset(s, 0, sizeof *s);
    if (n == 0 || n > 32768u)
        return DOTPROXY_EINVAL;
    s->n = n;
    while ((1u << s->shift) < n)
        s->shift++;
    s->occupant = calloc(n, sizeof *s->occupant);
    s->id = calloc(n, sizeof *s->id);
    s->dead = calloc(n, 1);
    s->free = malloc(n * sizeof *s->free);
    if (s->occupant == NULL || s->id == NULL || s->dead == NULL || s->free == NULL)
        return DOTPROXY_ENOMEM;
    /* Low slots on top of the stack: a lightly used connection touches few. */
    for (unsigned i = 0; i < n; i++)
        s->free[i] = (uint16_t)(n - 1 - i);
    s->n_free = n;
    return 0;
}

void dp_slots_fini(struct dp_slots *s)
{
    free(s->occupant);
    free(s->id);
    free(s->dead);
    free(s->free);
    memset(s, 0, sizeof *s);
}
