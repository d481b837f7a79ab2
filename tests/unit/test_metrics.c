/*
 * metrics: ingest analysis (rates, keyframe interval, health warnings),
 * viewers, the stream table and the Prometheus rendering.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "../../metrics/metrics.h"
#include "harness.h"

/* Feeds SECONDS of a 30 fps video + 43 fps audio stream; keyframes every GOP_MS. */
static unsigned feed(struct mx_ingest *in, int64_t from_ms, int seconds, int gop_ms,
                     size_t vbytes, int64_t audio_offset_ms, int64_t *arrival_extra)
{
    unsigned raised = 0;
    int64_t end = from_ms + (int64_t)seconds * 1000;
    int64_t v = from_ms, a = from_ms;

    while (v < end || a < end) {
        struct mx_frame f = {0};

        if (v <= a) {
            f = (struct mx_frame){.video = true, .keyframe = (v - from_ms) % gop_ms < 33,
                                  .dts_ms = v, .bytes = vbytes, .arrival_ms = v + 5000};
            v += 1000 / 30 + ((v / 33) % 3 == 0); /* 33/34 ms: about 30 fps */
        } else {
            f = (struct mx_frame){.video = false, .keyframe = true, .dts_ms = a + audio_offset_ms,
                                  .bytes = 300, .arrival_ms = a + 5000};
            a += 23;
        }
        if (arrival_extra)
            f.arrival_ms += *arrival_extra;
        raised |= mx_ingest_frame(in, &f);
    }
    return raised;
}

static void test_rates_and_keyint(void)
{
    struct mx_ingest in;
    unsigned raised;
    double bps, fps;

    mx_ingest_init(&in, 2000);
    raised = feed(&in, 0, 12, 1000, 4000, 0, NULL);
    CHECK_EQ_INT(raised, 0);
    CHECK_EQ_INT(in.keyint_ms / 100, 10); /* ~1 s */
    bps = mx_ingest_bitrate_bps(&in);
    fps = mx_ingest_framerate(&in);
    /* video 30 x 4000 B + audio ~43.5 x 300 B per second */
    CHECK(bps > 0.95 * (30 * 4000 + 43 * 300) * 8 && bps < 1.05 * (30 * 4000 + 44 * 300) * 8);
    CHECK(fps > 29 && fps < 31);
}

static void test_gop_warning(void)
{
    struct mx_ingest in;
    unsigned raised;

    mx_ingest_init(&in, 2000);
    raised = feed(&in, 0, 10, 4000, 4000, 0, NULL);
    CHECK(raised & MX_HEALTH_GOP);
    CHECK(strstr(in.why[0], "4.0 s") != NULL);
    CHECK(strstr(in.why[0], "Keyframe Interval") != NULL);
    /* once only */
    CHECK_EQ_INT(feed(&in, 10000, 10, 4000, 4000, 0, NULL) & MX_HEALTH_GOP, 0);
    CHECK(in.health & MX_HEALTH_GOP);
}

static void test_swing_warning(void)
{
    struct mx_ingest in;

    mx_ingest_init(&in, 2000);
    CHECK_EQ_INT(feed(&in, 0, 12, 1000, 4000, 0, NULL) & MX_HEALTH_BITRATE, 0);
    CHECK_EQ_INT(feed(&in, 12000, 10, 1000, 4200, 0, NULL) & MX_HEALTH_BITRATE, 0);
    CHECK(feed(&in, 22000, 12, 1000, 12000, 0, NULL) & MX_HEALTH_BITRATE);
    CHECK(strstr(in.why[1], "kbit/s") != NULL);
}

static void test_drift_warning(void)
{
    struct mx_ingest in;

    mx_ingest_init(&in, 2000);
    CHECK_EQ_INT(feed(&in, 0, 6, 1000, 4000, 50, NULL) & MX_HEALTH_DRIFT, 0);
    mx_ingest_init(&in, 2000);
    CHECK(feed(&in, 0, 6, 1000, 4000, -400, NULL) & MX_HEALTH_DRIFT);
}

