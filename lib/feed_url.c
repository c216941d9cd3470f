/* SPDX-License-Identifier: MIT */
/* Lists over HTTPS (feed_url.h). One thread for every URL: a fetch blocks
 * (fetch.c), and lists are few and slow-changing, so fetching them one
 * after the other costs nothing that matters and keeps the state simple.
 *
 * A fetched body is streamed to "PATH.tmp" behind the comment header, and
 * parsed on the way with the list parser, only to count: a body with no
 * name in any list format (an HTML error page served with 200, a truncated
 * or foreign file) is refused like a failed fetch, so that the list in
 * force never becomes an empty one. A good body is fsync'ed and renamed
 * over the state file, and the directory fsync'ed: a reader (the engine, a
 * restart) sees the old copy or the new one, never a part.
 *
 * The header travels with the body in one file so that one rename commits
 * both: validators never describe another copy than the one beside them. */
#include "feed_url.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "blocklist.h"
#include "config.h"
#include "dotproxy/config.h"
#include "dotproxy/error.h"
#ifdef DP_HAVE_CURL
#include "fetch.h"
#endif

#define CONNECT_TIMEOUT_MS 10000L
#define TOTAL_TIMEOUT_MS   600000L /* 10 minutes: 256 MiB at ~3.5 Mbit/s */
#define LINE_MAX_LEN       8192u
#define STATE_MAGIC        "# dotproxyd blocklist-url copy v1"

/* ---- configuration ---- */

void dp_feed_url_config_defaults(struct dp_url_config *c)
{
    memset(c, 0, sizeof *c);
    c->refresh_s = 3600;
    c->max_size = 256u << 20;
}

int dp_feed_url_config_copy(struct dp_url_config *dst, const struct dp_url_config *src)
{
    *dst = *src;
    dst->n = 0;
    dst->ca_file = NULL;
    dst->state_dir = NULL;
    for (size_t i = 0; i < src->n; i++) {
        if ((dst->url[i] = strdup(src->url[i])) == NULL) {
            dp_feed_url_config_clear(dst);
            return DOTPROXY_ENOMEM;
        }
        dst->n++;
    }
    if ((src->ca_file != NULL && (dst->ca_file = strdup(src->ca_file)) == NULL) ||
        (src->state_dir != NULL && (dst->state_dir = strdup(src->state_dir)) == NULL)) {
        dp_feed_url_config_clear(dst);
        return DOTPROXY_ENOMEM;
    }
    return 0;
}

void dp_feed_url_config_clear(struct dp_url_config *c)
{
    for (size_t i = 0; i < c->n; i++) {
        free(c->url[i]);
        c->url[i] = NULL;
    }
    c->n = 0;
    free(c->ca_file);
    c->ca_file = NULL;
    free(c->state_dir);
    c->state_dir = NULL;
}

int dp_feed_url_check(const char *url)
{
    if (url == NULL || strncasecmp(url, "https://", 8) != 0)
        return DOTPROXY_EINVAL;
    size_t n = strlen(url);
    if (n > DP_FEED_URL_LEN_MAX || n == 8 || url[8] == '/' || url[8] == '?' || url[8] == '#')
        return DOTPROXY_EINVAL; /* no host */
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)url[i] <= 0x20 || (unsigned char)url[i] >= 0x7f)
            return DOTPROXY_EINVAL; /* the state header is line-based */
    return 0;
}

void dp_feed_url_shown(const char *url, char *out, size_t cap)
{
    if (cap == 0)
        return;
    size_t o = 0;
    const char *p = url;
    const char *scheme = strstr(p, "://");
    if (scheme != NULL) {
        const char *auth = scheme + 3;
        size_t alen = strcspn(auth, "/?#");
        /* Up to the last '@': with a password whose '@' was left unencoded,
         * whichever '@' a parser splits at, nothing of it is shown. */
        const char *at = memrchr(auth, '@', alen);
        size_t head = (size_t)(auth - p);
        for (size_t i = 0; i < head && o + 1 < cap; i++)
            out[o++] = p[i];
        p = at != NULL ? at + 1 : auth;
    }
    for (; *p != '\0' && *p != '#' && o + 1 < cap; p++) {
        if (*p == '?') {
            for (const char *d = "?..."; *d != '\0' && o + 1 < cap; d++)
                out[o++] = *d;
            break;
        }
        out[o++] = *p;
    }
    out[o] = '\0';
}

