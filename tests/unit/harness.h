/*
 * A tiny test harness: CHECK records a failure and goes on; TEST_MAIN runs the
 * listed test functions and exits non-zero if any check failed.
 */
#ifndef ONAIR_HARNESS_H
#define ONAIR_HARNESS_H

#include <stdio.h>
#include <string.h>

static int harness_failures;
static int harness_checks;

#define CHECK(cond)                                                                              \
    do {                                                                                         \
        harness_checks++;                                                                        \
        if (!(cond)) {                                                                           \
            harness_failures++;                                                                  \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);             \
        }                                                                                        \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                                       \
    do {                                                                                         \
        long long a_ = (long long)(a), b_ = (long long)(b);                                      \
        harness_checks++;                                                                        \
        if (a_ != b_) {                                                                          \
            harness_failures++;                                                                  \
            fprintf(stderr, "%s:%d: CHECK failed: %s == %s (%lld != %lld)\n", __FILE__,          \
                    __LINE__, #a, #b, a_, b_);                                                   \
        }                                                                                        \
    } while (0)

#define CHECK_EQ_STR(a, b)                                                                       \
    do {                                                                                         \
        const char *a_ = (a), *b_ = (b);                                                         \
        harness_checks++;                                                                        \
        if (!a_ || !b_ || strcmp(a_, b_) != 0) {                                                 \
            harness_failures++;                                                                  \
            fprintf(stderr, "%s:%d: CHECK failed: %s == %s (\"%s\" != \"%s\")\n", __FILE__,      \
                    __LINE__, #a, #b, a_ ? a_ : "(null)", b_ ? b_ : "(null)");                   \
        }                                                                                        \
    } while (0)

/* In main(): RUN(test_fn); ... return harness_done(); */
#define RUN(fn)                                                                                  \
    do {                                                                                         \
        int before_ = harness_failures;                                                          \
        fn();                                                                                    \
        fprintf(stderr, "%-44s %s\n", #fn, harness_failures == before_ ? "ok" : "FAILED");       \
    } while (0)

static inline int harness_done(void)
{
    fprintf(stderr, "%d checks, %d failed\n", harness_checks, harness_failures);
    return harness_failures ? 1 : 0;
}

#ifndef ARRAY_LEN
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#endif

#endif
