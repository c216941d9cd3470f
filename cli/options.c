/* SPDX-License-Identifier: MIT */
/* dotproxyd: command-line and configuration-file parsing. Every message names
 * the option (or the file, line and key), the value as typed and what is
 * wrong with it, so that the operator can fix the unit file, the container
 * spec or the configuration file without reading the source.
 *
 * Both sources are first collected as a list of (option, value, origin)
 * items; the file's items for an option the command line also gives are
 * dropped; what is left is applied in order to a fresh set of defaults. So
 * the command line wins, a repeated command-line option replaces the file's
 * list, and one code path checks a value wherever it came from. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config_file.h"
#include "options.h"

/* The defaults the usage text promises. Cloudflare's two anycast addresses
 * share one certificate name, so the pool can fail over between them. */
static const char *const default_listen = "127.0.0.1@53";
static const char *const default_upstreams[] = {
    "1.0.0.1@853#cloudflare-dns.com",
    "1.1.1.1@853#cloudflare-dns.com",
};

/* Bounds from include/dotproxy/config.h (and lib/cache.c for the cache),
 * checked here too so that the message can state the range rather than a
 * bare "invalid argument". */
#define TIMEOUT_MS_MAX      600000ul
#define IDLE_MS_MAX         3600000ul
#define CACHE_SIZE_MAX      268435456ul /* 2^28, the cache's own limit */
#define TTL_S_MAX           604800ul    /* a week */
#define PADDING_MAX         512ul
#define QPS_MAX             10000000ul
#define CLIENT_QUERIES_MAX  1048576ul
#define TOKEN_FILE_MAX      4096

enum opt_id {
    O_LISTEN,
    O_UPSTREAM,
    O_PIN,
    O_CA_FILE,
    O_TLS_PRIORITY,
    O_TIMEOUT,
    O_IDLE_TIMEOUT,
    O_MAX_CONNECTIONS,
    O_MAX_INFLIGHT,
    O_MAX_QUERIES,
    O_SELECTION,
    O_HANDSHAKE_TIMEOUT,
    O_CACHE_SIZE,
    O_CACHE_MIN_TTL,
    O_CACHE_MAX_TTL,
    O_STALE_MAX,
    O_PADDING,
    O_KEEP_ECS,
    O_CACHE_PER_WORKER,
    O_LOG_QUERIES,
    O_ALLOW,
    O_RATE_LIMIT,
    O_RATE_LIMIT_PREFIX,
    O_RATE_LIMIT_ACTION,
    O_RATE_LIMIT_LOOPBACK,
    O_MAX_CLIENT_QUERIES,
    O_MAX_TCP_CLIENTS,
    O_TCP_IDLE_TIMEOUT,
    O_WORKERS,
    O_USER,
    O_VERBOSE,
    O_QUIET,
    O_LOG_FORMAT,
    O_SYSLOG,
    O_METRICS,
    O_API_TOKEN_FILE,
    O_CONFIG,
    O_CHECK_CONFIG,
    O_VERSION,
    O_HELP,
    O_COUNT_
};

#define F_REPEAT   1u /* values accumulate, in order */
#define F_FLAG     2u /* no value on the command line; yes/no in the file */
#define F_CLI_ONLY 4u /* not a file key */

struct opt_def {
    const char *name;
    int short_name; /* 0: long only */
    unsigned flags;
    int group; /* file items of a group the command line gives are dropped */
};

static const struct opt_def defs[O_COUNT_] = {
    [O_LISTEN] = {"listen", 'l', F_REPEAT, O_LISTEN},
    [O_UPSTREAM] = {"upstream", 'u', F_REPEAT, O_UPSTREAM},
    /* A pin belongs to the upstream before it: they travel together. */
    [O_PIN] = {"pin", 0, F_REPEAT, O_UPSTREAM},
    [O_CA_FILE] = {"ca-file", 0, 0, O_CA_FILE},
    [O_TLS_PRIORITY] = {"tls-priority", 0, 0, O_TLS_PRIORITY},
    [O_TIMEOUT] = {"timeout", 0, 0, O_TIMEOUT},
    [O_IDLE_TIMEOUT] = {"idle-timeout", 0, 0, O_IDLE_TIMEOUT},
    [O_MAX_CONNECTIONS] = {"max-connections", 0, 0, O_MAX_CONNECTIONS},
    [O_MAX_INFLIGHT] = {"max-inflight", 0, 0, O_MAX_INFLIGHT},
    [O_MAX_QUERIES] = {"max-queries", 0, 0, O_MAX_QUERIES},
    [O_SELECTION] = {"selection", 0, 0, O_SELECTION},
    [O_HANDSHAKE_TIMEOUT] = {"handshake-timeout", 0, 0, O_HANDSHAKE_TIMEOUT},
    [O_CACHE_SIZE] = {"cache-size", 0, 0, O_CACHE_SIZE},
    [O_CACHE_MIN_TTL] = {"cache-min-ttl", 0, 0, O_CACHE_MIN_TTL},
    [O_CACHE_MAX_TTL] = {"cache-max-ttl", 0, 0, O_CACHE_MAX_TTL},
    [O_STALE_MAX] = {"stale-max", 0, 0, O_STALE_MAX},
    [O_PADDING] = {"padding", 0, 0, O_PADDING},
    [O_KEEP_ECS] = {"keep-ecs", 0, F_FLAG, O_KEEP_ECS},
    [O_CACHE_PER_WORKER] = {"cache-per-worker", 0, F_FLAG, O_CACHE_PER_WORKER},
    [O_LOG_QUERIES] = {"log-queries", 0, 0, O_LOG_QUERIES},
    [O_ALLOW] = {"allow", 0, F_REPEAT, O_ALLOW},
    [O_RATE_LIMIT] = {"rate-limit", 0, 0, O_RATE_LIMIT},
    [O_RATE_LIMIT_PREFIX] = {"rate-limit-prefix", 0, 0, O_RATE_LIMIT_PREFIX},
    [O_RATE_LIMIT_ACTION] = {"rate-limit-action", 0, 0, O_RATE_LIMIT_ACTION},
    [O_RATE_LIMIT_LOOPBACK] = {"rate-limit-loopback", 0, F_FLAG, O_RATE_LIMIT_LOOPBACK},
    [O_MAX_CLIENT_QUERIES] = {"max-client-queries", 0, 0, O_MAX_CLIENT_QUERIES},
    [O_MAX_TCP_CLIENTS] = {"max-tcp-clients", 0, 0, O_MAX_TCP_CLIENTS},
    [O_TCP_IDLE_TIMEOUT] = {"tcp-idle-timeout", 0, 0, O_TCP_IDLE_TIMEOUT},
    [O_WORKERS] = {"workers", 'w', 0, O_WORKERS},
    [O_USER] = {"user", 0, 0, O_USER},
    /* One log level: -q on the command line beats "verbose = yes". */
    [O_VERBOSE] = {"verbose", 'v', F_FLAG, O_VERBOSE},
    [O_QUIET] = {"quiet", 'q', F_FLAG, O_VERBOSE},
    [O_LOG_FORMAT] = {"log-format", 0, 0, O_LOG_FORMAT},
    [O_SYSLOG] = {"syslog", 0, F_FLAG, O_SYSLOG},
    [O_METRICS] = {"metrics", 0, 0, O_METRICS},
    [O_API_TOKEN_FILE] = {"api-token-file", 0, 0, O_API_TOKEN_FILE},
    [O_CONFIG] = {"config", 'c', F_CLI_ONLY, O_CONFIG},
    [O_CHECK_CONFIG] = {"check-config", 0, F_CLI_ONLY | F_FLAG, O_CHECK_CONFIG},
    [O_VERSION] = {"version", 0, F_CLI_ONLY | F_FLAG, O_VERSION},
    [O_HELP] = {"help", 0, F_CLI_ONLY | F_FLAG, O_HELP},
};