/* ---- the state file ---- */

int dp_feed_url_state_path(const char *state_dir, const char *url, char *out, size_t cap)
{
    /* FNV-1a, 64 bits: a stable name for the URL across runs and builds
     * (no secret needed: a collision only makes the header check ignore
     * the other URL's copy). */
    uint64_t h = 0xcbf29ce484222325u;
    for (const unsigned char *p = (const unsigned char *)url; *p != '\0'; p++)
        h = (h ^ *p) * 0x100000001b3u;
    int n =
        snprintf(out, cap, "%s/url-%016llx.list",
                 state_dir != NULL ? state_dir : DOTPROXY_STATE_DIR_DEFAULT, (unsigned long long)h);
    return n < 0 || (size_t)n >= cap ? DOTPROXY_ENOSPC : 0;
}

int dp_feed_url_state_header(char *out, size_t cap, const char *url,
                             const struct dp_feed_url_validators *v)
{
    int n = snprintf(
        out, cap, STATE_MAGIC "\n# url: %s\n# etag: %s\n# last-modified: %s\n# fetched: %lld\n#\n",
        url, v->etag, v->last_modified, (long long)v->fetched_s);
    return n < 0 || (size_t)n >= cap ? DOTPROXY_ENOSPC : n;
}

/* A header line "# KEY: VALUE" into value (cut to cap). 1 when it is KEY. */
static int header_field(const char *line, const char *key, char *value, size_t cap)
{
    size_t kl = strlen(key);
    if (strncmp(line, "# ", 2) != 0 || strncmp(line + 2, key, kl) != 0 || line[2 + kl] != ':')
        return 0;
    const char *p = line + 3 + kl;
    if (*p == ' ')
        p++;
    size_t n = strcspn(p, "\r\n");
    if (n >= cap)
        n = cap - 1;
    memcpy(value, p, n);
    value[n] = '\0';
    return 1;
}

int dp_feed_url_state_read(const char *path, const char *url, struct dp_feed_url_validators *v)
{
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return DOTPROXY_ESYS;
    char line[DP_FEED_URL_LEN_MAX + 64];
    char got_url[DP_FEED_URL_LEN_MAX + 8] = "", fetched[32] = "";
    struct dp_feed_url_validators nv;
    memset(&nv, 0, sizeof nv);
    int rc = DOTPROXY_EMALFORMED, seen_url = 0, seen_fetched = 0;
    if (fgets(line, sizeof line, f) != NULL && strcmp(line, STATE_MAGIC "\n") == 0) {
        /* At most a few lines: a file that goes on is not ours. */
        for (int i = 0; i < 16 && fgets(line, sizeof line, f) != NULL; i++) {
            if (strcmp(line, "#\n") == 0) {
                if (seen_url && seen_fetched)
                    rc = 0;
                break;
            }
            if (header_field(line, "url", got_url, sizeof got_url))
                seen_url = 1;
            else if (header_field(line, "fetched", fetched, sizeof fetched))
                seen_fetched = 1;
            else if (!header_field(line, "etag", nv.etag, sizeof nv.etag) &&
                     !header_field(line, "last-modified", nv.last_modified,
                                   sizeof nv.last_modified))
                break;
        }
    }
    fclose(f);
    if (rc != 0)
        return rc;
    char *end;
    errno = 0;
    long long t = strtoll(fetched, &end, 10);
    if (errno != 0 || end == fetched || *end != '\0' || t < 0)
        return DOTPROXY_EMALFORMED;
    if (strcmp(got_url, url) != 0)
        return DOTPROXY_EINVAL;
    nv.fetched_s = (int64_t)t;
    *v = nv;
    return 0;
}

/* ---- validators ---- */

/* value (n octets) into out when it fits and is printable ASCII: it goes
 * back in a request line and in the state header, where a CR, LF or NUL
 * would be an injection. Else out is left empty. */
static void keep_value(char *out, size_t cap, const char *value, size_t n)
{
    out[0] = '\0';
    while (n > 0 && (*value == ' ' || *value == '\t')) {
        value++;
        n--;
    }
    while (n > 0 && (value[n - 1] == ' ' || value[n - 1] == '\t'))
        n--;
    if (n == 0 || n >= cap)
        return;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)value[i] < 0x20 || (unsigned char)value[i] >= 0x7f)
            return;
    memcpy(out, value, n);
    out[n] = '\0';
}

