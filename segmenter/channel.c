/*
 * Channels: one per live stream name, owning its playlist (finished segments,
 * media sequence, discontinuities, the fixed target duration) and its store
 * claim. Publishers attach and detach:
 *
 *   open ──► attached ──(publisher closes)──► grace ──(grace passes)──► ended
 *               ▲  │                            │        (ENDLIST, released)
 *               │  └──(a newer publish)──┐      │
 *               └────────────────────────┴──────┘ (a publish: continues after
 *                                                   EXT-X-DISCONTINUITY)
 *
 * While in grace the playlist stays live without EXT-X-ENDLIST and the claim
 * is kept, so players keep playing what is listed and blocked reloads keep
 * waiting for the next part, which a reconnecting publisher then delivers
 * under the very URI the preload hint named (URIs carry the channel's
 * generation, not the publisher's).
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libavformat/avformat.h>

#include "../metrics/metrics.h"
#include "../record/record.h"
#include "../store/store.h"
#include "segmenter.h"
#define ONAIR_SEGMENTER_STREAM
#include "segmenter_internal.h"

#define ENDED_LINGER_MIN_MS 60000 /* ended streams stay readable at least this long */
#define FIRST_BASE_MS 10000       /* output time of a channel's first frame: room for a
                                     track that started before the first one that came */
#define REATTACH_GAP_MS 500       /* a new publisher starts this far after the last one */

int seg_hub_new(struct store *st, struct seg_hub **out)
{
    struct seg_hub *h = calloc(1, sizeof(*h));

    if (!h)
        return -ENOMEM;
    h->st = st;
    /* Server start in Unix ms: generations (so every URI) differ across restarts
     * too, so no cache can confuse two runs. */
    h->gen_epoch = time_wall_ms();
    *out = h;
    return 0;
}

static void channel_unlink(struct seg_channel *c)
{
    struct seg_channel **pp = &c->hub->channels;

    while (*pp && *pp != c)
        pp = &(*pp)->next;
    if (*pp)
        *pp = c->next;
}

/* Ends C: the final playlists (ENDLIST, exact BANDWIDTH), the claim released, C freed. */
static void channel_end(struct seg_channel *c)
{
    int64_t linger = (int64_t)c->p.segment_ms * c->p.window_segments * 2;

    if (c->ndone) {
        seg_publish_playlists(c, true);
        c->announced_kbps = 0; /* exact now: the peak of every segment */
        seg_publish_multivariant(c);
    }
    log_info(c->logname, "ended after %" PRIu64 " segments", c->next_msn);
    mx_segmenter_ended(c->name);
    rec_end(c->rec); /* one recording per playlist: reconnects continue it */
    store_release(c->ss, linger > ENDED_LINGER_MIN_MS ? linger : ENDED_LINGER_MIN_MS);
    channel_unlink(c);
    for (int i = 0; i < c->ndone; i++)
        free(c->done[i].parts);
    free(c->done);
    free(c);
}

void seg_hub_tick(struct seg_hub *h)
{
    int64_t now = time_mono_ms();
    struct seg_channel *c = h->channels, *next;

    for (; c; c = next) {
        next = c->next;
        if (!c->pub && now >= c->grace_end_ms) {
            log_info(c->logname, "no publisher for %d s: the stream ends",
                     c->p.reconnect_grace_ms / 1000);
            channel_end(c);
        }
    }
}

void seg_hub_free(struct seg_hub *h)
{
    if (!h)
        return;
    while (h->channels) {
        struct seg_channel *c = h->channels;

        if (c->pub) { /* not closed: its frames are refused from now on */
            c->pub->ch = NULL;
            c->pub->taken_over = true;
        }
        channel_end(c);
    }
    free(h);
}

static int channel_new(struct seg_hub *h, const char *name, const struct seg_params *p,
                       struct seg_channel **out)
{
    struct seg_channel *c = calloc(1, sizeof(*c));
    int rc;

    if (!c)
        return -ENOMEM;
    rc = store_claim(h->st, name, &c->ss);
    if (rc < 0) {
        free(c);
        return rc;
    }
    c->hub = h;
    snprintf(c->name, sizeof(c->name), "%s", name);
    snprintf(c->logname, sizeof(c->logname), "seg live/%s", name);
    c->p = *p;
    if (c->p.segment_ms < 100)
        c->p.segment_ms = 100;
    if (c->p.window_segments < 3)
        c->p.window_segments = 3;
    if (c->p.part_ms < 0)
        c->p.part_ms = 0;
    if (c->p.reconnect_grace_ms < 0)
        c->p.reconnect_grace_ms = 0;
    if (c->p.max_segment_bytes <= 0)
        c->p.max_segment_bytes = SEG_DEFAULT_MAX_SEGMENT_BYTES;
    /* RFC 8216 6.2.1: fixed for the playlist's life; segments are cut to fit it. */
    c->target_duration = (c->p.segment_ms + 999) / 1000;
    c->rec = rec_start(p->recorder, name, c->target_duration);
    c->end_ms = FIRST_BASE_MS;
    snprintf(c->gen, sizeof(c->gen), "%011" PRIx64 "%x",
             (uint64_t)h->gen_epoch & UINT64_C(0xfffffffffff), ++h->gen_counter);
    c->next = h->channels;
    h->channels = c;
    *out = c;
    return 0;
}

