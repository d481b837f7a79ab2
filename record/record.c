/*
 * Recorder: the segmenter's calls become queue items; one writer thread puts
 * them on disk, in order, per recording:
 *
 *   OPEN  PATH/NAME/ID/ created (ID = start time, UTC, "20261128-031500")
 *   INIT  init-K.mp4
 *   SEG   seg-NNNNN.m4s (fdatasync), then index.m3u8 rewritten (EVENT)
 *         through a temporary file and rename(2): a crash leaves the old or
 *         the new playlist, never half of one
 *   END   index.m3u8 with EXT-X-ENDLIST (VOD), then the MP4 job, retention
 *
 * The queue holds references to the segmenter's immutable buffers; only SEG
 * and INIT items count against REC_QUEUE_MAX_BYTES. A recording whose item
 * does not fit, or whose write fails, stops (one error line) and is closed
 * with what reached the disk; the live stream never waits for any of it.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "../config/config.h"
#include "../metrics/metrics.h"
#include "record.h"
#include "record_disk.h"
#include "record_internal.h"

#define RETENTION_EVERY_MS 60000
#define DVR_LINGER_MS 60000 /* an ended event's DVR playlist (with ENDLIST) stays this long */

enum item_op { ITEM_OPEN, ITEM_INIT, ITEM_SEG, ITEM_END };

struct rec_item {
    struct rec_item *next;
    enum item_op op;
    struct recording *rc; /* a reference */
    int index;            /* INIT: K; SEG: entry index */
    size_t bytes;         /* counted against the queue bound */
    int nbufs;
    struct buf *bufs[];
};

struct recording {
    atomic_int refs;
    struct recorder *r;
    char name[STREAM_NAME_MAX_LEN + 1];
    char logname[STREAM_NAME_MAX_LEN + 16];
    int64_t start_ms;
    atomic_bool failed;        /* stopped: nothing more is queued or written */
    char why[480];             /* why it stopped: written once, before REPORT is set */
    atomic_bool report;        /* the stop is still to be shown in the stream's stats */

    pthread_mutex_t lock;      /* the fields below, between the three sides */
    struct rec_entry *entries;
    int n, cap;
    int target;
    int ninit;
    char live_map[REC_URI_MAX];
    char id[REC_ID_MAX];       /* set by the writer once the directory exists */
    int written;               /* entries on disk */
    struct buf *dvr;           /* rendered DVR playlist for (dvr_n, dvr_written, dvr_ended) */
    int dvr_n, dvr_written;
    bool ended, dvr_ended;     /* rec_end was called */

    struct recording *next_active; /* the recorder's list, under its lock */
    int64_t ended_mono_ms;         /* rec_end's time (under the recorder's lock); 0 = live */

    /* writer thread only: */
    int dirfd;
    struct recording *next_open;
};

struct recorder {
    struct cfg_live *live;
    char root[CFG_STR_MAX];

    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct rec_item *head, **tail;
    size_t queued_bytes;
    bool stopping;
    struct recording *active;  /* from rec_start to DVR_LINGER_MS after rec_end (a reference) */

    pthread_t writer;
    bool writer_started;
    struct recording *open;    /* writer only: directories being written */
    struct rec_remux *remux;
};

const char *rec_root(const struct recorder *r)
{
    return r->root;
}

/* ---- recordings ----------------------------------------------------------- */

static struct recording *rc_ref(struct recording *rc)
{
    atomic_fetch_add(&rc->refs, 1);
    return rc;
}

static void rc_unref(struct recording *rc)
{
    int left;

    if (!rc)
        return;
    left = atomic_fetch_sub(&rc->refs, 1);
    if (left > 1)
        return;
    if (left < 1)
        abort(); /* underflow: a bug */
    if (rc->dirfd >= 0)
        close(rc->dirfd);
    buf_unref(rc->dvr);
    free(rc->entries);
    pthread_mutex_destroy(&rc->lock);
    free(rc);
}

