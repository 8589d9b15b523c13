/*
 * log.c - formats a whole line into a local buffer and writes it with one write(2), so
 * concurrent threads never interleave and a full disk or closed stderr cannot block or
 * crash the caller (the line is then dropped).
 */
#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../core/civil.h"

static _Atomic int min_level = LOG_INFO;

void log_set_level(enum log_level level)
{
    atomic_store(&min_level, (int)level);
}

void log_write(enum log_level level, const char *msg, const char *fields_fmt, ...)
{
    static const char *const names[] = {"DEBUG", "INFO", "WARN", "ERROR"};
    if ((int)level < atomic_load(&min_level))
        return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct civil_time c;
    civil_from_seconds((int64_t)ts.tv_sec, &c);
    char line[2048];
    int n = snprintf(line, sizeof line, "%04lld-%02d-%02dT%02d:%02d:%02d.%03ldZ %s %s",
                     (long long)c.year, c.mon, c.mday, c.hour, c.min, c.sec, ts.tv_nsec / 1000000,
                     names[level], msg);
    if (n < 0)
        return;
    if ((size_t)n < sizeof line - 2 && fields_fmt != NULL && fields_fmt[0] != '\0') {
        line[n++] = ' ';
        va_list ap;
        va_start(ap, fields_fmt);
        int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fields_fmt, ap);
        va_end(ap);
        if (m > 0)
            n += m;
    }
    if ((size_t)n > sizeof line - 2)
        n = (int)sizeof line - 2;
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w; /* nothing sensible to do if stderr is gone */
}
