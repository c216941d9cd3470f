/* SPDX-License-Identifier: MIT */
/* dotproxyd: the daemon. Parses the command line (options.c), then runs N
 * independent contexts, one per thread, until SIGTERM or SIGINT.
 *
 * Every context is created (and every address bound) in the main thread
 * before any worker starts, so that a bind failure is reported once, with
 * exit status 1, rather than from a half-started daemon. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <dotproxy/dotproxy.h>

#include "options.h"

struct worker {
    unsigned index;
    dotproxy_ctx *ctx;
    pthread_t thread;
    int result; /* what dotproxy_ctx_run() returned */
};

static struct worker workers[DPD_MAX_WORKERS];

/* The handler reads workers[0..n_published): each ctx pointer is written
 * before the count that makes it visible, and the handler only ever runs in
 * the main thread (the workers block the signals), the thread that writes
 * both, so no further ordering is needed. */
static volatile sig_atomic_t n_published;
static volatile sig_atomic_t stop_requested;

static const char *level_name(int level)
{
    switch (level) {
    case DOTPROXY_LOG_ERR: return "error";
    case DOTPROXY_LOG_WARN: return "warning";
    case DOTPROXY_LOG_INFO: return "info";
    default: return "debug";
    }
}

/* One write(2) per line: stderr is unbuffered but fprintf may still split a
 * line into several writes, and lines from concurrent workers must not
 * interleave. Writes of this size to a pipe or file are not split. */
