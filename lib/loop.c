/* SPDX-License-Identifier: MIT */
/* fd interest, timers, the clock, and the tier-1 / tier-2 drive functions
 * (over the hooks of the loop's owner). */
#include "loop.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "dotproxy/error.h"

uint64_t dp_loop_clock(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int dp_loop_init(struct dp_loop *loop)
{
    memset(loop, 0, sizeof *loop);
    loop->epfd = -1;
    loop->clock_us = dp_loop_clock;
    loop->now_us = loop->clock_us();
    return 0;
}

void dp_loop_set_hooks(struct dp_loop *loop, const struct dp_loop_hooks *hooks)
{
    loop->hooks = *hooks;
}

void dp_loop_set_clock(struct dp_loop *loop, uint64_t (*clock_us)(void))
{
    loop->clock_us = clock_us != NULL ? clock_us : dp_loop_clock;
    loop->now_us = loop->clock_us();
}

void dp_loop_fini(struct dp_loop *loop)
{
    if (loop->epfd >= 0)
        close(loop->epfd);
    free(loop->by_fd);
    free(loop->heap);
    loop->by_fd = NULL;
    loop->by_fd_cap = 0;
    loop->n_io = 0;
    loop->heap = NULL;
    loop->heap_len = loop->heap_cap = 0;
    loop->epfd = -1;
}

void dp_loop_update_time(struct dp_loop *loop)
{
    loop->now_us = loop->clock_us();
}

static void notify(struct dp_loop *loop, int fd, unsigned want)
{
    if (loop->watch != NULL)
        loop->watch(fd, want, loop->watch_user);
}

int dp_loop_add(struct dp_loop *loop, struct dp_io *io, unsigned want)
{
    if (io->fd < 0)
        return DOTPROXY_EINVAL;
    size_t fd = (size_t)io->fd;
    if (fd >= loop->by_fd_cap) {
        size_t cap = loop->by_fd_cap ? loop->by_fd_cap : 64;
        while (cap <= fd)
            cap *= 2;
        struct dp_io **n = realloc(loop->by_fd, cap * sizeof *n);
        if (n == NULL)
            return DOTPROXY_ENOMEM;
        memset(n + loop->by_fd_cap, 0, (cap - loop->by_fd_cap) * sizeof *n);
        loop->by_fd = n;
        loop->by_fd_cap = cap;
    }
    loop->by_fd[fd] = io;
    loop->n_io++;
    io->want = want;
    if (want != 0)
        notify(loop, io->fd, want);
    return 0;
}

void dp_loop_want(struct dp_loop *loop, struct dp_io *io, unsigned want)
{
    if (io->want == want)
        return;
    io->want = want;
    /* "0" tells the embedder to forget the fd; an fd we keep but do not want
     * events from is still reported as 0 and re-added when wanted again. */
    notify(loop, io->fd, want);
}

void dp_loop_del(struct dp_loop *loop, struct dp_io *io)
{
    if (io->fd < 0 || (size_t)io->fd >= loop->by_fd_cap || loop->by_fd[io->fd] != io)
        return;
    if (io->want != 0)
        notify(loop, io->fd, 0);
    io->want = 0;
    loop->by_fd[io->fd] = NULL;
    loop->n_io--;
}

struct dp_io *dp_loop_lookup(const struct dp_loop *loop, int fd)
{
    if (fd < 0 || (size_t)fd >= loop->by_fd_cap)
        return NULL;
    return loop->by_fd[fd];
}

/* ---- timer heap (binary min-heap on due_us) ---- */

static void heap_place(struct dp_loop *loop, size_t i, struct dp_timer *t)
{
    loop->heap[i] = t;
    t->heap_idx = i;
}

static void sift_up(struct dp_loop *loop, size_t i)
{
    struct dp_timer *t = loop->heap[i];
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (loop->heap[p]->due_us <= t->due_us)
            break;
        heap_place(loop, i, loop->heap[p]);
        i = p;
    }
    heap_place(loop, i, t);
}

static void sift_down(struct dp_loop *loop, size_t i)
{
    struct dp_timer *t = loop->heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= loop->heap_len)
            break;
        if (c + 1 < loop->heap_len && loop->heap[c + 1]->due_us < loop->heap[c]->due_us)
            c++;
        if (t->due_us <= loop->heap[c]->due_us)
            break;
        heap_place(loop, i, loop->heap[c]);
        i = c;
    }
    heap_place(loop, i, t);
}

int dp_timer_set(struct dp_loop *loop, struct dp_timer *t, uint64_t due_us)
{
    if (dp_timer_armed(t)) {
        uint64_t old = t->due_us;
        t->due_us = due_us;
        if (due_us < old)
            sift_up(loop, t->heap_idx);
        else
            sift_down(loop, t->heap_idx);
        return 0;
    }
    if (loop->heap_len == loop->heap_cap) {
        size_t cap = loop->heap_cap ? loop->heap_cap * 2 : 64;
        struct dp_timer **n = realloc(loop->heap, cap * sizeof *n);
        if (n == NULL)
            return DOTPROXY_ENOMEM;
        loop->heap = n;
        loop->heap_cap = cap;
    }
    t->due_us = due_us;
    heap_place(loop, loop->heap_len++, t);
    sift_up(loop, t->heap_idx);
    return 0;
}

