/*
 * Pure request parsing: the URL path rule, the LL-HLS delivery directives
 * (draft-pantos-hls-rfc8216bis 6.2.5: _HLS_msn, _HLS_part, _HLS_skip), part
 * names, If-None-Match and Accept-Encoding. Strings in, verdicts out; no
 * I/O, no allocation (tests/fuzz/fuzz_http.c drives them all).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../store/store.h"
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

bool http_path_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
}

/*
 * True if PATH is "/" followed by '/'-separated segments of [A-Za-z0-9_.-],
 * each 1..STORE_NAME_MAX-1 long and not starting with '.'; only the last
 * segment may be empty (a trailing slash).
 */
bool http_path_ok(const char *path)
{
    const char *seg;

    if (path[0] != '/')
        return false;
    for (seg = path + 1;;) {
        size_t n = 0;

        while (http_path_char(seg[n]))
            n++;
        if (seg[n] != '/' && seg[n] != '\0')
            return false;
        if (n == 0 && seg[n] == '/')
            return false;
        if (n >= STORE_NAME_MAX || (n > 0 && seg[0] == '.'))
            return false;
        if (seg[n] == '\0')
            return true;
        seg += n + 1;
    }
}

/* True if the If-None-Match value VALUE lists ETAG (weak comparison, RFC 9110 13.1.2). */
bool http_etag_matches(const char *value, const char *etag)
{
    const char *p;

    if (!value)
        return false;
    while (*value == ' ' || *value == '\t')
        value++;
    if (strcmp(value, "*") == 0)
        return true;
    for (p = value; (p = strstr(p, etag)) != NULL; p++) {
        char after = p[strlen(etag)];

        if (after == '\0' || after == ',' || after == ' ' || after == '\t')
            return true;
    }
    return false;
}

/* True if an Accept-Encoding value accepts gzip (RFC 9110 12.5.3; q=0 refuses). */
bool http_accepts_gzip(const char *v)
{
    while (v && *v) {
        const char *end = strchr(v, ','), *semi;
        size_t n;

        while (*v == ' ' || *v == '\t')
            v++;
        n = end ? (size_t)(end - v) : strlen(v);
        semi = memchr(v, ';', n);
        if (((semi ? (size_t)(semi - v) : n) == 4 && strncasecmp(v, "gzip", 4) == 0) ||
            ((semi ? (size_t)(semi - v) : n) == 1 && v[0] == '*')) {
            const char *q = semi ? strstr(semi, "q=") : NULL;

            if (!q || q >= v + n)
                return true;
            q += 2;
            /* q=0, q=0.0, q=0.00, q=0.000 refuse; anything else accepts. */
            while (*q == '0' || *q == '.')
                q++;
            return q < v + n && *q >= '1' && *q <= '9';
        }
        v = end ? end + 1 : NULL;
    }
    return false;
}

/* Parses "part-GEN-MSN-IDX.m4s" into a progress key. */
bool http_part_key(const char *obj, uint64_t *key)
{
    const char *p = strrchr(obj, '-'), *q;
    unsigned long long msn, idx;
    char *end;

    if (strncmp(obj, "part-", 5) != 0 || !p || p == obj)
        return false;
    idx = strtoull(p + 1, &end, 10);
    if (strcmp(end, ".m4s") != 0 || idx >= STORE_PART_END)
        return false;
    for (q = p - 1; q > obj && *q != '-'; q--)
        ;
    if (q <= obj + 4)
        return false;
    msn = strtoull(q + 1, &end, 10);
    if (end != p || msn > HLS_QUERY_MSN_MAX)
        return false;
    *key = STORE_KEY(msn, idx);
    return true;
}
