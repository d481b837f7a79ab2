/*
 * HLS playlist rendering (RFC 8216 and draft-pantos-hls-rfc8216bis for the
 * tags LL-HLS adds). Pure: a playlist model in, text out. Rendered once per
 * change by the segmenter, never per request.
 */
#include <errno.h>
#include <string.h>

#include "segmenter_internal.h"

int hls_render_media(const struct hls_media_playlist *pl, struct bytes *out)
{
    const char *map = NULL;
    int rc = 0;

    if (pl->nsegs < 0 || pl->target_duration < 1)
        return -EINVAL;
    rc |= bytes_printf(out, "#EXTM3U\n#EXT-X-VERSION:%d\n", pl->version);
    rc |= bytes_printf(out, "#EXT-X-TARGETDURATION:%d\n", pl->target_duration);
    rc |= bytes_printf(out, "#EXT-X-MEDIA-SEQUENCE:%llu\n",
                       (unsigned long long)(pl->nsegs ? pl->segs[0].msn : 0));
    if (pl->discontinuity_sequence)
        rc |= bytes_printf(out, "#EXT-X-DISCONTINUITY-SEQUENCE:%llu\n",
                           (unsigned long long)pl->discontinuity_sequence);
    rc |= bytes_printf(out, "#EXT-X-INDEPENDENT-SEGMENTS\n");

    for (int i = 0; i < pl->nsegs; i++) {
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
        rc |= bytes_printf(out, "#EXTINF:%.3f,\n%s\n", s->duration, s->uri);
    }
    if (pl->ended)
        rc |= bytes_printf(out, "#EXT-X-ENDLIST\n");
    return rc ? -ENOMEM : 0;
}

int hls_render_multivariant(const struct hls_variant *v, struct bytes *out)
{
    int rc = 0;

    rc |= bytes_printf(out, "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n");
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