void dp_feed_url_header_line(struct dp_feed_url_validators *v, const char *line, size_t n)
{
    if (n >= 5 && strncmp(line, "HTTP/", 5) == 0) {
        v->etag[0] = '\0';
        v->last_modified[0] = '\0';
        return;
    }
    static const char etag[] = "etag:", lm[] = "last-modified:";
    if (n >= sizeof etag - 1 && strncasecmp(line, etag, sizeof etag - 1) == 0)
        keep_value(v->etag, sizeof v->etag, line + sizeof etag - 1, n - (sizeof etag - 1));
    else if (n >= sizeof lm - 1 && strncasecmp(line, lm, sizeof lm - 1) == 0)
        keep_value(v->last_modified, sizeof v->last_modified, line + sizeof lm - 1,
                   n - (sizeof lm - 1));
}

void dp_feed_url_conditional(const struct dp_feed_url_validators *v, char buf[2][400],
                             const char *lines[3])
{
    size_t k = 0;
    /* RFC 9110 13.1.3: a server that has If-None-Match ignores
     * If-Modified-Since; both go, for servers that keep only one. */
    if (v->etag[0] != '\0') {
        snprintf(buf[k], sizeof buf[k], "If-None-Match: %s", v->etag);
        lines[k] = buf[k];
        k++;
    }
    if (v->last_modified[0] != '\0') {
        snprintf(buf[k], sizeof buf[k], "If-Modified-Since: %s", v->last_modified);
        lines[k] = buf[k];
        k++;
    }
    lines[k] = NULL;
}

/* ---- timers ---- */

uint32_t dp_feed_url_jitter_s(uint32_t s, struct dp_prng *p)
{
    uint32_t d = s / 10;
    uint32_t r = s - d + (uint32_t)dp_prng_below(p, 2 * (uint64_t)d + 1);
    return r == 0 ? 1 : r;
}

uint32_t dp_feed_url_backoff_s(unsigned failures, uint32_t refresh_s, struct dp_prng *p)
{
    uint64_t s = DP_FEED_URL_BACKOFF_FIRST_S;
    for (unsigned i = 1; i < failures && s < refresh_s; i++)
        s *= 2;
    if (s > refresh_s)
        s = refresh_s;
    return dp_feed_url_jitter_s((uint32_t)s, p);
}

/* ---- the fetch thread ---- */

struct feed {
    char *url;
    char shown[DP_FEED_URL_LEN_MAX + 8]; /* dp_feed_url_shown */
    char path[4096];
    /* feed thread only: */
    struct dp_feed_url_validators have; /* of the copy in force */
    int has_copy;
    unsigned fails; /* in a row */
    /* under the mutex: */
    int64_t due_ms, next_s;
    struct dp_feed_url_validators held; /* of the copy in force, for the API */
    uint64_t entries, fetched, not_modified, failures, bytes, last_bytes;
    int64_t last_ok_s, last_fail_s;
    char last_error[256];
};

struct dp_feed_url {
    struct dp_logger log;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    int thread_on;
    atomic_int stopping;
    void (*changed)(void *user);
    void *user;
    struct dp_prng prng; /* feed thread only */
    unsigned refresh_s, max_size;
    char *ca_file;
    size_t n;
    struct feed feed[];
};

static int64_t mono_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Under the mutex. */
static void schedule(struct feed *fd, uint32_t s)
{
    fd->due_ms = mono_ms() + (int64_t)s * 1000;
    fd->next_s = (int64_t)time(NULL) + s;
}

enum { PULL_FAILED, PULL_NEW, PULL_SAME };

/* What a body is turned into while it arrives. */
struct sink {
    struct dp_feed_url *F;
    struct feed *fd;
    FILE *f;
    int header_done, failed;
    struct dp_feed_url_validators got;
    char line[LINE_MAX_LEN];
    size_t ll;
    int overlong;
    uint64_t names, bad, lines;
};

static int count_name(void *user, const uint8_t *wire, size_t len, int exception)
{
    (void)wire, (void)len;
    struct sink *k = user;
    if (!exception)
        k->names++;
    return 0;
}

