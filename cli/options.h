/* SPDX-License-Identifier: MIT */
/* dotproxyd: the command line, parsed and checked before anything runs.
 *
 * Parsing is kept apart from running so that every usage error is found
 * (and reported with exit status 2) before a socket is opened or a thread
 * started: a daemon that half-starts on a typo is worse than one that
 * refuses to start. */
#ifndef DOTPROXYD_OPTIONS_H
#define DOTPROXYD_OPTIONS_H

#include <stddef.h>
#include <stdio.h>

#include <dotproxy/dotproxy.h>

/* Exit statuses, the daemon's contract with its supervisor. */
#define DPD_EXIT_OK      0
#define DPD_EXIT_RUNTIME 1 /* valid configuration, but it could not run */
#define DPD_EXIT_USAGE   2 /* the command line is wrong; fix it and retry */

#define DPD_MAX_WORKERS 64

/* What the command line asked for, checked. Strings point into argv. */
struct dpd_options {
    const char **listen_spec;  /* as typed (or the default), in order */
    dotproxy_endpoint *listen; /* the same, parsed (port 0 kept as 0) */
    size_t n_listen;
    dotproxy_endpoint *upstream; /* parsed, in order */
    size_t n_upstream;
    const char *ca_file; /* NULL: the system store */
    unsigned timeout_ms; /* 0: the library's default */
    unsigned workers;    /* 1..DPD_MAX_WORKERS */
    int log_level;       /* DOTPROXY_LOG_* */
};

/* What dpd_options_parse() decided. */
enum dpd_parse_result {
    DPD_PARSE_RUN = 0, /* opts filled: go and run */
    DPD_PARSE_EXIT,    /* --help / --version were served: exit *status */
};

/* Parse argv into opts. Every value is checked by the library itself (a
 * scratch config is built and thrown away), so a value accepted here is one
 * dpd_options_config() cannot refuse. On a usage error, prints a message naming the
 * option, the value and what is wrong to stderr, and returns DPD_PARSE_EXIT
 * with *status DPD_EXIT_USAGE (or DPD_EXIT_RUNTIME when memory ran out).
 * On DPD_PARSE_RUN the caller owns opts and releases it with
 * dpd_options_release(). */
enum dpd_parse_result dpd_options_parse(struct dpd_options *opts, int argc, char **argv,
                                        int *status);

/* A new config from opts (*out, owned by the caller), with listen address i
 * on port ports[i] instead of the one given when ports is non-NULL and
 * ports[i] > 0: how workers after the first share the ports the kernel chose
 * for "ADDR@0". No log callback is set. 0 or a dotproxy_error. */
int dpd_options_config(dotproxy_config **out, const struct dpd_options *opts, const int *ports);

/* Free what dpd_options_parse() allocated. NULL-safe, idempotent. */
void dpd_options_release(struct dpd_options *opts);

/* The usage text (the --help output). */
void dpd_options_usage(FILE *out);

#endif