static void item_free(struct rec_item *it)
{
    for (int i = 0; i < it->nbufs; i++)
        buf_unref(it->bufs[i]);
    rc_unref(it->rc);
    free(it);
}

static struct rec_item *item_new(enum item_op op, struct recording *rc, struct buf *const *bufs,
                                 int nbufs)
{
    struct rec_item *it = calloc(1, sizeof(*it) + (size_t)nbufs * sizeof(it->bufs[0]));

    if (!it)
        return NULL;
    it->op = op;
    it->rc = rc_ref(rc);
    for (int i = 0; i < nbufs; i++) {
        it->bufs[i] = buf_ref(bufs[i]);
        it->bytes += bufs[i]->len;
    }
    it->nbufs = nbufs;
    return it;
}

/* Queues IT (taken). BOUNDED items are refused with -ENOSPC when the queue is full. */
static int enqueue(struct recorder *r, struct rec_item *it, bool bounded)
{
    pthread_mutex_lock(&r->lock);
    if (bounded && r->queued_bytes + it->bytes > REC_QUEUE_MAX_BYTES) {
        size_t q = r->queued_bytes;

        pthread_mutex_unlock(&r->lock);
        item_free(it);
        return q > 0 ? -ENOSPC : -EFBIG;
    }
    r->queued_bytes += it->bytes;
    *r->tail = it;
    r->tail = &it->next;
    pthread_cond_signal(&r->cond);
    pthread_mutex_unlock(&r->lock);
    return 0;
}

/* Stops RC from the segmenter's side; logs once. */
static void stop_queueing(struct recording *rc, const char *why)
{
    if (atomic_exchange(&rc->failed, true))
        return;
    log_error(rc->logname, "recording stopped: %s; the live stream continues", why);
    mx_count(MX_RECORD_FAILURES, 1);
    snprintf(rc->why, sizeof(rc->why), "%s", why);
    atomic_store(&rc->report, true); /* shown by the segmenter's thread: see report_stop */
}

/*
 * Segmenter thread: puts a stop into the stream's stats (admin API). Done here,
 * not where it happened: the publish's stats entry is (re)set after rec_start.
 */
static void report_stop(struct recording *rc)
{
    if (atomic_exchange(&rc->report, false))
        mx_stream_error(mx_stream_find(rc->name), "recording stopped: %s", rc->why);
}

/*
 * Drops (and returns, for unref outside the lock) the ended recordings whose
 * DVR linger passed, or all ended ones of NAME (a new event replaces them).
 * Called with the recorder's lock held.
 */
static struct recording *prune_ended(struct recorder *r, const char *name)
{
    struct recording **pp = &r->active, *gone = NULL;
    int64_t now = time_mono_ms();

    while (*pp) {
        struct recording *rc = *pp;

        if (rc->ended_mono_ms &&
            (now - rc->ended_mono_ms > DVR_LINGER_MS || (name && !strcmp(rc->name, name)))) {
            *pp = rc->next_active;
            rc->next_active = gone;
            gone = rc;
        } else {
            pp = &rc->next_active;
        }
    }
    return gone;
}

static void unref_list(struct recording *rc)
{
    while (rc) {
        struct recording *next = rc->next_active;

        rc_unref(rc);
        rc = next;
    }
}

struct recording *rec_start(struct recorder *r, const char *name, int target_s)
{
    struct recording *gone;
    struct recording *rc;
    struct rec_item *it;
    const struct cfg *cfg;
    bool on;

