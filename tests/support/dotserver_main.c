/* SPDX-License-Identifier: MIT */
/* ts-dotserver: the test DoT server (dotserver.h) as a program, for shell
 * tests with dig/kdig. Prints "port N" once listening, runs until SIGTERM or
 * SIGINT, then prints its counters as key=value lines and exits 0. */
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dotserver.h"

static void usage(FILE *f, const char *argv0)
{
    fprintf(f,
            "usage: %s --cert FILE --key FILE [options]\n"
            "  --port N            listen on 127.0.0.1:N (default: kernel picks)\n"
            "  --reverse N         answer in reverse order in batches of N\n"
            "  --close-after N     drop a connection on its Nth query, unanswered\n"
            "  --bad-id            answer with ID xor 0x5a5a\n"
            "  --wrong-question    answer with another question name\n"
            "  --garbage           answer with random non-DNS frames\n"
            "  --silent            never answer\n"
            "  --idle-close MS     close connections idle for MS milliseconds\n"
            "  --delay MS          delay each answer by MS milliseconds\n"
            "  --client-ca FILE    require client certificates chaining to FILE\n"
            "  --rcode N           answer every query with rcode N (1..15)\n",
            argv0);
}

static int parse_uint(const char *s, unsigned max, unsigned *out)
{
    char *end;
    unsigned long v = strtoul(s, &end, 10);
    if (*s == '\0' || *end != '\0' || *s == '-' || v > max)
        return -1;
    *out = (unsigned)v;
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"cert", required_argument, NULL, 'c'},
        {"key", required_argument, NULL, 'k'},
        {"port", required_argument, NULL, 'p'},
        {"reverse", required_argument, NULL, 'r'},
        {"close-after", required_argument, NULL, 'a'},
        {"bad-id", no_argument, NULL, 'b'},
        {"wrong-question", no_argument, NULL, 'w'},
        {"garbage", no_argument, NULL, 'g'},
        {"silent", no_argument, NULL, 's'},
        {"idle-close", required_argument, NULL, 'i'},
        {"delay", required_argument, NULL, 'd'},
        {"client-ca", required_argument, NULL, 'C'},
        {"rcode", required_argument, NULL, 'R'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    ts_dotserver_opts o;
    memset(&o, 0, sizeof o);
    unsigned v;
    int ch;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (ch) {
        case 'c': o.cert_file = optarg; break;
        case 'k': o.key_file = optarg; break;
        case 'C': o.client_ca_file = optarg; break;
        case 'b': o.bad_id = 1; break;
        case 'w': o.wrong_question = 1; break;
        case 'g': o.garbage = 1; break;
        case 's': o.silent = 1; break;
        case 'h': usage(stdout, argv[0]); return 0;
        case 'p':
        case 'r':
        case 'a':
        case 'i':
        case 'd':
        case 'R':
            if (parse_uint(optarg, ch == 'p' ? 65535u : ch == 'R' ? 15u : UINT_MAX, &v) < 0) {
                fprintf(stderr, "%s: bad number '%s'\n", argv[0], optarg);
                return 2;
            }
            if (ch == 'p')
                o.port = (uint16_t)v;
            else if (ch == 'r')
                o.reverse_batch = v;
            else if (ch == 'a')
                o.close_after = v;
            else if (ch == 'i')
                o.idle_close_ms = v;
            else if (ch == 'R')
                o.knobs.rcode = (int)v;
            else
                o.delay_ms = v;
            break;
        default: usage(stderr, argv[0]); return 2;
        }
    }
    if (optind != argc || o.cert_file == NULL || o.key_file == NULL) {
        usage(stderr, argv[0]);
        return 2;
    }

    /* Block the stop signals before the server thread exists so that it
     * inherits the mask and only sigwait() below ever sees them. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    char err[512] = "";
    o.errbuf = err;
    o.errbuf_len = sizeof err;
    ts_dotserver *s;
    if (ts_dotserver_start(&s, &o) < 0) {
        fprintf(stderr, "%s: cannot start: %s\n", argv[0], err);
        return 1;
    }
    printf("port %u\n", (unsigned)ts_dotserver_port(s));
    fflush(stdout);
    int sig;
    sigwait(&set, &sig);
    unsigned c = ts_dotserver_connections(s), h = ts_dotserver_handshakes(s),
             r = ts_dotserver_resumed(s), q = ts_dotserver_queries(s),
             m = ts_dotserver_max_pending(s), cl = ts_dotserver_closed_by_server(s);
    ts_dotserver_stop(s);
    printf("connections=%u\nhandshakes=%u\nresumed=%u\nqueries=%u\nmax_pending=%u\n"
           "closed_by_server=%u\n",
           c, h, r, q, m, cl);
    return 0;
}