static void parse_line(struct sink *k, const char *p, size_t n, int overlong)
{
    k->lines++;
    if (overlong) {
        k->bad++;
        return;
    }
    if (dp_list_parse_line(p, n, count_name, k, NULL) == DP_LINE_BAD)
        k->bad++;
}

#ifdef DP_HAVE_CURL
static int write_header(struct sink *k)
{
    char head[DP_FEED_URL_LEN_MAX + 1024];
    int n = dp_feed_url_state_header(head, sizeof head, k->fd->url, &k->got);
    k->header_done = 1;
    if (n < 0 || fwrite(head, 1, (size_t)n, k->f) != (size_t)n)
        k->failed = 1;
    return k->failed;
}

static void on_header(void *user, const char *line, size_t n)
{
    struct sink *k = user;
    dp_feed_url_header_line(&k->got, line, n);
}

static int on_body(void *user, const char *p, size_t n)
{
    struct sink *k = user;
    /* Every header of the final response is in before its first octet. */
    if (!k->header_done && write_header(k) != 0)
        return 1;
    if (fwrite(p, 1, n, k->f) != n) {
        k->failed = 1;
        return 1;
    }
    while (n > 0) {
        const char *nl = memchr(p, '\n', n);
        size_t take = nl != NULL ? (size_t)(nl - p) : n;
        if (k->ll + take > sizeof k->line) {
            k->overlong = 1;
        } else {
            memcpy(k->line + k->ll, p, take);
            k->ll += take;
        }
        if (nl == NULL)
            break;
        parse_line(k, k->line, k->ll, k->overlong);
        k->ll = 0;
        k->overlong = 0;
        p = nl + 1;
        n -= take + 1;
    }
    return 0;
}

/* The state file's directory, fsync'ed so that a rename in it lasts. */
static void sync_dir(const char *path)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash != NULL)
        *(slash == dir ? slash + 1 : slash) = '\0';
    int d = open(slash != NULL ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (d >= 0) {
        (void)fsync(d); /* some file systems refuse it; the rename stands */
        close(d);
    }
}

static FILE *open_tmp(const char *tmp, const char *path)
{
    int dfd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (dfd < 0 && errno == ENOENT) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s", path);
        char *slash = strrchr(dir, '/');
        if (slash != NULL && slash != dir) {
            *slash = '\0';
            if (mkdir(dir, 0750) == 0 || errno == EEXIST)
                dfd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
        }
    }
    FILE *f = dfd >= 0 ? fdopen(dfd, "w") : NULL;
    if (f == NULL && dfd >= 0)
        close(dfd);
    return f;
}

/* Fetch fd once: PULL_NEW with a new copy in place, PULL_SAME for a 304,
 * PULL_FAILED with why set. */
static int fetch_one(struct dp_feed_url *F, struct feed *fd, uint64_t *bytes, uint64_t *names,
                     char *why, size_t whylen)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", fd->path);
    struct sink k = {.F = F, .fd = fd};
    *bytes = 0;
    k.f = open_tmp(tmp, fd->path);
    if (k.f == NULL) {
        snprintf(why, whylen, "cannot write the state file: %s", strerror(errno));
        return PULL_FAILED;
    }
    char buf[2][400];
    const char *lines[3] = {NULL, NULL, NULL};
    if (fd->has_copy)
        dp_feed_url_conditional(&fd->have, buf, lines);
    struct dp_fetch_req req = {
        .url = fd->url,
        .ca_file = F->ca_file,
        .headers = lines,
        .max_size = F->max_size,
        .connect_timeout_ms = CONNECT_TIMEOUT_MS,
        .total_timeout_ms = TOTAL_TIMEOUT_MS,
        .stop = &F->stopping,
        .header = on_header,
        .body = on_body,
        .user = &k,
    };
    struct dp_fetch_result res;
    int out = dp_fetch_get(&req, &res);
    *bytes = res.bytes;
    int rc = out == DP_FETCH_NOT_MODIFIED ? PULL_SAME : PULL_FAILED;
    if (out == DP_FETCH_FAILED)
        snprintf(why, whylen, "%s", res.why);
    if (out == DP_FETCH_OK) {
        k.got.fetched_s = (int64_t)time(NULL);
        if (!k.header_done)
            write_header(&k); /* an empty body */
        if (k.ll > 0 || k.overlong)
            parse_line(&k, k.line, k.ll, k.overlong);
        if (k.failed)
            snprintf(why, whylen, "cannot write the state file: %s", strerror(errno));
        else if (k.names == 0)
            /* Not a list, or an empty one: neither replaces the list in
             * force. */
            snprintf(why, whylen, "no name in any blocklist format in the body (%llu lines)",
                     (unsigned long long)k.lines);
        else
            rc = PULL_NEW;
    }
    int e = 0;
    if (rc == PULL_NEW && (fflush(k.f) != 0 || fsync(fileno(k.f)) != 0))
        e = errno;
    if (fclose(k.f) != 0 && e == 0 && rc == PULL_NEW)
        e = errno;
    if (rc == PULL_NEW && e == 0 && rename(tmp, fd->path) == 0) {
        sync_dir(fd->path);
        fd->have = k.got;
        fd->has_copy = 1;
        *names = k.names;
        return PULL_NEW;
    }
    if (rc == PULL_NEW) {
        snprintf(why, whylen, "cannot write the state file: %s", strerror(e != 0 ? e : errno));
        rc = PULL_FAILED;
    }
    (void)unlink(tmp);
    return rc;
}
#else
static int fetch_one(struct dp_feed_url *F, struct feed *fd, uint64_t *bytes, uint64_t *names,
                     char *why, size_t whylen)
{
    (void)F, (void)fd, (void)names;
    *bytes = 0;
    snprintf(why, whylen, "this build has no libcurl");
    return PULL_FAILED;
}
#endif

