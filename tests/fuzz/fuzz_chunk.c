/*
 * Fuzz target for the RTMP chunk stream reader. The input (after one control
 * byte) is parsed twice, whole and in small pieces whose sizes come from the
 * control byte; both must yield the same messages and the same final status.
 */
#include <stdint.h>
#include <string.h>

#include "../../ingest/rtmp_internal.h"
#include "fuzz_common.h"

struct digest {
    uint64_t hash; /* FNV-1a over every message field and byte */
    unsigned msgs;
    int status;
    uint32_t chunk_size;
};

static void mix(uint64_t *h, const void *p, size_t n)
{
    const uint8_t *b = p;

    for (size_t i = 0; i < n; i++) {
        *h ^= b[i];
        *h *= 0x100000001b3ULL;
    }
}

static void run(const uint8_t *in, size_t len, size_t step, struct digest *d)
{
    static const struct rtmp_chunk_limits lim = {
        .max_chunk_size = 65536,
        .max_message_bytes = 1u << 20,
        .max_chunk_streams = 8,
    };
    struct rtmp_chunk_reader r;
    size_t pos = 0;

    memset(d, 0, sizeof(*d));
    d->hash = 0xcbf29ce484222325ULL;
    d->status = RTMP_NEED_MORE;
    rtmp_chunk_reader_init(&r, &lim);
    while (pos < len && d->status != RTMP_ERROR) {
        size_t end = step && len - pos > step ? pos + step : len;

        while (pos < end) {
            struct rtmp_msg msg;
            size_t used = 0;
            int st = rtmp_chunk_read(&r, in + pos, end - pos, &used, &msg);

            FUZZ_CHECK(used <= end - pos);
            pos += used;
            if (st == RTMP_ERROR) {
                FUZZ_CHECK(r.error != NULL);
                d->status = RTMP_ERROR;
                break;
            }
            if (st == RTMP_NEED_MORE) {
                FUZZ_CHECK(pos == end);
                break;
            }
            FUZZ_CHECK(st == RTMP_OK);
            FUZZ_CHECK(msg.len <= lim.max_message_bytes);
            FUZZ_CHECK(msg.csid >= 2 && msg.csid <= 65599);
            d->msgs++;
            mix(&d->hash, &msg.csid, sizeof(msg.csid));
            mix(&d->hash, &msg.type, sizeof(msg.type));
            mix(&d->hash, &msg.stream_id, sizeof(msg.stream_id));
            mix(&d->hash, &msg.timestamp, sizeof(msg.timestamp));
            mix(&d->hash, &msg.len, sizeof(msg.len));
            if (msg.len)
                mix(&d->hash, msg.data, msg.len);
        }
    }
    FUZZ_CHECK(r.chunk_size >= 1 && r.chunk_size <= lim.max_chunk_size);
    FUZZ_CHECK(r.nstreams <= lim.max_chunk_streams);
    d->chunk_size = r.chunk_size;
    rtmp_chunk_reader_reset(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct digest whole, pieces;

    if (size < 1)
        return 0;
    run(data + 1, size - 1, 0, &whole);
    run(data + 1, size - 1, (size_t)(data[0] % 17) + 1, &pieces);
    FUZZ_CHECK(whole.msgs == pieces.msgs);
    FUZZ_CHECK(whole.hash == pieces.hash);
    FUZZ_CHECK(whole.status == pieces.status);
    FUZZ_CHECK(whole.chunk_size == pieces.chunk_size);
    return 0;
}
