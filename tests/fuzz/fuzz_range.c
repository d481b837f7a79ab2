/*
 * Fuzz target for the Range header parser (http/range.c). Input: 8 bytes of
 * representation size, then the header value. Invariants: a range is inside
 * the representation and not empty; NONE means the whole of it.
 */
#include <stdio.h>
#include <string.h>

#include "../../http/http_internal.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char value[1024];
    uint64_t total = 0, start, len;
    size_t n;

    if (size < 8)
        return 0;
    for (int i = 0; i < 8; i++)
        total = total << 8 | data[i];
    if (data[0] & 0x80)
        total &= 0xffffff; /* small sizes often: edges near the end */
    n = size - 8 < sizeof(value) - 1 ? size - 8 : sizeof(value) - 1;
    memcpy(value, data + 8, n);
    value[n] = '\0';
    switch (http_range_parse(value, total, &start, &len)) {
    case HTTP_RANGE_OK:
        FUZZ_CHECK(len > 0);
        FUZZ_CHECK(start < total);
        FUZZ_CHECK(len <= total - start);
        break;
    case HTTP_RANGE_NONE:
        FUZZ_CHECK(start == 0 && len == total);
        break;
    case HTTP_RANGE_UNSATISFIABLE:
        break;
    default:
        FUZZ_CHECK(0);
    }
    return 0;
}
