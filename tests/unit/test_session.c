/*
 * The RTMP session without sockets: scripted client byte streams go in (whole
 * and one byte at a time), the replies in the out-buffer are decoded with the
 * chunk reader and AMF0 decoder and checked.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../ingest/rtmp_internal.h"
#include "../../ingest/session_internal.h"
#include "../../store/store.h"
#include "harness.h"

/* ---- a scripted client ---------------------------------------------------- */

struct reply {
    uint8_t type;
    uint32_t csid, msid, timestamp;
    uint8_t *data;
    size_t len;
};

#define MAX_REPLIES 32

struct client {
    struct rtmp_session *s;
    struct rtmp_chunk_reader rd; /* reads what the server sent */
    uint32_t out_chunk_size;     /* what we send with */
    bool bytewise;               /* feed one byte at a time */
    int last_rc;
    uint64_t fed;
    struct reply r[MAX_REPLIES];
    size_t nr;
};

static const struct rtmp_session_params params = {
    .app = "live",
    .chunk_size = 4096,
    .max_message_bytes = 4 * 1024 * 1024,
    .seg = {.segment_ms = 1000, .window_segments = 4},
};

static void replies_reset(struct client *c)
{
    for (size_t i = 0; i < c->nr; i++)
        free(c->r[i].data);
    c->nr = 0;
}

/* Decodes everything the session wrote so far into c->r (appending). */
static void collect(struct client *c)
{
    struct bytes *out = rtmp_session_out(c->s);
    size_t pos = 0;

    while (pos < out->len) {
        struct rtmp_msg m;
        size_t used = 0;
        int rc = rtmp_chunk_read(&c->rd, out->data + pos, out->len - pos, &used, &m);

        pos += used;
        CHECK(rc != RTMP_ERROR);
        if (rc != RTMP_OK)
            break;
        if (c->nr < MAX_REPLIES) {
            struct reply *r = &c->r[c->nr++];

            r->type = m.type;
            r->csid = m.csid;
            r->msid = m.stream_id;
            r->timestamp = m.timestamp;
            r->len = m.len;
            r->data = malloc(m.len ? m.len : 1);
            memcpy(r->data, m.data, m.len);
        }
    }
    CHECK_EQ_INT(pos, out->len);
    out->len = 0;
}

static int feed(struct client *c, const uint8_t *p, size_t n)
{
    int rc = 0;

    c->fed += n;
    if (!c->bytewise) {
        rc = rtmp_session_feed(c->s, p, n);
    } else {
        for (size_t i = 0; i < n && rc == 0; i++)
            rc = rtmp_session_feed(c->s, p + i, 1);
    }
    c->last_rc = rc;
    collect(c);
    return rc;
}

static int send_msg(struct client *c, uint32_t csid, uint8_t type, uint32_t msid, uint32_t ts,
                    const struct bytes *body)
{
    struct bytes b = {0};
    int rc;

    CHECK_EQ_INT(
        rtmp_chunk_write(&b, c->out_chunk_size, csid, type, msid, ts, body->data, body->len), 0);
    rc = feed(c, b.data, b.len);
    bytes_reset(&b);
    return rc;
}

static struct seg_hub *test_hub(struct store *st)
{
    struct seg_hub *hub = NULL;

    CHECK_EQ_INT(seg_hub_new(st, &hub), 0);
    return hub;
}

static void client_init(struct client *c, struct seg_hub *hub, bool bytewise)
{
    struct rtmp_chunk_limits lim = {1 << 24, 1 << 24, 64, 0};

    memset(c, 0, sizeof(*c));
    c->bytewise = bytewise;
    c->out_chunk_size = 128;
    CHECK_EQ_INT(rtmp_session_new(&params, hub, 7, "192.0.2.1:5000", &c->s), 0);
    rtmp_chunk_reader_init(&c->rd, &lim);
}

static void client_free(struct client *c)
{
    replies_reset(c);
    rtmp_chunk_reader_reset(&c->rd);
    rtmp_session_free(c->s);
}

static void handshake(struct client *c, bool digest)
{
    uint8_t c0c1[1 + RTMP_HS_SIZE];
    struct bytes *out = rtmp_session_out(c->s);
    const uint8_t *s1;

    c0c1[0] = 3;
    rtmp_hs_client_c1(c0c1 + 1, digest);
    c->fed += sizeof(c0c1);
    if (c->bytewise) {
        for (size_t i = 0; i < sizeof(c0c1); i++)
            CHECK_EQ_INT(rtmp_session_feed(c->s, c0c1 + i, 1), 0);
    } else {
        CHECK_EQ_INT(rtmp_session_feed(c->s, c0c1, sizeof(c0c1)), 0);
    }
    CHECK_EQ_INT(out->len, RTMP_HS_REPLY_SIZE);
    if (out->len != RTMP_HS_REPLY_SIZE)
        return;
    CHECK_EQ_INT(out->data[0], 3);
    s1 = out->data + 1;
    CHECK_EQ_INT(rtmp_hs_client_verify(c0c1 + 1, s1, s1 + RTMP_HS_SIZE), 0);
    CHECK_EQ_INT(rtmp_session_state(c->s), RTMP_SESS_HANDSHAKE);
    /* C2 echoes S1; the first chunk can ride in the same read. */
    {
        uint8_t c2[RTMP_HS_SIZE];

        memcpy(c2, s1, RTMP_HS_SIZE);
        out->len = 0;
        c->fed += sizeof(c2);
        CHECK_EQ_INT(rtmp_session_feed(c->s, c2, sizeof(c2)), 0);
    }
    CHECK_EQ_INT(out->len, 0);
    CHECK_EQ_INT(rtmp_session_state(c->s), RTMP_SESS_CONNECTING);
}

