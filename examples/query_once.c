/* SPDX-License-Identifier: MIT */
/* query_once: one DNS query over DNS-over-TLS, using libdotproxy as a client.
 *
 *   query_once --upstream ADDR[@PORT][#NAME] [--ca-file PEM] NAME [TYPE]
 *
 * No listening socket: the program hands its own query to the context's TLS
 * pool (dotproxy_ctx_query) and drives the built-in loop (tier 2) until the
 * answer callback has fired. dns.h builds the query from the name and reads
 * the answer's records.
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

#include <dotproxy/dotproxy.h>

#define TYPE_A    DOTPROXY_DNS_TYPE_A
#define TYPE_AAAA DOTPROXY_DNS_TYPE_AAAA

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

static const char *rcode_name(int rcode)
{
    static const char *const names[] = {"NOERROR",  "FORMERR", "SERVFAIL",
                                        "NXDOMAIN", "NOTIMP",  "REFUSED"};
    return rcode >= 0 && rcode < 6 ? names[rcode] : "OTHER";
}

/* Walk the answer section with the library's record iterator: it has
 * checked the whole message first, so every name and RDATA length can be
 * trusted, and compressed names come out as text. */
static int print_answer(const uint8_t *msg, size_t len)
{
    dotproxy_dns_iter it;
    dotproxy_dns_rr rr;
    char text[DOTPROXY_DNS_NAME_TEXT_MAX];
    uint8_t addr[16];

    if (dotproxy_dns_iter_init(&it, msg, len) < 0) {
        printf("malformed answer\n");
        return -1;
    }
    int rcode = DOTPROXY_DNS_RCODE(msg[3]);
    printf("rcode %s\n", rcode_name(rcode));
    while (dotproxy_dns_iter_next(&it, &rr) == 1) {
        if (rr.section != DOTPROXY_DNS_SECTION_ANSWER)
            continue;
        if (dotproxy_dns_rr_a(&rr, addr) == 0)
            printf("A %s\n", inet_ntop(AF_INET, addr, text, sizeof text));
        else if (dotproxy_dns_rr_aaaa(&rr, addr) == 0)
            printf("AAAA %s\n", inet_ntop(AF_INET6, addr, text, sizeof text));
        else if (rr.type == DOTPROXY_DNS_TYPE_CNAME &&
                 dotproxy_dns_rr_cname(&rr, text, sizeof text) > 0)
            printf("CNAME %s\n", text);
        else
            printf("TYPE%u (%u octets)\n", rr.type, rr.rdlen);
    }
    return rcode;
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
    /* A random ID (the library's generator), recursion desired, EDNS so
     * that large answers come whole. */
    qlen = dotproxy_dns_build_query(query, sizeof query, argv[optind], qtype, DOTPROXY_DNS_CLASS_IN,
                                    DOTPROXY_DNS_Q_RD | DOTPROXY_DNS_Q_EDNS, 0, 0);
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
