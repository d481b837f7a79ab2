/*
 * Ingest analysis: what the publisher actually sends, measured frame by frame
 * on the RTMP loop (no locks, no allocation), and the health warnings raised
 * from it, each at most once per publish:
 *
 *   keyframe_interval  a keyframe interval above the segment target
 *   bitrate_swing      the last 10 s of media carried more than 2x (or less
 *                      than half) the bytes of the 10 s before
 *   av_drift           audio and video timestamps run apart by > 200 ms
 *                      (each track's dts - arrival, smoothed, compared)
 *   timestamps_backwards  a track's dts went down
 *   publisher_behind   frames arrive more than 1 s later than their media
 *                      time says, against the best seen (bursts)
 *
 * Rates use media time (dts) in one-second buckets, so they measure the
 * stream, not the network's pacing.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "metrics.h"

#define KEYINT_MIN_SAMPLES 1
#define DRIFT_SETTLE_MS 3000
#define SWING_WINDOW_S 10

const char *mx_health_code(int i)
{
    static const char *const codes[MX_HEALTH_COUNT] = {
        "keyframe_interval", "bitrate_swing", "av_drift", "timestamps_backwards",
        "publisher_behind"};

    return i >= 0 && i < MX_HEALTH_COUNT ? codes[i] : "?";
}

void mx_ingest_init(struct mx_ingest *in, int segment_ms)
{
    memset(in, 0, sizeof(*in));
    in->segment_ms = segment_ms;
    in->cur_sec = INT64_MIN;
}

/* Raises warning BIT with a message, once. Returns BIT if newly raised. */
static unsigned raise_once(struct mx_ingest *in, unsigned bit, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static unsigned raise_once(struct mx_ingest *in, unsigned bit, const char *fmt, ...)
{
    va_list ap;
    int i = 0;

    if (in->health & bit)
        return 0;
    while ((1u << i) != bit)
        i++;
    va_start(ap, fmt);
    vsnprintf(in->why[i], sizeof(in->why[i]), fmt, ap);
    va_end(ap);
    in->health |= bit;
    return bit;
}

/* Sum of bytes (and video frames) over complete seconds [from, to). */
static void window(const struct mx_ingest *in, int64_t from, int64_t to, uint64_t *bytes,
                   int *frames, int *secs)
{
    *bytes = 0;
    *frames = 0;
    *secs = 0;
    for (int i = 0; i < MX_RATE_SLOTS; i++)
        if (in->rate[i].sec >= from && in->rate[i].sec < to && in->rate[i].sec != INT64_MIN) {
            *bytes += in->rate[i].bytes;
            *frames += in->rate[i].frames;
            (*secs)++;
        }
}

/* The rate window ends at the last complete second; seconds with no data count as 0 bytes. */
static int window_secs(const struct mx_ingest *in)
{
    int64_t first = in->first_dts / 1000;
    int64_t avail = in->cur_sec - first; /* complete seconds seen */

    if (avail <= 0)
        return 0;
    return avail < SWING_WINDOW_S ? (int)avail : SWING_WINDOW_S;
}

double mx_ingest_bitrate_bps(const struct mx_ingest *in)
{
    uint64_t bytes;
    int frames, secs, n = window_secs(in);

    if (n <= 0)
        return 0;
    window(in, in->cur_sec - n, in->cur_sec, &bytes, &frames, &secs);
    return (double)bytes * 8.0 / n;
}

double mx_ingest_framerate(const struct mx_ingest *in)
{
    uint64_t bytes;
    int frames, secs, n = window_secs(in);

    if (n <= 0)
        return 0;
    window(in, in->cur_sec - n, in->cur_sec, &bytes, &frames, &secs);
    return (double)frames / n;
}

/* A new second of media time began: compare the last 10 s with the 10 before. */
static unsigned check_swing(struct mx_ingest *in)
{
    uint64_t now_b, before_b;
    int f, s1, s2;

    if (in->cur_sec - in->first_dts / 1000 < 2 * SWING_WINDOW_S + 1)
        return 0;
    window(in, in->cur_sec - SWING_WINDOW_S, in->cur_sec, &now_b, &f, &s1);
    window(in, in->cur_sec - 2 * SWING_WINDOW_S, in->cur_sec - SWING_WINDOW_S, &before_b, &f,
           &s2);
    if (before_b == 0 || now_b == 0)
        return 0;
    if (now_b > 2 * before_b || before_b > 2 * now_b)
        return raise_once(in, MX_HEALTH_BITRATE,
                          "input bitrate swung from %.0f to %.0f kbit/s within 10 s: use "
                          "constant bitrate (OBS: Rate Control CBR)",
                          (double)before_b * 8 / SWING_WINDOW_S / 1000,
                          (double)now_b * 8 / SWING_WINDOW_S / 1000);
    return 0;
}

/* Puts F's bytes into its second's bucket; rolls to a new second first. */
static unsigned account(struct mx_ingest *in, const struct mx_frame *f)
{
    int64_t sec = f->dts_ms >= 0 ? f->dts_ms / 1000 : (f->dts_ms - 999) / 1000;
    unsigned raised = 0;
    int slot;

    if (sec > in->cur_sec) {
        if (in->cur_sec != INT64_MIN && sec - in->cur_sec > MX_RATE_SLOTS) {
            memset(in->rate, 0, sizeof(in->rate)); /* a jump forward: start over */
            in->first_dts = f->dts_ms;
        }
        in->cur_sec = sec;
        slot = (int)(((sec % MX_RATE_SLOTS) + MX_RATE_SLOTS) % MX_RATE_SLOTS);
        if (in->rate[slot].sec != sec) {
            in->rate[slot].sec = sec;
            in->rate[slot].bytes = 0;
            in->rate[slot].frames = 0;
        }
        raised |= check_swing(in);
    }
    slot = (int)(((sec % MX_RATE_SLOTS) + MX_RATE_SLOTS) % MX_RATE_SLOTS);
    if (in->rate[slot].sec == sec) {
        in->rate[slot].bytes += f->bytes;
        in->rate[slot].frames += f->video;
    }
    return raised;
}

static unsigned check_keyframe(struct mx_ingest *in, const struct mx_frame *f)
{
    int64_t d;

    if (!f->video || !f->keyframe)
        return 0;
    if (!in->have_key) {
        in->have_key = true;
        in->last_key_dts = f->dts_ms;
        return 0;
    }
    d = f->dts_ms - in->last_key_dts;
    in->last_key_dts = f->dts_ms;
    if (d <= 0)
        return 0;
    in->keyint_ms = d;
    in->keyints++;
    if (in->segment_ms > 0 && in->keyints >= KEYINT_MIN_SAMPLES && d > in->segment_ms + 50)
        return raise_once(in, MX_HEALTH_GOP,
                          "keyframe interval %.1f s exceeds the %.1f s segment target: segments "
                          "grow to %.1f s and latency with them; set the encoder's keyframe "
                          "interval to 1 s (OBS: Output > Keyframe Interval 1; ffmpeg: -g "
                          "<frame rate>)",
                          d / 1000.0, in->segment_ms / 1000.0, d / 1000.0);
    return 0;
}

static unsigned check_timing(struct mx_ingest *in, const struct mx_frame *f)
{
    int t = f->video ? 1 : 0;
    unsigned raised = 0;
    int64_t lag;

    if (in->have[t] && f->dts_ms < in->last_dts[t])
        raised |= raise_once(in, MX_HEALTH_BACKWARDS,
                             "%s timestamps went backwards (%lld ms after %lld ms): the encoder "
                             "or its clock restarted",
                             f->video ? "video" : "audio", (long long)f->dts_ms,
                             (long long)in->last_dts[t]);
    in->have[t] = true;
    in->last_dts[t] = f->dts_ms;
    /* Drift: compare each track's dts - arrival; smoothing absorbs interleaving. */
    in->offset_ms[t] = f->dts_ms - f->arrival_ms;
    if (in->have[0] && in->have[1]) {
        double d = (double)(in->offset_ms[1] - in->offset_ms[0]);

        if (in->drift_since_ms == 0) {
            in->drift_since_ms = f->arrival_ms ? f->arrival_ms : 1;
            in->drift_ms = d;
        }
        in->drift_ms += (d - in->drift_ms) / 16;
        if (f->arrival_ms - in->drift_since_ms >= DRIFT_SETTLE_MS &&
            fabs(in->drift_ms) > MX_DRIFT_WARN_MS)
            raised |= raise_once(in, MX_HEALTH_DRIFT,
                                 "audio and video timestamps are %.0f ms apart (more than %d ms): "
                                 "check the encoder's audio sync offset",
                                 fabs(in->drift_ms), MX_DRIFT_WARN_MS);
    }
    /* Behind: how much later than its media time a frame arrives, against the best. */
    if (!in->started) {
        in->started = true;
        in->first_dts = f->dts_ms;
        in->first_arrival = f->arrival_ms;
        in->min_lag_ms = 0;
    }
    lag = (f->arrival_ms - in->first_arrival) - (f->dts_ms - in->first_dts);
    if (lag < in->min_lag_ms)
        in->min_lag_ms = lag;
    in->behind_ms = lag - in->min_lag_ms;
    if (in->behind_ms > MX_BEHIND_WARN_MS)
        raised |= raise_once(in, MX_HEALTH_BEHIND,
                             "frames arrive %lld ms behind their timestamps, in bursts: the "
                             "publisher's upload cannot keep up (lower the bitrate)",
                             (long long)in->behind_ms);
    return raised;
}

unsigned mx_ingest_frame(struct mx_ingest *in, const struct mx_frame *f)
{
    unsigned raised = check_timing(in, f);

    raised |= account(in, f);
    raised |= check_keyframe(in, f);
    return raised;
}
