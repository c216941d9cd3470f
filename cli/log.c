/* SPDX-License-Identifier: MIT */
/* dotproxyd: the daemon's log sink. Lines from the library (per worker),
 * the query log and the main thread's own messages, formatted as text, JSON
 * or for syslog(3), and written to stderr or syslog. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
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

/* One log line, from worker `worker` (-1: the main thread). One write(2)
 * (or one syslog(3) call) per line: lines from concurrent workers must not
 * interleave, and writes of this size to a pipe or file are not split. */
static void emit(int level, int worker, const char *msg)
{
    char line[2048];
    size_t len;

    if (log_json) {
        char ts[40], wbuf[16], body[1500];
        struct timespec now;
        struct tm tm;

        clock_gettime(CLOCK_REALTIME, &now);
        gmtime_r(&now.tv_sec, &tm);
        strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
        if (worker >= 0)
            snprintf(wbuf, sizeof wbuf, "%d", worker);
        else
            snprintf(wbuf, sizeof wbuf, "null");
        json_escape(body, sizeof body, msg);
        snprintf(line, sizeof line - 1,
                 "{\"ts\":\"%s.%03ldZ\",\"level\":\"%s\",\"worker\":%s,\"msg\":\"%s\"}", ts,
                 now.tv_nsec / 1000000, level_name(level), wbuf, body);
    } else if (log_syslog) {
        if (worker >= 0)
            snprintf(line, sizeof line - 1, "[%d] %s", worker, msg);
        else
            snprintf(line, sizeof line - 1, "%s", msg);
    } else if (worker >= 0) {
        snprintf(line, sizeof line - 1, "dotproxyd[%d]: %s: %s", worker, level_name(level), msg);
    } else {
        snprintf(line, sizeof line - 1, "dotproxyd: %s: %s", level_name(level), msg);
    }
    if (log_syslog) {
        syslog(syslog_priority(level), "%s", line);
        return;
    }
    len = strlen(line); /* at most sizeof line - 2: room for the newline */
    line[len++] = '\n';
    for (size_t off = 0; off < len;) {
        ssize_t w = write(STDERR_FILENO, line + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return; /* nowhere left to report it */
        off += (size_t)w;
    }
}

void dpd_log_library(int level, const char *msg, void *user)
{
    const struct dpd_log_source *w = user;

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
    static const char *const names[] = {"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN",
                                        "NOTIMP",  "REFUSED"};
    return rcode >= 0 && rcode < 6 ? names[rcode] : "RCODE?";
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
    char client[INET6_ADDRSTRLEN + 8] = "-", tbuf[16], line[1300];
    if (e->client != NULL && e->client->sa_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)(const void *)e->client;
        char a[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &sin->sin_addr, a, sizeof a);
        snprintf(client, sizeof client, "%s#%u", a, ntohs(sin->sin_port));
    } else if (e->client != NULL && e->client->sa_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)(const void *)e->client;
        char a[INET6_ADDRSTRLEN];
        inet_ntop(AF_INET6, &sin6->sin6_addr, a, sizeof a);
        snprintf(client, sizeof client, "%s#%u", a, ntohs(sin6->sin6_port));
    }
    snprintf(line, sizeof line, "query %s %s %s %s %s %.3f ms %s%s", client, e->transport,
             e->qname, qtype_name(e->qtype, tbuf, sizeof tbuf), rcode_name(e->rcode),
             (double)e->latency_us / 1000.0, e->from_cache ? "cache" : "upstream ",
             e->from_cache ? "" : (e->upstream != NULL ? e->upstream : "-"));
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
    if (log_json || log_syslog)
        emit(DOTPROXY_LOG_ERR, -1, msg);
    else
        fprintf(stderr, "dotproxyd: %s\n", msg);
}

void dpd_log_set_level(int level)
{
    main_log_level = level;
}

void dpd_log_open(int json, int use_syslog)
{
    log_json = json;
    log_syslog = use_syslog;
    if (log_syslog)
        openlog("dotproxyd", LOG_PID, LOG_DAEMON);
}

void dpd_log_close(void)
{
    if (log_syslog)
        closelog();
}
