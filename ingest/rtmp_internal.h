/*
 * Internal interfaces of the ingest module: the pure RTMP parsers and
 * serialisers. Nothing here touches a socket; every function takes bytes and
 * returns results. Only the ingest sources and the tests include this header.
 */
#ifndef ONAIR_RTMP_INTERNAL_H
#define ONAIR_RTMP_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/common.h"

/* Parser status: kept apart so "need more" is never confused with "error". */
enum rtmp_status {
    RTMP_OK = 0,        /* a complete result is available */
    RTMP_NEED_MORE = 1, /* all input absorbed, feed more */
    RTMP_ERROR = -1,    /* protocol error: reason in the parser's `error` */
};

/* ---- handshake (handshake.c) -------------------------------------------- */

#define RTMP_HS_SIZE 1536                      /* C1/C2/S1/S2 */
#define RTMP_HS_REPLY_SIZE (1 + 2 * RTMP_HS_SIZE) /* S0+S1+S2 */

enum rtmp_hs_state { RTMP_HS_C0C1, RTMP_HS_C2, RTMP_HS_DONE, RTMP_HS_FAILED };

/* Server-side handshake; zero-initialise (or rtmp_hs_init) before use. */
struct rtmp_hs {
    enum rtmp_hs_state state;
    bool digest;             /* client used the HMAC-SHA256 digest scheme */
    size_t have;             /* bytes of the current block collected */
    uint8_t block[1 + RTMP_HS_SIZE];
    const char *error;
};

void rtmp_hs_init(struct rtmp_hs *hs);

/*
 * Feeds LEN bytes. Sets *CONSUMED. When C0+C1 are complete, writes S0+S1+S2
 * (RTMP_HS_REPLY_SIZE bytes) into REPLY and sets *REPLY_LEN (else 0).
 * Returns RTMP_OK once C2 has been consumed (state DONE; bytes after C2 are not
 * consumed: they are the first chunks), RTMP_NEED_MORE, or RTMP_ERROR
 * (wrong version byte; hs->error says why).
 */
int rtmp_hs_feed(struct rtmp_hs *hs, const uint8_t *in, size_t len, size_t *consumed,
                 uint8_t reply[RTMP_HS_REPLY_SIZE], size_t *reply_len);

const char *rtmp_hs_state_str(enum rtmp_hs_state s);

/*
 * Client-side helpers (used by tests and fuzzers to play the other side):
 * build a C1 with (DIGEST) or without a Flash Player digest, and verify that
 * S1/S2 carry valid server digests for that C1. Return 0 / -EINVAL.
 */
void rtmp_hs_client_c1(uint8_t c1[RTMP_HS_SIZE], bool digest);
int rtmp_hs_client_verify(const uint8_t c1[RTMP_HS_SIZE], const uint8_t s1[RTMP_HS_SIZE],
                          const uint8_t s2[RTMP_HS_SIZE]);

/* ---- chunk stream (chunk.c) --------------------------------------------- */

/* Message type ids (RTMP spec 5.4 and 7.1). */
enum {
    RTMP_MSG_SET_CHUNK_SIZE = 1,
    RTMP_MSG_ABORT = 2,
    RTMP_MSG_ACK = 3,
    RTMP_MSG_USER_CONTROL = 4,
    RTMP_MSG_WINDOW_ACK_SIZE = 5,
    RTMP_MSG_SET_PEER_BW = 6,
    RTMP_MSG_AUDIO = 8,
    RTMP_MSG_VIDEO = 9,
    RTMP_MSG_DATA_AMF3 = 15,
    RTMP_MSG_COMMAND_AMF3 = 17,
    RTMP_MSG_DATA_AMF0 = 18,
    RTMP_MSG_COMMAND_AMF0 = 20,
    RTMP_MSG_AGGREGATE = 22,
};

