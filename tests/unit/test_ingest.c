/*
 * Unit tests of the pure RTMP parsers: handshake, chunk stream, AMF0, FLV tag
 * headers and timestamp unwrapping. Every parser input is fed whole, one byte
 * at a time and split at every offset, and must give identical results.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "../../ingest/rtmp_internal.h"
#include "harness.h"

/* ======================================================================== */
/* chunk stream                                                             */
/* ======================================================================== */

#define MAX_MSGS 64

struct rec {
    uint32_t csid, stream_id, timestamp, len;
    uint8_t type;
    uint8_t *data;
};

/* Everything a reader produced for one input, to compare feeding strategies. */
struct run {
    struct rec m[MAX_MSGS];
    int n;
    int status;  /* RTMP_NEED_MORE at the end, or RTMP_ERROR */
    size_t used; /* bytes consumed in total */
    uint32_t chunk_size;
};

static const struct rtmp_chunk_limits test_lim = {
    .max_chunk_size = 65536,
    .max_message_bytes = 8u << 20,
    .max_chunk_streams = 16,
};

static void run_free(struct run *run)
{
    for (int i = 0; i < run->n; i++)
        free(run->m[i].data);
    memset(run, 0, sizeof(*run));
}

/* Feeds IN[0..LEN) to R until it is used up or an error; records messages. */
static int feed_piece(struct rtmp_chunk_reader *r, const uint8_t *in, size_t len, struct run *run)
{
    size_t pos = 0;

    for (;;) {
        struct rtmp_msg msg;
        size_t used = 0;
        int st = rtmp_chunk_read(r, in + pos, len - pos, &used, &msg);

        if (used > len - pos) {
            CHECK(!"consumed more than given");
            return RTMP_ERROR;
        }
        pos += used;
        run->used += used;
        if (st == RTMP_ERROR)
            return RTMP_ERROR;
        if (st == RTMP_NEED_MORE) {
            CHECK_EQ_INT(pos, len); /* NEED_MORE means all input absorbed */
            return RTMP_NEED_MORE;
        }
        CHECK_EQ_INT(st, RTMP_OK);
        if (run->n < MAX_MSGS) {
            struct rec *m = &run->m[run->n++];

            m->csid = msg.csid;
            m->stream_id = msg.stream_id;
            m->timestamp = msg.timestamp;
            m->len = msg.len;
            m->type = msg.type;
            m->data = malloc(msg.len ? msg.len : 1);
            if (msg.len)
                memcpy(m->data, msg.data, msg.len);
        }
    }
}

/*
 * Parses IN with limits LIM, in pieces: STEP > 0 feeds STEP bytes at a time,
 * otherwise two pieces split at SPLIT.
 */
static void parse(const struct rtmp_chunk_limits *lim, const uint8_t *in, size_t len,
                  size_t step, size_t split, struct run *run)
{
    struct rtmp_chunk_reader r;
    size_t pos = 0;

    memset(run, 0, sizeof(*run));
    rtmp_chunk_reader_init(&r, lim);
    run->status = RTMP_NEED_MORE;
    while (pos < len || (pos == 0 && len == 0)) {
        size_t n = step ? step : (pos < split ? split : len - pos);

        if (n > len - pos)
            n = len - pos;
        run->status = feed_piece(&r, in + pos, n, run);
        pos += n;
        if (run->status == RTMP_ERROR || len == 0)
            break;
    }
    if (run->status == RTMP_ERROR) {
        size_t used = 0;
        struct rtmp_msg msg;

        CHECK(r.error != NULL);
        /* Errors are sticky. */
        CHECK_EQ_INT(rtmp_chunk_read(&r, in, len, &used, &msg), RTMP_ERROR);
        CHECK_EQ_INT(used, 0);
    }
    run->chunk_size = r.chunk_size;
    rtmp_chunk_reader_reset(&r);
}

static bool same_run(const struct run *a, const struct run *b)
{
    if (a->n != b->n || a->status != b->status || a->chunk_size != b->chunk_size)
        return false;
    if (a->status != RTMP_ERROR && a->used != b->used)
        return false;
    for (int i = 0; i < a->n; i++) {
        const struct rec *x = &a->m[i], *y = &b->m[i];

        if (x->csid != y->csid || x->stream_id != y->stream_id ||
            x->timestamp != y->timestamp || x->len != y->len || x->type != y->type ||
            memcmp(x->data, y->data, x->len) != 0)
            return false;
    }
    return true;
}

/* Parses IN whole, byte by byte and split at every offset; returns the whole run in *OUT. */
static void parse_all_ways(const struct rtmp_chunk_limits *lim, const uint8_t *in, size_t len,
                           struct run *out)
{
    struct run other;
    int bad_splits = 0;

    parse(lim, in, len, 0, len, out);
    parse(lim, in, len, 1, 0, &other);
    CHECK(same_run(out, &other));
    run_free(&other);
    for (size_t k = 0; k <= len; k++) {
        parse(lim, in, len, 0, k, &other);
        if (!same_run(out, &other)) {
            if (bad_splits++ == 0)
                fprintf(stderr, "split at %zu differs\n", k);
        }
        run_free(&other);
    }
    CHECK_EQ_INT(bad_splits, 0);
}

static void check_msg(const struct run *run, int i, uint32_t csid, uint8_t type, uint32_t sid,
                      uint32_t ts, const uint8_t *data, uint32_t len)
{
    CHECK(i < run->n);
    if (i >= run->n)
        return;
    CHECK_EQ_INT(run->m[i].csid, csid);
    CHECK_EQ_INT(run->m[i].type, type);
    CHECK_EQ_INT(run->m[i].stream_id, sid);
    CHECK_EQ_INT(run->m[i].timestamp, ts);
    CHECK_EQ_INT(run->m[i].len, len);
    if (run->m[i].len == len)
        CHECK(len == 0 || memcmp(run->m[i].data, data, len) == 0);
}

static void fill_pattern(uint8_t *p, size_t n, uint8_t seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(seed + i * 7 + (i >> 8));
}

static void test_chunk_writer_roundtrip(void)
{
    struct bytes out = {0};
    uint8_t big[1000], small[10];
    struct run run;
    static const struct {
        uint32_t csid, ts, len;
        uint8_t type;
    } cases[] = {
        {3, 0, 10, RTMP_MSG_COMMAND_AMF0},
        {4, 40, 1000, RTMP_MSG_VIDEO},          /* 8 chunks of 128 */
        {2, 41, 0, RTMP_MSG_USER_CONTROL},      /* empty message */
        {63, 0xFFFFFE, 300, RTMP_MSG_AUDIO},     /* largest 24-bit timestamp */
        {64, 0xFFFFFF, 300, RTMP_MSG_AUDIO},     /* extended: first value needing it */
        {319, 0x12345678, 129, RTMP_MSG_VIDEO},  /* 2-byte header, ext ts on continuation */
        {320, 7, 10, RTMP_MSG_DATA_AMF0},        /* first 3-byte header */
        {65599, 0xFFFFFFFF, 256, RTMP_MSG_VIDEO},/* largest csid and timestamp */
    };

    fill_pattern(big, sizeof(big), 1);
    fill_pattern(small, sizeof(small), 99);
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        const uint8_t *d = cases[i].len <= sizeof(small) ? small : big;

        CHECK_EQ_INT(rtmp_chunk_write(&out, 128, cases[i].csid, cases[i].type, 1, cases[i].ts,
                                      d, cases[i].len),
                     0);
    }
    /* Same csid again: the reader must start a fresh message on it. */
    CHECK_EQ_INT(rtmp_chunk_write(&out, 128, 4, RTMP_MSG_VIDEO, 1, 80, big + 1, 200), 0);

    parse_all_ways(&test_lim, out.data, out.len, &run);
    CHECK_EQ_INT(run.status, RTMP_NEED_MORE);
    CHECK_EQ_INT(run.used, out.len);
    CHECK_EQ_INT(run.n, (int)ARRAY_SIZE(cases) + 1);
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        const uint8_t *d = cases[i].len <= sizeof(small) ? small : big;

        check_msg(&run, (int)i, cases[i].csid, cases[i].type, 1, cases[i].ts, d, cases[i].len);
    }
    check_msg(&run, (int)ARRAY_SIZE(cases), 4, RTMP_MSG_VIDEO, 1, 80, big + 1, 200);
    run_free(&run);

    /* Header sizes: 1-, 2-, 3-byte basic headers, extended timestamp. */
    out.len = 0;
    CHECK_EQ_INT(rtmp_chunk_write(&out, 128, 63, 8, 0, 5, small, 1), 0);
    CHECK_EQ_INT(out.len, 1 + 11 + 1);
    out.len = 0;
    CHECK_EQ_INT(rtmp_chunk_write(&out, 128, 64, 8, 0, 5, small, 1), 0);
    CHECK_EQ_INT(out.len, 2 + 11 + 1);
    CHECK_EQ_INT(out.data[0], 0x00);
    CHECK_EQ_INT(out.data[1], 0x00);
    out.len = 0;
    CHECK_EQ_INT(rtmp_chunk_write(&out, 128, 65599, 8, 0, 0xFFFFFF, small, 1), 0);
    CHECK_EQ_INT(out.len, 3 + 11 + 4 + 1);
    CHECK_EQ_INT(out.data[0], 0x01);
    CHECK_EQ_INT(out.data[1], 0xFF);
    CHECK_EQ_INT(out.data[2], 0xFF);
    /* 129 bytes at chunk size 128 with ext ts: 12+4+128 | 1+4+1 */
    out.len = 0;
    CHECK_EQ_INT(rtmp_chunk_write(&out, 128, 5, 9, 0, 0x01000000, big, 129), 0);
    CHECK_EQ_INT(out.len, 12 + 4 + 128 + 1 + 4 + 1);
    CHECK_EQ_INT(out.data[12 + 4 + 128], 0xC5);

    /* Bad arguments leave OUT untouched. */
    out.len = 0;
    CHECK_EQ_INT(rtmp_chunk_write(&out, 128, 1, 8, 0, 0, small, 1), -EINVAL);
    CHECK_EQ_INT(rtmp_chunk_write(&out, 128, 65600, 8, 0, 0, small, 1), -EINVAL);
    CHECK_EQ_INT(rtmp_chunk_write(&out, 0, 3, 8, 0, 0, small, 1), -EINVAL);
    CHECK_EQ_INT(rtmp_chunk_write(&out, 128, 3, 8, 0, 0, big, 0x1000000), -EINVAL);
    CHECK_EQ_INT(out.len, 0);
    bytes_reset(&out);
}

