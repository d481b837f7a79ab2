/*
 * The segmenter: one libavformat mp4 muxer per stream writing CMAF into memory.
 *
 *   seg_frame ──► AVPacket ──► mp4 muxer ──► AVIOContext (mux_write) ──► out
 *                                 │ av_write_frame(NULL) + avio_flush
 *                                 ▼ = exactly one moof+mdat = one part
 *              part buffer ──► store ("part-<gen>-<msn>-<i>.m4s", LL-HLS only)
 *              segment = its part buffers ──► store ("seg-<gen>-<msn>.m4s")
 *              playlists re-rendered (publish.c) ──► store, then progress
 *
 * The header alone is the init segment. movflags frag_custom lets us decide
 * where fragments end; frag_discont, re-armed before every fragment, makes
 * each fragment's decode time (tfdt) its first packet's timestamp, so audio
 * and video keep their true offset and no guessed duration shifts the next
 * fragment.
 *
 * A video frame is held back until the next one arrives: its duration is then
 * exact, and a fragment is closed when the first frame of the next one
 * arrives, with that frame's DTS as its end.
 *
 * Segments are cut on a video keyframe once segment_ms has passed (audio-only
 * streams: on time); with LL-HLS, parts are cut before a frame that would make
 * the part longer than part_ms, and on every keyframe.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libavformat/avformat.h>
#include <libavutil/channel_layout.h>
#include <libavutil/opt.h>

#include "../metrics/metrics.h"
#include "../record/record.h"
#include "../store/store.h"
#include "segmenter.h"
#define ONAIR_SEGMENTER_STREAM
#include "segmenter_internal.h"

#define MUX_IO_BUFSIZE 65536
#define AAC_FRAME_SAMPLES 1024
#define AUDIO_RESYNC_MS 200       /* sample clock vs FLV clock drift that forces a resync */
#define WAIT_FOR_VIDEO_MS 4000    /* audio buffered while video is announced but absent */
#define ENDED_LINGER_MIN_MS 60000 /* ended streams stay readable at least this long */

static atomic_uint gen_counter;
/* Server start in Unix ms, written once in seg_global_init: generations (and so
 * every URI) differ across restarts too, so no cache can confuse two runs. */
static int64_t gen_epoch;

/* ---- FFmpeg log routing -------------------------------------------------- */

static void av_log_cb(void *avcl, int level, const char *fmt, va_list vl)
{
    char line[512];
    int print_prefix = 1;
    enum log_level ours;
    size_t n;

    if (level > av_log_get_level())
        return;
    ours = level <= AV_LOG_ERROR ? LOG_ERROR : level <= AV_LOG_WARNING ? LOG_WARN
           : level <= AV_LOG_INFO ? LOG_INFO : LOG_DEBUG;
    av_log_format_line2(avcl, level, fmt, vl, line, sizeof(line), &print_prefix);
    n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = 0;
    if (n)
        log_msg(ours, "ffmpeg", "%s", line);
}

void seg_global_init(void)
{
    gen_epoch = time_wall_ms();
    av_log_set_level(AV_LOG_WARNING);
    av_log_set_callback(av_log_cb);
}

bool seg_name_valid(const char *name)
{
    size_t n = 0;

    if (!name || !name[0] || name[0] == '.')
        return false;
    for (; name[n]; n++) {
        char c = name[n];

        if (n >= 64)
            return false;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.'))
            return false;
    }
    return true;
}

/* ---- muxer I/O ----------------------------------------------------------- */

static int mux_write(void *opaque, uint8_t *data, int size)
{
    struct seg_stream *s = opaque;

    if (s->discard_output)
        return size;
    return bytes_append(&s->out, data, (size_t)size) == 0 ? size : AVERROR(ENOMEM);
}

static void mux_free(struct seg_stream *s)
{
    if (!s->fmt)
        return;
    if (s->fmt->pb) {
        av_freep(&s->fmt->pb->buffer); /* not the pointer we allocated: avio may swap it */
        avio_context_free(&s->fmt->pb);
    }
    avformat_free_context(s->fmt);
    s->fmt = NULL;
}

