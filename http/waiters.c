/*
 * Blocked requests: LL-HLS blocking playlist reloads and preload-hinted
 * parts. A request that has to wait is suspended (MHD suspend/resume: no
 * thread, no poll slot while it waits), linked into its stream's waiter list
 * in the store, and put into one deadline heap served by one thread.
 *
 * Exactly one party resumes a held request:
 *   - the publisher, when the store wakes the waiter (store_progress or the
 *     stream ending): the store has unlinked it, we drop it from the heap and
 *     resume it;
 *   - the deadline thread, when store_cancel() says the waiter was still
 *     linked (so no wake is under way): 503;
 *   - http_timer_free at shutdown, the same way.
 * The heap is only touched under the timer mutex, and a request leaves the
 * heap before it is resumed, because once resumed it may complete and be freed.
 *
 * Lock order: timer mutex, then the store's locks (store_wait/store_cancel),
 * then MHD's. The store calls wake with no store lock held.
 */
#include <errno.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/common.h"
#include "../store/store.h"
#include "http_internal.h"

struct http_wait {
    struct store_waiter sw; /* first: the store hands this pointer back */
    struct http_timer *t;
    struct MHD_Connection *conn;
    int64_t deadline_ms;
    long heap_idx; /* -1: not in the heap */
    enum http_wait_state state;
    enum store_wait_result result; /* of store_wait */
};

struct http_timer {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    pthread_t thread;
    bool stop;
    struct http_wait **heap; /* min-heap by deadline */
    long n, cap;
};

/* ---- the heap (caller holds the mutex) ------------------------------------- */

static void heap_set(struct http_timer *t, long i, struct http_wait *w)
{
    t->heap[i] = w;
    w->heap_idx = i;
}

