/*
 * Fuzz target for the segmenter end to end: a publish driven by a small frame
 * script decoded from the input, through libavformat's mp4 muxer into a real
 * store. Frame sizes, key flags, timestamps (jumps, rewinds, equal ones),
 * composition offsets, codec configuration records (known-good or raw bytes),
 * audio/video interleaving, metadata, live reloads and reconnects are all the
 * fuzzer's to choose.
 *
 * Input: one header byte (timing), then ops. An op byte's low 3 bits pick it:
 *   0 VCFG   bit7: a known avcC (bit6 picks which); else LEN byte + raw bytes
 *   1 ACFG   bit7: a known AudioSpecificConfig (bits 5-6); else LEN + raw
 *   2 VIDEO  bit3 key; bit4: DELTA is int32 else int16 (ms); CTS int8 (x4 ms);
 *            SIZE byte; bit5: SIZE raw bytes follow as the frame, else a
 *            synthetic AVCC NAL unit of SIZE*8+1 bytes
 *   3 AUDIO  bit3: DELTA int16 follows, else 21 ms; SIZE byte; bit5: raw bytes
 *   4 META   FLAGS byte (has video/audio), FPS byte, KBPS byte
 *   5 PARAMS  a live reload's timing from one byte (as the header)
 *   6 RECONNECT  close and open the stream again (a new publish; with the
 *            header's bit 7 within the reconnect grace: the playlist continues)
 *   7 BURST  COUNT byte: COUNT x (video frame every 33 ms with a keyframe every
 *            (bits 3-5)*8+1 frames, plus the audio frames due before it, 1024
 *            samples apart at the rate of the last known ASC set, 44.1 kHz if none)
 * Only the segmenter's public open/config/frame/close calls are used
 * (stream_open/stream_close below are the one place that knows how a stream
 * is opened).
 *
 * Invariants, checked on the playlist after every op: it starts with
 * #EXTM3U; EXT-X-MEDIA-SEQUENCE never goes back and EXT-X-TARGETDURATION
 * never changes within a playlist's life (across reconnects in the grace);
 * every rounded EXTINF is at most EXT-X-TARGETDURATION (RFC 8216 4.4.3.1);
 * every EXT-X-MAP, segment and part URI it lists can be fetched from the
 * store. A close without grace, and the end, leave EXT-X-ENDLIST.
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/common.h"
#include "../../segmenter/segmenter.h"
#include "../../store/store.h"
#include "fuzz_common.h"

#define NAME "fz"
#define MAX_FRAMES 4000 /* per input: keeps one run well under a second */

/* x264 High 1280x720 and Baseline 320x240, each with a dummy PPS. */
static const uint8_t avcc_high[] = {
    0x01, 0x64, 0x00, 0x1f, 0xff, 0xe1, 0x00, 0x1a, 0x67, 0x64, 0x00, 0x1f, 0xac, 0xd9,
    0x40, 0x50, 0x05, 0xbb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00, 0x03,
    0x03, 0xc0, 0xf1, 0x83, 0x19, 0x60, 0x01, 0x00, 0x02, 0x68, 0xce};
static const uint8_t avcc_base[] = {
    0x01, 0x42, 0xc0, 0x0d, 0xff, 0xe1, 0x00, 0x18, 0x67, 0x42, 0xc0, 0x0d, 0xd9, 0x01,
    0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0xc0,
    0xf1, 0x42, 0xa4, 0x80, 0x01, 0x00, 0x02, 0x68, 0xce};
static const uint8_t asc_known[4][4] = {
    {0x12, 0x10}, {0x11, 0x88}, {0x2b, 0x92, 0x08, 0x00}, {0x11, 0x90}};
static const size_t asc_len[4] = {2, 2, 4, 2};
static const int asc_rate[4] = {44100, 48000, 44100, 48000};

struct script {
    const uint8_t *p, *end;
};

