/* SPDX-License-Identifier: MIT */
/* Blocklist and allowlist files: the line formats (domain list, hosts file,
 * adblock domain rules and their @@ exceptions, # and ! comments) and the
 * loading of one file into name sets. Strict loading (for --check-config)
 * stops at the first bad line and names file and line; lenient loading (at
 * run time) skips and counts such lines. No socket, no context. */
#ifndef DP_BLOCKLIST_H
#define DP_BLOCKLIST_H

#include <stddef.h>
#include <stdint.h>

#include "nameset.h"

/* What one line says. */
enum dp_list_line {
    DP_LINE_EMPTY,     /* blank or a comment */
    DP_LINE_NAMES,     /* names that the list blocks (or allows, for an allowlist) */
    DP_LINE_EXCEPTION, /* an adblock exception (@@||name^): a name allowed */
    DP_LINE_BAD,       /* none of the formats */
};

/* Called for each name on a line, in wire form, lower case; exception: the
 * line is an adblock exception (@@||name^). Returns 0, or non-zero to stop
 * (out of memory). */
typedef int (*dp_list_name_fn)(void *user, const uint8_t *wire, size_t len, int exception);

/* Parse one line (without its newline; a trailing \r is ignored) and hand
 * its names to fn. Returns the kind of line, or -1 when fn asked to stop.
 * why (may be NULL) says what is wrong with a DP_LINE_BAD line. */
int dp_list_parse_line(const char *p, size_t n, dp_list_name_fn fn, void *user, const char **why);

/* Presentation text ("Example.COM" or "example.com.") to a lower-case wire
 * name: its length, or -1 when it is no host name (empty label, a label over
 * 63 octets, an octet other than a letter, digit, '-' or '_'). */
int dp_name_from_text(const char *p, size_t n, uint8_t out[256]);

/* One loaded file. block: the names it blocks (empty for an allowlist);
 * allow: the names it allows (its exceptions; every name of an allowlist). */
struct dp_list_sets {
    struct dp_nameset *block;
    struct dp_nameset *allow;
    unsigned long lines, skipped;
};

/* Load path. as_allow: every name goes to allow. strict: the first bad line
 * fails the load, and err says "PATH:LINE: why". Returns 0, or an error with err
 * set: DOTPROXY_ESYS (cannot open or read), DOTPROXY_ENOMEM, or
 * DOTPROXY_EMALFORMED (a bad line, strict). Nothing is left allocated on
 * failure. */
int dp_list_load(struct dp_list_sets *out, const char *path, int as_allow, int strict, char *err,
                 size_t errlen);
void dp_list_sets_clear(struct dp_list_sets *s);

/* For the calling thread from now on: whether dp_list_load gives the CPU
 * away (sched_yield) every few hundred microseconds of work. A thread that
 * rebuilds lists while others answer queries sets it: a scheduler lets a
 * running thread finish its slice (milliseconds) before a woken one gets
 * the CPU, and a query waiting that long is a p99 step. Off by default: at
 * start nothing waits for the CPU but the load itself. */
void dp_list_load_yields(int on);

#endif
