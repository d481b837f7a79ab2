/*
 * metrics — what onair measures, counted where the work happens: process-wide
 * counters, gauges and histograms, per-stream statistics (ingest analysis and
 * health, segmenter progress, viewers, bytes served) and the Prometheus text
 * rendering (exposition format 0.0.4).
 *
 * Threading: every update is a relaxed atomic or touches state owned by the
 * calling thread; nothing allocates per request. A stream's entry is created
 * by its publisher (the RTMP loop) on first publish and lives until
 * mx_shutdown, so a pointer from mx_stream_find stays valid. The ingest
 * analysis is published into a snapshot under the entry's mutex at most once
 * a second; readers (the admin API) copy that snapshot.
 *
 * Off (mx_set_enabled(false), the default until main turns it on): every
 * call returns at once and nothing is counted or analysed.
 */
#ifndef ONAIR_METRICS_H
#define ONAIR_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/common.h"

#define MX_NAME_MAX 128         /* stream names (shorter: the stream-name rule) */
#define MX_STREAMS_MAX 1024     /* distinct stream names tracked per process */
#define MX_VIEWER_SLOTS 4096    /* distinct viewers counted per stream */
#define MX_VIEWER_WINDOW_MS 30000
#define MX_DRIFT_WARN_MS 200
#define MX_BEHIND_WARN_MS 1000

/* Turns collection on or off (process-wide); off by default. */
void mx_set_enabled(bool on);
bool mx_enabled(void);

/* Frees every stream entry. Call once at exit, after every other thread stopped. */
void mx_shutdown(void);

/* ---- process-wide counters and gauges ----------------------------------- */

enum mx_counter {
    MX_PUBLISHES,          /* publishes accepted */
    MX_RTMP_BYTES_IN,      /* media payload bytes received */
    MX_HTTP_REQUESTS,      /* requests answered (every status) */
    MX_HTTP_BYTES_OUT,     /* body bytes queued for 200 responses */
    MX_HTTP_1XX,
    MX_HTTP_2XX,
    MX_HTTP_3XX,
    MX_HTTP_4XX,
    MX_HTTP_5XX,
    MX_KICKS,              /* publishers disconnected through the admin API */
    MX_THUMB_REQUESTS,     /* GET thumb.jpg */
    MX_THUMB_ENCODED,      /* thumbnails decoded + scaled + encoded */
    MX_THUMB_FAILED,
    MX_HEALTH_WARNINGS,    /* ingest health warnings raised */
    MX_RECORD_SEGMENTS,    /* segments written to recordings */
    MX_RECORD_BYTES,       /* bytes of those segments */
    MX_RECORD_FAILURES,    /* recordings stopped by an error (queue full, disk) */
    MX_RECORD_REPLAYS,     /* replay MP4s made */
    MX_COUNTER_COUNT
};

enum mx_reject {
    MX_REJECT_NAME,    /* invalid stream name */
    MX_REJECT_BUSY,    /* the name is already being published */
    MX_REJECT_CODEC,   /* unsupported codec */
    MX_REJECT_AUTH,    /* wrong or missing stream key */
    MX_REJECT_LIMIT,   /* connection limit reached */
    MX_REJECT_OTHER,
    MX_REJECT_COUNT
};

enum mx_gauge {
    MX_RTMP_CONNECTIONS,
    MX_HTTP_CONNECTIONS,
    MX_GAUGE_COUNT
};

void mx_count(enum mx_counter c, uint64_t n);
void mx_reject(enum mx_reject why);
void mx_gauge_add(enum mx_gauge g, int64_t delta);
uint64_t mx_counter_value(enum mx_counter c);
int64_t mx_gauge_value(enum mx_gauge g);

/* Counts one HTTP response: its status class and how long it took (microseconds). */
void mx_http_response(unsigned status, int64_t elapsed_us);

/* ---- per stream ---------------------------------------------------------- */

struct mx_stream;

/*
 * The entry of stream NAME, or NULL (unknown name, metrics off, table full).
 * Lock-free; the pointer stays valid until mx_shutdown.
 */
struct mx_stream *mx_stream_find(const char *name);

/*
 * Publisher side (the RTMP loop): NAME starts being published from PEER
 * ("addr:port"), cutting SEGMENT_MS segments. Creates the entry if needed and
 * resets what describes one publish (encoder, analysis, health). A publish
 * that continues a live stream (a reconnect within the grace, a takeover)
 * keeps its live_since and segment counters, which belong to the playlist.
 * *PUBLISH_NO identifies this publish for mx_stream_unpublish. Returns the
 * entry, or NULL.
 */
struct mx_stream *mx_stream_publish(const char *name, const char *peer, int segment_ms,
                                    uint64_t *publish_no);

/* The publisher's onMetaData "encoder" (copied; NULL ignored). */
void mx_stream_encoder(struct mx_stream *s, const char *encoder);

/* One coded frame as it arrived (publisher thread only). */
struct mx_frame {
    bool video;
    bool keyframe;
    int64_t dts_ms;
    size_t bytes;
    int64_t arrival_ms; /* time_mono_ms() when it arrived */
};

/* Feeds the ingest analysis; raises health warnings (logged once per publish). */
void mx_stream_frame(struct mx_stream *s, const struct mx_frame *f);

/*
 * Publish PUBLISH_NO ended (REASON for the log, e.g. "FCUnpublish", "kicked");
 * ignored once a newer publish took the stream over. The stream stays live
 * until the segmenter ends its playlist (mx_segmenter_ended).
 */
