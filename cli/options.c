/* SPDX-License-Identifier: MIT */
/* dotproxyd: command-line parsing. Every message names the option, the value
 * as typed and what is wrong with it, so that the operator can fix the unit
 * file or the container spec without reading the source. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "options.h"

/* The defaults the usage text promises. Cloudflare's two anycast addresses
 * share one certificate name, so the pool can fail over between them. */
static const char *const default_listen = "127.0.0.1@53";
static const char *const default_upstreams[] = {
    "1.0.0.1@853#cloudflare-dns.com",
    "1.1.1.1@853#cloudflare-dns.com",
};

/* Bounds from include/dotproxy/config.h, checked here too so that the
 * message can state the range rather than a bare "invalid argument". */
#define TIMEOUT_MS_MIN 1ul
#define TIMEOUT_MS_MAX 600000ul

enum {
    OPT_CA_FILE = 256, /* long-only options: values above any char */
    OPT_TIMEOUT,
    OPT_CACHE_SIZE,
    OPT_VERSION,
    OPT_HELP,
};

static const struct option long_options[] = {
    {"listen", required_argument, NULL, 'l'},
    {"upstream", required_argument, NULL, 'u'},
    {"ca-file", required_argument, NULL, OPT_CA_FILE},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"cache-size", required_argument, NULL, OPT_CACHE_SIZE},
    {"workers", required_argument, NULL, 'w'},
    {"verbose", no_argument, NULL, 'v'},
    {"quiet", no_argument, NULL, 'q'},
    {"version", no_argument, NULL, OPT_VERSION},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

/* Leading ':' makes getopt report a missing value as ':' (distinct from an
 * unknown option) and keeps it quiet: we print our own messages. */
static const char short_options[] = ":l:u:w:vq";

void dpd_options_usage(FILE *out)
{
    fputs(
        "Usage: dotproxyd [OPTIONS]\n"
        "Forward plain DNS (UDP and TCP) to DNS-over-TLS upstreams (RFC 7858).\n"
        "\n"
        "  -l, --listen ADDR[@PORT]           repeatable; UDP and TCP; default 127.0.0.1@53\n"
        "  -u, --upstream ADDR[@PORT][#NAME]  repeatable; default 1.0.0.1@853#cloudflare-dns.com\n"
        "                                     and 1.1.1.1@853#cloudflare-dns.com\n"
        "      --ca-file PATH                 PEM trust anchors instead of the system store\n"
        "      --timeout MS                   per-query upstream deadline, then SERVFAIL\n"
        "      --cache-size N                 answer-cache entries, 0 = off\n"
        "  -w, --workers N                    N independent contexts in N threads (SO_REUSEPORT)\n"
        "  -v, --verbose / -q, --quiet        log level (stderr)\n"
        "      --version, --help\n"
        "\n"
        "IPv6 addresses may be written in brackets: [::1]@5353. A listen PORT of 0\n"
        "lets the kernel choose; the startup line shows the port bound. Without #NAME the\n"
        "upstream's certificate must carry ADDR as an IP address.\n"
        "Exit status: 0 after SIGTERM/SIGINT, 1 on a runtime failure, 2 on a usage error.\n",
        out);
}

static void usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void usage_error(const char *fmt, ...)
{
    va_list ap;

    fputs("dotproxyd: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\nTry 'dotproxyd --help' for more information.\n", stderr);
}

/* Strict decimal: digits only (strtoul alone would take " -1" as a huge
 * number and "12abc" as 12), the whole string, within [min, max]. */
static int parse_number(const char *s, unsigned long min, unsigned long max, unsigned long *out)
{
    char *end;
    unsigned long v;

    if (s[0] < '0' || s[0] > '9')
        return -1;
    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

/* Checked here rather than left to dotproxy_ctx_new(): a missing CA file is
 * a mistake on the command line (exit 2), and the library's DOTPROXY_ETLS
 * could not tell it apart from a bad priority string. */
static int check_readable_file(const char *opt, const char *path)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0) {
        usage_error("%s '%s': cannot open: %s", opt, path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        usage_error("%s '%s': not a regular file", opt, path);
        close(fd);
        return -1;
    }
    close(fd);
    return 0;
}

