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

/* An LL-HLS partial segment (rendered by a later issue; modelled now). */
struct hls_part {
    double duration;
    bool independent;
    char uri[HLS_URI_MAX];
};

struct hls_segment {
    uint64_t msn;          /* media sequence number */
    double duration;       /* seconds */
    int64_t pdt_ms;        /* wall clock of the first sample's arrival; 0 = none */
    bool discontinuity;    /* EXT-X-DISCONTINUITY before this segment */
    char map_uri[HLS_URI_MAX]; /* init segment this one needs */
    char uri[HLS_URI_MAX];
    const struct hls_part *parts;
    int nparts;
};

struct hls_media_playlist {
    int version;
    int target_duration;            /* seconds, >= every rounded EXTINF */
    uint64_t discontinuity_sequence;
    bool ended;                     /* EXT-X-ENDLIST */
    const struct hls_segment *segs; /* oldest first; segs[0].msn = media sequence */
    int nsegs;
};

/* Renders a media playlist into OUT (appended). Returns 0 or -ENOMEM/-EINVAL. */
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

#endif
