/*
 * Thumbnails: a table of streams (one mutex: it is touched once per keyframe
 * and once per thumbnail request, never per frame) and one worker thread.
 *
 *   HTTP thumb_get ──▶ wanted_until = now + WANT_INTERVALS x interval
 *   RTMP thumb_keyframe (wanted, due) ──▶ copy ──▶ job ──▶ worker:
 *        H.264 decode (avcC as extradata) ──▶ swscale 480 px ──▶ mjpeg ──▶ jpeg
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavutil/imgutils.h>
#include <libswscale/swscale.h>

#include "../metrics/metrics.h"
#include "thumb.h"

#define MOD "thumb"
#define WANT_INTERVALS 3 /* a request keeps thumbnails coming this many intervals */

struct entry {
    char name[MX_NAME_MAX];
    bool used, live;
    struct buf *avcc;       /* codec config */
    struct buf *jpeg;       /* latest thumbnail */
    struct buf *job;        /* keyframe waiting for the worker */
    struct buf *job_avcc;
    int64_t wanted_until_ms;
    int64_t queued_ms;      /* when the last keyframe was handed over */
    bool has_queued;
};

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    pthread_t thread;
    bool running, stopping;
    atomic_int interval_ms; /* thumbnails.interval; changed by a reload */
    struct entry e[THUMB_STREAMS_MAX];
} T = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

/* The entry for NAME (lock held); CREATE takes a free one. */
static struct entry *find(const char *name, bool create)
{
    struct entry *free_e = NULL;

    for (int i = 0; i < THUMB_STREAMS_MAX; i++) {
        struct entry *e = &T.e[i];

        if (e->used && strcmp(e->name, name) == 0)
            return e;
        if (!free_e && (!e->used || (!e->live && !e->jpeg && !e->job)))
            free_e = e;
    }
    if (!create || !free_e || strlen(name) >= sizeof(free_e->name))
        return NULL;
    buf_unref(free_e->avcc);
    memset(free_e, 0, sizeof(*free_e));
    free_e->used = true;
    snprintf(free_e->name, sizeof(free_e->name), "%s", name);
    return free_e;
}

/* ---- the work ---------------------------------------------------------------- */

static AVFrame *decode(const struct buf *avcc, const struct buf *frame)
{
    const AVCodec *codec = avcodec_find_decoder(AV_CODEC_ID_H264);
    AVCodecContext *ctx = NULL;
    AVPacket *pkt = NULL;
    AVFrame *f = NULL;
    int rc;

    if (!codec || !(ctx = avcodec_alloc_context3(codec)) || !(pkt = av_packet_alloc()) ||
        !(f = av_frame_alloc()))
        goto fail;
    ctx->extradata = av_mallocz(avcc->len + AV_INPUT_BUFFER_PADDING_SIZE);
    if (!ctx->extradata)
        goto fail;
    memcpy(ctx->extradata, avcc->data, avcc->len);
    ctx->extradata_size = (int)avcc->len;
    ctx->thread_count = 1; /* modest: one core at most, and only briefly */
    if (avcodec_open2(ctx, codec, NULL) < 0)
        goto fail;
    if (av_new_packet(pkt, (int)frame->len) < 0)
        goto fail;
    memcpy(pkt->data, frame->data, frame->len);
    pkt->flags |= AV_PKT_FLAG_KEY;
    if (avcodec_send_packet(ctx, pkt) < 0 || avcodec_send_packet(ctx, NULL) < 0)
        goto fail;
    rc = avcodec_receive_frame(ctx, f);
    if (rc < 0)
        goto fail;
    av_packet_free(&pkt);
    avcodec_free_context(&ctx);
    return f;
fail:
    av_frame_free(&f);
    av_packet_free(&pkt);
    avcodec_free_context(&ctx);
    return NULL;
}

