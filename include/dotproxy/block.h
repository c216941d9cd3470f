/* SPDX-License-Identifier: MIT */
/* libdotproxy: blocking by name. Blocklists (domain lists, hosts files,
 * adblock domain rules), allowlists, and a blocker object holding them that
 * any number of contexts (one per worker thread) share: one copy of the
 * policy in memory, rebuilt off the query path on reload and swapped in
 * atomically. */
#ifndef DOTPROXY_BLOCK_H
#define DOTPROXY_BLOCK_H

#include <stddef.h>
#include <stdint.h>

#include "dotproxy/config.h"
#include "dotproxy/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Most list files of each kind a configuration holds. */
#define DOTPROXY_BLOCKLISTS_MAX 64

/* The kinds of policy file, in the order they are consulted: an allowlist
 * match passes whatever else matches; then RPZ zones in order (the first
 * zone with a rule for the query decides); then blocklists. */
enum dotproxy_list_kind {
    DOTPROXY_LIST_ALLOW = 0,
    DOTPROXY_LIST_RPZ = 1,
    DOTPROXY_LIST_BLOCK = 2,
};

/* Add a list file of kind (read when a blocker is made from cfg, and on
 * every reload). Names in it block themselves and every name below them
 * (DOTPROXY_LIST_BLOCK) or pass them (DOTPROXY_LIST_ALLOW). Returns 0,
 * DOTPROXY_EINVAL, DOTPROXY_ELIMIT (more than DOTPROXY_BLOCKLISTS_MAX) or
 * DOTPROXY_ENOMEM. */
DOTPROXY_EXPORT int dotproxy_config_add_blocklist(dotproxy_config *cfg, const char *path);
DOTPROXY_EXPORT int dotproxy_config_add_allowlist(dotproxy_config *cfg, const char *path);
/* A Response Policy Zone in master-file format (draft-vixie-dnsop-dns-rpz):
 * QNAME, rpz-client-ip and rpz-ip triggers; NXDOMAIN, NODATA, passthru,
 * drop, tcp-only and local-data actions. */
DOTPROXY_EXPORT int dotproxy_config_add_rpz(dotproxy_config *cfg, const char *path);
/* How many files of kind, and the index-th (NULL past the end). */
DOTPROXY_EXPORT size_t dotproxy_config_list_count(const dotproxy_config *cfg, int kind);
DOTPROXY_EXPORT const char *dotproxy_config_get_list(const dotproxy_config *cfg, int kind,
                                                     size_t index);

/* What a blocklist match is answered with. */
enum dotproxy_block_action {
    DOTPROXY_BLOCK_NXDOMAIN = 0, /* the default */
    DOTPROXY_BLOCK_NODATA = 1,
    DOTPROXY_BLOCK_REFUSED = 2,
    DOTPROXY_BLOCK_ZERO = 3, /* A 0.0.0.0, AAAA ::, NODATA for other types */
};
DOTPROXY_EXPORT int dotproxy_config_set_block_action(dotproxy_config *cfg, int action);
DOTPROXY_EXPORT int dotproxy_config_get_block_action(const dotproxy_config *cfg);
/* TTL of the SOA in the authority section of NXDOMAIN/NODATA block answers
 * (RFC 2308: stubs cache the answer that long), and of zero answers.
 * Default 60. */
#define DOTPROXY_BLOCK_TTL_MAX 86400u
DOTPROXY_EXPORT int dotproxy_config_set_block_ttl(dotproxy_config *cfg, unsigned s);
DOTPROXY_EXPORT unsigned dotproxy_config_get_block_ttl(const dotproxy_config *cfg);
/* How often a blocker looks at its files' modification times and reloads
 * the changed ones, in seconds; 0: never. Default 60. */
#define DOTPROXY_BLOCKLIST_CHECK_MAX 86400u
DOTPROXY_EXPORT int dotproxy_config_set_blocklist_check_s(dotproxy_config *cfg, unsigned s);
DOTPROXY_EXPORT unsigned dotproxy_config_get_blocklist_check_s(const dotproxy_config *cfg);

