#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common.h"

static atomic_int log_level = LOG_INFO;
static atomic_bool log_json; /* log.format: json (log_json.c) */

void log_set_json(bool on)
{
    atomic_store(&log_json, on);
}

void log_set_level(enum log_level level)
{
    atomic_store(&log_level, (int)level);
}

enum log_level log_get_level(void)
{
    return (enum log_level)atomic_load(&log_level);
}

static void log_vmsg(enum log_level level, const char *module, const char *fmt, va_list ap)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    char line[1024];
    char ts[32];
    int n;

    /* After the level check and the rate limit (callers): JSON lines are limited alike. */
    if (atomic_load_explicit(&log_json, memory_order_relaxed)) {
        log_json_v(level, module, fmt, ap);
        return;
    }
    time_iso8601(time_wall_ms(), ts, sizeof(ts));
    n = snprintf(line, sizeof(line), "%s %-5s %s: ", ts, names[level], module);
    if (n < 0 || (size_t)n >= sizeof(line))
        n = 0;
    vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    /* One fputs per line keeps lines whole across threads. */
    fprintf(stderr, "%s\n", line);
}

void log_msg(enum log_level level, const char *module, const char *fmt, ...)
{
    va_list ap;

    if ((int)level > atomic_load(&log_level))
        return;
    va_start(ap, fmt);
    log_vmsg(level, module, fmt, ap);
    va_end(ap);
}

/* ---- rate-limited lines --------------------------------------------------- */

#define LIMIT_SLOTS 64

struct limit_slot {
    const char *fmt; /* the call site; NULL = free */
    enum log_level level;
    char module[24]; /* the module name up to its first '[' or ' ' */
    int64_t start_ms;
    unsigned printed, suppressed;
};

static pthread_mutex_t limit_lock = PTHREAD_MUTEX_INITIALIZER;
static struct limit_slot limit_slots[LIMIT_SLOTS];

static void print_suppressed(struct limit_slot *sl, int64_t now)
{
    if (sl->suppressed)
        log_msg(sl->level, sl->module, "%u similar lines suppressed in the last %lld s (\"%.60s\")",
                sl->suppressed, (long long)(now - sl->start_ms + 999) / 1000, sl->fmt);
    sl->start_ms = now;
    sl->printed = sl->suppressed = 0;
}

/* Finds or claims FMT's slot; NULL when every slot is taken (then the line is printed). */
static struct limit_slot *limit_slot(const char *fmt, enum log_level level, const char *module)
{
    struct limit_slot *free_slot = NULL;

    for (size_t i = 0; i < LIMIT_SLOTS; i++) {
        if (limit_slots[i].fmt == fmt)
            return &limit_slots[i];
        if (!limit_slots[i].fmt && !free_slot)
            free_slot = &limit_slots[i];
    }
    if (free_slot) {
        size_t n = strcspn(module, "[ ");

        if (n >= sizeof(free_slot->module))
            n = sizeof(free_slot->module) - 1;
        memcpy(free_slot->module, module, n);
        free_slot->module[n] = '\0';
        free_slot->fmt = fmt;
        free_slot->level = level;
        free_slot->start_ms = time_mono_ms();
    }
    return free_slot;
}

/* True if a line of call site SITE may be printed now (counts it otherwise). */
static bool limit_allows(const char *site, enum log_level level, const char *module)
{
    struct limit_slot *sl;
    int64_t now = time_mono_ms();
    bool print = true;

    pthread_mutex_lock(&limit_lock);
    sl = limit_slot(site, level, module);
    if (sl) {
        if (now - sl->start_ms >= LOG_LIMIT_INTERVAL_MS)
            print_suppressed(sl, now);
        print = sl->printed < LOG_LIMIT_BURST;
        if (print)
            sl->printed++;
        else
            sl->suppressed++;
    }
    pthread_mutex_unlock(&limit_lock);
    return print;
}

void log_msg_limited(enum log_level level, const char *module, const char *fmt, ...)
{
    va_list ap;

    if ((int)level > atomic_load(&log_level) || !limit_allows(fmt, level, module))
        return;
    va_start(ap, fmt);
    log_vmsg(level, module, fmt, ap);
    va_end(ap);
}

void log_msg_limited_site(const char *site, enum log_level level, const char *module,
                          const char *fmt, ...)
{
    va_list ap;

    if ((int)level > atomic_load(&log_level) || !limit_allows(site, level, module))
        return;
    va_start(ap, fmt);
    log_vmsg(level, module, fmt, ap);
    va_end(ap);
}

void log_limited_flush(void)
{
    int64_t now = time_mono_ms();

    pthread_mutex_lock(&limit_lock);
    for (size_t i = 0; i < LIMIT_SLOTS; i++)
        if (limit_slots[i].fmt && limit_slots[i].suppressed &&
            now - limit_slots[i].start_ms >= LOG_LIMIT_INTERVAL_MS)
            print_suppressed(&limit_slots[i], now);
    pthread_mutex_unlock(&limit_lock);
}
