/*
 * Playlist publishing: after every part (LL-HLS) or segment, the media
 * playlist is rendered once, in its full form and as a delta update
 * (_HLS_skip), each also gzip-compressed once, and put into the store under
 * names no URL can reach ('|' is not a path character):
 *
 *   media.m3u8            media.m3u8|gz
 *   media.m3u8|skip       media.m3u8|skip|gz
 *   index.m3u8            index.m3u8|gz        (multivariant)
 *
 * The HTTP server picks one by the request's query and Accept-Encoding, so a
 * request costs a lookup and a reference, never a render or a compression.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include <libavformat/avformat.h>

#include "../store/store.h"
#include "segmenter.h"
#define ONAIR_SEGMENTER_STREAM
#include "segmenter_internal.h"

#define PARTS_LISTED_TARGETS 3 /* parts are listed for the last 3 target durations */
#define BANDWIDTH_MARGIN 1.2   /* over the encoder's announced bitrate */

/* gzip (RFC 1952) of LEN bytes at DATA as a new buffer, or NULL. */
static struct buf *gzip_buf(const uint8_t *data, size_t len)
{
    z_stream z = {0};
    struct buf *b = NULL, *out = NULL;
    int rc;

    if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return NULL;
    b = buf_new(deflateBound(&z, len) + 32);
    if (!b)
        goto out;
    z.next_in = (uint8_t *)data;
    z.avail_in = (uInt)len;
    z.next_out = b->data;
    z.avail_out = (uInt)b->len;
    rc = deflate(&z, Z_FINISH);
    if (rc == Z_STREAM_END)
        out = buf_new_copy(b->data, z.total_out);
out:
    deflateEnd(&z);
    buf_unref(b);
    return out;
}

/* Puts TEXT under NAME and its gzip form under NAME|gz. */
static int put_text(struct seg_channel *c, const char *name, const struct bytes *text)
{
    char gzname[64];
    struct buf *b = buf_new_copy(text->data, text->len);
    struct buf *z;
    int rc;

    if (!b)
        return -ENOMEM;
    /* The compressed form first: a reader that finds the new plain one must
     * not find an older compressed one. */
    z = gzip_buf(text->data, text->len);
    snprintf(gzname, sizeof(gzname), "%s|gz", name);
    if (z)
        store_put(c->ss, gzname, STORE_PLAYLIST, z);
    else
        store_remove(c->ss, gzname); /* the HTTP server then serves identity */
    rc = store_put(c->ss, name, STORE_PLAYLIST, b);
    return rc;
}

/* Index of the first segment whose parts are listed: the last few targets. */
static int parts_from(const struct hls_segment *segs, int n, int target)
{
    double span = 0;
    int i;

    for (i = n - 1; i > 0; i--) {
        span += segs[i].duration;
        if (span >= PARTS_LISTED_TARGETS * target)
            break;
    }
    return i;
}

/* The segment being filled by the attached publisher, listed by its parts only. */
static int open_segment(const struct seg_channel *c, struct hls_segment *o,
                        struct hls_part **parts)
{
    const struct seg_stream *s = c->pub;

    *parts = NULL;
    if (s->nparts) {
        *parts = calloc((size_t)s->nparts, sizeof(**parts));
        if (!*parts)
            return -ENOMEM;
        for (int i = 0; i < s->nparts; i++) {
            (*parts)[i] = s->parts[i].hp;
            o->duration += s->parts[i].hp.duration;
        }
    }
    o->msn = c->next_msn;
    o->pdt_ms = s->seg_pdt_ms;
    o->discontinuity = c->disc_next;
    snprintf(o->map_uri, sizeof(o->map_uri), "%s", s->init_uri);
    o->parts = *parts;
    o->nparts = s->nparts;
    return 0;
}