    if (!r || !stream_name_valid(name))
        return NULL;
    cfg = cfg_live_get(r->live);
    on = cfg_records(cfg, name);
    cfg_unref(cfg);
    if (!on)
        return NULL;
    rc = calloc(1, sizeof(*rc));
    if (!rc)
        goto oom;
    atomic_init(&rc->refs, 1);
    atomic_init(&rc->failed, false);
    atomic_init(&rc->report, false);
    pthread_mutex_init(&rc->lock, NULL);
    rc->r = r;
    rc->dirfd = -1;
    rc->target = target_s > 0 ? target_s : 1;
    rc->start_ms = time_wall_ms();
    snprintf(rc->name, sizeof(rc->name), "%s", name);
    snprintf(rc->logname, sizeof(rc->logname), "record live/%s", name);
    it = item_new(ITEM_OPEN, rc, NULL, 0);
    if (!it) {
        rc_unref(rc);
        goto oom;
    }
    enqueue(r, it, false);
    pthread_mutex_lock(&r->lock);
    gone = prune_ended(r, name);
    rc->next_active = r->active;
    r->active = rc_ref(rc);
    pthread_mutex_unlock(&r->lock);
    unref_list(gone);
    return rc;
oom:
    log_error("record", "live/%s: out of memory: not recorded", name);
    return NULL;
}

void rec_init(struct recording *rc, struct buf *init, const char *live_uri)
{
    struct rec_item *it;
    int k;

    if (!rc)
        return;
    report_stop(rc);
    if (atomic_load(&rc->failed))
        return;
    pthread_mutex_lock(&rc->lock);
    k = rc->ninit++;
    snprintf(rc->live_map, sizeof(rc->live_map), "%s", live_uri ? live_uri : "");
    pthread_mutex_unlock(&rc->lock);
    it = item_new(ITEM_INIT, rc, &init, 1);
    if (!it) {
        stop_queueing(rc, "out of memory");
        return;
    }
    it->index = k;
    if (enqueue(rc->r, it, true) < 0)
        stop_queueing(rc, "the disk is too slow (writer queue full)");
}

void rec_segment(struct recording *rc, struct buf *const *bufs, int nbufs,
                 const struct rec_segment_info *info)
{
    struct rec_entry *e;
    struct rec_item *it;
    char why[96];
    int index, rc2;

    if (!rc)
        return;
    report_stop(rc);
    if (atomic_load(&rc->failed) || nbufs <= 0)
        return;
    pthread_mutex_lock(&rc->lock);
    if (rc->ninit == 0 || (rc->n == rc->cap && rc->cap >= INT_MAX / 4)) {
        pthread_mutex_unlock(&rc->lock);
        return;
    }
    if (rc->n == rc->cap) {
        int cap = rc->cap ? rc->cap * 2 : 256;
        struct rec_entry *p = realloc(rc->entries, (size_t)cap * sizeof(*p));

        if (!p) {
            pthread_mutex_unlock(&rc->lock);
            stop_queueing(rc, "out of memory");
            return;
        }
        rc->entries = p;
        rc->cap = cap;
    }
    index = rc->n;
    e = &rc->entries[index];
    memset(e, 0, sizeof(*e));
    e->duration = info->duration;
    e->pdt_ms = info->pdt_ms;
    e->discontinuity = info->discontinuity && index > 0;
    e->init = rc->ninit - 1;
    snprintf(e->live_uri, sizeof(e->live_uri), "%s", info->live_uri ? info->live_uri : "");
    memcpy(e->live_map, rc->live_map, sizeof(e->live_map));
    rc->n++;
    pthread_mutex_unlock(&rc->lock);
    it = item_new(ITEM_SEG, rc, bufs, nbufs);
    if (!it) {
        stop_queueing(rc, "out of memory");
        return;
    }
    it->index = index;
    rc2 = enqueue(rc->r, it, true);
    if (rc2 < 0) {
        snprintf(why, sizeof(why), "the disk is too slow (writer queue full, %u MiB behind)",
                 REC_QUEUE_MAX_BYTES >> 20);
        stop_queueing(rc, rc2 == -EFBIG ? "a segment is larger than the writer queue" : why);
    }
}

