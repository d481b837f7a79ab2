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
 * streams: on time), and without one when keyframes come too late for the
 * fixed target duration or the segment reaches max_segment_bytes. Parts
 * (fragments) are cut before a frame that would make the part longer than
 * part_ms, and on every keyframe; without LL-HLS they are cut every
 * SEG_FRAGMENT_MS and only the segments (the list of their parts) published.
 *
 * Timestamps go through the publisher's clock (clock.c) first: every time
 * below is on the channel's output timeline, which a reconnecting publisher
 * continues. A codec configuration that changes (or arrives late) restarts
 * the muxer at the next keyframe: a new init segment after a discontinuity.
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
#define WAIT_FOR_VIDEO_MS 4000    /* audio dropped while video is announced but absent */
#define GOP_WARN_EVERY_MS 60000   /* the keyframe warning repeats while it happens */

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

/* The channel's multivariant facts follow the latest publisher's tracks. */
static void update_variant(struct seg_stream *s, bool with_video, bool with_audio)
{
    struct seg_channel *c = s->ch;
    char codecs[sizeof(c->codecs)];
    int w = with_video ? s->avc.width : 0, h = with_video ? s->avc.height : 0;

    snprintf(codecs, sizeof(codecs), "%s%s%s", with_video ? s->avc.codec : "",
             with_video && with_audio ? "," : "", with_audio ? s->aac.codec : "");
    c->announced_kbps = s->md.video_kbps + s->md.audio_kbps;
    if (s->md.framerate > 0)
        c->frame_rate = s->md.framerate;
    if (strcmp(codecs, c->codecs) == 0 && w == c->width && h == c->height)
        return;
    snprintf(c->codecs, sizeof(c->codecs), "%s", codecs);
    c->width = w;
    c->height = h;
    if (c->mv_published)
        seg_publish_multivariant(c);
}

/* What the stream carries, for the statistics. */
static void publish_media_info(struct seg_stream *s, bool with_video, bool with_audio)
{
    char codecs[72];

    snprintf(codecs, sizeof(codecs), "%s%s%s", with_video ? s->avc.codec : "",
             with_video && with_audio ? "," : "", with_audio ? s->aac.codec : "");
    mx_segmenter_media(s->ch->name, codecs, with_video ? s->avc.width : 0,
                       with_video ? s->avc.height : 0);
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
    init = init_with_ftyp(&s->out);
    s->out.len = 0;
    if (!init) {
        rc = -ENOMEM;
        goto fail;
    }
    /* A new URI for every init segment: a player that sees EXT-X-MAP change
     * (after the discontinuity) fetches it. */
    snprintf(s->init_uri, sizeof(s->init_uri), "init-%s-%u.mp4", s->ch->gen, s->ch->ninit++);
    rec_init(s->ch->rec, init, s->init_uri); /* the recording hook: a reference, no copy */
    rc = store_put(s->ch->ss, s->init_uri, STORE_INIT, init);
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
        store_set_info(s->ch->ss, &info);
    }
    s->started = true;
    publish_media_info(s, with_video, with_audio);
    s->inband_ps = with_video && s->ch->ninit > 1;
    s->mux_rate = with_audio ? s->aac.sample_rate : 0;
    update_variant(s, with_video, with_audio);
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

static int64_t open_seg_bytes(const struct seg_stream *s)
{
    int64_t n = 0;

    for (int i = 0; i < s->nparts; i++)
        n += (int64_t)s->parts[i].b->len;
    return n;
}

/* The first playlists a player sees: the peak is an estimate until a segment is measured. */
static int publish_first(struct seg_stream *s, int64_t end_ms)
{
    struct seg_channel *c = s->ch;

    c->peak_bps = (long)((double)open_seg_bytes(s) * 8 /
                         ((double)(end_ms - s->seg_start_ms + 1) / 1000.0));
    return seg_publish_multivariant(c);
}

/*
 * Ends the open part at END_MS: flushes the muxer's fragment (one moof+mdat)
 * and keeps it as the next part of the open segment; with LL-HLS also
 * publishes it and, if RENDER, the playlists that list it, then the progress
 * that wakes blocked readers (objects first, so a woken reader finds them).
 */
