/* SPDX-License-Identifier: MIT */
/* List files: line formats and loading (blocklist.h). A file is mapped and
 * read in place: a list of ten million names costs no copy of its text. */
#include "blocklist.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dotproxy/error.h"

static int is_space(char c)
{
    return c == ' ' || c == '\t';
}

/* Octets a host name may hold, each mapped to its lower case; 0: none
 * (one table look-up an octet: lists have tens of millions of them). */
static uint8_t name_octets[256];
static pthread_once_t name_octets_once = PTHREAD_ONCE_INIT;

static void name_octets_init(void)
{
    for (int c = 0; c < 256; c++) {
        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_')
            name_octets[c] = (uint8_t)c;
        else if (c >= 'A' && c <= 'Z')
            name_octets[c] = (uint8_t)(c + 32);
    }
}

int dp_name_from_text(const char *p, size_t n, uint8_t out[256])
{
    if (n > 0 && p[n - 1] == '.')
        n--; /* a trailing dot: the same name, fully qualified */
    if (n == 0 || n > 253)
        return -1;
    pthread_once(&name_octets_once, name_octets_init);
    size_t o = 0;
    size_t i = 0;
    while (i < n) {
        size_t len_at = o++;
        size_t start = i;
        for (; i < n && p[i] != '.'; i++) {
            uint8_t c = name_octets[(uint8_t)p[i]];
            if (c == 0)
                return -1;
            out[o++] = c;
        }
        size_t len = i - start;
        if (len == 0 || len > 63)
            return -1;
        out[len_at] = (uint8_t)len;
        if (i < n)
            i++; /* the dot */
        if (i == n && p[n - 1] == '.')
            return -1; /* an empty last label ("a..") */
    }
    out[o++] = 0;
    return (int)o;
}

/* Hosts files map names to an address; a blocking hosts file points them
 * at nowhere: the unspecified or a loopback address. */
static int sink_address(const char *p, size_t n)
{
    char buf[INET6_ADDRSTRLEN + 1];
    if (n >= sizeof buf)
        return -1;
    memcpy(buf, p, n);
    buf[n] = '\0';
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, buf, &a4) == 1) {
        uint32_t a = ntohl(a4.s_addr);
        return a == 0 || (a >> 24) == 127 ? 1 : 0;
    }
    if (inet_pton(AF_INET6, buf, &a6) == 1)
        return IN6_IS_ADDR_UNSPECIFIED(&a6) || IN6_IS_ADDR_LOOPBACK(&a6) ? 1 : 0;
    return -1; /* not an address */
}

/* The names every stock hosts file starts with: they map this host's own
 * names, and blocking them is never what the list means. */
static int hosts_boilerplate(const char *p, size_t n)
{
    static const char *const names[] = {
        "localhost",     "localhost.localdomain", "local",   "broadcasthost",
        "ip6-localhost", "ip6-loopback",          "0.0.0.0", NULL,
    };
    for (size_t i = 0; names[i] != NULL; i++)
        if (strlen(names[i]) == n && strncasecmp(names[i], p, n) == 0)
            return 1;
    return 0;
}

static int emit(dp_list_name_fn fn, void *user, const char *p, size_t n, int exception,
                const char **why)
{
    uint8_t wire[256];
    int w = dp_name_from_text(p, n, wire);
    if (w < 0) {
        *why = "not a host name";
        return DP_LINE_BAD;
    }
    return fn(user, wire, (size_t)w, exception) != 0 ? -1 : DP_LINE_NAMES;
}

/* "||name^" or "@@||name^": the rule's name, or -1. */
static int adblock_rule(const char *p, size_t n, const char **name, size_t *nlen)
{
    if (n < 4 || p[0] != '|' || p[1] != '|' || p[n - 1] != '^')
        return -1;
    *name = p + 2;
    *nlen = n - 3;
    return 0;
}