void rec_end(struct recording *rc)
{
    struct recorder *r;
    struct rec_item *it;

    if (!rc)
        return;
    r = rc->r;
    /* Its DVR playlist stays (with ENDLIST) for players still on it: DVR_LINGER_MS. */
    pthread_mutex_lock(&r->lock);
    rc->ended_mono_ms = time_mono_ms();
    pthread_mutex_unlock(&r->lock);
    pthread_mutex_lock(&rc->lock);
    rc->ended = true;
    pthread_mutex_unlock(&rc->lock);
    it = item_new(ITEM_END, rc, NULL, 0);
    if (it)
        enqueue(r, it, false);
    else
        log_error(rc->logname, "out of memory: the recording is closed at the next start");
    rc_unref(rc);
}

/* ---- the DVR playlist (HTTP threads) ------------------------------------- */

int rec_dvr_playlist(struct recorder *r, const char *name, struct buf **out)
{
    struct recording *rc, *gone;
    struct bytes text = {0};
    char prefix[STREAM_NAME_MAX_LEN + REC_ID_MAX + 16];
    int rc2 = 0;

    if (!r)
        return -ENOENT;
    pthread_mutex_lock(&r->lock);
    gone = prune_ended(r, NULL);
    for (rc = r->active; rc && strcmp(rc->name, name) != 0; rc = rc->next_active)
        ;
    if (rc)
        rc_ref(rc);
    pthread_mutex_unlock(&r->lock);
    unref_list(gone);
    if (!rc)
        return -ENOENT;
    if (atomic_load(&rc->failed)) {
        rc_unref(rc);
        return -ENOENT;
    }
    pthread_mutex_lock(&rc->lock);
    if (rc->n == 0) {
        rc2 = -ENOENT;
    } else if (rc->dvr && rc->dvr_n == rc->n && rc->dvr_written == rc->written &&
               rc->dvr_ended == rc->ended) {
        *out = buf_ref(rc->dvr);
    } else {
        struct rec_playlist pl = {
            .entries = rc->entries, .n = rc->n, .target = rc->target, .ended = false,
            .prefix = prefix, .live_from = rc->written,
        };

        /* Ended: EVENT with ENDLIST, from disk as far as it got (RFC 8216 4.3.3.5). */
        pl.ended_event = rc->ended;

        snprintf(prefix, sizeof(prefix), "/vod/%s/%s/", rc->name, rc->id);
        rc2 = rec_render_playlist(&pl, &text);
        if (rc2 == 0) {
            struct buf *b = buf_new_copy(text.data, text.len);

            if (b) {
                buf_unref(rc->dvr);
                rc->dvr = b;
                rc->dvr_n = rc->n;
                rc->dvr_written = rc->written;
                rc->dvr_ended = rc->ended;
                *out = buf_ref(b);
            } else {
                rc2 = -ENOMEM;
            }
        }
    }
    pthread_mutex_unlock(&rc->lock);
    bytes_reset(&text);
    rc_unref(rc);
    return rc2;
}

/* ---- the writer thread ----------------------------------------------------- */

/* The writer's stop of RC: one error line; the playlist is closed at END. */
static void writer_fail(struct recording *rc, const char *what, int err)
{
    char why[480];

    snprintf(why, sizeof(why), "%.400s: %s", what, strerror(-err));
    stop_queueing(rc, why);
}

static void open_list_remove(struct recorder *r, struct recording *rc)
{
    for (struct recording **pp = &r->open; *pp; pp = &(*pp)->next_open)
        if (*pp == rc) {
            *pp = rc->next_open;
            rc_unref(rc);
            return;
        }
}

static void do_open(struct recorder *r, struct recording *rc)
{
    char id[REC_ID_MAX], what[CFG_STR_MAX + STREAM_NAME_MAX_LEN + 64];
    int fd, err;

    err = rec_disk_create(r->root, rc->name, rc->start_ms, id, sizeof(id), &fd);
    if (err < 0) {
        snprintf(what, sizeof(what), "cannot create a directory under %s/%s", r->root, rc->name);
        writer_fail(rc, what, err);
        return;
    }
    rc->dirfd = fd;
    pthread_mutex_lock(&rc->lock);
    snprintf(rc->id, sizeof(rc->id), "%s", id);
    pthread_mutex_unlock(&rc->lock);
    rc->next_open = r->open;
    r->open = rc_ref(rc);
    log_info(rc->logname, "recording to %s/%s/%s/", r->root, rc->name, id);
}

