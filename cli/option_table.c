/* SPDX-License-Identifier: MIT */
/* dotproxyd: the option table and the small typed parsers its rows use.
 *
 * Read the table (dpd_table, below) as the reference of the daemon's
 * options; the parsers above it only turn text into a typed value and say
 * what is wrong in the words an operator needs. Whether a value is
 * acceptable to the library is decided by the library's own setter when the
 * row applies it: a range is stated here (for the message) by naming the
 * library's DOTPROXY_*_MIN/_MAX, never by writing the numbers again. */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config_file.h"
#include "dnstap.h"
#include "http_server.h"
#include "option_table.h"
#include "options.h"

#define DPD_STR_(x) #x
#define DPD_STR(x)  DPD_STR_(x)

/* ---- parsers: text to a typed value ---- */

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

static int parse_uint(const struct dpd_option *o, const char *text, struct dpd_value *v, char *why,
                      size_t cap)
{
    if (parse_number(text, o->min, o->max, &v->u) == 0)
        return 0;
    snprintf(why, cap, "must be a number%s%s from %lu to %lu", o->unit != NULL ? " of " : "",
             o->unit != NULL ? o->unit : "", o->min, o->max);
    return -1;
}

static int parse_flag(const struct dpd_option *o, const char *text, struct dpd_value *v, char *why,
                      size_t cap)
{
    static const char *const yes[] = {"yes", "true", "on", "1"};
    static const char *const no[] = {"no", "false", "off", "0"};

    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        if (strcasecmp(text, yes[i]) == 0 || strcasecmp(text, no[i]) == 0) {
            v->i = strcasecmp(text, yes[i]) == 0;
            return 0;
        }
    }
    snprintf(why, cap, "must be yes or no");
    return -1;
}

static int parse_enum(const struct dpd_option *o, const char *text, struct dpd_value *v, char *why,
                      size_t cap)
{
    size_t n = 0, len;

    for (const struct dpd_choice *c = o->choices; c->name != NULL; c++, n++) {
        if (strcmp(text, c->name) == 0) {
            v->i = c->value;
            return 0;
        }
    }
    len = (size_t)snprintf(why, cap, "must be ");
    for (size_t i = 0; i < n && len < cap; i++)
        len += (size_t)snprintf(why + len, cap - len, "%s%s",
                                i == 0      ? ""
                                : i + 1 < n ? ", "
                                            : " or ",
                                o->choices[i].name);
    return -1;
}

/* Text the library judges when the row applies it (addresses, pins). */
static int parse_text(const struct dpd_option *o, const char *text, struct dpd_value *v, char *why,
                      size_t cap)
{
    v->s = text;
    return 0;
}

static int parse_string(const struct dpd_option *o, const char *text, struct dpd_value *v,
                        char *why, size_t cap)
{
    if (text[0] == '\0') {
        snprintf(why, cap, "must not be empty");
        return -1;
    }
    v->s = text;
    return 0;
}

/* A GnuTLS priority string, checked where it is given (file and line, or
 * the option), with GnuTLS's own position, rather than at start. */
static int parse_priority(const struct dpd_option *o, const char *text, struct dpd_value *v,
                          char *why, size_t cap)
{
    if (parse_string(o, text, v, why, cap) != 0)
        return -1;
    return dotproxy_config_check_tls_priority(text, why, cap) == 0 ? 0 : -1;
}

/* Checked here rather than left to dotproxy_ctx_new(): a missing CA file is
 * a mistake in the configuration (exit 2), and the library's DOTPROXY_ETLS
 * could not tell it apart from a bad priority string. */
static int parse_path(const struct dpd_option *o, const char *text, struct dpd_value *v, char *why,
                      size_t cap)
{
    int fd = dpd_open_regular(text, why, cap);

    if (fd < 0)
        return -1;
    close(fd);
    v->s = text;
    return 0;
}

static int parse_user(const struct dpd_option *o, const char *text, struct dpd_value *v, char *why,
                      size_t cap)
{
    errno = 0;
    if (text[0] == '\0' || getpwnam(text) == NULL) {
        snprintf(why, cap, "no such user%s%s", errno != 0 ? ": " : "",
                 errno != 0 ? strerror(errno) : "");
        return -1;
    }
    v->s = text;
    return 0;
}

/* "A/B": two numbers within the row's range for A and [min2, max2] for B;
 * B may be left out when optional. */
static int parse_pair(const char *text, unsigned long min1, unsigned long max1, unsigned long min2,
                      unsigned long max2, int b_optional, struct dpd_value *v)
{
    char a[32];
    const char *slash = strchr(text, '/');
    size_t alen = slash != NULL ? (size_t)(slash - text) : strlen(text);

    if (alen >= sizeof a || (slash == NULL && !b_optional))
        return -1;
    memcpy(a, text, alen);
    a[alen] = '\0';
    v->u2 = 0;
    if (parse_number(a, min1, max1, &v->u) != 0)
        return -1;
    return slash == NULL ? 0 : parse_number(slash + 1, min2, max2, &v->u2);
}

/* "QPS[/BURST]"; BURST 0 (absent) means QPS to the library. */
static int parse_qps_burst(const struct dpd_option *o, const char *text, struct dpd_value *v,
                           char *why, size_t cap)
{
    if (parse_pair(text, 0, o->max, 1, o->max, 1, v) == 0)
        return 0;
    snprintf(why, cap,
             "must be QPS or QPS/BURST: queries per second from 0 (off) to %lu, burst from 1 to "
             "%lu",
             o->max, o->max);
    return -1;
}

/* "V4/V6" prefix lengths. */
static int parse_prefixes(const struct dpd_option *o, const char *text, struct dpd_value *v,
                          char *why, size_t cap)
{
    if (parse_pair(text, DOTPROXY_RATE_LIMIT_V4_PREFIX_MIN, DOTPROXY_RATE_LIMIT_V4_PREFIX_MAX,
                   DOTPROXY_RATE_LIMIT_V6_PREFIX_MIN, DOTPROXY_RATE_LIMIT_V6_PREFIX_MAX, 0, v) == 0)
        return 0;
    snprintf(why, cap,
             "must be V4/V6 prefix lengths, V4 from %u to %u and V6 from %u to %u (e.g. "
             "24/56)",
             DOTPROXY_RATE_LIMIT_V4_PREFIX_MIN, DOTPROXY_RATE_LIMIT_V4_PREFIX_MAX,
             DOTPROXY_RATE_LIMIT_V6_PREFIX_MIN, DOTPROXY_RATE_LIMIT_V6_PREFIX_MAX);
    return -1;
}

/* "[ADDR@]PORT"; PORT 0 lets the kernel choose. Read as the server will. */
static int parse_metrics(const struct dpd_option *o, const char *text, struct dpd_value *v,
                         char *why, size_t cap)
{
    dotproxy_endpoint ep;
    if (dpd_http_server_parse_listen(text, &ep, why, cap) != 0)
        return -1;
    v->s = text;
    return 0;
}