static int add_video_stream(struct seg_stream *s)
{
    AVStream *st = avformat_new_stream(s->fmt, NULL);
    AVCodecParameters *par;

    if (!st)
        return -ENOMEM;
    par = st->codecpar;
    par->codec_type = AVMEDIA_TYPE_VIDEO;
    par->codec_id = AV_CODEC_ID_H264;
    par->width = s->avc.width;
    par->height = s->avc.height;
    par->extradata = av_mallocz(s->avcc_len + AV_INPUT_BUFFER_PADDING_SIZE);
    if (!par->extradata)
        return -ENOMEM;
    memcpy(par->extradata, s->avcc, s->avcc_len);
    par->extradata_size = (int)s->avcc_len;
    st->time_base = (AVRational){1, 90000};
    s->vidx = st->index;
    return 0;
}

static int add_audio_stream(struct seg_stream *s)
{
    AVStream *st = avformat_new_stream(s->fmt, NULL);
    AVCodecParameters *par;

    if (!st)
        return -ENOMEM;
    par = st->codecpar;
    par->codec_type = AVMEDIA_TYPE_AUDIO;
    par->codec_id = AV_CODEC_ID_AAC;
    par->sample_rate = s->aac.sample_rate;
    av_channel_layout_default(&par->ch_layout, s->aac.channels ? s->aac.channels : 2);
    par->frame_size = AAC_FRAME_SAMPLES;
    par->extradata = av_mallocz(s->asc_len + AV_INPUT_BUFFER_PADDING_SIZE);
    if (!par->extradata)
        return -ENOMEM;
    memcpy(par->extradata, s->asc, s->asc_len);
    par->extradata_size = (int)s->asc_len;
    st->time_base = (AVRational){1, s->aac.sample_rate};
    s->aidx = st->index;
    return 0;
}

/* Takes what the muxer wrote as a new buffer and empties the collector. */
static struct buf *take_output(struct seg_stream *s)
{
    struct buf *b = buf_new_copy(s->out.data, s->out.len);

    s->out.len = 0;
    return b;
}

/*
 * The init segment as the muxer wrote it, with our own ftyp in front of its
 * moov. movflags cmaf makes the muxer claim the 'cmfc' brand, but CMAF wants
 * one track per file and colr/pasp boxes we cannot promise (audio and video
 * share one file here), so we claim only what the file is: ISO BMFF with
 * fragments (iso6) readable by MP4 players (mp41).
 */
static struct buf *init_with_ftyp(const struct bytes *out)
{
    static const uint8_t ftyp[] = {
        0, 0, 0, 24, 'f', 't', 'y', 'p', 'i', 's', 'o', '6', 0, 0, 0, 0,
        'i', 's', 'o', '6', 'm', 'p', '4', '1',
    };
    size_t skip = 0;
    struct buf *b;

    if (out->len >= 8 && memcmp(out->data + 4, "ftyp", 4) == 0) {
        skip = (size_t)out->data[0] << 24 | (size_t)out->data[1] << 16 |
               (size_t)out->data[2] << 8 | out->data[3];
        if (skip < 8 || skip > out->len)
            skip = 0;
    }
    if (!skip)
        return buf_new_copy(out->data, out->len); /* unexpected: leave it alone */
    b = buf_new(sizeof(ftyp) + out->len - skip);
    if (!b)
        return NULL;
    memcpy(b->data, ftyp, sizeof(ftyp));
    memcpy(b->data + sizeof(ftyp), out->data + skip, out->len - skip);
    return b;
}

/* Opens the muxer with the tracks whose configuration we have; publishes the init segment. */
/* What the stream carries, for the statistics. */
static void publish_media_info(struct seg_stream *s, bool with_video, bool with_audio)
{
    char codecs[72];

    snprintf(codecs, sizeof(codecs), "%s%s%s", with_video ? s->avc.codec : "",
             with_video && with_audio ? "," : "", with_audio ? s->aac.codec : "");
    mx_segmenter_media(s->name, codecs, with_video ? s->avc.width : 0,
                       with_video ? s->avc.height : 0);
}