static void pull(struct dp_feed_url *F, struct feed *fd)
{
    char why[256] = "";
    uint64_t bytes = 0, names = 0;
    int got = fetch_one(F, fd, &bytes, &names, why, sizeof why);
    if (atomic_load(&F->stopping))
        return;
    int failed = got == PULL_FAILED, changed = got == PULL_NEW;
    uint32_t next;
    if (failed) {
        fd->fails++;
        next = dp_feed_url_backoff_s(fd->fails, F->refresh_s, &F->prng);
    } else {
        fd->fails = 0;
        next = dp_feed_url_jitter_s(F->refresh_s, &F->prng);
    }
    pthread_mutex_lock(&F->mu);
    fd->bytes += bytes;
    if (failed) {
        fd->failures++;
        fd->last_fail_s = (int64_t)time(NULL);
        snprintf(fd->last_error, sizeof fd->last_error, "%s", why);
    } else {
        fd->last_ok_s = (int64_t)time(NULL);
        if (changed) {
            fd->fetched++;
            fd->last_bytes = bytes;
            fd->entries = names;
            fd->held = fd->have;
        } else {
            fd->not_modified++;
        }
    }
    schedule(fd, next);
    pthread_mutex_unlock(&F->mu);
    if (failed)
        dp_log(&F->log, DOTPROXY_LOG_ERR,
               "blocklist-url %s: fetch failed: %s; the list in force stays, retry in %u s",
               fd->shown, why, next);
    else if (changed)
        dp_log(&F->log, DOTPROXY_LOG_INFO,
               "blocklist-url %s: new copy, %llu names, %llu octets%s%s", fd->shown,
               (unsigned long long)names, (unsigned long long)bytes,
               fd->have.etag[0] != '\0' ? ", ETag " : "", fd->have.etag);
    else
        dp_log(&F->log, DOTPROXY_LOG_DEBUG, "blocklist-url %s: not modified", fd->shown);
    if (changed && F->changed != NULL)
        F->changed(F->user);
}

/* The copy left by an earlier run: its validators, and its names counted
 * for the API (the engine loaded it already, from the same file). */
static void load_state(struct dp_feed_url *F, struct feed *fd)
{
    struct dp_feed_url_validators v;
    int rc = dp_feed_url_state_read(fd->path, fd->url, &v);
    if (rc == DOTPROXY_ESYS)
        return;
    if (rc != 0) {
        dp_log(&F->log, DOTPROXY_LOG_WARN, "blocklist-url %s: %s is %s; ignored", fd->shown,
               fd->path, rc == DOTPROXY_EINVAL ? "the copy of another URL" : "not a copy we wrote");
        return;
    }
    FILE *f = fopen(fd->path, "re");
    struct sink k = {.F = F, .fd = fd};
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while (f != NULL && (n = getline(&line, &cap, f)) >= 0) {
        size_t l = (size_t)n;
        if (l > 0 && line[l - 1] == '\n')
            l--;
        parse_line(&k, line, l, l > LINE_MAX_LEN);
    }
    free(line);
    if (f != NULL)
        fclose(f);
    fd->have = v;
    fd->has_copy = 1;
    pthread_mutex_lock(&F->mu);
    fd->held = v;
    fd->entries = k.names;
    pthread_mutex_unlock(&F->mu);
    dp_log(&F->log, DOTPROXY_LOG_INFO, "blocklist-url %s: %llu names from %s (fetched %lld)",
           fd->shown, (unsigned long long)k.names, fd->path, (long long)v.fetched_s);
}