/* Calls add(cfg, zone, upstream) for each upstream of "ZONE=UP[,UP...]".
 * 0, or the first error with which (the zone: NULL, else the upstream). */
static int each_forward(const char *text, dotproxy_config *cfg, char *zone, size_t zcap, char *up,
                        size_t ucap, int *bad_zone)
{
    const char *eq = strchr(text, '=');
    size_t zl = eq != NULL ? (size_t)(eq - text) : 0;

    *bad_zone = 1;
    up[0] = '\0';
    if (eq == NULL || zl == 0 || zl >= zcap)
        return DOTPROXY_EINVAL;
    memcpy(zone, text, zl);
    zone[zl] = '\0';
    *bad_zone = 0;
    for (const char *p = eq + 1;;) {
        const char *comma = strchr(p, ',');
        size_t ul = comma != NULL ? (size_t)(comma - p) : strlen(p);
        int r;

        if (ul >= ucap)
            ul = ucap - 1;
        memcpy(up, p, ul);
        up[ul] = '\0';
        if (ul == 0)
            return DOTPROXY_EADDR;
        r = dotproxy_config_add_forward(cfg, zone, up);
        if (r != 0)
            return r;
        if (comma == NULL)
            return 0;
        p = comma + 1;
    }
}

/* "ZONE=UPSTREAM[,UPSTREAM...]": checked whole against a scratch
 * configuration, so that the message names the part that is wrong. */
static int parse_forward_zone(const struct dpd_option *o, const char *text, struct dpd_value *v,
                              char *why, size_t cap)
{
    dotproxy_config *scratch = NULL;
    char zone[300], up[600];
    int bad_zone, r;

    if (dotproxy_config_new(&scratch) != 0) {
        snprintf(why, cap, "out of memory");
        return -1;
    }
    r = each_forward(text, scratch, zone, sizeof zone, up, sizeof up, &bad_zone);
    /* An unknown zone with a sound upstream is refused for the zone alone. */
    if (r == DOTPROXY_EINVAL && !bad_zone &&
        dotproxy_config_add_forward(scratch, zone, "plain:127.0.0.1") == DOTPROXY_EINVAL)
        bad_zone = 1;
    dotproxy_config_free(scratch);
    if (r == 0) {
        v->s = text;
        return 0;
    }
    if (bad_zone && strchr(text, '=') == NULL)
        snprintf(why, cap, "must be ZONE=UPSTREAM[,UPSTREAM...]");
    else if (bad_zone)
        snprintf(why, cap,
                 "zone '%s' is not a domain name (labels of letters, digits, '-' and '_')", zone);
    else if (r == DOTPROXY_ELIMIT && strchr(up, '^') != NULL)
        snprintf(why, cap, "upstream '%s': more than %d pins", up, DOTPROXY_PINS_MAX);
    else if (r == DOTPROXY_ELIMIT)
        snprintf(why, cap, "upstream '%s': more than %d distinct forward upstreams", up,
                 DOTPROXY_FORWARD_UPSTREAMS_MAX);
    else if (r == DOTPROXY_EINVAL)
        snprintf(why, cap,
                 "upstream '%s': a pin is not a SHA-256 SPKI pin ('sha256/' and the "
                 "base64 of 32 octets)",
                 up);
    else if (r == DOTPROXY_ENAME && strncmp(up, "plain:", 6) == 0)
        snprintf(why, cap, "upstream '%s': plain DNS has no TLS name (write plain:ADDR[@PORT])",
                 up);
    else
        snprintf(why, cap,
                 "upstream '%s' of zone '%s': %s (ADDR[@PORT][#NAME][^sha256/PIN] for DNS "
                 "over TLS, plain:ADDR[@PORT] for plain DNS)",
                 up, zone, up[0] == '\0' ? "empty" : dotproxy_strerror(r));
    return -1;
}

/* "unix:PATH" or "tcp:ADDR@PORT": the form only, the receiver may come later. */
static int parse_dnstap(const struct dpd_option *o, const char *text, struct dpd_value *v,
                        char *why, size_t cap)
{
    if (dpd_dnstap_check(text, why, cap) != 0)
        return -1;
    v->s = text;
    return 0;
}

static const struct dpd_kind kind_uint = {"uint", DPD_STORE_UINT, parse_uint, 0};
static const struct dpd_kind kind_flag = {"flag", DPD_STORE_INT, parse_flag, 0};
static const struct dpd_kind kind_enum = {"enum", DPD_STORE_INT, parse_enum, 0};
static const struct dpd_kind kind_string = {"string", DPD_STORE_STR, parse_string, 0};
static const struct dpd_kind kind_path = {"path", DPD_STORE_STR, parse_path, 1};
static const struct dpd_kind kind_priority = {"string", DPD_STORE_STR, parse_priority, 0};
static const struct dpd_kind kind_endpoint = {"endpoint", DPD_STORE_STR, parse_text, 0};
static const struct dpd_kind kind_pin = {"pin", DPD_STORE_STR, parse_text, 0};
static const struct dpd_kind kind_cidr = {"cidr", DPD_STORE_STR, parse_text, 0};
static const struct dpd_kind kind_user = {"user", DPD_STORE_STR, parse_user, 0};
static const struct dpd_kind kind_qps_burst = {"qps-burst", DPD_STORE_UINT, parse_qps_burst, 0};
static const struct dpd_kind kind_prefixes = {"prefix-pair", DPD_STORE_UINT, parse_prefixes, 0};
static const struct dpd_kind kind_metrics = {"metrics", DPD_STORE_STR, parse_metrics, 0};
static const struct dpd_kind kind_forward = {"forward-zone", DPD_STORE_STR, parse_forward_zone, 0};
static const struct dpd_kind kind_dnstap = {"dnstap", DPD_STORE_STR, parse_dnstap, 0};
static const struct dpd_kind kind_none = {"none", DPD_STORE_INT, parse_flag, 0};

/* ---- appliers and shows that are more than one setter or field ---- */

static int apply_pin(struct dpd_apply *ap, const struct dpd_value *v)
{
    size_t n = dotproxy_config_upstream_count(ap->opts->cfg);

    if (n == 0) {
        ap->why = ap->item != NULL && ap->item->file != NULL
                      ? "a pin applies to the 'upstream' line before it, and there is none"
                      : "a pin applies to the --upstream given before it, and there is none";
        return DOTPROXY_EINVAL;
    }
    return dotproxy_config_add_pin(ap->opts->cfg, n - 1, v->s);
}

static int apply_forward_zone(struct dpd_apply *ap, const struct dpd_value *v)
{
    char zone[300], up[600];
    int bad_zone;
    int r = each_forward(v->s, ap->opts->cfg, zone, sizeof zone, up, sizeof up, &bad_zone);

    if (r == DOTPROXY_ELIMIT)
        ap->why = "more than " DPD_STR(
            DOTPROXY_FORWARD_ZONES_MAX) " forward zones or "
                                        "more than " DPD_STR(
                                            DOTPROXY_FORWARD_UPSTREAMS_MAX) " distinct forward "
                                                                            "upstreams";
    return r;
}