static bool take(struct script *sc, void *out, size_t n)
{
    if ((size_t)(sc->end - sc->p) < n)
        return false;
    memcpy(out, sc->p, n);
    sc->p += n;
    return true;
}

static int u8(struct script *sc, int dflt)
{
    uint8_t v;

    return take(sc, &v, 1) ? v : dflt;
}

static void params_from(uint8_t b, struct seg_params *p)
{
    static const int seg_ms[4] = {300, 1000, 2000, 6000};
    static const int part_ms[4] = {0, 100, 200, 333};

    p->segment_ms = seg_ms[b & 3];
    p->part_ms = part_ms[(b >> 2) & 3];
    p->window_segments = 2 + ((b >> 4) & 7);
    p->reconnect_grace_ms = b & 0x80 ? 30000 : 0;
}

struct run {
    struct store *st;
    struct seg_hub *hub;
    struct seg_stream *s;
    struct seg_params p;
    int64_t vdts, adts;
    int64_t last_seq;
    long last_target;
    int frames;
    int arate;   /* sample rate of the last known AudioSpecificConfig set */
    int64_t aacc; /* BURST's audio clock remainder, in 1/arate ms */
    uint8_t frame[4096];
};

/* The only code that knows how the segmenter's streams are opened and closed. */
static int stream_open(struct run *r)
{
    if (r->p.reconnect_grace_ms <= 0) { /* a new playlist */
        r->last_seq = -1;
        r->last_target = -1;
    }
    return seg_stream_open(r->hub, NAME, &r->p, &r->s);
}

static void stream_close(struct run *r)
{
    seg_stream_close(r->s);
    r->s = NULL;
}

static bool in_store(struct run *r, const char *uri, size_t len)
{
    char name[STORE_NAME_MAX];
    struct store_obj *o;

    FUZZ_CHECK(len > 0 && len < sizeof(name));
    memcpy(name, uri, len);
    name[len] = '\0';
    o = store_get_obj(r->st, NAME, name);
    store_obj_unref(o);
    return o != NULL;
}

/* Checks the media playlist now in the store; returns whether it has EXT-X-ENDLIST. */
static bool check_playlist(struct run *r)
{
    enum store_kind kind;
    struct buf *b = store_get(r->st, NAME, "media.m3u8", &kind);
    const char *p, *end;
    long target = -1;
    bool ended = false;

    if (!b)
        return false;
    p = (const char *)b->data;
    end = p + b->len;
    FUZZ_CHECK(b->len >= 8 && memcmp(p, "#EXTM3U\n", 8) == 0);
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p)), *q;
        size_t len;

        if (!nl)
            nl = end;
        len = (size_t)(nl - p);
        if (len > 22 && memcmp(p, "#EXT-X-TARGETDURATION:", 22) == 0) {
            target = strtol(p + 22, NULL, 10);
            FUZZ_CHECK(target > 0);
            FUZZ_CHECK(r->last_target < 0 || target == r->last_target);
            r->last_target = target;
        } else if (len > 22 && memcmp(p, "#EXT-X-MEDIA-SEQUENCE:", 22) == 0) {
            long long seq = strtoll(p + 22, NULL, 10);

            FUZZ_CHECK(seq >= r->last_seq);
            r->last_seq = seq;
        } else if (len > 8 && memcmp(p, "#EXTINF:", 8) == 0) {
            double d = strtod(p + 8, NULL);

            FUZZ_CHECK(target > 0 && d >= 0);
            FUZZ_CHECK(lround(d) <= target);
        } else if (len == 14 && memcmp(p, "#EXT-X-ENDLIST", 14) == 0) {
            ended = true;
        } else if ((len > 12 && memcmp(p, "#EXT-X-PART:", 12) == 0) ||
                   (len > 11 && memcmp(p, "#EXT-X-MAP:", 11) == 0)) {
            const char *u = memmem(p, len, "URI=\"", 5);

            FUZZ_CHECK(u != NULL);
            u += 5;
            q = memchr(u, '"', (size_t)(nl - u));
            FUZZ_CHECK(q != NULL);
            FUZZ_CHECK(in_store(r, u, (size_t)(q - u)));
        } else if (len > 0 && p[0] != '#') {
            FUZZ_CHECK(in_store(r, p, len));
        }
        p = nl + 1;
    }
    buf_unref(b);
    return ended;
}

