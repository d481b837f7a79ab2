/*
 * The segmenter: one libavformat mp4 muxer per stream writing CMAF into memory.
 *
 *   seg_frame ──► AVPacket ──► mp4 muxer ──► AVIOContext (write_packet) ──► out
 *                                 │ av_write_frame(NULL) + avio_flush
 *                                 ▼ = exactly one moof+mdat
 *                     segment buffer ──► store ("seg-<gen>-<msn>.m4s")
 *                                        playlist re-rendered ──► store
 *
 * The header alone is the init segment. movflags frag_custom lets us decide
 * where fragments end (on keyframes); frag_discont keeps each fragment's
 * decode time (tfdt) equal to its packets' timestamps, so audio and video
 * keep their start offset.
 *
 * Segments are cut on a video keyframe once segment_ms has passed (audio-only
 * streams: on time). Each fragment is today one whole segment; LL-HLS parts
 * will be fragments cut more often, a segment being the concatenation of its
 * parts, which is why finishing a fragment and finishing a segment are separate
 * steps below.
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

#include "../store/store.h"
#include "segmenter.h"
#include "segmenter_internal.h"

#define MUX_IO_BUFSIZE 65536
#define AAC_FRAME_SAMPLES 1024
#define AUDIO_RESYNC_MS 200       /* sample clock vs FLV clock drift that forces a resync */
#define WAIT_FOR_VIDEO_MS 4000    /* audio buffered while video is announced but absent */
#define ENDED_LINGER_MIN_MS 60000 /* ended streams stay readable at least this long */

struct done_segment {
    struct hls_segment hs;
    size_t bytes;
};

struct seg_stream {
    struct store_stream *ss;
    char name[80];
    char logname[96];
    struct seg_params p;
    char gen[32];      /* unique per publish in this server's lifetime (and across restarts) */
    char init_uri[HLS_URI_MAX];

    /* codec configuration */
    uint8_t *avcc, *asc;
    size_t avcc_len, asc_len;
    struct avc_info avc;
    struct aac_info aac;
    struct seg_metadata md;

    /* muxer */
    AVFormatContext *fmt;
    AVPacket *pkt;
    int vidx, aidx; /* stream index in fmt, -1 when absent */
    bool started;
    bool discard_output;
    struct bytes out; /* what the muxer wrote since the last take */

    /* timing */
    bool have_last[2];
    int64_t last_dts_ms[2];
    int64_t last_pts_tb[2];
    int64_t video_delta_ms; /* last inter-frame distance, for the last sample's duration */
    bool audio_clock;
    int64_t audio_next; /* next AAC pts in samples */
    bool waiting_audio;
    int64_t wait_start_ms;
    int64_t end_ms; /* end of the latest sample written */

    /* the segment being filled */
    bool seg_open;
    int64_t seg_start_ms;
    int64_t seg_pdt_ms;
    int seg_video_frames;
    uint64_t next_msn;

    /* completed segments, oldest first: the window plus a grace tail */
    struct done_segment *done;
    int ndone, cap_done;
    int target_duration;
    long peak_bps;
    long published_bps;
    double frame_rate;
    bool warned_gop, warned_late_cfg[2], warned_nocfg[2];
};

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

/* Opens the muxer with the tracks whose configuration we have; publishes the init segment. */
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
    init = take_output(s);
    if (!init) {
        rc = -ENOMEM;
        goto fail;
    }
    snprintf(s->init_uri, sizeof(s->init_uri), "init-%s.mp4", s->gen);
    rc = store_put(s->ss, s->init_uri, STORE_INIT, init);
    if (rc < 0)
        goto fail;
    s->started = true;
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

/* ---- playlists ----------------------------------------------------------- */