/* A blocker: the lists of cfg, loaded now (the call returns once every file
 * is read), and a thread of its own that rebuilds them on reload and when
 * their files change. err (may be NULL) says what failed. strict: a bad line
 * in any file fails the call, naming file and line (--check-config); else
 * bad lines are skipped and counted, and an unreadable file is logged,
 * counted and left empty. Returns 0, DOTPROXY_EINVAL, DOTPROXY_ENOMEM, or
 * (strict) DOTPROXY_ESYS when a file cannot be read and DOTPROXY_EMALFORMED
 * when one has a bad line. */
typedef struct dotproxy_blocker dotproxy_blocker;
DOTPROXY_EXPORT int dotproxy_blocker_new(dotproxy_blocker **out, const dotproxy_config *cfg,
                                         int strict, char *err, size_t errlen);
/* Drop the caller's reference (configs and contexts hold their own); the
 * last one stops the thread and frees the lists. NULL-safe. */
DOTPROXY_EXPORT void dotproxy_blocker_free(dotproxy_blocker *b);
/* Contexts made from cfg use b (NULL: back to a blocker of their own when
 * cfg has lists). Returns 0 or DOTPROXY_EINVAL. */
DOTPROXY_EXPORT int dotproxy_config_set_blocker(dotproxy_config *cfg, dotproxy_blocker *b);
/* Rebuild every list from cfg's files, action and TTL on the blocker's
 * thread; returns at once (0, DOTPROXY_EINVAL, DOTPROXY_ENOMEM). A file
 * that cannot be read keeps its previous names. The feeds (zone transfers,
 * lists over HTTPS, their state directory and keys) stay those the blocker
 * started with. Safe from any thread. */
DOTPROXY_EXPORT int dotproxy_blocker_reload(dotproxy_blocker *b, const dotproxy_config *cfg);
/* Bumped each time a new set of lists is swapped in (a reload finished). */
DOTPROXY_EXPORT unsigned dotproxy_blocker_generation(const dotproxy_blocker *b);

/* One list as it stands. Pointers valid during the callback only. */
typedef struct dotproxy_list_info {
    int kind;          /* enum dotproxy_list_kind */
    const char *path;  /* as configured */
    uint64_t entries;  /* names (rules, for a zone) loaded */
    uint64_t skipped;  /* lines skipped at the last load */
    uint64_t blocked;  /* queries this list decided to block (or allow) */
    uint64_t failures; /* loads that failed (the previous names were kept) */
    int64_t loaded_s;  /* Unix time of the last successful load, 0 never */
} dotproxy_list_info;
typedef void (*dotproxy_list_info_fn)(const dotproxy_list_info *info, void *user);
/* Call fn for each configured list, allowlists first. Safe from any
 * thread. Returns 0 or DOTPROXY_EINVAL. */
DOTPROXY_EXPORT int dotproxy_blocker_lists(dotproxy_blocker *b, dotproxy_list_info_fn fn,
                                           void *user);

/* One rule matching a name. */
typedef struct dotproxy_block_match {
    int kind;           /* enum dotproxy_list_kind */
    const char *path;   /* the list or zone file */
    const char *rule;   /* the listed name (or the RPZ rule), presentation form */
    const char *action; /* "nxdomain", "nodata", "refused", "zero", "allow", "passthru", ... */
    int decides;        /* 1 for the match that decides the answer */
} dotproxy_block_match;
typedef void (*dotproxy_block_match_fn)(const dotproxy_block_match *m, void *user);
/* Every list and rule that matches name (presentation form), in order of
 * precedence, the deciding one flagged. Returns the number of matches,
 * DOTPROXY_EINVAL (no blocker, not a name) . Safe from any thread. */
DOTPROXY_EXPORT int dotproxy_blocker_explain(dotproxy_blocker *b, const char *name,
                                             dotproxy_block_match_fn fn, void *user);

/* ---- live feeds ---- */