static void show_forward_zones(const struct dpd_options *opts, char *buf, size_t cap)
{
    char one[8192];
    size_t len = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < dotproxy_config_forward_zone_count(opts->cfg) && len < cap; i++) {
        if (dotproxy_config_get_forward_zone(opts->cfg, i, one, sizeof one) < 0)
            snprintf(one, sizeof one, "?");
        len += (size_t)snprintf(buf + len, cap - len, "%s%s", i ? ", " : "", one);
    }
}

/* The rate-limit rows each change a part of one setter's arguments: read
 * them all back, change the row's part, set them all. */
struct rate_limit {
    unsigned qps, burst, v4, v6;
    int action, loopback;
};

static struct rate_limit rate_limit_of(const dotproxy_config *cfg)
{
    struct rate_limit rl = {0};

    dotproxy_config_get_rate_limit(cfg, &rl.qps, &rl.burst, &rl.v4, &rl.v6, &rl.action,
                                   &rl.loopback);
    return rl;
}

static int set_rate_limit(dotproxy_config *cfg, struct rate_limit rl)
{
    return dotproxy_config_set_rate_limit(cfg, rl.qps, rl.burst, rl.v4, rl.v6, rl.action,
                                          rl.loopback);
}

static int apply_rate_limit(struct dpd_apply *ap, const struct dpd_value *v)
{
    struct rate_limit rl = rate_limit_of(ap->opts->cfg);

    rl.qps = (unsigned)v->u;
    rl.burst = (unsigned)v->u2; /* 0: the library takes QPS */
    return set_rate_limit(ap->opts->cfg, rl);
}

static int apply_prefixes(struct dpd_apply *ap, const struct dpd_value *v)
{
    struct rate_limit rl = rate_limit_of(ap->opts->cfg);

    rl.v4 = (unsigned)v->u;
    rl.v6 = (unsigned)v->u2;
    return set_rate_limit(ap->opts->cfg, rl);
}

static int apply_limit_action(struct dpd_apply *ap, const struct dpd_value *v)
{
    struct rate_limit rl = rate_limit_of(ap->opts->cfg);

    rl.action = v->i;
    return set_rate_limit(ap->opts->cfg, rl);
}

static int apply_limit_loopback(struct dpd_apply *ap, const struct dpd_value *v)
{
    struct rate_limit rl = rate_limit_of(ap->opts->cfg);

    rl.loopback = v->i;
    return set_rate_limit(ap->opts->cfg, rl);
}

static void show_rate_limit(const struct dpd_options *opts, char *buf, size_t cap)
{
    struct rate_limit rl = rate_limit_of(opts->cfg);

    if (rl.burst == rl.qps || rl.burst == 0)
        snprintf(buf, cap, "%u", rl.qps);
    else
        snprintf(buf, cap, "%u/%u", rl.qps, rl.burst);
}

static void show_prefixes(const struct dpd_options *opts, char *buf, size_t cap)
{
    struct rate_limit rl = rate_limit_of(opts->cfg);

    snprintf(buf, cap, "%u/%u", rl.v4, rl.v6);
}

static int get_limit_action(const dotproxy_config *cfg)
{
    return rate_limit_of(cfg).action;
}

static int get_limit_loopback(const dotproxy_config *cfg)
{
    return rate_limit_of(cfg).loopback;
}

static int apply_min_ttl(struct dpd_apply *ap, const struct dpd_value *v)
{
    ap->ttl[0] = (unsigned)v->u;
    ap->ttl_item[0] = ap->item;
    return 0;
}

static int apply_max_ttl(struct dpd_apply *ap, const struct dpd_value *v)
{
    ap->ttl[1] = (unsigned)v->u;
    ap->ttl_item[1] = ap->item;
    return 0;
}

static unsigned get_min_ttl(const dotproxy_config *cfg)
{
    unsigned lo = 0;

    dotproxy_config_get_cache_ttl(cfg, &lo, NULL);
    return lo;
}

static unsigned get_max_ttl(const dotproxy_config *cfg)
{
    unsigned hi = 0;

    dotproxy_config_get_cache_ttl(cfg, NULL, &hi);
    return hi;
}

/* -v and -q set one log level, the library's (the daemon reads it back). */
static int apply_verbose(struct dpd_apply *ap, const struct dpd_value *v)
{
    return dotproxy_config_set_log(ap->opts->cfg, NULL, NULL,
                                   v->i ? DOTPROXY_LOG_DEBUG : DOTPROXY_LOG_INFO);
}

static int get_verbose(const dotproxy_config *cfg)
{
    return dotproxy_config_get_log_level(cfg) == DOTPROXY_LOG_DEBUG;
}

static int apply_quiet(struct dpd_apply *ap, const struct dpd_value *v)
{
    return dotproxy_config_set_log(ap->opts->cfg, NULL, NULL,
                                   v->i ? DOTPROXY_LOG_ERR : DOTPROXY_LOG_INFO);
}

static int get_quiet(const dotproxy_config *cfg)
{
    return dotproxy_config_get_log_level(cfg) == DOTPROXY_LOG_ERR;
}

static int set_cache_size(dotproxy_config *cfg, unsigned n)
{
    return dotproxy_config_set_cache_size(cfg, n);
}

static unsigned get_cache_size(const dotproxy_config *cfg)
{
    return (unsigned)dotproxy_config_get_cache_size(cfg);
}

/* A list of endpoints read back from the library, ", " between them. */
static void show_endpoints(char *buf, size_t cap, const dotproxy_config *cfg,
                           int (*get)(const dotproxy_config *, size_t, dotproxy_endpoint *))
{
    dotproxy_endpoint ep;
    char text[400];
    size_t len = 0;

    buf[0] = '\0';
    for (size_t i = 0; get(cfg, i, &ep) == 0 && len < cap; i++) {
        if (dotproxy_endpoint_format(&ep, text, sizeof text) < 0)
            snprintf(text, sizeof text, "?");
        len += (size_t)snprintf(buf + len, cap - len, "%s%s", i ? ", " : "", text);
    }
}

static void show_listen(const struct dpd_options *opts, char *buf, size_t cap)
{
    show_endpoints(buf, cap, opts->cfg, dotproxy_config_get_listen);
}

static void show_listen_tls(const struct dpd_options *opts, char *buf, size_t cap)
{
    show_endpoints(buf, cap, opts->cfg, dotproxy_config_get_listen_tls);
}

static void show_upstream(const struct dpd_options *opts, char *buf, size_t cap)
{
    show_endpoints(buf, cap, opts->cfg, dotproxy_config_get_upstream);
}

