/*
 * segmenter — remuxes one published stream into CMAF (fragmented MP4) with
 * libavformat's mp4 muxer writing into memory, cuts segments on keyframes and
 * renders the HLS playlists, publishing everything into the store.
 *
 * Threading: every call for one struct seg_stream comes from one thread (the
 * RTMP event loop). The store is the only thing shared with other threads.
 */
#ifndef ONAIR_SEGMENTER_H
#define ONAIR_SEGMENTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store;
struct recorder;

struct seg_params {
    int segment_ms;      /* target segment duration */
    int window_segments; /* segments listed in the live playlist */
    int part_ms;         /* LL-HLS part target; 0 = no parts (standard HLS) */
    struct recorder *recorder; /* record/record.h; NULL = nothing recorded (borrowed) */
};

enum seg_track { SEG_VIDEO = 0, SEG_AUDIO = 1 };

/* One coded frame as it came out of an FLV tag. */
struct seg_frame {
    enum seg_track track;
    int64_t dts_ms;        /* unwrapped decode timestamp, milliseconds */
    int32_t cts_ms;        /* composition offset (video), pts = dts + cts */
    bool keyframe;         /* video: IDR / FLV frame type 1; audio: always true */
    const uint8_t *data;   /* video: AVCC length-prefixed NAL units; audio: raw AAC */
    size_t len;
};

/* What onMetaData announced; zero fields are unknown. */
struct seg_metadata {
    bool has_video, has_audio;
    double framerate;
    double video_kbps, audio_kbps;
};

struct seg_stream;

/* Routes FFmpeg's av_log into our logger. Call once at start-up. */
void seg_global_init(void);

/*
 * Starts segmenting stream NAME into ST. Returns 0 and the stream in *OUT,
 * -EBUSY if NAME already has a live publisher, -EINVAL for a bad name, -ENOMEM.
 * The name must match [A-Za-z0-9_.-]{1,64} and not start with '.'.
 */
int seg_stream_open(struct store *st, const char *name, const struct seg_params *p,
                    struct seg_stream **out);

/* Metadata from @setDataFrame/onMetaData (optional; used as hints). */
void seg_stream_metadata(struct seg_stream *s, const struct seg_metadata *md);

/*
 * H.264 AVCDecoderConfigurationRecord (FLV AVC sequence header). Returns 0,
 * -EINVAL if it cannot be parsed. A changed record after start is logged and
 * ignored for now (a later issue adds a discontinuity).
 */
int seg_stream_video_config(struct seg_stream *s, const uint8_t *avcc, size_t len);

/* AAC AudioSpecificConfig (FLV AAC sequence header). Returns 0 or -EINVAL. */
int seg_stream_audio_config(struct seg_stream *s, const uint8_t *asc, size_t len);

/*
 * Feeds one coded frame (borrowed for the call). Returns 0, or a negative errno
 * if the stream cannot continue (the publisher should be disconnected).
 */
int seg_stream_frame(struct seg_stream *s, const struct seg_frame *f);

/*
 * A live reload's new timing: segment_ms and window_segments apply from the
 * next segment that opens (the one being written keeps its target); other
 * fields keep their values for this publish.
 */
void seg_stream_set_params(struct seg_stream *s, const struct seg_params *p);

/* Publisher gone: flushes the last segment, ends the playlist, frees S. Accepts NULL. */
void seg_stream_close(struct seg_stream *s);

/* Valid public stream name? */
bool seg_name_valid(const char *name);

#endif