static void test_backwards_and_behind(void)
{
    struct mx_ingest in;
    struct mx_frame f = {.video = true, .keyframe = true, .dts_ms = 5000, .bytes = 10,
                         .arrival_ms = 100};
    int64_t late = 0;

    mx_ingest_init(&in, 2000);
    CHECK_EQ_INT(mx_ingest_frame(&in, &f), 0);
    f.dts_ms = 4000;
    f.arrival_ms = 133;
    CHECK(mx_ingest_frame(&in, &f) & MX_HEALTH_BACKWARDS);
    CHECK_EQ_INT(mx_ingest_frame(&in, &f) & MX_HEALTH_BACKWARDS, 0);

    mx_ingest_init(&in, 2000);
    CHECK_EQ_INT(feed(&in, 0, 4, 1000, 4000, 0, &late) & MX_HEALTH_BEHIND, 0);
    late = 1500; /* the next frames come 1.5 s late */
    CHECK(feed(&in, 4000, 2, 1000, 4000, 0, &late) & MX_HEALTH_BEHIND);
    CHECK(in.behind_ms >= 1500);
}

static void test_viewers(void)
{
    struct mx_stream *s;
    int64_t now = 1000000;
    uint64_t no;

    mx_set_enabled(true);
    s = mx_stream_publish("show", "127.0.0.1:5555", 2000, &no);
    CHECK(s != NULL);
    CHECK(mx_stream_find("show") == s);
    CHECK(mx_stream_find("other") == NULL);
    CHECK_EQ_INT(mx_stream_viewers(s, now), 0);
    for (int rep = 0; rep < 5; rep++)
        for (uint64_t a = 1; a <= 3; a++)
            mx_stream_viewer(s, a * 0x9e3779b97f4a7c15ull, now + rep);
    CHECK_EQ_INT(mx_stream_viewers(s, now + 10), 3);
    /* 30 s later they are gone; a new one reuses a stale slot */
    CHECK_EQ_INT(mx_stream_viewers(s, now + 31000), 0);
    mx_stream_viewer(s, 2 * 0x9e3779b97f4a7c15ull + 7, now + 31000);
    CHECK_EQ_INT(mx_stream_viewers(s, now + 31001), 1);
    /* many distinct viewers are all counted */
    for (uint64_t a = 0; a < 2000; a++)
        mx_stream_viewer(s, (a + 100) * 0x9e3779b97f4a7c15ull, now + 40000);
    CHECK_EQ_INT(mx_stream_viewers(s, now + 40000), 2001); /* + the one above */
}

static void test_stream_info(void)
{
    uint64_t no, no2;
    struct mx_stream *s = mx_stream_publish("info", "10.0.0.1:1", 2000, &no);
    struct mx_stream_info info;
    int64_t since;

    CHECK(s != NULL);
    mx_stream_encoder(s, "Lavf60");
    mx_segmenter_media("info", "avc1.64001f,mp4a.40.2", 1280, 720);
    mx_segmenter_part("info", 40);
    mx_segmenter_segment("info", 7, 40);
    mx_stream_served(s, 1234);
    mx_stream_error(s, "bad %s", "thing");
    mx_stream_info(s, &info);
    CHECK(info.live);
    CHECK_EQ_STR(info.encoder, "Lavf60");
    CHECK_EQ_STR(info.peer, "10.0.0.1:1");
    CHECK_EQ_STR(info.codecs, "avc1.64001f,mp4a.40.2");
    CHECK_EQ_INT(info.width, 1280);
    CHECK_EQ_INT(info.parts, 1);
    CHECK_EQ_INT(info.segments, 1);
    CHECK_EQ_INT(info.msn, 7);
    CHECK_EQ_INT(info.bytes_out, 1234);
    CHECK_EQ_STR(info.last_error, "bad thing");
    CHECK(info.publishing);
    since = info.live_since_ms;

    /* The publisher drops: the playlist stays live for its grace, counters kept. */
    mx_stream_unpublish(s, no, "test");
    mx_stream_info(s, &info);
    CHECK(info.live);
    CHECK(!info.publishing);
    CHECK_EQ_INT(info.segments, 1);

    /* It comes back within the grace: the same live stream, a new publisher. */
    CHECK(mx_stream_publish("info", "10.0.0.2:2", 2000, &no2) == s);
    CHECK(no2 != no);
    mx_segmenter_segment("info", 8, 40);
    mx_stream_info(s, &info);
    CHECK(info.live && info.publishing);
    CHECK_EQ_INT(info.live_since_ms, since);
    CHECK_EQ_INT(info.segments, 2);
    CHECK_EQ_INT(info.msn, 8);
    CHECK_EQ_STR(info.peer, "10.0.0.2:2");
    CHECK_EQ_STR(info.encoder, "");

    /* A late unpublish of the publisher taken over changes nothing. */
    mx_stream_unpublish(s, no, "taken over");
    mx_stream_info(s, &info);
    CHECK(info.publishing);

    /* The playlist ends: not live; the next publish starts afresh. */
    mx_stream_unpublish(s, no2, "test");
    mx_segmenter_ended("info");
    mx_stream_info(s, &info);
    CHECK(!info.live && !info.publishing);
    CHECK(mx_stream_publish("info", "10.0.0.3:3", 2000, &no) == s);
    mx_stream_info(s, &info);
    CHECK(info.live);
    CHECK_EQ_INT(info.segments, 0);
    CHECK_EQ_INT(info.msn, 0);
}

