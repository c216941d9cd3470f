/* SPDX-License-Identifier: MIT */
/* Intrusive circular doubly-linked lists: O(1) insert and unlink, no
 * allocation, an element knows how to leave its list on its own. */
#ifndef DP_LIST_H
#define DP_LIST_H

#include <stddef.h>

struct dp_list {
    struct dp_list *prev, *next;
};

#define DP_CONTAINER_OF(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

static inline void dp_list_init(struct dp_list *l)
{
    l->prev = l->next = l;
}

static inline int dp_list_empty(const struct dp_list *l)
{
    return l->next == l;
}

/* An element that was unlinked with dp_list_remove() (or dp_list_init()ed)
 * points at itself. */
static inline int dp_list_linked(const struct dp_list *e)
{
    return e->next != e;
}

static inline void dp_list_push_back(struct dp_list *head, struct dp_list *e)
{
    e->prev = head->prev;
    e->next = head;
    head->prev->next = e;
    head->prev = e;
}

static inline void dp_list_push_front(struct dp_list *head, struct dp_list *e)
{
    e->next = head->next;
    e->prev = head;
    head->next->prev = e;
    head->next = e;
}

static inline void dp_list_remove(struct dp_list *e)
{
    e->prev->next = e->next;
    e->next->prev = e->prev;
    e->prev = e->next = e;
}

static inline struct dp_list *dp_list_first(const struct dp_list *head)
{
    return dp_list_empty(head) ? NULL : head->next;
}

#endif