static AVFrame *scale(const AVFrame *in)
{
    int w = THUMB_WIDTH, h;
    struct SwsContext *sws = NULL;
    AVFrame *out = av_frame_alloc();

    if (!out || in->width <= 0 || in->height <= 0)
        goto fail;
    if (in->width < w)
        w = in->width & ~1;
    h = (int)((int64_t)in->height * w / in->width) & ~1;
    if (h < 2)
        h = 2;
    out->format = AV_PIX_FMT_YUVJ420P;
    out->width = w;
    out->height = h;
    if (av_frame_get_buffer(out, 0) < 0)
        goto fail;
    sws = sws_getContext(in->width, in->height, in->format, w, h, AV_PIX_FMT_YUVJ420P,
                         SWS_BILINEAR, NULL, NULL, NULL);
    if (!sws)
        goto fail;
    sws_scale(sws, (const uint8_t *const *)in->data, in->linesize, 0, in->height, out->data,
              out->linesize);
    sws_freeContext(sws);
    return out;
fail:
    av_frame_free(&out);
    return NULL;
}

static struct buf *encode_jpeg(const AVFrame *img)
{
    const AVCodec *codec = avcodec_find_encoder(AV_CODEC_ID_MJPEG);
    AVCodecContext *ctx = NULL;
    AVPacket *pkt = NULL;
    struct buf *b = NULL;

    if (!codec || !(ctx = avcodec_alloc_context3(codec)) || !(pkt = av_packet_alloc()))
        goto out;
    ctx->width = img->width;
    ctx->height = img->height;
    ctx->pix_fmt = AV_PIX_FMT_YUVJ420P;
    ctx->time_base = (AVRational){1, 25};
    ctx->flags |= AV_CODEC_FLAG_QSCALE;
    ctx->global_quality = FF_QP2LAMBDA * 4;
    if (avcodec_open2(ctx, codec, NULL) < 0)
        goto out;
    ((AVFrame *)img)->quality = ctx->global_quality;
    ((AVFrame *)img)->pts = 0;
    if (avcodec_send_frame(ctx, img) < 0 || avcodec_receive_packet(ctx, pkt) < 0)
        goto out;
    b = buf_new_copy(pkt->data, (size_t)pkt->size);
out:
    av_packet_free(&pkt);
    avcodec_free_context(&ctx);
    return b;
}

/* Keyframe to JPEG. Returns a new buffer or NULL. */
static struct buf *make_thumb(const struct buf *avcc, const struct buf *frame)
{
    AVFrame *pic = decode(avcc, frame), *small = NULL;
    struct buf *jpeg = NULL;

    if (pic)
        small = scale(pic);
    if (small)
        jpeg = encode_jpeg(small);
    av_frame_free(&small);
    av_frame_free(&pic);
    return jpeg;
}

static void *worker(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&T.lock);
    while (!T.stopping) {
        struct entry *e = NULL;
        struct buf *job, *avcc, *jpeg;
        char name[MX_NAME_MAX];

        for (int i = 0; i < THUMB_STREAMS_MAX && !e; i++)
            if (T.e[i].used && T.e[i].job)
                e = &T.e[i];
        if (!e) {
            pthread_cond_wait(&T.cond, &T.lock);
            continue;
        }
        job = e->job;
        avcc = e->job_avcc;
        e->job = e->job_avcc = NULL;
        snprintf(name, sizeof(name), "%s", e->name);
        pthread_mutex_unlock(&T.lock);

        jpeg = make_thumb(avcc, job);
        buf_unref(job);
        buf_unref(avcc);
        if (jpeg) {
            mx_count(MX_THUMB_ENCODED, 1);
            log_debug(MOD, "stream %s: thumbnail of %zu bytes", name, jpeg->len);
        } else {
            mx_count(MX_THUMB_FAILED, 1);
            log_warn(MOD, "stream %s: could not decode a keyframe for the thumbnail", name);
        }

        pthread_mutex_lock(&T.lock);
        e = find(name, false);
        if (e && jpeg) {
            buf_unref(e->jpeg);
            e->jpeg = jpeg;
        } else {
            buf_unref(jpeg);
        }
    }
    pthread_mutex_unlock(&T.lock);
    return NULL;
}

