/*
 * store — streams in a chained hash table under one table mutex; each stream
 * holds a small unsorted array of objects under its own mutex.
 *
 * Lock order: table mutex, then a stream mutex (never the other way round).
 * Readers go hand over hand: table lock → find stream → stream lock → table
 * unlock → look up and ref → stream unlock. The publisher only takes its
 * stream's lock, so writers of different streams never contend and readers
 * hold the table lock just for one hash lookup.
 *
 * A stream is freed only by store_sweep (or store_free), which unlinks it under
 * the table lock and then takes and drops its stream lock: any reader that
 * found the stream before the unlink holds that lock, so once sweep gets it no
 * one else can reach the stream.
 *
 * Fields and the lock that protects them:
 *   table lock:  buckets, stream->next, claimed, expire_ms, live_count
 *   stream lock: objs, nobjs, cap, version, progress1, the waiter list, info
 *   immutable while linked: name, st
 */
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "store.h"

#define NBUCKETS 64 /* power of two; a server carries tens of streams, not thousands */

struct store_stream {
    struct store_stream *next; /* bucket chain */
    struct store *st;
    char name[STORE_NAME_MAX];
    bool claimed;
    int64_t expire_ms; /* when unclaimed: time_mono_ms() after which sweep frees it */

    pthread_mutex_t mu;
    struct store_obj **objs;
    size_t nobjs, cap;
    uint64_t version;  /* bumped on every change of the object set */
    /* LL-HLS: latest progress key + 1 (0 = nothing yet), waiters sorted by key */
    uint64_t progress1;
    uint64_t ended_msn1;  /* latest completed segment + 1 (0 = none) ... */
    unsigned ended_parts; /* ... and its number of parts */
    struct store_waiter *wait_head, *wait_tail;
    long nwaiting;
    struct store_stream_info info; /* live_since_ms == 0: not set */
};

struct store {
    pthread_mutex_t mu;
    struct store_stream *buckets[NBUCKETS];
    int live_count;
    atomic_long waiting;
};

static uint32_t hash_name(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a */

    for (; *s; s++) {
        h ^= (uint8_t)*s;
        h *= 16777619u;
    }
    return h;
}

static struct store_stream **bucket_of(struct store *st, const char *name)
{
    return &st->buckets[hash_name(name) & (NBUCKETS - 1)];
}

/* Caller holds the table lock. */
static struct store_stream *find_stream(struct store *st, const char *name)
{
    struct store_stream *ss;

    for (ss = *bucket_of(st, name); ss; ss = ss->next)
        if (strcmp(ss->name, name) == 0)
            return ss;
    return NULL;
}

/* Caller holds the stream lock. Returns the index of NAME or -1. */
static long find_obj(const struct store_stream *ss, const char *name, uint32_t hash)
{
    for (size_t i = 0; i < ss->nobjs; i++)
        if (ss->objs[i]->hash == hash && strcmp(ss->objs[i]->name, name) == 0)
            return (long)i;
    return -1;
}

/* Caller holds the stream lock (or owns the stream alone). */
static void drop_objects(struct store_stream *ss)
{
    for (size_t i = 0; i < ss->nobjs; i++)
        store_obj_unref(ss->objs[i]);
    ss->nobjs = 0;
}

/* ---- objects --------------------------------------------------------------- */

static uint64_t fnv1a64(uint64_t h, const uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    return h;
}

/* A new object (one reference) owning BUFS' references; NULL on OOM (refs dropped). */
static struct store_obj *obj_new(const char *name, size_t namelen, enum store_kind kind,
                                 struct buf *const *bufs, int nbufs)
{
    struct store_obj *o = calloc(1, sizeof(*o) + (size_t)nbufs * sizeof(o->bufs[0]));
    uint64_t h = 14695981039346656037ull;

