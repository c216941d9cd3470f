/* SPDX-License-Identifier: MIT */
/* query_once: one DNS query over DNS-over-TLS, using libdotproxy as a client.
 *
 *   query_once --upstream ADDR[@PORT][#NAME] [--ca-file PEM] NAME [TYPE]
 *
 * No listening socket: the program hands its own query to the context's TLS
 * pool (dotproxy_ctx_query) and drives the built-in loop (tier 2) until the
 * answer callback has fired. It also shows how little a DNS query is: a
 * 12-octet header and one question.
 *
 * Prints "rcode NAME", then one line per answer record ("A 192.0.2.1").
 * Exit status 0 for a NOERROR or NXDOMAIN answer, 1 otherwise.
 *
 * Build: cc query_once.c $(pkg-config --cflags --libs dotproxy) */
#include <arpa/inet.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include <dotproxy/dotproxy.h>

#define TYPE_A    1
#define TYPE_AAAA 28
#define CLASS_IN  1

static const struct {
    const char *name;
    uint16_t value;
} qtypes[] = {
    {"A", TYPE_A}, {"NS", 2},   {"CNAME", 5},        {"SOA", 6},  {"PTR", 12},
    {"MX", 15},    {"TXT", 16}, {"AAAA", TYPE_AAAA}, {"SRV", 33}, {"HTTPS", 65},
};

