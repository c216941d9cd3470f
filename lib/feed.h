/* SPDX-License-Identifier: MIT */
/* Live RPZ feeds: zones pulled from a primary by AXFR then IXFR (RFC 5936,
 * RFC 1995) on the SOA timers and at once on NOTIFY (RFC 1996), on a thread
 * of their own. Each zone's last good copy is written atomically to the
 * state directory; that file is what the blocking engine loads (as it loads
 * any --rpz file), so a restart with the primary down still enforces it,
 * and a new version reaches queries by the engine's own off-path rebuild
 * and atomic swap. The engine owns one dp_feeds and is told of a new copy
 * through the changed hook it gave. */
#ifndef DP_FEED_H
#define DP_FEED_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "block_config.h"
#include "dotproxy/block.h"
#include "log.h"

/* The feed part of the configuration: struct dp_feed_config in
 * block_config.h. */
int dp_feed_config_copy(struct dp_feed_config *dst, const struct dp_feed_config *src);
void dp_feed_config_clear(struct dp_feed_config *c);
/* Check a primary spec; 0 or a dotproxy_error. */
int dp_feed_check_spec(const char *spec);
/* The state file of the index-th primary, into out. 0 or DOTPROXY_ENOSPC /
 * DOTPROXY_EINVAL. */
int dp_feed_state_path(const struct dp_feed_config *c, size_t index, char *out, size_t cap);

struct dp_feeds;

/* Start the feed thread for c's primaries (none: *out = NULL, 0). changed
 * is called from the feed thread after a new copy of a zone is in its
 * state file. 0 or a dotproxy_error. */
int dp_feeds_new(struct dp_feeds **out, const struct dp_feed_config *c, const struct dp_logger *log,
                 void (*changed)(void *user), void *user);
void dp_feeds_free(struct dp_feeds *f);

/* A NOTIFY (opcode 4) from peer: the rcode to answer with (NOERROR, and a
 * refresh of that zone soon; REFUSED for a zone or sender we do not know,
 * counted; FORMERR). Safe from any thread, never blocks on I/O. */
int dp_feeds_notify(struct dp_feeds *f, const uint8_t *msg, size_t len,
                    const struct sockaddr *peer);

/* Pull every feed now. */
void dp_feeds_refresh(struct dp_feeds *f);

/* Each feed as it stands, and the NOTIFY messages refused. */
int dp_feeds_info(struct dp_feeds *f, dotproxy_feed_info_fn fn, void *user);
uint64_t dp_feeds_notify_refused(struct dp_feeds *f);

#endif
