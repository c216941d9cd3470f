/* SPDX-License-Identifier: MIT */
/* Test support: an in-tree DNS-over-TLS server (RFC 7858) for the tests.
 *
 * It runs its own thread with a poll loop over non-blocking GnuTLS sessions,
 * listens on 127.0.0.1 (TCP, the kernel picks the port unless told), speaks
 * TLS 1.3 or 1.2 with session tickets (so clients can resume), reads 2-octet
 * framed queries however they are split across TLS records and answers them
 * with data synthesised from the question, misbehaving on request.
 *
 * Synthesised answers (ts_dotserver_synth_answer), deterministic so tests can
 * check them:
 *  - the header has QR and RA set, RD and CD copied, the query's ID, and the
 *    question echoed exactly as sent (letter case kept); names in answer
 *    records point at the question's name;
 *  - first label starting with "nx" (any case): NXDOMAIN, no answer, and in
 *    the authority section an SOA for the parent name, TTL 60, MINIMUM 30;
 *  - first label "big" (any case, any QTYPE): a TXT RRset of 11 records,
 *    TTL 300, about 3000 octets in all (over 512 and 1232, so UDP gets TC);
 *  - first label starting with "huge": the same with 45 records, ~12000 octets;
 *  - otherwise QTYPE A: one A record 192.0.2.N, TTL 300, N as computed by
 *    ts_dns_expected_a() in dnsclient.h (case-insensitive sum of the name);
 *  - QTYPE AAAA: one AAAA record 2001:db8::N with the same N, TTL 300;
 *  - any other QTYPE: NOERROR, no answer, an SOA in authority (NODATA);
 *  - a query with an OPT RR gets an OPT back (payload 1232, version 0, DO
 *    copied); a query without one gets none;
 *  - malformed queries (short, QR set, QDCOUNT != 1, answer or authority
 *    records, compressed or bad names, a non-OPT additional, trailing bytes)
 *    get FORMERR with no question; opcodes other than QUERY get NOTIMP.
 * The knobs (ts_dotserver_knobs, below) change this for a running server:
 * the answer TTL, AD, an RRSIG-looking record, a forced rcode, TC, the EDNS
 * options of answers, or no answer at all.
 *
 * The raw bytes of the last TS_DOTSERVER_RECENT queries read are kept, so
 * tests can check what a client put on the wire (ts_dotserver_recent_query).
 *
 * Threads: start/stop from one thread; the counters, the knobs and the
 * recorded queries may be used from any thread at any time. */
#ifndef TS_DOTSERVER_H
#define TS_DOTSERVER_H

#include <stddef.h>
#include <stdint.h>

typedef struct ts_dotserver ts_dotserver;

/* Changes to the synthesised answers; all zero is the behaviour described
 * above. Only well-formed QUERY queries are affected (FORMERR and NOTIMP
 * stay as they are). */
typedef struct ts_dotserver_knobs {
    uint32_t ttl; /* > 0: the TTL of A, AAAA, TXT and RRSIG records (default
                     300); SOA records keep TTL 60, MINIMUM 30 */
    int ad;       /* the data is "validated": set AD (RFC 4035 3.2.3) in answers to
                     queries that ask for it with AD or DO, and only those, as
                     a validating resolver does (RFC 6840 5.7) */
    /* Answers to queries with DO set get, after each A or AAAA record, an
     * RRSIG-looking record (TYPE 46, algorithm 13, root signer, 64 octets
     * of fake signature) with the same TTL. */
    int rrsig;
    int rcode;     /* 1..15: answer with this rcode, the question echoed and
                      no records (an OPT still, when the query had one) */
    int tc;        /* set TC in every answer (the records are kept) */
    int blackhole; /* read and count queries, record them, never answer them
                      (unlike opts.silent they are forgotten: turning this
                      off later does not answer them) */
    /* > 0: a query whose OPT carries edns-tcp-keepalive (RFC 7828) gets one
     * back with this TIMEOUT, in units of 100 ms. */
    unsigned keepalive_100ms;
    /* > 0: answers carrying an OPT get a padding option (RFC 7830) of this
     * many zero octets. */
    unsigned answer_padding;
    /* Answers carrying an OPT get an Extended DNS Error option (RFC 8914)
     * when set: INFO-CODE ede_code, EXTRA-TEXT ede_text (NULL: none; at most
     * 200 octets are sent). */
    int ede;
    uint16_t ede_code;
    const char *ede_text;
    /* The path is black-holed: while set, the server thread neither accepts,
     * reads, writes nor closes anything (no FIN, no RST, no idle close), on
     * the connections it has and on new ones (the kernel still completes
     * TCP handshakes from the backlog, so a new TLS handshake just hangs).
     * Cleared, it carries on with whatever piled up meanwhile. */
    int frozen;
} ts_dotserver_knobs;

