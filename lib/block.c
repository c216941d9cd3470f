/* SPDX-License-Identifier: MIT */
/* The blocking engine (block.h): configuration, the shared blocker and its
 * rebuild thread, snapshots, decisions and block answers.
 *
 * Lifetimes. A list (one file's name sets) is immutable once loaded and
 * refcounted: a snapshot (the ordered lists of one generation) holds a
 * reference to each, so a rebuild that could not read a file puts the old
 * list into the new snapshot. The blocker holds the current snapshot; each
 * context holds the snapshot it works with, taken under the blocker's mutex
 * at the start of a turn when the generation moved. A snapshot, and the lists
 * only it held, are freed when the last holder lets go: after the swap,
 * once every context has moved on (each is woken for that). Memory at the
 * peak of a reload is the old lists plus the new ones, never more. */
#include "block.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "blocklist.h"
#include "bytes.h"
#include "config.h"
#include "dns_msg.h"
#include "dotproxy/dns.h"
#include "dotproxy/error.h"
#include "feed.h"
#include "feed_url.h"
#include "nameset.h"
#include "rpz.h"

/* RR types and class this file writes or reads (RFC 1035, 3596, 6891). */
enum {
    T_A = 1,
    T_CNAME = 5,
    T_SOA = 6,
    T_AAAA = 28,
    T_OPT = 41,
    C_IN = 1,
};

/* ---- the configuration record ---- */

void dp_block_config_defaults(struct dp_block_config *c)
{
    memset(c, 0, sizeof *c);
    c->action = DOTPROXY_BLOCK_NXDOMAIN;
    c->ttl = 60;
    c->check_s = 60;
    dp_feed_url_config_defaults(&c->urls);
}

int dp_block_config_has_lists(const struct dp_block_config *c)
{
    return c->n[0] + c->n[1] + c->n[2] + c->feeds.n + c->urls.n > 0;
}

static void blocker_ref(struct dotproxy_blocker *b);

int dp_block_config_copy(struct dp_block_config *dst, const struct dp_block_config *src)
{
    *dst = *src;
    for (int k = 0; k < DP_LIST_KINDS; k++)
        for (size_t i = 0; i < src->n[k]; i++)
            dst->path[k][i] = NULL;
    memset(&dst->feeds, 0, sizeof dst->feeds);
    memset(&dst->urls, 0, sizeof dst->urls);
    if (dst->blocker != NULL)
        blocker_ref(dst->blocker);
    if (dp_feed_config_copy(&dst->feeds, &src->feeds) != 0 ||
        dp_feed_url_config_copy(&dst->urls, &src->urls) != 0) {
        dp_block_config_clear(dst);
        return DOTPROXY_ENOMEM;
    }
    for (int k = 0; k < DP_LIST_KINDS; k++) {
        for (size_t i = 0; i < src->n[k]; i++) {
            if ((dst->path[k][i] = strdup(src->path[k][i])) == NULL) {
                dp_block_config_clear(dst);
                return DOTPROXY_ENOMEM;
            }
        }
    }
    return 0;
}

void dp_block_config_clear(struct dp_block_config *c)
{
    for (int k = 0; k < DP_LIST_KINDS; k++) {
        for (size_t i = 0; i < c->n[k]; i++) {
            free(c->path[k][i]);
            c->path[k][i] = NULL;
        }
        c->n[k] = 0;
    }
    dp_feed_config_clear(&c->feeds);
    dp_feed_url_config_clear(&c->urls);
    dotproxy_blocker_free(c->blocker);
    c->blocker = NULL;
}

static int add_list(dotproxy_config *cfg, int kind, const char *path)
{
    if (cfg == NULL || path == NULL || path[0] == '\0')
        return DOTPROXY_EINVAL;
    struct dp_block_config *c = &cfg->block;
    if (c->n[kind] == DOTPROXY_BLOCKLISTS_MAX)
        return DOTPROXY_ELIMIT;
    char *copy = strdup(path);
    if (copy == NULL)
        return DOTPROXY_ENOMEM;
    c->path[kind][c->n[kind]++] = copy;
    return 0;
}

DOTPROXY_EXPORT int dotproxy_config_add_blocklist(dotproxy_config *cfg, const char *path)
{
    return add_list(cfg, DOTPROXY_LIST_BLOCK, path);
}

DOTPROXY_EXPORT int dotproxy_config_add_allowlist(dotproxy_config *cfg, const char *path)
{
    return add_list(cfg, DOTPROXY_LIST_ALLOW, path);
}

DOTPROXY_EXPORT int dotproxy_config_add_rpz(dotproxy_config *cfg, const char *path)
{
    return add_list(cfg, DOTPROXY_LIST_RPZ, path);
}

DOTPROXY_EXPORT size_t dotproxy_config_list_count(const dotproxy_config *cfg, int kind)
{
    if (cfg == NULL || kind < 0 || kind >= DP_LIST_KINDS)
        return 0;
    return cfg->block.n[kind];
}

DOTPROXY_EXPORT const char *dotproxy_config_get_list(const dotproxy_config *cfg, int kind,
                                                     size_t index)
{
    if (cfg == NULL || kind < 0 || kind >= DP_LIST_KINDS || index >= cfg->block.n[kind])
        return NULL;
    return cfg->block.path[kind][index];
}

DOTPROXY_EXPORT int dotproxy_config_set_block_action(dotproxy_config *cfg, int action)
{
    if (cfg == NULL || action < DOTPROXY_BLOCK_NXDOMAIN || action > DOTPROXY_BLOCK_ZERO)
        return DOTPROXY_EINVAL;
    cfg->block.action = action;
    return 0;
}

DOTPROXY_EXPORT int dotproxy_config_get_block_action(const dotproxy_config *cfg)
{
    return cfg == NULL ? DOTPROXY_EINVAL : cfg->block.action;
}

DOTPROXY_EXPORT int dotproxy_config_set_block_ttl(dotproxy_config *cfg, unsigned s)
{
    if (cfg == NULL || s > DOTPROXY_BLOCK_TTL_MAX)
        return DOTPROXY_EINVAL;
    cfg->block.ttl = s;
    return 0;
}

DOTPROXY_EXPORT unsigned dotproxy_config_get_block_ttl(const dotproxy_config *cfg)
{
    return cfg == NULL ? 0 : cfg->block.ttl;
}

DOTPROXY_EXPORT int dotproxy_config_set_blocklist_check_s(dotproxy_config *cfg, unsigned s)
{
    if (cfg == NULL || s > DOTPROXY_BLOCKLIST_CHECK_MAX)
        return DOTPROXY_EINVAL;
    cfg->block.check_s = s;
    return 0;
}

DOTPROXY_EXPORT unsigned dotproxy_config_get_blocklist_check_s(const dotproxy_config *cfg)
{
    return cfg == NULL ? 0 : cfg->block.check_s;
}

DOTPROXY_EXPORT int dotproxy_config_set_blocker(dotproxy_config *cfg, dotproxy_blocker *b)
{
    if (cfg == NULL)
        return DOTPROXY_EINVAL;
    if (b != NULL)
        blocker_ref(b);
    dotproxy_blocker_free(cfg->block.blocker);
    cfg->block.blocker = b;
    return 0;
}

/* ---- lists and snapshots ---- */

/* What the blocker knows of one configured file across reloads: the
 * metrics outlive any one load of it. Never freed before the blocker. */
struct dp_list_stat {
    struct dp_list_stat *next;
    int kind;
    char *path;
    const char *base; /* the file name inside path (or url): what clients are told */
    char *url;        /* a list over HTTPS: its URL (path is its state file); else NULL */
    atomic_uint_fast64_t decided;
    /* under the blocker's mutex: */
    uint64_t entries, skipped, failures;
    int64_t loaded_s;
    int configured; /* in the configuration of the last reload */
};

