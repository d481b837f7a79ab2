/*
 * The LL-HLS delivery directives of a playlist request (draft-pantos-hls-
 * rfc8216bis section 6.2.5): _HLS_msn, _HLS_part and _HLS_skip. Pure: the
 * three raw argument values in, a validated struct out.
 */
#include <errno.h>
#include <string.h>

#include "http_internal.h"

/* A decimal number without sign, spaces or leading '+', at most MAX. */
static int parse_uint(const char *s, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;

    if (!s || !*s)
        return -EINVAL;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -EINVAL;
        if (v > (max - (uint64_t)(*s - '0')) / 10)
            return -EINVAL;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    *out = v;
    return 0;
}

int hls_query_parse(const char *msn, const char *part, const char *skip, struct hls_query *q)
{
    uint64_t v;

    memset(q, 0, sizeof(*q));
    if (msn) {
        if (parse_uint(msn, HLS_QUERY_MSN_MAX, &q->msn) < 0)
            return -EINVAL;
        q->has_msn = true;
    }
    if (part) {
        /* _HLS_part without _HLS_msn is a client error (section 6.2.5.2). */
        if (!msn || parse_uint(part, HLS_QUERY_PART_MAX, &v) < 0)
            return -EINVAL;
        q->part = (unsigned)v;
        q->has_part = true;
    }
    if (skip) {
        if (strcmp(skip, "YES") == 0)
            q->skip = true;
        else if (strcmp(skip, "v2") == 0)
            q->skip = q->skip_v2 = true;
        else
            return -EINVAL;
    }
    return 0;
}
