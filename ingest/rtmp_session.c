/*
 * One RTMP publisher connection: handshake, chunk stream, protocol control and
 * commands; audio, video and metadata are handled in rtmp_media.c. No sockets
 * here (see session_internal.h); replies go to the out-buffer.
 *
 * Message flow with a typical publisher (ffmpeg, OBS, librtmp, rtmp2sink):
 *
 *   client                                server
 *   C0+C1 ───────────────────────────────▶
 *         ◀─────────────────────────────── S0+S1+S2
 *   C2    ───────────────────────────────▶
 *   connect(txn 1, {app})  ──────────────▶
 *         ◀── Window Ack Size, Set Peer Bandwidth, Set Chunk Size,
 *             _result(1, {fmsVer, capabilities}, {NetConnection.Connect.Success})
 *   releaseStream, FCPublish ────────────▶ (_result if txn != 0, onFCPublish)
 *   createStream(txn) ───────────────────▶
 *         ◀── _result(txn, null, 1)
 *   publish(name, "live") on stream 1 ───▶
 *         ◀── Stream Begin 1, onStatus(NetStream.Publish.Start) on stream 1
 *   @setDataFrame/onMetaData, audio, video ───▶ segmenter
 *   FCUnpublish, deleteStream ───────────▶ stream ends
 *
 * Message types and user control events: RTMP specification 1.0, 5.4 and 7.1;
 * FLV tag bodies: FLV specification 10.1, E.4.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../metrics/metrics.h"
#include "../thumb/thumb.h"
#include "rtmp_internal.h"
#include "session_internal.h"

/* Chunk stream ids and message stream id of our replies (as nginx-rtmp). */
enum {
    CSID_CONTROL = 2, /* protocol control and user control messages */
    CSID_COMMAND = 3, /* NetConnection replies */
    CSID_STREAM = 5,  /* NetStream replies (onStatus) */
    STREAM_ID = 1,    /* the one message stream createStream hands out */
};

/* User control events (spec 7.1.7). */
enum { UC_STREAM_BEGIN = 0, UC_PING_REQUEST = 6, UC_PING_RESPONSE = 7 };

/*
 * Without a configured cap, partial messages of all chunk streams together may
 * hold this many times max_message_bytes: a legitimate publisher interleaves a
 * video and an audio message, not dozens of huge ones.
 */
#define DEFAULT_BUFFERED_FACTOR 4
#define CMD_MAX_VALUES 8 /* name, txn, command object, up to 5 arguments */

const char *rtmp_session_state_str(enum rtmp_session_state s)
{
    switch (s) {
    case RTMP_SESS_HANDSHAKE:
        return "handshake";
    case RTMP_SESS_CONNECTING:
        return "connecting";
    case RTMP_SESS_CONNECTED:
        return "connected";
    case RTMP_SESS_AUTHORIZING:
        return "authorizing";
    case RTMP_SESS_PUBLISHING:
        return "publishing";
    case RTMP_SESS_CLOSED:
        return "closed";
    }
    return "?";
}

/* ---- small helpers ------------------------------------------------------- */

static void put_be16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Copies a client-supplied string for a log line: printable ASCII only, cut at N-1. */
const char *rtmp_session_loggable(const char *in, char *buf, size_t n)
{
    size_t i = 0;

    if (!in)
        in = "";
    for (; *in && i + 1 < n; in++)
        buf[i++] = (*in >= 0x20 && *in < 0x7f) ? *in : '?';
    buf[i] = 0;
    return buf;
}

static void set_label(struct rtmp_session *s)
{
    if (s->name[0])
        snprintf(s->label, sizeof(s->label), "rtmp[%u] %s %s/%s", s->id, s->peer, s->p.app,
                 s->name);
    else
        snprintf(s->label, sizeof(s->label), "rtmp[%u] %s", s->id, s->peer);
}

/* Cuts "?query" and trailing slashes from an app or stream name, in place. */
static void strip_query(char *s)
{
    size_t n;

    s[strcspn(s, "?")] = 0;
    n = strlen(s);
    while (n > 0 && s[n - 1] == '/')
        s[--n] = 0;
}

/* ---- output -------------------------------------------------------------- */

static int send_msg(struct rtmp_session *s, uint32_t csid, uint8_t type, uint32_t msid,
                    const uint8_t *data, size_t len)
{
    return rtmp_chunk_write(&s->out, s->out_chunk_size, csid, type, msid, 0, data, len);
}