/* "AAAA" or a bare number ("65"); 0 when neither. */
static uint16_t parse_qtype(const char *s)
{
    char *end;
    unsigned long v;

    for (size_t i = 0; i < sizeof qtypes / sizeof qtypes[0]; i++)
        if (strcasecmp(s, qtypes[i].name) == 0)
            return qtypes[i].value;
    v = strtoul(s, &end, 10);
    return (s[0] >= '0' && s[0] <= '9' && *end == '\0' && v <= 65535) ? (uint16_t)v : 0;
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

/* A query per RFC 1035 4.1: header, then QNAME QTYPE QCLASS. Returns its
 * length, or -1 when the name cannot be encoded. */
static int build_query(uint8_t *buf, size_t cap, const char *name, uint16_t qtype)
{
    uint16_t id;
    size_t off = DOTPROXY_DNS_HEADER_SIZE;

    /* The ID is what matches an answer to its question on a shared
     * connection. The library rewrites it on the wire and restores ours in
     * the answer, but a query should still carry an unpredictable one. */
    if (getrandom(&id, sizeof id, 0) != (ssize_t)sizeof id)
        id = 0x2a2a;
    memset(buf, 0, DOTPROXY_DNS_HEADER_SIZE);
    put16(buf, id);
    put16(buf + 2, DOTPROXY_DNS_FLAG_RD); /* "recursion desired": resolve it for us */
    put16(buf + 4, 1);                    /* QDCOUNT: one question, no records */

    /* QNAME: each label as a length octet and its text, ending with the
     * empty root label: "www.example" -> 3 www 7 example 0. */
    while (*name != '\0') {
        const char *dot = strchr(name, '.');
        size_t len = dot ? (size_t)(dot - name) : strlen(name);

        if (len == 0 && dot != NULL && dot[1] == '\0' && off == DOTPROXY_DNS_HEADER_SIZE)
            break; /* "." alone: the root */
        if (len == 0 || len > 63 || off + 1 + len + 1 > DOTPROXY_DNS_HEADER_SIZE + 255 ||
            off + 1 + len + 5 > cap)
            return -1;
        buf[off++] = (uint8_t)len;
        memcpy(buf + off, name, len);
        off += len;
        name += len + (dot ? 1 : 0);
    }
    buf[off++] = 0;
    put16(buf + off, qtype);
    put16(buf + off + 2, CLASS_IN);
    return (int)(off + 4);
}

/* Step over a possibly compressed name. dotproxy_dns_parse() has already
 * checked every name, so only the bounds are rechecked here. */
static size_t skip_name(const uint8_t *msg, size_t len, size_t off)
{
    while (off < len) {
        if ((msg[off] & 0xC0) == 0xC0)
            return off + 2; /* a pointer ends the name */
        if (msg[off] == 0)
            return off + 1;
        off += 1u + msg[off];
    }
    return len;
}

static const char *rcode_name(int rcode)
{
    static const char *const names[] = {"NOERROR",  "FORMERR", "SERVFAIL",
                                        "NXDOMAIN", "NOTIMP",  "REFUSED"};
    return rcode >= 0 && rcode < 6 ? names[rcode] : "OTHER";
}

static int print_answer(const uint8_t *msg, size_t len)
{
    dotproxy_dns_info info;
    size_t off;

    if (dotproxy_dns_parse(&info, msg, len) < 0) {
        printf("malformed answer\n");
        return -1;
    }
    printf("rcode %s\n", rcode_name(DOTPROXY_DNS_RCODE(info.flags)));

    /* Records start after the question section. */
    off = DOTPROXY_DNS_HEADER_SIZE;
    for (unsigned i = 0; i < info.qdcount; i++)
        off = skip_name(msg, len, off) + 4;
    for (unsigned i = 0; i < info.ancount && off + 10 <= len; i++) {
        char text[INET6_ADDRSTRLEN];
        uint16_t type, rdlen;

        off = skip_name(msg, len, off);
        if (off + 10 > len)
            break;
        type = get16(msg + off);
        rdlen = get16(msg + off + 8);
        off += 10; /* TYPE CLASS TTL RDLENGTH */
        if (off + rdlen > len)
            break;
        if (type == TYPE_A && rdlen == 4)
            printf("A %s\n", inet_ntop(AF_INET, msg + off, text, sizeof text));
        else if (type == TYPE_AAAA && rdlen == 16)
            printf("AAAA %s\n", inet_ntop(AF_INET6, msg + off, text, sizeof text));
        else
            printf("TYPE%u (%u octets)\n", type, rdlen);
        off += rdlen;
    }
    return DOTPROXY_DNS_RCODE(info.flags);
}

/* What the callback leaves for main: it runs inside the loop call, and the
 * answer it is given is only borrowed for the duration of the call. */
struct outcome {
    int done;
    int status; /* the exit status */
};

static void on_answer(int rcode, const uint8_t *answer, size_t len, void *user)
{
    struct outcome *out = user;

    out->done = 1;
    if (rcode < 0) {
        /* No answer at all: deadline passed or every upstream failed
         * (a certificate that does not check out ends up here too). */
        printf("query failed: %s\n", dotproxy_strerror(rcode));
        out->status = 1;
        return;
    }
    rcode = print_answer(answer, len);
    out->status = (rcode == DOTPROXY_RCODE_NOERROR || rcode == DOTPROXY_RCODE_NXDOMAIN) ? 0 : 1;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"upstream", required_argument, NULL, 'u'},
        {"ca-file", required_argument, NULL, 'c'},
        {NULL, 0, NULL, 0},
    };
    const char *upstream = NULL, *ca_file = NULL;
    uint8_t query[512];
    uint16_t qtype = TYPE_A;
    struct outcome outcome = {0, 1};
    dotproxy_config *cfg = NULL;
    dotproxy_ctx *ctx = NULL;
    int c, qlen, r;

    while ((c = getopt_long(argc, argv, "u:c:", opts, NULL)) != -1) {
        switch (c) {
        case 'u': upstream = optarg; break;
        case 'c': ca_file = optarg; break;
        default: goto usage;
        }
    }
    if (upstream == NULL || optind >= argc || argc - optind > 2)
        goto usage;
    if (argc - optind == 2 && (qtype = parse_qtype(argv[optind + 1])) == 0) {
        fprintf(stderr, "query_once: unknown type '%s'\n", argv[optind + 1]);
        return 2;
    }
    qlen = build_query(query, sizeof query, argv[optind], qtype);
    if (qlen < 0) {
        fprintf(stderr, "query_once: cannot encode name '%s'\n", argv[optind]);
        return 2;
    }

    /* An upstream and no listen address: a context used only as a client. */
    if ((r = dotproxy_config_new(&cfg)) < 0 ||
        (r = dotproxy_config_add_upstream(cfg, upstream)) < 0 ||
        (ca_file != NULL && (r = dotproxy_config_set_ca_file(cfg, ca_file)) < 0) ||
        (r = dotproxy_ctx_new(&ctx, cfg)) < 0) {
        fprintf(stderr, "query_once: %s\n", dotproxy_strerror(r));
        dotproxy_config_free(cfg);
        return 1;
    }
    dotproxy_config_free(cfg);

    r = dotproxy_ctx_query(ctx, query, (size_t)qlen, on_answer, &outcome);
    if (r < 0) {
        fprintf(stderr, "query_once: %s\n", dotproxy_strerror(r));
        dotproxy_ctx_free(ctx);
        return 1;
    }
    /* The callback is called exactly once, whatever happens (the query has
     * a deadline), so this loop ends. Each turn connects, handshakes, writes
     * or reads as far as the sockets allow, then waits. */
    while (!outcome.done) {
        r = dotproxy_ctx_run_once(ctx, -1);
        if (r < 0) {
            fprintf(stderr, "query_once: %s\n", dotproxy_strerror(r));
            break;
        }
    }
    dotproxy_ctx_free(ctx);
    return outcome.status;

usage:
    fprintf(stderr,
            "usage: query_once --upstream ADDR[@PORT][#NAME] [--ca-file PEM] NAME [TYPE]\n");
    return 2;
}