/* Repeated texts, space-separated (the rules and networks hold none). */
static void show_texts(char *buf, size_t cap, const dotproxy_config *cfg,
                       const char *(*get)(const dotproxy_config *, size_t))
{
    size_t len = 0;
    const char *t;

    buf[0] = '\0';
    for (size_t i = 0; (t = get(cfg, i)) != NULL && len < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%s", i > 0 ? " " : "", t);
}

static void show_dynblock(const struct dpd_options *opts, char *buf, size_t cap)
{
    show_texts(buf, cap, opts->cfg, dotproxy_config_get_dynblock);
}

static void show_dynblock_exempt(const struct dpd_options *opts, char *buf, size_t cap)
{
    show_texts(buf, cap, opts->cfg, dotproxy_config_get_dynblock_exempt);
}

/* Nothing to state: pins have no default, the access list's is described in
 * words, and the TLS priority default is too long for a line. */
static void show_nothing(const struct dpd_options *opts, char *buf, size_t cap)
{
    if (cap > 0)
        buf[0] = '\0';
}

static void show_tls_priority(const struct dpd_options *opts, char *buf, size_t cap)
{
    const char *p = dotproxy_config_get_tls_priority(opts->cfg);

    snprintf(buf, cap, "%s", strcmp(p, DOTPROXY_TLS_PRIORITY_DEFAULT) == 0 ? "" : p);
}

/* --rpz-tsig-file: the key in a file only its owner (and group) may read,
 * like the API token file. */
static int apply_rpz_tsig_file(struct dpd_apply *ap, const struct dpd_value *v)
{
    int fd = open(v->s, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        if (fd >= 0)
            close(fd);
        ap->why = "cannot read the TSIG key file";
        return DOTPROXY_EINVAL;
    }
    if (st.st_mode & S_IROTH) {
        close(fd);
        ap->why = "the TSIG key file is readable by every user (chmod o-r)";
        return DOTPROXY_EINVAL;
    }
    char buf[1024];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0 || (size_t)n == sizeof buf - 1) {
        ap->why = "the TSIG key file is empty or too long";
        return DOTPROXY_EINVAL;
    }
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
        n--;
    buf[n] = '\0';
    int r = dotproxy_config_set_rpz_tsig(ap->opts->cfg, buf);
    explicit_bzero(buf, sizeof buf);
    if (r == DOTPROXY_EINVAL)
        ap->why = "the TSIG key file does not hold NAME:ALGORITHM:BASE64SECRET";
    return r;
}

/* The zone-transfer primaries, as typed (a change needs a restart). */
static void show_rpz_primaries(const struct dpd_options *opts, char *buf, size_t cap)
{
    size_t o = 0;
    if (cap > 0)
        buf[0] = '\0';
    for (size_t i = 0; i < dotproxy_config_rpz_primary_count(opts->cfg); i++) {
        int n = snprintf(buf + o, cap > o ? cap - o : 0, "%s%s", i > 0 ? ", " : "",
                         dotproxy_config_get_rpz_primary(opts->cfg, i));
        if (n < 0 || (size_t)n >= (cap > o ? cap - o : 0))
            break;
        o += (size_t)n;
    }
}

/* --blocklist-url: the reason in words, the value named. */
static int apply_blocklist_url(struct dpd_apply *ap, const struct dpd_value *v)
{
    int r = dotproxy_config_add_blocklist_url(ap->opts->cfg, v->s);
    if (r == DOTPROXY_EINVAL)
        ap->why = "not an https:// URL (lists are fetched over HTTPS only, with no space or "
                  "control character)";
    else if (r == DOTPROXY_ESTATE)
        ap->why = "this build has no libcurl (rebuild with libcurl4-gnutls-dev, meson -Dcurl)";
    return r;
}

/* The lists over HTTPS, as typed (a change needs a restart). */
static void show_blocklist_urls(const struct dpd_options *opts, char *buf, size_t cap)
{
    size_t o = 0;
    if (cap > 0)
        buf[0] = '\0';
    for (size_t i = 0; i < dotproxy_config_blocklist_url_count(opts->cfg); i++) {
        int n = snprintf(buf + o, cap > o ? cap - o : 0, "%s%s", i > 0 ? ", " : "",
                         dotproxy_config_get_blocklist_url(opts->cfg, i));
        if (n < 0 || (size_t)n >= (cap > o ? cap - o : 0))
            break;
        o += (size_t)n;
    }
}

/* ---- the table ---- */

#define LIB_UINT(x) .set_uint = dotproxy_config_set_##x, .get_uint = dotproxy_config_get_##x
#define LIB_INT(x)  .set_int = dotproxy_config_set_##x, .get_int = dotproxy_config_get_##x
#define LIB_STR(x)  .set_str = dotproxy_config_set_##x, .get_str = dotproxy_config_get_##x
#define FIELD(x)    .field = offsetof(struct dpd_options, x) + 1

static const struct dpd_choice selection_choices[] = {
    {"latency", DOTPROXY_SELECT_LATENCY},
    {"round-robin", DOTPROXY_SELECT_ROUND_ROBIN},
    {"ordered", DOTPROXY_SELECT_ORDERED},
    {NULL, 0},
};
static const struct dpd_choice action_choices[] = {
    {"refuse", DOTPROXY_LIMIT_REFUSE},
    {"drop", DOTPROXY_LIMIT_DROP},
    {NULL, 0},
};
static const struct dpd_choice block_action_choices[] = {
    {"nxdomain", DOTPROXY_BLOCK_NXDOMAIN},
    {"nodata", DOTPROXY_BLOCK_NODATA},
    {"refused", DOTPROXY_BLOCK_REFUSED},
    {"zero", DOTPROXY_BLOCK_ZERO},
    {NULL, 0},
};
static const struct dpd_choice log_format_choices[] = {{"text", 0}, {"json", 1}, {NULL, 0}};

/* A row per option, a few lines each, so that the whole table reads on a few
 * screens (clang-format would give each field a line of its own). */