static int send_control_u32(struct rtmp_session *s, uint8_t type, uint32_t v)
{
    uint8_t b[4];

    put_be32(b, v);
    return send_msg(s, CSID_CONTROL, type, 0, b, sizeof(b));
}

static int send_user_control(struct rtmp_session *s, uint16_t event, uint32_t v)
{
    uint8_t b[6];

    put_be16(b, event);
    put_be32(b + 2, v);
    return send_msg(s, CSID_CONTROL, RTMP_MSG_USER_CONTROL, 0, b, sizeof(b));
}

static int put_status_object(struct bytes *b, const char *level, const char *code, const char *desc)
{
    int rc = 0;

    rc |= amf_put_object_begin(b);
    rc |= amf_put_key(b, "level");
    rc |= amf_put_string(b, level);
    rc |= amf_put_key(b, "code");
    rc |= amf_put_string(b, code);
    rc |= amf_put_key(b, "description");
    rc |= amf_put_string(b, desc);
    rc |= amf_put_object_end(b);
    return rc ? -ENOMEM : 0;
}

/*
 * Sends NAME(TXN, null, {level, code, description}) on message stream MSID:
 * the shape of onStatus, onFCPublish, onFCUnpublish and _error.
 */
static int send_status(struct rtmp_session *s, const char *name, double txn, uint32_t msid,
                       const char *level, const char *code, const char *desc)
{
    struct bytes b = {0};
    int rc = 0;

    rc |= amf_put_string(&b, name);
    rc |= amf_put_number(&b, txn);
    rc |= amf_put_null(&b);
    rc |= put_status_object(&b, level, code, desc);
    rc = rc ? -ENOMEM
            : send_msg(s, msid ? CSID_STREAM : CSID_COMMAND, RTMP_MSG_COMMAND_AMF0, msid, b.data,
                       b.len);
    bytes_reset(&b);
    return rc;
}

/* _result(TXN, null, undefined), or _result(TXN, null, NUMBER) when WITH_NUMBER. */
static int send_result(struct rtmp_session *s, double txn, bool with_number, double number)
{
    struct bytes b = {0};
    int rc = 0;

    rc |= amf_put_string(&b, "_result");
    rc |= amf_put_number(&b, txn);
    rc |= amf_put_null(&b);
    rc |= with_number ? amf_put_number(&b, number) : amf_put_undefined(&b);
    rc = rc ? -ENOMEM : send_msg(s, CSID_COMMAND, RTMP_MSG_COMMAND_AMF0, 0, b.data, b.len);
    bytes_reset(&b);
    return rc;
}

static int send_connect_result(struct rtmp_session *s, double txn)
{
    struct bytes b = {0};
    int rc = 0;

    rc |= amf_put_string(&b, "_result");
    rc |= amf_put_number(&b, txn);
    rc |= amf_put_object_begin(&b);
    rc |= amf_put_key(&b, "fmsVer");
    rc |= amf_put_string(&b, "FMS/3,0,1,123");
    rc |= amf_put_key(&b, "capabilities");
    rc |= amf_put_number(&b, 31);
    rc |= amf_put_object_end(&b);
    rc |= amf_put_object_begin(&b);
    rc |= amf_put_key(&b, "level");
    rc |= amf_put_string(&b, "status");
    rc |= amf_put_key(&b, "code");
    rc |= amf_put_string(&b, "NetConnection.Connect.Success");
    rc |= amf_put_key(&b, "description");
    rc |= amf_put_string(&b, "Connection succeeded.");
    rc |= amf_put_key(&b, "objectEncoding");
    rc |= amf_put_number(&b, s->object_encoding);
    rc |= amf_put_object_end(&b);
    rc = rc ? -ENOMEM : send_msg(s, CSID_COMMAND, RTMP_MSG_COMMAND_AMF0, 0, b.data, b.len);
    bytes_reset(&b);
    return rc;
}

/* ---- stream lifetime ------------------------------------------------------ */

static void end_stream(struct rtmp_session *s, const char *why)
{
    if (!s->stream)
        return;
    /* the access line of a publish: how long, how much, why it ended */
    log_info(s->label, "stream ended (%s) after %.1f s, %llu bytes received", why,
             (double)(time_mono_ms() - s->publish_start_ms) / 1000.0,
             (unsigned long long)(s->in_bytes - s->publish_start_bytes));
    mx_stream_unpublish(s->mx, s->mx_publish_no, why);
    s->mx = NULL;
    thumb_end(s->name);
    seg_stream_close(s->stream);
    s->stream = NULL;
    if (s->state == RTMP_SESS_PUBLISHING)
        s->state = RTMP_SESS_CONNECTED;
}

