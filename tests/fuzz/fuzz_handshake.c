/*
 * Fuzz target for the server handshake. Byte 0 picks how the rest is split
 * into feeds. Whatever C1 the client sends, the reply must verify with the
 * client helper (digest if C1 carried a valid one, plain otherwise), the
 * handshake must consume exactly C0+C1+C2, and a wrong C0 must fail.
 */
#include <string.h>

#include "../../ingest/rtmp_internal.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t reply[RTMP_HS_REPLY_SIZE];
    struct rtmp_hs hs;
    const uint8_t *in;
    size_t len, pos = 0, step, total = 0;
    int replies = 0, st = RTMP_NEED_MORE;

    if (size < 1)
        return 0;
    step = (size_t)data[0] * 13 + 1;
    in = data + 1;
    len = size - 1;

    rtmp_hs_init(&hs);
    while (pos < len && st == RTMP_NEED_MORE) {
        size_t n = len - pos < step ? len - pos : step, used = 0, rlen = 0;

        st = rtmp_hs_feed(&hs, in + pos, n, &used, reply, &rlen);
        FUZZ_CHECK(used <= n);
        if (st == RTMP_NEED_MORE)
            FUZZ_CHECK(used == n);
        pos += used;
        total += used;
        if (rlen) {
            FUZZ_CHECK(rlen == RTMP_HS_REPLY_SIZE);
            FUZZ_CHECK(reply[0] == 3);
            FUZZ_CHECK(rtmp_hs_client_verify(in + 1, reply + 1, reply + 1 + RTMP_HS_SIZE) == 0);
            if (!hs.digest)
                FUZZ_CHECK(memcmp(reply + 1 + RTMP_HS_SIZE, in + 1, RTMP_HS_SIZE) == 0);
            replies++;
        }
    }
    if (len > 0 && in[0] != 3) {
        FUZZ_CHECK(st == RTMP_ERROR && hs.state == RTMP_HS_FAILED && hs.error);
        FUZZ_CHECK(total == 0 && replies == 0);
    } else if (len >= 1 + 2 * RTMP_HS_SIZE) {
        FUZZ_CHECK(st == RTMP_OK && hs.state == RTMP_HS_DONE);
        FUZZ_CHECK(total == 1 + 2 * RTMP_HS_SIZE && replies == 1);
    } else {
        FUZZ_CHECK(st == RTMP_NEED_MORE && total == len);
        FUZZ_CHECK(replies == (len >= 1 + RTMP_HS_SIZE ? 1 : 0));
    }
    (void)rtmp_hs_state_str(hs.state);

    /* The verifier itself takes untrusted blocks too. */
    if (len >= 3 * RTMP_HS_SIZE)
        (void)rtmp_hs_client_verify(in, in + RTMP_HS_SIZE, in + 2 * RTMP_HS_SIZE);
    return 0;
}
