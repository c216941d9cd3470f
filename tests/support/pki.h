/* SPDX-License-Identifier: MIT */
/* Test support: a throwaway PKI for the DoT tests, made with the GnuTLS x509
 * API in a few milliseconds (ECDSA P-256 keys). Nothing here is secret or
 * meant to outlive a test run. */
#ifndef TS_PKI_H
#define TS_PKI_H

#include <stddef.h>

/* The TLS name the good server certificate carries (also 127.0.0.1, ::1). */
#define TS_PKI_SERVER_NAME "dns.test"

/* The subjectAltNames of the client certificates (mutual TLS). */
#define TS_PKI_CLIENT_DNS "client.test"
#define TS_PKI_CLIENT_URI "spiffe://cluster.local/ns/web/sa/app"
#define TS_PKI_CLIENT_IP  "192.0.2.7"

/* Create, in the existing directory dir (written with 0600 for keys):
 *   ca.pem, ca-key.pem               the test CA (trust anchor for the tests)
 *   server.pem, server-key.pem       signed by the CA; SAN DNS "dns.test",
 *                                    IP 127.0.0.1 and ::1
 *   wrongname.pem, wrongname-key.pem signed by the CA; SAN DNS "wrong.test" only
 *   rogue-ca.pem                     a second CA nobody trusts
 *   rogue.pem, rogue-key.pem         signed by the rogue CA; SAN DNS "dns.test"
 *   cnonly.pem, cnonly-key.pem       signed by the CA; CN "dns.test", no SAN at all
 *   rsa1024.pem, rsa1024-key.pem     signed by the CA; like server.pem, but an
 *                                    RSA-1024 key (too short to trust)
 *   rsa2048.pem, rsa2048-key.pem     the same with an RSA-2048 key (long enough)
 *   ca2.pem, ca2-key.pem             a second CA, distinct from the first
 *   attacker.pem, attacker-key.pem   signed by ca2; SANs like server.pem
 *   client-dns.pem, client-uri.pem, client-ip.pem (and -key.pem)
 *                                    TLS client leaves signed by the CA, with
 *                                    one SAN each: TS_PKI_CLIENT_DNS, _URI, _IP
 *   client-ca2.pem, client-ca2-key.pem  a client leaf (URI SAN) signed by ca2
 * Every certificate is valid from one hour ago to one day ahead.
 * Returns 0 or a negative GnuTLS error code; GNUTLS_E_FILE_ERROR when a file
 * cannot be written, with errno telling why. Thread-safe. */
int ts_pki_make(const char *dir);

/* For a test program: a fresh directory $TMPDIR/<tag>-XXXXXX (or /tmp/...),
 * written to dir[0..cap), holding the whole PKI of ts_pki_make. Returns 0, or
 * -1 after saying why on stderr (nothing is left behind then). */
int ts_pki_tmpdir(char *dir, size_t cap, const char *tag);

/* Remove such a directory and the files in it. */
void ts_pki_tmpdir_remove(const char *dir);

/* "dir/name" for a file of such a directory, in one of four rotating buffers
 * of the calling thread (so a call's result stays valid across the next three
 * calls, e.g. the arguments of one function call). Aborts, saying why, if the
 * path does not fit. */
const char *ts_pki_path(const char *dir, const char *name);

/* A pin as --pin takes it: "sha256/" + base64 of raw[0..n) (32 octets for a
 * real pin; other lengths make malformed ones). 0, or -1 if cap is short. */
int ts_pki_pin_text(const unsigned char *raw, size_t n, char *out, size_t cap);

/* The pin of the first certificate of a PEM file: base64(SHA-256(its DER
 * SubjectPublicKeyInfo)), what `openssl x509 -pubkey | openssl pkey -pubin
 * -outform der | openssl dgst -sha256 -binary | base64` prints. 0, or a
 * negative GnuTLS error code (-1: cap is short). */
int ts_pki_spki_pin(const char *cert_file, char *out, size_t cap);

#endif