/* Refuses the publish with onStatus level "error"; the connection is then closed. */
int rtmp_session_publish_error(struct rtmp_session *s, uint32_t msid, const char *code,
                               const char *desc, int err)
{
    int rc = send_status(s, "onStatus", 0, msid ? msid : STREAM_ID, "error", code, desc);

    mx_reject(err == -EACCES   ? MX_REJECT_AUTH
              : err == -EINVAL ? MX_REJECT_NAME
              : err == -EBUSY  ? MX_REJECT_BUSY
              : err == -ENOTSUP ? MX_REJECT_CODEC
                               : MX_REJECT_OTHER);
    return rc < 0 ? rc : err;
}

/* ---- commands ------------------------------------------------------------- */

/* ARGS[0] is the command object, ARGS[1..] the arguments; absent ones are NULL-typed. */
typedef int (*cmd_fn)(struct rtmp_session *s, const struct rtmp_msg *m, double txn,
                      const struct amf_value *args, size_t nargs);

static const char *arg_str(const struct amf_value *args, size_t nargs, size_t i)
{
    return i < nargs ? amf_str(&args[i]) : NULL;
}

static int cmd_connect(struct rtmp_session *s, const struct rtmp_msg *m, double txn,
                       const struct amf_value *args, size_t nargs)
{
    const struct amf_value *obj = nargs > 0 ? &args[0] : NULL;
    const char *app = obj ? amf_str(amf_get(obj, "app")) : NULL;
    char want[sizeof(s->p.app)], got[sizeof(s->p.app)], l1[96], l2[96];
    uint32_t cs = s->p.chunk_size;
    int rc;

    (void)m;
    if (s->state != RTMP_SESS_CONNECTING) {
        log_warn(s->label, "duplicate connect; closing");
        return -EPROTO;
    }
    snprintf(want, sizeof(want), "%s", s->p.app);
    snprintf(got, sizeof(got), "%s", app ? app : "");
    strip_query(want);
    strip_query(got);
    if (strcmp(want, got) != 0) {
        log_warn(s->label, "connect to unknown application '%s' (expected '%s'); closing",
                 rtmp_session_loggable(got, l1, sizeof(l1)), want);
        rc = send_status(s, "_error", txn, 0, "error", "NetConnection.Connect.Rejected",
                         "Connection rejected: unknown application.");
        return rc < 0 ? rc : -EPERM;
    }
    s->object_encoding = obj ? amf_num(amf_get(obj, "objectEncoding"), 0) : 0;
    log_info(s->label, "connect app '%s' flashVer '%s'", want,
             rtmp_session_loggable(obj ? amf_str(amf_get(obj, "flashVer")) : NULL, l2, sizeof(l2)));

    if (cs < 128)
        cs = 128;
    if (cs > RTMP_SESSION_MAX_CHUNK_SIZE)
        cs = RTMP_SESSION_MAX_CHUNK_SIZE;
    if ((rc = send_control_u32(s, RTMP_MSG_WINDOW_ACK_SIZE, RTMP_SESSION_ACK_WINDOW)) < 0)
        return rc;
    {
        uint8_t b[5];

        put_be32(b, RTMP_SESSION_ACK_WINDOW);
        b[4] = 2; /* limit type dynamic */
        if ((rc = send_msg(s, CSID_CONTROL, RTMP_MSG_SET_PEER_BW, 0, b, sizeof(b))) < 0)
            return rc;
    }
    if ((rc = send_control_u32(s, RTMP_MSG_SET_CHUNK_SIZE, cs)) < 0)
        return rc;
    s->out_chunk_size = cs;
    if ((rc = send_connect_result(s, txn)) < 0)
        return rc;
    s->state = RTMP_SESS_CONNECTED;
    return 0;
}

/* releaseStream and FCPublish: nothing to release; answer what clients wait for. */
static int cmd_release_stream(struct rtmp_session *s, const struct rtmp_msg *m, double txn,
                              const struct amf_value *args, size_t nargs)
{
    (void)m, (void)args, (void)nargs;
    return txn != 0 ? send_result(s, txn, false, 0) : 0;
}

