/* SPDX-License-Identifier: MIT */
/* embed_poll: libdotproxy inside a program's own poll() loop (tier 1).
 *
 *   embed_poll --upstream ADDR[@PORT][#NAME] [--listen ADDR[@PORT]] [--ca-file PEM]
 *
 * The program owns the loop and an fd of its own (stdin): every line typed
 * is answered with a summary of the proxy's counters; "quit" or end of input
 * stops the proxy cleanly. The proxy never blocks and never sleeps: it only
 * says which fds it wants watched and when its next timer is due, and does
 * its work when handed the fds that are ready. That is all an embedder needs,
 * whether its loop is poll(), epoll, libuv or a GUI toolkit's.
 *
 * Build: cc embed_poll.c $(pkg-config --cflags --libs dotproxy) */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <dotproxy/dotproxy.h>

static void log_to_stderr(int level, const char *msg, void *user)
{
    (void)user;
    fprintf(stderr, "embed_poll: library (%d): %s\n", level, msg);
}

static int build_context(dotproxy_ctx **ctx, const char *listen, const char *upstream,
                         const char *ca_file)
{
    dotproxy_config *cfg;
    int r = dotproxy_config_new(&cfg);

    if (r < 0)
        return r;
    if ((r = dotproxy_config_add_listen(cfg, listen)) < 0 ||
        (r = dotproxy_config_add_upstream(cfg, upstream)) < 0 ||
        (ca_file != NULL && (r = dotproxy_config_set_ca_file(cfg, ca_file)) < 0) ||
        (r = dotproxy_config_set_log(cfg, log_to_stderr, NULL, DOTPROXY_LOG_WARN)) < 0) {
        dotproxy_config_free(cfg);
        return r;
    }
    /* The context copies the config, so it can go at once. */
    r = dotproxy_ctx_new(ctx, cfg);
    dotproxy_config_free(cfg);
    return r;
}

static void print_counters(const dotproxy_ctx *ctx)
{
    printf("queries udp=%" PRIu64 " tcp=%" PRIu64 " answers=%" PRIu64 " servfail=%" PRIu64
           " tls_handshakes=%" PRIu64 " inflight=%" PRIu64 "\n",
           dotproxy_ctx_counter(ctx, DOTPROXY_CTR_QUERIES_UDP),
           dotproxy_ctx_counter(ctx, DOTPROXY_CTR_QUERIES_TCP),
           dotproxy_ctx_counter(ctx, DOTPROXY_CTR_ANSWERS),
           dotproxy_ctx_counter(ctx, DOTPROXY_CTR_SERVFAIL),
           dotproxy_ctx_counter(ctx, DOTPROXY_CTR_TLS_HANDSHAKES),
           dotproxy_ctx_counter(ctx, DOTPROXY_CTR_INFLIGHT));
    /* stdout may be a pipe (a test, a supervisor): without the flush the
     * answer would sit in our buffer while the reader waits for it. */
    fflush(stdout);
}

/* Our own fd's work: read what stdin has, act on each whole line. Returns 1
 * when the user asked to stop (or input ended), else 0. read(2) rather than
 * stdio, because a FILE may buffer lines that poll() then cannot see. */
static int handle_stdin(const dotproxy_ctx *ctx, char *line, size_t cap, size_t *used)
{
    ssize_t n = read(STDIN_FILENO, line + *used, cap - 1 - *used);

    if (n < 0)
        return errno == EINTR || errno == EAGAIN ? 0 : 1;
    if (n == 0)
        return 1; /* end of input: stop like "quit" */
    *used += (size_t)n;

    for (;;) {
        char *nl = memchr(line, '\n', *used);
        size_t len;

        /* A line longer than the buffer is taken as it is. */
        if (nl == NULL && *used < cap - 1)
            return 0;
        len = nl ? (size_t)(nl - line) : *used;
        line[len] = '\0';
        if (strcmp(line, "quit") == 0)
            return 1;
        print_counters(ctx);
        len = nl ? len + 1 : len;
        memmove(line, line + len, *used - len);
        *used -= len;
    }
}

/* Room for `want` proxy fds, plus our own in pfds[0]. */
static int grow(struct pollfd **pfds, dotproxy_pollfd **dfds, size_t *cap, size_t want)
{
    struct pollfd *p = realloc(*pfds, (want + 1) * sizeof *p);
    dotproxy_pollfd *d;

    if (p == NULL)
        return -1;
    *pfds = p;
    d = realloc(*dfds, want * sizeof *d);
    if (d == NULL)
        return -1;
    *dfds = d;
    *cap = want;
    return 0;
}