static int publish_media_playlist(struct seg_stream *s, bool ended)
{
    struct hls_segment *segs;
    struct hls_media_playlist pl = {0};
    struct bytes text = {0};
    struct buf *b;
    int first = s->ndone > s->p.window_segments ? s->ndone - s->p.window_segments : 0;
    int rc;

    segs = calloc((size_t)(s->ndone - first) + 1, sizeof(*segs));
    if (!segs)
        return -ENOMEM;
    for (int i = first; i < s->ndone; i++)
        segs[i - first] = s->done[i].hs;
    pl.version = 7;
    pl.target_duration = s->target_duration;
    pl.ended = ended;
    pl.segs = segs;
    pl.nsegs = s->ndone - first;
    rc = hls_render_media(&pl, &text);
    free(segs);
    if (rc < 0)
        goto out;
    b = buf_new_copy(text.data, text.len);
    rc = b ? store_put(s->ss, "media.m3u8", STORE_PLAYLIST, b) : -ENOMEM;
out:
    bytes_reset(&text);
    return rc;
}

static int publish_multivariant(struct seg_stream *s)
{
    struct hls_variant v = {0};
    struct bytes text = {0};
    char codecs[80];
    struct buf *b;
    int rc;

    snprintf(codecs, sizeof(codecs), "%s%s%s", s->vidx >= 0 ? s->avc.codec : "",
             s->vidx >= 0 && s->aidx >= 0 ? "," : "", s->aidx >= 0 ? s->aac.codec : "");
    v.bandwidth = s->peak_bps;
    v.codecs = codecs;
    if (s->vidx >= 0) {
        v.width = s->avc.width;
        v.height = s->avc.height;
        v.frame_rate = s->frame_rate;
    }
    v.uri = "media.m3u8";
    rc = hls_render_multivariant(&v, &text);
    if (rc == 0) {
        b = buf_new_copy(text.data, text.len);
        rc = b ? store_put(s->ss, "index.m3u8", STORE_PLAYLIST, b) : -ENOMEM;
    }
    bytes_reset(&text);
    if (rc == 0)
        s->published_bps = s->peak_bps;
    return rc;
}

/* Drops segments that left the window and its grace tail (as long again). */
static void evict(struct seg_stream *s)
{
    int keep = s->p.window_segments * 2;
    int drop = s->ndone > keep ? s->ndone - keep : 0;

    for (int i = 0; i < drop; i++)
        store_remove(s->ss, s->done[i].hs.uri);
    if (drop) {
        memmove(s->done, s->done + drop, (size_t)(s->ndone - drop) * sizeof(*s->done));
        s->ndone -= drop;
    }
}

/* ---- segments ------------------------------------------------------------ */

/*
 * Ends the open segment at END_MS: flushes the muxer's fragment, publishes the
 * segment, then the playlists that list it (in that order, so a reader never
 * sees a playlist naming an object that is not there yet).
 */
