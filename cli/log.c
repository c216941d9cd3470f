/* SPDX-License-Identifier: MIT */
/* dotproxyd: the daemon's log sink. Lines from the library (per worker),
 * the query log and the main thread's own messages, formatted as text, JSON
 * or for syslog(3), and written to stderr or syslog. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

/* Fixed before any thread starts and never changed after: the log callback
 * reads them from every worker. */
static int log_json;
static int log_syslog;

static const char *level_name(int level)
{
    switch (level) {
    case DOTPROXY_LOG_ERR: return "error";
    case DOTPROXY_LOG_WARN: return "warning";
    case DOTPROXY_LOG_INFO: return "info";
    default: return "debug";
    }
}

static int syslog_priority(int level)
{
    switch (level) {
    case DOTPROXY_LOG_ERR: return LOG_ERR;
    case DOTPROXY_LOG_WARN: return LOG_WARNING;
    case DOTPROXY_LOG_INFO: return LOG_INFO;
    default: return LOG_DEBUG;
    }
}

/* msg as a JSON string body into out (cap > 0): quote, backslash and
 * control characters escaped; octets above 0x7f too (as \u00XX), so that
 * the line is valid JSON whatever the message holds. Never cuts an escape
 * in half. Returns the length written. */
static size_t json_escape(char *out, size_t cap, const char *msg)
{
    static const char hex[] = "0123456789abcdef";
    size_t len = 0;

    for (const unsigned char *p = (const unsigned char *)msg; *p != '\0'; p++) {
        char esc[7];
        size_t n;

        if (*p == '"' || *p == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*p;
            n = 2;
        } else if (*p == '\n' || *p == '\t' || *p == '\r') {
            esc[0] = '\\';
            esc[1] = *p == '\n' ? 'n' : *p == '\t' ? 't' : 'r';
            n = 2;
        } else if (*p < 0x20 || *p >= 0x7f) {
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[*p >> 4];
            esc[5] = hex[*p & 15];
            n = 6;
        } else {
            esc[0] = (char)*p;
            n = 1;
        }
        if (len + n >= cap)
            break;
        memcpy(out + len, esc, n);
        len += n;
    }
    out[len] = '\0';
    return len;
}

/* ---- the queue and its writer ----
 *
 * A worker must never wait for the log: stderr may be a pipe nobody reads
 * (once its 64 KiB are full, write(2) blocks) and syslog's socket may be
 * full. So a line is formatted on the caller's thread and put in a bounded
 * ring; one writer thread takes lines out and may block on stderr or
 * syslog as long as it likes. When the ring is full the line is dropped and
 * counted: the count is reported in the log when writing resumes, and
 * exported on /metrics (dpd_log_dropped). The lock is held only to copy a
 * line in or to move the ring's head, never across a write. */

#define QUEUE_LINES  512
#define LINE_CAP     2048
#define FLUSH_WAIT_S 2 /* at exit: how long queued lines may take to go out */

struct queued {
    int level;
    size_t len; /* without the newline; text has room for it */
    char text[LINE_CAP];
};

/* The slot at q_head stays in the ring while it is being written: producers
 * append only past q_head + q_count. */
static struct queued ring[QUEUE_LINES];
static size_t q_head, q_count;
static unsigned long long q_unreported; /* dropped since the last report */
static atomic_ullong dropped_total;
static int writer_started, writer_stopping, writer_done;
static pthread_mutex_t q_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t q_cond; /* on CLOCK_MONOTONIC; both directions */
static pthread_t writer;

/* One formatted line out, as one write(2) (or one syslog(3) call): lines
 * from concurrent workers must not interleave, and writes of this size to a
 * pipe or file are not split. Blocks as long as the output does. */
static void output(int level, char *text, size_t len)
{
    if (log_syslog) {
        syslog(syslog_priority(level), "%s", text);
        return;
    }
    text[len++] = '\n';
    for (size_t off = 0; off < len;) {
        ssize_t w = write(STDERR_FILENO, text + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            /* stderr shared with someone who made it non-blocking */
            struct pollfd pfd = {.fd = STDERR_FILENO, .events = POLLOUT};
            if (poll(&pfd, 1, -1) >= 0 || errno == EINTR)
                continue;
        }
        if (w <= 0)
            break; /* nowhere left to report it */
        off += (size_t)w;
    }
    text[len - 1] = '\0';
}

