/* SPDX-License-Identifier: MIT */
/* libdotproxy: DNS message validation and rewriting, and the 2-octet length
 * framing of DNS over TCP/TLS (RFC 1035 4.2.2, RFC 7766, RFC 7858).
 *
 * Everything here works on caller buffers and never allocates. Decoding
 * borrows the caller's bytes; encoding writes into a caller buffer and reports
 * DOTPROXY_ENOSPC (with the size needed, where one is returned) when it does
 * not fit. All functions are reentrant and may be called from any thread. */
#ifndef DOTPROXY_DNS_H
#define DOTPROXY_DNS_H

#include <stddef.h>
#include <stdint.h>

#include "dotproxy/export.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DOTPROXY_DNS_HEADER_SIZE 12
#define DOTPROXY_DNS_MAX_SIZE    65535u /* largest message a 2-octet prefix can carry */
#define DOTPROXY_DNS_MAX_NAME    255    /* RFC 1035 2.3.4, wire octets */
#define DOTPROXY_DNS_UDP_MIN     512    /* RFC 1035 / RFC 6891 6.2.5 floor */

/* Header flag bits (the third and fourth octets as a host-order uint16_t). */
#define DOTPROXY_DNS_FLAG_QR       0x8000u
#define DOTPROXY_DNS_FLAG_AA       0x0400u
#define DOTPROXY_DNS_FLAG_TC       0x0200u
#define DOTPROXY_DNS_FLAG_RD       0x0100u
#define DOTPROXY_DNS_FLAG_RA       0x0080u
#define DOTPROXY_DNS_FLAG_AD       0x0020u
#define DOTPROXY_DNS_FLAG_CD       0x0010u
#define DOTPROXY_DNS_OPCODE(flags) (((flags) >> 11) & 0xFu)
#define DOTPROXY_DNS_RCODE(flags)  ((flags)&0xFu)

/* The DO bit in dotproxy_dns_info.edns_flags (RFC 3225). */
#define DOTPROXY_DNS_EDNS_DO 0x8000u

enum dotproxy_dns_rcode {
    DOTPROXY_RCODE_NOERROR = 0,
    DOTPROXY_RCODE_FORMERR = 1,
    DOTPROXY_RCODE_SERVFAIL = 2,
    DOTPROXY_RCODE_NXDOMAIN = 3,
    DOTPROXY_RCODE_NOTIMP = 4,
    DOTPROXY_RCODE_REFUSED = 5,
    /* Extended rcodes (RFC 6891 6.1.3): the low 4 bits in the header, the
     * rest in the OPT RR. */
    DOTPROXY_RCODE_BADVERS = 16,
};

/* What dotproxy_dns_parse() learnt about a message. Offsets are from the
 * start of the message; all values are host order. A value type: copy it
 * freely; it points into nothing. */
typedef struct dotproxy_dns_info {
    uint16_t id;
    uint16_t flags; /* QR, opcode, AA, TC, RD, RA, Z, AD, CD, rcode */
    uint16_t qdcount;
    uint16_t ancount;
    uint16_t nscount;
    uint16_t arcount;
    /* The first question (all zero when qdcount is 0). */
    uint16_t qname_off; /* always DOTPROXY_DNS_HEADER_SIZE when qdcount > 0 */
    uint16_t qname_len; /* uncompressed wire length of the name, 1..255 */
    uint16_t qtype;
    uint16_t qclass;
    uint16_t question_end; /* offset just past the first question's QCLASS */
    /* The EDNS OPT pseudo-RR (RFC 6891), when present. */
    uint16_t opt_off;  /* offset of the OPT owner name (a root label); 0 = none */
    uint16_t opt_len;  /* whole OPT RR, owner name to end of RDATA */
    uint16_t udp_size; /* the requestor's payload size (OPT CLASS), raw */
    uint8_t ext_rcode; /* upper 8 bits of the extended rcode */
    uint8_t edns_version;
    uint16_t edns_flags; /* DO bit and Z */
} dotproxy_dns_info;

/* Validate the whole message msg[0..len) and describe it in *out.
 * Checks: a 12-octet header; every name in every section (labels <= 63,
 * names <= 255 octets, compression pointers only backwards, to an offset
 * inside the message, never in a loop); every RR's RDLENGTH within the
 * message; the section counts matching the bytes (no short or extra data);
 * at most one OPT RR, only in the additional section, with a root owner name.
 * Returns 0, DOTPROXY_EINVAL (NULL pointer) or DOTPROXY_EMALFORMED; *out is
 * written only on success. Never reads outside msg[0..len). */
