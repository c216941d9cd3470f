/* SPDX-License-Identifier: MIT */
/* The event machinery: which fds are wanted for what, a timer heap, a
 * cached clock (settable, for tests), and the two drive tiers (tier 1: fds,
 * timeout, process; tier 2: run over epoll, built on tier 1 only). It knows
 * nothing of what it drives: its owner gives it hooks at init, called at
 * the start and end of every turn and for the owner's own next deadline.
 * The public dotproxy_ctx_* drive functions (ctx.c) are thin wrappers. */
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

/* Calls up into the loop's owner (like nghttp2's session callbacks). */
struct dp_loop_hooks {
    void (*turn_begin)(void *user);
    void (*turn_end)(void *user); /* after ready fds and due timers */
    /* The owner's next deadline, its timers included (dp_loop_next_due), or
     * UINT64_MAX; 0 for "at once". */
    uint64_t (*next_due)(void *user);
    int (*stopped)(void *user); /* tier 2 runs until this says 1 */
    void *user;
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
    struct dp_loop_hooks hooks;
};

int dp_loop_init(struct dp_loop *loop);
/* The owner's hooks; needed before the drive functions (process, timeout,
 * run) are used. A loop used only for fds and timers needs none. */
void dp_loop_set_hooks(struct dp_loop *loop, const struct dp_loop_hooks *hooks);
void dp_loop_fini(struct dp_loop *loop);
/* CLOCK_MONOTONIC in microseconds: the default clock. */
uint64_t dp_loop_clock(void);
/* Another clock (tests: a fake one that moves only when told); NULL: the
 * default. Read once per turn, and by dp_loop_update_time. */
void dp_loop_set_clock(struct dp_loop *loop, uint64_t (*clock_us)(void));
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

/* The drive tiers; the public functions of dotproxy/loop.h in loop terms
 * (same contracts and error codes). */
int dp_loop_set_watch(struct dp_loop *loop, dotproxy_watch_fn fn, void *user);
int dp_loop_fds(const struct dp_loop *loop, dotproxy_pollfd *fds, size_t cap);
int dp_loop_timeout_ms(const struct dp_loop *loop);
int dp_loop_process(struct dp_loop *loop, const dotproxy_pollfd *ready, size_t n);
int dp_loop_run_once(struct dp_loop *loop, int timeout_ms);
int dp_loop_run(struct dp_loop *loop);

#endif