/* What every JSON line starts with: the time (UTC, RFC 3339 with
 * milliseconds) and the worker (a number, or null for the main thread). */
static void json_head(char *ts, size_t ts_cap, int worker, char *wbuf, size_t wcap)
{
    char sec[32];
    struct timespec now;
    struct tm tm;

    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    strftime(sec, sizeof sec, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts, ts_cap, "%s.%03ldZ", sec, now.tv_nsec / 1000000);
    if (worker >= 0)
        snprintf(wbuf, wcap, "%d", worker);
    else
        snprintf(wbuf, wcap, "null");
}

/* The line as the format wants it, into line[cap] (cap > 2): its length,
 * at most cap - 2, leaving room for output()'s newline. */
static size_t format_line(int level, int worker, const char *msg, char *line, size_t cap)
{
    if (log_json) {
        char ts[48], wbuf[16], body[1500];

        json_head(ts, sizeof ts, worker, wbuf, sizeof wbuf);
        json_escape(body, sizeof body, msg);
        snprintf(line, cap - 1, "{\"ts\":\"%s\",\"level\":\"%s\",\"worker\":%s,\"msg\":\"%s\"}", ts,
                 level_name(level), wbuf, body);
    } else if (log_syslog) {
        if (worker >= 0)
            snprintf(line, cap - 1, "[%d] %s", worker, msg);
        else
            snprintf(line, cap - 1, "%s", msg);
    } else if (worker >= 0) {
        snprintf(line, cap - 1, "dotproxyd[%d]: %s: %s", worker, level_name(level), msg);
    } else {
        snprintf(line, cap - 1, "dotproxyd: %s: %s", level_name(level), msg);
    }
    return strlen(line);
}

/* Queue a formatted line, or drop and count it when the queue is full.
 * Before the writer runs (and when it could not be started) the line is
 * written at once: only the main thread logs then. */
static void put(int level, const char *text, size_t len)
{
    pthread_mutex_lock(&q_lock);
    if (!writer_started) {
        char copy[LINE_CAP];

        pthread_mutex_unlock(&q_lock);
        memcpy(copy, text, len + 1);
        output(level, copy, len);
        return;
    }
    if (q_count == QUEUE_LINES) {
        q_unreported++;
        atomic_fetch_add(&dropped_total, 1);
        pthread_mutex_unlock(&q_lock);
        return;
    }
    struct queued *q = &ring[(q_head + q_count) % QUEUE_LINES];
    q->level = level;
    q->len = len;
    memcpy(q->text, text, len + 1);
    q_count++;
    pthread_cond_broadcast(&q_cond);
    pthread_mutex_unlock(&q_lock);
}

/* One log line, from worker `worker` (-1: the main thread). */
static void emit(int level, int worker, const char *msg)
{
    char line[LINE_CAP];
    size_t len = format_line(level, worker, msg, line, sizeof line);

    put(level, line, len);
}

static void repeat_sweep(time_t now, int all);

static time_t mono_seconds(void)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec;
}

/* The clock of the repeat windows; a test sets its own (dpd_log_set_clock). */
static time_t (*log_clock)(void) = mono_seconds;

void dpd_log_set_clock(time_t (*now)(void))
{
    log_clock = now != NULL ? now : mono_seconds;
}

/* Written by the writer itself, past the queue: the queue may be full. */
static void report_dropped(unsigned long long n)
{
    char msg[160], line[LINE_CAP];
    size_t len;

    snprintf(msg, sizeof msg,
             "%llu log line%s dropped: the log output (stderr or syslog) did not keep up", n,
             n == 1 ? "" : "s");
    len = format_line(DOTPROXY_LOG_WARN, -1, msg, line, sizeof line);
    output(DOTPROXY_LOG_WARN, line, len);
}