static void sift_up(struct http_timer *t, long i)
{
    struct http_wait *w = t->heap[i];

    while (i > 0 && t->heap[(i - 1) / 2]->deadline_ms > w->deadline_ms) {
        heap_set(t, i, t->heap[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
    heap_set(t, i, w);
}

static void sift_down(struct http_timer *t, long i)
{
    struct http_wait *w = t->heap[i];

    for (;;) {
        long c = 2 * i + 1;

        if (c >= t->n)
            break;
        if (c + 1 < t->n && t->heap[c + 1]->deadline_ms < t->heap[c]->deadline_ms)
            c++;
        if (t->heap[c]->deadline_ms >= w->deadline_ms)
            break;
        heap_set(t, i, t->heap[c]);
        i = c;
    }
    heap_set(t, i, w);
}

static int heap_push(struct http_timer *t, struct http_wait *w)
{
    if (t->n == t->cap) {
        long cap = t->cap ? t->cap * 2 : 256;
        struct http_wait **p = realloc(t->heap, (size_t)cap * sizeof(*p));

        if (!p)
            return -ENOMEM;
        t->heap = p;
        t->cap = cap;
    }
    t->n++;
    heap_set(t, t->n - 1, w);
    sift_up(t, t->n - 1);
    return 0;
}

static void heap_remove(struct http_timer *t, struct http_wait *w)
{
    long i = w->heap_idx;
    struct http_wait *last;

    if (i < 0)
        return;
    w->heap_idx = -1;
    last = t->heap[--t->n];
    if (i == t->n)
        return;
    heap_set(t, i, last);
    sift_up(t, i);
    sift_down(t, last->heap_idx);
}

/* ---- waking -------------------------------------------------------------- */

/* From the store (the publisher's thread): the part is there or the stream ended. */
static void on_wake(struct store_waiter *sw)
{
    struct http_wait *w = (struct http_wait *)sw;
    struct http_timer *t = w->t;

    pthread_mutex_lock(&t->mu);
    heap_remove(t, w);
    w->state = HTTP_WOKEN;
    pthread_mutex_unlock(&t->mu);
    MHD_resume_connection(w->conn);
}

/*
 * Pops every wait due by NOW (all if ALL) whose store link we win, marking
 * it STATE; returns them chained through sw.next. Caller holds the mutex.
 */
static struct http_wait *take_due(struct http_timer *t, int64_t now, bool all,
                                  enum http_wait_state state)
{
    struct http_wait *due = NULL;

    while (t->n > 0 && (all || t->heap[0]->deadline_ms <= now)) {
        struct http_wait *w = t->heap[0];

        heap_remove(t, w);
        /* Lost to a wake under way: that wake resumes it. */
        if (!store_cancel(&w->sw))
            continue;
        w->state = state;
        w->sw.next = (struct store_waiter *)due;
        due = w;
    }
    return due;
}

static void resume_all(struct http_wait *w)
{
    while (w) {
        struct http_wait *next = (struct http_wait *)w->sw.next;

        MHD_resume_connection(w->conn);
        w = next;
    }
}

static void *timer_main(void *arg)
{
    struct http_timer *t = arg;

    pthread_mutex_lock(&t->mu);
    while (!t->stop) {
        int64_t now = time_mono_ms();
        struct http_wait *due = take_due(t, now, false, HTTP_TIMED_OUT);

        if (due) {
            pthread_mutex_unlock(&t->mu);
            resume_all(due);
            pthread_mutex_lock(&t->mu);
            continue;
        }
        if (t->n == 0) {
            pthread_cond_wait(&t->cond, &t->mu);
        } else {
            int64_t at = t->heap[0]->deadline_ms;
            struct timespec ts = {.tv_sec = (time_t)(at / 1000),
                                  .tv_nsec = (long)(at % 1000) * 1000000L};

            pthread_cond_timedwait(&t->cond, &t->mu, &ts);
        }
    }
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

/* ---- API ----------------------------------------------------------------- */

int http_timer_new(struct http_timer **out)
{
    struct http_timer *t = calloc(1, sizeof(*t));
    pthread_condattr_t ca;
    int rc;

    *out = NULL;
    if (!t)
        return -ENOMEM;
    pthread_mutex_init(&t->mu, NULL);
    /* time_mono_ms() is CLOCK_MONOTONIC: deadlines are on that clock. */
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&t->cond, &ca);
    pthread_condattr_destroy(&ca);
    rc = pthread_create(&t->thread, NULL, timer_main, t);
    if (rc != 0) {
        pthread_cond_destroy(&t->cond);
        pthread_mutex_destroy(&t->mu);
        free(t);
        return -rc;
    }
    *out = t;
    return 0;
}

void http_timer_free(struct http_timer *t)
{
    struct http_wait *all;

    if (!t)
        return;
    pthread_mutex_lock(&t->mu);
    t->stop = true;
    all = take_due(t, 0, true, HTTP_SHUTDOWN);
    pthread_cond_signal(&t->cond);
    pthread_mutex_unlock(&t->mu);
    resume_all(all);
    pthread_join(t->thread, NULL);
    free(t->heap);
    pthread_cond_destroy(&t->cond);
    pthread_mutex_destroy(&t->mu);
    free(t);
}

int http_wait_start(struct http_timer *t, struct store *st, struct MHD_Connection *conn,
                    const char *stream, uint64_t key, int64_t timeout_ms, struct http_wait **out)
{
    struct http_wait *w = calloc(1, sizeof(*w));

    *out = NULL;
    if (!w)
        return -ENOMEM;
    w->sw.wake = on_wake;
    w->sw.key = key;
    w->t = t;
    w->conn = conn;
    w->heap_idx = -1;
    w->state = HTTP_WAITING;
    w->deadline_ms = time_mono_ms() + timeout_ms;

    pthread_mutex_lock(&t->mu);
    if (t->stop) {
        pthread_mutex_unlock(&t->mu);
        free(w);
        return -ESHUTDOWN;
    }
    /*
     * Suspended before the waiter is linked: a wake can only come after the
     * suspension, so it never resumes a connection that is not suspended.
     */
    MHD_suspend_connection(conn);
    w->result = store_wait(st, stream, &w->sw);
    if (w->result == STORE_WAIT_QUEUED && heap_push(t, w) < 0 && store_cancel(&w->sw))
        w->result = STORE_WAIT_READY; /* cannot arm a deadline: answer now */
    /* (if the cancel lost, a wake is under way and resumes it, deadline or not) */
    if (w->result == STORE_WAIT_QUEUED && t->n > 0 && t->heap[0] == w)
        pthread_cond_signal(&t->cond); /* a new earliest deadline */
    pthread_mutex_unlock(&t->mu);
    if (w->result != STORE_WAIT_QUEUED) {
        w->state = HTTP_WOKEN;
        MHD_resume_connection(conn); /* not held after all: the handler runs again */
    }
    *out = w;
    return 0;
}

int http_wait_result(const struct http_wait *w)
{
    return w->result;
}

enum http_wait_state http_wait_state(const struct http_wait *w)
{
    return w->state;
}

void http_wait_free(struct http_wait *w)
{
    free(w);
}

long http_timer_count(struct http_timer *t)
{
    long n;

    pthread_mutex_lock(&t->mu);
    n = t->n;
    pthread_mutex_unlock(&t->mu);
    return n;
}