void seg_channel_set_params(struct seg_channel *c, const struct seg_params *p)
{
    struct seg_params n = *p;

    if (n.segment_ms < 100)
        n.segment_ms = 100;
    if (n.segment_ms > c->target_duration * 1000)
        n.segment_ms = c->target_duration * 1000;
    if (n.window_segments < 3)
        n.window_segments = 3;
    n.part_ms = c->p.part_ms;
    if (n.reconnect_grace_ms < 0)
        n.reconnect_grace_ms = 0;
    if (n.max_segment_bytes <= 0)
        n.max_segment_bytes = SEG_DEFAULT_MAX_SEGMENT_BYTES;
    c->p.reconnect_grace_ms = n.reconnect_grace_ms; /* these two from now on */
    c->p.max_segment_bytes = n.max_segment_bytes;
    c->next_p = n;
    c->have_next_p = true;
}

static struct seg_channel *find_channel(struct seg_hub *h, const char *name)
{
    for (struct seg_channel *c = h->channels; c; c = c->next)
        if (strcmp(c->name, name) == 0)
            return c;
    return NULL;
}

int seg_channel_attach(struct seg_hub *h, const char *name, const struct seg_params *p,
                       struct seg_stream *s)
{
    struct seg_channel *c = find_channel(h, name);
    int rc;

    if (!c) {
        rc = channel_new(h, name, p, &c);
        if (rc < 0)
            return rc;
    } else if (c->pub) {
        struct seg_stream *old = c->pub;

        log_warn(c->logname, "a new publisher takes the stream over; the previous one is "
                             "disconnected");
        seg_stream_stop(old);
        old->ch = NULL;
        old->taken_over = true;
        c->pub = NULL;
        c->disc_next = c->ndone > 0;
        seg_channel_set_params(c, p);
        if (old->end_ms > c->end_ms)
            c->end_ms = old->end_ms;
    } else {
        seg_channel_set_params(c, p);
        log_info(c->logname, "publisher back after %.1f s: the playlist continues at segment "
                             "%" PRIu64,
                 (double)(time_mono_ms() - (c->grace_end_ms - c->p.reconnect_grace_ms)) / 1000,
                 c->next_msn);
    }
    c->pub = s;
    s->ch = c;
    snprintf(s->logname, sizeof(s->logname), "%s", c->logname);
    seg_clock_start(&s->clock, c->ndone ? c->end_ms + REATTACH_GAP_MS : c->end_ms,
                    2000LL * c->target_duration);
    return 0;
}

void seg_channel_detach(struct seg_stream *s)
{
    struct seg_channel *c = s->ch;

    if (!c)
        return;
    s->ch = NULL;
    c->pub = NULL;
    if (s->end_ms > c->end_ms)
        c->end_ms = s->end_ms;
    if (c->ndone == 0 || c->p.reconnect_grace_ms <= 0) {
        channel_end(c);
        return;
    }
    c->disc_next = true;
    c->grace_end_ms = time_mono_ms() + c->p.reconnect_grace_ms;
    log_info(c->logname, "publisher gone: the stream stays live for %d s for a reconnect",
             c->p.reconnect_grace_ms / 1000);
    seg_publish_playlists(c, false);
}

/* ---- the playlist's segments --------------------------------------------------- */

int seg_channel_window_first(const struct seg_channel *c)
{
    double dur = 0;
    int i = c->ndone, count = 0;

    /* RFC 8216 6.2.2: at least three target durations stay listed. */
    while (i > 0 && (count < c->p.window_segments || dur < 3.0 * c->target_duration)) {
        i--;
        dur += c->done[i].hs.duration;
        count++;
    }
    return i;
}

/* Drops segments that left the window and its grace tail (as long again). */
static void evict(struct seg_channel *c)
{
    int drop = seg_channel_window_first(c) - c->p.window_segments;

    if (drop <= 0)
        return;
    for (int i = 0; i < drop; i++) {
        struct done_segment *d = &c->done[i];

        if (d->hs.discontinuity)
            c->disc_evicted++;
        store_remove(c->ss, d->hs.uri);
        if (c->p.part_ms > 0)
            for (int p = 0; p < d->hs.nparts; p++)
                store_remove(c->ss, d->parts[p].uri);
        if (i + 1 >= drop || strcmp(d->hs.map_uri, c->done[i + 1].hs.map_uri) != 0) {
            /* The last segment that needed this init segment is gone. */
            bool used = false;

            for (int j = drop; j < c->ndone && !used; j++)
                used = strcmp(c->done[j].hs.map_uri, d->hs.map_uri) == 0;
            if (!used && !(c->pub && strcmp(c->pub->init_uri, d->hs.map_uri) == 0))
                store_remove(c->ss, d->hs.map_uri);
        }
        free(d->parts);
    }
    memmove(c->done, c->done + drop, (size_t)(c->ndone - drop) * sizeof(*c->done));
    c->ndone -= drop;
}