static void *writer_main(void *arg)
{
    time_t next_sweep = log_clock() + 1;
    int final_sweep_done = 0;

    (void)arg;
    pthread_mutex_lock(&q_lock);
    for (;;) {
        time_t now = log_clock();

        if (now >= next_sweep) {
            /* Summaries of repeated lines go through the queue: not under
             * its lock. */
            pthread_mutex_unlock(&q_lock);
            repeat_sweep(now, 0);
            next_sweep = now + 1;
            pthread_mutex_lock(&q_lock);
        }
        if (q_count == 0) {
            struct timespec until;

            if (writer_stopping && !final_sweep_done) {
                /* Repeats still counted are said before the exit. */
                final_sweep_done = 1;
                pthread_mutex_unlock(&q_lock);
                repeat_sweep(now, 1);
                pthread_mutex_lock(&q_lock);
                continue;
            }
            if (writer_stopping)
                break;
            clock_gettime(CLOCK_MONOTONIC, &until);
            until.tv_sec += 1;
            pthread_cond_timedwait(&q_cond, &q_lock, &until);
            continue;
        }
        struct queued *q = &ring[q_head];
        pthread_mutex_unlock(&q_lock);
        output(q->level, q->text, q->len);
        pthread_mutex_lock(&q_lock);
        q_head = (q_head + 1) % QUEUE_LINES;
        q_count--;
        if (q_unreported > 0) {
            unsigned long long n = q_unreported;

            q_unreported = 0;
            pthread_mutex_unlock(&q_lock);
            report_dropped(n);
            pthread_mutex_lock(&q_lock);
        }
    }
    writer_done = 1;
    pthread_cond_broadcast(&q_cond);
    pthread_mutex_unlock(&q_lock);
    return NULL;
}

unsigned long long dpd_log_dropped(void)
{
    return atomic_load(&dropped_total);
}

/* ---- identical lines repeated ----
 *
 * An upstream that refuses every connection makes every query log the same
 * warning (1,890 lines a minute were seen). Warnings and errors from the
 * workers are remembered by level and text for a window: the first is
 * written, the repeats within the window are only counted, and when the
 * window ends a summary with the count is written (at most one a window),
 * after which a new window starts if they go on.
 *
 * The table is set-associative (REPEAT_SETS sets of REPEAT_WAYS): the
 * lines around a repeating one often differ by a number each time
 * ("unusable for 472 ms"), and in a direct-mapped table they would keep
 * evicting it. A new message takes a free way, else the way quiet the
 * longest among those with nothing counted, else the oldest (whose summary
 * is written first). */

#define REPEAT_SETS     64
#define REPEAT_WAYS     4
#define REPEAT_WINDOW_S 60
#define REPEAT_TEXT     400

struct repeat {
    int used;
    int level;
    uint64_t hash;
    time_t since;        /* the window's start */
    unsigned long count; /* repeats left out in this window */
    char text[REPEAT_TEXT];
};

static struct repeat repeats[REPEAT_SETS * REPEAT_WAYS];
static pthread_mutex_t repeat_lock = PTHREAD_MUTEX_INITIALIZER;

/* FNV-1a over the level and the text. */
static uint64_t repeat_hash(int level, const char *msg)
{
    uint64_t h = 0xcbf29ce484222325u ^ (uint64_t)(unsigned)level;

    for (const unsigned char *p = (const unsigned char *)msg; *p != '\0'; p++) {
        h ^= *p;
        h *= 0x100000001b3u;
    }
    return h;
}

/* r's summary into buf (r->count > 0), under repeat_lock. */
static void repeat_summary(const struct repeat *r, time_t now, char *buf, size_t cap)
{
    snprintf(buf, cap, "the last message was repeated %lu more time%s in %ld s: %s", r->count,
             r->count == 1 ? "" : "s", (long)(now - r->since), r->text);
}

/* The way holding hash h in its set, or the one to give it; under
 * repeat_lock. */
static struct repeat *repeat_way(uint64_t h)
{
    struct repeat *set = &repeats[(h % REPEAT_SETS) * REPEAT_WAYS], *pick = NULL;

