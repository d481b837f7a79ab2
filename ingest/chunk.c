/*
 * RTMP chunk stream (RTMP spec 5.3): an incremental reader that reassembles
 * messages from interleaved chunks, and a writer.
 *
 * Chunk format (spec 5.3.1):
 *
 *   +--------------+----------------+--------------------+------------+
 *   | basic header | message header | extended timestamp | chunk data |
 *   +--------------+----------------+--------------------+------------+
 *     1, 2 or 3      11, 7, 3 or 0      0 or 4 bytes        <= chunk size
 *
 * Basic header (5.3.1.1): fmt in the top 2 bits, then
 *   csid 2..63      in the low 6 bits                       (1 byte)
 *   low bits 0  ->  csid = 64 + byte 1                       (2 bytes)
 *   low bits 1  ->  csid = 64 + byte 1 + 256 * byte 2        (3 bytes)
 *
 * Message header (5.3.1.2), by fmt:
 *   0: timestamp (3) | length (3) | type (1) | stream id (4, little endian)
 *   1: timestamp delta (3) | length (3) | type (1)
 *   2: timestamp delta (3)
 *   3: nothing: everything is inherited from the previous chunk of the csid
 *
 * A timestamp field of 0xFFFFFF means a 4-byte extended timestamp follows
 * (5.3.1.3). As FFmpeg's reader and writer do (rtmppkt.c), a type 3 chunk
 * repeats the extended timestamp when the last type 0/1/2 header of its csid
 * used one, both on continuation chunks of a message and on a type 3 chunk
 * that starts a new message (where it is the new delta). A peer that omits it
 * on continuations is not detected: its stream desynchronises into errors.
 *
 * The reader never calls recv(): it takes whatever bytes the caller has and
 * keeps its state between calls, so input may be split anywhere.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "rtmp_internal.h"

#define DEFAULT_CHUNK_SIZE 128
#define MAX_CSID (65535u + 64u)
#define MAX_MSG_LEN 0xFFFFFFu /* the length field has 24 bits */
#define FIRST_BUF_BYTES 4096

/* Per-csid state: the last header seen and the message being assembled. */
struct rtmp_chunk_stream {
    uint32_t csid;
    uint32_t timestamp; /* absolute timestamp of the current/last message */
    uint32_t ts_field;  /* last 24-bit timestamp field; 0xFFFFFF = extended */
    uint32_t delta;     /* delta a type 3 chunk starting a message applies */
    uint32_t len;       /* message length */
    uint32_t stream_id;
    uint8_t type;
    bool in_msg;        /* a message is partially received */
    uint32_t have;      /* bytes of the message received */
    uint32_t chunk_left; /* payload bytes left in the current chunk */
    uint8_t *buf;
    uint32_t cap;
};

static const uint8_t msg_hdr_len[4] = {11, 7, 3, 0};

/* What a zero-length message's data points at: never NULL, so data + 0 is defined. */
static const uint8_t no_payload[1];