static int mux_start(struct seg_stream *s, bool with_video, bool with_audio)
{
    AVDictionary *opts = NULL;
    uint8_t *iobuf = NULL;
    struct buf *init;
    int rc;

    s->vidx = s->aidx = -1;
    rc = avformat_alloc_output_context2(&s->fmt, NULL, "mp4", NULL);
    if (rc < 0 || !s->fmt)
        return -ENOMEM;
    if ((with_video && (rc = add_video_stream(s)) < 0) ||
        (with_audio && (rc = add_audio_stream(s)) < 0))
        goto fail;
    iobuf = av_malloc(MUX_IO_BUFSIZE);
    if (!iobuf) {
        rc = -ENOMEM;
        goto fail;
    }
    s->fmt->pb = avio_alloc_context(iobuf, MUX_IO_BUFSIZE, 1, s, NULL, mux_write, NULL);
    if (!s->fmt->pb) {
        av_free(iobuf);
        rc = -ENOMEM;
        goto fail;
    }
    s->fmt->flags |= AVFMT_FLAG_CUSTOM_IO;
    av_dict_set(&opts, "movflags", "frag_custom+empty_moov+default_base_moof+cmaf+frag_discont",
                0);
    rc = avformat_write_header(s->fmt, &opts);
    av_dict_free(&opts);
    if (rc < 0) {
        log_error(s->logname, "mp4 muxer refused the stream: %s", av_err2str(rc));
        rc = -EINVAL;
        goto fail;
    }
    avio_flush(s->fmt->pb);
    init = init_with_ftyp(&s->out);
    s->out.len = 0;
    if (!init) {
        rc = -ENOMEM;
        goto fail;
    }
    snprintf(s->init_uri, sizeof(s->init_uri), "init-%s.mp4", s->gen);
    rec_init(s->rec, init, s->init_uri); /* the recording hook: a reference, no copy */
    rc = store_put(s->ss, s->init_uri, STORE_INIT, init);
    if (rc < 0)
        goto fail;
    {
        /* For public listings (GET /streams.json): listed once a playlist exists too. */
        struct store_stream_info info = {.live_since_ms = time_wall_ms()};

        if (with_video) {
            info.width = s->avc.width;
            info.height = s->avc.height;
        }
        snprintf(info.codecs, sizeof(info.codecs), "%s%s%s", with_video ? s->avc.codec : "",
                 with_video && with_audio ? "," : "", with_audio ? s->aac.codec : "");
        store_set_info(s->ss, &info);
    }
    s->started = true;
    publish_media_info(s, with_video, with_audio);
    if (with_video)
        log_info(s->logname, "started: video %s %dx%d%s%s", s->avc.codec, s->avc.width,
                 s->avc.height, with_audio ? ", audio " : " (no audio)",
                 with_audio ? s->aac.codec : "");
    else
        log_info(s->logname, "started: audio %s %d Hz (no video)", s->aac.codec,
                 s->aac.sample_rate);
    return 0;
fail:
    mux_free(s);
    s->vidx = s->aidx = -1;
    return rc;
}

/* ---- parts and segments ------------------------------------------------- */

/* Drops segments that left the window and its grace tail (as long again). */
static void evict(struct seg_stream *s)
{
    int keep = s->p.window_segments * 2;
    int drop = s->ndone > keep ? s->ndone - keep : 0;

    for (int i = 0; i < drop; i++) {
        struct done_segment *d = &s->done[i];

        store_remove(s->ss, d->hs.uri);
        if (s->p.part_ms > 0)
            for (int p = 0; p < d->hs.nparts; p++)
                store_remove(s->ss, d->parts[p].uri);
        free(d->parts);
    }
    if (drop) {
        memmove(s->done, s->done + drop, (size_t)(s->ndone - drop) * sizeof(*s->done));
        s->ndone -= drop;
    }
}

static int64_t open_seg_bytes(const struct seg_stream *s)
{
    int64_t n = 0;

    for (int i = 0; i < s->nparts; i++)
        n += (int64_t)s->parts[i].b->len;
    return n;
}

/*
 * Ends the open part at END_MS: flushes the muxer's fragment (one moof+mdat)
 * and keeps it as the next part of the open segment; with LL-HLS also
 * publishes it and, if RENDER, the playlists that list it, then the progress
 * that wakes blocked readers (objects first, so a woken reader finds them).
 */