static int cmd_fcpublish(struct rtmp_session *s, const struct rtmp_msg *m, double txn,
                         const struct amf_value *args, size_t nargs)
{
    int rc = cmd_release_stream(s, m, txn, args, nargs);

    if (rc < 0)
        return rc;
    return send_status(s, "onFCPublish", 0, 0, "status", "NetStream.Publish.Start",
                       "FCPublish succeeded.");
}

static int cmd_create_stream(struct rtmp_session *s, const struct rtmp_msg *m, double txn,
                             const struct amf_value *args, size_t nargs)
{
    (void)m, (void)args, (void)nargs;
    return send_result(s, txn, true, STREAM_ID);
}

/*
 * Who may publish what: the authorize callback turns the stream key into the
 * public name (and refuses unknown keys), or, without one, the name is taken
 * as is. The key is never logged: it may be a secret.
 */
static int grant_publish(struct rtmp_session *s, uint32_t msid, const char *key)
{
    char desc[RTMP_SESSION_NAME_MAX_LEN + 96], l1[96];
    int rc;

    memset(&s->grant, 0, sizeof(s->grant));
    if (!s->p.authorize) {
        if (strlen(key) < sizeof(s->grant.name))
            memcpy(s->grant.name, key, strlen(key) + 1);
    } else if ((rc = s->p.authorize(s->p.authorize_arg, key, &s->grant)) < 0) {
        log_warn(s->label, "publish refused: stream key %s is not allowed; closing after a delay",
                 s->grant.fingerprint[0] ? s->grant.fingerprint : "(none)");
        return rtmp_session_publish_error(s, msid, "NetStream.Publish.BadName",
                                          "Publishing refused: unknown stream key.", -EACCES);
    }
    if (!stream_name_valid(s->grant.name)) {
        log_warn(s->label, "publish: invalid stream name '%s'; closing",
                 rtmp_session_loggable(key, l1, sizeof(l1)));
        snprintf(desc, sizeof(desc), "invalid stream name '%s'", l1);
        return rtmp_session_publish_error(s, msid, "NetStream.Publish.BadName", desc, -EINVAL);
    }
    return 0;
}

/* Opens the granted stream and tells the client: the publish starts. */
static int start_publish(struct rtmp_session *s, uint32_t msid, const char *type)
{
    char desc[RTMP_SESSION_NAME_MAX_LEN + 96], l2[32];
    const char *pub = s->grant.name;
    int rc;

    rc = seg_stream_open(s->hub, pub, &s->p.seg, &s->stream);
    if (rc == -EBUSY) {
        log_warn(s->label, "publish: stream %s/%s is already being published; closing", s->p.app,
                 pub);
        snprintf(desc, sizeof(desc), "stream %s is already being published", pub);
        return rtmp_session_publish_error(s, msid, "NetStream.Publish.BadName", desc, -EBUSY);
    }
    if (rc < 0) {
        log_error(s->label, "publish: cannot open stream %s: %s; closing", pub, strerror(-rc));
        return rtmp_session_publish_error(s, msid, "NetStream.Publish.Failed",
                                          "cannot start the stream", rc);
    }
    snprintf(s->name, sizeof(s->name), "%s", pub);
    set_label(s);
    s->msid = msid;
    s->state = RTMP_SESS_PUBLISHING;
    memset(&s->ts_video, 0, sizeof(s->ts_video));
    memset(&s->ts_audio, 0, sizeof(s->ts_audio));
    s->metadata_seen = false;
    s->publish_start_ms = time_mono_ms();
    s->publish_start_bytes = s->in_bytes;
    s->mx = mx_stream_publish(pub, s->peer, s->p.seg.segment_ms, &s->mx_publish_no);
    rtmp_chunk_set_max_message(&s->rd, s->p.max_message_bytes);
    rtmp_chunk_set_max_buffer(&s->rd, s->p.max_buffer_bytes);
    if (s->grant.keyed)
        log_info(s->label, "publishing (type %s, stream key %s)",
                 rtmp_session_loggable(type, l2, sizeof(l2)), s->grant.fingerprint);
    else
        log_info(s->label, "publishing (type %s)", rtmp_session_loggable(type, l2, sizeof(l2)));

    snprintf(desc, sizeof(desc), "%s is now published.", pub);
    if ((rc = send_user_control(s, UC_STREAM_BEGIN, msid)) < 0)
        return rc;
    return send_status(s, "onStatus", 0, msid, "status", "NetStream.Publish.Start", desc);
}