/* fmt 0, 1, 2, 3 with timestamp deltas, hand-written. */
static void test_chunk_header_formats(void)
{
    static const uint8_t in[] = {
        /* fmt 0, csid 4: ts 1000, len 3, type 9, stream 1 */
        0x04, 0x00, 0x03, 0xE8, 0x00, 0x00, 0x03, 0x09, 0x01, 0x00, 0x00, 0x00, 0xAA, 0xBB, 0xCC,
        /* fmt 1: delta 20, len 2, type 8 */
        0x44, 0x00, 0x00, 0x14, 0x00, 0x00, 0x02, 0x08, 0xDD, 0xEE,
        /* fmt 2: delta 30 */
        0x84, 0x00, 0x00, 0x1E, 0x11, 0x22,
        /* fmt 3: new message, same delta 30 */
        0xC4, 0x33, 0x44,
        /* fmt 0 on csid 4 again: absolute timestamp going backwards */
        0x04, 0x00, 0x00, 0x05, 0x00, 0x00, 0x01, 0x12, 0x02, 0x00, 0x00, 0x00, 0x55,
        /* fmt 3 after fmt 0: the delta is the type 0 timestamp (5) */
        0xC4, 0x66,
    };
    struct run run;

    parse_all_ways(&test_lim, in, sizeof(in), &run);
    CHECK_EQ_INT(run.status, RTMP_NEED_MORE);
    CHECK_EQ_INT(run.n, 6);
    check_msg(&run, 0, 4, 9, 1, 1000, (const uint8_t *)"\xAA\xBB\xCC", 3);
    check_msg(&run, 1, 4, 8, 1, 1020, (const uint8_t *)"\xDD\xEE", 2);
    check_msg(&run, 2, 4, 8, 1, 1050, (const uint8_t *)"\x11\x22", 2);
    check_msg(&run, 3, 4, 8, 1, 1080, (const uint8_t *)"\x33\x44", 2);
    check_msg(&run, 4, 4, 18, 2, 5, (const uint8_t *)"\x55", 1);
    check_msg(&run, 5, 4, 18, 2, 10, (const uint8_t *)"\x66", 1);
    run_free(&run);
}

/* Two csids interleaved; 2- and 3-byte basic headers, mixed forms for one csid. */
static void test_chunk_interleaved_and_basic_headers(void)
{
    uint8_t in[512], payload[200];
    size_t n = 0;
    struct run run;

    fill_pattern(payload, sizeof(payload), 3);
    /* csid 74 (2-byte form), fmt 0, len 200, type 9: first 128 bytes */
    memcpy(in + n, "\x00\x0A\x00\x00\x10\x00\x00\xC8\x09\x01\x00\x00\x00", 13);
    n += 13;
    memcpy(in + n, payload, 128);
    n += 128;
    /* csid 64 + 0x1234 (3-byte form), fmt 0, len 4, type 8, complete */
    memcpy(in + n, "\x01\x34\x12\x00\x00\x20\x00\x00\x04\x08\x01\x00\x00\x00wxyz", 18);
    n += 18;
    /* csid 74 continuation written with the 3-byte form: 01 0A 00 */
    memcpy(in + n, "\xC1\x0A\x00", 3);
    n += 3;
    memcpy(in + n, payload + 128, 72);
    n += 72;
    /* csid 100 opened with a 3-byte form, continued with a 2-byte form */
    memcpy(in + n, "\x01\x24\x00\x00\x00\x01\x00\x00\x81\x09\x01\x00\x00\x00", 14);
    n += 14;
    memcpy(in + n, payload, 128);
    n += 128;
    memcpy(in + n, "\xC0\x24", 2);
    n += 2;
    in[n++] = 0xEE;

    parse_all_ways(&test_lim, in, n, &run);
    CHECK_EQ_INT(run.status, RTMP_NEED_MORE);
    CHECK_EQ_INT(run.n, 3);
    check_msg(&run, 0, 64 + 0x1234, 8, 1, 32, (const uint8_t *)"wxyz", 4);
    check_msg(&run, 1, 74, 9, 1, 16, payload, 200);
    CHECK(run.n < 3 || run.m[2].data[128] == 0xEE);
    if (run.n == 3) {
        CHECK_EQ_INT(run.m[2].csid, 100);
        CHECK_EQ_INT(run.m[2].len, 129);
        CHECK(memcmp(run.m[2].data, payload, 128) == 0);
    }
    run_free(&run);
}

/* Extended timestamps on fmt 0, on type 3 continuations, on a type 3 new message and on fmt 1. */
static void test_chunk_extended_timestamp(void)
{
    uint8_t in[1024], payload[200];
    size_t n = 0;
    struct run run;

    fill_pattern(payload, sizeof(payload), 5);
    /* fmt 0, ts field FFFFFF, len 200, ext ts 0x01000000 */
    memcpy(in + n, "\x06\xFF\xFF\xFF\x00\x00\xC8\x09\x01\x00\x00\x00\x01\x00\x00\x00", 16);
    n += 16;
    memcpy(in + n, payload, 128);
    n += 128;
    /* continuation repeats the extended timestamp */
    memcpy(in + n, "\xC6\x01\x00\x00\x00", 5);
    n += 5;
    memcpy(in + n, payload + 128, 72);
    n += 72;
    /* type 3 starting a new message: its extended field is the new delta (0x10) */
    memcpy(in + n, "\xC6\x00\x00\x00\x10", 5);
    n += 5;
    memcpy(in + n, payload, 128);
    n += 128;
    memcpy(in + n, "\xC6\x00\x00\x00\x10", 5);
    n += 5;
    memcpy(in + n, payload + 128, 72);
    n += 72;
    /* fmt 1 with an extended delta of 0x100, len 1 */
    memcpy(in + n, "\x46\xFF\xFF\xFF\x00\x00\x01\x08\x00\x00\x01\x00\x7A", 13);
    n += 13;
    /* fmt 2 back to a 24-bit delta of 1: no extended field any more */
    memcpy(in + n, "\x86\x00\x00\x01\x7B", 5);
    n += 5;
    /* and a type 3 with no extended field either */
    memcpy(in + n, "\xC6\x7C", 2);
    n += 2;

    parse_all_ways(&test_lim, in, n, &run);
    CHECK_EQ_INT(run.status, RTMP_NEED_MORE);
    CHECK_EQ_INT(run.used, n);
    CHECK_EQ_INT(run.n, 5);
    check_msg(&run, 0, 6, 9, 1, 0x01000000, payload, 200);
    check_msg(&run, 1, 6, 9, 1, 0x01000010, payload, 200);
    check_msg(&run, 2, 6, 8, 1, 0x01000110, (const uint8_t *)"\x7A", 1);
    check_msg(&run, 3, 6, 8, 1, 0x01000111, (const uint8_t *)"\x7B", 1);
    check_msg(&run, 4, 6, 8, 1, 0x01000112, (const uint8_t *)"\x7C", 1);
    run_free(&run);

    /* Timestamps wrap modulo 2^32 with deltas. */
    n = 0;
    memcpy(in + n, "\x07\xFF\xFF\xFF\x00\x00\x01\x09\x00\x00\x00\x00\xFF\xFF\xFF\xF0\x01", 17);
    n += 17;
    memcpy(in + n, "\x87\x00\x00\x20\x02", 5);
    n += 5;
    parse_all_ways(&test_lim, in, n, &run);
    CHECK_EQ_INT(run.n, 2);
    check_msg(&run, 0, 7, 9, 0, 0xFFFFFFF0u, (const uint8_t *)"\x01", 1);
    check_msg(&run, 1, 7, 9, 0, 0x10, (const uint8_t *)"\x02", 1);
    run_free(&run);
}