static int finish_part(struct seg_stream *s, int64_t end_ms, bool render)
{
    struct seg_part *sp;
    struct buf *b;
    int rc;

    if (!s->part_open)
        return 0;
    av_write_frame(s->fmt, NULL);
    avio_flush(s->fmt->pb);
    if (s->out.len == 0)
        return 0; /* nothing written since the last cut: the part stays open */
    s->part_open = false;
    if (s->nparts == s->cap_parts) {
        int cap = s->cap_parts ? s->cap_parts * 2 : 16;
        struct seg_part *p = realloc(s->parts, (size_t)cap * sizeof(*p));

        if (!p)
            return -ENOMEM;
        s->parts = p;
        s->cap_parts = cap;
    }
    b = take_output(s);
    if (!b)
        return -ENOMEM;
    /* Every fragment starts at its own first timestamp (see the top). */
    av_opt_set(s->fmt->priv_data, "movflags", "+frag_discont", 0);
    sp = &s->parts[s->nparts];
    memset(sp, 0, sizeof(*sp));
    sp->b = b;
    sp->hp.duration = (double)(end_ms > s->part_start_ms ? end_ms - s->part_start_ms : 1) / 1000.0;
    sp->hp.independent = s->part_independent;
    snprintf(sp->hp.uri, sizeof(sp->hp.uri), "part-%s-%" PRIu64 "-%d.m4s", s->gen, s->next_msn,
             s->nparts);
    s->nparts++;
    if (s->p.part_ms <= 0)
        return 0;
    rc = store_put(s->ss, sp->hp.uri, STORE_PART, buf_ref(b));
    if (rc == 0)
        mx_segmenter_part(s->name, time_mono_ms() - s->cut_ref_ms);
    if (rc == 0 && render) {
        if (!s->mv_published) {
            /* The first playlist a player sees: the peak is an estimate until
             * the first segment is measured. */
            s->peak_bps = (long)((double)open_seg_bytes(s) * 8 /
                                 ((double)(end_ms - s->seg_start_ms + 1) / 1000.0));
            if (s->frame_rate <= 0 && s->md.framerate > 0)
                s->frame_rate = s->md.framerate;
            rc = seg_publish_multivariant(s);
        }
        if (rc == 0)
            rc = seg_publish_playlists(s, false);
        if (rc == 0)
            store_progress(s->ss, STORE_KEY(s->next_msn, s->nparts - 1));
    }
    return rc;
}

static int grow_done(struct seg_stream *s)
{
    struct done_segment *p;
    int cap;

    if (s->ndone < s->cap_done)
        return 0;
    cap = s->cap_done ? s->cap_done * 2 : 16;
    p = realloc(s->done, (size_t)cap * sizeof(*p));
    if (!p)
        return -ENOMEM;
    s->done = p;
    s->cap_done = cap;
    return 0;
}

/* Keeps the statistics a segment brings: frame rate, target, warnings, peak bitrate. */
static void segment_stats(struct seg_stream *s, double duration, size_t bytes)
{
    long bps = (long)((double)bytes * 8 / duration);

    if (s->frame_rate <= 0 && s->seg_video_frames > 1)
        s->frame_rate = s->md.framerate > 0 ? s->md.framerate : s->seg_video_frames / duration;
    if ((long)lround(duration) > s->target_duration)
        s->target_duration = (int)lround(duration);
    if (!s->warned_gop && s->vidx >= 0 && duration > s->p.segment_ms / 1000.0 * 1.5 + 0.25) {
        s->warned_gop = true;
        log_warn(s->logname,
                 "keyframe interval is about %.1f s, longer than the %.1f s segment target: "
                 "set the encoder's keyframe interval to %.0f s (OBS: Output > Keyframe "
                 "Interval; ffmpeg: -g FRAMES or -force_key_frames)",
                 duration, s->p.segment_ms / 1000.0, ceil(s->p.segment_ms / 1000.0));
    }
    /* RFC 8216 4.3.4.2: BANDWIDTH is the peak segment bit rate, every segment
     * counted; until the first one is measured the peak is an estimate. */
    if (!s->peak_measured || bps > s->peak_bps)
        s->peak_bps = bps;
    s->peak_measured = true;
}

/* The recording hook: the segment's buffers by reference (never blocks). */
static void record_segment(struct seg_stream *s, const struct hls_segment *hs,
                           struct buf *const *bufs, int n)
{
    struct rec_segment_info info = {
        .duration = hs->duration,
        .pdt_ms = hs->pdt_ms,
        .discontinuity = hs->discontinuity,
        .live_uri = hs->uri,
    };

    rec_segment(s->rec, bufs, n, &info);
}