    if (!o) {
        for (int i = 0; i < nbufs; i++)
            buf_unref(bufs[i]);
        return NULL;
    }
    atomic_init(&o->refs, 1);
    atomic_init(&o->aux, NULL);
    o->kind = kind;
    o->hash = hash_name(name);
    memcpy(o->name, name, namelen + 1);
    o->nbufs = nbufs;
    for (int i = 0; i < nbufs; i++) {
        o->bufs[i] = bufs[i];
        o->len += bufs[i]->len;
        /* Media objects are immutable and never revalidated: only playlists
         * pay for a content hash, once per publish rather than per request. */
        if (kind == STORE_PLAYLIST)
            h = fnv1a64(h, bufs[i]->data, bufs[i]->len);
    }
    if (kind == STORE_PLAYLIST)
        snprintf(o->etag, sizeof(o->etag), "\"%016llx\"", (unsigned long long)h);
    return o;
}

struct store_obj *store_obj_ref(struct store_obj *o)
{
    int old = atomic_fetch_add(&o->refs, 1);

    assert(old > 0);
    (void)old;
    return o;
}

void store_obj_unref(struct store_obj *o)
{
    int old;
    void *aux;

    if (!o)
        return;
    old = atomic_fetch_sub(&o->refs, 1);
    assert(old > 0 && "store_obj refcount underflow");
    if (old != 1)
        return;
    aux = atomic_load(&o->aux);
    if (aux && o->aux_free)
        o->aux_free(aux);
    for (int i = 0; i < o->nbufs; i++)
        buf_unref(o->bufs[i]);
    free(o);
}

void *store_obj_set_aux(struct store_obj *o, void *aux, void (*free_fn)(void *))
{
    void *expected = NULL;

    if (!atomic_compare_exchange_strong(&o->aux, &expected, aux))
        return expected;
    /* Only the winner writes it; the last unref reads it, ordered after our
     * own unref by the atomic refcount. */
    o->aux_free = free_fn;
    return aux;
}

/* The stream must be unlinked and unreachable. */
static void stream_free(struct store_stream *ss)
{
    drop_objects(ss);
    free(ss->objs);
    pthread_mutex_destroy(&ss->mu);
    free(ss);
}

struct store *store_new(void)
{
    struct store *st = calloc(1, sizeof(*st));

    if (!st)
        return NULL;
    atomic_init(&st->waiting, 0);
    if (pthread_mutex_init(&st->mu, NULL) != 0) {
        free(st);
        return NULL;
    }
    return st;
}

void store_free(struct store *st)
{
    if (!st)
        return;
    for (size_t i = 0; i < NBUCKETS; i++) {
        struct store_stream *ss = st->buckets[i], *next;

        for (; ss; ss = next) {
            next = ss->next;
            assert(!ss->claimed && "store_free with a claimed stream");
            stream_free(ss);
        }
    }
    pthread_mutex_destroy(&st->mu);
    free(st);
}

/* Caller holds the stream lock: moves the objects out, to be freed unlocked. */
static struct store_obj **take_objects(struct store_stream *ss, size_t *n)
{
    struct store_obj **objs = ss->objs;

    *n = ss->nobjs;
    ss->objs = NULL;
    ss->nobjs = ss->cap = 0;
    return objs;
}

static void free_objects(struct store_obj **objs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        store_obj_unref(objs[i]);
    free(objs);
}

int store_claim(struct store *st, const char *name, struct store_stream **out)
{
    struct store_stream *ss;
    struct store_obj **old = NULL;
    size_t nold = 0, len = strlen(name);
    int rc = 0;

    if (len == 0 || len >= STORE_NAME_MAX)
        return -EINVAL;
    pthread_mutex_lock(&st->mu);
    ss = find_stream(st, name);
    if (ss) {
        if (ss->claimed) {
            rc = -EBUSY;
            goto out;
        }
        /* An ended stream still lingering: start the new publisher empty (the
         * old objects are freed after the locks are dropped). */
        pthread_mutex_lock(&ss->mu);
        old = take_objects(ss, &nold);
        ss->version++;
        ss->progress1 = 0;
        ss->ended_msn1 = 0;
        memset(&ss->info, 0, sizeof(ss->info));
        pthread_mutex_unlock(&ss->mu);
    } else {
        ss = calloc(1, sizeof(*ss));
        if (!ss) {
            rc = -ENOMEM;
            goto out;
        }
        if (pthread_mutex_init(&ss->mu, NULL) != 0) {
            free(ss);
            rc = -ENOMEM;
            goto out;
        }
        memcpy(ss->name, name, len + 1);
        ss->st = st;
        ss->next = *bucket_of(st, name);
        *bucket_of(st, name) = ss;
    }
    ss->claimed = true;
    ss->expire_ms = 0;
    st->live_count++;
    *out = ss;
out:
    pthread_mutex_unlock(&st->mu);
    free_objects(old, nold);
    return rc;
}