/* Renders RC's first WRITTEN entries and replaces index.m3u8. Returns 0 or -errno. */
static int write_playlist(struct recording *rc, bool ended)
{
    struct bytes text = {0};
    int err;

    pthread_mutex_lock(&rc->lock);
    {
        struct rec_playlist pl = {
            .entries = rc->entries, .n = rc->written, .target = rc->target, .ended = ended,
            .prefix = "", .live_from = INT_MAX,
        };

        err = rec_render_playlist(&pl, &text);
    }
    pthread_mutex_unlock(&rc->lock);
    if (err == 0)
        err = rec_disk_replace(rc->dirfd, "index.m3u8", text.data, text.len);
    bytes_reset(&text);
    return err;
}

static void do_write(struct recording *rc, struct rec_item *it)
{
    char name[32];
    int err;

    if (atomic_load(&rc->failed) || rc->dirfd < 0)
        return;
    if (it->op == ITEM_INIT)
        rec_init_name(it->index, name, sizeof(name));
    else
        rec_seg_name(it->index, name, sizeof(name));
    err = rec_disk_write(rc->dirfd, name, it->bufs, it->nbufs);
    if (err < 0) {
        writer_fail(rc, name, err);
        return;
    }
    if (it->op != ITEM_SEG)
        return;
    mx_count(MX_RECORD_SEGMENTS, 1);
    mx_count(MX_RECORD_BYTES, it->bytes);
    pthread_mutex_lock(&rc->lock);
    rc->written = it->index + 1;
    pthread_mutex_unlock(&rc->lock);
    err = write_playlist(rc, false);
    if (err < 0)
        writer_fail(rc, "index.m3u8", err);
}

static void do_end(struct recorder *r, struct recording *rc)
{
    double total = 0;
    int err, written;

    if (rc->dirfd < 0)
        return; /* never opened: logged then */
    pthread_mutex_lock(&rc->lock);
    written = rc->written;
    for (int i = 0; i < written; i++)
        total += rc->entries[i].duration;
    pthread_mutex_unlock(&rc->lock);
    if (written == 0) {
        log_info(rc->logname, "nothing recorded: %s/%s/%s/ removed", r->root, rc->name, rc->id);
        rec_disk_remove(r->root, rc->name, rc->id);
    } else if ((err = write_playlist(rc, true)) < 0) {
        log_error(rc->logname, "cannot close %s/%s/%s/index.m3u8: %s (closed at the next start)",
                  r->root, rc->name, rc->id, strerror(-err));
    } else {
        fsync(rc->dirfd);
        log_info(rc->logname, "recording %s finished%s: %d segments, %.1f s; replay at /vod/%s/%s/",
                 rc->id, atomic_load(&rc->failed) ? " early" : "", written, total, rc->name,
                 rc->id);
        rec_remux_queue(r->remux, rc->name, rc->id);
    }
    close(rc->dirfd);
    rc->dirfd = -1;
    open_list_remove(r, rc);
}

/* Whether NAME/ID is being written (retention keeps it). */
static bool is_open(void *arg, const char *name, const char *id)
{
    struct recorder *r = arg;

    for (struct recording *rc = r->open; rc; rc = rc->next_open)
        if (!strcmp(rc->name, name) && !strcmp(rc->id, id))
            return true;
    return false;
}

static void retention(struct recorder *r)
{
    const struct cfg *cfg = cfg_live_get(r->live);
    int64_t max_bytes = cfg->record_max_bytes;
    double max_age = cfg->record_max_age_s;

    cfg_unref(cfg);
    if (max_bytes > 0 || max_age > 0)
        rec_disk_retention(r->root, max_bytes, max_age, is_open, r);
}