/* clang-format off */
const struct dpd_option dpd_table[] = {
    /* ---- addresses and upstreams ---- */
    {.name = "listen", .short_name = 'l', .flags = DPD_OPT_REPEAT | DPD_OPT_RESTART,
     .section = "Addresses and upstreams", .metavar = "ADDR[@PORT]", .kind = &kind_endpoint,
     .max = DOTPROXY_LISTEN_MAX, .unit = "listen addresses", .def = "127.0.0.1@53",
     .help = "answer plain DNS here, UDP and TCP; repeatable; port 0: the kernel chooses",
     .set_str = dotproxy_config_add_listen, .show = show_listen},
    {.name = "upstream", .short_name = 'u', .flags = DPD_OPT_REPEAT, .metavar = "ADDR[@PORT][#NAME]",
     .kind = &kind_endpoint, .max = DOTPROXY_UPSTREAMS_MAX, .unit = "upstreams",
     .def = "1.0.0.1@853#cloudflare-dns.com, 1.1.1.1@853#cloudflare-dns.com",
     .help = "DNS-over-TLS resolver (port 853); repeatable",
     .set_str = dotproxy_config_add_upstream, .show = show_upstream},
    /* A pin belongs to the upstream before it: they travel together. */
    {.name = "pin", .flags = DPD_OPT_REPEAT, .metavar = "sha256/BASE64", .kind = &kind_pin,
     .max = DOTPROXY_PINS_MAX, .unit = "pins for one upstream", .with = "upstream",
     .help = "pin the SPKI of the --upstream given last before it; repeatable",
     .refused = "not a SHA-256 SPKI pin ('sha256/' and the base64 of 32 octets)",
     .apply = apply_pin, .show = show_nothing},
    /* Conditional forwarding: a zone's names go to its own upstreams. */
    {.name = "forward-zone", .flags = DPD_OPT_REPEAT, .metavar = "ZONE=UPSTREAM[,UPSTREAM...]",
     .kind = &kind_forward, .max = DOTPROXY_FORWARD_ZONES_MAX, .unit = "forward zones",
     .help = "names at or under ZONE go to these upstreams (as --upstream, or plain:ADDR[@PORT] "
             "for plain DNS, not private); the longest zone wins; repeatable",
     .apply = apply_forward_zone, .show = show_forward_zones},
    {.name = "ca-file", .metavar = "PATH", .kind = &kind_path,
     .help = "PEM trust anchors instead of the system store", LIB_STR(ca_file)},
    {.name = "tls-priority", .metavar = "STRING", .kind = &kind_priority,
     .help = "GnuTLS priority string for upstream connections (default: TLS 1.3 and 1.2, "
             "AEAD ciphers, ECDHE)",
     LIB_STR(tls_priority), .show = show_tls_priority},
    {.name = "upstream-cert", .metavar = "PATH", .kind = &kind_path,
     .help = "PEM client certificate chain presented to upstreams that require mutual TLS",
     LIB_STR(upstream_cert)},
    {.name = "upstream-key", .metavar = "PATH", .kind = &kind_path,
     .help = "PEM private key of --upstream-cert", LIB_STR(upstream_key)},
    {.name = "timeout", .metavar = "MS", .kind = &kind_uint, .min = DOTPROXY_TIMEOUT_MS_MIN,
     .max = DOTPROXY_TIMEOUT_MS_MAX, .unit = "milliseconds",
     .help = "per-query deadline, then SERVFAIL", LIB_UINT(timeout_ms)},
    {.name = "idle-timeout", .metavar = "MS", .kind = &kind_uint,
     .min = DOTPROXY_IDLE_TIMEOUT_MS_MIN, .max = DOTPROXY_IDLE_TIMEOUT_MS_MAX,
     .unit = "milliseconds", .help = "close idle upstream connections",
     LIB_UINT(idle_timeout_ms)},
    {.name = "handshake-timeout", .metavar = "MS", .kind = &kind_uint,
     .min = DOTPROXY_HANDSHAKE_TIMEOUT_MS_MIN, .max = DOTPROXY_HANDSHAKE_TIMEOUT_MS_MAX,
     .unit = "milliseconds",
     .help = "TCP connect + TLS handshake limit, or the timeout if shorter",
     LIB_UINT(handshake_timeout_ms)},
    {.name = "max-connections", .metavar = "N", .kind = &kind_uint,
     .min = DOTPROXY_MAX_CONNECTIONS_MIN, .max = DOTPROXY_MAX_CONNECTIONS_MAX,
     .help = "TLS connections per upstream", LIB_UINT(max_connections)},
    {.name = "max-inflight", .metavar = "N", .kind = &kind_uint, .min = DOTPROXY_MAX_INFLIGHT_MIN,
     .max = DOTPROXY_MAX_INFLIGHT_MAX, .help = "queries per connection, a power of two",
     .refused = "must be a power of two", LIB_UINT(max_inflight)},
    {.name = "max-queries", .metavar = "N", .kind = &kind_uint, .min = DOTPROXY_MAX_QUERIES_MIN,
     .max = DOTPROXY_MAX_QUERIES_MAX, .help = "queries waiting per worker, then SERVFAIL",
     LIB_UINT(max_queries)},
    {.name = "selection", .metavar = "POLICY", .kind = &kind_enum, .choices = selection_choices,
     .help = "latency, round-robin or ordered (failover)", LIB_INT(selection)},

    /* ---- cache and EDNS ---- */
    /* The daemon caches by default; the library leaves that to its user. */
    {.name = "cache-size", .section = "Cache and EDNS", .metavar = "N", .kind = &kind_uint,
     .max = DOTPROXY_CACHE_SIZE_MAX, .unit = "entries (0 = off)", .def = "10000",
     .help = "answer-cache entries, 0 = off; with -w N the workers share them",
     .set_uint = set_cache_size, .get_uint = get_cache_size},
    {.name = "cache-per-worker", .flags = DPD_OPT_FLAG, .kind = &kind_flag, .def = "no",
     .help = "with -w N, a cache of --cache-size entries per worker instead of a shared one",
     FIELD(cache_per_worker)},
    {.name = "cache-min-ttl", .metavar = "S", .kind = &kind_uint, .max = DOTPROXY_CACHE_TTL_MAX,
     .unit = "seconds", .help = "raise cached TTLs to at least S", .apply = apply_min_ttl,
     .get_uint = get_min_ttl},
    {.name = "cache-max-ttl", .metavar = "S", .kind = &kind_uint, .max = DOTPROXY_CACHE_TTL_MAX,
     .unit = "seconds", .help = "cap cached TTLs at S", .apply = apply_max_ttl,
     .get_uint = get_max_ttl},
    {.name = "stale-max", .metavar = "S", .kind = &kind_uint, .max = DOTPROXY_CACHE_TTL_MAX,
     .unit = "seconds (0 = off)",
     .help = "serve expired answers up to S seconds when upstreams fail (RFC 8767), 0 = off",
     LIB_UINT(stale_max_s)},
    {.name = "udp-size", .metavar = "N", .kind = &kind_uint, .min = DOTPROXY_UDP_SIZE_MIN,
     .max = DOTPROXY_UDP_SIZE_MAX, .unit = "octets",
     .help = "largest UDP answer to a client (larger: TC=1, retry over TCP)",
     LIB_UINT(udp_size)},
    {.name = "padding", .metavar = "N", .kind = &kind_uint, .max = DOTPROXY_PADDING_MAX,
     .unit = "octets (0 = off)", .help = "pad upstream queries to a multiple of N octets, 0 = off",
     LIB_UINT(padding)},
    {.name = "keep-ecs", .flags = DPD_OPT_FLAG, .kind = &kind_flag,
     .help = "forward EDNS Client Subnet (default: strip it)", LIB_INT(keep_ecs)},

    /* ---- clients ---- */
    {.name = "allow", .flags = DPD_OPT_REPEAT, .section = "Clients", .metavar = "CIDR",
     .kind = &kind_cidr, .max = DOTPROXY_ALLOW_MAX, .unit = "networks",
     .help = "who may ask; repeatable (default: loopback and private ranges)",
     .refused = "not an address or ADDR/PREFIX (e.g. 192.0.2.0/24, 2001:db8::/32)",
     .set_str = dotproxy_config_add_allow, .show = show_nothing},
    {.name = "rate-limit", .metavar = "QPS[/BURST]", .kind = &kind_qps_burst,
     .max = DOTPROXY_RATE_LIMIT_QPS_MAX, .help = "per-client token bucket, 0 = off",
     .apply = apply_rate_limit, .show = show_rate_limit},
    {.name = "rate-limit-prefix", .metavar = "V4/V6", .kind = &kind_prefixes,
     .help = "group clients by these prefix lengths", .apply = apply_prefixes,
     .show = show_prefixes},
    {.name = "rate-limit-action", .metavar = "refuse|drop", .kind = &kind_enum,
     .choices = action_choices, .help = "what a client over its limit gets",
     .apply = apply_limit_action, .get_int = get_limit_action},
    {.name = "rate-limit-loopback", .flags = DPD_OPT_FLAG, .kind = &kind_flag,
     .help = "limit loopback clients too", .apply = apply_limit_loopback,
     .get_int = get_limit_loopback},
    {.name = "max-client-queries", .metavar = "N", .kind = &kind_uint,
     .max = DOTPROXY_MAX_CLIENT_QUERIES_MAX,
     .help = "queries one client may have waiting, 0 = no cap", LIB_UINT(max_client_queries)},
    {.name = "dynblock", .flags = DPD_OPT_REPEAT | DPD_OPT_RESTART, .metavar = "RULE",
     .kind = &kind_string, .max = DOTPROXY_DYNBLOCK_RULES_MAX, .unit = "rules",
     .help = "detect and block anomalies: METRIC>THRESHOLD[,OPTION=V...]; repeatable "
             "(docs/anomaly.md)",
     .refused = "not a rule: METRIC>THRESHOLD[,window=S][,for=S][,action=log|refuse|drop|"
                "truncate][,mask=BITS], METRIC qps, nxdomain, servfail, bytes, qtype:TYPE, "
                "subdomains or tunnel",
     .set_str = dotproxy_config_add_dynblock, .show = show_dynblock},
    {.name = "dynblock-exempt", .flags = DPD_OPT_REPEAT | DPD_OPT_RESTART, .metavar = "CIDR",
     .kind = &kind_cidr, .max = DOTPROXY_DYNBLOCK_EXEMPT_MAX, .unit = "networks",
     .help = "never blocked by a dynamic block; repeatable (default: none)",
     .refused = "not an address or ADDR/PREFIX (e.g. 192.0.2.0/24, 2001:db8::/32)",
     .set_str = dotproxy_config_add_dynblock_exempt, .show = show_dynblock_exempt},
    {.name = "max-tcp-clients", .metavar = "N", .kind = &kind_uint,
     .min = DOTPROXY_MAX_TCP_CLIENTS_MIN, .max = DOTPROXY_MAX_TCP_CLIENTS_MAX,
     .help = "TCP clients per worker", LIB_UINT(max_tcp_clients)},
    {.name = "tcp-idle-timeout", .metavar = "MS", .kind = &kind_uint,
     .min = DOTPROXY_IDLE_TIMEOUT_MS_MIN, .max = DOTPROXY_IDLE_TIMEOUT_MS_MAX,
     .unit = "milliseconds", .help = "close idle TCP clients", LIB_UINT(tcp_idle_timeout_ms)},

    /* ---- DNS over TLS listener ---- */
    {.name = "listen-tls", .flags = DPD_OPT_REPEAT | DPD_OPT_RESTART,
     .section = "DNS-over-TLS listener", .metavar = "ADDR[@PORT]", .kind = &kind_endpoint,
     .max = DOTPROXY_LISTEN_TLS_MAX, .unit = "TLS listen addresses",
     .help = "answer DNS over TLS here (port 853); repeatable; needs --tls-cert and --tls-key",
     .set_str = dotproxy_config_add_listen_tls, .show = show_listen_tls},
    {.name = "tls-cert", .metavar = "PATH", .kind = &kind_path,
     .help = "PEM certificate chain of the TLS listener (rotated on change)", LIB_STR(tls_cert)},
    {.name = "tls-key", .metavar = "PATH", .kind = &kind_path,
     .help = "PEM private key of the TLS listener (rotated on change)", LIB_STR(tls_key)},
    {.name = "tls-client-ca", .metavar = "PATH", .kind = &kind_path,
     .help = "mutual TLS: require client certificates chaining to these PEM anchors",
     LIB_STR(tls_client_ca)},
    {.name = "tls-client-id", .flags = DPD_OPT_REPEAT, .metavar = "ID", .kind = &kind_string,
     .max = DOTPROXY_TLS_CLIENT_IDS_MAX, .unit = "client IDs",
     .help = "with --tls-client-ca, accept only a client whose subjectAltName (DNS, URI such as "
             "spiffe://..., or IP) is ID; repeatable",
     .set_str = dotproxy_config_add_tls_client_id, .show = show_nothing},
    {.name = "tls-idle-timeout", .metavar = "MS", .kind = &kind_uint,
     .min = DOTPROXY_IDLE_TIMEOUT_MS_MIN, .max = DOTPROXY_IDLE_TIMEOUT_MS_MAX,
     .unit = "milliseconds", .help = "close idle TLS clients; told to clients (edns-tcp-keepalive)",
     LIB_UINT(tls_idle_timeout_ms)},

    /* ---- blocking ---- */
    {.name = "blocklist", .flags = DPD_OPT_REPEAT, .section = "Blocking", .metavar = "PATH",
     .kind = &kind_path, .max = DOTPROXY_BLOCKLISTS_MAX, .unit = "blocklists",
     .help = "block the names in PATH and every name below them (domain list, hosts file or "
             "adblock ||name^ rules); repeatable",
     .set_str = dotproxy_config_add_blocklist, .show = show_nothing},
    {.name = "allowlist", .flags = DPD_OPT_REPEAT, .metavar = "PATH", .kind = &kind_path,
     .max = DOTPROXY_BLOCKLISTS_MAX, .unit = "allowlists",
     .help = "never block the names in PATH nor any name below them; repeatable",
     .set_str = dotproxy_config_add_allowlist, .show = show_nothing},
    {.name = "rpz", .flags = DPD_OPT_REPEAT, .metavar = "PATH", .kind = &kind_path,
     .max = DOTPROXY_BLOCKLISTS_MAX, .unit = "response policy zones",
     .help = "apply the Response Policy Zone in PATH (master-file format); repeatable, the "
             "first zone with a rule decides",
     .set_str = dotproxy_config_add_rpz, .show = show_nothing},
    {.name = "rpz-primary", .flags = DPD_OPT_REPEAT | DPD_OPT_RESTART,
     .metavar = "ADDR[@PORT][/TLSNAME]#ZONE", .kind = &kind_string, .max = DOTPROXY_FEEDS_MAX,
     .unit = "zone-transfer feeds",
     .help = "pull the RPZ ZONE from the primary ADDR by AXFR/IXFR, refreshed on its SOA timers "
             "and on NOTIFY from ADDR; /TLSNAME: over TLS (XoT, port 853), the certificate "
             "checked for TLSNAME; repeatable",
     .set_str = dotproxy_config_add_rpz_primary, .show = show_rpz_primaries},
    {.name = "rpz-tsig", .flags = DPD_OPT_RESTART, .metavar = "NAME:ALGORITHM:BASE64SECRET",
     .kind = &kind_string,
     .help = "TSIG key (hmac-sha1, hmac-sha256, hmac-sha512) signing transfers and NOTIFY of "
             "--rpz-primary feeds",
     .refused = "not a TSIG key NAME:ALGORITHM:BASE64SECRET",
     .set_str = dotproxy_config_set_rpz_tsig, .show = show_nothing},
    {.name = "rpz-tsig-file", .flags = DPD_OPT_RESTART, .metavar = "PATH", .kind = &kind_path,
     .help = "read the --rpz-tsig key from PATH (not readable by every user)",
     .apply = apply_rpz_tsig_file, .show = show_nothing},
    {.name = "blocklist-url", .flags = DPD_OPT_REPEAT | DPD_OPT_RESTART, .metavar = "URL",
     .kind = &kind_string, .max = DOTPROXY_BLOCKLIST_URLS_MAX, .unit = "lists over HTTPS",
     .help = "fetch a blocklist from an https:// URL (verified against --ca-file or the system "
             "store), refreshed every --feed-refresh seconds; repeatable",
     .apply = apply_blocklist_url, .show = show_blocklist_urls},
    {.name = "feed-refresh", .flags = DPD_OPT_RESTART, .metavar = "S", .kind = &kind_uint,
     .min = DOTPROXY_FEED_REFRESH_MIN, .max = DOTPROXY_FEED_REFRESH_MAX, .unit = "seconds",
     .help = "fetch each --blocklist-url list every S seconds (+-10%), sooner after a failure "
             "(backoff from 30 s)",
     LIB_UINT(feed_refresh_s)},
    {.name = "feed-max-size", .flags = DPD_OPT_RESTART, .metavar = "OCTETS", .kind = &kind_uint,
     .min = DOTPROXY_FEED_MAX_SIZE_MIN, .max = DOTPROXY_FEED_MAX_SIZE_MAX, .unit = "octets",
     .help = "refuse a --blocklist-url body longer than OCTETS (the list in force stays)",
     LIB_UINT(feed_max_size)},
    {.name = "state-dir", .flags = DPD_OPT_RESTART, .metavar = "PATH", .kind = &kind_string,
     .help = "where the last good copy of each feed is kept and read at start",
     LIB_STR(state_dir)},
    {.name = "block-action", .metavar = "ACTION", .kind = &kind_enum,
     .choices = block_action_choices,
     .help = "answer to a blocklisted name: nxdomain, nodata, refused or zero (0.0.0.0, ::)",
     LIB_INT(block_action)},
    {.name = "block-ttl", .metavar = "S", .kind = &kind_uint, .max = DOTPROXY_BLOCK_TTL_MAX,
     .unit = "seconds", .help = "TTL of the SOA (and zero answers) in block answers",
     LIB_UINT(block_ttl)},
    {.name = "blocklist-check", .metavar = "S", .kind = &kind_uint,
     .max = DOTPROXY_BLOCKLIST_CHECK_MAX, .unit = "seconds (0 = never)",
     .help = "reload lists whose file changed, looked at every S seconds, 0 = never",
     LIB_UINT(blocklist_check_s)},

    /* ---- process ---- */
    {.name = "workers", .short_name = 'w', .flags = DPD_OPT_RESTART, .section = "Process",
     .metavar = "N", .kind = &kind_uint, .min = 1, .max = DPD_MAX_WORKERS, .def = "1",
     .help = "N independent contexts in N threads, SO_REUSEPORT", FIELD(workers)},
    {.name = "user", .flags = DPD_OPT_RESTART, .metavar = "NAME", .kind = &kind_user,
     .help = "switch to user NAME after binding (root only)", FIELD(user)},
    /* One log level: -q on the command line beats "verbose = yes". */
    {.name = "verbose", .short_name = 'v', .flags = DPD_OPT_FLAG, .kind = &kind_flag,
     .help = "log debug lines too", .apply = apply_verbose, .get_int = get_verbose},
    {.name = "quiet", .short_name = 'q', .flags = DPD_OPT_FLAG, .kind = &kind_flag,
     .with = "verbose", .help = "log errors only", .apply = apply_quiet, .get_int = get_quiet},
    {.name = "log-format", .flags = DPD_OPT_RESTART, .metavar = "text|json", .kind = &kind_enum,
     .choices = log_format_choices, .def = "text", .help = "log line format",
     FIELD(log_json)},
    {.name = "log-queries", .metavar = "N", .kind = &kind_uint, .max = 1000000,
     .unit = "lines per second (0 = off)", .def = "0",
     .help = "log each answer, at most N lines/s per worker; 0 = off: queries are private",
     FIELD(log_queries)},
    {.name = "dnstap", .flags = DPD_OPT_RESTART, .metavar = "SOCKET", .kind = &kind_dnstap,
     .help = "log every message as dnstap to unix:PATH or tcp:ADDR@PORT", FIELD(dnstap)},
    {.name = "syslog", .flags = DPD_OPT_FLAG | DPD_OPT_RESTART, .kind = &kind_flag, .def = "no",
     .help = "log to syslog instead of stderr", FIELD(log_syslog)},
    {.name = "metrics", .flags = DPD_OPT_RESTART, .metavar = "[ADDR@]PORT", .kind = &kind_metrics,
     .help = "HTTP metrics and API server (ADDR default 127.0.0.1)", FIELD(metrics)},
    {.name = "metrics-host", .flags = DPD_OPT_RESTART, .metavar = "NAME[,NAME...]",
     .kind = &kind_string,
     .help = "Host names the status page and API answer to, besides IP literals and localhost",
     FIELD(metrics_host)},
    {.name = "api-token-file", .flags = DPD_OPT_RESTART, .metavar = "PATH", .kind = &kind_path,
     .help = "bearer token for the mutating API calls", FIELD(api_token_file)},

    /* ---- the command line only ---- */
    {.name = "config", .short_name = 'c', .flags = DPD_OPT_CLI_ONLY, .metavar = "PATH",
     .kind = &kind_none, .action = DPD_ACT_CONFIG,
     .help = "read options from PATH (the command line wins)"},
    {.name = "check-config", .flags = DPD_OPT_CLI_ONLY | DPD_OPT_FLAG, .kind = &kind_none,
     .action = DPD_ACT_CHECK_CONFIG,
     .help = "check the configuration, print 'configuration OK'"},
    {.name = "version", .flags = DPD_OPT_CLI_ONLY | DPD_OPT_FLAG, .kind = &kind_none,
     .action = DPD_ACT_VERSION, .help = "print the version"},
    {.name = "help", .flags = DPD_OPT_CLI_ONLY | DPD_OPT_FLAG, .kind = &kind_none,
     .action = DPD_ACT_HELP, .help = "print this help"},
    /* For tests/docs/check_docs.py: the table, machine-readable. */
    {.name = "dump-options", .flags = DPD_OPT_CLI_ONLY | DPD_OPT_FLAG | DPD_OPT_HIDDEN,
     .kind = &kind_none, .action = DPD_ACT_DUMP, .help = "the option table, one line each"},
};
/* clang-format on */