DOTPROXY_EXPORT int dotproxy_dns_parse(dotproxy_dns_info *out, const uint8_t *msg, size_t len);

/* The message ID of msg (len >= 2), or -1 (DOTPROXY_EINVAL) when too short. */
DOTPROXY_EXPORT int dotproxy_dns_get_id(const uint8_t *msg, size_t len);

/* Overwrite the message ID in place. 0 or DOTPROXY_EINVAL (len < 2). */
DOTPROXY_EXPORT int dotproxy_dns_set_id(uint8_t *msg, size_t len, uint16_t id);

/* The largest answer the sender of query q may receive over UDP: 512 without
 * EDNS, else its advertised size with 512 as the floor (RFC 6891 6.2.5). */
DOTPROXY_EXPORT unsigned dotproxy_dns_udp_limit(const dotproxy_dns_info *q);

/* 1 when the first questions of a and b are the same (name compared without
 * regard to ASCII case, type and class equal), 0 when they differ or either
 * message fails to parse. Compression in either name is followed. */
DOTPROXY_EXPORT int dotproxy_dns_same_question(const uint8_t *a, size_t alen, const uint8_t *b,
                                               size_t blen);

/* Build, in out[0..cap), a reply to `query` that carries only a header, the
 * query's question (when it parses) and no records, with QR set, the query's
 * opcode, and the given rcode (usually FORMERR, SERVFAIL or REFUSED). For a
 * standard query (opcode 0) RD and CD are copied and RA set; a reply to any
 * other opcode carries no other flag. When the query has a readable header
 * but a question that does not parse, the reply has no question (qdcount
 * 0), as a FORMERR must. When the query had an OPT RR, the reply carries a
 * fresh OPT (our payload size 1232, version 0, DO copied) per RFC 6891 7.
 * rcode is 0..4095: one above 15 (BADVERS) needs that OPT to carry its
 * upper bits, so the query must have had one (and parsed whole).
 * Returns the reply's length, DOTPROXY_EMALFORMED when the query is shorter
 * than a header, DOTPROXY_ENOSPC when cap is too small (the reply never needs
 * more than qlen + 11 octets), or DOTPROXY_EINVAL (also for an rcode above 15
 * when the query had no OPT). */
DOTPROXY_EXPORT int dotproxy_dns_make_reply(uint8_t *out, size_t cap, const uint8_t *query,
                                            size_t qlen, unsigned rcode);

/* Truncate an answer in place so that it fits `limit` octets, RFC 1035 style:
 * when len <= limit nothing changes and len is returned without looking at
 * the message (callers have parsed it already); otherwise TC is set, the answer,
 * authority and additional sections are dropped, the OPT RR (if any) is kept
 * right after the question so the client still learns our EDNS size.
 * Returns the new length (<= limit), or DOTPROXY_EMALFORMED if msg does not
 * parse, or DOTPROXY_ENOSPC if even header + question + OPT exceed limit. */
DOTPROXY_EXPORT int dotproxy_dns_truncate(uint8_t *msg, size_t len, size_t limit);

/* ---- building a query and reading the records of a message -------------
 *
 * dotproxy_dns_build_query() writes a whole query from a name in text; the
 * record iterator walks every section of a message that
 * dotproxy_dns_parse() accepts (so every guard above applies: compression
 * pointers only backwards, bounded hops, names within 255 octets) and hands
 * out one record at a time, with typed readers for the common types. */

/* Options of dotproxy_dns_build_query(), or-ed together. */
#define DOTPROXY_DNS_Q_RD   0x01u /* recursion desired (what a stub wants) */
#define DOTPROXY_DNS_Q_CD   0x02u /* checking disabled */
#define DOTPROXY_DNS_Q_EDNS 0x04u /* add an OPT RR (RFC 6891) */
#define DOTPROXY_DNS_Q_DO   0x08u /* DNSSEC OK (RFC 3225); implies EDNS */
#define DOTPROXY_DNS_Q_ID   0x10u /* use the id argument, not a random ID */

#define DOTPROXY_DNS_CLASS_IN   1
#define DOTPROXY_DNS_TYPE_A     1
#define DOTPROXY_DNS_TYPE_NS    2
#define DOTPROXY_DNS_TYPE_CNAME 5
#define DOTPROXY_DNS_TYPE_SOA   6
#define DOTPROXY_DNS_TYPE_PTR   12
#define DOTPROXY_DNS_TYPE_MX    15
#define DOTPROXY_DNS_TYPE_TXT   16
#define DOTPROXY_DNS_TYPE_AAAA  28
#define DOTPROXY_DNS_TYPE_OPT   41

