/*
 * Internal interfaces of the segmenter: codec configuration parsing (avc.c)
 * and playlist rendering (playlist.c). Both are pure: bytes or structs in,
 * results out. Only the segmenter sources and the tests include this header.
 */
#ifndef ONAIR_SEGMENTER_INTERNAL_H
#define ONAIR_SEGMENTER_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/common.h"

/* ---- codec configuration (avc.c) ---------------------------------------- */

struct avc_info {
    int profile_idc, constraint_flags, level_idc;
    int nal_length_size; /* 1, 2 or 4 */
    int width, height;   /* from the first SPS, after cropping */
    char codec[32];      /* RFC 6381 string, "avc1.64001f" */
};

/*
 * Parses an AVCDecoderConfigurationRecord (ISO/IEC 14496-15 5.3.3.1) and its
 * first SPS (H.264 7.3.2.1.1). Returns 0 or -EINVAL.
 */
int avc_parse_config(const uint8_t *avcc, size_t len, struct avc_info *out);

struct aac_info {
    int object_type; /* 2 = AAC-LC, 5 = SBR, 29 = PS */
    int sample_rate;
    int channels;    /* 0 = defined in the bitstream (PCE) */
    char codec[32];  /* "mp4a.40.2" */
};

/* Parses an AudioSpecificConfig (ISO/IEC 14496-3 1.6.2.1). Returns 0 or -EINVAL. */
int aac_parse_config(const uint8_t *asc, size_t len, struct aac_info *out);

/* ---- playlists (playlist.c) --------------------------------------------- */

#define HLS_URI_MAX 96

/* An LL-HLS partial segment. */
struct hls_part {
    double duration;
    bool independent;      /* starts with a keyframe */
    char uri[HLS_URI_MAX];
};

/*
 * A media segment; the last one of a live playlist may be open (URI empty):
 * only its parts are listed, it gets no EXTINF yet.
 */
struct hls_segment {
    uint64_t msn;          /* media sequence number */
    double duration;       /* seconds */
    int64_t pdt_ms;        /* wall clock of the first sample's arrival; 0 = none */
    bool discontinuity;    /* EXT-X-DISCONTINUITY before this segment */
    char map_uri[HLS_URI_MAX]; /* init segment this one needs */
    char uri[HLS_URI_MAX];     /* "" = open (still being filled) */
    const struct hls_part *parts;
    int nparts;
};

struct hls_media_playlist {
    int target_duration;            /* seconds, >= every rounded EXTINF */
    uint64_t discontinuity_sequence;
    bool ended;                     /* EXT-X-ENDLIST */
    bool not_independent;           /* some segment does not start with a keyframe */
    const struct hls_segment *segs; /* oldest first; segs[0].msn = media sequence */
    int nsegs;
    /* LL-HLS (part_target 0 = off: none of the below is rendered) */
    double part_target;             /* EXT-X-PART-INF:PART-TARGET, seconds */
    double part_hold_back;          /* EXT-X-SERVER-CONTROL:PART-HOLD-BACK */
    double skip_until;              /* CAN-SKIP-UNTIL; 0 = no delta updates */
    int parts_from;                 /* list parts of segs[parts_from..] only */
    const char *preload_hint;       /* URI of the part being filled; NULL = none */
    int skip;                       /* delta update: segs[0..skip) become EXT-X-SKIP */
};

/*
 * Number of leading segments a delta update may skip: those that end at least
 * SKIP_UNTIL seconds before the end of the playlist.
 */
int hls_skippable(const struct hls_media_playlist *pl);

/*
 * Renders a media playlist into OUT (appended), with the lowest EXT-X-VERSION
 * its tags need (6 for EXT-X-MAP, 9 with EXT-X-SKIP). Returns 0 or
 * -ENOMEM/-EINVAL.
 */
int hls_render_media(const struct hls_media_playlist *pl, struct bytes *out);

struct hls_variant {
    long bandwidth;         /* peak bits per second */
    long average_bandwidth; /* 0 = omit */
    const char *codecs;     /* "avc1.64001f,mp4a.40.2" */
    int width, height;      /* 0 = omit RESOLUTION */
    double frame_rate;      /* 0 = omit */
    const char *uri;
};

/* Renders a multivariant playlist with one variant. Returns 0 or -ENOMEM. */
int hls_render_multivariant(const struct hls_variant *v, struct bytes *out);

/* ---- the per-stream state shared by segmenter.c and publish.c ------------ */

#ifdef ONAIR_SEGMENTER_STREAM

struct seg_part {
    struct buf *b;          /* the segmenter's reference: the segment is built from these */
    struct hls_part hp;
};

/* A finished segment as the playlist lists it (its parts kept for LL-HLS). */
struct done_segment {
    struct hls_segment hs;
    size_t bytes;
    struct hls_part *parts; /* owned; hs.parts points here */
};

struct seg_stream {
    struct store_stream *ss;
    struct recording *rec; /* this publish's recording (record/record.h); NULL = none */
    char name[80];
    char logname[96];
    struct seg_params p;
    struct seg_params next_p; /* from a live reload, applied when the next segment opens */
    bool have_next_p;
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
    int64_t last_dts_tb[2];  /* last decode time written, in the track's time base */
    int64_t video_delta_ms;  /* last inter-frame distance */
    bool audio_clock;
    int64_t audio_next; /* next AAC pts in samples */
    bool waiting_audio;
    int64_t wait_start_ms;
    int64_t end_ms; /* end of the latest sample written */

    /* the video frame held back until the next one gives its exact duration */
    bool held;
    struct seg_frame held_f;
    struct bytes held_data;

    /* the segment being filled, and its part being filled */
    bool seg_open;
    int64_t seg_start_ms;
    int64_t seg_pdt_ms;
    int seg_video_frames;
    uint64_t next_msn;
    bool part_open;
    int64_t part_start_ms;
    bool part_independent;
    struct seg_part *parts; /* completed parts of the open segment */
    int nparts, cap_parts;

    /* completed segments, oldest first: the window plus a grace tail */
    struct done_segment *done;
    int ndone, cap_done;
    int target_duration;
    uint64_t listed_msn; /* EXT-X-MEDIA-SEQUENCE last published: never goes back */
    long peak_bps;
    bool peak_measured;
    long published_bps;              /* the peak the multivariant playlist shows */
    bool mv_published;
    double frame_rate, published_fps;
    bool warned_gop, warned_late_cfg[2], warned_nocfg[2];
    int64_t last_in_ms, cut_ref_ms; /* arrival of the newest frame and the one before (metrics) */
};

/*
 * The PART-TARGET advertised for a configured part length: 5% more, so that
 * parts ending on the frame nearest the configured length (10 frames of 30
 * fps = 333.3 ms for 333) always fit under it.
 */
static inline int seg_part_target_ms(int part_ms)
{
    return part_ms + (part_ms + 19) / 20;
}

/* publish.c: renders and stores the playlists after a part or segment. */
int seg_publish_playlists(struct seg_stream *s, bool ended);
/* publish.c: the multivariant playlist (BANDWIDTH from the peak and the metadata). */
int seg_publish_multivariant(struct seg_stream *s);

#endif

#endif
