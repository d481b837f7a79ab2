/*
 * Segmenter tests: codec configuration parsing, playlist rendering against
 * golden files, and the muxer end to end on real encoder output (an FLV file
 * made by ffmpeg, read tag by tag here and fed as frames, no demuxer between).
 *
 * usage: test_segmenter DATA_DIR
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../segmenter/segmenter.h"
#include "../../segmenter/segmenter_internal.h"
#include "../../store/store.h"
#include "harness.h"

static const char *data_dir;

/* ---- codec configuration ------------------------------------------------- */

static size_t hex2bin(const char *hex, uint8_t *out, size_t cap)
{
    size_t n = 0;

    while (hex[0] && hex[1] && n < cap) {
        unsigned v;

        sscanf(hex, "%2x", &v);
        out[n++] = (uint8_t)v;
        hex += 2;
    }
    return n;
}

/* Wraps one SPS in an AVCDecoderConfigurationRecord with a dummy PPS. */
static size_t make_avcc(const char *sps_hex, uint8_t *out)
{
    uint8_t sps[128];
    size_t n = hex2bin(sps_hex, sps, sizeof(sps)), len = 0;

    out[len++] = 1;
    out[len++] = sps[1];
    out[len++] = sps[2];
    out[len++] = sps[3];
    out[len++] = 0xff;
    out[len++] = 0xe1;
    out[len++] = (uint8_t)(n >> 8);
    out[len++] = (uint8_t)n;
    memcpy(out + len, sps, n);
    len += n;
    out[len++] = 1;
    out[len++] = 0;
    out[len++] = 2;
    out[len++] = 0x68;
    out[len++] = 0xce;
    return len;
}

static void test_avc_config(void)
{
    static const struct {
        const char *sps, *codec;
        int w, h;
    } cases[] = {
        /* x264 high 1280x720, main 1920x1080 (cropped from 1088), baseline 320x240 */
        {"6764001facd9405005bb0110000003001000000303c0f1831960", "avc1.64001f", 1280, 720},
        {"674d4028d900780227e5c044000003000400000300f03c60c920", "avc1.4d4028", 1920, 1080},
        {"6742c00dd90141fb0110000003001000000303c0f142a480", "avc1.42c00d", 320, 240},
    };
    uint8_t avcc[160];
    struct avc_info info;

    for (size_t i = 0; i < (size_t)ARRAY_LEN(cases); i++) {
        size_t len = make_avcc(cases[i].sps, avcc);

        CHECK_EQ_INT(avc_parse_config(avcc, len, &info), 0);
        CHECK_EQ_INT(info.width, cases[i].w);
        CHECK_EQ_INT(info.height, cases[i].h);
        CHECK_EQ_INT(info.nal_length_size, 4);
        CHECK_EQ_STR(info.codec, cases[i].codec);
        /* every truncation is refused, none crashes */
        for (size_t cut = 0; cut < 8 + 10; cut++)
            CHECK(avc_parse_config(avcc, cut, &info) == -EINVAL);
    }
    avcc[0] = 2; /* unknown configurationVersion */
    CHECK_EQ_INT(avc_parse_config(avcc, 30, &info), -EINVAL);
}

static void test_aac_config(void)
{
    struct aac_info a;
    const uint8_t lc44[] = {0x12, 0x10}, lc48mono[] = {0x11, 0x88}, he[] = {0x2b, 0x92, 0x08, 0x00};
    const uint8_t bad_rate[] = {0x17, 0x90};

    CHECK_EQ_INT(aac_parse_config(lc44, 2, &a), 0);
    CHECK_EQ_INT(a.sample_rate, 44100);
    CHECK_EQ_INT(a.channels, 2);
    CHECK_EQ_STR(a.codec, "mp4a.40.2");
    CHECK_EQ_INT(aac_parse_config(lc48mono, 2, &a), 0);
    CHECK_EQ_INT(a.sample_rate, 48000);
    CHECK_EQ_INT(a.channels, 1);
    CHECK_EQ_INT(aac_parse_config(he, 4, &a), 0);
    CHECK_EQ_INT(a.object_type, 5);
    CHECK_EQ_STR(a.codec, "mp4a.40.5");
    CHECK_EQ_INT(aac_parse_config(bad_rate, 2, &a), -EINVAL); /* index 13 is reserved */
    CHECK_EQ_INT(aac_parse_config(lc44, 1, &a), -EINVAL);
    CHECK_EQ_INT(aac_parse_config(lc44, 0, &a), -EINVAL);
}

/* ---- playlists against golden files ------------------------------------- */