/* Set Chunk Size mid-stream (hand-written and via the writer), and Abort. */
static void test_chunk_set_chunk_size_and_abort(void)
{
    uint8_t in[1024], payload[300];
    size_t n = 0;
    struct run run;
    struct bytes out = {0};
    uint8_t big[10000];

    fill_pattern(payload, sizeof(payload), 11);
    /* csid 2, Set Chunk Size 200 */
    memcpy(in + n, "\x02\x00\x00\x00\x00\x00\x04\x01\x00\x00\x00\x00\x00\x00\x00\xC8", 16);
    n += 16;
    /* csid 4, len 300: one chunk of 200, one of 100 */
    memcpy(in + n, "\x04\x00\x00\x01\x00\x01\x2C\x09\x01\x00\x00\x00", 12);
    n += 12;
    memcpy(in + n, payload, 200);
    n += 200;
    in[n++] = 0xC4;
    memcpy(in + n, payload + 200, 100);
    n += 100;
    parse_all_ways(&test_lim, in, n, &run);
    CHECK_EQ_INT(run.status, RTMP_NEED_MORE);
    CHECK_EQ_INT(run.chunk_size, 200);
    CHECK_EQ_INT(run.n, 2);
    check_msg(&run, 0, 2, RTMP_MSG_SET_CHUNK_SIZE, 0, 0, (const uint8_t *)"\x00\x00\x00\xC8", 4);
    check_msg(&run, 1, 4, 9, 1, 1, payload, 300);
    run_free(&run);

    /* Abort: a partial message on csid 4 is dropped, a new one may start. */
    n = 0;
    memcpy(in + n, "\x04\x00\x00\x01\x00\x01\x2C\x09\x01\x00\x00\x00", 12);
    n += 12;
    memcpy(in + n, payload, 128);
    n += 128;
    memcpy(in + n, "\x02\x00\x00\x00\x00\x00\x04\x02\x00\x00\x00\x00\x00\x00\x00\x04", 16);
    n += 16;
    memcpy(in + n, "\x04\x00\x00\x09\x00\x00\x02\x09\x01\x00\x00\x00\xAB\xCD", 14);
    n += 14;
    parse_all_ways(&test_lim, in, n, &run);
    CHECK_EQ_INT(run.status, RTMP_NEED_MORE);
    CHECK_EQ_INT(run.n, 2);
    check_msg(&run, 0, 2, RTMP_MSG_ABORT, 0, 0, (const uint8_t *)"\x00\x00\x00\x04", 4);
    check_msg(&run, 1, 4, 9, 1, 9, (const uint8_t *)"\xAB\xCD", 2);
    run_free(&run);

    /* Without the Abort the same new header is a protocol error. */
    n = 0;
    memcpy(in + n, "\x04\x00\x00\x01\x00\x01\x2C\x09\x01\x00\x00\x00", 12);
    n += 12;
    memcpy(in + n, payload, 128);
    n += 128;
    memcpy(in + n, "\x04\x00\x00\x09\x00\x00\x02\x09\x01\x00\x00\x00\xAB\xCD", 14);
    n += 14;
    parse_all_ways(&test_lim, in, n, &run);
    CHECK_EQ_INT(run.status, RTMP_ERROR);
    CHECK_EQ_INT(run.n, 0);
    run_free(&run);

    /* Writer-built: Set Chunk Size 4096 then a 10000-byte message in 4096 chunks. */
    fill_pattern(big, sizeof(big), 17);
    CHECK_EQ_INT(rtmp_chunk_write(&out, 128, 2, RTMP_MSG_SET_CHUNK_SIZE, 0, 0,
                                  (const uint8_t *)"\x00\x00\x10\x00", 4),
                 0);
    CHECK_EQ_INT(rtmp_chunk_write(&out, 4096, 6, RTMP_MSG_VIDEO, 1, 33, big, sizeof(big)), 0);
    CHECK_EQ_INT(out.len, 16 + 12 + 10000 + 2);
    parse_all_ways(&test_lim, out.data, out.len, &run);
    CHECK_EQ_INT(run.chunk_size, 4096);
    CHECK_EQ_INT(run.n, 2);
    check_msg(&run, 1, 6, RTMP_MSG_VIDEO, 1, 33, big, sizeof(big));
    run_free(&run);
    bytes_reset(&out);
}

static void expect_error(const struct rtmp_chunk_limits *lim, const uint8_t *in, size_t len,
                         int msgs_before)
{
    struct run run;

    parse_all_ways(lim, in, len, &run);
    CHECK_EQ_INT(run.status, RTMP_ERROR);
    CHECK_EQ_INT(run.n, msgs_before);
    run_free(&run);
}

static void test_chunk_limits(void)
{
    struct rtmp_chunk_reader r;
    struct rtmp_msg msg;
    size_t used;
    uint8_t in[64];
    size_t n;

    /*
     * The length field has 24 bits, so the largest announcement is 16 MiB - 1
     * (a 100 MB message cannot even be expressed): it must be refused at the
     * header, with nothing buffered.
     */
    rtmp_chunk_reader_init(&r, &test_lim);
    memcpy(in, "\x04\x00\x00\x00\xFF\xFF\xFF\x09\x01\x00\x00\x00\x00\x00\x00\x00", 16);
    CHECK_EQ_INT(rtmp_chunk_read(&r, in, 16, &used, &msg), RTMP_ERROR);
    CHECK_EQ_INT(used, 12);
    CHECK_EQ_INT(r.buf_bytes, 0);
    CHECK(r.error && strstr(r.error, "max_message_bytes"));
    rtmp_chunk_reader_reset(&r);
    expect_error(&test_lim, in, 16, 0);

    /* Just at the limit is fine, and the buffer grows with the data, not the header. */
    rtmp_chunk_reader_init(&r, &test_lim);
    memcpy(in, "\x04\x00\x00\x00\x80\x00\x00\x09\x01\x00\x00\x00", 12);
    CHECK_EQ_INT(rtmp_chunk_read(&r, in, 12, &used, &msg), RTMP_NEED_MORE);
    CHECK_EQ_INT(r.buf_bytes, 0);
    memset(in, 0x42, 64);
    CHECK_EQ_INT(rtmp_chunk_read(&r, in, 64, &used, &msg), RTMP_NEED_MORE);
    CHECK(r.buf_bytes > 0 && r.buf_bytes <= 4096);
    rtmp_chunk_reader_reset(&r);
    CHECK_EQ_INT(r.buf_bytes, 0);
    CHECK_EQ_INT(r.chunk_size, 128);

    /* Too many chunk streams: 3 allowed, the 4th csid is refused. */
    {
        struct rtmp_chunk_limits lim = test_lim;

        lim.max_chunk_streams = 3;
        n = 0;
        for (uint8_t csid = 3; csid <= 6; csid++) {
            memcpy(in + n, "\x00\x00\x00\x00\x00\x00\x01\x09\x01\x00\x00\x00\x11", 13);
            in[n] = csid;
            n += 13;
        }
        expect_error(&lim, in, n, 3);
        /* Reusing the same three is fine. */
        memcpy(in + 39, in, 13);
        {
            struct run run;

            parse_all_ways(&lim, in, 52, &run);
            CHECK_EQ_INT(run.status, RTMP_NEED_MORE);
            CHECK_EQ_INT(run.n, 4);
            run_free(&run);
        }
    }

    /* Set Chunk Size: 0, above the limit, top bit set, short payload. */
    memcpy(in, "\x02\x00\x00\x00\x00\x00\x04\x01\x00\x00\x00\x00\x00\x00\x00\x00", 16);
    expect_error(&test_lim, in, 16, 0);
    memcpy(in + 12, "\x00\x01\x00\x01", 4); /* 65537 > 65536 */
    expect_error(&test_lim, in, 16, 0);
    memcpy(in + 12, "\x80\x00\x00\x80", 4);
    expect_error(&test_lim, in, 16, 0);
    memcpy(in + 12, "\x00\x01\x00\x00", 4); /* 65536: the largest accepted */
    {
        struct run run;

        parse_all_ways(&test_lim, in, 16, &run);
        CHECK_EQ_INT(run.status, RTMP_NEED_MORE);
        CHECK_EQ_INT(run.chunk_size, 65536);
        run_free(&run);
    }
    memcpy(in, "\x02\x00\x00\x00\x00\x00\x02\x01\x00\x00\x00\x00\x00\x10", 14);
    expect_error(&test_lim, in, 14, 0);

    /* A csid must start with a type 0 header: fmt 1, 2, 3 on a new csid fail. */
    memcpy(in, "\x45\x00\x00\x00\x00\x00\x01\x09\x00", 9);
    expect_error(&test_lim, in, 9, 0);
    memcpy(in, "\x85\x00\x00\x00\x00", 5);
    expect_error(&test_lim, in, 5, 0);
    memcpy(in, "\xC5\x00", 2);
    expect_error(&test_lim, in, 2, 0);
}