static int cmd_publish(struct rtmp_session *s, const struct rtmp_msg *m, double txn,
                       const struct amf_value *args, size_t nargs)
{
    const char *name = arg_str(args, nargs, 1), *type = arg_str(args, nargs, 2);
    char key[RTMP_SESSION_NAME_MAX_LEN];
    uint32_t msid = m->stream_id ? m->stream_id : STREAM_ID;
    int rc;

    (void)txn;
    if (s->state == RTMP_SESS_PUBLISHING || s->state == RTMP_SESS_AUTHORIZING) {
        log_warn(s->label, "second publish on one connection; closing");
        return rtmp_session_publish_error(s, msid, "NetStream.Publish.BadName",
                                          "already publishing on this connection", -EPROTO);
    }
    if (!name || strlen(name) >= sizeof(key)) {
        log_warn(s->label, "publish without a usable stream name; closing");
        return rtmp_session_publish_error(s, msid, "NetStream.Publish.BadName",
                                          "invalid stream name", -EINVAL);
    }
    memcpy(key, name, strlen(name) + 1);
    key[strcspn(key, "?")] = 0; /* "name?key=..." */
    rc = grant_publish(s, msid, key);
    memset(key, 0, sizeof(key));
    if (rc < 0)
        return rc;
    if (s->p.hold_publish) {
        /* The server asks the on_publish hook and calls rtmp_session_authorized. */
        snprintf(s->pending_key, sizeof(s->pending_key), "%s", name);
        snprintf(s->pending_type, sizeof(s->pending_type), "%s", type ? type : "live");
        s->msid = msid;
        s->state = RTMP_SESS_AUTHORIZING;
        log_info(s->label, "publish of %s/%s waits for the on_publish hook", s->p.app,
                 s->grant.name);
        return 0;
    }
    return start_publish(s, msid, type ? type : "live");
}

const char *rtmp_session_pending_key(const struct rtmp_session *s)
{
    return s->state == RTMP_SESS_AUTHORIZING ? s->pending_key : NULL;
}

int rtmp_session_authorized(struct rtmp_session *s, bool allow, const char *why)
{
    int rc;

    if (s->state != RTMP_SESS_AUTHORIZING)
        return -EINVAL;
    memset(s->pending_key, 0, sizeof(s->pending_key));
    s->state = RTMP_SESS_CONNECTED;
    if (allow) {
        log_info(s->label, "publish of %s allowed: %s", s->grant.name, why);
        rc = start_publish(s, s->msid, s->pending_type);
    } else {
        log_warn(s->label, "publish of %s refused: %s; closing", s->grant.name, why);
        rc = rtmp_session_publish_error(s, s->msid, "NetStream.Publish.Rejected",
                                        "Publishing refused by the server.", -EACCES);
    }
    if (rc < 0)
        s->state = RTMP_SESS_CLOSED;
    return rc;
}

static int cmd_fcunpublish(struct rtmp_session *s, const struct rtmp_msg *m, double txn,
                           const struct amf_value *args, size_t nargs)
{
    int rc;

    (void)m, (void)args, (void)nargs;
    end_stream(s, "FCUnpublish");
    if (txn != 0 && (rc = send_result(s, txn, false, 0)) < 0)
        return rc;
    return send_status(s, "onFCUnpublish", 0, 0, "status", "NetStream.Unpublish.Success",
                       "Stream unpublished.");
}

/* deleteStream and closeStream: end the stream; answer only if one was live. */
static int cmd_delete_stream(struct rtmp_session *s, const struct rtmp_msg *m, double txn,
                             const struct amf_value *args, size_t nargs)
{
    (void)m, (void)txn, (void)args, (void)nargs;
    if (!s->stream)
        return 0;
    end_stream(s, "deleteStream");
    return send_status(s, "onStatus", 0, s->msid, "status", "NetStream.Unpublish.Success",
                       "Stream unpublished.");
}

static int cmd_play(struct rtmp_session *s, const struct rtmp_msg *m, double txn,
                    const struct amf_value *args, size_t nargs)
{
    (void)txn, (void)args, (void)nargs;
    log_warn(s->label, "play refused: playback over RTMP is not supported; closing");
    return rtmp_session_publish_error(s, m->stream_id, "NetStream.Play.Failed",
                                      "Playback over RTMP is not supported: use HLS.", -EPERM);
}