/* Room for any name in presentation form, escapes and the NUL included
 * (every octet of a 255-octet name written as \DDD stays below it). */
#define DOTPROXY_DNS_NAME_TEXT_MAX 1024

/* Write into out[0..cap) a query (opcode 0, one question) for `name` in
 * presentation form ("www.example.org", a final dot optional, "." for the
 * root; "\." and "\DDD" escapes allowed), qtype and qclass. opts: the
 * DOTPROXY_DNS_Q_* bits. The ID is `id` with DOTPROXY_DNS_Q_ID, else drawn
 * from the library's own generator (never rand(); thread-safe, seeded from
 * the kernel). With EDNS or DO the query ends with an OPT RR (version 0,
 * no options) advertising udp_size (0: 1232; below 512: 512).
 * Returns the query's length, DOTPROXY_EINVAL (NULL, or a name that is
 * empty, has an empty label, a label over 63 or a name over 255 octets),
 * or DOTPROXY_ENOSPC (cap too small; 12 + 255 + 4 + 11 = 282 always fits). */
DOTPROXY_EXPORT int dotproxy_dns_build_query(uint8_t *out, size_t cap, const char *name,
                                             uint16_t qtype, uint16_t qclass, unsigned opts,
                                             uint16_t id, uint16_t udp_size);

enum dotproxy_dns_section {
    DOTPROXY_DNS_SECTION_QUESTION = 0,
    DOTPROXY_DNS_SECTION_ANSWER = 1,
    DOTPROXY_DNS_SECTION_AUTHORITY = 2,
    DOTPROXY_DNS_SECTION_ADDITIONAL = 3,
};

/* One record (or question) of a message. A value type that borrows the
 * message: valid while the message bytes are. Offsets are from the start of
 * the message. For a question, ttl is 0 and rdata NULL, rdlen 0. */
typedef struct dotproxy_dns_rr {
    const uint8_t *msg; /* the message the record belongs to */
    size_t msg_len;
    int section;       /* a dotproxy_dns_section */
    uint16_t name_off; /* owner name (may be compressed) */
    uint16_t type;
    uint16_t rclass; /* for OPT: the payload size */
    uint32_t ttl;    /* for OPT: extended rcode, version, flags */
    uint16_t rdata_off;
    uint16_t rdlen;
    const uint8_t *rdata; /* msg + rdata_off */
} dotproxy_dns_rr;

/* Iteration state over one message. Fields are private; the struct is
 * public only so that it can live on the caller's stack. */
typedef struct dotproxy_dns_iter {
    const uint8_t *msg;
    size_t len;
    size_t pos;
    uint16_t left[4];
    int section;
} dotproxy_dns_iter;

/* Start iterating over msg[0..len): the whole message is validated first
 * with dotproxy_dns_parse()'s rules. 0, DOTPROXY_EINVAL (NULL) or
 * DOTPROXY_EMALFORMED (then every dotproxy_dns_iter_next() returns 0). */
DOTPROXY_EXPORT int dotproxy_dns_iter_init(dotproxy_dns_iter *it, const uint8_t *msg, size_t len);

/* The next record, in message order (questions, answers, authority,
 * additional; the OPT RR too): 1 and *rr filled, 0 at the end, or
 * DOTPROXY_EINVAL (NULL). */
DOTPROXY_EXPORT int dotproxy_dns_iter_next(dotproxy_dns_iter *it, dotproxy_dns_rr *rr);

/* The name at msg[off] in presentation form into buf[0..cap): labels joined
 * by dots, a final dot, "." for the root, case kept; '.', '\\' and the
 * master-file specials escaped with '\\', other octets outside 0x21..0x7E
 * as \DDD. Compression is followed with dotproxy_dns_parse()'s bounds.
 * Returns the text length (without the NUL), DOTPROXY_EINVAL (NULL),
 * DOTPROXY_EMALFORMED or DOTPROXY_ENOSPC (DOTPROXY_DNS_NAME_TEXT_MAX
 * always suffices). */
DOTPROXY_EXPORT int dotproxy_dns_name_text(const uint8_t *msg, size_t len, size_t off, char *buf,
                                           size_t cap);

/* The owner name of rr as text (as dotproxy_dns_name_text). */
DOTPROXY_EXPORT int dotproxy_dns_rr_name(const dotproxy_dns_rr *rr, char *buf, size_t cap);

