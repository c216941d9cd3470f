/* SPDX-License-Identifier: MIT */
/* dotproxyd: reading the configuration file.
 *
 * libinih (as Debian builds it) hands its callback neither the line number
 * nor the raw line, and silently splits a line longer than its buffer into
 * two. So the file is fed through our own line reader: it counts lines
 * (every message names one), notices a line that starts with whitespace (a
 * continuation) and refuses an over-long line instead of letting its tail be
 * parsed as a line of its own. After the first error the reader reports end
 * of file, so parsing stops there. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ini.h>

#include "config_file.h"

struct reader {
    FILE *f;
    const char *path;
    unsigned line;    /* number of the line being parsed, from 1 */
    int continuation; /* the current line starts with whitespace */
    int failed;       /* err holds the first error */
    dpd_config_file_fn fn;
    void *user;
    char *err;
    size_t errlen;
};

static void reader_fail(struct reader *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void reader_fail(struct reader *r, const char *fmt, ...)
{
    char why[768];
    va_list ap;

    if (r->failed)
        return;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    snprintf(r->err, r->errlen, "%s:%u: %s", r->path, r->line, why);
    r->failed = 1;
}

static char *read_line(char *str, int num, void *stream)
{
    struct reader *r = stream;
    size_t n;

    if (r->failed || fgets(str, num, r->f) == NULL)
        return NULL;
    n = strlen(str);
    r->line++;
    r->continuation = str[0] == ' ' || str[0] == '\t';
    if (n > 0 && str[n - 1] == '\n')
        return str;
    /* No newline: the last line of the file, or one longer than the buffer.
     * A line that fills the buffer exactly may still end right here. */
    {
        int c = fgetc(r->f);

        if (c == EOF || c == '\n')
            return str;
        reader_fail(r,
                    "line longer than %d characters (continue a long value on "
                    "lines that start with a space)",
                    num - 1);
        return NULL;
    }
}

static int on_key(void *user, const char *section, const char *name, const char *value)
{
    struct reader *r = user;
    char why[768] = "";

    if (r->failed)
        return 0;
    if (section[0] != '\0' && strcmp(section, "dotproxyd") != 0) {
        reader_fail(r,
                    "unknown section [%s] (keys go at the top of the file or under "
                    "[dotproxyd])",
                    section);
        return 0;
    }
    if (r->fn(r->user, name, value, r->line, r->continuation, why, sizeof why) != 0) {
        reader_fail(r, "%s", why[0] != '\0' ? why : "invalid");
        return 0;
    }
    return 1;
}

static const char *file_type(mode_t mode)
{
    if (S_ISFIFO(mode))
        return "a FIFO";
    if (S_ISDIR(mode))
        return "a directory";
    if (S_ISCHR(mode))
        return "a character device";
    if (S_ISBLK(mode))
        return "a block device";
    if (S_ISSOCK(mode))
        return "a socket";
    return "not a file";
}

/* /dev/null reads as an empty file and never blocks: "-c /dev/null" is the
 * documented way to run without a file under a unit that always passes
 * -c (deploy/systemd/dotproxyd.service). Known by its device number, not
 * its name. */
static int is_dev_null(const struct stat *st)
{
    struct stat null;

    return S_ISCHR(st->st_mode) && stat("/dev/null", &null) == 0 && S_ISCHR(null.st_mode) &&
           null.st_rdev == st->st_rdev;
}

int dpd_open_regular(const char *path, char *why, size_t cap)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    int flags;

    if (fd < 0) {
        snprintf(why, cap, "cannot open: %s", strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) != 0) {
        snprintf(why, cap, "cannot stat: %s", strerror(errno));
        close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode) && !is_dev_null(&st)) {
        snprintf(why, cap, "not a regular file (%s)", file_type(st.st_mode));
        close(fd);
        return -1;
    }
    flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0) {
        snprintf(why, cap, "fcntl: %s", strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

int dpd_config_file_read(const char *path, dpd_config_file_fn fn, void *user, char *err,
                         size_t errlen)
{
    struct reader r;
    int rc;

    memset(&r, 0, sizeof r);
    r.path = path;
    r.fn = fn;
    r.user = user;
    r.err = err;
    r.errlen = errlen;
    {
        char why[256];
        int fd = dpd_open_regular(path, why, sizeof why);

        if (fd < 0) {
            snprintf(err, errlen, "config file %s: %s", path, why);
            return -1;
        }
        r.f = fdopen(fd, "r");
        if (r.f == NULL) {
            snprintf(err, errlen, "config file %s: %s", path, strerror(errno));
            close(fd);
            return -1;
        }
    }
    rc = ini_parse_stream(read_line, &r, on_key, &r);
    if (!r.failed && ferror(r.f)) {
        snprintf(err, errlen, "%s: read error after line %u", path, r.line);
        r.failed = 1;
    }
    fclose(r.f);
    if (r.failed)
        return -1;
    if (rc != 0) {
        /* A line libinih could not parse: our handler was never called. */
        snprintf(err, errlen, "%s:%d: expected 'key = value', a comment or [dotproxyd]", path, rc);
        return -1;
    }
    return 0;
}