/* ---- the API ------------------------------------------------------------------- */

int thumb_start(int interval_ms)
{
    int rc;

    thumb_set_interval(interval_ms);
    T.stopping = false;
    rc = pthread_create(&T.thread, NULL, worker, NULL);
    if (rc != 0)
        return -rc;
    T.running = true;
    return 0;
}

void thumb_stop(void)
{
    if (!T.running)
        return;
    pthread_mutex_lock(&T.lock);
    T.stopping = true;
    pthread_cond_signal(&T.cond);
    pthread_mutex_unlock(&T.lock);
    pthread_join(T.thread, NULL);
    T.running = false;
    for (int i = 0; i < THUMB_STREAMS_MAX; i++) {
        struct entry *e = &T.e[i];

        buf_unref(e->avcc);
        buf_unref(e->jpeg);
        buf_unref(e->job);
        buf_unref(e->job_avcc);
        memset(e, 0, sizeof(*e));
    }
}

void thumb_set_interval(int interval_ms)
{
    atomic_store(&T.interval_ms, interval_ms > 0 ? interval_ms : 10000);
}

int thumb_interval_s(void)
{
    return T.running ? (atomic_load(&T.interval_ms) + 999) / 1000 : 0;
}

void thumb_config(const char *name, const uint8_t *avcc, size_t len)
{
    struct buf *b;
    struct entry *e;

    if (!T.running || !(b = buf_new_copy(avcc, len)))
        return;
    pthread_mutex_lock(&T.lock);
    e = find(name, true);
    if (e) {
        buf_unref(e->avcc);
        e->avcc = b;
        b = NULL;
        e->live = true;
    }
    pthread_mutex_unlock(&T.lock);
    buf_unref(b);
}

void thumb_keyframe(const char *name, const uint8_t *data, size_t len, int64_t now_ms)
{
    struct entry *e;
    bool due;

    if (!T.running)
        return;
    pthread_mutex_lock(&T.lock);
    e = find(name, false);
    due = e && e->avcc && !e->job && e->wanted_until_ms > now_ms &&
          (!e->has_queued || now_ms - e->queued_ms >= atomic_load(&T.interval_ms));
    if (due) {
        /* the copy is the only work done here; decoding is the worker's */
        e->job = buf_new_copy(data, len);
        if (e->job) {
            e->job_avcc = buf_ref(e->avcc);
            e->queued_ms = now_ms;
            e->has_queued = true;
            pthread_cond_signal(&T.cond);
        }
    }
    pthread_mutex_unlock(&T.lock);
}

void thumb_end(const char *name)
{
    struct entry *e;

    if (!T.running)
        return;
    pthread_mutex_lock(&T.lock);
    e = find(name, false);
    if (e)
        e->live = false;
    pthread_mutex_unlock(&T.lock);
}

bool thumb_want(const char *name, int64_t now_ms)
{
    struct entry *e;
    bool ready = false;

    if (!T.running)
        return false;
    pthread_mutex_lock(&T.lock);
    e = find(name, false);
    if (e) {
        e->wanted_until_ms = now_ms + (int64_t)WANT_INTERVALS * atomic_load(&T.interval_ms);
        ready = e->jpeg != NULL;
    }
    pthread_mutex_unlock(&T.lock);
    return ready;
}

enum thumb_status thumb_get(const char *name, int64_t now_ms, struct buf **out)
{
    enum thumb_status st = THUMB_NONE;
    struct entry *e;

    *out = NULL;
    if (!T.running)
        return THUMB_NONE;
    mx_count(MX_THUMB_REQUESTS, 1);
    pthread_mutex_lock(&T.lock);
    e = find(name, false);
    if (e) {
        e->wanted_until_ms = now_ms + (int64_t)WANT_INTERVALS * atomic_load(&T.interval_ms);
        if (e->jpeg) {
            *out = buf_ref(e->jpeg);
            st = THUMB_READY;
        } else if (e->live) {
            st = THUMB_PENDING;
        }
    }
    pthread_mutex_unlock(&T.lock);
    return st;
}