const size_t dpd_table_len = sizeof dpd_table / sizeof dpd_table[0];

/* ---- using the table ---- */

int dpd_table_find(const char *name)
{
    for (size_t i = 0; i < dpd_table_len; i++) {
        if (strcmp(dpd_table[i].name, name) == 0)
            return (int)i;
    }
    return -1;
}

int dpd_table_group(int id)
{
    int with = dpd_table[id].with != NULL ? dpd_table_find(dpd_table[id].with) : -1;

    return with >= 0 ? with : id;
}

void dpd_apply_init(struct dpd_apply *ap, struct dpd_options *opts)
{
    memset(ap, 0, sizeof *ap);
    ap->opts = opts;
    dotproxy_config_get_cache_ttl(opts->cfg, &ap->ttl[0], &ap->ttl[1]);
}

static void *field_of(struct dpd_options *opts, const struct dpd_option *o)
{
    return (char *)opts + o->field - 1;
}

/* "127.0.0.1:5353" is the most common slip in an ADDR[@PORT] value: say
 * where the port goes, with the value as it should have been written. */
static void port_hint(const char *s, char *why, size_t cap)
{
    const char *colon = strrchr(s, ':');
    size_t digits = colon != NULL ? strspn(colon + 1, "0123456789") : 0;

    if (colon == NULL || strchr(s, '@') != NULL || digits == 0 || colon[1 + digits] != '\0' ||
        (memchr(s, ':', (size_t)(colon - s)) != NULL && s[0] != '['))
        return; /* not ADDR:PORT (an IPv6 literal has colons of its own) */
    size_t alen = (size_t)(colon - s);
    if (s[0] == '[' && alen >= 2 && s[alen - 1] == ']')
        snprintf(why, cap, "%s; the port goes after '@': '%.*s@%s'",
                 dotproxy_strerror(DOTPROXY_EADDR), (int)(alen - 2), s + 1, colon + 1);
    else
        snprintf(why, cap, "%s; the port goes after '@': '%.*s@%s'",
                 dotproxy_strerror(DOTPROXY_EADDR), (int)alen, s, colon + 1);
}

