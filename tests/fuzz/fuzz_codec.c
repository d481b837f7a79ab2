/*
 * Fuzz target for the codec configuration parsers of the segmenter (avc.c):
 * byte 0 picks the AVCDecoderConfigurationRecord + SPS parser or the AAC
 * AudioSpecificConfig parser. On success the results must be sane: a
 * NUL-terminated RFC 6381 codec string of the right family, a NAL length
 * size of 1, 2 or 4, dimensions and rates in range.
 */
#include <string.h>

#include "../../segmenter/segmenter_internal.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *in = data + 1;
    size_t len;

    if (size < 1)
        return 0;
    len = size - 1;
    if (data[0] & 1) {
        struct aac_info a;

        memset(&a, 0x5a, sizeof(a));
        if (aac_parse_config(in, len, &a) == 0) {
            FUZZ_CHECK(memchr(a.codec, '\0', sizeof(a.codec)) != NULL);
            FUZZ_CHECK(strncmp(a.codec, "mp4a.40.", 8) == 0);
            FUZZ_CHECK(a.sample_rate > 0 && a.sample_rate < (1 << 24));
            FUZZ_CHECK(a.channels >= 0 && a.channels <= 8);
            FUZZ_CHECK(a.object_type > 0);
        }
    } else {
        struct avc_info v;

        memset(&v, 0x5a, sizeof(v));
        if (avc_parse_config(in, len, &v) == 0) {
            FUZZ_CHECK(memchr(v.codec, '\0', sizeof(v.codec)) != NULL);
            FUZZ_CHECK(strncmp(v.codec, "avc1.", 5) == 0);
            FUZZ_CHECK(v.nal_length_size == 1 || v.nal_length_size == 2 ||
                       v.nal_length_size == 4);
            FUZZ_CHECK(v.width >= 0 && v.height >= 0);
            FUZZ_CHECK(v.profile_idc >= 0 && v.profile_idc <= 255);
            FUZZ_CHECK(v.level_idc >= 0 && v.level_idc <= 255);
        }
    }
    return 0;
}
