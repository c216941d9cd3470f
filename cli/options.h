/* SPDX-License-Identifier: MIT */
/* dotproxyd: the command line and the configuration file, parsed and checked
 * before anything runs.
 *
 * Parsing is kept apart from running so that every usage error is found
 * (and reported with exit status 2) before a socket is opened or a thread
 * started: a daemon that half-starts on a typo is worse than one that
 * refuses to start. The same code re-reads the file on SIGHUP, where an
 * error is reported and the running configuration kept. */
#ifndef DOTPROXYD_OPTIONS_H
#define DOTPROXYD_OPTIONS_H

#include <stddef.h>
#include <stdio.h>

#include <dotproxy/dotproxy.h>

/* Exit statuses, the daemon's contract with its supervisor. */
#define DPD_EXIT_OK      0
#define DPD_EXIT_RUNTIME 1 /* valid configuration, but it could not run */
#define DPD_EXIT_USAGE   2 /* the command line or the file is wrong; fix it and retry */

#define DPD_MAX_WORKERS 64

/* One value as given: on the command line (file NULL) or in the file. */
struct dpd_item {
    int id;            /* which option: a row of dpd_table (option_table.h) */
    const char *value; /* "yes" for a flag given on the command line */
    const char *file;  /* NULL: the command line */
    unsigned line;
};

/* What the command line and the file asked for, checked. What the library
 * configures lives in cfg alone (read it with the dotproxy_config_get_*
 * getters); only the daemon's own settings have fields here. Strings point
 * into argv or into strings[] (values read from the file), both owned here. */
struct dpd_options {
    dotproxy_config *cfg; /* listen, upstreams, pins, allow, TLS, limits, cache, log level */
    unsigned workers;     /* 1..DPD_MAX_WORKERS */
    int cache_per_worker; /* -w N: a cache each instead of one shared */
    unsigned log_queries; /* query log lines per second per worker, 0 = off */
    int log_json;         /* --log-format json */
    int log_syslog;
    const char *user;           /* --user, NULL: stay who we are */
    const char *metrics;        /* --metrics as given, NULL: no metrics server */
    const char *metrics_host;   /* --metrics-host: NAME[,NAME...], NULL: none */
    const char *api_token_file; /* NULL: mutating API calls refused */
    const char *dnstap;         /* --dnstap unix:PATH | tcp:ADDR@PORT, NULL: off */
    const char *config_path;    /* -c, NULL: no file */
    int check_config;

    /* Kept to re-read the file on SIGHUP: the command line still wins. */
    struct dpd_item *cli;
    size_t n_cli;
    char **strings;
    size_t n_strings;
};

/* What dpd_options_parse() decided. */
enum dpd_parse_result {
    DPD_PARSE_RUN = 0, /* opts filled: go and run */
    DPD_PARSE_EXIT,    /* --help / --version were served, or an error: exit *status */
};

/* Parse argv, and the file given with -c, into opts. Command-line values
 * override the file's; for a repeatable option (listen, upstream with its
 * pins, allow) the command line's values replace the file's list. Every value
 * goes through the library's setter, so a value accepted here is one
 * dpd_options_config() cannot refuse.
 * On an error, prints a message naming the option (or file, line and key),
 * the value and what is wrong to stderr, and returns DPD_PARSE_EXIT with
 * *status DPD_EXIT_USAGE (or DPD_EXIT_RUNTIME when memory ran out). On
 * DPD_PARSE_RUN the caller owns opts and releases it with
 * dpd_options_release(). */
enum dpd_parse_result dpd_options_parse(struct dpd_options *opts, int argc, char **argv,
                                        int *status);

/* Re-read cur's configuration file with cur's command line on top, into
 * *out (released by the caller). 0, or -1 with the reason in err (out is
 * then left empty). For SIGHUP: nothing is printed. */
int dpd_options_reparse(struct dpd_options *out, const struct dpd_options *cur, char *err,
                        size_t errlen);

/* The checks only a full start would otherwise make, for --check-config:
 * the CA file and TLS priority string load (a context without listen
 * addresses is created and freed), the API token file reads. 0 or -1 with
 * the reason in err. */
int dpd_options_check_deep(const struct dpd_options *opts, char *err, size_t errlen);

/* dpd_options_config() flags. */
#define DPD_CONFIG_NO_LISTEN 1 /* leave the listen addresses out */

/* A new config from opts (*out, owned by the caller) with the listen
 * addresses of `listen` (NULL: opts's own), address i on port ports[i]
 * instead of the one given when ports is non-NULL and ports[i] > 0: how
 * workers after the first share the ports the kernel chose for "ADDR@0", and
 * how a reload keeps the addresses bound at start. 0 or a dotproxy_error. */
int dpd_options_config(dotproxy_config **out, const struct dpd_options *opts,
                       const dotproxy_config *listen, const int *ports, unsigned flags);

/* The options a reload cannot change (DPD_OPT_RESTART rows) whose values
 * differ between a and b, as "listen, workers" into buf ("" for none). */
void dpd_options_restart_changes(const struct dpd_options *a, const struct dpd_options *b,
                                 char *buf, size_t cap);

/* Read the API bearer token from path into buf (whitespace trimmed from both
 * ends). 0, 1 (read, but the file is readable by everyone: warn), or -1 with
 * the reason in err. */
int dpd_options_read_token(const char *path, char *buf, size_t cap, char *err, size_t errlen);

/* Free what dpd_options_parse() allocated. NULL-safe, idempotent. */
void dpd_options_release(struct dpd_options *opts);

/* The usage text (the --help output), made from the option table. 0, or -1
 * (said on stderr) when the defaults could not be read back. */
int dpd_options_usage(FILE *out);

/* --dump-options (hidden): one line per option, tab-separated: name, short
 * flag ("-" for none), kind, min, max ("-" when not a number), flags
 * (repeat,flag,cli,restart,hidden or "-"), the default as typed ("" when
 * there is none to state; ", " between the items of a list). For the
 * documentation test. 0 or -1, as dpd_options_usage(). */
int dpd_options_dump(FILE *out);

#endif
