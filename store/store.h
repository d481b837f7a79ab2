/*
 * store — the in-memory object store between the segmenter (writer) and the
 * HTTP server (readers). Objects are immutable refcounted buffers (struct buf)
 * named by their URL path inside a stream ("index.m3u8", "seg-<gen>-<msn>.m4s").
 *
 * Locking: one mutex for the stream table, one per stream for its objects; a
 * lock is held only to look up or swap a pointer and take a reference.
 */
#ifndef ONAIR_STORE_H
#define ONAIR_STORE_H

#include <stdint.h>

#include "../common/common.h"

enum store_kind {
    STORE_PLAYLIST, /* live playlist: short-lived */
    STORE_INIT,     /* init segment: immutable */
    STORE_SEGMENT,  /* media segment: immutable */
    STORE_PART,     /* LL-HLS part: immutable */
};

#define STORE_NAME_MAX 128

struct store;
struct store_stream;

/* Returns a new empty store, or NULL on OOM. */
struct store *store_new(void);
/* Frees the store and drops every object's reference. No stream may be claimed. */
void store_free(struct store *st);

/*
 * Claims stream NAME for one publisher. Creates it if needed; an existing
 * unclaimed (ended) stream is emptied and reused. Returns 0 and the stream in
 * *OUT (borrowed until store_release), -EBUSY if another publisher holds it,
 * -EINVAL if NAME is empty or not shorter than STORE_NAME_MAX, -ENOMEM.
 */
int store_claim(struct store *st, const char *name, struct store_stream **out);

/*
 * Ends the publisher's claim. The objects stay readable for LINGER_MS, then a
 * later store_sweep removes the stream (unless it was claimed again).
 */
void store_release(struct store_stream *ss, int64_t linger_ms);

/* Removes streams whose linger time passed. Call periodically from one thread. */
void store_sweep(struct store *st);

/*
 * Publishes object NAME of KIND. Takes ownership of the caller's reference on
 * B, also on error; replaces (and unrefs) any object of the same name.
 * Returns 0, -EINVAL (NAME empty or too long) or -ENOMEM.
 */
int store_put(struct store_stream *ss, const char *name, enum store_kind kind, struct buf *b);

/* Removes object NAME (unref). Missing names are ignored. */
void store_remove(struct store_stream *ss, const char *name);

/* Name of a claimed stream (borrowed for the claim's lifetime). */
const char *store_stream_name(const struct store_stream *ss);

/*
 * Reader side: looks up object OBJ of stream STREAM. Returns a new reference
 * (caller unrefs) and its kind in *KIND, or NULL if there is none.
 */
struct buf *store_get(struct store *st, const char *stream, const char *obj,
                      enum store_kind *kind);

/* Number of streams currently claimed by a publisher. */
int store_live_count(struct store *st);

#endif