/* Responses to calls we never make, and calls that need no answer. */
static int cmd_ignore(struct rtmp_session *s, const struct rtmp_msg *m, double txn,
                      const struct amf_value *args, size_t nargs)
{
    (void)s, (void)m, (void)txn, (void)args, (void)nargs;
    return 0;
}

static const struct {
    const char *name;
    cmd_fn fn;
    bool needs_connect;
} commands[] = {
    {"connect", cmd_connect, false},
    {"releaseStream", cmd_release_stream, true},
    {"FCPublish", cmd_fcpublish, true},
    {"createStream", cmd_create_stream, true},
    {"publish", cmd_publish, true},
    {"FCUnpublish", cmd_fcunpublish, true},
    {"deleteStream", cmd_delete_stream, true},
    {"closeStream", cmd_delete_stream, true},
    {"play", cmd_play, true},
    {"_result", cmd_ignore, false},
    {"_error", cmd_ignore, false},
};

/* Decodes up to MAX AMF0 values from IN into V (*N set). Returns 0 or the amf_decode error. */
int rtmp_session_decode_amf(const uint8_t *in, size_t len, struct amf_value *v, size_t max,
                            size_t *n)
{
    size_t used;
    int rc;

    *n = 0;
    while (len > 0 && *n < max) {
        if ((rc = amf_decode(in, len, &v[*n], &used)) < 0)
            return rc;
        (*n)++;
        in += used;
        len -= used;
    }
    return 0;
}

const char *rtmp_session_amf_err_str(int rc)
{
    return rc == -E2BIG    ? "too deep or too many values"
           : rc == -ENOMEM ? "out of memory"
                           : "malformed";
}

static int on_command(struct rtmp_session *s, const struct rtmp_msg *m, const uint8_t *data,
                      size_t len)
{
    struct amf_value v[CMD_MAX_VALUES];
    char l1[64];
    size_t n = 0, i;
    const char *name;
    double txn;
    int rc;

    memset(v, 0, sizeof(v));
    rc = rtmp_session_decode_amf(data, len, v, ARRAY_SIZE(v), &n);
    if (rc < 0) {
        log_warn(s->label, "AMF command on csid %u: %s (%d); closing", m->csid,
                 rtmp_session_amf_err_str(rc), rc);
        goto out;
    }
    if (n < 2 || !(name = amf_str(&v[0])) || v[1].type != AMF_NUMBER) {
        log_warn(s->label, "command on csid %u without name and transaction id; closing", m->csid);
        rc = -EPROTO;
        goto out;
    }
    txn = v[1].number;
    for (i = 0; i < ARRAY_SIZE(commands); i++) {
        if (strcmp(commands[i].name, name) != 0)
            continue;
        log_debug(s->label, "command %s txn %.0f on stream %u", name, txn, m->stream_id);
        if (commands[i].needs_connect && s->state < RTMP_SESS_CONNECTED) {
            log_warn(s->label, "command %s before connect; closing", name);
            rc = -EPROTO;
            goto out;
        }
        rc = commands[i].fn(s, m, txn, v + 2, n - 2);
        goto out;
    }
    if (s->state < RTMP_SESS_CONNECTED) {
        log_warn(s->label, "command '%s' before connect; closing",
                 rtmp_session_loggable(name, l1, sizeof(l1)));
        rc = -EPROTO;
        goto out;
    }
    log_debug(s->label, "ignoring unknown command '%s' (txn %.0f)",
              rtmp_session_loggable(name, l1, sizeof(l1)), txn);
    rc = txn != 0 ? send_status(s, "_error", txn, 0, "error", "NetConnection.Call.Failed",
                                "Unknown command.")
                  : 0;
out:
    for (i = 0; i < n; i++)
        amf_value_reset(&v[i]);
    return rc;
}

/* ---- protocol control ------------------------------------------------------- */

static int on_user_control(struct rtmp_session *s, const struct rtmp_msg *m)
{
    uint16_t event;

    if (m->len < 2) {
        log_warn(s->label, "short user control message on csid %u; closing", m->csid);
        return -EPROTO;
    }
    event = (uint16_t)(m->data[0] << 8 | m->data[1]);
    if (event != UC_PING_REQUEST)
        return 0;
    if (m->len < 6) {
        log_warn(s->label, "short ping request on csid %u; closing", m->csid);
        return -EPROTO;
    }
    return send_user_control(s, UC_PING_RESPONSE, get_be32(m->data + 2));
}

