/* SPDX-License-Identifier: MIT */
/* dotproxyd: dnstap output (--dnstap). The library's message tap
 * (dotproxy/tap.h) hands each worker's events here; they are encoded as
 * dnstap protobuf messages (dnstap/dnstap.proto, protobuf-c) and given to
 * libfstrm's I/O thread, which writes them as a Frame Streams stream to a
 * unix or TCP socket and reconnects when the receiver goes away.
 *
 * A worker never waits for the receiver: each worker has its own bounded
 * fstrm input queue, and a message that finds it full is dropped and
 * counted (dotproxyd_dnstap_dropped_total on /metrics). */
#ifndef DOTPROXYD_DNSTAP_H
#define DOTPROXYD_DNSTAP_H

#include <stddef.h>

#include <dotproxy/dotproxy.h>

/* Check "unix:PATH" or "tcp:ADDR@PORT" (ADDR an IP literal). 0, or -1 with
 * what is wrong in why. Works whether or not dnstap was built in (then it
 * says so). */
int dpd_dnstap_check(const char *spec, char *why, size_t cap);

/* Start the output to spec for n_workers producer threads (one queue each).
 * 0, or -1 with the reason in err. The receiver need not be listening yet:
 * the I/O thread connects (and reconnects) on its own. */
int dpd_dnstap_open(const char *spec, unsigned n_workers, char *err, size_t cap);

/* The tap's user argument for worker i (after dpd_dnstap_open). */
void *dpd_dnstap_worker(unsigned i);

/* dotproxy_tap_fn: called on worker i's thread only. */
void dpd_dnstap_event(const dotproxy_tap_event *ev, void *user);

/* Messages handed to the I/O thread and messages dropped (queue full or out
 * of memory) since the start, over all workers; from any thread. */
void dpd_dnstap_counts(unsigned long long *queued, unsigned long long *dropped);

/* Flush what is queued (libfstrm waits for its I/O thread) and stop. After
 * the workers have stopped; NULL-safe when never opened. */
void dpd_dnstap_close(void);

#endif