void dp_timer_cancel(struct dp_loop *loop, struct dp_timer *t)
{
    if (!dp_timer_armed(t))
        return;
    size_t i = t->heap_idx;
    struct dp_timer *last = loop->heap[--loop->heap_len];
    t->heap_idx = SIZE_MAX;
    if (last == t)
        return;
    heap_place(loop, i, last);
    sift_up(loop, i);
    sift_down(loop, last->heap_idx);
}

uint64_t dp_loop_next_due(const struct dp_loop *loop)
{
    return loop->heap_len ? loop->heap[0]->due_us : UINT64_MAX;
}

void dp_loop_run_timers(struct dp_loop *loop)
{
    while (loop->heap_len && loop->heap[0]->due_us <= loop->now_us) {
        struct dp_timer *t = loop->heap[0];
        dp_timer_cancel(loop, t);
        t->fire(t); /* may re-arm t or others */
    }
}

/* ---- tier 1 ---- */

int dp_loop_set_watch(struct dp_loop *loop, dotproxy_watch_fn fn, void *user)
{
    loop->watch = fn;
    loop->watch_user = user;
    if (fn != NULL)
        for (size_t fd = 0; fd < loop->by_fd_cap; fd++)
            if (loop->by_fd[fd] != NULL && loop->by_fd[fd]->want != 0)
                fn((int)fd, loop->by_fd[fd]->want, user);
    return 0;
}

int dp_loop_fds(const struct dp_loop *loop, dotproxy_pollfd *fds, size_t cap)
{
    if (fds == NULL && cap != 0)
        return DOTPROXY_EINVAL;
    size_t n = 0;
    for (size_t fd = 0; fd < loop->by_fd_cap; fd++) {
        const struct dp_io *io = loop->by_fd[fd];
        if (io == NULL || io->want == 0)
            continue;
        if (n < cap) {
            fds[n].fd = (int)fd;
            fds[n].events = io->want;
            fds[n].revents = 0;
        }
        n++;
    }
    return n > (size_t)INT32_MAX ? INT32_MAX : (int)n;
}

int dp_loop_timeout_ms(const struct dp_loop *loop)
{
    uint64_t due = loop->hooks.next_due(loop->hooks.user);
    if (due == UINT64_MAX)
        return -1;
    uint64_t now = loop->clock_us();
    if (due <= now)
        return 0;
    uint64_t ms = (due - now + 999) / 1000; /* rounded up: never wake early */
    return ms > INT32_MAX ? INT32_MAX : (int)ms;
}

int dp_loop_process(struct dp_loop *loop, const dotproxy_pollfd *ready, size_t n)
{
    if (ready == NULL && n != 0)
        return DOTPROXY_EINVAL;
    dp_loop_update_time(loop);
    loop->hooks.turn_begin(loop->hooks.user);
    for (size_t i = 0; i < n; i++) {
        if (ready[i].revents == 0)
            continue;
        /* Looked up afresh each time: a handler may have closed a later fd. */
        struct dp_io *io = dp_loop_lookup(loop, ready[i].fd);
        if (io != NULL && io->want != 0)
            io->on_ready(io, ready[i].revents);
    }
    dp_loop_run_timers(loop);
    loop->hooks.turn_end(loop->hooks.user);
    return 0;
}

/* ---- tier 2, over epoll, using nothing but tier 1 ---- */

static void epoll_watch(int fd, unsigned events, void *user)
{
    struct dp_loop *loop = user;
    if (events == 0) {
        epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL);
        return;
    }
    struct epoll_event ev = {.events = 0, .data.fd = fd};
    if (events & DOTPROXY_EV_IN)
        ev.events |= EPOLLIN;
    if (events & DOTPROXY_EV_OUT)
        ev.events |= EPOLLOUT;
    if (epoll_ctl(loop->epfd, EPOLL_CTL_MOD, fd, &ev) != 0 && errno == ENOENT)
        epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev);
}

#define DP_EPOLL_BATCH 64

int dp_loop_run_once(struct dp_loop *loop, int timeout_ms)
{
    if (loop->epfd < 0) {
        loop->epfd = epoll_create1(EPOLL_CLOEXEC);
        if (loop->epfd < 0)
            return DOTPROXY_ESYS;
        dp_loop_set_watch(loop, epoll_watch, loop);
    }
    int t = dp_loop_timeout_ms(loop);
    if (t < 0 || (timeout_ms >= 0 && timeout_ms < t))
        t = timeout_ms;
    struct epoll_event evs[DP_EPOLL_BATCH];
    int n = epoll_wait(loop->epfd, evs, DP_EPOLL_BATCH, t);
    if (n < 0) {
        if (errno != EINTR)
            return DOTPROXY_ESYS;
        n = 0;
    }
    dotproxy_pollfd ready[DP_EPOLL_BATCH];
    for (int i = 0; i < n; i++) {
        ready[i].fd = evs[i].data.fd;
        ready[i].events = 0;
        ready[i].revents = ((evs[i].events & EPOLLIN) ? DOTPROXY_EV_IN : 0) |
                           ((evs[i].events & EPOLLOUT) ? DOTPROXY_EV_OUT : 0) |
                           ((evs[i].events & (EPOLLERR | EPOLLHUP)) ? DOTPROXY_EV_ERR : 0);
    }
    return dp_loop_process(loop, ready, (size_t)n);
}

int dp_loop_run(struct dp_loop *loop)
{
    while (!loop->hooks.stopped(loop->hooks.user)) {
        int rc = dp_loop_run_once(loop, -1);
        if (rc != 0)
            return rc;
    }
    return 0;
}
