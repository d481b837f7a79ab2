/*
 * The media half of an RTMP publisher session: FLV audio and video tag bodies,
 * aggregate messages and onMetaData, handed to the segmenter. The protocol
 * half (handshake, chunk stream, commands) is rtmp_session.c; both share the
 * private part of session_internal.h.
 *
 * Only H.264 (legacy codec id 7 or enhanced RTMP 'avc1') and AAC are accepted;
 * any other codec refuses the publish with NetStream.Publish.Failed.
 *
 * FLV tag bodies: FLV specification 10.1, E.4.3 (audio) and E.4.3.1 (video);
 * aggregate messages: RTMP specification 1.0, 7.1.6.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "../metrics/metrics.h"
#include "../thumb/thumb.h"
#include "rtmp_internal.h"
#include "session_internal.h"

static uint32_t get_be24(const uint8_t *p)
{
    return (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
}

static const char *video_codec_name(const struct flv_video *v, char *buf, size_t n)
{
    static const char *const legacy[] = {
        [2] = "Sorenson H.263",      [3] = "Screen video",       [4] = "On2 VP6",
        [5] = "On2 VP6 with alpha",  [6] = "Screen video v2",    [7] = "H.264",
        [12] = "HEVC (codec id 12)", [13] = "AV1 (codec id 13)",
    };
    uint32_t f = v->fourcc;
    char cc[5];

    if (!v->enhanced) {
        if (v->codec_id >= 0 && (size_t)v->codec_id < ARRAY_SIZE(legacy) && legacy[v->codec_id])
            return legacy[v->codec_id];
        snprintf(buf, n, "codec id %d", v->codec_id);
        return buf;
    }
    for (int i = 0; i < 4; i++) {
        uint8_t c = (uint8_t)(f >> (24 - 8 * i));
        cc[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    cc[4] = 0;
    snprintf(buf, n, "%s (enhanced RTMP '%s')",
             !strcmp(cc, "hvc1")   ? "HEVC"
             : !strcmp(cc, "av01") ? "AV1"
             : !strcmp(cc, "vp09") ? "VP9"
             : !strcmp(cc, "avc1") ? "H.264"
                                   : "unknown",
             cc);
    return buf;
}

static const char *audio_codec_name(int format, char *buf, size_t n)
{
    static const char *const names[] = {
        "Linear PCM",
        "ADPCM",
        "MP3",
        "Linear PCM LE",
        "Nellymoser 16 kHz",
        "Nellymoser 8 kHz",
        "Nellymoser",
        "G.711 A-law",
        "G.711 mu-law",
        "enhanced RTMP audio",
        "AAC",
        "Speex",
        "codec id 12",
        "codec id 13",
        "MP3 8 kHz",
        "device-specific sound",
    };

    if (format >= 0 && (size_t)format < ARRAY_SIZE(names))
        return names[format];
    snprintf(buf, n, "codec id %d", format);
    return buf;
}

static int unsupported_codec(struct rtmp_session *s, const char *kind, const char *codec)
{
    char desc[192];

    snprintf(desc, sizeof(desc), "unsupported %s codec %s: onair accepts H.264 and AAC", kind,
             codec);
    log_warn(s->label, "%s; closing", desc);
    mx_stream_error(s->mx, "%s", desc);
    return rtmp_session_publish_error(s, s->msid, "NetStream.Publish.Failed", desc, -ENOTSUP);
}

/* ---- data (metadata) ------------------------------------------------------ */

static bool is_map(const struct amf_value *v)
{
    return v->type == AMF_OBJECT || v->type == AMF_ECMA_ARRAY;
}

