/* SPDX-License-Identifier: MIT */
/* dotproxyd: the daemon. Parses the command line and the configuration file
 * (options.c), then runs N independent contexts, one per thread, until
 * SIGTERM or SIGINT; SIGHUP re-reads the file.
 *
 * Every context is created (and every address bound) in the main thread
 * before any worker starts, so that a bind failure is reported once, with
 * exit status 1, rather than from a half-started daemon. Privileges are
 * dropped (--user) only after everything is bound.
 *
 * The main thread then waits on a self-pipe: signal handlers, the metrics
 * server's reload call and finishing workers write a byte to it, and the
 * main thread does the work a handler may not (re-reading the file
 * allocates). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <dotproxy/dotproxy.h>

#include "http_server.h"
#include "dnstap.h"
#include "log.h"
#include "notify.h"
#include "options.h"

struct worker {
    unsigned index;
    dotproxy_ctx *ctx;
    struct dpd_log_source log; /* the log callbacks' argument */
    pthread_t thread;
    int result; /* what dotproxy_ctx_run() returned */
};

static struct worker workers[DPD_MAX_WORKERS];

/* The handler reads workers[0..n_published): each ctx pointer is written
 * before the count that makes it visible, and the handler only ever runs in
 * the main thread (every other thread blocks the signals), the thread that
 * writes both, so no further ordering is needed. */
static volatile sig_atomic_t n_published;
static volatile sig_atomic_t stop_requested;

/* Wakes the main thread: 'h' asks for a reload, 'x' says a worker ended,
 * 's' a stop. Both ends close-on-exec; the write end non-blocking, so that a
 * handler never blocks (a full pipe already holds a wake-up). */
static int event_pipe[2] = {-1, -1};
static atomic_uint workers_done;

/* ---- signals and the event pipe ---- */

static void notify(char what)
{
    int saved = errno;
    ssize_t r = write(event_pipe[1], &what, 1);

    (void)r; /* EAGAIN: the pipe is full of wake-ups already */
    errno = saved;
}

/* dotproxy_ctx_stop() is documented async-signal-safe; nothing else here
 * touches more than a sig_atomic_t and write(2). */
static void on_stop_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
    for (sig_atomic_t i = 0; i < n_published; i++)
        dotproxy_ctx_stop(workers[i].ctx);
    notify('s');
}

static void on_hup(int sig)
{
    (void)sig;
    notify('h');
}

static int install_signal_handlers(void)
{
    struct sigaction sa;

    if (pipe2(event_pipe, O_CLOEXEC) != 0 || fcntl(event_pipe[1], F_SETFL, O_NONBLOCK) != 0)
        return -1;
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
    sa.sa_handler = on_hup;
    if (sigaction(SIGHUP, &sa, NULL) != 0)
        return -1;
    return 0;
}

/* Block the daemon's signals in the calling thread; threads it creates
 * inherit the mask, so the handlers only ever run in the main thread. */
static void block_signals(sigset_t *old)
{
    sigset_t block;

    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &block, old);
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
        dpd_log_library(DOTPROXY_LOG_ERR, msg, &w->log);
        /* A daemon silently running on fewer workers than asked for would
         * hide the failure: take the others down too, and exit 1. */
        for (sig_atomic_t i = 0; i < n_published; i++)
            dotproxy_ctx_stop(workers[i].ctx);
    }
    atomic_fetch_add(&workers_done, 1);
    notify('x');
    return NULL;
}

/* ---- startup ---- */

/* The addresses actually bound (port 0 resolved) and the upstreams, on one
 * line, so that an operator or a test can see what the daemon serves; the
 * same from "listening on" into status, for systemd's STATUS=. */