/* A zero-length message has a non-NULL data pointer (data + 0 is defined). */
static void test_chunk_zero_length(void)
{
    struct rtmp_chunk_reader r;
    struct rtmp_msg msg;
    size_t used;
    /* csid 3, type 0, length 0, command AMF0; then csid 4, length 0, data AMF0 */
    static const uint8_t in[24] = {0x03, 0, 0, 0, 0, 0, 0, 0x14, 0, 0, 0, 0,
                                   0x04, 0, 0, 0, 0, 0, 0, 0x12, 1, 0, 0, 0};

    rtmp_chunk_reader_init(&r, &test_lim);
    CHECK_EQ_INT(rtmp_chunk_read(&r, in, sizeof(in), &used, &msg), RTMP_OK);
    CHECK_EQ_INT(used, 12);
    CHECK_EQ_INT(msg.len, 0);
    CHECK_EQ_INT(msg.type, RTMP_MSG_COMMAND_AMF0);
    CHECK(msg.data != NULL);
    CHECK_EQ_INT(rtmp_chunk_read(&r, in + 12, 12, &used, &msg), RTMP_OK);
    CHECK_EQ_INT(msg.len, 0);
    CHECK(msg.data != NULL);
    CHECK_EQ_INT(rtmp_chunk_buffered_bytes(&r), 0);
    rtmp_chunk_reader_reset(&r);
}

/* max_buffer_bytes: partial messages across chunk streams stop at the cap, before allocating. */
static void test_chunk_buffer_cap(void)
{
    struct rtmp_chunk_limits lim = test_lim;
    struct rtmp_chunk_reader r;
    struct rtmp_msg msg;
    size_t used;
    uint8_t in[12 + 128];
    int rc = RTMP_NEED_MORE;

    memset(in, 0x42, sizeof(in));
    lim.max_buffer_bytes = 5000;
    rtmp_chunk_reader_init(&r, &lim);
    /*
     * Start 5000-byte video messages on csids 4, 5, 6...: the first takes a
     * 4096-byte buffer, the next ones exactly their 128 bytes, the 8th is refused.
     */
    for (uint8_t csid = 4; csid < 16 && rc == RTMP_NEED_MORE; csid++) {
        static const uint8_t h[12] = {0, 0, 0, 0, 0, 0x13, 0x88, 0x09, 1, 0, 0, 0};

        memcpy(in, h, sizeof(h));
        in[0] = csid;
        rc = rtmp_chunk_read(&r, in, sizeof(in), &used, &msg);
        CHECK(rtmp_chunk_buffered_bytes(&r) <= 5000);
    }
    CHECK_EQ_INT(rc, RTMP_ERROR);
    CHECK(r.error && strstr(r.error, "max_buffer_bytes"));
    rtmp_chunk_reader_reset(&r);

    /* Raised with rtmp_chunk_set_max_buffer: the same input is fine. */
    rtmp_chunk_reader_init(&r, &lim);
    rtmp_chunk_set_max_buffer(&r, 0);
    for (uint8_t csid = 4; csid < 16; csid++) {
        in[0] = csid;
        CHECK_EQ_INT(rtmp_chunk_read(&r, in, sizeof(in), &used, &msg), RTMP_NEED_MORE);
    }
    CHECK(rtmp_chunk_buffered_bytes(&r) > 5000);
    rtmp_chunk_reader_reset(&r);
}

/* The accessors rtmp_session.c uses instead of the reader's private fields. */
static void test_chunk_accessors(void)
{
    struct rtmp_chunk_limits lim = test_lim;
    struct rtmp_chunk_reader r;
    struct rtmp_msg msg;
    size_t used;
    uint8_t in[256];
    /* csid 4, type 0, len 200 (0xC8), video, stream 1; then 128 + type 3 + 72 bytes */
    static const uint8_t hdr200[12] = {0x04, 0, 0, 0, 0, 0, 0xC8, 0x09, 0x01, 0, 0, 0};

    /* rtmp_chunk_set_max_message: raising admits a longer message, lowering refuses it. */
    lim.max_message_bytes = 100;
    rtmp_chunk_reader_init(&r, &lim);
    CHECK_EQ_INT(rtmp_chunk_read(&r, hdr200, 12, &used, &msg), RTMP_ERROR);
    rtmp_chunk_reader_reset(&r);
    rtmp_chunk_set_max_message(&r, 200);
    CHECK_EQ_INT(rtmp_chunk_read(&r, hdr200, 12, &used, &msg), RTMP_NEED_MORE);
    CHECK_EQ_INT(used, 12);
    /* A message already admitted completes after the limit is lowered ... */
    memset(in, 0x42, sizeof(in));
    CHECK_EQ_INT(rtmp_chunk_read(&r, in, 128, &used, &msg), RTMP_NEED_MORE);
    rtmp_chunk_set_max_message(&r, 199);
    in[0] = 0xC4; /* type 3 continuation of csid 4 */
    CHECK_EQ_INT(rtmp_chunk_read(&r, in, 73, &used, &msg), RTMP_OK);
    CHECK_EQ_INT(msg.len, 200);
    /* ... and the next header over the new limit is refused. */
    CHECK_EQ_INT(rtmp_chunk_read(&r, hdr200, 12, &used, &msg), RTMP_ERROR);
    CHECK(r.error && strstr(r.error, "max_message_bytes"));
    rtmp_chunk_reader_reset(&r);

    /* rtmp_chunk_current_csid: 1-, 2- and 3-byte basic headers, -1 until complete. */
    rtmp_chunk_reader_init(&r, &test_lim);
    CHECK_EQ_INT(rtmp_chunk_current_csid(&r), -1);
    CHECK_EQ_INT(rtmp_chunk_read(&r, hdr200, 1, &used, &msg), RTMP_NEED_MORE);
    CHECK_EQ_INT(rtmp_chunk_current_csid(&r), 4);
    CHECK_EQ_INT(rtmp_chunk_read(&r, hdr200 + 1, 11, &used, &msg), RTMP_NEED_MORE);
    CHECK_EQ_INT(rtmp_chunk_current_csid(&r), -1); /* header applied: inside chunk data */
    rtmp_chunk_reader_reset(&r);
    memcpy(in, "\x00\x10", 2); /* csid 64 + 0x10 */
    CHECK_EQ_INT(rtmp_chunk_read(&r, in, 1, &used, &msg), RTMP_NEED_MORE);
    CHECK_EQ_INT(rtmp_chunk_current_csid(&r), -1);
    CHECK_EQ_INT(rtmp_chunk_read(&r, in + 1, 1, &used, &msg), RTMP_NEED_MORE);
    CHECK_EQ_INT(rtmp_chunk_current_csid(&r), 80);
    rtmp_chunk_reader_reset(&r);
    memcpy(in, "\x01\xFF\xFF", 3); /* csid 64 + 255 + 256 * 255: the largest */
    CHECK_EQ_INT(rtmp_chunk_read(&r, in, 2, &used, &msg), RTMP_NEED_MORE);
    CHECK_EQ_INT(rtmp_chunk_current_csid(&r), -1);
    CHECK_EQ_INT(rtmp_chunk_read(&r, in + 2, 1, &used, &msg), RTMP_NEED_MORE);
    CHECK_EQ_INT(rtmp_chunk_current_csid(&r), 65599);
    rtmp_chunk_reader_reset(&r);
    memcpy(in, "\x45\x00\x00\x00\x00\x00\x01\x09", 8); /* fmt 1 on a new csid 5 */
    CHECK_EQ_INT(rtmp_chunk_read(&r, in, 8, &used, &msg), RTMP_ERROR);
    CHECK_EQ_INT(rtmp_chunk_current_csid(&r), 5);
    rtmp_chunk_reader_reset(&r);

    /* rtmp_chunk_buffered_bytes: grows with the payload, capped by the message length. */
    CHECK_EQ_INT(rtmp_chunk_buffered_bytes(&r), 0);
    CHECK_EQ_INT(rtmp_chunk_read(&r, hdr200, 12, &used, &msg), RTMP_NEED_MORE);
    CHECK_EQ_INT(rtmp_chunk_buffered_bytes(&r), 0);
    memset(in, 0x42, sizeof(in));
    CHECK_EQ_INT(rtmp_chunk_read(&r, in, 10, &used, &msg), RTMP_NEED_MORE);
    CHECK_EQ_INT(rtmp_chunk_buffered_bytes(&r), 200);
    CHECK_EQ_INT(rtmp_chunk_read(&r, in, 118, &used, &msg), RTMP_NEED_MORE); /* end of chunk */
    CHECK_EQ_INT(rtmp_chunk_buffered_bytes(&r), 200);
    memcpy(in, "\x06\x00\x00\x00\x00\x80\x00\x09\x01\x00\x00\x00", 12); /* csid 6, 32 KiB */
    CHECK_EQ_INT(rtmp_chunk_read(&r, in, 12, &used, &msg), RTMP_NEED_MORE);
    memset(in, 0x42, sizeof(in));
    CHECK_EQ_INT(rtmp_chunk_read(&r, in, 64, &used, &msg), RTMP_NEED_MORE);
    CHECK_EQ_INT(rtmp_chunk_buffered_bytes(&r), 200 + 4096);
    rtmp_chunk_reader_reset(&r);
    CHECK_EQ_INT(rtmp_chunk_buffered_bytes(&r), 0);
}