/*
 * Ends the open segment at END_MS: its last part, then the segment (the list
 * of its part buffers), then the playlists that list it and the progress.
 */
static int finish_segment(struct seg_stream *s, int64_t end_ms, bool ended)
{
    struct buf **bufs = NULL;
    struct done_segment *d;
    double duration;
    int rc, n;

    if (!s->seg_open)
        return 0;
    rc = finish_part(s, end_ms, false);
    s->seg_open = false;
    s->part_open = false;
    if (rc < 0 || s->nparts == 0)
        goto reset;
    if ((rc = grow_done(s)) < 0)
        goto reset;
    duration = (double)(end_ms - s->seg_start_ms) / 1000.0;
    if (duration <= 0)
        duration = 0.001;
    d = &s->done[s->ndone];
    memset(d, 0, sizeof(*d));
    n = s->nparts;
    d->parts = calloc((size_t)n, sizeof(*d->parts));
    bufs = calloc((size_t)n, sizeof(*bufs));
    if (!d->parts || !bufs) {
        free(d->parts);
        rc = -ENOMEM;
        goto reset;
    }
    for (int i = 0; i < n; i++) {
        d->parts[i] = s->parts[i].hp;
        d->bytes += s->parts[i].b->len;
        bufs[i] = buf_ref(s->parts[i].b);
    }
    d->hs.msn = s->next_msn;
    d->hs.duration = duration;
    d->hs.pdt_ms = s->seg_pdt_ms;
    d->hs.parts = d->parts;
    d->hs.nparts = s->nparts;
    snprintf(d->hs.map_uri, sizeof(d->hs.map_uri), "%s", s->init_uri);
    snprintf(d->hs.uri, sizeof(d->hs.uri), "seg-%s-%" PRIu64 ".m4s", s->gen, s->next_msn);
    record_segment(s, &d->hs, bufs, n);
    rc = store_put_list(s->ss, d->hs.uri, STORE_SEGMENT, bufs, n);
    if (rc < 0) {
        free(d->parts);
        goto reset;
    }
    mx_segmenter_segment(s->name, d->hs.msn, time_mono_ms() - s->cut_ref_ms);
    s->ndone++;
    s->next_msn++;
    segment_stats(s, duration, d->bytes);
    rc = seg_publish_playlists(s, ended);
    if (rc == 0 && (!s->mv_published || s->peak_bps != s->published_bps ||
                    s->frame_rate != s->published_fps))
        rc = seg_publish_multivariant(s);
    /* Its last part first (readers blocked on it), then the segment's end. */
    if (s->p.part_ms > 0)
        store_progress(s->ss, STORE_KEY(d->hs.msn, d->hs.nparts - 1));
    store_progress(s->ss, STORE_KEY(d->hs.msn, STORE_PART_END));
    log_debug(s->logname, "segment %" PRIu64 ": %.3f s, %d parts, %zu bytes", d->hs.msn,
              duration, d->hs.nparts, d->bytes);
    evict(s);
reset:
    free(bufs);
    for (int i = 0; i < s->nparts; i++)
        buf_unref(s->parts[i].b);
    s->nparts = 0;
    return rc;
}

/* ---- public API ---------------------------------------------------------- */

int seg_stream_open(struct store *st, const char *name, const struct seg_params *p,
                    struct seg_stream **out)
{
    struct seg_stream *s;
    int rc;

    if (!seg_name_valid(name))
        return -EINVAL;
    s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    rc = store_claim(st, name, &s->ss);
    if (rc < 0) {
        free(s);
        return rc;
    }
    snprintf(s->name, sizeof(s->name), "%s", name);
    snprintf(s->logname, sizeof(s->logname), "seg live/%s", name);
    s->p = *p;
    if (s->p.segment_ms < 100)
        s->p.segment_ms = 100;
    if (s->p.window_segments < 2)
        s->p.window_segments = 2;
    if (s->p.part_ms < 0)
        s->p.part_ms = 0;
    s->target_duration = (int)((s->p.segment_ms + 999) / 1000);
    s->vidx = s->aidx = -1;
    s->rec = rec_start(p->recorder, name, s->target_duration);
    snprintf(s->gen, sizeof(s->gen), "%011" PRIx64 "%x", (uint64_t)gen_epoch & UINT64_C(0xfffffffffff),
             atomic_fetch_add(&gen_counter, 1) + 1);
    *out = s;
    return 0;
}

