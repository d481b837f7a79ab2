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

#define SEG_FRAGMENT_MS 500 /* fragment length without LL-HLS (cut, not published) */

/* ---- timestamps (clock.c, pure) ------------------------------------------- */

#define SEG_JUMP_BACK_MS 500   /* a track going back further than this jumped */
#define SEG_JUMP_FWD_MIN_MS 5000 /* ... or forward further than max(this, 2 targets) */

/*
 * Maps one publisher's input timestamps (per track) onto the output timeline
 * of its channel, so that output decode times always increase:
 *   - both tracks start with one common offset (their true A/V offset is kept);
 *   - a jump beyond the thresholds re-bases that track to where it was
 *     expected next (counted in jumps, the size of the last in last_jump_ms);
 *   - video decode times that repeat or go back a little are pushed forward
 *     by the last good frame interval, then catch up at no less than half of
 *     it (counted in fixups), never a 0/1-tick frame;
 *   - negative composition offsets are kept: decode times are shifted back by
 *     the most negative offset seen (cts_shift) so that pts >= dts;
 *   - presentation times stay as sent while they are possible (a fixed-up
 *     decode time does not move them); once one comes before its decode time
 *     the input clock is broken and the composition offset follows the
 *     decode time instead.
 * Zero-initialise; seg_clock_start sets where the output begins.
 */
struct seg_clock {
    int64_t base_ms;          /* output time of the first frame */
    int64_t fwd_jump_ms;      /* forward jump threshold */
    bool started;
    int64_t offset[2];        /* out = in + offset, per track */
    bool have[2];
    int64_t first_out[2], last_out[2];
    int64_t next_out[2];      /* where the track is expected next (set by the writer) */
    /* video decode-time fix-ups */
    bool have_dts;
    int64_t last_dts;         /* last video decode time handed out */
    int64_t last_in_dts;      /* ... and what the input asked for */
    int64_t good_delta;       /* last natural frame interval */
    int32_t cts_shift;        /* >= 0: decode times are this much earlier than the clock */
    bool pts_from_dts;        /* input presentation times found impossible: dts + offset */
    long fixups, jumps;
    int64_t last_jump_ms;
};

/* Output starts at BASE_MS; jumps forward beyond FWD_JUMP_MS re-base a track. */
void seg_clock_start(struct seg_clock *c, int64_t base_ms, int64_t fwd_jump_ms);

/*
 * Maps frame time IN_MS of TRACK to the output timeline (jumps handled).
 * Returns the output time; *JUMPED tells whether the track was re-based.
 */
int64_t seg_clock_map(struct seg_clock *c, int track, int64_t in_ms, bool *jumped);

/*
 * Video only, after seg_clock_map: the decode time to write for a frame at
 * output time OUT_MS with composition offset CTS_MS, and its presentation time
 * in *PTS_MS (>= the decode time). Counts fix-ups in C->fixups.
 */
int64_t seg_clock_video_dts(struct seg_clock *c, int64_t out_ms, int32_t cts_ms, int64_t *pts_ms);

/*
 * Audio sample clock against the FLV clock: where to put a frame of
 * FRAME_SAMPLES at output time OUT_MS when the clock expects *NEXT (samples at
 * RATE; *HAVE false: not started). Returns 1 and the sample time in *AT (and
 * advances *NEXT) to write it, 0 to drop it (the clock is ahead by more than a
 * frame). Behind by more than a frame: the clock jumps to the frame (a gap).
 * TIMED false (the FLV time did not move since the last frame): no clock to
 * compare with, the frame goes where the samples say.
 */
int seg_audio_place(int64_t *next, bool *have, int64_t out_ms, bool timed, int rate,
                    int frame_samples, int64_t *at);

/* ---- the per-name channel and its publishers ------------------------------ */

#ifdef ONAIR_SEGMENTER_STREAM

struct seg_part {
    struct buf *b;          /* the segmenter's reference: the segment is built from these */
    struct hls_part hp;
};

/* A finished segment as the playlist lists it (its parts kept for LL-HLS). */
struct done_segment {
    struct hls_segment hs;
    size_t bytes;
    bool independent;       /* starts with a keyframe */
    struct hls_part *parts; /* owned; hs.parts points here */
};

/*
 * One stream name while it is live: the playlist and everything it lists.
 * Outlives its publishers by the reconnect grace; a publisher attaches
 * (seg_stream_open) and detaches (close, or taken over by a newer one).
 */