static int finish_segment(struct seg_stream *s, int64_t end_ms)
{
    struct done_segment *d;
    struct buf *b;
    double duration;
    int rc;

    if (!s->seg_open)
        return 0;
    s->seg_open = false;
    av_write_frame(s->fmt, NULL);
    avio_flush(s->fmt->pb);
    if (s->out.len == 0)
        return 0;
    duration = (double)(end_ms - s->seg_start_ms) / 1000.0;
    if (duration <= 0)
        duration = 0.001;
    if (s->ndone == s->cap_done) {
        int cap = s->cap_done ? s->cap_done * 2 : 16;
        struct done_segment *p = realloc(s->done, (size_t)cap * sizeof(*p));

        if (!p)
            return -ENOMEM;
        s->done = p;
        s->cap_done = cap;
    }
    d = &s->done[s->ndone];
    memset(d, 0, sizeof(*d));
    d->hs.msn = s->next_msn;
    d->hs.duration = duration;
    d->hs.pdt_ms = s->seg_pdt_ms;
    snprintf(d->hs.map_uri, sizeof(d->hs.map_uri), "%s", s->init_uri);
    snprintf(d->hs.uri, sizeof(d->hs.uri), "seg-%s-%" PRIu64 ".m4s", s->gen, s->next_msn);
    d->bytes = s->out.len;
    b = take_output(s);
    if (!b)
        return -ENOMEM;
    rc = store_put(s->ss, d->hs.uri, STORE_SEGMENT, b);
    if (rc < 0)
        return rc;
    s->ndone++;
    s->next_msn++;

    if (s->frame_rate <= 0 && s->seg_video_frames > 1)
        s->frame_rate = s->md.framerate > 0 ? s->md.framerate : s->seg_video_frames / duration;
    if ((long)lround(duration) > s->target_duration) {
        s->target_duration = (int)lround(duration);
    }
    if (!s->warned_gop && s->vidx >= 0 && duration > s->p.segment_ms / 1000.0 * 1.5 + 0.25) {
        s->warned_gop = true;
        log_warn(s->logname,
                 "keyframe interval is about %.1f s, longer than the %.1f s segment target: "
                 "set the encoder's keyframe interval to %.0f s (OBS: Output > Keyframe "
                 "Interval; ffmpeg: -g FRAMES or -force_key_frames)",
                 duration, s->p.segment_ms / 1000.0, ceil(s->p.segment_ms / 1000.0));
    }
    {
        long bps = (long)((double)d->bytes * 8 / duration);

        /* A very short tail segment would overstate the peak. */
        if (duration >= s->p.segment_ms / 2000.0 && bps > s->peak_bps)
            s->peak_bps = bps;
        if (s->peak_bps == 0)
            s->peak_bps = bps;
    }
    rc = publish_media_playlist(s, false);
    if (rc == 0 && (s->published_bps == 0 || s->peak_bps > s->published_bps * 11 / 10))
        rc = publish_multivariant(s);
    evict(s);
    log_debug(s->logname, "segment %" PRIu64 ": %.3f s, %zu bytes", d->hs.msn, duration,
              d->bytes);
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
    s->target_duration = (int)((s->p.segment_ms + 999) / 1000);
    s->vidx = s->aidx = -1;
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

static int write_packet(struct seg_stream *s, const struct seg_frame *f, int idx)
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
        dur = av_rescale_q(s->video_delta_ms > 0 ? s->video_delta_ms : 33, ms, st->time_base);
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
    if (s->have_last[t] && dts <= s->last_pts_tb[t])
        dts = s->last_pts_tb[t] + 1;
    if (pts < dts)
        pts = dts;
    s->last_pts_tb[t] = dts;

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

int seg_stream_frame(struct seg_stream *s, const struct seg_frame *f)
{
    int t = f->track, idx, rc;
    bool cut_point;

    if (!f->len || f->len > INT32_MAX)
        return 0;
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

    if (t == SEG_VIDEO && s->have_last[t] && f->dts_ms > s->last_dts_ms[t])
        s->video_delta_ms = f->dts_ms - s->last_dts_ms[t];
    cut_point = s->vidx >= 0 ? (t == SEG_VIDEO && f->keyframe) : true;
    if (cut_point && s->seg_open && f->dts_ms - s->seg_start_ms >= s->p.segment_ms) {
        rc = finish_segment(s, f->dts_ms);
        if (rc < 0)
            return rc;
    }
    if (!s->seg_open) {
        if (!cut_point)
            return 0;
        s->seg_open = true;
        s->seg_start_ms = f->dts_ms;
        s->seg_pdt_ms = time_wall_ms();
        s->seg_video_frames = 0;
    }
    if (t == SEG_VIDEO)
        s->seg_video_frames++;
    rc = write_packet(s, f, idx);
    s->have_last[t] = true;
    s->last_dts_ms[t] = f->dts_ms;
    return rc;
}

void seg_stream_close(struct seg_stream *s)
{
    int64_t linger;

    if (!s)
        return;
    if (s->started) {
        finish_segment(s, s->end_ms);
        if (s->ndone)
            publish_media_playlist(s, true);
        s->discard_output = true; /* the trailer (mfra) is not part of any segment */
        av_write_trailer(s->fmt);
        log_info(s->logname, "ended after %" PRIu64 " segments", s->next_msn);
    }
    mux_free(s);
    av_packet_free(&s->pkt);
    linger = (int64_t)s->p.segment_ms * s->p.window_segments * 2;
    store_release(s->ss, linger > ENDED_LINGER_MIN_MS ? linger : ENDED_LINGER_MIN_MS);
    bytes_reset(&s->out);
    free(s->done);
    free(s->avcc);
    free(s->asc);
    free(s);
}