/* AMF command: NAME, TXN, then a null command object unless OBJ is given. */
static void cmd_begin(struct bytes *b, const char *name, double txn)
{
    memset(b, 0, sizeof(*b));
    amf_put_string(b, name);
    amf_put_number(b, txn);
}

static int send_cmd(struct client *c, uint32_t msid, const char *name, double txn, const char *arg1,
                    const char *arg2)
{
    struct bytes b;
    int rc;

    cmd_begin(&b, name, txn);
    amf_put_null(&b);
    if (arg1)
        amf_put_string(&b, arg1);
    if (arg2)
        amf_put_string(&b, arg2);
    rc = send_msg(c, msid ? 8 : 3, RTMP_MSG_COMMAND_AMF0, msid, 0, &b);
    bytes_reset(&b);
    return rc;
}

static int send_connect(struct client *c, const char *app)
{
    struct bytes b;
    int rc;

    cmd_begin(&b, "connect", 1);
    amf_put_object_begin(&b);
    amf_put_key(&b, "app");
    amf_put_string(&b, app);
    amf_put_key(&b, "type");
    amf_put_string(&b, "nonprivate");
    amf_put_key(&b, "flashVer");
    amf_put_string(&b, "FMLE/3.0 (compatible; test)");
    amf_put_key(&b, "tcUrl");
    amf_put_string(&b, "rtmp://127.0.0.1/live");
    amf_put_key(&b, "objectEncoding");
    amf_put_number(&b, 0);
    amf_put_object_end(&b);
    rc = send_msg(c, 3, RTMP_MSG_COMMAND_AMF0, 0, 0, &b);
    bytes_reset(&b);
    return rc;
}

/* Decoded command reply: values [0..n). */
struct decoded {
    struct amf_value v[6];
    size_t n;
};

static void decode(const struct reply *r, struct decoded *d)
{
    size_t pos = 0, used;

    memset(d, 0, sizeof(*d));
    while (pos < r->len && d->n < ARRAY_SIZE(d->v)) {
        int rc = amf_decode(r->data + pos, r->len - pos, &d->v[d->n], &used);

        CHECK_EQ_INT(rc, 0);
        if (rc < 0)
            break;
        d->n++;
        pos += used;
    }
}

static void decoded_reset(struct decoded *d)
{
    for (size_t i = 0; i < d->n; i++)
        amf_value_reset(&d->v[i]);
}

/* Finds the first reply that is command NAME; NULL if none. */
static const struct reply *find_cmd(struct client *c, const char *name)
{
    for (size_t i = 0; i < c->nr; i++) {
        struct decoded d;
        bool hit;

        if (c->r[i].type != RTMP_MSG_COMMAND_AMF0)
            continue;
        decode(&c->r[i], &d);
        hit = d.n > 0 && amf_str(&d.v[0]) && !strcmp(amf_str(&d.v[0]), name);
        decoded_reset(&d);
        if (hit)
            return &c->r[i];
    }
    return NULL;
}

