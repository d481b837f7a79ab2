/*
 * HLS playlist rendering (RFC 8216 and draft-pantos-hls-rfc8216bis for the
 * tags LL-HLS adds). Pure: a playlist model in, text out. Rendered once per
 * change by the segmenter, never per request.
 */
#include <errno.h>
#include <string.h>

#include "segmenter_internal.h"

int hls_skippable(const struct hls_media_playlist *pl)
{
    double after = 0; /* duration from the end of segment i to the end of the playlist */
    int i;

    if (pl->skip_until <= 0 || pl->nsegs < 2)
        return 0;
    for (i = pl->nsegs - 1; i > 0; i--) {
        after += pl->segs[i].duration; /* an open segment's: its parts so far */
        if (after >= pl->skip_until)
            break;
    }
    /* Segments 0..i-1 end at least skip_until before the end. */
    return i > 0 ? i : 0;
}

static int render_parts(const struct hls_segment *s, struct bytes *out)
{
    int rc = 0;

    for (int p = 0; p < s->nparts; p++)
        rc |= bytes_printf(out, "#EXT-X-PART:DURATION=%.3f,URI=\"%s\"%s\n", s->parts[p].duration,
                           s->parts[p].uri, s->parts[p].independent ? ",INDEPENDENT=YES" : "");
    return rc;
}

static int render_header(const struct hls_media_playlist *pl, bool ll, struct bytes *out)
{
    int rc = 0;

    rc |= bytes_printf(out, "#EXTM3U\n#EXT-X-VERSION:%d\n", pl->skip > 0 ? 9 : 6);
    rc |= bytes_printf(out, "#EXT-X-TARGETDURATION:%d\n", pl->target_duration);
    if (ll) {
        rc |= bytes_printf(out, "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES");
        if (pl->skip_until > 0)
            rc |= bytes_printf(out, ",CAN-SKIP-UNTIL=%.1f", pl->skip_until);
        rc |= bytes_printf(out, ",PART-HOLD-BACK=%.3f\n", pl->part_hold_back);
        rc |= bytes_printf(out, "#EXT-X-PART-INF:PART-TARGET=%.3f\n", pl->part_target);
    }
    rc |= bytes_printf(out, "#EXT-X-MEDIA-SEQUENCE:%llu\n",
                       (unsigned long long)(pl->nsegs ? pl->segs[0].msn : 0));
    if (pl->discontinuity_sequence)
        rc |= bytes_printf(out, "#EXT-X-DISCONTINUITY-SEQUENCE:%llu\n",
                           (unsigned long long)pl->discontinuity_sequence);
    if (!pl->not_independent)
        rc |= bytes_printf(out, "#EXT-X-INDEPENDENT-SEGMENTS\n");
    return rc;
}

int hls_render_media(const struct hls_media_playlist *pl, struct bytes *out)
{
    bool ll = pl->part_target > 0;
    const char *map = NULL;
    int rc = 0, first = 0;

    if (pl->nsegs < 0 || pl->target_duration < 1 || pl->skip < 0 ||
        pl->skip > (pl->nsegs ? pl->nsegs - 1 : 0))
        return -EINVAL;
    rc |= render_header(pl, ll, out);
    if (pl->skip > 0) {
        rc |= bytes_printf(out, "#EXT-X-SKIP:SKIPPED-SEGMENTS=%d\n", pl->skip);
        first = pl->skip;
    }
    for (int i = first; i < pl->nsegs; i++) {
        const struct hls_segment *s = &pl->segs[i];

        /* The first segment of the window must not start with a discontinuity
         * tag: EXT-X-DISCONTINUITY-SEQUENCE already accounts for it. */
        if (s->discontinuity && i > 0)
            rc |= bytes_printf(out, "#EXT-X-DISCONTINUITY\n");
        if (!map || strcmp(map, s->map_uri) != 0) {
            rc |= bytes_printf(out, "#EXT-X-MAP:URI=\"%s\"\n", s->map_uri);
            map = s->map_uri;
        }
        if (s->pdt_ms > 0) {
            char ts[32];

            time_iso8601(s->pdt_ms, ts, sizeof(ts));
            rc |= bytes_printf(out, "#EXT-X-PROGRAM-DATE-TIME:%s\n", ts);
        }
        if (ll && i >= pl->parts_from)
            rc |= render_parts(s, out);
        if (s->uri[0])
            rc |= bytes_printf(out, "#EXTINF:%.3f,\n%s\n", s->duration, s->uri);
    }
    if (ll && pl->preload_hint && !pl->ended)
        rc |= bytes_printf(out, "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"%s\"\n", pl->preload_hint);
    if (pl->ended)
        rc |= bytes_printf(out, "#EXT-X-ENDLIST\n");
    return rc ? -ENOMEM : 0;
}

int hls_render_multivariant(const struct hls_variant *v, struct bytes *out)
{
    int rc = 0;

    /*
     * No tag here needs more than version 1 (RFC 8216 section 7): no EXT-X-VERSION.
     * No EXT-X-INDEPENDENT-SEGMENTS either: here it would hold for every segment of
     * the media playlist (RFC 8216 4.3.5.1), which says so itself unless a segment
     * was cut without a keyframe.
     */
    rc |= bytes_printf(out, "#EXTM3U\n");
    rc |= bytes_printf(out, "#EXT-X-STREAM-INF:BANDWIDTH=%ld", v->bandwidth);
    if (v->average_bandwidth > 0)
        rc |= bytes_printf(out, ",AVERAGE-BANDWIDTH=%ld", v->average_bandwidth);
    rc |= bytes_printf(out, ",CODECS=\"%s\"", v->codecs);
    if (v->width > 0 && v->height > 0)
        rc |= bytes_printf(out, ",RESOLUTION=%dx%d", v->width, v->height);
    if (v->frame_rate > 0)
        rc |= bytes_printf(out, ",FRAME-RATE=%.3f", v->frame_rate);
    rc |= bytes_printf(out, "\n%s\n", v->uri);
    return rc ? -ENOMEM : 0;
}
