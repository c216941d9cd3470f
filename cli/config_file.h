/* SPDX-License-Identifier: MIT */
/* dotproxyd: the configuration file, read with libinih.
 *
 * The file is a list of "key = value" lines whose keys are the daemon's long
 * option names, either at the top of the file or under a [dotproxyd]
 * section. This module knows the file's syntax only (lines, sections,
 * continuations, comments); which keys exist and what their values mean is
 * options.c's business, told through a callback. */
#ifndef DOTPROXYD_CONFIG_FILE_H
#define DOTPROXYD_CONFIG_FILE_H

#include <stddef.h>

/* Longest line the file may hold, newline excluded: libinih's fixed line
 * buffer (INI_MAX_LINE, 200 in the distribution builds) less its NUL. A
 * longer value continues on following lines that start with whitespace. */
#define DPD_CONFIG_MAX_LINE 199

/* Called once per "key = value" line, in file order. `continuation` is 1
 * when the line started with whitespace and so continues the previous key's
 * value (libinih calls back again with the same key). Return 0 to go on, or
 * -1 after writing why into err (the caller prefixes "PATH:LINE: "). */
typedef int (*dpd_config_file_fn)(void *user, const char *key, const char *value, unsigned line,
                                  int continuation, char *err, size_t errlen);

/* Open path for reading, close-on-exec, only when it is a regular file (or
 * /dev/null, an empty one): a FIFO, another device or a directory is
 * refused without waiting (the open itself
 * does not block, since O_NONBLOCK is given, and is cleared after). Returns
 * the descriptor, or -1 with why ("cannot open: ...", "not a regular file
 * (a FIFO)") in why. Every file the daemon reads is opened through here. */
int dpd_open_regular(const char *path, char *why, size_t cap);

/* Read the file at path, calling fn for each key. Stops at the first error.
 * Returns 0, or -1 with err holding "PATH:LINE: what is wrong" (or
 * "config file PATH: cannot open: ..." or "...: not a regular file (a FIFO)"). */
int dpd_config_file_read(const char *path, dpd_config_file_fn fn, void *user, char *err,
                         size_t errlen);

#endif