struct rtmp_msg {
    uint32_t csid;
    uint8_t type;
    uint32_t stream_id;
    uint32_t timestamp; /* absolute, modulo 2^32 */
    uint32_t len;
    const uint8_t *data; /* valid until the next rtmp_chunk_read/reset; never NULL */
};

struct rtmp_chunk_limits {
    uint32_t max_chunk_size;    /* largest Set Chunk Size accepted */
    uint32_t max_message_bytes; /* largest message length accepted */
    uint32_t max_chunk_streams; /* distinct chunk stream ids alive at once */
    size_t max_buffer_bytes;    /* payload buffers across all csids; 0 = no cap */
};

struct rtmp_chunk_stream; /* per-csid state, private to chunk.c */

struct rtmp_chunk_reader {
    struct rtmp_chunk_limits lim;
    uint32_t chunk_size; /* incoming, starts at 128 */
    /* private parsing state */
    struct rtmp_chunk_stream *streams;
    uint32_t nstreams;
    uint8_t hdr[18];
    size_t hdr_have;
    struct rtmp_chunk_stream *cur;
    size_t buf_bytes; /* payload buffers allocated across all csids (accounting) */
    const char *error;
};

/* Initialises R with limits LIM (copied). Returns 0. */
int rtmp_chunk_reader_init(struct rtmp_chunk_reader *r, const struct rtmp_chunk_limits *lim);
/* Frees everything R owns. */
void rtmp_chunk_reader_reset(struct rtmp_chunk_reader *r);

/*
 * Consumes bytes of IN until one message is complete or IN is used up. Sets
 * *CONSUMED. Returns RTMP_OK with *MSG filled, RTMP_NEED_MORE, or RTMP_ERROR
 * (r->error). Set Chunk Size and Abort messages are applied by the reader
 * itself and also returned.
 */
int rtmp_chunk_read(struct rtmp_chunk_reader *r, const uint8_t *in, size_t len,
                    size_t *consumed, struct rtmp_msg *msg);

/*
 * Sets the largest message length R accepts from now on (a session raises it
 * once the peer has published). It is checked on type 0/1 headers parsed after
 * the call; a message already in progress keeps the length it was admitted with.
 */
void rtmp_chunk_set_max_message(struct rtmp_chunk_reader *r, uint32_t bytes);

/*
 * Sets the most payload buffer bytes R may hold across its chunk streams
 * (0 = no cap). Checked before each allocation: growing past it is an error.
 */
void rtmp_chunk_set_max_buffer(struct rtmp_chunk_reader *r, size_t bytes);

/*
 * The chunk stream id of the header R is parsing or has just parsed, for error
 * logs: valid after rtmp_chunk_read returned RTMP_ERROR on a header. Returns -1
 * while no complete basic header is buffered (between chunks, inside chunk data).
 */
int64_t rtmp_chunk_current_csid(const struct rtmp_chunk_reader *r);

/* Payload buffer bytes R holds for messages across all its chunk streams. */
size_t rtmp_chunk_buffered_bytes(const struct rtmp_chunk_reader *r);

/*
 * Appends one message to OUT as chunks of CHUNK_SIZE: a type 0 header, then
 * type 3 continuations; extended timestamp when TIMESTAMP >= 0xFFFFFF.
 * Returns 0 or -ENOMEM / -EINVAL.
 */
int rtmp_chunk_write(struct bytes *out, uint32_t chunk_size, uint32_t csid, uint8_t type,
                     uint32_t stream_id, uint32_t timestamp, const uint8_t *data, size_t len);

/* ---- AMF0 (amf.c) -------------------------------------------------------- */

enum amf_type {
    AMF_NUMBER = 0x00,
    AMF_BOOLEAN = 0x01,
    AMF_STRING = 0x02,
    AMF_OBJECT = 0x03,
    AMF_NULL = 0x05,
    AMF_UNDEFINED = 0x06,
    AMF_ECMA_ARRAY = 0x08,
    AMF_STRICT_ARRAY = 0x0a,
    AMF_DATE = 0x0b,
    AMF_LONG_STRING = 0x0c,
};

