/* SPDX-License-Identifier: MIT */
/* Test support: an in-tree plain DNS server (UDP and TCP, RFC 1035 and RFC
 * 7766) on 127.0.0.1, answering like ts_dotserver does without any
 * misbehaviour (ts_dotserver_synth_answer), for the forward zones' "plain:"
 * upstreams. Over TCP it reads many framed queries per connection and
 * answers each as it is read. One thread with a poll loop; start/stop from
 * one thread, the counters from any. */
#ifndef TS_PLAINSERVER_H
#define TS_PLAINSERVER_H

#include <stddef.h>
#include <stdint.h>

typedef struct ts_plainserver ts_plainserver;

/* Listen on 127.0.0.1, TCP and UDP on the same port (0: the kernel picks
 * one free for both). 0, or -1 (socket or thread failure). */
int ts_plainserver_start(ts_plainserver **out, uint16_t port);
uint16_t ts_plainserver_port(const ts_plainserver *s);
/* Stop the thread, close everything, free s. NULL-safe. */
void ts_plainserver_stop(ts_plainserver *s);

unsigned ts_plainserver_tcp_queries(const ts_plainserver *s);
unsigned ts_plainserver_udp_queries(const ts_plainserver *s);
unsigned ts_plainserver_connections(const ts_plainserver *s);

/* The last query read over TCP, as sent (without its length prefix): copies
 * min(length, cap) octets to buf and returns its length, or -1 before the
 * first. Safe from any thread. */
int ts_plainserver_last_query(ts_plainserver *s, uint8_t *buf, size_t cap);

#endif