struct dp_block_list {
    atomic_uint refs;
    int kind;
    struct dp_list_stat *stat;
    struct dp_list_sets sets; /* empty sets for a zone */
    struct dp_rpz *rpz;       /* DOTPROXY_LIST_RPZ: the zone */
    unsigned feed_gen;        /* a feed's state file: the feed's generation it was read at */
    /* The file as it was read: a change of any means a rebuild. */
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
};

struct dp_block_snap {
    atomic_uint refs;
    struct dp_block_snap *dead_next; /* in the blocker's list of snapshots to free */
    int action;
    unsigned ttl;
    size_t n;
    struct dp_block_list *list[]; /* allowlists, then blocklists, in order */
};

static void list_unref(struct dp_block_list *l)
{
    if (l != NULL && atomic_fetch_sub(&l->refs, 1) == 1) {
        dp_list_sets_clear(&l->sets);
        dp_rpz_free(l->rpz);
        free(l);
    }
}

static void snap_free(struct dp_block_snap *s)
{
    for (size_t i = 0; i < s->n; i++)
        list_unref(s->list[i]);
    free(s);
}

static void snap_unref(struct dp_block_snap *s)
{
    if (s == NULL || atomic_fetch_sub(&s->refs, 1) != 1)
        return;
    snap_free(s);
}

/* ---- the blocker ---- */

struct dotproxy_blocker {
    atomic_uint refs;
    atomic_uint gen;
    struct dp_logger log;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    int thread_on;
    /* under mu: */
    struct dp_block_snap *cur;
    struct dp_list_stat *stats;
    struct dp_block_config want; /* what the next rebuild reads */
    int reload_asked, stopping;
    int poke;                 /* a feed wrote a new copy: rebuild the changed files */
    struct dp_feeds *feeds;   /* zone-transfer feeds, or NULL */
    struct dp_feed_url *urls; /* lists over HTTPS, or NULL */
    struct dp_feed_delta *delta[DOTPROXY_FEEDS_MAX]; /* per feed, the newest to apply */
    struct dp_list parts;                            /* contexts to wake after a swap */
    /* Snapshots a worker let go of last, for the list thread to free:
     * unmapping a table of millions of slots is no work for a thread that
     * answers queries. */
    struct dp_block_snap *dead;
};

/* Let go of s from a worker: when it was the last holder, the list thread
 * frees it. */
static void snap_drop(struct dotproxy_blocker *b, struct dp_block_snap *s)
{
    if (s == NULL || atomic_fetch_sub(&s->refs, 1) != 1)
        return;
    if (!b->thread_on) {
        snap_free(s);
        return;
    }
    pthread_mutex_lock(&b->mu);
    s->dead_next = b->dead;
    b->dead = s;
    pthread_cond_signal(&b->cv);
    pthread_mutex_unlock(&b->mu);
}

static void blocker_ref(struct dotproxy_blocker *b)
{
    atomic_fetch_add(&b->refs, 1);
}

static struct dp_list_stat *stat_for(struct dotproxy_blocker *b, int kind, const char *path)
{
    for (struct dp_list_stat *s = b->stats; s != NULL; s = s->next)
        if (s->kind == kind && strcmp(s->path, path) == 0)
            return s;
    struct dp_list_stat *s = calloc(1, sizeof *s);
    if (s == NULL || (s->path = strdup(path)) == NULL) {
        free(s);
        return NULL;
    }
    s->kind = kind;
    const char *slash = strrchr(s->path, '/');
    s->base = slash != NULL ? slash + 1 : s->path;
    /* A list over HTTPS is named by its URL, not by its state file. */
    for (size_t i = 0; kind == DOTPROXY_LIST_BLOCK && i < b->want.urls.n; i++) {
        char sp[4096];
        if (dp_feed_url_state_path(b->want.urls.state_dir, b->want.urls.url[i], sp, sizeof sp) ==
                0 &&
            strcmp(sp, path) == 0) {
            char shown[DP_FEED_URL_LEN_MAX + 8];
            dp_feed_url_shown(b->want.urls.url[i], shown, sizeof shown);
            if ((s->url = strdup(shown)) == NULL) {
                free(s->path);
                free(s);
                return NULL;
            }
            s->base = s->url;
            break;
        }
    }
    atomic_init(&s->decided, 0);
    s->next = b->stats;
    b->stats = s;
    return s;
}

/* Read one file into a new list. NULL with err set when it cannot be read
 * (or, strict, has a bad line). Runs without the mutex: it is the slow
 * part. */
static struct dp_block_list *list_load(int kind, const char *path, int strict, int *rc, char *err,
                                       size_t errlen)
{
    *rc = DOTPROXY_ENOMEM;
    struct dp_block_list *l = calloc(1, sizeof *l);
    if (l == NULL) {
        snprintf(err, errlen, "%s: out of memory", path);
        return NULL;
    }
    struct stat st;
    if (stat(path, &st) != 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        *rc = DOTPROXY_ESYS;
        free(l);
        return NULL;
    }
    if (kind == DOTPROXY_LIST_RPZ) {
        struct dp_rpz_diag diag;
        *rc = dp_rpz_load(&l->rpz, path, strict, &diag);
        if (*rc == 0 && ((l->sets.block = dp_nameset_new(0)) == NULL ||
                         (l->sets.allow = dp_nameset_new(0)) == NULL)) {
            dp_list_sets_clear(&l->sets);
            dp_rpz_free(l->rpz);
            *rc = DOTPROXY_ENOMEM;
            snprintf(err, errlen, "%s: out of memory", path);
        } else if (*rc != 0) {
            snprintf(err, errlen, "%s",
                     diag.error[0] != '\0' ? diag.error : dotproxy_strerror(*rc));
        } else {
            l->sets.skipped = diag.skipped;
            /* A forwarder sees no delegation: those triggers can never
             * fire, and the operator should know the zone is not applied
             * whole. */
            if (diag.has_nsdname || diag.has_nsip)
                snprintf(err, errlen,
                         "%s: rpz-nsdname/rpz-nsip rules are ignored: a forwarder sees no "
                         "delegation",
                         path);
            else
                err[0] = '\0';
        }
    } else {
        *rc = dp_list_load(&l->sets, path, kind == DOTPROXY_LIST_ALLOW, strict, err, errlen);
    }
    if (*rc != 0) {
        free(l);
        return NULL;
    }
    atomic_init(&l->refs, 1);
    l->kind = kind;
    l->dev = st.st_dev;
    l->ino = st.st_ino;
    l->size = st.st_size;
    l->mtime = st.st_mtim;
    return l;
}

static int list_changed(const struct dp_block_list *l, const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return 1; /* gone: the rebuild says so and keeps the old names */
    return st.st_dev != l->dev || st.st_ino != l->ino || st.st_size != l->size ||
           st.st_mtim.tv_sec != l->mtime.tv_sec || st.st_mtim.tv_nsec != l->mtime.tv_nsec;
}

static struct dp_block_list *snap_find(const struct dp_block_snap *s, int kind, const char *path)
{
    for (size_t i = 0; s != NULL && i < s->n; i++)
        if (s->list[i]->kind == kind && strcmp(s->list[i]->stat->path, path) == 0)
            return s->list[i];
    return NULL;
}

static const int kind_order[DP_LIST_KINDS] = {DOTPROXY_LIST_ALLOW, DOTPROXY_LIST_RPZ,
                                              DOTPROXY_LIST_BLOCK};

static const char *const kind_names[DP_LIST_KINDS] = {"allowlist", "rpz", "blocklist"};

