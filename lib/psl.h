/* SPDX-License-Identifier: MIT */
/* The public suffix list (https://publicsuffix.org/list/): where a name's
 * registrable domain begins ("www.example.co.uk" -> "example.co.uk"), so
 * that the anomaly detectors group names by who owns them. Loaded once from
 * the Debian `publicsuffix` file; read-only afterwards, so any number of
 * threads may look names up at once. */
#ifndef DP_PSL_H
#define DP_PSL_H

#include <stddef.h>
#include <stdint.h>

#define DP_PSL_DEFAULT_FILE "/usr/share/publicsuffix/public_suffix_list.dat"

struct dp_psl;

/* Load the list from path (NULL: DP_PSL_DEFAULT_FILE). 0, DOTPROXY_ENOMEM,
 * or DOTPROXY_EINVAL when the file cannot be read or holds no rule; *out is
 * written only on success. */
int dp_psl_load(struct dp_psl **out, const char *path);
/* The same from rules in memory (one per line, the file's syntax). */
int dp_psl_load_text(struct dp_psl **out, const char *text, size_t len);
/* NULL-safe. */
void dp_psl_free(struct dp_psl *psl);
/* Rules loaded. */
size_t dp_psl_rules(const struct dp_psl *psl);

/* The registrable domain of the lower-case wire name `name` (len octets,
 * ending with the root label): returns its offset inside name, and its
 * hash in *hash (equal names give equal hashes within one list). A name
 * that is itself a public suffix (or the root) is its own domain. With psl
 * NULL, the last two labels are taken. */
size_t dp_psl_domain(const struct dp_psl *psl, const uint8_t *name, size_t len, uint64_t *hash);

#endif