static void apply_metadata(struct rtmp_session *s, const struct amf_value *obj)
{
    struct seg_metadata md = {0};
    char l1[64];

    md.has_video = amf_get(obj, "videocodecid") != NULL;
    md.has_audio = amf_get(obj, "audiocodecid") != NULL;
    md.framerate = amf_num(amf_get(obj, "framerate"), 0);
    md.video_kbps = amf_num(amf_get(obj, "videodatarate"), 0);
    md.audio_kbps = amf_num(amf_get(obj, "audiodatarate"), 0);
    /* flvmux (streamable) repeats onMetaData with every update: log the first one. */
    log_msg(s->metadata_seen ? LOG_DEBUG : LOG_INFO, s->label,
            "metadata: %.0fx%.0f %.2f fps video %s %.0f kbps, audio %s %.0f kbps, "
            "encoder '%s'",
            amf_num(amf_get(obj, "width"), 0), amf_num(amf_get(obj, "height"), 0), md.framerate,
            md.has_video ? "yes" : "no", md.video_kbps, md.has_audio ? "yes" : "no", md.audio_kbps,
            rtmp_session_loggable(amf_str(amf_get(obj, "encoder")), l1, sizeof(l1)));
    s->metadata_seen = true;
    mx_stream_encoder(s->mx, rtmp_session_loggable(amf_str(amf_get(obj, "encoder")), l1, sizeof(l1)));
    seg_stream_metadata(s->stream, &md);
}

int rtmp_media_on_data(struct rtmp_session *s, const struct rtmp_msg *m, const uint8_t *data,
                       size_t len)
{
    struct amf_value v[3];
    size_t n = 0, i, first = 0;
    int rc;

    if (len == 0)
        return 0;
    memset(v, 0, sizeof(v));
    rc = rtmp_session_decode_amf(data, len, v, ARRAY_SIZE(v), &n);
    if (rc < 0) {
        log_warn(s->label, "AMF data message on csid %u: %s (%d); closing", m->csid,
                 rtmp_session_amf_err_str(rc), rc);
        goto out;
    }
    if (n > 0 && amf_str(&v[0]) && !strcmp(amf_str(&v[0]), "@setDataFrame"))
        first = 1;
    if (n >= first + 2 && amf_str(&v[first]) && !strcmp(amf_str(&v[first]), "onMetaData") &&
        is_map(&v[first + 1])) {
        if (s->stream)
            apply_metadata(s, &v[first + 1]);
        else
            log_debug(s->label, "metadata before publish ignored");
    } else {
        char l1[64];

        log_debug(s->label, "ignoring data message '%s'",
                  rtmp_session_loggable(n > 0 ? amf_str(&v[0]) : NULL, l1, sizeof(l1)));
    }
out:
    for (i = 0; i < n; i++)
        amf_value_reset(&v[i]);
    return rc;
}

/* ---- media ------------------------------------------------------------------ */

/* Statistics and thumbnails see every frame before the segmenter does. */
static void observe_frame(struct rtmp_session *s, const struct seg_frame *f)
{
    struct mx_frame mf = {
        .video = f->track == SEG_VIDEO,
        .keyframe = f->keyframe,
        .dts_ms = f->dts_ms,
        .bytes = f->len,
        .arrival_ms = time_mono_ms(),
    };

    mx_stream_frame(s->mx, &mf);
    if (mf.video && mf.keyframe)
        thumb_keyframe(s->name, f->data, f->len, mf.arrival_ms);
}

/* Hands F to the segmenter; an error closes the connection. */
static int feed_frame(struct rtmp_session *s, const struct seg_frame *f)
{
    int rc;

    observe_frame(s, f);
    rc = seg_stream_frame(s->stream, f);
    if (rc == -ECANCELED)
        log_warn(s->label, "a newer publisher took this stream over; closing");
    else if (rc < 0)
        log_warn(s->label, "segmenter refused %s frame: %s; closing",
                 f->track == SEG_VIDEO ? "a video" : "an audio", strerror(-rc));
    return rc;
}

