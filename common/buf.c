#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common.h"

struct buf *buf_new(size_t len)
{
    struct buf *b;

    if (len > SIZE_MAX - sizeof(*b))
        return NULL;
    b = malloc(sizeof(*b) + (len ? len : 1));
    if (!b)
        return NULL;
    atomic_init(&b->refs, 1);
    b->len = len;
    b->data = (uint8_t *)(b + 1);
    return b;
}

struct buf *buf_new_copy(const void *data, size_t len)
{
    struct buf *b = buf_new(len);

    if (b && len)
        memcpy(b->data, data, len);
    return b;
}

struct buf *buf_ref(struct buf *b)
{
    int old = atomic_fetch_add(&b->refs, 1);

    assert(old > 0);
    (void)old;
    return b;
}

void buf_unref(struct buf *b)
{
    int old;

    if (!b)
        return;
    old = atomic_fetch_sub(&b->refs, 1);
    assert(old > 0 && "buf refcount underflow");
    if (old == 1)
        free(b);
}

int bytes_append(struct bytes *v, const void *data, size_t len)
{
    if (len > v->cap - v->len) {
        size_t cap = v->cap ? v->cap : 256;
        uint8_t *p;

        while (cap - v->len < len) {
            if (cap > SIZE_MAX / 2)
                return -ENOMEM;
            cap *= 2;
        }
        p = realloc(v->data, cap);
        if (!p)
            return -ENOMEM;
        v->data = p;
        v->cap = cap;
    }
    if (len)
        memcpy(v->data + v->len, data, len);
    v->len += len;
    return 0;
}

int bytes_printf(struct bytes *v, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        return -EINVAL;
    if ((size_t)n < sizeof(small))
        return bytes_append(v, small, (size_t)n);
    {
        char *big = malloc((size_t)n + 1);
        int rc;

        if (!big)
            return -ENOMEM;
        va_start(ap, fmt);
        vsnprintf(big, (size_t)n + 1, fmt, ap);
        va_end(ap);
        rc = bytes_append(v, big, (size_t)n);
        free(big);
        return rc;
    }
}

void bytes_reset(struct bytes *v)
{
    free(v->data);
    v->data = NULL;
    v->len = v->cap = 0;
}

int64_t time_mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t time_wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void time_iso8601(int64_t ms, char *out, size_t outlen)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;

    gmtime_r(&secs, &tm);
    snprintf(out, outlen, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}
