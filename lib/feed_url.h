/* SPDX-License-Identifier: MIT */
/* Lists over HTTPS (--blocklist-url): one thread fetches every configured
 * URL (fetch.c), on its refresh timer with the validators of the copy it
 * holds (If-None-Match, If-Modified-Since), and writes each good copy
 * atomically to the state directory with those validators in a comment
 * header. That file is what the blocking engine loads, as it loads any
 * --blocklist file, so the rebuild and the swap are the engine's own, off
 * the query path, and a restart with the server down still enforces the
 * last copy. The state-file format, the validators and the backoff are
 * pure functions here, unit-tested on their own. */
#ifndef DP_FEED_URL_H
#define DP_FEED_URL_H

#include <stddef.h>
#include <stdint.h>

#include "block_config.h"
#include "dotproxy/block.h"
#include "log.h"
#include "prng.h"

#define DP_FEED_URL_LEN_MAX         2048
#define DP_FEED_URL_BACKOFF_FIRST_S 30u

/* ---- configuration (struct dp_url_config in block_config.h) ---- */
void dp_feed_url_config_defaults(struct dp_url_config *c);
int dp_feed_url_config_copy(struct dp_url_config *dst, const struct dp_url_config *src);
void dp_feed_url_config_clear(struct dp_url_config *c);
/* 0 for an https:// URL with a host, of printable ASCII without spaces,
 * at most DP_FEED_URL_LEN_MAX long; else DOTPROXY_EINVAL. */
int dp_feed_url_check(const char *url);

/* How url is shown to others (the EDE text every client gets, the API,
 * /metrics, the log): without the user information of its authority and
 * with its query cut to "?..." (an access token often rides there); the
 * rest as written. Cut to cap. */
void dp_feed_url_shown(const char *url, char *out, size_t cap);

/* ---- the state file ---- */

/* What a copy was fetched with: the response's validators (printable
 * ASCII only, else dropped) and when. */
struct dp_feed_url_validators {
    char etag[256];
    char last_modified[128];
    int64_t fetched_s;
};

/* The state file of url in state_dir (NULL: the default):
 * "DIR/url-<16 hex digits of a hash of the URL>.list". 0 or DOTPROXY_ENOSPC. */
int dp_feed_url_state_path(const char *state_dir, const char *url, char *out, size_t cap);
/* The comment header that opens a state file: the format line, the URL,
 * the validators and the fetch time, each a "# " line (a comment to the
 * list parser), then a lone "#". Its length, or DOTPROXY_ENOSPC. */
int dp_feed_url_state_header(char *out, size_t cap, const char *url,
                             const struct dp_feed_url_validators *v);
/* Read the header of the state file at path: 0 with *v filled when it is a
 * copy of url; DOTPROXY_ESYS when it cannot be read, DOTPROXY_EMALFORMED
 * when it is no state file, DOTPROXY_EINVAL when it is one of another URL
 * (it is then ignored). */
int dp_feed_url_state_read(const char *path, const char *url, struct dp_feed_url_validators *v);

/* ---- validators ---- */

/* One response header line (no CR LF): an "HTTP/" status line starts a new
 * response (a redirect's validators are not the list's) and clears v;
 * ETag and Last-Modified (any case) are kept. */
void dp_feed_url_header_line(struct dp_feed_url_validators *v, const char *line, size_t n);
/* The conditional request lines for a copy held with v into buf, pointers
 * to them in lines (NULL-ended; at most 2 lines). */
void dp_feed_url_conditional(const struct dp_feed_url_validators *v, char buf[2][400],
                             const char *lines[3]);

/* ---- timers ---- */

/* s varied by up to 10% either way (at least 1). */
uint32_t dp_feed_url_jitter_s(uint32_t s, struct dp_prng *p);
/* The wait after the failures-th failure in a row (failures >= 1):
 * DP_FEED_URL_BACKOFF_FIRST_S doubled each time, never past refresh_s,
 * varied by up to 10%. */
uint32_t dp_feed_url_backoff_s(unsigned failures, uint32_t refresh_s, struct dp_prng *p);

/* ---- the fetch thread ---- */

struct dp_feed_url;

/* Start the fetch thread for c's URLs (none: *out = NULL, 0).
 * changed is called from that thread after a new copy is in its state
 * file. 0 or a dotproxy_error. */
int dp_feed_url_new(struct dp_feed_url **out, const struct dp_url_config *c,
                    const struct dp_logger *log, void (*changed)(void *user), void *user);
void dp_feed_url_free(struct dp_feed_url *f);
/* Fetch every list now. NULL-safe. */
void dp_feed_url_refresh(struct dp_feed_url *f);
/* Each list as it stands. NULL-safe. */
int dp_feed_url_info(struct dp_feed_url *f, dotproxy_url_feed_info_fn fn, void *user);

#endif