static int append_endpoint(dotproxy_endpoint **list, size_t n, const dotproxy_endpoint *ep)
{
    dotproxy_endpoint *grown = realloc(*list, (n + 1) * sizeof **list);

    if (grown == NULL)
        return DOTPROXY_ENOMEM;
    grown[n] = *ep;
    *list = grown;
    return 0;
}

static int append_listen(struct dpd_options *opts, const char *spec, const dotproxy_endpoint *ep)
{
    const char **grown = realloc(opts->listen_spec, (opts->n_listen + 1) * sizeof *grown);

    if (grown == NULL)
        return DOTPROXY_ENOMEM;
    opts->listen_spec = grown;
    if (append_endpoint(&opts->listen, opts->n_listen, ep) < 0)
        return DOTPROXY_ENOMEM;
    grown[opts->n_listen++] = spec;
    return 0;
}

/* The config of the parse in progress, fed every value so that the library
 * itself judges them (its limits included); thrown away at the end. */
static dotproxy_config *check_cfg;

/* The endpoint of a listen spec the config accepted, for the startup line.
 * The config also takes "ADDR@0" (the kernel picks the port), which the spec
 * grammar refuses, so retry without the port: the port shown is the one
 * actually bound, read back from the context. */
static void listen_endpoint(dotproxy_endpoint *ep, const char *spec)
{
    char addr[128];
    const char *at = strrchr(spec, '@');

    if (dotproxy_endpoint_parse(ep, spec, DOTPROXY_DNS_PORT, 0) == 0)
        return;
    memset(ep, 0, sizeof *ep); /* family 0: shown as "?" */
    if (at != NULL && (size_t)(at - spec) < sizeof addr) {
        memcpy(addr, spec, (size_t)(at - spec));
        addr[at - spec] = '\0';
        if (dotproxy_endpoint_parse(ep, addr, DOTPROXY_DNS_PORT, 0) != 0)
            memset(ep, 0, sizeof *ep);
    }
}

/* Add an --listen / --upstream value to the config, so that a value the
 * library refuses is reported against the option it came in, and keep its
 * parsed form for the startup line. Returns 0 or a dotproxy_error. */
static int take_endpoint(struct dpd_options *opts, const char *opt, const char *spec, int upstream)
{
    dotproxy_endpoint ep;
    int r;

    if (upstream) {
        r = dotproxy_endpoint_parse(&ep, spec, DOTPROXY_DOT_PORT, 1);
        if (r == 0)
            r = dotproxy_config_add_upstream_endpoint(check_cfg, &ep);
        if (r == 0)
            r = append_endpoint(&opts->upstream, opts->n_upstream, &ep);
        if (r == 0)
            opts->n_upstream++;
    } else {
        r = dotproxy_config_add_listen(check_cfg, spec);
        if (r == 0) {
            listen_endpoint(&ep, spec);
            r = append_listen(opts, spec, &ep);
        }
    }
    if (r == DOTPROXY_ENOMEM) {
        fprintf(stderr, "dotproxyd: out of memory\n");
        return DOTPROXY_ENOMEM;
    }
    if (r < 0) {
        usage_error("%s '%s': %s", opt, spec, dotproxy_strerror(r));
        return r;
    }
    return 0;
}

/* Out of memory is not the user's fault: it gets the runtime status. */
static int exit_status_of(int err)
{
    if (err == 0)
        return DPD_EXIT_OK;
    return err == DOTPROXY_ENOMEM ? DPD_EXIT_RUNTIME : DPD_EXIT_USAGE;
}

/* The option as the user typed it, for messages about a bad or missing value:
 * "--timeout" or "-w". */
static const char *option_name(int c, char *buf, size_t cap)
{
    for (const struct option *o = long_options; o->name != NULL; o++) {
        if (o->val == c && c >= OPT_CA_FILE) {
            snprintf(buf, cap, "--%s", o->name);
            return buf;
        }
    }
    snprintf(buf, cap, "-%c", c);
    return buf;
}

