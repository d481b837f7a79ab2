/*
 * The metrics registry: process-wide counters and histograms (relaxed
 * atomics) and the table of per-stream entries.
 *
 * The stream table is open-addressed and append-only: an entry is published
 * into its slot once (under the insert mutex, release store) and never moves
 * or goes away until mx_shutdown, so lookups are lock-free loads.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics_internal.h"

static atomic_bool enabled;
static atomic_uint_fast64_t counters[MX_COUNTER_COUNT];
static atomic_uint_fast64_t rejects[MX_REJECT_COUNT];
static atomic_int_fast64_t gauges[MX_GAUGE_COUNT];

/* Availability: a part should follow its last frame within a frame or two. */
static const int64_t avail_bounds_us[] = {5000,   10000,  25000,   50000,   100000,
                                          250000, 500000, 1000000, 2500000, 5000000};
/* HTTP: from the request's first handler call to its completion (held requests too). */
static const int64_t http_bounds_us[] = {100,   250,    500,    1000,   2500,   5000,  10000,
                                         25000, 50000,  100000, 250000, 500000, 1000000,
                                         2500000, 5000000};

static struct mx_hist hists[MX_HIST_COUNT] = {
    [MX_H_PART] = {avail_bounds_us, (int)ARRAY_SIZE(avail_bounds_us)},
    [MX_H_SEGMENT] = {avail_bounds_us, (int)ARRAY_SIZE(avail_bounds_us)},
    [MX_H_HTTP] = {http_bounds_us, (int)ARRAY_SIZE(http_bounds_us)},
};

static _Atomic(struct mx_stream *) table[MX_STREAMS_MAX];
static pthread_mutex_t insert_lock = PTHREAD_MUTEX_INITIALIZER;

void mx_set_enabled(bool on)
{
    atomic_store(&enabled, on);
}

bool mx_enabled(void)
{
    return atomic_load_explicit(&enabled, memory_order_relaxed);
}

void mx_count(enum mx_counter c, uint64_t n)
{
    if (mx_enabled())
        atomic_fetch_add_explicit(&counters[c], n, memory_order_relaxed);
}

void mx_reject(enum mx_reject why)
{
    if (mx_enabled())
        atomic_fetch_add_explicit(&rejects[why], 1, memory_order_relaxed);
}

void mx_gauge_add(enum mx_gauge g, int64_t delta)
{
    /* Gauges count up and down: always kept, so that a late enable stays balanced. */
    atomic_fetch_add_explicit(&gauges[g], delta, memory_order_relaxed);
}

uint64_t mx_counter_value(enum mx_counter c)
{
    return atomic_load_explicit(&counters[c], memory_order_relaxed);
}

int64_t mx_gauge_value(enum mx_gauge g)
{
    return atomic_load_explicit(&gauges[g], memory_order_relaxed);
}

uint64_t mx_reject_value(enum mx_reject why)
{
    return atomic_load_explicit(&rejects[why], memory_order_relaxed);
}

const char *mx_reject_name(enum mx_reject why)
{
    static const char *const names[MX_REJECT_COUNT] = {"name", "busy",  "codec",
                                                       "auth", "limit", "other"};
    return names[why];
}