/* Unlinks from SS every waiter with key <= LIMIT (all if ALL) and returns them
 * as a list through ->next. Caller holds the stream lock. */
static struct store_waiter *unlink_reached(struct store_stream *ss, uint64_t limit, bool all)
{
    struct store_waiter *head = ss->wait_head, *w = head, *last = NULL;
    long n = 0;

    while (w && (all || w->key <= limit)) {
        w->linked = false;
        last = w;
        w = w->next;
        n++;
    }
    if (!last)
        return NULL;
    last->next = NULL;
    ss->wait_head = w;
    if (w)
        w->prev = NULL;
    else
        ss->wait_tail = NULL;
    ss->nwaiting -= n;
    atomic_fetch_sub(&ss->st->waiting, n);
    return head;
}

/* Calls each waiter's wake; no lock may be held. */
static void wake_list(struct store_waiter *w)
{
    while (w) {
        struct store_waiter *next = w->next; /* W may be gone once woken */

        w->wake(w);
        w = next;
    }
}

void store_release(struct store_stream *ss, int64_t linger_ms)
{
    struct store *st;
    struct store_waiter *woken;

    if (!ss)
        return;
    st = ss->st;
    pthread_mutex_lock(&st->mu);
    assert(ss->claimed && "store_release of an unclaimed stream");
    ss->claimed = false;
    ss->expire_ms = time_mono_ms() + (linger_ms > 0 ? linger_ms : 0);
    st->live_count--;
    pthread_mutex_lock(&ss->mu);
    woken = unlink_reached(ss, 0, true);
    pthread_mutex_unlock(&ss->mu);
    pthread_mutex_unlock(&st->mu);
    wake_list(woken);
}

void store_sweep(struct store *st)
{
    int64_t now = time_mono_ms();
    struct store_stream *dead = NULL;

    pthread_mutex_lock(&st->mu);
    for (size_t i = 0; i < NBUCKETS; i++) {
        struct store_stream **pp = &st->buckets[i];

        while (*pp) {
            struct store_stream *ss = *pp;

            if (ss->claimed || now < ss->expire_ms) {
                pp = &ss->next;
                continue;
            }
            *pp = ss->next;
            ss->next = dead;
            dead = ss;
        }
    }
    pthread_mutex_unlock(&st->mu);
    /* Freed outside the table lock: other streams' readers never wait on it. */
    while (dead) {
        struct store_stream *ss = dead;

        dead = ss->next;
        /* Wait out a reader that found it before the unlink (see top). */
        pthread_mutex_lock(&ss->mu);
        assert(!ss->wait_head && "unclaimed stream with waiters");
        pthread_mutex_unlock(&ss->mu);
        stream_free(ss);
    }
}

/* Inserts or replaces O (taking our reference). Returns the replaced object, to
 * be unreffed unlocked, or O itself if it could not be stored (-ENOMEM). */
static struct store_obj *insert_obj(struct store_stream *ss, struct store_obj *o, int *rc)
{
    struct store_obj *old = NULL;
    long i;

