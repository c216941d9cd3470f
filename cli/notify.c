/* SPDX-License-Identifier: MIT */
/* sd_notify(3), the wire side: one AF_UNIX SOCK_DGRAM datagram per state
 * change, to the address in $NOTIFY_SOCKET. A fresh socket per message, as
 * libsystemd does: there are only a handful of messages in a daemon's life,
 * and nothing stays open that a fork or a reload would have to care about.
 *
 * systemd learns the sender's pid from SCM_CREDENTIALS, which the kernel
 * attaches on its own for an unconnected AF_UNIX sender when the receiver
 * asked for them (SO_PASSCRED), so nothing is added here; with
 * NotifyAccess=main the messages must come from the main process, which is
 * the thread calling these functions. */
#include "notify.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* A receiver that stopped reading must not hang a reload or a stop: a
 * full queue is waited on this long, then the message is given up. */
#define NOTIFY_SEND_TIMEOUT_SEC 2

/* Fills *sa from $NOTIFY_SOCKET. Returns the address length, 0 when the
 * variable is unset or empty, or a negative errno value. */
static int notify_address(struct sockaddr_un *sa)
{
    const char *name = getenv("NOTIFY_SOCKET");
    size_t len;

    if (name == NULL || name[0] == '\0')
        return 0;
    /* Other forms ("vsock:CID:PORT", newer systemd) are for VMs; a daemon
     * started on the host by systemd always gets a path or an abstract
     * name. */
    if (name[0] != '/' && name[0] != '@')
        return -EAFNOSUPPORT;
    len = strlen(name);
    if (len > sizeof sa->sun_path - (name[0] == '/' ? 1 : 0))
        return -ENAMETOOLONG;
    memset(sa, 0, sizeof *sa);
    sa->sun_family = AF_UNIX;
    memcpy(sa->sun_path, name, len);
    if (name[0] == '@') {
        /* Abstract namespace: a leading NUL, and the name is exactly the
         * bytes counted in the length (no terminator, no padding). */
        sa->sun_path[0] = '\0';
        return (int)(offsetof(struct sockaddr_un, sun_path) + len);
    }
    return (int)(offsetof(struct sockaddr_un, sun_path) + len + 1);
}

int dpd_notify_send(const char *state)
{
    struct sockaddr_un sa;
    struct timeval tv = {.tv_sec = NOTIFY_SEND_TIMEOUT_SEC, .tv_usec = 0};
    size_t len = strlen(state);
    int salen = notify_address(&sa);
    int fd, r = 0;
    ssize_t sent;

    if (salen <= 0)
        return salen == 0 ? 1 : salen;
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    do
        sent = sendto(fd, state, len, MSG_NOSIGNAL, (struct sockaddr *)&sa, (socklen_t)salen);
    while (sent < 0 && errno == EINTR);
    if (sent < 0)
        r = -errno;
    else if ((size_t)sent != len)
        r = -EMSGSIZE; /* a datagram is all or nothing; never seen */
    close(fd);
    return r;
}

int dpd_notify_ready(const char *status)
{
    char msg[1400];
    size_t len = (size_t)snprintf(msg, sizeof msg, "READY=1\nMAINPID=%ld", (long)getpid());

    if (status != NULL) {
        size_t start = len + strlen("\nSTATUS=");

        snprintf(msg + len, sizeof msg - len, "\nSTATUS=%s", status);
        /* One line: a newline in the status would start an assignment of
         * its own. */
        for (char *p = msg + start; *p != '\0'; p++)
            if (*p == '\n')
                *p = ' ';
    }
    return dpd_notify_send(msg);
}

int dpd_notify_reloading(void)
{
    struct timespec now;
    char msg[80];

    /* systemd compares this with its own CLOCK_MONOTONIC reading taken when
     * it sent the reload request. */
    if (clock_gettime(CLOCK_MONOTONIC, &now) != 0)
        return -errno;
    snprintf(msg, sizeof msg, "RELOADING=1\nMONOTONIC_USEC=%llu",
             (unsigned long long)now.tv_sec * 1000000ULL + (unsigned long long)now.tv_nsec / 1000);
    return dpd_notify_send(msg);
}

int dpd_notify_stopping(void)
{
    return dpd_notify_send("STOPPING=1");
}