/* One option and its value. Returns 0 to go on, or the exit status. */
static int take_option(struct dpd_options *opts, int c, const char *arg, int *done)
{
    unsigned long v;

    switch (c) {
    case 'l': return exit_status_of(take_endpoint(opts, "--listen", arg, 0));
    case 'u': return exit_status_of(take_endpoint(opts, "--upstream", arg, 1));
    case OPT_CA_FILE:
        if (check_readable_file("--ca-file", arg) != 0)
            return DPD_EXIT_USAGE;
        if (dotproxy_config_set_ca_file(check_cfg, arg) != 0) {
            usage_error("--ca-file '%s': %s", arg, dotproxy_strerror(DOTPROXY_EINVAL));
            return DPD_EXIT_USAGE;
        }
        opts->ca_file = arg;
        return 0;
    case OPT_TIMEOUT:
        if (parse_number(arg, TIMEOUT_MS_MIN, TIMEOUT_MS_MAX, &v) != 0 ||
            dotproxy_config_set_timeout_ms(check_cfg, (unsigned)v) != 0) {
            usage_error("--timeout '%s': must be a number of milliseconds from %lu to %lu", arg,
                        TIMEOUT_MS_MIN, TIMEOUT_MS_MAX);
            return DPD_EXIT_USAGE;
        }
        opts->timeout_ms = (unsigned)v;
        return 0;
    case OPT_CACHE_SIZE:
        if (parse_number(arg, 0, ULONG_MAX, &v) != 0) {
            usage_error("--cache-size '%s': must be a number of entries (0 = off)", arg);
            return DPD_EXIT_USAGE;
        }
        /* Said plainly rather than silently ignored: an operator who sizes a
         * cache expects one. */
        if (v > 0) {
            usage_error("--cache-size '%s': the answer cache is not available in this version "
                        "(only 0 is accepted)",
                        arg);
            return DPD_EXIT_USAGE;
        }
        if (dotproxy_config_set_cache_size(check_cfg, 0) != 0) {
            usage_error("--cache-size '%s': %s", arg, dotproxy_strerror(DOTPROXY_EINVAL));
            return DPD_EXIT_USAGE;
        }
        return 0;
    case 'w':
        if (parse_number(arg, 1, DPD_MAX_WORKERS, &v) != 0) {
            usage_error("--workers '%s': must be a number from 1 to %d", arg, DPD_MAX_WORKERS);
            return DPD_EXIT_USAGE;
        }
        opts->workers = (unsigned)v;
        return 0;
    case 'v': opts->log_level = DOTPROXY_LOG_DEBUG; return 0;
    case 'q': opts->log_level = DOTPROXY_LOG_ERR; return 0;
    case OPT_VERSION:
        printf("dotproxyd %s\n", dotproxy_version());
        *done = 1;
        return DPD_EXIT_OK;
    case OPT_HELP:
        dpd_options_usage(stdout);
        *done = 1;
        return DPD_EXIT_OK;
    default:
        /* getopt only returns values from the tables above. */
        abort();
    }
}

/* Returns 0 or a dotproxy_error. */
static int add_defaults(struct dpd_options *opts)
{
    int r = 0;

    if (opts->n_listen == 0)
        r = take_endpoint(opts, "--listen", default_listen, 0);
    if (opts->n_upstream == 0) {
        for (size_t i = 0; r == 0 && i < sizeof default_upstreams / sizeof *default_upstreams; i++)
            r = take_endpoint(opts, "--upstream", default_upstreams[i], 1);
    }
    return r;
}

static enum dpd_parse_result parse(struct dpd_options *opts, int argc, char **argv, int *status)
{
    char name[64];
    int c;
    int done = 0;