static uint32_t be24(const uint8_t *p)
{
    return (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

static int fail(struct rtmp_chunk_reader *r, const char *why)
{
    r->error = why;
    return RTMP_ERROR;
}

int rtmp_chunk_reader_init(struct rtmp_chunk_reader *r, const struct rtmp_chunk_limits *lim)
{
    memset(r, 0, sizeof(*r));
    r->lim = *lim;
    r->chunk_size = DEFAULT_CHUNK_SIZE;
    return 0;
}

void rtmp_chunk_reader_reset(struct rtmp_chunk_reader *r)
{
    struct rtmp_chunk_limits lim = r->lim;

    for (uint32_t i = 0; i < r->nstreams; i++)
        free(r->streams[i].buf);
    free(r->streams);
    rtmp_chunk_reader_init(r, &lim);
}

static struct rtmp_chunk_stream *find_stream(struct rtmp_chunk_reader *r, uint32_t csid)
{
    for (uint32_t i = 0; i < r->nstreams; i++)
        if (r->streams[i].csid == csid)
            return &r->streams[i];
    return NULL;
}

/* Adds a csid, enforcing max_chunk_streams first. NULL with r->error set. */
static struct rtmp_chunk_stream *add_stream(struct rtmp_chunk_reader *r, uint32_t csid)
{
    struct rtmp_chunk_stream *s;

    if (r->nstreams >= r->lim.max_chunk_streams) {
        r->error = "too many chunk streams";
        return NULL;
    }
    s = realloc(r->streams, (r->nstreams + 1) * sizeof(*s));
    if (!s) {
        r->error = "out of memory";
        return NULL;
    }
    r->streams = s;
    s = &r->streams[r->nstreams++];
    memset(s, 0, sizeof(*s));
    s->csid = csid;
    return s;
}

/* Size of the basic header announced by its first byte. */
static size_t basic_hdr_len(uint8_t b0)
{
    switch (b0 & 0x3f) {
    case 0:
        return 2;
    case 1:
        return 3;
    default:
        return 1;
    }
}

static uint32_t basic_hdr_csid(const uint8_t *h)
{
    switch (h[0] & 0x3f) {
    case 0:
        return 64u + h[1];
    case 1:
        return 64u + h[1] + 256u * h[2];
    default:
        return h[0] & 0x3fu;
    }
}

/*
 * Total header length as far as the bytes collected so far tell: the caller
 * collects that many and asks again until the answer stops growing. Returns
 * 0 on a protocol error (r->error set).
 */
static size_t header_need(struct rtmp_chunk_reader *r)
{
    const uint8_t *h = r->hdr;
    size_t bh, mh;
    unsigned fmt;
    bool ext;

    if (r->hdr_have < 1)
        return 1;
    fmt = h[0] >> 6;
    bh = basic_hdr_len(h[0]);
    if (r->hdr_have < bh)
        return bh;
    mh = msg_hdr_len[fmt];
    if (r->hdr_have < bh + mh)
        return bh + mh;
    if (fmt < 3) {
        ext = be24(h + bh) == 0xFFFFFF;
    } else {
        const struct rtmp_chunk_stream *s = find_stream(r, basic_hdr_csid(h));

        if (!s) {
            r->error = "chunk stream starts without a type 0 header";
            return 0;
        }
        ext = s->ts_field == 0xFFFFFF;
    }
    return bh + mh + (ext ? 4 : 0);
}

/* Applies a complete header in r->hdr to its stream; sets up the chunk. */
static int apply_header(struct rtmp_chunk_reader *r)
{
    const uint8_t *h = r->hdr;
    unsigned fmt = h[0] >> 6;
    size_t bh = basic_hdr_len(h[0]);
    const uint8_t *m = h + bh;
    uint32_t csid = basic_hdr_csid(h);
    struct rtmp_chunk_stream *s = find_stream(r, csid);
    uint32_t ts_field = 0, ext_ts = 0;
    bool ext;

    if (!s) {
        if (fmt != 0)
            return fail(r, "chunk stream starts without a type 0 header");
        s = add_stream(r, csid);
        if (!s)
            return RTMP_ERROR;
    }
    if (fmt != 3 && s->in_msg)
        return fail(r, "new message header while a message of its chunk stream is incomplete");

    if (fmt < 3) {
        ts_field = be24(m);
        ext = ts_field == 0xFFFFFF;
    } else {
        ext = s->ts_field == 0xFFFFFF;
    }
    if (ext)
        ext_ts = be32(m + msg_hdr_len[fmt]);

    if (fmt <= 1) {
        uint32_t len = be24(m + 3);

        /* Checked here, before a single payload byte is buffered. */
        if (len > r->lim.max_message_bytes)
            return fail(r, "message longer than max_message_bytes");
        s->len = len;
        s->type = m[6];
    }
    switch (fmt) {
    case 0:
        s->stream_id = le32(m + 7);
        s->timestamp = ext ? ext_ts : ts_field;
        s->delta = s->timestamp;
        s->ts_field = ts_field;
        break;
    case 1:
    case 2:
        s->delta = ext ? ext_ts : ts_field;
        s->timestamp += s->delta;
        s->ts_field = ts_field;
        break;
    default:
        if (s->in_msg)
            break; /* continuation: the repeated extended timestamp is not a delta */
        if (ext)
            s->delta = ext_ts;
        s->timestamp += s->delta;
        break;
    }
    if (!s->in_msg) {
        s->in_msg = true;
        s->have = 0;
    }
    s->chunk_left = s->len - s->have;
    if (s->chunk_left > r->chunk_size)
        s->chunk_left = r->chunk_size;
    r->cur = s;
    return RTMP_OK;
}

/* Makes room for N more payload bytes, growing lazily up to the message length. */
static int reserve(struct rtmp_chunk_reader *r, struct rtmp_chunk_stream *s, uint32_t n)
{
    uint32_t need = s->have + n, cap;
    uint8_t *p;

    if (need <= s->cap)
        return 0;
    /* need <= len <= 2^24 - 1, so doubling cannot overflow and the cap stays >= need. */
    cap = s->cap ? s->cap : FIRST_BUF_BYTES;
    while (cap < need)
        cap *= 2;
    if (cap > s->len)
        cap = s->len;
    if (r->lim.max_buffer_bytes && r->buf_bytes - s->cap + cap > r->lim.max_buffer_bytes) {
        cap = need; /* no headroom near the cap */
        if (r->buf_bytes - s->cap + cap > r->lim.max_buffer_bytes)
            return fail(r, "partial messages exceed max_buffer_bytes");
    }
    p = realloc(s->buf, cap);
    if (!p)
        return fail(r, "out of memory");
    r->buf_bytes += cap - s->cap;
    s->buf = p;
    s->cap = cap;
    return 0;
}

/* Applies protocol control messages the reader itself must act on (5.4.1, 5.4.2). */
static int apply_control(struct rtmp_chunk_reader *r, const struct rtmp_chunk_stream *s)
{
    uint32_t v;

    if (s->type != RTMP_MSG_SET_CHUNK_SIZE && s->type != RTMP_MSG_ABORT)
        return RTMP_OK;
    if (s->len < 4)
        return fail(r, "protocol control message shorter than 4 bytes");
    v = be32(s->buf);
    if (s->type == RTMP_MSG_SET_CHUNK_SIZE) {
        if (v & 0x80000000u)
            return fail(r, "set chunk size with the top bit set");
        if (v == 0 || v > r->lim.max_chunk_size)
            return fail(r, "set chunk size out of bounds");
        r->chunk_size = v;
    } else {
        struct rtmp_chunk_stream *t = find_stream(r, v);

        if (t && t != s) {
            t->in_msg = false;
            t->have = 0;
        }
    }
    return RTMP_OK;
}

static void emit(struct rtmp_chunk_stream *s, struct rtmp_msg *msg)
{
    msg->csid = s->csid;
    msg->type = s->type;
    msg->stream_id = s->stream_id;
    msg->timestamp = s->timestamp;
    msg->len = s->len;
    msg->data = s->len ? s->buf : no_payload;
    s->in_msg = false;
    s->have = 0;
}

int rtmp_chunk_read(struct rtmp_chunk_reader *r, const uint8_t *in, size_t len,
                    size_t *consumed, struct rtmp_msg *msg)
{
    size_t pos = 0;

    *consumed = 0;
    if (r->error)
        return RTMP_ERROR;

    for (;;) {
        struct rtmp_chunk_stream *s = r->cur;

        if (!s) {
            size_t need = header_need(r);

            if (need == 0)
                goto fail;
            if (r->hdr_have < need) {
                size_t n = need - r->hdr_have;

                if (pos == len)
                    break;
                if (n > len - pos)
                    n = len - pos;
                memcpy(r->hdr + r->hdr_have, in + pos, n);
                r->hdr_have += n;
                pos += n;
                continue; /* ask header_need again: the header may be longer */
            }
            if (apply_header(r) != RTMP_OK)
                goto fail;
            r->hdr_have = 0;
            s = r->cur;
        } else {
            uint32_t n = s->chunk_left;

            if (pos == len)
                break;
            if (n > len - pos)
                n = (uint32_t)(len - pos);
            if (reserve(r, s, n) != 0)
                goto fail;
            memcpy(s->buf + s->have, in + pos, n);
            s->have += n;
            s->chunk_left -= n;
            pos += n;
        }

        if (s->chunk_left > 0)
            continue;
        r->cur = NULL;
        if (s->have < s->len)
            continue;
        if (apply_control(r, s) != RTMP_OK)
            goto fail;
        emit(s, msg);
        *consumed = pos;
        return RTMP_OK;
    }
    *consumed = pos;
    return RTMP_NEED_MORE;

fail:
    *consumed = pos;
    return RTMP_ERROR;
}

void rtmp_chunk_set_max_message(struct rtmp_chunk_reader *r, uint32_t bytes)
{
    r->lim.max_message_bytes = bytes;
}

void rtmp_chunk_set_max_buffer(struct rtmp_chunk_reader *r, size_t bytes)
{
    r->lim.max_buffer_bytes = bytes;
}

int64_t rtmp_chunk_current_csid(const struct rtmp_chunk_reader *r)
{
    if (r->hdr_have < 1 || r->hdr_have < basic_hdr_len(r->hdr[0]))
        return -1;
    return basic_hdr_csid(r->hdr);
}

size_t rtmp_chunk_buffered_bytes(const struct rtmp_chunk_reader *r)
{
    return r->buf_bytes;
}

/* Appends the basic header for FMT and CSID (2..65599) to P; returns its length. */
static size_t put_basic_hdr(uint8_t *p, unsigned fmt, uint32_t csid)
{
    if (csid < 64) {
        p[0] = (uint8_t)(fmt << 6 | csid);
        return 1;
    }
    if (csid < 64 + 256) {
        p[0] = (uint8_t)(fmt << 6);
        p[1] = (uint8_t)(csid - 64);
        return 2;
    }
    p[0] = (uint8_t)(fmt << 6 | 1);
    p[1] = (uint8_t)((csid - 64) & 0xff);
    p[2] = (uint8_t)((csid - 64) >> 8);
    return 3;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

int rtmp_chunk_write(struct bytes *out, uint32_t chunk_size, uint32_t csid, uint8_t type,
                     uint32_t stream_id, uint32_t timestamp, const uint8_t *data, size_t len)
{
    bool ext = timestamp >= 0xFFFFFF;
    uint32_t ts_field = ext ? 0xFFFFFF : timestamp;
    uint8_t hdr[18];
    size_t n, off = 0;
    size_t start = out->len;
    int rc;

    if (chunk_size == 0 || chunk_size > 0x7FFFFFFF || csid < 2 || csid > MAX_CSID ||
        len > MAX_MSG_LEN || (len && !data))
        return -EINVAL;

    n = put_basic_hdr(hdr, 0, csid);
    hdr[n++] = (uint8_t)(ts_field >> 16);
    hdr[n++] = (uint8_t)(ts_field >> 8);
    hdr[n++] = (uint8_t)ts_field;
    hdr[n++] = (uint8_t)(len >> 16);
    hdr[n++] = (uint8_t)(len >> 8);
    hdr[n++] = (uint8_t)len;
    hdr[n++] = type;
    hdr[n++] = (uint8_t)stream_id;
    hdr[n++] = (uint8_t)(stream_id >> 8);
    hdr[n++] = (uint8_t)(stream_id >> 16);
    hdr[n++] = (uint8_t)(stream_id >> 24);
    if (ext) {
        put_be32(hdr + n, timestamp);
        n += 4;
    }
    rc = bytes_append(out, hdr, n);
    if (rc < 0)
        goto fail;

    for (;;) {
        size_t part = len - off < chunk_size ? len - off : chunk_size;

        if (part) {
            rc = bytes_append(out, data + off, part);
            if (rc < 0)
                goto fail;
            off += part;
        }
        if (off >= len)
            break;
        /* Type 3 continuation, repeating the extended timestamp (see top). */
        n = put_basic_hdr(hdr, 3, csid);
        if (ext) {
            put_be32(hdr + n, timestamp);
            n += 4;
        }
        rc = bytes_append(out, hdr, n);
        if (rc < 0)
            goto fail;
    }
    return 0;

fail:
    out->len = start; /* leave no half-written message behind */
    return rc;
}