static char *read_file(const char *name, size_t *len)
{
    char path[1024];
    FILE *f;
    char *buf;
    long n;

    snprintf(path, sizeof(path), "%s/%s", data_dir, name);
    f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = calloc(1, (size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static void check_golden(const struct bytes *got, const char *golden)
{
    size_t len = 0;
    char *want = read_file(golden, &len);

    CHECK(want != NULL);
    if (!want)
        return;
    CHECK_EQ_INT(got->len, len);
    if (got->len != len || memcmp(got->data, want, len) != 0) {
        harness_failures++;
        fprintf(stderr, "%s differs; rendered:\n%.*s\n", golden, (int)got->len,
                (const char *)got->data);
    }
    free(want);
}

static void fill_seg(struct hls_segment *s, uint64_t msn, double dur, const char *gen)
{
    memset(s, 0, sizeof(*s));
    s->msn = msn;
    s->duration = dur;
    s->pdt_ms = 1795000000000LL + (int64_t)msn * 2000; /* 2026-11-18T... */
    snprintf(s->map_uri, sizeof(s->map_uri), "init-%s.mp4", gen);
    snprintf(s->uri, sizeof(s->uri), "seg-%s-%llu.m4s", gen, (unsigned long long)msn);
}

static void test_playlist_golden(void)
{
    struct hls_segment segs[4];
    struct hls_media_playlist pl = {.target_duration = 2, .segs = segs};
    struct hls_variant v = {.bandwidth = 1234567, .codecs = "avc1.64001f,mp4a.40.2",
                            .width = 1280, .height = 720, .frame_rate = 30,
                            .uri = "media.m3u8"};
    struct bytes out = {0};

    for (int i = 0; i < 3; i++)
        fill_seg(&segs[i], 40 + (uint64_t)i, i == 2 ? 1.967 : 2.0, "abc1");
    pl.nsegs = 3;
    CHECK_EQ_INT(hls_render_media(&pl, &out), 0);
    check_golden(&out, "media_live.m3u8");

    /* a publisher came back: new init segment after a discontinuity; then it ended */
    out.len = 0;
    fill_seg(&segs[3], 43, 2.5, "abc2");
    segs[3].discontinuity = true;
    pl.nsegs = 4;
    pl.target_duration = 3;
    pl.ended = true;
    CHECK_EQ_INT(hls_render_media(&pl, &out), 0);
    check_golden(&out, "media_discontinuity_ended.m3u8");

    out.len = 0;
    CHECK_EQ_INT(hls_render_multivariant(&v, &out), 0);
    check_golden(&out, "multivariant.m3u8");

    out.len = 0;
    v.width = v.height = 0;
    v.frame_rate = 0;
    v.codecs = "mp4a.40.2";
    CHECK_EQ_INT(hls_render_multivariant(&v, &out), 0);
    check_golden(&out, "multivariant_audio.m3u8");
    bytes_reset(&out);
}

/* LL-HLS: parts of the last segments, an open segment, hint, server control, skip. */
static void test_playlist_ll_golden(void)
{
    struct hls_segment segs[8];
    struct hls_part parts[3][6];
    struct hls_media_playlist pl = {.target_duration = 1, .segs = segs};
    struct bytes out = {0};

    for (int i = 0; i < 8; i++)
        fill_seg(&segs[i], 100 + (uint64_t)i, 1.0, "ll1");
    for (int k = 0; k < 3; k++) {
        for (int p = 0; p < 6; p++) {
            parts[k][p].duration = p < 2 ? 0.333 : p == 2 ? 0.334 : 0;
            parts[k][p].independent = p == 0;
            snprintf(parts[k][p].uri, sizeof(parts[k][p].uri), "part-ll1-%d-%d.m4s", 105 + k,
                     p);
        }
        segs[5 + k].parts = parts[k];
        segs[5 + k].nparts = 3;
    }
    /* the last segment is still open: two parts so far */
    segs[7].uri[0] = '\0';
    segs[7].nparts = 2;
    segs[7].duration = 0.666;
    pl.nsegs = 8;
    pl.part_target = 0.35;
    pl.part_hold_back = 1.05;
    pl.skip_until = 6;
    pl.parts_from = 5;
    pl.preload_hint = "part-ll1-107-2.m4s";
    CHECK_EQ_INT(hls_render_media(&pl, &out), 0);
    check_golden(&out, "media_ll.m3u8");

    /* delta update: what ends 6 s or more before the end is skipped */
    CHECK_EQ_INT(hls_skippable(&pl), 1);
    pl.skip = hls_skippable(&pl);
    out.len = 0;
    CHECK_EQ_INT(hls_render_media(&pl, &out), 0);
    check_golden(&out, "media_ll_skip.m3u8");

    /* a window shorter than the skip boundary skips nothing */
    pl.skip_until = 12;
    CHECK_EQ_INT(hls_skippable(&pl), 0);
    /* skipping every segment is refused */
    pl.skip = 8;
    CHECK_EQ_INT(hls_render_media(&pl, &out), -EINVAL);
    bytes_reset(&out);
}

/* ---- end to end on real encoder output ---------------------------------- */

struct flv_file {
    uint8_t *data;
    size_t len, pos;
};

/* A per-process path, so that two builds' test runs never share a file. */
static void tmp_flv(char *path, size_t size, const char *name)
{
    snprintf(path, size, "/tmp/onair-test-seg-%s-%ld.flv", name, (long)getpid());
}

static int make_flv(const char *path, const char *args)
{
    char cmd[2048];

    snprintf(cmd, sizeof(cmd), "ffmpeg -nostdin -v error -y %s -f flv %s", args, path);
    return system(cmd);
}

static int load_flv(const char *path, struct flv_file *f)
{
    FILE *fp = fopen(path, "rb");
    long n;

    memset(f, 0, sizeof(*f));
    if (!fp)
        return -1;
    fseek(fp, 0, SEEK_END);
    n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    f->data = malloc((size_t)n);
    f->len = fread(f->data, 1, (size_t)n, fp);
    fclose(fp);
    f->pos = 13; /* FLV header + PreviousTagSize0 */
    return f->len == (size_t)n && n > 13 ? 0 : -1;
}

/*
 * Feeds the next tag of F to S as the ingest would, counting frames in
 * *FRAMES. Returns 1 after a tag, 0 at the end of F, or -1.
 */
static int feed_tag(struct flv_file *f, struct seg_stream *s, int64_t *last_ms, int *frames)
{
    const uint8_t *t = f->data + f->pos;
    size_t size;
    int64_t ts;
    const uint8_t *b = t + 11;

    if (f->pos + 11 > f->len)
        return 0;
    size = (size_t)t[1] << 16 | (size_t)t[2] << 8 | t[3];
    ts = (int64_t)((uint32_t)t[7] << 24 | (uint32_t)t[4] << 16 | (uint32_t)t[5] << 8 | t[6]);
    if (f->pos + 11 + size + 4 > f->len)
        return -1;
    if (t[0] == 9 && size > 5 && (b[0] & 0x0f) == 7) {
        int32_t cts = (int32_t)((uint32_t)b[2] << 16 | (uint32_t)b[3] << 8 | b[4]);

        if (cts & 0x800000)
            cts -= 0x1000000;
        if (b[1] == 0) {
            CHECK_EQ_INT(seg_stream_video_config(s, b + 5, size - 5), 0);
        } else if (b[1] == 1) {
            struct seg_frame fr = {SEG_VIDEO, ts, cts, (b[0] >> 4) == 1, b + 5, size - 5};

            if (seg_stream_frame(s, &fr) < 0)
                return -1;
            (*frames)++;
        }
    } else if (t[0] == 8 && size > 2 && (b[0] >> 4) == 10) {
        if (b[1] == 0) {
            CHECK_EQ_INT(seg_stream_audio_config(s, b + 2, size - 2), 0);
        } else {
            struct seg_frame fr = {SEG_AUDIO, ts, 0, true, b + 2, size - 2};

            if (seg_stream_frame(s, &fr) < 0)
                return -1;
            (*frames)++;
        }
    }
    if (ts > *last_ms)
        *last_ms = ts;
    f->pos += 11 + size + 4;
    return 1;
}

/* Feeds every tag of F to S as the ingest would. Returns frames fed, or -1. */
static int feed_flv(struct flv_file *f, struct seg_stream *s, int64_t *last_ms)
{
    int frames = 0, rc;

    while ((rc = feed_tag(f, s, last_ms, &frames)) > 0)
        ;
    return rc < 0 ? -1 : frames;
}

/* Sums EXTINF durations of a media playlist; counts segments in *N. */
static double sum_extinf(const struct buf *pl, int *n)
{
    char *text = strndup((const char *)pl->data, pl->len);
    double sum = 0;

    *n = 0;
    for (char *p = text; (p = strstr(p, "#EXTINF:")); p++) {
        sum += atof(p + 8);
        (*n)++;
    }
    free(text);
    return sum;
}

static bool buf_has(const struct buf *b, const char *needle)
{
    return b && memmem(b->data, b->len, needle, strlen(needle)) != NULL;
}

static void test_segmenter_av(void)
{
    char flv[96];
    struct seg_params p = {.segment_ms = 2000, .window_segments = 20};
    struct store *st = store_new();
    struct seg_hub *hub = NULL;
    struct seg_stream *s = NULL, *s2 = NULL;
    struct flv_file f;
    struct buf *b, *init, *first_seg;
    enum store_kind kind;
    int64_t last_ms = 0;
    int n = 0;
    double sum;
    char *text;

    tmp_flv(flv, sizeof(flv), "av");
    CHECK_EQ_INT(make_flv(flv, "-f lavfi -i testsrc2=size=320x240:rate=30 -f lavfi -i "
                               "sine=frequency=440:sample_rate=48000 -t 10 -c:v libx264 "
                               "-preset veryfast -bf 2 -g 30 -pix_fmt yuv420p -c:a aac -b:a 64k"),
                 0);
    CHECK_EQ_INT(load_flv(flv, &f), 0);
    CHECK_EQ_INT(seg_hub_new(st, &hub), 0);
    CHECK_EQ_INT(seg_stream_open(hub, "show", &p, &s), 0);
    CHECK_EQ_INT(seg_stream_open(hub, "../etc", &p, &s2), -EINVAL);
    CHECK(feed_flv(&f, s, &last_ms) > 500);
    /* while live: playlists and segments are there, no ENDLIST */
    b = store_get(st, "show", "media.m3u8", &kind);
    CHECK(b && kind == STORE_PLAYLIST);
    CHECK(buf_has(b, "#EXT-X-TARGETDURATION:2\n"));
    CHECK(buf_has(b, "#EXT-X-MEDIA-SEQUENCE:0\n"));
    CHECK(buf_has(b, "#EXT-X-PROGRAM-DATE-TIME:"));
    CHECK(!buf_has(b, "#EXT-X-ENDLIST"));
    buf_unref(b);
    b = store_get(st, "show", "index.m3u8", &kind);
    CHECK(buf_has(b, "CODECS=\"avc1.64000d,mp4a.40.2\""));
    CHECK(buf_has(b, "RESOLUTION=320x240"));
    CHECK(buf_has(b, "FRAME-RATE=30.000"));
    buf_unref(b);
    seg_stream_close(s);

    b = store_get(st, "show", "media.m3u8", &kind);
    CHECK(buf_has(b, "#EXT-X-ENDLIST"));
    sum = b ? sum_extinf(b, &n) : 0;
    /* 10 s at a 1 s GOP and a 2 s target: 5 segments adding up to the input */
    CHECK_EQ_INT(n, 5);
    CHECK(sum > 9.9 && sum < 10.1);
    text = b ? strndup((const char *)b->data, b->len) : NULL;
    {
        char *m = text ? strstr(text, "#EXT-X-MAP:URI=\"") : NULL;
        char *u = text ? strstr(text, "seg-") : NULL;
        char name[128] = "";

        CHECK(m != NULL && u != NULL);
        if (m && sscanf(m + 16, "%127[^\"]", name) == 1) {
            init = store_get(st, "show", name, &kind);
            CHECK(init && kind == STORE_INIT);
            CHECK(init && init->len > 100 && memcmp(init->data + 4, "ftyp", 4) == 0);
            CHECK(buf_has(init, "moov") && buf_has(init, "mvex"));
            buf_unref(init);
        }
        if (u && sscanf(u, "%127[^\n]", name) == 1) {
            first_seg = store_get(st, "show", name, &kind);
            CHECK(first_seg && kind == STORE_SEGMENT);
            /* CMAF segment: styp? then moof + mdat, no mfra */
            CHECK(buf_has(first_seg, "moof") && buf_has(first_seg, "mdat"));
            CHECK(!buf_has(first_seg, "mfra"));
            buf_unref(first_seg);
        }
    }
    buf_unref(b);

    /* a republish under the same name never reuses a segment URI */
    {
        char *old_init = text ? strstr(text, "init-") : NULL;
        char oldname[64] = "";

        if (old_init)
            sscanf(old_init, "%63[^\"]", oldname);
        CHECK_EQ_INT(seg_stream_open(hub, "show", &p, &s), 0);
        f.pos = 13;
        last_ms = 0;
        CHECK(feed_flv(&f, s, &last_ms) > 500);
        b = store_get(st, "show", "media.m3u8", &kind);
        CHECK(b && oldname[0] && !buf_has(b, oldname));
        buf_unref(b);
        CHECK(store_get(st, "show", oldname, &kind) == NULL);
        seg_stream_close(s);
    }
    free(text);
    free(f.data);
    unlink(flv);
    seg_hub_free(hub);
    store_free(st);
}

/* Feeds tags of F to S until one is stamped STOP_MS or later (left unfed). */
static void feed_until(struct flv_file *f, struct seg_stream *s, int64_t stop_ms)
{
    size_t len = f->len;
    int64_t last_ms = 0;

    while (f->pos + 11 <= len) {
        const uint8_t *t = f->data + f->pos;
        int64_t ts = (int64_t)((uint32_t)t[7] << 24 | (uint32_t)t[4] << 16 |
                               (uint32_t)t[5] << 8 | t[6]);
        size_t size = (size_t)t[1] << 16 | (size_t)t[2] << 8 | t[3];

        if (ts >= stop_ms)
            break;
        f->len = f->pos + 11 + size + 4; /* feed_flv stops after this one tag */
        feed_flv(f, s, &last_ms);
        f->len = len;
    }
}

/*
 * Publishes F's first 3 s with P, then the rest after a live reload to TO;
 * returns how many EXTINF values went into GOT (at most MAX). The target
 * duration stays P's throughout.
 */
static int reload_run(struct flv_file *f, const struct seg_params *p, const struct seg_params *to,
                      double *got, int max)
{
    struct store *st = store_new();
    struct seg_hub *hub = NULL;
    struct seg_stream *s = NULL;
    enum store_kind kind;
    struct buf *b;
    int64_t last_ms = 0;
    int n = 0;

    f->pos = 13; /* FLV header + PreviousTagSize0 */
    CHECK_EQ_INT(seg_hub_new(st, &hub), 0);
    CHECK_EQ_INT(seg_stream_open(hub, "reload", p, &s), 0);
    feed_until(f, s, 3000); /* 0-2 done; 2-4 open */
    seg_stream_set_params(s, to);
    CHECK(feed_flv(f, s, &last_ms) > 100);
    seg_stream_close(s);
    b = store_get(st, "reload", "media.m3u8", &kind);
    CHECK(b != NULL);
    if (b) {
        char *text = strndup((const char *)b->data, b->len);

        CHECK(strstr(text, "#EXT-X-TARGETDURATION:2\n") != NULL);
        for (char *q = text; (q = strstr(q, "#EXTINF:")) && n < max; q++)
            got[n++] = atof(q + 8);
        free(text);
        buf_unref(b);
    }
    seg_hub_free(hub);
    store_free(st);
    return n;
}

/*
 * A live reload's timing applies from the next segment that opens: a shorter
 * segment_ms from there, a longer one only up to the playlist's target
 * duration (RFC 8216 6.2.1: EXT-X-TARGETDURATION never changes).
 */
static void test_segmenter_reload_params(void)
{
    char flv[96];
    struct seg_params p = {.segment_ms = 2000, .window_segments = 20};
    struct seg_params shorter = {.segment_ms = 1000, .window_segments = 20};
    struct seg_params longer = {.segment_ms = 4000, .window_segments = 20};
    /* 2-4 was open at the reload and keeps its 2 s */
    double want[] = {2, 2, 1, 1, 1, 1, 1, 1}, got[16];
    struct flv_file f;
    int n;

    tmp_flv(flv, sizeof(flv), "reload");
    CHECK_EQ_INT(make_flv(flv, "-f lavfi -i testsrc2=size=160x120:rate=30 -t 10 -c:v libx264 "
                               "-preset veryfast -g 30 -pix_fmt yuv420p"),
                 0);
    CHECK_EQ_INT(load_flv(flv, &f), 0);
    n = reload_run(&f, &p, &shorter, got, 16);
    CHECK_EQ_INT(n, (int)ARRAY_LEN(want));
    for (int i = 0; i < n && i < (int)ARRAY_LEN(want); i++)
        CHECK(got[i] > want[i] - 0.05 && got[i] < want[i] + 0.05);

    /* Longer than the target: capped at it, the target stays. */
    n = reload_run(&f, &p, &longer, got, 16);
    CHECK_EQ_INT(n, 5);
    for (int i = 0; i < n && i < 5; i++)
        CHECK(got[i] > 1.95 && got[i] < 2.05);
    free(f.data);
    unlink(flv);
}

static long media_sequence(struct store *st, const char *name)
{
    enum store_kind kind;
    struct buf *b = store_get(st, name, "media.m3u8", &kind);
    long seq = -1;

    if (b) {
        char *text = strndup((const char *)b->data, b->len);
        char *q = text ? strstr(text, "#EXT-X-MEDIA-SEQUENCE:") : NULL;

        if (q)
            seq = atol(q + 22);
        free(text);
        buf_unref(b);
    }
    return seq;
}

/* A reload that widens the window lists no segment again that left it (found by fuzz-segmenter). */
static void test_segmenter_reload_widens_window(void)
{
    char flv[96];
    struct seg_params p = {.segment_ms = 1000, .window_segments = 3};
    struct seg_params next = {.segment_ms = 1000, .window_segments = 8};
    struct store *st = store_new();
    struct seg_hub *hub = NULL;
    struct seg_stream *s = NULL;
    struct flv_file f;
    long seq;

    tmp_flv(flv, sizeof(flv), "widen");
    CHECK_EQ_INT(make_flv(flv, "-f lavfi -i testsrc2=size=160x120:rate=30 -t 8 -c:v libx264 "
                               "-preset veryfast -g 30 -pix_fmt yuv420p"),
                 0);
    CHECK_EQ_INT(load_flv(flv, &f), 0);
    CHECK_EQ_INT(seg_hub_new(st, &hub), 0);
    CHECK_EQ_INT(seg_stream_open(hub, "widen", &p, &s), 0);
    feed_until(&f, s, 6000); /* segments 0-4 done, 2 to 4 listed */
    seq = media_sequence(st, "widen");
    CHECK_EQ_INT(seq, 2);
    seg_stream_set_params(s, &next);
    feed_until(&f, s, 7500);  /* one more segment, in the wider window */
    CHECK(media_sequence(st, "widen") >= seq);
    seg_stream_close(s);
    seg_hub_free(hub);
    CHECK(media_sequence(st, "widen") >= seq);
    free(f.data);
    unlink(flv);
    store_free(st);
}

static void test_segmenter_single_track(void)
{
    static const struct {
        const char *args, *codecs;
        int segments;
    } cases[] = {
        {"-f lavfi -i sine=frequency=440:sample_rate=44100 -t 6 -c:a aac", "\"mp4a.40.2\"", 3},
        {"-f lavfi -i testsrc2=size=160x120:rate=25 -t 6 -c:v libx264 -preset veryfast -g 25 "
         "-pix_fmt yuv420p",
         "\"avc1.64000b\"", 3},
    };
    char flv[96];
    struct seg_params p = {.segment_ms = 2000, .window_segments = 6};

    for (size_t i = 0; i < (size_t)ARRAY_LEN(cases); i++) {
        struct store *st = store_new();
        struct seg_hub *hub = NULL;
        struct seg_stream *s = NULL;
        struct flv_file f;
        enum store_kind kind;
        struct buf *b;
        int64_t last_ms = 0;
        int n = 0;
        double sum;

        tmp_flv(flv, sizeof(flv), "one");
        CHECK_EQ_INT(make_flv(flv, cases[i].args), 0);
        CHECK_EQ_INT(load_flv(flv, &f), 0);
        CHECK_EQ_INT(seg_hub_new(st, &hub), 0);
        CHECK_EQ_INT(seg_stream_open(hub, "one", &p, &s), 0);
        CHECK(feed_flv(&f, s, &last_ms) > 100);
        seg_stream_close(s);
        b = store_get(st, "one", "index.m3u8", &kind);
        CHECK(buf_has(b, cases[i].codecs));
        buf_unref(b);
        b = store_get(st, "one", "media.m3u8", &kind);
        sum = b ? sum_extinf(b, &n) : 0;
        CHECK_EQ_INT(n, cases[i].segments);
        CHECK(sum > 5.9 && sum < 6.1);
        buf_unref(b);
        free(f.data);
        unlink(flv);
        seg_hub_free(hub);
        store_free(st);
    }
}

/* An encoder keyframe interval longer than the target: the target duration
 * stays, segments are cut without a keyframe, and the playlist says so. */
static void test_segmenter_long_gop(void)
{
    char flv[96];
    struct seg_params p = {.segment_ms = 2000, .window_segments = 6};
    struct store *st = store_new();
    struct seg_hub *hub = NULL;
    struct seg_stream *s = NULL;
    struct flv_file f;
    enum store_kind kind;
    struct buf *b;
    int64_t last_ms = 0;
    int n = 0;
    char *text;

    tmp_flv(flv, sizeof(flv), "gop");
    CHECK_EQ_INT(make_flv(flv, "-f lavfi -i testsrc2=size=160x120:rate=25 -t 12 -c:v libx264 "
                               "-preset veryfast -g 100 -keyint_min 100 -sc_threshold 0 "
                               "-pix_fmt yuv420p"),
                 0);
    CHECK_EQ_INT(load_flv(flv, &f), 0);
    CHECK_EQ_INT(seg_hub_new(st, &hub), 0);
    CHECK_EQ_INT(seg_stream_open(hub, "gop", &p, &s), 0);
    CHECK(feed_flv(&f, s, &last_ms) > 100);
    seg_stream_close(s);
    b = store_get(st, "gop", "media.m3u8", &kind);
    CHECK(buf_has(b, "#EXT-X-TARGETDURATION:2\n"));
    CHECK(!buf_has(b, "#EXT-X-INDEPENDENT-SEGMENTS"));
    CHECK(b && sum_extinf(b, &n) > 11.9);
    CHECK_EQ_INT(n, 5);
    text = b ? strndup((const char *)b->data, b->len) : NULL;
    for (char *q = text; q && (q = strstr(q, "#EXTINF:")); q++)
        CHECK(atof(q + 8) < 2.5); /* rounds to the target at most */
    free(text);
    buf_unref(b);
    free(f.data);
    unlink(flv);
    seg_hub_free(hub);
    store_free(st);
}

static int count(const struct buf *b, const char *needle)
{
    int n = 0;
    size_t len = strlen(needle);

    for (const uint8_t *p = b ? b->data : NULL, *end = b ? b->data + b->len : NULL;
         p && (p = memmem(p, (size_t)(end - p), needle, len)); p += len)
        n++;
    return n;
}

/*
 * A publisher that leaves and comes back within the grace continues the same
 * playlist: no ENDLIST meanwhile, sequence numbers go on, one discontinuity,
 * a new init segment. A publish while one is attached takes over.
 */
static void test_segmenter_reconnect(void)
{
    char flv[96];
    struct seg_params p = {.segment_ms = 1000, .window_segments = 20, .part_ms = 333,
                           .reconnect_grace_ms = 30000};
    struct store *st = store_new();
    struct seg_hub *hub = NULL;
    struct seg_stream *s = NULL, *s2 = NULL;
    struct seg_frame fr = {0};
    struct flv_file f;
    enum store_kind kind;
    struct buf *b;
    int64_t last_ms = 0;
    int n1 = 0, n2 = 0, n3 = 0;

    tmp_flv(flv, sizeof(flv), "rec");
    CHECK_EQ_INT(make_flv(flv, "-f lavfi -i testsrc2=size=160x120:rate=25 -f lavfi -i "
                               "sine=frequency=440:sample_rate=48000 -t 4 -c:v libx264 "
                               "-preset veryfast -g 25 -pix_fmt yuv420p -c:a aac"),
                 0);
    CHECK_EQ_INT(load_flv(flv, &f), 0);
    CHECK_EQ_INT(seg_hub_new(st, &hub), 0);
    CHECK_EQ_INT(seg_stream_open(hub, "re", &p, &s), 0);
    CHECK(feed_flv(&f, s, &last_ms) > 100);
    seg_stream_close(s);
    /* in grace: still live, no ENDLIST, nothing hinted that will not come */
    CHECK_EQ_INT(store_live_count(st), 1);
    b = store_get(st, "re", "media.m3u8", &kind);
    CHECK(b && !buf_has(b, "#EXT-X-ENDLIST"));
    sum_extinf(b, &n1);
    CHECK_EQ_INT(n1, 4);
    CHECK(buf_has(b, "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part-"));
    CHECK(buf_has(b, "-4-0.m4s\"\n"));
    buf_unref(b);
    seg_hub_tick(hub); /* the grace has not passed */
    CHECK_EQ_INT(store_live_count(st), 1);

    /* back: the same timestamps again (an encoder restart) */
    CHECK_EQ_INT(seg_stream_open(hub, "re", &p, &s), 0);
    f.pos = 13;
    CHECK(feed_flv(&f, s, &last_ms) > 100);
    b = store_get(st, "re", "media.m3u8", &kind);
    sum_extinf(b, &n2);
    CHECK(n2 >= 7);
    CHECK_EQ_INT(count(b, "#EXT-X-DISCONTINUITY\n"), 1);
    CHECK_EQ_INT(count(b, "#EXT-X-MAP:"), 2);
    CHECK(buf_has(b, "#EXT-X-MEDIA-SEQUENCE:0\n"));
    CHECK(buf_has(b, "-4.m4s\n") && buf_has(b, "-0.mp4\"") && buf_has(b, "-1.mp4\""));
    buf_unref(b);

    /* a second publisher takes over at once; the first is refused from then on */
    CHECK_EQ_INT(seg_stream_open(hub, "re", &p, &s2), 0);
    fr.track = SEG_VIDEO;
    fr.data = (const uint8_t *)"\0\0\0\1\x65";
    fr.len = 5;
    CHECK_EQ_INT(seg_stream_frame(s, &fr), -ECANCELED);
    seg_stream_close(s);
    CHECK_EQ_INT(store_live_count(st), 1);
    f.pos = 13;
    CHECK(feed_flv(&f, s2, &last_ms) > 100);
    b = store_get(st, "re", "media.m3u8", &kind);
    sum_extinf(b, &n3);
    CHECK(n3 > n2);
    CHECK_EQ_INT(count(b, "#EXT-X-DISCONTINUITY\n"), 2);
    CHECK_EQ_INT(count(b, "#EXT-X-MAP:"), 3);
    buf_unref(b);
    seg_stream_close(s2);
    seg_hub_free(hub); /* ends what is in grace */
    CHECK_EQ_INT(store_live_count(st), 0);
    b = store_get(st, "re", "media.m3u8", &kind);
    CHECK(buf_has(b, "#EXT-X-ENDLIST"));
    buf_unref(b);
    free(f.data);
    unlink(flv);
    store_free(st);
}

/*
 * LL-HLS: whenever a media playlist lists a part, a blocking reload for that
 * part is answered at once - the last part of a segment too, which used to be
 * released only by the next segment's first part, one part later.
 */
static void test_segmenter_ll_progress(void)
{
    char flv[96];
    struct seg_params p = {.segment_ms = 1000, .window_segments = 10, .part_ms = 333};
    struct store *st = store_new();
    struct seg_hub *hub = NULL;
    struct seg_stream *s = NULL;
    struct flv_file f;
    enum store_kind kind;
    int64_t last_ms = 0;
    int frames = 0, parts = 0, seg_ends = 0, rc;
    char seen[128] = "";

    tmp_flv(flv, sizeof(flv), "ll");
    CHECK_EQ_INT(make_flv(flv, "-f lavfi -i testsrc2=size=160x120:rate=30 -f lavfi -i "
                               "sine=frequency=440:sample_rate=48000 -t 5 -c:v libx264 "
                               "-preset veryfast -bf 0 -g 30 -keyint_min 30 -sc_threshold 0 "
                               "-pix_fmt yuv420p -c:a aac -b:a 64k"),
                 0);
    CHECK_EQ_INT(load_flv(flv, &f), 0);
    CHECK_EQ_INT(seg_hub_new(st, &hub), 0);
    CHECK_EQ_INT(seg_stream_open(hub, "ll", &p, &s), 0);
    while ((rc = feed_tag(&f, s, &last_ms, &frames)) > 0) {
        struct buf *b = store_get(st, "ll", "media.m3u8", &kind);
        char *text = b ? strndup((const char *)b->data, b->len) : NULL;
        char *last = NULL, uri[128];
        unsigned long long msn;
        unsigned idx;

        for (char *q = text; q && (q = strstr(q, "#EXT-X-PART:")); q++)
            last = q;
        if (last && sscanf(strstr(last, "URI=\"") + 5, "%127[^\"]", uri) == 1 &&
            strcmp(uri, seen) != 0) {
            snprintf(seen, sizeof(seen), "%s", uri);
            CHECK(sscanf(strrchr(uri, '-'), "-%u.m4s", &idx) == 1);
            *strrchr(uri, '-') = '\0';
            CHECK(sscanf(strrchr(uri, '-') + 1, "%llu", &msn) == 1);
            CHECK_EQ_INT(store_check(st, "ll", STORE_KEY(msn, idx)), STORE_WAIT_READY);
            parts++;
            if (strstr(last, "#EXTINF:"))
                seg_ends++; /* the newest part ends a segment */
        }
        free(text);
        buf_unref(b);
    }
    CHECK_EQ_INT(rc, 0);
    CHECK(parts >= 12 && seg_ends >= 3);
    seg_stream_close(s);
    free(f.data);
    unlink(flv);
    seg_hub_free(hub);
    store_free(st);
}

/* ---- timestamps (clock.c) -------------------------------------------------- */

static void test_clock_jumps(void)
{
    struct seg_clock c = {0};
    bool j;
    int64_t out = 0;

    seg_clock_start(&c, 10000, 4000);
    CHECK_EQ_INT(c.fwd_jump_ms, 5000);
    /* video from 5000 ms, audio starting 300 ms earlier keeps its offset */
    CHECK_EQ_INT(seg_clock_map(&c, SEG_VIDEO, 5000, &j), 10000);
    CHECK(!j);
    CHECK_EQ_INT(seg_clock_map(&c, SEG_AUDIO, 4700, &j), 9700);
    CHECK(!j);
    for (int i = 1; i < 30; i++)
        out = seg_clock_map(&c, SEG_VIDEO, 5000 + 40 * i, &j);
    CHECK_EQ_INT(out, 10000 + 40 * 29);
    /* back 10 s: continues where expected, one interval on */
    out = seg_clock_map(&c, SEG_VIDEO, 5000 + 40 * 30 - 10000, &j);
    CHECK(j);
    CHECK_EQ_INT(out, 10000 + 40 * 30);
    CHECK_EQ_INT(c.last_jump_ms, -10000); /* against the expected time */
    out = seg_clock_map(&c, SEG_VIDEO, 5000 + 40 * 31 - 10000, &j);
    CHECK(!j);
    CHECK_EQ_INT(out, 10000 + 40 * 31);
    /* forward one hour */
    out = seg_clock_map(&c, SEG_VIDEO, 5000 + 40 * 32 - 10000 + 3600000, &j);
    CHECK(j);
    CHECK_EQ_INT(out, 10000 + 40 * 32);
    /* 4 s forward is a real gap, not a jump */
    out = seg_clock_map(&c, SEG_VIDEO, 5000 + 40 * 32 - 10000 + 3600000 + 4000, &j);
    CHECK(!j);
    CHECK_EQ_INT(c.jumps, 2);
    /* a second track's first frame far away is re-based onto the other track */
    {
        struct seg_clock d = {0};

        seg_clock_start(&d, 0, 0);
        seg_clock_map(&d, SEG_VIDEO, 100, &j);
        CHECK_EQ_INT(seg_clock_map(&d, SEG_AUDIO, 100 + 60000, &j), 0);
        CHECK(j);
    }
}

static void test_clock_video_fixups(void)
{
    /* duplicates and steps back: never 0 or 1 ms frames, back on the input after */
    static const int64_t in[] = {0, 40, 80, 80, 120, 100, 140, 180, 220, 260, 300};
    struct seg_clock c = {0};
    int64_t prev = -1, pts, dts = 0;

    for (size_t i = 0; i < ARRAY_LEN(in); i++) {
        dts = seg_clock_video_dts(&c, in[i], 0, &pts);
        if (prev >= 0)
            CHECK(dts - prev >= 20);
        CHECK(pts >= dts);
        prev = dts;
    }
    CHECK_EQ_INT(c.fixups, 2);
    CHECK_EQ_INT(dts, 300); /* caught up with the input */

    /* all zero: one good interval each */
    memset(&c, 0, sizeof(c));
    for (int i = 0; i < 5; i++)
        dts = seg_clock_video_dts(&c, 0, 0, &pts);
    CHECK_EQ_INT(dts, 4 * 33);

    /* negative composition offsets: decode earlier, presentation kept */
    memset(&c, 0, sizeof(c));
    dts = seg_clock_video_dts(&c, 1000, -80, &pts);
    CHECK_EQ_INT(pts, 920);
    CHECK(dts <= pts);
    dts = seg_clock_video_dts(&c, 1040, 40, &pts);
    CHECK_EQ_INT(pts, 1080);
    CHECK_EQ_INT(dts, 960);
}

static void test_audio_place(void)
{
    int64_t next = 0, at = 0;
    bool have = false;
    int written = 0, dropped = 0;

    /* FLV times advancing 20 ms per 21.33 ms frame: drop one now and then,
     * never more than a frame apart, every frame a full frame long */
    for (int i = 0; i < 1000; i++) {
        int64_t flv = 20 * i;

        if (seg_audio_place(&next, &have, flv, true, 48000, 1024, &at)) {
            CHECK(llabs(at * 1000 / 48000 - flv) <= 22);
            written++;
        } else {
            dropped++;
        }
    }
    CHECK(dropped > 50 && dropped < 70);
    CHECK_EQ_INT(written + dropped, 1000);
    /* behind by more than a frame: a gap, then on the FLV clock */
    CHECK_EQ_INT(seg_audio_place(&next, &have, 20 * 1000 + 500, true, 48000, 1024, &at), 1);
    CHECK_EQ_INT(at, (20 * 1000 + 500) * 48);
    /* no time information (the same FLV time again): the samples decide */
    CHECK_EQ_INT(seg_audio_place(&next, &have, 20 * 1000 + 500, false, 48000, 1024, &at), 1);
    CHECK_EQ_INT(at, (20 * 1000 + 500) * 48 + 1024);
}

int main(int argc, char **argv)
{
    data_dir = argc > 1 ? argv[1] : "tests/data";
    seg_global_init();
    RUN(test_avc_config);
    RUN(test_aac_config);
    RUN(test_playlist_golden);
    RUN(test_playlist_ll_golden);
    RUN(test_segmenter_av);
    RUN(test_segmenter_single_track);
    RUN(test_segmenter_long_gop);
    RUN(test_segmenter_ll_progress);
    RUN(test_segmenter_reload_params);
    RUN(test_segmenter_reload_widens_window);
    RUN(test_segmenter_reconnect);
    RUN(test_clock_jumps);
    RUN(test_clock_video_fixups);
    RUN(test_audio_place);
    return harness_done();
}