static int finish_part(struct seg_stream *s, int64_t end_ms, bool render)
{
    struct seg_channel *c = s->ch;
    struct seg_part *sp;
    struct buf *b;
    int rc = 0;

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
    snprintf(sp->hp.uri, sizeof(sp->hp.uri), "part-%s-%" PRIu64 "-%d.m4s", c->gen, c->next_msn,
             s->nparts);
    s->nparts++;
    if (c->p.part_ms <= 0)
        return 0;
    rc = store_put(c->ss, sp->hp.uri, STORE_PART, buf_ref(b));
    if (rc == 0)
        mx_segmenter_part(c->name, time_mono_ms() - s->cut_ref_ms);
    if (rc == 0 && render) {
        if (!c->mv_published)
            rc = publish_first(s, end_ms);
        if (rc == 0)
            rc = seg_publish_playlists(c, false);
        if (rc == 0)
            store_progress(c->ss, STORE_KEY(c->next_msn, s->nparts - 1));
    }
    return rc;
}

/*
 * Ends the open segment at END_MS: its last part, then the segment (the list
 * of its part buffers) joins the channel's playlist.
 */
static int finish_segment(struct seg_stream *s, int64_t end_ms)
{
    int rc;

    if (!s->seg_open)
        return 0;
    rc = finish_part(s, end_ms, false);
    s->seg_open = false;
    s->part_open = false;
    if (rc == 0 && s->nparts > 0)
        rc = seg_channel_add_segment(s->ch, s, end_ms);
    for (int i = 0; i < s->nparts; i++)
        buf_unref(s->parts[i].b);
    s->nparts = 0;
    return rc;
}

/* ---- public API ---------------------------------------------------------- */

int seg_stream_open(struct seg_hub *h, const char *name, const struct seg_params *p,
                    struct seg_stream **out)
{
    struct seg_stream *s;
    int rc;

    if (!seg_name_valid(name))
        return -EINVAL;
    s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->vidx = s->aidx = -1;
    rc = seg_channel_attach(h, name, p, s);
    if (rc < 0) {
        free(s);
        return rc;
    }
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
    if (s->started && !s->taken_over) {
        /* The running muxer keeps its copy; the next cut starts a new one. */
        log_info(s->logname, "%s configuration %s: new init segment at the next %s",
                 t == SEG_VIDEO ? "video" : "audio", *slot ? "changed" : "arrived late",
                 s->avcc || t == SEG_VIDEO ? "keyframe" : "frame");
        s->restart = true;
        if (t == SEG_AUDIO)
            s->restart_audio_cfg = true;
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

/* Writes one packet: DTS/PTS/DUR in the track's time base. */
static int write_packet(struct seg_stream *s, const struct seg_frame *f, int idx, int64_t dts,
                        int64_t pts, int64_t dur)
{
    AVStream *st = s->fmt->streams[idx];
    AVPacket *pkt = s->pkt;
    int64_t end;
    int rc;

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
                 f->track == SEG_VIDEO ? "video" : "audio", f->dts_ms, av_err2str(rc));
        return 0; /* one bad frame does not end the stream */
    }
    s->seg_bytes += (int64_t)f->len;
    end = av_rescale_q(dts + dur, st->time_base, (AVRational){1, 1000});
    if (end > s->end_ms)
        s->end_ms = end;
    return 0;
}

/*
 * F's NAL units preceded by the SPS and PPS of the current configuration
 * (ISO/IEC 14496-15 5.3.3.1 record into length-prefixed units), into OUT.
 * Returns 0 or -EINVAL/-ENOMEM.
 */
static int with_parameter_sets(const struct seg_stream *s, const struct seg_frame *f,
                               struct bytes *out)
{
    const uint8_t *p = s->avcc, *end = s->avcc + s->avcc_len;
    int nls = s->avc.nal_length_size, rc = 0;

    if (s->avcc_len < 6)
        return -EINVAL;
    p += 5;
    for (int list = 0; list < 2 && rc == 0; list++) {
        int n;

        if (p >= end)
            return -EINVAL;
        n = list == 0 ? (*p++ & 0x1f) : *p++;
        for (int i = 0; i < n && rc == 0; i++) {
            size_t len;
            uint8_t pre[4];

            if (end - p < 2 || (size_t)(end - p - 2) < (len = (size_t)p[0] << 8 | p[1]))
                return -EINVAL;
            for (int k = 0; k < nls; k++)
                pre[k] = (uint8_t)(len >> (8 * (nls - 1 - k)));
            rc = bytes_append(out, pre, (size_t)nls);
            if (rc == 0)
                rc = bytes_append(out, p + 2, len);
            p += 2 + len;
        }
    }
    return rc == 0 ? bytes_append(out, f->data, f->len) : rc;
}

