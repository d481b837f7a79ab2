/*
 * segmenter — remuxes published streams into CMAF (fragmented MP4) with
 * libavformat's mp4 muxer writing into memory, cuts segments on keyframes (or
 * at the target when keyframes are late) and renders the HLS playlists,
 * publishing everything into the store.
 *
 *   seg_hub ──► channel "show" (the playlist; outlives publishers by the
 *          │        ▲            reconnect grace)
 *          │        └── seg_stream (one publisher: muxer, codec configs, clock)
 *          └──► channel "other" ...
 *
 * A publisher that leaves detaches: the playlist stays live (no ENDLIST) for
 * reconnect_grace_ms; a publish of the same name within it continues the same
 * playlist after an EXT-X-DISCONTINUITY with a new init segment. A publish
 * while another publisher is attached takes the name over at once.
 *
 * Threading: every call on a hub and its streams comes from one thread (the
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
    int reconnect_grace_ms;    /* a stream stays live this long without a publisher */
    int64_t max_segment_bytes; /* a segment is cut when it reaches this; 0 = 32 MiB */
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
struct seg_hub;

/* Routes FFmpeg's av_log into our logger. Call once at start-up. */
void seg_global_init(void);

/* A new hub of channels publishing into ST (borrowed for the hub's life). Returns 0 or -ENOMEM. */
int seg_hub_new(struct store *st, struct seg_hub **out);

/* Ends the channels whose reconnect grace has passed. Call about once a second. */
void seg_hub_tick(struct seg_hub *h);

/*
 * Ends every channel (EXT-X-ENDLIST, store claim released) and frees H.
 * Every stream must have been closed first. Accepts NULL.
 */
void seg_hub_free(struct seg_hub *h);

/*
 * Starts a publisher of stream NAME. A new name gets a new channel (P fixes
 * its timing for the playlist's life); a name in its reconnect grace is
 * continued; a name with a publisher attached is taken over (that one's next
 * seg_stream_frame returns -ECANCELED). Returns 0 and the stream in *OUT,
 * -EINVAL for a bad name, -EBUSY if the store has NAME claimed elsewhere,
 * -ENOMEM. The name must match [A-Za-z0-9_.-]{1,64} and not start with '.'.
 */
int seg_stream_open(struct seg_hub *h, const char *name, const struct seg_params *p,
                    struct seg_stream **out);

/* Metadata from @setDataFrame/onMetaData (optional; used as hints). */
void seg_stream_metadata(struct seg_stream *s, const struct seg_metadata *md);

/*
 * H.264 AVCDecoderConfigurationRecord (FLV AVC sequence header). Returns 0,
 * -EINVAL if it cannot be parsed. A changed record after start (or a first
 * one after an audio-only start) restarts the muxer at the next keyframe: a
 * new init segment after an EXT-X-DISCONTINUITY.
 */
int seg_stream_video_config(struct seg_stream *s, const uint8_t *avcc, size_t len);

/* AAC AudioSpecificConfig (FLV AAC sequence header). Returns 0 or -EINVAL. Late or
 * changed: as for video (audio is dropped until the restart). */
int seg_stream_audio_config(struct seg_stream *s, const uint8_t *asc, size_t len);

/*
 * Feeds one coded frame (borrowed for the call). Returns 0, -ECANCELED once a
 * newer publisher took the name over, or another negative errno if the stream
 * cannot continue (either way the publisher should be disconnected).
 */
int seg_stream_frame(struct seg_stream *s, const struct seg_frame *f);

/*
 * A live reload's new timing: segment_ms (up to the playlist's fixed target
 * duration) and window_segments from the next segment that opens; the
 * reconnect grace and the segment byte cap from now on; part_ms stays for the
 * playlist's life. A publisher that continues a channel brings its P the same way.
 */
void seg_stream_set_params(struct seg_stream *s, const struct seg_params *p);

/*
 * Publisher gone: flushes its last segment and detaches; the playlist stays
 * live for the reconnect grace (ended at once without one, or when nothing
 * was ever published). Frees S. Accepts NULL.
 */
void seg_stream_close(struct seg_stream *s);

/* Valid public stream name? */
bool seg_name_valid(const char *name);

#endif