static void log_startup(const struct dpd_options *opts, char *status, size_t status_cap)
{
    char line[1200];
    char ep_text[400];
    size_t len = 0;
    size_t status_from;

    len += (size_t)snprintf(line + len, sizeof line - len, "dotproxyd %s ", dotproxy_version());
    status_from = len;
    len += (size_t)snprintf(line + len, sizeof line - len, "listening on");
    for (size_t i = 0; i < dotproxy_config_listen_count(opts->cfg) && len < sizeof line; i++) {
        dotproxy_endpoint ep;
        int port = dotproxy_ctx_listen_port(workers[0].ctx, i);

        if (dotproxy_config_get_listen(opts->cfg, i, &ep) != 0)
            memset(&ep, 0, sizeof ep); /* family 0: formatted as "?" */
        if (port > 0 && ep.addr.ss_family != 0) {
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
        len += (size_t)snprintf(line + len, sizeof line - len, " (UDP and TCP)");
    for (size_t i = 0; i < dotproxy_config_listen_tls_count(opts->cfg) && len < sizeof line; i++) {
        dotproxy_endpoint ep;
        int port = dotproxy_ctx_listen_tls_port(workers[0].ctx, i);

        if (dotproxy_config_get_listen_tls(opts->cfg, i, &ep) != 0)
            memset(&ep, 0, sizeof ep);
        if (port > 0 && ep.addr.ss_family == AF_INET)
            ((struct sockaddr_in *)&ep.addr)->sin_port = htons((uint16_t)port);
        else if (port > 0 && ep.addr.ss_family == AF_INET6)
            ((struct sockaddr_in6 *)&ep.addr)->sin6_port = htons((uint16_t)port);
        if (dotproxy_endpoint_format(&ep, ep_text, sizeof ep_text) < 0)
            snprintf(ep_text, sizeof ep_text, "?");
        len +=
            (size_t)snprintf(line + len, sizeof line - len, "%s %s", i ? "," : ", TLS on", ep_text);
    }
    if (len < sizeof line)
        len += (size_t)snprintf(line + len, sizeof line - len, "; upstreams");
    for (size_t i = 0; i < dotproxy_config_upstream_count(opts->cfg) && len < sizeof line; i++) {
        dotproxy_endpoint ep;

        if (dotproxy_config_get_upstream(opts->cfg, i, &ep) != 0 ||
            dotproxy_endpoint_format(&ep, ep_text, sizeof ep_text) < 0)
            snprintf(ep_text, sizeof ep_text, "?");
        len += (size_t)snprintf(line + len, sizeof line - len, "%s %s", i ? "," : "", ep_text);
    }
    if (len < sizeof line)
        snprintf(line + len, sizeof line - len, "; %u worker%s", opts->workers,
                 opts->workers == 1 ? "" : "s");
    dpd_log_main(DOTPROXY_LOG_INFO, "%s", line);
    snprintf(status, status_cap, "%s", line + status_from);
}

/* sd_notify(3): a supervisor that cannot be told is no reason to stop. */
static void notify_systemd(int r, const char *what)
{
    if (r < 0)
        dpd_log_main(DOTPROXY_LOG_DEBUG, "sd_notify %s: %s", what, strerror(-r));
}

/* The ports worker 0 bound, which the other workers (and every reload)
 * reuse: with "ADDR@0" they must all name the kernel's choice. */
static int *bound_ports;

/* With several workers, one answer cache they all use: the same memory
 * then answers more queries than a cache each (docs/cache-design.md). */
static dotproxy_cache *shared_cache;

/* The blocklists, one copy for every worker: loaded once, before the
 * workers start, and rebuilt on its own thread on reload. */
static dotproxy_blocker *blocker;
/* One anomaly detector for all workers: a client's rate is the same
 * whichever worker its packets reach (docs/anomaly.md). Made once from the
 * options at start: its rules are restart-only. */
static dotproxy_dynblock *shared_dynblock;

/* The options the daemon started with; see reload. */
static struct dpd_options boot;

/* Worker i's configuration: the options, its log tag, the shared cache, the
 * listen addresses bound at start, and for i > 0 the ports worker 0 got. */
static int worker_config(dotproxy_config **out, const struct dpd_options *opts, unsigned i)
{
    dotproxy_config *cfg;
    int r = dpd_options_config(&cfg, opts, boot.cfg, i == 0 ? NULL : bound_ports, 0);

    if (r < 0)
        return r;
    if (opts->workers > 1 && dotproxy_config_get_cache_size(opts->cfg) > 0 &&
        !opts->cache_per_worker) {
        if (shared_cache == NULL)
            r = dotproxy_cache_new(&shared_cache, cfg);
        if (r == 0)
            r = dotproxy_config_set_shared_cache(cfg, shared_cache);
        if (r < 0) {
            dotproxy_config_free(cfg);
            return r;
        }
    }
    if (shared_dynblock == NULL) {
        /* Its log lines go out as worker 0's. */
        r = dotproxy_config_set_log(cfg, dpd_log_library, &workers[0].log,
                                    dotproxy_config_get_log_level(opts->cfg));
        if (r == 0)
            r = dotproxy_dynblock_new(&shared_dynblock, cfg);
    }
    if (r == 0)
        r = dotproxy_config_set_shared_dynblock(cfg, shared_dynblock);
    if (r < 0) {
        dotproxy_config_free(cfg);
        return r;
    }
    r = dotproxy_config_set_log(cfg, dpd_log_library, &workers[i].log,
                                dotproxy_config_get_log_level(opts->cfg));
    if (r == 0 && blocker == NULL &&
        dotproxy_config_list_count(cfg, DOTPROXY_LIST_BLOCK) +
                dotproxy_config_list_count(cfg, DOTPROXY_LIST_ALLOW) +
                dotproxy_config_list_count(cfg, DOTPROXY_LIST_RPZ) +
                dotproxy_config_rpz_primary_count(cfg) + dotproxy_config_blocklist_url_count(cfg) >
            0)
        r = dotproxy_blocker_new(&blocker, cfg, 0, NULL, 0);
    if (r == 0 && blocker != NULL)
        r = dotproxy_config_set_blocker(cfg, blocker);
    if (r == 0 && opts->log_queries > 0) {
        workers[i].log.qlog_limit = opts->log_queries;
        r = dotproxy_config_set_query_log(cfg, dpd_log_query, &workers[i].log);
    }
    /* --dnstap is restart-only: the output opened at start serves reloads. */
    if (r == 0 && boot.dnstap != NULL)
        r = dotproxy_config_set_tap(cfg, dpd_dnstap_event, dpd_dnstap_worker(i));
    if (r < 0) {
        dotproxy_config_free(cfg);
        return r;
    }
    *out = cfg;
    return 0;
}

static int create_contexts(const struct dpd_options *opts)
{
    size_t n_listen = dotproxy_config_listen_count(opts->cfg);
    int r;

    bound_ports = calloc(n_listen > 0 ? n_listen : 1, sizeof *bound_ports);
    r = bound_ports == NULL ? DOTPROXY_ENOMEM : 0;
    for (unsigned i = 0; r == 0 && i < opts->workers; i++) {
        dotproxy_config *cfg;

        workers[i].index = i;
        workers[i].log.worker = i;
        r = worker_config(&cfg, opts, i);
        if (r < 0)
            break;
        r = dotproxy_ctx_new(&workers[i].ctx, cfg); /* copies cfg */
        dotproxy_config_free(cfg);
        if (r < 0)
            break;
        for (size_t j = 0; i == 0 && j < n_listen; j++)
            bound_ports[j] = dotproxy_ctx_listen_port(workers[0].ctx, j);
        n_published = (sig_atomic_t)(i + 1);
    }
    if (r < 0) {
        dpd_log_fatal("cannot start: %s%s", dotproxy_strerror(r),
                      r == DOTPROXY_EBIND ? " (the log above says which and why)"
                      : r == DOTPROXY_ETLS
                          ? " (is the CA file PEM? is the TLS priority string valid?)"
                          : "");
        return -1;
    }
    return 0;
}

static void free_contexts(unsigned n)
{
    sigset_t old;

    /* No handler may reach a context while it is being freed. */
    block_signals(&old);
    n_published = 0;
    for (unsigned i = 0; i < n; i++) {
        dotproxy_ctx_free(workers[i].ctx);
        workers[i].ctx = NULL;
    }
    dotproxy_cache_free(shared_cache); /* the contexts held their own references */
    shared_cache = NULL;
    dotproxy_blocker_free(blocker);
    blocker = NULL;
    dotproxy_dynblock_free(shared_dynblock);
    shared_dynblock = NULL;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* Start the workers with the signals blocked, so that they are always
 * handled in the main thread (see n_published). Returns how many started. */
static unsigned start_workers(unsigned n)
{
    sigset_t old;
    unsigned started = 0;

    block_signals(&old);
    for (; started < n; started++) {
        int r = pthread_create(&workers[started].thread, NULL, worker_main, &workers[started]);
        if (r != 0) {
            dpd_log_fatal("cannot start worker thread %u: %s", started, strerror(r));
            break;
        }
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return started;
}

/* setgroups (through initgroups), setgid, then setuid: the order that
 * leaves no root group behind. Sockets are bound already; a reload cannot
 * rebind anyway. */
static int drop_privileges(const char *user)
{
    struct passwd *pw;
    uid_t uid;
    gid_t gid;
    char name[256];

    errno = 0;
    pw = getpwnam(user);
    if (pw == NULL) {
        dpd_log_fatal("--user '%s': no such user", user);
        return -1;
    }
    uid = pw->pw_uid;
    gid = pw->pw_gid;
    snprintf(name, sizeof name, "%s", pw->pw_name);
    if (initgroups(name, gid) != 0) {
        dpd_log_fatal("--user '%s': cannot set the supplementary groups: %s", user,
                      strerror(errno));
        return -1;
    }
    if (setgid(gid) != 0) {
        dpd_log_fatal("--user '%s': cannot set group id %u: %s", user, (unsigned)gid,
                      strerror(errno));
        return -1;
    }
    if (setuid(uid) != 0) {
        dpd_log_fatal("--user '%s': cannot set user id %u: %s", user, (unsigned)uid,
                      strerror(errno));
        return -1;
    }
    if (uid != 0 && setuid(0) == 0) {
        dpd_log_fatal("--user '%s': root could be regained after the switch; refusing to run",
                      user);
        return -1;
    }
    dpd_log_main(DOTPROXY_LOG_INFO, "running as user %s (uid %u, gid %u)", name, (unsigned)uid,
                 (unsigned)gid);
    return 0;
}

/* ---- reload ---- */

/* The options the daemon started with (boot, above: listen addresses,
 * workers, user and the rest that only a restart changes), and those last
 * applied. */
static struct dpd_options current;
static int have_current;

/* Say which of the file's changes wait for a restart: the option table
 * marks them, and compares them through the library's getters. Cache
 * settings are not among them: a reload gives the library a new, empty cache
 * when they change. */
static void warn_restart_only(const struct dpd_options *n)
{
    char what[400];

    dpd_options_restart_changes(&boot, n, what, sizeof what);
    if (what[0] != '\0')
        dpd_log_main(DOTPROXY_LOG_WARN, "reload: changes to %s take effect only after a restart",
                     what);
}

/* A file others may write lets them change what the daemon does (or,
 * for the token, who may): said at start and on every reload. */
static void warn_if_writable(const char *what, const char *path)
{
    struct stat st;

    if (path == NULL || stat(path, &st) != 0 || !S_ISREG(st.st_mode) ||
        !(st.st_mode & (S_IWGRP | S_IWOTH)))
        return; /* /dev/null is writable by all, and harmless */
    dpd_log_main(DOTPROXY_LOG_WARN, "%s '%s' is writable by %s; chmod go-w it", what, path,
                 (st.st_mode & S_IWOTH) ? "every user" : "its group");
}

/* Re-read the file (the command line still wins) and hand the result to
 * every worker. Any error keeps the running configuration: a reload never
 * stops the daemon. 0, or -1 with what failed in err (for the API). */
/* Certificate files the workers read (the TLS listener's, the upstream
 * client's): a reload re-reads them even without a configuration file. */
static int has_cert_files(void)
{
    return dotproxy_config_get_tls_cert(boot.cfg) != NULL ||
           dotproxy_config_get_upstream_cert(boot.cfg) != NULL;
}

/* Rotation by SIGHUP or POST /api/v1/reload without -c: the workers load
 * the certificate files again with the options they run with. */
static int reload_cert_files(char *err, size_t errlen)
{
    for (unsigned i = 0; i < boot.workers; i++) {
        dotproxy_config *cfg;
        int r = worker_config(&cfg, &boot, i);

        if (r == 0) {
            r = dotproxy_ctx_reload(workers[i].ctx, cfg);
            dotproxy_config_free(cfg);
        }
        if (r < 0) {
            snprintf(err, errlen, "worker %u: %s", i, dotproxy_strerror(r));
            dpd_log_main(DOTPROXY_LOG_ERR, "reload: worker %u: %s", i, dotproxy_strerror(r));
            return -1;
        }
    }
    dpd_log_main(DOTPROXY_LOG_INFO,
                 "reload: no configuration file; certificate files re-read by %u worker%s",
                 boot.workers, boot.workers == 1 ? "" : "s");
    return 0;
}

static int reload(char *err, size_t errlen)
{
    struct dpd_options n, view;
    int failed = 0;

    /* The lists are read again on every reload, whatever becomes of the file
     * (their contents are what changed, most of the time): with the file's
     * new list of them when it reads, else with the running one. */
    if (blocker != NULL && boot.config_path == NULL)
        dotproxy_blocker_reload(blocker, have_current ? current.cfg : boot.cfg);
    if (boot.config_path == NULL && has_cert_files())
        return reload_cert_files(err, errlen);
    if (boot.config_path == NULL) {
        snprintf(err, errlen, "no configuration file (-c) to re-read");
        dpd_log_main(DOTPROXY_LOG_WARN, "reload: no configuration file (-c) to re-read; nothing "
                                        "changed");
        return -1;
    }
    if (dpd_options_reparse(&n, &boot, err, errlen) != 0) {
        if (blocker != NULL)
            dotproxy_blocker_reload(blocker, have_current ? current.cfg : boot.cfg);
        dpd_log_main(DOTPROXY_LOG_ERR, "reload: %s; keeping the running configuration", err);
        return -1;
    }
    warn_if_writable("config file", boot.config_path);
    warn_restart_only(&n);
    int had_blocker = blocker != NULL; /* else worker_config makes one if lists came */
    /* Several workers share one cache, made with the settings of its day:
     * changed ones need a new cache, which every worker moves to (the old
     * one goes with the last worker that lets it go). */
    dotproxy_cache *old_cache = NULL;
    int cache_switch = 0; /* on or off: a restart's job, the contexts keep theirs */
    const dotproxy_config *was = have_current ? current.cfg : boot.cfg;
    unsigned was_min, was_max, now_min, now_max;
    dotproxy_config_get_cache_ttl(was, &was_min, &was_max);
    dotproxy_config_get_cache_ttl(n.cfg, &now_min, &now_max);
    size_t was_size = dotproxy_config_get_cache_size(was);
    size_t now_size = dotproxy_config_get_cache_size(n.cfg);
    if (boot.workers > 1 && !boot.cache_per_worker && (was_size == 0) != (now_size == 0)) {
        cache_switch = 1;
        dpd_log_main(DOTPROXY_LOG_WARN,
                     "reload: turning the cache %s with %u workers takes a restart; it stays %s",
                     now_size == 0 ? "off" : "on", boot.workers, was_size == 0 ? "off" : "on");
    } else if (shared_cache != NULL &&
               (was_size != now_size || was_min != now_min || was_max != now_max ||
                dotproxy_config_get_stale_max_s(was) != dotproxy_config_get_stale_max_s(n.cfg))) {
        old_cache = shared_cache;
        shared_cache = NULL; /* worker_config makes the new one */
        dpd_log_main(DOTPROXY_LOG_INFO,
                     "reload: cache settings changed: the %u workers move to a new, empty "
                     "shared cache",
                     boot.workers);
    }
    /* What needs a restart stays as it started; so the library sees the same
     * listen list (worker_config takes boot's, with the bound ports) and
     * keeps its sockets quietly. */
    view = n;
    view.workers = boot.workers;
    for (unsigned i = 0; i < boot.workers; i++) {
        dotproxy_config *cfg;
        int r = worker_config(&cfg, &view, i);

        if (r == 0) {
            r = dotproxy_ctx_reload(workers[i].ctx, cfg);
            dotproxy_config_free(cfg);
        }
        if (r < 0) {
            dpd_log_main(DOTPROXY_LOG_ERR, "reload: worker %u: %s", i, dotproxy_strerror(r));
            if (!failed)
                snprintf(err, errlen, "worker %u: %s", i, dotproxy_strerror(r));
            failed = 1;
        }
    }
    if (had_blocker)
        dotproxy_blocker_reload(blocker, n.cfg); /* a new one read the lists just now */
    dotproxy_cache_free(old_cache);              /* the workers hold their own references */
    if (cache_switch && now_size > 0) {
        /* worker_config made one that no context took */
        dotproxy_cache_free(shared_cache);
        shared_cache = NULL;
    }
    dpd_log_set_level(dotproxy_config_get_log_level(n.cfg));
    if (have_current)
        dpd_options_release(&current);
    current = n;
    have_current = 1;
    dpd_log_main(failed ? DOTPROXY_LOG_WARN : DOTPROXY_LOG_INFO,
                 "reload: configuration re-read from %s and passed to %u worker%s%s",
                 boot.config_path, boot.workers, boot.workers == 1 ? "" : "s",
                 failed ? " (some failed, see above)" : "");
    return failed ? -1 : 0;
}

/* POST /api/v1/reload is answered with the reload's outcome: the HTTP
 * thread asks (reload_asked), wakes the main thread as SIGHUP does and
 * waits until a reload that started after its request is done
 * (reload_done), for at most RELOAD_WAIT_S. Requests that come during one
 * reload are served together by the next. */
#define RELOAD_WAIT_S 10

static pthread_mutex_t reload_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t reload_cond; /* on CLOCK_MONOTONIC */
static unsigned long reload_asked, reload_done;
static int reload_result, reload_closed;
static char reload_error[1024];

static int reload_sync_init(void)
{
    pthread_condattr_t ca;
    int r = pthread_condattr_init(&ca);

    if (r != 0)
        return r;
    r = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    if (r == 0)
        r = pthread_cond_init(&reload_cond, &ca);
    pthread_condattr_destroy(&ca);
    return r;
}

/* The main thread: a reload covering every request up to `upto` ended
 * with result r (err when r < 0). */
static void reload_finished(unsigned long upto, int r, const char *err)
{
    pthread_mutex_lock(&reload_lock);
    reload_done = upto;
    reload_result = r;
    snprintf(reload_error, sizeof reload_error, "%s", r < 0 ? err : "");
    pthread_cond_broadcast(&reload_cond);
    pthread_mutex_unlock(&reload_lock);
}

/* The daemon is stopping: no reload will come; waiting requests fail now
 * (the HTTP server can only stop once they are answered). */
static void reload_close(void)
{
    pthread_mutex_lock(&reload_lock);
    reload_closed = 1;
    pthread_cond_broadcast(&reload_cond);
    pthread_mutex_unlock(&reload_lock);
}

static int metrics_reload(void *user, char *err, size_t errlen)
{
    struct timespec until;
    unsigned long mine;
    int r = -1;

    (void)user;
    if (boot.config_path == NULL && !has_cert_files()) {
        snprintf(err, errlen, "no configuration file (-c) to re-read");
        return -1;
    }
    pthread_mutex_lock(&reload_lock);
    mine = ++reload_asked;
    pthread_mutex_unlock(&reload_lock);
    notify('h');
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += RELOAD_WAIT_S;
    pthread_mutex_lock(&reload_lock);
    while (reload_done < mine && !reload_closed &&
           pthread_cond_timedwait(&reload_cond, &reload_lock, &until) != ETIMEDOUT)
        ;
    if (reload_done >= mine) {
        r = reload_result;
        snprintf(err, errlen, "%s", reload_error);
    } else if (reload_closed) {
        snprintf(err, errlen, "the daemon is stopping");
    } else {
        snprintf(err, errlen, "not done within %d s", RELOAD_WAIT_S);
    }
    pthread_mutex_unlock(&reload_lock);
    return r;
}

/* ---- running ---- */

static int run(const struct dpd_options *opts)
{
    unsigned started;
    int status = DPD_EXIT_OK;
    int told_stopping = 0;
    const char *token = NULL;
    char token_buf[4097];
    char ready_status[1200];
    struct dpd_http_server *metrics = NULL;
    int sync_r;

    dpd_log_set_level(dotproxy_config_get_log_level(opts->cfg));
    warn_if_writable("config file", opts->config_path);
    sync_r = reload_sync_init();
    if (sync_r != 0) {
        dpd_log_fatal("cannot set up reloads: %s", strerror(sync_r));
        return DPD_EXIT_RUNTIME;
    }
    if (install_signal_handlers() != 0) {
        dpd_log_fatal("cannot install signal handlers: %s", strerror(errno));
        return DPD_EXIT_RUNTIME;
    }
    /* Read while still privileged: the token file may be root's alone. */
    if (opts->api_token_file != NULL) {
        char err[600];
        int r = dpd_options_read_token(opts->api_token_file, token_buf, sizeof token_buf, err,
                                       sizeof err);

        if (r < 0) {
            dpd_log_fatal("%s", err);
            return DPD_EXIT_USAGE;
        }
        if (r == 1)
            dpd_log_main(DOTPROXY_LOG_WARN,
                         "api-token-file '%s' is readable by every user; chmod o-r it",
                         opts->api_token_file);
        warn_if_writable("api-token-file", opts->api_token_file);
        token = token_buf;
    }
    if (opts->dnstap != NULL) {
        char err[600];

        if (dpd_dnstap_open(opts->dnstap, opts->workers, err, sizeof err) != 0) {
            dpd_log_fatal("--dnstap: %s", err);
            explicit_bzero(token_buf, sizeof token_buf);
            return DPD_EXIT_RUNTIME;
        }
        dpd_log_main(DOTPROXY_LOG_INFO, "dnstap to %s", opts->dnstap);
    }
    if (create_contexts(opts) != 0) {
        free_contexts((unsigned)n_published);
        dpd_dnstap_close();
        explicit_bzero(token_buf, sizeof token_buf);
        return DPD_EXIT_RUNTIME;
    }
    if (opts->metrics != NULL) {
        dotproxy_ctx *ctxs[DPD_MAX_WORKERS];
        struct dpd_http_server_opts mo;
        char err[600];
        sigset_t old;
        int r;

        for (unsigned i = 0; i < opts->workers; i++)
            ctxs[i] = workers[i].ctx;
        memset(&mo, 0, sizeof mo);
        mo.listen = opts->metrics;
        mo.allowed_hosts = opts->metrics_host;
        mo.token = token;
        mo.ctxs = ctxs;
        mo.n_ctxs = opts->workers;
        mo.reload = metrics_reload;
        mo.log_lines_dropped = dpd_log_dropped;
        mo.blocker = blocker;
        mo.dnstap_counts = opts->dnstap != NULL ? dpd_dnstap_counts : NULL;
        block_signals(&old); /* its threads must never take our signals */
        r = dpd_http_server_start(&metrics, &mo, err, sizeof err);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (r != 0) {
            dpd_log_fatal("cannot start the metrics server on %s: %s", opts->metrics, err);
            free_contexts(opts->workers);
            explicit_bzero(token_buf, sizeof token_buf);
            return DPD_EXIT_RUNTIME;
        }
        dpd_log_main(DOTPROXY_LOG_INFO, "metrics and API on port %d",
                     dpd_http_server_port(metrics));
    }
    explicit_bzero(token_buf, sizeof token_buf);
    if (opts->user != NULL && drop_privileges(opts->user) != 0) {
        status = DPD_EXIT_RUNTIME;
        goto out;
    }
    /* A signal that came before every context was published stopped only
     * some of them: stop the rest now (stopping twice is harmless). */
    if (stop_requested)
        stop_all(opts->workers);

    log_startup(opts, ready_status, sizeof ready_status);
    started = start_workers(opts->workers);
    if (started < opts->workers) {
        stop_all(opts->workers);
        status = DPD_EXIT_RUNTIME;
    } else {
        /* Every socket is bound and listening, privileges are dropped and
         * every worker is running: queries are answered from now on. */
        notify_systemd(dpd_notify_ready(ready_status), "READY");
    }
    while (atomic_load(&workers_done) < started) {
        char buf[64];
        int want_reload = 0;
        ssize_t n = read(event_pipe[0], buf, sizeof buf);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            dpd_log_fatal("event pipe: %s", n < 0 ? strerror(errno) : "closed");
            stop_all(opts->workers);
            status = DPD_EXIT_RUNTIME;
            break;
        }
        for (ssize_t i = 0; i < n; i++)
            want_reload |= buf[i] == 'h';
        if (stop_requested && !told_stopping) {
            notify_systemd(dpd_notify_stopping(), "STOPPING");
            told_stopping = 1;
        }
        if (want_reload && !stop_requested) {
            char err[1024] = "";
            unsigned long upto;

            pthread_mutex_lock(&reload_lock);
            upto = reload_asked;
            pthread_mutex_unlock(&reload_lock);
            notify_systemd(dpd_notify_reloading(), "RELOADING");
            int rc = reload(err, sizeof err);
            /* A reload may have brought the first lists: the API shows them
             * before whoever asked for the reload hears it is done. */
            dpd_http_server_set_blocker(metrics, blocker);
            reload_finished(upto, rc, err);
            notify_systemd(dpd_notify_send("READY=1"), "READY");
        }
    }
    /* Also when the workers ended on their own (a failure). */
    if (!told_stopping)
        notify_systemd(dpd_notify_stopping(), "STOPPING");
    for (unsigned i = 0; i < started; i++) {
        pthread_join(workers[i].thread, NULL);
        if (workers[i].result < 0)
            status = DPD_EXIT_RUNTIME;
    }
out:
    reload_close();
    dpd_http_server_stop(metrics);
    free_contexts(opts->workers);
    dpd_dnstap_close(); /* what the workers queued goes out first */
    if (status != DPD_EXIT_OK)
        dpd_log_fatal("stopped after a failure");
    else
        dpd_log_main(DOTPROXY_LOG_INFO, "stopped");
    return status;
}

int main(int argc, char **argv)
{
    int status;

    if (dpd_options_parse(&boot, argc, argv, &status) == DPD_PARSE_EXIT)
        return status;
    if (boot.check_config) {
        char err[1600];

        dotproxy_blocker *b = NULL;
        if (dpd_options_check_deep(&boot, err, sizeof err) != 0) {
            fprintf(stderr, "dotproxyd: %s\n", err);
            status = DPD_EXIT_USAGE;
        } else if (dotproxy_blocker_new(&b, boot.cfg, 1, err, sizeof err) != 0) {
            /* Every list read as strictly as it is written: a bad line is
             * named by file and line here, skipped at run time. */
            fprintf(stderr, "dotproxyd: %s\n", err);
            status = DPD_EXIT_USAGE;
        } else {
            dotproxy_blocker_free(b);
            printf("configuration OK\n");
            status = DPD_EXIT_OK;
        }
        dpd_options_release(&boot);
        return status;
    }
    if (boot.user != NULL && geteuid() != 0) {
        fprintf(stderr,
                "dotproxyd: --user '%s': only root can switch to another user (running as uid "
                "%u); start as root or leave --user out\n",
                boot.user, (unsigned)geteuid());
        dpd_options_release(&boot);
        return DPD_EXIT_USAGE;
    }
    dpd_log_open(boot.log_json, boot.log_syslog);
    status = run(&boot);
    if (have_current)
        dpd_options_release(&current);
    dpd_options_release(&boot);
    free(bound_ports);
    dpd_log_close();
    return status;
}