static const struct reply *find_type(struct client *c, uint8_t type)
{
    for (size_t i = 0; i < c->nr; i++)
        if (c->r[i].type == type)
            return &c->r[i];
    return NULL;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Checks a status-shaped reply NAME: txn TXN, info.level LEVEL, info.code CODE. */
static void check_status(struct client *c, const char *name, double txn, const char *level,
                         const char *code, uint32_t msid)
{
    const struct reply *r = find_cmd(c, name);
    struct decoded d;

    CHECK(r != NULL);
    if (!r) {
        fprintf(stderr, "  missing reply %s (%s)\n", name, code);
        return;
    }
    CHECK_EQ_INT(r->msid, msid);
    decode(r, &d);
    CHECK(d.n >= 4);
    if (d.n >= 4) {
        CHECK(d.v[1].type == AMF_NUMBER && d.v[1].number == txn);
        CHECK_EQ_STR(amf_str(amf_get(&d.v[3], "level")), level);
        CHECK_EQ_STR(amf_str(amf_get(&d.v[3], "code")), code);
    }
    decoded_reset(&d);
}

/* Handshake + connect + releaseStream + FCPublish + createStream + publish NAME. */
static void publish(struct client *c, const char *name)
{
    handshake(c, false);
    CHECK_EQ_INT(send_connect(c, "live"), 0);
    replies_reset(c);
    CHECK_EQ_INT(send_cmd(c, 0, "createStream", 4, NULL, NULL), 0);
    replies_reset(c);
    send_cmd(c, 1, "publish", 5, name, "live");
}

/* ---- tests ------------------------------------------------------------------ */

static void run_publish_flow(bool bytewise)
{
    struct store *st = store_new();
    struct seg_hub *hub = test_hub(st);
    struct client c, c2;
    const struct reply *r;
    struct decoded d;

    client_init(&c, hub, bytewise);
    handshake(&c, true);

    /* The client raises its chunk size first, as OBS does. */
    {
        struct bytes b = {0};
        uint8_t v[4] = {0, 0, 0x10, 0};

        bytes_append(&b, v, 4);
        CHECK_EQ_INT(send_msg(&c, 2, RTMP_MSG_SET_CHUNK_SIZE, 0, 0, &b), 0);
        bytes_reset(&b);
        c.out_chunk_size = 4096;
    }

    CHECK_EQ_INT(send_connect(&c, "live/?token=1"), 0);
    CHECK_EQ_INT(rtmp_session_state(c.s), RTMP_SESS_CONNECTED);
    r = find_type(&c, RTMP_MSG_WINDOW_ACK_SIZE);
    CHECK(r && r->len == 4 && be32(r->data) == RTMP_SESSION_ACK_WINDOW);
    r = find_type(&c, RTMP_MSG_SET_PEER_BW);
    CHECK(r && r->len == 5 && be32(r->data) == RTMP_SESSION_ACK_WINDOW && r->data[4] == 2);
    r = find_type(&c, RTMP_MSG_SET_CHUNK_SIZE);
    CHECK(r && r->len == 4 && be32(r->data) == params.chunk_size);
    check_status(&c, "_result", 1, "status", "NetConnection.Connect.Success", 0);
    r = find_cmd(&c, "_result");
    if (r) {
        decode(r, &d);
        CHECK_EQ_STR(amf_str(amf_get(&d.v[2], "fmsVer")), "FMS/3,0,1,123");
        CHECK(amf_num(amf_get(&d.v[2], "capabilities"), 0) == 31);
        CHECK(amf_num(amf_get(&d.v[3], "objectEncoding"), -1) == 0);
        decoded_reset(&d);
    }
    replies_reset(&c);

    CHECK_EQ_INT(send_cmd(&c, 0, "releaseStream", 2, "show", NULL), 0);
    CHECK(find_cmd(&c, "_result") != NULL);
    replies_reset(&c);
    CHECK_EQ_INT(send_cmd(&c, 0, "FCPublish", 3, "show", NULL), 0);
    check_status(&c, "onFCPublish", 0, "status", "NetStream.Publish.Start", 0);
    replies_reset(&c);

    {
        /* createStream as an AMF3 command message: a 0 format byte, then AMF0. */
        struct bytes b = {0};

        bytes_append(&b, "", 1);
        amf_put_string(&b, "createStream");
        amf_put_number(&b, 4);
        amf_put_null(&b);
        CHECK_EQ_INT(send_msg(&c, 3, RTMP_MSG_COMMAND_AMF3, 0, 0, &b), 0);
        bytes_reset(&b);
    }
    r = find_cmd(&c, "_result");
    CHECK(r != NULL);
    if (r) {
        decode(r, &d);
        CHECK(d.n == 4 && d.v[1].number == 4 && d.v[2].type == AMF_NULL &&
              d.v[3].type == AMF_NUMBER && d.v[3].number == 1);
        decoded_reset(&d);
    }
    replies_reset(&c);

    CHECK_EQ_INT(send_cmd(&c, 1, "publish", 5, "show?key=secret", "live"), 0);
    CHECK_EQ_INT(rtmp_session_state(c.s), RTMP_SESS_PUBLISHING);
    r = find_type(&c, RTMP_MSG_USER_CONTROL);
    CHECK(r && r->len == 6 && r->data[0] == 0 && r->data[1] == 0 && be32(r->data + 2) == 1);
    check_status(&c, "onStatus", 0, "status", "NetStream.Publish.Start", 1);
    CHECK(strstr(rtmp_session_label(c.s), "live/show") != NULL);
    CHECK(strstr(rtmp_session_label(c.s), "192.0.2.1:5000") != NULL);
    CHECK_EQ_INT(store_live_count(st), 1);
    replies_reset(&c);

    /* A second publisher on the same name takes over (a half-open first one
     * must not lock the name); the first is refused at its next frame. */
    client_init(&c2, hub, bytewise);
    publish(&c2, "show");
    CHECK_EQ_INT(c2.last_rc, 0);
    check_status(&c2, "onStatus", 0, "status", "NetStream.Publish.Start", 1);
    CHECK_EQ_INT(rtmp_session_state(c2.s), RTMP_SESS_PUBLISHING);
    CHECK_EQ_INT(store_live_count(st), 1);
    {
        static const uint8_t avc[] = {0x17, 1, 0, 0, 0, 0, 0, 0, 1, 0x65};
        struct bytes v = {.data = (uint8_t *)avc, .len = sizeof(avc)};

        CHECK_EQ_INT(send_msg(&c, 6, RTMP_MSG_VIDEO, 1, 0, &v), -ECANCELED);
    }
    CHECK_EQ_INT(rtmp_session_state(c.s), RTMP_SESS_CLOSED);
    client_free(&c); /* the stream is not c's any more: it stays live */
    CHECK_EQ_INT(store_live_count(st), 1);
    replies_reset(&c2);

    CHECK_EQ_INT(send_cmd(&c2, 0, "FCUnpublish", 6, "show", NULL), 0);
    check_status(&c2, "onFCUnpublish", 0, "status", "NetStream.Unpublish.Success", 0);
    CHECK_EQ_INT(rtmp_session_state(c2.s), RTMP_SESS_CONNECTED);
    CHECK_EQ_INT(store_live_count(st), 0); /* no reconnect grace here: the stream ends */
    replies_reset(&c2);
    CHECK_EQ_INT(send_cmd(&c2, 0, "deleteStream", 7, NULL, NULL), 0);
    CHECK_EQ_INT(c2.nr, 0);

    client_free(&c2);
    seg_hub_free(hub);
    store_free(st);
}

static void test_publish_flow(void)
{
    run_publish_flow(false);
}

static void test_publish_flow_bytewise(void)
{
    run_publish_flow(true);
}

static void test_wrong_app(void)
{
    struct store *st = store_new();
    struct seg_hub *hub = test_hub(st);
    struct client c;

    client_init(&c, hub, false);
    handshake(&c, false);
    CHECK(send_connect(&c, "other?live") < 0);
    check_status(&c, "_error", 1, "error", "NetConnection.Connect.Rejected", 0);
    CHECK_EQ_INT(rtmp_session_state(c.s), RTMP_SESS_CLOSED);
    client_free(&c);
    seg_hub_free(hub);
    store_free(st);
}

#define PADDING "0123456789012345678901234567890123456789012345678901234567890123456789"

/* Zero-length command and data messages (UBSan: no NULL + 0) are refused or ignored. */
static void test_zero_length(void)
{
    static const uint8_t types[] = {RTMP_MSG_DATA_AMF0, RTMP_MSG_DATA_AMF3, RTMP_MSG_AUDIO,
                                    RTMP_MSG_VIDEO, RTMP_MSG_USER_CONTROL, RTMP_MSG_COMMAND_AMF3,
                                    RTMP_MSG_COMMAND_AMF0};
    struct store *st = store_new();
    struct seg_hub *hub = test_hub(st);
    struct bytes empty = {0};
    struct client c;

    for (size_t i = 0; i < ARRAY_SIZE(types); i++) {
        client_init(&c, hub, false);
        handshake(&c, false);
        CHECK_EQ_INT(send_connect(&c, "live"), 0);
        if (types[i] == RTMP_MSG_COMMAND_AMF0 || types[i] == RTMP_MSG_COMMAND_AMF3 ||
            types[i] == RTMP_MSG_USER_CONTROL)
            CHECK(send_msg(&c, 3, types[i], 0, 0, &empty) < 0); /* no name / too short */
        else
            send_msg(&c, 3, types[i], 0, 0, &empty); /* either is fine: no UB is the point */
        client_free(&c);
    }
    seg_hub_free(hub);
    store_free(st);
}

/* Before publish, partial messages across chunk streams are capped at 256 KiB. */
static void test_pre_publish_buffer_cap(void)
{
    struct store *st = store_new();
    struct seg_hub *hub = test_hub(st);
    struct client c;
    static uint8_t chunk[12 + 60000];
    static const uint8_t set_chunk_size[4] = {0, 1, 0, 0}; /* 65536 */
    struct bytes b = {0};
    int rc = 0;

    memset(chunk, 0, sizeof(chunk));
    client_init(&c, hub, false);
    handshake(&c, false);
    bytes_append(&b, set_chunk_size, sizeof(set_chunk_size));
    CHECK_EQ_INT(send_msg(&c, 2, RTMP_MSG_SET_CHUNK_SIZE, 0, 0, &b), 0);
    bytes_reset(&b);
    /* 60001-byte command messages, all but their last byte, on csids 4..63. */
    for (uint8_t csid = 4; csid < 64 && rc == 0; csid++) {
        static const uint8_t h[12] = {0, 0, 0, 0, 0, 0xEA, 0x61, 0x14, 0, 0, 0, 0};

        memcpy(chunk, h, sizeof(h));
        chunk[0] = csid;
        rc = feed(&c, chunk, sizeof(chunk));
        CHECK(rtmp_session_buffered_bytes(c.s) <= RTMP_SESSION_PRE_PUBLISH_MAX_BUFFER);
    }
    CHECK(rc < 0);
    CHECK_EQ_INT(rtmp_session_state(c.s), RTMP_SESS_CLOSED);
    client_free(&c);
    seg_hub_free(hub);
    store_free(st);
}

static void test_ping_ack_unknown(void)
{
    struct store *st = store_new();
    struct seg_hub *hub = test_hub(st);
    struct client c;
    struct bytes b = {0};
    const struct reply *r;
    uint8_t ping[6] = {0, 6, 0x12, 0x34, 0x56, 0x78}, was[4] = {0, 0, 0x10, 0};

    client_init(&c, hub, false);
    handshake(&c, false);
    CHECK_EQ_INT(send_connect(&c, "live"), 0);
    replies_reset(&c);

    bytes_append(&b, ping, sizeof(ping));
    CHECK_EQ_INT(send_msg(&c, 2, RTMP_MSG_USER_CONTROL, 0, 0, &b), 0);
    bytes_reset(&b);
    r = find_type(&c, RTMP_MSG_USER_CONTROL);
    CHECK(r && r->len == 6 && r->data[1] == 7 && be32(r->data + 2) == 0x12345678);
    replies_reset(&c);

    /* Unknown command: _error when a transaction id asks for an answer, else nothing. */
    CHECK_EQ_INT(send_cmd(&c, 0, "getFancyThing", 9, NULL, NULL), 0);
    check_status(&c, "_error", 9, "error", "NetConnection.Call.Failed", 0);
    replies_reset(&c);
    CHECK_EQ_INT(send_cmd(&c, 0, "justSaying", 0, NULL, NULL), 0);
    CHECK_EQ_INT(c.nr, 0);

    /* Window Ack Size 4096: an Acknowledgement each time that much more arrived. */
    bytes_append(&b, was, sizeof(was));
    CHECK_EQ_INT(send_msg(&c, 2, RTMP_MSG_WINDOW_ACK_SIZE, 0, 0, &b), 0);
    bytes_reset(&b);
    for (int round = 0; round < 2; round++) {
        uint64_t start = c.fed;

        replies_reset(&c);
        for (int i = 0; i < 100 && !find_type(&c, RTMP_MSG_ACK); i++)
            CHECK_EQ_INT(send_cmd(&c, 0, "justSaying", 0, PADDING, NULL), 0);
        r = find_type(&c, RTMP_MSG_ACK);
        CHECK(r && r->len == 4 && be32(r->data) == (uint32_t)c.fed);
        CHECK(c.fed >= 4096);
        if (round == 1)
            CHECK(c.fed - start >= 4096 && c.fed - start < 4096 + 300);
    }
    client_free(&c);
    seg_hub_free(hub);
    store_free(st);
}

static void test_refusals(void)
{
    struct store *st = store_new();
    struct seg_hub *hub = test_hub(st);
    struct client c;
    struct bytes b = {0};

    /* Not RTMP at all. */
    client_init(&c, hub, false);
    CHECK(feed(&c, (const uint8_t *)"GET / HTTP/1.1\r\n\r\n", 18) < 0);
    CHECK_EQ_INT(rtmp_session_state(c.s), RTMP_SESS_CLOSED);
    client_free(&c);

    /* A command other than connect first. */
    client_init(&c, hub, false);
    handshake(&c, false);
    CHECK(send_cmd(&c, 0, "createStream", 2, NULL, NULL) < 0);
    client_free(&c);

    /* A huge message announced before publish: refused at the header. */
    client_init(&c, hub, false);
    handshake(&c, false);
    {
        /* 16 MB - 1: the largest length the 24-bit field can announce. */
        uint8_t hdr[12] = {0x03, 0, 0, 0, 0xff, 0xff, 0xff, RTMP_MSG_COMMAND_AMF0, 0, 0, 0, 0};
        CHECK(feed(&c, hdr, sizeof(hdr)) < 0);
    }
    client_free(&c);

    /* Just above the pre-publish limit. */
    client_init(&c, hub, false);
    handshake(&c, false);
    {
        uint32_t n = RTMP_SESSION_PRE_PUBLISH_MAX_MESSAGE + 1;
        uint8_t hdr[12] = {
            0x03, 0, 0, 0, (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n, RTMP_MSG_COMMAND_AMF0,
            0,    0, 0, 0};

        CHECK(feed(&c, hdr, sizeof(hdr)) < 0);
    }
    client_free(&c);

    /* Many chunk streams each holding a partial message. */
    client_init(&c, hub, false);
    handshake(&c, false);
    {
        uint8_t chunk[12 + 128] = {0};
        uint32_t n = RTMP_SESSION_PRE_PUBLISH_MAX_MESSAGE;
        int rc = 0;

        for (uint8_t csid = 4; csid < 60 && rc == 0; csid++) {
            uint8_t hdr[12] = {
                csid, 0, 0, 0, (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n, RTMP_MSG_AUDIO,
                1,    0, 0, 0};

            memcpy(chunk, hdr, sizeof(hdr));
            rc = feed(&c, chunk, sizeof(chunk));
            /* the rest of each message in type 3 chunks, all but the last one */
            for (uint32_t have = 128; have + 128 < n && rc == 0; have += 128) {
                uint8_t cont[1 + 128] = {(uint8_t)(0xc0 | csid)};

                rc = feed(&c, cont, sizeof(cont));
            }
        }
        CHECK(rc < 0);
    }
    client_free(&c);

    /* AMF nested 1,000 deep after a valid connect. */
    client_init(&c, hub, false);
    handshake(&c, false);
    CHECK_EQ_INT(send_connect(&c, "live"), 0);
    cmd_begin(&b, "deep", 0);
    for (int i = 0; i < 1000; i++) {
        uint8_t obj[4] = {AMF_OBJECT, 0, 1, 'a'};

        bytes_append(&b, obj, sizeof(obj));
    }
    amf_put_number(&b, 1);
    for (int i = 0; i < 1000; i++)
        bytes_append(&b, "\0\0\x09", 3);
    CHECK(send_msg(&c, 3, RTMP_MSG_COMMAND_AMF0, 0, 0, &b) < 0);
    bytes_reset(&b);
    CHECK_EQ_INT(rtmp_session_state(c.s), RTMP_SESS_CLOSED);
    client_free(&c);

    /* play is refused with an onStatus error. */
    client_init(&c, hub, false);
    handshake(&c, false);
    CHECK_EQ_INT(send_connect(&c, "live"), 0);
    replies_reset(&c);
    CHECK(send_cmd(&c, 1, "play", 0, "show", NULL) < 0);
    check_status(&c, "onStatus", 0, "error", "NetStream.Play.Failed", 1);
    client_free(&c);

    /* An invalid stream name. */
    client_init(&c, hub, false);
    publish(&c, "../etc");
    CHECK(c.last_rc < 0);
    check_status(&c, "onStatus", 0, "error", "NetStream.Publish.BadName", 1);
    client_free(&c);
    CHECK_EQ_INT(store_live_count(st), 0);
    seg_hub_free(hub);
    store_free(st);
}

static void check_codec_refused(uint8_t type, const uint8_t *tag, size_t len)
{
    struct store *st = store_new();
    struct seg_hub *hub = test_hub(st);
    struct client c;
    struct bytes b = {0};

    client_init(&c, hub, false);
    publish(&c, "codec");
    CHECK_EQ_INT(rtmp_session_state(c.s), RTMP_SESS_PUBLISHING);
    replies_reset(&c);
    bytes_append(&b, tag, len);
    CHECK_EQ_INT(send_msg(&c, 6, type, 1, 0, &b), -ENOTSUP);
    bytes_reset(&b);
    check_status(&c, "onStatus", 0, "error", "NetStream.Publish.Failed", 1);
    CHECK_EQ_INT(store_live_count(st), 0); /* ended at once, not when the socket goes */
    client_free(&c);
    seg_hub_free(hub);
    store_free(st);
}

static void test_unsupported_codecs(void)
{
    static const uint8_t hevc_legacy[] = {0x1c, 0, 0, 0, 0, 1, 2, 3};
    static const uint8_t hevc_enhanced[] = {0x90, 'h', 'v', 'c', '1', 1, 2, 3};
    static const uint8_t av1_enhanced[] = {0x93, 'a', 'v', '0', '1', 1, 2, 3};
    static const uint8_t mp3[] = {0x2f, 0xff, 0xfb, 0x90};
    static const uint8_t speex[] = {0xb2, 1, 2};

    check_codec_refused(RTMP_MSG_VIDEO, hevc_legacy, sizeof(hevc_legacy));
    check_codec_refused(RTMP_MSG_VIDEO, hevc_enhanced, sizeof(hevc_enhanced));
    check_codec_refused(RTMP_MSG_VIDEO, av1_enhanced, sizeof(av1_enhanced));
    check_codec_refused(RTMP_MSG_AUDIO, mp3, sizeof(mp3));
    check_codec_refused(RTMP_MSG_AUDIO, speex, sizeof(speex));
}

/* ---- real encoder output through the session ----------------------------- */

static uint8_t *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *p = NULL;
    long n;

    *len = 0;
    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (p = malloc((size_t)n)) && fread(p, 1, (size_t)n, f) == (size_t)n)
        *len = (size_t)n;
    fclose(f);
    return p;
}

/*
 * Publishes an ffmpeg-made FLV (H.264 with B-frames + AAC): the first half of
 * the tags as single messages, the rest packed into aggregate messages of
 * four tags, then checks the stream reached the segmenter.
 */
static void test_media(void)
{
    char path[] = "/tmp/onair-test-session-XXXXXX.flv", cmd[512];
    struct store *st = store_new();
    struct seg_hub *hub = test_hub(st);
    struct client c;
    struct bytes agg = {0};
    uint8_t *flv;
    size_t len, pos, ntags = 0, i = 0, in_agg = 0;
    uint32_t agg_ts = 0;
    enum store_kind kind;
    struct buf *pl;
    int fd = mkstemps(path, 4);

    if (fd < 0 || system("ffmpeg -version >/dev/null 2>&1") != 0) {
        fprintf(stderr, "  (ffmpeg not available: media test skipped)\n");
        if (fd >= 0)
            close(fd), unlink(path);
        seg_hub_free(hub);
        store_free(st);
        return;
    }
    close(fd);
    snprintf(cmd, sizeof(cmd),
             "ffmpeg -nostdin -v error -y -f lavfi -i testsrc2=size=160x90:rate=25 "
             "-f lavfi -i sine=frequency=440:sample_rate=48000 -t 4 -c:v libx264 "
             "-preset ultrafast -bf 2 -g 25 -pix_fmt yuv420p -c:a aac -f flv %s",
             path);
    CHECK_EQ_INT(system(cmd), 0);
    flv = read_all(path, &len);
    unlink(path);
    CHECK(flv && len > 13);
    if (!flv || len <= 13)
        goto out;
    for (pos = 13; pos + 15 <= len;
         pos += 15 + (flv[pos + 1] << 16 | flv[pos + 2] << 8 | flv[pos + 3]))
        ntags++;

    client_init(&c, hub, false);
    publish(&c, "media");
    CHECK_EQ_INT(rtmp_session_state(c.s), RTMP_SESS_PUBLISHING);
    for (pos = 13; pos + 15 <= len && c.last_rc == 0; i++) {
        const uint8_t *t = flv + pos;
        uint32_t size = (uint32_t)t[1] << 16 | (uint32_t)t[2] << 8 | t[3];
        uint32_t ts = (uint32_t)t[7] << 24 | (uint32_t)t[4] << 16 | (uint32_t)t[5] << 8 | t[6];
        struct bytes body = {0};

        if (pos + 11 + size + 4 > len)
            break;
        if (i < ntags / 2) {
            if (t[0] == 18) { /* onMetaData as ffmpeg sends it: behind @setDataFrame */
                amf_put_string(&body, "@setDataFrame");
                bytes_append(&body, t + 11, size);
            } else {
                bytes_append(&body, t + 11, size);
            }
            send_msg(&c, t[0] == 8 ? 4 : 6, t[0], 1, ts, &body);
            bytes_reset(&body);
        } else {
            if (in_agg == 0)
                agg_ts = ts;
            bytes_append(&agg, t, 11 + size + 4);
            if (++in_agg == 4) {
                send_msg(&c, 6, RTMP_MSG_AGGREGATE, 1, agg_ts, &agg);
                bytes_reset(&agg);
                in_agg = 0;
            }
        }
        pos += 11 + size + 4;
    }
    if (in_agg)
        send_msg(&c, 6, RTMP_MSG_AGGREGATE, 1, agg_ts, &agg);
    bytes_reset(&agg);
    CHECK_EQ_INT(c.last_rc, 0);
    CHECK_EQ_INT(rtmp_session_state(c.s), RTMP_SESS_PUBLISHING);
    replies_reset(&c);
    CHECK_EQ_INT(send_cmd(&c, 1, "deleteStream", 0, NULL, NULL), 0);
    check_status(&c, "onStatus", 0, "status", "NetStream.Unpublish.Success", 1);

    pl = store_get(st, "media", "media.m3u8", &kind);
    CHECK(pl != NULL);
    if (pl) {
        int segs = 0;
        char *text = strndup((const char *)pl->data, pl->len);

        for (char *p = text; (p = strstr(p, "#EXTINF:")); p++)
            segs++;
        CHECK(segs >= 3); /* 4 s in 1 s segments */
        free(text);
        buf_unref(pl);
    }
    client_free(&c);
out:
    free(flv);
    seg_hub_free(hub);
    store_free(st);
}

/* A stand-in for the server's key check: one key, "s3cret-key", publishes as "townhall". */
static int fake_authorize(void *arg, const char *key, struct rtmp_publish_grant *out)
{
    int *calls = arg;

    ++*calls;
    memset(out, 0, sizeof(*out));
    snprintf(out->fingerprint, sizeof(out->fingerprint), "%s", key[0] ? "fp-test" : "");
    if (strcmp(key, "s3cret-key") != 0)
        return -EACCES;
    snprintf(out->name, sizeof(out->name), "townhall");
    out->keyed = true;
    out->key_sha256[0] = 0xab;
    return 0;
}

static void test_stream_keys(void)
{
    struct rtmp_session_params p = params;
    struct store *st = store_new();
    struct seg_hub *hub = test_hub(st);
    struct client c;
    int calls = 0;

    p.authorize = fake_authorize;
    p.authorize_arg = &calls;

    /* A wrong key: -EACCES (the server delays the close), BadName on the stream. */
    memset(&c, 0, sizeof(c));
    c.out_chunk_size = 128;
    CHECK_EQ_INT(rtmp_session_new(&p, hub, 8, "192.0.2.9:4000", &c.s), 0);
    rtmp_chunk_reader_init(&c.rd, &(struct rtmp_chunk_limits){1 << 24, 1 << 24, 64, 0});
    publish(&c, "wrong-key?x=1");
    CHECK_EQ_INT(c.last_rc, -EACCES);
    CHECK_EQ_INT(calls, 1);
    check_status(&c, "onStatus", 0, "error", "NetStream.Publish.BadName", 1);
    CHECK(rtmp_session_grant(c.s) == NULL);
    CHECK_EQ_INT(store_live_count(st), 0);
    client_free(&c);

    /* The right key (with a query, as some encoders send): the public name is used. */
    memset(&c, 0, sizeof(c));
    c.out_chunk_size = 128;
    CHECK_EQ_INT(rtmp_session_new(&p, hub, 9, "192.0.2.9:4001", &c.s), 0);
    rtmp_chunk_reader_init(&c.rd, &(struct rtmp_chunk_limits){1 << 24, 1 << 24, 64, 0});
    publish(&c, "s3cret-key?obs=1");
    CHECK_EQ_INT(c.last_rc, 0);
    check_status(&c, "onStatus", 0, "status", "NetStream.Publish.Start", 1);
    CHECK(rtmp_session_grant(c.s) != NULL && rtmp_session_grant(c.s)->keyed);
    CHECK_EQ_STR(rtmp_session_label(c.s), "rtmp[9] 192.0.2.9:4001 live/townhall");
    CHECK(strstr(rtmp_session_label(c.s), "s3cret") == NULL);
    CHECK_EQ_INT(store_live_count(st), 1);
    client_free(&c);
    CHECK_EQ_INT(store_live_count(st), 0);
    seg_hub_free(hub);
    store_free(st);
}

/* hold_publish: the publish waits in AUTHORIZING until the server's verdict. */
static void test_held_publish(void)
{
    struct rtmp_session_params p = params;
    struct store *st = store_new();
    struct seg_hub *hub = test_hub(st);
    struct client c;

    p.hold_publish = true;
    for (int allow = 0; allow <= 1; allow++) {
        memset(&c, 0, sizeof(c));
        c.out_chunk_size = 128;
        CHECK_EQ_INT(rtmp_session_new(&p, hub, 10, "192.0.2.9:4002", &c.s), 0);
        rtmp_chunk_reader_init(&c.rd, &(struct rtmp_chunk_limits){1 << 24, 1 << 24, 64, 0});
        publish(&c, "show?token=abc");
        CHECK_EQ_INT(c.last_rc, 0);
        CHECK_EQ_INT(rtmp_session_state(c.s), RTMP_SESS_AUTHORIZING);
        CHECK(find_cmd(&c, "onStatus") == NULL); /* nothing said yet */
        CHECK_EQ_STR(rtmp_session_pending_key(c.s), "show?token=abc");
        CHECK_EQ_STR(rtmp_session_grant(c.s)->name, "show");
        CHECK_EQ_INT(store_live_count(st), 0);
        if (allow) {
            CHECK_EQ_INT(rtmp_session_authorized(c.s, true, "test"), 0);
            collect(&c);
            check_status(&c, "onStatus", 0, "status", "NetStream.Publish.Start", 1);
            CHECK_EQ_INT(rtmp_session_state(c.s), RTMP_SESS_PUBLISHING);
            CHECK_EQ_INT(store_live_count(st), 1);
        } else {
            CHECK_EQ_INT(rtmp_session_authorized(c.s, false, "test"), -EACCES);
            collect(&c);
            check_status(&c, "onStatus", 0, "error", "NetStream.Publish.Rejected", 1);
            CHECK_EQ_INT(rtmp_session_state(c.s), RTMP_SESS_CLOSED);
            CHECK_EQ_INT(store_live_count(st), 0);
        }
        CHECK(rtmp_session_pending_key(c.s) == NULL);
        CHECK_EQ_INT(rtmp_session_authorized(c.s, true, "again"), -EINVAL);
        client_free(&c);
    }
    /* A second publish while the first waits is refused. */
    memset(&c, 0, sizeof(c));
    c.out_chunk_size = 128;
    CHECK_EQ_INT(rtmp_session_new(&p, hub, 11, "192.0.2.9:4003", &c.s), 0);
    rtmp_chunk_reader_init(&c.rd, &(struct rtmp_chunk_limits){1 << 24, 1 << 24, 64, 0});
    publish(&c, "show");
    CHECK_EQ_INT(send_cmd(&c, 1, "publish", 6, "other", "live"), -EPROTO);
    client_free(&c);
    CHECK_EQ_INT(store_live_count(st), 0);
    seg_hub_free(hub);
    store_free(st);
}

int main(void)
{
    log_set_level(LOG_WARN);
    RUN(test_publish_flow);
    RUN(test_publish_flow_bytewise);
    RUN(test_wrong_app);
    RUN(test_ping_ack_unknown);
    RUN(test_zero_length);
    RUN(test_pre_publish_buffer_cap);
    RUN(test_refusals);
    RUN(test_unsupported_codecs);
    RUN(test_media);
    RUN(test_stream_keys);
    RUN(test_held_publish);
    return harness_done();
}
