/*
 * Shared bits of the fuzz targets: an invariant check that survives NDEBUG
 * (the fuzzer must crash on a broken invariant in every build type).
 */
#ifndef ONAIR_FUZZ_COMMON_H
#define ONAIR_FUZZ_COMMON_H

#include <stdio.h>
#include <stdlib.h>

#define FUZZ_CHECK(cond)                                                                         \
    do {                                                                                         \
        if (!(cond)) {                                                                           \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);         \
            abort();                                                                             \
        }                                                                                        \
    } while (0)

#endif
