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

#include <stdatomic.h>
#include <stdbool.h>
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
 * Ends the publisher's claim and wakes every waiter (they get the final
 * playlist). The objects stay readable for LINGER_MS, then a later
 * store_sweep removes the stream (unless it was claimed again).
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
 * Publishes object NAME of KIND made of NBUFS buffers served back to back (a
 * segment as the list of its parts: the same bytes, no second copy). Takes
 * ownership of the caller's reference on every BUFS[i], also on error.
 * Returns 0, -EINVAL or -ENOMEM.
 */
int store_put_list(struct store_stream *ss, const char *name, enum store_kind kind,
                   struct buf *const *bufs, int nbufs);

/*
 * Reader side: looks up object OBJ of stream STREAM. Returns a new reference
 * (caller unrefs) and its kind in *KIND, or NULL if there is none. An object
 * made of several buffers is returned as one new copy (tests, tools); the
 * HTTP server uses store_get_obj instead.
 */
struct buf *store_get(struct store *st, const char *stream, const char *obj,
                      enum store_kind *kind);

/*
 * A published object as readers see it: immutable except for AUX, a slot a
 * reader may fill once (store_obj_set_aux) with something derived from the
 * bytes, e.g. a prepared HTTP response, freed with the object.
 */
struct store_obj {
    atomic_int refs;
    enum store_kind kind;
    uint32_t hash;          /* of the name */
    size_t len;             /* total bytes */
    char etag[20];          /* "\"<16 hex>\"": strong validator of the bytes */
    _Atomic(void *) aux;
    void (*aux_free)(void *);
    char name[STORE_NAME_MAX];
    int nbufs;
    struct buf *bufs[];     /* served in order */
};

/* Looks up OBJ in STREAM. Returns a new reference (store_obj_unref) or NULL. */
struct store_obj *store_get_obj(struct store *st, const char *stream, const char *obj);
struct store_obj *store_obj_ref(struct store_obj *o);
/* Drops one reference; at zero frees the aux value and unrefs the buffers. Accepts NULL. */
void store_obj_unref(struct store_obj *o);
/*
 * Sets O's aux slot to AUX if it is empty; FREE_FN frees it with the object.
 * Returns AUX if it was stored, else the value already there (the caller then
 * frees its own AUX). Thread-safe.
 */
void *store_obj_set_aux(struct store_obj *o, void *aux, void (*free_fn)(void *));

/* ---- progress and waiters (LL-HLS blocking reload, preload hints) -------- */

/*
 * Progress is ordered by one key: part P of segment MSN is STORE_KEY(MSN, P);
 * segment MSN complete is STORE_KEY(MSN, STORE_PART_END), after all of its
 * parts and before the first part of MSN + 1.
 */
#define STORE_PART_END 0xffffu
#define STORE_KEY(msn, part) (((uint64_t)(msn) << 16) | (uint64_t)(part))
#define STORE_KEY_MSN(key) ((key) >> 16)

/*
 * One suspended reader. The owner (the HTTP server) embeds it and fills WAKE
 * and KEY; the other fields belong to the store. WAKE is called once, from
 * the publisher's thread with no store lock held, after the waiter has been
 * unlinked: from then on the store no longer touches it.
 */
struct store_waiter {
    void (*wake)(struct store_waiter *w);
    uint64_t key;              /* wake once progress reaches it */
    /* store-private: */
    struct store_stream *ss;
    struct store_waiter *prev, *next;
    bool linked;
};

enum store_wait_result {
    STORE_WAIT_READY,   /* reached (or the stream ended): serve now */
    STORE_WAIT_QUEUED,  /* W is linked; its wake comes later */
    STORE_WAIT_NONE,    /* no such stream */
    STORE_WAIT_TOO_FAR, /* KEY is more than two segments past the live edge */
};

/*
 * Waits for stream STREAM to reach W->key. A live stream links W and returns
 * STORE_WAIT_QUEUED unless it is reached already; an ended one is READY.
 */
enum store_wait_result store_wait(struct store *st, const char *stream, struct store_waiter *w);

/* What store_wait would answer for KEY, without linking (QUEUED: it would wait). */
enum store_wait_result store_check(struct store *st, const char *stream, uint64_t key);

/*
 * Unlinks W if it is still waiting. Returns true if it was (the caller now
 * owns the wake-up), false if a wake is already under way or done.
 */
bool store_cancel(struct store_waiter *w);

/*
 * Publisher side: progress reached KEY (objects and the playlists that list
 * them are already put). Wakes the waiters with a key <= KEY.
 */
void store_progress(struct store_stream *ss, uint64_t key);

/* Number of readers waiting on any stream (a gauge for tests and metrics). */
long store_waiting_count(struct store *st);

/* Number of streams currently claimed by a publisher. */
int store_live_count(struct store *st);

/* ---- typed per-stream info, for listings ---------------------------------- */

/* What a public listing may say about a live stream (never a key or an address). */
struct store_stream_info {
    int64_t live_since_ms; /* wall clock (time_wall_ms) when it became playable; 0 = unset */
    int width, height;     /* video size; 0 when there is no video */
    char codecs[64];       /* RFC 6381 list, "avc1.64001e,mp4a.40.2" */
};

/*
 * Sets the info of a claimed stream (copied). A new claim clears it. Called by
 * the stream's publisher once the stream is playable.
 */
void store_set_info(struct store_stream *ss, const struct store_stream_info *info);

/* Called once per listed stream; NAME and INFO are borrowed for the call only. */
typedef void (*store_list_cb)(void *arg, const char *name, const struct store_stream_info *info);

/*
 * Lists the live streams: claimed, with info set and at least one playlist
 * published (a player can start at once). Copies them under the locks, then
 * calls CB for each outside any lock (CB may call into the store). Returns the
 * number listed or -ENOMEM.
 */
int store_list(struct store *st, store_list_cb cb, void *arg);

#endif