static int handle_message(struct rtmp_session *s, const struct rtmp_msg *m)
{
    /* AMF3 variants carry an AMF0 body after a format byte (as nginx-rtmp reads them). */
    size_t skip = (m->type == RTMP_MSG_DATA_AMF3 || m->type == RTMP_MSG_COMMAND_AMF3) && m->len;

    switch (m->type) {
    case RTMP_MSG_SET_CHUNK_SIZE:
        log_debug(s->label, "peer chunk size %u", s->rd.chunk_size);
        return 0;
    case RTMP_MSG_ABORT:
    case RTMP_MSG_ACK:
    case RTMP_MSG_SET_PEER_BW:
        return 0;
    case RTMP_MSG_USER_CONTROL:
        return on_user_control(s, m);
    case RTMP_MSG_WINDOW_ACK_SIZE:
        if (m->len < 4) {
            log_warn(s->label, "short Window Ack Size on csid %u; closing", m->csid);
            return -EPROTO;
        }
        s->ack_window = get_be32(m->data);
        log_debug(s->label, "peer window ack size %u", s->ack_window);
        return 0;
    case RTMP_MSG_COMMAND_AMF0:
    case RTMP_MSG_COMMAND_AMF3:
        return on_command(s, m, m->data + skip, m->len - skip);
    case RTMP_MSG_DATA_AMF0:
    case RTMP_MSG_DATA_AMF3:
        return rtmp_media_on_data(s, m, m->data + skip, m->len - skip);
    case RTMP_MSG_AUDIO:
        s->media_messages++;
        return rtmp_media_on_audio(s, m->timestamp, m->data, m->len);
    case RTMP_MSG_VIDEO:
        s->media_messages++;
        return rtmp_media_on_video(s, m->timestamp, m->data, m->len);
    case RTMP_MSG_AGGREGATE:
        s->media_messages++;
        return rtmp_media_on_aggregate(s, m);
    default:
        log_debug(s->label, "ignoring message type %u on csid %u", m->type, m->csid);
        return 0;
    }
}

/* Acknowledges each Window Ack Size worth of received bytes (spec 5.4.3). */
static int maybe_ack(struct rtmp_session *s)
{
    if (!s->ack_window || s->in_bytes - s->acked < s->ack_window)
        return 0;
    s->acked = s->in_bytes;
    return send_control_u32(s, RTMP_MSG_ACK, (uint32_t)s->in_bytes);
}

/* ---- public ------------------------------------------------------------------ */

int rtmp_session_new(const struct rtmp_session_params *p, struct seg_hub *hub, unsigned id,
                     const char *peer, struct rtmp_session **out)
{
    struct rtmp_session *s = calloc(1, sizeof(*s));
    struct rtmp_chunk_limits lim = {
        .max_chunk_size = RTMP_SESSION_MAX_CHUNK_SIZE,
        .max_message_bytes = p->max_message_bytes < RTMP_SESSION_PRE_PUBLISH_MAX_MESSAGE
                                 ? p->max_message_bytes
                                 : RTMP_SESSION_PRE_PUBLISH_MAX_MESSAGE,
        .max_chunk_streams = RTMP_SESSION_MAX_CHUNK_STREAMS,
        .max_buffer_bytes = RTMP_SESSION_PRE_PUBLISH_MAX_BUFFER,
    };

    *out = NULL;
    if (!s)
        return -ENOMEM;
    s->p = *p;
    s->p.app[sizeof(s->p.app) - 1] = 0;
    if (!s->p.max_buffer_bytes)
        s->p.max_buffer_bytes = DEFAULT_BUFFERED_FACTOR * (size_t)p->max_message_bytes;
    if (lim.max_buffer_bytes > s->p.max_buffer_bytes)
        lim.max_buffer_bytes = s->p.max_buffer_bytes;
    s->hub = hub;
    s->id = id;
    snprintf(s->peer, sizeof(s->peer), "%s", peer ? peer : "?");
    set_label(s);
    s->state = RTMP_SESS_HANDSHAKE;
    s->out_chunk_size = 128;
    rtmp_hs_init(&s->hs);
    if (rtmp_chunk_reader_init(&s->rd, &lim) < 0) {
        free(s);
        return -ENOMEM;
    }
    *out = s;
    return 0;
}

