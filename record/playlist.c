/*
 * Recording playlists (RFC 8216): rendered from the event's entries, closed
 * after a crash, summarised for listings. Pure: text and structs in and out.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "record_internal.h"

void rec_seg_name(int i, char *out, size_t len)
{
    snprintf(out, len, "seg-%05d.m4s", i);
}

void rec_init_name(int k, char *out, size_t len)
{
    snprintf(out, len, "init-%d.mp4", k);
}

static int target_of(const struct rec_playlist *pl)
{
    int t = pl->target > 0 ? pl->target : 1;

    for (int i = 0; i < pl->n; i++)
        if ((int)lround(pl->entries[i].duration) > t)
            t = (int)lround(pl->entries[i].duration);
    return t;
}

int rec_render_playlist(const struct rec_playlist *pl, struct bytes *out)
{
    char map[REC_URI_MAX + 64] = "", uri[REC_URI_MAX + 64], name[32];
    int rc = 0;

    if (pl->n < 0 || !pl->prefix)
        return -EINVAL;
    rc |= bytes_printf(out, "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-TARGETDURATION:%d\n",
                       target_of(pl));
    rc |= bytes_printf(out, "#EXT-X-PLAYLIST-TYPE:%s\n#EXT-X-MEDIA-SEQUENCE:0\n",
                       pl->ended ? "VOD" : "EVENT");
    rc |= bytes_printf(out, "#EXT-X-INDEPENDENT-SEGMENTS\n");
    for (int i = 0; i < pl->n; i++) {
        const struct rec_entry *e = &pl->entries[i];
        bool live = i >= pl->live_from;
        char m[sizeof(map)];

        if (live) {
            snprintf(m, sizeof(m), "%s", e->live_map);
            snprintf(uri, sizeof(uri), "%s", e->live_uri);
        } else {
            rec_init_name(e->init, name, sizeof(name));
            snprintf(m, sizeof(m), "%s%s", pl->prefix, name);
            rec_seg_name(i, name, sizeof(name));
            snprintf(uri, sizeof(uri), "%s%s", pl->prefix, name);
        }
        if (e->discontinuity && i > 0)
            rc |= bytes_printf(out, "#EXT-X-DISCONTINUITY\n");
        if (strcmp(m, map) != 0) {
            rc |= bytes_printf(out, "#EXT-X-MAP:URI=\"%s\"\n", m);
            memcpy(map, m, sizeof(map));
        }
        if (e->pdt_ms > 0) {
            char ts[32];

            time_iso8601(e->pdt_ms, ts, sizeof(ts));
            rc |= bytes_printf(out, "#EXT-X-PROGRAM-DATE-TIME:%s\n", ts);
        }
        rc |= bytes_printf(out, "#EXTINF:%.3f,\n%s\n", e->duration, uri);
    }
    if (pl->ended || pl->ended_event)
        rc |= bytes_printf(out, "#EXT-X-ENDLIST\n");
    return rc ? -ENOMEM : 0;
}

/* The line at *POS (without its newline) into LINE and LLEN; false at the end or for a torn line. */
static bool next_line(const char *text, size_t len, size_t *pos, const char **line, size_t *llen)
{
    const char *nl;

    if (*pos >= len)
        return false;
    nl = memchr(text + *pos, '\n', len - *pos);
    if (!nl)
        return false; /* no newline: written halfway */
    *line = text + *pos;
    *llen = (size_t)(nl - *line);
    *pos = (size_t)(nl - text) + 1;
    return true;
}

static bool starts(const char *line, size_t llen, const char *tag)
{
    size_t n = strlen(tag);

    return llen >= n && memcmp(line, tag, n) == 0;
}

int rec_summarize_playlist(const char *text, size_t len, struct rec_summary *out)
{
    const char *line;
    size_t pos = 0, llen;

    memset(out, 0, sizeof(*out));
    if (!next_line(text, len, &pos, &line, &llen) || !starts(line, llen, "#EXTM3U"))
        return -EINVAL;
    while (next_line(text, len, &pos, &line, &llen)) {
        if (starts(line, llen, "#EXTINF:")) {
            char num[32];
            size_t n = llen - 8 < sizeof(num) - 1 ? llen - 8 : sizeof(num) - 1;
            double d;

            memcpy(num, line + 8, n);
            num[n] = '\0';
            d = strtod(num, NULL);
            if (isfinite(d) && d > 0 && d < 86400)
                out->duration += d;
            out->segments++;
        } else if (starts(line, llen, "#EXT-X-ENDLIST")) {
            out->ended = true;
        }
    }
    return 0;
}

int rec_close_playlist_text(const char *text, size_t len, struct bytes *out)
{
    const char *line;
    size_t pos = 0, llen, keep = 0;
    bool in_segment = false;
    int rc = 0;

    if (!next_line(text, len, &pos, &line, &llen) || !starts(line, llen, "#EXTM3U"))
        return -EINVAL;
    keep = pos;
    /* Keep whole entries only: everything up to the last URI line. */
    while (next_line(text, len, &pos, &line, &llen)) {
        if (starts(line, llen, "#EXT-X-ENDLIST"))
            return 1;
        if (llen == 0)
            continue;
        if (line[0] == '#') {
            if (!in_segment && (starts(line, llen, "#EXT-X-VERSION") ||
                                starts(line, llen, "#EXT-X-TARGETDURATION") ||
                                starts(line, llen, "#EXT-X-PLAYLIST-TYPE") ||
                                starts(line, llen, "#EXT-X-MEDIA-SEQUENCE") ||
                                starts(line, llen, "#EXT-X-INDEPENDENT-SEGMENTS")))
                keep = pos;
            else
                in_segment = true;
            continue;
        }
        keep = pos; /* a URI line ends an entry */
        in_segment = false;
    }
    pos = 0;
    while (pos < keep && next_line(text, keep, &pos, &line, &llen)) {
        if (starts(line, llen, "#EXT-X-PLAYLIST-TYPE:"))
            rc |= bytes_printf(out, "#EXT-X-PLAYLIST-TYPE:VOD\n");
        else
            rc |= bytes_append(out, line, llen + 1);
    }
    rc |= bytes_printf(out, "#EXT-X-ENDLIST\n");
    return rc ? -ENOMEM : 0;
}
