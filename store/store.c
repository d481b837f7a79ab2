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
 *   stream lock: objs, nobjs, cap, version
 *   immutable while linked: name, st
 */
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"

#define NBUCKETS 64 /* power of two; a server carries tens of streams, not thousands */

struct store_obj {
    char name[STORE_NAME_MAX];
    enum store_kind kind;
    struct buf *b; /* the store's reference */
};

struct store_stream {
    struct store_stream *next; /* bucket chain */
    struct store *st;
    char name[STORE_NAME_MAX];
    bool claimed;
    int64_t expire_ms; /* when unclaimed: time_mono_ms() after which sweep frees it */

    pthread_mutex_t mu;
    struct store_obj *objs;
    size_t nobjs, cap;
    /*
     * Bumped on every change of the object set (put, remove, claim). Room for
     * the LL-HLS blocking playlist reload (_HLS_msn/_HLS_part): a reader will
     * remember the version it saw and wait for it to change. That will add a
     * list of waiters here, signalled after every bump, which resume their
     * suspended MHD connections (never block an MHD thread); each waiter arms
     * its own timeout since a suspended connection never times out by itself.
     */
    uint64_t version;
};

struct store {
    pthread_mutex_t mu;
    struct store_stream *buckets[NBUCKETS];
    int live_count;
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
static long find_obj(const struct store_stream *ss, const char *name)
{
    for (size_t i = 0; i < ss->nobjs; i++)
        if (strcmp(ss->objs[i].name, name) == 0)
            return (long)i;
    return -1;
}

/* Caller holds the stream lock (or owns the stream alone). */
static void drop_objects(struct store_stream *ss)
{
    for (size_t i = 0; i < ss->nobjs; i++)
        buf_unref(ss->objs[i].b);
    ss->nobjs = 0;
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

int store_claim(struct store *st, const char *name, struct store_stream **out)
{
    struct store_stream *ss;
    size_t len = strlen(name);
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
        /* An ended stream still lingering: start the new publisher empty. */
        pthread_mutex_lock(&ss->mu);
        drop_objects(ss);
        ss->version++;
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
    return rc;
}

void store_release(struct store_stream *ss, int64_t linger_ms)
{
    struct store *st;

    if (!ss)
        return;
    st = ss->st;
    pthread_mutex_lock(&st->mu);
    assert(ss->claimed && "store_release of an unclaimed stream");
    ss->claimed = false;
    ss->expire_ms = time_mono_ms() + (linger_ms > 0 ? linger_ms : 0);
    st->live_count--;
    pthread_mutex_unlock(&st->mu);
}

void store_sweep(struct store *st)
{
    int64_t now = time_mono_ms();

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
            /* Wait out a reader that found it before the unlink (see top). */
            pthread_mutex_lock(&ss->mu);
            pthread_mutex_unlock(&ss->mu);
            stream_free(ss);
        }
    }
    pthread_mutex_unlock(&st->mu);
}

int store_put(struct store_stream *ss, const char *name, enum store_kind kind, struct buf *b)
{
    struct buf *old = NULL;
    size_t len = strlen(name);
    long i;
    int rc = 0;

    if (len == 0 || len >= STORE_NAME_MAX) {
        buf_unref(b);
        return -EINVAL;
    }
    pthread_mutex_lock(&ss->mu);
    i = find_obj(ss, name);
    if (i >= 0) {
        old = ss->objs[i].b;
        ss->objs[i].b = b;
        ss->objs[i].kind = kind;
    } else {
        if (ss->nobjs == ss->cap) {
            size_t cap = ss->cap ? ss->cap * 2 : 16;
            struct store_obj *p = realloc(ss->objs, cap * sizeof(*p));

            if (!p) {
                old = b; /* we own it either way */
                rc = -ENOMEM;
                goto out;
            }
            ss->objs = p;
            ss->cap = cap;
        }
        memcpy(ss->objs[ss->nobjs].name, name, len + 1);
        ss->objs[ss->nobjs].kind = kind;
        ss->objs[ss->nobjs].b = b;
        ss->nobjs++;
    }
    ss->version++;
out:
    pthread_mutex_unlock(&ss->mu);
    /* The old object may be the last reference to megabytes: free it unlocked. */
    buf_unref(old);
    return rc;
}

void store_remove(struct store_stream *ss, const char *name)
{
    struct buf *old = NULL;
    long i;

    pthread_mutex_lock(&ss->mu);
    i = find_obj(ss, name);
    if (i >= 0) {
        old = ss->objs[i].b;
        ss->objs[i] = ss->objs[ss->nobjs - 1]; /* order does not matter */
        ss->nobjs--;
        ss->version++;
    }
    pthread_mutex_unlock(&ss->mu);
    buf_unref(old);
}

const char *store_stream_name(const struct store_stream *ss)
{
    return ss->name;
}

struct buf *store_get(struct store *st, const char *stream, const char *obj, enum store_kind *kind)
{
    struct store_stream *ss;
    struct buf *b = NULL;
    long i;

    pthread_mutex_lock(&st->mu);
    ss = find_stream(st, stream);
    if (!ss) {
        pthread_mutex_unlock(&st->mu);
        return NULL;
    }
    pthread_mutex_lock(&ss->mu);
    pthread_mutex_unlock(&st->mu);
    i = find_obj(ss, obj);
    if (i >= 0) {
        b = buf_ref(ss->objs[i].b);
        if (kind)
            *kind = ss->objs[i].kind;
    }
    pthread_mutex_unlock(&ss->mu);
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