/* getopt values of long-only options: above any char. */
#define LONG_BASE 256

/* Leading ':' makes getopt report a missing value as ':' (distinct from an
 * unknown option) and keeps it quiet: we print our own messages. */
static const char short_options[] = ":l:u:w:vqc:";

void dpd_options_usage(FILE *out)
{
    fputs(
        "Usage: dotproxyd [OPTIONS]\n"
        "Forward plain DNS (UDP and TCP) to DNS-over-TLS upstreams (RFC 7858).\n"
        "\n"
        "Addresses and upstreams:\n"
        "  -l, --listen ADDR[@PORT]           repeatable; UDP and TCP; default 127.0.0.1@53\n"
        "  -u, --upstream ADDR[@PORT][#NAME]  repeatable; default 1.0.0.1@853#cloudflare-dns.com\n"
        "                                     and 1.1.1.1@853#cloudflare-dns.com\n"
        "      --pin sha256/BASE64            pin the SPKI of the --upstream given last before it\n"
        "                                     (repeatable, up to 8 per upstream)\n"
        "      --ca-file PATH                 PEM trust anchors instead of the system store\n"
        "      --tls-priority STRING          GnuTLS priority string for upstream connections\n"
        "      --timeout MS                   per-query deadline, then SERVFAIL (default 4000)\n"
        "      --idle-timeout MS              close idle upstream connections (default 8000)\n"
        "      --max-connections N            TLS connections per upstream, 1..64 (default 2)\n"
        "      --max-inflight N               queries per connection, power of two (default 1024)\n"
        "      --max-queries N                queries waiting per worker, 16..1048576 (default 8192)\n"
        "      --handshake-timeout MS         TCP connect + TLS handshake limit (default 5000)\n"
        "      --selection POLICY             latency, round-robin or ordered (default latency)\n"
        "Cache and EDNS:\n"
        "      --cache-size N                 answer-cache entries, 0 = off (default 10000)\n"
        "      --cache-per-worker             with -w N, one cache per worker instead of a\n"
        "                                     shared one (N times the memory, fewer hits)\n"
        "      --cache-min-ttl S              raise cached TTLs to at least S (default 0)\n"
        "      --cache-max-ttl S              cap cached TTLs at S (default 86400)\n"
        "      --stale-max S                  serve expired answers up to S seconds (RFC 8767;\n"
        "                                     default 86400, 0 = off)\n"
        "      --padding N                    pad upstream queries to N octets (default 128, 0 = off)\n"
        "      --keep-ecs                     forward EDNS Client Subnet (default: strip it)\n"
        "Clients:\n"
        "      --allow CIDR                   repeatable; default: loopback and private ranges\n"
        "      --rate-limit QPS[/BURST]       per-client token bucket (default 0 = off)\n"
        "      --rate-limit-prefix V4/V6      group clients by prefix (default 32/128)\n"
        "      --rate-limit-action refuse|drop  what a client over its limit gets (default refuse)\n"
        "      --rate-limit-loopback          limit loopback clients too\n"
        "      --max-client-queries N         queries one client may have waiting (default 0 = no cap)\n"
        "      --max-tcp-clients N            TCP clients per worker (default 1024)\n"
        "      --tcp-idle-timeout MS          close idle TCP clients (default 10000)\n"
        "Process:\n"
        "  -w, --workers N                    N independent contexts in N threads (SO_REUSEPORT)\n"
        "      --user NAME                    switch to user NAME after binding (root only)\n"
        "  -v, --verbose / -q, --quiet        log level\n"
        "      --log-format text|json         log line format (default text)\n"
        "      --log-queries N                log each answer, at most N lines/s per worker\n"
        "                                     (default 0 = off: queries are private)\n"
        "      --syslog                       log to syslog instead of stderr\n"
        "      --metrics [ADDR@]PORT          HTTP metrics and API server (ADDR default 127.0.0.1)\n"
        "      --api-token-file PATH          bearer token for the mutating API calls\n"
        "  -c, --config PATH                  read options from PATH (the command line wins)\n"
        "      --check-config                 check the configuration, print 'configuration OK'\n"
        "      --version, --help\n"
        "\n"
        "IPv6 addresses may be written in brackets: [::1]@5353. A listen PORT of 0\n"
        "lets the kernel choose; the startup line shows the port bound. Without #NAME the\n"
        "upstream's certificate must carry ADDR as an IP address. In the file, each key is\n"
        "a long option name: 'upstream = 9.9.9.9#dns.quad9.net', 'keep-ecs = yes'.\n"
        "SIGHUP re-reads the file. Exit status: 0 after SIGTERM/SIGINT, 1 on a runtime\n"
        "failure, 2 on a usage or configuration error.\n",
        out);
}