static int grow_done(struct seg_channel *c)
{
    struct done_segment *p;
    int cap;

    if (c->ndone < c->cap_done)
        return 0;
    cap = c->cap_done ? c->cap_done * 2 : 16;
    p = realloc(c->done, (size_t)cap * sizeof(*p));
    if (!p)
        return -ENOMEM;
    c->done = p;
    c->cap_done = cap;
    return 0;
}

/* Keeps the statistics a segment brings: frame rate and peak bitrate. */
static void segment_stats(struct seg_channel *c, const struct seg_stream *s, double duration,
                          size_t bytes)
{
    long bps = (long)((double)bytes * 8 / duration);

    if (c->frame_rate <= 0 && s->seg_video_frames > 1 && s->vidx >= 0)
        c->frame_rate = s->md.framerate > 0 ? s->md.framerate : s->seg_video_frames / duration;
    /* RFC 8216 4.3.4.2: BANDWIDTH is the peak segment bit rate, every segment
     * counted; until the first one is measured the peak is an estimate. */
    if (!c->peak_measured || bps > c->peak_bps)
        c->peak_bps = bps;
    c->peak_measured = true;
}

/* The recording hook: the segment's buffers by reference (never blocks). */
static void record_segment(struct seg_channel *c, const struct hls_segment *hs,
                           struct buf *const *bufs, int n)
{
    struct rec_segment_info info = {
        .duration = hs->duration,
        .pdt_ms = hs->pdt_ms,
        .discontinuity = hs->discontinuity,
        .live_uri = hs->uri,
    };

    rec_segment(c->rec, bufs, n, &info);
}

int seg_channel_add_segment(struct seg_channel *c, struct seg_stream *s, int64_t end_ms)
{
    struct buf **bufs = NULL;
    struct done_segment *d;
    double duration;
    int rc, n = s->nparts;

    if ((rc = grow_done(c)) < 0)
        return rc;
    duration = (double)(end_ms - s->seg_start_ms) / 1000.0;
    if (duration <= 0)
        duration = 0.001;
    d = &c->done[c->ndone];
    memset(d, 0, sizeof(*d));
    d->parts = calloc((size_t)n, sizeof(*d->parts));
    bufs = calloc((size_t)n, sizeof(*bufs));
    if (!d->parts || !bufs) {
        free(d->parts);
        free(bufs);
        return -ENOMEM;
    }
    for (int i = 0; i < n; i++) {
        d->parts[i] = s->parts[i].hp;
        d->bytes += s->parts[i].b->len;
        bufs[i] = buf_ref(s->parts[i].b);
    }
    d->independent = s->seg_independent;
    d->hs.msn = c->next_msn;
    d->hs.duration = duration;
    d->hs.pdt_ms = s->seg_pdt_ms;
    d->hs.discontinuity = c->disc_next;
    d->hs.parts = d->parts;
    d->hs.nparts = n;
    snprintf(d->hs.map_uri, sizeof(d->hs.map_uri), "%s", s->init_uri);
    snprintf(d->hs.uri, sizeof(d->hs.uri), "seg-%s-%" PRIu64 ".m4s", c->gen, c->next_msn);
    record_segment(c, &d->hs, bufs, n);
    rc = store_put_list(c->ss, d->hs.uri, STORE_SEGMENT, bufs, n);
    free(bufs);
    if (rc < 0) {
        free(d->parts);
        return rc;
    }
    mx_segmenter_segment(c->name, d->hs.msn, time_mono_ms() - s->cut_ref_ms);
    c->disc_next = false;
    c->ndone++;
    c->next_msn++;
    if (end_ms > c->end_ms)
        c->end_ms = end_ms;
    segment_stats(c, s, duration, d->bytes);
    rc = seg_publish_playlists(c, false);
    if (rc == 0 && (!c->mv_published || c->peak_bps != c->published_bps ||
                    c->frame_rate != c->published_fps))
        rc = seg_publish_multivariant(c);
    /* Its last part first (readers blocked on it), then the segment's end. */
    if (c->p.part_ms > 0)
        store_progress(c->ss, STORE_KEY(d->hs.msn, d->hs.nparts - 1));
    store_progress(c->ss, STORE_KEY(d->hs.msn, STORE_PART_END));
    log_debug(c->logname, "segment %" PRIu64 ": %.3f s, %d parts, %zu bytes%s", d->hs.msn,
              duration, d->hs.nparts, d->bytes, d->independent ? "" : " (no keyframe first)");
    evict(c);
    return rc;
}