    *rc = 0;
    pthread_mutex_lock(&ss->mu);
    i = find_obj(ss, o->name, o->hash);
    if (i >= 0) {
        old = ss->objs[i];
        ss->objs[i] = o;
    } else {
        if (ss->nobjs == ss->cap) {
            size_t cap = ss->cap ? ss->cap * 2 : 32;
            struct store_obj **p = realloc(ss->objs, cap * sizeof(*p));

            if (!p) {
                old = o;
                *rc = -ENOMEM;
                goto out;
            }
            ss->objs = p;
            ss->cap = cap;
        }
        ss->objs[ss->nobjs++] = o;
    }
    ss->version++;
out:
    pthread_mutex_unlock(&ss->mu);
    return old;
}

int store_put_list(struct store_stream *ss, const char *name, enum store_kind kind,
                   struct buf *const *bufs, int nbufs)
{
    size_t len = strlen(name);
    struct store_obj *o;
    int rc;

    if (len == 0 || len >= STORE_NAME_MAX || nbufs < 0) {
        for (int i = 0; i < nbufs; i++)
            buf_unref(bufs[i]);
        return -EINVAL;
    }
    o = obj_new(name, len, kind, bufs, nbufs);
    if (!o)
        return -ENOMEM;
    /* The old object may be the last reference to megabytes: freed unlocked. */
    store_obj_unref(insert_obj(ss, o, &rc));
    return rc;
}

int store_put(struct store_stream *ss, const char *name, enum store_kind kind, struct buf *b)
{
    return store_put_list(ss, name, kind, &b, 1);
}

void store_remove(struct store_stream *ss, const char *name)
{
    struct store_obj *old = NULL;
    long i;

    pthread_mutex_lock(&ss->mu);
    i = find_obj(ss, name, hash_name(name));
    if (i >= 0) {
        old = ss->objs[i];
        ss->objs[i] = ss->objs[ss->nobjs - 1]; /* order does not matter */
        ss->nobjs--;
        ss->version++;
    }
    pthread_mutex_unlock(&ss->mu);
    store_obj_unref(old);
}

const char *store_stream_name(const struct store_stream *ss)
{
    return ss->name;
}

/* Finds STREAM and returns it with its lock held, or NULL (hand over hand, see top). */
static struct store_stream *lock_stream(struct store *st, const char *stream)
{
    struct store_stream *ss;

    pthread_mutex_lock(&st->mu);
    ss = find_stream(st, stream);
    if (ss)
        pthread_mutex_lock(&ss->mu);
    pthread_mutex_unlock(&st->mu);
    return ss;
}

struct store_obj *store_get_obj(struct store *st, const char *stream, const char *obj)
{
    struct store_stream *ss = lock_stream(st, stream);
    struct store_obj *o = NULL;
    long i;

    if (!ss)
        return NULL;
    i = find_obj(ss, obj, hash_name(obj));
    if (i >= 0)
        o = store_obj_ref(ss->objs[i]);
    pthread_mutex_unlock(&ss->mu);
    return o;
}

struct buf *store_get(struct store *st, const char *stream, const char *obj, enum store_kind *kind)
{
    struct store_obj *o = store_get_obj(st, stream, obj);
    struct buf *b = NULL;

    if (!o)
        return NULL;
    if (o->nbufs == 1) {
        b = buf_ref(o->bufs[0]);
    } else if ((b = buf_new(o->len)) != NULL) {
        size_t at = 0;

        for (int i = 0; i < o->nbufs; i++) {
            memcpy(b->data + at, o->bufs[i]->data, o->bufs[i]->len);
            at += o->bufs[i]->len;
        }
    }
    if (b && kind)
        *kind = o->kind;
    store_obj_unref(o);
    return b;
}

int store_live_count(struct store *st)
{
    int n;

    pthread_mutex_lock(&st->mu);
    n = st->live_count;
    pthread_mutex_unlock(&st->mu);
    return n;
}

/* ---- progress and waiters -------------------------------------------------- */

/* The segment being built: the one after a completed segment, else the latest part's. */
static uint64_t live_msn(const struct store_stream *ss)
{
    uint64_t key;

    if (!ss->progress1)
        return 0;
    key = ss->progress1 - 1;
    return STORE_KEY_MSN(key) + ((key & STORE_PART_END) == STORE_PART_END ? 1 : 0);
}