/* ======================================================================== */
/* handshake                                                                */
/* ======================================================================== */

#define FP_KEY_LEN 30
#define FMS_KEY_LEN 36
static const uint8_t key_tail[32] = {
    0xF0, 0xEE, 0xC2, 0x4A, 0x80, 0x68, 0xBE, 0xE8, 0x2E, 0x00, 0xD0, 0xD1, 0x02, 0x9E, 0x7E, 0x57,
    0x6E, 0xEC, 0x5D, 0x2D, 0x29, 0x80, 0x6F, 0xAB, 0x93, 0xB8, 0xE6, 0x36, 0xCF, 0xEB, 0x31, 0xAE,
};

/* The test's own digest arithmetic, independent of handshake.c. */
static size_t t_digest_pos(const uint8_t *b, size_t base)
{
    return ((size_t)b[base] + b[base + 1] + b[base + 2] + b[base + 3]) % 728 + base + 4;
}

static void t_block_hmac(const uint8_t *b, size_t pos, const void *key, size_t klen, uint8_t *md)
{
    uint8_t msg[1504];
    unsigned mdlen = 0;

    memcpy(msg, b, pos);
    memcpy(msg + pos, b + pos + 32, 1536 - pos - 32);
    HMAC(EVP_sha256(), key, (int)klen, msg, sizeof(msg), md, &mdlen);
}

/* C1 signed at the schema with offset base BASE (8 or 772). */
static void t_make_c1(uint8_t *c1, size_t base)
{
    uint8_t md[32];
    size_t pos;

    fill_pattern(c1, 1536, 77);
    memcpy(c1, "\0\0\0\0\x09\x00\x7c\x02", 8);
    pos = t_digest_pos(c1, base);
    t_block_hmac(c1, pos, "Genuine Adobe Flash Player 001", FP_KEY_LEN, md);
    memcpy(c1 + pos, md, 32);
}

/* Checks a digest reply with the test's own arithmetic. */
static void t_check_digest_reply(const uint8_t *c1, size_t base, const uint8_t *reply)
{
    const uint8_t *s1 = reply + 1, *s2 = reply + 1537;
    uint8_t fms[FMS_KEY_LEN + 32], md[32], key[32];
    size_t pos = t_digest_pos(s1, base), cpos = t_digest_pos(c1, base);
    unsigned mdlen = 0;

    memcpy(fms, "Genuine Adobe Flash Media Server 001", FMS_KEY_LEN);
    memcpy(fms + FMS_KEY_LEN, key_tail, 32);
    CHECK_EQ_INT(reply[0], 3);
    CHECK(memcmp(s1 + 4, "\x0d\x0e\x0a\x0d", 4) == 0);
    t_block_hmac(s1, pos, fms, FMS_KEY_LEN, md);
    CHECK(memcmp(md, s1 + pos, 32) == 0);
    HMAC(EVP_sha256(), fms, sizeof(fms), c1 + cpos, 32, key, &mdlen);
    HMAC(EVP_sha256(), key, 32, s2, 1504, md, &mdlen);
    CHECK(memcmp(md, s2 + 1504, 32) == 0);
}

struct hs_result {
    int status;
    size_t used;
    int replies;
    bool digest;
    uint8_t reply[RTMP_HS_REPLY_SIZE];
};

/* Runs the server handshake over IN, STEP bytes at a time or split at SPLIT. */
static void hs_run(const uint8_t *in, size_t len, size_t step, size_t split,
                   struct hs_result *res)
{
    struct rtmp_hs hs;
    size_t pos = 0;

    memset(res, 0, sizeof(*res));
    rtmp_hs_init(&hs);
    res->status = RTMP_NEED_MORE;
    while (pos < len && res->status == RTMP_NEED_MORE) {
        size_t n = step ? step : (pos < split ? split : len - pos);
        size_t used = 0, rlen = 0;
        uint8_t reply[RTMP_HS_REPLY_SIZE];

        if (n > len - pos)
            n = len - pos;
        res->status = rtmp_hs_feed(&hs, in + pos, n, &used, reply, &rlen);
        CHECK(used <= n);
        if (res->status == RTMP_NEED_MORE)
            CHECK_EQ_INT(used, n);
        if (rlen) {
            CHECK_EQ_INT(rlen, RTMP_HS_REPLY_SIZE);
            memcpy(res->reply, reply, sizeof(reply));
            res->replies++;
        }
        pos += used;
        res->used += used;
        if (res->status == RTMP_NEED_MORE && used < n)
            break;
    }
    res->digest = hs.digest;
    if (res->status == RTMP_OK)
        CHECK_EQ_INT(hs.state, RTMP_HS_DONE);
    if (res->status == RTMP_ERROR) {
        CHECK(hs.error != NULL);
        CHECK_EQ_INT(hs.state, RTMP_HS_FAILED);
    }
}

/*
 * Feeds C0 C1 C2 + 7 trailing chunk bytes whole, byte by byte and split at
 * every offset; each way must finish with one verified reply and leave the
 * trailing bytes unconsumed.
 */
static void hs_all_ways(const uint8_t *c1, bool want_digest, size_t base)
{
    uint8_t in[1 + 2 * 1536 + 7];
    struct hs_result res;
    int bad = 0;

    in[0] = 3;
    memcpy(in + 1, c1, 1536);
    fill_pattern(in + 1537, 1536 + 7, 200);
    for (size_t k = 0; k <= sizeof(in) + 1; k++) {
        if (k == sizeof(in) + 1)
            hs_run(in, sizeof(in), 1, 0, &res); /* byte by byte */
        else
            hs_run(in, sizeof(in), 0, k, &res);
        if (res.status != RTMP_OK || res.used != 1 + 2 * 1536 || res.replies != 1 ||
            res.digest != want_digest ||
            rtmp_hs_client_verify(c1, res.reply + 1, res.reply + 1537) != 0) {
            if (bad++ == 0)
                fprintf(stderr, "handshake split %zu: status %d used %zu replies %d\n", k,
                        res.status, res.used, res.replies);
        }
        if (k % 256 == 0 || k == sizeof(in) + 1) {
            if (want_digest)
                t_check_digest_reply(c1, base, res.reply);
            else
                CHECK(memcmp(res.reply + 1537, c1, 1536) == 0);
        }
    }
    CHECK_EQ_INT(bad, 0);
}

static void test_handshake(void)
{
    uint8_t c1[1536];
    struct hs_result res;
    uint8_t in[1 + 1536 + 1536];

    /* Plain: S1 = time 0 | zero | random, S2 = C1. */
    rtmp_hs_client_c1(c1, false);
    hs_all_ways(c1, false, 0);
    hs_run((uint8_t[]){3}, 1, 1, 0, &res);
    CHECK_EQ_INT(res.status, RTMP_NEED_MORE);

    /* Digest made by the client helper (schema 0)... */
    rtmp_hs_client_c1(c1, true);
    hs_all_ways(c1, true, 8);
    /* ...and by the test's own code at both schemas. */
    t_make_c1(c1, 8);
    hs_all_ways(c1, true, 8);
    t_make_c1(c1, 772);
    hs_all_ways(c1, true, 772);

    /* A broken digest falls back to plain. */
    t_make_c1(c1, 8);
    c1[t_digest_pos(c1, 8) + 5] ^= 1;
    hs_all_ways(c1, false, 0);

    /* The verifier really verifies: tampered S2 or S1 fail. */
    rtmp_hs_client_c1(c1, true);
    in[0] = 3;
    memcpy(in + 1, c1, 1536);
    memset(in + 1537, 0, 1536);
    hs_run(in, sizeof(in), 0, sizeof(in), &res);
    CHECK_EQ_INT(res.status, RTMP_OK);
    CHECK_EQ_INT(rtmp_hs_client_verify(c1, res.reply + 1, res.reply + 1537), 0);
    res.reply[1537 + 1535] ^= 0x80;
    CHECK_EQ_INT(rtmp_hs_client_verify(c1, res.reply + 1, res.reply + 1537), -EINVAL);
    res.reply[1537 + 1535] ^= 0x80;
    res.reply[1 + 100] ^= 1;
    res.reply[1 + 800] ^= 1;
    CHECK_EQ_INT(rtmp_hs_client_verify(c1, res.reply + 1, res.reply + 1537), -EINVAL);
    /* A plain reply does not satisfy a digest client. */
    rtmp_hs_client_c1(c1, false);
    memcpy(in + 1, c1, 1536);
    hs_run(in, sizeof(in), 0, sizeof(in), &res);
    CHECK_EQ_INT(rtmp_hs_client_verify(c1, res.reply + 1, res.reply + 1537), 0);
    rtmp_hs_client_c1(in + 1, true);
    CHECK_EQ_INT(rtmp_hs_client_verify(in + 1, res.reply + 1, res.reply + 1537), -EINVAL);

    /* Wrong version bytes fail at once, with a reason. */
    for (int v = 0; v < 256; v++) {
        struct rtmp_hs hs;
        size_t used = 99, rlen = 99;
        uint8_t reply[RTMP_HS_REPLY_SIZE];
        uint8_t b = (uint8_t)v;

        if (v == 3)
            continue;
        rtmp_hs_init(&hs);
        CHECK_EQ_INT(rtmp_hs_feed(&hs, &b, 1, &used, reply, &rlen), RTMP_ERROR);
        CHECK_EQ_INT(used, 0);
        CHECK_EQ_INT(rlen, 0);
        CHECK(hs.error != NULL);
        if (v == 6)
            CHECK(hs.error && strstr(hs.error, "RTMPE"));
        CHECK_EQ_STR(rtmp_hs_state_str(hs.state), "failed");
        /* sticky */
        CHECK_EQ_INT(rtmp_hs_feed(&hs, (const uint8_t *)"\x03", 1, &used, reply, &rlen),
                     RTMP_ERROR);
    }
    CHECK_EQ_STR(rtmp_hs_state_str(RTMP_HS_C0C1), "c0c1");
}