/* ---- errors ---- */

/* The first error of a parse, and where it goes. */
static char *err_buf;
static size_t err_cap;
static int err_set;
static int err_nomem;

static void set_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void set_error(const char *fmt, ...)
{
    va_list ap;

    if (err_set)
        return;
    va_start(ap, fmt);
    vsnprintf(err_buf, err_cap, fmt, ap);
    va_end(ap);
    err_set = 1;
}

static void nomem(void)
{
    set_error("out of memory");
    err_nomem = 1;
}

/* An item's value is wrong: "--timeout 'abc': why" on the command line,
 * "PATH:LINE: timeout = 'abc': why" in the file. */
static void bad(const struct dpd_item *it, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void bad(const struct dpd_item *it, const char *fmt, ...)
{
    char why[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    if (it->file != NULL)
        set_error("%s:%u: %s = '%s': %s", it->file, it->line, defs[it->id].name, it->value, why);
    else if (defs[it->id].flags & F_FLAG)
        set_error("--%s: %s", defs[it->id].name, why);
    else
        set_error("--%s '%s': %s", defs[it->id].name, it->value, why);
}

/* Where an item came from, for messages that involve two of them. */
static const char *origin(const struct dpd_item *it, char *buf, size_t cap)
{
    if (it->file != NULL)
        snprintf(buf, cap, "%s:%u: %s", it->file, it->line, defs[it->id].name);
    else
        snprintf(buf, cap, "--%s", defs[it->id].name);
    return buf;
}

/* ---- values ---- */

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

/* A number option: on failure the message states unit and range. */
static int number(const struct dpd_item *it, unsigned long min, unsigned long max,
                  const char *unit, unsigned *out)
{
    unsigned long v;

    if (parse_number(it->value, min, max, &v) != 0) {
        bad(it, "must be a number%s%s from %lu to %lu", unit[0] ? " of " : "", unit, min, max);
        return -1;
    }
    *out = (unsigned)v;
    return 0;
}

static int parse_bool(const char *s, int *out)
{
    static const char *const yes[] = {"yes", "true", "on", "1"};
    static const char *const no[] = {"no", "false", "off", "0"};

    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return -1;
}

/* Checked here rather than left to dotproxy_ctx_new(): a missing CA file is
 * a mistake in the configuration (exit 2), and the library's DOTPROXY_ETLS
 * could not tell it apart from a bad priority string. */
static int check_readable_file(const struct dpd_item *it)
{
    struct stat st;
    int fd = open(it->value, O_RDONLY | O_CLOEXEC);

    if (fd < 0) {
        bad(it, "cannot open: %s", strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        bad(it, "not a regular file");
        close(fd);
        return -1;
    }
    close(fd);
    return 0;
}

static int grow(void *arrayp, size_t n, size_t size)
{
    void **array = arrayp;
    void *grown = realloc(*array, (n + 1) * size);

    if (grown == NULL) {
        nomem();
        return -1;
    }
    *array = grown;
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

static int library_verdict(const struct dpd_item *it, int r)
{
    if (r == 0)
        return 0;
    if (r == DOTPROXY_ENOMEM)
        nomem();
    else
        bad(it, "%s", dotproxy_strerror(r));
    return -1;
}

static int take_listen(struct dpd_options *opts, const struct dpd_item *it)
{
    dotproxy_endpoint ep;

    if (library_verdict(it, dotproxy_config_add_listen(check_cfg, it->value)) != 0)
        return -1;
    listen_endpoint(&ep, it->value);
    if (grow(&opts->listen_spec, opts->n_listen, sizeof *opts->listen_spec) != 0 ||
        grow(&opts->listen, opts->n_listen, sizeof *opts->listen) != 0)
        return -1;
    opts->listen_spec[opts->n_listen] = it->value;
    opts->listen[opts->n_listen++] = ep;
    return 0;
}

static int take_upstream(struct dpd_options *opts, const struct dpd_item *it)
{
    dotproxy_endpoint ep;
    int r = dotproxy_endpoint_parse(&ep, it->value, DOTPROXY_DOT_PORT, 1);

    if (r == 0)
        r = dotproxy_config_add_upstream_endpoint(check_cfg, &ep);
    if (library_verdict(it, r) != 0)
        return -1;
    if (grow(&opts->upstream, opts->n_upstream, sizeof *opts->upstream) != 0)
        return -1;
    opts->upstream[opts->n_upstream++] = ep;
    return 0;
}

static int take_pin(struct dpd_options *opts, const struct dpd_item *it)
{
    int r;

    if (opts->n_upstream == 0) {
        bad(it, it->file != NULL ? "a pin applies to the 'upstream' line before it, and there is none"
                                 : "a pin applies to the --upstream given before it, and there is none");
        return -1;
    }
    r = dotproxy_config_add_pin(check_cfg, opts->n_upstream - 1, it->value);
    if (r == DOTPROXY_EINVAL) {
        bad(it, "not a SHA-256 SPKI pin ('sha256/' and the base64 of 32 octets)");
        return -1;
    }
    if (r == DOTPROXY_ELIMIT) {
        bad(it, "more than 8 pins for one upstream");
        return -1;
    }
    if (library_verdict(it, r) != 0 || grow(&opts->pins, opts->n_pins, sizeof *opts->pins) != 0)
        return -1;
    opts->pins[opts->n_pins].upstream = opts->n_upstream - 1;
    opts->pins[opts->n_pins++].spki = it->value;
    return 0;
}

static int take_allow(struct dpd_options *opts, const struct dpd_item *it)
{
    int r = dotproxy_config_add_allow(check_cfg, it->value);

    if (r == DOTPROXY_EADDR || r == DOTPROXY_EINVAL) {
        bad(it, "not an address or ADDR/PREFIX (e.g. 192.0.2.0/24, 2001:db8::/32)");
        return -1;
    }
    if (r == DOTPROXY_ELIMIT) {
        bad(it, "more than 256 networks");
        return -1;
    }
    if (library_verdict(it, r) != 0 || grow(&opts->allow, opts->n_allow, sizeof *opts->allow) != 0)
        return -1;
    opts->allow[opts->n_allow++] = it->value;
    return 0;
}

/* "QPS[/BURST]" */
static int take_rate_limit(struct dpd_options *opts, const struct dpd_item *it)
{
    char qps[32];
    const char *slash = strchr(it->value, '/');
    size_t qlen = slash != NULL ? (size_t)(slash - it->value) : strlen(it->value);
    unsigned long q, b = 0;

    if (qlen >= sizeof qps)
        qlen = sizeof qps - 1; /* fails the number check below */
    memcpy(qps, it->value, qlen);
    qps[qlen] = '\0';
    if (parse_number(qps, 0, QPS_MAX, &q) != 0 ||
        (slash != NULL && parse_number(slash + 1, 1, QPS_MAX, &b) != 0)) {
        bad(it, "must be QPS or QPS/BURST: queries per second from 0 (off) to %lu, burst from 1 "
                "to %lu",
            QPS_MAX, QPS_MAX);
        return -1;
    }
    opts->rl_qps = (unsigned)q;
    opts->rl_burst = (unsigned)b; /* 0: the library uses QPS */
    return 0;
}

/* "V4/V6" */
static int take_rate_limit_prefix(struct dpd_options *opts, const struct dpd_item *it)
{
    char v4[8];
    const char *slash = strchr(it->value, '/');
    unsigned long a, b;

    if (slash == NULL || (size_t)(slash - it->value) >= sizeof v4)
        goto bad_value;
    memcpy(v4, it->value, (size_t)(slash - it->value));
    v4[slash - it->value] = '\0';
    if (parse_number(v4, 8, 32, &a) != 0 || parse_number(slash + 1, 16, 128, &b) != 0)
        goto bad_value;
    opts->rl_v4_prefix = (unsigned)a;
    opts->rl_v6_prefix = (unsigned)b;
    return 0;
bad_value:
    bad(it, "must be V4/V6 prefix lengths, V4 from 8 to 32 and V6 from 16 to 128 (e.g. 24/56)");
    return -1;
}

static int take_metrics(struct dpd_options *opts, const struct dpd_item *it)
{
#ifdef DP_HAVE_METRICS
    char addr[128];
    unsigned long port;
    dotproxy_endpoint ep;
    const char *at = strrchr(it->value, '@');
    const char *port_text = at != NULL ? at + 1 : it->value;

    /* PORT 0 lets the kernel choose; the startup log shows the port. */
    if (parse_number(port_text, 0, 65535, &port) != 0 ||
        (at != NULL && ((size_t)(at - it->value) >= sizeof addr || at == it->value))) {
        bad(it, "must be [ADDR@]PORT with ADDR an IP address and PORT from 0 to 65535");
        return -1;
    }
    if (at != NULL) {
        memcpy(addr, it->value, (size_t)(at - it->value));
        addr[at - it->value] = '\0';
        if (dotproxy_endpoint_parse(&ep, addr, 1, 0) != 0) {
            bad(it, "'%s' is not an IPv4 or IPv6 address", addr);
            return -1;
        }
    }
    opts->metrics = it->value;
    return 0;
#else
    (void)opts;
    bad(it, "the metrics server is not built into this dotproxyd (libmicrohttpd was missing)");
    return -1;
#endif
}

static int take_user(struct dpd_options *opts, const struct dpd_item *it)
{
    errno = 0;
    if (it->value[0] == '\0' || getpwnam(it->value) == NULL) {
        bad(it, "no such user%s%s", errno != 0 ? ": " : "", errno != 0 ? strerror(errno) : "");
        return -1;
    }
    opts->user = it->value;
    return 0;
}

static int take_flag(const struct dpd_item *it, int *out)
{
    if (parse_bool(it->value, out) != 0) {
        bad(it, "must be yes or no");
        return -1;
    }
    return 0;
}

/* One option and its value: 0, or -1 with the error set. */
static int take(struct dpd_options *opts, const struct dpd_item *it)
{
    unsigned v;
    int on;
    int r = 0;

    switch (it->id) {
    case O_LISTEN: return take_listen(opts, it);
    case O_UPSTREAM: return take_upstream(opts, it);
    case O_PIN: return take_pin(opts, it);
    case O_ALLOW: return take_allow(opts, it);
    case O_CA_FILE:
        if (check_readable_file(it) != 0 ||
            library_verdict(it, dotproxy_config_set_ca_file(check_cfg, it->value)) != 0)
            return -1;
        opts->ca_file = it->value;
        return 0;
    case O_TLS_PRIORITY:
        /* Whether GnuTLS takes it is known only when a context loads it
         * (--check-config does that; a start fails with status 1). */
        if (it->value[0] == '\0') {
            bad(it, "must not be empty");
            return -1;
        }
        opts->tls_priority = it->value;
        return 0;
    case O_TIMEOUT:
        r = number(it, 1, TIMEOUT_MS_MAX, "milliseconds", &v);
        if (r == 0)
            opts->timeout_ms = v;
        break;
    case O_IDLE_TIMEOUT:
        r = number(it, 1, IDLE_MS_MAX, "milliseconds", &v);
        if (r == 0)
            opts->idle_timeout_ms = v;
        break;
    case O_TCP_IDLE_TIMEOUT:
        r = number(it, 1, IDLE_MS_MAX, "milliseconds", &v);
        if (r == 0)
            opts->tcp_idle_timeout_ms = v;
        break;
    case O_MAX_CONNECTIONS:
        r = number(it, 1, 64, "", &v);
        if (r == 0)
            opts->max_connections = v;
        break;
    case O_MAX_INFLIGHT:
        r = number(it, 1, 32768, "", &v);
        if (r == 0 && (v & (v - 1)) != 0) {
            bad(it, "must be a power of two (1, 2, 4, ... 32768)");
            r = -1;
        }
        if (r == 0)
            opts->max_inflight = v;
        break;
    case O_MAX_QUERIES:
        r = number(it, 16, 1048576, "", &v);
        if (r == 0)
            opts->max_queries = v;
        break;
    case O_HANDSHAKE_TIMEOUT:
        r = number(it, 1, 60000, "milliseconds", &v);
        if (r == 0)
            opts->handshake_timeout_ms = v;
        break;
    case O_SELECTION:
        if (strcmp(it->value, "latency") == 0)
            opts->selection = DOTPROXY_SELECT_LATENCY;
        else if (strcmp(it->value, "round-robin") == 0)
            opts->selection = DOTPROXY_SELECT_ROUND_ROBIN;
        else if (strcmp(it->value, "ordered") == 0)
            opts->selection = DOTPROXY_SELECT_ORDERED;
        else {
            bad(it, "must be latency, round-robin or ordered");
            return -1;
        }
        return 0;
    case O_MAX_TCP_CLIENTS:
        r = number(it, 1, 1048576, "", &v);
        if (r == 0)
            opts->max_tcp_clients = v;
        break;
    case O_MAX_CLIENT_QUERIES:
        r = number(it, 0, CLIENT_QUERIES_MAX, "", &v);
        if (r == 0)
            opts->max_client_queries = v;
        break;
    case O_CACHE_SIZE:
        r = number(it, 0, CACHE_SIZE_MAX, "entries (0 = off)", &v);
        if (r == 0)
            opts->cache_size = v;
        break;
    case O_CACHE_MIN_TTL:
        r = number(it, 0, TTL_S_MAX, "seconds", &v);
        if (r == 0)
            opts->cache_min_ttl = v;
        break;
    case O_CACHE_MAX_TTL:
        r = number(it, 0, TTL_S_MAX, "seconds", &v);
        if (r == 0)
            opts->cache_max_ttl = v;
        break;
    case O_STALE_MAX:
        r = number(it, 0, TTL_S_MAX, "seconds (0 = off)", &v);
        if (r == 0)
            opts->stale_max_s = v;
        break;
    case O_PADDING:
        r = number(it, 0, PADDING_MAX, "octets (0 = off)", &v);
        if (r == 0)
            opts->padding = v;
        break;
    case O_KEEP_ECS:
        r = take_flag(it, &opts->keep_ecs);
        break;
    case O_CACHE_PER_WORKER:
        r = take_flag(it, &opts->cache_per_worker);
        break;
    case O_LOG_QUERIES:
        r = number(it, 0, 1000000, "lines per second (0 = off)", &v);
        if (r == 0)
            opts->log_queries = v;
        break;
    case O_RATE_LIMIT: return take_rate_limit(opts, it);
    case O_RATE_LIMIT_PREFIX: return take_rate_limit_prefix(opts, it);
    case O_RATE_LIMIT_ACTION:
        if (strcmp(it->value, "refuse") == 0)
            opts->rl_action = DOTPROXY_LIMIT_REFUSE;
        else if (strcmp(it->value, "drop") == 0)
            opts->rl_action = DOTPROXY_LIMIT_DROP;
        else {
            bad(it, "must be refuse or drop");
            return -1;
        }
        return 0;
    case O_RATE_LIMIT_LOOPBACK:
        r = take_flag(it, &opts->rl_loopback);
        break;
    case O_WORKERS:
        r = number(it, 1, DPD_MAX_WORKERS, "", &v);
        if (r == 0)
            opts->workers = v;
        break;
    case O_USER: return take_user(opts, it);
    case O_VERBOSE:
        r = take_flag(it, &on);
        if (r == 0)
            opts->log_level = on ? DOTPROXY_LOG_DEBUG : DOTPROXY_LOG_INFO;
        break;
    case O_QUIET:
        r = take_flag(it, &on);
        if (r == 0)
            opts->log_level = on ? DOTPROXY_LOG_ERR : DOTPROXY_LOG_INFO;
        break;
    case O_LOG_FORMAT:
        if (strcmp(it->value, "text") == 0)
            opts->log_json = 0;
        else if (strcmp(it->value, "json") == 0)
            opts->log_json = 1;
        else {
            bad(it, "must be text or json");
            return -1;
        }
        return 0;
    case O_SYSLOG:
        r = take_flag(it, &opts->log_syslog);
        break;
    case O_METRICS: return take_metrics(opts, it);
    case O_API_TOKEN_FILE:
        if (check_readable_file(it) != 0)
            return -1;
        opts->api_token_file = it->value;
        return 0;
    default:
        /* The command-line-only options never reach here. */
        abort();
    }
    return r;
}

/* ---- collecting items ---- */

static int add_item(struct dpd_item **list, size_t *n, const struct dpd_item *it)
{
    if (grow(list, *n, sizeof **list) != 0)
        return -1;
    (*list)[(*n)++] = *it;
    return 0;
}

/* The file's items as they are read, and the strings they own. */
struct file_parse {
    struct dpd_options *opts;
    const char *path;
    struct dpd_item *items;
    size_t n;
    unsigned seen_line[O_COUNT_]; /* line of each single-valued key, 0 = not yet */
    int last_id;
};

static int keep_string(struct dpd_options *opts, char *s)
{
    if (s == NULL || grow(&opts->strings, opts->n_strings, sizeof *opts->strings) != 0) {
        free(s);
        if (s == NULL)
            nomem();
        return -1;
    }
    opts->strings[opts->n_strings++] = s;
    return 0;
}

static int on_file_key(void *user, const char *key, const char *value, unsigned line,
                       int continuation, char *why, size_t whylen)
{
    struct file_parse *fp = user;
    struct dpd_options *opts = fp->opts;
    struct dpd_item it;
    int id;

    if (continuation && fp->n > 0) {
        /* A long value (a TLS priority string) split over lines: the
         * pieces are joined as they are, with no separator. The previous
         * item's value is the last string kept. */
        char **last = &opts->strings[opts->n_strings - 1];
        size_t a = strlen(*last), b = strlen(value);
        char *joined = realloc(*last, a + b + 1);

        if (joined == NULL) {
            snprintf(why, whylen, "out of memory");
            return -1;
        }
        memcpy(joined + a, value, b + 1);
        *last = joined;
        fp->items[fp->n - 1].value = joined;
        return 0;
    }
    for (id = 0; id < O_COUNT_; id++) {
        if (strcmp(defs[id].name, key) == 0)
            break;
    }
    if (id == O_COUNT_) {
        snprintf(why, whylen, "unknown key '%s'", key);
        return -1;
    }
    if (defs[id].flags & F_CLI_ONLY) {
        snprintf(why, whylen, "'%s' is a command-line option, not a file key", key);
        return -1;
    }
    if (!(defs[id].flags & F_REPEAT)) {
        if (fp->seen_line[id] != 0) {
            snprintf(why, whylen, "'%s' is already set on line %u", key, fp->seen_line[id]);
            return -1;
        }
        fp->seen_line[id] = line;
    }
    if (keep_string(opts, strdup(value)) != 0) {
        snprintf(why, whylen, "out of memory");
        return -1;
    }
    it.id = id;
    it.value = opts->strings[opts->n_strings - 1];
    it.file = fp->path;
    it.line = line;
    if (add_item(&fp->items, &fp->n, &it) != 0) {
        snprintf(why, whylen, "out of memory");
        return -1;
    }
    return 0;
}

/* ---- building options from items ---- */

static void set_defaults(struct dpd_options *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->timeout_ms = 4000;
    opts->idle_timeout_ms = 8000;
    opts->tcp_idle_timeout_ms = 10000;
    opts->max_connections = 2;
    opts->max_inflight = 1024;
    opts->max_queries = 8192;
    opts->max_tcp_clients = 1024;
    opts->cache_size = DPD_DEFAULT_CACHE_SIZE;
    opts->cache_max_ttl = 86400;
    opts->stale_max_s = 86400;
    opts->padding = 128;
    opts->rl_v4_prefix = 32;
    opts->rl_v6_prefix = 128;
    opts->rl_action = DOTPROXY_LIMIT_REFUSE;
    opts->workers = 1;
    opts->log_level = DOTPROXY_LOG_INFO;
}

static int add_defaults(struct dpd_options *opts)
{
    struct dpd_item it = {.file = NULL};

    if (opts->n_listen == 0) {
        it.id = O_LISTEN;
        it.value = default_listen;
        if (take(opts, &it) != 0)
            return -1;
    }
    if (opts->n_upstream == 0) {
        /* Decided once: n_upstream grows as the defaults are taken. */
        for (size_t i = 0; i < sizeof default_upstreams / sizeof default_upstreams[0]; i++) {
            it.id = O_UPSTREAM;
            it.value = default_upstreams[i];
            if (take(opts, &it) != 0)
                return -1;
        }
    }
    return 0;
}

/* Checks across options, made once every value is known. */
static int cross_checks(struct dpd_options *opts, const struct dpd_item *const last[O_COUNT_])
{
    char a[300], b[300];

    if (opts->cache_min_ttl > opts->cache_max_ttl) {
        const struct dpd_item *lo = last[O_CACHE_MIN_TTL], *hi = last[O_CACHE_MAX_TTL];

        set_error("%s %u is above %s %u", lo ? origin(lo, a, sizeof a) : "cache-min-ttl",
                  opts->cache_min_ttl, hi ? origin(hi, b, sizeof b) : "cache-max-ttl (default)",
                  opts->cache_max_ttl);
        return -1;
    }
    if (dotproxy_config_set_cache_ttl(check_cfg, opts->cache_min_ttl, opts->cache_max_ttl) != 0 ||
        dotproxy_config_set_rate_limit(check_cfg, opts->rl_qps, opts->rl_burst,
                                       opts->rl_v4_prefix, opts->rl_v6_prefix, opts->rl_action,
                                       opts->rl_loopback) != 0) {
        set_error("the cache TTL or rate-limit settings were refused by the library");
        return -1;
    }
    return 0;
}

/* Apply the file's items (minus the groups the command line gives) and then
 * the command line's to a fresh opts. 0 or -1 (error set). */
static int build(struct dpd_options *opts, const struct dpd_item *cli, size_t n_cli,
                 const char *config_path, int check_config)
{
    struct file_parse fp;
    const struct dpd_item *last[O_COUNT_] = {0};
    int cli_groups[O_COUNT_] = {0};
    int rc = -1;

    set_defaults(opts);
    opts->config_path = config_path;
    opts->check_config = check_config;
    memset(&fp, 0, sizeof fp);
    fp.opts = opts;
    fp.path = config_path;
    if (n_cli > 0) {
        opts->cli = malloc(n_cli * sizeof *cli);
        if (opts->cli == NULL) {
            nomem();
            return -1;
        }
        memcpy(opts->cli, cli, n_cli * sizeof *cli);
        opts->n_cli = n_cli;
    }
    if (dotproxy_config_new(&check_cfg) != 0) {
        nomem();
        return -1;
    }
    if (config_path != NULL) {
        char why[1024];

        if (dpd_config_file_read(config_path, on_file_key, &fp, why, sizeof why) != 0) {
            set_error("%s", why);
            goto out;
        }
    }
    /* Every value in the file must be valid, even one the command line
     * overrides: --check-config vouches for the file, and the next start
     * may come without that command line. A scratch pass over the file
     * alone, then the real one. */
    if (fp.n > 0) {
        struct dpd_options scratch;
        dotproxy_config *real_check = check_cfg;
        int ok = 1;

        set_defaults(&scratch);
        if (dotproxy_config_new(&check_cfg) != 0) {
            check_cfg = real_check;
            nomem();
            goto out;
        }
        for (size_t i = 0; ok && i < fp.n; i++)
            ok = take(&scratch, &fp.items[i]) == 0;
        dotproxy_config_free(check_cfg);
        check_cfg = real_check;
        dpd_options_release(&scratch);
        if (!ok)
            goto out;
    }
    for (size_t i = 0; i < n_cli; i++)
        cli_groups[defs[cli[i].id].group] = 1;
    for (size_t i = 0; i < fp.n; i++) {
        if (cli_groups[defs[fp.items[i].id].group])
            continue;
        if (take(opts, &fp.items[i]) != 0)
            goto out;
        last[fp.items[i].id] = &fp.items[i];
    }
    for (size_t i = 0; i < n_cli; i++) {
        if (take(opts, &cli[i]) != 0)
            goto out;
        last[cli[i].id] = &cli[i];
    }
    if (add_defaults(opts) != 0 || cross_checks(opts, last) != 0)
        goto out;
    rc = 0;
out:
    free(fp.items);
    dotproxy_config_free(check_cfg);
    check_cfg = NULL;
    return rc;
}

/* ---- the command line ---- */

static struct option long_options[O_COUNT_ + 1];

static void fill_long_options(void)
{
    for (int i = 0; i < O_COUNT_; i++) {
        long_options[i].name = defs[i].name;
        long_options[i].has_arg = (defs[i].flags & F_FLAG) ? no_argument : required_argument;
        long_options[i].flag = NULL;
        long_options[i].val = defs[i].short_name != 0 ? defs[i].short_name : LONG_BASE + i;
    }
}

static int id_of(int c)
{
    if (c >= LONG_BASE)
        return c - LONG_BASE;
    for (int i = 0; i < O_COUNT_; i++) {
        if (defs[i].short_name == c)
            return i;
    }
    return -1;
}

static void usage_message(const char *msg)
{
    fprintf(stderr, "dotproxyd: %s\nTry 'dotproxyd --help' for more information.\n", msg);
}

/* The command line as items. Returns 0 to go on, or the exit status with
 * *done set (help, version, or an error already printed). */
static int collect_cli(int argc, char **argv, struct dpd_item **items, size_t *n,
                       const char **config_path, int *check_config, int *done)
{
    char msg[512];
    int c;

    fill_long_options();
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, short_options, long_options, NULL)) != -1) {
        struct dpd_item it = {.file = NULL, .line = 0};
        int id;

        if (c == ':') {
            id = id_of(optopt);
            if (id >= 0)
                snprintf(msg, sizeof msg, "option '--%s' needs a value", defs[id].name);
            else
                snprintf(msg, sizeof msg, "option '%s' needs a value", argv[optind - 1]);
            usage_message(msg);
            *done = 1;
            return DPD_EXIT_USAGE;
        }
        if (c == '?') {
            /* A long option is reported as typed (it may carry "=value");
             * an unknown short one by its letter, as it may sit in a
             * cluster like "-vx". */
            const char *arg = argv[optind - 1];
            const char *eq = strchr(arg, '=');

            if (strncmp(arg, "--", 2) == 0 && eq != NULL && optopt != 0)
                snprintf(msg, sizeof msg, "option '%.*s' takes no value", (int)(eq - arg), arg);
            else if (optopt == 0 || strncmp(arg, "--", 2) == 0)
                snprintf(msg, sizeof msg, "unknown option '%s'", arg);
            else
                snprintf(msg, sizeof msg, "unknown option '-%c'", optopt);
            usage_message(msg);
            *done = 1;
            return DPD_EXIT_USAGE;
        }
        id = id_of(c);
        switch (id) {
        case O_VERSION:
            printf("dotproxyd %s\n", dotproxy_version());
            *done = 1;
            return DPD_EXIT_OK;
        case O_HELP:
            dpd_options_usage(stdout);
            *done = 1;
            return DPD_EXIT_OK;
        case O_CONFIG: *config_path = optarg; continue;
        case O_CHECK_CONFIG: *check_config = 1; continue;
        default: break;
        }
        it.id = id;
        it.value = (defs[id].flags & F_FLAG) ? "yes" : optarg;
        if (add_item(items, n, &it) != 0) {
            *done = 1;
            return DPD_EXIT_RUNTIME;
        }
    }
    if (optind < argc) {
        snprintf(msg, sizeof msg,
                 "unexpected argument '%s' (options take their values as '-l ADDR')", argv[optind]);
        usage_message(msg);
        *done = 1;
        return DPD_EXIT_USAGE;
    }
    return 0;
}

enum dpd_parse_result dpd_options_parse(struct dpd_options *opts, int argc, char **argv,
                                        int *status)
{
    char err[1536];
    struct dpd_item *items = NULL;
    size_t n = 0;
    const char *config_path = NULL;
    int check_config = 0, done = 0;

    set_defaults(opts);
    err_buf = err;
    err_cap = sizeof err;
    err_set = err_nomem = 0;
    *status = collect_cli(argc, argv, &items, &n, &config_path, &check_config, &done);
    if (done) {
        if (err_nomem)
            fprintf(stderr, "dotproxyd: out of memory\n");
        free(items);
        return DPD_PARSE_EXIT;
    }
    if (build(opts, items, n, config_path, check_config) != 0) {
        if (err_nomem)
            fprintf(stderr, "dotproxyd: out of memory\n");
        else
            usage_message(err);
        *status = err_nomem ? DPD_EXIT_RUNTIME : DPD_EXIT_USAGE;
        free(items);
        dpd_options_release(opts);
        return DPD_PARSE_EXIT;
    }
    free(items);
    *status = DPD_EXIT_OK;
    return DPD_PARSE_RUN;
}

int dpd_options_reparse(struct dpd_options *out, const struct dpd_options *cur, char *err,
                        size_t errlen)
{
    err_buf = err;
    err_cap = errlen;
    err_set = err_nomem = 0;
    if (build(out, cur->cli, cur->n_cli, cur->config_path, cur->check_config) != 0) {
        dpd_options_release(out);
        return -1;
    }
    return 0;
}

int dpd_options_read_token(const char *path, char *buf, size_t cap, char *err, size_t errlen)
{
    char raw[TOKEN_FILE_MAX + 1];
    struct stat st;
    size_t len = 0, start = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0) {
        snprintf(err, errlen, "api-token-file '%s': cannot open: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "api-token-file '%s': not a regular file", path);
        close(fd);
        return -1;
    }
    while (len < sizeof raw) {
        ssize_t r = read(fd, raw + len, sizeof raw - len);

        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            snprintf(err, errlen, "api-token-file '%s': %s", path, strerror(errno));
            close(fd);
            return -1;
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    close(fd);
    if (len > TOKEN_FILE_MAX) {
        snprintf(err, errlen, "api-token-file '%s': longer than %d octets", path, TOKEN_FILE_MAX);
        return -1;
    }
    while (len > 0 && strchr(" \t\r\n", raw[len - 1]) != NULL)
        len--;
    while (start < len && strchr(" \t\r\n", raw[start]) != NULL)
        start++;
    if (start == len) {
        snprintf(err, errlen, "api-token-file '%s': empty", path);
        return -1;
    }
    for (size_t i = start; i < len; i++) {
        /* It goes into an HTTP header comparison: printable ASCII only. */
        if (raw[i] < 0x21 || raw[i] > 0x7e) {
            snprintf(err, errlen,
                     "api-token-file '%s': the token must be one word of printable ASCII", path);
            return -1;
        }
    }
    if (len - start >= cap) {
        snprintf(err, errlen, "api-token-file '%s': token too long", path);
        return -1;
    }
    memcpy(buf, raw + start, len - start);
    buf[len - start] = '\0';
    return (st.st_mode & S_IROTH) ? 1 : 0;
}

int dpd_options_check_deep(const struct dpd_options *opts, char *err, size_t errlen)
{
    dotproxy_config *cfg;
    dotproxy_ctx *ctx;
    int r = dpd_options_config(&cfg, opts, NULL, DPD_CONFIG_NO_LISTEN);

    if (r != 0) {
        snprintf(err, errlen, "cannot build the configuration: %s", dotproxy_strerror(r));
        return -1;
    }
    r = dotproxy_ctx_new(&ctx, cfg);
    dotproxy_config_free(cfg);
    if (r == DOTPROXY_ETLS) {
        snprintf(err, errlen, "TLS settings unusable: %s%s%s%s%s",
                 opts->ca_file != NULL ? "ca-file '" : "the system trust store",
                 opts->ca_file != NULL ? opts->ca_file : "",
                 opts->ca_file != NULL ? "' holds no PEM certificate" : " cannot be loaded",
                 opts->tls_priority != NULL ? ", or tls-priority is not a valid GnuTLS priority "
                                              "string: "
                                            : "",
                 opts->tls_priority != NULL ? opts->tls_priority : "");
        return -1;
    }
    if (r != 0) {
        snprintf(err, errlen, "cannot create a proxy context: %s", dotproxy_strerror(r));
        return -1;
    }
    dotproxy_ctx_free(ctx);
    if (opts->api_token_file != NULL) {
        char token[TOKEN_FILE_MAX + 1];

        if (dpd_options_read_token(opts->api_token_file, token, sizeof token, err, errlen) < 0)
            return -1;
    }
    return 0;
}

int dpd_options_config(dotproxy_config **out, const struct dpd_options *opts, const int *ports,
                       unsigned flags)
{
    dotproxy_config *cfg;
    int r = dotproxy_config_new(&cfg);

    for (size_t i = 0; r == 0 && !(flags & DPD_CONFIG_NO_LISTEN) && i < opts->n_listen; i++) {
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
    for (size_t i = 0; r == 0 && i < opts->n_pins; i++)
        r = dotproxy_config_add_pin(cfg, opts->pins[i].upstream, opts->pins[i].spki);
    for (size_t i = 0; r == 0 && i < opts->n_allow; i++)
        r = dotproxy_config_add_allow(cfg, opts->allow[i]);
    if (r == 0 && opts->ca_file != NULL)
        r = dotproxy_config_set_ca_file(cfg, opts->ca_file);
    if (r == 0 && opts->tls_priority != NULL)
        r = dotproxy_config_set_tls_priority(cfg, opts->tls_priority);
    if (r == 0)
        r = dotproxy_config_set_timeout_ms(cfg, opts->timeout_ms);
    if (r == 0)
        r = dotproxy_config_set_idle_timeout_ms(cfg, opts->idle_timeout_ms);
    if (r == 0)
        r = dotproxy_config_set_tcp_idle_timeout_ms(cfg, opts->tcp_idle_timeout_ms);
    if (r == 0)
        r = dotproxy_config_set_max_connections(cfg, opts->max_connections);
    if (r == 0)
        r = dotproxy_config_set_max_inflight(cfg, opts->max_inflight);
    if (r == 0)
        r = dotproxy_config_set_max_queries(cfg, opts->max_queries);
    if (r == 0)
        r = dotproxy_config_set_max_tcp_clients(cfg, opts->max_tcp_clients);
    /* Left unset by default: the library's default follows --timeout. */
    if (r == 0 && opts->handshake_timeout_ms > 0)
        r = dotproxy_config_set_handshake_timeout_ms(cfg, opts->handshake_timeout_ms);
    if (r == 0)
        r = dotproxy_config_set_selection(cfg, opts->selection);
    if (r == 0)
        r = dotproxy_config_set_max_client_queries(cfg, opts->max_client_queries);
    if (r == 0)
        r = dotproxy_config_set_cache_size(cfg, opts->cache_size);
    if (r == 0)
        r = dotproxy_config_set_cache_ttl(cfg, opts->cache_min_ttl, opts->cache_max_ttl);
    if (r == 0)
        r = dotproxy_config_set_stale_max_s(cfg, opts->stale_max_s);
    if (r == 0)
        r = dotproxy_config_set_padding(cfg, opts->padding);
    if (r == 0)
        r = dotproxy_config_set_keep_ecs(cfg, opts->keep_ecs);
    if (r == 0)
        r = dotproxy_config_set_rate_limit(cfg, opts->rl_qps, opts->rl_burst, opts->rl_v4_prefix,
                                           opts->rl_v6_prefix, opts->rl_action, opts->rl_loopback);
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
    free(opts->pins);
    free(opts->allow);
    free(opts->cli);
    for (size_t i = 0; i < opts->n_strings; i++)
        free(opts->strings[i]);
    free(opts->strings);
    set_defaults(opts);
}
