/* SPDX-License-Identifier: MIT */
/* Test support: a tiny DNS client for the tests. Builds queries, talks to
 * 127.0.0.1 over UDP or TCP (2-octet framing, RFC 1035 4.2.2) with timeouts,
 * and reads back the few answer fields the tests check.
 *
 * Self-contained (does not use libdotproxy). All functions are reentrant.
 * Errors are negative errno values; nothing here prints or aborts. */
#ifndef TS_DNSCLIENT_H
#define TS_DNSCLIENT_H

#include <stddef.h>
#include <stdint.h>

#define TS_DNS_TYPE_A    1
#define TS_DNS_TYPE_NS   2
#define TS_DNS_TYPE_SOA  6
#define TS_DNS_TYPE_TXT  16
#define TS_DNS_TYPE_AAAA 28
#define TS_DNS_TYPE_OPT  41

#define TS_DNS_FLAG_QR 0x8000u
#define TS_DNS_FLAG_AA 0x0400u
#define TS_DNS_FLAG_TC 0x0200u
#define TS_DNS_FLAG_RD 0x0100u
#define TS_DNS_FLAG_RA 0x0080u
#define TS_DNS_FLAG_AD 0x0020u
#define TS_DNS_FLAG_CD 0x0010u

#define TS_DNS_RCODE_NOERROR  0
#define TS_DNS_RCODE_FORMERR  1
#define TS_DNS_RCODE_SERVFAIL 2
#define TS_DNS_RCODE_NXDOMAIN 3

/* ---- building ------------------------------------------------------------ */

/* Write the wire form of a text name ("www.example.com", trailing dot
 * optional, "." or "" for the root) into out[0..cap), letter case kept.
 * Returns its length, -EINVAL (empty label, label > 63, name > 255 octets)
 * or -ENOSPC. */
int ts_dns_name_to_wire(uint8_t *out, size_t cap, const char *name);

/* Build a standard query (RD set, class IN, one question) with the given ID.
 * edns_udp_size > 0 adds an OPT RR advertising that payload size (version 0,
 * no DO, no options); 0 means no OPT. Returns the length, -EINVAL or -ENOSPC. */
int ts_dns_build_query(uint8_t *buf, size_t cap, uint16_t id, const char *name, uint16_t qtype,
                       int edns_udp_size);

/* ---- transport (127.0.0.1 only) ------------------------------------------ */

/* A UDP socket connect()ed to 127.0.0.1:port. Returns the fd or -errno. */
int ts_dns_udp_socket(uint16_t port);

/* Send one datagram. 0 or -errno. */
int ts_dns_udp_send(int fd, const uint8_t *msg, size_t len);

/* Wait up to timeout_ms for one datagram. Returns its length (truncated to
 * cap), -ETIMEDOUT or -errno. */
int ts_dns_udp_recv(int fd, uint8_t *buf, size_t cap, int timeout_ms);

/* Send q to 127.0.0.1:port over UDP from a fresh socket and return the first
 * datagram that comes back within timeout_ms (its length), or -ETIMEDOUT /
 * -errno. */
int ts_dns_udp_exchange(uint16_t port, const uint8_t *q, size_t qlen, uint8_t *ans, size_t cap,
                        int timeout_ms);

/* A blocking TCP connection to 127.0.0.1:port with TCP_NODELAY set.
 * Returns the fd (caller closes it) or -errno. */
int ts_dns_tcp_connect(uint16_t port);

/* Send one message with its 2-octet length prefix in a single write.
 * 0, -EINVAL (len 0 or > 65535) or -errno. */
int ts_dns_tcp_send(int fd, const uint8_t *msg, size_t len);

/* Send n framed messages back to back in a single write (pipelining).
 * 0, -EINVAL, -ENOMEM or -errno. */
int ts_dns_tcp_send_many(int fd, const uint8_t *const *msgs, const size_t *lens, size_t n);

/* Read exactly one framed message within timeout_ms (a total, not per read).
 * Returns its length; 0 when the peer closed cleanly before sending any byte
 * of it; -ETIMEDOUT; -EPROTO when the stream ends inside a message;
 * -EMSGSIZE when it does not fit cap (the stream is then unusable); -errno. */
int ts_dns_tcp_recv(int fd, uint8_t *buf, size_t cap, int timeout_ms);

/* ---- inspection ------------------------------------------------------------
 * These read untrusted bytes and never step outside msg[0..len). */

int ts_dns_id(const uint8_t *msg, size_t len);    /* -1 if len < 12 */
int ts_dns_flags(const uint8_t *msg, size_t len); /* the 16 flag bits, -1 if short */
int ts_dns_rcode(const uint8_t *msg, size_t len); /* header RCODE (4 bits), -1 if short */
/* Section count: which 0 = question, 1 = answer, 2 = authority, 3 = additional. */
int ts_dns_count(const uint8_t *msg, size_t len, int which);
int ts_dns_ancount(const uint8_t *msg, size_t len);

/* The first question's name as text, letters as sent, no trailing dot ("."
 * for the root). Returns the text length, or -1 (malformed or too long). */
int ts_dns_qname(const uint8_t *msg, size_t len, char *out, size_t cap);

/* Address of the first A record in the answer section: 0 and addr set, or -1
 * (none, or the message does not parse). */
int ts_dns_first_a(const uint8_t *msg, size_t len, uint8_t addr[4]);

/* Find the type/class/TTL of the first record of type `type` in section
 * `which` (1..3). Returns the offset of its RDATA and sets *rdlen, *ttl (may
 * be NULL), or -1. */
int ts_dns_find_rr(const uint8_t *msg, size_t len, int which, uint16_t type, uint16_t *rdlen,
                   uint32_t *ttl);

/* The payload size of the OPT RR (its CLASS), 0 when there is none, -1 when
 * the message does not parse. */
int ts_dns_opt_size(const uint8_t *msg, size_t len);

/* The address the test DoT server (dotserver.h) puts in the A answer for a
 * name: 192.0.2.N with N = (sum of the octets of the lower-cased wire name,
 * length octets and final zero included) % 250 + 1. Case-insensitive, so a
 * proxy that randomises letter case (0x20) gets the same address.
 * Returns 0, or -EINVAL for a bad name. */
int ts_dns_expected_a(const char *name, uint8_t addr[4]);

/* The same from a wire name (uncompressed) of wlen octets. */
void ts_dns_expected_a_wire(const uint8_t *wire, size_t wlen, uint8_t addr[4]);

/* ---- time ------------------------------------------------------------------- */

/* Milliseconds on CLOCK_MONOTONIC: deadlines and elapsed times in tests. */
int64_t ts_now_ms(void);

#endif
