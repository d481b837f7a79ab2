/*
 * MP4 replays: one background thread turns finished recordings into
 * replay.mp4 (see rec_remux_dir), one job at a time, so that neither the
 * event loop nor the writer ever waits for it.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/common.h"
#include "../metrics/metrics.h"
#include "record.h"
#include "record_disk.h"

struct remux_job {
    struct remux_job *next;
    char name[STREAM_NAME_MAX_LEN + 1];
    char id[REC_ID_MAX];
};

struct rec_remux {
    char root[4096];
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct remux_job *head, **tail;
    bool stopping;
    pthread_t thread;
};

static void run_job(struct rec_remux *m, const struct remux_job *j)
{
    char logname[STREAM_NAME_MAX_LEN + REC_ID_MAX + 16];
    int fd = rec_disk_open_dir(m->root, j->name, j->id);
    int64_t t0 = time_mono_ms();
    int err;

    snprintf(logname, sizeof(logname), "record vod/%s/%s", j->name, j->id);
    if (fd < 0) {
        log_warn(logname, "no MP4: cannot open the recording: %s", strerror(-fd));
        return;
    }
    err = rec_remux_dir(fd, logname);
    close(fd);
    if (err == 0)
        mx_count(MX_RECORD_REPLAYS, 1);
    if (err == 0)
        log_info(logname, "replay.mp4 ready (%.1f s to remux): /vod/%s/%s.mp4",
                 (double)(time_mono_ms() - t0) / 1000.0, j->name, j->id);
}

static void *remux_main(void *arg)
{
    struct rec_remux *m = arg;

    pthread_setname_np(pthread_self(), "rec-remux"); /* scripts/bench-record.sh counts it */
    pthread_mutex_lock(&m->lock);
    for (;;) {
        struct remux_job *j = m->head;

        if (!j) {
            if (m->stopping)
                break;
            pthread_cond_wait(&m->cond, &m->lock);
            continue;
        }
        m->head = j->next;
        if (!m->head)
            m->tail = &m->head;
        pthread_mutex_unlock(&m->lock);
        run_job(m, j);
        free(j);
        pthread_mutex_lock(&m->lock);
    }
    pthread_mutex_unlock(&m->lock);
    return NULL;
}

int rec_remux_new(const char *root, struct rec_remux **out)
{
    struct rec_remux *m = calloc(1, sizeof(*m));
    int rc;

    if (!m)
        return -ENOMEM;
    snprintf(m->root, sizeof(m->root), "%s", root);
    pthread_mutex_init(&m->lock, NULL);
    pthread_cond_init(&m->cond, NULL);
    m->tail = &m->head;
    rc = pthread_create(&m->thread, NULL, remux_main, m);
    if (rc) {
        log_error("record", "cannot start the remux thread: %s", strerror(rc));
        pthread_cond_destroy(&m->cond);
        pthread_mutex_destroy(&m->lock);
        free(m);
        return -rc;
    }
    *out = m;
    return 0;
}

void rec_remux_queue(struct rec_remux *m, const char *name, const char *id)
{
    struct remux_job *j;

    if (!m || !(j = calloc(1, sizeof(*j))))
        return;
    snprintf(j->name, sizeof(j->name), "%s", name);
    snprintf(j->id, sizeof(j->id), "%s", id);
    pthread_mutex_lock(&m->lock);
    *m->tail = j;
    m->tail = &j->next;
    pthread_cond_signal(&m->cond);
    pthread_mutex_unlock(&m->lock);
}

void rec_remux_free(struct rec_remux *m)
{
    if (!m)
        return;
    pthread_mutex_lock(&m->lock);
    m->stopping = true;
    pthread_cond_signal(&m->cond);
    pthread_mutex_unlock(&m->lock);
    pthread_join(m->thread, NULL);
    pthread_cond_destroy(&m->cond);
    pthread_mutex_destroy(&m->lock);
    free(m);
}
