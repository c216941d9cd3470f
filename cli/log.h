/* SPDX-License-Identifier: MIT */
/* dotproxyd: the daemon's log sink, for the library's log callback (one per
 * worker), the query log and the main thread's own messages. Formats a line
 * as text ("dotproxyd[W]: LEVEL: MSG"), JSON (--log-format json) or for
 * syslog (--syslog), and writes it as one unit, so that lines from
 * concurrent workers never interleave.
 *
 * Logging never blocks the caller: lines go through a bounded queue to one
 * writer thread, which alone may wait for stderr or syslog. A line that
 * finds the queue full is dropped and counted (dpd_log_dropped); the count
 * is written to the log once writing resumes. Warnings and errors from the
 * workers repeated with the same text are written once, then summed up in
 * at most one line a minute. Every function here may be called from any
 * thread once dpd_log_open() has returned. */
#ifndef DOTPROXYD_LOG_H
#define DOTPROXYD_LOG_H

#include <time.h>

#include <dotproxy/dotproxy.h>

/* Per worker: the argument of the library's log callbacks, and the query
 * log's rate bound (lines in the current second, and those left out). Used
 * by its worker's thread only. */
struct dpd_log_source {
    unsigned worker;
    unsigned qlog_limit; /* --log-queries: lines per second */
    time_t qlog_second;
    unsigned qlog_lines;
    unsigned long qlog_suppressed;
};

/* The format, set once before any other thread starts (opens syslog if
 * asked), and the writer thread started (with every signal blocked). If it
 * cannot be started, lines are written synchronously, as said in the log. */
void dpd_log_open(int json, int use_syslog);

/* For tests: the clock (monotonic seconds) the repeat windows are measured
 * with; NULL: CLOCK_MONOTONIC. Set before dpd_log_open(). The writer looks at
 * it at least once a second. */
void dpd_log_set_clock(time_t (*now)(void));

/* Lines dropped since the start because the queue was full. */
unsigned long long dpd_log_dropped(void);

/* The main thread's level (the library's is given to each context). */
void dpd_log_set_level(int level);

/* dotproxy_log_fn and dotproxy_query_log_fn: user is a struct
 * dpd_log_source. */
void dpd_log_library(int level, const char *msg, void *user);
void dpd_log_query(const dotproxy_query_log *e, void *user);

/* A message from the main thread, filtered by dpd_log_set_level's level. */
void dpd_log_main(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A failure that ends the daemon: always shown, as "dotproxyd: MSG" in the
 * text format (what supervisors and the tests look for). */
void dpd_log_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Write what is queued (waiting at most 2 s for an output that does not
 * drain), stop the writer and undo dpd_log_open. For the end of main(). */
void dpd_log_close(void);

#endif
