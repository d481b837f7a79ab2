/*
 * record — recordings of live streams, written to disk from the segments the
 * segmenter already cut (no second mux), and everything read back from them:
 * the VOD playlists, the live-rewind (DVR) playlist and the MP4 replay.
 *
 *   segmenter thread            writer thread                 remux thread
 *   rec_start ──► queue ──► mkdir PATH/NAME/ID/
 *   rec_init  ──► (bounded) ──► init-K.mp4
 *   rec_segment ─►          ──► seg-NNNNN.m4s, index.m3u8 (write + rename)
 *   rec_end   ──►           ──► index.m3u8 with ENDLIST ──► replay.mp4 (faststart)
 *
 * The segmenter hands over references to its immutable segment buffers (no
 * copy). It never waits for the disk: when the queue is full or a write
 * fails, that recording stops with one error line and the live stream goes
 * on. At start-up, recordings a crash left open are closed (ENDLIST) so that
 * they play; retention (record.max_bytes, record.max_age) deletes the oldest
 * finished recordings.
 */
#ifndef ONAIR_RECORD_H
#define ONAIR_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct buf;
struct cfg;
struct recorder;
struct recording;

/* Segments queued for the disk, all recordings together, before one stops. */
#define REC_QUEUE_MAX_BYTES (64u << 20)
#define REC_ID_MAX 32

/*
 * Starts the writer and remux threads for CFG's record.* keys (CFG is
 * referenced; record.path is fixed from now on). Unfinished recordings under
 * record.path are closed and retention applied, in the background. Returns 0
 * and the recorder in *OUT, or a negative errno (logged).
 */
int rec_new(const struct cfg *cfg, struct recorder **out);

/* A live reload: which streams are recorded and the retention limits, from now on. */
void rec_reconfigure(struct recorder *r, const struct cfg *next);

/*
 * Ends every recording still open (rec_end first where you can), writes what
 * is queued, waits for the remux jobs, stops the threads and frees R.
 * Accepts NULL.
 */
void rec_free(struct recorder *r);

/* record.path as configured at start (borrowed for R's life). */
const char *rec_root(const struct recorder *r);

/* ---- the segmenter's side: one thread per recording --------------------- */

/*
 * A new recording of stream NAME, if the config records it (record.enabled,
 * the stream's `record`). TARGET_S is the segment target duration. Returns the
 * recording (the caller's handle until rec_end) or NULL (not recorded, or out
 * of memory: logged). R may be NULL (nothing is recorded).
 */
struct recording *rec_start(struct recorder *r, const char *name, int target_s);

/*
 * A new init segment INIT: the segments that follow need it. Takes a new
 * reference on INIT. LIVE_URI is its name in the live store (for the DVR
 * playlist). RC may be NULL.
 */
void rec_init(struct recording *rc, struct buf *init, const char *live_uri);

struct rec_segment_info {
    double duration;       /* seconds */
    int64_t pdt_ms;        /* wall clock of its first sample; 0 = none */
    bool discontinuity;    /* EXT-X-DISCONTINUITY before it (a reconnect) */
    const char *live_uri;  /* its name in the live store ("seg-GEN-MSN.m4s") */
};

/*
 * A finished segment made of NBUFS buffers (served back to back). Takes new
 * references on BUFS (the caller keeps its own). Never blocks: a full queue
 * stops the recording (logged). RC may be NULL.
 */
void rec_segment(struct recording *rc, struct buf *const *bufs, int nbufs,
                 const struct rec_segment_info *info);

/* The event is over: the recording is closed and its MP4 made. RC may be NULL; gone after. */
void rec_end(struct recording *rc);

/* ---- readers (HTTP threads) ---------------------------------------------- */

/*
 * The live-rewind playlist of NAME's recording in progress: EXT-X-PLAYLIST-
 * TYPE:EVENT from its first segment, segments already on disk as
 * /vod/NAME/ID/ URIs, the rest as the live store's (relative) URIs. Returns 0
 * and a new buffer in *OUT, -ENOENT when NAME is not being recorded (or its
 * recording stopped), -ENOMEM.
 */
int rec_dvr_playlist(struct recorder *r, const char *name, struct buf **out);

/*
 * Opens ROOT/NAME/ID/ (ID NULL: ROOT/NAME/) as a directory, following no
 * link below ROOT. Returns the fd or a negative errno.
 */
int rec_open_dir(const char *root, const char *name, const char *id);

/* What a listing says about one recording (read from disk). */
struct rec_info {
    char id[REC_ID_MAX];   /* "20261128-031500": its start, UTC */
    int64_t ended_ms;      /* wall clock of its playlist's last write */
    double duration;       /* seconds, the sum of its EXTINFs */
    int segments;
    int64_t bytes;         /* every file of it, the MP4 included */
    bool finished;         /* EXT-X-ENDLIST */
    bool has_mp4;          /* replay.mp4 is ready */
};

/*
 * The recordings of NAME under ROOT, newest first. Returns their count (>= 0)
 * with a new array in *OUT (free()), -ENOENT when NAME has none, -errno.
 * Any thread.
 */
int rec_list(const char *root, const char *name, struct rec_info **out);

/*
 * The ID of NAME's newest finished recording (MP4: the newest with its
 * replay.mp4) into ID. Cheap enough per request: names sorted, then a look at
 * each playlist's last bytes (or the MP4's existence) until one qualifies.
 * Returns 0, -ENOENT, -errno. Any thread.
 */
int rec_latest(const char *root, const char *name, bool mp4, char id[REC_ID_MAX]);

#endif