int dp_list_parse_line(const char *p, size_t n, dp_list_name_fn fn, void *user, const char **why)
{
    const char *dummy;
    if (why == NULL)
        why = &dummy;
    *why = NULL;
    while (n > 0 && (p[n - 1] == '\r' || is_space(p[n - 1])))
        n--;
    while (n > 0 && is_space(*p)) {
        p++;
        n--;
    }
    if (n == 0 || p[0] == '#' || p[0] == '!')
        return DP_LINE_EMPTY;
    const char *name;
    size_t nlen;
    if (n > 2 && p[0] == '@' && p[1] == '@') {
        if (adblock_rule(p + 2, n - 2, &name, &nlen) != 0) {
            *why = "an exception other than @@||name^";
            return DP_LINE_BAD;
        }
        int r = emit(fn, user, name, nlen, 1, why);
        return r == DP_LINE_NAMES ? DP_LINE_EXCEPTION : r;
    }
    if (p[0] == '|') {
        if (adblock_rule(p, n, &name, &nlen) != 0) {
            *why = "an adblock rule other than ||name^";
            return DP_LINE_BAD;
        }
        return emit(fn, user, name, nlen, 0, why);
    }
    /* Words, up to an end-of-line comment. */
    const char *word[64];
    size_t wlen[64];
    size_t nw = 0;
    for (size_t i = 0; i < n;) {
        while (i < n && is_space(p[i]))
            i++;
        if (i == n || p[i] == '#')
            break;
        size_t s = i;
        while (i < n && !is_space(p[i]))
            i++;
        if (nw == 64) {
            *why = "too many names on one line";
            return DP_LINE_BAD;
        }
        word[nw] = p + s;
        wlen[nw++] = i - s;
    }
    if (nw == 1)
        return emit(fn, user, word[0], wlen[0], 0, why);
    int sink = sink_address(word[0], wlen[0]);
    if (sink < 0) {
        *why = "more than one word and no hosts-file address first";
        return DP_LINE_BAD;
    }
    if (sink == 0) {
        *why = "a hosts line whose address is not 0.0.0.0, 127.0.0.1, :: or ::1";
        return DP_LINE_BAD;
    }
    /* Checked whole before any name is handed on: a bad line adds
     * nothing. */
    uint8_t wire[256];
    for (size_t k = 1; k < nw; k++) {
        if (!hosts_boilerplate(word[k], wlen[k]) && dp_name_from_text(word[k], wlen[k], wire) < 0) {
            *why = "not a host name";
            return DP_LINE_BAD;
        }
    }
    int kind = DP_LINE_EMPTY;
    for (size_t k = 1; k < nw; k++) {
        if (hosts_boilerplate(word[k], wlen[k]))
            continue;
        kind = emit(fn, user, word[k], wlen[k], 0, why);
        if (kind < 0)
            return -1;
    }
    return kind;
}

void dp_list_sets_clear(struct dp_list_sets *s)
{
    dp_nameset_free(s->block);
    dp_nameset_free(s->allow);
    s->block = NULL;
    s->allow = NULL;
}

/* Names wait this many turns between being hashed and being added: their
 * slots are fetched meanwhile (dp_nameset_prefetch), so that the loader
 * keeps several waits for memory in flight instead of one at a time (a
 * table of millions of slots is far bigger than the caches). */
#define LOAD_AHEAD 16

/* Lines between two sched_yield() when yielding: 1024 lines are 0.1 to
 * 0.3 ms of work. */
#define LOAD_YIELD_LINES 1024

static _Thread_local int load_yields;

void dp_list_load_yields(int on)
{
    load_yields = on;
}

struct load_state {
    struct dp_list_sets *s;
    int as_allow;
    size_t head, n; /* the ring of names hashed but not added yet */
    struct {
        struct dp_nameset *set;
        uint64_t fp, tld; /* of the name and of its top-level domain */
        unsigned labels;
    } ahead[LOAD_AHEAD];
};

static int add_oldest(struct load_state *ls)
{
    size_t k = ls->head;
    ls->head = (ls->head + 1) % LOAD_AHEAD;
    ls->n--;
    return dp_nameset_add_tld(ls->ahead[k].set, ls->ahead[k].fp, ls->ahead[k].labels,
                              ls->ahead[k].tld) < 0
               ? -1
               : 0;
}