/* After a close: a publish that left a playlist ended it (EXT-X-ENDLIST). */
static void check_ended(struct run *r)
{
    struct store_obj *o = store_get_obj(r->st, NAME, "media.m3u8");

    if (o)
        FUZZ_CHECK(check_playlist(r));
    store_obj_unref(o);
}

static int16_t i16(struct script *sc)
{
    uint8_t b[2] = {0, 0};

    take(sc, b, 2);
    return (int16_t)(b[0] | b[1] << 8);
}

static int32_t i32(struct script *sc)
{
    uint8_t b[4] = {0, 0, 0, 0};

    take(sc, b, 4);
    return (int32_t)((uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
                     (uint32_t)b[3] << 24);
}

/* A frame's bytes: SIZE raw bytes from the script, or a synthetic NAL unit / AAC frame. */
static size_t frame_bytes(struct run *r, struct script *sc, bool raw, bool video, bool key)
{
    size_t n = (size_t)u8(sc, 0);

    if (raw) {
        if ((size_t)(sc->end - sc->p) < n)
            n = (size_t)(sc->end - sc->p);
        take(sc, r->frame, n);
        return n;
    }
    if (!video) {
        memset(r->frame, 0x21, n + 1);
        return n + 1;
    }
    n = n * 8 + 1;
    r->frame[0] = (uint8_t)(n >> 24);
    r->frame[1] = (uint8_t)(n >> 16);
    r->frame[2] = (uint8_t)(n >> 8);
    r->frame[3] = (uint8_t)n;
    memset(r->frame + 4, 0x5a, n);
    r->frame[4] = key ? 0x65 : 0x41;
    return n + 4;
}

static int feed(struct run *r, enum seg_track t, int64_t dts, int32_t cts, bool key,
                size_t len)
{
    struct seg_frame f = {.track = t, .dts_ms = dts, .cts_ms = cts, .keyframe = key,
                          .data = r->frame, .len = len};
    int rc;

    r->frames++;
    rc = seg_stream_frame(r->s, &f);
    FUZZ_CHECK(rc <= 0);
    return rc;
}

static int burst(struct run *r, struct script *sc, uint8_t op)
{
    int count = u8(sc, 0), gop = ((op >> 3) & 7) * 8 + 1;

    for (int i = 0; i < count && r->frames < MAX_FRAMES; i++) {
        bool key = i % gop == 0;
        size_t n = 200 + (size_t)(i % 7) * 50;
        int rc;

        if (r->adts < r->vdts - 1000) /* audio far behind (a video jump): catch up */
            r->adts = r->vdts - 1000;
        while (r->adts <= r->vdts && r->frames < MAX_FRAMES) {
            memset(r->frame, 0x21, 64);
            if ((rc = feed(r, SEG_AUDIO, r->adts, 0, true, 64)) < 0)
                return rc;
            /* 1024 samples at the configured rate (their clock, not FLV's 1 ms) */
            r->aacc += 1024 * 1000;
            r->adts += r->aacc / r->arate;
            r->aacc %= r->arate;
        }
        memset(r->frame, 0x5a, n);
        r->frame[0] = r->frame[1] = 0;
        r->frame[2] = (uint8_t)((n - 4) >> 8);
        r->frame[3] = (uint8_t)(n - 4);
        r->frame[4] = key ? 0x65 : 0x41;
        if ((rc = feed(r, SEG_VIDEO, r->vdts, 0, key, n)) < 0)
            return rc;
        r->vdts += 33;
    }
    return 0;
}

static int step(struct run *r, struct script *sc)
{
    uint8_t op = (uint8_t)u8(sc, 0);
    int len;

    switch (op & 7) {
    case 0:
        if (op & 0x80) {
            if (op & 0x40)
                seg_stream_video_config(r->s, avcc_base, sizeof(avcc_base));
            else
                seg_stream_video_config(r->s, avcc_high, sizeof(avcc_high));
            return 0;
        }
        len = u8(sc, 0);
        if (!take(sc, r->frame, (size_t)len))
            return 0;
        seg_stream_video_config(r->s, r->frame, (size_t)len);
        return 0;
    case 1:
        if (op & 0x80) {
            int k = (op >> 5) & 3;

            seg_stream_audio_config(r->s, asc_known[k], asc_len[k]);
            r->arate = asc_rate[k];
            return 0;
        }
        len = u8(sc, 0);
        if (!take(sc, r->frame, (size_t)len))
            return 0;
        seg_stream_audio_config(r->s, r->frame, (size_t)len);
        return 0;
    case 2: {
        bool key = op & 0x08;
        int64_t delta = op & 0x10 ? i32(sc) : i16(sc);
        int32_t cts = (int8_t)u8(sc, 0) * 4;
        size_t n;

        r->vdts += delta;
        n = frame_bytes(r, sc, op & 0x20, true, key);
        return feed(r, SEG_VIDEO, r->vdts, cts, key, n);
    }
    case 3: {
        size_t n;

        r->adts += op & 0x08 ? i16(sc) : 21;
        n = frame_bytes(r, sc, op & 0x20, false, true);
        return feed(r, SEG_AUDIO, r->adts, 0, true, n);
    }
    case 4: {
        int fl = u8(sc, 0), fps = u8(sc, 0), kbps = u8(sc, 0);
        struct seg_metadata md = {.has_video = fl & 1, .has_audio = fl & 2,
                                  .framerate = fl & 4 ? fps / 4.0 : fps,
                                  .video_kbps = kbps * 40.0, .audio_kbps = kbps};

        seg_stream_metadata(r->s, &md);
        return 0;
    }
    case 5: {
        struct seg_params p;

        params_from((uint8_t)u8(sc, 0), &p);
        p.part_ms = r->p.part_ms; /* a reload keeps the part length */
        r->p.reconnect_grace_ms = p.reconnect_grace_ms; /* ... and applies its grace at once */
        seg_stream_set_params(r->s, &p);
        return 0;
    }
    case 6:
        stream_close(r);
        if (r->p.reconnect_grace_ms <= 0)
            check_ended(r);
        else
            FUZZ_CHECK(!check_playlist(r)); /* in its grace: live, no ENDLIST */
        return stream_open(r) == 0 ? 0 : -EIO;
    default:
        return burst(r, sc, op);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool inited;
    struct script sc = {data, data + size};
    struct run *r;

    if (!inited) {
        seg_global_init();
        log_set_level(getenv("FUZZ_VERBOSE") ? LOG_DEBUG : LOG_ERROR);
        inited = true;
    }
    if (size < 1)
        return 0;
    r = calloc(1, sizeof(*r));
    FUZZ_CHECK(r && (r->st = store_new()));
    FUZZ_CHECK(seg_hub_new(r->st, &r->hub) == 0);
    params_from(*sc.p++, &r->p);
    r->last_seq = r->last_target = -1;
    r->vdts = r->adts = 0;
    r->arate = 44100;
    FUZZ_CHECK(stream_open(r) == 0);
    while (sc.p < sc.end && r->frames < MAX_FRAMES) {
        int rc = step(r, &sc);

        if (rc < 0) /* the publisher would be disconnected here */
            break;
        check_playlist(r);
    }
    stream_close(r);
    seg_hub_free(r->hub); /* ends a playlist in its grace */
    check_ended(r);
    store_free(r->st);
    free(r);
    return 0;
}