void mx_stream_unpublish(struct mx_stream *s, uint64_t publish_no, const char *reason);

/* The last error seen on the stream (copied), shown by the API. */
void mx_stream_error(struct mx_stream *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * Segmenter side, by name: a part or segment reached the store LATENCY_MS
 * after its last frame arrived. MSN is the segment's media sequence number.
 */
void mx_segmenter_part(const char *name, int64_t latency_ms);
void mx_segmenter_segment(const char *name, uint64_t msn, int64_t latency_ms);
/* What the stream carries: RFC 6381 codecs and the video size (0 = none). */
void mx_segmenter_media(const char *name, const char *codecs, int width, int height);

/* NAME's playlist ended (EXT-X-ENDLIST): no publisher came back within the grace. */
void mx_segmenter_ended(const char *name);

/* HTTP side: BYTES of body served for S (NULL ignored). */
void mx_stream_served(struct mx_stream *s, uint64_t bytes);

/*
 * HTTP side: the client with address hash ADDR_HASH fetched a playlist of S
 * at NOW_MS (time_mono_ms). No allocation: a fixed table per stream.
 */
void mx_stream_viewer(struct mx_stream *s, uint64_t addr_hash, int64_t now_ms);

/* Distinct viewers of S in the last MX_VIEWER_WINDOW_MS before NOW_MS. */
int mx_stream_viewers(struct mx_stream *s, int64_t now_ms);

/* ---- ingest analysis (pure; mx_stream_frame drives it) -------------------- */

enum mx_health {
    MX_HEALTH_GOP = 1 << 0,        /* keyframe interval above the segment target */
    MX_HEALTH_BITRATE = 1 << 1,    /* bitrate swung more than 2x over 10 s */
    MX_HEALTH_DRIFT = 1 << 2,      /* audio and video timestamps > 200 ms apart */
    MX_HEALTH_BACKWARDS = 1 << 3,  /* a track's timestamps went backwards */
    MX_HEALTH_BEHIND = 1 << 4,     /* frames arrive in bursts, > 1 s behind */
};
#define MX_HEALTH_COUNT 5

/* Short code of bit I (0..MX_HEALTH_COUNT-1), e.g. "keyframe_interval". */
const char *mx_health_code(int i);

#define MX_RATE_SLOTS 32 /* one-second buckets of media time */

struct mx_ingest {
    int segment_ms;
    bool have[2];               /* [video?1:0] */
    int64_t last_dts[2];
    int64_t first_dts, first_arrival;
    bool started;
    int64_t min_lag_ms, behind_ms; /* arrival lag behind media time, best and now */
    int64_t last_key_dts;
    bool have_key;
    int64_t keyint_ms;           /* last keyframe interval */
    int keyints;                 /* intervals measured */
    int64_t offset_ms[2];        /* last dts - arrival per track */
    double drift_ms;             /* smoothed video offset - audio offset */
    int64_t drift_since_ms;      /* arrival of the first frame with both tracks */
    struct {
        int64_t sec;
        uint64_t bytes;
        int frames;              /* video frames */
    } rate[MX_RATE_SLOTS];
    int64_t cur_sec;
    unsigned health;             /* MX_HEALTH_* raised so far */
    char why[MX_HEALTH_COUNT][192]; /* message of each raised warning */
};

/* Starts an analysis for SEGMENT_MS segments. */
void mx_ingest_init(struct mx_ingest *in, int segment_ms);

/* Feeds one frame. Returns the MX_HEALTH_* bits raised by this frame (each once). */
unsigned mx_ingest_frame(struct mx_ingest *in, const struct mx_frame *f);

/* Measured over the last (up to) 10 complete seconds of media time. */
double mx_ingest_bitrate_bps(const struct mx_ingest *in);
double mx_ingest_framerate(const struct mx_ingest *in);

/* ---- reading a stream (the admin API) ------------------------------------- */

struct mx_stream_info {
    char name[MX_NAME_MAX];
    bool live;                   /* the playlist is live (a publisher, or its grace) */
    bool publishing;             /* a publisher is attached */
    int64_t live_since_ms;       /* wall clock */
    char peer[64];
    char encoder[64];
    char codecs[64];
    int width, height;
    double framerate;
    double bitrate_bps;
    double keyint_s;             /* last keyframe interval; 0 = not measured yet */
    double drift_ms;
    int64_t behind_ms;
    uint64_t segments, parts, msn;
    int viewers;
    uint64_t bytes_in, bytes_out, publishes;
    unsigned health;             /* MX_HEALTH_* */
    char health_why[MX_HEALTH_COUNT][192];
    char last_error[192];
    int64_t last_error_ms;       /* wall clock; 0 = none */
};

/* Copies S's current state. */
void mx_stream_info(struct mx_stream *s, struct mx_stream_info *out);

/* Calls FN for every stream entry (live or not), in table order. */
void mx_stream_foreach(void (*fn)(void *arg, struct mx_stream *s), void *arg);

/* ---- Prometheus ----------------------------------------------------------- */

/* Values the metrics module does not own, filled by whoever renders. */
struct mx_extra {
    double uptime_s;
    int streams_live;
    long blocked_requests; /* held LL-HLS requests */
};

/*
 * Appends the text exposition (format 0.0.4) of every family to OUT, each
 * with # HELP and # TYPE. Returns 0 or -ENOMEM.
 */
int mx_render_prometheus(struct bytes *out, const struct mx_extra *x);

#endif