static int add_to(void *user, const uint8_t *wire, size_t len, int exception)
{
    struct load_state *ls = user;
    if (ls->n == LOAD_AHEAD && add_oldest(ls) != 0)
        return -1;
    struct dp_name_hashes h;
    if (dp_name_hashes_make(&h, wire, len) != 0 || h.n == 0)
        return 0; /* dp_name_from_text made it: cannot happen */
    struct dp_nameset *set = ls->as_allow || exception ? ls->s->allow : ls->s->block;
    dp_nameset_prefetch(set, h.fp[0]);
    size_t k = (ls->head + ls->n++) % LOAD_AHEAD;
    ls->ahead[k].set = set;
    ls->ahead[k].fp = h.fp[0];
    ls->ahead[k].tld = h.fp[h.n - 1];
    ls->ahead[k].labels = h.n;
    return 0;
}

int dp_list_load(struct dp_list_sets *out, const char *path, int as_allow, int strict, char *err,
                 size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return DOTPROXY_ESYS;
    }
    struct stat st;
    int fst = fstat(fd, &st);
    if (fst != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s: %s", path, fst != 0 ? strerror(errno) : "not a regular file");
        close(fd);
        return DOTPROXY_ESYS;
    }
    size_t size = (size_t)st.st_size;
    const char *text = NULL;
    void *map = NULL;
    if (size > 0) {
        /* Populated at once: one fault per page of a 300 MB list costs more
         * than the parsing on a virtual machine. */
        void *m = mmap(NULL, size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
        if (m == MAP_FAILED) {
            snprintf(err, errlen, "%s: %s", path, strerror(errno));
            close(fd);
            return DOTPROXY_ESYS;
        }
        (void)madvise(m, size, MADV_SEQUENTIAL); /* advice only */
        text = m;
        map = m;
    }
    close(fd);
    /* Lines bound the names (hosts lines with several names aside: the set
     * grows then), so the table is sized once, not rehashed as it fills. */
    size_t lines = 0;
    for (const char *q = text; q != NULL && q < text + size;) {
        const char *nl = memchr(q, '\n', (size_t)(text + size - q));
        lines++;
        q = nl != NULL ? nl + 1 : text + size;
    }
    struct dp_list_sets s = {0};
    s.block = dp_nameset_new(as_allow ? 0 : lines);
    s.allow = dp_nameset_new(as_allow ? lines : 0);
    struct load_state ls = {.s = &s, .as_allow = as_allow};
    int rc = 0;
    if (s.block == NULL || s.allow == NULL) {
        snprintf(err, errlen, "%s: out of memory", path);
        rc = -1;
    }
    const char *q = text;
    for (unsigned long line = 1; rc == 0 && q != NULL && q < text + size; line++) {
        const char *nl = memchr(q, '\n', (size_t)(text + size - q));
        size_t n = nl != NULL ? (size_t)(nl - q) : (size_t)(text + size - q);
        const char *why = NULL;
        int kind = dp_list_parse_line(q, n, add_to, &ls, &why);
        if (kind < 0) {
            snprintf(err, errlen, "%s: out of memory", path);
            rc = DOTPROXY_ENOMEM;
        } else if (kind == DP_LINE_BAD) {
            if (strict) {
                snprintf(err, errlen, "%s:%lu: %s", path, line, why != NULL ? why : "bad line");
                rc = DOTPROXY_EMALFORMED;
            }
            s.skipped++;
        }
        s.lines = line;
        q = nl != NULL ? nl + 1 : text + size;
        if (load_yields && line % LOAD_YIELD_LINES == 0)
            sched_yield();
    }
    while (rc == 0 && ls.n > 0) {
        if (add_oldest(&ls) != 0) {
            snprintf(err, errlen, "%s: out of memory", path);
            rc = DOTPROXY_ENOMEM;
        }
    }
    if (text != NULL)
        munmap(map, size);
    if (rc != 0) {
        dp_list_sets_clear(&s);
        return rc;
    }
    dp_nameset_seal(s.block);
    dp_nameset_seal(s.allow);
    *out = s;
    return 0;
}