static int run(dotproxy_ctx *ctx)
{
    struct pollfd *pfds = NULL;   /* what poll() sees: [0] is stdin */
    dotproxy_pollfd *dfds = NULL; /* the proxy's own view of its fds */
    size_t cap = 0;
    char line[512];
    size_t used = 0;
    int stopping = 0;
    int status = 0;

    if (grow(&pfds, &dfds, &cap, 16) < 0)
        status = 1;

    /* Stop once the proxy says the stop has finished: queries in flight when
     * "quit" came still get their answers (or the drain time runs out). */
    while (status == 0 && !(stopping && dotproxy_ctx_stopped(ctx))) {
        /* Ask afresh every turn: the set changes as upstream connections and
         * TCP clients come and go, and as writes become pending. Whatever
         * the proxy wants comes after our own fd. */
        int n = dotproxy_ctx_fds(ctx, dfds, cap);
        if (n < 0) {
            status = 1;
            break;
        }
        if ((size_t)n > cap) {
            if (grow(&pfds, &dfds, &cap, (size_t)n) < 0) {
                status = 1;
                break;
            }
            continue; /* fetch again into the bigger arrays */
        }

        /* After "quit" we stop reading stdin (fd -1 is ignored by poll). */
        pfds[0] = (struct pollfd){.fd = stopping ? -1 : STDIN_FILENO, .events = POLLIN};
        for (int i = 0; i < n; i++) {
            pfds[i + 1].fd = dfds[i].fd;
            pfds[i + 1].events = (short)(((dfds[i].events & DOTPROXY_EV_IN) ? POLLIN : 0) |
                                         ((dfds[i].events & DOTPROXY_EV_OUT) ? POLLOUT : 0));
            pfds[i + 1].revents = 0;
        }

        /* Sleep no longer than the proxy's next timer (query deadlines,
         * idle connections, the stop drain): -1 means it has none. */
        if (poll(pfds, (nfds_t)n + 1, dotproxy_ctx_timeout_ms(ctx)) < 0) {
            if (errno == EINTR)
                continue;
            perror("embed_poll: poll");
            status = 1;
            break;
        }

        if (pfds[0].revents != 0 && handle_stdin(ctx, line, sizeof line, &used)) {
            /* Asks the proxy to close its listeners and drain; the loop goes
             * on driving it until dotproxy_ctx_stopped() says it is done. */
            dotproxy_ctx_stop(ctx);
            stopping = 1;
        }

        /* Hand over what poll saw. Called even when nothing is ready: this
         * is also how due timers run. */
        for (int i = 0; i < n; i++) {
            short re = pfds[i + 1].revents;
            dfds[i].revents = ((re & POLLIN) ? DOTPROXY_EV_IN : 0u) |
                              ((re & POLLOUT) ? DOTPROXY_EV_OUT : 0u) |
                              ((re & (POLLERR | POLLHUP | POLLNVAL)) ? DOTPROXY_EV_ERR : 0u);
        }
        if (dotproxy_ctx_process(ctx, dfds, (size_t)n) < 0) {
            status = 1;
            break;
        }
    }
    free(pfds);
    free(dfds);
    return status;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"listen", required_argument, NULL, 'l'},
        {"upstream", required_argument, NULL, 'u'},
        {"ca-file", required_argument, NULL, 'c'},
        {NULL, 0, NULL, 0},
    };
    /* Port 0: the kernel picks a free one, which we print below. */
    const char *listen = "127.0.0.1@0";
    const char *upstream = NULL;
    const char *ca_file = NULL;
    dotproxy_ctx *ctx;
    int c, r, status;

    while ((c = getopt_long(argc, argv, "l:u:c:", opts, NULL)) != -1) {
        switch (c) {
        case 'l': listen = optarg; break;
        case 'u': upstream = optarg; break;
        case 'c': ca_file = optarg; break;
        default: goto usage;
        }
    }
    if (upstream == NULL || optind != argc)
        goto usage;

    r = build_context(&ctx, listen, upstream, ca_file);
    if (r < 0) {
        fprintf(stderr, "embed_poll: cannot start the proxy: %s\n", dotproxy_strerror(r));
        return 1;
    }
    printf("listening on port %d\n", dotproxy_ctx_listen_port(ctx, 0));
    fflush(stdout);

    status = run(ctx);
    print_counters(ctx);
    dotproxy_ctx_free(ctx);
    return status;

usage:
    fprintf(stderr, "usage: embed_poll --upstream ADDR[@PORT][#NAME] [--listen ADDR[@PORT]] "
                    "[--ca-file PEM]\n");
    return 2;
}
