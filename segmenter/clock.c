/*
 * Timestamps from any encoder: RTMP gives 32-bit millisecond decode times per
 * track that start anywhere, may jump (an encoder restart, a clock reset),
 * repeat or step back a little (hardware encoders with B-frames), and audio
 * whose FLV clock drifts from its sample count. The muxer wants decode times
 * that increase and durations that match the media. Pure: numbers in, numbers
 * out (see segmenter_internal.h for the rules).
 */
#include <stdlib.h>

#include "segmenter_internal.h"

#define DEFAULT_FRAME_MS 33 /* until a natural interval is seen */
#define MAX_DELTA_MS 1000   /* a longer "interval" is a gap, not a frame rate */

void seg_clock_start(struct seg_clock *c, int64_t base_ms, int64_t fwd_jump_ms)
{
    c->base_ms = base_ms;
    c->fwd_jump_ms = fwd_jump_ms > SEG_JUMP_FWD_MIN_MS ? fwd_jump_ms : SEG_JUMP_FWD_MIN_MS;
}

int64_t seg_clock_map(struct seg_clock *c, int track, int64_t in_ms, bool *jumped)
{
    int t = track ? 1 : 0, o = !t;
    int64_t out, ref, d, lo, hi;

    *jumped = false;
    if (!c->started) {
        /* One offset for both tracks: their true A/V offset is kept. */
        c->offset[0] = c->offset[1] = c->base_ms - in_ms;
        c->started = true;
    }
    out = in_ms + c->offset[t];
    if (c->have[t]) {
        ref = c->last_out[t];
        lo = -SEG_JUMP_BACK_MS;
        hi = c->fwd_jump_ms;
    } else if (c->have[o]) {
        /* A track's first frame against the other track's first: encoders
         * start tracks hundreds of ms apart, and that offset is real. */
        ref = c->first_out[o];
        lo = -SEG_JUMP_FWD_MIN_MS;
        hi = c->fwd_jump_ms;
    } else {
        ref = out;
        lo = hi = 0;
    }
    d = out - ref;
    if (d < lo || d > hi) {
        int64_t next = c->have[t] ? c->next_out[t] : c->last_out[o];

        c->offset[t] = next - in_ms;
        c->last_jump_ms = out - next; /* against where it was expected: the encoder's jump */
        c->jumps++;
        out = next;
        *jumped = true;
    }
    if (c->have[t] && !*jumped && out > c->last_out[t] && out - c->last_out[t] <= MAX_DELTA_MS)
        c->next_out[t] = out + (out - c->last_out[t]);
    else
        c->next_out[t] = out + (c->good_delta > 0 && t == 0 ? c->good_delta : DEFAULT_FRAME_MS);
    if (!c->have[t])
        c->first_out[t] = out;
    c->have[t] = true;
    c->last_out[t] = out;
    return out;
}

int64_t seg_clock_video_dts(struct seg_clock *c, int64_t out_ms, int32_t cts_ms, int64_t *pts_ms)
{
    int64_t in_dts, dts, pts = out_ms + cts_ms;

    if (cts_ms < 0 && -cts_ms > c->cts_shift)
        c->cts_shift = -cts_ms; /* decode earlier rather than clamp the presentation */
    dts = in_dts = out_ms - c->cts_shift;
    if (c->have_dts) {
        int64_t step = c->good_delta > 0 ? c->good_delta : DEFAULT_FRAME_MS;
        int64_t half = step / 2 > 0 ? step / 2 : 1;
        bool shifted = c->last_dts > c->last_in_dts; /* we are ahead of the input */

        if (in_dts <= c->last_dts) {
            /* Repeated or stepping back: one good interval after the last frame,
             * or half of one while the input advances towards us. */
            dts = c->last_dts + (in_dts > c->last_in_dts ? half : step);
            if (in_dts <= c->last_in_dts)
                c->fixups++;
        } else if (shifted && in_dts - c->last_dts < half) {
            dts = c->last_dts + half; /* catching up: no frame shorter than half */
        } else if (!shifted && in_dts - c->last_dts <= MAX_DELTA_MS) {
            c->good_delta = in_dts - c->last_dts;
        }
    }
    c->last_in_dts = in_dts;
    c->last_dts = dts;
    c->have_dts = true;
    /*
     * A hardware encoder that repeats a decode time still sends the right
     * presentation time (the composition offset takes up the difference): keep
     * it. A presentation time before its (fixed-up) decode time says the input
     * times themselves are broken (all zero, say): from then on the
     * composition offset stays with the frame, so B-frames keep their order.
     */
    if (pts < dts)
        c->pts_from_dts = true;
    if (c->pts_from_dts)
        pts = dts + cts_ms + c->cts_shift;
    *pts_ms = pts > dts ? pts : dts;
    return dts;
}

int seg_audio_place(int64_t *next, bool *have, int64_t out_ms, bool timed, int rate,
                    int frame_samples, int64_t *at)
{
    int64_t frame_ms = (int64_t)frame_samples * 1000 / rate;
    int64_t expect_ms, diff;

    if (!*have) {
        *next = out_ms * rate / 1000;
        *have = true;
    }
    expect_ms = *next * 1000 / rate;
    diff = timed ? out_ms - expect_ms : 0;
    if (diff < -frame_ms)
        return 0; /* the samples are ahead of the clock by more than a frame: drop one */
    if (diff > frame_ms)
        *next = out_ms * rate / 1000; /* behind by more than a frame: leave a gap */
    *at = *next;
    *next += frame_samples;
    return 1;
}