/* ======================================================================== */
/* AMF0                                                                     */
/* ======================================================================== */

/* The test's own encoder of a decoded tree, to close the round trip. */
static void t_put_value(struct bytes *o, const struct amf_value *v);

static void t_put_u32(struct bytes *o, uint32_t x)
{
    uint8_t b[4] = {(uint8_t)(x >> 24), (uint8_t)(x >> 16), (uint8_t)(x >> 8), (uint8_t)x};

    bytes_append(o, b, 4);
}

static void t_put_props(struct bytes *o, const struct amf_value *v)
{
    for (size_t i = 0; i < v->nprops; i++) {
        CHECK_EQ_INT(amf_put_key(o, v->props[i].key), 0);
        t_put_value(o, &v->props[i].value);
    }
    amf_put_object_end(o);
}

static void t_put_value(struct bytes *o, const struct amf_value *v)
{
    uint8_t b;
    uint64_t u;

    switch (v->type) {
    case AMF_NUMBER:
        amf_put_number(o, v->number);
        break;
    case AMF_BOOLEAN:
        amf_put_bool(o, v->boolean);
        break;
    case AMF_STRING:
        b = AMF_STRING;
        bytes_append(o, &b, 1);
        bytes_append(o, (uint8_t[]){(uint8_t)(v->str_len >> 8), (uint8_t)v->str_len}, 2);
        bytes_append(o, v->str, v->str_len);
        break;
    case AMF_LONG_STRING:
        b = AMF_LONG_STRING;
        bytes_append(o, &b, 1);
        t_put_u32(o, (uint32_t)v->str_len);
        bytes_append(o, v->str, v->str_len);
        break;
    case AMF_NULL:
        amf_put_null(o);
        break;
    case AMF_UNDEFINED:
        amf_put_undefined(o);
        break;
    case AMF_OBJECT:
        amf_put_object_begin(o);
        t_put_props(o, v);
        break;
    case AMF_ECMA_ARRAY:
        b = AMF_ECMA_ARRAY;
        bytes_append(o, &b, 1);
        t_put_u32(o, (uint32_t)v->nprops);
        t_put_props(o, v);
        break;
    case AMF_STRICT_ARRAY:
        b = AMF_STRICT_ARRAY;
        bytes_append(o, &b, 1);
        t_put_u32(o, (uint32_t)v->nitems);
        for (size_t i = 0; i < v->nitems; i++)
            t_put_value(o, &v->items[i]);
        break;
    case AMF_DATE:
        b = AMF_DATE;
        bytes_append(o, &b, 1);
        memcpy(&u, &v->number, 8);
        t_put_u32(o, (uint32_t)(u >> 32));
        t_put_u32(o, (uint32_t)u);
        bytes_append(o, "\0\0", 2);
        break;
    }
}

static bool value_is_reset(const struct amf_value *v)
{
    return v->type == 0 && !v->str && !v->props && !v->items && v->nprops == 0 &&
           v->nitems == 0;
}

/* A connect-like object holding every supported type. */
static void build_everything(struct bytes *o)
{
    char *long_str = calloc(1, 70000);
    uint8_t b;

    if (!long_str)
        return;
    memset(long_str, 'L', 70000 - 1);
    amf_put_object_begin(o);
    amf_put_key(o, "app");
    amf_put_string(o, "live");
    amf_put_key(o, "capabilities");
    amf_put_number(o, 239.5);
    amf_put_key(o, "fpad");
    amf_put_bool(o, false);
    amf_put_key(o, "audio");
    amf_put_bool(o, true);
    amf_put_key(o, "nothing");
    amf_put_null(o);
    amf_put_key(o, "undef");
    amf_put_undefined(o);
    amf_put_key(o, "nested");
    amf_put_object_begin(o);
    amf_put_key(o, "n");
    amf_put_number(o, -1e300);
    amf_put_object_end(o);
    amf_put_key(o, "long");
    amf_put_string(o, long_str); /* > 65535 bytes: long string */
    free(long_str);
    /* ECMA array whose count (1) is wrong: 2 properties */
    amf_put_key(o, "ecma");
    b = AMF_ECMA_ARRAY;
    bytes_append(o, &b, 1);
    bytes_append(o, "\x00\x00\x00\x02", 4);
    amf_put_key(o, "width");
    amf_put_number(o, 1920);
    amf_put_key(o, "height");
    amf_put_number(o, 1080);
    amf_put_object_end(o);
    /* strict array [1, "two", [], null] */
    amf_put_key(o, "list");
    bytes_append(o, "\x0a\x00\x00\x00\x04", 5);
    amf_put_number(o, 1);
    amf_put_string(o, "two");
    bytes_append(o, "\x0a\x00\x00\x00\x00", 5);
    amf_put_null(o);
    /* date */
    amf_put_key(o, "when");
    bytes_append(o, "\x0b\x42\x77\x48\x76\xe8\x00\x00\x00\x00\x00", 11);
    /* string with an embedded NUL */
    amf_put_key(o, "bin");
    bytes_append(o, "\x02\x00\x03" "a\0b", 6);
    amf_put_object_end(o);
}

