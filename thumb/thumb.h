/*
 * thumb — stream thumbnails: the latest keyframe decoded with libavcodec
 * (H.264, with the stream's SPS/PPS), scaled with libswscale and encoded as
 * JPEG with libavcodec's mjpeg encoder, on one worker thread.
 *
 * Work happens only while someone asks: a request marks the stream wanted for
 * a few intervals; while wanted, the publisher hands over (a copy of) a
 * keyframe at most once per interval, never decoding on its own thread.
 *
 * Process-wide, like the metrics registry: thumb_start/thumb_stop in main.
 */
#ifndef ONAIR_THUMB_H
#define ONAIR_THUMB_H

#include <stddef.h>
#include <stdint.h>

#include "../common/common.h"

#define THUMB_WIDTH 480
#define THUMB_STREAMS_MAX 256

/*
 * Starts the worker: a stream's thumbnail is refreshed at most every
 * INTERVAL_MS. Returns 0 or a negative errno. Without it every call below is
 * a no-op (thumb_get returns NULL).
 */
int thumb_start(int interval_ms);

/* Stops the worker and frees every thumbnail. Accepts being called without start. */
void thumb_stop(void);

/* A reload's new interval: from the next refresh on. */
void thumb_set_interval(int interval_ms);

/* The refresh interval in seconds (Cache-Control), 0 when not started. */
int thumb_interval_s(void);

/* Publisher side: NAME's AVCDecoderConfigurationRecord (copied). */
void thumb_config(const char *name, const uint8_t *avcc, size_t len);

/*
 * Publisher side: a keyframe of NAME (AVCC length-prefixed NAL units,
 * borrowed for the call), at NOW_MS (time_mono_ms). Copied and queued only
 * when NAME is wanted and its thumbnail is older than the interval.
 */
void thumb_keyframe(const char *name, const uint8_t *data, size_t len, int64_t now_ms);

/* Publisher side: NAME stopped publishing (its thumbnail stays until it returns). */
void thumb_end(const char *name);

enum thumb_status { THUMB_READY, THUMB_PENDING, THUMB_NONE };

/*
 * Reader side: marks NAME wanted and returns its latest JPEG in *OUT (a new
 * reference) with THUMB_READY; THUMB_PENDING when NAME publishes video but no
 * thumbnail is made yet; THUMB_NONE for an unknown stream (*OUT NULL).
 */
enum thumb_status thumb_get(const char *name, int64_t now_ms, struct buf **out);

/*
 * Reader side, for a listing a page shows (/streams.json): marks NAME wanted
 * as thumb_get does (a page that lists a stream shows its picture) and
 * returns true when a JPEG is ready, so that a page is only ever pointed at
 * a thumbnail that answers 200.
 */
bool thumb_want(const char *name, int64_t now_ms);

#endif
