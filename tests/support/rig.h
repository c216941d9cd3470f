/* SPDX-License-Identifier: MIT */
/* Test support: a real dotproxy_ctx on a thread of its own in front of the
 * in-tree DoT server (dotserver.h), with the throwaway PKI of pki.h; the
 * rig the in-process integration tests share. Check assertions: call from
 * a Check test only. The test thread reads the context's counters while
 * it runs and reloads it (proxy.h: both safe from any thread). */
#ifndef TS_RIG_H
#define TS_RIG_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "dotproxy/config.h"
#include "dotproxy/proxy.h"

#include "dotserver.h"

/* The PKI directory of this test process (ts_rig_pki_init). */
extern char ts_rig_pki[];

/* Make the PKI (once per process, before running the suite) and remove it. */
int ts_rig_pki_init(const char *tag);
void ts_rig_pki_fini(void);

/* ERR lines logged by contexts of this process. DP_TEST_LOG=1 prints every
 * line the engine logs to stderr. */
unsigned ts_rig_log_errors(void);

/* The lines logged by contexts of this process (Check forks each test, so a
 * test sees its own), as "[LEVEL] text" lines. The first 256 KiB are kept. */
const char *ts_rig_log_text(void);
/* Lines at max_level or more severe (DOTPROXY_LOG_ERR is 0) containing w1
 * and, unless NULL, w2. */
unsigned ts_rig_log_count(int max_level, const char *w1, const char *w2);
/* Wait (at most ms) until there is such a line; whether there is. */
int ts_rig_log_wait(int max_level, const char *w1, const char *w2, int ms);

/* A DoT server with certificate `cert` ("server": valid for the test name). */
ts_dotserver *ts_rig_server(ts_dotserver_opts o, const char *cert);
/* The same with the PKI directory's files crt (certificate chain) and key. */
ts_dotserver *ts_rig_server_files(ts_dotserver_opts o, const char *crt, const char *key);

/* A configuration listening on 127.0.0.1 port 0, trusting the test CA,
 * logging at debug into the rig's sink, with the given upstreams in order. */
dotproxy_config *ts_rig_config(const uint16_t *ports, size_t n);

typedef struct ts_rig {
    dotproxy_ctx *ctx;
    uint16_t port; /* the proxy's UDP and TCP port */
    pthread_t thread;
    int running;
    int run_rc;
} ts_rig;

/* Start a context from cfg (freed here) and run it on its own thread. */
void ts_rig_up(ts_rig *r, dotproxy_config *cfg);
/* Stop and join it, checking it ran and stopped cleanly (no-op if stopped). */
void ts_rig_stop(ts_rig *r);
/* ts_rig_stop, then free it. */
void ts_rig_down(ts_rig *r);
/* dotproxy_ctx_reload with cfg (freed here); asserts it was accepted and
 * waits until the context applied it (DOTPROXY_CTR_RELOADS). */
void ts_rig_reload(ts_rig *r, dotproxy_config *cfg);
/* The same without waiting (a reload that fails in the context's thread
 * does not count). */
void ts_rig_reload_async(ts_rig *r, dotproxy_config *cfg);
uint64_t ts_rig_ctr(const ts_rig *r, int which);
/* Wait (at most ms) until a context counter reaches want; the last value. */
uint64_t ts_rig_wait_ctr(const ts_rig *r, int which, uint64_t want, int ms);

/* A TCP port on 127.0.0.1 that refuses connections: bound, never listening,
 * and kept bound (so nobody else takes it) until the caller closes *fd. */
uint16_t ts_rig_refusing_port(int *fd);
/* One that accepts connections (the kernel completes the TCP handshake from
 * its backlog) and never answers a byte: a resolver whose TLS never
 * completes, as behind a black-holing middlebox. */
uint16_t ts_rig_mute_port(int *fd);
/* Upstream i's stats (asserts it exists). */
dotproxy_upstream_stats ts_rig_upstream(const ts_rig *r, size_t i);

#endif