int dpd_table_apply(struct dpd_apply *ap, int id, const struct dpd_value *v, char *why, size_t cap)
{
    const struct dpd_option *o = &dpd_table[id];
    dotproxy_config *cfg = ap->opts->cfg;
    int r = 0;

    why[0] = '\0';
    ap->why = NULL;
    if (o->apply != NULL)
        r = o->apply(ap, v);
    else if (o->set_uint != NULL)
        r = o->set_uint(cfg, (unsigned)v->u);
    else if (o->set_int != NULL)
        r = o->set_int(cfg, v->i);
    else if (o->set_str != NULL)
        r = o->set_str(cfg, v->s);
    else if (o->kind->store == DPD_STORE_UINT)
        *(unsigned *)field_of(ap->opts, o) = (unsigned)v->u;
    else if (o->kind->store == DPD_STORE_INT)
        *(int *)field_of(ap->opts, o) = v->i;
    else
        *(const char **)field_of(ap->opts, o) = v->s;
    if (r == 0)
        return 0;
    if (ap->why != NULL)
        snprintf(why, cap, "%s", ap->why);
    else if (r == DOTPROXY_ELIMIT && (o->flags & DPD_OPT_REPEAT))
        snprintf(why, cap, "more than %lu %s", o->max, o->unit);
    else if ((r == DOTPROXY_EINVAL || r == DOTPROXY_EADDR) && o->refused != NULL &&
             o->kind->store == DPD_STORE_UINT)
        snprintf(why, cap, "%s from %lu to %lu", o->refused, o->min, o->max);
    else if ((r == DOTPROXY_EINVAL || r == DOTPROXY_EADDR) && o->refused != NULL)
        snprintf(why, cap, "%s", o->refused);
    else if (r == DOTPROXY_EADDR && o->kind == &kind_endpoint)
        port_hint(v->s, why, cap);
    return r;
}