struct seg_channel {
    struct seg_hub *hub;
    struct seg_channel *next;       /* in hub->channels */
    struct store_stream *ss;        /* our claim, held until the channel ends */
    struct recording *rec;          /* its recording (record/record.h); NULL = none */
    char name[80];
    char logname[96];
    struct seg_params p;            /* from the first publisher; a reload changes it */
    struct seg_params next_p;       /* a reload's timing, applied when the next segment opens */
    bool have_next_p;
    char gen[32];                   /* unique per channel in this server's lifetime and across
                                       restarts: every URI below contains it */
    unsigned ninit;                 /* init segments announced so far */
    int target_duration;            /* EXT-X-TARGETDURATION, never changes */
    struct seg_stream *pub;         /* attached publisher; NULL while in grace */
    int64_t grace_end_ms;           /* time_mono_ms() at which a detached channel ends */
    bool disc_next;                 /* the next segment starts with EXT-X-DISCONTINUITY */
    uint64_t next_msn;
    uint64_t listed_msn;            /* EXT-X-MEDIA-SEQUENCE last published: never goes back */
    uint64_t disc_evicted;          /* discontinuities of segments dropped from done[] */
    int64_t end_ms;                 /* output timeline end: where a new publisher continues */

    /* completed segments, oldest first: the window plus a grace tail */
    struct done_segment *done;
    int ndone, cap_done;

    /* the multivariant playlist: what the latest publisher sends */
    char codecs[80];
    int width, height;
    double announced_kbps;          /* onMetaData video + audio; 0 = unknown */
    long peak_bps;
    bool peak_measured;
    long published_bps;
    bool mv_published;
    double frame_rate, published_fps;
};

struct seg_hub {
    struct store *st;
    struct seg_channel *channels;
    int64_t gen_epoch;     /* server start, Unix ms */
    unsigned gen_counter;
};

struct seg_stream {
    struct seg_channel *ch;  /* NULL once detached (taken over) */
    bool taken_over;         /* detached by a newer publisher of the same name */
    char logname[96];
    char init_uri[HLS_URI_MAX];

    /* codec configuration (the latest received; the muxer has its own copy) */
    uint8_t *avcc, *asc;
    size_t avcc_len, asc_len;
    struct avc_info avc;
    struct aac_info aac;
    struct seg_metadata md;
    bool restart;            /* a configuration changed or arrived late: new muxer at the next cut */
    bool restart_audio_cfg;  /* ... an audio one: audio dropped until then */

    /* muxer */
    AVFormatContext *fmt;
    AVPacket *pkt;
    int vidx, aidx; /* stream index in fmt, -1 when absent */
    int mux_rate;   /* sample rate of the muxer's audio track */
    bool started;
    bool inband_ps;   /* repeat SPS/PPS in the first keyframe (not the channel's first init) */
    bool discard_output;
    struct bytes out; /* what the muxer wrote since the last take */

    /* timing */
    struct seg_clock clock;
    bool audio_clock;
    int64_t audio_next; /* next AAC time in samples */
    bool have_audio_in;
    int64_t last_audio_in_ms;
    long audio_dropped, audio_gaps;
    bool waiting_audio;
    int64_t wait_start_ms;
    int64_t end_ms; /* end of the latest sample written */
    int64_t video_end_ms; /* ... of the latest video frame */

    /* the video frame held back until the next one gives its exact duration */
    bool held;
    struct seg_frame held_f;
    int32_t held_in_cts;     /* its composition offset as received */
    struct bytes held_data;

    /* the segment being filled, and its part being filled */
    bool seg_open;
    bool seg_independent;
    int64_t seg_start_ms;
    int64_t seg_pdt_ms;
    int64_t seg_bytes;
    int seg_video_frames;
    bool part_open;
    int64_t part_start_ms;
    bool part_independent;
    struct seg_part *parts; /* completed parts of the open segment */
    int nparts, cap_parts;

    long forced_cuts;
    int64_t warned_gop_ms; /* time_mono_ms of the last keyframe warning; 0 = never */
    bool warned_late_cfg[2], warned_nocfg[2], warned_jump, warned_fixup, warned_audio;
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
int seg_publish_playlists(struct seg_channel *c, bool ended);
/* publish.c: the multivariant playlist (BANDWIDTH from the peak and the metadata). */
int seg_publish_multivariant(struct seg_channel *c);

#define SEG_DEFAULT_MAX_SEGMENT_BYTES (32 * 1024 * 1024)

/* channel.c: attaches S to the channel NAME (created, continued or taken over). */
int seg_channel_attach(struct seg_hub *h, const char *name, const struct seg_params *p,
                       struct seg_stream *s);
/*
 * channel.c: a live reload's (or a returning publisher's) timing for C, from
 * the next segment on: segment_ms up to the fixed target duration (RFC 8216
 * 6.2.1), window_segments >= 3; part_ms stays (PART-TARGET is fixed too).
 */
void seg_channel_set_params(struct seg_channel *c, const struct seg_params *p);
/* channel.c: index in c->done of the first segment the live playlist lists. */
int seg_channel_window_first(const struct seg_channel *c);
/* channel.c: a finished segment of publisher S joins the playlist (takes the part refs). */
int seg_channel_add_segment(struct seg_channel *c, struct seg_stream *s, int64_t end_ms);
/* channel.c: S detaches from its channel (its open segment finished before). */
void seg_channel_detach(struct seg_stream *s);

/* segmenter.c: flushes S's held frame and open segment, frees its muxer. */
void seg_stream_stop(struct seg_stream *s);


#endif

#endif