    for (size_t i = 0; i < REPEAT_WAYS; i++) {
        if (set[i].used && set[i].hash == h)
            return &set[i];
    }
    for (size_t i = 0; i < REPEAT_WAYS; i++) {
        struct repeat *r = &set[i];

        if (!r->used)
            return r;
        /* Prefer one with nothing counted, then the oldest window. */
        if (pick == NULL || (r->count == 0 && pick->count > 0) ||
            ((r->count == 0) == (pick->count == 0) && r->since < pick->since))
            pick = r;
    }
    return pick;
}

/* 1: write msg; 0: a repeat inside its window, counted. */
static int repeat_admit(int level, const char *msg)
{
    uint64_t h = repeat_hash(level, msg);
    time_t now = log_clock();
    char summary[REPEAT_TEXT + 100];
    int summary_level = 0, admit = 1;
    struct repeat *r;

    summary[0] = '\0';
    pthread_mutex_lock(&repeat_lock);
    r = repeat_way(h);
    if (r->used && r->hash == h && now - r->since < REPEAT_WINDOW_S) {
        r->count++;
        admit = 0;
    } else if (r->used && r->hash == h) {
        /* The window is over and the sweep has not seen it yet. */
        if (r->count > 0) {
            repeat_summary(r, now, summary, sizeof summary);
            summary_level = r->level;
            admit = 0;
        }
        r->since = now;
        r->count = admit ? 0 : 1;
    } else {
        if (r->used && r->count > 0) {
            repeat_summary(r, now, summary, sizeof summary);
            summary_level = r->level;
        }
        r->used = 1;
        r->level = level;
        r->hash = h;
        r->since = now;
        r->count = 0;
        snprintf(r->text, sizeof r->text, "%s", msg);
    }
    pthread_mutex_unlock(&repeat_lock);
    if (summary[0] != '\0')
        emit(summary_level, -1, summary);
    return admit;
}

/* From the writer, once a second: windows that ended (with `all`, at the
 * exit: every window) get their summary, and messages that were not
 * repeated are forgotten. */
static void repeat_sweep(time_t now, int all)
{
    for (size_t i = 0; i < REPEAT_SETS * REPEAT_WAYS; i++) {
        struct repeat *r = &repeats[i];
        char summary[REPEAT_TEXT + 100];
        int level = 0;

        summary[0] = '\0';
        pthread_mutex_lock(&repeat_lock);
        if (r->used && (all || now - r->since >= REPEAT_WINDOW_S)) {
            if (r->count > 0) {
                repeat_summary(r, now, summary, sizeof summary);
                level = r->level;
                r->count = 0;
                r->since = now;
            } else {
                r->used = 0;
            }
        }
        pthread_mutex_unlock(&repeat_lock);
        if (summary[0] != '\0')
            emit(level, -1, summary);
    }
}

void dpd_log_library(int level, const char *msg, void *user)
{
    const struct dpd_log_source *w = user;

    if (level <= DOTPROXY_LOG_WARN && !repeat_admit(level, msg))
        return;
    emit(level, (int)w->worker, msg);
}

static const char *qtype_name(unsigned t, char *buf, size_t cap)
{
    switch (t) {
    case 1: return "A";
    case 2: return "NS";
    case 5: return "CNAME";
    case 6: return "SOA";
    case 12: return "PTR";
    case 15: return "MX";
    case 16: return "TXT";
    case 28: return "AAAA";
    case 33: return "SRV";
    case 43: return "DS";
    case 48: return "DNSKEY";
    case 64: return "SVCB";
    case 65: return "HTTPS";
    default: snprintf(buf, cap, "TYPE%u", t); return buf;
    }
}

static const char *rcode_name(int rcode)
{
    static const char *const names[] = {"NOERROR",  "FORMERR", "SERVFAIL",
                                        "NXDOMAIN", "NOTIMP",  "REFUSED"};
    return rcode >= 0 && rcode < 6 ? names[rcode] : "RCODE?";
}

/* The client as address text and port; "-" and 0 when there is none (API
 * queries). */