/*
 * Part P of segment N, when N is complete with fewer parts, is the first part
 * of N + 1 ("that part or later", draft 8216bis 6.2.5.2).
 */
static uint64_t effective_key(const struct store_stream *ss, uint64_t key)
{
    uint64_t part = key & STORE_PART_END;

    /* (No parts announced, LL-HLS off: the segment itself is the answer.) */
    if (ss->ended_msn1 && ss->ended_parts && STORE_KEY_MSN(key) == ss->ended_msn1 - 1 &&
        part != STORE_PART_END && part >= ss->ended_parts)
        return STORE_KEY(STORE_KEY_MSN(key) + 1, 0);
    return key;
}

/* Caller holds both locks. QUEUED means "would wait". */
static enum store_wait_result verdict(const struct store_stream *ss, uint64_t key)
{
    key = effective_key(ss, key);
    if (!ss->claimed)
        return STORE_WAIT_READY; /* ended: the final playlist is the answer */
    if (ss->progress1 && key <= ss->progress1 - 1)
        return STORE_WAIT_READY;
    if (STORE_KEY_MSN(key) > live_msn(ss) + 2)
        return STORE_WAIT_TOO_FAR;
    return STORE_WAIT_QUEUED;
}

/* store_wait and store_check: links W only if given (and it would wait). */
static enum store_wait_result wait_or_check(struct store *st, const char *stream, uint64_t key,
                                            struct store_waiter *w)
{
    struct store_stream *ss;
    enum store_wait_result res;

    pthread_mutex_lock(&st->mu);
    ss = find_stream(st, stream);
    if (!ss) {
        pthread_mutex_unlock(&st->mu);
        return STORE_WAIT_NONE;
    }
    pthread_mutex_lock(&ss->mu);
    res = verdict(ss, key);
    if (res == STORE_WAIT_QUEUED && w) {
        w->key = effective_key(ss, w->key);
        /* Sorted by key; new waiters usually want the newest part: walk from the tail. */
        struct store_waiter *after = ss->wait_tail;

        while (after && after->key > w->key)
            after = after->prev;
        w->ss = ss;
        w->prev = after;
        w->next = after ? after->next : ss->wait_head;
        if (w->next)
            w->next->prev = w;
        else
            ss->wait_tail = w;
        if (after)
            after->next = w;
        else
            ss->wait_head = w;
        w->linked = true;
        ss->nwaiting++;
        atomic_fetch_add(&st->waiting, 1);
    }
    pthread_mutex_unlock(&ss->mu);
    pthread_mutex_unlock(&st->mu);
    return res;
}

enum store_wait_result store_check(struct store *st, const char *stream, uint64_t key)
{
    return wait_or_check(st, stream, key, NULL);
}

enum store_wait_result store_wait(struct store *st, const char *stream, struct store_waiter *w)
{
    return wait_or_check(st, stream, w->key, w);
}

bool store_cancel(struct store_waiter *w)
{
    struct store_stream *ss = w->ss;
    bool was;

    if (!ss)
        return false;
    /* A linked waiter keeps its stream claimed-or-lingering: release wakes all
     * waiters before a stream can expire, so SS is still valid here. */
    pthread_mutex_lock(&ss->mu);
    was = w->linked;
    if (was) {
        if (w->prev)
            w->prev->next = w->next;
        else
            ss->wait_head = w->next;
        if (w->next)
            w->next->prev = w->prev;
        else
            ss->wait_tail = w->prev;
        w->linked = false;
        ss->nwaiting--;
        atomic_fetch_sub(&ss->st->waiting, 1);
    }
    pthread_mutex_unlock(&ss->mu);
    return was;
}

/*
 * Segment MSN just completed after part PREV: waiters for a part of MSN that
 * it never got now wait for the first part of MSN + 1. They sit just before
 * the waiters for MSN's end in the sorted list; moved to the front of what
 * remains once those are gone, which stays sorted.
 */
static void requeue_missing_parts(struct store_stream *ss, uint64_t msn, uint64_t prev1,
                                  struct store_waiter **woken)
{
    struct store_waiter *first = NULL, *last = NULL, **pp = woken;