/* Writes video frame F (output times, pts = dts + cts >= dts) lasting DUR_MS. */
static int write_video(struct seg_stream *s, const struct seg_frame *f, int64_t dur_ms)
{
    struct seg_frame g = *f;
    struct bytes au = {0};
    int rc;

    /*
     * The first keyframe after a new init segment carries its parameter sets
     * in-band too: players that read across EXT-X-MAP changes without
     * reinitialising (ffmpeg's HLS demuxer) then decode the new configuration.
     */
    if (f->keyframe && s->inband_ps && s->avc.nal_length_size > 0 &&
        with_parameter_sets(s, f, &au) == 0) {
        g.data = au.data;
        g.len = au.len;
        s->inband_ps = false;
    }
    rc = write_packet(s, &g, s->vidx, g.dts_ms * 90, (g.dts_ms + g.cts_ms) * 90,
                      (dur_ms > 0 ? dur_ms : 1) * 90);
    bytes_reset(&au);
    s->video_end_ms = g.dts_ms + (dur_ms > 0 ? dur_ms : 1);
    return rc;
}

/* Writes audio frame F at sample time AT (seg_audio_place). */
static int write_audio(struct seg_stream *s, const struct seg_frame *f, int64_t at)
{
    return write_packet(s, f, s->aidx, at, at, AAC_FRAME_SAMPLES);
}