void seg_stream_metadata(struct seg_stream *s, const struct seg_metadata *md)
{
    s->md = *md;
}

static int set_config(struct seg_stream *s, enum seg_track t, const uint8_t *data, size_t len)
{
    uint8_t **slot = t == SEG_VIDEO ? &s->avcc : &s->asc;
    size_t *slot_len = t == SEG_VIDEO ? &s->avcc_len : &s->asc_len;
    struct avc_info avc;
    struct aac_info aac;
    uint8_t *copy;

    if (t == SEG_VIDEO ? avc_parse_config(data, len, &avc) : aac_parse_config(data, len, &aac)) {
        log_warn(s->logname, "cannot parse the %s",
                 t == SEG_VIDEO ? "AVC decoder configuration (SPS)" : "AAC AudioSpecificConfig");
        return -EINVAL;
    }
    if (*slot && *slot_len == len && memcmp(*slot, data, len) == 0)
        return 0; /* repeated, as many encoders do */
    if (s->started) {
        if (!s->warned_late_cfg[t])
            log_warn(s->logname, "%s configuration changed mid-stream; keeping the first one",
                     t == SEG_VIDEO ? "video" : "audio");
        s->warned_late_cfg[t] = true;
        return 0;
    }
    copy = malloc(len);
    if (!copy)
        return -ENOMEM;
    memcpy(copy, data, len);
    free(*slot);
    *slot = copy;
    *slot_len = len;
    if (t == SEG_VIDEO) {
        s->avc = avc;
        /* Browsers decode Baseline, Main and High (8-bit 4:2:0) only. */
        if (avc.profile_idc != 66 && avc.profile_idc != 77 && avc.profile_idc != 88 &&
            avc.profile_idc != 100)
            log_warn(s->logname,
                     "H.264 profile %d (%s) will not play in most browsers: encode 8-bit "
                     "4:2:0 (High, Main or Baseline; ffmpeg: -pix_fmt yuv420p)",
                     avc.profile_idc, avc.codec);
    } else
        s->aac = aac;
    return 0;
}

int seg_stream_video_config(struct seg_stream *s, const uint8_t *avcc, size_t len)
{
    return set_config(s, SEG_VIDEO, avcc, len);
}

int seg_stream_audio_config(struct seg_stream *s, const uint8_t *asc, size_t len)
{
    return set_config(s, SEG_AUDIO, asc, len);
}

/* Decides whether the muxer can start with FRAME; returns 1 started, 0 not yet, <0 error. */
static int maybe_start(struct seg_stream *s, const struct seg_frame *f)
{
    bool have_v = s->avcc != NULL, have_a = s->asc != NULL;

    if (f->track == SEG_VIDEO) {
        if (!f->keyframe)
            return 0; /* a segment must begin with a keyframe */
        return mux_start(s, true, have_a) == 0 ? 1 : -EINVAL;
    }
    if (have_v || s->md.has_video) {
        /* Video is announced: wait for its first keyframe, for a while. */
        if (!s->waiting_audio) {
            s->waiting_audio = true;
            s->wait_start_ms = f->dts_ms;
        }
        if (f->dts_ms - s->wait_start_ms < WAIT_FOR_VIDEO_MS)
            return 0;
        log_warn(s->logname, "video announced but no keyframe after %d ms: audio only",
                 WAIT_FOR_VIDEO_MS);
    }
    return mux_start(s, false, true) == 0 ? 1 : -EINVAL;
}

