/* SPDX-License-Identifier: MIT */
/* dotproxyd: systemd's service notification protocol (sd_notify(3)),
 * without libsystemd.
 *
 * When $NOTIFY_SOCKET names an AF_UNIX datagram socket (an absolute path,
 * or '@' + a name in the abstract namespace), each call sends one datagram
 * of "KEY=VALUE" lines to it. The variable is left in place: the daemon
 * notifies several times (ready, each reload, stopping).
 *
 * Every function returns 0 when the datagram was sent, 1 when there is no
 * $NOTIFY_SOCKET (nothing to do), or a negative errno value on failure. A
 * failure is never a reason to stop: the caller logs it at debug level and
 * goes on. Not async-signal-safe (getenv, snprintf); call from the main
 * thread. */
#ifndef DOTPROXYD_NOTIFY_H
#define DOTPROXYD_NOTIFY_H

/* state: newline-separated "KEY=VALUE" assignments, sent as they are. */
int dpd_notify_send(const char *state);

/* "READY=1", "STATUS=<status>" when status is not NULL, "MAINPID=<pid>". */
int dpd_notify_ready(const char *status);

/* "RELOADING=1" and "MONOTONIC_USEC=<CLOCK_MONOTONIC now>", which systemd
 * uses to tell this reload's READY=1 from an earlier one. */
int dpd_notify_reloading(void);

/* "STOPPING=1". */
int dpd_notify_stopping(void);

#endif