/* Zero-initialise, set cert_file and key_file, then the modes wanted. */
typedef struct ts_dotserver_opts {
    const char *cert_file; /* PEM certificate (chain), read at start */
    const char *key_file;  /* PEM private key, read at start */
    /* Send cert_file's certificates exactly as they stand in the file, in
     * that order, extra ones included (GnuTLS otherwise sorts a chain and
     * drops what does not belong to it): a server appending an unrelated
     * certificate to its chain. */
    int raw_chain;
    uint16_t port; /* 0: the kernel picks (see ts_dotserver_port) */
    /* > 1: hold answers until this many queries are pending on a connection,
     * then answer those in reverse order of arrival (a pipelining client must
     * match answers by ID). Fewer than this many are never answered. */
    unsigned reverse_batch;
    /* > 0: on reading the Nth query of a connection (counted per connection),
     * close that connection abruptly (no TLS close_notify) without answering
     * that query. Answers to the earlier ones are written first. */
    unsigned close_after;
    int bad_id;         /* answer with the query's ID xor 0x5a5a */
    int wrong_question; /* answer with the question name "wrong." + qname */
    /* Instead of each answer send one frame of 2..11 random octets: shorter
     * than a DNS header, so never a valid message. */
    int garbage;
    int silent;             /* handshake and read queries, never answer */
    unsigned idle_close_ms; /* > 0: close (with close_notify) a connection
                               from which nothing arrived for this long */
    unsigned delay_ms;      /* hold each answer this long after its query */
    /* Mutual TLS: require a client certificate chaining to these PEM
     * anchors; a handshake without one (or with another) fails. */
    const char *client_ca_file;
    ts_dotserver_knobs knobs; /* from the start; see ts_dotserver_set_knobs */
    char *errbuf;             /* optional: why ts_dotserver_start failed */
    size_t errbuf_len;
} ts_dotserver_opts;

/* Load the certificate and key, listen on 127.0.0.1 and start the server
 * thread. *out is set only on success; the caller owns it and must call
 * ts_dotserver_stop(). Returns 0, or -1 with a message in o->errbuf (when
 * given): bad certificate or key file, socket or thread failure. */
int ts_dotserver_start(ts_dotserver **out, const ts_dotserver_opts *o);

/* The TCP port the server listens on (host order). */
uint16_t ts_dotserver_port(const ts_dotserver *s);

/* Stop the thread, close every connection and free s. NULL-safe. */
void ts_dotserver_stop(ts_dotserver *s);

/* Counters since start; safe from any thread. */
unsigned ts_dotserver_connections(const ts_dotserver *s); /* TCP connections accepted */
unsigned ts_dotserver_handshakes(const ts_dotserver *s);  /* TLS handshakes completed */
unsigned ts_dotserver_resumed(const ts_dotserver *s);     /* of which resumed sessions */
unsigned ts_dotserver_queries(const ts_dotserver *s);     /* DNS queries read */
/* Of which ". NS" queries: a client's liveness checks of an idle connection
 * (dotproxy pings an idle upstream so; tests counting their own queries
 * leave these out). */
unsigned ts_dotserver_root_ns_queries(const ts_dotserver *s);
/* Largest number of queries read but not yet answered on one connection,
 * measured after the server has read all it could: above 1 when a client
 * pipelines (or with reverse_batch / delay_ms / silent). */
unsigned ts_dotserver_max_pending(const ts_dotserver *s);
/* Connections the server closed by itself (close_after, idle_close_ms). */
unsigned ts_dotserver_closed_by_server(const ts_dotserver *s);

/* Replace the knobs of a running server: answers synthesised from now on
 * (including those of queries already read and waiting for delay_ms)
 * follow *k. Safe from any thread. */
void ts_dotserver_set_knobs(ts_dotserver *s, const ts_dotserver_knobs *k);

/* How many raw queries are remembered, and how many octets of each. */
#define TS_DOTSERVER_RECENT       64
#define TS_DOTSERVER_RECENT_BYTES 2048

/* The raw bytes of the query read `back` queries ago (0: the latest one), as
 * the client sent it (without the 2-octet length prefix), across all
 * connections in the order the server read them. Copies min(length, cap,
 * TS_DOTSERVER_RECENT_BYTES) octets to buf (may be NULL with cap 0) and
 * returns the query's full length, or -1 when fewer than back + 1 queries
 * are remembered. Safe from any thread. */
int ts_dotserver_recent_query(ts_dotserver *s, unsigned back, uint8_t *buf, size_t cap);

/* The answer the server synthesises for query q (see above) without any
 * misbehaviour mode: written to out[0..cap), returns its length, or -1 when
 * cap is too small (16384 is always enough). Reentrant; usable for a UDP
 * responder in tests. */
int ts_dotserver_synth_answer(const uint8_t *q, size_t qlen, uint8_t *out, size_t cap);

#endif