void mx_hist_observe(struct mx_hist *h, int64_t us)
{
    int i = 0;

    if (us < 0)
        us = 0;
    while (i < h->nbounds && us > h->bounds_us[i])
        i++;
    atomic_fetch_add_explicit(&h->buckets[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_us, (uint64_t)us, memory_order_relaxed);
}

struct mx_hist *mx_hist_get(enum mx_hist_id id)
{
    return &hists[id];
}

void mx_http_response(unsigned status, int64_t elapsed_us)
{
    if (!mx_enabled())
        return;
    mx_count(MX_HTTP_REQUESTS, 1);
    if (status >= 100 && status < 600)
        mx_count((enum mx_counter)(MX_HTTP_1XX + (status / 100 - 1)), 1);
    mx_hist_observe(&hists[MX_H_HTTP], elapsed_us);
}

/* ---- the stream table ------------------------------------------------------- */

static uint32_t name_hash(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a */

    while (*s)
        h = (h ^ (uint8_t)*s++) * 16777619u;
    return h;
}

/* The slot holding NAME, or the first empty slot of its probe sequence (-1: full). */
static int probe(const char *name, uint32_t h, struct mx_stream **found)
{
    for (unsigned i = 0; i < MX_STREAMS_MAX; i++) {
        unsigned idx = (h + i) % MX_STREAMS_MAX;
        struct mx_stream *s = atomic_load_explicit(&table[idx], memory_order_acquire);

        if (!s) {
            *found = NULL;
            return (int)idx;
        }
        if (s->hash == h && strcmp(s->name, name) == 0) {
            *found = s;
            return (int)idx;
        }
    }
    *found = NULL;
    return -1;
}

struct mx_stream *mx_stream_find(const char *name)
{
    struct mx_stream *s;

    if (!mx_enabled() || !name || strlen(name) >= MX_NAME_MAX)
        return NULL;
    probe(name, name_hash(name), &s);
    return s;
}

static struct mx_stream *stream_create(const char *name)
{
    uint32_t h = name_hash(name);
    struct mx_stream *s = NULL;
    int idx;

    pthread_mutex_lock(&insert_lock);
    idx = probe(name, h, &s);
    if (!s && idx >= 0) {
        s = calloc(1, sizeof(*s));
        if (s) {
            snprintf(s->name, sizeof(s->name), "%s", name);
            s->hash = h;
            pthread_mutex_init(&s->lock, NULL);
            snprintf(s->info.name, sizeof(s->info.name), "%s", name);
            atomic_store_explicit(&table[idx], s, memory_order_release);
        }
    }
    pthread_mutex_unlock(&insert_lock);
    return s;
}

void mx_shutdown(void)
{
    for (unsigned i = 0; i < MX_STREAMS_MAX; i++) {
        struct mx_stream *s = atomic_exchange(&table[i], NULL);

        if (s) {
            pthread_mutex_destroy(&s->lock);
            free(s);
        }
    }
}

void mx_stream_foreach(void (*fn)(void *arg, struct mx_stream *s), void *arg)
{
    for (unsigned i = 0; i < MX_STREAMS_MAX; i++) {
        struct mx_stream *s = atomic_load_explicit(&table[i], memory_order_acquire);

        if (s)
            fn(arg, s);
    }
}

/* ---- publisher side ------------------------------------------------------------ */

struct mx_stream *mx_stream_publish(const char *name, const char *peer, int segment_ms,
                                    uint64_t *publish_no)
{
    struct mx_stream *s;
    bool continues;
    int64_t since;

    if (!mx_enabled() || !name || strlen(name) >= MX_NAME_MAX)
        return NULL;
    s = stream_create(name);
    if (!s)
        return NULL;
    continues = atomic_load(&s->live);
    mx_ingest_init(&s->ing, segment_ms);
    s->next_snapshot_ms = 0;
    if (!continues) {
        atomic_store(&s->segments, 0);
        atomic_store(&s->parts, 0);
        atomic_store(&s->msn, 0);
    }
    *publish_no = atomic_fetch_add_explicit(&s->publishes, 1, memory_order_relaxed) + 1;
    mx_count(MX_PUBLISHES, 1);
    pthread_mutex_lock(&s->lock);
    since = continues ? s->info.live_since_ms : time_wall_ms();
    memset(&s->info, 0, sizeof(s->info));
    snprintf(s->info.name, sizeof(s->info.name), "%s", name);
    snprintf(s->info.peer, sizeof(s->info.peer), "%s", peer ? peer : "");
    s->info.live_since_ms = since;
    pthread_mutex_unlock(&s->lock);
    atomic_store(&s->publishing, true);
    atomic_store(&s->live, true);
    return s;
}

void mx_stream_encoder(struct mx_stream *s, const char *encoder)
{
    if (!s || !encoder)
        return;
    pthread_mutex_lock(&s->lock);
    snprintf(s->info.encoder, sizeof(s->info.encoder), "%s", encoder);
    pthread_mutex_unlock(&s->lock);
}

/* Copies the analysis into the shared snapshot (caller holds s->lock). */
static void snapshot_ingest(struct mx_stream *s)
{
    const struct mx_ingest *in = &s->ing;

    s->info.bitrate_bps = mx_ingest_bitrate_bps(in);
    s->info.framerate = mx_ingest_framerate(in);
    s->info.keyint_s = in->keyints ? (double)in->keyint_ms / 1000.0 : 0;
    s->info.drift_ms = in->have[0] && in->have[1] ? in->drift_ms : 0;
    s->info.behind_ms = in->behind_ms;
    s->info.health = in->health;
    memcpy(s->info.health_why, in->why, sizeof(s->info.health_why));
}

void mx_stream_frame(struct mx_stream *s, const struct mx_frame *f)
{
    unsigned raised;

    if (!s)
        return;
    atomic_fetch_add_explicit(&s->bytes_in, f->bytes, memory_order_relaxed);
    mx_count(MX_RTMP_BYTES_IN, f->bytes);
    raised = mx_ingest_frame(&s->ing, f);
    if (raised) {
        char mod[MX_NAME_MAX + 8];

        snprintf(mod, sizeof(mod), "health %s", s->name);
        for (int i = 0; i < MX_HEALTH_COUNT; i++)
            if (raised & (1u << i)) {
                log_warn(mod, "%s", s->ing.why[i]);
                mx_count(MX_HEALTH_WARNINGS, 1);
            }
    }
    if (raised || f->arrival_ms >= s->next_snapshot_ms) {
        pthread_mutex_lock(&s->lock);
        snapshot_ingest(s);
        pthread_mutex_unlock(&s->lock);
        s->next_snapshot_ms = f->arrival_ms + 1000;
    }
}

void mx_stream_unpublish(struct mx_stream *s, uint64_t publish_no, const char *reason)
{
    (void)reason;
    if (!s || atomic_load_explicit(&s->publishes, memory_order_relaxed) != publish_no)
        return; /* taken over: the stream is the newer publisher's */
    atomic_store(&s->publishing, false);
    pthread_mutex_lock(&s->lock);
    snapshot_ingest(s);
    pthread_mutex_unlock(&s->lock);
}

void mx_stream_error(struct mx_stream *s, const char *fmt, ...)
{
    va_list ap;

    if (!s)
        return;
    pthread_mutex_lock(&s->lock);
    va_start(ap, fmt);
    vsnprintf(s->info.last_error, sizeof(s->info.last_error), fmt, ap);
    va_end(ap);
    s->info.last_error_ms = time_wall_ms();
    pthread_mutex_unlock(&s->lock);
}

/* ---- segmenter side ---------------------------------------------------------------- */

void mx_segmenter_part(const char *name, int64_t latency_ms)
{
    struct mx_stream *s = mx_stream_find(name);

    if (!s)
        return;
    atomic_fetch_add_explicit(&s->parts, 1, memory_order_relaxed);
    mx_hist_observe(&hists[MX_H_PART], latency_ms * 1000);
}

void mx_segmenter_segment(const char *name, uint64_t msn, int64_t latency_ms)
{
    struct mx_stream *s = mx_stream_find(name);

    if (!s)
        return;
    atomic_fetch_add_explicit(&s->segments, 1, memory_order_relaxed);
    atomic_store_explicit(&s->msn, msn, memory_order_relaxed);
    mx_hist_observe(&hists[MX_H_SEGMENT], latency_ms * 1000);
}

void mx_segmenter_ended(const char *name)
{
    struct mx_stream *s = mx_stream_find(name);

    if (s)
        atomic_store(&s->live, false);
}

void mx_segmenter_media(const char *name, const char *codecs, int width, int height)
{
    struct mx_stream *s = mx_stream_find(name);

    if (!s)
        return;
    pthread_mutex_lock(&s->lock);
    snprintf(s->info.codecs, sizeof(s->info.codecs), "%s", codecs ? codecs : "");
    s->info.width = width;
    s->info.height = height;
    pthread_mutex_unlock(&s->lock);
}

/* ---- HTTP side ------------------------------------------------------------------- */

void mx_stream_served(struct mx_stream *s, uint64_t bytes)
{
    mx_count(MX_HTTP_BYTES_OUT, bytes);
    if (s)
        atomic_fetch_add_explicit(&s->bytes_out, bytes, memory_order_relaxed);
}

#define VIEWER_PROBES 16

void mx_stream_viewer(struct mx_stream *s, uint64_t addr_hash, int64_t now_ms)
{
    uint64_t key = addr_hash | 1;

    if (!s)
        return;
    for (unsigned i = 0; i < VIEWER_PROBES; i++) {
        struct mx_viewer *v = &s->viewers[(addr_hash + i) % MX_VIEWER_SLOTS];
        uint_fast64_t k = atomic_load_explicit(&v->key, memory_order_relaxed);

        if (k == key) {
            atomic_store_explicit(&v->seen_ms, now_ms, memory_order_relaxed);
            return;
        }
        /* A free or stale slot is taken over; a lost race probes on. */
        if ((k == 0 || atomic_load_explicit(&v->seen_ms, memory_order_relaxed) <
                           now_ms - MX_VIEWER_WINDOW_MS) &&
            atomic_compare_exchange_strong_explicit(&v->key, &k, key, memory_order_relaxed,
                                                    memory_order_relaxed)) {
            atomic_store_explicit(&v->seen_ms, now_ms, memory_order_relaxed);
            return;
        }
    }
    /* 16 busy slots in a row: the table is nearly full; this viewer goes uncounted. */
}

int mx_stream_viewers(struct mx_stream *s, int64_t now_ms)
{
    int n = 0;

    if (!s)
        return 0;
    for (unsigned i = 0; i < MX_VIEWER_SLOTS; i++) {
        const struct mx_viewer *v = &s->viewers[i];

        if (atomic_load_explicit(&v->key, memory_order_relaxed) &&
            atomic_load_explicit(&v->seen_ms, memory_order_relaxed) >= now_ms - MX_VIEWER_WINDOW_MS)
            n++;
    }
    return n;
}

/* ---- readers --------------------------------------------------------------------- */

void mx_stream_info(struct mx_stream *s, struct mx_stream_info *out)
{
    pthread_mutex_lock(&s->lock);
    *out = s->info;
    pthread_mutex_unlock(&s->lock);
    out->live = atomic_load(&s->live);
    out->publishing = atomic_load(&s->publishing);
    out->segments = atomic_load_explicit(&s->segments, memory_order_relaxed);
    out->parts = atomic_load_explicit(&s->parts, memory_order_relaxed);
    out->msn = atomic_load_explicit(&s->msn, memory_order_relaxed);
    out->bytes_in = atomic_load_explicit(&s->bytes_in, memory_order_relaxed);
    out->bytes_out = atomic_load_explicit(&s->bytes_out, memory_order_relaxed);
    out->publishes = atomic_load_explicit(&s->publishes, memory_order_relaxed);
    out->viewers = mx_stream_viewers(s, time_mono_ms());
}