static void write_line(const char *prefix, int level, const char *msg)
{
    char line[1024];
    int n = snprintf(line, sizeof line - 1, "%s: %s: %s", prefix, level_name(level), msg);
    size_t len;

    if (n < 0)
        return;
    len = (size_t)n < sizeof line - 1 ? (size_t)n : sizeof line - 2; /* truncated */
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

static void log_from_library(int level, const char *msg, void *user)
{
    const struct worker *w = user;
    char prefix[32];

    snprintf(prefix, sizeof prefix, "dotproxyd[%u]", w->index);
    write_line(prefix, level, msg);
}

/* Messages from the main thread, filtered by the same level as the library's. */
static int main_log_level = DOTPROXY_LOG_INFO;

static void log_main(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void log_main(int level, const char *fmt, ...)
{
    char msg[900];
    va_list ap;

    if (level > main_log_level)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    write_line("dotproxyd", level, msg);
}

/* dotproxy_ctx_stop() is documented async-signal-safe; nothing else here
 * touches more than a sig_atomic_t. */
static void on_stop_signal(int sig)
{
    int saved = errno;

    (void)sig;
    stop_requested = 1;
    for (sig_atomic_t i = 0; i < n_published; i++)
        dotproxy_ctx_stop(workers[i].ctx);
    errno = saved;
}

static int install_signal_handlers(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    /* A client closing its TCP connection must not kill the daemon: the
     * library sees EPIPE instead. */
    sa.sa_handler = SIG_IGN;
    if (sigaction(SIGPIPE, &sa, NULL) != 0)
        return -1;
    sa.sa_handler = on_stop_signal;
    if (sigaction(SIGTERM, &sa, NULL) != 0 || sigaction(SIGINT, &sa, NULL) != 0)
        return -1;
    return 0;
}

static void stop_all(unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        dotproxy_ctx_stop(workers[i].ctx);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;

    w->result = dotproxy_ctx_run(w->ctx);
    if (w->result < 0) {
        char msg[128];
        snprintf(msg, sizeof msg, "event loop failed: %s", dotproxy_strerror(w->result));
        log_from_library(DOTPROXY_LOG_ERR, msg, w);
        /* A daemon silently running on fewer workers than asked for would
         * hide the failure: take the others down too, and exit 1. */
        for (sig_atomic_t i = 0; i < n_published; i++)
            dotproxy_ctx_stop(workers[i].ctx);
    }
    return NULL;
}

/* The addresses actually bound (port 0 resolved) and the upstreams, on one
 * line, so that an operator or a test can see what the daemon serves. */
static void log_startup(const struct dpd_options *opts)
{
    char line[900];
    char ep_text[400];
    size_t len = 0;

    len += (size_t)snprintf(line + len, sizeof line - len, "dotproxyd %s listening on",
                            dotproxy_version());
    for (size_t i = 0; i < opts->n_listen && len < sizeof line; i++) {
        dotproxy_endpoint ep = opts->listen[i];
        int port = dotproxy_ctx_listen_port(workers[0].ctx, i);

        if (port > 0) {
            if (ep.addr.ss_family == AF_INET)
                ((struct sockaddr_in *)&ep.addr)->sin_port = htons((uint16_t)port);
            else
                ((struct sockaddr_in6 *)&ep.addr)->sin6_port = htons((uint16_t)port);
        }
        if (dotproxy_endpoint_format(&ep, ep_text, sizeof ep_text) < 0)
            snprintf(ep_text, sizeof ep_text, "?");
        len += (size_t)snprintf(line + len, sizeof line - len, "%s %s", i ? "," : "", ep_text);
    }
    if (len < sizeof line)
        len += (size_t)snprintf(line + len, sizeof line - len, " (UDP and TCP); upstreams");
    for (size_t i = 0; i < opts->n_upstream && len < sizeof line; i++) {
        if (dotproxy_endpoint_format(&opts->upstream[i], ep_text, sizeof ep_text) < 0)
            snprintf(ep_text, sizeof ep_text, "?");
        len += (size_t)snprintf(line + len, sizeof line - len, "%s %s", i ? "," : "", ep_text);
    }
    if (len < sizeof line)
        snprintf(line + len, sizeof line - len, "; %u worker%s", opts->workers,
                 opts->workers == 1 ? "" : "s");
    log_main(DOTPROXY_LOG_INFO, "%s", line);
}

/* Worker 0 binds what was asked; the others bind the ports worker 0 got,
 * so that "ADDR@0" with --workers N gives N sockets on one kernel-chosen
 * port, not N different ports. */
static int create_contexts(const struct dpd_options *opts)
{
    int *ports = calloc(opts->n_listen, sizeof *ports);
    int r = ports == NULL ? DOTPROXY_ENOMEM : 0;

    for (unsigned i = 0; r == 0 && i < opts->workers; i++) {
        dotproxy_config *cfg;

        workers[i].index = i;
        r = dpd_options_config(&cfg, opts, i == 0 ? NULL : ports);
        if (r < 0)
            break;
        r = dotproxy_config_set_log(cfg, log_from_library, &workers[i], opts->log_level);
        if (r == 0)
            r = dotproxy_ctx_new(&workers[i].ctx, cfg); /* copies cfg */
        dotproxy_config_free(cfg);
        if (r < 0)
            break;
        for (size_t j = 0; i == 0 && j < opts->n_listen; j++)
            ports[j] = dotproxy_ctx_listen_port(workers[0].ctx, j);
        n_published = (sig_atomic_t)(i + 1);
    }
    free(ports);
    if (r < 0) {
        fprintf(stderr, "dotproxyd: cannot start: %s%s\n", dotproxy_strerror(r),
                r == DOTPROXY_EBIND  ? " (the log above says which and why)"
                : r == DOTPROXY_ETLS ? " (is the CA file PEM?)"
                                     : "");
        return -1;
    }
    return 0;
}

static void free_contexts(unsigned n)
{
    sigset_t block, old;

    /* No handler may reach a context while it is being freed. */
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    n_published = 0;
    for (unsigned i = 0; i < n; i++) {
        dotproxy_ctx_free(workers[i].ctx);
        workers[i].ctx = NULL;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* Start the workers with the stop signals blocked, so that they are always
 * handled in the main thread (see n_published). Returns how many started. */
static unsigned start_workers(unsigned n)
{
    sigset_t block, old;
    unsigned started = 0;

    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    for (; started < n; started++) {
        int r = pthread_create(&workers[started].thread, NULL, worker_main, &workers[started]);
        if (r != 0) {
            fprintf(stderr, "dotproxyd: cannot start worker thread %u: %s\n", started, strerror(r));
            break;
        }
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return started;
}

static int run(const struct dpd_options *opts)
{
    unsigned started;
    int status = DPD_EXIT_OK;

    main_log_level = opts->log_level;
    if (install_signal_handlers() != 0) {
        fprintf(stderr, "dotproxyd: cannot install signal handlers: %s\n", strerror(errno));
        return DPD_EXIT_RUNTIME;
    }
    if (create_contexts(opts) != 0) {
        free_contexts((unsigned)n_published);
        return DPD_EXIT_RUNTIME;
    }
    /* A signal that came before every context was published stopped only
     * some of them: stop the rest now (stopping twice is harmless). */
    if (stop_requested)
        stop_all(opts->workers);

    log_startup(opts);
    started = start_workers(opts->workers);
    if (started < opts->workers) {
        stop_all(opts->workers);
        status = DPD_EXIT_RUNTIME;
    }
    for (unsigned i = 0; i < started; i++) {
        pthread_join(workers[i].thread, NULL);
        if (workers[i].result < 0)
            status = DPD_EXIT_RUNTIME;
    }
    free_contexts(opts->workers);
    if (status != DPD_EXIT_OK)
        fprintf(stderr, "dotproxyd: stopped after a failure\n");
    else
        log_main(DOTPROXY_LOG_INFO, "stopped");
    return status;
}

int main(int argc, char **argv)
{
    struct dpd_options opts;
    int status;

    if (dpd_options_parse(&opts, argc, argv, &status) == DPD_PARSE_EXIT)
        return status;
    status = run(&opts);
    dpd_options_release(&opts);
    return status;
}
