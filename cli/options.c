/* SPDX-License-Identifier: MIT */
/* dotproxyd: command-line and configuration-file parsing, driven by the
 * option table (option_table.c). Every message names the option (or the
 * file, line and key), the value as typed and what is wrong with it, so that
 * the operator can fix the unit file, the container spec or the
 * configuration file without reading the source.
 *
 * Both sources are first collected as a list of (option, value, origin)
 * items; the file's items for an option the command line also gives are
 * dropped; what is left is applied in order to a fresh configuration: the
 * library's defaults, then the daemon's own (from the table). So the command
 * line wins, a repeated command-line option replaces the file's list, and one
 * code path checks a value wherever it came from. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config_file.h"
#include "option_table.h"
#include "options.h"

#define TOKEN_FILE_MAX 4096
#define SHOW_MAX       512 /* a value as dpd_table_show() prints it */

/* ---- errors ---- */

/* Set while dpd_options_reparse() runs: see take(). */
static int reparsing;

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
static void bad(const struct dpd_item *it, const char *why)
{
    const struct dpd_option *o = &dpd_table[it->id];

    if (it->file != NULL)
        set_error("%s:%u: %s = '%s': %s", it->file, it->line, o->name, it->value, why);
    else if (o->flags & DPD_OPT_FLAG)
        set_error("--%s: %s", o->name, why);
    else
        set_error("--%s '%s': %s", o->name, it->value, why);
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

/* ---- one value ---- */

/* Parse an item's value by its row's kind and apply it: 0, or -1 with the
 * error set. */
static int take(struct dpd_apply *ap, const struct dpd_item *it)
{
    const struct dpd_option *o = &dpd_table[it->id];
    struct dpd_value v = {0};
    char why[512] = "";
    int r;

    if (reparsing && (o->flags & DPD_OPT_RESTART) && o->kind->names_file) {
        /* On a reload the daemon keeps what a restart-only file gave it at
         * start (the API token, read before --user dropped the right to
         * read it): the path is compared, not used, so the file is not
         * opened again. */
        v.s = it->value;
    } else if (o->kind->parse(o, it->value, &v, why, sizeof why) != 0) {
        bad(it, why);
        return -1;
    }
    ap->item = it;
    r = dpd_table_apply(ap, it->id, &v, why, sizeof why);
    ap->item = NULL;
    if (r == DOTPROXY_ENOMEM)
        nomem();
    else if (r != 0)
        bad(it, why[0] != '\0' ? why : dotproxy_strerror(r));
    return r == 0 ? 0 : -1;
}

/* A row's default from the table, as a command-line item would give it. A
 * list's items ("a, b") are copied out one by one: they go to the library,
 * which keeps its own copy; a single value is the table's own string. */
static int take_default(struct dpd_apply *ap, int id)
{
    const char *def = dpd_table[id].def;
    char value[SHOW_MAX];

    while (def != NULL && *def != '\0') {
        const char *comma = strstr(def, ", ");
        size_t len = comma != NULL ? (size_t)(comma - def) : strlen(def);
        struct dpd_item it = {.id = id, .value = comma != NULL ? value : def};

        snprintf(value, sizeof value, "%.*s", (int)len, def);
        if (take(ap, &it) != 0)
            return -1;
        def = comma != NULL ? comma + 2 : def + len;
    }
    return 0;
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
    unsigned *seen_line; /* per row: line of a single-valued key, 0 = not yet */
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

/* A long value (a TLS priority string) split over lines: the pieces are
 * joined as they are, with no separator. The previous item's value is the
 * last string kept. */
static int continue_value(struct file_parse *fp, const char *value)
{
    char **last = &fp->opts->strings[fp->opts->n_strings - 1];
    size_t a = strlen(*last), b = strlen(value);
    char *joined = realloc(*last, a + b + 1);

    if (joined == NULL)
        return -1;
    memcpy(joined + a, value, b + 1);
    *last = joined;
    fp->items[fp->n - 1].value = joined;
    return 0;
}

static int on_file_key(void *user, const char *key, const char *value, unsigned line,
                       int continuation, char *why, size_t whylen)
{
    struct file_parse *fp = user;
    struct dpd_item it = {.file = fp->path, .line = line};
    int id;

    if (continuation && fp->n > 0) {
        if (continue_value(fp, value) == 0)
            return 0;
        snprintf(why, whylen, "out of memory");
        return -1;
    }
    id = dpd_table_find(key);
    if (id < 0 || (dpd_table[id].flags & DPD_OPT_HIDDEN)) {
        snprintf(why, whylen, "unknown key '%s'", key);
        return -1;
    }
    if (dpd_table[id].flags & DPD_OPT_CLI_ONLY) {
        snprintf(why, whylen, "'%s' is a command-line option, not a file key", key);
        return -1;
    }
    if (!(dpd_table[id].flags & DPD_OPT_REPEAT)) {
        if (fp->seen_line[id] != 0) {
            snprintf(why, whylen, "'%s' is already set on line %u", key, fp->seen_line[id]);
            return -1;
        }
        fp->seen_line[id] = line;
    }
    if (keep_string(fp->opts, strdup(value)) != 0) {
        snprintf(why, whylen, "out of memory");
        return -1;
    }
    it.id = id;
    it.value = fp->opts->strings[fp->opts->n_strings - 1];
    if (add_item(&fp->items, &fp->n, &it) != 0) {
        snprintf(why, whylen, "out of memory");
        return -1;
    }
    return 0;
}

/* ---- building options from items ---- */

/* An empty opts with the library's defaults and then the daemon's own for
 * single-valued options (a list's default is taken only when no value is
 * given: see build()). 0 or -1 (error set). */
static int start_options(struct dpd_options *opts, struct dpd_apply *ap)
{
    memset(opts, 0, sizeof *opts);
    if (dotproxy_config_new(&opts->cfg) != 0) {
        nomem();
        return -1;
    }
    dpd_apply_init(ap, opts);
    for (size_t id = 0; id < dpd_table_len; id++) {
        if (!(dpd_table[id].flags & DPD_OPT_REPEAT) && take_default(ap, (int)id) != 0)
            return -1;
    }
    return 0;
}

/* Apply items in order (skipping those whose group the command line gives,
 * when cli_groups is set), counting each option's values in given. */
static int take_items(struct dpd_apply *ap, const struct dpd_item *items, size_t n,
                      const int *cli_groups, unsigned *given)
{
    for (size_t i = 0; i < n; i++) {
        if (cli_groups != NULL && cli_groups[dpd_table_group(items[i].id)])
            continue;
        if (take(ap, &items[i]) != 0)
            return -1;
        given[items[i].id]++;
    }
    return 0;
}

/* The lists nobody gave get their default, then the settings applied
 * together are applied. */
static int finish_options(struct dpd_apply *ap, const unsigned *given)
{
    char why[1024];

    for (size_t id = 0; id < dpd_table_len; id++) {
        if ((dpd_table[id].flags & DPD_OPT_REPEAT) && given[id] == 0 &&
            take_default(ap, (int)id) != 0)
            return -1;
    }
    if (dpd_table_finish(ap, why, sizeof why) != 0) {
        set_error("%s", why);
        return -1;
    }
    return 0;
}

/* Every value in the file must be valid, even one the command line
 * overrides: --check-config vouches for the file, and the next start may
 * come without that command line. So the file alone is applied to scratch
 * options first. 0 or -1 (error set). */
static int check_file_alone(const struct file_parse *fp, unsigned *given)
{
    struct dpd_options scratch;
    struct dpd_apply ap;
    int rc = -1;

    if (start_options(&scratch, &ap) == 0 && take_items(&ap, fp->items, fp->n, NULL, given) == 0 &&
        finish_options(&ap, given) == 0)
        rc = 0;
    dotproxy_config_free(scratch.cfg);
    memset(given, 0, dpd_table_len * sizeof *given);
    return rc;
}

/* Apply the file's items (minus the groups the command line gives) and then
 * the command line's to a fresh opts. 0 or -1 (error set). */
static int build(struct dpd_options *opts, const struct dpd_item *cli, size_t n_cli,
                 const char *config_path, int check_config)
{
    struct file_parse fp = {.opts = opts, .path = config_path};
    struct dpd_apply ap;
    unsigned *given = calloc(dpd_table_len, sizeof *given);
    int *cli_groups = calloc(dpd_table_len, sizeof *cli_groups);
    int rc = -1;

    memset(opts, 0, sizeof *opts); /* released by the caller on failure */
    fp.seen_line = calloc(dpd_table_len, sizeof *fp.seen_line);
    if (given == NULL || cli_groups == NULL || fp.seen_line == NULL) {
        nomem();
        goto out;
    }
    if (start_options(opts, &ap) != 0)
        goto out;
    opts->config_path = config_path;
    opts->check_config = check_config;
    if (n_cli > 0) {
        opts->cli = malloc(n_cli * sizeof *cli);
        if (opts->cli == NULL) {
            nomem();
            goto out;
        }
        memcpy(opts->cli, cli, n_cli * sizeof *cli);
        opts->n_cli = n_cli;
    }
    if (config_path != NULL) {
        char why[1024];

        if (dpd_config_file_read(config_path, on_file_key, &fp, why, sizeof why) != 0) {
            set_error("%s", why);
            goto out;
        }
        if (check_file_alone(&fp, given) != 0)
            goto out;
    }
    for (size_t i = 0; i < n_cli; i++)
        cli_groups[dpd_table_group(cli[i].id)] = 1;
    if (take_items(&ap, fp.items, fp.n, cli_groups, given) == 0 &&
        take_items(&ap, cli, n_cli, NULL, given) == 0 && finish_options(&ap, given) == 0)
        rc = 0;
out:
    free(fp.items);
    free(fp.seen_line);
    free(given);
    free(cli_groups);
    return rc;
}

/* ---- the command line ---- */

/* getopt values of long-only options: above any char. */
#define LONG_BASE 256

static void usage_message(const char *msg)
{
    fprintf(stderr, "dotproxyd: %s\nTry 'dotproxyd --help' for more information.\n", msg);
}

/* getopt_long's tables from the option table. Leading ':' makes getopt
 * report a missing value as ':' (distinct from an unknown option) and keeps
 * it quiet: we print our own messages. */
static struct option *make_getopt(char *shorts, size_t cap)
{
    struct option *longs = calloc(dpd_table_len + 1, sizeof *longs);
    size_t n = 0;

    if (longs == NULL)
        return NULL;
    shorts[n++] = ':';
    for (size_t i = 0; i < dpd_table_len; i++) {
        const struct dpd_option *o = &dpd_table[i];

        longs[i].name = o->name;
        longs[i].has_arg = (o->flags & DPD_OPT_FLAG) ? no_argument : required_argument;
        longs[i].val = o->short_name != 0 ? o->short_name : LONG_BASE + (int)i;
        if (o->short_name != 0 && n + 3 < cap) {
            shorts[n++] = o->short_name;
            if (!(o->flags & DPD_OPT_FLAG))
                shorts[n++] = ':';
        }
    }
    shorts[n] = '\0';
    return longs;
}

static int id_of(int c)
{
    if (c == 0)
        return -1;
    if (c >= LONG_BASE)
        return c - LONG_BASE;
    for (size_t i = 0; i < dpd_table_len; i++) {
        if (dpd_table[i].short_name == c)
            return (int)i;
    }
    return -1;
}

/* getopt's complaint as a message: a missing value, an unknown option, or
 * a value given to a flag. */
static void getopt_message(int c, char **argv, char *msg, size_t cap)
{
    /* A long option is reported as typed (it may carry "=value"); an
     * unknown short one by its letter, as it may sit in a cluster like
     * "-vx". */
    const char *arg = argv[optind - 1];
    const char *eq = strchr(arg, '=');
    int id = id_of(optopt);

    if (c == ':' && id >= 0)
        snprintf(msg, cap, "option '--%s' needs a value", dpd_table[id].name);
    else if (c == ':')
        snprintf(msg, cap, "option '%s' needs a value", arg);
    else if (strncmp(arg, "--", 2) == 0 && eq != NULL && optopt != 0)
        snprintf(msg, cap, "option '%.*s' takes no value", (int)(eq - arg), arg);
    else if (optopt == 0 || strncmp(arg, "--", 2) == 0)
        snprintf(msg, cap, "unknown option '%s'", arg);
    else
        snprintf(msg, cap, "unknown option '-%c'", optopt);
}

/* What the command line asked for besides option values. */
struct cli_request {
    const char *config_path;
    int check_config;
    enum dpd_cli_action serve; /* --version, --help or --dump-options: print and exit */
};

/* The command line as items. Returns 0 to go on, or the exit status with
 * *done set (an error already printed, or nothing to run). */
static int collect_cli(int argc, char **argv, struct dpd_item **items, size_t *n,
                       struct cli_request *req, int *done)
{
    char msg[512], shorts[64];
    struct option *longs = make_getopt(shorts, sizeof shorts);
    int c, status = 0;

    *done = 1;
    if (longs == NULL) {
        nomem();
        return DPD_EXIT_RUNTIME;
    }
    opterr = 0;
    optind = 1;
    /* --version, --help and --dump-options are served as soon as seen, as
     * the tools they imitate do: what follows them is not looked at. */
    while (status == 0 && req->serve == DPD_ACT_NONE &&
           (c = getopt_long(argc, argv, shorts, longs, NULL)) != -1) {
        struct dpd_item it = {.id = id_of(c)};

        if (c == ':' || c == '?') {
            getopt_message(c, argv, msg, sizeof msg);
            usage_message(msg);
            status = DPD_EXIT_USAGE;
            continue;
        }
        switch (dpd_table[it.id].action) {
        case DPD_ACT_CONFIG: req->config_path = optarg; continue;
        case DPD_ACT_CHECK_CONFIG: req->check_config = 1; continue;
        case DPD_ACT_NONE: break;
        default: req->serve = dpd_table[it.id].action; continue;
        }
        it.value = (dpd_table[it.id].flags & DPD_OPT_FLAG) ? "yes" : optarg;
        if (add_item(items, n, &it) != 0)
            status = DPD_EXIT_RUNTIME;
    }
    free(longs);
    if (status == 0 && req->serve == DPD_ACT_NONE && optind < argc) {
        snprintf(msg, sizeof msg,
                 "unexpected argument '%s' (options take their values as '-l ADDR')", argv[optind]);
        usage_message(msg);
        status = DPD_EXIT_USAGE;
    }
    *done = status != 0 || req->serve != DPD_ACT_NONE;
    return status;
}

/* --version, --help, --dump-options. */
static int serve(enum dpd_cli_action what)
{
    int r = 0;

    if (what == DPD_ACT_VERSION)
        printf("dotproxyd %s\n", dotproxy_version());
    else if (what == DPD_ACT_HELP)
        r = dpd_options_usage(stdout);
    else
        r = dpd_options_dump(stdout);
    return r == 0 && fflush(stdout) == 0 ? DPD_EXIT_OK : DPD_EXIT_RUNTIME;
}

enum dpd_parse_result dpd_options_parse(struct dpd_options *opts, int argc, char **argv,
                                        int *status)
{
    char err[1536];
    struct dpd_item *items = NULL;
    struct cli_request req = {0};
    size_t n = 0;
    int done = 0;

    memset(opts, 0, sizeof *opts);
    err_buf = err;
    err_cap = sizeof err;
    err_set = err_nomem = 0;
    *status = collect_cli(argc, argv, &items, &n, &req, &done);
    if (done && *status == 0)
        *status = serve(req.serve);
    if (!done && build(opts, items, n, req.config_path, req.check_config) != 0) {
        if (!err_nomem)
            usage_message(err);
        *status = err_nomem ? DPD_EXIT_RUNTIME : DPD_EXIT_USAGE;
        dpd_options_release(opts);
        done = 1;
    }
    if (err_nomem)
        fprintf(stderr, "dotproxyd: out of memory\n");
    free(items);
    return done ? DPD_PARSE_EXIT : DPD_PARSE_RUN;
}

int dpd_options_reparse(struct dpd_options *out, const struct dpd_options *cur, char *err,
                        size_t errlen)
{
    err_buf = err;
    err_cap = errlen;
    err_set = err_nomem = 0;
    reparsing = 1;
    int r = build(out, cur->cli, cur->n_cli, cur->config_path, cur->check_config);
    reparsing = 0;
    if (r != 0) {
        dpd_options_release(out);
        return -1;
    }
    return 0;
}

/* ---- --help and --dump-options, from the table ---- */

/* The options with every default applied, to read the defaults back. 0, or
 * -1 with the reason in err. */
static int defaults(struct dpd_options *opts, char *err, size_t errlen)
{
    err_buf = err;
    err_cap = errlen;
    err_set = err_nomem = 0;
    if (build(opts, NULL, 0, NULL, 0) != 0) {
        dpd_options_release(opts);
        return -1;
    }
    return 0;
}

/* Print text from column `col` on, wrapped at word boundaries before column
 * 80, later lines starting at column 37. */
static void print_wrapped(FILE *out, size_t col, const char *text)
{
    const size_t indent = 37, width = 80;

    while (*text != '\0') {
        size_t room = col < width ? width - col : 1, len = strlen(text), cut = len;

        if (len > room) {
            for (cut = room; cut > 0 && text[cut] != ' '; cut--)
                ;
            if (cut == 0) /* one long word: let it run over */
                cut = strcspn(text, " ");
        }
        fprintf(out, "%.*s\n", (int)cut, text);
        text += cut;
        while (*text == ' ')
            text++;
        if (*text != '\0')
            fprintf(out, "%*s", (int)indent, "");
        col = indent;
    }
}

/* One option's --help entry: flags and value, the help text, then its range
 * and default as the table and the library have them. */
static void usage_row(FILE *out, const struct dpd_options *defs, int id)
{
    const struct dpd_option *o = &dpd_table[id];
    char left[128], flag[4] = "   ", def[SHOW_MAX] = "", range[64] = "", text[1024];
    int col;

    if (o->short_name != 0)
        snprintf(flag, sizeof flag, "-%c,", o->short_name);
    col = snprintf(left, sizeof left, "  %s --%s%s%s", flag, o->name, o->metavar ? " " : "",
                   o->metavar ? o->metavar : "");
    if (!(o->flags & (DPD_OPT_FLAG | DPD_OPT_CLI_ONLY)))
        dpd_table_show(defs, id, def, sizeof def);
    if (o->kind->store == DPD_STORE_UINT && !(o->flags & DPD_OPT_REPEAT) && o->max > 0)
        snprintf(range, sizeof range, "%lu..%lu", o->min, o->max);
    if (range[0] == '\0' && def[0] == '\0')
        snprintf(text, sizeof text, "%s", o->help);
    else
        snprintf(text, sizeof text, "%s (%s%s%s%s)", o->help, range, range[0] && def[0] ? ", " : "",
                 def[0] ? "default " : "", def);
    fprintf(out, "%s%*s", left, col < 37 ? 37 - col : 2, "");
    print_wrapped(out, (size_t)(col < 37 ? 37 : col + 2), text);
}

int dpd_options_usage(FILE *out)
{
    struct dpd_options defs;
    char err[512];

    if (defaults(&defs, err, sizeof err) != 0) {
        fprintf(stderr, "dotproxyd: cannot read the defaults: %s\n", err);
        return -1;
    }
    fputs("Usage: dotproxyd [OPTIONS]\n"
          "Forward plain DNS (UDP and TCP) to DNS-over-TLS upstreams (RFC 7858).\n",
          out);
    for (size_t id = 0; id < dpd_table_len; id++) {
        if (dpd_table[id].flags & DPD_OPT_HIDDEN)
            continue;
        if (dpd_table[id].section != NULL)
            fprintf(out, "\n%s:\n", dpd_table[id].section);
        else if (id > 0 && (dpd_table[id].flags & DPD_OPT_CLI_ONLY) &&
                 !(dpd_table[id - 1].flags & DPD_OPT_CLI_ONLY))
            fprintf(out, "\nCommand line only:\n");
        usage_row(out, &defs, (int)id);
    }
    fputs("\n"
          "IPv6 addresses may be written in brackets: [::1]@5353. A listen PORT of 0\n"
          "lets the kernel choose; the startup line shows the port bound. Without #NAME the\n"
          "upstream's certificate must carry ADDR as an IP address. In the file, each key is\n"
          "a long option name: 'upstream = 9.9.9.9#dns.quad9.net', 'keep-ecs = yes'.\n"
          "SIGHUP re-reads the file. Exit status: 0 after SIGTERM/SIGINT, 1 on a runtime\n"
          "failure, 2 on a usage or configuration error.\n",
          out);
    dpd_options_release(&defs);
    return 0;
}

int dpd_options_dump(FILE *out)
{
    static const char *const flag_names[] = {"repeat", "flag", "cli", "restart", "hidden"};
    struct dpd_options defs;
    char err[512];

    if (defaults(&defs, err, sizeof err) != 0) {
        fprintf(stderr, "dotproxyd: cannot read the defaults: %s\n", err);
        return -1;
    }
    for (size_t id = 0; id < dpd_table_len; id++) {
        const struct dpd_option *o = &dpd_table[id];
        char def[SHOW_MAX] = "", flags[64] = "";
        size_t len = 0;

        for (size_t b = 0; b < sizeof flag_names / sizeof flag_names[0]; b++) {
            if (o->flags & (1u << b))
                len += (size_t)snprintf(flags + len, sizeof flags - len, "%s%s", len ? "," : "",
                                        flag_names[b]);
        }
        if (!(o->flags & DPD_OPT_CLI_ONLY))
            dpd_table_show(&defs, (int)id, def, sizeof def);
        fprintf(out, "%s\t%c\t%s\t", o->name, o->short_name ? o->short_name : '-', o->kind->name);
        if (o->max > 0)
            fprintf(out, "%lu\t%lu\t", o->min, o->max);
        else
            fprintf(out, "-\t-\t");
        fprintf(out, "%s\t%s\n", flags[0] ? flags : "-", def);
    }
    dpd_options_release(&defs);
    return 0;
}

/* ---- what the daemon does with the options ---- */

void dpd_options_restart_changes(const struct dpd_options *a, const struct dpd_options *b,
                                 char *buf, size_t cap)
{
    size_t len = 0;

    buf[0] = '\0';
    for (size_t id = 0; id < dpd_table_len && len < cap; id++) {
        char va[SHOW_MAX], vb[SHOW_MAX];

        if (!(dpd_table[id].flags & DPD_OPT_RESTART))
            continue;
        dpd_table_show(a, (int)id, va, sizeof va);
        dpd_table_show(b, (int)id, vb, sizeof vb);
        if (strcmp(va, vb) != 0)
            len +=
                (size_t)snprintf(buf + len, cap - len, "%s%s", len ? ", " : "", dpd_table[id].name);
    }
}

int dpd_options_read_token(const char *path, char *buf, size_t cap, char *err, size_t errlen)
{
    char raw[TOKEN_FILE_MAX + 1];
    struct stat st;
    size_t len = 0, start = 0;
    char why[256];
    int fd = dpd_open_regular(path, why, sizeof why);

    if (fd < 0) {
        snprintf(err, errlen, "api-token-file '%s': %s", path, why);
        return -1;
    }
    if (fstat(fd, &st) != 0) {
        snprintf(err, errlen, "api-token-file '%s': cannot stat: %s", path, strerror(errno));
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
    const char *ca = dotproxy_config_get_ca_file(opts->cfg);
    char why[256];
    dotproxy_config *cfg;
    dotproxy_ctx *ctx;
    int r;

    if (dotproxy_config_listen_tls_count(opts->cfg) > 0 &&
        (dotproxy_config_get_tls_cert(opts->cfg) == NULL ||
         dotproxy_config_get_tls_key(opts->cfg) == NULL)) {
        snprintf(err, errlen, "listen-tls needs both tls-cert and tls-key");
        return -1;
    }
    if ((dotproxy_config_get_upstream_cert(opts->cfg) == NULL) !=
        (dotproxy_config_get_upstream_key(opts->cfg) == NULL)) {
        snprintf(err, errlen, "upstream-cert and upstream-key go together");
        return -1;
    }
    r = dpd_options_config(&cfg, opts, NULL, NULL, DPD_CONFIG_NO_LISTEN);
    if (r != 0) {
        snprintf(err, errlen, "cannot build the configuration: %s", dotproxy_strerror(r));
        return -1;
    }
    /* The priority string was checked where it was given (file:line);
     * what is left to fail here is the trust store. */
    r = dotproxy_ctx_new_why(&ctx, cfg, why, sizeof why);
    dotproxy_config_free(cfg);
    if (r == DOTPROXY_ETLS && (dotproxy_config_get_tls_cert(opts->cfg) != NULL ||
                               dotproxy_config_get_upstream_cert(opts->cfg) != NULL)) {
        snprintf(err, errlen,
                 "TLS settings unusable: tls-cert/tls-key (or tls-client-ca) or "
                 "upstream-cert/upstream-key cannot be loaded (a file without PEM, or a key "
                 "not matching its certificate), or ca-file / tls-priority are wrong");
        return -1;
    }
    if (r == DOTPROXY_EINVAL && dotproxy_config_get_tls_cert(opts->cfg) == NULL &&
        dotproxy_config_get_tls_key(opts->cfg) != NULL) {
        snprintf(err, errlen, "tls-key needs tls-cert");
        return -1;
    }
    if (r == DOTPROXY_ETLS) {
        snprintf(err, errlen, "TLS settings unusable: %s%s%s (%s)",
                 ca != NULL ? "ca-file '" : "the system trust store", ca != NULL ? ca : "",
                 ca != NULL ? "' holds no PEM certificate" : " cannot be loaded", why);
        return -1;
    }
    if (r != 0) {
        snprintf(err, errlen, "cannot create a proxy context: %s", why);
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

/* Listen address i of `from`, on port `port` when it is above 0. */
static int add_listen(dotproxy_config *cfg, const dotproxy_config *from, size_t i, int port)
{
    dotproxy_endpoint ep;
    char spec[128];
    int r = dotproxy_config_get_listen(from, i, &ep);

    if (r == 0 && port > 0 && ep.addr.ss_family == AF_INET)
        ((struct sockaddr_in *)&ep.addr)->sin_port = htons((uint16_t)port);
    else if (r == 0 && port > 0)
        ((struct sockaddr_in6 *)&ep.addr)->sin6_port = htons((uint16_t)port);
    /* Port 0 is formatted as "@0", which add_listen takes as "the kernel
     * chooses". */
    if (r == 0)
        r = dotproxy_endpoint_format(&ep, spec, sizeof spec);
    return r < 0 ? r : dotproxy_config_add_listen(cfg, spec);
}

int dpd_options_config(dotproxy_config **out, const struct dpd_options *opts,
                       const dotproxy_config *listen, const int *ports, unsigned flags)
{
    dotproxy_config *cfg;
    int r = dotproxy_config_dup(&cfg, opts->cfg);

    if (r < 0)
        return r;
    if (listen == NULL)
        listen = opts->cfg;
    r = dotproxy_config_clear_listen(cfg);
    for (size_t i = 0;
         r == 0 && !(flags & DPD_CONFIG_NO_LISTEN) && i < dotproxy_config_listen_count(listen); i++)
        r = add_listen(cfg, listen, i, ports != NULL ? ports[i] : 0);
    /* --check-config binds nothing, TLS listeners included (their
     * certificate and key are still loaded by the context). */
    if (r == 0 && (flags & DPD_CONFIG_NO_LISTEN))
        r = dotproxy_config_clear_listen_tls(cfg);
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
    dotproxy_config_free(opts->cfg);
    free(opts->cli);
    for (size_t i = 0; i < opts->n_strings; i++)
        free(opts->strings[i]);
    free(opts->strings);
    memset(opts, 0, sizeof *opts);
}