static void test_amf_roundtrip(void)
{
    struct bytes o = {0}, again = {0};
    struct amf_value v;
    size_t used = 0;
    const struct amf_value *e, *l;

    build_everything(&o);
    CHECK_EQ_INT(amf_decode(o.data, o.len, &v, &used), 0);
    CHECK_EQ_INT(used, o.len);
    CHECK_EQ_INT(v.type, AMF_OBJECT);
    CHECK_EQ_INT(v.nprops, 12);
    CHECK_EQ_STR(amf_str(amf_get(&v, "app")), "live");
    CHECK(amf_num(amf_get(&v, "capabilities"), 0) == 239.5);
    CHECK(amf_get(&v, "fpad") && !amf_get(&v, "fpad")->boolean);
    CHECK(amf_get(&v, "audio") && amf_get(&v, "audio")->boolean);
    CHECK(amf_get(&v, "nothing") && amf_get(&v, "nothing")->type == AMF_NULL);
    CHECK(amf_get(&v, "undef") && amf_get(&v, "undef")->type == AMF_UNDEFINED);
    CHECK(amf_num(amf_get(amf_get(&v, "nested"), "n"), 0) == -1e300);
    CHECK(amf_get(&v, "long") && amf_get(&v, "long")->type == AMF_LONG_STRING);
    CHECK(amf_get(&v, "long") && amf_get(&v, "long")->str_len == 69999);
    e = amf_get(&v, "ecma");
    CHECK(e && e->type == AMF_ECMA_ARRAY && e->nprops == 2);
    CHECK(amf_num(amf_get(e, "height"), 0) == 1080);
    l = amf_get(&v, "list");
    CHECK(l && l->type == AMF_STRICT_ARRAY && l->nitems == 4);
    if (l && l->nitems == 4) {
        CHECK(amf_num(&l->items[0], 0) == 1);
        CHECK_EQ_STR(amf_str(&l->items[1]), "two");
        CHECK(l->items[2].type == AMF_STRICT_ARRAY && l->items[2].nitems == 0);
        CHECK(l->items[3].type == AMF_NULL);
    }
    CHECK(amf_get(&v, "when") && amf_get(&v, "when")->type == AMF_DATE &&
          amf_get(&v, "when")->number == 1.6e12);
    CHECK(amf_get(&v, "bin") && amf_get(&v, "bin")->str_len == 3 &&
          memcmp(amf_get(&v, "bin")->str, "a\0b", 4) == 0);
    /* lookups that must miss */
    CHECK(amf_get(&v, "missing") == NULL);
    CHECK(amf_get(amf_get(&v, "app"), "x") == NULL);
    CHECK(amf_str(amf_get(&v, "capabilities")) == NULL);
    CHECK(amf_num(amf_get(&v, "app"), -7) == -7);
    CHECK(amf_num(NULL, 3) == 3);
    CHECK(amf_str(NULL) == NULL);

    /* Re-encoding the tree gives the same bytes, except the corrected ECMA count. */
    t_put_value(&again, &v);
    CHECK_EQ_INT(again.len, o.len);
    CHECK(again.len == o.len && memcmp(again.data, o.data, o.len) == 0);
    amf_value_reset(&v);
    CHECK(value_is_reset(&v));

    /* Top-level scalars one after another, as in a command message. */
    o.len = 0;
    amf_put_string(&o, "connect");
    amf_put_number(&o, 1);
    amf_put_null(&o);
    {
        size_t pos = 0;
        const char *want[] = {"connect", NULL, NULL};
        const enum amf_type types[] = {AMF_STRING, AMF_NUMBER, AMF_NULL};

        for (int i = 0; i < 3; i++) {
            CHECK_EQ_INT(amf_decode(o.data + pos, o.len - pos, &v, &used), 0);
            CHECK_EQ_INT(v.type, types[i]);
            if (want[i])
                CHECK_EQ_STR(amf_str(&v), want[i]);
            pos += used;
            amf_value_reset(&v);
        }
        CHECK_EQ_INT(pos, o.len);
    }
    /* Encoders refuse keys that cannot be represented. */
    CHECK_EQ_INT(amf_put_key(&o, ""), -EINVAL);
    bytes_reset(&o);
    bytes_reset(&again);
}

static void test_amf_malformed(void)
{
    struct bytes o = {0};
    struct amf_value v;
    size_t used;
    int bad = 0;
    uint8_t *deep;

    /* Every truncation of a valid value fails cleanly. */
    build_everything(&o);
    for (size_t k = 0; k < o.len; k++) {
        int rc = amf_decode(o.data, k, &v, &used);

        if (rc != -EINVAL || !value_is_reset(&v)) {
            if (bad++ == 0)
                fprintf(stderr, "truncation at %zu: rc %d\n", k, rc);
        }
    }
    CHECK_EQ_INT(bad, 0);
    CHECK_EQ_INT(amf_decode(o.data, 0, &v, &used), -EINVAL);
    bytes_reset(&o);

    /* 1,000-deep nesting of objects and of strict arrays. */
    deep = malloc(5000);
    for (int i = 0; i < 1000; i++)
        memcpy(deep + 4 * i, "\x03\x00\x01" "a", 4);
    CHECK_EQ_INT(amf_decode(deep, 4000, &v, &used), -E2BIG);
    CHECK(value_is_reset(&v));
    for (int i = 0; i < 1000; i++)
        memcpy(deep + 5 * i, "\x0a\x00\x00\x00\x01", 5);
    CHECK_EQ_INT(amf_decode(deep, 5000, &v, &used), -E2BIG);
    CHECK(value_is_reset(&v));
    /* The exact boundary: AMF_MAX_DEPTH nested arrays are fine, one more is not. */
    for (int depth = AMF_MAX_DEPTH; depth <= AMF_MAX_DEPTH + 1; depth++) {
        size_t n = 0;

        for (int i = 0; i < depth - 1; i++) {
            memcpy(deep + n, "\x0a\x00\x00\x00\x01", 5);
            n += 5;
        }
        memcpy(deep + n, "\x0a\x00\x00\x00\x00", 5);
        n += 5;
        CHECK_EQ_INT(amf_decode(deep, n, &v, &used), depth == AMF_MAX_DEPTH ? 0 : -E2BIG);
        amf_value_reset(&v);
    }
    free(deep);

    /* Strict array counts: impossible for the bytes left, or over the node cap. */
    CHECK_EQ_INT(amf_decode((const uint8_t *)"\x0a\xFF\xFF\xFF\xFF\x05", 6, &v, &used),
                 -EINVAL);
    CHECK_EQ_INT(amf_decode((const uint8_t *)"\x0a\x00\x00\x00\x02\x05", 6, &v, &used),
                 -EINVAL);
    {
        size_t n = 5 + AMF_MAX_NODES;
        uint8_t *arr = malloc(n);

        memcpy(arr, "\x0a", 1);
        arr[1] = (uint8_t)(AMF_MAX_NODES >> 24);
        arr[2] = (uint8_t)(AMF_MAX_NODES >> 16);
        arr[3] = (uint8_t)(AMF_MAX_NODES >> 8);
        arr[4] = (uint8_t)AMF_MAX_NODES;
        memset(arr + 5, AMF_NULL, AMF_MAX_NODES);
        /* the array itself is a node: AMF_MAX_NODES items make one too many */
        CHECK_EQ_INT(amf_decode(arr, n, &v, &used), -E2BIG);
        arr[3] = (uint8_t)((AMF_MAX_NODES - 1) >> 8);
        arr[4] = (uint8_t)(AMF_MAX_NODES - 1);
        CHECK_EQ_INT(amf_decode(arr, n - 1, &v, &used), 0);
        CHECK_EQ_INT(v.nitems, AMF_MAX_NODES - 1);
        amf_value_reset(&v);
        free(arr);
    }
    /* An object with more properties than the node cap. */
    {
        struct bytes big = {0};

        amf_put_object_begin(&big);
        for (int i = 0; i < AMF_MAX_NODES + 10; i++) {
            amf_put_key(&big, "k");
            amf_put_null(&big);
        }
        amf_put_object_end(&big);
        CHECK_EQ_INT(amf_decode(big.data, big.len, &v, &used), -E2BIG);
        CHECK(value_is_reset(&v));
        bytes_reset(&big);
    }

    /* Unsupported markers. */
    static const uint8_t unsupported[] = {0x04, 0x07, 0x09, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x12,
                                          0xff};
    for (size_t i = 0; i < sizeof(unsupported); i++) {
        uint8_t in[8] = {unsupported[i], 0, 0, 0, 0, 0, 0, 0};

        CHECK_EQ_INT(amf_decode(in, sizeof(in), &v, &used), -EINVAL);
        CHECK(value_is_reset(&v));
    }
    /* ... also nested inside an object (the partial tree is freed). */
    CHECK_EQ_INT(amf_decode((const uint8_t *)"\x03\x00\x01" "a\x02\x00\x01" "b\x00\x01" "c\x11\x00",
                            16, &v, &used),
                 -EINVAL);
    CHECK(value_is_reset(&v));
    /* Long string longer than the input; empty key not followed by the end marker. */
    CHECK_EQ_INT(amf_decode((const uint8_t *)"\x0c\x7F\xFF\xFF\xFF" "abc", 8, &v, &used),
                 -EINVAL);
    CHECK_EQ_INT(amf_decode((const uint8_t *)"\x03\x00\x00\x05", 4, &v, &used), -EINVAL);
    /* An empty object is fine. */
    CHECK_EQ_INT(amf_decode((const uint8_t *)"\x03\x00\x00\x09", 4, &v, &used), 0);
    CHECK_EQ_INT(v.nprops, 0);
    CHECK_EQ_INT(used, 4);
    amf_value_reset(&v);
}

/* ======================================================================== */
/* FLV                                                                      */
/* ======================================================================== */

