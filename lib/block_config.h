/* SPDX-License-Identifier: MIT */
/* The blocking part of the configuration record (config.h holds one); its
 * copy, clear and setters live in block.c. A bare record: no functions. */
#ifndef DP_BLOCK_CONFIG_H
#define DP_BLOCK_CONFIG_H

#include <stddef.h>

#include "dotproxy/block.h"

#define DP_LIST_KINDS 3 /* enum dotproxy_list_kind */

/* Zone-transfer feeds (feed.c). */
struct dp_feed_config {
    char *primary[DOTPROXY_FEEDS_MAX]; /* "ADDR[@PORT][/TLSNAME]#ZONE" */
    size_t n;
    char *state_dir; /* NULL: DOTPROXY_STATE_DIR_DEFAULT */
    char *tsig;      /* "NAME:ALGORITHM:BASE64SECRET", or NULL */
};

/* Lists over HTTPS (feed_url.c). */
struct dp_url_config {
    char *url[DOTPROXY_BLOCKLIST_URLS_MAX];
    size_t n;
    unsigned refresh_s;
    unsigned max_size; /* octets */
    char *ca_file;     /* the blocker's copy of the context's --ca-file; NULL: system store */
    char *state_dir;   /* the blocker's copy of --state-dir; NULL: the default */
};

struct dp_block_config {
    char *path[DP_LIST_KINDS][DOTPROXY_BLOCKLISTS_MAX];
    size_t n[DP_LIST_KINDS];
    int action;                       /* enum dotproxy_block_action */
    unsigned ttl;                     /* seconds */
    unsigned check_s;                 /* 0: files are not watched */
    struct dotproxy_blocker *blocker; /* a reference, or NULL */
    struct dp_feed_config feeds;
    struct dp_url_config urls;
};

#endif