int rtmp_media_on_video(struct rtmp_session *s, uint32_t ts, const uint8_t *data, size_t len)
{
    struct flv_video v;
    struct seg_frame f;
    char buf[96];
    int rc;

    if (len == 0)
        return 0;
    if (!s->stream) {
        log_debug(s->label, "video before publish ignored");
        return 0;
    }
    if (flv_parse_video(data, len, &v) < 0) {
        log_warn(s->label, "truncated video tag (%zu bytes); closing", len);
        return -EPROTO;
    }
    if (v.frame_type == 5)
        return 0; /* video info/command frame */
    if (v.enhanced ? v.fourcc != ((uint32_t)'a' << 24 | 'v' << 16 | 'c' << 8 | '1')
                   : v.codec_id != FLV_CODEC_H264)
        return unsupported_codec(s, "video", video_codec_name(&v, buf, sizeof(buf)));
    switch (v.avc_packet_type) {
    case 0:
        rc = seg_stream_video_config(s->stream, v.data, v.len);
        if (rc < 0)
            log_warn(s->label, "invalid AVC sequence header (%zu bytes); closing", v.len);
        else
            thumb_config(s->name, v.data, v.len);
        return rc;
    case 1:
    case 3: /* enhanced CodedFramesX: composition offset 0 */
        if (v.len == 0)
            return 0;
        f = (struct seg_frame){
            .track = SEG_VIDEO,
            .dts_ms = flv_ts_unwrap(&s->ts_video, ts),
            .cts_ms = v.cts_ms,
            .keyframe = v.frame_type == 1,
            .data = v.data,
            .len = v.len,
        };
        return feed_frame(s, &f);
    default:
        return 0; /* end of sequence, metadata */
    }
}

int rtmp_media_on_audio(struct rtmp_session *s, uint32_t ts, const uint8_t *data, size_t len)
{
    struct flv_audio a;
    struct seg_frame f;
    char buf[32];
    int rc;

    if (len == 0)
        return 0;
    if (!s->stream) {
        log_debug(s->label, "audio before publish ignored");
        return 0;
    }
    if (flv_parse_audio(data, len, &a) < 0) {
        log_warn(s->label, "truncated audio tag (%zu bytes); closing", len);
        return -EPROTO;
    }
    if (a.sound_format != FLV_SOUND_AAC)
        return unsupported_codec(s, "audio", audio_codec_name(a.sound_format, buf, sizeof(buf)));
    if (a.aac_packet_type == 0) {
        rc = seg_stream_audio_config(s->stream, a.data, a.len);
        if (rc < 0)
            log_warn(s->label, "invalid AAC AudioSpecificConfig (%zu bytes); closing", a.len);
        return rc;
    }
    if (a.aac_packet_type != 1 || a.len == 0)
        return 0;
    f = (struct seg_frame){
        .track = SEG_AUDIO,
        .dts_ms = flv_ts_unwrap(&s->ts_audio, ts),
        .keyframe = true,
        .data = a.data,
        .len = a.len,
    };
    return feed_frame(s, &f);
}

/*
 * Aggregate message (spec 7.1.6): a run of FLV tags, each
 *   type(1) size(3) timestamp(3) timestamp_ext(1) stream_id(3) body(size) back_pointer(4).
 * The first tag's timestamp corresponds to the message's; the others keep their offset.
 */
int rtmp_media_on_aggregate(struct rtmp_session *s, const struct rtmp_msg *m)
{
    const uint8_t *p = m->data;
    size_t left = m->len;
    uint32_t first_ts = 0;
    bool first = true;
    int rc = 0;

    while (left > 0 && rc == 0) {
        uint32_t size, ts, sub_ts;
        struct rtmp_msg sub;

        if (left < 11 || (size = get_be24(p + 1)) > left - 11) {
            log_warn(s->label, "truncated aggregate message on csid %u; closing", m->csid);
            return -EPROTO;
        }
        ts = get_be24(p + 4) | (uint32_t)p[7] << 24;
        if (first)
            first_ts = ts;
        first = false;
        sub_ts = m->timestamp + (ts - first_ts);
        sub = *m;
        sub.type = p[0];
        sub.timestamp = sub_ts;
        sub.len = size;
        sub.data = p + 11;
        if (sub.type == RTMP_MSG_AUDIO)
            rc = rtmp_media_on_audio(s, sub_ts, sub.data, size);
        else if (sub.type == RTMP_MSG_VIDEO)
            rc = rtmp_media_on_video(s, sub_ts, sub.data, size);
        else if (sub.type == RTMP_MSG_DATA_AMF0)
            rc = rtmp_media_on_data(s, &sub, sub.data, size);
        p += 11 + size;
        left -= 11 + size;
        if (left < 4) /* tolerate a missing last back pointer */
            break;
        p += 4;
        left -= 4;
    }
    return rc;
}