static void *feed_thread(void *arg)
{
    struct dp_feed_url *F = arg;
    (void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 10);
    for (size_t i = 0; i < F->n; i++)
        load_state(F, &F->feed[i]);
    pthread_mutex_lock(&F->mu);
    while (!atomic_load(&F->stopping)) {
        struct feed *next = NULL;
        for (size_t i = 0; i < F->n; i++)
            if (next == NULL || F->feed[i].due_ms < next->due_ms)
                next = &F->feed[i];
        int64_t now = mono_ms();
        if (next->due_ms <= now) {
            pthread_mutex_unlock(&F->mu);
            pull(F, next);
            pthread_mutex_lock(&F->mu);
            continue;
        }
        struct timespec due;
        clock_gettime(CLOCK_MONOTONIC, &due);
        int64_t wait = next->due_ms - now;
        due.tv_sec += wait / 1000;
        due.tv_nsec += (wait % 1000) * 1000000;
        if (due.tv_nsec >= 1000000000) {
            due.tv_sec++;
            due.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&F->cv, &F->mu, &due);
    }
    pthread_mutex_unlock(&F->mu);
    return NULL;
}

int dp_feed_url_new(struct dp_feed_url **out, const struct dp_url_config *c,
                    const struct dp_logger *log, void (*changed)(void *user), void *user)
{
    *out = NULL;
    if (c->n == 0)
        return 0;
    struct dp_feed_url *F = calloc(1, sizeof *F + c->n * sizeof F->feed[0]);
    if (F == NULL)
        return DOTPROXY_ENOMEM;
    F->log = *log;
    F->changed = changed;
    F->user = user;
    F->refresh_s = c->refresh_s;
    F->max_size = c->max_size;
    atomic_init(&F->stopping, 0);
    dp_prng_seed_random(&F->prng);
    int rc = 0;
    if (c->ca_file != NULL && (F->ca_file = strdup(c->ca_file)) == NULL)
        rc = DOTPROXY_ENOMEM;
    for (size_t i = 0; i < c->n && rc == 0; i++) {
        struct feed *fd = &F->feed[i];
        F->n++;
        if ((fd->url = strdup(c->url[i])) == NULL) {
            rc = DOTPROXY_ENOMEM;
        } else {
            dp_feed_url_shown(fd->url, fd->shown, sizeof fd->shown);
            rc = dp_feed_url_state_path(c->state_dir, fd->url, fd->path, sizeof fd->path);
        }
        fd->due_ms = 0; /* at once, after the state is read */
        fd->next_s = (int64_t)time(NULL);
    }
    pthread_condattr_t ca;
    if (rc == 0 && pthread_mutex_init(&F->mu, NULL) != 0)
        rc = DOTPROXY_ENOMEM;
    if (rc == 0) {
        if (pthread_condattr_init(&ca) != 0 ||
            pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) != 0 ||
            pthread_cond_init(&F->cv, &ca) != 0) {
            pthread_mutex_destroy(&F->mu);
            rc = DOTPROXY_ENOMEM;
        }
        pthread_condattr_destroy(&ca);
    }
    if (rc != 0) {
        for (size_t i = 0; i < F->n; i++)
            free(F->feed[i].url);
        free(F->ca_file);
        free(F);
        return rc;
    }
    int e = pthread_create(&F->thread, NULL, feed_thread, F);
    if (e != 0) {
        dp_feed_url_free(F);
        errno = e;
        return DOTPROXY_ESYS;
    }
    F->thread_on = 1;
    *out = F;
    return 0;
}

