/* SPDX-License-Identifier: MIT */
/* libdotproxy: driving a context. Two tiers, one code path.
 *
 * Tier 1, for programs with their own event loop: learn which fds to watch
 * (dotproxy_ctx_set_watch, or dotproxy_ctx_fds), sleep until one is ready or
 * dotproxy_ctx_timeout_ms() passes, then hand the ready fds to
 * dotproxy_ctx_process(), which also runs the due timers. Watch the fds
 * level-triggered (as poll(2) does, or epoll without EPOLLET): process()
 * reads a bounded amount from a busy socket per call so that one flood
 * cannot starve the others, and relies on being told again that the socket
 * is still readable.
 *
 * Tier 2, for everyone else: dotproxy_ctx_run() / dotproxy_ctx_run_once(),
 * written on tier 1 over epoll, so it is itself the reference embedder. */
#ifndef DOTPROXY_LOOP_H
#define DOTPROXY_LOOP_H

#include <stddef.h>

#include "dotproxy/export.h"
#include "dotproxy/proxy.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DOTPROXY_EV_IN  0x1u /* wait until readable */
#define DOTPROXY_EV_OUT 0x2u /* wait until writable */
#define DOTPROXY_EV_ERR 0x4u /* (revents only) error or hang-up */

/* An fd and the events wanted (events) or seen (revents). A value type. */
typedef struct dotproxy_pollfd {
    int fd;
    unsigned events;
    unsigned revents;
} dotproxy_pollfd;

/* Told whenever the events wanted on fd change; events 0 means "forget fd"
 * (it is about to be closed). Called from inside dotproxy_ctx_* calls on the
 * driving thread; must not call back into the context. */
typedef void (*dotproxy_watch_fn)(int fd, unsigned events, void *user);

/* Install (or with fn NULL remove) the watch callback. On install, fn is
 * called at once for every fd currently wanted. 0 or DOTPROXY_EINVAL. */
DOTPROXY_EXPORT int dotproxy_ctx_set_watch(dotproxy_ctx *ctx, dotproxy_watch_fn fn, void *user);

/* Alternative to the callback: copy the fds wanted now into fds[0..cap).
 * Returns how many there are (which may exceed cap: call again with more
 * room), or DOTPROXY_EINVAL. revents are zeroed. */
DOTPROXY_EXPORT int dotproxy_ctx_fds(const dotproxy_ctx *ctx, dotproxy_pollfd *fds, size_t cap);

/* Milliseconds until the next timer is due, rounded up; 0 when one is due
 * (or work is pending); -1 when no timer is set. */
DOTPROXY_EXPORT int dotproxy_ctx_timeout_ms(const dotproxy_ctx *ctx);

/* Handle the fds in ready[0..n) (entries with revents 0 and fds the context
 * does not own are skipped), then every due timer, then write out what that
 * produced (answers to clients, queries to upstreams, coalesced per call).
 * ready may be NULL when n is 0 (timers only). Returns 0 or DOTPROXY_EINVAL. */
DOTPROXY_EXPORT int dotproxy_ctx_process(dotproxy_ctx *ctx, const dotproxy_pollfd *ready, size_t n);

/* Wait at most timeout_ms (-1: until something happens; it is also capped by
 * dotproxy_ctx_timeout_ms) and process what is ready. Returns 0, or
 * DOTPROXY_ESYS if waiting failed. Must not be mixed with set_watch. */
DOTPROXY_EXPORT int dotproxy_ctx_run_once(dotproxy_ctx *ctx, int timeout_ms);

/* run_once until dotproxy_ctx_stop() has finished. Returns 0 or DOTPROXY_ESYS. */
DOTPROXY_EXPORT int dotproxy_ctx_run(dotproxy_ctx *ctx);

#ifdef __cplusplus
}
#endif
#endif
