/*
 * Fuzz target for the FLV tag header parsers and the timestamp unwrapper.
 * Byte 0 picks video, audio or unwrap; the payload must always point inside
 * the input, and unwrapped timestamps must differ from the raw ones by a
 * whole number of 2^31 wraps and never go negative.
 */
#include <string.h>

#include "../../ingest/rtmp_internal.h"
#include "fuzz_common.h"

static void check_span(const uint8_t *in, size_t len, const uint8_t *p, size_t n)
{
    FUZZ_CHECK(p >= in && p <= in + len);
    FUZZ_CHECK(n == (size_t)(in + len - p));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *in = data + 1;
    size_t len;

    if (size < 1)
        return 0;
    len = size - 1;
    switch (data[0] % 3) {
    case 0: {
        struct flv_video v;

        if (flv_parse_video(in, len, &v) == 0) {
            check_span(in, len, v.data, v.len);
            FUZZ_CHECK(v.cts_ms >= -8388608 && v.cts_ms <= 8388607);
            FUZZ_CHECK(v.enhanced == ((in[0] & 0x80) != 0));
        }
        break;
    }
    case 1: {
        struct flv_audio a;

        if (flv_parse_audio(in, len, &a) == 0) {
            check_span(in, len, a.data, a.len);
            FUZZ_CHECK(a.sound_format >= 0 && a.sound_format <= 15);
        }
        break;
    }
    default: {
        struct flv_ts_unwrap u;

        memset(&u, 0, sizeof(u));
        for (size_t i = 0; i + 4 <= len; i += 4) {
            uint32_t ts = (uint32_t)in[i] << 24 | (uint32_t)in[i + 1] << 16 |
                          (uint32_t)in[i + 2] << 8 | in[i + 3];
            int64_t out = flv_ts_unwrap(&u, ts);

            FUZZ_CHECK(out >= 0);
            FUZZ_CHECK((out - (int64_t)ts) % (INT64_C(1) << 31) == 0);
        }
        break;
    }
    }
    return 0;
}