/* The address of an A (IN, 4 octets) or AAAA (IN, 16 octets) record, in
 * network order. 0, or DOTPROXY_EINVAL (NULL, another type or class, or
 * the wrong RDATA length). */
DOTPROXY_EXPORT int dotproxy_dns_rr_a(const dotproxy_dns_rr *rr, uint8_t out[4]);
DOTPROXY_EXPORT int dotproxy_dns_rr_aaaa(const dotproxy_dns_rr *rr, uint8_t out[16]);

/* The target name of a CNAME (also NS and PTR, which have the same RDATA)
 * as text. Length, or DOTPROXY_EINVAL (another type), DOTPROXY_EMALFORMED,
 * DOTPROXY_ENOSPC. */
DOTPROXY_EXPORT int dotproxy_dns_rr_cname(const dotproxy_dns_rr *rr, char *buf, size_t cap);

/* The character-strings of a TXT record, one per call: start with
 * *pos = 0; each call returns 1 with *str (borrowed from the message, not
 * NUL-terminated) and *len (0..255), 0 after the last one, or
 * DOTPROXY_EINVAL (not TXT, NULL) or DOTPROXY_EMALFORMED (a length running
 * past the RDATA). */
DOTPROXY_EXPORT int dotproxy_dns_rr_txt(const dotproxy_dns_rr *rr, size_t *pos, const uint8_t **str,
                                        size_t *len);

/* An SOA record's fields (RFC 1035 3.3.13); the two names as offsets into
 * the message, for dotproxy_dns_name_text(). */
typedef struct dotproxy_dns_soa {
    uint16_t mname_off;
    uint16_t rname_off;
    uint32_t serial;
    uint32_t refresh;
    uint32_t retry;
    uint32_t expire;
    uint32_t minimum;
} dotproxy_dns_soa;

/* 0 and *out filled, or DOTPROXY_EINVAL (NULL, not SOA) or
 * DOTPROXY_EMALFORMED. */
DOTPROXY_EXPORT int dotproxy_dns_rr_soa(const dotproxy_dns_rr *rr, dotproxy_dns_soa *out);

/* ---- 2-octet length framing (TCP / TLS) ---------------------------------
 *
 * A reassembly buffer over caller memory. Bytes are read straight into it
 * (dotproxy_frame_space + dotproxy_frame_commit), then whole messages are
 * taken out one by one (dotproxy_frame_next), however the stream was split:
 * a prefix split across reads, many messages in one read. Fields are private;
 * the struct is public only so it can live inside the caller's objects. */
typedef struct dotproxy_frame {
    uint8_t *buf;
    size_t cap;
    size_t head; /* first byte not yet returned */
    size_t tail; /* end of the bytes read so far */
} dotproxy_frame;

/* Use buf[0..cap) as the reassembly buffer. A message of N octets needs
 * cap >= N + 2; 65537 takes any message. cap must be at least 3. */
DOTPROXY_EXPORT void dotproxy_frame_init(dotproxy_frame *f, uint8_t *buf, size_t cap);

/* Where the next read may write: *where and the number of free octets
 * (never 0 while no complete message waits: it moves pending bytes to the
 * front first). Messages returned before are invalid after this call. */
DOTPROXY_EXPORT size_t dotproxy_frame_space(dotproxy_frame *f, uint8_t **where);

/* Record that n octets were written at the place dotproxy_frame_space gave. */
DOTPROXY_EXPORT void dotproxy_frame_commit(dotproxy_frame *f, size_t n);

/* Take the next whole message: 1 and *msg, *len set (valid until the next
 * dotproxy_frame_space call), 0 when more bytes are needed, or an error:
 * DOTPROXY_EMALFORMED for a zero-length frame, DOTPROXY_ENOSPC for a frame
 * longer than the buffer can hold (the stream cannot continue after either). */
DOTPROXY_EXPORT int dotproxy_frame_next(dotproxy_frame *f, const uint8_t **msg, size_t *len);

/* Octets held that are not part of a whole message (complete messages not
 * yet taken are not counted): nonzero at end of stream means a cut frame. */
DOTPROXY_EXPORT size_t dotproxy_frame_pending(const dotproxy_frame *f);

/* Write the 2-octet big-endian prefix for a message of len octets (1..65535).
 * 0 or DOTPROXY_EINVAL. */
DOTPROXY_EXPORT int dotproxy_frame_put_prefix(uint8_t out[2], size_t len);

#ifdef __cplusplus
}
#endif
#endif
