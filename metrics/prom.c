/*
 * Prometheus text exposition format 0.0.4: every family with # HELP and
 * # TYPE, one block per family, label values escaped (\\, \", \n).
 * https://prometheus.io/docs/instrumenting/exposition_formats/
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "metrics_internal.h"

#define P(...)                                                                                   \
    do {                                                                                         \
        if (bytes_printf(out, __VA_ARGS__) < 0)                                                  \
            return -ENOMEM;                                                                      \
    } while (0)

static int family(struct bytes *out, const char *name, const char *type, const char *help)
{
    P("# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
    return 0;
}

/* Appends V with \\, \" and \n escaped (label value rules). */
static int label_value(struct bytes *out, const char *v)
{
    for (; *v; v++) {
        const char *esc = *v == '\\' ? "\\\\" : *v == '"' ? "\\\"" : *v == '\n' ? "\\n" : NULL;
        int rc = esc ? bytes_append(out, esc, 2) : bytes_append(out, v, 1);

        if (rc < 0)
            return rc;
    }
    return 0;
}

static int hist(struct bytes *out, const char *name, const char *label, const struct mx_hist *h)
{
    uint64_t cum = 0;
    const char *sep = label[0] ? "," : "";

    for (int i = 0; i <= h->nbounds; i++) {
        cum += atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
        if (i < h->nbounds)
            P("%s_bucket{%s%sle=\"%g\"} %" PRIu64 "\n", name, label, sep,
              (double)h->bounds_us[i] / 1e6, cum);
        else
            P("%s_bucket{%s%sle=\"+Inf\"} %" PRIu64 "\n", name, label, sep, cum);
    }
    /* count from the buckets: a concurrent observe never makes +Inf differ from it */
    P("%s_sum%s%s%s %.6f\n", name, label[0] ? "{" : "", label, label[0] ? "}" : "",
      (double)atomic_load_explicit(&h->sum_us, memory_order_relaxed) / 1e6);
    P("%s_count%s%s%s %" PRIu64 "\n", name, label[0] ? "{" : "", label, label[0] ? "}" : "", cum);
    return 0;
}

struct per_stream {
    struct bytes *out;
    int which;
    int64_t now_ms;
    int rc;
};

/* One sample per stream entry for family WHICH. */
static void stream_sample(void *arg, struct mx_stream *s)
{
    struct per_stream *ps = arg;
    static const char *const names[] = {
        "onair_stream_live",          "onair_stream_viewers",
        "onair_stream_bytes_in_total", "onair_stream_bytes_out_total",
        "onair_stream_publishes_total", "onair_stream_input_bytes_per_second",
        "onair_stream_segments_total", "onair_stream_parts_total",
    };
    struct mx_stream_info info;
    double v;

    if (ps->rc < 0)
        return;
    switch (ps->which) {
    case 0:
        v = atomic_load(&s->live);
        break;
    case 1:
        v = mx_stream_viewers(s, ps->now_ms);
        break;
    case 2:
        v = (double)atomic_load_explicit(&s->bytes_in, memory_order_relaxed);
        break;
    case 3:
        v = (double)atomic_load_explicit(&s->bytes_out, memory_order_relaxed);
        break;
    case 4:
        v = (double)atomic_load_explicit(&s->publishes, memory_order_relaxed);
        break;
    case 5:
        mx_stream_info(s, &info);
        v = info.publishing ? info.bitrate_bps / 8 : 0;
        break;
    case 6:
        v = (double)atomic_load_explicit(&s->segments, memory_order_relaxed);
        break;
    default:
        v = (double)atomic_load_explicit(&s->parts, memory_order_relaxed);
        break;
    }
    if (bytes_printf(ps->out, "%s{stream=\"", names[ps->which]) < 0 ||
        label_value(ps->out, s->name) < 0 || bytes_printf(ps->out, "\"} %.17g\n", v) < 0)
        ps->rc = -ENOMEM;
}

static int stream_families(struct bytes *out)
{
    static const struct {
        const char *name, *type, *help;
    } fams[] = {
        {"onair_stream_live", "gauge",
         "1 while the stream's playlist is live: a publisher, or its reconnect grace."},
        {"onair_stream_viewers", "gauge",
         "Distinct client addresses that fetched a playlist in the last 30 s."},
        {"onair_stream_bytes_in_total", "counter", "Media payload bytes received (RTMP)."},
        {"onair_stream_bytes_out_total", "counter", "Body bytes served over HTTP."},
        {"onair_stream_publishes_total", "counter", "Publishes accepted for the stream name."},
        {"onair_stream_input_bytes_per_second", "gauge",
         "Input rate (media payload) measured over the last 10 s of media."},
        {"onair_stream_segments_total", "counter", "Media segments published (this publish)."},
        {"onair_stream_parts_total", "counter", "LL-HLS parts published (this publish)."},
    };
    struct per_stream ps = {out, 0, time_mono_ms(), 0};

    for (int i = 0; i < (int)ARRAY_SIZE(fams); i++) {
        if (family(out, fams[i].name, fams[i].type, fams[i].help) < 0)
            return -ENOMEM;
        ps.which = i;
        mx_stream_foreach(stream_sample, &ps);
        if (ps.rc < 0)
            return ps.rc;
    }
    return 0;
}