int seg_publish_playlists(struct seg_channel *c, bool ended)
{
    int first = seg_channel_window_first(c);
    int n = c->ndone - first;
    struct hls_media_playlist pl = {0};
    struct hls_part *open_parts = NULL;
    struct hls_segment *segs;
    struct bytes text = {0};
    char hint[HLS_URI_MAX];
    bool ll = c->p.part_ms > 0;
    int rc;

    /*
     * A live reload that widens the window must not list again segments that
     * already left it: the media sequence never goes back (RFC 8216 6.2.1).
     */
    while (n > 0 && c->done[first].hs.msn < c->listed_msn) {
        first++;
        n--;
    }
    segs = calloc((size_t)n + 1, sizeof(*segs));
    if (!segs)
        return -ENOMEM;
    /* EXT-X-DISCONTINUITY-SEQUENCE counts the first listed segment's own
     * discontinuity too: the renderer does not repeat it (RFC 8216 6.2.2). */
    pl.discontinuity_sequence = c->disc_evicted;
    for (int i = 0; i <= first && i < c->ndone; i++)
        pl.discontinuity_sequence += c->done[i].hs.discontinuity;
    for (int i = 0; i < n; i++) {
        segs[i] = c->done[first + i].hs;
        if (!c->done[first + i].independent)
            pl.not_independent = true;
    }
    if (ll && !ended && c->pub && c->pub->seg_open) {
        rc = open_segment(c, &segs[n], &open_parts);
        if (rc < 0) {
            free(segs);
            return rc;
        }
        if (n == 0 && segs[n].discontinuity)
            pl.discontinuity_sequence++;
        if (!c->pub->seg_independent)
            pl.not_independent = true;
        n++;
    }
    if (ll && !ended) {
        /* The part being filled (or, right after a segment or while no one
         * publishes, the next segment's first part). */
        snprintf(hint, sizeof(hint), "part-%s-%llu-%d.m4s", c->gen,
                 (unsigned long long)c->next_msn,
                 c->pub && c->pub->seg_open ? c->pub->nparts : 0);
        pl.preload_hint = hint;
    }
    pl.target_duration = c->target_duration;
    pl.ended = ended;
    pl.segs = segs;
    pl.nsegs = n;
    if (ll) {
        pl.part_target = seg_part_target_ms(c->p.part_ms) / 1000.0;
        pl.part_hold_back = 3 * pl.part_target;
        pl.skip_until = 6.0 * c->target_duration;
        pl.parts_from = parts_from(segs, n, c->target_duration);
    }
    rc = hls_render_media(&pl, &text);
    if (rc == 0)
        rc = put_text(c, "media.m3u8", &text);
    if (rc == 0 && n > 0)
        c->listed_msn = segs[0].msn;
    if (rc == 0 && ll) {
        /* The delta update: skip what the player already has. Without
         * anything to skip it is the full playlist, which is also valid. */
        pl.skip = hls_skippable(&pl);
        text.len = 0;
        rc = hls_render_media(&pl, &text);
        if (rc == 0)
            rc = put_text(c, "media.m3u8|skip", &text);
    }
    bytes_reset(&text);
    free(open_parts);
    free(segs);
    return rc;
}

int seg_publish_multivariant(struct seg_channel *c)
{
    struct hls_variant v = {0};
    struct bytes text = {0};
    long announced = 0;
    int rc;

    /* RFC 8216 4.3.4.2: BANDWIDTH must not be below any segment's bit rate:
     * the measured peak, or the announced rate with a margin while higher. */
    if (c->announced_kbps > 0)
        announced = lround(c->announced_kbps * 1000 * BANDWIDTH_MARGIN);
    v.bandwidth = c->peak_bps > announced ? c->peak_bps : announced;
    if (v.bandwidth <= 0)
        v.bandwidth = 1;
    v.codecs = c->codecs;
    v.width = c->width;
    v.height = c->height;
    if (c->width > 0)
        v.frame_rate = c->frame_rate;
    v.uri = "media.m3u8";
    rc = hls_render_multivariant(&v, &text);
    if (rc == 0)
        rc = put_text(c, "index.m3u8", &text);
    bytes_reset(&text);
    if (rc == 0) {
        c->published_bps = c->peak_bps;
        c->mv_published = true;
        c->published_fps = c->frame_rate;
    }
    return rc;
}