static void recovered(void *arg, const char *name, const char *id)
{
    struct recorder *r = arg;

    rec_remux_queue(r->remux, name, id);
}

static void *writer_main(void *arg)
{
    struct recorder *r = arg;
    int64_t next_retention = time_mono_ms() + RETENTION_EVERY_MS;

    pthread_setname_np(pthread_self(), "rec-writer"); /* scripts/bench-record.sh counts it */
    rec_disk_recover(r->root, recovered, r);
    retention(r);
    pthread_mutex_lock(&r->lock);
    for (;;) {
        struct rec_item *it = r->head;

        if (!it) {
            struct timespec ts;

            if (r->stopping)
                break;
            if (time_mono_ms() >= next_retention) {
                pthread_mutex_unlock(&r->lock);
                retention(r);
                next_retention = time_mono_ms() + RETENTION_EVERY_MS;
                pthread_mutex_lock(&r->lock);
                continue;
            }
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += 1;
            pthread_cond_timedwait(&r->cond, &r->lock, &ts);
            continue;
        }
        r->head = it->next;
        if (!r->head)
            r->tail = &r->head;
        r->queued_bytes -= it->bytes;
        pthread_mutex_unlock(&r->lock);
        switch (it->op) {
        case ITEM_OPEN:
            do_open(r, it->rc);
            break;
        case ITEM_INIT:
        case ITEM_SEG:
            do_write(it->rc, it);
            break;
        case ITEM_END:
            do_end(r, it->rc);
            retention(r);
            break;
        }
        item_free(it);
        pthread_mutex_lock(&r->lock);
    }
    pthread_mutex_unlock(&r->lock);
    return NULL;
}

/* ---- life cycle ---------------------------------------------------------------- */

int rec_new(const struct cfg *cfg, struct recorder **out)
{
    struct recorder *r = calloc(1, sizeof(*r));
    int rc;

    *out = NULL;
    if (!r)
        return -ENOMEM;
    snprintf(r->root, sizeof(r->root), "%s", cfg->record_path[0] ? cfg->record_path : ".");
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->cond, NULL);
    r->tail = &r->head;
    r->live = cfg_live_new(cfg_ref(cfg));
    if (!r->live) {
        cfg_unref(cfg);
        rc = -ENOMEM;
        goto fail;
    }
    rc = rec_remux_new(r->root, &r->remux);
    if (rc < 0)
        goto fail;
    rc = -pthread_create(&r->writer, NULL, writer_main, r);
    if (rc < 0) {
        log_error("record", "cannot start the writer thread: %s", strerror(-rc));
        goto fail;
    }
    r->writer_started = true;
    *out = r;
    return 0;
fail:
    rec_free(r);
    return rc;
}

void rec_reconfigure(struct recorder *r, const struct cfg *next)
{
    if (r)
        cfg_live_set(r->live, cfg_ref(next));
}

void rec_free(struct recorder *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->lock);
    for (struct recording *rc = r->active; rc; rc = rc->next_active)
        if (!rc->ended_mono_ms) /* its owner must have ended it: closed at the next start */
            log_warn(rc->logname, "stopping with the recording still open");
    unref_list(r->active);
    r->active = NULL;
    pthread_mutex_unlock(&r->lock);
    if (r->writer_started) {
        pthread_mutex_lock(&r->lock);
        r->stopping = true;
        pthread_cond_signal(&r->cond);
        pthread_mutex_unlock(&r->lock);
        pthread_join(r->writer, NULL);
    }
    while (r->open) /* unreachable: every END was written */
        open_list_remove(r, r->open);
    rec_remux_free(r->remux);
    cfg_live_free(r->live);
    pthread_cond_destroy(&r->cond);
    pthread_mutex_destroy(&r->lock);
    free(r);
}
