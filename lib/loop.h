/* SPDX-License-Identifier: MIT */
/* The context's event machinery: which fds are wanted for what, a timer
 * heap, and a cached monotonic clock. The public tier-1/tier-2 functions in
 * loop.c are built on this. */
#ifndef DP_LOOP_H
#define DP_LOOP_H

#include <stddef.h>
#include <stdint.h>

#include "dotproxy/loop.h"

struct dp_io;
typedef void (*dp_io_fn)(struct dp_io *io, unsigned revents);

/* One fd owned by the context. Embedded in the object that owns the fd. */
struct dp_io {
    int fd;
    unsigned want; /* DOTPROXY_EV_IN | DOTPROXY_EV_OUT */
    dp_io_fn on_ready;
};

struct dp_timer;
typedef void (*dp_timer_fn)(struct dp_timer *t);

/* A one-shot timer. Embedded in its owner; idle when heap_idx is SIZE_MAX. */
struct dp_timer {
    uint64_t due_us;
    size_t heap_idx;
    dp_timer_fn fire;
};

struct dp_loop {
    struct dp_io **by_fd; /* indexed by fd; NULL where we own nothing */
    size_t by_fd_cap;
    size_t n_io;
    struct dp_timer **heap;
    size_t heap_len, heap_cap;
    uint64_t now_us; /* refreshed once per turn: one clock read per batch */
    uint64_t (*clock_us)(void);
    dotproxy_watch_fn watch;
    void *watch_user;
    int epfd; /* tier 2 only */
};

int dp_loop_init(struct dp_loop *loop);
void dp_loop_fini(struct dp_loop *loop);
uint64_t dp_loop_clock(void);
void dp_loop_update_time(struct dp_loop *loop);

/* Take ownership of io->fd with wanted events `want`. 0 or DOTPROXY_ENOMEM. */
int dp_loop_add(struct dp_loop *loop, struct dp_io *io, unsigned want);
/* Change the wanted events (cheap when unchanged). */
void dp_loop_want(struct dp_loop *loop, struct dp_io *io, unsigned want);
/* Stop watching io->fd; call before closing it. */
void dp_loop_del(struct dp_loop *loop, struct dp_io *io);
struct dp_io *dp_loop_lookup(const struct dp_loop *loop, int fd);

static inline void dp_timer_init(struct dp_timer *t, dp_timer_fn fire)
{
    t->due_us = 0;
    t->heap_idx = SIZE_MAX;
    t->fire = fire;
}

static inline int dp_timer_armed(const struct dp_timer *t)
{
    return t->heap_idx != SIZE_MAX;
}

/* Arm (or re-arm) t for absolute time due_us. 0 or DOTPROXY_ENOMEM. */
int dp_timer_set(struct dp_loop *loop, struct dp_timer *t, uint64_t due_us);
void dp_timer_cancel(struct dp_loop *loop, struct dp_timer *t);
/* The earliest due time, or UINT64_MAX. */
uint64_t dp_loop_next_due(const struct dp_loop *loop);
/* Fire every timer due at loop->now_us. */
void dp_loop_run_timers(struct dp_loop *loop);

#endif