void dp_feed_url_free(struct dp_feed_url *F)
{
    if (F == NULL)
        return;
    if (F->thread_on) {
        pthread_mutex_lock(&F->mu);
        atomic_store(&F->stopping, 1);
        pthread_cond_signal(&F->cv);
        pthread_mutex_unlock(&F->mu);
        pthread_join(F->thread, NULL);
    }
    for (size_t i = 0; i < F->n; i++)
        free(F->feed[i].url);
    free(F->ca_file);
    pthread_cond_destroy(&F->cv);
    pthread_mutex_destroy(&F->mu);
    free(F);
}

void dp_feed_url_refresh(struct dp_feed_url *F)
{
    if (F == NULL)
        return;
    pthread_mutex_lock(&F->mu);
    for (size_t i = 0; i < F->n; i++)
        F->feed[i].due_ms = 0;
    pthread_cond_signal(&F->cv);
    pthread_mutex_unlock(&F->mu);
}

int dp_feed_url_info(struct dp_feed_url *F, dotproxy_url_feed_info_fn fn, void *user)
{
    if (F == NULL)
        return 0;
    pthread_mutex_lock(&F->mu);
    for (size_t i = 0; i < F->n; i++) {
        const struct feed *fd = &F->feed[i];
        dotproxy_url_feed_info info = {
            .url = fd->shown,
            .path = fd->path,
            .etag = fd->held.etag,
            .last_modified = fd->held.last_modified,
            .entries = fd->entries,
            .fetched_s = fd->held.fetched_s,
            .last_ok_s = fd->last_ok_s,
            .last_fail_s = fd->last_fail_s,
            .last_error = fd->last_error,
            .next_s = fd->next_s,
            .fetched = fd->fetched,
            .not_modified = fd->not_modified,
            .failures = fd->failures,
            .bytes = fd->bytes,
            .last_bytes = fd->last_bytes,
        };
        fn(&info, user);
    }
    pthread_mutex_unlock(&F->mu);
    return 0;
}

/* ---- configuration calls ---- */

DOTPROXY_EXPORT int dotproxy_blocklist_url_available(void)
{
#ifdef DP_HAVE_CURL
    return 1;
#else
    return 0;
#endif
}

DOTPROXY_EXPORT int dotproxy_config_add_blocklist_url(dotproxy_config *cfg, const char *url)
{
    if (cfg == NULL || dp_feed_url_check(url) != 0)
        return DOTPROXY_EINVAL;
    if (!dotproxy_blocklist_url_available())
        return DOTPROXY_ESTATE;
    struct dp_url_config *c = &cfg->block.urls;
    if (c->n == DOTPROXY_BLOCKLIST_URLS_MAX)
        return DOTPROXY_ELIMIT;
    char *copy = strdup(url);
    if (copy == NULL)
        return DOTPROXY_ENOMEM;
    c->url[c->n++] = copy;
    return 0;
}

DOTPROXY_EXPORT size_t dotproxy_config_blocklist_url_count(const dotproxy_config *cfg)
{
    return cfg == NULL ? 0 : cfg->block.urls.n;
}

DOTPROXY_EXPORT const char *dotproxy_config_get_blocklist_url(const dotproxy_config *cfg,
                                                              size_t index)
{
    if (cfg == NULL || index >= cfg->block.urls.n)
        return NULL;
    return cfg->block.urls.url[index];
}

DOTPROXY_EXPORT int dotproxy_config_set_feed_refresh_s(dotproxy_config *cfg, unsigned s)
{
    if (cfg == NULL || s < DOTPROXY_FEED_REFRESH_MIN || s > DOTPROXY_FEED_REFRESH_MAX)
        return DOTPROXY_EINVAL;
    cfg->block.urls.refresh_s = s;
    return 0;
}

DOTPROXY_EXPORT unsigned dotproxy_config_get_feed_refresh_s(const dotproxy_config *cfg)
{
    return cfg == NULL ? 0 : cfg->block.urls.refresh_s;
}

DOTPROXY_EXPORT int dotproxy_config_set_feed_max_size(dotproxy_config *cfg, unsigned octets)
{
    if (cfg == NULL || octets < DOTPROXY_FEED_MAX_SIZE_MIN)
        return DOTPROXY_EINVAL;
    cfg->block.urls.max_size = octets;
    return 0;
}

DOTPROXY_EXPORT unsigned dotproxy_config_get_feed_max_size(const dotproxy_config *cfg)
{
    return cfg == NULL ? 0 : cfg->block.urls.max_size;
}