/* Most zone-transfer feeds a configuration holds. */
#define DOTPROXY_FEEDS_MAX 16
/* Where the last good copy of each feed is kept. */
#define DOTPROXY_STATE_DIR_DEFAULT "/var/lib/dotproxyd"
/* Pull the Response Policy Zone ZONE from the primary at ADDR (port 53 by
 * default) by AXFR, keep it current by IXFR on its SOA refresh/retry timers
 * and at once on a NOTIFY from ADDR, and apply it like an --rpz file (after
 * the files given with dotproxy_config_add_rpz). spec:
 * "ADDR[@PORT][/TLSNAME]#ZONE"; with a TLS name, over TLS (XoT, RFC 9103;
 * port 853 by default) with the upstreams' trust settings.
 * Returns 0, DOTPROXY_EINVAL, DOTPROXY_EADDR, DOTPROXY_EPORT, DOTPROXY_ENAME,
 * DOTPROXY_ELIMIT or DOTPROXY_ENOMEM. */
DOTPROXY_EXPORT int dotproxy_config_add_rpz_primary(dotproxy_config *cfg, const char *spec);
DOTPROXY_EXPORT size_t dotproxy_config_rpz_primary_count(const dotproxy_config *cfg);
DOTPROXY_EXPORT const char *dotproxy_config_get_rpz_primary(const dotproxy_config *cfg,
                                                            size_t index);
/* The TSIG key (RFC 8945) that signs every transfer request and must sign
 * every answer and NOTIFY: "NAME:ALGORITHM:BASE64SECRET", ALGORITHM one of
 * hmac-sha1, hmac-sha256, hmac-sha512 ("" : none). A bad signature, a wrong
 * key or a time outside the fudge fails the transfer (logged, counted; the
 * rules in force stay) or refuses the NOTIFY (NOTAUTH). Returns 0,
 * DOTPROXY_EINVAL (not such a key) or DOTPROXY_ENOMEM. */
DOTPROXY_EXPORT int dotproxy_config_set_rpz_tsig(dotproxy_config *cfg, const char *spec);
/* The directory holding each feed's last good copy (written atomically;
 * read at start so that the rules apply before the first transfer).
 * Default DOTPROXY_STATE_DIR_DEFAULT. */
DOTPROXY_EXPORT int dotproxy_config_set_state_dir(dotproxy_config *cfg, const char *path);
DOTPROXY_EXPORT const char *dotproxy_config_get_state_dir(const dotproxy_config *cfg);

/* One feed as it stands. Strings valid during the callback only. */
typedef struct dotproxy_feed_info {
    const char *source; /* "ADDR@PORT#ZONE" as configured */
    const char *zone;   /* "rpz.example." */
    const char *path;   /* the state file */
    uint32_t serial;    /* of the copy in force (has_serial) */
    int has_serial;
    uint64_t entries;       /* records in the copy in force */
    int64_t last_ok_s;      /* Unix time of the last good transfer or check, 0 never */
    int64_t last_fail_s;    /* Unix time of the last failure, 0 never */
    const char *last_error; /* why it failed, "" none */
    int64_t next_s;         /* Unix time of the next refresh */
    uint64_t axfr, ixfr;    /* transfers applied, by type */
    uint64_t uptodate;      /* IXFR answered "no change" */
    uint64_t failures;      /* transfers that failed */
    uint64_t notifies;      /* NOTIFY messages accepted */
    uint64_t bytes;         /* octets received in transfers */
    uint64_t last_axfr_bytes, last_ixfr_bytes;
    uint64_t tsig_failures; /* answers or NOTIFY messages whose TSIG failed */
} dotproxy_feed_info;
typedef void (*dotproxy_feed_info_fn)(const dotproxy_feed_info *info, void *user);
/* Call fn for each feed of b. Safe from any thread. Returns 0 or
 * DOTPROXY_EINVAL. */
DOTPROXY_EXPORT int dotproxy_blocker_feeds(dotproxy_blocker *b, dotproxy_feed_info_fn fn,
                                           void *user);
/* NOTIFY messages refused (unknown zone or sender). */
DOTPROXY_EXPORT uint64_t dotproxy_blocker_notify_refused(dotproxy_blocker *b);
/* Pull every feed (zone transfers and lists over HTTPS) now (on the feed
 * threads; returns at once). 0 or
 * DOTPROXY_EINVAL. */
DOTPROXY_EXPORT int dotproxy_blocker_refresh_feeds(dotproxy_blocker *b);

/* ---- lists over HTTPS ---- */

