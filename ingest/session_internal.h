/*
 * The RTMP session: one publisher connection's protocol state machine, with no
 * socket in sight. rtmp_server.c feeds it the bytes it reads and writes out
 * whatever the session appended to its out-buffer; the unit tests do the same
 * with scripted byte streams.
 *
 *   bytes in ─▶ handshake ─▶ chunk reader ─▶ messages ─┬─ protocol control
 *                  │                                   ├─ commands (AMF0/AMF3)
 *                  ▼                                   ├─ data (onMetaData)
 *            S0+S1+S2 ─▶ out-buffer ◀── replies        └─ audio/video ─▶ segmenter
 *
 * Only the ingest sources and the tests include this header. The struct and
 * functions at the end are private to rtmp_session.c and rtmp_media.c.
 */
#ifndef ONAIR_SESSION_INTERNAL_H
#define ONAIR_SESSION_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "../common/common.h"
#include "../segmenter/segmenter.h"
#include "rtmp_internal.h"

struct seg_hub;
struct rtmp_session;

enum rtmp_session_state {
    RTMP_SESS_HANDSHAKE,  /* waiting for C0+C1 / C2 */
    RTMP_SESS_CONNECTING, /* handshake done, waiting for `connect` */
    RTMP_SESS_CONNECTED,  /* connected, not publishing */
    RTMP_SESS_AUTHORIZING, /* publish granted, waiting for rtmp_session_authorized */
    RTMP_SESS_PUBLISHING, /* a seg_stream is open */
    RTMP_SESS_CLOSED,     /* error or refusal: flush the out-buffer and close */
};

const char *rtmp_session_state_str(enum rtmp_session_state s);

/* What a publish is granted: the public name, and the key it proved (if any). */
struct rtmp_publish_grant {
    char name[STREAM_NAME_MAX_LEN + 1]; /* public stream name: /live/NAME/ */
    bool keyed;                         /* granted on a listed stream key */
    uint8_t key_sha256[32];             /* that key's digest (keyed only) */
    char fingerprint[16];               /* short loggable form of the offered key, or "" */
};

/*
 * Decides a publish of stream key KEY (what the client sent, query cut).
 * Returns 0 with OUT filled, or -EACCES (OUT->fingerprint still set) when the
 * key is not allowed. Never logs KEY.
 */
typedef int (*rtmp_authorize_fn)(void *arg, const char *key, struct rtmp_publish_grant *out);

/* What a session needs from the configuration (copied by rtmp_session_new). */
struct rtmp_session_params {
    char app[256];              /* application name publishers must connect to */
    uint32_t chunk_size;        /* our outgoing chunk size, announced after connect */
    uint32_t max_message_bytes; /* largest incoming message once publishing */
    size_t max_buffer_bytes;    /* partial messages once publishing; 0 = 4 x max_message_bytes */
    struct seg_params seg;
    rtmp_authorize_fn authorize; /* NULL: any valid name publishes under itself */
    void *authorize_arg;
    bool hold_publish; /* a granted publish waits in AUTHORIZING (the on_publish hook) */
};

/* Stricter limits before publish: commands and control messages are small. */
#define RTMP_SESSION_PRE_PUBLISH_MAX_MESSAGE (64 * 1024)
#define RTMP_SESSION_PRE_PUBLISH_MAX_BUFFER (256 * 1024)
#define RTMP_SESSION_MAX_CHUNK_SIZE (16 * 1024 * 1024)
#define RTMP_SESSION_MAX_CHUNK_STREAMS 64
#define RTMP_SESSION_ACK_WINDOW 5000000 /* our Window Ack Size / Set Peer Bandwidth */

/*
 * Creates a session for connection number ID from PEER ("addr:port", copied
 * into log lines). P is copied; HUB (where publishes go) is borrowed for the
 * session's lifetime. Returns 0 and the session in *OUT, or -ENOMEM.
 */
int rtmp_session_new(const struct rtmp_session_params *p, struct seg_hub *hub, unsigned id,
                     const char *peer, struct rtmp_session **out);

/* Ends the published stream, if any (seg_stream_close), and frees S. Accepts NULL. */
void rtmp_session_free(struct rtmp_session *s);

/*
 * Feeds LEN bytes received from the peer; all of them are consumed. Replies are
 * appended to the out-buffer (rtmp_session_out). Returns 0 to keep going, or a
 * negative errno when the connection must be closed (after flushing the
 * out-buffer, which may hold an error reply); the reason has been logged.
 * Once it returned an error, further calls return -EPIPE and do nothing.
 */
int rtmp_session_feed(struct rtmp_session *s, const uint8_t *in, size_t len);

/*
 * The out-buffer (borrowed until rtmp_session_free). The caller sends
 * data[0..len) and then sets len to 0 (or removes what it sent).
 */
struct bytes *rtmp_session_out(struct rtmp_session *s);

enum rtmp_session_state rtmp_session_state(const struct rtmp_session *s);

/* The grant of a publishing or authorizing session (else NULL); borrowed. */
const struct rtmp_publish_grant *rtmp_session_grant(const struct rtmp_session *s);