/* Build a snapshot of conf's files. all: read every file; else only those
 * whose file changed (the rest are shared with old). strict: a file that
 * cannot be read fails the build; else the old list (or an empty one) takes
 * its place and the failure is counted. Called with the mutex held only
 * around the bookkeeping. 0, or a dotproxy_error with err set. */
static int snap_build(struct dotproxy_blocker *b, const struct dp_block_config *conf,
                      const struct dp_block_snap *old, int all, int strict, int *changed,
                      struct dp_block_snap **out, char *err, size_t errlen)
{
    size_t n = conf->n[0] + conf->n[1] + conf->n[2];
    struct dp_block_snap *s = calloc(1, sizeof *s + n * sizeof s->list[0]);
    if (s == NULL) {
        snprintf(err, errlen, "out of memory");
        return DOTPROXY_ENOMEM;
    }
    atomic_init(&s->refs, 1);
    s->action = conf->action;
    s->ttl = conf->ttl;
    *changed = old == NULL || old->action != conf->action || old->ttl != conf->ttl;
    size_t oldn = 0;
    for (int ki = 0; ki < DP_LIST_KINDS; ki++) {
        int kind = kind_order[ki];
        for (size_t i = 0; i < conf->n[kind]; i++) {
            const char *path = conf->path[kind][i];
            struct dp_block_list *prev = snap_find(old, kind, path);
            struct dp_block_list *l = NULL;
            oldn++;
            /* A feed's zone changes when the feed says so (a new whole copy
             * is a new generation; layers come through its delta hook), not
             * when its state file is rewritten behind a layer. */
            int feed = kind == DOTPROXY_LIST_RPZ ? dp_feeds_index_of(b->feeds, path) : -1;
            unsigned feed_gen = feed >= 0 ? dp_feeds_generation(b->feeds, (size_t)feed) : 0;
            int keep = prev != NULL && (feed >= 0 ? prev->rpz != NULL && prev->feed_gen == feed_gen
                                                  : !all && !list_changed(prev, path));
            if (keep) {
                atomic_fetch_add(&prev->refs, 1);
                s->list[s->n++] = prev;
                continue;
            }
            char why[600] = "";
            struct timespec t0, t1;
            clock_gettime(CLOCK_MONOTONIC, &t0);
            int lrc = 0;
            l = list_load(kind, path, strict, &lrc, why, sizeof why);
            clock_gettime(CLOCK_MONOTONIC, &t1);
            pthread_mutex_lock(&b->mu);
            struct dp_list_stat *st = stat_for(b, kind, path);
            if (st != NULL && l != NULL) {
                st->entries = dp_nameset_count(l->sets.block) + dp_nameset_count(l->sets.allow) +
                              (l->rpz != NULL ? dp_rpz_rule_count(l->rpz) : 0);
                st->skipped = l->sets.skipped;
                st->loaded_s = (int64_t)time(NULL);
            } else if (st != NULL) {
                st->failures++;
            }
            pthread_mutex_unlock(&b->mu);
            if (st == NULL) {
                list_unref(l);
                snap_unref(s);
                snprintf(err, errlen, "out of memory");
                return DOTPROXY_ENOMEM;
            }
            if (l == NULL && strict) {
                snap_unref(s);
                snprintf(err, errlen, "%s", why);
                return lrc;
            }
            if (l == NULL) {
                dp_log(&b->log, DOTPROXY_LOG_ERR, "%s %s: %s; %s", kind_names[kind],
                       st->url != NULL ? st->url : path, why,
                       prev != NULL ? "keeping the names loaded before" : "it blocks nothing");
                if (prev != NULL) {
                    atomic_fetch_add(&prev->refs, 1);
                    s->list[s->n++] = prev;
                    continue;
                }
                /* Empty, so that the list is still there to count and to
                 * load when the file appears. */
                l = calloc(1, sizeof *l);
                if (l == NULL || (l->sets.block = dp_nameset_new(0)) == NULL ||
                    (l->sets.allow = dp_nameset_new(0)) == NULL) {
                    if (l != NULL)
                        dp_list_sets_clear(&l->sets);
                    free(l);
                    snap_unref(s);
                    snprintf(err, errlen, "out of memory");
                    return DOTPROXY_ENOMEM;
                }
                atomic_init(&l->refs, 1);
                l->kind = kind;
                l->size = -1; /* never equal to a file's: any file is a change */
            } else {
                double ms =
                    (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
                dp_log(&b->log, DOTPROXY_LOG_INFO,
                       "%s %s: %zu %s, %lu %s skipped, %zu octets, loaded in %.0f ms",
                       kind_names[kind], st->url != NULL ? st->url : path,
                       dp_nameset_count(l->sets.block) + dp_nameset_count(l->sets.allow) +
                           (l->rpz != NULL ? dp_rpz_rule_count(l->rpz) : 0),
                       l->rpz != NULL ? "rules" : "names", l->sets.skipped,
                       l->rpz != NULL ? "records" : "lines",
                       dp_nameset_bytes(l->sets.block) + dp_nameset_bytes(l->sets.allow) +
                           (l->rpz != NULL ? dp_rpz_memory(l->rpz) : 0),
                       ms);
            }
            l->stat = st;
            l->feed_gen = feed_gen;
            s->list[s->n++] = l;
            *changed = 1;
        }
    }
    if (old != NULL && old->n != oldn)
        *changed = 1;
    *out = s;
    return 0;
}

/* Put s in place and wake every context so that it moves to s (and lets
 * the old snapshot go). Takes s's reference. */
static void blocker_swap(struct dotproxy_blocker *b, struct dp_block_snap *s)
{
    pthread_mutex_lock(&b->mu);
    struct dp_block_snap *old = b->cur;
    b->cur = s;
    atomic_fetch_add(&b->gen, 1);
    for (struct dp_list *e = b->parts.next; e != &b->parts; e = e->next) {
        struct dp_block_part *p = DP_CONTAINER_OF(e, struct dp_block_part, waiter);
        if (p->wake != NULL)
            p->wake(p->wake_user);
    }
    pthread_mutex_unlock(&b->mu);
    snap_unref(old);
}

/* The state files of the lists over HTTPS that hold a copy of their URL
 * join the blocklists to load (after the --blocklist files), as the
 * feeds' zones join the zones. Under the mutex. */
static void add_url_paths(struct dotproxy_blocker *b)
{
    struct dp_block_config *w = &b->want;
    for (size_t i = 0; i < w->urls.n; i++) {
        char path[4096];
        struct dp_feed_url_validators v;
        if (dp_feed_url_state_path(w->urls.state_dir, w->urls.url[i], path, sizeof path) != 0 ||
            dp_feed_url_state_read(path, w->urls.url[i], &v) != 0)
            continue;
        size_t k = 0, *n = &w->n[DOTPROXY_LIST_BLOCK];
        while (k < *n && strcmp(w->path[DOTPROXY_LIST_BLOCK][k], path) != 0)
            k++;
        if (k < *n)
            continue;
        char *copy = k < DOTPROXY_BLOCKLISTS_MAX ? strdup(path) : NULL;
        if (copy == NULL) {
            dp_log(&b->log, DOTPROXY_LOG_ERR, "blocklist-url %s: no room for its list",
                   w->urls.url[i]);
            continue;
        }
        w->path[DOTPROXY_LIST_BLOCK][(*n)++] = copy;
    }
}

/* The state files of the feeds that have one join the zones to load
 * (after the --rpz files): a feed's rules apply once its first copy is on
 * disk, whether this run or an earlier one wrote it. Under the mutex. */
static void add_feed_paths(struct dotproxy_blocker *b)
{
    struct dp_block_config *w = &b->want;
    for (size_t i = 0; i < w->feeds.n; i++) {
        char path[4096];
        struct stat st;
        if (dp_feed_state_path(&w->feeds, i, path, sizeof path) != 0 || stat(path, &st) != 0)
            continue;
        size_t k = 0;
        while (k < w->n[DOTPROXY_LIST_RPZ] && strcmp(w->path[DOTPROXY_LIST_RPZ][k], path) != 0)
            k++;
        if (k < w->n[DOTPROXY_LIST_RPZ])
            continue;
        char *copy = k < DOTPROXY_BLOCKLISTS_MAX ? strdup(path) : NULL;
        if (copy == NULL) {
            dp_log(&b->log, DOTPROXY_LOG_ERR, "rpz feed %s: no room for its zone",
                   w->feeds.primary[i]);
            continue;
        }
        w->path[DOTPROXY_LIST_RPZ][w->n[DOTPROXY_LIST_RPZ]++] = copy;
    }
    add_url_paths(b);
}

/* From the feed thread: an IXFR to apply as a layer (the newest replaces
 * any not applied yet: it holds every owner changed since the copy). */
static void feeds_delta(void *user, struct dp_feed_delta *d)
{
    struct dotproxy_blocker *b = user;
    if (d->index >= DOTPROXY_FEEDS_MAX) {
        dp_feed_delta_free(d);
        return;
    }
    pthread_mutex_lock(&b->mu);
    dp_feed_delta_free(b->delta[d->index]);
    b->delta[d->index] = d;
    b->poke = 1;
    pthread_cond_signal(&b->cv);
    pthread_mutex_unlock(&b->mu);
}

/* Put the feeds' changes d (taken) into s, a snapshot only this thread
 * holds yet, as layers over the zones they apply to. A change that finds
 * no zone of its generation asks its feed for a whole copy. */
static void apply_deltas(struct dotproxy_blocker *b, struct dp_block_snap *s,
                         struct dp_feed_delta **d, int *changed)
{
    for (size_t i = 0; i < DOTPROXY_FEEDS_MAX; i++) {
        if (d[i] == NULL)
            continue;
        size_t k = 0;
        while (k < s->n && (s->list[k]->kind != DOTPROXY_LIST_RPZ ||
                            dp_feeds_index_of(b->feeds, s->list[k]->stat->path) != (int)i))
            k++;
        struct dp_block_list *old = k < s->n ? s->list[k] : NULL;
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        struct dp_rpz *z = NULL;
        struct dp_block_list *l = NULL;
        int rc = DOTPROXY_ESTATE;
        if (old != NULL && old->rpz != NULL && old->feed_gen == d[i]->gen)
            rc = dp_rpz_layer_new(&z, old->rpz, d[i]->text, d[i]->len, d[i]->owners,
                                  d[i]->owners_len, NULL);
        if (rc == 0 &&
            ((l = calloc(1, sizeof *l)) == NULL || (l->sets.block = dp_nameset_new(0)) == NULL ||
             (l->sets.allow = dp_nameset_new(0)) == NULL)) {
            if (l != NULL)
                dp_list_sets_clear(&l->sets);
            free(l);
            dp_rpz_free(z);
            rc = DOTPROXY_ENOMEM;
        }
        if (rc != 0) {
            dp_log(&b->log, DOTPROXY_LOG_WARN,
                   "rpz feed %zu: serial %lu cannot be applied as a layer (%s); asking for a "
                   "whole copy",
                   i + 1, (unsigned long)d[i]->serial,
                   rc == DOTPROXY_ESTATE ? "no zone of its generation, or two spellings of "
                                           "one address trigger"
                                         : dotproxy_strerror(rc));
            dp_feeds_resync(b->feeds, i);
        } else {
            atomic_init(&l->refs, 1);
            l->kind = old->kind;
            l->stat = old->stat;
            l->rpz = z;
            l->feed_gen = old->feed_gen;
            l->dev = old->dev;
            l->ino = old->ino;
            l->size = old->size;
            l->mtime = old->mtime;
            s->list[k] = l;
            list_unref(old);
            *changed = 1;
            clock_gettime(CLOCK_MONOTONIC, &t1);
            pthread_mutex_lock(&b->mu);
            l->stat->entries = dp_rpz_rule_count(z);
            l->stat->loaded_s = (int64_t)time(NULL);
            pthread_mutex_unlock(&b->mu);
            dp_log(&b->log, DOTPROXY_LOG_INFO,
                   "rpz %s: serial %lu applied: %zu owners changed since the whole copy, a layer "
                   "of %zu triggers over the zone, %zu rules, built in %.1f ms",
                   l->stat->path, (unsigned long)d[i]->serial, d[i]->nowners, dp_rpz_layer_size(z),
                   dp_rpz_rule_count(z),
                   (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
        }
        dp_feed_delta_free(d[i]);
        d[i] = NULL;
    }
}

/* From the feed thread: a new copy is on disk. */
static void feeds_changed(void *user)
{
    struct dotproxy_blocker *b = user;
    pthread_mutex_lock(&b->mu);
    b->poke = 1;
    pthread_cond_signal(&b->cv);
    pthread_mutex_unlock(&b->mu);
}

static void *blocker_thread(void *arg)
{
    struct dotproxy_blocker *b = arg;
    /* Rebuilding a list is background work: on a busy machine the workers
     * answering queries come first (Linux takes a thread id here; a failure
     * only leaves the default priority). */
    (void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 10);
    dp_list_load_yields(1);
    pthread_mutex_lock(&b->mu);
    struct timespec due;
    int have_due = 0;
    for (;;) {
        int timed_out = 0;
        while (!b->stopping && !b->reload_asked && !b->poke && b->dead == NULL) {
            if (b->want.check_s == 0) {
                pthread_cond_wait(&b->cv, &b->mu);
                continue;
            }
            if (!have_due) {
                clock_gettime(CLOCK_REALTIME, &due);
                due.tv_sec += b->want.check_s;
                have_due = 1;
            }
            if (pthread_cond_timedwait(&b->cv, &b->mu, &due) == ETIMEDOUT) {
                timed_out = 1;
                break;
            }
        }
        if (b->stopping)
            break;
        if (b->dead != NULL) {
            struct dp_block_snap *d = b->dead;
            b->dead = NULL;
            pthread_mutex_unlock(&b->mu);
            while (d != NULL) {
                struct dp_block_snap *next = d->dead_next;
                snap_free(d);
                d = next;
            }
            pthread_mutex_lock(&b->mu);
            if (!timed_out && !b->reload_asked && !b->poke)
                continue;
        }
        have_due = 0;
        int all = b->reload_asked;
        b->reload_asked = 0;
        b->poke = 0;
        struct dp_feed_delta *deltas[DOTPROXY_FEEDS_MAX];
        memcpy(deltas, b->delta, sizeof deltas);
        memset(b->delta, 0, sizeof b->delta);
        add_feed_paths(b);
        struct dp_block_config conf;
        int rc = dp_block_config_copy(&conf, &b->want);
        struct dp_block_snap *old = b->cur;
        if (old != NULL)
            atomic_fetch_add(&old->refs, 1);
        pthread_mutex_unlock(&b->mu);
        if (rc == 0) {
            struct dp_block_snap *s = NULL;
            int changed = 0;
            char err[600];
            rc = snap_build(b, &conf, old, all, 0, &changed, &s, err, sizeof err);
            if (rc == 0)
                apply_deltas(b, s, deltas, &changed);
            if (rc != 0)
                dp_log(&b->log, DOTPROXY_LOG_ERR,
                       "blocklists: reload failed: %s; keeping the "
                       "lists in use",
                       err);
            else if (changed)
                blocker_swap(b, s);
            else
                snap_unref(s);
            dp_block_config_clear(&conf);
        }
        for (size_t i = 0; i < DOTPROXY_FEEDS_MAX; i++)
            if (deltas[i] != NULL) {
                /* not applied (the rebuild failed): a whole copy instead */
                dp_feed_delta_free(deltas[i]);
                dp_feeds_resync(b->feeds, i);
            }
        snap_unref(old);
        pthread_mutex_lock(&b->mu);
    }
    pthread_mutex_unlock(&b->mu);
    return NULL;
}

/* Copy cfg's lists and settings, without its blocker reference (a blocker
 * must not hold itself). */
static int want_from(struct dp_block_config *dst, const struct dotproxy_config *cfg)
{
    struct dp_block_config src = cfg->block;
    src.blocker = NULL;
    src.urls.ca_file = cfg->ca_file; /* lists over HTTPS trust what upstreams trust */
    src.urls.state_dir = cfg->block.feeds.state_dir;
    return dp_block_config_copy(dst, &src);
}

DOTPROXY_EXPORT int dotproxy_blocker_new(dotproxy_blocker **out, const dotproxy_config *cfg,
                                         int strict, char *err, size_t errlen)
{
    char dummy[8];
    if (err == NULL) {
        err = dummy;
        errlen = sizeof dummy;
    }
    if (errlen > 0)
        err[0] = '\0';
    if (out == NULL || cfg == NULL)
        return DOTPROXY_EINVAL;
    struct dotproxy_blocker *b = calloc(1, sizeof *b);
    if (b == NULL)
        return DOTPROXY_ENOMEM;
    atomic_init(&b->refs, 1);
    atomic_init(&b->gen, 1);
    b->log = cfg->log;
    dp_list_init(&b->parts);
    if (pthread_mutex_init(&b->mu, NULL) != 0) {
        free(b);
        return DOTPROXY_ENOMEM;
    }
    pthread_condattr_t ca;
    if (pthread_condattr_init(&ca) != 0 || pthread_cond_init(&b->cv, &ca) != 0) {
        pthread_mutex_destroy(&b->mu);
        free(b);
        return DOTPROXY_ENOMEM;
    }
    pthread_condattr_destroy(&ca);
    int rc = want_from(&b->want, cfg);
    int changed;
    /* --check-config reads the configuration, not what feeds left. */
    if (rc == 0 && !strict)
        add_feed_paths(b);
    if (rc == 0)
        rc = snap_build(b, &b->want, NULL, 1, strict, &changed, &b->cur, err, errlen);
    if (rc == 0 && !strict) {
        rc = dp_feeds_new_tls(&b->feeds, &b->want.feeds, &b->log, feeds_changed, b, cfg);
        if (rc != 0)
            snprintf(err, errlen, "cannot start the feeds: %s", dotproxy_strerror(rc));
        else
            dp_feeds_set_delta_hook(b->feeds, feeds_delta, b);
    }
    if (rc == 0 && !strict) {
        rc = dp_feed_url_new(&b->urls, &b->want.urls, &b->log, feeds_changed, b);
        if (rc != 0)
            snprintf(err, errlen, "cannot start the list fetcher: %s", dotproxy_strerror(rc));
    }
    if (rc == 0 && !strict) {
        int e = pthread_create(&b->thread, NULL, blocker_thread, b);
        if (e != 0) {
            snprintf(err, errlen, "cannot start the blocklist thread: %s", strerror(e));
            rc = DOTPROXY_ESYS;
        } else {
            b->thread_on = 1;
        }
    }
    if (rc != 0) {
        dotproxy_blocker_free(b);
        return rc;
    }
    *out = b;
    return 0;
}

DOTPROXY_EXPORT void dotproxy_blocker_free(dotproxy_blocker *b)
{
    if (b == NULL || atomic_fetch_sub(&b->refs, 1) != 1)
        return;
    /* The blocker's thread asks the feeds (generations, whole copies):
     * it stops first; the feed thread's hooks only mark work for it. */
    if (b->thread_on) {
        pthread_mutex_lock(&b->mu);
        b->stopping = 1;
        pthread_cond_signal(&b->cv);
        pthread_mutex_unlock(&b->mu);
        pthread_join(b->thread, NULL);
    }
    dp_feeds_free(b->feeds);
    b->feeds = NULL;
    /* The fetch thread's hook only marks work for the stopped thread. */
    dp_feed_url_free(b->urls);
    b->urls = NULL;
    while (b->dead != NULL) {
        struct dp_block_snap *d = b->dead;
        b->dead = d->dead_next;
        snap_free(d);
    }
    snap_unref(b->cur);
    for (size_t i = 0; i < DOTPROXY_FEEDS_MAX; i++)
        dp_feed_delta_free(b->delta[i]);
    while (b->stats != NULL) {
        struct dp_list_stat *s = b->stats;
        b->stats = s->next;
        free(s->path);
        free(s->url);
        free(s);
    }
    dp_block_config_clear(&b->want);
    pthread_cond_destroy(&b->cv);
    pthread_mutex_destroy(&b->mu);
    free(b);
}

DOTPROXY_EXPORT int dotproxy_blocker_reload(dotproxy_blocker *b, const dotproxy_config *cfg)
{
    if (b == NULL || cfg == NULL)
        return DOTPROXY_EINVAL;
    struct dp_block_config n;
    int rc = want_from(&n, cfg);
    if (rc != 0)
        return rc;
    pthread_mutex_lock(&b->mu);
    /* The lists over HTTPS and the zone-transfer feeds belong to threads
     * started with the blocker: restart-only. Taking a new --state-dir or
     * --rpz-primary here would point the engine at copies nobody writes
     * and drop the zones the running feeds keep current. */
    struct dp_url_config urls = b->want.urls;
    struct dp_feed_config feeds = b->want.feeds;
    memset(&b->want.urls, 0, sizeof b->want.urls);
    memset(&b->want.feeds, 0, sizeof b->want.feeds);
    dp_block_config_clear(&b->want);
    dp_feed_url_config_clear(&n.urls);
    dp_feed_config_clear(&n.feeds);
    b->want = n;
    b->want.urls = urls;
    b->want.feeds = feeds;
    add_feed_paths(b);
    b->reload_asked = 1;
    pthread_cond_signal(&b->cv);
    pthread_mutex_unlock(&b->mu);
    return 0;
}

DOTPROXY_EXPORT unsigned dotproxy_blocker_generation(const dotproxy_blocker *b)
{
    return b == NULL ? 0 : atomic_load(&b->gen);
}

DOTPROXY_EXPORT int dotproxy_blocker_lists(dotproxy_blocker *b, dotproxy_list_info_fn fn,
                                           void *user)
{
    if (b == NULL || fn == NULL)
        return DOTPROXY_EINVAL;
    pthread_mutex_lock(&b->mu);
    for (int ki = 0; ki < DP_LIST_KINDS; ki++) {
        int kind = kind_order[ki];
        for (size_t i = 0; i < b->want.n[kind]; i++) {
            struct dp_list_stat *s = NULL;
            for (s = b->stats; s != NULL; s = s->next)
                if (s->kind == kind && strcmp(s->path, b->want.path[kind][i]) == 0)
                    break;
            dotproxy_list_info info = {.kind = kind, .path = b->want.path[kind][i]};
            if (s != NULL && s->url != NULL)
                info.path = s->url;
            if (s != NULL) {
                info.entries = s->entries;
                info.skipped = s->skipped;
                info.blocked = atomic_load_explicit(&s->decided, memory_order_relaxed);
                info.failures = s->failures;
                info.loaded_s = s->loaded_s;
            }
            fn(&info, user);
        }
    }
    pthread_mutex_unlock(&b->mu);
    return 0;
}

/* ---- names as text ---- */

/* Presentation form of a lower-case wire name ("www.example.com."). */
static void name_text(const uint8_t *wire, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; wire[i] != 0 && o + 5 < cap;) {
        unsigned n = wire[i++];
        for (unsigned k = 0; k < n && o + 5 < cap; k++, i++) {
            uint8_t c = wire[i];
            if (c == '.' || c == '\\' || c < 0x21 || c > 0x7e)
                o += (size_t)snprintf(out + o, cap - o, "\\%03u", c);
            else
                out[o++] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
        }
        out[o++] = '.';
    }
    if (o == 0)
        out[o++] = '.';
    out[o] = '\0';
}

static const char *const action_names[] = {"nxdomain", "nodata", "refused", "zero"};

/* ---- decisions ---- */

static void copy_rule(uint8_t *dst, const uint8_t *wire, const struct dp_name_hashes *h, int i)
{
    const uint8_t *p = wire + h->off[i];
    size_t n = 0;
    while (p[n] != 0)
        n += 1u + p[n];
    memcpy(dst, p, n + 1);
}

/* An RPZ rule's verdict: the draft's actions. */
static int rpz_verdict(const struct dp_block_list *l, const struct dp_rpz_hit *hit,
                       const uint8_t *wire, const struct dp_name_hashes *h,
                       struct dp_block_verdict *v)
{
    v->list = l;
    v->zone = l->rpz;
    v->hit = *hit;
    copy_rule(v->rule, wire, h, 0); /* the SOA of an RPZ answer is the name's own */
    switch (hit->action) {
    case DP_RPZ_PASSTHRU: v->what = DP_BLOCK_ALLOWED; break;
    case DP_RPZ_NXDOMAIN:
        v->what = DP_BLOCK_ANSWER;
        v->action = DOTPROXY_BLOCK_NXDOMAIN;
        break;
    case DP_RPZ_NODATA:
        v->what = DP_BLOCK_ANSWER;
        v->action = DOTPROXY_BLOCK_NODATA;
        break;
    case DP_RPZ_DROP: v->what = DP_BLOCK_DROP; break;
    case DP_RPZ_TCP_ONLY: v->what = DP_BLOCK_TCP_ONLY; break;
    case DP_RPZ_LOCAL: v->what = DP_BLOCK_LOCAL; break;
    }
    return v->what;
}

/* The snapshot's verdict for a name whose suffix hashes are h (client:
 * who asked, NULL when unknown or for a chain member). Precedence: an
 * allowlist match or an exception in any list passes the name, whatever
 * else matches, even a more specific blocked name; then RPZ zones in order
 * (the first zone with a rule decides; in a zone client-ip before QNAME, as
 * the draft says); then blocklists in order. */
static int decide_hashes(const struct dp_block_snap *s, const uint8_t *wire,
                         const struct dp_name_hashes *h, const struct sockaddr *client,
                         struct dp_block_verdict *v)
{
    v->what = DP_BLOCK_PASS;
    v->list = NULL;
    v->zone = NULL;
    v->via_addr[0] = '\0';
    for (size_t i = 0; i < s->n; i++) {
        const struct dp_block_list *l = s->list[i];
        int m = dp_nameset_match(l->sets.allow, h);
        if (m >= 0) {
            v->what = DP_BLOCK_ALLOWED;
            v->list = l;
            copy_rule(v->rule, wire, h, m);
            return v->what;
        }
    }
    for (size_t i = 0; i < s->n; i++) {
        const struct dp_block_list *l = s->list[i];
        if (l->rpz != NULL) {
            struct dp_rpz_hit hit;
            if ((client != NULL && dp_rpz_match_client(l->rpz, client, &hit)) ||
                dp_rpz_match_qname(l->rpz, wire, &hit))
                return rpz_verdict(l, &hit, wire, h, v);
            continue;
        }
        if (l->kind != DOTPROXY_LIST_BLOCK)
            continue;
        int m = dp_nameset_match(l->sets.block, h);
        if (m >= 0) {
            v->what = DP_BLOCK_ANSWER;
            v->action = s->action;
            v->list = l;
            copy_rule(v->rule, wire, h, m);
            return v->what;
        }
    }
    return v->what;
}

static void count(const struct dp_block_verdict *v)
{
    atomic_fetch_add_explicit(&v->list->stat->decided, 1, memory_order_relaxed);
}

int dp_block_decide(const struct dp_block_part *p, const uint8_t *qname, size_t cap,
                    const struct sockaddr *client, struct dp_block_verdict *v)
{
    struct dp_name_hashes h;
    v->via[0] = 0xff;
    v->what = DP_BLOCK_PASS;
    if (p->snap == NULL || dp_name_hashes_make(&h, qname, cap) != 0)
        return DP_BLOCK_PASS;
    int what = decide_hashes(p->snap, qname, &h, client, v);
    if (what != DP_BLOCK_PASS)
        count(v);
    return what;
}

/* An address in an answer against the zones' rpz-ip rules, in zone order. */
static int ip_verdict(const struct dp_block_snap *s, int family, const uint8_t *addr,
                      const uint8_t *qname, const struct dp_name_hashes *qh,
                      struct dp_block_verdict *v)
{
    for (size_t i = 0; i < s->n; i++) {
        const struct dp_block_list *l = s->list[i];
        struct dp_rpz_hit hit;
        if (l->rpz == NULL || !dp_rpz_match_ip(l->rpz, family, addr, &hit))
            continue;
        int what = rpz_verdict(l, &hit, qname, qh, v);
        inet_ntop(family, addr, v->via_addr, sizeof v->via_addr);
        return what;
    }
    return DP_BLOCK_PASS;
}

int dp_block_check_answer(const struct dp_block_part *p, const uint8_t *msg, size_t len,
                          struct dp_block_verdict *v)
{
    if (p->snap == NULL || len < DOTPROXY_DNS_HEADER_SIZE)
        return 0;
    unsigned an = dp_get16(msg + 6);
    unsigned ar = dp_get16(msg + 10);
    unsigned total = an + dp_get16(msg + 8) + ar;
    if (an == 0 || dp_get16(msg + 4) != 1)
        return 0;
    uint8_t qname[DOTPROXY_DNS_MAX_NAME];
    size_t qoff = 0;
    struct dp_name_hashes qh;
    int ql = dp_dns_msg_name_lower(msg, len, DOTPROXY_DNS_HEADER_SIZE, qname, &qoff);
    if (ql <= 0 || qoff + 4 > len || dp_name_hashes_make(&qh, qname, (size_t)ql) != 0)
        return 0;
    /* The question's own verdict was had before the query went out; only
     * an allowed name matters here: its chain is never blocked. */
    if (decide_hashes(p->snap, qname, &qh, NULL, v) == DP_BLOCK_ALLOWED)
        return 0;
    size_t off = qoff + 4;
    v->qend = off;
    v->had_opt = 0;
    v->via[0] = 0xff;
    int hit = DP_BLOCK_PASS;
    for (unsigned i = 0; i < total; i++) {
        int e = dp_dns_msg_skip_name(msg, len, off);
        if (e < 0 || (size_t)e + 10 > len)
            return 0;
        unsigned type = dp_get16(msg + e);
        size_t rdlen = dp_get16(msg + e + 8);
        size_t rdata = (size_t)e + 10;
        if (rdata + rdlen > len)
            return 0;
        if (type == T_OPT && i >= total - ar)
            v->had_opt = 1;
        if (i < an && hit == DP_BLOCK_PASS) {
            if (type == T_CNAME) {
                /* The chain's members are the CNAME targets (its start, the
                 * question, was decided before the query went out). */
                uint8_t target[DOTPROXY_DNS_MAX_NAME];
                struct dp_name_hashes h;
                int tl = dp_dns_msg_name_lower(msg, len, rdata, target, NULL);
                if (tl > 0 && dp_name_hashes_make(&h, target, (size_t)tl) == 0) {
                    int what = decide_hashes(p->snap, target, &h, NULL, v);
                    if (what == DP_BLOCK_ALLOWED)
                        return 0; /* the rest of the chain is an allowed name's */
                    if (what != DP_BLOCK_PASS) {
                        memcpy(v->via, target, (size_t)tl);
                        hit = what;
                    }
                }
            } else if ((type == T_A && rdlen == 4) || (type == T_AAAA && rdlen == 16)) {
                int what = ip_verdict(p->snap, type == T_A ? AF_INET : AF_INET6, msg + rdata, qname,
                                      &qh, v);
                if (what == DP_BLOCK_ALLOWED)
                    return 0; /* rpz-passthru for this address */
                hit = what;
            }
        }
        off = rdata + rdlen;
    }
    if (hit != DP_BLOCK_PASS)
        count(v);
    return hit;
}

void dp_block_describe(const struct dp_block_verdict *v, char *out, size_t cap)
{
    char rule[DOTPROXY_DNS_MAX_NAME * 4 + 2];
    int n;
    if (v->zone != NULL) {
        n = snprintf(out, cap, "rpz %s: %s", dp_rpz_origin(v->zone), v->hit.rule_text);
    } else {
        name_text(v->rule, rule, sizeof rule);
        n = snprintf(out, cap, "%s %s: %s", kind_names[v->list->kind], v->list->stat->base, rule);
    }
    if (n < 0 || (size_t)n >= cap)
        return;
    if (v->via[0] != 0xff) {
        char via[DOTPROXY_DNS_MAX_NAME * 4 + 2];
        name_text(v->via, via, sizeof via);
        snprintf(out + n, cap - (size_t)n, " via cname %s", via);
    } else if (v->via_addr[0] != '\0') {
        snprintf(out + n, cap - (size_t)n, " via address %s", v->via_addr);
    }
}

/* src into dst, cut to fit (log text: a cut is better than none). */
static void copy_cut(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

void dp_block_log_names(const struct dp_block_verdict *v, struct dp_block_part *p)
{
    char text[sizeof p->log_list + sizeof p->log_rule];
    dp_block_describe(v, text, sizeof text);
    /* "KIND NAME: RULE...": the list is what comes before the first ": ". */
    char *sep = strstr(text, ": ");
    if (sep == NULL) {
        copy_cut(p->log_list, sizeof p->log_list, "?");
        copy_cut(p->log_rule, sizeof p->log_rule, text);
        return;
    }
    *sep = '\0';
    copy_cut(p->log_list, sizeof p->log_list, text);
    copy_cut(p->log_rule, sizeof p->log_rule, sep + 2);
}

/* ---- block answers ---- */

static size_t put_rr_head(uint8_t *p, uint16_t type, uint32_t ttl, uint16_t rdlen)
{
    dp_put16(p, type);
    dp_put16(p + 2, C_IN);
    dp_put16(p + 4, (uint16_t)(ttl >> 16));
    dp_put16(p + 6, (uint16_t)ttl);
    dp_put16(p + 8, rdlen);
    return 10;
}

int dp_block_answer(const struct dp_block_part *p, const struct dp_block_verdict *v,
                    const uint8_t *query, size_t qend, int had_opt, uint16_t udp_size, uint8_t *out,
                    size_t cap)
{
    const struct dp_block_snap *s = p->snap;
    if (qend < DOTPROXY_DNS_HEADER_SIZE + 5 || qend > 512 || cap < 1024)
        return -1;
    size_t rule_len = 0;
    while (v->rule[rule_len] != 0)
        rule_len += 1u + v->rule[rule_len];
    rule_len++;
    uint16_t qtype = dp_get16(query + qend - 4);
    unsigned flags = dp_get16(query + 2);
    unsigned rcode = DOTPROXY_RCODE_NOERROR;
    unsigned tc = 0;
    int soa = 1, zero = 0;
    uint16_t local_an = 0;
    int local_len = 0;
    if (v->what == DP_BLOCK_TCP_ONLY) {
        /* rpz-tcp-only over UDP: an empty truncated answer; the client asks
         * again over TCP, where the query is forwarded. */
        tc = DOTPROXY_DNS_FLAG_TC;
        soa = 0;
    } else if (v->what == DP_BLOCK_LOCAL) {
        local_len = dp_rpz_local_answer(v->zone, &v->hit, query + DOTPROXY_DNS_HEADER_SIZE, qtype,
                                        out + qend, cap - qend - 600, &local_an);
        if (local_len < 0)
            return -1;
        soa = local_an == 0; /* NODATA: no data of that type in the zone */
    }
    switch (v->what != DP_BLOCK_ANSWER ? -1 : v->action) {
    case DOTPROXY_BLOCK_NXDOMAIN: rcode = DOTPROXY_RCODE_NXDOMAIN; break;
    case DOTPROXY_BLOCK_NODATA: break;
    case DOTPROXY_BLOCK_REFUSED:
        rcode = DOTPROXY_RCODE_REFUSED;
        soa = 0;
        break;
    case DOTPROXY_BLOCK_ZERO:
        if (qtype == T_A || qtype == T_AAAA) {
            zero = 1;
            soa = 0;
        }
        break;
    }
    /* RFC 1035 4.1.1: the ID and question as asked, RD copied, RA set; CD
     * copied (RFC 6840 5.9); not authoritative: we are no zone's server. */
    memmove(out, query, qend); /* out + qend may hold the local data already */
    dp_put16(out + 2,
             (uint16_t)(DOTPROXY_DNS_FLAG_QR | (flags & DOTPROXY_DNS_FLAG_RD) |
                        DOTPROXY_DNS_FLAG_RA | (flags & DOTPROXY_DNS_FLAG_CD) | tc | rcode));
    dp_put16(out + 4, 1);
    dp_put16(out + 6, zero ? 1 : local_an);
    dp_put16(out + 8, soa ? 1 : 0);
    dp_put16(out + 10, had_opt ? 1 : 0);
    size_t o = qend + (size_t)local_len;
    if (zero) {
        out[o++] = 0xc0; /* the question's name */
        out[o++] = DOTPROXY_DNS_HEADER_SIZE;
        uint16_t alen = qtype == T_A ? 4 : 16;
        o += put_rr_head(out + o, qtype, s->ttl, alen);
        memset(out + o, 0, alen);
        o += alen;
    }
    if (soa) {
        /* RFC 2308 3: the SOA of the negative answer, whose TTL and
         * MINIMUM bound how long the stub may cache it. Owner: the rule
         * (the blocked "zone"). */
        size_t owner = o;
        memcpy(out + o, v->rule, rule_len);
        o += rule_len;
        static const uint8_t rname[] = "\x06nobody\x07invalid";
        size_t rdlen = 2 + sizeof rname + 20;
        o += put_rr_head(out + o, T_SOA, s->ttl, (uint16_t)rdlen);
        out[o++] = (uint8_t)(0xc0 | (owner >> 8)); /* MNAME: the owner */
        out[o++] = (uint8_t)owner;
        memcpy(out + o, rname, sizeof rname); /* with its root label */
        o += sizeof rname;
        static const uint32_t nums[4] = {1, 3600, 600, 86400};
        for (int i = 0; i < 4; i++) {
            dp_put16(out + o, (uint16_t)(nums[i] >> 16));
            dp_put16(out + o + 2, (uint16_t)nums[i]);
            o += 4;
        }
        dp_put16(out + o, (uint16_t)(s->ttl >> 16));
        dp_put16(out + o + 2, (uint16_t)s->ttl);
        o += 4;
    }
    if (had_opt) {
        /* RFC 8914: INFO-CODE 15 (Blocked), EXTRA-TEXT naming the list and
         * the rule, so that "which list blocked this?" is answered on the
         * wire. */
        char text[400];
        dp_block_describe(v, text, sizeof text);
        size_t tl = strlen(text);
        out[o++] = 0;
        dp_put16(out + o, T_OPT);
        dp_put16(out + o + 2, udp_size);
        dp_put16(out + o + 4, 0);
        dp_put16(out + o + 6, 0);
        dp_put16(out + o + 8, (uint16_t)(4 + 2 + tl));
        o += 10;
        dp_put16(out + o, 15); /* OPTION-CODE: Extended DNS Error */
        dp_put16(out + o + 2, (uint16_t)(2 + tl));
        dp_put16(out + o + 4, 15); /* INFO-CODE: Blocked */
        o += 6;
        memcpy(out + o, text, tl);
        o += tl;
    }
    return (int)o;
}

/* ---- a context's part ---- */

int dp_block_part_init(struct dp_block_part *p, const struct dotproxy_config *cfg,
                       void (*wake)(void *user), void *user)
{
    memset(p, 0, sizeof *p);
    p->wake = wake;
    p->wake_user = user;
    dp_list_init(&p->waiter);
    return dp_block_part_reload(p, cfg);
}

static void part_detach(struct dp_block_part *p)
{
    if (p->b == NULL)
        return;
    pthread_mutex_lock(&p->b->mu);
    dp_list_remove(&p->waiter);
    pthread_mutex_unlock(&p->b->mu);
    snap_unref(p->snap);
    p->snap = NULL;
    dotproxy_blocker_free(p->b);
    p->b = NULL;
}

int dp_block_part_reload(struct dp_block_part *p, const struct dotproxy_config *cfg)
{
    struct dotproxy_blocker *nb = cfg->block.blocker;
    if (nb != NULL) {
        if (nb == p->b)
            return 0; /* its owner reloads it */
        blocker_ref(nb);
    } else if (dp_block_config_has_lists(&cfg->block)) {
        if (p->b != NULL && p->own) {
            /* Our own: reload its lists (on its thread). */
            return dotproxy_blocker_reload(p->b, cfg);
        }
        char err[600];
        int rc = dotproxy_blocker_new(&nb, cfg, 0, err, sizeof err);
        if (rc != 0)
            return rc;
    }
    part_detach(p);
    p->b = nb;
    p->own = cfg->block.blocker == NULL;
    if (nb != NULL) {
        pthread_mutex_lock(&nb->mu);
        dp_list_push_back(&nb->parts, &p->waiter);
        pthread_mutex_unlock(&nb->mu);
        dp_block_part_refresh(p);
    }
    return 0;
}

void dp_block_part_fini(struct dp_block_part *p)
{
    part_detach(p);
}

void dp_block_part_refresh(struct dp_block_part *p)
{
    if (p->b == NULL)
        return;
    unsigned g = atomic_load_explicit(&p->b->gen, memory_order_acquire);
    if (g == p->gen && p->snap != NULL)
        return;
    pthread_mutex_lock(&p->b->mu);
    struct dp_block_snap *s = p->b->cur;
    if (s != NULL)
        atomic_fetch_add(&s->refs, 1);
    g = atomic_load(&p->b->gen);
    pthread_mutex_unlock(&p->b->mu);
    snap_drop(p->b, p->snap);
    p->snap = s;
    p->gen = g;
}

/* ---- explain ---- */

DOTPROXY_EXPORT int dotproxy_blocker_explain(dotproxy_blocker *b, const char *name,
                                             dotproxy_block_match_fn fn, void *user)
{
    uint8_t wire[256];
    struct dp_name_hashes h;
    if (b == NULL || name == NULL || fn == NULL)
        return DOTPROXY_EINVAL;
    int wl = dp_name_from_text(name, strlen(name), wire);
    if (wl < 0 || dp_name_hashes_make(&h, wire, (size_t)wl) != 0)
        return DOTPROXY_EINVAL;
    pthread_mutex_lock(&b->mu);
    struct dp_block_snap *s = b->cur;
    if (s != NULL)
        atomic_fetch_add(&s->refs, 1);
    pthread_mutex_unlock(&b->mu);
    if (s == NULL)
        return 0;
    struct dp_block_verdict v;
    decide_hashes(s, wire, &h, NULL, &v);
    int count = 0;
    /* Allow matches first (they decide when there is one), then blocks. */
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < s->n; i++) {
            const struct dp_block_list *l = s->list[i];
            struct dp_rpz_hit hit;
            if (pass == 1 && l->rpz != NULL && dp_rpz_match_qname(l->rpz, wire, &hit)) {
                static const char *const rpz_actions[] = {"nxdomain", "nodata",   "passthru",
                                                          "drop",     "tcp-only", "local-data"};
                dotproxy_block_match m = {
                    .kind = l->kind,
                    .path = l->stat->url != NULL ? l->stat->url : l->stat->path,
                    .rule = hit.rule_text,
                    .action = rpz_actions[hit.action],
                    .decides = v.list == l,
                };
                fn(&m, user);
                count++;
                continue;
            }
            const struct dp_nameset *set = pass == 0 ? l->sets.allow : l->sets.block;
            int first = 1; /* the most specific match of a list is the one it decides by */
            for (unsigned k = 0; k < h.n; k++) {
                if (!dp_nameset_has(set, h.fp[k]))
                    continue;
                char rule[DOTPROXY_DNS_MAX_NAME * 4 + 2];
                name_text(wire + h.off[k], rule, sizeof rule);
                int decides = first && v.list == l &&
                              v.what == (pass == 0 ? DP_BLOCK_ALLOWED : DP_BLOCK_ANSWER);
                first = 0;
                dotproxy_block_match m = {
                    .kind = l->kind,
                    .path = l->stat->url != NULL ? l->stat->url : l->stat->path,
                    .rule = rule,
                    .action = pass == 0 ? "allow" : action_names[s->action],
                    .decides = decides,
                };
                fn(&m, user);
                count++;
            }
        }
    }
    snap_unref(s);
    return count;
}

/* ---- feeds ---- */

int dp_block_notify(const struct dp_block_part *p, const uint8_t *msg, size_t len,
                    const struct sockaddr *peer)
{
    if (p->b == NULL || p->b->feeds == NULL)
        return -1;
    return dp_feeds_notify(p->b->feeds, msg, len, peer);
}

DOTPROXY_EXPORT int dotproxy_blocker_feeds(dotproxy_blocker *b, dotproxy_feed_info_fn fn,
                                           void *user)
{
    if (b == NULL || fn == NULL)
        return DOTPROXY_EINVAL;
    return dp_feeds_info(b->feeds, fn, user);
}

DOTPROXY_EXPORT uint64_t dotproxy_blocker_notify_refused(dotproxy_blocker *b)
{
    return b == NULL ? 0 : dp_feeds_notify_refused(b->feeds);
}

DOTPROXY_EXPORT int dotproxy_blocker_refresh_feeds(dotproxy_blocker *b)
{
    if (b == NULL)
        return DOTPROXY_EINVAL;
    dp_feeds_refresh(b->feeds);
    dp_feed_url_refresh(b->urls);
    return 0;
}

DOTPROXY_EXPORT int dotproxy_blocker_url_feeds(dotproxy_blocker *b, dotproxy_url_feed_info_fn fn,
                                               void *user)
{
    if (b == NULL || fn == NULL)
        return DOTPROXY_EINVAL;
    return dp_feed_url_info(b->urls, fn, user);
}