static void test_disabled(void)
{
    uint64_t no;

    mx_set_enabled(false);
    CHECK(mx_stream_publish("off", "x", 2000, &no) == NULL);
    CHECK(mx_stream_find("show") == NULL);
    mx_set_enabled(true);
    CHECK(mx_stream_find("show") != NULL);
    CHECK(mx_stream_find("off") == NULL);
}

static void test_prometheus(void)
{
    struct bytes out = {0};
    struct mx_extra x = {.uptime_s = 12.5, .streams_live = 1, .blocked_requests = 2};
    char *text;

    mx_http_response(200, 300);
    mx_http_response(404, 3000000);
    mx_http_response(200, 9000000);
    mx_reject(MX_REJECT_BUSY);
    CHECK_EQ_INT(mx_render_prometheus(&out, &x), 0);
    CHECK_EQ_INT(bytes_append(&out, "", 1), 0);
    text = (char *)out.data;
    CHECK(strstr(text, "# TYPE onair_streams_live gauge\nonair_streams_live 1\n") != NULL);
    CHECK(strstr(text, "onair_http_responses_total{code=\"2xx\"} 2\n") != NULL);
    CHECK(strstr(text, "onair_http_responses_total{code=\"4xx\"} 1\n") != NULL);
    CHECK(strstr(text, "onair_publish_rejects_total{reason=\"busy\"} 1\n") != NULL);
    CHECK(strstr(text, "onair_http_response_seconds_bucket{le=\"0.00025\"} 0\n") != NULL);
    CHECK(strstr(text, "onair_http_response_seconds_bucket{le=\"0.0005\"} 1\n") != NULL);
    CHECK(strstr(text, "onair_http_response_seconds_bucket{le=\"5\"} 2\n") != NULL);
    CHECK(strstr(text, "onair_http_response_seconds_bucket{le=\"+Inf\"} 3\n") != NULL);
    CHECK(strstr(text, "onair_http_response_seconds_count 3\n") != NULL);
    CHECK(strstr(text, "onair_stream_viewers{stream=\"show\"} ") != NULL);
    CHECK(strstr(text, "onair_segment_availability_seconds_count{kind=\"part\"} 1\n") != NULL);
    /* every sample line's family has HELP and TYPE before it */
    for (char *line = text; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        char fam[128], help[160];
        size_t n = strcspn(line, "{ ");

        if (line[0] == '#')
            continue;
        snprintf(fam, sizeof(fam), "%.*s", (int)n, line);
        for (const char *suf = NULL, *sufs[] = {"_bucket", "_sum", "_count"}, **p = sufs;
             p < sufs + 3; p++) {
            size_t l = strlen(*p), fl = strlen(fam);

            (void)suf;
            if (fl > l && strcmp(fam + fl - l, *p) == 0 &&
                strstr(text, "_seconds histogram") && strncmp(fam, "onair_segment_avail", 19) == 0)
                fam[fl - l] = '\0';
            else if (fl > l && strcmp(fam + fl - l, *p) == 0 &&
                     strncmp(fam, "onair_http_response_seconds", 27) == 0)
                fam[fl - l] = '\0';
        }
        snprintf(help, sizeof(help), "# HELP %s ", fam);
        if (!strstr(text, help)) {
            fprintf(stderr, "no HELP for %s\n", fam);
            CHECK(0);
        }
    }
    bytes_reset(&out);
}

int main(void)
{
    RUN(test_rates_and_keyint);
    RUN(test_gop_warning);
    RUN(test_swing_warning);
    RUN(test_drift_warning);
    RUN(test_backwards_and_behind);
    RUN(test_viewers);
    RUN(test_stream_info);
    RUN(test_disabled);
    RUN(test_prometheus);
    mx_shutdown();
    return harness_done();
}
