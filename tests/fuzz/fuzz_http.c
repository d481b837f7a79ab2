/*
 * Fuzz target for the HTTP server's pure request parsing (http/request.c):
 * the path rule, the LL-HLS delivery directives, part names, If-None-Match
 * and Accept-Encoding. The input is split at NUL bytes into up to five
 * strings. Invariants: an accepted path has no "..", "//", '%' or control
 * byte; accepted directives are in range and _HLS_part implies _HLS_msn; a
 * part key round-trips through its name.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "../../http/http_internal.h"
#include "../../store/store.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char buf[4096], *field[5] = {0};
    size_t n = size < sizeof(buf) - 1 ? size : sizeof(buf) - 1;
    int nf = 0;

    memcpy(buf, data, n);
    buf[n] = '\0';
    field[nf++] = buf;
    for (size_t i = 0; i < n && nf < 5; i++)
        if (buf[i] == '\0')
            field[nf++] = buf + i + 1;

    if (http_path_ok(field[0])) {
        FUZZ_CHECK(field[0][0] == '/');
        FUZZ_CHECK(!strstr(field[0], "/.")); /* no "..", no hidden names */
        FUZZ_CHECK(!strstr(field[0], "//") && !strchr(field[0], '%'));
        for (const char *p = field[0] + 1; *p; p++)
            FUZZ_CHECK(*p == '/' || http_path_char(*p));
    }
    {
        struct hls_query q;

        if (hls_query_parse(field[1], nf > 2 ? field[2] : NULL, nf > 3 ? field[3] : NULL, &q) ==
            0) {
            FUZZ_CHECK(!q.has_part || q.has_msn);
            FUZZ_CHECK(q.msn <= HLS_QUERY_MSN_MAX && q.part <= HLS_QUERY_PART_MAX);
            FUZZ_CHECK(!q.skip_v2 || q.skip);
        }
    }
    {
        uint64_t key;

        if (http_part_key(field[0], &key)) {
            char name[160];

            FUZZ_CHECK((key & STORE_PART_END) != STORE_PART_END);
            snprintf(name, sizeof(name), "part-x-%" PRIu64 "-%u.m4s", STORE_KEY_MSN(key),
                     (unsigned)(key & STORE_PART_END));
            {
                uint64_t again;

                FUZZ_CHECK(http_part_key(name, &again) && again == key);
            }
        }
    }
    (void)http_etag_matches(nf > 4 ? field[4] : NULL, "\"0123456789abcdef\"");
    (void)http_accepts_gzip(nf > 4 ? field[4] : field[0]);
    return 0;
}