int dpd_table_finish(struct dpd_apply *ap, char *why, size_t cap)
{
    char lo[300], hi[300];
    int r;

    if (ap->ttl[0] > ap->ttl[1]) {
        if (ap->ttl_item[0] != NULL)
            dpd_item_origin(ap->ttl_item[0], lo, sizeof lo);
        else
            snprintf(lo, sizeof lo, "cache-min-ttl (default)");
        if (ap->ttl_item[1] != NULL)
            dpd_item_origin(ap->ttl_item[1], hi, sizeof hi);
        else
            snprintf(hi, sizeof hi, "cache-max-ttl (default)");
        snprintf(why, cap, "%s %u is above %s %u", lo, ap->ttl[0], hi, ap->ttl[1]);
        return -1;
    }
    r = dotproxy_config_set_cache_ttl(ap->opts->cfg, ap->ttl[0], ap->ttl[1]);
    if (r != 0) {
        snprintf(why, cap, "cache-min-ttl %u, cache-max-ttl %u: %s", ap->ttl[0], ap->ttl[1],
                 dotproxy_strerror(r));
        return -1;
    }
    return 0;
}

static const char *choice_name(const struct dpd_choice *c, int value)
{
    for (; c->name != NULL; c++) {
        if (c->value == value)
            return c->name;
    }
    return "?";
}

void dpd_table_show(const struct dpd_options *opts, int id, char *buf, size_t cap)
{
    const struct dpd_option *o = &dpd_table[id];
    const char *s = NULL;
    int i;

    if (o->show != NULL) {
        o->show(opts, buf, cap);
        return;
    }
    if (o->get_uint != NULL) {
        snprintf(buf, cap, "%u", o->get_uint(opts->cfg));
        return;
    }
    if (o->get_str != NULL) {
        s = o->get_str(opts->cfg);
    } else if (o->get_int != NULL || (o->field != 0 && o->kind->store == DPD_STORE_INT)) {
        i = o->get_int != NULL ? o->get_int(opts->cfg)
                               : *(const int *)((const char *)opts + o->field - 1);
        s = o->choices != NULL ? choice_name(o->choices, i) : i ? "yes" : "no";
    } else if (o->field != 0 && o->kind->store == DPD_STORE_UINT) {
        snprintf(buf, cap, "%u", *(const unsigned *)((const char *)opts + o->field - 1));
        return;
    } else if (o->field != 0) {
        s = *(const char *const *)((const char *)opts + o->field - 1);
    }
    snprintf(buf, cap, "%s", s != NULL ? s : "");
}

void dpd_item_origin(const struct dpd_item *it, char *buf, size_t cap)
{
    if (it->file != NULL)
        snprintf(buf, cap, "%s:%u: %s", it->file, it->line, dpd_table[it->id].name);
    else
        snprintf(buf, cap, "--%s", dpd_table[it->id].name);
}
