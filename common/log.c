#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "common.h"

static atomic_int log_level = LOG_INFO;

void log_set_level(enum log_level level)
{
    atomic_store(&log_level, (int)level);
}

enum log_level log_get_level(void)
{
    return (enum log_level)atomic_load(&log_level);
}

void log_msg(enum log_level level, const char *module, const char *fmt, ...)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    char line[1024];
    char ts[32];
    va_list ap;
    int n;

    if ((int)level > atomic_load(&log_level))
        return;
    time_iso8601(time_wall_ms(), ts, sizeof(ts));
    n = snprintf(line, sizeof(line), "%s %-5s %s: ", ts, names[level], module);
    if (n < 0 || (size_t)n >= sizeof(line))
        n = 0;
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    /* One fputs per line keeps lines whole across threads. */
    fprintf(stderr, "%s\n", line);
}