/* Writes the held video frame, now that the next one (at NEXT_DTS_MS) gives its duration. */
static int write_held(struct seg_stream *s, int64_t next_dts_ms)
{
    int64_t dur = next_dts_ms - s->held_f.dts_ms;
    int rc;

    if (!s->held)
        return 0;
    if (dur <= 0)
        dur = s->clock.good_delta > 0 ? s->clock.good_delta : 33;
    rc = write_video(s, &s->held_f, dur);
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

/* The keyframe warning, repeated while keyframes keep coming too late. */
static void warn_gop(struct seg_stream *s, int64_t len_ms)
{
    int64_t now = time_mono_ms();
    double target = s->ch->p.segment_ms / 1000.0;

    if (s->warned_gop_ms && now - s->warned_gop_ms < GOP_WARN_EVERY_MS)
        return;
    s->warned_gop_ms = now;
    log_warn(s->logname,
             "no keyframe for %.1f s, longer than the %.1f s segment target: cutting without "
             "one (%ld times so far; players may need the previous segment): set the "
             "encoder's keyframe interval to %.0f s (OBS: Output > Keyframe Interval; ffmpeg: "
             "-g FRAMES or -force_key_frames)",
             len_ms / 1000.0, target, s->forced_cuts, ceil(target));
}

/*
 * Whether the open segment must end before F although F is no keyframe: the
 * fixed target duration would be exceeded (rounded EXTINF <= target, RFC 8216
 * 4.3.3.1) or the segment is full.
 */
static bool must_cut(struct seg_stream *s, const struct seg_frame *f)
{
    struct seg_channel *c = s->ch;
    int64_t frame = s->clock.good_delta > 0 ? s->clock.good_delta : 33;
    int64_t limit = c->target_duration * 1000LL + 500 - 2 * frame;
    int64_t len = f->dts_ms - s->seg_start_ms;

    if (limit < c->target_duration * 1000LL)
        limit = c->target_duration * 1000LL;
    if (s->seg_bytes >= c->p.max_segment_bytes) {
        log_warn(s->logname, "segment reached %" PRId64 " bytes (max_segment_bytes): cut",
                 s->seg_bytes);
        return true;
    }
    if (len + frame <= limit)
        return false;
    s->forced_cuts++;
    warn_gop(s, len);
    return true;
}

/*
 * Cuts before F if it starts a segment or (LL-HLS) a part: closes the open
 * part/segment at F's timestamp and opens new ones at it.
 */
/*
 * Where the open segment ends if the next sample starts at T: at T, or, after
 * a gap in the media (frames further apart than a target duration, but less
 * than a jump), where its rounded EXTINF still fits the target. The gap is
 * then a hole between two segments rather than a too long segment.
 */
static int64_t segment_end(const struct seg_stream *s, int64_t t)
{
    int64_t max = s->ch->target_duration * 1000LL + 499;
    int64_t floor = s->held ? s->held_f.dts_ms + 1 : s->seg_start_ms + 1;

    if (!s->seg_open || t - s->seg_start_ms <= max)
        return t;
    return s->seg_start_ms + max > floor ? s->seg_start_ms + max : floor;
}

static int cut_before(struct seg_stream *s, const struct seg_frame *f, int64_t frame_ms)
{
    struct seg_channel *c = s->ch;
    bool key = s->vidx >= 0 ? (f->track == SEG_VIDEO && f->keyframe) : true;
    bool part_point = s->vidx >= 0 ? f->track == SEG_VIDEO : true;
    bool forced = false;
    int64_t t = f->dts_ms;
    int rc;

    if (s->seg_open && ((key && t - s->seg_start_ms >= c->p.segment_ms) ||
                        (part_point && (forced = must_cut(s, f))))) {
        rc = finish_segment(s, segment_end(s, t));
        if (rc < 0)
            return rc;
    }
    if (!s->seg_open) {
        if (!key && !forced)
            return 1; /* not before a keyframe: dropped */
        if (c->have_next_p) { /* a live reload's timing, from this segment on */
            c->p = c->next_p;
            c->have_next_p = false;
        }
        s->seg_open = true;
        s->seg_independent = key;
        s->seg_start_ms = t;
        s->seg_pdt_ms = time_wall_ms();
        s->seg_video_frames = 0;
        s->seg_bytes = 0;
    } else if (part_point && s->part_open) {
        /*
         * Parts end on the frame closest to the target (within half a frame),
         * and never past the advertised PART-TARGET, which has room for that
         * rounding (seg_part_target_ms). Without LL-HLS the fragments are cut
         * all the same, only not published: a segment is then a list of
         * small buffers, and ending it copies one fragment, not the whole
         * segment (a 32 MiB copy stalled every other publisher for ~40 ms).
         */
        int64_t len = t - s->part_start_ms;
        int64_t part_ms = c->p.part_ms > 0 ? c->p.part_ms : SEG_FRAGMENT_MS;

        if (len >= part_ms - frame_ms / 2 || len + frame_ms > seg_part_target_ms(part_ms)) {
            rc = finish_part(s, t, true);
            if (rc < 0)
                return rc;
        }
    }
    if (!s->part_open) {
        s->part_open = true;
        s->part_start_ms = t;
        s->part_independent = f->track == SEG_VIDEO ? f->keyframe : true;
    }
    return 0;
}

/* At a cut point after a configuration change: a new muxer (and init segment). */
static int restart_muxer(struct seg_stream *s, const struct seg_frame *f)
{
    int rc;

    rc = write_held(s, f->dts_ms);
    if (rc == 0)
        rc = finish_segment(s, f->dts_ms);
    if (rc < 0)
        return rc;
    s->discard_output = true; /* the trailer (mfra) is not part of any segment */
    av_write_trailer(s->fmt);
    s->discard_output = false;
    s->out.len = 0;
    mux_free(s);
    s->started = false;
    s->restart = s->restart_audio_cfg = false;
    s->audio_clock = false; /* the sample rate may have changed */
    s->ch->disc_next = true;
    return mux_start(s, s->avcc != NULL, s->asc != NULL) == 0 ? 0 : -EINVAL;
}

/* Logs the clock's repairs once per publisher, with their size. */
static void log_clock(struct seg_stream *s, int t, bool jumped)
{
    if (jumped && !s->warned_jump) {
        s->warned_jump = true;
        log_warn(s->logname,
                 "%s timestamps jumped %+.3f s: continuing at the expected time (logged once; "
                 "%ld so far)",
                 t == SEG_VIDEO ? "video" : "audio", s->clock.last_jump_ms / 1000.0,
                 s->clock.jumps);
    }
    if (s->clock.fixups && !s->warned_fixup) {
        s->warned_fixup = true;
        log_warn(s->logname, "video decode timestamps repeat or go back: fixed up (logged once)");
    }
}

/* Audio of an A/V stream follows the video's cuts; audio-only streams cut on it. */
static int audio_frame(struct seg_stream *s, struct seg_frame *g)
{
    int64_t at;
    bool timed = !s->have_audio_in || g->dts_ms != s->last_audio_in_ms;
    int rc;

    s->have_audio_in = true;
    s->last_audio_in_ms = g->dts_ms;
    if (!seg_audio_place(&s->audio_next, &s->audio_clock, g->dts_ms, timed, s->mux_rate,
                         AAC_FRAME_SAMPLES, &at)) {
        if (s->audio_dropped++ == 0)
            log_info(s->logname, "audio timestamps run behind the samples: dropping a frame "
                                 "now and then to keep A/V within one frame (logged once)");
        return 0;
    }
    g->dts_ms = at * 1000 / s->mux_rate;
    if (s->vidx < 0) {
        rc = cut_before(s, g, AAC_FRAME_SAMPLES * 1000 / s->mux_rate);
        if (rc != 0)
            return rc < 0 ? rc : 0;
    } else if (!s->seg_open) {
        return 0;
    }
    return write_audio(s, g, at);
}

int seg_stream_frame(struct seg_stream *s, const struct seg_frame *f)
{
    int t = f->track, idx, rc;
    struct seg_frame g = *f;
    bool jumped;

    if (!s->ch)
        return -ECANCELED; /* taken over */
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
    g.dts_ms = seg_clock_map(&s->clock, t, f->dts_ms, &jumped);
    if (t == SEG_VIDEO) {
        bool was = s->clock.pts_from_dts;
        int64_t pts;

        g.dts_ms = seg_clock_video_dts(&s->clock, g.dts_ms, f->cts_ms, &pts);
        g.cts_ms = (int32_t)(pts - g.dts_ms);
        if (!was && s->clock.pts_from_dts && s->held) {
            /* The frame before already had a moved decode time: its offset follows too. */
            int64_t c = (int64_t)s->held_in_cts + s->clock.cts_shift;

            s->held_f.cts_ms = (int32_t)(c > 0 ? c : 0);
        }
    }
    log_clock(s, t, jumped);
    if (!s->pkt && !(s->pkt = av_packet_alloc()))
        return -ENOMEM;
    if (!s->started) {
        rc = maybe_start(s, &g);
        if (rc <= 0)
            return rc;
    } else if (s->restart && (s->avcc ? t == SEG_VIDEO && f->keyframe : t == SEG_AUDIO)) {
        if ((rc = restart_muxer(s, &g)) < 0)
            return rc;
    }
    idx = t == SEG_VIDEO ? s->vidx : s->aidx;
    if (idx < 0 || (t == SEG_AUDIO && s->restart_audio_cfg))
        return 0; /* track not in this muxer (yet), or its frames no longer fit it */
    if (t == SEG_AUDIO)
        return audio_frame(s, &g);

    /* The held frame ends where this one starts (or where its segment must
     * end, after a gap); it belongs before any cut. */
    rc = write_held(s, segment_end(s, g.dts_ms));
    if (rc < 0)
        return rc;
    rc = cut_before(s, &g, s->clock.good_delta > 0 ? s->clock.good_delta : 33);
    if (rc != 0)
        return rc < 0 ? rc : 0;
    s->seg_video_frames++;
    s->held_in_cts = f->cts_ms;
    return hold(s, &g);
}

void seg_stream_stop(struct seg_stream *s)
{
    if (s->started) {
        s->cut_ref_ms = s->last_in_ms; /* the last segment ends with the last frame */
        if (s->held)
            write_held(s, s->held_f.dts_ms +
                              (s->clock.good_delta > 0 ? s->clock.good_delta : 33));
        /* EXTINF follows the track segments are cut on, as for every other segment. */
        finish_segment(s, s->vidx >= 0 && s->video_end_ms > 0 ? s->video_end_ms : s->end_ms);
        s->discard_output = true; /* the trailer (mfra) is not part of any segment */
        av_write_trailer(s->fmt);
        s->started = false;
    }
    mux_free(s);
}

void seg_stream_set_params(struct seg_stream *s, const struct seg_params *p)
{
    if (s->ch)
        seg_channel_set_params(s->ch, p);
}

void seg_stream_close(struct seg_stream *s)
{
    if (!s)
        return;
    if (s->ch) {
        seg_stream_stop(s);
        seg_channel_detach(s);
    }
    mux_free(s);
    av_packet_free(&s->pkt);
    for (int i = 0; i < s->nparts; i++)
        buf_unref(s->parts[i].b);
    free(s->parts);
    bytes_reset(&s->out);
    bytes_reset(&s->held_data);
    free(s->avcc);
    free(s->asc);
    free(s);
}
