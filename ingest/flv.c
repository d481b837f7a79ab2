/*
 * FLV tag bodies as carried in RTMP audio (8) and video (9) messages (FLV spec
 * v10.1 annex E.4.2, E.4.3), plus the Enhanced RTMP video header, and the
 * 32-bit timestamp unwrapper.
 *
 * VIDEODATA, legacy:
 *
 *   byte 0: FrameType (4) | CodecID (4)
 *   if CodecID == 7 (AVC) and FrameType != 5:
 *     byte 1:    AVCPacketType (0 seq header, 1 NALUs, 2 end of sequence)
 *     byte 2..4: CompositionTime, signed 24 bit, big endian (ms)
 *
 * VIDEODATA, Enhanced RTMP (ExVideoTagHeader):
 *
 *   byte 0: IsExHeader (1) = 1 | FrameType (3) | PacketType (4)
 *   byte 1..4: FourCC ('hvc1', 'av01', 'vp09', 'avc1')
 *   if PacketType == 1 (CodedFrames) and FourCC is 'avc1' or 'hvc1':
 *     byte 5..7: CompositionTime, SI24
 *   PacketType 3 (CodedFramesX) is CodedFrames with an implicit CTS of 0.
 *   Multitrack (6) and ModEx (7) packets put more before the FourCC: they are
 *   reported with fourcc 0 and the body after byte 0, for the caller to refuse.
 *
 * AUDIODATA:
 *
 *   byte 0: SoundFormat (4) | SoundRate (2) | SoundSize (1) | SoundType (1)
 *   if SoundFormat == 10 (AAC): byte 1: AACPacketType (0 seq header, 1 raw)
 */
#include <errno.h>
#include <string.h>

#include "rtmp_internal.h"

#define FOURCC(a, b, c, d) ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (d))

enum {
    EX_SEQUENCE_START = 0,
    EX_CODED_FRAMES = 1,
    EX_MULTITRACK = 6,
    EX_MODEX = 7,
    FRAME_COMMAND = 5,
};

static int32_t si24(const uint8_t *p)
{
    uint32_t u = (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];

    /* Sign-extend without shifting into the sign bit. */
    return (u & 0x800000u) ? (int32_t)u - 0x1000000 : (int32_t)u;
}

static int parse_ex_video(const uint8_t *in, size_t len, struct flv_video *out)
{
    size_t hl = 5;

    out->enhanced = true;
    out->codec_id = 0;
    out->frame_type = (in[0] >> 4) & 0x07;
    out->avc_packet_type = in[0] & 0x0f;
    if (out->avc_packet_type == EX_MULTITRACK || out->avc_packet_type == EX_MODEX) {
        out->fourcc = 0;
        out->data = in + 1;
        out->len = len - 1;
        return 0;
    }
    if (len < 5)
        return -EINVAL;
    out->fourcc = (uint32_t)in[1] << 24 | (uint32_t)in[2] << 16 | (uint32_t)in[3] << 8 | in[4];
    if (out->avc_packet_type == EX_CODED_FRAMES &&
        (out->fourcc == FOURCC('a', 'v', 'c', '1') || out->fourcc == FOURCC('h', 'v', 'c', '1'))) {
        if (len < 8)
            return -EINVAL;
        out->cts_ms = si24(in + 5);
        hl = 8;
    }
    out->data = in + hl;
    out->len = len - hl;
    return 0;
}

int flv_parse_video(const uint8_t *in, size_t len, struct flv_video *out)
{
    memset(out, 0, sizeof(*out));
    out->avc_packet_type = -1;
    if (!in || len < 1)
        return -EINVAL;
    if (in[0] & 0x80)
        return parse_ex_video(in, len, out);

    out->frame_type = in[0] >> 4;
    out->codec_id = in[0] & 0x0f;
    if (out->codec_id != FLV_CODEC_H264 || out->frame_type == FRAME_COMMAND) {
        out->data = in + 1;
        out->len = len - 1;
        return 0;
    }
    if (len < 5)
        return -EINVAL;
    out->avc_packet_type = in[1];
    out->cts_ms = si24(in + 2);
    out->data = in + 5;
    out->len = len - 5;
    return 0;
}

int flv_parse_audio(const uint8_t *in, size_t len, struct flv_audio *out)
{
    size_t hl = 1;

    memset(out, 0, sizeof(*out));
    out->aac_packet_type = -1;
    if (!in || len < 1)
        return -EINVAL;
    out->sound_format = in[0] >> 4;
    out->sound_rate = (in[0] >> 2) & 0x03;
    out->sound_size = (in[0] >> 1) & 0x01;
    out->sound_type = in[0] & 0x01;
    if (out->sound_format == FLV_SOUND_AAC) {
        if (len < 2)
            return -EINVAL;
        out->aac_packet_type = in[1];
        hl = 2;
    }
    out->data = in + hl;
    out->len = len - hl;
    return 0;
}

/*
 * Timestamp unwrapping. RTMP timestamps are 32-bit and wrap after ~49.7
 * days; FFmpeg's FLV writer masks the top bit, so its streams wrap at 2^31
 * (~24.8 days). Compared with the last raw value, a backward jump of about
 * 2^32 or 2^31 is a wrap and adds that much to the base; a forward jump of
 * that size right after a wrap is a late packet from before it. Anything
 * else (jitter, B-frame reordering, an encoder restart) passes through as is.
 */
#define WRAP31 (INT64_C(1) << 31)
#define WRAP32 (INT64_C(1) << 32)
#define WRAP_SLACK (INT64_C(1) << 30)

int64_t flv_ts_unwrap(struct flv_ts_unwrap *u, uint32_t ts)
{
    int64_t d, out;

    if (!u->started) {
        u->started = true;
        u->base = 0;
        u->last = ts;
        u->last_out = ts;
        return ts;
    }
    d = (int64_t)ts - (int64_t)u->last;
    if (d <= -(WRAP32 - WRAP_SLACK)) {
        u->base += WRAP32;
    } else if (d <= -(WRAP31 - WRAP_SLACK) && d >= -(WRAP31 + WRAP_SLACK)) {
        u->base += WRAP31;
    } else if (d >= WRAP32 - WRAP_SLACK && u->base >= WRAP32) {
        return (int64_t)ts + u->base - WRAP32; /* late: keep LAST as it is */
    } else if (d >= WRAP31 - WRAP_SLACK && d <= WRAP31 + WRAP_SLACK && u->base >= WRAP31) {
        return (int64_t)ts + u->base - WRAP31;
    }
    out = (int64_t)ts + u->base;
    u->last = ts;
    u->last_out = out;
    return out;
}