/* Writes F to the muxer; DUR_MS is the video frame's duration (ignored for audio). */
static int write_packet(struct seg_stream *s, const struct seg_frame *f, int idx, int64_t dur_ms)
{
    AVStream *st = s->fmt->streams[idx];
    AVRational ms = {1, 1000};
    AVPacket *pkt = s->pkt;
    int64_t dts, pts, dur;
    int t = f->track;
    int rc;

    if (f->track == SEG_VIDEO) {
        dts = av_rescale_q(f->dts_ms, ms, st->time_base);
        pts = av_rescale_q(f->dts_ms + (f->cts_ms > 0 ? f->cts_ms : 0), ms, st->time_base);
        dur = av_rescale_q(dur_ms > 0 ? dur_ms : 1, ms, st->time_base);
    } else {
        int64_t expect_ms = s->audio_next * 1000 / s->aac.sample_rate;

        if (!s->audio_clock || llabs(f->dts_ms - expect_ms) > AUDIO_RESYNC_MS) {
            if (s->audio_clock)
                log_debug(s->logname, "audio clock resync: %" PRId64 " ms off",
                          f->dts_ms - expect_ms);
            s->audio_next = av_rescale(f->dts_ms, s->aac.sample_rate, 1000);
            s->audio_clock = true;
        }
        dts = pts = av_rescale_q(s->audio_next, (AVRational){1, s->aac.sample_rate},
                                 st->time_base);
        dur = av_rescale_q(AAC_FRAME_SAMPLES, (AVRational){1, s->aac.sample_rate},
                           st->time_base);
        s->audio_next += AAC_FRAME_SAMPLES;
    }
    /* The muxer rejects decode times that do not increase. */
    if (s->have_last[t] && dts <= s->last_dts_tb[t])
        dts = s->last_dts_tb[t] + 1;
    if (pts < dts)
        pts = dts;
    s->last_dts_tb[t] = dts;
    s->have_last[t] = true;

    pkt->data = (uint8_t *)f->data;
    pkt->size = (int)f->len;
    pkt->stream_index = idx;
    pkt->dts = dts;
    pkt->pts = pts;
    pkt->duration = dur;
    pkt->flags = f->keyframe ? AV_PKT_FLAG_KEY : 0;
    rc = av_write_frame(s->fmt, pkt);
    if (rc < 0) {
        log_warn(s->logname, "muxer dropped a %s frame at %" PRId64 " ms: %s",
                 t == SEG_VIDEO ? "video" : "audio", f->dts_ms, av_err2str(rc));
        return 0; /* one bad frame does not end the stream */
    }
    {
        int64_t end = f->dts_ms + av_rescale_q(dur, st->time_base, ms);

        if (end > s->end_ms)
            s->end_ms = end;
    }
    return 0;
}

/* Writes the held video frame, now that the next one (at NEXT_DTS_MS) gives its duration. */
static int write_held(struct seg_stream *s, int64_t next_dts_ms)
{
    int64_t dur = next_dts_ms - s->held_f.dts_ms;
    int rc;

    if (!s->held)
        return 0;
    if (dur <= 0)
        dur = s->video_delta_ms > 0 ? s->video_delta_ms : 1;
    else
        s->video_delta_ms = dur;
    rc = write_packet(s, &s->held_f, s->vidx, dur);
    s->held = false;
    return rc;
}

static int hold(struct seg_stream *s, const struct seg_frame *f)
{
    s->held_data.len = 0;
    if (bytes_append(&s->held_data, f->data, f->len) < 0)
        return -ENOMEM;
    s->held_f = *f;
    s->held_f.data = s->held_data.data;
    s->held = true;
    return 0;
}

/*
 * Cuts before F if it starts a segment or (LL-HLS) a part: closes the open
 * part/segment at F's timestamp and opens new ones at it.
 */
static int cut_before(struct seg_stream *s, const struct seg_frame *f)
{
    bool cut_point = s->vidx >= 0 ? (f->track == SEG_VIDEO && f->keyframe) : true;
    bool part_point = s->vidx >= 0 ? f->track == SEG_VIDEO : true;
    int64_t t = f->dts_ms;
    int rc;

    if (cut_point && s->seg_open && t - s->seg_start_ms >= s->p.segment_ms) {
        rc = finish_segment(s, t, false);
        if (rc < 0)
            return rc;
    }
    if (!s->seg_open) {
        if (!cut_point)
            return 1; /* not before a keyframe: dropped */
        if (s->have_next_p) { /* a live reload's timing, from this segment on */
            s->p.segment_ms = s->next_p.segment_ms;
            s->p.window_segments = s->next_p.window_segments;
            s->have_next_p = false;
        }
        s->seg_open = true;
        s->seg_start_ms = t;
        s->seg_pdt_ms = time_wall_ms();
        s->seg_video_frames = 0;
    } else if (s->p.part_ms > 0 && part_point && s->part_open) {
        /*
         * Parts end on the frame closest to the target (within half a frame),
         * and never past the advertised PART-TARGET, which has room for that
         * rounding (seg_part_target_ms).
         */
        int64_t frame_ms = f->track == SEG_VIDEO ? (s->video_delta_ms > 0 ? s->video_delta_ms : 1)
                                                 : AAC_FRAME_SAMPLES * 1000 / s->aac.sample_rate;
        int64_t len = t - s->part_start_ms;

        if (len >= s->p.part_ms - frame_ms / 2 ||
            len + frame_ms > seg_part_target_ms(s->p.part_ms)) {
            rc = finish_part(s, t, true);
            if (rc < 0)
                return rc;
        }
    }
    if (!s->part_open) {
        s->part_open = true;
        s->part_start_ms = t;
        s->part_independent = cut_point || (f->track == SEG_VIDEO && f->keyframe);
    }
    return 0;
}

