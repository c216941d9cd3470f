/* SPDX-License-Identifier: MIT */
#ifndef DP_RELOAD_H
#define DP_RELOAD_H

struct dotproxy_ctx;
struct dotproxy_config;

/* Apply n (taken over: freed here) to ctx, on the thread driving it. On a
 * TLS setting that cannot be loaded, or no memory, the old configuration
 * stays and the reason is logged. */
void dp_reload_apply(struct dotproxy_ctx *ctx, struct dotproxy_config *n);

#endif
