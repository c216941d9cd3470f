/* SPDX-License-Identifier: MIT */
/* A compact, immutable set of domain names with suffix matching, for
 * blocklists of millions of names: each name is kept only as a 64-bit
 * fingerprint in an open-addressed table (8 octets a slot, load at most
 * 3/4, so 10.7 to 21 octets a name, plus 1 to 2 of a Bloom filter), never
 * as text. A query name is looked
 * up by hashing each of its label suffixes once (dp_name_hashes, shared by
 * every set) and probing; the matched rule is the matched suffix of the
 * query name itself, so nothing else needs storing to name it.
 *
 * Fingerprints use one secret key per process: names chosen by clients
 * cannot be aimed at a listed name's fingerprint (a false match needs a
 * 64-bit collision under an unknown key). Pure memory: no file, no clock. */
#ifndef DP_NAMESET_H
#define DP_NAMESET_H

#include <stddef.h>
#include <stdint.h>

/* Most labels a wire name can have (255 octets, one-octet labels). */
#define DP_NAME_MAX_LABELS 128

/* The fingerprints of every label suffix of one name: fp[i] is that of the
 * name starting at its label i (fp[0]: the whole name), off[i] the offset of
 * label i in the wire name. n labels; the root (n = 0) matches nothing. */
struct dp_name_hashes {
    unsigned n;
    uint8_t off[DP_NAME_MAX_LABELS];
    uint64_t fp[DP_NAME_MAX_LABELS];
};

/* Hash every suffix of the wire name (uncompressed, at most 255 octets,
 * ending with the root label), case-insensitively. 0, or -1 when the name is
 * not well formed. No allocation. */
int dp_name_hashes_make(struct dp_name_hashes *h, const uint8_t *wire, size_t cap);

struct dp_nameset;

/* An empty set with room for about expect names before it grows. NULL when
 * out of memory. */
struct dp_nameset *dp_nameset_new(size_t expect);
void dp_nameset_free(struct dp_nameset *s);

/* Add the name whose whole-name fingerprint is fp (h->fp[0] of its hashes)
 * and which has nlabels labels (h->n). Only while the set is being built
 * (before dp_nameset_seal), by one thread. 1 added, 0 already there, -1 out
 * of memory or sealed (the set is unchanged). */
int dp_nameset_add(struct dp_nameset *s, uint64_t fp, unsigned nlabels);
/* The same, with the fingerprint of the name's top-level domain (h->fp[h->n
 * - 1]): the set then knows it, and settles names under top-level domains
 * none of its names has without a probe (a set with any name added by
 * dp_nameset_add probes for every name). */
int dp_nameset_add_tld(struct dp_nameset *s, uint64_t fp, unsigned nlabels, uint64_t tld);

/* The set is complete: release the slack of a table sized for more names
 * than it got, and build the filter that answers most misses from cache.
 * Nothing can be added after. */
void dp_nameset_seal(struct dp_nameset *s);

/* A hint that fp will soon be added: its slot is fetched now, so that a
 * loader hashing names ahead of adding them keeps several waits for memory
 * in flight instead of one at a time. No effect on the set. */
void dp_nameset_prefetch(const struct dp_nameset *s, uint64_t fp);

/* The most specific listed suffix of the name h was made from: the label
 * index i (h->off[i] is where the rule starts in the wire name), or -1.
 * Read-only: any number of threads at once; no allocation. */
int dp_nameset_match(const struct dp_nameset *s, const struct dp_name_hashes *h);
/* Whether the suffix at label i of h is listed (for listing every match). */
int dp_nameset_has(const struct dp_nameset *s, uint64_t fp);

size_t dp_nameset_count(const struct dp_nameset *s);
/* Octets the set holds on the heap. */
size_t dp_nameset_bytes(const struct dp_nameset *s);

#endif