    opterr = 0;
    while ((c = getopt_long(argc, argv, short_options, long_options, NULL)) != -1) {
        if (c == ':') {
            usage_error("option '%s' needs a value",
                        optopt != 0 ? option_name(optopt, name, sizeof name) : argv[optind - 1]);
            *status = DPD_EXIT_USAGE;
            return DPD_PARSE_EXIT;
        }
        if (c == '?') {
            /* A long option is reported as typed (it may carry "=value");
             * an unknown short one by its letter, as it may sit in a
             * cluster like "-vx". */
            const char *arg = argv[optind - 1];
            const char *eq = strchr(arg, '=');

            if (strncmp(arg, "--", 2) == 0 && eq != NULL && optopt != 0)
                usage_error("option '%.*s' takes no value", (int)(eq - arg), arg);
            else if (optopt == 0 || strncmp(arg, "--", 2) == 0)
                usage_error("unknown option '%s'", arg);
            else
                usage_error("unknown option '-%c'", optopt);
            *status = DPD_EXIT_USAGE;
            return DPD_PARSE_EXIT;
        }
        *status = take_option(opts, c, optarg, &done);
        if (done || *status != 0)
            return DPD_PARSE_EXIT;
    }
    if (optind < argc) {
        usage_error("unexpected argument '%s' (options take their values as '-l ADDR')",
                    argv[optind]);
        *status = DPD_EXIT_USAGE;
        return DPD_PARSE_EXIT;
    }
    *status = exit_status_of(add_defaults(opts));
    return *status == 0 ? DPD_PARSE_RUN : DPD_PARSE_EXIT;
}

enum dpd_parse_result dpd_options_parse(struct dpd_options *opts, int argc, char **argv,
                                        int *status)
{
    enum dpd_parse_result r;

    memset(opts, 0, sizeof *opts);
    opts->workers = 1;
    opts->log_level = DOTPROXY_LOG_INFO;
    if (dotproxy_config_new(&check_cfg) != 0) {
        fprintf(stderr, "dotproxyd: out of memory\n");
        *status = DPD_EXIT_RUNTIME;
        return DPD_PARSE_EXIT;
    }
    r = parse(opts, argc, argv, status);
    dotproxy_config_free(check_cfg);
    check_cfg = NULL;
    if (r != DPD_PARSE_RUN)
        dpd_options_release(opts);
    return r;
}

int dpd_options_config(dotproxy_config **out, const struct dpd_options *opts, const int *ports)
{
    dotproxy_config *cfg;
    int r = dotproxy_config_new(&cfg);

    for (size_t i = 0; r == 0 && i < opts->n_listen; i++) {
        char spec[128];
        dotproxy_endpoint ep = opts->listen[i];

        if (ports == NULL || ports[i] <= 0) {
            r = dotproxy_config_add_listen(cfg, opts->listen_spec[i]);
            continue;
        }
        if (ep.addr.ss_family == AF_INET)
            ((struct sockaddr_in *)&ep.addr)->sin_port = htons((uint16_t)ports[i]);
        else
            ((struct sockaddr_in6 *)&ep.addr)->sin6_port = htons((uint16_t)ports[i]);
        r = dotproxy_endpoint_format(&ep, spec, sizeof spec);
        if (r >= 0)
            r = dotproxy_config_add_listen(cfg, spec);
    }
    for (size_t i = 0; r == 0 && i < opts->n_upstream; i++)
        r = dotproxy_config_add_upstream_endpoint(cfg, &opts->upstream[i]);
    if (r == 0 && opts->ca_file != NULL)
        r = dotproxy_config_set_ca_file(cfg, opts->ca_file);
    if (r == 0 && opts->timeout_ms > 0)
        r = dotproxy_config_set_timeout_ms(cfg, opts->timeout_ms);
    /* Several contexts bind the same addresses; the kernel spreads the
     * clients over them (UDP by 4-tuple hash, TCP by accept queue). */
    if (r == 0 && opts->workers > 1)
        r = dotproxy_config_set_reuseport(cfg, 1);
    if (r < 0) {
        dotproxy_config_free(cfg);
        return r;
    }
    *out = cfg;
    return 0;
}

void dpd_options_release(struct dpd_options *opts)
{
    if (opts == NULL)
        return;
    free(opts->listen_spec);
    free(opts->listen);
    free(opts->upstream);
    opts->listen_spec = NULL;
    opts->listen = NULL;
    opts->upstream = NULL;
    opts->n_listen = 0;
    opts->n_upstream = 0;
}