#define AMF_MAX_DEPTH 16    /* nesting of objects/arrays */
#define AMF_MAX_NODES 4096  /* values in one decoded tree */

struct amf_prop;

struct amf_value {
    enum amf_type type;
    double number;         /* NUMBER, DATE */
    bool boolean;          /* BOOLEAN */
    char *str;             /* STRING, LONG_STRING: NUL-terminated copy */
    size_t str_len;
    struct amf_prop *props; /* OBJECT, ECMA_ARRAY */
    size_t nprops;
    struct amf_value *items; /* STRICT_ARRAY */
    size_t nitems;
};

struct amf_prop {
    char *key;
    struct amf_value value;
};

/*
 * Decodes one AMF0 value from IN into *OUT (owned by the caller: free with
 * amf_value_reset). Sets *CONSUMED. Returns 0, -EINVAL (malformed/truncated or
 * unsupported type), -E2BIG (deeper than AMF_MAX_DEPTH or more than
 * AMF_MAX_NODES values), -ENOMEM. On error *OUT is left reset.
 */
int amf_decode(const uint8_t *in, size_t len, struct amf_value *out, size_t *consumed);
void amf_value_reset(struct amf_value *v);

/* Property KEY of an OBJECT/ECMA_ARRAY, or NULL. */
const struct amf_value *amf_get(const struct amf_value *obj, const char *key);
/* String value or NULL; number value or DEF. */
const char *amf_str(const struct amf_value *v);
double amf_num(const struct amf_value *v, double def);

/* Encoders: append to OUT; return 0 or -ENOMEM. */
int amf_put_number(struct bytes *out, double v);
int amf_put_bool(struct bytes *out, bool v);
int amf_put_string(struct bytes *out, const char *s);
int amf_put_null(struct bytes *out);
int amf_put_undefined(struct bytes *out);
int amf_put_object_begin(struct bytes *out);
int amf_put_key(struct bytes *out, const char *key); /* then a value */
int amf_put_object_end(struct bytes *out);

/* ---- FLV tag bodies (flv.c) --------------------------------------------- */

enum { FLV_CODEC_H264 = 7, FLV_SOUND_AAC = 10 };

struct flv_video {
    int frame_type;      /* 1 key, 2 inter, 5 info/command */
    int codec_id;        /* 7 = AVC; enhanced: 0 */
    bool enhanced;       /* Enhanced RTMP ExVideoTagHeader */
    uint32_t fourcc;     /* enhanced: 'hvc1', 'av01', ... */
    int avc_packet_type; /* 0 sequence header, 1 NALUs, 2 end of sequence */
    int32_t cts_ms;      /* composition time offset (signed 24 bit) */
    const uint8_t *data; /* payload after the header (borrowed from input) */
    size_t len;
};

struct flv_audio {
    int sound_format;    /* 10 = AAC */
    int sound_rate, sound_size, sound_type;
    int aac_packet_type; /* 0 sequence header, 1 raw */
    const uint8_t *data;
    size_t len;
};

/* Parse an FLV VIDEODATA/AUDIODATA body. Return 0 or -EINVAL (truncated). */
int flv_parse_video(const uint8_t *in, size_t len, struct flv_video *out);
int flv_parse_audio(const uint8_t *in, size_t len, struct flv_audio *out);

/*
 * Extends 32-bit RTMP timestamps to 64 bits. Handles both the 2^32 wrap of the
 * RTMP clock and the 2^31 wrap that ffmpeg's FLV writer produces.
 */
struct flv_ts_unwrap {
    bool started;
    uint32_t last;
    int64_t base; /* added to raw values */
    int64_t last_out;
};
int64_t flv_ts_unwrap(struct flv_ts_unwrap *u, uint32_t ts);

#endif