static void test_flv_video(void)
{
    struct flv_video fv;

    /* AVC sequence header */
    static const uint8_t seq[] = {0x17, 0x00, 0x00, 0x00, 0x00, 0x01, 0x64, 0x00, 0x1f};
    CHECK_EQ_INT(flv_parse_video(seq, sizeof(seq), &fv), 0);
    CHECK_EQ_INT(fv.frame_type, 1);
    CHECK_EQ_INT(fv.codec_id, FLV_CODEC_H264);
    CHECK(!fv.enhanced);
    CHECK_EQ_INT(fv.avc_packet_type, 0);
    CHECK_EQ_INT(fv.cts_ms, 0);
    CHECK(fv.data == seq + 5);
    CHECK_EQ_INT(fv.len, 4);

    /* NALUs, inter frame, CTS -33 and +66, and the SI24 extremes */
    static const uint8_t neg[] = {0x27, 0x01, 0xFF, 0xFF, 0xDF, 0, 0, 0, 1, 0x41};
    CHECK_EQ_INT(flv_parse_video(neg, sizeof(neg), &fv), 0);
    CHECK_EQ_INT(fv.frame_type, 2);
    CHECK_EQ_INT(fv.avc_packet_type, 1);
    CHECK_EQ_INT(fv.cts_ms, -33);
    CHECK_EQ_INT(fv.len, 5);
    CHECK_EQ_INT(flv_parse_video((const uint8_t *)"\x17\x01\x00\x00\x42", 5, &fv), 0);
    CHECK_EQ_INT(fv.cts_ms, 66);
    CHECK_EQ_INT(fv.len, 0);
    CHECK_EQ_INT(flv_parse_video((const uint8_t *)"\x17\x01\x80\x00\x00", 5, &fv), 0);
    CHECK_EQ_INT(fv.cts_ms, -8388608);
    CHECK_EQ_INT(flv_parse_video((const uint8_t *)"\x17\x01\x7F\xFF\xFF", 5, &fv), 0);
    CHECK_EQ_INT(fv.cts_ms, 8388607);

    /* Truncated AVC headers */
    for (size_t n = 0; n < 5; n++)
        CHECK_EQ_INT(flv_parse_video(seq, n, &fv), -EINVAL);

    /* Non-AVC legacy codec and an AVC command frame carry no AVC header. */
    CHECK_EQ_INT(flv_parse_video((const uint8_t *)"\x22\xAB", 2, &fv), 0);
    CHECK_EQ_INT(fv.codec_id, 2);
    CHECK_EQ_INT(fv.len, 1);
    CHECK_EQ_INT(flv_parse_video((const uint8_t *)"\x57\x01", 2, &fv), 0);
    CHECK_EQ_INT(fv.frame_type, 5);
    CHECK_EQ_INT(fv.avc_packet_type, -1);

    /* Enhanced RTMP: hvc1 CodedFrames (key frame) with CTS 33 */
    static const uint8_t hvc[] = {0x91, 'h', 'v', 'c', '1', 0x00, 0x00, 0x21, 0xAA, 0xBB};
    CHECK_EQ_INT(flv_parse_video(hvc, sizeof(hvc), &fv), 0);
    CHECK(fv.enhanced);
    CHECK_EQ_INT(fv.codec_id, 0);
    CHECK_EQ_INT(fv.frame_type, 1);
    CHECK_EQ_INT(fv.fourcc, 0x68766331);
    CHECK_EQ_INT(fv.avc_packet_type, 1);
    CHECK_EQ_INT(fv.cts_ms, 33);
    CHECK(fv.data == hvc + 8);
    CHECK_EQ_INT(fv.len, 2);
    for (size_t n = 0; n < 8; n++)
        CHECK_EQ_INT(flv_parse_video(hvc, n, &fv), -EINVAL);
    /* hvc1 SequenceStart, inter CodedFramesX (no CTS), av01 CodedFrames (no CTS) */
    CHECK_EQ_INT(flv_parse_video((const uint8_t *)"\x90hvc1\x01", 6, &fv), 0);
    CHECK_EQ_INT(fv.avc_packet_type, 0);
    CHECK_EQ_INT(fv.len, 1);
    CHECK_EQ_INT(flv_parse_video((const uint8_t *)"\xA3hvc1\x01\x02", 7, &fv), 0);
    CHECK_EQ_INT(fv.frame_type, 2);
    CHECK_EQ_INT(fv.avc_packet_type, 3);
    CHECK_EQ_INT(fv.cts_ms, 0);
    CHECK_EQ_INT(fv.len, 2);
    CHECK_EQ_INT(flv_parse_video((const uint8_t *)"\x91" "av01\x0a", 6, &fv), 0);
    CHECK_EQ_INT(fv.fourcc, 0x61763031);
    CHECK_EQ_INT(fv.len, 1);
    /* Multitrack: reported without a fourcc */
    CHECK_EQ_INT(flv_parse_video((const uint8_t *)"\x96\x01hvc1", 6, &fv), 0);
    CHECK(fv.enhanced);
    CHECK_EQ_INT(fv.fourcc, 0);
    CHECK_EQ_INT(flv_parse_video(NULL, 0, &fv), -EINVAL);
}

static void test_flv_audio(void)
{
    struct flv_audio fa;

    CHECK_EQ_INT(flv_parse_audio((const uint8_t *)"\xAF\x00\x12\x10", 4, &fa), 0);
    CHECK_EQ_INT(fa.sound_format, FLV_SOUND_AAC);
    CHECK_EQ_INT(fa.sound_rate, 3);
    CHECK_EQ_INT(fa.sound_size, 1);
    CHECK_EQ_INT(fa.sound_type, 1);
    CHECK_EQ_INT(fa.aac_packet_type, 0);
    CHECK_EQ_INT(fa.len, 2);
    CHECK(fa.data && fa.data[0] == 0x12);
    CHECK_EQ_INT(flv_parse_audio((const uint8_t *)"\xAE\x01\x21", 3, &fa), 0);
    CHECK_EQ_INT(fa.aac_packet_type, 1);
    CHECK_EQ_INT(fa.sound_type, 0);
    CHECK_EQ_INT(fa.len, 1);
    /* MP3 has no packet type byte */
    CHECK_EQ_INT(flv_parse_audio((const uint8_t *)"\x2F\xFF", 2, &fa), 0);
    CHECK_EQ_INT(fa.sound_format, 2);
    CHECK_EQ_INT(fa.aac_packet_type, -1);
    CHECK_EQ_INT(fa.len, 1);
    /* truncated */
    CHECK_EQ_INT(flv_parse_audio((const uint8_t *)"\xAF", 0, &fa), -EINVAL);
    CHECK_EQ_INT(flv_parse_audio((const uint8_t *)"\xAF", 1, &fa), -EINVAL);
}

static void test_flv_ts_unwrap(void)
{
    struct flv_ts_unwrap u;
    const int64_t w31 = INT64_C(1) << 31, w32 = INT64_C(1) << 32;

    /* 2^32 wrap of the RTMP clock, with a late pre-wrap packet after it */
    memset(&u, 0, sizeof(u));
    CHECK_EQ_INT(flv_ts_unwrap(&u, 0xFFFFFF00u), 0xFFFFFF00LL);
    CHECK_EQ_INT(flv_ts_unwrap(&u, 0xFFFFFFF0u), 0xFFFFFFF0LL);
    CHECK_EQ_INT(flv_ts_unwrap(&u, 0x10), w32 + 0x10);
    CHECK_EQ_INT(flv_ts_unwrap(&u, 0xFFFFFFF8u), 0xFFFFFFF8LL);
    CHECK_EQ_INT(flv_ts_unwrap(&u, 0x20), w32 + 0x20);
    CHECK_EQ_INT(flv_ts_unwrap(&u, 0x18), w32 + 0x18); /* jitter after the wrap */

    /* FFmpeg's 2^31 wrap, twice */
    memset(&u, 0, sizeof(u));
    CHECK_EQ_INT(flv_ts_unwrap(&u, 0x7FFFFF00u), 0x7FFFFF00LL);
    CHECK_EQ_INT(flv_ts_unwrap(&u, 0x10), w31 + 0x10);
    CHECK_EQ_INT(flv_ts_unwrap(&u, 0x7FFFFFF8u), 0x7FFFFFF8LL); /* late, from before the wrap */
    CHECK_EQ_INT(flv_ts_unwrap(&u, 0x1000), w31 + 0x1000);
    CHECK_EQ_INT(flv_ts_unwrap(&u, 0x40000000u), w31 + 0x40000000LL);
    CHECK_EQ_INT(flv_ts_unwrap(&u, 0x7FFFFFF0u), w31 + 0x7FFFFFF0LL);
    CHECK_EQ_INT(flv_ts_unwrap(&u, 0x5), w32 + 0x5);

    /* Small backward jitter and a big backward restart are kept as they are. */
    memset(&u, 0, sizeof(u));
    CHECK_EQ_INT(flv_ts_unwrap(&u, 1000), 1000);
    CHECK_EQ_INT(flv_ts_unwrap(&u, 990), 990);
    CHECK_EQ_INT(flv_ts_unwrap(&u, 1040), 1040);
    CHECK_EQ_INT(flv_ts_unwrap(&u, 5), 5);
    CHECK_EQ_INT(flv_ts_unwrap(&u, 0x90000000u), 0x90000000LL); /* forward, no wrap yet */
}

int main(void)
{
    RUN(test_chunk_writer_roundtrip);
    RUN(test_chunk_header_formats);
    RUN(test_chunk_interleaved_and_basic_headers);
    RUN(test_chunk_extended_timestamp);
    RUN(test_chunk_set_chunk_size_and_abort);
    RUN(test_chunk_limits);
    RUN(test_chunk_accessors);
    RUN(test_chunk_zero_length);
    RUN(test_chunk_buffer_cap);
    RUN(test_handshake);
    RUN(test_amf_roundtrip);
    RUN(test_amf_malformed);
    RUN(test_flv_video);
    RUN(test_flv_audio);
    RUN(test_flv_ts_unwrap);
    return harness_done();
}