int seg_stream_frame(struct seg_stream *s, const struct seg_frame *f)
{
    int t = f->track, idx, rc;

    if (!f->len || f->len > INT32_MAX)
        return 0;
    s->cut_ref_ms = s->last_in_ms; /* a cut now ends with the previous frame */
    s->last_in_ms = time_mono_ms();
    if (!(t == SEG_VIDEO ? s->avcc : s->asc)) {
        if (!s->warned_nocfg[t])
            log_warn(s->logname, "%s frame before its sequence header: dropped",
                     t == SEG_VIDEO ? "video" : "audio");
        s->warned_nocfg[t] = true;
        return 0;
    }
    if (!s->pkt && !(s->pkt = av_packet_alloc()))
        return -ENOMEM;
    if (!s->started) {
        rc = maybe_start(s, f);
        if (rc <= 0)
            return rc;
    }
    idx = t == SEG_VIDEO ? s->vidx : s->aidx;
    if (idx < 0)
        return 0; /* track not in this muxer (its config came too late) */

    if (t == SEG_VIDEO) {
        /* The held frame ends where this one starts; it belongs before any cut. */
        rc = write_held(s, f->dts_ms);
        if (rc < 0)
            return rc;
    } else if (s->vidx >= 0) {
        /* Audio follows the video's cuts. */
        if (s->seg_open)
            rc = write_packet(s, f, idx, 0);
        else
            rc = 0;
        s->last_dts_ms[t] = f->dts_ms;
        return rc;
    }
    rc = cut_before(s, f);
    if (rc != 0)
        return rc < 0 ? rc : 0;
    if (t == SEG_VIDEO)
        s->seg_video_frames++;
    s->last_dts_ms[t] = f->dts_ms;
    return t == SEG_VIDEO ? hold(s, f) : write_packet(s, f, idx, 0);
}

void seg_stream_set_params(struct seg_stream *s, const struct seg_params *p)
{
    s->next_p = *p;
    if (s->next_p.segment_ms < 100)
        s->next_p.segment_ms = 100;
    if (s->next_p.window_segments < 2)
        s->next_p.window_segments = 2;
    s->have_next_p = true;
}

void seg_stream_close(struct seg_stream *s)
{
    int64_t linger;

    if (!s)
        return;
    if (s->started) {
        s->cut_ref_ms = s->last_in_ms;
        if (s->held)
            write_held(s, s->held_f.dts_ms + (s->video_delta_ms > 0 ? s->video_delta_ms : 33));
        finish_segment(s, s->end_ms, true);
        if (s->ndone) {
            seg_publish_playlists(s, true);
            /* Exact now: the peak of every segment, no estimate. */
            s->md.video_kbps = s->md.audio_kbps = 0;
            seg_publish_multivariant(s);
        }
        s->discard_output = true; /* the trailer (mfra) is not part of any segment */
        av_write_trailer(s->fmt);
        log_info(s->logname, "ended after %" PRIu64 " segments", s->next_msn);
    }
    rec_end(s->rec);
    mux_free(s);
    av_packet_free(&s->pkt);
    linger = (int64_t)s->p.segment_ms * s->p.window_segments * 2;
    store_release(s->ss, linger > ENDED_LINGER_MIN_MS ? linger : ENDED_LINGER_MIN_MS);
    for (int i = 0; i < s->ndone; i++)
        free(s->done[i].parts);
    for (int i = 0; i < s->nparts; i++)
        buf_unref(s->parts[i].b);
    free(s->parts);
    bytes_reset(&s->out);
    bytes_reset(&s->held_data);
    free(s->done);
    free(s->avcc);
    free(s->asc);
    free(s);
}