static void client_text(const dotproxy_query_log *e, char *addr, size_t cap, unsigned *port)
{
    snprintf(addr, cap, "-");
    *port = 0;
    if (e->client != NULL && e->client->sa_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)(const void *)e->client;
        inet_ntop(AF_INET, &sin->sin_addr, addr, (socklen_t)cap);
        *port = ntohs(sin->sin_port);
    } else if (e->client != NULL && e->client->sa_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)(const void *)e->client;
        inet_ntop(AF_INET6, &sin6->sin6_addr, addr, (socklen_t)cap);
        *port = ntohs(sin6->sin6_port);
    }
}

/* ,"KEY":"VALUE" (escaped) at out[*len], when value is not NULL. */
static void json_opt_field(char *out, size_t cap, size_t *len, const char *key, const char *value)
{
    char esc[400];

    if (value == NULL || *len >= cap)
        return;
    json_escape(esc, sizeof esc, value);
    int n = snprintf(out + *len, cap - *len, ",\"%s\":\"%s\"", key, esc);
    if (n > 0 && (size_t)n < cap - *len)
        *len += (size_t)n; /* else left out whole: a cut field is not JSON */
    out[*len] = '\0';
}

/* The query line as one JSON object, for pipelines that index fields:
 * event "query", client (null for API queries) and client_port, transport,
 * qname, qtype, rcode, latency_ms, source ("cache", the upstream's
 * ADDR@PORT#NAME, or "local" for our own error replies), and list and rule
 * when a block list decided the answer. Returns the length (< cap - 1). */
static size_t format_query_json(const dotproxy_query_log *e, int worker, char *line, size_t cap)
{
    char ts[48], wbuf[16], addr[INET6_ADDRSTRLEN], client[INET6_ADDRSTRLEN + 2], tbuf[16];
    /* Sized so that the fixed part always fits LINE_CAP: the longest name
     * (255 octets as \DDD, each backslash doubled) and the longest label. */
    char name[1300], source[320];
    unsigned port;
    size_t len;

    json_head(ts, sizeof ts, worker, wbuf, sizeof wbuf);
    client_text(e, addr, sizeof addr, &port);
    if (e->client != NULL)
        snprintf(client, sizeof client, "\"%s\"", addr);
    else
        snprintf(client, sizeof client, "null");
    json_escape(name, sizeof name, e->qname != NULL ? e->qname : "");
    json_escape(source, sizeof source,
                e->from_cache         ? "cache"
                : e->upstream != NULL ? e->upstream
                                      : "local");
    int n = snprintf(line, cap - 1,
                     "{\"ts\":\"%s\",\"level\":\"info\",\"worker\":%s,\"event\":\"query\","
                     "\"client\":%s,\"client_port\":%u,\"transport\":\"%s\",\"qname\":\"%s\","
                     "\"qtype\":\"%s\",\"rcode\":\"%s\",\"latency_ms\":%.3f,\"source\":\"%s\"",
                     ts, wbuf, client, port, e->transport, name,
                     qtype_name(e->qtype, tbuf, sizeof tbuf), rcode_name(e->rcode),
                     (double)e->latency_us / 1000.0, source);
    if (n < 0 || (size_t)n >= cap - 2)
        return 0;
    len = (size_t)n;
    json_opt_field(line, cap - 2, &len, "list", e->list);
    json_opt_field(line, cap - 2, &len, "rule", e->rule);
    line[len++] = '}';
    line[len] = '\0';
    return len;
}

/* One line per answer, on the worker's thread, at most qlog_limit a second:
 * past it lines are counted and the count reported when the next second
 * starts (a flood must not turn into a disk-filling log). */