static int counter(struct bytes *out, const char *name, const char *help, uint64_t v)
{
    if (family(out, name, "counter", help) < 0)
        return -ENOMEM;
    P("%s %" PRIu64 "\n", name, v);
    return 0;
}

static int gauge(struct bytes *out, const char *name, const char *help, double v)
{
    if (family(out, name, "gauge", help) < 0)
        return -ENOMEM;
    P("%s %.17g\n", name, v);
    return 0;
}

static int process_families(struct bytes *out, const struct mx_extra *x)
{
    if (family(out, "onair_build_info", "gauge", "Version of the running onair (always 1).") < 0)
        return -ENOMEM;
    P("onair_build_info{version=\"%s\"} 1\n", ONAIR_VERSION);
    if (gauge(out, "onair_uptime_seconds", "Seconds since the server started.", x->uptime_s) < 0 ||
        gauge(out, "onair_streams_live", "Streams with a publisher.", x->streams_live) < 0 ||
        gauge(out, "onair_rtmp_connections", "Open RTMP connections.",
              (double)mx_gauge_value(MX_RTMP_CONNECTIONS)) < 0 ||
        gauge(out, "onair_http_connections", "Open HTTP connections (public port).",
              (double)mx_gauge_value(MX_HTTP_CONNECTIONS)) < 0 ||
        gauge(out, "onair_http_blocked_requests",
              "LL-HLS requests held until their part exists.", (double)x->blocked_requests) < 0 ||
        counter(out, "onair_publishes_total", "Publishes accepted.",
                mx_counter_value(MX_PUBLISHES)) < 0 ||
        counter(out, "onair_rtmp_bytes_in_total", "Media payload bytes received over RTMP.",
                mx_counter_value(MX_RTMP_BYTES_IN)) < 0 ||
        counter(out, "onair_http_requests_total", "HTTP requests answered (public port).",
                mx_counter_value(MX_HTTP_REQUESTS)) < 0 ||
        counter(out, "onair_http_bytes_out_total", "HTTP body bytes queued in 200 responses.",
                mx_counter_value(MX_HTTP_BYTES_OUT)) < 0 ||
        counter(out, "onair_kicks_total", "Publishers disconnected through the admin API.",
                mx_counter_value(MX_KICKS)) < 0 ||
        counter(out, "onair_thumbnail_requests_total", "Requests for thumb.jpg.",
                mx_counter_value(MX_THUMB_REQUESTS)) < 0 ||
        counter(out, "onair_thumbnails_encoded_total",
                "Thumbnails decoded, scaled and encoded (work done only while asked for).",
                mx_counter_value(MX_THUMB_ENCODED)) < 0 ||
        counter(out, "onair_thumbnail_failures_total", "Thumbnails that could not be made.",
                mx_counter_value(MX_THUMB_FAILED)) < 0 ||
        counter(out, "onair_health_warnings_total", "Ingest health warnings raised.",
                mx_counter_value(MX_HEALTH_WARNINGS)) < 0 ||
        counter(out, "onair_record_segments_total", "Segments written to recordings.",
                mx_counter_value(MX_RECORD_SEGMENTS)) < 0 ||
        counter(out, "onair_record_bytes_total", "Bytes of the segments written to recordings.",
                mx_counter_value(MX_RECORD_BYTES)) < 0 ||
        counter(out, "onair_record_failures_total",
                "Recordings stopped by an error (writer queue full, disk full or failing).",
                mx_counter_value(MX_RECORD_FAILURES)) < 0 ||
        counter(out, "onair_replays_total", "Replay MP4s made.",
                mx_counter_value(MX_RECORD_REPLAYS)) < 0)
        return -ENOMEM;
    if (family(out, "onair_http_responses_total", "counter",
               "HTTP responses (public port) by status class.") < 0)
        return -ENOMEM;
    for (int i = 0; i < 5; i++)
        P("onair_http_responses_total{code=\"%dxx\"} %" PRIu64 "\n", i + 1,
          mx_counter_value((enum mx_counter)(MX_HTTP_1XX + i)));
    if (family(out, "onair_publish_rejects_total", "counter",
               "Publishes or connections refused, by reason.") < 0)
        return -ENOMEM;
    for (int i = 0; i < MX_REJECT_COUNT; i++)
        P("onair_publish_rejects_total{reason=\"%s\"} %" PRIu64 "\n",
          mx_reject_name((enum mx_reject)i), mx_reject_value((enum mx_reject)i));
    return 0;
}

int mx_render_prometheus(struct bytes *out, const struct mx_extra *x)
{
    if (process_families(out, x) < 0 || stream_families(out) < 0)
        return -ENOMEM;
    if (family(out, "onair_segment_availability_seconds", "histogram",
               "From the last frame of a part or segment arriving to its publication in the "
               "store.") < 0 ||
        hist(out, "onair_segment_availability_seconds", "kind=\"part\"",
             mx_hist_get(MX_H_PART)) < 0 ||
        hist(out, "onair_segment_availability_seconds", "kind=\"segment\"",
             mx_hist_get(MX_H_SEGMENT)) < 0)
        return -ENOMEM;
    if (family(out, "onair_http_response_seconds", "histogram",
               "From a request's first handler call to its completion (public port; held "
               "LL-HLS requests include their wait).") < 0 ||
        hist(out, "onair_http_response_seconds", "", mx_hist_get(MX_H_HTTP)) < 0)
        return -ENOMEM;
    return 0;
}