void rtmp_session_free(struct rtmp_session *s)
{
    if (!s)
        return;
    end_stream(s, "connection closed");
    rtmp_chunk_reader_reset(&s->rd);
    bytes_reset(&s->out);
    free(s);
}

struct bytes *rtmp_session_out(struct rtmp_session *s)
{
    return &s->out;
}

enum rtmp_session_state rtmp_session_state(const struct rtmp_session *s)
{
    return s->state;
}

const struct rtmp_publish_grant *rtmp_session_grant(const struct rtmp_session *s)
{
    return s->state == RTMP_SESS_PUBLISHING || s->state == RTMP_SESS_AUTHORIZING ? &s->grant
                                                                          : NULL;
}

void rtmp_session_set_seg_params(struct rtmp_session *s, const struct seg_params *p)
{
    s->p.seg = *p;
    if (s->stream)
        seg_stream_set_params(s->stream, p);
}

void rtmp_session_kick(struct rtmp_session *s, const char *why)
{
    log_warn(s->label, "disconnecting: %s", why);
    if (s->stream)
        send_status(s, "onStatus", 0, s->msid, "error", "NetStream.Publish.BadName", why);
    end_stream(s, why);
    s->state = RTMP_SESS_CLOSED;
}

uint64_t rtmp_session_media_messages(const struct rtmp_session *s)
{
    return s->media_messages;
}

size_t rtmp_session_buffered_bytes(const struct rtmp_session *s)
{
    return rtmp_chunk_buffered_bytes(&s->rd);
}

const char *rtmp_session_label(const struct rtmp_session *s)
{
    return s->label;
}

static int feed_handshake(struct rtmp_session *s, const uint8_t *in, size_t len, size_t *used)
{
    uint8_t reply[RTMP_HS_REPLY_SIZE];
    size_t reply_len = 0;
    int rc = rtmp_hs_feed(&s->hs, in, len, used, reply, &reply_len);

    if (reply_len && bytes_append(&s->out, reply, reply_len) < 0)
        return -ENOMEM;
    if (rc == RTMP_ERROR) {
        log_warn(s->label, "handshake failed: %s; closing", s->hs.error ? s->hs.error : "?");
        return -EPROTO;
    }
    if (rc == RTMP_OK) {
        s->state = RTMP_SESS_CONNECTING;
        log_debug(s->label, "handshake done (%s)", s->hs.digest ? "digest" : "plain");
    }
    return 0;
}

/* " on csid N" for a chunk reader error, when the reader knows the csid. */
static const char *chunk_err_where(const struct rtmp_session *s, char buf[32])
{
    int64_t csid = rtmp_chunk_current_csid(&s->rd);

    if (csid < 0)
        return "";
    snprintf(buf, 32, " on csid %u", (unsigned)csid);
    return buf;
}

int rtmp_session_feed(struct rtmp_session *s, const uint8_t *in, size_t len)
{
    char where[32];
    int rc = 0;

    if (s->state == RTMP_SESS_CLOSED)
        return -EPIPE;
    s->in_bytes += len;
    while (len > 0) {
        struct rtmp_msg m;
        size_t used = 0;

        if (s->state == RTMP_SESS_HANDSHAKE) {
            if ((rc = feed_handshake(s, in, len, &used)) < 0)
                goto fail;
            in += used;
            len -= used;
            if (s->state == RTMP_SESS_HANDSHAKE)
                break; /* all absorbed, waiting for more */
            continue;
        }
        rc = rtmp_chunk_read(&s->rd, in, len, &used, &m);
        in += used;
        len -= used;
        if (rc == RTMP_ERROR) {
            log_warn(s->label, "chunk stream error%s: %s; closing", chunk_err_where(s, where),
                     s->rd.error ? s->rd.error : "?");
            rc = -EPROTO;
            goto fail;
        }
        if (rc == RTMP_NEED_MORE)
            break;
        if ((rc = handle_message(s, &m)) < 0)
            goto fail;
    }
    if ((rc = maybe_ack(s)) < 0)
        goto fail;
    return 0;
fail:
    if (rc == -ENOMEM)
        log_error(s->label, "out of memory; closing");
    end_stream(s, "publisher error"); /* now, not when the socket is finally gone */
    s->state = RTMP_SESS_CLOSED;
    return rc;
}
