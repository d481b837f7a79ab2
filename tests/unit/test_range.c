/*
 * HTTP Range parsing (http/range.c, RFC 9110 14.1.2 and 14.2): single ranges,
 * suffixes, clamping, what is ignored (200) and what is unsatisfiable (416).
 */
#include <stdint.h>

#include "../../http/http_internal.h"
#include "harness.h"

struct range_case {
    const char *value;
    uint64_t size;
    enum http_range want;
    uint64_t start, len;
};

static void test_ranges(void)
{
    static const struct range_case cases[] = {
        {NULL, 1000, HTTP_RANGE_NONE, 0, 1000},
        {"bytes=0-0", 1000, HTTP_RANGE_OK, 0, 1},           /* first byte */
        {"bytes=999-999", 1000, HTTP_RANGE_OK, 999, 1},     /* last byte */
        {"bytes=-1", 1000, HTTP_RANGE_OK, 999, 1},          /* last byte as a suffix */
        {"bytes=-100", 1000, HTTP_RANGE_OK, 900, 100},      /* suffix */
        {"bytes=-5000", 1000, HTTP_RANGE_OK, 0, 1000},      /* suffix longer than the file */
        {"bytes=500-", 1000, HTTP_RANGE_OK, 500, 500},      /* open end */
        {"bytes=500-99999", 1000, HTTP_RANGE_OK, 500, 500}, /* end clamped */
        {"bytes=0-18446744073709551615", 1000, HTTP_RANGE_OK, 0, 1000},
        {"bytes=0-99999999999999999999999", 1000, HTTP_RANGE_OK, 0, 1000}, /* saturates */
        {"Bytes = 10-19", 1000, HTTP_RANGE_OK, 10, 10},     /* unit is case-insensitive, OWS */
        {"bytes=10-19,", 1000, HTTP_RANGE_OK, 10, 10},      /* empty list element */
        {"bytes=, 10-19", 1000, HTTP_RANGE_OK, 10, 10},
        {"bytes=1000-", 1000, HTTP_RANGE_UNSATISFIABLE, 0, 0}, /* beyond the end */
        {"bytes=5000-6000", 1000, HTTP_RANGE_UNSATISFIABLE, 0, 0},
        {"bytes=20-10", 1000, HTTP_RANGE_UNSATISFIABLE, 0, 0}, /* last < first */
        {"bytes=-0", 1000, HTTP_RANGE_UNSATISFIABLE, 0, 0},
        {"bytes=0-", 0, HTTP_RANGE_UNSATISFIABLE, 0, 0},       /* empty file */
        {"bytes=-10", 0, HTTP_RANGE_UNSATISFIABLE, 0, 0},
        {"bytes=0-1,5-9", 1000, HTTP_RANGE_NONE, 0, 1000},     /* several: the whole file */
        {"bytes=0-1, 5000-6000", 1000, HTTP_RANGE_NONE, 0, 1000},
        {"items=0-1", 1000, HTTP_RANGE_NONE, 0, 1000},         /* another unit */
        {"bytes=", 1000, HTTP_RANGE_NONE, 0, 1000},
        {"bytes=-", 1000, HTTP_RANGE_NONE, 0, 1000},
        {"bytes=a-b", 1000, HTTP_RANGE_NONE, 0, 1000},
        {"bytes=1-2x", 1000, HTTP_RANGE_NONE, 0, 1000},
        {"bytes 1-2", 1000, HTTP_RANGE_NONE, 0, 1000},
        {"bytes=+1-2", 1000, HTTP_RANGE_NONE, 0, 1000},
        {"", 1000, HTTP_RANGE_NONE, 0, 1000},
    };

    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        const struct range_case *c = &cases[i];
        uint64_t start = 77, len = 77;
        enum http_range got = http_range_parse(c->value, c->size, &start, &len);

        CHECK_EQ_INT(got, c->want);
        if (got != c->want)
            fprintf(stderr, "  case %zu: \"%s\"\n", i, c->value ? c->value : "(null)");
        if (c->want != HTTP_RANGE_UNSATISFIABLE) {
            CHECK_EQ_INT(start, c->start);
            CHECK_EQ_INT(len, c->len);
        }
    }
}

int main(void)
{
    RUN(test_ranges);
    return harness_done();
}
