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
/* Check a primary spec, "ADDR[@PORT][/TLSNAME]#ZONE" (a TLS name: XoT,
 * port 853 by default; else TCP, port 53); 0 or a dotproxy_error. */
int dp_feed_check_spec(const char *spec);
/* The state file of the index-th primary, into out. 0 or DOTPROXY_ENOSPC /
 * DOTPROXY_EINVAL. */
int dp_feed_state_path(const struct dp_feed_config *c, size_t index, char *out, size_t cap);

struct dp_feeds;

/* Start the feed thread for c's primaries (none: *out = NULL, 0). changed
 * is called from the feed thread after a new copy of a zone is in its
 * state file (a new generation, below). 0 or a dotproxy_error. */
int dp_feeds_new(struct dp_feeds **out, const struct dp_feed_config *c, const struct dp_logger *log,
                 void (*changed)(void *user), void *user);
/* The same, with trust: the configuration whose upstream trust settings
 * (CA file or system store, priority string, client certificate) the
 * XoT primaries ("ADDR[@PORT]/TLSNAME#ZONE") are reached with; read during
 * the call only. DOTPROXY_ETLS (logged) when they cannot be loaded. */
struct dotproxy_config;
int dp_feeds_new_tls(struct dp_feeds **out, const struct dp_feed_config *c,
                     const struct dp_logger *log, void (*changed)(void *user), void *user,
                     const struct dotproxy_config *trust);
void dp_feeds_free(struct dp_feeds *f);

/* A NOTIFY (opcode 4) from peer: the rcode to answer with (NOERROR, and a
 * refresh of that zone soon; REFUSED for a zone or sender we do not know,
 * counted; FORMERR). Safe from any thread, never blocks on I/O. */
int dp_feeds_notify(struct dp_feeds *f, const uint8_t *msg, size_t len,
                    const struct sockaddr *peer);

/* Pull every feed now. */
void dp_feeds_refresh(struct dp_feeds *f);

/* Incremental changes (IXFR). A feed counts the whole copies of its zone
 * it wrote (the generation: one more for each AXFR, rebuild or resync;
 * the copy that was on disk at the start is generation 0). After an IXFR
 * it gives the engine, instead of a new whole copy, every record now held
 * by each owner changed since its generation's copy was written (the
 * engine builds a small layer of them over the zone it loaded from that
 * copy: dp_rpz_layer_new), and rewrites its state file later, off the
 * path to enforcement. When the changed owners grow past a fraction of
 * the zone, the next change is a whole copy again (a new generation). */
struct dp_feed_delta {
    size_t index;    /* the primary */
    unsigned gen;    /* the generation of the copy it applies to */
    uint32_t serial; /* the serial it brings */
    char *text;      /* master-file lines ("owner TTL IN TYPE rdata") */
    size_t len;
    char *owners; /* the owners changed, one a line */
    size_t owners_len, nowners;
};
void dp_feed_delta_free(struct dp_feed_delta *d);
/* The engine's hook for changes; without one (and before it is set) a
 * feed writes a whole copy for every change and calls changed. delta is
 * called from the feed thread and takes d. */
void dp_feeds_set_delta_hook(struct dp_feeds *f, void (*delta)(void *user, struct dp_feed_delta *d),
                             void *user);
/* The feed whose state file is path, or -1. */
int dp_feeds_index_of(struct dp_feeds *f, const char *path);
/* The generation of the index-th feed's state file (see above). */
unsigned dp_feeds_generation(struct dp_feeds *f, size_t index);
/* The engine could not apply a change (no zone of that generation): write
 * a whole copy now, and call changed. */
void dp_feeds_resync(struct dp_feeds *f, size_t index);

/* Each feed as it stands, and the NOTIFY messages refused. */
int dp_feeds_info(struct dp_feeds *f, dotproxy_feed_info_fn fn, void *user);
uint64_t dp_feeds_notify_refused(struct dp_feeds *f);

#endif