    while (*pp) {
        struct store_waiter *w = *pp;
        uint64_t part = w->key & STORE_PART_END;

        if (STORE_KEY_MSN(w->key) != msn || part == STORE_PART_END ||
            (prev1 && w->key <= prev1 - 1)) {
            pp = &w->next;
            continue;
        }
        *pp = w->next; /* out of the wake list ... */
        w->key = STORE_KEY(msn + 1, 0);
        w->linked = true;
        w->prev = last;
        w->next = NULL;
        if (last)
            last->next = w;
        else
            first = w;
        last = w;
        ss->nwaiting++;
        atomic_fetch_add(&ss->st->waiting, 1);
    }
    if (!first)
        return;
    /* ... and back at the head of the list (every key left there is larger). */
    last->next = ss->wait_head;
    if (ss->wait_head)
        ss->wait_head->prev = last;
    else
        ss->wait_tail = last;
    ss->wait_head = first;
}

void store_progress(struct store_stream *ss, uint64_t key)
{
    struct store_waiter *woken;
    uint64_t prev1;

    pthread_mutex_lock(&ss->mu);
    prev1 = ss->progress1;
    if (key + 1 > ss->progress1)
        ss->progress1 = key + 1;
    woken = unlink_reached(ss, ss->progress1 - 1, false);
    if ((key & STORE_PART_END) == STORE_PART_END) {
        uint64_t msn = STORE_KEY_MSN(key);

        ss->ended_msn1 = msn + 1;
        ss->ended_parts = prev1 && STORE_KEY_MSN(prev1 - 1) == msn &&
                                  ((prev1 - 1) & STORE_PART_END) != STORE_PART_END
                              ? (unsigned)((prev1 - 1) & STORE_PART_END) + 1
                              : 0;
        if (ss->ended_parts) /* without LL-HLS no part is announced: all are woken */
            requeue_missing_parts(ss, msn, prev1, &woken);
    }
    pthread_mutex_unlock(&ss->mu);
    wake_list(woken);
}

long store_waiting_count(struct store *st)
{
    return atomic_load(&st->waiting);
}

/* ---- typed per-stream info ----------------------------------------------- */

void store_set_info(struct store_stream *ss, const struct store_stream_info *info)
{
    pthread_mutex_lock(&ss->mu);
    ss->info = *info;
    ss->info.codecs[sizeof(ss->info.codecs) - 1] = '\0';
    pthread_mutex_unlock(&ss->mu);
}

struct listed {
    char name[STORE_NAME_MAX];
    struct store_stream_info info;
};

/* Caller holds the stream lock. */
static bool has_playlist(const struct store_stream *ss)
{
    for (size_t i = 0; i < ss->nobjs; i++)
        if (ss->objs[i]->kind == STORE_PLAYLIST)
            return true;
    return false;
}

int store_list(struct store *st, store_list_cb cb, void *arg)
{
    struct listed *items = NULL;
    size_t n = 0, cap;

    pthread_mutex_lock(&st->mu);
    cap = st->live_count > 0 ? (size_t)st->live_count : 0;
    if (cap > 0) {
        items = malloc(cap * sizeof(*items));
        if (!items) {
            pthread_mutex_unlock(&st->mu);
            return -ENOMEM;
        }
    }
    for (size_t i = 0; i < NBUCKETS && n < cap; i++) {
        for (struct store_stream *ss = st->buckets[i]; ss && n < cap; ss = ss->next) {
            if (!ss->claimed)
                continue;
            pthread_mutex_lock(&ss->mu);
            if (ss->info.live_since_ms != 0 && has_playlist(ss)) {
                memcpy(items[n].name, ss->name, sizeof(items[n].name));
                items[n].info = ss->info;
                n++;
            }
            pthread_mutex_unlock(&ss->mu);
        }
    }
    pthread_mutex_unlock(&st->mu);
    for (size_t i = 0; i < n; i++)
        cb(arg, items[i].name, &items[i].info);
    free(items);
    return (int)n;
}