/*
 * What the client sent as the stream name of the publish waiting in
 * AUTHORIZING (the key, with its query), or NULL in any other state. Borrowed
 * until the next call on S. Never log it.
 */
const char *rtmp_session_pending_key(const struct rtmp_session *s);

/*
 * Ends the wait of a held publish (hold_publish): ALLOW starts it, else it is
 * refused with onStatus NetStream.Publish.Rejected (WHY logged). Replies go to
 * the out-buffer. Returns 0, -EACCES when refused, or another negative errno
 * when the connection must be closed (logged); -EINVAL if S was not waiting.
 */
int rtmp_session_authorized(struct rtmp_session *s, bool allow, const char *why);

/* A live reload's HLS timing, for the stream being published (if any) and later ones. */
void rtmp_session_set_seg_params(struct rtmp_session *s, const struct seg_params *p);

/*
 * Ends the published stream now (WHY is logged) and closes the session: a
 * removed stream or changed key. The caller then closes the connection.
 */
void rtmp_session_kick(struct rtmp_session *s, const char *why);

/* Audio, video and aggregate messages received so far (the server's idle check). */
uint64_t rtmp_session_media_messages(const struct rtmp_session *s);

/* Payload bytes the session holds for partial messages (rtmp_chunk_buffered_bytes). */
size_t rtmp_session_buffered_bytes(const struct rtmp_session *s);

/* "rtmp[ID] PEER" or "rtmp[ID] PEER APP/NAME": the module string of log lines. */
const char *rtmp_session_label(const struct rtmp_session *s);

/* ========================================================================== */
/* Private to rtmp_session.c and rtmp_media.c: nothing else may use these.   */
/* ========================================================================== */

#define RTMP_SESSION_NAME_MAX_LEN 128

struct rtmp_session {
    struct rtmp_session_params p;
    struct seg_hub *hub;
    unsigned id;
    char peer[64];
    char label[64 + 64 + 256 + RTMP_SESSION_NAME_MAX_LEN];
    enum rtmp_session_state state;

    struct rtmp_hs hs;
    struct rtmp_chunk_reader rd;
    struct bytes out;
    uint32_t out_chunk_size;

    uint64_t in_bytes;   /* everything received, handshake included */
    uint64_t acked;      /* in_bytes when we last sent an Acknowledgement */
    uint32_t ack_window; /* the peer's Window Ack Size; 0 = none announced */
    uint64_t media_messages;

    double object_encoding;
    uint32_t msid; /* message stream id the publish came on */
    char name[RTMP_SESSION_NAME_MAX_LEN];
    struct rtmp_publish_grant grant;
    char pending_key[RTMP_SESSION_NAME_MAX_LEN]; /* AUTHORIZING: the raw publish name */
    char pending_type[32];
    struct seg_stream *stream;
    struct mx_stream *mx; /* statistics of the published stream (NULL: metrics off) */
    uint64_t mx_publish_no; /* which publish of it this is (a takeover starts a newer one) */
    int64_t publish_start_ms;     /* for the access line at the end */
    uint64_t publish_start_bytes;
    struct flv_ts_unwrap ts_video, ts_audio;
    bool metadata_seen;
};

/* -- rtmp_session.c: helpers the media half shares ------------------------- */

/*
 * Copies client-supplied IN (NULL reads as "") into BUF for a log line:
 * printable ASCII only, cut at N-1 bytes. Returns BUF.
 */
const char *rtmp_session_loggable(const char *in, char *buf, size_t n);

/*
 * Decodes up to MAX AMF0 values from IN into V (the caller resets V[0..*N)
 * with amf_value_reset, also on error). Returns 0 or the amf_decode error.
 */
int rtmp_session_decode_amf(const uint8_t *in, size_t len, struct amf_value *v, size_t max,
                            size_t *n);

/* A log phrase for an amf_decode error code (static string). */
const char *rtmp_session_amf_err_str(int rc);

/*
 * Refuses the publish: onStatus(level "error", CODE, DESC) on message stream
 * MSID (the default stream when 0). Returns ERR, or the send error (-ENOMEM).
 * The caller returns that and the connection is closed.
 */
int rtmp_session_publish_error(struct rtmp_session *s, uint32_t msid, const char *code,
                               const char *desc, int err);

/* -- rtmp_media.c: FLV audio/video, aggregates and metadata (E.4, 7.1.6) --- */

/*
 * Message handlers for rtmp_session.c's dispatcher. DATA/LEN (and M->data)
 * are borrowed for the call. Media before publish is ignored. Each returns 0
 * or a negative errno (logged) when the connection must be closed.
 */
int rtmp_media_on_data(struct rtmp_session *s, const struct rtmp_msg *m, const uint8_t *data,
                       size_t len);
int rtmp_media_on_audio(struct rtmp_session *s, uint32_t ts, const uint8_t *data, size_t len);
int rtmp_media_on_video(struct rtmp_session *s, uint32_t ts, const uint8_t *data, size_t len);
int rtmp_media_on_aggregate(struct rtmp_session *s, const struct rtmp_msg *m);

#endif
