/*
 * HTTP Range (RFC 9110 14.1.2, 14.2, 14.4): one byte range out of a Range
 * header value. Pure: a string and a size in, a verdict out
 * (tests/fuzz/fuzz_range.c).
 *
 *   Range: bytes=0-499      first 500 bytes
 *   Range: bytes=500-       from byte 500 to the end
 *   Range: bytes=-500       the last 500 bytes
 *
 * Several ranges are answered with the whole representation (200): a server
 * may ignore Range (14.2), and a multipart/byteranges body buys players
 * nothing.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "http_internal.h"

/* Digits at *S into *V (saturating at UINT64_MAX); false if there is none. */
static bool digits(const char **s, uint64_t *v)
{
    const char *p = *s;

    *v = 0;
    if (*p < '0' || *p > '9')
        return false;
    for (; *p >= '0' && *p <= '9'; p++) {
        uint64_t d = (uint64_t)(*p - '0');

        *v = *v > (UINT64_MAX - d) / 10 ? UINT64_MAX : *v * 10 + d;
    }
    *s = p;
    return true;
}

static const char *skip_ows(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    return s;
}

enum http_range http_range_parse(const char *value, uint64_t size, uint64_t *start, uint64_t *len)
{
    const char *p;
    uint64_t first = 0, last = 0;
    bool has_first, has_last;

    *start = 0;
    *len = size;
    if (!value)
        return HTTP_RANGE_NONE;
    p = skip_ows(value);
    if (strncasecmp(p, "bytes", 5) != 0)
        return HTTP_RANGE_NONE; /* another unit: ignored (14.2) */
    p = skip_ows(p + 5);
    if (*p++ != '=')
        return HTTP_RANGE_NONE;
    p = skip_ows(p);
    while (*p == ',') /* empty list elements are allowed (5.6.1) */
        p = skip_ows(p + 1);
    has_first = digits(&p, &first);
    if (*p++ != '-')
        return HTTP_RANGE_NONE;
    has_last = digits(&p, &last);
    p = skip_ows(p);
    while (*p == ',') {
        p = skip_ows(p + 1);
        if (*p)
            return HTTP_RANGE_NONE; /* a second range: the whole representation */
    }
    if (*p || (!has_first && !has_last))
        return HTTP_RANGE_NONE; /* not a byte range: ignored */
    if (!has_first) { /* suffix: the last LAST bytes */
        if (last == 0 || size == 0)
            return HTTP_RANGE_UNSATISFIABLE;
        *len = last < size ? last : size;
        *start = size - *len;
        return HTTP_RANGE_OK;
    }
    if ((has_last && last < first) || first >= size)
        return HTTP_RANGE_UNSATISFIABLE;
    if (!has_last || last >= size)
        last = size - 1;
    *start = first;
    *len = last - first + 1;
    return HTTP_RANGE_OK;
}
