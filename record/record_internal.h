/*
 * Internal interfaces of the record module: playlist rendering and parsing
 * (playlist.c, pure) and the directory chores (disk.c). Only record/ sources
 * and the tests include this header.
 */
#ifndef ONAIR_RECORD_INTERNAL_H
#define ONAIR_RECORD_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/common.h"

#define REC_URI_MAX 96

/* One recorded segment, in the order of the event. Its file is seg-%05d.m4s of its index. */
struct rec_entry {
    double duration;
    int64_t pdt_ms;
    bool discontinuity;
    int init;                     /* its init segment: init-%d.mp4 */
    char live_uri[REC_URI_MAX];   /* name in the live store (DVR) */
    char live_map[REC_URI_MAX];   /* its init segment's name in the live store */
};

struct rec_playlist {
    const struct rec_entry *entries;
    int n;
    int target;          /* EXT-X-TARGETDURATION; raised to the longest rounded EXTINF */
    bool ended;          /* VOD + EXT-X-ENDLIST, else EVENT */
    bool ended_event;    /* EVENT + EXT-X-ENDLIST: a DVR playlist whose event ended */
    const char *prefix;  /* before disk names ("" = relative; "/vod/NAME/ID/" for DVR) */
    int live_from;       /* entries [live_from, n) use their live URIs; >= n = none */
};

/* File names of entry I and of init segment K. */
void rec_seg_name(int i, char *out, size_t len);
void rec_init_name(int k, char *out, size_t len);

/*
 * Renders PL (RFC 8216: EXT-X-PLAYLIST-TYPE EVENT or VOD, EXT-X-MAP per init
 * segment, EXT-X-DISCONTINUITY, PROGRAM-DATE-TIME) into OUT (appended).
 * Returns 0, -EINVAL or -ENOMEM.
 */
int rec_render_playlist(const struct rec_playlist *pl, struct bytes *out);

/*
 * Closes a playlist a crash left open: TEXT (LEN bytes) with its PLAYLIST-TYPE
 * set to VOD and an EXT-X-ENDLIST after its last complete segment line
 * (a torn last line is dropped). Returns 0 and the new text in OUT, 1 if it was
 * closed already (OUT untouched), -EINVAL if it is not a playlist, -ENOMEM.
 */
int rec_close_playlist_text(const char *text, size_t len, struct bytes *out);

/* What a playlist says: segments, total duration, ended. Pure. Returns 0 or -EINVAL. */
struct rec_summary {
    int segments;
    double duration;
    bool ended;
};
int rec_summarize_playlist(const char *text, size_t len, struct rec_summary *out);

#endif
