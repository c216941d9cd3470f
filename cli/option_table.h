/* SPDX-License-Identifier: MIT */
/* dotproxyd: the option table, the one place an option is described.
 *
 * A row says everything about one option: its long name (which is also its
 * configuration-file key), its short flag, the kind of value and its range,
 * the default, the --help text, and how the value reaches the configuration
 * (a libdotproxy setter, or a field of struct dpd_options for what only the
 * daemon uses). options.c reads the rows to parse the command line and the
 * file, to print --help and --dump-options and to compare configurations on
 * reload; tests/docs/check_docs.py holds the documentation to them.
 *
 * Defaults and bounds of what the library configures are not written here:
 * a row names the library's setter and getter and the DOTPROXY_*_MIN/_MAX
 * bounds, and the default is read back from a fresh dotproxy_config. Only the
 * daemon's own options, and the few library options whose daemon default
 * differs (cache-size, listen, upstream), carry a default in their row. */
#ifndef DOTPROXYD_OPTION_TABLE_H
#define DOTPROXYD_OPTION_TABLE_H

#include <stddef.h>

#include <dotproxy/dotproxy.h>

struct dpd_options;
struct dpd_item;

/* Row flags. */
#define DPD_OPT_REPEAT   1u  /* values accumulate in order; the default is a list */
#define DPD_OPT_FLAG     2u  /* no value on the command line; yes/no in the file */
#define DPD_OPT_CLI_ONLY 4u  /* not a file key */
#define DPD_OPT_RESTART  8u  /* a reload cannot change it: the daemon says so */
#define DPD_OPT_HIDDEN   16u /* left out of --help and the documentation checks */

/* A value as parsed, before it is applied. */
struct dpd_value {
    unsigned long u, u2; /* numbers; the second of a pair (QPS/BURST, V4/V6) */
    int i;               /* flags and enumerations */
    const char *s;       /* the text as typed (it outlives the parse) */
};

/* The state a parse applies values to. */
struct dpd_apply {
    struct dpd_options *opts;
    const struct dpd_item *item; /* being applied: says where it came from */
    /* cache-min-ttl and cache-max-ttl reach the library through one setter;
     * it is called once both are known (dpd_table_finish), so that their
     * order in the file does not matter. */
    unsigned ttl[2];
    const struct dpd_item *ttl_item[2];
    const char *why; /* an applier's own word on a refusal, or NULL */
};

/* A named value of an enumeration. */
struct dpd_choice {
    const char *name;
    int value;
};

/* What the command line does with a command-line-only option. */
enum dpd_cli_action {
    DPD_ACT_NONE = 0,
    DPD_ACT_CONFIG,
    DPD_ACT_CHECK_CONFIG,
    DPD_ACT_VERSION,
    DPD_ACT_HELP,
    DPD_ACT_DUMP,
};

struct dpd_option;

/* A kind of value: a name (for --dump-options) and its parser. A parser
 * returns 0, or -1 with what is wrong in why (the caller adds the option and
 * the value). */
enum dpd_store { DPD_STORE_UINT, DPD_STORE_INT, DPD_STORE_STR };

struct dpd_kind {
    const char *name;
    enum dpd_store store; /* the value's member: u, i or s */
    int (*parse)(const struct dpd_option *o, const char *text, struct dpd_value *v, char *why,
                 size_t cap);
    /* 1: the value names a file the daemon reads, which parse opens (as a
     * regular file) to check. */
    int names_file;
};

struct dpd_option {
    const char *name;    /* long option and file key */
    char short_name;     /* 0: none */
    unsigned flags;      /* DPD_OPT_* */
    const char *section; /* set on the first row of a --help section */
    const char *metavar; /* the value in --help: "MS", "ADDR[@PORT]" */
    const struct dpd_kind *kind;
    unsigned long min, max;           /* kind uint: the range */
    const char *unit;                 /* kind uint: "milliseconds", for messages */
    const struct dpd_choice *choices; /* kind enum: ends with a NULL name */
    const char *def;  /* daemon's default as typed (", " between list items); NULL: the library's */
    const char *with; /* the command line's values replace the file's together with this option's */
    enum dpd_cli_action action; /* DPD_OPT_CLI_ONLY rows */
    const char *help;
    /* Said when the library refuses a value the parser let through
     * (DOTPROXY_EINVAL or DOTPROXY_EADDR), a number's range appended;
     * NULL: dotproxy_strerror(). A
     * repeatable row's max and unit say how many values the library takes
     * ("more than 8 pins for one upstream"). */
    const char *refused;

    /* How the value is applied, the first that is set: */
    int (*apply)(struct dpd_apply *ap, const struct dpd_value *v);
    int (*set_uint)(dotproxy_config *cfg, unsigned v); /* with get_uint */
    unsigned (*get_uint)(const dotproxy_config *cfg);
    int (*set_int)(dotproxy_config *cfg, int v); /* flags and enums, with get_int */
    int (*get_int)(const dotproxy_config *cfg);
    int (*set_str)(dotproxy_config *cfg, const char *v); /* with get_str */
    const char *(*get_str)(const dotproxy_config *cfg);
    size_t field; /* else: offsetof(struct dpd_options, x) + 1, typed by the kind */

    /* The value in effect, as it would be typed (for defaults, --dump-options
     * and the reload comparison); NULL: derived from the above. */
    void (*show)(const struct dpd_options *opts, char *buf, size_t cap);
};

extern const struct dpd_option dpd_table[];
extern const size_t dpd_table_len;

/* A fresh apply state for opts (whose cfg is set). */
void dpd_apply_init(struct dpd_apply *ap, struct dpd_options *opts);

/* The row named name (a long option or file key), or -1. */
int dpd_table_find(const char *name);

/* The row a row's values travel with (itself for most). */
int dpd_table_group(int id);

/* Apply the value v of row id: 0, or a negative dotproxy_error with why set
 * when it is more than dotproxy_strerror() says (why[0] = 0 otherwise). */
int dpd_table_apply(struct dpd_apply *ap, int id, const struct dpd_value *v, char *why, size_t cap);

/* After every item: what was collected to be set together. 0, or -1 with
 * why set (naming both origins). */
int dpd_table_finish(struct dpd_apply *ap, char *why, size_t cap);

/* The value of row id in opts, as it would be typed ("" when there is
 * none to state). */
void dpd_table_show(const struct dpd_options *opts, int id, char *buf, size_t cap);

/* "--name" or "PATH:LINE: name": where an item came from. */
void dpd_item_origin(const struct dpd_item *it, char *buf, size_t cap);

#endif