/* Most --blocklist-url lists a configuration holds. */
#define DOTPROXY_BLOCKLIST_URLS_MAX 16
/* Fetch a blocklist (any of the file formats) from url, an https:// URL,
 * with libcurl: the peer's certificate and host name verified against the
 * CA file of dotproxy_config_set_ca_file() or the system store, never
 * skipped; redirects (at most 5) to https only; refreshed every
 * dotproxy_config_set_feed_refresh_s() seconds with If-None-Match and
 * If-Modified-Since. The last good copy and its validators are kept in the
 * state directory and read at start; a failed fetch (an error status, a
 * body over the size cap or with no name in any list format, a timeout, a
 * certificate that does not verify) keeps the list in force, and the next
 * try backs off. The list is applied after the --blocklist files. Returns
 * 0, DOTPROXY_EINVAL (NULL, not an https:// URL, a space or control
 * character in it), DOTPROXY_ELIMIT (more than DOTPROXY_BLOCKLIST_URLS_MAX),
 * DOTPROXY_ESTATE (this build has no libcurl) or DOTPROXY_ENOMEM. */
DOTPROXY_EXPORT int dotproxy_config_add_blocklist_url(dotproxy_config *cfg, const char *url);
DOTPROXY_EXPORT size_t dotproxy_config_blocklist_url_count(const dotproxy_config *cfg);
DOTPROXY_EXPORT const char *dotproxy_config_get_blocklist_url(const dotproxy_config *cfg,
                                                              size_t index);
/* 1 when the library was built with libcurl (lists over HTTPS), else 0. */
DOTPROXY_EXPORT int dotproxy_blocklist_url_available(void);
/* Seconds between two fetches of a list (each wait varied by up to 10%
 * so that many proxies do not ask in step). Default 3600. */
#define DOTPROXY_FEED_REFRESH_MIN 1u
#define DOTPROXY_FEED_REFRESH_MAX 604800u
DOTPROXY_EXPORT int dotproxy_config_set_feed_refresh_s(dotproxy_config *cfg, unsigned s);
DOTPROXY_EXPORT unsigned dotproxy_config_get_feed_refresh_s(const dotproxy_config *cfg);
/* Most octets of one list's body (after content decoding); a longer one is
 * cut off and refused. Default 256 MiB. */
#define DOTPROXY_FEED_MAX_SIZE_MIN 1024u
#define DOTPROXY_FEED_MAX_SIZE_MAX 4294967295u
DOTPROXY_EXPORT int dotproxy_config_set_feed_max_size(dotproxy_config *cfg, unsigned octets);
DOTPROXY_EXPORT unsigned dotproxy_config_get_feed_max_size(const dotproxy_config *cfg);

/* One list over HTTPS as it stands. Strings valid during the callback only. */
typedef struct dotproxy_url_feed_info {
    const char *url;           /* as configured, without user information, query cut to "?..." */
    const char *path;          /* its state file */
    const char *etag;          /* validators of the copy in force, "" none */
    const char *last_modified; /* an HTTP-date, "" none */
    uint64_t entries;          /* names in the copy in force */
    int64_t fetched_s;         /* Unix time the copy in force was fetched, 0 none */
    int64_t last_ok_s;         /* Unix time of the last 200 or 304, 0 never */
    int64_t last_fail_s;       /* Unix time of the last failure, 0 never */
    const char *last_error;    /* why it failed, "" none */
    int64_t next_s;            /* Unix time of the next fetch */
    uint64_t fetched;          /* fetches by result: 200 */
    uint64_t not_modified;     /* 304 */
    uint64_t failures;         /* errors (the list in force stays) */
    uint64_t bytes;            /* body octets received */
    uint64_t last_bytes;       /* of the last 200 */
} dotproxy_url_feed_info;
typedef void (*dotproxy_url_feed_info_fn)(const dotproxy_url_feed_info *info, void *user);
/* Call fn for each list over HTTPS of b (dotproxy_blocker_refresh_feeds
 * fetches them now too). Safe from any thread. Returns 0 or
 * DOTPROXY_EINVAL. */
DOTPROXY_EXPORT int dotproxy_blocker_url_feeds(dotproxy_blocker *b, dotproxy_url_feed_info_fn fn,
                                               void *user);

#ifdef __cplusplus
}
#endif
#endif