void dpd_log_query(const dotproxy_query_log *e, void *user)
{
    struct dpd_log_source *w = user;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (now.tv_sec != w->qlog_second) {
        if (w->qlog_suppressed > 0) {
            char note[96];
            snprintf(note, sizeof note, "query log: %lu lines suppressed (over %u per second)",
                     w->qlog_suppressed, w->qlog_limit);
            emit(DOTPROXY_LOG_INFO, (int)w->worker, note);
        }
        w->qlog_second = now.tv_sec;
        w->qlog_lines = 0;
        w->qlog_suppressed = 0;
    }
    if (w->qlog_lines >= w->qlog_limit) {
        w->qlog_suppressed++;
        return;
    }
    w->qlog_lines++;
    if (log_json) {
        char jline[LINE_CAP];
        size_t jlen = format_query_json(e, (int)w->worker, jline, sizeof jline);

        if (jlen > 0)
            put(DOTPROXY_LOG_INFO, jline, jlen);
        return;
    }
    char client[INET6_ADDRSTRLEN + 8] = "-", addr[INET6_ADDRSTRLEN], tbuf[16], line[1300];
    unsigned port;
    client_text(e, addr, sizeof addr, &port);
    if (e->client != NULL)
        snprintf(client, sizeof client, "%s#%u", addr, port);
    int n = snprintf(line, sizeof line, "query %s %s %s %s %s %.3f ms %s%s", client, e->transport,
                     e->qname, qtype_name(e->qtype, tbuf, sizeof tbuf), rcode_name(e->rcode),
                     (double)e->latency_us / 1000.0, e->from_cache ? "cache" : "upstream ",
                     e->from_cache ? "" : (e->upstream != NULL ? e->upstream : "-"));
    if (n > 0 && (size_t)n < sizeof line && e->list != NULL)
        snprintf(line + n, sizeof line - (size_t)n, " list %s rule %s", e->list,
                 e->rule != NULL ? e->rule : "-");
    emit(DOTPROXY_LOG_INFO, (int)w->worker, line);
}

/* Messages from the main thread, filtered by the same level as the library's. */
static int main_log_level = DOTPROXY_LOG_INFO;

void dpd_log_main(int level, const char *fmt, ...)
{
    char msg[1400];
    va_list ap;

    if (level > main_log_level)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    emit(level, -1, msg);
}

/* A failure that ends the daemon: always shown, as "dotproxyd: MSG" in the
 * text format (what supervisors and the tests look for). */
void dpd_log_fatal(const char *fmt, ...)
{
    char msg[1400];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (log_json || log_syslog) {
        emit(DOTPROXY_LOG_ERR, -1, msg);
    } else {
        char line[LINE_CAP];

        snprintf(line, sizeof line - 1, "dotproxyd: %s", msg);
        put(DOTPROXY_LOG_ERR, line, strlen(line));
    }
}

void dpd_log_set_level(int level)
{
    main_log_level = level;
}

void dpd_log_open(int json, int use_syslog)
{
    pthread_condattr_t ca;
    sigset_t all, old;
    int r;

    log_json = json;
    log_syslog = use_syslog;
    if (log_syslog)
        openlog("dotproxyd", LOG_PID, LOG_DAEMON);
    r = pthread_condattr_init(&ca);
    if (r == 0) {
        r = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        if (r == 0)
            r = pthread_cond_init(&q_cond, &ca);
        pthread_condattr_destroy(&ca);
    }
    if (r != 0) {
        dpd_log_main(DOTPROXY_LOG_WARN, "log writer: %s; logging synchronously", strerror(r));
        return;
    }
    /* The daemon's signals are handled in the main thread only. */
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    r = pthread_create(&writer, NULL, writer_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (r != 0) {
        dpd_log_main(DOTPROXY_LOG_WARN, "log writer: %s; logging synchronously", strerror(r));
        return;
    }
    pthread_mutex_lock(&q_lock);
    writer_started = 1;
    pthread_mutex_unlock(&q_lock);
}

void dpd_log_close(void)
{
    int done;

    pthread_mutex_lock(&q_lock);
    if (writer_started) {
        struct timespec until;

        /* What is queued goes out first, for a bounded time: an output
         * that never drains must not keep the daemon from exiting. */
        writer_stopping = 1;
        pthread_cond_broadcast(&q_cond);
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += FLUSH_WAIT_S;
        while (!writer_done && pthread_cond_timedwait(&q_cond, &q_lock, &until) != ETIMEDOUT)
            ;
    }
    done = writer_done;
    pthread_mutex_unlock(&q_lock);
    if (done)
        pthread_join(writer, NULL);
    /* else the writer is stuck in write(2); the exit ends it. */
    if (log_syslog)
        closelog();
}
